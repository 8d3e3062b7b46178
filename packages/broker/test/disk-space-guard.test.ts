import { Writable } from "node:stream";
import { Logging } from "@raftka/monitoring";
import { describe, expect, it } from "vitest";
import { DiskSpaceGuard } from "../src/partitions/disk-space-guard.js";

const MiB = 1024 * 1024;

/**
 * A guard over two log directories on file systems of 100 GiB whose free space the test sets, with its
 * log lines and callbacks. `minFreeBytes.value` undefined is log.dir.min.free.bytes unset.
 */
function guardOver(
  free: Map<string, number | Error | "no size">,
  minFreeBytes: { value: number | undefined },
  capacity = 100 * 1024 * MiB,
) {
  const logLines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logLines.push(JSON.parse(line));
      callback();
    },
  });
  const low: string[] = [];
  const states: [string, boolean][] = [];
  const refused: string[] = [];
  const guard = new DiskSpaceGuard({
    logDirs: ["data/a", "/var/lib/raftka/b"],
    minFreeBytes: () => minFreeBytes.value,
    intervalMs: 60_000,
    logger: new Logging({ level: "info", destination }).component("storage"),
    space: async (directory) => {
      const value = free.get(directory.endsWith("/a") ? "a" : "b");
      if (value instanceof Error) throw value;
      if (value === "no size") return undefined;
      return { free: value!, capacity };
    },
    onLow: (directory) => low.push(directory),
    onStateChange: (directory, refusing) => states.push([directory, refusing]),
    onRefused: (directory) => refused.push(directory),
  });
  return { guard, logLines, low, states, refused };
}

