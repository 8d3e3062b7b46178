import { describe, expect, it } from "vitest";
import {
  checkRegisterHistory,
  type RegisterOperation,
  Simulation,
  type UnsafeTestOnlyBugs,
} from "../src/index.js";

/** `pnpm raft:sim` runs the same simulator from the command line, with more seeds and replayable traces. */
const SEEDS = Number(process.env.RAFT_SIM_SEEDS ?? 300);

function firstFailingSeed(
  bugs: UnsafeTestOnlyBugs,
  groups: number,
  maxSeeds: number,
): { seed: number; failure: string } | undefined {
  for (let seed = 1; seed <= maxSeeds; seed++) {
    const result = new Simulation({ seed, nodes: 3, groups, ticks: 2000, bugs }).run();
    if (!result.ok) return { seed, failure: result.failure! };
  }
  return undefined;
}

describe("deterministic simulator", () => {
  it(`${SEEDS} seeds of 3 nodes x 3 groups x 2000 ticks keep every safety, linearizability and liveness check`, () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const result = new Simulation({ seed, nodes: 3, groups: 3, ticks: 2000 }).run();
      if (!result.ok) {
        failures.push(
          `seed ${seed}: ${result.failure}\n${result.traceTail.slice(-40).join("\n")}\nreplay: pnpm raft:sim --seeds 1 --from ${seed} --trace`,
        );
      }
    }
    expect(failures).toEqual([]);
  }, 600_000);

  it("5 nodes with membership changes and transfers keep the checks too", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const result = new Simulation({ seed, nodes: 5, groups: 2, ticks: 1500 }).run();
      expect(
        result.failure,
        `seed ${seed} (replay: pnpm raft:sim --seeds 1 --from ${seed} --nodes 5 --groups 2 --ticks 1500 --trace)`,
      ).toBeUndefined();
    }
  }, 120_000);

  it("is deterministic: the same seed gives the same run", () => {
    const first = new Simulation({ seed: 42, nodes: 3, groups: 2, ticks: 800 }).run();
    const second = new Simulation({ seed: 42, nodes: 3, groups: 2, ticks: 800 }).run();
    expect(second.stats).toEqual(first.stats);
    expect(first.stats.writesAcknowledged).toBeGreaterThan(0);
    expect(first.stats.readsCompleted).toBeGreaterThan(0);
    expect(first.stats.crashes).toBeGreaterThan(0);
    // Fsyncs overlap and end in any order, as the host's rounds may: the checks cover that too.
    expect(first.stats.fsyncsOutOfOrder).toBeGreaterThan(0);
  });

  it("catches acknowledging appends before they are durable", () => {
    const caught = firstFailingSeed({ acknowledgeBeforePersist: true }, 3, 30);
    expect(caught, "no seed caught the bug").toBeDefined();
  });

  it("catches committing an earlier term's entry by counting replicas (Figure 8)", () => {
    const caught = firstFailingSeed({ commitPreviousTermEntries: true }, 10, 150);
    expect(caught, "no seed caught the bug").toBeDefined();
    expect(caught!.failure).toMatch(/leader completeness|state machine safety|log matching|invariant/);
  }, 300_000);

  it("catches serving ReadIndex without confirming leadership (stale reads)", () => {
    const caught = firstFailingSeed({ readsWithoutQuorum: true }, 10, 150);
    expect(caught, "no seed caught the bug").toBeDefined();
    expect(caught!.failure).toMatch(/linearizability/);
  }, 300_000);

  it("rejects impossible options with the allowed values", () => {
    expect(() => new Simulation({ seed: 1, nodes: 4, groups: 1, ticks: 1000 })).toThrow(
      /--nodes must be 3 or 5/,
    );
    expect(() => new Simulation({ seed: 1, nodes: 3, groups: 1, ticks: 100 })).toThrow(
      /--ticks must be an integer of at least 600/,
    );
  });
});

describe("linearizability checker", () => {
  const op = (
    kind: "write" | "read",
    value: string | null,
    invokedAt: number,
    respondedAt: number,
  ): RegisterOperation => ({
    kind,
    key: "k",
    value,
    invokedAt,
    respondedAt,
    description: `${kind} ${value} [${invokedAt}, ${respondedAt}]`,
  });
  const positions = new Map([
    ["a", 10],
    ["b", 20],
  ]);
  const positionOf = (value: string) => positions.get(value);

  it("accepts a history where reads see the latest completed write", () => {
    const history = [
      op("write", "a", 0, 5),
      op("read", "a", 6, 7),
      op("write", "b", 8, 12),
      op("read", "b", 10, 11),
      op("read", null, 0, 1),
    ];
    expect(checkRegisterHistory(history, positionOf)).toBeUndefined();
  });

  it("accepts concurrent reads on either side of a write", () => {
    const history = [
      op("write", "a", 0, 5),
      op("write", "b", 6, 20),
      op("read", "a", 7, 9),
      op("read", "b", 8, 10),
    ];
    expect(checkRegisterHistory(history, positionOf)).toBeUndefined();
  });

  it("rejects a stale read", () => {
    const history = [op("write", "a", 0, 5), op("write", "b", 6, 9), op("read", "a", 10, 11)];
    expect(checkRegisterHistory(history, positionOf)).toMatch(/stale value/);
  });

  it("rejects reads going back in time", () => {
    const history = [
      op("write", "a", 0, 5),
      op("write", "b", 6, 30),
      op("read", "b", 7, 8),
      op("read", "a", 9, 10),
    ];
    expect(checkRegisterHistory(history, positionOf)).toMatch(/older than/);
  });

  it("rejects a value that was never committed, or seen before it was written", () => {
    expect(checkRegisterHistory([op("write", "x", 0, 1), op("read", "x", 2, 3)], positionOf)).toMatch(
      /never committed/,
    );
    expect(checkRegisterHistory([op("read", "a", 0, 1), op("write", "a", 2, 3)], positionOf)).toMatch(
      /before/,
    );
  });
});
