import { AdminHttpError, type AdminServer } from "@raftka/monitoring";
import { apiDefinitions } from "@raftka/protocol";

/**
 * TEST ONLY, off unless `test.fault.injection.enable=true`: makes the broker close a client connection
 * instead of sending a response, after the request was fully handled (a produced batch is already
 * appended). Clients then retry what they think was lost, which is how the end-to-end suites check that
 * idempotent producers never duplicate or skip records. Controlled over the admin port:
 *
 *   POST   /v1/test/faults  {"api": "Produce", "every": 3, "count": 10}   drop every 3rd Produce response, 10 times
 *   GET    /v1/test/faults  what is armed and how many responses were dropped
 *   DELETE /v1/test/faults  disarm
 */
export class FaultInjector {
  private rule: { apiKey: number; api: string; every: number; remaining: number; seen: number } | undefined;
  private droppedCount = 0;

  /** Whether the response about to be sent for `apiKey` is dropped (and its connection closed). */
  dropResponse(apiKey: number): boolean {
    const rule = this.rule;
    if (rule === undefined || rule.apiKey !== apiKey || rule.remaining <= 0) return false;
    rule.seen++;
    if (rule.seen % rule.every !== 0) return false;
    rule.remaining--;
    this.droppedCount++;
    return true;
  }

  get dropped(): number {
    return this.droppedCount;
  }

  arm(api: string, every: number, count: number): void {
    const entry = Object.entries(apiDefinitions).find(([, definition]) => definition.name === api);
    if (entry === undefined) throw new RangeError(`"${api}" is not a Kafka API name; use e.g. "Produce"`);
    if (!Number.isSafeInteger(every) || every < 1)
      throw new RangeError(`every must be a positive integer, got ${every}`);
    if (!Number.isSafeInteger(count) || count < 1)
      throw new RangeError(`count must be a positive integer, got ${count}`);
    this.rule = { apiKey: Number(entry[0]), api, every, remaining: count, seen: 0 };
  }

  disarm(): void {
    this.rule = undefined;
  }

  status(): { armed: boolean; api?: string; every?: number; remaining?: number; dropped: number } {
    if (!this.rule) return { armed: false, dropped: this.droppedCount };
    const { api, every, remaining } = this.rule;
    return { armed: remaining > 0, api, every, remaining, dropped: this.droppedCount };
  }

  /** The admin routes that drive it. */
  registerRoutes(admin: AdminServer): void {
    admin.route("GET", "/v1/test/faults", () => ({ status: 200, body: this.status() }));
    admin.route("DELETE", "/v1/test/faults", () => {
      this.disarm();
      return { status: 200, body: this.status() };
    });
    admin.route("POST", "/v1/test/faults", (request) => {
      const body = (request.body ?? {}) as { api?: unknown; every?: unknown; count?: unknown };
      try {
        this.arm(String(body.api ?? ""), Number(body.every ?? 1), Number(body.count ?? 1));
      } catch (error) {
        throw new AdminHttpError(
          400,
          `${(error as Error).message}; send {"api": "Produce", "every": 3, "count": 10}`,
        );
      }
      return { status: 200, body: this.status() };
    });
  }
}
