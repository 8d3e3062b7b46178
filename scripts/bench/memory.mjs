#!/usr/bin/env node
// What the broker's resident memory is made of under produce load, compared across variants in alternating
// runs: per run a fresh broker process takes `--loads` runs of `--records` from the librdkafka load
// generator (by default the benchmark's RSS step: 200,000 records of 1 KiB to 100 partitions at acks=1).
// It samples the broker every 100 ms (VmRSS, its file-backed part, and V8's heap and external memory from
// /metrics) and prints each load's peak RSS, the RSS 1.5 s after the last, what the peak was made of, and
// the buffer pool's takes by source. With `--full-gc` it then forces a full garbage collection (through a
// heap snapshot, written to a scratch directory and deleted) and prints the RSS 4 s later: what the node
// held only because nothing had collected it yet. Asserts nothing.
//
//   bash scripts/bench/broker.sh --records 1   # once: installs librdkafka-dev, builds the load generator
//   node scripts/bench/memory.mjs [--rounds 2] [--loads 4] [--records 200000] [--record-bytes 1024]
//        [--partitions 100] [--acks=1] [--rate 0] [--full-gc]
//        --variant NAME[:key=value,...][@/other/checkout][+node-flag ...] (repeatable; default: one variant)
//
// Examples (docs/benchmarks.md): --variant now --variant before@/tmp/wt-before --full-gc;
// the pool at half rate: --partitions 8 --loads 1 --records 2320000 --acks=-1 --rate 290000
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { alternateRounds, loadgenPath, parseVariant, range, rssMiB, runLoadgen, withBroker } = await import(
  join(repository, "scripts", "lib", "bench-variants.mjs")
);
const { values: options } = parseArgs({
  options: {
    rounds: { type: "string", default: "2" },
    loads: { type: "string", default: "4" },
    records: { type: "string", default: "200000" },
    "record-bytes": { type: "string", default: "1024" },
    partitions: { type: "string", default: "100" },
    acks: { type: "string", default: "1" },
    rate: { type: "string", default: "0" },
    "full-gc": { type: "boolean", default: false },
    variant: { type: "string", multiple: true, default: ["default"] },
  },
});
const loadgen = loadgenPath(repository);
const say = (text) => process.stderr.write(`[memory] ${text}\n`);
const MiB = 1024 * 1024;

/** VmRSS and its file-backed part (the Node binary and libraries), MiB, from one read of the status. */
async function residentMiB(pid) {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const field = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  return { rss: field("VmRSS"), file: field("RssFile") };
}

/** The node's own metrics: V8's heap and external memory (MiB) and the buffer pool's takes by source. */
async function nodeMetrics(adminPort) {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const value = (pattern) => Number(new RegExp(`^${pattern} (\\S+)`, "m").exec(text)?.[1] ?? Number.NaN);
  return {
    heap: value("nodejs_heap_size_total_bytes") / MiB,
    external: value("nodejs_external_memory_bytes") / MiB,
    takes: Object.fromEntries(
      ["free", "released", "new"].map((source) => [
        source,
        value(`raftka_buffer_pool_takes_total\\{source="${source}"\\}`),
      ]),
    ),
  };
}

async function runOnce(variant) {
  const diagnostics = await mkdtemp(join(tmpdir(), "raftka-memory-"));
  const withSnapshots = options["full-gc"]
    ? {
        ...variant,
        nodeFlags: [...variant.nodeFlags, "--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${diagnostics}`],
      }
    : variant;
  try {
    return await withBroker(
      withSnapshots,
      { topics: ["memory"], partitions: Number(options.partitions) },
      async ({ child, line }) => {
        const sample = async () => ({
          ...(await residentMiB(child.pid)),
          ...(await nodeMetrics(line.adminPort)),
        });
        const peaks = [];
        let peak;
        for (let load = 0; load < Number(options.loads); load++) {
          let loadPeak;
          let sampling = Promise.resolve();
          const sampler = setInterval(() => {
            sampling = sample().then(
              (now) => {
                if (loadPeak === undefined || now.rss > loadPeak.rss) loadPeak = now;
              },
              () => {},
            );
          }, 100);
          const args = [
            "produce",
            "-b",
            `127.0.0.1:${line.kafkaPort}`,
            "-t",
            "memory",
            "-p",
            options.partitions,
          ];
          args.push("-n", options.records, "-s", options["record-bytes"], "-a", options.acks);
          if (Number(options.rate) > 0) args.push("-r", options.rate);
          const result = await runLoadgen(loadgen, args);
          clearInterval(sampler);
          await sampling;
          if (result.failed > 0) throw new Error(`${result.failed} records failed: ${result.firstError}`);
          peaks.push(loadPeak?.rss ?? Number.NaN);
          if (loadPeak !== undefined && (peak === undefined || loadPeak.rss > peak.rss)) peak = loadPeak;
        }
        await new Promise((resolve) => setTimeout(resolve, 1500));
        const after = await sample();
        let afterFullGc;
        if (options["full-gc"]) {
          process.kill(child.pid, "SIGUSR2");
          await new Promise((resolve) => setTimeout(resolve, 4000));
          afterFullGc = await rssMiB(child.pid);
        }
        return { peaks, peak, after, afterFullGc };
      },
    );
  } finally {
    await rm(diagnostics, { recursive: true, force: true });
  }
}

const variants = await Promise.all(options.variant.map((text) => parseVariant(text, repository)));
say(
  `${options.loads} loads of ${options.records} records to ${options.partitions} partitions at acks=${options.acks}${Number(options.rate) > 0 ? `, ${options.rate} records/s` : ""}, ${options.rounds} rounds`,
);
const runs = await alternateRounds(variants, Number(options.rounds), runOnce, say);
console.log(
  "variant      round   peak RSS per load, MiB        after   at the peak: file / V8 heap / external   pool takes free / released / new" +
    (options["full-gc"] ? "   after a full GC" : ""),
);
for (const [name, results] of runs) {
  results.forEach((result, index) => {
    const { peak, after } = result;
    const composition =
      peak === undefined ? "-" : [peak.file, peak.heap, peak.external].map((v) => v.toFixed(0)).join(" / ");
    // A source the pool never took from has no series yet; a node without these metrics has none at all.
    const counts = [after.takes.free, after.takes.released, after.takes.new];
    const takes = counts.every(Number.isNaN)
      ? "-"
      : counts.map((count) => (Number.isNaN(count) ? 0 : count)).join(" / ");
    console.log(
      `${name.padEnd(12)} ${String(index + 1).padStart(5)}   ${result.peaks
        .map((v) => v.toFixed(0))
        .join(", ")
        .padEnd(28)} ${after.rss.toFixed(0).padStart(6)}   ${composition.padEnd(38)} ${takes.padStart(33)}` +
        (result.afterFullGc === undefined ? "" : `   ${result.afterFullGc.toFixed(0).padStart(15)}`),
    );
  });
  const peaks = results.flatMap((result) => result.peaks);
  say(`${name}: peak RSS ${range(peaks)} MiB, after ${range(results.map((result) => result.after.rss))} MiB`);
}
