import { PassThrough } from "node:stream";
import { ErrorCode } from "@raftka/protocol";
import { describe, expect, it } from "vitest";
import { describeOffsetRange } from "../src/commands/consume.js";
import { batchTooLargeAdvice } from "../src/commands/produce.js";
import { crc32cWarning, startFailureAdvice } from "../src/commands/start.js";
import { parseDuration } from "../src/duration.js";
import { UsageError } from "../src/errors.js";
import { parseBrokerList } from "../src/kafka/addresses.js";
import { describeKafkaError } from "../src/kafka/kafka-errors.js";
import { parseOffsetSpec } from "../src/kafka/offset-spec.js";
import { murmur2, partitionForKey } from "../src/kafka/partitioner.js";
import { Progress } from "../src/output/progress.js";
import { renderTable, toJson } from "../src/output/render.js";

describe("murmur2 partitioner", () => {
  // The vectors of Kafka's own UtilsTest.testMurmur2: keyed records must land where Java clients put them.
  it.each([
    ["21", -973932308],
    ["foobar", -790332482],
    ["a-little-bit-long-string", -985981536],
    ["a-little-bit-longer-string", -1486304829],
    ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
    ["abc", 479470107],
  ])("hashes %j like Kafka", (key, expected) => {
    expect(murmur2(Buffer.from(key))).toBe(expected);
  });

  it("maps a key to a partition within range, positive even for negative hashes", () => {
    expect(partitionForKey(Buffer.from("21"), 7)).toBe((-973932308 & 0x7fffffff) % 7);
    for (let index = 0; index < 200; index++) {
      const partition = partitionForKey(Buffer.from(`key-${index}`), 3);
      expect(partition).toBeGreaterThanOrEqual(0);
      expect(partition).toBeLessThan(3);
    }
  });
});

describe("parsing the command line", () => {
  it("reads durations with units, bare numbers as milliseconds", () => {
    expect(parseDuration("500ms", "--t")).toBe(500);
    expect(parseDuration("30s", "--t")).toBe(30_000);
    expect(parseDuration("2m", "--t")).toBe(120_000);
    expect(parseDuration("1.5s", "--t")).toBe(1500);
    expect(parseDuration("250", "--t")).toBe(250);
    expect(() => parseDuration("30 seconds", "--wait")).toThrow(UsageError);
    expect(() => parseDuration("-1s", "--wait")).toThrow(/--wait "-1s" is not a duration/);
  });

  it("reads broker lists with default ports and IPv6 brackets", () => {
    expect(parseBrokerList("a:1, b ,[::1]:9093", "--brokers")).toEqual([
      { host: "a", port: 1 },
      { host: "b", port: 9092 },
      { host: "::1", port: 9093 },
    ]);
    expect(() => parseBrokerList("a:99999", "--brokers")).toThrow(/port 99999; a port is 1-65535/);
    expect(() => parseBrokerList(" , ", "RAFTKA_BROKERS")).toThrow(/RAFTKA_BROKERS is empty/);
    expect(() => parseBrokerList("http://a:1", "--brokers")).toThrow(/is not host:port/);
  });

  it("reads offset positions, allowing -N only where it makes sense", () => {
    expect(parseOffsetSpec("beginning", "--offset", true)).toEqual({ kind: "beginning" });
    expect(parseOffsetSpec("end", "--offset", true)).toEqual({ kind: "end" });
    expect(parseOffsetSpec("42", "--offset", true)).toEqual({ kind: "offset", offset: 42n });
    expect(parseOffsetSpec("-10", "--offset", true)).toEqual({ kind: "fromEnd", count: 10n });
    expect(parseOffsetSpec("@1700000000000", "--to", false)).toEqual({
      kind: "timestamp",
      timestamp: 1700000000000n,
    });
    expect(() => parseOffsetSpec("-10", "--to", false)).toThrow(UsageError);
    expect(() => parseOffsetSpec("yesterday", "--to", false)).toThrow(/--to "yesterday" is not a position/);
  });
});

describe("output", () => {
  it("aligns columns under upper-case headers without trailing blanks", () => {
    expect(
      renderTable(
        ["name", "partitions"],
        [
          ["orders", 12],
          ["a", null],
        ],
      ),
    ).toBe("NAME    PARTITIONS\norders  12\na       -");
  });

  it("writes offsets as exact JSON numbers, and as strings past 2^53", () => {
    expect(toJson({ offset: 42n, huge: 2n ** 60n }, 0)).toBe('{"offset":42,"huge":"1152921504606846976"}');
  });

  it("prints progress lines when forced on a non-terminal, throttled, with the final state always shown", () => {
    const stream = new PassThrough();
    let output = "";
    stream.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    let now = 0;
    const progress = new Progress({ stream, mode: "always", clock: () => now, intervalMs: 1000 });
    progress.update("produced 1 records");
    now = 500;
    progress.update("produced 2 records");
    now = 1500;
    progress.update("produced 3 records");
    progress.update("produced 4 records");
    progress.done();
    expect(output).toBe("produced 1 records\nproduced 3 records\nproduced 4 records\n");
  });

  it("shows no progress on a non-terminal unless asked", () => {
    const stream = new PassThrough();
    let output = "";
    stream.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const progress = new Progress({ stream, mode: "auto" });
    progress.update("consumed 5 records");
    progress.done("consumed 5 records");
    expect(output).toBe("");
  });
});

