// The built Raft and storage packages, with a clear message when `pnpm build` has not run.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

async function load(name) {
  const path = join(repository, "packages", name, "dist", "index.js");
  try {
    return await import(path);
  } catch (error) {
    console.error(`cannot load ${path} (${error.message}); run \`pnpm build\` first`);
    process.exit(1);
  }
}

export const raft = await load("raft");
export const storage = await load("storage");
