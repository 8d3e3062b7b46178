// Cross-checks the generated codec against kafkajs, an independent implementation: requests kafkajs
// encodes must decode with our decoders (and re-encode to the same bytes), and responses we encode must
// decode with kafkajs's response decoders.
import { describe, expect, it } from "vitest";
import {
  ApiKey,
  decodeRequestBody,
  decodeRequestHeader,
  encodeRequestFrame,
  encodeResponseFrame,
  type FetchResponse,
  type MetadataResponse,
  type ProduceRequest,
  type ResponseOf,
} from "../src/index.js";
import { kafkajsDecodeResponse, kafkajsRequestFrame } from "./support/kafkajs.js";

const CLIENT_ID = "interop-client";
const TIMESTAMP = 1_700_000_000_000;

interface RequestCase {
  folder: string;
  apiKey: ApiKey;
  versions: number[];
  args: unknown;
  // biome-ignore lint/suspicious/noExplicitAny: each case checks the request type of its own API
  check?: (request: any, version: number) => void;
}

function lengthPrefixed(data: Buffer): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeInt32BE(data.length);
  return Buffer.concat([prefix, data]);
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

const requestCases: RequestCase[] = [
  {
    folder: "produce",
    apiKey: ApiKey.Produce,
    versions: range(0, 7),
    args: {
      acks: -1,
      timeout: 30000,
      transactionalId: null,
      topicData: [
        {
          topic: "orders",
          partitions: [{ partition: 3, messages: [{ key: "k1", value: "hello", timestamp: TIMESTAMP }] }],
        },
      ],
    },
    check: (request: ProduceRequest, version) => {
      expect(request.acks).toBe(-1);
      expect(request.timeoutMs).toBe(30000);
      expect(request.topicData[0]!.name).toBe("orders");
      const partition = request.topicData[0]!.partitionData[0]!;
      expect(partition.index).toBe(3);
      const records = partition.records!;
      // Magic byte: offset 16 in a v2 batch, offset 16 (after offset, size, crc) in a legacy message set.
      expect(records[16]).toBe(version >= 3 ? 2 : version === 2 ? 1 : 0);
      expect(records.includes(Buffer.from("hello"))).toBe(true);
    },
  },
  {
    folder: "fetch",
    apiKey: ApiKey.Fetch,
    versions: range(0, 11),
    args: {
      replicaId: -1,
      maxWaitTime: 500,
      minBytes: 1,
      maxBytes: 1048576,
      isolationLevel: 1,
      rackId: "rack-a",
      topics: [{ topic: "orders", partitions: [{ partition: 2, fetchOffset: "42", maxBytes: 65536 }] }],
    },
    check: (request, version) => {
      expect(request.replicaId).toBe(-1);
      expect(request.maxWaitMs).toBe(500);
      expect(request.minBytes).toBe(1);
      expect(request.topics[0].topic).toBe("orders");
      const partition = request.topics[0].partitions[0];
      expect(partition.partition).toBe(2);
      expect(partition.fetchOffset).toBe(42n);
      expect(partition.partitionMaxBytes).toBe(65536);
      if (version >= 3) expect(request.maxBytes).toBe(1048576);
      if (version >= 4) expect(request.isolationLevel).toBe(1);
      if (version >= 7) expect(request.sessionEpoch).toBe(-1);
      if (version >= 11) expect(request.rackId).toBe("rack-a");
    },
  },
  {
    folder: "metadata",
    apiKey: ApiKey.Metadata,
    versions: range(0, 6),
    args: { topics: ["a", "b"], allowAutoTopicCreation: false },
    check: (request, version) => {
      expect(request.topics.map((topic: { name: string }) => topic.name)).toEqual(["a", "b"]);
      if (version >= 4) expect(request.allowAutoTopicCreation).toBe(false);
    },
  },
  { folder: "apiVersions", apiKey: ApiKey.ApiVersions, versions: range(0, 2), args: {} },
  {
    folder: "joinGroup",
    apiKey: ApiKey.JoinGroup,
    versions: range(0, 5),
    args: {
      groupId: "g1",
      sessionTimeout: 30000,
      rebalanceTimeout: 60000,
      memberId: "",
      groupInstanceId: null,
      protocolType: "consumer",
      groupProtocols: [{ name: "RoundRobinAssigner", metadata: Buffer.from([0, 1, 0, 0, 0, 0]) }],
    },
    check: (request, version) => {
      expect(request.groupId).toBe("g1");
      expect(request.sessionTimeoutMs).toBe(30000);
      if (version >= 1) expect(request.rebalanceTimeoutMs).toBe(60000);
      expect(request.protocolType).toBe("consumer");
      expect(request.protocols[0].name).toBe("RoundRobinAssigner");
      expect([...request.protocols[0].metadata]).toEqual([0, 1, 0, 0, 0, 0]);
    },
  },
  {
    folder: "syncGroup",
    apiKey: ApiKey.SyncGroup,
    versions: range(0, 3),
    args: {
      groupId: "g1",
      generationId: 7,
      memberId: "m-1",
      groupAssignment: [{ memberId: "m-1", memberAssignment: Buffer.from("assignment") }],
    },
    check: (request) => {
      expect(request.generationId).toBe(7);
      expect(request.assignments[0].memberId).toBe("m-1");
      expect(request.assignments[0].assignment.toString()).toBe("assignment");
    },
  },
  {
    folder: "heartbeat",
    apiKey: ApiKey.Heartbeat,
    versions: range(0, 3),
    args: { groupId: "g1", groupGenerationId: 7, memberId: "m-1" },
    check: (request) =>
      expect([request.groupId, request.generationId, request.memberId]).toEqual(["g1", 7, "m-1"]),
  },
  {
    folder: "leaveGroup",
    apiKey: ApiKey.LeaveGroup,
    versions: range(0, 2),
    args: { groupId: "g1", memberId: "m-1" },
  },
  {
    folder: "leaveGroup",
    apiKey: ApiKey.LeaveGroup,
    versions: [3],
    args: { groupId: "g1", memberId: "m-1", groupInstanceId: null },
    check: (request) => expect(request.members[0].memberId).toBe("m-1"),
  },
  {
    folder: "offsetCommit",
    apiKey: ApiKey.OffsetCommit,
    versions: range(0, 5),
    args: {
      groupId: "g1",
      groupGenerationId: 7,
      memberId: "m-1",
      topics: [{ topic: "orders", partitions: [{ partition: 1, offset: "100", metadata: null }] }],
    },
    check: (request) => {
      expect(request.topics[0].partitions[0].committedOffset).toBe(100n);
      expect(request.topics[0].partitions[0].committedMetadata).toBeNull();
    },
  },
  {
    folder: "offsetFetch",
    apiKey: ApiKey.OffsetFetch,
    versions: range(1, 4),
    args: { groupId: "g1", topics: [{ topic: "orders", partitions: [{ partition: 1 }] }] },
    check: (request) => expect(request.topics[0].partitionIndexes).toEqual([1]),
  },
  {
    folder: "findCoordinator",
    apiKey: ApiKey.FindCoordinator,
    versions: range(0, 2),
    args: { groupId: "g1", coordinatorType: 1 },
    check: (request, version) => {
      expect(request.key).toBe("g1");
      if (version >= 1) expect(request.keyType).toBe(1);
    },
  },
  {
    folder: "listOffsets",
    apiKey: ApiKey.ListOffsets,
    versions: range(0, 3),
    args: {
      replicaId: -1,
      isolationLevel: 1,
      topics: [{ topic: "orders", partitions: [{ partition: 0, timestamp: -1 }] }],
    },
    check: (request) => expect(request.topics[0].partitions[0].timestamp).toBe(-1n),
  },
  {
    folder: "initProducerId",
    apiKey: ApiKey.InitProducerId,
    versions: range(0, 1),
    args: { transactionalId: "tx-1", transactionTimeout: 60000 },
    check: (request) =>
      expect([request.transactionalId, request.transactionTimeoutMs]).toEqual(["tx-1", 60000]),
  },
  {
    folder: "createTopics",
    apiKey: ApiKey.CreateTopics,
    versions: range(0, 3),
    args: {
      timeout: 5000,
      validateOnly: false,
      topics: [
        {
          topic: "t1",
          numPartitions: 3,
          replicationFactor: 1,
          configEntries: [{ name: "cleanup.policy", value: "compact" }],
        },
      ],
    },
    check: (request) => {
      expect(request.topics[0].numPartitions).toBe(3);
      expect(request.topics[0].configs[0]).toMatchObject({ name: "cleanup.policy", value: "compact" });
    },
  },
  {
    folder: "deleteTopics",
    apiKey: ApiKey.DeleteTopics,
    versions: range(0, 1),
    args: { topics: ["t1"], timeout: 5000 },
  },
  {
    folder: "describeGroups",
    apiKey: ApiKey.DescribeGroups,
    versions: range(0, 2),
    args: { groupIds: ["g1", "g2"] },
  },
  { folder: "listGroups", apiKey: ApiKey.ListGroups, versions: range(0, 2), args: {} },
  {
    folder: "saslHandshake",
    apiKey: ApiKey.SaslHandshake,
    versions: range(0, 1),
    args: { mechanism: "PLAIN" },
  },
  {
    folder: "describeConfigs",
    apiKey: ApiKey.DescribeConfigs,
    versions: range(0, 2),
    args: { resources: [{ type: 2, name: "t1", configNames: ["retention.ms"] }], includeSynonyms: true },
  },
  {
    folder: "alterConfigs",
    apiKey: ApiKey.AlterConfigs,
    versions: range(0, 1),
    args: { resources: [{ type: 2, name: "t1", configEntries: [{ name: "retention.ms", value: "1000" }] }] },
  },
  {
    folder: "createPartitions",
    apiKey: ApiKey.CreatePartitions,
    versions: range(0, 1),
    args: {
      topicPartitions: [{ topic: "t1", count: 6, assignments: [] }],
      timeout: 5000,
      validateOnly: false,
    },
  },
  { folder: "deleteGroups", apiKey: ApiKey.DeleteGroups, versions: range(0, 1), args: ["g1"] },
  {
    folder: "deleteRecords",
    apiKey: ApiKey.DeleteRecords,
    versions: range(0, 1),
    args: { topics: [{ topic: "t1", partitions: [{ partition: 0, offset: "10" }] }], timeout: 5000 },
  },
  {
    folder: "addPartitionsToTxn",
    apiKey: ApiKey.AddPartitionsToTxn,
    versions: range(0, 1),
    args: {
      transactionalId: "tx-1",
      producerId: "1000",
      producerEpoch: 2,
      topics: [{ topic: "t1", partitions: [0, 1] }],
    },
  },
  {
    folder: "addOffsetsToTxn",
    apiKey: ApiKey.AddOffsetsToTxn,
    versions: range(0, 1),
    args: { transactionalId: "tx-1", producerId: "1000", producerEpoch: 2, groupId: "g1" },
  },
  {
    folder: "endTxn",
    apiKey: ApiKey.EndTxn,
    versions: range(0, 1),
    args: { transactionalId: "tx-1", producerId: "1000", producerEpoch: 2, transactionResult: true },
    check: (request) => expect(request.committed).toBe(true),
  },
  {
    folder: "txnOffsetCommit",
    apiKey: ApiKey.TxnOffsetCommit,
    versions: range(0, 1),
    args: {
      transactionalId: "tx-1",
      groupId: "g1",
      producerId: "1000",
      producerEpoch: 2,
      topics: [{ topic: "t1", partitions: [{ partition: 0, offset: "5", metadata: "m" }] }],
    },
  },
  {
    folder: "saslAuthenticate",
    apiKey: ApiKey.SaslAuthenticate,
    versions: range(0, 1),
    // kafkajs's SASL mechanisms hand over their token already int32-length-prefixed.
    args: { authBytes: lengthPrefixed(Buffer.from("\u0000user\u0000secret")) },
  },
  {
    folder: "alterPartitionReassignments",
    apiKey: ApiKey.AlterPartitionReassignments,
    versions: [0],
    args: {
      timeout: 5000,
      topics: [{ topic: "t1", partitionAssignment: [{ partition: 0, replicas: [1, 2, 3] }] }],
    },
    check: (request) => {
      expect(request.timeoutMs).toBe(5000);
      expect(request.topics[0].partitions[0].replicas).toEqual([1, 2, 3]);
    },
  },
  {
    folder: "listPartitionReassignments",
    apiKey: ApiKey.ListPartitionReassignments,
    versions: [0],
    args: { timeout: 5000, topics: [{ topic: "t1", partitions: [0, 1] }] },
    check: (request) => expect(request.topics[0].partitionIndexes).toEqual([0, 1]),
  },
];

