import { ApiKey, type DeleteTopicsRequest, type DeleteTopicsResponse, ErrorCode } from "@raftka/protocol";
import type { ApiHandler } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";

const ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA";

/** DeleteTopics by name (v0-5) or by name or id (v6). Answers once the topics' logs are closed and gone. */
export function deleteTopicsHandler(services: BrokerServices): ApiHandler<typeof ApiKey.DeleteTopics> {
  return {
    apiKey: ApiKey.DeleteTopics,
    minVersion: 0,
    maxVersion: 6,
    handle: (request) => handleDeleteTopics(services, request),
  };
}

async function handleDeleteTopics(
  services: BrokerServices,
  request: DeleteTopicsRequest,
): Promise<DeleteTopicsResponse> {
  const references =
    request.topics && request.topics.length > 0
      ? request.topics.map((topic) => ({
          name: topic.name,
          topicId: topic.topicId === ZERO_UUID ? null : topic.topicId,
        }))
      : (request.topicNames ?? []).map((name) => ({ name, topicId: null }));
  const outcomes = await services.controller.deleteTopics(references);
  return {
    throttleTimeMs: 0,
    responses: outcomes.map((outcome) => ({
      name: outcome.topic?.name ?? outcome.name ?? null,
      topicId: outcome.topic?.topicId ?? outcome.topicId ?? ZERO_UUID,
      errorCode: outcome.error?.code ?? ErrorCode.NONE,
      errorMessage: outcome.error?.message ?? null,
    })),
  };
}
