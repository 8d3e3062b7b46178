import { ApiKey, type DeleteGroupsRequest, type DeleteGroupsResponse } from "@raftka/protocol";
import type { GroupCoordinator } from "../../group/group-coordinator.js";
import type { ApiHandler } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";

/** DeleteGroups v0-v2: deletes empty groups with their offsets (NON_EMPTY_GROUP while members remain). */
export function deleteGroupsHandler(
  services: BrokerServices,
  coordinator: GroupCoordinator,
): ApiHandler<typeof ApiKey.DeleteGroups> {
  return {
    apiKey: ApiKey.DeleteGroups,
    minVersion: 0,
    maxVersion: 2,
    handle: (request: DeleteGroupsRequest): Promise<DeleteGroupsResponse> =>
      new Promise((resolve) =>
        coordinator.core.deleteGroups(request.groupsNames, services.now(), (results) =>
          resolve({ throttleTimeMs: 0, results }),
        ),
      ),
  };
}
