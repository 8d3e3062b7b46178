// Valid sample requests for every API the broker serves; the fuzzer encodes them at every advertised
// version and mutates the result. A broker API without samples here makes the fuzzer refuse to run, so
// whoever adds an API adds its samples too (SAMPLES below, keyed by API key).

/**
 * @param {object} protocol the @raftka/protocol module
 * @param {{ topic: string, topicId: string, partitions: number, now: number }} target an existing topic
 */
export function sampleRequests(protocol, target) {
  const { encodeRecordBatch, CompressionType } = protocol;
  const { topic, topicId, now } = target;
  const records = (compression = CompressionType.None) =>
    encodeRecordBatch({
      compression,
      records: [
        { key: "k", value: "fuzz-value", headers: [{ key: "h", value: "v" }], timestamp: now },
        { key: null, value: null, timestamp: now + 1 },
      ],
    });
  // Above 64 KiB a Produce request is read into a pooled buffer, reused once its records are written.
  const large = encodeRecordBatch({
    records: Array.from({ length: 20 }, (_, index) => ({
      key: `k${index}`,
      value: "v".repeat(4000),
      timestamp: now + index,
    })),
  });
  const legacy = legacyMessageSet(now);
  const fetchPartition = (partition) => ({
    partition,
    currentLeaderEpoch: -1,
    fetchOffset: 0n,
    lastFetchedEpoch: -1,
    logStartOffset: -1n,
    partitionMaxBytes: 65536,
  });
  const fetch = (sessionId, sessionEpoch) => ({
    replicaId: -1,
    maxWaitMs: 10,
    minBytes: 1,
    maxBytes: 1 << 20,
    isolationLevel: 1,
    sessionId,
    sessionEpoch,
    topics: [{ topic, topicId, partitions: [fetchPartition(0), fetchPartition(1)] }],
    forgottenTopicsData: [{ topic, topicId, partitions: [2] }],
    rackId: "",
  });
  const configResource = (resourceType, resourceName) => ({
    resourceType,
    resourceName,
    configurationKeys: null,
  });
  return {
    // Produce: v2 batches, a legacy message set (for v0-2), compressed data, and large requests.
    0: [
      produce(topic, 0, records(), -1),
      produce(topic, 1, records(CompressionType.Gzip), 1),
      produce(topic, 2, records(), 0),
      produce(topic, 0, legacy, 1),
      produce(topic, 1, large, 1),
      produce(topic, 2, large, -1),
    ],
    1: [fetch(0, -1), fetch(0, 0), fetch(1, 1)],
    2: [-1n, -2n, -3n, BigInt(now)].map((timestamp) => ({
      replicaId: -1,
      isolationLevel: 0,
      timeoutMs: 1000,
      topics: [
        {
          name: topic,
          partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 }],
        },
      ],
    })),
    3: [
      {
        topics: [{ name: topic, topicId }],
        allowAutoTopicCreation: false,
        includeTopicAuthorizedOperations: true,
      },
      { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: true },
      { topics: [], allowAutoTopicCreation: false },
    ],
    18: [{ clientSoftwareName: "raftka-fuzz", clientSoftwareVersion: "1.0" }],
    19: [
      {
        timeoutMs: 1000,
        validateOnly: true,
        topics: [
          {
            name: "fuzz-created",
            numPartitions: 2,
            replicationFactor: 1,
            assignments: [],
            configs: [{ name: "retention.ms", value: "60000" }],
          },
          {
            name: "fuzz-assigned",
            numPartitions: -1,
            replicationFactor: -1,
            assignments: [{ partitionIndex: 0, brokerIds: [0] }],
            configs: [],
          },
        ],
      },
    ],
    20: [
      { timeoutMs: 1000, topicNames: ["fuzz-doomed"], topics: [{ name: "fuzz-doomed", topicId: ZERO_UUID }] },
    ],
    21: [{ timeoutMs: 1000, topics: [{ name: topic, partitions: [{ partitionIndex: 2, offset: 0n }] }] }],
    23: [
      {
        replicaId: -1,
        topics: [{ topic, partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }] }],
      },
    ],
    32: [
      {
        resources: [configResource(2, topic), configResource(4, "0"), configResource(8, "0")],
        includeSynonyms: true,
        includeDocumentation: true,
      },
    ],
    33: [
      {
        validateOnly: true,
        resources: [
          { resourceType: 2, resourceName: topic, configs: [{ name: "retention.ms", value: "100000" }] },
          { resourceType: 4, resourceName: "0", configs: [{ name: "log.retention.ms", value: "100000" }] },
        ],
      },
    ],
    37: [{ timeoutMs: 1000, validateOnly: true, topics: [{ name: topic, count: 5, assignments: null }] }],
    44: [
      {
        validateOnly: true,
        resources: [
          {
            resourceType: 2,
            resourceName: topic,
            configs: [
              { name: "cleanup.policy", configOperation: 2, value: "compact" },
              { name: "retention.ms", configOperation: 1, value: null },
            ],
          },
          {
            resourceType: 8,
            resourceName: "0",
            configs: [{ name: "server", configOperation: 0, value: "warn" }],
          },
        ],
      },
    ],
    60: [{ includeClusterAuthorizedOperations: true, endpointType: 1 }],
    // SASL on a PLAINTEXT listener: answered ILLEGAL_SASL_STATE, the connection kept.
    17: [{ mechanism: "PLAIN" }, { mechanism: "SCRAM-SHA-512" }],
    36: [{ authBytes: Buffer.from("\0user\0secret") }],
    ...groupSamples(topic),
    22: [
      { transactionalId: null, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 },
      { transactionalId: null, transactionTimeoutMs: 60_000, producerId: 1000n, producerEpoch: 0 },
    ],
  };
}

