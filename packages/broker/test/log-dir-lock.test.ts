import { spawn } from "node:child_process";
import { mkdtemp, readFile, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createDirectories } from "../src/partitions/create-directories.js";
import { LOCK_FILE, LogDirLock } from "../src/partitions/log-dir-lock.js";

const directories: string[] = [];
const children: number[] = [];
afterEach(async () => {
  for (const pid of children.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  await Promise.all(
    directories.splice(0).map((directory) => rm(directory, { recursive: true, force: true })),
  );
});

async function directory(): Promise<string> {
  const created = await mkdtemp(join(tmpdir(), "raftka-lock-"));
  directories.push(created);
  return created;
}

async function stat(pid: number): Promise<string[]> {
  const text = await readFile(`/proc/${pid}/stat`, "utf8");
  return text.slice(text.lastIndexOf(")") + 2).split(" ");
}

/**
 * A process that stays alive, and a zombie: a child that exited under a parent (that process) that never reaps.
 * Perl (Debian's perl-base is always there) rather than sh: sh may reap its background child before it
 * execs into a process that does not, which left no zombie on a loaded machine.
 */
async function liveAndZombie(): Promise<{ live: number; zombie: number }> {
  const parent = spawn(
    "perl",
    ["-e", '$| = 1; my $child = fork; exit 0 unless $child; print "$child\\n"; sleep 30'],
    {
      stdio: ["ignore", "pipe", "ignore"],
    },
  );
  children.push(parent.pid!);
  const zombie = await new Promise<number>((resolve) =>
    parent.stdout!.once("data", (data) => resolve(Number(data))),
  );
  // Up to 10 s: on a loaded machine the child can take more than a second to run and exit.
  for (let tries = 0; (await stat(zombie))[0] !== "Z" && tries < 1000; tries++)
    await new Promise((resolve) => setTimeout(resolve, 10));
  expect((await stat(zombie))[0], "the child did not become a zombie within 10 s").toBe("Z");
  return { live: parent.pid!, zombie };
}

describe("LogDirLock", () => {
  it("refuses a directory a live process holds, and takes over one a zombie or a dead process left", async () => {
    const { live, zombie } = await liveAndZombie();
    const held = await directory();
    await writeFile(join(held, LOCK_FILE), JSON.stringify({ pid: live, startTime: (await stat(live))[19] }));
    await expect(LogDirLock.acquire([held])).rejects.toThrow(
      `is in use by another Raftka process (pid ${live})`,
    );

    const leftByZombie = await directory();
    await writeFile(
      join(leftByZombie, LOCK_FILE),
      JSON.stringify({ pid: zombie, startTime: (await stat(zombie))[19] }),
    );
    const taken = await LogDirLock.acquire([leftByZombie]);
    expect(JSON.parse(await readFile(join(leftByZombie, LOCK_FILE), "utf8")).pid).toBe(process.pid);
    await taken.release();

    // A reused pid: the live process, but with another start time than the lock recorded.
    const reused = await directory();
    await writeFile(join(reused, LOCK_FILE), JSON.stringify({ pid: live, startTime: "1" }));
    await (await LogDirLock.acquire([reused])).release();
    await expect(readFile(join(reused, LOCK_FILE))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses one directory named twice (a trailing slash, a symbolic link), and holds no lock after", async () => {
    const dir = await directory();
    const link = `${dir}-link`;
    directories.push(link);
    await symlink(dir, link);
    await expect(LogDirLock.acquire([dir, `${dir}/`])).rejects.toThrow(
      `log.dirs names the same directory twice: ${dir} and ${dir}/ are both ${await realpath(dir)}; list each log directory once`,
    );
    await expect(LogDirLock.acquire([link, dir])).rejects.toThrow("names the same directory twice");
    await (await LogDirLock.acquire([dir])).release();
  });

  it("refuses a log directory that cannot be created under /proc, naming it, instead of spinning forever", async () => {
    // Node's recursive mkdir loops here for ever: mkdir /proc/x says ENOENT while /proc exists.
    await expect(LogDirLock.acquire(["/proc/raftka-log-dir-lock-test/data"])).rejects.toThrow(
      "log.dirs entry /proc/raftka-log-dir-lock-test/data cannot be created: mkdir says ENOENT although /proc exists",
    );
  });

  it("creates missing parents, and reports why a parent could not be made (EROFS), not the child's ENOENT", async () => {
    const root = await directory();
    await createDirectories(join(root, "a", "b", "c"));
    await expect(readFile(join(root, "a", "b", "c"))).rejects.toMatchObject({ code: "EISDIR" });
    await createDirectories(join(root, "a", "b", "c"));

    const readOnlyParent = async (path: string) => {
      const code = path === "/ro/new" ? "EROFS" : "ENOENT";
      throw Object.assign(new Error(`${code}: mkdir '${path}'`), { code });
    };
    await expect(createDirectories("/ro/new/data", readOnlyParent)).rejects.toMatchObject({ code: "EROFS" });
  });
});
