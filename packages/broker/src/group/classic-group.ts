import { ConsumerProtocolSubscriptionCodec, decodeVersionedData, ErrorCode } from "@raftka/protocol";
import type { CommittedOffset, StoredGroup } from "./offsets-log-records.js";

/**
 * One classic-protocol group: its members, state, generation, selected protocol and committed offsets.
 * Plain data with the invariants Kafka's GroupMetadata keeps; the rules that move it between states
 * live in GroupCoordinatorCore. Nothing here does I/O or reads a clock.
 */

export type GroupState = "Empty" | "PreparingRebalance" | "CompletingRebalance" | "Stable" | "Dead";

const validPreviousStates: Readonly<Record<GroupState, readonly GroupState[]>> = {
  PreparingRebalance: ["Stable", "CompletingRebalance", "Empty"],
  CompletingRebalance: ["PreparingRebalance"],
  Stable: ["CompletingRebalance"],
  Dead: ["Stable", "PreparingRebalance", "CompletingRebalance", "Empty", "Dead"],
  Empty: ["PreparingRebalance"],
};

export const CONSUMER_PROTOCOL_TYPE = "consumer";

export interface MemberProtocol {
  readonly name: string;
  readonly metadata: Buffer;
}

export interface JoinGroupResult {
  readonly errorCode: number;
  readonly memberId: string;
  readonly generationId: number;
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly leader: string;
  readonly skipAssignment: boolean;
  /** Only for the leader: every member with its metadata for the selected protocol. */
  readonly members: readonly { memberId: string; groupInstanceId: string | null; metadata: Buffer }[];
}

export interface SyncGroupResult {
  readonly errorCode: number;
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly assignment: Buffer;
}

export type JoinCallback = (result: JoinGroupResult) => void;
export type SyncCallback = (result: SyncGroupResult) => void;

export function joinError(memberId: string, errorCode: number): JoinGroupResult {
  return {
    errorCode,
    memberId,
    generationId: -1,
    protocolType: null,
    protocolName: null,
    leader: "",
    skipAssignment: false,
    members: [],
  };
}

export function syncError(errorCode: number): SyncGroupResult {
  return { errorCode, protocolType: null, protocolName: null, assignment: Buffer.alloc(0) };
}

export class GroupMember {
  awaitingJoin: JoinCallback | null = null;
  awaitingSync: SyncCallback | null = null;
  /** Joined but not yet through its first completed join: it cannot heartbeat yet. */
  isNew = false;
  assignment: Buffer = Buffer.alloc(0);

  constructor(
    public memberId: string,
    readonly groupInstanceId: string | null,
    public clientId: string,
    public clientHost: string,
    public rebalanceTimeoutMs: number,
    public sessionTimeoutMs: number,
    readonly protocolType: string,
    public protocols: readonly MemberProtocol[],
  ) {}

  get isStatic(): boolean {
    return this.groupInstanceId !== null;
  }

  metadataFor(protocolName: string): Buffer {
    const protocol = this.protocols.find((candidate) => candidate.name === protocolName);
    if (protocol === undefined) {
      throw new Error(
        `internal: member ${this.memberId} does not support protocol ${protocolName} chosen for its group`,
      );
    }
    return protocol.metadata;
  }

  /** Same protocols, in the same order, with the same metadata bytes (Kafka's `matches`). */
  matches(protocols: readonly MemberProtocol[]): boolean {
    if (protocols.length !== this.protocols.length) return false;
    return protocols.every(
      (protocol, index) =>
        protocol.name === this.protocols[index]!.name &&
        protocol.metadata.equals(this.protocols[index]!.metadata),
    );
  }

  /** The member's most preferred protocol among the candidates all members support. */
  vote(candidates: ReadonlySet<string>): string {
    const choice = this.protocols.find((protocol) => candidates.has(protocol.name));
    if (choice === undefined) {
      throw new Error(`internal: member ${this.memberId} supports none of the group's candidate protocols`);
    }
    return choice.name;
  }
}

