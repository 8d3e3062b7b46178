import { ErrorCode } from "@raftka/protocol";
import type { MetadataImage, TopicImage } from "./image.js";
import type { MetadataRecord } from "./records.js";
import { collisionKey, isInternalTopicName, topicNameProblem } from "./topic-names.js";

/** A Kafka error for one topic (or partition, or config resource). */
export interface OperationError {
  readonly code: number;
  readonly message: string;
}

export interface ReplicaAssignment {
  readonly partitionIndex: number;
  readonly brokerIds: readonly number[];
}

export interface NewTopicSpec {
  readonly name: string;
  /** -1 asks for `num.partitions`. */
  readonly numPartitions: number;
  /** -1 asks for `default.replication.factor`. */
  readonly replicationFactor: number;
  readonly assignments: readonly ReplicaAssignment[];
  readonly configs: Readonly<Record<string, string | null>>;
}

export type ConfigValidator = (
  configs: Readonly<Record<string, string | null>>,
) => { ok: true; overrides: Record<string, string> } | { ok: false; message: string };

export interface TopicPlanContext {
  readonly image: MetadataImage;
  /** Brokers that can hold replicas. */
  readonly brokerIds: readonly number[];
  readonly defaultNumPartitions: number;
  readonly defaultReplicationFactor: number;
  readonly maxPartitionsPerTopic: number;
  /** Partitions the node may hold in all; more would exhaust its file handles. */
  readonly maxPartitionsPerNode: number;
  readonly newTopicId: () => string;
  readonly validateConfigs: ConfigValidator;
}

export interface CreateTopicOutcome {
  readonly name: string;
  readonly error?: OperationError;
  readonly topicId?: string;
  readonly numPartitions?: number;
  readonly replicationFactor?: number;
  readonly overrides?: Readonly<Record<string, string>>;
}

const fail = (code: number, message: string): { error: OperationError } => ({ error: { code, message } });

/** Replica lists for `count` new partitions starting at `firstPartition`, spread round-robin over the brokers. */
function spreadReplicas(
  brokerIds: readonly number[],
  firstPartition: number,
  count: number,
  replicationFactor: number,
): number[][] {
  const sorted = [...brokerIds].sort((a, b) => a - b);
  const result: number[][] = [];
  for (let index = 0; index < count; index++) {
    const start = (firstPartition + index) % sorted.length;
    const replicas: number[] = [];
    for (let replica = 0; replica < replicationFactor; replica++) {
      replicas.push(sorted[(start + replica) % sorted.length]!);
    }
    result.push(replicas);
  }
  return result;
}

/** Checks manual replica assignments the way Kafka does; returns the replica lists or an error. */
function checkAssignments(
  assignments: readonly ReplicaAssignment[],
  firstPartition: number,
  brokerIds: readonly number[],
  expectedReplicationFactor?: number,
): { replicas: number[][] } | { error: OperationError } {
  const sorted = [...assignments].sort((a, b) => a.partitionIndex - b.partitionIndex);
  const replicas: number[][] = [];
  let replicationFactor = expectedReplicationFactor;
  for (const [index, assignment] of sorted.entries()) {
    if (assignment.partitionIndex !== firstPartition + index) {
      return fail(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `partitions in the replica assignment must be consecutive from ${firstPartition}, found partition ${assignment.partitionIndex}; list each partition exactly once`,
      );
    }
    const brokers = assignment.brokerIds;
    if (brokers.length === 0) {
      return fail(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `partition ${assignment.partitionIndex} has an empty replica list; give at least one broker id`,
      );
    }
    if (new Set(brokers).size !== brokers.length) {
      return fail(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `partition ${assignment.partitionIndex} lists a broker twice (${brokers.join(", ")}); list each replica once`,
      );
    }
    const unknown = brokers.find((broker) => !brokerIds.includes(broker));
    if (unknown !== undefined) {
      return fail(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `partition ${assignment.partitionIndex} is assigned to unknown broker ${unknown}; available brokers: ${brokerIds.join(", ")}`,
      );
    }
    replicationFactor ??= brokers.length;
    if (brokers.length !== replicationFactor) {
      return fail(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `all partitions must have the same number of replicas (${replicationFactor}), partition ${assignment.partitionIndex} has ${brokers.length}`,
      );
    }
    replicas.push([...brokers]);
  }
  return { replicas };
}

