import { createRequire } from "node:module";
import { Kafka, type KafkaConfig, logLevel } from "kafkajs";

const require = createRequire(import.meta.url);

/** A kafkajs client for a test broker: quiet logs, short retries so failures surface quickly. */
export function kafkaClient(bootstrap: string, config: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({
    clientId: "raftka-e2e",
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
    ...config,
  });
}

export interface FetchedMessage {
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
  readonly timestamp: string;
}

interface KafkajsBroker {
  fetch(request: {
    replicaId?: number;
    isolationLevel?: number;
    maxWaitTime?: number;
    minBytes?: number;
    maxBytes?: number;
    topics: { topic: string; partitions: { partition: number; fetchOffset: string; maxBytes: number }[] }[];
  }): Promise<{ responses: { topicName: string; partitions: KafkajsPartitionData[] }[] }>;
}
interface KafkajsPartitionData {
  partition: number;
  errorCode: number;
  highWatermark: string;
  messages: unknown[];
}
interface KafkajsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  refreshMetadata(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  findTopicPartitionMetadata(topic: string): { partitionId: number; leader: number }[];
  findBroker(options: { nodeId: string }): Promise<KafkajsBroker>;
}
type KafkajsBatch = new (
  topic: string,
  fetchedOffset: string,
  partitionData: KafkajsPartitionData,
) => {
  messages: (Omit<FetchedMessage, "partition"> & { isControlRecord?: boolean })[];
  isEmpty(): boolean;
  isEmptyDueToFiltering(): boolean;
  lastOffset(): string;
};

/**
 * Consumes like a kafkajs consumer without a consumer group: kafkajs's own Fetch request and response
 * decoding, its Batch filtering (control records, offsets below the fetch offset) and its rule for moving
 * on. Group consumption is tested by the consumer-group suites; this keeps the fetch path testable alone.
 */
export class KafkajsFetcher {
  private readonly cluster: KafkajsCluster;
  private readonly Batch: KafkajsBatch;
  readonly positions = new Map<number, bigint>();

  constructor(
    kafka: Kafka,
    private readonly topic: string,
    private readonly options: { isolationLevel?: number; maxBytesPerPartition?: number } = {},
  ) {
    const createCluster = Object.getOwnPropertySymbols(kafka)
      .map((symbol) => (kafka as unknown as Record<symbol, unknown>)[symbol])
      .find((value) => typeof value === "function") as (options: object) => KafkajsCluster;
    this.cluster = createCluster({});
    this.Batch = require("kafkajs/src/consumer/batch") as KafkajsBatch;
  }

  async connect(): Promise<void> {
    await this.cluster.connect();
    await this.cluster.addTargetTopic(this.topic);
    await this.cluster.refreshMetadata();
    for (const { partitionId } of this.cluster.findTopicPartitionMetadata(this.topic)) {
      if (!this.positions.has(partitionId)) this.positions.set(partitionId, 0n);
    }
  }

  async disconnect(): Promise<void> {
    await this.cluster.disconnect();
  }

  /** One Fetch round over every partition; returns the messages kafkajs would hand to eachMessage. */
  async poll(maxWaitTime = 100): Promise<FetchedMessage[]> {
    const metadata = this.cluster.findTopicPartitionMetadata(this.topic);
    const broker = await this.cluster.findBroker({ nodeId: String(metadata[0]!.leader) });
    const response = await broker.fetch({
      isolationLevel: this.options.isolationLevel ?? 1,
      maxWaitTime,
      minBytes: 1,
      maxBytes: 10 * 1024 * 1024,
      topics: [
        {
          topic: this.topic,
          partitions: [...this.positions].map(([partition, offset]) => ({
            partition,
            fetchOffset: offset.toString(),
            maxBytes: this.options.maxBytesPerPartition ?? 1024 * 1024,
          })),
        },
      ],
    });
    const messages: FetchedMessage[] = [];
    for (const topic of response.responses) {
      for (const partitionData of topic.partitions) {
        if (partitionData.errorCode !== 0) {
          throw new Error(
            `fetch of ${this.topic}-${partitionData.partition} failed with error ${partitionData.errorCode}`,
          );
        }
        const fetchedOffset = this.positions.get(partitionData.partition)!;
        const batch = new this.Batch(this.topic, fetchedOffset.toString(), partitionData);
        for (const message of batch.messages)
          messages.push({ ...message, partition: partitionData.partition });
        // kafkajs's runner: move past delivered messages, or past a batch that was all control records.
        if (!batch.isEmpty() || batch.isEmptyDueToFiltering()) {
          this.positions.set(partitionData.partition, BigInt(batch.lastOffset()) + 1n);
        }
      }
    }
    return messages;
  }

  /** Polls until `count` messages arrived (or `timeoutMs` passed) and returns them in arrival order. */
  async consume(count: number, timeoutMs = 30_000): Promise<FetchedMessage[]> {
    const received: FetchedMessage[] = [];
    const deadline = Date.now() + timeoutMs;
    while (received.length < count) {
      if (Date.now() > deadline) {
        throw new Error(`received ${received.length} of ${count} messages within ${timeoutMs} ms`);
      }
      received.push(...(await this.poll()));
    }
    return received;
  }
}

export { logLevel };
