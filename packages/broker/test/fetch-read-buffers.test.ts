import { readFileSync } from "node:fs";
import { ApiKey, decodeRecordBatch, sliceBatches, validateRecordBatch } from "@raftka/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FetchReadBuffers } from "../src/apis/fetch/fetch-read-buffers.js";
import type { ReplicatedReadResult } from "../src/partitions/replicated-log.js";
import { BufferPool } from "../src/server/buffer-pool.js";
import {
  mappedMemory,
  mappedMemoryAvailableOnThisPlatform,
  mappedMemoryUnavailableReason,
} from "../src/server/mapped-memory.js";
import {
  batch,
  createTopic,
  fetchRequest,
  produceRequest,
  startTestBroker,
  type TestBroker,
} from "./helpers.js";

describe("BufferPool", () => {
  it("hands a given-back buffer out again, once, and never one it did not make", () => {
    const pool = new BufferPool(4 * 1024 * 1024);
    const first = pool.take(1_000_000);
    expect(first.length).toBe(1_000_000);
    pool.give(first);
    pool.give(first);
    expect(pool.idle).toBeGreaterThanOrEqual(1_000_000);
    const again = pool.take(1_010_000);
    expect(again.buffer).toBe(first.buffer);
    expect(pool.take(1_000_000).buffer).not.toBe(first.buffer);

    const foreign = Buffer.allocUnsafe(100);
    pool.give(foreign);
    expect(pool.take(100).buffer).not.toBe(foreign.buffer);
    pool.close();
  });

  it("keeps at most its idle limit and leaves large reads unpooled", () => {
    const pool = new BufferPool(3 * 1024 * 1024);
    const taken = [0, 1, 2, 3].map(() => pool.take(1024 * 1024));
    for (const buffer of taken) pool.give(buffer);
    expect(pool.idle).toBeLessThanOrEqual(3 * 1024 * 1024);
    const large = pool.take(16 * 1024 * 1024);
    pool.give(large);
    expect(pool.idle).toBeLessThanOrEqual(3 * 1024 * 1024);
    pool.close();
    expect(pool.idle).toBe(0);
  });
});

describe("BufferPool sizes", () => {
  it("serves a request from the smallest free buffer at most twice its size", () => {
    const pool = new BufferPool(16 * 1024 * 1024);
    const large = pool.take(3 * 1024 * 1024);
    const medium = pool.take(1_500_000);
    const small = pool.take(1_100_000);
    for (const buffer of [large, medium, small]) pool.give(buffer);
    expect(pool.take(1_000_000).buffer).toBe(small.buffer);
    expect(pool.take(1_000_000).buffer).toBe(medium.buffer);
    // Three times the size: left free for a request it suits.
    expect(pool.take(1_000_000).buffer).not.toBe(large.buffer);
    expect(pool.take(2_000_000).buffer).toBe(large.buffer);
    pool.close();
  });

  it("lets the buffers free the longest lose their pages first when over its idle limit", () => {
    const pool = new BufferPool(2 * 1024 * 1024);
    const [first, second, third] = [0, 1, 2].map(() => pool.take(1024 * 1024));
    for (const buffer of [first!, second!, third!]) pool.give(buffer.fill(7));
    expect(pool.idle).toBe(2 * 1024 * 1024);
    expect(pool.take(1024 * 1024).buffer).toBe(third!.buffer);
    expect(pool.take(1024 * 1024).buffer).toBe(second!.buffer);
    const after = pool.take(1024 * 1024);
    if (mappedMemory === undefined) {
      // Without mappings the buffer went to the garbage collector.
      expect(after.buffer).not.toBe(first!.buffer);
    } else {
      // Kept for its mapping, without its pages: they come back zeroed.
      expect(after.buffer).toBe(first!.buffer);
      expect(after.every((byte) => byte === 0)).toBe(true);
    }
    pool.close();
  });
});

