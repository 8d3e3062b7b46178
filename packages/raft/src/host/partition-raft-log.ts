import type { PartitionLog, RetentionResult, StableStore } from "@raftka/storage";
import { selectSegmentsToDelete } from "@raftka/storage";
import { assert } from "../core/assert.js";
import { type ConfigEntry, entryBytes, type LogPosition } from "../core/log.js";
import type {
  ClusterConfig,
  Entry,
  GroupId,
  HardState,
  Ready,
  Snapshot,
  SnapshotMeta,
} from "../core/types.js";
import { EMPTY_LOG_OFFSET } from "../core/types.js";
import { batchForEntry, entryFromBatch, splitBatches } from "./record-batch.js";
import type { HardStateStore, RaftLogStorage, SyncOptions } from "./storage.js";

/** The group's Raft state on disk does not add up; the message says what to do about it. */
export class RaftStorageError extends Error {
  override name = "RaftStorageError";
}

export interface PartitionRaftLogOptions {
  readonly log: PartitionLog;
  readonly stable: StableStore;
  /** Prefix of this group's keys in the StableStore (see `raftKeyPrefix`). */
  readonly keyPrefix: string;
  /** Membership of a brand-new group; ignored once the group has state on disk. */
  readonly initialConfig: ClusterConfig;
  /** Recent entries kept in memory for replication (older ones are read back from the log); 0: none. */
  readonly cacheBytes?: number;
  /** Clock for the timestamps of control batches. */
  readonly now?: () => number;
  /**
   * The log may have been trimmed while it was not a Raft group (a partition served without Raft for a
   * while, whose retention moved only the Kafka log start): the Raft log then starts at the Kafka log
   * start (a snapshot position just below it) instead of being refused as damaged.
   */
  readonly adoptLogStart?: boolean;
}

interface Epoch {
  readonly term: number;
  startOffset: number;
}

interface StoredConfigEntry {
  readonly offset: number;
  readonly term: number;
  readonly config: ClusterConfig;
}

/** Key prefix of a group's Raft metadata (snapshot meta, config index, hard state) in the StableStore. */
export function raftKeyPrefix(group: GroupId): string {
  return `raft/${group}/`;
}

/**
 * A Raft group's log on @raftka/storage: the partition's Kafka log (PartitionLog) is the Raft log,
 * one entry per record batch, the term in partitionLeaderEpoch; small metadata lives in the node's
 * StableStore under `keyPrefix`: the snapshot position (the Raft log starts after it), the snapshot
 * data of groups with a state machine, and an index of config entries (so a restart knows the
 * membership without scanning the log).
 *
 * Reads answer synchronously from memory: the end of the log and a term per offset from an epoch
 * list kept in step with every write, recent entries from a tail cache. Older entries are read back
 * from disk on demand (`entries()` says "loading" and calls `onLoaded` when they are in memory).
 *
 * Crash safety of the metadata, which lives in another file than the log:
 * - a config entry is recorded in the index (durably) before its batch is appended, and the index is
 *   filtered against the log on open, so the index never misses a config entry the log holds;
 * - a truncation reaches the log before the index forgets the entries it removed;
 * - a snapshot install is recorded as pending first and completed (again) on open;
 * - compaction and retention record the new snapshot position before the log prefix is deleted, and
 *   open deletes a prefix left behind it (the log failed, or the node stopped, in between).
 */
export class PartitionRaftLog implements RaftLogStorage {
  onLoaded: (() => void) | undefined;
  private readonly log: PartitionLog;
  private readonly stable: StableStore;
  private readonly keys: {
    snapshot: string;
    data: string;
    pending: string;
    pendingData: string;
    configs: string;
  };
  private readonly cacheBytes: number;
  private readonly now: () => number;
  private meta: SnapshotMeta;
  private snapshotData: Uint8Array;
  private end: number;
  private epochs: Epoch[];
  private configs: StoredConfigEntry[];
  private cache: Entry[] = [];
  private cacheUsed = 0;
  /** Entries with lastOffset > cacheAfter are in `cache`. */
  private cacheAfter: number;
  private loading: { after: number; generation: number } | undefined;
  private loaded: { after: number; entries: Entry[]; generation: number } | undefined;
  /** Bumped on truncation, snapshot install and compaction: loads started before are stale. */
  private generation = 0;
  private chain: Promise<void> = Promise.resolve();
  /** Steps on `chain` not finished yet: while there are any, appends must queue behind them. */
  private queuedSteps = 0;
  private failure: Error | undefined;

