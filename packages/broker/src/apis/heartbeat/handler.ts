import { ApiKey, type HeartbeatRequest, type HeartbeatResponse } from "@raftka/protocol";
import type { GroupCoordinator } from "../../group/group-coordinator.js";
import type { ApiHandler, RequestContext } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";

/** Heartbeat v0-v4: keeps a member's session alive and tells it when to rejoin (REBALANCE_IN_PROGRESS). */
export function heartbeatHandler(
  services: BrokerServices,
  coordinator: GroupCoordinator,
): ApiHandler<typeof ApiKey.Heartbeat> {
  return {
    apiKey: ApiKey.Heartbeat,
    minVersion: 0,
    maxVersion: 4,
    handle: (request: HeartbeatRequest, context: RequestContext): HeartbeatResponse => ({
      throttleTimeMs: 0,
      errorCode: coordinator.core.heartbeat(
        {
          groupId: request.groupId,
          memberId: request.memberId,
          generationId: request.generationId,
          groupInstanceId: context.apiVersion >= 3 ? (request.groupInstanceId ?? null) : null,
        },
        services.now(),
      ),
    }),
  };
}
