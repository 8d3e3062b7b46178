import { ApiKey, ErrorCode } from "@raftka/protocol";
import type { ApiHandler } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";

/**
 * SaslHandshake on listeners without SASL (all of Raftka's are PLAINTEXT): ILLEGAL_SASL_STATE and no
 * mechanisms, as Kafka's KafkaApis answers it once a connection is past authentication. Answering instead
 * of closing the connection tells a client configured for SASL what is wrong rather than leaving it to
 * reconnect forever; advertising it in ApiVersions, as Kafka does, changes nothing for other clients,
 * which never send it.
 */
export function saslHandshakeHandler(services: BrokerServices): ApiHandler<typeof ApiKey.SaslHandshake> {
  return {
    apiKey: ApiKey.SaslHandshake,
    minVersion: 0,
    maxVersion: 1,
    handle: (request, context) => {
      services.logger.warn(
        { client: context.clientId, clientAddress: context.clientAddress, mechanism: request.mechanism },
        `SASL handshake refused: listener ${context.listenerName} is PLAINTEXT without SASL; configure the client without SASL`,
      );
      return { errorCode: ErrorCode.ILLEGAL_SASL_STATE, mechanisms: [] };
    },
  };
}
