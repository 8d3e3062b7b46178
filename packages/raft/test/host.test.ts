import { afterEach, describe, expect, it } from "vitest";
import {
  MemoryHardStateStore,
  MemoryLogStorage,
  makeConfig,
  NotLeaderError,
  type PeerAddress,
  type RaftLogger,
  RaftNodeHost,
  type StateMachine,
} from "../src/index.js";

const SECRET = "test-cluster-secret-0123456789";
const hosts: RaftNodeHost[] = [];

afterEach(async () => {
  await Promise.all(hosts.splice(0).map((host) => host.stop()));
});

function recordingLogger(lines: string[]): RaftLogger {
  const record = (fields: object, message: string) => lines.push(`${message} ${JSON.stringify(fields)}`);
  return { info: record, warn: record, error: record };
}

async function startCluster(
  ids: number[],
  groups: number,
  options: { logLines?: string[]; observeSyncRound?: (seconds: number) => void } = {},
) {
  const started: RaftNodeHost[] = [];
  for (const id of ids) {
    const host = await RaftNodeHost.start({
      nodeId: id,
      clusterId: "test",
      secret: SECRET,
      listen: { host: "127.0.0.1", port: 0 },
      peers: new Map(),
      hardStateStore: new MemoryHardStateStore(),
      tickMs: 10,
      seed: id,
      logger: options.logLines ? recordingLogger(options.logLines) : undefined,
      ...(options.observeSyncRound ? { observeSyncRound: options.observeSyncRound } : {}),
    });
    hosts.push(host);
    started.push(host);
  }
  const peers = new Map<number, PeerAddress>(
    started.map((host) => [host.nodeId, { host: "127.0.0.1", port: host.port }]),
  );
  for (const host of started) host.setPeers(peers);
  for (const host of started) {
    for (let group = 0; group < groups; group++)
      host.addGroup(group, { log: new MemoryLogStorage(makeConfig(ids)) });
  }
  return started;
}

async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function leaderOf(cluster: RaftNodeHost[], group: number): RaftNodeHost | undefined {
  return cluster.find((host) => host.isLeader(group));
}

