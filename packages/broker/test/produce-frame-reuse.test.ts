import { ApiKey, decodeRecordBatch, ErrorCode, sliceBatches, validateRecordBatch } from "@raftka/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ReplicatedLog } from "../src/partitions/replicated-log.js";
import {
  batch,
  createTopic,
  fetchRequest,
  produceRequest,
  startTestBroker,
  type TestBroker,
} from "./helpers.js";

/** A batch large enough that its request is read into a pooled frame; every byte says where it belongs. */
function largeBatch(label: string, fill: string): Buffer {
  return batch(Array.from({ length: 20 }, (_, index) => `${label}-r${index}-`.padEnd(4000, fill)));
}

async function readAll(node: TestBroker, topic: string, partition: number): Promise<string[]> {
  const connection = await node.connect();
  const values: string[] = [];
  let offset = 0n;
  for (;;) {
    const response = await connection.send(
      ApiKey.Fetch,
      11,
      fetchRequest([{ topic, partition, offset, maxBytes: 4 * 1024 * 1024 }]),
    );
    const data = response.responses[0]!.partitions[0]!;
    expect(data.errorCode).toBe(ErrorCode.NONE);
    const batches = sliceBatches(data.records ?? Buffer.alloc(0)).batches;
    if (batches.length === 0) return values;
    for (const entry of batches) {
      validateRecordBatch(entry.bytes);
      const decoded = decodeRecordBatch(entry.bytes);
      for (const record of decoded.records) values.push(record.value!.toString());
      offset = decoded.header.baseOffset + BigInt(decoded.header.lastOffsetDelta) + 1n;
    }
  }
}

describe.each([
  ["Raft groups", {}],
  ["local logs", { "raft.partitions.enable": false }],
])("Produce frames read into pooled buffers, partitions on %s", (_name, settings) => {
  let node: TestBroker;
  beforeAll(async () => {
    node = await startTestBroker(settings);
  });
  afterAll(async () => {
    await node.cleanup();
  });

  it("reuses frames once their records are written, and every record reads back as it was sent", async () => {
    const setup = await node.connect();
    await createTopic(setup, "frames", 4);
    const connections = await Promise.all([0, 1, 2, 3].map(() => node.connect()));
    const sends = connections.flatMap((connection, connectionIndex) =>
      Array.from({ length: 30 }, (_, round) => {
        const fill = String.fromCharCode(97 + ((round + connectionIndex) % 26));
        const request = produceRequest(
          "frames",
          connectionIndex,
          largeBatch(`c${connectionIndex}-q${round}`, fill),
          round % 2 === 0 ? 1 : -1,
        );
        return connection.send(ApiKey.Produce, 7, request);
      }),
    );
    for (const response of await Promise.all(sends)) {
      expect(response.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
    }
    // The frames came back to the pool (nothing has fetched yet, so nothing else put buffers there).
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(node.broker.buffers.idle).toBeGreaterThan(0);
    for (let partition = 0; partition < 4; partition++) {
      const values = await readAll(node, "frames", partition);
      expect(values).toHaveLength(30 * 20);
      values.forEach((value, index) => {
        const round = Math.floor(index / 20);
        const fill = String.fromCharCode(97 + ((round + partition) % 26));
        expect(value).toBe(`c${partition}-q${round}-r${index % 20}-`.padEnd(4000, fill));
      });
    }
  });

  it("keeps the frame of an acks=all Produce that timed out until its append is done", async () => {
    const setup = await node.connect();
    await createTopic(setup, "slow", 1);
    await createTopic(setup, "other", 1);
    const partitionLog = (topic: string) =>
      node.broker.services.partitions.topic(topic)!.partitions[0]! as { append: ReplicatedLog["append"] };
    const slow = partitionLog("slow");
    const other = partitionLog("other");
    // The slow partition's append starts only when the test says, as a write queued behind others would.
    let startSlowAppend: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      startSlowAppend = resolve;
    });
    const backings: Record<string, ArrayBufferLike> = {};
    for (const [name, log] of [
      ["slow", slow],
      ["other", other],
    ] as const) {
      const realAppend = log.append.bind(log);
      log.append = (records, options) => {
        backings[name] = records.buffer;
        return name === "slow" ? held.then(() => realAppend(records, options)) : realAppend(records, options);
      };
    }
    try {
      const connection = await node.connect();
      node.broker.buffers.clear();
      const request = { ...produceRequest("slow", 0, largeBatch("slow", "s")), timeoutMs: 100 };
      const response = await connection.send(ApiKey.Produce, 7, request);
      expect(response.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.REQUEST_TIMED_OUT);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(node.broker.buffers.idle).toBe(0);
      // A request of the same size is read into that frame if it went back to the pool too early.
      const next = await connection.send(ApiKey.Produce, 7, produceRequest("other", 0, largeBatch("x", "x")));
      expect(next.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
      expect(backings.other).toBeDefined();
      expect(backings.other).not.toBe(backings.slow);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const idleBefore = node.broker.buffers.idle;
      startSlowAppend();
      await expect.poll(() => node.broker.buffers.idle, { timeout: 5_000 }).toBeGreaterThan(idleBefore);
    } finally {
      delete (slow as { append?: unknown }).append;
      delete (other as { append?: unknown }).append;
    }
    expect(await readAll(node, "slow", 0)).toEqual(
      Array.from({ length: 20 }, (_, index) => `slow-r${index}-`.padEnd(4000, "s")),
    );
  });
});
