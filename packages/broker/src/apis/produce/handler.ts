import {
  ApiKey,
  ErrorCode,
  type ProduceRequest,
  type ProduceRequestPartitionProduceData,
  type ProduceResponse,
  type ProduceResponseBatchIndexAndErrorMessage,
  type ProduceResponsePartitionProduceResponse,
} from "@raftka/protocol";
import { topicNameProblem } from "../../metadata/topic-names.js";
import { waitForHighWatermark } from "../../partitions/high-watermark.js";
import type { HostedTopic } from "../../partitions/partition-manager.js";
import type { Acks, ReplicatedLog, TopicPartition } from "../../partitions/replicated-log.js";
import type { ApiHandler, RequestContext } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";
import { toPartitionFailure } from "../errors.js";
import { prepareRecords } from "./batch-validation.js";

type PartitionResponse = ProduceResponsePartitionProduceResponse;

/** Node timers cannot wait longer than this (larger values fire at once). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Produce: validates each partition's batch, runs the producer-state check, and appends. Appends are
 * started synchronously, in request order, so pipelined requests land in the log in the order they were
 * sent; only the wait for acks happens after. acks=0 requests get no response.
 */
export function produceHandler(services: BrokerServices): ApiHandler<typeof ApiKey.Produce> {
  return {
    apiKey: ApiKey.Produce,
    // Min 0: librdkafka only compresses when Produce v0 is advertised (its message-set writer checks it).
    minVersion: 0,
    maxVersion: 11,
    expectsResponse: (request) => request.acks !== 0,
    handle: (request, context) => handleProduce(services, request, context),
  };
}

function handleProduce(
  services: BrokerServices,
  request: ProduceRequest,
  context: RequestContext,
): ProduceResponse | Promise<ProduceResponse> {
  const acks = request.acks;
  const now = services.now();
  // One entry per append: whether the log let go of the records once it resolved.
  const appendsReleased: Promise<boolean>[] = [];
  const topics = request.topicData.map((topicData) => {
    const hosted = services.partitions.topic(topicData.name);
    return {
      name: topicData.name,
      partitions: topicData.partitionData.map((partitionData) =>
        acks !== 0 && acks !== 1 && acks !== -1
          ? failure(
              partitionData.index,
              ErrorCode.INVALID_REQUIRED_ACKS,
              `acks=${acks} is not valid; use 0, 1 or -1 (all)`,
            )
          : producePartition(
              services,
              topicData.name,
              hosted,
              partitionData,
              acks,
              context.apiVersion,
              now,
              request.timeoutMs,
              appendsReleased,
            ),
      ),
    };
  });
  // The request's records are slices of its frame: the frame may be reused once no log holds them,
  // which an acks=all answer that timed out does not show (its write may still be queued).
  context.releaseRequestBufferWhen(
    appendsReleased.length === 0
      ? Promise.resolve(true)
      : Promise.all(appendsReleased).then((released) => released.every(Boolean)),
  );
  const build = (resolved: { name: string; partitions: PartitionResponse[] }[]): ProduceResponse => ({
    responses: resolved.map((topic) => ({ name: topic.name, partitionResponses: topic.partitions })),
    throttleTimeMs: 0,
  });
  if (topics.every((topic) => topic.partitions.every((partition) => !(partition instanceof Promise)))) {
    return build(topics as { name: string; partitions: PartitionResponse[] }[]);
  }
  return Promise.all(
    topics.map(async (topic) => ({ name: topic.name, partitions: await Promise.all(topic.partitions) })),
  ).then(build);
}

function failure(
  index: number,
  errorCode: number,
  message: string,
  recordErrors: readonly ProduceResponseBatchIndexAndErrorMessage[] = [],
): PartitionResponse {
  return {
    index,
    errorCode,
    baseOffset: -1n,
    logAppendTimeMs: -1n,
    logStartOffset: -1n,
    recordErrors: [...recordErrors],
    errorMessage: message,
  };
}

