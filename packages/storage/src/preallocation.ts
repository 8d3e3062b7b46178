import { platform } from "node:os";
import { loadNativeAddon } from "./native-addon.js";

interface NativeBinding {
  preallocate(fd: number, offset: number, length: number): Promise<void>;
}

/** fallocate(FALLOC_FL_KEEP_SIZE) is Linux's; elsewhere the addon is not built (scripts/build-native.mjs). */
const availableOnThisPlatform = platform() === "linux";

function loadNative(): { binding?: NativeBinding; missing?: string } {
  if (!availableOnThisPlatform) {
    return { missing: `block reservation uses Linux's fallocate, and this node runs on ${platform()}` };
  }
  return loadNativeAddon(
    import.meta.url,
    "../build/preallocate.node",
    "packages/storage/build/preallocate.node",
  );
}

const native = loadNative();
let unsupported: string | undefined = native.missing;
const disabledListeners = new Set<(reason: string) => void>();

/**
 * Reserves disk blocks for the byte range of a segment file ahead of its appends, without moving the
 * end of the file (fallocate with FALLOC_FL_KEEP_SIZE). Appends into reserved blocks skip ext4's delayed
 * allocation: about a fifth less kernel CPU per byte written (docs/benchmarks.md). Purely an
 * optimisation: where it cannot be done the appends are the same, only dearer.
 */
export const preallocation = {
  /** False where reservations cannot exist (not Linux): their absence there is no fault to warn about. */
  availableOnThisPlatform,

  /** Why blocks are not reserved on this node (no addon, or a file system without fallocate); else undefined. */
  get unavailableReason(): string | undefined {
    return unsupported;
  },

  /**
   * Reserves [offset, offset + length) of the file behind `fd`. Resolves false, never throws, when it
   * could not: a file system without fallocate (then it never tries again in this process, and tells
   * `onDisabled` listeners), a full disk, anything else.
   */
  async reserve(fd: number, offset: number, length: number): Promise<boolean> {
    if (unsupported !== undefined || native.binding === undefined) return false;
    try {
      await native.binding.preallocate(fd, offset, length);
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EOPNOTSUPP" || code === "ENOTSUP" || code === "ENOSYS" || code === "EINVAL") {
        unsupported = `the file system refuses fallocate (${code}): segment files use delayed allocation, about a quarter more kernel CPU per byte written`;
        for (const listener of disabledListeners) listener(unsupported);
        return false;
      }
      // Anything else (a full disk, say) is for the append that needs the space to report.
      return false;
    }
  },

  /** Calls `listener` with the reason when a file system refuses reservations (once per process). */
  onDisabled(listener: (reason: string) => void): () => void {
    disabledListeners.add(listener);
    return () => disabledListeners.delete(listener);
  },
};
