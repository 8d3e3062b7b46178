import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ApiKey,
  decodeResponseFrame,
  ErrorCode,
  encodeRequestFrame,
  FrameSplitter,
  KafkaConnectionError,
  sliceBatches,
} from "@raftka/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  batch,
  createTopic,
  fetchRequest,
  produceRequest,
  startTestBroker,
  type TestBroker,
} from "./helpers.js";

let node: TestBroker;

beforeAll(async () => {
  node = await startTestBroker();
});
afterAll(async () => {
  await node.cleanup();
});

/** Sends raw bytes on a fresh socket and collects response frames until the broker closes it or `waitMs` passes. */
async function rawExchange(
  bytes: Buffer,
  waitMs = 500,
  port = node.port,
): Promise<{ frames: Buffer[]; closedByBroker: boolean }> {
  const socket = createConnection({ host: "127.0.0.1", port });
  const splitter = new FrameSplitter(1 << 24);
  const frames: Buffer[] = [];
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ frames, closedByBroker: false });
    }, waitMs);
    socket.on("data", (chunk) => frames.push(...splitter.push(chunk)));
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ frames, closedByBroker: true });
    });
    socket.write(bytes);
  });
}

/** The value of one series in the node's /metrics text (name and labels as written there), 0 before its first sample. */
async function sampleValue(series: string): Promise<number> {
  const line = (await node.metrics.render()).split("\n").find((text) => text.startsWith(`${series} `));
  return Number(line?.split(" ").pop() ?? 0);
}

describe("ApiVersions", () => {
  it("lists the served APIs at every version 0-4 with the minimums clients depend on", async () => {
    const connection = await node.connect();
    for (const version of [0, 1, 2, 3, 4]) {
      const response = await connection.send(ApiKey.ApiVersions, version, {
        clientSoftwareName: "raftka-test",
        clientSoftwareVersion: "1.0",
      });
      expect(response.errorCode).toBe(ErrorCode.NONE);
      const byKey = new Map(response.apiKeys.map((entry) => [entry.apiKey, entry]));
      expect(byKey.get(ApiKey.Produce)).toMatchObject({ minVersion: 0 });
      expect(byKey.get(ApiKey.Fetch)).toMatchObject({ minVersion: 4 });
      expect(byKey.get(ApiKey.Metadata)).toMatchObject({ minVersion: 0, maxVersion: 12 });
      expect(byKey.get(ApiKey.ApiVersions)).toMatchObject({ minVersion: 0, maxVersion: 4 });
    }
  });

  it("answers v3+ with an invalid client software name or version INVALID_REQUEST and no API keys, as Kafka does", async () => {
    const connection = await node.connect();
    const invalid = [
      { clientSoftwareName: "bad name!", clientSoftwareVersion: "1.0" },
      { clientSoftwareName: "", clientSoftwareVersion: "1.0" },
      { clientSoftwareName: "librdkafka", clientSoftwareVersion: "" },
      { clientSoftwareName: "-leading-dash", clientSoftwareVersion: "1.0" },
      { clientSoftwareName: "librdkafka", clientSoftwareVersion: "2.0.2." },
    ];
    for (const version of [3, 4]) {
      for (const software of invalid) {
        expect(await connection.send(ApiKey.ApiVersions, version, software)).toMatchObject({
          errorCode: ErrorCode.INVALID_REQUEST,
          apiKeys: [],
        });
      }
      const valid = await connection.send(ApiKey.ApiVersions, version, {
        clientSoftwareName: "apache-kafka-java",
        clientSoftwareVersion: "3.9.0-SNAPSHOT.1",
      });
      expect(valid.errorCode).toBe(ErrorCode.NONE);
    }
    // Before v3 the fields do not exist, so nothing is checked.
    expect((await connection.send(ApiKey.ApiVersions, 2, {})).errorCode).toBe(ErrorCode.NONE);
  });

  it("answers an unknown ApiVersions version in v0 format with UNSUPPORTED_VERSION and the supported range", async () => {
    const frame = Buffer.concat(encodeRequestFrame(ApiKey.ApiVersions, 0, 77, "test", {}));
    frame.writeInt16BE(9, 6); // request api version, right after the size and api key
    const { frames, closedByBroker } = await rawExchange(frame);
    expect(closedByBroker).toBe(false);
    const { correlationId, response } = decodeResponseFrame(ApiKey.ApiVersions, 0, frames[0]!);
    expect(correlationId).toBe(77);
    expect(response.errorCode).toBe(ErrorCode.UNSUPPORTED_VERSION);
    expect(response.apiKeys).toEqual([{ apiKey: ApiKey.ApiVersions, minVersion: 0, maxVersion: 4 }]);
  });
});

