import { crc32 } from "@node-rs/crc32";
import { describe, expect, it } from "vitest";
import {
  CompressionType,
  ControlRecordType,
  compress,
  computeBatchCrc,
  convertLegacyMessageSet,
  decodeControlRecordKey,
  decodeEndTransactionMarkerValue,
  decodeLegacyMessageSet,
  decodeRecordBatch,
  decompress,
  ErrorCode,
  encodeEndTransactionMarker,
  encodeRecordBatch,
  isXerialSnappy,
  lastOffsetOf,
  RecordBatchError,
  type RecordInput,
  readRecordBatchHeader,
  setBatchBaseOffset,
  setBatchLogAppendTime,
  setBatchPartitionLeaderEpoch,
  sliceBatches,
  TimestampType,
  validateRecordBatch,
} from "../src/index.js";
import { Random, testSeed } from "./support/random.js";

const seed = testSeed();
const CODECS = [
  CompressionType.None,
  CompressionType.Gzip,
  CompressionType.Snappy,
  CompressionType.Lz4,
  CompressionType.Zstd,
] as const;

function randomRecords(random: Random, count: number): RecordInput[] {
  const records: RecordInput[] = [];
  for (let i = 0; i < count; i++) {
    records.push({
      key: random.chance(0.2) ? null : random.bytes(random.int(0, 20)),
      value: random.chance(0.1) ? null : Buffer.from(`value-${i}-`.repeat(random.int(0, 50))),
      headers: random.chance(0.5)
        ? [{ key: `h${i}`, value: random.chance(0.3) ? null : random.bytes(3) }]
        : [],
      timestamp: 1_700_000_000_000n + BigInt(random.int(-5000, 5000)),
    });
  }
  return records;
}

function errorCodeOf(action: () => unknown): number | undefined {
  try {
    action();
  } catch (error) {
    if (error instanceof RecordBatchError) return error.code;
    throw error;
  }
  return undefined;
}

describe(`record batch v2 encode/decode (seed ${seed})`, () => {
  for (const compression of CODECS) {
    it(`round-trips records compressed with codec ${compression}`, () => {
      const random = new Random(seed + compression);
      const records = randomRecords(random, random.int(1, 40));
      const batch = encodeRecordBatch({
        records,
        compression,
        baseOffset: 1000n,
        partitionLeaderEpoch: 7,
        producerId: 42n,
        producerEpoch: 3,
        baseSequence: 11,
        isTransactional: true,
      });
      const header = validateRecordBatch(batch, { producedByClient: true });
      expect(header).toMatchObject({
        baseOffset: 1000n,
        partitionLeaderEpoch: 7,
        magic: 2,
        compression,
        isTransactional: true,
        isControl: false,
        producerId: 42n,
        producerEpoch: 3,
        baseSequence: 11,
        recordCount: records.length,
        lastOffsetDelta: records.length - 1,
        baseTimestamp: BigInt(records[0]!.timestamp),
      });
      const sortedTimestamps = records
        .map((r) => BigInt(r.timestamp))
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      expect(header.maxTimestamp).toBe(sortedTimestamps[sortedTimestamps.length - 1]);
      const decoded = decodeRecordBatch(batch);
      expect(decoded.records).toHaveLength(records.length);
      decoded.records.forEach((record, i) => {
        const input = records[i]!;
        expect(record.offset, `record ${i} (seed ${seed})`).toBe(1000n + BigInt(i));
        expect(record.timestamp).toBe(BigInt(input.timestamp));
        expect(record.key).toEqual(input.key ?? null);
        expect(record.value).toEqual(input.value);
        expect(record.headers).toEqual(input.headers);
      });
    });
  }

  it("keeps key and value of an uncompressed batch as views of the batch", () => {
    const batch = encodeRecordBatch({ records: [{ key: "k", value: "v", timestamp: 1 }] });
    const [record] = decodeRecordBatch(batch).records;
    expect(record!.value!.buffer).toBe(batch.buffer);
  });

  it("reports LogAppendTime batches with the batch's maxTimestamp for every record", () => {
    const batch = encodeRecordBatch({
      records: [
        { value: "a", timestamp: 5 },
        { value: "b", timestamp: 6 },
      ],
    });
    setBatchLogAppendTime(batch, 99n);
    const decoded = decodeRecordBatch(batch);
    expect(decoded.header.timestampType).toBe(TimestampType.LogAppendTime);
    expect(decoded.records.map((r) => r.timestamp)).toEqual([99n, 99n]);
  });
});

