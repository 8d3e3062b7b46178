import {
  ApiKey,
  CompressionType,
  CRC_POSITION,
  decodeRecordBatch,
  ErrorCode,
  readRecordBatchHeader,
  sliceBatches,
  TimestampType,
} from "@raftka/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  batch,
  createTopic,
  fetchRequest,
  produceRequest,
  startTestBroker,
  type TestBroker,
} from "./helpers.js";

let node: TestBroker;

beforeAll(async () => {
  node = await startTestBroker({ "message.max.bytes": 4096 });
});
afterAll(async () => {
  await node.cleanup();
});

async function produce(topic: string, records: Buffer | null, version = 7, partition = 0) {
  const connection = await node.connect();
  const response = await connection.send(ApiKey.Produce, version, produceRequest(topic, partition, records));
  return response.responses[0]!.partitionResponses[0]!;
}

/** Bytes the broker has read from its log files for Fetch (raftka_log_read_bytes_total, every path). */
async function logReadBytes(): Promise<number> {
  const metric = await node.metrics.registry.getSingleMetric("raftka_log_read_bytes_total")?.get();
  return (metric?.values ?? []).reduce((sum, sample) => sum + sample.value, 0);
}

async function fetchValues(topic: string, offset = 0n, partition = 0) {
  const connection = await node.connect();
  const response = await connection.send(ApiKey.Fetch, 11, fetchRequest([{ topic, partition, offset }]));
  const data = response.responses[0]!.partitions[0]!;
  const values = sliceBatches(data.records ?? Buffer.alloc(0)).batches.flatMap((entry) =>
    decodeRecordBatch(entry.bytes).records.map((record) => record.value?.toString() ?? null),
  );
  return { data, values };
}

