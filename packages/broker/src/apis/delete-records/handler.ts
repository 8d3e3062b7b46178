import { ApiKey, type DeleteRecordsRequest, type DeleteRecordsResponse, ErrorCode } from "@raftka/protocol";
import type { ApiHandler } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";
import { toPartitionFailure } from "../errors.js";

/** DeleteRecords: moves each partition's log start offset (-1 = the high watermark); records below it are gone. */
export function deleteRecordsHandler(services: BrokerServices): ApiHandler<typeof ApiKey.DeleteRecords> {
  return {
    apiKey: ApiKey.DeleteRecords,
    minVersion: 0,
    maxVersion: 2,
    handle: (request) => handleDeleteRecords(services, request),
  };
}

async function handleDeleteRecords(
  services: BrokerServices,
  request: DeleteRecordsRequest,
): Promise<DeleteRecordsResponse> {
  const topics = await Promise.all(
    request.topics.map(async (topic) => ({
      name: topic.name,
      partitions: await Promise.all(
        topic.partitions.map(async (partition) => {
          const respond = (errorCode: number, lowWatermark = -1) => ({
            partitionIndex: partition.partitionIndex,
            lowWatermark: BigInt(lowWatermark),
            errorCode,
          });
          const hosted = services.partitions.topic(topic.name);
          const log = hosted?.partitions[partition.partitionIndex];
          if (!hosted || !log) return respond(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
          if (!log.isLeader) return respond(ErrorCode.NOT_LEADER_OR_FOLLOWER);
          // Kafka: records of topics that are only compacted are never deleted by offset.
          if (!hosted.settings.cleanupPolicy.includes("delete")) return respond(ErrorCode.POLICY_VIOLATION);
          const offset = partition.offset === -1n ? log.highWatermark : Number(partition.offset);
          if (offset < 0 || offset > log.highWatermark) return respond(ErrorCode.OFFSET_OUT_OF_RANGE);
          try {
            const logStartOffset = await log.deleteRecordsBefore(offset);
            services.logger.info(
              { topic: topic.name, partition: partition.partitionIndex, logStartOffset },
              "records deleted (DeleteRecords)",
            );
            return respond(ErrorCode.NONE, logStartOffset);
          } catch (error) {
            const failure = toPartitionFailure(error, (unexpected) =>
              services.logger.error({ err: unexpected, topic: topic.name }, "DeleteRecords failed"),
            );
            return respond(failure.errorCode);
          }
        }),
      ),
    })),
  );
  return { throttleTimeMs: 0, topics };
}
