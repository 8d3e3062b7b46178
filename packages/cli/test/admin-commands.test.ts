import { Writable } from "node:stream";
import {
  AdminServer,
  createLoggingFromConfig,
  type Logging,
  loadConfig,
  RaftkaMetrics,
  readinessCheckNames,
} from "@raftka/monitoring";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnvironment, runRaftka } from "./run-cli.js";

// A real admin HTTP server from @raftka/monitoring, as a broker runs it; the CLI talks to it over HTTP.
let server: AdminServer;
let logging: Logging;
let adminUrl: string;

beforeAll(async () => {
  const config = loadConfig({ env: {} });
  logging = createLoggingFromConfig(config, {
    destination: new Writable({ write: (_chunk, _encoding, done) => done() }),
  });
  server = new AdminServer({
    version: "1.2.3",
    metrics: new RaftkaMetrics({ version: "1.2.3", nodeId: 7, defaultMetrics: false }),
    logging,
    config,
    status: {
      status: () => ({
        nodeId: 7,
        listeners: [{ name: "PLAINTEXT", host: "127.0.0.1", port: 19092 }],
        partitions: 12,
        leaders: 11,
      }),
    },
  });
  const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
  adminUrl = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await server.close();
});

describe("raftka cluster health", () => {
  it("exits 0 and says ready when every check passes", async () => {
    server.readiness.set(readinessCheckNames.storageRecovered, { ready: true });
    const run = await runRaftka(["cluster", "health", "--admin-url", adminUrl]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^ready/);
    expect(run.stdout).toMatch(/storage_recovered\s+yes/);
  });

  it("exits 1 and names the failing check and its reason when not ready", async () => {
    server.readiness.set(readinessCheckNames.listenersUp, { ready: false, reason: "binding 0.0.0.0:9092" });
    try {
      const run = await runRaftka(["cluster", "health", "--admin-url", adminUrl]);
      expect(run.code).toBe(1);
      expect(run.stdout).toContain("NOT READY");
      expect(run.stdout).toContain("listeners_up: binding 0.0.0.0:9092");

      const json = await runRaftka(["cluster", "health", "--admin-url", adminUrl, "--format", "json"]);
      expect(json.code).toBe(1);
      const body = JSON.parse(json.stdout);
      expect(body.ready).toBe(false);
      expect(body.checks).toContainEqual({
        name: "listeners_up",
        ready: false,
        reason: "binding 0.0.0.0:9092",
      });
    } finally {
      server.readiness.unregister(readinessCheckNames.listenersUp);
    }
  });

  it("--wait waits for readiness, showing progress, and exits 0 once ready", async () => {
    // Ready from the third probe on: a timer would race the CLI's start-up, slow on a loaded machine.
    let probes = 0;
    server.readiness.register(readinessCheckNames.caughtUp, () =>
      ++probes < 3 ? { ready: false, reason: "replaying metadata 10/40" } : { ready: true },
    );
    try {
      const run = await runRaftka([
        "cluster",
        "health",
        "--wait",
        "20s",
        "--progress",
        "--admin-url",
        adminUrl,
      ]);
      expect(run.code).toBe(0);
      expect(run.stderr).toContain("waiting for");
      expect(run.stderr).toContain("replaying metadata 10/40");
      expect(run.stdout).toMatch(/^ready/);
      expect(probes).toBeGreaterThanOrEqual(3);
    } finally {
      server.readiness.unregister(readinessCheckNames.caughtUp);
    }
  });

  it("--wait gives up with exit 1 when the node stays not ready", async () => {
    server.readiness.set(readinessCheckNames.caughtUp, { ready: false, reason: "behind by 5 records" });
    try {
      const run = await runRaftka(["cluster", "health", "--wait", "700ms", "--admin-url", adminUrl]);
      expect(run.code).toBe(1);
      expect(run.stdout).toContain("caught_up: behind by 5 records");
    } finally {
      server.readiness.unregister(readinessCheckNames.caughtUp);
    }
  });

  it("exits 3 and names the URL and the flag to fix when nothing listens", async () => {
    const run = await runRaftka(["cluster", "health", "--admin-url", "http://127.0.0.1:1"]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain("cannot reach the admin API at http://127.0.0.1:1/");
    expect(run.stderr).toContain("--admin-url");
  });

  it("reads the admin URL from RAFTKA_ADMIN_URL, and the flag wins over it", async () => {
    const fromEnvironment = await runRaftka(["cluster", "health"], {
      env: cleanEnvironment({ RAFTKA_ADMIN_URL: adminUrl }),
    });
    expect(fromEnvironment.code).toBe(0);
    const flagWins = await runRaftka(["cluster", "health", "--admin-url", "http://127.0.0.1:1"], {
      env: cleanEnvironment({ RAFTKA_ADMIN_URL: adminUrl }),
    });
    expect(flagWins.code).toBe(3);
  });

  it("refuses a malformed admin URL as a usage error", async () => {
    const run = await runRaftka(["cluster", "health", "--admin-url", "ftp://x"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("must be an http:// or https:// URL");
  });
});

describe("raftka cluster status", () => {
  it("prints the node's id, version, partitions, leaders and listeners", async () => {
    const run = await runRaftka(["cluster", "status", "--admin-url", adminUrl]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/node id\s+7/);
    expect(run.stdout).toMatch(/version\s+1\.2\.3/);
    expect(run.stdout).toMatch(/partitions\s+12/);
    expect(run.stdout).toMatch(/leaders\s+11/);
    expect(run.stdout).toMatch(/PLAINTEXT\s+127\.0\.0\.1\s+19092/);
  });

  it("gives scripts the status as JSON", async () => {
    const run = await runRaftka(["cluster", "status", "--admin-url", adminUrl, "--format", "json"]);
    expect(run.code).toBe(0);
    const status = JSON.parse(run.stdout);
    expect(status).toMatchObject({ nodeId: 7, version: "1.2.3", partitions: 12, leaders: 11 });
    expect(status.uptimeSeconds).toBeGreaterThanOrEqual(0);
  });
});

describe("raftka cluster log-level", () => {
  it("shows every component's level", async () => {
    const run = await runRaftka(["cluster", "log-level", "--admin-url", adminUrl]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/root\s+info\s+log\.level/);
    expect(run.stdout).toMatch(/storage\s+info\s+root/);
  });

  it("changes a component's level in the running node and resets it to follow the root", async () => {
    const set = await runRaftka(["cluster", "log-level", "storage", "debug", "--admin-url", adminUrl]);
    expect(set.code).toBe(0);
    expect(logging.levels().components.storage).toEqual({ level: "debug", overridden: true });
    expect(logging.component("storage").isLevelEnabled("debug")).toBe(true);
    expect(set.stdout).toMatch(/storage\s+debug\s+log\.level\.storage/);

    const reset = await runRaftka(["cluster", "log-level", "storage", "default", "--admin-url", adminUrl]);
    expect(reset.code).toBe(0);
    expect(logging.levels().components.storage).toEqual({ level: "info", overridden: false });
  });

  it("changes the root level", async () => {
    const run = await runRaftka([
      "cluster",
      "log-level",
      "root",
      "warn",
      "--admin-url",
      adminUrl,
      "--format",
      "json",
    ]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).level).toBe("warn");
    expect(logging.levels().level).toBe("warn");
    await runRaftka(["cluster", "log-level", "root", "info", "--admin-url", adminUrl]);
  });

  it("refuses unknown components and levels with exit 2, changing nothing", async () => {
    const component = await runRaftka(["cluster", "log-level", "disk", "debug", "--admin-url", adminUrl]);
    expect(component.code).toBe(2);
    expect(component.stderr).toContain('no log component "disk"');
    const level = await runRaftka(["cluster", "log-level", "raft", "loud", "--admin-url", adminUrl]);
    expect(level.code).toBe(2);
    expect(level.stderr).toContain('"loud" is not a log level');
    expect(logging.levels().components.raft.overridden).toBe(false);
  });
});
