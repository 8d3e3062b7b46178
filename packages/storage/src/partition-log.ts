import { mkdir, readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type AppendBatch, parseAppendBatches } from "./append-batches.js";
import { CoalescingCheckpointWriter, readCheckpoint } from "./checkpoint-file.js";
import { DEFAULT_LOG_CONFIG, type LogConfig, maxIndexEntries, resolveLogConfig } from "./config.js";
import type { DirectReads } from "./direct-reads.js";
import type { DirectWrites } from "./direct-writes.js";
import {
  CorruptRecordError,
  describeCause,
  InvalidRecordError,
  InvalidRequestError,
  invariant,
  KafkaStorageError,
  OffsetOutOfRangeError,
} from "./errors.js";
import {
  type CachedFile,
  defaultFileHandleCache,
  type FileHandleCache,
  type FileTakenForSync,
} from "./file-handle-cache.js";
import {
  defaultFlushScheduler,
  type FlushRequestOptions,
  type FlushScheduler,
  type FlushTarget,
  type FlushWork,
} from "./flush-scheduler.js";
import { fsyncDirectory, unlinkIfExists, writeFileAtomically } from "./fs-util.js";
import { LeaderEpochCache } from "./leader-epoch-cache.js";
import {
  type BatchPlacement,
  LogSegment,
  MAX_RELATIVE_OFFSET,
  type SegmentCorruption,
  type SegmentRead,
  type SegmentSettings,
} from "./log-segment.js";
import { stampBatch, stampLogAppendTime } from "./record-batch-header.js";
import { type RetentionReason, selectSegmentsToDelete } from "./retention.js";
import {
  CLEAN_SHUTDOWN_FILE,
  DELETED_SUFFIX,
  LEADER_EPOCH_CHECKPOINT_FILE,
  LOG_START_OFFSET_CHECKPOINT_FILE,
  parseSegmentFileName,
  RECOVERY_POINT_CHECKPOINT_FILE,
  segmentPaths,
  TEMPORARY_SUFFIX,
} from "./segment-files.js";
import { OFFSET_INDEX_ENTRY_SIZE, TIME_INDEX_ENTRY_SIZE } from "./segment-index.js";

export interface AppendOptions {
  /**
   * Leader append: stamp each batch with the next offsets and `leaderEpoch` (in place in the caller's
   * buffer; the CRC does not cover these fields). Follower/replay append (false): the batches'
   * own offsets must continue the log exactly and their epochs are recorded as they are.
   */
  assignOffsets: boolean;
  /** Required with assignOffsets: the leader's epoch (the Raft term). */
  leaderEpoch?: number;
  /** Stamp LogAppendTime with this time (message.timestamp.type=LogAppendTime); leader appends only. */
  logAppendTime?: number;
  /** Resolve only once the batches are fsynced; defaults to the log's flushBeforeAck config. */
  waitForFlush?: boolean;
}

export interface AppendResult {
  firstOffset: number;
  lastOffset: number;
  /** The log end offset right after this append. */
  nextOffset: number;
  /** Largest batch maxTimestamp in the append (-1 if none carried a timestamp). */
  maxTimestamp: number;
  /** Base offset of the batch holding maxTimestamp (the broker refines to a record if it must). */
  offsetOfMaxTimestamp: number;
  sizeInBytes: number;
  batchCount: number;
  recordCount: number;
  /** The log start offset at the time of the append (Produce responses carry it). */
  logStartOffset: number;
}

/** Where a read puts the bytes it reads: a buffer of exactly `size` bytes the caller may reuse later. */
export type ReadBufferAllocator = (size: number) => Buffer;

/** How a read treats a first batch larger than its `maxBytes`. */
export interface ReadOptions {
  /**
   * True (the default): the first batch is returned even when larger than `maxBytes`, so a consumer
   * always progresses (Kafka's minOneMessage, KIP-74). False: a batch that does not fit is not returned.
   */
  minOneBatch?: boolean;
  /**
   * With `minOneBatch` false: read the first batch's header before its bytes, so that a batch that does
   * not fit costs the walk to its header (up to index.interval.bytes), not `maxBytes` of reading; one
   * that fits then costs a second read. False (the default) reads the header and up to `maxBytes` at once.
   */
  headerFirst?: boolean;
  /**
   * Told the bytes of each read that went past the page cache to the disk (DirectReads): Fetch reads a
   * consumer's next range ahead only while its data comes from there.
   */
  onDirectRead?: (bytes: number) => void;
}

export interface ReadResult {
  /** Whole record batches, possibly empty; may start before the requested offset (its batch). */
  records: Buffer;
  /** Base offset of the first batch returned, or -1 when empty. */
  firstOffset: number;
  /** Offset just after the last batch returned (the requested offset when empty). */
  nextOffset: number;
}

export interface SegmentInfo {
  baseOffset: number;
  nextOffset: number;
  sizeInBytes: number;
  maxTimestamp: number;
  active: boolean;
  /** Data and indexes are fsynced and the segment is closed: safe to upload. */
  durable: boolean;
  logPath: string;
  indexPath: string;
  timeIndexPath: string;
}

export type RollReason =
  | "segment.bytes"
  | "segment.ms"
  | "index-full"
  | "offset-overflow"
  | "delete-records"
  | "retention";

export type LogEvent =
  | { type: "segment-rolled"; closedBaseOffset: number; newBaseOffset: number; reason: RollReason }
  | { type: "segment-durable"; segment: SegmentInfo }
  | { type: "index-rebuilt"; baseOffset: number; reason: string }
  /** A read met a batch cut short in a closed segment (damage on disk) and went on with the next segment. */
  | { type: "damaged-segment-skipped"; baseOffset: number; fromOffset: number }
  /**
   * A read met bytes in a segment that cannot be a batch header (zeroed or overwritten on disk); reads
   * of the offsets from firstLostOffset to resumeOffset fail with CORRUPT_MESSAGE. Once per segment.
   */
  | {
      type: "corrupt-batch";
      baseOffset: number;
      path: string;
      position: number;
      reason: string;
      firstLostOffset: number;
      resumeOffset: number;
    }
  | { type: "failed"; error: KafkaStorageError };

export interface RecoveryReport {
  directory: string;
  cleanShutdown: boolean;
  segmentsScanned: number;
  bytesScanned: number;
  /**
   * Tails cut because they were torn or failed their CRC, with the offsets the cut bytes held: from
   * the first missing, to the last one a batch header there still named (absent if none did).
   */
  truncations: {
    segmentBaseOffset: number;
    validBytes: number;
    removedBytes: number;
    reason: string;
    lostOffsets?: { from: number; to?: number };
  }[];
  /**
   * Offsets no segment holds although the log once did: a segment's `.log` file was removed, found by
   * the index files it left (which are removed too, see removedFiles).
   */
  offsetGaps: { from: number; to: number; reason: string }[];
  /** Whole segments removed because they followed a cut, or lay entirely below the log start. */
  deletedSegments: { baseOffset: number; reason: string }[];
  rebuiltIndexes: { segmentBaseOffset: number; reason: string }[];
  /** Leftover temporary, orphaned or half-deleted files removed. */
  removedFiles: string[];
  /**
   * Of those, index files whose segment file was missing although no deletion had begun on it (its
   * `.log` was not renamed `.deleted`): a sign the segment was removed by hand or lost.
   */
  orphanIndexFiles: string[];
  /** Checkpoints that were missing or unreadable and were rebuilt from the segments. */
  checkpointProblems: string[];
  logStartOffset: number;
  logEndOffset: number;
}

export type DeletionReason = RetentionReason | "delete-records";

export interface RetentionResult {
  deleted: { baseOffset: number; nextOffset: number; sizeInBytes: number; reason: DeletionReason }[];
  logStartOffset: number;
}

export interface TruncationResult {
  logEndOffset: number;
  removedBytes: number;
  removedSegments: number;
}

