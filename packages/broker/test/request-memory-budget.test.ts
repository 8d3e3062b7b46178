import { ApiKey, ErrorCode } from "@raftka/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RequestMemoryBudget } from "../src/server/request-memory-budget.js";
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

  it("refuses to release more than was charged", () => {
    const budget = new RequestMemoryBudget(() => 100);
    budget.charge(10);
    expect(() => budget.release(11)).toThrow(/more than charged/);
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

  it("reads no new connection's request while parked requests hold the limit, and reads it once they finish", async () => {
    const holder = await node.connect();
    const everyPartition = Array.from({ length: partitions }, (_, partition) => ({
      topic: "quiet",
      partition,
      offset: 0n,
    }));
    const events: string[] = [];
    // Each long-poll Fetch names 40 partitions (~1 KB): three of them hold more than 2,000 bytes.
    const parked = [1, 2, 3].map((n) =>
      holder
        .send(ApiKey.Fetch, 11, fetchRequest(everyPartition, { maxWaitMs: 1_500, minBytes: 1 << 20 }))
        .then((response) => {
          events.push(`fetch ${n}`);
          return response;
        }),
    );
    // The held bytes gauge shows the parked requests before the second client connects.
    await expect
      .poll(
        async () =>
          (await node.metrics.registry.getSingleMetric("raftka_kafka_request_held_bytes")?.get())?.values[0]
            ?.value,
      )
      .toBeGreaterThanOrEqual(2000);
    const latecomer = await node.connect();
    const versions = latecomer.send(ApiKey.ApiVersions, 3, {
      clientSoftwareName: "raftka-test",
      clientSoftwareVersion: "1.0",
    });
    const answered = await versions.then((response) => {
      events.push("api versions");
      return response;
    });
    for (const response of await Promise.all(parked)) expect(response.errorCode).toBe(ErrorCode.NONE);
    expect(answered.errorCode).toBe(ErrorCode.NONE);
    expect(events).toEqual(["fetch 1", "fetch 2", "fetch 3", "api versions"]);
  });

  it("still runs a request larger than the whole limit, and the connection goes on after it", async () => {
    const connection = await node.connect();
    const large = batch(["x".repeat(10_000)]);
    const produced = await connection.send(ApiKey.Produce, 9, produceRequest("quiet", 0, large));
    expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
    const fetched = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([{ topic: "quiet", partition: 0, offset: 0n }]),
    );
    expect(fetched.responses[0]!.partitions[0]!.highWatermark).toBe(1n);
  });
});
