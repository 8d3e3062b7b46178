import { ApiKey, type DescribeClusterResponse, ErrorCode } from "@raftka/protocol";
import type { ApiHandler } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";
import { brokersFor, CLUSTER_OPERATIONS, UNREQUESTED_OPERATIONS } from "../common.js";

/** KIP-919 endpoint types, Kafka's EndpointType ids. */
const BROKER_ENDPOINT = 1;
const CONTROLLER_ENDPOINT = 2;

/**
 * DescribeCluster: this node is the whole cluster and its controller. Its listeners are broker endpoints,
 * so a v1 request for controllers (an admin client given bootstrap.controllers) is refused as Kafka's
 * brokers refuse it, and the client learns it reached the wrong kind of endpoint.
 */
export function describeClusterHandler(services: BrokerServices): ApiHandler<typeof ApiKey.DescribeCluster> {
  return {
    apiKey: ApiKey.DescribeCluster,
    minVersion: 0,
    maxVersion: 1,
    handle: (request, context) => {
      const endpointType = request.endpointType ?? BROKER_ENDPOINT;
      if (endpointType !== BROKER_ENDPOINT) return endpointTypeRefused(endpointType);
      return {
        throttleTimeMs: 0,
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        endpointType,
        clusterId: services.clusterId,
        controllerId: services.nodeId,
        brokers: brokersFor(services, context.listenerName).map((broker) => ({
          brokerId: broker.nodeId,
          host: broker.host,
          port: broker.port,
          rack: broker.rack ?? null,
        })),
        clusterAuthorizedOperations: request.includeClusterAuthorizedOperations
          ? CLUSTER_OPERATIONS
          : UNREQUESTED_OPERATIONS,
      };
    },
  };
}

/** Kafka's AuthHelper.computeDescribeClusterResponse answer (only v1 can name another type). */
function endpointTypeRefused(endpointType: number): DescribeClusterResponse {
  const known = endpointType === CONTROLLER_ENDPOINT;
  return {
    throttleTimeMs: 0,
    errorCode: known ? ErrorCode.MISMATCHED_ENDPOINT_TYPE : ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
    errorMessage: known
      ? "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER; this node's listeners are broker endpoints: use bootstrap.servers, not bootstrap.controllers"
      : `Unsupported endpoint type ${endpointType}`,
    endpointType: BROKER_ENDPOINT,
    clusterId: "",
    controllerId: -1,
    brokers: [],
    clusterAuthorizedOperations: UNREQUESTED_OPERATIONS,
  };
}
