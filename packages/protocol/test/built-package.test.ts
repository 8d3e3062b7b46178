// vitest transforms imports, which hides ESM/CommonJS interop mistakes; this runs the built package
// under plain Node exactly as the broker and CLI will load it.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const distIndex = fileURLToPath(new URL("../dist/index.js", import.meta.url));

describe("built package", () => {
  it("loads under plain Node and round-trips a batch with every codec", () => {
    expect(existsSync(distIndex), "dist/index.js is missing: run `pnpm build` before the tests").toBe(true);
    const script = `
      const p = await import(${JSON.stringify(distIndex)});
      const out = [];
      for (const compression of [0, 1, 2, 3, 4]) {
        const batch = p.encodeRecordBatch({ compression, records: [{ key: "k", value: "v".repeat(100), timestamp: 1 }] });
        const { records } = p.decodeRecordBatch(batch);
        out.push(records[0].value.length);
      }
      out.push(p.getApi(p.ApiKey.Produce).maxVersion);
      console.log(JSON.stringify(out));`;
    const output = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
    });
    expect(JSON.parse(output)).toEqual([100, 100, 100, 100, 100, 11]);
  });
});
