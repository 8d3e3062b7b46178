import { join } from "node:path";
import {
  AdminServer,
  brokerSettings,
  describeSource,
  effectiveAdvertisedListeners,
  type Listener,
  type Logger,
  type Logging,
  type RaftkaConfig,
  type RaftkaMetrics,
  readinessCheckNames,
  type SettingKey,
} from "@raftka/monitoring";
import { DirectReads, DirectWrites, FlushScheduler, preallocation } from "@raftka/storage";
import { alterConfigsHandler, incrementalAlterConfigsHandler } from "./apis/alter-configs/handler.js";
import { apiVersionsHandler } from "./apis/api-versions/handler.js";
import { createPartitionsHandler } from "./apis/create-partitions/handler.js";
import { createTopicsHandler } from "./apis/create-topics/handler.js";
import { deleteRecordsHandler } from "./apis/delete-records/handler.js";
import { deleteTopicsHandler } from "./apis/delete-topics/handler.js";
import { describeClusterHandler } from "./apis/describe-cluster/handler.js";
import { describeConfigsHandler } from "./apis/describe-configs/handler.js";
import { FetchSessionCache } from "./apis/fetch/fetch-sessions.js";
import { FsyncContention } from "./apis/fetch/fsync-contention.js";
import { fetchHandler } from "./apis/fetch/handler.js";
import { LongPoll } from "./apis/fetch/long-poll.js";
import { NextReads } from "./apis/fetch/next-reads.js";
import { listOffsetsHandler } from "./apis/list-offsets/handler.js";
import { metadataHandler } from "./apis/metadata/handler.js";
import { offsetForLeaderEpochHandler } from "./apis/offset-for-leader-epoch/handler.js";
import { produceHandler } from "./apis/produce/handler.js";
import { saslAuthenticateHandler } from "./apis/sasl-authenticate/handler.js";
import { saslHandshakeHandler } from "./apis/sasl-handshake/handler.js";
import { groupCoordinatorExtension } from "./group/group-coordinator-extension.js";
import { AlterConfigOperation, ConfigResourceType } from "./metadata/config-operations.js";
import { Controller } from "./metadata/controller.js";
import { type MetadataDelta, MetadataImage } from "./metadata/image.js";
import { METADATA_LOG_DIRECTORY, RAFT_STABLE_STORE_FILE } from "./metadata/log-dir-check.js";
import { loadOrCreateMetaProperties } from "./metadata/meta-properties.js";
import { describeStoredOverrides } from "./metadata/stored-overrides.js";
import { METADATA_TOPIC } from "./metadata/topic-names.js";
import { DiskSpaceGuard } from "./partitions/disk-space-guard.js";
import { LogDirLock } from "./partitions/log-dir-lock.js";
import { LogFailures } from "./partitions/log-failures.js";
import { openReplicatedLog } from "./partitions/open-replicated-log.js";
import { PartitionManager } from "./partitions/partition-manager.js";
import { METADATA_GROUP_ID, RaftGroups } from "./partitions/raft-groups.js";
import { RaftReplicatedLog } from "./partitions/raft-replicated-log.js";
import { ReplicatedLogRaftStats } from "./partitions/raft-stats.js";
import type { ReplicatedLog } from "./partitions/replicated-log.js";
import { RetentionService } from "./partitions/retention-service.js";
import { TopicMetrics } from "./partitions/topic-metrics.js";
import { acceptAllProducers } from "./produce-hooks.js";
import { producerStateExtension } from "./producer-state/producer-state-extension.js";
import { ApiRegistry } from "./server/api-registry.js";
import { BufferPool } from "./server/buffer-pool.js";
import { FaultInjector } from "./server/fault-injection.js";
import { HeapTrimmer, heapTrimAvailableOnThisPlatform } from "./server/heap-trim.js";
import { type BoundListener, KafkaServer } from "./server/kafka-server.js";
import {
  mappedMemoryAvailableOnThisPlatform,
  mappedMemoryUnavailableReason,
} from "./server/mapped-memory.js";
import { RequestMetrics } from "./server/request-metrics.js";
import type { BrokerServices } from "./services.js";

