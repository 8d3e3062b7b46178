import { readdir } from "node:fs/promises";
import { join } from "node:path";
import {
  ConsumerProtocolSubscriptionCodec,
  ErrorCode,
  encodeVersionedData,
  type KafkaConnection,
} from "@raftka/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { findCoordinatorReady, type GroupsBroker, startGroupsBroker } from "./groups-broker.js";
import { batch, createTopic, produceRequest } from "./helpers.js";

const subscription = (topics: string[]) =>
  encodeVersionedData(ConsumerProtocolSubscriptionCodec, 0, { topics, userData: null });

let running: GroupsBroker | undefined;
afterEach(async () => {
  await running?.cleanup();
  running = undefined;
});

async function joinAndSync(
  connection: KafkaConnection,
  groupId: string,
  version: { join: number; sync: number } = { join: 5, sync: 3 },
): Promise<{ memberId: string; generationId: number }> {
  let memberId = "";
  for (;;) {
    const joined = await connection.send(11, version.join, {
      groupId,
      sessionTimeoutMs: 10_000,
      rebalanceTimeoutMs: 20_000,
      memberId,
      groupInstanceId: null,
      protocolType: "consumer",
      protocols: [{ name: "range", metadata: subscription(["orders"]) }],
      reason: null,
    });
    if (joined.errorCode === ErrorCode.MEMBER_ID_REQUIRED) {
      memberId = joined.memberId;
      continue;
    }
    expect(joined.errorCode).toBe(ErrorCode.NONE);
    const synced = await connection.send(14, version.sync, {
      groupId,
      generationId: joined.generationId,
      memberId: joined.memberId,
      groupInstanceId: null,
      protocolType: "consumer",
      protocolName: "range",
      assignments: [{ memberId: joined.memberId, assignment: Buffer.from("everything") }],
    });
    expect(synced.errorCode).toBe(ErrorCode.NONE);
    expect(synced.assignment.toString()).toBe("everything");
    return { memberId: joined.memberId, generationId: joined.generationId };
  }
}

