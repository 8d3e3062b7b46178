import { z } from "zod";

/** Kafka's DescribeConfigs `ConfigType` names, so broker and topic settings describe themselves like Kafka's. */
export type KafkaConfigType =
  | "BOOLEAN"
  | "STRING"
  | "INT"
  | "SHORT"
  | "LONG"
  | "DOUBLE"
  | "LIST"
  | "PASSWORD";

/** Kafka's numeric `ConfigType` codes as sent in DescribeConfigs v3+. */
export const kafkaConfigTypeCode: Readonly<Record<KafkaConfigType, number>> = {
  BOOLEAN: 1,
  STRING: 2,
  INT: 3,
  SHORT: 4,
  LONG: 5,
  DOUBLE: 6,
  LIST: 7,
  PASSWORD: 9,
};

/**
 * How one kind of setting value is read from text (file, environment, flag, Kafka request) or JSON,
 * written back as text, and described to a human.
 */
export interface ValueType<T> {
  readonly kafkaType: KafkaConfigType;
  /** Accepts the raw value (string, or a JSON value from a JSON file) and yields the typed value. */
  readonly schema: z.ZodType<T, unknown>;
  /** What is allowed, for documentation and error messages ("whole number 14 .. 2147483647"). */
  readonly allowed: string;
  /** The value as Kafka would print it (DescribeConfigs, docs, `.properties`). */
  format(value: T): string;
}

export const INT_MAX = 2_147_483_647;
export const INT_MIN = -2_147_483_648;
/**
 * Kafka's "no limit" for long settings is Long.MAX_VALUE (9223372036854775807); JavaScript numbers
 * are exact only up to 2^53 - 1, which is 285 000 years in milliseconds, so larger values are
 * accepted and stored as this.
 */
export const LONG_MAX = Number.MAX_SAFE_INTEGER;
const LONG_MIN = -Number.MAX_SAFE_INTEGER;
const KAFKA_LONG_MAX = 9_223_372_036_854_775_807n;

function describeInput(raw: unknown): string {
  if (raw === null) return "null";
  if (Array.isArray(raw)) return "a list";
  if (typeof raw === "object") return "an object";
  return typeof raw === "string" ? `"${raw}"` : String(raw);
}

function formatBound(value: number): string {
  return value === LONG_MAX ? "2^53-1" : value === -LONG_MAX ? "-(2^53-1)" : String(value);
}

export interface IntegerOptions {
  readonly min?: number;
  readonly max?: number;
  /** Kafka's width: INT is 32-bit, LONG is 64-bit (clamped to 2^53-1 here), SHORT is 16-bit. */
  readonly width?: "SHORT" | "INT" | "LONG";
  /** Unit shown in docs ("ms", "bytes"), so an operator knows what the number counts. */
  readonly unit?: string;
}

export function integer(options: IntegerOptions = {}): ValueType<number> {
  const width = options.width ?? "INT";
  const widthMin = width === "SHORT" ? -32768 : width === "INT" ? INT_MIN : LONG_MIN;
  const widthMax = width === "SHORT" ? 32767 : width === "INT" ? INT_MAX : LONG_MAX;
  const min = options.min ?? widthMin;
  const max = options.max ?? widthMax;
  const unit = options.unit ? ` ${options.unit}` : "";
  const allowed = `whole number ${formatBound(min)} .. ${formatBound(max)}${unit}`;
  const schema = z.unknown().transform((raw, ctx): number => {
    let value: number;
    // As given: a number beyond 2^53 would be shown rounded ("9223372036854776000").
    let shown: string;
    if (typeof raw === "number") {
      value = raw;
      shown = String(raw);
    } else if (typeof raw === "string" && /^[+-]?\d+$/.test(raw.trim())) {
      shown = raw.trim();
      const big = BigInt(raw.trim());
      // Kafka tools write Long.MAX_VALUE for "unlimited"; keep accepting it for long settings.
      value = width === "LONG" && big > BigInt(LONG_MAX) && big <= KAFKA_LONG_MAX ? LONG_MAX : Number(big);
    } else {
      ctx.addIssue({ code: "custom", message: `${describeInput(raw)} is not a whole number` });
      return z.NEVER;
    }
    if (!Number.isInteger(value)) {
      ctx.addIssue({ code: "custom", message: `${shown} is not a whole number` });
      return z.NEVER;
    }
    if (value < min || value > max) {
      ctx.addIssue({ code: "custom", message: `${shown} is out of range` });
      return z.NEVER;
    }
    return value;
  });
  // "No limit" is reported as Kafka reports it, so that tools comparing what they set with what
  // DescribeConfigs says (Terraform, say) see no difference.
  const format = (value: number) =>
    width === "LONG" && value === LONG_MAX ? KAFKA_LONG_MAX.toString() : String(value);
  return { kafkaType: width, schema, allowed, format };
}

