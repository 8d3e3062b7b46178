#!/usr/bin/env node
// One Raft node for the benchmarks: a RaftNodeHost with its groups, driven by the parent process
// over IPC (see raft-cluster.mjs). Not meant to be run by hand.
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const { raft, storage } = await import("./raft-dist.mjs");
const config = JSON.parse(process.argv[2]);
const { nodeId, groups, dataDir, tickMs, secret, storageMode, voters, maxOpenFiles, idleCloseMs } = config;

await mkdir(dataDir, { recursive: true });
const flushScheduler = new storage.FlushScheduler();
// One descriptor budget for all of this node's logs (default: a quarter of the process's limit).
const fileHandleCache = new storage.FileHandleCache({
  ...(maxOpenFiles === undefined ? {} : { maxOpenFiles }),
  ...(idleCloseMs === undefined ? {} : { idleCloseMs }),
});
const stable = await storage.StableStore.open(join(dataDir, "stable"), { flushScheduler });
const host = await raft.RaftNodeHost.start({
  nodeId,
  clusterId: "bench",
  secret,
  listen: { host: "127.0.0.1", port: 0 },
  peers: new Map(),
  hardStateStore: new raft.StableHardStateStore(stable),
  tickMs,
  // RAFTKA_BENCH_LOG=1 shows the node's own log lines (connections, balancer progress) on stderr.
  logger: process.env.RAFTKA_BENCH_LOG ? raft.consoleLogger({ node: nodeId }) : undefined,
});
const membership = raft.makeConfig(voters);
async function openGroup(group) {
  if (storageMode !== "disk") return new raft.MemoryLogStorage(membership);
  const partitionLog = await storage.PartitionLog.open(join(dataDir, `g${group}`), {
    flushScheduler,
    fileHandleCache,
    initialOffset: 0,
  });
  return raft.PartitionRaftLog.open({
    log: partitionLog,
    stable,
    keyPrefix: raft.raftKeyPrefix(group),
    initialConfig: membership,
  });
}
// A few dozen at a time: their directory and stable-store fsyncs share rounds.
let nextGroup = 0;
await Promise.all(
  Array.from({ length: 32 }, async () => {
    while (nextGroup < groups) {
      const group = nextGroup++;
      host.addGroup(group, { log: await openGroup(group) });
    }
  }),
);

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

let profiler;

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

/** CPU time (clock ticks, 100 per second on Linux) of the main thread and of all other threads. */
function threadTicks() {
  const ticks = { main: 0, other: 0 };
  for (const task of readdirSync("/proc/self/task")) {
    let stat;
    try {
      stat = readFileSync(`/proc/self/task/${task}/stat`, "utf8");
    } catch {
      continue; // the thread ended meanwhile
    }
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const used = Number(fields[11]) + Number(fields[12]);
    if (Number(task) === process.pid) ticks.main += used;
    else ticks.other += used;
  }
  return ticks;
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
    openDescriptors: readdirSync("/proc/self/fd").length,
    threadTicks: threadTicks(),
    fileHandleCache: { maxOpenFiles: fileHandleCache.maxOpenFiles, ...fileHandleCache.stats },
    balancerTransfers: host.balancerTransfers,
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
      case "profileStart":
        profiler = new Session();
        profiler.connect();
        await profiler.post("Profiler.enable");
        await profiler.post("Profiler.start");
        return reply({});
      case "profileStop": {
        const { profile } = await profiler.post("Profiler.stop");
        profiler.disconnect();
        await writeFile(message.path, JSON.stringify(profile));
        return reply({ path: message.path });
      }
      case "heapSampleStart":
        profiler = new Session();
        profiler.connect();
        await profiler.post("HeapProfiler.enable");
        await profiler.post("HeapProfiler.startSampling", {
          samplingInterval: 4096,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true,
        });
        return reply({});
      case "heapSampleStop": {
        const { profile } = await profiler.post("HeapProfiler.stopSampling");
        profiler.disconnect();
        await writeFile(message.path, JSON.stringify(profile));
        return reply({ path: message.path });
      }
      case "startBalancer":
        host.startLeaderBalancer(message.options ?? {});
        return reply({});
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
