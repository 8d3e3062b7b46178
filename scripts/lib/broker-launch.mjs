#!/usr/bin/env node
// What a broker process starts with, from the built packages/cli (node-flags.ts defines it and says why):
// its V8 flags and the environment variables it needs (glibc malloc tunables, libuv's pool size), given
// this process's environment, whose own values win. scripts/start.sh and the Python test harness start
// the broker with this, so that no copy of the settings can drift from the one the broker checks.
//
//   node scripts/lib/broker-launch.mjs --json    {"nodeFlags": [...], "environment": {"NAME": "value", ...}}
//   node scripts/lib/broker-launch.mjs --shell   export lines and a BROKER_NODE_FLAGS array, for bash's eval
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const module = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "packages",
  "cli",
  "dist",
  "node-flags.js",
);
if (!existsSync(module)) {
  console.error(
    `broker-launch: ${module} is not built; run \`pnpm build\` (scripts/start.sh does) and try again`,
  );
  process.exit(1);
}
const { BROKER_NODE_FLAGS, brokerEnvironment } = await import(module);

const full = brokerEnvironment(process.env);
const environment = Object.fromEntries(
  Object.entries(full).filter(([name, value]) => process.env[name] !== value),
);
const mode = process.argv[2];
const quote = (text) => `'${String(text).replaceAll("'", "'\\''")}'`;
if (mode === "--json") {
  console.log(JSON.stringify({ nodeFlags: BROKER_NODE_FLAGS, environment }));
} else if (mode === "--shell") {
  for (const [name, value] of Object.entries(environment)) console.log(`export ${name}=${quote(value)}`);
  console.log(`BROKER_NODE_FLAGS=(${BROKER_NODE_FLAGS.map(quote).join(" ")})`);
} else {
  console.error("usage: node scripts/lib/broker-launch.mjs --json | --shell");
  process.exit(2);
}
