import { randomInt } from "node:crypto";
import { RaftCore, type RaftOptions, type RaftStatus, type TransferResult } from "../core/core.js";
import { type DriverCompletion, type GroupReady, MultiRaftDriver } from "../core/driver.js";
import { SeededRandom } from "../core/random.js";
import {
  type ConfChange,
  type GroupId,
  type HardState,
  type Leadership,
  type Message,
  NO_NODE,
  type NodeId,
  type ProposeError,
  type ReadFailure,
} from "../core/types.js";
import { type BalancerGroup, planLeaderTransfers } from "./leader-balancer.js";
import { type RaftLogger, silentLogger } from "./logger.js";
import type { StateMachine } from "./state-machine.js";
import type { HardStateStore, RaftLogStorage } from "./storage.js";
import { type PeerAddress, RaftTransport, type TransportStats, type TransportTls } from "./transport.js";

/** Raft options a host applies to all its groups (ids and randomness are filled in per group). */
export type GroupRaftOptions = Partial<Omit<RaftOptions, "id" | "group" | "random" | "applied">>;

export interface RaftHostOptions {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  /** Shared cluster secret (at least 16 characters); peers that do not know it are refused. */
  readonly secret: string;
  readonly listen: PeerAddress;
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  readonly tls?: TransportTls;
  readonly hardStateStore: HardStateStore;
  /** One tick for all groups; election and heartbeat timeouts are counted in ticks. */
  readonly tickMs?: number;
  readonly raft?: GroupRaftOptions;
  readonly logger?: RaftLogger;
  /** Seed for election timeouts (tests); random by default. */
  readonly seed?: number;
  /** Opt-in: hand leadership over toward an even spread of leaders across live nodes. */
  readonly leaderBalancer?: LeaderBalancerOptions;
  /**
   * false: a hard state that only moved the commit index is written at stop (and with the next term or
   * vote change), not with every fsync round. Safe (the commit index is re-learned after a restart) and
   * it spares a StableStore write and fsync per round, but after a crash the commit lags: groups whose
   * state machine is not the log (the controller) re-apply more. Default true.
   */
  readonly persistCommitIndexEachRound?: boolean;
  /**
   * How long (ms) an fsync round may wait to gather more when only lazy proposals (see
   * `startProposal`) need it: writes nobody waits on then share rounds instead of fsyncing one round
   * after another. Anything else (a proposal waited on, a vote, a state machine, a peer) starts the
   * round at once. Their commit (a partition's high watermark) may lag by up to this. Default 0.
   */
  readonly lazySyncMs?: number;
  /**
   * Told how long each fsync round took, in seconds: from its start (its writes issued, or already
   * landing) to its completion (everything it covers durable, and every earlier round complete). A
   * proposal waited on commits within the round after the one running when it came.
   */
  readonly observeSyncRound?: (seconds: number) => void;
}

export interface LeaderBalancerOptions {
  /** Time between balancing passes (default 1000 ms, rounded to whole ticks). */
  readonly intervalMs?: number;
  /** Leadership transfers one pass may start (default 100): the rate limit. */
  readonly maxTransfersPerPass?: number;
}

interface LeaderBalancerState {
  readonly intervalTicks: number;
  readonly maxTransfersPerPass: number;
  ticksUntilPass: number;
  /** Leadership changed (or a peer came or went) since the last pass: worth looking again. */
  changed: boolean;
  /** Groups handed over recently, with the tick of the handover: not handed over again meanwhile. */
  readonly recent: Map<GroupId, number>;
  passes: number;
  transfers: number;
  /** The spread last reported as needing nothing from this node: reported again only when it changes. */
  lastReported: string;
}

export interface GroupOptions {
  readonly log: RaftLogStorage;
  /** Omit for partitions: their state machine is the log, so only the commit index matters. */
  readonly stateMachine?: StateMachine;
  readonly raft?: GroupRaftOptions;
  /**
   * Partitions (no state machine): called once the commit index has moved, after the fsync round that
   * made it durable here, with the new commit index (the high watermark is commitIndex + 1).
   */
  readonly onCommit?: (commitIndex: number) => void;
  /** Called once entries up to `lastOffset` are written to the log (not yet durable): acks=1. */
  readonly onWritten?: (lastOffset: number) => void;
}

/** A proposal the core accepted: where it went at once, and a promise that settles when it commits. */
export interface StartedProposal extends ProposalResult {
  readonly committed: Promise<ProposalResult>;
}

export interface ProposalResult {
  readonly firstOffset: number;
  readonly lastOffset: number;
  readonly term: number;
}

export interface LeadershipEvent extends Leadership {
  readonly group: GroupId;
}

