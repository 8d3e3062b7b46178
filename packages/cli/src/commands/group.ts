import {
  ApiKey,
  ConsumerProtocolAssignmentCodec,
  type DescribeGroupsResponseDescribedGroup,
  decodeVersionedData,
  ErrorCode,
  errorName,
} from "@raftka/protocol";
import type { CommandContext, CommandResult } from "../context.js";
import { ExitCode, OperationFailedError, UsageError } from "../errors.js";
import type { KafkaClient } from "../kafka/client.js";
import { commitOffsets, fetchCommittedOffsets } from "../kafka/group-offsets.js";
import { checkKafkaError, describeKafkaError, retryRetriable } from "../kafka/kafka-errors.js";
import { parseOffsetSpec, resolveOffsetSpec } from "../kafka/offset-spec.js";
import {
  EARLIEST_TIMESTAMP,
  fetchTopic,
  LATEST_TIMESTAMP,
  listOffsets,
  type TopicInfo,
} from "../kafka/topics.js";
import { parsePartitionList } from "../options.js";
import { renderFields, renderSections, renderTable } from "../output/render.js";

/** Group states in which the group has no members, so offsets may be changed from outside. */
const inactiveStates = new Set(["Empty", "Dead"]);

export async function groupList(context: CommandContext): Promise<CommandResult> {
  const client = await context.kafka();
  await client.metadata([]);
  // Each broker lists only the groups it coordinates, so ask every one of them.
  const answers = await Promise.all(
    client
      .knownNodes()
      .map((node) => client.send(ApiKey.ListGroups, { statesFilter: [], typesFilter: [] }, node.nodeId)),
  );
  const groups = answers
    .flatMap((answer) => {
      checkKafkaError(answer.errorCode, "listing groups");
      return answer.groups;
    })
    .map((group) => ({
      group: group.groupId,
      state: group.groupState ?? null,
      protocolType: group.protocolType,
    }))
    .sort((a, b) => a.group.localeCompare(b.group));
  return {
    data: groups,
    text: renderTable(
      ["group", "state", "protocol-type"],
      groups.map((group) => [group.group, group.state, group.protocolType]),
    ),
  };
}

function describeGroup(
  client: KafkaClient,
  group: string,
): Promise<{ coordinator: number; description: DescribeGroupsResponseDescribedGroup }> {
  return retryRetriable(() => describeGroupOnce(client, group), client.requestTimeoutMs);
}

async function describeGroupOnce(
  client: KafkaClient,
  group: string,
): Promise<{ coordinator: number; description: DescribeGroupsResponseDescribedGroup }> {
  const coordinator = (await client.findCoordinator(group)).nodeId;
  const response = await client.send(
    ApiKey.DescribeGroups,
    { groups: [group], includeAuthorizedOperations: false },
    coordinator,
  );
  const description = response.groups.find((entry) => entry.groupId === group);
  if (!description)
    throw new OperationFailedError(`the coordinator did not describe group "${group}"; retry`);
  checkKafkaError(description.errorCode, `describing group "${group}"`);
  return { coordinator, description };
}

/** Which member holds each topic partition, from the consumer protocol assignments. */
function assignmentsOf(
  description: DescribeGroupsResponseDescribedGroup,
): Map<string, { memberId: string; clientId: string; host: string }> {
  const owners = new Map<string, { memberId: string; clientId: string; host: string }>();
  if (description.protocolType !== "consumer") return owners;
  for (const member of description.members) {
    if (member.memberAssignment.length === 0) continue;
    try {
      const { value } = decodeVersionedData(ConsumerProtocolAssignmentCodec, member.memberAssignment);
      for (const entry of value.assignedPartitions) {
        for (const partition of entry.partitions) {
          owners.set(`${entry.topic}/${partition}`, {
            memberId: member.memberId,
            clientId: member.clientId,
            host: member.clientHost,
          });
        }
      }
    } catch {
      // An assignment this CLI cannot read only loses the member column; offsets and lag stay right.
    }
  }
  return owners;
}