function partitionRecords(topicId: string, firstPartition: number, replicas: number[][]): MetadataRecord[] {
  return replicas.map((replicaList, index) => ({
    type: "partition",
    v: 1,
    topicId,
    partition: firstPartition + index,
    replicas: replicaList,
    leader: replicaList[0]!,
    leaderEpoch: 0,
  }));
}

/**
 * Plans CreateTopics: validates each topic against the image and the other topics of the request, and
 * returns the records to commit. Pure: nothing is changed until the caller commits the records.
 */
export function planCreateTopics(
  specs: readonly NewTopicSpec[],
  context: TopicPlanContext,
  options: { internal?: boolean } = {},
): { outcomes: CreateTopicOutcome[]; records: MetadataRecord[] } {
  const records: MetadataRecord[] = [];
  const outcomes: CreateTopicOutcome[] = [];
  const nameCounts = new Map<string, number>();
  for (const spec of specs) nameCounts.set(spec.name, (nameCounts.get(spec.name) ?? 0) + 1);
  const existingKeys = new Map<string, string>();
  let totalPartitions = 0;
  for (const topic of context.image.topics()) {
    existingKeys.set(collisionKey(topic.name), topic.name);
    totalPartitions += topic.partitions.length;
  }

  for (const spec of specs) {
    const outcome = planOne(spec);
    outcomes.push({ name: spec.name, ...outcome });
  }
  return { outcomes, records };

  function planOne(spec: NewTopicSpec): Omit<CreateTopicOutcome, "name"> {
    if ((nameCounts.get(spec.name) ?? 0) > 1) {
      return fail(
        ErrorCode.INVALID_REQUEST,
        `topic ${spec.name} appears more than once in the request; list each topic once`,
      );
    }
    const nameProblem = topicNameProblem(spec.name);
    if (nameProblem) return fail(ErrorCode.INVALID_TOPIC_EXCEPTION, nameProblem);
    if (!options.internal && isInternalTopicName(spec.name)) {
      return fail(
        ErrorCode.INVALID_REQUEST,
        `topic ${spec.name} is internal and created by the broker itself when first needed`,
      );
    }
    if (context.image.topic(spec.name)) {
      return fail(ErrorCode.TOPIC_ALREADY_EXISTS, `topic ${spec.name} already exists`);
    }
    const colliding = existingKeys.get(collisionKey(spec.name));
    if (colliding !== undefined) {
      return fail(
        ErrorCode.INVALID_TOPIC_EXCEPTION,
        `topic ${spec.name} collides with existing topic ${colliding}: names differing only in '.' and '_' are not allowed; pick another name`,
      );
    }
    // Where Kafka's controller checks it (computeConfigChanges): after the name, before partitions and
    // replicas. A null value is no config at all, so the topic is refused rather than created without it.
    const nullConfigs = Object.keys(spec.configs).filter((key) => spec.configs[key] === null);
    if (nullConfigs.length > 0) {
      return fail(
        ErrorCode.INVALID_CONFIG,
        `Null value not supported for topic configs: ${nullConfigs.join(",")}`,
      );
    }

    let replicas: number[][];
    if (spec.assignments.length > 0) {
      if (spec.numPartitions !== -1 || spec.replicationFactor !== -1) {
        return fail(
          ErrorCode.INVALID_REQUEST,
          "both numPartitions/replicationFactor and a replica assignment were given; set numPartitions and replicationFactor to -1 when assigning replicas",
        );
      }
      const checked = checkAssignments(spec.assignments, 0, context.brokerIds);
      if ("error" in checked) return checked;
      replicas = checked.replicas;
    } else {
      const numPartitions = spec.numPartitions === -1 ? context.defaultNumPartitions : spec.numPartitions;
      const replicationFactor =
        spec.replicationFactor === -1 ? context.defaultReplicationFactor : spec.replicationFactor;
      if (!Number.isInteger(numPartitions) || numPartitions <= 0) {
        return fail(
          ErrorCode.INVALID_PARTITIONS,
          `number of partitions must be larger than 0 (got ${numPartitions}); ask for at least 1, or -1 for the broker default`,
        );
      }
      // Checked before the replicas are laid out: a request for 2^31 partitions must not allocate them first.
      if (numPartitions > context.maxPartitionsPerTopic) {
        return fail(
          ErrorCode.INVALID_PARTITIONS,
          `${numPartitions} partitions is more than the ${context.maxPartitionsPerTopic} a topic may have; use fewer partitions`,
        );
      }
      if (replicationFactor <= 0) {
        return fail(
          ErrorCode.INVALID_REPLICATION_FACTOR,
          `replication factor must be larger than 0 (got ${replicationFactor}); ask for at least 1, or -1 for the broker default`,
        );
      }
      if (replicationFactor > context.brokerIds.length) {
        return fail(
          ErrorCode.INVALID_REPLICATION_FACTOR,
          `replication factor ${replicationFactor} is larger than the ${context.brokerIds.length} available broker(s); lower it or add brokers`,
        );
      }
      replicas = spreadReplicas(context.brokerIds, 0, numPartitions, replicationFactor);
    }
    if (replicas.length > context.maxPartitionsPerTopic) {
      return fail(
        ErrorCode.INVALID_PARTITIONS,
        `${replicas.length} partitions is more than the ${context.maxPartitionsPerTopic} a topic may have; use fewer partitions`,
      );
    }

    if (totalPartitions + replicas.length > context.maxPartitionsPerNode) {
      return fail(
        ErrorCode.POLICY_VIOLATION,
        `the node holds ${totalPartitions} partitions and may hold at most ${context.maxPartitionsPerNode}; delete topics or create fewer partitions`,
      );
    }

    const validated = context.validateConfigs(spec.configs);
    if (!validated.ok) return fail(ErrorCode.INVALID_CONFIG, validated.message);

    totalPartitions += replicas.length;
    const topicId = context.newTopicId();
    records.push({ type: "topic", v: 1, name: spec.name, topicId, internal: options.internal ?? false });
    for (const [key, value] of Object.entries(validated.overrides)) {
      records.push({ type: "config", v: 1, resourceType: "topic", resourceName: spec.name, key, value });
    }
    records.push(...partitionRecords(topicId, 0, replicas));
    existingKeys.set(collisionKey(spec.name), spec.name);
    return {
      topicId,
      numPartitions: replicas.length,
      replicationFactor: replicas[0]!.length,
      overrides: validated.overrides,
    };
  }
}

