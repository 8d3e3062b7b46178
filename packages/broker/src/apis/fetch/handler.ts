import {
  ApiKey,
  BATCH_LENGTH_POSITION,
  ErrorCode,
  type FetchRequest,
  type FetchResponse,
  type FetchResponseFetchableTopicResponse,
  type FetchResponsePartitionData,
  LAST_OFFSET_DELTA_POSITION,
  LOG_OVERHEAD,
  RECORD_BATCH_HEADER_BYTES,
} from "@raftka/protocol";
import type { ReadOptions } from "@raftka/storage";
import type { ReplicatedLog, ReplicatedReadResult } from "../../partitions/replicated-log.js";
import type { ApiHandler, RequestContext } from "../../server/api-registry.js";
import type { BufferPool } from "../../server/buffer-pool.js";
import type { BrokerServices } from "../../services.js";
import { toPartitionFailure } from "../errors.js";
import { hideInternalControlBatches } from "./control-batches.js";
import { FetchReadBuffers } from "./fetch-read-buffers.js";
import {
  type FetchContext,
  type FetchSessionCache,
  FINAL_EPOCH,
  type PartitionRequest,
  partitionKey,
  type SessionPartition,
} from "./fetch-sessions.js";
import type { LongPoll } from "./long-poll.js";
import type { NextReads } from "./next-reads.js";
import { cutToLimit, PartitionReadAhead } from "./read-ahead.js";

const ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA";
const INT32_MAX = 0x7fffffff;
const READ_COMMITTED = 1;

interface PartitionResult {
  readonly partition: SessionPartition;
  readonly data: FetchResponsePartitionData;
  readonly log: ReplicatedLog | undefined;
  readonly bytes: number;
}

export interface FetchHandlerOptions {
  readonly sessions: FetchSessionCache;
  readonly longPoll: LongPoll;
  /** Buffers the records are read into, reused once each response is written. */
  readonly buffers: BufferPool;
  /** Streaming consumers' next ranges, read while their answers go out. */
  readonly nextReads: NextReads;
}

/**
 * Fetch: whole batches between each partition's fetch offset and its high watermark, within max.bytes and
 * the per-partition limits (the first partition with data always gets at least one batch, KIP-74). When
 * fewer than min.bytes are available the fetch parks until appends commit enough or max.wait.ms passes.
 * Incremental fetch sessions (KIP-227) from v7, topic ids from v13.
 */
export function fetchHandler(
  services: BrokerServices,
  options: FetchHandlerOptions,
): ApiHandler<typeof ApiKey.Fetch> {
  return {
    apiKey: ApiKey.Fetch,
    // Min 4: librdkafka only uses record batch v2 when Fetch v4 is advertised; older versions would need
    // down-conversion to message format 0/1, which no supported client asks for.
    minVersion: 4,
    maxVersion: 17,
    handle: (request, context) => handleFetch(services, options, request, context),
  };
}

