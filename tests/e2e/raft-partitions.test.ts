import { ApiKey, encodeRecordBatch, KafkaConnection } from "@raftka/protocol";
import { afterAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "./harness/broker.js";

// Every partition is a one-member Raft group: these check, against a real broker process, what that
// means to a client (the leader epoch is the Raft term, so restarts raise it) and that a node with
// thousands of partitions starts.

const brokers: RunningBroker[] = [];
afterAll(async () => {
  for (const broker of brokers) await broker.cleanup();
});

async function connect(broker: RunningBroker): Promise<KafkaConnection> {
  return KafkaConnection.connect("127.0.0.1", broker.kafkaPort, { requestTimeoutMs: 60_000 });
}

async function createTopic(connection: KafkaConnection, name: string, partitions: number): Promise<void> {
  const response = await connection.send(ApiKey.CreateTopics, 7, {
    timeoutMs: 60_000,
    validateOnly: false,
    topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }],
  });
  expect(response.topics[0]!.errorCode).toBe(0);
}

async function produce(connection: KafkaConnection, topic: string, partition: number, values: string[]) {
  const response = await connection.send(ApiKey.Produce, 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 30_000,
    topicData: [
      {
        name: topic,
        partitionData: [
          {
            index: partition,
            records: encodeRecordBatch({
              records: values.map((value) => ({ value, timestamp: Date.now() })),
            }),
          },
        ],
      },
    ],
  });
  const answer = response.responses[0]!.partitionResponses[0]!;
  expect(answer.errorCode).toBe(0);
  return Number(answer.baseOffset);
}

/** Leader epoch of every partition of `topic`, by partition, from Metadata v10. */
async function leaderEpochs(connection: KafkaConnection, topic: string): Promise<number[]> {
  const response = await connection.send(ApiKey.Metadata, 10, {
    topics: [{ name: topic }],
    allowAutoTopicCreation: false,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
  });
  const partitions = [...response.topics[0]!.partitions].sort((a, b) => a.partitionIndex - b.partitionIndex);
  for (const partition of partitions) expect(partition.errorCode).toBe(0);
  return partitions.map((partition) => partition.leaderEpoch ?? -1);
}

async function endOffsetForEpoch(connection: KafkaConnection, topic: string, epoch: number) {
  const response = await connection.send(ApiKey.OffsetForLeaderEpoch, 3, {
    replicaId: -1,
    topics: [{ topic, partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: epoch }] }],
  });
  const answer = response.topics[0]!.partitions[0]!;
  return { errorCode: answer.errorCode, epoch: answer.leaderEpoch, endOffset: Number(answer.endOffset) };
}

async function metric(broker: RunningBroker, name: string): Promise<number> {
  const text = await (await fetch(`${broker.adminUrl}/metrics`)).text();
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name} `));
  if (line === undefined) throw new Error(`${name} is not exported`);
  return Number(line.slice(name.length + 1));
}

describe("partitions as Raft groups", () => {
  it("raises every partition's leader epoch at each restart, graceful or SIGKILL, and keeps the old epochs' ends", async () => {
    let broker = await startBroker();
    brokers.push(broker);
    let connection = await connect(broker);
    await createTopic(connection, "epochs", 3);
    expect(await leaderEpochs(connection, "epochs")).toEqual([1, 1, 1]);
    expect(await produce(connection, "epochs", 0, ["a", "b", "c"])).toBe(0);
    expect(await endOffsetForEpoch(connection, "epochs", 1)).toEqual({
      errorCode: 0,
      epoch: 1,
      endOffset: 3,
    });
    await connection.close();

    expect(await broker.stop("SIGTERM")).toBe(0);
    broker = await broker.restart();
    connection = await connect(broker);
    expect(await leaderEpochs(connection, "epochs")).toEqual([2, 2, 2]);
    // A clean restart adds nothing to the log: the next record follows the last one.
    expect(await produce(connection, "epochs", 0, ["d"])).toBe(3);
    expect(await endOffsetForEpoch(connection, "epochs", 1)).toEqual({
      errorCode: 0,
      epoch: 1,
      endOffset: 3,
    });
    expect(await endOffsetForEpoch(connection, "epochs", 2)).toEqual({
      errorCode: 0,
      epoch: 2,
      endOffset: 4,
    });
    await connection.close();

    await broker.kill();
    broker = await broker.restart();
    connection = await connect(broker);
    expect(await leaderEpochs(connection, "epochs")).toEqual([3, 3, 3]);
    expect(await endOffsetForEpoch(connection, "epochs", 2)).toEqual({
      errorCode: 0,
      epoch: 2,
      endOffset: 4,
    });
    const next = await produce(connection, "epochs", 0, ["e"]);
    // After a crash the new leader may have committed the tail with a no-op (one more offset).
    expect([4, 5]).toContain(next);
    await connection.close();
    expect(await metric(broker, "raftka_raft_elections_won_total")).toBe(
      await metric(broker, "raftka_raft_groups"),
    );
  });

  it("starts, and restarts, a node with 2,000 partitions, all led by it", async () => {
    const PARTITIONS = 2_000;
    let broker = await startBroker({ readyTimeoutMs: 300_000 });
    brokers.push(broker);
    let connection = await connect(broker);
    let startedAt = performance.now();
    await createTopic(connection, "many", PARTITIONS);
    console.log(`created ${PARTITIONS} partitions in ${Math.round(performance.now() - startedAt)} ms`);
    for (const partition of [0, 999, 1999])
      expect(await produce(connection, "many", partition, ["x"])).toBe(0);
    await connection.close();
    // Each partition's group and the metadata log's.
    expect(await metric(broker, "raftka_raft_leaders")).toBe(PARTITIONS + 1);

    expect(await broker.stop("SIGTERM")).toBe(0);
    startedAt = performance.now();
    broker = await broker.restart();
    console.log(`restarted with ${PARTITIONS} partitions in ${Math.round(performance.now() - startedAt)} ms`);
    connection = await connect(broker);
    const epochs = await leaderEpochs(connection, "many");
    expect(epochs).toHaveLength(PARTITIONS);
    expect(epochs.every((epoch) => epoch === 2)).toBe(true);
    for (const partition of [0, 999, 1999])
      expect(await produce(connection, "many", partition, ["y"])).toBe(1);
    await connection.close();
    expect(await metric(broker, "raftka_raft_leaders")).toBe(PARTITIONS + 1);
  });
});
