import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { KafkaConnection } from "@raftka/protocol";
import { ApiKey, decodeRecordBatch, ErrorCode, sliceBatches } from "@raftka/protocol";
import type { ReadOptions } from "@raftka/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { evictFromPageCache } from "../../storage/test/helpers.js";
import { FsyncContention } from "../src/apis/fetch/fsync-contention.js";
import { NextReads } from "../src/apis/fetch/next-reads.js";
import { ReadAheadMemory } from "../src/apis/fetch/read-ahead-memory.js";
import type { ReplicatedLog } from "../src/partitions/replicated-log.js";
import { BufferPool } from "../src/server/buffer-pool.js";
import { mappedMemoryUnavailableReason } from "../src/server/mapped-memory.js";
import {
  batch,
  createTopic,
  fetchRequest,
  produceRequest,
  startTestBroker,
  type TestBroker,
} from "./helpers.js";

const MiB = 1024 * 1024;

/**
 * Drops a topic's segments from the page cache, as for a consumer of old data, and waits until the
 * fsyncs of its producing no longer count as slow (reads ahead wait while they do; a loaded machine's
 * fsyncs can be).
 */
async function evictTopicFromPageCache(node: TestBroker, topic: string): Promise<void> {
  for (let waited = 0; node.broker.fsyncContention.contended; waited += 50) {
    expect(waited).toBeLessThan(5_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const directory of readdirSync(node.dataDir)) {
    if (!directory.startsWith(`${topic}-`)) continue;
    const files = readdirSync(join(node.dataDir, directory)).filter((file) => file.endsWith(".log"));
    evictFromPageCache(...files.map((file) => join(node.dataDir, directory, file)));
  }
}
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** This process's resident memory, from /proc (Linux). */
function residentBytes(): number {
  const status = readFileSync("/proc/self/status", "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024;
}

describe("ReadAheadMemory", () => {
  it("hands out its slots once each and their memory again after they come back", () => {
    const memory = new ReadAheadMemory(2, 64 * 1024, 10_000);
    const first = memory.take()!;
    const second = memory.take()!;
    expect([first.length, second.length]).toEqual([64 * 1024, 64 * 1024]);
    expect(memory.take()).toBeUndefined();
    memory.give(first);
    memory.give(first);
    expect(memory.take()).toBe(first);
    expect(memory.take()).toBeUndefined();
    memory.close();
  });

  it.runIf(process.platform === "linux")(
    "gives the pages of every slot back to the system once none has been in use for its idle time",
    async () => {
      expect(mappedMemoryUnavailableReason).toBeUndefined();
      const memory = new ReadAheadMemory(2, 48 * MiB, 50);
      const slots = [memory.take()!, memory.take()!];
      const before = residentBytes();
      for (const slot of slots) slot.fill(7);
      expect(residentBytes() - before).toBeGreaterThan(90 * MiB);
      memory.give(slots[0]!);
      await new Promise((resolve) => setTimeout(resolve, 100));
      // One slot still in use: nothing goes back yet.
      expect(memory.residentSlots).toBe(2);
      memory.give(slots[1]!);
      expect(memory.residentSlots).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(memory.residentSlots).toBe(0);
      expect(before + 20 * MiB - residentBytes()).toBeGreaterThan(0);
      // The same mapping, its pages dropped: it reads as zeros.
      const again = memory.take()!;
      expect(slots.includes(again)).toBe(true);
      expect(again[0]).toBe(0);
      expect(again[again.length - 1]).toBe(0);
      memory.close();
    },
  );
});

/** A log whose reads fill a buffer from `allocate` and finish when the test says, recording each read. */
function fakeLog(options: { fails?: boolean; fromDisk?: boolean } = {}) {
  const reads: { offset: number; maxBytes: number; options?: ReadOptions; buffer: Buffer }[] = [];
  const finishers: (() => void)[] = [];
  const log = {
    read: (offset: number, maxBytes: number, allocate: (size: number) => Buffer, readOptions?: ReadOptions) =>
      new Promise((resolve, reject) => {
        const buffer = allocate(maxBytes);
        reads.push({ offset, maxBytes, options: readOptions, buffer });
        if (options.fromDisk) readOptions?.onDirectRead?.(maxBytes);
        finishers.push(() =>
          options.fails
            ? reject(new Error("disk gone"))
            : resolve({ records: buffer, nextOffset: offset + 1 }),
        );
      }),
  } as unknown as ReplicatedLog;
  return {
    log,
    reads,
    finishAll: () => {
      for (const finish of finishers.splice(0)) finish();
    },
  };
}

describe("FsyncContention", () => {
  it("counts the disk as busy for its window after an fsync at least as slow as its threshold", () => {
    let now = 1_000;
    const contention = new FsyncContention(10, 250, () => now);
    expect(contention.contended).toBe(false);
    contention.observe(0.009);
    expect(contention.contended).toBe(false);
    contention.observe(0.01);
    expect(contention.contended).toBe(true);
    now += 249;
    expect(contention.contended).toBe(true);
    contention.observe(0.002);
    now += 1;
    expect(contention.contended).toBe(false);
  });
});

describe("NextReads", () => {
  const limits = { reads: 2, slotBytes: MiB + 16 * 1024, unclaimedMs: 10_000 };

  it("reads a streaming consumer's next range at once into a slot and hands it to the Fetch for it", async () => {
    const pool = new BufferPool();
    const nextReads = new NextReads(pool, limits);
    const { log, reads, finishAll } = fakeLog({ fromDisk: true });
    nextReads.startAfter(log, 100, MiB, MiB - 200, 500);
    expect(reads.map(({ offset, maxBytes, options }) => [offset, maxBytes, options?.minOneBatch])).toEqual([
      [100, MiB, false],
    ]);
    const claimed = nextReads.claim(log, 100);
    expect(claimed).toBeDefined();
    expect(nextReads.claim(log, 100)).toBeUndefined();
    finishAll();
    const outcome = (await claimed!.outcome)!;
    expect(outcome.read.records).toBe(reads[0]!.buffer);
    expect(outcome.fromDisk).toBe(true);
    expect(nextReads.residentSlots).toBe(1);
    claimed!.release();
    await settle();
    const fromCache = fakeLog();
    nextReads.startAfter(fromCache.log, 0, MiB, MiB, 500);
    fromCache.finishAll();
    expect((await nextReads.claim(fromCache.log, 0)!.outcome)!.fromDisk).toBe(false);
    expect(nextReads.stats).toMatchObject({ started: 2, claimed: 2, unused: 0 });
    nextReads.close();
    pool.close();
  });

  it("reads nothing ahead for a consumer that is not streaming, nor more partitions than it holds at once", () => {
    const pool = new BufferPool();
    const nextReads = new NextReads(pool, limits);
    const quiet = fakeLog();
    // Less than half its limit answered: a consumer near the end of the log, or limited by max.bytes.
    nextReads.startAfter(quiet.log, 10, MiB, MiB / 2 - 1, 1000);
    // Caught up: nothing below the high watermark after this answer.
    nextReads.startAfter(quiet.log, 1000, MiB, MiB, 1000);
    expect(quiet.reads).toHaveLength(0);
    const [first, second, third] = [fakeLog(), fakeLog(), fakeLog()];
    nextReads.startAfter(first!.log, 10, MiB, MiB, 1000);
    nextReads.startAfter(first!.log, 20, MiB, MiB, 1000);
    nextReads.startAfter(second!.log, 10, MiB, MiB, 1000);
    nextReads.startAfter(third!.log, 10, MiB, MiB, 1000);
    expect([first!.reads.length, second!.reads.length, third!.reads.length]).toEqual([1, 1, 0]);
    nextReads.close();
    pool.close();
  });

  it("reads no more ahead than a slot holds, whatever the partition limit", () => {
    const pool = new BufferPool();
    const nextReads = new NextReads(pool, limits);
    const large = fakeLog();
    nextReads.startAfter(large.log, 10, 8 * MiB, 8 * MiB, 1000);
    expect(large.reads.map((read) => read.maxBytes)).toEqual([MiB]);
    nextReads.close();
    pool.close();
  });

  it("keeps a slot for each read claimed until its answer has gone out, beside the reads held", async () => {
    const pool = new BufferPool();
    // One read held at a time: two slots.
    const nextReads = new NextReads(pool, { ...limits, reads: 1 });
    const [first, second, third] = [fakeLog(), fakeLog(), fakeLog()];
    nextReads.startAfter(first!.log, 10, MiB, MiB, 1000);
    const goingOut = nextReads.claim(first!.log, 10)!;
    nextReads.startAfter(second!.log, 10, MiB, MiB, 1000);
    const alsoGoingOut = nextReads.claim(second!.log, 10)!;
    // Both slots hold answers that are going out: no read can start.
    nextReads.startAfter(third!.log, 10, MiB, MiB, 1000);
    expect(third!.reads).toHaveLength(0);
    first!.finishAll();
    second!.finishAll();
    goingOut.release();
    await settle();
    nextReads.startAfter(third!.log, 10, MiB, MiB, 1000);
    expect(third!.reads).toHaveLength(1);
    alsoGoingOut.release();
    nextReads.close();
    pool.close();
  });

  it("gives the slot back, once the read ends, when the consumer asks elsewhere or not at all", async () => {
    const pool = new BufferPool();
    const nextReads = new NextReads(pool, { ...limits, reads: 1, unclaimedMs: 30 });
    const [moved, kept, next] = [fakeLog(), fakeLog(), fakeLog()];
    nextReads.startAfter(moved.log, 100, MiB, MiB, 1000);
    expect(nextReads.claim(moved.log, 50)).toBeUndefined();
    nextReads.startAfter(kept.log, 100, MiB, MiB, 1000);
    const claimed = nextReads.claim(kept.log, 100)!;
    await settle();
    // The read given back still runs into its slot, and the other slot holds an answer going out.
    nextReads.startAfter(next.log, 0, MiB, MiB, 1000);
    expect(next.reads).toHaveLength(0);
    moved.finishAll();
    await settle();
    nextReads.startAfter(next.log, 0, MiB, MiB, 1000);
    expect(next.reads).toHaveLength(1);
    // Not claimed within 30 ms: given back, and the slot with it.
    next.finishAll();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(nextReads.size).toBe(0);
    expect(nextReads.claim(next.log, 0)).toBeUndefined();
    const after = fakeLog();
    nextReads.startAfter(after.log, 0, MiB, MiB, 1000);
    expect(after.reads).toHaveLength(1);
    expect(nextReads.stats).toMatchObject({ started: 4, claimed: 1, unused: 2 });
    kept.finishAll();
    claimed.release();
    nextReads.close();
    pool.close();
  });

  it("starts no read while held back, and reads again once the hold ends", () => {
    const pool = new BufferPool();
    let busy = true;
    const outcomes: string[] = [];
    const nextReads = new NextReads(pool, {
      ...limits,
      holdBack: () => busy,
      onOutcome: (outcome) => outcomes.push(outcome),
    });
    const log = fakeLog();
    nextReads.startAfter(log.log, 10, MiB, MiB, 1000);
    expect(log.reads).toHaveLength(0);
    // The metric (raftka_log_reads_ahead_total{outcome="held_back"}) shows operators why none started.
    expect(outcomes).toEqual(["held_back"]);
    busy = false;
    nextReads.startAfter(log.log, 10, MiB, MiB, 1000);
    expect(log.reads).toHaveLength(1);
    expect(nextReads.stats).toMatchObject({ started: 1, heldBack: 1 });
    nextReads.close();
    pool.close();
  });

  it("hands a failed read to the Fetch as nothing read, so that the Fetch reads and meets the error itself", async () => {
    const pool = new BufferPool();
    const nextReads = new NextReads(pool, limits);
    const failing = fakeLog({ fails: true });
    nextReads.startAfter(failing.log, 7, MiB, MiB, 1000);
    failing.finishAll();
    const claimed = nextReads.claim(failing.log, 7);
    expect(await claimed!.outcome).toBeUndefined();
    claimed!.release();
    nextReads.close();
    pool.close();
  });
});

describe("Fetch with next reads", () => {
  let node: TestBroker;
  let connection: KafkaConnection;
  const recordValue = (partition: number, offset: number) => `p${partition}-o${offset}-`.padEnd(3000, "v");
  const records = 60;

  const produceAll = async (topic: string, partitions: number, tag = "") => {
    for (let offset = 0; offset < records; offset++) {
      for (let partition = 0; partition < partitions; partition++) {
        const response = await connection.send(
          ApiKey.Produce,
          7,
          produceRequest(topic, partition, batch([`${tag}${recordValue(partition, offset)}`])),
        );
        expect(response.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
      }
    }
  };
  const evictTopic = (topic: string) => evictTopicFromPageCache(node, topic);

  const fetchFrom = async (topic: string, offsets: number[], maxBytes: number) => {
    const response = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest(
        offsets.map((offset, partition) => ({ topic, partition, offset: BigInt(offset), maxBytes })),
      ),
    );
    return response.responses[0]!.partitions.map((data) => ({
      errorCode: data.errorCode,
      values: sliceBatches(data.records ?? Buffer.alloc(0)).batches.map((entry) =>
        decodeRecordBatch(entry.bytes).records[0]!.value!.toString(),
      ),
      firstOffset: data.records && data.records.length > 0 ? data.records.readBigInt64BE(0) : undefined,
    }));
  };

  beforeAll(async () => {
    node = await startTestBroker();
    connection = await node.connect();
  });
  afterAll(async () => {
    await node.cleanup();
  });

  it("answers a consumer reading a log from its start with every record in order, most of them read ahead", async () => {
    await createTopic(connection, "streamed", 3);
    await produceAll("streamed", 3);
    await evictTopic("streamed");
    const before = { ...node.broker.nextReads.stats };
    const offsets = [0, 0, 0];
    let fetches = 0;
    while (offsets.some((offset) => offset < records)) {
      // A limit that is not a whole number of batches, and changes between fetches.
      const partitions = await fetchFrom("streamed", offsets, 9_500 + (fetches % 3) * 3_100);
      fetches += 1;
      for (const [partition, { errorCode, values }] of partitions.entries()) {
        expect(errorCode).toBe(ErrorCode.NONE);
        for (const value of values) {
          expect(value).toBe(recordValue(partition, offsets[partition]!));
          offsets[partition]! += 1;
        }
      }
      expect(fetches).toBeLessThan(100);
    }
    const claimed = node.broker.nextReads.stats.claimed - before.claimed;
    expect(claimed).toBeGreaterThan(fetches);
    const scrape = await node.metrics.render();
    const counted = Number(
      /^raftka_log_reads_ahead_total\{outcome="claimed"[^}]*\} (\d+)$/m.exec(scrape)?.[1],
    );
    expect(counted).toBe(node.broker.nextReads.stats.claimed);
  });

  it("reads nothing ahead for a consumer of data in the page cache", async () => {
    await createTopic(connection, "cached", 1);
    await produceAll("cached", 1);
    const started = node.broker.nextReads.stats.started;
    for (let offset = 0; offset < records; ) {
      const [answer] = await fetchFrom("cached", [offset], 16_000);
      expect(answer!.values[0]).toBe(recordValue(0, offset));
      offset += answer!.values.length;
    }
    expect(node.broker.nextReads.stats.started).toBe(started);
  });

  it("answers the records a fetch's own limit allows when the read ahead took more", async () => {
    await createTopic(connection, "narrowed", 1);
    await produceAll("narrowed", 1);
    await evictTopic("narrowed");
    const first = await fetchFrom("narrowed", [0], 16_000);
    expect(first[0]!.values).toHaveLength(5);
    const claimed = node.broker.nextReads.stats.claimed;
    const second = await fetchFrom("narrowed", [5], 7_000);
    expect(node.broker.nextReads.stats.claimed).toBe(claimed + 1);
    expect(second[0]!.values).toEqual([recordValue(0, 5), recordValue(0, 6)]);
  });

  it("answers OFFSET_OUT_OF_RANGE, not records held ahead, once DeleteRecords passed the offset", async () => {
    await createTopic(connection, "trimmed-ahead", 1);
    await produceAll("trimmed-ahead", 1);
    await evictTopic("trimmed-ahead");
    const first = await fetchFrom("trimmed-ahead", [0], 16_000);
    expect(first[0]!.values).toHaveLength(5);
    expect(node.broker.nextReads.size).toBeGreaterThan(0);
    const deleted = await connection.send(ApiKey.DeleteRecords, 1, {
      timeoutMs: 5000,
      topics: [{ name: "trimmed-ahead", partitions: [{ partitionIndex: 0, offset: 20n }] }],
    });
    expect(deleted.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE);
    const second = await fetchFrom("trimmed-ahead", [5], 16_000);
    expect(second[0]!.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
    const third = await fetchFrom("trimmed-ahead", [20], 16_000);
    expect(third[0]!.values[0]).toBe(recordValue(0, 20));
  });

  it("answers a topic created again under the same name with its own records, not the old topic's read ahead", async () => {
    await createTopic(connection, "reborn", 1);
    await produceAll("reborn", 1, "old-");
    await evictTopic("reborn");
    const first = await fetchFrom("reborn", [0], 16_000);
    expect(first[0]!.values[0]).toBe(`old-${recordValue(0, 0)}`);
    const deleted = await connection.send(ApiKey.DeleteTopics, 6, {
      timeoutMs: 5000,
      topics: [{ name: "reborn", topicId: "AAAAAAAAAAAAAAAAAAAAAA" }],
    });
    expect(deleted.responses[0]!.errorCode).toBe(ErrorCode.NONE);
    await createTopic(connection, "reborn", 1);
    await produceAll("reborn", 1, "new-");
    const again = await fetchFrom("reborn", [5], 16_000);
    expect(again[0]!.values[0]).toBe(`new-${recordValue(0, 5)}`);
    expect(again[0]!.firstOffset).toBe(5n);
  });

  it("gives the memory of reads nobody claimed back to the system once the consumer stops", async () => {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(node.broker.nextReads.size).toBe(0);
    expect(node.broker.nextReads.residentSlots).toBe(0);
  });
});

describe("Fetch with log.read.ahead.enable=false", () => {
  it("reads nothing ahead, even for a consumer reading from disk", async () => {
    const node = await startTestBroker({ "log.read.ahead.enable": false });
    try {
      const connection = await node.connect();
      await createTopic(connection, "not-ahead", 1);
      for (let offset = 0; offset < 20; offset++) {
        await connection.send(ApiKey.Produce, 7, produceRequest("not-ahead", 0, batch(["x".repeat(3000)])));
      }
      await evictTopicFromPageCache(node, "not-ahead");
      let offset = 0n;
      while (offset < 20n) {
        const response = await connection.send(
          ApiKey.Fetch,
          11,
          fetchRequest([{ topic: "not-ahead", partition: 0, offset, maxBytes: 7_000 }]),
        );
        const batches = sliceBatches(
          response.responses[0]!.partitions[0]!.records ?? Buffer.alloc(0),
        ).batches;
        expect(batches.length).toBeGreaterThan(0);
        offset += BigInt(batches.length);
      }
      expect(node.broker.nextReads.stats.started).toBe(0);
    } finally {
      await node.cleanup();
    }
  });
});