/**
 * A part of the broker that plugs into start-up and shutdown (the group coordinator, transactions): it gets
 * the shared services and the API registry after storage is recovered and before the Kafka listeners
 * open, and is stopped after the listeners have drained and before the logs close.
 */
export interface BrokerExtension {
  readonly name: string;
  start(
    services: BrokerServices,
    registry: ApiRegistry,
    context: BrokerExtensionContext,
  ): Promise<void> | void;
  /**
   * Shutdown has begun and requests in flight are being drained: answer whatever the extension holds
   * parked (a JoinGroup waiting for a rebalance), or the drain waits for it until shutdown.timeout.ms.
   */
  answerParked?(): void;
  stop?(): Promise<void> | void;
}

/** What an extension may use besides the request handlers' services. */
export interface BrokerExtensionContext {
  /** To add admin HTTP routes. */
  readonly admin: AdminServer;
  /** For the extension's component logger (`logging.component("group")`). */
  readonly logging: Logging;
}

/** The parts every node runs: idempotent producers and the group coordinator. */
export function defaultBrokerExtensions(): BrokerExtension[] {
  return [producerStateExtension(), groupCoordinatorExtension()];
}

export interface BrokerOptions {
  /**
   * Started in order after the built-in APIs are registered; stopped in reverse order. Defaults to
   * `defaultBrokerExtensions()`; pass your own list (including configured defaults) to replace them.
   */
  readonly extensions?: readonly BrokerExtension[];
  readonly config: RaftkaConfig;
  readonly logging: Logging;
  readonly metrics?: RaftkaMetrics;
  /** Reported by /v1/status and raftka_build_info. */
  readonly version: string;
  /** Replaces an empty or 0.0.0.0 listener host in what clients are told (default "localhost"). */
  readonly advertisedHost?: string;
  /** Milliseconds since the epoch. */
  readonly now?: () => number;
  /**
   * Aborted to give up a start under way (a SIGTERM during recovery): start-up stops at its next step
   * (between partitions while recovering), closes what it opened, releases the log directories and
   * rejects with the signal's reason.
   */
  readonly interruptStart?: AbortSignal;
}

/** How often each log directory's free space is compared with log.dir.min.free.bytes. */
const DISK_SPACE_CHECK_INTERVAL_MS = 1000;

/** The metadata log's storage settings: never deleted by retention, small segments (it is replayed at start). */
const METADATA_LOG_CONFIG = {
  segmentBytes: 64 * 1024 * 1024,
  retentionMs: -1,
  retentionBytes: -1,
  verifyCrcOnAppend: true,
};

/**
 * A single Raftka node: metadata log and controller, partition logs, Kafka listeners, admin HTTP server.
 * Start-up order: admin server (liveness during recovery), metadata replay, partition recovery, then the
 * Kafka listeners, so a client never reaches a node that cannot serve it yet.
 */
export class Broker {
  readonly registry = new ApiRegistry();
  readonly longPoll = new LongPoll();
  /** Buffers Fetch reads records into and large Produce frames arrive in (public for tests: whether they come back). */
  readonly buffers: BufferPool;
  /** Streaming consumers' next ranges, read while their answers go out (public for tests). */
  readonly nextReads: NextReads;
  /** Whether fsyncs were slow just now (public for tests: reads ahead wait while they were). */
  readonly fsyncContention = new FsyncContention();
  private readonly heapTrimmer: HeapTrimmer;
  private readonly logger: Logger;
  private readonly serverLogger: Logger;
  private readonly now: () => number;
  private readonly flushScheduler: FlushScheduler;
  private readonly admin: AdminServer;
  private readonly server: KafkaServer;
  private metadataLog: ReplicatedLog | undefined;
  /** Stops this node's warning when a file system refuses block reservations (the listener is process-wide). */
  private stopListeningToPreallocation: (() => void) | undefined;
  private raftGroups: RaftGroups | undefined;
  private partitionManager: PartitionManager | undefined;
  private servicesValue: BrokerServices | undefined;
  private adminAddressValue: { host: string; port: number } | undefined;
  private advertised: Listener[] = [];
  private retention: RetentionService | undefined;
  private diskSpaceGuard: DiskSpaceGuard | undefined;
  private stopping: Promise<void> | undefined;
  private readonly logFailures: LogFailures;
  private logDirLock: LogDirLock | undefined;
  private readonly startedExtensions: BrokerExtension[] = [];

