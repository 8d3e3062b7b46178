#!/usr/bin/env node
// CRC-32C speed: packages/crc32c's native build (folding where the CPU can, and its three crc32 streams
// alone) against @node-rs/crc32 (its fallback), on one buffer computed again and again (so from the CPU
// cache), at the sizes batches come in.
//   pnpm build && node scripts/bench/crc32c.mjs [--seconds-per-size 1]
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { crc32c, crc32cFolds, crc32cImplementation, crc32cThreeStreams } = await import(
  join(repository, "packages", "crc32c", "dist", "index.js")
);
const nodeRs = createRequire(join(repository, "packages", "crc32c", "package.json"))("@node-rs/crc32");
const { values: options } = parseArgs({ options: { "seconds-per-size": { type: "string", default: "1" } } });
const seconds = Number(options["seconds-per-size"]);

if (crc32cImplementation !== "native-sse4.2") {
  console.error(
    `the native build is not loaded (${crc32cImplementation}); run \`pnpm build\` and look at what it prints`,
  );
  process.exit(1);
}

const source = randomBytes(1 << 20);
function measure(compute, data) {
  let calls = 0;
  const started = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < seconds * 1e9) {
    for (let index = 0; index < 64; index++) compute(data);
    calls += 64;
    elapsed = Number(process.hrtime.bigint() - started);
  }
  return { gibPerSecond: (calls * data.length) / (elapsed / 1e9) / 2 ** 30, nsPerCall: elapsed / calls };
}

console.log(
  `native: ${crc32cFolds ? "folds inputs of 1 KiB and more (AVX-512 VPCLMULQDQ)" : "three crc32 streams only (no VPCLMULQDQ here)"}`,
);
console.log(
  "bytes       native GiB/s  ns/call   three streams GiB/s  ns/call   @node-rs/crc32 GiB/s  ns/call   native / @node-rs",
);
for (const size of [100, 1024, 16 * 1024, 256 * 1024, 1 << 20]) {
  const data = source.subarray(0, size);
  const native = measure(crc32c, data);
  const streams = measure(crc32cThreeStreams, data);
  const fallback = measure((bytes) => nodeRs.crc32c(bytes), data);
  console.log(
    [
      String(size).padEnd(10),
      native.gibPerSecond.toFixed(2).padStart(13),
      native.nsPerCall.toFixed(0).padStart(9),
      streams.gibPerSecond.toFixed(2).padStart(21),
      streams.nsPerCall.toFixed(0).padStart(9),
      fallback.gibPerSecond.toFixed(2).padStart(22),
      fallback.nsPerCall.toFixed(0).padStart(9),
      `${(native.gibPerSecond / fallback.gibPerSecond).toFixed(1)}x`.padStart(20),
    ].join(" "),
  );
}
