import type { ApiDefinition } from "../codec/api.js";
import { ProtocolDecodeError } from "../codec/errors.js";
import { Reader } from "../codec/reader.js";
import { Writer } from "../codec/writer.js";
import { type ApiKey, apiDefinitions, type RequestOf, type ResponseOf } from "../generated/registry.js";
import {
  type DecodedRequestHeader,
  decodeResponseHeader,
  encodeRequestHeader,
  encodeResponseHeader,
} from "./headers.js";

function definitionFor(apiKey: number, apiVersion: number): ApiDefinition {
  const api = (apiDefinitions as Record<number, ApiDefinition | undefined>)[apiKey];
  if (api === undefined)
    throw new RangeError(`API key ${apiKey} is not defined by any Kafka schema; check the key`);
  if (!api.isSupported(apiVersion)) {
    throw new RangeError(
      `${api.name} version ${apiVersion} is outside ${api.minVersion}-${api.maxVersion}; pick a version both sides support`,
    );
  }
  return api;
}

/** Writes the int32 frame size into the placeholder at the start of the first chunk. */
function finishFrame(writer: Writer): Buffer[] {
  const total = writer.length;
  const chunks = writer.chunks();
  const first = chunks[0]!;
  if (first.length < 4) throw new Error("internal: frame size placeholder was split from its frame");
  first.writeInt32BE(total - 4, 0);
  return chunks;
}

/**
 * A complete size-prefixed request frame as chunks for `socket.writev` (large records are referenced,
 * not copied). Concatenate them for a single Buffer.
 */
export function encodeRequestFrame<K extends ApiKey>(
  apiKey: K,
  apiVersion: number,
  correlationId: number,
  clientId: string | null,
  request: RequestOf<K>,
): Buffer[] {
  const api = definitionFor(apiKey, apiVersion);
  const writer = new Writer(256);
  writer.int32(0);
  encodeRequestHeader(writer, api.requestHeaderVersion(apiVersion), {
    apiKey,
    apiVersion,
    correlationId,
    clientId,
  });
  api.requestEncoders[apiVersion]!(writer, request);
  return finishFrame(writer);
}

/** A complete size-prefixed response frame as chunks; the header version follows Kafka's rules per API. */
export function encodeResponseFrame<K extends ApiKey>(
  apiKey: K,
  apiVersion: number,
  correlationId: number,
  response: ResponseOf<K>,
): Buffer[] {
  const api = definitionFor(apiKey, apiVersion);
  const writer = new Writer(256);
  writer.int32(0);
  encodeResponseHeader(writer, api.responseHeaderVersion(apiVersion), correlationId);
  api.responseEncoders[apiVersion]!(writer, response);
  return finishFrame(writer);
}

function withContext(error: unknown, context: string): unknown {
  if (error instanceof ProtocolDecodeError)
    return new ProtocolDecodeError(`${context}: ${error.message}`, error.offset);
  return error;
}

/**
 * Decodes the body of a request whose header `decodeRequestHeader` already read. `records` fields in
 * the result are zero-copy views of `frame`.
 */
export function decodeRequestBody<K extends ApiKey>(
  apiKey: K,
  header: DecodedRequestHeader,
  frame: Buffer,
): RequestOf<K> {
  if (header.apiKey !== apiKey) {
    throw new RangeError(
      `header is for API key ${header.apiKey}, not ${apiKey}; dispatch on header.apiKey first`,
    );
  }
  const api = definitionFor(apiKey, header.apiVersion);
  const reader = new Reader(frame, header.headerLength);
  try {
    return api.requestDecoders[header.apiVersion]!(reader) as RequestOf<K>;
  } catch (error) {
    throw withContext(
      error,
      `${api.name}Request v${header.apiVersion} (correlation id ${header.correlationId})`,
    );
  }
}

/** Decodes a response frame (without its size prefix) for a request sent as `apiKey`/`apiVersion`. */
export function decodeResponseFrame<K extends ApiKey>(
  apiKey: K,
  apiVersion: number,
  frame: Buffer,
): { correlationId: number; response: ResponseOf<K> } {
  const api = definitionFor(apiKey, apiVersion);
  const reader = new Reader(frame);
  try {
    const { correlationId } = decodeResponseHeader(reader, api.responseHeaderVersion(apiVersion));
    const response = api.responseDecoders[apiVersion]!(reader) as ResponseOf<K>;
    return { correlationId, response };
  } catch (error) {
    throw withContext(error, `${api.name}Response v${apiVersion}`);
  }
}
