import { crc32 } from "node:zlib";
import { ProtocolDecodeError, Reader, Writer } from "@raftka/protocol";
import { BATCHES_RETAINED_PER_PRODUCER, type ProducerEntry } from "./producer-state.js";

/**
 * Bytes of a producer state snapshot: the state of one partition's producers after every batch below
 * `offset`, like Kafka's `<offset>.snapshot` files. Unlike Kafka's (which keeps only each producer's last
 * batch) it keeps all five retained batches, so a retry of any of them is still recognised after a
 * restart.
 *
 *   magic "RKPS" | version int16 | crc32 uint32 of everything after it | offset int64 | count int32 |
 *   per producer: id int64, epoch int16, coordinatorEpoch int32, lastTimestamp int64,
 *                 currentTxnFirstOffset int64 (-1 none), batch count int8,
 *                 per batch: firstSequence int32, lastSequence int32, firstOffset int64, lastOffset int64, timestamp int64
 */

const MAGIC = Buffer.from("RKPS", "ascii");
const VERSION = 1;
const HEADER_BYTES = MAGIC.length + 2 + 4;
const ENTRY_FIXED_BYTES = 8 + 2 + 4 + 8 + 8 + 1;
const BATCH_BYTES = 4 + 4 + 8 + 8 + 8;

export class ProducerSnapshotError extends Error {
  override readonly name = "ProducerSnapshotError";
}

export interface ProducerSnapshot {
  /** Every batch below this offset is reflected; replay continues from here. */
  readonly offset: number;
  readonly entries: readonly ProducerEntry[];
}

export function encodeProducerSnapshot(snapshot: ProducerSnapshot): Buffer {
  const body = new Writer(64 + snapshot.entries.length * (ENTRY_FIXED_BYTES + BATCH_BYTES));
  body.int64(BigInt(snapshot.offset));
  body.int32(snapshot.entries.length);
  for (const entry of snapshot.entries) {
    body.int64(entry.producerId);
    body.int16(entry.producerEpoch);
    body.int32(entry.coordinatorEpoch);
    body.int64(BigInt(entry.lastTimestamp));
    body.int64(BigInt(entry.currentTxnFirstOffset ?? -1));
    body.int8(entry.batches.length);
    for (const batch of entry.batches) {
      if (batch.firstOffset === null || batch.lastOffset === null) {
        throw new Error(`internal: producer ${entry.producerId} has a batch without offsets in a snapshot`);
      }
      body.int32(batch.firstSequence);
      body.int32(batch.lastSequence);
      body.int64(BigInt(batch.firstOffset));
      body.int64(BigInt(batch.lastOffset));
      body.int64(BigInt(batch.timestamp));
    }
  }
  const bodyBytes = body.toBuffer();
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeInt16BE(VERSION, MAGIC.length);
  header.writeUInt32BE(crc32(bodyBytes), MAGIC.length + 2);
  return Buffer.concat([header, bodyBytes]);
}

/** Throws ProducerSnapshotError (naming the problem) for bytes that are not an intact snapshot. */
export function decodeProducerSnapshot(bytes: Buffer): ProducerSnapshot {
  if (bytes.length < HEADER_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new ProducerSnapshotError(
      "not a producer state snapshot (bad magic); delete the file to rebuild from the log",
    );
  }
  const version = bytes.readInt16BE(MAGIC.length);
  if (version !== VERSION) {
    throw new ProducerSnapshotError(
      `producer state snapshot version ${version} is unknown (this broker reads ${VERSION}); delete it to rebuild from the log`,
    );
  }
  const body = bytes.subarray(HEADER_BYTES);
  const expectedCrc = bytes.readUInt32BE(MAGIC.length + 2);
  if (crc32(body) !== expectedCrc) {
    throw new ProducerSnapshotError("producer state snapshot checksum mismatch (torn or corrupt write)");
  }
  try {
    const reader = new Reader(body);
    const offset = toSafeNumber(reader.int64(), "snapshot offset");
    const count = reader.arrayLength(ENTRY_FIXED_BYTES, "producers");
    const entries: ProducerEntry[] = [];
    for (let index = 0; index < count; index++) {
      const producerId = reader.int64();
      const producerEpoch = reader.int16();
      const coordinatorEpoch = reader.int32();
      const lastTimestamp = toSafeNumber(reader.int64(), "last timestamp");
      const txnFirstOffset = reader.int64();
      const batchCount = reader.int8();
      if (batchCount < 0 || batchCount > BATCHES_RETAINED_PER_PRODUCER) {
        throw new ProducerSnapshotError(`producer ${producerId} has ${batchCount} batches in the snapshot`);
      }
      const batches = [];
      for (let batchIndex = 0; batchIndex < batchCount; batchIndex++) {
        batches.push({
          firstSequence: reader.int32(),
          lastSequence: reader.int32(),
          firstOffset: toSafeNumber(reader.int64(), "batch offset"),
          lastOffset: toSafeNumber(reader.int64(), "batch offset"),
          timestamp: toSafeNumber(reader.int64(), "batch timestamp"),
        });
      }
      entries.push({
        producerId,
        producerEpoch,
        coordinatorEpoch,
        lastTimestamp,
        currentTxnFirstOffset:
          txnFirstOffset < 0n ? null : toSafeNumber(txnFirstOffset, "transaction offset"),
        batches,
      });
    }
    if (reader.remaining !== 0) {
      throw new ProducerSnapshotError(
        `producer state snapshot has ${reader.remaining} bytes after its last entry`,
      );
    }
    return { offset, entries };
  } catch (error) {
    if (error instanceof ProtocolDecodeError) {
      throw new ProducerSnapshotError(`producer state snapshot is truncated: ${error.message}`);
    }
    throw error;
  }
}

function toSafeNumber(value: bigint, what: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number)) throw new ProducerSnapshotError(`${what} ${value} is out of range`);
  return number;
}
