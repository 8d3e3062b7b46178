import {
  ApiKey,
  ErrorCode,
  type MetadataRequest,
  type MetadataResponse,
  type MetadataResponseTopic,
} from "@raftka/protocol";
import type { TopicImage } from "../../metadata/image.js";
import { isInternalTopicName, topicNameProblem } from "../../metadata/topic-names.js";
import type { ApiHandler, RequestContext } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";
import { brokersFor, CLUSTER_OPERATIONS, TOPIC_OPERATIONS, UNREQUESTED_OPERATIONS } from "../common.js";

interface TopicLookup {
  readonly name: string | null;
  readonly topicId?: string;
}

/**
 * Metadata: brokers (the listener the client came in on), controller, topics with their partitions.
 * Missing topics are created on the spot when `auto.create.topics.enable` and the request allow it, and
 * answered only once their partitions accept produce and fetch.
 */
export function metadataHandler(services: BrokerServices): ApiHandler<typeof ApiKey.Metadata> {
  return {
    apiKey: ApiKey.Metadata,
    minVersion: 0,
    maxVersion: 12,
    handle: (request, context) => handleMetadata(services, request, context),
  };
}

async function handleMetadata(
  services: BrokerServices,
  request: MetadataRequest,
  context: RequestContext,
): Promise<MetadataResponse> {
  const image = services.controller.image;
  const allTopics = request.topics === null || (context.apiVersion === 0 && request.topics.length === 0);
  const lookups: TopicLookup[] = allTopics
    ? [...image.topics()].map((topic) => ({ name: topic.name })).sort((a, b) => a.name.localeCompare(b.name))
    : request.topics!.map((topic) => ({
        name: topic.name,
        ...(topic.topicId === undefined ? {} : { topicId: topic.topicId }),
      }));

  // Kafka's rule: before v4 the broker's policy alone decides; from v4 the client must allow it too.
  const mayCreate =
    services.config.get("auto.create.topics.enable") &&
    (context.apiVersion < 4 || request.allowAutoTopicCreation !== false);
  if (mayCreate) await autoCreate(services, lookups);

  const topics = lookups.map((lookup) => {
    const described = describeTopic(services, lookup, request);
    // Response names are nullable only from v12; an older request naming no topic gets "" back.
    return described.name === null && context.apiVersion < 12 ? { ...described, name: "" } : described;
  });
  return {
    throttleTimeMs: 0,
    brokers: brokersFor(services, context.listenerName),
    clusterId: services.clusterId,
    controllerId: services.nodeId,
    topics,
    clusterAuthorizedOperations: request.includeClusterAuthorizedOperations
      ? CLUSTER_OPERATIONS
      : UNREQUESTED_OPERATIONS,
  };
}

async function autoCreate(services: BrokerServices, lookups: readonly TopicLookup[]): Promise<void> {
  const image = services.controller.image;
  const missing = new Set<string>();
  for (const { name } of lookups) {
    if (name === null || name === "" || image.topic(name)) continue;
    if (topicNameProblem(name) !== undefined || isInternalTopicName(name)) continue;
    missing.add(name);
  }
  if (missing.size === 0) return;
  const outcomes = await services.controller.createTopics(
    [...missing].map((name) => ({
      name,
      numPartitions: -1,
      replicationFactor: -1,
      assignments: [],
      configs: {},
    })),
  );
  for (const outcome of outcomes) {
    if (outcome.error && outcome.error.code !== ErrorCode.TOPIC_ALREADY_EXISTS) {
      services.logger.warn(
        { topic: outcome.name, error: outcome.error.message },
        "automatic topic creation failed",
      );
    } else if (!outcome.error) {
      services.logger.info(
        { topic: outcome.name, partitions: outcome.numPartitions },
        "topic created automatically",
      );
    }
  }
}

function describeTopic(
  services: BrokerServices,
  lookup: TopicLookup,
  request: MetadataRequest,
): MetadataResponseTopic {
  const image = services.controller.image;
  const operations = request.includeTopicAuthorizedOperations ? TOPIC_OPERATIONS : UNREQUESTED_OPERATIONS;
  const missing = (errorCode: number): MetadataResponseTopic => ({
    errorCode,
    name: lookup.name,
    topicId: lookup.topicId ?? "AAAAAAAAAAAAAAAAAAAAAA",
    isInternal: false,
    partitions: [],
    topicAuthorizedOperations: operations,
  });
  let topic: TopicImage | undefined;
  if (lookup.name !== null && lookup.name !== "") {
    if (topicNameProblem(lookup.name) !== undefined) return missing(ErrorCode.INVALID_TOPIC_EXCEPTION);
    topic = image.topic(lookup.name);
    if (!topic) return missing(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  } else {
    topic = lookup.topicId ? image.topicById(lookup.topicId) : undefined;
    if (!topic) return missing(ErrorCode.UNKNOWN_TOPIC_ID);
  }
  const hosted = services.partitions.topic(topic.name);
  return {
    errorCode: ErrorCode.NONE,
    name: topic.name,
    topicId: topic.topicId,
    isInternal: topic.internal,
    partitions: topic.partitions.map((partition) => {
      const log = hosted?.partitions[partition.partition];
      return {
        errorCode: log ? ErrorCode.NONE : ErrorCode.LEADER_NOT_AVAILABLE,
        partitionIndex: partition.partition,
        leaderId: log?.leaderId ?? -1,
        leaderEpoch: log?.leaderEpoch ?? partition.leaderEpoch,
        replicaNodes: [...partition.replicas],
        isrNodes: log ? [...log.inSyncReplicas] : [],
        offlineReplicas: [],
      };
    }),
    topicAuthorizedOperations: operations,
  };
}
