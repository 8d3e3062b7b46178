import type { ReadOptions } from "@raftka/storage";
import type { ReplicatedLog, ReplicatedReadResult } from "../../partitions/replicated-log.js";

/** At most this many partition reads of one Fetch are in flight at once. */
const MAX_READS_IN_FLIGHT = 8;
/** A record batch's size field (after the 8-byte base offset) and what the size does not count. */
const BATCH_SIZE_FIELD_OFFSET = 8;
const LOG_OVERHEAD = 12;

/** Reads up to `maxBytes` of whole batches of `log` from `fetchOffset` (a larger first one as `options` say). */
export type PartitionRead = (
  log: ReplicatedLog,
  fetchOffset: number,
  maxBytes: number,
  options: ReadOptions,
) => Promise<ReplicatedReadResult>;

type ReadOutcome = { readonly records: Buffer } | { readonly error: unknown };

/** A partition a Fetch may read, with the most it may return. */
export interface ReadAheadCandidate {
  readonly log: ReplicatedLog;
  readonly fetchOffset: number;
  readonly maxBytes: number;
  /** Read the first batch's header before its bytes (ReadOptions.headerFirst). */
  readonly headerFirst?: boolean;
}

/**
 * Starts a Fetch's partition reads before their turn, so that a consumer catching up from disk waits for
 * several reads at once instead of one after another. A Fetch still answers partitions in request order
 * within its budget: a read started ahead asks for the partition's own limit, never for a first batch
 * beyond it (minOneBatch false: reading it could be for nothing), and `take` cuts its result to the limit
 * the partition has at its turn. That cut equals what a read with the smaller limit returns, because a
 * read returns a prefix of the log from the fetch offset: the whole batches the limit allows. A partition
 * that at its turn must get one batch whatever its size (the first with data, KIP-74) and whose read
 * ahead left it out is read again.
 */
export class PartitionReadAhead {
  private readonly started = new Map<
    number,
    { readonly outcome: Promise<ReadOutcome>; readonly bytes: number }
  >();
  private next = 0;
  private bytesInFlight = 0;

  /**
   * `candidate(i)` is partition i's read, or undefined where partition i reads nothing; `read` reads
   * (Fetch passes one that reads into pooled buffers).
   */
  constructor(
    private readonly count: number,
    private readonly candidate: (index: number) => ReadAheadCandidate | undefined,
    private readonly read: PartitionRead = (log, fetchOffset, maxBytes, options) =>
      log.read(fetchOffset, maxBytes, undefined, options),
  ) {}

  /**
   * Starts reads after partition `index` while the limits of the reads in flight fit in `budget`, so
   * that no read starts that the budget could not take even if every read before it came back full.
   */
  fill(index: number, budget: number): void {
    this.next = Math.max(this.next, index + 1);
    while (this.next < this.count && this.started.size < MAX_READS_IN_FLIGHT) {
      const read = this.candidate(this.next);
      // A read limited to nothing returns nothing: such a partition reads at its turn, if at all.
      if (read !== undefined && read.maxBytes > 0) {
        if (this.bytesInFlight + read.maxBytes > budget) return;
        this.bytesInFlight += read.maxBytes;
        this.started.set(this.next, { outcome: this.start(read), bytes: read.maxBytes });
      }
      this.next += 1;
    }
  }

  /**
   * Partition `index`'s records for `limit` bytes: the read started ahead, cut to `limit`, or a new read
   * with `options` (with minOneBatch, also when the read ahead left out a first batch larger than it).
   */
  async take(
    index: number,
    log: ReplicatedLog,
    fetchOffset: number,
    limit: number,
    options: ReadOptions,
  ): Promise<Buffer> {
    const minOneBatch = options.minOneBatch ?? true;
    const ahead = this.started.get(index);
    if (ahead !== undefined) {
      this.started.delete(index);
      const outcome = await ahead.outcome;
      this.bytesInFlight -= ahead.bytes;
      if ("error" in outcome) throw outcome.error;
      const records = cutToLimit(outcome.records, limit, minOneBatch);
      if (records.length > 0 || !minOneBatch) return records;
    }
    return (await this.read(log, fetchOffset, limit, options)).records;
  }

  /** Drops a read started ahead whose partition, at its turn, reads nothing after all. */
  discard(index: number): void {
    const ahead = this.started.get(index);
    if (ahead === undefined) return;
    this.started.delete(index);
    this.bytesInFlight -= ahead.bytes;
  }

  private start(read: ReadAheadCandidate): Promise<ReadOutcome> {
    const options = { minOneBatch: false, headerFirst: read.headerFirst ?? false };
    return this.read(read.log, read.fetchOffset, read.maxBytes, options).then(
      ({ records }) => ({ records }),
      (error: unknown) => ({ error }),
    );
  }
}

/**
 * The records a read with `limit` returns, from what a read with a larger limit returned: the whole
 * batches that fit in `limit` bytes, and at least the first one unless `minOneBatch` is false.
 */
export function cutToLimit(records: Buffer, limit: number, minOneBatch = true): Buffer {
  if (records.length <= limit) return records;
  let cut = 0;
  while (cut + BATCH_SIZE_FIELD_OFFSET + 4 <= records.length) {
    const size = records.readInt32BE(cut + BATCH_SIZE_FIELD_OFFSET) + LOG_OVERHEAD;
    if ((cut > 0 || !minOneBatch) && cut + size > limit) break;
    cut += size;
  }
  return records.subarray(0, Math.min(cut, records.length));
}