export class ClassicGroup {
  state: GroupState;
  stateTimestamp: number;
  protocolType: string | null = null;
  protocolName: string | null = null;
  generationId = 0;
  leaderId: string | null = null;
  /** Set when a member joins during the initial delay, which then extends (group.initial.rebalance.delay.ms). */
  newMemberAdded = false;
  /**
   * While PreparingRebalance: whether the join phase is the initial delay of a group that was Empty
   * (which never completes early and extends while members keep arriving) or an ordinary rebalance
   * (which completes as soon as every member has rejoined, or at the rebalance timeout).
   */
  joinPhase: { readonly initial: boolean; readonly delayMs: number; readonly remainingMs: number } | null =
    null;

  private readonly members = new Map<string, GroupMember>();
  private readonly staticMembers = new Map<string, string>();
  private readonly pendingMembers = new Set<string>();
  private readonly pendingSyncMembers = new Set<string>();
  private readonly supportedProtocols = new Map<string, number>();
  private membersAwaitingJoin = 0;
  /** Topics the members subscribe to (consumer protocol); undefined when unknown. */
  private subscribedTopics: ReadonlySet<string> | undefined;

  /** topic -> partition -> committed offset. */
  readonly offsets = new Map<string, Map<number, CommittedOffset>>();
  /** Commits written but not yet durable, per "topic\0partition": how many are in flight. */
  readonly pendingOffsetCommits = new Map<string, number>();
  /** Of those, how many (the oldest) OffsetDelete cancelled. */
  private readonly cancelledOffsetCommits = new Map<string, number>();

  constructor(
    readonly groupId: string,
    state: GroupState,
    now: number,
  ) {
    this.state = state;
    this.stateTimestamp = now;
  }

  // ----- membership -------------------------------------------------------------------------------

  get size(): number {
    return this.members.size;
  }

  has(memberId: string): boolean {
    return this.members.has(memberId);
  }

  get(memberId: string): GroupMember {
    const member = this.members.get(memberId);
    if (member === undefined) throw new Error(`internal: member ${memberId} is not in group ${this.groupId}`);
    return member;
  }

  allMembers(): IterableIterator<GroupMember> {
    return this.members.values();
  }

  memberIds(): string[] {
    return [...this.members.keys()];
  }

  is(state: GroupState): boolean {
    return this.state === state;
  }

  isLeader(memberId: string): boolean {
    return this.leaderId === memberId;
  }

  get isConsumerGroup(): boolean {
    return this.protocolType === CONSUMER_PROTOCOL_TYPE;
  }

  add(member: GroupMember, callback: JoinCallback | null): void {
    if (member.groupInstanceId !== null) {
      if (this.staticMembers.has(member.groupInstanceId)) {
        throw new Error(
          `internal: static member ${member.groupInstanceId} cannot be added to group ${this.groupId} twice`,
        );
      }
      this.staticMembers.set(member.groupInstanceId, member.memberId);
    }
    if (this.members.size === 0) this.protocolType = member.protocolType;
    assert(this.protocolType === member.protocolType, "member protocol type must match the group's");
    if (this.leaderId === null) this.leaderId = member.memberId;
    this.members.set(member.memberId, member);
    this.countProtocols(member, 1);
    member.awaitingJoin = callback;
    if (callback !== null) this.membersAwaitingJoin++;
    this.pendingMembers.delete(member.memberId);
  }

  remove(memberId: string): void {
    const member = this.members.get(memberId);
    if (member !== undefined) {
      this.members.delete(memberId);
      this.countProtocols(member, -1);
      if (member.awaitingJoin !== null) this.membersAwaitingJoin--;
      if (member.groupInstanceId !== null) this.staticMembers.delete(member.groupInstanceId);
    }
    if (this.isLeader(memberId)) {
      const next = this.members.keys().next();
      this.leaderId = next.done ? null : next.value;
    }
    this.pendingMembers.delete(memberId);
    this.pendingSyncMembers.delete(memberId);
  }

