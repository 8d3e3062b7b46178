import { type FileHandle, open } from "node:fs/promises";
import { describeCause, KafkaStorageError } from "./errors.js";

/** A file (or directory) to fsync: by its open handle if the owner keeps one, else by path. */
export interface SyncableFile {
  path: string;
  handle?: FileHandle;
  /** Fsync metadata too (directories): fsync rather than fdatasync. Path-only files always get fsync. */
  metadata?: boolean;
  /** An fsync of the same file already running (an eviction's): this one starts after it and fails with it. */
  before?: Promise<void>;
}

/** What a flush target hands over at the start of a round: its dirty files and how to finish. */
export interface FlushWork {
  files: SyncableFile[];
  /** Called once every file of this work is fsynced (error undefined) or one of them failed. */
  complete(error: unknown): void;
}

/** Anything with files to make durable: a partition log, the stable store. */
export interface FlushTarget {
  /** Captures and clears the target's dirty state. Called synchronously at the start of a round. */
  beginFlush(): FlushWork;
}

export interface FlushSchedulerOptions {
  /** Makes one file durable. Injectable so tests can count fsyncs; defaults to fdatasync/fsync. */
  syncFile?: (file: SyncableFile) => Promise<void>;
  /** Clock for `flush.ms` deadlines. */
  now?: () => number;
  /**
   * Told how long each successful fsync took, in seconds (the broker's raftka_log_fsync_duration_seconds):
   * the disk's share of every acks=all answer.
   */
  observeSync?: (seconds: number) => void;
  /**
   * Told, for each flush request, how long it waited for its fsyncs to start, in seconds, and whether it
   * was urgent (the broker's raftka_log_flush_wait_seconds): for a lazy one mostly the rest of the round
   * already running when it came, for an urgent one only its own log's fsync if one was running.
   */
  observeWait?: (seconds: number, urgent: boolean) => void;
}

export interface FlushSchedulerStats {
  rounds: number;
  filesSynced: number;
  flushRequests: number;
  /** Targets flushed for an urgent request outside the round that was running then. */
  urgentFlushes: number;
}

export interface FlushRequestOptions {
  /**
   * A client waits on this flush (acks=all): its fsync starts once the current callback's microtasks
   * run, even while a round runs, rather than after that round or the event loop's other I/O callbacks.
   * If the target's own fsync is running, right after that one.
   */
  urgent?: boolean;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
  /** performance.now() at the request, for observeWait. */
  since: number;
  urgent: boolean;
}

/**
 * Group commit for a whole node: `flush(target)` from many logs at once becomes one round in which
 * each dirty file is fsynced once, all in parallel. Requests that arrive while a round runs form the
 * next round, which starts the moment the current one ends, so under load rounds run back to back
 * and each fsync covers every append made meanwhile. Each target is answered as soon as its own files
 * are synced, not when the round's slowest fsync ends.
 *
 * Why rounds rather than letting each log re-flush the moment its own fsync ends: measured with
 * scripts/bench/storage-append.mjs (8 busy logs), unaligned flushes cost about 25% more fsyncs, each
 * covering less, and lowered durable append throughput (that machine's ext4 has no journal; on one
 * that has, aligned fsyncs also share its commits).
 *
 * Urgent requests (a client waits: acks=all) do not wait for the running round: waiting for its
 * slowest fsync was a third of the acks=all commit's p99 (docs/benchmarks.md). Lazy ones (acks=1,
 * flush.ms) keep the rounds, which is what spares their fsyncs. A target never has two flushes running:
 * each log's flushes complete in order.
 */
