import { randomBytes } from "node:crypto";
import type { Logger, RaftkaMetrics } from "@raftka/monitoring";
import {
  type GroupId,
  type LeadershipEvent,
  type RaftLogger,
  RaftNodeHost,
  raftKeyPrefix,
  StableHardStateStore,
} from "@raftka/raft";
import { type FlushScheduler, StableStore, type StableStoreRecoveryReport } from "@raftka/storage";

function uint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value, 0);
  return bytes;
}

/**
 * A cut StableStore tail is routine after a crash (a torn last write, whose change was never acted on).
 * Damage with intact records after it is not: the store skipped it and kept those records, so every
 * group's Raft state is its newest intact value, but whatever the damaged bytes held is lost, and a group
 * whose latest term or vote was among them is back at an older one.
 */
function logStableStoreRecovery(logger: Logger, report: StableStoreRecoveryReport): void {
  if (report.damagedRegions.length > 0) {
    const regions = report.damagedRegions
      .map((region) => `bytes ${region.from}-${region.from + region.bytes - 1} (${region.problem})`)
      .join(", ");
    logger.error(
      {
        path: report.path,
        damagedRegions: report.damagedRegions,
        damagedBytesSkipped: report.damagedBytesSkipped,
        recordsKeptAfterDamage: report.recordsKeptAfterDamage,
        rewrittenWithoutDamage: report.rewrittenWithoutDamage,
      },
      `Raft stable store ${report.path} is damaged in the middle: skipped ${report.damagedBytesSkipped} damaged ` +
        `bytes in ${report.damagedRegions.length} region(s), ${regions}, and kept the ` +
        `${report.recordsKeptAfterDamage} intact record(s) after them, so the partitions' Raft state (terms, votes, ` +
        "commit indexes, group ids) recovered to the newest intact values" +
        (report.rewrittenWithoutDamage ? " and the file was rewritten without the damage. " : ". ") +
        "What the damaged bytes held cannot be read and is lost: a group whose latest term or vote was there is " +
        "back at an older one, so it may repeat a leader epoch or vote twice in a term. A crash only tears the last write, so check the " +
        "disk (kernel log, SMART) and replace it if it reports errors",
    );
  }
  if (report.truncatedBytes > 0) {
    logger.warn(
      { path: report.path, truncatedBytes: report.truncatedBytes, reason: report.reason },
      `Raft stable store ${report.path}: cut ${report.truncatedBytes} bytes at its end (${report.reason ?? "torn header"}), ` +
        "a torn last write: normal after a crash or power loss, nothing acknowledged depended on it. If the broker " +
        "had stopped cleanly, check the disk",
    );
  }
}

/** The controller's metadata log is always group 0; partitions get ids from 1 (see `groupFor`). */
export const METADATA_GROUP_ID: GroupId = 0;

const NEXT_GROUP_KEY = "partition-groups/next";
const groupKey = (topicId: string, partition: number) => `partition-groups/${topicId}/${partition}`;

export interface RaftGroupsOptions {
  readonly nodeId: number;
  readonly clusterId: string;
  /** The node's StableStore file (Raft term, vote and commit of every group, and group ids). */
  readonly stableStorePath: string;
  readonly flushScheduler: FlushScheduler;
  readonly tickMs: number;
  readonly electionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  /** raft.flush.linger.ms: how long an fsync round may wait when only acks=0/1 writes need it. */
  readonly flushLingerMs?: number;
  readonly logger: Logger;
  /** raftka_raft_elections_started_total / _won_total follow the host's real election counts. */
  readonly metrics?: RaftkaMetrics;
}

/**
 * The node's Raft side: one RaftNodeHost running every partition's group (and the metadata log's), the
 * StableStore holding their hard states, and the stable mapping from a partition to its Raft group id.
 *
 * Group ids are node-local for now: a counter persisted in the StableStore, keyed by topic id, so a
 * deleted and re-created topic never inherits the old topic's Raft state. Multi-node partitions need
 * the controller to assign them instead (every replica must agree on the id).
 */
export class RaftGroups {
  private readonly listeners = new Map<GroupId, (event: LeadershipEvent) => void>();
  private unassigned: Array<{
    key: string;
    resolve: (group: GroupId) => void;
    reject: (error: unknown) => void;
  }> = [];
  private assigning: Promise<void> = Promise.resolve();
  private readonly reportedElections = { started: 0, won: 0 };
  private electionReportScheduled = false;
  /** Rejects if the host stops after a storage failure: start-up waits on it beside the elections. */
  readonly failed: Promise<never>;
  /** Set once the host failed: appends are answered KAFKA_STORAGE_ERROR. */
  failure: Error | undefined;

  private constructor(
    readonly host: RaftNodeHost,
    readonly stable: StableStore,
    private readonly metrics: RaftkaMetrics | undefined,
  ) {
    this.failed = new Promise<never>((_resolve, reject) => {
      host.onFailure((error) => {
        this.failure = error;
        reject(
          new Error(
            `the node's Raft groups stopped after a storage failure (${error.message}); check the disk and the broker log, then restart the broker`,
          ),
        );
      });
    });
    // Only awaited when something waits on the Raft side (start-up); never an unhandled rejection.
    this.failed.catch(() => {});
    host.onLeadershipChange((event) => {
      this.listeners.get(event.group)?.(event);
      if (metrics) this.scheduleElectionReport();
    });
  }

