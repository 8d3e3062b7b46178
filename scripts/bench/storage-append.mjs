#!/usr/bin/env node
// Append throughput of @raftka/storage's PartitionLog, with and without fsync, so the broker's
// produce path can be compared to the raw log. Prints numbers; asserts nothing.
//
//   pnpm build && node scripts/bench/storage-append.mjs [--total-mb 64] [--batch-kb 16]
//        [--partitions 8] [--in-flight 32] [--dir /path/on/the/disk/to/measure]
//
// Runs each mode once over a fixed amount of data (never in a loop) and removes its files. The last mode
// also times small durable appends to one more log meanwhile (an OffsetCommit's fsync next to busy
// produce partitions), and the durable modes with appends in flight print their append latency.
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const storageDist = join(repository, "packages", "storage", "dist", "index.js");
const { FlushScheduler, PartitionLog } = await import(storageDist).catch((error) => {
  console.error(`cannot load ${storageDist} (${error.message}); run \`pnpm build\` first`);
  process.exit(1);
});
const { crc32c } = createRequire(join(repository, "packages", "storage", "package.json"))("@node-rs/crc32");

const { values } = parseArgs({
  options: {
    "total-mb": { type: "string", default: "64" },
    "batch-kb": { type: "string", default: "16" },
    partitions: { type: "string", default: "8" },
    "in-flight": { type: "string", default: "32" },
    dir: { type: "string" },
  },
});
const totalBytes = Number(values["total-mb"]) * 1024 * 1024;
const batchBytes = Number(values["batch-kb"]) * 1024;
const partitionCount = Number(values.partitions);
const inFlight = Number(values["in-flight"]);
for (const [name, value] of [
  ["--total-mb", totalBytes],
  ["--batch-kb", batchBytes],
  ["--partitions", partitionCount],
  ["--in-flight", inFlight],
]) {
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`${name} must be a positive number`);
    process.exit(2);
  }
}

/** One uncompressed v2 batch holding a single record of about batchBytes (what a producer sends). */
function makeBatch(size) {
  const valueLength = size - 61 - 16;
  const value = Buffer.alloc(valueLength, 0x61);
  const varint = (n) => {
    let zigzag = (BigInt(n) << 1n) ^ (BigInt(n) >> 63n);
    const bytes = [];
    while (zigzag >= 0x80n) {
      bytes.push(Number((zigzag & 0x7fn) | 0x80n));
      zigzag >>= 7n;
    }
    bytes.push(Number(zigzag));
    return Buffer.from(bytes);
  };
  const body = Buffer.concat([
    Buffer.from([0]),
    varint(0),
    varint(0),
    varint(-1),
    varint(valueLength),
    value,
    varint(0),
  ]);
  const record = Buffer.concat([varint(body.length), body]);
  const header = Buffer.alloc(61);
  header.writeInt32BE(49 + record.length, 8);
  header.writeInt8(2, 16);
  header.writeBigInt64BE(BigInt(Date.now()), 27);
  header.writeBigInt64BE(BigInt(Date.now()), 35);
  header.writeBigInt64BE(-1n, 43);
  header.writeInt16BE(-1, 51);
  header.writeInt32BE(-1, 53);
  header.writeInt32BE(1, 57);
  const batch = Buffer.concat([header, record]);
  batch.writeUInt32BE(crc32c(batch.subarray(21)), 17);
  return batch;
}

const template = makeBatch(batchBytes);
const batchesTotal = Math.max(1, Math.floor(totalBytes / template.length));

const percentile = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.round(p * (sorted.length - 1)))] ?? 0;
const describeLatencies = (latencies) => {
  const sorted = latencies.sort((a, b) => a - b);
  return `p50 ${percentile(sorted, 0.5).toFixed(2)} ms p99 ${percentile(sorted, 0.99).toFixed(2)} ms`;
};

/**
 * Appends with fsync before ack run (`partitions` logs, `concurrency` appends in flight); with `probe`,
 * one more log takes one small durable append at a time meanwhile, as the __consumer_offsets partition
 * does for sequential OffsetCommits next to busy produce partitions.
 */
async function run(name, { durable, partitions, concurrency, probe = false }) {
  const root = await mkdtemp(join(values.dir ?? tmpdir(), "raftka-bench-"));
  const scheduler = new FlushScheduler();
  try {
    const logs = await Promise.all(
      Array.from({ length: partitions }, (_, index) =>
        PartitionLog.open(join(root, `p${index}`), {
          flushScheduler: scheduler,
          config: { flushBeforeAck: durable },
        }),
      ),
    );
    const probeLog = probe
      ? await PartitionLog.open(join(root, "probe"), {
          flushScheduler: scheduler,
          config: { flushBeforeAck: true },
        })
      : undefined;
    let next = 0;
    let loading = true;
    const probeLatencies = [];
    const probing = (async () => {
      const small = makeBatch(128);
      while (probeLog && loading) {
        const begin = performance.now();
        await probeLog.append(small, { assignOffsets: true, leaderEpoch: 0 });
        probeLatencies.push(performance.now() - begin);
      }
    })();
    const appendLatencies = [];
    const started = process.hrtime.bigint();
    // `concurrency` producers, each appending its own copy (leader appends stamp the bytes in place).
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        const own = Buffer.from(template);
        while (next < batchesTotal) {
          next += 1;
          const begin = performance.now();
          await logs[worker % partitions].append(own, { assignOffsets: true, leaderEpoch: 0 });
          appendLatencies.push(performance.now() - begin);
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    loading = false;
    await probing;
    const megabytes = (batchesTotal * template.length) / (1024 * 1024);
    console.log(
      `${name.padEnd(44)} ${(megabytes / seconds).toFixed(1).padStart(8)} MB/s ` +
        `${Math.round(batchesTotal / seconds)
          .toString()
          .padStart(8)} appends/s` +
        (durable ? `  ${scheduler.stats.rounds} fsync rounds, ${scheduler.stats.filesSynced} fsyncs` : "") +
        (durable && concurrency > 1
          ? `\n${"".padEnd(44)} append ${describeLatencies(appendLatencies)}`
          : "") +
        (probeLog
          ? `\n${"".padEnd(44)} meanwhile ${probeLatencies.length} small durable appends to another log, one at a time: ${describeLatencies(probeLatencies)}`
          : ""),
    );
    await Promise.all([...logs, ...(probeLog ? [probeLog] : [])].map((log) => log.close()));
  } finally {
    scheduler.close();
    await rm(root, { recursive: true, force: true });
  }
}

console.log(
  `PartitionLog append: ${batchesTotal} batches of ${template.length} bytes ` +
    `(${(totalBytes / 1024 / 1024).toFixed(0)} MB) per mode, in ${values.dir ?? tmpdir()}`,
);
await run("no fsync, 1 partition, 1 at a time", { durable: false, partitions: 1, concurrency: 1 });
await run(`no fsync, 1 partition, ${inFlight} in flight`, {
  durable: false,
  partitions: 1,
  concurrency: inFlight,
});
await run(`fsync before ack, 1 partition, 1 at a time`, { durable: true, partitions: 1, concurrency: 1 });
await run(`fsync before ack, ${partitionCount} partitions, ${inFlight} in flight`, {
  durable: true,
  partitions: partitionCount,
  concurrency: inFlight,
  probe: true,
});
