import { createRequire } from "node:module";
import nodeRs from "@node-rs/crc32";

/** CRC-32C of `data`, continuing from `previous` (the CRC of the bytes before it; 0 for none). */
export type Crc32c = (data: Uint8Array, previous?: number) => number;

interface NativeBinding {
  crc32c?: Crc32c;
  crc32cThreeStreams?: Crc32c;
  folds?: boolean;
}

function loadNative(): NativeBinding {
  if (process.env.RAFTKA_CRC32C_NATIVE === "false") return {};
  try {
    return createRequire(import.meta.url)("../build/crc32c.node") as NativeBinding;
  } catch {
    // Not built (not x86-64, or no compiler or headers when `pnpm build` ran: it said why).
    return {};
  }
}

const binding = loadNative();
const native = binding.crc32c;

/**
 * True where the native build folds inputs of 1 KiB and more with AVX-512 carry-less multiplication
 * (VPCLMULQDQ): here 2.5-3.5 times as fast as three crc32 streams from 16 KiB up, 1.5 times at 1 KiB
 * (scripts/bench/crc32c.mjs).
 */
export const crc32cFolds = binding.folds === true;

/** @internal The native build without folding, for tests and the benchmark to compare; undefined where not built. */
export const crc32cThreeStreams: Crc32c | undefined = binding.crc32cThreeStreams;

/**
 * Which implementation `crc32c` is: the native one (three crc32 instruction streams at once, long inputs
 * folded where `crc32cFolds`; packages/crc32c/native/crc32c.c), or @node-rs/crc32 where that was not built
 * or the CPU lacks SSE 4.2. `RAFTKA_CRC32C_NATIVE=false` picks the latter, to compare.
 */
export const crc32cImplementation: "native-sse4.2" | "@node-rs/crc32" =
  native === undefined ? "@node-rs/crc32" : "native-sse4.2";

export const crc32c: Crc32c = native ?? ((data, previous) => nodeRs.crc32c(data, previous) >>> 0);
