import { parseSetting, type RaftkaConfig } from "./config.js";
import {
  brokerSettings,
  cleanupPolicies,
  compressionTypes,
  isSettingKey,
  type SettingKey,
  settingDefinition,
  timestampTypes,
} from "./settings.js";
import { unknownNameMessage } from "./suggest.js";
import {
  boolean,
  decimal,
  integer,
  type KafkaConfigType,
  LONG_MAX,
  list,
  oneOf,
  text,
  type ValueType,
} from "./value-types.js";

/** A broker setting a topic setting falls back to; `scale` converts its unit to the topic key's unit. */
interface BrokerSynonym {
  readonly key: SettingKey;
  readonly scale?: number;
}

export interface TopicSettingDefinition<T = unknown> {
  readonly key: string;
  readonly type: ValueType<T>;
  readonly doc: string;
  /** Broker settings that supply the default, highest precedence first (Kafka's synonyms). */
  readonly synonyms: readonly BrokerSynonym[];
  /** The value when every synonym is unset. */
  readonly fallback?: T;
}

const ms = (min: number) => integer({ min, width: "LONG", unit: "ms" });

/**
 * Kafka topic configs Raftka accepts, keeps and describes, but does not act on: provisioning tools send
 * them with every topic, and refusing them would fail the whole CreateTopics. The doc says why each has no
 * effect.
 */
const noEffect = (why: string) => `Accepted for compatibility with Kafka; no effect: ${why}`;
const noCompaction = noEffect("Raftka compacts only `__consumer_offsets` so far (see cleanup.policy).");

function topicSetting<T>(
  type: ValueType<T>,
  synonyms: readonly (SettingKey | BrokerSynonym)[],
  doc: string,
  fallback?: T,
): Omit<TopicSettingDefinition<T>, "key"> {
  return {
    type,
    doc,
    synonyms: synonyms.map((synonym) => (typeof synonym === "string" ? { key: synonym } : synonym)),
    ...(fallback === undefined ? {} : { fallback }),
  };
}

