import { describe, expect, it } from "vitest";
import { MemoryRaftLog, MultiRaftDriver, makeConfig, NO_NODE, RaftCore, SeededRandom } from "../src/index.js";
import { positions, TestCluster } from "./harness.js";

describe("ReadIndex", () => {
  it("on the leader: answers with the commit index only after a majority confirmed leadership", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.elect(1);
    cluster.propose(1, "x", 3);
    cluster.deliverAll();
    const leader = cluster.core(1);
    leader.readIndex(41);
    cluster.flush(1);
    expect(cluster.node(1).reads).toEqual([]);
    cluster.deliverAll();
    expect(cluster.node(1).reads).toEqual([{ context: 41, ok: true, index: leader.commitIndex }]);
  });

  it("on a deposed leader: never answers, fails once it steps down", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.elect(1);
    cluster.isolate(1);
    cluster.core(1).readIndex(7);
    for (let tick = 0; tick < 30; tick++) {
      cluster.tick(1);
      cluster.deliverAll();
    }
    expect(cluster.node(1).reads).toEqual([{ context: 7, ok: false, reason: "LEADER_CHANGED" }]);
  });

  it("waits for the new leader's first commit before answering (its commit index may lag)", () => {
    const cluster = new TestCluster([1, 2, 3]);
    const leader = cluster.core(1);
    for (let tick = 0; tick < 40 && !leader.isLeader(); tick++) {
      leader.tick();
      cluster.deliverAll((m) => m.type === "append");
    }
    expect(leader.isLeader()).toBe(true);
    leader.readIndex(9);
    // Heartbeats get through but the noop does not: leadership is confirmed, the commit index is not.
    for (let tick = 0; tick < 6; tick++) {
      leader.tick();
      cluster.deliverAll((m) => m.type === "append");
    }
    expect(cluster.node(1).reads).toEqual([]);
    cluster.run(3);
    expect(leader.commitIndex).toBe(0);
    expect(cluster.node(1).reads).toEqual([{ context: 9, ok: true, index: 0 }]);
  });

  it("on a follower: asks the leader, then returns the leader's commit index", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.elect(1);
    cluster.propose(1, "x", 4);
    cluster.deliverAll();
    const follower = cluster.core(3);
    follower.readIndex(5);
    cluster.deliverAll();
    expect(cluster.node(3).reads).toEqual([{ context: 5, ok: true, index: cluster.core(1).commitIndex }]);
  });

  it("on a follower without a leader: fails at once with NO_LEADER", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.core(2).readIndex(1);
    cluster.flush(2);
    expect(cluster.node(2).reads).toEqual([{ context: 1, ok: false, reason: "NO_LEADER" }]);
  });

  it("a forwarded read that gets no answer times out", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.elect(1);
    cluster.cutLink(3, 1);
    cluster.core(3).readIndex(8);
    for (let tick = 0; tick < 12; tick++) {
      cluster.tick(3);
      cluster.deliverAll();
    }
    expect(cluster.node(3).reads).toEqual([{ context: 8, ok: false, reason: "TIMED_OUT" }]);
  });

  it("lease reads (opt-in) answer without a round trip while the lease holds", () => {
    const cluster = new TestCluster([1, 2, 3], { leaseReads: true, quiesce: false });
    // Freshly started nodes refuse votes for an election timeout (a lease granted before a restart holds).
    cluster.run(12);
    cluster.elect(1);
    cluster.run(12);
    const leader = cluster.core(1);
    leader.readIndex(3);
    cluster.flush(1);
    expect(cluster.node(1).reads).toEqual([{ context: 3, ok: true, index: leader.commitIndex }]);
  });
});

