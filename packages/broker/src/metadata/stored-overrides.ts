import {
  type DynamicBrokerLayers,
  describeSource,
  isSettingKey,
  type RaftkaConfig,
  type SettingKey,
  settingDefinition,
} from "@raftka/monitoring";

/** A run-time setting from the metadata log that a start applies, described for the start-up log. */
export interface StoredOverride {
  /** warn where it replaces what the config file, environment or flags say; info over a default. */
  readonly level: "warn" | "info";
  readonly key: string;
  readonly message: string;
}

/**
 * Run-time broker settings (AlterConfigs, the admin API's log levels) are kept in the metadata log and
 * win over the config file, environment and flags at every start, as in Kafka. An operator who edits the
 * file and restarts would otherwise see the edit ignored with no word why: each one applied is named,
 * with what it replaces and how to remove it.
 */
export function describeStoredOverrides(
  config: RaftkaConfig,
  stored: DynamicBrokerLayers,
  nodeId: number,
): StoredOverride[] {
  const overrides: StoredOverride[] = [];
  for (const key of new Set([...stored.node.keys(), ...stored.clusterDefault.keys()])) {
    // A stored value the node refused is reported where it is applied; it overrides nothing.
    if (!isSettingKey(key) || config.dynamicSetting(key) === undefined) continue;
    const definition = settingDefinition(key);
    const shown = (value: unknown) =>
      definition.sensitive ? "[redacted]" : value === null ? "unset" : definition.type.format(value);
    const own = stored.node.has(key);
    const where = own ? `for node ${nodeId}` : "as the cluster default";
    const staticSetting = config.staticSetting(key);
    const replaced =
      staticSetting === undefined
        ? definition.default === null
          ? "its default (unset)"
          : `the default ${shown(definition.default)}`
        : `${shown(staticSetting.value)} from ${describeSource(staticSetting.source)}`;
    overrides.push({
      level: staticSetting === undefined ? "info" : "warn",
      key,
      message:
        `run-time setting ${key}=${shown(config.get(key))}, stored in the metadata log ${where}, overrides ${replaced}; ` +
        `to go back to it, remove the stored value: ${removalCommand(key, own, nodeId)}`,
    });
  }
  return overrides;
}

function removalCommand(key: SettingKey, own: boolean, nodeId: number): string {
  // The root level has no default to return to through the admin API; a component's has.
  if (own && key.startsWith("log.level.")) {
    return `\`raftka cluster log-level ${key.slice("log.level.".length)} default\``;
  }
  const entity = own ? `--entity-name ${nodeId}` : "--entity-default";
  return `\`kafka-configs.sh --bootstrap-server <host:port> --alter --entity-type brokers ${entity} --delete-config ${key}\``;
}
