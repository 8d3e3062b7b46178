import {
  isSettingKey,
  isTopicSettingKey,
  type Logger,
  type RaftkaConfig,
  settingDefinition,
  topicSettings,
  topicSettingValue,
  validateTopicConfig,
} from "@raftka/monitoring";
import {
  decodeRecordBatch,
  ErrorCode,
  encodeRecordBatch,
  readRecordBatchHeader,
  sliceBatches,
} from "@raftka/protocol";
import { logConfigProblem } from "../partitions/log-config.js";
import type { ReplicatedLog } from "../partitions/replicated-log.js";
import {
  type ConfigOutcome,
  type ConfigResourceChange,
  ConfigResourceType,
  planConfigChanges,
} from "./config-operations.js";
import { emptyDelta, type MetadataDelta, type MetadataImage, type TopicImage } from "./image.js";
import { decodeMetadataRecord, encodeMetadataRecord, type MetadataRecord } from "./records.js";
import {
  type ConfigValidator,
  type CreateTopicOutcome,
  type NewPartitionsSpec,
  type NewTopicSpec,
  type OperationError,
  planCreatePartitions,
  planCreateTopics,
  planDeleteTopics,
  type TopicPlanContext,
  type TopicReference,
} from "./topic-operations.js";
import { randomKafkaUuid } from "./uuid.js";

/** A topic may not have more partitions than this: opening more logs than the node has file handles would take it down. */
export const MAX_PARTITIONS_PER_TOPIC = 10_000;
/** Partitions one node may hold; each open partition costs file handles and memory. */
export const MAX_PARTITIONS_PER_NODE = 50_000;

const REPLAY_READ_BYTES = 1024 * 1024;

export interface ControllerOptions {
  readonly nodeId: number;
  readonly config: RaftkaConfig;
  readonly metadataLog: ReplicatedLog;
  readonly image: MetadataImage;
  readonly now: () => number;
  readonly logger: Logger;
  /** Applies a committed change to the node (opens new partitions, deletes removed ones); awaited before answering. */
  readonly onDelta: (delta: MetadataDelta) => Promise<void>;
  readonly newTopicId?: () => string;
}

export interface DeleteTopicOutcome extends TopicReference {
  readonly topic?: TopicImage;
  readonly error?: OperationError;
}

/**
 * The single-node controller: the only writer of the metadata log. Operations run one at a time: each one
 * validates against the current image, appends its records as one batch, waits until the batch is committed
 * (acks=all on the metadata log), applies it to the image and lets the node follow before it answers.
 * In a cluster the metadata log becomes the controller Raft group's log; the operations stay as they are.
 */
export class Controller {
  private tail: Promise<unknown> = Promise.resolve();
  private readonly newTopicId: () => string;

  constructor(private readonly options: ControllerOptions) {
    this.newTopicId = options.newTopicId ?? (() => randomKafkaUuid());
  }

  get image(): MetadataImage {
    return this.options.image;
  }

  /** Reads the committed metadata log into `image`; returns everything it added, for the node to open. */
  static async replay(log: ReplicatedLog, image: MetadataImage): Promise<MetadataDelta> {
    const delta = emptyDelta();
    let offset = log.logStartOffset;
    while (offset < log.highWatermark) {
      const { records, nextOffset } = await log.read(offset, REPLAY_READ_BYTES);
      if (nextOffset <= offset) break;
      for (const slice of sliceBatches(records).batches) {
        const header = readRecordBatchHeader(slice.bytes);
        const end = Number(header.baseOffset) + header.lastOffsetDelta + 1;
        if (header.isControl || end <= image.appliedOffset) continue;
        for (const record of decodeRecordBatch(slice.bytes).records) {
          image.apply(decodeMetadataRecord(record.value, `offset ${record.offset}`), delta);
        }
        image.appliedOffset = end;
      }
      offset = nextOffset;
    }
    return delta;
  }

