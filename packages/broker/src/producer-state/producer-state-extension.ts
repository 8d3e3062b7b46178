import { initProducerIdHandler } from "../apis/init-producer-id/handler.js";
import type { BrokerExtension } from "../broker.js";
import { ProducerIdAllocator } from "./producer-ids.js";
import { ProducerStateService, type ProducerStateServiceOptions } from "./producer-state-service.js";

/**
 * Idempotent producers: loads every partition's producer state before the listeners open, plugs the
 * sequence checks into the produce path and serves InitProducerId.
 */
export function producerStateExtension(
  overrides: Partial<Pick<ProducerStateServiceOptions, "maintenanceIntervalMs" | "snapshotEveryBytes">> = {},
): BrokerExtension & { readonly service: ProducerStateService | undefined } {
  let service: ProducerStateService | undefined;
  return {
    name: "producer-state",
    get service() {
      return service;
    },
    async start(services, registry, context) {
      service = new ProducerStateService({
        partitions: services.partitions,
        now: services.now,
        logger: context.logging.component("storage"),
        producerIdExpirationMs: () => services.config.get("producer.id.expiration.ms"),
        ...overrides,
      });
      await service.start();
      services.producerState = service;
      const allocator = new ProducerIdAllocator({
        reserveBlock: (size) => services.controller.reserveProducerIds(size),
      });
      registry.register(initProducerIdHandler(services, allocator));
    },
    async stop() {
      await service?.stop();
    },
  };
}
