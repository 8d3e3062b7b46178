// Starting a broker process from a built checkout the way scripts/start.sh starts it (the broker's V8
// flags and glibc tunables, packages/cli/src/node-flags.ts), on free loopback ports: shared by the
// benchmarks and the fuzzer, so that none of them measures a broker started differently.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

/**
 * What a checkout starts its broker with. A checkout from before a setting existed starts without it,
 * as it did then (the benchmarks compare commits).
 */
export async function brokerProcessSettings(checkout) {
  const module = join(checkout, "packages", "cli", "dist", "node-flags.js");
  const settings = existsSync(module) ? await import(module) : {};
  return {
    nodeFlags: [...(settings.BROKER_NODE_FLAGS ?? [])],
    environment: (env = process.env) => settings.brokerEnvironment?.(env) ?? { ...env },
  };
}

/**
 * Spawns `raftka start` from `checkout` with `dataDir` and extra `settings` ("key=value"), listening on
 * free ports. `nodeFlags` replaces the checkout's own V8 flags; `nodeArgs` come before them (--cpu-prof).
 */
export async function spawnBroker({
  checkout,
  dataDir,
  settings = [],
  nodeFlags,
  nodeArgs = [],
  env,
  stdio = ["ignore", "pipe", "inherit"],
}) {
  // The checkout's own flags and environment, unless the caller gave both.
  const own =
    nodeFlags !== undefined && env !== undefined ? undefined : await brokerProcessSettings(checkout);
  return spawn(
    process.execPath,
    [
      ...nodeArgs,
      ...(nodeFlags ?? own.nodeFlags),
      join(checkout, "packages", "cli", "dist", "main.js"),
      "start",
      "--listeners=PLAINTEXT://127.0.0.1:0",
      "--admin.listener=127.0.0.1:0",
      `--log.dirs=${dataDir}`,
      ...settings.map((setting) => `--${setting}`),
    ],
    { stdio, env: env ?? own.environment() },
  );
}

/**
 * Resolves with the first JSON line of `child`'s stdout that `isReady` accepts (the broker's "ready" line
 * by default); rejects if the process exits first. `onLine(line, text)` sees every line, before and after
 * (`line` undefined where the text is not JSON).
 */
export function readyLine(child, { isReady = (line) => line.msg === "ready", onLine } = {}) {
  return new Promise((resolve, reject) => {
    child.once("exit", (code, signal) =>
      reject(new Error(`the process exited (${signal ?? `code ${code}`}) before it was ready`)),
    );
    createInterface({ input: child.stdout }).on("line", (text) => {
      let line;
      try {
        line = JSON.parse(text);
      } catch {
        line = undefined;
      }
      onLine?.(line, text);
      if (line !== undefined && isReady(line)) resolve(line);
    });
  });
}