/** Thrown to a proposer or reader: this node cannot serve the request; `leader` says who can (-1 = unknown). */
export class NotLeaderError extends Error {
  override name = "NotLeaderError";
  constructor(
    readonly group: GroupId,
    readonly leader: NodeId,
    readonly reason: ProposeError | ReadFailure | "UNKNOWN_GROUP" | "SHUTTING_DOWN",
    detail = "",
  ) {
    super(
      `group ${group}: ${reason}${detail ? ` (${detail})` : ""}; ${
        leader === NO_NODE ? "no leader is known yet, retry shortly" : `retry on node ${leader}`
      }`,
    );
  }
}

/** The entry a proposal occupied was replaced by another leader's entry: it did not commit. */
export class ProposalDroppedError extends Error {
  override name = "ProposalDroppedError";
  constructor(
    readonly group: GroupId,
    readonly offset: number,
  ) {
    super(`group ${group}: the proposal at offset ${offset} was overwritten after a leader change; retry it`);
  }
}

interface PendingProposal {
  readonly lastOffset: number;
  readonly term: number;
  readonly resolve: (result: ProposalResult) => void;
  readonly reject: (error: Error) => void;
  readonly firstOffset: number;
}

interface GroupState {
  readonly group: GroupId;
  readonly core: RaftCore;
  readonly log: RaftLogStorage;
  readonly stateMachine: StateMachine | undefined;
  /** Highest offset applied to the state machine (the commit index for partitions). */
  applied: number;
  readonly proposals: PendingProposal[];
  readonly waitingReads: Array<{ index: number; resolve: (index: number) => void }>;
  /** Storage writes issued but not yet covered by a completed fsync round. */
  pendingWrite: Promise<void> | undefined;
  readonly onCommit: ((commitIndex: number) => void) | undefined;
  readonly onWritten: ((lastOffset: number) => void) | undefined;
}

/**
 * Runs all Raft groups of one node: one tick timer, one TCP transport (one frame per peer per round),
 * group-committed persistence (every round's log writes and hard states share one fsync round, and
 * the messages that must wait for durability leave together after it), and the client-facing promises
 * for proposals and linearizable reads. Idle groups quiesce and cost nothing per tick.
 */
export class RaftNodeHost {
  readonly nodeId: NodeId;
  private readonly driver: MultiRaftDriver;
  private readonly transport: RaftTransport;
  private readonly groups = new Map<GroupId, GroupState>();
  private readonly logger: RaftLogger;
  private readonly random: SeededRandom;
  private readonly hardStates: HardStateStore;
  private pendingHardStates = new Map<GroupId, HardState>();
  /** Commit-only hard states held back until stop (`persistCommitIndexEachRound: false`). */
  private readonly deferredHardStates = new Map<GroupId, HardState>();
  private touchedLogs = new Set<GroupState>();
  /**
   * A round is waiting for its writes to land; the next one starts once they have, so its writes
   * overlap this round's fsyncs (measured: waiting for the writes took a third of each round).
   */
  private roundCollecting = false;
  /** The last batch id a round covers. */
  private coveredUpTo = -1;
  /** Something collected needs durability soon: the next round starts without lingering. */
  private syncDue = false;
  /**
   * Something proposed but not yet collected needs durability soon. Kept apart from syncDue because a
   * round that starts before the next collect does not cover it: clearing one flag for both let such a
   * proposal (acks=all) wait out the whole linger (measured: 5-9 ms instead of one fsync round).
   */
  private syncWanted = false;
  private lingerTimer: NodeJS.Timeout | undefined;
  /** The linger is over: the next round starts, though nothing in it is urgent. */
  private lingerEnded = false;
  /** Settles when every round started so far has completed. */
  private round: Promise<void> = Promise.resolve();
  private processScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private failure: Error | undefined;
  private nextReadContext = 1;
  private readonly reads = new Map<
    number,
    { group: GroupId; resolve: (index: number) => void; reject: (error: Error) => void }
  >();
  private readonly leadershipListeners: Array<(event: LeadershipEvent) => void> = [];
  private readonly failureListeners: Array<(error: Error) => void> = [];
  private readonly unknownGroupsLogged = new Set<GroupId>();
  private balancer: LeaderBalancerState | undefined;
  private ticks = 0;
  /** Elections of groups no longer hosted, so the node's totals never go down. */
  private readonly removedElections = { started: 0, won: 0 };
  /** Fsync rounds completed (each covers every group that wrote since the previous one). */
  syncRounds = 0;

