import { spawn } from "node:child_process";
import { PassThrough, Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Interrupts, runCli } from "../../packages/cli/src/index.js";
import { type RunningBroker, raftkaMain, startBroker } from "./harness/broker.js";
import { kafkaClient } from "./harness/kafkajs.js";

// The `raftka` CLI as a process against a real broker process: what a script or an operator sees.
let broker: RunningBroker;

beforeAll(async () => {
  broker = await startBroker();
});

afterAll(async () => {
  await broker?.cleanup();
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function environment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith("RAFTKA_")) env[name] = value;
  }
  return env;
}

/** `raftka <args> --brokers <broker> --admin-url <broker>`, with `input` on stdin. */
function raftka(args: readonly string[], input = ""): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [raftkaMain, ...args, "--brokers", broker.bootstrap, "--admin-url", broker.adminUrl],
      { env: environment(), stdio: ["pipe", "pipe", "pipe"] },
    );
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
    child.stdin.end(input);
  });
}

const jsonOf = <T>(run: Run): T => {
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as T;
};

const jsonLines = <T>(text: string): T[] =>
  text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as T);

interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  headers: Record<string, string | null>;
}

describe("raftka topic commands against a broker process", () => {
  it("creates a topic with settings, refuses a second creation, and accepts it with --if-not-exists", async () => {
    const created = await raftka(["topic", "create", "orders", "-p", "3", "-c", "retention.ms=3600000"]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/orders\s+created/);

    const again = await raftka(["topic", "create", "orders", "-p", "3"]);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain("TOPIC_ALREADY_EXISTS");
    expect(again.stdout).toContain("--if-not-exists");

    const tolerated = await raftka(["topic", "create", "orders", "--if-not-exists"]);
    expect(tolerated.code).toBe(0);
    expect(tolerated.stdout).toMatch(/orders\s+exists/);
  });

  it("tells scripts the created topic's id and counts", async () => {
    const [created] = jsonOf<{ name: string; topicId: string; partitions: number; replicas: number }[]>(
      await raftka(["topic", "create", "scripted", "-p", "4", "--format", "json"]),
    );
    expect(created).toMatchObject({ name: "scripted", partitions: 4, replicas: 1 });
    expect(created!.topicId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(created!.topicId).not.toBe("AAAAAAAAAAAAAAAAAAAAAA");
  });

  it("refuses an invalid topic name with the broker's reason and exit 1", async () => {
    const run = await raftka(["topic", "create", "bad/name"]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("INVALID_TOPIC_EXCEPTION");
  });

  it("lists topics for people and for scripts", async () => {
    const table = await raftka(["topic", "list"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^NAME\s+PARTITIONS\s+REPLICAS$/m);
    expect(table.stdout).toMatch(/^orders\s+3\s+1$/m);
    const topics = jsonOf<{ name: string; partitions: number; replicas: number }[]>(
      await raftka(["topic", "list", "--format", "json"]),
    );
    expect(topics).toContainEqual(expect.objectContaining({ name: "orders", partitions: 3, replicas: 1 }));
  });

  it("produces stdin lines with keys, and describe's offsets count every record", async () => {
    const lines = Array.from({ length: 90 }, (_, index) => `customer-${index % 9}:order ${index}`).join("\n");
    const produced = jsonOf<{ records: number; partitions: { partition: number; records: number }[] }>(
      await raftka(["topic", "produce", "orders", "-K", ":", "-H", "source=cli", "--format", "json"], lines),
    );
    expect(produced.records).toBe(90);
    expect(produced.partitions.reduce((sum, partition) => sum + partition.records, 0)).toBe(90);

    const [described] = jsonOf<
      {
        topicId: string;
        partitions: {
          leaderEpoch: number;
          partition: number;
          leader: number;
          isr: number[];
          highWatermark: number;
          logStartOffset: number;
        }[];
      }[]
    >(await raftka(["topic", "describe", "orders", "--format", "json"]));
    expect(described!.topicId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(described!.topicId).not.toBe("AAAAAAAAAAAAAAAAAAAAAA");
    expect(described!.partitions).toHaveLength(3);
    expect(described!.partitions.every((partition) => partition.leaderEpoch >= 0)).toBe(true);
    expect(described!.partitions.every((partition) => partition.leader === broker.nodeId)).toBe(true);
    expect(
      described!.partitions.reduce(
        (sum, partition) => sum + partition.highWatermark - partition.logStartOffset,
        0,
      ),
    ).toBe(90);

    const table = await raftka(["topic", "describe", "orders"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/records\s+90/);
    expect(table.stdout).toMatch(/retention\.ms\s+3600000\s+TOPIC/);
  });

  it("spreads keyless records of one-record runs over the partitions, not all on partition 0", async () => {
    await raftka(["topic", "create", "keyless", "-p", "4"]);
    const landed = new Set<number>();
    for (let run = 0; run < 10; run++) {
      const produced = jsonOf<{ partitions: { partition: number; records: number }[] }>(
        await raftka(["topic", "produce", "keyless", "-v", `one ${run}`, "--format", "json"]),
      );
      for (const partition of produced.partitions) if (partition.records > 0) landed.add(partition.partition);
    }
    // Ten runs each starting on a random one of four partitions all hit the same one once in 260,000.
    expect(landed.size).toBeGreaterThan(1);
  });

  it("puts keyed records on the partition kafkajs's default partitioner picks", async () => {
    await raftka(["topic", "create", "keyed", "-p", "5"]);
    const keys = Array.from({ length: 20 }, (_, index) => `k${index}`);
    const producer = kafkaClient(broker.bootstrap).producer();
    await producer.connect();
    const sent = await producer.send({
      topic: "keyed",
      messages: keys.map((key) => ({ key, value: "from kafkajs" })),
    });
    await producer.disconnect();
    expect(sent.length).toBeGreaterThan(0);

    const input = keys.map((key) => `${key}\tfrom cli`).join("\n");
    expect((await raftka(["topic", "produce", "keyed", "-K", "\t"], input)).code).toBe(0);
    const records = jsonLines<ConsumedRecord>(
      (await raftka(["topic", "consume", "keyed", "-e", "--format", "json"])).stdout,
    );
    expect(records).toHaveLength(40);
    for (const key of keys) {
      const partitions = new Set(
        records.filter((record) => record.key === key).map((record) => record.partition),
      );
      expect(partitions.size, `key ${key} landed on partitions ${[...partitions]}`).toBe(1);
    }
  });

  it("consumes to the end with keys, values, headers and offsets, in order per partition", async () => {
    const run = await raftka(["topic", "consume", "orders", "-e", "--format", "json"]);
    expect(run.code, run.stderr).toBe(0);
    const records = jsonLines<ConsumedRecord>(run.stdout);
    expect(records).toHaveLength(90);
    expect(records[0]!.headers).toEqual({ source: "cli" });
    for (const partition of [0, 1, 2]) {
      const offsets = records
        .filter((record) => record.partition === partition)
        .map((record) => record.offset);
      expect(offsets).toEqual(offsets.map((_, index) => index));
    }
    const orderNumbers = records.map((record) => Number(record.value!.split(" ")[1])).sort((a, b) => a - b);
    expect(orderNumbers).toEqual(Array.from({ length: 90 }, (_, index) => index));
    for (const record of records)
      expect(record.key).toBe(`customer-${Number(record.value!.split(" ")[1]) % 9}`);
  });

  it("prints every record before it exits, also when the reader of its pipe lags behind", async () => {
    // About 1 MB of output: far more than a pipe holds, so most of it is still queued when the command ends.
    const values = Array.from({ length: 5_000 }, (_, index) => `bulk ${index} ${"x".repeat(200)}`);
    expect((await raftka(["topic", "create", "bulk"])).code).toBe(0);
    const produced = await raftka(["topic", "produce", "bulk"], `${values.join("\n")}\n`);
    expect(produced.code, produced.stderr).toBe(0);
    const consumed = await raftka(["topic", "consume", "bulk", "-e"]);
    expect(consumed.code, consumed.stderr).toBe(0);
    expect(consumed.stdout.split("\n").filter((line) => line !== "")).toEqual(values);
  });

  it("answers a batch too large for the topic with a --batch-records value that gets through", async () => {
    expect((await raftka(["topic", "create", "small-batches", "-c", "max.message.bytes=8192"])).code).toBe(0);
    const values = `${Array.from({ length: 1000 }, (_, index) => `record ${index}`).join("\n")}\n`;
    const refused = await raftka(["topic", "produce", "small-batches"], values);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("MESSAGE_TOO_LARGE");
    const suggested = /--batch-records=(\d+)/.exec(refused.stderr)?.[1];
    expect(suggested, refused.stderr).toBeDefined();
    const produced = await raftka(
      ["topic", "produce", "small-batches", `--batch-records=${suggested}`],
      values,
    );
    expect(produced.code, produced.stderr).toBe(0);
  });

  it("stops after --num records, and reads the last N of a partition with -o -N", async () => {
    const five = await raftka(["topic", "consume", "orders", "-n", "5"]);
    expect(five.code).toBe(0);
    expect(five.stdout.split("\n").filter((line) => line !== "")).toHaveLength(5);

    const lastThree = await raftka(["topic", "consume", "orders", "-p", "0", "-o", "-3", "-e", "-K", "="]);
    expect(lastThree.code).toBe(0);
    const lines = lastThree.stdout.split("\n").filter((line) => line !== "");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^customer-\d=order \d+$/);
  });

  it("says where a partition's offsets are when asked to start outside them", async () => {
    const run = await raftka(["topic", "consume", "orders", "-p", "0", "-o", "100000", "-e"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/offset 100000 is outside partition orders\/0, which holds offsets 0 to \d+/);
  });

  it("waits for a topic that another process creates, showing progress", async () => {
    const consumer = raftka(["topic", "consume", "late", "-n", "2", "--wait-for-topic", "30s", "--progress"]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await raftka(["topic", "create", "late"])).code).toBe(0);
    expect((await raftka(["topic", "produce", "late", "-v", "first", "-v", "second"])).code).toBe(0);
    const run = await consumer;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe("first\nsecond\n");
    expect(run.stderr).toContain('waiting for topic "late" to exist');
    expect(run.stderr).toContain("consumed 2 records from late");
  });

  it("shows the broker's reason when a record cannot be stored: a batch over the topic's segment.bytes", async () => {
    expect((await raftka(["topic", "create", "tiny-segments", "-c", "segment.bytes=1000"])).code).toBe(0);
    const run = await raftka(["topic", "produce", "tiny-segments", "-v", "x".repeat(1500)]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /RECORD_LIST_TOO_LARGE: record batch 0 is \d+ bytes, larger than segment\.bytes \(1000\); send smaller batches or raise segment\.bytes for this topic; the batch held a single record, so --batch-records cannot make it smaller: send smaller records\n/,
    );
  });

  it("round-trips records compressed with every codec, and with acks=0 and acks=1", async () => {
    expect((await raftka(["topic", "create", "codecs"])).code).toBe(0);
    const sent: string[] = [];
    for (const [codec, acks] of [
      ["gzip", "all"],
      ["snappy", "1"],
      ["lz4", "all"],
      ["zstd", "all"],
      ["none", "0"],
    ] as const) {
      const values = Array.from(
        { length: 50 },
        (_, index) => `${codec} record ${index} ${"x".repeat(index)}`,
      );
      const run = await raftka(["topic", "produce", "codecs", "-z", codec, "-a", acks], values.join("\n"));
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain("produced 50 records to codecs");
      sent.push(...values);
    }
    // acks=0 is not acknowledged: wait until its records are visible before reading to the end.
    await expect
      .poll(
        async () =>
          jsonLines<ConsumedRecord>(
            (await raftka(["topic", "consume", "codecs", "-e", "--format", "json"])).stdout,
          ).length,
      )
      .toBe(250);
    const consumed = await raftka(["topic", "consume", "codecs", "-e"]);
    expect(consumed.stdout.split("\n").filter((line) => line !== "")).toEqual(sent);
  });

  it("stops a following consumer cleanly on Ctrl-C: exit 130 and a summary of what it read", async () => {
    const child = spawn(
      process.execPath,
      [raftkaMain, "topic", "consume", "orders", "--progress", "--brokers", broker.bootstrap],
      { env: environment(), stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    await expect
      .poll(() => stdout.split("\n").filter((line) => line !== "").length, { timeout: 30_000 })
      .toBe(90);
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(stderr).toContain("consumed 90 records from orders (lag 0)");
  });

  it("says a produce interrupted while waiting on standard input was interrupted, not that the input was empty", async () => {
    expect((await raftka(["topic", "create", "waiting-input"])).code).toBe(0);
    // `sleep 30 | raftka topic produce waiting-input`, then Ctrl-C: standard input stays open and silent.
    const stdin = new PassThrough();
    let stderr = "";
    const interrupts = new Interrupts();
    const exited = runCli(["topic", "produce", "waiting-input", "--brokers", broker.bootstrap], {
      stdout: new Writable({ write: (_chunk, _encoding, done) => done() }),
      stderr: new Writable({
        write: (chunk, _encoding, done) => {
          stderr += String(chunk);
          done();
        },
      }),
      stdin,
      env: environment(),
      interrupts,
    });
    // Reading has begun once something listens to standard input.
    await expect.poll(() => stdin.listenerCount("data") + stdin.listenerCount("readable")).toBeGreaterThan(0);
    expect(interrupts.trigger()).toBe("handled");
    expect(await exited).toBe(130);
    expect(stderr).toContain(
      "interrupted before a record was read from standard input; nothing was produced",
    );
    expect(stderr).not.toContain("standard input was empty");
  });

  it("changes topic settings and shows them", async () => {
    const altered = await raftka([
      "topic",
      "alter-config",
      "orders",
      "--set",
      "retention.ms=7200000",
      "--set",
      "cleanup.policy=compact",
    ]);
    expect(altered.code, altered.stderr).toBe(0);
    expect(altered.stdout).toMatch(/retention\.ms\s+7200000/);
    const describe = await raftka(["topic", "describe", "orders"]);
    expect(describe.stdout).toMatch(/cleanup\.policy\s+compact\s+TOPIC/);

    const removed = await raftka(["topic", "alter-config", "orders", "--delete", "cleanup.policy"]);
    expect(removed.code, removed.stderr).toBe(0);
    expect((await raftka(["topic", "describe", "orders"])).stdout).not.toMatch(/cleanup\.policy\s+compact/);

    const invalid = await raftka(["topic", "alter-config", "orders", "--set", "retention.ms=soon"]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain("INVALID_CONFIG");
  });

  it("deletes a topic, after which describing it fails with a hint", async () => {
    expect((await raftka(["topic", "create", "doomed"])).code).toBe(0);
    const deleted = await raftka(["topic", "delete", "doomed"]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toMatch(/doomed\s+deleted/);
    const gone = await raftka(["topic", "describe", "doomed"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("UNKNOWN_TOPIC_OR_PARTITION");
    expect(gone.stderr).toContain("raftka topic list");
    expect((await raftka(["topic", "delete", "doomed", "--if-exists"])).code).toBe(0);
  });
});

describe("raftka cluster commands against a broker process", () => {
  it("shows the broker in the cluster metadata", async () => {
    const metadata = jsonOf<{ controllerId: number; brokers: { nodeId: number; port: number }[] }>(
      await raftka(["cluster", "metadata", "--format", "json"]),
    );
    expect(metadata.brokers).toEqual([
      expect.objectContaining({ nodeId: broker.nodeId, port: broker.kafkaPort }),
    ]);
    expect(metadata.controllerId).toBe(broker.nodeId);
  });

  it("reports the node ready, and its status with listeners and partitions", async () => {
    const health = await raftka(["cluster", "health"]);
    expect(health.code, health.stdout).toBe(0);
    expect(health.stdout).toMatch(/storage_recovered\s+yes/);
    expect(health.stdout).toMatch(/listeners_up\s+yes/);

    const status = jsonOf<{
      nodeId: number;
      partitions: number;
      leaders: number;
      listeners: { port: number }[];
    }>(await raftka(["cluster", "status", "--format", "json"]));
    expect(status.nodeId).toBe(broker.nodeId);
    expect(status.listeners.map((listener) => listener.port)).toContain(broker.kafkaPort);
    expect(status.partitions).toBeGreaterThanOrEqual(3 + 5 + 1);
    expect(status.leaders).toBe(status.partitions);
  });
});
