import { ApiKey, type ListGroupsRequest, type ListGroupsResponse } from "@raftka/protocol";
import type { GroupCoordinator } from "../../group/group-coordinator.js";
import type { ApiHandler } from "../../server/api-registry.js";

/** ListGroups v0-v4: the groups this node coordinates, filtered by state from v4 (KIP-518). */
export function listGroupsHandler(coordinator: GroupCoordinator): ApiHandler<typeof ApiKey.ListGroups> {
  return {
    apiKey: ApiKey.ListGroups,
    minVersion: 0,
    maxVersion: 4,
    handle: (request: ListGroupsRequest): ListGroupsResponse => {
      const result = coordinator.core.listGroups(request.statesFilter ?? []);
      return {
        throttleTimeMs: 0,
        errorCode: result.errorCode,
        groups: result.groups.map((group) => ({
          groupId: group.groupId,
          protocolType: group.protocolType,
          groupState: group.state,
        })),
      };
    },
  };
}
