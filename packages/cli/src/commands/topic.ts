import { ApiKey, ErrorCode, errorName, ZERO_UUID } from "@raftka/protocol";
import type { CommandContext, CommandResult } from "../context.js";
import { ExitCode, UsageError } from "../errors.js";
import type { KafkaClient } from "../kafka/client.js";
import { checkKafkaError, describeKafkaError } from "../kafka/kafka-errors.js";
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, listOffsets, topicsFromMetadata } from "../kafka/topics.js";
import { parseKeyValue } from "../options.js";
import { renderFields, renderSections, renderTable } from "../output/render.js";

/** DescribeConfigs resource type of a topic. */
const TOPIC_RESOURCE = 2;

/** DescribeConfigs `configSource` values, by Kafka's names. */
const configSources: Record<number, string> = {
  0: "UNKNOWN",
  1: "TOPIC",
  2: "DYNAMIC_BROKER",
  3: "DYNAMIC_DEFAULT_BROKER",
  4: "STATIC_BROKER",
  5: "DEFAULT",
  6: "DYNAMIC_BROKER_LOGGER",
};

interface Outcome {
  readonly name: string;
  readonly status: string;
  readonly error?: { readonly code: number; readonly name: string; readonly message: string };
}

function outcomeTable(outcomes: readonly Outcome[]): string {
  return renderTable(
    ["topic", "status", "detail"],
    outcomes.map((outcome) => [outcome.name, outcome.status, outcome.error?.message ?? ""]),
  );
}

function failure(code: number, message: string | null | undefined): Outcome["error"] {
  return { code, name: errorName(code), message: describeKafkaError(code, message) };
}

/** CreateTopics and DeleteTopics must go to the controller. */
async function controllerOf(client: KafkaClient): Promise<number | undefined> {
  const metadata = await client.metadata([]);
  const controller = metadata.controllerId ?? -1;
  return controller >= 0 && metadata.brokers.some((broker) => broker.nodeId === controller)
    ? controller
    : undefined;
}

export async function topicList(
  context: CommandContext,
  options: { internal?: boolean },
): Promise<CommandResult> {
  const client = await context.kafka();
  const topics = topicsFromMetadata(await client.metadata(null))
    .filter((topic) => options.internal || !topic.internal)
    .sort((a, b) => a.name.localeCompare(b.name));
  const rows = topics.map((topic) => ({
    name: topic.name,
    topicId: topic.topicId,
    internal: topic.internal,
    partitions: topic.partitions.length,
    replicas: Math.max(0, ...topic.partitions.map((partition) => partition.replicas.length)),
    ...(topic.errorCode === ErrorCode.NONE ? {} : { error: errorName(topic.errorCode) }),
  }));
  return {
    data: rows,
    text: renderTable(
      ["name", "partitions", "replicas"],
      rows.map((row) => [row.internal ? `${row.name} (internal)` : row.name, row.partitions, row.replicas]),
    ),
  };
}

interface ConfigEntry {
  readonly name: string;
  readonly value: string | null;
  readonly source: string;
  readonly readOnly: boolean;
  readonly sensitive: boolean;
}

