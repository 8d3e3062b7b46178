import { randomUUID } from "node:crypto";
import type { CommittedOffsetStats, ConsumerGroupStatsProvider, Logger } from "@raftka/monitoring";
import { topicSettingValue } from "@raftka/monitoring";
import { ErrorCode } from "@raftka/protocol";
import { toPartitionFailure } from "../apis/errors.js";
import { CONSUMER_OFFSETS_TOPIC } from "../metadata/topic-names.js";
import type { ReplicatedLog } from "../partitions/replicated-log.js";
import type { BrokerServices } from "../services.js";
import {
  type GroupCoordinatorConfig,
  GroupCoordinatorCore,
  type GroupEvent,
} from "./group-coordinator-core.js";
import { NodeTimers } from "./node-timers.js";
import { OffsetsPartitionLog } from "./offsets-partition-log.js";

/** Segment size of `__consumer_offsets` partitions: compaction frees space a whole segment at a time. */
export const OFFSETS_TOPIC_SEGMENT_BYTES = 16 * 1024 * 1024;
const LOAD_CONCURRENCY = 4;

export interface GroupCoordinatorOptions {
  readonly services: BrokerServices;
  readonly logger: Logger;
  /** How often each partition is checked for compaction (default one minute). */
  readonly compactionIntervalMs?: number;
  /** Overrides of the coordinator settings, for tests (defaults come from the broker configuration). */
  readonly config?: Partial<GroupCoordinatorConfig>;
  /** Segment size for a newly created offsets topic (default OFFSETS_TOPIC_SEGMENT_BYTES). */
  readonly offsetsTopicSegmentBytes?: number;
}

export type CoordinatorLookup =
  | { readonly status: "ready"; readonly partition: number }
  | { readonly status: "unavailable"; readonly message: string };

/**
 * The group coordinator's I/O shell around GroupCoordinatorCore: creates and loads the
 * `__consumer_offsets` partitions, turns the core's writes into committed appends, runs its timers on the
 * real clock, and compacts the partitions.
 *
 * Every offsets partition this node leads is loaded at start (on a single node: all of them). Each
 * partition is a Raft group: its leadership changes load it (this node was elected) or unload it (it
 * resigned), as Kafka's onElection/onResignation do: the core then answers NOT_COORDINATOR for groups of
 * partitions led elsewhere, and writes of a deposed leader fail and are answered NOT_COORDINATOR.
 */
export class GroupCoordinator implements ConsumerGroupStatsProvider {
  readonly core: GroupCoordinatorCore;
  private readonly timers: NodeTimers;
  private readonly logs = new Map<number, OffsetsPartitionLog>();
  private readonly loads = new Set<Promise<void>>();
  /** Offsets partition logs whose leadership changes this coordinator follows. */
  private readonly followed = new WeakSet<ReplicatedLog>();
  private creating: Promise<void> | undefined;
  private compactionTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private stopListeningToDeletions: (() => void) | undefined;
  private readonly now: () => number;
  private readonly logger: Logger;

  constructor(private readonly options: GroupCoordinatorOptions) {
    const { services } = options;
    this.now = services.now;
    this.logger = options.logger;
    const config = services.config;
    const existing = services.controller.image.topic(CONSUMER_OFFSETS_TOPIC);
    const coordinatorConfig: GroupCoordinatorConfig = {
      offsetsTopicPartitions: existing?.partitions.length ?? config.get("offsets.topic.num.partitions"),
      groupMinSessionTimeoutMs: config.get("group.min.session.timeout.ms"),
      groupMaxSessionTimeoutMs: config.get("group.max.session.timeout.ms"),
      groupInitialRebalanceDelayMs: config.get("group.initial.rebalance.delay.ms"),
      groupMaxSize: 2_147_483_647,
      offsetsRetentionMs: config.get("offsets.retention.minutes") * 60_000,
      offsetsRetentionCheckIntervalMs: 600_000,
      offsetMetadataMaxBytes: 4096,
      ...options.config,
    };
    this.timers = new NodeTimers(this.now, (id, now) => {
      try {
        this.core.fireTimer(id, now);
      } catch (error) {
        this.logger.error(
          { err: error, timer: id },
          "group coordinator timer failed (a Raftka bug: please report it)",
        );
      }
    });
    this.core = new GroupCoordinatorCore({
      config: coordinatorConfig,
      timers: this.timers,
      persist: (write) => {
        const log = this.logs.get(write.partition);
        if (log === undefined) {
          queueMicrotask(() => write.complete(ErrorCode.NOT_LEADER_OR_FOLLOWER, this.now()));
          return;
        }
        log.write(write.records).then(
          () => write.complete(ErrorCode.NONE, this.now()),
          (error: unknown) => {
            const failure = toPartitionFailure(error, (unexpected) =>
              this.logger.error({ err: unexpected, partition: write.partition }, "offsets log write failed"),
            );
            write.complete(failure.errorCode, this.now());
          },
        );
      },
      randomUuid: randomUUID,
      onEvent: (event) => this.logEvent(event),
    });
  }

