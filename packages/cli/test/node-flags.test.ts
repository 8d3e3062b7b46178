import { describe, expect, it } from "vitest";
import {
  BROKER_GLIBC_TUNABLES,
  BROKER_NODE_FLAGS,
  BROKER_THREAD_POOL_SIZE,
  brokerEnvironment,
  missingBrokerGlibcTunables,
  missingBrokerNodeFlags,
  threadPoolSizeAdvice,
} from "../src/index.js";

describe("the broker's Node flags", () => {
  it("reports the flags a process was started without", () => {
    expect(BROKER_NODE_FLAGS).toContain("--initial-old-space-size=128");
    expect(missingBrokerNodeFlags([])).toEqual([...BROKER_NODE_FLAGS]);
    expect(missingBrokerNodeFlags(["--inspect", ...BROKER_NODE_FLAGS])).toEqual([]);
    // Another value is not the flag the broker was measured with.
    expect(missingBrokerNodeFlags(["--initial-old-space-size=16"])).toEqual([...BROKER_NODE_FLAGS]);
  });
});

describe("the broker's glibc tunables", () => {
  it("reports the tunables an environment lacks", () => {
    expect(missingBrokerGlibcTunables({})).toEqual([...BROKER_GLIBC_TUNABLES]);
    expect(missingBrokerGlibcTunables({ GLIBC_TUNABLES: BROKER_GLIBC_TUNABLES.join(":") })).toEqual([]);
    expect(
      missingBrokerGlibcTunables({
        GLIBC_TUNABLES: "glibc.malloc.mmap_threshold=8388608:glibc.malloc.arena_max=2",
      }),
    ).toEqual(["glibc.malloc.trim_threshold=67108864"]);
  });

  it("adds them in front of the caller's, so that the caller's settings win", () => {
    expect(brokerEnvironment({ PATH: "/bin" })).toEqual({
      PATH: "/bin",
      GLIBC_TUNABLES: BROKER_GLIBC_TUNABLES.join(":"),
      UV_THREADPOOL_SIZE: "16",
    });
    const environment = brokerEnvironment({ GLIBC_TUNABLES: "glibc.malloc.trim_threshold=0" });
    expect(environment.GLIBC_TUNABLES).toBe(
      `${BROKER_GLIBC_TUNABLES.join(":")}:glibc.malloc.trim_threshold=0`,
    );
    expect(missingBrokerGlibcTunables(environment)).toEqual([]);
  });
});

describe("the broker's libuv pool size", () => {
  it("is set unless the caller chose one, and advice is given only when it is missing", () => {
    expect(BROKER_THREAD_POOL_SIZE).toBe(16);
    expect(brokerEnvironment({}).UV_THREADPOOL_SIZE).toBe("16");
    expect(brokerEnvironment({ UV_THREADPOOL_SIZE: "" }).UV_THREADPOOL_SIZE).toBe("16");
    expect(brokerEnvironment({ UV_THREADPOOL_SIZE: "6" }).UV_THREADPOOL_SIZE).toBe("6");
    expect(threadPoolSizeAdvice(brokerEnvironment({}))).toBeUndefined();
    expect(threadPoolSizeAdvice({ UV_THREADPOOL_SIZE: "6" })).toBeUndefined();
    const advice = threadPoolSizeAdvice({});
    expect(advice).toContain("UV_THREADPOOL_SIZE=16");
    expect(advice).toContain("scripts/start.sh");
  });
});
