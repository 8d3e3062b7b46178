/**
 * V8 flags the broker process starts with (Node refuses them in NODE_OPTIONS, so they go on the
 * command line: scripts/start.sh, the benchmarks and the test harnesses pass them).
 *
 * `--initial-old-space-size=128`: the broker keeps a small heap (about 25 MB live) while hundreds of
 * MB/s of request buffers pass through it. From V8's default starting limit some runs fall into
 * back-to-back major GCs and stay there. Measured with 8 partitions of 1 KiB records: acks=all
 * cost 1.7-2.2 ms of CPU per MiB with the flag against 2.7-3.1 without, and idempotent producers
 * ran at full speed in every run instead of at about half speed in half the runs.
 */
export const BROKER_NODE_FLAGS: readonly string[] = ["--initial-old-space-size=128"];

/** The broker flags this process was started without (empty when all are there). */
export function missingBrokerNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return BROKER_NODE_FLAGS.filter((flag) => !execArgv.includes(flag));
}