export class FlushScheduler {
  private readonly syncFile: (file: SyncableFile) => Promise<void>;
  private readonly now: () => number;
  private readonly observeSync: ((seconds: number) => void) | undefined;
  private readonly observeWait: ((seconds: number, urgent: boolean) => void) | undefined;
  private pending = new Map<FlushTarget, Waiter[]>();
  /** Pending targets with at least one urgent waiter. */
  private readonly urgent = new Set<FlushTarget>();
  /** Targets whose flush is running, in a round or on its own; they wait to flush again. */
  private readonly syncing = new Set<FlushTarget>();
  private roundRunning = false;
  private roundScheduled = false;
  private urgentScheduled = false;
  private readonly deadlines = new Map<FlushTarget, number>();
  private timer: NodeJS.Timeout | undefined;
  private timerDeadline = Number.POSITIVE_INFINITY;
  private closed = false;
  readonly stats: FlushSchedulerStats = { rounds: 0, filesSynced: 0, flushRequests: 0, urgentFlushes: 0 };

  constructor(options: FlushSchedulerOptions = {}) {
    this.syncFile = options.syncFile ?? defaultSyncFile;
    this.now = options.now ?? Date.now;
    this.observeSync = options.observeSync;
    this.observeWait = options.observeWait;
  }

  /** Resolves once everything the target had written before this call is durable. */
  flush(target: FlushTarget, options?: FlushRequestOptions): Promise<void> {
    this.stats.flushRequests += 1;
    return new Promise<void>((resolve, reject) => {
      const urgent = options?.urgent === true;
      const waiter = { resolve, reject, since: this.observeWait ? performance.now() : 0, urgent };
      const waiters = this.pending.get(target);
      if (waiters) waiters.push(waiter);
      else this.pending.set(target, [waiter]);
      this.deadlines.delete(target);
      if (urgent) {
        this.urgent.add(target);
        this.scheduleUrgent();
      }
      this.scheduleRound();
    });
  }

  /** Flushes `target` within `delayMs` unless something flushes it sooner (Kafka's flush.ms). */
  flushWithin(target: FlushTarget, delayMs: number): void {
    if (this.closed) return;
    const deadline = this.now() + delayMs;
    const existing = this.deadlines.get(target);
    if (existing !== undefined && existing <= deadline) return;
    this.deadlines.set(target, deadline);
    this.armTimer(deadline);
  }

  /** Starts flushes for every target whose flush.ms deadline is at or before `now`. */
  flushDue(now: number = this.now()): number {
    let started = 0;
    for (const [target, deadline] of this.deadlines) {
      if (deadline > now) continue;
      this.deadlines.delete(target);
      // The target records fsync failures itself; nobody awaits a timed flush.
      this.flush(target).catch(() => {});
      started += 1;
    }
    return started;
  }

  /** Drops a target's pending flush.ms deadline (its owner closed). */
  forget(target: FlushTarget): void {
    this.deadlines.delete(target);
  }

  /** Stops the flush.ms timer; explicit flushes still work so logs can close cleanly. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.deadlines.clear();
  }

  private armTimer(deadline: number): void {
    if (deadline >= this.timerDeadline && this.timer) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDeadline = deadline;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerDeadline = Number.POSITIVE_INFINITY;
        this.flushDue();
        const next = Math.min(...this.deadlines.values());
        if (Number.isFinite(next)) this.armTimer(next);
      },
      Math.max(0, deadline - this.now()),
    );
    // A pending flush.ms deadline must not keep the process alive on its own.
    this.timer.unref();
  }

  private scheduleRound(): void {
    if (this.roundRunning || this.roundScheduled) return;
    this.roundScheduled = true;
    // setImmediate rather than a microtask: every request made while handling the current batch of
    // I/O events (e.g. all produce requests read from the sockets) joins this round.
    setImmediate(() => {
      this.roundScheduled = false;
      if (!this.roundRunning) this.runRound();
    });
  }

  private scheduleUrgent(): void {
    if (this.urgentScheduled) return;
    this.urgentScheduled = true;
    // A microtask, not setImmediate as for rounds: a client waits on this fsync, and the rest of the
    // current batch of I/O events (other sockets' requests) can take a millisecond to handle. Urgent
    // requests made in the same callback still go together.
    queueMicrotask(() => {
      this.urgentScheduled = false;
      this.startUrgent();
    });
  }

  private startUrgent(): void {
    if (!this.roundRunning) {
      // Nothing to overtake: a round takes the lazy requests along with the urgent ones, now rather
      // than at the round's setImmediate (that callback then finds this round running and leaves it).
      this.runRound();
      return;
    }
    for (const target of this.urgent) {
      if (this.syncing.has(target)) continue;
      const waiters = this.pending.get(target)!;
      this.pending.delete(target);
      this.urgent.delete(target);
      this.stats.urgentFlushes += 1;
      void this.flushTarget(target, waiters);
    }
  }

  /** Starts a round with every pending target that is not syncing; the rest join a later one. */
  private runRound(): void {
    const batch: Array<[FlushTarget, Waiter[]]> = [];
    for (const entry of this.pending) {
      if (this.syncing.has(entry[0])) continue;
      batch.push(entry);
    }
    if (batch.length === 0) return;
    for (const [target] of batch) {
      this.pending.delete(target);
      this.urgent.delete(target);
    }
    this.roundRunning = true;
    this.stats.rounds += 1;
    void Promise.all(batch.map(([target, waiters]) => this.flushTarget(target, waiters))).then(() => {
      this.roundRunning = false;
      // Natural group commit: everything that queued up during this round goes in the next one now.
      if (this.pending.size > 0) this.runRound();
    });
  }

