import { open, readdir, stat, unlink, utimes } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FlushScheduler, PartitionLog, type PartitionLogOptions, preallocation } from "../src/index.js";
import { makeBatch, valuesOf, withTempDir } from "./helpers.js";

const MiB = 1024 * 1024;

function openLog(directory: string, options: PartitionLogOptions = {}) {
  return PartitionLog.open(directory, { flushScheduler: new FlushScheduler(), ...options });
}

/** One batch whose four values together take about `bytes`. */
function bigBatch(tag: string, bytes: number): Buffer {
  const each = Math.floor(bytes / 4);
  return makeBatch(
    Array.from({ length: 4 }, (_, index) => ({ value: `${tag}-${index}:`.padEnd(each, "x") })),
  );
}

async function logFiles(directory: string): Promise<string[]> {
  return (await readdir(directory))
    .filter((name) => name.endsWith(".log"))
    .sort()
    .map((name) => join(directory, name));
}

/** Bytes of disk `path` takes, and its length. */
async function usage(path: string): Promise<{ allocated: number; size: number }> {
  const info = await stat(path);
  return { allocated: info.blocks * 512, size: info.size };
}

/** Reservations run in the background after an append: waits until `path` takes more disk than `bytes`. */
async function allocatedBeyond(path: string, bytes: number): Promise<number> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const { allocated } = await usage(path);
    if (allocated > bytes || Date.now() > deadline) return allocated;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function readValues(log: PartitionLog): Promise<string[]> {
  const values: string[] = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const result = await log.read(offset, 64 * MiB);
    values.push(...valuesOf(result.records));
    offset = result.nextOffset;
  }
  return values;
}

const append = (log: PartitionLog, batch: Buffer) =>
  log.append(batch, { assignOffsets: true, leaderEpoch: 1 });
const roundUpToPage = (bytes: number) => Math.ceil(bytes / 4096) * 4096;

