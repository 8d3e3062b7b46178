import { invariant } from "./errors.js";

// The on-disk formats are Kafka's: big-endian fixed-size entries, relative offsets from the segment's
// base offset. Entries live in memory as the same bytes, so loading is one read and writing an entry
// is one small positional write of its bytes.

export const OFFSET_INDEX_ENTRY_SIZE = 8;
export const TIME_INDEX_ENTRY_SIZE = 12;

abstract class FixedEntryIndex {
  protected bytes: Buffer;
  protected count = 0;

  protected constructor(
    protected readonly entrySize: number,
    initial?: Buffer,
  ) {
    if (initial) {
      invariant(initial.length % entrySize === 0, "index bytes must be whole entries");
      this.bytes = Buffer.from(initial);
      this.count = initial.length / entrySize;
    } else {
      this.bytes = Buffer.alloc(entrySize * 16);
    }
  }

  get entryCount(): number {
    return this.count;
  }

  get sizeInBytes(): number {
    return this.count * this.entrySize;
  }

  /** The serialized entries, exactly what the index file holds. */
  contents(): Buffer {
    return this.bytes.subarray(0, this.count * this.entrySize);
  }

  protected reserveEntry(): number {
    const needed = (this.count + 1) * this.entrySize;
    if (needed > this.bytes.length) {
      const grown = Buffer.alloc(Math.max(needed, this.bytes.length * 2));
      this.bytes.copy(grown, 0, 0, this.count * this.entrySize);
      this.bytes = grown;
    }
    const position = this.count * this.entrySize;
    this.count += 1;
    return position;
  }

  protected abstract relativeOffsetAt(index: number): number;

  /** Index of the last entry whose relative offset is <= `relativeOffset`, or -1. */
  protected floorIndex(relativeOffset: number): number {
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.relativeOffsetAt(middle) <= relativeOffset) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  /** Keeps only the first `count` entries (undoes appends whose write failed). */
  truncateEntries(count: number): void {
    this.count = Math.min(this.count, count);
  }

  /** Drops entries for relative offsets >= `relativeOffset`. */
  truncateFrom(relativeOffset: number): void {
    this.count = this.floorIndex(relativeOffset - 1) + 1;
  }
}

/** Sparse map relative offset (of a batch's base offset) → byte position of that batch in the segment. */
export class OffsetIndex extends FixedEntryIndex {
  constructor(initial?: Buffer) {
    super(OFFSET_INDEX_ENTRY_SIZE, initial);
  }

  /** Checks an index read from disk against the log file; returns why it is unusable, if it is. */
  static validate(bytes: Buffer, logSize: number): string | undefined {
    if (bytes.length % OFFSET_INDEX_ENTRY_SIZE !== 0) {
      return `size ${bytes.length} is not a multiple of ${OFFSET_INDEX_ENTRY_SIZE}`;
    }
    let previousOffset = -1;
    let previousPosition = -1;
    for (let at = 0; at < bytes.length; at += OFFSET_INDEX_ENTRY_SIZE) {
      const relativeOffset = bytes.readInt32BE(at);
      const position = bytes.readInt32BE(at + 4);
      if (relativeOffset <= previousOffset || position <= previousPosition) {
        return `entry ${at / OFFSET_INDEX_ENTRY_SIZE} (${relativeOffset} → ${position}) is not increasing`;
      }
      if (position >= logSize) {
        return `entry ${at / OFFSET_INDEX_ENTRY_SIZE} points at byte ${position}, past the log's ${logSize} bytes`;
      }
      previousOffset = relativeOffset;
      previousPosition = position;
    }
    return undefined;
  }

  /** Appends an entry; returns its bytes and the file position they belong at. */
  append(relativeOffset: number, position: number): { bytes: Buffer; filePosition: number } {
    invariant(
      this.count === 0 || (relativeOffset > this.lastRelativeOffset() && position > this.lastPosition()),
      () => `offset index entry ${relativeOffset} → ${position} does not follow the last entry`,
    );
    const at = this.reserveEntry();
    this.bytes.writeInt32BE(relativeOffset, at);
    this.bytes.writeInt32BE(position, at + 4);
    return { bytes: this.bytes.subarray(at, at + OFFSET_INDEX_ENTRY_SIZE), filePosition: at };
  }

