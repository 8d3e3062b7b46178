import { describe, expect, it } from "vitest";
import {
  ApiKey,
  decodeRequestBody,
  decodeRequestHeader,
  decodeResponseFrame,
  encodeRequestFrame,
  encodeResponseFrame,
  FrameSizeError,
  FrameSplitter,
  ProtocolDecodeError,
  ZERO_COPY_THRESHOLD,
} from "../src/index.js";

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ""), "hex");
const ascii = (text: string): string => Buffer.from(text, "latin1").toString("hex");

describe("ApiVersions v3, librdkafka's first request, byte for byte", () => {
  // Request header v2: api key 18, version 3, correlation id 1, client id "rdkafka" (int16 length
  // even though the header is flexible), empty tag section. Body: compact strings and a tag section.
  const request = hex(`
    0012 0003 00000001 0007 ${ascii("rdkafka")} 00
    0b ${ascii("librdkafka")} 06 ${ascii("2.0.2")} 00`);

  it("decodes the request header and body", () => {
    const header = decodeRequestHeader(request);
    expect(header).toMatchObject({
      apiKey: 18,
      apiVersion: 3,
      correlationId: 1,
      clientId: "rdkafka",
      supported: true,
      headerVersion: 2,
      headerLength: 18,
    });
    const body = decodeRequestBody(ApiKey.ApiVersions, header, request);
    expect(body).toEqual({ clientSoftwareName: "librdkafka", clientSoftwareVersion: "2.0.2" });
  });

  it("encodes the request exactly as librdkafka does", () => {
    const frame = Buffer.concat(
      encodeRequestFrame(ApiKey.ApiVersions, 3, 1, "rdkafka", {
        clientSoftwareName: "librdkafka",
        clientSoftwareVersion: "2.0.2",
      }),
    );
    expect(frame.readInt32BE(0)).toBe(request.length);
    expect(frame.subarray(4).toString("hex")).toBe(request.toString("hex"));
  });

  it("encodes the response with header v0 (no tag byte) and a flexible body", () => {
    const frame = Buffer.concat(
      encodeResponseFrame(ApiKey.ApiVersions, 3, 1, {
        errorCode: 0,
        apiKeys: [
          { apiKey: 0, minVersion: 3, maxVersion: 7 },
          { apiKey: 18, minVersion: 0, maxVersion: 3 },
        ],
        throttleTimeMs: 0,
      }),
    );
    const expected = hex(`
      00000001
      0000
      03 0000 0003 0007 00  0012 0000 0003 00
      00000000
      00`);
    expect(frame.readInt32BE(0)).toBe(expected.length);
    expect(frame.subarray(4).toString("hex")).toBe(expected.toString("hex"));
    const decoded = decodeResponseFrame(ApiKey.ApiVersions, 3, frame.subarray(4));
    expect(decoded.correlationId).toBe(1);
    expect(decoded.response.apiKeys).toHaveLength(2);
  });
});

describe("decodeRequestHeader", () => {
  it("identifies an unknown API key without failing, so the broker can close with a precise reason", () => {
    const frame = hex(`7fff 0001 0000002a 0003 ${ascii("abc")}`);
    expect(decodeRequestHeader(frame)).toMatchObject({
      apiKey: 0x7fff,
      apiVersion: 1,
      correlationId: 42,
      clientId: "abc",
      api: undefined,
      supported: false,
    });
  });

  it("identifies a too-new ApiVersions request so the broker can answer UNSUPPORTED_VERSION", () => {
    const frame = hex(`0012 0063 00000007 0007 ${ascii("rdkafka")} 00 ffff`);
    const header = decodeRequestHeader(frame);
    expect(header).toMatchObject({
      apiKey: 18,
      apiVersion: 99,
      correlationId: 7,
      supported: false,
      headerVersion: 2,
    });
    expect(header.api?.name).toBe("ApiVersions");
    expect(() => decodeRequestBody(ApiKey.ApiVersions, header, frame)).toThrow(/outside 0-4/);
  });

  it("still yields the identifying prefix when an unsupported request's client id is garbage", () => {
    const frame = hex("7fff 0000 00000005 7fff 41");
    expect(decodeRequestHeader(frame)).toMatchObject({ apiKey: 0x7fff, correlationId: 5, headerLength: 8 });
  });

  it("rejects a frame too short to hold a header with ProtocolDecodeError", () => {
    expect(() => decodeRequestHeader(hex("0012 0003 00"))).toThrow(ProtocolDecodeError);
  });

  it("reports a malformed header of a supported request with the API and correlation id", () => {
    expect(() => decodeRequestHeader(hex("0000 0007 00000009 0040 41"))).toThrow(
      /request header v1 of Produce v7 \(correlation id 9\)/,
    );
  });

  it("uses header v0 for ControlledShutdown v0 (no client id)", () => {
    const header = decodeRequestHeader(hex("0007 0000 00000003 00000001"));
    expect(header).toMatchObject({ headerVersion: 0, headerLength: 8, supported: true });
  });
});

