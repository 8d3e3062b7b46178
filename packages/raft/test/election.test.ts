import { describe, expect, it } from "vitest";
import { MemoryRaftLog, type Message, makeConfig, NO_NODE } from "../src/index.js";
import { logFromTerms, TestCluster } from "./harness.js";

describe("leader election", () => {
  it("elects exactly one leader that every node follows", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.run(40);
    const leaders = cluster.leaders();
    expect(leaders).toHaveLength(1);
    const term = cluster.core(leaders[0]!).currentTerm;
    for (const id of [1, 2, 3]) {
      expect(cluster.core(id).currentLeader).toBe(leaders[0]);
      expect(cluster.core(id).currentTerm).toBe(term);
    }
  });

  it("denies the vote to a candidate whose log is shorter", () => {
    const config = makeConfig([1, 2, 3]);
    const cluster = new TestCluster([1, 2, 3]);
    cluster.add(1, logFromTerms(config, [1, 1]), { term: 1, vote: NO_NODE, commit: -1 });
    cluster.add(2, logFromTerms(config, [1, 1, 1]), { term: 1, vote: NO_NODE, commit: -1 });
    cluster.add(3, logFromTerms(config, [1, 1, 1]), { term: 1, vote: NO_NODE, commit: -1 });
    const candidate = cluster.core(1);
    for (let tick = 0; tick < 40 && candidate.currentRole === "follower"; tick++) candidate.tick();
    expect(candidate.currentRole).toBe("preCandidate");
    cluster.deliverAll();
    expect(candidate.isLeader()).toBe(false);
    const rejections = cluster
      .node(2)
      .sentNow.concat(cluster.node(3).sentNow)
      .filter((m) => m.to === 1);
    expect(rejections.length).toBeGreaterThan(0);
    expect(
      rejections.every((m) => (m.type === "preVoteResponse" || m.type === "voteResponse") && m.reject),
    ).toBe(true);
  });

  it("denies the vote to a candidate whose last term is older even if its log is longer", () => {
    const config = makeConfig([1, 2, 3]);
    const cluster = new TestCluster([1, 2, 3], { preVote: false });
    cluster.add(
      1,
      logFromTerms(config, [1, 1, 1, 1, 1]),
      { term: 2, vote: NO_NODE, commit: -1 },
      { preVote: false },
    );
    cluster.add(2, logFromTerms(config, [1, 2]), { term: 2, vote: NO_NODE, commit: -1 }, { preVote: false });
    cluster.add(3, logFromTerms(config, [1, 2]), { term: 2, vote: NO_NODE, commit: -1 }, { preVote: false });
    cluster.elect(2);
    expect(cluster.core(2).currentTerm).toBe(3);
    const candidate = cluster.core(1);
    // Node 1 times out without hearing the leader (isolated), then asks for votes.
    cluster.isolate(1);
    for (let tick = 0; tick < 40 && candidate.currentRole !== "candidate"; tick++) candidate.tick();
    cluster.heal();
    const term = candidate.currentTerm;
    // Followers still in contact with leader 2 ignore it; make them time out first so the log check decides.
    cluster.tick(3, 25);
    cluster.deliverAll((m) => m.from === 2);
    expect(candidate.isLeader()).toBe(false);
    expect(cluster.core(3).currentTerm).toBeGreaterThanOrEqual(term);
  });

  it("grants one vote per term: a second candidate in the same term is rejected, the first is re-granted", () => {
    const cluster = new TestCluster([1, 2, 3], { preVote: false });
    const voter = cluster.core(3);
    const request = (from: number): Message => ({
      type: "vote",
      group: 0,
      from,
      to: 3,
      term: 5,
      lastOffset: -1,
      lastTerm: 0,
      transfer: false,
    });
    voter.step(request(1));
    voter.step(request(2));
    voter.step(request(1));
    const ready = voter.ready();
    const responses = ready.messagesAfterPersist.concat(ready.messages);
    expect(responses.map((m) => [m.to, m.type === "voteResponse" && m.reject])).toEqual([
      [1, false],
      [1, false],
      [2, true],
    ]);
    expect(ready.hardState).toEqual({ term: 5, vote: 1, commit: -1 });
  });

  it("ignores messages from older terms and tells a stale leader the current term", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.elect(1);
    const follower = cluster.core(2);
    const term = follower.currentTerm;
    const before = follower.status();
    follower.step({
      type: "append",
      group: 0,
      from: 3,
      to: 2,
      term: term - 1,
      prevOffset: -1,
      prevTerm: 0,
      entries: [
        {
          firstOffset: 0,
          lastOffset: 0,
          term: term - 1,
          kind: "data",
          payload: new Uint8Array([1]),
          config: undefined,
        },
      ],
      commit: 0,
    });
    expect(follower.status()).toEqual(before);
    const ready = follower.ready();
    expect(ready.entries).toHaveLength(0);
    expect(ready.messages).toEqual([expect.objectContaining({ type: "heartbeatResponse", to: 3, term })]);
  });

  it("deposes a stale leader: its writes never commit and are replaced after the partition heals", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.elect(1);
    cluster.propose(1, "before");
    cluster.deliverAll();
    const committed = cluster.core(1).commitIndex;
    cluster.isolate(1);
    const stale = cluster.propose(1, "lost write", 3);
    expect(stale.ok).toBe(true);
    cluster.deliverAll();
    for (let tick = 0; tick < 100 && !cluster.core(2).isLeader() && !cluster.core(3).isLeader(); tick++) {
      cluster.tick(2);
      cluster.tick(3);
      cluster.deliverAll();
    }
    const newLeader = cluster.core(2).isLeader() ? 2 : 3;
    cluster.propose(newLeader, "after");
    cluster.deliverAll();
    // The old leader keeps believing it leads until check-quorum, yet nothing it appended commits.
    expect(cluster.core(1).commitIndex).toBe(committed);
    cluster.heal();
    cluster.run(30);
    expect(cluster.core(1).isLeader()).toBe(false);
    for (const id of [1, 2, 3]) {
      const values = cluster
        .node(id)
        .log.allEntries()
        .map((e) => new TextDecoder().decode(e.payload ?? new Uint8Array()));
      expect(values).not.toContain("lost write");
      expect(values).toContain("after");
    }
  });

  it("pre-vote keeps a rejoining node from disrupting a stable leader", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.elect(1);
    cluster.propose(1, "x");
    cluster.deliverAll();
    const term = cluster.core(1).currentTerm;
    cluster.isolate(3);
    // The isolated node times out over and over; pre-vote never lets it raise its term.
    for (let tick = 0; tick < 100; tick++) {
      cluster.tickAll();
      cluster.deliverAll();
    }
    expect(cluster.core(3).currentTerm).toBe(term);
    cluster.heal();
    cluster.run(30);
    expect(cluster.core(1).isLeader()).toBe(true);
    expect(cluster.core(1).currentTerm).toBe(term);
  });

  it("without pre-vote the same rejoining node would force a new election (the disruption pre-vote prevents)", () => {
    const cluster = new TestCluster([1, 2, 3], { preVote: false, checkQuorum: false });
    cluster.elect(1);
    const term = cluster.core(1).currentTerm;
    cluster.isolate(3);
    for (let tick = 0; tick < 60; tick++) {
      cluster.tickAll();
      cluster.deliverAll();
    }
    expect(cluster.core(3).currentTerm).toBeGreaterThan(term);
    cluster.heal();
    cluster.run(30);
    expect(cluster.core(1).currentTerm).toBeGreaterThan(term);
  });

  it("check-quorum: a leader cut off from the majority steps down within an election timeout", () => {
    const cluster = new TestCluster([1, 2, 3], { quiesce: false });
    cluster.elect(1);
    cluster.isolate(1);
    const leader = cluster.core(1);
    let ticks = 0;
    while (leader.isLeader() && ticks < 100) {
      leader.tick();
      cluster.deliverAll();
      ticks++;
    }
    expect(leader.isLeader()).toBe(false);
    expect(ticks).toBeLessThanOrEqual(2 * 10);
    const result = cluster.propose(1, "refused");
    expect(result).toEqual({ ok: false, error: "NOT_LEADER", leader: NO_NODE });
  });

  it("check-quorum: an idle (quiesced) leader cut off from the majority steps down once asked to write", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.elect(1);
    cluster.run(10);
    const leader = cluster.core(1);
    expect(leader.isQuiesced()).toBe(true);
    cluster.isolate(1);
    expect(cluster.propose(1, "never acknowledged").ok).toBe(true);
    const commit = leader.commitIndex;
    let ticks = 0;
    while (leader.isLeader() && ticks < 100) {
      leader.tick();
      cluster.deliverAll();
      ticks++;
    }
    expect(leader.isLeader()).toBe(false);
    expect(ticks).toBeLessThanOrEqual(2 * 10);
    expect(leader.commitIndex).toBe(commit);
  });

  it("learners never campaign and their votes do not count", () => {
    const config = makeConfig([1, 2], [3]);
    const cluster = new TestCluster([1, 2, 3], {}, config);
    cluster.isolate(1);
    cluster.isolate(2);
    cluster.tick(3, 200);
    expect(cluster.core(3).currentRole).toBe("follower");
    expect(cluster.core(3).currentTerm).toBe(0);
    cluster.heal();
    // A candidate that only the learner answers cannot win: it needs voter 2.
    cluster.cutLink(1, 2);
    cluster.cutLink(2, 1);
    const candidate = cluster.core(1);
    for (let tick = 0; tick < 40 && candidate.currentRole === "follower"; tick++) candidate.tick();
    cluster.deliverAll();
    expect(candidate.isLeader()).toBe(false);
    cluster.heal();
    cluster.run(40);
    const leaders = cluster.leaders();
    expect(leaders).toHaveLength(1);
    expect(leaders[0]).not.toBe(3);
  });

  it("a single voter elects itself and commits on its own fsync", () => {
    const cluster = new TestCluster([1]);
    cluster.elect(1);
    const result = cluster.propose(1, "solo", 4);
    cluster.deliverAll();
    expect(result).toMatchObject({ ok: true, firstOffset: 1, lastOffset: 4 });
    expect(cluster.core(1).commitIndex).toBe(4);
    expect(cluster.node(1).applied.map((entry) => entry.kind)).toEqual(["noop", "data"]);
  });

  it("restarts from its hard state without voting twice in a term", () => {
    const cluster = new TestCluster([1, 2, 3], { preVote: false });
    const voter = cluster.core(3);
    voter.step({
      type: "vote",
      group: 0,
      from: 1,
      to: 3,
      term: 7,
      lastOffset: -1,
      lastTerm: 0,
      transfer: false,
    });
    cluster.flush(3);
    cluster.restart(3);
    const restarted = cluster.core(3);
    restarted.step({
      type: "vote",
      group: 0,
      from: 2,
      to: 3,
      term: 7,
      lastOffset: -1,
      lastTerm: 0,
      transfer: false,
    });
    const ready = restarted.ready();
    expect(ready.messages.concat(ready.messagesAfterPersist)).toEqual([
      expect.objectContaining({ type: "voteResponse", to: 2, reject: true }),
    ]);
  });

  it("adopts a term found in its log when the hard state file lost the newer term", () => {
    const config = makeConfig([1, 2, 3]);
    const log = logFromTerms(config, [1, 4]);
    const cluster = new TestCluster([1, 2, 3]);
    const node = cluster.add(1, log, { term: 2, vote: 3, commit: 5 });
    expect(node.core.currentTerm).toBe(4);
    expect(node.core.status().vote).toBe(NO_NODE);
    expect(node.core.commitIndex).toBeLessThanOrEqual(log.lastOffset());
  });

  it("rejects options that cannot work, with the fix in the message", () => {
    expect(() => new TestCluster([1], { electionTimeoutTicks: 2, heartbeatIntervalTicks: 2 })).toThrow(
      /heartbeatIntervalTicks \(2\) must be below electionTimeoutTicks/,
    );
    expect(() => new TestCluster([1], { leaseReads: true, checkQuorum: false })).toThrow(
      /leaseReads needs checkQuorum/,
    );
    expect(() => new MemoryRaftLog(makeConfig([-1]))).toThrow(/broker ids/);
  });
});
