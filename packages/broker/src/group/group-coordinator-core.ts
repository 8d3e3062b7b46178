import { ErrorCode } from "@raftka/protocol";
import {
  ClassicGroup,
  GroupMember,
  type GroupState,
  type JoinCallback,
  type JoinGroupResult,
  joinError,
  type MemberProtocol,
  type SyncCallback,
  syncError,
} from "./classic-group.js";
import { groupPartition } from "./group-partition.js";
import type { CommittedOffset, OffsetsLogRecord, StoredGroup } from "./offsets-log-records.js";

/**
 * The classic group coordinator as a deterministic state machine: Kafka's GroupCoordinator and the
 * in-memory half of its GroupMetadataManager, without I/O.
 *
 * Inputs are requests (each with the current time), timer expiries and write completions. Outputs go
 * through three injected sinks: reply callbacks passed with each request (answered now or later, e.g.
 * a JoinGroup parked until the rebalance completes), `timers.set/cancel` (the shell owns the clock and
 * calls `fireTimer`), and `persist` (records for the `__consumer_offsets` partition of the group, which
 * the shell appends and, once durable, reports back through the write's `complete`). Sinks must not call
 * back into the core synchronously.
 */

export interface GroupCoordinatorConfig {
  /** offsets.topic.num.partitions */
  readonly offsetsTopicPartitions: number;
  /** group.min.session.timeout.ms / group.max.session.timeout.ms */
  readonly groupMinSessionTimeoutMs: number;
  readonly groupMaxSessionTimeoutMs: number;
  /** group.initial.rebalance.delay.ms */
  readonly groupInitialRebalanceDelayMs: number;
  /** group.max.size (Kafka's default is Int.MaxValue). */
  readonly groupMaxSize: number;
  /** offsets.retention.minutes, in ms. */
  readonly offsetsRetentionMs: number;
  /** offsets.retention.check.interval.ms */
  readonly offsetsRetentionCheckIntervalMs: number;
  /** offset.metadata.max.bytes */
  readonly offsetMetadataMaxBytes: number;
}

export const defaultGroupCoordinatorConfig: GroupCoordinatorConfig = {
  offsetsTopicPartitions: 50,
  groupMinSessionTimeoutMs: 6_000,
  groupMaxSessionTimeoutMs: 1_800_000,
  groupInitialRebalanceDelayMs: 3_000,
  groupMaxSize: 2_147_483_647,
  offsetsRetentionMs: 7 * 24 * 60 * 60 * 1000,
  offsetsRetentionCheckIntervalMs: 600_000,
  offsetMetadataMaxBytes: 4096,
};

/** A JoinGroup that never completes is dropped after this long (Kafka's NewMemberJoinTimeoutMs). */
export const NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000;

export interface CoordinatorTimers {
  /** Sets (or moves) the timer `id` to fire at `at`; the shell then calls `fireTimer(id, now)`. */
  set(id: string, at: number): void;
  cancel(id: string): void;
}

export interface OffsetsLogWrite {
  readonly partition: number;
  readonly records: readonly OffsetsLogRecord[];
  /**
   * The shell calls this exactly once: with NONE when every record is durable (committed), else with
   * the Kafka error code of the failed append (NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR, ...).
   */
  complete(errorCode: number, now: number): void;
}

export type GroupEvent =
  | { kind: "rebalance-started"; groupId: string; generationId: number; reason: string }
  | { kind: "group-stabilized"; groupId: string; generationId: number; members: number }
  | { kind: "group-emptied"; groupId: string; generationId: number }
  | { kind: "member-removed"; groupId: string; memberId: string; reason: string }
  | { kind: "static-member-replaced"; groupId: string; groupInstanceId: string; memberId: string }
  | { kind: "offsets-expired"; groupId: string; count: number }
  | { kind: "offsets-of-deleted-topic-removed"; groupId: string; topic: string; count: number }
  | { kind: "group-deleted"; groupId: string; reason: string }
  | { kind: "write-failed"; groupId: string; what: string; errorCode: number };

export interface GroupCoordinatorCoreOptions {
  readonly config: GroupCoordinatorConfig;
  readonly timers: CoordinatorTimers;
  readonly persist: (write: OffsetsLogWrite) => void;
  /** A fresh UUID for member ids (crypto.randomUUID in production, a seeded source in tests). */
  readonly randomUuid: () => string;
  readonly onEvent?: (event: GroupEvent) => void;
}

export interface JoinGroupInput {
  readonly groupId: string;
  /** "" for a member that has none yet. */
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  /** JoinGroup v4+ without a group instance id: answer MEMBER_ID_REQUIRED first (KIP-394). */
  readonly requireKnownMemberId: boolean;
  /** JoinGroup v9+: a static leader rejoining a stable group may be told to skip the assignment. */
  readonly supportSkippingAssignment: boolean;
  readonly clientId: string;
  readonly clientHost: string;
  readonly rebalanceTimeoutMs: number;
  readonly sessionTimeoutMs: number;
  readonly protocolType: string;
  readonly protocols: readonly MemberProtocol[];
  readonly reason: string | null;
}

export interface SyncGroupInput {
  readonly groupId: string;
  readonly generationId: number;
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  /** SyncGroup v5+ only; null when the version has no such field. */
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly assignments: ReadonlyMap<string, Buffer>;
}

export interface HeartbeatInput {
  readonly groupId: string;
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly generationId: number;
}

export interface LeavingMember {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly reason: string | null;
}

export interface LeaveGroupResult {
  readonly errorCode: number;
  readonly members: readonly { memberId: string; groupInstanceId: string | null; errorCode: number }[];
}

export interface OffsetCommitEntry {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly leaderEpoch: number;
  readonly metadata: string | null;
  /** OffsetCommit v1's per-partition timestamp; -1 means "now". */
  readonly commitTimestamp: number;
}

export interface OffsetCommitInput {
  readonly groupId: string;
  /** -1 for commits from consumers that do not use group management. */
  readonly generationId: number;
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  /** OffsetCommit v2-v4 retention time; -1 for the broker's retention. */
  readonly retentionTimeMs: number;
  readonly offsets: readonly OffsetCommitEntry[];
}

export interface PartitionError {
  readonly topic: string;
  readonly partition: number;
  readonly errorCode: number;
}

export interface FetchedOffset {
  readonly topic: string;
  readonly partition: number;
  /** -1 when nothing is committed. */
  readonly offset: bigint;
  readonly leaderEpoch: number;
  readonly metadata: string;
  readonly errorCode: number;
}

export interface OffsetFetchResult {
  readonly errorCode: number;
  readonly offsets: readonly FetchedOffset[];
}

export interface GroupOverview {
  readonly groupId: string;
  readonly protocolType: string;
  readonly state: GroupState;
}

export interface GroupDescription {
  readonly errorCode: number;
  readonly groupId: string;
  /** Kafka's state names; "Dead" for an unknown group, "" when the coordinator cannot answer. */
  readonly state: GroupState | "";
  readonly protocolType: string;
  readonly protocolName: string;
  readonly members: readonly {
    memberId: string;
    groupInstanceId: string | null;
    clientId: string;
    clientHost: string;
    metadata: Buffer;
    assignment: Buffer;
  }[];
}

/** What an operator sees about a group (admin HTTP, tests): more than DescribeGroups tells. */
export interface GroupSnapshot {
  readonly groupId: string;
  readonly state: GroupState;
  readonly generationId: number;
  readonly protocolType: string | null;
  readonly protocolName: string | null;
  readonly leaderId: string | null;
  readonly members: readonly { memberId: string; groupInstanceId: string | null; clientId: string }[];
  readonly offsets: readonly { topic: string; partition: number; offset: bigint; metadata: string }[];
}

type PartitionStatus = "loading" | "active";

interface LoadingPartition {
  readonly groups: Map<string, StoredGroup>;
  readonly removedGroups: Set<string>;
  /** groupId -> "topic\0partition" -> offset (null: tombstone). */
  readonly offsets: Map<
    string,
    Map<string, { topic: string; partition: number; value: CommittedOffset | null }>
  >;
}