  static async start(options: RaftGroupsOptions): Promise<RaftGroups> {
    const stable = await StableStore.open(options.stableStorePath, {
      flushScheduler: options.flushScheduler,
    });
    logStableStoreRecovery(options.logger, stable.recoveryReport);
    const ticks = (ms: number) => Math.max(1, Math.round(ms / options.tickMs));
    const syncRoundSeconds = options.metrics?.raft.syncRoundSeconds;
    try {
      const host = await RaftNodeHost.start({
        nodeId: options.nodeId,
        clusterId: options.clusterId,
        // No peers yet: every group has this node as its only voter, so nobody else must connect.
        secret: randomBytes(24).toString("hex"),
        listen: { host: "127.0.0.1", port: 0 },
        peers: new Map(),
        hardStateStore: new StableHardStateStore(stable),
        tickMs: options.tickMs,
        raft: {
          electionTimeoutTicks: ticks(options.electionTimeoutMs),
          heartbeatIntervalTicks: ticks(options.heartbeatIntervalMs),
          // A clean restart adds no Raft entry (no offset) to a partition; after a crash the new leader's
          // no-op commits the tail, as a control batch consumers step over.
          noopOnlyWhenUncommitted: true,
        },
        logger: options.logger as RaftLogger,
        // A partition's commit index is re-learned at start (its state machine is the log): no StableStore
        // fsync per round for it. Written at a clean stop, so a clean restart adds no no-op.
        persistCommitIndexEachRound: false,
        lazySyncMs: options.flushLingerMs ?? 0,
        ...(syncRoundSeconds
          ? { observeSyncRound: (seconds: number) => syncRoundSeconds.observe(seconds) }
          : {}),
      });
      return new RaftGroups(host, stable, options.metrics);
    } catch (error) {
      await stable.close();
      throw error;
    }
  }

  /**
   * The commit index the StableStore holds for `group` (written at each clean stop, so at least what was
   * committed by then), or undefined for a group never started. Read before the group starts: a log that
   * ends below it lost committed entries while the broker was stopped.
   */
  storedCommit(group: GroupId): number | undefined {
    const commit = new StableHardStateStore(this.stable).load(group)?.commit;
    return commit === undefined || commit < 0 ? undefined : commit;
  }

  /**
   * The partition's Raft group id, assigned (durably) the first time the partition is opened. Requests
   * made together (a topic's partitions) are assigned in one StableStore write: one fsync, not thousands.
   */
  groupFor(topicId: string, partition: number): Promise<GroupId> {
    const stored = this.stable.get(groupKey(topicId, partition));
    if (stored !== undefined) return Promise.resolve(stored.readUInt32BE(0));
    return new Promise((resolve, reject) => {
      this.unassigned.push({ key: groupKey(topicId, partition), resolve, reject });
      if (this.unassigned.length > 1) return;
      // Serialized so two batches never take the same ids.
      setImmediate(() => {
        this.assigning = this.assigning.then(() => this.assignQueued());
      });
    });
  }

  private async assignQueued(): Promise<void> {
    const requests = this.unassigned.splice(0);
    let next = this.stable.get(NEXT_GROUP_KEY)?.readUInt32BE(0) ?? METADATA_GROUP_ID + 1;
    const ids = new Map<string, GroupId>();
    for (const { key } of requests) {
      const existing = this.stable.get(key)?.readUInt32BE(0);
      if (!ids.has(key)) ids.set(key, existing ?? next++);
    }
    const writes: Array<readonly [string, Buffer]> = [];
    for (const [key, id] of ids) if (this.stable.get(key) === undefined) writes.push([key, uint32(id)]);
    try {
      await this.stable.setMany([...writes, [NEXT_GROUP_KEY, uint32(next)]]);
    } catch (error) {
      for (const request of requests) request.reject(error);
      return;
    }
    for (const request of requests) request.resolve(ids.get(request.key)!);
  }

  /** A deleted partition's Raft state: its group id mapping, hard state and snapshot position. */
  async forget(topicId: string, partition: number, group: GroupId): Promise<void> {
    this.host.discardHardState(group);
    const keys = this.stable.keys(raftKeyPrefix(group));
    await this.stable.setMany([
      [groupKey(topicId, partition), undefined],
      ...keys.map((key) => [key, undefined] as const),
    ]);
  }

  /** Leadership changes of one group go to its log (one listener per group). */
  listen(group: GroupId, listener: (event: LeadershipEvent) => void): () => void {
    this.listeners.set(group, listener);
    return () => {
      if (this.listeners.get(group) === listener) this.listeners.delete(group);
    };
  }

  /**
   * Every election changes a group's leadership, so the counters are brought up to date after leadership
   * events, once per batch of them (thousands of groups elect at start-up).
   */
  private scheduleElectionReport(): void {
    if (this.electionReportScheduled) return;
    this.electionReportScheduled = true;
    setImmediate(() => {
      this.electionReportScheduled = false;
      this.reportElections();
    });
  }

  private reportElections(): void {
    if (!this.metrics) return;
    const counts = this.host.electionCounts();
    const started = counts.started - this.reportedElections.started;
    const won = counts.won - this.reportedElections.won;
    if (started > 0) this.metrics.raft.electionsStarted.inc(started);
    if (won > 0) this.metrics.raft.electionsWon.inc(won);
    this.reportedElections.started = counts.started;
    this.reportedElections.won = counts.won;
  }

  /** Stops the host (closing the logs of groups still running) and closes the StableStore. */
  async stop(): Promise<void> {
    this.reportElections();
    try {
      await this.host.stop();
    } finally {
      await this.stable.close();
    }
  }
}
