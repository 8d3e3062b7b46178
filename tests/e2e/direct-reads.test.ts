import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { evictFromPageCache, residentBytes } from "../../packages/storage/test/helpers.js";
import { type RunningBroker, startBroker } from "./harness/broker.js";
import { KafkajsFetcher, kafkaClient } from "./harness/kafkajs.js";

const TOPIC = "history";
const PARTITIONS = 2;
const MESSAGES = 400;
// About 8 MB in all: 20 KB values, each different, so that a read from the wrong place cannot pass.
const recordValue = (index: number) => `${index}:`.padEnd(20_000, String.fromCharCode(97 + (index % 26)));

let broker: RunningBroker;

beforeAll(async () => {
  broker = await startBroker();
  const kafka = kafkaClient(broker.bootstrap);
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }] });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  for (let first = 0; first < MESSAGES; first += 50) {
    await producer.send({
      topic: TOPIC,
      acks: -1,
      messages: Array.from({ length: 50 }, (_, step) => ({
        key: String(first + step),
        value: recordValue(first + step),
        partition: (first + step) % PARTITIONS,
      })),
    });
  }
  await producer.disconnect();
});

afterAll(async () => {
  await broker?.cleanup();
});

function segmentFiles(): string[] {
  return Array.from({ length: PARTITIONS }, (_, partition) =>
    join(broker.dataDir, `${TOPIC}-${partition}`),
  ).flatMap((directory) =>
    readdirSync(directory)
      .filter((name) => name.endsWith(".log"))
      .map((name) => join(directory, name)),
  );
}

async function readBytesMetric(path: "direct" | "page_cache"): Promise<number> {
  const metrics = await (await fetch(`${broker.adminUrl}/metrics`)).text();
  const series = `raftka_log_read_bytes_total{path="${path}"} `;
  const line = metrics.split("\n").find((candidate) => candidate.startsWith(series));
  return line === undefined ? 0 : Number(line.slice(series.length));
}

/** Every message of the topic, from the start, as kafkajs decodes them: key -> value. */
async function consumeAll(): Promise<Map<string, string>> {
  const fetcher = new KafkajsFetcher(kafkaClient(broker.bootstrap), TOPIC);
  await fetcher.connect();
  const messages = await fetcher.consume(MESSAGES);
  await fetcher.disconnect();
  return new Map(messages.map((message) => [String(message.key), String(message.value)]));
}

describe("a consumer catching up on data that left the page cache", () => {
  it("gets every record, read past the page cache (O_DIRECT), which keeps none of it", async () => {
    const files = segmentFiles();
    evictFromPageCache(...files);
    expect(residentBytes(...files)).toBe(0);

    const consumed = await consumeAll();
    expect(consumed.size).toBe(MESSAGES);
    for (let index = 0; index < MESSAGES; index++)
      expect(consumed.get(String(index))).toBe(recordValue(index));

    expect(await readBytesMetric("direct")).toBeGreaterThan(MESSAGES * 20_000);
    // What was read did not come back into the page cache (a page or two at the ends of reads may).
    expect(residentBytes(...files)).toBeLessThan(64 * 1024);
  });

  it("reads through the page cache with log.direct.reads.enable=false", async () => {
    await broker.stop();
    broker = await broker.restart({ settings: { "log.direct.reads.enable": false } });
    const files = segmentFiles();
    evictFromPageCache(...files);

    const consumed = await consumeAll();
    expect(consumed.size).toBe(MESSAGES);
    expect(consumed.get(String(MESSAGES - 1))).toBe(recordValue(MESSAGES - 1));

    expect(await readBytesMetric("direct")).toBe(0);
    expect(await readBytesMetric("page_cache")).toBeGreaterThan(MESSAGES * 20_000);
    // What was read stays in the page cache: nearly all of it (the first test's bound is 64 KiB). Not
    // always every page: a CI run found 1,953 pages (7,999,488 bytes) resident, a few short of all.
    expect(residentBytes(...files)).toBeGreaterThan(0.9 * MESSAGES * 20_000);
  });
});
