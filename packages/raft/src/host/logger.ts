/** The subset of pino's API the Raft host uses, so any pino logger (or a test double) plugs in. */
export interface RaftLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export const silentLogger: RaftLogger = {
  info: () => {},
  warn: () => {},
  error: () => {},
};

/** JSON lines on stderr, for the benchmark node processes and ad-hoc runs without @raftka/monitoring. */
export function consoleLogger(fields: object = {}): RaftLogger {
  const write = (level: string, extra: object, message: string): void => {
    process.stderr.write(
      `${JSON.stringify({ level, time: new Date().toISOString(), ...fields, ...extra, msg: message })}\n`,
    );
  };
  return {
    info: (extra, message) => write("info", extra, message),
    warn: (extra, message) => write("warn", extra, message),
    error: (extra, message) => write("error", extra, message),
  };
}
