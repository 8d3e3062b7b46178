import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Logging, loadConfig, RaftkaMetrics } from "@raftka/monitoring";
import {
  type ApiKey,
  encodeRecordBatch,
  KafkaConnection,
  type RecordInput,
  type RequestOf,
} from "@raftka/protocol";
import { Broker } from "../src/broker.js";

export interface TestBroker {
  readonly broker: Broker;
  readonly port: number;
  readonly dataDir: string;
  readonly logLines: Record<string, unknown>[];
  readonly metrics: RaftkaMetrics;
  connect(): Promise<KafkaConnection>;
  /** Graceful stop and start again on the same data directory. */
  restart(settings?: Record<string, string | number | boolean>): Promise<TestBroker>;
  stop(): Promise<void>;
  /** Stops and deletes the data directory. */
  cleanup(): Promise<void>;
}

/** A broker in this process on a free port with its own temporary data directory, logs captured. */
export async function startTestBroker(
  settings: Record<string, string | number | boolean> = {},
  existingDir?: string,
): Promise<TestBroker> {
  const dataDir = existingDir ?? (await mkdtemp(join(tmpdir(), "raftka-broker-test-")));
  const config = loadConfig({
    argv: Object.entries({
      listeners: "PLAINTEXT://127.0.0.1:0",
      "admin.listener": "127.0.0.1:0",
      "log.dirs": dataDir,
      ...settings,
    }).map(([key, value]) => `--${key}=${value}`),
  });
  const logLines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logLines.push(JSON.parse(line));
      callback();
    },
  });
  const logging = new Logging({ level: "info", destination });
  const metrics = new RaftkaMetrics({ version: "test", nodeId: 0, defaultMetrics: false });
  const broker = await Broker.start({ config, logging, metrics, version: "test" });
  const connections: KafkaConnection[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(connections.map((connection) => connection.close()));
    await broker.shutdown();
  };
  return {
    broker,
    port: broker.kafkaListeners[0]!.boundPort,
    dataDir,
    logLines,
    metrics,
    async connect() {
      const connection = await KafkaConnection.connect("127.0.0.1", broker.kafkaListeners[0]!.boundPort, {
        requestTimeoutMs: 15_000,
      });
      connections.push(connection);
      return connection;
    },
    async restart(extra = {}) {
      await stop();
      return startTestBroker({ ...settings, ...extra }, dataDir);
    },
    stop,
    async cleanup() {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export { withScratchMount } from "../../storage/test/helpers.js";

/** A v2 batch of string records, timestamps from `now`. */
export function batch(
  values: readonly (string | null)[],
  options: Partial<Parameters<typeof encodeRecordBatch>[0]> = {},
) {
  const now = Date.now();
  const records: RecordInput[] = values.map((value, index) => ({
    key: `k${index}`,
    value,
    timestamp: now + index,
  }));
  return encodeRecordBatch({ records, ...options });
}

export function produceRequest(
  topic: string,
  partition: number,
  records: Buffer | null,
  acks = -1,
): RequestOf<typeof ApiKey.Produce> {
  return {
    transactionalId: null,
    acks,
    timeoutMs: 10_000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  };
}

export function fetchRequest(
  partitions: { topic: string; partition: number; offset: bigint; maxBytes?: number }[],
  options: Partial<RequestOf<typeof ApiKey.Fetch>> = {},
): RequestOf<typeof ApiKey.Fetch> {
  const topics = new Map<string, { partition: number; offset: bigint; maxBytes?: number }[]>();
  for (const entry of partitions) topics.set(entry.topic, [...(topics.get(entry.topic) ?? []), entry]);
  return {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 50 * 1024 * 1024,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [...topics].map(([topic, entries]) => ({
      topic,
      partitions: entries.map((entry) => ({
        partition: entry.partition,
        currentLeaderEpoch: -1,
        fetchOffset: entry.offset,
        lastFetchedEpoch: -1,
        logStartOffset: -1n,
        partitionMaxBytes: entry.maxBytes ?? 1024 * 1024,
      })),
    })),
    forgottenTopicsData: [],
    rackId: "",
    ...options,
  };
}

export async function createTopic(
  connection: KafkaConnection,
  name: string,
  numPartitions = 1,
  configs: Record<string, string> = {},
) {
  const response = await connection.send(19, 7, {
    topics: [
      {
        name,
        numPartitions,
        replicationFactor: 1,
        assignments: [],
        configs: Object.entries(configs).map(([configName, value]) => ({ name: configName, value })),
      },
    ],
    timeoutMs: 10_000,
    validateOnly: false,
  });
  return response.topics[0]!;
}
