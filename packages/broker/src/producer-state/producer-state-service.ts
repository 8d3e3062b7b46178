import type { Logger } from "@raftka/monitoring";
import {
  ErrorCode,
  KafkaError,
  type RecordBatchHeader,
  readRecordBatchHeader,
  sliceBatches,
} from "@raftka/protocol";
import { waitForHighWatermark } from "../partitions/high-watermark.js";
import type { PartitionManager } from "../partitions/partition-manager.js";
import type { ReplicatedLog, TopicPartition } from "../partitions/replicated-log.js";
import type { ProducerCheckResult, ProducerStateCheck } from "../produce-hooks.js";
import { type BatchMetadata, ProducerStateManager } from "./producer-state.js";
import { loadLatestSnapshot, writeSnapshot } from "./snapshot-files.js";
import { encodeProducerSnapshot } from "./snapshot-format.js";

const REPLAY_READ_BYTES = 1024 * 1024;
const LOAD_CONCURRENCY = 8;

export interface ProducerStateServiceOptions {
  readonly partitions: PartitionManager;
  readonly now: () => number;
  readonly logger: Logger;
  readonly producerIdExpirationMs: () => number;
  /** How often partitions are considered for a snapshot and expired producers are removed (default 30 s). */
  readonly maintenanceIntervalMs?: number;
  /** A partition gets a new snapshot once its log has grown this many bytes since the last (default 8 MiB). */
  readonly snapshotEveryBytes?: number;
}

type Original = { baseOffset: number; lastOffset: number };

interface Deferred {
  readonly promise: Promise<Original>;
  resolve(original: Original): void;
  reject(error: unknown): void;
}

/** One partition's producer state and where it stands against its log. */
interface PartitionState {
  readonly log: ReplicatedLog;
  readonly manager: ProducerStateManager;
  status: "loading" | "ready" | "rebuilding";
  loading?: Promise<void>;
  /** Offset and log size at the last snapshot. */
  snapshotOffset: number;
  snapshotSizeBytes: number;
  /** Retries waiting for an in-flight original, keyed by the original's reservation. */
  readonly waiting: Map<BatchMetadata, Deferred>;
}

/**
 * Idempotent producers on the produce path: one ProducerStateManager per partition, rebuilt at start
 * from the newest snapshot plus the batches after it, snapshotted beside the log (`<offset>.snapshot`,
 * like Kafka) periodically and at shutdown, and expired after `producer.id.expiration.ms`.
 *
 * `check` reserves an accepted batch's sequence range at once, so pipelined batches of one producer are
 * judged in append order although their appends complete later; `appended` fills in the offsets. If an
 * append fails, the partition's state no longer matches its log: it is rebuilt from the log, and until
 * then idempotent batches are refused with NOT_LEADER_OR_FOLLOWER, which clients retry.
 */
export class ProducerStateService implements ProducerStateCheck {
  private readonly states = new Map<string, PartitionState>();
  private readonly reservations = new WeakMap<RecordBatchHeader, BatchMetadata>();
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private maintenance: Promise<void> | undefined;
  private stopped = false;
  private stopListeningToNewPartitions: (() => void) | undefined;

  constructor(private readonly options: ProducerStateServiceOptions) {}

