import { loadConfig } from "@raftka/monitoring";
import {
  ApiKey,
  CompressionType,
  CRC_POSITION,
  computeBatchCrc,
  decodeRecordBatch,
  ErrorCode,
  encodeRecordBatch,
  LAST_OFFSET_DELTA_POSITION,
  MAGIC_POSITION,
  RECORD_BATCH_HEADER_BYTES,
  RECORD_COUNT_POSITION,
  type RecordInput,
  sliceBatches,
} from "@raftka/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareRecords } from "../src/apis/produce/batch-validation.js";
import { resolveTopicSettings, type TopicSettings } from "../src/partitions/topic-settings.js";
import { createTopic, fetchRequest, startTestBroker, type TestBroker } from "./helpers.js";

// Kafka's per-record checks (LogValidator.validateKey / validateTimestamp): keys on compacted topics and
// every record's timestamp against message.timestamp.difference.max.ms, whether the batch is compressed.

const NOW = 1_700_000_000_000;
const HOUR = 3_600_000;
const TOPIC_PARTITION = { topic: "t", partition: 0 };

// The settings a topic gets with nothing configured, resolved as the broker resolves them.
const defaults: TopicSettings = resolveTopicSettings(loadConfig({ argv: [] }), {});
const compact: TopicSettings = { ...defaults, cleanupPolicy: ["compact"] };
const compactDelete: TopicSettings = { ...defaults, cleanupPolicy: ["compact", "delete"] };
const bounded: TopicSettings = { ...defaults, timestampDifferenceMaxMs: 60_000 };

type Spec = { key?: string | null; timestamp?: number };

function records(specs: readonly Spec[], compression: CompressionType = CompressionType.None): Buffer {
  const inputs: RecordInput[] = specs.map((spec, index) => ({
    key: spec.key === undefined ? `k${index}` : spec.key,
    value: `v${index}`,
    timestamp: spec.timestamp ?? NOW,
  }));
  return encodeRecordBatch({ records: inputs, compression });
}

function prepare(batch: Buffer, settings: TopicSettings, version = 9) {
  return prepareRecords(batch, version, settings, NOW, TOPIC_PARTITION);
}

/** A batch whose records section is not records at all, with a valid CRC: only opening it can tell. */
function unreadable(compression: CompressionType): Buffer {
  const batch = records([{}], compression);
  batch.fill(0xff, RECORD_BATCH_HEADER_BYTES);
  batch.writeUInt32BE(computeBatchCrc(batch), CRC_POSITION);
  return batch;
}

const NO_KEY = "Compacted topic cannot accept message without key in topic partition t-0";

describe("prepareRecords: keys on compacted topics", () => {
  it.each([
    ["compact", compact],
    ["compact,delete", compactDelete],
  ])("refuses a keyless record on a %s topic with INVALID_RECORD and its batch index", (_name, settings) => {
    const prepared = prepare(records([{ key: null }]), settings);
    expect(prepared).toMatchObject({
      ok: false,
      errorCode: ErrorCode.INVALID_RECORD,
      recordErrors: [{ batchIndex: 0, batchIndexErrorMessage: NO_KEY }],
    });
    expect(!prepared.ok && prepared.message).toMatch(
      /^One or more records have been rejected due to 1 record errors in total.*batch index 0: Compacted topic cannot accept message without key/,
    );
  });

  it.each([
    ["uncompressed", CompressionType.None],
    ["gzip", CompressionType.Gzip],
    ["zstd", CompressionType.Zstd],
  ])("names every keyless record of a %s batch mixing keyed and keyless ones", (_name, codec) => {
    const batch = records([{}, { key: null }, {}, { key: null }], codec);
    expect(prepare(batch, compact)).toMatchObject({
      ok: false,
      errorCode: ErrorCode.INVALID_RECORD,
      recordErrors: [
        { batchIndex: 1, batchIndexErrorMessage: NO_KEY },
        { batchIndex: 3, batchIndexErrorMessage: NO_KEY },
      ],
    });
  });

  it("accepts keyed records, an empty key included, and stores the client's bytes as sent", () => {
    for (const codec of [CompressionType.None, CompressionType.Gzip]) {
      const batch = records([{}, { key: "" }, {}], codec);
      const prepared = prepare(batch, compactDelete);
      expect(prepared).toMatchObject({ ok: true, recordCount: 3 });
      expect(prepared.ok && prepared.records).toEqual(batch);
    }
  });

  it("leaves keyless records alone on delete topics", () => {
    expect(prepare(records([{ key: null }]), defaults)).toMatchObject({ ok: true });
  });

  it("checks keys before recompressing for the topic's compression.type, and recompresses keyed batches", () => {
    const gzipCompact: TopicSettings = { ...compact, compressionType: "gzip" };
    expect(prepare(records([{}, { key: null }]), gzipCompact)).toMatchObject({
      ok: false,
      errorCode: ErrorCode.INVALID_RECORD,
      recordErrors: [{ batchIndex: 1 }],
    });
    const prepared = prepare(records([{}, {}]), gzipCompact);
    expect(prepared.ok).toBe(true);
    if (prepared.ok) {
      expect(prepared.headers[0]!.compression).toBe(CompressionType.Gzip);
      expect(decodeRecordBatch(prepared.records).records.map((record) => record.key?.toString())).toEqual([
        "k0",
        "k1",
      ]);
    }
  });
});

