import { statfs } from "node:fs/promises";
import type { Logger } from "pino";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { RaftkaConfig } from "../config/config.js";
import {
  type CollectedMetricDefinitions,
  collectedMetricDefinitions,
  type MetricDefinition,
  type PushedMetricDefinitions,
  pushedMetricDefinitions,
} from "./definitions.js";
import { CounterHandle, GaugeHandle, HistogramHandle } from "./handles.js";
import type { MetricsProviders } from "./providers.js";

type LabelsOf<D> = D extends MetricDefinition<infer L> ? L : never;
type HandleOf<D> = D extends { kind: "counter" }
  ? CounterHandle<LabelsOf<D>>
  : D extends { kind: "histogram" }
    ? HistogramHandle<LabelsOf<D>>
    : GaugeHandle<LabelsOf<D>>;

/** The typed handles of every pushed metric: `metrics.kafka.requests.inc({ api: "Produce" })`. */
export type PushedMetrics = {
  readonly [Subsystem in keyof PushedMetricDefinitions]: {
    readonly [Name in keyof PushedMetricDefinitions[Subsystem]]: HandleOf<
      PushedMetricDefinitions[Subsystem][Name]
    >;
  };
};

type CollectedGauges = {
  readonly [Subsystem in keyof CollectedMetricDefinitions]: {
    readonly [Name in keyof CollectedMetricDefinitions[Subsystem]]: Gauge<
      LabelsOf<CollectedMetricDefinitions[Subsystem][Name]>
    >;
  };
};

export interface MetricsOptions {
  /** Reported by raftka_build_info. */
  readonly version: string;
  readonly nodeId: number;
  /** Start with per-partition series aggregated per topic (`metrics.aggregate.partitions`). */
  readonly aggregatePartitions?: boolean;
  /** Export process_* and nodejs_* runtime metrics (default true). */
  readonly defaultMetrics?: boolean;
  /** Told when a provider fails during a scrape (the scrape still succeeds without its series). */
  readonly onProviderError?: (provider: keyof MetricsProviders, error: unknown) => void;
}

function build<D extends Record<string, Record<string, MetricDefinition>>>(
  definitions: D,
  create: (definition: MetricDefinition) => unknown,
): Record<string, Record<string, unknown>> {
  const result: Record<string, Record<string, unknown>> = {};
  for (const [subsystem, group] of Object.entries(definitions)) {
    result[subsystem] = {};
    for (const [name, definition] of Object.entries(group)) result[subsystem]![name] = create(definition);
  }
  return result;
}

/**
 * The longest a scrape works before letting what waits on the event loop run. One scrape of a node
 * with 1,000 partitions is about 8,700 series and 30-40 ms of work; in one piece it held the event loop
 * for up to 18 ms, and every request that arrived meanwhile waited (docs/operations.md, "Metrics").
 */
const RENDER_SLICE_MS = 2;

/** Lets the event loop run whenever RENDER_SLICE_MS of a scrape's work has passed since it last did. */
class EventLoopSlices {
  private started = performance.now();

  async pause(): Promise<void> {
    if (performance.now() - this.started < RENDER_SLICE_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.started = performance.now();
  }
}

/** Accumulates one value per series key, combining with the definition's aggregation. */
class SeriesAccumulator {
  private readonly series = new Map<string, { labels: Record<string, string | number>; value: number }>();

  add(
    labels: Record<string, string | number>,
    value: number,
    aggregation: "sum" | "max" | "min" = "sum",
  ): void {
    const key = JSON.stringify(labels);
    const existing = this.series.get(key);
    if (!existing) this.series.set(key, { labels, value });
    else if (aggregation === "sum") existing.value += value;
    else if (aggregation === "max") existing.value = Math.max(existing.value, value);
    else existing.value = Math.min(existing.value, value);
  }

  async writeTo(gauge: Gauge<string>, slices: EventLoopSlices): Promise<void> {
    for (const { labels, value } of this.series.values()) {
      gauge.set(labels, value);
      await slices.pause();
    }
  }
}

/**
 * The process's one metrics registry (never prom-client's global one) with every Raftka metric:
 * typed handles for metrics updated as things happen, and gauges computed at scrape time from
 * the providers the broker registers.
 */
/** prom-client default metrics that are gauges with a `_total` suffix. */
const NAMED_LIKE_COUNTERS = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

export class RaftkaMetrics implements PushedMetrics {
  readonly registry = new Registry();
  readonly node!: PushedMetrics["node"];
  readonly kafka!: PushedMetrics["kafka"];
  readonly topics!: PushedMetrics["topics"];
  readonly storage!: PushedMetrics["storage"];
  readonly raft!: PushedMetrics["raft"];

