import { connect as connectSocket, type Socket } from "node:net";
import { Writable } from "node:stream";
import { Logging } from "@raftka/monitoring";
import { ApiKey, ErrorCode, encodeRequestFrame, KafkaConnection } from "@raftka/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiRegistry } from "../src/server/api-registry.js";
import { BufferPool } from "../src/server/buffer-pool.js";
import { KafkaServer } from "../src/server/kafka-server.js";
import { RequestMemoryBudget } from "../src/server/request-memory-budget.js";
import { RequestMetrics } from "../src/server/request-metrics.js";
import {
  batch,
  createTopic,
  fetchRequest,
  produceRequest,
  startTestBroker,
  type TestBroker,
} from "./helpers.js";

describe("RequestMemoryBudget", () => {
  it("is exhausted at its limit and recovers only at half of it", () => {
    const budget = new RequestMemoryBudget(() => 1000);
    budget.charge(999);
    expect(budget.exhausted()).toBe(false);
    budget.charge(1);
    expect(budget.exhausted()).toBe(true);
    budget.release(400);
    expect(budget.exhausted()).toBe(false);
    expect(budget.recovered()).toBe(false);
    budget.release(100);
    expect(budget.recovered()).toBe(true);
  });

  it("wakes each waiting connection once, when it has recovered", () => {
    const budget = new RequestMemoryBudget(() => 100);
    const woken: string[] = [];
    budget.charge(150);
    budget.whenRecovered(() => woken.push("a"));
    budget.whenRecovered(() => woken.push("b"));
    budget.release(60);
    expect(woken).toEqual([]);
    budget.release(40);
    expect(woken).toEqual(["a", "b"]);
    budget.charge(10);
    budget.release(10);
    expect(woken).toEqual(["a", "b"]);
  });

  it("has no limit at -1", () => {
    const budget = new RequestMemoryBudget(() => -1);
    budget.charge(Number.MAX_SAFE_INTEGER);
    expect(budget.exhausted()).toBe(false);
  });

  it("tells its listeners each time it becomes exhausted, once", () => {
    const budget = new RequestMemoryBudget(() => 100);
    let told = 0;
    const stop = budget.onExhausted(() => told++);
    budget.charge(60);
    expect(told).toBe(0);
    budget.charge(60);
    budget.charge(60);
    expect(told).toBe(1);
    budget.release(180);
    budget.charge(100);
    expect(told).toBe(2);
    stop();
    budget.release(100);
    budget.charge(100);
    expect(told).toBe(2);
  });

  it("lets the frame that started first go on while frames arriving exhaust it, then the next in line", () => {
    const budget = new RequestMemoryBudget(() => 100);
    const woken: string[] = [];
    const a = () => woken.push("a");
    const b = () => woken.push("b");
    budget.frameStarted(a);
    budget.frameStarted(b);
    budget.arrived(120);
    budget.charge(120);
    expect(budget.exhausted()).toBe(true);
    expect(budget.finishesFirst(a)).toBe(true);
    expect(budget.finishesFirst(b)).toBe(false);
    // a's frame is whole (60 of the 120) and its request holds it: b may go on, and is told so.
    budget.arrived(-60);
    budget.frameEnded(a);
    expect(woken).toEqual(["b"]);
    expect(budget.finishesFirst(b)).toBe(true);
    // Whole requests at the limit: b waits for them to be handled.
    budget.charge(100);
    expect(budget.finishesFirst(b)).toBe(false);
    budget.release(100);
    expect(woken).toEqual(["b", "b"]);
    expect(budget.finishesFirst(b)).toBe(true);
  });

  it("refuses to release more than was charged", () => {
    const budget = new RequestMemoryBudget(() => 100);
    budget.charge(10);
    expect(() => budget.release(11)).toThrow(/more than charged/);
  });
});