describe("prepareRecords: message.timestamp.difference.max.ms, record by record", () => {
  it.each([
    ["uncompressed", CompressionType.None],
    ["gzip", CompressionType.Gzip],
    ["zstd", CompressionType.Zstd],
  ])("refuses a %s batch with one old record in the middle or at the end", (_name, codec) => {
    const old = NOW - 10 * HOUR;
    for (const [specs, index] of [
      [[{}, { timestamp: old }], 1],
      [[{}, { timestamp: old }, {}], 1],
      [[{ timestamp: old }], 0],
      [[{}, { timestamp: NOW + 10 * HOUR }, {}], 1],
    ] as const) {
      const prepared = prepare(records(specs, codec), bounded);
      expect(prepared).toMatchObject({ ok: false, errorCode: ErrorCode.INVALID_TIMESTAMP });
      if (prepared.ok) continue;
      expect(prepared.recordErrors).toEqual([
        {
          batchIndex: index,
          batchIndexErrorMessage: expect.stringMatching(
            new RegExp(
              `^Timestamp -?\\d+ of message with offset ${index} is out of range. The timestamp should be within \\[${NOW - 60_000}, ${NOW + 60_000}\\]$`,
            ),
          ),
        },
      ]);
      expect(prepared.message).toMatch(
        new RegExp(
          `^One or more records have been rejected due to invalid timestamp: the record at batch index ${index} .*message\\.timestamp\\.difference\\.max\\.ms \\(60000\\)`,
        ),
      );
    }
  });

  it("accepts a batch within the bound as sent, and records without a timestamp (-1)", () => {
    const batch = records(
      [{ timestamp: NOW - 59_000 }, {}, { timestamp: NOW + 59_000 }],
      CompressionType.Gzip,
    );
    const prepared = prepare(batch, bounded);
    expect(prepared).toMatchObject({ ok: true, recordCount: 3 });
    expect(prepared.ok && prepared.records).toEqual(batch);
    expect(prepare(records([{ timestamp: -1 }]), bounded)).toMatchObject({ ok: true });
  });

  it("does not check timestamps on a LogAppendTime topic, which replaces them", () => {
    const appendTime: TopicSettings = { ...bounded, timestampType: "LogAppendTime" };
    expect(prepare(records([{}, { timestamp: NOW - 10 * HOUR }, {}]), appendTime)).toMatchObject({
      ok: true,
    });
  });

  it("refuses a batch whose maxTimestamp header its records do not bear out", () => {
    const lying = encodeRecordBatch({
      records: [{ key: "k", value: "v", timestamp: NOW }],
      maxTimestamp: BigInt(NOW + 10 * HOUR),
    });
    expect(prepare(lying, bounded)).toMatchObject({ ok: false, errorCode: ErrorCode.INVALID_TIMESTAMP });
  });

  it("reports key and timestamp failures together, as INVALID_TIMESTAMP, as Kafka does", () => {
    const settings: TopicSettings = { ...bounded, cleanupPolicy: ["compact"] };
    const prepared = prepare(records([{ key: null }, { timestamp: NOW - 10 * HOUR }, {}]), settings);
    expect(prepared).toMatchObject({
      ok: false,
      errorCode: ErrorCode.INVALID_TIMESTAMP,
      recordErrors: [
        { batchIndex: 0, batchIndexErrorMessage: NO_KEY },
        { batchIndex: 1, batchIndexErrorMessage: expect.stringMatching(/^Timestamp /) },
      ],
    });
  });
});

