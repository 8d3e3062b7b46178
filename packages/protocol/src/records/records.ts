import { ProtocolDecodeError } from "../codec/errors.js";
import { Reader } from "../codec/reader.js";
import { Writer } from "../codec/writer.js";
import { ErrorCode } from "../errors/error-codes.js";
import { CompressionType, compress, DEFAULT_MAX_DECOMPRESSED_BYTES, decompress } from "./compression.js";
import { corrupt, RecordBatchError } from "./errors.js";
import {
  ATTRIBUTES_POSITION,
  BASE_OFFSET_POSITION,
  BASE_SEQUENCE_POSITION,
  BASE_TIMESTAMP_POSITION,
  BATCH_LENGTH_POSITION,
  COMPRESSION_CODEC_MASK,
  CONTROL_FLAG_MASK,
  CRC_POSITION,
  computeBatchCrc,
  LAST_OFFSET_DELTA_POSITION,
  LOG_OVERHEAD,
  MAGIC_POSITION,
  MAX_TIMESTAMP_POSITION,
  NO_PARTITION_LEADER_EPOCH,
  NO_PRODUCER_EPOCH,
  NO_PRODUCER_ID,
  NO_SEQUENCE,
  PARTITION_LEADER_EPOCH_POSITION,
  PRODUCER_EPOCH_POSITION,
  PRODUCER_ID_POSITION,
  RECORD_BATCH_HEADER_BYTES,
  RECORD_COUNT_POSITION,
  type RecordBatchHeader,
  readRecordBatchHeader,
  TIMESTAMP_TYPE_MASK,
  TimestampType,
  TRANSACTIONAL_FLAG_MASK,
  validateRecordBatch,
} from "./record-batch.js";

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

/** One record of a v2 batch, with its absolute offset and timestamp resolved. */
export interface KafkaRecord {
  offset: bigint;
  /** CreateTime from the record, or the batch's maxTimestamp for LogAppendTime batches (as Kafka reports). */
  timestamp: bigint;
  /** Zero-copy view of the batch (or of its decompressed records) when present. */
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
  attributes: number;
  offsetDelta: number;
  timestampDelta: number;
}

export interface DecodedRecordBatch {
  header: RecordBatchHeader;
  records: KafkaRecord[];
}

export interface DecodeRecordsOptions {
  /** Check length and CRC32C before parsing (default true). */
  verify?: boolean;
  maxDecompressedBytes?: number;
}

/** Smallest possible record: length, attributes, timestamp/offset deltas, key/value lengths, header count. */
const MIN_RECORD_BYTES = 7;

/**
 * Decodes every record of one v2 batch, decompressing if needed. Meant for consumers, tools and tests;
 * the broker's produce and fetch paths never call it (they move batches as opaque bytes). Builds one
 * object per record: where a batch may hold millions (a few KB of zstd can), use openRecordBatch and
 * iterate.
 */
export function decodeRecordBatch(batch: Buffer, options: DecodeRecordsOptions = {}): DecodedRecordBatch {
  const opened = openRecordBatch(batch, options);
  const records: KafkaRecord[] = [];
  for (const record of opened.records()) records.push(record);
  return { header: opened.header, records };
}

/** One v2 batch, checked and decompressed, whose records are read one at a time. */
export interface OpenedRecordBatch {
  header: RecordBatchHeader;
  /** The decompressed records section (the batch's own bytes when uncompressed). */
  payload: Buffer;
  /**
   * The records in order, each parsed when asked for, so a caller that stops early never reads the
   * rest and memory does not grow with the record count. Throws CORRUPT_MESSAGE at the first malformed
   * record, or at the end if bytes are left over after the last one.
   */
  records(): Generator<KafkaRecord, void, undefined>;
  /**
   * Each record's offset and timestamp (as numbers), reading nothing else: several times cheaper than
   * records() for searches by time. Checks each record's length fits, not the fields it skips.
   */
  offsetsAndTimestamps(): Generator<RecordTime, void, undefined>;
}

