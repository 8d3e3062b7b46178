import type { LogConfig, ReadBufferAllocator, ReadOptions, RetentionResult } from "@raftka/storage";

/** Kafka's `acks`: 0 (nobody waits), 1 (the leader's local append), -1 (committed: the high watermark passed it). */
export type Acks = 0 | 1 | -1;

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface ReplicatedAppendOptions {
  readonly acks: Acks;
  /** Stamp LogAppendTime with this time (message.timestamp.type=LogAppendTime). */
  readonly logAppendTime?: number;
}

export interface ReplicatedAppendResult {
  /** Offset of the first record appended. */
  readonly baseOffset: number;
  /** Offset of the last record appended. */
  readonly lastOffset: number;
  /** The log start offset when the append resolved (Produce v5+ answers it). */
  readonly logStartOffset: number;
}

export interface ReplicatedReadResult {
  /** Whole record batches, possibly starting before the requested offset (the batch containing it). */
  readonly records: Buffer;
  /** Offset just after the last batch returned. */
  readonly nextOffset: number;
}

export interface ReplicatedLogStats {
  readonly segmentCount: number;
  readonly sizeBytes: number;
}

/** Called whenever the high watermark moves forward; `committedBytes` is the running total of committed batch bytes. */
export type HighWatermarkListener = (highWatermark: number, committedBytes: number) => void;

/** Called when this replica gains or loses the partition's leadership (epoch = the new leader epoch). */
export type LeadershipListener = (change: {
  readonly isLeader: boolean;
  readonly leaderEpoch: number;
}) => void;

/**
 * The seam between the Kafka handlers and a partition's log. Handlers only see Kafka concepts: offsets,
 * a high watermark, a leader epoch. `RaftReplicatedLog` implements it on a Raft group of the node's
 * RaftNodeHost: positions stay Kafka offsets, the Raft term is the batch's partitionLeaderEpoch and the
 * leader epoch, and the high watermark is the Raft commit index + 1.
 *
 * Ordering contract: `append` starts the append synchronously, so appends are ordered by call order.
 */
export interface ReplicatedLog {
  readonly topicPartition: TopicPartition;
  /** This replica's directory: state kept beside the log (producer state snapshots) lives there. */
  readonly directory: string;
  /** This replica's node id when it leads the partition, -1 when no leader is known. */
  readonly leaderId: number;
  readonly isLeader: boolean;
  /** The epoch the leader stamps into batches it appends (the Raft term). */
  readonly leaderEpoch: number;
  readonly replicas: readonly number[];
  readonly inSyncReplicas: readonly number[];
  readonly logStartOffset: number;
  /** Offset the next appended record gets. */
  readonly logEndOffset: number;
  /** Records below it are committed and visible to consumers. */
  readonly highWatermark: number;
  /** Running total of committed batch bytes since the log was opened (long-poll `min.bytes` accounting). */
  readonly committedBytes: number;
  /**
   * Whether the log keeps no reference to an append's records once the append has resolved, so that the
   * caller may reuse their memory (Produce gives its request's frame back to the node's pool). False where
   * the log keeps them, for followers to fetch for one.
   */
  readonly releasesAppendedRecords: boolean;

  /**
   * Appends whole v2 batches as the leader (offsets and epoch are stamped in place). Resolves once the local
   * append is done (acks 0 and 1) or once the high watermark has passed the last record (acks -1).
   */
  append(records: Buffer, options: ReplicatedAppendOptions): Promise<ReplicatedAppendResult>;
  /**
   * Whole batches from the one containing `fromOffset`, never reaching the high watermark; read into
   * buffers from `allocate` where given (Fetch reuses them once the response is written). At least one
   * batch even if larger than `maxBytes`, unless `options.minOneBatch` is false (see ReadOptions).
   */
  read(
    fromOffset: number,
    maxBytes: number,
    allocate?: ReadBufferAllocator,
    options?: ReadOptions,
  ): Promise<ReplicatedReadResult>;
  /**
   * First committed batch with a max timestamp >= `timestamp` that reaches `fromOffset` (default and at
   * least the log start); the offset is that batch's base offset, or `fromOffset` if later.
   */
  offsetForTimestamp(
    timestamp: number,
    fromOffset?: number,
  ): Promise<{ offset: number; timestamp: number } | undefined>;
  /**
   * Largest batch max timestamp among the batches that reach `fromOffset` (default and at least the log
   * start) and the base offset of the first batch that has it; offset -1 when none is left.
   */
  maxTimestampOffset(fromOffset?: number): Promise<{ timestamp: number; offset: number }>;
  /** OffsetForLeaderEpoch: the largest epoch <= `epoch` and its end offset; -1/-1 when unknown. */
  endOffsetForEpoch(epoch: number): { epoch: number; endOffset: number };
  /** The epoch of the batch holding `offset`, or undefined outside the log. */
  epochForOffset(offset: number): number | undefined;
  /** DeleteRecords: makes everything below `offset` unreadable; resolves to the new log start offset. */
  deleteRecordsBefore(offset: number): Promise<number>;
  /** One retention pass (time and size), never deleting uncommitted data. */
  applyRetention(now: number): Promise<RetentionResult>;
  updateConfig(config: Partial<LogConfig>): void;
  /**
   * Subscribes to leadership changes after the log was opened (a log is opened and, for a partition this
   * node should lead, awaited as leader before the broker serves it); returns the unsubscribe function.
   */
  onLeadershipChange(listener: LeadershipListener): () => void;
  /** Subscribes to high watermark advances; returns the unsubscribe function. */
  onHighWatermark(listener: HighWatermarkListener): () => void;
  stats(): ReplicatedLogStats;
  /** Flushes and closes (clean shutdown); pending acks=all appends are answered first. */
  close(): Promise<void>;
}
