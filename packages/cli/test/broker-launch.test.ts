import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { BROKER_GLIBC_TUNABLES, BROKER_NODE_FLAGS, BROKER_THREAD_POOL_SIZE } from "../src/index.js";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const script = join(repository, "scripts", "lib", "broker-launch.mjs");
const bareEnvironment = { PATH: process.env.PATH ?? "" };

describe("scripts/lib/broker-launch.mjs (what scripts/start.sh and the Python harness start the broker with)", () => {
  it("gives node-flags.ts's flags and environment as JSON", () => {
    const launch = JSON.parse(
      execFileSync(process.execPath, [script, "--json"], { env: bareEnvironment, encoding: "utf8" }),
    );
    expect(launch).toEqual({
      nodeFlags: BROKER_NODE_FLAGS,
      environment: {
        GLIBC_TUNABLES: BROKER_GLIBC_TUNABLES.join(":"),
        UV_THREADPOOL_SIZE: String(BROKER_THREAD_POOL_SIZE),
      },
    });
  });

  it("gives bash the same to eval, and values already in the environment win", () => {
    const printed = execFileSync(
      "bash",
      [
        "-c",
        `eval "$(node ${script} --shell)"; echo "$GLIBC_TUNABLES"; echo "$UV_THREADPOOL_SIZE"; printf '%s\\n' "\${BROKER_NODE_FLAGS[@]}"`,
      ],
      {
        env: { ...bareEnvironment, UV_THREADPOOL_SIZE: "7", GLIBC_TUNABLES: "glibc.malloc.arena_max=2" },
        encoding: "utf8",
      },
    );
    expect(printed.trim().split("\n")).toEqual([
      `${BROKER_GLIBC_TUNABLES.join(":")}:glibc.malloc.arena_max=2`,
      "7",
      ...BROKER_NODE_FLAGS,
    ]);
  });
});
