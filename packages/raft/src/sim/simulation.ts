import { RaftInvariantError } from "../core/assert.js";
import { makeConfig } from "../core/config.js";
import { RaftCore, type RaftOptions, type UnsafeTestOnlyBugs } from "../core/core.js";
import { type DriverCompletion, type GroupReady, MultiRaftDriver } from "../core/driver.js";
import { MemoryRaftLog } from "../core/memory-log.js";
import { SeededRandom } from "../core/random.js";
import type {
  ClusterConfig,
  ConfChange,
  Entry,
  GroupId,
  HardState,
  Message,
  NodeId,
  Ready,
  Snapshot,
} from "../core/types.js";
import { NO_NODE } from "../core/types.js";
import { EventQueue } from "./event-queue.js";
import { decodeKvSnapshot, decodePut, encodeKvSnapshot, encodePut, type KvValue } from "./kv.js";
import { checkRegisterHistory, type RegisterOperation } from "./linearizability.js";
import { describeMessage } from "./trace.js";

export interface SimulationOptions {
  readonly seed: number;
  readonly nodes: number;
  readonly groups: number;
  readonly ticks: number;
  /** Called with every trace line as it happens (for `--trace`); the tail is kept regardless. */
  readonly traceSink?: (line: string) => void;
  readonly bugs?: UnsafeTestOnlyBugs;
  readonly leaseReads?: boolean;
  /**
   * `random` (default): every seed draws its own mix and intensity of faults, some of them mild.
   * `hostile`: every fault at its most aggressive setting, to hunt rare interleavings quickly.
   */
  readonly faultProfile?: "random" | "hostile";
}

export interface SimulationStats {
  events: number;
  messagesDelivered: number;
  elections: number;
  crashes: number;
  writesAcknowledged: number;
  readsCompleted: number;
  snapshotsInstalled: number;
  maxCommitOffset: number;
  /** Fsyncs that ended while an earlier one of the same node was still in flight. */
  fsyncsOutOfOrder: number;
}

export interface SimulationResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly failure: string | undefined;
  readonly traceTail: readonly string[];
  readonly stats: SimulationStats;
}

/** Virtual time units per nominal tick: network and disk latencies are fractions of a tick. */
const TICK = 100;
const TRACE_TAIL = 300;
const LIVENESS_BOUND_TICKS = 200;
const KEYS = ["a", "b", "c"];

type SimEvent =
  | { readonly type: "tick"; readonly node: NodeId; readonly incarnation: number }
  | {
      readonly type: "deliver";
      readonly from: NodeId;
      readonly to: NodeId;
      readonly messages: readonly Message[];
    }
  | { readonly type: "fsync"; readonly node: NodeId; readonly incarnation: number; readonly token: number }
  | { readonly type: "loaded"; readonly node: NodeId; readonly incarnation: number; readonly group: GroupId }
  | { readonly type: "fault" }
  | { readonly type: "restart"; readonly node: NodeId }
  | { readonly type: "crash"; readonly node: NodeId; readonly incarnation: number }
  | { readonly type: "heal" }
  | { readonly type: "client"; readonly group: GroupId }
  | { readonly type: "probe"; readonly group: GroupId };

type LogOperation =
  | {
      readonly type: "write";
      readonly snapshot: Snapshot | undefined;
      readonly after: number;
      readonly entries: readonly Entry[];
    }
  | { readonly type: "compact"; readonly offset: number; readonly data: Uint8Array };

/** One group's disk and memory on one node. */
interface GroupReplica {
  durableLog: MemoryRaftLog;
  durableHardState: HardState;
  pendingLog: LogOperation[];
  pendingHardState: HardState[];
  /** How many log operations and hard states of this incarnation became durable (pendingLog follows them). */
  durableLogCount: number;
  durableHardCount: number;
  /** Written since the last fsync started: only such replicas' files are in the next fsync, as on the host. */
  touched: boolean;
  log: MemoryRaftLog;
  kv: Map<string, KvValue>;
  applied: number;
  loading: boolean;
  /** Writes proposed through this node, by lastOffset, waiting to be applied here. */
  pendingWrites: Map<number, WriteOperation>;
  /** Reads whose index is known, waiting for this node to apply that far. */
  waitingReads: Array<{ index: number; read: ReadOperation }>;
}

interface SimNode {
  readonly id: NodeId;
  up: boolean;
  incarnation: number;
  random: SeededRandom;
  driver: MultiRaftDriver;
  readonly replicas: Map<GroupId, GroupReplica>;
  tickPeriod: number;
  slowDisk: boolean;
  /**
   * Fsyncs in flight, each covering the driver's batches (after, batchId] and, of each replica written since
   * the fsync before it started, the operations written so far. They end in any order: the host's rounds
   * overlap too, and the driver allows completing them out of order (the host still completes in order).
   */
  fsyncs: InFlightFsync[];
  /** The last batch an fsync started so far covers. */
  coveredUpTo: number;
  /** Reads sent to this node, by context. */
  readonly pendingReads: Map<number, ReadOperation>;
}

interface InFlightFsync {
  readonly token: number;
  readonly after: number;
  readonly batchId: number;
  /** Per replica in this fsync: log operations and hard states written (in all) when it started. */
  readonly marks: Map<GroupId, [number, number]>;
}

/** Fsyncs a node may have in flight at once: later ones may end before earlier ones. */
const MAX_FSYNCS_IN_FLIGHT = 3;

