import {
  ApiKey,
  decodeRecordBatch,
  encodeRecordBatch,
  KafkaConnection,
  sliceBatches,
} from "@raftka/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AckedRecord, checkAcknowledgedRecords, type ReadRecord } from "./harness/ack-checker.js";
import { type RunningBroker, startBroker } from "./harness/broker.js";

const PARTITIONS = 3;
const IN_FLIGHT = 8;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A producer for one partition that keeps IN_FLIGHT acks=all requests pipelined, never retries (each payload is
 * sent once), and reconnects after the broker goes away. What it learns goes into `acked` and `unknown`.
 */
class PipelinedProducer {
  readonly acked: AckedRecord[] = [];
  readonly unknown = new Set<string>();
  private sequence = 0;
  private running = true;
  private readonly done: Promise<void>;

  constructor(
    private readonly port: number,
    private readonly partition: number,
    /** Appended to every value after a "|", so that requests are large enough to be written direct. */
    private readonly padding = "",
  ) {
    this.done = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  private async run(): Promise<void> {
    while (this.running) {
      let connection: KafkaConnection;
      try {
        connection = await KafkaConnection.connect("127.0.0.1", this.port, { requestTimeoutMs: 10_000 });
      } catch {
        await sleep(50);
        continue;
      }
      const inFlight = new Set<Promise<void>>();
      let broken = false;
      while (this.running && !broken) {
        const payload = `p${this.partition}-${this.sequence++}`;
        const sent = connection
          .send(ApiKey.Produce, 7, {
            transactionalId: null,
            acks: -1,
            timeoutMs: 10_000,
            topicData: [
              {
                name: "durable",
                partitionData: [
                  {
                    index: this.partition,
                    records: encodeRecordBatch({
                      records: [
                        {
                          value: this.padding ? `${payload}|${this.padding}` : payload,
                          timestamp: Date.now(),
                        },
                      ],
                    }),
                  },
                ],
              },
            ],
          })
          .then(
            (response) => {
              const result = response.responses[0]!.partitionResponses[0]!;
              if (result.errorCode === 0) {
                this.acked.push({ partition: this.partition, payload, offset: result.baseOffset });
              } else this.unknown.add(payload);
            },
            () => {
              // The broker died with this request in flight: it may or may not have been written.
              this.unknown.add(payload);
              broken = true;
            },
          );
        inFlight.add(sent);
        void sent.finally(() => inFlight.delete(sent));
        if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
      }
      await Promise.allSettled(inFlight);
      await connection.close().catch(() => {});
    }
  }
}

async function readAll(port: number): Promise<ReadRecord[]> {
  const connection = await KafkaConnection.connect("127.0.0.1", port);
  const records: ReadRecord[] = [];
  try {
    for (let partition = 0; partition < PARTITIONS; partition++) {
      let offset = 0n;
      for (;;) {
        const response = await connection.send(ApiKey.Fetch, 11, {
          replicaId: -1,
          maxWaitMs: 0,
          minBytes: 0,
          maxBytes: 1 << 24,
          isolationLevel: 0,
          sessionId: 0,
          sessionEpoch: -1,
          topics: [
            {
              topic: "durable",
              partitions: [
                {
                  partition,
                  currentLeaderEpoch: -1,
                  fetchOffset: offset,
                  lastFetchedEpoch: -1,
                  logStartOffset: -1n,
                  partitionMaxBytes: 1 << 24,
                },
              ],
            },
          ],
          forgottenTopicsData: [],
          rackId: "",
        });
        const data = response.responses[0]!.partitions[0]!;
        expect(data.errorCode).toBe(0);
        const batches = sliceBatches(data.records ?? Buffer.alloc(0)).batches;
        if (batches.length === 0) break;
        for (const batch of batches) {
          for (const record of decodeRecordBatch(batch.bytes).records) {
            if (record.offset < offset) continue;
            const payload = record.value!.toString().split("|")[0]!;
            records.push({ partition, offset: record.offset, payload });
            offset = record.offset + 1n;
          }
        }
      }
    }
  } finally {
    await connection.close();
  }
  return records;
}

describe.each<{
  records: string;
  settings: Record<string, boolean>;
  padding: number;
  perRound: number;
  atLeast: number;
}>([
  { records: "small records", settings: {}, padding: 0, perRound: 400, atLeast: 1000 },
  // 600 kB requests, written with O_DIRECT (whole pages) and through the page cache (the partial page at the end).
  {
    records: "large records written direct",
    settings: { "log.direct.io.enable": true },
    padding: 600_000,
    perRound: 40,
    atLeast: 100,
  },
])("crash recovery, $records", ({ settings, padding, perRound, atLeast }) => {
  let broker: RunningBroker;
  beforeAll(async () => {
    broker = await startBroker({ settings });
  });
  afterAll(async () => {
    await broker?.cleanup();
  });

  it("loses no record acknowledged with acks=all when the broker is SIGKILLed mid-stream, twice", async () => {
    const admin = await KafkaConnection.connect("127.0.0.1", broker.kafkaPort);
    await admin.send(ApiKey.CreateTopics, 7, {
      timeoutMs: 5000,
      validateOnly: false,
      topics: [
        { name: "durable", numPartitions: PARTITIONS, replicationFactor: 1, assignments: [], configs: [] },
      ],
    });
    await admin.close();

    const pad = "x".repeat(padding);
    const producers = Array.from(
      { length: PARTITIONS },
      (_, partition) => new PipelinedProducer(broker.kafkaPort, partition, pad),
    );
    const ackedCount = () => producers.reduce((sum, producer) => sum + producer.acked.length, 0);
    for (const round of [1, 2]) {
      const target = ackedCount() + perRound;
      while (ackedCount() < target) await sleep(10);
      // Killed with requests in flight on every producer connection.
      await broker.kill();
      await broker.restart();
      expect(
        broker.logs.some((line) => line.msg === "ready"),
        `restart ${round}`,
      ).toBe(true);
    }
    const target = ackedCount() + perRound / 2;
    while (ackedCount() < target) await sleep(10);
    await Promise.all(producers.map((producer) => producer.stop()));
    if (padding > 0) {
      // The last incarnation wrote its share direct (counters start again at each restart).
      const metrics = await (await fetch(`${broker.adminUrl}/metrics`)).text();
      const direct = metrics.match(/^raftka_log_appended_bytes_total\{path="direct"\} (\d+)/m);
      expect(Number(direct?.[1] ?? 0)).toBeGreaterThan(padding);
    }

    const acked = producers.flatMap((producer) => producer.acked);
    const unknown = new Set(producers.flatMap((producer) => [...producer.unknown]));
    const problems = checkAcknowledgedRecords(acked, await readAll(broker.kafkaPort), unknown);
    expect(problems).toEqual([]);
    expect(acked.length).toBeGreaterThanOrEqual(atLeast);
  });
});
