import { InvalidConfigError } from "./errors.js";

/**
 * Per-log settings. Each field is a Kafka topic config (key in the comment) so the broker can apply
 * CreateTopics/AlterConfigs values directly; `parseTopicConfig` converts the string form.
 */
export interface LogConfig {
  /** `segment.bytes` (broker default `log.segment.bytes`): roll when the active segment would exceed it. */
  segmentBytes: number;
  /** `segment.ms` (`log.roll.ms`): roll when the active segment is older than this. */
  segmentMs: number;
  /** `segment.index.bytes` (`log.index.size.max.bytes`): roll when either index would exceed it. */
  segmentIndexBytes: number;
  /** `index.interval.bytes` (`log.index.interval.bytes`): bytes between offset index entries. */
  indexIntervalBytes: number;
  /** `retention.ms` (`log.retention.ms`): delete closed segments older than this; -1 keeps forever. */
  retentionMs: number;
  /** `retention.bytes` (`log.retention.bytes`): delete oldest closed segments above this size; -1: no limit. */
  retentionBytes: number;
  /** `flush.messages` (`log.flush.interval.messages`): fsync after this many unflushed records. */
  flushMessages: number;
  /** `flush.ms` (`log.flush.interval.ms`): fsync data that has been unflushed for this long. */
  flushMs: number;
  /**
   * Raftka's "always fsync before acknowledging" mode (what acks=all on a single replica needs):
   * `append()` resolves only once its batches are on disk, group-committed with every other log.
   */
  flushBeforeAck: boolean;
  /** Verify each appended batch's CRC32C (cheap, hardware-accelerated); off only if the caller already did. */
  verifyCrcOnAppend: boolean;
  /**
   * `preallocate` (`log.preallocate`): reserve disk blocks ahead of large appends to the active segment
   * (fallocate, keeping the file's size), so that appends skip the file system's delayed allocation.
   */
  preallocate: boolean;
}

const NEVER = Number.MAX_SAFE_INTEGER;

/** Kafka's defaults, except that fsync is left to the group-commit scheduler by default. */
export const DEFAULT_LOG_CONFIG: Readonly<LogConfig> = Object.freeze({
  segmentBytes: 1024 * 1024 * 1024,
  segmentMs: 7 * 24 * 60 * 60 * 1000,
  segmentIndexBytes: 10 * 1024 * 1024,
  indexIntervalBytes: 4096,
  retentionMs: 7 * 24 * 60 * 60 * 1000,
  retentionBytes: -1,
  flushMessages: NEVER,
  flushMs: NEVER,
  flushBeforeAck: false,
  verifyCrcOnAppend: true,
  preallocate: true,
});

const booleanFields = ["flushBeforeAck", "verifyCrcOnAppend", "preallocate"] as const;
type BooleanField = (typeof booleanFields)[number];
const isBooleanField = (field: keyof LogConfig): field is BooleanField =>
  (booleanFields as readonly string[]).includes(field);

const OFFSET_INDEX_ENTRY_SIZE = 8;
// Positions in the offset index are int32, so a segment can never be 2 GiB or larger.
const MAX_SEGMENT_BYTES = 2 ** 31 - 1;
// A v2 batch header is 61 bytes; Kafka's own minimum segment.bytes is 14 bytes, which we would not
// survive sensibly, so anything smaller than one header is refused.
const MIN_SEGMENT_BYTES = 61;

interface Bound {
  min: number;
  max: number;
  allowMinusOne?: boolean;
}

const numericBounds: Record<Exclude<keyof LogConfig, BooleanField>, Bound> = {
  segmentBytes: { min: MIN_SEGMENT_BYTES, max: MAX_SEGMENT_BYTES },
  segmentMs: { min: 1, max: NEVER },
  segmentIndexBytes: { min: 4 * OFFSET_INDEX_ENTRY_SIZE, max: MAX_SEGMENT_BYTES },
  indexIntervalBytes: { min: 0, max: MAX_SEGMENT_BYTES },
  retentionMs: { min: 0, max: NEVER, allowMinusOne: true },
  retentionBytes: { min: 0, max: NEVER, allowMinusOne: true },
  flushMessages: { min: 1, max: NEVER },
  flushMs: { min: 0, max: NEVER },
};

