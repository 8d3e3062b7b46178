import { open, readdir, readFile, rename, rm, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ApiKey, ErrorCode } from "@raftka/protocol";
import { describe, expect, it } from "vitest";
import {
  batch,
  createTopic,
  fetchRequest,
  produceRequest,
  startTestBroker,
  type TestBroker,
} from "./helpers.js";

// Damage done to a stopped broker's files, as an operator or a bad disk would; each case checks the
// restarted broker says so in its log (what was lost, what to do) instead of carrying on silently.

const TOPIC_CONFIG = { "segment.bytes": "2000", "index.interval.bytes": "100" };

async function produceMany(node: TestBroker, topic: string, batches: number, partition = 0): Promise<void> {
  const connection = await node.connect();
  for (let index = 0; index < batches; index += 1) {
    const response = await connection.send(
      ApiKey.Produce,
      7,
      produceRequest(topic, partition, batch([`${topic}-${index}-a`, `${topic}-${index}-b`])),
    );
    expect(response.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
  }
}

async function segmentLogs(directory: string): Promise<string[]> {
  return (await readdir(directory)).filter((name) => name.endsWith(".log")).sort();
}

const linesAt = (node: TestBroker, level: string, text: string) =>
  node.logLines.filter((line) => line.level === level && String(line.msg).includes(text));

async function withNode(run: (node: TestBroker) => Promise<TestBroker>): Promise<void> {
  let node = await startTestBroker({});
  try {
    node = await run(node);
  } finally {
    await node.cleanup();
  }
}

describe("a zero-filled region inside a closed segment", () => {
  it("fails the partition's Fetch with CORRUPT_MESSAGE every time, warns once, and other partitions and offsets still read", async () => {
    await withNode(async (first) => {
      const connection = await first.connect();
      await createTopic(connection, "dmg", 2, TOPIC_CONFIG);
      await produceMany(first, "dmg", 120, 0);
      await produceMany(first, "dmg", 3, 1);
      const directory = join(first.dataDir, "dmg-0");
      const logs = await segmentLogs(directory);
      expect(logs.length).toBeGreaterThan(3);
      const damaged = join(directory, logs[1]!);
      await first.stop();
      const handle = await open(damaged, "r+");
      await handle.write(Buffer.alloc(200), 0, 200, 700);
      await handle.close();

      const node = await first.restart();
      const reader = await node.connect();
      const fetchAt = async (partition: number, offset: bigint) =>
        (
          await reader.send(
            ApiKey.Fetch,
            11,
            fetchRequest([{ topic: "dmg", partition, offset, maxBytes: 300 }]),
          )
        ).responses[0]!.partitions[0]!;
      // Read on as a consumer does until the damage stops it.
      let offset = 0n;
      let answer = await fetchAt(0, offset);
      while (answer.errorCode === ErrorCode.NONE) {
        expect(answer.records?.length ?? 0, `fetch at ${offset} returned nothing`).toBeGreaterThan(0);
        const records = answer.records!;
        let at = 0;
        while (at < records.length) {
          offset = records.readBigInt64BE(at) + BigInt(records.readInt32BE(at + 23)) + 1n;
          at += records.readInt32BE(at + 8) + 12;
        }
        answer = await fetchAt(0, offset);
      }
      expect(answer.errorCode).toBe(ErrorCode.CORRUPT_MESSAGE);
      expect((await fetchAt(0, offset)).errorCode).toBe(ErrorCode.CORRUPT_MESSAGE);
      expect((await fetchAt(1, 0n)).errorCode).toBe(ErrorCode.NONE);

      const warnings = linesAt(node, "warn", "is damaged at byte");
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ topic: "dmg", partition: 0, segmentFile: damaged });
      expect(String(warnings[0]!.msg)).toContain("DeleteRecords up to offset");
      const resume = BigInt(warnings[0]!.resumeOffset as number);
      const after = await fetchAt(0, resume);
      expect(after.errorCode).toBe(ErrorCode.NONE);
      expect(after.records?.length).toBeGreaterThan(0);
      return node;
    });
  });
});

