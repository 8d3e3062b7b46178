import { createRequire } from "node:module";
import nodeRs from "@node-rs/crc32";

/** CRC-32C of `data`, continuing from `previous` (the CRC of the bytes before it; 0 for none). */
export type Crc32c = (data: Uint8Array, previous?: number) => number;

interface NativeBinding {
  crc32c?: Crc32c;
}

function loadNative(): Crc32c | undefined {
  if (process.env.RAFTKA_CRC32C_NATIVE === "false") return undefined;
  try {
    const binding = createRequire(import.meta.url)("../build/crc32c.node") as NativeBinding;
    return binding.crc32c;
  } catch {
    // Not built (not x86-64, or no compiler or headers when `pnpm build` ran: it said why).
    return undefined;
  }
}

const native = loadNative();

/**
 * Which implementation `crc32c` is: the native one (three crc32 instruction streams at once,
 * packages/crc32c/native/crc32c.c), or @node-rs/crc32 where that was not built or the CPU lacks
 * SSE 4.2. `RAFTKA_CRC32C_NATIVE=false` picks the latter, to compare.
 */
export const crc32cImplementation: "native-sse4.2" | "@node-rs/crc32" =
  native === undefined ? "@node-rs/crc32" : "native-sse4.2";

export const crc32c: Crc32c = native ?? ((data, previous) => nodeRs.crc32c(data, previous) >>> 0);
