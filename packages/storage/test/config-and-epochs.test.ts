import { describe, expect, it } from "vitest";
import {
  DEFAULT_LOG_CONFIG,
  InvalidConfigError,
  LeaderEpochCache,
  parseTopicConfig,
  resolveLogConfig,
  selectSegmentsToDelete,
} from "../src/index.js";

describe("log config", () => {
  it("converts Kafka topic config strings and leaves other keys to the broker", () => {
    const { config, ignored } = parseTopicConfig({
      "segment.bytes": "1048576",
      "retention.ms": "-1",
      "retention.bytes": "9223372036854775807",
      "flush.messages": "1",
      "raftka.flush.before.ack": "true",
      "cleanup.policy": "delete",
      "max.message.bytes": "1000000",
    });
    expect(config).toEqual({
      segmentBytes: 1_048_576,
      retentionMs: -1,
      retentionBytes: Number.MAX_SAFE_INTEGER,
      flushMessages: 1,
      flushBeforeAck: true,
    });
    expect(ignored).toEqual(["cleanup.policy", "max.message.bytes"]);
  });

  it("names the bad key and the allowed range", () => {
    expect(() => parseTopicConfig({ "segment.bytes": "lots" })).toThrow(
      /segment.bytes='lots' is not an integer/,
    );
    expect(() => parseTopicConfig({ "segment.bytes": "3000000000" })).toThrow(
      /segmentBytes is 3000000000; set it within 61\.\.2147483647/,
    );
    expect(() => parseTopicConfig({ "raftka.flush.before.ack": "yes" })).toThrow(InvalidConfigError);
    expect(() => resolveLogConfig({ retentionMs: -5 })).toThrow(/-1 or 0\.\./);
    expect(() => resolveLogConfig({ bogus: 1 } as never)).toThrow(/unknown log config field 'bogus'/);
    expect(resolveLogConfig({})).toEqual(DEFAULT_LOG_CONFIG);
  });
});

describe("LeaderEpochCache", () => {
  // Epoch 1 from 0, epoch 3 from 10, epoch 4 from 25; log end 40.
  const cache = () =>
    new LeaderEpochCache([
      { epoch: 1, startOffset: 0 },
      { epoch: 3, startOffset: 10 },
      { epoch: 4, startOffset: 25 },
    ]);

  it("answers OffsetForLeaderEpoch like Kafka", () => {
    const epochs = cache();
    expect(epochs.endOffsetForEpoch(4, 40)).toEqual({ epoch: 4, endOffset: 40 });
    expect(epochs.endOffsetForEpoch(3, 40)).toEqual({ epoch: 3, endOffset: 25 });
    // An epoch that never wrote anything: the largest smaller epoch and where it ended.
    expect(epochs.endOffsetForEpoch(2, 40)).toEqual({ epoch: 1, endOffset: 10 });
    expect(epochs.endOffsetForEpoch(0, 40)).toEqual({ epoch: 0, endOffset: 0 });
    expect(epochs.endOffsetForEpoch(7, 40)).toEqual({ epoch: -1, endOffset: -1 });
    expect(epochs.endOffsetForEpoch(-1, 40)).toEqual({ epoch: -1, endOffset: -1 });
  });

  it("gives the term at any offset and follows truncation at both ends", () => {
    const epochs = cache();
    expect([0, 9, 10, 24, 25, 39].map((offset) => epochs.epochForOffset(offset))).toEqual([1, 1, 3, 3, 4, 4]);
    epochs.truncateFromEnd(12);
    expect(epochs.snapshot()).toEqual([
      { epoch: 1, startOffset: 0 },
      { epoch: 3, startOffset: 10 },
    ]);
    epochs.truncateFromStart(11);
    expect(epochs.snapshot()).toEqual([{ epoch: 3, startOffset: 11 }]);
    expect(epochs.epochForOffset(5)).toBeUndefined();
    expect(() => epochs.assign(2, 12)).toThrow(/older than the log's latest epoch 3/);
    expect(epochs.assign(3, 12)).toBe(false);
    expect(epochs.assign(5, 12)).toBe(true);
  });
});

describe("retention decisions", () => {
  const segments = [
    { baseOffset: 0, nextOffset: 10, sizeInBytes: 100, retentionTimestamp: 1000 },
    { baseOffset: 10, nextOffset: 20, sizeInBytes: 100, retentionTimestamp: 2000 },
    { baseOffset: 20, nextOffset: 30, sizeInBytes: 100, retentionTimestamp: 3000 },
  ];

  it("deletes a prefix by age or size, never past the high watermark", () => {
    const byTime = selectSegmentsToDelete(
      segments,
      350,
      { retentionMs: 1500, retentionBytes: -1 },
      4000,
      100,
    );
    expect(byTime).toEqual([
      { baseOffset: 0, reason: "retention.ms" },
      { baseOffset: 10, reason: "retention.ms" },
    ]);
    const bySize = selectSegmentsToDelete(segments, 350, { retentionMs: -1, retentionBytes: 150 }, 4000, 100);
    expect(bySize).toEqual([
      { baseOffset: 0, reason: "retention.bytes" },
      { baseOffset: 10, reason: "retention.bytes" },
    ]);
    expect(selectSegmentsToDelete(segments, 350, { retentionMs: 0, retentionBytes: -1 }, 4000, 15)).toEqual([
      { baseOffset: 0, reason: "retention.ms" },
    ]);
    expect(selectSegmentsToDelete(segments, 350, { retentionMs: -1, retentionBytes: -1 }, 4000, 100)).toEqual(
      [],
    );
  });
});
