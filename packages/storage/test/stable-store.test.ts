import { access, link, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { crc32c } from "@node-rs/crc32";
import { describe, expect, it } from "vitest";
import { FlushScheduler, InvalidRequestError, StableStore, type SyncableFile } from "../src/index.js";
import { withTempDir } from "./helpers.js";

const text = (buffer: Buffer | undefined) => buffer?.toString("utf8");

const HEADER_BYTES = 8;

/** Where each record of a healthy store file starts and ends, walked by its length fields. */
function recordSpans(bytes: Buffer): Array<{ from: number; end: number }> {
  const spans: Array<{ from: number; end: number }> = [];
  for (let at = HEADER_BYTES; at < bytes.length; ) {
    const end = at + 8 + bytes.readUInt32BE(at + 4);
    spans.push({ from: at, end });
    at = end;
  }
  return spans;
}

function contentsOf(store: StableStore): Record<string, string | undefined> {
  return Object.fromEntries(
    store
      .keys()
      .sort()
      .map((key) => [key, text(store.get(key))]),
  );
}

/** A record frame with a correct CRC32C around any body: bytes that look like a record until decoded. */
function checksummedFrame(body: Buffer): Buffer {
  const frame = Buffer.alloc(8 + body.length);
  frame.writeUInt32BE(body.length, 4);
  body.copy(frame, 8);
  frame.writeUInt32BE(crc32c(frame.subarray(4)), 0);
  return frame;
}

/** Writes one record per entry list, in order, and returns the file's bytes with where each record lies. */
async function writeRecords(
  path: string,
  records: Array<Array<[string, string | undefined]>>,
): Promise<{ bytes: Buffer; spans: Array<{ from: number; end: number }> }> {
  const store = await StableStore.open(path);
  for (const entries of records) {
    await store.setMany(
      entries.map(([key, value]) => [key, value === undefined ? undefined : Buffer.from(value)]),
    );
  }
  await store.close();
  const bytes = await readFile(path);
  const spans = recordSpans(bytes);
  expect(spans).toHaveLength(records.length);
  return { bytes, spans };
}

async function expectHealthyOnReopen(path: string, contents: Record<string, string | undefined>) {
  const again = await StableStore.open(path);
  expect(again.recoveryReport).toMatchObject({
    truncatedBytes: 0,
    damagedRegions: [],
    damagedBytesSkipped: 0,
    recordsKeptAfterDamage: 0,
    rewrittenWithoutDamage: false,
    removedFiles: [],
  });
  expect(contentsOf(again)).toEqual(contents);
  await again.close();
}

function countingScheduler() {
  const synced: string[] = [];
  const scheduler = new FlushScheduler({
    syncFile: async (file: SyncableFile) => {
      synced.push(file.path);
      await file.handle?.datasync();
    },
  });
  return { scheduler, synced };
}

describe("StableStore", () => {
  it("keeps values across reopen and answers reads synchronously from memory", async () => {
    await withTempDir(async (directory) => {
      const path = join(directory, "stable.db");
      const store = await StableStore.open(path);
      expect(store.recoveryReport.created).toBe(true);
      await store.set("raft/7/term", Buffer.from("12"));
      await store.set("raft/7/vote", Buffer.from("node-2"));
      await store.set("raft/8/term", Buffer.from("3"));
      await store.set("raft/7/term", Buffer.from("13"));
      await store.delete("raft/8/term");
      expect(text(store.get("raft/7/term"))).toBe("13");
      expect(store.get("raft/8/term")).toBeUndefined();
      expect(store.keys("raft/7/").sort()).toEqual(["raft/7/term", "raft/7/vote"]);
      await store.close();

      const reopened = await StableStore.open(path);
      expect(reopened.recoveryReport).toMatchObject({
        created: false,
        records: 5,
        liveKeys: 2,
        truncatedBytes: 0,
      });
      expect(text(reopened.get("raft/7/term"))).toBe("13");
      expect(text(reopened.get("raft/7/vote"))).toBe("node-2");
      expect(reopened.has("raft/8/term")).toBe(false);
      await reopened.close();
    });
  });

  it("survives a crash at every byte of the last record: old state or new state, never garbage", async () => {
    await withTempDir(async (directory) => {
      const path = join(directory, "stable.db");
      const store = await StableStore.open(path);
      await store.set("a", Buffer.from("1"));
      await store.set("b", Buffer.from("2"));
      await store.setMany([
        ["a", Buffer.from("10")],
        ["c", Buffer.from("30")],
      ]);
      const before = (await stat(path)).size;
      // The last write: atomically changes b, deletes c and adds d.
      await store.setMany([
        ["b", Buffer.from("20")],
        ["c", undefined],
        ["d", Buffer.from("40")],
      ]);
      await store.close();
      const full = await readFile(path);
      expect(full.length).toBeGreaterThan(before);

      for (let length = before; length <= full.length; length += 1) {
        const copy = join(directory, `copy-${length}.db`);
        await writeFile(copy, full.subarray(0, length));
        const recovered = await StableStore.open(copy);
        const state = Object.fromEntries(recovered.keys().map((key) => [key, text(recovered.get(key))]));
        if (length === full.length) {
          expect(state).toEqual({ a: "10", b: "20", d: "40" });
          expect(recovered.recoveryReport.truncatedBytes).toBe(0);
        } else {
          expect(state).toEqual({ a: "10", b: "2", c: "30" });
          expect(recovered.recoveryReport.truncatedBytes).toBe(length - before);
        }
        // The torn tail is cut so new writes follow the last good record.
        await recovered.set("e", Buffer.from("50"));
        await recovered.close();
        const again = await StableStore.open(copy);
        expect(text(again.get("e"))).toBe("50");
        expect(again.recoveryReport.truncatedBytes).toBe(0);
        await again.close();
      }
    });
  });

  it("ignores a last record whose CRC does not match and says so", async () => {
    await withTempDir(async (directory) => {
      const path = join(directory, "stable.db");
      const store = await StableStore.open(path);
      await store.set("x", Buffer.from("old"));
      await store.set("x", Buffer.from("new"));
      await store.close();
      const bytes = await readFile(path);
      bytes[bytes.length - 1]! ^= 0x40;
      await writeFile(path, bytes);
      const reopened = await StableStore.open(path);
      expect(text(reopened.get("x"))).toBe("old");
      expect(reopened.recoveryReport.reason).toMatch(/CRC32C mismatch/);
      await reopened.close();
    });
  });

  it("group-commits concurrent sets into one write and one fsync", async () => {
    await withTempDir(async (directory) => {
      const { scheduler, synced } = countingScheduler();
      const store = await StableStore.open(join(directory, "stable.db"), { flushScheduler: scheduler });
      await Promise.all(
        Array.from({ length: 100 }, (_, index) => store.set(`k${index}`, Buffer.from(String(index)))),
      );
      expect(synced).toHaveLength(1);
      expect(scheduler.stats.rounds).toBe(1);
      await store.close();
      const reopened = await StableStore.open(join(directory, "stable.db"));
      expect(reopened.keys()).toHaveLength(100);
      await reopened.close();
    });
  });

  it("starts an urgent write's fsync while another log's round runs; a lazy write waits for the round", async () => {
    await withTempDir(async (directory) => {
      const busyPath = join(directory, "busy.log");
      await writeFile(busyPath, "appended");
      let releaseBusy: (() => void) | undefined;
      const busyGate = new Promise<void>((resolve) => {
        releaseBusy = resolve;
      });
      let busySyncing = false;
      const scheduler = new FlushScheduler({
        syncFile: async (file) => {
          if (file.path === busyPath) {
            busySyncing = true;
            await busyGate;
          }
          await file.handle?.datasync();
        },
      });
      // Another log's flush (acks=1 data) whose fsync holds the running round.
      const busy = { beginFlush: () => ({ files: [{ path: busyPath }], complete: () => {} }) };
      const busyFlush = scheduler.flush(busy);
      while (!busySyncing) await new Promise((resolve) => setImmediate(resolve));
      const store = await StableStore.open(join(directory, "stable.db"), { flushScheduler: scheduler });
      const settledWithin = (write: Promise<void>, ms: number) =>
        Promise.race([
          write.then(() => "durable"),
          new Promise((resolve) => setTimeout(() => resolve("waiting"), ms)),
        ]);

      // A vote: the candidate's request waits on it.
      expect(await settledWithin(store.setMany([["vote", Buffer.from("1")]], { urgent: true }), 2000)).toBe(
        "durable",
      );
      const lazyWrite = store.set("commit", Buffer.from("7"));
      expect(await settledWithin(lazyWrite, 100)).toBe("waiting");
      releaseBusy!();
      await Promise.all([busyFlush, lazyWrite]);
      expect(scheduler.stats.urgentFlushes).toBe(1);
      await store.close();
      const reopened = await StableStore.open(join(directory, "stable.db"));
      expect(reopened.get("vote")?.toString()).toBe("1");
      expect(reopened.get("commit")?.toString()).toBe("7");
      await reopened.close();
    });
  });

  it("compacts when garbage exceeds the threshold and keeps every live value", async () => {
    await withTempDir(async (directory) => {
      const path = join(directory, "stable.db");
      const store = await StableStore.open(path, { compactMinGarbageBytes: 2000, compactGarbageRatio: 1 });
      for (let round = 0; round < 100; round += 1) {
        await store.set("hot", Buffer.from(`value-${round}`));
        if (round % 10 === 0) await store.set(`cold-${round}`, Buffer.from(`c${round}`));
      }
      expect(store.stats.compactions).toBeGreaterThan(0);
      expect(store.stats.fileBytes).toBe((await stat(path)).size);
      expect((await stat(path)).size).toBeLessThan(2000 + 2 * store.stats.liveBytes + 100);
      await store.close();
      const reopened = await StableStore.open(path);
      expect(text(reopened.get("hot"))).toBe("value-99");
      expect(reopened.keys().filter((key) => key.startsWith("cold-"))).toHaveLength(10);
      expect(text(reopened.get("cold-50"))).toBe("c50");
      await reopened.close();
    });
  });

  it("removes a compaction left half-done by a crash", async () => {
    await withTempDir(async (directory) => {
      const path = join(directory, "stable.db");
      const store = await StableStore.open(path);
      await store.set("k", Buffer.from("v"));
      await store.close();
      await writeFile(`${path}.compact.tmp`, "half written");
      const reopened = await StableStore.open(path);
      expect(reopened.recoveryReport.removedFiles).toEqual(["stable.db.compact.tmp"]);
      expect(text(reopened.get("k"))).toBe("v");
      await reopened.close();
    });
  });

  it("refuses bad input and foreign files with precise errors", async () => {
    await withTempDir(async (directory) => {
      const foreign = join(directory, "notes.txt");
      await writeFile(foreign, "these are someone else's notes");
      await expect(StableStore.open(foreign)).rejects.toThrow(/not a Raftka stable store/);
      expect(await readFile(foreign, "utf8")).toBe("these are someone else's notes");

      const store = await StableStore.open(join(directory, "stable.db"));
      await expect(store.set("", Buffer.from("x"))).rejects.toBeInstanceOf(InvalidRequestError);
      await expect(store.set("k", "not a buffer" as unknown as Buffer)).rejects.toThrow(/must be a Buffer/);
      await expect(store.set("k".repeat(70_000), Buffer.from("x"))).rejects.toThrow(/exceeds 65535/);
      await expect(store.set("big", Buffer.alloc(17 * 1024 * 1024))).rejects.toThrow(/object store/);
      expect(store.keys()).toEqual([]);
      await store.close();
      await expect(store.set("k", Buffer.from("v"))).rejects.toThrow(/closed/);
    });
  });
});

describe("StableStore recovery from damage in the middle of the file", () => {
  // Raft hard states of three groups; record 2 is the one the tests damage.
  const HISTORY: Array<Array<[string, string | undefined]>> = [
    [
      ["raft/1/term", "1"],
      ["raft/1/vote", "node-a"],
    ],
    [["raft/2/term", "5"]],
    [
      ["raft/1/term", "2"],
      ["raft/1/vote", "node-b"],
      ["raft/3/term", "7"],
    ],
    [["raft/2/term", "6"]],
    [["raft/1/term", "3"]],
    [["raft/4/term", "9"]],
  ];

  it("keeps the intact records after a damaged record: later values win, the damaged record's keys keep their previous value, the file is rewritten without the damage", async () => {
    await withTempDir(async (directory) => {
      const path = join(directory, "stable.db");
      const { bytes, spans } = await writeRecords(path, HISTORY);
      const damaged = spans[2]!;
      bytes[damaged.from + 20]! ^= 0x01;
      await writeFile(path, bytes);

      const store = await StableStore.open(path);
      const expected = {
        "raft/1/term": "3",
        "raft/1/vote": "node-a",
        "raft/2/term": "6",
        "raft/4/term": "9",
      };
      expect(contentsOf(store)).toEqual(expected);
      expect(store.recoveryReport).toMatchObject({
        records: 5,
        liveKeys: 4,
        truncatedBytes: 0,
        damagedRegions: [
          {
            from: damaged.from,
            bytes: damaged.end - damaged.from,
            problem: "CRC32C mismatch",
            intactRecordsAfter: 3,
          },
        ],
        damagedBytesSkipped: damaged.end - damaged.from,
        recordsKeptAfterDamage: 3,
        rewrittenWithoutDamage: true,
      });
      expect(store.recoveryReport.reason).toBeUndefined();
      expect(store.stats.fileBytes).toBe((await stat(path)).size);
      await expect(access(`${path}.compact.tmp`)).rejects.toThrow(/ENOENT/);
      // The rewritten file takes appends like any other.
      await store.set("raft/5/term", Buffer.from("1"));
      await store.close();
      await expectHealthyOnReopen(path, { ...expected, "raft/5/term": "1" });
    });
  });

  it("leaves the damaged file untouched until its rewrite is durable, so a crash during recovery loses nothing more", async () => {
    await withTempDir(async (directory) => {
      const path = join(directory, "stable.db");
      const { bytes, spans } = await writeRecords(path, HISTORY);
      bytes[spans[2]!.from + 20]! ^= 0x01;
      await writeFile(path, bytes);
      // A second name for the damaged file's inode: what a crash before the rewrite's rename leaves.
      const original = join(directory, "original.db");
      await link(path, original);

      const store = await StableStore.open(path);
      const recovered = contentsOf(store);
      await store.close();
      expect((await readFile(original)).equals(bytes)).toBe(true);
      const fromOriginal = await StableStore.open(original);
      expect(contentsOf(fromOriginal)).toEqual(recovered);
      expect(fromOriginal.recoveryReport.recordsKeptAfterDamage).toBe(3);
      await fromOriginal.close();
    });
  });

  it("resynchronises at the first intact record when the damage spans record boundaries", async () => {
    await withTempDir(async (directory) => {
      const path = join(directory, "stable.db");
      const { bytes, spans } = await writeRecords(path, HISTORY);
      // From inside record 1 to inside record 2, as a bad sector would: both are lost.
      bytes.fill(0xa5, spans[1]!.from + 5, spans[2]!.from + 12);
      await writeFile(path, bytes);

      const store = await StableStore.open(path);
      const expected = {
        "raft/1/term": "3",
        "raft/1/vote": "node-a",
        "raft/2/term": "6",
        "raft/4/term": "9",
      };
      expect(contentsOf(store)).toEqual(expected);
      expect(store.recoveryReport.damagedRegions).toEqual([
        {
          from: spans[1]!.from,
          bytes: spans[3]!.from - spans[1]!.from,
          problem: expect.any(String),
          intactRecordsAfter: 3,
        },
      ]);
      await store.close();
      await expectHealthyOnReopen(path, expected);
    });
  });

  it("skips two damaged regions, keeps the records between and after them, and still cuts a torn tail", async () => {
    await withTempDir(async (directory) => {
      const path = join(directory, "stable.db");
      const { bytes, spans } = await writeRecords(path, HISTORY);
      // Record 1's length zeroed, record 3's CRC overwritten, then half of a last write.
      bytes.fill(0, spans[1]!.from + 4, spans[1]!.from + 8);
      bytes.writeUInt32BE(0xdeadbeef, spans[3]!.from);
      const tornTail = checksummedFrame(Buffer.from("\x01\x00\x01\x00\x00\x00\x01zq", "latin1")).subarray(
        0,
        12,
      );
      await writeFile(path, Buffer.concat([bytes, tornTail]));

      const store = await StableStore.open(path);
      const expected = {
        "raft/1/term": "3",
        "raft/1/vote": "node-b",
        "raft/3/term": "7",
        "raft/4/term": "9",
      };
      expect(contentsOf(store)).toEqual(expected);
      const regionBytes = (index: number) => spans[index]!.end - spans[index]!.from;
      expect(store.recoveryReport).toMatchObject({
        records: 4,
        truncatedBytes: tornTail.length,
        reason: `at byte ${bytes.length}: record of 9 bytes cut short by the end of the file`,
        damagedRegions: [
          {
            from: spans[1]!.from,
            bytes: regionBytes(1),
            problem: "record length 0 is too short for an operation",
            intactRecordsAfter: 1,
          },
          { from: spans[3]!.from, bytes: regionBytes(3), problem: "CRC32C mismatch", intactRecordsAfter: 2 },
        ],
        damagedBytesSkipped: regionBytes(1) + regionBytes(3),
        recordsKeptAfterDamage: 3,
        rewrittenWithoutDamage: true,
      });
      await store.close();
      await expectHealthyOnReopen(path, expected);
    });
  });

  it("skips damage in the very first record after the file header", async () => {
    await withTempDir(async (directory) => {
      const path = join(directory, "stable.db");
      const { bytes, spans } = await writeRecords(path, HISTORY);
      expect(spans[0]!.from).toBe(HEADER_BYTES);
      bytes[HEADER_BYTES + 1]! ^= 0xff;
      await writeFile(path, bytes);

      const store = await StableStore.open(path);
      const expected = {
        "raft/1/term": "3",
        "raft/1/vote": "node-b",
        "raft/2/term": "6",
        "raft/3/term": "7",
        "raft/4/term": "9",
      };
      expect(contentsOf(store)).toEqual(expected);
      expect(store.recoveryReport).toMatchObject({
        records: 5,
        truncatedBytes: 0,
        damagedRegions: [{ from: HEADER_BYTES, bytes: spans[0]!.end - HEADER_BYTES, intactRecordsAfter: 5 }],
        rewrittenWithoutDamage: true,
      });
      await store.close();
      await expectHealthyOnReopen(path, expected);
    });
  });

  it("cuts a torn tail followed by bytes that are not records, never taking them for one", async () => {
    // Each passes some checks: lengths within the file, or even a correct CRC32C around a body that is
    // not operations this store writes.
    let seed = 7;
    const pseudoRandom = Buffer.alloc(4096, 0);
    for (let index = 0; index < pseudoRandom.length; index += 1) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      pseudoRandom[index] = seed >>> 24;
    }
    const garbage: Record<string, Buffer> = {
      zeros: Buffer.alloc(512),
      "pseudo-random bytes": pseudoRandom,
      "small lengths with wrong CRCs": Buffer.concat(
        Array.from({ length: 64 }, () => Buffer.from([0, 0, 0, 0, 0, 0, 0, 9, 1, 0, 1, 0, 0, 0, 0, 0x6b])),
      ),
      "a checksummed empty body": checksummedFrame(Buffer.alloc(0)),
      "a checksummed unknown operation": checksummedFrame(Buffer.from([9, 0, 1, 0, 0, 0, 1, 0x6b, 0x76])),
      "a checksummed empty key": checksummedFrame(Buffer.from([1, 0, 0, 0, 0, 0, 2, 0x76, 0x76])),
      "a checksummed delete with a value": checksummedFrame(Buffer.from([2, 0, 1, 0, 0, 0, 1, 0x6b, 0x76])),
      "a checksummed operation running past its record": checksummedFrame(
        Buffer.from([1, 0, 1, 0, 0, 0, 9, 0x6b, 0x76]),
      ),
    };
    await withTempDir(async (directory) => {
      const path = join(directory, "stable.db");
      const { bytes } = await writeRecords(path, HISTORY);
      // The start of a last write the crash cut: a header announcing more than follows.
      const torn = Buffer.from([0x12, 0x34, 0x56, 0x78, 0, 0, 0x40, 0]);
      for (const [name, after] of Object.entries(garbage)) {
        const copy = join(directory, `${name}.db`);
        await writeFile(copy, Buffer.concat([bytes, torn, after]));
        const store = await StableStore.open(copy);
        expect(store.recoveryReport, name).toMatchObject({
          records: HISTORY.length,
          truncatedBytes: torn.length + after.length,
          damagedRegions: [],
          recordsKeptAfterDamage: 0,
          rewrittenWithoutDamage: false,
        });
        expect(contentsOf(store), name).toEqual({
          "raft/1/term": "3",
          "raft/1/vote": "node-b",
          "raft/2/term": "6",
          "raft/3/term": "7",
          "raft/4/term": "9",
        });
        expect((await stat(copy)).size, name).toBe(bytes.length);
        await store.close();
      }
    });
  });
});
