#!/usr/bin/env node
// One Raft node for the benchmarks: a RaftNodeHost with its groups, driven by the parent process
// over IPC (see raft-cluster.mjs). Not meant to be run by hand.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const { raft, storage } = await import("./raft-dist.mjs");
const config = JSON.parse(process.argv[2]);
const { nodeId, groups, dataDir, tickMs, secret, storageMode, voters } = config;

await mkdir(dataDir, { recursive: true });
const flushScheduler = new storage.FlushScheduler();
const stable = await storage.StableStore.open(join(dataDir, "stable"), { flushScheduler });
const host = await raft.RaftNodeHost.start({
  nodeId,
  clusterId: "bench",
  secret,
  listen: { host: "127.0.0.1", port: 0 },
  peers: new Map(),
  hardStateStore: new raft.StableHardStateStore(stable),
  tickMs,
});
const membership = raft.makeConfig(voters);
for (let group = 0; group < groups; group++) {
  let log;
  if (storageMode === "disk") {
    const partitionLog = await storage.PartitionLog.open(join(dataDir, `g${group}`), {
      flushScheduler,
      initialOffset: 0,
    });
    log = await raft.PartitionRaftLog.open({
      log: partitionLog,
      stable,
      keyPrefix: raft.raftKeyPrefix(group),
      initialConfig: membership,
    });
  } else {
    log = new raft.MemoryLogStorage(membership);
  }
  host.addGroup(group, { log });
}

function batchOf(size) {
  return raft.encodeRecordBatch({
    baseOffset: 0,
    leaderEpoch: 0,
    timestamp: Date.now(),
    records: [{ key: null, value: Buffer.alloc(Math.max(0, size - 70), 0x61) }],
  });
}

function percentile(sorted, fraction) {
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}

async function load({ group, count, size, concurrency }) {
  if (!host.isLeader(group)) return { error: `node ${nodeId} does not lead group ${group}` };
  const latencies = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < count) {
      next++;
      const payload = batchOf(size);
      const begin = performance.now();
      await host.propose(group, payload, 1);
      latencies.push(performance.now() - begin);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return {
    count,
    elapsedMs,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    max: latencies[latencies.length - 1],
    mibPerSecond: (count * size) / 1024 / 1024 / (elapsedMs / 1000),
    syncRounds: host.syncRounds,
  };
}

let watching = false;
async function watchCommit({ group }) {
  watching = true;
  while (watching) {
    if (host.isLeader(group)) {
      try {
        await host.propose(group, batchOf(100), 1);
        watching = false;
        return { committedAt: performance.timeOrigin + performance.now() };
      } catch {
        // Lost leadership meanwhile: keep watching.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return { cancelled: true };
}

function status() {
  let led = 0;
  let withLeader = 0;
  for (const group of host.groupIds()) {
    if (host.isLeader(group)) led++;
    if (host.leaderOf(group) !== -1) withLeader++;
  }
  const cpu = process.cpuUsage();
  return {
    nodeId,
    groups,
    led,
    withLeader,
    awake: host.awakeGroups,
    rss: process.memoryUsage().rss,
    cpuMicros: cpu.user + cpu.system,
    wallMicros: (performance.timeOrigin + performance.now()) * 1000,
    transport: host.transportStats,
  };
}

process.on("message", async (message) => {
  const reply = (body) => process.send({ id: message.id, ...body });
  try {
    switch (message.type) {
      case "setPeers":
        host.setPeers(new Map(message.peers.map(([id, port]) => [id, { host: "127.0.0.1", port }])));
        return reply({});
      case "status":
        return reply(status());
      case "load":
        return reply(await load(message));
      case "watchCommit":
        return reply(await watchCommit(message));
      case "unwatch":
        watching = false;
        return reply({});
      case "stop":
        await host.stop();
        await stable.close();
        flushScheduler.close();
        reply({});
        setTimeout(() => process.exit(0), 10);
        return;
      default:
        return reply({ error: `unknown command ${message.type}` });
    }
  } catch (error) {
    reply({ error: error.stack ?? String(error) });
  }
});

process.send({ type: "ready", port: host.port });
