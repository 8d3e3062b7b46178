import { join } from "node:path";
import {
  ApiKey,
  ControlRecordType,
  CRC_POSITION,
  computeBatchCrc,
  decodeRecordBatch,
  encodeControlRecordKey,
  encodeEndTransactionMarker,
  encodeRecordBatch,
  readRecordBatchHeader,
  sliceBatches,
} from "@raftka/protocol";
import { FlushScheduler, PartitionLog } from "@raftka/storage";
import { describe, expect, it } from "vitest";
import { hideInternalControlBatches } from "../src/apis/fetch/control-batches.js";
import { batch, createTopic, fetchRequest, produceRequest, startTestBroker } from "./helpers.js";

/** What a Raft leader appends at the start of its term: a control batch of a Raft-internal type. */
function raftControlBatch(): Buffer {
  return encodeRecordBatch({
    records: [
      {
        key: encodeControlRecordKey(ControlRecordType.LEADER_CHANGE),
        value: Buffer.from("raft"),
        timestamp: 1,
      },
    ],
    isControl: true,
  });
}

describe("hiding Raft control batches from consumers", () => {
  it("replaces a Raft control batch by an empty batch over the same offsets, with a valid CRC", () => {
    const data = batch(["a", "b"], { baseOffset: 0n });
    const control = raftControlBatch();
    control.writeBigInt64BE(2n, 0);
    const after = batch(["c"], { baseOffset: 3n });
    const { records, recordCount } = hideInternalControlBatches(Buffer.concat([data, control, after]));
    expect(recordCount).toBe(3);
    const batches = sliceBatches(records).batches.map((entry) => entry.bytes);
    expect(batches).toHaveLength(3);
    const empty = readRecordBatchHeader(batches[1]!);
    expect(empty).toMatchObject({ baseOffset: 2n, lastOffsetDelta: 0, recordCount: 0, isControl: true });
    expect(batches[1]!.readUInt32BE(CRC_POSITION)).toBe(computeBatchCrc(batches[1]!));
    expect(batches[0]).toEqual(data);
    expect(batches[2]).toEqual(after);
  });

  it("passes transaction markers and plain data through untouched (same buffer)", () => {
    const marker = encodeEndTransactionMarker({
      commit: true,
      producerId: 7n,
      producerEpoch: 0,
      coordinatorEpoch: 1,
      timestamp: 5,
    });
    const input = Buffer.concat([batch(["x"]), marker]);
    expect(hideInternalControlBatches(input).records).toBe(input);
  });

  it("serves a log holding a Raft control batch so consumers see only the data around it", async () => {
    const node = await startTestBroker();
    let restarted = node;
    try {
      const connection = await node.connect();
      await createTopic(connection, "with-control");
      await connection.send(ApiKey.Produce, 7, produceRequest("with-control", 0, batch(["before"])));
      await node.stop();
      // A control batch straight into the partition's log, beyond the commit index Raft recorded at
      // shutdown: the restarted leader finds an uncommitted tail and commits it with its own no-op (a
      // second control batch), as after a crash.
      const log = await PartitionLog.open(join(node.dataDir, "with-control-0"), {
        flushScheduler: new FlushScheduler(),
      });
      await log.append(raftControlBatch(), { assignOffsets: true, leaderEpoch: 1 });
      await log.close();
      restarted = await node.restart();
      const again = await restarted.connect();
      await again.send(ApiKey.Produce, 7, produceRequest("with-control", 0, batch(["after"])));
      const response = await again.send(
        ApiKey.Fetch,
        4,
        fetchRequest([{ topic: "with-control", partition: 0, offset: 0n }]),
      );
      const batches = sliceBatches(response.responses[0]!.partitions[0]!.records!).batches.map(
        (entry) => entry.bytes,
      );
      expect(
        batches.map((entry) => decodeRecordBatch(entry).records.map((record) => record.value?.toString())),
      ).toEqual([["before"], [], [], ["after"]]);
      expect(batches.map((entry) => readRecordBatchHeader(entry).baseOffset)).toEqual([0n, 1n, 2n, 3n]);
    } finally {
      await restarted.cleanup();
    }
  });
});
