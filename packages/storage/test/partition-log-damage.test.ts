import { open } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import {
  CorruptRecordError,
  checkBatch,
  FlushScheduler,
  type LogEvent,
  PartitionLog,
  type PartitionLogOptions,
} from "../src/index.js";
import { makeBatch, records, valuesOf, withTempDir } from "./helpers.js";

const CONFIG = { segmentBytes: 2000, indexIntervalBytes: 100 };
const BATCHES = 150;

function openLog(directory: string, options: PartitionLogOptions = {}) {
  return PartitionLog.open(directory, { flushScheduler: new FlushScheduler(), config: CONFIG, ...options });
}

/** Batch i holds values v<i>-0 and v<i>-1 at offsets 2i and 2i+1, with timestamp 1000 + i. */
async function fill(log: PartitionLog) {
  for (let index = 0; index < BATCHES; index += 1) {
    await log.append(makeBatch(records(`v${index}`, 2, 1000 + index)), {
      assignOffsets: true,
      leaderEpoch: 1,
    });
  }
}

async function overwrite(path: string, position: number, bytes: Buffer): Promise<void> {
  const handle = await open(path, "r+");
  try {
    await handle.write(bytes, 0, bytes.length, position);
  } finally {
    await handle.close();
  }
}

type CorruptBatchEvent = Extract<LogEvent, { type: "corrupt-batch" }>;

/**
 * A log of BATCHES batches whose third segment (closed, below the recovery point) has `damage` written
 * at its middle, reopened after a clean shutdown as an operator would find it.
 */
async function withDamagedLog(
  damage: Buffer,
  run: (
    log: PartitionLog,
    damaged: { baseOffset: number; nextOffset: number; logPath: string; position: number },
    events: LogEvent[],
  ) => Promise<void>,
) {
  await withTempDir(async (directory) => {
    const log = await openLog(directory);
    await fill(log);
    const third = log.segmentInfos()[2]!;
    expect(log.segmentInfos().length).toBeGreaterThan(4);
    await log.close();
    const position = Math.floor(third.sizeInBytes / 2);
    await overwrite(third.logPath, position, damage);
    const events: LogEvent[] = [];
    const reopened = await openLog(directory, { onEvent: (event) => events.push(event) });
    // Below the recovery point after a clean shutdown: nothing re-reads the segment at open.
    expect(reopened.recoveryReport.truncations).toEqual([]);
    try {
      await run(reopened, { ...third, position }, events);
    } finally {
      await reopened.close();
    }
  });
}

/**
 * Reads on from `from` as a consumer does; stops at the first error, which it returns. Batches whose
 * CRC fails (damage inside the records: a read checks headers, the client checks CRCs) are counted.
 */
async function readOn(
  log: PartitionLog,
  from: number,
): Promise<{ values: string[]; error?: unknown; at: number; badCrcBatches: number }> {
  const values: string[] = [];
  let badCrcBatches = 0;
  let offset = from;
  while (offset < log.logEndOffset) {
    let result: Awaited<ReturnType<PartitionLog["read"]>>;
    try {
      result = await log.read(offset, 300);
    } catch (error) {
      return { values, error, at: offset, badCrcBatches };
    }
    expect(result.nextOffset, `a read from ${offset} made no progress`).toBeGreaterThan(offset);
    for (let at = 0; at < result.records.length; ) {
      const size = result.records.readInt32BE(at + 8) + 12;
      const batch = result.records.subarray(at, at + size);
      if (checkBatch(batch, 0, size, true) === undefined) values.push(...valuesOf(batch));
      else badCrcBatches += 1;
      at += size;
    }
    offset = result.nextOffset;
  }
  return { values, at: offset, badCrcBatches };
}

const seeded = (seed: number, length: number) => {
  let state = seed;
  return Buffer.from(
    Array.from({ length }, () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state & 0xff;
    }),
  );
};

