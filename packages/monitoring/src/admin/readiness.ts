/** A readiness check's answer: not ready needs a reason an operator can act on. */
export type ReadinessResult = { readonly ready: true } | { readonly ready: false; readonly reason: string };

export type ReadinessCheck = () => ReadinessResult | Promise<ReadinessResult>;

/** The checks the broker registers (names as they appear in /v1/health/ready). */
export const readinessCheckNames = {
  /** Every partition log has been recovered from disk. */
  storageRecovered: "storage_recovered",
  /** No log failed a write or fsync (a failed one refuses writes until the broker restarts). */
  storageWritable: "storage_writable",
  /** The Kafka listeners accept connections. */
  listenersUp: "listeners_up",
  /** In a cluster: a controller leader is known. */
  controllerLeaderKnown: "controller_leader_known",
  /** In a cluster: this node has caught up with the controller's metadata log. */
  caughtUp: "caught_up",
} as const;

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: readonly ({ readonly name: string } & ReadinessResult)[];
}

/**
 * The node's readiness: ready when every registered check passes. Checks are functions (asked at
 * each probe) or states set as things happen (`set`). A check that throws or does not answer within
 * `timeoutMs` counts as not ready, with that as the reason.
 */
export class Readiness {
  private readonly checks = new Map<string, ReadinessCheck>();

  constructor(private readonly timeoutMs = 2000) {}

  /** Registers (or replaces) a check asked at every probe. */
  register(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  /** Sets a check's state directly, for conditions the broker tracks itself ("storage recovered"). */
  set(name: string, result: ReadinessResult): void {
    this.checks.set(name, () => result);
  }

  unregister(name: string): void {
    this.checks.delete(name);
  }

  async evaluate(): Promise<ReadinessReport> {
    const checks = await Promise.all(
      [...this.checks].map(async ([name, check]) => ({ name, ...(await this.run(name, check)) })),
    );
    return { ready: checks.every((check) => check.ready), checks };
  }

  private async run(name: string, check: ReadinessCheck): Promise<ReadinessResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<ReadinessResult>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            ready: false,
            reason: `check ${name} did not answer within ${this.timeoutMs} ms; the node may be overloaded`,
          }),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([Promise.resolve().then(check), timeout]);
    } catch (error) {
      return { ready: false, reason: `check ${name} failed: ${(error as Error).message}` };
    } finally {
      clearTimeout(timer);
    }
  }
}
