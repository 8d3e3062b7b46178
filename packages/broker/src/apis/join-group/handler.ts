import { ApiKey, type JoinGroupRequest, type JoinGroupResponse } from "@raftka/protocol";
import type { JoinGroupResult } from "../../group/classic-group.js";
import type { GroupCoordinator } from "../../group/group-coordinator.js";
import type { ApiHandler, RequestContext } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";
import { clientHostOf } from "../group-common.js";

/**
 * JoinGroup v0-v9. The answer usually waits for the rebalance to complete (the request is parked in the
 * coordinator). v4+ dynamic members get MEMBER_ID_REQUIRED first (KIP-394), v5+ carry group.instance.id
 * (KIP-345), v9 tells a rejoining static leader to skip the assignment (KIP-814).
 */
export function joinGroupHandler(
  services: BrokerServices,
  coordinator: GroupCoordinator,
): ApiHandler<typeof ApiKey.JoinGroup> {
  return {
    apiKey: ApiKey.JoinGroup,
    minVersion: 0,
    maxVersion: 9,
    handle: (request, context) => handleJoinGroup(services, coordinator, request, context),
  };
}

function handleJoinGroup(
  services: BrokerServices,
  coordinator: GroupCoordinator,
  request: JoinGroupRequest,
  context: RequestContext,
): Promise<JoinGroupResponse> {
  const version = context.apiVersion;
  const groupInstanceId = version >= 5 ? (request.groupInstanceId ?? null) : null;
  return new Promise<JoinGroupResult>((resolve) => {
    coordinator.core.joinGroup(
      {
        groupId: request.groupId,
        memberId: request.memberId,
        groupInstanceId,
        requireKnownMemberId: version >= 4 && groupInstanceId === null,
        supportSkippingAssignment: version >= 9,
        clientId: context.clientId ?? "",
        clientHost: clientHostOf(context),
        // v0 has no rebalance timeout: Kafka uses the session timeout for both.
        rebalanceTimeoutMs:
          version === 0 ? request.sessionTimeoutMs : (request.rebalanceTimeoutMs ?? request.sessionTimeoutMs),
        sessionTimeoutMs: request.sessionTimeoutMs,
        protocolType: request.protocolType,
        protocols: request.protocols.map((protocol) => ({
          name: protocol.name,
          // The request frame is freed after the response; the group keeps the metadata much longer.
          metadata: Buffer.from(protocol.metadata),
        })),
        reason: request.reason ?? null,
      },
      services.now(),
      resolve,
    );
  }).then((result) => ({
    throttleTimeMs: 0,
    errorCode: result.errorCode,
    generationId: result.generationId,
    protocolType: result.protocolType,
    // Before v7 the protocol name is not nullable.
    protocolName: version >= 7 ? result.protocolName : (result.protocolName ?? ""),
    leader: result.leader,
    skipAssignment: result.skipAssignment,
    memberId: result.memberId,
    members: result.members.map((member) => ({
      memberId: member.memberId,
      groupInstanceId: member.groupInstanceId,
      metadata: member.metadata,
    })),
  }));
}
