import { ApiKey, decodeRecordBatch, ErrorCode, type FetchResponse, sliceBatches } from "@raftka/protocol";
import type { CommandContext, CommandResult } from "../context.js";
import { parseDuration } from "../duration.js";
import { OperationFailedError, UsageError } from "../errors.js";
import type { KafkaClient } from "../kafka/client.js";
import { commitOffsets, fetchCommittedOffsets } from "../kafka/group-offsets.js";
import { describeKafkaError } from "../kafka/kafka-errors.js";
import { type OffsetSpec, parseOffsetSpec, resolveOffsetSpec } from "../kafka/offset-spec.js";
import {
  byLeader,
  EARLIEST_TIMESTAMP,
  fetchTopic,
  LATEST_TIMESTAMP,
  listOffsets,
  type TopicInfo,
} from "../kafka/topics.js";
import { waitForTopic } from "../kafka/wait-for-topic.js";
import { parsePartitionList } from "../options.js";
import { toJson } from "../output/render.js";
import { sleep } from "../sleep.js";

export interface ConsumeOptions {
  partition?: string[];
  offset?: string;
  num?: number;
  exitAtEnd?: boolean;
  group?: string;
  printKey?: string;
  waitForTopic?: string;
}

/** Long-poll time of each Fetch: short enough that Ctrl-C is answered promptly. */
const FETCH_WAIT_MS = 500;
const PARTITION_MAX_BYTES = 1_048_576;
const FETCH_MAX_BYTES = 52_428_800;

interface PartitionState {
  readonly partition: number;
  position: bigint;
  /** With --exit-at-end: the log end when consuming started. */
  readonly stopAt: bigint | null;
  highWatermark: bigint;
  consumed: number;
}

/** Errors after which fresh metadata (a new leader) lets the next fetch succeed. */
const refreshMetadataOn = new Set<number>([
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.LEADER_NOT_AVAILABLE,
  ErrorCode.FENCED_LEADER_EPOCH,
  ErrorCode.UNKNOWN_LEADER_EPOCH,
  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
]);

function text(bytes: Buffer | null): string | null {
  return bytes === null ? null : bytes.toString("utf8");
}

/**
 * `raftka topic consume`: reads partitions from their leaders without joining a group and prints
 * each record as it arrives. With --group it starts at the group's committed offsets and commits
 * what it printed (as a simple consumer, so the group must have no active members).
 */
