import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  ApiKey,
  type DecodedRequestHeader,
  decodeRequestBody,
  decodeRequestHeader,
  encodeResponseFrame,
  FrameSplitter,
  KafkaConnection,
  KafkaConnectionError,
  RequestTimeoutError,
} from "../src/index.js";

type Handler = (header: DecodedRequestHeader, frame: Buffer, socket: Socket) => void;

/** A real TCP server on port 0 that hands every request frame to `handler`. */
async function startServer(
  handler: Handler,
): Promise<{ server: Server; port: number; received: DecodedRequestHeader[] }> {
  const received: DecodedRequestHeader[] = [];
  const server = createServer((socket) => {
    const splitter = new FrameSplitter(1 << 20);
    socket.on("data", (chunk) => {
      for (const frame of splitter.push(chunk)) {
        const header = decodeRequestHeader(frame);
        received.push(header);
        handler(header, frame, socket);
      }
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("server has no TCP address");
  return { server, port: address.port, received };
}

/** Answers ApiVersions and Metadata the way a broker would. */
const brokerLike: Handler = (header, frame, socket) => {
  if (header.apiKey === ApiKey.ApiVersions) {
    for (const chunk of encodeResponseFrame(ApiKey.ApiVersions, header.apiVersion, header.correlationId, {
      errorCode: 0,
      apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 4 }],
      throttleTimeMs: 0,
    })) {
      socket.write(chunk);
    }
  } else if (header.apiKey === ApiKey.Metadata) {
    const request = decodeRequestBody(ApiKey.Metadata, header, frame);
    const topics = (request.topics ?? []).map((topic) => ({
      errorCode: 3,
      name: topic.name,
      isInternal: false,
      partitions: [],
    }));
    for (const chunk of encodeResponseFrame(ApiKey.Metadata, header.apiVersion, header.correlationId, {
      brokers: [{ nodeId: 1, host: "localhost", port: 9092, rack: null }],
      controllerId: 1,
      topics,
    })) {
      socket.write(chunk);
    }
  }
};

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function connectTo(handler: Handler, options = {}) {
  const started = await startServer(handler);
  cleanups.push(() => new Promise((resolve) => started.server.close(() => resolve())));
  const connection = await KafkaConnection.connect("127.0.0.1", started.port, {
    clientId: "test-client",
    ...options,
  });
  cleanups.push(() => connection.close());
  return { connection, ...started };
}

describe("KafkaConnection", () => {
  it("sends typed requests and resolves decoded responses, including flexible ApiVersions v3", async () => {
    const { connection, received } = await connectTo(brokerLike);
    const versions = await connection.send(ApiKey.ApiVersions, 3, {
      clientSoftwareName: "raftka",
      clientSoftwareVersion: "0.1.0",
    });
    expect(versions.apiKeys).toEqual([{ apiKey: 18, minVersion: 0, maxVersion: 4 }]);
    expect(received[0]).toMatchObject({ apiKey: 18, apiVersion: 3, clientId: "test-client" });
  });

  it("pipelines many requests and matches each response to its request", async () => {
    const { connection, received } = await connectTo(brokerLike);
    const names = Array.from({ length: 20 }, (_, i) => `topic-${i}`);
    const responses = await Promise.all(
      names.map((name) =>
        connection.send(ApiKey.Metadata, 1, { topics: [{ name, topicId: "AAAAAAAAAAAAAAAAAAAAAA" }] }),
      ),
    );
    expect(responses.map((response) => response.topics[0]!.name)).toEqual(names);
    expect(new Set(received.map((header) => header.correlationId)).size).toBe(20);
  });

  it("sends acks=0 requests without waiting for a response and keeps later responses matched", async () => {
    const { connection, received } = await connectTo(brokerLike);
    await connection.sendNoResponse(ApiKey.Produce, 7, {
      transactionalId: null,
      acks: 0,
      timeoutMs: 1000,
      topicData: [{ name: "t", partitionData: [{ index: 0, records: Buffer.from("not-a-real-batch") }] }],
    });
    const metadata = await connection.send(ApiKey.Metadata, 1, { topics: [{ name: "after" }] });
    expect(metadata.topics[0]!.name).toBe("after");
    expect(received.map((header) => header.apiKey)).toEqual([ApiKey.Produce, ApiKey.Metadata]);
    expect(connection.pendingRequests).toBe(0);
  });

  it("times out a request the broker never answers and closes the connection", async () => {
    const { connection } = await connectTo(() => {}, { requestTimeoutMs: 100 });
    await expect(connection.send(ApiKey.ApiVersions, 0, {})).rejects.toBeInstanceOf(RequestTimeoutError);
    expect(connection.closed).toBe(true);
    await expect(connection.send(ApiKey.ApiVersions, 0, {})).rejects.toThrow(/within 100 ms/);
  });

  it("rejects in-flight requests when the broker closes the connection", async () => {
    const { connection } = await connectTo((_header, _frame, socket) => socket.destroy());
    await expect(connection.send(ApiKey.ApiVersions, 0, {})).rejects.toThrow(/closed by the broker/);
  });

  it("fails the connection when a response answers the wrong correlation id", async () => {
    const { connection } = await connectTo((header, _frame, socket) => {
      for (const chunk of encodeResponseFrame(ApiKey.ApiVersions, 0, header.correlationId + 1000, {
        errorCode: 0,
        apiKeys: [],
      })) {
        socket.write(chunk);
      }
    });
    await expect(connection.send(ApiKey.ApiVersions, 0, {})).rejects.toThrow(
      /responses must arrive in order/,
    );
    expect(connection.closed).toBe(true);
  });

  it("says a server answering HTTP is an HTTP port, not that a frame is too large", async () => {
    const { connection } = await connectTo((_header, _frame, socket) => {
      socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    });
    const error = await connection.send(ApiKey.ApiVersions, 0, {}).catch((caught: unknown) => caught);
    expect((error as Error).message).toContain("that address is an HTTP port (Raftka's admin port?)");
    expect((error as Error).message).toContain("connect to a Kafka listener instead (by default port 9092)");
    expect((error as Error).message).not.toContain("socket.request.max.bytes");
  });

  it("reports a refused connection with advice", async () => {
    const probe = await startServer(() => {});
    await new Promise((resolve) => probe.server.close(resolve));
    const error = await KafkaConnection.connect("127.0.0.1", probe.port).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KafkaConnectionError);
    expect((error as Error).message).toMatch(/check the broker address and that it is running/);
  });
});
