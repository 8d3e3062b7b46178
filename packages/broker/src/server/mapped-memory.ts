import { platform } from "node:os";
import { loadNativeAddon } from "@raftka/storage";

/**
 * Anonymous mappings whose pages the node hands back to the system at once (native/mapped-memory.c).
 * Memory from malloc's heap or V8 goes back only after V8 collects its objects (old ones at the next
 * mark-compact, which may be minutes away) and glibc trims the holes they leave.
 */
export interface MappedMemory {
  /** A Buffer over a new anonymous mapping of `bytes`, page-aligned; unmapped once V8 collects it. */
  map(bytes: number): Buffer;
  /** Drops the pages of a Buffer from `map`: its memory is no longer resident, and reads as zeros. */
  release(buffer: Buffer): void;
}

const loaded: { binding?: MappedMemory; missing?: string } =
  platform() === "linux"
    ? loadNativeAddon<MappedMemory>(
        import.meta.url,
        "../../build/mapped-memory.node",
        "packages/broker/build/mapped-memory.node",
      )
    : {
        missing: `anonymous mappings whose pages can be dropped are Linux's, and this node runs on ${platform()}`,
      };

/** The addon, or undefined where it is missing (see `mappedMemoryUnavailableReason`). */
export const mappedMemory: MappedMemory | undefined = loaded.binding;
/** Why this node has no mapped memory; undefined where it has. */
export const mappedMemoryUnavailableReason: string | undefined = loaded.missing;
/** False where the addon is never built (not Linux): its absence there is no fault to warn about. */
export const mappedMemoryAvailableOnThisPlatform = platform() === "linux";
