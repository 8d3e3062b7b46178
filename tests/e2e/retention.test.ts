import { ConfigResourceTypes, type Kafka } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "./harness/broker.js";
import { kafkaClient } from "./harness/kafkajs.js";

let broker: RunningBroker;
let kafka: Kafka;

beforeAll(async () => {
  broker = await startBroker({ settings: { "log.retention.check.interval.ms": 200 } });
  kafka = kafkaClient(broker.bootstrap);
});
afterAll(async () => {
  await broker?.cleanup();
});

describe("retention", () => {
  it("empties an idle topic whose records have all expired, as Kafka does, and keeps what comes after", async () => {
    const admin = kafka.admin();
    const producer = kafka.producer();
    await Promise.all([admin.connect(), producer.connect()]);
    try {
      // One segment, the active one, never rolled by size or age: only retention.ms can empty it.
      await admin.createTopics({
        topics: [
          { topic: "expiring", numPartitions: 1, configEntries: [{ name: "retention.ms", value: "1000" }] },
        ],
        waitForLeaders: true,
      });
      await producer.send({
        topic: "expiring",
        acks: -1,
        messages: [0, 1, 2, 3, 4].map((n) => ({ value: `old-${n}` })),
      });
      const deadline = Date.now() + 15_000;
      let offsets = await admin.fetchTopicOffsets("expiring");
      while (offsets[0]!.low !== "5" && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        offsets = await admin.fetchTopicOffsets("expiring");
      }
      expect(offsets[0]).toMatchObject({ low: "5", high: "5" });

      // Kept from now on: the next record is read back, not expired.
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: "expiring",
            configEntries: [{ name: "retention.ms", value: "-1" }],
          },
        ],
      });
      await producer.send({ topic: "expiring", acks: -1, messages: [{ value: "new" }] });
      const consumer = kafka.consumer({ groupId: "retention-reader" });
      await consumer.connect();
      try {
        await consumer.subscribe({ topic: "expiring", fromBeginning: true });
        const seen: string[] = [];
        await new Promise<void>((resolve, reject) => {
          consumer
            .run({
              eachMessage: async ({ message }) => {
                seen.push(`${message.offset}:${message.value?.toString()}`);
                resolve();
              },
            })
            .catch(reject);
        });
        expect(seen).toEqual(["5:new"]);
      } finally {
        await consumer.disconnect();
      }
    } finally {
      await Promise.all([admin.disconnect(), producer.disconnect()]);
    }
  });
});
