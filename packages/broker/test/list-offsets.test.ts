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
