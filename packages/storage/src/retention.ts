export type RetentionReason = "retention.ms" | "retention.bytes";

export interface RetentionCandidate {
  baseOffset: number;
  nextOffset: number;
  sizeInBytes: number;
  /** The segment's newest record timestamp (or file time when it has none). */
  retentionTimestamp: number;
}

export interface RetentionPolicy {
  retentionMs: number;
  retentionBytes: number;
}

/**
 * Which of the oldest segments to delete (Kafka's rules): a prefix of `segments` whose every member is
 * older than retention.ms or still needed to bring the log under retention.bytes, never past
 * `upToOffset` (the high watermark: never drop what is not yet committed). `segments` may end with the
 * active segment when it holds records: like Kafka, a log whose every record has expired is rolled and
 * emptied, so an idle topic does not keep its last segment forever. `totalSizeInBytes` is the whole log's.
 */
export function selectSegmentsToDelete(
  segments: readonly RetentionCandidate[],
  totalSizeInBytes: number,
  policy: RetentionPolicy,
  nowMs: number,
  upToOffset: number,
): { baseOffset: number; reason: RetentionReason }[] {
  const selected: { baseOffset: number; reason: RetentionReason }[] = [];
  let bytesOverLimit =
    policy.retentionBytes < 0 ? Number.NEGATIVE_INFINITY : totalSizeInBytes - policy.retentionBytes;
  for (const segment of segments) {
    if (segment.nextOffset > upToOffset) break;
    const expired = policy.retentionMs >= 0 && nowMs - segment.retentionTimestamp > policy.retentionMs;
    const tooBig = bytesOverLimit - segment.sizeInBytes >= 0;
    if (!expired && !tooBig) break;
    selected.push({ baseOffset: segment.baseOffset, reason: expired ? "retention.ms" : "retention.bytes" });
    bytesOverLimit -= segment.sizeInBytes;
  }
  return selected;
}
