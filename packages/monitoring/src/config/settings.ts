import {
  boolean,
  type HostPort,
  hostPort,
  integer,
  type Listener,
  LONG_MAX,
  list,
  listener,
  oneOf,
  text,
  type ValueType,
} from "./value-types.js";

/** Sections of docs/configuration.md, in the order they appear there. */
export const settingCategories = {
  node: "Node and listeners",
  cluster: "Cluster",
  topics: "Topic defaults",
  log: "Log segments, retention and flushing",
  replication: "Replication and Raft",
  groups: "Consumer groups and offsets",
  transactions: "Producers and transactions",
  requests: "Request limits",
  objectStore: "Object store",
  observability: "Logging and metrics",
} as const;
export type SettingCategory = keyof typeof settingCategories;

export interface SettingDefinition<T = unknown, Nullable extends boolean = boolean> {
  readonly key: string;
  readonly type: ValueType<T>;
  /** The value used when nothing sets the key; `null` only for settings documented with `unsetMeans`. */
  readonly default: Nullable extends true ? T | null : T;
  readonly nullable: Nullable;
  /** What an unset (null) value means, e.g. "derived from listeners". */
  readonly unsetMeans?: string;
  readonly doc: string;
  /** Whether the running broker applies a change without a restart (AlterConfigs, admin API). */
  readonly dynamic: boolean;
  readonly category: SettingCategory;
  /** Secrets are never printed: not in logs, DescribeConfigs, error messages or docs. */
  readonly sensitive: boolean;
}

interface Details {
  readonly doc: string;
  readonly category: SettingCategory;
  readonly dynamic?: boolean;
}

type Unkeyed<T, N extends boolean> = Omit<SettingDefinition<T, N>, "key">;

function setting<T>(type: ValueType<T>, defaultValue: T, details: Details): Unkeyed<T, false> {
  return {
    type,
    default: defaultValue,
    nullable: false,
    doc: details.doc,
    dynamic: details.dynamic ?? false,
    category: details.category,
    sensitive: type.kafkaType === "PASSWORD",
  };
}

function optional<T>(type: ValueType<T>, unsetMeans: string, details: Details): Unkeyed<T, true> {
  return {
    type,
    default: null,
    nullable: true,
    unsetMeans,
    doc: details.doc,
    dynamic: details.dynamic ?? false,
    category: details.category,
    sensitive: type.kafkaType === "PASSWORD",
  };
}

const ms = (min: number, width: "INT" | "LONG" = "LONG", max?: number) =>
  integer({ min, width, unit: "ms", ...(max === undefined ? {} : { max }) });
const bytes = (min: number, width: "INT" | "LONG" = "INT") => integer({ min, width, unit: "bytes" });

export const logLevels = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];
/** Components with their own child logger and their own `log.level.<component>` key. */
export const logComponents = ["server", "storage", "raft", "controller", "group", "admin"] as const;
export type LogComponent = (typeof logComponents)[number];

export const compressionTypes = ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"] as const;
export const timestampTypes = ["CreateTime", "LogAppendTime"] as const;
export const cleanupPolicies = ["delete", "compact"] as const;

function componentLevel(component: LogComponent): Unkeyed<LogLevel, true> {
  return optional(oneOf(logLevels), "uses log.level", {
    category: "observability",
    dynamic: true,
    doc: `Log level of the \`${component}\` component, overriding \`log.level\` for it alone.`,
  });
}