describe("leadership transfer", () => {
  it("hands leadership to an up-to-date voter, which wins a higher term", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.elect(1);
    const term = cluster.core(1).currentTerm;
    expect(cluster.core(1).transferLeadership(3)).toEqual({ ok: true });
    cluster.deliverAll();
    expect(cluster.leaders()).toEqual([3]);
    expect(cluster.core(3).currentTerm).toBe(term + 1);
  });

  it("catches a lagging target up first, and refuses proposals meanwhile", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.elect(1);
    cluster.cutLink(1, 3);
    cluster.propose(1, "missed by 3", 2);
    cluster.deliverAll();
    cluster.heal();
    expect(cluster.core(1).transferLeadership(3)).toEqual({ ok: true });
    expect(cluster.propose(1, "during transfer")).toMatchObject({ ok: false, error: "TRANSFER_IN_PROGRESS" });
    cluster.run(3);
    expect(cluster.leaders()).toEqual([3]);
    expect(positions(cluster.node(3).log)).toBe(positions(cluster.node(1).log));
  });

  it("gives up after an election timeout if the target never answers", () => {
    const cluster = new TestCluster([1, 2, 3], { quiesce: false });
    cluster.elect(1);
    cluster.isolate(3);
    cluster.core(1).transferLeadership(3);
    cluster.tick(1, 11);
    cluster.deliverAll();
    expect(cluster.core(1).isLeader()).toBe(true);
    expect(cluster.propose(1, "after the transfer gave up").ok).toBe(true);
  });

  it("refuses targets that cannot lead", () => {
    const cluster = new TestCluster([1, 2, 3], {}, makeConfig([1, 2], [3]));
    cluster.elect(1);
    expect(cluster.core(1).transferLeadership(3)).toEqual({
      ok: false,
      error: "node 3 is not a voter (voters [1,2] learners [3]); pick a voter",
    });
    expect(cluster.core(2).transferLeadership(1)).toMatchObject({ ok: false });
  });
});

describe("membership changes", () => {
  it("adds a learner, lets it catch up, promotes it, then removes an old voter", () => {
    const cluster = new TestCluster([1, 2, 3], {}, makeConfig([1, 2]));
    cluster.elect(1);
    cluster.propose(1, "before", 3);
    cluster.deliverAll();
    expect(cluster.core(1).proposeConfChange({ type: "addLearner", node: 3 })).toMatchObject({ ok: true });
    cluster.run(5);
    expect(cluster.core(3).membership).toEqual(makeConfig([1, 2], [3]));
    expect(positions(cluster.node(3).log)).toBe(positions(cluster.node(1).log));
    expect(cluster.core(1).proposeConfChange({ type: "promoteLearner", node: 3 })).toMatchObject({
      ok: true,
    });
    cluster.run(5);
    expect(cluster.core(2).membership).toEqual(makeConfig([1, 2, 3]));
    expect(cluster.core(1).proposeConfChange({ type: "removeNode", node: 2 })).toMatchObject({ ok: true });
    cluster.run(5);
    expect(cluster.core(1).membership).toEqual(makeConfig([1, 3]));
    // Node 2 is out: the remaining two keep committing without it.
    cluster.isolate(2);
    const result = cluster.propose(1, "without 2");
    cluster.run(3);
    expect(result.ok).toBe(true);
    expect(cluster.core(3).commitIndex).toBe(cluster.core(1).lastOffset);
  });

  it("refuses a second change while one is uncommitted, and changes before the leader's first commit", () => {
    const cluster = new TestCluster([1, 2, 3, 4]);
    cluster.elect(1);
    cluster.isolate(2);
    cluster.isolate(3);
    cluster.isolate(4);
    expect(cluster.core(1).proposeConfChange({ type: "removeNode", node: 4 })).toMatchObject({ ok: true });
    expect(cluster.core(1).proposeConfChange({ type: "removeNode", node: 3 })).toMatchObject({
      ok: false,
      error: "CONFIG_CHANGE_IN_PROGRESS",
    });
    const fresh = new TestCluster([1, 2, 3]);
    const leader = fresh.core(1);
    for (let tick = 0; tick < 40 && !leader.isLeader(); tick++) {
      leader.tick();
      fresh.deliverAll((m) => m.type === "append");
    }
    expect(leader.proposeConfChange({ type: "removeNode", node: 3 })).toMatchObject({
      ok: false,
      error: "LEADER_NOT_READY",
    });
  });

  it("explains invalid changes", () => {
    const cluster = new TestCluster([1, 2]);
    cluster.elect(1);
    expect(cluster.core(1).proposeConfChange({ type: "promoteLearner", node: 2 })).toEqual({
      ok: false,
      error: "INVALID_CONFIG_CHANGE",
      leader: 1,
      detail: "node 2 is not a learner (voters [1,2] learners []); add it with addLearner first",
    });
    expect(cluster.core(1).proposeConfChange({ type: "addLearner", node: -4 })).toMatchObject({
      ok: false,
      error: "INVALID_CONFIG_CHANGE",
    });
  });

  it("a leader that removes itself steps down once the removal commits", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.elect(1);
    expect(cluster.core(1).proposeConfChange({ type: "removeNode", node: 1 })).toMatchObject({ ok: true });
    cluster.deliverAll();
    expect(cluster.core(1).isLeader()).toBe(false);
    cluster.run(40);
    const leaders = cluster.leaders();
    expect(leaders).toHaveLength(1);
    expect(leaders[0]).not.toBe(1);
    // The removed node never campaigns again.
    expect(cluster.core(1).currentRole).toBe("follower");
  });

  it("a follower truncating an uncommitted config entry goes back to the previous membership", () => {
    const cluster = new TestCluster([1, 2, 3, 4, 5]);
    cluster.elect(1);
    for (const id of [3, 4, 5]) cluster.cutLink(1, id);
    cluster.cutLink(2, 1);
    cluster.core(1).proposeConfChange({ type: "removeNode", node: 5 });
    cluster.deliverAll();
    expect(cluster.core(2).membership).toEqual(makeConfig([1, 2, 3, 4]));
    cluster.heal();
    cluster.isolate(1);
    cluster.isolate(2);
    for (const id of [3, 4, 5]) cluster.tick(id, 25);
    cluster.deliverAll();
    cluster.heal();
    cluster.isolate(1);
    cluster.run(40);
    const leader = cluster.leaders().find((id) => id !== 1);
    expect(leader).toBeDefined();
    expect(leader).not.toBe(2);
    expect(cluster.core(2).membership).toEqual(makeConfig([1, 2, 3, 4, 5]));
    expect(positions(cluster.node(2).log)).toBe(positions(cluster.node(leader!).log));
  });
});