const table = {
  "cleanup.policy": topicSetting(
    list(oneOf(cleanupPolicies), { minItems: 1, unique: true }),
    ["log.cleanup.policy"],
    "`delete` removes old segments by retention.ms/retention.bytes; `compact` keeps the newest record per key, which Raftka does only for `__consumer_offsets` so far: other topics with `compact` keep every record (the node logs a warning), and with `compact,delete` retention still trims them. With `compact`, as in Kafka, a batch holding a record without a key is refused (INVALID_RECORD), each such record named in record_errors.",
  ),
  "compression.type": topicSetting(
    oneOf(compressionTypes),
    ["compression.type"],
    "Compression of stored batches; `producer` keeps the producer's codec.",
  ),
  "delete.retention.ms": topicSetting(
    ms(0),
    ["log.cleaner.delete.retention.ms"],
    "How long tombstones stay in a compacted topic.",
  ),
  "file.delete.delay.ms": topicSetting(
    ms(0),
    ["log.segment.delete.delay.ms"],
    "Accepted for Kafka compatibility, no effect yet: a deleted segment's files are removed as soon as no read holds them.",
  ),
  "flush.messages": topicSetting(
    integer({ min: 1, width: "LONG" }),
    ["log.flush.interval.messages"],
    "Force an fsync after this many messages.",
  ),
  "flush.ms": topicSetting(
    ms(0),
    ["log.flush.interval.ms"],
    "Force an fsync when the oldest unsynced message is this old.",
    LONG_MAX,
  ),
  "follower.replication.throttled.replicas": topicSetting(
    list(text()),
    [],
    noEffect("replication is not throttled."),
    [],
  ),
  "index.interval.bytes": topicSetting(
    integer({ min: 0, unit: "bytes" }),
    ["log.index.interval.bytes"],
    "Bytes between offset index entries.",
  ),
  "leader.replication.throttled.replicas": topicSetting(
    list(text()),
    [],
    noEffect("replication is not throttled."),
    [],
  ),
  "local.retention.bytes": topicSetting(
    integer({ min: -2, width: "LONG", unit: "bytes" }),
    [],
    noEffect("Kafka's tiered storage setting; Raftka keeps retention.bytes on its log directories."),
    -2,
  ),
  "local.retention.ms": topicSetting(
    ms(-2),
    [],
    noEffect("Kafka's tiered storage setting; Raftka keeps retention.ms on its log directories."),
    -2,
  ),
  "max.compaction.lag.ms": topicSetting(ms(1), [], noCompaction, LONG_MAX),
  "max.message.bytes": topicSetting(
    integer({ min: 0, unit: "bytes" }),
    ["message.max.bytes"],
    "Largest record batch accepted (after compression).",
  ),
  "message.downconversion.enable": topicSetting(
    boolean(),
    [],
    noEffect("Raftka serves Fetch from v4, whose record batches need no conversion."),
    true,
  ),
  "message.format.version": topicSetting(
    text(),
    [],
    noEffect("deprecated in Kafka 3.0; every batch is stored as record batch v2."),
    "3.0-IV1",
  ),
  "message.timestamp.difference.max.ms": topicSetting(
    ms(0),
    ["log.message.timestamp.difference.max.ms"],
    "With CreateTime, largest allowed gap, either way, between any record's timestamp and the broker's clock; a batch with one record outside it is refused (INVALID_TIMESTAMP), each such record named in record_errors.",
  ),
  "message.timestamp.type": topicSetting(
    oneOf(timestampTypes),
    ["log.message.timestamp.type"],
    "CreateTime keeps the producer's timestamps; LogAppendTime replaces them with the broker's clock.",
  ),
  "min.cleanable.dirty.ratio": topicSetting(decimal({ min: 0, max: 1 }), [], noCompaction, 0.5),
  "min.compaction.lag.ms": topicSetting(ms(0), [], noCompaction, 0),
  "min.insync.replicas": topicSetting(
    integer({ min: 1 }),
    ["min.insync.replicas"],
    "In-sync replicas needed for an acks=all write.",
  ),
  preallocate: topicSetting(
    boolean(),
    ["log.preallocate"],
    "Reserve disk blocks ahead of large appends to the active segment.",
  ),
  "remote.storage.enable": topicSetting(
    boolean(),
    [],
    noEffect("Kafka's tiered storage switch; Raftka has no tiered storage yet (see object.store.type)."),
    false,
  ),
  "retention.bytes": topicSetting(
    integer({ min: -1, width: "LONG", unit: "bytes" }),
    ["log.retention.bytes"],
    "Largest size of a partition before its oldest segments are deleted; -1 for no limit.",
  ),
  "retention.ms": topicSetting(
    ms(-1),
    [
      "log.retention.ms",
      { key: "log.retention.minutes", scale: 60_000 },
      { key: "log.retention.hours", scale: 3_600_000 },
    ],
    "How long records are kept: a segment goes once its newest record is older (the active one too, rolled first, once all have expired); -1 keeps them forever.",
  ),
  "segment.bytes": topicSetting(
    integer({ min: 14, unit: "bytes" }),
    ["log.segment.bytes"],
    "Size at which a segment is closed.",
  ),
  "segment.index.bytes": topicSetting(
    integer({ min: 4, unit: "bytes" }),
    ["log.index.size.max.bytes"],
    "Largest index file of a segment.",
  ),
  "segment.jitter.ms": topicSetting(
    ms(0),
    [],
    noEffect("segments roll at segment.ms without a random jitter."),
    0,
  ),
  "segment.ms": topicSetting(
    ms(1),
    ["log.roll.ms", { key: "log.roll.hours", scale: 3_600_000 }],
    "Age of a segment's first record at which the segment is closed even if not full.",
  ),
  "unclean.leader.election.enable": topicSetting(
    boolean(),
    [],
    noEffect("a Raft election never makes a replica without every committed record the leader."),
    false,
  ),
} as const;

type Table = typeof table;
export type TopicSettingKey = keyof Table & string;
export type TopicSettingValue<K extends TopicSettingKey> =
  Table[K] extends Omit<TopicSettingDefinition<infer T>, "key"> ? T : never;

export const topicSettings: ReadonlyMap<TopicSettingKey, TopicSettingDefinition> = new Map(
  (Object.entries(table) as [TopicSettingKey, Omit<TopicSettingDefinition, "key">][]).map(
    ([key, definition]) => [key, { key, ...definition }],
  ),
);
const topicKeys = [...topicSettings.keys()];

export function isTopicSettingKey(key: string): key is TopicSettingKey {
  return topicSettings.has(key as TopicSettingKey);
}

/** A topic's own settings (Kafka stores them as text), validated and normalised. */
export type TopicConfigOverrides = Readonly<Partial<Record<TopicSettingKey, string>>>;

export interface TopicConfigProblem {
  readonly key: string;
  readonly value: string | null;
  /** Kafka's error for CreateTopics/AlterConfigs: always INVALID_CONFIG; the message is the detail. */
  readonly errorCode: "INVALID_CONFIG";
  readonly message: string;
}

/**
 * Validates topic settings as CreateTopics/AlterConfigs send them. Returns the normalised overrides
 * (null values dropped, meaning "use the broker default") or every problem found.
 */
