import {
  ApiKey,
  ErrorCode,
  type OffsetCommitRequest,
  type OffsetCommitResponse,
  type OffsetCommitResponsePartition,
} from "@raftka/protocol";
import type { GroupCoordinator } from "../../group/group-coordinator.js";
import type { OffsetCommitEntry, PartitionError } from "../../group/group-coordinator-core.js";
import type { ApiHandler, RequestContext } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";

/**
 * OffsetCommit v0-v8. Answered only once the commit is committed in `__consumer_offsets` (acks=all), so
 * an acknowledged commit survives a crash. Partitions of topics that do not exist get
 * UNKNOWN_TOPIC_OR_PARTITION, as in Kafka. v0 commits are stored like a non-member's (generation -1).
 */
export function offsetCommitHandler(
  services: BrokerServices,
  coordinator: GroupCoordinator,
): ApiHandler<typeof ApiKey.OffsetCommit> {
  return {
    apiKey: ApiKey.OffsetCommit,
    minVersion: 0,
    maxVersion: 8,
    handle: (request, context) => handleOffsetCommit(services, coordinator, request, context),
  };
}

async function handleOffsetCommit(
  services: BrokerServices,
  coordinator: GroupCoordinator,
  request: OffsetCommitRequest,
  context: RequestContext,
): Promise<OffsetCommitResponse> {
  const version = context.apiVersion;
  const image = services.controller.image;
  const results = new Map<string, number>();
  const entries: OffsetCommitEntry[] = [];
  for (const topic of request.topics) {
    const partitionCount = image.topic(topic.name)?.partitions.length ?? 0;
    for (const partition of topic.partitions) {
      if (partition.partitionIndex < 0 || partition.partitionIndex >= partitionCount) {
        results.set(resultKey(topic.name, partition.partitionIndex), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
        continue;
      }
      entries.push({
        topic: topic.name,
        partition: partition.partitionIndex,
        offset: partition.committedOffset,
        leaderEpoch: version >= 6 ? (partition.committedLeaderEpoch ?? -1) : -1,
        metadata: partition.committedMetadata,
        commitTimestamp: version === 1 ? Number(partition.commitTimestamp ?? -1n) : -1,
      });
    }
  }
  if (entries.length > 0) {
    const committed = await new Promise<PartitionError[]>((resolve) =>
      coordinator.core.commitOffsets(
        {
          groupId: request.groupId,
          generationId: version >= 1 ? (request.generationIdOrMemberEpoch ?? -1) : -1,
          memberId: version >= 1 ? (request.memberId ?? "") : "",
          groupInstanceId: version >= 7 ? (request.groupInstanceId ?? null) : null,
          retentionTimeMs: version >= 2 && version <= 4 ? Number(request.retentionTimeMs ?? -1n) : -1,
          offsets: entries,
        },
        services.now(),
        resolve,
      ),
    );
    for (const result of committed) results.set(resultKey(result.topic, result.partition), result.errorCode);
  }
  return {
    throttleTimeMs: 0,
    topics: request.topics.map((topic) => ({
      name: topic.name,
      partitions: topic.partitions.map(
        (partition): OffsetCommitResponsePartition => ({
          partitionIndex: partition.partitionIndex,
          errorCode:
            results.get(resultKey(topic.name, partition.partitionIndex)) ?? ErrorCode.UNKNOWN_SERVER_ERROR,
        }),
      ),
    })),
  };
}

const resultKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;
