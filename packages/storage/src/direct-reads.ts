import type { FileHandle } from "node:fs/promises";
import { platform } from "node:os";
import { readFully } from "./fs-util.js";
import { loadNativeAddon } from "./native-addon.js";

/**
 * Reads of log data that is not in the page cache bypass it (O_DIRECT): a consumer catching up on old
 * data otherwise costs the broker readahead, new page-cache pages, a copy and, within a memory limit,
 * reclaim (several times the kernel CPU per byte, docs/benchmarks.md), and pushes out the recent data
 * that consumers close behind the producers read. Data in the page cache, or only partly out of it, is
 * read through it as before. On by default (log.direct.reads.enable).
 */

/** Room a direct read needs beyond its length in the buffer it is given, to start on aligned memory. */
export const DIRECT_READ_SLACK_BYTES = 3 * 4096;

interface NativeRead {
  /** The bytes read are buffer[start, start + bytes). */
  start: number;
  bytes: number;
  direct: boolean;
  /** errno name when the read could not go direct for a reason that will not pass (old kernel, file system). */
  directUnavailable?: string;
}

interface NativeBinding {
  read(fd: number, buffer: Buffer, position: number, length: number): Promise<NativeRead>;
}

/** cachestat and O_DIRECT reads are Linux's; elsewhere the addon is not built (scripts/build-native.mjs). */
const availableOnThisPlatform = platform() === "linux";

function loadNative(): { binding?: NativeBinding; missing?: string } {
  if (!availableOnThisPlatform) {
    return {
      missing: `direct reads use Linux's cachestat and O_DIRECT, and this node runs on ${platform()}`,
    };
  }
  return loadNativeAddon(
    import.meta.url,
    "../build/direct-reads.node",
    "packages/storage/build/direct-reads.node",
  );
}

const native = loadNative();

export interface DirectReadsOptions {
  /** False reads everything through the page cache (log.direct.reads.enable); on unless asked otherwise. */
  enabled?: boolean;
}

/**
 * The node's switch for direct reads and their counts. The first sign that the kernel or the file
 * system cannot do them (no cachestat before Linux 6.5, a file system without O_DIRECT) turns them off
 * for the node; reads go on through the page cache.
 */
export class DirectReads {
  /** False where direct reads cannot exist (not Linux): their absence there is no fault to warn about. */
  static readonly availableOnThisPlatform = availableOnThisPlatform;
  /** Bytes read from log files, by how they were read. */
  readonly stats = { directBytes: 0, pageCacheBytes: 0 };
  private enabledValue: boolean;
  private unavailable: string | undefined;
  private readonly readListeners: Array<(directBytes: number, pageCacheBytes: number) => void> = [];
  private readonly disabledListeners: Array<(reason: string) => void> = [];

  constructor(options: DirectReadsOptions = {}) {
    this.enabledValue = (options.enabled ?? true) && native.binding !== undefined;
    this.unavailable = options.enabled === false ? undefined : native.missing;
  }

  /** True while reads of uncached data go direct. */
  get enabled(): boolean {
    return this.enabledValue;
  }

  /** Why direct reads were asked for and cannot be done on this node (no addon, platform); else undefined. */
  get unavailableReason(): string | undefined {
    return this.unavailable;
  }

  /** Called once if the kernel or a file system turns out unable to read direct. */
  onDisabled(listener: (reason: string) => void): void {
    this.disabledListeners.push(listener);
  }

  /** Called after every read with how many of its bytes came direct and through the page cache. */
  onRead(listener: (directBytes: number, pageCacheBytes: number) => void): void {
    this.readListeners.push(listener);
  }

  /**
   * Up to `length` bytes of `handle`'s file from `position`, in a buffer from `allocate` (asked for
   * DIRECT_READ_SLACK_BYTES more than `length` when the read may go direct); fewer only at the end of
   * the file. `stats`, `onRead` and, for this read alone, `onDirect` tell how they were read.
   */
  async read(
    handle: FileHandle,
    allocate: (size: number) => Buffer,
    position: number,
    length: number,
    onDirect?: (bytes: number) => void,
  ): Promise<Buffer> {
    const binding = native.binding;
    if (!this.enabledValue || binding === undefined || length === 0) {
      const buffer = allocate(length);
      const bytes = await readFully(handle, buffer, 0, length, position);
      this.record(0, bytes);
      return buffer.subarray(0, bytes);
    }
    const buffer = allocate(length + DIRECT_READ_SLACK_BYTES);
    const result = await binding.read(handle.fd, buffer, position, length);
    if (result.directUnavailable !== undefined) this.disable(unavailableBecause(result.directUnavailable));
    if (result.direct) {
      this.record(result.bytes, 0);
      onDirect?.(result.bytes);
    } else this.record(0, result.bytes);
    return buffer.subarray(result.start, result.start + result.bytes);
  }

  private record(directBytes: number, pageCacheBytes: number): void {
    this.stats.directBytes += directBytes;
    this.stats.pageCacheBytes += pageCacheBytes;
    for (const listener of this.readListeners) listener(directBytes, pageCacheBytes);
  }

  private disable(reason: string): void {
    if (!this.enabledValue) return;
    this.enabledValue = false;
    this.unavailable = reason;
    for (const listener of this.disabledListeners) listener(reason);
  }
}

/** What an errno that stops direct reads means, and what to do about it. */
function unavailableBecause(code: string): string {
  if (code === "ENOSYS") {
    return "the kernel has no cachestat (Linux 6.5 and later have it), so uncached data cannot be told apart";
  }
  if (code === "ENOENT" || code === "EACCES") {
    return `/proc/self/fd cannot be opened (${code}): a direct read reopens the log file through it; mount /proc in the node's mount namespace`;
  }
  return `the file system refused a direct read (${code})`;
}
