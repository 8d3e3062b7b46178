import { type FileHandle, open, stat, unlink } from "node:fs/promises";
import { scanBatches } from "./batch-scanner.js";
import type { DirectReads } from "./direct-reads.js";
import {
  DIRECT_WRITE_ALIGNMENT,
  DIRECT_WRITE_CHUNK_BYTES,
  DIRECT_WRITE_MAX_CHUNKS,
  DIRECT_WRITE_MIN_BYTES,
  type DirectWrites,
  refusesDirectWrites,
} from "./direct-writes.js";
import { invariant, type KafkaStorageError } from "./errors.js";
import type { CachedFile, FileHandleCache, FileTakenForSync } from "./file-handle-cache.js";
import { isNotFound, readFully, writevFully } from "./fs-util.js";
import type { ReadOptions } from "./partition-log.js";
import { preallocation } from "./preallocation.js";
import {
  BATCH_HEADER_SIZE,
  BATCH_LENGTH_POSITION,
  type BatchHeader,
  CURRENT_MAGIC,
  LAST_OFFSET_DELTA_POSITION,
  LOG_OVERHEAD,
  lastOffsetOf,
  MAGIC_POSITION,
  readBatchHeader,
} from "./record-batch-header.js";
import { DELETED_SUFFIX, type SegmentPaths, segmentPaths } from "./segment-files.js";
import { OFFSET_INDEX_ENTRY_SIZE, OffsetIndex, TIME_INDEX_ENTRY_SIZE, TimeIndex } from "./segment-index.js";

/** What the log knows about one batch it is about to write: header fields only, no records. */
export interface BatchPlacement {
  baseOffset: number;
  lastOffset: number;
  sizeInBytes: number;
  maxTimestamp: number;
  recordCount: number;
}

/** Settings a segment reads at the moment it needs them; the log updates them when config changes. */
export interface SegmentSettings {
  indexIntervalBytes: number;
  /** The node's shared pool of descriptors: segments hold none of their own. */
  files: FileHandleCache;
  /** Told when an index turned out unusable on load and was rebuilt from the log. */
  onIndexRebuilt?: (baseOffset: number, reason: string) => void;
  /** An fsync the descriptor cache made (to close one of this log's files) failed. */
  onSyncError?: (error: KafkaStorageError) => void;
  /** Whether large appends bypass the page cache; the node's switch and staging buffers. */
  directWrites?: DirectWrites;
  /** Whether reads of data not in the page cache bypass it; without it, none do. */
  directReads?: DirectReads;
  /** Reserve disk blocks ahead of large appends (`preallocate`); off when unset. */
  preallocate?: boolean;
  /** The log's `segment.bytes`: no block is reserved past it. */
  segmentBytes?: number;
  /**
   * Asked before each reservation of `bytes`: whether the disk can spare them (reserved blocks are
   * taken from it as written ones are, so the node's free-space guard must count them). When it
   * answers true the bytes are counted as taken. Unset: every reservation is made.
   */
  mayReserve?: (bytes: number) => boolean;
}

/** Bytes that cannot be a batch header where one must start: damage on disk, found by a read. */
export interface SegmentCorruption {
  corrupt: {
    path: string;
    /** Byte of the segment file where a batch should start and does not. */
    position: number;
    reason: string;
    /** The offset the batch at `position` should have started with. */
    firstLostOffset: number;
    /** The first offset a read can reach past the damage (an indexed batch, or the segment's end). */
    resumeOffset: number;
  };
}

export type SegmentRead =
  | { records: Buffer; firstOffset: number; nextOffset: number }
  | "none-here"
  | "limit"
  | "torn"
  | SegmentCorruption;

export interface SegmentRecovery {
  validBytes: number;
  removedBytes: number;
  /** Why the bytes after validBytes were cut, if any were. */
  problem?: string;
  /** Leader epoch changes seen in the valid batches, in order: [epoch, first offset]. */
  epochStarts: [number, number][];
  /**
   * Offsets the cut bytes held, when bytes were cut: from the first one missing, to the last one whose
   * batch header could still be read there (absent if none could).
   */
  lostOffsets?: { from: number; to?: number };
}

// Relative offsets in the indexes are int32.
export const MAX_RELATIVE_OFFSET = 2 ** 31 - 1;
const RECOVERY_CHUNK_SIZE = 1024 * 1024;
/**
 * Appends from this size up reserve blocks ahead of themselves, eight appends' worth within these
 * bounds: partitions that take large appends are the busy ones, and a node with thousands of quiet
 * partitions reserves nothing for them.
 */
const PREALLOCATE_MIN_APPEND_BYTES = 256 * 1024;
const PREALLOCATE_APPENDS_AHEAD = 8;
const PREALLOCATE_MAX_BYTES = 32 * 1024 * 1024;
const PAGE_BYTES = 4096;
/**
 * A file holding this much more disk than its length rounds up to holds reserved blocks past its end
 * (a few blocks more are the file system's own bookkeeping, as extent tree blocks).
 */
const RESERVED_BLOCKS_SLACK_BYTES = 64 * 1024;
const READ_AHEAD_BYTES = 32 * 1024;

/**
 * One segment: a `.log` file of whole batches plus its sparse `.index` and `.timeindex`. Descriptors
 * come from the node's FileHandleCache, opened on use and closed when the cache needs room, so an
 * idle segment holds none. Indexes are loaded into memory on first use (a lookup, or the first
 * append after opening), not when the log opens.
 */
export class LogSegment {
  paths: SegmentPaths;
  /** Bytes of whole batches in the log file. */
  size: number;
  /** Offset after the last batch (for a closed segment loaded without a scan: the next segment's base). */
  nextOffset: number;
  /** False until nextOffset is known: a segment loaded from disk before its end was found. */
  private endKnown = true;
  maxTimestamp = -1;
  /** Base offset of the batch that first reached maxTimestamp. */
  offsetOfMaxTimestamp = -1;
  /** maxTimestamp of the first batch: the segment's age for segment.ms. */
  firstBatchTimestamp = -1;
  readonly createdAtMs: number;
  lastModifiedMs: number;
  /** Rolled, but its index files are not yet fsynced and closed. */
  awaitingCloseSync = false;
  private bytesSinceLastIndexEntry = 0;
  private offsetIndex: OffsetIndex | undefined;
  private timeIndex: TimeIndex | undefined;
  private indexLoad: Promise<string | undefined> | undefined;
  /** The last offset index entry, read when the segment was loaded (before its index is). */
  private tailIndexEntry: { relativeOffset: number; position: number } = { relativeOffset: 0, position: 0 };
  private readonly logFile: CachedFile;
  /** The log file opened for direct writes, used by appends only (see writeDirect). */
  private readonly directLogFile: CachedFile;
  /**
   * The bytes of the log file's last partial page, [size rounded down to a page, size), kept by direct
   * appends so that the next one can rewrite that page whole; undefined when not known.
   */
  private lastPartialPage: Buffer | undefined;
  private readonly indexFile: CachedFile;
  private readonly timeIndexFile: CachedFile;
  /** End of the blocks this process reserved in the log file (0: none known). */
  private reservedEnd = 0;
  /** The reservation under way, if one is: truncation and rolling wait for it. */
  private reserving: Promise<void> | undefined;
  // The active segment's index entries reach their files lazily (at roll, truncation and clean
  // shutdown), not per append: after a crash the active segment is rescanned and its indexes rebuilt
  // anyway, so writing them eagerly would cost two extra syscalls per append for nothing.
  private offsetEntriesOnDisk = 0;
  private timeEntriesOnDisk = 0;
  private references = 0;
  private deletion: { resolve: () => void; promise: Promise<void> } | undefined;