const table = {
  // Node and listeners
  "node.id": setting(integer({ min: 0 }), 0, {
    category: "node",
    doc: "This node's id, unique in the cluster. Kafka clients see it as the broker id.",
  }),
  listeners: setting(
    list(listener(), { minItems: 1, unique: true }),
    [{ name: "PLAINTEXT", host: "0.0.0.0", port: 9092 }] as Listener[],
    {
      category: "node",
      doc: "Where the Kafka protocol is served. Every listener speaks PLAINTEXT. Port 0 picks a free port.",
    },
  ),
  "advertised.listeners": optional(
    list(listener(), { minItems: 1, unique: true }),
    "the listeners, with an empty or 0.0.0.0 host replaced by localhost: set it to the address clients on other machines use",
    {
      category: "node",
      doc: "The addresses clients are told to connect to (Metadata responses), per listener name.",
    },
  ),
  "admin.listener": setting(hostPort(), { host: "", port: 9644 } as HostPort, {
    category: "node",
    doc: "Where the admin HTTP server listens: /metrics, /v1/health/live, /v1/health/ready, /v1/status.",
  }),
  "log.dirs": setting(
    list(text({ pattern: /^.+$/, describe: "a directory path" }), { minItems: 1, unique: true }),
    ["./data"],
    {
      category: "node",
      doc: "Directories that hold partition logs and node state. Relative paths are relative to the working directory.",
    },
  ),
  "shutdown.timeout.ms": setting(ms(0), 30_000, {
    category: "node",
    doc: "How long a graceful shutdown (SIGTERM) may take to hand over leadership and flush before the process exits anyway.",
  }),
  "connections.max.idle.ms": setting(ms(1), 600_000, {
    category: "node",
    doc: "Client connections idle for longer than this are closed.",
  }),
  "helper.threads.sched.batch": setting(boolean(), true, {
    category: "node",
    doc: "Run the broker's helper threads (libuv's file I/O pool, V8's collector and compiler threads) under Linux's SCHED_BATCH policy, so that waking one for a write or an fsync never takes the CPU from the event loop's thread: with every CPU busy (two CPUs shared with a load generator) the event loop otherwise lost its CPU at each hand-off and waited for it back (docs/benchmarks.md, \"Helper threads under SCHED_BATCH\"). The price: a woken helper waits for a free CPU or the end of the running thread's time slice, so an fsync's end reaches the event loop later, and acks=all answers took up to about 1 ms longer at p99 there. Threads given another policy (chrt) keep it; `ps -L -o tid,class` shows B for batch. Linux only.",
  }),

  // Cluster
  "cluster.listener": setting(hostPort(), { host: "", port: 9645 } as HostPort, {
    category: "cluster",
    doc: "Where this node will accept Raft traffic from the other nodes once multi-node clusters are built; not opened yet (a single node's Raft groups talk to themselves).",
  }),
  "cluster.advertised.listener": optional(
    hostPort(),
    "cluster.listener with an empty or 0.0.0.0 host replaced by this machine's host name",
    {
      category: "cluster",
      doc: "The address other nodes use to reach this node's cluster listener.",
    },
  ),
  "cluster.seeds": setting(list(hostPort({ remote: true }), { unique: true }), [] as HostPort[], {
    category: "cluster",
    doc: "Cluster addresses (host:port) of nodes to form or join a cluster with. Empty runs a single node, the only mode built so far: a node with seeds set refuses to start rather than run alone.",
  }),
  "cluster.secret": optional(
    text({ sensitive: true, pattern: /^.{16,}$/, describe: "at least 16 characters" }),
    "no secret (single node only)",
    {
      category: "cluster",
      doc: "Shared secret every node of the cluster presents to the others. Required when cluster.seeds is set.",
    },
  ),

  // Topic defaults
  "num.partitions": setting(integer({ min: 1 }), 1, {
    category: "topics",
    doc: "Partitions of an automatically created topic, and of CreateTopics requests that ask for the default (-1).",
  }),
  "default.replication.factor": setting(integer({ min: 1 }), 1, {
    category: "topics",
    doc: "Replicas of an automatically created topic, and of CreateTopics requests that ask for the default (-1).",
  }),
  "auto.create.topics.enable": setting(boolean(), true, {
    category: "topics",
    doc: "Create a topic when a client asks Metadata for one that does not exist.",
  }),
  "delete.topic.enable": setting(boolean(), true, {
    category: "topics",
    doc: "Allow DeleteTopics. When false, DeleteTopics answers TOPIC_DELETION_DISABLED.",
  }),
  "min.insync.replicas": setting(integer({ min: 1 }), 1, {
    category: "topics",
    dynamic: true,
    doc: "With acks=all, a write is refused with NOT_ENOUGH_REPLICAS unless at least this many replicas are in sync.",
  }),
  "compression.type": setting(oneOf(compressionTypes), "producer", {
    category: "topics",
    dynamic: true,
    doc: "Compression of stored batches; `producer` keeps whatever codec the producer used.",
  }),
  "log.message.timestamp.type": setting(oneOf(timestampTypes), "CreateTime", {
    category: "topics",
    dynamic: true,
    doc: "Whether a record's timestamp is the producer's (CreateTime) or the broker's append time (LogAppendTime).",
  }),
  "log.message.timestamp.difference.max.ms": setting(ms(0), LONG_MAX, {
    category: "topics",
    dynamic: true,
    doc: "With CreateTime, refuse batches with any record whose timestamp is further than this from the broker's clock (INVALID_TIMESTAMP).",
  }),
  "log.cleanup.policy": setting(
    list(oneOf(cleanupPolicies), { minItems: 1, unique: true }),
    ["delete"] as ("delete" | "compact")[],
    {
      category: "topics",
      dynamic: true,
      doc: "Default cleanup policy: `delete` removes old segments by retention; `compact` keeps the last record per key, which Raftka does only for `__consumer_offsets` so far: other topics with `compact` keep every record (with a warning), and with `compact,delete` retention still trims them. With `compact`, records without a key are refused (INVALID_RECORD), as in Kafka.",
    },
  ),

  // Log segments, retention and flushing
  "log.segment.bytes": setting(bytes(14), 1_073_741_824, {
    category: "log",
    dynamic: true,
    doc: "A segment file is closed and a new one started when it reaches this size.",
  }),
  "log.roll.ms": optional(ms(1), "uses log.roll.hours", {
    category: "log",
    dynamic: true,
    doc: "A segment is closed when its first record is older than this, even if it is not full.",
  }),
  "log.roll.hours": setting(integer({ min: 1, unit: "hours" }), 168, {
    category: "log",
    doc: "Like log.roll.ms, in hours; log.roll.ms wins when both are set.",
  }),
  "log.retention.ms": optional(ms(-1), "uses log.retention.minutes", {
    category: "log",
    dynamic: true,
    doc: "Segments whose newest record is older than this are deleted, oldest first; once every record of a partition has expired its active segment is rolled and deleted too (as Kafka does). -1 keeps them forever.",
  }),
  "log.retention.minutes": optional(integer({ min: -1, unit: "minutes" }), "uses log.retention.hours", {
    category: "log",
    doc: "Like log.retention.ms, in minutes; log.retention.ms wins when both are set.",
  }),
  "log.retention.hours": setting(integer({ min: -1, unit: "hours" }), 168, {
    category: "log",
    doc: "Like log.retention.ms, in hours; log.retention.ms and log.retention.minutes win when set.",
  }),
  "log.retention.bytes": setting(bytes(-1, "LONG"), -1, {
    category: "log",
    dynamic: true,
    doc: "Oldest segments of a partition are deleted while the partition would stay at least this large without them. -1 means no size limit.",
  }),
  "log.retention.check.interval.ms": setting(ms(1), 300_000, {
    category: "log",
    doc: "How often partitions are checked for segments to delete.",
  }),
  "log.segment.delete.delay.ms": setting(ms(0), 60_000, {
    category: "log",
    dynamic: true,
    doc: "Accepted for Kafka compatibility, no effect yet: a segment chosen for deletion is renamed .deleted at once and its files are removed as soon as no read holds them.",
  }),
  "log.index.interval.bytes": setting(bytes(0), 4096, {
    category: "log",
    dynamic: true,
    doc: "An offset index entry is written every time this many bytes have been appended since the last one.",
  }),
  "log.index.size.max.bytes": setting(bytes(4), 10_485_760, {
    category: "log",
    dynamic: true,
    doc: "Largest offset/time index file of a segment; a full index closes the segment.",
  }),
  "log.direct.io.enable": setting(boolean(), false, {
    category: "log",
    doc: "Write the whole pages of large appends (512 KiB and more) with O_DIRECT, past the page cache: the broker spent up to a fifth less CPU per byte produced when CPU-bound in one measurement and the same in another (docs/benchmarks.md), and the page cache keeps what consumers read rather than what producers wrote. The price: such a write waits for the disk, so acks=1 answers do too, and consumers of just-written data read it from disk (docs/benchmarks.md). Turned off for the node, with a warning in the log, if the file system refuses a direct write.",
  }),
  "log.direct.reads.enable": setting(boolean(), true, {
    category: "log",
    doc: "Read log data that is not in the page cache at all (a consumer catching up, a replay from the start) with O_DIRECT, past the page cache: about a tenth of the kernel CPU per byte of an ordinary read here, and the page cache keeps the recent data that consumers close behind the producers read. Data that is cached, even in part, is read through the page cache as before. Needs Linux 6.5 or later (cachestat) and /proc; turned off for the node, with a warning in the log, where the kernel, a file system or a missing /proc prevents it.",
  }),
  "log.read.ahead.enable": setting(boolean(), true, {
    category: "log",
    dynamic: true,
    doc: "Read a consumer's next range from disk while its last answer goes out (only data that log.direct.reads.enable read past the page cache; the kernel reads ahead for the rest): a consumer catching up from disk read 1.3-1.8 times as fast in docs/benchmarks.md. Reads ahead wait while fsyncs are slow (the disk is busy with producers' writes), so producers beside a catch-up keep their latency; without that wait their acks=all p99 was two to four times as long. The price, while a consumer catches up: up to 65 MiB more resident memory, given back when it ends.",
  }),
  "log.preallocate": setting(boolean(), true, {
    category: "log",
    dynamic: true,
    doc: "Reserve disk blocks ahead of large appends (256 KiB and more) to the active segment, eight appends' worth up to 32 MiB, with fallocate keeping the file's size: appends then skip the file system's delayed allocation, about a fifth less kernel CPU per byte written on ext4 (docs/benchmarks.md). A segment gives back what it did not use when it closes. Off by itself, with a warning in the log, where the file system refuses fallocate. Kafka's setting of the same name makes whole segment files at once; the topic setting is `preallocate`.",
  }),
  "log.dir.min.free.bytes": optional(bytes(0, "LONG"), "the smaller of 1 GiB and 5% of the file system", {
    category: "log",
    dynamic: true,
    doc: "Produce to the partitions of a log directory is refused with KAFKA_STORAGE_ERROR (which clients retry) while its file system has less than this free, checked every second, and a retention pass starts at once (its segments leave the disk as soon as no read holds them). The space left keeps offset commits, the metadata log and admin calls working, and the disk never fills under the logs: an append that meets a full disk stops the node's Raft groups until a restart. Unset, it is 1 GiB, or 5% of a file system smaller than 20 GiB. Like Redpanda's storage_min_free_bytes; Kafka has none. 0 turns the check off.",
  }),
  "log.flush.interval.messages": setting(integer({ min: 1, width: "LONG" }), LONG_MAX, {
    category: "log",
    dynamic: true,
    doc: "Force an fsync of a partition log after this many messages. Writes acknowledged with acks=all are always fsynced first; this bounds what acks=1/0 writes can lose.",
  }),
  "log.flush.interval.ms": optional(ms(0), "no time-based flush", {
    category: "log",
    dynamic: true,
    doc: "Force an fsync of a partition log when its oldest unsynced message is older than this.",
  }),
  "log.cleaner.delete.retention.ms": setting(ms(0), 86_400_000, {
    category: "log",
    dynamic: true,
    doc: "How long delete markers (tombstones) are kept in compacted topics.",
  }),

  // Replication and Raft
  "replica.lag.time.max.ms": setting(ms(1), 30_000, {
    category: "replication",
    doc: "A follower that has not caught up with the leader's log end within this long leaves the ISR.",
  }),
  "follower.read.policy": setting(oneOf(["none", "readindex", "unsafe"] as const), "none", {
    category: "replication",
    dynamic: true,
    doc: "Fetches served by followers: `none` sends every fetch to the leader, `readindex` lets a follower answer once a ReadIndex round-trip proves it has everything committed at request time, `unsafe` answers from the follower's log as it is (may be stale).",
  }),
  "raft.election.timeout.ms": setting(ms(10, "INT"), 1000, {
    category: "replication",
    doc: "A follower that hears nothing from its leader for a random time between this and twice this starts an election. Sets how fast failover is.",
  }),
  "raft.flush.linger.ms": setting(ms(0, "INT", 10_000), 5, {
    category: "replication",
    doc: "How long a Raft fsync round may wait to gather more writes when only acks=0/1 produce needs it (acks=all, offset commits and Raft's own messages start it at once). Spares thousands of fsyncs per second under acks=1 load; such records become visible to consumers (the high watermark) up to this much later. 0 fsyncs as soon as anything is written.",
  }),
  "raft.heartbeat.interval.ms": setting(ms(1, "INT"), 100, {
    category: "replication",
    doc: "How often a leader tells its followers it is alive (coalesced per node pair). Must be well below raft.election.timeout.ms.",
  }),
  "raft.partitions.enable": setting(boolean(), true, {
    category: "replication",
    doc: "Run every partition (and the metadata log) as a Raft group on this node: the high watermark is the Raft commit index and the leader epoch is the Raft term, so each restart bumps it. `false` falls back to plain local logs (committed = fsynced, epoch fixed); switching back and forth keeps the data.",
  }),
  "raft.tick.ms": setting(ms(1, "INT", 10_000), 50, {
    category: "replication",
    doc: "Resolution of the shared Raft timer that drives elections and heartbeats of every partition.",
  }),

  // Consumer groups and offsets
  "group.initial.rebalance.delay.ms": setting(ms(0, "INT"), 3000, {
    category: "groups",
    doc: "How long an empty group waits for more members to join before its first rebalance.",
  }),
  "group.min.session.timeout.ms": setting(ms(1, "INT"), 6000, {
    category: "groups",
    doc: "Smallest session timeout a consumer may ask for (JoinGroup answers INVALID_SESSION_TIMEOUT otherwise).",
  }),
  "group.max.session.timeout.ms": setting(ms(1, "INT"), 1_800_000, {
    category: "groups",
    doc: "Largest session timeout a consumer may ask for.",
  }),
  "offsets.retention.minutes": setting(integer({ min: 1, unit: "minutes" }), 10_080, {
    category: "groups",
    doc: "Committed offsets of a group that has had no members for this long are deleted.",
  }),
  "offsets.topic.num.partitions": setting(integer({ min: 1 }), 50, {
    category: "groups",
    doc: "Partitions of the internal __consumer_offsets topic (fixed once the topic exists).",
  }),

  // Producers and transactions
  "transactional.id.expiration.ms": setting(ms(1, "INT"), 604_800_000, {
    category: "transactions",
    doc: "Kafka's setting, accepted so that Kafka configurations load; no effect yet: Raftka has no transaction coordinator, and a producer with a transactional.id is refused (UNSUPPORTED_VERSION).",
  }),
  "producer.id.expiration.ms": setting(ms(1, "INT"), 86_400_000, {
    category: "transactions",
    dynamic: true,
    doc: "Idempotence state of a producer id that has not written for this long is forgotten.",
  }),
  "transaction.max.timeout.ms": setting(ms(1, "INT"), 900_000, {
    category: "transactions",
    doc: "Kafka's setting, accepted so that Kafka configurations load; no effect yet: Raftka has no transaction coordinator, and a producer with a transactional.id is refused (UNSUPPORTED_VERSION).",
  }),

  // Request limits
  "socket.request.max.bytes": setting(bytes(1), 104_857_600, {
    category: "requests",
    doc: "Largest request frame accepted; a larger one closes the connection.",
  }),
  "queued.max.request.bytes": setting(bytes(-1, "LONG"), 67_108_864, {
    category: "requests",
    dynamic: true,
    doc: "Bytes of requests the node holds: Produce requests while they are handled, and every request of 64 KiB or more while it arrives (the bytes that have arrived, not the size it announces) and until it is handled. At this limit every connection stops reading until half of it is free, except that the request that started arriving first is read to its end while whole requests hold less than the limit (so a larger one still runs alone); one that holds up the others for 30 s without arriving closes its connection. Parked requests (long-poll Fetch, JoinGroup) do not count. -1 means no limit. Kafka's default is -1, but Kafka reads one request per connection at a time where Raftka reads up to 256 (and handles runs of Produce requests together).",
  }),
  "message.max.bytes": setting(bytes(0), 1_048_588, {
    category: "requests",
    dynamic: true,
    doc: "Largest record batch accepted after compression (MESSAGE_TOO_LARGE otherwise).",
  }),
  "fetch.max.bytes": setting(bytes(1024), 57_671_680, {
    category: "requests",
    dynamic: true,
    doc: "Largest Fetch response, whatever the client asks for.",
  }),

  // Object store
  "object.store.type": setting(oneOf(["local", "s3"] as const), "local", {
    category: "objectStore",
    doc: "Reserved for tiered storage (closed segments and snapshots in a local directory or an S3 bucket), which this version does not have yet: every segment stays on the node's disk, nothing is uploaded, and the node warns at start when an object.store.* or s3.* setting is given.",
  }),
  "object.store.local.dir": optional(
    text({ pattern: /^.+$/, describe: "a directory path" }),
    "`objects` inside the first log.dirs entry",
    {
      category: "objectStore",
      doc: "Directory of the local object store (object.store.type=local).",
    },
  ),
  "s3.endpoint": optional(
    text({ pattern: /^https?:\/\/\S+$/, describe: "an http:// or https:// URL" }),
    "AWS's endpoint for s3.region",
    {
      category: "objectStore",
      doc: "S3 endpoint URL, for S3-compatible stores (MinIO, moto).",
    },
  ),
  "s3.region": setting(
    text({ pattern: /^[a-z0-9-]+$/, describe: "a region name such as eu-west-1" }),
    "us-east-1",
    {
      category: "objectStore",
      doc: "S3 region.",
    },
  ),
  "s3.bucket": optional(
    text({
      pattern: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      describe: "an S3 bucket name (3-63 lower-case letters, digits, . and -)",
    }),
    "no bucket (required when object.store.type=s3)",
    {
      category: "objectStore",
      doc: "S3 bucket that holds the objects.",
    },
  ),
  "s3.access.key": optional(
    text({ pattern: /^\S+$/, describe: "an access key id" }),
    "the AWS SDK's default credential chain",
    {
      category: "objectStore",
      doc: "S3 access key id. Set together with s3.secret.key.",
    },
  ),
  "s3.secret.key": optional(
    text({ sensitive: true, pattern: /^\S+$/, describe: "a secret access key" }),
    "the AWS SDK's default credential chain",
    {
      category: "objectStore",
      doc: "S3 secret access key. Set together with s3.access.key.",
    },
  ),
  "s3.path.style": setting(boolean(), false, {
    category: "objectStore",
    doc: "Address the bucket in the URL path instead of the host name (needed by most S3-compatible stores).",
  }),

  // Logging and metrics
  "log.level": setting(oneOf(logLevels), "info" as LogLevel, {
    category: "observability",
    dynamic: true,
    doc: "Log level of every component that has no log.level.<component> of its own.",
  }),
  "log.level.server": componentLevel("server"),
  "log.level.storage": componentLevel("storage"),
  "log.level.raft": componentLevel("raft"),
  "log.level.controller": componentLevel("controller"),
  "log.level.group": componentLevel("group"),
  "log.level.admin": componentLevel("admin"),
  "log.format": setting(oneOf(["json", "pretty"] as const), "json", {
    category: "observability",
    doc: "`json`: one JSON object per line (pino), for log collectors. `pretty`: coloured human-readable lines, for a terminal.",
  }),
  "test.fault.injection.enable": setting(boolean(), false, {
    category: "observability",
    doc: "TEST ONLY, never in production. Enables the admin routes under `/v1/test/faults`, which make the broker close client connections instead of answering (to test client retries and idempotent producers).",
  }),
  "metrics.aggregate.partitions": setting(boolean(), false, {
    category: "observability",
    dynamic: true,
    doc: "Expose per-partition metrics summed (or min/max, see docs/metrics.md) per topic instead of one series per partition, for clusters with many partitions.",
  }),
} as const;

