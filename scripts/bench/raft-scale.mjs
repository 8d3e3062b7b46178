#!/usr/bin/env node
// Multi-Raft at scale: 3 real node processes on loopback, each hosting every group. Measures the
// time to elect all leaders, the leader spread before and after the leader balancer, the time until
// the idle groups quiesce, idle CPU per node, resident memory and open descriptors. Logs are on disk
// by default (one PartitionLog per group, descriptors from a bounded cache per node); hard state
// goes to each node's StableStore either way. Prints numbers; asserts nothing.
//
//   pnpm build && node scripts/bench/raft-scale.mjs [--groups 10000] [--idle-seconds 60] [--settle-seconds 30]
//        [--tick-ms 50] [--storage disk|memory] [--dir /path] [--max-open-files N] [--idle-close-ms N]
//        [--balance-per-pass 100] [--no-balance] [--cpu-profile-dir /path]
//
// Idle CPU is measured after --settle-seconds of quiet: right after a burst of activity V8 spends a
// while collecting and shrinking the heap on its background threads, which is not the idle cost.
// --cpu-profile-dir writes a V8 CPU profile of each node's idle window (node-<id>-idle.cpuprofile,
// open it in Chrome DevTools) to see what an idle node spends its CPU on.
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { BenchCluster, until } from "./lib/raft-cluster.mjs";

const { values } = parseArgs({
  options: {
    groups: { type: "string", default: "10000" },
    "idle-seconds": { type: "string", default: "60" },
    "settle-seconds": { type: "string", default: "30" },
    "tick-ms": { type: "string", default: "50" },
    storage: { type: "string", default: "disk" },
    dir: { type: "string" },
    "max-open-files": { type: "string" },
    "idle-close-ms": { type: "string" },
    "balance-per-pass": { type: "string", default: "100" },
    "no-balance": { type: "boolean", default: false },
    "cpu-profile-dir": { type: "string" },
    "heap-profile-dir": { type: "string" },
  },
});
const groups = Number(values.groups);
const idleSeconds = Number(values["idle-seconds"]);
const settleSeconds = Number(values["settle-seconds"]);
const tickMs = Number(values["tick-ms"]);
const maxOpenFiles = values["max-open-files"] === undefined ? undefined : Number(values["max-open-files"]);
const balancePerPass = Number(values["balance-per-pass"]);
const idleCloseMs = values["idle-close-ms"] === undefined ? undefined : Number(values["idle-close-ms"]);
if (
  !Number.isInteger(groups) ||
  groups <= 0 ||
  !(idleSeconds > 0) ||
  !(tickMs > 0) ||
  !(settleSeconds >= 0)
) {
  console.error(
    "--groups must be a positive integer, --idle-seconds and --tick-ms positive numbers, --settle-seconds >= 0",
  );
  process.exit(2);
}
if (values.storage !== "memory" && values.storage !== "disk") {
  console.error("--storage must be memory or disk");
  process.exit(2);
}
if (maxOpenFiles !== undefined && !(Number.isInteger(maxOpenFiles) && maxOpenFiles > 0)) {
  console.error("--max-open-files must be a positive integer");
  process.exit(2);
}
if (idleCloseMs !== undefined && !(idleCloseMs >= 0)) {
  console.error("--idle-close-ms must be a number >= 0 (0: keep idle descriptors open)");
  process.exit(2);
}
if (!(Number.isInteger(balancePerPass) && balancePerPass > 0)) {
  console.error("--balance-per-pass must be a positive integer");
  process.exit(2);
}

const seconds = (from, to = Date.now()) => ((to - from) / 1000).toFixed(2);
const spread = (statuses) =>
  statuses
    .map((status) => `node ${status.nodeId}: ${status.led} (${((100 * status.led) / groups).toFixed(1)}%)`)
    .join(", ");

