/** Kafka's topic name rules (org.apache.kafka.common.internals.Topic). */
export const MAX_TOPIC_NAME_LENGTH = 249;
const LEGAL_TOPIC_NAME = /^[a-zA-Z0-9._-]+$/;

/** The metadata log's directory name; no topic may take it. */
export const METADATA_TOPIC = "__cluster_metadata";
export const CONSUMER_OFFSETS_TOPIC = "__consumer_offsets";
export const TRANSACTION_STATE_TOPIC = "__transaction_state";

/** Why `name` is not a legal topic name, or undefined when it is. */
export function topicNameProblem(name: string | null | undefined): string | undefined {
  if (name === null || name === undefined || name.length === 0)
    return "topic name is empty; give the topic a name";
  if (name === "." || name === "..") return `topic name "${name}" is not allowed; pick another name`;
  if (name.length > MAX_TOPIC_NAME_LENGTH) {
    return `topic name is ${name.length} characters long, the limit is ${MAX_TOPIC_NAME_LENGTH}; use a shorter name`;
  }
  if (!LEGAL_TOPIC_NAME.test(name)) {
    return `topic name "${name}" is illegal: it may contain only ASCII letters, digits, '.', '_' and '-'`;
  }
  if (name === METADATA_TOPIC) {
    return `topic name "${name}" is reserved for the cluster metadata log; pick another name`;
  }
  return undefined;
}

/** Kafka refuses topics whose names differ only in '.' versus '_' (their metric names would collide). */
export function collisionKey(name: string): string {
  return name.replace(/\./g, "_");
}

export function isInternalTopicName(name: string): boolean {
  return name === CONSUMER_OFFSETS_TOPIC || name === TRANSACTION_STATE_TOPIC;
}
