import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CorruptRecordError,
  DirectReads,
  FlushScheduler,
  InvalidRecordError,
  InvalidRequestError,
  PartitionLog,
  type PartitionLogOptions,
  RecordBatchTooLargeError,
} from "../src/index.js";
import { decodeBatches, makeBatch, records, valuesOf, withTempDir } from "./helpers.js";

function openLog(directory: string, options: PartitionLogOptions = {}) {
  return PartitionLog.open(directory, { flushScheduler: new FlushScheduler(), ...options });
}

/** Reads the whole log from `from` batch by batch, as a consumer would. */
async function readAll(log: PartitionLog, from = log.logStartOffset, maxBytes = 1): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  let offset = from;
  while (offset < log.logEndOffset) {
    const result = await log.read(offset, maxBytes);
    expect(result.records.length).toBeGreaterThan(0);
    chunks.push(result.records);
    offset = result.nextOffset;
  }
  return chunks;
}

describe("PartitionLog appends and reads", () => {
  it("assigns offsets and epochs to leader appends and reads the client's bytes back unchanged", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      const batch = makeBatch(records("a", 3), { baseOffset: 0 });
      const first = await log.append(batch, { assignOffsets: true, leaderEpoch: 4 });
      expect(first).toMatchObject({
        firstOffset: 0,
        lastOffset: 2,
        nextOffset: 3,
        batchCount: 1,
        recordCount: 3,
      });
      const second = await log.append(makeBatch(records("b", 2)), { assignOffsets: true, leaderEpoch: 4 });
      expect(second).toMatchObject({ firstOffset: 3, lastOffset: 4 });
      expect(log.logEndOffset).toBe(5);

      const read = await log.read(0, 1 << 20);
      const decoded = decodeBatches(read.records);
      expect(decoded.map((b) => [b.baseOffset, b.lastOffset, b.leaderEpoch, b.crcValid])).toEqual([
        [0, 2, 4, true],
        [3, 4, 4, true],
      ]);
      expect(valuesOf(read.records)).toEqual(["a-0", "a-1", "a-2", "b-0", "b-1"]);
      // Stored bytes are the client's bytes, apart from the stamped offset and epoch.
      expect(read.records.subarray(16, batch.length)).toEqual(batch.subarray(16));
      await log.close();
    });
  });

  it("reads across segment rolls from every offset, including offsets inside a batch", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 600, indexIntervalBytes: 150 } });
      const expected: string[] = [];
      for (let index = 0; index < 40; index += 1) {
        const batchRecords = records(`r${index}`, 1 + (index % 3));
        expected.push(...batchRecords.map((record) => record.value));
        await log.append(makeBatch(batchRecords), { assignOffsets: true, leaderEpoch: 1 });
      }
      expect(log.segmentInfos().length).toBeGreaterThan(5);
      expect(log.logEndOffset).toBe(expected.length);
      for (let offset = 0; offset < expected.length; offset += 1) {
        const result = await log.read(offset, 1);
        const batches = decodeBatches(result.records);
        expect(batches).toHaveLength(1);
        expect(batches[0]!.baseOffset).toBeLessThanOrEqual(offset);
        expect(batches[0]!.lastOffset).toBeGreaterThanOrEqual(offset);
        const values = batches[0]!.records.map((record) => record.value);
        expect(values).toContain(expected[offset]);
        expect(result.nextOffset).toBe(batches[0]!.lastOffset + 1);
      }
      expect(valuesOf(Buffer.concat(await readAll(log)))).toEqual(expected);
      await log.close();
    });
  });

  it("finds batches far from any index entry (index interval lowered at run time)", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { indexIntervalBytes: 1 << 20 } });
      for (let index = 0; index < 300; index += 1) {
        await log.append(makeBatch([{ value: `far-${index}-${"p".repeat(200)}` }]), {
          assignOffsets: true,
          leaderEpoch: 0,
        });
      }
      log.updateConfig({ indexIntervalBytes: 0 });
      for (const offset of [0, 1, 150, 298, 299]) {
        const result = await log.read(offset, 1);
        expect(decodeBatches(result.records).map((batch) => batch.baseOffset)).toEqual([offset]);
      }
      expect((await log.read(300, 1)).records.length).toBe(0);
      await log.close();
    });
  });

  it("returns at least one whole batch even when it exceeds maxBytes, and fills up to maxBytes", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      const big = makeBatch([{ value: "x".repeat(5000) }]);
      await log.append(big, { assignOffsets: true, leaderEpoch: 0 });
      for (let index = 0; index < 10; index += 1) {
        await log.append(makeBatch([{ value: `small-${index}` }]), { assignOffsets: true, leaderEpoch: 0 });
      }
      const oversized = await log.read(0, 10);
      expect(oversized.records.length).toBe(big.length);
      expect(oversized.nextOffset).toBe(1);

      const smallSize = makeBatch([{ value: "small-0" }]).length;
      const three = await log.read(1, smallSize * 3 + smallSize - 1);
      expect(decodeBatches(three.records).map((batch) => batch.baseOffset)).toEqual([1, 2, 3]);
      await log.close();
    });
  });

  it("without minOneBatch leaves a first batch larger than maxBytes unread, header-first past its header only", async () => {
    await withTempDir(async (directory) => {
      const directReads = new DirectReads({ enabled: false });
      const log = await openLog(directory, { directReads });
      const small = makeBatch([{ value: "small" }]);
      const big = makeBatch([{ value: "x".repeat(200_000) }]);
      await log.append(small, { assignOffsets: true, leaderEpoch: 0 });
      await log.append(big, { assignOffsets: true, leaderEpoch: 0 });
      await log.append(makeBatch([{ value: "y".repeat(200_000) }]), { assignOffsets: true, leaderEpoch: 0 });
      await log.append(makeBatch([{ value: "after" }]), { assignOffsets: true, leaderEpoch: 0 });
      const readBytes = async (read: () => Promise<{ records: Buffer }>) => {
        const before = directReads.stats.pageCacheBytes;
        const { records } = await read();
        return { records, bytes: directReads.stats.pageCacheBytes - before };
      };
      // The small batch fits and the big one after it does not: only the small one, whatever the mode.
      for (const headerFirst of [false, true]) {
        const fits = await log.read(0, 100_000, undefined, undefined, { minOneBatch: false, headerFirst });
        expect(decodeBatches(fits.records).map((batch) => batch.baseOffset)).toEqual([0]);
        expect(fits.nextOffset).toBe(1);
      }
      // A read of what fits reads no more than the limit and the walk to the batch.
      const unread = await readBytes(() =>
        log.read(1, 100_000, undefined, undefined, { minOneBatch: false }),
      );
      expect(unread.records.length).toBe(0);
      expect(unread.bytes).toBeLessThanOrEqual(100_000 + 4096);
      // Header first: the walk from the index entry and the header only, the header alone when the
      // batch has an index entry (the one after a batch larger than index.interval.bytes has).
      const headerFirst = { minOneBatch: false, headerFirst: true };
      const peeked = await readBytes(() => log.read(1, 100_000, undefined, undefined, headerFirst));
      expect(peeked.records.length).toBe(0);
      expect(peeked.bytes).toBeLessThanOrEqual(4096 + 61);
      const indexed = await readBytes(() => log.read(2, 100_000, undefined, undefined, headerFirst));
      expect(indexed.records.length).toBe(0);
      expect(indexed.bytes).toBe(61);
      // When it fits, header first still returns it whole.
      const whole = await log.read(1, 450_000, undefined, undefined, headerFirst);
      expect(decodeBatches(whole.records).map((batch) => batch.baseOffset)).toEqual([1, 2, 3]);
      // The default keeps KIP-74's rule: the first batch whatever its size.
      expect((await log.read(1, 10)).records.length).toBe(big.length);
      await log.close();
    });
  });

  it("never returns a batch at or above upToOffset (the high watermark) and is empty above the end", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      for (let index = 0; index < 5; index += 1) {
        await log.append(makeBatch(records(`h${index}`, 2)), { assignOffsets: true, leaderEpoch: 0 });
      }
      const bounded = await log.read(0, 1 << 20, 6);
      expect(decodeBatches(bounded.records).map((batch) => batch.baseOffset)).toEqual([0, 2, 4]);
      expect(bounded.nextOffset).toBe(6);
      const atWatermark = await log.read(6, 1 << 20, 6);
      expect(atWatermark.records.length).toBe(0);
      expect(atWatermark.nextOffset).toBe(6);
      const aboveEnd = await log.read(50, 1 << 20);
      expect(aboveEnd).toMatchObject({ firstOffset: -1, nextOffset: 50 });
      expect(aboveEnd.records.length).toBe(0);
      await log.close();
    });
  });

  it("writes concurrent appends in call order with consecutive offsets", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 2000 } });
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, index) =>
          log.append(makeBatch(records(`c${index}`, 2)), { assignOffsets: true, leaderEpoch: 2 }),
        ),
      );
      expect(results.map((result) => result.firstOffset)).toEqual(
        Array.from({ length: 50 }, (_, i) => i * 2),
      );
      const values = valuesOf(Buffer.concat(await readAll(log, 0, 1 << 20)));
      expect(values).toEqual(Array.from({ length: 50 }, (_, i) => [`c${i}-0`, `c${i}-1`]).flat());
      await log.close();
    });
  });

  it("accepts follower appends that continue the log exactly and rejects gaps and overlaps", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      await log.append(makeBatch(records("f", 3), { baseOffset: 0, leaderEpoch: 1 }), {
        assignOffsets: false,
      });
      await log.append(makeBatch(records("g", 2), { baseOffset: 3, leaderEpoch: 2 }), {
        assignOffsets: false,
      });
      expect(log.logEndOffset).toBe(5);
      await expect(
        log.append(makeBatch(records("gap", 1), { baseOffset: 7, leaderEpoch: 2 }), { assignOffsets: false }),
      ).rejects.toThrow(/starts at offset 7 but the log continues at 5/);
      await expect(
        log.append(makeBatch(records("overlap", 1), { baseOffset: 4, leaderEpoch: 2 }), {
          assignOffsets: false,
        }),
      ).rejects.toBeInstanceOf(InvalidRecordError);
      await expect(
        log.append(makeBatch(records("stale", 1), { baseOffset: 5, leaderEpoch: 1 }), {
          assignOffsets: false,
        }),
      ).rejects.toThrow(/leader epoch 1, older than the epoch 2/);
      // Epochs going backwards inside one append are refused as a whole, leaving the cache untouched.
      const backwards = Buffer.concat([
        makeBatch(records("b5", 1), { baseOffset: 5, leaderEpoch: 5 }),
        makeBatch(records("b3", 1), { baseOffset: 6, leaderEpoch: 3 }),
      ]);
      await expect(log.append(backwards, { assignOffsets: false })).rejects.toThrow(
        /epoch 3, older than the epoch 5/,
      );
      await expect(
        log.append(makeBatch(records("stale", 1)), { assignOffsets: true, leaderEpoch: 1 }),
      ).rejects.toThrow(InvalidRecordError);
      expect(log.logEndOffset).toBe(5);
      expect(log.leaderEpochs()).toEqual([
        { epoch: 1, startOffset: 0 },
        { epoch: 2, startOffset: 3 },
      ]);
      await log.close();
    });
  });

  it("rejects malformed input with precise errors and keeps working", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 1000 } });
      const good = makeBatch(records("ok", 1));
      const corrupt = Buffer.from(good);
      corrupt[corrupt.length - 1]! ^= 0xff;
      await expect(log.append(corrupt, { assignOffsets: true, leaderEpoch: 0 })).rejects.toThrow(
        /CRC32C mismatch/,
      );
      await expect(
        log.append(good.subarray(0, 30), { assignOffsets: true, leaderEpoch: 0 }),
      ).rejects.toBeInstanceOf(CorruptRecordError);
      await expect(log.append(Buffer.alloc(0), { assignOffsets: true, leaderEpoch: 0 })).rejects.toThrow(
        /empty/,
      );
      const wrongMagic = Buffer.from(good);
      wrongMagic.writeInt8(1, 16);
      await expect(log.append(wrongMagic, { assignOffsets: true, leaderEpoch: 0 })).rejects.toThrow(
        /magic byte is 1/,
      );
      await expect(log.append(good, { assignOffsets: true })).rejects.toBeInstanceOf(InvalidRequestError);
      await expect(
        log.append(makeBatch([{ value: "y".repeat(2000) }]), { assignOffsets: true, leaderEpoch: 0 }),
      ).rejects.toBeInstanceOf(RecordBatchTooLargeError);
      await expect(log.read(-1, 100)).rejects.toBeInstanceOf(InvalidRequestError);
      const appended = await log.append(good, { assignOffsets: true, leaderEpoch: 0 });
      expect(appended.firstOffset).toBe(0);
      await expect(openLog(directory)).rejects.toThrow(/already open in this process/);
      await log.close();
      await expect(log.append(good, { assignOffsets: true, leaderEpoch: 0 })).rejects.toThrow(/closed/);
      await (await openLog(directory)).close();
    });
  });

  it("stamps LogAppendTime and keeps the CRC valid", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      const result = await log.append(makeBatch(records("t", 2, 1000)), {
        assignOffsets: true,
        leaderEpoch: 0,
        logAppendTime: 99_000,
      });
      expect(result.maxTimestamp).toBe(99_000);
      const [batch] = decodeBatches((await log.read(0, 1 << 20)).records);
      expect(batch).toMatchObject({ maxTimestamp: 99_000, crcValid: true });
      await log.close();
    });
  });

  it("keeps Kafka's file layout: 20-digit segment names with .log, .index and .timeindex", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 300 } });
      for (let index = 0; index < 6; index += 1) {
        await log.append(makeBatch(records(`k${index}`, 2)), { assignOffsets: true, leaderEpoch: 0 });
      }
      await log.close();
      const names = (await readdir(directory)).sort();
      expect(names).toContain("00000000000000000000.log");
      expect(names).toContain("00000000000000000000.index");
      expect(names).toContain("00000000000000000000.timeindex");
      expect(names).toContain("leader-epoch-checkpoint");
      expect(names).toContain("clean-shutdown");
      const second = log.segmentInfos()[1]!;
      expect(names).toContain(`${String(second.baseOffset).padStart(20, "0")}.log`);
      expect(await readFile(join(directory, "leader-epoch-checkpoint"), "utf8")).toBe("0\n1\n0 0\n");
    });
  });
});
