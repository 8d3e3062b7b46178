import { ErrorCode } from "@raftka/protocol";

/**
 * Producer id allocation for InitProducerId. Ids come from blocks reserved durably in the metadata store
 * before any id of the block is handed out (like Kafka's AllocateProducerIds), so ids are never reused
 * across restarts: after a crash the unused rest of the last block is simply skipped.
 */

/** Kafka's block size (ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE). */
export const PRODUCER_ID_BLOCK_SIZE = 1000;
/** Largest epoch; an epoch bump past it needs a new producer id (Kafka's Short.MaxValue - 1 rule). */
export const MAX_PRODUCER_EPOCH = 32_766;

/** Durable "next free block" counter, e.g. a key in the broker's metadata store. */
export interface ProducerIdBlockStore {
  /** Atomically and durably reserves the next `size` ids; resolves with the first. */
  reserveBlock(size: number): Promise<bigint>;
}

export class ProducerIdAllocator {
  private next = 0n;
  private end = 0n;
  private reserving: Promise<void> | undefined;

  constructor(
    private readonly store: ProducerIdBlockStore,
    private readonly blockSize: number = PRODUCER_ID_BLOCK_SIZE,
  ) {}

  async allocate(): Promise<bigint> {
    while (this.next >= this.end) {
      // One reservation at a time; concurrent callers wait for it and then take ids from the new block.
      this.reserving ??= this.store.reserveBlock(this.blockSize).then(
        (first) => {
          this.next = first;
          this.end = first + BigInt(this.blockSize);
          this.reserving = undefined;
        },
        (error: unknown) => {
          this.reserving = undefined;
          throw error;
        },
      );
      await this.reserving;
    }
    return this.next++;
  }
}

export interface InitProducerIdInput {
  readonly transactionalId: string | null;
  readonly transactionTimeoutMs: number;
  /** -1 unless the client asks to bump the epoch of an id it has (v3+, KIP-360). */
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly apiVersion: number;
}

export type InitProducerIdDecision =
  | { readonly kind: "allocate" }
  | { readonly kind: "answer"; readonly producerId: bigint; readonly producerEpoch: number }
  | { readonly kind: "error"; readonly errorCode: number; readonly message: string };

/**
 * InitProducerId for idempotent producers. A fresh producer gets a new id at epoch 0. A producer that
 * passes its current id and epoch (KIP-360, after a timed-out batch left its sequence state unknown) gets
 * the same id with the epoch bumped, which fences its own older in-flight batches; a retry of that bump
 * gets the same answer, and an older epoch is fenced (PRODUCER_FENCED from v4, INVALID_PRODUCER_EPOCH
 * before). Epochs are remembered per id in memory for `producer.id.expiration.ms`; after a restart an
 * unknown id is simply bumped.
 */
export class ProducerEpochs {
  private readonly issued = new Map<bigint, { epoch: number; previousEpoch: number; at: number }>();

  constructor(private expirationMs: number) {}

  updateExpiration(expirationMs: number): void {
    this.expirationMs = expirationMs;
  }

  decide(request: InitProducerIdInput, now: number): InitProducerIdDecision {
    if (request.transactionalId !== null) {
      return {
        kind: "error",
        errorCode: ErrorCode.UNSUPPORTED_VERSION,
        message: `transactional id "${request.transactionalId}" refused: this broker has no transaction coordinator yet; drop transactional.id and use an idempotent producer`,
      };
    }
    if (request.producerId < 0n !== request.producerEpoch < 0) {
      return {
        kind: "error",
        errorCode: ErrorCode.INVALID_REQUEST,
        message: `producer id ${request.producerId} and epoch ${request.producerEpoch} must be both set or both -1`,
      };
    }
    if (request.producerId < 0n) return { kind: "allocate" };
    const known = this.issued.get(request.producerId);
    if (known !== undefined && now - known.at < this.expirationMs) {
      if (request.producerEpoch === known.previousEpoch) {
        // The client did not get the answer to its bump and retries it.
        return { kind: "answer", producerId: request.producerId, producerEpoch: known.epoch };
      }
      if (request.producerEpoch !== known.epoch) {
        return {
          kind: "error",
          errorCode: request.apiVersion >= 4 ? ErrorCode.PRODUCER_FENCED : ErrorCode.INVALID_PRODUCER_EPOCH,
          message: `producer ${request.producerId} asked to bump epoch ${request.producerEpoch}, but epoch ${known.epoch} was issued since: a newer instance has taken over`,
        };
      }
    }
    if (request.producerEpoch >= MAX_PRODUCER_EPOCH) return { kind: "allocate" };
    const epoch = request.producerEpoch + 1;
    this.remember(request.producerId, epoch, request.producerEpoch, now);
    return { kind: "answer", producerId: request.producerId, producerEpoch: epoch };
  }

  /** Records an id just allocated (epoch 0), so a later bump from it is judged. */
  remember(producerId: bigint, epoch: number, previousEpoch: number, now: number): void {
    this.issued.set(producerId, { epoch, previousEpoch, at: now });
  }

  removeExpired(now: number): void {
    for (const [producerId, entry] of this.issued) {
      if (now - entry.at >= this.expirationMs) this.issued.delete(producerId);
    }
  }
}