interface WriteOperation {
  readonly group: GroupId;
  readonly key: string;
  readonly value: string;
  readonly invokedAt: number;
  respondedAt: number;
  readonly term: number;
  readonly lastOffset: number;
  readonly node: NodeId;
  readonly probe: boolean;
}

interface ReadOperation {
  readonly group: GroupId;
  readonly key: string;
  readonly invokedAt: number;
  readonly node: NodeId;
  readonly context: number;
}

interface Faults {
  lossRate: number;
  duplicateRate: number;
  longDelayRate: number;
  crashRate: number;
  partitionRate: number;
  slowDiskRate: number;
  loadingRate: number;
  /** Crash a leader right after it is elected or commits: the moments Raft's subtle rules are about. */
  pointedCrashRate: number;
  /** Ticks between fault decisions: short intervals give tangled, overlapping faults. */
  intervalTicks: number;
  /** Share of frames whose messages travel (and get lost or delayed) one by one. */
  splitRate: number;
}

class SimulationFailure extends Error {
  override name = "SimulationFailure";
}

/**
 * A deterministic cluster: `nodes` nodes each hosting `groups` Raft groups, virtual time, a seeded
 * network that loses, delays, duplicates and reorders frames and can be partitioned (symmetric or
 * one-way), crashes that lose whatever was not fsynced (any prefix of it may survive), slow disks,
 * clock drift, entries that are "not in memory" for a while, and clients doing writes and
 * ReadIndex reads. Safety is checked after every event; linearizability, liveness and convergence
 * at the end. Same options, same run: everything random comes from `seed`.
 */
export class Simulation {
  private readonly random: SeededRandom;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly nodes: SimNode[] = [];
  private readonly nodeIds: NodeId[];
  private readonly config: ClusterConfig;
  private readonly faults: Faults;
  private now = 0;
  private readonly endTime: number;
  private readonly healTime: number;
  private readonly clientStopTime: number;
  private healed = false;
  private readonly blockedLinks = new Set<string>();
  private readonly traceTail: Array<{ time: number; text: string | Message }> = [];
  private nextToken = 1;
  private nextReadContext = 1;
  private nextValue = 1;
  readonly stats: SimulationStats = {
    events: 0,
    messagesDelivered: 0,
    elections: 0,
    crashes: 0,
    writesAcknowledged: 0,
    readsCompleted: 0,
    snapshotsInstalled: 0,
    maxCommitOffset: -1,
    fsyncsOutOfOrder: 0,
  };

  // Checker state
  private readonly leaderOfTerm = new Map<string, NodeId>();
  private readonly entryRegistry = new Map<string, { entry: Entry; prevOffset: number; prevTerm: number }>();
  private readonly appliedRegistry = new Map<string, Entry>();
  /** Per group: for each term in which some node learned a commit index, the highest one (offset, entry term). */
  private readonly commitsByTerm: Array<Map<number, { offset: number; term: number }>> = [];
  /** Values are unique across the run, so a value names its write. */
  private readonly writePosition = new Map<string, number>();
  private readonly history: RegisterOperation[] = [];
  private readonly writes: WriteOperation[] = [];
  private readonly liveAt: Array<number | undefined> = [];

  constructor(private readonly options: SimulationOptions) {
    validateSimulationOptions(options);
    this.random = new SeededRandom(options.seed);
    this.nodeIds = Array.from({ length: options.nodes }, (_, index) => index + 1);
    this.config = makeConfig(this.nodeIds);
    this.endTime = options.ticks * TICK;
    const calmTicks = Math.max(300, Math.floor(options.ticks * 0.3));
    this.healTime = (options.ticks - calmTicks) * TICK;
    this.clientStopTime = this.endTime - 40 * TICK;
    const profile = this.random.fork(1);
    this.faults = {
      lossRate: profile.pick([0, 0.01, 0.05, 0.15]),
      duplicateRate: profile.pick([0, 0.01, 0.05]),
      longDelayRate: profile.pick([0, 0.02, 0.1]),
      crashRate: profile.pick([0.05, 0.15, 0.3]),
      partitionRate: profile.pick([0.05, 0.15, 0.3]),
      slowDiskRate: profile.pick([0, 0.1, 0.3]),
      loadingRate: profile.pick([0, 0.02]),
      pointedCrashRate: profile.pick([0, 0.02, 0.1]),
      intervalTicks: profile.pick([3, 10]),
      splitRate: profile.pick([0, 0.3, 1]),
    };
    if (options.faultProfile === "hostile") {
      Object.assign(this.faults, {
        lossRate: 0.05,
        longDelayRate: 0.1,
        crashRate: 0.3,
        partitionRate: 0.3,
        pointedCrashRate: 0.1,
        intervalTicks: 3,
        splitRate: 1,
      });
    }
    for (let group = 0; group < options.groups; group++) {
      this.commitsByTerm.push(new Map());
      this.liveAt.push(undefined);
    }
  }

