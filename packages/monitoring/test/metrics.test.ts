import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { register as globalRegistry } from "prom-client";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { type MetricsProviders, RaftkaMetrics } from "../src/index.js";

/** The sample lines of an exposition (no comments), for exact comparisons. */
function samples(exposition: string, prefix: string): string[] {
  return exposition.split("\n").filter((line) => line.startsWith(prefix));
}

const providers: MetricsProviders = {
  log: {
    partitionLogs: () => [
      {
        topic: "orders",
        partition: 0,
        logStartOffset: 10,
        logEndOffset: 110,
        highWatermark: 100,
        segmentCount: 2,
        sizeBytes: 4096,
      },
      {
        topic: "orders",
        partition: 1,
        logStartOffset: 0,
        logEndOffset: 50,
        highWatermark: 50,
        segmentCount: 1,
        sizeBytes: 1024,
      },
    ],
    logDirectories: () => [fileURLToPath(new URL(".", import.meta.url))],
  },
  groups: {
    committedOffsets: () => [
      { group: "billing", topic: "orders", partition: 0, committedOffset: 40, highWatermark: 100 },
      { group: "billing", topic: "orders", partition: 1, committedOffset: 55, highWatermark: 50 },
    ],
  },
  raft: {
    raftGroups: () => [
      {
        topic: "orders",
        partition: 0,
        role: "leader",
        term: 4,
        leaderKnown: true,
        replicas: 3,
        inSyncReplicas: 2,
        followers: [
          { follower: 2, matchLag: 0 },
          { follower: 3, matchLag: 17 },
        ],
      },
      { topic: "orders", partition: 1, role: "follower", term: 5, leaderKnown: false },
      {
        topic: "__cluster_metadata",
        partition: 0,
        role: "leader",
        term: 2,
        leaderKnown: true,
        replicas: 3,
        inSyncReplicas: 3,
      },
    ],
  },
};

