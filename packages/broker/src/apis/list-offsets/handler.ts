import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import {
  ApiKey,
  ErrorCode,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  type ListOffsetsResponseListOffsetsPartitionResponse,
  openRecordBatch,
  RecordBatchError,
  sliceBatches,
} from "@raftka/protocol";
import { OffsetOutOfRangeError } from "@raftka/storage";
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
            if (error instanceof RecordBatchError) reportUnreadableBatch(services, log, topic.name, error);
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

const NOT_FOUND: Found = { offset: -1, timestamp: -1 };

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
      return NOT_FOUND;
    case MAX_TIMESTAMP:
      return maxTimestampRecord(log);
    default:
      if (timestamp < 0n) return NOT_FOUND;
      return firstRecordAtOrAfter(log, Number(timestamp));
  }
}

/**
 * The first record at or after the log start whose timestamp is >= `target`, as Kafka's
 * FileRecords.searchForTimestamp answers. Storage finds batches by their maxTimestamp; when the log start
 * cuts into the batch it finds, the records left in it may all be older than `target`, and the search goes
 * on from the next batch (in the same segment or a later one) rather than answer "none", which clients
 * take for "latest" and so skip records.
 */
async function firstRecordAtOrAfter(log: ReplicatedLog, target: number): Promise<Found> {
  let from = log.logStartOffset;
  for (;;) {
    const candidate = await log.offsetForTimestamp(target, from);
    if (!candidate) return NOT_FOUND;
    const batch = await readBatch(log, candidate.offset);
    if (batch === "moved") {
      from = Math.max(from, log.logStartOffset);
      continue;
    }
    if (!batch) return NOT_FOUND;
    // Lazily read: the search stops at the first match and never holds the batch's records.
    let read = 0;
    for (const record of batch.records) {
      if (record.offset >= from && record.offset < log.highWatermark && record.timestamp >= target)
        return record;
      if (++read % RECORDS_BETWEEN_YIELDS === 0) await yieldToEventLoop();
    }
    // The batch reaches `from`, so this always moves forward.
    from = batch.lastOffset + 1;
  }
}

/**
 * ListOffsets -3: the record with the largest timestamp among those still readable (the first such, as
 * Kafka's RecordBatch.offsetOfMaxTimestamp picks). Kafka takes the segment with the largest running maximum
 * whatever the log start, so it may name a record DeleteRecords has removed, an offset a consumer cannot
 * fetch; here records below the log start do not count, and a log with nothing left answers -1 as an empty
 * partition does. As in Kafka, a maximum not yet below the high watermark answers -1.
 */
async function maxTimestampRecord(log: ReplicatedLog): Promise<Found> {
  let from = log.logStartOffset;
  let best: Found | undefined;
  for (;;) {
    const candidate = await log.maxTimestampOffset(from);
    if (candidate.offset < 0 || (best && candidate.timestamp <= best.timestamp)) return best ?? NOT_FOUND;
    if (candidate.offset >= log.highWatermark) return NOT_FOUND;
    const batch = await readBatch(log, Math.max(candidate.offset, from));
    if (batch === "moved") {
      // What was found so far may be gone too: start over from the new log start.
      from = log.logStartOffset;
      best = undefined;
      continue;
    }
    if (!batch) return best ?? NOT_FOUND;
    let inBatch: Found | undefined;
    let read = 0;
    for (const record of batch.records) {
      if (++read % RECORDS_BETWEEN_YIELDS === 0) await yieldToEventLoop();
      if (record.offset < from || record.offset >= log.highWatermark) continue;
      if (!inBatch || record.timestamp > inBatch.timestamp) inBatch = record;
      // The first record bearing the batch's maximum is the answer: the rest need not be read.
      if (record.timestamp >= candidate.timestamp) break;
    }
    if (inBatch && (!best || inBatch.timestamp > best.timestamp)) best = inBatch;
    if (inBatch?.timestamp === candidate.timestamp) return inBatch;
    // The batch's maximum belongs to a record below the log start: what is left of it competes with the
    // largest of the batches after it.
    from = batch.lastOffset + 1;
  }
}

/**
 * A batch's records are read in runs of this many between turns of the event loop: a few KB of zstd can
 * hold tens of millions, and reading them all at once would stall every other connection for seconds.
 */
const RECORDS_BETWEEN_YIELDS = 100_000;

/** Stored batches already reported as unreadable, per partition log, so each is logged once. */
const reportedBatches = new WeakMap<ReplicatedLog, Set<string>>();

function reportUnreadableBatch(
  services: BrokerServices,
  log: ReplicatedLog,
  topic: string,
  error: RecordBatchError,
): void {
  let reported = reportedBatches.get(log);
  if (!reported) {
    reported = new Set();
    reportedBatches.set(log, reported);
  }
  if (reported.has(error.message) || reported.size >= 100) return;
  reported.add(error.message);
  services.logger.warn(
    { topic, err: error },
    "ListOffsets found a stored record batch it cannot read within the broker's limits; the partition answers CORRUPT_MESSAGE for searches that reach it",
  );
}

/**
 * The batch holding `offset`, its records read lazily; LogAppendTime batches report their maxTimestamp for every record.
 * "moved" when retention or DeleteRecords moved the log start past `offset` since storage named it: the
 * caller looks again rather than fail the request with OFFSET_OUT_OF_RANGE.
 */
async function readBatch(
  log: ReplicatedLog,
  offset: number,
): Promise<{ lastOffset: number; records: Iterable<Found> } | "moved" | undefined> {
  let records: Buffer;
  try {
    ({ records } = await log.read(offset, 1));
  } catch (error) {
    if (error instanceof OffsetOutOfRangeError && offset < log.logStartOffset) return "moved";
    throw error;
  }
  const first = sliceBatches(records).batches[0];
  if (!first) return undefined;
  // Decompressed within the 256 MiB limit and with a record count its bytes can hold; a batch that
  // fails either throws CORRUPT_MESSAGE, which the partition answers.
  const opened = openRecordBatch(first.bytes);
  return {
    lastOffset: Number(opened.header.baseOffset) + opened.header.lastOffsetDelta,
    records: opened.offsetsAndTimestamps(),
  };
}
