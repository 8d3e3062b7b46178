import { readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomically } from "@raftka/storage";
import { decodeProducerSnapshot, type ProducerSnapshot, ProducerSnapshotError } from "./snapshot-format.js";

/** Kafka's naming: `<20-digit offset>.snapshot` in the partition directory. */
const SNAPSHOT_FILE = /^(\d{20})\.snapshot$/;
const KEEP_SNAPSHOTS = 2;

export function snapshotFileName(offset: number): string {
  return `${String(offset).padStart(20, "0")}.snapshot`;
}

/** Offsets of the snapshot files in `directory`, ascending. */
export async function listSnapshots(directory: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const offsets: number[] = [];
  for (const name of names) {
    const match = SNAPSHOT_FILE.exec(name);
    if (match) offsets.push(Number(match[1]));
  }
  return offsets.sort((a, b) => a - b);
}

export interface LoadedSnapshot {
  readonly snapshot: ProducerSnapshot | undefined;
  /** Snapshot files that were unreadable or beyond the log end, and deleted. */
  readonly discarded: { offset: number; reason: string }[];
}

/**
 * The newest intact snapshot at or below `logEndOffset`. Newer files (left from before a truncation)
 * and unreadable ones are deleted, so the next start does not trip over them again.
 */
export async function loadLatestSnapshot(directory: string, logEndOffset: number): Promise<LoadedSnapshot> {
  const discarded: { offset: number; reason: string }[] = [];
  const offsets = await listSnapshots(directory);
  for (let index = offsets.length - 1; index >= 0; index--) {
    const offset = offsets[index]!;
    const path = join(directory, snapshotFileName(offset));
    if (offset > logEndOffset) {
      discarded.push({ offset, reason: `beyond the log end ${logEndOffset}` });
      await unlink(path).catch(() => {});
      continue;
    }
    try {
      const snapshot = decodeProducerSnapshot(await readFile(path));
      if (snapshot.offset !== offset) {
        throw new ProducerSnapshotError(
          `file name says offset ${offset} but the snapshot is at ${snapshot.offset}`,
        );
      }
      return { snapshot, discarded };
    } catch (error) {
      if (!(error instanceof ProducerSnapshotError)) throw error;
      discarded.push({ offset, reason: error.message });
      await unlink(path).catch(() => {});
    }
  }
  return { snapshot: undefined, discarded };
}

/** Writes the snapshot atomically (a crash leaves the old files or the new one) and keeps the newest two. */
export async function writeSnapshot(directory: string, offset: number, bytes: Buffer): Promise<void> {
  await writeFileAtomically(join(directory, snapshotFileName(offset)), bytes);
  const offsets = await listSnapshots(directory);
  for (const old of offsets.slice(0, Math.max(0, offsets.length - KEEP_SNAPSHOTS))) {
    await unlink(join(directory, snapshotFileName(old))).catch(() => {});
  }
}
