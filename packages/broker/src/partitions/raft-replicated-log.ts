import { performance } from "node:perf_hooks";
import { ErrorCode, KafkaError } from "@raftka/protocol";
import {
  type GroupId,
  type LeadershipEvent,
  NotLeaderError,
  PartitionRaftLog,
  ProposalDroppedError,
  raftKeyPrefix,
  type StartedProposal,
} from "@raftka/raft";
import {
  BATCH_LENGTH_POSITION,
  CorruptRecordError,
  checkBatch,
  type DirectReads,
  type DirectWrites,
  type FlushScheduler,
  LAST_OFFSET_DELTA_POSITION,
  LOG_OVERHEAD,
  type LogConfig,
  type LogEvent,
  PartitionLog,
  type ReadBufferAllocator,
  type ReadOptions,
  RecordBatchTooLargeError,
  type RetentionResult,
  stampLogAppendTime,
} from "@raftka/storage";
import type { RaftGroups } from "./raft-groups.js";
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

export interface RaftReplicatedLogOptions {
  readonly topicPartition: TopicPartition;
  readonly nodeId: number;
  readonly group: GroupId;
  readonly raft: RaftGroups;
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
  /** Seconds from a leader's proposal to its commit (raftka_raft_commit_latency_seconds). */
  readonly observeCommitLatency?: (seconds: number) => void;
}

interface WrittenWaiter {
  readonly offset: number;
  readonly resolve: () => void;
}

/** Proposed batches not yet committed, with the running byte total at their end (min.bytes accounting). */
interface UncommittedRange {
  readonly lastOffset: number;
  readonly appendedBytes: number;
}

/**
 * A partition as a Raft group on the node's RaftNodeHost. The group's Raft log is the partition's Kafka
 * log (PartitionRaftLog: one entry per record batch, the term in partitionLeaderEpoch, Raft's own
 * entries as control batches that consumers skip). Leader appends are Raft proposals; the high
 * watermark is the commit index + 1; the leader epoch is the Raft term, so every restart (a new
 * election) bumps it, as KRaft does. acks=1 answers once the batch is written to the local log,
 * acks=all once it is committed. Reads stop at the high watermark.
 *
 * Today every group has this node as its only voter: it elects itself at once when opened, and an
 * entry commits with the fsync round that makes it durable here (group-committed across partitions).
 */
export class RaftReplicatedLog implements ReplicatedLog {
  readonly topicPartition: TopicPartition;
  readonly group: GroupId;
  readonly replicas: readonly number[];
  readonly inSyncReplicas: readonly number[];
  private term: number;
  private leader = -1;
  private role: LeadershipEvent["role"] = "follower";
  /**
   * The log end when this node became leader (its no-op, or its last entry when the whole log was
   * committed and it skipped the no-op): leadership is usable once that is committed.
   */
  private termStartOffset = Number.POSITIVE_INFINITY;
  private commitIndex: number;
  private writtenOffset: number;
  private appendedBytes = 0;
  private committedBytesValue = 0;
  private readonly uncommitted: UncommittedRange[] = [];
  private readonly writtenWaiters: WrittenWaiter[] = [];
  private readonly listeners = new Set<HighWatermarkListener>();
  private readonly leadershipListeners = new Set<LeadershipListener>();
  /** The commit of the newest proposal: entries commit in order, so close() waits for this one. */
  private lastCommit: Promise<unknown> | undefined;
  private readyWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private readonly unlisten: () => void;
  private closed = false;
  /** raftka.verify.crc.on.append, checked here before proposing (the storage log below skips it). */
  private verifyCrc: boolean;

  private constructor(
    private readonly log: PartitionLog,
    private readonly raftLog: PartitionRaftLog,
    private readonly options: RaftReplicatedLogOptions,
  ) {
    this.topicPartition = options.topicPartition;
    this.group = options.group;
    this.replicas = [options.nodeId];
    this.inSyncReplicas = [options.nodeId];
    this.term = raftLog.lastTerm();
    this.commitIndex = raftLog.snapshotMeta().offset;
    this.writtenOffset = log.logEndOffset - 1;
    this.verifyCrc = options.config?.verifyCrcOnAppend ?? true;
    this.unlisten = options.raft.listen(options.group, (event) => this.leadershipChanged(event));
  }

