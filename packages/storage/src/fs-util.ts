import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * A new or renamed file is only durable once its directory entry is: fsync the directory too.
 */
export async function fsyncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `path` with `contents` so that after a crash the file holds either the old or the new
 * contents, never a mix: write a temporary sibling, fsync it, rename over, fsync the directory.
 */
export async function writeFileAtomically(path: string, contents: Buffer | string): Promise<void> {
  const temporary = `${path}.${randomBytes(4).toString("hex")}.tmp`;
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, "w");
    await handle.writeFile(contents);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temporary, path);
  } catch (error) {
    await handle?.close().catch(() => {});
    await unlink(temporary).catch(() => {});
    throw error;
  }
  await fsyncDirectory(dirname(path));
}

export function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

export async function unlinkIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

/** Reads exactly `length` bytes at `position` (positional reads may return short counts). */
export async function readFully(
  handle: FileHandle,
  buffer: Buffer,
  bufferOffset: number,
  length: number,
  position: number,
): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, bufferOffset + done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** Writes all of `buffers` at `position`, continuing after short writes. */
export async function writevFully(handle: FileHandle, buffers: Buffer[], position: number): Promise<number> {
  let total = 0;
  for (const buffer of buffers) total += buffer.length;
  let written = await handle.writev(buffers, position).then((result) => result.bytesWritten);
  while (written < total) {
    // Short write (rare on regular files): fall back to writing the remainder buffer by buffer.
    let skip = written;
    const rest: Buffer[] = [];
    for (const buffer of buffers) {
      if (skip >= buffer.length) {
        skip -= buffer.length;
        continue;
      }
      rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
      skip = 0;
    }
    const { bytesWritten } = await handle.write(rest[0]!, 0, rest[0]!.length, position + written);
    if (bytesWritten === 0) throw new Error(`write made no progress at position ${position + written}`);
    written += bytesWritten;
  }
  return total;
}
