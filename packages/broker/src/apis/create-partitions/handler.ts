import {
  ApiKey,
  type CreatePartitionsRequest,
  type CreatePartitionsResponse,
  ErrorCode,
} from "@raftka/protocol";
import type { ApiHandler } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";

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
  const outcomes = await services.controller.createPartitions(
    request.topics.map((topic) => ({ name: topic.name, count: topic.count, assignments: topic.assignments })),
    { validateOnly: request.validateOnly },
  );
  return {
    throttleTimeMs: 0,
    results: outcomes.map((outcome) => ({
      name: outcome.name,
      errorCode: outcome.error?.code ?? ErrorCode.NONE,
      errorMessage: outcome.error?.message ?? null,
    })),
  };
}
