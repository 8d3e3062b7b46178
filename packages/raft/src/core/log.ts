import { assert } from "./assert.js";
import type { ClusterConfig, Entry, Snapshot, SnapshotMeta } from "./types.js";

/** An entry boundary: the lastOffset of some entry and that entry's term. */
export interface LogPosition {
  readonly offset: number;
  readonly term: number;
}

export interface ConfigEntry {
  readonly offset: number;
  readonly config: ClusterConfig;
}

/**
 * The durable log as the core sees it, read synchronously. Implemented in memory for the simulator
 * (`MemoryRaftLog`) and over @raftka/storage's PartitionLog for real groups. The core only reads
 * through this interface; it never writes the log itself (writes are returned from `ready()`).
 */
export interface RaftLogReader {
  /** The position the log starts after, with the membership there (offset -1 for a new group). */
  snapshotMeta(): SnapshotMeta;
  /**
   * The snapshot to send to a follower that is behind the log start; `undefined` while it is being
   * loaded (the host calls `RaftCore.entriesLoaded()` when it is ready).
   */
  snapshot(): Snapshot | undefined;
  /** lastOffset of the last entry, or the snapshot offset when the log holds no entries. */
  lastOffset(): number;
  lastTerm(): number;
  /**
   * Term of the entry covering `offset` (any offset inside a batch), the snapshot term at the snapshot
   * offset, `undefined` below the snapshot offset or past the end. Answered from the leader-epoch cache.
   */
  termAt(offset: number): number | undefined;
  /**
   * The largest entry boundary at or below `offset` whose term is at most `maxTerm`, chosen among the
   * positions the epoch cache knows (the last entry, the last entry of each term, the snapshot
   * position); `undefined` if even the snapshot position does not qualify. Used to skip a whole
   * divergent term per round trip when a follower's log conflicts with the leader's.
   */
  lastEntryAtOrBefore(offset: number, maxTerm: number): LogPosition | undefined;
  /**
   * Entries with lastOffset > `after`, in order: at least one if any exist, then more while the total
   * stays within `maxBytes`. `undefined` means "not in memory now": the log starts loading them and the
   * host calls `RaftCore.entriesLoaded()` once they are. `after` is never below the snapshot offset.
   */
  entries(after: number, maxBytes: number): readonly Entry[] | undefined;
  /** Config entries stored after the snapshot position, in log order (read once at startup). */
  configEntries(): readonly ConfigEntry[];
}

/** Bytes an entry counts for against message and in-flight limits (payload plus framing). */
export function entryBytes(entry: Entry): number {
  return (entry.payload?.byteLength ?? 0) + 24;
}

/** A data entry whose payload the view dropped after handing it to the storage. */
function isReleased(entry: Entry): boolean {
  return entry.kind === "data" && entry.payload === undefined;
}

/**
 * The core's view of its log: the durable log up to `stableEnd`, followed by entries the host has not
 * yet made durable (`unstable`). Each unstable entry remembers which ready handed it to the host, so
 * that `advance(seq)` can mark exactly the durable prefix stable even while later readies (or a
 * truncation that replaced some of them) are still in flight.
 */
export class RaftLogView {
  private stableEnd: number;
  private stableEndTerm: number;
  private readonly unstable: Entry[] = [];
  /** Ready seq that handed each unstable entry to the host (0 = not handed out yet). */
  private readonly handedOutBy: number[] = [];
  private pendingSnapshot: Snapshot | undefined;
  private pendingSnapshotHandedOutBy = 0;

  constructor(private readonly storage: RaftLogReader) {
    this.stableEnd = storage.lastOffset();
    this.stableEndTerm = storage.lastTerm();
  }

  snapshotMeta(): SnapshotMeta {
    return this.pendingSnapshot?.meta ?? this.storage.snapshotMeta();
  }

  /** The last durable entry (what a leader may count for itself). */
  durableEnd(): number {
    assert(this.pendingSnapshot === undefined, "a leader never installs a snapshot");
    return this.stableEnd;
  }

  /** The snapshot a leader sends to followers behind its log start (`undefined` while loading). */
  storageSnapshot(): Snapshot | undefined {
    return this.storage.snapshot();
  }

  hasPendingSnapshot(): boolean {
    return this.pendingSnapshot !== undefined;
  }

  /** Entries up to here are durable and no truncation is pending below it. */
  stableOffset(): number {
    return this.stableEnd;
  }