describe("record batch header and validation", () => {
  const batch = () =>
    encodeRecordBatch({
      records: [
        { key: "a", value: "1", timestamp: 10 },
        { key: "b", value: "2", timestamp: 20 },
      ],
    });

  it("rewrites baseOffset and partitionLeaderEpoch in place without invalidating the CRC", () => {
    const bytes = batch();
    setBatchBaseOffset(bytes, 123456789012n);
    setBatchPartitionLeaderEpoch(bytes, 17);
    const header = validateRecordBatch(bytes);
    expect(header.baseOffset).toBe(123456789012n);
    expect(header.partitionLeaderEpoch).toBe(17);
    expect(lastOffsetOf(header)).toBe(123456789013n);
    expect(decodeRecordBatch(bytes).records.map((r) => r.offset)).toEqual([123456789012n, 123456789013n]);
  });

  it("detects any corrupted byte covered by the CRC", () => {
    const original = batch();
    for (let position = 21; position < original.length; position++) {
      const bytes = Buffer.from(original);
      bytes[position]! ^= 0x01;
      expect(
        errorCodeOf(() => validateRecordBatch(bytes)),
        `byte ${position}`,
      ).toBe(ErrorCode.CORRUPT_MESSAGE);
    }
  });

  it("rejects truncation, trailing bytes and wrong magic with precise errors", () => {
    const bytes = batch();
    expect(() => validateRecordBatch(bytes.subarray(0, bytes.length - 1))).toThrow(
      /truncated or has trailing bytes/,
    );
    expect(() => validateRecordBatch(Buffer.concat([bytes, Buffer.alloc(1)]))).toThrow(
      /truncated or has trailing/,
    );
    const legacy = Buffer.from(bytes);
    legacy[16] = 1;
    expect(errorCodeOf(() => validateRecordBatch(legacy))).toBe(ErrorCode.UNSUPPORTED_VERSION);
    const unknown = Buffer.from(bytes);
    unknown[16] = 3;
    expect(errorCodeOf(() => validateRecordBatch(unknown))).toBe(ErrorCode.CORRUPT_MESSAGE);
    expect(errorCodeOf(() => readRecordBatchHeader(bytes.subarray(0, 30)))).toBe(ErrorCode.CORRUPT_MESSAGE);
  });

  it("applies Kafka's produce rules: no empty batches, dense offsets", () => {
    const empty = encodeRecordBatch({ records: [] });
    expect(validateRecordBatch(empty).recordCount).toBe(0);
    expect(errorCodeOf(() => validateRecordBatch(empty, { producedByClient: true }))).toBe(
      ErrorCode.INVALID_RECORD,
    );
    const sparse = encodeRecordBatch({ records: [{ value: "x", timestamp: 1, offsetDelta: 5 }] });
    expect(errorCodeOf(() => validateRecordBatch(sparse, { producedByClient: true }))).toBe(
      ErrorCode.INVALID_RECORD,
    );
  });

  it("slices a blob of several batches and reports a cut-off tail instead of failing", () => {
    const first = encodeRecordBatch({ baseOffset: 0n, records: [{ value: "a", timestamp: 1 }] });
    const second = encodeRecordBatch({ baseOffset: 1n, records: [{ value: "bb", timestamp: 2 }] });
    const blob = Buffer.concat([first, second, second.subarray(0, 30)]);
    const { batches, incompleteTailBytes } = sliceBatches(blob);
    expect(batches.map((b) => [b.position, b.magic, b.bytes.length])).toEqual([
      [0, 2, first.length],
      [first.length, 2, second.length],
    ]);
    expect(incompleteTailBytes).toBe(30);
    const broken = Buffer.from(first);
    broken.writeInt32BE(3, 8);
    expect(errorCodeOf(() => sliceBatches(broken))).toBe(ErrorCode.CORRUPT_MESSAGE);
  });

  it("turns malformed records inside a valid CRC into CORRUPT_MESSAGE, never a crash", () => {
    const random = new Random(seed);
    const original = encodeRecordBatch({ records: randomRecords(random, 5) });
    for (let i = 0; i < 300; i++) {
      const bytes = Buffer.from(original);
      const at = random.int(61, bytes.length - 1);
      bytes[at] = random.int(0, 255);
      // Re-stamp a valid CRC so that record parsing itself is what gets exercised.
      bytes.writeUInt32BE(computeBatchCrc(bytes), 17);
      const code = errorCodeOf(() => decodeRecordBatch(bytes));
      expect([undefined, ErrorCode.CORRUPT_MESSAGE], `byte ${at} (seed ${seed})`).toContain(code);
    }
  });
});

