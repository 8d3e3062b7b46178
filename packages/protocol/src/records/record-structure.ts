import { RECORD_BATCH_HEADER_BYTES, RECORD_COUNT_POSITION } from "./record-batch.js";

/**
 * Why the records of an uncompressed v2 batch do not add up, or undefined when they do: each record's
 * size prefix is a valid varint, the records tile the batch exactly to its end, and there are as many as
 * the header counts. The CRC only proves the client sent these bytes; a batch that passes it but not this
 * leaves a partition consumers stop at (kafkajs fails, librdkafka refetches forever) or burns offsets
 * for records that do not exist, and Kafka's LogValidator refuses it too.
 *
 * Only the size prefixes are read: one varint per record, about a hundredth of a millisecond per MiB
 * (the batch CRC costs about twice that). Parsing every field of every record, as Kafka does, costs four
 * times more on this hot path; a record whose fields are corrupt inside a correct size still gets through.
 */
export function uncompressedRecordsProblem(batch: Buffer): string | undefined {
  const count = batch.readInt32BE(RECORD_COUNT_POSITION);
  const end = batch.length;
  let at = RECORD_BATCH_HEADER_BYTES;
  for (let index = 0; index < count; index++) {
    if (at >= end) {
      return `the batch declares ${count} records but its bytes end after ${index}`;
    }
    const length = readVarint(batch, at, end);
    if (cursor < 0 || length <= 0 || cursor + length > end) {
      return `record ${index} at byte ${at} of the batch has an invalid size`;
    }
    at = cursor + length;
  }
  if (at !== end) {
    return `the batch declares ${count} records but ${end - at} bytes remain after them`;
  }
  return undefined;
}

/**
 * Where the last readVarint ended: the next field's position, or -1 when the varint ran past the end or
 * its 5 bytes. A module variable rather than a returned pair, so the walk allocates nothing.
 */
let cursor = 0;

/** A zigzag varint of at most 5 bytes at `at`; sets `cursor` past it (-1 when it runs past `end`). */
function readVarint(batch: Buffer, at: number, end: number): number {
  let raw = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (at >= end) break;
    const byte = batch[at++]!;
    raw |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) {
      cursor = at;
      return (raw >>> 1) ^ -(raw & 1);
    }
  }
  cursor = -1;
  return 0;
}
