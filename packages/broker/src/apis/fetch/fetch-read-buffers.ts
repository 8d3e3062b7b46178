import type { ReplicatedReadResult } from "../../partitions/replicated-log.js";
import type { BufferPool } from "../../server/buffer-pool.js";

/**
 * The buffers one Fetch's reads took from the pool. They go back once the response is written, each
 * only after the read that filled it has finished: a read started ahead and then not used may still be
 * running when the response leaves.
 */
export class FetchReadBuffers {
  private readonly reads: Promise<readonly Buffer[]>[] = [];
  private readonly adopted: (() => void)[] = [];

  constructor(private readonly pool: BufferPool) {}

  /** Runs `read` with an allocator from the pool and remembers what it took. */
  read(
    read: (allocate: (size: number) => Buffer) => Promise<ReplicatedReadResult>,
  ): Promise<ReplicatedReadResult> {
    const taken: Buffer[] = [];
    const result = read((size) => {
      const buffer = this.pool.take(size);
      taken.push(buffer);
      return buffer;
    });
    this.reads.push(
      result.then(
        () => taken,
        () => taken,
      ),
    );
    return result;
  }

  /** Takes over the memory of a read started elsewhere (NextReads), to release with this Fetch's own. */
  adopt(release: () => void): void {
    this.adopted.push(release);
  }

  /** Call once nothing refers to the records any more (the response is written). */
  giveBack(): void {
    for (const release of this.adopted.splice(0)) release();
    for (const read of this.reads.splice(0)) {
      void read.then((taken) => {
        for (const buffer of taken) this.pool.give(buffer);
      });
    }
  }
}
