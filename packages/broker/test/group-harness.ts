import { ConsumerProtocolSubscriptionCodec, ErrorCode, encodeVersionedData } from "@raftka/protocol";
import type { JoinGroupResult, MemberProtocol, SyncGroupResult } from "../src/group/classic-group.js";
import {
  defaultGroupCoordinatorConfig,
  type GroupCoordinatorConfig,
  GroupCoordinatorCore,
  type GroupEvent,
  type JoinGroupInput,
  type OffsetCommitEntry,
  type OffsetsLogWrite,
  type PartitionError,
} from "../src/group/group-coordinator-core.js";
import {
  decodeOffsetsLogRecord,
  encodeOffsetsLogKey,
  encodeOffsetsLogValue,
  type OffsetsLogRecord,
} from "../src/group/offsets-log-records.js";

/** Virtual time: timers fire in deadline order when the test advances the clock. */
export class VirtualTimers {
  now = 1_000_000;
  private readonly deadlines = new Map<string, number>();
  fire: (id: string, now: number) => void = () => {};

  set(id: string, at: number): void {
    this.deadlines.set(id, at);
  }

  cancel(id: string): void {
    this.deadlines.delete(id);
  }

  has(id: string): boolean {
    return this.deadlines.has(id);
  }

  /** Moves the clock forward by `ms`, firing every timer that comes due on the way, in order. */
  advance(ms: number): void {
    const target = this.now + ms;
    for (;;) {
      let nextId: string | undefined;
      let nextAt = Number.POSITIVE_INFINITY;
      for (const [id, at] of this.deadlines) {
        if (at <= target && at < nextAt) {
          nextAt = at;
          nextId = id;
        }
      }
      if (nextId === undefined) break;
      this.deadlines.delete(nextId);
      this.now = Math.max(this.now, nextAt);
      this.fire(nextId, this.now);
    }
    this.now = target;
  }
}

/** The offsets log as the core sees it: writes wait until the test completes them. */
export class PendingWrites {
  readonly pending: OffsetsLogWrite[] = [];
  /** Every record ever completed successfully, in log order, as they would be read back. */
  readonly log: { partition: number; record: OffsetsLogRecord }[] = [];

  constructor(private readonly timers: VirtualTimers) {}

  readonly persist = (write: OffsetsLogWrite): void => {
    this.pending.push(write);
  };

  completeAll(errorCode: number = ErrorCode.NONE): number {
    let count = 0;
    while (this.pending.length > 0) {
      const write = this.pending.shift()!;
      if (errorCode === ErrorCode.NONE) {
        for (const record of write.records) {
          // Through the real byte codecs, exactly as the log would hold them.
          const decoded = decodeOffsetsLogRecord(encodeOffsetsLogKey(record), encodeOffsetsLogValue(record));
          this.log.push({ partition: write.partition, record: decoded });
        }
      }
      write.complete(errorCode, this.timers.now);
      count++;
    }
    return count;
  }
}

export interface Harness {
  readonly core: GroupCoordinatorCore;
  readonly timers: VirtualTimers;
  readonly writes: PendingWrites;
  readonly events: GroupEvent[];
}

export function makeCore(
  config: Partial<GroupCoordinatorConfig> = {},
  options: { loadAll?: boolean; timers?: VirtualTimers; writes?: PendingWrites } = {},
): Harness {
  const timers = options.timers ?? new VirtualTimers();
  const writes = options.writes ?? new PendingWrites(timers);
  const events: GroupEvent[] = [];
  let uuid = 0;
  const fullConfig: GroupCoordinatorConfig = {
    ...defaultGroupCoordinatorConfig,
    offsetsTopicPartitions: 4,
    groupInitialRebalanceDelayMs: 0,
    ...config,
  };
  const core = new GroupCoordinatorCore({
    config: fullConfig,
    timers,
    persist: writes.persist,
    randomUuid: () => `uuid${++uuid}`,
    onEvent: (event) => events.push(event),
  });
  timers.fire = (id, now) => core.fireTimer(id, now);
  core.start(timers.now);
  if (options.loadAll !== false) {
    for (let partition = 0; partition < fullConfig.offsetsTopicPartitions; partition++) {
      core.beginLoading(partition);
      core.finishLoading(partition, timers.now);
    }
  }
  return { core, timers, writes, events };
}

export function subscription(topics: string[]): Buffer {
  return encodeVersionedData(ConsumerProtocolSubscriptionCodec, 0, { topics, userData: null });
}

export function consumerProtocols(topics: string[], names = ["range", "roundrobin"]): MemberProtocol[] {
  return names.map((name) => ({ name, metadata: subscription(topics) }));
}

/** Collects what a parked request is eventually answered with. */
export class Reply<T> {
  private value: T | undefined;
  private count = 0;

  readonly callback = (value: T): void => {
    this.count++;
    this.value = value;
  };

