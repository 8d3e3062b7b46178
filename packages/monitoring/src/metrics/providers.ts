/** What the broker reports about each partition log it hosts; read at scrape time. */
export interface PartitionLogStats {
  readonly topic: string;
  readonly partition: number;
  readonly logStartOffset: number;
  readonly logEndOffset: number;
  readonly highWatermark: number;
  readonly segmentCount: number;
  readonly sizeBytes: number;
}

export interface LogStatsProvider {
  partitionLogs(): Iterable<PartitionLogStats> | Promise<Iterable<PartitionLogStats>>;
  /** Directories whose file system's free space is reported (usually log.dirs). */
  logDirectories?(): readonly string[];
}

/** A consumer group's committed offset for one partition, with that partition's high watermark. */
export interface CommittedOffsetStats {
  readonly group: string;
  readonly topic: string;
  readonly partition: number;
  readonly committedOffset: number;
  readonly highWatermark: number;
}

export interface ConsumerGroupStatsProvider {
  committedOffsets(): Iterable<CommittedOffsetStats> | Promise<Iterable<CommittedOffsetStats>>;
}

/** One Raft group (a partition, or the controller as `__cluster_metadata`/0) as this node sees it. */
export interface RaftGroupStats {
  readonly topic: string;
  readonly partition: number;
  readonly role: "leader" | "follower" | "candidate";
  readonly term: number;
  /** False while this replica knows of no leader for the group. */
  readonly leaderKnown: boolean;
  /** Only on the leader: the assigned replicas and the in-sync ones (both counting the leader). */
  readonly replicas?: number;
  readonly inSyncReplicas?: number;
  /** Only on the leader: how far each follower's match index is behind the leader's log end. */
  readonly followers?: Iterable<{ readonly follower: string | number; readonly matchLag: number }>;
}

export interface RaftStatsProvider {
  raftGroups(): Iterable<RaftGroupStats> | Promise<Iterable<RaftGroupStats>>;
}

/** Everything the metrics read at scrape time; the broker registers what it has as it starts. */
export interface MetricsProviders {
  readonly log?: LogStatsProvider;
  readonly groups?: ConsumerGroupStatsProvider;
  readonly raft?: RaftStatsProvider;
}
