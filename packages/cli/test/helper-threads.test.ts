import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildRefuseSyscall } from "../../storage/test/fixtures/refuse-syscall.js";

const builtModule = join(fileURLToPath(new URL("..", import.meta.url)), "dist", "helper-threads.js");

/** A process whose libuv pool has started sweeps its helper threads once and prints what it logged. */
const sweeper = `
import { readFile } from "node:fs/promises";
const { keepHelperThreadsBatched } = await import(process.argv[1]);
await readFile("/proc/self/stat");
const lines = [];
const log = (level) => (fields, msg) => lines.push({ level, ...fields, msg });
keepHelperThreadsBatched({ info: log("info"), warn: log("warn") })();
console.log(JSON.stringify(lines));
`;

async function sweep(wrapper: string[] = []): Promise<Array<Record<string, unknown>>> {
  const command = [...wrapper, process.execPath, "--input-type=module", "-e", sweeper, builtModule];
  const { stdout } = await promisify(execFile)(command[0]!, command.slice(1));
  return JSON.parse(stdout.trim()) as Array<Record<string, unknown>>;
}

describe.runIf(process.platform === "linux")("raftka start's helper threads", () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "raftka-helper-threads-"));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("says once how many helper threads now run under SCHED_BATCH", async () => {
    const lines = await sweep();
    expect(lines).toHaveLength(1);
    const [line] = lines;
    expect(line).toMatchObject({ level: "info", msg: expect.stringContaining("SCHED_BATCH") });
    expect(line!.helpers).toBeGreaterThanOrEqual(5);
    expect(line!.batch).toBe(line!.helpers);
    expect(line!.changed).toBe(line!.helpers);
  });

  it("warns with the error and what to do when the system refuses the policy, and goes on", async () => {
    const refuse = buildRefuseSyscall(directory);
    const lines = await sweep([refuse, "sched-setscheduler"]);
    expect(lines).toHaveLength(1);
    const [line] = lines;
    expect(line).toMatchObject({ level: "warn", error: "EPERM", batch: 0, changed: 0 });
    expect(line!.helpers).toBeGreaterThanOrEqual(5);
    expect(String(line!.msg)).toContain("allow sched_setscheduler");
    expect(String(line!.msg)).toContain("helper.threads.sched.batch=false");
  });
});
