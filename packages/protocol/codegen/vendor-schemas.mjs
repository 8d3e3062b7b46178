#!/usr/bin/env node
// Copies Apache Kafka's message schemas into schemas/ from the shared checkout beside the repository
// (../shared/kafka-protocol/messages), or checks that the vendored copy still matches it (--check).
// The generator reads only the vendored copy, so that a fresh clone builds and tests on its own; this
// is how the copy is kept true to its source.
//
//   node codegen/vendor-schemas.mjs [--check] [--from DIR]
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const packageDir = fileURLToPath(new URL("..", import.meta.url));
const vendoredDir = join(packageDir, "schemas");
const { values: options } = parseArgs({
  options: {
    check: { type: "boolean", default: false },
    from: { type: "string", default: resolve(packageDir, "../../../shared/kafka-protocol/messages") },
  },
});
const sourceDir = resolve(options.from);
if (!existsSync(sourceDir)) {
  console.error(
    `vendor-schemas: no schemas at ${sourceDir}: pass --from <kafka>/clients/src/main/resources/common/message`,
  );
  process.exit(2);
}

const schemaFiles = (dir) =>
  readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .sort();
const source = schemaFiles(sourceDir);
const vendored = new Set(schemaFiles(vendoredDir));
const added = source.filter((name) => !vendored.has(name));
const changed = source.filter(
  (name) =>
    vendored.has(name) && !readFileSync(join(sourceDir, name)).equals(readFileSync(join(vendoredDir, name))),
);
const removed = [...vendored].filter((name) => !source.includes(name));
const drift = [
  ...added.map((n) => `added ${n}`),
  ...changed.map((n) => `changed ${n}`),
  ...removed.map((n) => `removed ${n}`),
];

if (options.check) {
  if (drift.length === 0) {
    console.log(`vendor-schemas: the ${source.length} vendored schemas match ${sourceDir}`);
    process.exit(0);
  }
  console.error(`vendor-schemas: schemas/ differs from ${sourceDir}:\n  ${drift.join("\n  ")}`);
  console.error("run `pnpm --filter @raftka/protocol vendor-schemas`, then `generate`, and commit both");
  process.exit(1);
}
for (const name of [...added, ...changed]) copyFileSync(join(sourceDir, name), join(vendoredDir, name));
for (const name of removed) rmSync(join(vendoredDir, name));
console.log(
  drift.length === 0
    ? `vendor-schemas: nothing to do, the ${source.length} schemas match`
    : `vendor-schemas: ${drift.length} schema files updated:\n  ${drift.join("\n  ")}\n` +
        "now run `pnpm --filter @raftka/protocol generate` and update schemas/README.md's provenance",
);