  private constructor(
    options: PartitionRaftLogOptions,
    state: {
      meta: SnapshotMeta;
      data: Uint8Array;
      end: number;
      epochs: Epoch[];
      configs: StoredConfigEntry[];
      keys: PartitionRaftLog["keys"];
    },
  ) {
    this.log = options.log;
    this.stable = options.stable;
    this.cacheBytes = options.cacheBytes ?? 8 * 1024 * 1024;
    this.now = options.now ?? Date.now;
    this.keys = state.keys;
    this.meta = state.meta;
    this.snapshotData = state.data;
    this.end = state.end;
    this.epochs = state.epochs;
    this.configs = state.configs;
    this.cacheAfter = state.end;
  }

  static async open(options: PartitionRaftLogOptions): Promise<PartitionRaftLog> {
    const { log, stable } = options;
    const prefix = options.keyPrefix;
    const keys = {
      snapshot: `${prefix}snapshot`,
      data: `${prefix}snapshot-data`,
      pending: `${prefix}snapshot-pending`,
      pendingData: `${prefix}snapshot-pending-data`,
      configs: `${prefix}configs`,
    };
    const pending = stable.get(keys.pending);
    if (pending !== undefined) {
      // A snapshot install was interrupted: finish it (resetting the log again is harmless).
      const meta = parseMeta(pending, keys.pending);
      await log.truncateFullyAndStartAt(meta.offset + 1);
      const data = stable.get(keys.pendingData);
      await stable.setMany([
        [keys.snapshot, pending],
        [keys.data, data],
        [keys.configs, Buffer.from("[]")],
        [keys.pending, undefined],
        [keys.pendingData, undefined],
      ]);
    }
    const storedMeta = stable.get(keys.snapshot);
    let meta: SnapshotMeta;
    if (storedMeta === undefined) {
      meta = { offset: EMPTY_LOG_OFFSET, term: 0, config: options.initialConfig };
      await stable.set(keys.snapshot, encodeMeta(meta));
    } else {
      meta = parseMeta(storedMeta, keys.snapshot);
    }
    if (options.adoptLogStart === true && log.logStartOffset > meta.offset + 1) {
      const offset = log.logStartOffset - 1;
      const term = log.epochForOffset(log.logStartOffset) ?? log.latestEpoch ?? 0;
      meta = { offset, term, config: meta.config };
      await stable.set(keys.snapshot, encodeMeta(meta));
    }
    if (log.logStartOffset < meta.offset + 1) {
      // Compaction or retention recorded this snapshot position, but the log prefix behind it was never
      // deleted (the log failed, say on a full disk, or the node stopped in between): delete it now,
      // or the prefix stays on disk and every retention pass picks the same segments again.
      if (meta.offset + 1 <= log.logEndOffset) await log.advanceLogStartOffset(meta.offset + 1);
      else await log.truncateFullyAndStartAt(meta.offset + 1);
    }
    const data = stable.get(keys.data) ?? new Uint8Array(0);
    if (log.logStartOffset > meta.offset + 1) {
      throw new RaftStorageError(
        `${log.directory} starts at offset ${log.logStartOffset} but its Raft snapshot ends at ${meta.offset}: ` +
          "entries in between were deleted behind Raft's back. Delete records and apply retention through " +
          "PartitionRaftLog (not PartitionLog directly); to recover, remove this replica and let it rejoin from the leader",
      );
    }
    const end = Math.max(meta.offset, log.logEndOffset - 1);
    const epochs: Epoch[] = [];
    if (end > meta.offset) {
      for (const { epoch, startOffset } of log.leaderEpochs()) {
        const start = Math.max(startOffset, meta.offset + 1);
        if (start > end) break;
        if (epochs.length > 0 && epochs[epochs.length - 1]!.startOffset >= start) epochs.pop();
        epochs.push({ term: epoch, startOffset: start });
      }
      if (epochs.length === 0 || epochs[0]!.startOffset > meta.offset + 1) {
        throw new RaftStorageError(
          `${log.directory} has entries from ${meta.offset + 1} but no leader epoch for them; ` +
            "its leader-epoch-checkpoint is damaged: remove this replica and let it rejoin from the leader",
        );
      }
    }
    const storedConfigs = stable.get(keys.configs);
    const configs = storedConfigs === undefined ? [] : parseConfigs(storedConfigs, keys.configs);
    const adapter = new PartitionRaftLog(options, { meta, data, end, epochs, configs: [], keys });
    // Index entries whose batch never reached the log (crash between the two writes) are dropped.
    adapter.configs = configs.filter(
      (entry) => entry.offset > meta.offset && adapter.termAt(entry.offset) === entry.term,
    );
    return adapter;
  }

