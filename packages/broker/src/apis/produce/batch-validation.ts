import { LONG_MAX } from "@raftka/monitoring";
import {
  CompressionType,
  convertLegacyMessageSet,
  DEFAULT_MAX_DECOMPRESSED_BYTES,
  ErrorCode,
  type KafkaRecord,
  openRecordBatch,
  type ProduceResponseBatchIndexAndErrorMessage,
  RecordBatchError,
  type RecordBatchHeader,
  recompressRecordBatch,
  sliceBatches,
  uncompressedRecordsProblem,
  validateRecordBatch,
} from "@raftka/protocol";
import type { TopicSettings } from "../../partitions/topic-settings.js";

/** Batches ready for the log, or the Kafka error the partition answers. */
export type PreparedRecords =
  | {
      readonly ok: true;
      /** Exactly the bytes to append (the client's, unless converted or recompressed). */
      readonly records: Buffer;
      readonly headers: readonly RecordBatchHeader[];
      readonly recordCount: number;
    }
  | {
      readonly ok: false;
      readonly errorCode: number;
      readonly message: string;
      /** The records that failed a per-record check, by index in the batch (Produce v8+ record_errors). */
      readonly recordErrors?: readonly ProduceResponseBatchIndexAndErrorMessage[];
    };

const codecByName: Record<Exclude<TopicSettings["compressionType"], "producer">, CompressionType> = {
  uncompressed: CompressionType.None,
  gzip: CompressionType.Gzip,
  snappy: CompressionType.Snappy,
  lz4: CompressionType.Lz4,
  zstd: CompressionType.Zstd,
};

const refuse = (errorCode: number, message: string): PreparedRecords => ({ ok: false, errorCode, message });

/**
 * Produce's per-partition checks, as Kafka's broker does them: framing and CRC, the record format the
 * request version allows (legacy magic 0/1 only before Produce v3, converted to v2), no client control
 * batches, batch size against max.message.bytes, keys on compacted topics, timestamps, and the topic's
 * compression.type. Reads individual records (decompressing if need be) only for a topic whose config
 * asks for a per-record check (cleanup.policy with compact, a finite message.timestamp.difference.max.ms
 * with CreateTime) or a codec other than the batch's: with the defaults, the batch is never opened.
 */
