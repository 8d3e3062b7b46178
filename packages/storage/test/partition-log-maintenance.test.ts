import { readdir, readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { FileHandleCache } from "../src/file-handle-cache.js";
import {
  FlushScheduler,
  OffsetOutOfRangeError,
  PartitionLog,
  type PartitionLogOptions,
} from "../src/index.js";
import { LogSegment } from "../src/log-segment.js";
import { decodeBatches, makeBatch, records, valuesOf, withTempDir } from "./helpers.js";

function openLog(directory: string, options: PartitionLogOptions = {}) {
  return PartitionLog.open(directory, { flushScheduler: new FlushScheduler(), ...options });
}

async function appendMany(
  log: PartitionLog,
  count: number,
  prefix: string,
  timestampOf?: (index: number) => number,
) {
  for (let index = 0; index < count; index += 1) {
    const timestamp = timestampOf?.(index);
    await log.append(makeBatch(records(`${prefix}${index}`, 2, timestamp)), {
      assignOffsets: true,
      leaderEpoch: log.latestEpoch ?? 0,
    });
  }
}

describe("indexes", () => {
  it("writes a sparse offset index whose every entry points at the batch it names", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { indexIntervalBytes: 500 } });
      await appendMany(log, 100, "i");
      await log.close();
      const [segment] = log.segmentInfos();
      const logBytes = await readFile(segment!.logPath);
      const index = await readFile(segment!.indexPath);
      const batchSize = makeBatch(records("i10", 2)).length;
      expect(index.length % 8).toBe(0);
      const entries = index.length / 8;
      // One entry per >500 bytes written: sparse, but present.
      expect(entries).toBeGreaterThan(logBytes.length / (500 + batchSize) - 2);
      expect(entries).toBeLessThan(logBytes.length / 500);
      let previousPosition = 0;
      for (let at = 0; at < index.length; at += 8) {
        const relativeOffset = index.readInt32BE(at);
        const position = index.readInt32BE(at + 4);
        expect(position - previousPosition).toBeGreaterThan(500);
        expect(Number(logBytes.readBigInt64BE(position))).toBe(relativeOffset);
        previousPosition = position;
      }
    });
  });

  it("finds by timestamp the first batch still in the log after DeleteRecords inside a segment", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      // Ten batches of two records, a second apart, all in one segment.
      await appendMany(log, 10, "d", (index) => 100_000 + index * 1000);
      await log.advanceLogStartOffset(8);
      expect(log.segmentInfos()).toHaveLength(1);
      // Kafka answers the first remaining record for any earlier timestamp, not "none".
      expect(await log.offsetForTimestamp(0)).toEqual({ offset: 8, timestamp: 104_000 });
      expect(await log.offsetForTimestamp(101_000)).toEqual({ offset: 8, timestamp: 104_000 });
      expect(await log.offsetForTimestamp(106_000)).toEqual({ offset: 12, timestamp: 106_000 });
      await log.close();
    });
  });

  it("answers the max timestamp among the batches that reach the log start, not the deleted ones", async () => {
    await withTempDir(async (directory) => {
      // A small index interval puts the log start past an index entry, so the walk starts there.
      const log = await openLog(directory, { config: { indexIntervalBytes: 1 } });
      // Batches of two records: 0-1 at 9000, 2-3 at 3000, 4-5 at 4000, 6-7 at 4000, 8-9 at 1000.
      for (const timestamp of [9000, 3000, 4000, 4000, 1000]) await appendMany(log, 1, "m", () => timestamp);
      expect(await log.maxTimestampOffset()).toEqual({ timestamp: 9000, offset: 0 });
      // Cut on a batch boundary: the segment's running maximum (9000) is gone with the first batch.
      await log.advanceLogStartOffset(2);
      expect(log.segmentInfos()).toHaveLength(1);
      expect(await log.maxTimestampOffset()).toEqual({ timestamp: 4000, offset: 4 });
      // Inside a batch: still the batch base, the broker picks the record.
      await log.advanceLogStartOffset(5);
      expect(await log.maxTimestampOffset()).toEqual({ timestamp: 4000, offset: 4 });
      // Asked from a later offset (the broker does, when the log start cut away a batch's maximum).
      expect(await log.maxTimestampOffset(6)).toEqual({ timestamp: 4000, offset: 6 });
      expect(await log.maxTimestampOffset(8)).toEqual({ timestamp: 1000, offset: 8 });
      expect(await log.maxTimestampOffset(10)).toEqual({ timestamp: -1, offset: -1 });
      // Never below the log start, whatever is asked.
      expect(await log.maxTimestampOffset(0)).toEqual({ timestamp: 4000, offset: 4 });
      await log.close();
      const reopened = await openLog(directory);
      expect(await reopened.maxTimestampOffset()).toEqual({ timestamp: 4000, offset: 4 });
      await reopened.close();
    });
  });

  it("answers the first batch still in the log that ties with a deleted maximum", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      for (const timestamp of [9000, 1000, 9000, 9000]) await appendMany(log, 1, "t", () => timestamp);
      await log.advanceLogStartOffset(2);
      expect(await log.maxTimestampOffset()).toEqual({ timestamp: 9000, offset: 4 });
      await log.close();
    });
  });

  it("finds the max timestamp and time lookups across segments when the log start cuts into one", async () => {
    await withTempDir(async (directory) => {
      // One batch per segment: 0-1 at 9000, 2-3 at 3000, 4-5 at 2000, 6-7 at 3000, 8-9 at 2500.
      const log = await openLog(directory, { config: { segmentBytes: 100 } });
      for (const timestamp of [9000, 3000, 2000, 3000, 2500]) await appendMany(log, 1, "s", () => timestamp);
      expect(log.segmentInfos().map((segment) => segment.baseOffset)).toEqual([0, 2, 4, 6, 8]);
      // The log start inside the first segment's only batch: the segment stays, its maximum is gone.
      await log.advanceLogStartOffset(1);
      expect(log.segmentInfos()).toHaveLength(5);
      expect(await log.maxTimestampOffset()).toEqual({ timestamp: 9000, offset: 0 });
      await log.advanceLogStartOffset(2);
      expect(log.segmentInfos()[0]!.baseOffset).toBe(2);
      // A tie between segments goes to the earlier one, as Kafka's first-batch-with-the-maximum does.
      expect(await log.maxTimestampOffset()).toEqual({ timestamp: 3000, offset: 2 });
      expect(await log.maxTimestampOffset(3)).toEqual({ timestamp: 3000, offset: 2 });
      expect(await log.maxTimestampOffset(4)).toEqual({ timestamp: 3000, offset: 6 });
      expect(await log.maxTimestampOffset(7)).toEqual({ timestamp: 3000, offset: 6 });
      expect(await log.maxTimestampOffset(8)).toEqual({ timestamp: 2500, offset: 8 });
      // By timestamp, from an offset inside a segment: batches before it are skipped, later segments searched.
      expect(await log.offsetForTimestamp(2400)).toEqual({ offset: 2, timestamp: 3000 });
      expect(await log.offsetForTimestamp(2400, undefined, 3)).toEqual({ offset: 3, timestamp: 3000 });
      expect(await log.offsetForTimestamp(2400, undefined, 4)).toEqual({ offset: 6, timestamp: 3000 });
      expect(await log.offsetForTimestamp(2400, undefined, 7)).toEqual({ offset: 7, timestamp: 3000 });
      expect(await log.offsetForTimestamp(2400, undefined, 8)).toEqual({ offset: 8, timestamp: 2500 });
      expect(await log.offsetForTimestamp(2600, undefined, 8)).toBeUndefined();
      // Still bounded by the high watermark.
      expect(await log.offsetForTimestamp(2400, 8, 8)).toBeUndefined();
      await log.close();
    });
  });

  it("answers nothing for max timestamp and time lookups once every record is deleted", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 100 } });
      for (const timestamp of [9000, 3000]) await appendMany(log, 1, "e", () => timestamp);
      await log.advanceLogStartOffset(4);
      expect(await log.maxTimestampOffset()).toEqual({ timestamp: -1, offset: -1 });
      expect(await log.offsetForTimestamp(0)).toBeUndefined();
      await log.close();
    });
  });

  it("keeps a time index of rising timestamps and finds the first batch at or after a timestamp", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { indexIntervalBytes: 200, segmentBytes: 2000 } });
      // Timestamps rise by 10 per batch with one out-of-order batch in the middle.
      await appendMany(log, 60, "t", (index) => (index === 30 ? 1000 : 10_000 + index * 10));
      expect(log.segmentInfos().length).toBeGreaterThan(2);
      const at = await log.offsetForTimestamp(10_205);
      // Batch 21 (offsets 42-43) has timestamp 10_210: the first with maxTimestamp >= 10_205.
      expect(at).toEqual({ offset: 42, timestamp: 10_210 });
      expect(await log.offsetForTimestamp(0)).toEqual({ offset: 0, timestamp: 10_000 });
      expect(await log.offsetForTimestamp(10_590)).toEqual({ offset: 118, timestamp: 10_590 });
      expect(await log.offsetForTimestamp(10_591)).toBeUndefined();
      // Bounded by the high watermark.
      expect(await log.offsetForTimestamp(10_205, 42)).toBeUndefined();
      expect(await log.maxTimestampOffset()).toEqual({ timestamp: 10_590, offset: 118 });
      await log.close();

      for (const segment of log.segmentInfos()) {
        const timeIndex = await readFile(segment.timeIndexPath);
        let previous = Number.NEGATIVE_INFINITY;
        for (let position = 0; position < timeIndex.length; position += 12) {
          const timestamp = Number(timeIndex.readBigInt64BE(position));
          expect(timestamp).toBeGreaterThan(previous);
          previous = timestamp;
        }
        // Closed segments end with their max timestamp so a restart needs no scan to know it.
        if (!segment.active) expect(previous).toBe(segment.maxTimestamp);
      }
      const reopened = await openLog(directory);
      expect(await reopened.offsetForTimestamp(10_205)).toEqual({ offset: 42, timestamp: 10_210 });
      expect(await reopened.maxTimestampOffset()).toEqual({ timestamp: 10_590, offset: 118 });
      await reopened.close();
    });
  });

  it("rolls when an index is full", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { indexIntervalBytes: 0, segmentIndexBytes: 32 } });
      await appendMany(log, 20, "f");
      // 4 offset index entries per segment; the first batch of a segment needs none.
      expect(log.segmentInfos().length).toBeGreaterThanOrEqual(4);
      expect(valuesOf((await log.read(0, 1 << 20)).records).length).toBeGreaterThan(0);
      await log.close();
    });
  });
});

