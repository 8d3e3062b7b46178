import { configSourceCode, describeTopicConfig } from "@raftka/monitoring";
import {
  ApiKey,
  type CreateTopicsRequest,
  type CreateTopicsResponse,
  type CreateTopicsResponseCreatableTopicResult,
  ErrorCode,
} from "@raftka/protocol";
import type { ApiHandler } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";
import { stillRunningMessage, withinDeadline } from "../operation-deadline.js";

const ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA";

/**
 * CreateTopics (with validateOnly, configs, manual assignments). Answers only once the new partitions
 * accept produce and fetch, so a client's first Produce right after never sees UNKNOWN_TOPIC_OR_PARTITION.
 */
export function createTopicsHandler(services: BrokerServices): ApiHandler<typeof ApiKey.CreateTopics> {
  return {
    apiKey: ApiKey.CreateTopics,
    minVersion: 0,
    maxVersion: 7,
    handle: (request) => handleCreateTopics(services, request),
  };
}

async function handleCreateTopics(
  services: BrokerServices,
  request: CreateTopicsRequest,
): Promise<CreateTopicsResponse> {
  const creation = services.controller.createTopics(
    request.topics.map((topic) => {
      const configs: Record<string, string | null> = {};
      // A later value for the same name must not hide an earlier null: Kafka refuses the topic for any null.
      for (const config of topic.configs) {
        configs[config.name] = configs[config.name] === null ? null : config.value;
      }
      return {
        name: topic.name,
        numPartitions: topic.numPartitions,
        replicationFactor: topic.replicationFactor,
        assignments: topic.assignments,
        configs,
      };
    }),
    { validateOnly: request.validateOnly ?? false },
  );
  const deadline = await withinDeadline(creation, request.timeoutMs, (error) =>
    services.logger.error({ err: error }, "CreateTopics failed after its request had timed out"),
  );
  if (!deadline.finished) {
    return {
      throttleTimeMs: 0,
      topics: request.topics.map((topic) => ({
        name: topic.name,
        topicId: ZERO_UUID,
        errorCode: ErrorCode.REQUEST_TIMED_OUT,
        errorMessage: stillRunningMessage(
          `creating topic ${topic.name}`,
          request.timeoutMs,
          "describe the topic (Metadata, `raftka topic describe`) to see when it is there, or send a longer timeout",
        ),
        topicConfigErrorCode: ErrorCode.NONE,
        numPartitions: -1,
        replicationFactor: -1,
        configs: null,
      })),
    };
  }
  const topics = deadline.value.map((outcome): CreateTopicsResponseCreatableTopicResult => {
    if (outcome.error) {
      return {
        name: outcome.name,
        topicId: ZERO_UUID,
        errorCode: outcome.error.code,
        errorMessage: outcome.error.message,
        topicConfigErrorCode: ErrorCode.NONE,
        numPartitions: -1,
        replicationFactor: -1,
        configs: null,
      };
    }
    const configs = describeTopicConfig(
      services.config,
      outcome.overrides ?? {},
      undefined,
      services.controller.image.brokerConfigLayers(services.nodeId),
    ).map((entry) => ({
      name: entry.name,
      value: entry.value,
      readOnly: entry.readOnly,
      configSource: configSourceCode[entry.source],
      isSensitive: entry.isSensitive,
    }));
    return {
      name: outcome.name,
      topicId: request.validateOnly ? ZERO_UUID : (outcome.topicId ?? ZERO_UUID),
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      topicConfigErrorCode: ErrorCode.NONE,
      numPartitions: outcome.numPartitions ?? -1,
      replicationFactor: outcome.replicationFactor ?? -1,
      configs,
    };
  });
  return { throttleTimeMs: 0, topics };
}