  private readonly collected: CollectedGauges;
  private providers: MetricsProviders = {};
  private aggregatePartitions: boolean;
  private refreshing: Promise<void> | undefined;
  /** The providers' reading for the render under way: its collected gauges must not read them again. */
  private renderRefresh: Promise<void> | undefined;
  private rendering: Promise<string> | undefined;
  private readonly onProviderError: NonNullable<MetricsOptions["onProviderError"]>;

  constructor(options: MetricsOptions) {
    this.aggregatePartitions = options.aggregatePartitions ?? false;
    this.onProviderError = options.onProviderError ?? (() => {});
    const pushed = build(pushedMetricDefinitions, (definition) => this.createPushed(definition));
    Object.assign(this, pushed);
    this.collected = build(collectedMetricDefinitions, (definition) =>
      this.createCollected(definition),
    ) as CollectedGauges;
    if (options.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges named like counters, which `promtool check metrics` rejects; each is the sum over `type`
      // of the gauge of the same name without `_total`, which stays.
      for (const name of NAMED_LIKE_COUNTERS) this.registry.removeSingleMetric(name);
    }
    this.node.buildInfo.set({ version: options.version, node_id: options.nodeId }, 1);
  }

  /** Registers (or replaces) the providers read at scrape time. */
  provide(providers: MetricsProviders): void {
    this.providers = { ...this.providers, ...providers };
  }

  /** Switches between per-partition and per-topic series; takes effect at the next scrape. */
  setAggregatePartitions(aggregate: boolean): void {
    this.aggregatePartitions = aggregate;
  }

  /**
   * The Prometheus text exposition of every metric, providers read now, as prom-client's
   * `registry.metrics()` writes it but formatted a metric at a time, yielding to the event loop every
   * RENDER_SLICE_MS. A scrape that arrives during another gets the same text: both describe the same
   * moment, and the collected gauges are not reset under a render still formatting them.
   */
  render(): Promise<string> {
    this.rendering ??= this.renderInSlices().finally(() => {
      this.rendering = undefined;
    });
    return this.rendering;
  }

