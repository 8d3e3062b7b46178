import { createRequire } from "node:module";

/**
 * One of this repository's native addons (built by `pnpm build`, scripts/build-native.mjs), or why it cannot
 * be used: `path` is resolved from the module at `moduleUrl`, `shownAs` names the file for the operator.
 */
export function loadNativeAddon<Binding>(
  moduleUrl: string,
  path: string,
  shownAs: string,
): { binding?: Binding; missing?: string } {
  try {
    return { binding: createRequire(moduleUrl)(path) as Binding };
  } catch (error) {
    return {
      missing: `the native addon ${shownAs} is not built (${(error as Error).message.split("\n")[0]}); run \`pnpm build\`, which says why it could not build it`,
    };
  }
}