  /** Starts answering; loads the offsets partitions if the topic exists (in the background). */
  start(): void {
    this.core.start(this.now());
    this.stopListeningToDeletions = this.options.services.partitions.onTopicDeleted((topic) =>
      this.core.removeOffsetsOfTopic(topic, this.now()),
    );
    if (this.options.services.controller.image.topic(CONSUMER_OFFSETS_TOPIC)) this.loadHostedPartitions();
    const interval = this.options.compactionIntervalMs ?? 60_000;
    const scheduleCompaction = () => {
      this.compactionTimer = setTimeout(() => {
        void this.compactAll().finally(() => {
          if (!this.stopped) scheduleCompaction();
        });
      }, interval);
      this.compactionTimer.unref();
    };
    scheduleCompaction();
  }

  /**
   * The node is shutting down: parked JoinGroup/SyncGroup requests are answered NOT_COORDINATOR (their
   * members look for the coordinator again) and new requests get COORDINATOR_NOT_AVAILABLE.
   */
  answerParked(): void {
    if (!this.core.isActive) return;
    this.core.shutdown(this.now());
    this.timers.clear();
  }

  /** Answers parked requests (if not done yet) and waits for writes in flight to settle. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopListeningToDeletions?.();
    clearTimeout(this.compactionTimer);
    this.answerParked();
    await Promise.allSettled([...this.loads]);
    await Promise.allSettled([...this.logs.values()].map((log) => log.settle()));
  }

  /**
   * Where a group's coordinator is. Creates `__consumer_offsets` on first use, like Kafka does on the
   * first FindCoordinator; until it exists the answer is "unavailable" and clients retry.
   */
  lookup(groupId: string): CoordinatorLookup {
    const topic = this.options.services.controller.image.topic(CONSUMER_OFFSETS_TOPIC);
    if (!topic) {
      this.ensureOffsetsTopic();
      return { status: "unavailable", message: `${CONSUMER_OFFSETS_TOPIC} is being created; retry shortly` };
    }
    const partition = this.core.partitionFor(groupId);
    if (this.core.partitionStatus(partition) === "not-owned") {
      return {
        status: "unavailable",
        message: `partition ${partition} of ${CONSUMER_OFFSETS_TOPIC} is not open on this node yet; retry shortly`,
      };
    }
    return { status: "ready", partition };
  }

  private ensureOffsetsTopic(): void {
    if (this.creating || this.stopped) return;
    const { services } = this.options;
    const partitions = services.config.get("offsets.topic.num.partitions");
    this.creating = services.controller
      .ensureInternalTopic(CONSUMER_OFFSETS_TOPIC, partitions, {
        "cleanup.policy": "compact",
        "segment.bytes": String(this.options.offsetsTopicSegmentBytes ?? OFFSETS_TOPIC_SEGMENT_BYTES),
      })
      .then(
        (topic) => {
          this.logger.info({ partitions: topic.partitions.length }, `created ${CONSUMER_OFFSETS_TOPIC}`);
          if (!this.stopped) this.loadHostedPartitions();
        },
        (error: unknown) => {
          this.creating = undefined;
          this.logger.error(
            { err: error },
            `could not create ${CONSUMER_OFFSETS_TOPIC}; consumer groups are unavailable until it can be (clients retry)`,
          );
        },
      );
  }

  /** Starts loading every hosted offsets partition not yet loaded; requests meanwhile get LOAD_IN_PROGRESS. */
  private loadHostedPartitions(): void {
    const hosted = this.options.services.partitions.topic(CONSUMER_OFFSETS_TOPIC);
    if (!hosted) return;
    const pending: number[] = [];
    for (const [partition, log] of hosted.partitions.entries()) {
      if (log) this.followLeadership(partition, log);
      if (!log?.isLeader || this.core.partitionStatus(partition) !== "not-owned") continue;
      this.core.beginLoading(partition);
      pending.push(partition);
    }
    if (pending.length === 0) return;
    const startedAt = this.now();
    const worker = async () => {
      for (;;) {
        const partition = pending.shift();
        if (partition === undefined || this.stopped) return;
        await this.loadPartition(partition);
      }
    };
    const load = Promise.all(Array.from({ length: Math.min(LOAD_CONCURRENCY, pending.length) }, worker)).then(
      () => {
        this.logger.info(
          { partitions: this.logs.size, ms: this.now() - startedAt },
          `${CONSUMER_OFFSETS_TOPIC} loaded: groups and committed offsets restored`,
        );
      },
    );
    this.loads.add(load);
    void load.finally(() => this.loads.delete(load));
  }

