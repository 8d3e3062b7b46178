import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { allMetricDefinitions } from "../src/metrics/definitions.js";

const PROMTOOL = "/usr/bin/promtool";
const assets = fileURLToPath(new URL("../../../docs/monitoring/", import.meta.url));

/** Runs promtool and returns its output; a non-zero exit fails with promtool's own explanation. */
function promtool(args: string[], cwd = assets): string {
  expect(existsSync(PROMTOOL), `${PROMTOOL} is missing: apt-get install prometheus`).toBe(true);
  try {
    return execFileSync(PROMTOOL, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string };
    throw new Error(`promtool ${args.join(" ")} failed:\n${failure.stdout ?? ""}${failure.stderr ?? ""}`);
  }
}

/** Names every Raftka series can have, including the _bucket/_sum/_count series of histograms. */
function knownSeriesNames(): Set<string> {
  const names = new Set<string>();
  for (const { definition } of allMetricDefinitions()) {
    names.add(definition.name);
    if (definition.kind === "histogram")
      for (const suffix of ["_bucket", "_sum", "_count"]) names.add(definition.name + suffix);
  }
  return names;
}

function raftkaNamesIn(expression: string): string[] {
  return expression.match(/\braftka_[a-z_]+\b/g) ?? [];
}

interface AlertRule {
  alert: string;
  expr: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}

const alertsFile = parse(readFileSync(path.join(assets, "alerts.yml"), "utf8")) as {
  groups: { rules: AlertRule[] }[];
};
const rules = alertsFile.groups.flatMap((group) => group.rules);

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { uid: string };
  targets?: { expr: string }[];
}
const dashboard = JSON.parse(readFileSync(path.join(assets, "grafana-dashboard.json"), "utf8")) as {
  panels: Panel[];
  templating: { list: { name: string }[] };
};
const queries = dashboard.panels.flatMap((panel) =>
  (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })),
);

describe("alert rules", () => {
  it("pass promtool check rules", () => {
    expect(promtool(["check", "rules", "alerts.yml"])).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it("fire (and stay quiet) as alerts.test.yml expects, under promtool test rules", () => {
    expect(promtool(["test", "rules", "alerts.test.yml"])).toContain("SUCCESS");
  });

  it("cover no leader, frequent elections, under-replication, consumer lag, full disks and down nodes", () => {
    expect(rules.map((rule) => rule.alert)).toEqual(
      expect.arrayContaining([
        "RaftkaNodeDown",
        "RaftkaPartitionWithoutLeader",
        "RaftkaFrequentElections",
        "RaftkaUnderReplicatedPartitions",
        "RaftkaConsumerLagHigh",
        "RaftkaDiskAlmostFull",
        "RaftkaProduceRefusedDiskLow",
      ]),
    );
    for (const rule of rules) {
      expect(["warning", "critical"]).toContain(rule.labels.severity);
      expect(rule.annotations.summary.length).toBeGreaterThan(0);
      expect(rule.annotations.description.length).toBeGreaterThan(0);
    }
  });

  it("use only metric names the code defines", () => {
    const known = knownSeriesNames();
    for (const rule of rules)
      for (const name of raftkaNamesIn(rule.expr)) expect(known, `${rule.alert}: ${name}`).toContain(name);
  });

  it("have a test case for every alert", () => {
    const tests = readFileSync(path.join(assets, "alerts.test.yml"), "utf8");
    for (const rule of rules) expect(tests).toContain(`alertname: ${rule.alert}`);
  });
});

describe("Grafana dashboard", () => {
  it("covers requests, errors, bytes, log sizes and reads, refused Produce, fsync, commit round and write time, consumer lag, Raft health and memory handed back", () => {
    const used = new Set(queries.flatMap((query) => raftkaNamesIn(query.expr)));
    for (const name of [
      "raftka_kafka_requests_total",
      "raftka_kafka_request_errors_total",
      "raftka_kafka_request_handle_seconds_bucket",
      "raftka_kafka_response_queue_seconds_bucket",
      "raftka_kafka_response_send_seconds_bucket",
      "raftka_topic_bytes_in_total",
      "raftka_topic_bytes_out_total",
      "raftka_log_size_bytes",
      "raftka_log_read_bytes_total",
      "raftka_log_dir_produce_refused",
      "raftka_log_fsync_duration_seconds_bucket",
      "raftka_log_write_duration_seconds_bucket",
      "raftka_raft_sync_round_duration_seconds_bucket",
      "raftka_consumer_group_lag",
      "raftka_raft_leaders",
      "raftka_raft_elections_started_total",
      "raftka_raft_under_replicated_partitions",
      "raftka_memory_released_bytes_total",
    ]) {
      expect(used, name).toContain(name);
    }
  });

  it("uses only metric names the code defines", () => {
    const known = knownSeriesNames();
    for (const query of queries)
      for (const name of raftkaNamesIn(query.expr)) expect(known, `${query.panel}: ${name}`).toContain(name);
  });

  it("has valid PromQL in every panel (checked by promtool as recording rules)", () => {
    const directory = mkdtempSync(path.join(tmpdir(), "raftka-dashboard-"));
    try {
      const recordingRules = queries.map((query, index) => ({
        record: `dashboard:query_${index}`,
        expr: query.expr.replaceAll("$__rate_interval", "5m").replaceAll("$instance", ".*"),
      }));
      writeFileSync(
        path.join(directory, "queries.yml"),
        JSON.stringify({ groups: [{ name: "dashboard", rules: recordingRules }] }),
      );
      expect(promtool(["check", "rules", "queries.yml"], directory)).toContain(
        `SUCCESS: ${queries.length} rules found`,
      );
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it("has unique panel ids, fits Grafana's 24-column grid and selects the data source by variable", () => {
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) {
      expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template literal.
      if (panel.type !== "row") expect(panel.datasource?.uid).toBe("${datasource}");
    }
    expect(dashboard.templating.list.map((variable) => variable.name)).toEqual(["datasource", "instance"]);
  });
});
