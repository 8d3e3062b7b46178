import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FlushScheduler, PartitionLog, preallocation } from "../src/index.js";
import { makeBatch, valuesOf, withRamfs } from "./helpers.js";

// Its own file: a refusal turns reservations off for the whole process.
describe("block reservation on a file system without fallocate", () => {
  it("turns itself off once, says why, and the appends lose nothing", async () => {
    await withRamfs(async (directory) => {
      const log = await PartitionLog.open(join(directory, "p-0"), { flushScheduler: new FlushScheduler() });
      try {
        const reasons: string[] = [];
        preallocation.onDisabled((reason) => reasons.push(reason));
        const batches = [0, 1, 2].map((index) =>
          makeBatch([{ value: `b${index}:`.padEnd(600_000, "y") }, { value: `b${index}-tail` }]),
        );
        for (const batch of batches) {
          await log.append(batch, { assignOffsets: true, leaderEpoch: 1 });
          // The reservation after each append runs in the background; let it finish.
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        expect(reasons).toHaveLength(1);
        expect(reasons[0]).toMatch(/refuses fallocate \(ENOTSUP\)/);
        expect(preallocation.unavailableReason).toBe(reasons[0]);
        const read = await log.read(0, 16 * 1024 * 1024);
        expect(valuesOf(read.records).map((value) => value.slice(0, 3))).toEqual([
          "b0:",
          "b0-",
          "b1:",
          "b1-",
          "b2:",
          "b2-",
        ]);
      } finally {
        await log.close();
      }
    });
  });
});
