import { mappedMemory } from "./mapped-memory.js";

/** Pooled buffers come in multiples of this, so that requests of slightly different sizes share them. */
const SIZE_CLASS_BYTES = 64 * 1024;
/** Larger buffers are rare (a partition limit or a Produce request above the usual 1 MiB) and not pooled. */
const MAX_POOLED_BYTES = 8 * 1024 * 1024;
/** Free bytes the pool keeps with their pages; what a burst gives back beyond this loses its pages. */
const DEFAULT_IDLE_LIMIT_BYTES = 32 * 1024 * 1024;
/**
 * Address space the pool keeps in free buffers whose pages went back: costs no memory, and saves a new
 * mapping when a burst comes back.
 */
const COLD_LIMIT_BYTES = 256 * 1024 * 1024;
/** A pool nobody took from for this long lets its free buffers' pages go: an idle node gives the memory back. */
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

/** Where a pool's buffers come from, and how the pages of one it keeps unused go back to the system. */
export interface PoolMemory {
  allocate(bytes: number): Buffer;
  /** Drops the pages of a whole buffer from `allocate` (it reads as zeros after); absent where it cannot. */
  release?(buffer: Buffer): void;
}

/** Told what the pool does, for the node's metrics. */
export interface BufferPoolObserver {
  /** A buffer handed out: a free one with its pages, a free one whose pages had gone, or a new one. */
  took?(source: "free" | "released" | "new"): void;
  /** The pages of a free buffer of `bytes` went back to the system. */
  released?(bytes: number): void;
}

/**
 * Anonymous mappings where the addon is built (their pages go back the moment the pool lets a buffer
 * go), malloc's heap otherwise.
 */
export function defaultPoolMemory(): PoolMemory {
  const mapped = mappedMemory;
  if (mapped === undefined) return { allocate: (bytes) => Buffer.allocUnsafeSlow(bytes) };
  return { allocate: (bytes) => mapped.map(bytes), release: (buffer) => mapped.release(buffer) };
}

/**
 * The node's reusable large buffers: those Fetch reads records into (back once the response is written)
 * and the frames large Produce requests arrive in (back once their records are written). A consumer or
 * producers moving a gigabyte per second otherwise allocate that much in fresh buffers, which V8 counts
 * as external memory: it answered with a scavenge every few milliseconds and a mark-compact every ~70 MB,
 * about 40% of the broker's CPU while consuming (docs/benchmarks.md).
 *
 * Where the mapped-memory addon is built, free buffers beyond the idle limit, and all of them once the
 * pool is idle, keep their mapping but not their pages ("cold"). Left to V8 instead, each stayed
 * resident until a mark-compact, and its memory then until glibc trimmed it: with 100 partitions under
 * load the broker's RSS was 100 MiB or more above what it held (docs/benchmarks.md, "Pooled buffers in
 * mappings of their own").
 */
export class BufferPool {
  /** Free buffers with their pages, the one given back last at the end. */
  private readonly free: Buffer[] = [];
  /** Free buffers whose pages went back to the system, the one released last at the end. */
  private readonly cold: Buffer[] = [];
  /** Buffers this pool made (a small `Buffer.allocUnsafe` shares Node's pool and must never come back). */
  private readonly own = new WeakSet<ArrayBuffer>();
  /** Buffers handed out and not yet given back: giving one back twice would hand it out twice. */
  private readonly leased = new WeakSet<ArrayBuffer>();
  private idleBytes = 0;
  private coldBytes = 0;
  private tookSinceCheck = false;
  private readonly idleCheck: NodeJS.Timeout;

  constructor(
    private readonly idleLimitBytes = DEFAULT_IDLE_LIMIT_BYTES,
    private readonly memory: PoolMemory = defaultPoolMemory(),
    private readonly observer: BufferPoolObserver = {},
  ) {
    this.idleCheck = setInterval(() => {
      if (!this.tookSinceCheck) this.clear();
      this.tookSinceCheck = false;
    }, IDLE_RELEASE_MS);
    this.idleCheck.unref();
  }

