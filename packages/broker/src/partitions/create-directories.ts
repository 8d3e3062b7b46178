import { mkdir, stat } from "node:fs/promises";
import { dirname } from "node:path";

/** Creates one directory, failing if its parent is missing (`mkdir` without `-p`). */
export type MakeDirectory = (path: string) => Promise<unknown>;

const makeDirectory: MakeDirectory = (path) => mkdir(path);

/**
 * `mkdir -p` that always ends. Node's `mkdir(path, { recursive: true })` never returns where a
 * directory's mkdir says ENOENT although its parent exists (under /proc, a virtual file system that allows
 * no new directories): it creates the parent (EEXIST), retries the child (ENOENT), and so on, using a CPU
 * forever. It also reports the child's ENOENT where the parent's mkdir said why (EROFS, EACCES); here
 * the parent's error is thrown as it is.
 */
export async function createDirectories(
  directory: string,
  make: MakeDirectory = makeDirectory,
): Promise<void> {
  const missingParent = await attempt(directory, make);
  if (!missingParent) return;
  const parent = dirname(directory);
  if (parent === directory) throw missingParent;
  await createDirectories(parent, make);
  const stillMissing = await attempt(directory, make);
  if (stillMissing) throw new DirectoryNotCreatableError(directory, parent, stillMissing);
}

/** mkdir said ENOENT for a directory whose parent exists: that file system allows no new directories. */
export class DirectoryNotCreatableError extends Error {
  override readonly name = "DirectoryNotCreatableError";
  constructor(
    readonly directory: string,
    readonly parent: string,
    cause: Error,
  ) {
    super(
      `cannot create directory ${directory}: mkdir says ENOENT although its parent ${parent} exists, as on a ` +
        "virtual file system (/proc, /sys) that allows no new directories; use a directory on a disk",
      { cause },
    );
  }
}

/** Makes `directory`; returns the ENOENT error when its parent is missing, throws any other failure. */
async function attempt(directory: string, make: MakeDirectory): Promise<NodeJS.ErrnoException | undefined> {
  try {
    await make(directory);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return error as NodeJS.ErrnoException;
    if (code === "EEXIST" && (await stat(directory)).isDirectory()) return undefined;
    throw error;
  }
}
