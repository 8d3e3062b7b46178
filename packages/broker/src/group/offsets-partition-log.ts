import type { Logger } from "@raftka/monitoring";
import {
  decodeRecordBatch,
  ErrorCode,
  encodeRecordBatch,
  KafkaError,
  readRecordBatchHeader,
  sliceBatches,
} from "@raftka/protocol";
import { waitForHighWatermark } from "../partitions/high-watermark.js";
import type { ReplicatedLog } from "../partitions/replicated-log.js";
import { type CompactionCandidate, planCompaction, shouldCompact } from "./offsets-compaction.js";
import {
  decodeOffsetsLogRecord,
  encodeOffsetsLogKey,
  encodeOffsetsLogValue,
  type OffsetsLogRecord,
  OffsetsLogRecordError,
} from "./offsets-log-records.js";

const READ_BYTES = 1024 * 1024;
/** Copy-forward batches stay well below any message size limit. */
const COMPACTION_BATCH_BYTES = 512 * 1024;

export interface OffsetsPartitionLogOptions {
  readonly log: ReplicatedLog;
  readonly now: () => number;
  readonly logger: Logger;
  /** delete.retention.ms of the offsets topic: how long tombstones survive compaction. */
  readonly tombstoneRetentionMs: () => number;
  /** Compaction only pays off once whole segments can be dropped: never below this many bytes. */
  readonly minCompactionBytes: () => number;
  /**
   * Whether the disk can take `bytes` more (the node's free-space guard for its own writes): undefined
   * if so, else why not. Unset: every write is tried.
   */
  readonly admit?: (bytes: number) => string | undefined;
}

export interface CompactionResult {
  readonly compactedUpTo: number;
  readonly keptRecords: number;
  readonly droppedRecords: number;
  readonly logStartOffset: number;
}

interface StoredRecord {
  readonly key: Buffer;
  readonly value: Buffer | null;
  readonly timestamp: number;
}

/**
 * One `__consumer_offsets` partition as the coordinator uses it: appends its records (acks=all, so a
 * write counts only once committed), reads them back at load, and compacts it by copying the latest
 * record of each key forward (see offsets-compaction.ts).
 */
export class OffsetsPartitionLog {
  private readonly inFlight = new Set<Promise<unknown>>();
  /** While a compaction appends its copies, new writes wait here so none slips between. */
  private barrier: Promise<void> | undefined;
  private compacting: Promise<CompactionResult | undefined> | undefined;
  private keptBytesAfterLastPass = 0;

  constructor(private readonly options: OffsetsPartitionLogOptions) {}

  get log(): ReplicatedLog {
    return this.options.log;
  }

