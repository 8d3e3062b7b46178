import { loadConfig } from "@raftka/monitoring";
import {
  ApiKey,
  CompressionType,
  compress,
  computeBatchCrc,
  decodeRecordBatch,
  ErrorCode,
  encodeRecordBatch,
  LAST_OFFSET_DELTA_POSITION,
  RECORD_COUNT_POSITION,
} from "@raftka/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareRecords } from "../src/apis/produce/batch-validation.js";
import { resolveTopicSettings, type TopicSettings } from "../src/partitions/topic-settings.js";
import { createTopic, produceRequest, startTestBroker, type TestBroker } from "./helpers.js";

// A few KB of zstd can carry millions of 7-byte records. Reading them must not hold them all at once,
// stall the event loop for long, or (for a stored batch) crash ListOffsets on every restart.

const TIMESTAMP = 1_700_000_000_000;
const MINIMAL_RECORD = Buffer.from([0x0c, 0, 0, 0, 1, 1, 0]); // null key and value, deltas 0

/** A v2 batch with `section` (uncompressed records) compressed as `compression`, claiming `count` records. */
function batchOf(section: Buffer, count: number, compression: CompressionType): Buffer {
  const head = Buffer.from(
    encodeRecordBatch({ records: [{ value: "v", timestamp: TIMESTAMP }] }).subarray(0, 61),
  );
  const batch = Buffer.concat([head, compress(compression, section)]);
  batch.writeInt32BE(batch.length - 12, 8);
  batch.writeInt16BE(compression, 21);
  batch.writeInt32BE(count - 1, LAST_OFFSET_DELTA_POSITION);
  batch.writeInt32BE(count, RECORD_COUNT_POSITION);
  batch.writeUInt32BE(computeBatchCrc(batch), 17);
  return batch;
}

function minimalRecords(count: number): Buffer {
  const section = Buffer.alloc(MINIMAL_RECORD.length * count);
  for (let i = 0; i < count; i++) MINIMAL_RECORD.copy(section, i * MINIMAL_RECORD.length);
  return section;
}

const defaults: TopicSettings = resolveTopicSettings(loadConfig({ argv: [] }), {});
const prepare = (batch: Buffer, settings: TopicSettings) =>
  prepareRecords(batch, 9, settings, TIMESTAMP, { topic: "t", partition: 0 });

describe("prepareRecords with batches of millions of records", () => {
  const million = batchOf(minimalRecords(1_000_000), 1_000_000, CompressionType.Zstd);

  it("recompresses for the topic's codec as bytes, records unchanged", () => {
    const prepared = prepare(million, { ...defaults, compressionType: "gzip" });
    expect(prepared).toMatchObject({ ok: true, recordCount: 1_000_000 });
    if (!prepared.ok) return;
    const stored = decodeRecordBatch(prepared.records);
    expect(stored.header.compression).toBe(CompressionType.Gzip);
    expect(stored.records).toHaveLength(1_000_000);
    expect(stored.records[999_999]).toMatchObject({ offsetDelta: 0, key: null, value: null });
  });

  it("lists at most 1000 record errors on a compacted topic, with the exact count in the message", () => {
    const prepared = prepare(million, { ...defaults, cleanupPolicy: ["compact"] });
    expect(prepared).toMatchObject({ ok: false, errorCode: ErrorCode.INVALID_RECORD });
    if (prepared.ok) return;
    expect(prepared.recordErrors).toHaveLength(1000);
    expect(prepared.message).toMatch(/due to 1000000 record errors in total/);
  });

  it("refuses a batch that decompresses past 32x max.message.bytes when it must be read", () => {
    // max.message.bytes of 1 MiB: the limit is 32 MiB, and a ~6 KB batch of 40 MiB of records is refused
    // as CORRUPT_MESSAGE on a topic that converts codecs (the million-record batch above, 7 MiB, passed).
    const settings: TopicSettings = { ...defaults, compressionType: "gzip", maxMessageBytes: 1024 * 1024 };
    const count = Math.ceil((40 * 1024 * 1024) / 7);
    const large = batchOf(minimalRecords(count), count, CompressionType.Zstd);
    expect(large.length).toBeLessThan(settings.maxMessageBytes);
    expect(prepare(large, settings)).toMatchObject({ ok: false, errorCode: ErrorCode.CORRUPT_MESSAGE });
    // The default path does not read it, so no limit applies.
    expect(prepare(large, defaults)).toMatchObject({ ok: true });
  });
});

describe("ListOffsets on batches of millions of records", () => {
  let node: TestBroker;
  beforeAll(async () => {
    node = await startTestBroker();
  });
  afterAll(async () => {
    await node.cleanup();
  });

  async function stored(name: string, batch: Buffer) {
    const connection = await node.connect();
    expect((await createTopic(connection, name, 1, { "retention.ms": "-1" })).errorCode).toBe(0);
    const produced = await connection.send(ApiKey.Produce, 9, produceRequest(name, 0, batch));
    expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
    return async (timestamp: bigint) => {
      const response = await connection.send(ApiKey.ListOffsets, 7, {
        replicaId: -1,
        isolationLevel: 0,
        topics: [
          { name, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 }] },
        ],
      });
      return response.topics[0]!.partitions[0]!;
    };
  }

  it("finds the first record of a 4M-record zstd batch without reading the rest", async () => {
    const batch = batchOf(minimalRecords(4_000_000), 4_000_000, CompressionType.Zstd);
    expect(batch.length).toBeLessThan(8192);
    const ask = await stored("millions", batch);
    const started = Date.now();
    expect(await ask(0n)).toMatchObject({
      errorCode: ErrorCode.NONE,
      offset: 0n,
      timestamp: BigInt(TIMESTAMP),
    });
    expect(await ask(-3n)).toMatchObject({
      errorCode: ErrorCode.NONE,
      offset: 0n,
      timestamp: BigInt(TIMESTAMP),
    });
    // Decoding all 4M records as objects took several seconds and gigabytes of heap.
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it("answers from the records it reads, even when later ones in the stored batch are malformed", async () => {
    // Stored as sent: the default produce path never opens a batch. Only the first record is sound.
    const section = Buffer.concat([MINIMAL_RECORD, Buffer.alloc(7 * 9, 0x7e)]);
    const ask = await stored("bad-tail", batchOf(section, 10, CompressionType.Gzip));
    expect(await ask(0n)).toMatchObject({ errorCode: ErrorCode.NONE, offset: 0n });
  });

  it("answers CORRUPT_MESSAGE for a stored batch it cannot read within the limits, and keeps serving", async () => {
    const section = minimalRecords(10);
    const ask = await stored("overcounted", batchOf(section, 11, CompressionType.Zstd));
    expect(await ask(0n)).toMatchObject({ errorCode: ErrorCode.CORRUPT_MESSAGE });
    expect(await ask(-1n)).toMatchObject({ errorCode: ErrorCode.NONE, offset: 11n });
  });
});
