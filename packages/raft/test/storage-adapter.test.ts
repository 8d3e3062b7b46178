import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  defaultSyncFile,
  FlushScheduler,
  KafkaStorageError,
  type LogConfig,
  PartitionLog,
  readBatchHeader,
  StableStore,
} from "@raftka/storage";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type ClusterConfig,
  encodeRecordBatch,
  entryFromBatch,
  makeConfig,
  NO_NODE,
  PartitionRaftLog,
  type PeerAddress,
  RaftCore,
  RaftNodeHost,
  RaftStorageError,
  raftKeyPrefix,
  SeededRandom,
  StableHardStateStore,
  splitBatches,
} from "../src/index.js";

let directory: string;
let scheduler: FlushScheduler;
const open: Array<{ close(): Promise<void> }> = [];

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), "raftka-raft-storage-"));
  scheduler = new FlushScheduler();
});

afterEach(async () => {
  for (const item of open.splice(0).reverse()) await item.close().catch(() => {});
  scheduler.close();
  rmSync(directory, { recursive: true, force: true });
});

async function openGroup(
  group: number,
  config: ClusterConfig,
  cacheBytes?: number,
  stablePath = join(directory, "stable"),
  adoptLogStart = false,
) {
  const stable = await StableStore.open(stablePath, { flushScheduler: scheduler });
  const log = await PartitionLog.open(join(directory, `group-${group}`), {
    flushScheduler: scheduler,
    initialOffset: 0,
  });
  let raftLog: PartitionRaftLog;
  try {
    raftLog = await PartitionRaftLog.open({
      log,
      stable,
      keyPrefix: raftKeyPrefix(group),
      initialConfig: config,
      cacheBytes,
      adoptLogStart,
    });
  } catch (error) {
    // A refused log must not leave its files open behind the test.
    await log.close();
    await stable.close();
    throw error;
  }
  open.push(stable, raftLog);
  return { stable, log, raftLog };
}

async function closeAll() {
  for (const item of open.splice(0).reverse()) await item.close();
}

function batch(records: number, tag: string): Buffer {
  return encodeRecordBatch({
    baseOffset: 0,
    leaderEpoch: 0,
    timestamp: 1_700_000_000_000,
    records: Array.from({ length: records }, (_, index) => ({
      key: null,
      value: Buffer.from(`${tag}-${index}`),
    })),
  });
}

/** A single-voter core on the adapter, persisting every ready before advancing it. */
async function drive(
  core: RaftCore,
  raftLog: PartitionRaftLog,
  hardStates?: StableHardStateStore,
  group = 1,
) {
  for (let round = 0; round < 20 && core.hasReady(); round++) {
    const ready = core.ready();
    await raftLog.write(ready);
    await raftLog.sync();
    if (ready.hardState !== undefined && hardStates !== undefined)
      await hardStates.saveMany(new Map([[group, ready.hardState]]));
    core.advance(ready);
  }
}

function singleVoter(raftLog: PartitionRaftLog, hardState = { term: 0, vote: NO_NODE, commit: -1 }) {
  const random = new SeededRandom(1);
  const core = new RaftCore(
    { id: 1, group: 1, random: () => random.next(), deliverCommittedEntries: false },
    raftLog,
    hardState,
  );
  for (let tick = 0; tick < 30 && !core.isLeader(); tick++) core.tick();
  return core;
}

/** Group 1 with three committed entries whose Kafka log start then moved past them without Raft. */
async function moveLogStartBehindRaft(): Promise<void> {
  const { log, raftLog } = await openGroup(1, makeConfig([1]));
  const core = singleVoter(raftLog);
  await drive(core, raftLog);
  for (let index = 0; index < 3; index++) core.propose(batch(1, `d${index}`), 1);
  await drive(core, raftLog);
  await log.advanceLogStartOffset(2);
  await closeAll();
}

