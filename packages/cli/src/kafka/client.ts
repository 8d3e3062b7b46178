import {
  ApiKey,
  apiDefinitions,
  ErrorCode,
  isRetriable,
  KafkaConnection,
  KafkaConnectionError,
  type MetadataResponse,
  type RequestOf,
  type ResponseOf,
} from "@raftka/protocol";
import { OperationFailedError, UnreachableError } from "../errors.js";
import { type BrokerAddress, formatAddress } from "./addresses.js";
import { checkKafkaError } from "./kafka-errors.js";

export interface KafkaClientOptions {
  readonly clientId: string;
  /** Time allowed for each response. */
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

/**
 * Highest version of each API this CLI sends. The broker's advertised maximum may lower it; these
 * are the versions the target clients use (shared/kafka-protocol/CLIENTS.md), so the CLI only walks
 * paths real clients walk.
 */
const versionCeilings: Partial<Record<ApiKey, number>> = {
  // Above what the clients send (7): v8 carries the broker's error message, which says what to do.
  [ApiKey.Produce]: 9,
  [ApiKey.Fetch]: 11,
  [ApiKey.ListOffsets]: 3,
  // Above what kafkajs sends (6), for topic ids (v10) and leader epochs (v7) in `topic describe`.
  [ApiKey.Metadata]: 12,
  [ApiKey.OffsetCommit]: 7,
  [ApiKey.OffsetFetch]: 7,
  [ApiKey.FindCoordinator]: 2,
  [ApiKey.DescribeGroups]: 4,
  [ApiKey.ListGroups]: 4,
  // v5 answers the partition and replica counts, v7 the topic id, which `topic create` prints.
  [ApiKey.CreateTopics]: 7,
  [ApiKey.DeleteTopics]: 3,
  [ApiKey.DescribeConfigs]: 2,
  [ApiKey.AlterConfigs]: 1,
  [ApiKey.IncrementalAlterConfigs]: 1,
  [ApiKey.CreatePartitions]: 1,
  [ApiKey.DeleteGroups]: 1,
};

/** Lowest version the CLI's requests make sense in (e.g. Metadata v1 for "all topics" = null). */
const versionFloors: Partial<Record<ApiKey, number>> = {
  [ApiKey.Metadata]: 1,
  [ApiKey.Produce]: 3,
  [ApiKey.Fetch]: 4,
  [ApiKey.ListOffsets]: 1,
};

export interface BrokerNode extends BrokerAddress {
  readonly nodeId: number;
  readonly rack: string | null;
}

function unreachable(error: unknown, where: string): never {
  throw new UnreachableError(`${(error as Error).message}${where}`, { cause: error });
}

/**
 * The CLI's Kafka client: bootstraps from `--brokers`, negotiates versions with ApiVersions,
 * learns the cluster's nodes from Metadata and keeps one connection per node, so requests go to
 * partition leaders and group coordinators as Kafka's own tools send them.
 */
export class KafkaClient {
  private readonly connections = new Map<number, Promise<KafkaConnection>>();
  private nodes = new Map<number, BrokerNode>();

  private constructor(
    private readonly bootstrap: KafkaConnection,
    readonly bootstrapAddress: BrokerAddress,
    private readonly versions: ReadonlyMap<number, { min: number; max: number }>,
    private readonly options: KafkaClientOptions,
  ) {}

  /** Connects to the first broker of `brokers` that answers ApiVersions. */
  static async connect(brokers: readonly BrokerAddress[], options: KafkaClientOptions): Promise<KafkaClient> {
    const failures: string[] = [];
    for (const address of brokers) {
      let connection: KafkaConnection | undefined;
      try {
        connection = await KafkaConnection.connect(address.host, address.port, {
          clientId: options.clientId,
          requestTimeoutMs: options.requestTimeoutMs,
          connectTimeoutMs: options.connectTimeoutMs,
        });
        const answer = await connection.send(ApiKey.ApiVersions, 0, {});
        if (answer.errorCode !== ErrorCode.NONE) {
          throw new KafkaConnectionError(`ApiVersions answered error code ${answer.errorCode}`);
        }
        const versions = new Map(
          answer.apiKeys.map((entry) => [entry.apiKey, { min: entry.minVersion, max: entry.maxVersion }]),
        );
        return new KafkaClient(connection, address, versions, options);
      } catch (error) {
        await connection?.close();
        if (!(error instanceof KafkaConnectionError)) throw error;
        const cause = (error as { cause?: { message?: string } }).cause;
        failures.push(`${formatAddress(address)}: ${cause?.message ?? error.message}`);
      }
    }
    throw new UnreachableError(
      `cannot reach any broker of ${brokers.map(formatAddress).join(",")} (${failures.join("; ")}); check that the broker runs, or point --brokers / RAFTKA_BROKERS at it`,
    );
  }

  /** Time allowed for each response (--timeout); also bounds retries of retriable errors. */
  get requestTimeoutMs(): number {
    return this.options.requestTimeoutMs;
  }

