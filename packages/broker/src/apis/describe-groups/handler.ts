import { ApiKey, type DescribeGroupsRequest, type DescribeGroupsResponse } from "@raftka/protocol";
import type { GroupCoordinator } from "../../group/group-coordinator.js";
import type { ApiHandler } from "../../server/api-registry.js";
import { UNREQUESTED_OPERATIONS } from "../common.js";

// Kafka's AclOperation codes valid for a group: READ 3, DELETE 6, DESCRIBE 8 (no authorizer: all allowed).
const GROUP_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8);

/**
 * DescribeGroups v0-v5: state, protocol and members; member metadata and assignments only for a Stable
 * group (as Kafka); an unknown group is reported as Dead without an error.
 */
export function describeGroupsHandler(
  coordinator: GroupCoordinator,
): ApiHandler<typeof ApiKey.DescribeGroups> {
  return {
    apiKey: ApiKey.DescribeGroups,
    minVersion: 0,
    maxVersion: 5,
    handle: (request: DescribeGroupsRequest): DescribeGroupsResponse => ({
      throttleTimeMs: 0,
      groups: request.groups.map((groupId) => {
        const description = coordinator.core.describeGroup(groupId);
        return {
          errorCode: description.errorCode,
          groupId,
          groupState: description.state,
          protocolType: description.protocolType,
          protocolData: description.protocolName,
          members: description.members.map((member) => ({
            memberId: member.memberId,
            groupInstanceId: member.groupInstanceId,
            clientId: member.clientId,
            clientHost: member.clientHost,
            memberMetadata: member.metadata,
            memberAssignment: member.assignment,
          })),
          authorizedOperations: request.includeAuthorizedOperations
            ? GROUP_OPERATIONS
            : UNREQUESTED_OPERATIONS,
        };
      }),
    }),
  };
}
