import type { Reader } from "./reader.js";
import type { Writer } from "./writer.js";

export type Decoder<T> = (reader: Reader) => T;
/**
 * Method-style signature on purpose: it makes the value parameter bivariant, so a concrete
 * `ApiDefinition<ProduceRequest, ProduceResponse>` can be stored in an `ApiDefinition` table.
 */
export type Encoder<T> = { encode(writer: Writer, value: T): void }["encode"];

/** Inclusive version range; `max` is `Infinity` for open ranges such as "9+". */
export interface VersionRange {
  readonly min: number;
  readonly max: number;
}

/** Everything the schemas say about one Kafka API, plus its per-version codec tables. */
export interface ApiDefinition<Request = unknown, Response = unknown> {
  /** Kafka's API name, e.g. "Produce", "ApiVersions". */
  readonly name: string;
  readonly apiKey: number;
  readonly minVersion: number;
  readonly maxVersion: number;
  /** First version using KIP-482 flexible encoding, or null when no version is flexible. */
  readonly firstFlexibleVersion: number | null;
  /** Versions the schema marks deprecated (still decodable), or null. */
  readonly deprecatedVersions: VersionRange | null;
  /** True when `maxVersion` is still under development upstream; a broker should not advertise it. */
  readonly latestVersionUnstable: boolean;
  /** Which Kafka listeners serve this API: "zkBroker", "broker", "controller". */
  readonly listeners: readonly string[];
  /** Indexed by version; undefined below `minVersion`. */
  readonly requestDecoders: ReadonlyArray<Decoder<Request> | undefined>;
  readonly requestEncoders: ReadonlyArray<Encoder<Request> | undefined>;
  readonly responseDecoders: ReadonlyArray<Decoder<Response> | undefined>;
  readonly responseEncoders: ReadonlyArray<Encoder<Response> | undefined>;
  /** Request header version (0, 1 or 2) used with `version`. */
  readonly requestHeaderVersions: readonly number[];
  /** Response header version (0 or 1) used with `version`; always 0 for ApiVersions. */
  readonly responseHeaderVersions: readonly number[];
  isSupported(version: number): boolean;
  isFlexible(version: number): boolean;
  isDeprecated(version: number): boolean;
  requestHeaderVersion(version: number): number;
  responseHeaderVersion(version: number): number;
}

/** A versioned schema that is not an API: request/response headers and `data` messages. */
export interface MessageDefinition<T = unknown> {
  readonly name: string;
  readonly minVersion: number;
  readonly maxVersion: number;
  readonly firstFlexibleVersion: number | null;
  readonly decoders: ReadonlyArray<Decoder<T> | undefined>;
  readonly encoders: ReadonlyArray<Encoder<T> | undefined>;
}

type ApiSpec<Request, Response> = Omit<
  ApiDefinition<Request, Response>,
  "isSupported" | "isFlexible" | "isDeprecated" | "requestHeaderVersion" | "responseHeaderVersion"
>;

export function defineApi<Request, Response>(
  spec: ApiSpec<Request, Response>,
): ApiDefinition<Request, Response> {
  const { minVersion, maxVersion, firstFlexibleVersion, deprecatedVersions } = spec;
  const isSupported = (version: number): boolean =>
    Number.isInteger(version) && version >= minVersion && version <= maxVersion;
  const checked = (version: number): number => {
    if (!isSupported(version)) {
      throw new RangeError(
        `${spec.name} version ${version} is outside the supported range ${minVersion}-${maxVersion}; check isSupported() first`,
      );
    }
    return version;
  };
  return {
    ...spec,
    isSupported,
    isFlexible: (version) => firstFlexibleVersion !== null && version >= firstFlexibleVersion,
    isDeprecated: (version) =>
      deprecatedVersions !== null && version >= deprecatedVersions.min && version <= deprecatedVersions.max,
    requestHeaderVersion: (version) => spec.requestHeaderVersions[checked(version)]!,
    responseHeaderVersion: (version) => spec.responseHeaderVersions[checked(version)]!,
  };
}