export interface TopicReference {
  readonly name?: string | null;
  readonly topicId?: string | null;
}

/** Finds a topic by name or (when the name is null) by id, or the error Kafka answers. */
export function resolveTopic(
  image: MetadataImage,
  reference: TopicReference,
): { topic: TopicImage } | { error: OperationError } {
  if (reference.name !== null && reference.name !== undefined && reference.name !== "") {
    const topic = image.topic(reference.name);
    if (topic) return { topic };
    return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${reference.name} does not exist`);
  }
  if (reference.topicId) {
    const topic = image.topicById(reference.topicId);
    if (topic) return { topic };
    return fail(ErrorCode.UNKNOWN_TOPIC_ID, `no topic has id ${reference.topicId}`);
  }
  return fail(ErrorCode.INVALID_REQUEST, "the request names neither a topic nor a topic id");
}

/** Plans DeleteTopics; returns per-reference results and the records to commit. */
export function planDeleteTopics(
  references: readonly TopicReference[],
  image: MetadataImage,
  options: { deletionEnabled: boolean },
): {
  outcomes: ({ topic?: TopicImage; error?: OperationError } & TopicReference)[];
  records: MetadataRecord[];
} {
  const records: MetadataRecord[] = [];
  const removed = new Set<string>();
  const outcomes = references.map((reference) => {
    if (!options.deletionEnabled) {
      return {
        ...reference,
        ...fail(
          ErrorCode.TOPIC_DELETION_DISABLED,
          "topic deletion is disabled on this broker (delete.topic.enable=false); enable it to delete topics",
        ),
      };
    }
    const resolved = resolveTopic(image, reference);
    if ("error" in resolved) return { ...reference, ...resolved };
    const { topic } = resolved;
    if (topic.internal) {
      return {
        ...reference,
        topic,
        ...fail(
          ErrorCode.INVALID_TOPIC_EXCEPTION,
          `topic ${topic.name} is internal to the broker and cannot be deleted`,
        ),
      };
    }
    if (!removed.has(topic.topicId)) {
      removed.add(topic.topicId);
      records.push({ type: "remove-topic", v: 1, topicId: topic.topicId });
    }
    return { ...reference, topic };
  });
  return { outcomes, records };
}

export interface NewPartitionsSpec {
  readonly name: string;
  readonly count: number;
  readonly assignments: readonly { readonly brokerIds: readonly number[] }[] | null;
}

/** Plans CreatePartitions: grows each topic to `count` partitions. */
export function planCreatePartitions(
  specs: readonly NewPartitionsSpec[],
  context: Pick<TopicPlanContext, "image" | "brokerIds" | "maxPartitionsPerTopic" | "maxPartitionsPerNode">,
): { outcomes: { name: string; error?: OperationError }[]; records: MetadataRecord[] } {
  const records: MetadataRecord[] = [];
  let totalPartitions = 0;
  for (const topic of context.image.topics()) totalPartitions += topic.partitions.length;
  const counts = new Map<string, number>();
  for (const spec of specs) counts.set(spec.name, (counts.get(spec.name) ?? 0) + 1);
  const outcomes = specs.map((spec) => {
    if ((counts.get(spec.name) ?? 0) > 1) {
      return {
        name: spec.name,
        ...fail(ErrorCode.INVALID_REQUEST, `topic ${spec.name} appears more than once; list each topic once`),
      };
    }
    const topic = context.image.topic(spec.name);
    if (!topic) {
      return {
        name: spec.name,
        ...fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${spec.name} does not exist`),
      };
    }
    if (topic.internal) {
      // A group's offsets partition is a hash of its id over the partition count: more partitions would
      // move groups away from their committed offsets.
      return {
        name: spec.name,
        ...fail(
          ErrorCode.INVALID_PARTITIONS,
          `topic ${spec.name} is internal to the broker; its partition count is fixed once it exists`,
        ),
      };
    }
    const current = topic.partitions.length;
    if (spec.count <= current) {
      return {
        name: spec.name,
        ...fail(
          ErrorCode.INVALID_PARTITIONS,
          `topic ${spec.name} has ${current} partitions; the new count must be larger (got ${spec.count}), partitions can never be removed`,
        ),
      };
    }
    if (spec.count > context.maxPartitionsPerTopic) {
      return {
        name: spec.name,
        ...fail(
          ErrorCode.INVALID_PARTITIONS,
          `${spec.count} partitions is more than the ${context.maxPartitionsPerTopic} a topic may have; use fewer partitions`,
        ),
      };
    }
    const added = spec.count - current;
    if (totalPartitions + added > context.maxPartitionsPerNode) {
      return {
        name: spec.name,
        ...fail(
          ErrorCode.POLICY_VIOLATION,
          `the node holds ${totalPartitions} partitions and may hold at most ${context.maxPartitionsPerNode}; delete topics or add fewer partitions`,
        ),
      };
    }
    const replicationFactor = topic.partitions[0]?.replicas.length ?? 1;
    let replicas: number[][];
    if (spec.assignments !== null) {
      if (spec.assignments.length !== added) {
        return {
          name: spec.name,
          ...fail(
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            `the assignment lists ${spec.assignments.length} partitions but ${added} are being added; give one replica list per new partition`,
          ),
        };
      }
      const checked = checkAssignments(
        spec.assignments.map((assignment, index) => ({
          partitionIndex: current + index,
          brokerIds: assignment.brokerIds,
        })),
        current,
        context.brokerIds,
        replicationFactor,
      );
      if ("error" in checked) return { name: spec.name, ...checked };
      replicas = checked.replicas;
    } else {
      if (replicationFactor > context.brokerIds.length) {
        return {
          name: spec.name,
          ...fail(
            ErrorCode.INVALID_REPLICATION_FACTOR,
            `topic ${spec.name} has replication factor ${replicationFactor} but only ${context.brokerIds.length} broker(s) are available`,
          ),
        };
      }
      replicas = spreadReplicas(context.brokerIds, current, added, replicationFactor);
    }
    records.push(...partitionRecords(topic.topicId, current, replicas));
    totalPartitions += added;
    return { name: spec.name };
  });
  return { outcomes, records };
}
