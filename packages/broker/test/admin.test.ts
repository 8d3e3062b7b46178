import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiKey, ErrorCode, type KafkaConnection } from "@raftka/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  batch,
  createTopic,
  fetchRequest,
  produceRequest,
  startTestBroker,
  type TestBroker,
} from "./helpers.js";

let node: TestBroker;

beforeAll(async () => {
  node = await startTestBroker({ "log.retention.check.interval.ms": 3_600_000 });
});
afterAll(async () => {
  await node.cleanup();
});

const TOPIC = 2;
const BROKER = 4;
const BROKER_LOGGER = 8;

async function produce(connection: KafkaConnection, topic: string, partition: number, value: string) {
  const response = await connection.send(ApiKey.Produce, 7, produceRequest(topic, partition, batch([value])));
  return response.responses[0]!.partitionResponses[0]!;
}

async function describeConfigs(
  connection: KafkaConnection,
  resourceType: number,
  resourceName: string,
  keys: string[] | null,
) {
  const response = await connection.send(ApiKey.DescribeConfigs, 4, {
    resources: [{ resourceType, resourceName, configurationKeys: keys }],
    includeSynonyms: true,
    includeDocumentation: false,
  });
  return response.results[0]!;
}

async function earliest(connection: KafkaConnection, topic: string) {
  const response = await connection.send(ApiKey.ListOffsets, 2, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: topic, partitions: [{ partitionIndex: 0, timestamp: -2n, maxNumOffsets: 1 }] }],
  });
  return response.topics[0]!.partitions[0]!.offset ?? -1n;
}