export function validateTopicConfig(
  entries: Readonly<Record<string, string | null>>,
): { ok: true; overrides: TopicConfigOverrides } | { ok: false; problems: TopicConfigProblem[] } {
  const overrides: Partial<Record<TopicSettingKey, string>> = {};
  const problems: TopicConfigProblem[] = [];
  for (const [key, value] of Object.entries(entries)) {
    if (!isTopicSettingKey(key)) {
      const message = unknownNameMessage(
        key,
        topicKeys,
        "topic config",
        "docs/configuration.md lists every topic config",
      );
      problems.push({ key, value, errorCode: "INVALID_CONFIG", message: `${key}: ${message}` });
      continue;
    }
    if (value === null) continue;
    const definition = topicSettings.get(key)!;
    const parsed = definition.type.schema.safeParse(value);
    if (!parsed.success) {
      const reason = parsed.error.issues[0]?.message ?? "invalid value";
      problems.push({
        key,
        value,
        errorCode: "INVALID_CONFIG",
        message: `${key}=${value}: ${reason}; allowed: ${definition.type.allowed}`,
      });
      continue;
    }
    overrides[key] = definition.type.format(parsed.data);
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, overrides };
}

/** Kafka's DescribeConfigs `ConfigSource` names. */
export type ConfigSourceName =
  | "DYNAMIC_TOPIC_CONFIG"
  | "DYNAMIC_BROKER_CONFIG"
  | "DYNAMIC_DEFAULT_BROKER_CONFIG"
  | "STATIC_BROKER_CONFIG"
  | "DEFAULT_CONFIG";
export const configSourceCode: Readonly<Record<ConfigSourceName, number>> = {
  DYNAMIC_TOPIC_CONFIG: 1,
  DYNAMIC_BROKER_CONFIG: 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG: 3,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
};

/**
 * Run-time broker settings by layer, as the metadata log keeps them: this node's own (AlterConfigs on
 * broker "<node.id>") over the cluster default (broker ""). Kafka reports the two as different sources.
 */
export interface DynamicBrokerLayers {
  readonly node: ReadonlyMap<string, string>;
  readonly clusterDefault: ReadonlyMap<string, string>;
}

export interface ConfigSynonym {
  readonly name: string;
  readonly value: string | null;
  readonly source: ConfigSourceName;
}

/** One entry of a DescribeConfigs answer, shaped like Kafka's. */
export interface ConfigDescription {
  readonly name: string;
  /** null for secrets and unset optional settings. */
  readonly value: string | null;
  readonly readOnly: boolean;
  readonly isDefault: boolean;
  readonly source: ConfigSourceName;
  readonly isSensitive: boolean;
  /** Where the value comes from, highest precedence first (DescribeConfigs with IncludeSynonyms). */
  readonly synonyms: readonly ConfigSynonym[];
  readonly configType: KafkaConfigType;
  readonly documentation: string;
}

/**
 * Every layer of one broker setting that has a value: run-time (this node's, then the cluster default's,
 * when `dynamic` tells them apart), static, default.
 */
function brokerLayers(config: RaftkaConfig, key: SettingKey, dynamic?: DynamicBrokerLayers): ConfigSynonym[] {
  const definition = settingDefinition(key);
  // Like Kafka, synonyms keep their own unit (log.retention.hours=168); only the entry value is converted.
  const show = (value: unknown): string | null =>
    value === null || definition.sensitive ? null : definition.type.format(value);
  const layers: ConfigSynonym[] = [];
  if (dynamic) {
    const own = dynamic.node.get(key);
    if (own !== undefined) layers.push(storedLayer(key, own, "DYNAMIC_BROKER_CONFIG"));
    const clusterDefault = dynamic.clusterDefault.get(key);
    if (clusterDefault !== undefined)
      layers.push(storedLayer(key, clusterDefault, "DYNAMIC_DEFAULT_BROKER_CONFIG"));
  } else {
    const applied = config.dynamicSetting(key);
    if (applied) layers.push({ name: key, value: show(applied.value), source: "DYNAMIC_BROKER_CONFIG" });
  }
  const fixed = config.staticSetting(key);
  if (fixed) layers.push({ name: key, value: show(fixed.value), source: "STATIC_BROKER_CONFIG" });
  if (definition.default !== null)
    layers.push({ name: key, value: show(definition.default), source: "DEFAULT_CONFIG" });
  return layers;
}

/** A run-time value as the metadata log stores it, shown the way the node would print it. */
function storedLayer(key: SettingKey, stored: string, source: ConfigSourceName): ConfigSynonym {
  const definition = settingDefinition(key);
  if (definition.sensitive) return { name: key, value: null, source };
  const parsed = parseSetting({ key, value: stored, source: { kind: "dynamic" } });
  const value = parsed.ok ? (parsed.value === null ? null : definition.type.format(parsed.value)) : stored;
  return { name: key, value, source };
}

