import { InvalidRecordError, invariant } from "./errors.js";

export interface EpochEntry {
  epoch: number;
  startOffset: number;
}

/** Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET, as OffsetForLeaderEpoch answers them. */
export const UNDEFINED_EPOCH = -1;
export const UNDEFINED_EPOCH_OFFSET = -1;

/**
 * In-memory map of leader epoch → first offset written in it (Kafka's LeaderEpochFileCache), kept
 * in memory because Raft asks for term-at-offset synchronously on every append and vote.
 * Invariant: epochs and start offsets are both strictly increasing.
 */
export class LeaderEpochCache {
  private readonly entries: EpochEntry[] = [];

  constructor(initial: readonly EpochEntry[] = []) {
    for (const entry of initial) this.assign(entry.epoch, entry.startOffset);
  }

  get latestEpoch(): number | undefined {
    return this.entries.at(-1)?.epoch;
  }

  snapshot(): EpochEntry[] {
    return this.entries.map((entry) => ({ ...entry }));
  }

  /**
   * Records that `epoch` starts at `startOffset`. Returns true if the cache changed. An older epoch
   * than the latest one would break the log's epoch order (a stale leader appending), so it throws.
   */
  assign(epoch: number, startOffset: number): boolean {
    const latest = this.entries.at(-1);
    if (latest && epoch === latest.epoch) return false;
    if (latest && epoch < latest.epoch) {
      throw new InvalidRecordError(
        `leader epoch ${epoch} at offset ${startOffset} is older than the log's latest epoch ${latest.epoch} ` +
          `(started at offset ${latest.startOffset}); a stale leader is appending: re-check leadership and retry`,
      );
    }
    // Appends happen at the log end, so entries starting at or after `startOffset` cover no records
    // (e.g. the log start was advanced to the end): the new epoch replaces them, as in Kafka.
    while (this.entries.length > 0 && this.entries.at(-1)!.startOffset >= startOffset) this.entries.pop();
    const previous = this.entries.at(-1);
    invariant(
      !previous || (startOffset > previous.startOffset && epoch > previous.epoch),
      () =>
        `epoch ${epoch} at ${startOffset} does not follow epoch ${previous!.epoch} at ${previous!.startOffset}`,
    );
    this.entries.push({ epoch, startOffset });
    return true;
  }

  /** Checks what `assign` would accept, without changing anything. */
  checkAssignable(epoch: number, startOffset: number): void {
    const latest = this.entries.at(-1);
    if (latest && epoch < latest.epoch) {
      throw new InvalidRecordError(
        `leader epoch ${epoch} at offset ${startOffset} is older than the log's latest epoch ${latest.epoch} ` +
          `(started at offset ${latest.startOffset}); a stale leader is appending: re-check leadership and retry`,
      );
    }
  }

  /** Epoch of the entry covering `offset`, or undefined when the offset precedes every entry. */
  epochForOffset(offset: number): number | undefined {
    const index = this.floorIndexByOffset(offset);
    return index < 0 ? undefined : this.entries[index]!.epoch;
  }

  /**
   * Kafka's OffsetForLeaderEpoch answer: the largest epoch <= `requestedEpoch` and the offset at which
   * it ended (the start of the next larger epoch, or the log end for the latest epoch).
   */
  endOffsetForEpoch(requestedEpoch: number, logEndOffset: number): { epoch: number; endOffset: number } {
    if (requestedEpoch === UNDEFINED_EPOCH) {
      return { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    }
    if (this.latestEpoch === requestedEpoch) return { epoch: requestedEpoch, endOffset: logEndOffset };
    const higher = this.entries.findIndex((entry) => entry.epoch > requestedEpoch);
    if (higher < 0) return { epoch: UNDEFINED_EPOCH, endOffset: UNDEFINED_EPOCH_OFFSET };
    const higherStart = this.entries[higher]!.startOffset;
    if (higher === 0) return { epoch: requestedEpoch, endOffset: higherStart };
    return { epoch: this.entries[higher - 1]!.epoch, endOffset: higherStart };
  }

  /** Forgets epochs starting at or after `offset` (log truncated to end at `offset`). */
  truncateFromEnd(offset: number): boolean {
    let removed = false;
    while (this.entries.length > 0 && this.entries.at(-1)!.startOffset >= offset) {
      this.entries.pop();
      removed = true;
    }
    return removed;
  }

  /**
   * The log now starts at `offset`: drop epochs that ended before it and move the epoch covering it to
   * start there (Kafka does the same so lookups below the log start answer "unknown").
   */
  truncateFromStart(offset: number): boolean {
    const covering = this.floorIndexByOffset(offset);
    if (covering < 0) return false;
    const changed = covering > 0 || this.entries[0]!.startOffset !== offset;
    this.entries.splice(0, covering);
    this.entries[0]!.startOffset = offset;
    return changed;
  }

  clear(): boolean {
    const had = this.entries.length > 0;
    this.entries.length = 0;
    return had;
  }

  private floorIndexByOffset(offset: number): number {
    let low = 0;
    let high = this.entries.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.entries[middle]!.startOffset <= offset) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }
}
