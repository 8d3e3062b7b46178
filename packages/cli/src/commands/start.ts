import { readFileSync } from "node:fs";
import { Broker } from "@raftka/broker";
import { crc32cFolds, crc32cImplementation } from "@raftka/crc32c";
import {
  ConfigError,
  createLoggingFromConfig,
  createMetricsFromConfig,
  loadConfig,
  type RaftkaConfig,
} from "@raftka/monitoring";
import { keepHelperThreadsBatched } from "../helper-threads.js";
import { pageCacheAdvice } from "../memory-cgroup.js";
import {
  BROKER_GLIBC_TUNABLES,
  BROKER_NODE_FLAGS,
  missingBrokerGlibcTunables,
  missingBrokerNodeFlags,
  threadPoolSizeAdvice,
} from "../node-flags.js";

/** Exit codes scripts can rely on. */
export const ExitCode = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  /** A second SIGTERM/SIGINT/SIGHUP during shutdown: exit at once. */
  INTERRUPTED: 130,
} as const;

/**
 * Each stops the node gracefully. SIGHUP as well, as Kafka treats it: Node's default for it is to die at
 * once, which left the `.lock` behind and every log to recover when the terminal of a node closed.
 */
const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP"];

/** The reason a start was given up: a stop signal arrived before the node was ready. */
class StartInterruptedError extends Error {
  override readonly name = "StartInterruptedError";
  constructor(readonly signal: NodeJS.Signals) {
    super(`the start was interrupted by ${signal}`);
  }
}

/**
 * What to do about a start-up failure whose cause is the disk under the logs (a system error code
 * anywhere in the error's cause chain), or undefined for any other failure.
 */
export function startFailureAdvice(error: unknown, logDirs: readonly string[]): string | undefined {
  const directories = logDirs.join(" ");
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    switch ((cause as NodeJS.ErrnoException).code) {
      case "ENOSPC":
        return `the disk of the log directories is full (\`df -h ${directories}\`): free space on it (other files, or a larger volume), then start again; the logs keep every acknowledged record`;
      case "EROFS":
        return `a log directory is on a read-only file system: remount it read-write (it may have been made read-only after disk errors: check \`dmesg\`), then start again`;
      case "EACCES":
      case "EPERM":
        return `the broker's user may not write to the log directories: give it ownership (\`chown -R <user> ${directories}\`), or set log.dirs to a directory it owns`;
    }
  }
  return undefined;
}

/** Why CRC-32C is not on the native build, and what to do; undefined where it is (or cannot be). */
export function crc32cWarning(
  implementation: typeof crc32cImplementation,
  arch: string,
  env: NodeJS.ProcessEnv,
): string | undefined {
  if (implementation === "native-sse4.2" || arch !== "x64") return undefined;
  const cost = "2.5-4x slower than the native build: produce costs a tenth to a fifth more broker CPU";
  if (env.RAFTKA_CRC32C_NATIVE === "false") {
    return `CRC-32C runs on @node-rs/crc32 because RAFTKA_CRC32C_NATIVE=false asks for it (to compare the two), ${cost}; unset the variable and restart to use the native build`;
  }
  return `CRC-32C runs on @node-rs/crc32, ${cost}; run \`pnpm build\` (it says why the native build failed) and restart`;
}

/** How long past shutdown.timeout.ms closing the logs may take before the process gives up. */
const LOG_CLOSE_GRACE_MS = 10_000;