  run(): SimulationResult {
    let failure: string | undefined;
    try {
      this.trace(
        `seed ${this.options.seed}: ${this.options.nodes} nodes, ${this.options.groups} groups, ${this.options.ticks} ticks, faults ${JSON.stringify(this.faults)}`,
      );
      this.start();
      this.loop();
      this.finalChecks();
    } catch (error) {
      if (error instanceof SimulationFailure) failure = error.message;
      else if (error instanceof RaftInvariantError) failure = `${error.message}`;
      else failure = `unexpected error: ${(error as Error).stack ?? String(error)}`;
      this.trace(`FAILED: ${failure}`);
    }
    return {
      seed: this.options.seed,
      ok: failure === undefined,
      failure,
      traceTail: failure === undefined ? [] : this.formattedTail(),
      stats: this.stats,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Setup and main loop

  private start(): void {
    for (const id of this.nodeIds) {
      const random = this.random.fork(100 + id);
      const replicas = new Map<GroupId, GroupReplica>();
      for (let group = 0; group < this.options.groups; group++) {
        const durableLog = new MemoryRaftLog(this.config);
        replicas.set(group, {
          durableLog,
          durableHardState: { term: 0, vote: NO_NODE, commit: -1 },
          pendingLog: [],
          pendingHardState: [],
          durableLogCount: 0,
          durableHardCount: 0,
          touched: false,
          log: durableLog.clone(),
          kv: new Map(),
          applied: -1,
          loading: false,
          pendingWrites: new Map(),
          waitingReads: [],
        });
      }
      const node: SimNode = {
        id,
        up: false,
        incarnation: 0,
        random,
        driver: undefined as unknown as MultiRaftDriver,
        replicas,
        tickPeriod: Math.round(TICK * (1 + (random.next() - 0.5) * 0.2)),
        slowDisk: false,
        fsyncs: [],
        coveredUpTo: -1,
        pendingReads: new Map(),
      };
      this.nodes.push(node);
      this.boot(node);
    }
    this.queue.push(10 * TICK, { type: "fault" });
    this.queue.push(this.healTime, { type: "heal" });
    for (let group = 0; group < this.options.groups; group++) {
      this.queue.push(this.random.int(1, 5) * TICK, { type: "client", group });
      this.queue.push(this.healTime + 5 * TICK, { type: "probe", group });
    }
  }

  private loop(): void {
    for (;;) {
      const next = this.queue.pop();
      if (next === undefined || next.time > this.endTime) return;
      this.now = next.time;
      this.stats.events++;
      this.handle(next.item);
    }
  }

  private handle(event: SimEvent): void {
    switch (event.type) {
      case "tick": {
        const node = this.node(event.node);
        if (!node.up || node.incarnation !== event.incarnation) return;
        node.driver.tick();
        this.pump(node);
        this.queue.push(this.now + node.tickPeriod, event);
        return;
      }
      case "deliver": {
        const node = this.node(event.to);
        // A partition also swallows what was already on the wire.
        if (!node.up || this.blockedLinks.has(`${event.from}>${event.to}`)) return;
        this.stats.messagesDelivered += event.messages.length;
        for (const message of event.messages) this.trace(message);
        node.driver.receive(event.from, event.messages);
        this.pump(node);
        return;
      }
      case "fsync":
        this.fsyncDone(event.node, event.incarnation, event.token);
        return;
      case "loaded": {
        const node = this.node(event.node);
        if (!node.up || node.incarnation !== event.incarnation) return;
        node.replicas.get(event.group)!.loading = false;
        node.driver.group(event.group)?.entriesLoaded();
        node.driver.touch(event.group);
        this.pump(node);
        return;
      }
      case "fault":
        this.injectFaults();
        if (this.now + this.faults.intervalTicks * TICK < this.healTime) {
          this.queue.push(this.now + this.faults.intervalTicks * TICK, event);
        }
        return;
      case "restart":
        if (!this.node(event.node).up) this.boot(this.node(event.node));
        return;
      case "crash": {
        const node = this.node(event.node);
        if (this.healed || !node.up || node.incarnation !== event.incarnation) return;
        if (this.random.chance(0.5)) {
          this.crash(node);
          this.queue.push(this.now + this.random.int(5, 60) * TICK, { type: "restart", node: node.id });
        } else {
          this.isolate(node.id);
        }
        return;
      }
      case "heal":
        this.heal();
        return;
      case "client":
        if (this.now < this.clientStopTime) {
          this.clientOperation(event.group);
          this.queue.push(this.now + this.random.int(1, 4) * TICK, event);
        }
        return;
      case "probe":
        if (this.liveAt[event.group] === undefined && this.now < this.clientStopTime) {
          this.write(event.group, true);
          this.queue.push(this.now + 5 * TICK, event);
        }
        return;
    }
  }

  private node(id: NodeId): SimNode {
    return this.nodes[id - 1]!;
  }

  // -------------------------------------------------------------------------------------------
  // Node lifecycle

  private coreOptions(node: SimNode, group: GroupId, applied: number): RaftOptions {
    return {
      id: node.id,
      group,
      random: node.random.fork(group).asFunction(),
      electionTimeoutTicks: 10,
      heartbeatIntervalTicks: 2,
      maxAppendBytes: 40,
      maxInflightMessages: 3,
      snapshotChunkBytes: 48,
      leaseReads: this.options.leaseReads ?? false,
      applied,
      unsafeTestOnly: this.options.bugs,
    };
  }

  private boot(node: SimNode): void {
    node.up = true;
    node.incarnation++;
    node.random = node.random.fork(node.incarnation);
    node.fsyncs = [];
    node.coveredUpTo = -1;
    node.driver = new MultiRaftDriver({
      nodeId: node.id,
      peers: this.nodeIds,
      livenessTimeoutTicks: 10,
      nodeHeartbeatTicks: 2,
    });
    for (const [group, replica] of node.replicas) {
      replica.log = replica.durableLog.clone();
      const meta = replica.log.snapshotMeta();
      replica.kv = decodeKvSnapshot(replica.durableLog.snapshot()!.data);
      replica.applied = meta.offset;
      replica.loading = false;
      replica.pendingWrites.clear();
      replica.waitingReads.length = 0;
      this.installLoadingHook(node, group, replica);
      const core = new RaftCore(
        this.coreOptions(node, group, meta.offset),
        replica.log,
        replica.durableHardState,
      );
      node.driver.addGroup(core);
    }
    this.trace(`node ${node.id} boots (incarnation ${node.incarnation})`);
    this.queue.push(this.now + node.random.int(1, node.tickPeriod), {
      type: "tick",
      node: node.id,
      incarnation: node.incarnation,
    });
    this.pump(node);
  }

  private installLoadingHook(node: SimNode, group: GroupId, replica: GroupReplica): void {
    const rate = this.faults.loadingRate;
    if (rate === 0) {
      replica.log.loadingHook = undefined;
      return;
    }
    replica.log.loadingHook = () => {
      if (this.healed) return false;
      if (replica.loading) return true;
      if (!node.random.chance(rate)) return false;
      replica.loading = true;
      this.queue.push(this.now + node.random.int(10, 300), {
        type: "loaded",
        node: node.id,
        incarnation: node.incarnation,
        group,
      });
      return true;
    };
  }

  private crash(node: SimNode): void {
    this.stats.crashes++;
    for (const replica of node.replicas.values()) {
      // Whatever was written but not fsynced may survive in part: any prefix, independently per file.
      const logSurvivors = node.random.int(0, replica.pendingLog.length);
      for (let index = 0; index < logSurvivors; index++) {
        const operation = replica.pendingLog[index]!;
        if (index === logSurvivors - 1 && operation.type === "write" && operation.entries.length > 1) {
          const torn = node.random.int(1, operation.entries.length);
          applyLogOperation(replica.durableLog, { ...operation, entries: operation.entries.slice(0, torn) });
        } else {
          applyLogOperation(replica.durableLog, operation);
        }
      }
      const hardSurvivors = node.random.int(0, replica.pendingHardState.length);
      if (hardSurvivors > 0) replica.durableHardState = replica.pendingHardState[hardSurvivors - 1]!;
      replica.pendingLog = [];
      replica.pendingHardState = [];
      replica.durableLogCount = 0;
      replica.durableHardCount = 0;
      replica.touched = false;
      replica.pendingWrites.clear();
      replica.waitingReads.length = 0;
    }
    node.pendingReads.clear();
    node.up = false;
    node.fsyncs = [];
    node.incarnation++;
    this.trace(`node ${node.id} crashes`);
  }

  // -------------------------------------------------------------------------------------------
  // Driving a node: collect readies, write them, send, group-commit fsync

  private pump(node: SimNode): void {
    for (let round = 0; round < 1000; round++) {
      if (!node.up) return;
      const batch = node.driver.collect();
      for (const item of batch.readies) this.writeReady(node, item);
      this.sendAll(node.id, batch.outbound);
      const last = node.driver.lastBatchId();
      if (node.driver.pendingBatches() === 0 || last <= node.coveredUpTo) return;
      if (node.driver.syncNeeded(last, node.coveredUpTo)) {
        if (node.fsyncs.length < MAX_FSYNCS_IN_FLIGHT) this.startFsync(node, last);
        return;
      }
      // Batches that need no fsync complete behind those in flight, as the host chains them.
      if (node.fsyncs.length > 0) return;
      const after = node.coveredUpTo;
      node.coveredUpTo = last;
      this.completed(node, node.driver.completeRange(after, last));
    }
    throw new SimulationFailure(
      `node ${node.id} kept producing work for 1000 rounds without waiting for anything`,
    );
  }

  private writeReady(node: SimNode, item: GroupReady): void {
    const { ready, group, core } = item;
    const replica = node.replicas.get(group)!;
    if (ready.snapshot !== undefined || ready.entries.length > 0) {
      const prevTerm =
        ready.snapshot !== undefined && ready.entriesAfter === ready.snapshot.meta.offset
          ? ready.snapshot.meta.term
          : replica.log.termAt(ready.entriesAfter);
      this.checkEntries(node, group, ready.entriesAfter, prevTerm, ready.entries);
      replica.log.applyReady(ready);
      replica.touched = true;
      replica.pendingLog.push({
        type: "write",
        snapshot: ready.snapshot,
        after: ready.entriesAfter,
        entries: ready.entries,
      });
    }
    if (ready.hardState !== undefined) {
      replica.pendingHardState.push(ready.hardState);
      replica.touched = true;
    }
    if (ready.leadership !== undefined) {
      const { role, term, leader } = ready.leadership;
      this.trace(`node ${node.id} g${group}: ${role} in term ${term} (leader ${leader})`);
      if (role === "leader") {
        this.checkNewLeader(node, group, core);
        this.maybePointedCrash(node, 30);
      }
    }
    if (ready.hardState !== undefined) {
      this.recordCommit(group, core, ready);
      if (core.isLeader()) this.maybePointedCrash(node, 30);
    }
    for (const result of ready.readResults) {
      const read = node.pendingReads.get(result.context);
      if (read === undefined) continue;
      node.pendingReads.delete(result.context);
      if (!result.ok) continue;
      if (replica.applied >= result.index) this.completeRead(replica, read);
      else replica.waitingReads.push({ index: result.index, read });
    }
  }

  private startFsync(node: SimNode, upTo: number): void {
    const marks = new Map<GroupId, [number, number]>();
    for (const [group, replica] of node.replicas) {
      if (!replica.touched) continue;
      replica.touched = false;
      marks.set(group, [
        replica.durableLogCount + replica.pendingLog.length,
        replica.durableHardCount + replica.pendingHardState.length,
      ]);
    }
    const token = this.nextToken++;
    node.fsyncs.push({ token, after: node.coveredUpTo, batchId: upTo, marks });
    node.coveredUpTo = upTo;
    const latency = node.slowDisk ? node.random.int(200, 1500) : node.random.int(1, 20);
    this.queue.push(this.now + latency, {
      type: "fsync",
      node: node.id,
      incarnation: node.incarnation,
      token,
    });
  }

  private fsyncDone(id: NodeId, incarnation: number, token: number): void {
    const node = this.node(id);
    if (!node.up || node.incarnation !== incarnation) return;
    const index = node.fsyncs.findIndex((fsync) => fsync.token === token);
    if (index < 0) return;
    if (index > 0) this.stats.fsyncsOutOfOrder++;
    const [{ after, batchId, marks }] = node.fsyncs.splice(index, 1) as [InFlightFsync];
    for (const [group, [logMark, hardMark]] of marks) {
      const replica = node.replicas.get(group)!;
      // An fsync that ends after a later one finds some or all of its operations durable already.
      const logCount = Math.max(0, logMark - replica.durableLogCount);
      for (const operation of replica.pendingLog.splice(0, logCount))
        applyLogOperation(replica.durableLog, operation);
      replica.durableLogCount += logCount;
      const hardCount = Math.max(0, hardMark - replica.durableHardCount);
      const synced = replica.pendingHardState.splice(0, hardCount);
      if (synced.length > 0) replica.durableHardState = synced[synced.length - 1]!;
      replica.durableHardCount += hardCount;
    }
    this.completed(node, node.driver.completeRange(after, batchId));
    this.pump(node);
  }

  private completed(node: SimNode, completion: DriverCompletion): void {
    this.sendAll(node.id, completion.outbound);
    for (const { group, ready } of completion.readies) {
      const replica = node.replicas.get(group)!;
      if (ready.snapshot !== undefined) this.restoreSnapshot(node, group, replica, ready);
      for (const entry of ready.committedEntries) this.apply(node, group, replica, entry);
    }
  }

  private sendAll(from: NodeId, outbound: ReadonlyMap<NodeId, Message[]>): void {
    for (const [to, messages] of outbound) this.sendFrame(from, to, messages);
  }

  private sendFrame(from: NodeId, to: NodeId, messages: readonly Message[]): void {
    if (!this.healed && messages.length > 1 && this.random.chance(this.faults.splitRate)) {
      // The core must not rely on a frame arriving whole: sometimes every message travels alone,
      // with its own delay and its own chance of being lost.
      for (const message of messages) this.sendMessages(from, to, [message]);
      return;
    }
    this.sendMessages(from, to, messages);
  }

  private sendMessages(from: NodeId, to: NodeId, messages: readonly Message[]): void {
    if (this.blockedLinks.has(`${from}>${to}`)) return;
    if (!this.healed && this.random.chance(this.faults.lossRate)) return;
    const copies = !this.healed && this.random.chance(this.faults.duplicateRate) ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      let delay = this.random.int(2, 20);
      if (!this.healed && this.random.chance(this.faults.longDelayRate)) delay += this.random.int(50, 500);
      this.queue.push(this.now + delay, { type: "deliver", from, to, messages });
    }
  }

  // -------------------------------------------------------------------------------------------
  // State machine

  private restoreSnapshot(node: SimNode, group: GroupId, replica: GroupReplica, ready: Ready): void {
    const snapshot = ready.snapshot!;
    this.stats.snapshotsInstalled++;
    this.trace(
      `node ${node.id} g${group}: installed snapshot at ${snapshot.meta.offset} (term ${snapshot.meta.term})`,
    );
    replica.kv = decodeKvSnapshot(snapshot.data);
    replica.applied = snapshot.meta.offset;
    // Writes proposed here and covered by the snapshot: their outcome is no longer observable here.
    for (const offset of [...replica.pendingWrites.keys()]) {
      if (offset <= snapshot.meta.offset) replica.pendingWrites.delete(offset);
    }
    this.releaseReads(replica);
  }

  private apply(node: SimNode, group: GroupId, replica: GroupReplica, entry: Entry): void {
    if (entry.firstOffset !== replica.applied + 1) {
      this.fail(
        `node ${node.id} g${group} applied [${entry.firstOffset}, ${entry.lastOffset}] right after ${replica.applied}: a gap or an overlap`,
      );
    }
    const key = `${group}:${entry.lastOffset}`;
    const earlier = this.appliedRegistry.get(key);
    if (earlier === undefined) {
      this.appliedRegistry.set(key, entry);
    } else if (!sameEntry(earlier, entry)) {
      this.fail(
        `state machine safety: node ${node.id} g${group} applied ${describeEntry(entry)} at ${entry.lastOffset}, another node applied ${describeEntry(earlier)} there`,
      );
    }
    replica.applied = entry.lastOffset;
    if (entry.kind === "data") {
      const { key: register, value } = decodePut(entry.payload!);
      replica.kv.set(register, { value, offset: entry.lastOffset });
      if (!this.writePosition.has(value)) this.writePosition.set(value, entry.lastOffset);
    }
    const write = replica.pendingWrites.get(entry.lastOffset);
    if (write !== undefined) {
      replica.pendingWrites.delete(entry.lastOffset);
      if (write.term === entry.term) {
        write.respondedAt = this.now;
        this.stats.writesAcknowledged++;
        if (write.probe && this.liveAt[group] === undefined) this.liveAt[group] = this.now;
      }
    }
    this.releaseReads(replica);
    this.maybeCompact(node, replica);
  }

  private releaseReads(replica: GroupReplica): void {
    if (replica.waitingReads.length === 0) return;
    const still: Array<{ index: number; read: ReadOperation }> = [];
    for (const waiting of replica.waitingReads) {
      if (waiting.index <= replica.applied) this.completeRead(replica, waiting.read);
      else still.push(waiting);
    }
    replica.waitingReads = still;
  }

  private completeRead(replica: GroupReplica, read: ReadOperation): void {
    this.stats.readsCompleted++;
    const value = replica.kv.get(read.key)?.value ?? null;
    this.history.push({
      kind: "read",
      key: `${read.group}/${read.key}`,
      value,
      invokedAt: read.invokedAt,
      respondedAt: this.now,
      description: `read #${read.context} of g${read.group}/${read.key} on node ${read.node} [${read.invokedAt}, ${this.now}] = ${value}`,
    });
  }

  private maybeCompact(node: SimNode, replica: GroupReplica): void {
    if (replica.log.allEntries().length < 24 || !node.random.chance(0.2)) return;
    const offset = replica.applied;
    if (offset <= replica.log.snapshotMeta().offset) return;
    const data = encodeKvSnapshot(replica.kv);
    replica.log.compact(offset, data);
    replica.pendingLog.push({ type: "compact", offset, data });
    replica.touched = true;
  }

  // -------------------------------------------------------------------------------------------
  // Clients

  private clientOperation(group: GroupId): void {
    const roll = this.random.next();
    if (roll < 0.03) this.changeMembership(group);
    else if (roll < 0.05) this.transferLeadership(group);
    else if (roll < 0.5) this.write(group, false);
    else this.read(group);
  }

  /**
   * Walk the membership around: remove a voter (possibly the leader itself), add it back as a
   * learner, promote it once it has caught up. Voters never drop below a majority of the nodes.
   */
  private changeMembership(group: GroupId): void {
    const node = this.leaderGuess(group);
    if (node === undefined) return;
    const core = node.driver.group(group)!;
    if (!core.isLeader()) return;
    const { voters, learners } = core.membership;
    const outsiders = this.nodeIds.filter((id) => !voters.includes(id) && !learners.includes(id));
    let change: ConfChange;
    if (outsiders.length > 0) change = { type: "addLearner", node: this.random.pick(outsiders) };
    else if (learners.length > 0) change = { type: "promoteLearner", node: this.random.pick(learners) };
    else if (voters.length > Math.floor(this.nodeIds.length / 2) + 1)
      change = { type: "removeNode", node: this.random.pick(voters) };
    else return;
    const result = core.proposeConfChange(change);
    node.driver.touch(group);
    this.trace(
      `client: node ${node.id} g${group} ${change.type} ${change.node}: ${result.ok ? `proposed at ${result.lastOffset}` : result.error}`,
    );
    this.pump(node);
  }

  private transferLeadership(group: GroupId): void {
    const node = this.leaderGuess(group);
    if (node === undefined) return;
    const core = node.driver.group(group)!;
    if (!core.isLeader()) return;
    const target = this.random.pick(core.membership.voters);
    const result = core.transferLeadership(target);
    node.driver.touch(group);
    this.trace(
      `client: node ${node.id} g${group} transfers leadership to ${target}: ${result.ok ? "started" : result.error}`,
    );
    this.pump(node);
  }

  /**
   * Usually the newest leader, but sometimes any node that believes it leads: a deposed leader cut off
   * by a partition keeps accepting writes that must never be acknowledged, and grows the divergent
   * suffixes that later truncations have to get right.
   */
  private leaderGuess(group: GroupId): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    const leaders: SimNode[] = [];
    for (const node of this.nodes) {
      if (!node.up) continue;
      const core = node.driver.group(group)!;
      if (!core.isLeader()) continue;
      leaders.push(node);
      if (core.currentTerm > bestTerm) {
        best = node;
        bestTerm = core.currentTerm;
      }
    }
    if (leaders.length > 1 && this.random.chance(0.5)) return this.random.pick(leaders);
    if (best !== undefined) return best;
    const up = this.nodes.filter((node) => node.up);
    return up.length === 0 ? undefined : this.random.pick(up);
  }

