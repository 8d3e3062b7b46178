import { assert } from "./assert.js";
import { applyConfChange, describeConfig, isMember, isVoter, peersOf, quorumSize } from "./config.js";
import { type ConfigEntry, entryBytes, type RaftLogReader, RaftLogView } from "./log.js";
import { Progress } from "./progress.js";
import {
  type AppendRequest,
  type AppendResponse,
  type ClusterConfig,
  type ConfChange,
  type Entry,
  type GroupId,
  type HardState,
  type Heartbeat,
  type HeartbeatResponse,
  type Leadership,
  type Message,
  NO_NODE,
  type NodeId,
  type PreVoteRequest,
  type ProposeResult,
  type ReadFailure,
  type ReadIndexRequest,
  type ReadIndexResponse,
  type ReadResult,
  type Ready,
  type Role,
  type SnapshotChunk,
  type SnapshotResponse,
  type VoteRequest,
  type VoteResponse,
} from "./types.js";

export interface RaftOptions {
  readonly id: NodeId;
  readonly group: GroupId;
  /** Uniform random numbers in [0, 1) from a seeded generator: the only source of randomness. */
  readonly random: () => number;
  /** Followers campaign after a random timeout in [electionTimeoutTicks, 2 * electionTimeoutTicks). */
  readonly electionTimeoutTicks?: number;
  readonly heartbeatIntervalTicks?: number;
  /** A node first asks whether it could win before raising its term, so a rejoining node disrupts nobody. */
  readonly preVote?: boolean;
  /** A leader that has not heard from a majority for an election timeout steps down. */
  readonly checkQuorum?: boolean;
  /** Idle groups stop heartbeating and their followers stop their election timers. */
  readonly quiesce?: boolean;
  /** Serve reads from the leader's lease without a heartbeat round (assumes bounded clock drift). */
  readonly leaseReads?: boolean;
  readonly leaseSafetyMarginTicks?: number;
  readonly maxInflightMessages?: number;
  readonly maxInflightBytes?: number;
  readonly maxAppendBytes?: number;
  /** Proposals are refused (TOO_MANY_UNCOMMITTED_BYTES) while this much is appended but not committed. */
  readonly maxUncommittedBytes?: number;
  readonly snapshotChunkBytes?: number;
  /**
   * A new leader appends its no-op only when its log holds entries beyond its commit index. When
   * everything it holds is committed there is nothing of an earlier term to commit (Figure 8), and a
   * partition keeps Kafka's offsets free of Raft entries after a clean restart. Membership changes
   * still wait for an entry of the leader's own term to commit.
   */
  readonly noopOnlyWhenUncommitted?: boolean;
  /** Partitions need only the commit index (their state machine is the log); the controller applies entries. */
  readonly deliverCommittedEntries?: boolean;
  /**
   * The storage serves an entry from the moment a ready hands it over, not only once it is durable.
   * A group with no other member and no committed-entry delivery then drops an entry's payload as soon
   * as it is handed over: nobody will read it from the core, and a kept payload would pin the client's
   * request buffer until the fsync round ends (measured: a third more CPU per MiB, twice the GC time).
   */
  readonly releaseWrittenPayloads?: boolean;
  readonly maxCommittedBytesPerReady?: number;
  /** The state machine already reflects the log up to here (defaults to the snapshot offset). */
  readonly applied?: number;
  /** Deliberate protocol bugs, only for proving that the simulator's checkers catch them. */
  readonly unsafeTestOnly?: UnsafeTestOnlyBugs;
}

export interface UnsafeTestOnlyBugs {
  /** Skip Raft's Figure 8 rule: commit entries of earlier terms by counting replicas. */
  readonly commitPreviousTermEntries?: boolean;
  /** Acknowledge appended entries before they are durable. */
  readonly acknowledgeBeforePersist?: boolean;
  /** Answer ReadIndex without confirming leadership with a heartbeat round (a deposed leader reads stale). */
  readonly readsWithoutQuorum?: boolean;
}

export type TransferResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

export interface RaftStatus {
  readonly id: NodeId;
  readonly group: GroupId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId;
  readonly leader: NodeId;
  readonly commit: number;
  readonly lastOffset: number;
  readonly lastTerm: number;
  readonly config: ClusterConfig;
  readonly quiesced: boolean;
  readonly progress: ReadonlyArray<{ node: NodeId; match: number; nextAfter: number; state: string }>;
}

interface PendingRead {
  readonly context: number;
  readonly from: NodeId;
  readonly index: number;
  readonly round: number;
  readonly registeredTick: number;
}

interface SnapshotReception {
  readonly offset: number;
  readonly term: number;
  readonly chunks: Uint8Array[];
  received: number;
}

const DEFAULTS = {
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 2,
  preVote: true,
  checkQuorum: true,
  quiesce: true,
  leaseReads: false,
  leaseSafetyMarginTicks: 2,
  maxInflightMessages: 64,
  maxInflightBytes: 32 * 1024 * 1024,
  maxAppendBytes: 1024 * 1024,
  maxUncommittedBytes: 256 * 1024 * 1024,
  snapshotChunkBytes: 1024 * 1024,
  deliverCommittedEntries: true,
  releaseWrittenPayloads: false,
  noopOnlyWhenUncommitted: false,
  maxCommittedBytesPerReady: 4 * 1024 * 1024,
} as const;

/**
 * One Raft group on one node, as a deterministic state machine: inputs are `tick`, `step` and the
 * client calls; outputs are collected by `ready()`. No I/O, timers, clock or global randomness inside.
 */
export class RaftCore {
  readonly id: NodeId;
  readonly group: GroupId;
  private readonly options: Required<Omit<RaftOptions, "applied" | "unsafeTestOnly">>;
  private readonly unsafe: UnsafeTestOnlyBugs;
  private readonly log: RaftLogView;

  private term: number;
  private vote: NodeId;
  private commit: number;
  private leader: NodeId = NO_NODE;
  private role: Role = "follower";

  private baseConfig: ClusterConfig;
  private readonly configHistory: ConfigEntry[];
  private config: ClusterConfig;

  private ticks = 0;
  /** The term in which this leader skipped its no-op because its whole log was committed. */
  private noopSkippedInTerm = -1;
  /** Elections this replica started (raised its term as a candidate) and won, since it was created. */
  readonly elections = { started: 0, won: 0 };
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private readonly votes = new Map<NodeId, boolean>();
  private readonly progress = new Map<NodeId, Progress>();
  private leadTransferee: NodeId = NO_NODE;
  private quiesced = false;
  private startupLeaseUntilTick = 0;
  private leaseBlockedUntilTick = 0;

  /** Leader: appended-but-uncommitted entries as (lastOffset, bytes), oldest first. */
  private readonly uncommitted: Array<[number, number]> = [];
  private uncommittedBytes = 0;

  private heartbeatRound = 0;
  /** Leader: tick at which each recent heartbeat round was sent (for leases). */
  private readonly roundSentTick = new Map<number, number>();
  private readonly pendingReads: PendingRead[] = [];
  private readonly readsAwaitingTermCommit: Array<{ context: number; from: NodeId; registeredTick: number }> =
    [];
  private readBroadcastNeeded = false;
  /** Follower: reads forwarded to the leader, by context, with the tick they were sent. */
  private readonly forwardedReads = new Map<number, number>();
  private snapshotReception: SnapshotReception | undefined;

