import { ErrorCode } from "@raftka/protocol";
import { describe, expect, it } from "vitest";
import { createTopic, startTestBroker } from "./helpers.js";

const compactionWarnings = (lines: Record<string, unknown>[]) =>
  lines.filter((line) => line.level === "warn" && String(line.msg).includes("cleanup.policy=compact"));

describe("a user topic that asks for cleanup.policy=compact (compacted only in __consumer_offsets so far)", () => {
  it("is kept, with one warning per topic that says what the node does instead, again at each start", async () => {
    let node = await startTestBroker({});
    try {
      const connection = await node.connect();
      expect((await createTopic(connection, "kept", 1, { "cleanup.policy": "compact" })).errorCode).toBe(
        ErrorCode.NONE,
      );
      expect(
        (await createTopic(connection, "trimmed", 1, { "cleanup.policy": "compact,delete" })).errorCode,
      ).toBe(ErrorCode.NONE);
      expect((await createTopic(connection, "plain")).errorCode).toBe(ErrorCode.NONE);
      const warnings = compactionWarnings(node.logLines);
      expect(warnings.map((line) => line.topic)).toEqual(["kept", "trimmed"]);
      expect(String(warnings[0]!.msg)).toContain("it keeps every record; set retention.bytes / retention.ms");
      expect(String(warnings[1]!.msg)).toContain("retention (delete) still trims it");

      node = await node.restart();
      expect(
        compactionWarnings(node.logLines)
          .map((line) => line.topic)
          .sort(),
      ).toEqual(["kept", "trimmed"]);
    } finally {
      await node.cleanup();
    }
  });
});
