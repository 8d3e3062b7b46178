import type { Kafka } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "./harness/broker.js";
import { kafkaClient } from "./harness/kafkajs.js";

let broker: RunningBroker;
let kafka: Kafka;

beforeAll(async () => {
  broker = await startBroker({
    settings: { "group.initial.rebalance.delay.ms": 0, "test.fault.injection.enable": true },
  });
  kafka = kafkaClient(broker.bootstrap, { retry: { retries: 20, initialRetryTime: 50, maxRetryTime: 500 } });
});

afterAll(async () => {
  await broker?.cleanup();
});

async function faults(method: "POST" | "GET" | "DELETE", rule?: object): Promise<{ dropped: number }> {
  const response = await fetch(`${broker.adminUrl}/v1/test/faults`, {
    method,
    headers: { "content-type": "application/json" },
    ...(rule ? { body: JSON.stringify(rule) } : {}),
  });
  if (!response.ok) throw new Error(`fault injection: ${response.status} ${await response.text()}`);
  return (await response.json()) as { dropped: number };
}

/** Sends `count` records one request at a time while every `every`-th Produce answer is cut off. */
async function produceThroughCuts(topic: string, idempotent: boolean, count: number, every: number) {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
  await admin.disconnect();
  const producer = kafka.producer(idempotent ? { idempotent: true, maxInFlightRequests: 1 } : {});
  await producer.connect();
  const droppedBefore = (await faults("GET")).dropped;
  await faults("POST", { api: "Produce", every, count: Math.floor(count / every) });
  for (let index = 0; index < count; index++) {
    await producer.send({ topic, acks: -1, messages: [{ key: `k${index % 3}`, value: String(index) }] });
  }
  const dropped = (await faults("DELETE")).dropped - droppedBefore;
  await producer.disconnect();
  return { dropped, perPartition: await readPartitions(topic) };
}

/** Every value per partition, in offset order. */
async function readPartitions(topic: string): Promise<Map<number, number[]>> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const expected = ends.reduce((sum, partition) => sum + Number(partition.high), 0);
  const consumer = kafka.consumer({ groupId: `read-${topic}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const perPartition = new Map<number, number[]>();
  let seen = 0;
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        perPartition.set(partition, [
          ...(perPartition.get(partition) ?? []),
          Number(message.value!.toString()),
        ]);
        if (++seen >= expected) resolve();
      },
    });
  });
  await consumer.disconnect();
  return perPartition;
}

describe("producers whose connections are cut after the broker appended their batch", () => {
  it("kafkajs idempotent: no duplicates and no gaps, every partition in send order", async () => {
    const count = 300;
    const { dropped, perPartition } = await produceThroughCuts("idempotent-cuts", true, count, 4);
    expect(dropped).toBeGreaterThanOrEqual(50);
    const all = [...perPartition.values()].flat();
    expect(all.length).toBe(count);
    expect(new Set(all).size).toBe(count);
    for (const values of perPartition.values()) expect(values).toEqual([...values].sort((a, b) => a - b));
  });

  it("a plain (non-idempotent) producer under the same cuts writes duplicates, so the faults are real", async () => {
    const count = 60;
    const { dropped, perPartition } = await produceThroughCuts("plain-cuts", false, count, 4);
    expect(dropped).toBeGreaterThanOrEqual(10);
    const all = [...perPartition.values()].flat();
    expect(all.length).toBe(count + dropped);
    expect(new Set(all).size).toBe(count);
  });
});
