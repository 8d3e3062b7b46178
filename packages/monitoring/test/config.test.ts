import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  ConfigError,
  type ConfigProblem,
  describeBrokerConfig,
  describeTopicConfig,
  effectiveAdvertisedListeners,
  effectiveLogRetentionMs,
  effectiveLogRollMs,
  effectiveObjectStoreLocalDir,
  formatProblem,
  type LoadConfigOptions,
  loadConfig,
  topicSettingValue,
  validateTopicConfig,
} from "../src/index.js";

const directory = mkdtempSync(path.join(tmpdir(), "raftka-config-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const fullPath = path.join(directory, name);
  writeFileSync(fullPath, content);
  return fullPath;
}

function problemsOf(options: LoadConfigOptions): readonly ConfigProblem[] {
  try {
    loadConfig(options);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("expected the configuration to be refused");
}

describe("loading", () => {
  it("uses the documented defaults when nothing is set", () => {
    const config = loadConfig();
    expect(config.get("listeners")).toEqual([{ name: "PLAINTEXT", host: "0.0.0.0", port: 9092 }]);
    expect(config.get("admin.listener")).toEqual({ host: "", port: 9644 });
    expect(config.get("log.dirs")).toEqual(["./data"]);
    expect(config.get("log.segment.bytes")).toBe(1_073_741_824);
    expect(config.get("message.max.bytes")).toBe(1_048_588);
    expect(config.get("auto.create.topics.enable")).toBe(true);
    expect(config.get("s3.endpoint")).toBeNull();
    expect(config.sourceOf("num.partitions")).toEqual({ kind: "default" });
    expect(effectiveLogRetentionMs(config)).toBe(168 * 3_600_000);
    expect(effectiveLogRollMs(config)).toBe(168 * 3_600_000);
  });

  it("layers defaults < file < environment < flags, and remembers where each value came from", () => {
    const properties = file(
      "precedence.properties",
      [
        "# a Kafka-style file",
        "num.partitions=2",
        "default.replication.factor: 3",
        "log.segment.bytes 1000",
        "log.dirs=/var/lib/a,\\",
        "    /var/lib/b",
        "",
      ].join("\n"),
    );
    const config = loadConfig({
      configFile: properties,
      env: { RAFTKA_DEFAULT_REPLICATION_FACTOR: "5", RAFTKA_LOG_SEGMENT_BYTES: "2000", PATH: "/usr/bin" },
      argv: ["--log.segment.bytes=3000", "--auto.create.topics.enable", "--log.retention.minutes", "5"],
    });
    expect(config.get("num.partitions")).toBe(2);
    expect(config.sourceOf("num.partitions")).toEqual({ kind: "file", file: properties, line: 2 });
    expect(config.get("default.replication.factor")).toBe(5);
    expect(config.sourceOf("default.replication.factor")).toEqual({
      kind: "env",
      variable: "RAFTKA_DEFAULT_REPLICATION_FACTOR",
    });
    expect(config.get("log.segment.bytes")).toBe(3000);
    expect(config.sourceOf("log.segment.bytes")).toEqual({ kind: "flag", flag: "--log.segment.bytes" });
    expect(config.get("log.dirs")).toEqual(["/var/lib/a", "/var/lib/b"]);
    expect(config.get("auto.create.topics.enable")).toBe(true);
    expect(effectiveLogRetentionMs(config)).toBe(5 * 60_000);
  });

  it("ignores the raftka CLI's own variables and those read at load time, so a shell that exports them can still start a node", () => {
    const config = loadConfig({
      env: {
        RAFTKA_BROKERS: "localhost:9092",
        RAFTKA_ADMIN_URL: "http://localhost:9644",
        RAFTKA_CRC32C_NATIVE: "false",
        RAFTKA_NUM_PARTITIONS: "4",
      },
    });
    expect(config.get("num.partitions")).toBe(4);
  });

  it("refuses a RAFTKA_CRC32C_NATIVE other than true or false, saying what the variable does", () => {
    expect(loadConfig({ env: { RAFTKA_CRC32C_NATIVE: "true" } }).get("num.partitions")).toBe(1);
    const [problem] = problemsOf({ env: { RAFTKA_CRC32C_NATIVE: "bogus" } });
    expect(problem).toMatchObject({ key: "RAFTKA_CRC32C_NATIVE", value: "bogus" });
    expect(problem!.message).toContain("must be true or false (false computes CRC-32C on @node-rs/crc32");
  });

  it("finds the config file through --config and RAFTKA_CONFIG, relative to cwd", () => {
    file("from-flag.properties", "num.partitions=7\n");
    file("from-env.properties", "num.partitions=8\n");
    expect(
      loadConfig({ cwd: directory, argv: ["--config=from-flag.properties"] }).get("num.partitions"),
    ).toBe(7);
    expect(
      loadConfig({ cwd: directory, env: { RAFTKA_CONFIG: "from-env.properties" } }).get("num.partitions"),
    ).toBe(8);
  });

  it("refuses --config given twice instead of silently reading only the last file", () => {
    file("first.properties", "num.partitions=7\n");
    file("second.properties", "log.retention.hours=1\n");
    const problems = problemsOf({
      cwd: directory,
      argv: ["--config", "first.properties", "--config=second.properties"],
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.key).toBe("--config");
    expect(problems[0]!.message).toContain("given twice (first.properties, then second.properties)");
    expect(problems[0]!.message).toContain("merge them into one file");
  });

  it("reads JSON files with native types and lists", () => {
    const json = file(
      "config.json",
      JSON.stringify({
        "num.partitions": 4,
        "log.dirs": ["/d1", "/d2"],
        "s3.path.style": true,
        listeners: "PLAINTEXT://:0",
      }),
    );
    const config = loadConfig({ configFile: json });
    expect(config.get("num.partitions")).toBe(4);
    expect(config.get("log.dirs")).toEqual(["/d1", "/d2"]);
    expect(config.get("s3.path.style")).toBe(true);
    expect(config.get("listeners")).toEqual([{ name: "PLAINTEXT", host: "", port: 0 }]);
    expect(config.sourceOf("log.dirs")).toEqual({ kind: "file", file: json, line: 1 });
  });

  it("parses listeners with names, IPv6 hosts and bare host:port", () => {
    const config = loadConfig({
      argv: [
        "--listeners=INTERNAL://[::1]:9093,127.0.0.1:9092",
        "--advertised.listeners=PLAINTEXT://kafka.example:9092",
      ],
    });
    expect(config.get("listeners")).toEqual([
      { name: "INTERNAL", host: "::1", port: 9093 },
      { name: "PLAINTEXT", host: "127.0.0.1", port: 9092 },
    ]);
    expect(config.format("listeners")).toBe("INTERNAL://[::1]:9093,PLAINTEXT://127.0.0.1:9092");
    expect(effectiveAdvertisedListeners(loadConfig(), "node-a")).toEqual([
      { name: "PLAINTEXT", host: "node-a", port: 9092 },
    ]);
  });

  it("starts from Kafka's stock server.properties, setting aside the keys that mean nothing here", () => {
    const properties = file(
      "kafka.properties",
      [
        "process.roles=broker,controller",
        "node.id=1",
        "controller.quorum.voters=1@localhost:9093",
        "num.network.threads=3",
        "socket.send.buffer.bytes=102400",
        "offsets.topic.replication.factor=1",
        "log.retention.hours=168",
      ].join("\n"),
    );
    const config = loadConfig({ configFile: properties });
    expect(config.get("node.id")).toBe(1);
    expect(config.get("log.retention.hours")).toBe(168);
    expect(config.ignoredKafkaSettings.map((setting) => setting.key)).toEqual([
      "process.roles",
      "controller.quorum.voters",
      "num.network.threads",
      "socket.send.buffer.bytes",
      "offsets.topic.replication.factor",
    ]);
    expect(config.ignoredKafkaSettings[0]!.source).toMatchObject({ kind: "file", line: 1 });
    // A ZooKeeper-mode file names its ensemble; Raftka needs none.
    const zookeeperMode = loadConfig({
      configFile: file(
        "zookeeper.properties",
        "zookeeper.connect=localhost:2181\nzookeeper.connection.timeout.ms=18000\n",
      ),
    });
    expect(zookeeperMode.ignoredKafkaSettings.map((setting) => setting.key)).toEqual([
      "zookeeper.connect",
      "zookeeper.connection.timeout.ms",
    ]);
    // Any other key nobody knows is still an error.
    expect(problemsOf({ configFile: file("typo.properties", "num.netwrk.threads=3") })[0]!.message).toContain(
      "unknown setting",
    );
  });

  it("accepts Kafka's Long.MAX_VALUE for long settings as 'no limit'", () => {
    const config = loadConfig({ argv: ["--log.flush.interval.messages=9223372036854775807"] });
    expect(config.get("log.flush.interval.messages")).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("derives the local object store directory from the first log directory", () => {
    expect(effectiveObjectStoreLocalDir(loadConfig({ argv: ["--log.dirs=/srv/raftka"] }))).toBe(
      "/srv/raftka/objects",
    );
  });
});

describe("errors", () => {
  it("reports every problem at once, each with key, value, source and what is allowed", () => {
    const properties = file(
      "broken.properties",
      ["log.segmnt.bytes=1000", "log.segment.bytes=12abc", "compression.type=ZSTD", "num.partitions=0"].join(
        "\n",
      ),
    );
    let message = "";
    try {
      loadConfig({
        configFile: properties,
        env: { RAFTKA_NUM_PARTITION: "3" },
        argv: ["--log.retention.bytes=-2"],
      });
    } catch (error) {
      message = (error as Error).message;
    }
    const lines = message.split("\n");
    expect(lines[0]).toContain("6 problems");
    expect(message).toContain(
      `log.segmnt.bytes (from ${properties}:1): unknown setting; did you mean log.segment.bytes? docs/configuration.md lists every setting`,
    );
    expect(message).toContain(
      `log.segment.bytes = "12abc" (from ${properties}:2): "12abc" is not a whole number; allowed: whole number 14 .. 2147483647 bytes`,
    );
    expect(message).toContain('did you mean "zstd"? values are case-sensitive');
    expect(message).toContain(
      `num.partitions = "0" (from ${properties}:4): 0 is out of range; allowed: whole number 1 .. 2147483647`,
    );
    expect(message).toContain(
      "RAFTKA_NUM_PARTITION (from environment variable RAFTKA_NUM_PARTITION): unknown RAFTKA_ environment variable; did you mean RAFTKA_NUM_PARTITIONS?",
    );
    expect(message).toContain(
      'log.retention.bytes = "-2" (from flag --log.retention.bytes): -2 is out of range; allowed: whole number -1 .. 2^53-1 bytes',
    );
    expect(lines).toHaveLength(7);
  });

  it("shows an out-of-range number as it was given, not rounded to a double", () => {
    const problems = problemsOf({
      argv: ["--log.retention.bytes=9223372036854775808", "--num.partitions=99999999999999999999"],
    });
    expect(problems.map(formatProblem)).toEqual([
      'log.retention.bytes = "9223372036854775808" (from flag --log.retention.bytes): 9223372036854775808 is out of range; allowed: whole number -1 .. 2^53-1 bytes',
      'num.partitions = "99999999999999999999" (from flag --num.partitions): 99999999999999999999 is out of range; allowed: whole number 1 .. 2147483647',
    ]);
  });

  it("refuses unknown flags with a suggestion, stray arguments, and flags missing their value", () => {
    const problems = problemsOf({ argv: ["--node.idd=1", "start", "--log.dirs"] });
    expect(problems.map(formatProblem)).toEqual([
      "start (from flag start): unexpected argument; settings are given as --key=value, e.g. --log.dirs=/var/lib/raftka",
      "log.dirs (from flag --log.dirs): needs a value: --log.dirs=<value>",
      "node.idd (from flag --node.idd): unknown setting; did you mean node.id? docs/configuration.md lists every setting",
    ]);
  });

  it("refuses a missing config file, invalid JSON, nested JSON and duplicate keys", () => {
    expect(problemsOf({ configFile: path.join(directory, "missing.properties") })[0]!.message).toMatch(
      /config file does not exist; fix the path given by --config or RAFTKA_CONFIG/,
    );
    expect(problemsOf({ configFile: file("bad.json", '{"num.partitions": 1,}') })[0]!.message).toMatch(
      /^not valid JSON/,
    );
    expect(problemsOf({ configFile: file("nested.json", '{"log": {"dirs": "/x"}}') })[0]!.message).toMatch(
      /nested objects are not read/,
    );
    const duplicate = problemsOf({
      configFile: file("twice.properties", "num.partitions=1\n\nnum.partitions=2\n"),
    });
    expect(duplicate).toEqual([
      {
        key: "num.partitions",
        source: { kind: "file", file: path.join(directory, "twice.properties"), line: 3 },
        message: "set twice (also on line 1); keep one of the two lines",
      },
    ]);
  });

  it("refuses empty values for settings that need one, but lets optional settings and lists be emptied", () => {
    expect(problemsOf({ argv: ["--node.id="] })[0]!.message).toBe(
      "empty value; write a value (whole number 0 .. 2147483647) or remove it to use the default 0",
    );
    const config = loadConfig({ env: { RAFTKA_S3_ENDPOINT: "", RAFTKA_CLUSTER_SEEDS: "" } });
    expect(config.get("s3.endpoint")).toBeNull();
    expect(config.get("cluster.seeds")).toEqual([]);
    expect(problemsOf({ argv: ["--log.dirs="] })[0]!.message).toContain("needs at least 1 item");
    expect(
      problemsOf({ argv: ["--cluster.seeds=:9645", "--cluster.secret=0123456789abcdef"] })[0]!.message,
    ).toBe(
      'item 1: ":9645" needs a host name and a port other than 0; allowed: comma-separated list (each host:port of another node)',
    );
  });

  it("checks settings that depend on each other, blaming the one that was set", () => {
    const problems = problemsOf({
      argv: [
        "--raft.heartbeat.interval.ms=2000",
        "--group.min.session.timeout.ms=2000000",
        "--cluster.seeds=node-b:9645",
        "--object.store.type=s3",
        "--s3.access.key=AKIA",
        "--listeners=A://:1,A://:2",
      ],
    });
    const byKey = new Map(problems.map((problem) => [problem.key, problem]));
    expect(byKey.get("raft.heartbeat.interval.ms")?.message).toMatch(
      /must be below raft.election.timeout.ms \(1000\)/,
    );
    expect(byKey.get("group.min.session.timeout.ms")?.message).toMatch(/above group.max.session.timeout.ms/);
    expect(byKey.get("cluster.secret")?.source).toEqual({ kind: "flag", flag: "--cluster.seeds" });
    expect(byKey.get("s3.bucket")?.message).toBe("required when object.store.type=s3; set the bucket name");
    expect(byKey.get("s3.secret.key")?.message).toMatch(/set together with s3.access.key/);
    expect(byKey.get("listeners")?.message).toMatch(/listener name A is used twice/);
    expect(problems).toHaveLength(6);
  });

  it("never prints secrets", () => {
    const secret = "short-secret";
    const problems = problemsOf({ argv: [`--cluster.secret=${secret}`] });
    expect(problems[0]!.value).toBeUndefined();
    expect(new ConfigError(problems).message).not.toContain(secret);
    const config = loadConfig({
      argv: ["--cluster.secret=a-long-enough-cluster-secret", "--cluster.seeds=b:1"],
    });
    expect(config.toLoggable()["cluster.secret"]).toBe("[redacted]");
    expect(describeBrokerConfig(config, ["cluster.secret"])[0]).toMatchObject({
      value: null,
      isSensitive: true,
    });
  });
});

describe("run-time updates", () => {
  it("applies dynamic settings atomically and tells listeners which keys changed", () => {
    const config = loadConfig({ argv: ["--log.retention.hours=1"] });
    const changes: string[][] = [];
    config.onChange((keys) => changes.push([...keys]));
    expect(config.update({ "log.retention.ms": "60000", "log.level.raft": "debug" })).toEqual([]);
    expect(config.get("log.retention.ms")).toBe(60_000);
    expect(config.sourceOf("log.retention.ms")).toEqual({ kind: "dynamic" });
    expect(effectiveLogRetentionMs(config)).toBe(60_000);
    expect(changes).toEqual([["log.retention.ms", "log.level.raft"]]);

    expect(config.update({ "log.retention.ms": null })).toEqual([]);
    expect(effectiveLogRetentionMs(config)).toBe(3_600_000);
  });

  it("refuses static settings, unknown keys and invalid values, changing nothing", () => {
    const config = loadConfig();
    const problems = config.update({
      "node.id": "3",
      "log.levl": "debug",
      "log.level": "loud",
      "message.max.bytes": "1",
    });
    expect(problems.map((problem) => problem.key)).toEqual(["node.id", "log.levl", "log.level"]);
    expect(problems[0]!.message).toMatch(/cannot change while the node runs/);
    expect(problems[1]!.message).toMatch(/did you mean log.level\?/);
    expect(config.get("message.max.bytes")).toBe(1_048_588);
  });

  it("validates without applying when asked", () => {
    const config = loadConfig();
    const changes: string[][] = [];
    config.onChange((keys) => changes.push([...keys]));
    expect(config.update({ "message.max.bytes": "10" }, { validateOnly: true })).toEqual([]);
    expect(config.update({ "message.max.bytes": "x" }, { validateOnly: true })).toHaveLength(1);
    expect(config.get("message.max.bytes")).toBe(1_048_588);
    expect(changes).toEqual([]);
  });
});

describe("topic settings", () => {
  it("validates CreateTopics/AlterConfigs entries with Kafka's INVALID_CONFIG and a precise message", () => {
    expect(
      validateTopicConfig({
        "retention.ms": "3600000",
        "cleanup.policy": "compact,delete",
        "segment.bytes": null,
      }),
    ).toEqual({
      ok: true,
      overrides: { "retention.ms": "3600000", "cleanup.policy": "compact,delete" },
    });
    const refused = validateTopicConfig({
      "retention.msx": "1",
      "segment.bytes": "10",
      "cleanup.policy": "purge",
    });
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.problems.map((problem) => problem.message)).toEqual([
      "retention.msx: unknown topic config; did you mean retention.ms? docs/configuration.md lists every topic config",
      "segment.bytes=10: 10 is out of range; allowed: whole number 14 .. 2147483647 bytes",
      'cleanup.policy=purge: item 1: "purge" is not one of the allowed values; allowed: comma-separated list (at least 1, each one of delete, compact)',
    ]);
    expect(refused.problems.every((problem) => problem.errorCode === "INVALID_CONFIG")).toBe(true);
  });

  it("falls back to broker settings and describes sources and synonyms like Kafka", () => {
    const properties = file("broker.properties", "log.retention.hours=24\n");
    const config = loadConfig({ configFile: properties });
    expect(topicSettingValue(config, {}, "retention.ms")).toBe(24 * 3_600_000);
    expect(topicSettingValue(config, { "retention.ms": "1000" }, "retention.ms")).toBe(1000);
    expect(topicSettingValue(config, {}, "flush.ms")).toBe(Number.MAX_SAFE_INTEGER);

    const [retention, segment] = describeTopicConfig(config, {}, ["retention.ms", "segment.bytes"]);
    expect(retention).toMatchObject({
      name: "retention.ms",
      value: "86400000",
      source: "STATIC_BROKER_CONFIG",
      isDefault: false,
      readOnly: false,
      configType: "LONG",
      synonyms: [
        { name: "log.retention.hours", value: "24", source: "STATIC_BROKER_CONFIG" },
        { name: "log.retention.hours", value: "168", source: "DEFAULT_CONFIG" },
      ],
    });
    expect(segment).toMatchObject({ value: "1073741824", source: "DEFAULT_CONFIG", isDefault: true });

    const [own] = describeTopicConfig(config, { "retention.ms": "5000" }, ["retention.ms"]);
    expect(own).toMatchObject({ value: "5000", source: "DYNAMIC_TOPIC_CONFIG" });
    expect(own!.synonyms[0]).toEqual({ name: "retention.ms", value: "5000", source: "DYNAMIC_TOPIC_CONFIG" });

    config.update({ "log.retention.ms": "7000" });
    expect(describeTopicConfig(config, {}, ["retention.ms"])[0]).toMatchObject({
      value: "7000",
      source: "DYNAMIC_BROKER_CONFIG",
    });
  });

  it("describes broker settings with read-only flags and sources", () => {
    const config = loadConfig({ argv: ["--num.partitions=3"] });
    const [partitions, segment] = describeBrokerConfig(config, [
      "num.partitions",
      "log.segment.bytes",
      "no.such.key",
    ]);
    expect(partitions).toMatchObject({
      value: "3",
      source: "STATIC_BROKER_CONFIG",
      readOnly: true,
      configType: "INT",
    });
    expect(segment).toMatchObject({ value: "1073741824", source: "DEFAULT_CONFIG", readOnly: false });
  });

  it("lists a broker setting's Kafka synonyms (log.retention.ms: minutes, hours) with their layers", () => {
    const unset = describeBrokerConfig(loadConfig({}), ["log.retention.ms"])[0]!;
    expect(unset).toMatchObject({ value: null, source: "DEFAULT_CONFIG" });
    expect(unset.synonyms).toEqual([{ name: "log.retention.hours", value: "168", source: "DEFAULT_CONFIG" }]);

    const set = describeBrokerConfig(loadConfig({ argv: ["--log.retention.minutes=30"] }), [
      "log.retention.ms",
    ])[0]!;
    expect(set.source).toBe("STATIC_BROKER_CONFIG");
    expect(set.synonyms.map((synonym) => [synonym.name, synonym.value, synonym.source])).toEqual([
      ["log.retention.minutes", "30", "STATIC_BROKER_CONFIG"],
      ["log.retention.hours", "168", "DEFAULT_CONFIG"],
    ]);
  });
});
