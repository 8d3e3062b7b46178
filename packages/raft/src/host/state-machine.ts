import type { Entry, SnapshotMeta } from "../core/types.js";

/**
 * What a Raft group replicates into (hashicorp/raft's FSM). The controller's metadata plugs in here;
 * partitions do not need one, because a partition's state machine is its log.
 */
export interface StateMachine {
  /** Committed entries, in log order, each exactly once per incarnation (noop and config included). */
  apply(entries: readonly Entry[]): void;
  /** The state as of the last applied entry, for log compaction and followers behind the log start. */
  snapshot(): Uint8Array;
  /** Replace the whole state (a follower installing a snapshot, or a restart from one). */
  restore(data: Uint8Array, meta: SnapshotMeta): void;
}