  private constructor(private readonly options: RaftHostOptions) {
    this.nodeId = options.nodeId;
    this.logger = options.logger ?? silentLogger;
    this.random = new SeededRandom(options.seed ?? randomInt(2 ** 31));
    this.hardStates = options.hardStateStore;
    const electionTimeoutTicks = options.raft?.electionTimeoutTicks ?? 10;
    this.driver = new MultiRaftDriver({
      nodeId: options.nodeId,
      peers: [...options.peers.keys()],
      livenessTimeoutTicks: electionTimeoutTicks,
      nodeHeartbeatTicks: options.raft?.heartbeatIntervalTicks ?? 2,
    });
    this.transport = new RaftTransport({
      nodeId: options.nodeId,
      clusterId: options.clusterId,
      secret: options.secret,
      listen: options.listen,
      peers: options.peers,
      tls: options.tls,
      logger: this.logger,
      onMessages: (from, messages) => this.receive(from, messages),
      onPeerDown: (peer) => {
        this.driver.peerUnreachable(peer);
        if (this.balancer !== undefined) this.balancer.changed = true;
        this.schedule();
      },
      onPeerUp: () => {
        if (this.balancer !== undefined) this.balancer.changed = true;
      },
    });
  }

  static async start(options: RaftHostOptions): Promise<RaftNodeHost> {
    const host = new RaftNodeHost(options);
    await host.transport.start();
    const tickMs = options.tickMs ?? 50;
    host.timer = setInterval(() => host.tick(), tickMs);
    if (options.leaderBalancer !== undefined) host.startLeaderBalancer(options.leaderBalancer);
    return host;
  }

  /** The port the transport listens on (useful with port 0). */
  get port(): number {
    return this.transport.port;
  }

  get transportStats(): TransportStats {
    return this.transport.stats;
  }

  /** The one connection per connected peer (status pages): who dialled it and from where. */
  peerConnections(): Array<{ peer: NodeId; dialledBy: NodeId; remote: string }> {
    return this.transport.connections();
  }

  /** Groups currently awake (not quiesced): the ones that cost something per tick. */
  get awakeGroups(): number {
    return this.driver.awakeGroupCount();
  }

  /** Replace the peer list (a node joined, left or moved); connections follow. */
  setPeers(peers: ReadonlyMap<NodeId, PeerAddress>): void {
    this.transport.setPeers(peers);
    this.driver.setPeers([...peers.keys()]);
  }

  /**
   * Start moving leadership toward an even spread over live nodes: every `intervalMs`, if this node
   * leads more than its share of the groups it hosts, it transfers up to `maxTransfersPerPass` of them
   * to caught-up live voters below their share. Each node balances what it leads; run it on all.
   */
  startLeaderBalancer(options: LeaderBalancerOptions = {}): void {
    this.assertRunning();
    const tickMs = this.options.tickMs ?? 50;
    const intervalMs = options.intervalMs ?? 1_000;
    const maxTransfersPerPass = options.maxTransfersPerPass ?? 100;
    if (!(intervalMs > 0) || !Number.isInteger(maxTransfersPerPass) || maxTransfersPerPass < 1) {
      throw new RangeError(
        `leader balancer needs intervalMs > 0 and maxTransfersPerPass a positive integer, got ${intervalMs} and ${maxTransfersPerPass}`,
      );
    }
    const intervalTicks = Math.max(1, Math.round(intervalMs / tickMs));
    this.balancer = {
      intervalTicks,
      maxTransfersPerPass,
      ticksUntilPass: intervalTicks,
      changed: true,
      recent: new Map(),
      passes: 0,
      transfers: 0,
      lastReported: "",
    };
    this.logger.info({ intervalMs: intervalTicks * tickMs, maxTransfersPerPass }, "leader balancer started");
  }

  stopLeaderBalancer(): void {
    if (this.balancer === undefined) return;
    this.logger.info(
      { passes: this.balancer.passes, transfers: this.balancer.transfers },
      "leader balancer stopped",
    );
    this.balancer = undefined;
  }

  /** Leadership transfers the balancer started so far (0 when it never ran). */
  get balancerTransfers(): number {
    return this.balancer?.transfers ?? 0;
  }

  /** Called once if the node stops after a storage or invariant failure (it serves nothing more). */
  onFailure(listener: (error: Error) => void): void {
    if (this.failure !== undefined) listener(this.failure);
    else this.failureListeners.push(listener);
  }

  onLeadershipChange(listener: (event: LeadershipEvent) => void): void {
    this.leadershipListeners.push(listener);
  }

