import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "@raftka/monitoring";
import type { ApiRegistry } from "./api-registry.js";
import type { BufferPool } from "./buffer-pool.js";
import { Connection, STALLED_FRAME_DEADLINE_MS } from "./connection.js";
import type { FaultInjector } from "./fault-injection.js";
import { RequestMemoryBudget } from "./request-memory-budget.js";
import type { RequestMetrics } from "./request-metrics.js";

export interface ListenerSpec {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export interface BoundListener extends ListenerSpec {
  /** The port actually bound (differs from `port` when it was 0). */
  readonly boundPort: number;
}

export interface KafkaServerOptions {
  readonly registry: ApiRegistry;
  readonly maxRequestBytes: () => number;
  readonly idleTimeoutMs: () => number;
  /** `queued.max.request.bytes`: -1 for no limit. */
  readonly queuedMaxRequestBytes: () => number;
  readonly logger: Logger;
  readonly metrics: RequestMetrics;
  /** Test-only fault injection, handed to every connection. */
  readonly faults?: FaultInjector;
  /** The node's buffer pool, which large request frames are read into. */
  readonly buffers: BufferPool;
  /** Tests: how long a frame may hold up other connections (default STALLED_FRAME_DEADLINE_MS). */
  readonly stalledFrameDeadlineMs?: number;
}

/** How often connections are checked for a frame that holds up the others (Connection.checkStalledFrame). */
const STALLED_FRAME_CHECK_MS = 1000;

/** The Kafka listeners: accepts connections and hands each one to a Connection. */
export class KafkaServer {
  private readonly servers: Server[] = [];
  private readonly connections = new Set<Connection>();
  private readonly bound: BoundListener[] = [];
  private nextConnectionId = 1;
  private readonly budget: RequestMemoryBudget;
  private stalledFrameCheck: NodeJS.Timeout | undefined;

  constructor(private readonly options: KafkaServerOptions) {
    this.budget = new RequestMemoryBudget(options.queuedMaxRequestBytes, (held) =>
      options.metrics.requestBytesHeld(held),
    );
  }

  private checkStalledFrames(): void {
    const now = performance.now();
    const deadline = this.options.stalledFrameDeadlineMs ?? STALLED_FRAME_DEADLINE_MS;
    for (const connection of this.connections) connection.checkStalledFrame(now, deadline);
  }

  get listeners(): readonly BoundListener[] {
    return this.bound;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  async listen(listeners: readonly ListenerSpec[]): Promise<readonly BoundListener[]> {
    if (this.stalledFrameCheck === undefined) {
      this.stalledFrameCheck = setInterval(
        () => this.checkStalledFrames(),
        Math.min(STALLED_FRAME_CHECK_MS, this.options.stalledFrameDeadlineMs ?? STALLED_FRAME_CHECK_MS),
      );
      this.stalledFrameCheck.unref();
    }
    for (const listener of listeners) {
      const server = createServer({ noDelay: true, pauseOnConnect: true }, (socket) =>
        this.accept(socket, listener.name),
      );
      await new Promise<void>((resolve, reject) => {
        const onError = (error: NodeJS.ErrnoException) => {
          const hint =
            error.code === "EADDRINUSE"
              ? `port ${listener.port} is already in use; stop the other process or change listeners`
              : error.message;
          reject(
            new Error(
              `cannot listen on ${listener.host || "*"}:${listener.port} (${listener.name}): ${hint}`,
            ),
          );
        };
        server.once("error", onError);
        server.listen(listener.port, listener.host === "" ? undefined : listener.host, () => {
          server.off("error", onError);
          resolve();
        });
      });
      server.on("error", (error) =>
        this.options.logger.error({ err: error, listener: listener.name }, "listener error"),
      );
      const address = server.address();
      const boundPort = typeof address === "object" && address !== null ? address.port : listener.port;
      this.servers.push(server);
      this.bound.push({ ...listener, boundPort });
    }
    return this.bound;
  }

  private accept(socket: Socket, listenerName: string): void {
    const connection = new Connection(socket, {
      id: this.nextConnectionId++,
      listenerName,
      registry: this.options.registry,
      maxRequestBytes: this.options.maxRequestBytes(),
      idleTimeoutMs: this.options.idleTimeoutMs(),
      budget: this.budget,
      buffers: this.options.buffers,
      logger: this.options.logger,
      metrics: this.options.metrics,
      ...(this.options.faults ? { faults: this.options.faults } : {}),
      onClose: (closed) => {
        this.connections.delete(closed);
        this.options.metrics.connectionClosed(listenerName);
      },
    });
    this.connections.add(connection);
    this.options.metrics.connectionOpened(listenerName);
  }

  /** Graceful shutdown, step 1: no new connections, no new requests; requests in flight continue. */
  stopAccepting(): void {
    clearInterval(this.stalledFrameCheck);
    for (const server of this.servers) server.close();
    for (const connection of this.connections) connection.stopReading();
  }

  /** Step 2: resolves once every request in flight is answered, or at `deadline` (ms since the epoch). */
  async drain(deadline: number): Promise<void> {
    const drained = Promise.all([...this.connections].map((connection) => connection.drained()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      drained,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      }),
    ]);
    clearTimeout(timer);
  }

  /** Step 3: closes the connections (after the responses already written). */
  closeConnections(): void {
    for (const connection of this.connections) connection.end();
  }

  /** Closes everything at once. */
  destroy(): void {
    clearInterval(this.stalledFrameCheck);
    for (const server of this.servers) server.close();
    for (const connection of this.connections) connection.destroy();
  }
}
