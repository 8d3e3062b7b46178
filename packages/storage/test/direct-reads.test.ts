import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DirectReads, FlushScheduler, PartitionLog, type PartitionLogOptions } from "../src/index.js";
import { buildRefuseSyscall } from "./fixtures/refuse-syscall.js";
import { evictFromPageCache, makeBatch, residentBytes, valuesOf, withRamfs, withTempDir } from "./helpers.js";

function openLog(directory: string, options: PartitionLogOptions) {
  return PartitionLog.open(directory, { flushScheduler: new FlushScheduler(), ...options });
}

/** Batches of a few records with values of uneven sizes, so that reads start and end anywhere in a page. */
function batches(tag: string, count: number): Buffer[] {
  return Array.from({ length: count }, (_, index) =>
    makeBatch(
      Array.from({ length: 1 + (index % 5) }, (_, record) => ({
        value: `${tag}-${index}-${record}:`.padEnd(700 + ((index * 7_919 + record * 104_729) % 9_000), "v"),
      })),
    ),
  );
}

async function appendAll(log: PartitionLog, all: Buffer[]): Promise<void> {
  for (const batch of all) await log.append(batch, { assignOffsets: true, leaderEpoch: 1 });
}

async function segmentFiles(directory: string): Promise<string[]> {
  return (await readdir(directory))
    .filter((name) => name.endsWith(".log"))
    .map((name) => join(directory, name));
}

/** A value's tag and length, which tell values apart without printing kilobytes when they differ. */
function summary(value: string): string {
  return `${value.slice(0, value.indexOf(":"))}/${value.length}`;
}

/** Every value from `from` on, in reads of at most `maxBytes` (each read one or more whole batches). */
async function readValues(log: PartitionLog, maxBytes: number, from = log.logStartOffset): Promise<string[]> {
  const values: string[] = [];
  let offset = from;
  while (offset < log.logEndOffset) {
    const result = await log.read(offset, maxBytes);
    values.push(...valuesOf(result.records));
    offset = result.nextOffset;
  }
  return values;
}

describe("direct reads", () => {
  it("read data that is not in the page cache past it, byte for byte, and leave it out of the cache", async () => {
    await withTempDir(async (directory) => {
      const directReads = new DirectReads();
      // Small segments, so that reads also end at the end of a file.
      const log = await openLog(directory, { directReads, config: { segmentBytes: 1_000_000 } });
      const written = batches("old", 600);
      await appendAll(log, written);
      await log.flush();
      const files = await segmentFiles(directory);
      expect(files.length).toBeGreaterThan(2);
      for (const file of files) evictFromPageCache(file);
      for (const file of files) expect(residentBytes(file)).toBe(0);

      // Read limits that put the first byte and the last anywhere in a page, while new appends go on.
      const appending = appendAll(log, batches("new", 50));
      const expected = written.flatMap((batch) => valuesOf(batch)).map(summary);
      for (const maxBytes of [1, 3_000, 65_536, 250_001]) {
        const values = await readValues(log, maxBytes, 0);
        expect(values.slice(0, expected.length).map(summary)).toEqual(expected);
      }
      await appending;
      expect(directReads.stats.directBytes).toBeGreaterThan(2_000_000);
      // The old segments were all read and none of it came back into the page cache.
      for (const file of files.slice(0, -1)) expect(residentBytes(file)).toBe(0);
      await log.close();
    });
  });

  it("read data in the page cache, wholly or in part, through it", async () => {
    await withTempDir(async (directory) => {
      const directReads = new DirectReads();
      const log = await openLog(directory, { directReads });
      const written = batches("hot", 200);
      await appendAll(log, written);
      await log.flush();
      expect((await readValues(log, 100_000)).map(summary)).toEqual(
        written.flatMap((batch) => valuesOf(batch)).map(summary),
      );
      expect(directReads.stats.directBytes).toBe(0);
      expect(directReads.stats.pageCacheBytes).toBeGreaterThan(1_000_000);

      // The first 64 KiB back in the page cache: a read that starts there goes through it for all of its bytes.
      const [file] = await segmentFiles(directory);
      evictFromPageCache(file!);
      execFileSync("dd", [`if=${file}`, "of=/dev/null", "bs=65536", "count=1", "status=none"]);
      const before = directReads.stats.pageCacheBytes;
      const result = await log.read(0, 500_000);
      expect(directReads.stats.directBytes).toBe(0);
      expect(directReads.stats.pageCacheBytes - before).toBeGreaterThan(500_000);
      expect(valuesOf(result.records).map(summary)).toEqual(
        written
          .flatMap((batch) => valuesOf(batch))
          .slice(0, result.nextOffset)
          .map(summary),
      );
      await log.close();
    });
  });

  it("tell the reader which of its reads went to the disk", async () => {
    await withTempDir(async (directory) => {
      const directReads = new DirectReads();
      const log = await openLog(directory, { directReads });
      await appendAll(log, batches("told", 100));
      await log.flush();
      const told: number[] = [];
      const onDirectRead = (bytes: number) => told.push(bytes);
      await log.read(0, 200_000, undefined, undefined, { onDirectRead });
      expect(told).toEqual([]);
      const [file] = await segmentFiles(directory);
      evictFromPageCache(file!);
      const result = await log.read(0, 200_000, undefined, undefined, { onDirectRead });
      expect(told).toHaveLength(1);
      expect(told[0]).toBeGreaterThanOrEqual(result.records.length);
      await log.close();
    });
  });

  it("go through the page cache when turned off, and on a file system without O_DIRECT", async () => {
    await withTempDir(async (directory) => {
      const directReads = new DirectReads({ enabled: false });
      expect(directReads.enabled).toBe(false);
      expect(directReads.unavailableReason).toBeUndefined();
      const log = await openLog(directory, { directReads });
      const written = batches("off", 200);
      await appendAll(log, written);
      await log.flush();
      const [file] = await segmentFiles(directory);
      evictFromPageCache(file!);
      expect((await readValues(log, 100_000)).map(summary)).toEqual(
        written.flatMap((batch) => valuesOf(batch)).map(summary),
      );
      expect(directReads.stats.directBytes).toBe(0);
      expect(residentBytes(file!)).toBeGreaterThan(1_000_000);
      await log.close();
    });
    await withRamfs(async (directory) => {
      const directReads = new DirectReads();
      const log = await openLog(directory, { directReads, config: { preallocate: false } });
      const written = batches("ramfs", 100);
      await appendAll(log, written);
      expect((await readValues(log, 50_000)).map(summary)).toEqual(
        written.flatMap((batch) => valuesOf(batch)).map(summary),
      );
      expect(directReads.stats.directBytes).toBe(0);
      expect(directReads.enabled).toBe(true);
      await log.close();
    });
  });

  it("turn themselves off for the node, with the reason, where the log file cannot be reopened (no /proc), and read through the page cache", async () => {
    const result = await readColdFileInChild((program) => [
      "unshare",
      "--mount",
      "sh",
      "-c",
      `umount -l /proc && exec ${JSON.stringify(process.execPath)} --input-type=module -e '${program}'`,
    ]);
    expect(result.reasons).toEqual([expect.stringContaining("/proc/self/fd cannot be opened (ENOENT)")]);
  });

  it.each([
    ["on a kernel without cachestat", "cachestat", "the kernel has no cachestat"],
    ["on a file system that refuses O_DIRECT", "o-direct", "the file system refused a direct read (EINVAL)"],
  ])(
    "turn themselves off for the node, with the reason, %s, and read through the page cache",
    async (_, refused, reason) => {
      const result = await readColdFileInChild((program, directory) => [
        buildRefuseSyscall(directory),
        refused,
        process.execPath,
        "--input-type=module",
        "-e",
        program,
      ]);
      expect(result.reasons).toEqual([expect.stringContaining(reason)]);
    },
  );
});

