import type { FileHandle } from "node:fs/promises";
import { platform } from "node:os";
import { loadNativeAddon } from "./native-addon.js";

/**
 * fsync and fdatasync on threads of their own (packages/storage/native/sync-threads.c) rather than libuv's
 * pool, whose threads `raftka start` puts under SCHED_BATCH: a pool thread whose fsync ended then waited for
 * a CPU on busy machines before the event loop heard of it, the fsync p99 at half rate up to about double
 * (docs/benchmarks.md, "Helper threads under SCHED_BATCH"). Fsyncs also stop holding pool threads that
 * segment writes wait for.
 */

interface NativeBinding {
  sync(fd: number, metadata: boolean): Promise<void>;
}

const native: { binding?: NativeBinding; missing?: string } =
  platform() === "linux"
    ? loadNativeAddon<NativeBinding>(
        import.meta.url,
        "../build/sync-threads.node",
        "packages/storage/build/sync-threads.node",
      )
    : { missing: `fsyncs on threads of their own are built for Linux, and this node runs on ${platform()}` };

export const syncThreads = {
  /** Why fsyncs run on libuv's pool on this node; undefined where they have threads of their own. */
  unavailableReason: native.missing,
  /** Only Linux has them; elsewhere libuv's pool is not put under SCHED_BATCH either. */
  availableOnThisPlatform: platform() === "linux",
};

/** fsync (`metadata`) or fdatasync of an open file: on the sync threads where built, else on libuv's pool. */
export function syncHandle(handle: FileHandle, metadata: boolean): Promise<void> {
  const binding = native.binding;
  // A closed handle's descriptor is -1: Node's own call then fails the way callers expect (EBADF).
  if (binding !== undefined && handle.fd >= 0) return binding.sync(handle.fd, metadata);
  return metadata ? handle.sync() : handle.datasync();
}