export interface RecordTime {
  offset: number;
  /** As KafkaRecord.timestamp: the batch's maxTimestamp for LogAppendTime batches. */
  timestamp: number;
}

/**
 * Checks (unless `verify: false`) and decompresses one v2 batch, within the decompressed-size limit,
 * and refuses a record count its bytes cannot hold (every record takes at least 7 bytes). Records are
 * not parsed until iterated.
 */
export function openRecordBatch(batch: Buffer, options: DecodeRecordsOptions = {}): OpenedRecordBatch {
  const header = options.verify === false ? readRecordBatchHeader(batch) : validateRecordBatch(batch);
  const end =
    options.verify === false ? Math.min(batch.length, header.batchLength + LOG_OVERHEAD) : batch.length;
  const section = batch.subarray(RECORD_BATCH_HEADER_BYTES, Math.max(end, RECORD_BATCH_HEADER_BYTES));
  // Uncompressed, the section itself bounds the count: no need to look further.
  if (header.recordCount < 0 || header.recordCount * MIN_RECORD_BYTES > recordBytesBound(header, section)) {
    throw corrupt(
      `record batch claims ${header.recordCount} records but its ${section.length} record bytes cannot hold them`,
    );
  }
  const payload = decompress(
    header.compression,
    section,
    options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES,
  );
  if (header.recordCount * MIN_RECORD_BYTES > payload.length) {
    throw corrupt(
      `record batch claims ${header.recordCount} records but its ${payload.length} decompressed record bytes cannot hold them`,
    );
  }
  return {
    header,
    payload,
    records: () => readRecords(header, payload),
    offsetsAndTimestamps: () => readRecordTimes(header, payload),
  };
}

function* readRecordTimes(
  header: RecordBatchHeader,
  payload: Buffer,
): Generator<RecordTime, void, undefined> {
  const reader = new Reader(payload);
  const baseOffset = Number(header.baseOffset);
  const baseTimestamp = Number(header.baseTimestamp);
  const appendTime =
    header.timestampType === TimestampType.LogAppendTime ? Number(header.maxTimestamp) : null;
  for (let i = 0; i < header.recordCount; i++) {
    let time: RecordTime;
    try {
      const length = reader.varint();
      if (length < 0 || length > reader.remaining) {
        reader.fail(`record length ${length} does not fit in the ${reader.remaining} remaining bytes`);
      }
      const end = reader.offset + length;
      reader.int8();
      const timestampDelta = reader.varlong();
      const offsetDelta = reader.varint();
      if (reader.offset > end) reader.fail(`record declares ${length} bytes but its fields use more`);
      reader.offset = end;
      time = { offset: baseOffset + offsetDelta, timestamp: appendTime ?? baseTimestamp + timestampDelta };
    } catch (error) {
      if (error instanceof ProtocolDecodeError) {
        throw corrupt(
          `record ${i} of the batch at offset ${header.baseOffset} is malformed: ${error.message}`,
        );
      }
      throw error;
    }
    yield time;
  }
}

function recordBytesBound(header: RecordBatchHeader, section: Buffer): number {
  return header.compression === CompressionType.None ? section.length : Number.MAX_SAFE_INTEGER;
}

function* readRecords(header: RecordBatchHeader, payload: Buffer): Generator<KafkaRecord, void, undefined> {
  const reader = new Reader(payload);
  for (let i = 0; i < header.recordCount; i++) {
    let record: KafkaRecord;
    try {
      record = readRecord(reader, header);
    } catch (error) {
      if (error instanceof ProtocolDecodeError) {
        throw corrupt(
          `record ${i} of the batch at offset ${header.baseOffset} is malformed: ${error.message}`,
        );
      }
      throw error;
    }
    yield record;
  }
  if (reader.remaining !== 0) {
    throw corrupt(`record batch has ${reader.remaining} bytes after its ${header.recordCount} records`);
  }
}

/**
 * The same batch with its records section compressed with `compression` instead (as a topic's
 * compression.type asks), every header field kept. Each record is parsed first, so a malformed one is
 * refused as Kafka's recompression would, but the records are moved as bytes, never all held as objects.
 */
