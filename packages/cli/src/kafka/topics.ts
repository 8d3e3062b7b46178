import { ApiKey, ErrorCode, type MetadataResponse, ZERO_UUID } from "@raftka/protocol";
import { OperationFailedError } from "../errors.js";
import type { KafkaClient } from "./client.js";
import { checkKafkaError, describeKafkaError } from "./kafka-errors.js";

export interface PartitionInfo {
  readonly partition: number;
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  readonly offlineReplicas: readonly number[];
  readonly errorCode: number;
}

export interface TopicInfo {
  readonly name: string;
  readonly topicId: string | null;
  readonly internal: boolean;
  readonly errorCode: number;
  /** Sorted by partition number. */
  readonly partitions: readonly PartitionInfo[];
}

/** ListOffsets' special timestamps (Kafka's names). */
export const EARLIEST_TIMESTAMP = -2n;
export const LATEST_TIMESTAMP = -1n;

export function topicsFromMetadata(metadata: MetadataResponse): TopicInfo[] {
  return metadata.topics.map((topic) => ({
    name: topic.name ?? "",
    topicId: topic.topicId === undefined || topic.topicId === ZERO_UUID ? null : topic.topicId,
    internal: topic.isInternal ?? false,
    errorCode: topic.errorCode,
    partitions: topic.partitions
      .map((partition) => ({
        partition: partition.partitionIndex,
        leader: partition.leaderId,
        leaderEpoch: partition.leaderEpoch ?? -1,
        replicas: partition.replicaNodes,
        isr: partition.isrNodes,
        offlineReplicas: partition.offlineReplicas ?? [],
        errorCode: partition.errorCode,
      }))
      .sort((a, b) => a.partition - b.partition),
  }));
}

/** One topic's metadata; UNKNOWN_TOPIC_OR_PARTITION and other topic errors become OperationFailedError. */
export async function fetchTopic(client: KafkaClient, name: string): Promise<TopicInfo> {
  const [topic] = topicsFromMetadata(await client.metadata([name]));
  if (!topic) throw new OperationFailedError(`the broker returned no metadata for topic "${name}"; retry`);
  checkKafkaError(topic.errorCode, `topic "${name}"`);
  return topic;
}

/** Whether metadata says the topic does not exist (as opposed to another failure). */
export function isUnknownTopic(error: unknown): boolean {
  return error instanceof OperationFailedError && error.message.includes("UNKNOWN_TOPIC_OR_PARTITION");
}

/** Groups partitions by their leader's node id; partitions without a leader are an error. */
export function byLeader<T extends { partition: number }>(
  topic: TopicInfo,
  items: readonly T[],
): Map<number, T[]> {
  const leaders = new Map(topic.partitions.map((partition) => [partition.partition, partition.leader]));
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const leader = leaders.get(item.partition);
    if (leader === undefined) {
      throw new OperationFailedError(
        `topic "${topic.name}" has no partition ${item.partition} (it has ${topic.partitions.length}); pick one from 0 to ${topic.partitions.length - 1}`,
      );
    }
    if (leader < 0) {
      throw new OperationFailedError(
        `partition ${topic.name}/${item.partition} has no leader right now; retry in a few seconds, and check \`raftka cluster health\` if it lasts`,
      );
    }
    const list = groups.get(leader) ?? [];
    list.push(item);
    groups.set(leader, list);
  }
  return groups;
}

/**
 * Offsets of partitions at `timestamp` (EARLIEST_TIMESTAMP, LATEST_TIMESTAMP or milliseconds since
 * the epoch), asked of each partition's leader. A timestamp after the last record gives -1, as Kafka does.
 */
export async function listOffsets(
  client: KafkaClient,
  topic: TopicInfo,
  partitions: readonly number[],
  timestamp: bigint,
): Promise<Map<number, bigint>> {
  const offsets = new Map<number, bigint>();
  const groups = byLeader(
    topic,
    partitions.map((partition) => ({ partition })),
  );
  await Promise.all(
    [...groups].map(async ([leader, items]) => {
      const response = await client.send(
        ApiKey.ListOffsets,
        {
          replicaId: -1,
          isolationLevel: 0,
          topics: [
            {
              name: topic.name,
              partitions: items.map((item) => ({
                partitionIndex: item.partition,
                timestamp,
                currentLeaderEpoch: -1,
                maxNumOffsets: 1,
              })),
            },
          ],
        },
        leader,
      );
      for (const answer of response.topics.flatMap((entry) => entry.partitions)) {
        if (answer.errorCode !== ErrorCode.NONE) {
          throw new OperationFailedError(
            `listing offsets of ${topic.name}/${answer.partitionIndex}: ${describeKafkaError(answer.errorCode)}`,
          );
        }
        offsets.set(answer.partitionIndex, answer.offset ?? answer.oldStyleOffsets?.[0] ?? -1n);
      }
    }),
  );
  return offsets;
}
