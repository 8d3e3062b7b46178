import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32c } from "@node-rs/crc32";

// A minimal, independent encoder/decoder of uncompressed record batch v2, so storage tests check the
// bytes against the Kafka format rather than against storage's own header reader.

export interface TestRecord {
  key?: string | null;
  value: string;
  timestamp?: number;
}

function zigzagVarint(value: number): Buffer {
  let n = BigInt(value);
  n = (n << 1n) ^ (n >> 63n);
  const bytes: number[] = [];
  while (n >= 0x80n) {
    bytes.push(Number((n & 0x7fn) | 0x80n));
    n >>= 7n;
  }
  bytes.push(Number(n));
  return Buffer.from(bytes);
}

function readZigzagVarint(buffer: Buffer, position: number): [number, number] {
  let result = 0n;
  let shift = 0n;
  let at = position;
  for (;;) {
    const byte = buffer[at++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) break;
    shift += 7n;
  }
  const value = (result >> 1n) ^ -(result & 1n);
  return [Number(value), at];
}

export function makeBatch(
  records: TestRecord[],
  options: { baseOffset?: number; leaderEpoch?: number; control?: boolean; producerId?: number } = {},
): Buffer {
  const baseTimestamp = records[0]?.timestamp ?? 1_700_000_000_000;
  let maxTimestamp = -1;
  const encoded = records.map((record, index) => {
    const timestamp = record.timestamp ?? baseTimestamp;
    if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    const key = record.key === undefined || record.key === null ? null : Buffer.from(record.key);
    const value = Buffer.from(record.value);
    const body = Buffer.concat([
      Buffer.from([0]),
      zigzagVarint(timestamp - baseTimestamp),
      zigzagVarint(index),
      key ? Buffer.concat([zigzagVarint(key.length), key]) : zigzagVarint(-1),
      zigzagVarint(value.length),
      value,
      zigzagVarint(0),
    ]);
    return Buffer.concat([zigzagVarint(body.length), body]);
  });
  const recordsBytes = Buffer.concat(encoded);
  const header = Buffer.alloc(61);
  header.writeBigInt64BE(BigInt(options.baseOffset ?? 0), 0);
  header.writeInt32BE(61 - 12 + recordsBytes.length, 8);
  header.writeInt32BE(options.leaderEpoch ?? -1, 12);
  header.writeInt8(2, 16);
  header.writeInt16BE(options.control ? 0x20 : 0, 21);
  header.writeInt32BE(Math.max(0, records.length - 1), 23);
  header.writeBigInt64BE(BigInt(baseTimestamp), 27);
  header.writeBigInt64BE(BigInt(maxTimestamp), 35);
  header.writeBigInt64BE(BigInt(options.producerId ?? -1), 43);
  header.writeInt16BE(-1, 51);
  header.writeInt32BE(-1, 53);
  header.writeInt32BE(records.length, 57);
  const batch = Buffer.concat([header, recordsBytes]);
  batch.writeUInt32BE(crc32c(batch.subarray(21)), 17);
  return batch;
}

export interface DecodedBatch {
  baseOffset: number;
  lastOffset: number;
  leaderEpoch: number;
  maxTimestamp: number;
  crcValid: boolean;
  records: { offset: number; key: string | null; value: string; timestamp: number }[];
}

export function decodeBatches(buffer: Buffer): DecodedBatch[] {
  const batches: DecodedBatch[] = [];
  let position = 0;
  while (position < buffer.length) {
    const size = buffer.readInt32BE(position + 8) + 12;
    const batch = buffer.subarray(position, position + size);
    const baseOffset = Number(batch.readBigInt64BE(0));
    const baseTimestamp = Number(batch.readBigInt64BE(27));
    const count = batch.readInt32BE(57);
    const records: DecodedBatch["records"] = [];
    let at = 61;
    for (let index = 0; index < count; index += 1) {
      let length: number;
      [length, at] = readZigzagVarint(batch, at);
      const end = at + length;
      at += 1;
      let timestampDelta: number;
      let offsetDelta: number;
      let keyLength: number;
      let valueLength: number;
      [timestampDelta, at] = readZigzagVarint(batch, at);
      [offsetDelta, at] = readZigzagVarint(batch, at);
      [keyLength, at] = readZigzagVarint(batch, at);
      const key = keyLength < 0 ? null : batch.toString("utf8", at, at + keyLength);
      at += Math.max(0, keyLength);
      [valueLength, at] = readZigzagVarint(batch, at);
      const value = batch.toString("utf8", at, at + valueLength);
      at = end;
      records.push({
        offset: baseOffset + offsetDelta,
        key,
        value,
        timestamp: baseTimestamp + timestampDelta,
      });
    }
    batches.push({
      baseOffset,
      lastOffset: baseOffset + batch.readInt32BE(23),
      leaderEpoch: batch.readInt32BE(12),
      maxTimestamp: Number(batch.readBigInt64BE(35)),
      crcValid: batch.readUInt32BE(17) === crc32c(batch.subarray(21)),
      records,
    });
    position += size;
  }
  return batches;
}

export function valuesOf(buffer: Buffer): string[] {
  return decodeBatches(buffer).flatMap((batch) => batch.records.map((record) => record.value));
}

export function records(prefix: string, count: number, timestamp?: number): TestRecord[] {
  return Array.from({ length: count }, (_, index) => ({
    value: `${prefix}-${index}`,
    ...(timestamp === undefined ? {} : { timestamp }),
  }));
}

/**
 * Runs `run` on a fresh file system of `type` mounted on a temporary directory (ramfs: no O_DIRECT or
 * fallocate, as some network and FUSE file systems; tmpfs with `size=`: a disk that fills), unmounted and
 * removed after. Mounting needs root, as CI runs the suite.
 */
export async function withScratchMount<T>(
  type: "ramfs" | "tmpfs",
  options: string,
  run: (directory: string) => Promise<T>,
): Promise<T> {
  const directory = await mkdtemp(join(tmpdir(), `raftka-${type}-`));
  try {
    execFileSync("mount", ["-t", type, ...(options === "" ? [] : ["-o", options]), type, directory]);
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw new Error(
      `this test mounts a ${type} and needs root (run the suite as root, as CI does): ${error}`,
    );
  }
  try {
    return await run(directory);
  } finally {
    execFileSync("umount", [directory]);
    await rm(directory, { recursive: true, force: true });
  }
}

/** Runs `run` in a fresh ramfs mount (see withScratchMount). */
export function withRamfs<T>(run: (directory: string) => Promise<T>): Promise<T> {
  return withScratchMount("ramfs", "", run);
}

/** Drops the files' clean pages from the page cache, as time and other data would (posix_fadvise DONTNEED). */
export function evictFromPageCache(...files: string[]): void {
  for (const file of files) execFileSync("dd", [`if=${file}`, "iflag=nocache", "count=0", "status=none"]);
}

/** Bytes of the files in the page cache now (util-linux fincore). */
export function residentBytes(...files: string[]): number {
  let bytes = 0;
  for (const file of files) {
    bytes += Number(
      execFileSync("fincore", ["--bytes", "--noheadings", "--raw", "--output", "RES", file])
        .toString()
        .trim(),
    );
  }
  return bytes;
}

export async function withTempDir<T>(run: (directory: string) => Promise<T>): Promise<T> {
  const directory = await mkdtemp(join(tmpdir(), "raftka-storage-"));
  try {
    return await run(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