  private constructor(private readonly options: BrokerOptions) {
    this.now = options.now ?? Date.now;
    this.logger = options.logging.root;
    this.serverLogger = options.logging.component("server");
    const poolTakes = options.metrics?.node.bufferPoolTakes;
    const poolReleased = options.metrics?.node.bufferPoolReleasedBytes;
    // Bound once: a take happens for every large Produce frame and Fetch read.
    const takesFrom = poolTakes && {
      free: poolTakes.labels({ source: "free" }),
      released: poolTakes.labels({ source: "released" }),
      new: poolTakes.labels({ source: "new" }),
    };
    this.buffers = new BufferPool(undefined, undefined, {
      took: takesFrom && ((source) => takesFrom[source].inc()),
      released: poolReleased && ((bytes) => poolReleased.inc(bytes)),
    });
    const memoryReleased = options.metrics?.node.memoryReleasedBytes;
    this.heapTrimmer = new HeapTrimmer({ onTrimmed: (bytes) => memoryReleased?.inc(bytes) });
    const readsAhead = options.metrics?.storage.readsAhead;
    this.nextReads = new NextReads(this.buffers, {
      onOutcome: readsAhead && ((outcome) => readsAhead.labels({ outcome }).inc()),
      holdBack: () => this.fsyncContention.contended,
    });
    const logsFailed = options.metrics?.storage.logsFailed;
    logsFailed?.set(0);
    this.logFailures = new LogFailures((count) => logsFailed?.set(count));
    const storageMetrics = options.metrics?.storage;
    const flushWait = storageMetrics && {
      urgent: storageMetrics.flushWaitSeconds.labels({ urgency: "urgent" }),
      lazy: storageMetrics.flushWaitSeconds.labels({ urgency: "lazy" }),
    };
    this.flushScheduler = new FlushScheduler({
      observeSync: (seconds) => {
        storageMetrics?.fsyncSeconds.observe(seconds);
        this.fsyncContention.observe(seconds);
      },
      ...(flushWait
        ? {
            observeWait: (seconds: number, urgent: boolean) =>
              (urgent ? flushWait.urgent : flushWait.lazy).observe(seconds),
          }
        : {}),
    });
    this.admin = new AdminServer({
      version: options.version,
      ...(options.metrics ? { metrics: options.metrics } : {}),
      logging: options.logging,
      config: options.config,
      logger: options.logging.component("admin"),
    });
    // Test-only: lets the e2e suites cut connections on purpose (see server/fault-injection.ts).
    const faults = options.config.get("test.fault.injection.enable") ? new FaultInjector() : undefined;
    if (faults) {
      faults.registerRoutes(this.admin);
      this.serverLogger.warn(
        "test.fault.injection.enable is on: the admin port can make this broker drop responses; never use this in production",
      );
    }
    this.server = new KafkaServer({
      registry: this.registry,
      maxRequestBytes: () => options.config.get("socket.request.max.bytes"),
      idleTimeoutMs: () => options.config.get("connections.max.idle.ms"),
      queuedMaxRequestBytes: () => options.config.get("queued.max.request.bytes"),
      logger: this.serverLogger,
      metrics: new RequestMetrics(options.metrics),
      buffers: this.buffers,
      ...(faults ? { faults } : {}),
    });
  }

  /** Starts a node; resolves once it accepts Kafka clients. */
  static async start(options: BrokerOptions): Promise<Broker> {
    const broker = new Broker(options);
    try {
      await broker.startUp();
    } catch (error) {
      await broker.abort();
      throw error;
    }
    return broker;
  }

  /** Shared state the handlers use; other parts of the broker (groups) build on it. */
  get services(): BrokerServices {
    if (!this.servicesValue) throw new Error("the broker has not started yet; await Broker.start()");
    return this.servicesValue;
  }

  get kafkaListeners(): readonly BoundListener[] {
    return this.server.listeners;
  }