export interface PartitionLogOptions {
  config?: Partial<LogConfig>;
  /** Shared group-commit scheduler; defaults to the process-wide one. */
  flushScheduler?: FlushScheduler;
  /**
   * Shared, bounded pool of file descriptors; defaults to the process-wide one. A node hosting more
   * logs than it may open files needs every log on the same cache.
   */
  fileHandleCache?: FileHandleCache;
  /** Lets large appends bypass the page cache, with the node's staging buffers; without it, none do. */
  directWrites?: DirectWrites;
  /** Lets reads of data not in the page cache bypass it; without it, none do. */
  directReads?: DirectReads;
  /** Clock (ms since epoch) for segment ages, retention and LogAppendTime defaults. */
  now?: () => number;
  /** First offset of a brand-new log (ignored when the directory already holds one). */
  initialOffset?: number;
  /**
   * Whether the disk can spare `bytes` for blocks reserved ahead of appends (`preallocate`); when it
   * answers true they count as taken. Unset: every reservation is made.
   */
  mayReserve?: (bytes: number) => boolean;
  onEvent?: (event: LogEvent) => void;
}

interface AppendItem {
  kind: "append";
  records: Buffer;
  batches: AppendBatch[];
  options: AppendOptions;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

interface OperationItem {
  kind: "operation";
  run: () => Promise<void>;
}

type QueueItem = AppendItem | OperationItem;

const NO_TIMESTAMP = -1;

// Two logs on one directory would corrupt it; within a process we can refuse that cheaply.
const openDirectories = new Set<string>();

/**
 * A partition's log: a directory of segments that is both the Kafka log and the partition's Raft log
 * (one entry = one v2 batch; its partitionLeaderEpoch is the term).
 *
 * All mutations (appends, truncation, retention, log start advance, close) run one after another on
 * an internal queue, appends that queue up meanwhile are written together with one writev. Reads run
 * concurrently with all of that, bounded by the caller's high watermark.
 */
export class PartitionLog {
  readonly directory: string;
  readonly recoveryReport: RecoveryReport;
  private config: LogConfig;
  private readonly settings: SegmentSettings;
  private readonly scheduler: FlushScheduler;
  private readonly now: () => number;
  private readonly onEvent: (event: LogEvent) => void;
  private segments: LogSegment[];
  private readonly epochCache: LeaderEpochCache;
  private logStartOffsetValue: number;
  private logEndOffsetValue: number;
  private flushedOffsetValue: number;
  private recoveryPoint: number;
  private readonly epochCheckpoint: CoalescingCheckpointWriter;
  private readonly logStartCheckpoint: CoalescingCheckpointWriter;
  private readonly recoveryPointCheckpoint: CoalescingCheckpointWriter;
  private queue: QueueItem[] = [];
  private draining = false;
  private failure: KafkaStorageError | undefined;
  private closed = false;
  private truncationCount = 0;
  private unflushedRecords = 0;
  /** The log directory, fsynced by the next flush round once a segment file was created in it. */
  private readonly directoryFile: CachedFile;
  /** The epoch cache changed since the checkpoint was last written. */
  private epochsDirty = false;
  private recoveryPointWrite: Promise<void> = Promise.resolve();
  private readonly pendingDeletions = new Set<Promise<void>>();
  /** Segments found cut short or damaged by a read, reported once each. */
  private readonly reportedDamage = new Set<number>();
  private readonly flushTarget: FlushTarget = { beginFlush: () => this.beginFlush() };

  private constructor(init: {
    directory: string;
    config: LogConfig;
    settings: SegmentSettings;
    scheduler: FlushScheduler;
    now: () => number;
    onEvent: (event: LogEvent) => void;
    segments: LogSegment[];
    epochCache: LeaderEpochCache;
    logStartOffset: number;
    recoveryPoint: number;
    report: RecoveryReport;
  }) {
    this.directory = init.directory;
    this.config = init.config;
    this.settings = init.settings;
    // Past opening, an index rebuilt on first use (a closed segment's damaged index) is an event.
    this.settings.onIndexRebuilt = (baseOffset, reason) =>
      this.onEvent({ type: "index-rebuilt", baseOffset, reason });
    this.settings.onSyncError = (error) => {
      this.fail(`an fsync of ${this.directory} failed`, error);
    };
    this.directoryFile = this.settings.files.file(this.directory, { directory: true });
    this.scheduler = init.scheduler;
    this.now = init.now;
    this.onEvent = init.onEvent;
    this.segments = init.segments;
    this.epochCache = init.epochCache;
    this.logStartOffsetValue = init.logStartOffset;
    this.logEndOffsetValue = this.activeSegment.nextOffset;
    this.flushedOffsetValue = this.logEndOffsetValue;
    this.recoveryPoint = init.recoveryPoint;
    this.recoveryReport = init.report;
    const files = this.settings.files;
    const withinBudget = <T>(write: () => Promise<T>) => files.transient(write);
    this.epochCheckpoint = new CoalescingCheckpointWriter(
      join(this.directory, LEADER_EPOCH_CHECKPOINT_FILE),
      () => this.epochCache.snapshot().map((entry) => [entry.epoch, entry.startOffset]),
      withinBudget,
    );
    this.logStartCheckpoint = new CoalescingCheckpointWriter(
      join(this.directory, LOG_START_OFFSET_CHECKPOINT_FILE),
      () => [[this.logStartOffsetValue]],
      withinBudget,
    );
    this.recoveryPointCheckpoint = new CoalescingCheckpointWriter(
      join(this.directory, RECOVERY_POINT_CHECKPOINT_FILE),
      () => [[this.recoveryPoint]],
      withinBudget,
    );
  }

  /**
   * Opens (creating if needed) the log in `directory`, recovering from an unclean shutdown: segments
   * not known to be durable are re-read batch by batch (length, CRC32C), a torn or corrupt tail is
   * cut, and missing or damaged indexes are rebuilt. What was done is in `recoveryReport`.
   */
  static async open(directory: string, options: PartitionLogOptions = {}): Promise<PartitionLog> {
    const config = resolveLogConfig(options.config ?? {}, DEFAULT_LOG_CONFIG);
    const now = options.now ?? Date.now;
    const settings: SegmentSettings = {
      indexIntervalBytes: config.indexIntervalBytes,
      preallocate: config.preallocate,
      segmentBytes: config.segmentBytes,
      files: options.fileHandleCache ?? defaultFileHandleCache(),
      ...(options.mayReserve ? { mayReserve: options.mayReserve } : {}),
      ...(options.directWrites ? { directWrites: options.directWrites } : {}),
      ...(options.directReads ? { directReads: options.directReads } : {}),
    };
    const onEvent = options.onEvent ?? (() => {});
    const key = resolve(directory);
    if (openDirectories.has(key)) {
      throw new InvalidRequestError(
        `log directory ${key} is already open in this process; close the other PartitionLog first`,
      );
    }
    openDirectories.add(key);
    let opened: OpenedDirectory;
    const touched: LogSegment[] = [];
    try {
      await mkdir(directory, { recursive: true });
      opened = await recoverDirectory(directory, settings, now, options.initialOffset ?? 0, onEvent, touched);
    } catch (error) {
      // Descriptors the half-done recovery holds go back to the shared cache.
      await Promise.all(touched.map((segment) => segment.close().catch(() => {})));
      openDirectories.delete(key);
      throw error;
    }
    const log = new PartitionLog({
      directory,
      config,
      settings,
      scheduler: options.flushScheduler ?? defaultFlushScheduler(),
      now,
      onEvent,
      segments: opened.segments,
      epochCache: opened.epochCache,
      logStartOffset: opened.logStartOffset,
      recoveryPoint: opened.recoveryPoint,
      report: opened.report,
    });
    const stale = opened.staleCheckpoints;
    await Promise.all([
      stale.epochs ? log.epochCheckpoint.request() : undefined,
      stale.logStart ? log.logStartCheckpoint.request() : undefined,
      stale.recoveryPoint ? log.recoveryPointCheckpoint.request() : undefined,
    ]);
    return log;
  }

  // ---- state -----------------------------------------------------------------------------------

  /** Offset the next appended record gets; everything below it is readable. */
  get logEndOffset(): number {
    return this.logEndOffsetValue;
  }

  get logStartOffset(): number {
    return this.logStartOffsetValue;
  }

  /** Log end offset that is fsynced: Raft may only count entries below this. */
  get flushedOffset(): number {
    return this.flushedOffsetValue;
  }

  get latestEpoch(): number | undefined {
    return this.epochCache.latestEpoch;
  }

