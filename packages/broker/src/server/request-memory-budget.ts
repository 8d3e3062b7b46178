/**
 * `queued.max.request.bytes`: how many bytes of requests the whole node holds: large frames from the
 * moment their buffer is taken, while they arrive, and Produce requests until their handlers are done.
 * Connections pipeline requests, so without a node-wide bound a few producers sending faster than the
 * disk takes acks=all writes hold hundreds of MiB of request buffers at once, and clients announcing
 * large frames make the node take their buffers all at once. Over the limit, connections stop reading;
 * the kernel's socket buffers and TCP flow control then hold the clients back. A frame already arriving
 * is still read to its end, so one larger than the limit still runs (alone).
 */
export class RequestMemoryBudget {
  private held = 0;
  private readonly waiting = new Set<() => void>();
  private readonly exhaustionListeners = new Set<() => void>();

  /** `limit` of -1 means no limit. `changed` sees every new total (for the metric). */
  constructor(
    private readonly limit: () => number,
    private readonly changed: (heldBytes: number) => void = () => {},
  ) {}

  /** Whether connections should stop reading now. */
  exhausted(): boolean {
    const limit = this.limit();
    return limit >= 0 && this.held >= limit;
  }

  /** Whether paused connections may read again: hysteresis, so that they do not flap around the limit. */
  recovered(): boolean {
    const limit = this.limit();
    return limit < 0 || this.held <= limit / 2;
  }

  charge(bytes: number): void {
    const wasExhausted = this.exhausted();
    this.held += bytes;
    this.changed(this.held);
    if (!wasExhausted && this.exhausted()) for (const listener of [...this.exhaustionListeners]) listener();
  }

  /**
   * Calls `listener` each time the budget becomes exhausted: every connection must stop reading at once,
   * before its next read takes another large frame's buffer.
   */
  onExhausted(listener: () => void): () => void {
    this.exhaustionListeners.add(listener);
    return () => this.exhaustionListeners.delete(listener);
  }

  release(bytes: number): void {
    this.held -= bytes;
    if (this.held < 0)
      throw new Error(`request memory budget released ${-this.held} bytes more than charged`);
    this.changed(this.held);
    if (this.waiting.size > 0 && this.recovered()) {
      const resumes = [...this.waiting];
      this.waiting.clear();
      for (const resume of resumes) resume();
    }
  }

  /** Calls `resume` once, the next time the budget has recovered. */
  whenRecovered(resume: () => void): void {
    this.waiting.add(resume);
  }

  forget(resume: () => void): void {
    this.waiting.delete(resume);
  }
}