describe("DiskSpaceGuard", () => {
  it("refuses the partitions of a directory under log.dir.min.free.bytes, and only those, saying what to do", async () => {
    const free = new Map<string, number | Error | "no size">([
      ["a", 100 * MiB],
      ["b", 5000 * MiB],
    ]);
    const { guard, logLines, low, states } = guardOver(free, { value: 1024 * MiB });
    await guard.check();
    // A relative log directory matches partitions by their resolved path.
    const refusal = guard.admit(`${process.cwd()}/data/a/orders-0`, 0);
    expect(refusal).toContain("log directory data/a has 100.0 MiB free");
    expect(refusal).toContain("under log.dir.min.free.bytes (1.0 GiB)");
    expect(refusal).toMatch(/delete topics or lower their retention\.bytes/);
    expect(guard.admit("data/a/orders-1", 0)).toBe(refusal);
    expect(guard.admit("/var/lib/raftka/b/orders-0", 0)).toBeUndefined();
    expect(low).toEqual(["data/a"]);
    expect(states).toEqual([["data/a", true]]);
    const warnings = logLines.filter((line) => line.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ dir: "data/a", freeBytes: 100 * MiB, minFreeBytes: 1024 * MiB });

    // Still low: no second warning, no second retention pass.
    await guard.check();
    expect(low).toHaveLength(1);
    expect(logLines.filter((line) => line.level === "warn")).toHaveLength(1);

    // Space freed: taken again, said once.
    free.set("a", 2000 * MiB);
    await guard.check();
    expect(guard.admit("data/a/orders-0", 0)).toBeUndefined();
    expect(states).toEqual([
      ["data/a", true],
      ["data/a", false],
    ]);
    expect(
      logLines.filter((line) => String(line.msg).startsWith("taking Produce to data/a again")),
    ).toHaveLength(1);
    guard.stop();
  });

  it("counts what it admits between checks, so a fast producer cannot write past the margin before the next one", async () => {
    const free = new Map<string, number | Error | "no size">([
      ["a", 300 * MiB],
      ["b", 5000 * MiB],
    ]);
    const { guard, low } = guardOver(free, { value: 100 * MiB });
    await guard.check();
    let admitted = 0;
    while (admitted < 1024 * MiB && guard.admit("data/a/t-0", MiB) === undefined) admitted += MiB;
    expect(admitted).toBe(200 * MiB);
    expect(guard.admit("data/a/t-1", 1)).toContain("has 100.0 MiB free");
    expect(low).toEqual(["data/a"]);
    // The file system now shows those bytes written: still refused.
    free.set("a", 100 * MiB);
    await guard.check();
    expect(guard.admit("data/a/t-0", 0)).toBeDefined();
    // Back to taking Produce only a tenth above the minimum, so that it does not flap at the line.
    free.set("a", 105 * MiB);
    await guard.check();
    expect(guard.admit("data/a/t-0", 0)).toBeDefined();
    free.set("a", 111 * MiB);
    await guard.check();
    expect(guard.admit("data/a/t-0", 0)).toBeUndefined();
    guard.stop();
  });

  it("says a refusal truly: the free space it decided on, and the request that would have taken it under the minimum", async () => {
    const free = new Map<string, number | Error | "no size">([
      ["a", 104 * MiB],
      ["b", 5000 * MiB],
    ]);
    const { guard } = guardOver(free, { value: 100 * MiB });
    await guard.check();
    const refusal = guard.admit("data/a/t-0", 5 * MiB);
    expect(refusal).toContain(
      "log directory data/a has 104.0 MiB free, and a Produce of 5.0 MiB would leave less than log.dir.min.free.bytes (100.0 MiB)",
    );
    // Still refused a little above the minimum (no flapping at the line): said as such.
    free.set("a", 105 * MiB);
    await guard.check();
    expect(guard.admit("data/a/t-0", 0)).toContain(
      "has 105.0 MiB free, not yet a tenth above log.dir.min.free.bytes (100.0 MiB), where Produce is taken again",
    );
    free.set("a", 90 * MiB);
    await guard.check();
    expect(guard.admit("data/a/t-0", 0)).toContain(
      "has 90.0 MiB free, under log.dir.min.free.bytes (100.0 MiB)",
    );
    guard.stop();
  });

  it("counts a directory that refuses large requests as refusing across checks, until a request of that size fits", async () => {
    // An 8 MiB disk at its default minimum (409.6 KiB) with 1.2 MiB free, and ~1 MB Produce requests.
    const free = new Map<string, number | Error | "no size">([
      ["a", 1.2 * MiB],
      ["b", 5000 * MiB],
    ]);
    const { guard, logLines, states, refused } = guardOver(free, { value: undefined }, 8 * MiB);
    await guard.check();
    const request = 976.5 * 1024;
    expect(guard.admit("data/a/t-0", request)).toContain("a Produce of 976.5 KiB would leave less than");
    for (let check = 0; check < 3; check++) {
      await guard.check();
      expect(guard.refusingDirectories()).toEqual(["data/a"]);
      expect(guard.admit("data/a/t-0", request)).toContain("a Produce of 976.5 KiB would leave less than");
    }
    expect(refused).toEqual(["data/a", "data/a", "data/a", "data/a"]);
    // One warning, not one a check.
    expect(logLines.filter((line) => line.level === "warn" || line.level === 40)).toHaveLength(1);
    expect(states).toEqual([["data/a", true]]);
    free.set("a", 1.4 * MiB);
    await guard.check();
    expect(guard.refusingDirectories()).toEqual([]);
    expect(guard.admit("data/a/t-0", request)).toBeUndefined();
    expect(states).toEqual([
      ["data/a", true],
      ["data/a", false],
    ]);
    guard.stop();
  });

  it("lets blocks be reserved ahead of appends only while twice the minimum stays free, and counts them as taken", async () => {
    const free = new Map<string, number | Error | "no size">([
      ["a", 300 * MiB],
      ["b", 5000 * MiB],
    ]);
    const { guard } = guardOver(free, { value: 100 * MiB });
    await guard.check();
    expect(guard.mayReserve("data/a/t-0", 64 * MiB)).toBe(true);
    expect(guard.mayReserve("data/a/t-1", 32 * MiB)).toBe(true);
    // 300 - 96 = 204 MiB free: 8 MiB more would leave under 200.
    expect(guard.mayReserve("data/a/t-2", 8 * MiB)).toBe(false);
    expect(guard.mayReserve("data/a/t-2", 4 * MiB)).toBe(true);
    // What was reserved is counted as taken until the file system shows it: Produce reaches the minimum sooner.
    expect(guard.admit("data/a/t-0", 100 * MiB)).toBeUndefined();
    expect(guard.admit("data/a/t-0", 1 * MiB)).toContain("has 100.0 MiB free");
    // Nothing is reserved while Produce is refused.
    free.set("a", 5000 * MiB);
    expect(guard.mayReserve("data/a/t-3", MiB)).toBe(false);
    // The other directory is on its own.
    expect(guard.mayReserve("/var/lib/raftka/b/t-0", 32 * MiB)).toBe(true);
    guard.stop();
  });

  it("warns once when log.dir.min.free.bytes is more than the whole disk, and again for another such value", async () => {
    const free = new Map<string, number | Error | "no size">([
      ["a", 50 * MiB],
      ["b", 50 * MiB],
    ]);
    const minFreeBytes = { value: (200 * MiB) as number | undefined };
    const { guard, logLines } = guardOver(free, minFreeBytes, 100 * MiB);
    const unreachable = () =>
      logLines.filter((line) => String(line.msg).includes("is more than the whole file system"));
    await guard.check();
    expect(unreachable()).toHaveLength(2);
    expect(unreachable()[0]!.msg).toContain(
      "log.dir.min.free.bytes (200.0 MiB) is more than the whole file system of log directory data/a (100.0 MiB)",
    );
    expect(unreachable()[0]!.msg).toContain("set it below the disk's size");
    await guard.check();
    expect(unreachable()).toHaveLength(2);
    minFreeBytes.value = 300 * MiB;
    await guard.check();
    expect(unreachable()).toHaveLength(4);
    minFreeBytes.value = 10 * MiB;
    await guard.check();
    expect(unreachable()).toHaveLength(4);
    guard.stop();
  });

  it("never refuses a file system without a size (ramfs reports nothing free)", async () => {
    const free = new Map<string, number | Error | "no size">([
      ["a", "no size"],
      ["b", 5000 * MiB],
    ]);
    const { guard } = guardOver(free, { value: 1024 * MiB });
    await guard.check();
    expect(guard.admit("data/a/t-0", 10 * MiB)).toBeUndefined();
    guard.stop();
  });

  it("keeps 1 GiB free when log.dir.min.free.bytes is unset, or 5% of a disk smaller than 20 GiB", async () => {
    const free = new Map<string, number | Error | "no size">([
      ["a", 1000 * MiB],
      ["b", 1000 * MiB],
    ]);
    const large = guardOver(free, { value: undefined });
    await large.guard.check();
    expect(large.guard.admit("data/a/t-0", 0)).toContain("under log.dir.min.free.bytes (1.0 GiB)");
    const small = guardOver(free, { value: undefined }, 10 * 1024 * MiB);
    await small.guard.check();
    expect(small.guard.admit("data/a/t-0", 0)).toBeUndefined();
    free.set("a", 500 * MiB);
    await small.guard.check();
    expect(small.guard.admit("data/a/t-0", 0)).toContain("under log.dir.min.free.bytes (512.0 MiB)");
    large.guard.stop();
    small.guard.stop();
  });

  it("reads log.dir.min.free.bytes at every check; 0 turns the check off", async () => {
    const free = new Map<string, number | Error | "no size">([
      ["a", 100 * MiB],
      ["b", 100 * MiB],
    ]);
    const minimum = { value: 0 };
    const { guard } = guardOver(free, minimum);
    await guard.check();
    expect(guard.admit("data/a/t-0", 0)).toBeUndefined();
    // Off means off: not even more than the file system said was free is refused.
    expect(guard.admit("data/a/t-0", 150 * MiB)).toBeUndefined();
    await guard.check();
    expect(guard.admit("data/a/t-0", 0)).toBeUndefined();
    minimum.value = 200 * MiB;
    await guard.check();
    expect(guard.admit("data/a/t-0", 0)).toBeDefined();
    expect(guard.admit("/var/lib/raftka/b/t-0", 0)).toBeDefined();
    minimum.value = 50 * MiB;
    await guard.check();
    expect(guard.admit("data/a/t-0", 0)).toBeUndefined();
    guard.stop();
  });

  it("does not refuse a directory whose free space cannot be read, and warns", async () => {
    const free = new Map<string, number | Error | "no size">([
      ["a", 10 * MiB],
      ["b", 5000 * MiB],
    ]);
    const { guard, logLines } = guardOver(free, { value: 1024 * MiB });
    await guard.check();
    expect(guard.admit("data/a/t-0", 0)).toBeDefined();
    free.set("a", Object.assign(new Error("EIO: i/o error, statfs"), { code: "EIO" }));
    await guard.check();
    expect(guard.admit("data/a/t-0", 0)).toBeUndefined();
    expect(
      logLines.some((line) =>
        String(line.msg).startsWith("could not read the free space of a log directory"),
      ),
    ).toBe(true);
    guard.stop();
  });
});
