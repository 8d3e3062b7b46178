import { FrameSizeError } from "./frame-splitter.js";

/** Below this many missing bytes a frame's rest is read through the staging buffer with whatever follows. */
const DIRECT_READ_MIN_BYTES = 32 * 1024;
const STAGING_BYTES = 64 * 1024;

/**
 * One staging buffer for every reader in the process. A read into it is taken apart, and every byte kept
 * is copied out, before the read callback returns; so readers on different sockets can share it.
 */
let sharedStaging: Buffer | undefined;

export interface FrameReaderOptions {
  /** The buffer small reads land in (default: one shared by every reader in the process). */
  readonly staging?: Buffer;
  /**
   * Where a frame's buffer comes from once its size is known (default `Buffer.allocUnsafe`); the broker
   * takes large ones from a pool and gives them back once nothing refers to the request any more.
   */
  readonly allocate?: (size: number) => Buffer;
}

/**
 * Splits a byte stream into Kafka frames (int32 size prefix, then that many bytes), choosing where each
 * socket read lands: once a frame's size is known, the rest of a large frame is read straight into that
 * frame's own buffer. A 1 MB Produce request is then copied once, by the kernel, instead of into 64 KiB
 * socket chunks and again into one frame. Small frames and size prefixes go through a staging buffer and
 * are copied out of it. After a FrameSizeError the reader stays failed: close the connection. A read that
 * completes frames before the bad size prefix returns them, and sets `failure`; the next call throws.
 *
 * Protocol: call readBuffer() for the buffer the next read fills, then filled(n) with the bytes read.
 */
export class FrameReader {
  private readonly staging: Buffer;
  private readonly sizePrefix = Buffer.alloc(4);
  private sizePrefixBytes = 0;
  private frame: Buffer | null = null;
  private frameFilled = 0;
  private lastReadBuffer: Buffer;
  private failed: FrameSizeError | null = null;
  private readonly allocate: (size: number) => Buffer;

  constructor(
    readonly maxFrameSize: number,
    options: FrameReaderOptions = {},
  ) {
    if (!Number.isInteger(maxFrameSize) || maxFrameSize < 0) {
      throw new RangeError(`maxFrameSize must be a non-negative integer, got ${maxFrameSize}`);
    }
    this.allocate = options.allocate ?? Buffer.allocUnsafe;
    const staging = options.staging;
    if (staging === undefined) {
      sharedStaging ??= Buffer.allocUnsafeSlow(STAGING_BYTES);
      this.staging = sharedStaging;
    } else {
      this.staging = staging;
    }
    this.lastReadBuffer = this.staging;
  }

  /** Bytes received but not yet returned as part of a frame. */
  get bufferedBytes(): number {
    return this.sizePrefixBytes + (this.frame === null ? 0 : this.frameFilled);
  }

  /** The announced size of the frame being received (its size prefix read, not all its bytes), or -1. */
  get partialFrameSize(): number {
    return this.frame === null ? -1 : this.frame.length;
  }

  /** How many bytes of the frame being received have arrived (0 when none is). */
  get partialFrameFilled(): number {
    return this.frameFilled;
  }

  /** The bad size prefix that failed this reader, once one was read; every later filled() throws it. */
  get failure(): FrameSizeError | null {
    return this.failed;
  }

  /** Where the next read should put its bytes (at most this buffer's length). */
  readBuffer(): Buffer {
    const frame = this.frame;
    if (frame !== null && frame.length - this.frameFilled >= DIRECT_READ_MIN_BYTES) {
      this.lastReadBuffer = frame.subarray(this.frameFilled);
    } else {
      this.lastReadBuffer = this.staging;
    }
    return this.lastReadBuffer;
  }

  /** Takes the `length` bytes just read into readBuffer()'s buffer; returns every frame they complete. */
  filled(length: number): Buffer[] {
    if (this.failed !== null) throw this.failed;
    if (this.lastReadBuffer !== this.staging) {
      this.frameFilled += length;
      return this.frameFilled === this.frame!.length ? [this.completeFrame()] : [];
    }
    const frames: Buffer[] = [];
    const staging = this.staging;
    let offset = 0;
    while (offset < length) {
      if (this.frame !== null) {
        const part = Math.min(length - offset, this.frame.length - this.frameFilled);
        staging.copy(this.frame, this.frameFilled, offset, offset + part);
        this.frameFilled += part;
        offset += part;
        if (this.frameFilled === this.frame.length) frames.push(this.completeFrame());
        continue;
      }
      let size: number;
      if (this.sizePrefixBytes === 0 && length - offset >= 4) {
        size = staging.readInt32BE(offset);
        offset += 4;
      } else {
        while (this.sizePrefixBytes < 4 && offset < length)
          this.sizePrefix[this.sizePrefixBytes++] = staging[offset++]!;
        if (this.sizePrefixBytes < 4) break;
        this.sizePrefixBytes = 0;
        size = this.sizePrefix.readInt32BE(0);
      }
      if (size < 0 || size > this.maxFrameSize) {
        const prefix = Buffer.alloc(4);
        prefix.writeInt32BE(size, 0);
        this.failed = new FrameSizeError(size, this.maxFrameSize, prefix);
        // The frames before it are whole requests: the caller may still answer them.
        if (frames.length > 0) return frames;
        throw this.failed;
      }
      this.frame = this.allocate(size);
      this.frameFilled = 0;
      if (size === 0) frames.push(this.completeFrame());
    }
    return frames;
  }

  private completeFrame(): Buffer {
    const frame = this.frame!;
    this.frame = null;
    this.frameFilled = 0;
    return frame;
  }
}
