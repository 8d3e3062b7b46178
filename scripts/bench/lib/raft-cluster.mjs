// Starts real Raft node processes on loopback for the benchmarks and talks to them over IPC.
import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const nodeScript = join(dirname(fileURLToPath(import.meta.url)), "raft-node.mjs");

export class BenchCluster {
  constructor(options, dataDir) {
    this.options = options;
    this.dataDir = dataDir;
    this.secret = randomBytes(24).toString("hex");
    this.nodes = new Map();
    this.nextRequest = 1;
  }

  /** options: { nodes, groups, storage: "disk" | "memory", tickMs, dir?, maxOpenFiles?, idleCloseMs? } */
  static async start(options) {
    const dataDir = await mkdtemp(join(options.dir ?? tmpdir(), "raftka-bench-"));
    const cluster = new BenchCluster(options, dataDir);
    const ids = Array.from({ length: options.nodes }, (_, index) => index + 1);
    await Promise.all(ids.map((id) => cluster.spawn(id)));
    await cluster.connect();
    return cluster;
  }

  get ids() {
    return [...this.nodes.keys()];
  }

  async spawn(id) {
    const config = {
      nodeId: id,
      groups: this.options.groups,
      dataDir: join(this.dataDir, `node-${id}`),
      tickMs: this.options.tickMs,
      secret: this.secret,
      storageMode: this.options.storage,
      maxOpenFiles: this.options.maxOpenFiles,
      idleCloseMs: this.options.idleCloseMs,
      voters: Array.from({ length: this.options.nodes }, (_, index) => index + 1),
    };
    const child = fork(nodeScript, [JSON.stringify(config)], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      // e.g. RAFTKA_BENCH_NODE_ARGS=--trace-gc to see what the node processes' V8 does.
      execArgv: process.env.RAFTKA_BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? [],
    });
    const node = { id, child, port: 0, pending: new Map(), exited: false };
    this.nodes.set(id, node);
    child.on("message", (message) => {
      if (message.type === "ready") {
        node.port = message.port;
        node.onReady?.();
        return;
      }
      const waiter = node.pending.get(message.id);
      if (waiter === undefined) return;
      node.pending.delete(message.id);
      if (message.error) waiter.reject(new Error(`node ${id}: ${message.error}`));
      else waiter.resolve(message);
    });
    child.on("exit", () => {
      node.exited = true;
      for (const waiter of node.pending.values()) waiter.reject(new Error(`node ${id} exited`));
      node.pending.clear();
    });
    await new Promise((resolve, reject) => {
      node.onReady = resolve;
      child.once("exit", (code) =>
        reject(new Error(`node ${id} exited with code ${code} before it was ready`)),
      );
    });
  }

  async connect() {
    const peers = [...this.nodes.values()].filter((node) => !node.exited).map((node) => [node.id, node.port]);
    await Promise.all(
      [...this.nodes.values()]
        .filter((node) => !node.exited)
        .map((node) => this.request(node.id, { type: "setPeers", peers })),
    );
  }

  request(id, message) {
    const node = this.nodes.get(id);
    if (node === undefined || node.exited) return Promise.reject(new Error(`node ${id} is not running`));
    const requestId = this.nextRequest++;
    return new Promise((resolve, reject) => {
      node.pending.set(requestId, { resolve, reject });
      node.child.send({ ...message, id: requestId });
    });
  }

  /** SIGKILL: no shutdown, no flush, no handover. */
  kill(id) {
    const node = this.nodes.get(id);
    node.child.kill("SIGKILL");
    return new Promise((resolve) => (node.exited ? resolve() : node.child.once("exit", resolve)));
  }

  async restart(id) {
    await this.spawn(id);
    await this.connect();
  }

  async statuses() {
    return Promise.all(
      this.ids.filter((id) => !this.nodes.get(id).exited).map((id) => this.request(id, { type: "status" })),
    );
  }

  async stop() {
    await Promise.all(
      [...this.nodes.values()]
        .filter((node) => !node.exited)
        .map((node) => this.request(node.id, { type: "stop" }).catch(() => {})),
    );
    for (const node of this.nodes.values()) if (!node.exited) node.child.kill("SIGKILL");
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

export async function until(what, check, timeoutMs = 60_000, intervalMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export function percentile(sorted, fraction) {
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}