  /** Bytes of record batches in all segments (Kafka's log size metric). */
  get sizeInBytes(): number {
    let total = 0;
    for (const segment of this.segments) total += segment.size;
    return total;
  }

  /** Bytes on disk including the indexes held for each segment. */
  get sizeOnDiskInBytes(): number {
    let total = 0;
    for (const segment of this.segments) total += segment.size + segment.indexSizeInBytes;
    return total;
  }

  get currentConfig(): Readonly<LogConfig> {
    return this.config;
  }

  /** The error that stopped this log accepting writes, if one did. */
  get storageFailure(): KafkaStorageError | undefined {
    return this.failure;
  }

  /** Changes config at run time (AlterConfigs); applies to the next append, roll and retention pass. */
  updateConfig(overrides: Partial<LogConfig>): LogConfig {
    this.config = resolveLogConfig(overrides, this.config);
    this.settings.indexIntervalBytes = this.config.indexIntervalBytes;
    this.settings.preallocate = this.config.preallocate;
    this.settings.segmentBytes = this.config.segmentBytes;
    return this.config;
  }

  segmentInfos(): SegmentInfo[] {
    return this.segments.map((segment) => this.describeSegment(segment));
  }

  epochForOffset(offset: number): number | undefined {
    if (offset < this.logStartOffsetValue || offset >= this.logEndOffsetValue) return undefined;
    return this.epochCache.epochForOffset(offset);
  }

  /** OffsetForLeaderEpoch: largest epoch <= `epoch` and where it ended; -1/-1 when unknown. */
  endOffsetForEpoch(epoch: number): { epoch: number; endOffset: number } {
    return this.epochCache.endOffsetForEpoch(epoch, this.logEndOffsetValue);
  }

  /** The leader epoch entries (epoch, start offset) currently in the cache. */
  leaderEpochs(): { epoch: number; startOffset: number }[] {
    return this.epochCache.snapshot();
  }

  // ---- appends ---------------------------------------------------------------------------------

