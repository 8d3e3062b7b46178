import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const e2eRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

export interface MemberLine {
  readonly event: string;
  readonly [field: string]: unknown;
}

/**
 * A client running as its own process (so a test can SIGKILL it), printing one JSON event per line on
 * stdout. Every line is passed to `onLine` with the member's name as soon as it is read.
 */
export class MemberProcess {
  readonly lines: MemberLine[] = [];
  private readonly child: ChildProcess;
  private readonly stderr: string[] = [];
  private readonly closed: Promise<number | null>;
  private waiters: (() => void)[] = [];

  constructor(
    readonly name: string,
    fixture: string,
    options: Record<string, unknown>,
    private readonly onLine: (member: string, line: MemberLine) => void = () => {},
  ) {
    this.child = spawn(process.execPath, [join(e2eRoot, "fixtures", fixture), JSON.stringify(options)], {
      cwd: e2eRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (text: string) => this.stderr.push(text));
    createInterface({ input: this.child.stdout! }).on("line", (text) => {
      let line: MemberLine;
      try {
        line = JSON.parse(text) as MemberLine;
      } catch {
        line = { event: "output", text };
      }
      this.lines.push(line);
      this.onLine(this.name, line);
      for (const waiter of this.waiters.splice(0)) waiter();
    });
    // "close" fires after stdout is drained, so every line the process wrote has been read by then.
    this.closed = new Promise((resolve) => this.child.once("close", (code) => resolve(code)));
    void this.closed.then(() => {
      for (const waiter of this.waiters.splice(0)) waiter();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  count(event: string): number {
    return this.lines.filter((line) => line.event === event).length;
  }

  /** Resolves once `predicate` holds over the lines read so far; rejects after `timeoutMs` or on exit. */
  async waitFor(description: string, predicate: () => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (!this.running)
        throw new Error(`${this.name} exited while waiting for ${description}:\n${this.diagnostics()}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0)
        throw new Error(`${this.name}: timed out waiting for ${description}:\n${this.diagnostics()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 250));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** SIGTERM: the fixture leaves its group gracefully; resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (this.running) this.child.kill("SIGTERM");
    return this.closed;
  }

  /** SIGKILL: no LeaveGroup, no last commit; resolves once every line it wrote has been read. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill("SIGKILL");
    await this.closed;
  }

  diagnostics(): string {
    return [
      ...this.lines.slice(-5).map((line) => JSON.stringify(line)),
      this.stderr.join("").slice(-2000),
    ].join("\n");
  }
}