  /**
   * Opens the partition's log, starts its group on the node's host and campaigns at once. Resolves
   * before the election is over: await `whenLeader()` before serving (many partitions open in parallel
   * share the fsync round their no-op entries commit in).
   */
  static async open(directory: string, options: RaftReplicatedLogOptions): Promise<RaftReplicatedLog> {
    const log = await PartitionLog.open(directory, {
      config: storageConfig(options.config ?? {}),
      flushScheduler: options.flushScheduler,
      ...(options.directWrites ? { directWrites: options.directWrites } : {}),
      ...(options.directReads ? { directReads: options.directReads } : {}),
      ...(options.mayReserve ? { mayReserve: options.mayReserve } : {}),
      ...(options.now ? { now: options.now } : {}),
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    });
    let raftLog: PartitionRaftLog;
    try {
      raftLog = await PartitionRaftLog.open({
        log,
        stable: options.raft.stable,
        keyPrefix: raftKeyPrefix(options.group),
        initialConfig: { voters: [options.nodeId], learners: [] },
        // Entries are kept in memory only to send them to followers; a one-member group has none (and
        // Produce reuses a request's frame once its append resolved: releasesAppendedRecords).
        cacheBytes: 0,
        // Retention may have moved the log start while the partition ran without Raft.
        adoptLogStart: true,
        ...(options.now ? { now: options.now } : {}),
      });
    } catch (error) {
      await log.close().catch(() => {});
      throw error;
    }
    const replicated = new RaftReplicatedLog(log, raftLog, options);
    const host = options.raft.host;
    try {
      host.addGroup(options.group, {
        log: raftLog,
        // The log is the state machine and nobody else reads the entries: a written batch's bytes
        // (and the request buffer they are part of) are released before its fsync round ends.
        raft: { releaseWrittenPayloads: true },
        onCommit: (commitIndex) => replicated.committed(commitIndex),
        onWritten: (lastOffset) => replicated.written(lastOffset),
      });
    } catch (error) {
      replicated.unlisten();
      await raftLog.close().catch(() => {});
      throw error;
    }
    replicated.commitIndex = host.commitIndex(options.group);
    host.campaign(options.group);
    return replicated;
  }

  /** What storage recovery did when the log was opened, for the start-up log. */
  get recoveryReport(): PartitionLog["recoveryReport"] {
    return this.log.recoveryReport;
  }

  get directory(): string {
    return this.log.directory;
  }

  get leaderId(): number {
    return this.leader;
  }

  /** Leader once this term's first entry is committed: only then does the high watermark cover the log. */
  get isLeader(): boolean {
    return this.role === "leader" && this.commitIndex >= this.termStartOffset;
  }

  get leaderEpoch(): number {
    return this.term;
  }

  /** The Raft role right now (a leader whose term has not committed yet is already "leader"). */
  get raftRole(): LeadershipEvent["role"] {
    return this.role;
  }

  get logStartOffset(): number {
    return this.log.logStartOffset;
  }

  get logEndOffset(): number {
    return this.log.logEndOffset;
  }

  get highWatermark(): number {
    return Math.max(this.commitIndex + 1, this.log.logStartOffset);
  }

  get committedBytes(): number {
    return this.committedBytesValue;
  }

  /** The core drops a written entry's payload in a one-member group, and the Raft log caches none. */
  get releasesAppendedRecords(): boolean {
    return this.options.raft.host.releasesWrittenPayloads(this.group);
  }