export function prepareRecords(
  records: Buffer | null,
  produceVersion: number,
  settings: TopicSettings,
  now: number,
  topicPartition: { readonly topic: string; readonly partition: number },
): PreparedRecords {
  // Not CORRUPT_MESSAGE: that is retriable, and a client would resend the same nothing forever.
  // Kafka's ProduceRequest.validateRecords answers INVALID_RECORD.
  if (records === null || records.length === 0) {
    return refuse(
      ErrorCode.INVALID_RECORD,
      `Produce requests with version ${produceVersion} must have at least one record batch per partition; the records are ${records === null ? "null" : "empty"}`,
    );
  }
  let sliced: ReturnType<typeof sliceBatches>;
  try {
    sliced = sliceBatches(records);
  } catch (error) {
    return fromError(error);
  }
  if (sliced.incompleteTailBytes > 0 || sliced.batches.length === 0) {
    return refuse(
      ErrorCode.CORRUPT_MESSAGE,
      `the records end with ${sliced.incompleteTailBytes || records.length} bytes that are not a whole batch; send whole record batches`,
    );
  }
  let bytes = records;
  const legacy = sliced.batches.some((batch) => batch.magic !== 2);
  if (produceVersion >= 3) {
    const unknownMagic = sliced.batches.find((batch) => batch.magic < 0 || batch.magic > 2);
    if (unknownMagic !== undefined) {
      // Kafka's batch iterator meets it first: "Invalid magic found in record".
      return refuse(
        ErrorCode.CORRUPT_MESSAGE,
        `record batch magic ${unknownMagic.magic} is not a Kafka message format (0, 1 or 2); the bytes are corrupt or the client is broken`,
      );
    }
    if (legacy) {
      return refuse(
        ErrorCode.INVALID_RECORD,
        `Produce v${produceVersion} requires record batches of magic 2, got a magic ${sliced.batches.find((batch) => batch.magic !== 2)!.magic} message set; use Produce v0-2 for old message formats`,
      );
    }
    if (sliced.batches.length !== 1) {
      return refuse(
        ErrorCode.INVALID_RECORD,
        `Produce v${produceVersion} allows exactly one record batch per partition, got ${sliced.batches.length}; send one batch per partition`,
      );
    }
  } else {
    if (!sliced.batches.every((batch) => batch.magic === 0 || batch.magic === 1)) {
      return refuse(
        ErrorCode.INVALID_RECORD,
        `Produce v${produceVersion} carries message sets of magic 0 or 1 only; send record batches (magic 2) with Produce v3 or later`,
      );
    }
    try {
      // Stored as v2 like everything else: fetchers always get one format.
      bytes = convertLegacyMessageSet(records, { maxDecompressedBytes: decompressedLimit(settings) });
    } catch (error) {
      return fromError(error);
    }
  }

  let header: RecordBatchHeader;
  try {
    header = validateRecordBatch(bytes, { producedByClient: true });
  } catch (error) {
    return fromError(error);
  }
  if (header.isControl) {
    return refuse(
      ErrorCode.INVALID_RECORD,
      "control batches are written by the broker only; send ordinary record batches",
    );
  }
  if (produceVersion >= 3 && header.baseOffset !== 0n) {
    // Kafka's LogValidator: a client's batch starts at 0, the broker assigns the offsets.
    return refuse(
      ErrorCode.INVALID_RECORD,
      `a produced record batch must have baseOffset 0, this one has ${header.baseOffset}; the broker assigns offsets`,
    );
  }
  if (header.compression === CompressionType.None) {
    const problem = uncompressedRecordsProblem(bytes);
    if (problem !== undefined)
      return refuse(ErrorCode.INVALID_RECORD, `${problem}; the client built a broken batch`);
  }
  if (header.compression === CompressionType.Zstd && produceVersion < 7) {
    return refuse(
      ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
      `zstd-compressed batches need Produce v7 or later, the request is v${produceVersion}; upgrade the client or use another codec`,
    );
  }
  // Checked before any record is read (Kafka's analyzeAndValidateRecords precedes its LogValidator), so an
  // oversized batch is never decompressed, as the producer sent it and, when the topic's codec changed it,
  // again as stored (Kafka's recheck after recompression): a topic codec that shrinks a batch does not
  // admit one over the limit, nor one that grows it a batch that ends up over it.
  const tooLarge = batchTooLarge(bytes, settings);
  if (tooLarge !== undefined) return tooLarge;
  const compacted = settings.cleanupPolicy.includes("compact");
  // LONG_MAX is Kafka's Long.MAX default as Raftka stores it: no bound, and no record is read for it.
  const timestampBound =
    settings.timestampType === "CreateTime" && settings.timestampDifferenceMaxMs < LONG_MAX
      ? BigInt(settings.timestampDifferenceMaxMs)
      : undefined;
  if (compacted || timestampBound !== undefined) {
    let refused: PreparedRecords | undefined;
    try {
      // Records are read one at a time (a few KB of zstd can hold tens of millions of them), within the
      // same decompressed ceiling as recompression.
      const opened = openRecordBatch(bytes, {
        verify: false,
        maxDecompressedBytes: decompressedLimit(settings),
      });
      refused = checkRecords(opened.records(), compacted, timestampBound, now, settings, topicPartition);
    } catch (error) {
      return fromError(error);
    }
    if (refused !== undefined) return refused;
    // Kafka rewrites a batch's maxTimestamp from its records; Raftka stores the client's, which time-based
    // retention and ListOffsets read, so one the records do not bear out is refused rather than kept.
    if (timestampBound !== undefined && outOfBounds(header.maxTimestamp, BigInt(now), timestampBound)) {
      return refuse(
        ErrorCode.INVALID_TIMESTAMP,
        `the batch's maxTimestamp ${header.maxTimestamp} is more than message.timestamp.difference.max.ms (${settings.timestampDifferenceMaxMs}) from the broker's clock (${now}), though its records are within it; the client wrote an inconsistent batch header`,
      );
    }
  }

  if (settings.compressionType !== "producer") {
    const wanted = codecByName[settings.compressionType];
    if (wanted !== header.compression) {
      try {
        // Moves the records as bytes: re-encoding them as objects held millions of them at once.
        bytes = recompressRecordBatch(bytes, wanted, {
          verify: false,
          maxDecompressedBytes: decompressedLimit(settings),
        });
        header = validateRecordBatch(bytes, { producedByClient: true });
      } catch (error) {
        return fromError(error);
      }
      const storedTooLarge = batchTooLarge(bytes, settings);
      if (storedTooLarge !== undefined) return storedTooLarge;
    }
  }
  return { ok: true, records: bytes, headers: [header], recordCount: header.recordCount };
}

/**
 * The most one produced batch may decompress to when the broker must read its records (compacted
 * topics, a timestamp bound, a topic codec to convert to): 32 times max.message.bytes, at least 32 MiB
 * and at most the protocol's 256 MiB. Kafka sets no such limit, but reading a record costs the event
 * loop a fraction of a microsecond and 7-byte records pack 4.8 million into 32 MiB, so the limit is
 * what keeps one ~20 KB request from stalling the broker for many seconds; a real batch that compresses
 * better than 32:1 near max.message.bytes is refused with CORRUPT_MESSAGE.
 */
