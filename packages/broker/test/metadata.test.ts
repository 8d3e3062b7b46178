import { ApiKey, ErrorCode } from "@raftka/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { batch, createTopic, produceRequest, startTestBroker, type TestBroker } from "./helpers.js";

let node: TestBroker;

beforeAll(async () => {
  node = await startTestBroker({ "num.partitions": 2 });
});
afterAll(async () => {
  await node.cleanup();
});

describe("Metadata", () => {
  it("lists all topics for v0 with an empty array and for v1+ with null, none for v1+ with an empty array", async () => {
    const connection = await node.connect();
    await createTopic(connection, "listed");
    const names = (response: { topics: { name: string | null }[] }) =>
      response.topics.map((topic) => topic.name);
    expect(names(await connection.send(ApiKey.Metadata, 0, { topics: [] }))).toContain("listed");
    expect(names(await connection.send(ApiKey.Metadata, 1, { topics: null }))).toContain("listed");
    expect(names(await connection.send(ApiKey.Metadata, 1, { topics: [] }))).toEqual([]);
    const v12 = await connection.send(ApiKey.Metadata, 12, {
      topics: null,
      allowAutoTopicCreation: false,
      includeTopicAuthorizedOperations: false,
    });
    expect(v12.clusterId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(v12.controllerId).toBe(0);
    expect(v12.brokers).toEqual([{ nodeId: 0, host: "127.0.0.1", port: node.port, rack: null }]);
  });

  it("creates a missing topic when allowed, with the broker's default partition count", async () => {
    const connection = await node.connect();
    const created = await connection.send(ApiKey.Metadata, 9, {
      topics: [{ name: "auto-topic" }],
      allowAutoTopicCreation: true,
    });
    expect(created.topics[0]).toMatchObject({ name: "auto-topic", errorCode: ErrorCode.NONE });
    expect(created.topics[0]!.partitions.map((partition) => partition.leaderId)).toEqual([0, 0]);
    // The partitions take writes at once.
    const produced = await connection.send(ApiKey.Produce, 7, produceRequest("auto-topic", 1, batch(["x"])));
    expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);

    const refused = await connection.send(ApiKey.Metadata, 9, {
      topics: [{ name: "not-allowed" }],
      allowAutoTopicCreation: false,
    });
    expect(refused.topics[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    const invalid = await connection.send(ApiKey.Metadata, 4, {
      topics: [{ name: "bad name!" }],
      allowAutoTopicCreation: true,
    });
    expect(invalid.topics[0]!.errorCode).toBe(ErrorCode.INVALID_TOPIC_EXCEPTION);
    // v1-3 clients (kafka-python) have no flag: the broker setting decides, and it allows.
    const legacy = await connection.send(ApiKey.Metadata, 1, { topics: [{ name: "from-kafka-python" }] });
    expect(legacy.topics[0]!.errorCode).toBe(ErrorCode.NONE);
  });

  it("answers a lookup by topic id, and an id-only lookup at v10-11 without a null name", async () => {
    const connection = await node.connect();
    const created = await createTopic(connection, "looked-up");
    const byId = await connection.send(ApiKey.Metadata, 12, {
      topics: [{ name: null, topicId: created.topicId! }],
      allowAutoTopicCreation: false,
    });
    expect(byId.topics[0]).toMatchObject({ name: "looked-up", topicId: created.topicId, errorCode: 0 });
    const unknownAt10 = await connection.send(ApiKey.Metadata, 10, {
      topics: [{ name: null, topicId: "AAAAAAAAAAAAAAAAAAAAAQ" }],
      allowAutoTopicCreation: false,
    });
    expect(unknownAt10.topics[0]).toMatchObject({ name: "", errorCode: ErrorCode.UNKNOWN_TOPIC_ID });
  });

  it("does not create topics when auto.create.topics.enable is off", async () => {
    const strict = await startTestBroker({ "auto.create.topics.enable": false });
    try {
      const connection = await strict.connect();
      const response = await connection.send(ApiKey.Metadata, 1, { topics: [{ name: "nope" }] });
      expect(response.topics[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    } finally {
      await strict.cleanup();
    }
  });
});

describe("CreateTopics", () => {
  it("validates names, partitions, replication factor and configs the way Kafka does", async () => {
    const connection = await node.connect();
    const response = await connection.send(ApiKey.CreateTopics, 7, {
      timeoutMs: 5000,
      validateOnly: false,
      topics: [
        { name: "good", numPartitions: 3, replicationFactor: 1, assignments: [], configs: [] },
        { name: "good", numPartitions: 3, replicationFactor: 1, assignments: [], configs: [] },
        { name: "bad/name", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
        { name: "x".repeat(250), numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
        { name: "zero", numPartitions: 0, replicationFactor: 1, assignments: [], configs: [] },
        // Refused without laying out 2^31 partitions first (a fuzzer found the broker running out of memory).
        { name: "huge", numPartitions: 2 ** 31 - 1, replicationFactor: 1, assignments: [], configs: [] },
        { name: "three-copies", numPartitions: 1, replicationFactor: 3, assignments: [], configs: [] },
        {
          name: "bad-config",
          numPartitions: 1,
          replicationFactor: 1,
          assignments: [],
          configs: [{ name: "retention.ms", value: "soon" }],
        },
        {
          name: "unknown-config",
          numPartitions: 1,
          replicationFactor: 1,
          assignments: [],
          configs: [{ name: "retention.msec", value: "1000" }],
        },
        {
          name: "assigned",
          numPartitions: -1,
          replicationFactor: -1,
          assignments: [
            { partitionIndex: 0, brokerIds: [0] },
            { partitionIndex: 1, brokerIds: [7] },
          ],
          configs: [],
        },
        { name: "__consumer_offsets", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
        { name: "__cluster_metadata", numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
      ],
    });
    const codes = Object.fromEntries(
      response.topics.map((topic) => [topic.name.slice(0, 20), topic.errorCode]),
    );
    expect(codes).toEqual({
      good: ErrorCode.INVALID_REQUEST,
      "bad/name": ErrorCode.INVALID_TOPIC_EXCEPTION,
      xxxxxxxxxxxxxxxxxxxx: ErrorCode.INVALID_TOPIC_EXCEPTION,
      zero: ErrorCode.INVALID_PARTITIONS,
      huge: ErrorCode.INVALID_PARTITIONS,
      "three-copies": ErrorCode.INVALID_REPLICATION_FACTOR,
      "bad-config": ErrorCode.INVALID_CONFIG,
      "unknown-config": ErrorCode.INVALID_CONFIG,
      assigned: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
      __consumer_offsets: ErrorCode.INVALID_REQUEST,
      __cluster_metadata: ErrorCode.INVALID_TOPIC_EXCEPTION,
    });
    for (const topic of response.topics) expect(topic.errorMessage).toBeTruthy();
  });

  it("changes nothing with validateOnly, refuses duplicates and colliding names", async () => {
    const connection = await node.connect();
    const spec = { name: "dry.run", numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] };
    const dry = await connection.send(ApiKey.CreateTopics, 7, {
      timeoutMs: 5000,
      validateOnly: true,
      topics: [spec],
    });
    expect(dry.topics[0]).toMatchObject({ errorCode: 0, numPartitions: 2 });
    const listed = await connection.send(ApiKey.Metadata, 1, { topics: null });
    expect(listed.topics.map((topic) => topic.name)).not.toContain("dry.run");
    expect((await createTopic(connection, "dry.run")).errorCode).toBe(ErrorCode.NONE);
    expect((await createTopic(connection, "dry.run")).errorCode).toBe(ErrorCode.TOPIC_ALREADY_EXISTS);
    expect((await createTopic(connection, "dry_run")).errorCode).toBe(ErrorCode.INVALID_TOPIC_EXCEPTION);
  });

  it("reports the topic's effective configs, with the topic's own values as dynamic topic configs", async () => {
    const connection = await node.connect();
    const created = await createTopic(connection, "configured", 1, { "retention.ms": "60000" });
    const retention = created.configs!.find((config) => config.name === "retention.ms");
    expect(retention).toMatchObject({ value: "60000", configSource: 1 });
    const segment = created.configs!.find((config) => config.name === "segment.bytes");
    expect(segment).toMatchObject({ value: "1073741824", configSource: 5 });
  });
});

describe("cluster metadata log", () => {
  it("replays topics, ids and configs after a restart", async () => {
    const own = await startTestBroker();
    let restarted: TestBroker | undefined;
    try {
      const connection = await own.connect();
      const created = await createTopic(connection, "durable", 3, { "cleanup.policy": "delete" });
      const before = await connection.send(ApiKey.Metadata, 10, {
        topics: null,
        allowAutoTopicCreation: false,
      });
      const clusterId = before.clusterId;
      restarted = await own.restart();
      const after = await (await restarted.connect()).send(ApiKey.Metadata, 10, {
        topics: null,
        allowAutoTopicCreation: false,
      });
      expect(after.clusterId).toBe(clusterId);
      // Each partition is a Raft group: the restart's election raised its term, the leader epoch.
      const epochs = (response: typeof before) =>
        response.topics[0]!.partitions.map((partition) => partition.leaderEpoch ?? -1);
      expect(epochs(after)).toEqual(epochs(before).map((epoch) => epoch + 1));
      const withoutEpochs = (response: typeof before) =>
        response.topics.map((topic) => ({
          ...topic,
          partitions: topic.partitions.map((partition) => ({ ...partition, leaderEpoch: 0 })),
        }));
      expect(withoutEpochs(after)).toEqual(withoutEpochs(before));
      expect(after.topics[0]!.topicId).toBe(created.topicId);
    } finally {
      await (restarted ?? own).cleanup();
    }
  });
});
