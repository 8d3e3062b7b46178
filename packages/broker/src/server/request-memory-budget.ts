/**
 * `queued.max.request.bytes`: how many bytes of requests the whole node holds: the bytes received so far
 * of large frames that are arriving, whole large frames until their requests are handled, and Produce
 * requests until their handlers are done. Connections pipeline requests, so without a node-wide bound a
 * few producers sending faster than the disk takes acks=all writes hold hundreds of MiB of request
 * buffers at once. Over the limit, connections stop reading; the kernel's socket buffers and TCP flow
 * control then hold the clients back.
 *
 * A frame is charged with the bytes that have arrived, not the size its prefix announces: a client that
 * announces a large frame and sends it slowly, or not at all, holds only what it sent, and cannot stop
 * the node reading other clients. When the frames arriving are what exhausts the budget, stopping all
 * of them would leave every one of them waiting for the others; so while the bytes held for whole
 * requests are under the limit, the frame that started arriving first (`frameStarted`) goes on being
 * read, and the next one once it has arrived. The node then holds at most about one frame more than
 * twice the limit, and a frame larger than the limit still runs (alone). That frame's client must finish
 * it in time: the listener closes a connection whose frame holds up the others too long.
 */
export class RequestMemoryBudget {
  private held = 0;
  private readonly waiting = new Set<() => void>();
  private readonly exhaustionListeners = new Set<() => void>();
  /** Connections receiving a large frame, by the wake-up they registered, in the order their frames began. */
  private readonly arriving = new Set<() => void>();
  /** Of `held`, the bytes of frames still arriving. */
  private arrivingBytes = 0;

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

  /** `bytes` more of the frames arriving have come in (negative: that many of them are whole now). */
  arrived(bytes: number): void {
    this.arrivingBytes += bytes;
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
    // Whole requests were what held the budget: the first frame in line may go on arriving. (Once
    // recovered, every paused connection is resumed below.)
    if (this.arriving.size > 0 && !this.recovered() && this.mayFinish()) this.first()!();
    if (this.waiting.size > 0 && this.recovered()) {
      const resumes = [...this.waiting];
      this.waiting.clear();
      for (const resume of resumes) resume();
    }
  }

  /** A connection began receiving a large frame; `wake` resumes its reading when it is its turn to finish. */
  frameStarted(wake: () => void): void {
    this.arriving.add(wake);
  }

  /** That frame has arrived (or its connection closed): the next frame in line may go on while exhausted. */
  frameEnded(wake: () => void): void {
    if (!this.arriving.has(wake)) return;
    const wasFirst = this.first() === wake;
    this.arriving.delete(wake);
    if (wasFirst && this.arriving.size > 0 && !this.recovered() && this.mayFinish()) this.first()!();
  }

  /** Whether this connection's frame is the one that goes on arriving while the budget is exhausted. */
  finishesFirst(wake: () => void): boolean {
    return this.first() === wake && this.mayFinish();
  }

  /** Whether the bytes held for whole requests leave room for the frame first in line to arrive. */
  private mayFinish(): boolean {
    const limit = this.limit();
    return limit < 0 || this.held - this.arrivingBytes < limit;
  }

  private first(): (() => void) | undefined {
    for (const wake of this.arriving) return wake;
    return undefined;
  }

  /** Calls `resume` once, the next time the budget has recovered. */
  whenRecovered(resume: () => void): void {
    this.waiting.add(resume);
  }

  forget(resume: () => void): void {
    this.waiting.delete(resume);
  }
}
