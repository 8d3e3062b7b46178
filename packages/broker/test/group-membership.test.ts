import { ErrorCode } from "@raftka/protocol";
import { describe, expect, it } from "vitest";
import type { SyncGroupResult } from "../src/group/classic-group.js";
import {
  commit,
  consumerProtocols,
  heartbeat,
  join,
  makeCore,
  Reply,
  stableGroup,
  subscription,
  sync,
} from "./group-harness.js";

describe("JoinGroup", () => {
  it("answers MEMBER_ID_REQUIRED with a fresh member id to a v4+ dynamic member, then accepts that id", () => {
    const h = makeCore();
    const first = join(h, { clientId: "app", requireKnownMemberId: true });
    expect(first.result.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
    expect(first.result.memberId).toMatch(/^app-uuid\d+$/);
    const second = join(h, { clientId: "app", memberId: first.result.memberId, requireKnownMemberId: true });
    expect(second.answered).toBe(false); // parked until the rebalance completes
    h.timers.advance(0);
    expect(second.result).toMatchObject({
      errorCode: ErrorCode.NONE,
      memberId: first.result.memberId,
      generationId: 1,
      protocolName: "range",
      protocolType: "consumer",
      leader: first.result.memberId,
    });
    expect(second.result.members.map((member) => member.memberId)).toEqual([first.result.memberId]);
  });

  it("joins older clients (no member id requirement) in one step", () => {
    const h = makeCore();
    const reply = join(h, { clientId: "old" });
    h.timers.advance(0);
    expect(reply.result.errorCode).toBe(ErrorCode.NONE);
    expect(reply.result.memberId).toMatch(/^old-/);
  });

  it("forgets a member id handed out with MEMBER_ID_REQUIRED that is never used within the session timeout", () => {
    const h = makeCore();
    const first = join(h, { requireKnownMemberId: true, sessionTimeoutMs: 10_000 });
    h.timers.advance(10_001);
    const late = join(h, { memberId: first.result.memberId, requireKnownMemberId: true });
    expect(late.result.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it("selects the protocol all members support with the most first-choice votes", () => {
    const h = makeCore({ groupInitialRebalanceDelayMs: 100 });
    const a = join(h, { protocols: consumerProtocols(["t"], ["range", "roundrobin", "sticky"]) });
    const b = join(h, { protocols: consumerProtocols(["t"], ["roundrobin", "range"]) });
    const c = join(h, { protocols: consumerProtocols(["t"], ["roundrobin", "sticky", "range"]) });
    h.timers.advance(100); // b and c arrived during the first delay: it is extended once
    expect(a.answered).toBe(false);
    h.timers.advance(100);
    // sticky is not supported by b; range gets 1 vote, roundrobin 2.
    for (const reply of [a, b, c]) expect(reply.result.protocolName).toBe("roundrobin");
    const leader = [a, b, c].find((reply) => reply.result.memberId === reply.result.leader)!;
    expect(leader.result.members).toHaveLength(3);
    // The leader gets each member's metadata for the chosen protocol, byte for byte.
    for (const member of leader.result.members) expect(member.metadata).toEqual(subscription(["t"]));
    for (const reply of [a, b, c].filter((each) => each !== leader)) expect(reply.result.members).toEqual([]);
  });

  it("counts a protocol a member lists twice once, so the group still selects one and admits others", () => {
    const h = makeCore({ groupInitialRebalanceDelayMs: 100 });
    const twice = join(h, { protocols: consumerProtocols(["t"], ["range", "range"]) });
    const other = join(h, { protocols: consumerProtocols(["t"], ["roundrobin", "range"]) });
    h.timers.advance(100);
    h.timers.advance(100);
    expect(other.result.errorCode).toBe(ErrorCode.NONE);
    for (const reply of [twice, other]) expect(reply.result.protocolName).toBe("range");
    // A newcomer with only roundrobin is refused: not every member supports it.
    const newcomer = join(h, { protocols: consumerProtocols(["t"], ["roundrobin"]) });
    expect(newcomer.result.errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  });

  it("rejects a member that shares no protocol or protocol type with the group", () => {
    const h = makeCore();
    stableGroup(h, ["a"]);
    expect(
      join(h, { protocols: consumerProtocols(["orders"], ["cooperative-sticky"]) }).result.errorCode,
    ).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    expect(join(h, { protocolType: "connect" }).result.errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    expect(join(h, { protocols: [] }).result.errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  });

  it("rejects session timeouts outside the configured bounds and empty group ids", () => {
    const h = makeCore({ groupMinSessionTimeoutMs: 6000, groupMaxSessionTimeoutMs: 30_000 });
    expect(join(h, { sessionTimeoutMs: 5999 }).result.errorCode).toBe(ErrorCode.INVALID_SESSION_TIMEOUT);
    expect(join(h, { sessionTimeoutMs: 30_001 }).result.errorCode).toBe(ErrorCode.INVALID_SESSION_TIMEOUT);
    expect(join(h, { groupId: "" }).result.errorCode).toBe(ErrorCode.INVALID_GROUP_ID);
  });

  it("answers UNKNOWN_MEMBER_ID to a member id the group does not know, and does not create the group", () => {
    const h = makeCore();
    expect(join(h, { memberId: "ghost" }).result.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(h.core.describeGroup("g").state).toBe("Dead");
  });

  it("answers GROUP_MAX_SIZE_REACHED to a member beyond group.max.size", () => {
    const h = makeCore({ groupMaxSize: 2 });
    stableGroup(h, ["a", "b"]);
    expect(join(h, {}).result.errorCode).toBe(ErrorCode.GROUP_MAX_SIZE_REACHED);
  });

  it("waits group.initial.rebalance.delay.ms for more members, extending while they keep coming", () => {
    const h = makeCore({ groupInitialRebalanceDelayMs: 3000 });
    const a = join(h, { rebalanceTimeoutMs: 60_000 });
    h.timers.advance(2000);
    const b = join(h, { rebalanceTimeoutMs: 60_000 });
    h.timers.advance(1500); // first delay over, but b arrived during it: one more delay
    expect(a.answered).toBe(false);
    h.timers.advance(1500);
    expect(a.answered).toBe(false);
    h.timers.advance(1500);
    expect(a.result.generationId).toBe(1);
    expect(b.result.generationId).toBe(1);
    expect(a.result.leader).toBe(b.result.leader);
  });

  it("bounds the initial delay by the rebalance timeout however many members arrive", () => {
    const h = makeCore({ groupInitialRebalanceDelayMs: 3000 });
    const first = join(h, { rebalanceTimeoutMs: 10_000 });
    let waited = 0;
    while (!first.answered && waited < 60_000) {
      join(h, { rebalanceTimeoutMs: 10_000 });
      h.timers.advance(1000);
      waited += 1000;
    }
    expect(first.answered).toBe(true);
    expect(waited).toBeLessThanOrEqual(13_000);
  });

  it("answers a follower that rejoins a stable group with unchanged metadata with the current generation", () => {
    const h = makeCore();
    const { memberIds, leader, generationId } = stableGroup(h, ["a", "b"]);
    const follower = memberIds.find((id) => id !== leader)!;
    const rejoin = join(h, { memberId: follower });
    expect(rejoin.result).toMatchObject({ errorCode: ErrorCode.NONE, generationId, leader, members: [] });
    expect(h.core.describeGroup("g").state).toBe("Stable");
  });

  it("starts a rebalance when the leader rejoins a stable group, and completes it once everyone rejoined", () => {
    const h = makeCore();
    const { memberIds, leader, generationId } = stableGroup(h, ["a", "b"]);
    const follower = memberIds.find((id) => id !== leader)!;
    const leaderJoin = join(h, { memberId: leader });
    expect(leaderJoin.answered).toBe(false);
    expect(heartbeat(h, follower, generationId)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    const followerJoin = join(h, { memberId: follower });
    expect(leaderJoin.result.generationId).toBe(generationId + 1);
    expect(followerJoin.result.generationId).toBe(generationId + 1);
  });
});

describe("SyncGroup", () => {
  it("hands out the leader's assignment only once it is durable in the offsets log", () => {
    const h = makeCore();
    const a = join(h, { clientId: "a" });
    const b = join(h, { clientId: "b" });
    h.timers.advance(0);
    const leaderId = a.result.leader;
    const followerId = [a, b].map((reply) => reply.result.memberId).find((id) => id !== leaderId)!;
    const followerSync = sync(h, followerId, 1);
    const leaderSync = sync(h, leaderId, 1, { [leaderId]: "L", [followerId]: "F" });
    expect(followerSync.answered || leaderSync.answered).toBe(false);
    expect(h.writes.pending).toHaveLength(1);
    h.writes.completeAll();
    expect(leaderSync.result).toMatchObject({ errorCode: ErrorCode.NONE, protocolName: "range" });
    expect(leaderSync.result.assignment.toString()).toBe("L");
    expect(followerSync.result.assignment.toString()).toBe("F");
    expect(h.core.describeGroup("g").state).toBe("Stable");
    // The stored group holds the assignment, so a restarted coordinator hands out the same one.
    const stored = h.writes.log.at(-1)!.record;
    expect(
      stored.kind === "group" && stored.value?.members.map((m) => m.assignment.toString()).sort(),
    ).toEqual(["F", "L"]);
  });

  it("passes assignment and metadata bytes through untouched (cooperative and custom assignors)", () => {
    const h = makeCore();
    const opaque = Buffer.from([0, 3, 0xff, 0x00, 0x7f, 0x80]);
    const reply = join(h, { protocols: [{ name: "cooperative-sticky", metadata: opaque }] });
    h.timers.advance(0);
    expect(reply.result.members[0]!.metadata).toEqual(opaque);
    const assignment = Buffer.from([9, 8, 7, 0, 1]);
    const syncReply = new Reply<SyncGroupResult>();
    h.core.syncGroup(
      {
        groupId: "g",
        generationId: 1,
        memberId: reply.result.memberId,
        groupInstanceId: null,
        protocolType: "consumer",
        protocolName: "cooperative-sticky",
        assignments: new Map([[reply.result.memberId, assignment]]),
      },
      h.timers.now,
      syncReply.callback,
    );
    h.writes.completeAll();
    expect(syncReply.result.assignment).toEqual(assignment);
  });

  it("gives members the leader left out an empty assignment", () => {
    const h = makeCore();
    const a = join(h, { clientId: "a" });
    const b = join(h, { clientId: "b" });
    h.timers.advance(0);
    const leaderId = a.result.leader;
    const followerId = [a, b].map((reply) => reply.result.memberId).find((id) => id !== leaderId)!;
    const followerSync = sync(h, followerId, 1);
    sync(h, leaderId, 1, { [leaderId]: "all" });
    h.writes.completeAll();
    expect(followerSync.result.errorCode).toBe(ErrorCode.NONE);
    expect(followerSync.result.assignment.length).toBe(0);
  });

  it("answers every parked SyncGroup with the mapped error when the assignment cannot be stored, then rebalances", () => {
    const h = makeCore();
    const a = join(h, { clientId: "a" });
    const b = join(h, { clientId: "b" });
    h.timers.advance(0);
    const leaderId = a.result.leader;
    const followerId = [a, b].map((reply) => reply.result.memberId).find((id) => id !== leaderId)!;
    const followerSync = sync(h, followerId, 1);
    const leaderSync = sync(h, leaderId, 1, { [leaderId]: "L", [followerId]: "F" });
    h.writes.completeAll(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    expect(leaderSync.result.errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    expect(followerSync.result.errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    expect(h.core.describeGroup("g").state).toBe("PreparingRebalance");
  });

  it("rejects a stale generation, an unknown member, and a sync while preparing a rebalance", () => {
    const h = makeCore();
    const { memberIds, leader, generationId } = stableGroup(h, ["a", "b"]);
    expect(sync(h, memberIds[0]!, generationId - 1).result.errorCode).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect(sync(h, "nobody", generationId).result.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(sync(h, "nobody", generationId, {}, { groupId: "other" }).result.errorCode).toBe(
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
    join(h, { memberId: leader });
    const follower = memberIds.find((id) => id !== leader)!;
    expect(sync(h, follower, generationId).result.errorCode).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
  });

  it("rejects a v5+ SyncGroup whose protocol type or name differs from the group's", () => {
    const h = makeCore();
    const { memberIds, generationId } = stableGroup(h, ["a"]);
    const reply = sync(h, memberIds[0]!, generationId);
    expect(reply.result.errorCode).toBe(ErrorCode.NONE);
    for (const [protocolType, protocolName] of [
      ["connect", null],
      [null, "roundrobin"],
    ] as const) {
      const mismatch = new Reply<SyncGroupResult>();
      h.core.syncGroup(
        {
          groupId: "g",
          generationId,
          memberId: memberIds[0]!,
          groupInstanceId: null,
          protocolType,
          protocolName,
          assignments: new Map(),
        },
        h.timers.now,
        mismatch.callback,
      );
      expect(mismatch.result.errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    }
  });

  it("removes members that never send SyncGroup within the rebalance timeout and rebalances without them", () => {
    const h = makeCore();
    const a = join(h, { clientId: "a", rebalanceTimeoutMs: 20_000 });
    const b = join(h, { clientId: "b", rebalanceTimeoutMs: 20_000 });
    h.timers.advance(0);
    const leaderId = a.result.leader;
    const silent = [a, b].map((reply) => reply.result.memberId).find((id) => id !== leaderId)!;
    sync(h, leaderId, 1, { [leaderId]: "L" });
    h.writes.completeAll();
    // Keep the leader alive while the silent member's sync deadline passes.
    for (let elapsed = 0; elapsed < 20_000; elapsed += 5000) {
      h.timers.advance(5000);
      heartbeat(h, leaderId, 1);
    }
    h.timers.advance(1);
    expect(h.core.snapshotGroup("g")!.members.map((member) => member.memberId)).toEqual([leaderId]);
    expect(heartbeat(h, leaderId, 1)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    expect(heartbeat(h, silent, 1)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });
});

describe("Heartbeat and session timeouts", () => {
  it("keeps members alive while they heartbeat and removes one that stops, rebalancing the rest", () => {
    const h = makeCore();
    const { memberIds, generationId } = stableGroup(h, ["a", "b", "c"]);
    const [alive1, alive2, dead] = memberIds as [string, string, string];
    for (let elapsed = 0; elapsed < 9000; elapsed += 3000) {
      h.timers.advance(3000);
      for (const id of memberIds) expect(heartbeat(h, id, generationId)).toBe(ErrorCode.NONE);
    }
    h.timers.advance(3000);
    expect(heartbeat(h, alive1, generationId)).toBe(ErrorCode.NONE);
    expect(heartbeat(h, alive2, generationId)).toBe(ErrorCode.NONE);
    h.timers.advance(7001); // dead's session (10 s) runs out
    expect(heartbeat(h, dead, generationId)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(heartbeat(h, alive1, generationId)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    const r1 = join(h, { memberId: alive1 });
    const r2 = join(h, { memberId: alive2 });
    expect(r1.result.generationId).toBe(generationId + 1);
    expect(r2.result.generationId).toBe(generationId + 1);
    const leader = [r1, r2].find((reply) => reply.result.memberId === reply.result.leader)!;
    expect(leader.result.members.map((member) => member.memberId).sort()).toEqual([alive1, alive2].sort());
    expect(h.events.some((event) => event.kind === "member-removed" && event.memberId === dead)).toBe(true);
  });

  it("answers ILLEGAL_GENERATION to a heartbeat from an old generation", () => {
    const h = makeCore();
    const { memberIds, generationId } = stableGroup(h, ["a"]);
    expect(heartbeat(h, memberIds[0]!, generationId + 1)).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect(heartbeat(h, memberIds[0]!, generationId - 1)).toBe(ErrorCode.ILLEGAL_GENERATION);
  });

  it("removes members that do not rejoin a rebalance within the rebalance timeout", () => {
    const h = makeCore();
    const { memberIds, leader, generationId } = stableGroup(h, ["a", "b"]);
    const follower = memberIds.find((id) => id !== leader)!;
    const leaderJoin = join(h, { memberId: leader, rebalanceTimeoutMs: 30_000 });
    // The follower keeps heartbeating (so its session holds) but never rejoins.
    for (let elapsed = 0; elapsed < 60_000 && !leaderJoin.answered; elapsed += 3000) {
      h.timers.advance(3000);
      heartbeat(h, follower, generationId);
    }
    expect(leaderJoin.result.generationId).toBe(generationId + 1);
    expect(leaderJoin.result.members.map((member) => member.memberId)).toEqual([leader]);
    expect(heartbeat(h, follower, generationId)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it("gives up a new member's JoinGroup after five minutes if the rebalance never completes", () => {
    const h = makeCore();
    const { memberIds, generationId } = stableGroup(h, ["a"]);
    // The existing member keeps heartbeating but never rejoins; the rebalance timeout is long.
    const newcomer = join(h, { rebalanceTimeoutMs: 10 * 60_000 });
    for (let elapsed = 0; elapsed < 5 * 60_000; elapsed += 3000) {
      h.timers.advance(3000);
      heartbeat(h, memberIds[0]!, generationId);
    }
    h.timers.advance(3000);
    expect(newcomer.result.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });
});

describe("LeaveGroup", () => {
  it("removes several members in one request (v3+) and answers each one", () => {
    const h = makeCore();
    const { memberIds, generationId } = stableGroup(h, ["a", "b", "c"]);
    const result = h.core.leaveGroup(
      "g",
      [
        { memberId: memberIds[0]!, groupInstanceId: null, reason: "shutdown" },
        { memberId: memberIds[1]!, groupInstanceId: null, reason: null },
        { memberId: "stranger", groupInstanceId: null, reason: null },
      ],
      h.timers.now,
    );
    expect(result.errorCode).toBe(ErrorCode.NONE);
    expect(result.members.map((member) => member.errorCode)).toEqual([
      ErrorCode.NONE,
      ErrorCode.NONE,
      ErrorCode.UNKNOWN_MEMBER_ID,
    ]);
    expect(heartbeat(h, memberIds[2]!, generationId)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    const rejoin = join(h, { memberId: memberIds[2]! });
    expect(rejoin.result.members.map((member) => member.memberId)).toEqual([memberIds[2]]);
  });

  it("empties the group when the last member leaves, keeping its offsets and storing the empty generation", () => {
    const h = makeCore();
    const { memberIds, generationId } = stableGroup(h, ["a"]);
    const committed = commit(h, {
      generationId,
      memberId: memberIds[0]!,
      offsets: [{ topic: "orders", partition: 0, offset: 42n }],
    });
    h.writes.completeAll();
    expect(committed.result[0]!.errorCode).toBe(ErrorCode.NONE);
    h.core.leaveGroup("g", [{ memberId: memberIds[0]!, groupInstanceId: null, reason: null }], h.timers.now);
    h.timers.advance(0);
    expect(h.core.describeGroup("g").state).toBe("Empty");
    h.writes.completeAll();
    const last = h.writes.log.at(-1)!.record;
    expect(last.kind === "group" && last.value?.members.length).toBe(0);
    expect(h.core.fetchOffsets("g", [{ topic: "orders", partition: 0 }], false).offsets[0]!.offset).toBe(42n);
  });

  it("answers UNKNOWN_MEMBER_ID per member for a group that does not exist", () => {
    const h = makeCore();
    const result = h.core.leaveGroup(
      "nope",
      [{ memberId: "m", groupInstanceId: null, reason: null }],
      h.timers.now,
    );
    expect(result).toEqual({
      errorCode: ErrorCode.NONE,
      members: [{ memberId: "m", groupInstanceId: null, errorCode: ErrorCode.UNKNOWN_MEMBER_ID }],
    });
  });
});

describe("static membership (KIP-345)", () => {
  function staticGroup(h: ReturnType<typeof makeCore>) {
    const a = join(h, { groupInstanceId: "instance-a", clientId: "a", sessionTimeoutMs: 30_000 });
    const b = join(h, { groupInstanceId: "instance-b", clientId: "b", sessionTimeoutMs: 30_000 });
    h.timers.advance(0);
    const leader = a.result.leader;
    const ids = { a: a.result.memberId, b: b.result.memberId };
    sync(
      h,
      leader,
      1,
      { [ids.a]: "A", [ids.b]: "B" },
      { groupInstanceId: leader === ids.a ? "instance-a" : "instance-b" },
    );
    sync(
      h,
      leader === ids.a ? ids.b : ids.a,
      1,
      {},
      { groupInstanceId: leader === ids.a ? "instance-b" : "instance-a" },
    );
    h.writes.completeAll();
    return { ids, leader, generationId: a.result.generationId };
  }

  it("lets a restarted static member take over its slot without a rebalance and fences the old member id", () => {
    const h = makeCore();
    const { ids, leader, generationId } = staticGroup(h);
    expect(h.core.describeGroup("g").state).toBe("Stable");
    const restarted = join(h, { groupInstanceId: "instance-b", clientId: "b", sessionTimeoutMs: 30_000 });
    expect(restarted.answered).toBe(false); // waits for the new member id to be durable
    h.writes.completeAll();
    expect(restarted.result).toMatchObject({ errorCode: ErrorCode.NONE, generationId, members: [] });
    expect(restarted.result.memberId).not.toBe(ids.b);
    // It is told the old leader id, so even a restarted leader would not run a pointless assignment.
    expect(restarted.result.leader).toBe(leader);
    expect(h.core.describeGroup("g").state).toBe("Stable");
    expect(h.core.snapshotGroup("g")!.generationId).toBe(generationId);
    const again = sync(h, restarted.result.memberId, generationId, {}, { groupInstanceId: "instance-b" });
    expect(again.result.assignment.toString()).toBe("B");
    // The zombie with the old member id is fenced everywhere.
    expect(heartbeat(h, ids.b, generationId, { groupInstanceId: "instance-b" })).toBe(
      ErrorCode.FENCED_INSTANCE_ID,
    );
    expect(sync(h, ids.b, generationId, {}, { groupInstanceId: "instance-b" }).result.errorCode).toBe(
      ErrorCode.FENCED_INSTANCE_ID,
    );
    const zombieCommit = commit(h, {
      generationId,
      memberId: ids.b,
      groupInstanceId: "instance-b",
      offsets: [{ topic: "orders", partition: 0, offset: 1n }],
    });
    expect(zombieCommit.result[0]!.errorCode).toBe(ErrorCode.FENCED_INSTANCE_ID);
    expect(join(h, { memberId: ids.b, groupInstanceId: "instance-b" }).result.errorCode).toBe(
      ErrorCode.FENCED_INSTANCE_ID,
    );
    // The other member never noticed.
    const other = ids.a;
    expect(heartbeat(h, other, generationId, { groupInstanceId: "instance-a" })).toBe(ErrorCode.NONE);
  });

  it("tells a restarted static leader on JoinGroup v9+ that it leads but may skip the assignment", () => {
    const h = makeCore();
    const { ids, leader, generationId } = staticGroup(h);
    const instance = leader === ids.a ? "instance-a" : "instance-b";
    const restarted = join(h, {
      groupInstanceId: instance,
      supportSkippingAssignment: true,
      sessionTimeoutMs: 30_000,
    });
    h.writes.completeAll();
    expect(restarted.result).toMatchObject({ errorCode: ErrorCode.NONE, generationId, skipAssignment: true });
    expect(restarted.result.leader).toBe(restarted.result.memberId);
    expect(restarted.result.members).toHaveLength(2);
  });

  it("rebalances when a restarted static member changes which protocol the group would select", () => {
    const h = makeCore();
    const { generationId } = staticGroup(h);
    const restarted = join(h, {
      groupInstanceId: "instance-b",
      protocols: consumerProtocols(["orders"], ["roundrobin"]),
      sessionTimeoutMs: 30_000,
    });
    expect(h.core.describeGroup("g").state).toBe("PreparingRebalance");
    expect(restarted.answered).toBe(false);
    expect(h.core.snapshotGroup("g")!.generationId).toBe(generationId);
  });

  it("rebalances when a static member rejoins while the group awaits the leader's assignment", () => {
    const h = makeCore();
    const a = join(h, { groupInstanceId: "instance-a", sessionTimeoutMs: 30_000 });
    join(h, { groupInstanceId: "instance-b", sessionTimeoutMs: 30_000 });
    h.timers.advance(0);
    expect(h.core.describeGroup("g").state).toBe("CompletingRebalance");
    join(h, { groupInstanceId: "instance-b", sessionTimeoutMs: 30_000 });
    expect(h.core.describeGroup("g").state).toBe("PreparingRebalance");
    expect(a.result.generationId).toBe(1);
  });

  it("keeps a static member that misses a rebalance in the group", () => {
    const h = makeCore();
    const { ids, leader } = staticGroup(h);
    const leaderInstance = leader === ids.a ? "instance-a" : "instance-b";
    const other = leader === ids.a ? ids.b : ids.a;
    const otherInstance = leader === ids.a ? "instance-b" : "instance-a";
    const leaderJoin = join(h, { memberId: leader, groupInstanceId: leaderInstance });
    // The other static member heartbeats (it is alive) but does not rejoin within the rebalance timeout.
    for (let elapsed = 0; elapsed <= 60_000 && !leaderJoin.answered; elapsed += 3000) {
      expect(heartbeat(h, other, 1, { groupInstanceId: otherInstance })).toBe(
        ErrorCode.REBALANCE_IN_PROGRESS,
      );
      h.timers.advance(3000);
    }
    expect(leaderJoin.result.generationId).toBe(2);
    expect(leaderJoin.result.members.map((member) => member.memberId).sort()).toEqual([ids.a, ids.b].sort());
  });

  it("answers UNKNOWN_MEMBER_ID to a known member id presented with an unknown instance id", () => {
    const h = makeCore();
    const { ids, generationId } = staticGroup(h);
    expect(heartbeat(h, ids.a, generationId, { groupInstanceId: "instance-x" })).toBe(
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
  });

  it("removes a static member by instance id alone (administrative LeaveGroup)", () => {
    const h = makeCore();
    const { ids, generationId } = staticGroup(h);
    const result = h.core.leaveGroup(
      "g",
      [{ memberId: "", groupInstanceId: "instance-b", reason: null }],
      h.timers.now,
    );
    expect(result.members[0]!.errorCode).toBe(ErrorCode.NONE);
    expect(heartbeat(h, ids.b, generationId, { groupInstanceId: "instance-b" })).toBe(
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
    const missing = h.core.leaveGroup(
      "g",
      [{ memberId: "", groupInstanceId: "instance-z", reason: null }],
      h.timers.now,
    );
    expect(missing.members[0]!.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it("puts the old member id back and reports the error when the new one cannot be stored", () => {
    const h = makeCore();
    const { ids, generationId } = staticGroup(h);
    const restarted = join(h, { groupInstanceId: "instance-b", sessionTimeoutMs: 30_000 });
    h.writes.completeAll(ErrorCode.KAFKA_STORAGE_ERROR);
    expect(restarted.result.errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    expect(heartbeat(h, ids.b, generationId, { groupInstanceId: "instance-b" })).toBe(ErrorCode.NONE);
  });
});
