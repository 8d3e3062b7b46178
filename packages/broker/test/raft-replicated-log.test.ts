import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Logging } from "@raftka/monitoring";
import { ApiKey, ErrorCode, KafkaError, readRecordBatchHeader, sliceBatches } from "@raftka/protocol";
import {
  defaultSyncFile,
  FlushScheduler,
  PartitionLog,
  StableStore,
  type SyncableFile,
} from "@raftka/storage";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalReplicatedLog } from "../src/partitions/local-replicated-log.js";
import { RaftGroups } from "../src/partitions/raft-groups.js";
import { RaftReplicatedLog } from "../src/partitions/raft-replicated-log.js";
import { batch, createTopic, fetchRequest, produceRequest, startTestBroker } from "./helpers.js";

/** Fsyncs wait while the gate is closed, then really happen: commits can be held back on purpose. */
class FsyncGate {
  private opened: Promise<void> = Promise.resolve();
  private release: (() => void) | undefined;

  close(): void {
    if (this.release) return;
    this.opened = new Promise((resolve) => {
      this.release = resolve;
    });
  }

  open(): void {
    this.release?.();
    this.release = undefined;
  }

  /** Every fsync fails from now on, as a broken disk. */
  failing = false;

  readonly syncFile = async (file: SyncableFile): Promise<void> => {
    await this.opened;
    if (this.failing) throw new Error(`EIO: fsync of ${file.path} failed (test)`);
    await defaultSyncFile(file);
  };
}

const silentLogging = new Logging({
  level: "warn",
  destination: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
});

let dir: string;
let gate: FsyncGate;
let scheduler: FlushScheduler;
const running: Array<{ log?: RaftReplicatedLog; groups: RaftGroups }> = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "raftka-raft-log-"));
  gate = new FsyncGate();
  scheduler = new FlushScheduler({ syncFile: gate.syncFile });
});

afterEach(async () => {
  gate.open();
  for (const node of running.splice(0).reverse()) {
    await node.log?.close().catch(() => {});
    await node.groups.stop().catch(() => {});
  }
  await rm(dir, { recursive: true, force: true });
});

/** A node's Raft groups with short timeouts, on the test's directory and scheduler. */
function startRaftGroups(): Promise<RaftGroups> {
  return RaftGroups.start({
    nodeId: 0,
    clusterId: "test-cluster",
    stableStorePath: join(dir, "raft-stable-store"),
    flushScheduler: scheduler,
    tickMs: 10,
    electionTimeoutMs: 100,
    heartbeatIntervalMs: 20,
    logger: silentLogging.root,
  });
}

/** One broker node's Raft side with one partition on it (group 1), as the broker opens them. */
async function startPartition(options: { segmentBytes?: number; retentionBytes?: number } = {}) {
  const groups = await startRaftGroups();
  const node: { log?: RaftReplicatedLog; groups: RaftGroups } = { groups };
  running.push(node);
  const latencies: number[] = [];
  const log = await RaftReplicatedLog.open(join(dir, "topic-0"), {
    topicPartition: { topic: "topic", partition: 0 },
    nodeId: 0,
    group: await groups.groupFor("topic-id", 0),
    raft: groups,
    config: options,
    flushScheduler: scheduler,
    observeCommitLatency: (seconds) => latencies.push(seconds),
  });
  node.log = log;
  await log.whenLeader();
  return { log, groups, latencies };
}

async function stopPartition(node: { log: RaftReplicatedLog; groups: RaftGroups }): Promise<void> {
  await node.log.close();
  await node.groups.stop();
  running.splice(
    running.findIndex((entry) => entry.groups === node.groups),
    1,
  );
}

function values(records: Buffer): string[] {
  const out: string[] = [];
  for (const slice of sliceBatches(records).batches) {
    const header = readRecordBatchHeader(slice.bytes);
    if (header.isControl) out.push("<control>");
    else out.push(`batch@${header.baseOffset}x${header.lastOffsetDelta + 1}`);
  }
  return out;
}

