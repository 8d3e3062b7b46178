import type { Socket } from "node:net";
import type { Logger } from "@raftka/monitoring";
import {
  ApiKey,
  type DecodedRequestHeader,
  decodeRequestBody,
  decodeRequestHeader,
  ErrorCode,
  encodeResponseFrame,
  FrameReader,
  feedSocket,
} from "@raftka/protocol";
import { type ApiHandler, type ApiRegistry, apiName, type RequestContext } from "./api-registry.js";
import { type BufferPool, frameAllocator, POOLED_FRAME_MIN_BYTES } from "./buffer-pool.js";
import type { FaultInjector } from "./fault-injection.js";
import type { RequestMemoryBudget } from "./request-memory-budget.js";
import { forEachErrorCode, type RequestMetrics } from "./request-metrics.js";

/**
 * Limits that keep one client from taking the node's memory: a connection stops being read while it has
 * this many requests in flight, or this many response bytes the socket has not taken yet; and it starts
 * handling no further request while that many response bytes are unsent, until the socket drains.
 */
export const MAX_IN_FLIGHT_REQUESTS = 256;
export const MAX_PENDING_RESPONSE_BYTES = 32 * 1024 * 1024;

export interface ConnectionOptions {
  readonly id: number;
  readonly listenerName: string;
  readonly registry: ApiRegistry;
  /** `socket.request.max.bytes`: larger frames close the connection. */
  readonly maxRequestBytes: number;
  /** `connections.max.idle.ms`. */
  readonly idleTimeoutMs: number;
  /** `queued.max.request.bytes`, shared by every connection of the node. */
  readonly budget: RequestMemoryBudget;
  readonly logger: Logger;
  readonly metrics: RequestMetrics;
  readonly onClose: (connection: Connection) => void;
  /** Test-only fault injection (test.fault.injection.enable); absent in normal operation. */
  readonly faults?: FaultInjector;
  /** The node's buffer pool: large frames are read into its buffers (see releaseRequestBufferWhen). */
  readonly buffers: BufferPool;
}

/**
 * How long a large frame may hold up the node's other connections: while the request budget is exhausted,
 * only the frame that started arriving first is read on (see RequestMemoryBudget); if its client has not
 * sent the rest this long after it got that turn, its connection is closed.
 */
export const STALLED_FRAME_DEADLINE_MS = 30_000;
/** How long a connection being closed waits for its client to take the last answers. */
const CLOSE_GRACE_MS = 5_000;

/**
 * Frames from this size up are charged to the node's budget with the bytes that have arrived while they
 * arrive, then whole until their request is handled (smaller frames arrive in one or a few reads).
 */
const LARGE_FRAME_BYTES = POOLED_FRAME_MIN_BYTES;

/** One request's place in the response order; filled when its handler finishes. */
interface ResponseSlot {
  readonly api: string;
  chunks: Buffer[] | null;
  /** When `chunks` was filled (performance.now()). */
  readyAt: number;
  /** What runs once the socket has taken the response (RequestContext.onResponseWritten). */
  written: (() => void)[] | null;
}

/**
 * A client connection. Requests are decoded as their frames arrive and handled in arrival order, one at a
 * time as in Kafka (which mutes a connection until its request is answered), so that a request sees what
 * every earlier one on the connection did: an OffsetFetch or OffsetDelete after an OffsetCommit sees the
 * commit. The one exception is a run of Produce requests, which are handled together (pipelining: each
 * partition's log keeps their appends in arrival order). Responses are written strictly in request order.
 * Anything wrong with the bytes closes this connection only, with a log line saying why, once the requests
 * read before the bad bytes are answered.
 */
