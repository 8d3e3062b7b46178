import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Logging, loadConfig } from "@raftka/monitoring";
import { afterEach, describe, expect, it } from "vitest";
import { Broker } from "../src/broker.js";
import { createTopic, startTestBroker, type TestBroker } from "./helpers.js";

let node: TestBroker | undefined;
afterEach(async () => {
  await node?.cleanup();
  node = undefined;
});

/** Starts a broker on `dataDir` again, logging to `destination`, with `interrupt` as its start's stop. */
function startInterruptible(dataDir: string, destination: Writable, interrupt: AbortSignal): Promise<Broker> {
  const config = loadConfig({
    argv: ["--listeners=PLAINTEXT://127.0.0.1:0", "--admin.listener=127.0.0.1:0", `--log.dirs=${dataDir}`],
  });
  return Broker.start({
    config,
    logging: new Logging({ level: "info", destination }),
    version: "test",
    interruptStart: interrupt,
  });
}

describe("a start interrupted during recovery", () => {
  it("opens no further partition, closes what it opened, releases the .lock and rejects with the reason", async () => {
    node = await startTestBroker();
    await createTopic(await node.connect(), "many", 8);
    await node.stop();

    // Interrupted as the metadata is replayed, just before the partitions' recovery begins.
    const interrupt = new AbortController();
    const reason = new Error("interrupted by the test");
    const messages: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString("utf8").split("\n")) {
          if (!line) continue;
          const message = String(JSON.parse(line).msg);
          messages.push(message);
          if (message === "cluster metadata replayed") interrupt.abort(reason);
        }
        callback();
      },
    });
    const started = startInterruptible(node.dataDir, destination, interrupt.signal);
    await expect(started).rejects.toBe(reason);
    expect(messages).toContain("cluster metadata replayed");
    expect(messages).not.toContain("partitions recovered");
    await expect(readFile(join(node.dataDir, ".lock"), "utf8")).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("leaves no unhandled rejection from partitions that opened but had not yet led when it stopped", async () => {
    node = await startTestBroker();
    await createTopic(await node.connect(), "leading", 128);
    await node.stop();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const interrupt = new AbortController();
      const reason = new Error("interrupted by the test");
      const destination = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          // Interrupted a few milliseconds into the partitions' recovery: some logs are open, their
          // one-member groups not yet leaders, when the start closes them.
          if (chunk.toString("utf8").includes('"msg":"cluster metadata replayed"'))
            setTimeout(() => interrupt.abort(reason), 30);
          callback();
        },
      });
      const started = startInterruptible(node.dataDir, destination, interrupt.signal);
      await expect(started).rejects.toBe(reason);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