async function handleFetch(
  services: BrokerServices,
  options: FetchHandlerOptions,
  request: FetchRequest,
  context: RequestContext,
): Promise<FetchResponse> {
  const version = context.apiVersion;
  const byTopicId = version >= 13;
  const image = services.controller.image;
  const keyOf = (partition: { topic: string; topicId: string; partition: number }) =>
    partitionKey(byTopicId ? partition.topicId : partition.topic, partition.partition);
  // A partition listed more than once is fetched once, as Kafka's FetchRequest.fetchData does (a
  // LinkedHashMap): with the last listing's fetch offset and limits, at the first listing's place.
  const requested: PartitionRequest[] = [];
  const placeOf = new Map<string, number>();
  for (const topic of request.topics) {
    const topicImage = byTopicId ? image.topicById(topic.topicId ?? "") : image.topic(topic.topic ?? "");
    for (const partition of topic.partitions) {
      const entry: PartitionRequest = {
        topic: topicImage?.name ?? (byTopicId ? "" : (topic.topic ?? "")),
        topicId: byTopicId ? (topic.topicId ?? ZERO_UUID) : (topicImage?.topicId ?? ZERO_UUID),
        partition: partition.partition,
        fetchOffset: Number(partition.fetchOffset),
        maxBytes: partition.partitionMaxBytes,
        currentLeaderEpoch: partition.currentLeaderEpoch ?? -1,
      };
      const key = keyOf(entry);
      const place = placeOf.get(key);
      if (place === undefined) {
        placeOf.set(key, requested.length);
        requested.push(entry);
      } else requested[place] = entry;
    }
  }

  let fetchContext: FetchContext;
  if (version >= 7) {
    const forgotten: string[] = [];
    for (const topic of request.forgottenTopicsData ?? []) {
      for (const partition of topic.partitions) {
        forgotten.push(
          partitionKey(byTopicId ? (topic.topicId ?? ZERO_UUID) : (topic.topic ?? ""), partition),
        );
      }
    }
    fetchContext = options.sessions.newContext(
      request.sessionId ?? 0,
      request.sessionEpoch ?? FINAL_EPOCH,
      requested,
      forgotten,
      keyOf,
    );
  } else {
    fetchContext = {
      kind: "full",
      partitions: requested.map((partition) => ({
        ...partition,
        lastHighWatermark: -1,
        lastLogStartOffset: -1,
      })),
    };
  }
  if (fetchContext.kind === "error") {
    return { throttleTimeMs: 0, errorCode: fetchContext.errorCode, sessionId: 0, responses: [] };
  }

  const replicaId = request.replicaState?.replicaId ?? request.replicaId ?? -1;
  const maxBytes = Math.min(request.maxBytes ?? INT32_MAX, services.config.get("fetch.max.bytes"));
  const readCommitted = (request.isolationLevel ?? 0) === READ_COMMITTED;
  const buffers = new FetchReadBuffers(options.buffers);
  context.onResponseWritten(() => buffers.giveBack());
  const read = () =>
    readPartitions(
      services,
      fetchContext.partitions,
      { maxBytes, replicaId, byTopicId },
      buffers,
      options.nextReads,
    );

  let results = await read();
  let available = 0;
  let anyError = false;
  for (const result of results) {
    available += result.bytes;
    if (result.data.errorCode !== ErrorCode.NONE) anyError = true;
  }
  if (request.maxWaitMs > 0 && available < request.minBytes && !anyError && results.length > 0) {
    const logs = results.map((result) => result.log).filter((log): log is ReplicatedLog => log !== undefined);
    await options.longPoll.wait(
      logs,
      request.minBytes - available,
      Math.min(request.maxWaitMs, INT32_MAX),
      context.connectionClosed,
    );
    results = await read();
  }

  const included =
    fetchContext.kind === "incremental" ? results.filter((result) => hasNews(result)) : results;
  for (const result of results) {
    if (!included.includes(result)) continue;
    result.partition.lastHighWatermark = Number(result.data.highWatermark);
    result.partition.lastLogStartOffset = Number(result.data.logStartOffset);
    if (!readCommitted) result.data.abortedTransactions = null;
  }
  for (const result of included) {
    const topicName = result.partition.topic;
    if (result.bytes > 0) {
      services.topicMetrics.fetched(topicName, result.bytes, countOf(result));
    }
  }
  return {
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    sessionId: fetchContext.session?.id ?? 0,
    responses: groupByTopic(included, byTopicId),
  };
}

const recordCounts = new WeakMap<FetchResponsePartitionData, number>();
const countOf = (result: PartitionResult) => recordCounts.get(result.data) ?? 0;

/** An incremental fetch answers a partition only when something about it changed. */
function hasNews(result: PartitionResult): boolean {
  const { data, partition } = result;
  return (
    result.bytes > 0 ||
    data.errorCode !== ErrorCode.NONE ||
    Number(data.highWatermark) !== partition.lastHighWatermark ||
    Number(data.logStartOffset) !== partition.lastLogStartOffset
  );
}

function groupByTopic(
  results: readonly PartitionResult[],
  byTopicId: boolean,
): FetchResponseFetchableTopicResponse[] {
  const topics: FetchResponseFetchableTopicResponse[] = [];
  let current: FetchResponseFetchableTopicResponse | undefined;
  let currentKey: string | undefined;
  for (const result of results) {
    const key = byTopicId ? result.partition.topicId : result.partition.topic;
    if (current === undefined || key !== currentKey) {
      current = byTopicId
        ? { topicId: result.partition.topicId, partitions: [] }
        : { topic: result.partition.topic, partitions: [] };
      currentKey = key;
      topics.push(current);
    }
    current.partitions.push(result.data);
  }
  return topics;
}

function emptyPartition(partition: number, errorCode: number): FetchResponsePartitionData {
  return {
    partitionIndex: partition,
    errorCode,
    highWatermark: -1n,
    lastStableOffset: -1n,
    logStartOffset: -1n,
    abortedTransactions: [],
    preferredReadReplica: -1,
    // Empty, never null, as Kafka answers: librdkafka refuses a null record set (size -1) as a parse
    // failure and re-fetches at once, so its consumer never sees the error (auto.offset.reset never runs).
    records: Buffer.alloc(0),
  };
}