export async function groupDescribe(
  context: CommandContext,
  names: readonly string[],
): Promise<CommandResult> {
  const client = await context.kafka();
  await client.metadata([]);
  const described = [];
  const missing: string[] = [];
  for (const group of names) {
    const { coordinator, description } = await describeGroup(client, group);
    // Asked for every topic, the coordinator answers only offsets it stores: negative ones included,
    // since tools such as kafkajs' resetOffsets commit -2 (earliest) and -1 (latest).
    const committed = await fetchCommittedOffsets(client, coordinator, group, null);
    // Kafka describes a group it has never heard of as Dead with nothing in it; say so instead, and
    // still describe the others named (as kafka-consumer-groups.sh does).
    if (description.groupState === "Dead" && description.members.length === 0 && committed.length === 0) {
      missing.push(group);
      continue;
    }
    const topics = new Map<string, TopicInfo>();
    for (const name of new Set(committed.map((entry) => entry.topic))) {
      try {
        topics.set(name, await fetchTopic(client, name));
      } catch (error) {
        context.note(
          `raftka: group "${group}" has offsets for topic "${name}", which cannot be described: ${(error as Error).message}`,
        );
      }
    }
    const ends = new Map<string, Map<number, bigint>>();
    const starts = new Map<string, Map<number, bigint>>();
    for (const [name, topic] of topics) {
      const partitions = committed.filter((entry) => entry.topic === name).map((entry) => entry.partition);
      ends.set(name, await listOffsets(client, topic, partitions, LATEST_TIMESTAMP));
      if (committed.some((entry) => entry.topic === name && entry.offset === EARLIEST_OFFSET)) {
        starts.set(name, await listOffsets(client, topic, partitions, EARLIEST_TIMESTAMP));
      }
    }
    const owners = assignmentsOf(description);
    const offsets = committed.map((entry) => {
      const end = ends.get(entry.topic)?.get(entry.partition);
      const owner = owners.get(`${entry.topic}/${entry.partition}`);
      // What the consumer will read from: the log start for -2, the end for -1 (or anything else negative).
      const resumesAt =
        entry.offset >= 0n
          ? entry.offset
          : entry.offset === EARLIEST_OFFSET
            ? starts.get(entry.topic)?.get(entry.partition)
            : end;
      return {
        topic: entry.topic,
        partition: entry.partition,
        committedOffset: entry.offset,
        logEndOffset: end ?? null,
        lag: end === undefined || resumesAt === undefined ? null : end > resumesAt ? end - resumesAt : 0n,
        memberId: owner?.memberId ?? null,
        clientId: owner?.clientId ?? null,
        host: owner?.host ?? null,
      };
    });
    described.push({
      group,
      state: description.groupState,
      protocolType: description.protocolType,
      protocol: description.protocolData,
      coordinator,
      totalLag: offsets.reduce((sum, entry) => sum + (entry.lag ?? 0n), 0n),
      members: description.members.map((member) => ({
        memberId: member.memberId,
        groupInstanceId: member.groupInstanceId ?? null,
        clientId: member.clientId,
        host: member.clientHost,
      })),
      offsets,
    });
  }
  const text = described
    .map((group) =>
      renderSections([
        [
          null,
          renderFields([
            ["group", group.group],
            ["state", group.state],
            ["coordinator", group.coordinator],
            ["protocol", group.protocolType === "" ? null : `${group.protocolType}/${group.protocol || "-"}`],
            ["members", group.members.length],
            ["total lag", group.totalLag],
          ]),
        ],
        [
          "MEMBERS",
          group.members.length === 0
            ? "(none)"
            : renderTable(
                ["member-id", "instance-id", "client-id", "host"],
                group.members.map((member) => [
                  member.memberId,
                  member.groupInstanceId,
                  member.clientId,
                  member.host,
                ]),
              ),
        ],
        [
          "OFFSETS",
          group.offsets.length === 0
            ? "(no committed offsets)"
            : renderTable(
                ["topic", "partition", "current-offset", "log-end-offset", "lag", "member-id"],
                group.offsets.map((entry) => [
                  entry.topic,
                  entry.partition,
                  committedOffsetText(entry.committedOffset),
                  entry.logEndOffset,
                  entry.lag,
                  entry.memberId,
                ]),
              ),
        ],
      ]),
    )
    .join("\n\n");
  if (missing.length === names.length && names.length === 1) {
    throw new OperationFailedError(
      `group "${missing[0]}" does not exist (no members, no committed offsets); \`raftka group list\` lists the groups`,
    );
  }
  for (const group of missing) {
    context.note(
      `raftka: group "${group}" does not exist (no members, no committed offsets); \`raftka group list\` lists the groups`,
    );
  }
  return { data: described, text, ...(missing.length > 0 ? { exitCode: ExitCode.failed } : {}) };
}

