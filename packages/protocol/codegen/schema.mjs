// Loads Apache Kafka's message schemas (JSON with whole-line // comments) into a normalised model
// that the code generator walks. Dev-time only: nothing at run time reads the schemas.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const PRIMITIVES = new Set([
  "bool",
  "int8",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "int64",
  "float64",
  "string",
  "uuid",
  "bytes",
  "records",
]);

/** "none" -> null, "3" -> {3,3}, "3+" -> {3,Infinity}, "1-4" -> {1,4}. */
export function parseVersions(text, where) {
  if (text === undefined) return null;
  const value = String(text).trim();
  if (value === "none") return null;
  let match = /^(\d+)\+$/.exec(value);
  if (match) return { min: Number(match[1]), max: Number.POSITIVE_INFINITY };
  match = /^(\d+)-(\d+)$/.exec(value);
  if (match) return { min: Number(match[1]), max: Number(match[2]) };
  match = /^(\d+)$/.exec(value);
  if (match) return { min: Number(match[1]), max: Number(match[1]) };
  throw new Error(`${where}: cannot parse version range ${JSON.stringify(text)}`);
}

export function inRange(range, version) {
  return range !== null && version >= range.min && version <= range.max;
}

export function parseJsonWithComments(text) {
  // Only whole-line comments exist in these files; a // inside a line is left alone on purpose.
  return JSON.parse(
    text
      .split("\n")
      .filter((line) => !/^\s*\/\//.test(line))
      .join("\n"),
  );
}

export function lowerFirst(name) {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

function parseType(typeText, where) {
  if (typeText.startsWith("[]")) {
    return { kind: "array", element: parseType(typeText.slice(2), where) };
  }
  if (PRIMITIVES.has(typeText)) return { kind: "primitive", name: typeText };
  if (/^[A-Z]\w*$/.test(typeText)) return { kind: "struct", name: typeText };
  throw new Error(`${where}: unknown field type ${typeText}`);
}

function normaliseField(raw, where) {
  const fieldWhere = `${where}.${raw.name}`;
  return {
    name: raw.name,
    camel: lowerFirst(raw.name),
    type: parseType(raw.type, fieldWhere),
    typeText: raw.type,
    versions: parseVersions(raw.versions, fieldWhere),
    nullableVersions: parseVersions(raw.nullableVersions ?? "none", fieldWhere),
    taggedVersions: parseVersions(raw.taggedVersions ?? "none", fieldWhere),
    tag: raw.tag,
    // undefined = inherit the message's flexible versions; null = never flexible (RequestHeader.ClientId).
    flexibleVersions:
      raw.flexibleVersions === undefined ? undefined : parseVersions(raw.flexibleVersions, fieldWhere),
    default: raw.default,
    about: raw.about,
    inlineFields: raw.fields,
  };
}

/** Reads every *.json schema in `dir`, sorted by file name for deterministic output. */
export function loadSchemas(dir) {
  const files = readdirSync(dir)
    .filter((file) => file.endsWith(".json"))
    .sort();
  return files.map((file) => loadMessage(join(dir, file), file));
}

function loadMessage(path, file) {
  const raw = parseJsonWithComments(readFileSync(path, "utf8"));
  const validVersions = parseVersions(raw.validVersions, file);
  if (validVersions === null) throw new Error(`${file}: validVersions is "none"`);
  const message = {
    file,
    name: raw.name,
    kind: raw.type,
    apiKey: raw.apiKey,
    validVersions,
    flexibleVersions: parseVersions(raw.flexibleVersions ?? "none", file),
    deprecatedVersions: parseVersions(raw.deprecatedVersions ?? "none", file),
    latestVersionUnstable: raw.latestVersionUnstable === true,
    listeners: raw.listeners ?? [],
    structs: new Map(),
    root: null,
  };
  // Every struct, inline or common, is registered once by name; references without fields resolve here.
  const register = (name, rawFields, where) => {
    if (message.structs.has(name)) throw new Error(`${file}: struct ${name} is defined twice`);
    const struct = { name, fields: [], presence: new Set() };
    message.structs.set(name, struct);
    struct.fields = rawFields.map((field) => normaliseField(field, where));
    for (const field of struct.fields) {
      const target = field.type.kind === "array" ? field.type.element : field.type;
      if (target.kind === "struct" && field.inlineFields)
        register(target.name, field.inlineFields, `${file}:${target.name}`);
    }
    return struct;
  };
  message.root = register(raw.name, raw.fields, `${file}:${raw.name}`);
  for (const common of raw.commonStructs ?? [])
    register(common.name, common.fields, `${file}:${common.name}`);
  for (const struct of message.structs.values()) {
    for (const field of struct.fields) {
      const target = field.type.kind === "array" ? field.type.element : field.type;
      if (target.kind === "struct" && !message.structs.has(target.name)) {
        throw new Error(
          `${file}: field ${struct.name}.${field.name} refers to unknown struct ${target.name}`,
        );
      }
    }
  }
  // A struct's presence = the message versions in which some path from the root reaches it.
  const visit = (struct, versions) => {
    const added = versions.filter((v) => !struct.presence.has(v));
    if (added.length === 0) return;
    for (const v of added) struct.presence.add(v);
    for (const field of struct.fields) {
      const target = field.type.kind === "array" ? field.type.element : field.type;
      if (target.kind !== "struct") continue;
      visit(
        message.structs.get(target.name),
        added.filter((v) => inRange(field.versions, v)),
      );
    }
  };
  const all = [];
  for (let v = validVersions.min; v <= validVersions.max; v++) all.push(v);
  visit(message.root, all);
  return message;
}