  /**
   * Appends whole v2 batches. Concurrent appends are written in call order, together. Rejects with
   * CorruptRecordError (framing/CRC), InvalidRecordError (offset gap, stale epoch),
   * RecordBatchTooLargeError, KafkaStorageError (disk failure) or InvalidRequestError (closed log).
   */
  async append(records: Buffer, options: AppendOptions): Promise<AppendResult> {
    this.assertWritable();
    validateAppendOptions(options);
    const batches = parseAppendBatches(records, this.config.verifyCrcOnAppend, this.config.segmentBytes);
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ kind: "append", records, batches, options, resolve, reject });
      this.startDraining();
    });
  }

  /**
   * Makes everything appended so far durable (group-committed); resolves to the flushed offset.
   * `urgent`: a client waits on it, so its fsync need not wait for a round already running.
   */
  async flush(options?: FlushRequestOptions): Promise<number> {
    if (this.failure) throw this.failure;
    await this.scheduler.flush(this.flushTarget, options);
    return this.flushedOffsetValue;
  }

  private assertWritable(): void {
    if (this.closed) {
      throw new InvalidRequestError(`log ${this.directory} is closed; reopen it with PartitionLog.open`);
    }
    if (this.failure) throw this.failure;
  }

  private startDraining(): void {
    if (this.draining) return;
    this.draining = true;
    void this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0]!;
        if (head.kind === "operation") {
          this.queue.shift();
          await head.run();
          continue;
        }
        const group: AppendItem[] = [];
        while (this.queue[0]?.kind === "append") group.push(this.queue.shift() as AppendItem);
        await this.writeGroup(group);
      }
    } catch (error) {
      // Only a bug gets here (items handle their own errors): stop writing rather than guess.
      const failure = this.fail(
        `the write queue of ${this.directory} stopped (${describeCause(error)})`,
        error,
      );
      for (const item of this.queue.splice(0)) {
        if (item.kind === "append") item.reject(failure);
        else void item.run();
      }
    } finally {
      this.draining = false;
    }
  }

  private enqueue<T>(run: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        kind: "operation",
        run: async () => {
          try {
            resolve(await run());
          } catch (error) {
            reject(error);
          }
        },
      });
      this.startDraining();
    });
  }

  /** Assigns or checks offsets for each append, then writes them all with as few writes as possible. */
  private async writeGroup(group: AppendItem[]): Promise<void> {
    const endBefore = this.logEndOffsetValue;
    const accepted: { item: AppendItem; result: AppendResult; placements: BatchPlacement[] }[] = [];
    let nextOffset = endBefore;
    for (const item of group) {
      if (this.failure || this.closed) {
        item.reject(this.failure ?? new InvalidRequestError(`log ${this.directory} is closed`));
        continue;
      }
      try {
        const placements = this.placeBatches(item, nextOffset);
        const last = placements.at(-1)!;
        nextOffset = last.lastOffset + 1;
        accepted.push({ item, placements, result: summarize(placements, this.logStartOffsetValue) });
      } catch (error) {
        item.reject(error);
      }
    }
    if (accepted.length === 0) return;
    try {
      await this.writePlacements(accepted);
    } catch (error) {
      this.epochCache.truncateFromEnd(endBefore);
      const failure = this.fail(
        `appending offsets ${endBefore}..${nextOffset - 1} to ${this.directory} failed (${describeCause(error)}); ` +
          "the log refuses writes until it is reopened (restart the broker), which cuts any partial write",
        error,
      );
      for (const { item } of accepted) item.reject(failure);
      return;
    }
    this.logEndOffsetValue = nextOffset;
    let records = 0;
    for (const { result } of accepted) records += result.recordCount;
    this.unflushedRecords += records;
    this.applyFlushPolicy();
    for (const { item, result } of accepted) {
      if (item.options.waitForFlush ?? this.config.flushBeforeAck) {
        this.flush().then(() => item.resolve(result), item.reject);
      } else {
        item.resolve(result);
      }
    }
  }

  /**
   * Stamps (leader) or checks (follower) each batch's offsets and epoch and records epoch changes.
   * Nothing is changed unless the whole append is acceptable.
   */
  private placeBatches(item: AppendItem, firstOffset: number): BatchPlacement[] {
    const { records, batches, options } = item;
    if (options.assignOffsets) {
      const epoch = options.leaderEpoch!;
      this.epochCache.checkAssignable(epoch, firstOffset);
      const placements: BatchPlacement[] = [];
      let next = firstOffset;
      for (const batch of batches) {
        stampBatch(records, batch.position, next, epoch);
        if (options.logAppendTime !== undefined)
          stampLogAppendTime(records, batch.position, options.logAppendTime);
        const maxTimestamp = options.logAppendTime ?? Number(batch.maxTimestamp);
        placements.push(placement(next, batch, maxTimestamp));
        next += batch.lastOffsetDelta + 1;
      }
      if (this.epochCache.assign(epoch, firstOffset)) this.persistEpochs();
      return placements;
    }
    const placements: BatchPlacement[] = [];
    const epochStarts: [number, number][] = [];
    let latestEpoch = this.epochCache.latestEpoch;
    let next = firstOffset;
    for (const [index, batch] of batches.entries()) {
      if (batch.baseOffset !== BigInt(next)) {
        throw new InvalidRecordError(
          `batch ${index} starts at offset ${batch.baseOffset} but the log continues at ${next}; ` +
            `replicate from offset ${next} (a follower must truncate or fetch to close the gap)`,
        );
      }
      const epoch = batch.partitionLeaderEpoch;
      if (epoch < 0 && latestEpoch !== undefined) {
        throw new InvalidRecordError(
          `batch ${index} at offset ${next} has no leader epoch (${epoch}) but the log is at epoch ${latestEpoch}; ` +
            "replicated batches must carry the epoch the leader stamped",
        );
      }
      if (epoch >= 0) {
        if (latestEpoch !== undefined && epoch < latestEpoch) {
          throw new InvalidRecordError(
            `batch ${index} at offset ${next} has leader epoch ${epoch}, older than the epoch ${latestEpoch} ` +
              "before it; a stale leader's batches were replicated: re-check leadership and retry",
          );
        }
        if (epoch !== latestEpoch) epochStarts.push([epoch, next]);
        latestEpoch = epoch;
      }
      placements.push(placement(next, batch, Number(batch.maxTimestamp)));
      next += batch.lastOffsetDelta + 1;
    }
    let changed = false;
    for (const [epoch, start] of epochStarts) changed = this.epochCache.assign(epoch, start) || changed;
    if (changed) this.persistEpochs();
    return placements;
  }

  private async writePlacements(
    accepted: { item: AppendItem; placements: BatchPlacement[] }[],
  ): Promise<void> {
    let buffers: Buffer[] = [];
    let placements: BatchPlacement[] = [];
    let pendingBytes = 0;
    const writePending = async () => {
      if (placements.length === 0) return;
      await this.activeSegment.append(buffers, placements, this.now());
      buffers = [];
      placements = [];
      pendingBytes = 0;
    };
    for (const { item, placements: itemPlacements } of accepted) {
      let runStart = -1;
      let runEnd = -1;
      for (const [index, batchPlacement] of itemPlacements.entries()) {
        const reason = this.rollReason(this.activeSegment, pendingBytes, batchPlacement);
        if (reason) {
          if (runStart >= 0) buffers.push(item.records.subarray(runStart, runEnd));
          runStart = -1;
          await writePending();
          await this.roll(batchPlacement.baseOffset, reason);
        }
        const position = item.batches[index]!.position;
        if (runStart < 0) runStart = position;
        runEnd = position + batchPlacement.sizeInBytes;
        placements.push(batchPlacement);
        pendingBytes += batchPlacement.sizeInBytes;
      }
      if (runStart >= 0) buffers.push(item.records.subarray(runStart, runEnd));
    }
    await writePending();
  }

  private rollReason(
    segment: LogSegment,
    pendingBytes: number,
    batch: BatchPlacement,
  ): RollReason | undefined {
    const size = segment.size + pendingBytes;
    if (size === 0) return undefined;
    if (size + batch.sizeInBytes > this.config.segmentBytes) return "segment.bytes";
    if (batch.lastOffset - segment.baseOffset > MAX_RELATIVE_OFFSET) return "offset-overflow";
    if (segment.size > 0 && this.now() - segment.rollReferenceTimestamp > this.config.segmentMs)
      return "segment.ms";
    const offsetEntries = maxIndexEntries(this.config, OFFSET_INDEX_ENTRY_SIZE);
    const timeEntries = maxIndexEntries(this.config, TIME_INDEX_ENTRY_SIZE);
    if (segment.indexFull(offsetEntries, timeEntries)) return "index-full";
    return undefined;
  }

  private async roll(newBaseOffset: number, reason: RollReason): Promise<void> {
    const closing = this.activeSegment;
    invariant(
      newBaseOffset >= closing.nextOffset,
      () => `roll to ${newBaseOffset} below ${closing.nextOffset}`,
    );
    await closing.closeForAppends();
    const segment = await LogSegment.create(this.directory, newBaseOffset, this.now(), this.settings);
    this.segments.push(segment);
    await this.directoryFile.use(async () => this.directoryFile.markDirty());
    this.onEvent({ type: "segment-rolled", closedBaseOffset: closing.baseOffset, newBaseOffset, reason });
    // Make the closed segment durable soon so the recovery point can pass it.
    this.scheduler.flush(this.flushTarget).catch(() => {});
  }

  private applyFlushPolicy(): void {
    if (this.unflushedRecords >= this.config.flushMessages) {
      this.scheduler.flush(this.flushTarget).catch(() => {});
    } else if (this.config.flushMs < Number.MAX_SAFE_INTEGER) {
      this.scheduler.flushWithin(this.flushTarget, this.config.flushMs);
    }
  }

  // ---- flushing --------------------------------------------------------------------------------

  private beginFlush(): FlushWork {
    if (this.failure) {
      const failure = this.failure;
      return {
        files: [],
        complete: () => {
          throw failure;
        },
      };
    }
    const files: FileTakenForSync[] = [];
    const closing: LogSegment[] = [];
    for (const segment of this.segments) {
      if (segment.awaitingCloseSync) closing.push(segment);
      files.push(...segment.takeDirtyFiles());
    }
    const directory = this.directoryFile.takeForSync();
    if (directory !== undefined) files.push(directory);
    const target = this.logEndOffsetValue;
    const truncations = this.truncationCount;
    this.unflushedRecords = 0;
    return {
      files,
      complete: (error) => {
        for (const file of files) file.release();
        if (error !== undefined) {
          throw this.fail(`flushing ${this.directory} failed (${describeCause(error)})`, error);
        }
        // An fsync made to free a descriptor failed meanwhile: nothing may count as durable now.
        if (this.failure) throw this.failure;
        // A truncation during the fsync may have replaced what we synced with unsynced data.
        if (truncations === this.truncationCount) {
          this.flushedOffsetValue = Math.max(this.flushedOffsetValue, target);
        }
        const durable: LogSegment[] = [];
        for (const segment of closing) {
          if (!segment.awaitingCloseSync || segment.isDeleting) continue;
          segment.awaitingCloseSync = false;
          void segment.releaseDescriptors().catch(() => {});
          durable.push(segment);
        }
        this.advanceRecoveryPoint();
        for (const segment of durable) {
          this.onEvent({ type: "segment-durable", segment: this.describeSegment(segment) });
        }
      },
    };
  }

  /** Segments below the first one not yet durable need no scan after a crash: record that. */
  private advanceRecoveryPoint(): void {
    const firstNotDurable = this.segments.find(
      (segment) => segment.awaitingCloseSync || segment === this.activeSegment,
    )!;
    if (firstNotDurable.baseOffset <= this.recoveryPoint) return;
    this.recoveryPoint = firstNotDurable.baseOffset;
    // The epoch checkpoint must cover everything below the recovery point before the point moves.
    this.recoveryPointWrite = this.recoveryPointWrite
      .then(() => this.writeEpochs())
      .then(() => this.recoveryPointCheckpoint.request())
      .catch((error) => {
        this.fail(`writing the recovery point of ${this.directory} failed`, error);
      });
  }

  /**
   * The epoch cache changed. The checkpoint is written later, when the recovery point moves or the
   * log closes: after a crash, recovery rebuilds the epochs of everything from the recovery point on
   * from the batch headers it re-reads, so only epochs below the recovery point must be on disk.
   * Thousands of partitions electing at once thus pay no checkpoint write (two fsyncs) each.
   */
  private persistEpochs(): void {
    this.epochsDirty = true;
  }

  /** Makes the epoch checkpoint durable with the current epochs (if they changed since). */
  private async writeEpochs(): Promise<void> {
    if (!this.epochsDirty) return this.epochCheckpoint.settled();
    this.epochsDirty = false;
    try {
      await this.epochCheckpoint.request();
    } catch (error) {
      this.epochsDirty = true;
      throw error;
    }
  }

  private fail(message: string, cause: unknown): KafkaStorageError {
    if (this.failure) return this.failure;
    const failure =
      cause instanceof KafkaStorageError
        ? cause
        : new KafkaStorageError(`${message}: restart the broker after checking the disk`, cause);
    this.failure = failure;
    this.onEvent({ type: "failed", error: failure });
    return failure;
  }

  // ---- reads -----------------------------------------------------------------------------------

  /**
   * Whole batches from the one containing `fromOffset`: at least one batch even if larger than
   * `maxBytes` (unless `options.minOneBatch` is false: then none that does not fit), never a batch
   * reaching `upToOffset` (exclusive; pass the high watermark). Empty at or above the end;
   * OffsetOutOfRangeError below the log start. Reads a single segment per call.
   */
  async read(
    fromOffset: number,
    maxBytes: number,
    upToOffset: number = this.logEndOffsetValue,
    allocate?: ReadBufferAllocator,
    options?: ReadOptions,
  ): Promise<ReadResult> {
    requireOffset("fromOffset", fromOffset);
    requireOffset("upToOffset", upToOffset);
    if (!Number.isInteger(maxBytes) || maxBytes < 0) {
      throw new InvalidRequestError(`maxBytes must be a non-negative integer, got ${maxBytes}`);
    }
    this.assertOpen();
    if (fromOffset < this.logStartOffsetValue) {
      throw new OffsetOutOfRangeError(
        `offset ${fromOffset} is below the log start offset ${this.logStartOffsetValue} of ${this.directory}; ` +
          `fetch from ${this.logStartOffsetValue} or later (ListOffsets EARLIEST)`,
      );
    }
    const limit = Math.min(upToOffset, this.logEndOffsetValue);
    const empty: ReadResult = { records: Buffer.alloc(0), firstOffset: -1, nextOffset: fromOffset };
    if (fromOffset >= limit) return empty;
    let index = this.segmentIndexFor(fromOffset);
    while (index < this.segments.length) {
      const segment = this.segments[index]!;
      if (!segment.acquire()) {
        // Deleted under us (retention or truncation): look the offset up again.
        return this.read(fromOffset, maxBytes, upToOffset, allocate, options);
      }
      let result: SegmentRead;
      try {
        result = await segment.read(fromOffset, maxBytes, limit, allocate, options);
      } finally {
        segment.release();
      }
      if (result === "limit") return empty;
      if (typeof result === "object" && "corrupt" in result) throw this.corruption(segment, result);
      if (result === "torn") {
        // The active segment: a truncation raced this read. A closed one was cut short on disk: the rest
        // of it is gone, and readers go on with the next segment (as Kafka's do) instead of stopping here.
        if (index === this.segments.length - 1) return empty;
        if (!this.reportedDamage.has(segment.baseOffset)) {
          this.reportedDamage.add(segment.baseOffset);
          this.onEvent({ type: "damaged-segment-skipped", baseOffset: segment.baseOffset, fromOffset });
        }
      } else if (result !== "none-here") {
        return result;
      }
      index += 1;
    }
    return empty;
  }

  /**
   * ListOffsets by timestamp: the first batch whose maxTimestamp >= `timestamp`, that reaches `fromOffset`
   * (at least the log start) and that ends below `upToOffset`. Its offset is the batch base, or
   * `fromOffset` if that is later; the broker decodes that one batch to pick the exact record, and when
   * the batch's matching records all lie below `fromOffset` (the log start cut into it) asks again from
   * the next batch. Each segment is walked from its time index entry, and segments too old are skipped.
   */
  async offsetForTimestamp(
    timestamp: number,
    upToOffset: number = this.logEndOffsetValue,
    fromOffset: number = this.logStartOffsetValue,
  ): Promise<{ offset: number; timestamp: number } | undefined> {
    this.assertOpen();
    const from = Math.max(fromOffset, this.logStartOffsetValue);
    for (const segment of [...this.segments]) {
      if (segment.maxTimestamp < timestamp || segment.nextOffset <= from) continue;
      if (!segment.acquire()) return this.offsetForTimestamp(timestamp, upToOffset, fromOffset);
      let header: Awaited<ReturnType<LogSegment["findByTimestamp"]>>;
      try {
        header = await segment.findByTimestamp(timestamp, from);
      } finally {
        segment.release();
      }
      // A cut-short segment is read past, as read() does; damage fails the lookup, as it fails a read.
      if (!header || header === "torn") continue;
      if ("corrupt" in header) throw this.corruption(segment, header);
      if (header.baseOffset + header.lastOffsetDelta >= Math.min(upToOffset, this.logEndOffsetValue)) {
        return undefined;
      }
      return { offset: Math.max(header.baseOffset, from), timestamp: header.maxTimestamp };
    }
    return undefined;
  }

  /**
   * The error a read that met damage in `segment` fails with (Kafka's CORRUPT_MESSAGE), telling the
   * operator once per segment through an event: every read of the damaged offsets fails the same way.
   */
  private corruption(segment: LogSegment, found: SegmentCorruption): CorruptRecordError {
    const { path, position, reason, firstLostOffset, resumeOffset } = found.corrupt;
    if (!this.reportedDamage.has(segment.baseOffset)) {
      this.reportedDamage.add(segment.baseOffset);
      this.onEvent({ type: "corrupt-batch", baseOffset: segment.baseOffset, ...found.corrupt });
    }
    return new CorruptRecordError(
      `segment file ${path} is damaged at byte ${position} (${reason}): offsets from ${firstLostOffset} ` +
        `before ${resumeOffset} cannot be read. Skip them with DeleteRecords up to offset ${resumeOffset}, ` +
        "or stop the broker and restore the segment file from a backup",
    );
  }

  /**
   * ListOffsets -3: the largest batch maxTimestamp among the batches that reach `fromOffset` (at least the
   * log start: records below it are gone, even where their segment is not), and the base offset of the
   * first batch that has it; offset -1 when no batch is left. The batch holding `fromOffset` may start
   * below it, and its maximum may belong to a record below it: the broker decodes that batch and, if so,
   * asks again from the next one. Answered from the segments' running maxima in memory, except that the
   * segment holding `fromOffset` has its batch headers from there walked when its maximum lies before
   * `fromOffset` and no later segment has a larger one.
   */
  async maxTimestampOffset(
    fromOffset: number = this.logStartOffsetValue,
  ): Promise<{ timestamp: number; offset: number }> {
    this.assertOpen();
    const from = Math.max(fromOffset, this.logStartOffsetValue);
    const segments = [...this.segments];
    const first = segments.findIndex((segment) => segment.nextOffset > from);
    let best = { timestamp: NO_TIMESTAMP, offset: -1 };
    if (first < 0) return best;
    for (const segment of segments.slice(first + 1)) {
      if (segment.maxTimestamp > best.timestamp) {
        best = { timestamp: segment.maxTimestamp, offset: segment.offsetOfMaxTimestamp };
      }
    }
    const head = segments[first]!;
    // What is left of the head segment cannot beat a larger maximum found after it; on a tie the head,
    // earlier in the log, would win, so it is still looked at.
    if (head.maxTimestamp === NO_TIMESTAMP || head.maxTimestamp < best.timestamp) return best;
    if (!head.acquire()) return this.maxTimestampOffset(fromOffset);
    let found: Awaited<ReturnType<LogSegment["maxTimestampFrom"]>>;
    try {
      found = await head.maxTimestampFrom(from);
    } finally {
      head.release();
    }
    if (found !== undefined && "corrupt" in found) throw this.corruption(head, found);
    return found !== undefined && found.timestamp >= best.timestamp ? found : best;
  }

  private segmentIndexFor(offset: number): number {
    let low = 0;
    let high = this.segments.length - 1;
    let found = 0;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.segments[middle]!.baseOffset <= offset) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  private get activeSegment(): LogSegment {
    return this.segments.at(-1)!;
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new InvalidRequestError(`log ${this.directory} is closed; reopen it with PartitionLog.open`);
    }
  }

  // ---- truncation, log start, retention ----------------------------------------------------------

  /**
   * Raft truncation of a divergent suffix: removes every batch at or above `offset`. When `offset`
   * falls inside a batch, that whole batch goes too (the cut lands on a batch boundary); the new log
   * end offset is returned. Durable (epochs, recovery point, directory) before it resolves.
   */
  truncateTo(offset: number): Promise<TruncationResult> {
    requireOffset("offset", offset);
    return this.enqueue(async () => {
      this.assertWritable();
      if (offset >= this.logEndOffsetValue) {
        return { logEndOffset: this.logEndOffsetValue, removedBytes: 0, removedSegments: 0 };
      }
      if (offset < this.logStartOffsetValue) {
        throw new OffsetOutOfRangeError(
          `cannot truncate ${this.directory} to ${offset}, below its log start offset ${this.logStartOffsetValue}; ` +
            "use truncateFullyAndStartAt to reset the log (e.g. after installing a snapshot)",
        );
      }
      try {
        return await this.truncateSuffix(offset);
      } catch (error) {
        if (error instanceof OffsetOutOfRangeError) throw error;
        throw this.fail(`truncating ${this.directory} to ${offset} failed (${describeCause(error)})`, error);
      }
    });
  }

  private async truncateSuffix(offset: number): Promise<TruncationResult> {
    this.truncationCount += 1;
    const keepIndex = this.segmentIndexFor(offset);
    const removed = this.segments.splice(keepIndex + 1);
    let removedBytes = 0;
    for (const segment of removed) {
      removedBytes += segment.size;
      await segment.markForDeletion();
      this.trackDeletion(segment);
    }
    const keep = this.activeSegment;
    const cut = await keep.truncateTo(offset);
    removedBytes += cut.removedBytes;
    if (cut.nextOffset < this.logStartOffsetValue) {
      // The batch holding `offset` began below the log start, so nothing visible is left: restart
      // the log empty at its start offset rather than let the end fall below the start.
      const remaining = this.segments.length;
      await this.resetTo(this.logStartOffsetValue);
      return {
        logEndOffset: this.logEndOffsetValue,
        removedBytes,
        removedSegments: removed.length + remaining,
      };
    }
    this.logEndOffsetValue = cut.nextOffset;
    this.flushedOffsetValue = Math.min(this.flushedOffsetValue, cut.nextOffset);
    if (this.recoveryPoint > keep.baseOffset) {
      this.recoveryPoint = keep.baseOffset;
      await this.recoveryPointCheckpoint.request();
    }
    // Epochs at and after the recovery point (now at most `keep`) are rebuilt by recovery anyway.
    if (this.epochCache.truncateFromEnd(cut.nextOffset)) this.persistEpochs();
    await this.syncDirectory();
    return { logEndOffset: cut.nextOffset, removedBytes, removedSegments: removed.length };
  }

  /**
   * Empties the log and restarts it at `offset` (Raft snapshot install / follower far behind).
   */
  truncateFullyAndStartAt(offset: number): Promise<void> {
    requireOffset("offset", offset);
    return this.enqueue(async () => {
      this.assertWritable();
      try {
        await this.resetTo(offset);
      } catch (error) {
        throw this.fail(
          `resetting ${this.directory} to start at ${offset} failed (${describeCause(error)})`,
          error,
        );
      }
    });
  }

  private async resetTo(offset: number): Promise<void> {
    this.truncationCount += 1;
    const removed = this.segments.splice(0);
    for (const segment of removed) {
      await segment.markForDeletion();
      this.trackDeletion(segment);
    }
    this.segments.push(await LogSegment.create(this.directory, offset, this.now(), this.settings));
    this.logStartOffsetValue = offset;
    this.logEndOffsetValue = offset;
    this.flushedOffsetValue = offset;
    this.recoveryPoint = offset;
    this.epochCache.clear();
    this.persistEpochs();
    await Promise.all([
      this.writeEpochs(),
      this.logStartCheckpoint.request(),
      this.recoveryPointCheckpoint.request(),
    ]);
    await this.syncDirectory();
  }

  private syncDirectory(): Promise<void> {
    return this.settings.files.transient(() => fsyncDirectory(this.directory));
  }

  /**
   * DeleteRecords: records below `offset` become unreadable at once; whole segments below it are
   * deleted (the active one too, after rolling, if everything in it is below). Durable on resolve.
   */
  advanceLogStartOffset(offset: number): Promise<RetentionResult> {
    requireOffset("offset", offset);
    return this.enqueue(async () => {
      this.assertWritable();
      if (offset > this.logEndOffsetValue) {
        throw new OffsetOutOfRangeError(
          `cannot delete records up to ${offset}: the log end offset of ${this.directory} is ` +
            `${this.logEndOffsetValue}; pass an offset at or below it (usually the high watermark)`,
        );
      }
      if (offset <= this.logStartOffsetValue)
        return { deleted: [], logStartOffset: this.logStartOffsetValue };
      this.logStartOffsetValue = offset;
      if (this.epochCache.truncateFromStart(offset)) this.persistEpochs();
      await this.logStartCheckpoint.request();
      const active = this.activeSegment;
      if (active.size > 0 && active.nextOffset <= offset) {
        await this.roll(this.logEndOffsetValue, "delete-records");
      }
      let count = 0;
      while (count + 1 < this.segments.length && this.segments[count + 1]!.baseOffset <= offset) count += 1;
      const deleted = await this.deleteOldestSegments(count, () => "delete-records");
      return { deleted, logStartOffset: this.logStartOffsetValue };
    });
  }

  /**
   * One retention pass (the broker calls it periodically): deletes the oldest segments past retention.ms
   * or needed to get under retention.bytes, never reaching `upToOffset` (pass the high watermark). The
   * active segment goes too, rolled first, once everything in the log is to go (Kafka's rule). Returns
   * what it deleted, for logs and metrics.
   */
  applyRetention(options: { now?: number; upToOffset?: number } = {}): Promise<RetentionResult> {
    return this.enqueue(async () => {
      this.assertWritable();
      const now = options.now ?? this.now();
      const upTo = Math.min(options.upToOffset ?? this.logEndOffsetValue, this.logEndOffsetValue);
      const candidates = this.segments
        .filter((segment) => segment !== this.activeSegment || segment.size > 0)
        .map((segment) => ({
          baseOffset: segment.baseOffset,
          nextOffset: segment.nextOffset,
          sizeInBytes: segment.size,
          retentionTimestamp: segment.retentionTimestamp,
        }));
      const selected = selectSegmentsToDelete(candidates, this.sizeInBytes, this.config, now, upTo);
      if (selected.length === 0) return { deleted: [], logStartOffset: this.logStartOffsetValue };
      if (selected.length === this.segments.length) await this.roll(this.logEndOffsetValue, "retention");
      const newStart = this.segments[selected.length]!.baseOffset;
      if (newStart > this.logStartOffsetValue) {
        this.logStartOffsetValue = newStart;
        if (this.epochCache.truncateFromStart(newStart)) this.persistEpochs();
        await this.logStartCheckpoint.request();
      }
      const deleted = await this.deleteOldestSegments(selected.length, (index) => selected[index]!.reason);
      return { deleted, logStartOffset: this.logStartOffsetValue };
    });
  }

  private async deleteOldestSegments(
    count: number,
    reasonFor: (index: number) => DeletionReason,
  ): Promise<RetentionResult["deleted"]> {
    invariant(count < this.segments.length, "retention never deletes the active segment");
    const removed = this.segments.splice(0, count);
    const deleted: RetentionResult["deleted"] = [];
    for (const [index, segment] of removed.entries()) {
      deleted.push({
        baseOffset: segment.baseOffset,
        nextOffset: segment.nextOffset,
        sizeInBytes: segment.size,
        reason: reasonFor(index),
      });
      await segment.markForDeletion();
      this.trackDeletion(segment);
    }
    return deleted;
  }

  private trackDeletion(segment: LogSegment): void {
    const deletion = segment.finishDeletion().catch(() => {
      // A leftover .deleted file is removed at the next open; nothing else depends on it.
    });
    this.pendingDeletions.add(deletion);
    void deletion.finally(() => this.pendingDeletions.delete(deletion));
  }

  // ---- shutdown --------------------------------------------------------------------------------

  /**
   * Clean shutdown: waits for queued work, fsyncs data, indexes and checkpoints, then writes the
   * clean-shutdown marker so the next open skips the recovery scan.
   */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.enqueue(async () => {
      if (this.closed) return;
      let cleanShutdown = this.failure === undefined;
      if (cleanShutdown) {
        try {
          await this.flush();
          await this.activeSegment.syncAll();
          await this.recoveryPointWrite;
          await Promise.all([
            this.writeEpochs(),
            this.logStartCheckpoint.settled(),
            this.recoveryPointCheckpoint.settled(),
          ]);
        } catch {
          cleanShutdown = false;
        }
      }
      // Failed or not: a stopped node must not keep disk it reserved but never wrote, or a nearly full
      // disk may leave it unable to start again.
      await this.activeSegment.releaseReservedBlocks().catch(() => {});
      this.closed = true;
      openDirectories.delete(resolve(this.directory));
      this.scheduler.forget(this.flushTarget);
      await Promise.all([...this.pendingDeletions]);
      await Promise.all(this.segments.map((segment) => segment.close().catch(() => {})));
      await this.directoryFile.close().catch(() => {});
      // Without the marker the next open rescans what may be incomplete: the safe default.
      if (cleanShutdown) {
        await this.settings.files.transient(() =>
          writeFileAtomically(join(this.directory, CLEAN_SHUTDOWN_FILE), ""),
        );
      }
    });
  }

  private describeSegment(segment: LogSegment): SegmentInfo {
    const active = segment === this.activeSegment;
    return {
      baseOffset: segment.baseOffset,
      nextOffset: active ? this.logEndOffsetValue : segment.nextOffset,
      sizeInBytes: segment.size,
      maxTimestamp: segment.maxTimestamp,
      active,
      durable: !active && !segment.awaitingCloseSync && segment.baseOffset < this.recoveryPoint,
      logPath: segment.paths.log,
      indexPath: segment.paths.index,
      timeIndexPath: segment.paths.timeIndex,
    };
  }
}

