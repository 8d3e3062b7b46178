import {
  type DirectReads,
  type DirectWrites,
  type FlushScheduler,
  type LogConfig,
  type LogEvent,
  PartitionLog,
  type ReadBufferAllocator,
  type ReadOptions,
  type RetentionResult,
} from "@raftka/storage";
import type {
  HighWatermarkListener,
  LeadershipListener,
  ReplicatedAppendOptions,
  ReplicatedAppendResult,
  ReplicatedLog,
  ReplicatedLogStats,
  ReplicatedReadResult,
  TopicPartition,
} from "./replicated-log.js";

export interface LocalReplicatedLogOptions {
  readonly topicPartition: TopicPartition;
  readonly nodeId: number;
  /** Leader epoch from the cluster metadata; the log's own latest epoch wins if it is higher. */
  readonly leaderEpoch: number;
  readonly config?: Partial<LogConfig>;
  readonly flushScheduler: FlushScheduler;
  /** Lets large appends bypass the page cache (log.direct.io.enable); without it, none do. */
  readonly directWrites?: DirectWrites;
  /** Lets reads of data not in the page cache bypass it (log.direct.reads.enable); without it, none do. */
  readonly directReads?: DirectReads;
  /**
   * Whether the disk can spare `bytes` for blocks reserved ahead of appends (log.preallocate); when it
   * answers true they count as taken. Without it, every reservation is made.
   */
  readonly mayReserve?: (bytes: number) => boolean;
  readonly now?: () => number;
  readonly onEvent?: (event: LogEvent) => void;
}

interface CommitWaiter {
  /** Resolved once the high watermark reaches this offset. */
  readonly offset: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Appended batches not yet committed, with the running byte total at their end (min.bytes accounting). */
interface UncommittedRange {
  readonly endOffset: number;
  readonly appendedBytes: number;
}

/**
 * A partition with one replica: the commit rule of a one-member Raft group, where an entry is committed once
 * it is on this node's disk. The high watermark is therefore the fsynced log end. Every append asks the
 * node's group-commit scheduler for an fsync at once, so acks=all costs one shared fsync round, and acks=1
 * answers right after the local write.
 */
export class LocalReplicatedLog implements ReplicatedLog {
  readonly topicPartition: TopicPartition;
  readonly leaderId: number;
  readonly isLeader = true;
  /** Storage writes an append's buffers and keeps none of them. */
  readonly releasesAppendedRecords = true;
  readonly leaderEpoch: number;
  readonly replicas: readonly number[];
  readonly inSyncReplicas: readonly number[];
  private highWatermarkValue: number;
  private appendedBytes = 0;
  private committedBytesValue = 0;
  private readonly uncommitted: UncommittedRange[] = [];
  private readonly waiters: CommitWaiter[] = [];
  private readonly listeners = new Set<HighWatermarkListener>();
  private readonly pendingFlushes = new Set<Promise<void>>();

  private constructor(
    private readonly log: PartitionLog,
    options: LocalReplicatedLogOptions,
  ) {
    this.topicPartition = options.topicPartition;
    this.leaderId = options.nodeId;
    this.leaderEpoch = Math.max(options.leaderEpoch, log.latestEpoch ?? 0);
    this.replicas = [options.nodeId];
    this.inSyncReplicas = [options.nodeId];
    // After a crash the recovered tail may not be fsynced yet; only what storage knows is durable counts.
    this.highWatermarkValue = log.flushedOffset;
    if (log.flushedOffset < log.logEndOffset) this.requestFlush();
  }

  static async open(directory: string, options: LocalReplicatedLogOptions): Promise<LocalReplicatedLog> {
    const log = await PartitionLog.open(directory, {
      config: { ...options.config, flushBeforeAck: false },
      flushScheduler: options.flushScheduler,
      ...(options.directWrites ? { directWrites: options.directWrites } : {}),
      ...(options.directReads ? { directReads: options.directReads } : {}),
      ...(options.mayReserve ? { mayReserve: options.mayReserve } : {}),
      ...(options.now ? { now: options.now } : {}),
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    });
    return new LocalReplicatedLog(log, options);
  }

  /** What storage recovery did when the log was opened, for the start-up log. */
  get recoveryReport(): PartitionLog["recoveryReport"] {
    return this.log.recoveryReport;
  }

  get directory(): string {
    return this.log.directory;
  }

  get logStartOffset(): number {
    return this.log.logStartOffset;
  }

  get logEndOffset(): number {
    return this.log.logEndOffset;
  }

  get highWatermark(): number {
    return this.highWatermarkValue;
  }

  get committedBytes(): number {
    return this.committedBytesValue;
  }

