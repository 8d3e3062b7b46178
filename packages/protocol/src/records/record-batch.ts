import { crc32c } from "@raftka/crc32c";
import { ErrorCode } from "../errors/error-codes.js";
import { CompressionType } from "./compression.js";
import { corrupt, RecordBatchError } from "./errors.js";

// Record batch v2 header layout (KIP-98). Every field is at a fixed position, so the broker reads and
// rewrites headers in place without parsing records.
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
/** Size of the v2 batch header; records start here. */
export const RECORD_BATCH_HEADER_BYTES = 61;
/** baseOffset + batchLength: the part of a batch not counted by batchLength. */
export const LOG_OVERHEAD = 12;

export const COMPRESSION_CODEC_MASK = 0x07;
export const TIMESTAMP_TYPE_MASK = 0x08;
export const TRANSACTIONAL_FLAG_MASK = 0x10;
export const CONTROL_FLAG_MASK = 0x20;
export const DELETE_HORIZON_FLAG_MASK = 0x40;

export const TimestampType = { CreateTime: 0, LogAppendTime: 1 } as const;
export type TimestampType = (typeof TimestampType)[keyof typeof TimestampType];

export const NO_PRODUCER_ID = -1n;
export const NO_PRODUCER_EPOCH = -1;
export const NO_SEQUENCE = -1;
export const NO_PARTITION_LEADER_EPOCH = -1;

