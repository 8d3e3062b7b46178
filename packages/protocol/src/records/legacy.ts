import crc from "@node-rs/crc32";
import { CompressionType, DEFAULT_MAX_DECOMPRESSED_BYTES, decompress } from "./compression.js";
import { corrupt } from "./errors.js";
import { LOG_OVERHEAD, TimestampType } from "./record-batch.js";
import { encodeRecordBatch, type RecordBatchInput } from "./records.js";

/**
 * A message of the pre-0.11 formats (magic 0 and 1). Offsets of messages inside a compressed wrapper
 * are resolved to absolute offsets; for magic 1 the wrapper's offset is that of its last inner message.
 */
export interface LegacyMessage {
  offset: bigint;
  magic: 0 | 1;
  attributes: number;
  compression: number;
  timestampType: TimestampType;
  /** -1 for magic 0, which has no timestamp. */
  timestamp: bigint;
  key: Buffer | null;
  value: Buffer | null;
}

// Layout: offset int64, size int32, crc uint32, magic int8, attributes int8, [timestamp int64], key, value.
const CRC_START = 16;
/** crc, magic, attributes, key length, value length: the smallest message after the size field. */
const MIN_MESSAGE_SIZE = 14;

export interface LegacyDecodeOptions {
  maxDecompressedBytes?: number;
}

/**
 * Decodes a message set of magic 0/1 messages, unwrapping compressed wrappers (one level, as Kafka
 * allows). A truncated final message is ignored, as Kafka does in fetch responses; anything else
 * malformed, including a CRC mismatch or a v2 batch in the set, throws CORRUPT_MESSAGE.
 */
export function decodeLegacyMessageSet(
  messageSet: Buffer,
  options: LegacyDecodeOptions = {},
): LegacyMessage[] {
  return readSet(messageSet, options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES, null);
}

function readSet(set: Buffer, maxBytes: number, wrapper: LegacyMessage | null): LegacyMessage[] {
  const messages: LegacyMessage[] = [];
  let position = 0;
  while (set.length - position >= LOG_OVERHEAD) {
    const size = set.readInt32BE(position + 8);
    if (size < MIN_MESSAGE_SIZE) {
      throw corrupt(
        `legacy message at byte ${position} declares size ${size}, too small for any message`,
        position,
      );
    }
    if (size > set.length - position - LOG_OVERHEAD) break;
    const message = set.subarray(position, position + LOG_OVERHEAD + size);
    const decoded = readMessage(message, position);
    position += message.length;
    if (decoded.compression === CompressionType.None) {
      messages.push(decoded);
      continue;
    }
    if (wrapper !== null)
      throw corrupt(`compressed message nested inside a compressed message at byte ${position}`);
    if (decoded.value === null) throw corrupt(`compressed wrapper message at byte ${position} has no value`);
    const inner = readSet(decompress(decoded.compression, decoded.value, maxBytes), maxBytes, decoded);
    // A loop, not push(...inner): spreading 100k+ messages as arguments overflows the call stack.
    for (const message of resolveInnerOffsets(decoded, inner)) messages.push(message);
  }
  return messages;
}

function resolveInnerOffsets(wrapper: LegacyMessage, inner: LegacyMessage[]): LegacyMessage[] {
  if (wrapper.magic === 0 || inner.length === 0) return inner;
  // Magic 1 wrappers carry the absolute offset of the last inner message; inner offsets are relative.
  const lastRelative = inner[inner.length - 1]!.offset;
  return inner.map((message) => ({
    ...message,
    offset: wrapper.offset - lastRelative + message.offset,
    timestamp: wrapper.timestampType === TimestampType.LogAppendTime ? wrapper.timestamp : message.timestamp,
    timestampType: wrapper.timestampType,
  }));
}

function readMessage(message: Buffer, position: number): LegacyMessage {
  const magic = message.readInt8(16);
  if (magic !== 0 && magic !== 1) {
    throw corrupt(
      `entry at byte ${position} has magic ${magic} inside a legacy message set; v2 batches and message sets cannot be mixed`,
      position,
    );
  }
  const storedCrc = message.readUInt32BE(12);
  const actualCrc = crc.crc32(message.subarray(CRC_START)) >>> 0;
  if (storedCrc !== actualCrc) {
    throw corrupt(
      `legacy message at byte ${position} fails its CRC32 check (stored ${storedCrc.toString(16)}, computed ${actualCrc.toString(16)})`,
      position,
    );
  }
  const attributes = message.readInt8(17);
  let cursor = 18;
  let timestamp = -1n;
  if (magic === 1) {
    if (message.length < cursor + 8)
      throw corrupt(`magic 1 message at byte ${position} is too short for its timestamp`, position);
    timestamp = message.readBigInt64BE(cursor);
    cursor += 8;
  }
  const key = readBytes(message, cursor, position);
  cursor = key.next;
  const value = readBytes(message, cursor, position);
  if (value.next !== message.length) {
    throw corrupt(
      `legacy message at byte ${position} has ${message.length - value.next} unexpected trailing bytes`,
      position,
    );
  }
  return {
    offset: message.readBigInt64BE(0),
    magic,
    attributes,
    compression: attributes & 0x07,
    timestampType: magic === 1 && attributes & 0x08 ? TimestampType.LogAppendTime : TimestampType.CreateTime,
    timestamp,
    key: key.bytes,
    value: value.bytes,
  };
}

function readBytes(
  message: Buffer,
  cursor: number,
  position: number,
): { bytes: Buffer | null; next: number } {
  if (message.length < cursor + 4)
    throw corrupt(`legacy message at byte ${position} is cut off inside a length`, position);
  const length = message.readInt32BE(cursor);
  if (length === -1) return { bytes: null, next: cursor + 4 };
  if (length < 0 || length > message.length - cursor - 4) {
    throw corrupt(`legacy message at byte ${position} has an invalid key/value length ${length}`, position);
  }
  return { bytes: message.subarray(cursor + 4, cursor + 4 + length), next: cursor + 4 + length };
}

/**
 * Converts a legacy message set into one v2 batch, as Kafka's broker up-converts old produce requests.
 * Offsets become dense deltas from the first message (the broker assigns real offsets on append);
 * magic 0 messages have no timestamp and get -1 (Kafka's NO_TIMESTAMP).
 */
export function convertLegacyMessageSet(
  messageSet: Buffer,
  options: Omit<RecordBatchInput, "records" | "baseOffset"> & LegacyDecodeOptions = {},
): Buffer {
  const messages = decodeLegacyMessageSet(messageSet, options);
  if (messages.length === 0) throw corrupt("legacy message set holds no complete message to convert");
  const baseOffset = messages[0]!.offset;
  const { maxDecompressedBytes: _ignored, ...batchOptions } = options;
  return encodeRecordBatch({
    ...batchOptions,
    baseOffset,
    records: messages.map((message) => ({
      key: message.key,
      value: message.value,
      timestamp: message.timestamp,
    })),
  });
}