  /** Appends the records as one batch; resolves once committed (acks=all). */
  write(records: readonly OffsetsLogRecord[]): Promise<void> {
    const now = this.options.now();
    const batch = encodeRecordBatch({
      records: records.map((record) => ({
        key: encodeOffsetsLogKey(record),
        value: encodeOffsetsLogValue(record),
        timestamp: now,
      })),
    });
    const refusal = this.options.admit?.(batch.length);
    // KAFKA_STORAGE_ERROR, which a commit or a group write answers as NOT_COORDINATOR (as Kafka maps it):
    // clients retry, and nothing was written.
    if (refusal !== undefined) return Promise.reject(new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, refusal));
    const start = () => this.track(this.options.log.append(batch, { acks: -1 }));
    // The append starts synchronously unless a compaction holds the barrier, so log order = call order.
    const appended = this.barrier === undefined ? start() : this.barrier.then(start);
    return appended.then(() => {});
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    void promise.then(
      () => this.inFlight.delete(promise),
      () => this.inFlight.delete(promise),
    );
    return promise;
  }

  /**
   * Reads every committed record from the log start, in log order. Waits first until the log's whole
   * recovered tail is committed, so what is loaded is exactly what later reads would see. Records that
   * cannot be decoded are reported and skipped.
   */
  async load(onRecord: (record: OffsetsLogRecord) => void): Promise<{ records: number; skipped: number }> {
    const log = this.options.log;
    await waitForHighWatermark(log, log.logEndOffset);
    let records = 0;
    let skipped = 0;
    await this.scan(log.logStartOffset, log.highWatermark, (stored, offset) => {
      try {
        onRecord(decodeOffsetsLogRecord(stored.key, stored.value));
        records++;
      } catch (error) {
        if (!(error instanceof OffsetsLogRecordError)) throw error;
        skipped++;
        this.options.logger.warn(
          { err: error, partition: log.topicPartition.partition, offset },
          "skipping an unreadable __consumer_offsets record; the group or offset it held is not restored",
        );
      }
    });
    return { records, skipped };
  }

  private async scan(
    from: number,
    upTo: number,
    onRecord: (record: StoredRecord, offset: number) => void,
  ): Promise<void> {
    let offset = from;
    while (offset < upTo) {
      const { records, nextOffset } = await this.options.log.read(offset, READ_BYTES);
      if (nextOffset <= offset) break;
      for (const slice of sliceBatches(records).batches) {
        const header = readRecordBatchHeader(slice.bytes);
        if (header.isControl) continue;
        const batchEnd = Number(header.baseOffset) + header.lastOffsetDelta + 1;
        if (batchEnd <= offset || Number(header.baseOffset) >= upTo) continue;
        for (const record of decodeRecordBatch(slice.bytes).records) {
          const recordOffset = Number(record.offset);
          if (recordOffset < from || recordOffset >= upTo || record.key === null) continue;
          onRecord(
            {
              key: Buffer.from(record.key),
              value: record.value === null ? null : Buffer.from(record.value),
              timestamp: Number(record.timestamp),
            },
            recordOffset,
          );
        }
      }
      offset = nextOffset;
    }
  }

  /** Runs a compaction pass if enough of the log is superseded; at most one at a time. */
  maybeCompact(): Promise<CompactionResult | undefined> {
    if (this.compacting) return this.compacting;
    const due = shouldCompact({
      logBytes: this.options.log.stats().sizeBytes,
      keptBytesAfterLastPass: this.keptBytesAfterLastPass,
      minLogBytes: this.options.minCompactionBytes(),
      minDirtyRatio: 0.5,
    });
    if (!due) return Promise.resolve(undefined);
    return this.compact();
  }

  /**
   * One copy-forward pass: plan over everything committed below S, then, holding new writes back for a
   * moment, drop from the plan every key written at or after S, append the survivors, and once they are
   * committed move the log start to S.
   */
  compact(): Promise<CompactionResult | undefined> {
    this.compacting ??= this.runCompaction().finally(() => {
      this.compacting = undefined;
    });
    return this.compacting;
  }

  private async runCompaction(): Promise<CompactionResult | undefined> {
    const log = this.options.log;
    const upTo = log.highWatermark;
    if (upTo <= log.logStartOffset) return undefined;
    const candidates: CompactionCandidate<StoredRecord>[] = [];
    await this.scan(log.logStartOffset, upTo, (record) => {
      candidates.push({
        key: record.key.toString("latin1"),
        tombstone: record.value === null,
        timestamp: record.timestamp,
        sizeBytes: record.key.length + (record.value?.length ?? 0) + 16,
        value: record,
      });
    });
    const plan = planCompaction(candidates, this.options.now(), this.options.tombstoneRetentionMs());

    let releaseBarrier!: () => void;
    this.barrier = new Promise((resolve) => {
      releaseBarrier = resolve;
    });
    let copies: Promise<unknown>[] = [];
    try {
      // Everything started before the barrier lands first; then the tail since S is known exactly.
      await Promise.allSettled([...this.inFlight]);
      const tailEnd = log.highWatermark;
      const rewritten = new Set<string>();
      await this.scan(upTo, tailEnd, (record) => rewritten.add(record.key.toString("latin1")));
      const survivors = plan.kept.filter((candidate) => !rewritten.has(candidate.key));
      copies = this.appendCopies(survivors.map((candidate) => candidate.value));
    } finally {
      this.barrier = undefined;
      releaseBarrier();
    }
    await Promise.all(copies);
    const logStartOffset = await log.deleteRecordsBefore(upTo);
    this.keptBytesAfterLastPass = plan.keptBytes;
    const result = {
      compactedUpTo: upTo,
      keptRecords: plan.kept.length,
      droppedRecords: plan.droppedRecords,
      logStartOffset,
    };
    this.options.logger.info(
      { partition: log.topicPartition.partition, ...result, droppedTombstones: plan.droppedTombstones },
      "compacted __consumer_offsets partition",
    );
    return result;
  }

  /** Appends the copies in batches, synchronously one after another (log order = call order). */
  private appendCopies(records: readonly StoredRecord[]): Promise<unknown>[] {
    const appends: Promise<unknown>[] = [];
    let batch: StoredRecord[] = [];
    let batchBytes = 0;
    const flush = () => {
      if (batch.length === 0) return;
      const encoded = encodeRecordBatch({
        records: batch.map((record) => ({
          key: record.key,
          value: record.value,
          timestamp: record.timestamp,
        })),
      });
      appends.push(this.track(this.options.log.append(encoded, { acks: -1 })));
      batch = [];
      batchBytes = 0;
    };
    for (const record of records) {
      const size = record.key.length + (record.value?.length ?? 0) + 32;
      if (batchBytes + size > COMPACTION_BATCH_BYTES) flush();
      batch.push(record);
      batchBytes += size;
    }
    flush();
    return appends;
  }

  /** Resolves once every write started so far has settled. */
  async settle(): Promise<void> {
    await this.compacting?.catch(() => {});
    await Promise.allSettled([...this.inFlight]);
  }
}
