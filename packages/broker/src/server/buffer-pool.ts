/** Pooled buffers come in multiples of this, so that requests of slightly different sizes share them. */
const SIZE_CLASS_BYTES = 64 * 1024;
/** Larger buffers are rare (a partition limit or a Produce request above the usual 1 MiB) and not pooled. */
const MAX_POOLED_BYTES = 8 * 1024 * 1024;
/** Free bytes the pool keeps; what a burst gives back beyond this is left to the garbage collector. */
const DEFAULT_IDLE_LIMIT_BYTES = 32 * 1024 * 1024;
/** A pool nobody took from for this long lets its buffers go, so an idle node gives the memory back. */
const IDLE_RELEASE_MS = 5_000;

/** Request frames from this size up (in practice Produce requests) are read into pooled buffers. */
export const POOLED_FRAME_MIN_BYTES = 64 * 1024;

/**
 * Where a connection's FrameReader puts each request: large frames in buffers from `pool`, the rest in
 * plain allocations, since most requests never give their frame back (only Produce does).
 */
export function frameAllocator(pool: BufferPool): (size: number) => Buffer {
  return (size) => (size >= POOLED_FRAME_MIN_BYTES ? pool.take(size) : Buffer.allocUnsafe(size));
}

/**
 * The node's reusable large buffers: those Fetch reads records into (back once the response is written)
 * and the frames large Produce requests arrive in (back once their records are written). A consumer or
 * producers moving a gigabyte per second otherwise allocate that much in fresh buffers, which V8 counts
 * as external memory: it answered with a scavenge every few milliseconds and a mark-compact every ~70 MB,
 * about 40% of the broker's CPU while consuming (docs/benchmarks.md).
 */
export class BufferPool {
  /** Free buffers, the one given back last at the end. */
  private readonly free: Buffer[] = [];
  /** Buffers this pool made (a small `Buffer.allocUnsafe` shares Node's pool and must never come back). */
  private readonly own = new WeakSet<ArrayBuffer>();
  /** Buffers handed out and not yet given back: giving one back twice would hand it out twice. */
  private readonly leased = new WeakSet<ArrayBuffer>();
  private idleBytes = 0;
  private tookSinceCheck = false;
  private readonly idleCheck: NodeJS.Timeout;

  constructor(private readonly idleLimitBytes = DEFAULT_IDLE_LIMIT_BYTES) {
    this.idleCheck = setInterval(() => {
      if (!this.tookSinceCheck) this.clear();
      this.tookSinceCheck = false;
    }, IDLE_RELEASE_MS);
    this.idleCheck.unref();
  }

  /**
   * A buffer of exactly `size` bytes: the front of the smallest free one that fits and is at most twice
   * as large (frames and reads vary in size; an exact match only would leave most free buffers unused),
   * or a fresh one.
   */
  take(size: number): Buffer {
    if (size === 0 || size > MAX_POOLED_BYTES) return Buffer.allocUnsafe(size);
    this.tookSinceCheck = true;
    const capacity = Math.ceil(size / SIZE_CLASS_BYTES) * SIZE_CLASS_BYTES;
    const free = this.free;
    let best = -1;
    for (let index = free.length - 1; index >= 0; index--) {
      const length = free[index]!.length;
      if (length < capacity || length > 2 * capacity) continue;
      if (best < 0 || length < free[best]!.length) best = index;
      if (length === capacity) break;
    }
    let whole: Buffer;
    if (best >= 0) {
      whole = free.splice(best, 1)[0]!;
      this.idleBytes -= whole.length;
    } else {
      whole = Buffer.allocUnsafeSlow(capacity);
      this.own.add(whole.buffer as ArrayBuffer);
    }
    this.leased.add(whole.buffer as ArrayBuffer);
    return whole.subarray(0, size);
  }

  /**
   * Gives back what `take` returned; only once nothing reads into it or writes from it any more. Over
   * the idle limit, the buffers free the longest go first: the latest ones fit what the node does now.
   */
  give(buffer: Buffer): void {
    const backing = buffer.buffer as ArrayBuffer;
    if (!this.own.has(backing) || !this.leased.has(backing)) return;
    this.leased.delete(backing);
    const capacity = backing.byteLength;
    if (capacity > this.idleLimitBytes) return;
    while (this.idleBytes + capacity > this.idleLimitBytes) this.idleBytes -= this.free.shift()!.length;
    this.free.push(Buffer.from(backing, 0, capacity));
    this.idleBytes += capacity;
  }

  get idle(): number {
    return this.idleBytes;
  }

  /** Lets every free buffer go. */
  clear(): void {
    this.free.length = 0;
    this.idleBytes = 0;
  }

  close(): void {
    clearInterval(this.idleCheck);
    this.clear();
  }
}