describe("segment rolling by time", () => {
  it("rolls once the active segment is older than segment.ms", async () => {
    await withTempDir(async (directory) => {
      let now = 1_000_000;
      const log = await openLog(directory, { now: () => now, config: { segmentMs: 60_000 } });
      await appendMany(log, 3, "a", () => now);
      now += 30_000;
      await appendMany(log, 1, "b", () => now);
      expect(log.segmentInfos()).toHaveLength(1);
      now += 31_000;
      await appendMany(log, 1, "c", () => now);
      expect(log.segmentInfos().map((segment) => segment.baseOffset)).toEqual([0, 8]);
      // Config changes apply at run time.
      log.updateConfig({ segmentMs: 1 });
      now += 2;
      await appendMany(log, 1, "d", () => now);
      expect(log.segmentInfos()).toHaveLength(3);
      await log.close();
    });
  });
});

describe("retention", () => {
  it("deletes segments older than retention.ms, and rolls and deletes the active one once all has expired", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 500, retentionMs: 1000 } });
      await appendMany(log, 30, "r", (index) => 100_000 + index * 100);
      const segments = log.segmentInfos();
      expect(segments.length).toBeGreaterThan(3);
      const now = segments[2]!.maxTimestamp + 1001;
      const result = await log.applyRetention({ now });
      expect(result.deleted.map((segment) => segment.baseOffset)).toEqual([
        segments[0]!.baseOffset,
        segments[1]!.baseOffset,
        segments[2]!.baseOffset,
      ]);
      expect(result.deleted.every((segment) => segment.reason === "retention.ms")).toBe(true);
      expect(result.logStartOffset).toBe(segments[3]!.baseOffset);
      expect(log.logStartOffset).toBe(segments[3]!.baseOffset);
      await expect(log.read(0, 100)).rejects.toBeInstanceOf(OffsetOutOfRangeError);

      // The active segment still holds expired records: it stays until everything before it is gone
      // and then goes too, as in Kafka, so an idle topic does not keep its last records forever.
      const end = log.logEndOffset;
      const everything = await log.applyRetention({ now: 10 ** 13 });
      expect(everything.deleted.at(-1)!.nextOffset).toBe(end);
      expect(log.segmentInfos()).toHaveLength(1);
      expect(log.segmentInfos()[0]).toMatchObject({ baseOffset: end, sizeInBytes: 0, active: true });
      expect(everything.logStartOffset).toBe(end);
      const files = await readdir(directory);
      expect(files.filter((name) => name.endsWith(".log"))).toHaveLength(1);
      // An empty log has nothing to expire, and appends go on at the old end.
      expect((await log.applyRetention({ now: 10 ** 13 })).deleted).toEqual([]);
      await appendMany(log, 1, "after", () => 10 ** 13);
      expect(log.logEndOffset).toBe(end + 2);
      await log.close();
    });
  });

  it("deletes the oldest segments until the log is within retention.bytes", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 400, retentionMs: -1 } });
      await appendMany(log, 40, "s");
      const before = log.sizeInBytes;
      log.updateConfig({ retentionBytes: Math.floor(before / 2) });
      const result = await log.applyRetention();
      expect(result.deleted.length).toBeGreaterThan(0);
      expect(result.deleted.every((segment) => segment.reason === "retention.bytes")).toBe(true);
      // Kafka's rule: delete whole segments only while the log stays at or above the limit.
      const limit = Math.floor(before / 2);
      expect(log.sizeInBytes).toBeGreaterThanOrEqual(limit);
      expect(log.sizeInBytes - log.segmentInfos()[0]!.sizeInBytes).toBeLessThan(limit);
      const read = await log.read(log.logStartOffset, 1);
      expect(decodeBatches(read.records)[0]!.baseOffset).toBe(log.logStartOffset);
      await log.close();
    });
  });

  it("lets a read that started before a deletion finish with the deleted segment's data", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 400, retentionMs: 0 } });
      await appendMany(log, 20, "g", () => 1);
      await log.close();
      // Reopen so the closed segments' files and indexes are not open or loaded yet.
      const reopened = await openLog(directory, { config: { retentionMs: 0 } });
      const firstSegmentEnd = reopened.segmentInfos()[1]!.baseOffset;
      const reading = reopened.read(0, 1 << 20);
      const deleting = reopened.applyRetention({ now: 10_000 });
      const [result, retention] = await Promise.all([reading, deleting]);
      expect(retention.deleted[0]!.baseOffset).toBe(0);
      expect(result.nextOffset).toBe(firstSegmentEnd);
      expect(valuesOf(result.records)[0]).toBe("g0-0");
      await expect(reopened.read(0, 100)).rejects.toBeInstanceOf(OffsetOutOfRangeError);
      await reopened.close();
      expect((await readdir(directory)).filter((name) => name.includes(".deleted"))).toEqual([]);
    });
  });

  it("keeps a deleted segment's files until the last reader releases it", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 400 } });
      await appendMany(log, 10, "h");
      await log.close();
      const { segment } = await LogSegment.load(directory, 0, Date.now(), {
        indexIntervalBytes: 4096,
        files: new FileHandleCache(),
      });
      segment.nextOffset = log.segmentInfos()[1]!.baseOffset;
      expect(segment.acquire()).toBe(true);
      await segment.markForDeletion();
      expect(segment.acquire()).toBe(false);
      let finished = false;
      const finishing = segment.finishDeletion().then(() => {
        finished = true;
      });
      const result = await segment.read(0, 1 << 20, Number.MAX_SAFE_INTEGER);
      expect(result).not.toBe("none-here");
      expect(valuesOf((result as { records: Buffer }).records)[0]).toBe("h0-0");
      expect(finished).toBe(false);
      expect(
        (await readdir(directory)).filter((name) => name.startsWith("00000000000000000000")).sort(),
      ).toEqual([
        "00000000000000000000.index.deleted",
        "00000000000000000000.log.deleted",
        "00000000000000000000.timeindex.deleted",
      ]);
      segment.release();
      await finishing;
      expect((await readdir(directory)).filter((name) => name.startsWith("00000000000000000000"))).toEqual(
        [],
      );
    });
  });

  it("does not delete segments at or above the given high watermark", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 400, retentionMs: 0 } });
      await appendMany(log, 20, "w", () => 1);
      const segments = log.segmentInfos();
      const result = await log.applyRetention({ now: 10_000, upToOffset: segments[2]!.baseOffset });
      expect(result.deleted.map((segment) => segment.baseOffset)).toEqual([
        segments[0]!.baseOffset,
        segments[1]!.baseOffset,
      ]);
      await log.close();
    });
  });
});