describe("DeleteTopics", () => {
  it("deletes by name and by id, removes the data, and lets the name be used again", async () => {
    const connection = await node.connect();
    await createTopic(connection, "doomed");
    const other = await createTopic(connection, "doomed-by-id");
    await produce(connection, "doomed", 0, "gone soon");
    const response = await connection.send(ApiKey.DeleteTopics, 6, {
      timeoutMs: 5000,
      topics: [
        { name: "doomed", topicId: "AAAAAAAAAAAAAAAAAAAAAA" },
        { name: null, topicId: other.topicId! },
        { name: null, topicId: "AAAAAAAAAAAAAAAAAAAAAQ" },
        { name: "never-existed", topicId: "AAAAAAAAAAAAAAAAAAAAAA" },
      ],
    });
    expect(response.responses.map((result) => [result.name, result.errorCode])).toEqual([
      ["doomed", ErrorCode.NONE],
      ["doomed-by-id", ErrorCode.NONE],
      [null, ErrorCode.UNKNOWN_TOPIC_ID],
      ["never-existed", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ]);
    expect(existsSync(join(node.dataDir, "doomed-0"))).toBe(false);
    expect((await produce(connection, "doomed", 0, "x")).errorCode).toBe(
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
    await createTopic(connection, "doomed");
    expect(await produce(connection, "doomed", 0, "fresh")).toMatchObject({ errorCode: 0, baseOffset: 0n });
  });

  it("deletes topics with names as long as Kafka allows, and a re-created one starts empty", async () => {
    const connection = await node.connect();
    // 249 characters: "<name>-1.<topic id>-delete" is far over the file system's 255-byte name limit.
    const name = "l".repeat(249);
    await createTopic(connection, name, 2);
    await produce(connection, name, 1, "old record");
    const response = await connection.send(ApiKey.DeleteTopics, 6, {
      timeoutMs: 5000,
      topics: [{ name, topicId: "AAAAAAAAAAAAAAAAAAAAAA" }],
    });
    expect(response.responses[0]!.errorCode).toBe(ErrorCode.NONE);
    expect(existsSync(join(node.dataDir, `${name}-0`))).toBe(false);
    expect(existsSync(join(node.dataDir, `${name}-1`))).toBe(false);
    await createTopic(connection, name, 2);
    expect(await produce(connection, name, 1, "fresh")).toMatchObject({ errorCode: 0, baseOffset: 0n });
  });

  it("starts with partition directories no topic owns, keeping each aside under a name of its own", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "raftka-stray-"));
    // A node's own directory: one without meta.properties that holds partitions is refused.
    let own = await startTestBroker({}, dataDir);
    await own.stop();
    const name = `${"s".repeat(249)}-0`;
    await mkdir(join(dataDir, name), { recursive: true });
    await writeFile(join(dataDir, name, "00000000000000000000.log"), "kept");
    // And a short one whose stray name an earlier start already used (a topic deleted twice, each
    // deletion cut short by a crash): the new stray must not collide with it.
    await mkdir(join(dataDir, "twice-3"), { recursive: true });
    await mkdir(join(dataDir, "twice-3-stray"), { recursive: true });
    await writeFile(join(dataDir, "twice-3-stray", "00000000000000000000.log"), "first");
    own = await own.restart();
    try {
      const entries = await readdir(dataDir);
      expect(entries).not.toContain(name);
      expect(entries).not.toContain("twice-3");
      expect(entries.filter((entry) => entry.startsWith("twice-3") && entry.endsWith("-stray"))).toHaveLength(
        2,
      );
      const stray = entries.filter((entry) => entry.startsWith("s") && entry.endsWith("-stray"));
      expect(stray).toHaveLength(1);
      expect(Buffer.byteLength(stray[0]!)).toBeLessThanOrEqual(255);
      expect(await readFile(join(dataDir, stray[0]!, "00000000000000000000.log"), "utf8")).toBe("kept");
    } finally {
      await own.cleanup();
    }
  });

  it("finishes a deletion a crash cut short: a deleted topic's leftover directory goes, it is not kept as a stray", async () => {
    let own = await startTestBroker();
    try {
      let connection = await own.connect();
      await createTopic(connection, "half-gone", 2);
      await produce(connection, "half-gone", 0, "deleted data");
      const metadata = await readFile(join(own.dataDir, "half-gone-0", "partition.metadata"), "utf8");
      expect(metadata).toMatch(/^version: 0\ntopic_id: [A-Za-z0-9_-]{22}\n$/);
      // What a crash between the committed deletion and the directory's rename leaves: the directory.
      const saved = await mkdtemp(join(tmpdir(), "raftka-saved-"));
      for (const partition of ["half-gone-0", "half-gone-1"]) {
        await cp(join(own.dataDir, partition), join(saved, partition), { recursive: true });
      }
      const deleted = await connection.send(ApiKey.DeleteTopics, 6, {
        timeoutMs: 5000,
        topics: [{ name: "half-gone", topicId: "AAAAAAAAAAAAAAAAAAAAAA" }],
      });
      expect(deleted.responses[0]!.errorCode).toBe(ErrorCode.NONE);
      await own.stop();
      for (const partition of ["half-gone-0", "half-gone-1"]) {
        await cp(join(saved, partition), join(own.dataDir, partition), { recursive: true });
      }
      await rm(saved, { recursive: true, force: true });
      own = await own.restart();
      const entries = await readdir(own.dataDir);
      expect(entries.filter((entry) => entry.startsWith("half-gone") && entry.endsWith("-stray"))).toEqual(
        [],
      );
      expect(entries).not.toContain("half-gone-0");
      expect(entries).not.toContain("half-gone-1");
      // One line for the topic, however many partitions it had.
      expect(
        own.logLines.filter(
          (line) =>
            line.msg ===
            "finishing the deletion of a topic that was still being deleted when the node stopped",
        ),
      ).toEqual([expect.objectContaining({ topic: "half-gone", partitions: 2 })]);
      // A topic created under the name again starts empty.
      connection = await own.connect();
      await createTopic(connection, "half-gone");
      expect(await produce(connection, "half-gone", 0, "new")).toMatchObject({
        errorCode: 0,
        baseOffset: 0n,
      });
    } finally {
      await own.cleanup();
    }
  });

  it("refuses deletion when delete.topic.enable is off", async () => {
    const strict = await startTestBroker({ "delete.topic.enable": false });
    try {
      const connection = await strict.connect();
      await createTopic(connection, "kept");
      const response = await connection.send(ApiKey.DeleteTopics, 1, {
        timeoutMs: 5000,
        topicNames: ["kept"],
      });
      expect(response.responses[0]!.errorCode).toBe(ErrorCode.TOPIC_DELETION_DISABLED);
    } finally {
      await strict.cleanup();
    }
  });
});

