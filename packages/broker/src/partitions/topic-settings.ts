import { type RaftkaConfig, type TopicConfigOverrides, topicSettingValue } from "@raftka/monitoring";

/** The topic settings the produce and retention paths read, resolved once per config change (not per request). */
export interface TopicSettings {
  readonly maxMessageBytes: number;
  /** `producer` keeps the producer's codec; anything else is the codec batches are stored with. */
  readonly compressionType: "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd";
  readonly timestampType: "CreateTime" | "LogAppendTime";
  readonly timestampDifferenceMaxMs: number;
  readonly cleanupPolicy: readonly ("delete" | "compact")[];
  readonly minInsyncReplicas: number;
}

export function resolveTopicSettings(config: RaftkaConfig, overrides: TopicConfigOverrides): TopicSettings {
  return {
    maxMessageBytes: topicSettingValue(config, overrides, "max.message.bytes"),
    compressionType: topicSettingValue(config, overrides, "compression.type"),
    timestampType: topicSettingValue(config, overrides, "message.timestamp.type"),
    timestampDifferenceMaxMs: topicSettingValue(config, overrides, "message.timestamp.difference.max.ms"),
    cleanupPolicy: topicSettingValue(config, overrides, "cleanup.policy"),
    minInsyncReplicas: topicSettingValue(config, overrides, "min.insync.replicas"),
  };
}
