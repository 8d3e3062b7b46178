import { ApiKey, ErrorCode } from "@raftka/protocol";
import type { ApiHandler } from "../../server/api-registry.js";
import type { BrokerServices } from "../../services.js";
import { brokersFor, CLUSTER_OPERATIONS, UNREQUESTED_OPERATIONS } from "../common.js";

/** DescribeCluster: this node is the whole cluster and its controller (v1 asks for brokers or controllers: same node). */
export function describeClusterHandler(services: BrokerServices): ApiHandler<typeof ApiKey.DescribeCluster> {
  return {
    apiKey: ApiKey.DescribeCluster,
    minVersion: 0,
    maxVersion: 1,
    handle: (request, context) => ({
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      endpointType: request.endpointType ?? 1,
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
    }),
  };
}
