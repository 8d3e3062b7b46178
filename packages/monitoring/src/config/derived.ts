import path from "node:path";
import type { ConfigReader } from "./cross-checks.js";
import type { LogComponent, LogLevel } from "./settings.js";
import { type HostPort, type Listener, LONG_MAX } from "./value-types.js";

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

/** Kafka's rule: log.retention.ms, else .minutes, else .hours; any negative value means "keep forever" (-1). */
export function effectiveLogRetentionMs(config: ConfigReader): number {
  const ms = config.get("log.retention.ms");
  if (ms !== null) return ms < 0 ? -1 : ms;
  const minutes = config.get("log.retention.minutes");
  if (minutes !== null) return minutes < 0 ? -1 : minutes * MINUTE_MS;
  const hours = config.get("log.retention.hours");
  return hours < 0 ? -1 : hours * HOUR_MS;
}

/** log.roll.ms, else log.roll.hours. */
export function effectiveLogRollMs(config: ConfigReader): number {
  return config.get("log.roll.ms") ?? config.get("log.roll.hours") * HOUR_MS;
}

/** log.flush.interval.ms, or "never by time" (Kafka's Long.MAX_VALUE). */
export function effectiveLogFlushIntervalMs(config: ConfigReader): number {
  return config.get("log.flush.interval.ms") ?? LONG_MAX;
}

function advertisable(host: string, hostname: string): string {
  return host === "" || host === "0.0.0.0" || host === "::" ? hostname : host;
}

/** What Metadata responses tell clients: advertised.listeners, or the listeners with a routable host. */
export function effectiveAdvertisedListeners(config: ConfigReader, hostname: string): Listener[] {
  const advertised = config.get("advertised.listeners");
  if (advertised !== null) return advertised;
  return config
    .get("listeners")
    .map((listener) => ({ ...listener, host: advertisable(listener.host, hostname) }));
}

export function effectiveClusterAdvertisedListener(config: ConfigReader, hostname: string): HostPort {
  const advertised = config.get("cluster.advertised.listener");
  if (advertised !== null) return advertised;
  const listener = config.get("cluster.listener");
  return { ...listener, host: advertisable(listener.host, hostname) };
}

export function effectiveObjectStoreLocalDir(config: ConfigReader): string {
  return config.get("object.store.local.dir") ?? path.join(config.get("log.dirs")[0]!, "objects");
}

/** log.level.<component>, else log.level. */
export function effectiveLogLevel(config: ConfigReader, component: LogComponent): LogLevel {
  return config.get(`log.level.${component}`) ?? config.get("log.level");
}
