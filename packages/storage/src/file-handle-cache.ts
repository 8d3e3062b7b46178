import { constants, readFileSync } from "node:fs";
import { type FileHandle, open, rename } from "node:fs/promises";
import { describeCause, invariant, KafkaStorageError } from "./errors.js";
import type { SyncableFile } from "./flush-scheduler.js";

export interface FileHandleCacheOptions {
  /**
   * Descriptors the cache may hold at once, cached and in use together. Defaults to a quarter of
   * the process's open-file limit (read from /proc/self/limits), at least 64 and at most 8192.
   */
  maxOpenFiles?: number;
  /** Makes an evicted dirty file durable before its descriptor closes. Injectable for tests. */
  syncFile?: (file: SyncableFile) => Promise<void>;
  /**
   * Close descriptors of files unused this long even when the cache is not full, so idle logs hold
   * none (default 60 000 ms; 0 keeps them until the cache needs room).
   */
  idleCloseMs?: number;
}

export interface FileHandleCacheStats {
  /** Descriptors open right now (cached, in use, or held for a one-off operation). */
  open: number;
  peakOpen: number;
  opens: number;
  /** Descriptors closed to make room for another file. */
  evictions: number;
  /** Evictions of files with unsynced writes, which fsynced them first. */
  dirtyEvictions: number;
  /** Requests that had to wait because every descriptor was in use. */
  waits: number;
}

export interface CachedFileOptions {
  /** A directory: opened read-only, and its fsyncs include metadata (its entries). */
  directory?: boolean;
  /** An eviction's fsync failed: the owner must stop trusting what it wrote to this file. */
  onSyncError?: (error: KafkaStorageError) => void;
  /**
   * Opened for direct writes (O_DIRECT), beside the file's ordinary descriptor. Never marked dirty:
   * a direct write reports its errors itself, and the ordinary descriptor's fsync makes it durable.
   */
  direct?: boolean;
}

/** A dirty file pinned for a flush round; `release` once its fsync is done. */
export interface FileTakenForSync extends SyncableFile {
  handle: FileHandle;
  release(): void;
}

const DEFAULT_MAX_OPEN_FILES_CAP = 8192;
const MIN_MAX_OPEN_FILES = 64;

/**
 * A bounded pool of file descriptors shared by every log of a node, so a node can host far more
 * logs than it may open files: idle files are closed least-recently-used first and reopened on
 * their next use. A file in use (pinned for a read, write or fsync) is never closed under its user;
 * a file with unsynced writes is fsynced before its descriptor closes, because a write-back error
 * must be seen through a descriptor that was open when the write happened (an fsync through a
 * later one may not report it). When every descriptor is pinned, new users wait for one.
 *
 * Callers never hold one pin while waiting for another (each operation uses one file at a time),
 * so waiting cannot deadlock: every pin is released when its I/O finishes.
 */
