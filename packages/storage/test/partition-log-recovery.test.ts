import { spawnSync } from "node:child_process";
import { appendFile, readFile, rm, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { FlushScheduler, type LogEvent, PartitionLog, type PartitionLogOptions } from "../src/index.js";
import { decodeBatches, makeBatch, records, valuesOf, withTempDir } from "./helpers.js";

function openLog(directory: string, options: PartitionLogOptions = {}) {
  return PartitionLog.open(directory, { flushScheduler: new FlushScheduler(), ...options });
}

async function fill(log: PartitionLog, count: number, prefix = "v") {
  for (let index = 0; index < count; index += 1) {
    await log.append(makeBatch(records(`${prefix}${index}`, 2, 1000 + index)), {
      assignOffsets: true,
      leaderEpoch: Math.max(log.latestEpoch ?? 0, 1 + Math.floor(index / 10)),
    });
  }
}

async function allValues(log: PartitionLog): Promise<string[]> {
  const values: string[] = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const result = await log.read(offset, 1 << 20);
    values.push(...valuesOf(result.records));
    offset = result.nextOffset;
  }
  return values;
}

const expectedValues = (count: number, prefix = "v") =>
  Array.from({ length: count }, (_, index) => [`${prefix}${index}-0`, `${prefix}${index}-1`]).flat();

/** Closes cleanly then removes the marker: the next open behaves as after a crash. */
async function closeAsIfCrashed(log: PartitionLog): Promise<void> {
  await log.close();
  await unlink(join(log.directory, "clean-shutdown"));
}