export async function groupDelete(context: CommandContext, names: readonly string[]): Promise<CommandResult> {
  const client = await context.kafka();
  await client.metadata([]);
  const outcomes = [];
  for (const group of names) {
    const coordinator = (await client.findCoordinator(group)).nodeId;
    const response = await client.send(ApiKey.DeleteGroups, { groupsNames: [group] }, coordinator);
    for (const result of response.results) {
      outcomes.push(
        result.errorCode === ErrorCode.NONE
          ? { group: result.groupId, status: "deleted" }
          : {
              group: result.groupId,
              status: "failed",
              error: {
                code: result.errorCode,
                name: errorName(result.errorCode),
                message: describeKafkaError(result.errorCode),
              },
            },
      );
    }
  }
  const failed = outcomes.some((outcome) => outcome.status === "failed");
  return {
    data: outcomes,
    text: renderTable(
      ["group", "status", "detail"],
      outcomes.map((outcome) => [outcome.group, outcome.status, outcome.error?.message ?? ""]),
    ),
    ...(failed ? { exitCode: ExitCode.failed } : {}),
  };
}

export async function groupSeek(
  context: CommandContext,
  group: string,
  options: { to: string; topic?: string[]; partition?: string[]; dryRun?: boolean },
): Promise<CommandResult> {
  const spec = parseOffsetSpec(options.to, "--to", false);
  const partitionFilter = parsePartitionList(options.partition);
  if (partitionFilter !== undefined && (options.topic ?? []).length !== 1) {
    throw new UsageError("--partition needs exactly one --topic, since partition numbers belong to a topic");
  }
  const client = await context.kafka();
  await client.metadata([]);
  const { coordinator, description } = await describeGroup(client, group);
  if (!inactiveStates.has(description.groupState)) {
    throw new OperationFailedError(
      `group "${group}" is ${description.groupState} with ${description.members.length} member(s); stop its consumers first (\`raftka group describe ${group}\` lists them), then seek`,
    );
  }
  const committed = await fetchCommittedOffsets(client, coordinator, group, null);
  const topicNames = options.topic ?? [...new Set(committed.map((entry) => entry.topic))];
  if (topicNames.length === 0) {
    throw new UsageError(`group "${group}" has no committed offsets; name the topics to seek with --topic`);
  }
  const changes = [];
  for (const name of topicNames) {
    const topic = await fetchTopic(client, name);
    const partitions = partitionFilter ?? topic.partitions.map((partition) => partition.partition);
    const missing = partitions.filter(
      (partition) => !topic.partitions.some((entry) => entry.partition === partition),
    );
    if (missing.length > 0) {
      throw new UsageError(
        `topic "${name}" has no partition ${missing.join(", ")}; it has 0 to ${topic.partitions.length - 1}`,
      );
    }
    const targets = await resolveOffsetSpec(client, topic, partitions, spec);
    if (spec.kind === "offset") {
      // Kafka's reset tool does the same: an offset outside the log would leave the group reading nothing
      // (past the end: the records written until then are skipped) or resetting on its own.
      const [starts, ends] = await Promise.all([
        listOffsets(client, topic, partitions, EARLIEST_TIMESTAMP),
        listOffsets(client, topic, partitions, LATEST_TIMESTAMP),
      ]);
      for (const partition of partitions) {
        const wanted = targets.get(partition)!;
        if (wanted > ends.get(partition)!) targets.set(partition, ends.get(partition)!);
        else if (wanted < starts.get(partition)!) targets.set(partition, starts.get(partition)!);
      }
    }
    for (const partition of partitions) {
      const previous = committed.find(
        (entry) => entry.topic === name && entry.partition === partition,
      )?.offset;
      changes.push({
        topic: name,
        partition,
        previousOffset: previous ?? null,
        offset: targets.get(partition)!,
      });
    }
  }
  if (!options.dryRun) {
    await commitOffsets(
      client,
      coordinator,
      group,
      changes.map((change) => ({ topic: change.topic, partition: change.partition, offset: change.offset })),
    );
  }
  return {
    data: { group, dryRun: options.dryRun ?? false, offsets: changes },
    text: renderSections([
      [
        null,
        `${options.dryRun ? `dry run: group "${group}" would move to these offsets` : `group "${group}" moved to these offsets`}:\n` +
          renderTable(
            ["topic", "partition", "previous-offset", "new-offset"],
            changes.map((change) => [
              change.topic,
              change.partition,
              change.previousOffset === null ? null : committedOffsetText(change.previousOffset),
              change.offset,
            ]),
          ),
      ],
    ]),
  };
}

/** Kafka's stored sentinels: -2 (earliest) and -1 (latest), as kafkajs' resetOffsets commits them. */
const EARLIEST_OFFSET = -2n;

function committedOffsetText(offset: bigint): string {
  if (offset === EARLIEST_OFFSET) return "earliest (-2)";
  if (offset < 0n) return `latest (${offset})`;
  return String(offset);
}
