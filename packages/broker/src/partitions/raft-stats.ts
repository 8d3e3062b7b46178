import type { RaftGroupStats, RaftStatsProvider } from "@raftka/monitoring";
import type { ReplicatedLog } from "./replicated-log.js";

/**
 * A partition's consensus state as the Raft metrics report it, read from its ReplicatedLog: the
 * leader epoch is the Raft term, and replicas/ISR come from the log itself. A single-replica log
 * therefore reports honestly what a one-member Raft group is (leader, ISR 1 of 1), and a Raft-backed
 * log reports its real state through the same fields.
 */
export function raftGroupStats(log: ReplicatedLog): RaftGroupStats {
  const { topic, partition } = log.topicPartition;
  const common = { topic, partition, term: log.leaderEpoch, leaderKnown: log.leaderId >= 0 };
  if (!log.isLeader) return { ...common, role: "follower" };
  return {
    ...common,
    role: "leader",
    replicas: log.replicas.length,
    inSyncReplicas: log.inSyncReplicas.length,
  };
}

/** The Raft metrics provider: every Raft group this node hosts (partitions and the metadata log). */
export class ReplicatedLogRaftStats implements RaftStatsProvider {
  constructor(private readonly logs: () => Iterable<ReplicatedLog>) {}

  *raftGroups(): Iterable<RaftGroupStats> {
    for (const log of this.logs()) yield raftGroupStats(log);
  }
}
