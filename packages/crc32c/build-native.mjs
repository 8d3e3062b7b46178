// Compiles native/crc32c.c into build/crc32c.node (part of `pnpm build`). Where it cannot, CRC-32C
// runs on @node-rs/crc32 instead, about four times slower: this prints why and what to install.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "native", "crc32c.c");
const output = join(here, "build", "crc32c.node");

function fallBack(reason, next) {
  console.warn(`[crc32c] ${reason}; CRC-32C will use @node-rs/crc32 (about 4x slower). ${next}`);
  process.exit(0);
}

if (process.arch !== "x64") {
  fallBack(`no native build for ${process.arch}`, "Nothing to do: it works, only slower.");
}

const upToDate =
  existsSync(output) &&
  statSync(output).mtimeMs > statSync(source).mtimeMs &&
  statSync(output).mtimeMs > statSync(fileURLToPath(import.meta.url)).mtimeMs;
if (upToDate) process.exit(0);

// Node's own headers: beside the binary in official builds and Debian's, or where node-gyp keeps them.
const headerDirectories = [
  join(dirname(dirname(process.execPath)), "include", "node"),
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, "include", "node"),
  join(homedir(), ".cache", "node-gyp", process.versions.node, "include", "node"),
].filter(Boolean);
const headers = headerDirectories.find((directory) => existsSync(join(directory, "node_api.h")));
if (headers === undefined) {
  fallBack(
    `Node's headers (node_api.h) are not in ${headerDirectories.join(", ")}`,
    "To build it: `npx node-gyp install`, then `pnpm build`.",
  );
}

const compiler = process.env.CC ?? "cc";
mkdirSync(dirname(output), { recursive: true });
try {
  execFileSync(
    compiler,
    [
      "-O2",
      "-std=c11",
      "-fPIC",
      "-shared",
      "-fvisibility=hidden",
      "-Wall",
      "-Werror",
      "-I",
      headers,
      "-o",
      output,
      source,
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
} catch (error) {
  fallBack(
    `${compiler} could not build ${source} (${error.message.split("\n")[0]})`,
    "To build it: install a C compiler (Debian: `apt-get install gcc`), then `pnpm build`.",
  );
}
console.log(`[crc32c] built ${output}`);