  updateMember(
    member: GroupMember,
    protocols: readonly MemberProtocol[],
    callback: JoinCallback | null,
  ): void {
    this.countProtocols(member, -1);
    member.protocols = protocols;
    this.countProtocols(member, 1);
    if (callback !== null && member.awaitingJoin === null) this.membersAwaitingJoin++;
    else if (callback === null && member.awaitingJoin !== null) this.membersAwaitingJoin--;
    member.awaitingJoin = callback;
  }

  /** Answers a member's parked JoinGroup, if it has one. */
  maybeInvokeJoinCallback(member: GroupMember, result: JoinGroupResult): void {
    const callback = member.awaitingJoin;
    if (callback === null) return;
    member.awaitingJoin = null;
    this.membersAwaitingJoin--;
    callback(result);
  }

  /** Answers a member's parked SyncGroup, if it has one; true when it had one. */
  maybeInvokeSyncCallback(member: GroupMember, result: SyncGroupResult): boolean {
    const callback = member.awaitingSync;
    if (callback === null) return false;
    member.awaitingSync = null;
    callback(result);
    return true;
  }

  get numAwaitingJoin(): number {
    return this.membersAwaitingJoin;
  }

  hasAllMembersJoined(): boolean {
    return this.members.size === this.membersAwaitingJoin && this.pendingMembers.size === 0;
  }

  notYetRejoinedMembers(): GroupMember[] {
    return [...this.members.values()].filter((member) => member.awaitingJoin === null);
  }

  /** Keeps the leader if it rejoined, else promotes any member that did; false if none rejoined. */
  maybeElectNewJoinedLeader(): boolean {
    if (this.leaderId === null) return false;
    const leader = this.get(this.leaderId);
    if (leader.awaitingJoin !== null) return true;
    for (const member of this.members.values()) {
      if (member.awaitingJoin !== null) {
        this.leaderId = member.memberId;
        return true;
      }
    }
    return false;
  }

  // ----- static membership ------------------------------------------------------------------------

  currentStaticMemberId(groupInstanceId: string): string | undefined {
    return this.staticMembers.get(groupInstanceId);
  }

  hasStaticMembers(): boolean {
    return this.staticMembers.size > 0;
  }

  /**
   * Gives a static member its new member id, keeping everything else. Whoever still waits under the old
   * id (a zombie instance) is fenced at once.
   */
  replaceStaticMember(groupInstanceId: string, oldMemberId: string, newMemberId: string): GroupMember {
    const member = this.members.get(oldMemberId);
    if (member === undefined) {
      throw new Error(
        `internal: cannot replace member ${oldMemberId} of group ${this.groupId}: not a member`,
      );
    }
    this.members.delete(oldMemberId);
    this.maybeInvokeJoinCallback(member, joinError(oldMemberId, ErrorCode.FENCED_INSTANCE_ID));
    this.maybeInvokeSyncCallback(member, syncError(ErrorCode.FENCED_INSTANCE_ID));
    member.memberId = newMemberId;
    this.members.set(newMemberId, member);
    if (this.isLeader(oldMemberId)) this.leaderId = newMemberId;
    if (this.pendingSyncMembers.delete(oldMemberId)) this.pendingSyncMembers.add(newMemberId);
    this.staticMembers.set(groupInstanceId, newMemberId);
    return member;
  }

  // ----- pending members (KIP-394) and pending syncs ----------------------------------------------

  isPendingMember(memberId: string): boolean {
    return this.pendingMembers.has(memberId);
  }

  addPendingMember(memberId: string): void {
    assert(!this.members.has(memberId), `pending member ${memberId} is already a member`);
    this.pendingMembers.add(memberId);
  }

  get numPending(): number {
    return this.pendingMembers.size;
  }

  addPendingSyncMember(memberId: string): void {
    assert(this.members.has(memberId), `pending sync member ${memberId} is not a member`);
    this.pendingSyncMembers.add(memberId);
  }

  removePendingSyncMember(memberId: string): void {
    this.pendingSyncMembers.delete(memberId);
  }

  hasReceivedSyncFromAllMembers(): boolean {
    return this.pendingSyncMembers.size === 0;
  }