  /** Start (or restart from disk) one group; its log's snapshot meta carries the initial membership. */
  addGroup(group: GroupId, options: GroupOptions): void {
    this.assertRunning();
    if (this.groups.has(group)) throw new Error(`group ${group} already runs on node ${this.nodeId}`);
    const meta = options.log.snapshotMeta();
    if (options.stateMachine !== undefined) {
      const snapshot = options.log.snapshot();
      if (snapshot === undefined) {
        throw new Error(
          `group ${group}: its snapshot must be in memory when the group starts; load it first`,
        );
      }
      options.stateMachine.restore(snapshot.data, meta);
    }
    const random = this.random.fork(group);
    const core = new RaftCore(
      {
        ...this.options.raft,
        ...options.raft,
        id: this.nodeId,
        group,
        random: () => random.next(),
        deliverCommittedEntries: options.stateMachine !== undefined,
        applied: meta.offset,
      },
      options.log,
      this.hardStates.load(group) ?? { term: 0, vote: NO_NODE, commit: -1 },
    );
    const state: GroupState = {
      group,
      core,
      log: options.log,
      stateMachine: options.stateMachine,
      applied: options.stateMachine === undefined ? core.commitIndex : meta.offset,
      proposals: [],
      waitingReads: [],
      pendingWrite: undefined,
      onCommit: options.onCommit,
      onWritten: options.onWritten,
    };
    options.log.onLoaded = () => {
      if (this.groups.get(group) !== state) return;
      core.entriesLoaded();
      this.driver.touch(group);
      this.schedule();
    };
    this.groups.set(group, state);
    this.driver.addGroup(core);
    this.schedule();
  }

  async removeGroup(group: GroupId): Promise<void> {
    const state = this.groups.get(group);
    if (state === undefined) return;
    this.removedElections.started += state.core.elections.started;
    this.removedElections.won += state.core.elections.won;
    this.groups.delete(group);
    this.driver.removeGroup(group);
    this.failPending(
      state,
      new NotLeaderError(group, NO_NODE, "UNKNOWN_GROUP", "the group was removed from this node"),
    );
    await state.pendingWrite;
    await state.log.close();
  }

  /**
   * A removed group that will never come back (its partition was deleted): its hard state not yet
   * written is dropped, so nothing writes the group's keys after the caller removed them.
   */
  discardHardState(group: GroupId): void {
    if (this.groups.has(group))
      throw new Error(`group ${group} still runs on node ${this.nodeId}; remove it first`);
    this.pendingHardStates.delete(group);
    this.deferredHardStates.delete(group);
  }

  hasGroup(group: GroupId): boolean {
    return this.groups.has(group);
  }

  /**
   * Append a record batch of `recordCount` records; resolves once it is committed (durable on a
   * majority). Rejects with NotLeaderError when this node does not lead the group.
   */
  propose(group: GroupId, payload: Uint8Array, recordCount = 1): Promise<ProposalResult> {
    let state: GroupState;
    let result: ReturnType<RaftCore["propose"]>;
    try {
      state = this.groupState(group);
      result = state.core.propose(payload, recordCount);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!result.ok) return Promise.reject(new NotLeaderError(group, result.leader, result.error));
    this.syncWanted = true;
    this.driver.touch(group);
    this.schedule();
    return this.trackProposal(state, result);
  }

  /**
   * Like `propose`, but answers synchronously where the entry went (throws NotLeaderError when this
   * node does not lead the group), so a caller can wait for the local write (acks=1) or the commit.
   * With durability "lazy" the fsync round that commits it may linger (`lazySyncMs`).
   */
  startProposal(
    group: GroupId,
    payload: Uint8Array,
    recordCount = 1,
    durability: "now" | "lazy" = "now",
  ): StartedProposal {
    const state = this.groupState(group);
    const result = state.core.propose(payload, recordCount);
    if (!result.ok) throw new NotLeaderError(group, result.leader, result.error);
    // "lazy": the caller answers its client at the write (acks=1) and needs the commit only eventually.
    if (durability === "now") this.syncWanted = true;
    this.driver.touch(group);
    this.schedule();
    const accepted = { firstOffset: result.firstOffset, lastOffset: result.lastOffset, term: result.term };
    return { ...accepted, committed: this.trackProposal(state, accepted) };
  }

  /**
   * Start an election for `group` now instead of after an election timeout (a one-member group at
   * start-up: it wins at once and its first entry commits with the next fsync round).
   */
  campaign(group: GroupId): void {
    this.groupState(group).core.campaignNow();
    this.driver.touch(group);
    this.schedule();
  }

  /** Elections this node started and won, over every group it hosts or hosted. */
  electionCounts(): { started: number; won: number } {
    let { started, won } = this.removedElections;
    for (const state of this.groups.values()) {
      started += state.core.elections.started;
      won += state.core.elections.won;
    }
    return { started, won };
  }

  /** One membership step; resolves once the new configuration is committed. */
  changeMembership(group: GroupId, change: ConfChange): Promise<ProposalResult> {
    let state: GroupState;
    let result: ReturnType<RaftCore["proposeConfChange"]>;
    try {
      state = this.groupState(group);
      result = state.core.proposeConfChange(change);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!result.ok)
      return Promise.reject(new NotLeaderError(group, result.leader, result.error, result.detail));
    this.syncWanted = true;
    this.driver.touch(group);
    this.schedule();
    return this.trackProposal(state, result);
  }