describe("metrics", () => {
  it("keeps every metric in its own registry, never in prom-client's global one", async () => {
    const first = new RaftkaMetrics({ version: "1.2.3", nodeId: 1 });
    const second = new RaftkaMetrics({ version: "1.2.3", nodeId: 2 });
    first.kafka.requests.inc({ api: "Produce" });
    expect(samples(await first.render(), "raftka_kafka_requests_total")).toEqual([
      'raftka_kafka_requests_total{api="Produce"} 1',
    ]);
    expect(samples(await second.render(), "raftka_kafka_requests_total")).toEqual([]);
    expect(globalRegistry.getMetricsAsArray()).toEqual([]);
    expect(samples(await first.render(), "raftka_build_info")).toEqual([
      'raftka_build_info{version="1.2.3",node_id="1"} 1',
    ]);
    expect(await first.render()).toContain("process_cpu_seconds_total");
    expect(await first.render()).toContain("nodejs_eventloop_lag_seconds");
  });

  it("passes promtool check metrics, Node's default metrics included", async () => {
    const metrics = new RaftkaMetrics({ version: "1.2.3", nodeId: 1 });
    metrics.provide(providers);
    metrics.kafka.requests.inc({ api: "Produce" });
    const exposition = await metrics.render();
    // The per-type gauges stay; only their `_total` sums, named like counters, are gone.
    expect(exposition).toContain("nodejs_active_handles{");
    const check = spawnSync("/usr/bin/promtool", ["check", "metrics"], {
      input: exposition,
      encoding: "utf8",
    });
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
  });

  it("updates pushed metrics through typed handles and bound series", async () => {
    const metrics = new RaftkaMetrics({ version: "0", nodeId: 1, defaultMetrics: false });
    const fetchRequests = metrics.kafka.requests.labels({ api: "Fetch" });
    fetchRequests.inc();
    fetchRequests.inc(2);
    metrics.kafka.requestErrors.inc({ api: "Produce", error: "NOT_LEADER_OR_FOLLOWER" });
    metrics.kafka.connections.inc({ listener: "PLAINTEXT" });
    metrics.kafka.connections.inc({ listener: "PLAINTEXT" });
    metrics.kafka.connections.dec({ listener: "PLAINTEXT" });
    metrics.topics.bytesIn.inc({ topic: "orders" }, 512);
    metrics.raft.electionsStarted.inc();
    metrics.raft.snapshotBytes.observe({ operation: "create" }, 5000);
    const stop = metrics.kafka.requestHandleSeconds.labels({ api: "Fetch" }).startTimer();
    expect(stop()).toBeGreaterThanOrEqual(0);
    const text = await metrics.render();
    expect(samples(text, "raftka_kafka_requests_total")).toEqual([
      'raftka_kafka_requests_total{api="Fetch"} 3',
    ]);
    expect(samples(text, "raftka_kafka_request_errors_total")).toEqual([
      'raftka_kafka_request_errors_total{api="Produce",error="NOT_LEADER_OR_FOLLOWER"} 1',
    ]);
    expect(samples(text, "raftka_kafka_connections{")).toEqual([
      'raftka_kafka_connections{listener="PLAINTEXT"} 1',
    ]);
    expect(samples(text, "raftka_topic_bytes_in_total")).toEqual([
      'raftka_topic_bytes_in_total{topic="orders"} 512',
    ]);
    expect(samples(text, "raftka_raft_elections_started_total")).toEqual([
      "raftka_raft_elections_started_total 1",
    ]);
    expect(samples(text, "raftka_raft_snapshot_size_bytes_count")).toEqual([
      'raftka_raft_snapshot_size_bytes_count{operation="create"} 1',
    ]);
    expect(samples(text, 'raftka_kafka_request_handle_seconds_count{api="Fetch"}')).toEqual([
      'raftka_kafka_request_handle_seconds_count{api="Fetch"} 1',
    ]);
  });

  it("tells latencies between 5 and 10 ms apart, where produce p99s sit against a 10 ms objective", async () => {
    const metrics = new RaftkaMetrics({ version: "0", nodeId: 1, defaultMetrics: false });
    for (let i = 0; i < 100; i++) {
      metrics.kafka.requestHandleSeconds.observe({ api: "Produce" }, 0.006);
      metrics.kafka.requestHandleSeconds.observe({ api: "Fetch" }, 0.009);
      metrics.raft.commitLatencySeconds.observe(0.006);
      metrics.storage.fsyncSeconds.observe(0.003);
    }
    const text = await metrics.render();
    // The bucket each lands in first (Prometheus's histogram_quantile interpolates within it).
    const firstBucket = (name: string, labels = "") =>
      samples(text, `${name}_bucket{`)
        .filter((line) => line.includes(labels))
        .find((line) => line.endsWith(" 100"))
        ?.match(/le="([^"]+)"/)?.[1];
    expect(firstBucket("raftka_kafka_request_handle_seconds", 'api="Produce"')).toBe("0.0075");
    expect(firstBucket("raftka_kafka_request_handle_seconds", 'api="Fetch"')).toBe("0.01");
    expect(firstBucket("raftka_raft_commit_latency_seconds")).toBe("0.0075");
    expect(firstBucket("raftka_log_fsync_duration_seconds")).toBe("0.0035");
  });

  it("reads log, consumer group and Raft state from providers at scrape time", async () => {
    const metrics = new RaftkaMetrics({ version: "0", nodeId: 1, defaultMetrics: false });
    expect(samples(await metrics.render(), "raftka_log_end_offset")).toEqual([]);
    metrics.provide(providers);
    const text = await metrics.render();
    expect(samples(text, "raftka_log_end_offset")).toEqual([
      'raftka_log_end_offset{topic="orders",partition="0"} 110',
      'raftka_log_end_offset{topic="orders",partition="1"} 50',
    ]);
    expect(samples(text, "raftka_log_high_watermark")).toEqual([
      'raftka_log_high_watermark{topic="orders",partition="0"} 100',
      'raftka_log_high_watermark{topic="orders",partition="1"} 50',
    ]);
    expect(samples(text, "raftka_log_size_bytes")).toHaveLength(2);
    expect(samples(text, "raftka_log_dir_free_bytes")).toHaveLength(1);
    expect(samples(text, "raftka_consumer_group_lag")).toEqual([
      'raftka_consumer_group_lag{group="billing",topic="orders",partition="0"} 60',
      'raftka_consumer_group_lag{group="billing",topic="orders",partition="1"} 0',
    ]);
    expect(samples(text, "raftka_raft_leaders")).toEqual(["raftka_raft_leaders 2"]);
    expect(samples(text, "raftka_raft_groups")).toEqual(["raftka_raft_groups 3"]);
    expect(samples(text, "raftka_raft_follower_match_lag_offsets")).toEqual([
      'raftka_raft_follower_match_lag_offsets{topic="orders",partition="0",follower="2"} 0',
      'raftka_raft_follower_match_lag_offsets{topic="orders",partition="0",follower="3"} 17',
    ]);
    expect(samples(text, "raftka_raft_under_replicated_partitions")).toEqual([
      'raftka_raft_under_replicated_partitions{topic="orders"} 1',
      'raftka_raft_under_replicated_partitions{topic="__cluster_metadata"} 0',
    ]);
    expect(samples(text, "raftka_raft_leaderless_partitions")).toEqual([
      'raftka_raft_leaderless_partitions{topic="orders"} 1',
      'raftka_raft_leaderless_partitions{topic="__cluster_metadata"} 0',
    ]);
    expect(samples(text, "raftka_raft_in_sync_replicas")).toEqual([
      'raftka_raft_in_sync_replicas{topic="orders",partition="0"} 2',
      'raftka_raft_in_sync_replicas{topic="__cluster_metadata",partition="0"} 3',
    ]);
  });

  it("aggregates per-partition series per topic when asked, with each metric's own rule", async () => {
    const metrics = new RaftkaMetrics({
      version: "0",
      nodeId: 1,
      defaultMetrics: false,
      aggregatePartitions: true,
    });
    metrics.provide(providers);
    const text = await metrics.render();
    expect(text).not.toContain('partition="');
    expect(samples(text, "raftka_log_end_offset")).toEqual(['raftka_log_end_offset{topic="orders"} 160']);
    expect(samples(text, "raftka_log_segments")).toEqual(['raftka_log_segments{topic="orders"} 3']);
    expect(samples(text, "raftka_log_size_bytes")).toEqual(['raftka_log_size_bytes{topic="orders"} 5120']);
    expect(samples(text, "raftka_consumer_group_lag")).toEqual([
      'raftka_consumer_group_lag{group="billing",topic="orders"} 60',
    ]);
    expect(samples(text, "raftka_raft_current_term")).toEqual([
      'raftka_raft_current_term{topic="orders"} 5',
      'raftka_raft_current_term{topic="__cluster_metadata"} 2',
    ]);
    expect(samples(text, "raftka_raft_follower_match_lag_offsets")).toEqual([
      'raftka_raft_follower_match_lag_offsets{topic="orders",follower="2"} 0',
      'raftka_raft_follower_match_lag_offsets{topic="orders",follower="3"} 17',
    ]);

    metrics.setAggregatePartitions(false);
    expect(samples(await metrics.render(), "raftka_log_end_offset")).toHaveLength(2);
  });

  it("drops the series of a failing provider, flags it, and still serves the rest", async () => {
    const failures: string[] = [];
    const metrics = new RaftkaMetrics({
      version: "0",
      nodeId: 1,
      defaultMetrics: false,
      onProviderError: (provider, error) => failures.push(`${provider}: ${(error as Error).message}`),
    });
    metrics.provide({
      ...providers,
      groups: {
        committedOffsets: () => {
          throw new Error("group coordinator not loaded");
        },
      },
    });
    const text = await metrics.render();
    expect(samples(text, "raftka_consumer_group_lag")).toEqual([]);
    expect(samples(text, "raftka_log_end_offset")).toHaveLength(2);
    expect(samples(text, "raftka_metrics_provider_errors")).toEqual([
      'raftka_metrics_provider_errors{provider="log"} 0',
      'raftka_metrics_provider_errors{provider="groups"} 1',
      'raftka_metrics_provider_errors{provider="raft"} 0',
    ]);
    expect(failures).toEqual(["groups: group coordinator not loaded"]);
  });

  it("reads each provider once per scrape, however many gauges it feeds", async () => {
    const metrics = new RaftkaMetrics({ version: "0", nodeId: 1, defaultMetrics: false });
    let calls = 0;
    metrics.provide({
      log: {
        partitionLogs: async () => {
          calls++;
          return providers.log!.partitionLogs();
        },
      },
    });
    await metrics.render();
    expect(calls).toBe(1);
    await metrics.render();
    expect(calls).toBe(2);
    // Two scrapes at once share one reading and one text.
    const [first, second] = await Promise.all([metrics.render(), metrics.render()]);
    expect(calls).toBe(3);
    expect(second).toBe(first);
  });

  it("writes what prom-client writes, and lets the event loop run while a large scrape is formatted", async () => {
    const metrics = new RaftkaMetrics({ version: "0", nodeId: 1, defaultMetrics: false });
    const partitions = Array.from({ length: 5_000 }, (_, index) => ({
      topic: `topic-${index >> 3}`,
      partition: index & 7,
      logStartOffset: 0,
      logEndOffset: index,
      highWatermark: index,
      segmentCount: 1,
      sizeBytes: 1024 * index,
    }));
    metrics.provide({ ...providers, log: { partitionLogs: () => partitions } });
    metrics.kafka.requests.inc({ api: "Produce" });
    metrics.raft.commitLatencySeconds.observe(0.002);

    // Turns of the event loop while the scrape is under way: none if it is formatted in one piece.
    let turns = 0;
    let scraping = true;
    const countTurns = () => {
      if (!scraping) return;
      turns++;
      setImmediate(countTurns);
    };
    setImmediate(countTurns);
    const text = await metrics.render();
    scraping = false;
    expect(samples(text, "raftka_log_end_offset").length).toBe(5_000);
    expect(turns).toBeGreaterThanOrEqual(2);
    expect(text).toBe(await metrics.registry.metrics());
  });
});