  get adminAddress(): { host: string; port: number } {
    if (!this.adminAddressValue) throw new Error("the admin server is not listening yet");
    return this.adminAddressValue;
  }

  private async startUp(): Promise<void> {
    const { config } = this.options;
    const stopIfInterrupted = () => this.options.interruptStart?.throwIfAborted();
    if (config.get("cluster.seeds").length > 0) {
      // Started alone, each of several nodes given the same seeds would be a cluster of its own: a
      // producer and a consumer pointed at different nodes would silently see different data.
      throw new Error(
        "cluster.seeds is set, but this version of Raftka runs single-node only (multi-node clusters are not built yet); " +
          "remove cluster.seeds to run this node on its own",
      );
    }
    if (config.ignoredKafkaSettings.length > 0) {
      this.logger.warn(
        {
          ignored: config.ignoredKafkaSettings.map(
            (setting) => `${setting.key} (${describeSource(setting.source)})`,
          ),
        },
        "Kafka settings that have no effect in Raftka were ignored (threads, socket buffers, KRaft roles, ZooKeeper, internal topics' replication); remove them to quiet this",
      );
    }
    const objectStoreSettings = [...brokerSettings.values()]
      .filter((definition) => definition.category === "objectStore")
      .map((definition) => definition.key as SettingKey)
      .filter((key) => config.sourceOf(key).kind !== "default");
    if (objectStoreSettings.length > 0) {
      this.logger.warn(
        { settings: objectStoreSettings },
        "object store settings have no effect yet: this version keeps every segment on local disk and uploads nothing (no tiered storage); remove them to quiet this",
      );
    }
    const nodeId = config.get("node.id");
    const logDirs = config.get("log.dirs");
    this.logDirLock = await LogDirLock.acquire(logDirs);
    stopIfInterrupted();
    const storageLogger = this.options.logging.component("storage");
    const controllerLogger = this.options.logging.component("controller");
    const readiness = this.admin.readiness;
    readiness.set(readinessCheckNames.storageRecovered, {
      ready: false,
      reason: "recovering partition logs",
    });
    readiness.set(readinessCheckNames.listenersUp, {
      ready: false,
      reason: "Kafka listeners not started yet",
    });
    readiness.register(readinessCheckNames.storageWritable, () => this.logFailures.readiness());
    this.adminAddressValue = await this.admin.listen(config.get("admin.listener"));

    const clusterId = await loadOrCreateMetaProperties(logDirs, nodeId);
    stopIfInterrupted();
    const directWrites = new DirectWrites({ enabled: config.get("log.direct.io.enable") });
    directWrites.onDisabled((reason) => {
      storageLogger.warn(
        { reason },
        "appends go through the page cache from now on: the file system refused a direct write (set log.direct.io.enable=false to skip the attempt)",
      );
      this.options.metrics?.storage.directWritesEnabled.set(0);
    });
    const directReads = new DirectReads({ enabled: config.get("log.direct.reads.enable") });
    if (directReads.unavailableReason !== undefined && !DirectReads.availableOnThisPlatform) {
      storageLogger.info(
        { reason: directReads.unavailableReason },
        "reads of data not in the page cache go through it: direct reads are Linux's; nothing to do",
      );
    } else if (directReads.unavailableReason !== undefined) {
      storageLogger.warn(
        { reason: directReads.unavailableReason },
        "reads of data not in the page cache go through it: a consumer catching up costs several times the kernel CPU; see the reason, or set log.direct.reads.enable=false to silence this",
      );
    }
    directReads.onDisabled((reason) =>
      storageLogger.warn(
        { reason },
        "reads go through the page cache from now on: direct reads cannot be done here (set log.direct.reads.enable=false to skip the attempt)",
      ),
    );
    if (mappedMemoryUnavailableReason !== undefined) {
      const reason = mappedMemoryUnavailableReason;
      if (mappedMemoryAvailableOnThisPlatform) {
        this.serverLogger.warn(
          { reason },
          "free Produce and Fetch buffers, and reads ahead of a consumer's next Fetch (up to 65 MiB after a catch-up), keep their memory until V8 collects them, which can keep the RSS 100 MiB above what the node holds; see the reason",
        );
      } else {
        this.serverLogger.info(
          { reason },
          "free Produce and Fetch buffers, and reads ahead of a consumer's next Fetch, keep their memory until V8 collects them: nothing to do",
        );
      }
    }
    if (HeapTrimmer.unavailableReason !== undefined) {
      const reason = HeapTrimmer.unavailableReason;
      if (heapTrimAvailableOnThisPlatform) {
        this.serverLogger.warn(
          { reason },
          "freed Produce and Fetch buffers stay resident: after a burst the RSS keeps its peak; see the reason",
        );
      } else {
        this.serverLogger.info({ reason }, "freed heap memory is left to the C library: nothing to do");
      }
    }
    if (config.get("log.preallocate")) {
      const unavailable = preallocation.unavailableReason;
      if (unavailable !== undefined && !preallocation.availableOnThisPlatform) {
        storageLogger.info(
          { reason: unavailable },
          "segment files do not reserve blocks ahead of appends: only Linux offers it; nothing to do",
        );
      } else if (unavailable !== undefined) {
        storageLogger.warn(
          { reason: unavailable },
          "segment files do not reserve blocks ahead of appends: appends cost about a quarter more kernel CPU; see the reason, or set log.preallocate=false to silence this",
        );
      } else {
        const stopListening = preallocation.onDisabled((reason) =>
          storageLogger.warn(
            { reason },
            "segment files stop reserving blocks ahead of appends: the file system refused fallocate (set log.preallocate=false to skip the attempt)",
          ),
        );
        this.stopListeningToPreallocation = stopListening;
      }
    }
    if (this.options.metrics) {
      const storageMetrics = this.options.metrics.storage;
      storageMetrics.directWritesEnabled.set(directWrites.enabled ? 1 : 0);
      const direct = storageMetrics.appendedBytes.labels({ path: "direct" });
      const pageCache = storageMetrics.appendedBytes.labels({ path: "page_cache" });
      directWrites.onAppend((directBytes, pageCacheBytes) => {
        if (directBytes > 0) direct.inc(directBytes);
        if (pageCacheBytes > 0) pageCache.inc(pageCacheBytes);
      });
      directWrites.onAppendWritten((seconds) => storageMetrics.writeSeconds.observe(seconds));
      const readDirect = storageMetrics.readBytes.labels({ path: "direct" });
      const readPageCache = storageMetrics.readBytes.labels({ path: "page_cache" });
      directReads.onRead((directBytes, pageCacheBytes) => {
        if (directBytes > 0) readDirect.inc(directBytes);
        if (pageCacheBytes > 0) readPageCache.inc(pageCacheBytes);
      });
    }
    const metadataDirectory = join(logDirs[0]!, METADATA_LOG_DIRECTORY);
    const metrics = this.options.metrics;
    const observeCommitLatency = metrics
      ? (seconds: number) => metrics.raft.commitLatencySeconds.observe(seconds)
      : undefined;
    let raft: RaftGroups | undefined;
    if (config.get("raft.partitions.enable")) {
      raft = await RaftGroups.start({
        nodeId,
        clusterId,
        stableStorePath: join(logDirs[0]!, RAFT_STABLE_STORE_FILE),
        flushScheduler: this.flushScheduler,
        tickMs: config.get("raft.tick.ms"),
        electionTimeoutMs: config.get("raft.election.timeout.ms"),
        heartbeatIntervalMs: config.get("raft.heartbeat.interval.ms"),
        flushLingerMs: config.get("raft.flush.linger.ms"),
        logger: this.options.logging.component("raft"),
        ...(this.options.metrics ? { metrics: this.options.metrics } : {}),
      });
      this.raftGroups = raft;
      raft.failed.catch((error: Error) => this.logFailures.recordRaftFailure(error));
    }
    const openedMetadataLog = await openReplicatedLog(metadataDirectory, {
      topicPartition: { topic: METADATA_TOPIC, partition: 0 },
      nodeId,
      ...(raft ? { raft: { groups: raft, group: METADATA_GROUP_ID } } : {}),
      leaderEpoch: 0,
      config: METADATA_LOG_CONFIG,
      flushScheduler: this.flushScheduler,
      directWrites,
      now: this.now,
      onEvent: (event) => {
        if (event.type !== "failed") return;
        this.logFailures.record(`${METADATA_TOPIC}-0`, event.error);
        storageLogger.error(
          { err: event.error, topic: METADATA_TOPIC, partition: 0 },
          "the metadata log failed and refuses writes until the broker restarts",
        );
      },
      ...(observeCommitLatency ? { observeCommitLatency } : {}),
    });
    this.metadataLog = openedMetadataLog;
    if (raft && openedMetadataLog instanceof RaftReplicatedLog) {
      await Promise.race([openedMetadataLog.whenLeader(), raft.failed]);
    }
    const image = new MetadataImage();
    await Controller.replay(this.metadataLog, image);
    controllerLogger.info(
      { topics: image.topicCount, metadataOffset: image.appliedOffset, clusterId },
      "cluster metadata replayed",
    );
    this.applyBrokerConfigs(image);

    const diskSpace = new DiskSpaceGuard({
      logDirs,
      minFreeBytes: () => config.get("log.dir.min.free.bytes") ?? undefined,
      intervalMs: DISK_SPACE_CHECK_INTERVAL_MS,
      logger: storageLogger,
      onLow: () => void this.retention?.runOnce().catch(() => {}),
      onStateChange: (dir, refusing) =>
        this.options.metrics?.storage.produceRefused.set({ dir }, refusing ? 1 : 0),
      onRefused: (dir) => this.options.metrics?.storage.produceRefusedRequests.inc({ dir }),
    });
    for (const dir of logDirs) {
      this.options.metrics?.storage.produceRefused.set({ dir }, 0);
      this.options.metrics?.storage.produceRefusedRequests.inc({ dir }, 0);
    }
    // Before the partitions and the listeners: new partitions avoid a directory short of space, and a
    // node started on a nearly full disk refuses its first Produce already.
    await diskSpace.start();
    this.diskSpaceGuard = diskSpace;
    const partitions = new PartitionManager({
      nodeId,
      logDirs,
      config,
      flushScheduler: this.flushScheduler,
      directWrites,
      directReads,
      now: this.now,
      logger: storageLogger,
      ...(raft ? { raft } : {}),
      ...(observeCommitLatency ? { observeCommitLatency } : {}),
      refusesProduce: (dir) => diskSpace.refuses(dir),
      mayReserve: (partitionDirectory, bytes) => diskSpace.mayReserve(partitionDirectory, bytes),
      logFailures: this.logFailures,
    });
    this.partitionManager = partitions;
    partitions.onPartitionsRemoved((logs) => this.longPoll.wakeFetchesOf(logs));
    await partitions.openAll(image, this.options.interruptStart);
    readiness.set(readinessCheckNames.storageRecovered, { ready: true });

    const topicMetrics = new TopicMetrics(this.options.metrics);
    const controller = new Controller({
      nodeId,
      config,
      metadataLog: this.metadataLog,
      image,
      now: this.now,
      logger: controllerLogger,
      onDelta: async (delta) => {
        await partitions.applyDelta(delta);
        for (const topic of delta.removedTopics) topicMetrics.forget(topic.name);
        if (delta.brokerConfigChanges.length > 0) this.applyBrokerConfigs(image, delta);
        // Retention that was lowered applies now, not at the next log.retention.check.interval.ms.
        const retentionChanged =
          delta.topicConfigChanges.length > 0 ||
          delta.brokerConfigChanges.some((change) => change.key.startsWith("log.retention."));
        if (retentionChanged) this.retention?.requestPass();
      },
    });
    // The admin API's log-level changes become this node's run-time overrides in the metadata log, as
    // AlterConfigs' do: kept across a restart, and reported alike.
    this.admin.persistSettingsWith(async (changes) => {
      const [outcome] = await controller.alterConfigs(
        [
          {
            resourceType: ConfigResourceType.BROKER,
            resourceName: String(nodeId),
            entries: Object.entries(changes).map(([name, value]) => ({
              name,
              value,
              operation: value === null ? AlterConfigOperation.DELETE : AlterConfigOperation.SET,
            })),
          },
        ],
        { replaceAll: false },
      );
      return outcome?.error?.message;
    });
    this.servicesValue = {
      nodeId,
      clusterId,
      config,
      controller,
      partitions,
      logger: this.serverLogger,
      metrics: this.options.metrics,
      topicMetrics,
      now: this.now,
      advertisedListeners: () => this.advertised,
      producerState: acceptAllProducers,
      diskSpace,
    };
    const metadataLog: ReplicatedLog = this.metadataLog;
    function* hostedLogs(): Iterable<ReplicatedLog> {
      yield metadataLog;
      for (const topic of partitions.hostedTopics()) for (const log of topic.partitions) if (log) yield log;
    }
    this.options.metrics?.provide({ log: partitions, raft: new ReplicatedLogRaftStats(hostedLogs) });
    this.admin.setStatusProvider({
      status: () => ({
        nodeId,
        clusterId,
        listeners: this.advertised.map(({ name, host, port }) => ({ name, host, port })),
        partitions: partitions.partitionCount,
        leaders: countLeaders(partitions),
        topics: image.topicCount,
        connections: this.server.connectionCount,
        // Log directories short of space (log.dir.min.free.bytes), where Produce is refused.
        produceRefusedDirs: diskSpace.refusingDirectories().join(", ") || "none",
        // Logs that failed a write or fsync and refuse writes until the broker restarts.
        failedLogs: this.logFailures.failedLogs.join(", ") || "none",
      }),
    });
    this.registerHandlers(this.servicesValue);
    for (const extension of this.options.extensions ?? defaultBrokerExtensions()) {
      await extension.start(this.servicesValue, this.registry, {
        admin: this.admin,
        logging: this.options.logging,
      });
      this.startedExtensions.push(extension);
    }

    stopIfInterrupted();
    const bound = await this.server.listen(config.get("listeners"));
    this.advertised = effectiveAdvertisedListeners(config, this.options.advertisedHost ?? "localhost").map(
      (listener) => {
        if (listener.port !== 0) return listener;
        const match = bound.find((candidate) => candidate.name === listener.name);
        return { ...listener, port: match?.boundPort ?? listener.port };
      },
    );
    readiness.set(readinessCheckNames.listenersUp, { ready: true });
    this.startRetention();
  }

