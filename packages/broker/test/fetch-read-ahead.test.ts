import { encodeRecordBatch, sliceBatches } from "@raftka/protocol";
import type { ReadOptions } from "@raftka/storage";
import { describe, expect, it } from "vitest";
import { cutToLimit, PartitionReadAhead } from "../src/apis/fetch/read-ahead.js";
import type { ReplicatedLog } from "../src/partitions/replicated-log.js";

const batchOf = (value: string) =>
  encodeRecordBatch({ records: [{ key: null, value, timestamp: Date.now() }] });

describe("cutToLimit", () => {
  const batches = [batchOf("a".repeat(100)), batchOf("b".repeat(200)), batchOf("c".repeat(300))];
  const records = Buffer.concat(batches);

  it("keeps the whole batches that fit and at least the first", () => {
    const sizes = batches.map((entry) => entry.length);
    expect(cutToLimit(records, records.length)).toBe(records);
    expect(cutToLimit(records, sizes[0]! + sizes[1]!).length).toBe(sizes[0]! + sizes[1]!);
    expect(cutToLimit(records, sizes[0]! + sizes[1]! - 1).length).toBe(sizes[0]!);
    expect(cutToLimit(records, 1).length).toBe(sizes[0]!);
    expect(sliceBatches(cutToLimit(records, sizes[0]! + sizes[1]! + 10)).batches).toHaveLength(2);
  });

  it("keeps no batch that does not fit without minOneBatch", () => {
    const sizes = batches.map((entry) => entry.length);
    expect(cutToLimit(records, sizes[0]! - 1, false).length).toBe(0);
    expect(cutToLimit(records, sizes[0]! + sizes[1]! - 1, false).length).toBe(sizes[0]!);
  });
});

/** A log whose reads finish only when the test lets them, counting how many are in flight. */
function heldLog(records: Buffer) {
  const waiting: (() => void)[] = [];
  const reads: number[] = [];
  const log = {
    read: (_offset: number, maxBytes: number, _allocate: unknown, options?: ReadOptions) =>
      new Promise((resolve) => {
        reads.push(maxBytes);
        waiting.push(() => resolve({ records: cutToLimit(records, maxBytes, options?.minOneBatch ?? true) }));
      }),
  } as unknown as ReplicatedLog;
  return {
    log,
    reads,
    releaseAll: () => {
      for (const release of waiting.splice(0)) release();
    },
  };
}

describe("PartitionReadAhead", () => {
  it("starts the later partitions' reads together while the budget could take them all", async () => {
    const records = Buffer.concat([batchOf("x".repeat(300)), batchOf("y".repeat(300))]);
    const logs = [0, 1, 2, 3, 4].map(() => heldLog(records));
    const readAhead = new PartitionReadAhead(5, (index) => ({
      log: logs[index]!.log,
      fetchOffset: 0,
      maxBytes: 1000,
    }));
    // Partition 0 may take up to 1000 of 4000 bytes: 3000 are left, so partitions 1-3 start, 4 does not.
    readAhead.fill(0, 3000);
    expect(logs.map((entry) => entry.reads.length)).toEqual([0, 1, 1, 1, 0]);
    const first = readAhead.take(0, logs[0]!.log, 0, 1000, { minOneBatch: true });
    for (const entry of logs) entry.releaseAll();
    expect((await first).length).toBeLessThanOrEqual(1000);
    // Partition 1's read asked for 1000 bytes (two batches); at its turn only 500 are left: one batch.
    const second = await readAhead.take(1, logs[1]!.log, 0, 500, { minOneBatch: false });
    expect(sliceBatches(second).batches).toHaveLength(1);
    readAhead.discard(2);
    readAhead.fill(3, 5000);
    expect(logs[4]!.reads).toEqual([1000]);
  });

  it("hands a failed read ahead to the partition's turn, not to the process", async () => {
    const failing = {
      read: () => Promise.reject(new Error("disk gone")),
    } as unknown as ReplicatedLog;
    const readAhead = new PartitionReadAhead(2, () => ({ log: failing, fetchOffset: 0, maxBytes: 10 }));
    readAhead.fill(0, 100);
    await new Promise((resolve) => setImmediate(resolve));
    await expect(readAhead.take(1, failing, 0, 10, { minOneBatch: false })).rejects.toThrow("disk gone");
  });

  it("reads ahead without a batch beyond the limit, and reads again a first partition that must get one", async () => {
    const records = Buffer.concat([batchOf("x".repeat(3000)), batchOf("y".repeat(10))]);
    const logs = [0, 1].map(() => heldLog(records));
    const readAhead = new PartitionReadAhead(2, (index) => ({
      log: logs[index]!.log,
      fetchOffset: 0,
      maxBytes: 1000,
    }));
    readAhead.fill(0, 5000);
    expect(logs[1]!.reads).toEqual([1000]);
    for (const entry of logs) entry.releaseAll();
    await new Promise((resolve) => setImmediate(resolve));
    // Partition 1 turns out the first with data: its 3000-byte batch is read after all, with minOneBatch.
    const taking = readAhead.take(1, logs[1]!.log, 0, 1000, { minOneBatch: true });
    await new Promise((resolve) => setImmediate(resolve));
    expect(logs[1]!.reads).toEqual([1000, 1000]);
    logs[1]!.releaseAll();
    expect(sliceBatches(await taking).batches).toHaveLength(1);
  });
});