const topicConfigKeys: Record<string, keyof LogConfig> = {
  "segment.bytes": "segmentBytes",
  "segment.ms": "segmentMs",
  "segment.index.bytes": "segmentIndexBytes",
  "index.interval.bytes": "indexIntervalBytes",
  "retention.ms": "retentionMs",
  "retention.bytes": "retentionBytes",
  "flush.messages": "flushMessages",
  "flush.ms": "flushMs",
  "raftka.flush.before.ack": "flushBeforeAck",
  "raftka.verify.crc.on.append": "verifyCrcOnAppend",
  preallocate: "preallocate",
};

/** Kafka topic config keys this package understands (others belong to the broker, e.g. cleanup.policy). */
export const LOG_TOPIC_CONFIG_KEYS: readonly string[] = Object.keys(topicConfigKeys);

/** Merges `overrides` onto `base` and validates the result; throws InvalidConfigError naming the bad key. */
export function resolveLogConfig(
  overrides: Partial<LogConfig> = {},
  base: LogConfig = DEFAULT_LOG_CONFIG,
): LogConfig {
  const merged: LogConfig = { ...base };
  for (const [key, value] of Object.entries(overrides) as [keyof LogConfig, unknown][]) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_LOG_CONFIG)) {
      throw new InvalidConfigError(
        `unknown log config field '${key}'; known fields: ${Object.keys(DEFAULT_LOG_CONFIG).join(", ")}`,
      );
    }
    (merged as unknown as Record<string, unknown>)[key] = value;
  }
  validateLogConfig(merged);
  return merged;
}

export function validateLogConfig(config: LogConfig): void {
  for (const [key, bound] of Object.entries(numericBounds) as [keyof typeof numericBounds, Bound][]) {
    const value = config[key];
    if (typeof value !== "number" || !Number.isInteger(value)) {
      throw new InvalidConfigError(`log config ${key} must be an integer, got ${String(value)}`);
    }
    if (bound.allowMinusOne && value === -1) continue;
    if (value < bound.min || value > bound.max) {
      const range = `${bound.allowMinusOne ? "-1 or " : ""}${bound.min}..${bound.max}`;
      throw new InvalidConfigError(`log config ${key} is ${value}; set it within ${range}`);
    }
  }
  for (const key of booleanFields) {
    if (typeof config[key] !== "boolean") {
      throw new InvalidConfigError(`log config ${key} must be true or false, got ${String(config[key])}`);
    }
  }
}

/**
 * Converts Kafka topic config strings (as sent in CreateTopics/AlterConfigs) into LogConfig fields.
 * Keys this package does not own are returned in `ignored` so the broker can handle or reject them.
 */
export function parseTopicConfig(entries: Record<string, string | null | undefined>): {
  config: Partial<LogConfig>;
  ignored: string[];
} {
  const config: Partial<LogConfig> = {};
  const ignored: string[] = [];
  for (const [name, raw] of Object.entries(entries)) {
    const field = topicConfigKeys[name];
    if (field === undefined) {
      ignored.push(name);
      continue;
    }
    if (raw === null || raw === undefined) continue;
    const text = raw.trim();
    if (isBooleanField(field)) {
      if (text !== "true" && text !== "false") {
        throw new InvalidConfigError(`topic config ${name}='${raw}' must be 'true' or 'false'`);
      }
      config[field] = text === "true";
      continue;
    }
    if (!/^-?\d+$/.test(text)) {
      throw new InvalidConfigError(`topic config ${name}='${raw}' is not an integer; give a whole number`);
    }
    // Kafka's "never" values are Long.MAX_VALUE; anything beyond 2^53 means the same to us.
    const value = Math.min(Number(text), NEVER);
    config[field] = value;
  }
  resolveLogConfig(config);
  return { config, ignored };
}

export function maxIndexEntries(config: LogConfig, entrySize: number): number {
  return Math.floor(config.segmentIndexBytes / entrySize);
}