  // ---------------------------------------------------------------------------------------------
  // RaftLogReader

  snapshotMeta(): SnapshotMeta {
    return this.meta;
  }

  snapshot(): Snapshot | undefined {
    return { meta: this.meta, data: this.snapshotData };
  }

  lastOffset(): number {
    return this.end;
  }

  lastTerm(): number {
    return this.epochs[this.epochs.length - 1]?.term ?? this.meta.term;
  }

  termAt(offset: number): number | undefined {
    if (offset === this.meta.offset) return this.meta.term;
    if (offset < this.meta.offset || offset > this.end) return undefined;
    let low = 0;
    let high = this.epochs.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.epochs[middle]!.startOffset <= offset) low = middle;
      else high = middle - 1;
    }
    return this.epochs[low]?.term;
  }

  lastEntryAtOrBefore(offset: number, maxTerm: number): LogPosition | undefined {
    for (let index = this.epochs.length - 1; index >= 0; index--) {
      const epoch = this.epochs[index]!;
      if (epoch.term > maxTerm) continue;
      const next = this.epochs[index + 1];
      // Kafka offsets are contiguous: the entry before a term's first batch ends right before it.
      const lastOfEpoch = next === undefined ? this.end : next.startOffset - 1;
      if (lastOfEpoch <= offset) return { offset: lastOfEpoch, term: epoch.term };
    }
    if (this.meta.offset <= offset && this.meta.term <= maxTerm)
      return { offset: this.meta.offset, term: this.meta.term };
    return undefined;
  }

  entries(after: number, maxBytes: number): readonly Entry[] | undefined {
    assert(
      after >= this.meta.offset,
      () => `entries after ${after} requested below the log start ${this.meta.offset}`,
    );
    if (after >= this.cacheAfter) return takeFrom(this.cache, after, maxBytes);
    const loaded = this.loaded;
    if (loaded !== undefined && loaded.after === after && loaded.generation === this.generation) {
      return takeFrom(loaded.entries, after, maxBytes);
    }
    if (this.loading === undefined) this.load(after, maxBytes);
    return undefined;
  }

  configEntries(): readonly ConfigEntry[] {
    return this.configs;
  }

  // ---------------------------------------------------------------------------------------------
  // Writes

  write(ready: Ready): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const snapshot = ready.snapshot;
    if (snapshot !== undefined) {
      this.meta = snapshot.meta;
      this.snapshotData = snapshot.data;
      this.end = snapshot.meta.offset;
      this.epochs = [];
      this.configs = [];
      this.resetCache(snapshot.meta.offset);
    }
    let truncateAfter: number | undefined;
    let configsChanged = snapshot !== undefined;
    const entries = ready.entries;
    if (entries.length > 0 && this.end > ready.entriesAfter) {
      truncateAfter = ready.entriesAfter;
      this.truncateInMemory(truncateAfter);
      configsChanged = true;
    }
    let newConfigs = false;
    for (const entry of entries) {
      assert(
        entry.firstOffset === this.end + 1,
        () =>
          `entry [${entry.firstOffset}, ${entry.lastOffset}] does not continue the log ending at ${this.end}`,
      );
      if (entry.term !== this.epochs[this.epochs.length - 1]?.term) {
        this.epochs.push({ term: entry.term, startOffset: entry.firstOffset });
      }
      this.end = entry.lastOffset;
      if (entry.kind === "config") {
        this.configs.push({ offset: entry.lastOffset, term: entry.term, config: entry.config! });
        newConfigs = true;
      }
      this.cache.push(entry);
      this.cacheUsed += entryBytes(entry);
    }
    this.evictCache();
    // Each entry's batch is appended as it is (the log queues appends in call order and writes them
    // together with one writev): no copy of the clients' bytes.
    const batches = entries.map((entry) => batchForEntry(entry, this.now()));
    const configs = configsChanged || newConfigs ? this.encodeConfigs() : undefined;
    if (snapshot === undefined && truncateAfter === undefined && !newConfigs && this.queuedSteps === 0) {
      // Nothing queued ahead: hand the batches to the log now. It keeps appends in call order and
      // writes all that queue up meanwhile with one writev, where a step per ready (waiting for the
      // previous write to land) would cost a writev each.
      const appended = appendAll(this.log, batches);
      this.chain = this.chain.then(() =>
        appended.catch((error: Error) => {
          this.failure ??= error;
        }),
      );
      return appended;
    }
    const step = async (): Promise<void> => {
      if (snapshot !== undefined) await this.installOnDisk(snapshot);
      if (truncateAfter !== undefined) {
        await this.log.truncateTo(truncateAfter + 1);
        if (configs !== undefined && !newConfigs) await this.stable.set(this.keys.configs, configs);
      }
      // The config index must never miss an entry the log holds: record it first.
      if (newConfigs) await this.stable.set(this.keys.configs, configs!);
      await appendAll(this.log, batches);
    };
    return this.enqueue(step);
  }

  /** Not behind the writes still queued: the host syncs only writes it has seen land. */
  async sync(options?: SyncOptions): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    await this.log.flush(options);
  }

  /**
   * Drop the log up to `offset` (a committed, applied entry boundary) behind a snapshot holding `data`
   * (empty for partitions, whose state is the log). The new snapshot position is durable before any
   * byte of the log is deleted.
   */
  compact(offset: number, data: Uint8Array): Promise<void> {
    return this.compactTo(offset, data).then(() => {});
  }

  /** `compact`, resolving to the segments the log really deleted. */
  private compactTo(offset: number, data: Uint8Array): Promise<RetentionResult["deleted"]> {
    if (offset <= this.meta.offset) {
      if (this.log.logStartOffset > offset) return Promise.resolve([]);
      // The snapshot position is there already but the log start was left behind it (its deletion
      // failed): the log catches up rather than keep the prefix for good.
      return this.enqueue(async () => (await this.log.advanceLogStartOffset(offset + 1)).deleted);
    }
    const term = this.termAt(offset);
    if (term === undefined) {
      return Promise.reject(
        new RangeError(`cannot compact to ${offset}: the log holds ${this.meta.offset + 1}..${this.end}`),
      );
    }
    const meta: SnapshotMeta = { offset, term, config: this.configAt(offset) };
    this.meta = meta;
    this.snapshotData = data;
    this.configs = this.configs.filter((entry) => entry.offset > offset);
    if (offset >= this.end) {
      this.epochs = [];
    } else {
      let first = 0;
      while (first + 1 < this.epochs.length && this.epochs[first + 1]!.startOffset <= offset + 1) first++;
      this.epochs = this.epochs.slice(first);
      this.epochs[0]!.startOffset = Math.max(this.epochs[0]!.startOffset, offset + 1);
    }
    if (this.cacheAfter < offset) this.trimCacheTo(offset);
    this.generation++;
    const configs = this.encodeConfigs();
    return this.enqueue(async () => {
      await this.stable.setMany([
        [this.keys.snapshot, encodeMeta(meta)],
        [this.keys.data, data.byteLength > 0 ? Buffer.from(data) : undefined],
        [this.keys.configs, configs],
      ]);
      return (await this.log.advanceLogStartOffset(offset + 1)).deleted;
    });
  }

  /**
   * Kafka retention (retention.ms / retention.bytes) for a partition group: deletes the oldest segments
   * wholly at or below `upToOffset` (pass commitIndex + 1, the high watermark), moving the Raft snapshot
   * position with them, so Raft never finds its log start deleted behind its back. The active segment
   * goes too (the log rolls it) once everything in the log is to go, as in Kafka. Returns only the
   * segments the log really deleted; a log that failed rejects with its failure.
   */
  async applyRetention(options: { upToOffset: number; now?: number }): Promise<RetentionResult> {
    await this.chain;
    if (this.failure !== undefined) throw this.failure;
    const config = this.log.currentConfig;
    const now = options.now ?? this.now();
    const candidates = this.log
      .segmentInfos()
      .filter((segment) => !segment.active || segment.sizeInBytes > 0)
      .map((segment) => ({
        baseOffset: segment.baseOffset,
        nextOffset: segment.nextOffset,
        sizeInBytes: segment.sizeInBytes,
        // A segment without record timestamps never expires by age here (only by size).
        retentionTimestamp: segment.maxTimestamp >= 0 ? segment.maxTimestamp : now,
      }));
    const selected = selectSegmentsToDelete(
      candidates,
      this.log.sizeInBytes,
      { retentionMs: config.retentionMs, retentionBytes: config.retentionBytes },
      now,
      Math.min(options.upToOffset, this.end + 1),
    );
    if (selected.length === 0) return { deleted: [], logStartOffset: this.log.logStartOffset };
    const reasons = new Map(selected.map((segment) => [segment.baseOffset, segment.reason]));
    const last = candidates[selected.length - 1]!;
    const removed = await this.compactTo(last.nextOffset - 1, new Uint8Array(0));
    const deleted = removed.map((segment) => ({
      ...segment,
      reason: reasons.get(segment.baseOffset) ?? segment.reason,
    }));
    return { deleted, logStartOffset: this.log.logStartOffset };
  }

  async close(): Promise<void> {
    await this.chain.catch(() => {});
    await this.log.close();
  }

  // ---------------------------------------------------------------------------------------------

  private enqueue<T>(step: () => Promise<T>): Promise<T> {
    this.queuedSteps++;
    const next = this.chain.then(step).finally(() => {
      this.queuedSteps--;
    });
    this.chain = next.then(
      () => {},
      (error: Error) => {
        this.failure ??= error;
      },
    );
    return next;
  }

  private async installOnDisk(snapshot: Snapshot): Promise<void> {
    const meta = encodeMeta(snapshot.meta);
    const data = snapshot.data.byteLength > 0 ? Buffer.from(snapshot.data) : undefined;
    await this.stable.setMany([
      [this.keys.pending, meta],
      [this.keys.pendingData, data],
    ]);
    await this.log.truncateFullyAndStartAt(snapshot.meta.offset + 1);
    await this.stable.setMany([
      [this.keys.snapshot, meta],
      [this.keys.data, data],
      [this.keys.configs, Buffer.from("[]")],
      [this.keys.pending, undefined],
      [this.keys.pendingData, undefined],
    ]);
  }

  private truncateInMemory(after: number): void {
    this.end = after;
    while (this.epochs.length > 0 && this.epochs[this.epochs.length - 1]!.startOffset > after)
      this.epochs.pop();
    while (this.configs.length > 0 && this.configs[this.configs.length - 1]!.offset > after)
      this.configs.pop();
    if (after < this.cacheAfter) {
      this.resetCache(after);
    } else {
      while (this.cache.length > 0 && this.cache[this.cache.length - 1]!.lastOffset > after) {
        this.cacheUsed -= entryBytes(this.cache.pop()!);
      }
    }
    this.generation++;
  }

  private resetCache(after: number): void {
    this.cache = [];
    this.cacheUsed = 0;
    this.cacheAfter = after;
    this.loaded = undefined;
    this.generation++;
  }

  private trimCacheTo(offset: number): void {
    while (this.cache.length > 0 && this.cache[0]!.lastOffset <= offset) {
      const entry = this.cache.shift()!;
      this.cacheUsed -= entryBytes(entry);
    }
    this.cacheAfter = Math.max(this.cacheAfter, offset);
  }

  private evictCache(): void {
    // The newest entry stays even when larger than the cache, unless there is no cache at all (a
    // one-member group sends entries to nobody; a kept payload would pin its whole request buffer).
    const keep = this.cacheBytes > 0 ? 1 : 0;
    let drop = 0;
    while (drop < this.cache.length - keep && this.cacheUsed > this.cacheBytes) {
      this.cacheUsed -= entryBytes(this.cache[drop]!);
      this.cacheAfter = this.cache[drop]!.lastOffset;
      drop++;
    }
    if (drop > 0) this.cache.splice(0, drop);
  }

  private load(after: number, maxBytes: number): void {
    const generation = this.generation;
    this.loading = { after, generation };
    const upTo = this.cacheAfter + 1;
    // After the writes already queued: the core may ask for entries it handed over a moment ago
    // (RaftOptions.releaseWrittenPayloads), which must be read back whole.
    this.chain
      .then(() => this.log.read(Math.max(after + 1, this.log.logStartOffset), maxBytes, upTo))
      .then(
        (result) => {
          if (generation !== this.generation) return;
          const entries = splitBatches(result.records)
            .map((batch) => entryFromBatch(Buffer.from(batch)))
            .filter((entry) => entry.lastOffset > after);
          this.loaded = { after, entries, generation };
        },
        () => {
          // Retention or a truncation moved the log under the read: the next request starts over.
        },
      )
      .finally(() => {
        this.loading = undefined;
        this.onLoaded?.();
      });
  }

  private configAt(offset: number): ClusterConfig {
    let config = this.meta.config;
    for (const entry of this.configs) {
      if (entry.offset > offset) break;
      config = entry.config;
    }
    return config;
  }

  private encodeConfigs(): Buffer {
    return Buffer.from(JSON.stringify(this.configs));
  }
}