describe("a damaged region inside a closed segment", () => {
  it.each([
    ["200 zero bytes", Buffer.alloc(200)],
    ["200 0xff bytes", Buffer.alloc(200, 0xff)],
    ["200 random bytes (seed 7)", seeded(7, 200)],
  ])(
    "%s: reads of the damaged offsets fail with CORRUPT_MESSAGE, reported once, and the rest stays readable",
    async (_name, damage) => {
      await withDamagedLog(damage, async (log, damaged, events) => {
        const first = await readOn(log, 0);
        expect(first.error).toBeInstanceOf(CorruptRecordError);
        const error = first.error as CorruptRecordError;
        expect(error.code).toBe("CORRUPT_MESSAGE");
        expect(error.message).toContain(damaged.logPath);
        expect(error.message).toMatch(/damaged at byte \d+ .*DeleteRecords up to offset \d+/);
        // Everything before the damage was read, in order; only a batch the damage begins inside (its
        // header intact) may come back, and the client's CRC check refuses it.
        expect(first.at).toBeGreaterThanOrEqual(damaged.baseOffset);
        expect(first.at).toBeLessThan(damaged.nextOffset);
        expect(first.badCrcBatches).toBeLessThanOrEqual(1);
        const intact = first.at - 2 * first.badCrcBatches;
        expect(first.values).toEqual(
          Array.from({ length: intact }, (_, offset) => `v${offset >> 1}-${offset & 1}`),
        );

        // Every retry fails the same way (no empty answer a consumer would wait on forever), reported once.
        await expect(log.read(first.at, 300)).rejects.toBeInstanceOf(CorruptRecordError);
        await expect(log.read(first.at + 1, 300)).rejects.toBeInstanceOf(CorruptRecordError);
        const reported = events.filter((event): event is CorruptBatchEvent => event.type === "corrupt-batch");
        expect(reported).toHaveLength(1);
        const report = reported[0]!;
        expect(report).toMatchObject({
          baseOffset: damaged.baseOffset,
          path: damaged.logPath,
          firstLostOffset: first.at,
        });
        expect(report.position).toBeGreaterThanOrEqual(damaged.position - 200);
        expect(report.position).toBeLessThanOrEqual(damaged.position + 200);
        expect(report.resumeOffset).toBeGreaterThan(first.at);
        expect(report.resumeOffset).toBeLessThanOrEqual(damaged.nextOffset);

        // The operator's way on: from the resume offset the rest of the log reads to its end.
        const rest = await readOn(log, report.resumeOffset);
        expect(rest.error).toBeUndefined();
        expect(rest.values.at(-1)).toBe(`v${BATCHES - 1}-1`);
        const lost = (report.resumeOffset - first.at) / 2;
        // Only the batches the damage covers, and those up to the next index entry (100 bytes on).
        expect(lost).toBeLessThanOrEqual(8);
        await log.advanceLogStartOffset(report.resumeOffset);
        expect((await readOn(log, log.logStartOffset)).error).toBeUndefined();
      });
    },
  );

  it("a timestamp lookup that meets the damage fails with CORRUPT_MESSAGE instead of answering a later batch", async () => {
    await withDamagedLog(Buffer.alloc(200), async (log, damaged) => {
      const first = await readOn(log, 0);
      const lostTimestamp = 1000 + (first.at >> 1);
      await expect(log.offsetForTimestamp(lostTimestamp)).rejects.toBeInstanceOf(CorruptRecordError);
      // Lookups that do not cross the damage answer as before.
      expect(await log.offsetForTimestamp(1000)).toEqual({ offset: 0, timestamp: 1000 });
      const afterSegment = 1000 + (damaged.nextOffset >> 1);
      expect(await log.offsetForTimestamp(afterSegment)).toEqual({
        offset: damaged.nextOffset,
        timestamp: afterSegment,
      });
    });
  });
});

describe("a truncation that meets damage", () => {
  it("refuses, failing the log, instead of keeping the entries past the damage it cannot find", async () => {
    await withDamagedLog(Buffer.alloc(200), async (log, damaged) => {
      // An offset whose batch a walk from the nearest index entry cannot reach past the damage.
      const { at, error } = await readOn(log, damaged.baseOffset);
      expect(error).toBeInstanceOf(CorruptRecordError);
      const offset = at + 1;
      await expect(log.read(offset, 300)).rejects.toBeInstanceOf(CorruptRecordError);
      await expect(log.truncateTo(offset)).rejects.toThrow(
        `cannot truncate ${damaged.logPath} to offset ${offset}: the segment is damaged at byte`,
      );
      await expect(
        log.append(makeBatch(records("after", 1, 5000)), { assignOffsets: true, leaderEpoch: 1 }),
      ).rejects.toThrow();
    });
  });
});
