import {
  type RaftkaConfig,
  type TopicConfigOverrides,
  type TopicSettingKey,
  topicSettingValue,
} from "@raftka/monitoring";
import { InvalidConfigError, type LogConfig, resolveLogConfig } from "@raftka/storage";

/** Topic settings storage applies itself, with the LogConfig field each one sets. */
const storageSettings: readonly (readonly [TopicSettingKey, keyof LogConfig])[] = [
  ["segment.bytes", "segmentBytes"],
  ["segment.ms", "segmentMs"],
  ["segment.index.bytes", "segmentIndexBytes"],
  ["index.interval.bytes", "indexIntervalBytes"],
  ["retention.ms", "retentionMs"],
  ["retention.bytes", "retentionBytes"],
  ["flush.messages", "flushMessages"],
  ["flush.ms", "flushMs"],
  ["preallocate", "preallocate"],
];

/** The storage config of a partition of a topic with these overrides, broker settings filling the rest. */
export function logConfigFor(config: RaftkaConfig, overrides: TopicConfigOverrides): Partial<LogConfig> {
  const result: Partial<Record<keyof LogConfig, number | boolean>> = {
    // The produce path has checked every batch's CRC already.
    verifyCrcOnAppend: false,
  };
  for (const [key, field] of storageSettings) {
    result[field] = topicSettingValue(config, overrides, key) as number | boolean;
  }
  return result as Partial<LogConfig>;
}

/**
 * Storage's own limits are narrower than Kafka's for a few settings (segment.bytes must hold a batch header
 * and stay below 2 GiB). Returns the problem as CreateTopics/AlterConfigs should report it, or undefined.
 */
export function logConfigProblem(config: RaftkaConfig, overrides: TopicConfigOverrides): string | undefined {
  try {
    resolveLogConfig(logConfigFor(config, overrides));
    return undefined;
  } catch (error) {
    if (error instanceof InvalidConfigError) {
      let message = error.message;
      for (const [key, field] of storageSettings) message = message.replace(`log config ${field}`, key);
      return message;
    }
    throw error;
  }
}
