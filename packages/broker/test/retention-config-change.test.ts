import { ApiKey, ErrorCode } from "@raftka/protocol";
import { describe, expect, it } from "vitest";
import { batch, createTopic, produceRequest, startTestBroker } from "./helpers.js";

const VALUES = Array.from({ length: 4 }, (_, index) => `record-${index}-`.padEnd(5_000, "x"));

describe("lowering a topic's retention", () => {
  it("deletes the segments past it soon, not at the next log.retention.check.interval.ms", async () => {
    // The default check interval, 5 minutes: longer than this test waits.
    const node = await startTestBroker({ "log.retention.check.interval.ms": 300_000 });
    try {
      const connection = await node.connect();
      expect((await createTopic(connection, "shrinking", 1, { "segment.bytes": "32768" })).errorCode).toBe(
        ErrorCode.NONE,
      );
      for (let round = 0; round < 12; round++) {
        const response = await connection.send(
          ApiKey.Produce,
          9,
          produceRequest("shrinking", 0, batch(VALUES)),
        );
        expect(response.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
      }
      const log = node.broker.services.partitions.partition("shrinking", 0)!;
      expect(log.logStartOffset).toBe(0);
      const altered = await connection.send(ApiKey.IncrementalAlterConfigs, 1, {
        validateOnly: false,
        resources: [
          {
            resourceType: 2,
            resourceName: "shrinking",
            configs: [{ name: "retention.bytes", configOperation: 0, value: "40000" }],
          },
        ],
      });
      expect(altered.responses[0]!.errorCode).toBe(ErrorCode.NONE);
      // The log start moves inside the deletion; the line is logged once it has finished: wait for both.
      const reported = () => node.logLines.some((line) => line.msg === "retention deleted old segments");
      for (let waited = 0; (log.logStartOffset === 0 || !reported()) && waited < 10_000; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(log.logStartOffset).toBeGreaterThan(0);
      expect(reported()).toBe(true);
    } finally {
      await node.cleanup();
    }
  });
});
