import { describe, expect, it } from "vitest";
import { loadNativeAddon } from "../src/index.js";

describe("loadNativeAddon", () => {
  it("loads a built addon", () => {
    const loaded = loadNativeAddon<{ read: unknown }>(
      import.meta.url,
      "../build/direct-reads.node",
      "packages/storage/build/direct-reads.node",
    );
    expect(loaded.missing).toBeUndefined();
    expect(typeof loaded.binding?.read).toBe("function");
  });

  it("says which addon is missing and how to build it", () => {
    const loaded = loadNativeAddon(
      import.meta.url,
      "../build/no-such-addon.node",
      "packages/storage/build/no-such-addon.node",
    );
    expect(loaded.binding).toBeUndefined();
    expect(loaded.missing).toMatch(
      /^the native addon packages\/storage\/build\/no-such-addon\.node is not built \(Cannot find module .*\); run `pnpm build`, which says why it could not build it$/,
    );
  });
});
