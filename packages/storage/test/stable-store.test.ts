import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FlushScheduler, InvalidRequestError, StableStore, type SyncableFile } from "../src/index.js";
import { withTempDir } from "./helpers.js";

const text = (buffer: Buffer | undefined) => buffer?.toString("utf8");

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