const started = Date.now();
const cluster = await BenchCluster.start({
  nodes: 3,
  groups,
  storage: values.storage,
  tickMs,
  dir: values.dir,
  maxOpenFiles,
  idleCloseMs,
});
try {
  const ready = Date.now();
  console.log(
    `3 nodes x ${groups} groups (${values.storage} logs, tick ${tickMs} ms): processes up in ${seconds(started, ready)} s`,
  );
  await until(
    "every group to have a leader known to every node",
    async () => {
      const statuses = await cluster.statuses();
      const led = statuses.reduce((sum, status) => sum + status.led, 0);
      return led === groups && statuses.every((status) => status.withLeader === groups);
    },
    600_000,
    100,
  );
  const elected = Date.now();
  console.log(`all ${groups} leaders elected ${seconds(ready, elected)} s after the nodes connected`);
  console.log(`leaders per node after the elections: ${spread(await cluster.statuses())}`);

  if (!values["no-balance"]) {
    const balanceStarted = Date.now();
    await Promise.all(
      cluster.ids.map((id) =>
        cluster.request(id, { type: "startBalancer", options: { maxTransfersPerPass: balancePerPass } }),
      ),
    );
    const balanced = await until(
      "an even leader spread",
      async () => {
        const statuses = await cluster.statuses();
        const counts = statuses.map((status) => status.led);
        const total = counts.reduce((sum, count) => sum + count, 0);
        return total === groups && Math.max(...counts) - Math.min(...counts) <= 1 ? statuses : undefined;
      },
      600_000,
      200,
    ).catch((error) => {
      console.log(`leaders not balanced: ${error.message}`);
      return undefined;
    });
    const after = balanced ?? (await cluster.statuses());
    const transfers = after.reduce((sum, status) => sum + status.balancerTransfers, 0);
    console.log(
      `leaders per node after the balancer (${transfers} transfers, ${balancePerPass} per node per second at most, ` +
        `${seconds(balanceStarted)} s): ${spread(after)}`,
    );
  }

  const quiesceStarted = Date.now();
  await until(
    "the groups to quiesce",
    async () => (await cluster.statuses()).every((status) => status.awake === 0),
    600_000,
    200,
  ).catch((error) => console.log(`not all groups quiesced: ${error.message}`));
  console.log(`quiesced ${seconds(quiesceStarted)} s later`);
  const settleBefore = await cluster.statuses();
  await new Promise((done) => setTimeout(done, settleSeconds * 1000));
  const profileDir = values["cpu-profile-dir"];
  const heapDir = values["heap-profile-dir"];
  if (profileDir !== undefined) {
    await Promise.all(cluster.ids.map((id) => cluster.request(id, { type: "profileStart" })));
  } else if (heapDir !== undefined) {
    await Promise.all(cluster.ids.map((id) => cluster.request(id, { type: "heapSampleStart" })));
  }
  const before = await cluster.statuses();
  await new Promise((done) => setTimeout(done, idleSeconds * 1000));
  const after = await cluster.statuses();
  const cpuBetween = (earlier, later) =>
    (later.cpuMicros - earlier.cpuMicros) / (later.wallMicros - earlier.wallMicros);
  if (profileDir !== undefined) {
    for (const id of cluster.ids) {
      const path = join(resolve(profileDir), `node-${id}-idle.cpuprofile`);
      await cluster.request(id, { type: "profileStop", path });
      console.log(`CPU profile of node ${id}'s idle window: ${path}`);
    }
  } else if (heapDir !== undefined) {
    for (const id of cluster.ids) {
      const path = join(resolve(heapDir), `node-${id}-idle.heapprofile`);
      await cluster.request(id, { type: "heapSampleStop", path });
      console.log(`allocation profile of node ${id}'s idle window: ${path}`);
    }
  }
  for (const status of after) {
    const earlier = before.find((candidate) => candidate.nodeId === status.nodeId);
    const cpu = cpuBetween(earlier, status);
    const settling = cpuBetween(
      settleBefore.find((candidate) => candidate.nodeId === status.nodeId),
      earlier,
    );
    const framesPerSecond = (status.transport.framesSent - earlier.transport.framesSent) / idleSeconds;
    const files = status.fileHandleCache;
    console.log(
      `node ${status.nodeId}: idle CPU ${(cpu * 100).toFixed(2)}% of a core over ${idleSeconds} s ` +
        `(main thread ${((status.threadTicks.main - earlier.threadTicks.main) / idleSeconds).toFixed(2)}%, ` +
        `other threads ${((status.threadTicks.other - earlier.threadTicks.other) / idleSeconds).toFixed(2)}%; ` +
        `${(settling * 100).toFixed(2)}% in the ${settleSeconds} s of settling before), ` +
        `RSS ${(status.rss / 1024 / 1024).toFixed(0)} MiB, awake groups ${status.awake}, ${framesPerSecond.toFixed(1)} frames/s sent, ` +
        `${status.openDescriptors} open descriptors` +
        (values.storage === "disk"
          ? ` (log files: ${files.open} cached of at most ${files.maxOpenFiles}, peak ${files.peakOpen}, ` +
            `${files.evictions} evictions of which ${files.dirtyEvictions} fsynced first, ${files.waits} waits)`
          : ""),
    );
  }
} finally {
  await cluster.stop();
}
