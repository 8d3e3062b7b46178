import { open, readFile, realpath, unlink } from "node:fs/promises";
import { join } from "node:path";
import { createDirectories, DirectoryNotCreatableError } from "./create-directories.js";

/** Kafka's name for the same guard. */
export const LOCK_FILE = ".lock";

interface Holder {
  readonly pid: number;
  /** The process's start time (/proc/<pid>/stat, clock ticks since boot): tells a reused pid apart. */
  readonly startTime: string | null;
}

/**
 * Keeps a second node off log directories this process uses: two brokers appending to one segment file
 * corrupt it. Each directory gets a `.lock` file naming this process; a directory whose lock names a
 * live process (other than this one) is refused. A lock left by a process that died (SIGKILL, a crash)
 * names a dead or reused pid and is taken over. Unlike Kafka's flock, two nodes starting at the very same
 * moment could both see no lock; a lock that is never left stale needs a native call Node lacks.
 */
export class LogDirLock {
  private constructor(private readonly held: readonly string[]) {}

  static async acquire(logDirs: readonly string[]): Promise<LogDirLock> {
    const me: Holder = { pid: process.pid, startTime: await startTimeOf(process.pid) };
    const held: string[] = [];
    /** Each directory's real path: one named twice (a trailing slash, a symbolic link) is refused. */
    const seen = new Map<string, string>();
    try {
      for (const dir of logDirs) {
        await createDirectories(dir).catch((error: NodeJS.ErrnoException) => {
          if (error instanceof DirectoryNotCreatableError) {
            throw new Error(
              `log.dirs entry ${dir} cannot be created: mkdir says ENOENT although ${error.parent} exists, as on a virtual file system (/proc, /sys) that allows no new directories; point log.dirs at a directory on a disk`,
              { cause: error },
            );
          }
          if (error.code !== "EEXIST" && error.code !== "ENOTDIR") throw error;
          throw new Error(
            `log.dirs entry ${dir} is not a directory (it or a parent is a file: ${error.code}); point log.dirs at a directory, or move the file away`,
          );
        });
        const real = await realpath(dir);
        const earlier = seen.get(real);
        if (earlier !== undefined) {
          throw new Error(
            `log.dirs names the same directory twice: ${earlier} and ${dir} are both ${real}; list each log directory once`,
          );
        }
        seen.set(real, dir);
        await lockOne(join(dir, LOCK_FILE), dir, me);
        held.push(join(dir, LOCK_FILE));
      }
    } catch (error) {
      await new LogDirLock(held).release();
      throw error;
    }
    return new LogDirLock(held);
  }

  /** Removes the locks this process still holds (a lock another process took over is left alone). */
  async release(): Promise<void> {
    for (const path of this.held) {
      const holder = await readHolder(path);
      if (holder?.pid === process.pid) await unlink(path).catch(() => {});
    }
  }
}

async function lockOne(path: string, dir: string, me: Holder): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, "wx");
      try {
        await handle.writeFile(`${JSON.stringify(me)}\n`);
      } finally {
        await handle.close();
      }
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 3) throw error;
    }
    const holder = await readHolder(path);
    if (holder !== undefined && holder.pid !== me.pid && (await isRunning(holder))) {
      throw new Error(
        `log directory ${dir} is in use by another Raftka process (pid ${holder.pid}): two nodes writing one ` +
          "log directory would corrupt it; stop that process, or give this node log.dirs of its own",
      );
    }
    // Left by a process that is gone (or by this one): take it over.
    await unlink(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }
}

async function readHolder(path: string): Promise<Holder | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, "utf8")) as Partial<Holder>;
    return typeof parsed.pid === "number"
      ? { pid: parsed.pid, startTime: parsed.startTime ?? null }
      : undefined;
  } catch {
    // Missing, or torn by a crash while being written: nobody holds it.
    return undefined;
  }
}

async function isRunning(holder: Holder): Promise<boolean> {
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const stat = await procStat(holder.pid);
  if (stat === null) return true;
  // A killed node its parent has not reaped yet (a zombie) writes nothing any more.
  if (stat.state === "Z" || stat.state === "X") return false;
  // A pid now used by another process is not the holder.
  return holder.startTime === null || stat.startTime === holder.startTime;
}

async function startTimeOf(pid: number): Promise<string | null> {
  return (await procStat(pid))?.startTime ?? null;
}

/** State and start time from /proc/<pid>/stat (Linux); null elsewhere or once the process is gone. */
async function procStat(pid: number): Promise<{ state: string; startTime: string } | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields 3 and 22, counted after the command name, which may itself hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "", startTime: fields[19] ?? "" };
  } catch {
    return null;
  }
}
