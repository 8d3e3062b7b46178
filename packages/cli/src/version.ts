import { readFileSync } from "node:fs";

/** The CLI's version, from its package.json (read once, at start). */
export const cliVersion: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;
