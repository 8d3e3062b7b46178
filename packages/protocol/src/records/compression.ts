import { gunzipSync, gzipSync } from "node:zlib";
// Default imports on purpose: these are CommonJS native modules, and Node's ESM loader cannot see all
// of their named exports (it misses @napi-rs/snappy's uncompressSync, for one).
import snappy from "@napi-rs/snappy";
import lz4 from "lz4-napi";
import zstd from "zstd-napi";
// The low-level binding: its streaming decompressStream lets the output be capped while decompressing.
// zstd-napi's own decompress() allocates whatever a frame header claims, or all the output, first.
import zstdBinding from "zstd-napi/binding.js";
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

function checkLimit(size: number, maxBytes: number, codec: string, bound = false): void {
  if (size > maxBytes) {
    throw corrupt(
      `${codec} data ${bound ? "may decompress to as many as" : "decompresses to"} ${size} bytes${bound ? "" : " or more"}, over the broker's ${maxBytes}-byte limit on one batch's decompressed records; the batch is corrupt or hostile, or the producer must send smaller batches`,
    );
  }
}

/** zlib stops inflating once the output would pass maxOutputLength. */
function gunzip(data: Buffer, maxBytes: number): Buffer {
  try {
    return gunzipSync(data, { maxOutputLength: maxBytes });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE")
      checkLimit(maxBytes + 1, maxBytes, "gzip");
    throw error;
  }
}

/** zstd output is produced in pieces of this size, so memory follows the real output, never a header's claim. */
const ZSTD_CHUNK_BYTES = 1024 * 1024;

/**
 * Streams the frames through ZSTD_decompressStream, stopping as soon as the output passes `maxBytes`:
 * a few hundred bytes of RLE blocks can claim gigabytes, and the library's one-shot decompress would
 * allocate them all (or what the frame header declares) before any limit could be checked.
 */
function zstdDecompress(data: Buffer, maxBytes: number): Buffer {
  const context = new zstdBinding.DCtx();
  const chunks: Buffer[] = [];
  let total = 0;
  let input = data;
  let pending = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(Math.min(ZSTD_CHUNK_BYTES, maxBytes - total + 1));
    let filled = 0;
    // Fill this chunk; each call consumes input or produces output (or reports the frame is done).
    while (filled < chunk.length) {
      const [hint, produced, consumed] = context.decompressStream(chunk.subarray(filled), input);
      filled += produced;
      input = input.subarray(consumed);
      pending = hint;
      if (produced === 0 && consumed === 0) break;
      if (input.length === 0 && hint === 0) break;
    }
    total += filled;
    checkLimit(total, maxBytes, "zstd");
    if (filled > 0) chunks.push(filled === chunk.length ? chunk : chunk.subarray(0, filled));
    if (input.length === 0 && pending === 0) break;
    if (filled === 0) {
      throw new Error(pending === 0 ? "trailing bytes after the last frame" : "the data ends inside a frame");
    }
  }
  if (chunks.length === 1) return chunks[0]!;
  return Buffer.concat(chunks, total);
}

const LZ4_FRAME_MAGIC = 0x184d2204;
const LZ4_BLOCK_MAX_BYTES = [0, 0, 0, 0, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024];
/** LZ4 cannot expand a compressed block by more than this (a run costs one byte per 255 bytes). */
const LZ4_MAX_RATIO = 255;

/**
 * An upper bound on what LZ4 frames decompress to, from their block structure alone: a stored block
 * is its own size, a compressed one at most the frame's block maximum and 255 times its length. The
 * library's frame decoder has no output limit and linked blocks cannot be decoded one by one, so the
 * frames are decompressed only when this bound is within the limit (legitimate data reaches the bound
 * to within one block: all its blocks but the last are full).
 */
function lz4OutputBound(data: Buffer): number {
  let bound = 0;
  let position = 0;
  while (position < data.length) {
    if (data.length - position < 7) throw corrupt("lz4 data ends inside a frame header");
    const magic = data.readUInt32LE(position);
    if (magic >= 0x184d2a50 && magic <= 0x184d2a5f) {
      // Skippable frame: magic, length, ignored bytes.
      if (data.length - position < 8) throw corrupt("lz4 data ends inside a skippable frame header");
      position += 8 + data.readUInt32LE(position + 4);
      continue;
    }
    if (magic !== LZ4_FRAME_MAGIC) throw corrupt(`lz4 frame magic ${magic.toString(16)} is not 184d2204`);
    const flags = data[position + 4]!;
    const blockMax = LZ4_BLOCK_MAX_BYTES[(data[position + 5]! >> 4) & 0x07]!;
    if (blockMax === 0) throw corrupt("lz4 frame declares an invalid block maximum size");
    const blockChecksum = (flags & 0x10) !== 0;
    position += 6 + (flags & 0x08 ? 8 : 0) + (flags & 0x01 ? 4 : 0) + 1;
    for (;;) {
      if (data.length - position < 4) throw corrupt("lz4 frame ends before its end mark");
      const word = data.readUInt32LE(position);
      position += 4;
      if (word === 0) break;
      const size = word & 0x7fffffff;
      bound += word & 0x80000000 ? size : Math.min(blockMax, size * LZ4_MAX_RATIO);
      position += size + (blockChecksum ? 4 : 0);
    }
    if (flags & 0x04) position += 4;
  }
  return bound;
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
        return gunzip(data, maxBytes);
      case CompressionType.Snappy:
        return snappyDecompress(data, maxBytes);
      case CompressionType.Lz4:
        checkLimit(lz4OutputBound(data), maxBytes, "lz4", true);
        output = lz4.decompressFrameSync(data);
        break;
      case CompressionType.Zstd:
        return zstdDecompress(data, maxBytes);
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
