import { assert } from "./assert.js";
import type { ConfigEntry, LogPosition, RaftLogReader } from "./log.js";
import { entryBytes } from "./log.js";
import type { ClusterConfig, Entry, Ready, Snapshot, SnapshotMeta } from "./types.js";
import { EMPTY_LOG_OFFSET } from "./types.js";

interface Epoch {
  readonly term: number;
  /** Index into `entries` of the first entry of this term. */
  firstIndex: number;
}

/**
 * A whole Raft log in memory: the simulator's disk, unit tests, and single-process groups. Term
 * lookups deliberately answer with the same coarse epoch-cache semantics as the on-disk log, so the
 * simulator exercises the real backtracking behaviour.
 */
export class MemoryRaftLog implements RaftLogReader {
  private meta: SnapshotMeta;
  private snapshotData: Uint8Array;
  private entryList: Entry[] = [];
  private configs: ConfigEntry[] = [];
  private epochs: Epoch[] = [];
  /** Simulates entries that are not in memory: return true to make `entries()` say "loading". */
  loadingHook: ((after: number) => boolean) | undefined;

  constructor(config: ClusterConfig, snapshot?: Snapshot) {
    this.meta = snapshot?.meta ?? { offset: EMPTY_LOG_OFFSET, term: 0, config };
    this.snapshotData = snapshot?.data ?? new Uint8Array(0);
  }

  clone(): MemoryRaftLog {
    const copy = new MemoryRaftLog(this.meta.config, { meta: this.meta, data: this.snapshotData });
    copy.entryList = this.entryList.slice();
    copy.configs = this.configs.slice();
    copy.epochs = this.epochs.map((epoch) => ({ ...epoch }));
    return copy;
  }

  // RaftLogReader

  snapshotMeta(): SnapshotMeta {
    return this.meta;
  }

  snapshot(): Snapshot | undefined {
    if (this.loadingHook?.(this.meta.offset)) return undefined;
    return { meta: this.meta, data: this.snapshotData };
  }

  lastOffset(): number {
    return this.entryList[this.entryList.length - 1]?.lastOffset ?? this.meta.offset;
  }

  lastTerm(): number {
    return this.entryList[this.entryList.length - 1]?.term ?? this.meta.term;
  }

  termAt(offset: number): number | undefined {
    if (offset === this.meta.offset) return this.meta.term;
    if (offset < this.meta.offset || offset > this.lastOffset()) return undefined;
    return this.entryList[this.indexCovering(offset)]!.term;
  }

  lastEntryAtOrBefore(offset: number, maxTerm: number): LogPosition | undefined {
    for (let epochIndex = this.epochs.length - 1; epochIndex >= 0; epochIndex--) {
      const epoch = this.epochs[epochIndex]!;
      if (epoch.term > maxTerm) continue;
      const nextFirst = this.epochs[epochIndex + 1]?.firstIndex ?? this.entryList.length;
      const lastOfEpoch = this.entryList[nextFirst - 1]!;
      if (lastOfEpoch.lastOffset <= offset) return { offset: lastOfEpoch.lastOffset, term: lastOfEpoch.term };
    }
    if (this.meta.offset <= offset && this.meta.term <= maxTerm) {
      return { offset: this.meta.offset, term: this.meta.term };
    }
    return undefined;
  }

