import type { ApiDefinition } from "../codec/api.js";
import { ProtocolDecodeError } from "../codec/errors.js";
import { Reader, type TaggedField } from "../codec/reader.js";
import type { Writer } from "../codec/writer.js";
import { getApi } from "../generated/registry.js";
import { RequestHeaderCodec } from "../generated/requestHeader/index.js";
import { ResponseHeaderCodec } from "../generated/responseHeader/index.js";

/** What the broker learns from a request header before it touches the body. */
export interface DecodedRequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
  /** The API's definition, or undefined when no schema defines `apiKey`. */
  api: ApiDefinition | undefined;
  /** True when the schemas define `apiKey` at `apiVersion`; only then can the body be decoded. */
  supported: boolean;
  /** Request header version used to parse this header (0, 1 or 2). */
  headerVersion: number;
  /** Bytes the header occupies at the start of the frame; the body starts here. */
  headerLength: number;
  unknownTaggedFields?: TaggedField[];
}

/** The request header version Kafka would use; for versions we do not support, the closest guess. */
function requestHeaderVersionFor(api: ApiDefinition | undefined, apiVersion: number): number {
  if (api === undefined) return 1;
  if (api.isSupported(apiVersion)) return api.requestHeaderVersion(apiVersion);
  // A newer-than-known version of a flexible API still uses header v2 (Kafka parses it the same way).
  return api.firstFlexibleVersion !== null && apiVersion >= api.firstFlexibleVersion ? 2 : 1;
}

/**
 * Decodes the request header at the start of `frame` (a frame without its size prefix). An unknown
 * API key or version still yields apiKey, apiVersion and correlationId, so the broker can answer
 * UNSUPPORTED_VERSION (ApiVersions) or close the connection with a precise log line.
 */
export function decodeRequestHeader(frame: Buffer): DecodedRequestHeader {
  if (frame.length < 8) {
    throw new ProtocolDecodeError(
      `request frame of ${frame.length} bytes is shorter than the 8-byte request header prefix (api key, version, correlation id); the client is not speaking the Kafka protocol`,
      0,
    );
  }
  const apiKey = frame.readInt16BE(0);
  const apiVersion = frame.readInt16BE(2);
  const correlationId = frame.readInt32BE(4);
  const api = getApi(apiKey);
  const supported = api?.isSupported(apiVersion) ?? false;
  const headerVersion = requestHeaderVersionFor(api, apiVersion);
  const reader = new Reader(frame);
  try {
    const header = RequestHeaderCodec.decoders[headerVersion]!(reader);
    const decoded: DecodedRequestHeader = {
      apiKey,
      apiVersion,
      correlationId,
      clientId: header.clientId ?? null,
      api,
      supported,
      headerVersion,
      headerLength: reader.offset,
    };
    if (header.unknownTaggedFields !== undefined) decoded.unknownTaggedFields = header.unknownTaggedFields;
    return decoded;
  } catch (error) {
    // For an API or version we cannot parse anyway, the identifying prefix is all the broker needs.
    if (!supported && error instanceof ProtocolDecodeError) {
      return {
        apiKey,
        apiVersion,
        correlationId,
        clientId: null,
        api,
        supported,
        headerVersion,
        headerLength: 8,
      };
    }
    if (error instanceof ProtocolDecodeError) {
      throw new ProtocolDecodeError(
        `request header v${headerVersion} of ${api!.name} v${apiVersion} (correlation id ${correlationId}): ${error.message}`,
        error.offset,
      );
    }
    throw error;
  }
}

export interface RequestHeaderFields {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

export function encodeRequestHeader(
  writer: Writer,
  headerVersion: number,
  header: RequestHeaderFields,
): void {
  const encode = RequestHeaderCodec.encoders[headerVersion];
  if (encode === undefined)
    throw new RangeError(`request header version ${headerVersion} does not exist; use 0, 1 or 2`);
  encode(writer, {
    requestApiKey: header.apiKey,
    requestApiVersion: header.apiVersion,
    correlationId: header.correlationId,
    clientId: header.clientId,
  });
}

export function encodeResponseHeader(writer: Writer, headerVersion: number, correlationId: number): void {
  const encode = ResponseHeaderCodec.encoders[headerVersion];
  if (encode === undefined)
    throw new RangeError(`response header version ${headerVersion} does not exist; use 0 or 1`);
  encode(writer, { correlationId });
}

export function decodeResponseHeader(reader: Reader, headerVersion: number): { correlationId: number } {
  const decode = ResponseHeaderCodec.decoders[headerVersion];
  if (decode === undefined)
    throw new RangeError(`response header version ${headerVersion} does not exist; use 0 or 1`);
  return decode(reader);
}
