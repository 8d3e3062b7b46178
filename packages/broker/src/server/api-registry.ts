import { type ApiKey, apiDefinitions, type RequestOf, type ResponseOf } from "@raftka/protocol";

/** What a handler learns about the request besides its body. */
export interface RequestContext {
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
  /** Name of the listener the request arrived on (Metadata answers with that listener's addresses). */
  readonly listenerName: string;
  readonly connectionId: number;
  readonly clientAddress: string;
  /** Aborted when the connection closes: long waits (parked fetches) stop holding resources for nobody. */
  readonly connectionClosed: AbortSignal;
  /**
   * Runs `callback` once the socket has taken every byte of this request's response, so that buffers the
   * response points into may be reused. Never runs if the response is not written (connection closed).
   */
  onResponseWritten(callback: () => void): void;
  /**
   * Lets the node reuse the buffer this request arrived in once the handler has finished and `released`
   * resolves to true. Only a handler that knows every reference to the request's bytes (its records)
   * has ended by then may call it: without the call the buffer is left to the garbage collector, which
   * is right for a request whose bytes live on (a JoinGroup's member metadata, for one).
   */
  releaseRequestBufferWhen(released: Promise<boolean>): void;
}

/**
 * One Kafka API: the versions this broker advertises and a version-independent handler working on the
 * generated codec's types. The handler may return synchronously; anything order-sensitive (appends) must
 * be started before its first `await`, because requests are handed over in arrival order.
 */
export interface ApiHandler<K extends ApiKey = ApiKey> {
  readonly apiKey: K;
  readonly minVersion: number;
  readonly maxVersion: number;
  handle(request: RequestOf<K>, context: RequestContext): ResponseOf<K> | Promise<ResponseOf<K>>;
  /** False when the client expects no response (Produce with acks=0). */
  expectsResponse?(request: RequestOf<K>): boolean;
}

/** The APIs the broker serves. Other parts of the broker (groups, transactions) register theirs here. */
export class ApiRegistry {
  private readonly handlers = new Map<number, ApiHandler>();

  register<K extends ApiKey>(handler: ApiHandler<K>): void {
    const definition = apiDefinitions[handler.apiKey];
    if (handler.minVersion < definition.minVersion || handler.maxVersion > definition.maxVersion) {
      throw new RangeError(
        `${definition.name} handler advertises ${handler.minVersion}-${handler.maxVersion} but the codec only knows ${definition.minVersion}-${definition.maxVersion}`,
      );
    }
    if (this.handlers.has(handler.apiKey)) {
      throw new Error(`a handler for ${definition.name} is already registered`);
    }
    this.handlers.set(handler.apiKey, handler as unknown as ApiHandler);
  }

  get(apiKey: number): ApiHandler | undefined {
    return this.handlers.get(apiKey);
  }

  /** Every served API with the version range advertised in ApiVersions, by API key. */
  advertised(): { apiKey: number; minVersion: number; maxVersion: number }[] {
    return [...this.handlers.values()]
      .map(({ apiKey, minVersion, maxVersion }) => ({ apiKey, minVersion, maxVersion }))
      .sort((a, b) => a.apiKey - b.apiKey);
  }
}

export function apiName(apiKey: number): string {
  return (apiDefinitions as Record<number, { name: string } | undefined>)[apiKey]?.name ?? `ApiKey${apiKey}`;
}
