#!/usr/bin/env node
// The kernel's cost of the broker's write pattern at acks=1, with and without blocks reserved ahead
// (log.preallocate): 8 files, appends of 1 MiB + 100 bytes round robin, an fdatasync after each, in a
// memory cgroup (page cache included) that the writes overflow. Prints CPU per MiB of the writing
// process and of the whole machine (kernel threads included, from /proc/stat), alternating rounds.
// Writes are synchronous so that the process's own CPU time holds the kernel's work for them.
//   pnpm build && node scripts/bench/segment-writes.mjs [--gib 3] [--rounds 2] [--dir /tmp] [--memory-limit 2GiB|none]
import { spawnSync } from "node:child_process";
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { values: options } = parseArgs({
  options: {
    gib: { type: "string", default: "3" },
    rounds: { type: "string", default: "2" },
    dir: { type: "string", default: tmpdir() },
    "memory-limit": { type: "string", default: "2GiB" },
    // Internal: one measured run, in the cgroup the parent made.
    child: { type: "string" },
  },
});
const APPEND_BYTES = (1 << 20) + 100;
const FILES = 8;
const RESERVE_BYTES = 8 << 20;

/** Busy CPU time of the whole machine so far, in ms (user, nice, system, irq, softirq; /proc/stat). */
function machineBusyMs() {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq] = fields;
  return ((user + nice + system + irq + softirq) * 1000) / 100;
}

async function measuredRun(reserve) {
  const { preallocation } = await import(join(repository, "packages", "storage", "dist", "index.js"));
  if (reserve && preallocation.unavailableReason) throw new Error(preallocation.unavailableReason);
  const directory = mkdtempSync(join(options.dir, "raftka-segment-writes-"));
  const total = Number(options.gib) * 2 ** 30;
  const append = Buffer.alloc(APPEND_BYTES, 120);
  const files = Array.from({ length: FILES }, (_, index) => openSync(join(directory, `${index}.log`), "w+"));
  const position = new Array(FILES).fill(0);
  const reserved = new Array(FILES).fill(0);
  const cpuBefore = process.cpuUsage();
  const machineBefore = machineBusyMs();
  try {
    for (let written = 0, index = 0; written < total; written += APPEND_BYTES, index = (index + 1) % FILES) {
      if (reserve && position[index] + APPEND_BYTES > reserved[index]) {
        await preallocation.reserve(files[index], reserved[index], RESERVE_BYTES);
        reserved[index] += RESERVE_BYTES;
      }
      writeSync(files[index], append, 0, APPEND_BYTES, position[index]);
      position[index] += APPEND_BYTES;
      fdatasyncSync(files[index]);
    }
  } finally {
    for (const fd of files) closeSync(fd);
  }
  const cpu = process.cpuUsage(cpuBefore);
  const machine = machineBusyMs() - machineBefore;
  rmSync(directory, { recursive: true, force: true });
  const mib = total / 2 ** 20;
  return { processMsPerMiB: (cpu.user + cpu.system) / 1000 / mib, machineMsPerMiB: machine / mib };
}

if (options.child !== undefined) {
  console.log(JSON.stringify(await measuredRun(options.child === "reserve")));
  process.exit(0);
}

const { createMemoryCgroup, parseMemoryLimit } = await import(
  join(repository, "scripts", "lib", "memory-cgroup.mjs")
);
const limit = parseMemoryLimit(options["memory-limit"]);
const cgroup = limit === undefined ? undefined : await createMemoryCgroup("raftka-segment-writes", limit);
if (cgroup?.unavailable)
  console.error(`[segment-writes] running without a memory limit: ${cgroup.unavailable}`);
const say = (text) => process.stderr.write(`[segment-writes] ${text}\n`);

function run(mode) {
  // The child moves itself into the cgroup before it writes, so the page cache it fills is charged there.
  const script = cgroup?.add
    ? `echo $$ > ${join(cgroup.path, "cgroup.procs")} && exec "$0" "$@"`
    : 'exec "$0" "$@"';
  const child = spawnSync(
    "sh",
    [
      "-c",
      script,
      process.execPath,
      fileURLToPath(import.meta.url),
      "--child",
      mode,
      "--gib",
      options.gib,
      "--dir",
      options.dir,
    ],
    {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  if (child.status !== 0) throw new Error(`the ${mode} run failed (exit ${child.status})`);
  spawnSync("sync");
  return JSON.parse(child.stdout.trim().split("\n").at(-1));
}

console.log("round  mode           process ms/MiB  machine ms/MiB");
try {
  for (let round = 1; round <= Number(options.rounds); round++) {
    for (const mode of ["delayed", "reserve"]) {
      say(
        `round ${round}: ${options.gib} GiB, ${mode === "reserve" ? "blocks reserved 8 MiB ahead" : "delayed allocation"}`,
      );
      const result = run(mode);
      console.log(
        `${String(round).padEnd(6)} ${mode.padEnd(14)} ${result.processMsPerMiB.toFixed(3).padStart(14)} ${result.machineMsPerMiB.toFixed(3).padStart(15)}`,
      );
    }
  }
} finally {
  await cgroup?.remove?.();
}
