import { ApiKey } from "@raftka/protocol";
import type { KafkaClient } from "./client.js";
import { checkKafkaError, retryRetriable } from "./kafka-errors.js";

export interface CommittedOffset {
  readonly topic: string;
  readonly partition: number;
  /** -1 when the group has committed nothing for the partition. */
  readonly offset: bigint;
  readonly metadata: string | null;
}

/** A group's committed offsets: for `topics` (name → partitions), or every partition it committed (null). */
export async function fetchCommittedOffsets(
  client: KafkaClient,
  coordinator: number,
  group: string,
  topics: ReadonlyMap<string, readonly number[]> | null,
): Promise<CommittedOffset[]> {
  return retryRetriable(() => fetchOnce(client, coordinator, group, topics), client.requestTimeoutMs);
}

async function fetchOnce(
  client: KafkaClient,
  coordinator: number,
  group: string,
  topics: ReadonlyMap<string, readonly number[]> | null,
): Promise<CommittedOffset[]> {
  const response = await client.send(
    ApiKey.OffsetFetch,
    {
      groupId: group,
      topics:
        topics === null
          ? null
          : [...topics].map(([name, partitionIndexes]) => ({
              name,
              partitionIndexes: [...partitionIndexes],
            })),
      requireStable: false,
    },
    coordinator,
  );
  checkKafkaError(response.errorCode, `fetching the committed offsets of group "${group}"`);
  const offsets: CommittedOffset[] = [];
  for (const topic of response.topics ?? []) {
    for (const partition of topic.partitions) {
      checkKafkaError(
        partition.errorCode,
        `fetching the committed offset of group "${group}" for ${topic.name}/${partition.partitionIndex}`,
      );
      offsets.push({
        topic: topic.name,
        partition: partition.partitionIndex,
        offset: partition.committedOffset,
        metadata: partition.metadata,
      });
    }
  }
  return offsets.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
}

/**
 * Commits offsets as a simple (non-member) consumer: generation -1 and no member id, which Kafka
 * accepts only while the group has no active members.
 */
export async function commitOffsets(
  client: KafkaClient,
  coordinator: number,
  group: string,
  offsets: readonly { topic: string; partition: number; offset: bigint }[],
): Promise<void> {
  if (offsets.length === 0) return;
  await retryRetriable(() => commitOnce(client, coordinator, group, offsets), client.requestTimeoutMs);
}

async function commitOnce(
  client: KafkaClient,
  coordinator: number,
  group: string,
  offsets: readonly { topic: string; partition: number; offset: bigint }[],
): Promise<void> {
  const topics = new Map<string, { partitionIndex: number; committedOffset: bigint }[]>();
  for (const entry of offsets) {
    const list = topics.get(entry.topic) ?? [];
    list.push({ partitionIndex: entry.partition, committedOffset: entry.offset });
    topics.set(entry.topic, list);
  }
  const response = await client.send(
    ApiKey.OffsetCommit,
    {
      groupId: group,
      generationIdOrMemberEpoch: -1,
      memberId: "",
      groupInstanceId: null,
      retentionTimeMs: -1n,
      topics: [...topics].map(([name, partitions]) => ({
        name,
        partitions: partitions.map((partition) => ({
          ...partition,
          committedLeaderEpoch: -1,
          commitTimestamp: -1n,
          committedMetadata: "",
        })),
      })),
    },
    coordinator,
  );
  for (const topic of response.topics) {
    for (const partition of topic.partitions) {
      checkKafkaError(
        partition.errorCode,
        `committing offsets of group "${group}" for ${topic.name}/${partition.partitionIndex}`,
      );
    }
  }
}
