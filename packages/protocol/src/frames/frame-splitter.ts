import { ProtocolDecodeError } from "../codec/errors.js";

/** A size prefix the splitter refuses: negative, or above the caller's maximum. Close the connection. */
export class FrameSizeError extends ProtocolDecodeError {
  override readonly name = "FrameSizeError";
  readonly size: number;
  readonly maxFrameSize: number;

  constructor(size: number, maxFrameSize: number, prefix: Buffer) {
    super(describe(size, maxFrameSize, prefix), 0);
    this.size = size;
    this.maxFrameSize = maxFrameSize;
  }
}

function describe(size: number, maxFrameSize: number, prefix: Buffer): string {
  const ascii = prefix.toString("latin1");
  if (/^(GET |POST|PUT |HEAD|DELE|OPTI|PATC)/.test(ascii)) {
    return `received what looks like an HTTP request ("${ascii}...") on the Kafka port; send HTTP to the admin port instead`;
  }
  if (ascii === "HTTP") {
    // A client pointed at an HTTP server reads its "HTTP/1.1 400 ..." as a frame of 1213486160 bytes.
    return `received what looks like an HTTP response ("HTTP...") where a Kafka response was expected: that address is an HTTP port (Raftka's admin port?); connect to a Kafka listener instead (by default port 9092)`;
  }
  if (prefix[0] === 0x16 && prefix[1] === 0x03) {
    return "received what looks like a TLS handshake on a plaintext Kafka listener; connect without TLS or use a TLS listener";
  }
  if (size < 0) return `frame size ${size} is negative; the peer is not speaking the Kafka protocol`;
  return `frame of ${size} bytes exceeds the maximum of ${maxFrameSize} bytes; send smaller requests or raise the limit (socket.request.max.bytes)`;
}

/**
 * Splits a byte stream into Kafka frames (int32 size prefix, then that many bytes). A frame that arrives
 * inside one chunk is returned as a zero-copy view of it; only frames spanning chunks are copied once.
 * After a FrameSizeError the splitter stays failed: the stream position is lost, so close the connection.
 */
export class FrameSplitter {
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Payload size of the frame being assembled, or -1 while its size prefix is still incomplete. */
  private expected = -1;
  private failure: FrameSizeError | null = null;

  constructor(readonly maxFrameSize: number) {
    if (!Number.isInteger(maxFrameSize) || maxFrameSize < 0) {
      throw new RangeError(`maxFrameSize must be a non-negative integer, got ${maxFrameSize}`);
    }
  }

  /** Bytes received but not yet returned as part of a frame. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /** Feeds the next chunk from the socket; returns every frame it completes (payloads without the size). */
  push(chunk: Buffer): Buffer[] {
    if (this.failure !== null) throw this.failure;
    const frames: Buffer[] = [];
    if (chunk.length > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
    for (;;) {
      if (this.expected < 0) {
        if (this.pendingBytes < 4) break;
        const prefix = this.take(4);
        const size = prefix.readInt32BE(0);
        if (size < 0 || size > this.maxFrameSize) {
          this.failure = new FrameSizeError(size, this.maxFrameSize, prefix);
          throw this.failure;
        }
        this.expected = size;
      }
      if (this.pendingBytes < this.expected) break;
      frames.push(this.take(this.expected));
      this.expected = -1;
    }
    return frames;
  }

  private take(length: number): Buffer {
    const head = this.pending[0];
    if (length === 0) return Buffer.alloc(0);
    if (head !== undefined && head.length >= length) {
      const out = head.subarray(0, length);
      this.consumeHead(length);
      return out;
    }
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const first = this.pending[0]!;
      const part = Math.min(first.length, length - filled);
      first.copy(out, filled, 0, part);
      filled += part;
      this.consumeHead(part);
    }
    return out;
  }

  private consumeHead(length: number): void {
    const head = this.pending[0]!;
    if (length === head.length) this.pending.shift();
    else this.pending[0] = head.subarray(length);
    this.pendingBytes -= length;
  }
}
