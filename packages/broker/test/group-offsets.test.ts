import { ErrorCode } from "@raftka/protocol";
import { describe, expect, it } from "vitest";
import { groupPartition, javaStringHashCode } from "../src/group/group-partition.js";
import {
  decodeOffsetsLogRecord,
  encodeOffsetsLogKey,
  encodeOffsetsLogValue,
  OffsetsLogRecordError,
} from "../src/group/offsets-log-records.js";
import {
  commit,
  heartbeat,
  join,
  makeCore,
  PendingWrites,
  Reply,
  stableGroup,
  sync,
  VirtualTimers,
} from "./group-harness.js";

const MINUTE = 60_000;

describe("OffsetCommit and OffsetFetch", () => {
  it("stores commits of a consumer without group management (generation -1) with their metadata", () => {
    const h = makeCore();
    const reply = commit(h, {
      groupId: "simple",
      offsets: [
        { topic: "orders", partition: 0, offset: 10n, metadata: "checkpoint A", leaderEpoch: 3 },
        { topic: "orders", partition: 1, offset: 20n },
      ],
    });
    expect(reply.answered).toBe(false); // answered only once durable
    h.writes.completeAll();
    expect(reply.result.map((entry) => entry.errorCode)).toEqual([ErrorCode.NONE, ErrorCode.NONE]);
    const fetched = h.core.fetchOffsets(
      "simple",
      [
        { topic: "orders", partition: 0 },
        { topic: "orders", partition: 1 },
        { topic: "orders", partition: 2 },
      ],
      false,
    );
    expect(fetched.offsets).toEqual([
      { topic: "orders", partition: 0, offset: 10n, leaderEpoch: 3, metadata: "checkpoint A", errorCode: 0 },
      { topic: "orders", partition: 1, offset: 20n, leaderEpoch: -1, metadata: "", errorCode: 0 },
      { topic: "orders", partition: 2, offset: -1n, leaderEpoch: -1, metadata: "", errorCode: 0 },
    ]);
    // All partitions at once (OffsetFetch with null topics).
    expect(h.core.fetchOffsets("simple", null, false).offsets.map((entry) => entry.offset)).toEqual([
      10n,
      20n,
    ]);
  });

  it("does not store a commit whose write fails, and says why", () => {
    const h = makeCore();
    const reply = commit(h, { offsets: [{ topic: "orders", partition: 0, offset: 5n }] });
    h.writes.completeAll(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    expect(reply.result[0]!.errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    expect(h.core.fetchOffsets("g", [{ topic: "orders", partition: 0 }], false).offsets[0]!.offset).toBe(-1n);
    const tooBig = commit(h, { offsets: [{ topic: "orders", partition: 0, offset: 5n }] });
    h.writes.completeAll(ErrorCode.MESSAGE_TOO_LARGE);
    expect(tooBig.result[0]!.errorCode).toBe(ErrorCode.INVALID_COMMIT_OFFSET_SIZE);
  });

  it("answers UNSTABLE_OFFSET_COMMIT to a require-stable fetch while a commit is in flight", () => {
    const h = makeCore();
    commit(h, { offsets: [{ topic: "orders", partition: 0, offset: 5n }] });
    const during = h.core.fetchOffsets("g", [{ topic: "orders", partition: 0 }], true);
    expect(during.offsets[0]!.errorCode).toBe(ErrorCode.UNSTABLE_OFFSET_COMMIT);
    h.writes.completeAll();
    expect(h.core.fetchOffsets("g", [{ topic: "orders", partition: 0 }], true).offsets[0]!.offset).toBe(5n);
  });

  it("drops a commit still being written when OffsetDelete removes its partition, also from the log", () => {
    const h = makeCore();
    const committed = commit(h, { offsets: [{ topic: "orders", partition: 0, offset: 5n }] });
    const deleted = new Reply<{ errorCode: number; partitions: { errorCode: number }[] }>();
    h.core.deleteOffsets("g", [{ topic: "orders", partition: 0 }], deleted.callback);
    h.writes.completeAll();
    expect(committed.result[0]!.errorCode).toBe(ErrorCode.NONE);
    expect(deleted.result.partitions[0]!.errorCode).toBe(ErrorCode.NONE);
    expect(h.core.fetchOffsets("g", [{ topic: "orders", partition: 0 }], true).offsets[0]).toMatchObject({
      offset: -1n,
      errorCode: ErrorCode.NONE,
    });
    // The tombstone follows the commit in the log: a replay restores no offset either.
    const replayed = makeCore({}, { loadAll: false });
    const partition = replayed.core.partitionFor("g");
    replayed.core.beginLoading(partition);
    for (const entry of h.writes.log)
      if (entry.partition === partition) replayed.core.replay(partition, entry.record);
    replayed.core.finishLoading(partition, replayed.timers.now);
    expect(replayed.core.fetchOffsets("g", null, false).offsets).toEqual([]);
    // A commit made after the delete counts again.
    commit(h, { offsets: [{ topic: "orders", partition: 0, offset: 6n }] });
    h.writes.completeAll();
    expect(h.core.fetchOffsets("g", null, false).offsets[0]!.offset).toBe(6n);
  });

  it("rejects metadata longer than offset.metadata.max.bytes for that partition only", () => {
    const h = makeCore({ offsetMetadataMaxBytes: 8 });
    const reply = commit(h, {
      offsets: [
        { topic: "orders", partition: 0, offset: 1n, metadata: "123456789" },
        { topic: "orders", partition: 1, offset: 1n, metadata: "12345678" },
      ],
    });
    h.writes.completeAll();
    expect(reply.result.map((entry) => entry.errorCode)).toEqual([
      ErrorCode.OFFSET_METADATA_TOO_LARGE,
      ErrorCode.NONE,
    ]);
  });

  it("accepts commits from members of the current generation and rejects everyone else", () => {
    const h = makeCore();
    const { memberIds, generationId } = stableGroup(h, ["a", "b"]);
    const ok = commit(h, {
      generationId,
      memberId: memberIds[0]!,
      offsets: [{ topic: "orders", partition: 0, offset: 1n }],
    });
    h.writes.completeAll();
    expect(ok.result[0]!.errorCode).toBe(ErrorCode.NONE);
    const stale = commit(h, {
      generationId: generationId - 1,
      memberId: memberIds[0]!,
      offsets: [{ topic: "orders", partition: 0, offset: 2n }],
    });
    expect(stale.result[0]!.errorCode).toBe(ErrorCode.ILLEGAL_GENERATION);
    const stranger = commit(h, {
      generationId,
      memberId: "x",
      offsets: [{ topic: "orders", partition: 0, offset: 2n }],
    });
    expect(stranger.result[0]!.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    // A simple consumer may not overwrite the offsets of a group that has members.
    const simple = commit(h, { offsets: [{ topic: "orders", partition: 0, offset: 2n }] });
    expect(simple.result[0]!.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    const unknownGroup = commit(h, {
      groupId: "none",
      generationId: 3,
      memberId: "m",
      offsets: [{ topic: "t", partition: 0, offset: 1n }],
    });
    expect(unknownGroup.result[0]!.errorCode).toBe(ErrorCode.ILLEGAL_GENERATION);
  });

  it("accepts commits while preparing a rebalance but not while awaiting the new assignment", () => {
    const h = makeCore();
    const { memberIds, leader, generationId } = stableGroup(h, ["a", "b"]);
    const follower = memberIds.find((id) => id !== leader)!;
    const leaderJoin = join(h, { memberId: leader });
    const during = commit(h, {
      generationId,
      memberId: follower,
      offsets: [{ topic: "orders", partition: 0, offset: 7n }],
    });
    h.writes.completeAll();
    expect(during.result[0]!.errorCode).toBe(ErrorCode.NONE);
    join(h, { memberId: follower });
    expect(leaderJoin.result.generationId).toBe(generationId + 1);
    const awaiting = commit(h, {
      generationId: generationId + 1,
      memberId: follower,
      offsets: [{ topic: "orders", partition: 0, offset: 8n }],
    });
    expect(awaiting.result[0]!.errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
  });

  it("keeps the last of several commits to the same partition", () => {
    const h = makeCore();
    for (const offset of [1n, 2n, 3n]) commit(h, { offsets: [{ topic: "orders", partition: 0, offset }] });
    h.writes.completeAll();
    expect(h.core.fetchOffsets("g", [{ topic: "orders", partition: 0 }], false).offsets[0]!.offset).toBe(3n);
  });
});

describe("coordinator status", () => {
  it("answers COORDINATOR_LOAD_IN_PROGRESS while the group's partition loads, as Kafka does per API", () => {
    const h = makeCore({}, { loadAll: false });
    const partition = h.core.partitionFor("g");
    h.core.beginLoading(partition);
    expect(join(h).result.errorCode).toBe(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    // SyncGroup answers REBALANCE_IN_PROGRESS (older clients do not expect LOAD_IN_PROGRESS there).
    expect(sync(h, "m", 1).result.errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    // A heartbeat cannot be judged while loading: the member carries on.
    expect(heartbeat(h, "m", 1)).toBe(ErrorCode.NONE);
    expect(commit(h, { offsets: [{ topic: "t", partition: 0, offset: 1n }] }).result[0]!.errorCode).toBe(
      ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    );
    expect(h.core.fetchOffsets("g", null, false).errorCode).toBe(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    expect(h.core.describeGroup("g").errorCode).toBe(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    expect(h.core.listGroups([]).errorCode).toBe(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    expect(h.core.leaveGroup("g", [], h.timers.now).errorCode).toBe(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
  });

  it("answers NOT_COORDINATOR for groups of partitions this node does not lead", () => {
    const h = makeCore({}, { loadAll: false });
    expect(join(h).result.errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    expect(heartbeat(h, "m", 1)).toBe(ErrorCode.NOT_COORDINATOR);
    expect(h.core.fetchOffsets("g", null, false).errorCode).toBe(ErrorCode.NOT_COORDINATOR);
  });

  it("answers COORDINATOR_NOT_AVAILABLE before start and after shutdown", () => {
    const h = makeCore();
    h.core.shutdown(h.timers.now);
    expect(join(h).result.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    expect(h.core.listGroups([]).errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
  });

  it("answers parked JoinGroups with NOT_COORDINATOR when the partition moves away", () => {
    const h = makeCore({ groupInitialRebalanceDelayMs: 3000 });
    const parked = join(h);
    h.core.unloadPartition(h.core.partitionFor("g"), h.timers.now);
    expect(parked.result.errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    h.timers.advance(10_000); // the join timer of the unloaded group must not resurrect anything
    expect(h.core.snapshotGroup("g")).toBeUndefined();
  });
});

describe("restart: replaying the offsets log", () => {
  it("rebuilds stable groups, members, assignments and offsets, so members carry on in the same generation", () => {
    const timers = new VirtualTimers();
    const writes = new PendingWrites(timers);
    const before = makeCore({}, { timers, writes });
    const { memberIds, generationId } = stableGroup(before, ["a", "b"]);
    commit(before, {
      generationId,
      memberId: memberIds[0]!,
      offsets: [{ topic: "orders", partition: 0, offset: 100n, metadata: "m" }],
    });
    commit(before, { groupId: "simple", offsets: [{ topic: "orders", partition: 1, offset: 7n }] });
    writes.completeAll();
    const expected = before.core.snapshotGroup("g");

    const after = makeCore({}, { loadAll: false, timers: new VirtualTimers() });
    after.timers.now = timers.now;
    for (let partition = 0; partition < 4; partition++) {
      after.core.beginLoading(partition);
      for (const entry of writes.log)
        if (entry.partition === partition) after.core.replay(partition, entry.record);
      after.core.finishLoading(partition, after.timers.now);
    }
    expect(after.core.snapshotGroup("g")).toEqual(expected);
    expect(after.core.describeGroup("g").state).toBe("Stable");
    for (const memberId of memberIds) expect(heartbeat(after, memberId, generationId)).toBe(ErrorCode.NONE);
    const syncAgain = sync(after, memberIds[1]!, generationId);
    expect(syncAgain.result.assignment.toString()).toBe(`assignment-of-${memberIds[1]}`);
    expect(after.core.fetchOffsets("simple", null, false).offsets[0]!.offset).toBe(7n);
    // Members that do not come back are still expired after their session timeout; offsets stay.
    after.timers.advance(10_001);
    expect(after.core.describeGroup("g").state).toBe("Empty");
    expect(after.core.fetchOffsets("g", null, false).offsets[0]!.offset).toBe(100n);
  });

  it("applies tombstones while loading: deleted groups and offsets stay deleted", () => {
    const h = makeCore({}, { loadAll: false });
    const partition = h.core.partitionFor("g");
    h.core.beginLoading(partition);
    h.core.replay(partition, {
      kind: "offset",
      groupId: "g",
      topic: "t",
      partition: 0,
      value: offsetValue(5n),
    });
    h.core.replay(partition, {
      kind: "offset",
      groupId: "g",
      topic: "t",
      partition: 1,
      value: offsetValue(6n),
    });
    h.core.replay(partition, { kind: "offset", groupId: "g", topic: "t", partition: 0, value: null });
    h.core.finishLoading(partition, h.timers.now);
    expect(
      h.core.fetchOffsets("g", null, false).offsets.map((entry) => [entry.partition, entry.offset]),
    ).toEqual([[1, 6n]]);
  });
});

describe("ListGroups, DescribeGroups, DeleteGroups, OffsetDelete", () => {
  it("lists groups with their state, filtered by state names in any case", () => {
    const h = makeCore();
    stableGroup(h, ["a"], { groupId: "stable" });
    commit(h, { groupId: "offsets-only", offsets: [{ topic: "t", partition: 0, offset: 1n }] });
    h.writes.completeAll();
    const all = h.core.listGroups([]);
    expect(all.groups.map((group) => [group.groupId, group.state, group.protocolType]).sort()).toEqual([
      ["offsets-only", "Empty", ""],
      ["stable", "Stable", "consumer"],
    ]);
    expect(h.core.listGroups(["stable"]).groups.map((group) => group.groupId)).toEqual(["stable"]);
    expect(h.core.listGroups(["Empty", "Dead"]).groups.map((group) => group.groupId)).toEqual([
      "offsets-only",
    ]);
  });

  it("describes a stable group with member metadata and assignments, and an unknown group as Dead", () => {
    const h = makeCore();
    const { memberIds } = stableGroup(h, ["a"]);
    const description = h.core.describeGroup("g");
    expect(description).toMatchObject({
      errorCode: 0,
      state: "Stable",
      protocolType: "consumer",
      protocolName: "range",
    });
    expect(description.members[0]).toMatchObject({
      memberId: memberIds[0],
      clientId: "a",
      clientHost: "/127.0.0.1",
    });
    expect(description.members[0]!.assignment.toString()).toBe(`assignment-of-${memberIds[0]}`);
    expect(h.core.describeGroup("unknown")).toMatchObject({ errorCode: 0, state: "Dead", members: [] });
  });

  it("deletes only empty groups, writing tombstones for the group and its offsets", () => {
    const h = makeCore();
    const { memberIds, generationId } = stableGroup(h, ["a"], { groupId: "busy" });
    commit(h, { groupId: "idle", offsets: [{ topic: "t", partition: 0, offset: 1n }] });
    commit(h, {
      groupId: "busy",
      generationId,
      memberId: memberIds[0]!,
      offsets: [{ topic: "t", partition: 0, offset: 1n }],
    });
    h.writes.completeAll();
    const reply = new Reply<{ groupId: string; errorCode: number }[]>();
    h.core.deleteGroups(["idle", "busy", "missing"], h.timers.now, reply.callback);
    expect(reply.answered).toBe(false);
    h.writes.completeAll();
    expect(reply.result).toEqual([
      { groupId: "idle", errorCode: ErrorCode.NONE },
      { groupId: "busy", errorCode: ErrorCode.NON_EMPTY_GROUP },
      { groupId: "missing", errorCode: ErrorCode.GROUP_ID_NOT_FOUND },
    ]);
    expect(h.core.fetchOffsets("idle", null, false).offsets).toEqual([]);
    const tombstone = h.writes.log.at(-1)!.record;
    expect(tombstone).toMatchObject({ kind: "offset", groupId: "idle", value: null });
  });

  it("deletes offsets of topics a live consumer group does not subscribe to, and refuses subscribed ones", () => {
    const h = makeCore();
    const { memberIds, generationId } = stableGroup(h, ["a"], { topics: ["orders"] });
    commit(h, {
      generationId,
      memberId: memberIds[0]!,
      offsets: [
        { topic: "orders", partition: 0, offset: 1n },
        { topic: "old-topic", partition: 0, offset: 1n },
      ],
    });
    h.writes.completeAll();
    const reply = new Reply<{ errorCode: number; partitions: { topic: string; errorCode: number }[] }>();
    h.core.deleteOffsets(
      "g",
      [
        { topic: "orders", partition: 0 },
        { topic: "old-topic", partition: 0 },
      ],
      reply.callback,
    );
    h.writes.completeAll();
    expect(reply.result.errorCode).toBe(ErrorCode.NONE);
    expect(reply.result.partitions.map((entry) => [entry.topic, entry.errorCode])).toEqual([
      ["orders", ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC],
      ["old-topic", ErrorCode.NONE],
    ]);
    expect(h.core.fetchOffsets("g", null, false).offsets.map((entry) => entry.topic)).toEqual(["orders"]);
    const missing = new Reply<{ errorCode: number }>();
    h.core.deleteOffsets("nope", [{ topic: "t", partition: 0 }], missing.callback);
    expect(missing.result.errorCode).toBe(ErrorCode.GROUP_ID_NOT_FOUND);
  });

  it("refuses OffsetDelete for a non-empty group that is not a consumer group", () => {
    const h = makeCore();
    join(h, { protocolType: "connect", protocols: [{ name: "default", metadata: Buffer.from("x") }] });
    h.timers.advance(0);
    const reply = new Reply<{ errorCode: number }>();
    h.core.deleteOffsets("g", [{ topic: "t", partition: 0 }], reply.callback);
    expect(reply.result.errorCode).toBe(ErrorCode.NON_EMPTY_GROUP);
  });
});

describe("offsets.retention.minutes", () => {
  it("expires an empty group's offsets a retention period after it became empty, then forgets the group", () => {
    const h = makeCore({ offsetsRetentionMs: 60 * MINUTE, offsetsRetentionCheckIntervalMs: 10 * MINUTE });
    const { memberIds, generationId } = stableGroup(h, ["a"]);
    commit(h, {
      generationId,
      memberId: memberIds[0]!,
      offsets: [{ topic: "orders", partition: 0, offset: 9n }],
    });
    h.writes.completeAll();
    heartbeatForever(h, memberIds[0]!, generationId, 90 * MINUTE); // an old commit, but the group is live: kept
    expect(h.core.fetchOffsets("g", null, false).offsets).toHaveLength(1);
    h.core.leaveGroup("g", [{ memberId: memberIds[0]!, groupInstanceId: null, reason: null }], h.timers.now);
    h.timers.advance(0);
    h.writes.completeAll();
    h.timers.advance(50 * MINUTE);
    expect(h.core.fetchOffsets("g", null, false).offsets).toHaveLength(1);
    h.timers.advance(20 * MINUTE);
    h.writes.completeAll();
    expect(h.core.fetchOffsets("g", null, false).offsets).toHaveLength(0);
    expect(h.core.describeGroup("g").state).toBe("Dead");
    const tombstones = h.writes.log.slice(-2).map((entry) => entry.record);
    expect(tombstones).toEqual([
      { kind: "offset", groupId: "g", topic: "orders", partition: 0, value: null },
      { kind: "group", groupId: "g", value: null },
    ]);
  });

  it("expires a stable consumer group's offsets only for topics it no longer subscribes to", () => {
    const h = makeCore({ offsetsRetentionMs: 60 * MINUTE, offsetsRetentionCheckIntervalMs: 10 * MINUTE });
    const { memberIds, generationId } = stableGroup(h, ["a"], { topics: ["orders"] });
    commit(h, {
      generationId,
      memberId: memberIds[0]!,
      offsets: [
        { topic: "orders", partition: 0, offset: 1n },
        { topic: "retired", partition: 0, offset: 1n },
      ],
    });
    h.writes.completeAll();
    heartbeatForever(h, memberIds[0]!, generationId, 70 * MINUTE);
    expect(h.core.fetchOffsets("g", null, false).offsets.map((entry) => entry.topic)).toEqual(["orders"]);
  });

  it("honours an explicit per-commit retention time (OffsetCommit v2-v4)", () => {
    const h = makeCore({ offsetsRetentionMs: 600 * MINUTE, offsetsRetentionCheckIntervalMs: MINUTE });
    commit(h, { retentionTimeMs: 5 * MINUTE, offsets: [{ topic: "t", partition: 0, offset: 1n }] });
    h.writes.completeAll();
    h.timers.advance(4 * MINUTE);
    expect(h.core.fetchOffsets("g", null, false).offsets).toHaveLength(1);
    h.timers.advance(2 * MINUTE);
    expect(h.core.fetchOffsets("g", null, false).offsets).toHaveLength(0);
  });

  it("stores a commit whose retention or timestamp is near the int64 limit, saturating instead of overflowing", () => {
    const h = makeCore({ offsetsRetentionMs: 600 * MINUTE, offsetsRetentionCheckIntervalMs: MINUTE });
    const largest = Number(2n ** 63n - 1n); // what the handler makes of Long.MAX_VALUE
    const reply = commit(h, {
      retentionTimeMs: largest,
      offsets: [{ topic: "t", partition: 0, offset: 1n, commitTimestamp: largest }],
    });
    expect(h.writes.completeAll()).toBe(1); // through the real record codec
    expect(reply.result.map((entry) => entry.errorCode)).toEqual([ErrorCode.NONE]);
    h.timers.advance(700 * MINUTE);
    expect(h.core.fetchOffsets("g", null, false).offsets.map((entry) => entry.offset)).toEqual([1n]);
  });
});

describe("offsets log records", () => {
  it("round-trips every record kind through Kafka's key/value layouts", () => {
    const records = [
      { kind: "offset" as const, groupId: "g", topic: "t", partition: 3, value: offsetValue(42n) },
      {
        kind: "offset" as const,
        groupId: "g",
        topic: "t",
        partition: 4,
        value: { ...offsetValue(43n), expireTimestamp: 99 },
      },
      { kind: "offset" as const, groupId: "g", topic: "t", partition: 3, value: null },
      {
        kind: "group" as const,
        groupId: "g",
        value: {
          protocolType: "consumer",
          generationId: 7,
          protocolName: "range",
          leaderId: "m1",
          currentStateTimestamp: 12345,
          members: [
            {
              memberId: "m1",
              groupInstanceId: "i1",
              clientId: "c",
              clientHost: "/10.0.0.1",
              rebalanceTimeoutMs: 300000,
              sessionTimeoutMs: 10000,
              subscription: Buffer.from([1, 2]),
              assignment: Buffer.from([3]),
            },
          ],
        },
      },
      { kind: "group" as const, groupId: "g", value: null },
    ];
    for (const record of records) {
      const decoded = decodeOffsetsLogRecord(encodeOffsetsLogKey(record), encodeOffsetsLogValue(record));
      if (record.kind === "offset" && record.value?.expireTimestamp === 99) {
        // v1 carries no leader epoch: it comes back as -1.
        expect(decoded).toEqual({ ...record, value: { ...record.value, leaderEpoch: -1 } });
      } else {
        expect(decoded).toEqual(record);
      }
    }
  });

  it("reads Kafka's own byte layout (OffsetCommitValue v3 written by a Kafka broker)", () => {
    const key = Buffer.concat([
      Buffer.from([0, 1]),
      Buffer.from([0, 2]),
      Buffer.from("cg"),
      Buffer.from([0, 1]),
      Buffer.from("t"),
      Buffer.from([0, 0, 0, 5]),
    ]);
    const value = Buffer.alloc(2 + 8 + 4 + 2 + 8);
    value.writeInt16BE(3, 0);
    value.writeBigInt64BE(77n, 2);
    value.writeInt32BE(2, 10);
    value.writeInt16BE(0, 14);
    value.writeBigInt64BE(1700000000000n, 16);
    expect(decodeOffsetsLogRecord(key, value)).toEqual({
      kind: "offset",
      groupId: "cg",
      topic: "t",
      partition: 5,
      value: {
        offset: 77n,
        leaderEpoch: 2,
        metadata: "",
        commitTimestamp: 1700000000000,
        expireTimestamp: null,
      },
    });
  });

  it("names the problem in corrupt or unknown records instead of crashing", () => {
    expect(() => decodeOffsetsLogRecord(null, null)).toThrow(OffsetsLogRecordError);
    expect(() => decodeOffsetsLogRecord(Buffer.from([0, 9, 0, 0]), null)).toThrow(/key version 9 is unknown/);
    expect(() => decodeOffsetsLogRecord(Buffer.from([0, 1, 0, 50]), null)).toThrow(/corrupt/);
    const key = encodeOffsetsLogKey({ kind: "group", groupId: "g", value: null });
    expect(() => decodeOffsetsLogRecord(key, Buffer.from([0, 3, 0]))).toThrow(OffsetsLogRecordError);
  });
});

describe("group partition", () => {
  it("places groups on the same __consumer_offsets partition as Kafka does", () => {
    // Expected values printed by Java 17 (`s.hashCode()`, then Kafka's Utils.abs(h) % 50).
    expect(javaStringHashCode("my-group")).toBe(-1_906_497_762);
    expect(groupPartition("my-group", 50)).toBe(12);
    expect(groupPartition("console-consumer-12345", 50)).toBe(6);
    expect(javaStringHashCode("")).toBe(0);
    // Integer.MIN_VALUE, which Utils.abs maps to 0 rather than overflowing.
    expect(javaStringHashCode("polygenelubricants")).toBe(-2_147_483_648);
    expect(groupPartition("polygenelubricants", 50)).toBe(0);
    expect(() => groupPartition("g", 0)).toThrow(/offsets.topic.num.partitions/);
  });
});

function offsetValue(offset: bigint) {
  return { offset, leaderEpoch: 1, metadata: "meta", commitTimestamp: 1000, expireTimestamp: null };
}

/** Advances time in heartbeat-sized steps, keeping one member alive. */
function heartbeatForever(
  h: ReturnType<typeof makeCore>,
  memberId: string,
  generationId: number,
  ms: number,
): void {
  for (let elapsed = 0; elapsed < ms; elapsed += 3000) {
    h.timers.advance(3000);
    heartbeat(h, memberId, generationId);
    h.writes.completeAll();
  }
}
