import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { decodeRecordBatch, ErrorCode, type KafkaConnection, sliceBatches } from "@raftka/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { type GroupsBroker, startGroupsBroker } from "./groups-broker.js";
import { batch, createTopic, fetchRequest, produceRequest } from "./helpers.js";

let running: GroupsBroker | undefined;
afterEach(async () => {
  await running?.cleanup();
  running = undefined;
});

async function initProducerId(
  connection: KafkaConnection,
  version = 4,
  producerId = -1n,
  producerEpoch = -1,
) {
  return connection.send(22, version, {
    transactionalId: null,
    transactionTimeoutMs: 60_000,
    producerId,
    producerEpoch,
  });
}

function idempotentBatch(producerId: bigint, producerEpoch: number, baseSequence: number, values: string[]) {
  return batch(values, { producerId, producerEpoch, baseSequence });
}

async function produce(connection: KafkaConnection, records: Buffer, version = 7) {
  const response = await connection.send(0, version, produceRequest("t", 0, records));
  return response.responses[0]!.partitionResponses[0]!;
}

/** Every record value in the partition, in offset order. */
async function readAll(connection: KafkaConnection, topic = "t"): Promise<string[]> {
  const response = await connection.send(
    1,
    11,
    fetchRequest([{ topic, partition: 0, offset: 0n, maxBytes: 10 * 1024 * 1024 }]),
  );
  const records = response.responses[0]!.partitions[0]!.records;
  if (!records) return [];
  return sliceBatches(records).batches.flatMap((slice) =>
    decodeRecordBatch(slice.bytes).records.map((record) => record.value?.toString() ?? ""),
  );
}

