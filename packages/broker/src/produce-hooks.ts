import type { RecordBatchHeader } from "@raftka/protocol";
import type { TopicPartition } from "./partitions/replicated-log.js";

/** What a producer-state check decides about one batch before it is appended. */
export type ProducerCheckResult =
  /** Append it. */
  | { readonly action: "append" }
  /**
   * A retry of a batch already appended: append nothing and answer with the original's offsets, once the
   * original is as durable as this request's acks ask. `original` settles when the original append has its
   * offsets (at once when it has them already) and rejects when that append failed.
   */
  | { readonly action: "duplicate"; readonly original: Promise<{ baseOffset: number; lastOffset: number }> }
  /** Refuse it with this Kafka error. */
  | { readonly action: "reject"; readonly errorCode: number; readonly message: string };

/**
 * The produce path's seam for idempotent and transactional producers. `check` runs for every batch in the
 * order batches are appended to the partition (before the append, synchronously); `appended` runs once the
 * append has assigned offsets, also in append order. The default (no producer state) accepts everything.
 */
export interface ProducerStateCheck {
  check(partition: TopicPartition, batch: RecordBatchHeader): ProducerCheckResult;
  appended(partition: TopicPartition, batch: RecordBatchHeader, baseOffset: number): void;
  /** The append failed after `check` accepted the batch: forget whatever `check` reserved. */
  appendFailed?(partition: TopicPartition, batch: RecordBatchHeader): void;
}

export const acceptAllProducers: ProducerStateCheck = {
  check: () => ({ action: "append" }),
  appended: () => {},
};