describe("label helpers at compile time", () => {
  /** Type-checks `body` against the package's real types and returns the compiler's messages. */
  function typeErrors(body: string): string[] {
    const fileName = fileURLToPath(new URL("./__labels_check__.ts", import.meta.url));
    const source = `import { RaftkaMetrics } from "../src/index.js";\nconst metrics = new RaftkaMetrics({ version: "0", nodeId: 1 });\n${body}\n`;
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ["node"],
    };
    const host = ts.createCompilerHost(options);
    const readFile = host.readFile.bind(host);
    const getSourceFile = host.getSourceFile.bind(host);
    host.readFile = (name) => (name === fileName ? source : readFile(name));
    host.fileExists = (
      (exists) => (name: string) =>
        name === fileName || exists(name)
    )(host.fileExists.bind(host));
    host.getSourceFile = (name, version, ...rest) =>
      name === fileName ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, ...rest);
    const program = ts.createProgram([fileName], options, host);
    return ts
      .getPreEmitDiagnostics(program, program.getSourceFile(fileName))
      .map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"));
  }

  it("accepts correct labels and rejects misspelt, missing and extra ones", () => {
    const errors = typeErrors(
      [
        'metrics.kafka.requests.inc({ api: "Produce" });',
        "metrics.raft.electionsWon.inc();",
        'metrics.kafka.requests.inc({ apiKey: "Produce" });',
        'metrics.kafka.requestErrors.inc({ api: "Fetch" });',
        'metrics.topics.bytesIn.inc({ topic: "orders", partition: 0 }, 10);',
        "metrics.raft.electionsWon.inc({ node: 1 });",
      ].join("\n"),
    );
    expect(errors).toHaveLength(4);
    expect(errors[0]).toMatch(/'apiKey' does not exist/);
    expect(errors[1]).toMatch(/Property 'error' is missing/);
    expect(errors[2]).toMatch(/'partition' does not exist/);
    expect(errors[3]).toMatch(/not assignable to parameter of type 'number'/);
  }, 60_000);
});

// Also checked by `pnpm lint` (tsc over the tests): each line below must stay a type error.
export function labelMistakesThatMustNotCompile(metrics: RaftkaMetrics): void {
  // @ts-expect-error misspelt label name
  metrics.kafka.requests.inc({ apii: "Produce" });
  // @ts-expect-error missing label
  metrics.kafka.requestErrors.labels({ api: "Fetch" });
  // @ts-expect-error labels on an unlabelled metric
  metrics.raft.commitLatencySeconds.observe({ api: "Fetch" }, 1);
}
