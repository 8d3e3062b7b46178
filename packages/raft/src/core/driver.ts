import type { RaftCore } from "./core.js";
import type { GroupId, Message, NodeId, Ready } from "./types.js";

export interface DriverOptions {
  readonly nodeId: NodeId;
  /** Other nodes this node exchanges messages with (liveness is tracked per node, not per group). */
  readonly peers: readonly NodeId[];
  /** A peer silent for this many ticks is presumed down: quiesced groups it leads wake up. */
  readonly livenessTimeoutTicks: number;
  /** Send at least one (possibly empty) frame to every peer this often, so silence means trouble. */
  readonly nodeHeartbeatTicks: number;
}

export interface GroupReady {
  readonly group: GroupId;
  readonly core: RaftCore;
  readonly ready: Ready;
}

/** One `collect()` round: the host writes `readies` in order, then sends `outbound` right away. */
export interface DriverBatch {
  readonly id: number;
  readonly readies: readonly GroupReady[];
  /** One entry per destination node: every group's messages to that node, in one frame. */
  readonly outbound: ReadonlyMap<NodeId, Message[]>;
  readonly needsSync: boolean;
}

/** Released once the batches up to some id are durable. */
export interface DriverCompletion {
  /** The collected readies without their `entries` (written at collect time, not needed any more). */
  readonly readies: readonly GroupReady[];
  readonly outbound: ReadonlyMap<NodeId, Message[]>;
}

/**
 * Drives all Raft groups of one node as a pure state machine: one tick for every awake group,
 * inbound frames stepped into their groups, every group's output gathered into one frame per peer
 * per round (so the heartbeats of thousands of groups to the same node travel together), and
 * persistence group-committed: all readies of a round are written, one fsync covers them, and the
 * messages that had to wait for durability are released together. Quiesced groups are not touched
 * at all; per-node liveness (any frame from a peer, or an empty one every `nodeHeartbeatTicks`)
 * replaces their per-group heartbeats, and a peer's silence wakes the groups it leads.
 */
export class MultiRaftDriver {
  readonly nodeId: NodeId;
  private readonly cores = new Map<GroupId, RaftCore>();
  private readonly awake = new Set<GroupId>();
  private dirty = new Set<GroupId>();
  /** Collected batches not yet completed, oldest first; a durable one may still hold some groups' readies. */
  private queue: PendingBatch[] = [];
  private nextBatchId = 1;
  private now = 0;
  private peers: NodeId[];
  private readonly lastHeard = new Map<NodeId, number>();
  private readonly lastSent = new Map<NodeId, number>();
  private readonly presumedDown = new Set<NodeId>();

  constructor(private readonly options: DriverOptions) {
    this.nodeId = options.nodeId;
    this.peers = options.peers.filter((peer) => peer !== options.nodeId);
    for (const peer of this.peers) {
      this.lastHeard.set(peer, 0);
      this.lastSent.set(peer, Number.NEGATIVE_INFINITY);
    }
  }

  addGroup(core: RaftCore): void {
    if (this.cores.has(core.group)) {
      throw new Error(
        `group ${core.group} already runs on node ${this.nodeId}; remove it before adding it again`,
      );
    }
    this.cores.set(core.group, core);
    this.awake.add(core.group);
    this.dirty.add(core.group);
  }

  removeGroup(group: GroupId): void {
    this.cores.delete(group);
    this.awake.delete(group);
    this.dirty.delete(group);
  }

  group(group: GroupId): RaftCore | undefined {
    return this.cores.get(group);
  }

  groups(): IterableIterator<RaftCore> {
    return this.cores.values();
  }

  setPeers(peers: readonly NodeId[]): void {
    this.peers = peers.filter((peer) => peer !== this.nodeId);
    for (const peer of this.peers) {
      if (!this.lastHeard.has(peer)) this.lastHeard.set(peer, this.now);
      if (!this.lastSent.has(peer)) this.lastSent.set(peer, Number.NEGATIVE_INFINITY);
    }
  }

  /** A client call (propose, read, transfer) touched this group: include it in the next round. */
  touch(group: GroupId): void {
    if (!this.cores.has(group)) return;
    this.dirty.add(group);
    this.awake.add(group);
  }

  awakeGroupCount(): number {
    return this.awake.size;
  }

  tick(): void {
    this.now++;
    for (const group of this.awake) {
      this.cores.get(group)!.tick();
      this.dirty.add(group);
    }
    for (const peer of this.peers) {
      if (
        !this.presumedDown.has(peer) &&
        this.now - this.lastHeard.get(peer)! >= this.options.livenessTimeoutTicks
      ) {
        this.peerUnreachable(peer);
      }
    }
  }

  /** Returns the groups the frame named that do not run here (the host logs them). */
  receive(from: NodeId, messages: readonly Message[]): GroupId[] {
    this.lastHeard.set(from, this.now);
    this.presumedDown.delete(from);
    const unknown: GroupId[] = [];
    for (const message of messages) {
      const core = this.cores.get(message.group);
      if (core === undefined) {
        unknown.push(message.group);
        continue;
      }
      core.step(message);
      this.dirty.add(message.group);
      if (!core.isQuiesced()) this.awake.add(message.group);
    }
    return unknown;
  }

