import { gunzipSync, gzipSync } from "node:zlib";
// Default imports on purpose: these are CommonJS native modules, and Node's ESM loader cannot see all
// of their named exports (it misses @napi-rs/snappy's uncompressSync, for one).
import snappy from "@napi-rs/snappy";
import lz4 from "lz4-napi";
import zstd from "zstd-napi";
import { ErrorCode } from "../errors/error-codes.js";
import { corrupt, RecordBatchError } from "./errors.js";

/** Compression codec ids as stored in batch attributes bits 0-2. */
export const CompressionType = { None: 0, Gzip: 1, Snappy: 2, Lz4: 3, Zstd: 4 } as const;
export type CompressionType = (typeof CompressionType)[keyof typeof CompressionType];

const NAMES = ["none", "gzip", "snappy", "lz4", "zstd"];

export function compressionName(type: number): string {
  return NAMES[type] ?? `unknown(${type})`;
}

/** Default ceiling on one batch's decompressed size, so a tiny hostile batch cannot exhaust memory. */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024;

// Java clients (snappy-java's SnappyOutputStream) and kafkajs-snappy frame snappy data this way:
// magic, version 1, compatible version 1, then blocks of int32 length + raw snappy block.
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;
const XERIAL_BLOCK_BYTES = 32 * 1024;

export function isXerialSnappy(data: Buffer): boolean {
  return data.length >= XERIAL_HEADER_BYTES && data.subarray(0, 8).equals(XERIAL_MAGIC);
}

function snappyDeclaredLength(block: Buffer): number {
  let result = 0;
  for (let i = 0, shift = 0; i < 5 && i < block.length; i++, shift += 7) {
    const byte = block[i]!;
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return result;
  }
  throw corrupt("snappy block has an unreadable length header");
}

function xerialCompress(data: Buffer): Buffer {
  const parts: Buffer[] = [XERIAL_MAGIC, Buffer.from([0, 0, 0, 1, 0, 0, 0, 1])];
  for (let start = 0; start < data.length; start += XERIAL_BLOCK_BYTES) {
    const block = snappy.compressSync(data.subarray(start, start + XERIAL_BLOCK_BYTES));
    const length = Buffer.allocUnsafe(4);
    length.writeInt32BE(block.length);
    parts.push(length, block);
  }
  return Buffer.concat(parts);
}

function snappyDecompress(data: Buffer, maxBytes: number): Buffer {
  if (!isXerialSnappy(data)) {
    checkLimit(snappyDeclaredLength(data), maxBytes, "snappy");
    return snappy.uncompressSync(data);
  }
  const parts: Buffer[] = [];
  let total = 0;
  let position = XERIAL_HEADER_BYTES;
  while (position < data.length) {
    if (data.length - position < 4) throw corrupt("xerial snappy stream ends inside a block length");
    const length = data.readInt32BE(position);
    position += 4;
    if (length < 0 || length > data.length - position) {
      throw corrupt(`xerial snappy block claims ${length} bytes but ${data.length - position} remain`);
    }
    const block = data.subarray(position, position + length);
    position += length;
    total += snappyDeclaredLength(block);
    checkLimit(total, maxBytes, "snappy");
    parts.push(snappy.uncompressSync(block));
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

function checkLimit(size: number, maxBytes: number, codec: string): void {
  if (size > maxBytes) {
    throw corrupt(
      `${codec} data decompresses to ${size} bytes, more than the ${maxBytes}-byte limit; raise maxDecompressedBytes if batches this large are expected`,
    );
  }
}

/** Compresses `data` the way Kafka clients do for record batches (snappy with xerial framing, LZ4 frames). */
export function compress(type: CompressionType, data: Buffer): Buffer {
  switch (type) {
    case CompressionType.None:
      return data;
    case CompressionType.Gzip:
      return gzipSync(data);
    case CompressionType.Snappy:
      return xerialCompress(data);
    case CompressionType.Lz4:
      return lz4.compressFrameSync(data);
    case CompressionType.Zstd:
      return zstd.compress(data);
    default:
      throw new RecordBatchError(
        ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
        `compression type ${type} does not exist; use 0-4 (none, gzip, snappy, lz4, zstd)`,
      );
  }
}

/**
 * Decompresses one batch's records section. Snappy accepts both xerial-framed and raw data. Any codec
 * failure becomes a CORRUPT_MESSAGE RecordBatchError.
 */
export function decompress(type: number, data: Buffer, maxBytes = DEFAULT_MAX_DECOMPRESSED_BYTES): Buffer {
  let output: Buffer;
  try {
    switch (type) {
      case CompressionType.None:
        return data;
      case CompressionType.Gzip:
        return gunzipSync(data, { maxOutputLength: maxBytes });
      case CompressionType.Snappy:
        return snappyDecompress(data, maxBytes);
      case CompressionType.Lz4:
        output = lz4.decompressFrameSync(data);
        break;
      case CompressionType.Zstd:
        output = zstd.decompress(data);
        break;
      default:
        throw new RecordBatchError(
          ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
          `compression type ${type} does not exist (valid: 0-4); the batch was written by a broken or newer client`,
        );
    }
  } catch (error) {
    if (error instanceof RecordBatchError) throw error;
    throw corrupt(
      `${compressionName(type)} data could not be decompressed: ${(error as Error).message}`,
      0,
      error,
    );
  }
  checkLimit(output.length, maxBytes, compressionName(type));
  return output;
}