function placement(baseOffset: number, batch: AppendBatch, maxTimestamp: number): BatchPlacement {
  return {
    baseOffset,
    lastOffset: baseOffset + batch.lastOffsetDelta,
    sizeInBytes: batch.sizeInBytes,
    maxTimestamp,
    recordCount: batch.recordCount,
  };
}

function summarize(placements: BatchPlacement[], logStartOffset: number): AppendResult {
  let maxTimestamp = NO_TIMESTAMP;
  let offsetOfMaxTimestamp = placements[0]!.baseOffset;
  let sizeInBytes = 0;
  let recordCount = 0;
  for (const batch of placements) {
    if (batch.maxTimestamp > maxTimestamp) {
      maxTimestamp = batch.maxTimestamp;
      offsetOfMaxTimestamp = batch.baseOffset;
    }
    sizeInBytes += batch.sizeInBytes;
    recordCount += batch.recordCount;
  }
  const last = placements.at(-1)!;
  return {
    firstOffset: placements[0]!.baseOffset,
    lastOffset: last.lastOffset,
    nextOffset: last.lastOffset + 1,
    maxTimestamp,
    offsetOfMaxTimestamp,
    sizeInBytes,
    batchCount: placements.length,
    recordCount,
    logStartOffset,
  };
}

function validateAppendOptions(options: AppendOptions): void {
  if (typeof options !== "object" || options === null || typeof options.assignOffsets !== "boolean") {
    throw new InvalidRequestError(
      "append options need assignOffsets: true (leader) or false (follower/replay)",
    );
  }
  if (options.assignOffsets) {
    const epoch = options.leaderEpoch;
    if (typeof epoch !== "number" || !Number.isInteger(epoch) || epoch < 0 || epoch > 0x7fffffff) {
      throw new InvalidRequestError(
        `leader appends need leaderEpoch, an int32 >= 0 (the Raft term), got ${String(epoch)}`,
      );
    }
  } else if (options.logAppendTime !== undefined) {
    throw new InvalidRequestError("logAppendTime is only stamped by leader appends (assignOffsets: true)");
  }
  if (options.logAppendTime !== undefined && !Number.isSafeInteger(options.logAppendTime)) {
    throw new InvalidRequestError(`logAppendTime must be an integer of ms, got ${options.logAppendTime}`);
  }
}