describe("Produce", () => {
  it("refuses records it cannot store with Kafka's error codes and keeps the log intact", async () => {
    const connection = await node.connect();
    await createTopic(connection, "checked");
    const corrupt = batch(["x"]);
    corrupt.writeUInt32BE((corrupt.readUInt32BE(CRC_POSITION) + 1) >>> 0, CRC_POSITION);
    expect(await produce("checked", corrupt)).toMatchObject({ errorCode: ErrorCode.CORRUPT_MESSAGE });
    expect(await produce("checked", batch(["y".repeat(5000)]))).toMatchObject({
      errorCode: ErrorCode.MESSAGE_TOO_LARGE,
    });
    expect(await produce("checked", batch(["z"], { isControl: true }))).toMatchObject({
      errorCode: ErrorCode.INVALID_RECORD,
    });
    expect(await produce("checked", Buffer.concat([batch(["a"]), batch(["b"])]))).toMatchObject({
      errorCode: ErrorCode.INVALID_RECORD,
    });
    expect(await produce("checked", batch(["a"]).subarray(0, 40))).toMatchObject({
      errorCode: ErrorCode.CORRUPT_MESSAGE,
    });
    // Not the retriable CORRUPT_MESSAGE, which a client would resend forever: Kafka's INVALID_RECORD.
    for (const nothing of [Buffer.alloc(0), null]) {
      expect(await produce("checked", nothing, 8)).toMatchObject({
        errorCode: ErrorCode.INVALID_RECORD,
        errorMessage: expect.stringMatching(/at least one record batch per partition/),
      });
    }
    expect(await produce("no-such-topic", batch(["a"]))).toMatchObject({
      errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    });
    expect(await produce("checked", batch(["a"]), 7, 5)).toMatchObject({
      errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    });
    expect(await produce("checked", batch(["zstd"], { compression: CompressionType.Zstd }), 6)).toMatchObject(
      {
        errorCode: ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
      },
    );
    expect(await produce("checked", batch(["ok"]))).toMatchObject({
      errorCode: ErrorCode.NONE,
      baseOffset: 0n,
    });
    expect((await fetchValues("checked")).values).toEqual(["ok"]);
  });

  it("converts a legacy magic 1 message set sent with Produce v2 and refuses one sent with v3", async () => {
    const connection = await node.connect();
    await createTopic(connection, "legacy");
    const legacy = legacyMessage("old-format", 1_700_000_000_000n);
    expect(await produce("legacy", legacy, 2)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
    expect(await produce("legacy", legacy, 3)).toMatchObject({ errorCode: ErrorCode.INVALID_RECORD });
    const { values } = await fetchValues("legacy");
    expect(values).toEqual(["old-format"]);
  });

  it("converts a legacy magic 0 message set sent with Produce v0 or v1 into one v2 batch of its records", async () => {
    const connection = await node.connect();
    await createTopic(connection, "legacy-v0");
    // Two messages in one set, as a pre-0.10 client batches them; the second has no key.
    const set = Buffer.concat([
      legacyMessage("zero", null, { key: "k0" }),
      legacyMessage("one", null, { offset: 1n }),
    ]);
    expect(await produce("legacy-v0", set, 0)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
    expect(await produce("legacy-v0", legacyMessage("two", null, { key: "k2" }), 1)).toMatchObject({
      errorCode: ErrorCode.NONE,
      baseOffset: 2n,
    });
    // Magic 0 is as much a legacy format as magic 1: Produce v3+ carries v2 batches only.
    expect(await produce("legacy-v0", set, 3)).toMatchObject({ errorCode: ErrorCode.INVALID_RECORD });
    const { data } = await fetchValues("legacy-v0");
    // Stored as v2 like everything else, so a v4+ fetcher reads one format: one batch per request.
    const stored = sliceBatches(data.records!).batches;
    expect(stored.map((entry) => entry.magic)).toEqual([2, 2]);
    const records = stored.flatMap((entry) => decodeRecordBatch(entry.bytes).records);
    expect(
      records.map((record) => [
        record.offset,
        record.key?.toString() ?? null,
        record.value?.toString() ?? null,
        record.timestamp,
      ]),
    ).toEqual([
      // Magic 0 has no timestamp: Kafka's NO_TIMESTAMP (-1), not the append time.
      [0n, "k0", "zero", -1n],
      [1n, null, "one", -1n],
      [2n, "k2", "two", -1n],
    ]);
  });

  it("stamps LogAppendTime and recompresses for topics that ask for it", async () => {
    const connection = await node.connect();
    await createTopic(connection, "append-time", 1, { "message.timestamp.type": "LogAppendTime" });
    const response = await produce("append-time", batch(["t"]));
    expect(response.logAppendTimeMs).toBeGreaterThan(0n);
    const { data } = await fetchValues("append-time");
    const stored = decodeRecordBatch(data.records!);
    expect(stored.header.timestampType).toBe(TimestampType.LogAppendTime);
    expect(stored.header.maxTimestamp).toBe(response.logAppendTimeMs);

    await createTopic(connection, "gzipped", 1, { "compression.type": "gzip" });
    await produce("gzipped", batch(["a", "b", "c"]));
    const gz = await fetchValues("gzipped");
    expect(readRecordBatchHeader(gz.data.records!).compression).toBe(CompressionType.Gzip);
    expect(gz.values).toEqual(["a", "b", "c"]);

    // A batch already in the topic's codec is stored byte for byte as the client sent it.
    await createTopic(connection, "producer-codec", 1, { "compression.type": "producer" });
    const snappy = batch(["s"], { compression: CompressionType.Snappy });
    await produce("producer-codec", Buffer.from(snappy));
    const kept = (await fetchValues("producer-codec")).data.records!;
    expect(kept.subarray(CRC_POSITION)).toEqual(snappy.subarray(CRC_POSITION));
  });

  it("answers RECORD_LIST_TOO_LARGE, as Kafka, for a batch larger than the topic's segment.bytes", async () => {
    const connection = await node.connect();
    await createTopic(connection, "small-segments", 1, { "segment.bytes": "1000" });
    const refused = await produce("small-segments", batch(["z".repeat(1_500)]), 9);
    expect(refused.errorCode).toBe(ErrorCode.RECORD_LIST_TOO_LARGE);
    expect(refused.errorMessage).toMatch(/larger than segment\.bytes \(1000\)/);
    expect(await produce("small-segments", batch(["z".repeat(500)]))).toMatchObject({
      errorCode: ErrorCode.NONE,
    });
  });

  it("holds max.message.bytes against the batch as sent and as stored, whatever the topic's codec", async () => {
    const connection = await node.connect();
    await createTopic(connection, "gzip-limit", 1, {
      "compression.type": "gzip",
      "max.message.bytes": "2000",
    });
    // 3,000 bytes of one letter: over the limit as sent, far under it once gzipped.
    const sentTooLarge = await produce("gzip-limit", batch(["x".repeat(3000)]));
    expect(sentTooLarge.errorCode).toBe(ErrorCode.MESSAGE_TOO_LARGE);
    // And a small gzip batch that the topic would store larger (uncompressed) is judged as stored.
    await createTopic(connection, "plain-limit", 1, {
      "compression.type": "uncompressed",
      "max.message.bytes": "2000",
    });
    const storedTooLarge = await produce(
      "plain-limit",
      batch(["y".repeat(3000)], { compression: CompressionType.Gzip }),
    );
    expect(storedTooLarge.errorCode).toBe(ErrorCode.MESSAGE_TOO_LARGE);
    expect((await fetchValues("gzip-limit")).values).toEqual([]);
    expect((await fetchValues("plain-limit")).values).toEqual([]);
    expect(await produce("gzip-limit", batch(["x".repeat(1500)]))).toMatchObject({
      errorCode: ErrorCode.NONE,
    });
  });
});

describe("Fetch", () => {
  it("parks a fetch at the end of the log until an append commits, then returns the new record", async () => {
    const connection = await node.connect();
    await createTopic(connection, "long-poll");
    const parked = connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([{ topic: "long-poll", partition: 0, offset: 0n }], { maxWaitMs: 10_000, minBytes: 1 }),
    );
    // Nothing is readable yet, so only the append below can complete the fetch with data.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(node.broker.longPoll.parkedCount).toBe(1);
    await produce("long-poll", batch(["woke-up"]));
    const response = await parked;
    const records = response.responses[0]!.partitions[0]!.records!;
    expect(decodeRecordBatch(records).records[0]!.value!.toString()).toBe("woke-up");
  });

  it("keeps a fetch parked until appends bring min.bytes, then answers with all of them before max.wait.ms", async () => {
    const connection = await node.connect();
    await createTopic(connection, "min-bytes");
    const small = batch(["small"]);
    const large = batch(["large-".padEnd(1000, "m")]);
    // More than the first append alone, no more than both together.
    const minBytes = small.length + 100;
    expect(small.length + large.length).toBeGreaterThanOrEqual(minBytes);
    const startedAt = performance.now();
    let answered = false;
    const parked = connection
      .send(
        ApiKey.Fetch,
        11,
        fetchRequest([{ topic: "min-bytes", partition: 0, offset: 0n }], { maxWaitMs: 10_000, minBytes }),
      )
      .finally(() => {
        answered = true;
      });
    while (node.broker.longPoll.parkedCount === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    // acks=all: the append has committed (and woken the fetch, were it enough) when Produce answers.
    expect(await produce("min-bytes", small)).toMatchObject({ errorCode: ErrorCode.NONE });
    // Room for a premature answer to arrive; a fetch answered on any append would be here by now.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(answered).toBe(false);
    expect(node.broker.longPoll.parkedCount).toBe(1);
    expect(await produce("min-bytes", large)).toMatchObject({ errorCode: ErrorCode.NONE });
    const response = await parked;
    // Well before max.wait.ms: the second append woke it, not the timer.
    expect(performance.now() - startedAt).toBeLessThan(5_000);
    const records = sliceBatches(response.responses[0]!.partitions[0]!.records!).batches.flatMap((entry) =>
      decodeRecordBatch(entry.bytes).records.map((record) => record.value!.toString()),
    );
    expect(records).toEqual(["small", "large-".padEnd(1000, "m")]);
  });

  it("answers a fetch parked on a partition at once when its topic is deleted, leaving others parked", async () => {
    const connection = await node.connect();
    await createTopic(connection, "deleted-while-parked");
    await createTopic(connection, "kept-while-parked");
    await produce("deleted-while-parked", batch(["before"]));
    // A max.wait.ms far beyond the test's timeout: only the deletion can answer this fetch in time.
    const wait = { maxWaitMs: 600_000, minBytes: 1 };
    const parked = connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([{ topic: "deleted-while-parked", partition: 0, offset: 1n }], wait),
    );
    const other = await node.connect();
    const bystander = other
      .send(ApiKey.Fetch, 11, fetchRequest([{ topic: "kept-while-parked", partition: 0, offset: 0n }], wait))
      .catch(() => "closed");
    while (node.broker.longPoll.parkedCount < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    const admin = await node.connect();
    const deleted = await admin.send(ApiKey.DeleteTopics, 6, {
      timeoutMs: 5000,
      topics: [{ name: "deleted-while-parked", topicId: "AAAAAAAAAAAAAAAAAAAAAA" }],
    });
    expect(deleted.responses[0]!.errorCode).toBe(ErrorCode.NONE);
    const response = await parked;
    expect(response.responses[0]!.partitions[0]).toMatchObject({
      errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    });
    expect(node.broker.longPoll.parkedCount).toBe(1);
    await other.close();
    expect(await bystander).toBe("closed");
  });

  it("answers an unsatisfied fetch with no data once max.wait.ms passes", async () => {
    const connection = await node.connect();
    await createTopic(connection, "quiet");
    const response = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([{ topic: "quiet", partition: 0, offset: 0n }], { maxWaitMs: 100, minBytes: 1 }),
    );
    expect(response.responses[0]!.partitions[0]).toMatchObject({ errorCode: 0, highWatermark: 0n });
    expect(response.responses[0]!.partitions[0]!.records!.length).toBe(0);
  });

  it("bounds responses by max.bytes but always returns one whole batch to the first partition", async () => {
    const connection = await node.connect();
    await createTopic(connection, "bounded", 2);
    for (let index = 0; index < 3; index++) {
      await produce("bounded", batch(["p0-".padEnd(1000, "x")]), 7, 0);
      await produce("bounded", batch(["p1-".padEnd(1000, "y")]), 7, 1);
    }
    const response = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest(
        [
          { topic: "bounded", partition: 0, offset: 0n, maxBytes: 10 },
          { topic: "bounded", partition: 1, offset: 0n, maxBytes: 1_000_000 },
        ],
        { maxBytes: 100 },
      ),
    );
    const [first, second] = response.responses[0]!.partitions;
    expect(sliceBatches(first!.records!).batches).toHaveLength(1);
    expect(second!.records!.length).toBe(0);
    expect(second!.highWatermark).toBe(3n);
  });

  it("returns the first batch of the first partition with data even when its partition limit is 0 (KIP-74)", async () => {
    const connection = await node.connect();
    await createTopic(connection, "zero-limit", 2);
    for (let index = 0; index < 2; index++) {
      await produce("zero-limit", batch([`p0-${index}`]), 7, 0);
      await produce("zero-limit", batch([`p1-${index}`]), 7, 1);
    }
    const response = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest(
        [
          { topic: "zero-limit", partition: 0, offset: 0n, maxBytes: 0 },
          { topic: "zero-limit", partition: 1, offset: 0n, maxBytes: 0 },
        ],
        // Without the batch, min.bytes is not met and the fetch would wait this out and return nothing.
        { maxWaitMs: 1000, minBytes: 1 },
      ),
    );
    const [first, second] = response.responses[0]!.partitions;
    expect(sliceBatches(first!.records!).batches).toHaveLength(1);
    // Only the first partition with data may exceed its limit, as in Kafka.
    expect(second).toMatchObject({ errorCode: 0, highWatermark: 2n });
    expect(second!.records!.length).toBe(0);
  });

  it("bounds the first partition by max.bytes too, however large its own limit", async () => {
    const connection = await node.connect();
    await createTopic(connection, "first-bounded", 1);
    const sizes: number[] = [];
    for (let index = 0; index < 6; index++) {
      const bytes = batch([`r${index}-`.padEnd(1000, "q")]);
      sizes.push(bytes.length);
      await produce("first-bounded", bytes);
    }
    const fetchWith = async (maxBytes: number) => {
      const response = await connection.send(
        ApiKey.Fetch,
        11,
        fetchRequest([{ topic: "first-bounded", partition: 0, offset: 0n, maxBytes: 0x7fffffff }], {
          maxBytes,
        }),
      );
      return sliceBatches(response.responses[0]!.partitions[0]!.records!).batches.length;
    };
    expect(await fetchWith(sizes[0]! + sizes[1]! + 10)).toBe(2);
    // Less than one batch: still the first whole batch, so a consumer always makes progress.
    expect(await fetchWith(10)).toBe(1);
    expect(await fetchWith(50 * 1024 * 1024)).toBe(6);
  });

  it("fills max.bytes across partitions in request order with whole batches", async () => {
    const connection = await node.connect();
    await createTopic(connection, "budgeted", 4);
    const sizes: number[][] = [[], [], [], []];
    for (let round = 0; round < 3; round++) {
      for (let partition = 0; partition < 4; partition++) {
        const bytes = batch([`p${partition}-${round}-`.padEnd(400, "z")]);
        sizes[partition]!.push(bytes.length);
        await produce("budgeted", bytes, 7, partition);
      }
    }
    // Partition 0 asks for 10 bytes and gets its first batch anyway; the others ask for two batches each.
    // Their reads start before partition 0's answer is known, but the last one's limit at its turn is
    // what the budget has left: one batch.
    const size = sizes[0]![0]!;
    const partitionMaxBytes = [10, 2 * size, 2 * size, 2 * size];
    const maxBytes = 10 + 6 * size;
    const response = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest(
        partitionMaxBytes.map((limit, partition) => ({
          topic: "budgeted",
          partition,
          offset: 0n,
          maxBytes: limit,
        })),
        { maxBytes },
      ),
    );
    const batches = response.responses[0]!.partitions.map((data) => sliceBatches(data.records!).batches);
    expect(new Set(sizes.flat())).toEqual(new Set([size]));
    expect(batches.map((entries) => entries.length)).toEqual([1, 2, 2, 1]);
    for (const [partition, entries] of batches.entries()) {
      const values = entries.map((entry) => decodeRecordBatch(entry.bytes).records[0]!.value!.toString());
      expect(values.map((value) => value.slice(0, 5))).toEqual(
        entries.map((_, round) => `p${partition}-${round}-`),
      );
    }
  });

  it("reads no batch that max.bytes has no room for: later partitions' large batches stay unread", async () => {
    const connection = await node.connect();
    const partitions = 40;
    await createTopic(connection, "wide", partitions, { "max.message.bytes": "300000" });
    const sizes: number[] = [];
    await Promise.all(
      Array.from({ length: partitions }, async (_, partition) => {
        const bytes = batch([`p${partition}-`.padEnd(200_000, String.fromCharCode(97 + (partition % 26)))]);
        sizes[partition] = bytes.length;
        expect(await produce("wide", bytes, 7, partition)).toMatchObject({ errorCode: ErrorCode.NONE });
      }),
    );
    const readBefore = await logReadBytes();
    // Room for the first partition's batch and half another: every later batch is larger than what is left.
    const maxBytes = 300_000;
    const response = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest(
        Array.from({ length: partitions }, (_, partition) => ({
          topic: "wide",
          partition,
          offset: 0n,
          maxBytes: 1024 * 1024,
        })),
        { maxBytes },
      ),
    );
    const read = (await logReadBytes()) - readBefore;
    const answered = response.responses[0]!.partitions;
    expect(answered).toHaveLength(partitions);
    expect(answered[0]!.records!.length).toBe(sizes[0]);
    for (const data of answered.slice(1)) {
      expect(data).toMatchObject({ errorCode: ErrorCode.NONE, highWatermark: 1n });
      expect(data.records!.length).toBe(0);
    }
    // The first batch, one read of what was left (and index.interval.bytes) before the next batch
    // turned out larger, and then a batch header each: 12 MB were read (and dropped) before, a whole
    // batch per partition.
    expect(read).toBeGreaterThanOrEqual(sizes[0]!);
    expect(read).toBeLessThanOrEqual(maxBytes + 4096 + partitions * 61);
  });

  it("reads later partitions' batches larger than their own limit no further than their headers", async () => {
    const connection = await node.connect();
    const partitions = 60;
    await createTopic(connection, "over-limit", partitions, { "max.message.bytes": "300000" });
    const sizes: number[] = [];
    await Promise.all(
      Array.from({ length: partitions }, async (_, partition) => {
        const bytes = batch([`p${partition}-`.padEnd(20_000, "o")]);
        sizes[partition] = bytes.length;
        expect(await produce("over-limit", bytes, 7, partition)).toMatchObject({ errorCode: ErrorCode.NONE });
      }),
    );
    const readBefore = await logReadBytes();
    const partitionMaxBytes = 10_000;
    const response = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest(
        Array.from({ length: partitions }, (_, partition) => ({
          topic: "over-limit",
          partition,
          offset: 0n,
          maxBytes: partitionMaxBytes,
        })),
      ),
    );
    const read = (await logReadBytes()) - readBefore;
    const answered = response.responses[0]!.partitions;
    // KIP-74: the first partition gets its batch beyond its limit, the others nothing.
    expect(answered.map((data) => data.records!.length)).toEqual(
      answered.map((_, index) => (index === 0 ? sizes[0] : 0)),
    );
    // The first batch, the reads started ahead before the first batch too large turned up (up to eight,
    // each of the partition limit and the walk from its index entry), then a header each: 0.85 MB before.
    expect(read).toBeLessThanOrEqual(sizes[0]! + 8 * (partitionMaxBytes + 4096) + partitions * 61);
  });

  it("fetches a partition listed many times in one Fetch once, as its last listing asks (as Kafka)", async () => {
    const connection = await node.connect();
    await createTopic(connection, "listed-twice", 1, { "max.message.bytes": "300000" });
    const sizes: number[] = [];
    for (const value of ["first", "second"]) {
      const bytes = batch([`${value}-`.padEnd(100_000, "d")]);
      sizes.push(bytes.length);
      await produce("listed-twice", bytes);
    }
    const readBefore = await logReadBytes();
    const listings = Array.from({ length: 2000 }, (_, index) => ({
      topic: "listed-twice",
      partition: 0,
      offset: index === 1999 ? 1n : 0n,
    }));
    const response = await connection.send(ApiKey.Fetch, 11, fetchRequest(listings));
    const read = (await logReadBytes()) - readBefore;
    expect(response.responses).toHaveLength(1);
    const answered = response.responses[0]!.partitions;
    expect(answered).toHaveLength(1);
    const values = sliceBatches(answered[0]!.records!).batches.map(
      (entry) => decodeRecordBatch(entry.bytes).records[0]!.value!.toString().split("-")[0],
    );
    expect(values).toEqual(["second"]);
    expect(read).toBeLessThan(2 * (sizes[0]! + sizes[1]!));
  });

  it("refuses acks=all with NOT_ENOUGH_REPLICAS while fewer replicas than min.insync.replicas are in sync", async () => {
    const connection = await node.connect();
    await createTopic(connection, "min-isr", 1, { "min.insync.replicas": "2" });
    const send = async (acks: number) =>
      (await connection.send(ApiKey.Produce, 8, produceRequest("min-isr", 0, batch(["r"]), acks)))
        .responses[0]!.partitionResponses[0]!;
    const refused = await send(-1);
    expect(refused.errorCode).toBe(ErrorCode.NOT_ENOUGH_REPLICAS);
    expect(refused.errorMessage).toMatch(/1 in-sync replica.*min\.insync\.replicas=2/);
    // Nothing was appended; acks=1 does not ask for replicas and is taken.
    expect(await send(1)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
    const altered = await connection.send(ApiKey.IncrementalAlterConfigs, 1, {
      validateOnly: false,
      resources: [
        {
          resourceType: 2,
          resourceName: "min-isr",
          configs: [{ name: "min.insync.replicas", configOperation: 0, value: "1" }],
        },
      ],
    });
    expect(altered.responses[0]!.errorCode).toBe(ErrorCode.NONE);
    expect(await send(-1)).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 1n });
  });

  it("answers OFFSET_OUT_OF_RANGE beyond the log end and fences stale leader epochs", async () => {
    const connection = await node.connect();
    await createTopic(connection, "ranges");
    await produce("ranges", batch(["one"]));
    const beyond = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([{ topic: "ranges", partition: 0, offset: 5n }]),
    );
    expect(beyond.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.OFFSET_OUT_OF_RANGE);
    // An empty record set, as Kafka sends with an error: librdkafka cannot parse a null one (size -1).
    expect(beyond.responses[0]!.partitions[0]!.records).toEqual(Buffer.alloc(0));
    const request = fetchRequest([{ topic: "ranges", partition: 0, offset: 0n }]);
    request.topics[0]!.partitions[0]!.currentLeaderEpoch = 3;
    const future = await connection.send(ApiKey.Fetch, 11, request);
    expect(future.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.UNKNOWN_LEADER_EPOCH);
    expect(future.responses[0]!.partitions[0]!.records).toEqual(Buffer.alloc(0));
  });

  it("serves topic ids from Fetch v13", async () => {
    const connection = await node.connect();
    const created = await createTopic(connection, "by-id");
    await produce("by-id", batch(["id"]));
    const request = fetchRequest([{ topic: "by-id", partition: 0, offset: 0n }]);
    request.topics[0] = { ...request.topics[0]!, topicId: created.topicId! };
    const response = await connection.send(ApiKey.Fetch, 13, request);
    expect(response.responses[0]!.topicId).toBe(created.topicId);
    expect(
      decodeRecordBatch(response.responses[0]!.partitions[0]!.records!).records[0]!.value!.toString(),
    ).toBe("id");
    const unknown = fetchRequest([{ topic: "by-id", partition: 0, offset: 0n }]);
    unknown.topics[0] = { ...unknown.topics[0]!, topicId: "AAAAAAAAAAAAAAAAAAAAAQ" };
    const missing = await connection.send(ApiKey.Fetch, 17, unknown);
    expect(missing.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_ID);
    expect(missing.responses[0]!.partitions[0]!.records).toEqual(Buffer.alloc(0));
  });
});