  private constructor(
    readonly directory: string,
    readonly baseOffset: number,
    size: number,
    nowMs: number,
    private readonly settings: SegmentSettings,
  ) {
    this.paths = segmentPaths(directory, baseOffset);
    const onSyncError = (error: KafkaStorageError) => this.settings.onSyncError?.(error);
    this.logFile = settings.files.file(this.paths.log, { onSyncError });
    this.directLogFile = settings.files.file(this.paths.log, { direct: true });
    this.indexFile = settings.files.file(this.paths.index, { onSyncError });
    this.timeIndexFile = settings.files.file(this.paths.timeIndex, { onSyncError });
    this.size = size;
    this.nextOffset = baseOffset;
    this.createdAtMs = nowMs;
    this.lastModifiedMs = nowMs;
  }

  /** A new, empty, active segment (replacing any stale files of the same name). */
  static async create(
    directory: string,
    baseOffset: number,
    nowMs: number,
    settings: SegmentSettings,
  ): Promise<LogSegment> {
    const segment = new LogSegment(directory, baseOffset, 0, nowMs, settings);
    try {
      // One after another: an operation never holds one cached descriptor while waiting for another.
      await segment.logFile.create();
      await segment.indexFile.create();
      await segment.timeIndexFile.create();
    } catch (error) {
      await segment.close().catch(() => {});
      throw error;
    }
    segment.offsetIndex = new OffsetIndex();
    segment.timeIndex = new TimeIndex();
    return segment;
  }

  /**
   * An existing segment, without scanning it: size from the file, max timestamp from the last time
   * index entry. Returns why its indexes cannot be trusted, if a cheap check already shows that.
   */
  static async load(
    directory: string,
    baseOffset: number,
    nowMs: number,
    settings: SegmentSettings,
  ): Promise<{ segment: LogSegment; indexProblem?: string }> {
    const paths = segmentPaths(directory, baseOffset);
    const logStat = await stat(paths.log);
    if (holdsBlocksPastEnd(logStat)) {
      // Left by a process that stopped without closing the log (a crash, or a failed close): the disk
      // they take is the log's only on paper, and a node on a nearly full disk needs it to start.
      await settings.files.transient(() => releaseBlocksPastEnd(paths.log, logStat));
    }
    const segment = new LogSegment(directory, baseOffset, logStat.size, nowMs, settings);
    segment.endKnown = false;
    segment.lastModifiedMs = logStat.mtimeMs;
    const indexProblem = await segment.quickIndexCheck();
    return { segment, indexProblem };
  }

  /** Records where a closed segment ends (the next segment's base offset). */
  setEnd(nextOffset: number): void {
    this.nextOffset = nextOffset;
    this.endKnown = true;
  }

  get isDeleting(): boolean {
    return this.deletion !== undefined;
  }

  get hasIndexesLoaded(): boolean {
    return this.offsetIndex !== undefined && this.timeIndex !== undefined;
  }

  /** When retention.ms counts this segment's age from: its newest record, else its file time. */
  get retentionTimestamp(): number {
    return this.maxTimestamp >= 0 ? this.maxTimestamp : this.lastModifiedMs;
  }

  get rollReferenceTimestamp(): number {
    // Kafka ages a segment from its first batch's timestamp. Taking the later of that and the
    // creation time keeps producers with old timestamps from rolling a new segment per batch.
    return Math.max(this.firstBatchTimestamp, this.createdAtMs);
  }

  get offsetIndexEntries(): number {
    return this.offsetIndex?.entryCount ?? 0;
  }

  get timeIndexEntries(): number {
    return this.timeIndex?.entryCount ?? 0;
  }

  get indexSizeInBytes(): number {
    return (this.offsetIndex?.sizeInBytes ?? 0) + (this.timeIndex?.sizeInBytes ?? 0);
  }

  /** Pins the segment's files for a read; false if it is being deleted (re-resolve the segment). */
  acquire(): boolean {
    if (this.deletion) return false;
    this.references += 1;
    return true;
  }

  release(): void {
    invariant(this.references > 0, "segment released more often than acquired");
    this.references -= 1;
    if (this.references === 0 && this.deletion) this.deletion.resolve();
  }

  // ---- indexes ---------------------------------------------------------------------------------

  private async quickIndexCheck(): Promise<string | undefined> {
    let indexSize: number;
    let timeIndexSize: number;
    try {
      indexSize = (await stat(this.paths.index)).size;
      timeIndexSize = (await stat(this.paths.timeIndex)).size;
    } catch (error) {
      if (isNotFound(error)) return "index file missing";
      throw error;
    }
    if (indexSize % OFFSET_INDEX_ENTRY_SIZE !== 0)
      return `offset index size ${indexSize} is not whole entries`;
    if (timeIndexSize % TIME_INDEX_ENTRY_SIZE !== 0)
      return `time index size ${timeIndexSize} is not whole entries`;
    const files = this.settings.files;
    if (indexSize > 0) {
      const last = await files.transient(() =>
        readTail(this.paths.index, indexSize, OFFSET_INDEX_ENTRY_SIZE),
      );
      if (last.readInt32BE(4) >= this.size) return "offset index points past the end of the log";
      this.tailIndexEntry = { relativeOffset: last.readInt32BE(0), position: last.readInt32BE(4) };
    }
    if (timeIndexSize > 0) {
      const last = await files.transient(() =>
        readTail(this.paths.timeIndex, timeIndexSize, TIME_INDEX_ENTRY_SIZE),
      );
      this.maxTimestamp = Number(last.readBigInt64BE(0));
      this.offsetOfMaxTimestamp = this.baseOffset + last.readInt32BE(8);
    }
    return undefined;
  }

  /**
   * Loads both indexes, validating every entry; rebuilds them from the log if they are unusable.
   * Resolves to the reason for a rebuild, or undefined if the files were fine.
   */
  ensureIndexesLoaded(): Promise<string | undefined> {
    if (this.offsetIndex && this.timeIndex) return Promise.resolve(undefined);
    this.indexLoad ??= this.loadIndexes().finally(() => {
      this.indexLoad = undefined;
    });
    return this.indexLoad;
  }

