#!/usr/bin/env node
// What Produce's walk of an uncompressed batch's record sizes (uncompressedRecordsProblem) costs per MiB,
// against the batch CRC every produced batch gets anyway, on batches of 1 KiB records as the produce
// benchmark sends them. Run in the same process, alternating, so other load moves both alike.
//   pnpm build && node scripts/bench/record-walk.mjs [--rounds 5] [--record-bytes 1024]
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { computeBatchCrc, encodeRecordBatch, uncompressedRecordsProblem } = await import(
  join(repository, "packages", "protocol", "dist", "index.js")
);
const { values: options } = parseArgs({
  options: { rounds: { type: "string", default: "5" }, "record-bytes": { type: "string", default: "1024" } },
});
const recordBytes = Number(options["record-bytes"]);
const count = Math.max(1, Math.floor((1024 * 1024) / recordBytes));
const batch = encodeRecordBatch({
  records: Array.from({ length: count }, (_, index) => ({
    key: null,
    value: Buffer.alloc(recordBytes, 97),
    timestamp: 1_700_000_000_000 + index,
  })),
});
if (uncompressedRecordsProblem(batch) !== undefined) throw new Error("the benchmark's own batch was refused");
const mib = batch.length / (1024 * 1024);
const iterations = 2000;

function microsPerMiB(work) {
  const started = process.hrtime.bigint();
  for (let index = 0; index < iterations; index++) work(batch);
  return Number(process.hrtime.bigint() - started) / 1000 / iterations / mib;
}

console.log(`batch of ${count} records of ${recordBytes} bytes (${batch.length} bytes); µs per MiB:`);
for (let round = 1; round <= Number(options.rounds); round++) {
  const walk = microsPerMiB(uncompressedRecordsProblem);
  const crc = microsPerMiB(computeBatchCrc);
  console.log(`round ${round}: record-size walk ${walk.toFixed(1)}, batch CRC ${crc.toFixed(1)}`);
}