/** The effective value of a topic setting: the topic's own, else its broker synonyms in order, else the fallback. */
export function topicSettingValue<K extends TopicSettingKey>(
  config: RaftkaConfig,
  overrides: TopicConfigOverrides,
  key: K,
): TopicSettingValue<K> {
  const definition = topicSettings.get(key)!;
  const own = overrides[key];
  if (own !== undefined) return definition.type.schema.parse(own) as TopicSettingValue<K>;
  for (const synonym of definition.synonyms) {
    const value = config.get(synonym.key);
    if (value === null) continue;
    if (synonym.scale !== undefined) {
      const number = value as number;
      return (number < 0 ? -1 : number * synonym.scale) as TopicSettingValue<K>;
    }
    return value as TopicSettingValue<K>;
  }
  if (definition.fallback === undefined) {
    throw new Error(`topic setting ${key} has no value and no fallback: this is a bug in @raftka/monitoring`);
  }
  return definition.fallback as TopicSettingValue<K>;
}

/** DescribeConfigs for a topic: every topic setting (or those named), with source and synonyms. */
export function describeTopicConfig(
  config: RaftkaConfig,
  overrides: TopicConfigOverrides,
  keys: readonly string[] = topicKeys,
  dynamic?: DynamicBrokerLayers,
): ConfigDescription[] {
  return keys.filter(isTopicSettingKey).map((key) => {
    const definition = topicSettings.get(key)!;
    const synonyms: ConfigSynonym[] = [];
    const own = overrides[key];
    if (own !== undefined) synonyms.push({ name: key, value: own, source: "DYNAMIC_TOPIC_CONFIG" });
    for (const synonym of definition.synonyms) synonyms.push(...brokerLayers(config, synonym.key, dynamic));
    const source = synonyms[0]?.source ?? "DEFAULT_CONFIG";
    return {
      name: key,
      value: definition.type.format(topicSettingValue(config, overrides, key)),
      readOnly: false,
      isDefault: source === "DEFAULT_CONFIG",
      source,
      isSensitive: false,
      synonyms,
      configType: definition.type.kafkaType,
      documentation: definition.doc,
    };
  });
}

/** DescribeConfigs for the broker: every broker setting (or those named); secrets are never shown. */
/**
 * Kafka's broker synonyms (DynamicBrokerConfig.brokerConfigSynonyms): settings of which the first set
 * one wins, so describing one lists the layers of all, highest precedence first.
 */
const brokerSynonymChains: Readonly<Partial<Record<SettingKey, readonly SettingKey[]>>> = {
  "log.retention.ms": ["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
  "log.retention.minutes": ["log.retention.minutes", "log.retention.hours"],
  "log.roll.ms": ["log.roll.ms", "log.roll.hours"],
};

export function describeBrokerConfig(
  config: RaftkaConfig,
  keys?: readonly string[],
  dynamic?: DynamicBrokerLayers,
): ConfigDescription[] {
  const wanted = keys ?? [...brokerSettings.keys()];
  return wanted.filter(isSettingKey).map((key) => {
    const definition = settingDefinition(key);
    const chain = brokerSynonymChains[key] ?? [key];
    const synonyms = chain.flatMap((synonym) => brokerLayers(config, synonym, dynamic));
    const source = synonyms[0]?.source ?? "DEFAULT_CONFIG";
    return {
      name: key,
      value: definition.sensitive ? null : config.format(key),
      readOnly: !definition.dynamic,
      isDefault: source === "DEFAULT_CONFIG",
      source,
      isSensitive: definition.sensitive,
      synonyms,
      configType: definition.type.kafkaType,
      documentation: definition.doc,
    };
  });
}

/**
 * DescribeConfigs for broker "" (the cluster default), as Kafka answers it: only the settings that have
 * a cluster-default value, each with the layers below it (no node's own override).
 */
export function describeClusterDefaultBrokerConfig(
  config: RaftkaConfig,
  clusterDefault: ReadonlyMap<string, string>,
  keys?: readonly string[],
): ConfigDescription[] {
  const wanted = (keys ?? [...clusterDefault.keys()]).filter(
    (key) => isSettingKey(key) && clusterDefault.has(key),
  ) as SettingKey[];
  const dynamic: DynamicBrokerLayers = { node: new Map(), clusterDefault };
  return wanted.map((key) => {
    const definition = settingDefinition(key);
    const synonyms = brokerLayers(config, key, dynamic);
    return {
      name: key,
      value: synonyms[0]!.value,
      readOnly: false,
      isDefault: false,
      source: "DYNAMIC_DEFAULT_BROKER_CONFIG",
      isSensitive: definition.sensitive,
      synonyms,
      configType: definition.type.kafkaType,
      documentation: definition.doc,
    };
  });
}
