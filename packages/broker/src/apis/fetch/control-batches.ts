import {
  ATTRIBUTES_POSITION,
  BATCH_LENGTH_POSITION,
  CONTROL_FLAG_MASK,
  ControlRecordType,
  CRC_POSITION,
  computeBatchCrc,
  LOG_OVERHEAD,
  RECORD_BATCH_HEADER_BYTES,
  RECORD_COUNT_POSITION,
} from "@raftka/protocol";

export interface VisibleRecords {
  /** The records to send: the input itself unless a batch had to be replaced. */
  readonly records: Buffer;
  /** Records in data batches (control batches do not count), for the fetched-records metric. */
  readonly recordCount: number;
}

/** Reads an unsigned varint at `position`; returns the value and the position after it, or undefined past `end`. */
function readVarint(
  buffer: Buffer,
  position: number,
  end: number,
): { value: number; next: number } | undefined {
  let raw = 0;
  let shift = 0;
  for (let cursor = position; cursor < end && shift <= 28; cursor++) {
    const byte = buffer[cursor]!;
    raw |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return { value: (raw >>> 1) ^ -(raw & 1), next: cursor + 1 };
    shift += 7;
  }
  return undefined;
}

/** Position after the varint (or varlong) at `position`, or undefined if it runs past `end`. */
function skipVarint(buffer: Buffer, position: number, end: number): number | undefined {
  for (let cursor = position; cursor < end && cursor < position + 10; cursor++) {
    if ((buffer[cursor]! & 0x80) === 0) return cursor + 1;
  }
  return undefined;
}

/**
 * The control record type of a control batch's first record, or undefined if it cannot be read. Control
 * batches are never compressed, so the key is at a fixed walk from the header: record length, attributes,
 * timestamp delta, offset delta, key length, then the key (version int16, type int16).
 */
function controlRecordType(batch: Buffer): number | undefined {
  const end = batch.length;
  let position: number | undefined = skipVarint(batch, RECORD_BATCH_HEADER_BYTES, end);
  if (position === undefined) return undefined;
  position = skipVarint(batch, position + 1, end);
  if (position === undefined) return undefined;
  position = skipVarint(batch, position, end);
  if (position === undefined) return undefined;
  const keyLength = readVarint(batch, position, end);
  if (!keyLength || keyLength.value < 4 || keyLength.next + 4 > end) return undefined;
  return batch.readInt16BE(keyLength.next + 2);
}

/** A control batch with no records covering the same offsets: consumers step over it without seeing anything. */
export function emptyControlBatch(batch: Buffer): Buffer {
  const empty = Buffer.from(batch.subarray(0, RECORD_BATCH_HEADER_BYTES));
  empty.writeInt32BE(RECORD_BATCH_HEADER_BYTES - LOG_OVERHEAD, BATCH_LENGTH_POSITION);
  empty.writeInt32BE(0, RECORD_COUNT_POSITION);
  empty.writeUInt32BE(computeBatchCrc(empty), CRC_POSITION);
  return empty;
}

/**
 * Consumers must never see Raft's own entries (leader no-ops, membership changes), which are control batches
 * with control record types other than Kafka's transaction markers. Java clients, kafkajs and librdkafka skip
 * control batches, but kafka-python 2.0.2 hands their records to the application, so each such batch is
 * replaced by an empty control batch over the same offsets (kafka-python moves on by its lastOffsetDelta).
 * Transaction markers (COMMIT/ABORT) are passed on: read_committed consumers need them.
 */
export function hideInternalControlBatches(records: Buffer): VisibleRecords {
  let recordCount = 0;
  let parts: Buffer[] | undefined;
  let copiedUpTo = 0;
  let position = 0;
  while (position + RECORD_BATCH_HEADER_BYTES <= records.length) {
    const size = records.readInt32BE(position + BATCH_LENGTH_POSITION) + LOG_OVERHEAD;
    if (size < RECORD_BATCH_HEADER_BYTES || position + size > records.length) break;
    const attributes = records.readInt16BE(position + ATTRIBUTES_POSITION);
    if ((attributes & CONTROL_FLAG_MASK) === 0) {
      recordCount += records.readInt32BE(position + RECORD_COUNT_POSITION);
    } else {
      const batch = records.subarray(position, position + size);
      const type = controlRecordType(batch);
      const isTransactionMarker = type === ControlRecordType.ABORT || type === ControlRecordType.COMMIT;
      if (!isTransactionMarker && batch.readInt32BE(RECORD_COUNT_POSITION) !== 0) {
        parts ??= [];
        parts.push(records.subarray(copiedUpTo, position), emptyControlBatch(batch));
        copiedUpTo = position + size;
      }
    }
    position += size;
  }
  if (!parts) return { records, recordCount };
  parts.push(records.subarray(copiedUpTo));
  return { records: Buffer.concat(parts), recordCount };
}
