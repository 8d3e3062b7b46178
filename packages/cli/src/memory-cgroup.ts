import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** Above this a cgroup v1 memory limit means "no limit" (the kernel's default is 2^63 rounded to a page). */
const V1_UNLIMITED = 2 ** 60;
/** The virtio-balloon feature bit of free page reporting (VIRTIO_BALLOON_F_REPORTING). */
const BALLOON_FREE_PAGE_REPORTING_BIT = 5;

/** Where the files this module reads live; tests point them at a directory laid out the same way. */
export interface SystemPaths {
  readonly proc: string;
  readonly sys: string;
}
const SYSTEM: SystemPaths = { proc: "/proc", sys: "/sys" };

/** A process's memory cgroup: the hierarchy's mount point, its version and the cgroup's path in it. */
export interface MemoryCgroup {
  readonly version: 1 | 2;
  readonly mount: string;
  readonly path: string;
}

/** The memory cgroup this process is in, or undefined where no memory controller is mounted. */
export function ownMemoryCgroup(paths: SystemPaths = SYSTEM): MemoryCgroup | undefined {
  const cgroupRoot = join(paths.sys, "fs", "cgroup");
  let lines: string[];
  try {
    lines = readFileSync(join(paths.proc, "self", "cgroup"), "utf8").split("\n");
  } catch {
    return undefined;
  }
  // "4:memory:/a/b" (v1) or "0::/a/b" (v2); v1's memory controller wins where both are mounted.
  const v1 = lines
    .map((line) => /^\d+:([^:]*):(.*)$/.exec(line))
    .find((m) => m?.[1]?.split(",").includes("memory"));
  if (v1 && existsSync(join(cgroupRoot, "memory", "memory.limit_in_bytes"))) {
    return { version: 1, mount: join(cgroupRoot, "memory"), path: v1[2]! };
  }
  const v2 = lines.map((line) => /^0::(.*)$/.exec(line)).find((m) => m !== null);
  const controllers = join(cgroupRoot, "cgroup.controllers");
  if (v2 && existsSync(controllers) && readFileSync(controllers, "utf8").split(/\s+/).includes("memory")) {
    return { version: 2, mount: cgroupRoot, path: v2[1]! };
  }
  return undefined;
}

/** The tightest memory limit on `cgroup` and its ancestors, page cache included; undefined for none. */
export function memoryLimitBytes(cgroup: MemoryCgroup): number | undefined {
  let limit: number | undefined;
  for (let path = cgroup.path; ; path = dirname(path)) {
    const file = join(cgroup.mount, path, cgroup.version === 1 ? "memory.limit_in_bytes" : "memory.max");
    const text = existsSync(file) ? readFileSync(file, "utf8").trim() : "max";
    const value = text === "max" ? Number.POSITIVE_INFINITY : Number(text);
    if (Number.isFinite(value) && (cgroup.version === 2 || value < V1_UNLIMITED)) {
      limit = Math.min(limit ?? value, value);
    }
    if (path === "/" || path === "" || path === ".") return limit;
  }
}

/**
 * Whether this machine is a VM whose balloon device reports free pages to the host: memory freed for
 * a while is handed back, and a page the kernel later takes from it costs a host page fault.
 */
export function reportsFreePagesToHost(paths: SystemPaths = SYSTEM): boolean {
  const devices = join(paths.sys, "bus", "virtio", "drivers", "virtio_balloon");
  let entries: string[];
  try {
    entries = readdirSync(devices).filter((entry) => entry.startsWith("virtio"));
  } catch {
    return false;
  }
  return entries.some((entry) => {
    try {
      return readFileSync(join(devices, entry, "features"), "utf8")[BALLOON_FREE_PAGE_REPORTING_BIT] === "1";
    } catch {
      return false;
    }
  });
}

/**
 * Why and how to start the broker with a memory limit, where it runs on a VM that hands freed memory
 * back to its host without one; undefined otherwise. The broker's page cache then grows into memory the
 * host must fault in page by page; within a limit the kernel reuses the broker's own older pages.
 */
export function pageCacheAdvice(paths: SystemPaths = SYSTEM): string | undefined {
  if (!reportsFreePagesToHost(paths)) return undefined;
  const cgroup = ownMemoryCgroup(paths);
  if (cgroup !== undefined && memoryLimitBytes(cgroup) !== undefined) return undefined;
  return (
    "this VM hands freed memory back to its host (virtio-balloon free page reporting) and the broker runs " +
    "without a memory limit, so the page cache it writes grows into memory the host faults in page by page " +
    "(about three times the CPU per MiB produced in docs/benchmarks.md); start it with a memory limit that " +
    "covers its page cache, e.g. `systemd-run --scope -p MemoryMax=2G raftka start` or a container limit " +
    "(docs/operations.md)"
  );
}
