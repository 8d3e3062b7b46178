#!/usr/bin/env node
import { runCli } from "./cli.js";
import { ExitCode } from "./errors.js";
import { Interrupts } from "./interrupts.js";

const interrupts = new Interrupts();
process.on("SIGINT", () => {
  if (interrupts.trigger() === "exit") process.exit(ExitCode.interrupted);
});
// A reader that goes away (`raftka topic consume t | head -3`) ends the command, not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(ExitCode.ok);
  throw error;
});

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  interrupts,
});