/** A decimal number (Kafka's DOUBLE), such as a ratio. */
export function decimal(options: { min?: number; max?: number } = {}): ValueType<number> {
  const min = options.min ?? Number.NEGATIVE_INFINITY;
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const schema = z.unknown().transform((raw, ctx): number => {
    const value =
      typeof raw === "number"
        ? raw
        : typeof raw === "string" && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw.trim())
          ? Number(raw.trim())
          : Number.NaN;
    if (!Number.isFinite(value)) {
      ctx.addIssue({ code: "custom", message: `${describeInput(raw)} is not a number` });
      return z.NEVER;
    }
    if (value < min || value > max) {
      ctx.addIssue({ code: "custom", message: `${value} is out of range` });
      return z.NEVER;
    }
    return value;
  });
  return {
    kafkaType: "DOUBLE",
    schema,
    allowed: `number ${min} .. ${max}`,
    format: (value) => String(value),
  };
}

export function boolean(): ValueType<boolean> {
  const schema = z.unknown().transform((raw, ctx): boolean => {
    if (typeof raw === "boolean") return raw;
    if (typeof raw === "string") {
      const text = raw.trim().toLowerCase();
      if (text === "true") return true;
      if (text === "false") return false;
    }
    ctx.addIssue({ code: "custom", message: `${describeInput(raw)} is not true or false` });
    return z.NEVER;
  });
  return { kafkaType: "BOOLEAN", schema, allowed: "true or false", format: (value) => String(value) };
}

export function text(
  options: { pattern?: RegExp; describe?: string; sensitive?: boolean } = {},
): ValueType<string> {
  const schema = z.unknown().transform((raw, ctx): string => {
    if (typeof raw !== "string") {
      ctx.addIssue({ code: "custom", message: `${describeInput(raw)} is not a string` });
      return z.NEVER;
    }
    const value = raw.trim();
    if (options.pattern && !options.pattern.test(value)) {
      ctx.addIssue({
        code: "custom",
        message: options.sensitive ? "the value has the wrong form" : `"${value}" has the wrong form`,
      });
      return z.NEVER;
    }
    return value;
  });
  return {
    kafkaType: options.sensitive ? "PASSWORD" : "STRING",
    schema,
    allowed: options.describe ?? "any text",
    format: (value) => value,
  };
}

export function oneOf<const V extends string>(values: readonly V[]): ValueType<V> {
  const schema = z.unknown().transform((raw, ctx): V => {
    const value = typeof raw === "string" ? raw.trim() : raw;
    const match = values.find((candidate) => candidate === value);
    if (match !== undefined) return match;
    // Kafka's enum-like values are case-sensitive, but a case slip deserves a precise hint.
    const caseless =
      typeof value === "string"
        ? values.find((candidate) => candidate.toLowerCase() === value.toLowerCase())
        : undefined;
    const hint = caseless ? ` (did you mean "${caseless}"? values are case-sensitive)` : "";
    ctx.addIssue({
      code: "custom",
      message: `${describeInput(raw)} is not one of the allowed values${hint}`,
    });
    return z.NEVER;
  });
  return { kafkaType: "STRING", schema, allowed: `one of ${values.join(", ")}`, format: (value) => value };
}