type Table = typeof table;
export type SettingKey = keyof Table & string;
type ValueOf<D> = D extends Unkeyed<infer T, infer N> ? (N extends true ? T | null : T) : never;
/** The typed value of a broker setting: `SettingValue<"log.segment.bytes">` is `number`. */
export type SettingValue<K extends SettingKey> = ValueOf<Table[K]>;
export type SettingValues = { readonly [K in SettingKey]: SettingValue<K> };

/** Every broker setting, in documentation order. */
export const brokerSettings: ReadonlyMap<SettingKey, SettingDefinition> = new Map(
  (Object.entries(table) as [SettingKey, Unkeyed<unknown, boolean>][]).map(([key, definition]) => [
    key,
    { key, ...definition } as SettingDefinition,
  ]),
);

export function isSettingKey(key: string): key is SettingKey {
  return brokerSettings.has(key as SettingKey);
}

export function settingDefinition(key: SettingKey): SettingDefinition {
  const definition = brokerSettings.get(key);
  if (!definition) throw new Error(`no broker setting ${key}: this is a bug in @raftka/monitoring`);
  return definition;
}

/** `log.segment.bytes` → `RAFTKA_LOG_SEGMENT_BYTES`. */
export function environmentVariableFor(key: string): string {
  return `RAFTKA_${key.toUpperCase().replace(/[.-]/g, "_")}`;
}