  allPendingSyncMembers(): string[] {
    return [...this.pendingSyncMembers];
  }

  clearPendingSyncMembers(): void {
    this.pendingSyncMembers.clear();
  }

  // ----- states and protocols ---------------------------------------------------------------------

  canRebalance(): boolean {
    return validPreviousStates.PreparingRebalance.includes(this.state);
  }

  transitionTo(target: GroupState, now: number): void {
    if (!validPreviousStates[target].includes(this.state)) {
      throw new Error(
        `internal: group ${this.groupId} cannot move from ${this.state} to ${target} (allowed from ${validPreviousStates[target].join(", ")})`,
      );
    }
    this.state = target;
    this.stateTimestamp = now;
  }

  /** The largest rebalance timeout any member asked for: how long a rebalance waits for rejoins. */
  rebalanceTimeoutMs(): number {
    let timeout = 0;
    for (const member of this.members.values()) timeout = Math.max(timeout, member.rebalanceTimeoutMs);
    return timeout;
  }

  private countProtocols(member: GroupMember, delta: 1 | -1): void {
    // A member that lists a protocol twice still supports it once: counting it twice would make it look
    // supported by everyone when it is not, and leave the vote without a candidate.
    for (const name of new Set(member.protocols.map((protocol) => protocol.name))) {
      const count = (this.supportedProtocols.get(name) ?? 0) + delta;
      if (count === 0) this.supportedProtocols.delete(name);
      else this.supportedProtocols.set(name, count);
    }
  }

  private candidateProtocols(): Set<string> {
    const candidates = new Set<string>();
    for (const [name, count] of this.supportedProtocols)
      if (count === this.members.size) candidates.add(name);
    return candidates;
  }

  /** Whether a member with these protocols may join: same type, and at least one protocol everyone has. */
  supportsProtocols(protocolType: string, protocolNames: readonly string[]): boolean {
    if (this.is("Empty")) return protocolType !== "" && protocolNames.length > 0;
    return (
      this.protocolType === protocolType &&
      protocolNames.some((name) => (this.supportedProtocols.get(name) ?? 0) === this.members.size)
    );
  }

  /**
   * Kafka's rule: among the protocols every member supports, each member votes for the first one in its
   * own preference order, and the protocol with the most votes wins. Ties go to the protocol that reached
   * the winning count first in member order, which makes the choice deterministic.
   */
  selectProtocol(): string {
    assert(this.members.size > 0, "cannot select a protocol for an empty group");
    const candidates = this.candidateProtocols();
    const votes = new Map<string, number>();
    let winner = "";
    let winnerVotes = 0;
    for (const member of this.members.values()) {
      const choice = member.vote(candidates);
      const count = (votes.get(choice) ?? 0) + 1;
      votes.set(choice, count);
      if (count > winnerVotes) {
        winner = choice;
        winnerVotes = count;
      }
    }
    return winner;
  }

  initNextGeneration(now: number): void {
    this.generationId++;
    if (this.members.size > 0) {
      this.protocolName = this.selectProtocol();
      this.subscribedTopics = this.computeSubscribedTopics();
      this.transitionTo("CompletingRebalance", now);
    } else {
      this.protocolName = null;
      this.subscribedTopics = this.computeSubscribedTopics();
      this.transitionTo("Empty", now);
    }
    this.clearPendingSyncMembers();
  }

  currentMemberMetadata(): { memberId: string; groupInstanceId: string | null; metadata: Buffer }[] {
    assert(
      !this.is("Dead") && !this.is("PreparingRebalance") && this.protocolName !== null,
      `member metadata of group ${this.groupId} is undefined in state ${this.state}`,
    );
    const protocolName = this.protocolName!;
    return [...this.members.values()].map((member) => ({
      memberId: member.memberId,
      groupInstanceId: member.groupInstanceId,
      metadata: member.metadataFor(protocolName),
    }));
  }

  // ----- subscriptions ----------------------------------------------------------------------------

