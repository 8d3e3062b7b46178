import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const packageDir = fileURLToPath(new URL("..", import.meta.url));
const script = join(packageDir, "codegen/vendor-schemas.mjs");

function check(from: string) {
  return spawnSync(process.execPath, [script, "--check", "--from", from], { encoding: "utf8" });
}

describe("vendor-schemas --check", () => {
  const scratch = mkdtempSync(join(tmpdir(), "raftka-schemas-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it("passes against a source equal to the vendored schemas", () => {
    const same = join(scratch, "same");
    cpSync(join(packageDir, "schemas"), same, { recursive: true });
    const result = check(same);
    expect(result.stdout).toContain("the 186 vendored schemas match");
    expect(result.status).toBe(0);
  });

  it("fails and names each schema the source added, changed or dropped", () => {
    const drifted = join(scratch, "drifted");
    cpSync(join(packageDir, "schemas"), drifted, { recursive: true });
    writeFileSync(join(drifted, "ProduceRequest.json"), "{}\n");
    writeFileSync(join(drifted, "NewThingRequest.json"), "{}\n");
    rmSync(join(drifted, "FetchRequest.json"));
    const result = check(drifted);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("added NewThingRequest.json");
    expect(result.stderr).toContain("changed ProduceRequest.json");
    expect(result.stderr).toContain("removed FetchRequest.json");
    expect(result.stderr).toContain("vendor-schemas");
  });

  it("says where to point it when the source is missing", () => {
    const result = check(join(scratch, "nowhere"));
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("pass --from");
  });
});
