import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { FrameReader, FrameSizeError, feedSocket, type SocketReadMode } from "../src/index.js";

const frameOf = (payload: Buffer): Buffer => {
  const size = Buffer.alloc(4);
  size.writeInt32BE(payload.length);
  return Buffer.concat([size, payload]);
};

/** Deterministic pseudo-random numbers (xorshift), so a failing case can be rerun. */
function random(seed: number): (below: number) => number {
  let state = seed >>> 0 || 1;
  return (below) => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % below;
  };
}

/** Payloads of every kind of size: empty, small, around the direct-read threshold, about 1 MB. */
function payloads(next: (below: number) => number, count: number): Buffer[] {
  const sizes = [0, 1, 3, 4, 5, 100, 32 * 1024 - 1, 32 * 1024, 32 * 1024 + 1, 64 * 1024 + 7, 1 << 20];
  return Array.from({ length: count }, (_, index) => {
    const size = index < sizes.length ? sizes[index]! : next(300_000);
    const payload = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++) payload[i] = (i * 31 + index) & 0xff;
    return payload;
  });
}

/** Feeds `stream` to the reader the way a socket does: each read fills at most the buffer it is given. */
function readAll(reader: FrameReader, stream: Buffer, readSize: () => number): Buffer[] {
  const frames: Buffer[] = [];
  let offset = 0;
  while (offset < stream.length) {
    const target = reader.readBuffer();
    const length = Math.min(target.length, readSize(), stream.length - offset);
    stream.copy(target, 0, offset, offset + length);
    offset += length;
    frames.push(...reader.filled(length));
  }
  return frames;
}

describe("FrameReader", () => {
  it("returns every frame intact whatever sizes the reads have", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const next = random(seed);
      const expected = payloads(next, 30);
      const stream = Buffer.concat(expected.map(frameOf));
      const reader = new FrameReader(2 << 20);
      const readSizes = [1, 3, 4096, 65536, 1 << 20];
      const frames = readAll(reader, stream, () =>
        seed <= readSizes.length ? readSizes[seed - 1]! : 1 + next(200_000),
      );
      expect(frames.length, `seed ${seed}`).toBe(expected.length);
      frames.forEach((frame, index) => {
        expect(frame.equals(expected[index]!), `seed ${seed}, frame ${index}`).toBe(true);
      });
      expect(reader.bufferedBytes).toBe(0);
    }
  });

  it("returns the frames before a bad size prefix, then fails", () => {
    const reader = new FrameReader(1000);
    const tooLarge = Buffer.alloc(4);
    tooLarge.writeInt32BE(5000);
    const stream = Buffer.concat([frameOf(Buffer.from("one")), frameOf(Buffer.from("two")), tooLarge]);
    stream.copy(reader.readBuffer());
    const frames = reader.filled(stream.length);
    expect(frames.map(String)).toEqual(["one", "two"]);
    expect(reader.failure).toBeInstanceOf(FrameSizeError);
    expect(() => reader.filled(0)).toThrow(FrameSizeError);
    // A read that starts with the bad prefix throws at once.
    const alone = new FrameReader(1000);
    tooLarge.copy(alone.readBuffer());
    expect(() => alone.filled(4)).toThrow(FrameSizeError);
  });

  it("tells the size of the frame arriving and how much of it is here", () => {
    const reader = new FrameReader(1 << 20);
    expect(reader.partialFrameSize).toBe(-1);
    const stream = frameOf(Buffer.alloc(100_000, 1));
    stream.copy(reader.readBuffer(), 0, 0, 1000);
    reader.filled(1000);
    expect(reader.partialFrameSize).toBe(100_000);
    expect(reader.partialFrameFilled).toBe(996);
  });

  it("reads the rest of a large frame straight into the frame's own buffer", () => {
    const reader = new FrameReader(2 << 20);
    const payload = Buffer.alloc(1 << 20, 7);
    const stream = frameOf(payload);
    const first = reader.readBuffer();
    stream.copy(first, 0, 0, 1000);
    expect(reader.filled(1000)).toEqual([]);
    const direct = reader.readBuffer();
    // The socket's next read may take everything the frame still lacks, and nothing more.
    expect(direct.length).toBe(payload.length - 996);
    stream.copy(direct, 0, 1000);
    const [frame] = reader.filled(direct.length);
    expect(frame!.equals(payload)).toBe(true);
    expect(frame!.buffer).toBe(direct.buffer);
  });

  it("takes each frame's buffer from the allocator it was given, once the size is known", () => {
    const sizes: number[] = [];
    const backing = Buffer.alloc(3 << 20, 0xee);
    const reader = new FrameReader(2 << 20, {
      allocate: (size) => {
        sizes.push(size);
        return backing.subarray(0, size);
      },
    });
    const payload = Buffer.alloc(100_000, 9);
    const stream = frameOf(payload);
    for (let offset = 0; offset < stream.length; ) {
      const target = reader.readBuffer();
      const length = Math.min(target.length, stream.length - offset, 40_000);
      stream.copy(target, 0, offset, offset + length);
      offset += length;
      const frames = reader.filled(length);
      if (offset < stream.length) expect(frames).toEqual([]);
      else {
        expect(frames).toHaveLength(1);
        expect(frames[0]!.buffer).toBe(backing.buffer);
        expect(frames[0]!.equals(payload)).toBe(true);
      }
    }
    expect(sizes).toEqual([100_000]);
  });

  it("keeps readers that share the staging buffer apart", () => {
    const staging = Buffer.allocUnsafe(64 * 1024);
    const a = new FrameReader(1 << 20, { staging });
    const b = new FrameReader(1 << 20, { staging });
    const streamA = Buffer.concat([
      frameOf(Buffer.from("from a, first")),
      frameOf(Buffer.from("from a, second")),
    ]);
    const streamB = Buffer.concat([frameOf(Buffer.from("from b"))]);
    const frames: string[] = [];
    // Alternate reads of 5 bytes between the two, as two sockets' reads interleave.
    for (let offset = 0; offset < Math.max(streamA.length, streamB.length); offset += 5) {
      for (const [reader, stream] of [
        [a, streamA],
        [b, streamB],
      ] as const) {
        if (offset >= stream.length) continue;
        const length = stream.copy(reader.readBuffer(), 0, offset, Math.min(offset + 5, stream.length));
        frames.push(...reader.filled(length).map((frame) => frame.toString()));
      }
    }
    expect(frames.sort()).toEqual(["from a, first", "from a, second", "from b"]);
  });

  it("fails on a frame above the maximum or a negative size, and stays failed", () => {
    const reader = new FrameReader(10);
    const target = reader.readBuffer();
    Buffer.from("0000000b", "hex").copy(target);
    expect(() => reader.filled(4)).toThrow(FrameSizeError);
    expect(() => reader.filled(0)).toThrow(/exceeds the maximum of 10 bytes/);

    const negative = new FrameReader(10);
    Buffer.from("ffffff00", "hex").copy(negative.readBuffer());
    expect(() => negative.filled(4)).toThrow(/negative/);
  });

  it("recognises HTTP and TLS sent to the Kafka port, even with the prefix split across reads", () => {
    const http = new FrameReader(1 << 20);
    Buffer.from("GE").copy(http.readBuffer());
    expect(http.filled(2)).toEqual([]);
    Buffer.from("T / HTTP/1.1\r\n").copy(http.readBuffer());
    expect(() => http.filled(14)).toThrow(/HTTP request/);

    const tls = new FrameReader(1 << 20);
    Buffer.from("16030100f4010000", "hex").copy(tls.readBuffer());
    expect(() => tls.filled(8)).toThrow(/TLS handshake/);
  });
});