  /** Elected: load the partition (and any other led one not loaded yet). Resigned: unload it. */
  private followLeadership(partition: number, log: ReplicatedLog): void {
    if (this.followed.has(log)) return;
    this.followed.add(log);
    log.onLeadershipChange(({ isLeader }) => {
      if (this.stopped) return;
      if (isLeader) {
        this.loadHostedPartitions();
        return;
      }
      if (this.core.partitionStatus(partition) === "not-owned") return;
      this.logs.delete(partition);
      this.core.unloadPartition(partition, this.now());
      this.logger.info({ partition }, `${CONSUMER_OFFSETS_TOPIC} partition no longer led here: unloaded`);
    });
  }

  /** Reads one partition into the core (which was told `beginLoading`). */
  private async loadPartition(partition: number): Promise<void> {
    const log = this.options.services.partitions.partition(CONSUMER_OFFSETS_TOPIC, partition);
    if (!log) {
      this.core.unloadPartition(partition, this.now());
      return;
    }
    const { services } = this.options;
    const overrides = () => services.controller.image.topic(CONSUMER_OFFSETS_TOPIC)?.configs ?? {};
    const partitionLog = new OffsetsPartitionLog({
      log,
      now: this.now,
      logger: this.logger,
      tombstoneRetentionMs: () => topicSettingValue(services.config, overrides(), "delete.retention.ms"),
      minCompactionBytes: () => 2 * topicSettingValue(services.config, overrides(), "segment.bytes"),
      admit: (bytes) => services.diskSpace.admitInternal(log.directory, bytes),
    });
    try {
      const { records, skipped } = await partitionLog.load((record) => this.core.replay(partition, record));
      if (this.stopped) return;
      this.logs.set(partition, partitionLog);
      const loaded = this.core.finishLoading(partition, this.now());
      this.logger.debug({ partition, records, skipped, ...loaded }, "offsets partition loaded");
    } catch (error) {
      this.logger.error(
        { err: error, partition },
        `could not load ${CONSUMER_OFFSETS_TOPIC} partition ${partition}; its groups stay unavailable (COORDINATOR_LOAD_IN_PROGRESS) until the broker restarts`,
      );
    }
  }

  /** One compaction check over every loaded partition, one after another. */
  async compactAll(): Promise<void> {
    for (const [partition, log] of this.logs) {
      if (this.stopped) return;
      try {
        await log.maybeCompact();
      } catch (error) {
        this.logger.error(
          { err: error, partition },
          "offsets partition compaction failed; it is retried later",
        );
      }
    }
  }

  /** Compacts one partition now, whatever its dirty ratio (operators, tests). */
  compactPartition(partition: number): Promise<unknown> {
    const log = this.logs.get(partition);
    if (!log) throw new Error(`${CONSUMER_OFFSETS_TOPIC} partition ${partition} is not loaded on this node`);
    return log.compact();
  }

  /** For the consumer lag metric: every committed offset with its partition's high watermark. */
  committedOffsets(): CommittedOffsetStats[] {
    const stats: CommittedOffsetStats[] = [];
    const partitions = this.options.services.partitions;
    for (const entry of this.core.committedOffsets()) {
      const log = partitions.partition(entry.topic, entry.partition);
      if (!log) continue;
      stats.push({
        group: entry.groupId,
        topic: entry.topic,
        partition: entry.partition,
        committedOffset: Number(entry.offset),
        highWatermark: log.highWatermark,
      });
    }
    return stats;
  }

  private logEvent(event: GroupEvent): void {
    switch (event.kind) {
      case "write-failed":
        this.logger.warn(event, "group coordinator write failed");
        return;
      case "rebalance-started":
      case "group-stabilized":
      case "group-emptied":
      case "member-removed":
      case "static-member-replaced":
      case "group-deleted":
        this.logger.info(event, event.kind.replaceAll("-", " "));
        return;
      case "offsets-expired":
        this.logger.info(event, "committed offsets expired (offsets.retention.minutes)");
        return;
      case "offsets-of-deleted-topic-removed":
        this.logger.info(event, "committed offsets of a deleted topic removed");
        return;
    }
  }
}
