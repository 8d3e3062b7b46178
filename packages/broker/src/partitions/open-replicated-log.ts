import type { DirectReads, DirectWrites, FlushScheduler, LogConfig, LogEvent } from "@raftka/storage";
import { LocalReplicatedLog } from "./local-replicated-log.js";
import type { RaftGroups } from "./raft-groups.js";
import { RaftReplicatedLog } from "./raft-replicated-log.js";
import type { TopicPartition } from "./replicated-log.js";

export interface OpenReplicatedLogOptions {
  readonly topicPartition: TopicPartition;
  readonly nodeId: number;
  /** The node's Raft groups and this partition's group id; without them the log is a LocalReplicatedLog. */
  readonly raft?: { readonly groups: RaftGroups; readonly group: number };
  /** Leader epoch from the cluster metadata, for a LocalReplicatedLog (a Raft log's epoch is its term). */
  readonly leaderEpoch: number;
  readonly config: Partial<LogConfig>;
  readonly flushScheduler: FlushScheduler;
  /** Lets large appends bypass the page cache (log.direct.io.enable); without it, none do. */
  readonly directWrites?: DirectWrites;
  /** Lets reads of data not in the page cache bypass it (log.direct.reads.enable); without it, none do. */
  readonly directReads?: DirectReads;
  /**
   * Whether the disk can spare `bytes` for blocks reserved ahead of appends (log.preallocate); when it
   * answers true they count as taken. Without it, every reservation is made.
   */
  readonly mayReserve?: (bytes: number) => boolean;
  readonly now: () => number;
  readonly onEvent?: (event: LogEvent) => void;
  /** Seconds from a Raft proposal to its commit. */
  readonly observeCommitLatency?: (seconds: number) => void;
}

/**
 * Opens a partition's log the way `raft.partitions.enable` says: a Raft group on the node's host (its
 * election started, not awaited: see `RaftReplicatedLog.whenLeader`) or a plain local log.
 */
export function openReplicatedLog(
  directory: string,
  options: OpenReplicatedLogOptions,
): Promise<LocalReplicatedLog | RaftReplicatedLog> {
  const common = {
    topicPartition: options.topicPartition,
    nodeId: options.nodeId,
    config: options.config,
    flushScheduler: options.flushScheduler,
    ...(options.directWrites ? { directWrites: options.directWrites } : {}),
    ...(options.directReads ? { directReads: options.directReads } : {}),
    ...(options.mayReserve ? { mayReserve: options.mayReserve } : {}),
    now: options.now,
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  };
  if (options.raft === undefined) {
    return LocalReplicatedLog.open(directory, { ...common, leaderEpoch: options.leaderEpoch });
  }
  return RaftReplicatedLog.open(directory, {
    ...common,
    raft: options.raft.groups,
    group: options.raft.group,
    ...(options.observeCommitLatency ? { observeCommitLatency: options.observeCommitLatency } : {}),
  });
}