describe("damage found when the broker starts again after a clean stop", () => {
  it("an active segment cut short: an error names the partition, the bytes cut and the offsets lost", async () => {
    await withNode(async (first) => {
      await createTopic(await first.connect(), "cut", 1, TOPIC_CONFIG);
      await produceMany(first, "cut", 10);
      const directory = join(first.dataDir, "cut-0");
      const active = join(directory, (await segmentLogs(directory)).at(-1)!);
      await first.stop();
      await truncate(active, (await stat(active)).size - 50);
      const node = await first.restart();
      const errors = linesAt(node, "error", "had to be cut at byte");
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ topic: "cut", partition: 0, removedBytes: expect.any(Number) });
      expect(String(errors[0]!.msg)).toContain("offsets 18-19 are lost");
      // The Raft state knew those offsets were committed: that is said too.
      expect(
        linesAt(node, "error", "records offsets up to 19 as committed, but the log ends at 18"),
      ).toHaveLength(1);
      return node;
    });
  });

  it("garbage in the log start checkpoint: a warning that records removed by DeleteRecords may be back", async () => {
    await withNode(async (first) => {
      await createTopic(await first.connect(), "chk", 1, TOPIC_CONFIG);
      await produceMany(first, "chk", 3);
      await first.stop();
      const directory = join(first.dataDir, "chk-0");
      for (const name of [
        "log-start-offset-checkpoint",
        "leader-epoch-checkpoint",
        "recovery-point-checkpoint",
      ]) {
        await writeFile(join(directory, name), "\u0000garbage\nnot a checkpoint");
      }
      const node = await first.restart();
      const warnings = linesAt(node, "warn", "error reading checkpoint");
      expect(warnings.map((line) => String(line.problem).split(":")[0]).sort()).toEqual([
        "leader-epoch-checkpoint",
        "log-start-offset-checkpoint",
        "recovery-point-checkpoint",
      ]);
      expect(String(warnings.find((line) => String(line.problem).startsWith("log-start"))!.msg)).toContain(
        "reset to the base offset of the first segment",
      );
      return node;
    });
  });

  it("a closed segment's .log removed: the gap of offsets it held is named", async () => {
    await withNode(async (first) => {
      await createTopic(await first.connect(), "gap", 1, TOPIC_CONFIG);
      await produceMany(first, "gap", 120);
      const directory = join(first.dataDir, "gap-0");
      const logs = await segmentLogs(directory);
      expect(logs.length).toBeGreaterThan(3);
      await first.stop();
      await unlink(join(directory, logs[1]!));
      const from = Number(logs[1]!.slice(0, 20));
      const to = Number(logs[2]!.slice(0, 20)) - 1;
      const node = await first.restart();
      const errors = linesAt(node, "error", `offsets ${from}-${to} are missing`);
      expect(errors).toHaveLength(1);
      expect(String(errors[0]!.msg)).toContain(`${logs[1]} was removed`);
      expect(linesAt(node, "warn", "whose segment file is missing")).toHaveLength(1);
      return node;
    });
  });

  it("a deletion a kill interrupted (.log renamed, indexes not yet): routine, no gap reported", async () => {
    await withNode(async (first) => {
      await createTopic(await first.connect(), "interrupted", 1, TOPIC_CONFIG);
      await produceMany(first, "interrupted", 120);
      const directory = join(first.dataDir, "interrupted-0");
      const logs = await segmentLogs(directory);
      expect(logs.length).toBeGreaterThan(3);
      await first.stop();
      // What markForDeletion leaves between its first rename and the next.
      await rename(join(directory, logs[0]!), join(directory, `${logs[0]!}.deleted`));
      const node = await first.restart();
      expect(linesAt(node, "error", "are missing")).toEqual([]);
      expect(linesAt(node, "warn", "whose segment file is missing")).toEqual([]);
      expect(linesAt(node, "info", "removed leftover files of interrupted operations")).toHaveLength(1);
      return node;
    });
  });

  it("a partition directory removed: the Raft commit index beyond the empty log is reported", async () => {
    await withNode(async (first) => {
      await createTopic(await first.connect(), "gone", 1, TOPIC_CONFIG);
      await produceMany(first, "gone", 5);
      await first.stop();
      await rm(join(first.dataDir, "gone-0"), { recursive: true });
      const node = await first.restart();
      const errors = linesAt(node, "error", "records offsets up to 9 as committed, but the log ends at 0");
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ topic: "gone", partition: 0 });
      return node;
    });
  });

  it("the Raft stable store damaged in the middle: an error says what was skipped, that the records after it were kept, and to check the disk", async () => {
    await withNode(async (first) => {
      const connection = await first.connect();
      for (let index = 0; index < 20; index += 1) await createTopic(connection, `t${index}`, 2);
      await first.stop();
      const path = join(first.dataDir, "raft-stable-store");
      const size = (await stat(path)).size;
      const handle = await open(path, "r+");
      await handle.write(Buffer.alloc(64, 0xa5), 0, 64, Math.floor(size / 2));
      await handle.close();
      const second = await first.restart();
      const errors = linesAt(second, "error", "is damaged in the middle");
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({
        damagedRegions: [expect.objectContaining({ from: expect.any(Number), problem: expect.any(String) })],
        recordsKeptAfterDamage: expect.any(Number),
        rewrittenWithoutDamage: true,
      });
      expect(errors[0]!.damagedBytesSkipped).toBeGreaterThanOrEqual(64);
      expect(errors[0]!.damagedBytesSkipped).toBeLessThan(size / 2);
      expect(errors[0]!.recordsKeptAfterDamage).toBeGreaterThan(0);
      expect(String(errors[0]!.msg)).toMatch(
        /recovered to the newest intact values.*cannot be read.*check the disk/,
      );
      expect(linesAt(second, "warn", "a torn last write")).toHaveLength(0);
      // The damage was rewritten away: the next start finds a healthy store.
      const third = await second.restart();
      expect(linesAt(third, "error", "is damaged in the middle")).toHaveLength(0);
      expect(linesAt(third, "warn", "a torn last write")).toHaveLength(0);
      return third;
    });
  });

  it("the Raft stable store with a torn last write: a warning that calls it normal after a crash", async () => {
    await withNode(async (first) => {
      await createTopic(await first.connect(), "torn", 1);
      await first.stop();
      const path = join(first.dataDir, "raft-stable-store");
      await writeFile(path, Buffer.concat([await readFile(path), Buffer.from([0, 0, 0, 1, 0, 0])]));
      const node = await first.restart();
      expect(linesAt(node, "warn", "a torn last write")).toHaveLength(1);
      expect(linesAt(node, "error", "is damaged in the middle")).toHaveLength(0);
      return node;
    });
  });
});
