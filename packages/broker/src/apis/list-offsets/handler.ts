import {
  ApiKey,
  decodeRecordBatch,
  ErrorCode,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  type ListOffsetsResponseListOffsetsPartitionResponse,
  sliceBatches,
} from "@raftka/protocol";
import type { ReplicatedLog } from "../../partitions/replicated-log.js";
import type { ApiHandler, RequestContext } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";
import { toPartitionFailure } from "../errors.js";

/** ListOffsets' special timestamps. */
export const LATEST_TIMESTAMP = -1n;
export const EARLIEST_TIMESTAMP = -2n;
export const MAX_TIMESTAMP = -3n;
export const EARLIEST_LOCAL_TIMESTAMP = -4n;
export const LATEST_TIERED_TIMESTAMP = -5n;

/** The first version that knows each special timestamp. */
const firstVersionFor = new Map<bigint, number>([
  [MAX_TIMESTAMP, 7],
  [EARLIEST_LOCAL_TIMESTAMP, 8],
  [LATEST_TIERED_TIMESTAMP, 9],
]);

type PartitionResponse = ListOffsetsResponseListOffsetsPartitionResponse;

interface Found {
  offset: number;
  timestamp: number;
}

/** ListOffsets: earliest, latest (the high watermark), max timestamp, and the first offset at or after a timestamp. */
export function listOffsetsHandler(services: BrokerServices): ApiHandler<typeof ApiKey.ListOffsets> {
  return {
    apiKey: ApiKey.ListOffsets,
    minVersion: 0,
    maxVersion: 10,
    handle: (request, context) => handleListOffsets(services, request, context),
  };
}

async function handleListOffsets(
  services: BrokerServices,
  request: ListOffsetsRequest,
  context: RequestContext,
): Promise<ListOffsetsResponse> {
  const version = context.apiVersion;
  const seen = new Map<string, number>();
  for (const topic of request.topics) {
    for (const partition of topic.partitions) {
      const key = `${topic.name}\u0000${partition.partitionIndex}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
  }
  const topics = await Promise.all(
    request.topics.map(async (topic) => ({
      name: topic.name,
      partitions: await Promise.all(
        topic.partitions.map(async (partition): Promise<PartitionResponse> => {
          const respond = (errorCode: number, found?: Found, leaderEpoch = -1): PartitionResponse => ({
            partitionIndex: partition.partitionIndex,
            errorCode,
            oldStyleOffsets: found && found.offset >= 0 ? [BigInt(found.offset)] : [],
            timestamp: BigInt(found?.timestamp ?? -1),
            offset: BigInt(found?.offset ?? -1),
            leaderEpoch,
          });
          // Kafka refuses a partition listed twice (from v1; v0 allowed it).
          if (version >= 1 && seen.get(`${topic.name}\u0000${partition.partitionIndex}`)! > 1) {
            return respond(ErrorCode.INVALID_REQUEST);
          }
          const log = services.partitions.partition(topic.name, partition.partitionIndex);
          if (!log) return respond(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
          if (!log.isLeader) return respond(ErrorCode.NOT_LEADER_OR_FOLLOWER);
          const epoch = partition.currentLeaderEpoch ?? -1;
          if (epoch >= 0 && epoch !== log.leaderEpoch) {
            return respond(
              epoch < log.leaderEpoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.UNKNOWN_LEADER_EPOCH,
            );
          }
          const minimumVersion = firstVersionFor.get(partition.timestamp);
          if (minimumVersion !== undefined && version < minimumVersion) {
            return respond(ErrorCode.UNSUPPORTED_VERSION);
          }
          try {
            const found = await lookUp(log, partition.timestamp);
            const leaderEpoch =
              found.offset < 0
                ? -1
                : partition.timestamp === LATEST_TIMESTAMP
                  ? log.leaderEpoch
                  : (log.epochForOffset(found.offset) ?? log.leaderEpoch);
            return respond(ErrorCode.NONE, found, leaderEpoch);
          } catch (error) {
            const mapped = toPartitionFailure(error, (unexpected) =>
              services.logger.error({ err: unexpected, topic: topic.name }, "ListOffsets failed"),
            );
            return respond(mapped.errorCode);
          }
        }),
      ),
    })),
  );
  return { throttleTimeMs: 0, topics };
}

async function lookUp(log: ReplicatedLog, timestamp: bigint): Promise<Found> {
  switch (timestamp) {
    case EARLIEST_TIMESTAMP:
    case EARLIEST_LOCAL_TIMESTAMP:
      return { offset: log.logStartOffset, timestamp: -1 };
    case LATEST_TIMESTAMP:
      // Without transactions the last stable offset is the high watermark, for both isolation levels.
      return { offset: log.highWatermark, timestamp: -1 };
    case LATEST_TIERED_TIMESTAMP:
      // Nothing is tiered yet.
      return { offset: -1, timestamp: -1 };
    case MAX_TIMESTAMP: {
      const max = await log.maxTimestampOffset();
      if (max.offset < 0 || max.offset >= log.highWatermark) return { offset: -1, timestamp: -1 };
      return (
        (await refine(log, max.offset, (recordTimestamp) => recordTimestamp === max.timestamp)) ?? {
          offset: max.offset,
          timestamp: max.timestamp,
        }
      );
    }
    default: {
      if (timestamp < 0n) return { offset: -1, timestamp: -1 };
      const target = Number(timestamp);
      const batch = await log.offsetForTimestamp(target);
      if (!batch) return { offset: -1, timestamp: -1 };
      return (
        (await refine(log, batch.offset, (recordTimestamp) => recordTimestamp >= target)) ?? {
          offset: -1,
          timestamp: -1,
        }
      );
    }
  }
}

/**
 * Storage finds the batch; the answer is a record: the first record of that batch (at or after the log
 * start) whose timestamp matches. LogAppendTime batches report their maxTimestamp for every record.
 */
async function refine(
  log: ReplicatedLog,
  batchOffset: number,
  matches: (timestamp: number) => boolean,
): Promise<Found | undefined> {
  const { records } = await log.read(batchOffset, 1);
  const first = sliceBatches(records).batches[0];
  if (!first) return undefined;
  for (const record of decodeRecordBatch(first.bytes).records) {
    const offset = Number(record.offset);
    const timestamp = Number(record.timestamp);
    if (offset >= log.logStartOffset && offset < log.highWatermark && matches(timestamp))
      return { offset, timestamp };
  }
  return undefined;
}
