import { ErrorCode } from "@raftka/protocol";

/**
 * Idempotent-producer state of one partition, Kafka's ProducerStateManager without I/O: for every
 * producer id, its epoch and the sequence ranges and offsets of its last five batches. The produce path
 * asks `checkAppend` before appending a client batch (in append order, so two in-flight batches of one
 * producer are judged one after the other), and `recordAppend` once the batch has offsets. Replay after a
 * restart feeds the batches after the snapshot through `recordAppend` only.
 *
 * Transactions plug in here later: `currentTxnFirstOffset` (first offset of the open transaction, which
 * bounds the last stable offset) and `coordinatorEpoch` (fences zombie coordinators' markers) are kept and
 * snapshotted already, but until a transaction coordinator exists no client can obtain a transactional
 * producer id, and transactional batches are refused with INVALID_TXN_STATE.
 */

/** Kafka keeps the metadata of this many recent batches per producer for duplicate detection. */
export const BATCHES_RETAINED_PER_PRODUCER = 5;

const NO_PRODUCER_EPOCH = -1;
const NO_SEQUENCE = -1;
const INT32_MAX = 2_147_483_647;

export interface BatchMetadata {
  readonly firstSequence: number;
  readonly lastSequence: number;
  /** Offsets the batch was appended at; null while its append is still in flight. */
  firstOffset: number | null;
  lastOffset: number | null;
  readonly timestamp: number;
}

export interface ProducerEntry {
  readonly producerId: bigint;
  producerEpoch: number;
  /** Oldest first; at most BATCHES_RETAINED_PER_PRODUCER. */
  readonly batches: BatchMetadata[];
  /** Time of the producer's last write, which `producer.id.expiration.ms` counts from. */
  lastTimestamp: number;
  coordinatorEpoch: number;
  /** First offset of the producer's open transaction; null when none is open. */
  currentTxnFirstOffset: number | null;
}

/** The fields of a record batch header the checks need (all at fixed positions; no decompression). */
export interface ProducerBatchHeader {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly lastOffsetDelta: number;
  readonly isTransactional: boolean;
}

export type AppendCheck =
  /** Not an idempotent batch (producer id -1): nothing to check or remember. */
  | { readonly kind: "not-idempotent" }
  /** In sequence: append it, then call `recordAppend` (or `reserveAppend` first for an async append). */
  | { readonly kind: "append" }
  /**
   * A retry of one of the last five batches: answer with its original offsets instead of appending it
   * again. `batch.firstOffset` is null while the original append is still in flight; wait for it.
   */
  | { readonly kind: "duplicate"; readonly batch: BatchMetadata }
  | { readonly kind: "rejected"; readonly errorCode: number; readonly message: string };

export interface ProducerStateOptions {
  /** producer.id.expiration.ms */
  readonly producerIdExpirationMs: number;
}

/** Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from Int.MaxValue to 0. */
export function incrementSequence(sequence: number, increment: number): number {
  if (sequence > INT32_MAX - increment) return increment - (INT32_MAX - sequence) - 1;
  return sequence + increment;
}

function inSequence(lastSequence: number, nextSequence: number): boolean {
  return nextSequence === lastSequence + 1 || (nextSequence === 0 && lastSequence === INT32_MAX);
}

export class ProducerStateManager {
  private readonly producers = new Map<bigint, ProducerEntry>();

  constructor(private options: ProducerStateOptions) {}

  updateOptions(options: ProducerStateOptions): void {
    this.options = options;
  }

  get size(): number {
    return this.producers.size;
  }

  entry(producerId: bigint): ProducerEntry | undefined {
    return this.producers.get(producerId);
  }

  entries(): IterableIterator<ProducerEntry> {
    return this.producers.values();
  }

  /**
   * Kafka's checks for a client batch, in Kafka's order: a retry of a recent batch (same epoch, same
   * sequence range) is a duplicate; an epoch below the producer's is INVALID_PRODUCER_EPOCH; a new epoch
   * must start at sequence 0 (unless the partition has never seen the producer); within an epoch the
   * sequence must continue exactly, else OUT_OF_ORDER_SEQUENCE_NUMBER. A producer the partition does not
   * know may start at any sequence, as on Kafka 2.5+ (KIP-360): its state may have expired or been
   * removed with the records, and refusing it would only make the client fail.
   */
  checkAppend(batch: ProducerBatchHeader): AppendCheck {
    if (batch.producerId < 0n) return { kind: "not-idempotent" };
    if (batch.isTransactional) {
      return {
        kind: "rejected",
        errorCode: ErrorCode.INVALID_TXN_STATE,
        message: `producer ${batch.producerId} sent a transactional batch, but this broker has no transaction coordinator; use an idempotent (non-transactional) producer`,
      };
    }
    if (batch.baseSequence < 0) {
      return {
        kind: "rejected",
        errorCode: ErrorCode.INVALID_RECORD,
        message: `producer ${batch.producerId} sent a batch with base sequence ${batch.baseSequence}; an idempotent batch needs a sequence number from 0`,
      };
    }
    const entry = this.producers.get(batch.producerId);
    const currentEpoch = entry?.producerEpoch ?? NO_PRODUCER_EPOCH;
    const lastSequence = incrementSequence(batch.baseSequence, batch.lastOffsetDelta);
    if (entry !== undefined && batch.producerEpoch === currentEpoch) {
      const duplicate = entry.batches.find(
        (cached) => cached.firstSequence === batch.baseSequence && cached.lastSequence === lastSequence,
      );
      if (duplicate !== undefined) return { kind: "duplicate", batch: duplicate };
    }
    if (batch.producerEpoch < currentEpoch) {
      return {
        kind: "rejected",
        errorCode: ErrorCode.INVALID_PRODUCER_EPOCH,
        message: `producer ${batch.producerId} wrote with epoch ${batch.producerEpoch}, below its current epoch ${currentEpoch}: a newer instance of this producer has taken over`,
      };
    }
    if (entry?.currentTxnFirstOffset !== null && entry?.currentTxnFirstOffset !== undefined) {
      return {
        kind: "rejected",
        errorCode: ErrorCode.INVALID_TXN_STATE,
        message: `producer ${batch.producerId} has an open transaction; end it before writing outside a transaction`,
      };
    }
    if (batch.producerEpoch !== currentEpoch) {
      if (batch.baseSequence !== 0 && currentEpoch !== NO_PRODUCER_EPOCH) {
        return {
          kind: "rejected",
          errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
          message: `producer ${batch.producerId} started epoch ${batch.producerEpoch} at sequence ${batch.baseSequence}; a new epoch must start at 0`,
        };
      }
      return { kind: "append" };
    }
    const currentLastSequence = entry!.batches.at(-1)?.lastSequence ?? NO_SEQUENCE;
    if (currentLastSequence !== NO_SEQUENCE && !inSequence(currentLastSequence, batch.baseSequence)) {
      return {
        kind: "rejected",
        errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
        message: `producer ${batch.producerId} epoch ${batch.producerEpoch} sent sequence ${batch.baseSequence} after ${currentLastSequence}; expected ${incrementSequence(currentLastSequence, 1)}`,
      };
    }
    return { kind: "append" };
  }

