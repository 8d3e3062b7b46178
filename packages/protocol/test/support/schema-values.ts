// Test-side reading of the vendored schemas, written independently of codegen/ on purpose: it builds
// random values for a message at a version, following the schema rules the generated code must obey.
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Random } from "./random.js";

export const schemaDir = fileURLToPath(new URL("../../schemas/", import.meta.url));

interface Range {
  min: number;
  max: number;
}

export interface SchemaField {
  name: string;
  type: string;
  versions: string;
  nullableVersions?: string;
  taggedVersions?: string;
  tag?: number;
  default?: string | number | boolean;
  flexibleVersions?: string;
  fields?: SchemaField[];
}

export interface SchemaMessage {
  name: string;
  type: "request" | "response" | "header" | "data";
  apiKey?: number;
  validVersions: string;
  flexibleVersions: string;
  deprecatedVersions?: string;
  latestVersionUnstable?: boolean;
  listeners?: string[];
  fields: SchemaField[];
  commonStructs?: { name: string; fields: SchemaField[] }[];
}

export function range(text: string | undefined): Range | null {
  if (text === undefined || text === "none") return null;
  if (text.endsWith("+")) return { min: Number(text.slice(0, -1)), max: Number.POSITIVE_INFINITY };
  const [a, b] = text.split("-");
  return { min: Number(a), max: Number(b ?? a) };
}

export const within = (text: string | undefined, v: number): boolean => {
  const r = range(text);
  return r !== null && v >= r.min && v <= r.max;
};

export function loadSchemaMessages(): SchemaMessage[] {
  return readdirSync(schemaDir)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => {
      const text = readFileSync(schemaDir + file, "utf8")
        .split("\n")
        .filter((line) => !/^\s*\/\//.test(line))
        .join("\n");
      return JSON.parse(text) as SchemaMessage;
    });
}

export function versionList(message: SchemaMessage): number[] {
  const r = range(message.validVersions)!;
  const out: number[] = [];
  for (let v = r.min; v <= r.max; v++) out.push(v);
  return out;
}

const lowerFirst = (name: string): string => name.charAt(0).toLowerCase() + name.slice(1);

type Value = unknown;
type Obj = Record<string, Value>;

/** Builds random messages; the expected decoded form equals the generated value exactly. */
export class ValueFactory {
  private readonly structs = new Map<string, SchemaField[]>();

  constructor(
    private readonly message: SchemaMessage,
    private readonly random: Random,
  ) {
    const collect = (fields: SchemaField[]) => {
      for (const field of fields) {
        if (field.fields) {
          this.structs.set(field.type.replace(/^\[\]/, ""), field.fields);
          collect(field.fields);
        }
      }
    };
    collect(message.fields);
    for (const common of message.commonStructs ?? []) {
      this.structs.set(common.name, common.fields);
      collect(common.fields);
    }
  }

  private flexible(v: number): boolean {
    return within(this.message.flexibleVersions, v);
  }

  message_(v: number): Obj {
    return this.struct(this.message.fields, v, 0);
  }

  private struct(fields: SchemaField[], v: number, depth: number): Obj {
    const out: Obj = {};
    const knownTags = new Set<number>();
    for (const field of fields) {
      const present = within(field.versions, v);
      const tagged = this.flexible(v) && within(field.taggedVersions, v);
      if (tagged) {
        knownTags.add(field.tag!);
        if (this.random.chance(0.5)) out[lowerFirst(field.name)] = this.value(field, v, depth);
      } else if (present) {
        out[lowerFirst(field.name)] = this.value(field, v, depth);
      } else if (field.taggedVersions === undefined) {
        out[lowerFirst(field.name)] = this.defaultOf(field);
      }
    }
    if (this.flexible(v) && this.random.chance(0.2)) {
      const unknown: { tag: number; data: Buffer }[] = [];
      let tag = Math.max(-1, ...knownTags) + 1 + this.random.int(0, 3);
      for (let i = this.random.int(1, 2); i > 0; i--) {
        unknown.push({ tag, data: this.random.bytes(this.random.int(0, 5)) });
        tag += this.random.int(1, 200);
      }
      out.unknownTaggedFields = unknown;
    }
    return out;
  }

  private value(field: SchemaField, v: number, depth: number): Value {
    const nullable = within(field.nullableVersions, v);
    if (nullable && this.random.chance(0.2)) return null;
    if (field.type.startsWith("[]")) {
      const element = field.type.slice(2);
      const count = depth > 3 ? 0 : this.random.int(0, 3);
      const out: Value[] = [];
      for (let i = 0; i < count; i++) out.push(this.elementValue(element, v, depth + 1));
      return out;
    }
    return this.elementValue(field.type, v, depth + 1);
  }

  private elementValue(type: string, v: number, depth: number): Value {
    const r = this.random;
    switch (type) {
      case "bool":
        return r.chance(0.5);
      case "int8":
        return r.int(-128, 127);
      case "int16":
        return r.pick([-32768, 32767, -1, 0, r.int(-32768, 32767)]);
      case "uint16":
        return r.pick([0, 65535, r.int(0, 65535)]);
      case "int32":
        return r.pick([-2147483648, 2147483647, -1, 0, r.int(-2147483648, 2147483647)]);
      case "uint32":
        return r.pick([0, 4294967295, r.int(0, 4294967295)]);
      case "int64":
        return r.pick([
          -(2n ** 63n),
          2n ** 63n - 1n,
          -1n,
          BigInt.asIntN(64, (BigInt(r.int(0, 2 ** 31)) << 32n) | BigInt(r.int(0, 2 ** 32 - 1))),
        ]);
      case "float64":
        return r.pick([0, -1.5, Number.MAX_VALUE, r.next() * 1e6]);
      case "string":
        return this.randomString();
      case "uuid":
        return r.bytes(16).toString("base64url");
      case "bytes":
        return r.bytes(r.int(0, 12));
      case "records":
        // Sometimes above the writer's zero-copy threshold so both output paths are exercised.
        return r.bytes(r.chance(0.1) ? r.int(4096, 9000) : r.int(0, 40));
      default: {
        const fields = this.structs.get(type);
        if (!fields) throw new Error(`unknown struct ${type} in ${this.message.name}`);
        return this.struct(fields, v, depth);
      }
    }
  }

  private randomString(): string {
    const alphabet = ["a", "b", "Z", "0", "-", ".", "_", " ", "é", "ß", "日本", "🚀"];
    let out = "";
    for (let i = this.random.int(0, 8); i > 0; i--) out += this.random.pick(alphabet);
    return out;
  }

  /** What a decoder must produce for a field absent from the version. */
  defaultOf(field: SchemaField): Value {
    const raw = field.default;
    if (raw === "null") return null;
    if (field.type.startsWith("[]")) return [];
    switch (field.type) {
      case "bool":
        return raw === true || raw === "true";
      case "int8":
      case "int16":
      case "uint16":
      case "int32":
      case "uint32":
      case "float64":
        return raw === undefined ? 0 : Number(raw);
      case "int64":
        return raw === undefined ? 0n : BigInt(raw);
      case "string":
        return raw === undefined ? "" : String(raw);
      case "uuid":
        return "AAAAAAAAAAAAAAAAAAAAAA";
      case "bytes":
        return Buffer.alloc(0);
      case "records":
        return null;
      default: {
        const fields = this.structs.get(field.type)!;
        const out: Obj = {};
        for (const inner of fields) {
          if (inner.taggedVersions === undefined) out[lowerFirst(inner.name)] = this.defaultOf(inner);
        }
        return out;
      }
    }
  }
}
