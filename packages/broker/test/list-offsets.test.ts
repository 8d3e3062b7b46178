import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { ApiKey, ErrorCode, encodeRecordBatch } from "@raftka/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTopic, produceRequest, startTestBroker, type TestBroker } from "./helpers.js";

let node: TestBroker;

beforeAll(async () => {
  node = await startTestBroker();
});
afterAll(async () => {
  await node.cleanup();
});

describe("ListOffsets", () => {
  it("finds earliest, latest, max timestamp and the first record at or after a timestamp", async () => {
    const connection = await node.connect();
    await createTopic(connection, "timed");
    const base = 1_700_000_000_000;
    // Two batches: timestamps 0,10,20 and 30,40 (+ base), with the largest in the middle of the second.
    for (const timestamps of [
      [0, 10, 20],
      [30, 50, 40],
    ]) {
      const records = encodeRecordBatch({
        records: timestamps.map((offset) => ({ value: `at-${offset}`, timestamp: base + offset })),
      });
      await connection.send(ApiKey.Produce, 7, produceRequest("timed", 0, records));
    }
    const ask = async (timestamp: bigint, version = 7) => {
      const response = await connection.send(ApiKey.ListOffsets, version, {
        replicaId: -1,
        isolationLevel: 0,
        topics: [
          {
            name: "timed",
            partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 }],
          },
        ],
      });
      return response.topics[0]!.partitions[0]!;
    };
    expect(await ask(-2n)).toMatchObject({ errorCode: 0, offset: 0n });
    expect(await ask(-1n)).toMatchObject({ errorCode: 0, offset: 6n });
    expect(await ask(BigInt(base + 15))).toMatchObject({ offset: 2n, timestamp: BigInt(base + 20) });
    expect(await ask(BigInt(base + 45))).toMatchObject({ offset: 4n, timestamp: BigInt(base + 50) });
    expect(await ask(BigInt(base + 1000))).toMatchObject({ offset: -1n, timestamp: -1n });
    expect(await ask(-3n)).toMatchObject({ offset: 4n, timestamp: BigInt(base + 50) });
    // Max timestamp exists from v7 on; older versions are told it is unsupported.
    expect(await ask(-3n, 6)).toMatchObject({ errorCode: ErrorCode.UNSUPPORTED_VERSION });
    // v0: the answer is a list of offsets.
    expect((await ask(-1n, 0)).oldStyleOffsets).toEqual([6n]);
  });

  it("answers UNKNOWN_TOPIC_OR_PARTITION and INVALID_REQUEST for a partition listed twice", async () => {
    const connection = await node.connect();
    await createTopic(connection, "twice");
    const partition = { partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n, maxNumOffsets: 1 };
    const response = await connection.send(ApiKey.ListOffsets, 3, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [
        { name: "twice", partitions: [partition, partition] },
        { name: "missing", partitions: [partition] },
      ],
    });
    expect(response.topics.map((topic) => topic.partitions.map((entry) => entry.errorCode))).toEqual([
      [ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_REQUEST],
      [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ]);
  });
});

/** A topic fed one batch per entry of `batches` (record timestamps), with ListOffsets and DeleteRecords at hand. */
async function timedTopic(name: string, batches: number[][], configs: Record<string, string> = {}) {
  const connection = await node.connect();
  // Timestamps from 1970 are past any time retention: keep the broker's retention pass out of the way.
  expect((await createTopic(connection, name, 1, { "retention.ms": "-1", ...configs })).errorCode).toBe(0);
  for (const timestamps of batches) {
    const records = encodeRecordBatch({
      records: timestamps.map((timestamp) => ({ value: `at-${timestamp}`, timestamp })),
    });
    const produced = await connection.send(ApiKey.Produce, 7, produceRequest(name, 0, records));
    expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
  }
  const ask = async (timestamp: number) => {
    const response = await connection.send(ApiKey.ListOffsets, 7, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [
        {
          name,
          partitions: [
            { partitionIndex: 0, currentLeaderEpoch: -1, timestamp: BigInt(timestamp), maxNumOffsets: 1 },
          ],
        },
      ],
    });
    const { errorCode, offset, timestamp: found } = response.topics[0]!.partitions[0]!;
    return { errorCode, offset: Number(offset), timestamp: Number(found) };
  };
  // Whether the layout asked for is the one the lookups meet.
  const logFiles = (await readdir(join(node.dataDir, `${name}-0`))).filter((file) => file.endsWith(".log"));
  expect(logFiles).toHaveLength(configs["segment.bytes"] === undefined ? 1 : batches.length);
  const deleteBefore = async (offset: number) => {
    const response = await connection.send(ApiKey.DeleteRecords, 1, {
      timeoutMs: 5000,
      topics: [{ name, partitions: [{ partitionIndex: 0, offset: BigInt(offset) }] }],
    });
    expect(response.topics[0]!.partitions[0]!.errorCode).toBe(0);
  };
  return { ask, deleteBefore, log: node.broker.services.partitions.partition(name, 0)! };
}

