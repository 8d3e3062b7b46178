import type { ReadinessResult } from "@raftka/monitoring";

/**
 * The logs of this node that failed a write or an fsync. Each refuses writes until the broker
 * restarts (its state on disk can no longer be trusted), so the node needs an operator: readiness,
 * /v1/status, `raftka_logs_failed` and the shutdown's exit code all come from here.
 */
export class LogFailures {
  /** Log name (`topic-partition`) → the error that stopped it, in the order they failed. */
  private readonly failures = new Map<string, Error>();
  /** The Raft host's own failure: it stops every Raft group of the node, failed log or not. */
  private raftFailure: Error | undefined;

  constructor(private readonly onChange: (failedLogs: number) => void = () => {}) {}

  /** A log failed (once per log: later reports of it are the same failure). */
  record(name: string, error: Error): void {
    if (this.failures.has(name)) return;
    this.failures.set(name, error);
    this.onChange(this.failures.size);
  }

  /** A failed log was deleted with its topic: it needs no restart any more. */
  forget(name: string): void {
    if (this.failures.delete(name)) this.onChange(this.failures.size);
  }

  recordRaftFailure(error: Error): void {
    this.raftFailure ??= error;
  }

  /** Names of the failed logs. */
  get failedLogs(): string[] {
    return [...this.failures.keys()];
  }

  /** Whether anything failed that only a restart clears. */
  get needsRestart(): boolean {
    return this.failures.size > 0 || this.raftFailure !== undefined;
  }

  /** The `storage_writable` readiness check: not ready once a log failed, saying what to do. */
  readiness(): ReadinessResult {
    if (!this.needsRestart) return { ready: true };
    const parts: string[] = [];
    const first = this.failures.entries().next().value;
    if (first !== undefined) {
      const [name, error] = first;
      const more = this.failures.size > 1 ? ` and ${this.failures.size - 1} more` : "";
      parts.push(
        `${this.failures.size} log(s) failed a write or fsync and refuse writes until the broker restarts (${name}${more}: ${error.message})`,
      );
    }
    // Usually the failed log's own error stopped the Raft host: said once is enough.
    if (this.raftFailure !== undefined && parts.length > 0)
      parts.push("every Raft group of the node stopped with it");
    else if (this.raftFailure !== undefined) parts.push(this.raftFailure.message);
    return {
      ready: false,
      reason: `${parts.join("; ")}; fix the disk (free space, \`dmesg\` for I/O errors), then restart the node: it recovers the logs`,
    };
  }
}