  /**
   * The topics consumer-protocol members subscribe to, read from the v0 prefix every subscription
   * version shares. Undefined when the group is not a consumer group or a subscription cannot be read,
   * in which case callers must assume every topic is subscribed.
   */
  computeSubscribedTopics(): ReadonlySet<string> | undefined {
    if (this.protocolType !== CONSUMER_PROTOCOL_TYPE) return undefined;
    if (this.members.size === 0) return new Set();
    if (this.protocolName === null) return undefined;
    const topics = new Set<string>();
    try {
      for (const member of this.members.values()) {
        const { value } = decodeVersionedData(
          ConsumerProtocolSubscriptionCodec,
          member.metadataFor(this.protocolName),
        );
        for (const topic of value.topics) topics.add(topic);
      }
    } catch {
      return undefined;
    }
    return topics;
  }

  refreshSubscribedTopics(): void {
    this.subscribedTopics = this.computeSubscribedTopics();
  }

  isSubscribedToTopic(topic: string): boolean {
    return this.subscribedTopics === undefined ? true : this.subscribedTopics.has(topic);
  }

  knowsSubscriptions(): boolean {
    return this.subscribedTopics !== undefined;
  }

  // ----- offsets ----------------------------------------------------------------------------------

  offset(topic: string, partition: number): CommittedOffset | undefined {
    return this.offsets.get(topic)?.get(partition);
  }

  setOffset(topic: string, partition: number, value: CommittedOffset): void {
    let partitions = this.offsets.get(topic);
    if (partitions === undefined) {
      partitions = new Map();
      this.offsets.set(topic, partitions);
    }
    partitions.set(partition, value);
  }

  removeOffset(topic: string, partition: number): boolean {
    const partitions = this.offsets.get(topic);
    if (partitions === undefined) return false;
    const removed = partitions.delete(partition);
    if (partitions.size === 0) this.offsets.delete(topic);
    return removed;
  }

  numOffsets(): number {
    let count = 0;
    for (const partitions of this.offsets.values()) count += partitions.size;
    return count;
  }

  hasOffsets(): boolean {
    return this.offsets.size > 0 || this.pendingOffsetCommits.size > 0;
  }

  hasPendingCommit(topic: string, partition: number): boolean {
    return this.pendingOffsetCommits.has(pendingKey(topic, partition));
  }

  addPendingCommit(topic: string, partition: number): void {
    const key = pendingKey(topic, partition);
    this.pendingOffsetCommits.set(key, (this.pendingOffsetCommits.get(key) ?? 0) + 1);
  }

  /**
   * Ends the oldest commit in flight for the partition; false when OffsetDelete cancelled it meanwhile (its
   * offset must not be stored). Commits complete in the order they were written.
   */
  finishPendingCommit(topic: string, partition: number): boolean {
    const key = pendingKey(topic, partition);
    const count = this.pendingOffsetCommits.get(key);
    if (count === undefined) return true;
    if (count <= 1) this.pendingOffsetCommits.delete(key);
    else this.pendingOffsetCommits.set(key, count - 1);
    const cancelled = this.cancelledOffsetCommits.get(key);
    if (cancelled === undefined) return true;
    if (cancelled <= 1) this.cancelledOffsetCommits.delete(key);
    else this.cancelledOffsetCommits.set(key, cancelled - 1);
    return false;
  }

  /**
   * OffsetDelete while commits to the partition are being written (Kafka's removeOffsets drops its
   * pendingOffsetCommits): they are not stored when they complete. Returns whether there were any.
   */
  cancelPendingCommits(topic: string, partition: number): boolean {
    const key = pendingKey(topic, partition);
    const count = this.pendingOffsetCommits.get(key);
    if (count === undefined) return false;
    this.cancelledOffsetCommits.set(key, count);
    return true;
  }

