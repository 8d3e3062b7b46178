import { ErrorCode, errorInfo, errorName, isRetriable } from "@raftka/protocol";
import { OperationFailedError } from "../errors.js";

/** What an operator can do about the Kafka errors the CLI's commands commonly meet. */
const hints: Partial<Record<number, string>> = {
  [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]:
    "check the name with `raftka topic list`, or create it with `raftka topic create`",
  [ErrorCode.TOPIC_ALREADY_EXISTS]: "pick another name, or pass --if-not-exists to accept the existing topic",
  [ErrorCode.INVALID_TOPIC_EXCEPTION]: "topic names are 1-249 characters of a-z, A-Z, 0-9, '.', '_' and '-'",
  [ErrorCode.INVALID_PARTITIONS]: "give --partitions a number of at least 1",
  [ErrorCode.INVALID_REPLICATION_FACTOR]: "give --replicas a number no larger than the number of brokers",
  [ErrorCode.INVALID_CONFIG]: "see docs/configuration.md for the topic settings and their allowed values",
  [ErrorCode.TOPIC_DELETION_DISABLED]:
    "the broker runs with delete.topic.enable=false; enable it to delete topics",
  [ErrorCode.GROUP_ID_NOT_FOUND]: "check the name with `raftka group list`",
  [ErrorCode.NON_EMPTY_GROUP]: "stop the group's consumers first; `raftka group describe` shows them",
  [ErrorCode.UNKNOWN_MEMBER_ID]: "stop the group's consumers first; `raftka group describe` shows them",
  [ErrorCode.COORDINATOR_LOAD_IN_PROGRESS]: "the broker is still loading group state; retry in a few seconds",
  [ErrorCode.COORDINATOR_NOT_AVAILABLE]: "the group coordinator is not available yet; retry in a few seconds",
  [ErrorCode.NOT_COORDINATOR]: "the coordinator moved; retry",
  [ErrorCode.NOT_ENOUGH_REPLICAS]: "too few replicas are in sync for acks=all; check `raftka cluster health`",
  [ErrorCode.MESSAGE_TOO_LARGE]:
    "the record batch exceeds max.message.bytes; send smaller records or raise the topic's max.message.bytes",
  [ErrorCode.RECORD_LIST_TOO_LARGE]:
    "the record batch is larger than the topic's segment.bytes; send smaller records or raise the topic's segment.bytes",
  [ErrorCode.KAFKA_STORAGE_ERROR]:
    "the broker could not use its disk for this partition; its log and `raftka cluster health` say why",
  [ErrorCode.OFFSET_OUT_OF_RANGE]:
    "the offset is outside the partition's log; `raftka topic describe` shows its start and end",
  [ErrorCode.POLICY_VIOLATION]: "the broker's policy refused it; the message above says which rule",
  [ErrorCode.REQUEST_TIMED_OUT]: "the broker did not finish in time; check `raftka cluster health` and retry",
  [ErrorCode.UNSUPPORTED_VERSION]:
    "this raftka CLI and the broker disagree on a protocol version; use matching versions",
};

/**
 * Errors with several causes, where the hint names one: given only when the broker said nothing, since its
 * message names the actual one (an internal topic is not a badly named one; 10,001 partitions are not 0).
 */
const hintsWithoutBrokerMessage = new Set<number>([
  ErrorCode.INVALID_TOPIC_EXCEPTION,
  ErrorCode.INVALID_PARTITIONS,
  ErrorCode.MESSAGE_TOO_LARGE,
  ErrorCode.RECORD_LIST_TOO_LARGE,
  ErrorCode.KAFKA_STORAGE_ERROR,
  // The broker's message names the key and what is allowed, or where every topic config is listed.
  ErrorCode.INVALID_CONFIG,
]);

/** `UNKNOWN_TOPIC_OR_PARTITION: <broker's message or Kafka's text>; <what to do next>`. */
export function describeKafkaError(code: number, brokerMessage?: string | null): string {
  const text = brokerMessage || errorInfo(code)?.message || "unknown error code";
  const hint = brokerMessage && hintsWithoutBrokerMessage.has(code) ? undefined : hints[code];
  // Kafka's own texts end in a full stop ("The group is not empty."), which a hint after "; " doubles.
  return hint ? `${errorName(code)}: ${text.replace(/\.$/, "")}; ${hint}` : `${errorName(code)}: ${text}`;
}

/** A Kafka error code answered by the broker, with the message an operator reads. */
export class KafkaOperationError extends OperationFailedError {
  override readonly name = "KafkaOperationError";
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Throws a KafkaOperationError for a non-zero error code, prefixed with what was being done. */
export function checkKafkaError(
  code: number | undefined,
  context: string,
  brokerMessage?: string | null,
): void {
  if (code === undefined || code === ErrorCode.NONE) return;
  throw new KafkaOperationError(code, `${context}: ${describeKafkaError(code, brokerMessage)}`);
}

/**
 * Runs an idempotent operation again while it fails with a retriable Kafka error (a coordinator still
 * loading, a leader moving), until `timeoutMs` has passed; then the last error stands.
 */
export async function retryRetriable<T>(operation: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (!(error instanceof KafkaOperationError) || !isRetriable(error.code) || Date.now() >= deadline)
        throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * attempt)));
    }
  }
}