export interface RecordBatchHeader {
  baseOffset: bigint;
  /** Bytes after the batchLength field; the whole batch is `batchLength + 12` bytes. */
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  /** CRC32C of everything from `attributes` to the end of the batch, unsigned. */
  crc: number;
  attributes: number;
  compression: number;
  timestampType: TimestampType;
  isTransactional: boolean;
  isControl: boolean;
  hasDeleteHorizon: boolean;
  lastOffsetDelta: number;
  baseTimestamp: bigint;
  maxTimestamp: bigint;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/** One entry of a records blob, as found by `sliceBatches`. */
export interface BatchSlice {
  /** Byte position of the entry inside the blob. */
  position: number;
  /** 2 for record batches, 0 or 1 for legacy messages (which `decodeLegacyMessageSet` reads). */
  magic: number;
  /** The whole entry, a zero-copy view of the blob. */
  bytes: Buffer;
}

/**
 * Splits a records blob into batches (or legacy messages; both formats put the size at byte 8 and the
 * magic at byte 16). A final entry cut short, as Fetch responses may end, is reported in
 * `incompleteTailBytes` rather than as an error. Sizes that cannot be real throw CORRUPT_MESSAGE.
 */
export function sliceBatches(records: Buffer): { batches: BatchSlice[]; incompleteTailBytes: number } {
  const batches: BatchSlice[] = [];
  let position = 0;
  while (position < records.length) {
    const remaining = records.length - position;
    if (remaining < MAGIC_POSITION + 1) return { batches, incompleteTailBytes: remaining };
    const declared = records.readInt32BE(position + BATCH_LENGTH_POSITION);
    const magic = records.readInt8(position + MAGIC_POSITION);
    // Smallest legal entry: a legacy v0 message (crc, magic, attributes, key and value lengths) is 14 bytes.
    if (declared < 14) {
      throw corrupt(`batch at byte ${position} declares length ${declared}, below any valid batch`, position);
    }
    const size = LOG_OVERHEAD + declared;
    if (size > remaining) return { batches, incompleteTailBytes: remaining };
    batches.push({ position, magic, bytes: records.subarray(position, position + size) });
    position += size;
  }
  return { batches, incompleteTailBytes: 0 };
}

/** Reads the header of the v2 batch at the start of `batch` (no CRC check; see validateRecordBatch). */
export function readRecordBatchHeader(batch: Buffer): RecordBatchHeader {
  // Magic first: a legacy message is often shorter than a v2 header and must be named as legacy.
  if (batch.length <= MAGIC_POSITION) {
    throw corrupt(`record batch of ${batch.length} bytes is too short to hold even its magic byte`);
  }
  const magic = batch.readInt8(MAGIC_POSITION);
  if (magic !== 2) {
    throw new RecordBatchError(
      magic === 0 || magic === 1 ? ErrorCode.UNSUPPORTED_VERSION : ErrorCode.CORRUPT_MESSAGE,
      magic === 0 || magic === 1
        ? `message format v${magic} found where a v2 record batch is required; read it with decodeLegacyMessageSet or ask the client to use Produce v3+`
        : `record batch magic ${magic} is not 2; the bytes are corrupt or from an unknown format`,
    );
  }
  if (batch.length < RECORD_BATCH_HEADER_BYTES) {
    throw corrupt(
      `record batch of ${batch.length} bytes is shorter than the ${RECORD_BATCH_HEADER_BYTES}-byte v2 header`,
    );
  }
  const attributes = batch.readInt16BE(ATTRIBUTES_POSITION);
  return {
    baseOffset: batch.readBigInt64BE(BASE_OFFSET_POSITION),
    batchLength: batch.readInt32BE(BATCH_LENGTH_POSITION),
    partitionLeaderEpoch: batch.readInt32BE(PARTITION_LEADER_EPOCH_POSITION),
    magic,
    crc: batch.readUInt32BE(CRC_POSITION),
    attributes,
    compression: attributes & COMPRESSION_CODEC_MASK,
    timestampType: attributes & TIMESTAMP_TYPE_MASK ? TimestampType.LogAppendTime : TimestampType.CreateTime,
    isTransactional: (attributes & TRANSACTIONAL_FLAG_MASK) !== 0,
    isControl: (attributes & CONTROL_FLAG_MASK) !== 0,
    hasDeleteHorizon: (attributes & DELETE_HORIZON_FLAG_MASK) !== 0,
    lastOffsetDelta: batch.readInt32BE(LAST_OFFSET_DELTA_POSITION),
    baseTimestamp: batch.readBigInt64BE(BASE_TIMESTAMP_POSITION),
    maxTimestamp: batch.readBigInt64BE(MAX_TIMESTAMP_POSITION),
    producerId: batch.readBigInt64BE(PRODUCER_ID_POSITION),
    producerEpoch: batch.readInt16BE(PRODUCER_EPOCH_POSITION),
    baseSequence: batch.readInt32BE(BASE_SEQUENCE_POSITION),
    recordCount: batch.readInt32BE(RECORD_COUNT_POSITION),
  };
}

/** CRC32C over attributes..end, the range the v2 batch CRC covers. */
export function computeBatchCrc(batch: Buffer): number {
  return crc32c(batch.subarray(ATTRIBUTES_POSITION));
}

export interface ValidateOptions {
  /**
   * Also apply Kafka's produce-time rules: at least one record, and `lastOffsetDelta + 1` equal to the
   * record count (a client batch has dense offsets; compacted batches read back from a log need not).
   */
  producedByClient?: boolean;
}

/**
 * Checks that `batch` is exactly one well-formed v2 record batch: length field, magic, CRC32C, counts.
 * Does not decompress or parse records, so it is cheap enough for every produced batch.
 */
export function validateRecordBatch(batch: Buffer, options: ValidateOptions = {}): RecordBatchHeader {
  const header = readRecordBatchHeader(batch);
  if (header.batchLength + LOG_OVERHEAD !== batch.length) {
    throw corrupt(
      `record batch declares ${header.batchLength + LOG_OVERHEAD} bytes but ${batch.length} were given; the batch is truncated or has trailing bytes`,
    );
  }
  const actualCrc = computeBatchCrc(batch);
  if (actualCrc !== header.crc) {
    throw corrupt(
      `record batch CRC32C mismatch (stored ${header.crc.toString(16)}, computed ${actualCrc.toString(16)}); the batch was corrupted in transit or by the client`,
    );
  }
  // From a client these are its mistake, not damage in transit: INVALID_RECORD, which it does not retry,
  // as Kafka answers; read from a log they are corruption.
  const invalid = (message: string) =>
    options.producedByClient ? new RecordBatchError(ErrorCode.INVALID_RECORD, message) : corrupt(message);
  if (header.recordCount < 0)
    throw invalid(
      `record batch has negative record count ${header.recordCount}; the client built a broken batch`,
    );
  if (header.lastOffsetDelta < 0)
    throw invalid(
      `record batch has negative lastOffsetDelta ${header.lastOffsetDelta}; the client built a broken batch`,
    );
  if (options.producedByClient) {
    if (header.recordCount === 0) {
      throw new RecordBatchError(
        ErrorCode.INVALID_RECORD,
        "record batch contains no records; send at least one",
      );
    }
    if (header.lastOffsetDelta + 1 !== header.recordCount) {
      throw new RecordBatchError(
        ErrorCode.INVALID_RECORD,
        `inconsistent batch: lastOffsetDelta ${header.lastOffsetDelta} implies ${header.lastOffsetDelta + 1} records but recordCount is ${header.recordCount}`,
      );
    }
    if (header.compression > CompressionType.Zstd) {
      throw new RecordBatchError(
        ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
        `record batch uses compression type ${header.compression}; supported are none, gzip, snappy, lz4 and zstd`,
      );
    }
  }
  return header;
}

/** Offset of the batch's last record. */
export function lastOffsetOf(header: RecordBatchHeader): bigint {
  return header.baseOffset + BigInt(header.lastOffsetDelta);
}

/** Rewrites baseOffset in place; the CRC does not cover it, so the batch stays valid. */
export function setBatchBaseOffset(batch: Buffer, baseOffset: bigint): void {
  batch.writeBigInt64BE(baseOffset, BASE_OFFSET_POSITION);
}

/** Rewrites partitionLeaderEpoch (Raftka: the Raft term) in place; not covered by the CRC. */
export function setBatchPartitionLeaderEpoch(batch: Buffer, epoch: number): void {
  batch.writeInt32BE(epoch, PARTITION_LEADER_EPOCH_POSITION);
}

/**
 * Marks the batch LogAppendTime and sets maxTimestamp to the broker's append time, as Kafka does for
 * topics with message.timestamp.type=LogAppendTime. Both fields are CRC-covered, so the CRC is rewritten.
 */
export function setBatchLogAppendTime(batch: Buffer, appendTime: bigint): void {
  batch.writeInt16BE(batch.readInt16BE(ATTRIBUTES_POSITION) | TIMESTAMP_TYPE_MASK, ATTRIBUTES_POSITION);
  batch.writeBigInt64BE(appendTime, MAX_TIMESTAMP_POSITION);
  batch.writeUInt32BE(computeBatchCrc(batch), CRC_POSITION);
}
