import { ApiKey, ErrorCode } from "@raftka/protocol";
import type { ApiHandler } from "../../server/api-registry.js";

/**
 * SaslAuthenticate on listeners without SASL: ILLEGAL_SASL_STATE, as Kafka answers it outside a SASL
 * exchange, with a message (shown by clients) saying how to connect instead.
 */
export function saslAuthenticateHandler(): ApiHandler<typeof ApiKey.SaslAuthenticate> {
  return {
    apiKey: ApiKey.SaslAuthenticate,
    minVersion: 0,
    maxVersion: 2,
    handle: (_request, context) => ({
      errorCode: ErrorCode.ILLEGAL_SASL_STATE,
      errorMessage: `listener ${context.listenerName} is PLAINTEXT without SASL; configure the client without SASL (security.protocol=PLAINTEXT, no sasl.mechanism)`,
      authBytes: Buffer.alloc(0),
      sessionLifetimeMs: 0n,
    }),
  };
}
