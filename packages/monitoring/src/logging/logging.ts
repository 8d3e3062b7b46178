import { type DestinationStream, type Logger, pino } from "pino";
import { PinoPretty } from "pino-pretty";
import type { RaftkaConfig } from "../config/config.js";
import { type LogComponent, type LogLevel, logComponents, logLevels } from "../config/settings.js";

export type { Logger } from "pino";

export interface LoggingOptions {
  /** Level of every component without a level of its own. */
  readonly level: LogLevel;
  readonly componentLevels?: Readonly<Partial<Record<LogComponent, LogLevel>>>;
  /** `json` (default): one JSON object per line. `pretty`: human-readable lines for a terminal. */
  readonly format?: "json" | "pretty";
  /** Where lines go; standard output by default, written synchronously so a crash loses no line. */
  readonly destination?: DestinationStream | NodeJS.WritableStream;
  /** Fields on every line, e.g. `{ node: 1 }`. */
  readonly bindings?: Readonly<Record<string, unknown>>;
}

export interface LogLevels {
  readonly level: LogLevel;
  /** Each component's level and whether it is its own (true) or follows `level` (false). */
  readonly components: Readonly<
    Record<LogComponent, { readonly level: LogLevel; readonly overridden: boolean }>
  >;
}

function assertLevel(level: string): asserts level is LogLevel {
  if (!(logLevels as readonly string[]).includes(level)) {
    throw new RangeError(`unknown log level "${level}"; use one of ${logLevels.join(", ")}`);
  }
}

/**
 * The process's one root logger and a child logger per component, each with a level that can be
 * changed while the process runs (from `log.level` / `log.level.<component>` or the admin API).
 */
export class Logging {
  readonly root: Logger;
  private rootLevel: LogLevel;
  private readonly overrides = new Map<LogComponent, LogLevel>();
  private readonly children = new Map<LogComponent, Logger>();

  constructor(options: LoggingOptions) {
    assertLevel(options.level);
    this.rootLevel = options.level;
    const destination =
      options.destination ??
      (options.format === "pretty" ? process.stdout : pino.destination({ dest: 1, sync: true }));
    const stream =
      options.format === "pretty"
        ? PinoPretty({
            destination: destination as NodeJS.WritableStream,
            sync: true,
            colorize: destination === process.stdout && process.stdout.isTTY,
            ignore: "pid,hostname",
          })
        : destination;
    this.root = pino(
      {
        level: options.level,
        timestamp: pino.stdTimeFunctions.isoTime,
        base: { pid: process.pid, ...options.bindings },
        formatters: { level: (label) => ({ level: label }) },
      },
      stream as DestinationStream,
    );
    for (const [component, level] of Object.entries(options.componentLevels ?? {})) {
      if (level !== undefined) this.setLevel(component as LogComponent, level);
    }
  }

  /** The child logger of a component; every line it writes carries `"component": "<name>"`. */
  component(component: LogComponent): Logger {
    let child = this.children.get(component);
    if (!child) {
      child = this.root.child({ component });
      child.level = this.levelOf(component);
      this.children.set(component, child);
    }
    return child;
  }

  /** Sets a component's own level; null makes it follow the root level again. */
  setLevel(component: LogComponent, level: LogLevel | null): void {
    if (!(logComponents as readonly string[]).includes(component)) {
      throw new RangeError(`unknown log component "${component}"; use one of ${logComponents.join(", ")}`);
    }
    if (level === null) this.overrides.delete(component);
    else {
      assertLevel(level);
      this.overrides.set(component, level);
    }
    const child = this.children.get(component);
    if (child) child.level = this.levelOf(component);
  }

  /** Sets the root level, which every component without its own level follows. */
  setRootLevel(level: LogLevel): void {
    assertLevel(level);
    this.rootLevel = level;
    this.root.level = level;
    for (const [component, child] of this.children) child.level = this.levelOf(component);
  }

  levels(): LogLevels {
    const components = {} as Record<LogComponent, { level: LogLevel; overridden: boolean }>;
    for (const component of logComponents) {
      components[component] = { level: this.levelOf(component), overridden: this.overrides.has(component) };
    }
    return { level: this.rootLevel, components };
  }

  /**
   * Follows `log.level` and `log.level.<component>` in `config`, now and after every run-time update.
   * Returns a function that stops following.
   */
  followConfig(config: RaftkaConfig): () => void {
    const apply = () => {
      this.setRootLevel(config.get("log.level"));
      for (const component of logComponents) this.setLevel(component, config.get(`log.level.${component}`));
    };
    apply();
    return config.onChange((keys) => {
      if (keys.some((key) => key.startsWith("log.level"))) apply();
    });
  }

  /** Writes buffered lines out; call before the process exits. */
  flush(): Promise<void> {
    return new Promise((resolve) => this.root.flush(() => resolve()));
  }

  private levelOf(component: LogComponent): LogLevel {
    return this.overrides.get(component) ?? this.rootLevel;
  }
}

/** Logging as the node's configuration asks for it (levels, format), following later level changes. */
export function createLoggingFromConfig(
  config: RaftkaConfig,
  options: Pick<LoggingOptions, "destination" | "bindings"> = {},
): Logging {
  const logging = new Logging({
    level: config.get("log.level"),
    format: config.get("log.format"),
    bindings: { node: config.get("node.id"), ...options.bindings },
    ...(options.destination ? { destination: options.destination } : {}),
  });
  logging.followConfig(config);
  return logging;
}