export function recompressRecordBatch(
  batch: Buffer,
  compression: CompressionType,
  options: DecodeRecordsOptions = {},
): Buffer {
  const opened = openRecordBatch(batch, options);
  for (const _record of opened.records()) {
    // Parsing is the check; nothing is kept.
  }
  const section = compress(compression, opened.payload);
  const result = Buffer.allocUnsafe(RECORD_BATCH_HEADER_BYTES + section.length);
  batch.copy(result, 0, 0, RECORD_BATCH_HEADER_BYTES);
  result.writeInt32BE(result.length - LOG_OVERHEAD, BATCH_LENGTH_POSITION);
  result.writeInt16BE(
    (opened.header.attributes & ~COMPRESSION_CODEC_MASK) | compression,
    ATTRIBUTES_POSITION,
  );
  section.copy(result, RECORD_BATCH_HEADER_BYTES);
  result.writeUInt32BE(computeBatchCrc(result), CRC_POSITION);
  return result;
}

function readRecord(reader: Reader, header: RecordBatchHeader): KafkaRecord {
  const length = reader.varint();
  if (length < 0 || length > reader.remaining) {
    reader.fail(`record length ${length} does not fit in the ${reader.remaining} remaining bytes`);
  }
  const end = reader.offset + length;
  const attributes = reader.int8();
  const timestampDelta = reader.varlong();
  const offsetDelta = reader.varint();
  const key = readVarintBytes(reader);
  const value = readVarintBytes(reader);
  const headerCount = reader.varint();
  if (headerCount < 0 || headerCount * 2 > end - reader.offset) {
    reader.fail(`record claims ${headerCount} headers but has ${end - reader.offset} bytes left`);
  }
  const headers: RecordHeader[] = [];
  for (let i = 0; i < headerCount; i++) {
    const keyLength = reader.varint();
    if (keyLength < 0) reader.fail(`record header key has invalid length ${keyLength}`);
    const headerKey = reader.raw(keyLength).toString("utf8");
    headers.push({ key: headerKey, value: readVarintBytes(reader) });
  }
  if (reader.offset !== end) {
    reader.fail(`record declares ${length} bytes but its fields use ${length + (reader.offset - end)}`);
  }
  return {
    offset: header.baseOffset + BigInt(offsetDelta),
    timestamp:
      header.timestampType === TimestampType.LogAppendTime
        ? header.maxTimestamp
        : header.baseTimestamp + BigInt(timestampDelta),
    key,
    value,
    headers,
    attributes,
    offsetDelta,
    timestampDelta,
  };
}

function readVarintBytes(reader: Reader): Buffer | null {
  const length = reader.varint();
  if (length === -1) return null;
  if (length < -1) reader.fail(`byte field has invalid length ${length}`);
  return reader.raw(length);
}

export type Bytes = Buffer | string;

export interface RecordInput {
  key?: Bytes | null;
  value: Bytes | null;
  headers?: { key: string; value: Bytes | null }[];
  /** Milliseconds since the epoch; the caller supplies it (no clock is read here). */
  timestamp: bigint | number;
  /** Defaults to the record's index in the batch. */
  offsetDelta?: number;
}

export interface RecordBatchInput {
  records: RecordInput[];
  compression?: CompressionType;
  baseOffset?: bigint;
  partitionLeaderEpoch?: number;
  timestampType?: TimestampType;
  isTransactional?: boolean;
  isControl?: boolean;
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
  /** Defaults to the first record's timestamp (Kafka's choice), or -1 with no records. */
  baseTimestamp?: bigint;
  /** Defaults to the largest record timestamp, or -1 with no records. */
  maxTimestamp?: bigint;
  /** Defaults to the last record's offsetDelta. */
  lastOffsetDelta?: number;
}

const toBuffer = (bytes: Bytes): Buffer => (typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes);

function writeVarintBytes(writer: Writer, bytes: Buffer | null): void {
  if (bytes === null) {
    writer.varint(-1);
    return;
  }
  writer.varint(bytes.length);
  writer.raw(bytes);
}