describe("incremental fetch sessions (KIP-227)", () => {
  it("opens a session, answers only partitions with news, and refuses a wrong epoch or unknown session", async () => {
    const connection = await node.connect();
    await createTopic(connection, "session", 2);
    await produce("session", batch(["first"]), 7, 0);
    const opened = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest(
        [
          { topic: "session", partition: 0, offset: 0n },
          { topic: "session", partition: 1, offset: 0n },
        ],
        { sessionId: 0, sessionEpoch: 0 },
      ),
    );
    expect(opened.sessionId).not.toBe(0);
    expect(opened.responses[0]!.partitions).toHaveLength(2);

    // Epoch 1: partition 0 moved on; nothing changed anywhere, so nothing is answered.
    const quiet = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([{ topic: "session", partition: 0, offset: 1n }], {
        sessionId: opened.sessionId,
        sessionEpoch: 1,
      }),
    );
    expect(quiet.errorCode).toBe(ErrorCode.NONE);
    expect(quiet.responses).toEqual([]);

    await produce("session", batch(["second"]), 7, 1);
    const news = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([], { sessionId: opened.sessionId, sessionEpoch: 2 }),
    );
    expect(news.responses[0]!.partitions.map((partition) => partition.partitionIndex)).toEqual([1]);
    expect(decodeRecordBatch(news.responses[0]!.partitions[0]!.records!).records[0]!.value!.toString()).toBe(
      "second",
    );

    const stale = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([], { sessionId: opened.sessionId, sessionEpoch: 2 }),
    );
    expect(stale.errorCode).toBe(ErrorCode.INVALID_FETCH_SESSION_EPOCH);
    const unknown = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([], { sessionId: 12345, sessionEpoch: 1 }),
    );
    expect(unknown.errorCode).toBe(ErrorCode.FETCH_SESSION_ID_NOT_FOUND);

    // Closing the session (epoch -1) makes it unknown.
    await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([], { sessionId: opened.sessionId, sessionEpoch: -1 }),
    );
    const closed = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([], { sessionId: opened.sessionId, sessionEpoch: 3 }),
    );
    expect(closed.errorCode).toBe(ErrorCode.FETCH_SESSION_ID_NOT_FOUND);
  });
});