export class Connection {
  private readonly reader: FrameReader;
  private readonly slots: ResponseSlot[] = [];
  private readonly clientAddress: string;
  private readingPaused = false;
  private stopped = false;
  private closed = false;
  private drainWaiters: (() => void)[] = [];
  private closeWhenDrained = false;
  private ending = false;
  private readonly closedController = new AbortController();
  private readonly onBudgetRecovered = () => this.updateBackpressure();
  /**
   * Bytes charged to the budget for large frames whose requests have not been handled yet: the bytes of
   * the frame arriving that are here, and whole frames that arrived.
   */
  private unhandledFrameBytes = 0;
  /** When the large frame arriving began (performance.now()), or -1 when none is arriving. */
  private arrivingSince = -1;
  /** Of unhandledFrameBytes, the bytes of the frame arriving (RequestMemoryBudget.arrived). */
  private arrivingBytes = 0;
  /** Since when (performance.now()) that frame holds up other connections, or -1; see checkStalledFrame. */
  private holdingUpSince = -1;
  private readonly stopWatchingBudget: () => void;
  /** Handlers started and not yet finished, and how many of them are not Produce. */
  private handling = 0;
  private handlingOtherThanProduce = 0;
  /** Decoded requests waiting for the ones before them (see the class comment), in arrival order. */
  private readonly waiting: Array<{
    readonly produce: boolean;
    readonly start: () => void;
    /** The connection closed first: gives back what the request held (its Produce charge). */
    readonly drop: () => void;
  }> = [];