  private registerHandlers(services: BrokerServices): void {
    const sessions = new FetchSessionCache({ now: this.now });
    for (const handler of [
      apiVersionsHandler(this.registry),
      metadataHandler(services),
      produceHandler(services),
      fetchHandler(services, {
        sessions,
        longPoll: this.longPoll,
        buffers: this.buffers,
        nextReads: this.nextReads,
      }),
      listOffsetsHandler(services),
      createTopicsHandler(services),
      deleteTopicsHandler(services),
      createPartitionsHandler(services),
      describeConfigsHandler(services),
      alterConfigsHandler(services),
      incrementalAlterConfigsHandler(services),
      deleteRecordsHandler(services),
      describeClusterHandler(services),
      offsetForLeaderEpochHandler(services),
      saslHandshakeHandler(services),
      saslAuthenticateHandler(),
    ]) {
      this.registry.register(handler as never);
    }
  }

  /**
   * Dynamic broker settings from the metadata log: the cluster default ("") first, this node's on top.
   * At start (no delta) each one applied is logged, with what it overrides and how to remove it.
   */
  private applyBrokerConfigs(image: MetadataImage, delta?: MetadataDelta): void {
    if (delta && delta.brokerConfigChanges.length === 0) return;
    const nodeId = String(this.options.config.get("node.id"));
    const changes: Record<string, string | null> = {};
    const touched = new Set<string>([
      ...(delta?.brokerConfigChanges.map((change) => change.key) ?? []),
      ...image.brokerConfig("").keys(),
      ...image.brokerConfig(nodeId).keys(),
    ]);
    for (const key of touched) {
      changes[key] = image.brokerConfig(nodeId).get(key) ?? image.brokerConfig("").get(key) ?? null;
    }
    const problems = this.options.config.update(changes);
    for (const problem of problems) {
      this.logger.warn(
        { key: problem.key, problem: problem.message },
        "a dynamic broker setting from the metadata log was not applied",
      );
    }
    if (delta) return;
    const stored = image.brokerConfigLayers(Number(nodeId));
    for (const override of describeStoredOverrides(this.options.config, stored, Number(nodeId))) {
      this.logger[override.level]({ key: override.key }, override.message);
    }
  }

