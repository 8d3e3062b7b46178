#!/usr/bin/env node
// What producing costs the broker, compared across variants in alternating runs: per run a fresh broker
// process takes acks=1, acks=all and idempotent (acks=all) load from the librdkafka load generator, and
// this prints records/s, the broker's CPU per MiB (all threads, from /proc), its share of GC pauses and
// the mean Produce handling time (raftka_kafka_request_handle_seconds) and its peak resident memory so far
// (VmHWM). Throughput alone moves with whatever else the shared machine runs; CPU per MiB moves far less,
// and its median over the rounds says more than its range.
// Asserts nothing.
//
//   bash scripts/bench/broker.sh --records 1   # once: installs librdkafka-dev, builds the load generator
//   node scripts/bench/produce-cost.mjs [--pairs 3] [--records 600000] [--record-bytes 1024] [--partitions 8]
//        --variant NAME[:key=value,...][@/other/checkout][+node-flag ...] (repeatable; default: one variant)
//
// Examples:
//   --variant raft --variant local:raft.partitions.enable=false
//   --variant head --variant base@/tmp/wt-base          (a checkout of another commit, built)
//   --variant flags --variant noflags+                  (`+` alone: start Node without the broker's flags)
//   --variant now --variant bare:env.GLIBC_TUNABLES=     (`env.NAME=value`: the broker's environment)
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { alternateRounds, cpuSeconds, loadgenPath, median, parseVariant, range, runLoadgen, withBroker } =
  await import(join(repository, "scripts", "lib", "bench-variants.mjs"));
const { values: options } = parseArgs({
  options: {
    pairs: { type: "string", default: "3" },
    records: { type: "string", default: "600000" },
    "record-bytes": { type: "string", default: "1024" },
    partitions: { type: "string", default: "8" },
    variant: { type: "string", multiple: true, default: ["default"] },
  },
});
const loadgen = loadgenPath(repository);
const records = Number(options.records);
const recordBytes = Number(options["record-bytes"]);
const partitions = Number(options.partitions);
const say = (text) => process.stderr.write(`[produce-cost] ${text}\n`);

/** The broker's peak resident memory so far (VmHWM), MiB. */
async function peakRssMiB(pid) {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** GC pause seconds and Produce handling (sum, count) from the broker's /metrics. */
async function scrape(adminPort) {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const sum = (predicate) =>
    text
      .split("\n")
      .filter(predicate)
      .reduce((total, line) => total + Number(line.split(" ").pop()), 0);
  return {
    gcSeconds: sum((line) => line.startsWith("nodejs_gc_duration_seconds_sum")),
    handleSum: sum(
      (line) => line.startsWith("raftka_kafka_request_handle_seconds_sum") && line.includes('"Produce"'),
    ),
    handleCount: sum(
      (line) => line.startsWith("raftka_kafka_request_handle_seconds_count") && line.includes('"Produce"'),
    ),
  };
}

const LOADS = [
  { key: "acks1", acks: "1", extra: [] },
  { key: "acksAll", acks: "-1", extra: [] },
  { key: "idempotent", acks: "-1", extra: ["-X", "enable.idempotence=true"] },
];

async function runOnce(variant) {
  const topics = LOADS.map(({ key }) => key);
  return withBroker(variant, { topics, partitions }, async ({ child, line }) => {
    const result = {};
    for (const load of LOADS) {
      const cpuBefore = await cpuSeconds(child.pid);
      const before = await scrape(line.adminPort);
      const produced = await runLoadgen(loadgen, [
        "produce",
        ...["-b", `127.0.0.1:${line.kafkaPort}`, "-t", load.key, "-p", String(partitions)],
        ...["-n", String(records), "-s", String(recordBytes), "-a", load.acks, ...load.extra],
      ]);
      const cpu = (await cpuSeconds(child.pid)) - cpuBefore;
      const after = await scrape(line.adminPort);
      if (produced.failed > 0) throw new Error(`${produced.failed} records failed: ${produced.firstError}`);
      result[load.key] = {
        recordsPerSecond: produced.recordsPerSecond,
        cpuMsPerMiB: (1000 * cpu) / ((records * recordBytes) / (1 << 20)),
        gcShare: cpu > 0 ? (after.gcSeconds - before.gcSeconds) / cpu : 0,
        handleMs:
          (1000 * (after.handleSum - before.handleSum)) / Math.max(1, after.handleCount - before.handleCount),
        peakRssMiB: await peakRssMiB(child.pid),
      };
    }
    return result;
  });
}

const variants = await Promise.all(options.variant.map((text) => parseVariant(text, repository)));
const pairs = Number(options.pairs);
say(
  `${records} records of ${recordBytes} bytes over ${partitions} partitions per load; ${pairs} alternating rounds`,
);
const runs = await alternateRounds(variants, pairs, runOnce, say);

console.log(
  "variant      load         records/s (k)   CPU ms/MiB (median)   GC share   Produce handling ms   peak RSS MiB",
);
for (const variant of variants) {
  for (const { key } of LOADS) {
    const results = runs.get(variant.name).map((run) => run[key]);
    console.log(
      [
        variant.name.padEnd(12),
        key.padEnd(12),
        range(results.map((r) => r.recordsPerSecond / 1000)).padStart(15),
        `${range(
          results.map((r) => r.cpuMsPerMiB),
          2,
        )} (${median(results.map((r) => r.cpuMsPerMiB)).toFixed(2)})`.padStart(21),
        range(results.map((r) => 100 * r.gcShare)).padStart(9) + "%",
        range(
          results.map((r) => r.handleMs),
          1,
        ).padStart(21),
        range(results.map((r) => r.peakRssMiB)).padStart(14),
      ].join(" "),
    );
  }
}
