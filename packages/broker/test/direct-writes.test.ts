import { execFileSync } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { ApiKey, decodeRecordBatch, ErrorCode, sliceBatches } from "@raftka/protocol";
import { describe, expect, it } from "vitest";
import {
  batch,
  createTopic,
  fetchRequest,
  produceRequest,
  startTestBroker,
  type TestBroker,
} from "./helpers.js";

const TOPIC = "direct";
// Under message.max.bytes (1 MiB), with room for the direct write (whole pages of at least 128 KiB).
const RECORDS = 20;

/** Bytes of the partition's segment file that are in the page cache now (util-linux fincore). */
async function residentSegmentBytes(node: TestBroker): Promise<number> {
  const directory = join(node.dataDir, `${TOPIC}-0`);
  const [log] = (await readdir(directory)).filter((name) => name.endsWith(".log"));
  const output = execFileSync("fincore", [
    "--bytes",
    "--noheadings",
    "--raw",
    "--output",
    "RES",
    join(directory, log!),
  ]);
  return Number(output.toString().trim());
}

async function metricValue(
  node: TestBroker,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = await node.metrics.registry.getSingleMetric(name)?.get();
  const sample = metric?.values.find((value) =>
    Object.entries(labels).every(([key, wanted]) => value.labels[key] === wanted),
  );
  return sample?.value ?? 0;
}

describe.each([
  ["with log.direct.io.enable=true", { "log.direct.io.enable": true }, true],
  ["by default", {}, false],
])("a large Produce %s", (_name, settings, direct) => {
  it(`is written ${direct ? "past" : "through"} the page cache and reads back whole`, async () => {
    const node = await startTestBroker(settings);
    try {
      const connection = await node.connect();
      expect((await createTopic(connection, TOPIC)).errorCode).toBe(ErrorCode.NONE);
      const values = Array.from({ length: RECORDS }, (_, index) => `record-${index}-`.padEnd(40_000, "x"));
      const produced = await connection.send(ApiKey.Produce, 9, produceRequest(TOPIC, 0, batch(values)));
      expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
      // Before anything reads it: a read brings what it reads into the page cache either way.
      const resident = await residentSegmentBytes(node);

      const fetched = await connection.send(
        ApiKey.Fetch,
        11,
        fetchRequest([{ topic: TOPIC, partition: 0, offset: 0n, maxBytes: 4 * 1024 * 1024 }]),
      );
      const [stored] = sliceBatches(fetched.responses[0]!.partitions[0]!.records ?? Buffer.alloc(0)).batches;
      expect(decodeRecordBatch(stored!.bytes).records.map((record) => record.value!.toString())).toEqual(
        values,
      );

      const directBytes = await metricValue(node, "raftka_log_appended_bytes_total", { path: "direct" });
      expect(await metricValue(node, "raftka_log_direct_writes_enabled")).toBe(direct ? 1 : 0);
      const size = RECORDS * 40_000;
      if (direct) {
        expect(directBytes).toBeGreaterThan(size - 8192);
        // The append's partial pages at most, not the 800 kB it wrote.
        expect(resident).toBeLessThan(size / 4);
      } else {
        expect(directBytes).toBe(0);
        expect(resident).toBeGreaterThan(size);
      }
    } finally {
      await node.cleanup();
    }
  });
});
