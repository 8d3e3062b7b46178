import { CorruptRecordError, RecordBatchTooLargeError } from "./errors.js";
import {
  BASE_OFFSET_POSITION,
  BATCH_LENGTH_POSITION,
  checkBatch,
  LAST_OFFSET_DELTA_POSITION,
  LOG_OVERHEAD,
  MAX_TIMESTAMP_POSITION,
  PARTITION_LEADER_EPOCH_POSITION,
  RECORD_COUNT_POSITION,
} from "./record-batch-header.js";

/** One batch of an append, located in the caller's buffer. */
export interface AppendBatch {
  position: number;
  sizeInBytes: number;
  /** As found in the bytes; replaced by the assigned offset in leader appends. */
  baseOffset: bigint;
  lastOffsetDelta: number;
  partitionLeaderEpoch: number;
  maxTimestamp: bigint;
  recordCount: number;
}

/**
 * Splits `records` into its batches, checking each one's framing (and CRC32C when asked). Reads only
 * fixed header positions: cost is per batch, never per record.
 */
export function parseAppendBatches(
  records: Buffer,
  verifyCrc: boolean,
  maxBatchBytes: number,
): AppendBatch[] {
  if (!Buffer.isBuffer(records)) {
    throw new CorruptRecordError("records must be a Buffer of whole record batches (v2)");
  }
  if (records.length === 0) {
    throw new CorruptRecordError("records are empty: an append needs at least one record batch");
  }
  const batches: AppendBatch[] = [];
  let position = 0;
  while (position < records.length) {
    const problem = checkBatch(records, position, records.length - position, verifyCrc);
    if (problem !== undefined) {
      throw new CorruptRecordError(
        `record batch ${batches.length} at byte ${position} of the append is invalid: ${problem}; ` +
          "the producer must resend whole, well-formed v2 batches",
      );
    }
    const sizeInBytes = records.readInt32BE(position + BATCH_LENGTH_POSITION) + LOG_OVERHEAD;
    if (sizeInBytes > maxBatchBytes) {
      throw new RecordBatchTooLargeError(
        `record batch ${batches.length} is ${sizeInBytes} bytes, larger than segment.bytes (${maxBatchBytes}); ` +
          "send smaller batches or raise segment.bytes for this topic",
      );
    }
    batches.push({
      position,
      sizeInBytes,
      baseOffset: records.readBigInt64BE(position + BASE_OFFSET_POSITION),
      lastOffsetDelta: records.readInt32BE(position + LAST_OFFSET_DELTA_POSITION),
      partitionLeaderEpoch: records.readInt32BE(position + PARTITION_LEADER_EPOCH_POSITION),
      maxTimestamp: records.readBigInt64BE(position + MAX_TIMESTAMP_POSITION),
      recordCount: records.readInt32BE(position + RECORD_COUNT_POSITION),
    });
    position += sizeInBytes;
  }
  return batches;
}
