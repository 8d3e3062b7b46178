import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { brokerEnvironment } from "../../cli/src/node-flags.js";
import { HeapTrimmer, heapTrimAvailableOnThisPlatform } from "../src/server/heap-trim.js";

const builtModule = join(fileURLToPath(new URL("..", import.meta.url)), "dist", "server", "heap-trim.js");
const MiB = 1024 * 1024;

/**
 * A process that does what a burst of large requests does to the broker's heap: 1 MiB buffers from malloc's
 * heap (the broker's mmap threshold), each followed by a small allocation
 * that outlives it, so that the freed buffers leave holes instead of a free top of the heap. It prints its
 * RSS with the buffers, after they are freed and collected, and after one trim.
 */
const burst = `
import { readFileSync } from "node:fs";
const { HeapTrimmer } = await import(process.argv[1]);
const rss = () => Number(readFileSync("/proc/self/statm", "utf8").split(" ")[1]) * 4096;
const minFreeBytes = Number(process.argv[2]);
const large = [];
const kept = [];
for (let index = 0; index < 200; index++) {
  large.push(Buffer.allocUnsafeSlow(${MiB}).fill(index));
  kept.push(Buffer.allocUnsafeSlow(32 * 1024).fill(index));
}
const withBuffers = rss();
large.length = 0;
for (let round = 0; round < 4; round++) { globalThis.gc(); await new Promise((resolve) => setImmediate(resolve)); }
const freed = rss();
let reported = 0;
const trimmer = new HeapTrimmer({ intervalMs: 3_600_000, minFreeBytes, onTrimmed: (bytes) => { reported = bytes; } });
const released = await trimmer.trimIfWorthIt();
trimmer.close();
console.log(JSON.stringify({ withBuffers, freed, trimmed: rss(), released, reported, kept: kept.length }));
`;

async function runBurst(minFreeBytes: number) {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--expose-gc", "--input-type=module", "-e", burst, builtModule, String(minFreeBytes)],
    // The broker's own tunables: they are what keeps 1 MiB buffers in the heap.
    { env: brokerEnvironment({ ...process.env, GLIBC_TUNABLES: "" }) },
  );
  return JSON.parse(stdout.trim()) as {
    withBuffers: number;
    freed: number;
    trimmed: number;
    released: number;
    reported: number;
  };
}

describe.runIf(heapTrimAvailableOnThisPlatform)("HeapTrimmer", () => {
  it("is built here", () => {
    expect(HeapTrimmer.unavailableReason).toBeUndefined();
  });

  it("hands the holes freed buffers leave in the heap back to the system", async () => {
    const run = await runBurst(16 * MiB);
    // Without a trim the freed 200 MiB stay resident: that is what the trimmer is for.
    expect(run.withBuffers - run.freed).toBeLessThan(20 * MiB);
    expect(run.freed - run.trimmed).toBeGreaterThan(150 * MiB);
    expect(run.released).toBeGreaterThan(150 * MiB);
    expect(run.reported).toBe(run.released);
  });

  it("leaves a heap alone while less of it than the threshold is free", async () => {
    const run = await runBurst(1024 * MiB);
    expect(run.released).toBe(0);
    expect(run.freed - run.trimmed).toBeLessThan(20 * MiB);
  });
});