  private startRetention(): void {
    this.retention = new RetentionService({
      partitions: this.partitionManager!,
      intervalMs: () => this.options.config.get("log.retention.check.interval.ms"),
      now: this.now,
      logger: this.options.logging.component("storage"),
    });
    this.retention.start();
  }

  /**
   * Logs that failed a write or fsync (each refuses writes until a restart; Raft's host counts as
   * one when it stopped): a shutdown after any did not close the node cleanly.
   */
  get failedLogs(): readonly string[] {
    return this.logFailures.failedLogs;
  }

  /** Whether a log or the Raft host failed since the start: only a restart (after fixing the disk) clears it. */
  get needsRestart(): boolean {
    return this.logFailures.needsRestart;
  }

  /** Runs a retention pass now instead of waiting for the timer (tests, operator tools). */
  runRetention(): ReturnType<RetentionService["runOnce"]> {
    if (!this.retention) throw new Error("the broker has not started yet; await Broker.start()");
    return this.retention.runOnce();
  }

  /**
   * Graceful shutdown: stop accepting, answer what is in flight (parked fetches at once), then flush and
   * fsync every log and close. Bounded by `shutdown.timeout.ms` for the in-flight part.
   */
  shutdown(): Promise<void> {
    this.stopping ??= this.stopGracefully();
    return this.stopping;
  }