describe("SASL on a PLAINTEXT listener", () => {
  it("answers SaslHandshake and SaslAuthenticate with ILLEGAL_SASL_STATE, as Kafka does, and keeps the connection", async () => {
    const connection = await node.connect();
    const versions = await connection.send(ApiKey.ApiVersions, 3, {
      clientSoftwareName: "raftka-test",
      clientSoftwareVersion: "1.0",
    });
    const byKey = new Map(versions.apiKeys.map((entry) => [entry.apiKey, entry]));
    // Advertised as Kafka does; librdkafka needs SaslHandshake v0 listed to try SASL at all.
    expect(byKey.get(ApiKey.SaslHandshake)).toMatchObject({ minVersion: 0, maxVersion: 1 });
    expect(byKey.get(ApiKey.SaslAuthenticate)).toMatchObject({ minVersion: 0, maxVersion: 2 });
    for (const version of [0, 1]) {
      expect(await connection.send(ApiKey.SaslHandshake, version, { mechanism: "PLAIN" })).toEqual({
        errorCode: ErrorCode.ILLEGAL_SASL_STATE,
        mechanisms: [],
      });
    }
    for (const version of [0, 1, 2]) {
      const authenticate = await connection.send(ApiKey.SaslAuthenticate, version, {
        authBytes: Buffer.from("\0user\0secret"),
      });
      expect(authenticate.errorCode).toBe(ErrorCode.ILLEGAL_SASL_STATE);
      expect(authenticate.errorMessage).toMatch(/PLAINTEXT without SASL; configure the client without SASL/);
    }
    expect((await connection.send(ApiKey.Metadata, 1, { topics: [] })).brokers).toHaveLength(1);
  });
});