describe("idempotent producers", () => {
  it("are taken at once on a partition created since the start that plain producers already wrote to", async () => {
    running = await startGroupsBroker();
    const connection = await running.connect();
    await createTopic(connection, "t");
    for (let index = 0; index < 20; index++) {
      expect(await produce(connection, batch([`plain-${index}`]))).toMatchObject({
        errorCode: ErrorCode.NONE,
      });
    }
    const { producerId, producerEpoch } = await initProducerId(connection);
    // Not refused while its state replays the log: a new partition's producer state started empty and ready.
    expect(
      await produce(connection, idempotentBatch(producerId, producerEpoch, 0, ["idempotent"])),
    ).toMatchObject({
      errorCode: ErrorCode.NONE,
      baseOffset: 20n,
    });
  });

  it("answers a retried batch with its original offset and writes it once", async () => {
    running = await startGroupsBroker();
    const connection = await running.connect();
    await createTopic(connection, "t");
    const { producerId, producerEpoch, errorCode } = await initProducerId(connection);
    expect(errorCode).toBe(0);
    const first = await produce(connection, idempotentBatch(producerId, producerEpoch, 0, ["a", "b"]));
    const second = await produce(connection, idempotentBatch(producerId, producerEpoch, 2, ["c"]));
    const retry = await produce(connection, idempotentBatch(producerId, producerEpoch, 0, ["a", "b"]));
    expect([first.baseOffset, second.baseOffset]).toEqual([0n, 2n]);
    expect(retry).toMatchObject({ errorCode: 0, baseOffset: 0n });
    expect(await readAll(connection)).toEqual(["a", "b", "c"]);
  });

  it("refuses gaps, stale epochs and transactional ids with Kafka's errors", async () => {
    running = await startGroupsBroker();
    const connection = await running.connect();
    await createTopic(connection, "t");
    const { producerId } = await initProducerId(connection);
    await produce(connection, idempotentBatch(producerId, 0, 0, ["a"]));
    // Produce v8+ carries the error message.
    const gap = await produce(connection, idempotentBatch(producerId, 0, 5, ["x"]), 8);
    expect(gap.errorCode).toBe(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    expect(gap.errorMessage).toMatch(/expected 1/);
    // An idempotent client bumps its epoch itself (KIP-360) and starts it at sequence 0; the old epoch is stale.
    expect((await produce(connection, idempotentBatch(producerId, 1, 0, ["b"]))).errorCode).toBe(0);
    const zombie = await produce(connection, idempotentBatch(producerId, 0, 1, ["z"]));
    expect(zombie.errorCode).toBe(ErrorCode.INVALID_PRODUCER_EPOCH);
    // A half-set KIP-360 id/epoch pair is malformed, as Kafka's KafkaApis judges it.
    expect((await initProducerId(connection, 4, producerId, -1)).errorCode).toBe(ErrorCode.INVALID_REQUEST);
    const transactional = await connection.send(22, 1, {
      transactionalId: "tx",
      transactionTimeoutMs: 60_000,
    });
    expect(transactional.errorCode).toBe(ErrorCode.UNSUPPORTED_VERSION);
    expect(await readAll(connection)).toEqual(["a", "b"]);
  });

  it("hands an idempotent producer that names an id (KIP-360 fields) a new id at epoch 0, as Kafka does", async () => {
    running = await startGroupsBroker();
    const connection = await running.connect();
    await createTopic(connection, "t");
    const first = await initProducerId(connection);
    expect(first).toMatchObject({ errorCode: 0, producerEpoch: 0 });
    // Its own id: still a new one, like Kafka's coordinator for a null transactional id.
    const again = await initProducerId(connection, 4, first.producerId, 0);
    expect(again).toMatchObject({ errorCode: 0, producerEpoch: 0 });
    expect(again.producerId).not.toBe(first.producerId);
    // An id this broker never issued must not be taken over, nor another producer's id fenced by a bump.
    const unissued = again.producerId + 5n;
    const taken = await initProducerId(connection, 4, unissued, 7);
    expect(taken).toMatchObject({ errorCode: 0, producerEpoch: 0 });
    expect(taken.producerId).not.toBe(unissued);
    const fencer = await initProducerId(connection, 3, first.producerId, 0);
    expect(fencer.producerId).not.toBe(first.producerId);
    // So the first producer keeps writing at epoch 0.
    expect(
      (await produce(connection, idempotentBatch(first.producerId, 0, 0, ["still-mine"]))).errorCode,
    ).toBe(0);
    const ids = new Set([first, again, taken, fencer].map((answer) => answer.producerId));
    expect(ids.size).toBe(4);
  });

  it("answers a retry that arrives while its original is still being appended with the original's offset", async () => {
    running = await startGroupsBroker();
    const connection = await running.connect();
    const other = await running.connect();
    await createTopic(connection, "t");
    const { producerId } = await initProducerId(connection);
    const records = idempotentBatch(producerId, 0, 0, ["only-once"]);
    // The same bytes on two connections at once, as after a client timeout and reconnect.
    const [original, retry] = await Promise.all([
      produce(connection, records),
      produce(other, Buffer.from(records)),
    ]);
    expect(original.errorCode).toBe(0);
    expect(retry).toMatchObject({ errorCode: 0, baseOffset: original.baseOffset });
    expect(await readAll(connection)).toEqual(["only-once"]);
  });

  it("recognises retries after a restart, from the shutdown snapshot or, without it, from the log", async () => {
    running = await startGroupsBroker();
    let connection = await running.connect();
    await createTopic(connection, "t");
    const { producerId } = await initProducerId(connection);
    for (let sequence = 0; sequence < 7; sequence++) {
      await produce(connection, idempotentBatch(producerId, 0, sequence, [`v${sequence}`]));
    }
    running = await running.restart();
    const partitionDir = join(running.dataDir, "t-0");
    const snapshots = (await readdir(partitionDir)).filter((name) => name.endsWith(".snapshot"));
    expect(snapshots).toEqual(["00000000000000000007.snapshot"]);
    connection = await running.connect();
    // Every one of the last five batches is still recognised.
    expect(await produce(connection, idempotentBatch(producerId, 0, 3, ["v3"]))).toMatchObject({
      errorCode: 0,
      baseOffset: 3n,
    });
    expect((await produce(connection, idempotentBatch(producerId, 0, 9, ["v9"]))).errorCode).toBe(
      ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
    );

    await running.stop();
    for (const name of await readdir(partitionDir)) {
      if (name.endsWith(".snapshot")) await rm(join(partitionDir, name));
    }
    running = await startGroupsBroker({ dataDir: running.dataDir });
    connection = await running.connect();
    expect(await produce(connection, idempotentBatch(producerId, 0, 6, ["v6"]))).toMatchObject({
      errorCode: 0,
      baseOffset: 6n,
    });
    expect(await produce(connection, idempotentBatch(producerId, 0, 7, ["v7"]))).toMatchObject({
      errorCode: 0,
      baseOffset: 7n,
    });
    expect(await readAll(connection)).toEqual(["v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7"]);
  });

  it("snapshots producer state beside the log while running, not only at shutdown", async () => {
    running = await startGroupsBroker({ producers: { maintenanceIntervalMs: 50, snapshotEveryBytes: 1 } });
    const connection = await running.connect();
    await createTopic(connection, "t");
    const { producerId } = await initProducerId(connection);
    await produce(connection, idempotentBatch(producerId, 0, 0, ["a", "b", "c"]));
    const partitionDir = join(running.dataDir, "t-0");
    await expect
      .poll(async () => (await readdir(partitionDir)).filter((name) => name.endsWith(".snapshot")))
      .toEqual(["00000000000000000003.snapshot"]);
  });

  it("never hands out a producer id twice, also across restarts", async () => {
    running = await startGroupsBroker();
    let connection = await running.connect();
    const before = await Promise.all(Array.from({ length: 5 }, () => initProducerId(connection, 1)));
    running = await running.restart();
    connection = await running.connect();
    const after = await initProducerId(connection, 1);
    const ids = [...before.map((response) => response.producerId), after.producerId];
    expect(new Set(ids).size).toBe(6);
    for (const response of before) expect(after.producerId).toBeGreaterThan(response.producerId);
  });
});