  private async renderInSlices(): Promise<string> {
    this.renderRefresh = this.refreshOnce();
    try {
      await this.renderRefresh;
      const parts: string[] = [];
      const slices = new EventLoopSlices();
      for (const { name } of this.registry.getMetricsAsArray()) {
        parts.push(await this.registry.getSingleMetricAsString(name));
        await slices.pause();
      }
      return `${parts.join("\n\n")}\n`;
    } finally {
      this.renderRefresh = undefined;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private createPushed(definition: MetricDefinition): unknown {
    const common = {
      name: definition.name,
      help: definition.help,
      labelNames: definition.labels,
      registers: [this.registry],
    };
    switch (definition.kind) {
      case "counter":
        return new CounterHandle(new Counter(common), definition.labels.length);
      case "gauge":
        return new GaugeHandle(new Gauge(common), definition.labels.length);
      case "histogram":
        return new HistogramHandle(
          new Histogram({ ...common, buckets: [...(definition.buckets ?? [])] }),
          definition.labels.length,
        );
    }
  }

  private createCollected(definition: MetricDefinition): Gauge<string> {
    // Every collected gauge awaits one shared refresh, so a scrape reads each provider once and
    // all gauges describe the same moment.
    const refresh = () => this.renderRefresh ?? this.refreshOnce();
    return new Gauge({
      name: definition.name,
      help: definition.help,
      labelNames: definition.labels,
      registers: [this.registry],
      collect: refresh,
    });
  }

  private refreshOnce(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.refresh().finally(() => {
        this.refreshing = undefined;
      });
    }
    return this.refreshing;
  }

  private async refresh(): Promise<void> {
    for (const group of Object.values(this.collected))
      for (const gauge of Object.values(group)) gauge.reset();
    const errors = this.collected.metrics.collectErrors;
    const slices = new EventLoopSlices();
    const attempts: [keyof MetricsProviders, () => Promise<void>][] = [
      ["log", () => this.refreshLog(slices)],
      ["groups", () => this.refreshGroups(slices)],
      ["raft", () => this.refreshRaft(slices)],
    ];
    for (const [provider, attempt] of attempts) {
      if (!this.providers[provider]) continue;
      try {
        await attempt();
        errors.set({ provider }, 0);
      } catch (error) {
        errors.set({ provider }, 1);
        this.onProviderError(provider, error);
      }
    }
  }

  /** Labels of a per-partition series, without the partition when aggregating per topic. */
  private partitionLabels<T extends Record<string, string | number>>(labels: T, partition: number): T {
    return this.aggregatePartitions ? labels : { ...labels, partition };
  }

  private async refreshLog(slices: EventLoopSlices): Promise<void> {
    const provider = this.providers.log!;
    const definitions = collectedMetricDefinitions.log;
    const gauges = this.collected.log;
    const fields = [
      ["logStartOffset", "logStartOffset"],
      ["logEndOffset", "logEndOffset"],
      ["highWatermark", "highWatermark"],
      ["segments", "segmentCount"],
      ["sizeBytes", "sizeBytes"],
    ] as const;
    const accumulators = fields.map(() => new SeriesAccumulator());
    for (const stats of await provider.partitionLogs()) {
      await slices.pause();
      const labels = this.partitionLabels({ topic: stats.topic }, stats.partition);
      fields.forEach(([metric, field], index) => {
        accumulators[index]!.add(labels, stats[field], definitions[metric].aggregation);
      });
    }
    for (const [index, [metric]] of fields.entries()) {
      await accumulators[index]!.writeTo(gauges[metric], slices);
    }

    for (const dir of provider.logDirectories?.() ?? []) {
      const fileSystem = await statfs(dir);
      gauges.dirFreeBytes.set({ dir }, fileSystem.bavail * fileSystem.bsize);
      gauges.dirCapacityBytes.set({ dir }, fileSystem.blocks * fileSystem.bsize);
    }
  }

  private async refreshGroups(slices: EventLoopSlices): Promise<void> {
    const committed = new SeriesAccumulator();
    const lag = new SeriesAccumulator();
    for (const stats of await this.providers.groups!.committedOffsets()) {
      await slices.pause();
      const labels = this.partitionLabels({ group: stats.group, topic: stats.topic }, stats.partition);
      committed.add(
        labels,
        stats.committedOffset,
        collectedMetricDefinitions.groups.committedOffset.aggregation,
      );
      lag.add(
        labels,
        Math.max(0, stats.highWatermark - stats.committedOffset),
        collectedMetricDefinitions.groups.lag.aggregation,
      );
    }
    await committed.writeTo(this.collected.groups.committedOffset, slices);
    await lag.writeTo(this.collected.groups.lag, slices);
  }

  private async refreshRaft(slices: EventLoopSlices): Promise<void> {
    const definitions = collectedMetricDefinitions.raft;
    const gauges = this.collected.raft;
    const term = new SeriesAccumulator();
    const matchLag = new SeriesAccumulator();
    const inSync = new SeriesAccumulator();
    const replicas = new SeriesAccumulator();
    const underReplicated = new SeriesAccumulator();
    const leaderless = new SeriesAccumulator();
    let groups = 0;
    let leaders = 0;
    for (const stats of await this.providers.raft!.raftGroups()) {
      await slices.pause();
      groups++;
      const labels = this.partitionLabels({ topic: stats.topic }, stats.partition);
      term.add(labels, stats.term, definitions.currentTerm.aggregation);
      // Export zero series too, so alerts compare against 0 rather than against absence.
      underReplicated.add({ topic: stats.topic }, 0);
      leaderless.add({ topic: stats.topic }, stats.leaderKnown ? 0 : 1);
      if (stats.role !== "leader") continue;
      leaders++;
      if (stats.replicas !== undefined)
        replicas.add(labels, stats.replicas, definitions.replicas.aggregation);
      if (stats.inSyncReplicas !== undefined) {
        inSync.add(labels, stats.inSyncReplicas, definitions.inSyncReplicas.aggregation);
        if (stats.replicas !== undefined && stats.inSyncReplicas < stats.replicas)
          underReplicated.add({ topic: stats.topic }, 1);
      }
      for (const { follower, matchLag: lag } of stats.followers ?? []) {
        matchLag.add({ ...labels, follower }, lag, definitions.followerMatchLag.aggregation);
      }
    }
    gauges.groups.set(groups);
    gauges.leaders.set(leaders);
    await term.writeTo(gauges.currentTerm, slices);
    await matchLag.writeTo(gauges.followerMatchLag, slices);
    await inSync.writeTo(gauges.inSyncReplicas, slices);
    await replicas.writeTo(gauges.replicas, slices);
    await underReplicated.writeTo(gauges.underReplicatedPartitions, slices);
    await leaderless.writeTo(gauges.leaderlessPartitions, slices);
  }
}

/**
 * The node's metrics as its configuration asks (node id, `metrics.aggregate.partitions`, followed
 * at run time), with provider failures logged as warnings.
 */
export function createMetricsFromConfig(
  config: RaftkaConfig,
  options: { readonly version: string; readonly logger?: Logger },
): RaftkaMetrics {
  const metrics = new RaftkaMetrics({
    version: options.version,
    nodeId: config.get("node.id"),
    aggregatePartitions: config.get("metrics.aggregate.partitions"),
    onProviderError: (provider, error) =>
      options.logger?.warn(
        { err: error, provider },
        "metrics provider failed; its series are missing from this scrape",
      ),
  });
  config.onChange((keys) => {
    if (keys.includes("metrics.aggregate.partitions")) {
      metrics.setAggregatePartitions(config.get("metrics.aggregate.partitions"));
    }
  });
  return metrics;
}
