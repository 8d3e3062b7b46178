import type { ReplicatedLog } from "../../partitions/replicated-log.js";

/**
 * Parks fetches that cannot be answered yet (fewer than min.bytes available) until enough data is committed
 * on their partitions or max.wait.ms passes. Woken by high-watermark events, never by polling, and at once
 * when one of their partitions goes away (its topic deleted), as Kafka completes such delayed fetches.
 */
export class LongPoll {
  private readonly parked = new Set<() => void>();
  private readonly parkedOn = new Map<ReplicatedLog, Set<() => void>>();

  get parkedCount(): number {
    return this.parked.size;
  }

  /**
   * Resolves once `missingBytes` more bytes have been committed across `logs`, after `maxWaitMs`, when
   * `wakeAll` is called (shutdown), when `wakeFetchesOf` names one of `logs` (partition removed), or when
   * `cancelled` aborts (the client went away), whichever comes first.
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
      const distinctLogs = new Set(logs);
      const done = () => {
        if (!this.parked.delete(done)) return;
        clearTimeout(timer);
        for (const unsubscribe of unsubscribes) unsubscribe();
        for (const log of distinctLogs) {
          const waiting = this.parkedOn.get(log);
          waiting?.delete(done);
          if (waiting?.size === 0) this.parkedOn.delete(log);
        }
        cancelled?.removeEventListener("abort", done);
        resolve();
      };
      this.parked.add(done);
      for (const log of distinctLogs) {
        let waiting = this.parkedOn.get(log);
        if (waiting === undefined) {
          waiting = new Set();
          this.parkedOn.set(log, waiting);
        }
        waiting.add(done);
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

  /**
   * Answers now every fetch parked on one of `logs`, which are no longer served (their topic was deleted):
   * its partitions' answers become UNKNOWN_TOPIC_OR_PARTITION at once instead of after max.wait.ms.
   */
  wakeFetchesOf(logs: readonly ReplicatedLog[]): void {
    for (const log of logs) {
      for (const wake of [...(this.parkedOn.get(log) ?? [])]) wake();
    }
  }

  /** Answers every parked fetch now (graceful shutdown). */
  wakeAll(): void {
    for (const wake of [...this.parked]) wake();
  }
}
