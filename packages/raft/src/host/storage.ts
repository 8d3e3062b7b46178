import type { RaftLogReader } from "../core/log.js";
import { MemoryRaftLog } from "../core/memory-log.js";
import type { ClusterConfig, GroupId, HardState, Ready } from "../core/types.js";

/**
 * A group's durable log as the node host uses it: the core's synchronous read interface plus ordered
 * writes and an fsync. `write` must take effect on the read side at once (the core may read what it
 * just wrote before it is durable); `sync` makes every write that has landed durable.
 */
export interface RaftLogStorage extends RaftLogReader {
  /** Install `ready.snapshot`, truncate after `ready.entriesAfter`, append `ready.entries` — in call order. */
  write(ready: Ready): Promise<void>;
  /**
   * Resolves once every write that completed before the call is durable (many logs share one fsync
   * round). Writes still in flight need not be covered: the host awaits the writes a round covers.
   */
  sync(options?: SyncOptions): Promise<void>;
  /** Set by the host: called when a load that `entries()` or `snapshot()` started has finished. */
  onLoaded: (() => void) | undefined;
  /** Drop entries up to `offset` (committed and applied) behind a snapshot holding `data`. */
  compact(offset: number, data: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface SyncOptions {
  /**
   * Something waits on this sync now (acks=all, Raft's own messages): it need not wait for a group
   * commit round of other logs already running. Without it the sync may join the next round.
   */
  urgent?: boolean;
}

/** Term, vote and commit of every group on a node: small, written often, read once at startup. */
export interface HardStateStore {
  load(group: GroupId): HardState | undefined;
  /** One durable write for many groups; resolves when it is fsynced. */
  saveMany(states: ReadonlyMap<GroupId, HardState>, options?: SyncOptions): Promise<void>;
  remove(group: GroupId): Promise<void>;
}

/** A log kept in memory: tests, simulations, and groups that may lose their state on restart. */
export class MemoryLogStorage extends MemoryRaftLog implements RaftLogStorage {
  onLoaded: (() => void) | undefined;
  /** Counts fsync rounds, so tests can see group commit at work. */
  syncs = 0;
  /** Of those, the urgent ones (something waited on them). */
  urgentSyncs = 0;

  constructor(config: ClusterConfig) {
    super(config);
  }

  async write(ready: Ready): Promise<void> {
    this.applyReady(ready);
  }

  async sync(options?: SyncOptions): Promise<void> {
    this.syncs++;
    if (options?.urgent === true) this.urgentSyncs++;
  }

  override async compact(offset: number, data: Uint8Array): Promise<void> {
    super.compact(offset, data);
  }

  async close(): Promise<void> {}
}

export class MemoryHardStateStore implements HardStateStore {
  private readonly states = new Map<GroupId, HardState>();
  writes = 0;
  /** Of those, the urgent ones (a vote or a new term, which messages wait on). */
  urgentWrites = 0;

  load(group: GroupId): HardState | undefined {
    return this.states.get(group);
  }

  async saveMany(states: ReadonlyMap<GroupId, HardState>, options?: SyncOptions): Promise<void> {
    this.writes++;
    if (options?.urgent === true) this.urgentWrites++;
    for (const [group, state] of states) this.states.set(group, state);
  }

  async remove(group: GroupId): Promise<void> {
    this.states.delete(group);
  }
}