describe("recovery", () => {
  it("needs no scan after a clean shutdown and restores offsets, epochs and timestamps", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 800, indexIntervalBytes: 100 } });
      await fill(log, 25);
      await log.close();
      const reopened = await openLog(directory);
      expect(reopened.recoveryReport).toMatchObject({
        cleanShutdown: true,
        segmentsScanned: 0,
        truncations: [],
        rebuiltIndexes: [],
        checkpointProblems: [],
      });
      expect(reopened.logEndOffset).toBe(50);
      expect(reopened.flushedOffset).toBe(50);
      expect(reopened.leaderEpochs()).toEqual(log.leaderEpochs());
      expect(await reopened.maxTimestampOffset()).toEqual({ timestamp: 1024, offset: 48 });
      expect(await allValues(reopened)).toEqual(expectedValues(25));
      await fill(reopened, 1, "w");
      expect(reopened.logEndOffset).toBe(52);
      await reopened.close();
    });
  });

  it("cuts a torn write at the tail, reports it, and continues appending after it", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 800 } });
      await fill(log, 15);
      const active = log.segmentInfos().at(-1)!;
      await closeAsIfCrashed(log);
      const partial = makeBatch(records("torn", 5)).subarray(0, 40);
      await appendFile(active.logPath, partial);

      const reopened = await openLog(directory);
      const report = reopened.recoveryReport;
      expect(report.cleanShutdown).toBe(false);
      expect(report.truncations).toEqual([
        {
          segmentBaseOffset: active.baseOffset,
          validBytes: active.sizeInBytes,
          removedBytes: 40,
          reason: expect.stringMatching(/fewer than a batch header/),
          // The torn bytes' header names no offset that could follow 29 (it was never stamped).
          lostOffsets: { from: 30 },
        },
      ]);
      // Only the active segment needed a scan: the closed ones were durable (recovery point).
      expect(report.segmentsScanned).toBe(1);
      expect((await stat(active.logPath)).size).toBe(active.sizeInBytes);
      expect(reopened.logEndOffset).toBe(30);
      expect(await allValues(reopened)).toEqual(expectedValues(15));
      await fill(reopened, 1, "after");
      expect(valuesOf((await reopened.read(30, 1000)).records)).toEqual(["after0-0", "after0-1"]);
      await reopened.close();
    });
  });

  it("cuts a batch whose length says more bytes than the file holds", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      await fill(log, 5);
      const active = log.segmentInfos().at(-1)!;
      await closeAsIfCrashed(log);
      const whole = makeBatch(records("half", 4), { baseOffset: 10, leaderEpoch: 1 });
      await appendFile(active.logPath, whole.subarray(0, whole.length - 7));
      const reopened = await openLog(directory);
      expect(reopened.recoveryReport.truncations[0]!.reason).toMatch(/truncated/);
      expect(reopened.logEndOffset).toBe(10);
      await reopened.close();
    });
  });

  it("cuts at a CRC-corrupt batch, dropping it and everything after it", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      await fill(log, 10);
      const active = log.segmentInfos().at(-1)!;
      const sixth = await log.read(12, 1);
      await closeAsIfCrashed(log);
      const bytes = await readFile(active.logPath);
      const position = bytes.indexOf(sixth.records);
      expect(position).toBeGreaterThan(0);
      bytes[position + 70]! ^= 0x01; // a record byte: only the CRC can tell
      await writeFile(active.logPath, bytes);

      const reopened = await openLog(directory);
      expect(reopened.recoveryReport.truncations).toEqual([
        expect.objectContaining({ validBytes: position, reason: expect.stringMatching(/CRC32C mismatch/) }),
      ]);
      expect(reopened.logEndOffset).toBe(12);
      expect(await allValues(reopened)).toEqual(expectedValues(6));
      await reopened.close();
    });
  });

  it("rebuilds deleted or damaged index files, identical to the originals", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 1000, indexIntervalBytes: 120 } });
      await fill(log, 30);
      await log.close();
      const segments = log.segmentInfos();
      expect(segments.length).toBeGreaterThan(2);
      const originals = await Promise.all(
        segments.flatMap((segment) => [readFile(segment.indexPath), readFile(segment.timeIndexPath)]),
      );
      await unlink(segments[0]!.indexPath);
      await unlink(segments.at(-1)!.timeIndexPath);
      await writeFile(segments[1]!.indexPath, Buffer.from("garbage!garbage!"));

      const reopened = await openLog(directory, { config: { indexIntervalBytes: 120 } });
      const rebuilt = reopened.recoveryReport.rebuiltIndexes
        .map((entry) => entry.segmentBaseOffset)
        .sort((a, b) => a - b);
      expect(rebuilt).toEqual([
        segments[0]!.baseOffset,
        segments[1]!.baseOffset,
        segments.at(-1)!.baseOffset,
      ]);
      for (let offset = 0; offset < 60; offset += 7) {
        const batch = decodeBatches((await reopened.read(offset, 1)).records)[0]!;
        expect(batch.baseOffset).toBe(offset - (offset % 2));
      }
      expect(await reopened.offsetForTimestamp(1017)).toEqual({ offset: 34, timestamp: 1017 });
      await reopened.close();
      const now = await Promise.all(
        segments.flatMap((segment) => [readFile(segment.indexPath), readFile(segment.timeIndexPath)]),
      );
      expect(now).toEqual(originals);
    });
  });

  it("drops later segments when an earlier one lost its tail (power loss before the recovery point moved)", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 800 } });
      await fill(log, 30);
      const segments = log.segmentInfos();
      await closeAsIfCrashed(log);
      // The recovery point never passed segment 1, and its last batch never reached the disk.
      await writeFile(join(directory, "recovery-point-checkpoint"), `0\n1\n${segments[1]!.baseOffset}\n`);
      const batchSize = makeBatch(records("v10", 2, 1010)).length;
      await truncate(segments[1]!.logPath, segments[1]!.sizeInBytes - batchSize);

      const reopened = await openLog(directory);
      const report = reopened.recoveryReport;
      expect(report.deletedSegments.map((entry) => entry.baseOffset)).toEqual(
        segments.slice(2).map((segment) => segment.baseOffset),
      );
      expect(reopened.logEndOffset).toBe(segments[2]!.baseOffset - 2);
      expect(await allValues(reopened)).toEqual(expectedValues(segments[2]!.baseOffset / 2 - 1));
      expect(reopened.leaderEpochs().at(-1)!.startOffset).toBeLessThan(reopened.logEndOffset);
      await reopened.close();
    });
  });

  it("rebuilds the leader epochs from batch headers when the checkpoint is lost", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 800 } });
      await fill(log, 35);
      const epochs = log.leaderEpochs();
      expect(epochs.map((entry) => entry.epoch)).toEqual([1, 2, 3, 4]);
      await log.close();
      await rm(join(directory, "leader-epoch-checkpoint"));
      const reopened = await openLog(directory);
      expect(reopened.recoveryReport.checkpointProblems).toEqual(["leader-epoch-checkpoint: missing"]);
      expect(reopened.recoveryReport.segmentsScanned).toBe(reopened.segmentInfos().length);
      expect(reopened.leaderEpochs()).toEqual(epochs);
      expect(reopened.endOffsetForEpoch(2)).toEqual({ epoch: 2, endOffset: 40 });
      await reopened.close();
      expect(await readFile(join(directory, "leader-epoch-checkpoint"), "utf8")).toBe(
        "0\n4\n1 0\n2 20\n3 40\n4 60\n",
      );
    });
  });

  it("keeps only the consistent prefix when leader epochs go backwards between segments", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory, { config: { segmentBytes: 800 } });
      await fill(log, 25);
      const segments = log.segmentInfos();
      const last = segments.at(-1)!;
      await log.close();
      // The epoch field is not covered by the CRC: make the last segment claim an older epoch.
      const bytes = await readFile(last.logPath);
      bytes.writeInt32BE(0, 12);
      await writeFile(last.logPath, bytes);
      await rm(join(directory, "leader-epoch-checkpoint"));

      const reopened = await openLog(directory);
      expect(reopened.recoveryReport.deletedSegments).toEqual([
        { baseOffset: last.baseOffset, reason: expect.stringMatching(/leader epochs go back/) },
      ]);
      expect(reopened.logEndOffset).toBe(last.baseOffset);
      expect(reopened.leaderEpochs().map((entry) => entry.epoch)).toEqual([1, 2]);
      await reopened.close();
    });
  });

  it("after a real crash, recovers epochs newer than the checkpoint (written only at roll and close) from the batches", async () => {
    await withTempDir(async (directory) => {
      // A child process appends 29 batches over epochs 1..5, rolling segments, and waits until the
      // recovery point (and with it the epoch checkpoint) has caught up with the last roll. Only then
      // does it append one batch of epoch 6, which rolls nothing, flush, and get killed. Waiting makes
      // the checkpoint's content certain: before, the last roll's checkpoint write raced the kill.
      const epochs = Array.from({ length: 30 }, (_, index) => (index < 29 ? 1 + Math.floor(index / 6) : 6));
      const batches = epochs.map((_epoch, index) => makeBatch(records(`c${index}`, 2)).toString("base64"));
      const storage = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "index.js");
      const child = spawnSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `
          const { readdir, readFile } = await import("node:fs/promises");
          const { PartitionLog, FlushScheduler } = await import(${JSON.stringify(storage)});
          const { directory, batches, epochs } = JSON.parse(process.argv[1]);
          const log = await PartitionLog.open(directory, { flushScheduler: new FlushScheduler(), config: { segmentBytes: 1200 } });
          const append = (index) => log.append(Buffer.from(batches[index], "base64"), { assignOffsets: true, leaderEpoch: epochs[index] });
          for (let index = 0; index < batches.length - 1; index += 1) await append(index);
          await log.flush();
          const lastRoll = Math.max(...(await readdir(directory)).filter((name) => name.endsWith(".log")).map((name) => Number.parseInt(name, 10)));
          const recoveryPoint = async () => Number((await readFile(directory + "/recovery-point-checkpoint", "utf8")).split("\\n")[2]);
          for (const deadline = Date.now() + 10000; (await recoveryPoint()) !== lastRoll; ) {
            if (Date.now() > deadline) throw new Error("the recovery point never reached the last roll at " + lastRoll);
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          const segmentsBefore = log.segmentInfos().length;
          await append(batches.length - 1);
          await log.flush();
          if (log.segmentInfos().length !== segmentsBefore) throw new Error("epoch 6 rolled a segment: shrink its batch");
          // Time in which a checkpoint written per new epoch would land, so that the lag below is a fact.
          await new Promise((resolve) => setTimeout(resolve, 300));
          process.kill(process.pid, "SIGKILL");
          `,
          JSON.stringify({ directory, batches, epochs }),
        ],
        { encoding: "utf8" },
      );
      expect(child.signal, child.stderr).toBe("SIGKILL");
      const checkpoint = await readFile(join(directory, "leader-epoch-checkpoint"), "utf8");
      // The checkpoint lags: no write per new epoch, only when a segment became durable.
      expect(checkpoint).toBe("0\n5\n1 0\n2 12\n3 24\n4 36\n5 48\n");

      const reopened = await openLog(directory);
      expect(reopened.recoveryReport.cleanShutdown).toBe(false);
      expect(reopened.recoveryReport.checkpointProblems).toEqual([]);
      expect(reopened.segmentInfos().length).toBeGreaterThan(1);
      expect(reopened.leaderEpochs()).toEqual(
        [0, 12, 24, 36, 48, 58].map((startOffset, index) => ({ epoch: index + 1, startOffset })),
      );
      expect(await allValues(reopened)).toEqual(
        Array.from({ length: 30 }, (_, index) => [`c${index}-0`, `c${index}-1`]).flat(),
      );
      await reopened.close();
      expect(await readFile(join(directory, "leader-epoch-checkpoint"), "utf8")).toBe(
        "0\n6\n1 0\n2 12\n3 24\n4 36\n5 48\n6 58\n",
      );
    });
  });

  it("cleans leftovers of interrupted deletions and temp files", async () => {
    await withTempDir(async (directory) => {
      const log = await openLog(directory);
      await fill(log, 2);
      await log.close();
      await writeFile(join(directory, "00000000000000000099.log.deleted"), "old");
      await writeFile(join(directory, "leader-epoch-checkpoint.1234.tmp"), "half");
      await writeFile(join(directory, "00000000000000000500.index"), "");
      const reopened = await openLog(directory);
      expect(reopened.recoveryReport.removedFiles.sort()).toEqual([
        "00000000000000000099.log.deleted",
        "00000000000000000500.index",
        "leader-epoch-checkpoint.1234.tmp",
      ]);
      expect(reopened.logEndOffset).toBe(4);
      await reopened.close();
    });
  });
});

