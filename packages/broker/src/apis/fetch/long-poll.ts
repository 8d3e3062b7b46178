import type { ReplicatedLog } from "../../partitions/replicated-log.js";

/**
 * Parks fetches that cannot be answered yet (fewer than min.bytes available) until enough data is committed
 * on their partitions or max.wait.ms passes. Woken by high-watermark events, never by polling.
 */
export class LongPoll {
  private readonly parked = new Set<() => void>();

  get parkedCount(): number {
    return this.parked.size;
  }

  /**
   * Resolves once `missingBytes` more bytes have been committed across `logs`, after `maxWaitMs`, when
   * `wakeAll` is called (shutdown), or when `cancelled` aborts (the client went away), whichever comes first.
   */
  wait(
    logs: readonly ReplicatedLog[],
    missingBytes: number,
    maxWaitMs: number,
    cancelled?: AbortSignal,
  ): Promise<void> {
    return new Promise((resolve) => {
      if (cancelled?.aborted) return resolve();
      const unsubscribes: (() => void)[] = [];
      let timer: NodeJS.Timeout | undefined;
      let remaining = missingBytes;
      const done = () => {
        if (!this.parked.delete(done)) return;
        clearTimeout(timer);
        for (const unsubscribe of unsubscribes) unsubscribe();
        cancelled?.removeEventListener("abort", done);
        resolve();
      };
      this.parked.add(done);
      for (const log of new Set(logs)) {
        let seen = log.committedBytes;
        unsubscribes.push(
          log.onHighWatermark((_highWatermark, committedBytes) => {
            remaining -= committedBytes - seen;
            seen = committedBytes;
            if (remaining <= 0) done();
          }),
        );
      }
      timer = setTimeout(done, maxWaitMs);
      cancelled?.addEventListener("abort", done);
    });
  }

  /** Answers every parked fetch now (graceful shutdown). */
  wakeAll(): void {
    for (const wake of [...this.parked]) wake();
  }
}
