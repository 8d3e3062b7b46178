import { ConfigResourceTypes, type Kafka } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "./harness/broker.js";
import { kafkaClient } from "./harness/kafkajs.js";

let broker: RunningBroker;
let kafka: Kafka;

beforeAll(async () => {
  broker = await startBroker();
  kafka = kafkaClient(broker.bootstrap);
});
afterAll(async () => {
  await broker?.cleanup();
});

describe("kafkajs admin client", () => {
  it("creates, describes, alters, grows, trims and deletes topics", async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        topics: [
          {
            topic: "managed",
            numPartitions: 2,
            configEntries: [{ name: "retention.ms", value: "86400000" }],
          },
        ],
      });
      expect(await admin.listTopics()).toContain("managed");

      const cluster = await admin.describeCluster();
      expect(cluster.brokers).toEqual([{ nodeId: 0, host: "127.0.0.1", port: broker.kafkaPort }]);
      expect(cluster.controller).toBe(0);

      const describe = async () =>
        (
          await admin.describeConfigs({
            includeSynonyms: false,
            resources: [
              {
                type: ConfigResourceTypes.TOPIC,
                name: "managed",
                configNames: ["retention.ms", "cleanup.policy"],
              },
            ],
          })
        ).resources[0]!.configEntries.map((entry) => [entry.configName, entry.configValue, entry.isDefault]);
      expect(await describe()).toEqual([
        ["retention.ms", "86400000", false],
        ["cleanup.policy", "delete", true],
      ]);
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: "managed",
            configEntries: [{ name: "cleanup.policy", value: "compact,delete" }],
          },
        ],
      });
      expect(await describe()).toEqual([
        ["retention.ms", "604800000", true],
        ["cleanup.policy", "compact,delete", false],
      ]);
      await expect(
        admin.alterConfigs({
          validateOnly: false,
          resources: [
            {
              type: ConfigResourceTypes.TOPIC,
              name: "managed",
              configEntries: [{ name: "retention.ms", value: "forever" }],
            },
          ],
        }),
      ).rejects.toThrow(/INVALID_CONFIG|invalid/i);

      await admin.createPartitions({ topicPartitions: [{ topic: "managed", count: 4 }] });
      const metadata = await admin.fetchTopicMetadata({ topics: ["managed"] });
      expect(metadata.topics[0]!.partitions).toHaveLength(4);

      const producer = kafka.producer();
      await producer.connect();
      // The topic is now compact,delete: as Kafka, the broker refuses records without a key, whole batch.
      await expect(
        producer.send({
          topic: "managed",
          messages: [
            { partition: 3, key: "k", value: "v" },
            { partition: 3, value: "v" },
          ],
        }),
      ).rejects.toMatchObject({ type: "INVALID_RECORD" });
      await producer.send({
        topic: "managed",
        messages: [0, 1, 2].map((index) => ({ partition: 3, key: `k${index}`, value: `v${index}` })),
      });
      await producer.disconnect();
      await admin.deleteTopicRecords({ topic: "managed", partitions: [{ partition: 3, offset: "2" }] });
      const offsets = await admin.fetchTopicOffsets("managed");
      expect(offsets.find((offset) => offset.partition === 3)).toMatchObject({ low: "2", high: "3" });

      await admin.deleteTopics({ topics: ["managed"] });
      expect(await admin.listTopics()).not.toContain("managed");
    } finally {
      await admin.disconnect();
    }
  });

  it("seeks by time to the first record left after DeleteRecords cut into a batch", async () => {
    const admin = kafka.admin();
    const producer = kafka.producer();
    await Promise.all([admin.connect(), producer.connect()]);
    try {
      // Timestamps from 1970 would be past time retention: keep retention out of the way.
      await admin.createTopics({
        topics: [{ topic: "timed", configEntries: [{ name: "retention.ms", value: "-1" }] }],
      });
      // One batch at offsets 0-2, then offset 3.
      await producer.send({
        topic: "timed",
        messages: [1000, 9000, 2000].map((timestamp) => ({
          value: `at-${timestamp}`,
          timestamp: String(timestamp),
        })),
      });
      await producer.send({ topic: "timed", messages: [{ value: "at-3000", timestamp: "3000" }] });
      expect(await admin.fetchTopicOffsetsByTimestamp("timed", 2500)).toEqual([
        { partition: 0, offset: "1" },
      ]);
      await admin.deleteTopicRecords({ topic: "timed", partitions: [{ partition: 0, offset: "2" }] });
      // Not the latest offset (4), which kafkajs would report had the broker found nothing.
      expect(await admin.fetchTopicOffsetsByTimestamp("timed", 2500)).toEqual([
        { partition: 0, offset: "3" },
      ]);
    } finally {
      await Promise.all([producer.disconnect(), admin.disconnect()]);
    }
  });
});