  /** Whether the broker serves `apiKey` at a version this CLI can send. */
  supports(apiKey: ApiKey): boolean {
    const range = this.versions.get(apiKey);
    if (!range) return false;
    const ceiling = versionCeilings[apiKey] ?? 0;
    const floor = versionFloors[apiKey] ?? 0;
    return range.max >= floor && range.min <= ceiling;
  }

  /** The version to send: the highest both sides know. */
  versionFor(apiKey: ApiKey): number {
    const name = apiDefinitions[apiKey].name;
    if (!this.supports(apiKey)) {
      const range = this.versions.get(apiKey);
      throw new OperationFailedError(
        range
          ? `the broker serves ${name} v${range.min}-${range.max}, which this raftka CLI cannot use (it sends v${versionFloors[apiKey] ?? 0}-${versionCeilings[apiKey] ?? 0}); use a CLI and broker of matching versions`
          : `the broker does not serve ${name}, which this command needs; upgrade the broker to a version that does`,
      );
    }
    return Math.min(this.versions.get(apiKey)!.max, versionCeilings[apiKey] ?? 0);
  }

  /** Sends to a node (by id, as Metadata named it), or to the bootstrap broker. */
  async send<K extends ApiKey>(apiKey: K, request: RequestOf<K>, nodeId?: number): Promise<ResponseOf<K>> {
    const version = this.versionFor(apiKey);
    const connection = nodeId === undefined ? this.bootstrap : await this.connectionTo(nodeId);
    try {
      return await connection.send(apiKey, version, request);
    } catch (error) {
      if (error instanceof KafkaConnectionError) unreachable(error, "");
      throw error;
    }
  }

  /** Sends a request the broker does not answer (Produce with acks=0). */
  async sendNoResponse<K extends ApiKey>(apiKey: K, request: RequestOf<K>, nodeId: number): Promise<void> {
    const version = this.versionFor(apiKey);
    const connection = await this.connectionTo(nodeId);
    try {
      await connection.sendNoResponse(apiKey, version, request);
    } catch (error) {
      if (error instanceof KafkaConnectionError) unreachable(error, "");
      throw error;
    }
  }

  /**
   * Cluster metadata for `topics` (null: every topic), never creating topics. Remembers the nodes,
   * so later requests can go to partition leaders.
   */
  async metadata(topics: readonly string[] | null): Promise<MetadataResponse> {
    const response = await this.send(ApiKey.Metadata, {
      topics: topics === null ? null : topics.map((name) => ({ name })),
      allowAutoTopicCreation: false,
    });
    this.nodes = new Map(
      response.brokers.map((broker) => [
        broker.nodeId,
        { nodeId: broker.nodeId, host: broker.host, port: broker.port, rack: broker.rack ?? null },
      ]),
    );
    return response;
  }

  /**
   * The node coordinating `key` (a group id for keyType 0). While the coordinator is still being set
   * up or loading (retriable errors), asks again until the request timeout has passed, as Kafka's
   * clients do.
   */
  async findCoordinator(key: string, keyType = 0): Promise<BrokerNode> {
    const deadline = Date.now() + this.options.requestTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      const response = await this.send(ApiKey.FindCoordinator, { key, keyType });
      const code = response.errorCode ?? ErrorCode.NONE;
      if (code !== ErrorCode.NONE && isRetriable(code) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * attempt)));
        continue;
      }
      checkKafkaError(code, `finding the coordinator of group "${key}"`, response.errorMessage);
      const node = { nodeId: response.nodeId!, host: response.host!, port: response.port!, rack: null };
      this.nodes.set(node.nodeId, node);
      return node;
    }
  }

  knownNodes(): BrokerNode[] {
    return [...this.nodes.values()];
  }

  async close(): Promise<void> {
    const opened = await Promise.allSettled(this.connections.values());
    await Promise.all(
      opened.map((result) => (result.status === "fulfilled" ? result.value.close() : undefined)),
    );
    await this.bootstrap.close();
  }

  private connectionTo(nodeId: number): Promise<KafkaConnection> {
    const existing = this.connections.get(nodeId);
    if (existing) return existing;
    const node = this.nodes.get(nodeId);
    if (!node) {
      throw new OperationFailedError(
        `the cluster metadata names no broker ${nodeId}; the cluster may be changing, retry in a few seconds`,
      );
    }
    const opening = KafkaConnection.connect(node.host, node.port, {
      clientId: this.options.clientId,
      requestTimeoutMs: this.options.requestTimeoutMs,
      connectTimeoutMs: this.options.connectTimeoutMs,
    }).catch((error: unknown) => {
      this.connections.delete(nodeId);
      if (error instanceof KafkaConnectionError) {
        unreachable(
          error,
          ` (broker ${nodeId} advertises ${formatAddress(node)}: check its advertised.listeners if this host cannot reach that address)`,
        );
      }
      throw error;
    });
    this.connections.set(nodeId, opening);
    return opening;
  }
}
