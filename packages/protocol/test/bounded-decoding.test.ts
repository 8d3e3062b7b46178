import { gzipSync } from "node:zlib";
import snappy from "@napi-rs/snappy";
import { crc32 } from "@node-rs/crc32";
import lz4 from "lz4-napi";
import { afterEach, describe, expect, it, vi } from "vitest";
import zstd from "zstd-napi";
import {
  CompressionType,
  compress,
  computeBatchCrc,
  decodeLegacyMessageSet,
  decodeRecordBatch,
  decompress,
  ErrorCode,
  encodeRecordBatch,
  LAST_OFFSET_DELTA_POSITION,
  openRecordBatch,
  RECORD_COUNT_POSITION,
  RecordBatchError,
  recompressRecordBatch,
} from "../src/index.js";

const MiB = 1024 * 1024;

function errorOf(action: () => unknown): RecordBatchError | undefined {
  try {
    action();
  } catch (error) {
    if (error instanceof RecordBatchError) return error;
    throw error;
  }
  return undefined;
}

/** Runs `action`, which must be refused as CORRUPT_MESSAGE, and returns how much buffer memory it left behind. */
function refusedGrowth(action: () => unknown): number {
  const before = process.memoryUsage().arrayBuffers;
  const error = errorOf(action);
  const grown = process.memoryUsage().arrayBuffers - before;
  expect(error?.code).toBe(ErrorCode.CORRUPT_MESSAGE);
  expect(error?.message).toMatch(/over the broker's \d+-byte limit/);
  expect(error?.message).not.toMatch(/maxDecompressedBytes/);
  return grown;
}

/** A zstd frame of RLE blocks (each 3 header bytes + 1 byte for 128 KiB of output): ~30 KB per GB. */
function zstdRleBomb(total: number): Buffer {
  const blocks = Math.ceil(total / 131072);
  const out = Buffer.alloc(6 + blocks * 4);
  out.writeUInt32LE(0xfd2fb528, 0);
  out[5] = 7 << 3; // window descriptor, no content size: the decoder cannot know the size up front
  for (let i = 0; i < blocks; i++) {
    const header = (i === blocks - 1 ? 1 : 0) | (1 << 1) | (131072 << 3);
    out.writeUIntLE(header, 6 + i * 4, 3);
  }
  return out;
}

/** A v2 batch of `count` minimal 7-byte records (null key and value), its records section as given. */
function minimalRecordsBatch(count: number, compression: CompressionType): Buffer {
  const one = Buffer.from([0x0c, 0, 0, 0, 1, 1, 0]);
  const plain = Buffer.alloc(7 * count);
  for (let i = 0; i < count; i++) one.copy(plain, 7 * i);
  return withSection(plain, count, compression);
}

function withSection(plain: Buffer, count: number, compression: CompressionType): Buffer {
  const head = Buffer.from(
    encodeRecordBatch({ records: [{ value: "v", timestamp: 1_700_000_000_000 }] }).subarray(0, 61),
  );
  const batch = Buffer.concat([head, compress(compression, plain)]);
  batch.writeInt32BE(batch.length - 12, 8);
  batch.writeInt16BE(compression, 21);
  batch.writeInt32BE(count - 1, LAST_OFFSET_DELTA_POSITION);
  batch.writeInt32BE(count, RECORD_COUNT_POSITION);
  batch.writeUInt32BE(computeBatchCrc(batch), 17);
  return batch;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("decompression stops at the limit", () => {
  it("zstd: 16 KB of RLE blocks claiming 512 MiB is refused having produced at most the limit", () => {
    const bomb = zstdRleBomb(512 * MiB);
    expect(bomb.length).toBeLessThan(20_000);
    expect(refusedGrowth(() => decompress(CompressionType.Zstd, bomb, 4 * MiB))).toBeLessThan(32 * MiB);
    // Within the limit the same kind of frame decompresses whole, across several output pieces.
    expect(decompress(CompressionType.Zstd, zstdRleBomb(3 * MiB), 4 * MiB).length).toBe(3 * MiB);
  });

  it("zstd: concatenated frames decompress; truncated frames and trailing bytes are CORRUPT_MESSAGE", () => {
    const data = Buffer.from("zstd ".repeat(500_000));
    const two = Buffer.concat([zstd.compress(data), zstd.compress(Buffer.from("tail"))]);
    expect(decompress(CompressionType.Zstd, two).toString()).toBe(`${data}tail`);
    const whole = zstd.compress(data);
    for (const broken of [whole.subarray(0, whole.length - 3), Buffer.concat([whole, Buffer.from([1, 2])])]) {
      expect(errorOf(() => decompress(CompressionType.Zstd, broken))?.code).toBe(ErrorCode.CORRUPT_MESSAGE);
    }
  });

  it("lz4: frames that could exceed the limit are refused before the library decompresses anything", () => {
    const spy = vi.spyOn(lz4, "decompressFrameSync");
    const bomb = lz4.compressFrameSync(Buffer.alloc(64 * MiB));
    expect(bomb.length).toBeLessThan(MiB);
    expect(refusedGrowth(() => decompress(CompressionType.Lz4, bomb, MiB))).toBeLessThan(16 * MiB);
    expect(spy).not.toHaveBeenCalled();
    const data = Buffer.from("lz4 ".repeat(300_000));
    expect(decompress(CompressionType.Lz4, lz4.compressFrameSync(data), 2 * MiB).equals(data)).toBe(true);
  });

  it("gzip: inflating stops at the limit", () => {
    const bomb = gzipSync(Buffer.alloc(64 * MiB));
    expect(refusedGrowth(() => decompress(CompressionType.Gzip, bomb, MiB))).toBeLessThan(16 * MiB);
  });

  it("snappy: raw and xerial blocks are refused on their declared lengths, before decompressing past the limit", () => {
    const spy = vi.spyOn(snappy, "uncompressSync");
    const raw = snappy.compressSync(Buffer.alloc(16 * MiB));
    expect(refusedGrowth(() => decompress(CompressionType.Snappy, raw, MiB))).toBeLessThan(8 * MiB);
    expect(spy).not.toHaveBeenCalled();
    const xerial = compress(CompressionType.Snappy, Buffer.alloc(16 * MiB));
    expect(refusedGrowth(() => decompress(CompressionType.Snappy, xerial, MiB))).toBeLessThan(8 * MiB);
    // 32 KiB blocks: at most the limit's worth of them is ever decompressed.
    expect(spy.mock.calls.length).toBeLessThanOrEqual(MiB / (32 * 1024));
  });
});

describe("record counts and lazy reading", () => {
  it("refuses a record count the batch's bytes cannot hold, compressed or not", () => {
    for (const compression of [CompressionType.None, CompressionType.Zstd]) {
      const batch = minimalRecordsBatch(100, compression);
      batch.writeInt32BE(101, RECORD_COUNT_POSITION);
      batch.writeUInt32BE(computeBatchCrc(batch), 17);
      const error = errorOf(() => openRecordBatch(batch));
      expect(error?.code).toBe(ErrorCode.CORRUPT_MESSAGE);
      expect(error?.message).toMatch(/claims 101 records/);
    }
  });

  it("reads the first record of a 2M-record zstd batch without reading the rest", () => {
    const batch = minimalRecordsBatch(2_000_000, CompressionType.Zstd);
    expect(batch.length).toBeLessThan(4096);
    const heapBefore = process.memoryUsage().heapUsed;
    const opened = openRecordBatch(batch);
    const first = opened.records().next();
    expect(first.done).toBe(false);
    expect(first.value).toMatchObject({ offset: 0n, key: null, value: null });
    expect(opened.offsetsAndTimestamps().next().value).toEqual({ offset: 0, timestamp: 1_700_000_000_000 });
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * MiB);
  });

  it("hands out records up to the first malformed one, which is CORRUPT_MESSAGE", () => {
    const good = Buffer.from([0x0c, 0, 0, 0, 1, 1, 0]);
    const plain = Buffer.concat([good, good, Buffer.from([0x7e, 0, 0, 0, 0, 0, 0])]);
    const batch = withSection(plain, 3, CompressionType.Gzip);
    let seen = 0;
    const error = errorOf(() => {
      for (const _record of openRecordBatch(batch).records()) seen++;
    });
    expect(seen).toBe(2);
    expect(error?.message).toMatch(/record 2 of the batch/);
    expect(errorOf(() => decodeRecordBatch(batch))?.code).toBe(ErrorCode.CORRUPT_MESSAGE);
  });

  it("recompresses as bytes, keeping every record and header field", () => {
    const original = encodeRecordBatch({
      records: [
        { key: "k1", value: "v1", timestamp: 1_700_000_000_000, headers: [{ key: "h", value: "x" }] },
        { key: null, value: null, timestamp: 1_700_000_000_005 },
      ],
      compression: CompressionType.Zstd,
      baseOffset: 5n,
      producerId: 7n,
      producerEpoch: 2,
      baseSequence: 11,
      isTransactional: true,
    });
    const recompressed = recompressRecordBatch(original, CompressionType.Gzip);
    const before = decodeRecordBatch(original);
    const after = decodeRecordBatch(recompressed);
    expect(after.header.compression).toBe(CompressionType.Gzip);
    expect({ ...after.header, compression: 0, crc: 0, batchLength: 0, attributes: 0 }).toEqual({
      ...before.header,
      compression: 0,
      crc: 0,
      batchLength: 0,
      attributes: 0,
    });
    expect(after.records).toEqual(before.records);
  });
});

describe("legacy wrappers with many inner messages", () => {
  it("unwraps 200k inner messages of one gzip wrapper", () => {
    const count = 200_000;
    // One magic 1 message (null key, empty value); the CRC does not cover the offset, so all share it.
    const body = Buffer.alloc(2 + 8 + 4 + 4);
    body[0] = 1;
    body.writeInt32BE(-1, 10);
    const message = Buffer.alloc(16 + body.length);
    message.writeInt32BE(body.length + 4, 8);
    message.writeUInt32BE(crc32(body) >>> 0, 12);
    body.copy(message, 16);
    const inner = Buffer.alloc(message.length * count);
    for (let i = 0; i < count; i++) {
      message.copy(inner, i * message.length);
      inner.writeBigInt64BE(BigInt(i), i * message.length);
    }
    const wrapperBody = Buffer.concat([Buffer.from([1, CompressionType.Gzip]), Buffer.alloc(8)]);
    const value = gzipSync(inner);
    const tail = Buffer.alloc(8);
    tail.writeInt32BE(-1, 0);
    tail.writeInt32BE(value.length, 4);
    const wrapped = Buffer.concat([wrapperBody, tail, value]);
    const wrapper = Buffer.alloc(16);
    wrapper.writeBigInt64BE(BigInt(count - 1), 0);
    wrapper.writeInt32BE(wrapped.length + 4, 8);
    wrapper.writeUInt32BE(crc32(wrapped) >>> 0, 12);
    const messages = decodeLegacyMessageSet(Buffer.concat([wrapper, wrapped]));
    expect(messages.length).toBe(count);
    expect(messages[count - 1]!.offset).toBe(BigInt(count - 1));
  });
});