export class FileHandleCache {
  readonly maxOpenFiles: number;
  readonly stats: FileHandleCacheStats = {
    open: 0,
    peakOpen: 0,
    opens: 0,
    evictions: 0,
    dirtyEvictions: 0,
    waits: 0,
  };
  /** @internal */
  readonly syncFile: (file: SyncableFile) => Promise<void>;
  // Open, unpinned files in least-recently-used order (Map keeps insertion order): the clean ones
  // are evicted first, the dirty ones cost an fsync.
  private readonly idleClean = new Map<CachedFile, true>();
  private readonly idleDirty = new Map<CachedFile, true>();
  private readonly waiters: Array<() => void> = [];
  private readonly idleCloseMs: number;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(options: FileHandleCacheOptions = {}) {
    const max = options.maxOpenFiles ?? defaultMaxOpenFiles();
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`maxOpenFiles must be a positive integer, got ${max}`);
    }
    const idleCloseMs = options.idleCloseMs ?? 60_000;
    if (!(idleCloseMs >= 0)) throw new RangeError(`idleCloseMs must be >= 0, got ${idleCloseMs}`);
    this.maxOpenFiles = max;
    this.idleCloseMs = idleCloseMs;
    this.syncFile =
      options.syncFile ?? ((file) => (file.metadata ? file.handle!.sync() : file.handle!.datasync()));
  }

  /** A file managed by this cache; nothing is opened until its first use. */
  file(path: string, options: CachedFileOptions = {}): CachedFile {
    return new CachedFile(this, path, options);
  }

  /**
   * Runs `operation`, which opens at most one descriptor at a time and closes it before returning
   * (a checkpoint write, a directory fsync, a small read), while holding one of the cache's slots:
   * bursts of such operations across thousands of logs stay within the bound.
   */
  async transient<T>(operation: () => Promise<T>): Promise<T> {
    await this.takeSlot();
    try {
      return await operation();
    } finally {
      this.releaseSlot();
    }
  }

  /** Closes every idle descriptor (clean ones at once, dirty ones after an fsync). */
  async closeIdle(): Promise<void> {
    const idle = [...this.idleClean.keys(), ...this.idleDirty.keys()];
    await Promise.all(
      idle.map(async (file) => {
        if (await file.evict()) this.releaseSlot();
      }),
    );
  }

  /** @internal Reserves a descriptor slot, evicting an idle file or waiting for one. */
  async takeSlot(): Promise<void> {
    for (;;) {
      if (this.stats.open < this.maxOpenFiles) {
        this.stats.open++;
        if (this.stats.open > this.stats.peakOpen) this.stats.peakOpen = this.stats.open;
        return;
      }
      const victim = firstKey(this.idleClean) ?? firstKey(this.idleDirty);
      if (victim !== undefined) {
        // A successful eviction hands its slot straight to us, so nobody can take it in between.
        if (await victim.evict()) return;
        continue;
      }
      this.stats.waits++;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** @internal */
  releaseSlot(): void {
    invariant(this.stats.open > 0, "file handle cache released more slots than it handed out");
    this.stats.open--;
    this.wakeOne();
  }

  /** @internal A file stopped being pinned: it may be evicted now. */
  becameIdle(file: CachedFile, dirty: boolean): void {
    (dirty ? this.idleDirty : this.idleClean).set(file, true);
    this.wakeOne();
    if (!dirty && this.idleCloseMs > 0 && this.sweepTimer === undefined) this.armSweep();
  }

  private armSweep(): void {
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      this.closeLongIdle();
    }, this.idleCloseMs);
    // Idle descriptors must not keep a process alive.
    this.sweepTimer.unref();
  }

  /** Closes clean descriptors idle for idleCloseMs (dirty ones wait for their flush round). */
  private closeLongIdle(): void {
    const cutoff = Date.now() - this.idleCloseMs;
    for (const file of this.idleClean.keys()) {
      // Least recently used first: the first one young enough ends the sweep.
      if (file.idleSince > cutoff) break;
      void file.evict().then((closed) => {
        if (closed) this.releaseSlot();
      });
    }
    if (this.idleClean.size > 0) this.armSweep();
  }

  /** @internal */
  notIdle(file: CachedFile): void {
    this.idleClean.delete(file);
    this.idleDirty.delete(file);
  }

  private wakeOne(): void {
    this.waiters.shift()?.();
  }
}

/**
 * One file whose descriptor lives in a FileHandleCache. `use` pins it (opening it if the cache
 * closed it) for the duration of one operation. Writers call `markDirty` while they hold the pin.
 */
export class CachedFile {
  private handle: FileHandle | undefined;
  private opening: Promise<void> | undefined;
  private evicting: Promise<void> | undefined;
  /** A rename on disk in progress: opens wait for it, so none uses a name that is going away. */
  private renaming: Promise<void> | undefined;
  /** Settles when an eviction's fsync does: a flush round that pins the file meanwhile waits for it. */
  private evictionSync: Promise<void> | undefined;
  private pins = 0;
  private unpinned: Array<() => void> = [];
  private dirty = false;
  private createNext = false;
  /** @internal When its last user released it (Date.now()). */
  idleSince = 0;
  private readonly flags: "r" | "r+" | number;

