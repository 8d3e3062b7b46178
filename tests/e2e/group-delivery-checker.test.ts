import { describe, expect, it } from "vitest";
import { checkGroupDelivery, type MemberEvent } from "./harness/group-delivery.js";

const produced = [0, 1, 2, 3].map((offset) => ({ partition: 0, offset }));
const processed = (member: string, offset: number): MemberEvent => ({
  kind: "processed",
  member,
  partition: 0,
  offset,
});
const committed = (member: string, offset: number): MemberEvent => ({
  kind: "committed",
  member,
  partition: 0,
  offset,
});

// The checker decides whether the consumer-group suites pass, so it must be able to fail.
describe("consumer group delivery checker", () => {
  it("accepts every record processed once", () => {
    const report = checkGroupDelivery(
      produced,
      [0, 1, 2, 3].map((offset) => processed("a", offset)),
    );
    expect(report).toMatchObject({
      lost: [],
      unexplainedDuplicates: [],
      explainedDuplicates: 0,
      phantom: [],
    });
  });

  it("reports a record nobody processed as lost", () => {
    const report = checkGroupDelivery(
      produced,
      [0, 1, 3].map((offset) => processed("a", offset)),
    );
    expect(report.lost).toEqual([{ partition: 0, offset: 2 }]);
  });

  it("explains a duplicate by a killed member that had not committed past it", () => {
    const events: MemberEvent[] = [
      processed("a", 0),
      committed("a", 1),
      processed("a", 1),
      { kind: "killed", member: "a" },
      processed("b", 1),
      processed("b", 2),
      processed("b", 3),
    ];
    const report = checkGroupDelivery(produced, events);
    expect(report.unexplainedDuplicates).toEqual([]);
    expect(report.explainedDuplicates).toBe(1);
  });

  it("flags a duplicate of a record whose commit the killed member had acknowledged", () => {
    const events: MemberEvent[] = [
      processed("a", 0),
      committed("a", 1),
      { kind: "killed", member: "a" },
      processed("b", 0),
      processed("b", 1),
      processed("b", 2),
      processed("b", 3),
    ];
    expect(checkGroupDelivery(produced, events).unexplainedDuplicates).toEqual([
      { partition: 0, offset: 0, members: ["a", "b"] },
    ]);
  });

  it("flags any duplicate after a graceful hand-over", () => {
    const events: MemberEvent[] = [
      processed("a", 0),
      processed("a", 1),
      processed("b", 1),
      processed("b", 2),
      processed("b", 3),
    ];
    expect(checkGroupDelivery(produced, events).unexplainedDuplicates).toHaveLength(1);
  });

  it("explains a member redoing its own uncommitted record after a broker crash, but not a committed one", () => {
    const events: MemberEvent[] = [
      processed("a", 0),
      committed("a", 1),
      processed("a", 1),
      { kind: "killed", member: "*" },
      processed("a", 1),
      committed("a", 2),
      processed("a", 2),
      processed("a", 3),
    ];
    const report = checkGroupDelivery(produced, events);
    expect(report).toMatchObject({ unexplainedDuplicates: [], explainedDuplicates: 1 });
    const lostCommit = checkGroupDelivery(produced, [
      ...events.slice(0, 4),
      processed("a", 0),
      ...events.slice(4),
    ]);
    expect(lostCommit.unexplainedDuplicates).toEqual([{ partition: 0, offset: 0, members: ["a", "a"] }]);
  });

  it("flags records that were never produced", () => {
    const report = checkGroupDelivery(
      produced,
      [0, 1, 2, 3, 4].map((offset) => processed("a", offset)),
    );
    expect(report.phantom).toEqual([{ partition: 0, offset: 4 }]);
  });
});