describe("group coordinator over the wire", () => {
  it("creates __consumer_offsets on the first FindCoordinator and then names this node, also for batched keys", async () => {
    running = await startGroupsBroker();
    const connection = await running.connect();
    const first = await connection.send(10, 0, { key: "g" });
    expect(first.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    await findCoordinatorReady(connection, "g");
    const single = await connection.send(10, 2, { key: "g", keyType: 0 });
    expect(single).toMatchObject({ errorCode: 0, nodeId: 0, host: expect.any(String), port: running.port });
    const batched = await connection.send(10, 4, { keyType: 0, coordinatorKeys: ["a", "b"] });
    expect(batched.coordinators!.map((entry) => [entry.key, entry.errorCode, entry.port])).toEqual([
      ["a", 0, running.port],
      ["b", 0, running.port],
    ]);
    const transaction = await connection.send(10, 4, { keyType: 1, coordinatorKeys: ["tx", ""] });
    expect(transaction.coordinators!.map((entry) => entry.errorCode)).toEqual([0, ErrorCode.INVALID_REQUEST]);
    const badType = await connection.send(10, 1, { key: "g", keyType: 7 });
    expect(badType.errorCode).toBe(ErrorCode.INVALID_REQUEST);
    expect(badType.errorMessage).toMatch(/key type 7/);
  });

  it("runs a group through every API version clients use, and keeps its offsets across a restart", async () => {
    running = await startGroupsBroker();
    let connection = await running.connect();
    await createTopic(connection, "orders", 2);
    await findCoordinatorReady(connection, "g");
    const member = await joinAndSync(connection, "g");
    expect(
      await connection.send(12, 3, {
        groupId: "g",
        generationId: member.generationId,
        memberId: member.memberId,
        groupInstanceId: null,
      }),
    ).toMatchObject({ errorCode: 0 });

    // kafka-python commits with v2 (retention time), librdkafka with v7 (instance id), kafkajs with v5.
    const committed = await connection.send(8, 7, {
      groupId: "g",
      generationIdOrMemberEpoch: member.generationId,
      memberId: member.memberId,
      groupInstanceId: null,
      topics: [
        {
          name: "orders",
          partitions: [
            { partitionIndex: 0, committedOffset: 42n, committedLeaderEpoch: 0, committedMetadata: "hello" },
            { partitionIndex: 5, committedOffset: 1n, committedLeaderEpoch: -1, committedMetadata: null },
          ],
        },
        {
          name: "no-such-topic",
          partitions: [
            { partitionIndex: 0, committedOffset: 1n, committedLeaderEpoch: -1, committedMetadata: null },
          ],
        },
      ],
    });
    expect(committed.topics.map((topic) => topic.partitions.map((partition) => partition.errorCode))).toEqual(
      [[ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION], [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]],
    );
    const simple = await connection.send(8, 2, {
      groupId: "simple-consumer",
      generationIdOrMemberEpoch: -1,
      memberId: "",
      retentionTimeMs: -1n,
      topics: [
        { name: "orders", partitions: [{ partitionIndex: 1, committedOffset: 7n, committedMetadata: null }] },
      ],
    });
    expect(simple.topics[0]!.partitions[0]!.errorCode).toBe(0);

    const describeBefore = await connection.send(15, 5, { groups: ["g"], includeAuthorizedOperations: true });
    expect(describeBefore.groups[0]).toMatchObject({
      groupState: "Stable",
      protocolType: "consumer",
      protocolData: "range",
    });
    expect(describeBefore.groups[0]!.members[0]!.memberAssignment.toString()).toBe("everything");

    running = await running.restart();
    connection = await running.connect();
    await findCoordinatorReady(connection, "g");
    // The stable group comes back: the member carries on in its generation without rejoining.
    expect(
      await connection.send(12, 3, {
        groupId: "g",
        generationId: member.generationId,
        memberId: member.memberId,
        groupInstanceId: null,
      }),
    ).toMatchObject({ errorCode: 0 });
    // OffsetFetch v8: several groups at once, one of them unknown.
    const fetched = await connection.send(9, 8, {
      groups: [
        { groupId: "g", topics: [{ name: "orders", partitionIndexes: [0, 1] }] },
        { groupId: "simple-consumer", topics: null },
        { groupId: "never-seen", topics: [{ name: "orders", partitionIndexes: [0] }] },
      ],
      requireStable: true,
    });
    expect(
      fetched.groups!.map((group) => [
        group.groupId,
        group.errorCode,
        group.topics.flatMap((topic) =>
          topic.partitions.map((partition) => [
            topic.name,
            partition.partitionIndex,
            partition.committedOffset,
            partition.metadata,
          ]),
        ),
      ]),
    ).toEqual([
      [
        "g",
        0,
        [
          ["orders", 0, 42n, "hello"],
          ["orders", 1, -1n, ""],
        ],
      ],
      ["simple-consumer", 0, [["orders", 1, 7n, ""]]],
      ["never-seen", 0, [["orders", 0, -1n, ""]]],
    ]);
    // kafka-python's OffsetFetch v1 (no top-level error field).
    const v1 = await connection.send(9, 1, {
      groupId: "g",
      topics: [{ name: "orders", partitionIndexes: [0] }],
    });
    expect(v1.topics![0]!.partitions[0]).toMatchObject({ committedOffset: 42n, errorCode: 0 });

    const listed = await connection.send(16, 4, { statesFilter: ["Stable"] });
    expect(listed.groups.map((group) => [group.groupId, group.groupState])).toEqual([["g", "Stable"]]);

    // LeaveGroup v3 batch; then the group is empty and can be deleted with its offsets.
    const left = await connection.send(13, 3, {
      groupId: "g",
      members: [
        { memberId: member.memberId, groupInstanceId: null },
        { memberId: "someone-else", groupInstanceId: null },
      ],
    });
    expect(left.members!.map((entry) => entry.errorCode)).toEqual([0, ErrorCode.UNKNOWN_MEMBER_ID]);
    await expect
      .poll(async () => (await connection.send(15, 0, { groups: ["g"] })).groups[0]!.groupState)
      .toBe("Empty");
    const deleted = await connection.send(42, 1, { groupsNames: ["g", "never-seen"] });
    expect(deleted.results.map((result) => [result.groupId, result.errorCode])).toEqual([
      ["g", 0],
      ["never-seen", ErrorCode.GROUP_ID_NOT_FOUND],
    ]);
    const afterDelete = await connection.send(9, 5, { groupId: "g", topics: null });
    expect(afterDelete.topics).toEqual([]);
  });

  it("answers a JoinGroup parked in a rebalance with NOT_COORDINATOR as soon as the broker shuts down", async () => {
    running = await startGroupsBroker({ settings: { "shutdown.timeout.ms": 60_000 } });
    const connection = await running.connect();
    await findCoordinatorReady(connection, "parked");
    const member = await joinAndSync(connection, "parked");
    // A second member's join parks until the first rejoins, which it never does (rebalance timeout 20 s).
    const other = await running.connect();
    const join = (memberId: string) =>
      other.send(11, 5, {
        groupId: "parked",
        sessionTimeoutMs: 10_000,
        rebalanceTimeoutMs: 20_000,
        memberId,
        groupInstanceId: null,
        protocolType: "consumer",
        protocols: [{ name: "range", metadata: subscription(["orders"]) }],
      });
    const first = await join("");
    expect(first.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
    const parked = join(first.memberId);
    const heartbeat = () =>
      connection.send(12, 3, {
        groupId: "parked",
        generationId: member.generationId,
        memberId: member.memberId,
        groupInstanceId: null,
      });
    await expect.poll(async () => (await heartbeat()).errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    // Without the answer the drain would hold the shutdown until the rebalance resolved another way
    // (the first member's session expiring), and the join would then succeed instead.
    await running.broker.shutdown();
    expect((await parked).errorCode).toBe(ErrorCode.NOT_COORDINATOR);
  });

  it("reports consumer lag per group and partition to the metrics", async () => {
    running = await startGroupsBroker();
    const connection = await running.connect();
    await createTopic(connection, "lagging", 1);
    await connection.send(0, 7, produceRequest("lagging", 0, batch(["a", "b", "c", "d", "e"])));
    await findCoordinatorReady(connection, "slow");
    await connection.send(8, 2, {
      groupId: "slow",
      generationIdOrMemberEpoch: -1,
      memberId: "",
      retentionTimeMs: -1n,
      topics: [
        {
          name: "lagging",
          partitions: [{ partitionIndex: 0, committedOffset: 2n, committedMetadata: null }],
        },
      ],
    });
    const scrape = await running.metrics.render();
    const lag = scrape
      .split("\n")
      .find(
        (line) =>
          line.startsWith("raftka_consumer_group_lag") &&
          line.includes('group="slow"') &&
          !line.startsWith("#"),
      );
    expect(lag).toMatch(/ 3$/);
  });

  it("answers JoinGroup v0 (no member-id round trip) and LeaveGroup v0 with Kafka's single error", async () => {
    running = await startGroupsBroker();
    const connection = await running.connect();
    await findCoordinatorReady(connection, "old");
    const member = await joinAndSync(connection, "old", { join: 0, sync: 0 });
    expect(member.generationId).toBe(1);
    expect((await connection.send(13, 0, { groupId: "old", memberId: "stranger" })).errorCode).toBe(
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
    expect((await connection.send(13, 1, { groupId: "old", memberId: member.memberId })).errorCode).toBe(0);
  });

  it("deletes offsets of an empty group with OffsetDelete and reports unknown topics", async () => {
    running = await startGroupsBroker();
    const connection = await running.connect();
    await createTopic(connection, "orders", 1);
    await findCoordinatorReady(connection, "simple");
    await connection.send(8, 2, {
      groupId: "simple",
      generationIdOrMemberEpoch: -1,
      memberId: "",
      retentionTimeMs: -1n,
      topics: [
        { name: "orders", partitions: [{ partitionIndex: 0, committedOffset: 3n, committedMetadata: null }] },
      ],
    });
    const deleted = await connection.send(47, 0, {
      groupId: "simple",
      topics: [
        { name: "orders", partitions: [{ partitionIndex: 0 }] },
        { name: "missing", partitions: [{ partitionIndex: 0 }] },
      ],
    });
    expect(deleted.errorCode).toBe(0);
    expect(deleted.topics.map((topic) => topic.partitions[0]!.errorCode)).toEqual([
      0,
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ]);
    const fetched = await connection.send(9, 5, { groupId: "simple", topics: null });
    expect(fetched.topics).toEqual([]);
  });

  it("handles requests pipelined on one connection in order: a fetch or delete sees the commit sent before it", async () => {
    running = await startGroupsBroker();
    const connection = await running.connect();
    await createTopic(connection, "orders", 1);
    await findCoordinatorReady(connection, "pipelined");
    const commit = (offset: bigint) =>
      connection.send(8, 8, {
        groupId: "pipelined",
        generationIdOrMemberEpoch: -1,
        memberId: "",
        groupInstanceId: null,
        topics: [
          {
            name: "orders",
            partitions: [
              {
                partitionIndex: 0,
                committedOffset: offset,
                committedLeaderEpoch: -1,
                committedMetadata: null,
              },
            ],
          },
        ],
      });
    const fetchCommitted = async (requireStable: boolean) => {
      const fetched = await connection.send(9, 7, {
        groupId: "pipelined",
        topics: [{ name: "orders", partitionIndexes: [0] }],
        requireStable,
      });
      const partition = fetched.topics![0]!.partitions[0]!;
      return { offset: partition.committedOffset, errorCode: partition.errorCode };
    };
    for (let offset = 1n; offset <= 10n; offset++) {
      // Sent back to back, not awaited in between: Kafka answers them one after the other.
      const [, plain, stable] = await Promise.all([
        commit(offset),
        fetchCommitted(false),
        fetchCommitted(true),
      ]);
      expect(plain).toEqual({ offset, errorCode: ErrorCode.NONE });
      expect(stable).toEqual({ offset, errorCode: ErrorCode.NONE });
    }
    const [, deleted, after] = await Promise.all([
      commit(11n),
      connection.send(47, 0, {
        groupId: "pipelined",
        topics: [{ name: "orders", partitions: [{ partitionIndex: 0 }] }],
      }),
      fetchCommitted(false),
    ]);
    expect(deleted.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE);
    expect(after.offset).toBe(-1n);
  });

  it("compacts __consumer_offsets by copying the latest records forward, and restores the same offsets after", async () => {
    running = await startGroupsBroker({
      groups: { offsetsTopicSegmentBytes: 16 * 1024, compactionIntervalMs: 3_600_000 },
      settings: { "offsets.topic.num.partitions": 1 },
    });
    let connection = await running.connect();
    await createTopic(connection, "orders", 4);
    await findCoordinatorReady(connection, "busy");
    for (let round = 0; round < 150; round++) {
      const response = await connection.send(8, 2, {
        groupId: "busy",
        generationIdOrMemberEpoch: -1,
        memberId: "",
        retentionTimeMs: -1n,
        topics: [
          {
            name: "orders",
            partitions: [0, 1, 2, 3].map((partitionIndex) => ({
              partitionIndex,
              committedOffset: BigInt(round * 10 + partitionIndex),
              committedMetadata: `round ${round} ${"x".repeat(50)}`,
            })),
          },
        ],
      });
      expect(response.topics[0]!.partitions.every((partition) => partition.errorCode === 0)).toBe(true);
    }
    const log = running.broker.services.partitions.partition("__consumer_offsets", 0)!;
    const sizeBefore = log.stats().sizeBytes;
    const segmentsBefore = (await readdir(join(running.dataDir, "__consumer_offsets-0"))).filter((name) =>
      name.endsWith(".log"),
    ).length;
    expect(segmentsBefore).toBeGreaterThan(2);
    await running.coordinator.compactPartition(0);
    expect(log.logStartOffset).toBeGreaterThan(0);
    expect(log.stats().sizeBytes).toBeLessThan(sizeBefore / 2);

    running = await running.restart();
    connection = await running.connect();
    await findCoordinatorReady(connection, "busy");
    const fetched = await connection.send(9, 5, { groupId: "busy", topics: null });
    expect(
      fetched.topics![0]!.partitions.map((partition) => [
        partition.partitionIndex,
        partition.committedOffset,
        partition.metadata,
      ]),
    ).toEqual(
      [0, 1, 2, 3].map((partition) => [partition, BigInt(1490 + partition), `round 149 ${"x".repeat(50)}`]),
    );
  });
});

describe("deleted topics", () => {
  it("forget their committed offsets in every group, so a topic re-created under the name starts fresh", async () => {
    running = await startGroupsBroker();
    let connection = await running.connect();
    await createTopic(connection, "recreated", 2);
    await createTopic(connection, "kept");
    await findCoordinatorReady(connection, "readers");
    const commit = (topic: string, offset: bigint) =>
      connection.send(8, 2, {
        groupId: "readers",
        generationIdOrMemberEpoch: -1,
        memberId: "",
        retentionTimeMs: -1n,
        topics: [
          {
            name: topic,
            partitions: [{ partitionIndex: 0, committedOffset: offset, committedMetadata: null }],
          },
        ],
      });
    expect((await commit("recreated", 7n)).topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE);
    expect((await commit("kept", 3n)).topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE);
    const deleted = await connection.send(20, 6, {
      timeoutMs: 5000,
      topics: [{ name: "recreated", topicId: "AAAAAAAAAAAAAAAAAAAAAA" }],
    });
    expect(deleted.responses[0]!.errorCode).toBe(ErrorCode.NONE);
    await createTopic(connection, "recreated", 2);
    const committed = async () => {
      const fetched = await connection.send(9, 5, { groupId: "readers", topics: null });
      return Object.fromEntries(
        (fetched.topics ?? []).flatMap((topic) =>
          topic.partitions.map((partition) => [
            `${topic.name}-${partition.partitionIndex}`,
            partition.committedOffset,
          ]),
        ),
      );
    };
    expect(await committed()).toEqual({ "kept-0": 3n });
    // The tombstones are in the offsets log: a restart replays no offset for the deleted topic.
    running = await running.restart();
    connection = await running.connect();
    await findCoordinatorReady(connection, "readers");
    expect(await committed()).toEqual({ "kept-0": 3n });
  });
});

describe("__consumer_offsets", () => {
  it("keeps its partition count: CreatePartitions is refused, since groups hash over it", async () => {
    running = await startGroupsBroker();
    const connection = await running.connect();
    await findCoordinatorReady(connection, "hashed");
    const grown = await connection.send(37, 1, {
      topics: [{ name: "__consumer_offsets", count: 60, assignments: null }],
      timeoutMs: 5000,
      validateOnly: false,
    });
    expect(grown.results[0]!.errorCode).toBe(ErrorCode.INVALID_PARTITIONS);
    expect(grown.results[0]!.errorMessage).toMatch(/internal.*fixed/);
  });
});
