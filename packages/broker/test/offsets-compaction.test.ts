import { describe, expect, it } from "vitest";
import { type CompactionCandidate, planCompaction, shouldCompact } from "../src/group/offsets-compaction.js";

const record = (
  key: string,
  value: string | null,
  timestamp: number,
): CompactionCandidate<string | null> => ({
  key,
  tombstone: value === null,
  timestamp,
  sizeBytes: 10,
  value,
});

describe("offsets log compaction plan", () => {
  it("keeps only the latest record of each key, in log order", () => {
    const plan = planCompaction(
      [
        record("a", "1", 0),
        record("b", "1", 1),
        record("a", "2", 2),
        record("c", "1", 3),
        record("b", "2", 4),
      ],
      10,
      1000,
    );
    expect(plan.kept.map((each) => `${each.key}=${each.value}`)).toEqual(["a=2", "c=1", "b=2"]);
    expect(plan.keptBytes).toBe(30);
    expect(plan.droppedRecords).toBe(2);
  });

  it("keeps tombstones until the delete horizon has passed, then drops them with what they deleted", () => {
    const records = [record("a", "1", 0), record("a", null, 100), record("b", "1", 100)];
    expect(planCompaction(records, 500, 1000).kept.map((each) => each.key)).toEqual(["a", "b"]);
    const later = planCompaction(records, 1100, 1000);
    expect(later.kept.map((each) => each.key)).toEqual(["b"]);
    expect(later.droppedTombstones).toBe(1);
  });

  it("compacts once dirty bytes reach the ratio, never below the minimum size", () => {
    const base = { minLogBytes: 1000, minDirtyRatio: 0.5 };
    expect(shouldCompact({ ...base, logBytes: 900, keptBytesAfterLastPass: 0 })).toBe(false);
    expect(shouldCompact({ ...base, logBytes: 1000, keptBytesAfterLastPass: 0 })).toBe(true);
    expect(shouldCompact({ ...base, logBytes: 2000, keptBytesAfterLastPass: 1200 })).toBe(false);
    expect(shouldCompact({ ...base, logBytes: 2400, keptBytesAfterLastPass: 1200 })).toBe(true);
  });
});