  private async stopGracefully(): Promise<void> {
    const deadline = Date.now() + this.options.config.get("shutdown.timeout.ms");
    this.logger.info("shutting down: no new connections or requests; answering requests in flight");
    this.admin.readiness.set(readinessCheckNames.listenersUp, { ready: false, reason: "shutting down" });
    await this.retention?.stop();
    this.diskSpaceGuard?.stop();
    this.server.stopAccepting();
    this.longPoll.wakeAll();
    for (const extension of this.startedExtensions) extension.answerParked?.();
    await this.server.drain(deadline);
    this.server.closeConnections();
    await this.stopExtensions();
    await this.partitionManager?.close();
    await this.metadataLog?.close();
    this.stopListeningToPreallocation?.();
    await this.raftGroups?.stop();
    this.flushScheduler.close();
    this.nextReads.close();
    this.buffers.close();
    this.heapTrimmer.close();
    await this.admin.close();
    await this.logDirLock?.release();
    if (!this.logFailures.needsRestart) {
      this.logger.info("shutdown complete: every log flushed and closed");
      return;
    }
    const failed = this.logFailures.failedLogs;
    this.logger.error(
      { failedLogs: failed },
      `shutdown complete, but ${failed.length > 0 ? `${failed.length} log(s) had failed (${failed.join(", ")})` : "the Raft groups had stopped after a storage failure"} and were closed without flushing; ` +
        "fix the disk (free space, `dmesg` for I/O errors), then start the node: it recovers those logs",
    );
  }

  private async stopExtensions(): Promise<void> {
    for (const extension of this.startedExtensions.splice(0).reverse()) {
      try {
        await extension.stop?.();
      } catch (error) {
        this.logger.error(
          { err: error, extension: extension.name },
          "broker extension failed to stop cleanly",
        );
      }
    }
  }

  /** Start-up failed half-way: release what was opened. */
  private async abort(): Promise<void> {
    this.server.destroy();
    this.diskSpaceGuard?.stop();
    await this.stopExtensions();
    await this.partitionManager?.close().catch(() => {});
    await this.metadataLog?.close().catch(() => {});
    await this.raftGroups?.stop().catch(() => {});
    this.flushScheduler.close();
    this.heapTrimmer.close();
    await this.admin.close().catch(() => {});
    await this.logDirLock?.release();
  }
}

function countLeaders(partitions: PartitionManager): number {
  let leaders = 0;
  for (const topic of partitions.hostedTopics())
    for (const log of topic.partitions) if (log?.isLeader) leaders++;
  return leaders;
}
