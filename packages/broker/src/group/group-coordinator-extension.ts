import { AdminHttpError } from "@raftka/monitoring";
import { deleteGroupsHandler } from "../apis/delete-groups/handler.js";
import { describeGroupsHandler } from "../apis/describe-groups/handler.js";
import { findCoordinatorHandler } from "../apis/find-coordinator/handler.js";
import { heartbeatHandler } from "../apis/heartbeat/handler.js";
import { joinGroupHandler } from "../apis/join-group/handler.js";
import { leaveGroupHandler } from "../apis/leave-group/handler.js";
import { listGroupsHandler } from "../apis/list-groups/handler.js";
import { offsetCommitHandler } from "../apis/offset-commit/handler.js";
import { offsetDeleteHandler } from "../apis/offset-delete/handler.js";
import { offsetFetchHandler } from "../apis/offset-fetch/handler.js";
import { syncGroupHandler } from "../apis/sync-group/handler.js";
import type { BrokerExtension } from "../broker.js";
import { GroupCoordinator, type GroupCoordinatorOptions } from "./group-coordinator.js";

/**
 * Consumer groups: the group coordinator with its Kafka APIs, the consumer lag metric, and two admin
 * routes: `GET /v1/groups` and `GET /v1/groups/:group` (state, generation, members, committed offsets and
 * lag; more than DescribeGroups tells).
 */
export function groupCoordinatorExtension(
  overrides: Partial<Omit<GroupCoordinatorOptions, "services" | "logger">> = {},
): BrokerExtension & { readonly coordinator: GroupCoordinator | undefined } {
  let coordinator: GroupCoordinator | undefined;
  return {
    name: "group-coordinator",
    get coordinator() {
      return coordinator;
    },
    start(services, registry, context) {
      const started = new GroupCoordinator({
        services,
        logger: context.logging.component("group"),
        ...overrides,
      });
      coordinator = started;
      started.start();
      for (const handler of [
        findCoordinatorHandler(services, started),
        joinGroupHandler(services, started),
        syncGroupHandler(services, started),
        heartbeatHandler(services, started),
        leaveGroupHandler(services, started),
        offsetCommitHandler(services, started),
        offsetFetchHandler(started),
        offsetDeleteHandler(services, started),
        listGroupsHandler(started),
        describeGroupsHandler(started),
        deleteGroupsHandler(services, started),
      ]) {
        registry.register(handler as never);
      }
      services.metrics?.provide({ groups: started });
      context.admin.route("GET", "/v1/groups", () => ({
        status: 200,
        body: { groups: started.core.listGroups([]).groups },
      }));
      context.admin.route("GET", "/v1/groups/:group", (request) => {
        const groupId = request.params.group!;
        const snapshot = started.core.snapshotGroup(groupId);
        if (!snapshot) {
          throw new AdminHttpError(
            404,
            `group "${groupId}" is not coordinated by this node (unknown, deleted, or its partition is led elsewhere); list groups with GET /v1/groups`,
          );
        }
        return {
          status: 200,
          body: {
            ...snapshot,
            offsets: snapshot.offsets.map((offset) => {
              const log = services.partitions.partition(offset.topic, offset.partition);
              return {
                ...offset,
                offset: offset.offset.toString(),
                lag: log ? Math.max(0, log.highWatermark - Number(offset.offset)) : null,
              };
            }),
          },
        };
      });
    },
    answerParked() {
      coordinator?.answerParked();
    },
    async stop() {
      await coordinator?.stop();
    },
  };
}