describe("queued.max.request.bytes on the listener", () => {
  // Real sockets and connections; a Produce handler the test releases, so that requests stay in flight.
  let server: KafkaServer;
  let port: number;
  const parked: (() => void)[] = [];
  /** Every total the budget reported (raftka_kafka_request_held_bytes). */
  const held: number[] = [];
  const connections: KafkaConnection[] = [];

  beforeAll(async () => {
    const registry = new ApiRegistry();
    registry.register({
      apiKey: ApiKey.Produce,
      minVersion: 3,
      maxVersion: 9,
      handle: (request) =>
        new Promise((resolve) =>
          parked.push(() =>
            resolve({
              throttleTimeMs: 0,
              responses: request.topicData.map((topic) => ({
                name: topic.name,
                partitionResponses: topic.partitionData.map((partition) => ({
                  index: partition.index,
                  errorCode: ErrorCode.NONE,
                  baseOffset: 0n,
                  logAppendTimeMs: -1n,
                  logStartOffset: 0n,
                  recordErrors: [],
                  errorMessage: null,
                })),
              })),
            }),
          ),
        ),
    });
    registry.register({
      apiKey: ApiKey.ApiVersions,
      minVersion: 0,
      maxVersion: 3,
      handle: () => ({ errorCode: ErrorCode.NONE, apiKeys: registry.advertised(), throttleTimeMs: 0 }),
    });
    const quiet = new Writable({ write: (_chunk, _encoding, callback) => callback() });
    server = new KafkaServer({
      registry,
      maxRequestBytes: () => 1 << 20,
      idleTimeoutMs: () => 60_000,
      queuedMaxRequestBytes: () => 2000,
      logger: new Logging({ level: "info", destination: quiet }).component("server"),
      metrics: Object.assign(new RequestMetrics(undefined), {
        requestBytesHeld: (bytes: number) => held.push(bytes),
      }),
      buffers: new BufferPool(),
      stalledFrameDeadlineMs: 1000,
    });
    [{ boundPort: port }] = await server.listen([{ name: "PLAINTEXT", host: "127.0.0.1", port: 0 }]);
  });
  afterAll(async () => {
    for (const connection of connections) await connection.close();
    server.destroy();
  });

  const connect = async () => {
    const connection = await KafkaConnection.connect("127.0.0.1", port, { requestTimeoutMs: 15_000 });
    connections.push(connection);
    return connection;
  };
  const produce = (connection: KafkaConnection, bytes: number) =>
    connection.send(ApiKey.Produce, 9, produceRequest("t", 0, Buffer.alloc(bytes, 1)));

  it("reads no connection's next request while Produce requests in flight hold the limit, and reads it once they finish", async () => {
    const producer = await connect();
    const events: string[] = [];
    const inFlight = [1, 2, 3].map((n) => produce(producer, 800).then(() => events.push(`produce ${n}`)));
    await expect.poll(() => parked.length).toBe(3);
    const latecomer = await connect();
    const versions = latecomer
      .send(ApiKey.ApiVersions, 3, { clientSoftwareName: "raftka-test", clientSoftwareVersion: "1.0" })
      .then((response) => {
        events.push("api versions");
        return response;
      });
    // Time enough for the latecomer's request to be answered, were it read.
    await new Promise((resolve) => setTimeout(resolve, 300));
    events.push("released");
    for (const release of parked.splice(0)) release();
    await Promise.all(inFlight);
    expect((await versions).errorCode).toBe(ErrorCode.NONE);
    expect(events).toEqual(["released", "produce 1", "produce 2", "produce 3", "api versions"]);
  });

  it("charges large frames while they arrive, and reads one client's at a time once they exhaust it", async () => {
    const frames = [1, 2, 3].map((n) =>
      Buffer.concat(
        encodeRequestFrame(ApiKey.Produce, 9, n, "raw", produceRequest("t", 0, Buffer.alloc(100_000, n))),
      ),
    );
    const sockets: Socket[] = [];
    const answers: Promise<void>[] = [];
    await Promise.all(
      frames.map(
        (frame) =>
          new Promise<void>((ready) => {
            const socket = connectSocket(port, "127.0.0.1", () => {
              // Only the size prefix and the first bytes: every frame has started before any is complete.
              socket.write(frame.subarray(0, 1000));
              answers.push(new Promise((answered) => socket.once("data", () => answered())));
              ready();
            });
            sockets.push(socket);
          }),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    held.length = 0;
    for (const [index, socket] of sockets.entries()) socket.write(frames[index]!.subarray(1000));
    await expect.poll(() => parked.length).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The other two frames were not taken while the first one held the budget.
    expect(parked.length).toBe(1);
    for (let answered = 0; answered < 3; answered++) {
      await expect.poll(() => parked.length).toBe(1);
      parked.splice(0)[0]!();
    }
    await Promise.all(answers);
    // One whole frame, and the first bytes the others had sent: a frame is charged with what arrived.
    const frameBytes = frames[0]!.length - 4;
    expect(Math.max(...held)).toBeGreaterThanOrEqual(frameBytes);
    expect(Math.max(...held)).toBeLessThanOrEqual(frameBytes + 2 * 1000);
    expect(held.at(-1)).toBe(0);
    for (const socket of sockets) socket.destroy();
  });

  it("gives back the charge of a large frame whose client went away before sending it all", async () => {
    const frame = Buffer.concat(
      encodeRequestFrame(ApiKey.Produce, 9, 1, "raw", produceRequest("t", 0, Buffer.alloc(100_000, 7))),
    );
    held.length = 0;
    const socket = connectSocket(port, "127.0.0.1", () => socket.write(frame.subarray(0, 50_000)));
    // What arrived, not the size the frame announced.
    await expect.poll(() => held.at(-1)).toBe(50_000 - 4);
    socket.destroy();
    await expect.poll(() => held.at(-1)).toBe(0);
    // The node reads other clients again.
    const versions = await (await connect()).send(ApiKey.ApiVersions, 3, {
      clientSoftwareName: "raftka-test",
      clientSoftwareVersion: "1.0",
    });
    expect(versions.errorCode).toBe(ErrorCode.NONE);
  });

  it("charges a frame announced larger than the limit with what arrived, so a client that sends it a byte at a time stops no one", async () => {
    held.length = 0;
    const loris = connectSocket(port, "127.0.0.1");
    const prefix = Buffer.alloc(4);
    prefix.writeInt32BE(500_000);
    loris.on("error", () => {});
    loris.write(prefix);
    const drip = setInterval(() => loris.write(Buffer.alloc(1)), 100);
    try {
      await expect.poll(() => held.at(-1) ?? 0).toBeGreaterThan(0);
      // Charged with a few bytes; the frame's 500 000 are never counted.
      expect(Math.max(...held)).toBeLessThan(2000);
      const answered = await (await connect()).send(ApiKey.ApiVersions, 3, {
        clientSoftwareName: "raftka-test",
        clientSoftwareVersion: "1.0",
      });
      expect(answered.errorCode).toBe(ErrorCode.NONE);
    } finally {
      clearInterval(drip);
      loris.destroy();
    }
    await expect.poll(() => held.at(-1)).toBe(0);
  });

  it("closes a connection whose part-sent frame holds up the others, and reads them again", async () => {
    const frame = Buffer.concat(
      encodeRequestFrame(ApiKey.Produce, 9, 1, "raw", produceRequest("t", 0, Buffer.alloc(100_000, 7))),
    );
    held.length = 0;
    const staller = connectSocket(port, "127.0.0.1", () => staller.write(frame.subarray(0, 50_000)));
    staller.on("error", () => {});
    const closed = new Promise<void>((resolve) => staller.once("close", () => resolve()));
    // Half a frame, then nothing: the budget (2000 bytes) is exhausted by what it sent.
    await expect.poll(() => held.at(-1)).toBe(50_000 - 4);
    const versions = (await connect()).send(ApiKey.ApiVersions, 3, {
      clientSoftwareName: "raftka-test",
      clientSoftwareVersion: "1.0",
    });
    await closed;
    await expect.poll(() => held.at(-1)).toBe(0);
    expect((await versions).errorCode).toBe(ErrorCode.NONE);
  });

  it("still runs a request larger than the whole limit", async () => {
    const producer = await connect();
    const answered = produce(producer, 10_000);
    await expect.poll(() => parked.length).toBe(1);
    parked.splice(0)[0]!();
    expect((await answered).responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
  });
});

describe("queued.max.request.bytes on a broker", () => {
  let node: TestBroker;
  const partitions = 40;

  beforeAll(async () => {
    node = await startTestBroker({ "queued.max.request.bytes": 2000 });
    await createTopic(await node.connect(), "quiet", partitions);
  });
  afterAll(async () => {
    await node.cleanup();
  });

  it("does not count parked long-poll fetches, so other clients are still read while they wait", async () => {
    // One connection each: a connection handles one Fetch at a time, as Kafka does.
    const holders = await Promise.all([1, 2, 3].map(() => node.connect()));
    const everyPartition = Array.from({ length: partitions }, (_, partition) => ({
      topic: "quiet",
      partition,
      offset: 0n,
    }));
    const events: string[] = [];
    // Each long-poll Fetch names 40 partitions (~1 KB): three of them are more than the limit.
    const fetches = [1, 2, 3].map((n) =>
      holders[n - 1]!.send(
        ApiKey.Fetch,
        11,
        fetchRequest(everyPartition, { maxWaitMs: 1_500, minBytes: 1 << 20 }),
      ).then(() => events.push(`fetch ${n}`)),
    );
    // All three are read (and parked) before the second client connects.
    await expect
      .poll(async () => {
        const metric = await node.metrics.registry.getSingleMetric("raftka_kafka_requests_total")?.get();
        return metric?.values.find((value) => value.labels.api === "Fetch")?.value ?? 0;
      })
      .toBeGreaterThanOrEqual(3);
    const latecomer = await node.connect();
    const versions = await latecomer.send(ApiKey.ApiVersions, 3, {
      clientSoftwareName: "raftka-test",
      clientSoftwareVersion: "1.0",
    });
    events.push("api versions");
    await Promise.all(fetches);
    expect(versions.errorCode).toBe(ErrorCode.NONE);
    expect(events[0]).toBe("api versions");
    expect(events.slice(1).sort()).toEqual(["fetch 1", "fetch 2", "fetch 3"]);
  });

  it("still runs a Produce larger than the whole limit, and the connection goes on after it", async () => {
    const connection = await node.connect();
    const produced = await connection.send(
      ApiKey.Produce,
      9,
      produceRequest("quiet", 0, batch(["x".repeat(10_000)])),
    );
    expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
    const fetched = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([{ topic: "quiet", partition: 0, offset: 0n }]),
    );
    expect(fetched.responses[0]!.partitions[0]!.highWatermark).toBe(1n);
  });
});
