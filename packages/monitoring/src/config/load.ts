import path from "node:path";
import {
  type IgnoredKafkaSetting,
  isKafkaSettingWithoutEffect,
  parseSetting,
  RaftkaConfig,
  type RawSetting,
  type ResolvedSetting,
} from "./config.js";
import { type ConfigReader, crossCheck } from "./cross-checks.js";
import { ConfigError, type ConfigProblem } from "./problems.js";
import { CONFIG_FILE_VARIABLE, type SettingKey, settingDefinition } from "./settings.js";
import { readConfigFile, readEnvironment, readFlags } from "./sources.js";

export interface LoadConfigOptions {
  /**
   * Command-line arguments after the command name: `--key=value`, `--key value`, `--config <file>`.
   * The CLI strips its own arguments first.
   */
  readonly argv?: readonly string[];
  /** Usually `process.env`; only `RAFTKA_*` variables are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Config file to read; overrides `--config` and `RAFTKA_CONFIG`. */
  readonly configFile?: string;
  /** Relative config file paths are resolved against this (default: the process's working directory). */
  readonly cwd?: string;
}

/**
 * Resolves the node's configuration: defaults < config file (.properties or JSON) < `RAFTKA_*`
 * environment variables < `--key=value` flags. Throws ConfigError listing every problem (unknown
 * keys with a suggestion, invalid values with their source and what is allowed, conflicting settings).
 */
export function loadConfig(options: LoadConfigOptions = {}): RaftkaConfig {
  const environment = options.env ?? {};
  const flags = readFlags(options.argv ?? []);
  const problems: ConfigProblem[] = [...flags.problems];
  const layers: RawSetting[][] = [];

  const configFile = options.configFile ?? flags.configFile ?? environment[CONFIG_FILE_VARIABLE];
  if (configFile !== undefined && configFile !== "") {
    const file = readConfigFile(path.resolve(options.cwd ?? process.cwd(), configFile));
    // Problems should name the file as the operator wrote it, not the resolved absolute path.
    const relabel = <T extends { source?: RawSetting["source"] }>(entry: T): T =>
      entry.source?.kind === "file" ? { ...entry, source: { ...entry.source, file: configFile } } : entry;
    layers.push(file.settings.map(relabel));
    problems.push(...file.problems.map(relabel));
  }
  const fromEnvironment = readEnvironment(environment);
  layers.push(fromEnvironment.settings);
  problems.push(...fromEnvironment.problems);
  layers.push(flags.settings);

  const resolved = new Map<SettingKey, ResolvedSetting>();
  const ignored: IgnoredKafkaSetting[] = [];
  for (const layer of layers) {
    for (const raw of layer) {
      if (isKafkaSettingWithoutEffect(raw.key)) {
        ignored.push({ key: raw.key, source: raw.source });
        continue;
      }
      const parsed = parseSetting(raw);
      if (parsed.ok) resolved.set(parsed.key, { value: parsed.value, source: raw.source });
      else problems.push(parsed.problem);
    }
  }
  // Rules across settings run on the valid values too, so one start reports everything to fix.
  const reader = {
    get: (key: SettingKey) => (resolved.has(key) ? resolved.get(key)!.value : settingDefinition(key).default),
    sourceOf: (key: SettingKey) => resolved.get(key)?.source ?? { kind: "default" as const },
  } as ConfigReader;
  problems.push(...crossCheck(reader));
  if (problems.length > 0) throw new ConfigError(problems);
  return new RaftkaConfig(resolved, ignored);
}
