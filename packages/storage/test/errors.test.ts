import { describe, expect, it } from "vitest";
import { describeCause } from "../src/errors.js";

describe("describeCause", () => {
  it("names a system error's code once, whether or not its message starts with it", () => {
    const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    expect(describeCause(enospc)).toBe("ENOSPC: no space left on device, write");
    const bare = Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
    expect(describeCause(bare)).toBe("ENOSPC: no space left on device");
    expect(describeCause(new Error("plain"))).toBe("plain");
  });
});