  entries(after: number, maxBytes: number): readonly Entry[] | undefined {
    assert(
      after >= this.meta.offset,
      () => `entries after ${after} requested below the log start ${this.meta.offset}`,
    );
    if (this.loadingHook?.(after)) return undefined;
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = this.indexAfter(after); index < this.entryList.length; index++) {
      const entry = this.entryList[index]!;
      const size = entryBytes(entry);
      if (result.length > 0 && bytes + size > maxBytes) break;
      result.push(entry);
      bytes += size;
    }
    return result;
  }

  configEntries(): readonly ConfigEntry[] {
    return this.configs;
  }

  // Writes (the host's side)

  /** Step 1 of handling a ready: snapshot, truncation, new entries. */
  applyReady(ready: Ready): void {
    if (ready.snapshot !== undefined) this.installSnapshot(ready.snapshot);
    if (ready.entries.length > 0) {
      if (this.lastOffset() > ready.entriesAfter) this.truncateAfter(ready.entriesAfter);
      this.append(ready.entries);
    }
  }

  installSnapshot(snapshot: Snapshot): void {
    this.meta = snapshot.meta;
    this.snapshotData = snapshot.data;
    this.entryList = [];
    this.configs = [];
    this.epochs = [];
  }

  truncateAfter(offset: number): void {
    assert(
      offset >= this.meta.offset,
      () => `truncation at ${offset} below the log start ${this.meta.offset}`,
    );
    const keep = this.indexAfter(offset);
    assert(
      keep === 0 ? offset === this.meta.offset : this.entryList[keep - 1]!.lastOffset === offset,
      () => `truncation point ${offset} is not an entry boundary`,
    );
    this.entryList.length = keep;
    while (this.epochs.length > 0 && this.epochs[this.epochs.length - 1]!.firstIndex >= keep)
      this.epochs.pop();
    while (this.configs.length > 0 && this.configs[this.configs.length - 1]!.offset > offset)
      this.configs.pop();
  }

  append(entries: readonly Entry[]): void {
    for (const entry of entries) {
      const last = this.lastOffset();
      // Kafka offsets are contiguous across batches: a batch starts right after the previous one.
      assert(
        entry.firstOffset === last + 1 && entry.lastOffset >= entry.firstOffset,
        () => `entry [${entry.firstOffset}, ${entry.lastOffset}] does not continue the log ending at ${last}`,
      );
      assert(
        entry.term >= this.lastTerm(),
        () => `entry term ${entry.term} below the last term ${this.lastTerm()}`,
      );
      if (entry.term !== this.epochs[this.epochs.length - 1]?.term) {
        this.epochs.push({ term: entry.term, firstIndex: this.entryList.length });
      }
      this.entryList.push(entry);
      if (entry.kind === "config") this.configs.push({ offset: entry.lastOffset, config: entry.config! });
    }
  }

  /**
   * Drop entries up to `offset` (a committed, applied entry boundary) behind a snapshot holding the
   * state machine there.
   */
  compact(offset: number, data: Uint8Array): void {
    if (offset <= this.meta.offset) return;
    const term = this.termAt(offset);
    assert(term !== undefined, () => `compaction point ${offset} is outside the log`);
    const drop = this.indexAfter(offset);
    assert(
      this.entryList[drop - 1]!.lastOffset === offset,
      () => `compaction point ${offset} is not an entry boundary`,
    );
    const config = this.configAt(offset);
    this.meta = { offset, term, config };
    this.snapshotData = data;
    this.entryList = this.entryList.slice(drop);
    this.configs = this.configs.filter((entry) => entry.offset > offset);
    const epochs: Epoch[] = [];
    for (const epoch of this.epochs) {
      const firstIndex = epoch.firstIndex - drop;
      if (firstIndex <= 0) {
        if (this.entryList.length > 0 && this.entryList[0]!.term === epoch.term)
          epochs[0] = { term: epoch.term, firstIndex: 0 };
      } else {
        epochs.push({ term: epoch.term, firstIndex });
      }
    }
    this.epochs = epochs;
  }

  configAt(offset: number): ClusterConfig {
    let config = this.meta.config;
    for (const entry of this.configs) {
      if (entry.offset > offset) break;
      config = entry.config;
    }
    return config;
  }

  /** All entries currently held (tests and the simulator's checkers). */
  allEntries(): readonly Entry[] {
    return this.entryList;
  }

  private indexAfter(after: number): number {
    let low = 0;
    let high = this.entryList.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.entryList[middle]!.lastOffset > after) high = middle;
      else low = middle + 1;
    }
    return low;
  }

  private indexCovering(offset: number): number {
    let low = 0;
    let high = this.entryList.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.entryList[middle]!.lastOffset >= offset) high = middle;
      else low = middle + 1;
    }
    return low;
  }
}
