import type { Kafka } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "./harness/broker.js";
import { type FetchedMessage, KafkajsFetcher, kafkaClient } from "./harness/kafkajs.js";

let broker: RunningBroker;
let kafka: Kafka;

beforeAll(async () => {
  broker = await startBroker();
  kafka = kafkaClient(broker.bootstrap);
});

afterAll(async () => {
  await broker?.cleanup();
});

const text = (buffer: Buffer | null | undefined) => (buffer == null ? null : buffer.toString("utf8"));
const byPartition = (messages: readonly FetchedMessage[]) => {
  const result = new Map<number, FetchedMessage[]>();
  for (const message of messages)
    result.set(message.partition, [...(result.get(message.partition) ?? []), message]);
  return result;
};

describe("kafkajs against a real broker process", () => {
  it("creates a topic, produces with acks=all and reads every record back in order per partition", async () => {
    const admin = kafka.admin();
    await admin.connect();
    expect(
      await admin.createTopics({ topics: [{ topic: "orders", numPartitions: 3 }], waitForLeaders: false }),
    ).toBe(true);
    // A second creation of the same topic is refused (kafkajs reports it as "not created").
    expect(await admin.createTopics({ topics: [{ topic: "orders", numPartitions: 3 }] })).toBe(false);
    const metadata = await admin.fetchTopicMetadata({ topics: ["orders"] });
    expect(metadata.topics[0]!.partitions.map((partition) => partition.leader)).toEqual([
      broker.nodeId,
      broker.nodeId,
      broker.nodeId,
    ]);

    const producer = kafka.producer();
    await producer.connect();
    const sent: { partition: number; key: string | null; value: string | null; header: string }[] = [];
    for (let index = 0; index < 30; index++) {
      sent.push({
        partition: index % 3,
        key: index % 5 === 0 ? null : `key-${index}`,
        value: index % 7 === 0 ? null : `value-${index}`,
        header: `h${index}`,
      });
    }
    // Right after CreateTopics: the first Produce must not see UNKNOWN_TOPIC_OR_PARTITION.
    const results = await producer.send({
      topic: "orders",
      acks: -1,
      messages: sent.map((message) => ({
        partition: message.partition,
        key: message.key,
        value: message.value,
        headers: { trace: message.header },
      })),
    });
    expect(results.every((result) => result.errorCode === 0)).toBe(true);

    const offsets = await admin.fetchTopicOffsets("orders");
    expect(offsets.map(({ partition, high, low }) => ({ partition, high, low }))).toEqual(
      [0, 1, 2].map((partition) => ({ partition, high: "10", low: "0" })),
    );

    const fetcher = new KafkajsFetcher(kafka, "orders");
    await fetcher.connect();
    const received = byPartition(await fetcher.consume(30));
    await fetcher.disconnect();
    for (const partition of [0, 1, 2]) {
      const expected = sent.filter((message) => message.partition === partition);
      const got = received.get(partition) ?? [];
      expect(got.map((message) => message.offset)).toEqual(expected.map((_, index) => String(index)));
      expect(
        got.map((message) => [text(message.key), text(message.value), String(message.headers.trace)]),
      ).toEqual(expected.map((message) => [message.key, message.value, message.header]));
    }
    await producer.disconnect();
    await admin.disconnect();
  });

  it("reports request and log metrics and readiness on the admin port", async () => {
    const ready = await fetch(`${broker.adminUrl}/v1/health/ready`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`${broker.adminUrl}/metrics`)).text();
    const value = (series: string) => {
      const line = metrics.split("\n").find((candidate) => candidate.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    expect(value('raftka_kafka_requests_total{api="Produce"}')).toBeGreaterThanOrEqual(1);
    expect(value('raftka_topic_records_produced_total{topic="orders"}')).toBe(30);
    expect(value('raftka_log_end_offset{topic="orders",partition="0"}')).toBe(10);
    expect(value('raftka_log_high_watermark{topic="orders",partition="2"}')).toBe(10);
  });

  it("creates a topic on first produce and answers acks=1 and acks=0 producers", async () => {
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    const [first] = await producer.send({ topic: "auto-created", acks: 1, messages: [{ value: "one" }] });
    expect(first).toMatchObject({ topicName: "auto-created", errorCode: 0, baseOffset: "0" });
    // acks=0: the broker sends no response; kafkajs resolves at once and the record still arrives.
    await producer.send({ topic: "auto-created", acks: 0, messages: [{ value: "two" }] });
    await producer.send({ topic: "auto-created", acks: 1, messages: [{ value: "three" }] });
    const fetcher = new KafkajsFetcher(kafka, "auto-created");
    await fetcher.connect();
    const values = (await fetcher.consume(3)).map((message) => text(message.value));
    await fetcher.disconnect();
    expect(values).toEqual(["one", "two", "three"]);
    await producer.disconnect();
  });

  it("keeps every acknowledged record across a graceful restart", async () => {
    expect(await broker.stop("SIGTERM")).toBe(0);
    expect(broker.logs.some((line) => line.msg === "shutdown complete: every log flushed and closed")).toBe(
      true,
    );
    await broker.restart();
    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets("orders");
    expect(offsets.map((offset) => offset.high)).toEqual(["10", "10", "10"]);
    await admin.disconnect();
    const fetcher = new KafkajsFetcher(kafka, "orders");
    await fetcher.connect();
    expect(await fetcher.consume(30)).toHaveLength(30);
    await fetcher.disconnect();
  });
});
