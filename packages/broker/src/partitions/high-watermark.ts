import type { ReplicatedLog } from "./replicated-log.js";

/** Resolves once the log's high watermark reaches `offset` (at once if it already has). */
export function waitForHighWatermark(log: ReplicatedLog, offset: number): Promise<void> {
  if (log.highWatermark >= offset) return Promise.resolve();
  return new Promise((resolve) => {
    const unsubscribe = log.onHighWatermark((highWatermark) => {
      if (highWatermark < offset) return;
      unsubscribe();
      resolve();
    });
  });
}