describe("connections", () => {
  it("answers pipelined requests in order, appending in the order they were sent", async () => {
    const connection = await node.connect();
    await createTopic(connection, "pipelined");
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        connection.send(
          ApiKey.Produce,
          7,
          produceRequest("pipelined", 0, batch([`record-${index}`]), index % 2 ? 1 : -1),
        ),
      ),
    );
    expect(responses.map((response) => response.responses[0]!.partitionResponses[0]!.baseOffset)).toEqual(
      Array.from({ length: 50 }, (_, index) => BigInt(index)),
    );
    const fetched = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([{ topic: "pipelined", partition: 0, offset: 0n }]),
    );
    const records = fetched.responses[0]!.partitions[0]!.records!;
    expect(sliceBatches(records).batches).toHaveLength(50);
  });

  it("sends no response to acks=0 produce and keeps answering the next request on the connection", async () => {
    const connection = await node.connect();
    await createTopic(connection, "fire-and-forget");
    await connection.sendNoResponse(ApiKey.Produce, 7, produceRequest("fire-and-forget", 0, batch(["a"]), 0));
    const acked = await connection.send(
      ApiKey.Produce,
      7,
      produceRequest("fire-and-forget", 0, batch(["b"]), 1),
    );
    expect(acked.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: 0, baseOffset: 1n });
  });

  it("closes the connection of an acks=0 producer whose write failed, as Kafka does", async () => {
    const connection = await node.connect();
    await connection.sendNoResponse(ApiKey.Produce, 7, produceRequest("no-such-topic", 0, batch(["a"]), 0));
    await expect(connection.send(ApiKey.Metadata, 1, { topics: [] })).rejects.toBeInstanceOf(
      KafkaConnectionError,
    );
  });

  it("closes only the connection that sent garbage; others keep working", async () => {
    const healthy = await node.connect();
    const oversize = Buffer.alloc(8);
    oversize.writeInt32BE(200 * 1024 * 1024, 0);
    expect((await rawExchange(oversize)).closedByBroker).toBe(true);
    const unknownKey = Buffer.concat(encodeRequestFrame(ApiKey.Metadata, 1, 5, "test", { topics: [] }));
    unknownKey.writeInt16BE(999, 4);
    expect((await rawExchange(unknownKey)).closedByBroker).toBe(true);
    const truncatedBody = Buffer.from([0, 0, 0, 10, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff]);
    expect((await rawExchange(truncatedBody)).closedByBroker).toBe(true);
    const response = await healthy.send(ApiKey.Metadata, 1, { topics: null });
    expect(response.brokers).toHaveLength(1);
  });

  it("closes the connection that asks for a served API at a version it does not serve, as Kafka does; others keep working", async () => {
    const healthy = await node.connect();
    const metadata = {
      topics: null,
      allowAutoTopicCreation: false,
      includeTopicAuthorizedOperations: false,
    };
    // Metadata v12 as a newer client would write it, but numbered 99: only ApiVersions is answered
    // UNSUPPORTED_VERSION (so a client can learn the ranges); any other API has no response to put it in.
    const frame = Buffer.concat(encodeRequestFrame(ApiKey.Metadata, 12, 6, "test", metadata));
    frame.writeInt16BE(99, 6); // request api version, right after the size and api key
    const { frames, closedByBroker } = await rawExchange(frame, 5000);
    expect(closedByBroker).toBe(true);
    expect(frames).toEqual([]);
    // The log line says what the client did wrong and what the broker serves.
    expect(
      node.logLines.some((line) =>
        String(line.msg).includes("Metadata version 99 is not supported (this broker serves 0-12"),
      ),
    ).toBe(true);
    const response = await healthy.send(ApiKey.Metadata, 12, metadata);
    expect(response.brokers).toHaveLength(1);
  });

  it("closes a connection whose frame is larger than socket.request.max.bytes; one at the limit is answered", async () => {
    // Two Metadata frames one byte apart (the client id's length), and a limit of the smaller's size.
    const frameOf = (clientId: string) =>
      Buffer.concat(encodeRequestFrame(ApiKey.Metadata, 1, 8, clientId, { topics: [] }));
    const atLimit = frameOf("c".repeat(100));
    const overLimit = frameOf("c".repeat(101));
    const limit = atLimit.readInt32BE(0);
    expect(overLimit.readInt32BE(0)).toBe(limit + 1);
    const own = await startTestBroker({ "socket.request.max.bytes": limit });
    try {
      const refused = await rawExchange(overLimit, 5000, own.port);
      expect(refused).toEqual({ frames: [], closedByBroker: true });
      // Refused by its size prefix, before any of it is read: the log line names the setting to raise.
      expect(
        own.logLines.some((line) =>
          String(line.msg).includes(
            `frame of ${limit + 1} bytes exceeds the maximum of ${limit} bytes; send smaller requests or raise the limit (socket.request.max.bytes)`,
          ),
        ),
      ).toBe(true);
      // Another connection, with a frame of exactly the limit, is answered and stays open (as in Kafka,
      // only a size above the limit is refused).
      const answered = await rawExchange(atLimit, 500, own.port);
      expect(answered.closedByBroker).toBe(false);
      expect(answered.frames).toHaveLength(1);
      const { correlationId, response } = decodeResponseFrame(ApiKey.Metadata, 1, answered.frames[0]!);
      expect(correlationId).toBe(8);
      expect(response.brokers).toHaveLength(1);
    } finally {
      await own.cleanup();
    }
  });

  it("answers the requests sent ahead of a bad frame, in order, before it closes the connection", async () => {
    const connection = await node.connect();
    await createTopic(connection, "before-bad-frame");
    const unknownKey = Buffer.concat(encodeRequestFrame(ApiKey.Metadata, 1, 4, "test", { topics: [] }));
    unknownKey.writeInt16BE(999, 4);
    const oversize = Buffer.alloc(4);
    oversize.writeInt32BE(200 * 1024 * 1024, 0);
    for (const [index, bad] of [unknownKey, oversize].entries()) {
      const { frames, closedByBroker } = await rawExchange(
        Buffer.concat([
          ...encodeRequestFrame(ApiKey.ApiVersions, 0, 1, "test", {}),
          ...encodeRequestFrame(
            ApiKey.Produce,
            7,
            2,
            "test",
            produceRequest("before-bad-frame", 0, batch(["x"]), 1),
          ),
          ...encodeRequestFrame(ApiKey.Metadata, 1, 3, "test", { topics: [] }),
          bad,
        ]),
        5000,
      );
      expect(closedByBroker).toBe(true);
      expect(frames.map((frame) => frame.readInt32BE(0))).toEqual([1, 2, 3]);
      const produced = decodeResponseFrame(ApiKey.Produce, 7, frames[1]!).response;
      expect(produced.responses[0]!.partitionResponses[0]).toMatchObject({
        errorCode: ErrorCode.NONE,
        baseOffset: BigInt(index),
      });
    }
    // Each Produce was appended once.
    const highWatermark = async () =>
      (
        await connection.send(
          ApiKey.Fetch,
          11,
          fetchRequest([{ topic: "before-bad-frame", partition: 0, offset: 0n }]),
        )
      ).responses[0]!.partitions[0]!.highWatermark;
    await expect.poll(highWatermark).toBe(2n);
  });

  it("closes a connection with a bad frame even while its client goes on sending and never closes its end", async () => {
    const socket = createConnection({ host: "127.0.0.1", port: node.port });
    socket.on("error", () => {});
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    const oversize = Buffer.alloc(4);
    oversize.writeInt32BE(200 * 1024 * 1024, 0);
    socket.write(oversize);
    // More than the socket buffers hold: with the broker no longer reading, these writes block.
    socket.write(Buffer.alloc(16 * 1024 * 1024, 0x76));
    // A half-close left the connection open until connections.max.idle.ms (fuzz: "no answer within 30 s").
    const outcome = await Promise.race([
      closed.then(() => "closed"),
      new Promise((resolve) => setTimeout(() => resolve("still open after 15 s"), 15_000)),
    ]);
    socket.destroy();
    expect(outcome).toBe("closed");
  });

  it("handles no further request of a client that does not read its responses, and answers them all in order once it does", async () => {
    const connection = await node.connect();
    await createTopic(connection, "unread-responses");
    await connection.send(
      ApiKey.Produce,
      7,
      produceRequest("unread-responses", 0, batch(["x".repeat(900_000)])),
    );
    const fetchesHandled = async () => {
      const metric = await node.metrics.registry.getSingleMetric("raftka_kafka_requests_total")?.get();
      return metric?.values.find((value) => value.labels.api === "Fetch")?.value ?? 0;
    };
    const before = await fetchesHandled();
    // 100 Fetches of ~900 KB each: 90 MB of responses, were they all built.
    const count = 100;
    const socket = createConnection({ host: "127.0.0.1", port: node.port });
    socket.on("error", () => {});
    socket.pause();
    socket.write(
      Buffer.concat(
        Array.from({ length: count }, (_, index) =>
          Buffer.concat(
            encodeRequestFrame(
              ApiKey.Fetch,
              11,
              index,
              "test",
              fetchRequest([{ topic: "unread-responses", partition: 0, offset: 0n }]),
            ),
          ),
        ),
      ),
    );
    try {
      await expect.poll(fetchesHandled).toBeGreaterThanOrEqual(before + 10);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      // 32 MiB unsent and what the kernel's socket buffers took: far from all of them.
      expect((await fetchesHandled()) - before).toBeLessThan(count * 0.8);
      const splitter = new FrameSplitter(1 << 24);
      const frames: Buffer[] = [];
      socket.on("data", (chunk) => frames.push(...splitter.push(chunk)));
      socket.resume();
      await expect.poll(() => frames.length, { timeout: 20_000 }).toBe(count);
      expect(frames.map((frame) => frame.readInt32BE(0))).toEqual(
        Array.from({ length: count }, (_, index) => index),
      );
    } finally {
      socket.destroy();
    }
  });

  it("handles a request after the one before it on its connection, and counts the wait as queued", async () => {
    const queued = () => sampleValue('raftka_kafka_request_queue_seconds_sum{api="Metadata"}');
    const before = await queued();
    const connection = await node.connect();
    await createTopic(connection, "behind-a-long-poll");
    // A long-poll Fetch parks for 300 ms; the Metadata request sent right after it waits for it, as on a
    // Kafka broker, which reads nothing more from a connection until its request is answered.
    const fetched = connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([{ topic: "behind-a-long-poll", partition: 0, offset: 0n }], {
        maxWaitMs: 300,
        minBytes: 1,
      }),
    );
    const metadata = connection.send(ApiKey.Metadata, 1, { topics: null });
    await Promise.all([fetched, metadata]);
    expect((await queued()) - before).toBeGreaterThanOrEqual(0.25);
  });

  it("counts the time a response waits for a client that does not read it", async () => {
    const sent = () => sampleValue('raftka_kafka_response_send_seconds_sum{api="Fetch"}');
    const connection = await node.connect();
    await createTopic(connection, "slow-reader");
    // 6 MiB of records: more than the broker's socket send buffer (net.ipv4.tcp_wmem allows at most
    // 4 MiB) and the client's receive buffer hold while the client reads nothing.
    const value = "v".repeat(96 * 1024);
    for (let request = 0; request < 8; request++) {
      await connection.send(ApiKey.Produce, 7, produceRequest("slow-reader", 0, batch(Array(8).fill(value))));
    }
    const before = await sent();
    const socket = createConnection({ host: "127.0.0.1", port: node.port });
    socket.on("error", () => {});
    const frame = Buffer.concat(
      encodeRequestFrame(
        ApiKey.Fetch,
        11,
        1,
        "slow-reader",
        fetchRequest([{ topic: "slow-reader", partition: 0, offset: 0n, maxBytes: 16 << 20 }]),
      ),
    );
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    socket.pause();
    socket.write(frame);
    // 1 s, of which the broker may take up to half to read the log and start the response on a loaded machine.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const splitter = new FrameSplitter(1 << 25);
    const response = await new Promise<Buffer>((resolve) => {
      socket.on("data", (chunk) => {
        const [complete] = splitter.push(chunk);
        if (complete !== undefined) resolve(complete);
      });
      socket.resume();
    });
    socket.destroy();
    expect(response.length).toBeGreaterThan(6 << 20);
    // The kernel took the last of the response only once the client read, 1 s after asking.
    expect((await sent()) - before).toBeGreaterThanOrEqual(0.5);
  });

  it("releases a parked fetch when its client disconnects", async () => {
    const connection = await node.connect();
    await createTopic(connection, "abandoned");
    const parked = connection
      .send(
        ApiKey.Fetch,
        11,
        fetchRequest([{ topic: "abandoned", partition: 0, offset: 0n }], { maxWaitMs: 600_000, minBytes: 1 }),
      )
      .catch(() => "closed");
    while (node.broker.longPoll.parkedCount === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await connection.close();
    expect(await parked).toBe("closed");
    while (node.broker.longPoll.parkedCount > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(node.broker.longPoll.parkedCount).toBe(0);
  });

  it("answers INVALID_TOPIC_EXCEPTION to produce for an illegal topic name", async () => {
    const connection = await node.connect();
    const response = await connection.send(
      ApiKey.Produce,
      7,
      produceRequest("no spaces allowed", 0, batch(["a"])),
    );
    expect(response.responses[0]!.partitionResponses[0]).toMatchObject({
      errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION,
    });
  });
});

