import { ErrorCode } from "@raftka/protocol";
import type { MetadataImage } from "./image.js";
import type { MetadataRecord } from "./records.js";
import { topicNameProblem } from "./topic-names.js";
import type { ConfigValidator, OperationError } from "./topic-operations.js";

/** Kafka's ConfigResource.Type codes. */
export const ConfigResourceType = { TOPIC: 2, BROKER: 4, BROKER_LOGGER: 8 } as const;
/** Kafka's AlterConfigOp.OpType codes (IncrementalAlterConfigs). */
export const AlterConfigOperation = { SET: 0, DELETE: 1, APPEND: 2, SUBTRACT: 3 } as const;

export interface ConfigEntryChange {
  readonly name: string;
  /** SET for every AlterConfigs entry: that API removes an override by leaving it out, not by a null value. */
  readonly operation: number;
  /** Null only makes sense with DELETE; anywhere else the resource is refused (see entriesProblem). */
  readonly value: string | null;
}

export interface ConfigResourceChange {
  readonly resourceType: number;
  readonly resourceName: string;
  readonly entries: readonly ConfigEntryChange[];
}

export interface ConfigPlanContext {
  readonly image: MetadataImage;
  readonly nodeId: number;
  /** Whether AlterConfigs replaces the resource's whole set of overrides (true) or IncrementalAlterConfigs. */
  readonly replaceAll: boolean;
  readonly validateTopic: ConfigValidator;
  /** Checks broker overrides (the resource's complete new set); returns the Kafka error or undefined. */
  readonly validateBroker: (
    resourceName: string,
    overrides: ReadonlyMap<string, string>,
  ) => OperationError | undefined;
  /** The value APPEND/SUBTRACT start from when the key has no override (its effective default). */
  readonly currentListValue: (resource: ConfigResourceChange, key: string) => string | undefined;
  /** Keys whose values are lists (APPEND/SUBTRACT apply). */
  readonly isListKey: (resource: ConfigResourceChange, key: string) => boolean;
}

export interface ConfigOutcome {
  readonly resourceType: number;
  readonly resourceName: string;
  error?: OperationError;
}

const fail = (code: number, message: string): OperationError => ({ code, message });

/**
 * The checks Kafka's ConfigAdminManager.preprocess makes on a resource's entries before it looks at the
 * resource itself (name, type, existence), so their errors win over those: a config named twice, then
 * a null value on anything but DELETE. Kafka refuses the null rather than reading it as "remove the
 * override", which a client bug sending null by mistake would otherwise do silently; the whole resource
 * is refused and nothing of it changes.
 */
export function entriesProblem(entries: readonly ConfigEntryChange[]): OperationError | undefined {
  const seen = new Set<string>();
  for (const entry of entries) {
    if (seen.has(entry.name)) {
      return fail(
        ErrorCode.INVALID_REQUEST,
        `config ${entry.name} is listed more than once; list each config once`,
      );
    }
    seen.add(entry.name);
  }
  const nulls = entries
    .filter((entry) => entry.value === null && entry.operation !== AlterConfigOperation.DELETE)
    .map((entry) => entry.name);
  // Kafka's exact message (names joined by ", "), which clients and tools show as is.
  if (nulls.length > 0)
    return fail(ErrorCode.INVALID_REQUEST, `Null value not supported for : ${nulls.join(", ")}`);
  return undefined;
}

/** New overrides of one resource after applying the request's entries, or the error. */
function applyEntries(
  current: ReadonlyMap<string, string>,
  resource: ConfigResourceChange,
  context: ConfigPlanContext,
): Map<string, string | null> | OperationError {
  const next = new Map<string, string | null>(context.replaceAll ? [] : current);
  for (const entry of resource.entries) {
    switch (entry.operation) {
      case AlterConfigOperation.SET:
        next.set(entry.name, entry.value);
        break;
      case AlterConfigOperation.DELETE:
        next.set(entry.name, null);
        break;
      case AlterConfigOperation.APPEND:
      case AlterConfigOperation.SUBTRACT: {
        if (!context.isListKey(resource, entry.name)) {
          return fail(
            ErrorCode.INVALID_CONFIG,
            `${entry.name} is not a list config: APPEND and SUBTRACT apply to lists only; use SET`,
          );
        }
        const base = current.get(entry.name) ?? context.currentListValue(resource, entry.name) ?? "";
        const items = base.split(",").filter((item) => item !== "");
        const changed = (entry.value ?? "").split(",").filter((item) => item !== "");
        const result =
          entry.operation === AlterConfigOperation.APPEND
            ? [...items, ...changed.filter((item) => !items.includes(item))]
            : items.filter((item) => !changed.includes(item));
        next.set(entry.name, result.join(","));
        break;
      }
      default:
        return fail(
          ErrorCode.INVALID_REQUEST,
          `config operation ${entry.operation} for ${entry.name} is unknown; use 0 (SET), 1 (DELETE), 2 (APPEND) or 3 (SUBTRACT)`,
        );
    }
  }
  return next;
}

