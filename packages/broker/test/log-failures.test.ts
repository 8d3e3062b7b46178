import { ApiKey, ErrorCode } from "@raftka/protocol";
import { describe, expect, it } from "vitest";
import { batch, createTopic, produceRequest, startTestBroker, withScratchMount } from "./helpers.js";

const VALUES = Array.from({ length: 10 }, (_, index) => `record-${index}-`.padEnd(10_000, "x"));

describe("a node whose log failed a write (the disk filled)", () => {
  it("is not ready, says so in /v1/status and raftka_logs_failed, and its shutdown says the logs had failed", async () => {
    await withScratchMount("tmpfs", "size=16m", async (directory) => {
      // The free-space guard off, so that the disk fills under the appends themselves.
      const node = await startTestBroker({ "log.dir.min.free.bytes": 0 }, directory);
      try {
        const connection = await node.connect();
        expect((await createTopic(connection, "filling")).errorCode).toBe(ErrorCode.NONE);
        let failure: { errorCode: number } | undefined;
        for (let attempt = 0; attempt < 1000 && failure === undefined; attempt++) {
          const response = await connection.send(
            ApiKey.Produce,
            9,
            produceRequest("filling", 0, batch(VALUES)),
          );
          const partition = response.responses[0]!.partitionResponses[0]!;
          if (partition.errorCode !== ErrorCode.NONE) failure = partition;
        }
        expect(failure?.errorCode).toBe(ErrorCode.KAFKA_STORAGE_ERROR);

        const admin = `http://127.0.0.1:${node.broker.adminAddress.port}`;
        const ready = await fetch(`${admin}/v1/health/ready`);
        expect(ready.status).toBe(503);
        const body = (await ready.json()) as { checks: { name: string; ready: boolean; reason?: string }[] };
        const check = body.checks.find((entry) => entry.name === "storage_writable");
        expect(check?.ready).toBe(false);
        expect(check?.reason).toContain("1 log(s) failed a write or fsync");
        expect(check?.reason).toContain("filling-0");
        expect(check?.reason).toContain("ENOSPC");
        expect(check?.reason).toContain("fix the disk");
        expect(check?.reason).toContain("then restart the node");
        const status = (await (await fetch(`${admin}/v1/status`)).json()) as Record<string, unknown>;
        expect(status.failedLogs).toBe("filling-0");
        expect(await node.metrics.render()).toMatch(/^raftka_logs_failed(\{[^}]*\})? 1$/m);
        expect(node.broker.needsRestart).toBe(true);
      } finally {
        await node.stop();
      }
      expect(
        node.logLines.some((line) => line.msg === "shutdown complete: every log flushed and closed"),
      ).toBe(false);
      const last = node.logLines.find((line) => String(line.msg).startsWith("shutdown complete"));
      expect(last?.level).toBe("error");
      expect(last?.msg).toContain("1 log(s) had failed (filling-0) and were closed without flushing");
      expect(last?.msg).toContain("fix the disk");
    });
  });

  it("a node whose logs are all well is ready with storage_writable, and shows failedLogs none", async () => {
    const node = await startTestBroker();
    try {
      const admin = `http://127.0.0.1:${node.broker.adminAddress.port}`;
      const ready = await fetch(`${admin}/v1/health/ready`);
      expect(ready.status).toBe(200);
      const body = (await ready.json()) as { checks: { name: string; ready: boolean }[] };
      expect(body.checks).toContainEqual({ name: "storage_writable", ready: true });
      const status = (await (await fetch(`${admin}/v1/status`)).json()) as Record<string, unknown>;
      expect(status.failedLogs).toBe("none");
      expect(await node.metrics.render()).toMatch(/^raftka_logs_failed(\{[^}]*\})? 0$/m);
    } finally {
      await node.cleanup();
    }
  });
});