/**
 * A legacy message (offset, size, crc, magic, attributes, [timestamp], key, value) as pre-0.11 clients
 * send: magic 1 with a timestamp, or magic 0 (0.8-0.9 clients), which has no timestamp field, without.
 */
function legacyMessage(
  value: string,
  timestamp: bigint | null,
  { key = null, offset = 0n }: { key?: string | null; offset?: bigint } = {},
): Buffer {
  const valueBytes = Buffer.from(value);
  const keyBytes = key === null ? null : Buffer.from(key);
  const timestampBytes = timestamp === null ? 0 : 8;
  const body = Buffer.alloc(1 + 1 + timestampBytes + 4 + (keyBytes?.length ?? 0) + 4 + valueBytes.length);
  let position = 0;
  body.writeInt8(timestamp === null ? 0 : 1, position++);
  body.writeInt8(0, position++);
  if (timestamp !== null) {
    body.writeBigInt64BE(timestamp, position);
    position += 8;
  }
  body.writeInt32BE(keyBytes?.length ?? -1, position);
  position += 4;
  if (keyBytes !== null) position += keyBytes.copy(body, position);
  body.writeInt32BE(valueBytes.length, position);
  position += 4;
  valueBytes.copy(body, position);
  const message = Buffer.alloc(12 + 4 + body.length);
  message.writeBigInt64BE(offset, 0);
  message.writeInt32BE(4 + body.length, 8);
  message.writeUInt32BE(crc32(body), 12);
  body.copy(message, 16);
  return message;
}

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
