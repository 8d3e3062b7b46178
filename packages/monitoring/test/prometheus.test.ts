import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminServer, RaftkaMetrics } from "../src/index.js";

const PROMETHEUS = "/usr/bin/prometheus";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe("a real Prometheus server scraping the admin server", () => {
  const directory = mkdtempSync(path.join(tmpdir(), "raftka-prometheus-"));
  const metrics = new RaftkaMetrics({ version: "0.1.0-test", nodeId: 7 });
  const admin = new AdminServer({ version: "0.1.0-test", metrics });
  let prometheus: ChildProcess | undefined;
  let prometheusUrl = "";
  let prometheusOutput = "";

  beforeAll(async () => {
    expect(existsSync(PROMETHEUS), `${PROMETHEUS} is missing: apt-get install prometheus`).toBe(true);
    metrics.kafka.requests.inc({ api: "Produce" }, 3);
    metrics.kafka.requestHandleSeconds.observe({ api: "Produce" }, 0.004);
    metrics.provide({
      log: {
        partitionLogs: () => [
          {
            topic: "orders",
            partition: 0,
            logStartOffset: 0,
            logEndOffset: 42,
            highWatermark: 40,
            segmentCount: 1,
            sizeBytes: 9000,
          },
        ],
      },
    });
    const { port: adminPort } = await admin.listen({ host: "127.0.0.1", port: 0 });
    const prometheusPort = await freePort();
    prometheusUrl = `http://127.0.0.1:${prometheusPort}`;
    const configFile = path.join(directory, "prometheus.yml");
    writeFileSync(
      configFile,
      [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "scrape_configs:",
        "  - job_name: raftka",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${adminPort}"]`,
        "",
      ].join("\n"),
    );
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(directory, "data")}`,
        `--web.listen-address=127.0.0.1:${prometheusPort}`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    prometheus.stdout!.on("data", (chunk) => {
      prometheusOutput += chunk;
    });
    prometheus.stderr!.on("data", (chunk) => {
      prometheusOutput += chunk;
    });
  });

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus!.once("exit", resolve));
      prometheus.kill("SIGTERM");
      await exited;
    }
    await admin.close();
    rmSync(directory, { recursive: true, force: true });
  });

  /** Asks Prometheus until the query returns series; Prometheus' own output explains a failure. */
  async function queryUntilPresent(query: string): Promise<Sample[]> {
    const deadline = Date.now() + 60_000;
    let lastError = "";
    while (Date.now() < deadline) {
      if (prometheus?.exitCode !== null) throw new Error(`prometheus exited early:\n${prometheusOutput}`);
      try {
        const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`);
        const body = (await response.json()) as { status: string; data?: { result: Sample[] } };
        if (body.status === "success" && body.data!.result.length > 0) return body.data!.result;
        lastError = JSON.stringify(body);
      } catch (error) {
        lastError = (error as Error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(
      `no result for ${query} (last answer: ${lastError}); prometheus said:\n${prometheusOutput}`,
    );
  }

  it("scrapes the target successfully", async () => {
    const [up] = await queryUntilPresent('up{job="raftka"} == 1');
    expect(up!.value[1]).toBe("1");
  }, 90_000);

  it("stores pushed counters and histograms under their names and labels", async () => {
    const [requests] = await queryUntilPresent('raftka_kafka_requests_total{api="Produce"}');
    expect(requests!.value[1]).toBe("3");
    const [count] = await queryUntilPresent('raftka_kafka_request_handle_seconds_count{api="Produce"}');
    expect(count!.value[1]).toBe("1");
    const [build] = await queryUntilPresent("raftka_build_info");
    expect(build!.metric).toMatchObject({ version: "0.1.0-test", node_id: "7", job: "raftka" });
  }, 90_000);

  it("stores gauges read from providers at scrape time", async () => {
    const [leo] = await queryUntilPresent('raftka_log_end_offset{topic="orders",partition="0"}');
    expect(leo!.value[1]).toBe("42");
  }, 90_000);

  it("stores the Node.js runtime metrics under their standard names", async () => {
    const [memory] = await queryUntilPresent('process_resident_memory_bytes{job="raftka"}');
    expect(Number(memory!.value[1])).toBeGreaterThan(0);
  }, 90_000);
});