describe("PartitionRaftLog", () => {
  it("stores data entries as stamped client batches and noop/config entries as control batches, and reopens", async () => {
    const { raftLog, log, stable } = await openGroup(1, makeConfig([1]));
    const hardStates = new StableHardStateStore(stable);
    const core = singleVoter(raftLog);
    await drive(core, raftLog, hardStates);
    expect(core.propose(batch(3, "a"), 3)).toMatchObject({ ok: true, firstOffset: 1, lastOffset: 3 });
    expect(core.propose(batch(2, "b"), 2)).toMatchObject({ ok: true, firstOffset: 4, lastOffset: 5 });
    await drive(core, raftLog, hardStates);
    expect(core.proposeConfChange({ type: "addLearner", node: 2 })).toMatchObject({
      ok: true,
      lastOffset: 6,
    });
    await drive(core, raftLog, hardStates);
    expect(core.commitIndex).toBe(6);

    const stored = splitBatches((await log.read(0, 1 << 20)).records).map((bytes) =>
      readBatchHeader(bytes, 0),
    );
    expect(
      stored.map((header) => [
        header.baseOffset,
        header.lastOffsetDelta,
        header.partitionLeaderEpoch,
        header.isControl,
      ]),
    ).toEqual([
      [0, 0, 1, true],
      [1, 2, 1, false],
      [4, 1, 1, false],
      [6, 0, 1, true],
    ]);
    const decoded = splitBatches((await log.read(0, 1 << 20)).records).map((bytes) => entryFromBatch(bytes));
    expect(decoded.map((entry) => entry.kind)).toEqual(["noop", "data", "data", "config"]);
    expect(decoded[3]!.config).toEqual(makeConfig([1], [2]));

    await closeAll();
    const reopened = await openGroup(1, makeConfig([9]));
    expect(reopened.raftLog.snapshotMeta().config).toEqual(makeConfig([1]));
    expect(reopened.raftLog.lastOffset()).toBe(6);
    expect(reopened.raftLog.lastTerm()).toBe(1);
    expect(reopened.raftLog.termAt(4)).toBe(1);
    expect(reopened.raftLog.configEntries()).toEqual([{ offset: 6, term: 1, config: makeConfig([1], [2]) }]);
    const restarted = new RaftCore(
      { id: 1, group: 1, random: () => 0.5 },
      reopened.raftLog,
      new StableHardStateStore(reopened.stable).load(1)!,
    );
    expect(restarted.currentTerm).toBe(1);
    expect(restarted.commitIndex).toBe(6);
    expect(restarted.membership).toEqual(makeConfig([1], [2]));
  });

  it("syncs urgently past a group commit round that another log's fsync holds, and lazily behind it", async () => {
    scheduler.close();
    let releaseHeld: (() => void) | undefined;
    const held = new Promise<void>((resolve) => {
      releaseHeld = resolve;
    });
    let holding = false;
    const heldSyncs: string[] = [];
    scheduler = new FlushScheduler({
      syncFile: async (file) => {
        if (holding && file.path.includes("group-2")) {
          heldSyncs.push(file.path);
          await held;
        }
        await defaultSyncFile(file);
      },
    });
    const first = await openGroup(1, makeConfig([1]));
    const second = await openGroup(2, makeConfig([1]), undefined, join(directory, "stable-2"));
    const firstCore = singleVoter(first.raftLog);
    const secondCore = singleVoter(second.raftLog);
    await drive(firstCore, first.raftLog);
    await drive(secondCore, second.raftLog);
    const writeOne = async (core: RaftCore, raftLog: PartitionRaftLog, tag: string) => {
      core.propose(batch(1, tag), 1);
      await raftLog.write(core.ready());
    };

    holding = true;
    await writeOne(secondCore, second.raftLog, "held");
    const heldSync = second.raftLog.sync();
    while (heldSyncs.length === 0) await new Promise((resolve) => setImmediate(resolve));
    await writeOne(firstCore, first.raftLog, "urgent");
    await first.raftLog.sync({ urgent: true });
    expect(first.log.flushedOffset).toBe(first.log.logEndOffset);
    await writeOne(firstCore, first.raftLog, "lazy");
    let lazySynced = false;
    const lazySync = first.raftLog.sync().then(() => {
      lazySynced = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(lazySynced).toBe(false);
    expect(first.log.flushedOffset).toBeLessThan(first.log.logEndOffset);
    releaseHeld!();
    await Promise.all([heldSync, lazySync]);
    expect(first.log.flushedOffset).toBe(first.log.logEndOffset);
    expect(second.log.flushedOffset).toBe(second.log.logEndOffset);
  });

  it("reads entries back from disk when they have left the cache, and says so while loading", async () => {
    const { raftLog } = await openGroup(1, makeConfig([1]), 200);
    const core = singleVoter(raftLog);
    await drive(core, raftLog);
    for (let index = 0; index < 20; index++) core.propose(batch(2, `r${index}`), 2);
    await drive(core, raftLog);
    let loaded = 0;
    raftLog.onLoaded = () => loaded++;
    expect(raftLog.entries(0, 1 << 20)).toBeUndefined();
    await new Promise<void>((resolve) => {
      const check = () => (loaded > 0 ? resolve() : setTimeout(check, 5));
      check();
    });
    const entries = raftLog.entries(0, 1 << 20)!;
    expect(entries.length).toBeGreaterThan(5);
    expect(entries[0]).toMatchObject({ firstOffset: 1, lastOffset: 2, term: 1, kind: "data" });
    for (let index = 1; index < entries.length; index++) {
      expect(entries[index]!.firstOffset).toBe(entries[index - 1]!.lastOffset + 1);
    }
    const recent = raftLog.entries(raftLog.lastOffset() - 2, 1 << 20);
    expect(recent).toHaveLength(1);
  });

  it("with no tail cache, reads back whole entries handed over a moment ago, after their writes land", async () => {
    const { raftLog } = await openGroup(1, makeConfig([1]), 0);
    const core = singleVoter(raftLog);
    await drive(core, raftLog);
    for (let index = 0; index < 5; index++) core.propose(batch(2, `w${index}`), 2);
    const ready = core.ready();
    // Not awaited: the read must still see every one of these writes.
    const written = raftLog.write(ready);
    const loaded = new Promise<void>((resolve) => {
      raftLog.onLoaded = resolve;
    });
    expect(raftLog.entries(0, 1 << 20)).toBeUndefined();
    await loaded;
    await written;
    const entries = raftLog.entries(0, 1 << 20)!;
    expect(entries.map((entry) => [entry.firstOffset, entry.lastOffset])).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
      [7, 8],
      [9, 10],
    ]);
    expect(Buffer.from(entries[4]!.payload!)).toEqual(Buffer.from(ready.entries[4]!.payload!));
  });

  it("truncates a divergent suffix on disk and in the config index", async () => {
    const { raftLog } = await openGroup(1, makeConfig([1, 2]));
    const config = makeConfig([1, 2], [3]);
    const ready = (after: number, entries: Parameters<PartitionRaftLog["write"]>[0]["entries"]) => ({
      seq: 1,
      hardState: undefined,
      snapshot: undefined,
      entriesAfter: after,
      entries,
      messages: [],
      messagesAfterPersist: [],
      committedEntries: [],
      commitIndex: -1,
      readResults: [],
      leadership: undefined,
      mustPersist: true,
    });
    const data = (first: number, records: number, term: number, tag: string) => ({
      firstOffset: first,
      lastOffset: first + records - 1,
      term,
      kind: "data" as const,
      payload: batch(records, tag),
      config: undefined,
    });
    await raftLog.write(
      ready(-1, [
        data(0, 2, 1, "x"),
        { firstOffset: 2, lastOffset: 2, term: 1, kind: "config", payload: undefined, config },
        data(3, 3, 1, "y"),
      ]),
    );
    await raftLog.write(ready(1, [data(2, 1, 2, "z")]));
    await raftLog.sync();
    expect(raftLog.lastOffset()).toBe(2);
    expect(raftLog.termAt(2)).toBe(2);
    expect(raftLog.configEntries()).toEqual([]);
    await closeAll();
    const reopened = await openGroup(1, makeConfig([1, 2]));
    expect(reopened.raftLog.lastOffset()).toBe(2);
    expect(reopened.raftLog.termAt(2)).toBe(2);
    expect(reopened.raftLog.configEntries()).toEqual([]);
    expect(reopened.raftLog.lastEntryAtOrBefore(2, 1)).toEqual({ offset: 1, term: 1 });
  });

  it("installs a snapshot (the log restarts after it), and finishes an install interrupted by a crash", async () => {
    const { raftLog, stable } = await openGroup(1, makeConfig([1, 2]));
    const config = makeConfig([1, 2, 3]);
    await raftLog.write({
      seq: 1,
      hardState: undefined,
      snapshot: { meta: { offset: 99, term: 4, config }, data: Buffer.from("state") },
      entriesAfter: 99,
      entries: [],
      messages: [],
      messagesAfterPersist: [],
      committedEntries: [],
      commitIndex: 99,
      readResults: [],
      leadership: undefined,
      mustPersist: true,
    });
    await raftLog.sync();
    expect(raftLog.snapshot()).toEqual({ meta: { offset: 99, term: 4, config }, data: Buffer.from("state") });
    // Pretend the next install crashed after recording itself as pending.
    await stable.setMany([
      [`${raftKeyPrefix(1)}snapshot-pending`, Buffer.from(JSON.stringify({ offset: 150, term: 6, config }))],
      [`${raftKeyPrefix(1)}snapshot-pending-data`, Buffer.from("newer")],
    ]);
    await closeAll();
    const reopened = await openGroup(1, makeConfig([1, 2]));
    expect(reopened.raftLog.snapshotMeta()).toEqual({ offset: 150, term: 6, config });
    expect(Buffer.from(reopened.raftLog.snapshot()!.data).toString()).toBe("newer");
    expect(reopened.log.logStartOffset).toBe(151);
    expect(reopened.raftLog.lastOffset()).toBe(150);
    expect(reopened.stable.get(`${raftKeyPrefix(1)}snapshot-pending`)).toBeUndefined();
  });

  it("compacts behind a snapshot position that is durable before the log prefix goes", async () => {
    const { raftLog, log } = await openGroup(1, makeConfig([1]));
    const core = singleVoter(raftLog);
    await drive(core, raftLog);
    for (let index = 0; index < 5; index++) core.propose(batch(2, `c${index}`), 2);
    await drive(core, raftLog);
    await raftLog.compact(6, new Uint8Array(0));
    expect(raftLog.snapshotMeta()).toMatchObject({ offset: 6, term: 1 });
    expect(log.logStartOffset).toBe(7);
    expect(raftLog.termAt(5)).toBeUndefined();
    expect(raftLog.termAt(7)).toBe(1);
    await closeAll();
    const reopened = await openGroup(1, makeConfig([1]));
    expect(reopened.raftLog.snapshotMeta()).toMatchObject({ offset: 6, term: 1 });
    expect(reopened.raftLog.lastOffset()).toBe(10);
  });

  /** A single-voter group over a log of 1 KiB segments with `retention`, holding `count` records of ~100 bytes. */
  async function retainedGroup(group: number, retention: Partial<LogConfig>, count: number, prefix: string) {
    const stable = await StableStore.open(join(directory, "stable"), { flushScheduler: scheduler });
    const log = await PartitionLog.open(join(directory, `group-${group}`), {
      flushScheduler: scheduler,
      initialOffset: 0,
      config: { segmentBytes: 1024, ...retention },
    });
    const raftLog = await PartitionRaftLog.open({
      log,
      stable,
      keyPrefix: raftKeyPrefix(group),
      initialConfig: makeConfig([1]),
    });
    open.push(stable, raftLog);
    const core = singleVoter(raftLog);
    await drive(core, raftLog);
    for (let index = 0; index < count; index++)
      core.propose(batch(1, `${prefix}-${index}`.padEnd(100, ".")), 1);
    await drive(core, raftLog);
    return { log, raftLog, core };
  }

  it("applies Kafka retention up to the high watermark, moving the snapshot position with the segments", async () => {
    const { log, raftLog, core } = await retainedGroup(7, { retentionBytes: 2048 }, 40, "retained");
    expect(log.segmentInfos().length).toBeGreaterThan(3);
    const { deleted, logStartOffset: start } = await raftLog.applyRetention({
      upToOffset: core.commitIndex + 1,
    });
    expect(start).toBeGreaterThan(0);
    expect(deleted[deleted.length - 1]!.nextOffset).toBe(start);
    for (const segment of deleted) expect(["retention.ms", "retention.bytes"]).toContain(segment.reason);
    expect(log.logStartOffset).toBe(start);
    expect(raftLog.snapshotMeta()).toMatchObject({ offset: start - 1, term: 1 });
    expect(log.sizeInBytes).toBeLessThanOrEqual(2048 + 1024);
    await closeAll();
    const reopened = await openGroup(7, makeConfig([1]), undefined, join(directory, "stable"));
    expect(reopened.raftLog.snapshotMeta().offset).toBe(start - 1);
  });

  it("empties a partition whose every record has expired, the active segment too, and goes on appending", async () => {
    const { log, raftLog, core } = await retainedGroup(8, { retentionMs: 1000 }, 20, "expiring");
    const end = log.logEndOffset;
    expect(log.segmentInfos().at(-1)!.sizeInBytes).toBeGreaterThan(0);
    const { deleted, logStartOffset: start } = await raftLog.applyRetention({
      upToOffset: core.commitIndex + 1,
      now: Date.now() + 60_000,
    });
    expect(deleted.at(-1)!.nextOffset).toBe(end);
    expect(start).toBe(end);
    expect(log.segmentInfos()).toHaveLength(1);
    expect(log.segmentInfos()[0]).toMatchObject({ baseOffset: end, sizeInBytes: 0 });
    expect(raftLog.snapshotMeta().offset).toBe(end - 1);
    core.propose(batch(1, "after"), 1);
    await drive(core, raftLog);
    expect(core.commitIndex).toBe(end);
    expect(log.logEndOffset).toBe(end + 1);
    await closeAll();
    const reopened = await openGroup(8, makeConfig([1]), undefined, join(directory, "stable"));
    expect(reopened.raftLog.snapshotMeta().offset).toBe(end - 1);
  });

  it("reports no deletion its failed log did not make, and deletes the prefix behind the snapshot at the next open", async () => {
    const stable = await StableStore.open(join(directory, "stable"), { flushScheduler: scheduler });
    const log = await PartitionLog.open(join(directory, "group-9"), {
      flushScheduler: scheduler,
      initialOffset: 0,
      config: { segmentBytes: 1024, retentionBytes: 2048 },
    });
    // The snapshot position reaches the stable store, then the log fails as on a full disk.
    const failing = new Proxy(log, {
      get(target, key) {
        if (key === "advanceLogStartOffset")
          return () => Promise.reject(new KafkaStorageError("no space left on device"));
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const raftLog = await PartitionRaftLog.open({
      log: failing,
      stable,
      keyPrefix: raftKeyPrefix(9),
      initialConfig: makeConfig([1]),
    });
    open.push(stable, raftLog);
    const core = singleVoter(raftLog);
    await drive(core, raftLog);
    for (let index = 0; index < 40; index++) core.propose(batch(1, `full-${index}`.padEnd(100, ".")), 1);
    await drive(core, raftLog);
    const sizeBefore = log.sizeInBytes;
    const upToOffset = core.commitIndex + 1;
    await expect(raftLog.applyRetention({ upToOffset })).rejects.toThrow(KafkaStorageError);
    await expect(raftLog.applyRetention({ upToOffset })).rejects.toThrow(KafkaStorageError);
    expect(log.logStartOffset).toBe(0);
    expect(log.sizeInBytes).toBe(sizeBefore);
    const snapshotOffset = raftLog.snapshotMeta().offset;
    expect(snapshotOffset).toBeGreaterThan(0);
    await closeAll();

    const reopened = await openGroup(9, makeConfig([1]));
    expect(reopened.log.logStartOffset).toBe(snapshotOffset + 1);
    expect(reopened.log.segmentInfos()[0]!.baseOffset).toBe(snapshotOffset + 1);
    expect(reopened.log.sizeInBytes).toBeLessThan(sizeBefore);
    expect(reopened.raftLog.lastOffset()).toBe(upToOffset - 1);
  });

  it("drops config index entries whose batch never reached the log", async () => {
    const { stable } = await openGroup(1, makeConfig([1]));
    await stable.set(
      `${raftKeyPrefix(1)}configs`,
      Buffer.from(JSON.stringify([{ offset: 0, term: 3, config: makeConfig([1, 2]) }])),
    );
    await closeAll();
    const reopened = await openGroup(1, makeConfig([1]));
    expect(reopened.raftLog.configEntries()).toEqual([]);
  });

  it("refuses a log whose prefix was deleted behind Raft's back, saying how to recover", async () => {
    await moveLogStartBehindRaft();
    await expect(openGroup(1, makeConfig([1]))).rejects.toThrow(RaftStorageError);
    await expect(openGroup(2, makeConfig([1]))).resolves.toBeDefined();
  });

  it("with adoptLogStart, starts the Raft log at a log start moved while the log was not a Raft group", async () => {
    await moveLogStartBehindRaft();
    const adopted = await openGroup(1, makeConfig([1]), undefined, join(directory, "stable"), true);
    expect(adopted.raftLog.snapshotMeta()).toMatchObject({ offset: 1, term: 1 });
    expect(adopted.raftLog.lastOffset()).toBe(3);
    await closeAll();
    // The adopted position is durable: a plain open accepts the log now.
    const reopened = await openGroup(1, makeConfig([1]));
    expect(reopened.raftLog.snapshotMeta().offset).toBe(1);
  });
});

describe("RaftNodeHost on disk", () => {
  it("keeps its term, vote, log and commit index across a restart and catches up", async () => {
    const ids = [1, 2, 3];
    const secret = "disk-cluster-secret-0123456789";
    const hosts = new Map<number, RaftNodeHost>();
    const start = async (id: number) => {
      mkdirSync(join(directory, `node-${id}`), { recursive: true });
      const stable = await StableStore.open(join(directory, `node-${id}`, "stable"), {
        flushScheduler: scheduler,
      });
      const host = await RaftNodeHost.start({
        nodeId: id,
        clusterId: "disk",
        secret,
        listen: { host: "127.0.0.1", port: 0 },
        peers: new Map(),
        hardStateStore: new StableHardStateStore(stable),
        tickMs: 10,
      });
      const log = await PartitionLog.open(join(directory, `node-${id}`, "g5"), {
        flushScheduler: scheduler,
        initialOffset: 0,
      });
      host.addGroup(5, {
        log: await PartitionRaftLog.open({
          log,
          stable,
          keyPrefix: raftKeyPrefix(5),
          initialConfig: makeConfig(ids),
        }),
      });
      hosts.set(id, host);
      return { host, stable };
    };
    const stables = new Map<number, StableStore>();
    for (const id of ids) stables.set(id, (await start(id)).stable);
    const connect = () => {
      const peers = new Map<number, PeerAddress>(
        [...hosts].map(([id, host]) => [id, { host: "127.0.0.1", port: host.port }]),
      );
      for (const host of hosts.values()) host.setPeers(peers);
    };
    connect();
    const until = async (check: () => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!check()) {
        if (Date.now() > deadline) throw new Error("timed out");
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    await until(() => [...hosts.values()].some((host) => host.isLeader(5)));
    const leader = [...hosts.values()].find((host) => host.isLeader(5))!;
    for (let index = 0; index < 10; index++) await leader.propose(5, batch(2, `p${index}`), 2);
    const restartedId = [...hosts.keys()].find((id) => id !== leader.nodeId)!;
    const before = hosts.get(restartedId)!.status(5);
    await hosts.get(restartedId)!.stop();
    await stables.get(restartedId)!.close();
    for (let index = 0; index < 5; index++) await leader.propose(5, batch(1, `q${index}`), 1);
    const { stable } = await start(restartedId);
    stables.set(restartedId, stable);
    const restarted = hosts.get(restartedId)!;
    expect(restarted.status(5).term).toBe(before.term);
    expect(restarted.status(5).lastOffset).toBeGreaterThanOrEqual(before.commit);
    connect();
    await until(() => restarted.commitIndex(5) === leader.commitIndex(5));
    expect(await restarted.readIndex(5)).toBe(leader.commitIndex(5));
    for (const host of hosts.values()) await host.stop();
    for (const store of stables.values()) await store.close();
  });
});