  private write(group: GroupId, probe: boolean): void {
    const node = this.leaderGuess(group);
    if (node === undefined) return;
    const key = this.random.pick(KEYS);
    const value = `v${this.nextValue++}`;
    const core = node.driver.group(group)!;
    const result = core.propose(encodePut(key, value), this.random.int(1, 5));
    node.driver.touch(group);
    if (result.ok) {
      const write: WriteOperation = {
        group,
        key,
        value,
        invokedAt: this.now,
        respondedAt: Number.POSITIVE_INFINITY,
        term: result.term,
        lastOffset: result.lastOffset,
        node: node.id,
        probe,
      };
      this.writes.push(write);
      node.replicas.get(group)!.pendingWrites.set(result.lastOffset, write);
      this.trace(
        `client: node ${node.id} g${group} proposes ${key}=${value} at [${result.firstOffset}, ${result.lastOffset}] term ${result.term}`,
      );
    }
    this.pump(node);
  }

  private read(group: GroupId): void {
    const up = this.nodes.filter((node) => node.up);
    if (up.length === 0) return;
    const node = this.random.pick(up);
    const context = this.nextReadContext++;
    const key = this.random.pick(KEYS);
    node.pendingReads.set(context, { group, key, invokedAt: this.now, node: node.id, context });
    node.driver.group(group)!.readIndex(context);
    node.driver.touch(group);
    this.trace(`client: read #${context} g${group}/${key} on node ${node.id}`);
    this.pump(node);
  }