  private async loadIndexes(): Promise<string | undefined> {
    let indexBytes: Buffer;
    let timeIndexBytes: Buffer;
    try {
      indexBytes = await this.indexFile.use(readWhole);
      timeIndexBytes = await this.timeIndexFile.use(readWhole);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      const cut = await this.rebuildIndexes();
      const reason = cut === undefined ? "index file missing" : `index file missing; segment ${cut}`;
      this.settings.onIndexRebuilt?.(this.baseOffset, reason);
      return reason;
    }
    const lastRelative = this.endKnown
      ? Math.max(0, this.nextOffset - this.baseOffset - 1)
      : MAX_RELATIVE_OFFSET;
    const problem =
      OffsetIndex.validate(indexBytes, this.size) ?? TimeIndex.validate(timeIndexBytes, lastRelative);
    if (problem !== undefined) {
      const cut = await this.rebuildIndexes();
      const reason = cut === undefined ? problem : `${problem}; segment ${cut}`;
      this.settings.onIndexRebuilt?.(this.baseOffset, reason);
      return reason;
    }
    this.offsetIndex = new OffsetIndex(indexBytes);
    this.timeIndex = new TimeIndex(timeIndexBytes);
    this.offsetEntriesOnDisk = this.offsetIndex.entryCount;
    this.timeEntriesOnDisk = this.timeIndex.entryCount;
    const lastTime = this.timeIndex.lastEntry();
    if (lastTime && lastTime.timestamp > this.maxTimestamp) {
      this.maxTimestamp = lastTime.timestamp;
      this.offsetOfMaxTimestamp = this.baseOffset + lastTime.relativeOffset;
    }
    return undefined;
  }

  /**
   * Rebuilds both indexes (and the stats they imply) by walking the batches; rewrites the files. Bytes
   * that are not a whole valid batch (a segment cut short or damaged on disk, found because its index no
   * longer fits) are cut off, as Kafka's segment recovery does: what follows them cannot be read in order
   * anyway. Returns what was cut, for the log's report; undefined when the segment was whole.
   */
  async rebuildIndexes(): Promise<string | undefined> {
    this.resetIndexState();
    const result = await this.logFile.use((handle) =>
      scanBatches(
        handle,
        0,
        this.size,
        { verifyCrc: false, chunkSize: RECOVERY_CHUNK_SIZE },
        (position, header) => {
          this.trackBatch(position, headerPlacement(header));
          return "continue";
        },
      ),
    );
    let cut: string | undefined;
    if (result.problem !== undefined) {
      cut = `cut at byte ${result.endPosition} of ${this.size}: ${result.problem}`;
      await truncateFile(this.logFile, result.endPosition);
      this.size = result.endPosition;
    }
    this.appendFinalTimeIndexEntry();
    await this.writeIndexFiles();
    return cut;
  }

  private resetIndexState(): void {
    this.endKnown = true;
    this.offsetIndex = new OffsetIndex();
    this.timeIndex = new TimeIndex();
    this.maxTimestamp = -1;
    this.offsetOfMaxTimestamp = -1;
    this.firstBatchTimestamp = -1;
    this.bytesSinceLastIndexEntry = 0;
    this.nextOffset = this.baseOffset;
  }