const found = (offset: number, timestamp: number) => ({ errorCode: ErrorCode.NONE, offset, timestamp });
const NOTHING = found(-1, -1);
// One segment for everything, or (150 bytes) a segment per batch, so that lookups cross segments.
const layouts: { layout: string; configs: Record<string, string> }[] = [
  { layout: "one segment", configs: {} },
  { layout: "a segment per batch", configs: { "segment.bytes": "150" } },
];

describe("ListOffsets after DeleteRecords", () => {
  it.each(layouts)(
    "by timestamp goes past a batch the log start cut into ($layout)",
    async ({ layout, configs }) => {
      const { ask, deleteBefore } = await timedTopic(
        `cut-${layout.replaceAll(" ", "-")}`,
        [[1000, 9000, 2000], [3000]],
        configs,
      );
      expect(await ask(2500)).toEqual(found(1, 9000));
      await deleteBefore(2);
      // Offset 2 (2000) is the only record left in the first batch and is too old: the answer is the next batch's.
      expect(await ask(2500)).toEqual(found(3, 3000));
      expect(await ask(1500)).toEqual(found(2, 2000));
      expect(await ask(0)).toEqual(found(2, 2000));
      expect(await ask(3001)).toEqual(NOTHING);
    },
  );

  it("by timestamp and max timestamp with the log start inside the first batch of a later segment", async () => {
    const { ask, deleteBefore } = await timedTopic(
      "cut-later-segment",
      [[5000], [1000, 9000, 2000], [3000]],
      { "segment.bytes": "150" },
    );
    await deleteBefore(3);
    expect(await ask(2500)).toEqual(found(4, 3000));
    expect(await ask(1500)).toEqual(found(3, 2000));
    expect(await ask(-3)).toEqual(found(4, 3000));
  });

  it.each(layouts)(
    "max timestamp answers the largest timestamp still readable ($layout)",
    async ({ layout, configs }) => {
      const { ask, deleteBefore } = await timedTopic(
        `max-${layout.replaceAll(" ", "-")}`,
        [
          [1000, 9000, 2000],
          [3000, 4000],
        ],
        configs,
      );
      expect(await ask(-3)).toEqual(found(1, 9000));
      // Inside the batch holding the maximum: what is left of it (2000) loses to the next batch.
      await deleteBefore(2);
      expect(await ask(-3)).toEqual(found(4, 4000));
      // On a batch boundary: the maximum's batch is gone, its segment may not be.
      await deleteBefore(3);
      expect(await ask(-3)).toEqual(found(4, 4000));
    },
  );

  it("max timestamp prefers the earlier of two records with the largest timestamp left", async () => {
    const { ask, deleteBefore } = await timedTopic("max-tie", [[1000, 9000, 4000], [4000]]);
    await deleteBefore(2);
    expect(await ask(-3)).toEqual(found(2, 4000));
  });

  it.each(layouts)(
    "answers from the last batch once everything before it is deleted ($layout)",
    async ({ layout, configs }) => {
      const { ask, deleteBefore } = await timedTopic(
        `last-${layout.replaceAll(" ", "-")}`,
        [
          [1000, 9000, 2000],
          [3000, 4000],
          [500, 600],
        ],
        configs,
      );
      await deleteBefore(5);
      expect(await ask(-3)).toEqual(found(6, 600));
      expect(await ask(0)).toEqual(found(5, 500));
      expect(await ask(550)).toEqual(found(6, 600));
      expect(await ask(700)).toEqual(NOTHING);
    },
  );

  it.each(layouts)(
    "answers as for an empty partition once every record is deleted ($layout)",
    async ({ layout, configs }) => {
      const { ask, deleteBefore } = await timedTopic(
        `gone-${layout.replaceAll(" ", "-")}`,
        [
          [1000, 9000, 2000],
          [3000, 4000],
        ],
        configs,
      );
      await deleteBefore(5);
      expect(await ask(-3)).toEqual(NOTHING);
      expect(await ask(0)).toEqual(NOTHING);
      expect(await ask(-2)).toMatchObject({ errorCode: ErrorCode.NONE, offset: 5 });
      expect(await ask(-1)).toMatchObject({ errorCode: ErrorCode.NONE, offset: 5 });
    },
  );

  it("looks again when the log start passes the batch found before it is read", async () => {
    const { ask, log } = await timedTopic("raced", [[1000, 9000, 2000], [3000], [4000]]);
    const read = log.read.bind(log);
    // Retention or DeleteRecords between storage naming a batch and the handler reading it.
    const raceTo = (offset: number) => {
      log.read = async (...args) => {
        log.read = read;
        await log.deleteRecordsBefore(offset);
        return read(...args);
      };
    };
    raceTo(3);
    expect(await ask(1500)).toEqual(found(3, 3000));
    raceTo(4);
    expect(await ask(-3)).toEqual(found(4, 4000));
  });
});