  // -------------------------------------------------------------------------------------------
  // Faults

  private injectFaults(): void {
    const random = this.random;
    for (const node of this.nodes) {
      if (node.up && random.chance(this.faults.crashRate / this.nodes.length)) {
        this.crash(node);
        this.queue.push(this.now + random.int(5, 60) * TICK, { type: "restart", node: node.id });
      }
      if (node.up && random.chance(this.faults.slowDiskRate / this.nodes.length)) {
        node.slowDisk = !node.slowDisk;
        this.trace(`node ${node.id} disk ${node.slowDisk ? "slow" : "fast again"}`);
      }
      if (random.chance(0.05)) {
        node.tickPeriod = Math.round(TICK * (1 + (random.next() - 0.5) * 0.2));
      }
    }
    if (random.chance(this.faults.partitionRate)) {
      this.blockedLinks.clear();
      const kind = random.int(0, 2);
      if (kind === 0) {
        this.isolate(random.pick(this.nodeIds));
      } else if (kind === 1) {
        const side = new Set(this.nodeIds.filter(() => random.chance(0.5)));
        for (const a of this.nodeIds) {
          for (const b of this.nodeIds) if (side.has(a) !== side.has(b)) this.blockedLinks.add(`${a}>${b}`);
        }
        this.trace(`partition: {${[...side].join(",")}} | rest`);
      } else {
        const from = random.pick(this.nodeIds);
        const to = random.pick(this.nodeIds.filter((id) => id !== from));
        this.blockedLinks.add(`${from}>${to}`);
        this.trace(`partition: one-way ${from} -> ${to} cut`);
      }
    } else if (this.blockedLinks.size > 0 && random.chance(0.3)) {
      this.blockedLinks.clear();
      this.trace("partition healed");
    }
  }

