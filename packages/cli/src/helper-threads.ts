import { helperThreadSchedulingUnavailable, scheduleHelperThreadsAsBatch } from "@raftka/broker";
import type { Logger } from "@raftka/monitoring";

/** Threads started later inherit their starter's policy, so the sweep repeats; each costs a few syscalls. */
const SWEEP_INTERVAL_MS = 30_000;

/**
 * Keeps this process's helper threads under SCHED_BATCH (`helper.threads.sched.batch`): now, logging what it
 * did, and every half minute for threads started since, logging only a new failure. Returns the stop.
 */
export function keepHelperThreadsBatched(logger: Logger): () => void {
  if (helperThreadSchedulingUnavailable !== undefined) {
    if (process.platform === "linux") {
      logger.warn(
        { reason: helperThreadSchedulingUnavailable },
        "helper threads keep the default scheduling policy: on busy CPUs waking one for a write can take the event loop's CPU; see the reason, or set helper.threads.sched.batch=false to silence this",
      );
    } else {
      logger.info(
        { reason: helperThreadSchedulingUnavailable },
        "helper threads keep the default scheduling policy: SCHED_BATCH is Linux's; nothing to do",
      );
    }
    return () => {};
  }
  let reportedError: string | undefined;
  const sweep = (first: boolean): void => {
    let counts: ReturnType<typeof scheduleHelperThreadsAsBatch>;
    try {
      counts = scheduleHelperThreadsAsBatch();
    } catch (error) {
      counts = {
        helpers: 0,
        batch: 0,
        changed: 0,
        error: (error as NodeJS.ErrnoException).code ?? "unknown",
      };
    }
    if (counts === undefined) return;
    if (counts.error !== undefined && counts.error !== reportedError) {
      reportedError = counts.error;
      logger.warn(
        { ...counts },
        `helper threads could not all be put under SCHED_BATCH (${counts.error}; a container's seccomp profile or a missing /proc can refuse it): on busy CPUs waking one for a write can take the event loop's CPU; allow sched_setscheduler, or set helper.threads.sched.batch=false to silence this`,
      );
    } else if (first) {
      logger.info(
        { ...counts },
        "helper threads run under SCHED_BATCH, so they never preempt the event loop",
      );
    }
  };
  sweep(true);
  const timer = setInterval(() => sweep(false), SWEEP_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