async function describeTopicConfigs(
  client: KafkaClient,
  names: readonly string[],
): Promise<Map<string, ConfigEntry[]>> {
  const result = new Map<string, ConfigEntry[]>();
  if (names.length === 0) return result;
  const response = await client.send(ApiKey.DescribeConfigs, {
    resources: names.map((name) => ({
      resourceType: TOPIC_RESOURCE,
      resourceName: name,
      configurationKeys: null,
    })),
    includeSynonyms: false,
    includeDocumentation: false,
  });
  for (const entry of response.results) {
    checkKafkaError(
      entry.errorCode,
      `describing the configuration of topic "${entry.resourceName}"`,
      entry.errorMessage,
    );
    result.set(
      entry.resourceName,
      entry.configs
        .map((config) => ({
          name: config.name,
          value: config.isSensitive ? null : config.value,
          source:
            config.configSource !== undefined
              ? (configSources[config.configSource] ?? String(config.configSource))
              : config.isDefault
                ? "DEFAULT"
                : "TOPIC",
          readOnly: config.readOnly,
          sensitive: config.isSensitive,
        }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    );
  }
  return result;
}

export async function topicDescribe(
  context: CommandContext,
  names: readonly string[],
  options: { allConfigs?: boolean },
): Promise<CommandResult> {
  const client = await context.kafka();
  const topics = topicsFromMetadata(await client.metadata(names));
  const found = topics.filter((topic) => topic.errorCode === ErrorCode.NONE);
  const missing = topics.filter((topic) => topic.errorCode !== ErrorCode.NONE);
  const configs = client.supports(ApiKey.DescribeConfigs)
    ? await describeTopicConfigs(
        client,
        found.map((topic) => topic.name),
      )
    : new Map<string, ConfigEntry[]>();
  const described = await Promise.all(
    found.map(async (topic) => {
      const partitions = topic.partitions.map((partition) => partition.partition);
      const [starts, ends] = await Promise.all([
        listOffsets(client, topic, partitions, EARLIEST_TIMESTAMP),
        listOffsets(client, topic, partitions, LATEST_TIMESTAMP),
      ]);
      return {
        name: topic.name,
        topicId: topic.topicId,
        internal: topic.internal,
        partitions: topic.partitions.map((partition) => ({
          partition: partition.partition,
          leader: partition.leader,
          leaderEpoch: partition.leaderEpoch,
          replicas: partition.replicas,
          isr: partition.isr,
          offlineReplicas: partition.offlineReplicas,
          logStartOffset: starts.get(partition.partition) ?? null,
          highWatermark: ends.get(partition.partition) ?? null,
        })),
        configs: (configs.get(topic.name) ?? []).filter(
          (config) => options.allConfigs || config.source !== "DEFAULT",
        ),
      };
    }),
  );
  for (const topic of missing)
    context.note(`raftka: topic "${topic.name}": ${describeKafkaError(topic.errorCode)}`);
  const text = described
    .map((topic) =>
      renderSections([
        [
          null,
          renderFields([
            ["name", topic.name],
            ["id", topic.topicId],
            ["internal", topic.internal],
            ["partitions", topic.partitions.length],
            ["replicas", Math.max(0, ...topic.partitions.map((partition) => partition.replicas.length))],
            [
              "records",
              topic.partitions.reduce(
                (sum, partition) =>
                  sum + ((partition.highWatermark ?? 0n) - (partition.logStartOffset ?? 0n)),
                0n,
              ),
            ],
          ]),
        ],
        [
          "PARTITIONS",
          renderTable(
            ["partition", "leader", "epoch", "replicas", "isr", "log-start-offset", "high-watermark"],
            topic.partitions.map((partition) => [
              partition.partition,
              partition.leader,
              partition.leaderEpoch,
              partition.replicas.join(","),
              partition.isr.join(","),
              partition.logStartOffset,
              partition.highWatermark,
            ]),
          ),
        ],
        [
          options.allConfigs ? "CONFIGS" : "CONFIGS (not default; --all-configs shows all)",
          topic.configs.length === 0
            ? "(none)"
            : renderTable(
                ["key", "value", "source"],
                topic.configs.map((config) => [
                  config.name,
                  config.sensitive ? "(sensitive)" : config.value,
                  config.source,
                ]),
              ),
        ],
      ]),
    )
    .join("\n\n");
  return {
    data: described,
    text,
    ...(missing.length > 0 ? { exitCode: ExitCode.failed } : {}),
  };
}

export async function topicCreate(
  context: CommandContext,
  names: readonly string[],
  options: {
    partitions?: number;
    replicas?: number;
    config?: string[];
    ifNotExists?: boolean;
    validateOnly?: boolean;
  },
): Promise<CommandResult> {
  const configs = (options.config ?? []).map((entry) => parseKeyValue(entry, "--config"));
  const client = await context.kafka();
  const controller = await controllerOf(client);
  const response = await client.send(
    ApiKey.CreateTopics,
    {
      topics: names.map((name) => ({
        name,
        numPartitions: options.partitions ?? -1,
        replicationFactor: options.replicas ?? -1,
        assignments: [],
        configs: configs.map(([name, value]) => ({ name, value })),
      })),
      timeoutMs: context.settings.requestTimeoutMs,
      validateOnly: options.validateOnly ?? false,
    },
    controller,
  );
  const outcomes = response.topics.map((topic): Outcome & Record<string, unknown> => {
    if (topic.errorCode === ErrorCode.NONE) {
      return {
        name: topic.name,
        status: options.validateOnly ? "valid" : "created",
        // Older versions leave these out (decoded as zero id and -1): unknown, not made up.
        topicId: topic.topicId === undefined || topic.topicId === ZERO_UUID ? null : topic.topicId,
        partitions: (topic.numPartitions ?? -1) < 0 ? null : topic.numPartitions,
        replicas: (topic.replicationFactor ?? -1) < 0 ? null : topic.replicationFactor,
      };
    }
    if (topic.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS && options.ifNotExists) {
      return { name: topic.name, status: "exists" };
    }
    return { name: topic.name, status: "failed", error: failure(topic.errorCode, topic.errorMessage) };
  });
  const failed = outcomes.some((outcome) => outcome.status === "failed");
  return { data: outcomes, text: outcomeTable(outcomes), ...(failed ? { exitCode: ExitCode.failed } : {}) };
}

export async function topicDelete(
  context: CommandContext,
  names: readonly string[],
  options: { ifExists?: boolean },
): Promise<CommandResult> {
  const client = await context.kafka();
  const controller = await controllerOf(client);
  const response = await client.send(
    ApiKey.DeleteTopics,
    {
      topicNames: [...names],
      topics: names.map((name) => ({ name, topicId: ZERO_UUID })),
      timeoutMs: context.settings.requestTimeoutMs,
    },
    controller,
  );
  const outcomes = response.responses.map((topic): Outcome => {
    const name = topic.name ?? "";
    if (topic.errorCode === ErrorCode.NONE) return { name, status: "deleted" };
    if (topic.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION && options.ifExists) {
      return { name, status: "absent" };
    }
    return { name, status: "failed", error: failure(topic.errorCode, topic.errorMessage) };
  });
  const failed = outcomes.some((outcome) => outcome.status === "failed");
  return { data: outcomes, text: outcomeTable(outcomes), ...(failed ? { exitCode: ExitCode.failed } : {}) };
}

/** IncrementalAlterConfigs operations. */
const SET = 0;
const DELETE = 1;

export async function topicAlterConfig(
  context: CommandContext,
  name: string,
  options: { set?: string[]; delete?: string[]; dryRun?: boolean },
): Promise<CommandResult> {
  const sets = (options.set ?? []).map((entry) => parseKeyValue(entry, "--set"));
  const deletes = options.delete ?? [];
  if (sets.length === 0 && deletes.length === 0) {
    throw new UsageError("nothing to change; give --set key=value and/or --delete key (repeatable)");
  }
  const touched = [...sets.map(([key]) => key), ...deletes];
  const duplicate = touched.find((key, index) => touched.indexOf(key) !== index);
  if (duplicate) throw new UsageError(`"${duplicate}" is given more than once; set or delete each key once`);
  const client = await context.kafka();
  const validateOnly = options.dryRun ?? false;
  if (client.supports(ApiKey.IncrementalAlterConfigs)) {
    const response = await client.send(ApiKey.IncrementalAlterConfigs, {
      resources: [
        {
          resourceType: TOPIC_RESOURCE,
          resourceName: name,
          configs: [
            ...sets.map(([key, value]) => ({ name: key, configOperation: SET, value })),
            ...deletes.map((key) => ({ name: key, configOperation: DELETE, value: null })),
          ],
        },
      ],
      validateOnly,
    });
    for (const entry of response.responses) {
      checkKafkaError(entry.errorCode, `changing the configuration of topic "${name}"`, entry.errorMessage);
    }
  } else {
    // AlterConfigs replaces a topic's whole configuration, so keep every setting made on the topic.
    const current = (await describeTopicConfigs(client, [name])).get(name) ?? [];
    const merged = new Map(
      current
        .filter((config) => config.source === "TOPIC" && !config.sensitive)
        .map((config) => [config.name, config.value]),
    );
    for (const [key, value] of sets) merged.set(key, value);
    for (const key of deletes) merged.delete(key);
    const response = await client.send(ApiKey.AlterConfigs, {
      resources: [
        {
          resourceType: TOPIC_RESOURCE,
          resourceName: name,
          configs: [...merged].map(([key, value]) => ({ name: key, value })),
        },
      ],
      validateOnly,
    });
    for (const entry of response.responses) {
      checkKafkaError(entry.errorCode, `changing the configuration of topic "${name}"`, entry.errorMessage);
    }
  }
  const after = (await describeTopicConfigs(client, [name])).get(name) ?? [];
  const changed = touched.map((key) => {
    const entry = after.find((config) => config.name === key);
    return { name: key, value: entry?.value ?? null, source: entry?.source ?? "-" };
  });
  return {
    data: { topic: name, validateOnly, configs: changed },
    text: renderSections([
      [null, validateOnly ? `valid (dry run, nothing changed): ${name}` : `updated: ${name}`],
      [
        null,
        renderTable(
          ["key", validateOnly ? "current value" : "value", "source"],
          changed.map((config) => [config.name, config.value, config.source]),
        ),
      ],
    ]),
  };
}