describe("truncation and log start", () => {
  it("truncates a suffix across segments, fixes indexes and epochs, and appends continue", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 500, indexIntervalBytes: 100 } });
      await appendMany(log, 10, "e1-");
      await log.append(makeBatch(records("e2", 2)), { assignOffsets: true, leaderEpoch: 2 });
      await appendMany(log, 10, "e2-");
      await log.append(makeBatch(records("e3", 2)), { assignOffsets: true, leaderEpoch: 3 });
      expect(log.leaderEpochs().map((entry) => entry.epoch)).toEqual([0, 2, 3]);
      const segmentsBefore = log.segmentInfos().length;
      expect(segmentsBefore).toBeGreaterThan(2);

      // Epoch 0: offsets 0..19, epoch 2: 20..41, epoch 3: 42..43.
      expect(log.leaderEpochs()).toEqual([
        { epoch: 0, startOffset: 0 },
        { epoch: 2, startOffset: 20 },
        { epoch: 3, startOffset: 42 },
      ]);
      // Offset 25 is inside the batch 24..25: that whole batch goes.
      const result = await log.truncateTo(25);
      expect(result.logEndOffset).toBe(24);
      expect(log.logEndOffset).toBe(24);
      expect(result.removedSegments).toBeGreaterThan(0);
      expect(log.segmentInfos().length).toBeLessThan(segmentsBefore);
      expect(log.leaderEpochs()).toEqual([
        { epoch: 0, startOffset: 0 },
        { epoch: 2, startOffset: 20 },
      ]);
      expect(log.endOffsetForEpoch(2)).toEqual({ epoch: 2, endOffset: 24 });
      expect(log.epochForOffset(24)).toBeUndefined();

      await log.append(makeBatch(records("new", 3)), { assignOffsets: true, leaderEpoch: 5 });
      expect(log.logEndOffset).toBe(27);
      const tail = await log.read(24, 1 << 20);
      expect(valuesOf(tail.records)).toEqual(["new-0", "new-1", "new-2"]);
      expect(decodeBatches((await log.read(22, 1)).records)[0]!.baseOffset).toBe(22);
      expect(log.epochForOffset(25)).toBe(5);
      expect(log.endOffsetForEpoch(3)).toEqual({ epoch: 2, endOffset: 24 });
      await log.close();

      const reopened = await openLog(directory);
      expect(reopened.recoveryReport.truncations).toEqual([]);
      expect(reopened.logEndOffset).toBe(27);
      expect(valuesOf((await reopened.read(24, 1 << 20)).records)).toEqual(["new-0", "new-1", "new-2"]);
      expect(reopened.leaderEpochs().map((entry) => entry.epoch)).toEqual([0, 2, 5]);
      await reopened.close();
    });
  });

  it("truncates inside the active segment and keeps time lookups right", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { indexIntervalBytes: 100 } });
      await appendMany(log, 20, "x", (index) => 5000 + index);
      await log.truncateTo(20);
      expect(log.logEndOffset).toBe(20);
      expect(await log.maxTimestampOffset()).toEqual({ timestamp: 5009, offset: 18 });
      expect(await log.offsetForTimestamp(5010)).toBeUndefined();
      await appendMany(log, 1, "y", () => 5001);
      expect(await log.offsetForTimestamp(5005)).toEqual({ offset: 10, timestamp: 5005 });
      await log.close();
    });
  });

  it("advances the log start offset and deletes whole segments below it, durably", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 400 } });
      await appendMany(log, 30, "d");
      const segments = log.segmentInfos();
      const target = segments[2]!.baseOffset + 1;
      const result = await log.advanceLogStartOffset(target);
      expect(result.logStartOffset).toBe(target);
      expect(result.deleted.map((segment) => segment.baseOffset)).toEqual([
        segments[0]!.baseOffset,
        segments[1]!.baseOffset,
      ]);
      await expect(log.read(target - 1, 100)).rejects.toThrow(/below the log start offset/);
      const read = await log.read(target, 1);
      // The batch containing the start offset is returned whole; clients skip the records below it.
      expect(decodeBatches(read.records)[0]!.baseOffset).toBe(target - 1);
      await expect(log.advanceLogStartOffset(log.logEndOffset + 1)).rejects.toBeInstanceOf(
        OffsetOutOfRangeError,
      );

      // Deleting everything rolls the active segment so its space is freed too.
      const end = log.logEndOffset;
      await log.advanceLogStartOffset(end);
      expect(log.segmentInfos()).toHaveLength(1);
      expect(log.sizeInBytes).toBe(0);
      expect((await log.read(end, 100)).records.length).toBe(0);
      await appendMany(log, 1, "after");
      expect(valuesOf((await log.read(end, 1000)).records)).toEqual(["after0-0", "after0-1"]);
      await log.close();

      const reopened = await openLog(directory);
      expect(reopened.logStartOffset).toBe(end);
      expect(reopened.logEndOffset).toBe(end + 2);
      await reopened.close();
    });
  });

  it("resets fully to start at a new offset (snapshot install)", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 400 } });
      await appendMany(log, 10, "z");
      await log.truncateFullyAndStartAt(1000);
      expect(log.logStartOffset).toBe(1000);
      expect(log.logEndOffset).toBe(1000);
      expect(log.leaderEpochs()).toEqual([]);
      await log.append(makeBatch(records("s", 1), { baseOffset: 1000, leaderEpoch: 7 }), {
        assignOffsets: false,
      });
      await log.close();
      const reopened = await openLog(directory);
      expect(reopened.segmentInfos().map((segment) => segment.baseOffset)).toEqual([1000]);
      expect(valuesOf((await reopened.read(1000, 100)).records)).toEqual(["s-0"]);
      expect(reopened.epochForOffset(1000)).toBe(7);
      await reopened.close();
    });
  });
});
