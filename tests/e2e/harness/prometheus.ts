import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const PROMETHEUS_BINARY = "/usr/bin/prometheus";

export interface Sample {
  readonly metric: Record<string, string>;
  readonly value: number;
}

export interface RunningPrometheus {
  readonly url: string;
  /** Runs an instant query now. */
  query(promql: string): Promise<Sample[]>;
  /**
   * Repeats `promql` until `accept` approves the result (Prometheus scrapes on its own schedule), and
   * returns that result; fails with the last result and Prometheus' output after `timeoutMs`.
   */
  queryUntil(promql: string, accept: (samples: Sample[]) => boolean, timeoutMs?: number): Promise<Sample[]>;
  stop(): Promise<void>;
}

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

/** Starts the Debian `prometheus` server scraping `targets` (host:port of admin listeners) every second. */
export async function startPrometheus(targets: readonly string[]): Promise<RunningPrometheus> {
  if (!existsSync(PROMETHEUS_BINARY)) {
    throw new Error(`${PROMETHEUS_BINARY} is missing: apt-get install prometheus (scripts/test-all.sh does)`);
  }
  const directory = await mkdtemp(join(tmpdir(), "raftka-prometheus-"));
  const port = await freePort();
  const configFile = join(directory, "prometheus.yml");
  await writeFile(
    configFile,
    [
      "global:",
      "  scrape_interval: 1s",
      "  scrape_timeout: 1s",
      "scrape_configs:",
      "  - job_name: raftka",
      "    static_configs:",
      `      - targets: [${targets.map((target) => JSON.stringify(target)).join(", ")}]`,
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn(
    PROMETHEUS_BINARY,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(directory, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout!.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr!.on("data", (chunk) => {
    output += chunk;
  });
  const url = `http://127.0.0.1:${port}`;

  const query = async (promql: string): Promise<Sample[]> => {
    if (child.exitCode !== null) throw new Error(`prometheus exited with code ${child.exitCode}:\n${output}`);
    const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await response.json()) as {
      status: string;
      error?: string;
      data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    if (body.status !== "success") throw new Error(`query ${promql} failed: ${body.error}`);
    return body.data!.result.map((entry) => ({ metric: entry.metric, value: Number(entry.value[1]) }));
  };

  return {
    url,
    query,
    async queryUntil(promql, accept, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last = "(no answer yet)";
      while (Date.now() < deadline) {
        try {
          const samples = await query(promql);
          if (accept(samples)) return samples;
          last = JSON.stringify(samples);
        } catch (error) {
          if (child.exitCode !== null) throw error;
          last = (error as Error).message;
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      throw new Error(
        `${promql} never gave the expected result; last: ${last}\nprometheus said:\n${output.slice(-3000)}`,
      );
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}
