#!/usr/bin/env node
import { ExitCode, start } from "./commands/start.js";

const USAGE = `Usage: raftka <command> [options]

Commands:
  start    start a Raftka node (raftka start --help for its options)

Run 'raftka <command> --help' for a command's options.`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "start":
      return start(rest, process.env);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? ExitCode.USAGE : ExitCode.OK;
    default:
      process.stderr.write(`raftka: unknown command '${command}'\n\n${USAGE}\n`);
      return ExitCode.USAGE;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`raftka: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(ExitCode.FAILED);
  },
);
