/**
 * A one-line progress display on stderr for long operations (records produced or consumed,
 * waiting for a topic or for readiness). On a terminal the line is redrawn in place; elsewhere it
 * is off unless asked for (`--progress`), and then prints plain lines at most once per
 * `intervalMs`, so logs of scripted runs stay readable. stdout is never touched: it carries the
 * command's result.
 */
export interface ProgressOptions {
  readonly stream: NodeJS.WritableStream & { isTTY?: boolean };
  readonly mode: "auto" | "always" | "never";
  readonly clock?: () => number;
  readonly intervalMs?: number;
}

export class Progress {
  private readonly enabled: boolean;
  private readonly inPlace: boolean;
  private readonly clock: () => number;
  private readonly intervalMs: number;
  private lastWrite = Number.NEGATIVE_INFINITY;
  private pending: string | null = null;
  private lineShown = false;

  constructor(private readonly options: ProgressOptions) {
    const tty = options.stream.isTTY === true;
    this.enabled = options.mode === "always" || (options.mode === "auto" && tty);
    this.inPlace = tty;
    this.clock = options.clock ?? Date.now;
    this.intervalMs = options.intervalMs ?? (tty ? 100 : 1000);
  }

  /** Shows `text` now, or soon if the display was updated less than an interval ago. */
  update(text: string): void {
    if (!this.enabled) return;
    this.pending = text;
    const now = this.clock();
    if (now - this.lastWrite < this.intervalMs) return;
    this.lastWrite = now;
    this.write(text);
  }

  /** Shows the final state (always, not throttled) and ends the line. */
  done(text?: string): void {
    if (!this.enabled) return;
    const final = text ?? this.pending;
    if (final !== null) this.write(final);
    if (this.inPlace && this.lineShown) this.options.stream.write("\n");
    this.pending = null;
    this.lineShown = false;
  }

  /** Removes the in-place line so other stderr output starts on a clean line. */
  clear(): void {
    if (this.enabled && this.inPlace && this.lineShown) this.options.stream.write("\r\x1b[2K");
    this.lineShown = false;
  }

  private write(text: string): void {
    if (this.inPlace) {
      this.options.stream.write(`\r\x1b[2K${text}`);
      this.lineShown = true;
    } else {
      this.options.stream.write(`${text}\n`);
    }
    this.pending = null;
  }
}