/** Config records turning `current` into `wanted` (only what changes). */
function diffRecords(
  resourceType: "topic" | "broker",
  resourceName: string,
  current: ReadonlyMap<string, string>,
  wanted: ReadonlyMap<string, string>,
): MetadataRecord[] {
  const records: MetadataRecord[] = [];
  for (const [key, value] of wanted) {
    if (current.get(key) !== value)
      records.push({ type: "config", v: 1, resourceType, resourceName, key, value });
  }
  for (const key of current.keys()) {
    if (!wanted.has(key))
      records.push({ type: "config", v: 1, resourceType, resourceName, key, value: null });
  }
  return records;
}

/**
 * Plans AlterConfigs / IncrementalAlterConfigs for topic and broker resources: every resource is validated as
 * a whole (its complete new set of overrides), and only the changes become records. BROKER_LOGGER resources
 * are not persisted and are left to the caller.
 */
export function planConfigChanges(
  resources: readonly ConfigResourceChange[],
  context: ConfigPlanContext,
): { outcomes: ConfigOutcome[]; records: MetadataRecord[] } {
  const records: MetadataRecord[] = [];
  const counts = new Map<string, number>();
  const keyOf = (resource: ConfigResourceChange) => `${resource.resourceType}:${resource.resourceName}`;
  for (const resource of resources) counts.set(keyOf(resource), (counts.get(keyOf(resource)) ?? 0) + 1);

  const outcomes = resources.map((resource): ConfigOutcome => {
    const outcome: ConfigOutcome = {
      resourceType: resource.resourceType,
      resourceName: resource.resourceName,
    };
    const error = planOne(resource);
    if (error) outcome.error = error;
    return outcome;
  });
  return { outcomes, records };

  function planOne(resource: ConfigResourceChange): OperationError | undefined {
    if ((counts.get(keyOf(resource)) ?? 0) > 1) {
      return fail(
        ErrorCode.INVALID_REQUEST,
        `resource ${resource.resourceName} appears more than once; list it once`,
      );
    }
    const entriesError = entriesProblem(resource.entries);
    if (entriesError) return entriesError;
    if (resource.resourceType === ConfigResourceType.TOPIC) {
      const topic = context.image.topic(resource.resourceName);
      if (!topic) {
        // As Kafka: a name no topic could have is the client's mistake, not a topic that is missing.
        const nameProblem = topicNameProblem(resource.resourceName);
        if (nameProblem !== undefined) return fail(ErrorCode.INVALID_TOPIC_EXCEPTION, nameProblem);
        return fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic ${resource.resourceName} does not exist`);
      }
      const current = new Map(Object.entries(topic.configs) as [string, string][]);
      const next = applyEntries(current, resource, context);
      if (!(next instanceof Map)) return next;
      const validated = context.validateTopic(Object.fromEntries(next));
      if (!validated.ok) return fail(ErrorCode.INVALID_CONFIG, validated.message);
      records.push(
        ...diffRecords("topic", topic.name, current, new Map(Object.entries(validated.overrides))),
      );
      return undefined;
    }
    if (resource.resourceType === ConfigResourceType.BROKER) {
      if (resource.resourceName !== "" && resource.resourceName !== String(context.nodeId)) {
        return fail(
          ErrorCode.INVALID_REQUEST,
          `broker ${resource.resourceName} is not this node (${context.nodeId}); name this node's id or "" for the cluster default`,
        );
      }
      const current = context.image.brokerConfig(resource.resourceName);
      const next = applyEntries(current, resource, context);
      if (!(next instanceof Map)) return next;
      const wanted = new Map<string, string>();
      for (const [key, value] of next) if (value !== null) wanted.set(key, value);
      const error = context.validateBroker(resource.resourceName, wanted);
      if (error) return error;
      records.push(...diffRecords("broker", resource.resourceName, current, wanted));
      return undefined;
    }
    return fail(
      ErrorCode.INVALID_REQUEST,
      `config resource type ${resource.resourceType} cannot be altered here; use 2 (topic), 4 (broker) or 8 (broker logger)`,
    );
  }
}
