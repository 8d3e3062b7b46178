import { crossCheck } from "./cross-checks.js";
import { ConfigError, type ConfigProblem, type SettingSource } from "./problems.js";
import {
  brokerSettings,
  isSettingKey,
  type SettingDefinition,
  type SettingKey,
  type SettingValue,
  settingDefinition,
} from "./settings.js";
import { unknownKeyMessage } from "./suggest.js";

/** A raw value as written in a file, variable, flag or request, with where it came from. */
export interface RawSetting {
  readonly key: string;
  /** Text (file, environment, flag, Kafka request) or a JSON value (JSON file). */
  readonly value: unknown;
  readonly source: SettingSource;
}

export interface ResolvedSetting {
  readonly value: unknown;
  readonly source: SettingSource;
}

const knownKeys = [...brokerSettings.keys()];

function rawForMessage(definition: SettingDefinition | undefined, raw: unknown): string | undefined {
  if (definition?.sensitive) return undefined;
  if (typeof raw === "string") return raw;
  return JSON.stringify(raw);
}

/**
 * Settings of Kafka's stock server.properties that mean nothing to Raftka (its threads, socket buffers,
 * KRaft roles and internal topics' replication are its own): accepted, with a warning at start naming
 * them, so that a Kafka configuration file starts a node instead of failing on them.
 */
export const KAFKA_SETTINGS_WITHOUT_EFFECT: ReadonlySet<string> = new Set([
  "process.roles",
  "controller.quorum.voters",
  "controller.quorum.bootstrap.servers",
  "controller.listener.names",
  "inter.broker.listener.name",
  "listener.security.protocol.map",
  "num.network.threads",
  "num.io.threads",
  "num.recovery.threads.per.data.dir",
  "num.replica.fetchers",
  "background.threads",
  "queued.max.requests",
  "socket.send.buffer.bytes",
  "socket.receive.buffer.bytes",
  "offsets.topic.replication.factor",
  "transaction.state.log.replication.factor",
  "transaction.state.log.min.isr",
  "log.cleaner.enable",
]);

/**
 * A ZooKeeper-mode server.properties names its ensemble (`zookeeper.connect`, `zookeeper.session.timeout.ms`,
 * `zookeeper.ssl.*`, ...): Raftka keeps metadata in its own log and needs no ZooKeeper, so every such key
 * is set aside like the keys above rather than failing the start.
 */
const KAFKA_ZOOKEEPER_PREFIX = "zookeeper.";

/** Whether a key is a Kafka setting that Raftka accepts and ignores, with a warning at start. */
export function isKafkaSettingWithoutEffect(key: string): boolean {
  return KAFKA_SETTINGS_WITHOUT_EFFECT.has(key) || key.startsWith(KAFKA_ZOOKEEPER_PREFIX);
}

export interface IgnoredKafkaSetting {
  readonly key: string;
  readonly source: RawSetting["source"];
}

/** Parses one raw value against its setting; a blank value means "unset" for optional settings. */
export function parseSetting(
  raw: RawSetting,
): { ok: true; key: SettingKey; value: unknown } | { ok: false; problem: ConfigProblem } {
  if (!isSettingKey(raw.key)) {
    return {
      ok: false,
      problem: { key: raw.key, source: raw.source, message: unknownKeyMessage(raw.key, knownKeys) },
    };
  }
  const definition = settingDefinition(raw.key);
  const blank = raw.value === null || (typeof raw.value === "string" && raw.value.trim() === "");
  // An empty list is a value ("cluster.seeds=" means no seeds); an empty scalar is only "unset".
  if (blank && definition.type.kafkaType !== "LIST") {
    if (definition.nullable) return { ok: true, key: raw.key, value: null };
    return {
      ok: false,
      problem: {
        key: raw.key,
        source: raw.source,
        message: `empty value; write a value (${definition.type.allowed}) or remove it to use the default ${definition.type.format(definition.default)}`,
      },
    };
  }
  const parsed = definition.type.schema.safeParse(raw.value ?? "");
  if (parsed.success) return { ok: true, key: raw.key, value: parsed.data };
  const reason = definition.sensitive
    ? "the value is not valid"
    : (parsed.error.issues[0]?.message ?? "invalid value");
  const value = rawForMessage(definition, raw.value);
  return {
    ok: false,
    problem: {
      key: raw.key,
      ...(value === undefined ? {} : { value }),
      source: raw.source,
      message: `${reason}; allowed: ${definition.type.allowed}`,
    },
  };
}

