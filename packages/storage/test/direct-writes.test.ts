import { execFileSync } from "node:child_process";
import { closeSync, constants, openSync } from "node:fs";
import { open, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import {
  DIRECT_WRITE_CHUNK_BYTES,
  DIRECT_WRITE_MAX_CHUNKS,
  DirectWrites,
  FlushScheduler,
  PartitionLog,
  type PartitionLogOptions,
} from "../src/index.js";
import { makeBatch, residentBytes, valuesOf, withRamfs, withTempDir } from "./helpers.js";

function openLog(directory: string, options: PartitionLogOptions) {
  return PartitionLog.open(directory, { flushScheduler: new FlushScheduler(), ...options });
}

/** A deterministic generator, so that a failing size sequence can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

/** One batch of `count` records whose values together take about `bytes`, each value tagged. */
function bigBatch(tag: string, bytes: number, count = 4): Buffer {
  const each = Math.max(1, Math.floor(bytes / count));
  return makeBatch(
    Array.from({ length: count }, (_, index) => {
      const prefix = `${tag}-${index}:`;
      return {
        value: prefix + String.fromCharCode(97 + (index % 26)).repeat(Math.max(0, each - prefix.length)),
      };
    }),
  );
}

async function logFile(directory: string): Promise<string> {
  const names = (await readdir(directory)).filter((name) => name.endsWith(".log"));
  expect(names).toHaveLength(1);
  return join(directory, names[0]!);
}

async function readValues(log: PartitionLog): Promise<string[]> {
  const values: string[] = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const result = await log.read(offset, 64 * 1024 * 1024);
    values.push(...valuesOf(result.records));
    offset = result.nextOffset;
  }
  return values;
}

/** Appends `batches` a few at a time without waiting in between, so the log writes several with one call. */
async function appendAll(log: PartitionLog, batches: Buffer[], together = 3): Promise<void> {
  for (let first = 0; first < batches.length; first += together) {
    await Promise.all(
      batches
        .slice(first, first + together)
        .map((batch) => log.append(batch, { assignOffsets: true, leaderEpoch: 1 })),
    );
  }
}

