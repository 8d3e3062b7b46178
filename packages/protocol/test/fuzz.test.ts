// Hostile input: truncated and mutated encodings of every message must either decode or throw
// ProtocolDecodeError; never a RangeError, TypeError, hang or huge allocation.
import { describe, expect, it } from "vitest";
import {
  type ApiKey,
  decodeRequestBody,
  decodeRequestHeader,
  encodeRequestFrame,
  getApi,
  messageDefinitions,
  ProtocolDecodeError,
  Reader,
  Writer,
} from "../src/index.js";
import { Random, testSeed } from "./support/random.js";
import { loadSchemaMessages, ValueFactory, versionList } from "./support/schema-values.js";

const seed = testSeed();
const schemas = loadSchemaMessages();
const TRUNCATIONS = 12;
const MUTATIONS = 24;

function mutate(random: Random, input: Buffer): Buffer {
  const out = Buffer.from(input);
  for (let edits = random.int(1, 3); edits > 0 && out.length > 0; edits--) {
    const at = random.int(0, out.length - 1);
    out[at] = random.pick([0x00, 0xff, 0x7f, 0x80, random.int(0, 255), out[at]! ^ (1 << random.int(0, 7))]);
  }
  return out;
}

/** Runs `decode`; any failure other than ProtocolDecodeError fails the test with the input in hex. */
function expectOnlyProtocolErrors(decode: () => unknown, input: Buffer, where: string): void {
  try {
    decode();
  } catch (error) {
    if (!(error instanceof ProtocolDecodeError)) {
      throw new Error(`${where}: ${String(error)} for input ${input.toString("hex").slice(0, 400)}`);
    }
  }
}

describe(`decoders on truncated and mutated input (seed ${seed}, replay with RAFTKA_SEED=${seed})`, () => {
  for (const message of schemas) {
    it(message.name, () => {
      const random = new Random(seed ^ message.name.length ^ (message.apiKey ?? 1000));
      const factory = new ValueFactory(message, random);
      for (const version of versionList(message)) {
        const decode =
          message.type === "request"
            ? getApi(message.apiKey!)!.requestDecoders[version]!
            : message.type === "response"
              ? getApi(message.apiKey!)!.responseDecoders[version]!
              : messageDefinitions[message.name]!.decoders[version]!;
        const encode =
          message.type === "request"
            ? getApi(message.apiKey!)!.requestEncoders[version]!
            : message.type === "response"
              ? getApi(message.apiKey!)!.responseEncoders[version]!
              : messageDefinitions[message.name]!.encoders[version]!;
        const writer = new Writer();
        encode(writer, factory.message_(version));
        const valid = writer.toBuffer();
        const where = `${message.name} v${version} (seed ${seed})`;
        for (let i = 0; i < TRUNCATIONS && valid.length > 0; i++) {
          const cut = valid.subarray(0, random.int(0, valid.length - 1));
          expect(() => decode(new Reader(cut)), `${where}: truncated to ${cut.length} bytes`).toThrow(
            ProtocolDecodeError,
          );
        }
        for (let i = 0; i < MUTATIONS; i++) {
          const mutated = mutate(random, valid);
          expectOnlyProtocolErrors(() => decode(new Reader(mutated)), mutated, where);
        }
      }
    });
  }

  it("whole request frames: header and body decoding of mutated frames", () => {
    const random = new Random(seed);
    for (const message of schemas.filter((m) => m.type === "request")) {
      const factory = new ValueFactory(message, random);
      for (const version of versionList(message)) {
        const frame = Buffer.concat(
          encodeRequestFrame(
            message.apiKey! as ApiKey,
            version,
            17,
            "fuzz",
            factory.message_(version) as never,
          ),
        ).subarray(4);
        for (let i = 0; i < 4; i++) {
          const mutated = mutate(random, frame);
          expectOnlyProtocolErrors(
            () => {
              const header = decodeRequestHeader(mutated);
              if (header.supported) decodeRequestBody(header.apiKey as ApiKey, header, mutated);
            },
            mutated,
            `${message.name} v${version} frame (seed ${seed})`,
          );
        }
      }
    }
  });

  it("random garbage never escapes as anything but ProtocolDecodeError", () => {
    const random = new Random(seed + 1);
    for (let i = 0; i < 2000; i++) {
      const garbage = random.bytes(random.int(0, 64));
      expectOnlyProtocolErrors(
        () => {
          const header = decodeRequestHeader(garbage);
          if (header.supported) decodeRequestBody(header.apiKey as ApiKey, header, garbage);
        },
        garbage,
        `garbage frame (seed ${seed})`,
      );
    }
  });
});