/**
 * Reads two ranges of a file out of the page cache with DirectReads in a child process started by the
 * command `wrap` returns for the child's program (the built package: the child runs plain Node), checks
 * that the bytes are right, that the node turned direct reads off and that everything went through the
 * page cache, and returns what the child saw.
 */
async function readColdFileInChild(
  wrap: (program: string, directory: string) => string[],
): Promise<{ reasons: string[] }> {
  return withTempDir(async (directory) => {
    const file = join(directory, "cold.log");
    const bytes = Buffer.alloc(3_000_000);
    for (let index = 0; index < bytes.length; index++) bytes[index] = (index * 131 + (index >> 12)) & 0xff;
    await writeFile(file, bytes);
    execFileSync("sync", [file]);
    evictFromPageCache(file);
    const storage = join(dirname(fileURLToPath(import.meta.url)), "../dist/index.js");
    const program = `
      const { open } = await import("node:fs/promises");
      const { createHash } = await import("node:crypto");
      const digest = (buffer) => createHash("sha256").update(buffer).digest("hex");
      const { DirectReads } = await import(${JSON.stringify(storage)});
      const reads = new DirectReads();
      const reasons = [];
      reads.onDisabled((reason) => reasons.push(reason));
      const handle = await open(${JSON.stringify(file)}, "r");
      const first = await reads.read(handle, Buffer.allocUnsafe, 12_345, 1_000_000);
      const second = await reads.read(handle, Buffer.allocUnsafe, 2_000_001, 999_999);
      await handle.close();
      console.log(JSON.stringify({ first: digest(first), second: digest(second),
        enabled: reads.enabled, reasons, stats: reads.stats }));`;
    const [command, ...args] = wrap(program, directory);
    let output: string;
    try {
      output = execFileSync(command!, args).toString();
    } catch (error) {
      throw new Error(
        `the child that reads without /proc, cachestat or O_DIRECT failed (without /proc it needs root, as CI runs the suite): ${error}`,
      );
    }
    const result = JSON.parse(output);
    const digest = (buffer: Buffer) => createHash("sha256").update(buffer).digest("hex");
    expect(result.first).toBe(digest(bytes.subarray(12_345, 1_012_345)));
    expect(result.second).toBe(digest(bytes.subarray(2_000_001, 3_000_000)));
    expect(result.enabled).toBe(false);
    expect(result.stats).toEqual({ directBytes: 0, pageCacheBytes: 1_999_999 });
    return result;
  });
}
