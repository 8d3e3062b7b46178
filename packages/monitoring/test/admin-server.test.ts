import { request } from "node:http";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import {
  AdminHttpError,
  AdminServer,
  type AdminServerOptions,
  createLoggingFromConfig,
  loadConfig,
  RaftkaMetrics,
  readinessCheckNames,
} from "../src/index.js";

const servers: AdminServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(
  options: Partial<AdminServerOptions> = {},
): Promise<{ server: AdminServer; base: string }> {
  const server = new AdminServer({ version: "9.9.9", ...options });
  servers.push(server);
  const { port } = await server.listen({ host: "127.0.0.1", port: 0 });
  return { server, base: `http://127.0.0.1:${port}` };
}

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies of many shapes, checked by the assertions.
type Json = any;

async function call(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; type: string; body: Json; headers: Headers }> {
  const response = await fetch(url, init);
  const type = response.headers.get("content-type") ?? "";
  const text = await response.text();
  return {
    status: response.status,
    type,
    body: type.startsWith("application/json") ? JSON.parse(text) : text,
    headers: response.headers,
  };
}

describe("admin server", () => {
  it("binds a free port when asked for port 0 and reports it", async () => {
    const { server } = await start();
    const { port, host } = server.address();
    expect(port).toBeGreaterThan(0);
    expect(host).toBe("127.0.0.1");
  });

  it("explains a port that is already taken", async () => {
    const { server } = await start();
    const second = new AdminServer({ version: "0" });
    await expect(second.listen({ host: "127.0.0.1", port: server.address().port })).rejects.toThrow(
      /is already in use; stop the other process or set admin.listener to another port/,
    );
  });

  it("serves Prometheus text with the right content type", async () => {
    const metrics = new RaftkaMetrics({ version: "9.9.9", nodeId: 4 });
    metrics.kafka.requests.inc({ api: "Metadata" });
    const { base } = await start({ metrics });
    const response = await call(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.type).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(response.body).toContain('raftka_kafka_requests_total{api="Metadata"} 1');
    expect(response.body).toContain("# TYPE raftka_kafka_requests_total counter");
  });

  it("answers liveness while serving, and readiness from every registered check", async () => {
    const { server, base } = await start();
    expect(await call(`${base}/v1/health/live`)).toMatchObject({ status: 200, body: { status: "live" } });
    expect(await call(`${base}/v1/health/ready`)).toMatchObject({
      status: 200,
      body: { status: "ready", checks: [] },
    });

    server.readiness.set(readinessCheckNames.storageRecovered, {
      ready: false,
      reason: "recovering 12 of 40 partitions",
    });
    server.readiness.register(readinessCheckNames.listenersUp, () => ({ ready: true }));
    server.readiness.register(readinessCheckNames.controllerLeaderKnown, async () => {
      throw new Error("no controller quorum reachable");
    });
    const notReady = await call(`${base}/v1/health/ready`);
    expect(notReady.status).toBe(503);
    expect(notReady.body).toEqual({
      status: "not_ready",
      checks: [
        { name: "storage_recovered", ready: false, reason: "recovering 12 of 40 partitions" },
        { name: "listeners_up", ready: true },
        {
          name: "controller_leader_known",
          ready: false,
          reason: "check controller_leader_known failed: no controller quorum reachable",
        },
      ],
    });

    server.readiness.set(readinessCheckNames.storageRecovered, { ready: true });
    server.readiness.unregister(readinessCheckNames.controllerLeaderKnown);
    expect((await call(`${base}/v1/health/ready`)).status).toBe(200);
  });

  it("counts a check that does not answer in time as not ready", async () => {
    const { server, base } = await start({ readinessTimeoutMs: 50 });
    server.readiness.register(readinessCheckNames.caughtUp, () => new Promise(() => {}));
    const response = await call(`${base}/v1/health/ready`);
    expect(response.status).toBe(503);
    expect(response.body.checks[0].reason).toBe(
      "check caught_up did not answer within 50 ms; the node may be overloaded",
    );
  });

  it("reports status from the provider, with version and uptime, and 503 before there is one", async () => {
    let now = 1_000_000;
    const { server, base } = await start({ clock: () => now });
    const early = await call(`${base}/v1/status`);
    expect(early.status).toBe(503);
    expect(early.headers.get("retry-after")).toBe("1");
    expect(early.body.error.message).toMatch(/retry in a few seconds/);

    server.setStatusProvider({
      status: () => ({
        nodeId: 2,
        listeners: [{ name: "PLAINTEXT", host: "0.0.0.0", port: 9092 }],
        partitions: 12,
        leaders: 5,
      }),
    });
    now += 90_500;
    expect(await call(`${base}/v1/status`)).toMatchObject({
      status: 200,
      body: {
        nodeId: 2,
        version: "9.9.9",
        uptimeSeconds: 90,
        partitions: 12,
        leaders: 5,
        listeners: [{ port: 9092 }],
      },
    });
  });

  it("lets the broker add routes with parameters and JSON bodies", async () => {
    const { server, base } = await start();
    server.route("GET", "/v1/partitions/:topic/:partition", ({ params, query }) => {
      if (params.topic !== "orders") {
        throw new AdminHttpError(404, `no topic ${params.topic}; list topics with GET /v1/topics`);
      }
      return {
        status: 200,
        body: { topic: params.topic, partition: Number(params.partition), verbose: query.get("verbose") },
      };
    });
    server.route("POST", "/v1/cluster/nodes", ({ body }) => ({ status: 201, body: { added: body } }));
    expect(() =>
      server.route("GET", "/v1/partitions/:topic/:partition", () => ({ status: 200, body: {} })),
    ).toThrow(/already registered/);

    expect(await call(`${base}/v1/partitions/orders/3?verbose=yes`)).toMatchObject({
      status: 200,
      body: { topic: "orders", partition: 3, verbose: "yes" },
    });
    expect(await call(`${base}/v1/partitions/missing/0`)).toMatchObject({
      status: 404,
      body: {
        error: {
          status: 404,
          code: "not_found",
          message: "no topic missing; list topics with GET /v1/topics",
        },
      },
    });
    const added = await call(`${base}/v1/cluster/nodes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ nodeId: 4 }),
    });
    expect(added).toMatchObject({ status: 201, body: { added: { nodeId: 4 } } });
    const index = await call(`${base}/`);
    expect(index.body.routes).toContain("POST /v1/cluster/nodes");
  });

  it("answers unknown paths, wrong methods, bad JSON and failing handlers with JSON errors that say what to do", async () => {
    const { server, base } = await start({ maxBodyBytes: 64 });
    server.route("PUT", "/v1/things", () => ({ status: 200, body: {} }));
    server.route("GET", "/v1/broken", () => {
      throw new TypeError("cannot read properties of undefined");
    });

    expect(await call(`${base}/v1/nope`)).toMatchObject({
      status: 404,
      type: "application/json; charset=utf-8",
      body: {
        error: { code: "not_found", message: "no admin endpoint /v1/nope; GET / lists every endpoint" },
      },
    });
    const wrongMethod = await call(`${base}/v1/health/live`, { method: "DELETE" });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("GET, HEAD");
    expect(wrongMethod.body.error.message).toBe("/v1/health/live does not accept DELETE; use GET or HEAD");
    // HEAD answers as GET does, without a body (load balancers' health checks).
    const head = await fetch(`${base}/v1/health/live`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(await head.text()).toBe("");

    const badJson = await call(`${base}/v1/things`, {
      method: "PUT",
      body: "{nope",
      headers: { "content-type": "application/json" },
    });
    expect(badJson.status).toBe(400);
    expect(badJson.body.error.message).toMatch(/^request body is not valid JSON .*; fix the JSON and retry$/);
    const notJson = await call(`${base}/v1/things`, {
      method: "PUT",
      body: "a=b",
      headers: { "content-type": "text/plain" },
    });
    expect(notJson.status).toBe(415);
    const tooBig = await call(`${base}/v1/things`, {
      method: "PUT",
      body: JSON.stringify({ padding: "x".repeat(100) }),
    });
    expect(tooBig.status).toBe(413);

    const broken = await call(`${base}/v1/broken`);
    expect(broken.status).toBe(500);
    expect(broken.body.error.message).toBe(
      'GET /v1/broken failed: cannot read properties of undefined; the node\'s log (component "admin") has the details',
    );
  });

  it("shows and changes log levels through the config, so every view agrees", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const config = loadConfig();
    const logging = createLoggingFromConfig(config, { destination: sink });
    const { base } = await start({ logging, config });

    expect((await call(`${base}/v1/log-levels`)).body.components.raft).toEqual({
      level: "info",
      overridden: false,
    });
    const put = (component: string, body: unknown) =>
      call(`${base}/v1/log-levels/${component}`, {
        method: "PUT",
        body: JSON.stringify(body),
        headers: { "content-type": "application/json" },
      });

    expect((await put("raft", { level: "debug" })).body.components.raft).toEqual({
      level: "debug",
      overridden: true,
    });
    expect(config.get("log.level.raft")).toBe("debug");
    logging.component("raft").debug("now visible");
    expect(lines.join("")).toContain("now visible");

    expect((await put("root", { level: "warn" })).body.level).toBe("warn");
    expect(config.get("log.level")).toBe("warn");
    expect((await put("raft", { level: null })).body.components.raft).toEqual({
      level: "warn",
      overridden: false,
    });

    const wrongLevel = await put("raft", { level: "loud" });
    expect(wrongLevel.status).toBe(400);
    expect(wrongLevel.body.error.message).toMatch(
      /^send \{"level": "<trace\|debug\|info\|warn\|error\|fatal\|silent>"\}/,
    );
    expect((await put("network", { level: "info" })).status).toBe(404);
  });

  it("closes idle keep-alive connections when closing", async () => {
    const { server, base } = await start();
    const agentResponse = await new Promise<number>((resolve, reject) => {
      const outgoing = request(
        `${base}/v1/health/live`,
        { headers: { connection: "keep-alive" } },
        (response) => {
          response.resume();
          response.on("end", () => resolve(response.statusCode ?? 0));
        },
      );
      outgoing.on("error", reject);
      outgoing.end();
    });
    expect(agentResponse).toBe(200);
    await server.close();
    await expect(fetch(`${base}/v1/health/live`)).rejects.toThrow();
  });
});
