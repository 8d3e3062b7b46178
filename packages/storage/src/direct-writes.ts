/**
 * Appends bypass the page cache (O_DIRECT) when a node allows it: a buffered write costs the broker a
 * copy into the page cache, the page cache's bookkeeping, writeback in fdatasync and, within a memory
 * limit, reclaim, which together were about half of its CPU per produced byte. A direct write hands the
 * disk the bytes from an aligned staging buffer instead (docs/architecture.md, "Storage").
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
  /** False writes every append through the page cache (log.direct.io.enable=false). */
  enabled?: boolean;
  /** Staging memory the node may hold, in use and idle together (it is kept once allocated). */
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
  private enabledValue: boolean;
  private disabledBecause: string | undefined;
  private readonly maxChunks: number;
  private allocatedChunks = 0;
  private readonly free: Buffer[] = [];
  private readonly disabledListeners: Array<(reason: string) => void> = [];

  constructor(options: DirectWritesOptions = {}) {
    this.enabledValue = options.enabled ?? true;
    this.maxChunks = Math.floor(
      (options.maxStagingBytes ?? DEFAULT_MAX_STAGING_BYTES) / DIRECT_WRITE_CHUNK_BYTES,
    );
    if (!this.enabledValue) this.disabledBecause = "log.direct.io.enable is false";
  }

  get enabled(): boolean {
    return this.enabledValue;
  }

  /** Why appends go through the page cache, if they do. */
  get disabledReason(): string | undefined {
    return this.disabledBecause;
  }

  /** Called once if the file system turns out to refuse direct writes. */
  onDisabled(listener: (reason: string) => void): void {
    this.disabledListeners.push(listener);
  }

  /** Called after every append with how many of its bytes were written direct and through the page cache. */
  onAppend(listener: (directBytes: number, pageCacheBytes: number) => void): void {
    this.appendListeners.push(listener);
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
    this.disabledBecause = reason;
    this.free.length = 0;
    for (const listener of this.disabledListeners) listener(reason);
  }

  /**
   * `count` aligned staging buffers of DIRECT_WRITE_CHUNK_BYTES each, or undefined when that would take
   * the node past its staging limit (the append then goes through the page cache instead of waiting).
   * Give them back once their write is done.
   */
  takeStaging(count: number): Buffer[] | undefined {
    if (this.free.length + (this.maxChunks - this.allocatedChunks) < count) {
      this.stats.stagingShortfalls++;
      return undefined;
    }
    const chunks = this.free.splice(Math.max(0, this.free.length - count));
    while (chunks.length < count) {
      chunks.push(Buffer.from(new WebAssembly.Memory({ initial: CHUNK_PAGES, maximum: CHUNK_PAGES }).buffer));
      this.allocatedChunks++;
    }
    return chunks;
  }

  giveStaging(chunks: Buffer[]): void {
    if (!this.enabledValue) return;
    for (const chunk of chunks) this.free.push(chunk);
  }
}

/** True for the error a file system gives when it cannot do a direct write as asked. */
export function refusesDirectWrites(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "EINVAL";
}

let sharedDirectWrites: DirectWrites | undefined;

/** The process-wide switch logs use unless given one: one node, one policy. */
export function defaultDirectWrites(): DirectWrites {
  sharedDirectWrites ??= new DirectWrites();
  return sharedDirectWrites;
}
