import { ApiKey, type DeleteTopicsRequest, type DeleteTopicsResponse, ErrorCode } from "@raftka/protocol";
import type { ApiHandler } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";
import { stillRunningMessage, withinDeadline } from "../operation-deadline.js";

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
  const deletion = await withinDeadline(
    services.controller.deleteTopics(references),
    request.timeoutMs,
    (error) => services.logger.error({ err: error }, "DeleteTopics failed after its request had timed out"),
  );
  if (!deletion.finished) {
    return {
      throttleTimeMs: 0,
      responses: references.map((reference) => ({
        name: reference.name,
        topicId: reference.topicId ?? ZERO_UUID,
        errorCode: ErrorCode.REQUEST_TIMED_OUT,
        errorMessage: stillRunningMessage(
          `deleting topic ${reference.name ?? reference.topicId}`,
          request.timeoutMs,
          "list topics (Metadata, `raftka topic list`) to see when it is gone, or send a longer timeout",
        ),
      })),
    };
  }
  const outcomes = deletion.value;
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
