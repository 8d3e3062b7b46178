/** How a per-partition series becomes a per-topic one when `metrics.aggregate.partitions` is on. */
export type Aggregation = "sum" | "max" | "min";

export type MetricKind = "counter" | "gauge" | "histogram";

export interface MetricDefinition<L extends string = string, K extends MetricKind = MetricKind> {
  readonly kind: K;
  readonly name: string;
  readonly help: string;
  readonly labels: readonly L[];
  readonly buckets?: readonly number[];
  /**
   * `push`: callers update it as things happen. `collect`: computed at scrape time from a provider
   * the broker registers, so nothing is paid on the hot path.
   */
  readonly feed: "push" | "collect";
  /** For series labelled by partition: how partitions of a topic combine when aggregated. */
  readonly aggregation?: Aggregation;
}

function define<const L extends string, const K extends MetricKind>(
  kind: K,
  feed: "push" | "collect",
  name: string,
  help: string,
  labels: readonly L[],
  extra: { buckets?: readonly number[]; aggregation?: Aggregation } = {},
): MetricDefinition<L, K> {
  return { kind, feed, name, help, labels, ...extra };
}

const counter = <const L extends string>(name: string, help: string, labels: readonly L[]) =>
  define("counter", "push", name, help, labels);
const gauge = <const L extends string>(name: string, help: string, labels: readonly L[]) =>
  define("gauge", "push", name, help, labels);
const histogram = <const L extends string>(
  name: string,
  help: string,
  labels: readonly L[],
  buckets: readonly number[],
) => define("histogram", "push", name, help, labels, { buckets });
const collected = <const L extends string>(
  name: string,
  help: string,
  labels: readonly L[],
  aggregation?: Aggregation,
) => define("gauge", "collect", name, help, labels, aggregation ? { aggregation } : {});

/**
 * Request latencies: half a millisecond to 30 s (Fetch long-polls up to its max.wait.ms). Finer from 2.5 to
 * 15 ms, where produce p99s sit against a 10 ms objective: with only 2.5, 5 and 10 ms, every p99 between
 * them read as the same interpolated value (docs/benchmarks.md, "Three ideas measured and not kept").
 */
const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.0035, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];
/**
 * Times of one disk call, fsync or write: a tenth of a millisecond (nothing to write back, a write into
 * the page cache) to 5 s (a disk in trouble); finer from 2 to 10 ms, where fsyncs' tails sit.
 */
const DISK_CALL_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.0035, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5,
];
const SNAPSHOT_SECONDS_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800];
const SNAPSHOT_BYTES_BUCKETS = [1024, 16_384, 262_144, 4_194_304, 67_108_864, 1_073_741_824, 17_179_869_184];

