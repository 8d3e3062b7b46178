import type { RaftGroupStats, RaftStatsProvider } from "@raftka/monitoring";
import { RaftReplicatedLog } from "./raft-replicated-log.js";
import type { ReplicatedLog } from "./replicated-log.js";

/**
 * A partition's consensus state as the Raft metrics report it, read from its ReplicatedLog: for a
 * RaftReplicatedLog the term, leader and role are the Raft group's own (from the host's leadership
 * events), and replicas/ISR are the group's voters (one, this node, today).
 */
export function raftGroupStats(log: ReplicatedLog): RaftGroupStats {
  const { topic, partition } = log.topicPartition;
  const common = { topic, partition, term: log.leaderEpoch, leaderKnown: log.leaderId >= 0 };
  if (!log.isLeader) {
    const raftRole = log instanceof RaftReplicatedLog ? log.raftRole : "follower";
    const candidate = raftRole === "candidate" || raftRole === "preCandidate";
    return { ...common, role: candidate ? "candidate" : "follower" };
  }
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