  /**
   * Linearizable read point (ReadIndex): resolves with an index this node has applied and that is at
   * least the leader's commit index at the time of the call. Works on followers too.
   */
  readIndex(group: GroupId): Promise<number> {
    let state: GroupState;
    try {
      state = this.groupState(group);
    } catch (error) {
      return Promise.reject(error);
    }
    const context = this.nextReadContext++;
    return new Promise<number>((resolve, reject) => {
      this.reads.set(context, { group, resolve, reject });
      this.syncWanted = true;
      state.core.readIndex(context);
      this.driver.touch(group);
      this.schedule();
    });
  }

  transferLeadership(group: GroupId, target: NodeId): TransferResult {
    const result = this.groupState(group).core.transferLeadership(target);
    this.driver.touch(group);
    this.schedule();
    return result;
  }

  leaderOf(group: GroupId): NodeId {
    return this.groups.get(group)?.core.currentLeader ?? NO_NODE;
  }

  isLeader(group: GroupId): boolean {
    return this.groups.get(group)?.core.isLeader() ?? false;
  }

  /**
   * Whether the group's core drops an entry's payload once the entry is handed to the log (see
   * RaftOptions.releaseWrittenPayloads): then only the log's own cache, if any, keeps it after the write.
   */
  releasesWrittenPayloads(group: GroupId): boolean {
    return this.groups.get(group)?.core.releasesWrittenPayloads() ?? false;
  }

  commitIndex(group: GroupId): number {
    return this.groupState(group).core.commitIndex;
  }

  status(group: GroupId): RaftStatus {
    return this.groupState(group).core.status();
  }

  groupIds(): GroupId[] {
    return [...this.groups.keys()];
  }

  /** Snapshot the group's state machine at its applied index and drop the log before it. */
  async compact(group: GroupId): Promise<void> {
    const state = this.groupState(group);
    const data = state.stateMachine?.snapshot() ?? new Uint8Array(0);
    await state.log.compact(state.applied, data);
  }

  /**
   * Stop the node. With `transferLeadership` (graceful shutdown), first hand every group this node
   * leads to its most up-to-date voter and wait (up to `timeoutMs`) for the handover.
   */
  async stop(options: { transferLeadership?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopLeaderBalancer();
    if (options.transferLeadership && this.failure === undefined)
      await this.handOverLeadership(options.timeoutMs ?? 5_000);
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer);
    await this.transport.stop();
    await this.round;
    // A deferred state is newer than a pending one of the same group (a pending one clears it).
    for (const [group, state] of this.deferredHardStates) this.pendingHardStates.set(group, state);
    if (this.pendingHardStates.size > 0 && this.failure === undefined) {
      await this.hardStates.saveMany(this.pendingHardStates).catch(() => {});
    }
    for (const state of this.groups.values()) {
      this.failPending(state, new NotLeaderError(state.group, NO_NODE, "SHUTTING_DOWN"));
    }
    // Many at a time, so their final fsyncs share rounds; not all at once, so thousands of logs
    // closing do not queue thousands of one-off file opens.
    const failures: Error[] = [];
    await forEachConcurrently([...this.groups.values()], LOG_CLOSE_CONCURRENCY, async (state) => {
      await state.pendingWrite?.catch(() => {});
      await state.log.close().catch((error: Error) => {
        failures.push(error);
        this.logger.error(
          { group: state.group, error: error.message },
          "closing a Raft group's log failed; it will be recovered from disk when the node starts",
        );
      });
    });
    this.groups.clear();
    if (failures.length > 0) throw failures[0];
  }

  // -------------------------------------------------------------------------------------------

  private async handOverLeadership(timeoutMs: number): Promise<void> {
    const led = [...this.groups.values()].filter((state) => state.core.isLeader());
    for (const state of led) {
      const candidates = state.core
        .status()
        .progress.filter(
          (progress) =>
            state.core.membership.voters.includes(progress.node) && this.transport.isConnected(progress.node),
        )
        .sort((a, b) => b.match - a.match);
      const target = candidates[0];
      if (target !== undefined) state.core.transferLeadership(target.node);
      this.driver.touch(state.group);
    }
    this.schedule();
    // Done once each group hears from its new leader: our vote for it has then been delivered too.
    const handedOver = (state: GroupState): boolean =>
      state.core.currentLeader !== this.nodeId && state.core.currentLeader !== NO_NODE;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !led.every(handedOver)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const remaining = led.filter((state) => !handedOver(state)).length;
    if (remaining > 0) {
      this.logger.warn(
        { remaining },
        "some groups could not hand over leadership before shutdown; they will elect after a timeout",
      );
    }
  }

