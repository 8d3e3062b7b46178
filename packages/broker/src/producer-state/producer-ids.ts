import { ErrorCode } from "@raftka/protocol";

/**
 * Producer id allocation for InitProducerId. Ids come from blocks reserved durably in the metadata store
 * before any id of the block is handed out (like Kafka's AllocateProducerIds), so ids are never reused
 * across restarts: after a crash the unused rest of the last block is simply skipped.
 */

/** Kafka's block size (ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE). */
export const PRODUCER_ID_BLOCK_SIZE = 1000;

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
  /** -1 unless the client names the id it has (v3+, KIP-360); both or neither must be set. */
  readonly producerId: bigint;
  readonly producerEpoch: number;
}

export type InitProducerIdDecision =
  | { readonly kind: "allocate" }
  | { readonly kind: "error"; readonly errorCode: number; readonly message: string };

/**
 * InitProducerId for idempotent producers always gets a new id at epoch 0, as Kafka's
 * TransactionCoordinator.handleInitProducerId does for a null transactional id. The KIP-360 id and epoch
 * a client may pass are only checked for shape: bumping an id the request names would let any client
 * fence another producer's id, or take an id not yet handed out that a later allocation then repeats.
 * (An idempotent client bumps its own epoch locally; only transactional producers have the coordinator
 * bump it.)
 */
export function decideInitProducerId(request: InitProducerIdInput): InitProducerIdDecision {
  if (request.transactionalId !== null) {
    return {
      kind: "error",
      errorCode: ErrorCode.UNSUPPORTED_VERSION,
      message: `transactional id "${request.transactionalId}" refused: this broker has no transaction coordinator yet; drop transactional.id and use an idempotent producer`,
    };
  }
  // Kafka's KafkaApis check: exactly -1 means "not set".
  if ((request.producerId === -1n) !== (request.producerEpoch === -1)) {
    return {
      kind: "error",
      errorCode: ErrorCode.INVALID_REQUEST,
      message: `producer id ${request.producerId} and epoch ${request.producerEpoch} must be both set or both -1`,
    };
  }
  return { kind: "allocate" };
}
