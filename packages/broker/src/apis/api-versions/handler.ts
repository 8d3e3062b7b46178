import { ApiKey, ErrorCode } from "@raftka/protocol";
import type { ApiHandler, ApiRegistry } from "../../server/api-registry.js";

/**
 * ApiVersions: every API the registry serves, with the range each handler accepts. Versions above 4 get
 * Kafka's v0-format UNSUPPORTED_VERSION answer from the connection before reaching this handler.
 */
export function apiVersionsHandler(registry: ApiRegistry): ApiHandler<typeof ApiKey.ApiVersions> {
  return {
    apiKey: ApiKey.ApiVersions,
    minVersion: 0,
    maxVersion: 4,
    handle: () => ({ errorCode: ErrorCode.NONE, apiKeys: registry.advertised(), throttleTimeMs: 0 }),
  };
}