  private groupState(group: GroupId): GroupState {
    this.assertRunning();
    const state = this.groups.get(group);
    if (state === undefined) {
      throw new NotLeaderError(
        group,
        NO_NODE,
        "UNKNOWN_GROUP",
        `node ${this.nodeId} does not host this group`,
      );
    }
    return state;
  }

  private assertRunning(): void {
    if (this.failure !== undefined) {
      throw new Error(`Raft node ${this.nodeId} stopped after a storage failure: ${this.failure.message}`);
    }
    if (this.stopped) throw new Error(`Raft node ${this.nodeId} has been stopped`);
  }

  private trackProposal(state: GroupState, result: ProposalResult): Promise<ProposalResult> {
    return new Promise<ProposalResult>((resolve, reject) => {
      state.proposals.push({ ...result, resolve, reject });
    });
  }

  private tick(): void {
    if (this.stopped) return;
    this.ticks++;
    this.driver.tick();
    if (this.balancer !== undefined && --this.balancer.ticksUntilPass <= 0) {
      this.balancer.ticksUntilPass = this.balancer.intervalTicks;
      this.balanceLeaders(this.balancer);
    }
    this.process();
  }

  /** One balancing pass: plan from what this node knows, start the transfers, log the progress. */
  private balanceLeaders(balancer: LeaderBalancerState): void {
    const electionTimeoutTicks = this.options.raft?.electionTimeoutTicks ?? 10;
    // A transfer either completes or is abandoned within an election timeout; allow for two.
    const transfersPending = balancer.recent.size > 0;
    for (const [group, tick] of balancer.recent) {
      if (this.ticks - tick > 2 * electionTimeoutTicks) balancer.recent.delete(group);
    }
    if (!balancer.changed && !transfersPending) return;
    balancer.changed = false;
    const live = (node: NodeId) => node === this.nodeId || this.transport.isConnected(node);
    const views: BalancerGroup[] = [];
    for (const state of this.groups.values()) {
      views.push({
        group: state.group,
        leader: state.core.currentLeader,
        liveVoters: state.core.membership.voters.filter(live),
      });
    }
    const plan = planLeaderTransfers({
      self: this.nodeId,
      groups: views,
      maxTransfers: balancer.maxTransfersPerPass,
      canTakeOver: (group, node) => {
        if (balancer.recent.has(group)) return false;
        const core = this.groups.get(group)!.core;
        return core.matchOf(node) === core.lastOffset;
      },
    });
    balancer.passes++;
    // Still over its share (rate limit, or followers still catching up): look again next pass even
    // if no leadership changes in between.
    balancer.changed = plan.excessAfter > 0;
    const led = plan.leaders.get(this.nodeId) ?? 0;
    const share = plan.shares.get(this.nodeId) ?? 0;
    const spread = Object.fromEntries(plan.leaders);
    if (plan.transfers.length === 0) {
      const reported = JSON.stringify(spread);
      if (balancer.recent.size === 0 && reported !== balancer.lastReported) {
        balancer.lastReported = reported;
        this.logger.info(
          {
            led,
            share: Number(share.toFixed(1)),
            leaders: spread,
            transfers: balancer.transfers,
            waitingForCaughtUpVoters: plan.excessAfter,
          },
          plan.excessAfter > 0
            ? "leader balancer: over its share, waiting for voters to catch up before handing over"
            : "leader balancer: nothing to move from this node",
        );
      }
      return;
    }
    balancer.lastReported = "";
    let started = 0;
    for (const { group, target } of plan.transfers) {
      const state = this.groups.get(group)!;
      if (!state.core.transferLeadership(target).ok) continue;
      balancer.recent.set(group, this.ticks);
      this.driver.touch(group);
      started++;
    }
    balancer.transfers += started;
    this.logger.info(
      {
        led,
        share: Number(share.toFixed(1)),
        leaders: spread,
        started,
        total: balancer.transfers,
        remaining: plan.excessAfter,
        perTarget: countBy(plan.transfers.map((transfer) => transfer.target)),
      },
      "leader balancer: handing leadership to less loaded nodes",
    );
    this.schedule();
  }

  private receive(from: NodeId, messages: Message[]): void {
    if (this.stopped || this.failure !== undefined) return;
    let unknown: GroupId[];
    try {
      unknown = this.driver.receive(from, messages);
    } catch (error) {
      // A broken invariant: this node's Raft state can no longer be trusted.
      this.fail(error as Error);
      return;
    }
    for (const group of unknown) {
      if (this.unknownGroupsLogged.has(group)) continue;
      this.unknownGroupsLogged.add(group);
      this.logger.warn(
        { group, from },
        "messages for a Raft group this node does not host; is its assignment out of date?",
      );
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.processScheduled || this.stopped) return;
    this.processScheduled = true;
    setImmediate(() => {
      this.processScheduled = false;
      this.process();
    });
  }