describe("requests encoded by kafkajs decode with our decoders and re-encode byte for byte", () => {
  for (const testCase of requestCases) {
    for (const version of testCase.versions) {
      it(`${testCase.folder} v${version}`, async () => {
        const wire = await kafkajsRequestFrame(testCase.folder, version, testCase.args, 1234, CLIENT_ID);
        expect(wire.readInt32BE(0)).toBe(wire.length - 4);
        const frame = wire.subarray(4);
        const header = decodeRequestHeader(frame);
        expect(header).toMatchObject({
          apiKey: testCase.apiKey,
          apiVersion: version,
          correlationId: 1234,
          clientId: CLIENT_ID,
          supported: true,
        });
        const request = decodeRequestBody(testCase.apiKey, header, frame);
        testCase.check?.(request, version);
        const ours = Buffer.concat(
          encodeRequestFrame(testCase.apiKey, version, 1234, CLIENT_ID, request as never),
        );
        expect(ours.equals(wire), `our re-encoding of kafkajs's ${testCase.folder} v${version}`).toBe(true);
      });
    }
  }

  it("decodes Produce records as a zero-copy view of the received frame", async () => {
    const wire = await kafkajsRequestFrame("produce", 7, requestCases[0]!.args, 1, CLIENT_ID);
    const frame = wire.subarray(4);
    const request = decodeRequestBody(ApiKey.Produce, decodeRequestHeader(frame), frame);
    const records = request.topicData[0]!.partitionData[0]!.records!;
    expect(records.buffer).toBe(wire.buffer);
    records[0] = 0x7f;
    expect(wire.includes(records)).toBe(true);
  });
});

