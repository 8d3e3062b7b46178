import { describe, expect, it } from "vitest";
import { checkAcknowledgedRecords } from "./harness/ack-checker.js";

describe("the durability checker itself", () => {
  const acked = [
    { partition: 0, payload: "a", offset: 0n },
    { partition: 0, payload: "b", offset: 1n },
  ];

  it("accepts a log holding every acknowledged record once, plus an in-doubt one", () => {
    const read = [
      { partition: 0, offset: 0n, payload: "a" },
      { partition: 0, offset: 1n, payload: "b" },
      { partition: 0, offset: 2n, payload: "c" },
    ];
    expect(checkAcknowledgedRecords(acked, read, new Set(["c"]))).toEqual([]);
  });

  it("reports lost, duplicated, moved and never-sent records", () => {
    const read = [
      { partition: 0, offset: 0n, payload: "a" },
      { partition: 0, offset: 1n, payload: "a" },
      { partition: 0, offset: 2n, payload: "zombie" },
    ];
    const problems = checkAcknowledgedRecords(acked, read);
    expect(problems).toEqual([
      "a was read 2 times (offsets 0, 1)",
      "b was acknowledged at 0/1 but is missing",
      "zombie was read but never sent (or sent and refused)",
    ]);
    expect(
      checkAcknowledgedRecords(acked, [
        { partition: 0, offset: 5n, payload: "a" },
        { partition: 0, offset: 1n, payload: "b" },
      ]),
    ).toContain("a was acknowledged at 0/0 but read at 0/5");
  });
});