/** Encoded size of a zig-zag varint; records are length-prefixed, so sizes are computed before writing. */
function varintSize(value: number): number {
  let zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
  let size = 1;
  while (zigzag >= 0x80) {
    zigzag >>>= 7;
    size++;
  }
  return size;
}

function varlongSize(value: number): number {
  let zigzag = value >= 0 ? value * 2 : -value * 2 - 1;
  let size = 1;
  while (zigzag >= 0x80) {
    zigzag = Math.floor(zigzag / 128);
    size++;
  }
  return size;
}

function bytesSize(bytes: Buffer | null): number {
  return bytes === null ? 1 : varintSize(bytes.length) + bytes.length;
}

/** Builds a complete, CRC-stamped v2 record batch. */
export function encodeRecordBatch(input: RecordBatchInput): Buffer {
  const timestamps = input.records.map((record) => BigInt(record.timestamp));
  const baseTimestamp = input.baseTimestamp ?? timestamps[0] ?? -1n;
  let maxTimestamp = input.maxTimestamp;
  if (maxTimestamp === undefined) {
    maxTimestamp = timestamps[0] ?? -1n;
    for (const timestamp of timestamps) if (timestamp > maxTimestamp) maxTimestamp = timestamp;
  }

  const body = new Writer(256);
  input.records.forEach((record, index) => {
    const offsetDelta = record.offsetDelta ?? index;
    const timestampDelta = Number(timestamps[index]! - baseTimestamp);
    const key = record.key === null || record.key === undefined ? null : toBuffer(record.key);
    const value = record.value === null ? null : toBuffer(record.value);
    const headers = (record.headers ?? []).map((header) => ({
      key: Buffer.from(header.key, "utf8"),
      value: header.value === null ? null : toBuffer(header.value),
    }));
    let size =
      1 +
      varlongSize(timestampDelta) +
      varintSize(offsetDelta) +
      bytesSize(key) +
      bytesSize(value) +
      varintSize(headers.length);
    for (const header of headers) size += bytesSize(header.key) + bytesSize(header.value);
    body.varint(size);
    body.int8(0);
    body.varlong(timestampDelta);
    body.varint(offsetDelta);
    writeVarintBytes(body, key);
    writeVarintBytes(body, value);
    body.varint(headers.length);
    for (const header of headers) {
      writeVarintBytes(body, header.key);
      writeVarintBytes(body, header.value);
    }
  });
  const compression = input.compression ?? CompressionType.None;
  const section = compress(compression, body.toBuffer());

  const batch = Buffer.allocUnsafe(RECORD_BATCH_HEADER_BYTES + section.length);
  let attributes = compression;
  if (input.timestampType === TimestampType.LogAppendTime) attributes |= TIMESTAMP_TYPE_MASK;
  if (input.isTransactional) attributes |= TRANSACTIONAL_FLAG_MASK;
  if (input.isControl) attributes |= CONTROL_FLAG_MASK;
  const lastRecord = input.records[input.records.length - 1];
  const lastOffsetDelta =
    input.lastOffsetDelta ?? (lastRecord ? (lastRecord.offsetDelta ?? input.records.length - 1) : 0);

  batch.writeBigInt64BE(input.baseOffset ?? 0n, BASE_OFFSET_POSITION);
  batch.writeInt32BE(batch.length - LOG_OVERHEAD, BATCH_LENGTH_POSITION);
  batch.writeInt32BE(
    input.partitionLeaderEpoch ?? NO_PARTITION_LEADER_EPOCH,
    PARTITION_LEADER_EPOCH_POSITION,
  );
  batch.writeInt8(2, MAGIC_POSITION);
  batch.writeInt16BE(attributes, ATTRIBUTES_POSITION);
  batch.writeInt32BE(lastOffsetDelta, LAST_OFFSET_DELTA_POSITION);
  batch.writeBigInt64BE(baseTimestamp, BASE_TIMESTAMP_POSITION);
  batch.writeBigInt64BE(maxTimestamp, MAX_TIMESTAMP_POSITION);
  batch.writeBigInt64BE(input.producerId ?? NO_PRODUCER_ID, PRODUCER_ID_POSITION);
  batch.writeInt16BE(input.producerEpoch ?? NO_PRODUCER_EPOCH, PRODUCER_EPOCH_POSITION);
  batch.writeInt32BE(input.baseSequence ?? NO_SEQUENCE, BASE_SEQUENCE_POSITION);
  batch.writeInt32BE(input.records.length, RECORD_COUNT_POSITION);
  section.copy(batch, RECORD_BATCH_HEADER_BYTES);
  batch.writeUInt32BE(computeBatchCrc(batch), CRC_POSITION);
  return batch;
}