  /** A normally closed segment ends its time index with its max timestamp; rebuilt ones do too. */
  private appendFinalTimeIndexEntry(): void {
    if (this.maxTimestamp >= 0) {
      this.timeIndex!.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp - this.baseOffset);
    }
  }

  private async writeIndexFiles(): Promise<void> {
    for (const [file, index] of [
      [this.indexFile, this.offsetIndex!],
      [this.timeIndexFile, this.timeIndex!],
    ] as const) {
      await file.create();
      await file.use(async (handle) => {
        await writevFully(handle, [index.contents()], 0);
        file.markDirty();
      });
    }
    this.offsetEntriesOnDisk = this.offsetIndex!.entryCount;
    this.timeEntriesOnDisk = this.timeIndex!.entryCount;
  }

  /**
   * Updates the in-memory indexes and stats for a batch placed at `position` (Kafka's rule: an index
   * entry once more than index.interval.bytes were written since the last one).
   */
  private trackBatch(position: number, batch: BatchPlacement): void {
    const indexIntervalBytes = this.settings.indexIntervalBytes;
    if (this.nextOffset === this.baseOffset && position === 0) this.firstBatchTimestamp = batch.maxTimestamp;
    if (batch.maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = batch.maxTimestamp;
      this.offsetOfMaxTimestamp = batch.baseOffset;
    }
    if (this.bytesSinceLastIndexEntry > indexIntervalBytes) {
      this.offsetIndex!.append(batch.baseOffset - this.baseOffset, position);
      if (this.maxTimestamp >= 0) {
        this.timeIndex!.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp - this.baseOffset);
      }
      this.bytesSinceLastIndexEntry = 0;
    }
    this.bytesSinceLastIndexEntry += batch.sizeInBytes;
    this.nextOffset = batch.lastOffset + 1;
  }

  // ---- recovery --------------------------------------------------------------------------------

  /**
   * Walks every batch verifying length and CRC32C, cuts the file after the last good batch, and
   * rebuilds both indexes. `expectedFirstOffset` is where this segment's first batch must start.
   */
  async recover(): Promise<SegmentRecovery> {
    const epochStarts: [number, number][] = [];
    let expectedOffset = this.baseOffset;
    let lostUpTo: number | undefined;
    const result = await this.logFile.use(async (handle) => {
      this.size = (await handle.stat()).size;
      this.resetIndexState();
      const scan = await scanBatches(
        handle,
        0,
        this.size,
        { verifyCrc: true, chunkSize: RECOVERY_CHUNK_SIZE },
        (position, header) => {
          if (header.baseOffset < expectedOffset) {
            return {
              corrupt: `batch base offset ${header.baseOffset} is below the expected ${expectedOffset}`,
            };
          }
          if (lastOffsetOf(header) - this.baseOffset > MAX_RELATIVE_OFFSET) {
            return { corrupt: `batch last offset ${lastOffsetOf(header)} is too far from the segment base` };
          }
          const epoch = header.partitionLeaderEpoch;
          if (epoch >= 0) {
            const latest = epochStarts.at(-1)?.[0];
            if (latest !== undefined && epoch < latest) {
              return {
                corrupt: `leader epoch goes back from ${latest} to ${epoch} at offset ${header.baseOffset}`,
              };
            }
            if (latest !== epoch) epochStarts.push([epoch, header.baseOffset]);
          }
          this.trackBatch(position, headerPlacement(header));
          expectedOffset = lastOffsetOf(header) + 1;
          return "continue";
        },
      );
      if (this.size > scan.endPosition) {
        lostUpTo = await lastOffsetInCut(handle, scan.endPosition, this.size, expectedOffset);
        await handle.truncate(scan.endPosition);
        this.logFile.markDirty();
      }
      return scan;
    });
    const removedBytes = this.size - result.endPosition;
    this.size = result.endPosition;
    this.appendFinalTimeIndexEntry();
    await this.writeIndexFiles();
    return {
      validBytes: result.endPosition,
      removedBytes,
      ...(result.problem !== undefined ? { problem: result.problem } : {}),
      epochStarts,
      ...(removedBytes > 0
        ? { lostOffsets: { from: expectedOffset, ...(lostUpTo !== undefined ? { to: lostUpTo } : {}) } }
        : {}),
    };
  }

  /**
   * For the active segment after a clean shutdown: finds the log end by walking only the batches
   * after the last index entry. Returns a problem string if the tail is not clean.
   */
  async scanTail(): Promise<string | undefined> {
    // The last index entry is all the walk needs: the index itself loads when something uses it.
    const last = this.hasIndexesLoaded ? this.offsetIndex!.lookup(MAX_RELATIVE_OFFSET) : this.tailIndexEntry;
    this.nextOffset = this.baseOffset;
    this.endKnown = true;
    this.bytesSinceLastIndexEntry = 0;
    const result = await this.logFile.use(async (handle) => {
      if (this.size > 0) {
        const first = await readHeaderAt(handle, 0, this.size);
        if (first) this.firstBatchTimestamp = first.maxTimestamp;
      }
      return scanBatches(handle, last.position, this.size, { verifyCrc: false }, (_position, header) => {
        if (header.maxTimestamp > this.maxTimestamp) {
          this.maxTimestamp = header.maxTimestamp;
          this.offsetOfMaxTimestamp = header.baseOffset;
        }
        this.bytesSinceLastIndexEntry += header.sizeInBytes;
        this.nextOffset = lastOffsetOf(header) + 1;
        return "continue";
      });
    });
    return result.problem;
  }

  // ---- appends ---------------------------------------------------------------------------------

  /** Closes this segment's idle descriptors now (a closed, durable segment is rarely read again). */
  async releaseDescriptors(): Promise<void> {
    await this.indexFile.close();
    await this.timeIndexFile.close();
  }

  /** Room left before an index would exceed `maxEntries` entries. */
  indexFull(maxOffsetEntries: number, maxTimeEntries: number): boolean {
    return this.offsetIndexEntries >= maxOffsetEntries || this.timeIndexEntries >= maxTimeEntries - 1;
  }

  /**
   * Writes `buffers` (whole batches described by `batches`, in order) at the end of the segment with
   * one positional writev and updates the in-memory indexes. State is only advanced once the write
   * succeeded, so a failed write leaves the segment as it was.
   */
  async append(buffers: Buffer[], batches: BatchPlacement[], nowMs: number): Promise<void> {
    await this.ensureIndexesLoaded();
    const offsetIndex = this.offsetIndex!;
    const timeIndex = this.timeIndex!;
    const before = {
      size: this.size,
      nextOffset: this.nextOffset,
      maxTimestamp: this.maxTimestamp,
      offsetOfMaxTimestamp: this.offsetOfMaxTimestamp,
      firstBatchTimestamp: this.firstBatchTimestamp,
      bytesSinceLastIndexEntry: this.bytesSinceLastIndexEntry,
      offsetEntries: offsetIndex.entryCount,
      timeEntries: timeIndex.entryCount,
    };
    let position = this.size;
    for (const batch of batches) {
      invariant(
        batch.baseOffset >= this.nextOffset,
        () => `batch ${batch.baseOffset} overlaps the segment end`,
      );
      this.trackBatch(position, batch);
      position += batch.sizeInBytes;
    }
    try {
      const writeStarted = performance.now();
      if (!(await this.writeDirect(buffers, before.size, position))) {
        this.lastPartialPage = undefined;
        await this.logFile.use(async (handle) => {
          await writevFully(handle, buffers, before.size);
          this.logFile.markDirty();
        });
        this.settings.directWrites?.recordAppend(0, position - before.size);
      }
      this.settings.directWrites?.recordAppendWritten((performance.now() - writeStarted) / 1000);
    } catch (error) {
      this.lastPartialPage = undefined;
      this.nextOffset = before.nextOffset;
      this.maxTimestamp = before.maxTimestamp;
      this.offsetOfMaxTimestamp = before.offsetOfMaxTimestamp;
      this.firstBatchTimestamp = before.firstBatchTimestamp;
      this.bytesSinceLastIndexEntry = before.bytesSinceLastIndexEntry;
      offsetIndex.truncateEntries(before.offsetEntries);
      timeIndex.truncateEntries(before.timeEntries);
      throw error;
    }
    this.size = position;
    this.lastModifiedMs = nowMs;
    this.reserveAhead(position - before.size);
  }

  /**
   * After a large append, reserves the blocks the next few will need (see `preallocation`), in the
   * background: appends never wait for it, and if it is late or fails they are the same, only dearer.
   */
  private reserveAhead(appendedBytes: number): void {
    const settings = this.settings;
    if (!settings.preallocate || this.reserving !== undefined || appendedBytes < PREALLOCATE_MIN_APPEND_BYTES)
      return;
    const ahead = Math.min(PREALLOCATE_MAX_BYTES, appendedBytes * PREALLOCATE_APPENDS_AHEAD);
    if (this.reservedEnd - this.size >= ahead / 2) return;
    const limit = settings.segmentBytes ?? Number.MAX_SAFE_INTEGER;
    const start = Math.max(this.reservedEnd, Math.floor(this.size / PAGE_BYTES) * PAGE_BYTES);
    const end = Math.min(limit, this.size + ahead);
    if (end <= start || preallocation.unavailableReason !== undefined) return;
    if (settings.mayReserve !== undefined && !settings.mayReserve(end - start)) return;
    this.reserving = this.logFile
      .use((handle) => preallocation.reserve(handle.fd, start, end - start))
      .then(
        (reserved) => {
          if (reserved) this.reservedEnd = end;
        },
        () => {},
      )
      .finally(() => {
        this.reserving = undefined;
      });
  }

  /**
   * Gives back the blocks reserved past the end of the file (truncating a file to its own length frees
   * them), so that a rolled segment, and the active one when its log closes, takes no more disk than
   * its bytes. The file's own length, not the log's: after a failed write the bytes past the log's end
   * are for recovery to judge, not for this to cut.
   */
  async releaseReservedBlocks(): Promise<void> {
    await this.reserving;
    if (this.reservedEnd <= this.size && !this.settings.preallocate) return;
    this.reservedEnd = 0;
    await this.logFile.use(async (handle) => handle.truncate((await handle.stat()).size));
  }

  /**
   * Writes an append's whole pages with direct writes, from the page that holds `start` when its first
   * bytes are known (else from the next page boundary, the bytes before it through the page cache),
   * and the partial page at the end through the page cache, so that the file never holds more than
   * the log's bytes. False if the append is too small, or direct writes are off (then nothing was
   * written). A direct write over the page the previous append left partial makes the kernel write
   * that page back first; it stays correct because the rewrite carries the same bytes.
   */
  private async writeDirect(buffers: Buffer[], start: number, end: number): Promise<boolean> {
    const direct = this.settings.directWrites;
    if (direct === undefined || !direct.enabled) return false;
    const page = DIRECT_WRITE_ALIGNMENT;
    const known = this.lastPartialPage;
    const directStart = known !== undefined ? start - known.length : Math.ceil(start / page) * page;
    const directEnd = Math.floor(end / page) * page;
    if (directEnd - directStart < DIRECT_WRITE_MIN_BYTES) return false;
    const head: Buffer[] = [];
    const tail: Buffer[] = [];
    const chunks: Buffer[] = [];
    let staging: Buffer[] = [];
    try {
      const count = Math.ceil((directEnd - directStart) / DIRECT_WRITE_CHUNK_BYTES);
      const taken = direct.takeStaging(count);
      if (taken === undefined) return false;
      staging = taken;
      for (let index = 0; index < count; index++) {
        const from = directStart + index * DIRECT_WRITE_CHUNK_BYTES;
        chunks.push(taken[index]!.subarray(0, Math.min(DIRECT_WRITE_CHUNK_BYTES, directEnd - from)));
      }
      // Scatter the append's bytes: before directStart (page cache), into the staging buffers, after
      // directEnd (page cache). The pieces outside are views; the staging buffers are copies.
      let position = start;
      if (known !== undefined) known.copy(chunks[0]!, 0);
      for (const buffer of buffers) {
        let offset = 0;
        while (offset < buffer.length) {
          const at = position + offset;
          if (at < directStart) {
            const length = Math.min(buffer.length - offset, directStart - at);
            head.push(buffer.subarray(offset, offset + length));
            offset += length;
          } else if (at < directEnd) {
            const chunk = chunks[Math.floor((at - directStart) / DIRECT_WRITE_CHUNK_BYTES)]!;
            const into = (at - directStart) % DIRECT_WRITE_CHUNK_BYTES;
            offset += buffer.copy(
              chunk,
              into,
              offset,
              offset + Math.min(buffer.length - offset, chunk.length - into),
            );
          } else {
            tail.push(buffer.subarray(offset));
            offset = buffer.length;
          }
        }
        position += buffer.length;
      }
      if (head.length > 0) {
        await this.logFile.use(async (handle) => {
          await writevFully(handle, head, start);
          this.logFile.markDirty();
        });
      }
      try {
        for (let first = 0; first < chunks.length; first += DIRECT_WRITE_MAX_CHUNKS) {
          const group = chunks.slice(first, first + DIRECT_WRITE_MAX_CHUNKS);
          const at = directStart + first * DIRECT_WRITE_CHUNK_BYTES;
          await this.directLogFile.use((handle) => writevFully(handle, group, at));
        }
      } catch (error) {
        if (!refusesDirectWrites(error)) throw error;
        direct.disable(`a direct write to ${this.paths.log} was refused (${(error as Error).message})`);
        await this.directLogFile.close();
        return false;
      }
      // Always taken: the fsync that makes the direct writes durable (the new file size) goes through it.
      await this.logFile.use(async (handle) => {
        if (tail.length > 0) await writevFully(handle, tail, directEnd);
        this.logFile.markDirty();
      });
      this.lastPartialPage = Buffer.concat(tail, end - directEnd);
      const pageCacheBytes = end - directEnd + Math.max(0, directStart - start);
      direct.recordAppend(end - start - pageCacheBytes, pageCacheBytes);
      return true;
    } finally {
      direct.giveStaging(staging);
    }
  }

  /** Writes the index entries not yet in the index files. */
  async persistIndexes(): Promise<void> {
    if (!this.hasIndexesLoaded) return;
    const offsetIndex = this.offsetIndex!;
    const timeIndex = this.timeIndex!;
    const offsetCount = offsetIndex.entryCount;
    const timeCount = timeIndex.entryCount;
    if (offsetCount > this.offsetEntriesOnDisk) {
      const from = this.offsetEntriesOnDisk * OFFSET_INDEX_ENTRY_SIZE;
      const bytes = Buffer.from(offsetIndex.contents().subarray(from, offsetCount * OFFSET_INDEX_ENTRY_SIZE));
      await this.indexFile.use(async (handle) => {
        await writevFully(handle, [bytes], from);
        this.indexFile.markDirty();
      });
    }
    if (timeCount > this.timeEntriesOnDisk) {
      const from = this.timeEntriesOnDisk * TIME_INDEX_ENTRY_SIZE;
      const bytes = Buffer.from(timeIndex.contents().subarray(from, timeCount * TIME_INDEX_ENTRY_SIZE));
      await this.timeIndexFile.use(async (handle) => {
        await writevFully(handle, [bytes], from);
        this.timeIndexFile.markDirty();
      });
    }
    this.offsetEntriesOnDisk = Math.max(this.offsetEntriesOnDisk, offsetCount);
    this.timeEntriesOnDisk = Math.max(this.timeEntriesOnDisk, timeCount);
  }

  /**
   * Stops appends: adds the final time index entry (so the segment's max timestamp survives a
   * restart without a scan) and returns the files the next flush must make durable.
   */
  async closeForAppends(): Promise<void> {
    await this.releaseReservedBlocks();
    await this.directLogFile.close();
    this.lastPartialPage = undefined;
    await this.ensureIndexesLoaded();
    this.appendFinalTimeIndexEntry();
    await this.persistIndexes();
    // Both indexes are fsynced with the segment even if no entry was written since their creation
    // (which may have truncated a stale file of the same name).
    for (const file of [this.indexFile, this.timeIndexFile]) await file.use(async () => file.markDirty());
    this.awaitingCloseSync = true;
  }

  /**
   * Files a flush round must fsync for this segment, pinned until the round releases them, their
   * dirty marks cleared. The active segment's index files are left out: a crash rebuilds them.
   */
  takeDirtyFiles(): FileTakenForSync[] {
    const files: FileTakenForSync[] = [];
    const candidates = this.awaitingCloseSync
      ? [this.logFile, this.indexFile, this.timeIndexFile]
      : [this.logFile];
    for (const file of candidates) {
      const taken = file.takeForSync();
      if (taken !== undefined) files.push(taken);
    }
    return files;
  }

  // ---- reads -----------------------------------------------------------------------------------

  /**
   * Position and header of the first batch whose last offset is >= `offset` (the batch containing
   * it, or the next one), or undefined if no batch in this segment reaches that far.
   */
  async findBatch(offset: number): Promise<{ position: number; header: BatchHeader } | undefined> {
    const hit = await this.locateBatch(offset);
    return typeof hit === "object" && "header" in hit ? hit : undefined;
  }

  /**
   * As findBatch, but says why the walk stopped short: at a batch cut short by the end of the file
   * ("torn"), or at bytes that cannot be a batch header (damage on disk).
   */
  private async locateBatch(
    offset: number,
  ): Promise<{ position: number; header: BatchHeader } | "torn" | SegmentCorruption | undefined> {
    await this.ensureIndexesLoaded();
    const sizeNow = this.size;
    const start = this.offsetIndex!.lookup(
      Math.min(Math.max(0, offset - this.baseOffset), MAX_RELATIVE_OFFSET),
    );
    let found: { position: number; header: BatchHeader } | undefined;
    let expectedOffset = this.baseOffset + start.relativeOffset;
    const scan = await this.logFile.use((handle) =>
      scanBatches(handle, start.position, sizeNow, { verifyCrc: false }, (position, header) => {
        if (lastOffsetOf(header) < offset) {
          expectedOffset = lastOffsetOf(header) + 1;
          return "continue";
        }
        found = { position, header };
        return "stop";
      }),
    );
    if (found !== undefined) return found;
    if (scan.problem === undefined) return undefined;
    // Look again at the bytes the scan refused: a header that is fine but runs past the end is a
    // torn batch, anything else is damage.
    const position = scan.endPosition;
    const head = Buffer.alloc(BATCH_HEADER_SIZE);
    const read = await this.logFile.use((handle) =>
      readFully(handle, head, 0, Math.min(BATCH_HEADER_SIZE, sizeNow - position), position),
    );
    if (read <= MAGIC_POSITION) return "torn";
    const problem = implausibleBatchHeader(head, 0, expectedOffset);
    if (problem !== undefined) return this.corruptionAt(position, problem, expectedOffset);
    if (position + head.readInt32BE(BATCH_LENGTH_POSITION) + LOG_OVERHEAD > sizeNow) return "torn";
    return this.corruptionAt(position, scan.problem, expectedOffset);
  }

  /**
   * Describes damage found at byte `position`, where a batch starting at `firstLostOffset` should be:
   * reads resume at the first indexed batch past it (its index entry was written when the batch was),
   * or, failing one, at the segment's end.
   */
  private corruptionAt(position: number, reason: string, firstLostOffset: number): SegmentCorruption {
    const next = this.offsetIndex!.firstEntryAfter(position);
    const resumeOffset = next === undefined ? this.nextOffset : this.baseOffset + next.relativeOffset;
    return { corrupt: { path: this.paths.log, position, reason, firstLostOffset, resumeOffset } };
  }

  /**
   * Whole batches starting with the one that reaches `offset`: at least that batch (Kafka's rule, so
   * a consumer always progresses) unless `options.minOneBatch` is false, then more while they fit in
   * `maxBytes`, none reaching `limitOffset`. Without minOneBatch a first batch larger than `maxBytes`
   * answers "limit", and its bytes beyond what the first read covered are never read.
   */
  async read(
    offset: number,
    maxBytes: number,
    limitOffset: number,
    allocate: (size: number) => Buffer = Buffer.allocUnsafe,
    options?: ReadOptions,
  ): Promise<SegmentRead> {
    await this.ensureIndexesLoaded();
    return this.logFile.use((handle) =>
      this.readWith(handle, offset, maxBytes, limitOffset, allocate, options),
    );
  }

  private async readWith(
    handle: FileHandle,
    offset: number,
    maxBytes: number,
    limitOffset: number,
    allocate: (size: number) => Buffer,
    options: ReadOptions | undefined,
  ): Promise<SegmentRead> {
    const sizeNow = this.size;
    const start = this.offsetIndex!.lookup(
      Math.min(Math.max(0, offset - this.baseOffset), MAX_RELATIVE_OFFSET),
    );
    const minOneBatch = options?.minOneBatch ?? true;
    // One read normally covers the walk from the index entry to the wanted batch and the batches
    // to return; a second read happens only when the guess was short. Without minOneBatch the guess
    // never goes past `maxBytes` (a batch that does not fit is not read), and header-first it covers
    // only the walk and the first header: that header alone when the index entry is the wanted batch.
    const walk =
      this.baseOffset + start.relativeOffset === offset && !minOneBatch && options?.headerFirst === true
        ? 0
        : this.settings.indexIntervalBytes;
    const ahead = minOneBatch
      ? Math.max(maxBytes, READ_AHEAD_BYTES)
      : options?.headerFirst === true
        ? BATCH_HEADER_SIZE
        : maxBytes;
    const guess = Math.min(sizeNow - start.position, ahead + walk);
    let bufferStart = start.position;
    let buffer = await this.readRange(handle, allocate, bufferStart, Math.max(0, guess), options);
    let bufferLength = buffer.length;
    let at = 0;
    let expectedOffset = this.baseOffset + start.relativeOffset;
    let found: { size: number; baseOffset: number; lastOffset: number } | undefined;
    while (at + BATCH_HEADER_SIZE <= bufferLength) {
      // Per batch header, never per record: without it a zero-filled region is walked 12 bytes at a
      // time into garbage, and the read answers nothing, forever, instead of failing.
      const problem = implausibleBatchHeader(buffer, at, expectedOffset);
      if (problem !== undefined) return this.corruptionAt(bufferStart + at, problem, expectedOffset);
      const size = buffer.readInt32BE(at + BATCH_LENGTH_POSITION) + LOG_OVERHEAD;
      const baseOffset = Number(buffer.readBigInt64BE(at));
      const lastOffset = baseOffset + buffer.readInt32BE(at + LAST_OFFSET_DELTA_POSITION);
      if (lastOffset >= offset) {
        found = { size, baseOffset, lastOffset };
        break;
      }
      // A batch before the wanted one runs past the end: the segment was cut short there.
      if (bufferStart + at + size > sizeNow) return "torn";
      at += size;
      expectedOffset = lastOffset + 1;
    }
    if (!found) {
      if (bufferStart + at >= sizeNow) return "none-here";
      // The buffer holds the file's end, and what is left there is not even a batch header: cut short.
      if (bufferStart + bufferLength >= sizeNow && at < bufferLength) return "torn";
      // The walk left the buffer: fall back to a chunked scan for the batch.
      const hit = await this.locateBatch(offset);
      if (hit === undefined) return "none-here";
      if (hit === "torn" || "corrupt" in hit) return hit;
      found = {
        size: hit.header.sizeInBytes,
        baseOffset: hit.header.baseOffset,
        lastOffset: lastOffsetOf(hit.header),
      };
      at = hit.position - bufferStart;
    }
    if (found.lastOffset >= limitOffset) return "limit";
    if (!minOneBatch && found.size > maxBytes) return "limit";
    const wanted = Math.min(sizeNow - (bufferStart + at), Math.max(maxBytes, found.size));
    if (at + wanted > bufferLength) {
      bufferStart += at;
      buffer = await this.readRange(handle, allocate, bufferStart, wanted, options);
      bufferLength = buffer.length;
      at = 0;
    }
    const end = at + Math.min(wanted, bufferLength - at);
    let cut = at;
    let nextOffset = found.baseOffset;
    while (cut + BATCH_HEADER_SIZE <= end) {
      // Damage after the first batch ends the answer there; the next read, from there, reports it.
      if (implausibleBatchHeader(buffer, cut, nextOffset) !== undefined) break;
      const size = buffer.readInt32BE(cut + BATCH_LENGTH_POSITION) + LOG_OVERHEAD;
      if (cut + size > end) break;
      const last = Number(buffer.readBigInt64BE(cut)) + buffer.readInt32BE(cut + LAST_OFFSET_DELTA_POSITION);
      if (last >= limitOffset) break;
      cut += size;
      nextOffset = last + 1;
    }
    if (cut === at) {
      // The batch runs past the end of the file: a truncation racing this read shortened it, or (in a
      // closed segment) the file was cut short on disk. The caller knows which.
      if (bufferStart + at + found.size > sizeNow && found.lastOffset < limitOffset) return "torn";
      return "limit";
    }
    return { records: buffer.subarray(at, cut), firstOffset: found.baseOffset, nextOffset };
  }

  /** Up to `length` bytes from `position` (fewer only at the end of the file), past the page cache if not in it. */
  private async readRange(
    handle: FileHandle,
    allocate: (size: number) => Buffer,
    position: number,
    length: number,
    options: ReadOptions | undefined,
  ): Promise<Buffer> {
    const directReads = this.settings.directReads;
    if (directReads !== undefined) {
      return directReads.read(handle, allocate, position, length, options?.onDirectRead);
    }
    const buffer = allocate(length);
    return buffer.subarray(0, await readFully(handle, buffer, 0, length, position));
  }

  /**
   * The first batch with maxTimestamp >= `timestamp`, found via the time index; "torn" if the walk met
   * a batch cut short by the end of the file before finding one, the damage if it met bytes that cannot
   * be a batch (answering with a later batch instead would skip the records behind the damage).
   */
  async findByTimestamp(
    timestamp: number,
    fromOffset = 0,
  ): Promise<BatchHeader | "torn" | SegmentCorruption | undefined> {
    await this.ensureIndexesLoaded();
    // Every batch before the time index's answer is too old and every batch before `fromOffset` is gone:
    // the walk starts at whichever is later (Kafka's LogSegment.findOffsetByTimestamp does the same).
    const scanFromRelative = Math.max(
      this.timeIndex!.lookupScanStart(timestamp),
      Math.min(Math.max(0, fromOffset - this.baseOffset), MAX_RELATIVE_OFFSET),
    );
    const start = this.offsetIndex!.lookup(scanFromRelative);
    const sizeNow = this.size;
    let found: BatchHeader | undefined;
    let expectedOffset = this.baseOffset + start.relativeOffset;
    const scan = await this.logFile.use((handle) =>
      scanBatches(handle, start.position, sizeNow, { verifyCrc: false }, (_position, header) => {
        // Batches wholly below the log start (DeleteRecords inside this segment) are gone for readers.
        if (header.maxTimestamp < timestamp || header.baseOffset + header.lastOffsetDelta < fromOffset) {
          expectedOffset = lastOffsetOf(header) + 1;
          return "continue";
        }
        found = header;
        return "stop";
      }),
    );
    if (found !== undefined || scan.problem === undefined) return found;
    // The same judgement as a read's: let the walk for the first offset past the scan's decide.
    const hit = await this.locateBatch(expectedOffset);
    if (hit === undefined || (typeof hit === "object" && "header" in hit)) return undefined;
    return hit;
  }

  /**
   * ListOffsets -3 when the log start is inside this segment: the largest maxTimestamp among the batches
   * that reach `fromOffset`, and the base offset of the first of them to have it. The running maximum kept
   * in memory and in the time index covers the deleted batches too, so unless it lies at or after
   * `fromOffset` the batch headers from there to the segment's end are walked (never the records).
   */
  async maxTimestampFrom(
    fromOffset: number,
  ): Promise<{ timestamp: number; offset: number } | SegmentCorruption | undefined> {
    if (this.offsetOfMaxTimestamp >= fromOffset) {
      return { timestamp: this.maxTimestamp, offset: this.offsetOfMaxTimestamp };
    }
    await this.ensureIndexesLoaded();
    const start = this.offsetIndex!.lookup(
      Math.min(Math.max(0, fromOffset - this.baseOffset), MAX_RELATIVE_OFFSET),
    );
    const sizeNow = this.size;
    let best: { timestamp: number; offset: number } | undefined;
    let expectedOffset = this.baseOffset + start.relativeOffset;
    const scan = await this.logFile.use((handle) =>
      scanBatches(handle, start.position, sizeNow, { verifyCrc: false }, (_position, header) => {
        expectedOffset = lastOffsetOf(header) + 1;
        if (lastOffsetOf(header) >= fromOffset && header.maxTimestamp > (best?.timestamp ?? -1)) {
          best = { timestamp: header.maxTimestamp, offset: header.baseOffset };
          // Nothing later in the segment can be larger than its running maximum.
          if (best.timestamp >= this.maxTimestamp) return "stop";
        }
        return "continue";
      }),
    );
    if (scan.problem === undefined) return best;
    // As a read would: a batch cut short ends the segment, damage fails the lookup (answering from the
    // batches before it could name a smaller maximum than the records behind the damage hold).
    const hit = await this.locateBatch(expectedOffset);
    if (typeof hit === "object" && "corrupt" in hit) return hit;
    return best;
  }

  // ---- truncation and deletion -----------------------------------------------------------------

  /**
   * Removes the batch containing `offset` and everything after it (so the cut always lands on a
   * batch boundary). Returns the new next offset and the bytes removed.
   */
  async truncateTo(offset: number): Promise<{ nextOffset: number; removedBytes: number }> {
    await this.ensureIndexesLoaded();
    this.awaitingCloseSync = false;
    const found = await this.locateBatch(offset);
    if (typeof found === "object" && "corrupt" in found) {
      // The bytes from the damage on cannot be walked, so where `offset`'s batch starts is unknown:
      // cutting there could keep entries the truncation must remove, cutting at the damage could drop
      // committed ones. Refuse; the log fails and says why.
      const { path, position, reason } = found.corrupt;
      throw new Error(
        `cannot truncate ${path} to offset ${offset}: the segment is damaged at byte ${position} (${reason}), before that offset; stop the broker and restore the segment file from a backup`,
      );
    }
    const hit = typeof found === "object" ? found : undefined;
    if (!hit) return { nextOffset: this.nextOffset, removedBytes: 0 };
    const cut = hit.position;
    const removedBytes = this.size - cut;
    this.lastPartialPage = undefined;
    // Truncating also frees the blocks reserved past the cut.
    await this.reserving;
    this.reservedEnd = 0;
    await truncateFile(this.logFile, cut);
    this.size = cut;
    const relative = hit.header.baseOffset - this.baseOffset;
    this.offsetIndex!.truncateFrom(relative);
    this.timeIndex!.truncateFrom(relative);
    this.offsetEntriesOnDisk = Math.min(this.offsetEntriesOnDisk, this.offsetIndex!.entryCount);
    this.timeEntriesOnDisk = Math.min(this.timeEntriesOnDisk, this.timeIndex!.entryCount);
    await truncateFile(this.indexFile, this.offsetEntriesOnDisk * OFFSET_INDEX_ENTRY_SIZE);
    await truncateFile(this.timeIndexFile, this.timeEntriesOnDisk * TIME_INDEX_ENTRY_SIZE);
    // Recompute the end and the max timestamp from what is left: the time index holds the running
    // maximum up to its last entry, the tail after the last offset index entry is walked.
    this.maxTimestamp = -1;
    this.offsetOfMaxTimestamp = -1;
    this.firstBatchTimestamp = -1;
    const lastTime = this.timeIndex!.lastEntry();
    if (lastTime) {
      this.maxTimestamp = lastTime.timestamp;
      this.offsetOfMaxTimestamp = this.baseOffset + lastTime.relativeOffset;
    }
    const problem = await this.scanTail();
    invariant(
      problem === undefined,
      () => `segment ${this.paths.log} tail unreadable after truncation: ${problem}`,
    );
    if (this.size === 0) this.nextOffset = this.baseOffset;
    return { nextOffset: this.nextOffset, removedBytes };
  }

  /**
   * Takes the segment out of service: renames its files to `.deleted` right away (so a new segment
   * may reuse the name and a restart never resurrects it), and unlinks them once no read holds them.
   * Readers that pinned it meanwhile reopen its descriptors under the new names if they must.
   */
  async markForDeletion(): Promise<void> {
    invariant(!this.deletion, "segment deleted twice");
    let resolve!: () => void;
    const promise = new Promise<void>((done) => {
      resolve = done;
    });
    this.deletion = { resolve, promise };
    if (this.references === 0) resolve();
    // An index load in flight must finish before its files change names.
    await this.indexLoad?.catch(() => undefined);
    // Only appends use it, and a segment being deleted takes none.
    await this.directLogFile.close();
    const renamed: SegmentPaths = {
      log: this.paths.log + DELETED_SUFFIX,
      index: this.paths.index + DELETED_SUFFIX,
      timeIndex: this.paths.timeIndex + DELETED_SUFFIX,
    };
    for (const [file, to] of [
      [this.logFile, renamed.log],
      [this.indexFile, renamed.index],
      [this.timeIndexFile, renamed.timeIndex],
    ] as const) {
      try {
        await file.rename(to);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
    this.paths = renamed;
  }

  /** Completes a deletion once readers are gone: closes descriptors and unlinks the renamed files. */
  async finishDeletion(): Promise<void> {
    invariant(this.deletion, "finishDeletion before markForDeletion");
    await this.deletion.promise;
    await this.close();
    await Promise.all(
      [this.paths.log, this.paths.index, this.paths.timeIndex].map((path) =>
        unlink(path).catch((error) => {
          if (!isNotFound(error)) throw error;
        }),
      ),
    );
  }

  /** Closes the segment's descriptors (once their current users are done). */
  async close(): Promise<void> {
    await Promise.all([
      this.logFile.close(),
      this.directLogFile.close(),
      this.indexFile.close(),
      this.timeIndexFile.close(),
    ]);
  }

  /**
   * Writes pending index entries and fsyncs the segment's files now: all three with `force`
   * (recovery: what was re-read may exist only in a crashed process's page cache), else only those
   * with writes not yet fsynced (clean shutdown).
   */
  async syncAll(options: { force?: boolean } = {}): Promise<void> {
    await this.persistIndexes();
    const onlyIfDirty = !options.force;
    await this.logFile.sync({ onlyIfDirty });
    await this.indexFile.sync({ onlyIfDirty });
    await this.timeIndexFile.sync({ onlyIfDirty });
  }
}

/**
 * Why the bytes at `at` of `buffer` cannot start the batch that follows one ending below
 * `expectedOffset`, or undefined when they can: length below the v2 header, magic not 2, offsets going
 * back. A few field reads per batch header; needs the first MAGIC_POSITION + 1 bytes, or a whole
 * header for the last-offset check.
 */
function implausibleBatchHeader(buffer: Buffer, at: number, expectedOffset: number): string | undefined {
  const batchLength = buffer.readInt32BE(at + BATCH_LENGTH_POSITION);
  if (batchLength + LOG_OVERHEAD < BATCH_HEADER_SIZE) {
    return `batch length ${batchLength} is smaller than the ${BATCH_HEADER_SIZE - LOG_OVERHEAD}-byte minimum of a v2 batch`;
  }
  const magic = buffer.readInt8(at + MAGIC_POSITION);
  if (magic !== CURRENT_MAGIC) return `magic byte is ${magic}, not ${CURRENT_MAGIC}`;
  const baseOffset = Number(buffer.readBigInt64BE(at));
  if (baseOffset < expectedOffset) {
    return `base offset ${baseOffset} is below ${expectedOffset}, where the batch before it ended`;
  }
  if (buffer.length >= at + BATCH_HEADER_SIZE && buffer.readInt32BE(at + LAST_OFFSET_DELTA_POSITION) < 0) {
    return `last offset delta ${buffer.readInt32BE(at + LAST_OFFSET_DELTA_POSITION)} is negative`;
  }
  return undefined;
}

function headerPlacement(header: BatchHeader): BatchPlacement {
  return {
    baseOffset: header.baseOffset,
    lastOffset: lastOffsetOf(header),
    sizeInBytes: header.sizeInBytes,
    maxTimestamp: header.maxTimestamp,
    recordCount: header.recordCount,
  };
}

/** The whole file, by positional reads (cached descriptors are shared: never move their offset). */
async function readWhole(handle: FileHandle): Promise<Buffer> {
  const { size } = await handle.stat();
  const buffer = Buffer.allocUnsafe(size);
  const read = await readFully(handle, buffer, 0, size, 0);
  return buffer.subarray(0, read);
}

async function readHeaderAt(
  handle: FileHandle,
  position: number,
  size: number,
): Promise<BatchHeader | undefined> {
  if (position + BATCH_HEADER_SIZE > size) return undefined;
  const buffer = Buffer.allocUnsafe(BATCH_HEADER_SIZE);
  const read = await readFully(handle, buffer, 0, BATCH_HEADER_SIZE, position);
  if (read < BATCH_HEADER_SIZE) return undefined;
  return readBatchHeader(buffer, 0);
}

/**
 * The last offset named by the batch headers that still read as such in the bytes [from, to) about to
 * be cut (a torn last batch keeps its header; bytes that fail their CRC often keep theirs): what a
 * recovery cut loses, for its report. Undefined when not even the first header there is readable.
 */
async function lastOffsetInCut(
  handle: FileHandle,
  from: number,
  to: number,
  expectedOffset: number,
): Promise<number | undefined> {
  const head = Buffer.alloc(BATCH_HEADER_SIZE);
  let position = from;
  let expected = expectedOffset;
  let last: number | undefined;
  while (position + LAST_OFFSET_DELTA_POSITION + 4 <= to) {
    head.fill(0);
    await readFully(handle, head, 0, Math.min(BATCH_HEADER_SIZE, to - position), position);
    if (implausibleBatchHeader(head, 0, expected) !== undefined) break;
    last = Number(head.readBigInt64BE(0)) + head.readInt32BE(LAST_OFFSET_DELTA_POSITION);
    expected = last + 1;
    position += head.readInt32BE(BATCH_LENGTH_POSITION) + LOG_OVERHEAD;
  }
  return last;
}

async function truncateFile(file: CachedFile, length: number): Promise<void> {
  await file.use(async (handle) => {
    await handle.truncate(length);
    file.markDirty();
  });
}

/** Whether a file takes more disk than its length needs: blocks reserved past its end. */
function holdsBlocksPastEnd(info: { size: number; blocks: number }): boolean {
  const needed = Math.ceil(info.size / PAGE_BYTES) * PAGE_BYTES;
  return info.blocks * 512 > needed + RESERVED_BLOCKS_SLACK_BYTES;
}

/** Frees the blocks past the end of `path`, keeping its modification time (retention may age the segment by it). */
async function releaseBlocksPastEnd(
  path: string,
  info: { size: number; atime: Date; mtime: Date },
): Promise<void> {
  const handle = await open(path, "r+");
  try {
    await handle.truncate(info.size);
    await handle.utimes(info.atime, info.mtime);
  } finally {
    await handle.close();
  }
}

async function readTail(path: string, fileSize: number, length: number): Promise<Buffer> {
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.alloc(length);
    await readFully(handle, buffer, 0, length, fileSize - length);
    return buffer;
  } finally {
    await handle.close();
  }
}
