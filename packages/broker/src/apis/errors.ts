import { ErrorCode, KafkaError } from "@raftka/protocol";
import { StorageError } from "@raftka/storage";

/** A failure while serving one partition, as the Kafka error code and message the client gets. */
export interface PartitionFailure {
  readonly errorCode: number;
  readonly message: string;
}

/**
 * Maps an error thrown by storage or a replicated log to the Kafka answer. Anything unexpected becomes
 * UNKNOWN_SERVER_ERROR and is reported through `onUnexpected` so it lands in the log.
 */
export function toPartitionFailure(error: unknown, onUnexpected: (error: unknown) => void): PartitionFailure {
  if (error instanceof StorageError) {
    const code = (ErrorCode as Record<string, number>)[error.code] ?? ErrorCode.UNKNOWN_SERVER_ERROR;
    if (code === ErrorCode.UNKNOWN_SERVER_ERROR || code === ErrorCode.KAFKA_STORAGE_ERROR)
      onUnexpected(error);
    return { errorCode: code, message: error.message };
  }
  if (error instanceof KafkaError) return { errorCode: error.code, message: error.message };
  onUnexpected(error);
  return {
    errorCode: ErrorCode.UNKNOWN_SERVER_ERROR,
    message: `the broker failed to serve this partition (${(error as Error)?.message ?? String(error)}); retry, and check the broker log if it persists`,
  };
}