describe("FrameSplitter", () => {
  const frameOf = (payload: Buffer): Buffer => {
    const size = Buffer.alloc(4);
    size.writeInt32BE(payload.length);
    return Buffer.concat([size, payload]);
  };

  it("splits frames arriving in arbitrary pieces, including split size prefixes", () => {
    const payloads = [Buffer.from("first"), Buffer.alloc(0), Buffer.from("third frame, a bit longer")];
    const stream = Buffer.concat(payloads.map(frameOf));
    for (let pieceSize = 1; pieceSize <= stream.length; pieceSize++) {
      const splitter = new FrameSplitter(1024);
      const frames: Buffer[] = [];
      for (let i = 0; i < stream.length; i += pieceSize)
        frames.push(...splitter.push(stream.subarray(i, i + pieceSize)));
      expect(frames.map((f) => f.toString())).toEqual(payloads.map((p) => p.toString()));
      expect(splitter.bufferedBytes).toBe(0);
    }
  });

  it("returns frames inside one chunk as views of it (no copy)", () => {
    const chunk = Buffer.concat([frameOf(Buffer.from("abc")), frameOf(Buffer.from("defg"))]);
    const frames = new FrameSplitter(100).push(chunk);
    expect(frames.map((f) => f.buffer === chunk.buffer)).toEqual([true, true]);
  });

  it("fails on a frame above the caller's maximum and stays failed", () => {
    const splitter = new FrameSplitter(10);
    expect(() => splitter.push(hex("0000000b"))).toThrow(FrameSizeError);
    expect(() => splitter.push(hex("00"))).toThrow(/exceeds the maximum of 10 bytes/);
  });

  it("fails on a negative size", () => {
    const error = (() => {
      try {
        new FrameSplitter(10).push(hex("ffffff00"));
      } catch (caught) {
        return caught as FrameSizeError;
      }
    })();
    expect(error).toBeInstanceOf(FrameSizeError);
    expect(error).toBeInstanceOf(ProtocolDecodeError);
    expect(error?.size).toBe(-256);
  });

  it("recognises HTTP and TLS sent to the Kafka port", () => {
    expect(() => new FrameSplitter(1 << 20).push(Buffer.from("GET / HTTP/1.1\r\n"))).toThrow(/HTTP request/);
    expect(() => new FrameSplitter(1 << 20).push(hex("16030100f4010000"))).toThrow(/TLS handshake/);
  });
});

describe("frame encoding", () => {
  it("hands large records to the socket as their own chunk instead of copying them", () => {
    const records = Buffer.alloc(ZERO_COPY_THRESHOLD * 4, 7);
    const chunks = encodeResponseFrame(ApiKey.Fetch, 11, 5, {
      throttleTimeMs: 0,
      errorCode: 0,
      sessionId: 0,
      responses: [
        {
          topic: "t",
          partitions: [
            {
              partitionIndex: 0,
              errorCode: 0,
              highWatermark: 1n,
              lastStableOffset: 1n,
              logStartOffset: 0n,
              abortedTransactions: null,
              preferredReadReplica: -1,
              records,
            },
          ],
        },
      ],
    });
    expect(chunks).toContain(records);
    const wire = Buffer.concat(chunks);
    expect(wire.readInt32BE(0)).toBe(wire.length - 4);
    const { response } = decodeResponseFrame(ApiKey.Fetch, 11, wire.subarray(4));
    expect(response.responses[0]!.partitions[0]!.records!.equals(records)).toBe(true);
  });

  it("refuses a version outside the API's range with advice", () => {
    expect(() =>
      encodeRequestFrame(ApiKey.Produce, 12, 1, null, { acks: 1, timeoutMs: 1, topicData: [] }),
    ).toThrow(/Produce version 12 is outside 0-11/);
  });
});