/**
 * Reads the partitions in request order within the response budget. Each one's limit depends on what the
 * earlier ones returned, so the answer is built in order; the reads themselves start ahead of their turn
 * (PartitionReadAhead) and are cut to that limit. Only the first partition with data gets a batch larger
 * than its limit (KIP-74's minOneMessage); the others' reads leave such a batch unread (Kafka looks at
 * the batch's size before its bytes too), and a partition whose limit is used up is not read at all, so
 * that what a Fetch reads stays within max.bytes, as what it answers does.
 */
async function readPartitions(
  services: BrokerServices,
  partitions: readonly SessionPartition[],
  options: { maxBytes: number; replicaId: number; byTopicId: boolean },
  buffers: FetchReadBuffers,
  nextReads: NextReads,
): Promise<PartitionResult[]> {
  const results: PartitionResult[] = [];
  let budget = options.maxBytes;
  let firstWithData = true;
  // Set once a partition's next batch did not fit its limit: the later ones' reads (ahead or at their
  // turn) look at their batch's header before reading its bytes, so many partitions with large batches
  // cost a header each, not a read of their limit each. Until then a read takes header and bytes at once.
  let headerFirst = false;
  const image = services.controller.image;
  const check = (partition: SessionPartition) => checkPartition(services, image, partition, options);
  // Partitions whose records came, at least in part, from the disk: only their next range is read ahead.
  const fromDisk = new Set<ReplicatedLog>();
  const readAhead = new PartitionReadAhead(
    partitions.length,
    (index) => {
      const partition = partitions[index]!;
      const checked = check(partition);
      if (!("readable" in checked)) return undefined;
      const { log } = checked.readable;
      return { log, fetchOffset: partition.fetchOffset, maxBytes: partition.maxBytes, headerFirst };
    },
    (log, fetchOffset, maxBytes, readOptions) =>
      readOrClaim(nextReads, buffers, log, fetchOffset, maxBytes, {
        ...readOptions,
        onDirectRead: () => fromDisk.add(log),
      }),
  );
  for (const [index, partition] of partitions.entries()) {
    const checked = check(partition);
    if ("answer" in checked) {
      readAhead.discard(index);
      results.push(checked.answer);
      continue;
    }
    const { log, topicName, highWatermark } = checked.readable;
    const base = partitionBase(partition, log, highWatermark);
    // As Kafka: within what is left of max.bytes, and a first partition with data always gets one batch,
    // even with a partition limit of 0 (KIP-74's minOneMessage), so its consumer makes progress.
    const limit = Math.max(0, Math.min(partition.maxBytes, budget));
    if (limit === 0 && !firstWithData) {
      readAhead.discard(index);
      results.push({
        partition,
        data: { ...base, errorCode: ErrorCode.NONE, records: Buffer.alloc(0) },
        log,
        bytes: 0,
      });
      continue;
    }
    readAhead.fill(index, budget - limit);
    let records: Buffer;
    try {
      records = await readAhead.take(index, log, partition.fetchOffset, limit, {
        minOneBatch: firstWithData,
        headerFirst: !firstWithData && headerFirst,
      });
    } catch (error) {
      const mapped = toPartitionFailure(error, (unexpected) =>
        services.logger.error(
          { err: unexpected, topic: topicName, partition: partition.partition },
          "fetch read failed",
        ),
      );
      results.push({
        partition,
        data: { ...base, errorCode: mapped.errorCode, records: Buffer.alloc(0) },
        log,
        bytes: 0,
      });
      continue;
    }
    // Below the high watermark and nothing returned: the next batch is larger than the limit.
    // (A partition with nothing past its fetch offset returns nothing too, and says nothing of batch sizes.)
    if (records.length === 0 && !firstWithData && partition.fetchOffset < highWatermark) headerFirst = true;
    // The reads already keep to it; the answer holds to max.bytes whatever a log's read returns.
    if (!firstWithData && records.length > limit) records = Buffer.alloc(0);
    if (records.length > 0 && fromDisk.has(log) && services.config.get("log.read.ahead.enable")) {
      nextReads.startAfter(log, offsetAfter(records), partition.maxBytes, records.length, highWatermark);
    }
    const visible = hideInternalControlBatches(records);
    const data: FetchResponsePartitionData = { ...base, errorCode: ErrorCode.NONE, records: visible.records };
    recordCounts.set(data, visible.recordCount);
    if (visible.records.length > 0) {
      firstWithData = false;
      budget -= visible.records.length;
    }
    results.push({ partition, data, log, bytes: visible.records.length });
  }
  return results;
}

