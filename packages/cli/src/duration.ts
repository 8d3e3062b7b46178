import { UsageError } from "./errors.js";

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses `500ms`, `30s`, `2m`, `1h` (or a bare number of milliseconds, Kafka's convention) into
 * milliseconds. Strict on purpose: `30 seconds` or `1.5.2s` is a usage error naming the option.
 */
export function parseDuration(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) {
    throw new UsageError(
      `${option} "${text}" is not a duration; write it like 500ms, 30s, 2m or 1h (a bare number means milliseconds)`,
    );
  }
  const milliseconds = Number(match[1]) * units[match[2] ?? "ms"]!;
  if (!Number.isFinite(milliseconds) || milliseconds > 2_147_483_647) {
    throw new UsageError(`${option} "${text}" is too long; the most is about 24 days (596h)`);
  }
  return Math.round(milliseconds);
}

/** `1500` → `1.5s`, for messages. */
export function formatDuration(milliseconds: number): string {
  if (milliseconds < 1000) return `${milliseconds}ms`;
  if (milliseconds < 60_000) return `${Number((milliseconds / 1000).toFixed(1))}s`;
  return `${Number((milliseconds / 60_000).toFixed(1))}m`;
}
