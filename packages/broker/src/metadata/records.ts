/**
 * Records of the cluster metadata log (KRaft style): every change to topics, partitions and configs is one
 * record, and the in-memory image is what replaying them in order gives. Each record is the JSON value of a
 * Kafka record in a v2 batch; one controller operation is one batch, so it lands on disk all or nothing.
 * `v` is the record format version, so later versions can read old logs.
 */

export interface TopicRecord {
  readonly type: "topic";
  readonly v: 1;
  readonly name: string;
  readonly topicId: string;
  /** Internal topics (`__consumer_offsets`) are created by the broker and refuse client produce. */
  readonly internal: boolean;
}

export interface PartitionRecord {
  readonly type: "partition";
  readonly v: 1;
  readonly topicId: string;
  readonly partition: number;
  readonly replicas: readonly number[];
  readonly leader: number;
  readonly leaderEpoch: number;
}

/** A topic or broker config override set (value) or removed (null). Broker name "" is the cluster default. */
export interface ConfigRecord {
  readonly type: "config";
  readonly v: 1;
  readonly resourceType: "topic" | "broker";
  readonly resourceName: string;
  readonly key: string;
  readonly value: string | null;
}

export interface RemoveTopicRecord {
  readonly type: "remove-topic";
  readonly v: 1;
  readonly topicId: string;
}

/**
 * Producer ids below `nextProducerId` have been handed out in blocks (InitProducerId): a block is
 * reserved by committing this record before any id in it is used, so ids are never reused after a restart.
 */
export interface ProducerIdsRecord {
  readonly type: "producer-ids";
  readonly v: 1;
  /** Decimal string: producer ids are int64. */
  readonly nextProducerId: string;
}

export type MetadataRecord =
  | TopicRecord
  | PartitionRecord
  | ConfigRecord
  | RemoveTopicRecord
  | ProducerIdsRecord;

/** A metadata record that cannot be read: the metadata log is damaged or was written by a newer version. */
export class MetadataRecordError extends Error {
  override readonly name = "MetadataRecordError";
}

export function encodeMetadataRecord(record: MetadataRecord): Buffer {
  return Buffer.from(JSON.stringify(record), "utf8");
}

const isInt = (value: unknown, min = 0): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= min;
const isString = (value: unknown): value is string => typeof value === "string";

/** Parses and checks one record value; throws MetadataRecordError describing what is wrong. */
export function decodeMetadataRecord(value: Buffer | null, where: string): MetadataRecord {
  const fail = (problem: string): never => {
    throw new MetadataRecordError(
      `metadata record at ${where} ${problem}; the metadata log is damaged or was written by a newer Raftka: ` +
        "restore the log directory from a backup or upgrade Raftka",
    );
  };
  if (value === null) return fail("has no value");
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString("utf8"));
  } catch (error) {
    return fail(`is not JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null) return fail("is not a JSON object");
  const record = parsed as Record<string, unknown>;
  if (record.v !== 1) return fail(`has format version ${String(record.v)}, this Raftka reads version 1`);
  switch (record.type) {
    case "topic":
      if (!isString(record.name) || !isString(record.topicId) || typeof record.internal !== "boolean")
        return fail("(topic) lacks name, topicId or internal");
      return record as unknown as TopicRecord;
    case "partition":
      if (
        !isString(record.topicId) ||
        !isInt(record.partition) ||
        !Array.isArray(record.replicas) ||
        !record.replicas.every((replica) => isInt(replica)) ||
        !isInt(record.leader, -1) ||
        !isInt(record.leaderEpoch)
      )
        return fail("(partition) lacks topicId, partition, replicas, leader or leaderEpoch");
      return record as unknown as PartitionRecord;
    case "config":
      if (
        (record.resourceType !== "topic" && record.resourceType !== "broker") ||
        !isString(record.resourceName) ||
        !isString(record.key) ||
        !(record.value === null || isString(record.value))
      )
        return fail("(config) lacks resourceType, resourceName, key or value");
      return record as unknown as ConfigRecord;
    case "remove-topic":
      if (!isString(record.topicId)) return fail("(remove-topic) lacks topicId");
      return record as unknown as RemoveTopicRecord;
    case "producer-ids":
      if (!isString(record.nextProducerId) || !/^\d{1,19}$/.test(record.nextProducerId))
        return fail("(producer-ids) lacks a decimal nextProducerId");
      return record as unknown as ProducerIdsRecord;
    default:
      return fail(`has unknown type ${JSON.stringify(record.type)}`);
  }
}