describe("RaftNodeHost over TCP", () => {
  it("elects leaders for many groups, commits proposals and serves linearizable reads on followers", async () => {
    const cluster = await startCluster([1, 2, 3], 20);
    for (let group = 0; group < 20; group++)
      await until(`a leader for group ${group}`, () => leaderOf(cluster, group));
    // All groups share one connection per node pair, and both ends agree which.
    for (const host of cluster) {
      const peers = host.peerConnections().map((connection) => connection.peer);
      expect(peers.sort()).toEqual([1, 2, 3].filter((id) => id !== host.nodeId));
    }
    for (const host of cluster) {
      for (const { peer, dialledBy } of host.peerConnections()) {
        const other = cluster.find((candidate) => candidate.nodeId === peer)!;
        expect(other.peerConnections().find((connection) => connection.peer === host.nodeId)?.dialledBy).toBe(
          dialledBy,
        );
      }
    }
    const leader = leaderOf(cluster, 7)!;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        leader.propose(7, new TextEncoder().encode(`record ${index}`), 2),
      ),
    );
    const offsets = results.map((result) => result.firstOffset);
    expect(new Set(offsets).size).toBe(50);
    expect(results.every((result) => result.lastOffset === result.firstOffset + 1)).toBe(true);
    const last = Math.max(...results.map((result) => result.lastOffset));
    const follower = cluster.find((host) => host !== leader)!;
    const readPoint = await follower.readIndex(7);
    expect(readPoint).toBeGreaterThanOrEqual(last);
    expect(follower.commitIndex(7)).toBeGreaterThanOrEqual(last);
  });

  it("group-commits: one fsync round covers many groups' writes", async () => {
    const cluster = await startCluster([1, 2, 3], 30);
    for (let group = 0; group < 30; group++)
      await until(`a leader for group ${group}`, () => leaderOf(cluster, group));
    const before = cluster.map((host) => host.syncRounds);
    await Promise.all(
      Array.from({ length: 30 }, (_, group) =>
        leaderOf(cluster, group)!.propose(group, new Uint8Array([group])),
      ),
    );
    const rounds = cluster.map((host, index) => host.syncRounds - before[index]!);
    // 30 groups each wrote on two or three nodes, yet far fewer fsync rounds ran.
    expect(rounds.reduce((a, b) => a + b, 0)).toBeLessThan(60);
  });

  it("tells its observer how long each fsync round took, the fsyncs' time included", async () => {
    class SlowSyncLog extends MemoryLogStorage {
      override async sync(): Promise<void> {
        await new Promise((resolve) => setTimeout(resolve, 30));
        await super.sync();
      }
    }
    const rounds: number[] = [];
    const [host] = await startCluster([1], 0, { observeSyncRound: (seconds) => rounds.push(seconds) });
    host!.addGroup(0, { log: new SlowSyncLog(makeConfig([1])) });
    await until("a leader", () => host!.isLeader(0));
    const before = { observed: rounds.length, synced: host!.syncRounds };
    await host!.propose(0, new Uint8Array([1]));
    // One observation per completed round, each at least its log's 30 ms sync.
    expect(rounds.length - before.observed).toBe(host!.syncRounds - before.synced);
    expect(rounds.length - before.observed).toBeGreaterThan(0);
    expect(Math.min(...rounds.slice(before.observed))).toBeGreaterThanOrEqual(0.025);
  });

  it("rejects proposals on followers with the leader to retry on", async () => {
    const cluster = await startCluster([1, 2, 3], 1);
    const leader = await until("a leader", () => leaderOf(cluster, 0));
    const follower = cluster.find((host) => host !== leader)!;
    await until("the follower to know the leader", () => follower.leaderOf(0) === leader.nodeId);
    const error = await follower.propose(0, new Uint8Array([1])).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotLeaderError);
    expect((error as NotLeaderError).leader).toBe(leader.nodeId);
    expect((error as Error).message).toMatch(new RegExp(`retry on node ${leader.nodeId}`));
  });

  it("a stopped leader is replaced and writes continue; a graceful stop hands leadership over first", async () => {
    const cluster = await startCluster([1, 2, 3], 3);
    for (let group = 0; group < 3; group++)
      await until(`a leader for group ${group}`, () => leaderOf(cluster, group));
    const crashed = leaderOf(cluster, 0)!;
    await crashed.stop();
    const survivors = cluster.filter((host) => host !== crashed);
    const next = await until("a new leader", () => leaderOf(survivors, 0));
    await next.propose(0, new Uint8Array([9]));
    const leading = survivors.find((host) => host.groupIds().some((group) => host.isLeader(group)))!;
    const led = leading.groupIds().filter((group) => leading.isLeader(group));
    await leading.stop({ transferLeadership: true, timeoutMs: 5_000 });
    const other = survivors.find((host) => host !== leading)!;
    // With one of three nodes left, nobody can be elected; the handover made the survivor leader.
    for (const group of led) expect(other.isLeader(group)).toBe(true);
  });

  it("the leader balancer spreads leaders evenly over live nodes, a few transfers per pass", async () => {
    const lines: string[] = [];
    const cluster = await startCluster([1, 2, 3], 30, { logLines: lines });
    const [first, , third] = cluster as [RaftNodeHost, RaftNodeHost, RaftNodeHost];
    const ledBy = (host: RaftNodeHost) => host.groupIds().filter((group) => host.isLeader(group)).length;
    // Start from the worst spread: node 1 leads every group.
    await until("node 1 to lead all 30 groups", () => {
      for (let group = 0; group < 30; group++) {
        const leader = leaderOf(cluster, group);
        if (leader !== undefined && leader !== first) leader.transferLeadership(group, 1);
      }
      return ledBy(first) === 30;
    });
    for (const host of cluster) host.startLeaderBalancer({ intervalMs: 50, maxTransfersPerPass: 4 });
    await until("10 leaders per node", () => cluster.every((host) => ledBy(host) === 10), 20_000);
    const passes = lines.filter((line) => line.startsWith("leader balancer: handing leadership"));
    expect(passes.length).toBeGreaterThanOrEqual(5);
    for (const line of passes) expect(Number(/"started":(\d+)/.exec(line)![1])).toBeLessThanOrEqual(4);
    expect(first.balancerTransfers).toBe(20);
    await until("the balancers to report the even spread", () =>
      lines.some((line) => line.startsWith("leader balancer: nothing to move") && line.includes('"led":10')),
    );

    // Node 3 goes away: its groups re-elect on 1 and 2, and the balancer evens those two out.
    await third.stop();
    const survivors = cluster.slice(0, 2);
    await until(
      "15 leaders on each surviving node",
      () => survivors.every((host) => ledBy(host) === 15),
      20_000,
    );
    expect(survivors.reduce((sum, host) => sum + host.balancerTransfers, 0)).toBeGreaterThanOrEqual(20);
  });

  it("applies committed entries to a state machine and catches a new member up through a snapshot", async () => {
    class Counter implements StateMachine {
      total = 0;
      apply(entries: readonly { kind: string; payload: Uint8Array | undefined }[]): void {
        for (const entry of entries) if (entry.kind === "data") this.total += entry.payload![0]!;
      }
      snapshot(): Uint8Array {
        return new TextEncoder().encode(String(this.total));
      }
      restore(data: Uint8Array): void {
        this.total = data.byteLength === 0 ? 0 : Number(new TextDecoder().decode(data));
      }
    }
    const ids = [1, 2, 3];
    const cluster = await startCluster(ids, 0);
    const machines = new Map<number, Counter>();
    for (const host of cluster) {
      const machine = new Counter();
      machines.set(host.nodeId, machine);
      host.addGroup(100, { log: new MemoryLogStorage(makeConfig([1, 2])), stateMachine: machine });
    }
    const leader = await until("a leader", () => leaderOf(cluster.slice(0, 2), 100));
    for (let index = 1; index <= 10; index++) await leader.propose(100, new Uint8Array([index]));
    await leader.compact(100);
    await leader.changeMembership(100, { type: "addLearner", node: 3 });
    const third = cluster[2]!;
    await until("the learner to catch up", () => third.commitIndex(100) >= leader.commitIndex(100));
    await third.readIndex(100);
    expect(machines.get(3)!.total).toBe(55);
    expect(machines.get(leader.nodeId)!.total).toBe(55);
  });
});
