import { Writable } from "node:stream";
import { Logging } from "@raftka/monitoring";
import { KafkaStorageError, type RetentionResult } from "@raftka/storage";
import { describe, expect, it } from "vitest";
import type { PartitionManager } from "../src/partitions/partition-manager.js";
import { RetentionService } from "../src/partitions/retention-service.js";

/** A retention service over one topic whose partitions answer applyRetention with `results`. */
function serviceOver(results: Array<() => Promise<RetentionResult>>) {
  const logLines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logLines.push(JSON.parse(line));
      callback();
    },
  });
  const topic = {
    image: { name: "full" },
    settings: { cleanupPolicy: ["delete"] },
    partitions: results.map((applyRetention, partition) => ({
      topicPartition: { topic: "full", partition },
      applyRetention,
    })),
  };
  const partitions = { hostedTopics: () => [topic].values() } as unknown as PartitionManager;
  const service = new RetentionService({
    partitions,
    intervalMs: () => 60_000,
    now: () => 1_700_000_000_000,
    logger: new Logging({ level: "info", destination }).component("storage"),
  });
  return { service, logLines };
}

describe("RetentionService", () => {
  it("skips a partition whose log failed, warning once that a restart is needed, and reports no deletion", async () => {
    const failure = new KafkaStorageError(
      "appending to full-1 failed (ENOSPC: no space left on device, write)",
    );
    const { service, logLines } = serviceOver([
      async () => ({ deleted: [], logStartOffset: 0 }),
      () => Promise.reject(failure),
    ]);
    for (let pass = 0; pass < 3; pass++) {
      expect(await service.runOnce()).toMatchObject({ segmentsDeleted: 0, bytesDeleted: 0 });
    }
    expect(logLines.filter((line) => line.msg === "retention deleted old segments")).toEqual([]);
    const warnings = logLines.filter((line) => line.level === 40 || line.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ partition: 1 });
    expect(String(warnings[0]!.msg)).toContain("restart the broker");
  });
});
