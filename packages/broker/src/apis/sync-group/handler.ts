import { ApiKey, type SyncGroupRequest, type SyncGroupResponse } from "@raftka/protocol";
import type { SyncGroupResult } from "../../group/classic-group.js";
import type { GroupCoordinator } from "../../group/group-coordinator.js";
import type { ApiHandler, RequestContext } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";

/**
 * SyncGroup v0-v5: followers wait for the leader's assignment, which is handed out once it is durable in
 * `__consumer_offsets`. Assignment bytes are passed through untouched (eager and cooperative assignors).
 */
export function syncGroupHandler(
  services: BrokerServices,
  coordinator: GroupCoordinator,
): ApiHandler<typeof ApiKey.SyncGroup> {
  return {
    apiKey: ApiKey.SyncGroup,
    minVersion: 0,
    maxVersion: 5,
    handle: (request, context) => handleSyncGroup(services, coordinator, request, context),
  };
}

function handleSyncGroup(
  services: BrokerServices,
  coordinator: GroupCoordinator,
  request: SyncGroupRequest,
  context: RequestContext,
): Promise<SyncGroupResponse> {
  const version = context.apiVersion;
  return new Promise<SyncGroupResult>((resolve) => {
    coordinator.core.syncGroup(
      {
        groupId: request.groupId,
        generationId: request.generationId,
        memberId: request.memberId,
        groupInstanceId: version >= 3 ? (request.groupInstanceId ?? null) : null,
        protocolType: version >= 5 ? (request.protocolType ?? null) : null,
        protocolName: version >= 5 ? (request.protocolName ?? null) : null,
        assignments: new Map(
          request.assignments.map((entry) => [entry.memberId, Buffer.from(entry.assignment)]),
        ),
      },
      services.now(),
      resolve,
    );
  }).then((result) => ({
    throttleTimeMs: 0,
    errorCode: result.errorCode,
    protocolType: result.protocolType,
    protocolName: result.protocolName,
    assignment: result.assignment,
  }));
}
