import { describe, expect, it } from "vitest";
import {
  allApis,
  type Decoder,
  type Encoder,
  getApi,
  messageDefinitions,
  ProtocolDecodeError,
  Reader,
  Writer,
} from "../src/index.js";
import { Random, testSeed } from "./support/random.js";
import {
  loadSchemaMessages,
  type SchemaMessage,
  ValueFactory,
  versionList,
} from "./support/schema-values.js";

const seed = testSeed();
const schemas = loadSchemaMessages();
const SAMPLES_PER_VERSION = 4;

function codecsFor(
  message: SchemaMessage,
  version: number,
): { encode: Encoder<unknown>; decode: Decoder<unknown> } {
  if (message.type === "request" || message.type === "response") {
    const api = getApi(message.apiKey!);
    if (!api) throw new Error(`no registry entry for ${message.name}`);
    const encode = message.type === "request" ? api.requestEncoders[version] : api.responseEncoders[version];
    const decode = message.type === "request" ? api.requestDecoders[version] : api.responseDecoders[version];
    if (!encode || !decode) throw new Error(`no codec for ${message.name} v${version}`);
    return { encode, decode };
  }
  const definition = messageDefinitions[message.name];
  const encode = definition?.encoders[version];
  const decode = definition?.decoders[version];
  if (!encode || !decode) throw new Error(`no codec for ${message.name} v${version}`);
  return { encode, decode };
}

function encodeToBuffer(encode: Encoder<unknown>, value: unknown): Buffer {
  const writer = new Writer(16);
  encode(writer, value);
  return Buffer.concat(writer.chunks());
}

describe(`round trip of every message at every version (seed ${seed}, replay with RAFTKA_SEED=${seed})`, () => {
  for (const message of schemas) {
    it(`${message.name} v${message.validVersions}`, () => {
      const random = new Random(seed ^ hash(message.name));
      const factory = new ValueFactory(message, random);
      for (const version of versionList(message)) {
        const { encode, decode } = codecsFor(message, version);
        for (let sample = 0; sample < SAMPLES_PER_VERSION; sample++) {
          const where = `${message.name} v${version} sample ${sample} (seed ${seed})`;
          const value = factory.message_(version);
          const bytes = encodeToBuffer(encode, value);
          const reader = new Reader(bytes);
          const decoded = decode(reader);
          expect(reader.offset, `${where}: decoder must consume exactly the encoded bytes`).toBe(
            bytes.length,
          );
          expect(decoded, where).toEqual(value);
          expect(
            encodeToBuffer(encode, decoded).equals(bytes),
            `${where}: re-encoding must give the same bytes`,
          ).toBe(true);
        }
      }
    });
  }
});

describe("registry", () => {
  it("has one definition per API schema with the schema's version facts", () => {
    const requests = schemas.filter((m) => m.type === "request");
    expect(allApis.length).toBe(requests.length);
    for (const request of requests) {
      const api = getApi(request.apiKey!)!;
      const [min, max] = request.validVersions.split("-").map(Number);
      expect(api.name + "Request").toBe(request.name);
      expect(api.minVersion).toBe(min);
      expect(api.maxVersion).toBe(max ?? min);
      expect(api.latestVersionUnstable).toBe(request.latestVersionUnstable === true);
      expect([...api.listeners]).toEqual(request.listeners ?? []);
    }
  });

  it("answers header versions as Kafka does, including the ApiVersions and ControlledShutdown exceptions", () => {
    const produce = getApi(0)!;
    expect(produce.requestHeaderVersion(7)).toBe(1);
    expect(produce.responseHeaderVersion(7)).toBe(0);
    expect(produce.requestHeaderVersion(9)).toBe(2);
    expect(produce.responseHeaderVersion(9)).toBe(1);
    const apiVersions = getApi(18)!;
    expect(apiVersions.requestHeaderVersion(3)).toBe(2);
    expect(apiVersions.responseHeaderVersion(3)).toBe(0);
    expect(getApi(7)!.requestHeaderVersion(0)).toBe(0);
    expect(getApi(7)!.requestHeaderVersion(1)).toBe(1);
    expect(() => produce.requestHeaderVersion(99)).toThrow(/outside the supported range/);
    expect(getApi(9999)).toBeUndefined();
    expect(getApi(Number.NaN)).toBeUndefined();
  });

  it("reports flexible and deprecated versions from the schema", () => {
    const metadata = getApi(3)!;
    expect(metadata.isFlexible(8)).toBe(false);
    expect(metadata.isFlexible(9)).toBe(true);
    expect(metadata.isDeprecated(3)).toBe(true);
    expect(metadata.isDeprecated(4)).toBe(false);
    expect(getApi(17)!.firstFlexibleVersion).toBeNull();
  });
});

describe("decoders on hostile counts", () => {
  it("refuses an array count larger than the remaining bytes before allocating", () => {
    // Produce v3 request: transactional id null, acks, timeout, then a topic count of 2^31-1.
    const bytes = Buffer.from([0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30, 0x7f, 0xff, 0xff, 0xff, 0, 0]);
    const decode = getApi(0)!.requestDecoders[3]!;
    expect(() => decode(new Reader(bytes))).toThrow(ProtocolDecodeError);
    expect(() => decode(new Reader(bytes))).toThrow(/claims 2147483647 elements/);
  });
});

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}
