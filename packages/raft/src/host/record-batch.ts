import { crc32c } from "@raftka/crc32c";
import {
  ATTRIBUTES_POSITION,
  BATCH_HEADER_SIZE,
  CRC_POSITION,
  LOG_OVERHEAD,
  readBatchHeader,
  stampBatch,
} from "@raftka/storage";
import type { ClusterConfig, Entry } from "../core/types.js";

/**
 * Control record types. Kafka uses 0 (abort) and 1 (commit) for transaction markers; KRaft uses
 * 2 LeaderChange, 5 KRaftVersion, 6 KRaftVoters. Raftka reuses the two that fit:
 * - a new leader's `noop` entry is a LeaderChange control record (value: Raftka's, see below);
 * - a `config` entry is a KRaftVoters control record.
 * Both are one-record control batches (attributes bit 5), which every Kafka consumer skips.
 */
export const CONTROL_TYPE_LEADER_CHANGE = 2;
export const CONTROL_TYPE_VOTERS = 6;
const CONTROL_ATTRIBUTE = 0x20;
const RAFTKA_VALUE_VERSION = 0;

export class RaftBatchError extends Error {
  override name = "RaftBatchError";
}

export interface BatchRecord {
  readonly key: Uint8Array | null;
  readonly value: Uint8Array | null;
}

/** A minimal, uncompressed record batch v2 (control entries, tests and benchmarks). */
export function encodeRecordBatch(options: {
  baseOffset: number;
  leaderEpoch: number;
  timestamp: number;
  control?: boolean;
  records: readonly BatchRecord[];
}): Buffer {
  const recordBytes: Buffer[] = options.records.map((record, index) => encodeRecord(record, index));
  const body = Buffer.concat(recordBytes);
  const batch = Buffer.alloc(BATCH_HEADER_SIZE + body.length);
  batch.writeBigInt64BE(BigInt(options.baseOffset), 0);
  batch.writeInt32BE(batch.length - LOG_OVERHEAD, 8);
  batch.writeInt32BE(options.leaderEpoch, 12);
  batch.writeInt8(2, 16);
  batch.writeInt16BE(options.control ? CONTROL_ATTRIBUTE : 0, ATTRIBUTES_POSITION);
  batch.writeInt32BE(options.records.length - 1, 23);
  batch.writeBigInt64BE(BigInt(options.timestamp), 27);
  batch.writeBigInt64BE(BigInt(options.timestamp), 35);
  batch.writeBigInt64BE(-1n, 43);
  batch.writeInt16BE(-1, 51);
  batch.writeInt32BE(-1, 53);
  batch.writeInt32BE(options.records.length, 57);
  body.copy(batch, BATCH_HEADER_SIZE);
  batch.writeUInt32BE(crc32c(batch.subarray(ATTRIBUTES_POSITION)), CRC_POSITION);
  return batch;
}

/**
 * The bytes an entry is stored as. A data entry's payload is the client's batch: its base offset and
 * leader epoch are stamped in place (not covered by the CRC). Other kinds become control batches.
 */
export function batchForEntry(entry: Entry, timestamp: number): Buffer {
  if (entry.kind === "data") {
    const payload = entry.payload;
    if (payload === undefined || payload.byteLength < BATCH_HEADER_SIZE) {
      throw new RaftBatchError(
        `data entry [${entry.firstOffset}, ${entry.lastOffset}] does not hold a record batch; propose whole v2 batches`,
      );
    }
    const batch = Buffer.isBuffer(payload)
      ? payload
      : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const size = batch.readInt32BE(8) + LOG_OVERHEAD;
    const lastOffsetDelta = batch.readInt32BE(23);
    if (size !== batch.length || lastOffsetDelta !== entry.lastOffset - entry.firstOffset) {
      throw new RaftBatchError(
        `data entry [${entry.firstOffset}, ${entry.lastOffset}] holds a batch of ${size} bytes (payload ${batch.length}) with lastOffsetDelta ${lastOffsetDelta}; propose one whole batch per entry with recordCount = lastOffsetDelta + 1`,
      );
    }
    stampBatch(batch, 0, entry.firstOffset, entry.term);
    return batch;
  }
  const value =
    entry.kind === "config" ? encodeVotersValue(entry.config!) : Buffer.from([0, RAFTKA_VALUE_VERSION]);
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(entry.kind === "config" ? CONTROL_TYPE_VOTERS : CONTROL_TYPE_LEADER_CHANGE, 2);
  return encodeRecordBatch({
    baseOffset: entry.firstOffset,
    leaderEpoch: entry.term,
    timestamp,
    control: true,
    records: [{ key, value }],
  });
}

