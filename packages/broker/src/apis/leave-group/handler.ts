import { ApiKey, ErrorCode, type LeaveGroupRequest, type LeaveGroupResponse } from "@raftka/protocol";
import type { GroupCoordinator } from "../../group/group-coordinator.js";
import type { ApiHandler, RequestContext } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";

/** LeaveGroup v0-v5: one member (v0-v2) or a batch of members, also by group.instance.id alone (v3+). */
export function leaveGroupHandler(
  services: BrokerServices,
  coordinator: GroupCoordinator,
): ApiHandler<typeof ApiKey.LeaveGroup> {
  return {
    apiKey: ApiKey.LeaveGroup,
    minVersion: 0,
    maxVersion: 5,
    handle: (request, context) => handleLeaveGroup(services, coordinator, request, context),
  };
}

function handleLeaveGroup(
  services: BrokerServices,
  coordinator: GroupCoordinator,
  request: LeaveGroupRequest,
  context: RequestContext,
): LeaveGroupResponse {
  const batched = context.apiVersion >= 3;
  const leaving = batched
    ? (request.members ?? []).map((member) => ({
        memberId: member.memberId,
        groupInstanceId: member.groupInstanceId,
        reason: member.reason ?? null,
      }))
    : [{ memberId: request.memberId ?? "", groupInstanceId: null, reason: null }];
  const result = coordinator.core.leaveGroup(request.groupId, leaving, services.now());
  if (batched)
    return { throttleTimeMs: 0, errorCode: result.errorCode, members: result.members.map((m) => ({ ...m })) };
  // v0-v2 have one error: the top-level one, else the member's (Kafka's LeaveGroupResponse.getError).
  const memberError = result.members.find((member) => member.errorCode !== ErrorCode.NONE)?.errorCode;
  return {
    throttleTimeMs: 0,
    errorCode: result.errorCode !== ErrorCode.NONE ? result.errorCode : (memberError ?? ErrorCode.NONE),
  };
}