function producePartition(
  services: BrokerServices,
  topicName: string,
  hosted: HostedTopic | undefined,
  partitionData: ProduceRequestPartitionProduceData,
  acks: Acks,
  version: number,
  now: number,
  timeoutMs: number,
  appendsReleased: Promise<boolean>[],
): PartitionResponse | Promise<PartitionResponse> {
  const index = partitionData.index;
  if (!hosted) {
    const nameProblem = topicNameProblem(topicName);
    if (nameProblem !== undefined) return failure(index, ErrorCode.INVALID_TOPIC_EXCEPTION, nameProblem);
    return failure(
      index,
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      `topic ${topicName} does not exist; create it first`,
    );
  }
  if (hosted.image.internal) {
    return failure(
      index,
      ErrorCode.INVALID_TOPIC_EXCEPTION,
      `topic ${topicName} is internal to the broker; clients cannot produce to it`,
    );
  }
  const log = hosted.partitions[index];
  if (!log) {
    return failure(
      index,
      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      `topic ${topicName} has no partition ${index} (it has ${hosted.image.partitions.length}); refresh metadata`,
    );
  }
  if (!log.isLeader) {
    return failure(
      index,
      ErrorCode.NOT_LEADER_OR_FOLLOWER,
      `this broker does not lead ${topicName}-${index}; refresh metadata`,
    );
  }
  // Kafka checks this before anything is appended: with fewer replicas in sync, an acks=all write is refused.
  const minInsync = hosted.settings.minInsyncReplicas;
  if (acks === -1 && log.inSyncReplicas.length < minInsync) {
    return failure(
      index,
      ErrorCode.NOT_ENOUGH_REPLICAS,
      `${topicName}-${index} has ${log.inSyncReplicas.length} in-sync replica(s), fewer than its min.insync.replicas=${minInsync}; ` +
        "acks=all writes are refused until more replicas are in sync: lower min.insync.replicas (raftka topic alter-config) or add replicas",
    );
  }
  const noSpace = services.diskSpace.admit(log.directory, partitionData.records?.length ?? 0);
  if (noSpace !== undefined) return failure(index, ErrorCode.KAFKA_STORAGE_ERROR, noSpace);
  const prepared = prepareRecords(partitionData.records, version, hosted.settings, now, log.topicPartition);
  if (!prepared.ok) return failure(index, prepared.errorCode, prepared.message, prepared.recordErrors);

  const topicPartition: TopicPartition = log.topicPartition;
  const header = prepared.headers[0]!;
  const check = services.producerState.check(topicPartition, header);
  if (check.action === "reject") return failure(index, check.errorCode, check.message);
  const logAppendTime = hosted.settings.timestampType === "LogAppendTime" ? now : undefined;
  const answered =
    check.action === "duplicate" ? answerDuplicate(services, log, index, acks, check.original) : undefined;
  if (answered !== undefined) {
    if (acks !== -1) return answered;
    return withTimeout(answered, Math.min(timeoutMs, MAX_TIMER_MS), () =>
      failure(
        index,
        ErrorCode.REQUEST_TIMED_OUT,
        `the original of this retried batch was not committed within the request timeout of ${timeoutMs} ms; retry to find out`,
      ),
    );
  }

  const releasesRecords = log.releasesAppendedRecords;
  const appended = log.append(prepared.records, {
    acks,
    ...(logAppendTime === undefined ? {} : { logAppendTime }),
  });
  appendsReleased.push(
    appended.then(
      () => releasesRecords && log.releasesAppendedRecords,
      () => false,
    ),
  );
  const answeredAppend = appended.then(
    (result): PartitionResponse => {
      services.producerState.appended(topicPartition, header, result.baseOffset);
      services.topicMetrics.produced(topicName, prepared.records.length, prepared.recordCount);
      return {
        index,
        errorCode: ErrorCode.NONE,
        baseOffset: BigInt(result.baseOffset),
        logAppendTimeMs: BigInt(logAppendTime ?? -1),
        logStartOffset: BigInt(result.logStartOffset),
        recordErrors: [],
        errorMessage: null,
      };
    },
    (error: unknown): PartitionResponse => {
      services.producerState.appendFailed?.(topicPartition, header);
      const mapped = toPartitionFailure(error, (unexpected) =>
        services.logger.error({ err: unexpected, topic: topicName, partition: index }, "append failed"),
      );
      return failure(index, mapped.errorCode, mapped.message);
    },
  );
  if (acks !== -1) return answeredAppend;
  return withTimeout(answeredAppend, Math.min(timeoutMs, MAX_TIMER_MS), () =>
    failure(
      index,
      ErrorCode.REQUEST_TIMED_OUT,
      `the write was not committed within the request timeout of ${timeoutMs} ms; it may still be committed, retry to find out`,
    ),
  );
}

/**
 * A retried batch the producer state recognised: nothing is appended, and the answer carries the original
 * batch's offsets, given only once the original is as durable as this request's acks ask (as Kafka's
 * delayed produce waits for a duplicate's original to be replicated).
 */
function answerDuplicate(
  services: BrokerServices,
  log: ReplicatedLog,
  index: number,
  acks: Acks,
  original: Promise<{ baseOffset: number; lastOffset: number }>,
): Promise<PartitionResponse> {
  return original.then(
    async ({ baseOffset, lastOffset }): Promise<PartitionResponse> => {
      if (acks === -1) await waitForHighWatermark(log, lastOffset + 1);
      return {
        index,
        errorCode: ErrorCode.NONE,
        baseOffset: BigInt(baseOffset),
        logAppendTimeMs: -1n,
        logStartOffset: BigInt(log.logStartOffset),
        recordErrors: [],
        errorMessage: null,
      };
    },
    (error: unknown): PartitionResponse => {
      const mapped = toPartitionFailure(error, (unexpected) =>
        services.logger.error(
          { err: unexpected, topic: log.topicPartition.topic, partition: index },
          "the original of a retried batch failed to append",
        ),
      );
      return failure(index, mapped.errorCode, mapped.message);
    },
  );
}

/** Kafka answers REQUEST_TIMED_OUT when an acks=all write is not committed within the request's timeout. */
function withTimeout<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => T): Promise<T> {
  if (!(timeoutMs > 0)) return promise;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
