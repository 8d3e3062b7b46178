import { ErrorCode } from "@raftka/protocol";
import { describe, expect, it } from "vitest";
import {
  decideInitProducerId,
  ProducerIdAllocator,
  type ProducerIdBlockStore,
} from "../src/producer-state/producer-ids.js";
import {
  incrementSequence,
  type ProducerBatchHeader,
  ProducerStateManager,
} from "../src/producer-state/producer-state.js";
import {
  decodeProducerSnapshot,
  encodeProducerSnapshot,
  ProducerSnapshotError,
} from "../src/producer-state/snapshot-format.js";

const DAY = 86_400_000;

function batch(
  producerId: bigint,
  producerEpoch: number,
  baseSequence: number,
  records = 1,
): ProducerBatchHeader {
  return { producerId, producerEpoch, baseSequence, lastOffsetDelta: records - 1, isTransactional: false };
}

/** A partition log in miniature: offsets assigned in append order, producer state kept alongside. */
class Partition {
  readonly state = new ProducerStateManager({ producerIdExpirationMs: DAY });
  logEnd = 0;
  readonly log: { header: ProducerBatchHeader; offset: number; now: number }[] = [];

  produce(header: ProducerBatchHeader, now = 0) {
    const check = this.state.checkAppend(header);
    if (check.kind === "append" || check.kind === "not-idempotent") {
      const offset = this.logEnd;
      this.logEnd += header.lastOffsetDelta + 1;
      this.log.push({ header, offset, now });
      this.state.recordAppend(header, offset, now);
      return { errorCode: ErrorCode.NONE, baseOffset: offset };
    }
    if (check.kind === "duplicate")
      return { errorCode: ErrorCode.NONE, baseOffset: check.batch.firstOffset! };
    return { errorCode: check.errorCode, baseOffset: -1, message: check.message };
  }
}