/** Decode one stored batch back into the entry the core sees. */
export function entryFromBatch(batch: Buffer): Entry {
  const header = readBatchHeader(batch, 0);
  const firstOffset = header.baseOffset;
  const lastOffset = firstOffset + header.lastOffsetDelta;
  const term = header.partitionLeaderEpoch;
  if (!header.isControl) {
    return { firstOffset, lastOffset, term, kind: "data", payload: batch, config: undefined };
  }
  const record = decodeFirstRecord(batch);
  const type = record.key !== null && record.key.length >= 4 ? record.key.readInt16BE(2) : -1;
  if (type === CONTROL_TYPE_VOTERS) {
    return {
      firstOffset,
      lastOffset,
      term,
      kind: "config",
      payload: undefined,
      config: decodeVotersValue(record.value),
    };
  }
  // LeaderChange, and control batches Raftka did not write (transaction markers), replicate as no-ops:
  // the core never interprets them.
  if (type === CONTROL_TYPE_LEADER_CHANGE) {
    return { firstOffset, lastOffset, term, kind: "noop", payload: undefined, config: undefined };
  }
  return { firstOffset, lastOffset, term, kind: "data", payload: batch, config: undefined };
}

/** Split a buffer of whole batches (a log read) into batches. */
export function splitBatches(records: Buffer): Buffer[] {
  const batches: Buffer[] = [];
  let position = 0;
  while (position + LOG_OVERHEAD <= records.length) {
    const size = records.readInt32BE(position + 8) + LOG_OVERHEAD;
    if (position + size > records.length) break;
    batches.push(records.subarray(position, position + size));
    position += size;
  }
  return batches;
}

// KRaftVoters value in Raftka's encoding: version int16 | voter count int32 | voter ids int32... |
// learner count int32 | learner ids int32... (KRaft's own schema carries directory ids and endpoints
// Raftka does not have).
function encodeVotersValue(config: ClusterConfig): Buffer {
  const value = Buffer.alloc(2 + 4 + 4 * config.voters.length + 4 + 4 * config.learners.length);
  let position = value.writeInt16BE(RAFTKA_VALUE_VERSION, 0);
  position = value.writeInt32BE(config.voters.length, position);
  for (const node of config.voters) position = value.writeInt32BE(node, position);
  position = value.writeInt32BE(config.learners.length, position);
  for (const node of config.learners) position = value.writeInt32BE(node, position);
  return value;
}

function decodeVotersValue(value: Buffer | null): ClusterConfig {
  if (value === null || value.length < 10)
    throw new RaftBatchError("KRaftVoters control record has no Raftka value");
  let position = 2;
  const read = (): number => {
    if (position + 4 > value.length) throw new RaftBatchError("KRaftVoters control record is truncated");
    const result = value.readInt32BE(position);
    position += 4;
    return result;
  };
  const voters = Array.from({ length: read() }, read);
  const learners = Array.from({ length: read() }, read);
  return { voters, learners };
}

function encodeRecord(record: BatchRecord, offsetDelta: number): Buffer {
  const head: number[] = [0]; // attributes
  zigzagVarint(head, 0); // timestampDelta
  zigzagVarint(head, offsetDelta);
  zigzagVarint(head, record.key === null ? -1 : record.key.byteLength);
  const middle: number[] = [];
  zigzagVarint(middle, record.value === null ? -1 : record.value.byteLength);
  const tail: number[] = [];
  zigzagVarint(tail, 0); // header count
  const parts = [
    Buffer.from(head),
    record.key ?? Buffer.alloc(0),
    Buffer.from(middle),
    record.value ?? Buffer.alloc(0),
    Buffer.from(tail),
  ];
  const bodyLength = parts.reduce((sum, part) => sum + part.byteLength, 0);
  const length: number[] = [];
  zigzagVarint(length, bodyLength);
  return Buffer.concat([Buffer.from(length), ...parts]);
}

function zigzagVarint(out: number[], value: number): void {
  let zigzag = value >= 0 ? value * 2 : -value * 2 - 1;
  while (zigzag >= 0x80) {
    out.push((zigzag % 0x80) | 0x80);
    zigzag = Math.floor(zigzag / 0x80);
  }
  out.push(zigzag);
}

function decodeFirstRecord(batch: Buffer): { key: Buffer | null; value: Buffer | null } {
  let position = BATCH_HEADER_SIZE;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let index = 0; index < 10; index++) {
      if (position >= batch.length) throw new RaftBatchError("control record is truncated");
      const byte = batch[position++]!;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
      scale *= 0x80;
    }
    throw new RaftBatchError("control record has a malformed varint");
  };
  const bytes = (): Buffer | null => {
    const length = varint();
    if (length < 0) return null;
    if (position + length > batch.length) throw new RaftBatchError("control record is truncated");
    const value = batch.subarray(position, position + length);
    position += length;
    return value;
  };
  varint(); // record length
  position++; // attributes
  varint(); // timestampDelta
  varint(); // offsetDelta
  const key = bytes();
  const value = bytes();
  return { key, value };
}
