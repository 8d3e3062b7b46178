import { ApiKey, ErrorCode } from "@raftka/protocol";
import { describe, expect, it } from "vitest";
import { batch, createTopic, produceRequest, startTestBroker, withScratchMount } from "./helpers.js";

// Its own file: a refusal turns block reservations off for the whole process.
describe("a node whose log directory refuses fallocate", () => {
  it("warns once, says what to do, and keeps taking large Produce requests", async () => {
    await withScratchMount("ramfs", "", async (directory) => {
      const node = await startTestBroker({}, directory);
      try {
        const connection = await node.connect();
        expect((await createTopic(connection, "ramfs")).errorCode).toBe(ErrorCode.NONE);
        const values = Array.from({ length: 20 }, (_, index) => `record-${index}-`.padEnd(40_000, "x"));
        for (let round = 0; round < 3; round++) {
          const produced = await connection.send(
            ApiKey.Produce,
            9,
            produceRequest("ramfs", 0, batch(values)),
          );
          expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const warnings = node.logLines.filter((line) => String(line.msg).includes("reserving blocks"));
        expect(warnings).toHaveLength(1);
        expect(String(warnings[0]!.msg)).toContain("log.preallocate=false");
        expect(String(warnings[0]!.reason)).toContain("refuses fallocate");
      } finally {
        await node.stop();
      }
    });
  });
});
