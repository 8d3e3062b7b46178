import { ApiKey, ErrorCode, type InitProducerIdRequest, type InitProducerIdResponse } from "@raftka/protocol";
import { decideInitProducerId, type ProducerIdAllocator } from "../../producer-state/producer-ids.js";
import type { ApiHandler, RequestContext } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";

/**
 * InitProducerId v0-v4 for idempotent producers: a new producer id at epoch 0 from a durably reserved
 * block, also when (v3+, KIP-360) the request names an id it had. Transactional ids are refused with an explanation until a
 * transaction coordinator exists: it plugs in here (with FindCoordinator key type 1 and the
 * `__transaction_state` topic) and takes over requests that carry a transactional id.
 */
export function initProducerIdHandler(
  services: BrokerServices,
  allocator: ProducerIdAllocator,
): ApiHandler<typeof ApiKey.InitProducerId> {
  return {
    apiKey: ApiKey.InitProducerId,
    // librdkafka enables idempotence only if InitProducerId v0 is advertised.
    minVersion: 0,
    maxVersion: 4,
    handle: (request, context) => handleInitProducerId(services, allocator, request, context),
  };
}

async function handleInitProducerId(
  services: BrokerServices,
  allocator: ProducerIdAllocator,
  request: InitProducerIdRequest,
  context: RequestContext,
): Promise<InitProducerIdResponse> {
  const answer = (errorCode: number, producerId = -1n, producerEpoch = -1): InitProducerIdResponse => ({
    throttleTimeMs: 0,
    errorCode,
    producerId,
    producerEpoch,
  });
  const decision = decideInitProducerId({
    transactionalId: request.transactionalId,
    producerId: context.apiVersion >= 3 ? (request.producerId ?? -1n) : -1n,
    producerEpoch: context.apiVersion >= 3 ? (request.producerEpoch ?? -1) : -1,
  });
  if (decision.kind === "error") {
    services.logger.info({ client: context.clientId, reason: decision.message }, "InitProducerId refused");
    return answer(decision.errorCode);
  }
  try {
    const producerId = await allocator.allocate();
    return answer(ErrorCode.NONE, producerId, 0);
  } catch (error) {
    services.logger.error({ err: error }, "could not reserve a block of producer ids in the metadata log");
    // Retriable: the client tries again.
    return answer(ErrorCode.COORDINATOR_NOT_AVAILABLE);
  }
}
