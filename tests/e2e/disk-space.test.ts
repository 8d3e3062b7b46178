import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Producer } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, raftkaMain, repositoryRoot, startBroker } from "./harness/broker.js";
import { kafkaClient } from "./harness/kafkajs.js";

const MiB = 1024 * 1024;
const TOPIC = "filling";
// 50 KB per send: under the 256 KiB from which segments reserve blocks ahead, so tmpfs space is the log's.
const messages = (round: number) =>
  Array.from({ length: 5 }, (_, index) => ({ key: `${round}-${index}`, value: "v".repeat(10_000) }));

let directory: string;
let broker: RunningBroker;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "raftka-e2e-tmpfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64m", "tmpfs", directory]);
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw new Error(`this test mounts a tmpfs and needs root (run the suite as root, as CI does): ${error}`);
  }
  broker = await startBroker({ dataDir: directory, settings: { "log.dir.min.free.bytes": 24 * MiB } });
});

afterAll(async () => {
  await broker?.stop();
  execFileSync("umount", [directory]);
  await rm(directory, { recursive: true, force: true });
});

/** The protocol error type behind a kafkajs failure (it wraps retriable errors once retries run out). */
function errorType(error: unknown): string | undefined {
  for (
    let cause = error as { type?: string; cause?: unknown } | undefined;
    cause;
    cause = cause.cause as never
  ) {
    if (cause.type !== undefined && cause.type !== "UNKNOWN") return cause.type;
  }
  return undefined;
}

describe("a broker whose disk runs low (log.dir.min.free.bytes), with kafkajs", () => {
  it("refuses producers with a retriable KAFKA_STORAGE_ERROR, keeps consumers and their commits working, and a retrying producer gets through once there is room", async () => {
    const kafka = kafkaClient(broker.bootstrap);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 2 }] });
    await admin.disconnect();

    // Fill up to the margin with a producer that does not retry, to see the refusal itself.
    const impatient: Producer = kafka.producer({ retry: { retries: 0 } });
    await impatient.connect();
    // A send that fails may still have been taken by one partition of the two: reads may exceed this.
    let acknowledged = 0;
    let refusal: unknown;
    for (let round = 0; round < 2000 && refusal === undefined; round++) {
      try {
        await impatient.send({ topic: TOPIC, acks: -1, messages: messages(round) });
        acknowledged += 5;
      } catch (error) {
        refusal = error;
      }
    }
    await impatient.disconnect();
    expect(errorType(refusal)).toBe("KAFKA_STORAGE_ERROR");
    expect(acknowledged).toBeGreaterThan(100);
    const warning = broker.logs.find((line) =>
      String(line.msg).includes("Produce is refused until space is freed"),
    );
    expect(warning?.level).toBe("warn");
    const status = (await (await fetch(`${broker.adminUrl}/v1/status`)).json()) as Record<string, unknown>;
    expect(status.produceRefusedDirs).toBe(directory);

    // Consumers, their group and its offset commits keep working while producers are refused.
    const consumer = kafka.consumer({ groupId: "reader" });
    await consumer.connect();
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    let read = 0;
    const committed = new Promise<void>((resolve) => {
      consumer.on(consumer.events.COMMIT_OFFSETS, () => {
        if (read >= acknowledged) resolve();
      });
    });
    await consumer.run({
      eachMessage: async () => {
        read += 1;
      },
    });
    await committed;
    await consumer.disconnect();
    expect(read).toBeGreaterThanOrEqual(acknowledged);

    // A producer that retries (kafkajs's default behaviour) gets through once the disk has room.
    const patient = kafka.producer({ retry: { retries: 12, initialRetryTime: 200, maxRetryTime: 1000 } });
    await patient.connect();
    const sent = patient.send({ topic: TOPIC, acks: -1, messages: messages(-1) });
    await new Promise((resolve) => setTimeout(resolve, 500));
    execFileSync("mount", ["-o", "remount,size=128m", directory]);
    const [result] = await sent;
    expect(result!.errorCode).toBe(0);
    await patient.disconnect();
    expect(broker.logs.some((line) => String(line.msg).startsWith("taking Produce to"))).toBe(true);
    const after = (await (await fetch(`${broker.adminUrl}/v1/status`)).json()) as Record<string, unknown>;
    expect(after.produceRefusedDirs).toBe("none");
  });
});

describe("a broker started on a disk with no space left", () => {
  it("exits 1 with a fatal line that says the disk is full and what to do", async () => {
    const full = await mkdtemp(join(tmpdir(), "raftka-e2e-full-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", full]);
    try {
      // Fill it: writing stops at ENOSPC.
      await writeFile(join(full, "filler"), Buffer.alloc(2 * MiB)).catch(() => {});
      const run = spawnSync(
        process.execPath,
        [
          raftkaMain,
          "start",
          `--log.dirs=${full}/data`,
          "--listeners=PLAINTEXT://127.0.0.1:0",
          "--admin.listener=127.0.0.1:0",
        ],
        { cwd: repositoryRoot, encoding: "utf8", timeout: 60_000 },
      );
      expect(run.status).toBe(1);
      const fatal = run.stdout
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as { level?: string; msg?: string })
        .find((line) => line.level === "fatal");
      expect(fatal?.msg).toContain("ENOSPC");
      expect(fatal?.msg).toContain(`the disk of the log directories is full (\`df -h ${full}/data\`)`);
      expect(fatal?.msg).toContain("then start again");
    } finally {
      execFileSync("umount", [full]);
      await rm(full, { recursive: true, force: true });
    }
  });
});

describe("a node whose partition log failed a write (a full disk, with the free-space guard off)", () => {
  it("is not ready for `raftka cluster health`, and its shutdown exits 1 saying which logs had failed", async () => {
    const full = await mkdtemp(join(tmpdir(), "raftka-e2e-failed-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", full]);
    let node: RunningBroker | undefined;
    try {
      node = await startBroker({ dataDir: `${full}/data`, settings: { "log.dir.min.free.bytes": 0 } });
      const kafka = kafkaClient(node.bootstrap);
      const producer = kafka.producer({ retry: { retries: 0 } });
      await producer.connect();
      let failure: unknown;
      for (let round = 0; round < 2000 && failure === undefined; round++) {
        try {
          await producer.send({ topic: "failing", acks: -1, messages: messages(round) });
        } catch (error) {
          failure = error;
        }
      }
      await producer.disconnect();
      expect(errorType(failure)).toBe("KAFKA_STORAGE_ERROR");

      const health = spawnSync(
        process.execPath,
        [raftkaMain, "cluster", "health", "--admin-url", node.adminUrl],
        {
          cwd: repositoryRoot,
          encoding: "utf8",
        },
      );
      expect(health.status).toBe(1);
      expect(health.stdout + health.stderr).toMatch(/storage_writable/);
      expect(health.stdout + health.stderr).toContain("then restart the node");

      expect(await node.stop()).toBe(1);
      const last = node.logs.find((line) => String(line.msg).startsWith("shutdown complete"));
      expect(last?.level).toBe("error");
      expect(last?.msg).toContain("log(s) had failed (failing-0");
    } finally {
      await node?.cleanup();
      execFileSync("umount", [full]);
      await rm(full, { recursive: true, force: true });
    }
  });
});
