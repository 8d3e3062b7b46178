import { describe, expect, it, vi } from "vitest";
import { startTestBroker } from "./helpers.js";

// The storage package asks node:os at load time whether this platform can reserve blocks.
vi.mock("node:os", async (importOriginal) => ({
  ...(await importOriginal<typeof import("node:os")>()),
  platform: () => "darwin",
}));

// Its own file: the platform is the whole module graph's.
describe("a node on a platform without fallocate (not Linux)", () => {
  it("says once at start, as information, that blocks are not reserved, and gives no warning", async () => {
    const node = await startTestBroker({});
    try {
      const lines = node.logLines.filter((line) =>
        String(line.msg).includes("reserve blocks ahead of appends"),
      );
      expect(lines).toHaveLength(1);
      expect(lines[0]!.level).toBe("info");
      expect(String(lines[0]!.reason)).toContain("runs on darwin");
      expect(node.logLines.filter((line) => line.level === "warn" || line.level === "error")).toEqual([]);
    } finally {
      await node.cleanup();
    }
  });
});
