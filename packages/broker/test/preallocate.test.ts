import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { ApiKey, ErrorCode } from "@raftka/protocol";
import { describe, expect, it } from "vitest";
import { batch, createTopic, produceRequest, startTestBroker, type TestBroker } from "./helpers.js";

const MiB = 1024 * 1024;
// Under message.max.bytes (1 MiB), above the 256 KiB from which a segment reserves blocks ahead.
const VALUES = Array.from({ length: 20 }, (_, index) => `record-${index}-`.padEnd(40_000, "x"));

/** The partition's active segment file: its length, and the disk it takes once reservations had time to run. */
async function segmentUsage(node: TestBroker, topic: string): Promise<{ size: number; allocated: number }> {
  const directory = join(node.dataDir, `${topic}-0`);
  const [log] = (await readdir(directory)).filter((name) => name.endsWith(".log"));
  let info = await stat(join(directory, log!));
  for (let waited = 0; info.blocks * 512 <= info.size + MiB && waited < 2000; waited += 20) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    info = await stat(join(directory, log!));
  }
  return { size: info.size, allocated: info.blocks * 512 };
}

async function produceLarge(node: TestBroker, topic: string, configs: Record<string, string> = {}) {
  const connection = await node.connect();
  expect((await createTopic(connection, topic, 1, configs)).errorCode).toBe(ErrorCode.NONE);
  const produced = await connection.send(ApiKey.Produce, 9, produceRequest(topic, 0, batch(VALUES)));
  expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
  return segmentUsage(node, topic);
}

describe("log.preallocate and the topic's preallocate", () => {
  it("reserve disk blocks past a large Produce by default, the file as long as the log", async () => {
    const node = await startTestBroker({});
    try {
      const usage = await produceLarge(node, "reserved");
      expect(usage.size).toBeGreaterThan(VALUES.length * 40_000);
      expect(usage.size).toBeLessThan(MiB);
      expect(usage.allocated).toBeGreaterThan(4 * MiB);
      // A topic can opt out: preallocate=false reserves nothing past its bytes.
      const optedOut = await produceLarge(node, "not-reserved", { preallocate: "false" });
      expect(optedOut.allocated).toBeLessThanOrEqual(Math.ceil(optedOut.size / 4096) * 4096);
    } finally {
      await node.cleanup();
    }
  });

  it("reserve nothing with log.preallocate=false, unless a topic asks", async () => {
    const node = await startTestBroker({ "log.preallocate": false });
    try {
      const usage = await produceLarge(node, "off");
      expect(usage.allocated).toBeLessThanOrEqual(Math.ceil(usage.size / 4096) * 4096);
      const optedIn = await produceLarge(node, "on", { preallocate: "true" });
      expect(optedIn.allocated).toBeGreaterThan(4 * MiB);
    } finally {
      await node.cleanup();
    }
  });
});