  /** Runs operations one at a time, in call order. */
  private serialize<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.tail.then(operation);
    this.tail = result.catch(() => {});
    return result;
  }

  /** Appends `records` as one batch, waits until committed, applies them and lets the node follow. */
  private async commit(records: readonly MetadataRecord[]): Promise<void> {
    if (records.length === 0) return;
    const now = this.options.now();
    const batch = encodeRecordBatch({
      records: records.map((record) => ({ value: encodeMetadataRecord(record), timestamp: now })),
    });
    const appended = await this.options.metadataLog.append(batch, { acks: -1 });
    const delta = emptyDelta();
    for (const record of records) this.options.image.apply(record, delta);
    this.options.image.appliedOffset = appended.lastOffset + 1;
    this.options.logger.info(
      {
        records: records.length,
        offset: appended.baseOffset,
        types: [...new Set(records.map((r) => r.type))],
      },
      "metadata change committed",
    );
    await this.options.onDelta(delta);
  }

  private planContext(): TopicPlanContext {
    const { config, nodeId } = this.options;
    return {
      image: this.options.image,
      brokerIds: [nodeId],
      defaultNumPartitions: config.get("num.partitions"),
      defaultReplicationFactor: config.get("default.replication.factor"),
      maxPartitionsPerTopic: MAX_PARTITIONS_PER_TOPIC,
      maxPartitionsPerNode: MAX_PARTITIONS_PER_NODE,
      newTopicId: this.newTopicId,
      validateConfigs: this.topicConfigValidator(),
    };
  }

  /** Kafka's topic config rules (from the settings schema) plus storage's narrower limits. */
  topicConfigValidator(): ConfigValidator {
    const { config } = this.options;
    return (configs) => {
      const validated = validateTopicConfig(configs);
      if (!validated.ok) {
        return { ok: false, message: validated.problems.map((problem) => problem.message).join("; ") };
      }
      const problem = logConfigProblem(config, validated.overrides);
      if (problem !== undefined) return { ok: false, message: problem };
      return { ok: true, overrides: { ...validated.overrides } as Record<string, string> };
    };
  }

  /**
   * CreateTopics. Resolves once every created topic's partitions accept produce and fetch, so a client's
   * first Produce right after never sees UNKNOWN_TOPIC_OR_PARTITION.
   */
  createTopics(
    specs: readonly NewTopicSpec[],
    options: { validateOnly?: boolean; internal?: boolean } = {},
  ): Promise<CreateTopicOutcome[]> {
    return this.serialize(async () => {
      const plan = planCreateTopics(specs, this.planContext(), { internal: options.internal ?? false });
      if (!options.validateOnly) await this.commitOrFail(plan.records, plan.outcomes);
      return plan.outcomes.map((outcome) => {
        if (outcome.error || options.validateOnly) return outcome;
        return { ...outcome, topicId: this.options.image.topic(outcome.name)?.topicId ?? outcome.topicId };
      });
    });
  }

  /**
   * Creates an internal topic (e.g. `__consumer_offsets`) unless it exists; resolves to it either way. For the
   * broker's own services, which create their topics on first use.
   */
  async ensureInternalTopic(
    name: string,
    numPartitions: number,
    configs: Readonly<Record<string, string>> = {},
  ): Promise<TopicImage> {
    const existing = this.options.image.topic(name);
    if (existing) return existing;
    const [outcome] = await this.createTopics(
      [{ name, numPartitions, replicationFactor: -1, assignments: [], configs }],
      { internal: true },
    );
    const topic = this.options.image.topic(name);
    if (topic) return topic;
    throw new Error(
      `could not create internal topic ${name}: ${outcome?.error?.message ?? "unknown reason"}`,
    );
  }

  /**
   * Reserves the next `size` producer ids durably (committed in the metadata log before any is handed
   * out) and resolves with the first. InitProducerId allocates from such blocks.
   */
  reserveProducerIds(size: number): Promise<bigint> {
    return this.serialize(async () => {
      const first = this.options.image.nextProducerId;
      await this.commit([{ type: "producer-ids", v: 1, nextProducerId: String(first + BigInt(size)) }]);
      return first;
    });
  }

  deleteTopics(references: readonly TopicReference[]): Promise<DeleteTopicOutcome[]> {
    return this.serialize(async () => {
      const plan = planDeleteTopics(references, this.options.image, {
        deletionEnabled: this.options.config.get("delete.topic.enable"),
      });
      await this.commitOrFail(plan.records, plan.outcomes);
      return plan.outcomes;
    });
  }

  createPartitions(
    specs: readonly NewPartitionsSpec[],
    options: { validateOnly?: boolean } = {},
  ): Promise<{ name: string; error?: OperationError }[]> {
    return this.serialize(async () => {
      const plan = planCreatePartitions(specs, this.planContext());
      if (!options.validateOnly) await this.commitOrFail(plan.records, plan.outcomes);
      return plan.outcomes;
    });
  }

  /**
   * AlterConfigs (`replaceAll`: the listed configs become the resource's whole set of overrides) and
   * IncrementalAlterConfigs for topics and brokers. Changes are metadata records, so they survive restarts.
   */
  alterConfigs(
    resources: readonly ConfigResourceChange[],
    options: { validateOnly?: boolean; replaceAll: boolean },
  ): Promise<ConfigOutcome[]> {
    return this.serialize(async () => {
      const { config, image, nodeId } = this.options;
      const plan = planConfigChanges(resources, {
        image,
        nodeId,
        replaceAll: options.replaceAll,
        validateTopic: this.topicConfigValidator(),
        validateBroker: (resourceName, wanted) => this.validateBrokerOverrides(resourceName, wanted),
        isListKey: (resource, key) =>
          resource.resourceType === ConfigResourceType.TOPIC
            ? isTopicSettingKey(key) && topicSettings.get(key)!.type.kafkaType === "LIST"
            : isSettingKey(key) && settingDefinition(key).type.kafkaType === "LIST",
        currentListValue: (resource, key) => {
          if (resource.resourceType === ConfigResourceType.TOPIC) {
            const topic = image.topic(resource.resourceName);
            if (!topic || !isTopicSettingKey(key)) return undefined;
            const definition = topicSettings.get(key)!;
            return definition.type.format(topicSettingValue(config, topic.configs, key));
          }
          return isSettingKey(key) ? (config.format(key) ?? undefined) : undefined;
        },
      });
      if (!options.validateOnly) await this.commitOrFail(plan.records, plan.outcomes);
      return plan.outcomes;
    });
  }

  /** Dynamic broker overrides are valid when the node's settings would accept the merged result. */
  private validateBrokerOverrides(
    resourceName: string,
    wanted: ReadonlyMap<string, string>,
  ): OperationError | undefined {
    for (const key of wanted.keys()) {
      if (isSettingKey(key) && !settingDefinition(key).dynamic) {
        return {
          code: ErrorCode.INVALID_REQUEST,
          message: `${key} cannot change while the node runs; set it in the config file, environment or flags and restart the node`,
        };
      }
    }
    const { config, image, nodeId } = this.options;
    const nodeName = String(nodeId);
    const clusterDefaults = resourceName === "" ? wanted : image.brokerConfig("");
    const nodeOverrides = resourceName === nodeName ? wanted : image.brokerConfig(nodeName);
    const changes: Record<string, string | null> = {};
    const keys = new Set([
      ...clusterDefaults.keys(),
      ...nodeOverrides.keys(),
      ...image.brokerConfig("").keys(),
      ...image.brokerConfig(nodeName).keys(),
    ]);
    for (const key of keys) changes[key] = nodeOverrides.get(key) ?? clusterDefaults.get(key) ?? null;
    const problems = config.update(changes, { validateOnly: true });
    if (problems.length === 0) return undefined;
    return {
      code: ErrorCode.INVALID_CONFIG,
      message: problems.map((problem) => `${problem.key}: ${problem.message}`).join("; "),
    };
  }

  /** Commits; if the metadata log refuses, every outcome that would have succeeded gets the storage error. */
  private async commitOrFail(
    records: readonly MetadataRecord[],
    outcomes: { error?: OperationError }[],
  ): Promise<void> {
    try {
      await this.commit(records);
    } catch (error) {
      this.options.logger.error({ err: error }, "metadata change could not be committed");
      const failure: OperationError = {
        code: ErrorCode.KAFKA_STORAGE_ERROR,
        message: `the metadata log could not be written (${(error as Error).message}); check the broker's disk and log`,
      };
      for (const outcome of outcomes) if (!outcome.error) outcome.error = failure;
    }
  }
}
