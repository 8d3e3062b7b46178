import { execFileSync, spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ApiKey, KafkaConnection } from "@raftka/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { SCHED_BATCH, SCHED_OTHER, threadPolicies } from "../../packages/broker/test/thread-policies.js";
import { ownMemoryCgroup, reportsFreePagesToHost } from "../../packages/cli/src/memory-cgroup.js";
import {
  type LogLine,
  type RunningBroker,
  raftkaMain,
  repositoryRoot,
  startBroker,
} from "./harness/broker.js";
import { kafkaClient } from "./harness/kafkajs.js";

// Starting and stopping `raftka start` as a real process: configuration errors, layering of the
// configuration sources, graceful shutdown with work in flight, and the second signal.

const started: RunningBroker[] = [];
const directories: string[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((broker) => broker.cleanup()));
  await Promise.all(
    directories.splice(0).map((directory) => rm(directory, { recursive: true, force: true })),
  );
});

async function temporaryDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), "raftka-lifecycle-"));
  directories.push(directory);
  return directory;
}

function environment(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith("RAFTKA_")) env[name] = value;
  }
  return { ...env, ...extra };
}

/** Runs the raftka executable to completion. */
function raftka(
  args: readonly string[],
  env = environment(),
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [raftkaMain, ...args], {
      cwd: repositoryRoot,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function track(broker: Promise<RunningBroker>): Promise<RunningBroker> {
  const running = await broker;
  started.push(running);
  return running;
}

describe("raftka start refuses invalid configuration", () => {
  it("names the key, the value, where it came from and what is allowed, and exits 2 before opening anything", async () => {
    const dataDir = await temporaryDirectory();
    const run = await raftka([
      "start",
      `--log.dirs=${dataDir}/never-created`,
      "--listeners=PLAINTEXT://127.0.0.1:0",
      "--admin.listener=127.0.0.1:0",
      "--log.segment.bytes=12abc",
      "--compression.type=ZSTD",
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      'log.segment.bytes = "12abc" (from flag --log.segment.bytes): "12abc" is not a whole number; allowed: whole number 14 .. 2147483647 bytes',
    );
    expect(run.stderr).toContain('did you mean "zstd"?');
    expect(run.stdout).not.toContain('"msg":"ready"');
  });

  it("names the environment variable and the config file line that are wrong", async () => {
    const directory = await temporaryDirectory();
    const file = join(directory, "server.properties");
    await writeFile(file, "# node settings\nnum.partitions=3\nlog.retention.hour=24\n");
    const run = await raftka(
      ["start", `--config=${file}`, `--log.dirs=${directory}/data`, "--listeners=PLAINTEXT://127.0.0.1:0"],
      environment({ RAFTKA_DEFAULT_REPLICATION_FACTOR: "zero" }),
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      `log.retention.hour (from ${file}:3): unknown setting; did you mean log.retention.hours?`,
    );
    expect(run.stderr).toContain("(from environment variable RAFTKA_DEFAULT_REPLICATION_FACTOR)");
  });

  it("ignores the CLI's RAFTKA_BROKERS and RAFTKA_ADMIN_URL, so one shell can run both", async () => {
    const broker = await track(
      startBroker({ env: { RAFTKA_BROKERS: "localhost:1", RAFTKA_ADMIN_URL: "http://localhost:1" } }),
    );
    expect(broker.kafkaPort).toBeGreaterThan(0);
  });
});

describe("the broker's Node flags and glibc tunables", () => {
  it("warns at start, naming the flag and how to start, when Node runs without them", async () => {
    const withFlags = await track(startBroker());
    expect(withFlags.logs.filter((line) => line.missingFlags !== undefined)).toEqual([]);
    await withFlags.cleanup();

    const without = await track(startBroker({ nodeFlags: [] }));
    const warning = without.logs.find((line) => line.missingFlags !== undefined);
    expect(warning?.level).toBe("warn");
    expect(warning?.missingFlags).toEqual(["--initial-old-space-size=128"]);
    expect(String(warning?.msg)).toContain("scripts/start.sh");
  });

  it("warns at start, naming the glibc tunables, when the process runs without them", async () => {
    const withTunables = await track(startBroker());
    expect(withTunables.logs.filter((line) => line.missingTunables !== undefined)).toEqual([]);
    await withTunables.cleanup();

    const without = await track(startBroker({ withoutGlibcTunables: true, env: { GLIBC_TUNABLES: "" } }));
    const warning = without.logs.find((line) => line.missingTunables !== undefined);
    expect(warning?.level).toBe("warn");
    expect(warning?.missingTunables).toEqual([
      "glibc.malloc.mmap_threshold=8388608",
      "glibc.malloc.trim_threshold=67108864",
    ]);
    expect(String(warning?.msg)).toContain("scripts/start.sh");
  });

  it("runs libuv's pool with 16 threads, and warns at start when UV_THREADPOOL_SIZE is missing", async () => {
    const withPool = await track(startBroker());
    expect(withPool.logs.filter((line) => line.threadPoolSize !== undefined)).toEqual([]);
    // libuv starts every pool thread at its first job: 16 of them and the main thread at least (V8's
    // helpers come on top). With libuv's default of 4 the process has about 11 threads in all.
    expect(threadPolicies(withPool.pid).size).toBeGreaterThanOrEqual(17);
    await withPool.cleanup();

    const without = await track(startBroker({ withoutGlibcTunables: true, env: { UV_THREADPOOL_SIZE: "" } }));
    const warning = without.logs.find((line) => line.threadPoolSize !== undefined);
    expect(warning?.level).toBe("warn");
    expect(String(warning?.msg)).toContain("UV_THREADPOOL_SIZE=16");
    expect(String(warning?.msg)).toContain("scripts/start.sh");
    expect(threadPolicies(without.pid).size).toBeLessThan(17);
  });

  it("names its CRC-32C implementation at start, and warns when it is the slower fallback", async () => {
    const native = await track(startBroker());
    const starting = native.logs.find((line) => line.msg === "starting");
    expect(starting?.crc32c).toBe("native-sse4.2");
    expect(native.logs.filter((line) => line.level === "warn" && line.crc32c !== undefined)).toEqual([]);
    await native.cleanup();

    const fallback = await track(startBroker({ env: { RAFTKA_CRC32C_NATIVE: "false" } }));
    const warning = fallback.logs.find((line) => line.level === "warn" && line.crc32c !== undefined);
    expect(warning?.crc32c).toBe("@node-rs/crc32");
    // The variable chose it: the warning says so, rather than blaming a failed native build.
    expect(String(warning?.msg)).toContain("because RAFTKA_CRC32C_NATIVE=false asks for it");
    expect(String(warning?.msg)).not.toContain("pnpm build");
    // Every produced batch's CRC is still checked: kafkajs's batches pass, and are stored.
    const kafka = kafkaClient(fallback.bootstrap);
    const producer = kafka.producer();
    await producer.connect();
    const admin = kafka.admin();
    await admin.connect();
    try {
      await producer.send({ topic: "crc-fallback", acks: -1, messages: [{ value: "a" }, { value: "b" }] });
      expect(await admin.fetchTopicOffsets("crc-fallback")).toMatchObject([{ partition: 0, high: "2" }]);
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  });

  it("advises a memory limit on a VM that reports free pages to its host, and not within a limit", async () => {
    // The machine's own answer: on this CI's VMs free page reporting is on, elsewhere the advice is absent.
    const reporting = reportsFreePagesToHost();
    const unlimited = await track(startBroker());
    const advice = unlimited.logs.filter((line) => line.memoryLimit === "none");
    expect(advice.length).toBe(reporting ? 1 : 0);
    if (reporting) expect(String(advice[0]?.msg)).toContain("docs/operations.md");
    await unlimited.cleanup();

    const own = ownMemoryCgroup();
    if (own === undefined) throw new Error("this test needs a cgroup memory controller (Linux, as root)");
    const cgroup = join(own.mount, own.path, `raftka-lifecycle-${process.pid}`);
    await mkdir(cgroup, { recursive: true });
    directories.push(cgroup);
    await writeFile(
      join(cgroup, own.version === 1 ? "memory.limit_in_bytes" : "memory.max"),
      String(2 ** 30),
    );
    const limited = await track(startBroker({ cgroup }));
    expect(
      (await readFile(`/proc/${limited.pid}/cgroup`, "utf8")).includes(`/raftka-lifecycle-${process.pid}`),
    ).toBe(true);
    expect(limited.logs.filter((line) => line.memoryLimit !== undefined)).toEqual([]);
    await limited.cleanup();
  });
});

describe("the broker's helper threads", () => {
  it("run under SCHED_BATCH, so that they never preempt the event loop, unless turned off", async () => {
    const broker = await track(startBroker());
    const policies = threadPolicies(broker.pid);
    expect(policies.get(broker.pid)).toBe(SCHED_OTHER);
    const helpers = [...policies].filter(([tid]) => tid !== broker.pid).map(([, policy]) => policy);
    // Node's platform workers and libuv's pool at least.
    expect(helpers.length).toBeGreaterThanOrEqual(5);
    expect(helpers).toEqual(helpers.map(() => SCHED_BATCH));
    const said = broker.logs.find((line) => String(line.msg).includes("SCHED_BATCH"));
    expect(said).toMatchObject({ level: "info", helpers: helpers.length, batch: helpers.length });
    await broker.cleanup();

    const off = await track(startBroker({ settings: { "helper.threads.sched.batch": false } }));
    const defaults = [...threadPolicies(off.pid).values()];
    expect(defaults.length).toBeGreaterThanOrEqual(6);
    expect(defaults).toEqual(defaults.map(() => SCHED_OTHER));
    expect(off.logs.filter((line) => String(line.msg).includes("SCHED_BATCH"))).toEqual([]);
  });
});

describe("configuration layering through a real start", () => {
  it("takes the file, then RAFTKA_* variables, then flags, each overriding the one before", async () => {
    const directory = await temporaryDirectory();
    const file = join(directory, "server.properties");
    await writeFile(file, "num.partitions=2\n");
    const partitionsOfNewTopic = async (broker: RunningBroker, topic: string) => {
      const created = await raftka(["topic", "create", topic, "--brokers", broker.bootstrap]);
      expect(created.code, created.stderr).toBe(0);
      const listed = await raftka(["topic", "list", "--format", "json", "--brokers", broker.bootstrap]);
      return (JSON.parse(listed.stdout) as { name: string; partitions: number }[]).find(
        (entry) => entry.name === topic,
      )?.partitions;
    };

    const fileOnly = await track(startBroker({ settings: { config: file } }));
    expect(await partitionsOfNewTopic(fileOnly, "from-file")).toBe(2);
    await fileOnly.cleanup();

    const fileAndEnvironment = await track(
      startBroker({ settings: { config: file }, env: { RAFTKA_NUM_PARTITIONS: "3" } }),
    );
    expect(await partitionsOfNewTopic(fileAndEnvironment, "from-env")).toBe(3);
    await fileAndEnvironment.cleanup();

    const all = await track(
      startBroker({ settings: { config: file, "num.partitions": 4 }, env: { RAFTKA_NUM_PARTITIONS: "3" } }),
    );
    expect(await partitionsOfNewTopic(all, "from-flag")).toBe(4);
  });
});

describe("stopping a node", () => {
  it("answers a request in flight on SIGTERM, then flushes and exits 0", async () => {
    const broker = await track(startBroker());
    expect((await raftka(["topic", "create", "parked", "--brokers", broker.bootstrap])).code).toBe(0);
    const connection = await KafkaConnection.connect("127.0.0.1", broker.kafkaPort, {
      requestTimeoutMs: 120_000,
    });
    try {
      // A Fetch at the log end parks for up to a minute; shutdown must answer it, not drop it.
      const parked = connection.send(ApiKey.Fetch, 11, {
        replicaId: -1,
        maxWaitMs: 60_000,
        minBytes: 1,
        maxBytes: 1_048_576,
        isolationLevel: 0,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [
          { topic: "parked", partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1_048_576 }] },
        ],
        forgottenTopicsData: [],
        rackId: "",
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const exit = broker.stop("SIGTERM");
      const answer = await parked;
      expect(answer.responses[0]!.partitions[0]!.errorCode).toBe(0);
      expect(await exit).toBe(0);
    } finally {
      await connection.close();
    }
    const messages = broker.logs.map((line) => line.msg);
    expect(messages).toContain("shutdown complete: every log flushed and closed");
  });

  it("shuts down gracefully on SIGINT too", async () => {
    const broker = await track(startBroker());
    expect(await broker.stop("SIGINT")).toBe(0);
    expect(broker.logs.map((line) => line.msg)).toContain("shutdown complete: every log flushed and closed");
  });

  it("shuts down gracefully on SIGHUP, as Kafka does, instead of dying with the .lock left", async () => {
    const broker = await track(startBroker());
    expect(await broker.stop("SIGHUP")).toBe(0);
    expect(broker.logs).toContainEqual(
      expect.objectContaining({
        msg: "signal received: shutting down gracefully (send it again to exit at once)",
        signal: "SIGHUP",
      }),
    );
    expect(broker.logs.map((line) => line.msg)).toContain("shutdown complete: every log flushed and closed");
    await expect(readFile(join(broker.dataDir, ".lock"), "utf8")).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("interrupts a start on SIGTERM during start-up: logs it, closes what it opened, releases the .lock, exits 0", async () => {
    const dataDir = await temporaryDirectory();
    // meta.properties as a named pipe, held by a writer that says when start-up has opened it: from then
    // on start-up (readiness "recovering partition logs") waits on it, so the signal surely lands before
    // the node is ready; the writer sends the file's text when told to.
    const metaProperties = join(dataDir, "meta.properties");
    execFileSync("mkfifo", [metaProperties]);
    const writer = spawn(
      "sh",
      [
        "-c",
        'exec 3>"$0"; echo opened; read go; printf "version=1\\ncluster.id=MkU3OEVBNTcwNTJENDM2Qg\\nnode.id=0\\n" >&3',
        metaProperties,
      ],
      { stdio: ["pipe", "pipe", "ignore"] },
    );
    const child = spawn(
      process.execPath,
      [
        raftkaMain,
        "start",
        `--log.dirs=${dataDir}`,
        "--listeners=PLAINTEXT://127.0.0.1:0",
        "--admin.listener=127.0.0.1:0",
      ],
      { cwd: repositoryRoot, env: environment(), stdio: ["ignore", "pipe", "pipe"] },
    );
    let exitCode: number | null | undefined;
    const exited = new Promise<number | null>((resolve) => {
      child.once("exit", (code) => {
        exitCode = code;
        resolve(code);
      });
    });
    const logs: LogLine[] = [];
    let wake = () => {};
    createInterface({ input: child.stdout! }).on("line", (text) => {
      logs.push(JSON.parse(text) as LogLine);
      wake();
    });
    void exited.then(() => wake());
    const untilLogged = async (message: string) => {
      while (!logs.some((line) => line.msg === message)) {
        if (exitCode !== undefined) {
          throw new Error(`exited with ${exitCode} before logging "${message}": ${JSON.stringify(logs)}`);
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    };
    try {
      await new Promise((resolve) => writer.stdout!.once("data", resolve));
      child.kill("SIGTERM");
      await untilLogged(
        "signal received during start-up: interrupting the start and closing what it opened (send it again to exit at once)",
      );
      writer.stdin!.end("go\n");
      expect(await exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
      writer.kill("SIGKILL");
    }
    const messages = logs.map((line) => line.msg);
    expect(messages).toContain(
      "start interrupted: what had started is stopped and the log directories are released",
    );
    expect(messages).not.toContain("ready");
    await expect(readFile(join(dataDir, ".lock"), "utf8")).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("exits at once with 130 on a second signal during shutdown", async () => {
    const broker = await track(startBroker());
    // Both signals wait while the process is stopped, so the second lands during the first's shutdown.
    process.kill(broker.pid, "SIGSTOP");
    process.kill(broker.pid, "SIGTERM");
    process.kill(broker.pid, "SIGINT");
    process.kill(broker.pid, "SIGCONT");
    // Waits without signalling: a third signal could land while the process exits.
    expect(await broker.waitForExit()).toBe(130);
    const messages = broker.logs.map((line) => line.msg);
    expect(messages).toContain("second signal: exiting at once without finishing the shutdown");
    expect(messages).not.toContain("shutdown complete: every log flushed and closed");
  });
});

describe("one node per log directory", () => {
  it("refuses a second node on log directories a running node uses, and takes over a dead node's lock", async () => {
    const dataDir = await temporaryDirectory();
    const first = await startBroker({ dataDir });
    started.push(first);
    const second = startBroker({ dataDir });
    await expect(second).rejects.toThrow(
      new RegExp(`log directory .* is in use by another Raftka process \\(pid ${first.pid}\\)`),
    );
    // A node that crashed leaves its lock behind; the next start takes it over.
    await first.kill();
    expect(JSON.parse(await readFile(join(dataDir, ".lock"), "utf8")).pid).toBe(first.pid);
    const after = await startBroker({ dataDir });
    started.push(after);
    expect(JSON.parse(await readFile(join(dataDir, ".lock"), "utf8")).pid).toBe(after.pid);
    // And a clean stop removes it.
    await after.stop();
    await expect(readFile(join(dataDir, ".lock"), "utf8")).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("the log directories a node starts on", () => {
  /**
   * `raftka start` on `logDirs`, expected to refuse: resolves with the "start failed" line's message. A
   * node that starts instead is stopped (and the test fails) rather than left running.
   */
  async function refusedStart(logDirs: readonly string[]): Promise<string> {
    const child = spawn(
      process.execPath,
      [
        raftkaMain,
        "start",
        `--log.dirs=${logDirs.join(",")}`,
        "--listeners=PLAINTEXT://127.0.0.1:0",
        "--admin.listener=127.0.0.1:0",
      ],
      { cwd: repositoryRoot, env: environment(), stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      if (stdout.includes('"msg":"ready"')) child.kill("SIGTERM");
    });
    child.stderr.resume();
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(stdout, "the node started instead of refusing").not.toContain('"msg":"ready"');
    expect(code, stdout).toBe(1);
    const run = { stdout };
    const failed = run.stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as LogLine)
      .find((line) => String(line.msg).startsWith("start failed: "));
    expect(failed?.level, run.stdout).toBe("fatal");
    return String(failed?.msg);
  }

  it("refuses a new directory listed first and one that lost its meta.properties, and keeps the data", async () => {
    const root = await temporaryDirectory();
    const [data, added] = [join(root, "data"), join(root, "added")];
    const broker = await track(startBroker({ dataDir: data }));
    const kafka = kafkaClient(broker.bootstrap);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: "kept", acks: -1, messages: [{ value: "a" }] });
    await producer.disconnect();
    await broker.stop();
    const clusterId = /cluster\.id=(\S+)/.exec(await readFile(join(data, "meta.properties"), "utf8"))![1]!;

    // A new, empty directory first: the node's metadata is in the second.
    expect(await refusedStart([added, data])).toBe(
      `start failed: log.dirs lists ${added} first, but this node's metadata (cluster id ${clusterId}, __cluster_metadata-0, raft-stable-store) is in ${data}; list ${data} first: the first directory holds the metadata`,
    );
    await expect(readFile(join(added, "meta.properties"))).rejects.toMatchObject({ code: "ENOENT" });
    expect((await readdir(data)).filter((name) => name.endsWith("-stray"))).toEqual([]);

    // Listed after it, the new directory joins the node's cluster and the data is all there.
    const again = await track(startBroker({ dataDir: data, settings: { "log.dirs": `${data},${added}` } }));
    expect(await readFile(join(added, "meta.properties"), "utf8")).toContain(`cluster.id=${clusterId}`);
    const admin = kafkaClient(again.bootstrap).admin();
    await admin.connect();
    try {
      expect(await admin.fetchTopicOffsets("kept")).toMatchObject([{ partition: 0, high: "1" }]);
    } finally {
      await admin.disconnect();
    }
    await again.stop();

    // Without its meta.properties the data directory is refused, not given a new cluster id.
    await rm(join(data, "meta.properties"));
    const message = await refusedStart([data, added]);
    expect(message).toContain(`start failed: log directory ${data} holds data (`);
    expect(message).toContain(
      `but no meta.properties, so which cluster and node it belongs to is unknown (Kafka: "have you run kafka-storage.sh to format the directory?"); restore ${join(data, "meta.properties")}, or write it with the lines version=1, cluster.id=${clusterId} and node.id=${again.nodeId} (as in ${join(added, "meta.properties")})`,
    );
    expect(await refusedStart([data])).toContain(`restore ${join(data, "meta.properties")} from a backup`);
    await expect(readFile(join(data, "meta.properties"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
