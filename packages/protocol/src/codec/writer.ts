import { ProtocolEncodeError } from "./errors.js";
import type { TaggedField } from "./reader.js";

/**
 * Byte blobs at least this large are not copied into the writer's buffer but emitted as their own
 * chunk, so a Fetch response's record data reaches `socket.writev` without ever being copied.
 */
export const ZERO_COPY_THRESHOLD = 4096;

const ZERO_UUID_BYTES = 16;
const MAX_STRING_LENGTH = 0x7fff;

/**
 * Growable big-endian writer. Output is a list of chunks: small fields accumulate in one buffer,
 * large byte blobs (records) are referenced, not copied. `chunks()` ends the write.
 */
export class Writer {
  private buf: Buffer;
  private pos = 0;
  /** Start of the part of `buf` not yet handed out as a chunk. */
  private segmentStart = 0;
  private readonly finished: Buffer[] = [];
  private finishedBytes = 0;

  constructor(initialCapacity = 256) {
    this.buf = Buffer.allocUnsafe(initialCapacity);
  }

  /** Bytes written so far, including referenced chunks. */
  get length(): number {
    return this.finishedBytes + (this.pos - this.segmentStart);
  }

  private ensure(byteCount: number): void {
    if (this.pos + byteCount <= this.buf.length) return;
    // Only the open segment moves; chunks already handed out keep pointing at the old buffer.
    const used = this.pos - this.segmentStart;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, used + byteCount, 256));
    this.buf.copy(next, 0, this.segmentStart, this.pos);
    this.buf = next;
    this.segmentStart = 0;
    this.pos = used;
  }

  int8(value: number): void {
    this.ensure(1);
    this.buf.writeInt8(value, this.pos);
    this.pos += 1;
  }

  uint8(value: number): void {
    this.ensure(1);
    this.buf[this.pos++] = value;
  }

  bool(value: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = value ? 1 : 0;
  }

  int16(value: number): void {
    this.ensure(2);
    this.pos = this.buf.writeInt16BE(value, this.pos);
  }

  uint16(value: number): void {
    this.ensure(2);
    this.pos = this.buf.writeUInt16BE(value, this.pos);
  }

  int32(value: number): void {
    this.ensure(4);
    this.pos = this.buf.writeInt32BE(value, this.pos);
  }

  uint32(value: number): void {
    this.ensure(4);
    this.pos = this.buf.writeUInt32BE(value, this.pos);
  }

  int64(value: bigint): void {
    this.ensure(8);
    this.pos = this.buf.writeBigInt64BE(value, this.pos);
  }

  float64(value: number): void {
    this.ensure(8);
    this.pos = this.buf.writeDoubleBE(value, this.pos);
  }

  uvarint(value: number): void {
    if (!(value >= 0 && value <= 0xffffffff) || !Number.isInteger(value)) {
      throw new ProtocolEncodeError(
        `unsigned varint ${value} is not an integer in [0, 2^32); pass a valid length or tag`,
      );
    }
    this.ensure(5);
    let remaining = value;
    while (remaining >= 0x80) {
      this.buf[this.pos++] = (remaining & 0x7f) | 0x80;
      remaining = Math.floor(remaining / 128);
    }
    this.buf[this.pos++] = remaining;
  }

  /** Zig-zag signed 32-bit varint (record fields). */
  varint(value: number): void {
    this.uvarint(((value << 1) ^ (value >> 31)) >>> 0);
  }

  /** Zig-zag signed varlong (record timestamp deltas); `value` must be a safe integer. */
  varlong(value: number): void {
    if (!Number.isSafeInteger(value)) {
      throw new ProtocolEncodeError(
        `varlong ${value} is not a safe integer; pass an integer timestamp or offset delta`,
      );
    }
    let zigzag = value >= 0 ? BigInt(value) << 1n : (-BigInt(value) << 1n) - 1n;
    this.ensure(10);
    while (zigzag >= 0x80n) {
      this.buf[this.pos++] = Number(zigzag & 0x7fn) | 0x80;
      zigzag >>= 7n;
    }
    this.buf[this.pos++] = Number(zigzag);
  }

  uuid(value: string): void {
    if (typeof value !== "string" || value.length !== 22) {
      throw new ProtocolEncodeError(
        `uuid ${JSON.stringify(value)} is not 22 base64url characters; pass a Kafka Uuid string such as "AAAAAAAAAAAAAAAAAAAAAA"`,
      );
    }
    this.ensure(ZERO_UUID_BYTES);
    const written = this.buf.write(value, this.pos, ZERO_UUID_BYTES, "base64url");
    if (written !== ZERO_UUID_BYTES) {
      throw new ProtocolEncodeError(
        `uuid ${JSON.stringify(value)} is not valid base64url; pass a Kafka Uuid string`,
      );
    }
    this.pos += ZERO_UUID_BYTES;
  }

  /** Appends bytes; blobs of ZERO_COPY_THRESHOLD or more become their own chunk instead of being copied. */
  raw(data: Buffer): void {
    if (data.length >= ZERO_COPY_THRESHOLD) {
      this.sealSegment();
      this.finished.push(data);
      this.finishedBytes += data.length;
      return;
    }
    this.ensure(data.length);
    data.copy(this.buf, this.pos);
    this.pos += data.length;
  }

  private sealSegment(): void {
    if (this.pos > this.segmentStart) {
      this.finished.push(this.buf.subarray(this.segmentStart, this.pos));
      this.finishedBytes += this.pos - this.segmentStart;
      this.segmentStart = this.pos;
    }
  }

  private utf8Length(value: string | null, field: string): number {
    if (typeof value !== "string") {
      throw new ProtocolEncodeError(
        `field ${field} must be a string in this version, got ${value === null ? "null" : typeof value}; set it or pick a version where it is nullable`,
      );
    }
    const length = Buffer.byteLength(value, "utf8");
    if (length > MAX_STRING_LENGTH) {
      throw new ProtocolEncodeError(
        `field ${field} is ${length} bytes of UTF-8 but Kafka strings hold at most ${MAX_STRING_LENGTH}; shorten it`,
      );
    }
    return length;
  }

  private utf8(value: string | null, length: number): void {
    this.ensure(length);
    this.pos += this.buf.write(value as string, this.pos, length, "utf8");
  }

  /** Non-nullable string; null is accepted by the type only to fail with a precise error. */
  string(value: string | null, field: string): void {
    const length = this.utf8Length(value, field);
    this.int16(length);
    this.utf8(value, length);
  }

  nullableString(value: string | null, field: string): void {
    if (value === null) {
      this.int16(-1);
      return;
    }
    this.string(value, field);
  }

  compactString(value: string | null, field: string): void {
    const length = this.utf8Length(value, field);
    this.uvarint(length + 1);
    this.utf8(value, length);
  }

  compactNullableString(value: string | null, field: string): void {
    if (value === null) {
      this.uvarint(0);
      return;
    }
    this.compactString(value, field);
  }

  private checkBuffer(value: Buffer | null, field: string): asserts value is Buffer {
    if (!Buffer.isBuffer(value)) {
      throw new ProtocolEncodeError(
        `field ${field} must be a Buffer, got ${value === null ? "null" : typeof value}`,
      );
    }
  }

  bytes(value: Buffer | null, field: string): void {
    this.checkBuffer(value, field);
    this.int32(value.length);
    this.raw(value);
  }

  nullableBytes(value: Buffer | null, field: string): void {
    if (value === null) {
      this.int32(-1);
      return;
    }
    this.bytes(value, field);
  }

  compactBytes(value: Buffer | null, field: string): void {
    this.checkBuffer(value, field);
    this.uvarint(value.length + 1);
    this.raw(value);
  }

  compactNullableBytes(value: Buffer | null, field: string): void {
    if (value === null) {
      this.uvarint(0);
      return;
    }
    this.compactBytes(value, field);
  }

  /** Length prefix of a non-nullable array; throws a precise error instead of writing a bogus count. */
  arrayLength(value: readonly unknown[] | null, field: string): asserts value is readonly unknown[] {
    if (!Array.isArray(value)) throw nonNullable(field, "an array", value);
    this.int32(value.length);
  }

  compactArrayLength(value: readonly unknown[] | null, field: string): asserts value is readonly unknown[] {
    if (!Array.isArray(value)) throw nonNullable(field, "an array", value);
    this.uvarint(value.length + 1);
  }

  /** Checks a non-nullable struct value exists; a missing struct would otherwise fail deep inside. */
  struct(value: object | null, field: string): asserts value is object {
    if (value === null || typeof value !== "object") throw nonNullable(field, "an object", value);
  }

  /** Presence marker of a nullable struct; returns false for null. */
  nullableStructMarker(value: object | null, field: string): boolean {
    if (value === null) {
      this.int8(-1);
      return false;
    }
    this.struct(value, field);
    this.int8(1);
    return true;
  }

  /**
   * Writes a struct's tag section: known tagged fields (already encoded by the caller) merged with
   * preserved unknown ones, in ascending tag order as KIP-482 requires.
   */
  taggedFields(known: TaggedField[] | undefined, unknown: readonly TaggedField[] | undefined): void {
    if (known === undefined && (unknown === undefined || unknown.length === 0)) {
      this.uint8(0);
      return;
    }
    const all = unknown === undefined ? known! : known === undefined ? [...unknown] : [...known, ...unknown];
    all.sort((a, b) => a.tag - b.tag);
    for (let i = 1; i < all.length; i++) {
      if (all[i]!.tag === all[i - 1]!.tag) {
        throw new ProtocolEncodeError(
          `tagged field ${all[i]!.tag} is present twice (a known field and an unknownTaggedFields entry); remove one`,
        );
      }
    }
    this.uvarint(all.length);
    for (const field of all) {
      this.uvarint(field.tag);
      this.uvarint(field.data.length);
      this.raw(field.data);
    }
  }

  /** Ends the write and returns the output chunks, ready for `socket.writev` or `Buffer.concat`. */
  chunks(): Buffer[] {
    this.sealSegment();
    return this.finished;
  }

  /** Ends the write and returns one contiguous Buffer (copies only if large blobs were referenced). */
  toBuffer(): Buffer {
    const chunks = this.chunks();
    if (chunks.length === 1) return chunks[0]!;
    return Buffer.concat(chunks, this.finishedBytes);
  }
}

function nonNullable(field: string, expected: string, value: unknown): ProtocolEncodeError {
  return new ProtocolEncodeError(
    `field ${field} must be ${expected} in this version, got ${value === null ? "null" : typeof value}; set it or pick a version where it is nullable`,
  );
}

/** Encodes one tagged field's value on its own so its size can be written before it. */
export function encodeTagged(tag: number, write: (writer: Writer) => void): TaggedField {
  const writer = new Writer(64);
  write(writer);
  return { tag, data: writer.toBuffer() };
}