describe("compression", () => {
  it("writes snappy with the xerial framing Java clients use and reads both framings", () => {
    const data = Buffer.from("snappy ".repeat(20000));
    const framed = compress(CompressionType.Snappy, data);
    expect(isXerialSnappy(framed)).toBe(true);
    expect(framed.readInt32BE(8)).toBe(1);
    expect(decompress(CompressionType.Snappy, framed).equals(data)).toBe(true);
  });

  it("refuses to inflate past the limit", () => {
    const bomb = compress(CompressionType.Gzip, Buffer.alloc(1 << 20));
    expect(errorCodeOf(() => decompress(CompressionType.Gzip, bomb, 1000))).toBe(ErrorCode.CORRUPT_MESSAGE);
    const snappyBomb = compress(CompressionType.Snappy, Buffer.alloc(1 << 20));
    expect(() => decompress(CompressionType.Snappy, snappyBomb, 1000)).toThrow(
      /over the broker.s 1000-byte limit/,
    );
    const zstdBomb = compress(CompressionType.Zstd, Buffer.alloc(1 << 20));
    expect(errorCodeOf(() => decompress(CompressionType.Zstd, zstdBomb, 1000))).toBe(
      ErrorCode.CORRUPT_MESSAGE,
    );
  });

  it("reports garbage and unknown codecs precisely", () => {
    for (const codec of [
      CompressionType.Gzip,
      CompressionType.Snappy,
      CompressionType.Lz4,
      CompressionType.Zstd,
    ]) {
      expect(
        errorCodeOf(() => decompress(codec, Buffer.from("definitely not compressed"))),
        `codec ${codec}`,
      ).toBe(ErrorCode.CORRUPT_MESSAGE);
    }
    expect(errorCodeOf(() => decompress(6, Buffer.alloc(1)))).toBe(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE);
  });
});

describe("control records", () => {
  it("encodes a COMMIT marker batch the way transaction coordinators write it", () => {
    const batch = encodeEndTransactionMarker({
      commit: true,
      producerId: 5000n,
      producerEpoch: 2,
      coordinatorEpoch: 9,
      timestamp: 1234,
      baseOffset: 40n,
    });
    const { header, records } = decodeRecordBatch(batch);
    expect(header).toMatchObject({
      isControl: true,
      isTransactional: true,
      producerId: 5000n,
      producerEpoch: 2,
    });
    expect(decodeControlRecordKey(records[0]!.key)).toEqual({ version: 0, type: ControlRecordType.COMMIT });
    expect(decodeEndTransactionMarkerValue(records[0]!.value)).toEqual({ version: 0, coordinatorEpoch: 9 });
    expect(records[0]!.offset).toBe(40n);
  });

  it("rejects control keys and marker values that are too short", () => {
    expect(errorCodeOf(() => decodeControlRecordKey(Buffer.alloc(3)))).toBe(ErrorCode.CORRUPT_MESSAGE);
    expect(errorCodeOf(() => decodeEndTransactionMarkerValue(null))).toBe(ErrorCode.CORRUPT_MESSAGE);
  });
});

