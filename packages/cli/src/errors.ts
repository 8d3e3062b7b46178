/**
 * Exit codes scripts can rely on. They are part of the CLI's contract: docs/operations.md lists them,
 * and changing one is a breaking change.
 */
export const ExitCode = {
  /** Everything asked for was done. */
  ok: 0,
  /** The broker (or admin API) answered, and the operation failed or the node is not healthy. */
  failed: 1,
  /** The command line is wrong: unknown command or option, a missing or invalid argument. */
  usage: 2,
  /** No broker (or admin endpoint) could be reached at all. */
  unreachable: 3,
  /** Stopped by Ctrl-C / SIGINT (the shell convention 128 + 2). */
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the CLI reports as one line on stderr and turns into its exit code. */
export class CliError extends Error {
  override readonly name: string = "CliError";
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The command line is wrong; the message says how to write it. */
export class UsageError extends CliError {
  override readonly name = "UsageError";
  constructor(message: string) {
    super(ExitCode.usage, message);
  }
}

/** The broker answered and the operation failed; the message says what to do next. */
export class OperationFailedError extends CliError {
  override readonly name: string = "OperationFailedError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(ExitCode.failed, message, options);
  }
}

/** Nothing answered at the addresses given; the message names them and the flag to fix. */
export class UnreachableError extends CliError {
  override readonly name = "UnreachableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(ExitCode.unreachable, message, options);
  }
}
