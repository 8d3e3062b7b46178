// A memory cgroup for one process, as a container's or a systemd unit's memory limit would be: the limit
// covers the page cache the process writes, so the kernel reclaims the process's own older pages instead of
// taking fresh ones. On a VM that hands freed memory back to its host (free page reporting) a fresh page
// costs a host page fault; a reclaimed one does not (docs/benchmarks.md).
import { existsSync, readFileSync, rmdirSync } from "node:fs";
import { mkdir, rmdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { ownMemoryCgroup } = await import(join(repository, "packages", "cli", "dist", "memory-cgroup.js"));

/** Parses "2GiB", "512MiB" or a byte count; undefined for "none". */
export function parseMemoryLimit(text) {
  if (text === "none") return undefined;
  const match = /^(\d+(?:\.\d+)?)\s*(KiB|MiB|GiB)?$/.exec(text.trim());
  if (match === null) {
    throw new Error(`memory limit ${JSON.stringify(text)}: expected e.g. 2GiB, 512MiB, a byte count or none`);
  }
  const unit = { KiB: 1 << 10, MiB: 1 << 20, GiB: 1 << 30 }[match[2]] ?? 1;
  return Math.round(Number(match[1]) * unit);
}

/**
 * Creates cgroup `name` under this process's own memory cgroup, limited to `limitBytes`. Resolves with
 * `{ add(pid), remove() }`, or with `{ unavailable: reason }` where there is no memory controller or no
 * permission to use it (not root).
 */
export async function createMemoryCgroup(name, limitBytes) {
  const own = ownMemoryCgroup();
  if (own === undefined) return { unavailable: "this machine has no cgroup memory controller mounted" };
  const hierarchy = { version: own.version, root: join(own.mount, own.path) };
  const path = join(hierarchy.root, name);
  try {
    if (hierarchy.version === 2) {
      // v2 refuses this where the cgroup has processes of its own; the caller then runs without a limit.
      await writeFile(join(hierarchy.root, "cgroup.subtree_control"), "+memory");
    }
    await mkdir(path, { recursive: true });
    await writeFile(
      join(path, hierarchy.version === 1 ? "memory.limit_in_bytes" : "memory.max"),
      String(limitBytes),
    );
  } catch (error) {
    return { unavailable: `cannot create ${path} (${error.code ?? error.message}); run as root` };
  }
  return {
    path,
    /** Moves process `pid` (all its threads) into the cgroup; its children follow it. */
    add: (pid) => writeFile(join(path, "cgroup.procs"), String(pid)),
    /** Peak memory the cgroup was charged, page cache included (v1; v2 kernels from 5.19). */
    peakBytes: () => {
      const file = join(path, hierarchy.version === 1 ? "memory.max_usage_in_bytes" : "memory.peak");
      return existsSync(file) ? Number(readFileSync(file, "utf8")) : undefined;
    },
    /** Removes the cgroup once its processes have exited. */
    remove: () => rmdir(path).catch(() => {}),
    /**
     * The same from an exit handler, where nothing can be awaited: retries for up to `waitMs` while
     * processes just killed are still leaving the cgroup, then leaves it.
     */
    removeSync: (waitMs = 2_000) => {
      const deadline = Date.now() + waitMs;
      for (;;) {
        try {
          rmdirSync(path);
          return;
        } catch (error) {
          if (error.code !== "EBUSY" || Date.now() >= deadline) return;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
        }
      }
    },
  };
}