describe("RaftReplicatedLog", () => {
  it("answers acks=1 after the local write and acks=all after the commit; reads stop at the high watermark", async () => {
    const { log, latencies } = await startPartition();
    expect(log.isLeader).toBe(true);
    expect(log.leaderEpoch).toBe(1);
    expect(log.highWatermark).toBe(0);
    const advances: number[] = [];
    log.onHighWatermark((highWatermark) => advances.push(highWatermark));

    gate.close();
    const leaderOnly = await log.append(batch(["a", "b"]), { acks: 1 });
    expect(leaderOnly).toMatchObject({ baseOffset: 0, lastOffset: 1 });
    let committedAll = false;
    const all = log.append(batch(["c"]), { acks: -1 }).then((result) => {
      committedAll = true;
      return result;
    });
    // Written, not committed: nothing is visible and acks=all still waits.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(log.logEndOffset).toBe(3);
    expect(log.highWatermark).toBe(0);
    expect(committedAll).toBe(false);
    expect((await log.read(0, 1 << 20)).records.length).toBe(0);
    expect(await log.offsetForTimestamp(0)).toBeUndefined();
    await expect(log.deleteRecordsBefore(2)).rejects.toThrow(/high watermark 0/);

    gate.open();
    expect(await all).toMatchObject({ baseOffset: 2, lastOffset: 2 });
    expect(log.highWatermark).toBe(3);
    expect(advances.at(-1)).toBe(3);
    expect(log.committedBytes).toBeGreaterThan(0);
    expect(values((await log.read(0, 1 << 20)).records)).toEqual(["batch@0x2", "batch@2x1"]);
    expect(log.epochForOffset(2)).toBe(1);
    expect(latencies.length).toBeGreaterThanOrEqual(2);
    expect(latencies.every((seconds) => seconds >= 0)).toBe(true);
  });

  it("raises the leader epoch at every restart without adding an offset, and answers OffsetForLeaderEpoch", async () => {
    const first = await startPartition();
    await first.log.append(batch(["a", "b", "c"]), { acks: -1 });
    await stopPartition(first);

    const second = await startPartition();
    expect(second.log.leaderEpoch).toBe(2);
    expect(second.log.logEndOffset).toBe(3);
    expect(second.log.highWatermark).toBe(3);
    expect(second.log.endOffsetForEpoch(2)).toEqual({ epoch: 2, endOffset: 3 });
    await second.log.append(batch(["d"]), { acks: -1 });
    expect(second.log.endOffsetForEpoch(1)).toEqual({ epoch: 1, endOffset: 3 });
    expect(second.log.epochForOffset(3)).toBe(2);
    await stopPartition(second);

    const third = await startPartition();
    expect(third.log.leaderEpoch).toBe(3);
    expect(values((await third.log.read(0, 1 << 20)).records)).toEqual(["batch@0x3", "batch@3x1"]);
  });

  it("commits a tail left beyond the commit index with a no-op control batch of the new term", async () => {
    const first = await startPartition();
    await first.log.append(batch(["committed"]), { acks: -1 });
    await stopPartition(first);
    // What a crash leaves: a batch on disk that Raft never recorded as committed.
    const raw = await PartitionLog.open(join(dir, "topic-0"), { flushScheduler: scheduler });
    await raw.append(batch(["tail"]), { assignOffsets: true, leaderEpoch: 1 });
    await raw.close();

    const second = await startPartition();
    expect(second.log.leaderEpoch).toBe(2);
    // The tail is committed together with the no-op at offset 2, a control batch consumers skip.
    expect(second.log.highWatermark).toBe(3);
    expect(values((await second.log.read(0, 1 << 20)).records)).toEqual([
      "batch@0x1",
      "batch@1x1",
      "<control>",
    ]);
    expect(second.log.epochForOffset(2)).toBe(2);
    const next = await second.log.append(batch(["after"]), { acks: -1 });
    expect(next.baseOffset).toBe(3);
  });

  it("moves the Raft log start with DeleteRecords and retention, so the group reopens", async () => {
    const node = await startPartition({ segmentBytes: 1024, retentionBytes: 2048 });
    for (let index = 0; index < 30; index++) {
      await node.log.append(batch([`record-${index}`.padEnd(100, ".")]), { acks: -1 });
    }
    expect(await node.log.deleteRecordsBefore(5)).toBe(5);
    const retention = await node.log.applyRetention(Date.now());
    expect(retention.deleted.length).toBeGreaterThan(0);
    expect(retention.deleted.every((segment) => segment.reason === "retention.bytes")).toBe(true);
    const start = node.log.logStartOffset;
    expect(start).toBe(retention.deleted.at(-1)!.nextOffset);
    await stopPartition(node);

    const reopened = await startPartition({ segmentBytes: 1024, retentionBytes: 2048 });
    expect(reopened.log.logStartOffset).toBe(start);
    expect(reopened.log.highWatermark).toBe(30);
    expect((await reopened.log.append(batch(["more"]), { acks: -1 })).baseOffset).toBe(30);
  });

  it("adopts a log written without Raft whose start had moved", async () => {
    const local = await LocalReplicatedLog.open(join(dir, "topic-0"), {
      topicPartition: { topic: "topic", partition: 0 },
      nodeId: 0,
      leaderEpoch: 0,
      flushScheduler: scheduler,
    });
    for (const value of ["a", "b", "c", "d"]) await local.append(batch([value]), { acks: -1 });
    await local.deleteRecordsBefore(2);
    await local.close();

    const node = await startPartition();
    expect(node.log.logStartOffset).toBe(2);
    expect(node.log.leaderEpoch).toBeGreaterThan(0);
    // Raft has no record of what was committed: the first leader commits the log with its no-op.
    expect(node.log.highWatermark).toBe(5);
    expect(values((await node.log.read(2, 1 << 20)).records)).toEqual([
      "batch@2x1",
      "batch@3x1",
      "<control>",
    ]);
  });

  it("tells leadership listeners when it is elected and when it stops leading", async () => {
    const groups = await startRaftGroups();
    running.push({ groups });
    const log = await RaftReplicatedLog.open(join(dir, "topic-0"), {
      topicPartition: { topic: "topic", partition: 0 },
      nodeId: 0,
      group: await groups.groupFor("topic-id", 0),
      raft: groups,
      flushScheduler: scheduler,
    });
    const changes: Array<{ isLeader: boolean; leaderEpoch: number }> = [];
    log.onLeadershipChange((change) => changes.push(change));
    await log.whenLeader();
    expect(changes).toEqual([{ isLeader: true, leaderEpoch: 1 }]);
    await log.close();
    expect(changes).toEqual([
      { isLeader: true, leaderEpoch: 1 },
      { isLeader: false, leaderEpoch: 1 },
    ]);
    expect(log.leaderId).toBe(-1);
  });

  it("answers KAFKA_STORAGE_ERROR once the node's Raft groups stopped after a disk failure", async () => {
    const { log, groups } = await startPartition();
    gate.failing = true;
    const failed = await log.append(batch(["lost"]), { acks: -1 }).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(KafkaError);
    expect((failed as KafkaError).code).toBe(ErrorCode.KAFKA_STORAGE_ERROR);
    expect((failed as KafkaError).message).toMatch(/restart/);
    await expect(groups.failed).rejects.toThrow(/storage failure.*restart the broker/);
    const later = await log.append(batch(["refused"]), { acks: 1 }).catch((error: unknown) => error);
    expect((later as KafkaError).code).toBe(ErrorCode.KAFKA_STORAGE_ERROR);
    expect(log.highWatermark).toBe(0);
  });

  it("refuses appends once closed with a retriable not-leader error, and bad batches without harming the node", async () => {
    const node = await startPartition({ segmentBytes: 1024 });
    const corrupt = batch(["x"]);
    corrupt.writeUInt32BE((corrupt.readUInt32BE(17) ^ 1) >>> 0, 17);
    await expect(node.log.append(corrupt, { acks: -1 })).rejects.toMatchObject({ code: "CORRUPT_MESSAGE" });
    await expect(node.log.append(batch(["y".repeat(2000)]), { acks: -1 })).rejects.toMatchObject({
      code: "RECORD_LIST_TOO_LARGE",
    });
    expect((await node.log.append(batch(["fine"]), { acks: -1 })).baseOffset).toBe(0);

    await node.log.close();
    const refused = await node.log.append(batch(["late"]), { acks: 1 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(KafkaError);
    expect((refused as KafkaError).code).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    expect(node.log.isLeader).toBe(false);
  });
});

describe("a broker's Raft state", () => {
  it("forgets a deleted topic's groups: ids, hard states and snapshot positions", async () => {
    const node = await startTestBroker();
    let stopped = false;
    try {
      const connection = await node.connect();
      const kept = await createTopic(connection, "kept", 2);
      const doomed = await createTopic(connection, "doomed", 3);
      for (const topic of ["kept", "doomed"]) {
        const response = await connection.send(ApiKey.Produce, 7, produceRequest(topic, 0, batch(["v"])));
        expect(response.responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
      }
      const deleted = await connection.send(ApiKey.DeleteTopics, 6, {
        timeoutMs: 5000,
        topics: [{ name: "doomed", topicId: "AAAAAAAAAAAAAAAAAAAAAA" }],
      });
      expect(deleted.responses[0]!.errorCode).toBe(0);
      await node.stop();
      stopped = true;
      const stable = await StableStore.open(join(node.dataDir, "raft-stable-store"));
      try {
        expect(stable.keys(`partition-groups/${doomed.topicId}/`)).toEqual([]);
        const keptGroups = stable
          .keys(`partition-groups/${kept.topicId}/`)
          .map((key) => stable.get(key)!.readUInt32BE(0));
        expect(keptGroups).toHaveLength(2);
        // Only the metadata log (group 0) and the kept topic's groups have Raft state left.
        const groupsWithState = new Set(stable.keys("raft/").map((key) => Number(key.split("/")[1])));
        expect([...groupsWithState].sort((a, b) => a - b)).toEqual([0, ...keptGroups].sort((a, b) => a - b));
      } finally {
        await stable.close();
      }
    } finally {
      if (!stopped) await node.stop();
      await rm(node.dataDir, { recursive: true, force: true });
    }
  });

  it("serves the same topics and records when raft.partitions.enable is switched off and on again", async () => {
    let node = await startTestBroker({ "raft.partitions.enable": false });
    try {
      const produce = async (value: string) => {
        const connection = await node.connect();
        const response = await connection.send(
          ApiKey.Produce,
          7,
          produceRequest("switched", 0, batch([value])),
        );
        const answer = response.responses[0]!.partitionResponses[0]!;
        expect(answer.errorCode).toBe(ErrorCode.NONE);
        return answer.baseOffset;
      };
      const readBack = async () => {
        const connection = await node.connect();
        const response = await connection.send(
          ApiKey.Fetch,
          11,
          fetchRequest([{ topic: "switched", partition: 0, offset: 0n }]),
        );
        const records = response.responses[0]!.partitions[0]!.records ?? Buffer.alloc(0);
        return sliceBatches(records)
          .batches.map((entry) => readRecordBatchHeader(entry.bytes))
          .filter((header) => !header.isControl)
          .map((header) => header.baseOffset);
      };
      await createTopic(await node.connect(), "switched");
      expect(await produce("local")).toBe(0n);
      node = await node.restart({ "raft.partitions.enable": true });
      expect(await readBack()).toEqual([0n]);
      const onRaft = await produce("raft");
      expect(onRaft).toBeGreaterThan(0n);
      node = await node.restart({ "raft.partitions.enable": false });
      expect(await readBack()).toEqual([0n, onRaft]);
      expect(await produce("local again")).toBeGreaterThan(onRaft);
    } finally {
      await node.cleanup();
    }
  });
});
