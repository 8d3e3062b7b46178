import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { renderConfigurationDoc } from "./configuration-doc.js";
import { renderMetricsDoc } from "./metrics-doc.js";

/** The generated reference documents, by path relative to the repository root. */
export function generatedDocs(): ReadonlyMap<string, string> {
  return new Map([
    ["docs/configuration.md", renderConfigurationDoc()],
    ["docs/metrics.md", renderMetricsDoc()],
  ]);
}

// `pnpm docs:config`: rewrites the documents that changed and says which.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = new URL("../../../../", import.meta.url);
  for (const [path, content] of generatedDocs()) {
    const file = new URL(path, root);
    let current: string | undefined;
    try {
      current = readFileSync(file, "utf8");
    } catch {
      current = undefined;
    }
    if (current === content) {
      console.log(`${path} is up to date`);
    } else {
      writeFileSync(file, content);
      console.log(`${path} written`);
    }
  }
}