describe("prepareRecords: the default path never opens a compressed batch", () => {
  it.each([
    ["gzip", CompressionType.Gzip],
    ["zstd", CompressionType.Zstd],
  ])(
    "passes an unreadable %s records section through untouched with the default settings",
    (_name, codec) => {
      // Proof that records are neither parsed nor decompressed: the same bytes fail once a check reads them.
      expect(defaults).toMatchObject({ cleanupPolicy: ["delete"], timestampType: "CreateTime" });
      const batch = unreadable(codec);
      expect(prepare(batch, defaults)).toMatchObject({ ok: true });
      expect(
        prepare(batch, { ...defaults, timestampType: "LogAppendTime", timestampDifferenceMaxMs: 1 }),
      ).toMatchObject({ ok: true });
      expect(prepare(batch, compact)).toMatchObject({ ok: false, errorCode: ErrorCode.CORRUPT_MESSAGE });
      expect(prepare(batch, bounded)).toMatchObject({ ok: false, errorCode: ErrorCode.CORRUPT_MESSAGE });
    },
  );

  it("refuses an oversized batch before decompressing it", () => {
    const settings: TopicSettings = { ...compact, maxMessageBytes: RECORD_BATCH_HEADER_BYTES };
    expect(prepare(unreadable(CompressionType.Gzip), settings)).toMatchObject({
      ok: false,
      errorCode: ErrorCode.MESSAGE_TOO_LARGE,
    });
  });
});

describe("Produce: per-record failures on the wire", () => {
  let node: TestBroker;

  beforeAll(async () => {
    node = await startTestBroker();
    const connection = await node.connect();
    await createTopic(connection, "keys-compact", 1, { "cleanup.policy": "compact" });
    await createTopic(connection, "keys-compact-delete", 1, { "cleanup.policy": "compact,delete" });
    await createTopic(connection, "ts-bounded", 1, { "message.timestamp.difference.max.ms": "60000" });
    await createTopic(connection, "bystander", 2);
  });
  afterAll(async () => {
    await node.cleanup();
  });

  const wireRecords = (specs: readonly Spec[], codec: CompressionType = CompressionType.None) => {
    const now = Date.now();
    return encodeRecordBatch({
      records: specs.map((spec, index) => ({
        key: spec.key === undefined ? `k${index}` : spec.key,
        value: `v${index}`,
        timestamp: spec.timestamp === undefined ? now : now + spec.timestamp,
      })),
      compression: codec,
    });
  };

  async function logValues(topic: string, partition = 0) {
    const connection = await node.connect();
    const response = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([{ topic, partition, offset: 0n }]),
    );
    const data = response.responses[0]!.partitions[0]!;
    expect(data.errorCode).toBe(ErrorCode.NONE);
    return sliceBatches(data.records ?? Buffer.alloc(0)).batches.flatMap((entry) =>
      decodeRecordBatch(entry.bytes).records.map((record) => record.value?.toString()),
    );
  }

  it("answers INVALID_RECORD with record_errors from v8, appends nothing, and leaves other partitions be", async () => {
    const connection = await node.connect();
    const response = await connection.send(ApiKey.Produce, 9, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 10_000,
      topicData: [
        {
          name: "keys-compact",
          partitionData: [{ index: 0, records: wireRecords([{}, { key: null }, {}]) }],
        },
        {
          name: "bystander",
          partitionData: [
            { index: 0, records: wireRecords([{ key: null }]) },
            { index: 1, records: wireRecords([{}]) },
          ],
        },
      ],
    });
    const [compacted, bystander] = response.responses;
    expect(compacted!.partitionResponses[0]).toMatchObject({
      errorCode: ErrorCode.INVALID_RECORD,
      baseOffset: -1n,
      recordErrors: [{ batchIndex: 1, batchIndexErrorMessage: expect.stringMatching(/keys-compact-0$/) }],
      errorMessage: expect.stringMatching(/^One or more records have been rejected/),
    });
    expect(bystander!.partitionResponses.map((partition) => partition.errorCode)).toEqual([
      ErrorCode.NONE,
      ErrorCode.NONE,
    ]);
    expect(await logValues("keys-compact")).toEqual([]);
    expect(await logValues("bystander", 0)).toEqual(["v0"]);

    // The connection stays open and the partition takes keyed records at offset 0.
    const keyed = await connection.send(ApiKey.Produce, 9, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 10_000,
      topicData: [{ name: "keys-compact", partitionData: [{ index: 0, records: wireRecords([{}, {}]) }] }],
    });
    expect(keyed.responses[0]!.partitionResponses[0]).toMatchObject({
      errorCode: ErrorCode.NONE,
      baseOffset: 0n,
    });
    expect(await logValues("keys-compact")).toEqual(["v0", "v1"]);
  });

  it("answers INVALID_RECORD to Produce v7, which has no record_errors, on a compact,delete topic", async () => {
    const connection = await node.connect();
    const response = await connection.send(ApiKey.Produce, 7, {
      transactionalId: null,
      acks: 1,
      timeoutMs: 10_000,
      topicData: [
        {
          name: "keys-compact-delete",
          partitionData: [{ index: 0, records: wireRecords([{ key: null }], CompressionType.Gzip) }],
        },
      ],
    });
    expect(response.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.INVALID_RECORD);
    expect(await logValues("keys-compact-delete")).toEqual([]);
  });

  it("answers INVALID_TIMESTAMP for an old record in the middle of a batch and appends nothing", async () => {
    const connection = await node.connect();
    for (const codec of [CompressionType.None, CompressionType.Zstd]) {
      const response = await connection.send(ApiKey.Produce, 9, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 10_000,
        topicData: [
          {
            name: "ts-bounded",
            partitionData: [{ index: 0, records: wireRecords([{}, { timestamp: -10 * HOUR }, {}], codec) }],
          },
        ],
      });
      expect(response.responses[0]!.partitionResponses[0]).toMatchObject({
        errorCode: ErrorCode.INVALID_TIMESTAMP,
        recordErrors: [{ batchIndex: 1, batchIndexErrorMessage: expect.stringMatching(/is out of range/) }],
        errorMessage: expect.stringMatching(
          /^One or more records have been rejected due to invalid timestamp/,
        ),
      });
    }
    expect(await logValues("ts-bounded")).toEqual([]);
  });

  it("appends a batch whose records are all within the bound", async () => {
    const connection = await node.connect();
    const batch = wireRecords([{ timestamp: -30_000 }, {}], CompressionType.Gzip);
    const response = await connection.send(ApiKey.Produce, 9, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 10_000,
      topicData: [{ name: "ts-bounded", partitionData: [{ index: 0, records: batch }] }],
    });
    expect(response.responses[0]!.partitionResponses[0]).toMatchObject({
      errorCode: ErrorCode.NONE,
      baseOffset: 0n,
    });
    expect(await logValues("ts-bounded")).toEqual(["v0", "v1"]);
  });
});