describe("feedSocket", () => {
  let server: Server | undefined;
  const clients: Socket[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    if (server) await new Promise((resolve) => server!.close(resolve));
    server = undefined;
  });

  /** A server that reads frames with feedSocket; resolves with its mode and the frames it got. */
  async function serve(prefer: SocketReadMode, pauseAfterFirstFrame = false) {
    const received: Buffer[] = [];
    let mode: SocketReadMode | undefined;
    let accepted: Socket | undefined;
    server = createServer({ pauseOnConnect: true }, (socket) => {
      accepted = socket;
      const reader = new FrameReader(4 << 20);
      mode = feedSocket(
        socket,
        reader,
        (length) => {
          for (const frame of reader.filled(length)) {
            received.push(frame);
            if (pauseAfterFirstFrame && received.length === 1) socket.pause();
          }
        },
        prefer,
      );
      socket.resume();
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as { port: number }).port;
    const client = connect(port, "127.0.0.1");
    clients.push(client);
    await once(client, "connect");
    return { client, received, mode: () => mode, accepted: () => accepted };
  }

  async function until(condition: () => boolean): Promise<void> {
    for (let waited = 0; !condition(); waited += 10) {
      if (waited > 10_000) throw new Error("timed out");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  for (const prefer of ["direct", "chunks"] as const) {
    it(`delivers frames intact (${prefer})`, async () => {
      const { client, received, mode } = await serve(prefer);
      const expected = payloads(random(7), 40);
      const stream = Buffer.concat(expected.map(frameOf));
      // Written in uneven pieces, so that frames and size prefixes straddle the socket's reads.
      const next = random(11);
      for (let offset = 0; offset < stream.length; ) {
        const end = Math.min(stream.length, offset + 1 + next(150_000));
        client.write(stream.subarray(offset, end));
        offset = end;
      }
      await until(() => received.length === expected.length);
      // On the Node the broker runs on, accepted sockets read into the frames' own buffers.
      expect(mode()).toBe(prefer);
      received.forEach((frame, index) => {
        expect(frame.equals(expected[index]!), `frame ${index}`).toBe(true);
      });
    });
  }

  it("stops reading while paused and goes on after resume (direct)", async () => {
    const { client, received, mode, accepted } = await serve("direct", true);
    expect(mode()).toBe("direct");
    const frames = [Buffer.alloc(100, 1), Buffer.alloc(200_000, 2), Buffer.alloc(50, 3)];
    client.write(frameOf(frames[0]!));
    await until(() => received.length === 1);
    client.write(Buffer.concat(frames.slice(1).map(frameOf)));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received.length).toBe(1);
    accepted()!.resume();
    await until(() => received.length === 3);
    expect(received.map((frame) => frame.length)).toEqual([100, 200_000, 50]);
  });
});