function decompressedLimit(settings: TopicSettings): number {
  return Math.min(
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    Math.max(MIN_DECOMPRESSED_LIMIT, DECOMPRESSION_RATIO_LIMIT * settings.maxMessageBytes),
  );
}

const MIN_DECOMPRESSED_LIMIT = 32 * 1024 * 1024;
const DECOMPRESSION_RATIO_LIMIT = 32;

/**
 * How many record errors are listed in record_errors. Kafka lists every one, but a batch of a few KB can
 * hold millions of failing records, and one entry each would exhaust memory; the count in the message
 * stays exact.
 */
const MAX_RECORD_ERRORS = 1000;

/** How many record errors Kafka quotes in the partition's error message (all are in record_errors). */
const QUOTED_RECORD_ERRORS = 3;

/**
 * Kafka's LogValidator.validateRecord for every record: a compacted topic refuses records without a key,
 * and with CreateTime a bounded topic refuses timestamps further than the bound from the broker's clock
 * (-1, no timestamp, is never refused). Every failing record is reported; any timestamp failure makes the
 * partition's error INVALID_TIMESTAMP, otherwise it is INVALID_RECORD, as Kafka's processRecordErrors.
 */
function checkRecords(
  records: Iterable<KafkaRecord>,
  compacted: boolean,
  timestampBound: bigint | undefined,
  now: number,
  settings: TopicSettings,
  topicPartition: { readonly topic: string; readonly partition: number },
): PreparedRecords | undefined {
  const recordErrors: ProduceResponseBatchIndexAndErrorMessage[] = [];
  let firstTimestampError: { batchIndex: number; timestamp: bigint } | undefined;
  const nowMs = BigInt(now);
  const noKey = `Compacted topic cannot accept message without key in topic partition ${topicPartition.topic}-${topicPartition.partition}`;
  let errorCount = 0;
  let batchIndex = -1;
  for (const record of records) {
    batchIndex++;
    if (compacted && record.key === null) {
      errorCount++;
      if (recordErrors.length < MAX_RECORD_ERRORS)
        recordErrors.push({ batchIndex, batchIndexErrorMessage: noKey });
      continue;
    }
    if (timestampBound !== undefined && outOfBounds(record.timestamp, nowMs, timestampBound)) {
      firstTimestampError ??= { batchIndex, timestamp: record.timestamp };
      errorCount++;
      if (recordErrors.length >= MAX_RECORD_ERRORS) continue;
      recordErrors.push({
        batchIndex,
        batchIndexErrorMessage: `Timestamp ${record.timestamp} of message with offset ${record.offset} is out of range. The timestamp should be within [${nowMs - timestampBound}, ${nowMs + timestampBound}]`,
      });
    }
  }
  if (errorCount === 0) return undefined;
  if (firstTimestampError !== undefined) {
    return {
      ok: false,
      errorCode: ErrorCode.INVALID_TIMESTAMP,
      message: `One or more records have been rejected due to invalid timestamp: the record at batch index ${firstTimestampError.batchIndex} has timestamp ${firstTimestampError.timestamp}, more than message.timestamp.difference.max.ms (${settings.timestampDifferenceMaxMs}) from the broker's clock (${now}); fix the producer's clock or timestamps`,
      recordErrors,
    };
  }
  const quoted = recordErrors
    .slice(0, QUOTED_RECORD_ERRORS)
    .map((error) => `batch index ${error.batchIndex}: ${error.batchIndexErrorMessage}`)
    .join("; ");
  return {
    ok: false,
    errorCode: ErrorCode.INVALID_RECORD,
    message: `One or more records have been rejected due to ${errorCount} record errors in total, and only showing the first three errors at most: ${quoted}; give every record a key, or produce to a topic whose cleanup.policy is not compact`,
    recordErrors,
  };
}

/** Kafka's recordHasInvalidTimestamp, with NO_TIMESTAMP (-1) exempt as in its validateTimestamp. */
function outOfBounds(timestamp: bigint, now: bigint, bound: bigint): boolean {
  if (timestamp === -1n) return false;
  const behind = now - timestamp;
  return behind > bound || -behind > bound;
}

function batchTooLarge(bytes: Buffer, settings: TopicSettings): PreparedRecords | undefined {
  if (bytes.length <= settings.maxMessageBytes) return undefined;
  return refuse(
    ErrorCode.MESSAGE_TOO_LARGE,
    `record batch of ${bytes.length} bytes is larger than max.message.bytes (${settings.maxMessageBytes}); send smaller batches or raise max.message.bytes for the topic`,
  );
}

function fromError(error: unknown): PreparedRecords {
  if (error instanceof RecordBatchError) {
    // KafkaError messages start with the error name; the partition error message should be the detail.
    return refuse(error.code, error.message.replace(/^[A-Z_]+ \(-?\d+\): /, ""));
  }
  throw error;
}