  /** The transport lost its connection to `peer`, or it has been silent too long. */
  peerUnreachable(peer: NodeId): void {
    if (this.presumedDown.has(peer)) return;
    this.presumedDown.add(peer);
    for (const core of this.cores.values()) {
      if (!core.isQuiesced()) continue;
      // Followers of the lost node start their election timers; leaders that lost a member resume
      // heartbeats so check-quorum can tell whether they still lead.
      const affected =
        core.currentLeader === peer || (core.isLeader() && core.membership.voters.includes(peer));
      if (!affected) continue;
      core.wake();
      this.awake.add(core.group);
      this.dirty.add(core.group);
    }
  }

  isPresumedDown(peer: NodeId): boolean {
    return this.presumedDown.has(peer);
  }

  /** Gather every touched group's ready. Call after any input; cheap when nothing changed. */
  collect(): DriverBatch {
    const readies: GroupReady[] = [];
    const queued: GroupReady[] = [];
    const outbound = new Map<NodeId, Message[]>();
    let needsSync = false;
    const dirty = this.dirty;
    this.dirty = new Set();
    for (const group of dirty) {
      const core = this.cores.get(group);
      if (core === undefined) continue;
      if (core.hasReady()) {
        const ready = core.ready();
        readies.push({ group, core, ready });
        // Held until the fsync round ends: without the entries, whose payloads (client request
        // buffers) would otherwise stay reachable that long.
        queued.push({ group, core, ready: ready.entries.length === 0 ? ready : { ...ready, entries: [] } });
        if (ready.mustPersist) needsSync = true;
        for (const message of ready.messages) appendTo(outbound, message.to, message);
      }
      if (core.isQuiesced()) this.awake.delete(group);
      else this.awake.add(group);
    }
    for (const peer of outbound.keys()) this.lastSent.set(peer, this.now);
    for (const peer of this.peers) {
      if (this.now - this.lastSent.get(peer)! >= this.options.nodeHeartbeatTicks) {
        outbound.set(peer, []);
        this.lastSent.set(peer, this.now);
      }
    }
    const id = this.nextBatchId++;
    if (queued.length > 0) this.queue.push({ id, readies: queued, needsSync, durable: false });
    return { id, readies, outbound, needsSync };
  }

  /** Batches written but not yet completed, oldest first. */
  pendingBatches(): number {
    return this.queue.length;
  }

  /**
   * Whether any written batch with an id in (`after`, `upTo`] still needs an fsync before it can
   * complete (batches up to `after` are covered by rounds already started).
   */
  syncNeeded(upTo = Number.POSITIVE_INFINITY, after = Number.NEGATIVE_INFINITY): boolean {
    return this.queue.some(
      (batch) => batch.id > after && batch.id <= upTo && batch.needsSync && !batch.durable,
    );
  }

  lastBatchId(): number {
    return this.nextBatchId - 1;
  }

  /** Batches up to `batchId` are durable: advance their groups and release what waited for it. */
  complete(batchId: number): DriverCompletion {
    return this.completeRange(Number.NEGATIVE_INFINITY, batchId);
  }

  /**
   * Batches with ids in (`after`, `upTo`] are durable (one fsync round covered them), whether or not
   * earlier rounds have completed. Each group's readies still advance in the order they were collected:
   * a group with a ready in a batch not yet durable waits for it, and so do its later readies. Other
   * groups go ahead. The simulator ends fsyncs in any order; RaftNodeHost still completes its rounds in
   * order (letting them end out of order: docs/benchmarks.md, "Three ideas measured and not kept").
   */
  completeRange(after: number, upTo: number): DriverCompletion {
    for (const batch of this.queue) if (batch.id > after && batch.id <= upTo) batch.durable = true;
    const readies: GroupReady[] = [];
    const outbound = new Map<NodeId, Message[]>();
    const waiting = new Set<GroupId>();
    const remaining: PendingBatch[] = [];
    for (const batch of this.queue) {
      if (!batch.durable) {
        for (const item of batch.readies) waiting.add(item.group);
        remaining.push(batch);
        continue;
      }
      const held: GroupReady[] = [];
      for (const item of batch.readies) {
        if (waiting.has(item.group)) {
          held.push(item);
          continue;
        }
        readies.push(item);
        for (const message of item.ready.messagesAfterPersist) appendTo(outbound, message.to, message);
        if (this.cores.get(item.group) !== item.core) continue;
        item.core.advance(item.ready);
        this.dirty.add(item.group);
        if (!item.core.isQuiesced()) this.awake.add(item.group);
      }
      if (held.length > 0)
        remaining.push({ id: batch.id, readies: held, needsSync: batch.needsSync, durable: true });
    }
    this.queue = remaining;
    for (const peer of outbound.keys()) this.lastSent.set(peer, this.now);
    return { readies, outbound };
  }
}

interface PendingBatch {
  readonly id: number;
  readonly readies: GroupReady[];
  readonly needsSync: boolean;
  /** Its fsync round has completed; what it still holds waits for earlier readies of the same groups. */
  durable: boolean;
}

function appendTo(outbound: Map<NodeId, Message[]>, to: NodeId, message: Message): void {
  const list = outbound.get(to);
  if (list === undefined) outbound.set(to, [message]);
  else list.push(message);
}