type GroupApi =
  | "join"
  | "sync"
  | "heartbeat"
  | "leave"
  | "offset-commit"
  | "offset-fetch"
  | "describe"
  | "delete"
  | "offset-delete";

const EXPIRE_OFFSETS_TIMER = "expire-offsets";

export class GroupCoordinatorCore {
  private readonly config: GroupCoordinatorConfig;
  private readonly groups = new Map<string, ClassicGroup>();
  private readonly partitions = new Map<number, PartitionStatus>();
  private readonly loading = new Map<number, LoadingPartition>();
  private readonly timerActions = new Map<string, (now: number) => void>();
  private active = false;

  constructor(private readonly options: GroupCoordinatorCoreOptions) {
    this.config = options.config;
    if (this.config.groupMinSessionTimeoutMs > this.config.groupMaxSessionTimeoutMs) {
      throw new RangeError(
        `group.min.session.timeout.ms (${this.config.groupMinSessionTimeoutMs}) is above group.max.session.timeout.ms (${this.config.groupMaxSessionTimeoutMs}); lower the minimum or raise the maximum`,
      );
    }
  }

  // ===== lifecycle and partitions ================================================================

  /** Starts answering requests and schedules the periodic offset expiry. */
  start(now: number): void {
    this.active = true;
    this.scheduleOffsetExpiry(now);
  }

  private scheduleOffsetExpiry(now: number): void {
    this.schedule(EXPIRE_OFFSETS_TIMER, now + this.config.offsetsRetentionCheckIntervalMs, (at) => {
      this.expireOffsets(at);
      this.scheduleOffsetExpiry(at);
    });
  }

  /** Stops answering (COORDINATOR_NOT_AVAILABLE) and answers every parked request with NOT_COORDINATOR. */
  shutdown(now: number): void {
    for (const partition of [...this.partitions.keys()]) this.unloadPartition(partition, now);
    for (const id of [...this.timerActions.keys()]) this.unschedule(id);
    this.active = false;
  }

  partitionFor(groupId: string): number {
    return groupPartition(groupId, this.config.offsetsTopicPartitions);
  }

  partitionStatus(partition: number): PartitionStatus | "not-owned" {
    return this.partitions.get(partition) ?? "not-owned";
  }

  get isActive(): boolean {
    return this.active;
  }

  /** This node now leads `partition`: requests for its groups answer COORDINATOR_LOAD_IN_PROGRESS until loaded. */
  beginLoading(partition: number): void {
    assert(!this.partitions.has(partition), `offsets partition ${partition} is already loaded or loading`);
    this.partitions.set(partition, "loading");
    this.loading.set(partition, { groups: new Map(), removedGroups: new Set(), offsets: new Map() });
  }

  /** Applies one record read back from the partition's log, in log order. */
  replay(partition: number, record: OffsetsLogRecord): void {
    const state = this.loading.get(partition);
    assert(state !== undefined, `offsets partition ${partition} is not loading`);
    if (record.kind === "group") {
      if (record.value === null) {
        state.groups.delete(record.groupId);
        state.removedGroups.add(record.groupId);
      } else {
        state.groups.set(record.groupId, record.value);
        state.removedGroups.delete(record.groupId);
      }
      return;
    }
    let offsets = state.offsets.get(record.groupId);
    if (offsets === undefined) {
      offsets = new Map();
      state.offsets.set(record.groupId, offsets);
    }
    offsets.set(`${record.topic}\u0000${record.partition}`, {
      topic: record.topic,
      partition: record.partition,
      value: record.value,
    });
  }

  /** The log has been read to its end: the partition's groups become live. */
  finishLoading(partition: number, now: number): { groups: number; offsets: number } {
    const state = this.loading.get(partition);
    assert(state !== undefined, `offsets partition ${partition} is not loading`);
    this.loading.delete(partition);
    let offsetCount = 0;
    const attachOffsets = (group: ClassicGroup) => {
      const offsets = state.offsets.get(group.groupId);
      if (offsets === undefined) return;
      for (const entry of offsets.values()) {
        if (entry.value === null) continue;
        group.setOffset(entry.topic, entry.partition, entry.value);
        offsetCount++;
      }
    };
    for (const [groupId, stored] of state.groups) {
      const group = ClassicGroup.fromStored(groupId, stored, now);
      attachOffsets(group);
      this.groups.set(groupId, group);
      this.onGroupLoaded(group, now);
    }
    for (const groupId of state.offsets.keys()) {
      if (state.groups.has(groupId)) continue;
      const group = new ClassicGroup(groupId, "Empty", now);
      attachOffsets(group);
      if (group.numOffsets() > 0) this.groups.set(groupId, group);
    }
    this.partitions.set(partition, "active");
    let groupCount = 0;
    for (const group of this.groups.values())
      if (this.partitionFor(group.groupId) === partition) groupCount++;
    return { groups: groupCount, offsets: offsetCount };
  }

  /** This node no longer leads `partition`: its groups leave memory and parked requests get NOT_COORDINATOR. */
  unloadPartition(partition: number, now: number): void {
    this.loading.delete(partition);
    this.partitions.delete(partition);
    for (const group of [...this.groups.values()]) {
      if (this.partitionFor(group.groupId) !== partition) continue;
      this.onGroupUnloaded(group, now);
      this.groups.delete(group.groupId);
    }
  }

  private onGroupLoaded(group: ClassicGroup, now: number): void {
    assert(group.is("Stable") || group.is("Empty"), `loaded group ${group.groupId} is ${group.state}`);
    if (group.size > this.config.groupMaxSize) {
      this.prepareRebalance(group, `loaded group is over capacity (${this.config.groupMaxSize})`, now);
    }
    for (const member of group.allMembers()) this.scheduleHeartbeatExpiration(group, member, now);
  }

  private onGroupUnloaded(group: ClassicGroup, now: number): void {
    const previous = group.state;
    group.transitionTo("Dead", now);
    for (const member of group.allMembers()) {
      if (previous === "PreparingRebalance") {
        group.maybeInvokeJoinCallback(member, joinError(member.memberId, ErrorCode.NOT_COORDINATOR));
      } else {
        group.maybeInvokeSyncCallback(member, syncError(ErrorCode.NOT_COORDINATOR));
      }
      this.unschedule(heartbeatTimer(group.groupId, member.memberId));
    }
    this.cancelGroupTimers(group);
  }

  // ===== timers ==================================================================================

  /** The shell calls this when a timer set through `timers.set` fires. Unknown or stale ids are ignored. */
  fireTimer(id: string, now: number): void {
    const action = this.timerActions.get(id);
    if (action === undefined) return;
    this.timerActions.delete(id);
    action(now);
  }

  private schedule(id: string, at: number, action: (now: number) => void): void {
    this.timerActions.set(id, action);
    this.options.timers.set(id, at);
  }

  private unschedule(id: string): void {
    if (this.timerActions.delete(id)) this.options.timers.cancel(id);
  }

  private cancelGroupTimers(group: ClassicGroup): void {
    this.unschedule(joinTimer(group.groupId));
    this.unschedule(syncTimer(group.groupId));
    group.joinPhase = null;
  }

  // ===== request validation ======================================================================

  private validateGroupStatus(groupId: string, api: GroupApi): number {
    // OffsetCommit/Fetch, DescribeGroups and DeleteGroups accept "" for compatibility (as Kafka does).
    const emptyAllowed =
      api === "offset-commit" || api === "offset-fetch" || api === "describe" || api === "delete";
    if (!emptyAllowed && groupId === "") return ErrorCode.INVALID_GROUP_ID;
    if (!this.active) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    const status = this.partitions.get(this.partitionFor(groupId));
    if (status === "loading") return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
    if (status === undefined) return ErrorCode.NOT_COORDINATOR;
    return ErrorCode.NONE;
  }