/** Metrics that callers update as things happen, grouped by subsystem. */
export const pushedMetricDefinitions = {
  node: {
    buildInfo: gauge("raftka_build_info", "Always 1; labels carry the running version and node id.", [
      "version",
      "node_id",
    ]),
    memoryReleasedBytes: counter(
      "raftka_memory_released_bytes_total",
      "Bytes the process's resident memory fell by when the node handed free C-heap memory (freed Produce and Fetch buffers) back to the system, which it does every 5 s while 16 MiB or more of that heap is free.",
      [],
    ),
    bufferPoolTakes: counter(
      "raftka_buffer_pool_takes_total",
      "Buffers the node's pool handed out for large Produce frames and Fetch reads, by where each came from: `free` (a free one with its pages: no cost), `released` (a free one whose pages had gone back to the system: they are faulted in again as it fills) or `new` (a new mapping). Mostly `free` under steady load; `released` rising with it means bursts larger than the pool keeps free.",
      ["source"],
    ),
    bufferPoolReleasedBytes: counter(
      "raftka_buffer_pool_released_bytes_total",
      "Bytes of free pooled buffers whose pages the node handed back to the system: beyond the 32 MiB it keeps free, and all of them after 5 s without a take.",
      [],
    ),
  },
  kafka: {
    requests: counter(
      "raftka_kafka_requests_total",
      "Kafka requests received, by API (Produce, Fetch, ...).",
      ["api"],
    ),
    requestErrors: counter(
      "raftka_kafka_request_errors_total",
      "Kafka error codes returned, by API and error name (one per partition/resource that failed).",
      ["api", "error"],
    ),
    requestQueueSeconds: histogram(
      "raftka_kafka_request_queue_seconds",
      "Time a request waited between being read from the socket and a handler starting on it, including its wait for the requests before it on its connection (handled one at a time, except runs of Produce).",
      ["api"],
      LATENCY_BUCKETS,
    ),
    requestHandleSeconds: histogram(
      "raftka_kafka_request_handle_seconds",
      "Time from a handler starting on a request to its response being ready (includes acks=all replication and Fetch long-poll waits).",
      ["api"],
      LATENCY_BUCKETS,
    ),
    responseQueueSeconds: histogram(
      "raftka_kafka_response_queue_seconds",
      "Time from a response being ready to it being handed to the socket: the wait behind the answers to earlier requests on the same connection, which the Kafka protocol sends in request order (Kafka's ResponseQueueTimeMs).",
      ["api"],
      LATENCY_BUCKETS,
    ),
    responseSendSeconds: histogram(
      "raftka_kafka_response_send_seconds",
      "Time from a response being handed to the socket until the kernel has taken all of it: long when the client reads slowly or the network is slow, while the part the socket's send buffer cannot take waits in the broker (Kafka's ResponseSendTimeMs).",
      ["api"],
      LATENCY_BUCKETS,
    ),
    requestBytes: counter(
      "raftka_kafka_request_bytes_total",
      "Bytes of Kafka request frames received, by API.",
      ["api"],
    ),
    responseBytes: counter(
      "raftka_kafka_response_bytes_total",
      "Bytes of Kafka response frames sent, by API.",
      ["api"],
    ),
    requestBytesHeld: gauge(
      "raftka_kafka_request_held_bytes",
      "Bytes of requests the node holds now (Produce requests being handled; requests of 64 KiB or more until handled, counting the bytes that have arrived of those still arriving); connections stop reading while this is at queued.max.request.bytes.",
      [],
    ),
    connections: gauge("raftka_kafka_connections", "Client connections open now, by listener.", ["listener"]),
    connectionsAccepted: counter(
      "raftka_kafka_connections_accepted_total",
      "Client connections accepted, by listener.",
      ["listener"],
    ),
  },
  topics: {
    bytesIn: counter("raftka_topic_bytes_in_total", "Record batch bytes appended by Produce, by topic.", [
      "topic",
    ]),
    bytesOut: counter(
      "raftka_topic_bytes_out_total",
      "Record batch bytes returned by Fetch to consumers, by topic.",
      ["topic"],
    ),
    recordsProduced: counter(
      "raftka_topic_records_produced_total",
      "Records appended by Produce, by topic.",
      ["topic"],
    ),
    recordsFetched: counter(
      "raftka_topic_records_fetched_total",
      "Records returned by Fetch to consumers, by topic.",
      ["topic"],
    ),
  },
  storage: {
    appendedBytes: counter(
      "raftka_log_appended_bytes_total",
      "Bytes appended to partition logs, by how they reached the file: `direct` (O_DIRECT, past the page cache) or `page_cache`. With log.direct.io.enable=true large appends go direct, unless the file system refused it or the node's staging buffers were all in use.",
      ["path"],
    ),
    readBytes: counter(
      "raftka_log_read_bytes_total",
      "Bytes read from partition logs for Fetch, by how: `direct` (O_DIRECT, data that was not in the page cache) or `page_cache`. With log.direct.reads.enable=true (the default) a consumer catching up on old data reads direct.",
      ["path"],
    ),
    readsAhead: counter(
      "raftka_log_reads_ahead_total",
      "Reads of a streaming consumer's next range made while its last answer went out, by outcome: `claimed` (its next Fetch answered from it), `unused` (the consumer asked for another offset, or for none within 500 ms: disk reads for nothing) or `held_back` (not started, because an fsync took 10 ms or more in the last 250 ms; rising while a consumer catches up slowly: producers' fsyncs keep the disk busy).",
      ["outcome"],
    ),
    produceRefused: gauge(
      "raftka_log_dir_produce_refused",
      "1 while Produce to the partitions of the log directory is refused because its file system has less than log.dir.min.free.bytes free, or too little above it for the largest request refused (until one of that size fits again).",
      ["dir"],
    ),
    produceRefusedRequests: counter(
      "raftka_log_dir_produce_refused_requests_total",
      "Produce requests (one per partition in a request) refused because the log directory's file system has, or would be left with, less than log.dir.min.free.bytes free. Rising: producers to its partitions get KAFKA_STORAGE_ERROR; free space or lower retention.",
      ["dir"],
    ),
    logsFailed: gauge(
      "raftka_logs_failed",
      "Logs (partitions and the metadata log) that failed a write or fsync on this node. Each refuses writes until the broker restarts: fix the disk, then restart the node, which recovers them.",
      [],
    ),
    fsyncSeconds: histogram(
      "raftka_log_fsync_duration_seconds",
      "Time one fsync of a segment, index or Raft state file took, from the call (which may wait for a libuv pool thread) to its end. Every acks=all answer waits for the fsyncs of its partitions' group-commit round, so a slow disk shows here first.",
      [],
      DISK_CALL_BUCKETS,
    ),
    writeSeconds: histogram(
      "raftka_log_write_duration_seconds",
      "Time one append's write to its segment file took, from the call (which may wait for a libuv pool thread, behind fsyncs and other writes) to its end, direct or through the page cache. Every Produce answer waits for its partitions' writes; a buffered write can also wait for the kernel to reclaim page cache within a memory limit.",
      [],
      DISK_CALL_BUCKETS,
    ),
    flushWaitSeconds: histogram(
      "raftka_log_flush_wait_seconds",
      "Time a request to make a log durable waited for its fsyncs to start. urgency=lazy (acks=0/1 commits, flush.ms): mostly the rest of the node's group-commit round already running when it came. urgency=urgent (acks=all, Raft's own messages): only the same log's fsync if one was running, so a high value here means one partition's fsyncs are slow.",
      ["urgency"],
      DISK_CALL_BUCKETS,
    ),
    directWritesEnabled: gauge(
      "raftka_log_direct_writes_enabled",
      "1 while large appends are written with O_DIRECT; 0 if log.direct.io.enable is false or the file system refused a direct write.",
      [],
    ),
  },
  raft: {
    electionsStarted: counter(
      "raftka_raft_elections_started_total",
      "Elections this node started as a candidate (any Raft group).",
      [],
    ),
    electionsWon: counter(
      "raftka_raft_elections_won_total",
      "Elections this node won, becoming leader of a Raft group.",
      [],
    ),
    commitLatencySeconds: histogram(
      "raftka_raft_commit_latency_seconds",
      "Time from a leader appending an entry to the entry being committed by a majority.",
      [],
      LATENCY_BUCKETS,
    ),
    syncRoundSeconds: histogram(
      "raftka_raft_sync_round_duration_seconds",
      "Time one fsync round of the node's Raft groups took, from its start (its log writes issued) to its completion (all it covers durable, every earlier round complete). An entry proposed while a round runs commits with the next one: on a single node, acks=all waits for up to two rounds.",
      [],
      DISK_CALL_BUCKETS,
    ),
    snapshotSeconds: histogram(
      "raftka_raft_snapshot_duration_seconds",
      "Time to create (operation=create) or install (operation=install) a Raft snapshot.",
      ["operation"],
      SNAPSHOT_SECONDS_BUCKETS,
    ),
    snapshotBytes: histogram(
      "raftka_raft_snapshot_size_bytes",
      "Size of Raft snapshots created or installed, by operation.",
      ["operation"],
      SNAPSHOT_BYTES_BUCKETS,
    ),
  },
} as const;

