import { ProtocolDecodeError } from "./errors.js";

/** A tagged field (KIP-482) that this codec has no schema for; kept verbatim so re-encoding preserves it. */
export interface TaggedField {
  tag: number;
  data: Buffer;
}

/** Kafka caps every string at a signed 16-bit length, compact or not. */
const MAX_STRING_LENGTH = 0x7fff;

/**
 * Bounds-checked cursor over a Buffer. Every read checks the remaining length first and throws
 * ProtocolDecodeError, so hostile input can never surface a RangeError, loop forever or allocate an
 * array larger than the bytes that could possibly describe it. Byte fields (`bytes`, `records`) are
 * returned as zero-copy subarrays of the input.
 */
export class Reader {
  readonly buf: Buffer;
  offset: number;
  /** Exclusive limit; narrowed temporarily while a tagged field is read. */
  end: number;

  constructor(buf: Buffer, offset = 0, end = buf.length) {
    if (offset < 0 || end > buf.length || offset > end) {
      throw new ProtocolDecodeError(
        `reader window [${offset}, ${end}) lies outside a buffer of ${buf.length} bytes; pass a valid window`,
        offset,
      );
    }
    this.buf = buf;
    this.offset = offset;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  fail(message: string, at: number = this.offset): never {
    throw new ProtocolDecodeError(message, at);
  }

  private need(byteCount: number, what: string): void {
    if (this.end - this.offset < byteCount) {
      this.fail(
        `truncated input: ${what} needs ${byteCount} bytes at offset ${this.offset} but only ${this.end - this.offset} remain`,
      );
    }
  }

  int8(): number {
    this.need(1, "int8");
    return this.buf.readInt8(this.offset++);
  }

  uint8(): number {
    this.need(1, "uint8");
    return this.buf[this.offset++]!;
  }

  bool(): boolean {
    this.need(1, "bool");
    return this.buf[this.offset++] !== 0;
  }

  int16(): number {
    this.need(2, "int16");
    const value = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  uint16(): number {
    this.need(2, "uint16");
    const value = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(): number {
    this.need(4, "int32");
    const value = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  uint32(): number {
    this.need(4, "uint32");
    const value = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  int64(): bigint {
    this.need(8, "int64");
    const value = this.buf.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  float64(): number {
    this.need(8, "float64");
    const value = this.buf.readDoubleBE(this.offset);
    this.offset += 8;
    return value;
  }

  /** Unsigned LEB128 varint of at most 32 bits (5 bytes), as used by compact lengths and tags. */
  uvarint(): number {
    const start = this.offset;
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.offset >= this.end)
        this.fail(`truncated input: unsigned varint at offset ${start} is cut off`, start);
      const byte = this.buf[this.offset++]!;
      if (shift === 28 && byte > 0x0f) {
        this.fail(`unsigned varint at offset ${start} does not fit in 32 bits`, start);
      }
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
    }
    return this.fail(`unsigned varint at offset ${start} is longer than 5 bytes`, start);
  }

  /** Zig-zag signed varint of at most 32 bits, as used inside v2 records. */
  varint(): number {
    const start = this.offset;
    const raw = this.uvarint();
    if (raw > 0xffffffff) this.fail(`varint at offset ${start} does not fit in 32 bits`, start);
    return (raw >>> 1) ^ -(raw & 1);
  }

  /**
   * Zig-zag signed varlong (up to 10 bytes), as used for timestamp deltas in v2 records. Returned as a
   * number: values beyond 2^53 cannot be timestamps and are rejected rather than silently rounded.
   */
  varlong(): number {
    const start = this.offset;
    // Fast path: up to 4 bytes (28 bits) in plain number arithmetic; record deltas are almost always this
    // small, and the BigInt path below costs several times more per record.
    let small = 0;
    for (let shift = 0; shift < 28 && this.offset < this.end; shift += 7) {
      const byte = this.buf[this.offset++]!;
      small |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return (small >>> 1) ^ -(small & 1);
    }
    this.offset = start;
    let raw = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.offset >= this.end) this.fail(`truncated input: varlong at offset ${start} is cut off`, start);
      const byte = this.buf[this.offset++]!;
      raw |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) {
        if (raw > 0xffffffffffffffffn) this.fail(`varlong at offset ${start} does not fit in 64 bits`, start);
        const value = (raw >> 1n) ^ -(raw & 1n);
        if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
          this.fail(
            `varlong ${value} at offset ${start} is outside the range this codec represents exactly`,
            start,
          );
        }
        return Number(value);
      }
    }
    return this.fail(`varlong at offset ${start} is longer than 10 bytes`, start);
  }

  uuid(): string {
    this.need(16, "uuid");
    const value = this.buf.toString("base64url", this.offset, this.offset + 16);
    this.offset += 16;
    return value;
  }

