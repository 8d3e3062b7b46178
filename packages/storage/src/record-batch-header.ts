import { crc32c } from "@raftka/crc32c";
import { CorruptRecordError } from "./errors.js";

// Fixed positions of the record batch v2 header fields (Kafka's DefaultRecordBatch). Storage reads
// only these; it never decodes records.
export const BASE_OFFSET_POSITION = 0;
export const BATCH_LENGTH_POSITION = 8;
export const PARTITION_LEADER_EPOCH_POSITION = 12;
export const MAGIC_POSITION = 16;
export const CRC_POSITION = 17;
export const ATTRIBUTES_POSITION = 21;
export const LAST_OFFSET_DELTA_POSITION = 23;
export const BASE_TIMESTAMP_POSITION = 27;
export const MAX_TIMESTAMP_POSITION = 35;
export const PRODUCER_ID_POSITION = 43;
export const PRODUCER_EPOCH_POSITION = 51;
export const BASE_SEQUENCE_POSITION = 53;
export const RECORD_COUNT_POSITION = 57;
/** Size of the header, which is also the smallest possible batch (no records). */
export const BATCH_HEADER_SIZE = 61;
/** baseOffset + batchLength: the part of the batch not counted by batchLength. */
export const LOG_OVERHEAD = 12;
export const CURRENT_MAGIC = 2;

const TIMESTAMP_TYPE_MASK = 0x08;
const CONTROL_MASK = 0x20;

/** The header fields storage needs, read at their fixed positions. */
export interface BatchHeader {
  baseOffset: number;
  /** Total bytes of the batch on disk (batchLength + 12). */
  sizeInBytes: number;
  partitionLeaderEpoch: number;
  lastOffsetDelta: number;
  maxTimestamp: number;
  recordCount: number;
  isControl: boolean;
}

export function lastOffsetOf(header: BatchHeader): number {
  return header.baseOffset + header.lastOffsetDelta;
}

export function readInt64AsNumber(buffer: Buffer, position: number): number {
  const value = buffer.readBigInt64BE(position);
  // 2^53 offsets is far beyond any real log; a larger value can only be garbage.
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new CorruptRecordError(
      `int64 field at byte ${position} holds ${value}, beyond the 2^53 range this broker supports; ` +
        "the batch is corrupt or was not produced by a Kafka client",
    );
  }
  return Number(value);
}

export function writeInt64FromNumber(buffer: Buffer, position: number, value: number): void {
  buffer.writeBigInt64BE(BigInt(value), position);
}

/**
 * Reads the header of the batch starting at `position` of `buffer`. The caller guarantees at least
 * BATCH_HEADER_SIZE bytes are available. Only structural checks are done here; see validateBatch.
 */
export function readBatchHeader(buffer: Buffer, position: number): BatchHeader {
  const batchLength = buffer.readInt32BE(position + BATCH_LENGTH_POSITION);
  const attributes = buffer.readInt16BE(position + ATTRIBUTES_POSITION);
  return {
    baseOffset: readInt64AsNumber(buffer, position + BASE_OFFSET_POSITION),
    sizeInBytes: batchLength + LOG_OVERHEAD,
    partitionLeaderEpoch: buffer.readInt32BE(position + PARTITION_LEADER_EPOCH_POSITION),
    lastOffsetDelta: buffer.readInt32BE(position + LAST_OFFSET_DELTA_POSITION),
    maxTimestamp: readInt64AsNumber(buffer, position + MAX_TIMESTAMP_POSITION),
    recordCount: buffer.readInt32BE(position + RECORD_COUNT_POSITION),
    isControl: (attributes & CONTROL_MASK) !== 0,
  };
}

/**
 * Describes why the bytes at `position` are not the start of a well-formed batch, or returns
 * undefined when they are. `available` is how many bytes of the batch region exist from `position`
 * (so a batch longer than what is there is reported as truncated). CRC is checked only when asked.
 */
export function checkBatch(
  buffer: Buffer,
  position: number,
  available: number,
  verifyCrc: boolean,
): string | undefined {
  if (available < LOG_OVERHEAD) return `only ${available} bytes left, less than a batch length prefix`;
  const batchLength = buffer.readInt32BE(position + BATCH_LENGTH_POSITION);
  if (batchLength < BATCH_HEADER_SIZE - LOG_OVERHEAD) {
    return `batchLength ${batchLength} is smaller than the ${BATCH_HEADER_SIZE - LOG_OVERHEAD}-byte v2 header`;
  }
  const size = batchLength + LOG_OVERHEAD;
  if (size > available) return `batch of ${size} bytes is truncated: only ${available} bytes present`;
  const magic = buffer.readInt8(position + MAGIC_POSITION);
  if (magic !== CURRENT_MAGIC) {
    return `magic byte is ${magic}; only record batch v2 (magic 2) is stored`;
  }
  const lastOffsetDelta = buffer.readInt32BE(position + LAST_OFFSET_DELTA_POSITION);
  if (lastOffsetDelta < 0) return `lastOffsetDelta ${lastOffsetDelta} is negative`;
  const recordCount = buffer.readInt32BE(position + RECORD_COUNT_POSITION);
  if (recordCount < 0) return `recordCount ${recordCount} is negative`;
  if (verifyCrc) {
    const stored = buffer.readUInt32BE(position + CRC_POSITION);
    const computed = crc32c(buffer.subarray(position + ATTRIBUTES_POSITION, position + size));
    if (stored !== computed) {
      return `CRC32C mismatch: header says ${hex(stored)}, bytes give ${hex(computed)}`;
    }
  }
  return undefined;
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

/** Rewrites the fields the CRC does not cover; the leader stamps its offsets and epoch this way. */
export function stampBatch(buffer: Buffer, position: number, baseOffset: number, leaderEpoch: number): void {
  writeInt64FromNumber(buffer, position + BASE_OFFSET_POSITION, baseOffset);
  buffer.writeInt32BE(leaderEpoch, position + PARTITION_LEADER_EPOCH_POSITION);
}

/**
 * Marks the batch as LogAppendTime with the given time (Kafka's message.timestamp.type=LogAppendTime).
 * These fields are covered by the CRC, so the CRC is recomputed: one pass over the batch, no decoding.
 */
export function stampLogAppendTime(buffer: Buffer, position: number, appendTime: number): void {
  const attributes = buffer.readInt16BE(position + ATTRIBUTES_POSITION);
  buffer.writeInt16BE(attributes | TIMESTAMP_TYPE_MASK, position + ATTRIBUTES_POSITION);
  writeInt64FromNumber(buffer, position + MAX_TIMESTAMP_POSITION, appendTime);
  const size = buffer.readInt32BE(position + BATCH_LENGTH_POSITION) + LOG_OVERHEAD;
  buffer.writeUInt32BE(
    crc32c(buffer.subarray(position + ATTRIBUTES_POSITION, position + size)),
    position + CRC_POSITION,
  );
}