  /** @internal */
  constructor(
    private readonly cache: FileHandleCache,
    private currentPath: string,
    private readonly options: CachedFileOptions,
  ) {
    this.flags = options.directory ? "r" : options.direct ? constants.O_RDWR | constants.O_DIRECT : "r+";
  }

  get path(): string {
    return this.currentPath;
  }

  get isOpen(): boolean {
    return this.handle !== undefined;
  }

  /** Written since its last fsync. */
  get isDirty(): boolean {
    return this.dirty;
  }

  /** Creates the file (truncating any stale one of the same name) and keeps it open in the cache. */
  async create(): Promise<void> {
    await this.close();
    this.createNext = true;
    await this.use(async () => {});
  }

  /** Runs `operation` with the file's descriptor, which stays open (pinned) until it settles. */
  async use<T>(operation: (handle: FileHandle) => Promise<T>): Promise<T> {
    const handle = await this.acquire();
    try {
      return await operation(handle);
    } finally {
      this.release();
    }
  }

  /** Records unsynced writes: the next flush round (or an eviction) must fsync this file. */
  markDirty(): void {
    invariant(this.pins > 0 && this.handle !== undefined, () => `${this.path} marked dirty while not in use`);
    this.dirty = true;
  }

  /**
   * For a flush round, synchronously: pins a dirty file and clears its mark (writes made from now on
   * belong to the next round). Undefined when the file has nothing to sync.
   */
  takeForSync(): FileTakenForSync | undefined {
    if (!this.dirty) return undefined;
    invariant(this.handle !== undefined, () => `${this.path} is dirty but its descriptor was closed`);
    this.pin();
    this.dirty = false;
    let released = false;
    return {
      path: this.path,
      handle: this.handle,
      metadata: this.options.directory,
      before: this.evictionSync,
      release: () => {
        invariant(!released, "a file taken for sync was released twice");
        released = true;
        this.release();
      },
    };
  }

  /** Fsyncs the file now (recovery, clean shutdown); with `onlyIfDirty`, only if it has unsynced writes. */
  async sync(options: { onlyIfDirty?: boolean } = {}): Promise<void> {
    if (options.onlyIfDirty && !this.dirty) return;
    await this.use(async (handle) => {
      this.dirty = false;
      try {
        await handle.sync();
      } catch (error) {
        this.dirty = true;
        throw error;
      }
    });
  }

  /**
   * Renames the file on disk (segment deletion renames to `.deleted`); an open descriptor stays valid
   * and later reopens use the new name.
   */
  async rename(to: string): Promise<void> {
    while (this.renaming !== undefined) await this.renaming;
    while (this.opening !== undefined) await this.opening.catch(() => undefined);
    const renaming = rename(this.currentPath, to).then(() => {
      this.currentPath = to;
    });
    this.renaming = renaming.catch(() => undefined);
    try {
      await renaming;
    } finally {
      this.renaming = undefined;
    }
  }

  /** Closes the descriptor once nobody uses it (the file may be reopened later by a new use). */
  async close(): Promise<void> {
    for (;;) {
      if (this.evicting !== undefined) await this.evicting;
      else if (this.opening !== undefined) await this.opening.catch(() => undefined);
      else if (this.pins > 0) await new Promise<void>((resolve) => this.unpinned.push(resolve));
      else break;
    }
    const handle = this.handle;
    if (handle === undefined) return;
    this.handle = undefined;
    this.dirty = false;
    this.cache.notIdle(this);
    try {
      await handle.close();
    } finally {
      this.cache.releaseSlot();
    }
  }

