export { assert, RaftInvariantError } from "./core/assert.js";
export {
  applyConfChange,
  configsEqual,
  describeConfig,
  isLearner,
  isMember,
  isVoter,
  makeConfig,
  peersOf,
  quorumSize,
} from "./core/config.js";
export {
  RaftCore,
  type RaftOptions,
  type RaftStatus,
  type TransferResult,
  type UnsafeTestOnlyBugs,
} from "./core/core.js";
export {
  type DriverBatch,
  type DriverCompletion,
  type DriverOptions,
  type GroupReady,
  MultiRaftDriver,
} from "./core/driver.js";
export {
  type ConfigEntry,
  entryBytes,
  type LogPosition,
  type RaftLogReader,
  RaftLogView,
} from "./core/log.js";
export { MemoryRaftLog } from "./core/memory-log.js";
export { Progress, type ProgressState } from "./core/progress.js";
export { SeededRandom } from "./core/random.js";
export * from "./core/types.js";
export { decodeMessages, encodeMessages, FrameDecodeError, Reader, Writer } from "./host/codec.js";
export {
  type BalancerGroup,
  type LeaderBalanceInput,
  type LeaderBalancePlan,
  planLeaderTransfers,
} from "./host/leader-balancer.js";
export { consoleLogger, type RaftLogger, silentLogger } from "./host/logger.js";
export {
  type GroupOptions,
  type GroupRaftOptions,
  type LeaderBalancerOptions,
  type LeadershipEvent,
  NotLeaderError,
  ProposalDroppedError,
  type ProposalResult,
  type RaftHostOptions,
  RaftNodeHost,
  type StartedProposal,
} from "./host/node-host.js";
export {
  PartitionRaftLog,
  type PartitionRaftLogOptions,
  RaftStorageError,
  raftKeyPrefix,
  StableHardStateStore,
} from "./host/partition-raft-log.js";
export {
  type BatchRecord,
  batchForEntry,
  CONTROL_TYPE_LEADER_CHANGE,
  CONTROL_TYPE_VOTERS,
  encodeRecordBatch,
  entryFromBatch,
  RaftBatchError,
  splitBatches,
} from "./host/record-batch.js";
export type { StateMachine } from "./host/state-machine.js";
export {
  type HardStateStore,
  MemoryHardStateStore,
  MemoryLogStorage,
  type RaftLogStorage,
  type SyncOptions,
} from "./host/storage.js";
export {
  FrameReader,
  frameBytes,
  type PeerAddress,
  RaftTransport,
  type TransportOptions,
  type TransportStats,
  type TransportTls,
} from "./host/transport.js";
export { checkRegisterHistory, type RegisterOperation } from "./sim/linearizability.js";
export {
  Simulation,
  type SimulationOptions,
  type SimulationResult,
  type SimulationStats,
} from "./sim/simulation.js";