  /** `length` raw bytes as a zero-copy subarray. */
  raw(length: number): Buffer {
    this.need(length, "byte range");
    const value = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  private stringOfLength(length: number, start: number, field: string): string {
    if (length > MAX_STRING_LENGTH) {
      this.fail(
        `string field ${field} at offset ${start} has invalid length ${length} (max ${MAX_STRING_LENGTH})`,
        start,
      );
    }
    this.need(length, `string field ${field}`);
    const value = this.buf.toString("utf8", this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  string(field: string): string {
    const start = this.offset;
    const length = this.int16();
    if (length < 0)
      this.fail(`non-nullable string field ${field} at offset ${start} has length ${length}`, start);
    return this.stringOfLength(length, start, field);
  }

  nullableString(field: string): string | null {
    const start = this.offset;
    const length = this.int16();
    if (length === -1) return null;
    if (length < 0) this.fail(`string field ${field} at offset ${start} has invalid length ${length}`, start);
    return this.stringOfLength(length, start, field);
  }

  compactString(field: string): string {
    const start = this.offset;
    const lengthPlusOne = this.uvarint();
    if (lengthPlusOne === 0)
      this.fail(`non-nullable string field ${field} at offset ${start} is null`, start);
    return this.stringOfLength(lengthPlusOne - 1, start, field);
  }

  compactNullableString(field: string): string | null {
    const start = this.offset;
    const lengthPlusOne = this.uvarint();
    if (lengthPlusOne === 0) return null;
    return this.stringOfLength(lengthPlusOne - 1, start, field);
  }

  private bytesOfLength(length: number, field: string): Buffer {
    this.need(length, `bytes field ${field}`);
    const value = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  bytes(field: string): Buffer {
    const start = this.offset;
    const length = this.int32();
    if (length < 0)
      this.fail(`non-nullable bytes field ${field} at offset ${start} has length ${length}`, start);
    return this.bytesOfLength(length, field);
  }

  nullableBytes(field: string): Buffer | null {
    const start = this.offset;
    const length = this.int32();
    if (length === -1) return null;
    if (length < 0) this.fail(`bytes field ${field} at offset ${start} has invalid length ${length}`, start);
    return this.bytesOfLength(length, field);
  }

  compactBytes(field: string): Buffer {
    const start = this.offset;
    const lengthPlusOne = this.uvarint();
    if (lengthPlusOne === 0) this.fail(`non-nullable bytes field ${field} at offset ${start} is null`, start);
    return this.bytesOfLength(lengthPlusOne - 1, field);
  }

  compactNullableBytes(field: string): Buffer | null {
    const lengthPlusOne = this.uvarint();
    if (lengthPlusOne === 0) return null;
    return this.bytesOfLength(lengthPlusOne - 1, field);
  }

  private checkCount(count: number, minElementSize: number, start: number, field: string): void {
    // Refuse before allocating: a count the remaining bytes cannot hold is hostile or corrupt.
    if (count * Math.max(minElementSize, 1) > this.end - this.offset) {
      this.fail(
        `array field ${field} at offset ${start} claims ${count} elements but only ${this.end - this.offset} bytes remain`,
        start,
      );
    }
  }

  /** Element count of a non-nullable int32-prefixed array. */
  arrayLength(minElementSize: number, field: string): number {
    const start = this.offset;
    const count = this.int32();
    if (count < 0)
      this.fail(`non-nullable array field ${field} at offset ${start} has length ${count}`, start);
    this.checkCount(count, minElementSize, start, field);
    return count;
  }

  /** Element count of a nullable int32-prefixed array, -1 for null. */
  nullableArrayLength(minElementSize: number, field: string): number {
    const start = this.offset;
    const count = this.int32();
    if (count === -1) return -1;
    if (count < 0) this.fail(`array field ${field} at offset ${start} has invalid length ${count}`, start);
    this.checkCount(count, minElementSize, start, field);
    return count;
  }

  compactArrayLength(minElementSize: number, field: string): number {
    const start = this.offset;
    const countPlusOne = this.uvarint();
    if (countPlusOne === 0) this.fail(`non-nullable array field ${field} at offset ${start} is null`, start);
    this.checkCount(countPlusOne - 1, minElementSize, start, field);
    return countPlusOne - 1;
  }

  compactNullableArrayLength(minElementSize: number, field: string): number {
    const start = this.offset;
    const countPlusOne = this.uvarint();
    if (countPlusOne === 0) return -1;
    this.checkCount(countPlusOne - 1, minElementSize, start, field);
    return countPlusOne - 1;
  }

  /** Presence marker of a nullable struct: false for null. */
  structPresent(field: string): boolean {
    const start = this.offset;
    const marker = this.int8();
    if (marker < 0) return false;
    if (marker !== 1)
      this.fail(`nullable struct field ${field} at offset ${start} has invalid marker ${marker}`, start);
    return true;
  }

  /** Reads a whole tag section of a struct that has no known tagged fields in this version. */
  unknownTaggedFields(): TaggedField[] | undefined {
    const count = this.uvarint();
    if (count === 0) return undefined;
    const fields: TaggedField[] = [];
    for (let i = 0; i < count; i++) {
      const tag = this.uvarint();
      const size = this.uvarint();
      fields.push({ tag, data: this.raw(size) });
    }
    return fields;
  }

  /** Narrows the readable window to one tagged field's bytes; returns the outer limit for `endTagged`. */
  beginTagged(size: number): number {
    this.need(size, "tagged field");
    const outerEnd = this.end;
    this.end = this.offset + size;
    return outerEnd;
  }

  endTagged(outerEnd: number, tag: number): void {
    if (this.offset !== this.end) {
      this.fail(
        `tagged field ${tag} declares more bytes than its value uses (${this.end - this.offset} left over)`,
      );
    }
    this.end = outerEnd;
  }
}