describe("quiescence", () => {
  it("an idle group stops ticking work on every node, and wakes on a proposal", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.elect(1);
    cluster.run(6);
    for (const id of [1, 2, 3]) expect(cluster.core(id).isQuiesced()).toBe(true);
    const sent = cluster.node(1).sentNow.length;
    cluster.run(100);
    expect(cluster.node(1).sentNow.length).toBe(sent);
    expect(cluster.leaders()).toEqual([1]);
    cluster.propose(1, "wake up");
    cluster.deliverAll();
    expect(cluster.core(1).isQuiesced()).toBe(false);
    expect(cluster.core(2).isQuiesced()).toBe(false);
    expect(cluster.core(2).commitIndex).toBe(cluster.core(1).lastOffset);
    cluster.run(6);
    expect(cluster.core(2).isQuiesced()).toBe(true);
  });

  it("the node driver ticks only awake groups, batches all groups' messages per peer, and wakes groups whose leader node went silent", () => {
    const config = makeConfig([1, 2, 3]);
    const drivers = new Map<number, MultiRaftDriver>();
    const logs = new Map<string, MemoryRaftLog>();
    const random = new SeededRandom(3);
    for (const id of [1, 2, 3]) {
      const driver = new MultiRaftDriver({
        nodeId: id,
        peers: [1, 2, 3],
        livenessTimeoutTicks: 10,
        nodeHeartbeatTicks: 2,
      });
      for (let group = 0; group < 50; group++) {
        const stream = random.fork(id * 100 + group);
        const log = new MemoryRaftLog(config);
        logs.set(`${id}/${group}`, log);
        driver.addGroup(
          new RaftCore({ id, group, random: () => stream.next() }, log, {
            term: 0,
            vote: NO_NODE,
            commit: -1,
          }),
        );
      }
      drivers.set(id, driver);
    }
    let framesPerRound: number[] = [];
    const step = (down: Set<number> = new Set()) => {
      framesPerRound = [];
      for (let pass = 0; pass < 20; pass++) {
        let moved = false;
        for (const [id, driver] of drivers) {
          if (down.has(id)) continue;
          const batch = driver.collect();
          for (const { group, ready } of batch.readies) logs.get(`${id}/${group}`)!.applyReady(ready);
          framesPerRound.push(batch.outbound.size);
          const done = driver.complete(batch.id);
          for (const [to, messages] of [...batch.outbound, ...done.outbound]) {
            if (down.has(to)) continue;
            drivers.get(to)!.receive(id, messages);
            moved = true;
          }
        }
        if (!moved) break;
      }
    };
    for (let tick = 0; tick < 80; tick++) {
      for (const driver of drivers.values()) driver.tick();
      step();
    }
    for (const driver of drivers.values()) expect(driver.awakeGroupCount()).toBe(0);
    // At most one frame per peer per collect, however many groups talk.
    expect(Math.max(...framesPerRound)).toBeLessThanOrEqual(2);
    const ledByTwo = [...drivers.get(1)!.groups()].filter((core) => core.currentLeader === 2).length;
    expect(ledByTwo).toBeGreaterThan(0);
    // Node 2 goes silent: its groups wake up on the survivors and elect new leaders.
    const down = new Set([2]);
    for (let tick = 0; tick < 80; tick++) {
      for (const [id, driver] of drivers) if (!down.has(id)) driver.tick();
      step(down);
    }
    for (const core of drivers.get(1)!.groups()) {
      expect(core.currentLeader === 1 || core.currentLeader === 3).toBe(true);
    }
  });

  it("the node driver keeps a written batch's readies until the fsync round ends without their entries", () => {
    const driver = singleNodeDriver();
    const log = new MemoryRaftLog(makeConfig([1]));
    const core = new RaftCore({ id: 1, group: 7, random: () => 0.5 }, log, {
      term: 0,
      vote: NO_NODE,
      commit: -1,
    });
    driver.addGroup(core);
    core.campaignNow();
    driver.touch(7);
    const first = driver.collect();
    for (const { ready } of first.readies) log.applyReady(ready);
    driver.complete(first.id);
    core.propose(new TextEncoder().encode("request bytes"), 1);
    driver.touch(7);
    const batch = driver.collect();
    expect(batch.readies[0]!.ready.entries).toHaveLength(1);
    log.applyReady(batch.readies[0]!.ready);
    // The entries went to storage at collect; the round's completion must not pin their payloads.
    const done = driver.complete(batch.id);
    expect(done.readies[0]!.ready.entries).toEqual([]);
    expect(done.readies[0]!.ready.seq).toBe(batch.readies[0]!.ready.seq);
    expect(core.commitIndex).toBe(core.lastOffset);
  });

  it("the node driver completes a later fsync round first for the groups the earlier one does not hold", () => {
    const driver = singleNodeDriver();
    const groups = [7, 8].map((group) => {
      const log = new MemoryRaftLog(makeConfig([1]));
      const core = new RaftCore({ id: 1, group, random: () => 0.5 }, log, {
        term: 0,
        vote: NO_NODE,
        commit: -1,
      });
      driver.addGroup(core);
      core.campaignNow();
      driver.touch(group);
      return { group, log, core };
    });
    const [seven, eight] = groups as [(typeof groups)[number], (typeof groups)[number]];
    const collect = () => {
      const batch = driver.collect();
      for (const { group, ready } of batch.readies)
        groups.find((g) => g.group === group)!.log.applyReady(ready);
      return batch;
    };
    // Until neither group has anything left to persist from its election.
    for (let round = 0; round < 5; round++) {
      const batch = collect();
      if (batch.readies.length === 0) break;
      driver.complete(batch.id);
    }
    const propose = (target: typeof seven) => {
      target.core.propose(new TextEncoder().encode("x"), 1);
      driver.touch(target.group);
    };
    propose(seven);
    const earlier = collect();
    propose(seven);
    propose(eight);
    const later = collect();
    expect(later.readies.map((item) => item.group).sort()).toEqual([7, 8]);
    const sevenCommitBefore = seven.core.commitIndex;

    // Only the later round is durable: group 8 commits; group 7's later ready waits for its earlier one.
    const first = driver.completeRange(earlier.id, later.id);
    expect(first.readies.map((item) => item.group)).toEqual([8]);
    expect(eight.core.commitIndex).toBe(eight.core.lastOffset);
    expect(seven.core.commitIndex).toBe(sevenCommitBefore);
    expect(driver.pendingBatches()).toBe(2);
    expect(driver.syncNeeded(later.id, earlier.id)).toBe(false);

    // The earlier round ends: both of group 7's readies advance, in the order they were collected.
    const second = driver.completeRange(earlier.id - 1, earlier.id);
    expect(second.readies.map((item) => [item.group, item.ready.seq])).toEqual([
      [7, earlier.readies[0]!.ready.seq],
      [7, later.readies.find((item) => item.group === 7)!.ready.seq],
    ]);
    expect(seven.core.commitIndex).toBe(seven.core.lastOffset);
    expect(driver.pendingBatches()).toBe(0);
  });
});

/** The driver of a node that is every one of its groups' only voter. */
function singleNodeDriver(): MultiRaftDriver {
  return new MultiRaftDriver({ nodeId: 1, peers: [], livenessTimeoutTicks: 10, nodeHeartbeatTicks: 2 });
}
