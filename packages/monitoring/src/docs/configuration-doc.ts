import {
  brokerSettings,
  CLIENT_ENVIRONMENT_VARIABLES,
  CONFIG_FILE_VARIABLE,
  environmentVariableFor,
  settingCategories,
} from "../config/settings.js";
import { topicSettings } from "../config/topic-settings.js";
import { table } from "./markdown.js";

function code(text: string): string {
  return text === "" ? '`""`' : `\`${text}\``;
}

/** docs/configuration.md, generated from the settings schema so the two cannot disagree. */
export function renderConfigurationDoc(): string {
  const parts: string[] = [];
  parts.push(`# Configuration reference

<!-- Generated from packages/monitoring/src/config by \`pnpm docs:config\`; edit the schema, not this file. -->

Raftka uses Kafka's setting names wherever Kafka has one, so a Kafka \`server.properties\` mostly
carries over: the settings of Kafka's stock file that mean nothing here (\`process.roles\`,
\`controller.quorum.voters\`, \`num.network.threads\`, \`num.io.threads\`, socket buffer sizes,
\`offsets.topic.replication.factor\`, \`transaction.state.log.*\`, ...) and a ZooKeeper-mode file's
\`zookeeper.*\` keys (Raftka needs no ZooKeeper) are ignored with a warning at start;
any other unknown key is an error. Every setting below is read at start; those marked **yes** under "Run
time" can also be changed while the node runs (AlterConfigs on the broker resource; the admin API changes
log levels).

## Where settings come from

Later sources win: **defaults < config file < environment < command-line flags < run-time settings
stored in the metadata log**.

- **Config file**: one file, \`--config=<file>\` (given once: a second \`--config\` is an error) or the
  \`${CONFIG_FILE_VARIABLE}\` environment variable (\`--config\` wins). Either Kafka's
  \`.properties\` format (\`key=value\`, \`key: value\` or \`key value\`; \`#\` and \`!\` start comments;
  a trailing \`\\\` continues a line) or, for a \`.json\` file, one JSON object of flat keys:
  \`{"log.dirs": ["/var/lib/raftka"], "log.segment.bytes": 536870912}\`. A key may appear only once.
- **Environment**: \`RAFTKA_\` + the key in upper case with \`.\` as \`_\`
  (\`log.segment.bytes\` → \`RAFTKA_LOG_SEGMENT_BYTES\`). Any other \`RAFTKA_*\` variable is an error,
  except the CLI's own ${CLIENT_ENVIRONMENT_VARIABLES.map((name) => `\`${name}\``).join(" and ")}, which nodes ignore,
  and \`RAFTKA_CRC32C_NATIVE=false\`, read as the process loads: CRC-32C on @node-rs/crc32 instead of the
  native build (\`packages/crc32c\`), to compare the two (\`true\` or \`false\`; any other value is an error).
- **Flags**: \`--log.segment.bytes=536870912\` or \`--log.segment.bytes 536870912\`; a boolean flag
  alone (\`--auto.create.topics.enable\`) means \`true\`.
- **Run-time settings**: a dynamic setting changed while the node runs (AlterConfigs or
  IncrementalAlterConfigs on the broker resource, e.g. \`kafka-configs.sh --alter --entity-type brokers\`;
  the admin API's \`PUT /v1/log-levels\`, \`raftka cluster log-level\`) is stored in the metadata log and,
  as in Kafka, wins over the file, environment and flags at every later start too: this node's own value
  over the cluster default (\`--entity-default\`). The start logs each one it applies, with what it
  overrides and how to remove it (\`kafka-configs.sh ... --delete-config <key>\`, or
  \`raftka cluster log-level <component> default\`); removed, the setting falls back to the layers below.
- An empty value (\`s3.endpoint=\`) unsets an optional setting; for any other setting it is an error.
- Lists are comma-separated (\`log.dirs=/data/a,/data/b\`) or JSON arrays in a JSON file.

A node refuses to start on any problem and prints every problem at once, each naming the key, the
value, where it came from (\`server.properties:12\`, \`environment variable RAFTKA_NUM_PARTITIONS\`,
\`flag --raft.tick.ms\`) and what is allowed; an unknown key gets a did-you-mean suggestion. Settings
that depend on each other (Raft timings, session timeouts, cluster secret, S3 credentials) are
checked together. Secrets (type PASSWORD) are never printed.

Values above 2^53-1 for long settings (such as Kafka's \`9223372036854775807\`) are accepted and
mean "no limit"; such a setting is reported (DescribeConfigs, this page) as \`9223372036854775807\`, as
Kafka reports it.`);

  parts.push("## Broker settings");
  for (const [category, title] of Object.entries(settingCategories)) {
    const rows = [...brokerSettings.values()]
      .filter((definition) => definition.category === category)
      .map((definition) => [
        `${code(definition.key)}<br>${code(environmentVariableFor(definition.key))}`,
        definition.default === null
          ? `unset: ${definition.unsetMeans ?? "no value"}`
          : code(definition.type.format(definition.default)),
        `${definition.type.allowed} (${definition.type.kafkaType})`,
        definition.dynamic ? "yes" : "no",
        definition.doc,
      ]);
    parts.push(
      `### ${title}\n\n${table(["Key and environment variable", "Default", "Allowed", "Run time", "Description"], rows)}`,
    );
  }

  parts.push(`## Topic settings

Set per topic with CreateTopics or AlterConfigs (\`kafka-configs.sh\`, kcat, any admin client).
A topic without its own value uses the broker setting in the second column (the first one that is
set, for keys with several), or the value given there for keys no broker setting supplies. DescribeConfigs reports each value's source as Kafka does:
\`DYNAMIC_TOPIC_CONFIG\` (the topic's own), \`DYNAMIC_BROKER_CONFIG\` (changed at run time for this
node, broker \`<node.id>\`), \`DYNAMIC_DEFAULT_BROKER_CONFIG\` (changed at run time as the cluster default,
broker \`""\`, which DescribeConfigs of broker \`""\` lists alone), \`STATIC_BROKER_CONFIG\` (config file,
environment or flag) or \`DEFAULT_CONFIG\`. Invalid values
and unknown keys are refused with \`INVALID_CONFIG\` and a message naming the key and what is allowed.

A null value is refused as Kafka refuses it, never read as "remove the override": CreateTopics answers
\`INVALID_CONFIG\` (\`Null value not supported for topic configs: <keys>\`) and creates no topic;
AlterConfigs, and IncrementalAlterConfigs for any operation but DELETE, answer \`INVALID_REQUEST\`
(\`Null value not supported for : <keys>\`) and change nothing of that resource, topic or broker alike
(each other resource of the request is answered on its own; \`validateOnly\` answers the same). To
remove an override use IncrementalAlterConfigs' DELETE (\`kafka-configs.sh --delete-config <key>\`), or
leave the key out of an AlterConfigs, which replaces the resource's whole set.`);
  const topicRows = [...topicSettings.values()].map((definition) => [
    code(definition.key),
    definition.synonyms.length > 0
      ? definition.synonyms
          .map((synonym) =>
            synonym.scale === undefined ? code(synonym.key) : `${code(synonym.key)} × ${synonym.scale}`,
          )
          .join(", ")
      : `none: ${code(definition.type.format(definition.fallback))}`,
    `${definition.type.allowed} (${definition.type.kafkaType})`,
    definition.doc,
  ]);
  parts.push(table(["Topic key", "Default from broker setting", "Allowed", "Description"], topicRows));
  return `${parts.join("\n\n")}\n`;
}
