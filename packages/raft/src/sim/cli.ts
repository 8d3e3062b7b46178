#!/usr/bin/env node
/**
 * `pnpm raft:sim --seeds N --from S [--nodes 3|5] [--groups G] [--ticks T] [--workers W] [--trace]`
 * Runs seeds S..S+N-1 in worker threads and ends with the line "N passed, M failed".
 */
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import type { UnsafeTestOnlyBugs } from "../core/core.js";
import { Simulation, type SimulationResult, validateSimulationOptions } from "./simulation.js";

interface RunConfig {
  readonly nodes: number;
  readonly groups: number;
  readonly ticks: number;
  readonly bugs: UnsafeTestOnlyBugs | undefined;
  readonly leaseReads: boolean;
  readonly hostile: boolean;
  readonly bugName: string | undefined;
}

const BUGS: Record<string, UnsafeTestOnlyBugs> = {
  "commit-previous-term": { commitPreviousTermEntries: true },
  "ack-before-persist": { acknowledgeBeforePersist: true },
  "reads-without-quorum": { readsWithoutQuorum: true },
};

const USAGE = `usage: pnpm raft:sim --seeds N --from S [--nodes 3|5] [--groups G] [--ticks T] [--workers W] [--trace]
  --seeds N     how many seeds to run (default 100)
  --from S      first seed (default 1)
  --nodes 3|5   cluster size (default 3)
  --groups G    Raft groups hosted by every node (default 3)
  --ticks T     virtual ticks per run, at least 600 (default 2000)
  --workers W   worker threads (default: available cores)
  --trace       print every event of every seed as it happens (use with --seeds 1 to replay one)
  --lease-reads serve reads from leader leases instead of ReadIndex rounds
  --hostile     every fault at its most aggressive setting (default: each seed draws its own mix)
  --bug NAME    inject a deliberate protocol bug (${Object.keys(BUGS).join(", ")}) to see the checkers catch it`;

function main(): void {
  let values: ReturnType<typeof parse>;
  try {
    values = parse();
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const seeds = integer(values.seeds, "--seeds", 1);
  const from = integer(values.from, "--from", 0);
  const bugName = values.bug;
  if (bugName !== undefined && BUGS[bugName] === undefined)
    fail(`unknown --bug ${bugName}; choose one of ${Object.keys(BUGS).join(", ")}`);
  const config: RunConfig = {
    nodes: integer(values.nodes, "--nodes", 3),
    groups: integer(values.groups, "--groups", 1),
    ticks: integer(values.ticks, "--ticks", 600),
    bugs: bugName === undefined ? undefined : BUGS[bugName],
    leaseReads: values["lease-reads"] ?? false,
    hostile: values.hostile ?? false,
    bugName,
  };
  try {
    validateSimulationOptions({ seed: from, ...config });
  } catch (error) {
    fail((error as Error).message);
  }
  const trace = values.trace ?? false;
  const workers = trace ? 1 : Math.max(1, Math.min(integer(values.workers, "--workers", 1), seeds));
  const started = Date.now();
  let passed = 0;
  let failed = 0;
  const report = (result: SimulationResult): void => {
    if (result.ok) {
      passed++;
      return;
    }
    failed++;
    const replay = replayCommand(result.seed, config);
    console.log(`\nseed ${result.seed} FAILED: ${result.failure}`);
    if (!trace) {
      console.log(`--- last ${result.traceTail.length} trace lines of seed ${result.seed} ---`);
      for (const line of result.traceTail) console.log(line);
    }
    console.log(`replay: ${replay}`);
  };
  const finish = (): void => {
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `seeds ${from}..${from + seeds - 1}, ${config.nodes} nodes x ${config.groups} groups x ${config.ticks} ticks, ${workers} worker(s), ${seconds} s`,
    );
    console.log(`${passed} passed, ${failed} failed`);
    process.exitCode = failed > 0 ? 1 : 0;
  };
  if (workers === 1) {
    for (let seed = from; seed < from + seeds; seed++) {
      report(runSeed(seed, config, trace ? (line) => console.log(line) : undefined));
    }
    finish();
    return;
  }
  let running = workers;
  let nextSeed = from;
  const end = from + seeds;
  for (let index = 0; index < workers; index++) {
    const worker = new Worker(new URL(import.meta.url), { workerData: config });
    const feed = (): void => {
      if (nextSeed < end) worker.postMessage(nextSeed++);
      else worker.postMessage(-1);
    };
    worker.on("message", (result: SimulationResult) => {
      report(result);
      feed();
    });
    worker.on("error", (error) => {
      console.error(`simulator worker crashed: ${error.stack ?? error}`);
      failed++;
    });
    worker.on("exit", () => {
      running--;
      if (running === 0) finish();
    });
    feed();
  }
}

function parse() {
  return parseArgs({
    options: {
      seeds: { type: "string", default: "100" },
      from: { type: "string", default: "1" },
      nodes: { type: "string", default: "3" },
      groups: { type: "string", default: "3" },
      ticks: { type: "string", default: "2000" },
      workers: { type: "string", default: String(Math.min(availableParallelism(), 8)) },
      trace: { type: "boolean" },
      "lease-reads": { type: "boolean" },
      hostile: { type: "boolean" },
      bug: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  }).values;
}

function runSeed(seed: number, config: RunConfig, traceSink?: (line: string) => void): SimulationResult {
  return new Simulation({
    seed,
    nodes: config.nodes,
    groups: config.groups,
    ticks: config.ticks,
    bugs: config.bugs,
    leaseReads: config.leaseReads,
    faultProfile: config.hostile ? "hostile" : "random",
    traceSink,
  }).run();
}

function replayCommand(seed: number, config: RunConfig): string {
  const parts = [
    "pnpm raft:sim --seeds 1",
    `--from ${seed}`,
    `--nodes ${config.nodes}`,
    `--groups ${config.groups}`,
    `--ticks ${config.ticks}`,
  ];
  if (config.leaseReads) parts.push("--lease-reads");
  if (config.hostile) parts.push("--hostile");
  if (config.bugName !== undefined) parts.push(`--bug ${config.bugName}`);
  parts.push("--trace");
  return parts.join(" ");
}

function integer(text: string | undefined, flag: string, minimum: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < minimum)
    fail(`${flag} must be an integer >= ${minimum} (got "${text}")`);
  return value;
}

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

if (isMainThread) {
  main();
} else {
  const config = workerData as RunConfig;
  parentPort!.on("message", (seed: number) => {
    if (seed < 0) {
      parentPort!.close();
      return;
    }
    parentPort!.postMessage(runSeed(seed, config));
  });
}
