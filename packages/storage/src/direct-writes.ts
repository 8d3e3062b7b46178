/**
 * Appends bypass the page cache (O_DIRECT) when a node asks for it: a buffered write costs the broker a
 * copy into the page cache, the page cache's bookkeeping, writeback in fdatasync and, within a memory
 * limit, reclaim, which together were about half of its CPU per produced byte. A direct write hands the
 * disk the bytes from an aligned staging buffer instead. Off by default: a direct write waits for the
 * disk, so acks=1 answers wait for it too, and on a disk with stalls the acks=1 p99 suffers
 * (docs/architecture.md, "Storage"; docs/benchmarks.md).
 */

/** File offsets and lengths of direct writes are multiples of this (a page; any logical block divides it). */
export const DIRECT_WRITE_ALIGNMENT = 4096;
/**
 * Below this many whole pages, an append goes through the page cache: a direct write costs up to three
 * calls instead of one and waits for the disk, which at half the maximum rate cost more CPU and latency
 * than it saved (docs/benchmarks.md).
 */
export const DIRECT_WRITE_MIN_BYTES = 512 * 1024;
/** Staging buffers all have this size, so that any append can reuse any of them; a write takes several. */
export const DIRECT_WRITE_CHUNK_BYTES = 256 * 1024;
/** One direct write carries at most this many staging buffers; larger appends take several writes. */
export const DIRECT_WRITE_MAX_CHUNKS = 64;

const WASM_PAGE_BYTES = 64 * 1024;
const CHUNK_PAGES = DIRECT_WRITE_CHUNK_BYTES / WASM_PAGE_BYTES;
// The compile target's libraries leave out WebAssembly's types; this module needs only its memory.
declare const WebAssembly: {
  Memory: new (descriptor: { initial: number; maximum?: number }) => { buffer: ArrayBuffer };
};
const DEFAULT_MAX_STAGING_BYTES = 8 * 1024 * 1024;

export interface DirectWritesOptions {
  /** True lets large appends bypass the page cache (log.direct.io.enable); off unless asked for. */
  enabled?: boolean;
  /** Staging memory of the node, allocated at the first direct write and kept (at least one chunk). */
  maxStagingBytes?: number;
}

/**
 * The node's switch for direct writes and its pool of aligned staging buffers. Direct writes need
 * memory aligned to the device's logical block size, which a Buffer does not promise; WebAssembly
 * memory is allocated in whole pages, so its buffers always are. The first sign that the file system
 * refuses direct writes (EINVAL when opening or writing) turns them off for the node.
 */
export class DirectWrites {
  /** Appended bytes by how they reached the file; appends that found no free staging buffers. */
  readonly stats = { directBytes: 0, pageCacheBytes: 0, stagingShortfalls: 0 };
  private readonly appendListeners: Array<(directBytes: number, pageCacheBytes: number) => void> = [];
  private readonly writeTimeListeners: Array<(seconds: number) => void> = [];
  private enabledValue: boolean;
  private readonly maxChunks: number;
  /** Free staging chunks; undefined until the first direct write allocates them all. */
  private free: Buffer[] | undefined;
  private readonly disabledListeners: Array<(reason: string) => void> = [];

  constructor(options: DirectWritesOptions = {}) {
    this.enabledValue = options.enabled ?? false;
    this.maxChunks = Math.max(
      1,
      Math.floor((options.maxStagingBytes ?? DEFAULT_MAX_STAGING_BYTES) / DIRECT_WRITE_CHUNK_BYTES),
    );
  }

  get enabled(): boolean {
    return this.enabledValue;
  }

  /** Called once if the file system turns out to refuse direct writes. */
  onDisabled(listener: (reason: string) => void): void {
    this.disabledListeners.push(listener);
  }

  /** Called after every append with how many of its bytes were written direct and through the page cache. */
  onAppend(listener: (directBytes: number, pageCacheBytes: number) => void): void {
    this.appendListeners.push(listener);
  }

  /**
   * Called after every append's write to its segment file with how long it took, in seconds: from the
   * call, which may wait for a thread of libuv's pool, to its end, direct or through the page cache.
   */
  onAppendWritten(listener: (seconds: number) => void): void {
    this.writeTimeListeners.push(listener);
  }

  /** @internal Times one append's write (LogSegment). */
  recordAppendWritten(seconds: number): void {
    for (const listener of this.writeTimeListeners) listener(seconds);
  }

  /** @internal Counts one append (LogSegment). */
  recordAppend(directBytes: number, pageCacheBytes: number): void {
    this.stats.directBytes += directBytes;
    this.stats.pageCacheBytes += pageCacheBytes;
    for (const listener of this.appendListeners) listener(directBytes, pageCacheBytes);
  }

  /** Stops direct writes for the node (the caller writes the failed append through the page cache). */
  disable(reason: string): void {
    if (!this.enabledValue) return;
    this.enabledValue = false;
    this.free = [];
    for (const listener of this.disabledListeners) listener(reason);
  }

  /**
   * `count` aligned staging buffers of DIRECT_WRITE_CHUNK_BYTES each, or undefined when fewer are free
   * (the append then goes through the page cache instead of waiting). Give them back once their write
   * is done.
   */
  takeStaging(count: number): Buffer[] | undefined {
    if (this.free === undefined) this.free = this.allocateStaging();
    if (this.free.length < count) {
      this.stats.stagingShortfalls++;
      return undefined;
    }
    return this.free.splice(this.free.length - count);
  }

  giveStaging(chunks: Buffer[]): void {
    if (this.enabledValue) this.free?.push(...chunks);
  }

  /**
   * All of the node's staging at once, as one WebAssembly memory cut into chunks: one reservation of
   * address space (each memory reserves several GiB for its guard region), and memory becomes resident
   * only as chunks are first written. Chunks are reused last-in first-out, so a light load touches few.
   */
  private allocateStaging(): Buffer[] {
    const pages = this.maxChunks * CHUNK_PAGES;
    let memory: Buffer;
    try {
      memory = Buffer.from(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer);
    } catch (error) {
      this.disable(`no memory for the staging buffers of direct writes (${(error as Error).message})`);
      return [];
    }
    const chunks: Buffer[] = [];
    for (let index = this.maxChunks - 1; index >= 0; index--) {
      chunks.push(memory.subarray(index * DIRECT_WRITE_CHUNK_BYTES, (index + 1) * DIRECT_WRITE_CHUNK_BYTES));
    }
    return chunks;
  }
}

/** True for the error a file system gives when it cannot do a direct write as asked. */
export function refusesDirectWrites(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "EINVAL";
}