  /**
   * @internal Closes the idle descriptor for the cache, fsyncing first if dirty. True if it closed
   * (the slot now belongs to the caller); false if the file got pinned meanwhile.
   */
  async evict(): Promise<boolean> {
    const handle = this.handle;
    if (handle === undefined || this.pins > 0 || this.evicting !== undefined) return false;
    this.cache.notIdle(this);
    let finished!: () => void;
    this.evicting = new Promise<void>((resolve) => {
      finished = resolve;
    });
    try {
      if (this.dirty) {
        this.cache.stats.dirtyEvictions++;
        const sync = this.cache
          .syncFile({ path: this.path, handle, metadata: this.options.directory })
          .catch((error: unknown) => {
            throw new KafkaStorageError(
              `fsync of ${this.path} (closing it to free a descriptor) failed (${describeCause(error)}); data written ` +
                "since the last successful fsync may be lost: check the disk, then restart the broker",
              error,
            );
          });
        this.evictionSync = sync;
        try {
          await sync;
        } catch (error) {
          this.options.onSyncError?.(error as KafkaStorageError);
        } finally {
          this.evictionSync = undefined;
        }
        if (this.pins > 0) {
          // A flush round took it during the fsync; it is released to the idle lists as usual.
          return false;
        }
        this.dirty = false;
      }
      this.handle = undefined;
      this.cache.stats.evictions++;
      await handle.close().catch(() => {
        // The descriptor is gone either way; a close error after a successful fsync loses nothing.
      });
      return true;
    } finally {
      this.evicting = undefined;
      finished();
    }
  }

  private async acquire(): Promise<FileHandle> {
    for (;;) {
      if (this.evicting !== undefined) {
        await this.evicting;
        continue;
      }
      if (this.handle !== undefined) {
        this.pin();
        return this.handle;
      }
      if (this.renaming !== undefined) {
        await this.renaming;
        continue;
      }
      if (this.opening !== undefined) {
        await this.opening;
        continue;
      }
      const opening = this.openPinned();
      // Others only wait on this; the opener alone sees (and reports) a failed open.
      this.opening = opening.then(
        () => undefined,
        () => undefined,
      );
      try {
        return await opening;
      } finally {
        this.opening = undefined;
      }
    }
  }

  private async openPinned(): Promise<FileHandle> {
    await this.cache.takeSlot();
    let handle: FileHandle;
    try {
      handle = await open(this.currentPath, this.createNext ? "w+" : this.flags);
    } catch (error) {
      this.cache.releaseSlot();
      throw error;
    }
    this.createNext = false;
    this.cache.stats.opens++;
    this.handle = handle;
    // Pinned before anyone can see it open, so no eviction can close it under its opener.
    this.pin();
    return handle;
  }

  private pin(): void {
    this.pins++;
    if (this.pins === 1) this.cache.notIdle(this);
  }

  private release(): void {
    invariant(this.pins > 0, () => `${this.path} released more often than it was used`);
    this.pins--;
    if (this.pins > 0) return;
    for (const resolve of this.unpinned.splice(0)) resolve();
    if (this.handle !== undefined && this.evicting === undefined) {
      this.idleSince = Date.now();
      this.cache.becameIdle(this, this.dirty);
    }
  }
}

function firstKey<K>(map: Map<K, true>): K | undefined {
  for (const key of map.keys()) return key;
  return undefined;
}

/** A quarter of the soft open-file limit leaves the rest to sockets and everything else. */
function defaultMaxOpenFiles(): number {
  let limit = 1024;
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((candidate) => candidate.startsWith("Max open files"));
    const soft = line?.split(/\s{2,}/)[1];
    if (soft === "unlimited") limit = DEFAULT_MAX_OPEN_FILES_CAP * 4;
    else if (soft !== undefined && Number.isInteger(Number(soft))) limit = Number(soft);
  } catch {
    // Not Linux: assume the common default of 1024.
  }
  return Math.min(DEFAULT_MAX_OPEN_FILES_CAP, Math.max(MIN_MAX_OPEN_FILES, Math.floor(limit / 4)));
}

let sharedCache: FileHandleCache | undefined;

/** The process-wide cache logs use unless given one: one node, one descriptor budget. */
export function defaultFileHandleCache(): FileHandleCache {
  sharedCache ??= new FileHandleCache();
  return sharedCache;
}