  private broadcastPending = false;
  private committedLoadPending = false;
  private appliedCursor: number;

  private messages: Message[] = [];
  private messagesAfterPersist: Message[] = [];
  private readResults: ReadResult[] = [];
  private lastLeadership: Leadership;
  private lastHardState: HardState;
  private readySeq = 0;
  private advancedSeq = 0;

  constructor(options: RaftOptions, storage: RaftLogReader, hardState: HardState) {
    this.id = options.id;
    this.group = options.group;
    this.options = {
      ...DEFAULTS,
      ...Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)),
    } as Required<Omit<RaftOptions, "applied" | "unsafeTestOnly">>;
    this.unsafe = options.unsafeTestOnly ?? {};
    validateOptions(this.options);
    this.log = new RaftLogView(storage);
    const meta = storage.snapshotMeta();
    this.baseConfig = meta.config;
    this.configHistory = storage.configEntries().filter((entry) => entry.offset > meta.offset);
    this.config = this.currentConfig();
    // The hard state and the log live in different files whose unsynced writes survive a crash
    // independently: a log can hold entries of a term the hard state never recorded (adopt it, with
    // no vote, which is what the node had in memory) and a commit beyond the surviving log (committed
    // entries that were not yet durable here; the leader resends them).
    const lastTerm = this.log.lastTerm();
    if (lastTerm > hardState.term) {
      this.term = lastTerm;
      this.vote = NO_NODE;
    } else {
      this.term = hardState.term;
      this.vote = hardState.vote;
    }
    this.commit = Math.max(meta.offset, Math.min(hardState.commit, this.log.lastOffset()));
    this.appliedCursor = options.applied ?? meta.offset;
    assert(
      this.appliedCursor <= this.commit,
      () => `applied ${this.appliedCursor} is beyond the commit index ${this.commit}`,
    );
    this.lastHardState = { term: this.term, vote: this.vote, commit: this.commit };
    this.lastLeadership = { term: this.term, leader: NO_NODE, role: "follower" };
    if (this.options.leaseReads) this.startupLeaseUntilTick = this.options.electionTimeoutTicks;
    this.resetElectionTimer();
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs

  tick(): void {
    this.ticks++;
    if (this.quiesced) return;
    if (this.role === "leader") this.tickLeader();
    else this.tickFollower();
  }

  step(message: Message): void {
    if (message.to !== this.id || message.from === this.id || message.group !== this.group) return;
    if (this.quiesced) this.unquiesceOnMessage(message);
    if (this.role === "leader") {
      const progress = this.progress.get(message.from);
      if (progress !== undefined) progress.recentActive = true;
    }
    if (!this.handleTerm(message)) return;
    switch (message.type) {
      case "preVote":
      case "vote":
        this.handleVoteRequest(message);
        return;
      case "preVoteResponse":
      case "voteResponse":
        this.handleVoteResponse(message);
        return;
      case "append":
        this.followLeader(message.from);
        this.handleAppend(message);
        return;
      case "heartbeat":
        this.followLeader(message.from);
        this.handleHeartbeat(message);
        return;
      case "snapshot":
        this.followLeader(message.from);
        this.handleSnapshotChunk(message);
        return;
      case "appendResponse":
        if (this.role === "leader") this.handleAppendResponse(message);
        return;
      case "heartbeatResponse":
        if (this.role === "leader") this.handleHeartbeatResponse(message);
        return;
      case "snapshotResponse":
        if (this.role === "leader") this.handleSnapshotResponse(message);
        return;
      case "timeoutNow":
        if (this.role === "follower" && message.from === this.leader && this.promotable()) {
          this.campaign("vote", true);
        }
        return;
      case "readIndex":
        this.handleReadIndexRequest(message);
        return;
      case "readIndexResponse":
        this.handleReadIndexResponse(message);
        return;
      case "wake":
        return;
    }
  }

  /**
   * Leader only: append a record batch of `recordCount` records. The entry covers
   * [lastOffset + 1, lastOffset + recordCount]; it is durable once the commit index reaches lastOffset.
   */
  propose(payload: Uint8Array, recordCount = 1): ProposeResult {
    if (!Number.isInteger(recordCount) || recordCount < 1) {
      throw new RangeError(
        `recordCount must be a positive integer (got ${recordCount}); count the records in the batch`,
      );
    }
    const refusal = this.refuseProposal();
    if (refusal !== undefined) return refusal;
    const size = payload.byteLength + 24;
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + size > this.options.maxUncommittedBytes) {
      return { ok: false, error: "TOO_MANY_UNCOMMITTED_BYTES", leader: this.id };
    }
    const firstOffset = this.log.lastOffset() + 1;
    const entry: Entry = {
      firstOffset,
      lastOffset: firstOffset + recordCount - 1,
      term: this.term,
      kind: "data",
      payload,
      config: undefined,
    };
    this.appendAsLeader(entry);
    return { ok: true, firstOffset: entry.firstOffset, lastOffset: entry.lastOffset, term: entry.term };
  }

  /**
   * Leader only: one membership step. Refused while an earlier change is uncommitted and until the
   * leader has committed an entry of its own term (the fix for single-server changes across leaders).
   */
  proposeConfChange(change: ConfChange): ProposeResult & { detail?: string } {
    const refusal = this.refuseProposal();
    if (refusal !== undefined) return refusal;
    const lastConfigOffset = this.configHistory[this.configHistory.length - 1]?.offset ?? -Infinity;
    if (lastConfigOffset > this.commit) {
      return { ok: false, error: "CONFIG_CHANGE_IN_PROGRESS", leader: this.id };
    }
    // Strictly an entry of this term (the single-server change fix), even when the no-op was skipped.
    if (this.log.termAt(this.commit) !== this.term)
      return { ok: false, error: "LEADER_NOT_READY", leader: this.id };
    const next = applyConfChange(this.config, change);
    if (typeof next === "string") {
      return { ok: false, error: "INVALID_CONFIG_CHANGE", leader: this.id, detail: next };
    }
    if (change.type === "promoteLearner") {
      const progress = this.progress.get(change.node);
      if (progress === undefined || progress.match < this.commit) {
        return {
          ok: false,
          error: "LEARNER_NOT_CAUGHT_UP",
          leader: this.id,
          detail: `learner ${change.node} has ${progress?.match ?? -1}, the commit index is ${this.commit}; retry when it has caught up`,
        };
      }
    }
    const firstOffset = this.log.lastOffset() + 1;
    const entry: Entry = {
      firstOffset,
      lastOffset: firstOffset,
      term: this.term,
      kind: "config",
      payload: undefined,
      config: next,
    };
    this.appendAsLeader(entry);
    return { ok: true, firstOffset, lastOffset: firstOffset, term: this.term };
  }

  /**
   * Linearizable read: the result (in a later ready) says which index the caller must have applied
   * before serving the read. Followers ask their leader; nothing is written to the log.
   */
  readIndex(context: number): void {
    if (this.quiesced) this.unquiesce(false);
    if (this.role === "leader") {
      this.leaderRead(context, this.id);
    } else if (this.leader !== NO_NODE) {
      this.forwardedReads.set(context, this.ticks);
      this.send({
        type: "readIndex",
        group: this.group,
        from: this.id,
        to: this.leader,
        term: this.term,
        context,
      });
    } else {
      this.readResults.push({ context, ok: false, reason: "NO_LEADER" });
    }
  }

  /** Hand leadership to `target` (graceful shutdown, rebalancing); proposals pause until it happens. */
  transferLeadership(target: NodeId): TransferResult {
    if (this.role !== "leader")
      return { ok: false, error: `node ${this.id} is not the leader (leader: ${this.leader})` };
    if (target === this.id) return { ok: true };
    if (!isVoter(this.config, target)) {
      return {
        ok: false,
        error: `node ${target} is not a voter (${describeConfig(this.config)}); pick a voter`,
      };
    }
    if (this.leadTransferee === target) return { ok: true };
    if (this.quiesced) this.unquiesce(false);
    this.leadTransferee = target;
    this.electionElapsed = 0;
    const progress = this.progress.get(target)!;
    if (progress.match === this.log.lastOffset()) this.sendTimeoutNow(target);
    else this.sendAppend(progress, true);
    return { ok: true };
  }

  /**
   * The host suspects this group's leader is gone (its node stopped answering): a quiesced follower
   * resumes its election timer and tries to wake the leader.
   */
  wake(): void {
    if (this.quiesced) this.unquiesce(this.role !== "leader");
  }

  /**
   * Start an election now instead of after the election timeout: a node that knows it is the only
   * voter (a one-member group at start-up) need not wait. Does nothing on a leader or a non-voter.
   */
  campaignNow(): void {
    if (this.role === "leader" || !this.promotable()) return;
    if (this.quiesced) this.unquiesce(false);
    this.campaign(this.options.preVote ? "preVote" : "vote", false);
  }

  /** Entries or a snapshot the log was loading are in memory now: resume what waited for them. */
  entriesLoaded(): void {
    this.committedLoadPending = false;
    if (this.role !== "leader") return;
    for (const progress of this.progress.values()) {
      if (!progress.waitingForEntries) continue;
      progress.waitingForEntries = false;
      this.sendAppend(progress, true);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Outputs

  hasReady(): boolean {
    return (
      this.broadcastPending ||
      this.readBroadcastNeeded ||
      this.messages.length > 0 ||
      this.messagesAfterPersist.length > 0 ||
      this.readResults.length > 0 ||
      this.log.hasUnhandedWork() ||
      this.hardStateChanged() ||
      this.leadershipChanged() ||
      (this.appliedCursor < this.commit && !this.committedLoadPending)
    );
  }

  ready(): Ready {
    if (this.broadcastPending) {
      this.broadcastPending = false;
      if (this.role === "leader") this.broadcastAppend();
    }
    if (this.readBroadcastNeeded) {
      this.readBroadcastNeeded = false;
      if (this.role === "leader") this.broadcastHeartbeat(false);
    }
    const seq = ++this.readySeq;
    const { snapshot, after, entries } = this.log.takeUnhanded(seq, this.releasesWrittenPayloads());
    let hardState: HardState | undefined;
    const termOrVoteChanged = this.term !== this.lastHardState.term || this.vote !== this.lastHardState.vote;
    const commit = this.persistableCommit();
    if (termOrVoteChanged || commit !== this.lastHardState.commit) {
      hardState = { term: this.term, vote: this.vote, commit };
      this.lastHardState = hardState;
    }
    let leadership: Leadership | undefined;
    if (this.leadershipChanged()) {
      leadership = { term: this.term, leader: this.leader, role: this.role };
      this.lastLeadership = leadership;
    }
    const ready: Ready = {
      seq,
      hardState,
      snapshot,
      entriesAfter: after,
      entries,
      messages: this.messages,
      messagesAfterPersist: this.messagesAfterPersist,
      committedEntries: this.takeCommittedEntries(),
      commitIndex: this.commit,
      readResults: this.readResults,
      leadership,
      mustPersist: snapshot !== undefined || entries.length > 0 || termOrVoteChanged,
    };
    this.messages = [];
    this.messagesAfterPersist = [];
    this.readResults = [];
    return ready;
  }

  /** Everything `ready` asked to persist is durable (and earlier readies were advanced). */
  advance(ready: Ready): void {
    assert(
      ready.seq === this.advancedSeq + 1,
      () => `ready ${ready.seq} advanced out of order (last advanced: ${this.advancedSeq})`,
    );
    this.advancedSeq = ready.seq;
    this.log.advance(ready.seq);
    if (this.role === "leader" && this.maybeCommit()) this.broadcastPending = true;
  }

  // ---------------------------------------------------------------------------------------------
  // Introspection

  get currentTerm(): number {
    return this.term;
  }
  get currentLeader(): NodeId {
    return this.leader;
  }
  get currentRole(): Role {
    return this.role;
  }
  get commitIndex(): number {
    return this.commit;
  }
  get membership(): ClusterConfig {
    return this.config;
  }
  /**
   * The commit index as far as this node's own log is durable: a log whose state machine is the log
   * (a partition) may expose it as its high watermark now, without waiting for the next ready.
   */
  get durableCommitIndex(): number {
    return this.persistableCommit();
  }
  get lastOffset(): number {
    return this.log.lastOffset();
  }
  isQuiesced(): boolean {
    return this.quiesced;
  }
  isLeader(): boolean {
    return this.role === "leader";
  }
  /** Highest offset `node` is known to hold (leader only; undefined on followers and for non-members). */
  matchOf(node: NodeId): number | undefined {
    return this.role === "leader" ? this.progress.get(node)?.match : undefined;
  }
  /** Term of the entry covering `offset` in this node's current view of its log. */
  termAt(offset: number): number | undefined {
    return this.log.termAt(offset);
  }

  status(): RaftStatus {
    return {
      id: this.id,
      group: this.group,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.leader,
      commit: this.commit,
      lastOffset: this.log.lastOffset(),
      lastTerm: this.log.lastTerm(),
      config: this.config,
      quiesced: this.quiesced,
      progress: [...this.progress.values()].map((progress) => ({
        node: progress.node,
        match: progress.match,
        nextAfter: progress.nextAfter,
        state: progress.state,
      })),
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Timers

  private tickFollower(): void {
    this.electionElapsed++;
    if (this.forwardedReads.size > 0) this.expireForwardedReads();
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.campaign(this.options.preVote ? "preVote" : "vote", false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.options.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.options.checkQuorum) {
        if (!this.quorumRecentlyActive()) {
          this.becomeFollower(this.term, NO_NODE);
          return;
        }
        for (const progress of this.progress.values()) progress.recentActive = false;
      }
      this.leadTransferee = NO_NODE;
      this.expireLeaderReads();
    }
    if (this.heartbeatElapsed >= this.options.heartbeatIntervalTicks) {
      this.heartbeatElapsed = 0;
      if (this.options.quiesce && this.canQuiesce()) this.quiesce();
      else this.broadcastHeartbeat(false);
    }
  }

  private resetElectionTimer(): void {
    this.electionElapsed = 0;
    const base = this.options.electionTimeoutTicks;
    this.randomizedElectionTimeout = base + Math.floor(this.options.random() * base);
  }

  // ---------------------------------------------------------------------------------------------
  // Terms and roles

  /** Returns false when the message must not be processed further. */
  private handleTerm(message: Message): boolean {
    if (message.term > this.term) {
      if (message.type === "preVote" || message.type === "vote") {
        const forced = message.type === "vote" && message.transfer;
        if (!forced && this.inLease()) {
          // Thesis 4.2.3: a node that hears from a leader ignores disruptive candidates, such as a
          // removed server or one rejoining after a partition, instead of raising its term.
          if (message.type === "preVote") this.respondVote(message, true);
          return false;
        }
        if (message.type === "preVote") return true;
        this.becomeFollower(message.term, NO_NODE);
        return true;
      }
      if (message.type === "preVoteResponse" && !message.reject) return true;
      const leader =
        message.type === "append" || message.type === "heartbeat" || message.type === "snapshot"
          ? message.from
          : NO_NODE;
      this.becomeFollower(message.term, leader);
      return true;
    }
    if (message.term < this.term) {
      if (message.type === "append" || message.type === "heartbeat" || message.type === "snapshot") {
        // A deposed leader cut off by a partition learns the new term from this answer and steps down.
        this.send({
          type: "heartbeatResponse",
          group: this.group,
          from: this.id,
          to: message.from,
          term: this.term,
          round: 0,
        });
      } else if (message.type === "preVote") {
        this.respondVote(message, true);
      }
      return false;
    }
    return true;
  }

  private inLease(): boolean {
    if (this.ticks < this.startupLeaseUntilTick) return true;
    return this.leader !== NO_NODE && this.electionElapsed < this.options.electionTimeoutTicks;
  }

  private followLeader(from: NodeId): void {
    assert(
      this.role !== "leader",
      () =>
        `node ${this.id} is leader of term ${this.term} and got a leader message from ${from} in the same term`,
    );
    if (this.role !== "follower" || this.leader !== from) this.becomeFollower(this.term, from);
    this.electionElapsed = 0;
  }

  private becomeFollower(term: number, leader: NodeId): void {
    assert(term >= this.term, () => `term would go back from ${this.term} to ${term}`);
    const termChanged = term > this.term;
    const leaderChanged = leader !== this.leader;
    if (this.role === "leader") this.stepDownLeaderState();
    if (termChanged) {
      this.term = term;
      this.vote = NO_NODE;
    }
    this.role = "follower";
    this.leader = leader;
    this.votes.clear();
    this.quiesced = false;
    this.heartbeatElapsed = 0;
    this.resetElectionTimer();
    if (termChanged || leaderChanged) this.failForwardedReads();
  }

  private failForwardedReads(): void {
    for (const context of this.forwardedReads.keys()) {
      this.readResults.push({ context, ok: false, reason: "LEADER_CHANGED" });
    }
    this.forwardedReads.clear();
  }

  private stepDownLeaderState(): void {
    for (const read of this.pendingReads) this.failRead(read.context, read.from, "LEADER_CHANGED");
    for (const read of this.readsAwaitingTermCommit) this.failRead(read.context, read.from, "LEADER_CHANGED");
    this.pendingReads.length = 0;
    this.readsAwaitingTermCommit.length = 0;
    this.readBroadcastNeeded = false;
    this.broadcastPending = false;
    this.progress.clear();
    this.roundSentTick.clear();
    this.leadTransferee = NO_NODE;
    this.uncommitted.length = 0;
    this.uncommittedBytes = 0;
  }

  private promotable(): boolean {
    return isVoter(this.config, this.id) && !this.log.hasPendingSnapshot();
  }

  private campaign(kind: "preVote" | "vote", transfer: boolean): void {
    if (kind === "preVote") {
      this.role = "preCandidate";
      this.leader = NO_NODE;
    } else {
      this.term++;
      this.elections.started++;
      this.vote = this.id;
      this.role = "candidate";
      this.leader = NO_NODE;
      this.failForwardedReads();
    }
    this.votes.clear();
    this.votes.set(this.id, true);
    this.resetElectionTimer();
    if (this.tallyVotes() === "won") {
      if (kind === "preVote") this.campaign("vote", transfer);
      else this.becomeLeader();
      return;
    }
    const lastOffset = this.log.lastOffset();
    const lastTerm = this.log.lastTerm();
    for (const voter of this.config.voters) {
      if (voter === this.id) continue;
      if (kind === "preVote") {
        const request: PreVoteRequest = {
          type: "preVote",
          group: this.group,
          from: this.id,
          to: voter,
          term: this.term + 1,
          lastOffset,
          lastTerm,
        };
        this.send(request);
      } else {
        // The vote for ourselves and the new term must be durable before anyone can count on them.
        const request: VoteRequest = {
          type: "vote",
          group: this.group,
          from: this.id,
          to: voter,
          term: this.term,
          lastOffset,
          lastTerm,
          transfer,
        };
        this.sendAfterPersist(request);
      }
    }
  }

  private tallyVotes(): "won" | "lost" | "pending" {
    let granted = 0;
    let rejected = 0;
    for (const voter of this.config.voters) {
      const vote = this.votes.get(voter);
      if (vote === true) granted++;
      else if (vote === false) rejected++;
    }
    const quorum = quorumSize(this.config);
    if (granted >= quorum) return "won";
    if (rejected > this.config.voters.length - quorum) return "lost";
    return "pending";
  }

  private becomeLeader(): void {
    assert(this.role === "candidate", () => `node ${this.id} became leader from ${this.role}`);
    assert(this.vote === this.id, "a leader voted for itself in its term");
    this.role = "leader";
    this.elections.won++;
    this.leader = this.id;
    this.heartbeatElapsed = 0;
    this.electionElapsed = 0;
    this.progress.clear();
    const lastOffset = this.log.lastOffset();
    for (const peer of peersOf(this.config, this.id)) {
      this.progress.set(peer, this.newProgress(peer, lastOffset));
    }
    if (this.options.noopOnlyWhenUncommitted && this.commit === lastOffset) {
      this.noopSkippedInTerm = this.term;
      return;
    }
    // Figure 8: entries of earlier terms commit only together with an entry of this term.
    const firstOffset = lastOffset + 1;
    this.appendAsLeader({
      firstOffset,
      lastOffset: firstOffset,
      term: this.term,
      kind: "noop",
      payload: undefined,
      config: undefined,
    });
  }

  private newProgress(peer: NodeId, nextAfter: number): Progress {
    return new Progress(peer, nextAfter, this.options.maxInflightMessages, this.options.maxInflightBytes);
  }

  private refuseProposal(): (ProposeResult & { ok: false }) | undefined {
    if (this.role !== "leader") return { ok: false, error: "NOT_LEADER", leader: this.leader };
    if (this.leadTransferee !== NO_NODE) return { ok: false, error: "TRANSFER_IN_PROGRESS", leader: this.id };
    if (this.quiesced) this.unquiesce(false);
    return undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Votes

  private handleVoteRequest(message: PreVoteRequest | VoteRequest): void {
    const preVote = message.type === "preVote";
    const canVote =
      this.vote === message.from ||
      (this.vote === NO_NODE && this.leader === NO_NODE) ||
      (preVote && message.term > this.term);
    const lastTerm = this.log.lastTerm();
    const upToDate =
      message.lastTerm > lastTerm ||
      (message.lastTerm === lastTerm && message.lastOffset >= this.log.lastOffset());
    if (canVote && upToDate) {
      if (!preVote) {
        this.vote = message.from;
        this.electionElapsed = 0;
      }
      this.respondVote(message, false);
    } else {
      this.respondVote(message, true);
    }
  }

  private respondVote(message: PreVoteRequest | VoteRequest, reject: boolean): void {
    const response: VoteResponse = {
      type: message.type === "preVote" ? "preVoteResponse" : "voteResponse",
      group: this.group,
      from: this.id,
      to: message.from,
      // A granted pre-vote echoes the proposed term so the pre-candidate can tell it apart from a stale one.
      term: reject ? this.term : message.term,
      reject,
    };
    if (message.type === "vote" && !reject) this.sendAfterPersist(response);
    else this.send(response);
  }

  private handleVoteResponse(message: VoteResponse): void {
    if (message.type === "preVoteResponse") {
      if (this.role !== "preCandidate") return;
      if (!message.reject && message.term !== this.term + 1) return;
    } else if (this.role !== "candidate") {
      return;
    }
    if (!isVoter(this.config, message.from)) return;
    this.votes.set(message.from, !message.reject);
    const outcome = this.tallyVotes();
    if (outcome === "won") {
      if (this.role === "preCandidate") this.campaign("vote", false);
      else this.becomeLeader();
    } else if (outcome === "lost") {
      this.becomeFollower(this.term, NO_NODE);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Replication: follower side

  private handleAppend(message: AppendRequest): void {
    if (message.prevOffset < this.commit) {
      // Everything up to our commit index is settled; tell the leader to continue from there.
      this.respondAppend(message.from, this.commit);
      return;
    }
    if (this.log.termAt(message.prevOffset) !== message.prevTerm) {
      const searchFrom = Math.min(message.prevOffset, this.log.lastOffset());
      let hint = this.log.lastEntryAtOrBefore(searchFrom, message.prevTerm);
      if (hint === undefined || hint.offset < this.commit) {
        // Everything up to our commit index matches the leader, whatever the coarse search found.
        hint = { offset: this.commit, term: this.log.termAt(this.commit)! };
      }
      const response: AppendResponse = {
        type: "appendResponse",
        group: this.group,
        from: this.id,
        to: message.from,
        term: this.term,
        reject: true,
        matchOffset: -1,
        rejectedOffset: message.prevOffset,
        hintOffset: hint.offset,
        hintTerm: hint.term,
      };
      this.sendAfterPersist(response);
      return;
    }
    const entries = message.entries;
    let firstNew = 0;
    while (firstNew < entries.length) {
      const entry = entries[firstNew]!;
      const existing = this.log.termAt(entry.lastOffset);
      // Only the leader of a term creates entries of that term, so (lastOffset, term) names one entry.
      if (existing === undefined || existing !== entry.term) break;
      firstNew++;
    }
    if (firstNew < entries.length) {
      const after = firstNew === 0 ? message.prevOffset : entries[firstNew - 1]!.lastOffset;
      assert(
        after >= this.commit,
        () =>
          `leader ${message.from} would truncate committed entries: after ${after}, commit ${this.commit}`,
      );
      const removesEntries = after < this.log.lastOffset();
      const fresh = entries.slice(firstNew);
      this.log.truncateAndAppend(after, fresh);
      if (removesEntries) this.revertConfigAfter(after);
      for (const entry of fresh) if (entry.kind === "config") this.applyConfigEntry(entry);
    }
    const lastNew = entries.length > 0 ? entries[entries.length - 1]!.lastOffset : message.prevOffset;
    const newCommit = Math.min(message.commit, lastNew);
    if (newCommit > this.commit) this.commitTo(newCommit);
    this.respondAppend(message.from, lastNew);
  }

  private respondAppend(to: NodeId, matchOffset: number): void {
    const response: AppendResponse = {
      type: "appendResponse",
      group: this.group,
      from: this.id,
      to,
      term: this.term,
      reject: false,
      matchOffset,
      rejectedOffset: -1,
      hintOffset: -1,
      hintTerm: 0,
    };
    if (this.unsafe.acknowledgeBeforePersist) this.send(response);
    else this.sendAfterPersist(response);
  }

  private handleHeartbeat(message: Heartbeat): void {
    if (message.commit > this.commit) this.commitTo(message.commit);
    this.send({
      type: "heartbeatResponse",
      group: this.group,
      from: this.id,
      to: message.from,
      term: this.term,
      round: message.round,
    });
    if (message.quiesce && this.forwardedReads.size === 0) this.quiesced = true;
  }

  private handleSnapshotChunk(message: SnapshotChunk): void {
    const { meta } = message;
    if (meta.offset <= this.commit) {
      this.respondSnapshot(message, -1, this.commit);
      return;
    }
    if (this.log.termAt(meta.offset) === meta.term) {
      // We already hold the snapshot's last entry; only the commit index needs to catch up.
      this.snapshotReception = undefined;
      this.commitTo(meta.offset);
      this.respondSnapshot(message, -1, meta.offset);
      return;
    }
    let reception = this.snapshotReception;
    if (reception === undefined || reception.offset !== meta.offset || reception.term !== meta.term) {
      if (message.position !== 0) {
        this.respondSnapshot(message, 0, -1);
        return;
      }
      reception = { offset: meta.offset, term: meta.term, chunks: [], received: 0 };
      this.snapshotReception = reception;
    }
    if (message.position !== reception.received) {
      this.respondSnapshot(message, reception.received, -1);
      return;
    }
    if (message.data.byteLength > 0) {
      reception.chunks.push(message.data);
      reception.received += message.data.byteLength;
    }
    if (reception.received < message.totalBytes) {
      this.respondSnapshot(message, reception.received, -1);
      return;
    }
    this.snapshotReception = undefined;
    const data = concatChunks(reception.chunks, reception.received);
    this.log.installSnapshot({ meta, data });
    this.baseConfig = meta.config;
    this.configHistory.length = 0;
    this.config = this.currentConfig();
    this.commit = meta.offset;
    this.appliedCursor = meta.offset;
    this.committedLoadPending = false;
    this.respondSnapshot(message, -1, meta.offset);
  }

  private respondSnapshot(message: SnapshotChunk, nextPosition: number, matchOffset: number): void {
    const response: SnapshotResponse = {
      type: "snapshotResponse",
      group: this.group,
      from: this.id,
      to: message.from,
      term: this.term,
      snapshotOffset: message.meta.offset,
      snapshotTerm: message.meta.term,
      nextPosition,
      matchOffset,
    };
    if (nextPosition === -1) this.sendAfterPersist(response);
    else this.send(response);
  }

  // ---------------------------------------------------------------------------------------------
  // Replication: leader side

  private appendAsLeader(entry: Entry): void {
    this.log.append([entry]);
    const bytes = entryBytes(entry);
    this.uncommitted.push([entry.lastOffset, bytes]);
    this.uncommittedBytes += bytes;
    if (entry.kind === "config") this.applyConfigEntry(entry);
    this.broadcastPending = true;
    // A single voter commits on its own fsync (see advance); with peers, the broadcast happens at ready().
  }

  private broadcastAppend(): void {
    for (const progress of this.progress.values()) this.sendAppend(progress, true);
  }

  /** In replicate state, pipeline messages until the window is full or the follower has everything. */
  private sendAppend(progress: Progress, sendIfEmpty: boolean): void {
    this.sendOneAppend(progress, sendIfEmpty);
    while (
      progress.state === "replicate" &&
      !progress.isPaused() &&
      !progress.waitingForEntries &&
      progress.nextAfter < this.log.lastOffset()
    ) {
      const before = progress.nextAfter;
      this.sendOneAppend(progress, false);
      // A snapshot transfer started or the entries are loading: nothing more to pipeline now.
      if (progress.nextAfter === before) break;
    }
  }

  private sendOneAppend(progress: Progress, sendIfEmpty: boolean): void {
    if (progress.isPaused()) return;
    const prevOffset = progress.nextAfter;
    const meta = this.log.snapshotMeta();
    const prevTerm = prevOffset >= meta.offset ? this.log.termAt(prevOffset) : undefined;
    if (prevTerm === undefined) {
      this.sendSnapshot(progress);
      return;
    }
    const entries = this.log.entries(prevOffset, this.options.maxAppendBytes);
    if (entries === undefined) {
      progress.waitingForEntries = true;
      return;
    }
    if (entries.length === 0 && !sendIfEmpty) return;
    const request: AppendRequest = {
      type: "append",
      group: this.group,
      from: this.id,
      to: progress.node,
      term: this.term,
      prevOffset,
      prevTerm,
      entries,
      commit: this.commit,
    };
    this.send(request);
    if (entries.length === 0) {
      if (progress.state === "probe") progress.probeSent = true;
      return;
    }
    if (progress.state === "replicate") {
      const last = entries[entries.length - 1]!.lastOffset;
      let bytes = 0;
      for (const entry of entries) bytes += entryBytes(entry);
      progress.nextAfter = last;
      progress.recordSent(last, bytes);
    } else {
      progress.probeSent = true;
    }
  }

  private sendSnapshot(progress: Progress): void {
    const snapshot = this.log.storageSnapshot();
    if (snapshot === undefined) {
      progress.waitingForEntries = true;
      return;
    }
    progress.becomeSnapshot({ snapshot, nextPosition: 0, lastSentTick: this.ticks });
    this.sendSnapshotChunk(progress);
  }

  private sendSnapshotChunk(progress: Progress): void {
    const transfer = progress.transfer!;
    const { data, meta } = transfer.snapshot;
    const position = transfer.nextPosition;
    const chunk = data.subarray(
      position,
      Math.min(data.byteLength, position + this.options.snapshotChunkBytes),
    );
    transfer.lastSentTick = this.ticks;
    const message: SnapshotChunk = {
      type: "snapshot",
      group: this.group,
      from: this.id,
      to: progress.node,
      term: this.term,
      meta,
      position,
      data: chunk,
      totalBytes: data.byteLength,
    };
    this.send(message);
  }

  private handleAppendResponse(message: AppendResponse): void {
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    if (message.reject) {
      if (progress.state === "snapshot") return;
      if (progress.state === "replicate" && message.rejectedOffset <= progress.match) return;
      if (progress.state === "probe" && message.rejectedOffset !== progress.nextAfter) return;
      const searchFrom = Math.min(message.hintOffset, message.rejectedOffset);
      const target = this.log.lastEntryAtOrBefore(searchFrom, message.hintTerm);
      if (target === undefined) {
        this.sendSnapshot(progress);
        return;
      }
      assert(
        target.offset < message.rejectedOffset,
        () =>
          `backtracking for ${message.from} did not move back: ${target.offset} >= ${message.rejectedOffset}`,
      );
      progress.nextAfter = Math.max(target.offset, progress.match);
      progress.becomeProbe();
      this.sendAppend(progress, true);
      return;
    }
    assert(
      message.matchOffset <= this.log.lastOffset(),
      () =>
        `follower ${message.from} acknowledged ${message.matchOffset} beyond the leader's log end ${this.log.lastOffset()}`,
    );
    if (progress.acknowledge(message.matchOffset)) {
      if (progress.state === "probe") progress.becomeReplicate();
      if (this.maybeCommit()) this.broadcastPending = true;
      if (message.from === this.leadTransferee && progress.match === this.log.lastOffset()) {
        this.sendTimeoutNow(message.from);
      }
    } else if (progress.state === "probe") {
      // A duplicate or a reply at the same position still answers the outstanding probe.
      progress.probeSent = false;
    }
    if (progress.state === "replicate" || !progress.probeSent) this.sendAppend(progress, false);
  }

  private handleHeartbeatResponse(message: HeartbeatResponse): void {
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    if (message.round > progress.acknowledgedRound) progress.acknowledgedRound = message.round;
    if (this.pendingReads.length > 0) this.releaseConfirmedReads();
    if (this.quiesced) return;
    if (progress.state === "snapshot") {
      const transfer = progress.transfer!;
      if (this.ticks - transfer.lastSentTick >= 2 * this.options.heartbeatIntervalTicks) {
        this.sendSnapshotChunk(progress);
      }
      return;
    }
    if (progress.match < this.log.lastOffset()) {
      if (progress.state === "replicate" && progress.isPaused()) progress.freeFirstInflight();
      if (progress.state === "probe") progress.probeSent = false;
      this.sendAppend(progress, true);
    }
  }

  private handleSnapshotResponse(message: SnapshotResponse): void {
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    if (message.nextPosition === -1) {
      progress.acknowledge(message.matchOffset);
      if (progress.state === "snapshot" || progress.state === "probe") {
        // The follower just said exactly where its log ends: continue from there.
        progress.nextAfter = progress.match;
        progress.becomeProbe();
        this.sendAppend(progress, true);
      }
      if (this.maybeCommit()) this.broadcastPending = true;
      return;
    }
    const transfer = progress.transfer;
    if (progress.state !== "snapshot" || transfer === undefined) return;
    const { meta } = transfer.snapshot;
    if (meta.offset !== message.snapshotOffset || meta.term !== message.snapshotTerm) return;
    transfer.nextPosition = Math.min(message.nextPosition, transfer.snapshot.data.byteLength);
    this.sendSnapshotChunk(progress);
  }

  private sendTimeoutNow(to: NodeId): void {
    // The target may campaign whenever the message arrives, bypassing other voters' leases.
    this.leaseBlockedUntilTick = this.ticks + 2 * this.options.electionTimeoutTicks;
    this.send({ type: "timeoutNow", group: this.group, from: this.id, to, term: this.term });
  }

  private broadcastHeartbeat(quiesce: boolean): void {
    this.heartbeatRound++;
    this.roundSentTick.set(this.heartbeatRound, this.ticks);
    if (this.roundSentTick.size > 4 * this.options.electionTimeoutTicks) {
      const oldest = this.roundSentTick.keys().next().value!;
      this.roundSentTick.delete(oldest);
    }
    for (const progress of this.progress.values()) {
      if (quiesce && !progress.recentActive) continue;
      const message: Heartbeat = {
        type: "heartbeat",
        group: this.group,
        from: this.id,
        to: progress.node,
        term: this.term,
        // Never more than the follower is known to hold: its log may still diverge beyond its match.
        commit: Math.min(progress.match, this.commit),
        round: this.heartbeatRound,
        quiesce,
      };
      this.send(message);
    }
    if (this.pendingReads.length > 0) this.releaseConfirmedReads();
  }

  private maybeCommit(): boolean {
    const matches: number[] = [];
    for (const voter of this.config.voters) {
      if (voter === this.id) matches.push(this.log.durableEnd());
      else matches.push(this.progress.get(voter)?.match ?? -1);
    }
    matches.sort((a, b) => b - a);
    const candidate = matches[quorumSize(this.config) - 1]!;
    if (candidate <= this.commit) return false;
    if (!this.unsafe.commitPreviousTermEntries && this.log.termAt(candidate) !== this.term) return false;
    this.commitTo(candidate);
    return true;
  }

  private commitTo(offset: number): void {
    assert(offset > this.commit, () => `commit index would not advance: ${this.commit} -> ${offset}`);
    assert(
      offset <= this.log.lastOffset(),
      () => `commit index ${offset} beyond the last entry ${this.log.lastOffset()} of node ${this.id}`,
    );
    this.commit = offset;
    if (this.snapshotReception !== undefined && this.snapshotReception.offset <= offset) {
      // The log caught up by ordinary appends; the half-received snapshot is obsolete.
      this.snapshotReception = undefined;
    }
    if (this.role !== "leader") return;
    while (this.uncommitted.length > 0 && this.uncommitted[0]![0] <= offset) {
      this.uncommittedBytes -= this.uncommitted.shift()![1];
    }
    if (this.readsAwaitingTermCommit.length > 0 && this.committedInCurrentTerm()) {
      const waiting = this.readsAwaitingTermCommit.splice(0);
      for (const read of waiting) this.leaderRead(read.context, read.from);
    }
    const lastConfig = this.configHistory[this.configHistory.length - 1];
    if (!isVoter(this.config, this.id) && lastConfig !== undefined && lastConfig.offset <= offset) {
      // Our own removal is committed: stop leading; the remaining voters elect a successor.
      this.becomeFollower(this.term, NO_NODE);
    }
  }

  /** This leader's commit index is the group's: an entry of its term committed, or its whole log was. */
  private committedInCurrentTerm(): boolean {
    return this.log.termAt(this.commit) === this.term || this.noopSkippedInTerm === this.term;
  }

  private quorumRecentlyActive(): boolean {
    let active = 0;
    for (const voter of this.config.voters) {
      if (voter === this.id || this.progress.get(voter)?.recentActive) active++;
    }
    return active >= quorumSize(this.config);
  }

  // ---------------------------------------------------------------------------------------------
  // Membership

  private currentConfig(): ClusterConfig {
    return this.configHistory[this.configHistory.length - 1]?.config ?? this.baseConfig;
  }

  private applyConfigEntry(entry: Entry): void {
    assert(entry.config !== undefined, () => `config entry at ${entry.lastOffset} has no config`);
    this.configHistory.push({ offset: entry.lastOffset, config: entry.config });
    this.setConfig(entry.config);
  }

  private revertConfigAfter(offset: number): void {
    let changed = false;
    while (
      this.configHistory.length > 0 &&
      this.configHistory[this.configHistory.length - 1]!.offset > offset
    ) {
      this.configHistory.pop();
      changed = true;
    }
    if (changed) this.setConfig(this.currentConfig());
  }

  private setConfig(config: ClusterConfig): void {
    this.config = config;
    if (this.role !== "leader") return;
    for (const node of [...this.progress.keys()]) {
      if (!isMember(config, node)) this.progress.delete(node);
    }
    for (const peer of peersOf(config, this.id)) {
      if (!this.progress.has(peer)) {
        const progress = this.newProgress(peer, this.log.lastOffset());
        progress.recentActive = true;
        this.progress.set(peer, progress);
      }
    }
    if (this.leadTransferee !== NO_NODE && !isVoter(config, this.leadTransferee))
      this.leadTransferee = NO_NODE;
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  private leaderRead(context: number, from: NodeId): void {
    if (this.leadTransferee !== NO_NODE) {
      this.failRead(context, from, "TRANSFER_IN_PROGRESS");
      return;
    }
    if (!this.committedInCurrentTerm()) {
      // Our commit index may lag entries committed by the previous leader until our noop commits.
      this.readsAwaitingTermCommit.push({ context, from, registeredTick: this.ticks });
      return;
    }
    if (this.config.voters.length === 1 && isVoter(this.config, this.id)) {
      this.answerRead(context, from, this.commit);
      return;
    }
    if ((this.options.leaseReads && this.leaseValid()) || this.unsafe.readsWithoutQuorum) {
      this.answerRead(context, from, this.commit);
      return;
    }
    this.pendingReads.push({
      context,
      from,
      index: this.commit,
      round: this.heartbeatRound + 1,
      registeredTick: this.ticks,
    });
    this.readBroadcastNeeded = true;
  }

  private handleReadIndexRequest(message: ReadIndexRequest): void {
    if (this.role === "leader") {
      this.leaderRead(message.context, message.from);
    } else {
      this.failRead(message.context, message.from, "NOT_LEADER");
    }
  }

  private handleReadIndexResponse(message: ReadIndexResponse): void {
    if (!this.forwardedReads.delete(message.context)) return;
    if (message.index < 0) {
      this.readResults.push({ context: message.context, ok: false, reason: "NOT_LEADER" });
    } else {
      this.readResults.push({ context: message.context, ok: true, index: message.index });
    }
  }

  private answerRead(context: number, from: NodeId, index: number): void {
    if (from === this.id) {
      this.readResults.push({ context, ok: true, index });
      return;
    }
    const response: ReadIndexResponse = {
      type: "readIndexResponse",
      group: this.group,
      from: this.id,
      to: from,
      term: this.term,
      context,
      index,
    };
    this.send(response);
  }

  private failRead(context: number, from: NodeId, reason: ReadFailure): void {
    if (from === this.id) {
      this.readResults.push({ context, ok: false, reason });
      return;
    }
    this.send({
      type: "readIndexResponse",
      group: this.group,
      from: this.id,
      to: from,
      term: this.term,
      context,
      index: -1,
    });
  }

  /** A read is confirmed once a majority answered a heartbeat round sent after the read arrived. */
  private releaseConfirmedReads(): void {
    const rounds: number[] = [];
    for (const voter of this.config.voters) {
      if (voter === this.id) rounds.push(this.heartbeatRound);
      else rounds.push(this.progress.get(voter)?.acknowledgedRound ?? 0);
    }
    rounds.sort((a, b) => b - a);
    const confirmed = rounds[quorumSize(this.config) - 1]!;
    let released = 0;
    while (released < this.pendingReads.length && this.pendingReads[released]!.round <= confirmed) {
      const read = this.pendingReads[released]!;
      this.answerRead(read.context, read.from, read.index);
      released++;
    }
    if (released > 0) this.pendingReads.splice(0, released);
  }

  private leaseValid(): boolean {
    if (this.leadTransferee !== NO_NODE || this.ticks < this.leaseBlockedUntilTick) return false;
    const rounds: number[] = [];
    for (const voter of this.config.voters) {
      if (voter === this.id) rounds.push(this.heartbeatRound);
      else rounds.push(this.progress.get(voter)?.acknowledgedRound ?? 0);
    }
    rounds.sort((a, b) => b - a);
    const sentTick = this.roundSentTick.get(rounds[quorumSize(this.config) - 1]!);
    if (sentTick === undefined) return false;
    return this.ticks < sentTick + this.options.electionTimeoutTicks - this.options.leaseSafetyMarginTicks;
  }

  private expireLeaderReads(): void {
    const deadline = this.ticks - 2 * this.options.electionTimeoutTicks;
    while (this.pendingReads.length > 0 && this.pendingReads[0]!.registeredTick <= deadline) {
      const read = this.pendingReads.shift()!;
      this.failRead(read.context, read.from, "TIMED_OUT");
    }
  }

  private expireForwardedReads(): void {
    const deadline = this.ticks - this.options.electionTimeoutTicks;
    for (const [context, sentTick] of this.forwardedReads) {
      if (sentTick > deadline) continue;
      this.forwardedReads.delete(context);
      this.readResults.push({ context, ok: false, reason: "TIMED_OUT" });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Quiescence

  private canQuiesce(): boolean {
    if (this.leadTransferee !== NO_NODE || this.pendingReads.length > 0) return false;
    if (this.readsAwaitingTermCommit.length > 0 || this.broadcastPending || this.readBroadcastNeeded)
      return false;
    const lastOffset = this.log.lastOffset();
    if (this.commit !== lastOffset || !this.committedInCurrentTerm()) return false;
    if (this.log.durableEnd() !== lastOffset) return false;
    let activeVoters = isVoter(this.config, this.id) ? 1 : 0;
    for (const progress of this.progress.values()) {
      // A follower that stopped answering does not keep the group awake; it wakes the group when back.
      if (!progress.recentActive) continue;
      if (progress.match !== lastOffset || progress.state !== "replicate") return false;
      if (isVoter(this.config, progress.node)) activeVoters++;
    }
    return activeVoters >= quorumSize(this.config);
  }

  private quiesce(): void {
    this.broadcastHeartbeat(true);
    this.quiesced = true;
  }

  private unquiesceOnMessage(message: Message): void {
    if (this.role === "leader") {
      // The answers to our own quiescing heartbeat must not wake us again.
      if (message.type !== "heartbeatResponse") this.unquiesce(false);
      return;
    }
    if (message.type === "heartbeat" && message.quiesce && message.from === this.leader) return;
    this.unquiesce(message.from !== this.leader);
  }

  private unquiesce(wakeLeader: boolean): void {
    this.quiesced = false;
    if (this.role === "leader") {
      this.heartbeatElapsed = 0;
      this.electionElapsed = 0;
      // Nothing was heard while idle: the check-quorum window and any lease start over.
      for (const progress of this.progress.values()) {
        progress.recentActive = false;
        progress.acknowledgedRound = 0;
      }
      this.roundSentTick.clear();
      return;
    }
    if (wakeLeader && this.leader !== NO_NODE) {
      this.send({ type: "wake", group: this.group, from: this.id, to: this.leader, term: this.term });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Output helpers

  private send(message: Message): void {
    this.messages.push(message);
  }

  private sendAfterPersist(message: Message): void {
    this.messagesAfterPersist.push(message);
  }

  private hardStateChanged(): boolean {
    const last = this.lastHardState;
    return this.term !== last.term || this.vote !== last.vote || this.persistableCommit() !== last.commit;
  }

  /**
   * The commit index as it may be written down: never beyond the durable log. The hard state and the
   * log are separate files, so after a crash the log may still hold a divergent suffix that a newer,
   * not-yet-durable truncation was about to replace; a restarted node must not apply that suffix.
   */
  private persistableCommit(): number {
    if (this.log.hasPendingSnapshot()) return this.lastHardState.commit;
    return Math.min(this.commit, this.log.stableOffset());
  }

  /**
   * Whether entries handed over now lose their payload (RaftOptions.releaseWrittenPayloads applies): nobody
   * can ask the core for it, with no member to send it to and no state machine to apply it.
   */
  releasesWrittenPayloads(): boolean {
    return (
      this.options.releaseWrittenPayloads &&
      !this.options.deliverCommittedEntries &&
      this.config.learners.length === 0 &&
      this.config.voters.length === 1 &&
      this.config.voters[0] === this.options.id
    );
  }

  private leadershipChanged(): boolean {
    const last = this.lastLeadership;
    return this.term !== last.term || this.leader !== last.leader || this.role !== last.role;
  }

  private takeCommittedEntries(): Entry[] {
    if (this.appliedCursor >= this.commit) return [];
    if (!this.options.deliverCommittedEntries) {
      this.appliedCursor = this.commit;
      return [];
    }
    if (this.committedLoadPending) return [];
    const entries = this.log.entries(this.appliedCursor, this.options.maxCommittedBytesPerReady);
    if (entries === undefined) {
      this.committedLoadPending = true;
      return [];
    }
    const committed: Entry[] = [];
    for (const entry of entries) {
      if (entry.lastOffset > this.commit) break;
      committed.push(entry);
    }
    if (committed.length > 0) this.appliedCursor = committed[committed.length - 1]!.lastOffset;
    return committed;
  }
}

function validateOptions(options: Required<Omit<RaftOptions, "applied" | "unsafeTestOnly">>): void {
  const positive = [
    "electionTimeoutTicks",
    "heartbeatIntervalTicks",
    "maxInflightMessages",
    "maxInflightBytes",
    "maxAppendBytes",
    "maxUncommittedBytes",
    "snapshotChunkBytes",
    "maxCommittedBytesPerReady",
  ] as const;
  for (const key of positive) {
    const value = options[key];
    if (!(value > 0)) throw new RangeError(`Raft option ${key} must be a positive number (got ${value})`);
  }
  if (options.heartbeatIntervalTicks >= options.electionTimeoutTicks) {
    throw new RangeError(
      `heartbeatIntervalTicks (${options.heartbeatIntervalTicks}) must be below electionTimeoutTicks (${options.electionTimeoutTicks}), or followers time out between heartbeats`,
    );
  }
  if (options.leaseReads && !options.checkQuorum) {
    throw new RangeError(
      "leaseReads needs checkQuorum: a leader must step down before its lease could be wrong",
    );
  }
}

function concatChunks(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const data = new Uint8Array(total);
  let position = 0;
  for (const chunk of chunks) {
    data.set(chunk, position);
    position += chunk.byteLength;
  }
  return data;
}
