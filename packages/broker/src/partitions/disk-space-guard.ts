import { statfs } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { Logger } from "@raftka/monitoring";

export interface DiskSpaceGuardOptions {
  readonly logDirs: readonly string[];
  /**
   * `log.dir.min.free.bytes`, read at every check so that a change applies at the next one; undefined
   * (unset) means the smaller of 1 GiB and 5% of each file system.
   */
  readonly minFreeBytes: () => number | undefined;
  readonly intervalMs: number;
  readonly logger: Logger;
  /**
   * Free and total bytes of a directory's file system, undefined for one without a size (ramfs); tests
   * give their own. Defaults to statfs.
   */
  readonly space?: (directory: string) => Promise<FileSystemSpace | undefined>;
  /** A log directory (as configured) went under the minimum: retention can start freeing space now. */
  readonly onLow?: (directory: string) => void;
  /** Whether a log directory (as configured) refuses Produce now, on every change (for a metric). */
  readonly onStateChange?: (directory: string, refusing: boolean) => void;
  /** A Produce request to a log directory (as configured) was refused (for a counter). */
  readonly onRefused?: (directory: string) => void;
}

export interface FileSystemSpace {
  /** Bytes the broker may still write (statfs's available blocks). */
  readonly free: number;
  readonly capacity: number;
}

/** The minimum free space when log.dir.min.free.bytes is unset: 1 GiB, or 5% of a smaller disk. */
export function defaultMinFreeBytes(capacity: number): number {
  return Math.min(1024 ** 3, Math.floor(capacity * 0.05));
}

interface LogDirectoryState {
  /** As configured, for logs and metrics. */
  readonly configured: string;
  /** Resolved, to match partition directories. */
  readonly resolved: string;
  /** Free bytes at the last check; undefined when unknown or the file system has no size. */
  free: number | undefined;
  /** The free bytes it must keep, as of the last check. */
  minimum: number;
  /** Bytes admitted since the last check: the free space they will take is not in `free` yet. */
  admitted: number;
  /** Why Produce is refused now, or undefined. */
  refusal: string | undefined;
  /**
   * The largest request refused while refusing: the refusal holds until one of that size would fit
   * again, so that a directory that refuses large requests counts as refusing between checks too.
   */
  refusedRequestBytes: number;
  /** The log.dir.min.free.bytes last warned about as larger than the whole file system. */
  warnedMinimum?: number;
}

/**
 * Refuses Produce to the partitions of a log directory whose file system has less than
 * `log.dir.min.free.bytes` free, as Redpanda's `storage_min_free_bytes` does. The disk then never fills
 * under the logs: an append that meets a full disk stops every Raft group of the node until a restart,
 * and a broker cannot even start on a disk with no space left. What is refused is only client Produce;
 * the space left serves offset commits, the metadata log and segment rolls, so consumers and admin
 * calls (deleting topics, lowering retention) keep working while producers retry.
 *
 * The file system is asked every `intervalMs`; in between, each admitted batch is subtracted from what
 * it said, because a producer on a fast disk can write the whole margin in less than one interval.
 */
