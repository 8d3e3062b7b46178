#!/usr/bin/env node
// How fast a consumer catches up on data that is no longer in the page cache, compared across variants in
// alternating runs: per run a fresh broker process takes `--records` at acks=1 from the librdkafka load
// generator, the topic's segment files leave the page cache (`dd iflag=nocache`), and the load generator
// consumes all of it, alone and then again (out of the page cache again) beside acks=all producers at
// `--beside-rate`. Prints records/s, the broker's CPU per MiB consumed alone (all threads, /proc), its peak RSS
// while consuming and its RSS a second after, and the producers' p99 beside the catch-up. Asserts nothing.
//
//   bash scripts/bench/broker.sh --records 1   # once: installs librdkafka-dev, builds the load generator
//   node scripts/bench/catch-up.mjs [--rounds 2] [--records 2500000] [--record-bytes 1024] [--partitions 8]
//        [--beside-rate 150000] --variant NAME[:key=value,...][@/other/checkout][+node-flag ...] (repeatable)
//
// Example (docs/benchmarks.md): --variant ahead --variant off:log.read.ahead.enable=false
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { alternateRounds, cpuSeconds, loadgenPath, parseVariant, range, rssMiB, runLoadgen, withBroker } =
  await import(join(repository, "scripts", "lib", "bench-variants.mjs"));
const { values: options } = parseArgs({
  options: {
    rounds: { type: "string", default: "2" },
    records: { type: "string", default: "2500000" },
    "record-bytes": { type: "string", default: "1024" },
    partitions: { type: "string", default: "8" },
    "beside-rate": { type: "string", default: "150000" },
    variant: { type: "string", multiple: true, default: ["default"] },
  },
});
const loadgenBinary = loadgenPath(repository);
const records = Number(options.records);
const recordBytes = Number(options["record-bytes"]);
const partitions = Number(options.partitions);
const besideRate = Number(options["beside-rate"]);
const say = (text) => process.stderr.write(`[catch-up] ${text}\n`);

const loadgen = (args) => runLoadgen(loadgenBinary, args);

/** Takes the topic's segment files out of the page cache (clean pages only: the log is flushed first). */
function evictTopic(dataDir, topic) {
  for (const directory of readdirSync(dataDir).filter((name) => name.startsWith(`${topic}-`))) {
    for (const file of readdirSync(join(dataDir, directory)).filter((name) => name.endsWith(".log"))) {
      execFileSync("dd", [`if=${join(dataDir, directory, file)}`, "iflag=nocache", "count=0", "status=none"]);
    }
  }
}

/** Consumes the whole topic while sampling the broker's RSS; `beside` runs alongside. */
async function catchUp(pid, bootstrap, dataDir, beside) {
  execFileSync("sync");
  evictTopic(dataDir, "history");
  let peak = await rssMiB(pid);
  const sampler = setInterval(() => {
    rssMiB(pid).then(
      (rss) => {
        peak = Math.max(peak, rss);
      },
      () => {},
    );
  }, 100);
  const cpuBefore = await cpuSeconds(pid);
  try {
    const [consumed, produced] = await Promise.all([
      loadgen(["consume", "-b", bootstrap, "-t", "history", "-p", String(partitions), "-n", String(records)]),
      beside?.(),
    ]);
    const cpu = (await cpuSeconds(pid)) - cpuBefore;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    return {
      recordsPerSecond: consumed.recordsPerSecond,
      cpuMsPerMiB: (1000 * cpu) / ((records * recordBytes) / (1 << 20)),
      peakRssMiB: peak,
      rssAfterMiB: await rssMiB(pid),
      besideP99Ms: produced?.latencyMs.p99,
    };
  } finally {
    clearInterval(sampler);
  }
}

async function runOnce(variant) {
  return withBroker(
    variant,
    { topics: ["history", "beside"], partitions },
    async ({ child, line, dataDir }) => {
      const bootstrap = `127.0.0.1:${line.kafkaPort}`;
      say(`${variant.name}: producing ${records} records`);
      const topicArgs = ["-t", "history", "-p", String(partitions), "-s", String(recordBytes)];
      await loadgen(["produce", "-b", bootstrap, ...topicArgs, "-n", String(records), "-a", "-1"]);
      say(`${variant.name}: catching up alone`);
      const alone = await catchUp(child.pid, bootstrap, dataDir);
      say(`${variant.name}: catching up beside acks=all producers at ${besideRate} records/s`);
      const besideRecords = String(Math.round(besideRate * 6));
      const produceBeside = () =>
        loadgen([
          "produce",
          ...["-b", bootstrap, "-t", "beside", "-p", String(partitions), "-s", String(recordBytes)],
          ...["-n", besideRecords, "-a", "-1", "-r", String(besideRate)],
        ]);
      const beside = await catchUp(child.pid, bootstrap, dataDir, produceBeside);
      return { alone, beside };
    },
  );
}

const variants = await Promise.all(options.variant.map((text) => parseVariant(text, repository)));
const rounds = Number(options.rounds);
say(`${records} records of ${recordBytes} bytes over ${partitions} partitions; ${rounds} alternating rounds`);
const runs = await alternateRounds(variants, rounds, runOnce, say);

console.log(
  "variant      catch-up     records/s (k)   CPU ms/MiB   peak RSS MiB   RSS 1 s after   producers' p99 ms",
);
for (const variant of variants) {
  for (const key of ["alone", "beside"]) {
    const results = runs.get(variant.name).map((run) => run[key]);
    const p99s = results.map((r) => r.besideP99Ms).filter((value) => value !== undefined);
    console.log(
      [
        variant.name.padEnd(12),
        key.padEnd(12),
        range(results.map((r) => r.recordsPerSecond / 1000)).padStart(15),
        // Beside producers the broker's CPU is mostly theirs: per MiB consumed it would say nothing.
        (key === "alone"
          ? range(
              results.map((r) => r.cpuMsPerMiB),
              2,
            )
          : ""
        ).padStart(12),
        range(results.map((r) => r.peakRssMiB)).padStart(14),
        range(results.map((r) => r.rssAfterMiB)).padStart(15),
        (p99s.length > 0 ? range(p99s, 1) : "").padStart(19),
      ].join(" "),
    );
  }
}
