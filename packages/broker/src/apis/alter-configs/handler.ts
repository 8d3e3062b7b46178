import {
  type AlterConfigsResponse,
  ApiKey,
  ErrorCode,
  type IncrementalAlterConfigsResponse,
} from "@raftka/protocol";
import {
  AlterConfigOperation,
  type ConfigOutcome,
  type ConfigResourceChange,
  ConfigResourceType,
  entriesProblem,
} from "../../metadata/config-operations.js";
import type { ApiHandler } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";
import { alterLoggers } from "../describe-configs/loggers.js";

type Response = AlterConfigsResponse["responses"][number];

function toResponse(outcome: ConfigOutcome): Response {
  return {
    errorCode: outcome.error?.code ?? ErrorCode.NONE,
    errorMessage: outcome.error?.message ?? null,
    resourceType: outcome.resourceType,
    resourceName: outcome.resourceName,
  };
}

/**
 * Loggers are changed here and now (not persisted, as in Kafka); topics and brokers go through the
 * controller as metadata records. Results keep the request's order.
 */
async function alter(
  services: BrokerServices,
  resources: readonly ConfigResourceChange[],
  options: { validateOnly: boolean; replaceAll: boolean },
): Promise<Response[]> {
  const persisted = resources.filter(
    (resource) => resource.resourceType !== ConfigResourceType.BROKER_LOGGER,
  );
  const outcomes = await services.controller.alterConfigs(persisted, options);
  let next = 0;
  return resources.map((resource) => {
    if (resource.resourceType !== ConfigResourceType.BROKER_LOGGER) return toResponse(outcomes[next++]!);
    const outcome: ConfigOutcome = {
      resourceType: resource.resourceType,
      resourceName: resource.resourceName,
    };
    // Kafka checks the entries before the logger resource itself, so a null value is INVALID_REQUEST
    // with its message here too, not an unknown log level.
    const entriesError = entriesProblem(resource.entries);
    if (entriesError) {
      outcome.error = entriesError;
    } else if (options.replaceAll) {
      outcome.error = {
        code: ErrorCode.INVALID_REQUEST,
        message: "AlterConfigs cannot change loggers; use IncrementalAlterConfigs",
      };
    } else if (resource.resourceName !== String(services.nodeId)) {
      outcome.error = {
        code: ErrorCode.INVALID_REQUEST,
        message: `broker ${resource.resourceName} is not this node (${services.nodeId})`,
      };
    } else {
      const error = alterLoggers(services.config, resource.entries, options.validateOnly);
      if (error) outcome.error = error;
    }
    return toResponse(outcome);
  });
}

/** AlterConfigs: the listed configs become the resource's complete set of overrides. */
export function alterConfigsHandler(services: BrokerServices): ApiHandler<typeof ApiKey.AlterConfigs> {
  return {
    apiKey: ApiKey.AlterConfigs,
    minVersion: 0,
    maxVersion: 2,
    handle: async (request): Promise<AlterConfigsResponse> => ({
      throttleTimeMs: 0,
      responses: await alter(
        services,
        request.resources.map((resource) => ({
          resourceType: resource.resourceType,
          resourceName: resource.resourceName,
          // A null value stays a SET with null, which is refused as Kafka refuses it: mapping it to DELETE
          // would quietly drop the override where Kafka keeps it.
          entries: resource.configs.map((config) => ({
            name: config.name,
            operation: AlterConfigOperation.SET,
            value: config.value,
          })),
        })),
        { validateOnly: request.validateOnly, replaceAll: true },
      ),
    }),
  };
}

/** IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on individual configs. */
export function incrementalAlterConfigsHandler(
  services: BrokerServices,
): ApiHandler<typeof ApiKey.IncrementalAlterConfigs> {
  return {
    apiKey: ApiKey.IncrementalAlterConfigs,
    minVersion: 0,
    maxVersion: 1,
    handle: async (request): Promise<IncrementalAlterConfigsResponse> => ({
      throttleTimeMs: 0,
      responses: await alter(
        services,
        request.resources.map((resource) => ({
          resourceType: resource.resourceType,
          resourceName: resource.resourceName,
          entries: resource.configs.map((config) => ({
            name: config.name,
            operation: config.configOperation,
            value: config.value,
          })),
        })),
        { validateOnly: request.validateOnly, replaceAll: false },
      ),
    }),
  };
}
