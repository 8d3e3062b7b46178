import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const packageDir = fileURLToPath(new URL("..", import.meta.url));
const committedDir = join(packageDir, "src/generated");

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

describe("committed generated code", () => {
  const scratch = mkdtempSync(join(tmpdir(), "raftka-codegen-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it("is exactly what the generator produces from the vendored schemas (run `pnpm --filter @raftka/protocol generate` if not)", () => {
    const freshDir = join(scratch, "generated");
    execFileSync(process.execPath, [join(packageDir, "codegen/generate.mjs"), freshDir], { stdio: "pipe" });
    const fresh = listFiles(freshDir);
    expect(listFiles(committedDir)).toEqual(fresh);
    const stale = fresh.filter(
      (file) => !readFileSync(join(freshDir, file)).equals(readFileSync(join(committedDir, file))),
    );
    expect(stale, "these generated files differ from a fresh generation").toEqual([]);
  });
});