  constructor(
    private readonly socket: Socket,
    private readonly options: ConnectionOptions,
  ) {
    const allocateFrame = frameAllocator(options.buffers);
    this.reader = new FrameReader(options.maxRequestBytes, {
      allocate: (size) => {
        // A frame is allocated once the one before it has arrived whole.
        if (this.arrivingSince >= 0) this.largeFrameArrived();
        if (size >= LARGE_FRAME_BYTES) {
          options.budget.frameStarted(this.onBudgetRecovered);
          this.arrivingSince = performance.now();
        }
        return allocateFrame(size);
      },
    });
    // Stop reading as soon as the budget runs out, before the next read brings in more.
    this.stopWatchingBudget = options.budget.onExhausted(() => this.updateBackpressure());
    this.clientAddress = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    socket.setTimeout(options.idleTimeoutMs, () => {
      this.options.logger.debug(
        { client: this.clientAddress, idleMs: options.idleTimeoutMs },
        "closing idle connection (connections.max.idle.ms)",
      );
      this.destroy();
    });
    feedSocket(socket, this.reader, (length) => this.onRead(length));
    socket.on("drain", () => {
      // Requests not started while the client's responses piled up (see mayStart).
      this.startWaiting();
      this.updateBackpressure();
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "ECONNRESET" && error.code !== "EPIPE") {
        this.options.logger.debug({ err: error, client: this.clientAddress }, "connection error");
      }
    });
    socket.on("close", () => this.onClosed());
    // A connection opened while the node holds its limit of request bytes waits like the others.
    this.updateBackpressure();
    if (!this.readingPaused) socket.resume();
  }

  get id(): number {
    return this.options.id;
  }

  get inFlightRequests(): number {
    return this.slots.length;
  }

  /** Graceful shutdown, step 1: read no more requests; those in flight still get their responses. */
  stopReading(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.socket.pause();
    // Frames that arrived (or part did) and will never be handled hold no memory the budget must count.
    if (this.arrivingSince >= 0) this.largeFrameArrived();
    if (this.unhandledFrameBytes > 0) this.options.budget.release(this.unhandledFrameBytes);
    this.unhandledFrameBytes = 0;
  }

  /**
   * Called about once a second by the listener: closes this connection if the large frame it is receiving
   * has held up the node's other connections (the budget exhausted, this frame the one read on) for
   * longer than `deadlineMs`. Kafka has no such limit; without one, a client that sent most of a frame and
   * then stopped, or sent its rest a byte at a time, would keep every other client waiting.
   */
  checkStalledFrame(now: number, deadlineMs: number): void {
    const budget = this.options.budget;
    if (
      this.closed ||
      this.arrivingSince < 0 ||
      budget.recovered() ||
      !budget.finishesFirst(this.onBudgetRecovered)
    ) {
      this.holdingUpSince = -1;
      return;
    }
    if (this.holdingUpSince < 0) this.holdingUpSince = now;
    else if (now - this.holdingUpSince >= deadlineMs) {
      this.options.logger.info(
        {
          client: this.clientAddress,
          listener: this.options.listenerName,
          frameBytes: this.reader.partialFrameSize,
          receivedBytes: this.reader.partialFrameFilled,
        },
        `closing connection: its request frame has held up other connections (queued.max.request.bytes is exhausted) for ${deadlineMs} ms without arriving`,
      );
      this.destroy();
    }
  }

  /** Resolves once every request read so far has been answered and written to the socket. */
  drained(): Promise<void> {
    if (this.slots.length === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Closes after the responses already queued are written. */
  end(): void {
    if (!this.closed) this.socket.end();
  }

  destroy(): void {
    if (!this.closed) this.socket.destroy();
  }

  private onRead(length: number): void {
    if (this.stopped) return;
    let frames: Buffer[];
    try {
      frames = this.reader.filled(length);
    } catch (error) {
      this.reject(`unreadable frame: ${(error as Error).message}`);
      return;
    }
    this.chargeArrivedBytes(frames);
    for (const frame of frames) {
      if (this.closed || this.stopped) return;
      this.handleFrame(frame);
    }
    // A bad size prefix after the frames above: they were requests, and are answered before the close.
    const failure = this.reader.failure;
    if (failure !== null && !this.stopped) this.reject(`unreadable frame: ${failure.message}`);
    this.updateBackpressure();
  }

  /**
   * Charges the budget with the large frames' bytes this read brought: whole frames it completed, and the
   * bytes so far of the one arriving. A frame's announced size is not charged: a client holds only what
   * it sent.
   */
  private chargeArrivedBytes(frames: Buffer[]): void {
    const reader = this.reader;
    const arriving = reader.partialFrameSize >= LARGE_FRAME_BYTES ? reader.partialFrameFilled : 0;
    let bytes = arriving;
    for (const frame of frames) if (frame.length >= LARGE_FRAME_BYTES) bytes += frame.length;
    if (arriving !== this.arrivingBytes) {
      this.options.budget.arrived(arriving - this.arrivingBytes);
      this.arrivingBytes = arriving;
    }
    if (bytes > this.unhandledFrameBytes) {
      const added = bytes - this.unhandledFrameBytes;
      this.unhandledFrameBytes = bytes;
      this.options.budget.charge(added);
    }
    if (this.arrivingSince >= 0 && reader.partialFrameSize < LARGE_FRAME_BYTES) this.largeFrameArrived();
  }

  /** The large frame arriving is here whole (or will never be): the next one in line may go on. */
  private largeFrameArrived(): void {
    this.arrivingSince = -1;
    this.holdingUpSince = -1;
    if (this.arrivingBytes !== 0) this.options.budget.arrived(-this.arrivingBytes);
    this.arrivingBytes = 0;
    this.options.budget.frameEnded(this.onBudgetRecovered);
  }

  private handleFrame(frame: Buffer): void {
    const precharged = frame.length >= LARGE_FRAME_BYTES;
    if (precharged) this.unhandledFrameBytes -= frame.length;
    const keptCharge = this.dispatch(frame, precharged);
    if (precharged && !keptCharge) this.options.budget.release(frame.length);
  }

  /**
   * Decodes the request and hands it to its handler. Returns whether the request holds the frame's charge
   * (a Produce, until its handler is done); a large frame was charged when its buffer was taken.
   */
  private dispatch(frame: Buffer, precharged: boolean): boolean {
    const readAt = performance.now();
    let header: DecodedRequestHeader;
    try {
      header = decodeRequestHeader(frame);
    } catch (error) {
      this.reject(`unreadable request header: ${(error as Error).message}`);
      return false;
    }
    const handler = this.options.registry.get(header.apiKey);
    const name = apiName(header.apiKey);
    if (
      handler === undefined ||
      !header.supported ||
      header.apiVersion < handler.minVersion ||
      header.apiVersion > handler.maxVersion
    ) {
      if (header.apiKey === ApiKey.ApiVersions && handler !== undefined) {
        this.answerUnsupportedApiVersions(header, handler);
        return false;
      }
      this.reject(
        handler === undefined
          ? `API key ${header.apiKey} (${name}) is not served by this broker (correlation id ${header.correlationId}); the client must use the APIs listed in ApiVersions`
          : `${name} version ${header.apiVersion} is not supported (this broker serves ${handler.minVersion}-${handler.maxVersion}, correlation id ${header.correlationId}); the client must pick a version from ApiVersions`,
      );
      return false;
    }
    let request: unknown;
    try {
      request = decodeRequestBody(header.apiKey as ApiKey, header, frame);
    } catch (error) {
      this.reject(`malformed request: ${(error as Error).message}`);
      return false;
    }
    const expectsResponse = handler.expectsResponse?.(request as never) ?? true;
    const slot: ResponseSlot | null = expectsResponse
      ? { api: name, chunks: null, readyAt: 0, written: null }
      : null;
    if (slot) this.slots.push(slot);
    let frameReleased: Promise<boolean> | undefined;
    const context: RequestContext = {
      apiVersion: header.apiVersion,
      correlationId: header.correlationId,
      clientId: header.clientId,
      listenerName: this.options.listenerName,
      connectionId: this.options.id,
      clientAddress: this.clientAddress,
      connectionClosed: this.closedController.signal,
      onResponseWritten: (callback) => {
        if (slot === null) return;
        slot.written ??= [];
        slot.written.push(callback);
      },
      releaseRequestBufferWhen: (released) => {
        frameReleased = released;
      },
    };
    // A Produce frame (its records are slices of it) counts against the node's budget until its handler
    // is done with it; a Produce always ends, committed, failed or timed out. Requests that may park for
    // minutes (long-poll Fetch, JoinGroup) are small and must not hold the budget meanwhile: with
    // them counted, a few parked ones stopped every connection on the node.
    const budget = this.options.budget;
    const charged = header.apiKey === ApiKey.Produce ? frame.length : 0;
    let held = charged > 0;
    const holdsCharge = held;
    if (held && !precharged) budget.charge(charged);
    const release = () => {
      if (!held) return;
      held = false;
      budget.release(charged);
    };
    const finish = (response: unknown, startedAt: number) => {
      release();
      this.complete(slot, header, response, startedAt);
      // A failed handler may have left anything behind: its frame is never reused.
      frameReleased?.then(
        (released) => {
          if (released) this.options.buffers.give(frame);
        },
        () => {},
      );
    };
    const failed = (error: unknown) => {
      release();
      this.handlerFailed(header, error);
    };
    const produce = header.apiKey === ApiKey.Produce;
    const start = () => {
      this.handling++;
      if (!produce) this.handlingOtherThanProduce++;
      const done = () => {
        this.handling--;
        if (!produce) this.handlingOtherThanProduce--;
        this.startWaiting();
      };
      const startedAt = performance.now();
      // Queued includes any wait for the requests before it on this connection.
      this.options.metrics.received(name, frame.length + 4, (startedAt - readAt) / 1000);
      try {
        const result = handler.handle(request as never, context);
        if (result instanceof Promise) {
          result.then(
            (response) => {
              done();
              finish(response, startedAt);
            },
            (error) => {
              done();
              failed(error);
            },
          );
        } else {
          done();
          finish(result, startedAt);
        }
      } catch (error) {
        done();
        failed(error);
      }
    };
    if (this.mayStart(produce)) start();
    else this.waiting.push({ produce, start, drop: release });
    return holdsCharge;
  }

  /**
   * Whether a request may start now: nothing waits before it, what runs is at most other Produce, and the
   * client has taken its responses (fewer than MAX_PENDING_RESPONSE_BYTES unsent). Stopping reading alone
   * does not bound memory: a client that pipelines requests and never reads would have every request
   * already read answered, each response queued on the socket. The 'drain' event starts them again.
   */
  private mayStart(produce: boolean): boolean {
    return this.waiting.length === 0 && this.nothingInTheWay(produce) && !this.responsesPiledUp();
  }

  private responsesPiledUp(): boolean {
    return this.socket.writableLength >= MAX_PENDING_RESPONSE_BYTES;
  }

  private nothingInTheWay(produce: boolean): boolean {
    return produce ? this.handlingOtherThanProduce === 0 : this.handling === 0;
  }

  private startWaiting(): void {
    while (
      this.waiting.length > 0 &&
      !this.closed &&
      this.nothingInTheWay(this.waiting[0]!.produce) &&
      !this.responsesPiledUp()
    ) {
      this.waiting.shift()!.start();
    }
  }

  private complete(
    slot: ResponseSlot | null,
    header: DecodedRequestHeader,
    response: unknown,
    startedAt: number,
  ): void {
    if (this.closed) return;
    const name = apiName(header.apiKey);
    if (slot === null) {
      this.options.metrics.answered(name, (performance.now() - startedAt) / 1000, 0, response);
      // A client that asked for no response learns of a failure only by losing the connection (as in Kafka).
      let failed = false;
      forEachErrorCode(response, () => {
        failed = true;
      });
      if (failed) {
        this.options.logger.debug(
          { client: this.clientAddress, api: name },
          "closing connection: a request sent without response (acks=0) failed",
        );
        this.closeAfterPendingResponses();
      }
      return;
    }
    if (this.options.faults?.dropResponse(header.apiKey)) {
      this.options.logger.info(
        { client: this.clientAddress, api: name, correlationId: header.correlationId },
        "test fault injection: closing the connection instead of answering",
      );
      this.destroy();
      return;
    }
    let chunks: Buffer[];
    try {
      chunks = encodeResponseFrame(
        header.apiKey as ApiKey,
        header.apiVersion,
        header.correlationId,
        response as never,
      );
    } catch (error) {
      this.handlerFailed(header, error);
      return;
    }
    let size = 0;
    for (const chunk of chunks) size += chunk.length;
    const readyAt = performance.now();
    this.options.metrics.answered(name, (readyAt - startedAt) / 1000, size, response);
    slot.chunks = chunks;
    slot.readyAt = readyAt;
    this.writeReadyResponses();
  }

  /** Writes the answered prefix of the response queue; a later response never overtakes an earlier one. */
  private writeReadyResponses(): void {
    if (this.slots[0]?.chunks == null) return;
    const now = performance.now();
    this.socket.cork();
    while (this.slots.length > 0 && this.slots[0]!.chunks !== null) {
      const { api, chunks, readyAt, written } = this.slots.shift()!;
      const metrics = this.options.metrics;
      metrics.responseWritten(api, (now - readyAt) / 1000);
      const last = chunks!.length - 1;
      for (let index = 0; index < last; index++) this.socket.write(chunks![index]!);
      // Called once the kernel has the response's last byte, so all of it (a socket writes in order). The
      // `written` callbacks may reuse the response's buffers: after an error they must not run at all.
      this.socket.write(chunks![last]!, (error) => {
        if (error) return;
        metrics.responseSent(api, (performance.now() - now) / 1000);
        if (written !== null) for (const callback of written) callback();
      });
    }
    this.socket.uncork();
    if (this.slots.length === 0) {
      for (const resolve of this.drainWaiters.splice(0)) resolve();
      if (this.closeWhenDrained) this.endThenDestroy();
    }
    this.updateBackpressure();
  }

  private closeAfterPendingResponses(): void {
    this.stopReading();
    if (this.slots.length === 0) this.endThenDestroy();
    else this.closeWhenDrained = true;
  }

  /**
   * Closes the connection once its answers are with the kernel. Not a half-close left to the client: this
   * side reads nothing any more, so the client's end would never be seen (and a client still sending
   * blocks once the receive buffer is full), leaving both sides open until connections.max.idle.ms. A
   * client that does not take its answers either is cut off after CLOSE_GRACE_MS.
   */
  private endThenDestroy(): void {
    if (this.ending) return;
    this.ending = true;
    const socket = this.socket;
    socket.end(() => socket.destroy());
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /**
   * Stops reading while too much is in flight or unsent, here or (request bytes) on the whole node;
   * resumes once each is down to half its limit.
   */
  private updateBackpressure(): void {
    if (this.closed || this.stopped) return;
    const unsent = this.socket.writableLength;
    const budget = this.options.budget;
    // The large frame that started arriving first goes on while the budget is exhausted: the frames
    // arriving hold their bytes, and with all of them stopped none would ever finish.
    if (!this.readingPaused) {
      if (
        this.slots.length >= MAX_IN_FLIGHT_REQUESTS ||
        unsent >= MAX_PENDING_RESPONSE_BYTES ||
        (budget.exhausted() && !this.finishesFirst())
      ) {
        this.readingPaused = true;
        this.socket.pause();
      }
    } else if (
      this.slots.length <= MAX_IN_FLIGHT_REQUESTS / 2 &&
      unsent <= MAX_PENDING_RESPONSE_BYTES / 2 &&
      (budget.recovered() || this.finishesFirst())
    ) {
      this.readingPaused = false;
      this.socket.resume();
    }
    // Other connections' requests may be what holds the budget: their release has to wake this one.
    if (this.readingPaused && !budget.recovered()) budget.whenRecovered(this.onBudgetRecovered);
  }

  private finishesFirst(): boolean {
    return this.arrivingSince >= 0 && this.options.budget.finishesFirst(this.onBudgetRecovered);
  }

  /**
   * Kafka's answer to an ApiVersions version it does not know: a v0 response with UNSUPPORTED_VERSION and the
   * supported range, so the client retries with a version both sides speak.
   */
  private answerUnsupportedApiVersions(header: DecodedRequestHeader, handler: ApiHandler): void {
    const slot: ResponseSlot = {
      api: apiName(ApiKey.ApiVersions),
      readyAt: performance.now(),
      chunks: encodeResponseFrame(ApiKey.ApiVersions, 0, header.correlationId, {
        errorCode: ErrorCode.UNSUPPORTED_VERSION,
        apiKeys: [
          { apiKey: ApiKey.ApiVersions, minVersion: handler.minVersion, maxVersion: handler.maxVersion },
        ],
      }),
      written: null,
    };
    this.slots.push(slot);
    this.writeReadyResponses();
  }

  private handlerFailed(header: DecodedRequestHeader, error: unknown): void {
    this.options.logger.error(
      { err: error, client: this.clientAddress, api: apiName(header.apiKey), apiVersion: header.apiVersion },
      "request handler failed; closing the connection (this is a Raftka bug: please report it with this log line)",
    );
    this.destroy();
  }

  /**
   * Bad bytes from the client: say why in the log and close this connection only. As in Kafka, the
   * requests read before the bad frame are still handled and answered first: a Produce among them may
   * have been appended, and a client that saw no answer would send it again.
   */
  private reject(reason: string): void {
    this.options.logger.info(
      { client: this.clientAddress, listener: this.options.listenerName },
      `closing connection: ${reason}`,
    );
    this.closeAfterPendingResponses();
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.slots.length = 0;
    this.options.budget.forget(this.onBudgetRecovered);
    this.stopWatchingBudget();
    // Frames charged and never handled: the one arriving, or any the connection stopped before.
    if (this.arrivingSince >= 0) this.largeFrameArrived();
    if (this.unhandledFrameBytes > 0) this.options.budget.release(this.unhandledFrameBytes);
    this.unhandledFrameBytes = 0;
    this.closedController.abort();
    for (const request of this.waiting.splice(0)) request.drop();
    for (const resolve of this.drainWaiters.splice(0)) resolve();
    this.options.onClose(this);
  }
}