  /** A target's flush ended: requests that came for it meanwhile may go now. */
  private flushEnded(target: FlushTarget): void {
    this.syncing.delete(target);
    if (!this.pending.has(target)) return;
    if (this.urgent.has(target)) this.scheduleUrgent();
    else if (!this.roundRunning) this.scheduleRound();
  }

  /**
   * One target's part of a round (or an urgent flush of its own). Its waiters are answered as soon as
   * its own files are synced: a small log (an OffsetCommit's) does not wait for the slowest fsync of
   * the round. Never rejects.
   */
  private async flushTarget(target: FlushTarget, waiters: Waiter[]): Promise<void> {
    this.syncing.add(target);
    let error: unknown;
    if (this.observeWait) {
      const started = performance.now();
      for (const waiter of waiters) this.observeWait((started - waiter.since) / 1000, waiter.urgent);
    }
    try {
      const work = target.beginFlush();
      const results = await Promise.allSettled(work.files.map((file) => this.syncOne(file)));
      const failure = results.find((result) => result.status === "rejected");
      if (failure) error = (failure as PromiseRejectedResult).reason;
      try {
        work.complete(error);
      } catch (completeError) {
        error ??= completeError;
      }
    } catch (beginError) {
      error = beginError;
    }
    for (const waiter of waiters) {
      if (error === undefined) waiter.resolve();
      else waiter.reject(error);
    }
    this.flushEnded(target);
  }

  private async syncOne(file: SyncableFile): Promise<void> {
    // An error the earlier fsync saw is not reported again through the same descriptor: share it.
    if (file.before !== undefined) await file.before;
    try {
      const started = performance.now();
      await this.syncFile(file);
      this.observeSync?.((performance.now() - started) / 1000);
      this.stats.filesSynced += 1;
    } catch (error) {
      throw new KafkaStorageError(
        `fsync of ${file.path} failed (${describeCause(error)}); data written since the last successful ` +
          "fsync may be lost: check the disk, then restart the broker so the log is recovered from disk",
        error,
      );
    }
  }
}

/** The real fsync of a file (what a scheduler does when no `syncFile` is given); tests wrap it to inject faults. */
export async function defaultSyncFile(file: SyncableFile): Promise<void> {
  if (file.handle) {
    // fdatasync also persists the file size, which is all the metadata a reader needs.
    if (file.metadata) await file.handle.sync();
    else await file.handle.datasync();
    return;
  }
  const handle = await open(file.path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

let sharedScheduler: FlushScheduler | undefined;

/** The process-wide scheduler logs use unless given one: one node, one group commit. */
export function defaultFlushScheduler(): FlushScheduler {
  sharedScheduler ??= new FlushScheduler();
  return sharedScheduler;
}