function requireOffset(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidRequestError(`${name} must be a non-negative integer offset, got ${value}`);
  }
}

// ---- opening and recovery ------------------------------------------------------------------------

interface OpenedDirectory {
  segments: LogSegment[];
  epochCache: LeaderEpochCache;
  logStartOffset: number;
  recoveryPoint: number;
  report: RecoveryReport;
  /** Checkpoints whose on-disk content differs from the recovered state. */
  staleCheckpoints: { epochs: boolean; logStart: boolean; recoveryPoint: boolean };
}

function emptyReport(directory: string): RecoveryReport {
  return {
    directory,
    cleanShutdown: false,
    segmentsScanned: 0,
    bytesScanned: 0,
    truncations: [],
    deletedSegments: [],
    rebuiltIndexes: [],
    removedFiles: [],
    orphanIndexFiles: [],
    checkpointProblems: [],
    offsetGaps: [],
    logStartOffset: 0,
    logEndOffset: 0,
  };
}

async function removeSegmentNow(segment: LogSegment): Promise<void> {
  await segment.markForDeletion();
  await segment.finishDeletion();
}

async function recoverDirectory(
  directory: string,
  settings: SegmentSettings,
  now: () => number,
  initialOffset: number,
  onEvent: (event: LogEvent) => void,
  /** Every segment recovery creates or loads, so a failed open can release their descriptors. */
  touched: LogSegment[],
): Promise<OpenedDirectory> {
  const create = async (baseOffset: number) => {
    const segment = await LogSegment.create(directory, baseOffset, now(), settings);
    touched.push(segment);
    return segment;
  };
  const report = emptyReport(directory);
  // Until the log exists, an fsync failure of an evicted file fails the open instead.
  let syncFailure: KafkaStorageError | undefined;
  settings.onSyncError = (error) => {
    syncFailure ??= error;
  };
  settings.onIndexRebuilt = (baseOffset, reason) => {
    report.rebuiltIndexes.push({ segmentBaseOffset: baseOffset, reason });
    onEvent({ type: "index-rebuilt", baseOffset, reason });
  };
  const files = settings.files;
  const names = await files.transient(() => readdir(directory));
  const logBases: number[] = [];
  const indexFiles: { name: string; baseOffset: number }[] = [];
  /** Segments whose deletion a stop interrupted: their `.log` was renamed, their indexes maybe not yet. */
  const beingDeleted = new Set<number>();
  for (const name of names) {
    if (name.endsWith(DELETED_SUFFIX) || name.endsWith(TEMPORARY_SUFFIX)) {
      await unlinkIfExists(join(directory, name));
      report.removedFiles.push(name);
      const renamed = name.endsWith(DELETED_SUFFIX)
        ? parseSegmentFileName(name.slice(0, -DELETED_SUFFIX.length))
        : undefined;
      if (renamed?.kind === "log") beingDeleted.add(renamed.baseOffset);
      continue;
    }
    const parsed = parseSegmentFileName(name);
    if (!parsed) continue;
    if (parsed.kind === "log") logBases.push(parsed.baseOffset);
    else indexFiles.push({ name, baseOffset: parsed.baseOffset });
  }
  logBases.sort((a, b) => a - b);
  const logBaseSet = new Set(logBases);
  const orphanBases = new Set<number>();
  for (const file of indexFiles) {
    if (logBaseSet.has(file.baseOffset)) continue;
    await unlinkIfExists(join(directory, file.name));
    report.removedFiles.push(file.name);
    // Retention or a deletion had begun on it: its records were meant to go, nothing is missing.
    if (beingDeleted.has(file.baseOffset)) continue;
    report.orphanIndexFiles.push(file.name);
    orphanBases.add(file.baseOffset);
  }
  for (const orphan of [...orphanBases].sort((a, b) => a - b)) {
    // Past the last segment the orphan may be an active segment's leftover (its log was never written).
    const next = logBases.find((base) => base > orphan);
    if (next === undefined) continue;
    const name = segmentPaths(directory, orphan).log;
    report.offsetGaps.push({
      from: orphan,
      to: next - 1,
      reason: `segment file ${name} was removed (its index files were still there)`,
    });
  }

  const cleanMarker = join(directory, CLEAN_SHUTDOWN_FILE);
  report.cleanShutdown = names.includes(CLEAN_SHUTDOWN_FILE);
  const brandNew = logBases.length === 0;
  const read = (name: string, fields: number) =>
    files.transient(() => readCheckpoint(join(directory, name), fields));
  const epochRead = await read(LEADER_EPOCH_CHECKPOINT_FILE, 2);
  const startRead = await read(LOG_START_OFFSET_CHECKPOINT_FILE, 1);
  const recoveryRead = await read(RECOVERY_POINT_CHECKPOINT_FILE, 1);
  for (const [name, read] of [
    [LEADER_EPOCH_CHECKPOINT_FILE, epochRead],
    [LOG_START_OFFSET_CHECKPOINT_FILE, startRead],
    [RECOVERY_POINT_CHECKPOINT_FILE, recoveryRead],
  ] as const) {
    if (read.status === "corrupt") report.checkpointProblems.push(`${name}: ${read.reason}`);
    if (read.status === "missing" && !brandNew) report.checkpointProblems.push(`${name}: missing`);
  }
  const readEpochs = epochRead.status === "ok" ? epochRead.entries : undefined;
  const readStart = startRead.status === "ok" ? startRead.entries[0]![0] : undefined;
  const readRecoveryPoint = recoveryRead.status === "ok" ? recoveryRead.entries[0]![0] : undefined;

  let epochCache = new LeaderEpochCache();
  let epochsTrusted = readEpochs !== undefined;
  if (readEpochs) {
    try {
      epochCache = new LeaderEpochCache(
        readEpochs.map(([epoch, startOffset]) => ({ epoch: epoch!, startOffset: startOffset! })),
      );
    } catch (error) {
      report.checkpointProblems.push(`${LEADER_EPOCH_CHECKPOINT_FILE}: ${(error as Error).message}`);
      epochsTrusted = false;
      epochCache = new LeaderEpochCache();
    }
  }

  let logStartOffset = readStart ?? logBases[0] ?? initialOffset;
  const segments: LogSegment[] = [];
  if (brandNew) {
    segments.push(await create(logStartOffset));
  }

  const indexProblems = new Map<LogSegment, string>();
  for (const baseOffset of logBases) {
    const { segment, indexProblem } = await LogSegment.load(directory, baseOffset, now(), settings);
    touched.push(segment);
    segments.push(segment);
    if (indexProblem !== undefined) indexProblems.set(segment, indexProblem);
  }
  for (let index = 0; index + 1 < segments.length; index += 1) {
    segments[index]!.setEnd(segments[index + 1]!.baseOffset);
  }

  // Which segments to re-read: none after a clean shutdown, else those from the recovery point on;
  // all of them if the epoch checkpoint is unusable (epochs are rebuilt from the batch headers).
  let rescanFrom: number;
  if (brandNew) rescanFrom = Number.POSITIVE_INFINITY;
  else if (!epochsTrusted) rescanFrom = 0;
  else if (report.cleanShutdown) rescanFrom = Number.POSITIVE_INFINITY;
  else rescanFrom = readRecoveryPoint ?? 0;
  let firstRescan = segments.length;
  if (Number.isFinite(rescanFrom)) {
    firstRescan = segments.findIndex((_segment, index) => {
      const next = segments[index + 1];
      return !next || next.baseOffset > rescanFrom;
    });
  }

  const rescanned = new Set<LogSegment>();
  const dropFrom = async (index: number, reason: string) => {
    for (const segment of segments.splice(index)) {
      await removeSegmentNow(segment);
      report.deletedSegments.push({ baseOffset: segment.baseOffset, reason });
    }
  };
  const rescan = async (from: number, cache: LeaderEpochCache): Promise<"ok" | "epoch-conflict"> => {
    if (from >= segments.length) return "ok";
    cache.truncateFromEnd(segments[from]!.baseOffset);
    for (let index = from; index < segments.length; index += 1) {
      const segment = segments[index]!;
      const previousEnd = index > 0 ? segments[index - 1]!.nextOffset : segment.baseOffset;
      if (index > 0 && segment.baseOffset !== previousEnd) {
        await dropFrom(
          index,
          `starts at ${segment.baseOffset} but the previous segment ends at ${previousEnd} (lost or overlapping data)`,
        );
        return "ok";
      }
      const recovery = await segment.recover();
      rescanned.add(segment);
      report.segmentsScanned += 1;
      report.bytesScanned += recovery.validBytes + recovery.removedBytes;
      const indexProblem = indexProblems.get(segment);
      if (indexProblem !== undefined) {
        report.rebuiltIndexes.push({ segmentBaseOffset: segment.baseOffset, reason: indexProblem });
        indexProblems.delete(segment);
      }
      try {
        for (const [epoch, start] of recovery.epochStarts) cache.assign(epoch, start);
      } catch (error) {
        if (from > 0) {
          report.checkpointProblems.push(`${LEADER_EPOCH_CHECKPOINT_FILE}: ${(error as Error).message}`);
          return "epoch-conflict";
        }
        // Even the batch headers disagree (epochs go back between segments): the log is damaged
        // from this segment on; keep the consistent prefix.
        cache.truncateFromEnd(segment.baseOffset);
        await dropFrom(index, `its leader epochs go back: ${(error as Error).message}`);
        return "ok";
      }
      if (recovery.problem !== undefined) {
        report.truncations.push({
          segmentBaseOffset: segment.baseOffset,
          validBytes: recovery.validBytes,
          removedBytes: recovery.removedBytes,
          reason: recovery.problem,
          ...(recovery.lostOffsets ? { lostOffsets: recovery.lostOffsets } : {}),
        });
        // Whatever followed the cut cannot continue the log: drop the later segments.
        await dropFrom(index + 1, `follows the cut in segment ${segment.baseOffset}`);
        return "ok";
      }
    }
    return "ok";
  };
  if ((await rescan(firstRescan, epochCache)) === "epoch-conflict") {
    epochCache = new LeaderEpochCache();
    await rescan(0, epochCache);
  }
  if (segments.length === 0) {
    segments.push(await create(logStartOffset));
  }

  for (const [segment, problem] of indexProblems) {
    if (!segments.includes(segment)) continue;
    const cut = await segment.rebuildIndexes();
    const reason = cut === undefined ? problem : `${problem}; segment ${cut}`;
    const next = segments[segments.indexOf(segment) + 1];
    if (next) segment.setEnd(next.baseOffset);
    report.rebuiltIndexes.push({ segmentBaseOffset: segment.baseOffset, reason });
    onEvent({ type: "index-rebuilt", baseOffset: segment.baseOffset, reason });
  }

  // Segments wholly below the log start offset (a retention pass interrupted by a crash).
  logStartOffset = Math.max(logStartOffset, segments[0]!.baseOffset);
  while (segments.length > 1 && segments[1]!.baseOffset <= logStartOffset) {
    const segment = segments.shift()!;
    await removeSegmentNow(segment);
    report.deletedSegments.push({ baseOffset: segment.baseOffset, reason: "below the log start offset" });
  }

  const active = segments.at(-1)!;
  if (!rescanned.has(active) && !brandNew) {
    // Clean shutdown: find the end of the active segment by walking from its last index entry.
    const tailProblem = await active.scanTail();
    if (tailProblem !== undefined) {
      const recovery = await active.recover();
      rescanned.add(active);
      report.segmentsScanned += 1;
      report.bytesScanned += recovery.validBytes + recovery.removedBytes;
      report.truncations.push({
        segmentBaseOffset: active.baseOffset,
        validBytes: recovery.validBytes,
        removedBytes: recovery.removedBytes,
        reason: recovery.problem ?? tailProblem,
        ...(recovery.lostOffsets ? { lostOffsets: recovery.lostOffsets } : {}),
      });
      epochCache.truncateFromEnd(active.baseOffset);
      try {
        for (const [epoch, start] of recovery.epochStarts) epochCache.assign(epoch, start);
      } catch {
        epochCache = new LeaderEpochCache();
        await rescan(0, epochCache);
      }
    }
  }

  if (logStartOffset > segments.at(-1)!.nextOffset) {
    // The cut tail held the log start: the log restarts, empty, at its start offset.
    await dropFrom(0, "the log start offset is past the recovered end");
    segments.push(await create(logStartOffset));
    epochCache.clear();
  }
  epochCache.truncateFromEnd(segments.at(-1)!.nextOffset);
  epochCache.truncateFromStart(logStartOffset);

  // What was re-read may exist only in the page cache of a crashed process: make it durable before
  // it counts as flushed.
  for (const segment of segments) if (rescanned.has(segment)) await segment.syncAll({ force: true });
  await unlinkIfExists(cleanMarker);
  await files.transient(() => fsyncDirectory(directory));
  if (syncFailure !== undefined) throw syncFailure;

  const recoveryPoint = segments.at(-1)!.baseOffset;
  const epochs = epochCache.snapshot().map((entry) => [entry.epoch, entry.startOffset]);
  report.logStartOffset = logStartOffset;
  report.logEndOffset = segments.at(-1)!.nextOffset;
  return {
    segments,
    epochCache,
    logStartOffset,
    recoveryPoint,
    report,
    staleCheckpoints: {
      epochs: JSON.stringify(epochs) !== JSON.stringify(readEpochs ?? null),
      logStart: readStart !== logStartOffset,
      recoveryPoint: readRecoveryPoint !== recoveryPoint,
    },
  };
}
