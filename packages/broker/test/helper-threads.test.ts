import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { helperThreadSchedulingUnavailable } from "../src/server/helper-threads.js";
import { SCHED_BATCH, SCHED_IDLE, SCHED_OTHER, threadPolicies } from "./thread-policies.js";

const builtModule = join(
  fileURLToPath(new URL("..", import.meta.url)),
  "dist",
  "server",
  "helper-threads.js",
);

const storageModule = join(fileURLToPath(new URL("../..", import.meta.url)), "storage", "dist", "index.js");

/**
 * A process whose libuv pool and fsync threads have started (a file read, an fsync), one of whose helper
 * threads an operator has put under SCHED_IDLE with chrt, that then sweeps twice, reports, and stays up for
 * its threads to be looked at.
 */
const sweeper = `
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
const { scheduleHelperThreadsAsBatch } = await import(process.argv[1]);
const { syncHandle } = await import(process.argv[2]);
await readFile("/proc/self/stat");
const file = await open(process.argv[3], "w");
await syncHandle(file, false);
await file.close();
const name = (tid) => readFileSync("/proc/self/task/" + tid + "/comm", "utf8").trim();
const helpers = readdirSync("/proc/self/task").map(Number).filter((tid) => tid !== process.pid);
const ours = helpers.filter((tid) => name(tid).startsWith("raftka-"));
const chosen = helpers.find((tid) => !ours.includes(tid));
execFileSync("chrt", ["--idle", "-p", "0", String(chosen)]);
const first = scheduleHelperThreadsAsBatch();
const second = scheduleHelperThreadsAsBatch();
// The pool still works under the new policy.
const read = (await readFile("/proc/self/stat", "utf8")).length > 0;
console.log(JSON.stringify({ pid: process.pid, helpers: helpers.length - ours.length, ours: ours.length, chosen, first, second, read }));
setInterval(() => {}, 1_000);
`;

const children: Array<ReturnType<typeof spawn>> = [];
const directories: string[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
  await Promise.all(
    directories.splice(0).map((directory) => rm(directory, { recursive: true, force: true })),
  );
});

describe.runIf(process.platform === "linux")("scheduleHelperThreadsAsBatch", () => {
  it("is built here", () => {
    expect(helperThreadSchedulingUnavailable).toBeUndefined();
  });

  it("moves every thread but the caller to SCHED_BATCH, leaving one an operator chose a policy for", async () => {
    const directory = await mkdtemp(join(tmpdir(), "raftka-helper-threads-"));
    directories.push(directory);
    const child = spawn(
      process.execPath,
      ["--input-type=module", "-e", sweeper, builtModule, storageModule, join(directory, "synced")],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    children.push(child);
    const [line] = (await once(createInterface({ input: child.stdout! }), "line")) as [string];
    const report = JSON.parse(line) as {
      pid: number;
      helpers: number;
      ours: number;
      chosen: number;
      first: { helpers: number; batch: number; changed: number; error?: string };
      second: { helpers: number; batch: number; changed: number; error?: string };
      read: boolean;
    };
    // Node's platform workers and libuv's four pool threads at least.
    expect(report.helpers).toBeGreaterThanOrEqual(5);
    expect(report.first).toEqual({
      helpers: report.helpers,
      batch: report.helpers - 1,
      changed: report.helpers - 1,
    });
    expect(report.second).toEqual({ helpers: report.helpers, batch: report.helpers - 1, changed: 0 });
    expect(report.read).toBe(true);

    const threads = threadPolicies(report.pid);
    expect(threads.get(report.pid)?.policy).toBe(SCHED_OTHER);
    expect(threads.get(report.chosen)?.policy).toBe(SCHED_IDLE);
    // The fsync threads keep the default policy: an fsync's end reaches the event loop at once.
    const syncThreads = [...threads.values()].filter((thread) => thread.name === "raftka-sync");
    expect(syncThreads.length).toBe(4);
    expect(report.ours).toBe(4);
    expect(syncThreads.map((thread) => thread.policy)).toEqual([
      SCHED_OTHER,
      SCHED_OTHER,
      SCHED_OTHER,
      SCHED_OTHER,
    ]);
    const others = [...threads].filter(
      ([tid, thread]) => tid !== report.pid && tid !== report.chosen && thread.name !== "raftka-sync",
    );
    expect(others.length).toBe(report.helpers - 1);
    expect(others.map(([, thread]) => thread.policy)).toEqual(others.map(() => SCHED_BATCH));
  });
});
