/** An fsync at least this slow means the disk is busy; on this VM's disk they take 1-7 ms when it is not. */
const DEFAULT_SLOW_MS = 10;
/** How long after a slow fsync the disk counts as busy. */
const DEFAULT_WINDOW_MS = 250;

/**
 * Whether the node's fsyncs were slow just now. Reads ahead for a consumer catching up (NextReads) wait
 * while they were: the consumer then reads at its own pace, and the disk time goes to the producers
 * whose acks=all answers wait for those fsyncs (their p99 was two to four times as long beside a
 * catch-up that read ahead regardless, docs/benchmarks.md).
 */
export class FsyncContention {
  private lastSlowAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly slowMs = DEFAULT_SLOW_MS,
    private readonly windowMs = DEFAULT_WINDOW_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Told how long each fsync took. */
  observe(seconds: number): void {
    if (seconds * 1000 >= this.slowMs) this.lastSlowAt = this.now();
  }

  /** True within the window after a slow fsync. */
  get contended(): boolean {
    return this.now() - this.lastSlowAt < this.windowMs;
  }
}