// ---------------------------------------------------------------------------------------------
// Control records (attributes bit 5): key = version int16 + type int16.
// ---------------------------------------------------------------------------------------------

/** Kafka's control record types. Raftka's own Raft control types are defined above these by packages/raft. */
export const ControlRecordType = {
  ABORT: 0,
  COMMIT: 1,
  LEADER_CHANGE: 2,
  SNAPSHOT_HEADER: 3,
  SNAPSHOT_FOOTER: 4,
  KRAFT_VERSION: 5,
  KRAFT_VOTERS: 6,
} as const;

export function encodeControlRecordKey(type: number, version = 0): Buffer {
  const key = Buffer.allocUnsafe(4);
  key.writeInt16BE(version, 0);
  key.writeInt16BE(type, 2);
  return key;
}

export function decodeControlRecordKey(key: Buffer | null): { version: number; type: number } {
  if (key === null || key.length < 4) {
    throw corrupt(
      `control record key must hold version and type (4 bytes), got ${key === null ? "null" : key.length}`,
    );
  }
  return { version: key.readInt16BE(0), type: key.readInt16BE(2) };
}

/** Value of a COMMIT/ABORT marker: version int16 + coordinatorEpoch int32. */
export function encodeEndTransactionMarkerValue(coordinatorEpoch: number, version = 0): Buffer {
  const value = Buffer.allocUnsafe(6);
  value.writeInt16BE(version, 0);
  value.writeInt32BE(coordinatorEpoch, 2);
  return value;
}

export function decodeEndTransactionMarkerValue(value: Buffer | null): {
  version: number;
  coordinatorEpoch: number;
} {
  if (value === null || value.length < 6) {
    throw corrupt(
      `transaction marker value must hold version and coordinator epoch (6 bytes), got ${value === null ? "null" : value.length}`,
    );
  }
  return { version: value.readInt16BE(0), coordinatorEpoch: value.readInt32BE(2) };
}

export interface EndTransactionMarkerInput {
  commit: boolean;
  producerId: bigint;
  producerEpoch: number;
  coordinatorEpoch: number;
  timestamp: bigint | number;
  baseOffset?: bigint;
  partitionLeaderEpoch?: number;
}

/** A complete COMMIT or ABORT marker batch, as the transaction coordinator writes into each partition. */
export function encodeEndTransactionMarker(input: EndTransactionMarkerInput): Buffer {
  if (input.producerId < 0n) {
    throw new RecordBatchError(
      ErrorCode.INVALID_RECORD,
      "a transaction marker needs the transaction's producer id (>= 0)",
    );
  }
  return encodeRecordBatch({
    records: [
      {
        key: encodeControlRecordKey(input.commit ? ControlRecordType.COMMIT : ControlRecordType.ABORT),
        value: encodeEndTransactionMarkerValue(input.coordinatorEpoch),
        timestamp: input.timestamp,
      },
    ],
    isControl: true,
    isTransactional: true,
    producerId: input.producerId,
    producerEpoch: input.producerEpoch,
    ...(input.baseOffset === undefined ? {} : { baseOffset: input.baseOffset }),
    ...(input.partitionLeaderEpoch === undefined ? {} : { partitionLeaderEpoch: input.partitionLeaderEpoch }),
  });
}
