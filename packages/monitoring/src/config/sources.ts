import { readFileSync } from "node:fs";
import { parseLines } from "dot-properties";
import type { RawSetting } from "./config.js";
import type { ConfigProblem } from "./problems.js";
import {
  brokerSettings,
  CLIENT_ENVIRONMENT_VARIABLES,
  CONFIG_FILE_VARIABLE,
  environmentVariableFor,
  isSettingKey,
  PROCESS_ENVIRONMENT_VARIABLES,
  settingDefinition,
  settingKeyForEnvironmentVariable,
} from "./settings.js";
import { unknownNameMessage } from "./suggest.js";

export interface SourceResult {
  readonly settings: RawSetting[];
  readonly problems: ConfigProblem[];
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let index = 0; index < offset && index < text.length; index++)
    if (text.charCodeAt(index) === 10) line++;
  return line;
}

/** Kafka `.properties` (Java properties: `key=value`, `key: value` or `key value`, `#`/`!` comments, `\` continuations). */
export function readPropertiesText(text: string, file: string): SourceResult {
  const settings: RawSetting[] = [];
  const problems: ConfigProblem[] = [];
  const firstLine = new Map<string, number>();
  for (const node of parseLines(text, true)) {
    if (node.type !== "PAIR") continue;
    const pair = node as unknown as { key: string; value: string; range: [number, number, number, number] };
    const line = lineAt(text, pair.range[0]);
    const earlier = firstLine.get(pair.key);
    if (earlier !== undefined) {
      problems.push({
        key: pair.key,
        source: { kind: "file", file, line },
        message: `set twice (also on line ${earlier}); keep one of the two lines`,
      });
      continue;
    }
    firstLine.set(pair.key, line);
    settings.push({ key: pair.key, value: pair.value, source: { kind: "file", file, line } });
  }
  return { settings, problems };
}

/** A JSON object of flat Kafka keys: `{"log.segment.bytes": 1073741824, "log.dirs": ["/data"]}`. */
export function readJsonText(text: string, file: string): SourceResult {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    return {
      settings: [],
      problems: [
        {
          key: "(file)",
          source: { kind: "file", file },
          message: `not valid JSON (${(error as Error).message}); fix the syntax, or use .properties format`,
        },
      ],
    };
  }
  if (typeof document !== "object" || document === null || Array.isArray(document)) {
    return {
      settings: [],
      problems: [
        {
          key: "(file)",
          source: { kind: "file", file },
          message: 'a JSON config file must be one object of settings, like {"log.dirs": "/var/lib/raftka"}',
        },
      ],
    };
  }
  const settings: RawSetting[] = [];
  const problems: ConfigProblem[] = [];
  for (const [key, value] of Object.entries(document)) {
    const keyOffset = text.indexOf(JSON.stringify(key));
    const source = {
      kind: "file",
      file,
      ...(keyOffset >= 0 ? { line: lineAt(text, keyOffset) } : {}),
    } as const;
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      problems.push({
        key,
        source,
        message: `nested objects are not read; write each setting as one flat key, like "${key}.<name>": value`,
      });
      continue;
    }
    settings.push({ key, value, source });
  }
  return { settings, problems };
}

export function readConfigFile(file: string): SourceResult {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT" ? "does not exist" : code === "EACCES" ? "is not readable" : (error as Error).message;
    return {
      settings: [],
      problems: [
        {
          key: "(file)",
          source: { kind: "file", file },
          message: `config file ${reason}; fix the path given by --config or ${CONFIG_FILE_VARIABLE}`,
        },
      ],
    };
  }
  const looksLikeJson = file.endsWith(".json") || text.trimStart().startsWith("{");
  return looksLikeJson ? readJsonText(text, file) : readPropertiesText(text, file);
}

/**
 * `RAFTKA_LOG_SEGMENT_BYTES=...` → `log.segment.bytes`. The CLI's own variables are skipped; any other
 * `RAFTKA_*` variable is a problem.
 */