  /** Collect every group's ready: write, send, and start an fsync round if none is running. */
  private process(): void {
    if (this.stopped || this.failure !== undefined) return;
    try {
      const batch = this.driver.collect();
      if (this.syncWanted) {
        this.syncWanted = false;
        this.syncDue = true;
      }
      for (const item of batch.readies) this.write(item);
      for (const [to, messages] of batch.outbound) this.transport.send(to, messages);
      if (!this.roundCollecting) this.startRound();
    } catch (error) {
      this.fail(error as Error);
    }
  }

  private write(item: GroupReady): void {
    const state = this.groups.get(item.group);
    if (state === undefined) return;
    const { ready } = item;
    if (
      state.stateMachine !== undefined ||
      ready.snapshot !== undefined ||
      ready.messagesAfterPersist.length > 0 ||
      ready.leadership !== undefined ||
      ready.readResults.length > 0 ||
      (ready.mustPersist && ready.entries.length === 0)
    ) {
      // Only a leader's lazily proposed entries may wait for a lingering round.
      this.syncDue = true;
    }
    if (ready.snapshot !== undefined || ready.entries.length > 0) {
      const written = state.log.write(ready);
      // The fsync round awaits (and reports) a failure; until then it must not count as unhandled.
      written.catch(() => {});
      const onWritten = state.onWritten;
      const last = ready.entries[ready.entries.length - 1];
      if (onWritten !== undefined && last !== undefined)
        written.then(
          () => onWritten(last.lastOffset),
          () => {},
        );
      if (state.pendingWrite === undefined) {
        state.pendingWrite = written;
      } else {
        // As `written`: the round awaits it, but a round may never come (the host failed meanwhile).
        const both = Promise.all([state.pendingWrite, written]).then(() => {});
        both.catch(() => {});
        state.pendingWrite = both;
      }
      this.touchedLogs.add(state);
    }
    if (ready.hardState !== undefined) {
      if (!ready.mustPersist && this.options.persistCommitIndexEachRound === false) {
        this.deferredHardStates.set(item.group, ready.hardState);
      } else {
        this.pendingHardStates.set(item.group, ready.hardState);
        this.deferredHardStates.delete(item.group);
      }
    }
    if (ready.leadership !== undefined) {
      if (this.balancer !== undefined) this.balancer.changed = true;
      const event = { group: item.group, ...ready.leadership };
      for (const listener of this.leadershipListeners) listener(event);
    }
    for (const result of ready.readResults) {
      const read = this.reads.get(result.context);
      if (read === undefined) continue;
      this.reads.delete(result.context);
      if (!result.ok) {
        read.reject(new NotLeaderError(item.group, state.core.currentLeader, result.reason));
      } else if (state.applied >= result.index) {
        read.resolve(state.applied);
      } else {
        state.waitingReads.push({ index: result.index, resolve: read.resolve });
      }
    }
  }

