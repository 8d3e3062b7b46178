import { spawn } from "node:child_process";
import { once } from "node:events";
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

/**
 * A process whose libuv pool has started (a file read), one of whose helper threads an operator has put under
 * SCHED_IDLE with chrt, that then sweeps twice, reports, and stays up for its threads to be looked at.
 */
const sweeper = `
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
const { scheduleHelperThreadsAsBatch } = await import(process.argv[1]);
await readFile("/proc/self/stat");
const helpers = readdirSync("/proc/self/task").map(Number).filter((tid) => tid !== process.pid);
const chosen = helpers[0];
execFileSync("chrt", ["--idle", "-p", "0", String(chosen)]);
const first = scheduleHelperThreadsAsBatch();
const second = scheduleHelperThreadsAsBatch();
// The pool still works under the new policy.
const read = (await readFile("/proc/self/stat", "utf8")).length > 0;
console.log(JSON.stringify({ pid: process.pid, helpers: helpers.length, chosen, first, second, read }));
setInterval(() => {}, 1_000);
`;

const children: Array<ReturnType<typeof spawn>> = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
});

describe.runIf(process.platform === "linux")("scheduleHelperThreadsAsBatch", () => {
  it("is built here", () => {
    expect(helperThreadSchedulingUnavailable).toBeUndefined();
  });

  it("moves every thread but the caller to SCHED_BATCH, leaving one an operator chose a policy for", async () => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", sweeper, builtModule], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(child);
    const [line] = (await once(createInterface({ input: child.stdout! }), "line")) as [string];
    const report = JSON.parse(line) as {
      pid: number;
      helpers: number;
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

    const policies = threadPolicies(report.pid);
    expect(policies.get(report.pid)).toBe(SCHED_OTHER);
    expect(policies.get(report.chosen)).toBe(SCHED_IDLE);
    const others = [...policies].filter(([tid]) => tid !== report.pid && tid !== report.chosen);
    expect(others.length).toBe(report.helpers - 1);
    expect(others.map(([, policy]) => policy)).toEqual(others.map(() => SCHED_BATCH));
  });
});
