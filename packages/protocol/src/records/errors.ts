import { ErrorCode, KafkaError } from "../errors/error-codes.js";

/**
 * Bytes that are not a valid record batch or message set. `code` is the Kafka error to answer with:
 * CORRUPT_MESSAGE (bad CRC, lengths, framing), INVALID_RECORD (well-formed but breaks a rule),
 * UNSUPPORTED_COMPRESSION_TYPE or UNSUPPORTED_VERSION (legacy formats where v2 is required).
 */
export class RecordBatchError extends KafkaError {
  override readonly name: string = "RecordBatchError";
  /** Byte position of the offending batch inside the records blob that was being read. */
  readonly position: number;

  constructor(code: number, detail: string, position = 0, options?: { cause?: unknown }) {
    super(code, detail, options);
    this.position = position;
  }
}

export const corrupt = (detail: string, position = 0, cause?: unknown): RecordBatchError =>
  new RecordBatchError(
    ErrorCode.CORRUPT_MESSAGE,
    detail,
    position,
    cause === undefined ? undefined : { cause },
  );
