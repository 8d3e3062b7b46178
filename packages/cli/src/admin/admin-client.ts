import { OperationFailedError, UnreachableError, UsageError } from "../errors.js";

export const DEFAULT_ADMIN_URL = "http://localhost:9644";

/** The admin URL as given by --admin-url / RAFTKA_ADMIN_URL (a scheme-less `host:port` means http). */
export function parseAdminUrl(text: string, origin: string): URL {
  let url: URL;
  try {
    url = new URL(text.includes("://") ? text : `http://${text}`);
  } catch {
    throw new UsageError(`${origin} "${text}" is not a URL; write it like http://localhost:9644`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(
      `${origin} "${text}" must be an http:// or https:// URL, like http://localhost:9644`,
    );
  }
  return url;
}

export interface AdminAnswer<T> {
  readonly status: number;
  readonly body: T;
}

/**
 * Talks JSON to a node's admin HTTP API (`admin.listener`). Network failures become
 * UnreachableError (exit 3); error answers become OperationFailedError carrying the node's message,
 * unless the caller accepts that status (readiness answers 503 with a useful body).
 */
export class AdminClient {
  constructor(
    readonly baseUrl: URL,
    private readonly timeoutMs: number,
  ) {}

  get<T>(path: string, acceptStatuses: readonly number[] = []): Promise<AdminAnswer<T>> {
    return this.request<T>("GET", path, undefined, acceptStatuses);
  }

  put<T>(path: string, body: unknown): Promise<AdminAnswer<T>> {
    return this.request<T>("PUT", path, body, []);
  }

  private async request<T>(
    method: string,
    path: string,
    body: unknown,
    acceptStatuses: readonly number[],
  ): Promise<AdminAnswer<T>> {
    const url = `${this.baseUrl.origin}${this.baseUrl.pathname.replace(/\/+$/, "")}${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        signal: AbortSignal.timeout(this.timeoutMs),
        ...(body === undefined
          ? {}
          : { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } }),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason =
        (error as Error).name === "TimeoutError"
          ? `no answer within ${this.timeoutMs} ms`
          : (cause?.code ?? cause?.message ?? (error as Error).message);
      throw new UnreachableError(
        `cannot reach the admin API at ${this.baseUrl.href} (${reason}); check that the node runs and that --admin-url / RAFTKA_ADMIN_URL matches its admin.listener`,
        { cause: error },
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      throw new OperationFailedError(
        `${method} ${url} answered ${response.status} with a body that is not JSON; is --admin-url pointing at a Raftka admin port?`,
      );
    }
    if (!response.ok && !acceptStatuses.includes(response.status)) {
      const message = (parsed as { error?: { message?: string } } | undefined)?.error?.message;
      throw new OperationFailedError(
        `${method} ${path} failed with HTTP ${response.status}: ${message ?? (text.trim() || response.statusText)}`,
      );
    }
    return { status: response.status, body: parsed as T };
  }
}