function packageVersion(): string {
  try {
    const json = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    return json.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

export const START_USAGE = `Usage: raftka start [--config <file>] [--<setting>=<value> ...]

Starts a Raftka node. Settings come from (lowest to highest precedence): built-in defaults, the config
file (--config or RAFTKA_CONFIG; .properties or .json), RAFTKA_* environment variables, --key=value flags,
then run-time settings stored in the metadata log (AlterConfigs, log levels; logged at start). Every setting is listed in docs/configuration.md. Examples:

  raftka start                                      Kafka on :9092, admin HTTP on :9644, data in ./data
  raftka start --listeners=PLAINTEXT://127.0.0.1:0 --admin.listener=127.0.0.1:0 --log.dirs=/tmp/r1

Once clients can connect, one JSON log line with "msg":"ready" and the bound kafkaPort and adminPort is
written to standard output. SIGTERM, SIGINT or SIGHUP shuts down gracefully (during start-up: stops the
start and what it opened); a second signal exits at once.`;

/** `raftka start`: runs a node until a signal stops it. Resolves with the exit code. */
export async function start(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${START_USAGE}\n`);
    return ExitCode.OK;
  }
  let config: RaftkaConfig;
  try {
    config = loadConfig({ argv, env });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`raftka start: ${error.message}\n`);
      return ExitCode.USAGE;
    }
    throw error;
  }
  const version = packageVersion();
  const logging = createLoggingFromConfig(config);
  const logger = logging.root;
  // Before anything is logged or opened: a signal during recovery stops the start cleanly instead of
  // killing the process with the .lock left behind, and one right after "starting" is caught as well.
  const interruptStart = new AbortController();
  let broker: Broker | undefined;
  let resolveStopped: (code: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => {
    resolveStopped = resolve;
  });
  const shutDown = (running: Broker) => {
    running.shutdown().then(
      // A log that failed was closed without flushing: a supervisor must see that the node needs its
      // disk checked (the shutdown's last line says which logs).
      () => resolveStopped(running.needsRestart ? ExitCode.FAILED : ExitCode.OK),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed; logs are recovered at the next start");
        resolveStopped(ExitCode.FAILED);
      },
    );
  };
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      logger.warn({ signal }, "second signal: exiting at once without finishing the shutdown");
      resolveStopped(ExitCode.INTERRUPTED);
      return;
    }
    signalled = true;
    const limit = setTimeout(() => {
      logger.error("shutdown did not finish in time; exiting anyway (logs are recovered at the next start)");
      resolveStopped(ExitCode.FAILED);
    }, config.get("shutdown.timeout.ms") + LOG_CLOSE_GRACE_MS);
    limit.unref();
    if (broker === undefined) {
      logger.info(
        { signal },
        "signal received during start-up: interrupting the start and closing what it opened (send it again to exit at once)",
      );
      interruptStart.abort(new StartInterruptedError(signal));
      return;
    }
    logger.info({ signal }, "signal received: shutting down gracefully (send it again to exit at once)");
    shutDown(broker);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);

  const metrics = createMetricsFromConfig(config, { version, logger: logging.component("admin") });
  logger.info(
    { version, crc32c: crc32cImplementation, crc32cFolds, config: config.toLoggable() },
    "starting",
  );
  const crc32cAdvice = crc32cWarning(crc32cImplementation, process.arch, env);
  if (crc32cAdvice !== undefined) logger.warn({ crc32c: crc32cImplementation }, crc32cAdvice);
  const missingFlags = missingBrokerNodeFlags();
  if (missingFlags.length > 0) {
    logger.warn(
      { missingFlags },
      `Node was started without ${missingFlags.join(" ")}: under load the broker may spend up to half again as much CPU on garbage collection; start it with scripts/start.sh or \`node ${BROKER_NODE_FLAGS.join(" ")} <raftka>/packages/cli/dist/main.js start\``,
    );
  }
  const missingTunables = missingBrokerGlibcTunables();
  if (missingTunables.length > 0) {
    logger.warn(
      { missingTunables },
      `the broker was started without GLIBC_TUNABLES=${missingTunables.join(":")}: large produce requests may cost 10-50% more CPU; start it with scripts/start.sh or \`GLIBC_TUNABLES=${BROKER_GLIBC_TUNABLES.join(":")} node ${BROKER_NODE_FLAGS.join(" ")} <raftka>/packages/cli/dist/main.js start\``,
    );
  }
  const threadPool = threadPoolSizeAdvice();
  if (threadPool !== undefined) logger.warn({ threadPoolSize: 4 }, threadPool);
  const pageCache = pageCacheAdvice();
  if (pageCache !== undefined) logger.warn({ memoryLimit: "none" }, pageCache);
  process.on("unhandledRejection", (reason) => {
    logger.error(
      { err: reason },
      "unhandled promise rejection (a Raftka bug: please report it with this line); the node keeps running",
    );
  });
  process.on("uncaughtException", (error) => {
    logger.fatal(
      { err: error },
      "uncaught exception (a Raftka bug: please report it); exiting, logs are recovered at the next start",
    );
    process.exit(ExitCode.FAILED);
  });

  try {
    const outcome = await Promise.race([
      Broker.start({ config, logging, metrics, version, interruptStart: interruptStart.signal }),
      stopped,
    ]);
    // A second signal, or the time limit, while the start was still under way.
    if (typeof outcome === "number") {
      await logging.flush();
      return outcome;
    }
    broker = outcome;
  } catch (error) {
    if (error instanceof StartInterruptedError) {
      logger.info(
        { signal: error.signal },
        "start interrupted: what had started is stopped and the log directories are released",
      );
      await logging.flush();
      return ExitCode.OK;
    }
    const advice = startFailureAdvice(error, config.get("log.dirs"));
    logger.fatal(
      { err: error },
      `start failed: ${(error as Error).message}${advice === undefined ? "" : `; ${advice}`}`,
    );
    await logging.flush();
    return ExitCode.FAILED;
  }
  // After the start, so that the thread pool the logs' recovery started is there to be swept.
  const stopSweeping = config.get("helper.threads.sched.batch")
    ? keepHelperThreadsBatched(logging.component("server"))
    : () => {};
  if (interruptStart.signal.aborted) {
    // The signal came after start-up's last step: the node is up, so it stops as a running one does.
    shutDown(broker);
  } else {
    const kafka = broker.kafkaListeners;
    // Scripts and tests wait for this line, so it is written whatever log.level says.
    logger.child({}, { level: "info" }).info(
      {
        nodeId: config.get("node.id"),
        kafkaPort: kafka[0]?.boundPort,
        adminPort: broker.adminAddress.port,
        listeners: kafka.map((listener) => `${listener.name}://${listener.host}:${listener.boundPort}`),
        version,
      },
      "ready",
    );
  }

  const code = await stopped;
  stopSweeping();
  await logging.flush();
  return code;
}
