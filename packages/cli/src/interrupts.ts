/**
 * Ctrl-C for a CLI: commands that can stop cleanly (consume, produce, waits) subscribe and are told on
 * the first interrupt, then finish and report what they did; with no subscriber, or on a second
 * interrupt, the process exits at once.
 */
export class Interrupts {
  private readonly handlers = new Set<() => void>();
  private received = 0;

  /** Registers a graceful handler; returns a function that removes it. */
  onInterrupt(handler: () => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** Called by the signal handler: whether the interrupt was handed to a command or must exit now. */
  trigger(): "handled" | "exit" {
    this.received++;
    if (this.received > 1 || this.handlers.size === 0) return "exit";
    for (const handler of this.handlers) handler();
    return "handled";
  }

  get interrupted(): boolean {
    return this.received > 0;
  }
}