  get answered(): boolean {
    return this.count > 0;
  }

  get times(): number {
    return this.count;
  }

  get result(): T {
    if (this.value === undefined) throw new Error("the request has not been answered yet");
    return this.value;
  }
}

export function joinInput(overrides: Partial<JoinGroupInput> = {}): JoinGroupInput {
  return {
    groupId: "g",
    memberId: "",
    groupInstanceId: null,
    requireKnownMemberId: false,
    supportSkippingAssignment: false,
    clientId: "client",
    clientHost: "/127.0.0.1",
    rebalanceTimeoutMs: 60_000,
    sessionTimeoutMs: 10_000,
    protocolType: "consumer",
    protocols: consumerProtocols(["orders"]),
    reason: null,
    ...overrides,
  };
}

export function join(h: Harness, overrides: Partial<JoinGroupInput> = {}): Reply<JoinGroupResult> {
  const reply = new Reply<JoinGroupResult>();
  h.core.joinGroup(joinInput(overrides), h.timers.now, reply.callback);
  return reply;
}

export function sync(
  h: Harness,
  memberId: string,
  generationId: number,
  assignments: Record<string, string> = {},
  extra: { groupId?: string; groupInstanceId?: string | null } = {},
): Reply<SyncGroupResult> {
  const reply = new Reply<SyncGroupResult>();
  h.core.syncGroup(
    {
      groupId: extra.groupId ?? "g",
      generationId,
      memberId,
      groupInstanceId: extra.groupInstanceId ?? null,
      protocolType: null,
      protocolName: null,
      assignments: new Map(Object.entries(assignments).map(([id, text]) => [id, Buffer.from(text)])),
    },
    h.timers.now,
    reply.callback,
  );
  return reply;
}

export function heartbeat(
  h: Harness,
  memberId: string,
  generationId: number,
  extra: { groupId?: string; groupInstanceId?: string | null } = {},
): number {
  return h.core.heartbeat(
    { groupId: extra.groupId ?? "g", memberId, generationId, groupInstanceId: extra.groupInstanceId ?? null },
    h.timers.now,
  );
}

export function commit(
  h: Harness,
  request: {
    groupId?: string;
    generationId?: number;
    memberId?: string;
    groupInstanceId?: string | null;
    retentionTimeMs?: number;
    offsets: (Partial<OffsetCommitEntry> & { topic: string; partition: number; offset: bigint })[];
  },
): Reply<PartitionError[]> {
  const reply = new Reply<PartitionError[]>();
  h.core.commitOffsets(
    {
      groupId: request.groupId ?? "g",
      generationId: request.generationId ?? -1,
      memberId: request.memberId ?? "",
      groupInstanceId: request.groupInstanceId ?? null,
      retentionTimeMs: request.retentionTimeMs ?? -1,
      offsets: request.offsets.map((entry) => ({
        leaderEpoch: -1,
        metadata: null,
        commitTimestamp: -1,
        ...entry,
      })),
    },
    h.timers.now,
    reply.callback,
  );
  return reply;
}

/**
 * Brings a group of dynamic members (joined with the KIP-394 two-step) to Stable: every member joined,
 * the leader's assignment stored and handed out. Returns member ids in join order and the generation.
 */
export function stableGroup(
  h: Harness,
  clientIds: string[],
  options: { groupId?: string; topics?: string[] } = {},
): { memberIds: string[]; leader: string; generationId: number } {
  const groupId = options.groupId ?? "g";
  const topics = options.topics ?? ["orders"];
  const replies = clientIds.map((clientId) => {
    const first = join(h, {
      groupId,
      clientId,
      requireKnownMemberId: true,
      protocols: consumerProtocols(topics),
    });
    if (first.result.errorCode !== ErrorCode.MEMBER_ID_REQUIRED) {
      throw new Error(`expected MEMBER_ID_REQUIRED, got ${first.result.errorCode}`);
    }
    return join(h, {
      groupId,
      clientId,
      memberId: first.result.memberId,
      requireKnownMemberId: true,
      protocols: consumerProtocols(topics),
    });
  });
  // The initial delay (0 here) fires and, since members arrived during it, extends once, then completes.
  h.timers.advance(0);
  const results = replies.map((reply) => reply.result);
  const generationId = results[0]!.generationId;
  const leader = results[0]!.leader;
  const assignments = Object.fromEntries(
    results.map((result) => [result.memberId, `assignment-of-${result.memberId}`]),
  );
  const syncs = results.map((result) =>
    sync(h, result.memberId, generationId, result.memberId === leader ? assignments : {}, { groupId }),
  );
  h.writes.completeAll();
  for (const reply of syncs) {
    if (reply.result.errorCode !== ErrorCode.NONE)
      throw new Error(`sync failed with ${reply.result.errorCode}`);
  }
  return { memberIds: results.map((result) => result.memberId), leader, generationId };
}
