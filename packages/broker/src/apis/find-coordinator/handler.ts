import {
  ApiKey,
  ErrorCode,
  type FindCoordinatorRequest,
  type FindCoordinatorResponse,
  type FindCoordinatorResponseCoordinator,
} from "@raftka/protocol";
import type { GroupCoordinator } from "../../group/group-coordinator.js";
import type { ApiHandler, RequestContext } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";
import { brokersFor } from "../common.js";

/** Kafka's CoordinatorType. */
const GROUP_KEY = 0;
const TRANSACTION_KEY = 1;

/**
 * FindCoordinator for groups (key type 0) and transactions (key type 1), one key (v0-v3) or a batch of
 * keys (v4+). A group's coordinator is the leader of its `__consumer_offsets` partition, which is created
 * on the first lookup (clients get COORDINATOR_NOT_AVAILABLE and retry meanwhile). There is no transaction
 * coordinator yet: a transaction key is answered with this node, and InitProducerId then refuses the
 * transactional id with an explanation.
 */
export function findCoordinatorHandler(
  services: BrokerServices,
  coordinator: GroupCoordinator,
): ApiHandler<typeof ApiKey.FindCoordinator> {
  return {
    apiKey: ApiKey.FindCoordinator,
    // librdkafka needs v0 advertised to look up coordinators at all.
    minVersion: 0,
    maxVersion: 4,
    handle: (request, context) => handleFindCoordinator(services, coordinator, request, context),
  };
}

function handleFindCoordinator(
  services: BrokerServices,
  coordinator: GroupCoordinator,
  request: FindCoordinatorRequest,
  context: RequestContext,
): FindCoordinatorResponse {
  const keyType = request.keyType ?? GROUP_KEY;
  if (context.apiVersion >= 4) {
    return {
      throttleTimeMs: 0,
      coordinators: (request.coordinatorKeys ?? []).map((key) =>
        findOne(services, coordinator, key, keyType, context.listenerName),
      ),
    };
  }
  const found = findOne(services, coordinator, request.key ?? "", keyType, context.listenerName);
  return {
    throttleTimeMs: 0,
    errorCode: found.errorCode,
    errorMessage: found.errorMessage,
    nodeId: found.nodeId,
    host: found.host,
    port: found.port,
  };
}

function findOne(
  services: BrokerServices,
  coordinator: GroupCoordinator,
  key: string,
  keyType: number,
  listenerName: string,
): FindCoordinatorResponseCoordinator {
  const failure = (errorCode: number, errorMessage: string): FindCoordinatorResponseCoordinator => ({
    key,
    nodeId: -1,
    host: "",
    port: -1,
    errorCode,
    errorMessage,
  });
  if (keyType !== GROUP_KEY && keyType !== TRANSACTION_KEY) {
    return failure(
      ErrorCode.INVALID_REQUEST,
      `coordinator key type ${keyType} is unknown; use 0 (group) or 1 (transaction)`,
    );
  }
  if (keyType === TRANSACTION_KEY && key === "") {
    return failure(ErrorCode.INVALID_REQUEST, "the transactional id is empty; set transactional.id");
  }
  if (keyType === GROUP_KEY) {
    const lookup = coordinator.lookup(key);
    if (lookup.status === "unavailable") return failure(ErrorCode.COORDINATOR_NOT_AVAILABLE, lookup.message);
  }
  const [self] = brokersFor(services, listenerName);
  if (!self)
    return failure(ErrorCode.COORDINATOR_NOT_AVAILABLE, "this node has no advertised listener yet; retry");
  return {
    key,
    nodeId: self.nodeId,
    host: self.host,
    port: self.port,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
  };
}
