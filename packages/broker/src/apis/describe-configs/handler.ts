import {
  type ConfigDescription,
  configSourceCode,
  describeBrokerConfig,
  describeClusterDefaultBrokerConfig,
  describeTopicConfig,
  kafkaConfigTypeCode,
} from "@raftka/monitoring";
import {
  ApiKey,
  type DescribeConfigsRequest,
  type DescribeConfigsResponse,
  type DescribeConfigsResponseDescribeConfigsResourceResult,
  type DescribeConfigsResponseDescribeConfigsResult,
  ErrorCode,
} from "@raftka/protocol";
import { ConfigResourceType } from "../../metadata/config-operations.js";
import { topicNameProblem } from "../../metadata/topic-names.js";
import type { ApiHandler } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";
import { describeLoggers } from "./loggers.js";

/** DescribeConfigs for topics, this broker and its loggers, with Kafka's sources and synonyms. */
export function describeConfigsHandler(services: BrokerServices): ApiHandler<typeof ApiKey.DescribeConfigs> {
  return {
    apiKey: ApiKey.DescribeConfigs,
    minVersion: 0,
    maxVersion: 4,
    handle: (request) => handleDescribeConfigs(services, request),
  };
}

function toEntry(
  description: ConfigDescription,
  request: DescribeConfigsRequest,
): DescribeConfigsResponseDescribeConfigsResourceResult {
  return {
    name: description.name,
    value: description.value,
    readOnly: description.readOnly,
    isDefault: description.isDefault,
    configSource: configSourceCode[description.source],
    isSensitive: description.isSensitive,
    synonyms: request.includeSynonyms
      ? description.synonyms.map((synonym) => ({
          name: synonym.name,
          value: synonym.value,
          source: configSourceCode[synonym.source],
        }))
      : [],
    configType: kafkaConfigTypeCode[description.configType],
    documentation: request.includeDocumentation ? description.documentation : null,
  };
}

function handleDescribeConfigs(
  services: BrokerServices,
  request: DescribeConfigsRequest,
): DescribeConfigsResponse {
  const results = request.resources.map((resource): DescribeConfigsResponseDescribeConfigsResult => {
    const result = (errorCode: number, errorMessage: string | null, configs: ConfigDescription[] = []) => ({
      errorCode,
      errorMessage,
      resourceType: resource.resourceType,
      resourceName: resource.resourceName,
      configs: configs.map((description) => toEntry(description, request)),
    });
    // As Kafka's ConfigHelper: an empty list asks for every config, as null does, not for none.
    const keys =
      resource.configurationKeys && resource.configurationKeys.length > 0
        ? resource.configurationKeys
        : undefined;
    const image = services.controller.image;
    const dynamic = image.brokerConfigLayers(services.nodeId);
    switch (resource.resourceType) {
      case ConfigResourceType.TOPIC: {
        const topic = image.topic(resource.resourceName);
        if (!topic) {
          // As Kafka: a name no topic could have is INVALID_TOPIC_EXCEPTION, not "unknown".
          const nameProblem = topicNameProblem(resource.resourceName);
          if (nameProblem !== undefined) return result(ErrorCode.INVALID_TOPIC_EXCEPTION, nameProblem);
          return result(
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            `topic ${resource.resourceName} does not exist`,
          );
        }
        return result(
          ErrorCode.NONE,
          null,
          describeTopicConfig(services.config, topic.configs, keys, dynamic),
        );
      }
      case ConfigResourceType.BROKER:
      case ConfigResourceType.BROKER_LOGGER: {
        if (resource.resourceName !== "" && resource.resourceName !== String(services.nodeId)) {
          return result(
            ErrorCode.INVALID_REQUEST,
            `broker ${resource.resourceName} is not this node (${services.nodeId}); ask the node itself`,
          );
        }
        let described: ConfigDescription[];
        if (resource.resourceType === ConfigResourceType.BROKER_LOGGER) {
          described = describeLoggers(services.config, keys);
        } else if (resource.resourceName === "") {
          // As Kafka: broker "" is the cluster default, and lists only what was set there.
          described = describeClusterDefaultBrokerConfig(services.config, dynamic.clusterDefault, keys);
        } else {
          described = describeBrokerConfig(services.config, keys, dynamic);
        }
        return result(ErrorCode.NONE, null, described);
      }
      default:
        return result(
          ErrorCode.INVALID_REQUEST,
          `config resource type ${resource.resourceType} is not supported; use 2 (topic), 4 (broker) or 8 (broker logger)`,
        );
    }
  });
  return { throttleTimeMs: 0, results };
}
