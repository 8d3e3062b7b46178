// Thin typed access to kafkajs's internal protocol encoders/decoders, used as an independent
// implementation to cross-check ours. kafkajs is CommonJS without types, hence the loose typing here.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

interface KafkajsRequest {
  apiKey: number;
  apiVersion: number;
  encode(): Promise<{ buffer: Buffer }>;
}

interface KafkajsResponse {
  decode(data: Buffer): Promise<unknown>;
  parse(data: unknown): Promise<unknown>;
}

type ProtocolFactory = (args: unknown) => { request: KafkajsRequest; response: KafkajsResponse };

const encodeFrame = require("kafkajs/src/protocol/request.js") as (options: {
  correlationId: number;
  clientId: string;
  request: KafkajsRequest;
}) => Promise<{ buffer: Buffer }>;

/** kafkajs's request and response codec for one API folder at one version. */
export function kafkajsProtocol(folder: string, version: number): ProtocolFactory {
  const definitions = require(`kafkajs/src/protocol/requests/${folder}/index.js`) as {
    protocol(options: { version: number }): ProtocolFactory;
  };
  return definitions.protocol({ version });
}

/** The full size-prefixed request frame kafkajs would put on the wire. */
export async function kafkajsRequestFrame(
  folder: string,
  version: number,
  args: unknown,
  correlationId: number,
  clientId: string,
): Promise<Buffer> {
  const { request } = kafkajsProtocol(folder, version)(args);
  if (request.apiVersion !== version)
    throw new Error(`kafkajs built ${folder} v${request.apiVersion}, not v${version}`);
  const frame = await encodeFrame({ correlationId, clientId, request });
  return frame.buffer;
}

/** Decodes a response body (bytes after the correlation id) with kafkajs, then runs its error checks. */
// biome-ignore lint/suspicious/noExplicitAny: kafkajs's decoded shapes are untyped and differ per version
export async function kafkajsDecodeResponse(folder: string, version: number, body: Buffer): Promise<any> {
  const { response } = kafkajsProtocol(folder, version)({});
  const decoded = await response.decode(body);
  return response.parse(decoded);
}