  lastOffset(): number {
    const last = this.unstable[this.unstable.length - 1];
    if (last !== undefined) return last.lastOffset;
    if (this.pendingSnapshot !== undefined) return this.pendingSnapshot.meta.offset;
    return this.stableEnd;
  }

  lastTerm(): number {
    const last = this.unstable[this.unstable.length - 1];
    if (last !== undefined) return last.term;
    if (this.pendingSnapshot !== undefined) return this.pendingSnapshot.meta.term;
    return this.stableEndTerm;
  }

  termAt(offset: number): number | undefined {
    const base = this.unstableBase();
    if (offset > base.offset) return this.unstableTermAt(offset);
    if (offset === base.offset) return base.term;
    if (this.pendingSnapshot !== undefined) return undefined;
    return this.storage.termAt(offset);
  }

  lastEntryAtOrBefore(offset: number, maxTerm: number): LogPosition | undefined {
    const base = this.unstableBase();
    if (offset > base.offset) {
      // Unstable entries are all in memory, so the answer there is exact. Terms never decrease along a
      // log, so the qualifying entries form a prefix of those at or below `offset`.
      let high = this.indexAtOrBefore(offset);
      let low = 0;
      let found = -1;
      while (low <= high) {
        const middle = (low + high) >> 1;
        if (this.unstable[middle]!.term <= maxTerm) {
          found = middle;
          low = middle + 1;
        } else {
          high = middle - 1;
        }
      }
      if (found >= 0) return { offset: this.unstable[found]!.lastOffset, term: this.unstable[found]!.term };
    }
    if (base.term <= maxTerm && base.offset <= offset) return base;
    if (this.pendingSnapshot !== undefined) return undefined;
    return this.storage.lastEntryAtOrBefore(Math.min(offset, this.stableEnd), maxTerm);
  }

  /** Entries with lastOffset > after; `after` must not be below the snapshot offset. */
  entries(after: number, maxBytes: number): readonly Entry[] | undefined {
    const meta = this.snapshotMeta();
    assert(after >= meta.offset, () => `entries after ${after} requested below the log start ${meta.offset}`);
    const result: Entry[] = [];
    let bytes = 0;
    const base = this.unstableBase();
    if (after < base.offset) {
      const stored = this.storage.entries(after, maxBytes);
      if (stored === undefined) return undefined;
      for (const entry of stored) {
        if (entry.lastOffset > base.offset) break;
        const size = entryBytes(entry);
        if (result.length > 0 && bytes + size > maxBytes) return result;
        result.push(entry);
        bytes += size;
      }
      // The storage stopped early because of the byte budget (not because it reached the unstable tail).
      const lastStored = result[result.length - 1];
      if (lastStored === undefined || lastStored.lastOffset < base.offset) return result;
    }
    for (let index = this.indexAfter(after); index < this.unstable.length; index++) {
      const entry = this.unstable[index]!;
      if (isReleased(entry)) {
        // Handed over and released: the storage has it (RaftOptions.releaseWrittenPayloads).
        return result.length > 0 ? result : this.storage.entries(after, maxBytes);
      }
      const size = entryBytes(entry);
      if (result.length > 0 && bytes + size > maxBytes) break;
      result.push(entry);
      bytes += size;
    }
    return result;
  }

  /** Leader path: append entries that continue the log. */
  append(entries: readonly Entry[]): void {
    let previous = this.lastOffset();
    let previousTerm = this.lastTerm();
    for (const entry of entries) {
      assert(
        entry.firstOffset > previous && entry.lastOffset >= entry.firstOffset,
        () =>
          `entry [${entry.firstOffset}, ${entry.lastOffset}] does not continue the log ending at ${previous}`,
      );
      assert(
        entry.term >= previousTerm,
        () => `entry term ${entry.term} below previous term ${previousTerm}`,
      );
      this.unstable.push(entry);
      this.handedOutBy.push(0);
      previous = entry.lastOffset;
      previousTerm = entry.term;
    }
  }

  /** Follower path: drop everything after `after` (a boundary in this log), then append. */
  truncateAndAppend(after: number, entries: readonly Entry[]): void {
    const base = this.unstableBase();
    if (after >= base.offset) {
      const keep = this.indexAfter(after);
      this.unstable.length = keep;
      this.handedOutBy.length = keep;
    } else {
      assert(this.pendingSnapshot === undefined, "truncation below a pending snapshot");
      const term = this.storage.termAt(after);
      assert(term !== undefined, () => `truncation point ${after} is not in the log`);
      this.stableEnd = after;
      this.stableEndTerm = term;
      this.unstable.length = 0;
      this.handedOutBy.length = 0;
    }
    assert(this.lastOffset() === after, () => `truncation point ${after} is not an entry boundary`);
    this.append(entries);
  }

