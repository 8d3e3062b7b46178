// Compiles the native addons (part of `pnpm build`): packages/crc32c's CRC-32C, packages/storage's
// preallocation and direct reads, and packages/broker's heap trimming, read-ahead memory and helper-thread
// scheduling. Where one cannot be built, its package falls back (CRC-32C to @node-rs/crc32, about 4x slower;
// segment files to ext4's delayed allocation, about a quarter more kernel CPU per byte written; reads of data
// not in the page cache through it, several times the kernel CPU; freed heap memory stays resident; read-ahead
// memory kept until garbage collected; helper threads on the default policy): this prints why and what to
// install, and the broker warns at start.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..");
const addons = [
  {
    name: "crc32c",
    source: "packages/crc32c/native/crc32c.c",
    output: "packages/crc32c/build/crc32c.node",
    builds: process.arch === "x64",
    fallback: "CRC-32C will use @node-rs/crc32 (2.5-4x slower)",
  },
  {
    name: "preallocate",
    source: "packages/storage/native/preallocate.c",
    output: "packages/storage/build/preallocate.node",
    builds: process.platform === "linux",
    fallback:
      "segment files will not reserve blocks ahead of appends (about a quarter more kernel CPU per byte)",
  },
  {
    name: "direct-reads",
    source: "packages/storage/native/direct-reads.c",
    output: "packages/storage/build/direct-reads.node",
    builds: process.platform === "linux",
    fallback:
      "reads of data not in the page cache will go through it (several times the kernel CPU per byte)",
  },
  {
    name: "heap-trim",
    source: "packages/broker/native/heap-trim.c",
    output: "packages/broker/build/heap-trim.node",
    // malloc_trim and mallinfo2 are glibc's (2.33 and later).
    builds:
      process.platform === "linux" && process.report.getReport().header.glibcVersionRuntime !== undefined,
    fallback: "heap memory the broker frees will stay resident (its RSS keeps its peak after bursts)",
  },
  {
    name: "mapped-memory",
    source: "packages/broker/native/mapped-memory.c",
    output: "packages/broker/build/mapped-memory.node",
    builds: process.platform === "linux",
    fallback:
      "reads ahead of a consumer's next Fetch keep their memory (up to 65 MiB) after a catch-up until V8 collects it",
  },
  {
    name: "helper-threads",
    source: "packages/broker/native/helper-threads.c",
    output: "packages/broker/build/helper-threads.node",
    builds: process.platform === "linux",
    fallback:
      "helper threads keep the default scheduling policy (on busy CPUs a woken pool thread can preempt the event loop)",
  },
];

// Node's own headers: beside the binary in official builds and Debian's, or where node-gyp keeps them.
const headerDirectories = [
  join(dirname(dirname(process.execPath)), "include", "node"),
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, "include", "node"),
  join(homedir(), ".cache", "node-gyp", process.versions.node, "include", "node"),
].filter(Boolean);
const headers = headerDirectories.find((directory) => existsSync(join(directory, "node_api.h")));
const compiler = process.env.CC ?? "cc";
const thisScript = fileURLToPath(import.meta.url);
// raftka-napi.h: what the addons share (a promise around pool work, fs-style errors).
const sharedHeaders = join(repository, "scripts", "native");
const sharedHeader = join(sharedHeaders, "raftka-napi.h");

for (const addon of addons) {
  const source = join(repository, addon.source);
  const output = join(repository, addon.output);
  const fallBack = (reason, next) =>
    console.warn(`[build-native] ${addon.name}: ${reason}; ${addon.fallback}. ${next}`);
  if (!addon.builds) {
    fallBack(`no native build for ${process.platform}-${process.arch}`, "Nothing to do: it works without.");
    continue;
  }
  const upToDate =
    existsSync(output) &&
    statSync(output).mtimeMs > statSync(source).mtimeMs &&
    statSync(output).mtimeMs > statSync(thisScript).mtimeMs &&
    statSync(output).mtimeMs > statSync(sharedHeader).mtimeMs;
  if (upToDate) continue;
  if (headers === undefined) {
    fallBack(
      `Node's headers (node_api.h) are not in ${headerDirectories.join(", ")}`,
      "To build it: `npx node-gyp install`, then `pnpm build`.",
    );
    continue;
  }
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
        "-I",
        sharedHeaders,
        "-o",
        output,
        source,
      ],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
    console.log(`[build-native] built ${addon.output}`);
  } catch (error) {
    fallBack(
      `${compiler} could not build ${addon.source} (${error.message.split("\n")[0]})`,
      "To build it: install a C compiler (Debian: `apt-get install gcc`), then `pnpm build`.",
    );
  }
}
