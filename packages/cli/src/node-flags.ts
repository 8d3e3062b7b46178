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

/**
 * glibc malloc settings the broker process starts with, in GLIBC_TUNABLES. glibc reads them once, at
 * process start, so like the V8 flags they come from whoever starts the broker.
 *
 * The broker reads a large request straight into a buffer of the request's size (FrameReader): about
 * 1 MB for a full librdkafka batch. By default glibc hands out every allocation that large as a fresh
 * mmap and returns it to the kernel when freed, so the kernel zero-fills and maps each page again as the
 * socket read touches it. `mmap_threshold=8 MiB` serves them from the heap, where freed ones are reused,
 * and `trim_threshold=64 MiB` keeps up to 64 MiB of freed heap instead of returning it after every burst
 * (what stays free longer, the broker's HeapTrimmer hands back: packages/broker/src/server/heap-trim.ts).
 * Measured with 8 partitions of 1 KiB records (scripts/bench/produce-cost.mjs, docs/benchmarks.md):
 * acks=1 cost 1.02-1.19 ms of CPU per MiB with them, 1.11-1.67 without them in three series of rounds,
 * and 1.43-1.69 before direct reads; peak RSS is about 40 MiB higher. Since the node's BufferPool hands
 * out anonymous mappings where its addon is built, those frames no longer come from malloc, and four
 * series (the last of ten rounds each) showed no clear difference in CPU either way, with 5-31 MiB less
 * peak RSS without them (docs/benchmarks.md, "Pooled buffers in mappings of their own"); the settings stay
 * for the node's other large allocations and for nodes without the addon.
 */
export const BROKER_GLIBC_TUNABLES: readonly string[] = [
  "glibc.malloc.mmap_threshold=8388608",
  "glibc.malloc.trim_threshold=67108864",
];

/** The broker's tunables that GLIBC_TUNABLES in `env` lacks (empty when all are there). */
export function missingBrokerGlibcTunables(env: NodeJS.ProcessEnv = process.env): string[] {
  const present = (env.GLIBC_TUNABLES ?? "").split(":");
  return BROKER_GLIBC_TUNABLES.filter((tunable) => !present.includes(tunable));
}

/**
 * The size of libuv's thread pool in the broker process (UV_THREADPOOL_SIZE). libuv reads it once, when
 * the pool first starts, which in an ES module program is before any of the broker's code runs, so it
 * too comes from whoever starts the broker.
 *
 * Segment writes, fsyncs and file reads share the pool. A group-commit round starts one fsync per log it
 * covers (8 with 8 busy partitions), so with libuv's default of 4 threads the fsyncs ran in two waves and
 * every segment write behind them waited. Measured at half the sustained produce rate, 8 partitions of
 * 1 KiB records, four alternating pairs (docs/benchmarks.md, "A pool of 16 threads, again"): acks=1
 * Produce handling at p50 / p99 0.32-0.34 / 2.18-2.26 ms instead of 0.48-0.59 / 3.74-4.01, and the
 * client's p99 7.03-7.34 ms instead of 8.05-8.54. The threads sleep when there is nothing to do, and
 * `raftka start` puts them under SCHED_BATCH (helper-threads.ts).
 */
export const BROKER_THREAD_POOL_SIZE = 16;

/** Whether `env` chooses libuv's pool size (an operator's own size wins, like their GLIBC_TUNABLES). */
const choosesThreadPoolSize = (env: NodeJS.ProcessEnv) => (env.UV_THREADPOOL_SIZE ?? "") !== "";

/** Why `env` would give the broker a smaller pool than it ships with: undefined when it chooses one. */
export function threadPoolSizeAdvice(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (choosesThreadPoolSize(env)) return undefined;
  return `the broker was started without UV_THREADPOOL_SIZE=${BROKER_THREAD_POOL_SIZE}: libuv's pool has 4 threads, and produce requests then wait for segment writes queued behind fsyncs (the broker's handling p99 about 1.7 times as long at half load); start it with scripts/start.sh or \`UV_THREADPOOL_SIZE=${BROKER_THREAD_POOL_SIZE} node ${BROKER_NODE_FLAGS.join(" ")} <raftka>/packages/cli/dist/main.js start\``;
}

/**
 * `env` for a broker process: GLIBC_TUNABLES with the broker's settings first, so that any the caller
 * already set (later in the list) still win, and the broker's UV_THREADPOOL_SIZE unless the caller set one.
 */
export function brokerEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const existing = env.GLIBC_TUNABLES ?? "";
  const own = BROKER_GLIBC_TUNABLES.join(":");
  return {
    ...env,
    GLIBC_TUNABLES: existing === "" ? own : `${own}:${existing}`,
    UV_THREADPOOL_SIZE: choosesThreadPoolSize(env) ? env.UV_THREADPOOL_SIZE : String(BROKER_THREAD_POOL_SIZE),
  };
}
