import type { CoordinatorTimers } from "./group-coordinator-core.js";

/** The coordinator core's timers on Node's clock: one unref'd timeout per timer id. */
export class NodeTimers implements CoordinatorTimers {
  private readonly timeouts = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly now: () => number,
    private readonly fire: (id: string, now: number) => void,
  ) {}

  set(id: string, at: number): void {
    clearTimeout(this.timeouts.get(id));
    const timeout = setTimeout(
      () => {
        this.timeouts.delete(id);
        this.fire(id, this.now());
      },
      Math.max(0, at - this.now()),
    );
    timeout.unref();
    this.timeouts.set(id, timeout);
  }

  cancel(id: string): void {
    clearTimeout(this.timeouts.get(id));
    this.timeouts.delete(id);
  }

  clear(): void {
    for (const timeout of this.timeouts.values()) clearTimeout(timeout);
    this.timeouts.clear();
  }

  get size(): number {
    return this.timeouts.size;
  }
}
