// Record batches and compression against independent implementations: librdkafka (through the kcat
// binary, driven against a fake broker made of our codec) and kafkajs.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import {
  ApiKey,
  CompressionType,
  decodeLegacyMessageSet,
  decodeRecordBatch,
  decodeRequestBody,
  decodeRequestHeader,
  encodeRecordBatch,
  encodeResponseFrame,
  sliceBatches,
} from "../src/index.js";
import { startFakeBroker } from "./support/fake-broker.js";
import { kafkajsDecodeResponse, kafkajsRequestFrame } from "./support/kafkajs.js";

const require = createRequire(import.meta.url);

function runKcat(
  args: string[],
  input = "",
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("kcat", args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    // A guard against a hung kcat, not a timing assertion: the test fails on the exit code.
    const guard = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

const KCAT_CODECS = [
  ["none", CompressionType.None],
  ["gzip", CompressionType.Gzip],
  ["snappy", CompressionType.Snappy],
  ["lz4", CompressionType.Lz4],
  ["zstd", CompressionType.Zstd],
] as const;

describe("librdkafka (kcat) interoperability", () => {
  it.each(KCAT_CODECS)("decodes the %s batches librdkafka produces", async (name, codec) => {
    const broker = await startFakeBroker({ topic: "interop" });
    try {
      const lines = Array.from({ length: 50 }, (_, i) => `key-${i}:value-${i}-${"x".repeat(i * 10)}`);
      const result = await runKcat(
        [
          "-P",
          "-b",
          `127.0.0.1:${broker.port}`,
          "-t",
          "interop",
          "-p",
          "0",
          "-z",
          name,
          "-K",
          ":",
          "-H",
          "origin=kcat",
        ],
        `${lines.join("\n")}\n`,
      );
      expect(result.code, result.stderr).toBe(0);
      const records = broker.produced.flatMap((blob) =>
        sliceBatches(blob).batches.flatMap((slice) => {
          const batch = decodeRecordBatch(slice.bytes);
          expect(batch.header.compression).toBe(codec);
          return batch.records;
        }),
      );
      expect(records.map((record) => `${record.key}:${record.value}`)).toEqual(lines);
      expect(records[0]!.headers).toEqual([{ key: "origin", value: Buffer.from("kcat") }]);
    } finally {
      await broker.close();
    }
  });

  it("gets gzip batches from librdkafka 2.0.2 only if the broker advertises Produce v0", async () => {
    // A client quirk the broker's ApiVersions answer must respect; pinned here so it stays visible.
    const broker = await startFakeBroker({ topic: "interop", produceMinVersion: 3 });
    try {
      const result = await runKcat(
        ["-P", "-b", `127.0.0.1:${broker.port}`, "-t", "interop", "-p", "0", "-z", "gzip"],
        "a\nb\n",
      );
      expect(result.code, result.stderr).toBe(0);
      const [slice] = sliceBatches(broker.produced[0]!).batches;
      expect(decodeRecordBatch(slice!.bytes).header.compression).toBe(CompressionType.None);
    } finally {
      await broker.close();
    }
  });

  it.each(KCAT_CODECS)("serves %s batches we encode that librdkafka consumes", async (_name, codec) => {
    const first = encodeRecordBatch({
      compression: codec,
      baseOffset: 0n,
      records: Array.from({ length: 3 }, (_, i) => ({
        key: `k${i}`,
        value: `v${i}-${"y".repeat(3000)}`,
        timestamp: 1_700_000_000_000 + i,
      })),
    });
    const second = encodeRecordBatch({
      compression: codec,
      baseOffset: 3n,
      records: [
        { key: null, value: "last", timestamp: 1_700_000_000_100, headers: [{ key: "h", value: "1" }] },
      ],
    });
    const broker = await startFakeBroker({
      topic: "served",
      log: { records: Buffer.concat([first, second]), highWatermark: 4n },
    });
    try {
      const result = await runKcat([
        "-C",
        "-b",
        `127.0.0.1:${broker.port}`,
        "-t",
        "served",
        "-p",
        "0",
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "%o|%k|%S|%T\\n",
      ]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout.trim().split("\n")).toEqual([
        "0|k0|3003|1700000000000",
        "1|k1|3003|1700000000001",
        "2|k2|3003|1700000000002",
        "3||4|1700000000100",
      ]);
      expect(broker.requests).toContain(ApiKey.Fetch);
    } finally {
      await broker.close();
    }
  });
});

describe("kafkajs interoperability", () => {
  const { CompressionTypes, CompressionCodecs } = require("kafkajs") as {
    CompressionTypes: Record<string, number>;
    CompressionCodecs: Record<number, () => unknown>;
  };
  CompressionCodecs[CompressionTypes.Snappy!] = require("kafkajs-snappy");

  const produceArgs = (compression: number) => ({
    acks: -1,
    timeout: 1000,
    compression,
    topicData: [
      {
        topic: "t",
        partitions: [
          {
            partition: 0,
            messages: [
              { key: "a", value: "first", timestamp: 1_700_000_000_000, headers: { trace: "t-1" } },
              { key: null, value: "second", timestamp: 1_700_000_000_005 },
            ],
          },
        ],
      },
    ],
  });

  async function producedRecords(version: number, compression: number): Promise<Buffer> {
    const wire = await kafkajsRequestFrame("produce", version, produceArgs(compression), 1, "kafkajs");
    const frame = wire.subarray(4);
    const request = decodeRequestBody(ApiKey.Produce, decodeRequestHeader(frame), frame);
    return request.topicData[0]!.partitionData[0]!.records!;
  }

  it.each([
    ["none", CompressionType.None],
    ["gzip", CompressionType.Gzip],
    ["snappy (raw, as kafkajs-snappy writes it)", CompressionType.Snappy],
  ])("decodes %s v2 batches kafkajs produces", async (_name, codec) => {
    const { header, records } = decodeRecordBatch(await producedRecords(7, codec));
    expect(header.compression).toBe(codec);
    expect(records.map((r) => [r.key?.toString() ?? null, r.value?.toString(), r.timestamp])).toEqual([
      ["a", "first", 1_700_000_000_000n],
      [null, "second", 1_700_000_000_005n],
    ]);
    expect(records[0]!.headers).toEqual([{ key: "trace", value: Buffer.from("t-1") }]);
  });

  it.each([
    [0, CompressionType.None],
    [1, CompressionType.Gzip],
    [2, CompressionType.None],
    [2, CompressionType.Gzip],
  ])("decodes the legacy message set of kafkajs Produce v%i (codec %i)", async (version, codec) => {
    const messages = decodeLegacyMessageSet(await producedRecords(version, codec));
    expect(messages.map((m) => [m.key?.toString() ?? null, m.value?.toString()])).toEqual([
      ["a", "first"],
      [null, "second"],
    ]);
    // Producers may write any offsets into a legacy set (kafkajs writes -1, or 0..n-1 when compressed);
    // the broker assigns real ones, so only the order and content matter here.
    expect(messages[0]!.magic).toBe(version === 2 ? 1 : 0);
    if (version === 2) expect(messages[0]!.timestamp).toBe(1_700_000_000_000n);
  });

  it.each([
    ["none", CompressionType.None],
    ["gzip", CompressionType.Gzip],
    ["snappy (xerial framing)", CompressionType.Snappy],
  ])("serves %s batches we encode that kafkajs reads from a Fetch response", async (_name, codec) => {
    const records = encodeRecordBatch({
      compression: codec,
      baseOffset: 10n,
      records: [
        {
          key: "k",
          value: "hello kafkajs",
          timestamp: 1_700_000_000_000,
          headers: [{ key: "h", value: "v" }],
        },
        { key: null, value: null, timestamp: 1_700_000_000_001 },
      ],
    });
    const wire = Buffer.concat(
      encodeResponseFrame(ApiKey.Fetch, 11, 1, {
        throttleTimeMs: 0,
        errorCode: 0,
        sessionId: 0,
        responses: [
          {
            topic: "t",
            partitions: [
              {
                partitionIndex: 0,
                errorCode: 0,
                highWatermark: 12n,
                lastStableOffset: 12n,
                logStartOffset: 0n,
                abortedTransactions: [],
                preferredReadReplica: -1,
                records,
              },
            ],
          },
        ],
      }),
    );
    const decoded = await kafkajsDecodeResponse("fetch", 11, wire.subarray(8));
    const messages = decoded.responses[0].partitions[0].messages;
    expect(messages.map((m: { offset: string }) => m.offset)).toEqual(["10", "11"]);
    expect(messages[0].key.toString()).toBe("k");
    expect(messages[0].value.toString()).toBe("hello kafkajs");
    expect(messages[0].headers.h.toString()).toBe("v");
    expect(messages[1].value).toBeNull();
  });
});