/** Body bytes kafkajs's response decoders expect: the frame after size prefix and correlation id. */
function responseBody<K extends ApiKey>(apiKey: K, version: number, response: ResponseOf<K>): Buffer {
  const wire = Buffer.concat(encodeResponseFrame(apiKey, version, 99, response));
  expect(wire.readInt32BE(4)).toBe(99);
  return wire.subarray(8);
}

describe("responses we encode decode with kafkajs", () => {
  it.each(range(0, 2))("ApiVersions v%i", async (version) => {
    const decoded = await kafkajsDecodeResponse(
      "apiVersions",
      version,
      responseBody(ApiKey.ApiVersions, version, {
        errorCode: 0,
        apiKeys: [
          { apiKey: 0, minVersion: 3, maxVersion: 7 },
          { apiKey: 18, minVersion: 0, maxVersion: 3 },
        ],
        throttleTimeMs: 0,
      }),
    );
    expect(decoded.apiVersions).toEqual([
      { apiKey: 0, minVersion: 3, maxVersion: 7 },
      { apiKey: 18, minVersion: 0, maxVersion: 3 },
    ]);
  });

  it.each(range(0, 6))("Metadata v%i", async (version) => {
    const response: MetadataResponse = {
      brokers: [{ nodeId: 1, host: "broker-1", port: 9092, rack: null }],
      clusterId: "cluster-x",
      controllerId: 1,
      topics: [
        {
          errorCode: 0,
          name: "orders",
          isInternal: false,
          partitions: [
            {
              errorCode: 0,
              partitionIndex: 0,
              leaderId: 1,
              leaderEpoch: 5,
              replicaNodes: [1],
              isrNodes: [1],
              offlineReplicas: [],
            },
          ],
        },
      ],
    };
    const decoded = await kafkajsDecodeResponse(
      "metadata",
      version,
      responseBody(ApiKey.Metadata, version, response),
    );
    expect(decoded.brokers[0]).toMatchObject({ nodeId: 1, host: "broker-1", port: 9092 });
    expect(decoded.topicMetadata[0].topic).toBe("orders");
    expect(decoded.topicMetadata[0].partitionMetadata[0]).toMatchObject({
      partitionId: 0,
      leader: 1,
      replicas: [1],
      isr: [1],
    });
    if (version >= 2) expect(decoded.clusterId).toBe("cluster-x");
  });

  it.each(range(0, 7))("Produce v%i", async (version) => {
    const decoded = await kafkajsDecodeResponse(
      "produce",
      version,
      responseBody(ApiKey.Produce, version, {
        responses: [
          {
            name: "orders",
            partitionResponses: [
              {
                index: 3,
                errorCode: 0,
                baseOffset: 1234567890123n,
                logAppendTimeMs: -1n,
                logStartOffset: 0n,
              },
            ],
          },
        ],
        throttleTimeMs: 0,
      }),
    );
    expect(decoded.topics[0].topicName).toBe("orders");
    const offsetField = version >= 3 ? "baseOffset" : "offset";
    expect(decoded.topics[0].partitions[0]).toMatchObject({
      partition: 3,
      errorCode: 0,
      [offsetField]: "1234567890123",
    });
  });

  it.each(range(4, 11))("Fetch v%i carrying a record batch kafkajs produced", async (version) => {
    const produceWire = await kafkajsRequestFrame("produce", 7, requestCases[0]!.args, 1, CLIENT_ID);
    const produceFrame = produceWire.subarray(4);
    const produce = decodeRequestBody(ApiKey.Produce, decodeRequestHeader(produceFrame), produceFrame);
    const records = produce.topicData[0]!.partitionData[0]!.records;
    const response: FetchResponse = {
      throttleTimeMs: 0,
      errorCode: 0,
      sessionId: 0,
      responses: [
        {
          topic: "orders",
          partitions: [
            {
              partitionIndex: 3,
              errorCode: 0,
              highWatermark: 1n,
              lastStableOffset: 1n,
              logStartOffset: 0n,
              abortedTransactions: [],
              preferredReadReplica: -1,
              records,
            },
          ],
        },
      ],
    };
    const decoded = await kafkajsDecodeResponse(
      "fetch",
      version,
      responseBody(ApiKey.Fetch, version, response),
    );
    const partition = decoded.responses[0].partitions[0];
    expect(decoded.responses[0].topicName).toBe("orders");
    expect(partition.highWatermark).toBe("1");
    expect(partition.messages).toHaveLength(1);
    expect(partition.messages[0].key.toString()).toBe("k1");
    expect(partition.messages[0].value.toString()).toBe("hello");
    expect(partition.messages[0].timestamp).toBe(String(TIMESTAMP));
  });

  it.each(range(0, 2))("FindCoordinator v%i", async (version) => {
    const decoded = await kafkajsDecodeResponse(
      "findCoordinator",
      version,
      responseBody(ApiKey.FindCoordinator, version, {
        throttleTimeMs: 0,
        errorCode: 0,
        errorMessage: null,
        nodeId: 2,
        host: "coordinator",
        port: 9093,
        coordinators: [],
      }),
    );
    expect(decoded.coordinator).toEqual({ nodeId: 2, host: "coordinator", port: 9093 });
  });

  it.each(range(0, 5))("JoinGroup v%i", async (version) => {
    const decoded = await kafkajsDecodeResponse(
      "joinGroup",
      version,
      responseBody(ApiKey.JoinGroup, version, {
        throttleTimeMs: 0,
        errorCode: 0,
        generationId: 4,
        protocolName: "RoundRobinAssigner",
        leader: "m-1",
        memberId: "m-1",
        members: [{ memberId: "m-1", groupInstanceId: null, metadata: Buffer.from([1, 2, 3]) }],
      }),
    );
    expect(decoded).toMatchObject({
      generationId: 4,
      groupProtocol: "RoundRobinAssigner",
      leaderId: "m-1",
      memberId: "m-1",
    });
    expect([...decoded.members[0].memberMetadata]).toEqual([1, 2, 3]);
  });

  it.each(range(0, 3))("SyncGroup v%i", async (version) => {
    const decoded = await kafkajsDecodeResponse(
      "syncGroup",
      version,
      responseBody(ApiKey.SyncGroup, version, {
        throttleTimeMs: 0,
        errorCode: 0,
        assignment: Buffer.from("plan"),
      }),
    );
    expect(decoded.memberAssignment.toString()).toBe("plan");
  });

  it.each(range(1, 3))("ListOffsets v%i", async (version) => {
    const decoded = await kafkajsDecodeResponse(
      "listOffsets",
      version,
      responseBody(ApiKey.ListOffsets, version, {
        throttleTimeMs: 0,
        topics: [
          {
            name: "orders",
            partitions: [{ partitionIndex: 0, errorCode: 0, timestamp: -1n, offset: 77n, leaderEpoch: 1 }],
          },
        ],
      }),
    );
    expect(decoded.responses[0].partitions[0]).toMatchObject({ partition: 0, offset: "77" });
  });

  it.each(range(1, 4))("OffsetFetch v%i", async (version) => {
    const decoded = await kafkajsDecodeResponse(
      "offsetFetch",
      version,
      responseBody(ApiKey.OffsetFetch, version, {
        throttleTimeMs: 0,
        errorCode: 0,
        topics: [
          {
            name: "orders",
            partitions: [
              {
                partitionIndex: 1,
                committedOffset: 55n,
                committedLeaderEpoch: -1,
                metadata: "",
                errorCode: 0,
              },
            ],
          },
        ],
      }),
    );
    expect(decoded.responses[0].partitions[0]).toMatchObject({ partition: 1, offset: "55" });
  });

  it("AlterPartitionReassignments v0 (flexible: compact strings, tagged fields, response header v1)", async () => {
    const decoded = await kafkajsDecodeResponse(
      "alterPartitionReassignments",
      0,
      responseBody(ApiKey.AlterPartitionReassignments, 0, {
        throttleTimeMs: 0,
        errorCode: 0,
        errorMessage: null,
        responses: [{ name: "t1", partitions: [{ partitionIndex: 0, errorCode: 0, errorMessage: null }] }],
      }),
    );
    expect(decoded.responses).toEqual([{ topic: "t1", partitions: [{ partition: 0, errorCode: 0 }] }]);
  });
});
