import { ApiKey, ErrorCode, type InitProducerIdRequest, type InitProducerIdResponse } from "@raftka/protocol";
import type { ProducerEpochs, ProducerIdAllocator } from "../../producer-state/producer-ids.js";
import type { ApiHandler, RequestContext } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";

/**
 * InitProducerId v0-v4 for idempotent producers: a new producer id from a durably reserved block, or (v3+,
 * KIP-360) the same id with its epoch bumped. Transactional ids are refused with an explanation until a
 * transaction coordinator exists: it plugs in here (with FindCoordinator key type 1 and the
 * `__transaction_state` topic) and takes over requests that carry a transactional id.
 */
export function initProducerIdHandler(
  services: BrokerServices,
  allocator: ProducerIdAllocator,
  epochs: ProducerEpochs,
): ApiHandler<typeof ApiKey.InitProducerId> {
  return {
    apiKey: ApiKey.InitProducerId,
    // librdkafka enables idempotence only if InitProducerId v0 is advertised.
    minVersion: 0,
    maxVersion: 4,
    handle: (request, context) => handleInitProducerId(services, allocator, epochs, request, context),
  };
}

async function handleInitProducerId(
  services: BrokerServices,
  allocator: ProducerIdAllocator,
  epochs: ProducerEpochs,
  request: InitProducerIdRequest,
  context: RequestContext,
): Promise<InitProducerIdResponse> {
  const answer = (errorCode: number, producerId = -1n, producerEpoch = -1): InitProducerIdResponse => ({
    throttleTimeMs: 0,
    errorCode,
    producerId,
    producerEpoch,
  });
  const now = services.now();
  const decision = epochs.decide(
    {
      transactionalId: request.transactionalId,
      transactionTimeoutMs: request.transactionTimeoutMs,
      producerId: context.apiVersion >= 3 ? (request.producerId ?? -1n) : -1n,
      producerEpoch: context.apiVersion >= 3 ? (request.producerEpoch ?? -1) : -1,
      apiVersion: context.apiVersion,
    },
    now,
  );
  if (decision.kind === "error") {
    services.logger.info({ client: context.clientId, reason: decision.message }, "InitProducerId refused");
    return answer(decision.errorCode);
  }
  if (decision.kind === "answer") return answer(ErrorCode.NONE, decision.producerId, decision.producerEpoch);
  try {
    const producerId = await allocator.allocate();
    epochs.remember(producerId, 0, -1, now);
    return answer(ErrorCode.NONE, producerId, 0);
  } catch (error) {
    services.logger.error({ err: error }, "could not reserve a block of producer ids in the metadata log");
    // Retriable: the client tries again.
    return answer(ErrorCode.COORDINATOR_NOT_AVAILABLE);
  }
}