  /**
   * Records a batch whose offsets are not known yet (the append is in flight), so the next check of the
   * same producer already sees its sequence. Complete it with `completeAppend`; if the append fails the
   * partition's producer state must be rebuilt from the log.
   */
  reserveAppend(batch: ProducerBatchHeader, timestamp: number): BatchMetadata | undefined {
    if (batch.producerId < 0n) return undefined;
    return this.addBatch(batch, null, timestamp);
  }

  completeAppend(reserved: BatchMetadata, firstOffset: number, lastOffset: number): void {
    assert(reserved.firstOffset === null, "a reserved batch was completed twice");
    assert(lastOffset >= firstOffset, `batch offsets ${firstOffset}..${lastOffset} go backwards`);
    reserved.firstOffset = firstOffset;
    reserved.lastOffset = lastOffset;
  }

  /**
   * Records an appended batch with its offsets: the leader after a checked append, or replay of the log
   * (where no checks apply: the log is the truth). Batches without a producer id are ignored.
   */
  recordAppend(batch: ProducerBatchHeader, firstOffset: number, timestamp: number): void {
    if (batch.producerId < 0n) return;
    this.addBatch(batch, firstOffset, timestamp);
  }

  private addBatch(batch: ProducerBatchHeader, firstOffset: number | null, timestamp: number): BatchMetadata {
    let entry = this.producers.get(batch.producerId);
    if (entry === undefined) {
      entry = {
        producerId: batch.producerId,
        producerEpoch: batch.producerEpoch,
        batches: [],
        lastTimestamp: timestamp,
        coordinatorEpoch: -1,
        currentTxnFirstOffset: null,
      };
      this.producers.set(batch.producerId, entry);
    }
    if (entry.producerEpoch !== batch.producerEpoch) {
      // A new epoch starts a new sequence space: older batches can no longer be retried.
      entry.batches.length = 0;
      entry.producerEpoch = batch.producerEpoch;
    }
    const metadata: BatchMetadata = {
      firstSequence: batch.baseSequence,
      lastSequence: incrementSequence(batch.baseSequence, batch.lastOffsetDelta),
      firstOffset,
      lastOffset: firstOffset === null ? null : firstOffset + batch.lastOffsetDelta,
      timestamp,
    };
    if (entry.batches.length === BATCHES_RETAINED_PER_PRODUCER) entry.batches.shift();
    entry.batches.push(metadata);
    entry.lastTimestamp = Math.max(entry.lastTimestamp, timestamp);
    return metadata;
  }

  /**
   * Forgets producers that have not written for `producer.id.expiration.ms` (and have no open
   * transaction). Returns how many were removed.
   */
  removeExpired(now: number): number {
    let removed = 0;
    for (const [producerId, entry] of this.producers) {
      if (entry.currentTxnFirstOffset !== null) continue;
      if (entry.batches.some((batch) => batch.firstOffset === null)) continue;
      if (now - entry.lastTimestamp >= this.options.producerIdExpirationMs) {
        this.producers.delete(producerId);
        removed++;
      }
    }
    return removed;
  }

  /** Whether any reserved batch still waits for its offsets (snapshots must not be taken then). */
  hasPendingAppends(): boolean {
    for (const entry of this.producers.values()) {
      if (entry.batches.some((batch) => batch.firstOffset === null)) return true;
    }
    return false;
  }

  /** A deep copy of every entry, for a snapshot; asserts no append is in flight. */
  snapshotEntries(): ProducerEntry[] {
    assert(!this.hasPendingAppends(), "producer state snapshot taken while appends are in flight");
    return [...this.producers.values()].map((entry) => ({
      ...entry,
      batches: entry.batches.map((batch) => ({ ...batch })),
    }));
  }

  /** Replaces the whole state with a snapshot's entries (restart, or a rebuild after truncation). */
  loadEntries(entries: Iterable<ProducerEntry>): void {
    this.producers.clear();
    for (const entry of entries) {
      this.producers.set(entry.producerId, {
        ...entry,
        batches: entry.batches.map((batch) => ({ ...batch })),
      });
    }
  }
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`internal: ${message}`);
}