  private isolate(isolated: NodeId): void {
    this.blockedLinks.clear();
    for (const other of this.nodeIds) {
      if (other === isolated) continue;
      this.blockedLinks.add(`${isolated}>${other}`);
      this.blockedLinks.add(`${other}>${isolated}`);
    }
    this.trace(`partition: node ${isolated} isolated`);
  }

  private maybePointedCrash(node: SimNode, within: number): void {
    if (this.healed || !this.random.chance(this.faults.pointedCrashRate)) return;
    this.queue.push(this.now + this.random.int(0, within), {
      type: "crash",
      node: node.id,
      incarnation: node.incarnation,
    });
  }

  private heal(): void {
    this.healed = true;
    this.blockedLinks.clear();
    for (const node of this.nodes) {
      node.slowDisk = false;
      node.tickPeriod = TICK;
      if (!node.up) this.boot(node);
    }
    this.trace("faults stop: network healed, every node up, disks fast");
  }

  // -------------------------------------------------------------------------------------------
  // Checks

  private checkEntries(
    node: SimNode,
    group: GroupId,
    after: number,
    afterTerm: number | undefined,
    entries: readonly Entry[],
  ): void {
    if (afterTerm === undefined) {
      this.fail(`node ${node.id} g${group} appends after ${after}, which is not in its log`);
    }
    let prevOffset = after;
    let prevTerm = afterTerm;
    for (const entry of entries) {
      if (entry.firstOffset !== prevOffset + 1) {
        this.fail(
          `node ${node.id} g${group}: entry [${entry.firstOffset}, ${entry.lastOffset}] does not follow ${prevOffset}`,
        );
      }
      const key = `${group}:${entry.lastOffset}:${entry.term}`;
      const known = this.entryRegistry.get(key);
      if (known === undefined) {
        this.entryRegistry.set(key, { entry, prevOffset, prevTerm });
      } else if (
        !sameEntry(known.entry, entry) ||
        known.prevOffset !== prevOffset ||
        known.prevTerm !== prevTerm
      ) {
        this.fail(
          `log matching: node ${node.id} g${group} holds ${describeEntry(entry)} after ${prevOffset}/${prevTerm}, elsewhere ${describeEntry(known.entry)} follows ${known.prevOffset}/${known.prevTerm}`,
        );
      }
      prevOffset = entry.lastOffset;
      prevTerm = entry.term;
    }
  }

