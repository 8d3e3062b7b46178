import { createRequire } from "node:module";
import { ApiKey, KafkaConnection, readRecordBatchHeader } from "@raftka/protocol";
import "@sensejs/kafkajs-zstd-support";
import { CompressionCodecs, CompressionTypes, type Kafka } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "./harness/broker.js";
import { injectRaftControlBatch } from "./harness/control-batch.js";
import { KafkajsFetcher, kafkaClient } from "./harness/kafkajs.js";

// The codec packages are CommonJS; require() gives their exports the same way under vitest and plain Node.
const require = createRequire(import.meta.url);
// @2l/kafkajs-lz4 replaces module.exports with the class (its typings claim a default export).
const LZ4Codec = require("@2l/kafkajs-lz4") as typeof import("@2l/kafkajs-lz4").default;
CompressionCodecs[CompressionTypes.Snappy] =
  require("kafkajs-snappy") as (typeof CompressionCodecs)[typeof CompressionTypes.Snappy];
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec;

let broker: RunningBroker;
let kafka: Kafka;

beforeAll(async () => {
  broker = await startBroker();
  kafka = kafkaClient(broker.bootstrap);
});
afterAll(async () => {
  await broker?.cleanup();
});

/** The codec of the first stored batch of a partition, read with the raw protocol client. */
async function storedCodec(topic: string, partition: number): Promise<number> {
  const connection = await KafkaConnection.connect("127.0.0.1", broker.kafkaPort);
  try {
    const response = await connection.send(ApiKey.Fetch, 11, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 1 << 20,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [
        {
          topic,
          partitions: [
            {
              partition,
              currentLeaderEpoch: -1,
              fetchOffset: 0n,
              lastFetchedEpoch: -1,
              logStartOffset: -1n,
              partitionMaxBytes: 1 << 20,
            },
          ],
        },
      ],
      forgottenTopicsData: [],
      rackId: "",
    });
    return readRecordBatchHeader(response.responses[0]!.partitions[0]!.records!).compression;
  } finally {
    await connection.close();
  }
}

const codecs = [
  ["none", CompressionTypes.None],
  ["gzip", CompressionTypes.GZIP],
  ["snappy", CompressionTypes.Snappy],
  ["lz4", CompressionTypes.LZ4],
  ["zstd", CompressionTypes.ZSTD],
] as const;

describe("kafkajs with every codec", () => {
  it.each(codecs)(
    "produces and consumes %s batches with headers and null keys and values",
    async (name, codec) => {
      const topic = `codec-${name}`;
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
      await admin.disconnect();
      const producer = kafka.producer();
      await producer.connect();
      const messages = Array.from({ length: 40 }, (_, index) => ({
        partition: index % 2,
        key: index % 4 === 0 ? null : `key-${index}`,
        value: index % 9 === 0 ? null : `${name}-value-${index}-${"z".repeat(index * 13)}`,
        headers: { index: String(index), codec: name },
      }));
      await producer.send({ topic, compression: codec, messages });
      await producer.disconnect();

      expect(await storedCodec(topic, 0)).toBe(codec);
      const fetcher = new KafkajsFetcher(kafka, topic);
      await fetcher.connect();
      const received = await fetcher.consume(messages.length);
      await fetcher.disconnect();
      const decoded = received
        .map((message) => ({
          partition: message.partition,
          key: message.key?.toString() ?? null,
          value: message.value?.toString() ?? null,
          headers: { index: String(message.headers.index), codec: String(message.headers.codec) },
        }))
        .sort((a, b) => Number(a.headers.index) - Number(b.headers.index));
      expect(decoded).toEqual(messages);
    },
  );
});

describe("limits and internal batches", () => {
  it("accepts a message just under message.max.bytes and refuses one just over", async () => {
    const producer = kafka.producer({ retry: { retries: 0 } });
    await producer.connect();
    const limit = 1_048_588;
    // Batch header (61) + record framing (< 30 bytes) stay below the 200 bytes of headroom.
    const [ok] = await producer.send({ topic: "large", messages: [{ value: Buffer.alloc(limit - 200, 1) }] });
    expect(ok!.errorCode).toBe(0);
    await expect(
      producer.send({ topic: "large", messages: [{ value: Buffer.alloc(limit + 100, 1) }] }),
    ).rejects.toThrow(/larger than the max message size/);
    await producer.disconnect();
    const fetcher = new KafkajsFetcher(kafka, "large", { maxBytesPerPartition: 1024 });
    await fetcher.connect();
    const [message] = await fetcher.consume(1);
    await fetcher.disconnect();
    expect(message!.value!.length).toBe(limit - 200);
  });

  it("steps over an empty Raft control batch between records without showing it", async () => {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: "with-raft-entry", messages: [{ value: "before" }] });
    await producer.disconnect();
    expect(await injectRaftControlBatch(broker, "with-raft-entry")).toBe(1);
    const again = kafka.producer();
    await again.connect();
    await again.send({ topic: "with-raft-entry", messages: [{ value: "after" }] });
    await again.disconnect();
    const fetcher = new KafkajsFetcher(kafka, "with-raft-entry");
    await fetcher.connect();
    const received = await fetcher.consume(2);
    await fetcher.disconnect();
    // The injected batch lies beyond the commit index Raft recorded at shutdown, so the restarted leader
    // commits it with its own no-op at offset 2: the consumer steps over two control batches.
    expect(received.map((message) => [message.offset, message.value?.toString()])).toEqual([
      ["0", "before"],
      ["3", "after"],
    ]);
    expect(fetcher.positions.get(0)).toBe(4n);
  });
});
