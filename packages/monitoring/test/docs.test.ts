import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { generatedDocs } from "../src/docs/write-docs.js";
import { brokerSettings, topicSettings } from "../src/index.js";
import { allMetricDefinitions } from "../src/metrics/definitions.js";

const root = new URL("../../../", import.meta.url);

describe("generated reference docs", () => {
  for (const [path, expected] of generatedDocs()) {
    it(`${path} is what \`pnpm docs:config\` writes (run it and commit the result if this fails)`, () => {
      expect(readFileSync(new URL(path, root), "utf8")).toBe(expected);
    });
  }

  it("configuration.md mentions every broker and topic setting and its environment variable", () => {
    const doc = generatedDocs().get("docs/configuration.md")!;
    for (const key of brokerSettings.keys()) {
      expect(doc).toContain(`\`${key}\`<br>\`RAFTKA_${key.toUpperCase().replaceAll(".", "_")}\``);
    }
    for (const key of topicSettings.keys()) expect(doc).toContain(`| \`${key}\` |`);
  });

  it("metrics.md lists every metric", () => {
    const doc = generatedDocs().get("docs/metrics.md")!;
    for (const { definition } of allMetricDefinitions()) expect(doc).toContain(`| \`${definition.name}\` |`);
  });
});
