/**
 * Compaction of the `__consumer_offsets` log (cleanup.policy=compact): keep the latest record per key,
 * drop a tombstone once it is older than the delete horizon (`log.cleaner.delete.retention.ms`).
 *
 * The log is compacted by copying forward rather than by rewriting segments: the surviving records of
 * everything below offset S are appended again at the log end, then the log start moves to S and whole
 * segments below it are deleted. This goes through the same ReplicatedLog seam as every write (append,
 * then DeleteRecords), so it replicates and fails over with the partition like any other write, and the
 * log stays a plain Kafka log whose offsets only ever grow. Survivors whose key was written again after S
 * are dropped at the moment of the append, because those newer records precede the copies in the log.
 */

export interface CompactionCandidate<T> {
  /** Records with equal keys replace each other; a later one wins. */
  readonly key: string;
  readonly tombstone: boolean;
  /** The record's own timestamp (for tombstones: when the delete happened). */
  readonly timestamp: number;
  readonly sizeBytes: number;
  readonly value: T;
}

export interface CompactionPlan<T> {
  /** Survivors in their original log order. */
  readonly kept: CompactionCandidate<T>[];
  readonly keptBytes: number;
  readonly droppedRecords: number;
  readonly droppedTombstones: number;
}

/** The latest record per key among `records` (given in log order), with expired tombstones removed. */
export function planCompaction<T>(
  records: Iterable<CompactionCandidate<T>>,
  now: number,
  tombstoneRetentionMs: number,
): CompactionPlan<T> {
  const latest = new Map<string, { record: CompactionCandidate<T>; position: number }>();
  let position = 0;
  let total = 0;
  for (const record of records) {
    latest.set(record.key, { record, position: position++ });
    total++;
  }
  const survivors = [...latest.values()].sort((a, b) => a.position - b.position);
  const kept: CompactionCandidate<T>[] = [];
  let keptBytes = 0;
  let droppedTombstones = 0;
  for (const { record } of survivors) {
    if (record.tombstone && now - record.timestamp >= tombstoneRetentionMs) {
      droppedTombstones++;
      continue;
    }
    kept.push(record);
    keptBytes += record.sizeBytes;
  }
  return { kept, keptBytes, droppedRecords: total - kept.length, droppedTombstones };
}

export interface CompactionTrigger {
  /** Bytes in the log now. */
  readonly logBytes: number;
  /** Bytes the previous pass kept (0 before the first pass). */
  readonly keptBytesAfterLastPass: number;
  /** Never compact a log smaller than this. */
  readonly minLogBytes: number;
  /** Kafka's min.cleanable.dirty.ratio: compact once dirty bytes are this share of the log. */
  readonly minDirtyRatio: number;
}

export function shouldCompact(trigger: CompactionTrigger): boolean {
  if (trigger.logBytes < trigger.minLogBytes) return false;
  const dirty = trigger.logBytes - Math.min(trigger.keptBytesAfterLastPass, trigger.logBytes);
  return dirty / trigger.logBytes >= trigger.minDirtyRatio;
}
