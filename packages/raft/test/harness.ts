import {
  type ClusterConfig,
  type Entry,
  type HardState,
  type Leadership,
  MemoryRaftLog,
  type Message,
  makeConfig,
  NO_NODE,
  type NodeId,
  RaftCore,
  type RaftOptions,
  type ReadResult,
  SeededRandom,
} from "../src/index.js";

export interface TestNode {
  readonly id: NodeId;
  core: RaftCore;
  log: MemoryRaftLog;
  hardState: HardState;
  readonly applied: Entry[];
  readonly reads: ReadResult[];
  readonly leadership: Leadership[];
  /** Messages this node sent that had to wait for durability (for gating assertions). */
  readonly sentAfterPersist: Message[];
  readonly sentNow: Message[];
}

export type TestOptions = Partial<Omit<RaftOptions, "id" | "group" | "random">>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function text(payload: Uint8Array | undefined): string {
  return payload === undefined ? "" : decoder.decode(payload);
}

/**
 * Real cores with in-memory logs that are durable as soon as a ready is handled, wired through an
 * explicit in-flight message list the test controls: deliver everything, drop by predicate, cut links.
 */
export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  inFlight: Message[] = [];
  private readonly cut = new Set<string>();
  private readonly random: SeededRandom;

  constructor(
    ids: readonly NodeId[],
    private readonly options: TestOptions = {},
    config: ClusterConfig = makeConfig(ids),
    seed = 1,
  ) {
    this.random = new SeededRandom(seed);
    for (const id of ids) this.add(id, new MemoryRaftLog(config), { term: 0, vote: NO_NODE, commit: -1 });
  }

  /** Add (or replace) a node with a given log and hard state. */
  add(id: NodeId, log: MemoryRaftLog, hardState: HardState, extra: TestOptions = {}): TestNode {
    const node: TestNode = {
      id,
      core: this.makeCore(id, log, hardState, extra),
      log,
      hardState,
      applied: [],
      reads: [],
      leadership: [],
      sentAfterPersist: [],
      sentNow: [],
    };
    this.nodes.set(id, node);
    return node;
  }

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id} in this test cluster`);
    return node;
  }

  core(id: NodeId): RaftCore {
    return this.node(id).core;
  }

  /** Restart from what is on "disk" (everything handled by flush is durable here). */
  restart(id: NodeId, extra: TestOptions = {}): void {
    const node = this.node(id);
    node.core = this.makeCore(id, node.log, node.hardState, {
      ...extra,
      applied: node.log.snapshotMeta().offset,
    });
    this.inFlight = this.inFlight.filter((message) => message.to !== id);
  }

  /** Handle every ready of one node: persist, queue its messages, apply, advance. */
  flush(id: NodeId): void {
    const node = this.node(id);
    for (let round = 0; round < 100 && node.core.hasReady(); round++) {
      const ready = node.core.ready();
      node.log.applyReady(ready);
      if (ready.hardState !== undefined) node.hardState = ready.hardState;
      if (ready.leadership !== undefined) node.leadership.push(ready.leadership);
      node.reads.push(...ready.readResults);
      node.sentNow.push(...ready.messages);
      node.sentAfterPersist.push(...ready.messagesAfterPersist);
      this.inFlight.push(...ready.messages, ...ready.messagesAfterPersist);
      node.applied.push(...ready.committedEntries);
      node.core.advance(ready);
    }
  }

  flushAll(): void {
    for (const id of this.nodes.keys()) this.flush(id);
  }

  /** Deliver messages until the network is quiet; `drop` removes individual messages. */
  deliverAll(drop: (message: Message) => boolean = () => false, maxRounds = 200): number {
    let delivered = 0;
    for (let round = 0; round < maxRounds; round++) {
      this.flushAll();
      if (this.inFlight.length === 0) return delivered;
      const batch = this.inFlight;
      this.inFlight = [];
      for (const message of batch) {
        if (this.cut.has(`${message.from}>${message.to}`) || drop(message)) continue;
        const target = this.nodes.get(message.to);
        if (target === undefined) continue;
        target.core.step(message);
        delivered++;
      }
    }
    throw new Error(`the network did not go quiet within ${maxRounds} rounds`);
  }

  /** Deliver only the messages currently in flight (one hop), after flushing. */
  deliverOnce(drop: (message: Message) => boolean = () => false): Message[] {
    this.flushAll();
    const batch = this.inFlight;
    this.inFlight = [];
    const delivered: Message[] = [];
    for (const message of batch) {
      if (this.cut.has(`${message.from}>${message.to}`) || drop(message)) continue;
      const target = this.nodes.get(message.to);
      if (target === undefined) continue;
      target.core.step(message);
      delivered.push(message);
    }
    return delivered;
  }

  tick(id: NodeId, times = 1): void {
    for (let count = 0; count < times; count++) this.node(id).core.tick();
  }

  tickAll(times = 1): void {
    for (let count = 0; count < times; count++) {
      for (const node of this.nodes.values()) node.core.tick();
    }
  }

  /** Tick `id` alone until it starts an election, then let the election play out. */
  elect(id: NodeId): void {
    const core = this.core(id);
    // A first attempt may only teach the candidate the current term (a rejected pre-vote); retry.
    for (let attempt = 0; attempt < 3 && !core.isLeader(); attempt++) {
      for (let tick = 0; tick < 100 && core.currentRole === "follower"; tick++) core.tick();
      this.deliverAll();
    }
    if (!core.isLeader())
      throw new Error(`node ${id} did not win its election: ${JSON.stringify(core.status())}`);
  }

  /** Run everyone's clocks and the network for `ticks` ticks. */
  run(ticks: number): void {
    for (let tick = 0; tick < ticks; tick++) {
      this.tickAll();
      this.deliverAll();
    }
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  propose(id: NodeId, value: string, records = 1) {
    const result = this.core(id).propose(encoder.encode(value), records);
    return result;
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((node) => node.core.isLeader()).map((node) => node.id);
  }

  private makeCore(id: NodeId, log: MemoryRaftLog, hardState: HardState, extra: TestOptions): RaftCore {
    const random = this.random.fork(id);
    return new RaftCore(
      {
        electionTimeoutTicks: 10,
        heartbeatIntervalTicks: 2,
        ...this.options,
        ...extra,
        id,
        group: 0,
        random: () => random.next(),
      },
      log,
      hardState,
    );
  }
}

/**
 * A log built from a list of entry terms, the way Raft papers draw them. Each entry covers a width of
 * offsets derived from its (index, term), so identical histories have identical offsets while
 * divergent ones do not line up: positions are never dense.
 */
export function logFromTerms(config: ClusterConfig, terms: readonly number[], label = ""): MemoryRaftLog {
  const log = new MemoryRaftLog(config);
  let next = 0;
  terms.forEach((term, index) => {
    const width = ((index * 7 + term * 3) % 4) + 1;
    log.append([
      {
        firstOffset: next,
        lastOffset: next + width - 1,
        term,
        kind: "data",
        payload: encoder.encode(`${label}i${index + 1}t${term}`),
        config: undefined,
      },
    ]);
    next += width;
  });
  return log;
}

/** (lastOffset, term) pairs: two logs are equal as Raft sees them when these are. */
export function positions(log: MemoryRaftLog): string {
  return log
    .allEntries()
    .map((entry) => `${entry.firstOffset}-${entry.lastOffset}@${entry.term}`)
    .join(" ");
}