  private checkNewLeader(node: SimNode, group: GroupId, core: RaftCore): void {
    this.stats.elections++;
    const term = core.currentTerm;
    const key = `${group}:${term}`;
    const existing = this.leaderOfTerm.get(key);
    if (existing !== undefined && existing !== node.id) {
      this.fail(`election safety: nodes ${existing} and ${node.id} both lead g${group} in term ${term}`);
    }
    this.leaderOfTerm.set(key, node.id);
    // Leader completeness: everything committed in an earlier term is in the new leader's log.
    for (const [commitTerm, commit] of this.commitsByTerm[group]!) {
      if (commitTerm >= term) continue;
      const snapshotOffset = node.replicas.get(group)!.log.snapshotMeta().offset;
      if (commit.offset <= snapshotOffset) continue;
      const held = core.termAt(commit.offset);
      if (held !== commit.term) {
        this.fail(
          `leader completeness: node ${node.id} leads g${group} in term ${term} without the entry at ${commit.offset} (term ${commit.term}) committed in term ${commitTerm}; it has term ${held} there`,
        );
      }
    }
  }

  private recordCommit(group: GroupId, core: RaftCore, ready: Ready): void {
    const commit = ready.commitIndex;
    if (commit < 0) return;
    const term = core.termAt(commit);
    if (term === undefined) return;
    if (commit > this.stats.maxCommitOffset) this.stats.maxCommitOffset = commit;
    const byTerm = this.commitsByTerm[group]!;
    const known = byTerm.get(core.currentTerm);
    if (known === undefined || known.offset < commit) byTerm.set(core.currentTerm, { offset: commit, term });
  }