describe("several log.dirs", () => {
  it("spreads the partitions of one CreateTopics over the directories, fewest partitions first", async () => {
    const root = await mkdtemp(join(tmpdir(), "raftka-two-dirs-"));
    const [first, second] = [join(root, "a"), join(root, "b")];
    const own = await startTestBroker({ "log.dirs": `${first},${second}` }, first);
    try {
      const connection = await own.connect();
      expect((await createTopic(connection, "spread", 4)).errorCode).toBe(ErrorCode.NONE);
      const placed = async (dir: string) =>
        (await readdir(dir)).filter((name) => name.startsWith("spread-")).length;
      expect([await placed(first), await placed(second)]).toEqual([2, 2]);
    } finally {
      await own.cleanup();
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("CreatePartitions", () => {
  it("adds partitions that take writes at once and never removes any", async () => {
    const connection = await node.connect();
    await createTopic(connection, "growing");
    const request = (count: number, validateOnly = false) =>
      connection.send(ApiKey.CreatePartitions, 1, {
        timeoutMs: 5000,
        validateOnly,
        topics: [{ name: "growing", count, assignments: null }],
      });
    expect((await request(5, true)).results[0]!.errorCode).toBe(ErrorCode.NONE);
    expect((await produce(connection, "growing", 2, "x")).errorCode).toBe(
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
    expect((await request(3)).results[0]!.errorCode).toBe(ErrorCode.NONE);
    expect((await produce(connection, "growing", 2, "x")).errorCode).toBe(ErrorCode.NONE);
    const shrink = await request(2);
    expect(shrink.results[0]).toMatchObject({ errorCode: ErrorCode.INVALID_PARTITIONS });
    expect(shrink.results[0]!.errorMessage).toContain("3 partitions");
  });
});

describe("admin requests past their timeoutMs", () => {
  it("answer REQUEST_TIMED_OUT, as Kafka, while the change goes on and completes", async () => {
    const connection = await node.connect();
    const partitionCount = async (name: string) => {
      const response = await connection.send(ApiKey.Metadata, 9, {
        topics: [{ name }],
        allowAutoTopicCreation: false,
        includeClusterAuthorizedOperations: false,
        includeTopicAuthorizedOperations: false,
      });
      const topic = response.topics[0]!;
      // Partitions still opening are LEADER_NOT_AVAILABLE: count those that take produce.
      if (topic.errorCode !== ErrorCode.NONE) return 0;
      return topic.partitions.filter((partition) => partition.errorCode === ErrorCode.NONE).length;
    };
    // 300 partitions take far longer than 1 ms to commit and open.
    const created = await connection.send(ApiKey.CreateTopics, 7, {
      topics: [
        { name: "slow-create", numPartitions: 300, replicationFactor: 1, assignments: [], configs: [] },
      ],
      timeoutMs: 1,
      validateOnly: false,
    });
    expect(created.topics[0]).toMatchObject({ name: "slow-create", errorCode: ErrorCode.REQUEST_TIMED_OUT });
    expect(created.topics[0]!.errorMessage).toMatch(/within the request's timeout of 1 ms and goes on/);
    await expect.poll(() => partitionCount("slow-create"), { timeout: 30_000 }).toBe(300);
    expect((await produce(connection, "slow-create", 299, "late but there")).errorCode).toBe(ErrorCode.NONE);

    const grown = await connection.send(ApiKey.CreatePartitions, 1, {
      timeoutMs: 1,
      validateOnly: false,
      topics: [{ name: "slow-create", count: 600, assignments: null }],
    });
    expect(grown.results[0]).toMatchObject({ errorCode: ErrorCode.REQUEST_TIMED_OUT });
    await expect.poll(() => partitionCount("slow-create"), { timeout: 30_000 }).toBe(600);

    const deleted = await connection.send(ApiKey.DeleteTopics, 6, {
      topics: [{ name: "slow-create", topicId: "AAAAAAAAAAAAAAAAAAAAAA" }],
      timeoutMs: 1,
    });
    expect(deleted.responses[0]).toMatchObject({
      name: "slow-create",
      errorCode: ErrorCode.REQUEST_TIMED_OUT,
    });
    await expect.poll(() => partitionCount("slow-create"), { timeout: 30_000 }).toBe(0);

    // Within the timeout, and with 0 ("do not wait" in Kafka's clients), the answer is the outcome itself.
    const quick = await connection.send(ApiKey.CreateTopics, 7, {
      topics: [
        { name: "quick-create", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
      ],
      timeoutMs: 0,
      validateOnly: false,
    });
    expect(quick.topics[0]!.errorCode).toBe(ErrorCode.NONE);
    expect((await produce(connection, "quick-create", 0, "at once")).errorCode).toBe(ErrorCode.NONE);
  });
});

describe("configs", () => {
  it("describes topic configs with their source and broker synonyms", async () => {
    const connection = await node.connect();
    await createTopic(connection, "described", 1, { "retention.ms": "120000" });
    const result = await describeConfigs(connection, TOPIC, "described", [
      "retention.ms",
      "max.message.bytes",
    ]);
    const retention = result.configs.find((config) => config.name === "retention.ms")!;
    expect(retention).toMatchObject({ value: "120000", configSource: 1, isSensitive: false });
    expect(retention.synonyms!.map((synonym) => synonym.name)).toEqual([
      "retention.ms",
      "log.retention.hours",
    ]);
    expect(result.configs.find((config) => config.name === "max.message.bytes")).toMatchObject({
      value: "1048588",
      configSource: 5,
    });
    const broker = await describeConfigs(connection, BROKER, "0", ["log.retention.check.interval.ms"]);
    expect(broker.configs[0]).toMatchObject({ value: "3600000", configSource: 4, readOnly: true });
    expect((await describeConfigs(connection, TOPIC, "absent", null)).errorCode).toBe(
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
    // A name no topic could have (empty, "..", over 249 characters) is invalid, as Kafka answers, not unknown.
    expect((await describeConfigs(connection, TOPIC, "", null)).errorCode).toBe(
      ErrorCode.INVALID_TOPIC_EXCEPTION,
    );
  });

  it("accepts the Kafka topic configs it does not act on, keeps them, and still checks their values", async () => {
    const connection = await node.connect();
    // What provisioning tools send with every topic (Kafka's TopicConfig keys).
    const kafkaConfigs = {
      "unclean.leader.election.enable": "false",
      "min.compaction.lag.ms": "60000",
      "max.compaction.lag.ms": "9223372036854775807",
      "min.cleanable.dirty.ratio": "0.25",
      "segment.jitter.ms": "0",
      "message.downconversion.enable": "true",
      "leader.replication.throttled.replicas": "*",
      "local.retention.ms": "-2",
      "remote.storage.enable": "false",
    };
    const created = await createTopic(connection, "provisioned", 1, kafkaConfigs);
    expect(created.errorCode).toBe(ErrorCode.NONE);
    const described = await describeConfigs(connection, TOPIC, "provisioned", Object.keys(kafkaConfigs));
    expect(Object.fromEntries(described.configs.map((config) => [config.name, config.value]))).toEqual(
      kafkaConfigs,
    );
    const unclean = described.configs.find((config) => config.name === "unclean.leader.election.enable")!;
    expect(unclean.configSource).toBe(1);
    const refused = await createTopic(connection, "badly-provisioned", 1, {
      "min.cleanable.dirty.ratio": "2",
    });
    expect(refused.errorCode).toBe(ErrorCode.INVALID_CONFIG);
    expect(refused.errorMessage).toMatch(/min\.cleanable\.dirty\.ratio=2: 2 is out of range/);
  });

  it("keeps log levels set through the admin API across a restart, and reports them as AlterConfigs' are", async () => {
    let own = await startTestBroker();
    try {
      const put = (level: string | null) =>
        fetch(`http://127.0.0.1:${own.broker.adminAddress.port}/v1/log-levels/raft`, {
          method: "PUT",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ level }),
        });
      const raftLevel = async () =>
        (await describeConfigs(await own.connect(), BROKER, "0", ["log.level.raft"])).configs[0];
      expect((await put("error")).status).toBe(200);
      expect(await raftLevel()).toMatchObject({ value: "error", configSource: 2 });
      own = await own.restart();
      expect(await raftLevel()).toMatchObject({ value: "error", configSource: 2 });
      // Back to following the root level, for good.
      expect((await put(null)).status).toBe(200);
      own = await own.restart();
      expect(await raftLevel()).toMatchObject({ value: null, configSource: 5 });
    } finally {
      await own.cleanup();
    }
  });

  it("names at start each stored run-time setting that overrides the configuration, and how to remove it", async () => {
    let own = await startTestBroker({ "log.level.raft": "warn" });
    try {
      const put = await fetch(`http://127.0.0.1:${own.broker.adminAddress.port}/v1/log-levels/raft`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ level: "error" }),
      });
      expect(put.status).toBe(200);
      const altered = await (await own.connect()).send(ApiKey.IncrementalAlterConfigs, 1, {
        validateOnly: false,
        resources: [
          {
            resourceType: BROKER,
            resourceName: "",
            configs: [{ name: "log.retention.ms", configOperation: 0, value: "3600000" }],
          },
        ],
      });
      expect(altered.responses[0]!.errorCode).toBe(ErrorCode.NONE);
      own = await own.restart();
      const overrides = own.logLines.filter((line) => String(line.msg).startsWith("run-time setting "));
      expect(overrides).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            level: "warn",
            key: "log.level.raft",
            msg: "run-time setting log.level.raft=error, stored in the metadata log for node 0, overrides warn from flag --log.level.raft; to go back to it, remove the stored value: `raftka cluster log-level raft default`",
          }),
          expect.objectContaining({
            level: "info",
            key: "log.retention.ms",
            msg: "run-time setting log.retention.ms=3600000, stored in the metadata log as the cluster default, overrides its default (unset); to go back to it, remove the stored value: `kafka-configs.sh --bootstrap-server <host:port> --alter --entity-type brokers --entity-default --delete-config log.retention.ms`",
          }),
        ]),
      );
      expect(overrides).toHaveLength(2);
    } finally {
      await own.cleanup();
    }
  });

  it("reports Kafka's Long.MAX_VALUE back as it was set, for a topic's override and a default alike", async () => {
    const connection = await node.connect();
    await createTopic(connection, "unlimited", 1, { "retention.ms": "9223372036854775807" });
    const result = await describeConfigs(connection, TOPIC, "unlimited", ["retention.ms", "flush.messages"]);
    const value = (name: string) => result.configs.find((config) => config.name === name)?.value;
    expect(value("retention.ms")).toBe("9223372036854775807");
    expect(value("flush.messages")).toBe("9223372036854775807");
  });

  it("AlterConfigs replaces a topic's overrides, refuses invalid values, and the new values apply at once", async () => {
    const connection = await node.connect();
    await createTopic(connection, "altered", 1, { "retention.ms": "60000" });
    const alter = (configs: { name: string; value: string | null }[]) =>
      connection.send(ApiKey.AlterConfigs, 1, {
        validateOnly: false,
        resources: [{ resourceType: TOPIC, resourceName: "altered", configs }],
      });
    expect((await alter([{ name: "segment.bytes", value: "12" }])).responses[0]!.errorCode).toBe(
      ErrorCode.INVALID_CONFIG,
    );
    expect((await alter([{ name: "max.message.bytes", value: "2048" }])).responses[0]!.errorCode).toBe(
      ErrorCode.NONE,
    );
    // Whole-set semantics: retention.ms is back to the broker default.
    const described = await describeConfigs(connection, TOPIC, "altered", [
      "retention.ms",
      "max.message.bytes",
    ]);
    expect(described.configs.map((config) => [config.name, config.configSource])).toEqual([
      ["retention.ms", 5],
      ["max.message.bytes", 1],
    ]);
    // max.message.bytes is enforced on the next produce.
    const big = await connection.send(
      ApiKey.Produce,
      7,
      produceRequest("altered", 0, batch(["y".repeat(3000)])),
    );
    expect(big.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.MESSAGE_TOO_LARGE);
  });

  it("AlterConfigs and IncrementalAlterConfigs on a name no topic could have answer INVALID_TOPIC_EXCEPTION", async () => {
    const connection = await node.connect();
    const resources = (resourceName: string) => [
      {
        resourceType: TOPIC,
        resourceName,
        configs: [{ name: "retention.ms", configOperation: 0, value: "1" }],
      },
    ];
    for (const name of ["bad/name", "..", ""]) {
      const incremental = await connection.send(ApiKey.IncrementalAlterConfigs, 1, {
        validateOnly: false,
        resources: resources(name),
      });
      expect(incremental.responses[0]!.errorCode, name).toBe(ErrorCode.INVALID_TOPIC_EXCEPTION);
      const legacy = await connection.send(ApiKey.AlterConfigs, 1, {
        validateOnly: true,
        resources: resources(name),
      });
      expect(legacy.responses[0]!.errorCode, name).toBe(ErrorCode.INVALID_TOPIC_EXCEPTION);
    }
    const missing = await connection.send(ApiKey.IncrementalAlterConfigs, 1, {
      validateOnly: false,
      resources: resources("legal-but-missing"),
    });
    expect(missing.responses[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  });

  it("IncrementalAlterConfigs sets, deletes and appends, and changes dynamic broker settings persistently", async () => {
    const own = await startTestBroker();
    let current = own;
    try {
      const connection = await own.connect();
      await createTopic(connection, "incremental");
      const response = await connection.send(ApiKey.IncrementalAlterConfigs, 1, {
        validateOnly: false,
        resources: [
          {
            resourceType: TOPIC,
            resourceName: "incremental",
            configs: [
              { name: "cleanup.policy", configOperation: 2, value: "compact" },
              { name: "retention.bytes", configOperation: 0, value: "1000000" },
            ],
          },
          {
            resourceType: BROKER,
            resourceName: "",
            configs: [{ name: "log.retention.ms", configOperation: 0, value: "3600000" }],
          },
          {
            resourceType: BROKER,
            resourceName: "0",
            configs: [{ name: "node.id", configOperation: 0, value: "3" }],
          },
          {
            resourceType: BROKER_LOGGER,
            resourceName: "0",
            configs: [{ name: "storage", configOperation: 0, value: "debug" }],
          },
        ],
      });
      expect(response.responses.map((result) => result.errorCode)).toEqual([
        ErrorCode.NONE,
        ErrorCode.NONE,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.NONE,
      ]);
      current = await own.restart();
      const again = await current.connect();
      const topic = await describeConfigs(again, TOPIC, "incremental", ["cleanup.policy", "retention.ms"]);
      expect(topic.configs.map((config) => [config.name, config.value])).toEqual([
        ["cleanup.policy", "delete,compact"],
        ["retention.ms", "3600000"],
      ]);
      const broker = await describeConfigs(again, BROKER, "0", ["log.retention.ms"]);
      // Set on broker "": Kafka's DYNAMIC_DEFAULT_BROKER_CONFIG, not this node's own override.
      expect(broker.configs[0]).toMatchObject({ value: "3600000", configSource: 3 });
    } finally {
      await current.cleanup();
    }
  });

  it("IncrementalAlterConfigs SUBTRACT removes items from a list config, and is refused with INVALID_CONFIG on any other", async () => {
    const connection = await node.connect();
    await createTopic(connection, "subtracted", 1, { "cleanup.policy": "delete,compact" });
    const alter = (configs: { name: string; configOperation: number; value: string | null }[]) =>
      connection.send(ApiKey.IncrementalAlterConfigs, 1, {
        validateOnly: false,
        resources: [{ resourceType: TOPIC, resourceName: "subtracted", configs }],
      });
    const SUBTRACT = 3;
    const described = async () =>
      (
        await describeConfigs(connection, TOPIC, "subtracted", ["cleanup.policy", "retention.bytes"])
      ).configs.map((config) => [config.name, config.value, config.configSource]);

    const subtracted = await alter([{ name: "cleanup.policy", configOperation: SUBTRACT, value: "compact" }]);
    expect(subtracted.responses[0]!.errorCode).toBe(ErrorCode.NONE);
    // The rest of the list stays, still the topic's own override (DYNAMIC_TOPIC_CONFIG).
    expect(await described()).toEqual([
      ["cleanup.policy", "delete", 1],
      ["retention.bytes", "-1", 5],
    ]);
    // Subtracting an item the list does not hold changes nothing, as in Kafka.
    const absent = await alter([{ name: "cleanup.policy", configOperation: SUBTRACT, value: "compact" }]);
    expect(absent.responses[0]!.errorCode).toBe(ErrorCode.NONE);
    expect((await described())[0]).toEqual(["cleanup.policy", "delete", 1]);

    // Kafka's ConfigAdminManager: APPEND and SUBTRACT on a config that is not a list is an invalid
    // config, and the whole resource is refused: the SET beside it does not apply either.
    const notAList = await alter([
      { name: "retention.bytes", configOperation: 0, value: "1000000" },
      { name: "retention.ms", configOperation: SUBTRACT, value: "1000" },
    ]);
    expect(notAList.responses[0]!.errorCode).toBe(ErrorCode.INVALID_CONFIG);
    expect(notAList.responses[0]!.errorMessage).toMatch(/retention\.ms is not a list config/);
    expect(await described()).toEqual([
      ["cleanup.policy", "delete", 1],
      ["retention.bytes", "-1", 5],
    ]);
  });

  it("DescribeConfigs tells this node's override from the cluster default, as Kafka's sources and synonyms", async () => {
    const connection = await node.connect();
    await createTopic(connection, "layered");
    const alter = (resourceName: string, value: string | null) =>
      connection.send(ApiKey.IncrementalAlterConfigs, 1, {
        validateOnly: false,
        resources: [
          {
            resourceType: BROKER,
            resourceName,
            configs: [{ name: "log.retention.ms", configOperation: value === null ? 1 : 0, value }],
          },
        ],
      });
    const sources = (configs: { synonyms?: { source: number; value: string | null }[] }[]) =>
      (configs[0]!.synonyms ?? []).map((synonym) => [synonym.source, synonym.value]);
    try {
      expect((await alter("", "7200000")).responses[0]!.errorCode).toBe(ErrorCode.NONE);
      expect((await alter("0", "3600000")).responses[0]!.errorCode).toBe(ErrorCode.NONE);

      const own = await describeConfigs(connection, BROKER, "0", ["log.retention.ms"]);
      expect(own.configs[0]).toMatchObject({ value: "3600000", configSource: 2, isDefault: false });
      // Then Kafka's synonyms of log.retention.ms below them: log.retention.hours' default.
      expect(sources(own.configs)).toEqual([
        [2, "3600000"],
        [3, "7200000"],
        [5, "168"],
      ]);

      const topic = await describeConfigs(connection, TOPIC, "layered", ["retention.ms"]);
      expect(topic.configs[0]).toMatchObject({ value: "3600000", configSource: 2 });
      expect(sources(topic.configs).slice(0, 2)).toEqual([
        [2, "3600000"],
        [3, "7200000"],
      ]);

      // Broker "" lists only what was set as the cluster default, without this node's layer.
      const clusterDefault = await describeConfigs(connection, BROKER, "", null);
      expect(
        clusterDefault.configs.map((config) => [config.name, config.value, config.configSource]),
      ).toEqual([["log.retention.ms", "7200000", 3]]);

      expect((await alter("0", null)).responses[0]!.errorCode).toBe(ErrorCode.NONE);
      const fallback = await describeConfigs(connection, BROKER, "0", ["log.retention.ms"]);
      expect(fallback.configs[0]).toMatchObject({ value: "7200000", configSource: 3 });
    } finally {
      await alter("0", null);
      await alter("", null);
    }
  });
});

describe("DeleteRecords and retention", () => {
  it("moves the log start offset; earlier offsets become out of range", async () => {
    const connection = await node.connect();
    await createTopic(connection, "trimmed");
    for (const value of ["a", "b", "c", "d"]) await produce(connection, "trimmed", 0, value);
    const response = await connection.send(ApiKey.DeleteRecords, 1, {
      timeoutMs: 5000,
      topics: [
        { name: "trimmed", partitions: [{ partitionIndex: 0, offset: 2n }] },
        { name: "missing", partitions: [{ partitionIndex: 0, offset: 1n }] },
      ],
    });
    expect(response.topics[0]!.partitions[0]).toMatchObject({ errorCode: 0, lowWatermark: 2n });
    expect(response.topics[1]!.partitions[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    expect(await earliest(connection, "trimmed")).toBe(2n);
    const fetched = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([{ topic: "trimmed", partition: 0, offset: 0n }]),
    );
    expect(fetched.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
    const beyond = await connection.send(ApiKey.DeleteRecords, 1, {
      timeoutMs: 5000,
      topics: [{ name: "trimmed", partitions: [{ partitionIndex: 0, offset: 99n }] }],
    });
    expect(beyond.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
    const all = await connection.send(ApiKey.DeleteRecords, 1, {
      timeoutMs: 5000,
      topics: [{ name: "trimmed", partitions: [{ partitionIndex: 0, offset: -1n }] }],
    });
    expect(all.topics[0]!.partitions[0]).toMatchObject({ errorCode: 0, lowWatermark: 4n });
  });

  it("deletes old segments by retention.bytes on a retention pass, never the active segment", async () => {
    const connection = await node.connect();
    await createTopic(connection, "retained", 1, { "segment.bytes": "200", "retention.bytes": "300" });
    for (let index = 0; index < 10; index++)
      await produce(connection, "retained", 0, `value-${index}`.padEnd(100, "."));
    const pass = await node.broker.runRetention();
    expect(pass.segmentsDeleted).toBeGreaterThan(0);
    const start = await earliest(connection, "retained");
    expect(start).toBeGreaterThan(0n);
    const fetched = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([{ topic: "retained", partition: 0, offset: start }]),
    );
    expect(fetched.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE);
    expect(fetched.responses[0]!.partitions[0]!.highWatermark).toBe(10n);
  });
});

describe("DescribeCluster and OffsetForLeaderEpoch", () => {
  it("describes this node as the cluster and its controller", async () => {
    const connection = await node.connect();
    const response = await connection.send(ApiKey.DescribeCluster, 1, {
      includeClusterAuthorizedOperations: false,
      endpointType: 1,
    });
    expect(response).toMatchObject({
      errorCode: 0,
      controllerId: 0,
      brokers: [{ brokerId: 0, port: node.port }],
    });
  });

  it("refuses controller and unknown endpoint types (KIP-919) as a Kafka broker does", async () => {
    const connection = await node.connect();
    const describe = (endpointType: number) =>
      connection.send(ApiKey.DescribeCluster, 1, { includeClusterAuthorizedOperations: false, endpointType });
    expect(await describe(2)).toMatchObject({
      errorCode: ErrorCode.MISMATCHED_ENDPOINT_TYPE,
      errorMessage: expect.stringMatching(/bootstrap\.servers/),
      brokers: [],
    });
    for (const unknown of [0, 3, -1]) {
      expect(await describe(unknown)).toMatchObject({
        errorCode: ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
        errorMessage: `Unsupported endpoint type ${unknown}`,
        brokers: [],
      });
    }
  });

  it("answers the end offset of the requested leader epoch", async () => {
    const connection = await node.connect();
    await createTopic(connection, "epochs");
    for (const value of ["a", "b", "c"]) await produce(connection, "epochs", 0, value);
    const response = await connection.send(ApiKey.OffsetForLeaderEpoch, 3, {
      replicaId: -1,
      topics: [
        {
          topic: "epochs",
          partitions: [
            // A new partition's first Raft term is 1: its leader epoch.
            { partition: 0, currentLeaderEpoch: 1, leaderEpoch: 1 },
            { partition: 1, currentLeaderEpoch: -1, leaderEpoch: 1 },
          ],
        },
      ],
    });
    expect(response.topics[0]!.partitions).toEqual([
      expect.objectContaining({ errorCode: 0, leaderEpoch: 1, endOffset: 3n }),
      expect.objectContaining({ errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }),
    ]);
  });
});
