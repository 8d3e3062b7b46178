import {
  type LogLevels,
  logComponents,
  logLevels,
  type NodeStatus,
  type ReadinessReport,
} from "@raftka/monitoring";
import type { CommandContext, CommandResult } from "../context.js";
import { formatDuration } from "../duration.js";
import { ExitCode, UnreachableError, UsageError } from "../errors.js";
import { renderFields, renderSections, renderTable } from "../output/render.js";
import { sleep } from "../sleep.js";

type ReadinessBody = { status: "ready" | "not_ready"; checks: ReadinessReport["checks"] };

function describeNotReady(body: ReadinessBody): string {
  const failing = body.checks.filter((check) => !check.ready);
  return failing.map((check) => `${check.name}: ${"reason" in check ? check.reason : ""}`).join("; ");
}

/** `raftka cluster health`: the node's readiness checks; exit 0 ready, 1 not ready, 3 unreachable. */
export async function clusterHealth(
  context: CommandContext,
  options: { waitMs?: number },
): Promise<CommandResult> {
  const admin = context.admin();
  const waitMs = options.waitMs ?? 0;
  const started = Date.now();
  const progress = context.progress();
  let answer: { status: number; body: ReadinessBody } | undefined;
  for (;;) {
    let problem: string;
    try {
      answer = await admin.get<ReadinessBody>("/v1/health/ready", [503]);
      if (answer.status === 200) break;
      problem = describeNotReady(answer.body);
    } catch (error) {
      if (!(error instanceof UnreachableError)) throw error;
      answer = undefined;
      problem = "admin API not reachable yet";
      if (waitMs === 0) throw error;
    }
    const elapsed = Date.now() - started;
    if (elapsed >= waitMs || context.signal.aborted) {
      if (answer === undefined) {
        throw new UnreachableError(
          `cannot reach the admin API at ${admin.baseUrl.href} within ${formatDuration(waitMs)}; check that the node runs and that --admin-url / RAFTKA_ADMIN_URL matches its admin.listener`,
        );
      }
      break;
    }
    progress.update(`waiting for ${admin.baseUrl.host} to be ready (${formatDuration(elapsed)}): ${problem}`);
    await sleep(Math.min(500, waitMs - elapsed), context.signal);
  }
  progress.clear();
  const ready = answer.status === 200;
  const checks = answer.body.checks;
  const text = renderSections([
    [
      null,
      ready
        ? `ready (${admin.baseUrl.host})`
        : `NOT READY (${admin.baseUrl.host}): ${describeNotReady(answer.body)}`,
    ],
    [
      null,
      checks.length === 0
        ? ""
        : renderTable(
            ["check", "ready", "reason"],
            checks.map((check) => [
              check.name,
              check.ready ? "yes" : "no",
              "reason" in check ? check.reason : "",
            ]),
          ),
    ],
  ]);
  return {
    data: { ready, adminUrl: admin.baseUrl.href, checks },
    text,
    exitCode: ready ? ExitCode.ok : ExitCode.failed,
  };
}

/** `raftka cluster status`: what the node says about itself (GET /v1/status). */
export async function clusterStatus(context: CommandContext): Promise<CommandResult> {
  const { body } = await context
    .admin()
    .get<NodeStatus & { version: string; uptimeSeconds: number }>("/v1/status");
  const { nodeId, version, uptimeSeconds, listeners, partitions, leaders, ...details } = body;
  const extra = Object.entries(details)
    .filter(([, value]) => value === null || typeof value !== "object")
    .map(([name, value]) => [name, value as string | number | boolean | null] as const);
  const text = renderSections([
    [
      null,
      renderFields([
        ["node id", nodeId],
        ["version", version],
        ["uptime", formatDuration(uptimeSeconds * 1000)],
        ["partitions", partitions],
        ["leaders", leaders],
        ...extra,
      ]),
    ],
    [
      "LISTENERS",
      renderTable(
        ["name", "host", "port"],
        listeners.map((listener) => [listener.name, listener.host, listener.port]),
      ),
    ],
  ]);
  return { data: body, text };
}

/** `raftka cluster log-level [component|root] [level|default]`: show or change log levels at run time. */
export async function clusterLogLevel(
  context: CommandContext,
  component: string | undefined,
  level: string | undefined,
): Promise<CommandResult> {
  const admin = context.admin();
  let levels: LogLevels;
  if (component === undefined) {
    levels = (await admin.get<LogLevels>("/v1/log-levels")).body;
  } else {
    if (component !== "root" && !(logComponents as readonly string[]).includes(component)) {
      throw new UsageError(`no log component "${component}"; use root or one of ${logComponents.join(", ")}`);
    }
    if (level === undefined)
      throw new UsageError(
        `give the level to set: raftka cluster log-level ${component} <${logLevels.join("|")}|default>`,
      );
    const reset = level === "default";
    if (reset && component === "root")
      throw new UsageError(`the root level has no default to return to; set one of ${logLevels.join(", ")}`);
    if (!reset && !(logLevels as readonly string[]).includes(level)) {
      throw new UsageError(
        `"${level}" is not a log level; use one of ${logLevels.join(", ")}, or default to follow the root level`,
      );
    }
    levels = (await admin.put<LogLevels>(`/v1/log-levels/${component}`, { level: reset ? null : level }))
      .body;
  }
  const text = renderTable(
    ["component", "level", "set by"],
    [
      ["root", levels.level, "log.level"],
      ...Object.entries(levels.components).map(([name, entry]) => [
        name,
        entry.level,
        entry.overridden ? `log.level.${name}` : "root",
      ]),
    ],
  );
  return { data: levels, text };
}

/** `raftka cluster metadata`: the cluster as Kafka clients see it (Metadata request). */
export async function clusterMetadata(context: CommandContext): Promise<CommandResult> {
  const client = await context.kafka();
  const metadata = await client.metadata(null);
  const brokers = metadata.brokers
    .map((broker) => ({
      nodeId: broker.nodeId,
      host: broker.host,
      port: broker.port,
      rack: broker.rack ?? null,
    }))
    .sort((a, b) => a.nodeId - b.nodeId);
  const data = {
    clusterId: metadata.clusterId ?? null,
    controllerId: metadata.controllerId ?? -1,
    brokers,
    topics: metadata.topics.length,
    partitions: metadata.topics.reduce((sum, topic) => sum + topic.partitions.length, 0),
  };
  const text = renderSections([
    [
      null,
      renderFields([
        ["cluster id", data.clusterId],
        ["controller", data.controllerId],
        ["topics", data.topics],
        ["partitions", data.partitions],
      ]),
    ],
    [
      "BROKERS",
      renderTable(
        ["id", "host", "port", "rack"],
        brokers.map((broker) => [
          broker.nodeId === data.controllerId ? `${broker.nodeId}*` : broker.nodeId,
          broker.host,
          broker.port,
          broker.rack,
        ]),
      ),
    ],
  ]);
  return { data, text };
}