describe("block reservation ahead of appends (preallocate)", () => {
  it("is available here (the native addon is built and ext4 takes fallocate)", () => {
    expect(preallocation.unavailableReason).toBeUndefined();
  });

  it("reserves eight appends' worth past a large append, and the file stays exactly the log", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      const batches = [bigBatch("a", MiB), bigBatch("b", MiB)];
      await append(log, batches[0]!);
      const [path] = await logFiles(directory);
      const allocated = await allocatedBeyond(path!, 4 * MiB);
      const { size } = await usage(path!);
      expect(size).toBe(batches[0]!.length);
      expect(allocated).toBeGreaterThanOrEqual(8 * MiB);
      expect(allocated).toBeLessThanOrEqual(roundUpToPage(size) + 8 * batches[0]!.length);
      await append(log, batches[1]!);
      expect((await usage(path!)).size).toBe(batches[0]!.length + batches[1]!.length);
      expect(await readValues(log)).toEqual(batches.flatMap((batch) => valuesOf(batch)));
      await log.close();
      const reopened = await openLog(directory);
      expect(await readValues(reopened)).toEqual(batches.flatMap((batch) => valuesOf(batch)));
      await reopened.close();
    });
  });

  it("reserves nothing for small appends, nor with preallocate=false", async () => {
    await withTempDir(async (directory) => {
      const small = await openLog(join(directory, "small"));
      for (let index = 0; index < 8; index++) await append(small, bigBatch(`s${index}`, 100_000));
      const [smallPath] = await logFiles(join(directory, "small"));
      const smallUsage = await usage(smallPath!);
      expect(smallUsage.allocated).toBeLessThanOrEqual(roundUpToPage(smallUsage.size));
      await small.close();

      const off = await openLog(join(directory, "off"), { config: { preallocate: false } });
      await append(off, bigBatch("o", MiB));
      const [offPath] = await logFiles(join(directory, "off"));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const offUsage = await usage(offPath!);
      expect(offUsage.allocated).toBeLessThanOrEqual(roundUpToPage(offUsage.size));
      await off.close();
    });
  });

  it("never reserves past segment.bytes, and a rolled segment gives back what it did not use", async () => {
    await withTempDir(async (directory) => {
      const segmentBytes = 3 * MiB;
      const log = await openLog(directory, { config: { segmentBytes } });
      const batches = Array.from({ length: 4 }, (_, index) => bigBatch(`r${index}`, 900_000));
      await append(log, batches[0]!);
      const [first] = await logFiles(directory);
      expect(await allocatedBeyond(first!, 2 * MiB)).toBeLessThanOrEqual(segmentBytes);
      for (const batch of batches.slice(1)) await append(log, batch);
      const files = await logFiles(directory);
      expect(files).toHaveLength(2);
      const closed = await usage(files[0]!);
      expect(closed.allocated).toBeLessThanOrEqual(roundUpToPage(closed.size));
      expect(await readValues(log)).toEqual(batches.flatMap((batch) => valuesOf(batch)));
      await log.close();
    });
  });

  it("a segment rolled after a restart gives back what the process before reserved", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 2 * MiB } });
      const first = bigBatch("p0", 900_000);
      await append(log, first);
      const [path] = await logFiles(directory);
      expect(await allocatedBeyond(path!, MiB + 512 * 1024)).toBeGreaterThan(MiB + 512 * 1024);
      await log.close();
      // Small appends reserve nothing of their own; the roll at segment.bytes must still free the old tail.
      const reopened = await openLog(directory, { config: { segmentBytes: 2 * MiB } });
      const small = Array.from({ length: 12 }, (_, index) => bigBatch(`q${index}`, 100_000));
      for (const batch of small) await append(reopened, batch);
      const files = await logFiles(directory);
      expect(files.length).toBeGreaterThan(1);
      const closed = await usage(files[0]!);
      expect(closed.allocated).toBeLessThanOrEqual(roundUpToPage(closed.size));
      expect(await readValues(reopened)).toEqual([first, ...small].flatMap((batch) => valuesOf(batch)));
      await reopened.close();
    });
  });

  it("truncation frees the reservation with the truncated bytes", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      const batches = [bigBatch("t0", MiB), bigBatch("t1", MiB)];
      for (const batch of batches) await append(log, batch);
      const [path] = await logFiles(directory);
      await allocatedBeyond(path!, 4 * MiB);
      await log.truncateTo(4);
      const after = await usage(path!);
      expect(after.size).toBe(batches[0]!.length);
      expect(after.allocated).toBeLessThanOrEqual(roundUpToPage(after.size));
      expect(await readValues(log)).toEqual(valuesOf(batches[0]!));
      await log.close();
    });
  });

  it("after a crash, the reserved blocks past the end read as nothing: recovery keeps every batch and cuts none", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      const batches = [bigBatch("c0", MiB), bigBatch("c1", 700_000)];
      for (const batch of batches) await append(log, batch);
      const [path] = await logFiles(directory);
      await allocatedBeyond(path!, 4 * MiB);
      await log.close();
      await unlink(join(directory, "clean-shutdown"));
      const reopened = await openLog(directory);
      expect(reopened.recoveryReport).toMatchObject({ cleanShutdown: false });
      expect(reopened.recoveryReport.truncations).toEqual([]);
      expect(await readValues(reopened)).toEqual(batches.flatMap((batch) => valuesOf(batch)));
      await append(reopened, bigBatch("c2", MiB));
      expect((await usage(path!)).size).toBe(
        batches[0]!.length + batches[1]!.length + bigBatch("c2", MiB).length,
      );
      await reopened.close();
    });
  });

  it("closing a log gives back what its active segment reserved but did not use", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      await append(log, bigBatch("k", MiB));
      const [path] = await logFiles(directory);
      expect(await allocatedBeyond(path!, 4 * MiB)).toBeGreaterThan(4 * MiB);
      await log.close();
      const closed = await usage(path!);
      expect(closed.allocated).toBeLessThanOrEqual(roundUpToPage(closed.size));
    });
  });

  it("a log that failed still gives back its reservation when it closes", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      await append(log, bigBatch("f", MiB));
      const [path] = await logFiles(directory);
      expect(await allocatedBeyond(path!, 4 * MiB)).toBeGreaterThan(4 * MiB);
      // A flush whose fsync fails (the descriptor closed under it) fails the log.
      (log as unknown as { fail(message: string, cause: unknown): void }).fail(
        "test failure",
        new Error("EIO"),
      );
      expect(log.storageFailure).toBeDefined();
      await log.close();
      const closed = await usage(path!);
      expect(closed.allocated).toBeLessThanOrEqual(roundUpToPage(closed.size));
    });
  });

  it("opening a log gives back blocks a stopped process left reserved, and keeps the segments' modification times", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 2 * MiB } });
      const batches = Array.from({ length: 3 }, (_, index) => bigBatch(`o${index}`, 900_000));
      for (const batch of batches) await append(log, batch);
      await log.close();
      // What a crash leaves: reservations past the ends of the closed and the active segment.
      const files = await logFiles(directory);
      expect(files).toHaveLength(2);
      const modified = new Date("2020-01-02T03:04:05Z");
      for (const path of files) {
        const handle = await open(path, "r+");
        expect(await preallocation.reserve(handle.fd, (await handle.stat()).size, 4 * MiB)).toBe(true);
        await handle.close();
        await utimes(path, modified, modified);
        expect((await usage(path)).allocated).toBeGreaterThan(4 * MiB);
      }
      const reopened = await openLog(directory, { config: { segmentBytes: 2 * MiB } });
      for (const path of files) {
        const after = await usage(path);
        expect(after.allocated).toBeLessThanOrEqual(roundUpToPage(after.size));
        expect((await stat(path)).mtimeMs).toBe(modified.getTime());
      }
      expect(await readValues(reopened)).toEqual(batches.flatMap((batch) => valuesOf(batch)));
      await reopened.close();
    });
  });

  it("asks mayReserve first, reserves nothing when it refuses, and tells it the bytes it takes", async () => {
    await withTempDir(async (directory) => {
      const asked: number[] = [];
      const refused = await openLog(join(directory, "refused"), {
        mayReserve: (bytes) => {
          asked.push(bytes);
          return false;
        },
      });
      await append(refused, bigBatch("n", MiB));
      const [refusedPath] = await logFiles(join(directory, "refused"));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const refusedUsage = await usage(refusedPath!);
      expect(asked.length).toBeGreaterThan(0);
      expect(refusedUsage.allocated).toBeLessThanOrEqual(roundUpToPage(refusedUsage.size));
      await refused.close();

      const granted: number[] = [];
      const allowed = await openLog(join(directory, "allowed"), {
        mayReserve: (bytes) => {
          granted.push(bytes);
          return true;
        },
      });
      await append(allowed, bigBatch("y", MiB));
      const [allowedPath] = await logFiles(join(directory, "allowed"));
      const allocated = await allocatedBeyond(allowedPath!, 4 * MiB);
      expect(granted).toHaveLength(1);
      expect(allocated).toBeLessThanOrEqual(roundUpToPage(MiB) + granted[0]! + 64 * 1024);
      expect(allocated).toBeGreaterThanOrEqual(granted[0]!);
      await allowed.close();
    });
  });

  it("gives up quietly on a bad descriptor without turning itself off", async () => {
    expect(await preallocation.reserve(1_000_000, 0, MiB)).toBe(false);
    expect(preallocation.unavailableReason).toBeUndefined();
  });
});