describe("direct writes", () => {
  it("write large appends past the page cache, byte for byte, and leave the file exactly as long as the log", async () => {
    await withTempDir(async (directory) => {
      // Room for the append over the largest single direct write (the default limit would send it through the page cache).
      const directWrites = new DirectWrites({ enabled: true, maxStagingBytes: 64 * 1024 * 1024 });
      const log = await openLog(directory, { directWrites });
      const next = random(20261205);
      // Sizes that put page boundaries anywhere, one append over the largest single direct write, and
      // small ones in between that go through the page cache.
      const sizes = [600_001, 1_500_003, 7_777, 640_000, 529_000, 3_000_000, 55, 2_000_001];
      sizes.push(DIRECT_WRITE_CHUNK_BYTES * DIRECT_WRITE_MAX_CHUNKS + 12_345);
      for (let index = 0; index < 12; index++) sizes.push(Math.floor(next() * 1_200_000) + 600_000);
      const batches = sizes.map((size, index) => bigBatch(`b${index}`, size));
      await appendAll(log, batches);
      await log.flush();

      // Stamped in place by the append, so the file must hold exactly these bytes.
      const expected = Buffer.concat(batches);
      const path = await logFile(directory);
      expect((await stat(path)).size).toBe(expected.length);
      expect((await readFile(path)).equals(expected)).toBe(true);
      expect(await readValues(log)).toEqual(batches.flatMap((batch) => valuesOf(batch)));

      const { directBytes, pageCacheBytes } = directWrites.stats;
      expect(directBytes + pageCacheBytes).toBe(expected.length);
      expect(directBytes).toBeGreaterThan(expected.length * 0.95);
      await log.close();
    });
  });

  it("keep the page cache free of what they wrote, which writes through the page cache do not", async () => {
    const resident: Record<string, number> = {};
    for (const enabled of [true, false]) {
      await withTempDir(async (directory) => {
        const directWrites = new DirectWrites({ enabled });
        const log = await openLog(directory, { directWrites });
        await appendAll(log, [bigBatch("a", 4_000_000), bigBatch("b", 4_000_000)], 1);
        await log.flush();
        resident[String(enabled)] = residentBytes(await logFile(directory));
        expect(directWrites.stats.directBytes > 0).toBe(enabled);
        await log.close();
      });
    }
    // Direct: at most the partial pages at the ends of the appends. Page cache: the whole 8 MB.
    expect(resident.true).toBeLessThanOrEqual(4 * 4096);
    expect(resident.false).toBeGreaterThan(7_000_000);
  });

  it("continue correctly after the log reopens and after a truncation", async () => {
    await withTempDir(async (directory) => {
      const directWrites = new DirectWrites({ enabled: true });
      let log = await openLog(directory, { directWrites });
      const first = [bigBatch("x0", 700_001), bigBatch("x1", 333_333)];
      await appendAll(log, first, 1);
      await log.close();

      // Reopened, the log no longer knows its last partial page: the next append writes it through the page cache.
      log = await openLog(directory, { directWrites });
      const second = [bigBatch("y0", 900_009), bigBatch("y1", 450_000), bigBatch("y2", 600_000)];
      await appendAll(log, second, 1);
      const cutAt = (await log.read(0, 1)).nextOffset * 3; // inside the second append's batches
      await log.truncateTo(cutAt);
      const kept = [...first, ...second].flatMap((batch) => valuesOf(batch)).slice(0, cutAt);
      const third = [bigBatch("z0", 1_000_003), bigBatch("z1", 77), bigBatch("z2", 512_000)];
      await appendAll(log, third, 1);
      await log.flush();
      expect(await readValues(log)).toEqual([...kept, ...third.flatMap((batch) => valuesOf(batch))]);
      await log.close();

      log = await openLog(directory, { directWrites });
      expect(log.recoveryReport).toMatchObject({ cleanShutdown: true, truncations: [] });
      expect(await readValues(log)).toEqual([...kept, ...third.flatMap((batch) => valuesOf(batch))]);
      await log.close();
    });
  });

  it("go through the page cache when the node's staging buffers are taken", async () => {
    await withTempDir(async (directory) => {
      const directWrites = new DirectWrites({ enabled: true, maxStagingBytes: 4 * DIRECT_WRITE_CHUNK_BYTES });
      const log = await openLog(directory, { directWrites });
      const batches = [
        bigBatch("fits", 700_000),
        bigBatch("too-big", 2_000_000),
        bigBatch("fits-again", 800_000),
      ];
      await appendAll(log, batches, 1);
      expect(directWrites.stats.stagingShortfalls).toBe(1);
      expect(directWrites.stats.pageCacheBytes).toBeGreaterThan(batches[1]!.length - 1);
      expect(directWrites.stats.directBytes).toBeGreaterThan(0);
      expect(await readValues(log)).toEqual(batches.flatMap((batch) => valuesOf(batch)));
      await log.close();
    });
  });

  it("turn off for the node when their staging memory cannot be had, and lose nothing", async () => {
    await withTempDir(async (directory) => {
      // More than one WebAssembly memory may hold (4 GiB): the allocation fails as an exhausted address space would.
      const directWrites = new DirectWrites({ enabled: true, maxStagingBytes: 8 * 1024 * 1024 * 1024 });
      const reasons: string[] = [];
      directWrites.onDisabled((reason) => reasons.push(reason));
      const log = await openLog(directory, { directWrites });
      const batches = [bigBatch("m0", 900_000), bigBatch("m1", 700_000)];
      await appendAll(log, batches, 1);
      expect(reasons).toEqual([expect.stringMatching(/no memory for the staging buffers/)]);
      expect(directWrites.stats).toMatchObject({
        directBytes: 0,
        pageCacheBytes: batches[0]!.length + batches[1]!.length,
      });
      expect(await readValues(log)).toEqual(batches.flatMap((batch) => valuesOf(batch)));
      await log.close();
    });
  });

  it("turn off for the node when the file system refuses them, and lose nothing", async () => {
    // ramfs has no O_DIRECT: opening a file with it fails with EINVAL, as on some network and FUSE file systems.
    await withRamfs(async (directory) => {
      const directWrites = new DirectWrites({ enabled: true });
      const reasons: string[] = [];
      directWrites.onDisabled((reason) => reasons.push(reason));
      const log = await openLog(join(directory, "p-0"), { directWrites });
      const batches = [bigBatch("r0", 800_000), bigBatch("r1", 900_000)];
      await appendAll(log, batches, 1);
      expect(directWrites.enabled).toBe(false);
      expect(reasons).toHaveLength(1);
      expect(reasons[0]).toMatch(/refused/);
      expect(directWrites.stats.directBytes).toBe(0);
      expect(await readValues(log)).toEqual(batches.flatMap((batch) => valuesOf(batch)));
      await log.close();
    });
  });
});

describe("append write times", () => {
  it("are told once per append, and include the wait for a busy libuv pool", async () => {
    await withTempDir(async (directory) => {
      const directWrites = new DirectWrites({ enabled: false });
      const times: number[] = [];
      directWrites.onAppendWritten((seconds) => times.push(seconds));
      const log = await openLog(directory, { directWrites });
      for (let index = 0; index < 5; index++)
        await log.append(bigBatch(`quick${index}`, 4096), { assignOffsets: true, leaderEpoch: 1 });
      expect(times).toHaveLength(5);
      expect(times.every((seconds) => seconds >= 0 && seconds < 5)).toBe(true);

      // Every pool thread held in open(2) of a FIFO until this test opens its other end: the next
      // append's write queues behind them for at least HOLD_MS, and its time must say so.
      const HOLD_MS = 150;
      const poolSize = Number(process.env.UV_THREADPOOL_SIZE || 4);
      const fifos = Array.from({ length: poolSize }, (_, index) => join(directory, `hold-${index}`));
      for (const fifo of fifos) execFileSync("mkfifo", [fifo]);
      const held = fifos.map((fifo) => open(fifo, "r"));
      const appending = log.append(bigBatch("queued", 4096), { assignOffsets: true, leaderEpoch: 1 });
      await sleep(HOLD_MS);
      expect(times).toHaveLength(5);
      // A reader still queued for a thread is not in open(2) yet: ENXIO, try again once it is.
      for (const fifo of fifos) {
        for (;;) {
          try {
            closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
            break;
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== "ENXIO") throw error;
            await sleep(5);
          }
        }
      }
      await appending;
      for (const handle of await Promise.all(held)) await handle.close();
      expect(times).toHaveLength(6);
      expect(times[5]).toBeGreaterThan((HOLD_MS * 0.8) / 1000);
      await log.close();
    });
  });
});
