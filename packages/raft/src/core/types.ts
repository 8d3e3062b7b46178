/** Broker id of a node (Kafka's `broker.id`). */
export type NodeId = number;
/** Raft group id: one per partition, plus the controller group. */
export type GroupId = number;

/** Sentinel for "no node" in votes and leader fields (Kafka uses -1 for "no leader" too). */
export const NO_NODE: NodeId = -1;

/**
 * Offset/term of the position before the first entry of an empty log. Offsets are Kafka offsets: the
 * first record of a partition gets offset 0, so "nothing" is -1.
 */
export const EMPTY_LOG_OFFSET = -1;

/** `data`: a client record batch. `noop`: a new leader's first entry. `config`: a membership change. */
export type EntryKind = "data" | "noop" | "config";

/**
 * One Raft entry = one Kafka record batch covering offsets [firstOffset, lastOffset]. `lastOffset` is
 * the entry's Raft index. The core never looks inside `payload`.
 */
export interface Entry {
  readonly firstOffset: number;
  readonly lastOffset: number;
  readonly term: number;
  readonly kind: EntryKind;
  /** The record batch bytes for `data` entries (the storage adapter rewrites offsets and epoch). */
  readonly payload: Uint8Array | undefined;
  /** The new membership for `config` entries. */
  readonly config: ClusterConfig | undefined;
}

