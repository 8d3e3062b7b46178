import { UsageError } from "../errors.js";

export interface BrokerAddress {
  readonly host: string;
  readonly port: number;
}

export const DEFAULT_KAFKA_PORT = 9092;

/** `host:port`, `host` (port 9092) or `[::1]:9092`, comma-separated. */
export function parseBrokerList(text: string, origin: string): BrokerAddress[] {
  const entries = text
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 0) {
    throw new UsageError(`${origin} is empty; give at least one broker as host:port, e.g. localhost:9092`);
  }
  return entries.map((entry) => parseBrokerAddress(entry, origin));
}

function parseBrokerAddress(entry: string, origin: string): BrokerAddress {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  const plain = /^([^:[\]\s]+)(?::(\d+))?$/.exec(entry);
  const match = bracketed ?? plain;
  if (!match) {
    throw new UsageError(
      `${origin} entry "${entry}" is not host:port; write e.g. localhost:9092 or [::1]:9092, comma-separated`,
    );
  }
  const port = match[2] === undefined ? DEFAULT_KAFKA_PORT : Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`${origin} entry "${entry}" has port ${match[2]}; a port is 1-65535`);
  }
  return { host: match[1]!, port };
}

export function formatAddress(address: BrokerAddress): string {
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
