import { execFile } from "node:child_process";
import { open, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { syncHandle, syncThreads } from "../src/index.js";
import { withTempDir } from "./helpers.js";

const storageModule = join(fileURLToPath(new URL("..", import.meta.url)), "dist", "index.js");

async function threadNames(): Promise<string[]> {
  const tids = await readdir("/proc/self/task");
  return Promise.all(tids.map(async (tid) => (await readFile(`/proc/self/task/${tid}/comm`, "utf8")).trim()));
}

describe.runIf(syncThreads.availableOnThisPlatform)("syncHandle", () => {
  it("is built here", () => {
    expect(syncThreads.unavailableReason).toBeUndefined();
  });

  it("fsyncs and fdatasyncs on four threads of its own, one after another and many at once", async () => {
    await withTempDir(async (directory) => {
      const handle = await open(join(directory, "log"), "w");
      try {
        for (let index = 0; index < 200; index++) {
          await handle.write(Buffer.alloc(512, index), 0, 512, index * 512);
          await syncHandle(handle, index % 2 === 0);
        }
        await Promise.all(Array.from({ length: 32 }, (_, index) => syncHandle(handle, index % 2 === 0)));
      } finally {
        await handle.close();
      }
      expect((await readFile(join(directory, "log"))).length).toBe(200 * 512);
    });
    expect((await threadNames()).filter((name) => name === "raftka-sync")).toHaveLength(4);
  });

  it("fails as Node's own calls do: the errno's name, the call, and EBADF for a closed handle", async () => {
    const proc = await open("/proc/self/stat", "r");
    try {
      await expect(syncHandle(proc, false)).rejects.toMatchObject({ code: "EINVAL", syscall: "fdatasync" });
      await expect(syncHandle(proc, true)).rejects.toMatchObject({ code: "EINVAL", syscall: "fsync" });
    } finally {
      await proc.close();
    }
    await expect(syncHandle(proc, false)).rejects.toMatchObject({ code: "EBADF" });
  });

  it("keeps the process alive until its fsync has ended, as Node's own fs calls do", async () => {
    await withTempDir(async (directory) => {
      // Nothing else keeps this process's event loop alive while the fsync runs.
      const script = `
        import { open } from "node:fs/promises";
        const { syncHandle } = await import(process.argv[1]);
        const handle = await open(process.argv[2], "w");
        await handle.write("x");
        syncHandle(handle, false).then(() => console.log("synced"));
      `;
      const { stdout } = await promisify(execFile)(process.execPath, [
        "--input-type=module",
        "-e",
        script,
        storageModule,
        join(directory, "file"),
      ]);
      expect(stdout.trim()).toBe("synced");
    });
  });
});