export type ConfigChangeListener = (changedKeys: readonly SettingKey[]) => void;

/**
 * The node's settings: static values (defaults < file < environment < flags, fixed at start) plus
 * run-time overrides of dynamic settings. Always valid: every change is checked before it applies.
 */
export class RaftkaConfig {
  private readonly staticValues: ReadonlyMap<SettingKey, ResolvedSetting>;
  private dynamicValues = new Map<SettingKey, unknown>();
  private readonly listeners = new Set<ConfigChangeListener>();

  /** Validates resolved static values; throws ConfigError listing every problem. */
  constructor(
    staticValues: ReadonlyMap<SettingKey, ResolvedSetting> = new Map(),
    /** Kafka settings in the config file or flags that Raftka has no use for (the node warns at start). */
    readonly ignoredKafkaSettings: readonly IgnoredKafkaSetting[] = [],
  ) {
    this.staticValues = staticValues;
    const problems = crossCheck(this);
    if (problems.length > 0) throw new ConfigError(problems);
  }

  get<K extends SettingKey>(key: K): SettingValue<K> {
    if (this.dynamicValues.has(key)) return this.dynamicValues.get(key) as SettingValue<K>;
    const resolved = this.staticValues.get(key);
    if (resolved) return resolved.value as SettingValue<K>;
    return settingDefinition(key).default as SettingValue<K>;
  }

  sourceOf(key: SettingKey): SettingSource {
    if (this.dynamicValues.has(key)) return { kind: "dynamic" };
    return this.staticValues.get(key)?.source ?? { kind: "default" };
  }

  /** The value set at start (file, environment, flag), ignoring run-time overrides; undefined if none. */
  staticSetting(key: SettingKey): ResolvedSetting | undefined {
    return this.staticValues.get(key);
  }

  /** The run-time override of a dynamic setting, if any. */
  dynamicSetting(key: SettingKey): { value: unknown } | undefined {
    return this.dynamicValues.has(key) ? { value: this.dynamicValues.get(key) } : undefined;
  }

  /** The value as Kafka prints it ("1073741824", "PLAINTEXT://0.0.0.0:9092"); null for unset optional settings. */
  format(key: SettingKey): string | null {
    const value = this.get(key);
    return value === null ? null : settingDefinition(key).type.format(value);
  }

  /**
   * Changes dynamic settings at run time, all or nothing. A null value removes the run-time override,
   * returning the setting to its static value. Returns the problems; an empty list means applied
   * (or, with `validateOnly`, that it would apply).
   */
  update(
    changes: Readonly<Record<string, string | null>>,
    options: { validateOnly?: boolean } = {},
  ): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const next = new Map(this.dynamicValues);
    for (const [key, value] of Object.entries(changes)) {
      const source: SettingSource = { kind: "dynamic" };
      if (value === null) {
        if (isSettingKey(key)) next.delete(key);
        else problems.push({ key, source, message: unknownKeyMessage(key, knownKeys) });
        continue;
      }
      const parsed = parseSetting({ key, value, source });
      if (!parsed.ok) {
        problems.push(parsed.problem);
        continue;
      }
      if (!settingDefinition(parsed.key).dynamic) {
        problems.push({
          key,
          source,
          message:
            "cannot change while the node runs; set it in the config file, environment or flags and restart the node",
        });
        continue;
      }
      next.set(parsed.key, parsed.value);
    }
    if (problems.length > 0) return problems;

    const previous = this.dynamicValues;
    this.dynamicValues = next;
    const crossProblems = crossCheck(this);
    if (crossProblems.length > 0 || options.validateOnly) {
      this.dynamicValues = previous;
      return crossProblems;
    }
    const changed = [...brokerSettings.keys()].filter((key) => previous.get(key) !== next.get(key));
    if (changed.length > 0) for (const listener of this.listeners) listener(changed);
    return [];
  }

  /** Calls `listener` after every applied update with the keys whose value changed. Returns an unsubscribe function. */
  onChange(listener: ConfigChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every setting as text, secrets replaced by "[redacted]": safe to log at start. */
  toLoggable(): Record<string, string | null> {
    const result: Record<string, string | null> = {};
    for (const [key, definition] of brokerSettings) {
      const formatted = this.format(key);
      result[key] = definition.sensitive && formatted !== null ? "[redacted]" : formatted;
    }
    return result;
  }
}