describe.runIf(mappedMemoryAvailableOnThisPlatform)("BufferPool memory", () => {
  const residentBytes = () => Number(readFileSync("/proc/self/statm", "utf8").split(" ")[1]) * 4096;
  const MiB = 1024 * 1024;

  it("is built here", () => {
    expect(mappedMemoryUnavailableReason).toBeUndefined();
  });

  it("hands the pages of buffers over its idle limit back to the system at once, without a garbage collection", () => {
    const took: Record<string, number> = {};
    let releasedBytes = 0;
    const pool = new BufferPool(8 * MiB, undefined, {
      took: (source) => {
        took[source] = (took[source] ?? 0) + 1;
      },
      released: (bytes) => {
        releasedBytes += bytes;
      },
    });
    const taken = Array.from({ length: 64 }, (_, index) => pool.take(MiB).fill(index + 1));
    expect(took).toEqual({ new: 64 });
    const withBuffers = residentBytes();
    for (const buffer of taken) pool.give(buffer);
    const given = residentBytes();
    expect(pool.idle).toBe(8 * MiB);
    expect(pool.coldIdle).toBe(56 * MiB);
    expect(releasedBytes).toBe(56 * MiB);
    // 56 MiB went cold; other allocations of this process may move its RSS by a few MiB.
    expect(withBuffers - given).toBeGreaterThan(40 * MiB);
    // What stays warm keeps its contents; an idle pool lets those pages go too.
    expect(taken[63]!.every((byte) => byte === 64)).toBe(true);
    pool.clear();
    expect(pool.idle).toBe(0);
    expect(taken[63]!.every((byte) => byte === 0)).toBe(true);
    // A burst that comes back takes the cold buffers instead of mapping new ones.
    const again = Array.from({ length: 64 }, () => pool.take(MiB));
    expect(new Set(again.map((buffer) => buffer.buffer)).size).toBe(64);
    expect(again.every((buffer) => taken.some((old) => old.buffer === buffer.buffer))).toBe(true);
    expect(pool.coldIdle).toBe(0);
    expect(took).toEqual({ new: 64, released: 64 });
    expect(releasedBytes).toBe(64 * MiB);
    pool.close();
  });
});

describe("FetchReadBuffers", () => {
  it("gives a buffer back only after the read that fills it has finished", async () => {
    const pool = new BufferPool();
    const buffers = new FetchReadBuffers(pool);
    let finish: (result: ReplicatedReadResult) => void = () => {};
    let filled: Buffer | undefined;
    const running = buffers.read(
      (allocate) =>
        new Promise((resolve) => {
          filled = allocate(200_000);
          finish = resolve;
        }),
    );
    buffers.giveBack();
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.idle).toBe(0);
    expect(pool.take(200_000).buffer).not.toBe(filled!.buffer);
    finish({ records: filled!, nextOffset: 1 });
    await running;
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.idle).toBeGreaterThan(0);
    expect(pool.take(200_000).buffer).toBe(filled!.buffer);
    pool.close();
  });
});

describe("Fetch with reused read buffers", () => {
  let node: TestBroker;
  beforeAll(async () => {
    node = await startTestBroker();
  });
  afterAll(async () => {
    await node.cleanup();
  });

  it("answers many pipelined fetches on several connections, each with its own intact records", async () => {
    const setup = await node.connect();
    await createTopic(setup, "reused", 4);
    const perPartition = 40;
    for (let offset = 0; offset < perPartition; offset++) {
      for (let partition = 0; partition < 4; partition++) {
        const value = `p${partition}-o${offset}-`.padEnd(
          3000,
          String.fromCharCode(97 + ((offset + partition) % 26)),
        );
        const response = await setup.send(
          ApiKey.Produce,
          7,
          produceRequest("reused", partition, batch([value])),
        );
        expect(response.responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
      }
    }
    const connections = await Promise.all([0, 1, 2, 3].map(() => node.connect()));
    const fetches = connections.flatMap((connection, connectionIndex) =>
      Array.from({ length: 25 }, (_, round) => {
        const offsets = [0, 1, 2, 3].map((partition) =>
          BigInt((round * 7 + partition * 5 + connectionIndex) % perPartition),
        );
        const request = fetchRequest(
          offsets.map((offset, partition) => ({
            topic: "reused",
            partition,
            offset,
            maxBytes: 8_000 + 4_000 * (round % 4),
          })),
          { maxBytes: 64 * 1024 },
        );
        return connection.send(ApiKey.Fetch, 11, request).then((response) => ({ response, offsets }));
      }),
    );
    let batches = 0;
    for (const { response, offsets } of await Promise.all(fetches)) {
      for (const data of response.responses[0]!.partitions) {
        let expected = Number(offsets[data.partitionIndex]!);
        for (const entry of sliceBatches(data.records ?? Buffer.alloc(0)).batches) {
          validateRecordBatch(entry.bytes);
          const value = decodeRecordBatch(entry.bytes).records[0]!.value!.toString();
          expect(value.startsWith(`p${data.partitionIndex}-o${expected}-`)).toBe(true);
          expect(value.at(-1)).toBe(String.fromCharCode(97 + ((expected + data.partitionIndex) % 26)));
          expected += 1;
          batches += 1;
        }
      }
    }
    expect(batches).toBeGreaterThan(400);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(node.broker.buffers.idle).toBeGreaterThan(0);
  });
});