export function readEnvironment(environment: Readonly<Record<string, string | undefined>>): SourceResult {
  const settings: RawSetting[] = [];
  const problems: ConfigProblem[] = [];
  const knownVariables = [...brokerSettings.keys()].map(environmentVariableFor);
  for (const [variable, value] of Object.entries(environment)) {
    if (!variable.startsWith("RAFTKA_") || variable === CONFIG_FILE_VARIABLE || value === undefined) continue;
    if (CLIENT_ENVIRONMENT_VARIABLES.includes(variable)) continue;
    if (PROCESS_ENVIRONMENT_VARIABLES.includes(variable)) {
      // Read as the process loads, not a setting; but a typo (=flase) must not pass as "the native build".
      if (value !== "true" && value !== "false") {
        problems.push({
          key: variable,
          value,
          source: { kind: "env", variable },
          message:
            "must be true or false (false computes CRC-32C on @node-rs/crc32 instead of the native build, to compare the two); fix the value, or unset the variable to use the native build",
        });
      }
      continue;
    }
    const key = settingKeyForEnvironmentVariable(variable);
    if (key === undefined) {
      problems.push({
        key: variable,
        source: { kind: "env", variable },
        message: unknownNameMessage(
          variable,
          knownVariables,
          "RAFTKA_ environment variable",
          "each setting key maps to RAFTKA_<key in upper case, . as _> (docs/configuration.md); unset the variable if it is not meant for Raftka",
        ),
      });
      continue;
    }
    settings.push({ key, value, source: { kind: "env", variable } });
  }
  return { settings, problems };
}

/** What the command line asked for: settings as `--key=value` / `--key value`, and `--config <file>`. */
export interface FlagResult extends SourceResult {
  readonly configFile?: string;
}

export function readFlags(argv: readonly string[]): FlagResult {
  const settings: RawSetting[] = [];
  const problems: ConfigProblem[] = [];
  let configFile: string | undefined;
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!;
    if (!argument.startsWith("--") || argument.length === 2) {
      problems.push({
        key: argument,
        source: { kind: "flag", flag: argument },
        message: "unexpected argument; settings are given as --key=value, e.g. --log.dirs=/var/lib/raftka",
      });
      continue;
    }
    const equals = argument.indexOf("=");
    const key = equals >= 0 ? argument.slice(2, equals) : argument.slice(2);
    let value: string | undefined = equals >= 0 ? argument.slice(equals + 1) : undefined;
    if (value === undefined) {
      const next = argv[index + 1];
      if (next !== undefined && !next.startsWith("--")) {
        value = next;
        index++;
      }
    }
    const flag = `--${key}`;
    if (key === "config") {
      if (value === undefined || value === "") {
        problems.push({
          key: flag,
          source: { kind: "flag", flag },
          message: "needs a file: --config=server.properties",
        });
      } else if (configFile !== undefined) {
        // One file is read (docs/configuration.md); keeping the last would silently drop the first's settings.
        problems.push({
          key: flag,
          source: { kind: "flag", flag },
          message: `given twice (${configFile}, then ${value}); only one config file is read: merge them into one file, or move one file's settings to --key=value flags`,
        });
      } else {
        configFile = value;
      }
      continue;
    }
    if (value === undefined) {
      // A bare boolean flag (--auto.create.topics.enable) means true, as on most command lines.
      if (isSettingKey(key) && settingDefinition(key).type.kafkaType === "BOOLEAN") value = "true";
      else if (isSettingKey(key)) {
        problems.push({ key, source: { kind: "flag", flag }, message: `needs a value: ${flag}=<value>` });
        continue;
      } else value = "";
    }
    settings.push({ key, value, source: { kind: "flag", flag } });
  }
  return { settings, problems, ...(configFile === undefined ? {} : { configFile }) };
}
