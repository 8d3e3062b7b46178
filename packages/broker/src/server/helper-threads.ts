import { platform } from "node:os";
import { loadNativeAddon } from "@raftka/storage";

/**
 * Keeps the broker's helper threads (libuv's file I/O pool, V8's collector and compiler threads) from
 * preempting the event loop. Under Linux's default policy a pool thread woken for a write or an fsync may
 * take the CPU from the thread that woke it; with every CPU busy the event loop then waited for its CPU at
 * each hand-off. Under SCHED_BATCH a woken helper runs once a CPU is free or the current slice ends
 * (docs/benchmarks.md, "Helper threads under SCHED_BATCH"). The process owner (`raftka start`) applies it,
 * not the Broker class, which tests also run inside other processes.
 */

export interface HelperThreadCounts {
  /** Threads of this process other than the caller's. */
  helpers: number;
  /** How many of them are under SCHED_BATCH now. */
  batch: number;
  /** How many this call moved there. */
  changed: number;
  /** The first error a thread's policy change failed with (errno code, like EPERM), if any. */
  error?: string;
}

interface NativeBinding {
  scheduleHelpersAsBatch(): HelperThreadCounts;
}

const native: { binding?: NativeBinding; missing?: string } =
  platform() === "linux"
    ? loadNativeAddon<NativeBinding>(
        import.meta.url,
        "../../build/helper-threads.node",
        "packages/broker/build/helper-threads.node",
      )
    : {};

/** Why helper threads keep the default policy on this node; undefined where they need not. */
export const helperThreadSchedulingUnavailable: string | undefined =
  platform() !== "linux" ? "SCHED_BATCH is Linux's" : native.missing;

/**
 * Moves every thread of this process except the calling one (call it from the main thread) from the
 * default policy to SCHED_BATCH; threads an operator gave another policy (chrt) keep it. Threads started
 * later inherit the policy of the thread that starts them, so call it again now and then. Undefined where it
 * cannot be done (see `helperThreadSchedulingUnavailable`). Throws if /proc/self/task cannot be read.
 */
export function scheduleHelperThreadsAsBatch(): HelperThreadCounts | undefined {
  return native.binding?.scheduleHelpersAsBatch();
}
