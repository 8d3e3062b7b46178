// The `raftka` executable is main.ts; this entry point lets tests and tools run it in-process.
export { ADMIN_URL_VARIABLE, BROKERS_VARIABLE, runCli } from "./cli.js";
export { START_USAGE, start } from "./commands/start.js";
export type { CliIo } from "./context.js";
// The CLI-wide exit codes (start's own ExitCode has the same values for the codes it uses).
export { CliError, ExitCode, OperationFailedError, UnreachableError, UsageError } from "./errors.js";
export { Interrupts } from "./interrupts.js";
export { murmur2, partitionForKey } from "./kafka/partitioner.js";
export {
  memoryLimitBytes,
  ownMemoryCgroup,
  pageCacheAdvice,
  reportsFreePagesToHost,
} from "./memory-cgroup.js";
export {
  BROKER_GLIBC_TUNABLES,
  BROKER_NODE_FLAGS,
  BROKER_THREAD_POOL_SIZE,
  brokerEnvironment,
  missingBrokerGlibcTunables,
  missingBrokerNodeFlags,
  threadPoolSizeAdvice,
} from "./node-flags.js";