/** Appends batches that already carry their offsets and term (no fsync: the host's round does that). */
function appendAll(log: PartitionLog, batches: readonly Buffer[]): Promise<void> {
  const options = { assignOffsets: false, waitForFlush: false } as const;
  if (batches.length === 1) return log.append(batches[0]!, options).then(() => {});
  return Promise.all(batches.map((batch) => log.append(batch, options))).then(() => {});
}

function takeFrom(entries: readonly Entry[], after: number, maxBytes: number): Entry[] {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (entries[middle]!.lastOffset > after) high = middle;
    else low = middle + 1;
  }
  const result: Entry[] = [];
  let bytes = 0;
  for (let index = low; index < entries.length; index++) {
    const entry = entries[index]!;
    const size = entryBytes(entry);
    if (result.length > 0 && bytes + size > maxBytes) break;
    result.push(entry);
    bytes += size;
  }
  return result;
}

function encodeMeta(meta: SnapshotMeta): Buffer {
  return Buffer.from(JSON.stringify({ offset: meta.offset, term: meta.term, config: meta.config }));
}

function parseMeta(bytes: Buffer, key: string): SnapshotMeta {
  try {
    const parsed = JSON.parse(bytes.toString()) as SnapshotMeta;
    if (
      !Number.isInteger(parsed.offset) ||
      !Number.isInteger(parsed.term) ||
      !Array.isArray(parsed.config?.voters)
    ) {
      throw new Error("missing fields");
    }
    return parsed;
  } catch (error) {
    throw new RaftStorageError(
      `stable store key ${key} does not hold a snapshot position (${(error as Error).message}); the store is damaged: remove this replica and let it rejoin`,
    );
  }
}