/** Voters decide elections and commits; learners only receive the log (new replicas catching up). */
export interface ClusterConfig {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** A single membership step; one at a time keeps every pair of consecutive majorities overlapping. */
export type ConfChange =
  | { readonly type: "addLearner"; readonly node: NodeId }
  | { readonly type: "addVoter"; readonly node: NodeId }
  | { readonly type: "promoteLearner"; readonly node: NodeId }
  | { readonly type: "removeNode"; readonly node: NodeId };

/** What must be durable before the node may vote again or claim to hold entries. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

/** The log position a snapshot covers, and the membership at that position. */
export interface SnapshotMeta {
  readonly offset: number;
  readonly term: number;
  readonly config: ClusterConfig;
}

/**
 * Partition snapshots carry no data (the partition's state machine is its log, so a snapshot is only
 * "the log now starts after `offset`"); the controller's snapshots carry its serialized state.
 */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

export type Role = "follower" | "preCandidate" | "candidate" | "leader";

interface MessageBase {
  readonly group: GroupId;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

export interface PreVoteRequest extends MessageBase {
  readonly type: "preVote";
  readonly lastOffset: number;
  readonly lastTerm: number;
}
export interface VoteRequest extends MessageBase {
  readonly type: "vote";
  readonly lastOffset: number;
  readonly lastTerm: number;
  /** Sent by a leadership-transfer target: voters grant it even while they still hear from a leader. */
  readonly transfer: boolean;
}
export interface VoteResponse extends MessageBase {
  readonly type: "preVoteResponse" | "voteResponse";
  readonly reject: boolean;
}
export interface AppendRequest extends MessageBase {
  readonly type: "append";
  /** lastOffset and term of the entry just before `entries[0]` (or of the leader's log end). */
  readonly prevOffset: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}
export interface AppendResponse extends MessageBase {
  readonly type: "appendResponse";
  readonly reject: boolean;
  /** On success: the follower's log matches the leader's up to this offset (and it is durable). */
  readonly matchOffset: number;
  /** On reject: the prevOffset that did not match. */
  readonly rejectedOffset: number;
  /** On reject: the largest position the follower may share with the leader, and its term there. */
  readonly hintOffset: number;
  readonly hintTerm: number;
}
/** Coalescable: only (group, term, commit) plus a round number used by ReadIndex and leases. */
export interface Heartbeat extends MessageBase {
  readonly type: "heartbeat";
  readonly commit: number;
  readonly round: number;
  /** The leader is going idle: followers stop their election timers until something happens. */
  readonly quiesce: boolean;
}
export interface HeartbeatResponse extends MessageBase {
  readonly type: "heartbeatResponse";
  readonly round: number;
}
export interface SnapshotChunk extends MessageBase {
  readonly type: "snapshot";
  readonly meta: SnapshotMeta;
  /** Byte position of `data` within the snapshot, so an interrupted transfer resumes where it stopped. */
  readonly position: number;
  readonly data: Uint8Array;
  readonly totalBytes: number;
}
export interface SnapshotResponse extends MessageBase {
  readonly type: "snapshotResponse";
  readonly snapshotOffset: number;
  readonly snapshotTerm: number;
  /** The byte position the follower wants next (its received prefix), or -1 once installed. */
  readonly nextPosition: number;
  /** Once installed: the follower's log matches the leader's up to here. */
  readonly matchOffset: number;
}
export interface TimeoutNow extends MessageBase {
  readonly type: "timeoutNow";
}
export interface ReadIndexRequest extends MessageBase {
  readonly type: "readIndex";
  readonly context: number;
}
export interface ReadIndexResponse extends MessageBase {
  readonly type: "readIndexResponse";
  readonly context: number;
  /** -1 when the leader could not serve the read (it is stepping down, or transferring). */
  readonly index: number;
}
/** A follower that woke from quiescence asks its leader to resume heartbeats. */
export interface WakeLeader extends MessageBase {
  readonly type: "wake";
}

export type Message =
  | PreVoteRequest
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | SnapshotChunk
  | SnapshotResponse
  | TimeoutNow
  | ReadIndexRequest
  | ReadIndexResponse
  | WakeLeader;

export type MessageType = Message["type"];

/** The outcome of a linearizable read request: the caller serves the read once it has applied `index`. */
export type ReadResult =
  | { readonly context: number; readonly ok: true; readonly index: number }
  | { readonly context: number; readonly ok: false; readonly reason: ReadFailure };

export type ReadFailure =
  | "NOT_LEADER"
  | "NO_LEADER"
  | "LEADER_CHANGED"
  | "TIMED_OUT"
  | "TRANSFER_IN_PROGRESS";

export interface Leadership {
  readonly term: number;
  readonly leader: NodeId;
  readonly role: Role;
}

/**
 * Everything the core needs the host to do, in this order:
 * 1. install `snapshot` (if any), truncate the log after `entriesAfter` if it holds more, append
 *    `entries`, write `hardState` (if any) — without waiting for durability;
 * 2. send `messages` now;
 * 3. once step 1 is durable (one fsync round may cover many groups): send `messagesAfterPersist`,
 *    apply `committedEntries`, then call `advance(ready)`. Readies are advanced in the order given.
 */
export interface Ready {
  readonly seq: number;
  readonly hardState: HardState | undefined;
  readonly snapshot: Snapshot | undefined;
  readonly entriesAfter: number;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly committedEntries: readonly Entry[];
  /** The commit index after this ready (the partition's high watermark is commitIndex + 1). */
  readonly commitIndex: number;
  readonly readResults: readonly ReadResult[];
  /** Set when the role, leader or term changed since the previous ready. */
  readonly leadership: Leadership | undefined;
  /** False when nothing has to reach the disk: the host may advance without an fsync round. */
  readonly mustPersist: boolean;
}

export type ProposeResult =
  | { readonly ok: true; readonly firstOffset: number; readonly lastOffset: number; readonly term: number }
  | { readonly ok: false; readonly error: ProposeError; readonly leader: NodeId };

export type ProposeError =
  | "NOT_LEADER"
  | "TRANSFER_IN_PROGRESS"
  | "TOO_MANY_UNCOMMITTED_BYTES"
  | "CONFIG_CHANGE_IN_PROGRESS"
  | "LEADER_NOT_READY"
  | "INVALID_CONFIG_CHANGE"
  | "LEARNER_NOT_CAUGHT_UP";