  installSnapshot(snapshot: Snapshot): void {
    this.pendingSnapshot = snapshot;
    this.pendingSnapshotHandedOutBy = 0;
    this.unstable.length = 0;
    this.handedOutBy.length = 0;
  }

  hasUnhandedWork(): boolean {
    if (this.pendingSnapshot !== undefined && this.pendingSnapshotHandedOutBy === 0) return true;
    const count = this.handedOutBy.length;
    return count > 0 && this.handedOutBy[count - 1] === 0;
  }

  /**
   * Hand the not-yet-handed-out snapshot and entries to the host as part of ready `seq`. With
   * `releasePayloads` the view keeps them without their payload from now on (the storage holds them;
   * see RaftOptions.releaseWrittenPayloads).
   */
  takeUnhanded(
    seq: number,
    releasePayloads = false,
  ): { snapshot: Snapshot | undefined; after: number; entries: Entry[] } {
    let snapshot: Snapshot | undefined;
    if (this.pendingSnapshot !== undefined && this.pendingSnapshotHandedOutBy === 0) {
      snapshot = this.pendingSnapshot;
      this.pendingSnapshotHandedOutBy = seq;
    }
    let first = this.handedOutBy.length;
    while (first > 0 && this.handedOutBy[first - 1] === 0) first--;
    const after = first === 0 ? this.unstableBase().offset : this.unstable[first - 1]!.lastOffset;
    const entries = this.unstable.slice(first);
    for (let index = first; index < this.handedOutBy.length; index++) {
      this.handedOutBy[index] = seq;
      const entry = this.unstable[index]!;
      if (releasePayloads && entry.payload !== undefined)
        this.unstable[index] = { ...entry, payload: undefined };
    }
    return { snapshot, after, entries };
  }

  /** Everything handed out by readies up to `seq` is durable now. */
  advance(seq: number): void {
    if (this.pendingSnapshot !== undefined) {
      if (this.pendingSnapshotHandedOutBy === 0 || this.pendingSnapshotHandedOutBy > seq) return;
      const meta = this.pendingSnapshot.meta;
      assert(
        this.storage.snapshotMeta().offset === meta.offset,
        () =>
          `the host acknowledged snapshot ${meta.offset} but the log starts after ${this.storage.snapshotMeta().offset}`,
      );
      this.pendingSnapshot = undefined;
      this.stableEnd = meta.offset;
      this.stableEndTerm = meta.term;
    }
    let count = 0;
    while (count < this.unstable.length) {
      const by = this.handedOutBy[count]!;
      if (by === 0 || by > seq) break;
      count++;
    }
    if (count === 0) return;
    const last = this.unstable[count - 1]!;
    this.stableEnd = last.lastOffset;
    this.stableEndTerm = last.term;
    this.unstable.splice(0, count);
    this.handedOutBy.splice(0, count);
  }

  private unstableBase(): LogPosition {
    if (this.pendingSnapshot !== undefined) {
      return { offset: this.pendingSnapshot.meta.offset, term: this.pendingSnapshot.meta.term };
    }
    return { offset: this.stableEnd, term: this.stableEndTerm };
  }

  private unstableTermAt(offset: number): number | undefined {
    const entry = this.unstable[this.indexCovering(offset)];
    if (entry === undefined || entry.firstOffset > offset) return undefined;
    return entry.term;
  }

  /** Index of the first unstable entry with lastOffset > after. */
  private indexAfter(after: number): number {
    let low = 0;
    let high = this.unstable.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.unstable[middle]!.lastOffset > after) high = middle;
      else low = middle + 1;
    }
    return low;
  }

  /** Index of the first unstable entry with lastOffset >= offset: the one covering it, if any. */
  private indexCovering(offset: number): number {
    let low = 0;
    let high = this.unstable.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.unstable[middle]!.lastOffset >= offset) high = middle;
      else low = middle + 1;
    }
    return low;
  }

  /** Index of the last unstable entry with lastOffset <= offset (-1 if none). */
  private indexAtOrBefore(offset: number): number {
    return this.indexAfter(offset) - 1;
  }
}