describe("start-up", () => {
  it("warns about the Kafka settings it ignores, naming each and where it was set", async () => {
    const own = await startTestBroker({ "num.io.threads": 8 });
    try {
      const warning = own.logLines.find((line) =>
        String(line.msg).startsWith("Kafka settings that have no effect"),
      );
      expect(warning?.ignored).toEqual(["num.io.threads (flag --num.io.threads)"]);
    } finally {
      await own.cleanup();
    }
  });

  it("warns that object store settings do nothing yet, and is quiet without them", async () => {
    const objectStoreWarning = (lines: Record<string, unknown>[]) =>
      lines.find((line) => String(line.msg).startsWith("object store settings have no effect yet"));
    const own = await startTestBroker({ "object.store.type": "s3", "s3.bucket": "raftka" });
    try {
      expect(objectStoreWarning(own.logLines)?.settings).toEqual(["object.store.type", "s3.bucket"]);
      expect(objectStoreWarning(node.logLines)).toBeUndefined();
    } finally {
      await own.cleanup();
    }
  });

  it("says so when a log directory is a file", async () => {
    const parent = await mkdtemp(join(tmpdir(), "raftka-file-dir-"));
    try {
      const file = join(parent, "not-a-directory");
      await writeFile(file, "x");
      await expect(startTestBroker({}, file)).rejects.toThrow(
        `log.dirs entry ${file} is not a directory (it or a parent is a file: EEXIST); point log.dirs at a directory`,
      );
      await expect(startTestBroker({}, join(file, "below"))).rejects.toThrow(/is not a directory .*ENOTDIR/);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it("refuses cluster.seeds rather than run alone as a cluster of its own", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "raftka-seeded-"));
    try {
      const seeded = startTestBroker(
        { "cluster.seeds": "10.0.0.1:9645", "cluster.secret": "s".repeat(20) },
        dataDir,
      );
      await expect(seeded).rejects.toThrow(/cluster\.seeds is set.*single-node only.*remove cluster\.seeds/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
