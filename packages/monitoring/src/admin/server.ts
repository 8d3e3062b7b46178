import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import Router from "find-my-way";
import type { Logger } from "pino";
import type { RaftkaConfig } from "../config/config.js";
import { formatProblem } from "../config/problems.js";
import { type LogComponent, type LogLevel, logComponents, logLevels } from "../config/settings.js";
import type { Logging } from "../logging/logging.js";
import type { RaftkaMetrics } from "../metrics/metrics.js";
import { Readiness } from "./readiness.js";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
const methods: readonly HttpMethod[] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

export interface AdminRequest {
  readonly method: HttpMethod;
  readonly path: string;
  /** Path parameters: `/v1/partitions/:topic/:partition` gives `{ topic, partition }`. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The parsed JSON body (undefined when there is none). */
  readonly body: unknown;
  readonly headers: IncomingMessage["headers"];
}

export interface AdminResponse {
  readonly status: number;
  /** Sent as JSON, unless `contentType` is given and the body is a string. */
  readonly body: unknown;
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export type AdminHandler = (request: AdminRequest) => AdminResponse | Promise<AdminResponse>;

/** Thrown by handlers for an error answer: the message must say what to do next. */
export class AdminHttpError extends Error {
  override readonly name = "AdminHttpError";
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** What /v1/status reports about the node; the broker supplies it. */
export interface NodeStatus {
  readonly nodeId: number;
  readonly listeners: readonly { readonly name: string; readonly host: string; readonly port: number }[];
  /** Partitions hosted on this node. */
  readonly partitions: number;
  /** Partitions this node leads. */
  readonly leaders: number;
  readonly [detail: string]: unknown;
}

export interface StatusProvider {
  status(): NodeStatus | Promise<NodeStatus>;
}

export interface AdminServerOptions {
  readonly version: string;
  readonly metrics?: RaftkaMetrics;
  readonly status?: StatusProvider;
  /** Enables /v1/log-levels. With `config`, changes go through it, so DescribeConfigs agrees. */
  readonly logging?: Logging;
  readonly config?: RaftkaConfig;
  /** The `admin` component logger, for failed requests. */
  readonly logger?: Logger;
  /** Milliseconds since the epoch; injected so uptime is testable. */
  readonly clock?: () => number;
  readonly readinessTimeoutMs?: number;
  /** Largest request body accepted (default 1 MiB). */
  readonly maxBodyBytes?: number;
}

const JSON_TYPE = "application/json; charset=utf-8";
const ROOT = "root";

function ok(body: unknown): AdminResponse {
  return { status: 200, body };
}

function errorCode(status: number): string {
  const codes: Record<number, string> = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    503: "unavailable",
  };
  return codes[status] ?? (status >= 500 ? "internal_error" : "error");
}

/**
 * The admin HTTP server: Prometheus metrics, health, status, log levels, and whatever routes the
 * broker adds (`/v1/cluster/...`, `/v1/partitions/...`). Every answer is JSON except /metrics.
 */
export class AdminServer {
  readonly readiness: Readiness;
  private readonly router = Router({ ignoreTrailingSlash: true });
  private readonly server: Server;
  private readonly startedAt: number;
  private readonly clock: () => number;
  private readonly routes: { method: HttpMethod; path: string }[] = [];
  private statusProvider: StatusProvider | undefined;

  constructor(private readonly options: AdminServerOptions) {
    this.clock = options.clock ?? Date.now;
    this.startedAt = this.clock();
    this.readiness = new Readiness(options.readinessTimeoutMs);
    this.statusProvider = options.status;
    this.server = createServer((request, response) => {
      this.handle(request, response).catch((error) => this.fail(response, error, request));
    });
    this.addBuiltInRoutes();
  }

  /** Adds a route; `path` may have parameters (`/v1/partitions/:topic/:partition`). */
  route(method: HttpMethod, path: string, handler: AdminHandler): void {
    if (!path.startsWith("/")) throw new Error(`admin route path "${path}" must start with /`);
    if (this.router.hasRoute(method, path))
      throw new Error(`admin route ${method} ${path} is already registered`);
    this.router.on(method, path, () => {}, { handler });
    this.routes.push({ method, path });
  }

