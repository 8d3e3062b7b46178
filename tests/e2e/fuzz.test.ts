import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repositoryRoot } from "./harness/broker.js";

// A slice of the protocol fuzzer (scripts/fuzz) for CI: a fresh seed each run, printed so a finding can be
// replayed with `pnpm fuzz --frames <n> --seed <seed>`. The full run is `pnpm fuzz --frames 1000000`.
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 15_000);

describe("protocol fuzzing", () => {
  it(`survives ${FRAMES} mutated frames of every served API while serving a well-behaved client`, async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const child = spawn(
      process.execPath,
      [join(repositoryRoot, "scripts/fuzz/fuzz.mjs"), "--frames", String(FRAMES), "--seed", String(seed)],
      { cwd: repositoryRoot, stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code, `fuzz seed ${seed} found something:\n${output}`).toBe(0);
    expect(output).toContain(`${FRAMES} frames sent`);
    expect(output).toContain("no findings");
  }, 300_000);
});
