// Errors carry the Kafka error name in `code` so the broker can map them to wire error codes without
// string matching; messages say what the caller should do next.

export type StorageErrorCode =
  | "OFFSET_OUT_OF_RANGE"
  | "CORRUPT_MESSAGE"
  | "INVALID_RECORD"
  | "MESSAGE_TOO_LARGE"
  | "RECORD_LIST_TOO_LARGE"
  | "INVALID_CONFIG"
  | "KAFKA_STORAGE_ERROR"
  | "INVALID_REQUEST"
  | "UNKNOWN_SERVER_ERROR";

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A read or truncation asked for an offset the log does not hold (below the log start offset). */
export class OffsetOutOfRangeError extends StorageError {
  constructor(message: string) {
    super("OFFSET_OUT_OF_RANGE", message);
  }
}

/** Bytes that are not a well-formed v2 record batch (bad length, magic or CRC). */
export class CorruptRecordError extends StorageError {
  constructor(message: string) {
    super("CORRUPT_MESSAGE", message);
  }
}

/** Well-formed batches that the log cannot accept as they are (offset gap, stale leader epoch). */
export class InvalidRecordError extends StorageError {
  constructor(message: string) {
    super("INVALID_RECORD", message);
  }
}

/**
 * A batch larger than a segment can ever hold. Kafka answers RECORD_LIST_TOO_LARGE ("larger than the
 * configured segment size"); MESSAGE_TOO_LARGE is for max.message.bytes, which the broker checks first.
 */
export class RecordBatchTooLargeError extends StorageError {
  constructor(message: string) {
    super("RECORD_LIST_TOO_LARGE", message);
  }
}

/** A configuration value out of range or of the wrong type. */
export class InvalidConfigError extends StorageError {
  constructor(message: string) {
    super("INVALID_CONFIG", message);
  }
}

/** The disk failed under us (write, fsync, open). The log refuses further writes until it is reopened. */
export class KafkaStorageError extends StorageError {
  constructor(message: string, cause?: unknown) {
    super("KAFKA_STORAGE_ERROR", message, { cause });
  }
}

/** The caller broke the API contract (e.g. used a closed log). */
export class InvalidRequestError extends StorageError {
  constructor(message: string) {
    super("INVALID_REQUEST", message);
  }
}

/** An internal invariant did not hold: continuing could corrupt data, so we stop. */
export class InvariantViolation extends Error {
  constructor(message: string) {
    super(`storage invariant violated: ${message} (this is a bug in @raftka/storage; please report it)`);
    this.name = "InvariantViolation";
  }
}

export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantViolation(typeof message === "string" ? message : message());
}

export function describeCause(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Node's own messages already start with the code ("ENOSPC: no space left on device, write").
    return code && !error.message.startsWith(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