  private finalChecks(): void {
    for (let group = 0; group < this.options.groups; group++) {
      const live = this.liveAt[group];
      if (live === undefined) {
        this.fail(
          `liveness: g${group} committed no write in the ${(this.endTime - this.healTime) / TICK} ticks after faults stopped`,
        );
      }
      if (live > this.healTime + LIVENESS_BOUND_TICKS * TICK) {
        this.fail(
          `liveness: g${group} took ${(live - this.healTime) / TICK} ticks after faults stopped to commit a write (bound ${LIVENESS_BOUND_TICKS})`,
        );
      }
      // Nodes removed from the group stop receiving its log; every member must have caught up.
      let newest = this.nodes[0]!.driver.group(group)!;
      for (const node of this.nodes) {
        const core = node.driver.group(group)!;
        if (core.commitIndex > newest.commitIndex) newest = core;
      }
      const { voters, learners } = newest.membership;
      const members = this.nodes.filter((node) => voters.includes(node.id) || learners.includes(node.id));
      const applied = members.map((node) => `node ${node.id}: ${node.replicas.get(group)!.applied}`);
      if (
        members.some((node) => node.replicas.get(group)!.applied !== members[0]!.replicas.get(group)!.applied)
      ) {
        this.fail(
          `convergence: g${group} members applied different prefixes at the end: ${applied.join(", ")}`,
        );
      }
    }
    const operations: RegisterOperation[] = [...this.history];
    for (const write of this.writes) {
      operations.push({
        kind: "write",
        key: `${write.group}/${write.key}`,
        value: write.value,
        invokedAt: write.invokedAt,
        respondedAt: write.respondedAt,
        description: `write ${write.key}=${write.value} of g${write.group} via node ${write.node} [${write.invokedAt}, ${write.respondedAt}]`,
      });
    }
    const problem = checkRegisterHistory(operations, (value) => this.writePosition.get(value));
    if (problem !== undefined) this.fail(`linearizability: ${problem}`);
  }

  private fail(message: string): never {
    throw new SimulationFailure(message);
  }

  /** Messages are kept as objects and only formatted when a trace is printed: tracing stays cheap. */
  private trace(text: string | Message): void {
    const item = { time: this.now, text };
    if (this.options.traceSink !== undefined) this.options.traceSink(formatTraceItem(item));
    this.traceTail.push(item);
    if (this.traceTail.length > TRACE_TAIL * 2) this.traceTail.splice(0, this.traceTail.length - TRACE_TAIL);
  }

  private formattedTail(): string[] {
    return this.traceTail.slice(-TRACE_TAIL).map(formatTraceItem);
  }
}

function formatTraceItem(item: { time: number; text: string | Message }): string {
  const text = typeof item.text === "string" ? item.text : `deliver ${describeMessage(item.text)}`;
  return `[t=${(item.time / TICK).toFixed(2)}] ${text}`;
}

function applyLogOperation(log: MemoryRaftLog, operation: LogOperation): void {
  if (operation.type === "compact") {
    log.compact(operation.offset, operation.data);
    return;
  }
  if (operation.snapshot !== undefined) log.installSnapshot(operation.snapshot);
  if (operation.entries.length > 0) {
    if (log.lastOffset() > operation.after) log.truncateAfter(operation.after);
    log.append(operation.entries);
  }
}

function sameEntry(a: Entry, b: Entry): boolean {
  if (a === b) return true;
  if (
    a.firstOffset !== b.firstOffset ||
    a.lastOffset !== b.lastOffset ||
    a.term !== b.term ||
    a.kind !== b.kind
  ) {
    return false;
  }
  if (a.payload === b.payload) return true;
  if (a.payload === undefined || b.payload === undefined || a.payload.byteLength !== b.payload.byteLength)
    return false;
  return a.payload.every((byte, index) => b.payload![index] === byte);
}

function describeEntry(entry: Entry): string {
  const payload = entry.payload === undefined ? "" : ` ${new TextDecoder().decode(entry.payload)}`;
  return `${entry.kind}[${entry.firstOffset}, ${entry.lastOffset}] term ${entry.term}${payload}`;
}

/** Throws a RangeError naming the bad option and its allowed values. */
export function validateSimulationOptions(options: SimulationOptions): void {
  if (!Number.isInteger(options.seed) || options.seed < 0) {
    throw new RangeError(`seed must be a non-negative integer (got ${options.seed})`);
  }
  if (options.nodes !== 3 && options.nodes !== 5)
    throw new RangeError(`--nodes must be 3 or 5 (got ${options.nodes})`);
  if (!Number.isInteger(options.groups) || options.groups < 1 || options.groups > 100) {
    throw new RangeError(`--groups must be an integer from 1 to 100 (got ${options.groups})`);
  }
  if (!Number.isInteger(options.ticks) || options.ticks < 600) {
    throw new RangeError(
      `--ticks must be an integer of at least 600, so faults and a calm period both fit (got ${options.ticks})`,
    );
  }
}