export async function topicConsume(
  context: CommandContext,
  name: string,
  options: ConsumeOptions,
): Promise<CommandResult | undefined> {
  const requested = parsePartitionList(options.partition);
  const spec: OffsetSpec | undefined =
    options.offset === undefined ? undefined : parseOffsetSpec(options.offset, "--offset", true);
  const waitMs =
    options.waitForTopic === undefined ? 0 : parseDuration(options.waitForTopic, "--wait-for-topic");
  const client = await context.kafka();
  const coordinator =
    options.group === undefined ? undefined : (await client.findCoordinator(options.group)).nodeId;
  let topic = await waitForTopic(context, client, name, waitMs);
  const all = topic.partitions.map((partition) => partition.partition);
  const partitions = requested ?? all;
  const unknown = partitions.filter((partition) => !all.includes(partition));
  if (unknown.length > 0) {
    throw new UsageError(
      `topic "${name}" has no partition ${unknown.join(", ")}; it has partitions 0 to ${all.length - 1}`,
    );
  }

  const starts = await startingOffsets(client, topic, partitions, spec, options.group, coordinator);
  if (spec?.kind === "offset") await checkInRange(client, topic, partitions, spec.offset);
  const ends = options.exitAtEnd ? await listOffsets(client, topic, partitions, LATEST_TIMESTAMP) : undefined;
  const states = new Map<number, PartitionState>(
    partitions.map((partition) => [
      partition,
      {
        partition,
        position: starts.get(partition)!,
        stopAt: ends?.get(partition) ?? null,
        highWatermark: -1n,
        consumed: 0,
      },
    ]),
  );

  const progress = context.progress();
  const json = context.settings.format === "json";
  let total = 0;
  let committed = new Map<number, bigint>();
  const limit = options.num ?? Number.POSITIVE_INFINITY;
  const finished = (state: PartitionState) => state.stopAt !== null && state.position >= state.stopAt;
  const report = () => {
    const lag = [...states.values()].reduce(
      (sum, state) =>
        sum + (state.highWatermark > state.position ? state.highWatermark - state.position : 0n),
      0n,
    );
    return `consumed ${total} records from ${name} (lag ${lag})`;
  };

  const commit = async () => {
    if (options.group === undefined || coordinator === undefined) return;
    const changed = [...states.values()].filter((state) => committed.get(state.partition) !== state.position);
    await commitOffsets(
      client,
      coordinator,
      options.group,
      changed.map((state) => ({ topic: name, partition: state.partition, offset: state.position })),
    );
    committed = new Map([...states.values()].map((state) => [state.partition, state.position]));
  };

  try {
    while (total < limit && !context.signal.aborted) {
      const active = [...states.values()].filter((state) => !finished(state));
      if (active.length === 0) break;
      let needMetadata = false;
      for (const [leader, group] of byLeader(topic, active)) {
        const response = await client.send(
          ApiKey.Fetch,
          {
            replicaId: -1,
            maxWaitMs: FETCH_WAIT_MS,
            minBytes: 1,
            maxBytes: FETCH_MAX_BYTES,
            isolationLevel: 0,
            sessionId: 0,
            sessionEpoch: -1,
            topics: [
              {
                topic: name,
                partitions: group.map((state) => ({
                  partition: state.partition,
                  currentLeaderEpoch: -1,
                  fetchOffset: state.position,
                  logStartOffset: -1n,
                  partitionMaxBytes: PARTITION_MAX_BYTES,
                })),
              },
            ],
            forgottenTopicsData: [],
            rackId: "",
          },
          leader,
        );
        if (response.errorCode !== undefined && response.errorCode !== ErrorCode.NONE) {
          throw new OperationFailedError(`fetching from ${name}: ${describeKafkaError(response.errorCode)}`);
        }
        for (const answer of partitionAnswers(response)) {
          const state = states.get(answer.partitionIndex);
          if (!state) continue;
          if (answer.errorCode !== ErrorCode.NONE) {
            if (refreshMetadataOn.has(answer.errorCode)) {
              needMetadata = true;
              continue;
            }
            if (answer.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) {
              // Retention removed what was next to read, or the log was truncated.
              await checkInRange(client, topic, [state.partition], state.position);
            }
            throw new OperationFailedError(
              `fetching ${name}/${state.partition}: ${describeKafkaError(answer.errorCode)}`,
            );
          }
          state.highWatermark = answer.highWatermark;
          for (const slice of sliceBatches(answer.records ?? Buffer.alloc(0)).batches) {
            if (slice.magic !== 2) {
              throw new OperationFailedError(
                `${name}/${state.partition} returned a magic ${slice.magic} message set, which this CLI does not read; use a Kafka client`,
              );
            }
            const batch = decodeRecordBatch(slice.bytes);
            const nextOffset = batch.header.baseOffset + BigInt(batch.header.lastOffsetDelta) + 1n;
            if (!batch.header.isControl) {
              for (const record of batch.records) {
                if (record.offset < state.position) continue;
                if (total >= limit || (state.stopAt !== null && record.offset >= state.stopAt)) break;
                context.io.stdout.write(
                  `${
                    json
                      ? toJson(
                          {
                            topic: name,
                            partition: state.partition,
                            offset: record.offset,
                            timestamp: record.timestamp,
                            key: text(record.key),
                            value: text(record.value),
                            headers: Object.fromEntries(
                              record.headers.map((header) => [header.key, text(header.value)]),
                            ),
                          },
                          0,
                        )
                      : options.printKey !== undefined
                        ? `${text(record.key) ?? ""}${options.printKey}${text(record.value) ?? ""}`
                        : (text(record.value) ?? "")
                  }\n`,
                );
                total++;
                state.consumed++;
                state.position = record.offset + 1n;
              }
            }
            if (total >= limit) break;
            if (state.stopAt !== null && state.position >= state.stopAt) break;
            if (nextOffset > state.position) state.position = nextOffset;
          }
          progress.update(report());
        }
      }
      await commit();
      if (needMetadata) {
        await sleep(200, context.signal);
        topic = await fetchTopic(client, name);
      }
    }
    await commit();
  } finally {
    progress.done(report());
  }
  if (total === 0 && options.exitAtEnd && !json) context.note(`raftka: no records to read in ${name}`);
  return undefined;
}

/** Throws, naming the partition's range, when `offset` is outside [log start, log end]. */
async function checkInRange(
  client: KafkaClient,
  topic: TopicInfo,
  partitions: readonly number[],
  offset: bigint,
): Promise<void> {
  const [first, next] = await Promise.all([
    listOffsets(client, topic, partitions, EARLIEST_TIMESTAMP),
    listOffsets(client, topic, partitions, LATEST_TIMESTAMP),
  ]);
  for (const partition of partitions) {
    const start = first.get(partition)!;
    const end = next.get(partition)!;
    if (offset < start || offset > end) {
      throw new OperationFailedError(
        `offset ${offset} is outside partition ${topic.name}/${partition}, ${describeOffsetRange(start, end)}; start with --offset beginning, end or an offset in that range`,
      );
    }
  }
}

/** A partition's offsets in words: "holds offsets 5 to 9 (next offset 10)", or "is empty at offset 10". */
export function describeOffsetRange(logStartOffset: bigint, logEndOffset: bigint): string {
  if (logStartOffset >= logEndOffset)
    return `which is empty at offset ${logEndOffset} (its next record's offset)`;
  return `which holds offsets ${logStartOffset} to ${logEndOffset - 1n} (next offset ${logEndOffset})`;
}

function partitionAnswers(response: FetchResponse) {
  return response.responses.flatMap((topic) => topic.partitions);
}

async function startingOffsets(
  client: KafkaClient,
  topic: TopicInfo,
  partitions: readonly number[],
  spec: OffsetSpec | undefined,
  group: string | undefined,
  coordinator: number | undefined,
): Promise<Map<number, bigint>> {
  if (spec !== undefined || group === undefined || coordinator === undefined) {
    return resolveOffsetSpec(client, topic, partitions, spec ?? { kind: "beginning" });
  }
  const committed = await fetchCommittedOffsets(
    client,
    coordinator,
    group,
    new Map([[topic.name, partitions]]),
  );
  const fallback = await resolveOffsetSpec(client, topic, partitions, { kind: "beginning" });
  return new Map(
    partitions.map((partition) => {
      const offset = committed.find((entry) => entry.partition === partition)?.offset ?? -1n;
      return [partition, offset >= 0n ? offset : fallback.get(partition)!];
    }),
  );
}