/** Builds one legacy message by the format's definition (CRC32 over magic..end). */
function legacyMessage(
  offset: bigint,
  magic: 0 | 1,
  attributes: number,
  key: Buffer | null,
  value: Buffer | null,
  timestamp = 0n,
): Buffer {
  const lengthPrefixed = (bytes: Buffer | null): Buffer => {
    const length = Buffer.alloc(4);
    length.writeInt32BE(bytes === null ? -1 : bytes.length);
    return bytes === null ? length : Buffer.concat([length, bytes]);
  };
  const ts = Buffer.alloc(magic === 1 ? 8 : 0);
  if (magic === 1) ts.writeBigInt64BE(timestamp);
  const body = Buffer.concat([
    Buffer.from([magic, attributes]),
    ts,
    lengthPrefixed(key),
    lengthPrefixed(value),
  ]);
  const head = Buffer.alloc(16);
  head.writeBigInt64BE(offset, 0);
  head.writeInt32BE(body.length + 4, 8);
  head.writeUInt32BE(crc32(body) >>> 0, 12);
  return Buffer.concat([head, body]);
}

describe("legacy message sets (magic 0 and 1)", () => {
  it("decodes plain v0 and v1 messages", () => {
    const set = Buffer.concat([
      legacyMessage(0n, 0, 0, Buffer.from("k0"), Buffer.from("v0")),
      legacyMessage(1n, 1, 0, null, Buffer.from("v1"), 1_600_000_000_000n),
    ]);
    const messages = decodeLegacyMessageSet(set);
    expect(
      messages.map((m) => [m.offset, m.magic, m.key?.toString() ?? null, m.value?.toString(), m.timestamp]),
    ).toEqual([
      [0n, 0, "k0", "v0", -1n],
      [1n, 1, null, "v1", 1_600_000_000_000n],
    ]);
  });

  it("unwraps a compressed magic 1 wrapper and resolves relative inner offsets", () => {
    const inner = Buffer.concat([
      legacyMessage(0n, 1, 0, null, Buffer.from("a"), 10n),
      legacyMessage(1n, 1, 0, null, Buffer.from("b"), 11n),
      legacyMessage(2n, 1, 0, null, Buffer.from("c"), 12n),
    ]);
    const wrapper = legacyMessage(
      102n,
      1,
      CompressionType.Gzip,
      null,
      compress(CompressionType.Gzip, inner),
      12n,
    );
    const messages = decodeLegacyMessageSet(wrapper);
    expect(messages.map((m) => [m.offset, m.value?.toString(), m.timestamp])).toEqual([
      [100n, "a", 10n],
      [101n, "b", 11n],
      [102n, "c", 12n],
    ]);
  });

  it("is never mistaken for a v2 batch, and fails CRC and framing checks precisely", () => {
    const message = legacyMessage(0n, 1, 0, null, Buffer.from("x"), 1n);
    expect(errorCodeOf(() => validateRecordBatch(message))).toBe(ErrorCode.UNSUPPORTED_VERSION);
    expect(sliceBatches(message).batches[0]!.magic).toBe(1);
    const corrupted = Buffer.from(message);
    corrupted[corrupted.length - 1]! ^= 0xff;
    expect(() => decodeLegacyMessageSet(corrupted)).toThrow(/fails its CRC32 check/);
    expect(decodeLegacyMessageSet(message.subarray(0, message.length - 2))).toEqual([]);
  });

  it("converts to one v2 batch with dense offsets", () => {
    const set = Buffer.concat([
      legacyMessage(0n, 1, 0, Buffer.from("k"), Buffer.from("a"), 5n),
      legacyMessage(0n, 1, 0, null, Buffer.from("b"), 6n),
    ]);
    const batch = convertLegacyMessageSet(set, { compression: CompressionType.Lz4 });
    const { header, records } = decodeRecordBatch(batch);
    expect(header.compression).toBe(CompressionType.Lz4);
    expect(
      records.map((r) => [r.offsetDelta, r.key?.toString() ?? null, r.value?.toString(), r.timestamp]),
    ).toEqual([
      [0, "k", "a", 5n],
      [1, null, "b", 6n],
    ]);
  });
});
