import { describe, expect, it } from "vitest";
import {
  MemoryHardStateStore,
  MemoryLogStorage,
  makeConfig,
  NO_NODE,
  RaftCore,
  type RaftHostOptions,
  RaftNodeHost,
  type Ready,
  SeededRandom,
} from "../src/index.js";

/** A node that is its group's only voter, driven by hand: every ready is written, then advanced. */
function oneMember(
  storage: MemoryLogStorage,
  options: { noopOnlyWhenUncommitted?: boolean; commit?: number; term?: number } = {},
) {
  const random = new SeededRandom(7);
  const core = new RaftCore(
    {
      id: 1,
      group: 1,
      random: () => random.next(),
      deliverCommittedEntries: false,
      ...(options.noopOnlyWhenUncommitted === undefined
        ? {}
        : { noopOnlyWhenUncommitted: options.noopOnlyWhenUncommitted }),
    },
    storage,
    { term: options.term ?? 0, vote: NO_NODE, commit: options.commit ?? -1 },
  );
  const drive = async () => {
    for (let round = 0; round < 10 && core.hasReady(); round++) {
      const ready = core.ready();
      await storage.write(ready);
      core.advance(ready);
    }
  };
  return { core, drive };
}

const payload = new Uint8Array([1, 2, 3]);

describe("a one-member group", () => {
  it("elects itself at once with campaignNow, counting the election", async () => {
    const { core, drive } = oneMember(new MemoryLogStorage(makeConfig([1])));
    expect(core.isLeader()).toBe(false);
    core.campaignNow();
    expect(core.isLeader()).toBe(true);
    expect(core.currentTerm).toBe(1);
    expect(core.elections).toEqual({ started: 1, won: 1 });
    core.campaignNow();
    expect(core.elections).toEqual({ started: 1, won: 1 });
    await drive();
    // Without the option the leader's no-op takes the first offset.
    expect(core.commitIndex).toBe(0);
  });

  it("skips the no-op when its whole log is committed, and appends it when a tail is not", async () => {
    const empty = oneMember(new MemoryLogStorage(makeConfig([1])), { noopOnlyWhenUncommitted: true });
    empty.core.campaignNow();
    await empty.drive();
    expect(empty.core.lastOffset).toBe(-1);
    expect(empty.core.propose(payload, 2)).toMatchObject({ ok: true, firstOffset: 0, lastOffset: 1 });
    // A membership change still waits for an entry of the leader's own term to commit.
    const before = oneMember(new MemoryLogStorage(makeConfig([1])), { noopOnlyWhenUncommitted: true });
    before.core.campaignNow();
    expect(before.core.proposeConfChange({ type: "addLearner", node: 2 })).toMatchObject({
      ok: false,
      error: "LEADER_NOT_READY",
    });
    await empty.drive();
    expect(empty.core.commitIndex).toBe(1);
    expect(empty.core.proposeConfChange({ type: "addLearner", node: 2 })).toMatchObject({ ok: true });

    // The same log with a tail beyond the recorded commit: the new leader's no-op commits it.
    const storage = new MemoryLogStorage(makeConfig([1]));
    const writer = oneMember(storage, { noopOnlyWhenUncommitted: true });
    writer.core.campaignNow();
    writer.core.propose(payload, 3);
    await writer.drive();
    expect(writer.core.commitIndex).toBe(2);
    const restarted = oneMember(storage, { noopOnlyWhenUncommitted: true, commit: 0, term: 1 });
    restarted.core.campaignNow();
    expect(restarted.core.lastOffset).toBe(3);
    await restarted.drive();
    expect(restarted.core.commitIndex).toBe(3);
    const committed = oneMember(storage, { noopOnlyWhenUncommitted: true, commit: 3, term: 2 });
    committed.core.campaignNow();
    expect(committed.core.currentTerm).toBe(3);
    expect(committed.core.lastOffset).toBe(3);
  });
});

/** Writes that wait until the test fails them (a full disk), oldest first. */
class FailingWriteStorage extends MemoryLogStorage {
  failing = false;
  readonly held: Array<(error: Error) => void> = [];
  override async write(ready: Ready): Promise<void> {
    if (!this.failing) return super.write(ready);
    await new Promise<void>((_resolve, reject) => this.held.push(reject));
  }
}