  /** Resolves once this node leads the group and its term's first entry is committed. */
  whenLeader(): Promise<void> {
    if (this.isLeader) return Promise.resolve();
    if (this.closed) return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  onLeadershipChange(listener: LeadershipListener): () => void {
    this.leadershipListeners.add(listener);
    return () => this.leadershipListeners.delete(listener);
  }

  append(records: Buffer, options: ReplicatedAppendOptions): Promise<ReplicatedAppendResult> {
    // Proposed synchronously so appends enter the Raft log in call order (the ordering contract).
    let first: StartedProposal | undefined;
    let last: StartedProposal | undefined;
    try {
      for (const { position, size, recordCount } of this.splitForProposal(records)) {
        if (options.logAppendTime !== undefined) stampLogAppendTime(records, position, options.logAppendTime);
        const batch = records.subarray(position, position + size);
        // acks=0/1 answer at the write: their commit may wait for a lingering fsync round.
        const durability = options.acks === -1 ? "now" : "lazy";
        const proposal = this.options.raft.host.startProposal(this.group, batch, recordCount, durability);
        // Entries commit in order and fail together: the last one's outcome is the append's.
        last?.committed.catch(() => {});
        first ??= proposal;
        last = proposal;
        this.appendedBytes += size;
        this.uncommitted.push({ lastOffset: proposal.lastOffset, appendedBytes: this.appendedBytes });
      }
    } catch (error) {
      last?.committed.catch(() => {});
      return Promise.reject(this.toKafkaError(error));
    }
    // splitForProposal refuses an append without a batch.
    const baseOffset = first!.firstOffset;
    const lastOffset = last!.lastOffset;
    const committed = last!.committed;
    this.lastCommit = committed;
    const observe = this.options.observeCommitLatency;
    if (observe !== undefined) {
      const startedAt = performance.now();
      committed.then(
        () => observe((performance.now() - startedAt) / 1000),
        () => {},
      );
    }
    if (options.acks === -1) {
      return committed.then(
        () => ({ baseOffset, lastOffset, logStartOffset: this.log.logStartOffset }),
        (error: unknown) => {
          throw this.toKafkaError(error);
        },
      );
    }
    // acks 0 and 1: the local write; a failure before it (the proposal was dropped) still reaches the caller.
    return new Promise<ReplicatedAppendResult>((resolve, reject) => {
      const written = () => resolve({ baseOffset, lastOffset, logStartOffset: this.log.logStartOffset });
      if (this.writtenOffset >= lastOffset) written();
      else this.writtenWaiters.push({ offset: lastOffset, resolve: written });
      committed.catch((error: unknown) => reject(this.toKafkaError(error)));
    });
  }

  async read(
    fromOffset: number,
    maxBytes: number,
    allocate?: ReadBufferAllocator,
    options?: ReadOptions,
  ): Promise<ReplicatedReadResult> {
    const result = await this.log.read(fromOffset, maxBytes, this.highWatermark, allocate, options);
    return { records: result.records, nextOffset: result.nextOffset };
  }

  offsetForTimestamp(
    timestamp: number,
    fromOffset?: number,
  ): Promise<{ offset: number; timestamp: number } | undefined> {
    return this.log.offsetForTimestamp(timestamp, this.highWatermark, fromOffset);
  }

  maxTimestampOffset(fromOffset?: number): Promise<{ timestamp: number; offset: number }> {
    return this.log.maxTimestampOffset(fromOffset);
  }

  endOffsetForEpoch(epoch: number): { epoch: number; endOffset: number } {
    // The current term reaches the log end even before its first batch puts it in the epoch cache.
    if (epoch === this.term && this.role === "leader") return { epoch, endOffset: this.log.logEndOffset };
    return this.log.endOffsetForEpoch(epoch);
  }

  epochForOffset(offset: number): number | undefined {
    return this.log.epochForOffset(offset);
  }

  /** The Raft log start moves with the Kafka log start: a snapshot position just below `offset`. */
  async deleteRecordsBefore(offset: number): Promise<number> {
    const highWatermark = this.highWatermark;
    if (offset > highWatermark) {
      throw new RangeError(
        `cannot delete records up to ${offset}: only offsets up to the high watermark ${highWatermark} may be deleted`,
      );
    }
    await this.raftLog.compact(offset - 1, new Uint8Array(0));
    return this.log.logStartOffset;
  }

  /** Kafka retention over closed segments wholly below the high watermark, the Raft log start first. */
  applyRetention(now: number): Promise<RetentionResult> {
    return this.raftLog.applyRetention({ upToOffset: this.highWatermark, now });
  }

  updateConfig(config: Partial<LogConfig>): void {
    if (config.verifyCrcOnAppend !== undefined) this.verifyCrc = config.verifyCrcOnAppend;
    this.log.updateConfig(storageConfig(config));
  }

  onHighWatermark(listener: HighWatermarkListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stats(): ReplicatedLogStats {
    return { segmentCount: this.log.segmentInfos().length, sizeBytes: this.log.sizeInBytes };
  }

  /**
   * Answers pending appends (they commit with the next fsync round), then takes the group off the host,
   * which closes the log (flush, fsync, clean-shutdown marker).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lastCommit?.catch(() => {});
    this.unlisten();
    const host = this.options.raft.host;
    if (host.hasGroup(this.group)) await host.removeGroup(this.group);
    else await this.raftLog.close();
    this.leadershipChanged({ group: this.group, term: this.term, leader: -1, role: "follower" });
    this.releaseWritten(Number.POSITIVE_INFINITY);
    for (const waiter of this.readyWaiters.splice(0)) waiter.reject(this.closedError());
  }

  // ---------------------------------------------------------------------------------------------

  private toKafkaError(error: unknown): unknown {
    const failure = this.options.raft.failure;
    if (failure === undefined) return toKafkaError(error, this.topicPartition);
    const { topic, partition } = this.topicPartition;
    return new KafkaError(
      ErrorCode.KAFKA_STORAGE_ERROR,
      `${topic}-${partition} cannot be written: this broker's Raft groups stopped after a storage failure (${failure.message}); the broker must be restarted once its disk is checked`,
    );
  }

  private closedError(): Error {
    const { topic, partition } = this.topicPartition;
    return new Error(
      `partition ${topic}-${partition} was closed before this node led it; retry once it is open`,
    );
  }

  /** Splits an append into whole batches, refusing what would make the Raft log's write fail. */
  private splitForProposal(records: Buffer): { position: number; size: number; recordCount: number }[] {
    if (records.length === 0) {
      throw new CorruptRecordError("records are empty: an append needs at least one record batch");
    }
    const config = this.log.currentConfig;
    const batches: { position: number; size: number; recordCount: number }[] = [];
    let position = 0;
    while (position < records.length) {
      const problem = checkBatch(records, position, records.length - position, this.verifyCrc);
      if (problem !== undefined) {
        throw new CorruptRecordError(
          `record batch ${batches.length} at byte ${position} of the append is invalid: ${problem}; ` +
            "the producer must resend whole, well-formed v2 batches",
        );
      }
      const size = records.readInt32BE(position + BATCH_LENGTH_POSITION) + LOG_OVERHEAD;
      if (size > config.segmentBytes) {
        throw new RecordBatchTooLargeError(
          `record batch ${batches.length} is ${size} bytes, larger than segment.bytes (${config.segmentBytes}); ` +
            "send smaller batches or raise segment.bytes for this topic",
        );
      }
      const recordCount = records.readInt32BE(position + LAST_OFFSET_DELTA_POSITION) + 1;
      batches.push({ position, size, recordCount });
      position += size;
    }
    return batches;
  }

  private written(lastOffset: number): void {
    this.writtenOffset = lastOffset;
    this.releaseWritten(lastOffset);
  }

  private releaseWritten(offset: number): void {
    while (this.writtenWaiters.length > 0 && this.writtenWaiters[0]!.offset <= offset) {
      this.writtenWaiters.shift()!.resolve();
    }
  }

  private committed(commitIndex: number): void {
    if (commitIndex <= this.commitIndex) return;
    const wasLeader = this.isLeader;
    this.commitIndex = commitIndex;
    while (this.uncommitted.length > 0 && this.uncommitted[0]!.lastOffset <= commitIndex) {
      this.committedBytesValue = this.uncommitted.shift()!.appendedBytes;
    }
    const highWatermark = this.highWatermark;
    for (const listener of this.listeners) listener(highWatermark, this.committedBytesValue);
    if (!wasLeader && this.isLeader) this.becameLeader();
  }

  private leadershipChanged(event: LeadershipEvent): void {
    const wasLeader = this.isLeader;
    this.term = event.term;
    this.leader = event.leader;
    this.role = event.role;
    if (event.role === "leader") {
      // The new leader's no-op (if it appended one) is the last entry of its log now.
      this.termStartOffset = this.options.raft.host.status(this.group).lastOffset;
    } else {
      this.termStartOffset = Number.POSITIVE_INFINITY;
      // Proposals not yet committed may be overwritten by the next leader; drop the byte accounting.
      this.uncommitted.length = 0;
    }
    if (!wasLeader && this.isLeader) this.becameLeader();
    else if (wasLeader && !this.isLeader) {
      for (const listener of this.leadershipListeners) listener({ isLeader: false, leaderEpoch: this.term });
    }
  }

  private becameLeader(): void {
    for (const waiter of this.readyWaiters.splice(0)) waiter.resolve();
    for (const listener of this.leadershipListeners) listener({ isLeader: true, leaderEpoch: this.term });
  }
}

/**
 * The storage log's settings under Raft: fsyncs are Raft's (group-committed rounds), and batches were
 * checked (CRC included) before they were proposed, so the log does not check them a second time.
 */
function storageConfig(config: Partial<LogConfig>): Partial<LogConfig> {
  return { ...config, flushBeforeAck: false, verifyCrcOnAppend: false };
}

function toKafkaError(error: unknown, topicPartition: TopicPartition): unknown {
  const name = `${topicPartition.topic}-${topicPartition.partition}`;
  if (error instanceof NotLeaderError) {
    if (error.reason === "TOO_MANY_UNCOMMITTED_BYTES") {
      return new KafkaError(
        ErrorCode.REQUEST_TIMED_OUT,
        `${name} has too many bytes waiting to be committed; retry after a short backoff`,
      );
    }
    return new KafkaError(
      ErrorCode.NOT_LEADER_OR_FOLLOWER,
      `this broker does not lead ${name} right now (${error.reason}); refresh metadata and retry`,
    );
  }
  if (error instanceof ProposalDroppedError) {
    return new KafkaError(
      ErrorCode.NOT_LEADER_OR_FOLLOWER,
      `the write to ${name} was overwritten after a leader change and is not in the log; retry it`,
    );
  }
  return error;
}
