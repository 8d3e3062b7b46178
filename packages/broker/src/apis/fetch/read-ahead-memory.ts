import { mappedMemory } from "../../server/mapped-memory.js";

/**
 * How long no slot may have been in use before the pages of all of them go back: none. While a consumer
 * catches up some slot is always in use (its next read held, or its last one going out), so the pages go
 * back as its last answer leaves; waiting longer only kept them resident where the node's memory was
 * sampled next (docs/benchmarks.md).
 */
const DEFAULT_IDLE_MS = 0;

interface Slot {
  memory: Buffer | undefined;
  inUse: boolean;
  /** Pages touched since they last went back. */
  resident: boolean;
}

/**
 * The memory reads ahead of a consumer's next Fetch go into (NextReads): a fixed number of slots, whose
 * pages go back to the system once no slot has been in use for a moment. Buffers from malloc's heap or
 * V8 would instead stay resident until V8 collects them and glibc trims their holes: the broker's RSS
 * with 100 partitions rose by 20-50 MiB after catch-ups read ahead into pooled buffers
 * (docs/benchmarks.md, "A consumer's next range, read while its answer goes out").
 */
export class ReadAheadMemory {
  private readonly slots: Slot[];
  private lastGivenBack = 0;
  private idleCheck: NodeJS.Timeout | undefined;

  constructor(
    count: number,
    readonly slotBytes: number,
    private readonly idleMs = DEFAULT_IDLE_MS,
  ) {
    this.slots = Array.from({ length: count }, () => ({ memory: undefined, inUse: false, resident: false }));
  }

  /** A free slot's memory, `slotBytes` long, or undefined while every slot is in use. */
  take(): Buffer | undefined {
    const slot = this.slots.find((candidate) => !candidate.inUse);
    if (slot === undefined) return undefined;
    slot.memory ??= mappedMemory?.map(this.slotBytes) ?? Buffer.allocUnsafeSlow(this.slotBytes);
    slot.inUse = true;
    slot.resident = true;
    return slot.memory;
  }

  /** Gives back what `take` returned, once nothing reads into it or sends from it any more. */
  give(memory: Buffer): void {
    const slot = this.slots.find((candidate) => candidate.memory === memory);
    if (slot === undefined || !slot.inUse) return;
    slot.inUse = false;
    this.lastGivenBack = Date.now();
    this.idleCheck ??= setTimeout(() => this.releaseOnceIdle(), this.idleMs);
    this.idleCheck.unref();
  }

  /** Slots whose pages are resident now (in use, or given back less than the idle time ago). */
  get residentSlots(): number {
    return this.slots.filter((slot) => slot.resident).length;
  }

  /** Lets every slot go (the node stops); slots still in use go once given back. */
  close(): void {
    if (this.idleCheck !== undefined) clearTimeout(this.idleCheck);
    this.idleCheck = undefined;
    for (const slot of this.slots) if (!slot.inUse) this.releaseSlot(slot);
  }

  private releaseOnceIdle(): void {
    this.idleCheck = undefined;
    // A slot in use: a catch-up goes on, and giving it back looks again.
    if (this.slots.some((slot) => slot.inUse)) return;
    const wait = this.lastGivenBack + this.idleMs - Date.now();
    if (wait > 0) {
      this.idleCheck = setTimeout(() => this.releaseOnceIdle(), wait);
      this.idleCheck.unref();
      return;
    }
    for (const slot of this.slots) this.releaseSlot(slot);
  }

  private releaseSlot(slot: Slot): void {
    if (!slot.resident || slot.memory === undefined) return;
    slot.resident = false;
    if (mappedMemory !== undefined) mappedMemory.release(slot.memory);
    // Without the addon the memory can only go to the garbage collector; the next take maps anew.
    else slot.memory = undefined;
  }
}
