import type { MetadataResponseBroker } from "@raftka/protocol";
import type { BrokerServices } from "../services.js";

/** Kafka's value for "authorized operations not requested". */
export const UNREQUESTED_OPERATIONS = -2147483648;

/** Kafka ACL operation codes (AclOperation); without an authorizer every operation is allowed. */
const bits = (...operations: number[]): number =>
  operations.reduce((field, operation) => field | (1 << operation), 0);
// READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10,
// ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12.
export const TOPIC_OPERATIONS = bits(3, 4, 5, 6, 7, 8, 10, 11);
export const CLUSTER_OPERATIONS = bits(5, 7, 8, 9, 10, 11, 12);

/** This node as clients must reach it on the listener the request came in on. */
export function brokersFor(services: BrokerServices, listenerName: string): MetadataResponseBroker[] {
  const listeners = services.advertisedListeners();
  const listener = listeners.find((candidate) => candidate.name === listenerName) ?? listeners[0];
  if (!listener) return [];
  return [{ nodeId: services.nodeId, host: listener.host, port: listener.port, rack: null }];
}
