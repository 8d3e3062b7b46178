import { ErrorCode } from "@raftka/protocol";

/** KIP-227 epochs: 0 opens a session, -1 (final) closes one or asks for a sessionless fetch. */
export const INITIAL_EPOCH = 0;
export const FINAL_EPOCH = -1;
export const NO_SESSION = 0;

/** One partition as a fetch asks for it, and what the session last told the client about it. */
export interface SessionPartition {
  readonly topic: string;
  readonly topicId: string;
  readonly partition: number;
  fetchOffset: number;
  maxBytes: number;
  currentLeaderEpoch: number;
  /** Last values sent to the client; an incremental response includes a partition only when these change. */
  lastHighWatermark: number;
  lastLogStartOffset: number;
}

export interface FetchSession {
  readonly id: number;
  /** The epoch the next incremental request must carry. */
  epoch: number;
  readonly partitions: Map<string, SessionPartition>;
  lastUsed: number;
}

export type PartitionRequest = Omit<SessionPartition, "lastHighWatermark" | "lastLogStartOffset">;

/** What a fetch request means for sessions, decided before any partition is read. */
export type FetchContext =
  /** Answer every requested partition; `session` is set when a new session was opened for them. */
  | { readonly kind: "full"; readonly partitions: SessionPartition[]; readonly session?: FetchSession }
  /** Read every session partition, answer only those that changed. */
  | { readonly kind: "incremental"; readonly session: FetchSession; readonly partitions: SessionPartition[] }
  /** Answer the top-level error and nothing else. */
  | { readonly kind: "error"; readonly errorCode: number };

export const partitionKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

export interface FetchSessionCacheOptions {
  /** Kafka's max.incremental.fetch.session.cache.slots. */
  readonly maxSessions?: number;
  readonly now: () => number;
  /** Session ids are random positive int32s; injectable for tests. */
  readonly randomId?: () => number;
}

/**
 * Incremental fetch sessions (KIP-227): a client that opens a session afterwards sends only partitions
 * whose fetch position changed, and gets back only partitions with news. kafkajs and librdkafka never open
 * one (session 0, epoch -1); Java clients do. Least recently used sessions are evicted when the cache is full.
 */
export class FetchSessionCache {
  private readonly sessions = new Map<number, FetchSession>();
  private readonly maxSessions: number;
  private readonly randomId: () => number;

  constructor(private readonly options: FetchSessionCacheOptions) {
    this.maxSessions = options.maxSessions ?? 1000;
    this.randomId = options.randomId ?? (() => 1 + Math.floor(Math.random() * 0x7ffffffe));
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * Kafka's FetchManager.newContext: decides from the session id and epoch whether this fetch is
   * sessionless, opens, continues or closes a session. `forgotten` are keys (`keyOf`) from
   * forgottenTopicsData.
   */
  newContext(
    sessionId: number,
    epoch: number,
    requested: readonly PartitionRequest[],
    forgotten: readonly string[],
    keyOf: (partition: PartitionRequest) => string,
  ): FetchContext {
    const fresh = (request: PartitionRequest): SessionPartition => ({
      ...request,
      lastHighWatermark: -1,
      lastLogStartOffset: -1,
    });
    if (epoch === INITIAL_EPOCH || epoch === FINAL_EPOCH) {
      // A full request closes whatever session it names.
      if (sessionId !== NO_SESSION) this.sessions.delete(sessionId);
      const partitions = requested.map(fresh);
      if (epoch === FINAL_EPOCH) return { kind: "full", partitions };
      const session = this.open(partitions, keyOf);
      return session ? { kind: "full", partitions, session } : { kind: "full", partitions };
    }
    const session = sessionId === NO_SESSION ? undefined : this.sessions.get(sessionId);
    if (!session) return { kind: "error", errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND };
    if (session.epoch !== epoch) return { kind: "error", errorCode: ErrorCode.INVALID_FETCH_SESSION_EPOCH };
    for (const key of forgotten) session.partitions.delete(key);
    for (const request of requested) {
      const key = keyOf(request);
      const existing = session.partitions.get(key);
      if (existing) {
        existing.fetchOffset = request.fetchOffset;
        existing.maxBytes = request.maxBytes;
        existing.currentLeaderEpoch = request.currentLeaderEpoch;
      } else session.partitions.set(key, fresh(request));
    }
    session.epoch = nextEpoch(session.epoch);
    session.lastUsed = this.options.now();
    // Re-inserting keeps the map in least-recently-used order.
    this.sessions.delete(session.id);
    this.sessions.set(session.id, session);
    return { kind: "incremental", session, partitions: [...session.partitions.values()] };
  }

  private open(
    partitions: SessionPartition[],
    keyOf: (partition: PartitionRequest) => string,
  ): FetchSession | undefined {
    if (this.maxSessions <= 0) return undefined;
    while (this.sessions.size >= this.maxSessions) {
      const oldest = this.sessions.keys().next().value as number;
      this.sessions.delete(oldest);
    }
    let id = this.randomId();
    while (id === NO_SESSION || this.sessions.has(id)) id = this.randomId();
    const session: FetchSession = {
      id,
      epoch: 1,
      partitions: new Map(partitions.map((partition) => [keyOf(partition), partition])),
      lastUsed: this.options.now(),
    };
    this.sessions.set(id, session);
    return session;
  }
}

/** Session epochs wrap from int32 max to 1 (0 and -1 are reserved). */
function nextEpoch(epoch: number): number {
  return epoch >= 0x7fffffff ? 1 : epoch + 1;
}
