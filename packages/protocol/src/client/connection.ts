import { createConnection, type Socket } from "node:net";
import { FrameSplitter } from "../frames/frame-splitter.js";
import { decodeResponseFrame, encodeRequestFrame } from "../frames/messages.js";
import { type ApiKey, apiDefinitions, type RequestOf, type ResponseOf } from "../generated/registry.js";

/** The connection failed or closed; requests still in flight are rejected with this. */
export class KafkaConnectionError extends Error {
  override readonly name: string = "KafkaConnectionError";
}

/** No response arrived in time. The connection is closed, as Kafka's own client does. */
export class RequestTimeoutError extends KafkaConnectionError {
  override readonly name = "RequestTimeoutError";
}

export interface KafkaConnectionOptions {
  /** Client id written into every request header; null sends a null client id. */
  clientId?: string | null;
  /** Default time allowed for each response. */
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Largest response frame accepted. */
  maxFrameSize?: number;
}

export interface SendOptions {
  timeoutMs?: number;
}

interface InFlight {
  correlationId: number;
  apiKey: ApiKey;
  apiVersion: number;
  resolve: (response: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

const DEFAULTS = {
  clientId: "raftka",
  requestTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  maxFrameSize: 256 * 1024 * 1024,
};

/**
 * A minimal Kafka client connection: typed requests, pipelining with responses matched in order by
 * correlation id, per-request timeouts, and fire-and-forget sends for acks=0 Produce.
 */
export class KafkaConnection {
  private socket: Socket | null = null;
  private readonly splitter: FrameSplitter;
  private readonly inFlight: InFlight[] = [];
  private nextCorrelationId = 1;
  private closedWith: Error | null = null;
  private readonly options: Required<KafkaConnectionOptions>;
  private endpoint = "(not connected)";

  constructor(options: KafkaConnectionOptions = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.splitter = new FrameSplitter(this.options.maxFrameSize);
  }

  /** Opens a connection; resolves once TCP is established. */
  static async connect(
    host: string,
    port: number,
    options?: KafkaConnectionOptions,
  ): Promise<KafkaConnection> {
    const connection = new KafkaConnection(options);
    await connection.connect(host, port);
    return connection;
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Requests sent and still waiting for a response. */
  get pendingRequests(): number {
    return this.inFlight.length;
  }

  connect(host: string, port: number): Promise<void> {
    if (this.socket !== null)
      throw new KafkaConnectionError(`already connected to ${this.endpoint}; create a new KafkaConnection`);
    this.endpoint = `${host}:${port}`;
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host, port });
      this.socket = socket;
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        const error = new KafkaConnectionError(
          `could not connect to ${this.endpoint} within ${this.options.connectTimeoutMs} ms; check that the broker is running and reachable`,
        );
        this.fail(error);
        reject(error);
      }, this.options.connectTimeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.on("data", (chunk: Buffer) => this.onData(chunk));
      socket.on("error", (cause) => {
        clearTimeout(timer);
        const error = new KafkaConnectionError(
          `connection to ${this.endpoint} failed: ${cause.message}; check the broker address and that it is running`,
          { cause },
        );
        this.fail(error);
        reject(error);
      });
      socket.on("close", () => {
        clearTimeout(timer);
        const error = new KafkaConnectionError(
          `connection to ${this.endpoint} closed by the broker; reconnect and retry (the broker log says why)`,
        );
        this.fail(error);
        reject(error);
      });
    });
  }

  /** Sends a request and resolves with its decoded response. */
  send<K extends ApiKey>(
    apiKey: K,
    apiVersion: number,
    request: RequestOf<K>,
    options: SendOptions = {},
  ): Promise<ResponseOf<K>> {
    return new Promise<ResponseOf<K>>((resolve, reject) => {
      const socket = this.writableSocket();
      const correlationId = this.takeCorrelationId();
      const frame = encodeRequestFrame(apiKey, apiVersion, correlationId, this.options.clientId, request);
      const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs;
      const timer = setTimeout(() => {
        this.fail(
          new RequestTimeoutError(
            `no response to ${apiDefinitions[apiKey].name} v${apiVersion} (correlation id ${correlationId}) from ${this.endpoint} within ${timeoutMs} ms; the connection was closed, reconnect and retry`,
          ),
        );
      }, timeoutMs);
      this.inFlight.push({
        correlationId,
        apiKey,
        apiVersion,
        resolve: resolve as (response: unknown) => void,
        reject,
        timer,
      });
      this.write(socket, frame);
    });
  }

  /**
   * Sends a request the broker does not answer (Produce with acks=0). Resolves once the bytes are handed
   * to the operating system.
   */
  sendNoResponse<K extends ApiKey>(apiKey: K, apiVersion: number, request: RequestOf<K>): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = this.writableSocket();
      const frame = encodeRequestFrame(
        apiKey,
        apiVersion,
        this.takeCorrelationId(),
        this.options.clientId,
        request,
      );
      this.write(socket, frame, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Closes the connection; requests still in flight are rejected. */
  close(): Promise<void> {
    const socket = this.socket;
    this.fail(
      new KafkaConnectionError(
        `connection to ${this.endpoint} was closed by this client before the response arrived`,
      ),
    );
    if (socket === null || socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      socket.once("close", () => resolve());
      socket.destroy();
    });
  }

  private writableSocket(): Socket {
    if (this.closedWith !== null) throw this.closedWith;
    if (this.socket === null) throw new KafkaConnectionError("not connected; call connect(host, port) first");
    return this.socket;
  }

  private takeCorrelationId(): number {
    const id = this.nextCorrelationId;
    this.nextCorrelationId = id === 0x7fffffff ? 1 : id + 1;
    return id;
  }

  private write(socket: Socket, chunks: Buffer[], callback?: (error?: Error | null) => void): void {
    socket.cork();
    for (let i = 0; i < chunks.length; i++) {
      socket.write(chunks[i]!, i === chunks.length - 1 ? callback : undefined);
    }
    socket.uncork();
  }

  private onData(chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.splitter.push(chunk);
    } catch (error) {
      this.fail(
        new KafkaConnectionError(
          `unreadable response stream from ${this.endpoint}: ${(error as Error).message}`,
        ),
      );
      return;
    }
    for (const frame of frames) {
      const request = this.inFlight.shift();
      if (request === undefined) {
        this.fail(
          new KafkaConnectionError(
            `${this.endpoint} sent a response nobody asked for; closing the connection`,
          ),
        );
        return;
      }
      clearTimeout(request.timer);
      const correlationId = frame.length >= 4 ? frame.readInt32BE(0) : Number.NaN;
      if (correlationId !== request.correlationId) {
        request.reject(
          new KafkaConnectionError(
            `${this.endpoint} answered correlation id ${correlationId} while ${request.correlationId} was the oldest request; responses must arrive in order, so the connection was closed`,
          ),
        );
        this.fail(new KafkaConnectionError(`${this.endpoint} answered out of order; reconnect and retry`));
        return;
      }
      try {
        request.resolve(decodeResponseFrame(request.apiKey, request.apiVersion, frame).response);
      } catch (error) {
        // The framing is intact, so only this response is lost; later ones still decode.
        request.reject(error as Error);
      }
    }
  }

  private fail(error: Error): void {
    if (this.closedWith === null) this.closedWith = error;
    const pending = this.inFlight.splice(0);
    for (const request of pending) {
      clearTimeout(request.timer);
      request.reject(error);
    }
    if (this.socket !== null && !this.socket.destroyed) this.socket.destroy();
  }
}