/** Metrics computed at scrape time from the providers the broker registers. */
export const collectedMetricDefinitions = {
  log: {
    logStartOffset: collected(
      "raftka_log_start_offset",
      "First offset still in the partition log.",
      ["topic", "partition"],
      "sum",
    ),
    logEndOffset: collected(
      "raftka_log_end_offset",
      "Offset the next appended record will get.",
      ["topic", "partition"],
      "sum",
    ),
    highWatermark: collected(
      "raftka_log_high_watermark",
      "Offset up to which records are committed and visible to consumers.",
      ["topic", "partition"],
      "sum",
    ),
    segments: collected(
      "raftka_log_segments",
      "Segment files of the partition log.",
      ["topic", "partition"],
      "sum",
    ),
    sizeBytes: collected(
      "raftka_log_size_bytes",
      "Bytes the partition log takes on disk.",
      ["topic", "partition"],
      "sum",
    ),
    dirFreeBytes: collected(
      "raftka_log_dir_free_bytes",
      "Free bytes on the file system of each log directory.",
      ["dir"],
    ),
    dirCapacityBytes: collected(
      "raftka_log_dir_capacity_bytes",
      "Size of the file system of each log directory.",
      ["dir"],
    ),
  },
  groups: {
    committedOffset: collected(
      "raftka_consumer_group_committed_offset",
      "Offset a consumer group has committed for a partition.",
      ["group", "topic", "partition"],
      "sum",
    ),
    lag: collected(
      "raftka_consumer_group_lag",
      "Records a consumer group has yet to consume: high watermark minus committed offset (never below 0).",
      ["group", "topic", "partition"],
      "sum",
    ),
  },
  raft: {
    leaders: collected("raftka_raft_leaders", "Raft groups this node leads now.", []),
    groups: collected(
      "raftka_raft_groups",
      "Raft groups (partitions and the controller) this node hosts a replica of.",
      [],
    ),
    currentTerm: collected(
      "raftka_raft_current_term",
      "Current Raft term of the partition on this node.",
      ["topic", "partition"],
      "max",
    ),
    followerMatchLag: collected(
      "raftka_raft_follower_match_lag_offsets",
      "On the leader: offsets between the leader's log end and what each follower is known to have (its match index).",
      ["topic", "partition", "follower"],
      "max",
    ),
    inSyncReplicas: collected(
      "raftka_raft_in_sync_replicas",
      "On the leader: replicas (including the leader) in the ISR of the partition.",
      ["topic", "partition"],
      "min",
    ),
    replicas: collected(
      "raftka_raft_replicas",
      "On the leader: replicas assigned to the partition.",
      ["topic", "partition"],
      "max",
    ),
    underReplicatedPartitions: collected(
      "raftka_raft_under_replicated_partitions",
      "Partitions led by this node whose ISR is smaller than their replica set, by topic.",
      ["topic"],
    ),
    leaderlessPartitions: collected(
      "raftka_raft_leaderless_partitions",
      "Partitions hosted on this node that know of no leader, by topic.",
      ["topic"],
    ),
  },
  metrics: {
    collectErrors: collected(
      "raftka_metrics_provider_errors",
      "1 when the last scrape could not read a provider (its series are missing from that scrape; the error is logged).",
      ["provider"],
    ),
  },
} as const;

export type PushedMetricDefinitions = typeof pushedMetricDefinitions;
export type CollectedMetricDefinitions = typeof collectedMetricDefinitions;

/** Every Raftka metric (not the standard process/Node.js ones), in documentation order. */
export function allMetricDefinitions(): { subsystem: string; definition: MetricDefinition }[] {
  const result: { subsystem: string; definition: MetricDefinition }[] = [];
  const groups: Record<string, Record<string, MetricDefinition>>[] = [
    pushedMetricDefinitions,
    collectedMetricDefinitions,
  ];
  for (const group of groups) {
    for (const [subsystem, definitions] of Object.entries(group)) {
      for (const definition of Object.values(definitions)) result.push({ subsystem, definition });
    }
  }
  return result;
}