describe("prepareRecords: an uncompressed batch's records must add up", () => {
  const refusedAsInvalid = (batch: Buffer, message: RegExp) => {
    const prepared = prepare(batch, defaults);
    expect(prepared).toMatchObject({ ok: false, errorCode: ErrorCode.INVALID_RECORD });
    expect(!prepared.ok && prepared.message).toMatch(message);
  };
  const recrc = (batch: Buffer) => {
    batch.writeUInt32BE(computeBatchCrc(batch), CRC_POSITION);
    return batch;
  };

  it("accepts well-formed records, with keys, nulls and headers", () => {
    const batch = encodeRecordBatch({
      records: [
        { key: "k", value: "v", timestamp: NOW, headers: [{ key: "h", value: Buffer.from("x") }] },
        { key: null, value: null, timestamp: NOW },
        { key: Buffer.alloc(0), value: Buffer.alloc(300, 1), timestamp: NOW },
      ],
    });
    expect(prepare(batch, defaults)).toMatchObject({ ok: true });
  });

  it("refuses records section bytes that are not records, though their CRC is right", () => {
    refusedAsInvalid(
      unreadable(CompressionType.None),
      /record 0 at byte 61 of the batch has an invalid size/,
    );
  });

  it("refuses a record count above the records there, which would burn offsets for records that do not exist", () => {
    const batch = records([{}]);
    batch.writeInt32BE(2, LAST_OFFSET_DELTA_POSITION);
    batch.writeInt32BE(3, RECORD_COUNT_POSITION);
    refusedAsInvalid(recrc(batch), /declares 3 records but its bytes end after 1/);
    const huge = records([{}]);
    huge.writeInt32BE(2 ** 31 - 2, LAST_OFFSET_DELTA_POSITION);
    huge.writeInt32BE(2 ** 31 - 1, RECORD_COUNT_POSITION);
    refusedAsInvalid(recrc(huge), /declares 2147483647 records but its bytes end after 1/);
  });

  it("refuses more records than the header counts", () => {
    const batch = records([{}, {}, {}]);
    batch.writeInt32BE(0, LAST_OFFSET_DELTA_POSITION);
    batch.writeInt32BE(1, RECORD_COUNT_POSITION);
    refusedAsInvalid(recrc(batch), /declares 1 records but \d+ bytes remain after them/);
  });

  it("answers Kafka's codes for header fields a client got wrong", () => {
    const magic = records([{}]);
    magic.writeInt8(3, MAGIC_POSITION);
    expect(prepare(recrc(magic), defaults)).toMatchObject({
      ok: false,
      errorCode: ErrorCode.CORRUPT_MESSAGE,
    });
    const negative = records([{}]);
    negative.writeInt32BE(-1, LAST_OFFSET_DELTA_POSITION);
    expect(prepare(recrc(negative), defaults)).toMatchObject({
      ok: false,
      errorCode: ErrorCode.INVALID_RECORD,
    });
    const offset = records([{}]);
    offset.writeBigInt64BE(5n, 0);
    refusedAsInvalid(offset, /must have baseOffset 0, this one has 5/);
  });
});
