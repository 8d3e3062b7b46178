import { unlink } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileHandleCache, FlushScheduler, OffsetOutOfRangeError, PartitionLog } from "../src/index.js";
import { decodeBatches, makeBatch, withTempDir } from "./helpers.js";

// Randomised model check: a seeded sequence of appends, truncations, log start advances, config
// changes and reopens (clean and as-if-crashed), with every read compared against a simple model.

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ModelBatch {
  baseOffset: number;
  lastOffset: number;
  epoch: number;
  values: string[];
}

// RAFTKA_SEED=7 replays one seed; RAFTKA_SEED=1-200 explores a range.
function seedsFromEnvironment(): number[] {
  const spec = process.env.RAFTKA_SEED;
  if (!spec) return [1, 2, 3];
  const [from, to = from] = spec.split("-").map(Number);
  return Array.from({ length: to! - from! + 1 }, (_, index) => from! + index);
}

const seeds = seedsFromEnvironment();

describe("PartitionLog against a model", () => {
  it.each(seeds)("seed %i", async (seed) => {
    await withTempDir(async (directory) => {
      const random = mulberry32(seed);
      const integer = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
      const scheduler = new FlushScheduler();
      // From one descriptor up: every operation must work however few the cache may hold.
      const fileHandleCache = new FileHandleCache({ maxOpenFiles: 1 + (seed % 4) });
      const open = () =>
        PartitionLog.open(directory, {
          flushScheduler: scheduler,
          fileHandleCache,
          config: { segmentBytes: integer(600, 2000), indexIntervalBytes: integer(0, 400) },
        });
      let log = await open();
      let model: ModelBatch[] = [];
      let logStart = 0;
      let epoch = 0;
      let counter = 0;
      const end = () => model.at(-1)?.lastOffset ?? -1;
      const context = (step: number, action: string) => `seed ${seed}, step ${step}: ${action}`;

      for (let step = 0; step < 250; step += 1) {
        const choice = random();
        const logEnd = Math.max(end() + 1, logStart);
        if (choice < 0.5) {
          if (random() < 0.1) epoch += 1;
          const values = Array.from(
            { length: integer(1, 4) },
            () => `m${counter++}-${"x".repeat(integer(0, 80))}`,
          );
          const asFollower = random() < 0.3;
          const batch = makeBatch(
            values.map((value) => ({ value })),
            asFollower ? { baseOffset: logEnd, leaderEpoch: epoch } : {},
          );
          const result = await log.append(
            batch,
            asFollower ? { assignOffsets: false } : { assignOffsets: true, leaderEpoch: epoch },
          );
          expect(result.firstOffset, context(step, "append")).toBe(logEnd);
          model.push({ baseOffset: logEnd, lastOffset: logEnd + values.length - 1, epoch, values });
        } else if (choice < 0.6 && model.length > 0) {
          const offset = integer(logStart, logEnd);
          const result = await log.truncateTo(offset);
          const cut = model.findIndex((batch) => batch.lastOffset >= offset);
          if (cut >= 0) model = model.slice(0, cut);
          const expectedEnd = Math.max(end() + 1, logStart);
          expect(result.logEndOffset, context(step, `truncateTo(${offset})`)).toBe(expectedEnd);
        } else if (choice < 0.67) {
          const offset = integer(logStart, logEnd);
          await log.advanceLogStartOffset(offset);
          logStart = Math.max(logStart, offset);
          model = model.filter((batch) => batch.lastOffset >= logStart);
        } else if (choice < 0.7) {
          log.updateConfig({ retentionBytes: integer(0, 3000), retentionMs: -1 });
          const result = await log.applyRetention();
          log.updateConfig({ retentionBytes: -1 });
          const newStart = log.logStartOffset;
          expect(newStart, context(step, "retention")).toBe(result.logStartOffset);
          if (result.deleted.length > 0) {
            expect(newStart, context(step, "retention start is a batch boundary")).toBe(
              model.find((batch) => batch.baseOffset >= newStart)?.baseOffset ?? logEnd,
            );
          }
          logStart = Math.max(logStart, newStart);
          model = model.filter((batch) => batch.lastOffset >= logStart);
        } else if (choice < 0.72) {
          log.updateConfig({ segmentBytes: integer(600, 2000), indexIntervalBytes: integer(0, 400) });
        } else if (choice < 0.77) {
          await log.close();
          if (random() < 0.5) await unlink(join(directory, "clean-shutdown"));
          log = await open();
          expect(log.recoveryReport.truncations, context(step, "reopen")).toEqual([]);
        } else {
          const offset = integer(Math.max(0, logStart - 2), logEnd + 2);
          const maxBytes = integer(0, 600);
          const action = `read(${offset}, ${maxBytes})`;
          if (offset < logStart) {
            await expect(log.read(offset, maxBytes), context(step, action)).rejects.toBeInstanceOf(
              OffsetOutOfRangeError,
            );
            continue;
          }
          const result = await log.read(offset, maxBytes);
          const expectedFirst = model.findIndex((batch) => batch.lastOffset >= offset);
          const batches = decodeBatches(result.records);
          if (expectedFirst < 0) {
            expect(batches, context(step, action)).toEqual([]);
            continue;
          }
          expect(batches.length, context(step, action)).toBeGreaterThan(0);
          batches.forEach((batch, index) => {
            const expected = model[expectedFirst + index]!;
            expect(
              { base: batch.baseOffset, epoch: batch.leaderEpoch, values: batch.records.map((r) => r.value) },
              context(step, action),
            ).toEqual({ base: expected.baseOffset, epoch: expected.epoch, values: expected.values });
          });
          if (batches.length > 1)
            expect(result.records.length, context(step, action)).toBeLessThanOrEqual(Math.max(maxBytes, 1));
        }
        expect(log.logEndOffset, context(step, "log end")).toBe(Math.max(end() + 1, logStart));
        expect(log.logStartOffset, context(step, "log start")).toBe(logStart);
        const probe = integer(logStart, Math.max(logStart, end()));
        const holder = model.find((batch) => batch.baseOffset <= probe && batch.lastOffset >= probe);
        if (holder)
          expect(log.epochForOffset(probe), context(step, `epochForOffset(${probe})`)).toBe(holder.epoch);
      }
      await log.close();
      expect(fileHandleCache.stats.open, `seed ${seed}: descriptors left open`).toBe(0);
    });
  });
});
