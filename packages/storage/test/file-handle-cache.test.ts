import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  FileHandleCache,
  FlushScheduler,
  KafkaStorageError,
  PartitionLog,
  type SyncableFile,
} from "../src/index.js";
import { makeBatch, records, valuesOf, withTempDir } from "./helpers.js";

// Vitest runs each test file in its own process, so this process's descriptors are ours to count.
const openDescriptors = () => readdirSync("/proc/self/fd").length;

/** Every value of the log, read segment by segment from the start. */
async function readAll(log: PartitionLog): Promise<string[]> {
  const values: string[] = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const result = await log.read(offset, 1 << 20);
    values.push(...valuesOf(result.records));
    offset = result.nextOffset;
  }
  return values;
}

function recordingSync(synced: string[], fail?: (path: string) => boolean) {
  return async (file: SyncableFile): Promise<void> => {
    synced.push(file.path);
    if (fail?.(file.path)) throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" });
    if (file.metadata) await file.handle!.sync();
    else await file.handle!.datasync();
  };
}

describe("FileHandleCache", () => {
  it("serves many more logs than descriptors: appends, reads and flushes stay right, nothing leaks", async () => {
    await withTempDir(async (directory) => {
      const maxOpenFiles = 8;
      const files = new FileHandleCache({ maxOpenFiles });
      const flushScheduler = new FlushScheduler();
      const baseline = openDescriptors();
      let peak = baseline;
      const sample = () => {
        peak = Math.max(peak, openDescriptors());
      };
      const sampler = setInterval(sample, 1);
      try {
        const logs: PartitionLog[] = [];
        for (let index = 0; index < 40; index++) {
          logs.push(
            await PartitionLog.open(join(directory, `log-${index}`), {
              fileHandleCache: files,
              flushScheduler,
              // Small segments: logs roll, so closed segments, index writes and directory fsyncs are in play.
              config: { segmentBytes: 400, indexIntervalBytes: 100 },
            }),
          );
          sample();
        }
        const expected = logs.map(() => [] as string[]);
        for (let wave = 0; wave < 6; wave++) {
          await Promise.all(
            logs.map(async (log, index) => {
              const values = records(`l${index}w${wave}`, 1 + ((index + wave) % 3));
              await log.append(makeBatch(values), { assignOffsets: true, leaderEpoch: wave });
              expected[index]!.push(...values.map((record) => record.value));
              sample();
            }),
          );
          // Flushes and reads of every log at once, interleaved with the next wave's appends.
          await Promise.all(logs.map((log) => log.flush()));
          sample();
          expect(logs.every((log) => log.flushedOffset === log.logEndOffset)).toBe(true);
        }
        const read = await Promise.all(logs.map((log) => readAll(log)));
        sample();
        expect(read).toEqual(expected);
        expect(logs.some((log) => log.segmentInfos().length > 1)).toBe(true);
        expect(files.stats.evictions).toBeGreaterThan(0);
        expect(files.stats.peakOpen).toBeLessThanOrEqual(maxOpenFiles);
        // The kernel agrees: never more descriptors than the cache allows (2 spare for the test runner).
        expect(peak - baseline).toBeLessThanOrEqual(maxOpenFiles + 2);

        for (const log of logs) await log.close();
        expect(files.stats.open).toBe(0);
        expect(openDescriptors()).toBe(baseline);

        // Reopened after the clean shutdown, every log still holds exactly what was written.
        const reopened = await Promise.all(
          logs.map((_log, index) =>
            PartitionLog.open(join(directory, `log-${index}`), { fileHandleCache: files }),
          ),
        );
        expect(reopened.every((log) => log.recoveryReport.cleanShutdown)).toBe(true);
        expect(await Promise.all(reopened.map((log) => readAll(log)))).toEqual(expected);
        for (const log of reopened) await log.close();
        expect(openDescriptors()).toBe(baseline);
      } finally {
        clearInterval(sampler);
      }
    });
  });

  it("fsyncs a dirty file before closing its descriptor; the next flush round has nothing left for it", async () => {
    await withTempDir(async (directory) => {
      const evictionSyncs: string[] = [];
      const roundSyncs: string[] = [];
      const files = new FileHandleCache({ maxOpenFiles: 2, syncFile: recordingSync(evictionSyncs) });
      const flushScheduler = new FlushScheduler({ syncFile: recordingSync(roundSyncs) });
      const first = await PartitionLog.open(join(directory, "first"), {
        fileHandleCache: files,
        flushScheduler,
      });
      await first.append(makeBatch(records("a", 3)), { assignOffsets: true, leaderEpoch: 0 });
      expect(first.flushedOffset).toBe(0);
      const firstLog = join(directory, "first", "00000000000000000000.log");
      expect(evictionSyncs).not.toContain(firstLog);

      // Opening another log needs descriptors: the first log's unsynced file gets fsynced, then closed.
      const second = await PartitionLog.open(join(directory, "second"), {
        fileHandleCache: files,
        flushScheduler,
      });
      expect(evictionSyncs).toContain(firstLog);
      expect(files.stats.dirtyEvictions).toBeGreaterThan(0);

      expect(await first.flush()).toBe(3);
      expect(roundSyncs).not.toContain(firstLog);
      expect(valuesOf((await first.read(0, 1 << 20)).records)).toEqual(["a-0", "a-1", "a-2"]);
      await first.close();
      await second.close();
      expect(files.stats.open).toBe(0);
    });
  });

  it("stops a log whose file failed its fsync on eviction, so nothing unsynced is acknowledged", async () => {
    await withTempDir(async (directory) => {
      const evictionSyncs: string[] = [];
      const files = new FileHandleCache({
        maxOpenFiles: 2,
        syncFile: recordingSync(evictionSyncs, (path) => path.includes(join("failing", ""))),
      });
      const flushScheduler = new FlushScheduler();
      const failing = await PartitionLog.open(join(directory, "failing"), {
        fileHandleCache: files,
        flushScheduler,
      });
      await failing.append(makeBatch(records("f", 1)), { assignOffsets: true, leaderEpoch: 0 });
      const other = await PartitionLog.open(join(directory, "other"), {
        fileHandleCache: files,
        flushScheduler,
      });
      expect(evictionSyncs.some((path) => path.includes("failing"))).toBe(true);
      expect(failing.storageFailure).toBeInstanceOf(KafkaStorageError);
      expect(failing.storageFailure!.message).toMatch(/check the disk, then restart the broker/);
      await expect(failing.flush()).rejects.toBeInstanceOf(KafkaStorageError);
      expect(failing.flushedOffset).toBe(0);
      await expect(
        failing.append(makeBatch(records("g", 1)), { assignOffsets: true, leaderEpoch: 0 }),
      ).rejects.toBeInstanceOf(KafkaStorageError);
      // Other logs on the same cache are unaffected.
      await other.append(makeBatch(records("o", 1)), { assignOffsets: true, leaderEpoch: 0 });
      expect(await other.flush()).toBe(1);
      await failing.close();
      await other.close();
      expect(files.stats.open).toBe(0);
    });
  });

  it("makes callers wait for a descriptor when every one is in use, then serves them all", async () => {
    await withTempDir(async (directory) => {
      const files = new FileHandleCache({ maxOpenFiles: 1 });
      const logs = await Promise.all(
        [0, 1, 2, 3].map((index) =>
          PartitionLog.open(join(directory, `w${index}`), { fileHandleCache: files }),
        ),
      );
      await Promise.all(
        logs.map((log, index) =>
          log.append(makeBatch(records(`w${index}`, 2)), { assignOffsets: true, leaderEpoch: 0 }),
        ),
      );
      const reads = await Promise.all(logs.map((log) => log.read(0, 1 << 20)));
      expect(reads.map((result) => valuesOf(result.records))).toEqual(
        [0, 1, 2, 3].map((index) => [`w${index}-0`, `w${index}-1`]),
      );
      expect(files.stats.waits).toBeGreaterThan(0);
      expect(files.stats.peakOpen).toBe(1);
      await Promise.all(logs.map((log) => log.close()));
      expect(files.stats.open).toBe(0);
    });
  });

  it("closes descriptors of idle logs even when the cache has room, and reopens them on use", async () => {
    await withTempDir(async (directory) => {
      const files = new FileHandleCache({ maxOpenFiles: 100, idleCloseMs: 20 });
      const baseline = openDescriptors();
      const log = await PartitionLog.open(join(directory, "idle"), { fileHandleCache: files });
      await log.append(makeBatch(records("i", 2)), { assignOffsets: true, leaderEpoch: 0 });
      await log.flush();
      expect(openDescriptors()).toBeGreaterThan(baseline);
      while (files.stats.open > 0) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(openDescriptors()).toBe(baseline);
      await log.append(makeBatch(records("j", 1)), { assignOffsets: true, leaderEpoch: 0 });
      expect(valuesOf((await log.read(0, 1 << 20)).records)).toEqual(["i-0", "i-1", "j-0"]);
      await log.close();
      expect(openDescriptors()).toBe(baseline);
    });
  });

  it("refuses a bound that is not a positive integer", () => {
    expect(() => new FileHandleCache({ maxOpenFiles: 0 })).toThrow(/maxOpenFiles must be a positive integer/);
  });
});