/** A comma-separated list (or a JSON array); blank items are dropped, like Kafka does. */
export function list<T>(
  item: ValueType<T>,
  options: { minItems?: number; unique?: boolean } = {},
): ValueType<T[]> {
  const minItems = options.minItems ?? 0;
  const schema = z.unknown().transform((raw, ctx): T[] => {
    let items: unknown[];
    if (Array.isArray(raw)) items = raw;
    else if (typeof raw === "string") items = raw.split(",").filter((part) => part.trim() !== "");
    else {
      ctx.addIssue({ code: "custom", message: `${describeInput(raw)} is not a comma-separated list` });
      return z.NEVER;
    }
    if (items.length < minItems) {
      ctx.addIssue({
        code: "custom",
        message: `needs at least ${minItems} item${minItems === 1 ? "" : "s"}`,
      });
      return z.NEVER;
    }
    const values: T[] = [];
    for (const [index, rawItem] of items.entries()) {
      const parsed = item.schema.safeParse(rawItem);
      if (!parsed.success) {
        ctx.addIssue({ code: "custom", message: `item ${index + 1}: ${parsed.error.issues[0]?.message}` });
        return z.NEVER;
      }
      values.push(parsed.data);
    }
    if (options.unique) {
      const seen = new Set<string>();
      for (const value of values) {
        const key = item.format(value);
        if (seen.has(key)) {
          ctx.addIssue({ code: "custom", message: `"${key}" appears more than once` });
          return z.NEVER;
        }
        seen.add(key);
      }
    }
    return values;
  });
  const itemsAllowed = minItems > 0 ? `at least ${minItems}, ` : "";
  return {
    kafkaType: "LIST",
    schema,
    allowed: `comma-separated list (${itemsAllowed}each ${item.allowed})`,
    format: (values) => values.map((value) => item.format(value)).join(","),
  };
}

/** A TCP endpoint; an empty host means every interface. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** A Kafka listener: `NAME://host:port`. */
export interface Listener extends HostPort {
  readonly name: string;
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:/[\]]*)):(\d{1,5})$/;

function parseHostPort(value: string): HostPort | string {
  const match = HOST_PORT.exec(value);
  if (!match) return `"${value}" is not host:port (write e.g. 0.0.0.0:9092, :9092 or [::1]:9092)`;
  const port = Number(match[3]);
  if (port > 65535) return `port ${port} is above 65535`;
  return { host: match[1] ?? match[2] ?? "", port };
}

function formatHostPort({ host, port }: HostPort): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** `remote`: the address of another machine, so it needs a host and a real port. */
export function hostPort(options: { remote?: boolean } = {}): ValueType<HostPort> {
  const schema = z.unknown().transform((raw, ctx): HostPort => {
    if (typeof raw !== "string") {
      ctx.addIssue({ code: "custom", message: `${describeInput(raw)} is not host:port` });
      return z.NEVER;
    }
    const parsed = parseHostPort(raw.trim());
    if (typeof parsed === "string") {
      ctx.addIssue({ code: "custom", message: parsed });
      return z.NEVER;
    }
    if (options.remote && (parsed.host === "" || parsed.port === 0)) {
      ctx.addIssue({ code: "custom", message: `"${raw.trim()}" needs a host name and a port other than 0` });
      return z.NEVER;
    }
    return parsed;
  });
  return {
    kafkaType: "STRING",
    schema,
    allowed: options.remote
      ? "host:port of another node"
      : "host:port (empty host = every interface, port 0 = any free port)",
    format: formatHostPort,
  };
}

const LISTENER_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function listener(): ValueType<Listener> {
  const schema = z.unknown().transform((raw, ctx): Listener => {
    if (typeof raw !== "string") {
      ctx.addIssue({ code: "custom", message: `${describeInput(raw)} is not a listener` });
      return z.NEVER;
    }
    const value = raw.trim();
    const separator = value.indexOf("://");
    const name = separator >= 0 ? value.slice(0, separator) : "PLAINTEXT";
    if (!LISTENER_NAME.test(name)) {
      ctx.addIssue({ code: "custom", message: `listener name "${name}" must be letters, digits and _` });
      return z.NEVER;
    }
    const parsed = parseHostPort(separator >= 0 ? value.slice(separator + 3) : value);
    if (typeof parsed === "string") {
      ctx.addIssue({ code: "custom", message: parsed });
      return z.NEVER;
    }
    return { name: name.toUpperCase(), ...parsed };
  });
  return {
    kafkaType: "STRING",
    schema,
    allowed: "NAME://host:port or host:port (name defaults to PLAINTEXT)",
    format: (value) => `${value.name}://${formatHostPort(value)}`,
  };
}
