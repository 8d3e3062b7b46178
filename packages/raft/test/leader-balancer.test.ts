import { describe, expect, it } from "vitest";
import { type BalancerGroup, NO_NODE, planLeaderTransfers } from "../src/index.js";

const groups = (count: number, leader: (group: number) => number, voters = [1, 2, 3]): BalancerGroup[] =>
  Array.from({ length: count }, (_, group) => ({ group, leader: leader(group), liveVoters: voters }));

const targets = (plan: ReturnType<typeof planLeaderTransfers>) => {
  const counts = new Map<number, number>();
  for (const { target } of plan.transfers) counts.set(target, (counts.get(target) ?? 0) + 1);
  return Object.fromEntries(counts);
};

describe("planLeaderTransfers", () => {
  it("moves a node that leads everything down to its share, splitting between the others", () => {
    const plan = planLeaderTransfers({
      self: 1,
      groups: groups(30, () => 1),
      maxTransfers: 100,
      canTakeOver: () => true,
    });
    expect(plan.leaders).toEqual(
      new Map([
        [1, 30],
        [2, 0],
        [3, 0],
      ]),
    );
    expect(targets(plan)).toEqual({ 2: 10, 3: 10 });
  });

  it("starts no more transfers than allowed per pass", () => {
    const plan = planLeaderTransfers({
      self: 1,
      groups: groups(30, () => 1),
      maxTransfers: 4,
      canTakeOver: () => true,
    });
    expect(plan.transfers).toHaveLength(4);
    expect(targets(plan)).toEqual({ 2: 2, 3: 2 });
    expect(plan.excessAfter).toBe(16);
  });

  it("leaves a spread within one of even alone", () => {
    const plan = planLeaderTransfers({
      self: 1,
      groups: groups(10, (group) => 1 + (group % 3)),
      maxTransfers: 100,
      canTakeOver: () => true,
    });
    expect(plan.leaders.get(1)).toBe(4);
    expect(plan.transfers).toEqual([]);
  });

  it("evens out a spread two apart even when nobody is above its share rounded up", () => {
    // 10,000 groups over 3 nodes ended once at 3334 / 3334 / 3332: every node within ceil(share).
    const view = groups(10_000, (group) => (group < 3334 ? 1 : group < 6668 ? 2 : 3));
    const plans = [1, 2, 3].map((self) =>
      planLeaderTransfers({ self, groups: view, maxTransfers: 100, canTakeOver: () => true }),
    );
    expect(plans.map((plan) => plan.transfers.length)).toEqual([1, 1, 0]);
    expect(plans[0]!.transfers[0]!.target).toBe(3);
    // Both act on the same view; the next pass sees 3333 / 3333 / 3334 and moves nothing.
    const after = groups(10_000, (group) => (group < 3333 ? 1 : group < 6666 ? 2 : 3));
    expect(
      planLeaderTransfers({ self: 3, groups: after, maxTransfers: 100, canTakeOver: () => true }).transfers,
    ).toEqual([]);
  });

  it("gives two overloaded nodes with the same stale view no more than the idle node's deficit together", () => {
    const view = groups(30, (group) => (group < 15 ? 1 : 2));
    const fromOne = planLeaderTransfers({
      self: 1,
      groups: view,
      maxTransfers: 100,
      canTakeOver: () => true,
    });
    const fromTwo = planLeaderTransfers({
      self: 2,
      groups: view,
      maxTransfers: 100,
      canTakeOver: () => true,
    });
    expect(fromOne.transfers.length + fromTwo.transfers.length).toBe(10);
    expect([...fromOne.transfers, ...fromTwo.transfers].every(({ target }) => target === 3)).toBe(true);
  });

  it("counts only live voters, skips groups nobody can take over yet, and balances groups on subsets", () => {
    // Node 3 is down: its groups' live voters are 1 and 2 only, and it gets nothing.
    const downThree = planLeaderTransfers({
      self: 1,
      groups: groups(20, () => 1, [1, 2]),
      maxTransfers: 100,
      canTakeOver: (group) => group % 2 === 0,
    });
    expect(targets(downThree)).toEqual({ 2: 10 });
    expect(downThree.transfers.every(({ group }) => group % 2 === 0)).toBe(true);
    expect(downThree.excessAfter).toBe(0);
    const nobodyReady = planLeaderTransfers({
      self: 1,
      groups: groups(20, () => 1, [1, 2]),
      maxTransfers: 100,
      canTakeOver: () => false,
    });
    expect(nobodyReady.transfers).toEqual([]);
    expect(nobodyReady.excessAfter).toBe(10);

    // Groups 0-9 on nodes 1,2; groups 10-19 on nodes 1,3; node 1 leads all: it keeps 10.
    const subsets: BalancerGroup[] = Array.from({ length: 20 }, (_, group) => ({
      group,
      leader: 1,
      liveVoters: group < 10 ? [1, 2] : [1, 3],
    }));
    const plan = planLeaderTransfers({
      self: 1,
      groups: subsets,
      maxTransfers: 100,
      canTakeOver: () => true,
    });
    expect(targets(plan)).toEqual({ 2: 5, 3: 5 });
    expect(plan.transfers.filter(({ target }) => target === 2).every(({ group }) => group < 10)).toBe(true);
  });

  it("ignores groups without a known leader", () => {
    const plan = planLeaderTransfers({
      self: 1,
      groups: groups(6, (group) => (group < 3 ? NO_NODE : 1)),
      maxTransfers: 100,
      canTakeOver: () => true,
    });
    expect(plan.leaders).toEqual(
      new Map([
        [1, 3],
        [2, 0],
        [3, 0],
      ]),
    );
    expect(plan.transfers).toHaveLength(1);
  });
});
