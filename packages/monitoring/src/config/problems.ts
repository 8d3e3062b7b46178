/** Where a setting's value came from, so every problem can point at the line to fix. */
export type SettingSource =
  | { readonly kind: "default" }
  | { readonly kind: "file"; readonly file: string; readonly line?: number }
  | { readonly kind: "env"; readonly variable: string }
  | { readonly kind: "flag"; readonly flag: string }
  | { readonly kind: "dynamic" };

export function describeSource(source: SettingSource): string {
  switch (source.kind) {
    case "default":
      return "default";
    case "file":
      return source.line === undefined ? source.file : `${source.file}:${source.line}`;
    case "env":
      return `environment variable ${source.variable}`;
    case "flag":
      return `flag ${source.flag}`;
    case "dynamic":
      return "run-time update";
  }
}

/** One thing wrong with the configuration; a start or update reports all of them at once. */
export interface ConfigProblem {
  /** The setting (or unknown key) the problem is about. */
  readonly key: string;
  /** The offending value as written, or undefined when the value is secret or absent. */
  readonly value?: string;
  readonly source?: SettingSource;
  /** What is wrong and what to do about it. */
  readonly message: string;
}

export function formatProblem(problem: ConfigProblem): string {
  const value = problem.value === undefined ? "" : ` = ${JSON.stringify(problem.value)}`;
  const source =
    problem.source === undefined
      ? ""
      : problem.source.kind === "default"
        ? " (default value)"
        : ` (from ${describeSource(problem.source)})`;
  return `${problem.key}${value}${source}: ${problem.message}`;
}

/** Thrown when the configuration cannot be used; `problems` lists every reason, one per entry. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super(
      `invalid configuration (${count}; fix each and start again, see docs/configuration.md):\n` +
        problems.map((problem) => `  - ${formatProblem(problem)}`).join("\n"),
    );
    this.problems = problems;
  }
}
