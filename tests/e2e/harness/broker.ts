import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
// The flags themselves, not the CLI package: the e2e suites start the built CLI as a process.
import { BROKER_NODE_FLAGS, brokerEnvironment } from "../../../packages/cli/src/node-flags.js";

/** The repository root, from tests/e2e/harness. */
export const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const raftkaMain = join(repositoryRoot, "packages/cli/dist/main.js");

export interface StartBrokerOptions {
  /** Extra settings as `key: value` (passed as --key=value). */
  readonly settings?: Readonly<Record<string, string | number | boolean>>;
  /** Reuse a data directory (default: a fresh temporary one, deleted by `cleanup`). */
  readonly dataDir?: string;
  /** Fixed Kafka port (default 0: any free port). */
  readonly kafkaPort?: number;
  /** Extra environment variables for the process. */
  readonly env?: Readonly<Record<string, string>>;
  /** How long to wait for the "ready" line (default 60 s). */
  readonly readyTimeoutMs?: number;
  /** Node flags for the broker process (default: the ones it ships with, BROKER_NODE_FLAGS). */
  readonly nodeFlags?: readonly string[];
  /** Start without the broker's GLIBC_TUNABLES (default false: with them, as scripts/start.sh starts it). */
  readonly withoutGlibcTunables?: boolean;
  /** A cgroup directory to start the process in (its `cgroup.procs` gets the pid before Node starts). */
  readonly cgroup?: string;
}

export interface LogLine {
  readonly level?: string;
  readonly msg?: string;
  readonly [field: string]: unknown;
}

export interface RunningBroker {
  readonly kafkaPort: number;
  readonly adminPort: number;
  readonly nodeId: number;
  /** `127.0.0.1:<kafkaPort>`, for clients. */
  readonly bootstrap: string;
  readonly adminUrl: string;
  readonly dataDir: string;
  readonly pid: number;
  /** Every JSON log line the current process wrote so far. */
  readonly logs: readonly LogLine[];
  /** Sends `signal` (default SIGTERM) and resolves with the exit code once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code once the process has exited on its own (sends nothing). */
  waitForExit(): Promise<number | null>;
  /** SIGKILL: no shutdown at all, as a crash. */
  kill(): Promise<void>;
  /** Starts the node again on the same data directory and Kafka port (after stop or kill). */
  restart(options?: Pick<StartBrokerOptions, "settings">): Promise<RunningBroker>;
  /** Stops the process if it runs and deletes a temporary data directory. */
  cleanup(): Promise<void>;
}

interface Instance {
  child: ChildProcess;
  exited: Promise<number | null>;
  logs: LogLine[];
  stderr: string[];
  ready: LogLine;
}

async function spawnBroker(
  dataDir: string,
  kafkaPort: number,
  options: StartBrokerOptions,
): Promise<Instance> {
  const settings: Record<string, string | number | boolean> = {
    listeners: `PLAINTEXT://127.0.0.1:${kafkaPort}`,
    "admin.listener": "127.0.0.1:0",
    "log.dirs": dataDir,
    ...options.settings,
  };
  const args = [
    ...(options.nodeFlags ?? BROKER_NODE_FLAGS),
    raftkaMain,
    "start",
    ...Object.entries(settings).map(([key, value]) => `--${key}=${value}`),
  ];
  // In a cgroup: a shell joins it and then becomes Node, so that Node runs in it from its first allocation.
  const [command, commandArgs] =
    options.cgroup === undefined
      ? [process.execPath, args]
      : [
          "/bin/sh",
          ["-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', options.cgroup, process.execPath, ...args],
        ];
  const child = spawn(command, commandArgs, {
    cwd: repositoryRoot,
    env: options.withoutGlibcTunables
      ? { ...process.env, ...options.env }
      : brokerEnvironment({ ...process.env, ...options.env }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: LogLine[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((resolveExit) => {
    child.once("exit", (code, signal) => resolveExit(code ?? (signal ? null : code)));
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (text: string) => stderr.push(text));
  const ready = new Promise<LogLine>((resolveReady, rejectReady) => {
    const timer = setTimeout(
      () =>
        rejectReady(new Error(`broker did not log "ready" within ${options.readyTimeoutMs ?? 60_000} ms`)),
      options.readyTimeoutMs ?? 60_000,
    );
    createInterface({ input: child.stdout! }).on("line", (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text };
      }
      logs.push(line);
      if (line.msg === "ready") {
        clearTimeout(timer);
        resolveReady(line);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      rejectReady(
        new Error(
          `broker exited with code ${code} before it was ready:\n${stderr.join("")}\n${logs
            .slice(-10)
            .map((entry) => JSON.stringify(entry))
            .join("\n")}`,
        ),
      );
    });
  });
  return { child, exited, logs, stderr, ready: await ready };
}

/**
 * Starts `raftka start` as a real process on port 0 (or `kafkaPort`), with its own temporary data
 * directory, and resolves once it logged "ready" (reading kafkaPort and adminPort from that line).
 */
export async function startBroker(options: StartBrokerOptions = {}): Promise<RunningBroker> {
  const temporary = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "raftka-e2e-")));
  let instance = await spawnBroker(dataDir, options.kafkaPort ?? 0, options);
  const kafkaPort = Number(instance.ready.kafkaPort);

  const alive = () => instance.child.exitCode === null && instance.child.signalCode === null;
  // Getters, so a handle stays valid across restarts (pid, ports and logs are those of the current process).
  const broker: RunningBroker = {
    kafkaPort,
    get adminPort() {
      return Number(instance.ready.adminPort);
    },
    get nodeId() {
      return Number(instance.ready.nodeId);
    },
    bootstrap: `127.0.0.1:${kafkaPort}`,
    get adminUrl() {
      return `http://127.0.0.1:${Number(instance.ready.adminPort)}`;
    },
    dataDir,
    get pid() {
      return instance.child.pid!;
    },
    get logs() {
      return instance.logs;
    },
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (alive()) instance.child.kill(signal);
      return instance.exited;
    },
    waitForExit() {
      return instance.exited;
    },
    async kill() {
      if (alive()) instance.child.kill("SIGKILL");
      await instance.exited;
    },
    async restart(restartOptions = {}) {
      if (alive()) throw new Error("the broker is still running; stop() or kill() it before restart()");
      instance = await spawnBroker(dataDir, kafkaPort, {
        ...options,
        ...(restartOptions.settings ? { settings: { ...options.settings, ...restartOptions.settings } } : {}),
      });
      return broker;
    },
    async cleanup() {
      if (alive()) {
        instance.child.kill("SIGKILL");
        await instance.exited;
      }
      if (temporary) await rm(dataDir, { recursive: true, force: true });
    },
  };
  return broker;
}
