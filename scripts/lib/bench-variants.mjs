// What the benchmarks share: a variant of the broker given on the command line, a fresh broker of it with
// topics, the load generator, alternating rounds and how a range of results prints (produce-cost.mjs,
// catch-up.mjs), and a process's CPU time and resident memory (those and broker.mjs).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { brokerProcessSettings, readyLine, spawnBroker } from "./broker-process.mjs";

/** The librdkafka load generator's path; exits saying how to build it where it is not built. */
export function loadgenPath(repository) {
  const path = join(repository, "node_modules", ".cache", "raftka-bench", "loadgen");
  if (!existsSync(path)) {
    console.error(`no load generator at ${path}: run \`bash scripts/bench/broker.sh --records 1\` once`);
    process.exit(1);
  }
  return path;
}

/** Runs the load generator with `args`; resolves with the JSON line it prints last. */
export async function runLoadgen(path, args) {
  const { stdout } = await promisify(execFile)(path, args, { maxBuffer: 1 << 20, timeout: 900_000 });
  return JSON.parse(stdout.trim().split("\n").at(-1));
}

/**
 * Starts a fresh broker of `variant` on a new data directory, creates `topics` with `partitions` each,
 * runs `work({ child, line, dataDir })` and stops the broker and deletes its data, whatever happens.
 */
export async function withBroker(variant, { topics, partitions }, work) {
  const dataDir = await mkdtemp(join(tmpdir(), "raftka-bench-"));
  const child = await spawnBroker({
    checkout: variant.checkout,
    dataDir,
    settings: ["log.level=warn", ...variant.settings],
    nodeFlags: variant.nodeFlags,
    env: variant.environment,
  });
  try {
    const line = await readyLine(child);
    const protocol = await import(join(variant.checkout, "packages", "protocol", "dist", "index.js"));
    const connection = await protocol.KafkaConnection.connect("127.0.0.1", line.kafkaPort);
    await connection.send(protocol.ApiKey.CreateTopics, 7, {
      timeoutMs: 10_000,
      validateOnly: false,
      topics: topics.map((name) => ({
        name,
        numPartitions: partitions,
        replicationFactor: 1,
        assignments: [],
        configs: [],
      })),
    });
    await connection.close();
    return await work({ child, line, dataDir });
  } finally {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * Runs `runOnce(variant)` for every variant in turn, `rounds` times (alternating, so that the shared
 * machine's slow and fast minutes fall on all of them); resolves with each variant's results by name.
 */
export async function alternateRounds(variants, rounds, runOnce, say) {
  const runs = new Map(variants.map((variant) => [variant.name, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const variant of variants) {
      say(`round ${round}/${rounds}: ${variant.name}`);
      runs.get(variant.name).push(await runOnce(variant));
    }
  }
  return runs;
}

/** `low-high` of `values` with `digits` decimals, or the one value where they are all the same. */
export function range(values, digits = 0) {
  const low = Math.min(...values).toFixed(digits);
  const high = Math.max(...values).toFixed(digits);
  return low === high ? low : `${low}-${high}`;
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values) {
  const sorted = [...values].sort((x, y) => x - y);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * NAME[:key=value,...][@/other/checkout][+node-flag ...]: broker settings (`env.NAME=value` sets its
 * environment), another built checkout, and Node flags instead of the checkout's own (`+` alone: none).
 */
export async function parseVariant(text, repository) {
  let rest = text;
  let nodeFlags;
  const plus = rest.indexOf("+");
  if (plus >= 0) {
    nodeFlags = rest
      .slice(plus + 1)
      .split(" ")
      .filter(Boolean);
    rest = rest.slice(0, plus);
  }
  let checkout = repository;
  const at = rest.indexOf("@");
  if (at >= 0) {
    checkout = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const [name, settingsText = ""] = rest.split(":");
  const entries = settingsText.split(",").filter(Boolean);
  const settings = entries.filter((entry) => !entry.startsWith("env."));
  const environment = Object.fromEntries(
    entries
      .filter((entry) => entry.startsWith("env."))
      .map((entry) => {
        const equals = entry.indexOf("=");
        return [entry.slice("env.".length, equals), entry.slice(equals + 1)];
      }),
  );
  // The checkout's own V8 flags and environment (GLIBC_TUNABLES) for its broker, where it has them.
  const own = await brokerProcessSettings(checkout);
  nodeFlags ??= own.nodeFlags;
  return { name, settings, environment: { ...own.environment(), ...environment }, checkout, nodeFlags };
}

/** User and system CPU seconds process `pid` has used, all its threads (/proc, clock ticks of 1/100 s). */
export async function cpuSeconds(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Process `pid`'s resident memory now (VmRSS), MiB. */
export async function rssMiB(pid) {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}
