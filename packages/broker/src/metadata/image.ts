import type { DynamicBrokerLayers, TopicConfigOverrides, TopicSettingKey } from "@raftka/monitoring";
import type { MetadataRecord } from "./records.js";

export interface PartitionImage {
  readonly partition: number;
  readonly replicas: readonly number[];
  readonly leader: number;
  readonly leaderEpoch: number;
}

export interface TopicImage {
  readonly name: string;
  readonly topicId: string;
  readonly internal: boolean;
  readonly partitions: readonly PartitionImage[];
  /** The topic's own settings (Kafka's DYNAMIC_TOPIC_CONFIG); everything else comes from the broker. */
  readonly configs: TopicConfigOverrides;
}

/** What applying records changed, so the partition manager can follow. */
export interface MetadataDelta {
  /** Topics created, or that gained partitions, with the partitions that are new. */
  readonly addedPartitions: { topic: TopicImage; partitions: PartitionImage[] }[];
  readonly removedTopics: TopicImage[];
  /** Topics whose config overrides changed. */
  readonly topicConfigChanges: TopicImage[];
  /** Broker config keys changed, per resource name ("" = cluster-wide default). */
  readonly brokerConfigChanges: { resourceName: string; key: string; value: string | null }[];
}

export function emptyDelta(): MetadataDelta {
  return { addedPartitions: [], removedTopics: [], topicConfigChanges: [], brokerConfigChanges: [] };
}

/** Thrown when a record does not fit the image: a damaged metadata log or a controller bug. */
export class MetadataImageError extends Error {
  override readonly name = "MetadataImageError";
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) {
    throw new MetadataImageError(
      `metadata log is inconsistent: ${message}; restore the log directory from a backup (this may be a Raftka bug: please report it)`,
    );
  }
}

/**
 * The cluster metadata as replaying the metadata log gives it: topics, partitions, topic and broker config
 * overrides. Deterministic: the same records in the same order always give the same image.
 */
export class MetadataImage {
  private readonly byName = new Map<string, TopicImage>();
  private readonly byId = new Map<string, TopicImage>();
  /** Ids of topics the log deleted: a partition directory of one of them is a deletion to finish. */
  private readonly removedIds = new Set<string>();
  private readonly brokerConfigs = new Map<string, Map<string, string>>();
  /** Offset of the next metadata record to apply (the metadata log position this image reflects). */
  appliedOffset = 0;
  /** Producer ids below this were reserved in blocks (InitProducerId); the next block starts here. */
  nextProducerId = 0n;

  topic(name: string): TopicImage | undefined {
    return this.byName.get(name);
  }

  topicById(topicId: string): TopicImage | undefined {
    return this.byId.get(topicId);
  }

  topics(): IterableIterator<TopicImage> {
    return this.byName.values();
  }

  get topicCount(): number {
    return this.byName.size;
  }

  /** Dynamic broker config overrides of one resource ("" = cluster default, or a node id). */
  brokerConfig(resourceName: string): ReadonlyMap<string, string> {
    return this.brokerConfigs.get(resourceName) ?? new Map();
  }

  /** Node `nodeId`'s run-time broker settings by layer: its own over the cluster default's. */
  brokerConfigLayers(nodeId: number): DynamicBrokerLayers {
    return { node: this.brokerConfig(String(nodeId)), clusterDefault: this.brokerConfig("") };
  }

  apply(record: MetadataRecord, delta: MetadataDelta = emptyDelta()): MetadataDelta {
    switch (record.type) {
      case "topic": {
        check(!this.byName.has(record.name), `topic ${record.name} is created twice`);
        check(!this.byId.has(record.topicId), `topic id ${record.topicId} is used twice`);
        const topic: TopicImage = {
          name: record.name,
          topicId: record.topicId,
          internal: record.internal,
          partitions: [],
          configs: {},
        };
        this.byName.set(topic.name, topic);
        this.byId.set(topic.topicId, topic);
        return delta;
      }
      case "partition": {
        const topic = this.byId.get(record.topicId);
        check(topic, `partition ${record.partition} refers to unknown topic id ${record.topicId}`);
        check(
          record.partition <= topic.partitions.length,
          `partition ${record.partition} of ${topic.name} skips partition ${topic.partitions.length}`,
        );
        const partition: PartitionImage = {
          partition: record.partition,
          replicas: [...record.replicas],
          leader: record.leader,
          leaderEpoch: record.leaderEpoch,
        };
        const partitions = [...topic.partitions];
        const isNew = record.partition === partitions.length;
        partitions[record.partition] = partition;
        const updated = this.replace(topic, { partitions });
        if (isNew) {
          const entry = delta.addedPartitions.find((added) => added.topic.topicId === topic.topicId);
          if (entry) {
            entry.topic = updated;
            entry.partitions.push(partition);
          } else delta.addedPartitions.push({ topic: updated, partitions: [partition] });
        }
        return delta;
      }
      case "config": {
        if (record.resourceType === "broker") {
          let configs = this.brokerConfigs.get(record.resourceName);
          if (!configs) {
            configs = new Map();
            this.brokerConfigs.set(record.resourceName, configs);
          }
          if (record.value === null) configs.delete(record.key);
          else configs.set(record.key, record.value);
          delta.brokerConfigChanges.push({
            resourceName: record.resourceName,
            key: record.key,
            value: record.value,
          });
          return delta;
        }
        const topic = this.byName.get(record.resourceName);
        check(topic, `config ${record.key} refers to unknown topic ${record.resourceName}`);
        const configs: Partial<Record<TopicSettingKey, string>> = { ...topic.configs };
        const key = record.key as TopicSettingKey;
        if (record.value === null) delete configs[key];
        else configs[key] = record.value;
        const updated = this.replace(topic, { configs });
        const index = delta.topicConfigChanges.findIndex((changed) => changed.topicId === topic.topicId);
        if (index >= 0) delta.topicConfigChanges[index] = updated;
        else delta.topicConfigChanges.push(updated);
        for (const added of delta.addedPartitions)
          if (added.topic.topicId === topic.topicId) added.topic = updated;
        return delta;
      }
      case "remove-topic": {
        const topic = this.byId.get(record.topicId);
        check(topic, `removal of unknown topic id ${record.topicId}`);
        this.byName.delete(topic.name);
        this.byId.delete(topic.topicId);
        this.removedIds.add(topic.topicId);
        delta.removedTopics.push(topic);
        return delta;
      }
      case "producer-ids": {
        const next = BigInt(record.nextProducerId);
        check(next >= this.nextProducerId, `producer id block going backwards to ${next}`);
        this.nextProducerId = next;
        return delta;
      }
    }
  }

  /** Whether the metadata log deleted the topic with this id. */
  wasDeleted(topicId: string): boolean {
    return this.removedIds.has(topicId);
  }

  private replace(topic: TopicImage, changes: Partial<TopicImage>): TopicImage {
    const updated: TopicImage = { ...topic, ...changes };
    this.byName.set(updated.name, updated);
    this.byId.set(updated.topicId, updated);
    return updated;
  }
}