  /** Loads the state of every hosted partition (before the listeners open). */
  async start(): Promise<void> {
    // A partition created from now on starts with an empty state that is ready at once; created lazily
    // at its first idempotent batch instead, after plain appends, it would replay its log first and
    // refuse that batch meanwhile.
    this.stopListeningToNewPartitions = this.options.partitions.onPartitionsOpened((topic, logs) => {
      if (topic.internal) return;
      for (const log of logs) this.stateFor(log);
    });
    const logs: ReplicatedLog[] = [];
    for (const topic of this.options.partitions.hostedTopics()) {
      if (topic.image.internal) continue;
      for (const log of topic.partitions) if (log) logs.push(log);
    }
    const startedAt = this.options.now();
    let loaded = 0;
    let producers = 0;
    const worker = async () => {
      for (;;) {
        const log = logs.shift();
        if (!log) return;
        const state = this.stateFor(log);
        await state.loading;
        producers += state.manager.size;
        loaded++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOAD_CONCURRENCY, logs.length) }, worker));
    this.options.logger.info(
      { partitions: loaded, producers, ms: this.options.now() - startedAt },
      "producer state loaded from snapshots and log",
    );
    this.scheduleMaintenance();
  }

  /** Takes a final snapshot of every partition (after the listeners drained, before the logs close). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopListeningToNewPartitions?.();
    clearTimeout(this.maintenanceTimer);
    await this.maintenance?.catch(() => {});
    await this.snapshotAll(true);
  }

  // ----- the produce path ------------------------------------------------------------------------

  check(partition: TopicPartition, batch: RecordBatchHeader): ProducerCheckResult {
    if (batch.producerId < 0n) return { action: "append" };
    const log = this.options.partitions.partition(partition.topic, partition.partition);
    if (!log) return { action: "append" };
    const state = this.stateFor(log);
    if (state.status !== "ready") {
      return {
        action: "reject",
        errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER,
        message: `producer state of ${describe(partition)} is being rebuilt from its log; retry shortly`,
      };
    }
    const check = state.manager.checkAppend(batch);
    switch (check.kind) {
      case "not-idempotent":
        return { action: "append" };
      case "rejected":
        return { action: "reject", errorCode: check.errorCode, message: check.message };
      case "duplicate": {
        const original = check.batch;
        if (original.firstOffset !== null) {
          return {
            action: "duplicate",
            original: Promise.resolve({ baseOffset: original.firstOffset, lastOffset: original.lastOffset! }),
          };
        }
        let waiting = state.waiting.get(original);
        if (!waiting) {
          waiting = deferred();
          state.waiting.set(original, waiting);
        }
        return { action: "duplicate", original: waiting.promise };
      }
      case "append": {
        const reserved = state.manager.reserveAppend(batch, this.options.now());
        if (reserved) this.reservations.set(batch, reserved);
        return { action: "append" };
      }
    }
  }

  appended(partition: TopicPartition, batch: RecordBatchHeader, baseOffset: number): void {
    const reserved = this.reservations.get(batch);
    if (!reserved) return;
    this.reservations.delete(batch);
    const state = this.existingState(partition);
    if (!state || reserved.firstOffset !== null) return;
    const lastOffset = baseOffset + batch.lastOffsetDelta;
    state.manager.completeAppend(reserved, baseOffset, lastOffset);
    const waiting = state.waiting.get(reserved);
    if (waiting) {
      state.waiting.delete(reserved);
      waiting.resolve({ baseOffset, lastOffset });
    }
  }

  appendFailed(partition: TopicPartition, batch: RecordBatchHeader): void {
    const reserved = this.reservations.get(batch);
    if (!reserved) return;
    this.reservations.delete(batch);
    const state = this.existingState(partition);
    if (!state) return;
    const waiting = state.waiting.get(reserved);
    if (waiting) {
      state.waiting.delete(reserved);
      waiting.reject(
        new KafkaError(
          ErrorCode.NOT_LEADER_OR_FOLLOWER,
          `the original of this retried batch on ${describe(partition)} was not appended; retry`,
        ),
      );
    }
    this.rebuild(state);
  }

  // ----- loading and rebuilding ------------------------------------------------------------------

  private existingState(partition: TopicPartition): PartitionState | undefined {
    const state = this.states.get(keyOf(partition));
    const log = this.options.partitions.partition(partition.topic, partition.partition);
    return state && state.log === log ? state : undefined;
  }

  /** The partition's state, created (and loaded in the background) on first use. */
  private stateFor(log: ReplicatedLog): PartitionState {
    const key = keyOf(log.topicPartition);
    const existing = this.states.get(key);
    // A recreated topic has a new log: its state starts over.
    if (existing && existing.log === log) return existing;
    const state: PartitionState = {
      log,
      manager: new ProducerStateManager({ producerIdExpirationMs: this.options.producerIdExpirationMs() }),
      status: "loading",
      snapshotOffset: -1,
      snapshotSizeBytes: 0,
      waiting: new Map(),
    };
    this.states.set(key, state);
    // Elected again (after another leader may have appended): the state is rebuilt from the log.
    log.onLeadershipChange(({ isLeader }) => {
      if (isLeader && !this.stopped && this.states.get(key) === state) this.rebuild(state);
    });
    if (log.logEndOffset === log.logStartOffset && log.logEndOffset === 0) {
      // A brand-new partition: nothing to replay.
      state.status = "ready";
      state.snapshotOffset = 0;
      state.loading = Promise.resolve();
    } else {
      state.loading = this.load(state);
    }
    return state;
  }

  private rebuild(state: PartitionState): void {
    if (state.status !== "ready") return;
    state.status = "rebuilding";
    state.loading = this.load(state);
  }

  /** Newest snapshot, then every batch after it up to the log end (headers only, no decompression). */
  private async load(state: PartitionState): Promise<void> {
    const { log } = state;
    try {
      // Appends still in flight (a rebuild after a failure) settle first; the recovered tail is committed first.
      await waitForHighWatermark(log, log.logEndOffset);
      const { snapshot, discarded } = await loadLatestSnapshot(log.directory, log.logEndOffset);
      for (const { offset, reason } of discarded) {
        this.options.logger.warn(
          { topic: log.topicPartition.topic, partition: log.topicPartition.partition, offset, reason },
          "discarded a producer state snapshot; the state is rebuilt from the log instead",
        );
      }
      state.manager.loadEntries(snapshot?.entries ?? []);
      const from = Math.max(snapshot?.offset ?? 0, log.logStartOffset);
      const now = this.options.now();
      let offset = from;
      const end = log.highWatermark;
      while (offset < end) {
        const { records, nextOffset } = await log.read(offset, REPLAY_READ_BYTES);
        if (nextOffset <= offset) break;
        for (const slice of sliceBatches(records).batches) {
          if (slice.magic !== 2) continue;
          const header = readRecordBatchHeader(slice.bytes);
          const baseOffset = Number(header.baseOffset);
          if (baseOffset < from || header.isControl) continue;
          // Replayed producers get a fresh expiry lease from now: their last write time is unknown.
          state.manager.recordAppend(header, baseOffset, now);
        }
        offset = nextOffset;
      }
      state.snapshotOffset = snapshot?.offset ?? -1;
      state.snapshotSizeBytes = snapshot ? log.stats().sizeBytes : 0;
      state.status = "ready";
    } catch (error) {
      this.options.logger.error(
        { err: error, topic: log.topicPartition.topic, partition: log.topicPartition.partition },
        "could not rebuild producer state; idempotent producers on this partition get NOT_LEADER_OR_FOLLOWER until it is rebuilt (retried in the next maintenance pass)",
      );
      state.status = "rebuilding";
      state.loading = undefined;
    }
  }

  // ----- snapshots and expiry --------------------------------------------------------------------

  private scheduleMaintenance(): void {
    if (this.stopped) return;
    this.maintenanceTimer = setTimeout(() => {
      this.maintenance = this.maintain().finally(() => {
        this.maintenance = undefined;
        this.scheduleMaintenance();
      });
    }, this.options.maintenanceIntervalMs ?? 30_000);
    this.maintenanceTimer.unref();
  }

  private async maintain(): Promise<void> {
    const now = this.options.now();
    const expirationMs = this.options.producerIdExpirationMs();
    for (const state of this.states.values()) {
      if (state.status === "rebuilding" && state.loading === undefined) state.loading = this.load(state);
      if (state.status !== "ready") continue;
      state.manager.updateOptions({ producerIdExpirationMs: expirationMs });
      const removed = state.manager.removeExpired(now);
      if (removed > 0) {
        this.options.logger.debug(
          { ...state.log.topicPartition, removed },
          "forgot idle producers (producer.id.expiration.ms)",
        );
      }
    }
    await this.snapshotAll(false);
  }

  /** Snapshots every ready partition that changed enough (or at all, when `final`) and is quiescent. */
  async snapshotAll(final: boolean): Promise<number> {
    let written = 0;
    const threshold = this.options.snapshotEveryBytes ?? 8 * 1024 * 1024;
    for (const [key, state] of this.states) {
      if (state.status !== "ready" || state.manager.hasPendingAppends()) continue;
      if (
        this.options.partitions.partition(
          state.log.topicPartition.topic,
          state.log.topicPartition.partition,
        ) !== state.log
      ) {
        this.states.delete(key);
        continue;
      }
      const offset = state.log.logEndOffset;
      if (offset === state.snapshotOffset) continue;
      const sizeBytes = state.log.stats().sizeBytes;
      if (!final && sizeBytes - state.snapshotSizeBytes < threshold) continue;
      try {
        const bytes = encodeProducerSnapshot({ offset, entries: state.manager.snapshotEntries() });
        await writeSnapshot(state.log.directory, offset, bytes);
        state.snapshotOffset = offset;
        state.snapshotSizeBytes = sizeBytes;
        written++;
      } catch (error) {
        this.options.logger.warn(
          { err: error, ...state.log.topicPartition },
          "could not write a producer state snapshot; the next start replays more of the log",
        );
      }
    }
    return written;
  }
}

function keyOf(partition: TopicPartition): string {
  return `${partition.topic}\u0000${partition.partition}`;
}

function describe(partition: TopicPartition): string {
  return `${partition.topic}-${partition.partition}`;
}

function deferred(): Deferred {
  let resolve!: (original: Original) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<Original>((resolvePromise, rejectPromise) => {
    resolve = resolvePromise;
    reject = rejectPromise;
  });
  // A retry whose connection is gone may never look at the answer.
  promise.catch(() => {});
  return { promise, resolve, reject };
}
