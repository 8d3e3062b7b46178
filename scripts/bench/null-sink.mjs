#!/usr/bin/env node
// A Kafka "broker" that acknowledges produce requests without storing anything: the ceiling the real broker
// is compared with in scripts/bench/broker.mjs. Serves ApiVersions, Metadata (every topic asked for exists
// with --partitions partitions, led by this process) and Produce. Not part of the product.
//
//   node scripts/bench/null-sink.mjs [--partitions 8]
// Prints one JSON line {"port": N} once listening.
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { ApiKey, decodeRequestBody, decodeRequestHeader, encodeResponseFrame, FrameReader, feedSocket } =
  await import(join(repository, "packages", "protocol", "dist", "index.js"));
const { BufferPool, frameAllocator } = await import(
  join(repository, "packages", "broker", "dist", "server", "buffer-pool.js")
);
const { scheduleHelperThreadsAsBatch } = await import(
  join(repository, "packages", "broker", "dist", "server", "helper-threads.js")
);
const { values } = parseArgs({ options: { partitions: { type: "string", default: "8" } } });
const partitionCount = Number(values.partitions);
const nextOffsets = new Map();

const advertised = [
  { apiKey: ApiKey.Produce, minVersion: 0, maxVersion: 9 },
  { apiKey: ApiKey.Metadata, minVersion: 0, maxVersion: 12 },
  { apiKey: ApiKey.ApiVersions, minVersion: 0, maxVersion: 3 },
];

let port = 0;
function answer(apiKey, request, version) {
  switch (apiKey) {
    case ApiKey.ApiVersions:
      return { errorCode: 0, apiKeys: advertised, throttleTimeMs: 0 };
    case ApiKey.Metadata:
      return {
        throttleTimeMs: 0,
        brokers: [{ nodeId: 0, host: "127.0.0.1", port, rack: null }],
        clusterId: "null-sink-cluster-0000",
        controllerId: 0,
        topics: (request.topics ?? []).map((topic) => ({
          errorCode: 0,
          name: topic.name,
          topicId: "AAAAAAAAAAAAAAAAAAAAAQ",
          isInternal: false,
          partitions: Array.from({ length: partitionCount }, (_, partitionIndex) => ({
            errorCode: 0,
            partitionIndex,
            leaderId: 0,
            leaderEpoch: 0,
            replicaNodes: [0],
            isrNodes: [0],
            offlineReplicas: [],
          })),
          topicAuthorizedOperations: -2147483648,
        })),
        clusterAuthorizedOperations: -2147483648,
      };
    case ApiKey.Produce:
      return {
        throttleTimeMs: 0,
        responses: request.topicData.map((topic) => ({
          name: topic.name,
          partitionResponses: topic.partitionData.map((partition) => {
            const key = `${topic.name}-${partition.index}`;
            const baseOffset = nextOffsets.get(key) ?? 0n;
            // Offsets advance by the batch's record count (read from the header, nothing else is parsed).
            const records = partition.records?.length >= 61 ? partition.records.readInt32BE(57) : 1;
            nextOffsets.set(key, baseOffset + BigInt(records));
            return {
              index: partition.index,
              errorCode: 0,
              baseOffset,
              logAppendTimeMs: -1n,
              logStartOffset: 0n,
              recordErrors: [],
              errorMessage: null,
            };
          }),
        })),
      };
    default:
      throw new Error(`null sink does not serve API ${apiKey} v${version}`);
  }
}

// Frames are read as the broker reads them (FrameReader, straight into large frames' own buffers, which
// come from a pool and go back to it), so the comparison measures storing and replicating, not a
// different way of reading the socket. Nothing here outlives the answer: every frame goes back at once.
const buffers = new BufferPool();
const server = createServer({ noDelay: true, pauseOnConnect: true }, (socket) => {
  const reader = new FrameReader(256 << 20, { allocate: frameAllocator(buffers) });
  socket.on("error", () => {});
  const onRead = (length) => {
    socket.cork();
    for (const frame of reader.filled(length)) {
      const header = decodeRequestHeader(frame);
      const request = decodeRequestBody(header.apiKey, header, frame);
      const response = answer(header.apiKey, request, header.apiVersion);
      buffers.give(frame);
      if (header.apiKey === ApiKey.Produce && request.acks === 0) continue;
      for (const part of encodeResponseFrame(
        header.apiKey,
        header.apiVersion,
        header.correlationId,
        response,
      )) {
        socket.write(part);
      }
    }
    socket.uncork();
  };
  feedSocket(socket, reader, onRead);
  socket.resume();
});
server.listen(0, "127.0.0.1", () => {
  // As `raftka start` does for the broker (helper.threads.sched.batch), so that both run under the same policies.
  scheduleHelperThreadsAsBatch();
  port = server.address().port;
  console.log(JSON.stringify({ port }));
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