  setStatusProvider(provider: StatusProvider): void {
    this.statusProvider = provider;
  }

  /** Starts listening; port 0 picks a free port. Resolves with the bound address. */
  listen(address: { host?: string; port: number }): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        const hint =
          error.code === "EADDRINUSE"
            ? `port ${address.port} is already in use; stop the other process or set admin.listener to another port`
            : error.message;
        reject(new Error(`admin server cannot listen on ${address.host || "*"}:${address.port}: ${hint}`));
      };
      this.server.once("error", onError);
      this.server.listen(address.port, address.host === "" ? undefined : address.host, () => {
        this.server.off("error", onError);
        resolve(this.address());
      });
    });
  }

  /** The bound address; throws before `listen` resolved. */
  address(): { host: string; port: number } {
    const bound = this.server.address() as AddressInfo | null;
    if (!bound) throw new Error("admin server is not listening; await listen() first");
    return { host: bound.address, port: bound.port };
  }

  /** Stops accepting connections and closes open ones (including idle keep-alive connections). */
  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.server.listening) return resolve();
      this.server.close((error) => (error ? reject(error) : resolve()));
      this.server.closeAllConnections();
    });
  }

  private addBuiltInRoutes(): void {
    this.route("GET", "/", () => ok({ routes: this.routes.map((route) => `${route.method} ${route.path}`) }));
    this.route("GET", "/metrics", async () => {
      const metrics = this.options.metrics;
      if (!metrics)
        throw new AdminHttpError(
          503,
          "metrics are not enabled in this process; pass metrics to the AdminServer",
        );
      return { status: 200, body: await metrics.render(), contentType: metrics.contentType };
    });
    this.route("GET", "/v1/health/live", () => ok({ status: "live" }));
    this.route("GET", "/v1/health/ready", async () => {
      const report = await this.readiness.evaluate();
      return {
        status: report.ready ? 200 : 503,
        body: { status: report.ready ? "ready" : "not_ready", checks: report.checks },
      };
    });
    this.route("GET", "/v1/status", async () => {
      if (!this.statusProvider) {
        throw new AdminHttpError(
          503,
          "the node is still starting and has no status yet; retry in a few seconds",
          {
            "Retry-After": "1",
          },
        );
      }
      const status = await this.statusProvider.status();
      return ok({
        ...status,
        version: this.options.version,
        uptimeSeconds: Math.max(0, Math.floor((this.clock() - this.startedAt) / 1000)),
      });
    });
    if (this.options.logging) this.addLogLevelRoutes(this.options.logging);
  }

  /**
   * Makes log-level changes persistent: `persist` stores dynamic settings as the node's run-time
   * overrides (the broker's controller) and applies them, or answers why not. Without it they apply to
   * this process only.
   */
  persistSettingsWith(
    persist: (changes: Record<string, string | null>) => Promise<string | undefined>,
  ): void {
    this.persistSettings = persist;
  }

  private persistSettings:
    | ((changes: Record<string, string | null>) => Promise<string | undefined>)
    | undefined;

  private addLogLevelRoutes(logging: Logging): void {
    this.route("GET", "/v1/log-levels", () => ok(logging.levels()));
    this.route("PUT", "/v1/log-levels/:component", async (request) => {
      const component = request.params.component!;
      if (component !== ROOT && !(logComponents as readonly string[]).includes(component)) {
        throw new AdminHttpError(
          404,
          `no log component "${component}"; use ${ROOT} or one of ${logComponents.join(", ")}`,
        );
      }
      const body = request.body as { level?: unknown } | undefined;
      const level = body?.level;
      const allowsNull = component !== ROOT;
      if (
        !(level === null && allowsNull) &&
        !(typeof level === "string" && (logLevels as readonly string[]).includes(level))
      ) {
        throw new AdminHttpError(
          400,
          `send {"level": "<${logLevels.join("|")}>"}${allowsNull ? ' or {"level": null} to follow the root level again' : ""}`,
        );
      }
      const typedLevel = level as LogLevel | null;
      const config = this.options.config;
      if (config) {
        const key = component === ROOT ? "log.level" : `log.level.${component}`;
        const persist = this.persistSettings;
        const problems = config.update({ [key]: typedLevel }, persist ? { validateOnly: true } : {});
        if (problems.length > 0) throw new AdminHttpError(400, problems.map(formatProblem).join("; "));
        if (persist) {
          // As AlterConfigs would: kept across restarts, and what DescribeConfigs reports.
          const problem = await persist({ [key]: typedLevel });
          if (problem !== undefined) throw new AdminHttpError(400, problem);
        }
      } else if (component === ROOT) {
        logging.setRootLevel(typedLevel!);
      } else {
        logging.setLevel(component as LogComponent, typedLevel);
      }
      return ok(logging.levels());
    });
  }

  private async handle(incoming: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(incoming.url ?? "/", "http://admin.invalid");
    const requested = (incoming.method ?? "GET").toUpperCase();
    // HEAD is GET without the body (Node's response leaves it out), as HTTP asks of every GET route:
    // load balancers' health checks use it.
    const method = (requested === "HEAD" ? "GET" : requested) as HttpMethod;
    const found = methods.includes(method) ? this.router.find(method, url.pathname) : null;
    if (!found) {
      const allowed = methods.flatMap((other) =>
        this.router.find(other, url.pathname) === null ? [] : other === "GET" ? ["GET", "HEAD"] : [other],
      );
      if (allowed.length > 0) {
        throw new AdminHttpError(
          405,
          `${url.pathname} does not accept ${method}; use ${allowed.join(" or ")}`,
          {
            Allow: allowed.join(", "),
          },
        );
      }
      throw new AdminHttpError(404, `no admin endpoint ${url.pathname}; GET / lists every endpoint`);
    }
    const body = await this.readBody(incoming, method);
    const params: Record<string, string> = {};
    for (const [name, value] of Object.entries(found.params)) if (value !== undefined) params[name] = value;
    const { handler } = found.store as { handler: AdminHandler };
    const answer = await handler({
      method,
      path: url.pathname,
      params,
      query: url.searchParams,
      body,
      headers: incoming.headers,
    });
    this.send(response, answer);
  }

  private async readBody(incoming: IncomingMessage, method: HttpMethod): Promise<unknown> {
    if (method === "GET") {
      incoming.resume();
      return undefined;
    }
    const limit = this.options.maxBodyBytes ?? 1_048_576;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of incoming as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit)
        throw new AdminHttpError(413, `request body is larger than ${limit} bytes; send less`);
      chunks.push(chunk);
    }
    if (size === 0) return undefined;
    const type = incoming.headers["content-type"] ?? "application/json";
    if (!type.startsWith("application/json")) {
      throw new AdminHttpError(415, `request body must be JSON; send it with Content-Type: application/json`);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch (error) {
      throw new AdminHttpError(
        400,
        `request body is not valid JSON (${(error as Error).message}); fix the JSON and retry`,
      );
    }
  }

  private send(response: ServerResponse, answer: AdminResponse): void {
    const isText = answer.contentType !== undefined && typeof answer.body === "string";
    const payload = isText ? (answer.body as string) : `${JSON.stringify(answer.body)}\n`;
    response.writeHead(answer.status, {
      ...answer.headers,
      "Content-Type": isText ? answer.contentType! : JSON_TYPE,
      "Content-Length": Buffer.byteLength(payload),
      "Cache-Control": "no-store",
    });
    response.end(payload);
  }

  private fail(response: ServerResponse, error: unknown, request: IncomingMessage): void {
    if (response.headersSent) {
      response.destroy();
      return;
    }
    if (error instanceof AdminHttpError) {
      this.send(response, {
        status: error.status,
        headers: error.headers,
        body: { error: { status: error.status, code: errorCode(error.status), message: error.message } },
      });
      return;
    }
    this.options.logger?.error(
      { err: error, method: request.method, url: request.url },
      "admin request failed",
    );
    this.send(response, {
      status: 500,
      body: {
        error: {
          status: 500,
          code: "internal_error",
          message: `${request.method} ${request.url} failed: ${(error as Error)?.message ?? String(error)}; the node's log (component "admin") has the details`,
        },
      },
    });
  }
}