  /**
   * Offsets due for expiry (`offsets.retention.minutes`), following Kafka's rules: an Empty group's
   * offsets expire a retention period after the group became empty; a stable consumer group's offsets
   * for topics it no longer subscribes to expire a retention period after their commit; offsets of a
   * group that never used group management expire a retention period after their commit. A commit with
   * its own expire timestamp (OffsetCommit v2-v4 retention time) expires at that time instead. Offsets
   * with a commit in flight never expire.
   */
  expiredOffsets(now: number, retentionMs: number): { topic: string; partition: number }[] {
    let base: ((offset: CommittedOffset) => number) | undefined;
    let subscribed: ReadonlySet<string> | undefined;
    if (this.protocolType !== null && this.is("Empty")) {
      base = (offset) => (this.stateTimestamp >= 0 ? this.stateTimestamp : offset.commitTimestamp);
    } else if (this.protocolType === CONSUMER_PROTOCOL_TYPE && this.subscribedTopics && this.is("Stable")) {
      base = (offset) => offset.commitTimestamp;
      subscribed = this.subscribedTopics;
    } else if (this.protocolType === null) {
      base = (offset) => offset.commitTimestamp;
    }
    if (base === undefined) return [];
    const expired: { topic: string; partition: number }[] = [];
    for (const [topic, partitions] of this.offsets) {
      if (subscribed?.has(topic)) continue;
      for (const [partition, offset] of partitions) {
        if (this.hasPendingCommit(topic, partition)) continue;
        const due =
          offset.expireTimestamp !== null ? now >= offset.expireTimestamp : now - base(offset) >= retentionMs;
        if (due) expired.push({ topic, partition });
      }
    }
    return expired;
  }

  // ----- persistence ------------------------------------------------------------------------------

  /** The group metadata record for the current generation, with the given assignment per member. */
  toStored(assignments: ReadonlyMap<string, Buffer>): StoredGroup {
    const protocolName = this.protocolName;
    return {
      protocolType: this.protocolType ?? "",
      generationId: this.generationId,
      protocolName,
      leaderId: this.leaderId,
      currentStateTimestamp: this.stateTimestamp,
      members: [...this.members.values()].map((member) => ({
        memberId: member.memberId,
        groupInstanceId: member.groupInstanceId,
        clientId: member.clientId,
        clientHost: member.clientHost,
        rebalanceTimeoutMs: member.rebalanceTimeoutMs,
        sessionTimeoutMs: member.sessionTimeoutMs,
        subscription: protocolName === null ? Buffer.alloc(0) : member.metadataFor(protocolName),
        assignment: assignments.get(member.memberId) ?? Buffer.alloc(0),
      })),
    };
  }

  /** Rebuilds a group from its stored metadata: Stable with its members, or Empty without any. */
  static fromStored(groupId: string, stored: StoredGroup, now: number): ClassicGroup {
    const state: GroupState = stored.members.length === 0 ? "Empty" : "Stable";
    const group = new ClassicGroup(
      groupId,
      state,
      stored.currentStateTimestamp >= 0 ? stored.currentStateTimestamp : now,
    );
    group.generationId = stored.generationId;
    group.protocolType = stored.protocolType === "" ? null : stored.protocolType;
    group.protocolName = stored.protocolName;
    group.leaderId = stored.leaderId;
    for (const storedMember of stored.members) {
      const protocols: MemberProtocol[] =
        stored.protocolName === null
          ? []
          : [{ name: stored.protocolName, metadata: storedMember.subscription }];
      const member = new GroupMember(
        storedMember.memberId,
        storedMember.groupInstanceId,
        storedMember.clientId,
        storedMember.clientHost,
        storedMember.rebalanceTimeoutMs,
        storedMember.sessionTimeoutMs,
        stored.protocolType,
        protocols,
      );
      member.assignment = storedMember.assignment;
      group.addLoaded(member);
    }
    if (group.leaderId !== null && !group.members.has(group.leaderId)) {
      const first = group.members.keys().next();
      group.leaderId = first.done ? null : first.value;
    }
    group.refreshSubscribedTopics();
    return group;
  }

  private addLoaded(member: GroupMember): void {
    if (member.groupInstanceId !== null) this.staticMembers.set(member.groupInstanceId, member.memberId);
    this.members.set(member.memberId, member);
    this.countProtocols(member, 1);
  }
}

function pendingKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`internal: ${message}`);
}
