import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, rm, stat, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "./harness/broker.js";
import { kafkaClient } from "./harness/kafkajs.js";

const MiB = 1024 * 1024;
const TOPIC = "reserving";
const PARTITIONS = 4;
// 90 values of 10 KB for each partition per send, a batch of about 900 KB each (under
// max.message.bytes): far over the 256 KiB from which a segment reserves blocks ahead of its appends
// (log.preallocate, on by default), eight appends' worth, about 7 MiB per partition.
const messages = (round: number) =>
  Array.from({ length: 90 * PARTITIONS }, (_, index) => ({
    partition: index % PARTITIONS,
    value: `${round}-${index}-${"v".repeat(10_000)}`,
  }));

let directory: string;
let broker: RunningBroker | undefined;

async function freeBytes(path: string): Promise<number> {
  const space = await statfs(path);
  return space.bavail * space.bsize;
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "raftka-e2e-prealloc-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64m", "tmpfs", directory]);
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw new Error(`this test mounts a tmpfs and needs root (run the suite as root, as CI does): ${error}`);
  }
});

afterAll(async () => {
  await broker?.cleanup();
  execFileSync("umount", [directory]);
  await rm(directory, { recursive: true, force: true });
});

describe("block reservations on a small disk (log.preallocate with the default log.dir.min.free.bytes)", () => {
  it("never take the disk under log.dir.min.free.bytes, and are given back at shutdown so the node starts again", async () => {
    const dataDir = join(directory, "a");
    broker = await startBroker({ dataDir });
    const kafka = kafkaClient(broker.bootstrap);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }] });
    await admin.disconnect();

    // Producers keep sending after the first refusal, as retrying ones do.
    const producer = kafka.producer({ retry: { retries: 0 } });
    await producer.connect();
    let refusals = 0;
    let lowestFree = Number.POSITIVE_INFINITY;
    for (let round = 0; round < 300 && refusals < 20; round++) {
      try {
        await producer.send({ topic: TOPIC, acks: -1, messages: messages(round) });
      } catch {
        refusals += 1;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      lowestFree = Math.min(lowestFree, await freeBytes(directory));
    }
    await producer.disconnect();
    // The default minimum on a 64 MiB disk: 5% of it.
    const minimum = Math.floor(64 * MiB * 0.05);
    expect(refusals, "the producer should have been refused for low disk").toBeGreaterThan(0);
    expect(lowestFree).toBeGreaterThan(minimum - MiB / 2);
    const logs = broker.logs;
    expect(logs.some((line) => String(line.msg).includes("Produce is refused until space is freed"))).toBe(
      true,
    );
    expect(logs.filter((line) => String(line.msg).includes("unhandled promise rejection"))).toEqual([]);
    expect(
      logs.filter((line) => line.type === "failed" || String(line.msg).includes("refuses writes")),
    ).toEqual([]);

    expect(await broker.stop()).toBe(0);
    // No segment keeps blocks reserved past its end once the node stopped.
    for (const partition of await readdir(dataDir)) {
      if (!partition.startsWith(`${TOPIC}-`)) continue;
      for (const name of await readdir(join(dataDir, partition))) {
        if (!name.endsWith(".log")) continue;
        const info = await stat(join(dataDir, partition, name));
        expect(info.blocks * 512, name).toBeLessThanOrEqual(Math.ceil(info.size / 4096) * 4096 + 64 * 1024);
      }
    }
    await broker.restart();
    const status = await fetch(`${broker.adminUrl}/v1/health/ready`);
    expect(status.status).toBe(200);
    expect(await broker.stop()).toBe(0);
  });
});