/** Syncs that wait until the test releases them, oldest first. */
class HeldSyncStorage extends MemoryLogStorage {
  readonly held: Array<() => void> = [];
  override sync(): Promise<void> {
    return new Promise((resolve) => this.held.push(resolve));
  }
}

/** Writes that wait, while `holding`, until the test releases them, oldest first. */
class HeldWriteStorage extends MemoryLogStorage {
  holding = false;
  readonly held: Array<() => void> = [];
  override async write(ready: Ready): Promise<void> {
    if (this.holding) await new Promise<void>((resolve) => this.held.push(resolve));
    return super.write(ready);
  }
  releaseAll(): void {
    this.holding = false;
    for (const release of this.held.splice(0)) release();
  }
}

async function until(what: string, condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 500 && !condition(); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

/** A node host with no peers: its groups are one-member groups. */
function startOneNodeHost(options: Partial<RaftHostOptions>): Promise<RaftNodeHost> {
  return RaftNodeHost.start({
    nodeId: 1,
    clusterId: "test",
    secret: "a-secret-of-at-least-16-characters",
    listen: { host: "127.0.0.1", port: 0 },
    peers: new Map(),
    hardStateStore: new MemoryHardStateStore(),
    tickMs: 10,
    raft: { noopOnlyWhenUncommitted: true },
    ...options,
  });
}

describe("a one-member group on a host", () => {
  it("lets a lazy proposal's fsync round linger (lazySyncMs) until something needs durability now, which syncs urgently", async () => {
    const start = (lazySyncMs: number) => startOneNodeHost({ lazySyncMs });
    const host = await start(60_000);
    try {
      const log = new MemoryLogStorage(makeConfig([1]));
      const written: number[] = [];
      host.addGroup(5, { log, onWritten: (offset) => written.push(offset) });
      host.campaign(5);
      // Past the election's own round (it would carry anything proposed along with it).
      await host.startProposal(5, payload, 1).committed;
      const syncsBefore = log.syncs;
      const lazy = host.startProposal(5, payload, 1, "lazy");
      let lazyCommitted = false;
      void lazy.committed.then(() => {
        lazyCommitted = true;
      });
      await until("the lazy write", () => written.includes(lazy.lastOffset));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(lazyCommitted).toBe(false);
      expect(log.syncs).toBe(syncsBefore);
      // A proposal someone waits on starts the round at once, and the lazy one commits with it.
      const urgentBefore = log.urgentSyncs;
      await host.startProposal(5, payload, 1).committed;
      expect(lazyCommitted).toBe(true);
      expect(log.syncs).toBe(syncsBefore + 1);
      // That round's sync need not wait for other logs' group commit.
      expect(log.urgentSyncs).toBe(urgentBefore + 1);
    } finally {
      await host.stop();
    }
    const lingering = await start(30);
    try {
      const log = new MemoryLogStorage(makeConfig([1]));
      lingering.addGroup(6, { log });
      lingering.campaign(6);
      await lingering.startProposal(6, payload, 1).committed;
      // Alone, a lazy proposal commits once the linger is over, its sync in the group commit rounds.
      const syncsBefore = log.syncs;
      const urgentBefore = log.urgentSyncs;
      const lazy = lingering.startProposal(6, payload, 1, "lazy");
      expect(await lazy.committed).toMatchObject({ lastOffset: lazy.lastOffset });
      expect(log.syncs).toBe(syncsBefore + 1);
      expect(log.urgentSyncs).toBe(urgentBefore);
    } finally {
      await lingering.stop();
    }
  });

  it("does not let a proposal someone waits on linger when the round before it started without it", async () => {
    const host = await startOneNodeHost({ lazySyncMs: 60_000 });
    try {
      const log = new HeldWriteStorage(makeConfig([1]));
      host.addGroup(8, { log });
      host.campaign(8);
      await host.startProposal(8, payload, 1).committed;
      log.holding = true;
      // A round whose writes are still landing, and a lazy write collected behind it.
      const first = host.startProposal(8, payload, 1);
      await until("the first round's write", () => log.held.length === 1);
      const lazy = host.startProposal(8, payload, 1, "lazy");
      await until("the lazy write", () => log.held.length === 2);
      // Proposed, not yet collected, when the first round's writes land and the next round starts
      // (covering only the lazy write): it must not be left to the 60 s linger.
      const waitedOn = host.startProposal(8, payload, 1);
      let committed = false;
      void waitedOn.committed.then(() => {
        committed = true;
      });
      log.releaseAll();
      await first.committed;
      await lazy.committed;
      await until("the waited-on proposal's commit", () => committed);
    } finally {
      await host.stop();
    }
  });

  it("reports a commit as soon as its own fsync round ends, not with a later round of other groups", async () => {
    const host = await startOneNodeHost({ persistCommitIndexEachRound: false });
    const a = new HeldSyncStorage(makeConfig([1]));
    const b = new HeldSyncStorage(makeConfig([1]));
    try {
      const commitsOfA: number[] = [];
      host.addGroup(7, { log: a, onCommit: (commit) => commitsOfA.push(commit) });
      host.addGroup(8, { log: b });
      host.campaign(7);
      host.campaign(8);
      const first = host.startProposal(7, payload, 1);
      await until("A's round", () => a.held.length === 1);
      // B writes while A's round is in flight: its entries wait for the next round.
      // Settled only by the stop below (SHUTTING_DOWN): its round is held on purpose.
      host.startProposal(8, payload, 1).committed.catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 20));
      a.held.shift()!();
      await until("B's round", () => b.held.length === 1);
      // B's round is still syncing, yet A's entry is already committed and reported.
      expect(await first.committed).toMatchObject({ lastOffset: first.lastOffset });
      expect(commitsOfA).toEqual([first.lastOffset]);
    } finally {
      for (const release of [...a.held, ...b.held]) release();
      await host.stop();
    }
  });

  it("commits a group whose fsync round ended while another group's earlier round still syncs", async () => {
    const host = await startOneNodeHost({ persistCommitIndexEachRound: false });
    const slow = new HeldSyncStorage(makeConfig([1]));
    const fast = new MemoryLogStorage(makeConfig([1]));
    try {
      const commitsOfFast: number[] = [];
      host.addGroup(1, { log: slow });
      host.addGroup(2, { log: fast, onCommit: (commit) => commitsOfFast.push(commit) });
      host.campaign(1);
      host.campaign(2);
      await until("both elections", () => host.isLeader(1) && host.isLeader(2));
      // A first entry in each, so that neither group has anything else left to persist.
      const warmUp = host.startProposal(1, payload, 1);
      await until("the slow group's first round", () => slow.held.length === 1);
      slow.held.shift()!();
      await warmUp.committed;
      await host.startProposal(2, payload, 1).committed;
      commitsOfFast.length = 0;
      const held = host.startProposal(1, payload, 1);
      await until("the slow group's round", () => slow.held.length === 1);
      let heldCommitted = false;
      void held.committed.then(() => {
        heldCommitted = true;
      });
      // A later round covers only the fast group; its fsync ends while the slow one's has not.
      const quick = host.startProposal(2, payload, 1);
      expect(await quick.committed).toMatchObject({ lastOffset: quick.lastOffset });
      expect(commitsOfFast).toEqual([quick.lastOffset]);
      expect(heldCommitted).toBe(false);
      // The slow group's own later proposal waits for its earlier round, and commits after it.
      const behind = host.startProposal(1, payload, 1);
      const order: string[] = [];
      void held.committed.then(() => order.push("held"));
      void behind.committed.then(() => order.push("behind"));
      await until("the slow group's second round", () => slow.held.length === 2);
      slow.held[1]!();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(order).toEqual([]);
      slow.held[0]!();
      await until("the slow group's commits", () => order.length === 2);
      expect(order).toEqual(["held", "behind"]);
    } finally {
      for (const release of slow.held) release();
      await host.stop();
    }
  });

  it("syncs each log of a round something waits on once its own write lands; a lingered round waits for all", async () => {
    const start = async (lazySyncMs: number) => {
      const host = await startOneNodeHost({ persistCommitIndexEachRound: false, lazySyncMs });
      const slow = new HeldWriteStorage(makeConfig([1]));
      const fast = new MemoryLogStorage(makeConfig([1]));
      host.addGroup(1, { log: slow });
      host.addGroup(2, { log: fast });
      host.campaign(1);
      host.campaign(2);
      await until("both elections", () => host.isLeader(1) && host.isLeader(2));
      // Past the elections' own rounds, which something waits on and would carry what is proposed next.
      await Promise.all([
        host.startProposal(1, payload, 1).committed,
        host.startProposal(2, payload, 1).committed,
      ]);
      slow.holding = true;
      return { host, slow, fast };
    };
    const urgent = await start(0);
    try {
      const syncsBefore = urgent.fast.syncs;
      // Proposed together, so one round covers both; the slow log's write does not land yet.
      const held = urgent.host.startProposal(1, payload, 1);
      const quick = urgent.host.startProposal(2, payload, 1);
      await until("the slow write", () => urgent.slow.held.length === 1);
      await until("the fast log's fsync", () => urgent.fast.syncs === syncsBefore + 1);
      urgent.slow.releaseAll();
      await Promise.all([held.committed, quick.committed]);
    } finally {
      urgent.slow.releaseAll();
      await urgent.host.stop();
    }
    const lingered = await start(20);
    try {
      const syncsBefore = lingered.fast.syncs;
      const held = lingered.host.startProposal(1, payload, 1, "lazy");
      const quick = lingered.host.startProposal(2, payload, 1, "lazy");
      await until("the slow write", () => lingered.slow.held.length === 1);
      // Well past the linger: a lazy round keeps its fsyncs together, after all of its writes.
      await new Promise((resolve) => setTimeout(resolve, 80));
      expect(lingered.fast.syncs).toBe(syncsBefore);
      lingered.slow.releaseAll();
      await Promise.all([held.committed, quick.committed]);
      expect(lingered.fast.syncs).toBe(syncsBefore + 1);
    } finally {
      lingered.slow.releaseAll();
      await lingered.host.stop();
    }
  });

  it("starts the next fsync round while one is still syncing, and still commits in order", async () => {
    const host = await startOneNodeHost({ persistCommitIndexEachRound: false });
    const log = new HeldSyncStorage(makeConfig([1]));
    try {
      const commits: number[] = [];
      host.addGroup(4, { log, onCommit: (commit) => commits.push(commit) });
      host.campaign(4);
      // An empty log skips the no-op: the election writes no entry, so nothing of the log syncs yet.
      await until("the election", () => host.isLeader(4));
      const first = host.startProposal(4, payload, 1);
      await until("the first proposal's round", () => log.held.length === 1);
      const second = host.startProposal(4, payload, 1);
      // The first round's fsync has not finished, yet the second round already syncs.
      await until("the second proposal's round", () => log.held.length === 2);
      const settled: string[] = [];
      void first.committed.then(() => settled.push("first"));
      void second.committed.then(() => settled.push("second"));
      log.held[1]!();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(settled).toEqual([]);
      log.held[0]!();
      await until("both commits", () => settled.length === 2);
      expect(settled).toEqual(["first", "second"]);
      // Both complete once the first round ends, so the commit index may go straight to the second.
      expect(commits.at(-1)).toBe(second.lastOffset);
      expect(commits).toEqual([...commits].sort((x, y) => x - y));
    } finally {
      for (const release of log.held) release();
      await host.stop();
    }
  });

  it("fails on a write that fails, leaving no write that nobody awaits as an unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const host = await startOneNodeHost({});
    const log = new FailingWriteStorage(makeConfig([1]));
    let failure: Error | undefined;
    host.onFailure((error) => {
      failure = error;
    });
    try {
      host.addGroup(6, { log });
      host.campaign(6);
      await until("the election", () => host.isLeader(6));
      log.failing = true;
      // The first write holds its round; the next two wait for the round after it, together.
      const proposals = [host.startProposal(6, payload, 1)];
      await until("the first write", () => log.held.length === 1);
      proposals.push(host.startProposal(6, payload, 1));
      await until("the second write", () => log.held.length === 2);
      proposals.push(host.startProposal(6, payload, 1));
      await until("the third write", () => log.held.length === 3);
      for (const proposal of proposals) proposal.committed.catch(() => {});
      for (const fail of log.held) fail(new Error("ENOSPC: no space left on device"));
      await until("the host to fail", () => failure !== undefined);
      expect(failure!.message).toContain("ENOSPC");
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
      await host.stop().catch(() => {});
    }
  });

  it("reports writes and commits, and with persistCommitIndexEachRound=false saves a moved commit index only at stop", async () => {
    const hardStates = new MemoryHardStateStore();
    const host = await startOneNodeHost({ hardStateStore: hardStates, persistCommitIndexEachRound: false });
    try {
      const written: number[] = [];
      const commits: number[] = [];
      host.addGroup(3, {
        log: new MemoryLogStorage(makeConfig([1])),
        onWritten: (offset) => written.push(offset),
        onCommit: (commit) => commits.push(commit),
      });
      host.campaign(3);
      const started = host.startProposal(3, payload, 2);
      expect(started).toMatchObject({ firstOffset: 0, lastOffset: 1, term: 1 });
      expect(await started.committed).toMatchObject({ lastOffset: 1 });
      expect(written).toContain(1);
      expect(commits.at(-1)).toBe(1);
      await host.startProposal(3, payload, 1).committed;
      expect(host.electionCounts()).toEqual({ started: 1, won: 1 });
      // The term and vote were saved when the election happened; the commit index moved since.
      expect(hardStates.load(3)).toEqual({ term: 1, vote: 1, commit: -1 });
    } finally {
      await host.stop();
    }
    expect(hardStates.load(3)).toEqual({ term: 1, vote: 1, commit: 2 });
  });

  it("saves an election's term and vote as urgent, even where acks=1 writes linger", async () => {
    const hardStates = new MemoryHardStateStore();
    // raft.flush.linger.ms: lazy rounds wait; what a vote or a new leader waits on must not.
    const host = await startOneNodeHost({
      hardStateStore: hardStates,
      persistCommitIndexEachRound: false,
      lazySyncMs: 1000,
    });
    try {
      host.addGroup(4, { log: new MemoryLogStorage(makeConfig([1])) });
      host.campaign(4);
      await host.startProposal(4, payload, 1, "now").committed;
      expect(hardStates.load(4)).toMatchObject({ term: 1, vote: 1 });
      expect(hardStates.writes).toBeGreaterThan(0);
      expect(hardStates.urgentWrites).toBe(hardStates.writes);
    } finally {
      await host.stop();
    }
  });

  it("drops payloads once handed over (releaseWrittenPayloads) and reads them back for a learner added later", async () => {
    const random = new SeededRandom(7);
    const options = { deliverCommittedEntries: false, releaseWrittenPayloads: true } as const;
    const leaderLog = new MemoryLogStorage(makeConfig([1]));
    const leader = new RaftCore({ id: 1, group: 1, random: () => random.next(), ...options }, leaderLog, {
      term: 0,
      vote: NO_NODE,
      commit: -1,
    });
    leader.campaignNow();
    const first = leader.ready();
    await leaderLog.write(first);
    leader.advance(first);
    const held = new TextEncoder().encode("held-only-in-storage");
    leader.propose(held, 1);
    // Handed over and written, but not advanced: the entry is still unstable in the core.
    const pending: Ready[] = [leader.ready()];
    expect(pending[0]!.entries.map((entry) => entry.payload)).toEqual([held]);
    await leaderLog.write(pending[0]!);
    expect(leader.proposeConfChange({ type: "addLearner", node: 2 })).toMatchObject({ ok: true });

    const learnerLog = new MemoryLogStorage(makeConfig([1]));
    const learner = new RaftCore(
      { id: 2, group: 1, random: () => random.next(), deliverCommittedEntries: false },
      learnerLog,
      { term: 0, vote: NO_NODE, commit: -1 },
    );
    // Route messages by hand; the leader's readies are written at once but advanced only at the end.
    for (let round = 0; round < 10 && leader.hasReady(); round++) {
      const ready = leader.ready();
      await leaderLog.write(ready);
      pending.push(ready);
      for (const message of [...ready.messages, ...ready.messagesAfterPersist]) learner.step(message);
      while (learner.hasReady()) {
        const reply = learner.ready();
        await learnerLog.write(reply);
        learner.advance(reply);
        for (const message of [...reply.messages, ...reply.messagesAfterPersist]) leader.step(message);
      }
    }
    const copied = learnerLog.entries(0, 1 << 20)!.find((entry) => entry.kind === "data");
    expect(copied?.payload).toEqual(held);
    for (const ready of pending) leader.advance(ready);
    expect(leader.status().progress.find((progress) => progress.node === 2)?.match).toBe(leader.lastOffset);
  });
});
