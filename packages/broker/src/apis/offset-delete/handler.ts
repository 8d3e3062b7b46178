import { ApiKey, ErrorCode, type OffsetDeleteRequest, type OffsetDeleteResponse } from "@raftka/protocol";
import type { GroupCoordinator } from "../../group/group-coordinator.js";
import type { PartitionError } from "../../group/group-coordinator-core.js";
import type { ApiHandler } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";

/**
 * OffsetDelete v0: removes committed offsets of an empty group, or of topics a live consumer group no
 * longer subscribes to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).
 */
export function offsetDeleteHandler(
  services: BrokerServices,
  coordinator: GroupCoordinator,
): ApiHandler<typeof ApiKey.OffsetDelete> {
  return {
    apiKey: ApiKey.OffsetDelete,
    minVersion: 0,
    maxVersion: 0,
    handle: (request) => handleOffsetDelete(services, coordinator, request),
  };
}

async function handleOffsetDelete(
  services: BrokerServices,
  coordinator: GroupCoordinator,
  request: OffsetDeleteRequest,
): Promise<OffsetDeleteResponse> {
  const image = services.controller.image;
  const errors = new Map<string, number>();
  const known: { topic: string; partition: number }[] = [];
  for (const topic of request.topics) {
    const partitionCount = image.topic(topic.name)?.partitions.length ?? 0;
    for (const { partitionIndex } of topic.partitions) {
      if (partitionIndex < 0 || partitionIndex >= partitionCount) {
        errors.set(key(topic.name, partitionIndex), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
      } else {
        known.push({ topic: topic.name, partition: partitionIndex });
      }
    }
  }
  const result = await new Promise<{ errorCode: number; partitions: PartitionError[] }>((resolve) =>
    coordinator.core.deleteOffsets(request.groupId, known, resolve),
  );
  if (result.errorCode !== ErrorCode.NONE)
    return { errorCode: result.errorCode, throttleTimeMs: 0, topics: [] };
  for (const entry of result.partitions) errors.set(key(entry.topic, entry.partition), entry.errorCode);
  return {
    errorCode: ErrorCode.NONE,
    throttleTimeMs: 0,
    topics: request.topics.map((topic) => ({
      name: topic.name,
      partitions: topic.partitions.map(({ partitionIndex }) => ({
        partitionIndex,
        errorCode: errors.get(key(topic.name, partitionIndex)) ?? ErrorCode.NONE,
      })),
    })),
  };
}

const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;
