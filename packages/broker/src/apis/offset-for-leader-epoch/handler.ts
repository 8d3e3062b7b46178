import { ApiKey, ErrorCode } from "@raftka/protocol";
import type { ApiHandler } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";

/**
 * OffsetForLeaderEpoch (KIP-101/320): for each partition, the largest epoch at or below the requested one
 * and the offset where it ended, so a client can tell whether the log it read was truncated.
 */
export function offsetForLeaderEpochHandler(
  services: BrokerServices,
): ApiHandler<typeof ApiKey.OffsetForLeaderEpoch> {
  return {
    apiKey: ApiKey.OffsetForLeaderEpoch,
    minVersion: 0,
    maxVersion: 4,
    handle: (request) => ({
      throttleTimeMs: 0,
      topics: request.topics.map((topic) => ({
        topic: topic.topic,
        partitions: topic.partitions.map((partition) => {
          const respond = (errorCode: number, leaderEpoch = -1, endOffset = -1) => ({
            errorCode,
            partition: partition.partition,
            leaderEpoch,
            endOffset: BigInt(endOffset),
          });
          const log = services.partitions.partition(topic.topic, partition.partition);
          if (!log) return respond(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
          if (!log.isLeader) return respond(ErrorCode.NOT_LEADER_OR_FOLLOWER);
          const current = partition.currentLeaderEpoch ?? -1;
          if (current >= 0 && current !== log.leaderEpoch) {
            return respond(
              current < log.leaderEpoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.UNKNOWN_LEADER_EPOCH,
            );
          }
          const { epoch, endOffset } = log.endOffsetForEpoch(partition.leaderEpoch);
          return respond(ErrorCode.NONE, epoch, endOffset);
        }),
      })),
    }),
  };
}
