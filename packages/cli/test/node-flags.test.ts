import { describe, expect, it } from "vitest";
import { BROKER_NODE_FLAGS, missingBrokerNodeFlags } from "../src/index.js";

describe("the broker's Node flags", () => {
  it("reports the flags a process was started without", () => {
    expect(BROKER_NODE_FLAGS).toContain("--initial-old-space-size=128");
    expect(missingBrokerNodeFlags([])).toEqual([...BROKER_NODE_FLAGS]);
    expect(missingBrokerNodeFlags(["--inspect", ...BROKER_NODE_FLAGS])).toEqual([]);
    // Another value is not the flag the broker was measured with.
    expect(missingBrokerNodeFlags(["--initial-old-space-size=16"])).toEqual([...BROKER_NODE_FLAGS]);
  });
});