describe("a closed segment cut short on disk", () => {
  /** Every value from the log start, reading on as a consumer does; fails instead of looping if stuck. */
  async function readOn(log: PartitionLog): Promise<string[]> {
    const values: string[] = [];
    let offset = log.logStartOffset;
    while (offset < log.logEndOffset) {
      const result = await log.read(offset, 1 << 20);
      expect(result.nextOffset, `a read from ${offset} made no progress`).toBeGreaterThan(offset);
      values.push(...valuesOf(result.records));
      offset = result.nextOffset;
    }
    return values;
  }

  // 10 bytes short, its last batch's header is whole; 40 bytes short, not even that is.
  it.each([10, 40])(
    "%i bytes short is read past: a read meeting the cut goes on with the next segment, reported once",
    async (cutBytes) => {
      await withTempDir(async (directory) => {
        const log = await openLog(directory, { config: { segmentBytes: 2000 } });
        await fill(log, 150);
        expect(log.segmentInfos().length).toBeGreaterThan(4);
        const third = log.segmentInfos()[2]!;
        await log.close();
        // Cut inside its last batch, above its (empty) offset index: the open finds nothing wrong.
        await truncate(third.logPath, third.sizeInBytes - cutBytes);
        const events: LogEvent[] = [];
        const reopened = await openLog(directory, {
          config: { segmentBytes: 2000 },
          onEvent: (event) => events.push(event),
        });
        const values = await readOn(reopened);
        await readOn(reopened);
        // Only the cut batch is missing; everything after it, in later segments, is read.
        const lost = expectedValues(150).filter((value) => !values.includes(value));
        expect(lost).toHaveLength(2);
        expect(values.at(-1)).toBe("v149-1");
        expect(events.filter((event) => event.type === "damaged-segment-skipped")).toEqual([
          { type: "damaged-segment-skipped", baseOffset: third.baseOffset, fromOffset: third.nextOffset - 2 },
        ]);
        await reopened.close();
      });
    },
  );

  it("below its last index entry: the log opens, the segment is cut at its last whole batch, and says so", async () => {
    await withTempDir(async (directory) => {
      const config = { segmentBytes: 2000, indexIntervalBytes: 100 };
      const log = await openLog(directory, { config });
      await fill(log, 150);
      expect(log.segmentInfos().length).toBeGreaterThan(4);
      const third = log.segmentInfos()[2]!;
      await log.close();
      // Mid-batch, well below the index's last entry: the index no longer fits and is rebuilt.
      await truncate(third.logPath, third.sizeInBytes - 250);
      const events: LogEvent[] = [];
      const reopened = await openLog(directory, { config, onEvent: (event) => events.push(event) });
      const rebuilt = events.find((event) => event.type === "index-rebuilt");
      expect(rebuilt).toMatchObject({ baseOffset: third.baseOffset });
      expect((rebuilt as { reason: string }).reason).toMatch(/segment cut at byte \d+ of \d+: /);
      const values = await readOn(reopened);
      expect(values.at(-1)).toBe("v149-1");
      expect(expectedValues(150).filter((value) => !values.includes(value)).length).toBeLessThanOrEqual(6);
      await reopened.close();
    });
  });
});