/**
 * A partition's records from `fetchOffset` within `maxBytes`: from the read NextReads started for this
 * offset when it holds any that fit (a prefix of what a read now returns), else read now. Either way
 * `options.onDirectRead` hears of records that came from the disk.
 */
async function readOrClaim(
  nextReads: NextReads,
  buffers: FetchReadBuffers,
  log: ReplicatedLog,
  fetchOffset: number,
  maxBytes: number,
  options: ReadOptions,
): Promise<ReplicatedReadResult> {
  const early = nextReads.claim(log, fetchOffset);
  if (early !== undefined) {
    buffers.adopt(() => early.release());
    const result = await early.outcome;
    if (result !== undefined) {
      const records = cutToLimit(result.read.records, maxBytes, options.minOneBatch ?? true);
      if (records.length > 0) {
        if (result.fromDisk) options.onDirectRead?.(records.length);
        return { records, nextOffset: offsetAfter(records) };
      }
    }
  }
  return buffers.read((allocate) => log.read(fetchOffset, maxBytes, allocate, options));
}

/** The offset after the last of whole `records` batches (not empty). */
function offsetAfter(records: Buffer): number {
  let at = 0;
  let last = 0;
  while (at + RECORD_BATCH_HEADER_BYTES <= records.length) {
    last = Number(records.readBigInt64BE(at)) + records.readInt32BE(at + LAST_OFFSET_DELTA_POSITION);
    at += records.readInt32BE(at + BATCH_LENGTH_POSITION) + LOG_OVERHEAD;
  }
  return last + 1;
}

type CheckedPartition =
  | { readonly answer: PartitionResult }
  | {
      readonly readable: {
        readonly log: ReplicatedLog;
        readonly topicName: string;
        readonly highWatermark: number;
      };
    };

/** What a partition answers without reading (an error, or nothing new yet), or that it has records to read. */
function checkPartition(
  services: BrokerServices,
  image: BrokerServices["controller"]["image"],
  partition: SessionPartition,
  options: { replicaId: number; byTopicId: boolean },
): CheckedPartition {
  const topic = options.byTopicId ? image.topicById(partition.topicId) : image.topic(partition.topic);
  const log = topic ? services.partitions.partition(topic.name, partition.partition) : undefined;
  const fail = (errorCode: number): CheckedPartition => ({
    answer: { partition, data: emptyPartition(partition.partition, errorCode), log, bytes: 0 },
  });
  if (!topic || !log) {
    return fail(
      options.byTopicId && !topic ? ErrorCode.UNKNOWN_TOPIC_ID : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    );
  }
  if (options.replicaId >= 0 || !log.isLeader) {
    // Single node: no broker fetches as a follower, and this node leads every partition it hosts.
    return fail(ErrorCode.NOT_LEADER_OR_FOLLOWER);
  }
  if (partition.currentLeaderEpoch >= 0 && partition.currentLeaderEpoch !== log.leaderEpoch) {
    return fail(
      partition.currentLeaderEpoch < log.leaderEpoch
        ? ErrorCode.FENCED_LEADER_EPOCH
        : ErrorCode.UNKNOWN_LEADER_EPOCH,
    );
  }
  const highWatermark = log.highWatermark;
  const answer = (errorCode: number, records: Buffer): CheckedPartition => ({
    answer: {
      partition,
      data: { ...partitionBase(partition, log, highWatermark), errorCode, records },
      log,
      bytes: 0,
    },
  });
  if (partition.fetchOffset < log.logStartOffset || partition.fetchOffset > log.logEndOffset) {
    return answer(ErrorCode.OFFSET_OUT_OF_RANGE, Buffer.alloc(0));
  }
  if (partition.fetchOffset >= highWatermark) return answer(ErrorCode.NONE, Buffer.alloc(0));
  return { readable: { log, topicName: topic.name, highWatermark } };
}

/** The fields of a partition's answer that do not depend on what was read. */
function partitionBase(
  partition: SessionPartition,
  log: ReplicatedLog,
  highWatermark: number,
): Omit<FetchResponsePartitionData, "errorCode" | "records"> {
  return {
    partitionIndex: partition.partition,
    highWatermark: BigInt(highWatermark),
    lastStableOffset: BigInt(highWatermark),
    logStartOffset: BigInt(log.logStartOffset),
    abortedTransactions: [],
    preferredReadReplica: -1,
  };
}
