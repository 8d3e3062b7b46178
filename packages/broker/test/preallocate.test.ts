import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { ApiKey, ErrorCode } from "@raftka/protocol";
import { describe, expect, it } from "vitest";
import { batch, createTopic, produceRequest, startTestBroker, type TestBroker } from "./helpers.js";

const MiB = 1024 * 1024;
// Under message.max.bytes (1 MiB), above the 256 KiB from which a segment reserves blocks ahead.
const VALUES = Array.from({ length: 20 }, (_, index) => `record-${index}-`.padEnd(40_000, "x"));

/**
 * The partition's active segment file: its length, and the disk it takes. With `awaitReservation`, once
 * a reservation shows (or 2 s passed); without, as it is now.
 */
async function segmentUsage(
  node: TestBroker,
  topic: string,
  awaitReservation: boolean,
): Promise<{ size: number; allocated: number }> {
  const directory = join(node.dataDir, `${topic}-0`);
  const [log] = (await readdir(directory)).filter((name) => name.endsWith(".log"));
  let info = await stat(join(directory, log!));
  for (
    let waited = 0;
    awaitReservation && info.blocks * 512 <= info.size + MiB && waited < 2000;
    waited += 20
  ) {
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
}

/**
 * Produces to `unreserved` and then to `reserved`, and returns both segments' usage once `reserved`'s
 * reservation shows. Reservations run in the order of their appends, so by then one for `unreserved`
 * would show too: no waiting for one that must not come.
 */
async function produceBoth(
  node: TestBroker,
  unreserved: { topic: string; configs?: Record<string, string> },
  reserved: { topic: string; configs?: Record<string, string> },
) {
  await produceLarge(node, unreserved.topic, unreserved.configs);
  await produceLarge(node, reserved.topic, reserved.configs);
  const reservedUsage = await segmentUsage(node, reserved.topic, true);
  return { unreserved: await segmentUsage(node, unreserved.topic, false), reserved: reservedUsage };
}

/** Disk a file of `size` bytes takes without reservations: whole 4 KiB blocks. */
const unreservedBlocks = (size: number) => Math.ceil(size / 4096) * 4096;

describe("log.preallocate and the topic's preallocate", () => {
  it("reserve disk blocks past a large Produce by default, the file as long as the log", async () => {
    const node = await startTestBroker({});
    try {
      // A topic can opt out: preallocate=false reserves nothing past its bytes.
      const usage = await produceBoth(
        node,
        { topic: "not-reserved", configs: { preallocate: "false" } },
        { topic: "reserved" },
      );
      expect(usage.reserved.size).toBeGreaterThan(VALUES.length * 40_000);
      expect(usage.reserved.size).toBeLessThan(MiB);
      expect(usage.reserved.allocated).toBeGreaterThan(4 * MiB);
      expect(usage.unreserved.size).toBe(usage.reserved.size);
      expect(usage.unreserved.allocated).toBeLessThanOrEqual(unreservedBlocks(usage.unreserved.size));
    } finally {
      await node.cleanup();
    }
  });

  it("reserve nothing with log.preallocate=false, unless a topic asks", async () => {
    const node = await startTestBroker({ "log.preallocate": false });
    try {
      const usage = await produceBoth(
        node,
        { topic: "off" },
        { topic: "on", configs: { preallocate: "true" } },
      );
      expect(usage.unreserved.allocated).toBeLessThanOrEqual(unreservedBlocks(usage.unreserved.size));
      expect(usage.reserved.allocated).toBeGreaterThan(4 * MiB);
    } finally {
      await node.cleanup();
    }
  });
});