function parseConfigs(bytes: Buffer, key: string): StoredConfigEntry[] {
  try {
    const parsed = JSON.parse(bytes.toString()) as StoredConfigEntry[];
    if (!Array.isArray(parsed)) throw new Error("not a list");
    return parsed;
  } catch (error) {
    throw new RaftStorageError(
      `stable store key ${key} does not hold a config index (${(error as Error).message}); the store is damaged: remove this replica and let it rejoin`,
    );
  }
}

/** Term, vote and commit of every group in the node's StableStore (24 bytes a group). */
export class StableHardStateStore implements HardStateStore {
  constructor(private readonly stable: StableStore) {}

  load(group: GroupId): HardState | undefined {
    const bytes = this.stable.get(`${raftKeyPrefix(group)}hard-state`);
    if (bytes === undefined) return undefined;
    if (bytes.length !== 24) {
      throw new RaftStorageError(
        `hard state of group ${group} is ${bytes.length} bytes, expected 24; the stable store is damaged`,
      );
    }
    return { term: bytes.readDoubleBE(0), vote: bytes.readDoubleBE(8), commit: bytes.readDoubleBE(16) };
  }

  saveMany(states: ReadonlyMap<GroupId, HardState>, options?: SyncOptions): Promise<void> {
    const entries: Array<[string, Buffer]> = [];
    for (const [group, state] of states) {
      const bytes = Buffer.allocUnsafe(24);
      bytes.writeDoubleBE(state.term, 0);
      bytes.writeDoubleBE(state.vote, 8);
      bytes.writeDoubleBE(state.commit, 16);
      entries.push([`${raftKeyPrefix(group)}hard-state`, bytes]);
    }
    return this.stable.setMany(entries, options);
  }

  remove(group: GroupId): Promise<void> {
    return this.stable.delete(`${raftKeyPrefix(group)}hard-state`);
  }
}