  /**
   * A buffer of exactly `size` bytes: the front of the smallest free one that fits and is at most twice
   * as large (frames and reads vary in size; an exact match only would leave most free buffers unused),
   * one with its pages first, or a fresh one.
   */
  take(size: number): Buffer {
    if (size === 0 || size > MAX_POOLED_BYTES) return Buffer.allocUnsafe(size);
    this.tookSinceCheck = true;
    const capacity = Math.ceil(size / SIZE_CLASS_BYTES) * SIZE_CLASS_BYTES;
    let whole = takeBestFit(this.free, capacity);
    if (whole !== undefined) {
      this.idleBytes -= whole.length;
      this.observer.took?.("free");
    } else {
      whole = takeBestFit(this.cold, capacity);
      if (whole !== undefined) {
        this.coldBytes -= whole.length;
        this.observer.took?.("released");
      } else {
        whole = this.memory.allocate(capacity);
        this.own.add(whole.buffer as ArrayBuffer);
        this.observer.took?.("new");
      }
    }
    this.leased.add(whole.buffer as ArrayBuffer);
    return whole.subarray(0, size);
  }

  /**
   * Gives back what `take` returned; only once nothing reads into it or writes from it any more. Over
   * the idle limit, the buffers free the longest lose their pages first: the latest ones fit what the
   * node does now.
   */
  give(buffer: Buffer): void {
    const backing = buffer.buffer as ArrayBuffer;
    if (!this.own.has(backing) || !this.leased.has(backing)) return;
    this.leased.delete(backing);
    const capacity = backing.byteLength;
    if (capacity > this.idleLimitBytes) {
      this.makeCold(Buffer.from(backing, 0, capacity));
      return;
    }
    while (this.idleBytes + capacity > this.idleLimitBytes) {
      const oldest = this.free.shift()!;
      this.idleBytes -= oldest.length;
      this.makeCold(oldest);
    }
    this.free.push(Buffer.from(backing, 0, capacity));
    this.idleBytes += capacity;
  }

  /** Bytes of free buffers with their pages. */
  get idle(): number {
    return this.idleBytes;
  }

  /** Bytes of free buffers whose pages went back (kept for their mappings). */
  get coldIdle(): number {
    return this.coldBytes;
  }

  /** Lets the pages of every free buffer go. */
  clear(): void {
    for (const buffer of this.free.splice(0)) this.makeCold(buffer);
    this.idleBytes = 0;
  }

  close(): void {
    clearInterval(this.idleCheck);
    this.clear();
    this.cold.length = 0;
    this.coldBytes = 0;
  }

  /**
   * Drops a free buffer's pages and keeps it for a later take, up to COLD_LIMIT_BYTES of them; the
   * oldest beyond that go to the garbage collector, which unmaps them. Without a way to drop pages the
   * buffer goes to the garbage collector at once, as it always did.
   */
  private makeCold(buffer: Buffer): void {
    if (this.memory.release === undefined) return;
    this.memory.release(buffer);
    this.observer.released?.(buffer.length);
    this.cold.push(buffer);
    this.coldBytes += buffer.length;
    while (this.coldBytes > COLD_LIMIT_BYTES) this.coldBytes -= this.cold.shift()!.length;
  }
}

/** Removes and returns the smallest buffer in `list` of at least `capacity` and at most twice that. */
function takeBestFit(list: Buffer[], capacity: number): Buffer | undefined {
  let best = -1;
  for (let index = list.length - 1; index >= 0; index--) {
    const length = list[index]!.length;
    if (length < capacity || length > 2 * capacity) continue;
    if (best < 0 || length < list[best]!.length) best = index;
    if (length === capacity) break;
  }
  return best < 0 ? undefined : list.splice(best, 1)[0];
}