  /** Position of the last indexed batch at or before `relativeOffset` (0, the segment start, if none). */
  lookup(relativeOffset: number): { relativeOffset: number; position: number } {
    const index = this.floorIndex(relativeOffset);
    if (index < 0) return { relativeOffset: 0, position: 0 };
    return { relativeOffset: this.relativeOffsetAt(index), position: this.positionAt(index) };
  }

  /** The first entry pointing past byte `position`, if any (positions increase with offsets). */
  firstEntryAfter(position: number): { relativeOffset: number; position: number } | undefined {
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.positionAt(middle) > position) {
        found = middle;
        high = middle - 1;
      } else {
        low = middle + 1;
      }
    }
    if (found < 0) return undefined;
    return { relativeOffset: this.relativeOffsetAt(found), position: this.positionAt(found) };
  }

  lastRelativeOffset(): number {
    return this.count === 0 ? -1 : this.relativeOffsetAt(this.count - 1);
  }

  lastPosition(): number {
    return this.count === 0 ? 0 : this.positionAt(this.count - 1);
  }

  protected relativeOffsetAt(index: number): number {
    return this.bytes.readInt32BE(index * OFFSET_INDEX_ENTRY_SIZE);
  }

  private positionAt(index: number): number {
    return this.bytes.readInt32BE(index * OFFSET_INDEX_ENTRY_SIZE + 4);
  }
}

/**
 * Sparse map timestamp → relative offset of the batch that first reached it. Entries record the
 * running maximum timestamp, so both columns are non-decreasing (Kafka's TimeIndex).
 */
export class TimeIndex extends FixedEntryIndex {
  constructor(initial?: Buffer) {
    super(TIME_INDEX_ENTRY_SIZE, initial);
  }

  static validate(bytes: Buffer, maxRelativeOffset: number): string | undefined {
    if (bytes.length % TIME_INDEX_ENTRY_SIZE !== 0) {
      return `size ${bytes.length} is not a multiple of ${TIME_INDEX_ENTRY_SIZE}`;
    }
    let previousTimestamp = Number.NEGATIVE_INFINITY;
    let previousOffset = -1;
    for (let at = 0; at < bytes.length; at += TIME_INDEX_ENTRY_SIZE) {
      const timestamp = Number(bytes.readBigInt64BE(at));
      const relativeOffset = bytes.readInt32BE(at + 8);
      if (timestamp <= previousTimestamp || relativeOffset < previousOffset) {
        return `entry ${at / TIME_INDEX_ENTRY_SIZE} (${timestamp} → ${relativeOffset}) is not increasing`;
      }
      if (relativeOffset > maxRelativeOffset) {
        return `entry ${at / TIME_INDEX_ENTRY_SIZE} names relative offset ${relativeOffset}, past the segment end`;
      }
      previousTimestamp = timestamp;
      previousOffset = relativeOffset;
    }
    return undefined;
  }

  lastEntry(): { timestamp: number; relativeOffset: number } | undefined {
    if (this.count === 0) return undefined;
    return {
      timestamp: this.timestampAt(this.count - 1),
      relativeOffset: this.relativeOffsetAt(this.count - 1),
    };
  }

  /** Appends an entry only if it raises the maximum timestamp; returns the bytes written, if any. */
  maybeAppend(
    timestamp: number,
    relativeOffset: number,
  ): { bytes: Buffer; filePosition: number } | undefined {
    const last = this.lastEntry();
    if (last && timestamp <= last.timestamp) return undefined;
    invariant(
      !last || relativeOffset >= last.relativeOffset,
      () => `time index entry ${timestamp} → ${relativeOffset} goes back before ${last!.relativeOffset}`,
    );
    const at = this.reserveEntry();
    this.bytes.writeBigInt64BE(BigInt(timestamp), at);
    this.bytes.writeInt32BE(relativeOffset, at + 8);
    return { bytes: this.bytes.subarray(at, at + TIME_INDEX_ENTRY_SIZE), filePosition: at };
  }

  /** Relative offset to start scanning from for the first batch with maxTimestamp >= `timestamp`. */
  lookupScanStart(timestamp: number): number {
    // Last entry with a timestamp < target: every batch before its offset has a smaller timestamp.
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.timestampAt(middle) < timestamp) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found < 0 ? 0 : this.relativeOffsetAt(found);
  }

  protected relativeOffsetAt(index: number): number {
    return this.bytes.readInt32BE(index * TIME_INDEX_ENTRY_SIZE + 8);
  }

  private timestampAt(index: number): number {
    return Number(this.bytes.readBigInt64BE(index * TIME_INDEX_ENTRY_SIZE));
  }
}
