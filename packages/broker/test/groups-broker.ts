import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Logging, loadConfig, RaftkaMetrics } from "@raftka/monitoring";
import { KafkaConnection } from "@raftka/protocol";
import { Broker } from "../src/broker.js";
import type { GroupCoordinator, GroupCoordinatorOptions } from "../src/group/group-coordinator.js";
import { groupCoordinatorExtension } from "../src/group/group-coordinator-extension.js";
import { producerStateExtension } from "../src/producer-state/producer-state-extension.js";
import type { ProducerStateService } from "../src/producer-state/producer-state-service.js";

export interface GroupsBroker {
  readonly broker: Broker;
  readonly port: number;
  readonly dataDir: string;
  readonly coordinator: GroupCoordinator;
  readonly producerState: ProducerStateService;
  readonly logLines: Record<string, unknown>[];
  readonly metrics: RaftkaMetrics;
  connect(): Promise<KafkaConnection>;
  /** Graceful stop, then a new broker on the same data directory. */
  restart(): Promise<GroupsBroker>;
  stop(): Promise<void>;
  cleanup(): Promise<void>;
}

export interface GroupsBrokerOptions {
  readonly settings?: Record<string, string | number | boolean>;
  readonly groups?: Partial<Omit<GroupCoordinatorOptions, "services" | "logger">>;
  readonly producers?: Parameters<typeof producerStateExtension>[0];
  readonly dataDir?: string;
}

/** A broker in this process with the group coordinator and producer state, configurable for tests. */
export async function startGroupsBroker(options: GroupsBrokerOptions = {}): Promise<GroupsBroker> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "raftka-groups-test-")));
  const config = loadConfig({
    argv: Object.entries({
      listeners: "PLAINTEXT://127.0.0.1:0",
      "admin.listener": "127.0.0.1:0",
      "log.dirs": dataDir,
      "group.initial.rebalance.delay.ms": 0,
      "offsets.topic.num.partitions": 4,
      ...options.settings,
    }).map(([key, value]) => `--${key}=${value}`),
  });
  const logLines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logLines.push(JSON.parse(line));
      callback();
    },
  });
  const groups = groupCoordinatorExtension(options.groups);
  const producers = producerStateExtension(options.producers);
  const metrics = new RaftkaMetrics({ version: "test", nodeId: 0, defaultMetrics: false });
  const broker = await Broker.start({
    config,
    logging: new Logging({ level: "info", destination }),
    metrics,
    version: "test",
    extensions: [producers, groups],
  });
  const connections: KafkaConnection[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(connections.map((connection) => connection.close()));
    await broker.shutdown();
  };
  const port = broker.kafkaListeners[0]!.boundPort;
  return {
    broker,
    port,
    dataDir,
    coordinator: groups.coordinator!,
    producerState: producers.service!,
    logLines,
    metrics,
    async connect() {
      const connection = await KafkaConnection.connect("127.0.0.1", port, { requestTimeoutMs: 15_000 });
      connections.push(connection);
      return connection;
    },
    async restart() {
      await stop();
      return startGroupsBroker({ ...options, dataDir });
    },
    stop,
    async cleanup() {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls FindCoordinator until the group's coordinator is ready (the offsets topic is created on first use). */
export async function findCoordinatorReady(connection: KafkaConnection, groupId: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const response = await connection.send(10, 1, { key: groupId, keyType: 0 });
    if (response.errorCode === 0) {
      // Loading may still be in progress; an OffsetFetch tells.
      const fetched = await connection.send(9, 2, { groupId, topics: null });
      if (fetched.errorCode === 0) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the coordinator for ${groupId} never became ready`);
}