  append(records: Buffer, options: ReplicatedAppendOptions): Promise<ReplicatedAppendResult> {
    // Called synchronously so the storage queue sees appends in call order (the ordering contract).
    const appended = this.log.append(records, {
      assignOffsets: true,
      leaderEpoch: this.leaderEpoch,
      waitForFlush: false,
      ...(options.logAppendTime === undefined ? {} : { logAppendTime: options.logAppendTime }),
    });
    return appended.then((result) => {
      this.appendedBytes += result.sizeInBytes;
      this.uncommitted.push({ endOffset: result.lastOffset + 1, appendedBytes: this.appendedBytes });
      // acks=all waits on this fsync: it need not wait for a round of other logs' fsyncs.
      this.requestFlush(options.acks === -1);
      const outcome = {
        baseOffset: result.firstOffset,
        lastOffset: result.lastOffset,
        logStartOffset: result.logStartOffset,
      };
      if (options.acks !== -1 || this.highWatermarkValue > result.lastOffset) return outcome;
      return new Promise<ReplicatedAppendResult>((resolve, reject) => {
        this.waiters.push({
          offset: result.lastOffset + 1,
          resolve: () => resolve({ ...outcome, logStartOffset: this.log.logStartOffset }),
          reject,
        });
      });
    });
  }

  async read(
    fromOffset: number,
    maxBytes: number,
    allocate?: ReadBufferAllocator,
    options?: ReadOptions,
  ): Promise<ReplicatedReadResult> {
    const result = await this.log.read(fromOffset, maxBytes, this.highWatermarkValue, allocate, options);
    return { records: result.records, nextOffset: result.nextOffset };
  }

  offsetForTimestamp(
    timestamp: number,
    fromOffset?: number,
  ): Promise<{ offset: number; timestamp: number } | undefined> {
    return this.log.offsetForTimestamp(timestamp, this.highWatermarkValue, fromOffset);
  }

  maxTimestampOffset(fromOffset?: number): Promise<{ timestamp: number; offset: number }> {
    return this.log.maxTimestampOffset(fromOffset);
  }

  endOffsetForEpoch(epoch: number): { epoch: number; endOffset: number } {
    return this.log.endOffsetForEpoch(epoch);
  }

  epochForOffset(offset: number): number | undefined {
    return this.log.epochForOffset(offset);
  }

  async deleteRecordsBefore(offset: number): Promise<number> {
    if (offset > this.highWatermarkValue) {
      throw new RangeError(
        `cannot delete records up to ${offset}: only offsets up to the high watermark ${this.highWatermarkValue} may be deleted`,
      );
    }
    const result = await this.log.advanceLogStartOffset(offset);
    return result.logStartOffset;
  }

  applyRetention(now: number): Promise<RetentionResult> {
    return this.log.applyRetention({ now, upToOffset: this.highWatermarkValue });
  }

  updateConfig(config: Partial<LogConfig>): void {
    this.log.updateConfig({ ...config, flushBeforeAck: false });
  }

  onHighWatermark(listener: HighWatermarkListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A single local replica leads from the moment it is opened until it is closed: nothing to report. */
  onLeadershipChange(_listener: LeadershipListener): () => void {
    return () => {};
  }

  stats(): ReplicatedLogStats {
    return { segmentCount: this.log.segmentInfos().length, sizeBytes: this.log.sizeInBytes };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pendingFlushes]);
    try {
      await this.log.close();
      this.advanceHighWatermark(this.log.flushedOffset);
    } finally {
      this.failWaiters(new Error(`partition ${describe(this.topicPartition)} was closed; retry the request`));
    }
  }

  /** Group-committed fsync; when it lands everything it covered becomes committed. */
  private requestFlush(urgent = false): void {
    const flush = this.log.flush({ urgent }).then(
      (flushedOffset) => this.advanceHighWatermark(flushedOffset),
      (error: unknown) => this.failWaiters(error),
    );
    this.pendingFlushes.add(flush);
    void flush.finally(() => this.pendingFlushes.delete(flush));
  }

  private advanceHighWatermark(offset: number): void {
    if (offset <= this.highWatermarkValue) return;
    this.highWatermarkValue = offset;
    while (this.uncommitted.length > 0 && this.uncommitted[0]!.endOffset <= offset) {
      this.committedBytesValue = this.uncommitted.shift()!.appendedBytes;
    }
    while (this.waiters.length > 0 && this.waiters[0]!.offset <= offset) this.waiters.shift()!.resolve();
    for (const listener of this.listeners) listener(offset, this.committedBytesValue);
  }

  private failWaiters(error: unknown): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}

function describe(topicPartition: TopicPartition): string {
  return `${topicPartition.topic}-${topicPartition.partition}`;
}