  /** A static member must map to exactly this member id; a dynamic member must exist. */
  private validateCurrentMember(
    group: ClassicGroup,
    memberId: string,
    groupInstanceId: string | null,
  ): number {
    if (groupInstanceId !== null) {
      const current = group.currentStaticMemberId(groupInstanceId);
      if (current === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
      if (current !== memberId) return ErrorCode.FENCED_INSTANCE_ID;
      return ErrorCode.NONE;
    }
    return group.has(memberId) ? ErrorCode.NONE : ErrorCode.UNKNOWN_MEMBER_ID;
  }

  private acceptJoiningMember(group: ClassicGroup, memberId: string): boolean {
    switch (group.state) {
      case "Empty":
      case "Dead":
        return true;
      case "PreparingRebalance":
        return (
          (group.has(memberId) && group.get(memberId).awaitingJoin !== null) ||
          group.numAwaitingJoin < this.config.groupMaxSize
        );
      case "CompletingRebalance":
      case "Stable":
        return group.has(memberId) || group.size < this.config.groupMaxSize;
    }
  }

  // ===== JoinGroup ===============================================================================

  joinGroup(request: JoinGroupInput, now: number, reply: JoinCallback): void {
    const statusError = this.validateGroupStatus(request.groupId, "join");
    if (statusError !== ErrorCode.NONE) {
      reply(joinError(request.memberId, statusError));
      return;
    }
    if (
      request.sessionTimeoutMs < this.config.groupMinSessionTimeoutMs ||
      request.sessionTimeoutMs > this.config.groupMaxSessionTimeoutMs
    ) {
      reply(joinError(request.memberId, ErrorCode.INVALID_SESSION_TIMEOUT));
      return;
    }
    const isUnknownMember = request.memberId === "";
    let group = this.groups.get(request.groupId);
    if (group === undefined) {
      // Only an unknown member creates a group; a member id for a group we do not have is stale.
      if (!isUnknownMember) {
        reply(joinError(request.memberId, ErrorCode.UNKNOWN_MEMBER_ID));
        return;
      }
      group = new ClassicGroup(request.groupId, "Empty", now);
      this.groups.set(request.groupId, group);
    }
    if (!this.acceptJoiningMember(group, request.memberId)) {
      if (group.has(request.memberId)) this.removeMember(group, group.get(request.memberId));
      reply(joinError("", ErrorCode.GROUP_MAX_SIZE_REACHED));
    } else if (isUnknownMember) {
      this.doNewMemberJoin(group, request, now, reply);
    } else {
      this.doCurrentMemberJoin(group, request, now, reply);
    }
    if (group.is("PreparingRebalance")) this.maybeCompleteJoin(group, now);
    this.dropIfUnused(group);
  }

  private doNewMemberJoin(
    group: ClassicGroup,
    request: JoinGroupInput,
    now: number,
    reply: JoinCallback,
  ): void {
    if (group.is("Dead")) {
      reply(joinError("", ErrorCode.COORDINATOR_NOT_AVAILABLE));
      return;
    }
    if (!group.supportsProtocols(request.protocolType, protocolNames(request.protocols))) {
      reply(joinError("", ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
      return;
    }
    const newMemberId = `${request.groupInstanceId ?? request.clientId}-${this.options.randomUuid()}`;
    if (request.groupInstanceId !== null) {
      const oldMemberId = group.currentStaticMemberId(request.groupInstanceId);
      if (oldMemberId !== undefined) {
        this.updateStaticMemberAndRebalance(group, oldMemberId, newMemberId, request, now, reply);
      } else {
        this.addMemberAndRebalance(group, newMemberId, request, now, reply);
      }
      return;
    }
    if (request.requireKnownMemberId) {
      // KIP-394: hand out the id first; the member joins for real with it, and an id never used expires.
      group.addPendingMember(newMemberId);
      this.schedule(pendingMemberTimer(group.groupId, newMemberId), now + request.sessionTimeoutMs, (at) =>
        this.onExpirePendingMember(group, newMemberId, at),
      );
      reply(joinError(newMemberId, ErrorCode.MEMBER_ID_REQUIRED));
      return;
    }
    this.addMemberAndRebalance(group, newMemberId, request, now, reply);
  }

  private doCurrentMemberJoin(
    group: ClassicGroup,
    request: JoinGroupInput,
    now: number,
    reply: JoinCallback,
  ): void {
    const memberId = request.memberId;
    if (group.is("Dead")) {
      reply(joinError(memberId, ErrorCode.COORDINATOR_NOT_AVAILABLE));
      return;
    }
    if (!group.supportsProtocols(request.protocolType, protocolNames(request.protocols))) {
      reply(joinError(memberId, ErrorCode.INCONSISTENT_GROUP_PROTOCOL));
      return;
    }
    if (group.isPendingMember(memberId)) {
      // Pending ids are only ever handed to dynamic members; a static member presenting one is confused.
      if (request.groupInstanceId !== null) {
        reply(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID));
        return;
      }
      this.unschedule(pendingMemberTimer(group.groupId, memberId));
      this.addMemberAndRebalance(group, memberId, request, now, reply);
      return;
    }
    const memberError = this.validateCurrentMember(group, memberId, request.groupInstanceId);
    if (memberError !== ErrorCode.NONE) {
      reply(joinError(memberId, memberError));
      return;
    }
    const member = group.get(memberId);
    switch (group.state) {
      case "PreparingRebalance":
        this.updateMemberAndRebalance(group, member, request, "member joined during rebalance", now, reply);
        return;
      case "CompletingRebalance":
        if (member.matches(request.protocols)) {
          // Probably lost the first JoinGroup response: answer with the current generation again.
          reply(this.currentGenerationResult(group, memberId, group.isLeader(memberId)));
          return;
        }
        this.updateMemberAndRebalance(group, member, request, "member changed its metadata", now, reply);
        return;
      case "Stable":
        if (group.isLeader(memberId)) {
          // The leader rejoins to trigger a rebalance for changes its members' metadata does not show
          // (new partitions of a subscribed topic, for a consumer).
          this.updateMemberAndRebalance(group, member, request, "leader rejoined", now, reply);
          return;
        }
        if (!member.matches(request.protocols)) {
          this.updateMemberAndRebalance(group, member, request, "member changed its metadata", now, reply);
          return;
        }
        reply(this.currentGenerationResult(group, memberId, false));
        return;
      case "Empty":
      case "Dead":
        reply(joinError(memberId, ErrorCode.UNKNOWN_MEMBER_ID));
        return;
    }
  }

  private currentGenerationResult(
    group: ClassicGroup,
    memberId: string,
    withMembers: boolean,
  ): JoinGroupResult {
    return {
      errorCode: ErrorCode.NONE,
      memberId,
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      leader: group.leaderId ?? "",
      skipAssignment: false,
      members: withMembers ? group.currentMemberMetadata() : [],
    };
  }

  private addMemberAndRebalance(
    group: ClassicGroup,
    memberId: string,
    request: JoinGroupInput,
    now: number,
    reply: JoinCallback,
  ): void {
    const member = new GroupMember(
      memberId,
      request.groupInstanceId,
      request.clientId,
      request.clientHost,
      request.rebalanceTimeoutMs,
      request.sessionTimeoutMs,
      request.protocolType,
      request.protocols,
    );
    member.isNew = true;
    if (group.is("PreparingRebalance") && group.generationId === 0) group.newMemberAdded = true;
    group.add(member, reply);
    // A new member cannot heartbeat until its join completes; a join parked this long is given up.
    this.scheduleExpiration(group, member, NEW_MEMBER_JOIN_TIMEOUT_MS, now);
    this.maybePrepareRebalance(group, `new member ${memberId} joined`, now);
  }

  private updateMemberAndRebalance(
    group: ClassicGroup,
    member: GroupMember,
    request: JoinGroupInput,
    reason: string,
    now: number,
    reply: JoinCallback,
  ): void {
    member.rebalanceTimeoutMs = request.rebalanceTimeoutMs;
    member.sessionTimeoutMs = request.sessionTimeoutMs;
    group.updateMember(member, request.protocols, reply);
    this.maybePrepareRebalance(group, reason, now);
  }

  /**
   * KIP-345: a static member that rejoins with an unknown member id takes over its instance's slot under
   * a new member id. In a stable group whose selected protocol stays the same this needs no rebalance:
   * the new id is persisted and the member gets the current generation back.
   */
  private updateStaticMemberAndRebalance(
    group: ClassicGroup,
    oldMemberId: string,
    newMemberId: string,
    request: JoinGroupInput,
    now: number,
    reply: JoinCallback,
  ): void {
    const instanceId = request.groupInstanceId!;
    const currentLeader = group.leaderId ?? "";
    this.unschedule(heartbeatTimer(group.groupId, oldMemberId));
    const member = group.replaceStaticMember(instanceId, oldMemberId, newMemberId);
    this.options.onEvent?.({
      kind: "static-member-replaced",
      groupId: group.groupId,
      groupInstanceId: instanceId,
      memberId: newMemberId,
    });
    this.scheduleHeartbeatExpiration(group, member, now);
    const oldProtocols = member.protocols;
    group.updateMember(member, request.protocols, reply);
    switch (group.state) {
      case "Stable": {
        if (group.protocolName !== group.selectProtocol()) {
          this.maybePrepareRebalance(group, `static member ${instanceId} rejoined with other protocols`, now);
          return;
        }
        const assignments = new Map([...group.allMembers()].map((each) => [each.memberId, each.assignment]));
        this.storeGroup(group, assignments, "static member id", (errorCode, at) => {
          if (member.awaitingJoin !== reply) return;
          if (errorCode !== ErrorCode.NONE) {
            // Could not persist the new id: put the old one back so a restart sees a consistent group.
            group.updateMember(member, oldProtocols, null);
            const restored = group.replaceStaticMember(instanceId, newMemberId, oldMemberId);
            this.unschedule(heartbeatTimer(group.groupId, newMemberId));
            this.scheduleHeartbeatExpiration(group, restored, at);
            reply({
              errorCode,
              memberId: "",
              generationId: group.generationId,
              protocolType: group.protocolType,
              protocolName: group.protocolName,
              leader: currentLeader,
              skipAssignment: false,
              members: [],
            });
            return;
          }
          if (!group.is("Stable")) return; // a rebalance started meanwhile and will answer this join
          if (request.supportSkippingAssignment) {
            const isLeader = group.isLeader(newMemberId);
            group.maybeInvokeJoinCallback(member, {
              ...this.currentGenerationResult(group, newMemberId, isLeader),
              skipAssignment: isLeader,
            });
          } else {
            // Answer with the old leader id, so a rejoining static leader does not run a pointless
            // assignment that a stable group would never hand out.
            group.maybeInvokeJoinCallback(member, {
              ...this.currentGenerationResult(group, newMemberId, false),
              leader: currentLeader,
            });
          }
        });
        return;
      }
      case "CompletingRebalance":
        // The leader may already be assigning to the old member id: rebalance so the new id gets a share.
        this.prepareRebalance(group, `static member ${instanceId} rejoined during CompletingRebalance`, now);
        return;
      case "PreparingRebalance":
        return;
      case "Empty":
      case "Dead":
        throw new Error(`internal: group ${group.groupId} has a static member but is ${group.state}`);
    }
  }

  // ===== rebalance phases ========================================================================

  private maybePrepareRebalance(group: ClassicGroup, reason: string, now: number): void {
    if (group.canRebalance()) this.prepareRebalance(group, reason, now);
  }

  private prepareRebalance(group: ClassicGroup, reason: string, now: number): void {
    if (group.is("CompletingRebalance"))
      this.resetAndPropagateAssignmentError(group, ErrorCode.REBALANCE_IN_PROGRESS, now);
    this.removeSyncExpiration(group);
    const wasEmpty = group.is("Empty");
    group.transitionTo("PreparingRebalance", now);
    this.options.onEvent?.({
      kind: "rebalance-started",
      groupId: group.groupId,
      generationId: group.generationId,
      reason,
    });
    if (wasEmpty) {
      const delay = this.config.groupInitialRebalanceDelayMs;
      group.joinPhase = {
        initial: true,
        delayMs: delay,
        remainingMs: Math.max(group.rebalanceTimeoutMs() - delay, 0),
      };
      this.schedule(joinTimer(group.groupId), now + delay, (at) => this.onJoinTimer(group, at));
    } else {
      group.joinPhase = { initial: false, delayMs: 0, remainingMs: 0 };
      this.schedule(joinTimer(group.groupId), now + group.rebalanceTimeoutMs(), (at) =>
        this.onJoinTimer(group, at),
      );
      this.maybeCompleteJoin(group, now);
    }
  }

  private onJoinTimer(group: ClassicGroup, now: number): void {
    const phase = group.joinPhase;
    if (phase === null || !this.isCurrent(group)) return;
    if (phase.initial && group.newMemberAdded && phase.remainingMs !== 0) {
      // Members are still arriving: wait another delay, within what is left of the rebalance timeout.
      group.newMemberAdded = false;
      const delay = Math.min(this.config.groupInitialRebalanceDelayMs, phase.remainingMs);
      group.joinPhase = {
        initial: true,
        delayMs: delay,
        remainingMs: Math.max(phase.remainingMs - phase.delayMs, 0),
      };
      this.schedule(joinTimer(group.groupId), now + delay, (at) => this.onJoinTimer(group, at));
      return;
    }
    this.completeJoin(group, now);
  }

  /** An ordinary rebalance completes as soon as every member has rejoined. */
  private maybeCompleteJoin(group: ClassicGroup, now: number): void {
    const phase = group.joinPhase;
    if (phase === null || phase.initial || !group.is("PreparingRebalance")) return;
    if (group.hasAllMembersJoined()) this.completeJoin(group, now);
  }

  private completeJoin(group: ClassicGroup, now: number): void {
    this.unschedule(joinTimer(group.groupId));
    group.joinPhase = null;
    for (const member of group.notYetRejoinedMembers()) {
      // Static members keep their slot across a missed rebalance; dynamic ones are gone.
      if (member.isStatic) continue;
      this.removeMemberFromGroup(group, member, "did not rejoin before the rebalance timeout");
    }
    if (group.is("Dead")) return;
    if (!group.maybeElectNewJoinedLeader() && group.size > 0) {
      // Nobody rejoined (only static members that missed it are left): wait another rebalance timeout.
      group.joinPhase = { initial: false, delayMs: 0, remainingMs: 0 };
      this.schedule(joinTimer(group.groupId), now + group.rebalanceTimeoutMs(), (at) =>
        this.onJoinTimer(group, at),
      );
      this.maybeCompleteJoin(group, now);
      return;
    }
    group.initNextGeneration(now);
    if (group.is("Empty")) {
      this.options.onEvent?.({
        kind: "group-emptied",
        groupId: group.groupId,
        generationId: group.generationId,
      });
      // A failed write only means a restart resurrects the previous generation, which then expires.
      this.storeGroup(group, new Map(), "empty group", () => {});
      this.dropIfUnused(group);
      return;
    }
    this.options.onEvent?.({
      kind: "group-stabilized",
      groupId: group.groupId,
      generationId: group.generationId,
      members: group.size,
    });
    for (const member of [...group.allMembers()]) {
      group.maybeInvokeJoinCallback(
        member,
        this.currentGenerationResult(group, member.memberId, group.isLeader(member.memberId)),
      );
      this.scheduleHeartbeatExpiration(group, member, now);
      member.isNew = false;
      group.addPendingSyncMember(member.memberId);
    }
    const generation = group.generationId;
    this.schedule(syncTimer(group.groupId), now + group.rebalanceTimeoutMs(), (at) =>
      this.onExpirePendingSync(group, generation, at),
    );
  }

  private onExpirePendingSync(group: ClassicGroup, generationId: number, now: number): void {
    if (!this.isCurrent(group) || generationId !== group.generationId) return;
    if (!group.is("CompletingRebalance") && !group.is("Stable")) return;
    if (group.hasReceivedSyncFromAllMembers()) return;
    const missing = group.allPendingSyncMembers();
    for (const memberId of missing) {
      this.removeMemberFromGroup(
        group,
        group.get(memberId),
        "did not send SyncGroup before the rebalance timeout",
      );
    }
    this.prepareRebalance(group, `members ${missing.join(", ")} did not sync`, now);
  }

  private removePendingSyncMember(group: ClassicGroup, memberId: string): void {
    group.removePendingSyncMember(memberId);
    if (group.hasReceivedSyncFromAllMembers()) this.unschedule(syncTimer(group.groupId));
  }

  private removeSyncExpiration(group: ClassicGroup): void {
    group.clearPendingSyncMembers();
    this.unschedule(syncTimer(group.groupId));
  }

  // ===== heartbeats and member expiry ============================================================

  private scheduleHeartbeatExpiration(group: ClassicGroup, member: GroupMember, now: number): void {
    this.scheduleExpiration(group, member, member.sessionTimeoutMs, now);
  }

  private scheduleExpiration(group: ClassicGroup, member: GroupMember, timeoutMs: number, now: number): void {
    const memberId = member.memberId;
    this.schedule(heartbeatTimer(group.groupId, memberId), now + timeoutMs, (at) =>
      this.onExpireHeartbeat(group, memberId, at),
    );
  }

  private onExpireHeartbeat(group: ClassicGroup, memberId: string, now: number): void {
    if (!this.isCurrent(group) || !group.has(memberId)) return;
    const member = group.get(memberId);
    // Members parked in a JoinGroup or SyncGroup cannot heartbeat and count as alive (unless new).
    const satisfied = !member.isNew && (member.awaitingJoin !== null || member.awaitingSync !== null);
    if (satisfied) return;
    this.removeMemberAndUpdateGroup(group, member, "session timeout expired", now);
  }

  private onExpirePendingMember(group: ClassicGroup, memberId: string, now: number): void {
    if (!this.isCurrent(group) || !group.isPendingMember(memberId)) return;
    group.remove(memberId);
    if (group.is("PreparingRebalance")) this.maybeCompleteJoin(group, now);
    this.dropIfUnused(group);
  }

  /** Removes a member without touching the group's state (the caller decides what follows). */
  private removeMemberFromGroup(group: ClassicGroup, member: GroupMember, reason: string): void {
    group.maybeInvokeJoinCallback(member, joinError("", ErrorCode.UNKNOWN_MEMBER_ID));
    group.maybeInvokeSyncCallback(member, syncError(ErrorCode.UNKNOWN_MEMBER_ID));
    group.remove(member.memberId);
    this.unschedule(heartbeatTimer(group.groupId, member.memberId));
    this.options.onEvent?.({
      kind: "member-removed",
      groupId: group.groupId,
      memberId: member.memberId,
      reason,
    });
  }

  private removeMember(group: ClassicGroup, member: GroupMember): void {
    this.removeMemberFromGroup(group, member, "group is over group.max.size");
  }

  private removeMemberAndUpdateGroup(
    group: ClassicGroup,
    member: GroupMember,
    reason: string,
    now: number,
  ): void {
    this.removeMemberFromGroup(group, member, reason);
    switch (group.state) {
      case "Dead":
      case "Empty":
        return;
      case "Stable":
      case "CompletingRebalance":
        this.maybePrepareRebalance(group, `member ${member.memberId} left: ${reason}`, now);
        return;
      case "PreparingRebalance":
        this.maybeCompleteJoin(group, now);
        return;
    }
  }

  // ===== SyncGroup ===============================================================================

  syncGroup(request: SyncGroupInput, now: number, reply: SyncCallback): void {
    const statusError = this.validateGroupStatus(request.groupId, "sync");
    if (statusError === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) {
      // The rebalance state was lost with the old coordinator: make the member rejoin, which it does
      // without rediscovering the coordinator (older clients do not expect LOAD_IN_PROGRESS here).
      reply(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
      return;
    }
    if (statusError !== ErrorCode.NONE) {
      reply(syncError(statusError));
      return;
    }
    const group = this.groups.get(request.groupId);
    if (group === undefined) {
      reply(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
      return;
    }
    const validationError = this.validateSyncGroup(group, request);
    if (validationError !== ErrorCode.NONE) {
      reply(syncError(validationError));
      return;
    }
    switch (group.state) {
      case "Empty":
        reply(syncError(ErrorCode.UNKNOWN_MEMBER_ID));
        return;
      case "PreparingRebalance":
        reply(syncError(ErrorCode.REBALANCE_IN_PROGRESS));
        return;
      case "CompletingRebalance": {
        const member = group.get(request.memberId);
        member.awaitingSync = reply;
        this.removePendingSyncMember(group, request.memberId);
        if (!group.isLeader(request.memberId)) return;
        // Members the leader left out get an empty assignment, like in Kafka.
        const assignments = new Map<string, Buffer>();
        for (const each of group.allMembers()) {
          assignments.set(each.memberId, request.assignments.get(each.memberId) ?? Buffer.alloc(0));
        }
        const generation = group.generationId;
        this.storeGroup(group, assignments, "assignment", (errorCode, at) => {
          // Another member may have joined meanwhile: only the same generation may become stable.
          if (!this.isCurrent(group) || !group.is("CompletingRebalance") || group.generationId !== generation)
            return;
          if (errorCode !== ErrorCode.NONE) {
            this.resetAndPropagateAssignmentError(group, errorCode, at);
            this.maybePrepareRebalance(group, "could not store the assignment", at);
            return;
          }
          for (const each of group.allMembers())
            each.assignment = assignments.get(each.memberId) ?? Buffer.alloc(0);
          this.propagateAssignment(group, ErrorCode.NONE, at);
          group.transitionTo("Stable", at);
        });
        return;
      }
      case "Stable": {
        this.removePendingSyncMember(group, request.memberId);
        const member = group.get(request.memberId);
        reply({
          errorCode: ErrorCode.NONE,
          protocolType: group.protocolType,
          protocolName: group.protocolName,
          assignment: member.assignment,
        });
        this.scheduleHeartbeatExpiration(group, member, now);
        return;
      }
      case "Dead":
        reply(syncError(ErrorCode.COORDINATOR_NOT_AVAILABLE));
        return;
    }
  }

  private validateSyncGroup(group: ClassicGroup, request: SyncGroupInput): number {
    if (group.is("Dead")) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    const memberError = this.validateCurrentMember(group, request.memberId, request.groupInstanceId);
    if (memberError !== ErrorCode.NONE) return memberError;
    if (request.generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    if (request.protocolType !== null && group.protocolType !== request.protocolType) {
      return ErrorCode.INCONSISTENT_GROUP_PROTOCOL;
    }
    if (request.protocolName !== null && group.protocolName !== request.protocolName) {
      return ErrorCode.INCONSISTENT_GROUP_PROTOCOL;
    }
    return ErrorCode.NONE;
  }

  private resetAndPropagateAssignmentError(group: ClassicGroup, errorCode: number, now: number): void {
    assert(
      group.is("CompletingRebalance"),
      `group ${group.groupId} is ${group.state}, not CompletingRebalance`,
    );
    for (const member of group.allMembers()) member.assignment = Buffer.alloc(0);
    this.propagateAssignment(group, errorCode, now);
  }

  private propagateAssignment(group: ClassicGroup, errorCode: number, now: number): void {
    const ok = errorCode === ErrorCode.NONE;
    for (const member of group.allMembers()) {
      const answered = group.maybeInvokeSyncCallback(member, {
        errorCode,
        protocolType: ok ? group.protocolType : null,
        protocolName: ok ? group.protocolName : null,
        assignment: member.assignment,
      });
      // The session restarts when the member learns its assignment, whatever happened while it waited.
      if (answered) this.scheduleHeartbeatExpiration(group, member, now);
    }
  }

  // ===== Heartbeat ===============================================================================

  heartbeat(request: HeartbeatInput, now: number): number {
    const statusError = this.validateGroupStatus(request.groupId, "heartbeat");
    // While loading, a heartbeat cannot be judged: let the member carry on.
    if (statusError === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) return ErrorCode.NONE;
    if (statusError !== ErrorCode.NONE) return statusError;
    const group = this.groups.get(request.groupId);
    if (group === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (group.is("Dead")) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    const memberError = this.validateCurrentMember(group, request.memberId, request.groupInstanceId);
    if (memberError !== ErrorCode.NONE) return memberError;
    if (request.generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    switch (group.state) {
      case "Empty":
        return ErrorCode.UNKNOWN_MEMBER_ID;
      case "CompletingRebalance":
      case "Stable":
        this.scheduleHeartbeatExpiration(group, group.get(request.memberId), now);
        return ErrorCode.NONE;
      case "PreparingRebalance":
        this.scheduleHeartbeatExpiration(group, group.get(request.memberId), now);
        return ErrorCode.REBALANCE_IN_PROGRESS;
      case "Dead":
        return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    }
  }

  // ===== LeaveGroup ==============================================================================

  leaveGroup(groupId: string, leaving: readonly LeavingMember[], now: number): LeaveGroupResult {
    const statusError = this.validateGroupStatus(groupId, "leave");
    if (statusError !== ErrorCode.NONE) return { errorCode: statusError, members: [] };
    const group = this.groups.get(groupId);
    const memberResult = (member: LeavingMember, errorCode: number) => ({
      memberId: member.memberId,
      groupInstanceId: member.groupInstanceId,
      errorCode,
    });
    if (group === undefined) {
      return {
        errorCode: ErrorCode.NONE,
        members: leaving.map((member) => memberResult(member, ErrorCode.UNKNOWN_MEMBER_ID)),
      };
    }
    if (group.is("Dead")) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, members: [] };
    const results = leaving.map((leavingMember) => {
      const reason = `left the group (${leavingMember.reason ?? "no reason given"})`;
      if (leavingMember.memberId === "") {
        // Administrative removal of a static member by its instance id (KIP-345).
        const current =
          leavingMember.groupInstanceId === null
            ? undefined
            : group.currentStaticMemberId(leavingMember.groupInstanceId);
        if (current === undefined) return memberResult(leavingMember, ErrorCode.UNKNOWN_MEMBER_ID);
        this.removeMemberAndUpdateGroup(group, group.get(current), reason, now);
        return memberResult(leavingMember, ErrorCode.NONE);
      }
      if (group.isPendingMember(leavingMember.memberId)) {
        group.remove(leavingMember.memberId);
        this.unschedule(pendingMemberTimer(groupId, leavingMember.memberId));
        if (group.is("PreparingRebalance")) this.maybeCompleteJoin(group, now);
        return memberResult(leavingMember, ErrorCode.NONE);
      }
      const memberError = this.validateCurrentMember(
        group,
        leavingMember.memberId,
        leavingMember.groupInstanceId,
      );
      if (memberError !== ErrorCode.NONE) return memberResult(leavingMember, memberError);
      this.removeMemberAndUpdateGroup(group, group.get(leavingMember.memberId), reason, now);
      return memberResult(leavingMember, ErrorCode.NONE);
    });
    this.dropIfUnused(group);
    return { errorCode: ErrorCode.NONE, members: results };
  }

  // ===== OffsetCommit ============================================================================

  commitOffsets(request: OffsetCommitInput, now: number, reply: (results: PartitionError[]) => void): void {
    const failAll = (errorCode: number) =>
      reply(request.offsets.map((entry) => ({ topic: entry.topic, partition: entry.partition, errorCode })));
    const statusError = this.validateGroupStatus(request.groupId, "offset-commit");
    if (statusError !== ErrorCode.NONE) {
      failAll(statusError);
      return;
    }
    let group = this.groups.get(request.groupId);
    if (group === undefined) {
      // Without group management (generation -1) a commit creates the group; otherwise it is stale.
      if (request.generationId >= 0) {
        failAll(ErrorCode.ILLEGAL_GENERATION);
        return;
      }
      group = new ClassicGroup(request.groupId, "Empty", now);
      this.groups.set(request.groupId, group);
    }
    const validationError = this.validateOffsetCommit(group, request);
    if (validationError !== ErrorCode.NONE) {
      this.dropIfUnused(group);
      failAll(validationError);
      return;
    }
    switch (group.state) {
      case "Empty":
        this.storeOffsets(group, request, now, reply);
        return;
      case "Stable":
      case "PreparingRebalance":
        // Commits are still allowed while preparing: the heartbeat tells the member to rejoin.
        this.scheduleHeartbeatExpiration(group, group.get(request.memberId), now);
        this.storeOffsets(group, request, now, reply);
        return;
      case "CompletingRebalance":
        // The member has its new generation but not its assignment yet.
        failAll(ErrorCode.REBALANCE_IN_PROGRESS);
        return;
      case "Dead":
        failAll(ErrorCode.COORDINATOR_NOT_AVAILABLE);
        return;
    }
  }

  private validateOffsetCommit(group: ClassicGroup, request: OffsetCommitInput): number {
    if (group.is("Dead")) return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    if (request.generationId >= 0 || request.memberId !== "" || request.groupInstanceId !== null) {
      const memberError = this.validateCurrentMember(group, request.memberId, request.groupInstanceId);
      if (memberError !== ErrorCode.NONE) return memberError;
      return request.generationId === group.generationId ? ErrorCode.NONE : ErrorCode.ILLEGAL_GENERATION;
    }
    // A non-member may only commit for a group nobody is in.
    return group.is("Empty") ? ErrorCode.NONE : ErrorCode.UNKNOWN_MEMBER_ID;
  }

  private storeOffsets(
    group: ClassicGroup,
    request: OffsetCommitInput,
    now: number,
    reply: (results: PartitionError[]) => void,
  ): void {
    const results: PartitionError[] = [];
    const accepted: { entry: OffsetCommitEntry; value: CommittedOffset; index: number }[] = [];
    for (const entry of request.offsets) {
      const metadata = entry.metadata ?? "";
      if (Buffer.byteLength(metadata, "utf8") > this.config.offsetMetadataMaxBytes) {
        results.push({
          topic: entry.topic,
          partition: entry.partition,
          errorCode: ErrorCode.OFFSET_METADATA_TOO_LARGE,
        });
        continue;
      }
      const value: CommittedOffset = {
        offset: entry.offset,
        leaderEpoch: entry.leaderEpoch,
        metadata,
        commitTimestamp: entry.commitTimestamp === -1 ? now : saturatedTimestamp(entry.commitTimestamp),
        expireTimestamp:
          request.retentionTimeMs === -1 ? null : saturatedTimestamp(now + request.retentionTimeMs),
      };
      accepted.push({ entry, value, index: results.length });
      results.push({ topic: entry.topic, partition: entry.partition, errorCode: ErrorCode.NONE });
    }
    if (accepted.length === 0) {
      reply(results);
      return;
    }
    for (const { entry } of accepted) group.addPendingCommit(entry.topic, entry.partition);
    const records: OffsetsLogRecord[] = accepted.map(({ entry, value }) => ({
      kind: "offset",
      groupId: group.groupId,
      topic: entry.topic,
      partition: entry.partition,
      value,
    }));
    this.persist(group, records, (errorCode) => {
      const mapped = offsetWriteError(errorCode);
      for (const { entry, value, index } of accepted) {
        const stillWanted = group.finishPendingCommit(entry.topic, entry.partition);
        if (mapped === ErrorCode.NONE) {
          if (stillWanted && !group.is("Dead")) group.setOffset(entry.topic, entry.partition, value);
        } else {
          results[index] = { topic: entry.topic, partition: entry.partition, errorCode: mapped };
        }
      }
      if (mapped !== ErrorCode.NONE) {
        this.options.onEvent?.({
          kind: "write-failed",
          groupId: group.groupId,
          what: "offset commit",
          errorCode,
        });
      }
      reply(results);
    });
  }

  // ===== OffsetFetch =============================================================================

  /**
   * Committed offsets of a group, for the given partitions or (null) all it has. Answered whatever the
   * group's state: consumers without group management keep offsets here too.
   */
  fetchOffsets(
    groupId: string,
    partitions: readonly { topic: string; partition: number }[] | null,
    requireStable: boolean,
  ): OffsetFetchResult {
    const statusError = this.validateGroupStatus(groupId, "offset-fetch");
    if (statusError !== ErrorCode.NONE) return { errorCode: statusError, offsets: [] };
    const group = this.groups.get(groupId);
    const none = (topic: string, partition: number, errorCode: number = ErrorCode.NONE): FetchedOffset => ({
      topic,
      partition,
      offset: -1n,
      leaderEpoch: -1,
      metadata: "",
      errorCode,
    });
    if (group === undefined || group.is("Dead")) {
      return {
        errorCode: ErrorCode.NONE,
        offsets: (partitions ?? []).map(({ topic, partition }) => none(topic, partition)),
      };
    }
    const wanted =
      partitions ??
      [...group.offsets].flatMap(([topic, byPartition]) =>
        [...byPartition.keys()].map((partition) => ({ topic, partition })),
      );
    return {
      errorCode: ErrorCode.NONE,
      offsets: wanted.map(({ topic, partition }) => {
        if (requireStable && group.hasPendingCommit(topic, partition)) {
          return none(topic, partition, ErrorCode.UNSTABLE_OFFSET_COMMIT);
        }
        const committed = group.offset(topic, partition);
        if (committed === undefined) return none(topic, partition);
        return {
          topic,
          partition,
          offset: committed.offset,
          leaderEpoch: committed.leaderEpoch,
          metadata: committed.metadata,
          errorCode: ErrorCode.NONE,
        };
      }),
    };
  }

  // ===== ListGroups / DescribeGroups =============================================================

  listGroups(statesFilter: readonly string[]): { errorCode: number; groups: GroupOverview[] } {
    if (!this.active) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, groups: [] };
    const loading = [...this.partitions.values()].some((status) => status === "loading");
    const wanted = new Set(statesFilter.map((state) => state.toLowerCase()));
    const groups: GroupOverview[] = [];
    for (const group of this.groups.values()) {
      if (group.is("Dead")) continue;
      if (wanted.size > 0 && !wanted.has(group.state.toLowerCase())) continue;
      groups.push({ groupId: group.groupId, protocolType: group.protocolType ?? "", state: group.state });
    }
    return { errorCode: loading ? ErrorCode.COORDINATOR_LOAD_IN_PROGRESS : ErrorCode.NONE, groups };
  }

  describeGroup(groupId: string): GroupDescription {
    const statusError = this.validateGroupStatus(groupId, "describe");
    const base = { groupId, protocolType: "", protocolName: "", members: [] };
    if (statusError !== ErrorCode.NONE) return { ...base, errorCode: statusError, state: "" };
    const group = this.groups.get(groupId);
    if (group === undefined) return { ...base, errorCode: ErrorCode.NONE, state: "Dead" };
    const stable = group.is("Stable") && group.protocolName !== null;
    return {
      errorCode: ErrorCode.NONE,
      groupId,
      state: group.state,
      protocolType: group.protocolType ?? "",
      protocolName: stable ? group.protocolName! : "",
      members: [...group.allMembers()].map((member) => ({
        memberId: member.memberId,
        groupInstanceId: member.groupInstanceId,
        clientId: member.clientId,
        clientHost: member.clientHost,
        metadata: stable ? member.metadataFor(group.protocolName!) : Buffer.alloc(0),
        assignment: stable ? member.assignment : Buffer.alloc(0),
      })),
    };
  }

  /** Everything about a group for operators and tests; undefined when this node does not hold it. */
  snapshotGroup(groupId: string): GroupSnapshot | undefined {
    const group = this.groups.get(groupId);
    if (group === undefined) return undefined;
    return {
      groupId,
      state: group.state,
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      leaderId: group.leaderId,
      members: [...group.allMembers()].map((member) => ({
        memberId: member.memberId,
        groupInstanceId: member.groupInstanceId,
        clientId: member.clientId,
      })),
      offsets: [...group.offsets].flatMap(([topic, byPartition]) =>
        [...byPartition].map(([partition, committed]) => ({
          topic,
          partition,
          offset: committed.offset,
          metadata: committed.metadata,
        })),
      ),
    };
  }

  /** Every committed offset this node holds, for the consumer lag metric. */
  *committedOffsets(): Generator<{ groupId: string; topic: string; partition: number; offset: bigint }> {
    for (const group of this.groups.values()) {
      for (const [topic, byPartition] of group.offsets) {
        for (const [partition, committed] of byPartition) {
          yield { groupId: group.groupId, topic, partition, offset: committed.offset };
        }
      }
    }
  }

  // ===== DeleteGroups / OffsetDelete =============================================================

  deleteGroups(
    groupIds: readonly string[],
    now: number,
    reply: (results: { groupId: string; errorCode: number }[]) => void,
  ): void {
    const results = new Map<string, number>();
    const eligible: ClassicGroup[] = [];
    for (const groupId of groupIds) {
      const statusError = this.validateGroupStatus(groupId, "delete");
      if (statusError !== ErrorCode.NONE) {
        results.set(groupId, statusError);
        continue;
      }
      const group = this.groups.get(groupId);
      if (group === undefined || group.is("Dead")) {
        results.set(groupId, ErrorCode.GROUP_ID_NOT_FOUND);
      } else if (group.is("Empty")) {
        group.transitionTo("Dead", now);
        eligible.push(group);
        results.set(groupId, ErrorCode.NONE);
      } else {
        results.set(groupId, ErrorCode.NON_EMPTY_GROUP);
      }
    }
    const answer = () => reply(groupIds.map((groupId) => ({ groupId, errorCode: results.get(groupId)! })));
    if (eligible.length === 0) {
      answer();
      return;
    }
    let outstanding = 0;
    for (const group of eligible) {
      const tombstones = this.removeGroupWithTombstones(group, "deleted by DeleteGroups");
      if (tombstones.length === 0) continue;
      outstanding++;
      this.persist(group, tombstones, (errorCode) => {
        if (errorCode !== ErrorCode.NONE) results.set(group.groupId, offsetWriteError(errorCode));
        if (--outstanding === 0) answer();
      });
    }
    if (outstanding === 0) answer();
  }

  /** Removes a Dead group from memory; returns the tombstones that make the removal durable. */
  private removeGroupWithTombstones(group: ClassicGroup, reason: string): OffsetsLogRecord[] {
    assert(group.is("Dead"), `group ${group.groupId} must be Dead to be removed, not ${group.state}`);
    const tombstones: OffsetsLogRecord[] = [];
    for (const [topic, byPartition] of group.offsets) {
      for (const partition of byPartition.keys()) {
        tombstones.push({ kind: "offset", groupId: group.groupId, topic, partition, value: null });
      }
    }
    group.offsets.clear();
    // A generation-0 group never wrote metadata (it only stored offsets): nothing to delete.
    if (group.generationId > 0) tombstones.push({ kind: "group", groupId: group.groupId, value: null });
    this.cancelGroupTimers(group);
    if (this.groups.get(group.groupId) === group) this.groups.delete(group.groupId);
    this.options.onEvent?.({ kind: "group-deleted", groupId: group.groupId, reason });
    return tombstones;
  }

  deleteOffsets(
    groupId: string,
    partitions: readonly { topic: string; partition: number }[],
    reply: (result: { errorCode: number; partitions: PartitionError[] }) => void,
  ): void {
    const statusError = this.validateGroupStatus(groupId, "offset-delete");
    if (statusError !== ErrorCode.NONE) {
      reply({ errorCode: statusError, partitions: [] });
      return;
    }
    const group = this.groups.get(groupId);
    if (group === undefined || group.is("Dead")) {
      reply({ errorCode: ErrorCode.GROUP_ID_NOT_FOUND, partitions: [] });
      return;
    }
    let eligible: { topic: string; partition: number }[];
    const results: PartitionError[] = [];
    if (group.is("Empty")) {
      eligible = [...partitions];
    } else if (group.isConsumerGroup) {
      eligible = [];
      for (const entry of partitions) {
        if (group.isSubscribedToTopic(entry.topic)) {
          results.push({ ...entry, errorCode: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC });
        } else {
          eligible.push(entry);
        }
      }
    } else {
      reply({ errorCode: ErrorCode.NON_EMPTY_GROUP, partitions: [] });
      return;
    }
    const tombstones: OffsetsLogRecord[] = [];
    for (const entry of eligible) {
      // Both, not either: a commit being written would otherwise store its offset after the delete.
      const cancelled = group.cancelPendingCommits(entry.topic, entry.partition);
      if (group.removeOffset(entry.topic, entry.partition) || cancelled) {
        tombstones.push({
          kind: "offset",
          groupId,
          topic: entry.topic,
          partition: entry.partition,
          value: null,
        });
      }
    }
    const answer = (errorCode: number) =>
      reply({
        errorCode: ErrorCode.NONE,
        partitions: [...results, ...eligible.map((entry) => ({ ...entry, errorCode }))].sort(
          (a, b) => partitionOrder(partitions, a) - partitionOrder(partitions, b),
        ),
      });
    if (tombstones.length === 0) {
      answer(ErrorCode.NONE);
      return;
    }
    this.persist(group, tombstones, (errorCode) => answer(offsetWriteError(errorCode)));
  }

  // ===== offset expiry ===========================================================================

  /** offsets.retention.minutes: drops expired offsets, and Empty groups left without any. */
  expireOffsets(now: number): { expiredOffsets: number; deletedGroups: number } {
    let expiredOffsets = 0;
    let deletedGroups = 0;
    for (const group of [...this.groups.values()]) {
      if (this.partitions.get(this.partitionFor(group.groupId)) !== "active") continue;
      const expired = group.expiredOffsets(now, this.config.offsetsRetentionMs);
      const tombstones: OffsetsLogRecord[] = [];
      for (const { topic, partition } of expired) {
        group.removeOffset(topic, partition);
        tombstones.push({ kind: "offset", groupId: group.groupId, topic, partition, value: null });
      }
      expiredOffsets += expired.length;
      if (expired.length > 0) {
        this.options.onEvent?.({ kind: "offsets-expired", groupId: group.groupId, count: expired.length });
      }
      if (group.is("Empty") && !group.hasOffsets() && group.numPending === 0) {
        group.transitionTo("Dead", now);
        tombstones.push(...this.removeGroupWithTombstones(group, "empty and without offsets"));
        deletedGroups++;
      }
      if (tombstones.length > 0) this.persist(group, tombstones, () => {});
    }
    return { expiredOffsets, deletedGroups };
  }

  /**
   * A topic was deleted: every group forgets its committed offsets for it (tombstones in the offsets
   * log), as Kafka does, so that consumers of a topic re-created under the name start by their
   * auto.offset.reset instead of at offsets of data that no longer exists. Empty groups left without
   * offsets go, as in expireOffsets.
   */
  removeOffsetsOfTopic(topic: string, now: number): number {
    let removed = 0;
    for (const group of [...this.groups.values()]) {
      if (this.partitions.get(this.partitionFor(group.groupId)) !== "active") continue;
      const partitions = [...(group.offsets.get(topic)?.keys() ?? [])];
      if (partitions.length === 0) continue;
      const tombstones: OffsetsLogRecord[] = [];
      for (const partition of partitions) {
        group.removeOffset(topic, partition);
        tombstones.push({ kind: "offset", groupId: group.groupId, topic, partition, value: null });
      }
      removed += partitions.length;
      this.options.onEvent?.({
        kind: "offsets-of-deleted-topic-removed",
        groupId: group.groupId,
        topic,
        count: partitions.length,
      });
      if (group.is("Empty") && !group.hasOffsets() && group.numPending === 0) {
        group.transitionTo("Dead", now);
        tombstones.push(...this.removeGroupWithTombstones(group, "empty and without offsets"));
      }
      this.persist(group, tombstones, () => {});
    }
    return removed;
  }

  // ===== persistence =============================================================================

  private storeGroup(
    group: ClassicGroup,
    assignments: ReadonlyMap<string, Buffer>,
    what: string,
    onDone: (errorCode: number, now: number) => void,
  ): void {
    const record: OffsetsLogRecord = {
      kind: "group",
      groupId: group.groupId,
      value: group.toStored(assignments),
    };
    this.persist(group, [record], (errorCode, now) => {
      const mapped = groupWriteError(errorCode);
      if (mapped !== ErrorCode.NONE) {
        this.options.onEvent?.({ kind: "write-failed", groupId: group.groupId, what, errorCode });
      }
      onDone(mapped, now);
    });
  }

  private persist(
    group: ClassicGroup,
    records: readonly OffsetsLogRecord[],
    onDone: (errorCode: number, now: number) => void,
  ): void {
    let completed = false;
    this.options.persist({
      partition: this.partitionFor(group.groupId),
      records,
      complete: (errorCode, now) => {
        assert(!completed, "an offsets log write was completed twice");
        completed = true;
        onDone(errorCode, now);
      },
    });
  }

  // ===== helpers =================================================================================

  private isCurrent(group: ClassicGroup): boolean {
    return this.groups.get(group.groupId) === group && !group.is("Dead");
  }

  /**
   * A group created by a request that then failed (or whose only pending member left) is forgotten at
   * once instead of lingering as an Empty group until the next expiry pass.
   */
  private dropIfUnused(group: ClassicGroup): void {
    if (
      group.is("Empty") &&
      group.generationId === 0 &&
      group.size === 0 &&
      group.numPending === 0 &&
      !group.hasOffsets() &&
      this.groups.get(group.groupId) === group
    ) {
      this.groups.delete(group.groupId);
    }
  }
}

/** Kafka's mapping of append errors to what a group metadata write answers. */
function groupWriteError(errorCode: number): number {
  switch (errorCode) {
    case ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
    case ErrorCode.NOT_ENOUGH_REPLICAS:
    case ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND:
      return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    case ErrorCode.NOT_LEADER_OR_FOLLOWER:
    case ErrorCode.KAFKA_STORAGE_ERROR:
      return ErrorCode.NOT_COORDINATOR;
    case ErrorCode.REQUEST_TIMED_OUT:
      return ErrorCode.REBALANCE_IN_PROGRESS;
    case ErrorCode.MESSAGE_TOO_LARGE:
    case ErrorCode.RECORD_LIST_TOO_LARGE:
    case ErrorCode.INVALID_FETCH_SIZE:
      return ErrorCode.UNKNOWN_SERVER_ERROR;
    default:
      return errorCode;
  }
}

/** Kafka's mapping of append errors to what an offset commit answers. */
function offsetWriteError(errorCode: number): number {
  switch (errorCode) {
    case ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
    case ErrorCode.NOT_ENOUGH_REPLICAS:
    case ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND:
      return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    case ErrorCode.NOT_LEADER_OR_FOLLOWER:
    case ErrorCode.KAFKA_STORAGE_ERROR:
      return ErrorCode.NOT_COORDINATOR;
    case ErrorCode.MESSAGE_TOO_LARGE:
    case ErrorCode.RECORD_LIST_TOO_LARGE:
    case ErrorCode.INVALID_FETCH_SIZE:
      return ErrorCode.INVALID_COMMIT_OFFSET_SIZE;
    default:
      return errorCode;
  }
}

function protocolNames(protocols: readonly MemberProtocol[]): string[] {
  return protocols.map((protocol) => protocol.name);
}

function partitionOrder(
  requested: readonly { topic: string; partition: number }[],
  entry: { topic: string; partition: number },
): number {
  return requested.findIndex((each) => each.topic === entry.topic && each.partition === entry.partition);
}

const heartbeatTimer = (groupId: string, memberId: string) => `heartbeat\u0000${groupId}\u0000${memberId}`;
const pendingMemberTimer = (groupId: string, memberId: string) => `pending\u0000${groupId}\u0000${memberId}`;
const joinTimer = (groupId: string) => `join\u0000${groupId}`;
const syncTimer = (groupId: string) => `sync\u0000${groupId}`;

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`internal: ${message}`);
}

/**
 * Client timestamps arrive as int64 and are kept as JS numbers; near the int64 limits the number rounds past
 * what int64 can hold again. Kept within the safe integers, a "never" stays "never" and the log can store it.
 */
function saturatedTimestamp(timestamp: number): number {
  return Math.min(Math.max(timestamp, -Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
}
