import { allMetricDefinitions } from "../metrics/definitions.js";
import { table } from "./markdown.js";

const subsystemTitles: Record<string, string> = {
  node: "Node",
  kafka: "Kafka requests and connections",
  topics: "Topics",
  raft: "Raft",
  log: "Partition logs",
  groups: "Consumer groups",
  metrics: "Metrics collection",
};

/** docs/metrics.md, generated from the metric definitions so the two cannot disagree. */
export function renderMetricsDoc(): string {
  const parts: string[] = [];
  parts.push(`# Metrics reference

<!-- Generated from packages/monitoring/src/metrics/definitions.ts by \`pnpm docs:config\`; edit the definitions, not this file. -->

Every node serves Prometheus metrics at \`GET /metrics\` on its admin listener (\`admin.listener\`,
default \`:9644\`), from one registry per process.

- Raftka's own metrics start with \`raftka_\`, use base units (\`_seconds\`, \`_bytes\`) and counters end
  in \`_total\`.
- Process and Node.js runtime metrics keep their standard names (\`process_cpu_seconds_total\`,
  \`process_resident_memory_bytes\`, \`nodejs_eventloop_lag_seconds\`, \`nodejs_heap_size_used_bytes\`, ...),
  so existing Node.js dashboards and alerts work unchanged; Prometheus' \`job\` and \`instance\`
  labels already say which process they come from. Left out: prom-client's
  \`nodejs_active_{handles,requests,resources}_total\`, gauges named like counters that
  \`promtool check metrics\` rejects; \`sum\` the per-type gauges of the same name without \`_total\`.
- **Pushed** metrics are updated as things happen. **Collected** metrics are read from the broker's
  state when Prometheus scrapes, so they cost nothing on the produce and fetch paths.
- With \`metrics.aggregate.partitions=true\` (changeable at run time) every series labelled by
  \`partition\` loses that label and is combined per topic as the "Aggregated" column says, which
  keeps clusters with thousands of partitions cheap to scrape.
- \`raftka_raft_under_replicated_partitions\` counts on the leader only, so summing over nodes is
  exact; \`raftka_raft_leaderless_partitions\` is reported by every replica, so take \`max\` per topic.
- The controller's Raft group appears as topic \`__cluster_metadata\`, partition 0.
- If a provider fails during a scrape, its labelled series are missing from that scrape (unlabelled
  ones such as \`raftka_raft_leaders\` read 0), \`raftka_metrics_provider_errors{provider}\` is 1 and
  the node logs a warning.

Dashboards and alert rules using these names: [monitoring/grafana-dashboard.json](monitoring/grafana-dashboard.json),
[monitoring/alerts.yml](monitoring/alerts.yml).`);

  const bySubsystem = new Map<string, string[][]>();
  for (const { subsystem, definition } of allMetricDefinitions()) {
    const rows = bySubsystem.get(subsystem) ?? [];
    rows.push([
      `\`${definition.name}\``,
      definition.kind,
      definition.labels.length === 0 ? "" : definition.labels.map((label) => `\`${label}\``).join(", "),
      definition.feed === "push" ? "pushed" : "collected",
      definition.aggregation ?? "",
      definition.help,
    ]);
    bySubsystem.set(subsystem, rows);
  }
  for (const [subsystem, rows] of bySubsystem) {
    parts.push(
      `## ${subsystemTitles[subsystem] ?? subsystem}\n\n${table(["Metric", "Type", "Labels", "Feed", "Aggregated", "Description"], rows)}`,
    );
  }
  return `${parts.join("\n\n")}\n`;
}
