import {
  type ConfigDescription,
  effectiveLogLevel,
  type LogComponent,
  type LogLevel,
  logComponents,
  logLevels,
  type RaftkaConfig,
} from "@raftka/monitoring";
import { ErrorCode } from "@raftka/protocol";
import { AlterConfigOperation } from "../../metadata/config-operations.js";
import type { OperationError } from "../../metadata/topic-operations.js";

/** The broker's loggers as Kafka's BROKER_LOGGER resource: "root" and one per component. */
export const ROOT_LOGGER = "root";
const loggerNames = [ROOT_LOGGER, ...logComponents];

const settingFor = (logger: string) => (logger === ROOT_LOGGER ? "log.level" : `log.level.${logger}`);

export function describeLoggers(config: RaftkaConfig, keys?: readonly string[]): ConfigDescription[] {
  return loggerNames
    .filter((logger) => keys === undefined || keys.includes(logger))
    .map((logger) => {
      const level =
        logger === ROOT_LOGGER ? config.get("log.level") : effectiveLogLevel(config, logger as LogComponent);
      const overridden = config.sourceOf(settingFor(logger) as "log.level").kind !== "default";
      return {
        name: logger,
        value: level,
        readOnly: false,
        isDefault: !overridden,
        source: overridden ? "DYNAMIC_BROKER_CONFIG" : "DEFAULT_CONFIG",
        isSensitive: false,
        synonyms: [],
        configType: "STRING",
        documentation: `Log level of ${logger === ROOT_LOGGER ? "every component without its own level" : `the ${logger} component`}.`,
      };
    });
}

/**
 * IncrementalAlterConfigs on BROKER_LOGGER: SET changes a logger's level at once, DELETE returns it to the
 * root level. Like Kafka, logger levels are not persisted: a restart goes back to the configured levels.
 */
export function alterLoggers(
  config: RaftkaConfig,
  entries: readonly { name: string; operation: number; value: string | null }[],
  validateOnly: boolean,
): OperationError | undefined {
  const changes: Record<string, string | null> = {};
  for (const entry of entries) {
    if (!loggerNames.includes(entry.name as LogComponent)) {
      return {
        code: ErrorCode.INVALID_CONFIG,
        message: `unknown logger ${entry.name}; loggers are ${loggerNames.join(", ")}`,
      };
    }
    if (entry.operation === AlterConfigOperation.SET) {
      if (!logLevels.includes(entry.value as LogLevel)) {
        return {
          code: ErrorCode.INVALID_CONFIG,
          message: `log level ${entry.value} for ${entry.name} is unknown; use one of ${logLevels.join(", ")}`,
        };
      }
      changes[settingFor(entry.name)] = entry.value;
    } else if (entry.operation === AlterConfigOperation.DELETE && entry.name !== ROOT_LOGGER) {
      changes[settingFor(entry.name)] = null;
    } else {
      return {
        code: ErrorCode.INVALID_REQUEST,
        message: `operation ${entry.operation} on logger ${entry.name} is not supported; use SET, or DELETE on a component logger`,
      };
    }
  }
  const problems = config.update(changes, { validateOnly });
  if (problems.length === 0) return undefined;
  return { code: ErrorCode.INVALID_CONFIG, message: problems.map((problem) => problem.message).join("; ") };
}
