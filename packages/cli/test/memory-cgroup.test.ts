import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  memoryLimitBytes,
  ownMemoryCgroup,
  pageCacheAdvice,
  reportsFreePagesToHost,
  type SystemPaths,
} from "../src/memory-cgroup.js";

// /proc and /sys laid out as a Linux machine has them, in a temporary directory.
const machines: string[] = [];
afterEach(() => {
  for (const machine of machines.splice(0)) rmSync(machine, { recursive: true, force: true });
});

function machine(files: Record<string, string>): SystemPaths {
  const root = mkdtempSync(join(tmpdir(), "raftka-machine-"));
  machines.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return { proc: join(root, "proc"), sys: join(root, "sys") };
}

const UNLIMITED_V1 = "9223372036854771712\n";
// virtio-balloon features as the kernel prints them: bit 5 is free page reporting.
const BALLOON_WITH_REPORTING = "0110010100000000000000000000000010000000\n";
const BALLOON_WITHOUT_REPORTING = "0110000100000000000000000000000010000000\n";

const v1Machine = (limits: Record<string, string>, balloon = BALLOON_WITH_REPORTING) =>
  machine({
    "proc/self/cgroup": "9:name=systemd:/\n4:memory:/jobs/broker\n1:cpu:/\n0::/\n",
    "sys/fs/cgroup/memory/memory.limit_in_bytes": UNLIMITED_V1,
    "sys/bus/virtio/drivers/virtio_balloon/virtio0/features": balloon,
    ...Object.fromEntries(
      Object.entries(limits).map(([path, limit]) => [
        `sys/fs/cgroup/memory${path}/memory.limit_in_bytes`,
        limit,
      ]),
    ),
  });

describe("a process's memory limit", () => {
  it("reads cgroup v1's limit, the tightest of the cgroup and its ancestors, and none where unlimited", () => {
    const limited = v1Machine({ "/jobs": "4294967296\n", "/jobs/broker": "8589934592\n" });
    const cgroup = ownMemoryCgroup(limited);
    expect(cgroup?.version).toBe(1);
    expect(cgroup?.path).toBe("/jobs/broker");
    expect(memoryLimitBytes(cgroup!)).toBe(4 * 2 ** 30);

    const unlimited = v1Machine({ "/jobs": UNLIMITED_V1, "/jobs/broker": UNLIMITED_V1 });
    expect(memoryLimitBytes(ownMemoryCgroup(unlimited)!)).toBeUndefined();
  });

  it("reads cgroup v2's memory.max", () => {
    const files = {
      "proc/self/cgroup": "0::/system.slice/raftka.service\n",
      "sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory pids\n",
      "sys/fs/cgroup/system.slice/memory.max": "max\n",
    };
    const unlimited = machine({ ...files, "sys/fs/cgroup/system.slice/raftka.service/memory.max": "max\n" });
    expect(ownMemoryCgroup(unlimited)).toMatchObject({ version: 2, path: "/system.slice/raftka.service" });
    expect(memoryLimitBytes(ownMemoryCgroup(unlimited)!)).toBeUndefined();
    const limited = machine({
      ...files,
      "sys/fs/cgroup/system.slice/raftka.service/memory.max": "2147483648\n",
    });
    expect(memoryLimitBytes(ownMemoryCgroup(limited)!)).toBe(2 * 2 ** 30);
  });

  it("has no cgroup where no memory controller is mounted", () => {
    expect(ownMemoryCgroup(machine({ "proc/self/cgroup": "0::/\n" }))).toBeUndefined();
  });
});

describe("the page-cache advice at start", () => {
  it("advises a memory limit only on a VM that reports free pages to its host, and only without one", () => {
    const advice = pageCacheAdvice(v1Machine({ "/jobs/broker": UNLIMITED_V1 }));
    expect(advice).toContain("free page reporting");
    expect(advice).toContain("MemoryMax=");
    expect(advice).toContain("docs/operations.md");

    expect(pageCacheAdvice(v1Machine({ "/jobs/broker": "2147483648\n" }))).toBeUndefined();
    expect(
      pageCacheAdvice(v1Machine({ "/jobs/broker": UNLIMITED_V1 }, BALLOON_WITHOUT_REPORTING)),
    ).toBeUndefined();
    expect(reportsFreePagesToHost(machine({ "proc/self/cgroup": "0::/\n" }))).toBe(false);
  });
});