/** The environment variable that names a config file; not a setting itself. */
export const CONFIG_FILE_VARIABLE = "RAFTKA_CONFIG";

/**
 * Variables the `raftka` CLI's client commands read (where the brokers and the admin API are). They
 * are not node settings, and a shell that exports them must still be able to run `raftka start`.
 */
export const CLIENT_ENVIRONMENT_VARIABLES: readonly string[] = ["RAFTKA_BROKERS", "RAFTKA_ADMIN_URL"];

/**
 * Variables a module reads once as the process loads it, before any configuration exists; not node
 * settings. `RAFTKA_CRC32C_NATIVE=false`: CRC-32C on @node-rs/crc32 instead of the native build, to compare.
 */
export const PROCESS_ENVIRONMENT_VARIABLES: readonly string[] = ["RAFTKA_CRC32C_NATIVE"];

const environmentNames = new Map<string, SettingKey>();
for (const key of brokerSettings.keys()) {
  const name = environmentVariableFor(key);
  // Two keys mapping to one variable would make the environment ambiguous.
  if (
    environmentNames.has(name) ||
    name === CONFIG_FILE_VARIABLE ||
    CLIENT_ENVIRONMENT_VARIABLES.includes(name) ||
    PROCESS_ENVIRONMENT_VARIABLES.includes(name)
  ) {
    throw new Error(`settings ${environmentNames.get(name)} and ${key} share ${name}: rename one`);
  }
  environmentNames.set(name, key);
}
export function settingKeyForEnvironmentVariable(name: string): SettingKey | undefined {
  return environmentNames.get(name);
}