/** Consumer groups: the coordinator's APIs, for a group the fuzzer may also join for real. */
function groupSamples(topic) {
  const groupId = "fuzz-group";
  const member = (memberId, groupInstanceId = null) => ({ memberId, groupInstanceId, reason: "fuzz" });
  const offsetTopics = [{ name: topic, partitionIndexes: [0, 1] }];
  return {
    8: [
      {
        groupId,
        generationIdOrMemberEpoch: -1,
        memberId: "",
        groupInstanceId: null,
        retentionTimeMs: -1n,
        topics: [
          {
            name: topic,
            partitions: [
              {
                partitionIndex: 0,
                committedOffset: 1n,
                committedLeaderEpoch: -1,
                commitTimestamp: -1n,
                committedMetadata: "fuzz-metadata",
              },
              {
                partitionIndex: 9,
                committedOffset: 5n,
                committedLeaderEpoch: 0,
                commitTimestamp: -1n,
                committedMetadata: null,
              },
            ],
          },
        ],
      },
    ],
    9: [
      {
        groupId,
        topics: offsetTopics,
        groups: [
          { groupId, memberId: null, memberEpoch: -1, topics: offsetTopics },
          { groupId: "fuzz-other", memberId: null, memberEpoch: -1, topics: null },
        ],
        requireStable: true,
      },
      { groupId, topics: null, groups: [{ groupId, memberId: null, memberEpoch: -1, topics: null }] },
    ],
    10: [
      { key: groupId, keyType: 0, coordinatorKeys: [groupId, "fuzz-other"] },
      { key: "fuzz-transaction", keyType: 1, coordinatorKeys: ["fuzz-transaction"] },
    ],
    11: [
      {
        groupId,
        sessionTimeoutMs: 10_000,
        rebalanceTimeoutMs: 200,
        memberId: "",
        groupInstanceId: null,
        protocolType: "consumer",
        protocols: [
          { name: "range", metadata: consumerSubscription(topic) },
          { name: "roundrobin", metadata: consumerSubscription(topic) },
        ],
        reason: "fuzz",
      },
      {
        groupId: "fuzz-static",
        sessionTimeoutMs: 10_000,
        rebalanceTimeoutMs: 200,
        memberId: "",
        groupInstanceId: "fuzz-instance",
        protocolType: "consumer",
        protocols: [{ name: "cooperative-sticky", metadata: consumerSubscription(topic) }],
        reason: null,
      },
    ],
    12: [{ groupId, generationId: 1, memberId: "fuzz-member", groupInstanceId: null }],
    13: [
      {
        groupId,
        memberId: "fuzz-member",
        members: [member("fuzz-member"), member("", "fuzz-instance")],
      },
    ],
    14: [
      {
        groupId,
        generationId: 1,
        memberId: "fuzz-member",
        groupInstanceId: null,
        protocolType: "consumer",
        protocolName: "range",
        assignments: [
          { memberId: "fuzz-member", assignment: Buffer.from([0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]) },
        ],
      },
    ],
    15: [{ groups: [groupId, "fuzz-static", "fuzz-missing"], includeAuthorizedOperations: true }],
    16: [
      { statesFilter: ["Stable", "Empty"], typesFilter: ["classic"] },
      { statesFilter: [], typesFilter: [] },
    ],
    42: [{ groupsNames: ["fuzz-other", "fuzz-missing"] }],
    47: [{ groupId, topics: [{ name: topic, partitions: [{ partitionIndex: 0 }, { partitionIndex: 1 }] }] }],
  };
}

/** ConsumerProtocolSubscription v0: version, topics, user data. */
function consumerSubscription(topic) {
  const name = Buffer.from(topic);
  const bytes = Buffer.alloc(2 + 4 + 2 + name.length + 4);
  bytes.writeInt16BE(0, 0);
  bytes.writeInt32BE(1, 2);
  bytes.writeInt16BE(name.length, 6);
  name.copy(bytes, 8);
  bytes.writeInt32BE(-1, 8 + name.length);
  return bytes;
}

export const ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA";

function produce(topic, partition, records, acks) {
  return {
    transactionalId: null,
    acks,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  };
}

/** One magic 1 message (offset, size, crc, magic, attributes, timestamp, key, value). */
function legacyMessageSet(now) {
  const value = Buffer.from("legacy-value");
  const body = Buffer.alloc(1 + 1 + 8 + 4 + 4 + value.length);
  body.writeInt8(1, 0);
  body.writeInt8(0, 1);
  body.writeBigInt64BE(BigInt(now), 2);
  body.writeInt32BE(-1, 10);
  body.writeInt32BE(value.length, 14);
  value.copy(body, 18);
  const message = Buffer.alloc(16 + body.length);
  message.writeBigInt64BE(0n, 0);
  message.writeInt32BE(4 + body.length, 8);
  message.writeUInt32BE(crc32(body), 12);
  body.copy(message, 16);
  return message;
}

function crc32(data) {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
