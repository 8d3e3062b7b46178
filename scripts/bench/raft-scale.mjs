#!/usr/bin/env node
// Multi-Raft at scale: 3 real node processes on loopback, each hosting every group. Measures the
// time to elect all leaders, the time until the idle groups quiesce, idle CPU per node and resident
// memory. Logs are in memory by default (one PartitionLog per group needs ~3 file descriptors and
// this machine allows 20000); hard state goes to each node's StableStore on disk either way.
// Prints numbers; asserts nothing.
//
//   pnpm build && node scripts/bench/raft-scale.mjs [--groups 10000] [--idle-seconds 60]
//        [--tick-ms 50] [--storage memory|disk] [--dir /path]
import { parseArgs } from "node:util";
import { BenchCluster, until } from "./lib/raft-cluster.mjs";

const { values } = parseArgs({
  options: {
    groups: { type: "string", default: "10000" },
    "idle-seconds": { type: "string", default: "60" },
    "tick-ms": { type: "string", default: "50" },
    storage: { type: "string", default: "memory" },
    dir: { type: "string" },
  },
});
const groups = Number(values.groups);
const idleSeconds = Number(values["idle-seconds"]);
const tickMs = Number(values["tick-ms"]);
if (!Number.isInteger(groups) || groups <= 0 || !(idleSeconds > 0) || !(tickMs > 0)) {
  console.error("--groups must be a positive integer, --idle-seconds and --tick-ms positive numbers");
  process.exit(2);
}
if (values.storage !== "memory" && values.storage !== "disk") {
  console.error("--storage must be memory or disk");
  process.exit(2);
}

const started = Date.now();
const cluster = await BenchCluster.start({
  nodes: 3,
  groups,
  storage: values.storage,
  tickMs,
  dir: values.dir,
});
try {
  const ready = Date.now();
  console.log(
    `3 nodes x ${groups} groups (${values.storage} logs, tick ${tickMs} ms): processes up in ${((ready - started) / 1000).toFixed(1)} s`,
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
  console.log(
    `all ${groups} leaders elected ${((elected - ready) / 1000).toFixed(2)} s after the nodes connected`,
  );
  const leaders = (await cluster.statuses()).map((status) => `node ${status.nodeId}: ${status.led}`);
  console.log(`leaders per node: ${leaders.join(", ")}`);
  await until(
    "the groups to quiesce",
    async () => (await cluster.statuses()).every((status) => status.awake === 0),
    600_000,
    200,
  ).catch((error) => console.log(`not all groups quiesced: ${error.message}`));
  console.log(`quiesced ${((Date.now() - elected) / 1000).toFixed(2)} s after the last election`);
  const before = await cluster.statuses();
  await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
  const after = await cluster.statuses();
  for (const status of after) {
    const earlier = before.find((candidate) => candidate.nodeId === status.nodeId);
    const cpu = (status.cpuMicros - earlier.cpuMicros) / (status.wallMicros - earlier.wallMicros);
    const framesPerSecond = (status.transport.framesSent - earlier.transport.framesSent) / idleSeconds;
    console.log(
      `node ${status.nodeId}: idle CPU ${(cpu * 100).toFixed(2)}% of a core over ${idleSeconds} s, ` +
        `RSS ${(status.rss / 1024 / 1024).toFixed(0)} MiB, awake groups ${status.awake}, ${framesPerSecond.toFixed(1)} frames/s sent`,
    );
  }
} finally {
  await cluster.stop();
}
