// A single-partition, single-node "broker" built only from this package's codec, just enough for
// librdkafka (kcat) to produce to it and consume from it. It lets tests capture exactly what a real
// client library writes, and check that the client library reads what we write.
import { createServer, type Server, type Socket } from "node:net";
import {
  ApiKey,
  type DecodedRequestHeader,
  decodeRequestBody,
  decodeRequestHeader,
  ErrorCode,
  encodeResponseFrame,
  FrameSplitter,
  type ResponseOf,
} from "../../src/index.js";

export interface FakeBroker {
  port: number;
  /** Record blobs received in Produce requests, in arrival order. */
  produced: Buffer[];
  /** API keys of every request received, in order. */
  requests: number[];
  close(): Promise<void>;
}

export interface FakeBrokerOptions {
  topic: string;
  /** Record batches served to Fetch, and the high watermark that goes with them. */
  log?: { records: Buffer; highWatermark: bigint };
  /** Lowest Produce version advertised (default 0). */
  produceMinVersion?: number;
}

function advertised(produceMinVersion: number) {
  return [
    // librdkafka <= 2.11 compresses with gzip, snappy or lz4 only if Produce v0 is advertised
    // (rd_kafka_msgset_writer_select_MsgVersion asks for Produce support in [0, 0]).
    { apiKey: ApiKey.Produce, minVersion: produceMinVersion, maxVersion: 7 },
    { apiKey: ApiKey.Fetch, minVersion: 4, maxVersion: 11 },
    { apiKey: ApiKey.ListOffsets, minVersion: 1, maxVersion: 2 },
    { apiKey: ApiKey.Metadata, minVersion: 0, maxVersion: 4 },
    // FindCoordinator v0 turns on librdkafka's LZ4 feature.
    { apiKey: ApiKey.FindCoordinator, minVersion: 0, maxVersion: 2 },
    { apiKey: ApiKey.ApiVersions, minVersion: 0, maxVersion: 3 },
  ];
}

export async function startFakeBroker(options: FakeBrokerOptions): Promise<FakeBroker> {
  const produced: Buffer[] = [];
  const requests: number[] = [];
  const sockets = new Set<Socket>();
  let port = 0;

  const answer = <K extends ApiKey>(
    socket: Socket,
    header: DecodedRequestHeader,
    key: K,
    body: ResponseOf<K>,
  ) => {
    socket.cork();
    for (const chunk of encodeResponseFrame(key, header.apiVersion, header.correlationId, body))
      socket.write(chunk);
    socket.uncork();
  };

  const handle = (socket: Socket, frame: Buffer): void => {
    const header = decodeRequestHeader(frame);
    requests.push(header.apiKey);
    switch (header.apiKey) {
      case ApiKey.ApiVersions:
        answer(socket, header, ApiKey.ApiVersions, {
          errorCode: 0,
          apiKeys: advertised(options.produceMinVersion ?? 0),
          throttleTimeMs: 0,
        });
        return;
      case ApiKey.Metadata:
        answer(socket, header, ApiKey.Metadata, {
          brokers: [{ nodeId: 1, host: "127.0.0.1", port, rack: null }],
          clusterId: "fake-cluster",
          controllerId: 1,
          topics: [
            {
              errorCode: 0,
              name: options.topic,
              isInternal: false,
              partitions: [
                {
                  errorCode: 0,
                  partitionIndex: 0,
                  leaderId: 1,
                  replicaNodes: [1],
                  isrNodes: [1],
                  offlineReplicas: [],
                },
              ],
            },
          ],
        });
        return;
      case ApiKey.Produce: {
        const request = decodeRequestBody(ApiKey.Produce, header, frame);
        const partition = request.topicData[0]!.partitionData[0]!;
        // Copy: the frame buffer belongs to the socket reader and the test inspects it later.
        if (partition.records !== null) produced.push(Buffer.from(partition.records));
        if (request.acks === 0) return;
        answer(socket, header, ApiKey.Produce, {
          responses: [
            {
              name: request.topicData[0]!.name,
              partitionResponses: [
                {
                  index: partition.index,
                  errorCode: 0,
                  baseOffset: BigInt(produced.length - 1),
                  logAppendTimeMs: -1n,
                  logStartOffset: 0n,
                },
              ],
            },
          ],
          throttleTimeMs: 0,
        });
        return;
      }
      case ApiKey.ListOffsets: {
        const request = decodeRequestBody(ApiKey.ListOffsets, header, frame);
        const highWatermark = options.log?.highWatermark ?? 0n;
        answer(socket, header, ApiKey.ListOffsets, {
          throttleTimeMs: 0,
          topics: request.topics.map((topic) => ({
            name: topic.name,
            partitions: topic.partitions.map((partition) => ({
              partitionIndex: partition.partitionIndex,
              errorCode: 0,
              oldStyleOffsets: [],
              timestamp: -1n,
              // -2 asks for the earliest offset, -1 for the latest.
              offset: partition.timestamp === -2n ? 0n : highWatermark,
            })),
          })),
        });
        return;
      }
      case ApiKey.Fetch: {
        const request = decodeRequestBody(ApiKey.Fetch, header, frame);
        const log = options.log ?? { records: Buffer.alloc(0), highWatermark: 0n };
        answer(socket, header, ApiKey.Fetch, {
          throttleTimeMs: 0,
          errorCode: 0,
          sessionId: 0,
          responses: request.topics.map((topic) => ({
            topic: topic.topic,
            partitions: topic.partitions.map((partition) => ({
              partitionIndex: partition.partition,
              errorCode: 0,
              highWatermark: log.highWatermark,
              lastStableOffset: log.highWatermark,
              logStartOffset: 0n,
              abortedTransactions: [],
              preferredReadReplica: -1,
              records: partition.fetchOffset < log.highWatermark ? log.records : Buffer.alloc(0),
            })),
          })),
        });
        return;
      }
      default:
        throw new Error(
          `fake broker got unexpected API key ${header.apiKey} (error ${ErrorCode.UNSUPPORTED_VERSION})`,
        );
    }
  };

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    const splitter = new FrameSplitter(64 << 20);
    socket.on("data", (chunk) => {
      try {
        for (const frame of splitter.push(chunk)) handle(socket, frame);
      } catch (error) {
        process.stderr.write(`fake broker: ${(error as Error).message}\n`);
        socket.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("fake broker has no TCP address");
  port = address.port;
  return {
    port,
    produced,
    requests,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
