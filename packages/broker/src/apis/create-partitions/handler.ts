import {
  ApiKey,
  type CreatePartitionsRequest,
  type CreatePartitionsResponse,
  ErrorCode,
} from "@raftka/protocol";
import type { ApiHandler } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";
import { stillRunningMessage, withinDeadline } from "../operation-deadline.js";

/** CreatePartitions: grows topics; the new partitions accept produce and fetch when it answers. */
export function createPartitionsHandler(
  services: BrokerServices,
): ApiHandler<typeof ApiKey.CreatePartitions> {
  return {
    apiKey: ApiKey.CreatePartitions,
    minVersion: 0,
    maxVersion: 3,
    handle: (request) => handleCreatePartitions(services, request),
  };
}

async function handleCreatePartitions(
  services: BrokerServices,
  request: CreatePartitionsRequest,
): Promise<CreatePartitionsResponse> {
  const growth = await withinDeadline(
    services.controller.createPartitions(
      request.topics.map((topic) => ({
        name: topic.name,
        count: topic.count,
        assignments: topic.assignments,
      })),
      { validateOnly: request.validateOnly },
    ),
    request.timeoutMs,
    (error) =>
      services.logger.error({ err: error }, "CreatePartitions failed after its request had timed out"),
  );
  if (!growth.finished) {
    return {
      throttleTimeMs: 0,
      results: request.topics.map((topic) => ({
        name: topic.name,
        errorCode: ErrorCode.REQUEST_TIMED_OUT,
        errorMessage: stillRunningMessage(
          `adding partitions to topic ${topic.name}`,
          request.timeoutMs,
          "describe the topic (Metadata, `raftka topic describe`) to see when they are there, or send a longer timeout",
        ),
      })),
    };
  }
  const outcomes = growth.value;
  return {
    throttleTimeMs: 0,
    results: outcomes.map((outcome) => ({
      name: outcome.name,
      errorCode: outcome.error?.code ?? ErrorCode.NONE,
      errorMessage: outcome.error?.message ?? null,
    })),
  };
}