export class DiskSpaceGuard {
  private readonly directories: readonly LogDirectoryState[];
  /** Partition directory → its log directory's state, filled as partitions produce. */
  private readonly byPartition = new Map<string, LogDirectoryState | undefined>();
  private readonly space: (directory: string) => Promise<FileSystemSpace | undefined>;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: DiskSpaceGuardOptions) {
    this.directories = options.logDirs.map((configured) => ({
      configured,
      resolved: resolve(configured),
      free: undefined,
      minimum: 0,
      admitted: 0,
      refusal: undefined,
      refusedRequestBytes: 0,
    }));
    this.space = options.space ?? spaceOf;
  }

  /** Checks every log directory once, then every `intervalMs`. */
  async start(): Promise<void> {
    await this.check();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /**
   * Whether `bytes` more may be appended to the partition kept in `partitionDirectory`: undefined if
   * so (and they are counted), else why not.
   */
  admit(partitionDirectory: string, bytes: number): string | undefined {
    const state = this.stateOf(partitionDirectory);
    if (state === undefined) return undefined;
    if (state.refusal !== undefined) {
      state.refusedRequestBytes = Math.max(state.refusedRequestBytes, bytes);
      this.options.onRefused?.(state.configured);
      return state.refusal;
    }
    // A minimum of 0 is the check turned off, not "refuse once the estimate says the disk is full".
    if (
      state.minimum > 0 &&
      state.free !== undefined &&
      state.free - state.admitted - bytes < state.minimum
    ) {
      const free = state.free - state.admitted;
      state.refusedRequestBytes = bytes;
      this.update(state, this.describeRefusal(state, free, bytes), free);
      this.options.onRefused?.(state.configured);
      return state.refusal;
    }
    state.admitted += bytes;
    return undefined;
  }

  /**
   * Like `admit`, for the node's own small writes that go on while Produce is refused (offset commits and
   * group metadata): they may use the margin under log.dir.min.free.bytes, but not its last quarter, so
   * that no write of any kind fills the disk and fails a log. Undefined if admitted (and counted).
   */
  admitInternal(partitionDirectory: string, bytes: number): string | undefined {
    const state = this.stateOf(partitionDirectory);
    if (state === undefined || state.minimum <= 0 || state.free === undefined) return undefined;
    const free = state.free - state.admitted;
    const floor = Math.floor(state.minimum / 4);
    if (free - bytes < floor) {
      return (
        `log directory ${state.configured} has ${formatBytes(Math.max(0, free))} free, and a write of ` +
        `${formatBytes(bytes)} would leave less than a quarter of log.dir.min.free.bytes ` +
        `(${formatBytes(floor)}), which the node keeps so that no log fails on a full disk; ` +
        "delete topics or lower their retention.bytes / retention.ms, or give the disk more space"
      );
    }
    state.admitted += bytes;
    return undefined;
  }

  /**
   * Whether the partition kept in `partitionDirectory` may reserve `bytes` of disk blocks ahead of its
   * appends (log.preallocate); if so they are counted as taken. Reserved blocks leave the disk as
   * written ones do, but nothing else accounts for them, and several busy partitions reserving tens of
   * MiB each at once filled small disks (ENOSPC, failed logs). A reservation must therefore leave twice
   * log.dir.min.free.bytes free: reservations stop well before Produce is refused, so it is the records
   * themselves that reach the minimum, not blocks reserved for records that Produce will then refuse.
   */
  mayReserve(partitionDirectory: string, bytes: number): boolean {
    const state = this.stateOf(partitionDirectory);
    if (state === undefined || state.free === undefined) return true;
    if (state.refusal !== undefined) return false;
    if (state.free - state.admitted - bytes < 2 * state.minimum) return false;
    state.admitted += bytes;
    return true;
  }

  private stateOf(partitionDirectory: string): LogDirectoryState | undefined {
    let state = this.byPartition.get(partitionDirectory);
    if (state === undefined && !this.byPartition.has(partitionDirectory)) {
      const logDirectory = dirname(resolve(partitionDirectory));
      state = this.directories.find((directory) => directory.resolved === logDirectory);
      this.byPartition.set(partitionDirectory, state);
    }
    return state;
  }

  /** Whether the log directory `configured` (as in log.dirs) refuses Produce now. */
  refuses(configured: string): boolean {
    return this.directories.some((state) => state.configured === configured && state.refusal !== undefined);
  }

  /** The log directories (as configured) that refuse Produce now. */
  refusingDirectories(): string[] {
    return this.directories.filter((state) => state.refusal !== undefined).map((state) => state.configured);
  }

  /** One check of every log directory (also what the timer runs). */
  check(): Promise<void> {
    this.checking ??= this.checkAll().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.check().finally(() => this.schedule());
    }, this.options.intervalMs);
    this.timer.unref();
  }

  private async checkAll(): Promise<void> {
    const configured = this.options.minFreeBytes();
    // Partitions come and go with topics; the map is rebuilt as they produce.
    this.byPartition.clear();
    for (const state of this.directories) {
      // Admitted before the statfs call: either in what it reports, or still being written.
      const admittedBefore = state.admitted;
      try {
        const space = await this.space(state.resolved);
        state.free = space?.free;
        if (space !== undefined) {
          state.minimum = configured ?? defaultMinFreeBytes(space.capacity);
          this.warnIfMinimumUnreachable(state, configured, space.capacity);
        }
      } catch (error) {
        // Not knowing is no reason to refuse: the appends themselves report a disk that fails.
        state.free = undefined;
        this.options.logger.warn(
          { dir: state.configured, err: error },
          "could not read the free space of a log directory; Produce is not limited by it until it can be read",
        );
      }
      state.admitted -= admittedBefore;
      // Once refusing, a tenth more than the minimum before taking Produce again (no flapping at the
      // line), and room for the largest request refused: until one of its size fits, its producer is
      // still refused, and the directory must not count as taking Produce meanwhile.
      const needed =
        state.refusal === undefined
          ? state.minimum
          : Math.max(state.minimum * 1.1, state.minimum + state.refusedRequestBytes);
      const estimate = state.free === undefined ? undefined : state.free - state.admitted;
      const refusing = state.minimum > 0 && estimate !== undefined && estimate < needed;
      if (!refusing) state.refusedRequestBytes = 0;
      this.update(
        state,
        refusing ? this.describeRefusal(state, estimate!, state.refusedRequestBytes || undefined) : undefined,
        estimate,
      );
    }
  }

  /** Once per value: a minimum the file system cannot have free refuses Produce to it for good. */
  private warnIfMinimumUnreachable(
    state: LogDirectoryState,
    configured: number | undefined,
    capacity: number,
  ): void {
    if (configured === undefined || configured < capacity || state.warnedMinimum === configured) return;
    state.warnedMinimum = configured;
    this.options.logger.warn(
      { dir: state.configured, minFreeBytes: configured, capacityBytes: capacity },
      `log.dir.min.free.bytes (${formatBytes(configured)}) is more than the whole file system of log directory ` +
        `${state.configured} (${formatBytes(capacity)}), so Produce to it is always refused; set it below the ` +
        "disk's size, or unset it (1 GiB, or 5% of a disk smaller than 20 GiB)",
    );
  }

  /**
   * Why Produce is refused, true to the numbers it was decided on: `free` (the last check's less what
   * was admitted since), and `requestBytes` when it was a request that would have taken it under.
   */
  private describeRefusal(state: LogDirectoryState, free: number, requestBytes?: number): string {
    const minimum = `log.dir.min.free.bytes (${formatBytes(state.minimum)})`;
    const has = `log directory ${state.configured} has ${formatBytes(Math.max(0, free))} free`;
    let why: string;
    if (free < state.minimum) why = `${has}, under ${minimum}`;
    else if (requestBytes !== undefined && free - requestBytes < state.minimum)
      why = `${has}, and a Produce of ${formatBytes(requestBytes)} would leave less than ${minimum}`;
    else why = `${has}, not yet a tenth above ${minimum}, where Produce is taken again`;
    return (
      `${why}: Produce is refused until space is freed; ` +
      "delete topics or lower their retention.bytes / retention.ms, or give the disk more space"
    );
  }

  /** `free`: the free bytes the decision was made on (the last check's less what was admitted since). */
  private update(state: LogDirectoryState, refusal: string | undefined, free: number | undefined): void {
    const before = state.refusal;
    state.refusal = refusal;
    if ((before === undefined) === (refusal === undefined)) return;
    const fields = { dir: state.configured, freeBytes: free, minFreeBytes: state.minimum };
    if (refusal !== undefined) {
      this.options.logger.warn(fields, refusal);
      this.options.onLow?.(state.configured);
    } else {
      this.options.logger.info(
        fields,
        `taking Produce to ${state.configured} again: its file system has log.dir.min.free.bytes free`,
      );
    }
    this.options.onStateChange?.(state.configured, refusal !== undefined);
  }
}

async function spaceOf(directory: string): Promise<FileSystemSpace | undefined> {
  const fileSystem = await statfs(directory);
  // A file system of no size (ramfs and the like) reports nothing free, and never fills.
  if (fileSystem.blocks === 0) return undefined;
  return { free: fileSystem.bavail * fileSystem.bsize, capacity: fileSystem.blocks * fileSystem.bsize };
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}
