import {
  ApiKey,
  ErrorCode,
  type OffsetFetchRequest,
  type OffsetFetchResponse,
  type OffsetFetchResponsePartition,
} from "@raftka/protocol";
import type { GroupCoordinator } from "../../group/group-coordinator.js";
import type { FetchedOffset } from "../../group/group-coordinator-core.js";
import type { ApiHandler, RequestContext } from "../../server/api-registry.js";

/**
 * OffsetFetch v0-v8: one group (v0-v7, all partitions with null topics from v2) or several groups at once
 * (v8+). v7+ `requireStable` answers UNSTABLE_OFFSET_COMMIT for partitions with a commit in flight.
 */
export function offsetFetchHandler(coordinator: GroupCoordinator): ApiHandler<typeof ApiKey.OffsetFetch> {
  return {
    apiKey: ApiKey.OffsetFetch,
    minVersion: 0,
    maxVersion: 8,
    handle: (request, context) => handleOffsetFetch(coordinator, request, context),
  };
}

type TopicsRequest = readonly { name: string; partitionIndexes: number[] }[] | null;

function fetchGroup(
  coordinator: GroupCoordinator,
  groupId: string,
  topics: TopicsRequest,
  requireStable: boolean,
) {
  const partitions =
    topics === null
      ? null
      : topics.flatMap((topic) =>
          topic.partitionIndexes.map((partition) => ({ topic: topic.name, partition })),
        );
  return coordinator.core.fetchOffsets(groupId, partitions, requireStable);
}

/** Groups the fetched offsets by topic, keeping the order topics first appear in. */
function byTopic(offsets: readonly FetchedOffset[]): { name: string; partitions: FetchedOffset[] }[] {
  const topics = new Map<string, FetchedOffset[]>();
  for (const offset of offsets) {
    let list = topics.get(offset.topic);
    if (list === undefined) {
      list = [];
      topics.set(offset.topic, list);
    }
    list.push(offset);
  }
  return [...topics].map(([name, partitions]) => ({ name, partitions }));
}

const toPartition = (offset: FetchedOffset): OffsetFetchResponsePartition => ({
  partitionIndex: offset.partition,
  committedOffset: offset.offset,
  committedLeaderEpoch: offset.leaderEpoch,
  metadata: offset.metadata,
  errorCode: offset.errorCode,
});

function handleOffsetFetch(
  coordinator: GroupCoordinator,
  request: OffsetFetchRequest,
  context: RequestContext,
): OffsetFetchResponse {
  const version = context.apiVersion;
  const requireStable = version >= 7 && (request.requireStable ?? false);
  if (version >= 8) {
    return {
      throttleTimeMs: 0,
      groups: (request.groups ?? []).map((group) => {
        const result = fetchGroup(coordinator, group.groupId, group.topics, requireStable);
        return {
          groupId: group.groupId,
          errorCode: result.errorCode,
          topics: byTopic(result.offsets).map((topic) => ({
            name: topic.name,
            partitions: topic.partitions.map(toPartition) as Required<OffsetFetchResponsePartition>[],
          })),
        };
      }),
    };
  }
  const topics = version >= 2 ? (request.topics ?? null) : (request.topics ?? []);
  const result = fetchGroup(coordinator, request.groupId ?? "", topics, requireStable);
  if (version < 2 && result.errorCode !== ErrorCode.NONE) {
    // No top-level error before v2: each requested partition carries the group's error.
    return {
      throttleTimeMs: 0,
      topics: (topics ?? []).map((topic) => ({
        name: topic.name,
        partitions: topic.partitionIndexes.map((partitionIndex) => ({
          partitionIndex,
          committedOffset: -1n,
          committedLeaderEpoch: -1,
          metadata: "",
          errorCode: result.errorCode,
        })),
      })),
    };
  }
  return {
    throttleTimeMs: 0,
    errorCode: result.errorCode,
    topics: byTopic(result.offsets).map((topic) => ({
      name: topic.name,
      partitions: topic.partitions.map(toPartition),
    })),
  };
}
