#!/usr/bin/env node
// Raft commit latency and throughput: 3 real node processes on loopback, one group, logs on disk
// with fsync, compared with the raw fsync latency of the same disk. Prints numbers; asserts nothing.
//
//   pnpm build && node scripts/bench/raft-commit.mjs [--count 2000] [--big-count 300]
//        [--concurrency 32] [--tick-ms 50] [--dir /path/on/the/disk/to/measure]
import { open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { BenchCluster, percentile, until } from "./lib/raft-cluster.mjs";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "2000" },
    "big-count": { type: "string", default: "300" },
    concurrency: { type: "string", default: "32" },
    "tick-ms": { type: "string", default: "50" },
    dir: { type: "string" },
  },
});
const count = Number(values.count);
const bigCount = Number(values["big-count"]);
const concurrency = Number(values.concurrency);
const tickMs = Number(values["tick-ms"]);
for (const [name, value] of [
  ["--count", count],
  ["--big-count", bigCount],
  ["--concurrency", concurrency],
  ["--tick-ms", tickMs],
]) {
  if (!Number.isInteger(value) || value <= 0) {
    console.error(`${name} must be a positive integer`);
    process.exit(2);
  }
}
const directory = values.dir ?? tmpdir();

async function rawFsync(size, rounds) {
  const path = join(directory, `raftka-fsync-${process.pid}`);
  const handle = await open(path, "w");
  const block = Buffer.alloc(size, 1);
  const latencies = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const begin = performance.now();
      await handle.write(block, 0, size, round * size);
      await handle.sync();
      latencies.push(performance.now() - begin);
    }
  } finally {
    await handle.close();
    await rm(path, { force: true });
  }
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

const ms = (value) => `${value.toFixed(2)} ms`;
console.log(`disk under test: ${directory}`);
const fsync1k = await rawFsync(1024, 200);
const fsync64k = await rawFsync(64 * 1024, 100);
console.log(`raw write+fsync 1 KiB:  p50 ${ms(fsync1k.p50)}  p99 ${ms(fsync1k.p99)}`);
console.log(`raw write+fsync 64 KiB: p50 ${ms(fsync64k.p50)}  p99 ${ms(fsync64k.p99)}`);

const cluster = await BenchCluster.start({ nodes: 3, groups: 1, storage: "disk", tickMs, dir: values.dir });
try {
  const leader = await until("a leader", async () => {
    const statuses = await cluster.statuses();
    return statuses.find((status) => status.led === 1)?.nodeId;
  });
  const run = async (label, runCount, size, inFlight) => {
    const result = await cluster.request(leader, {
      type: "load",
      group: 0,
      count: runCount,
      size,
      concurrency: inFlight,
    });
    console.log(
      `${label.padEnd(34)} p50 ${ms(result.p50)}  p99 ${ms(result.p99)}  max ${ms(result.max)}  ` +
        `${(runCount / (result.elapsedMs / 1000)).toFixed(0)} commits/s  ${result.mibPerSecond.toFixed(2)} MiB/s`,
    );
  };
  console.log(`3 nodes on loopback, 1 group, fsync on, leader node ${leader}:`);
  await run("1 KiB entries, one at a time", Math.min(count, 500), 1024, 1);
  await run(`1 KiB entries, ${concurrency} in flight`, count, 1024, concurrency);
  await run("64 KiB entries, one at a time", Math.min(bigCount, 200), 64 * 1024, 1);
  await run(
    `64 KiB entries, ${Math.min(concurrency, 16)} in flight`,
    bigCount,
    64 * 1024,
    Math.min(concurrency, 16),
  );
} finally {
  await cluster.stop();
}
