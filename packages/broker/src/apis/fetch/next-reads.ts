import type { ReadOptions } from "@raftka/storage";
import type { ReplicatedLog, ReplicatedReadResult } from "../../partitions/replicated-log.js";
import type { BufferPool } from "../../server/buffer-pool.js";
import { ReadAheadMemory } from "./read-ahead-memory.js";

export interface NextReadsOptions {
  /**
   * Partitions whose next read the node holds at most at once. Each read has a slot of its own, and the
   * node twice as many slots: the reads claimed by the Fetches whose answers go out hold theirs meanwhile.
   */
  readonly reads?: number;
  /** A slot's size: a read ahead covers at most this less READ_OVERHEAD_BYTES. */
  readonly slotBytes?: number;
  /** How long a read waits for its Fetch before its memory goes back. */
  readonly unclaimedMs?: number;
  /** True while reads ahead should wait: the disk is busy with the writers' fsyncs (FsyncContention). */
  readonly holdBack?: () => boolean;
  /** Told whether each read was claimed by its Fetch or given back unused, or not started (held back). */
  readonly onOutcome?: ((outcome: "claimed" | "unused" | "held_back") => void) | undefined;
}

/**
 * What a read of `maxBytes` asks its allocator for beyond them: the walk from the index entry before the
 * offset (index.interval.bytes, 4 KiB by default) and the alignment room of a direct read (12 KiB).
 */
const READ_OVERHEAD_BYTES = 16 * 1024;

const DEFAULT_READS = 8;
/** Slots for a partition limit of up to 4 MiB (clients default to 1 MiB); a larger limit reads 4 MiB ahead. */
const DEFAULT_SLOT_BYTES = 4 * 1024 * 1024 + 64 * 1024;
/** A consumer's next Fetch follows its last answer within milliseconds; one that pauses longer loses little. */
const DEFAULT_UNCLAIMED_MS = 500;

/** What a read ahead returned, and whether any of it came from the disk. */
export interface NextReadResult {
  readonly read: ReplicatedReadResult;
  readonly fromDisk: boolean;
}

/** A read started for a partition's next Fetch. */
export interface NextRead {
  readonly fetchOffset: number;
  /** Undefined when the read failed: the Fetch reads again at its turn and meets the error itself. */
  readonly outcome: Promise<NextReadResult | undefined>;
  /** Gives the read's memory back once the read has finished; call when nothing refers to its records. */
  release(): void;
}

interface Held extends NextRead {
  readonly expiry: NodeJS.Timeout;
}

/**
 * Reads a streaming consumer's next range while its current answer goes out. A consumer (librdkafka,
 * kafkajs) sends its next Fetch only once the last answer has arrived, so without this a consumer
 * catching up from disk waits for the disk and the network one after the other: each Fetch reads its
 * partitions (from disk, past the page cache), then sends them, and only then is the next range read.
 * The next Fetch at that offset takes the read's memory as it is (no copy); a Fetch at another offset,
 * or none within `unclaimedMs`, gives it back. What is read never reaches the high watermark of the time
 * of the read, and what is below it is committed and never changes, so a later Fetch can answer it.
 */
export class NextReads {
  /** Reads started, claimed by the Fetch they were for, given back unused, and not started while held back. */
  readonly stats = { started: 0, claimed: 0, unused: 0, heldBack: 0 };
  private readonly held = new Map<ReplicatedLog, Held>();
  private readonly memory: ReadAheadMemory;
  private readonly unclaimedMs: number;
  private readonly reads: number;

  constructor(
    private readonly pool: BufferPool,
    private readonly options: NextReadsOptions = {},
  ) {
    this.reads = options.reads ?? DEFAULT_READS;
    this.memory = new ReadAheadMemory(2 * this.reads, options.slotBytes ?? DEFAULT_SLOT_BYTES);
    this.unclaimedMs = options.unclaimedMs ?? DEFAULT_UNCLAIMED_MS;
  }

  /** Partitions with a next read held. */
  get size(): number {
    return this.held.size;
  }

  /** Slots whose memory is resident now: in use, or given back less than a moment ago. */
  get residentSlots(): number {
    return this.memory.residentSlots;
  }

  /**
   * Called when a Fetch answered `answeredBytes` of `log`, read from the disk, up to `nextOffset` with a
   * partition limit of `maxBytes`: a consumer that got at least half its limit and has more to read below
   * `highWatermark` is streaming, and its next range is read now, if a slot is free. (Data in the page
   * cache reads in a fraction of the time an answer takes to go out: reading it ahead would only hold
   * memory.)
   */
  startAfter(
    log: ReplicatedLog,
    nextOffset: number,
    maxBytes: number,
    answeredBytes: number,
    highWatermark: number,
  ): void {
    if (answeredBytes < maxBytes / 2 || nextOffset >= highWatermark) return;
    if (this.held.has(log) || this.held.size >= this.reads) return;
    if (this.options.holdBack?.() === true) {
      this.stats.heldBack += 1;
      this.options.onOutcome?.("held_back");
      return;
    }
    const slot = this.memory.take();
    if (slot === undefined) return;
    const extra: Buffer[] = [];
    let slotUnused = true;
    // The slot, and the pool for a second read (an index entry far before the offset) that no longer fits.
    const allocate = (size: number) => {
      if (slotUnused && size <= slot.length) {
        slotUnused = false;
        return slot.subarray(0, size);
      }
      const buffer = this.pool.take(size);
      extra.push(buffer);
      return buffer;
    };
    // Never a batch beyond the limit: the Fetch at its turn may have less room than this read assumed.
    let fromDisk = false;
    const options: ReadOptions = {
      minOneBatch: false,
      onDirectRead: () => {
        fromDisk = true;
      },
    };
    const readBytes = Math.min(maxBytes, slot.length - READ_OVERHEAD_BYTES);
    const outcome = log.read(nextOffset, readBytes, allocate, options).then(
      (read) => ({ read, fromDisk }),
      () => undefined,
    );
    const release = () => {
      void outcome.then(() => {
        this.memory.give(slot);
        for (const buffer of extra) this.pool.give(buffer);
      });
    };
    const expiry = setTimeout(() => this.drop(log), this.unclaimedMs);
    expiry.unref();
    this.stats.started += 1;
    this.held.set(log, { fetchOffset: nextOffset, outcome, release, expiry });
  }

  /**
   * The read held for `log` if it started at `fetchOffset`; the caller then releases it once nothing
   * refers to its records. A read held for another offset is given back: that consumer went elsewhere.
   */
  claim(log: ReplicatedLog, fetchOffset: number): NextRead | undefined {
    const held = this.held.get(log);
    if (held === undefined) return undefined;
    this.forget(log, held);
    if (held.fetchOffset !== fetchOffset) {
      this.giveBackUnused(held);
      return undefined;
    }
    this.stats.claimed += 1;
    this.options.onOutcome?.("claimed");
    return held;
  }

  /** Gives every held read's memory back (the node stops). */
  close(): void {
    for (const [log, held] of this.held) {
      this.forget(log, held);
      this.giveBackUnused(held);
    }
    this.memory.close();
  }

  private drop(log: ReplicatedLog): void {
    const held = this.held.get(log);
    if (held === undefined) return;
    this.forget(log, held);
    this.giveBackUnused(held);
  }

  private forget(log: ReplicatedLog, held: Held): void {
    clearTimeout(held.expiry);
    this.held.delete(log);
  }

  private giveBackUnused(held: Held): void {
    this.stats.unused += 1;
    this.options.onOutcome?.("unused");
    held.release();
  }
}
