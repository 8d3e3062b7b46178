import { spawnSync } from "node:child_process";
import { ConfigResourceTypes, type Kafka } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, raftkaMain, startBroker } from "./harness/broker.js";
import { kafkaClient } from "./harness/kafkajs.js";
import { type RunningPrometheus, type Sample, startPrometheus } from "./harness/prometheus.js";

// A real Prometheus scraping a real broker process while clients work on it: the series an operator's
// dashboards and alerts read must exist and agree with what the clients did.
let broker: RunningBroker;
let prometheus: RunningPrometheus;
let kafka: Kafka;

const TOPIC = "scraped";
const PARTITIONS = 3;
const RECORDS = 300;
const LAGGING_GROUP = "lagging";
const LAGGED_TOPIC = "lagged";
const LAGGED_RECORDS = 90;
const LARGE_TOPIC = "large-batches";
// One Produce of this many 100 kB records to one partition: an append large enough to be written direct.
const LARGE_RECORDS = 8;

const total = (samples: Sample[]) => samples.reduce((sum, sample) => sum + sample.value, 0);
const equalsTotal = (expected: number) => (samples: Sample[]) =>
  samples.length > 0 && total(samples) === expected;

function raftka(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [raftkaMain, ...args, "--brokers", broker.bootstrap], {
    encoding: "utf8",
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

beforeAll(async () => {
  // Direct writes on, so that the appended-bytes series shows both paths.
  broker = await startBroker({ settings: { "log.direct.io.enable": true } });
  prometheus = await startPrometheus([`127.0.0.1:${broker.adminPort}`]);
  kafka = kafkaClient(broker.bootstrap);

  expect(raftka("topic", "create", TOPIC, "-p", String(PARTITIONS)).code).toBe(0);
  expect(raftka("topic", "create", TOPIC).code).toBe(1);
  const producer = kafka.producer();
  await producer.connect();
  for (let batch = 0; batch < 10; batch++) {
    await producer.send({
      topic: TOPIC,
      acks: -1,
      messages: Array.from({ length: RECORDS / 10 }, (_, index) => ({
        key: `key-${batch}-${index}`,
        value: `value ${batch * (RECORDS / 10) + index}`,
      })),
    });
  }
  await producer.send({
    topic: LARGE_TOPIC,
    acks: -1,
    messages: Array.from({ length: LARGE_RECORDS }, (_, index) => ({
      partition: 0,
      value: Buffer.alloc(100_000, index),
    })),
  });
  await producer.disconnect();
  const consumed = raftka("topic", "consume", TOPIC, "-e");
  expect(consumed.code, consumed.stderr).toBe(0);
  expect(consumed.stdout.split("\n").filter((line) => line !== "")).toHaveLength(RECORDS);
  // A group that read (and committed) a third of its topic, so two thirds are lag. Its own topic, so
  // the records it fetched beyond what it printed do not blur the per-topic fetch counts above.
  expect(raftka("topic", "create", LAGGED_TOPIC, "-p", String(PARTITIONS)).code).toBe(0);
  const keyed = Array.from({ length: LAGGED_RECORDS }, (_, index) => `key-${index}:value ${index}`).join(
    "\n",
  );
  const produced = spawnSync(
    process.execPath,
    [raftkaMain, "topic", "produce", LAGGED_TOPIC, "-K", ":", "--brokers", broker.bootstrap],
    {
      input: keyed,
      encoding: "utf8",
    },
  );
  expect(produced.status, produced.stderr).toBe(0);
  const lagging = raftka(
    "topic",
    "consume",
    LAGGED_TOPIC,
    "--group",
    LAGGING_GROUP,
    "-n",
    String(LAGGED_RECORDS / 3),
  );
  expect(lagging.code, lagging.stderr).toBe(0);
});

afterAll(async () => {
  await prometheus?.stop();
  await broker?.cleanup();
});

describe("Prometheus scraping a broker after a workload", () => {
  it("scrapes the broker's admin port", async () => {
    const [up] = await prometheus.queryUntil('up{job="raftka"}', (samples) => samples[0]?.value === 1);
    expect(up!.value).toBe(1);
    const [build] = await prometheus.query("raftka_build_info");
    expect(build!.metric.node_id).toBe(String(broker.nodeId));
  });

  it("has log series per partition whose end offsets add up to the records produced", async () => {
    const endOffsets = await prometheus.queryUntil(
      `raftka_log_end_offset{topic="${TOPIC}"}`,
      equalsTotal(RECORDS),
    );
    expect(endOffsets.map((sample) => sample.metric.partition).sort()).toEqual(["0", "1", "2"]);
    expect(total(await prometheus.query(`raftka_log_high_watermark{topic="${TOPIC}"}`))).toBe(RECORDS);
    expect(total(await prometheus.query(`raftka_log_start_offset{topic="${TOPIC}"}`))).toBe(0);
    const segments = await prometheus.query(`raftka_log_segments{topic="${TOPIC}"}`);
    expect(segments).toHaveLength(PARTITIONS);
    expect(segments.every((sample) => sample.value >= 1)).toBe(true);
    expect(total(await prometheus.query(`raftka_log_size_bytes{topic="${TOPIC}"}`))).toBeGreaterThan(
      RECORDS * 10,
    );
    const [free] = await prometheus.query("raftka_log_dir_free_bytes");
    expect(free!.value).toBeGreaterThan(0);
  });

  it("counts produced and fetched records and bytes per topic, matching the log", async () => {
    await prometheus.queryUntil(
      `raftka_topic_records_produced_total{topic="${TOPIC}"}`,
      equalsTotal(RECORDS),
    );
    await prometheus.queryUntil(`raftka_topic_records_fetched_total{topic="${TOPIC}"}`, equalsTotal(RECORDS));
    const [bytesIn] = await prometheus.query(`raftka_topic_bytes_in_total{topic="${TOPIC}"}`);
    const [bytesOut] = await prometheus.query(`raftka_topic_bytes_out_total{topic="${TOPIC}"}`);
    expect(bytesIn!.value).toBeGreaterThan(RECORDS * 10);
    expect(bytesOut!.value).toBe(bytesIn!.value);
  });

  it("counts appended bytes by how they reached the disk: large appends past the page cache", async () => {
    // The large Produce went direct but for its partial pages; the small ones through the page cache.
    const [direct] = await prometheus.queryUntil(
      'raftka_log_appended_bytes_total{path="direct"}',
      (samples) => (samples[0]?.value ?? 0) > LARGE_RECORDS * 100_000 - 8192,
    );
    const [pageCache] = await prometheus.query('raftka_log_appended_bytes_total{path="page_cache"}');
    expect(pageCache!.value).toBeGreaterThan(RECORDS * 10);
    const [bytesIn] = await prometheus.query(`raftka_topic_bytes_in_total{topic="${LARGE_TOPIC}"}`);
    expect(direct!.value).toBeLessThanOrEqual(bytesIn!.value);
    const [enabled] = await prometheus.query("raftka_log_direct_writes_enabled");
    expect(enabled!.value).toBe(1);
  });

  it("has request series per API: counts, errors by code, latency histograms, bytes, connections", async () => {
    const produce = await prometheus.queryUntil(
      'raftka_kafka_requests_total{api="Produce"}',
      (samples) => total(samples) >= 10,
    );
    expect(total(produce)).toBeGreaterThanOrEqual(10);
    const [handled] = await prometheus.query('raftka_kafka_request_handle_seconds_count{api="Produce"}');
    expect(handled!.value).toBe(total(produce));
    // Every answered Produce went to its socket once, its wait behind earlier answers timed.
    const [written] = await prometheus.query('raftka_kafka_response_queue_seconds_count{api="Produce"}');
    expect(written!.value).toBe(total(produce));
    // ... and the kernel took each of them, its send timed.
    const [sent] = await prometheus.query('raftka_kafka_response_send_seconds_count{api="Produce"}');
    expect(sent!.value).toBe(total(produce));
    const [fetchQueue] = await prometheus.query('raftka_kafka_request_queue_seconds_count{api="Fetch"}');
    expect(fetchQueue!.value).toBeGreaterThan(0);
    const [errors] = await prometheus.query(
      'raftka_kafka_request_errors_total{api="CreateTopics",error="TOPIC_ALREADY_EXISTS"}',
    );
    expect(errors!.value).toBe(1);
    const [requestBytes] = await prometheus.query('raftka_kafka_request_bytes_total{api="Produce"}');
    expect(requestBytes!.value).toBeGreaterThan(RECORDS * 10);
    const accepted = await prometheus.query("raftka_kafka_connections_accepted_total");
    expect(total(accepted)).toBeGreaterThanOrEqual(3);
    expect(await prometheus.query("raftka_kafka_connections")).not.toHaveLength(0);
  });

  it("reports the single node's partitions as led, fully in sync, none leaderless or under-replicated", async () => {
    const isr = await prometheus.queryUntil(
      `raftka_raft_in_sync_replicas{topic="${TOPIC}"}`,
      (samples) => samples.length === PARTITIONS,
    );
    expect(isr.every((sample) => sample.value === 1)).toBe(true);
    const replicas = await prometheus.query(`raftka_raft_replicas{topic="${TOPIC}"}`);
    expect(replicas.every((sample) => sample.value === 1)).toBe(true);
    expect(total(await prometheus.query("raftka_raft_leaderless_partitions"))).toBe(0);
    expect(total(await prometheus.query("raftka_raft_under_replicated_partitions"))).toBe(0);
    const [leaders] = await prometheus.query("raftka_raft_leaders");
    const [groups] = await prometheus.query("raftka_raft_groups");
    // Every partition (internal topics included) plus the metadata log, all led by this node.
    expect(leaders!.value).toBe(groups!.value);
    const [terms] = await prometheus.query("count(raftka_raft_current_term)");
    expect(terms!.value).toBe(groups!.value);
    expect(await prometheus.query(`raftka_raft_current_term{topic="${TOPIC}"}`)).toHaveLength(PARTITIONS);
    expect(await prometheus.query('raftka_raft_current_term{topic="__cluster_metadata"}')).toHaveLength(1);
  });

  it("feeds the Raft series from the groups' real state: one election won per group, first terms, commit, fsync, round and write latency", async () => {
    const [groups] = await prometheus.query("raftka_raft_groups");
    // A fresh node: every group (partitions and the metadata log) elected itself once, at term 1.
    const [won] = await prometheus.queryUntil(
      "raftka_raft_elections_won_total",
      (samples) => samples[0]?.value === groups!.value,
    );
    const [started] = await prometheus.query("raftka_raft_elections_started_total");
    expect(started!.value).toBe(won!.value);
    const [lowest] = await prometheus.query("min(raftka_raft_current_term)");
    const [highest] = await prometheus.query("max(raftka_raft_current_term)");
    expect([lowest!.value, highest!.value]).toEqual([1, 1]);
    // Ten acks=all produce requests (and the topic creations) waited for a Raft commit each.
    const [commits] = await prometheus.query("raftka_raft_commit_latency_seconds_count");
    expect(commits!.value).toBeGreaterThanOrEqual(10);
    const [seconds] = await prometheus.query("raftka_raft_commit_latency_seconds_sum");
    expect(seconds!.value).toBeGreaterThan(0);
    // Each of those commits waited for its segment's fsync, timed on its own.
    const [fsyncs] = await prometheus.query("raftka_log_fsync_duration_seconds_count");
    expect(fsyncs!.value).toBeGreaterThanOrEqual(10);
    const [fsyncSeconds] = await prometheus.query("raftka_log_fsync_duration_seconds_sum");
    expect(fsyncSeconds!.value).toBeGreaterThan(0);
    // And each of those records was first written to its segment file, the write timed too.
    const [writes] = await prometheus.query("raftka_log_write_duration_seconds_count");
    expect(writes!.value).toBeGreaterThanOrEqual(10);
    const [writeSeconds] = await prometheus.query("raftka_log_write_duration_seconds_sum");
    expect(writeSeconds!.value).toBeGreaterThan(0);
    // The fsyncs ran in group-commit rounds, each timed, and every fsync request's wait for its round too.
    const [rounds] = await prometheus.query("raftka_raft_sync_round_duration_seconds_count");
    expect(rounds!.value).toBeGreaterThanOrEqual(10);
    const [roundSeconds] = await prometheus.query("raftka_raft_sync_round_duration_seconds_sum");
    expect(roundSeconds!.value).toBeGreaterThan(0);
    // The acks=all ones asked for urgent fsyncs, which do not wait for another log's round.
    const [flushWaits] = await prometheus.query('raftka_log_flush_wait_seconds_count{urgency="urgent"}');
    expect(flushWaits!.value).toBeGreaterThanOrEqual(10);
  });

  it("exports consumer group lag per partition, without an external exporter", async () => {
    const lag = await prometheus.queryUntil(
      `raftka_consumer_group_lag{group="${LAGGING_GROUP}",topic="${LAGGED_TOPIC}"}`,
      equalsTotal(LAGGED_RECORDS - LAGGED_RECORDS / 3),
    );
    expect(lag.map((sample) => sample.metric.partition).sort()).toEqual(["0", "1", "2"]);
    const committed = await prometheus.query(
      `raftka_consumer_group_committed_offset{group="${LAGGING_GROUP}",topic="${LAGGED_TOPIC}"}`,
    );
    expect(total(committed)).toBe(LAGGED_RECORDS / 3);
    // Lag is what the log holds beyond the commit: the two series agree partition by partition.
    const [mismatch] = await prometheus.query(
      `sum(raftka_log_high_watermark{topic="${LAGGED_TOPIC}"}) - sum(raftka_consumer_group_committed_offset{group="${LAGGING_GROUP}"}) - sum(raftka_consumer_group_lag{group="${LAGGING_GROUP}"})`,
    );
    expect(mismatch!.value).toBe(0);
  });

  it("folds partitions into one series per topic once metrics.aggregate.partitions is switched on at run time", async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: ConfigResourceTypes.BROKER,
            name: String(broker.nodeId),
            configEntries: [{ name: "metrics.aggregate.partitions", value: "true" }],
          },
        ],
      });
    } finally {
      await admin.disconnect();
    }
    const folded = await prometheus.queryUntil(
      `raftka_log_end_offset{topic="${TOPIC}"}`,
      (samples) => samples.length === 1 && samples[0]!.metric.partition === undefined,
    );
    expect(folded[0]!.value).toBe(RECORDS);
    const [isr] = await prometheus.query(`raftka_raft_in_sync_replicas{topic="${TOPIC}"}`);
    expect(isr!.value).toBe(1);
  });
});
