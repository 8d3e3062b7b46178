#!/usr/bin/env node
import { runCli } from "./cli.js";
import { ExitCode } from "./errors.js";
import { Interrupts } from "./interrupts.js";

const argv = process.argv.slice(2);

async function main(): Promise<number> {
  // `start` runs a node with its own signal handling (graceful shutdown, second signal exits at once).
  // Loaded only for `start`, so client commands do not pay for loading the broker.
  if (argv[0] === "start") {
    const { start } = await import("./commands/start.js");
    return start(argv.slice(1), process.env);
  }

  const interrupts = new Interrupts();
  process.on("SIGINT", () => {
    if (interrupts.trigger() === "exit") process.exit(ExitCode.interrupted);
  });
  // A reader that goes away (`raftka topic consume t | head -3`) ends the command, not an error.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(ExitCode.ok);
    throw error;
  });
  return runCli(argv, {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    interrupts,
  });
}

/**
 * Exits once standard output and error have taken everything written to them: to a pipe those writes are
 * asynchronous, and `process.exit` at once would cut off the tail of what a command printed.
 */
function exitAfterOutput(code: number): void {
  process.exitCode = code;
  let pending = 2;
  const flushed = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write("", flushed);
  process.stderr.write("", flushed);
}

main().then(exitAfterOutput, (error: unknown) => {
  process.stderr.write(`raftka: ${(error as Error)?.stack ?? String(error)}\n`);
  exitAfterOutput(ExitCode.failed);
});
