import type { Counter, Gauge, Histogram } from "prom-client";

/**
 * Label values for a metric with label names `L`: every label required, no other label allowed.
 * A misspelt or missing label is a compile error, not a silently separate series.
 */
export type Labels<L extends string> = { readonly [K in L]: string | number };

/** Arguments of an update: `(labels, value)` for labelled metrics, `(value)` for unlabelled ones. */
type WithLabels<L extends string, Rest extends unknown[]> = [L] extends [never]
  ? Rest
  : [labels: Labels<L>, ...Rest];

export interface BoundCounter {
  inc(value?: number): void;
}
export interface BoundGauge {
  inc(value?: number): void;
  dec(value?: number): void;
  set(value: number): void;
}
export interface BoundHistogram {
  observe(value: number): void;
  /** Starts a timer; calling the returned function observes the seconds elapsed and returns them. */
  startTimer(): () => number;
}

const NO_LABELS = {};

/** The labels and the value of an update, without copying the arguments (this runs per request). */
function labelsOf<L extends string>(args: unknown[], labelCount: number): Labels<L> {
  return (labelCount === 0 ? NO_LABELS : args[0]) as Labels<L>;
}
function updateValue(args: unknown[], labelCount: number): number | undefined {
  return args[labelCount === 0 ? 0 : 1] as number | undefined;
}

/** A counter whose labels are checked by the compiler. */
export class CounterHandle<L extends string> {
  constructor(
    private readonly metric: Counter<L>,
    private readonly labelCount: number,
  ) {}

  inc(...args: WithLabels<L, [value?: number]>): void {
    this.metric.inc(labelsOf<L>(args, this.labelCount), updateValue(args, this.labelCount) ?? 1);
  }

  /** The series for these labels, to keep on hot paths instead of looking it up per update. */
  labels(labels: Labels<L>): BoundCounter {
    return this.metric.labels(labels);
  }

  /** Forgets a series, e.g. of a deleted topic, so it stops being exported. */
  remove(labels: Labels<L>): void {
    this.metric.remove(labels);
  }
}

/** A gauge whose labels are checked by the compiler. */
export class GaugeHandle<L extends string> {
  constructor(
    private readonly metric: Gauge<L>,
    private readonly labelCount: number,
  ) {}

  set(...args: WithLabels<L, [value: number]>): void {
    this.metric.set(labelsOf<L>(args, this.labelCount), updateValue(args, this.labelCount)!);
  }

  inc(...args: WithLabels<L, [value?: number]>): void {
    this.metric.inc(labelsOf<L>(args, this.labelCount), updateValue(args, this.labelCount) ?? 1);
  }

  dec(...args: WithLabels<L, [value?: number]>): void {
    this.metric.dec(labelsOf<L>(args, this.labelCount), updateValue(args, this.labelCount) ?? 1);
  }

  labels(labels: Labels<L>): BoundGauge {
    return this.metric.labels(labels);
  }

  /** Forgets a series, e.g. of a deleted topic, so it stops being exported. */
  remove(labels: Labels<L>): void {
    this.metric.remove(labels);
  }
}

/** A histogram whose labels are checked by the compiler. */
export class HistogramHandle<L extends string> {
  constructor(
    private readonly metric: Histogram<L>,
    private readonly labelCount: number,
  ) {}

  observe(...args: WithLabels<L, [value: number]>): void {
    this.metric.observe(labelsOf<L>(args, this.labelCount), updateValue(args, this.labelCount)!);
  }

  labels(labels: Labels<L>): BoundHistogram {
    const child = this.metric.labels(labels);
    return {
      observe: (value) => child.observe(value),
      startTimer: () => {
        const started = process.hrtime.bigint();
        return () => {
          const seconds = Number(process.hrtime.bigint() - started) / 1e9;
          child.observe(seconds);
          return seconds;
        };
      },
    };
  }

  remove(labels: Labels<L>): void {
    this.metric.remove(labels);
  }
}