describe("describeOffsetRange", () => {
  it("calls a partition with no records empty at its end offset, not 'offsets 3000 to 2999'", () => {
    expect(describeOffsetRange(3000n, 3000n)).toBe(
      "which is empty at offset 3000 (its next record's offset)",
    );
    expect(describeOffsetRange(5n, 10n)).toBe("which holds offsets 5 to 9 (next offset 10)");
  });
});

describe("crc32cWarning", () => {
  it("blames RAFTKA_CRC32C_NATIVE=false, not a failed build, when the variable chose @node-rs/crc32", () => {
    const chosen = crc32cWarning("@node-rs/crc32", "x64", { RAFTKA_CRC32C_NATIVE: "false" });
    expect(chosen).toContain("because RAFTKA_CRC32C_NATIVE=false asks for it");
    expect(chosen).toContain("unset the variable and restart");
    expect(chosen).not.toContain("pnpm build");
    expect(crc32cWarning("@node-rs/crc32", "x64", {})).toContain("run `pnpm build`");
    expect(crc32cWarning("native-sse4.2", "x64", {})).toBeUndefined();
    expect(crc32cWarning("@node-rs/crc32", "arm64", {})).toBeUndefined();
  });
});

describe("startFailureAdvice", () => {
  const systemError = (code: string) => Object.assign(new Error(`${code}: failed, write`), { code });

  it("says what to do about the disk under the logs, wherever the code is in the cause chain", () => {
    expect(startFailureAdvice(systemError("ENOSPC"), ["/a", "/b"])).toContain(
      "the disk of the log directories is full (`df -h /a /b`)",
    );
    const wrapped = new Error("recovering t-0 failed", { cause: systemError("EROFS") });
    expect(startFailureAdvice(wrapped, ["/a"])).toContain("read-only file system: remount it read-write");
    expect(startFailureAdvice(systemError("EACCES"), ["/a"])).toContain("chown -R <user> /a");
  });

  it("has nothing to say about other failures", () => {
    expect(startFailureAdvice(new Error("port in use"), ["/a"])).toBeUndefined();
    expect(startFailureAdvice(systemError("ECONNREFUSED"), ["/a"])).toBeUndefined();
    expect(startFailureAdvice("not an error", ["/a"])).toBeUndefined();
  });
});

describe("Kafka error descriptions", () => {
  it("add the generic hint to a cause the broker's message already names only when it named none", () => {
    const internal = describeKafkaError(
      ErrorCode.INVALID_TOPIC_EXCEPTION,
      "topic __consumer_offsets is internal to the broker and cannot be deleted",
    );
    expect(internal).toBe(
      "INVALID_TOPIC_EXCEPTION: topic __consumer_offsets is internal to the broker and cannot be deleted",
    );
    expect(describeKafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, null)).toContain(
      "topic names are 1-249 characters",
    );
    // The broker's INVALID_CONFIG message already says where the topic configs are listed.
    const unknownConfig = describeKafkaError(
      ErrorCode.INVALID_CONFIG,
      "retention.msx: unknown topic config; did you mean retention.ms? docs/configuration.md lists every topic config",
    );
    expect(unknownConfig.split("docs/configuration.md")).toHaveLength(2);
    expect(describeKafkaError(ErrorCode.INVALID_CONFIG, null)).toContain("see docs/configuration.md");
    // Hints that are right whatever the broker said stay.
    expect(describeKafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, "topic orders already exists")).toContain(
      "--if-not-exists",
    );
  });

  it("join Kafka's own text, which ends in a full stop, and the hint without doubling the punctuation", () => {
    expect(describeKafkaError(ErrorCode.NON_EMPTY_GROUP)).toBe(
      "NON_EMPTY_GROUP: The group is not empty; stop the group's consumers first; `raftka group describe` shows them",
    );
  });
});

describe("advice for a batch the broker found too large", () => {
  it("names --batch-records with a value sized from the limit the broker's message gives", () => {
    const advice = batchTooLargeAdvice(
      1000,
      10_890,
      "record batch of 10890 bytes is larger than max.message.bytes (8192); send smaller batches or raise max.message.bytes for the topic",
    );
    expect(advice).toBe("the batch held 1000 records in 10890 bytes: pass --batch-records=677 (now 1000)");
    expect(
      batchTooLargeAdvice(
        1000,
        10_890,
        "record batch 1 is 10890 bytes, larger than segment.bytes (4096); send smaller batches or raise segment.bytes for this topic",
      ),
    ).toContain("--batch-records=338");
    // No limit in the message: half as many.
    expect(batchTooLargeAdvice(1000, 10_890, null)).toContain("--batch-records=500");
    // One record over the limit: fewer records per batch cannot help.
    expect(batchTooLargeAdvice(1, 10_890, "larger than max.message.bytes (8192)")).toContain(
      "--batch-records cannot make it smaller",
    );
  });
});
