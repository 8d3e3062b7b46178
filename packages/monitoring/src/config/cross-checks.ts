import type { ConfigProblem, SettingSource } from "./problems.js";
import type { SettingKey, SettingValue } from "./settings.js";

/** What a rule needs: each setting's value and where it came from. */
export interface ConfigReader {
  get<K extends SettingKey>(key: K): SettingValue<K>;
  sourceOf(key: SettingKey): SettingSource;
}

/** `becauseOf` names the setting that made `key` necessary, so the problem points at the line that did. */
function problem(
  config: ConfigReader,
  key: SettingKey,
  value: string | undefined,
  message: string,
  becauseOf: SettingKey = key,
): ConfigProblem {
  return { key, ...(value === undefined ? {} : { value }), source: config.sourceOf(becauseOf), message };
}

/** Blame the key the operator wrote rather than the default it clashes with. */
function blame(config: ConfigReader, first: SettingKey, second: SettingKey): SettingKey {
  return config.sourceOf(first).kind === "default" ? second : first;
}

/** Rules that involve more than one setting; each returns the problems it finds. */
const rules: readonly ((config: ConfigReader) => ConfigProblem[])[] = [
  (config) => {
    const heartbeat = config.get("raft.heartbeat.interval.ms");
    const election = config.get("raft.election.timeout.ms");
    if (heartbeat < election) return [];
    const key = blame(config, "raft.heartbeat.interval.ms", "raft.election.timeout.ms");
    return [
      problem(
        config,
        key,
        String(config.get(key)),
        `raft.heartbeat.interval.ms (${heartbeat}) must be below raft.election.timeout.ms (${election}), or followers start elections against a healthy leader; a heartbeat of a tenth of the election timeout is typical`,
      ),
    ];
  },
  (config) => {
    const tick = config.get("raft.tick.ms");
    const heartbeat = config.get("raft.heartbeat.interval.ms");
    if (tick <= heartbeat) return [];
    const key = blame(config, "raft.tick.ms", "raft.heartbeat.interval.ms");
    return [
      problem(
        config,
        key,
        String(config.get(key)),
        `raft.tick.ms (${tick}) must not exceed raft.heartbeat.interval.ms (${heartbeat}): the timer could not fire heartbeats on time; lower raft.tick.ms`,
      ),
    ];
  },
  (config) => {
    const min = config.get("group.min.session.timeout.ms");
    const max = config.get("group.max.session.timeout.ms");
    if (min <= max) return [];
    const key = blame(config, "group.min.session.timeout.ms", "group.max.session.timeout.ms");
    return [
      problem(
        config,
        key,
        String(config.get(key)),
        `group.min.session.timeout.ms (${min}) is above group.max.session.timeout.ms (${max}), so no consumer could join; make the minimum smaller than the maximum`,
      ),
    ];
  },
  (config) => {
    if (config.get("cluster.seeds").length === 0 || config.get("cluster.secret") !== null) return [];
    return [
      problem(
        config,
        "cluster.secret",
        undefined,
        "required when cluster.seeds is set, so that only your nodes can join; set the same secret of at least 16 characters on every node (RAFTKA_CLUSTER_SECRET keeps it out of files)",
        "cluster.seeds",
      ),
    ];
  },
  (config) => {
    if (config.get("object.store.type") !== "s3" || config.get("s3.bucket") !== null) return [];
    return [
      problem(
        config,
        "s3.bucket",
        undefined,
        "required when object.store.type=s3; set the bucket name",
        "object.store.type",
      ),
    ];
  },
  (config) => {
    const hasAccessKey = config.get("s3.access.key") !== null;
    const hasSecretKey = config.get("s3.secret.key") !== null;
    if (hasAccessKey === hasSecretKey) return [];
    const missing: SettingKey = hasAccessKey ? "s3.secret.key" : "s3.access.key";
    const present: SettingKey = hasAccessKey ? "s3.access.key" : "s3.secret.key";
    return [
      problem(
        config,
        missing,
        undefined,
        `set together with ${present}, or remove both to use the AWS SDK's default credential chain`,
        present,
      ),
    ];
  },
  (config) => {
    const names = new Set<string>();
    for (const listener of config.get("listeners")) {
      if (names.has(listener.name)) {
        return [
          problem(
            config,
            "listeners",
            undefined,
            `listener name ${listener.name} is used twice; give each listener its own NAME://`,
          ),
        ];
      }
      names.add(listener.name);
    }
    return [];
  },
  (config) => {
    const advertised = config.get("advertised.listeners");
    if (advertised === null) return [];
    const names = new Set(config.get("listeners").map((listener) => listener.name));
    return advertised
      .filter((listener) => !names.has(listener.name))
      .map((listener) =>
        problem(
          config,
          "advertised.listeners",
          undefined,
          `advertises listener ${listener.name}, which listeners does not define (defined: ${[...names].join(", ")}); use the same names in both`,
        ),
      );
  },
];

export function crossCheck(config: ConfigReader): ConfigProblem[] {
  return rules.flatMap((rule) => rule(config));
}