describe("producer sequence checks", () => {
  it("appends batches in sequence and answers a retried batch with its original offset, not a new one", () => {
    const partition = new Partition();
    expect(partition.produce(batch(7n, 0, 0, 3))).toMatchObject({ errorCode: 0, baseOffset: 0 });
    expect(partition.produce(batch(7n, 0, 3, 2))).toMatchObject({ errorCode: 0, baseOffset: 3 });
    expect(partition.produce(batch(7n, 0, 5, 1))).toMatchObject({ errorCode: 0, baseOffset: 5 });
    // The connection dropped before the answer: the client sends the second batch again.
    expect(partition.produce(batch(7n, 0, 3, 2))).toMatchObject({ errorCode: 0, baseOffset: 3 });
    expect(partition.log).toHaveLength(3);
  });

  it("recognises retries of any of the last five batches, and only those", () => {
    const partition = new Partition();
    for (let sequence = 0; sequence < 7; sequence++) partition.produce(batch(1n, 0, sequence));
    for (let sequence = 2; sequence < 7; sequence++) {
      expect(partition.produce(batch(1n, 0, sequence))).toMatchObject({ errorCode: 0, baseOffset: sequence });
    }
    // Older than the retained five: no longer provably a duplicate.
    expect(partition.produce(batch(1n, 0, 1)).errorCode).toBe(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    expect(partition.log).toHaveLength(7);
  });

  it("answers OUT_OF_ORDER_SEQUENCE_NUMBER to a gap and to a same-range batch with a different size", () => {
    const partition = new Partition();
    partition.produce(batch(1n, 0, 0, 2));
    const gap = partition.produce(batch(1n, 0, 5));
    expect(gap.errorCode).toBe(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    expect(gap.message).toMatch(/expected 2/);
    expect(partition.produce(batch(1n, 0, 0, 1)).errorCode).toBe(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    expect(partition.produce(batch(1n, 0, 2)).errorCode).toBe(ErrorCode.NONE);
  });

  it("fences an older epoch with INVALID_PRODUCER_EPOCH", () => {
    const partition = new Partition();
    partition.produce(batch(1n, 0, 0));
    partition.produce(batch(1n, 1, 0));
    const zombie = partition.produce(batch(1n, 0, 1));
    expect(zombie.errorCode).toBe(ErrorCode.INVALID_PRODUCER_EPOCH);
    expect(zombie.message).toMatch(/newer instance/);
  });

  it("requires a new epoch to start at sequence 0", () => {
    const partition = new Partition();
    partition.produce(batch(1n, 0, 0));
    expect(partition.produce(batch(1n, 1, 4)).errorCode).toBe(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    expect(partition.produce(batch(1n, 1, 0)).errorCode).toBe(ErrorCode.NONE);
    // The old epoch's batches can no longer be retried against the new epoch.
    expect(partition.produce(batch(1n, 0, 0)).errorCode).toBe(ErrorCode.INVALID_PRODUCER_EPOCH);
  });

  it("accepts an unknown producer at any sequence (Kafka 2.5+, KIP-360), then holds it to that sequence", () => {
    const partition = new Partition();
    expect(partition.produce(batch(9n, 3, 41)).errorCode).toBe(ErrorCode.NONE);
    expect(partition.produce(batch(9n, 3, 43)).errorCode).toBe(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    expect(partition.produce(batch(9n, 3, 42)).errorCode).toBe(ErrorCode.NONE);
  });

  it("continues the sequence across Int32 wrap-around", () => {
    expect(incrementSequence(2_147_483_646, 1)).toBe(2_147_483_647);
    expect(incrementSequence(2_147_483_647, 1)).toBe(0);
    expect(incrementSequence(2_147_483_645, 4)).toBe(1);
    const partition = new Partition();
    partition.produce(batch(1n, 0, 2_147_483_645, 3));
    expect(partition.produce(batch(1n, 0, 0, 2)).errorCode).toBe(ErrorCode.NONE);
    expect(partition.produce(batch(1n, 0, 2_147_483_645, 3))).toMatchObject({ errorCode: 0, baseOffset: 0 });
  });

  it("keeps producers apart and leaves non-idempotent batches alone", () => {
    const partition = new Partition();
    partition.produce(batch(1n, 0, 0));
    partition.produce(batch(2n, 0, 0));
    expect(partition.produce(batch(1n, 0, 1)).errorCode).toBe(ErrorCode.NONE);
    expect(partition.produce(batch(2n, 0, 1)).errorCode).toBe(ErrorCode.NONE);
    for (let index = 0; index < 3; index++) expect(partition.produce(batch(-1n, -1, -1)).errorCode).toBe(0);
    expect(partition.state.size).toBe(2);
  });

  it("refuses transactional batches (no transaction coordinator) and negative sequences with precise errors", () => {
    const partition = new Partition();
    const transactional = partition.produce({ ...batch(1n, 0, 0), isTransactional: true });
    expect(transactional.errorCode).toBe(ErrorCode.INVALID_TXN_STATE);
    expect(transactional.message).toMatch(/idempotent/);
    expect(partition.produce(batch(1n, 0, -1)).errorCode).toBe(ErrorCode.INVALID_RECORD);
  });

  it("sees an in-flight append's sequence, and reports a retry of it as a duplicate to wait for", () => {
    const state = new ProducerStateManager({ producerIdExpirationMs: DAY });
    expect(state.checkAppend(batch(1n, 0, 0, 2)).kind).toBe("append");
    const reserved = state.reserveAppend(batch(1n, 0, 0, 2), 0)!;
    expect(state.checkAppend(batch(1n, 0, 2)).kind).toBe("append");
    const retry = state.checkAppend(batch(1n, 0, 0, 2));
    expect(retry).toMatchObject({ kind: "duplicate", batch: { firstOffset: null } });
    expect(state.hasPendingAppends()).toBe(true);
    state.completeAppend(reserved, 10, 11);
    expect(retry.kind === "duplicate" && retry.batch.firstOffset).toBe(10);
    expect(state.hasPendingAppends()).toBe(false);
  });

  it("forgets producers idle for producer.id.expiration.ms, after which they may start over", () => {
    const partition = new Partition();
    partition.produce(batch(1n, 0, 0), 1000);
    partition.produce(batch(2n, 0, 0), 1000 + DAY / 2);
    expect(partition.state.removeExpired(1000 + DAY - 1)).toBe(0);
    expect(partition.state.removeExpired(1000 + DAY)).toBe(1);
    expect(partition.state.entry(1n)).toBeUndefined();
    expect(partition.state.entry(2n)).toBeDefined();
  });
});

describe("producer state snapshots", () => {
  it("rebuilds exactly the same state from a snapshot plus the batches after it", () => {
    const live = new Partition();
    for (let sequence = 0; sequence < 8; sequence++) live.produce(batch(1n, 0, sequence * 2, 2), sequence);
    live.produce(batch(2n, 4, 0, 5), 100);
    const snapshotOffset = live.logEnd;
    const bytes = encodeProducerSnapshot({ offset: snapshotOffset, entries: live.state.snapshotEntries() });
    live.produce(batch(1n, 0, 16, 1), 200);
    live.produce(batch(3n, 0, 0, 1), 300);

    const restored = new ProducerStateManager({ producerIdExpirationMs: DAY });
    const snapshot = decodeProducerSnapshot(bytes);
    expect(snapshot.offset).toBe(snapshotOffset);
    restored.loadEntries(snapshot.entries);
    for (const { header, offset, now } of live.log) {
      if (offset >= snapshot.offset) restored.recordAppend(header, offset, now);
    }
    expect([...restored.entries()].map((entry) => [entry.producerId, entry.batches])).toEqual(
      [...live.state.entries()].map((entry) => [entry.producerId, entry.batches]),
    );
    // Every one of the last five batches of producer 1 is still recognised after the "restart".
    const check = restored.checkAppend(batch(1n, 0, 10, 2));
    expect(check).toMatchObject({ kind: "duplicate", batch: { firstOffset: 10 } });
  });

  it("refuses torn, corrupt or foreign files with an error that says what to do", () => {
    const bytes = encodeProducerSnapshot({ offset: 5, entries: [] });
    expect(decodeProducerSnapshot(bytes)).toEqual({ offset: 5, entries: [] });
    expect(() => decodeProducerSnapshot(bytes.subarray(0, bytes.length - 1))).toThrow(ProducerSnapshotError);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1]! ^= 1;
    expect(() => decodeProducerSnapshot(flipped)).toThrow(/checksum/);
    expect(() => decodeProducerSnapshot(Buffer.from("hello world"))).toThrow(/delete the file/);
  });
});

describe("producer ids", () => {
  class MemoryBlockStore implements ProducerIdBlockStore {
    next = 0n;
    reservations = 0;
    async reserveBlock(size: number): Promise<bigint> {
      this.reservations++;
      await new Promise((resolve) => setImmediate(resolve));
      const first = this.next;
      this.next += BigInt(size);
      return first;
    }
  }

  it("hands out unique ids from durably reserved blocks, one reservation at a time", async () => {
    const store = new MemoryBlockStore();
    const allocator = new ProducerIdAllocator(store, 10);
    const ids = await Promise.all(Array.from({ length: 25 }, () => allocator.allocate()));
    expect(new Set(ids).size).toBe(25);
    expect(store.reservations).toBe(3);
    // A restart loses the rest of the current block but never reuses an id.
    const afterRestart = new ProducerIdAllocator(store, 10);
    const next = await afterRestart.allocate();
    expect(ids.every((id) => id < next)).toBe(true);
  });

  it("allocates a new id for an idempotent producer even when it names one it had (KIP-360 fields)", () => {
    const request = { transactionalId: null };
    expect(decideInitProducerId({ ...request, producerId: -1n, producerEpoch: -1 })).toEqual({
      kind: "allocate",
    });
    // Bumping a named id would let a client fence another producer or take an id not yet handed out.
    expect(decideInitProducerId({ ...request, producerId: 5n, producerEpoch: 0 })).toEqual({
      kind: "allocate",
    });
  });

  it("rejects half-set ids and transactional ids with a reason", () => {
    expect(decideInitProducerId({ transactionalId: null, producerId: 3n, producerEpoch: -1 })).toMatchObject({
      errorCode: ErrorCode.INVALID_REQUEST,
    });
    const transactional = decideInitProducerId({ transactionalId: "tx", producerId: -1n, producerEpoch: -1 });
    expect(transactional).toMatchObject({ kind: "error", errorCode: ErrorCode.UNSUPPORTED_VERSION });
    expect(transactional.kind === "error" && transactional.message).toMatch(/idempotent producer/);
  });
});
