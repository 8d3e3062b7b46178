import { ApiKey, type ApiVersionsRequest, ErrorCode } from "@raftka/protocol";
import type { ApiHandler, ApiRegistry } from "../../server/api-registry.js";

/** Kafka's ApiVersionsRequest.SOFTWARE_NAME_VERSION_PATTERN (KIP-511), whole-string match. */
const SOFTWARE_NAME_OR_VERSION = /^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$/;

/**
 * ApiVersions: every API the registry serves, with the range each handler accepts. Versions above 4 get
 * Kafka's v0-format UNSUPPORTED_VERSION answer from the connection before reaching this handler.
 * v3+ feature fields (supportedFeatures, finalizedFeatures) are left out: which metadata.version level
 * Raftka's behaviour matches is not settled, and a wrong one would mislead the Java admin client's
 * describeFeatures; librdkafka and kafkajs do not read them.
 */
export function apiVersionsHandler(registry: ApiRegistry): ApiHandler<typeof ApiKey.ApiVersions> {
  return {
    apiKey: ApiKey.ApiVersions,
    minVersion: 0,
    maxVersion: 4,
    handle: (request, context) => {
      if (context.apiVersion >= 3 && !validSoftware(request)) {
        // Kafka's ApiVersionsRequest.getErrorResponse: INVALID_REQUEST carries no API keys (only an
        // UNSUPPORTED_VERSION answer lists ApiVersions' own range).
        return { errorCode: ErrorCode.INVALID_REQUEST, apiKeys: [], throttleTimeMs: 0 };
      }
      return { errorCode: ErrorCode.NONE, apiKeys: registry.advertised(), throttleTimeMs: 0 };
    },
  };
}

function validSoftware(request: ApiVersionsRequest): boolean {
  return (
    SOFTWARE_NAME_OR_VERSION.test(request.clientSoftwareName ?? "") &&
    SOFTWARE_NAME_OR_VERSION.test(request.clientSoftwareVersion ?? "")
  );
}