  /**
   * One fsync round covering everything collected since the last round: once its writes have landed
   * it fsyncs (an urgent round each log as soon as that log's write has landed) and the next round may
   * start collecting, so writes land while the disk fsyncs. A round completes (releasing what waited for
   * it) when its own fsyncs end, before earlier rounds if they are slower; each group's readies still
   * complete in order (MultiRaftDriver.completeRange).
   */
  private startRound(): void {
    const upTo = this.driver.lastBatchId();
    if (upTo <= this.coveredUpTo || this.driver.pendingBatches() === 0) return;
    const previous = this.round;
    const after = this.coveredUpTo;
    if (!this.driver.syncNeeded(upTo, after)) {
      // Nothing here needs the disk (a commit-index-only hard state rides along with the next round).
      this.coveredUpTo = upTo;
      this.round = previous.then(() => this.finishRound(after, upTo, false));
      return;
    }
    const linger = this.options.lazySyncMs ?? 0;
    if (!this.syncDue && !this.lingerEnded && linger > 0) {
      this.lingerTimer ??= setTimeout(() => {
        this.lingerTimer = undefined;
        this.lingerEnded = true;
        this.process();
      }, linger);
      return;
    }
    // Only what something waits on now overtakes other logs' group commit: a lingered round need not.
    const urgent = this.syncDue;
    this.syncDue = false;
    this.lingerEnded = false;
    if (this.lingerTimer !== undefined) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = undefined;
    }
    this.coveredUpTo = upTo;
    this.roundCollecting = true;
    const observeSyncRound = this.options.observeSyncRound;
    const started = observeSyncRound ? performance.now() : 0;
    const logs = [...this.touchedLogs];
    const hardStates = this.pendingHardStates;
    this.touchedLogs = new Set();
    this.pendingHardStates = new Map();
    const writes = logs.map((state) => state.pendingWrite);
    for (const state of logs) state.pendingWrite = undefined;
    const landed = Promise.all(writes);
    landed.then(
      () => {
        this.roundCollecting = false;
        if (this.stopped || this.failure !== undefined) return;
        try {
          this.startRound();
        } catch (error) {
          this.fail(error as Error);
        }
      },
      () => {},
    );
    // Urgent: each log's fsync starts once its own write has landed, not the round's slowest write.
    const synced = urgent
      ? Promise.all(
          logs.map((state, index) => Promise.resolve(writes[index]).then(() => state.log.sync({ urgent }))),
        )
      : landed.then(() => Promise.all(logs.map((state) => state.log.sync({ urgent }))));
    const durable = Promise.all([
      synced,
      hardStates.size > 0 ? this.hardStates.saveMany(hardStates, { urgent }) : undefined,
    ]);
    const finished = durable.then(
      () => {
        observeSyncRound?.((performance.now() - started) / 1000);
        this.finishRound(after, upTo, true);
      },
      (error: Error) => {
        if (!this.stopped) this.fail(error);
      },
    );
    this.round = Promise.all([finished, previous]).then(() => {});
  }

  private finishRound(after: number, upTo: number, synced: boolean): void {
    if (synced) this.syncRounds++;
    if (this.stopped || this.failure !== undefined) return;
    try {
      this.completed(this.driver.completeRange(after, upTo));
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    this.process();
  }

  private completed(completion: DriverCompletion): void {
    for (const [to, messages] of completion.outbound) this.transport.send(to, messages);
    for (const { group, ready } of completion.readies) {
      const state = this.groups.get(group);
      if (state === undefined) continue;
      if (state.stateMachine !== undefined) {
        if (ready.snapshot !== undefined) {
          state.stateMachine.restore(ready.snapshot.data, ready.snapshot.meta);
          state.applied = ready.snapshot.meta.offset;
        }
        if (ready.committedEntries.length > 0) {
          state.stateMachine.apply(ready.committedEntries);
          state.applied = ready.committedEntries[ready.committedEntries.length - 1]!.lastOffset;
        }
        this.settleProposals(state, ready.commitIndex);
      } else {
        // Advancing this ready may just have committed its entries (a lone voter commits on its own
        // fsync): report that now rather than with the next ready, which another group's writes could
        // hold back for a whole further fsync round.
        const commit = Math.max(ready.commitIndex, state.core.durableCommitIndex);
        if (commit > state.applied) {
          state.applied = commit;
          state.onCommit?.(commit);
        }
        this.settleProposals(state, commit);
      }
      if (state.waitingReads.length > 0) this.releaseReads(state);
    }
  }

  private settleProposals(state: GroupState, commit: number): void {
    const proposals = state.proposals;
    let settled = 0;
    while (settled < proposals.length && proposals[settled]!.lastOffset <= commit) {
      const proposal = proposals[settled]!;
      if (state.core.termAt(proposal.lastOffset) === proposal.term) {
        proposal.resolve({
          firstOffset: proposal.firstOffset,
          lastOffset: proposal.lastOffset,
          term: proposal.term,
        });
      } else {
        proposal.reject(new ProposalDroppedError(state.group, proposal.lastOffset));
      }
      settled++;
    }
    if (settled > 0) proposals.splice(0, settled);
  }

  private releaseReads(state: GroupState): void {
    const still: Array<{ index: number; resolve: (index: number) => void }> = [];
    for (const waiting of state.waitingReads) {
      if (waiting.index <= state.applied) waiting.resolve(state.applied);
      else still.push(waiting);
    }
    state.waitingReads.length = 0;
    state.waitingReads.push(...still);
  }

  private failPending(state: GroupState, error: Error): void {
    for (const proposal of state.proposals.splice(0)) proposal.reject(error);
    for (const [context, read] of this.reads) {
      if (read.group !== state.group) continue;
      this.reads.delete(context);
      read.reject(error);
    }
  }

  /** A storage or invariant failure: this node must not go on acknowledging anything. */
  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.logger.error(
      { error: error.message, stack: error.stack },
      "Raft node stopped: its disk or its state can no longer be trusted; check the disk, then restart the node",
    );
    for (const state of this.groups.values()) this.failPending(state, error);
    this.balancer = undefined;
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer);
    void this.transport.stop();
    for (const listener of this.failureListeners.splice(0)) listener(error);
  }
}

function countBy(values: readonly NodeId[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

const LOG_CLOSE_CONCURRENCY = 64;

async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await run(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
