import { readFile } from "node:fs/promises";
import { isNotFound, writeFileAtomically } from "./fs-util.js";

// Kafka's checkpoint text format: a version line, an entry count line, then one entry per line with
// space-separated integers. Small, human-readable and replaced atomically.
const CHECKPOINT_VERSION = 0;

export type CheckpointRead =
  | { status: "missing" }
  | { status: "corrupt"; reason: string }
  | { status: "ok"; entries: number[][] };

export async function readCheckpoint(path: string, fieldsPerEntry: number): Promise<CheckpointRead> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (isNotFound(error)) return { status: "missing" };
    throw error;
  }
  const lines = text.split("\n").filter((line) => line.length > 0);
  if (lines.length < 2) return { status: "corrupt", reason: "fewer than two header lines" };
  if (lines[0] !== String(CHECKPOINT_VERSION)) {
    return { status: "corrupt", reason: `unknown version line '${lines[0]}'` };
  }
  const count = Number(lines[1]);
  if (!Number.isInteger(count) || count < 0 || count !== lines.length - 2) {
    return {
      status: "corrupt",
      reason: `entry count '${lines[1]}' does not match ${lines.length - 2} lines`,
    };
  }
  const entries: number[][] = [];
  for (const line of lines.slice(2)) {
    const fields = line.split(" ").map(Number);
    if (fields.length !== fieldsPerEntry || fields.some((field) => !Number.isSafeInteger(field))) {
      return { status: "corrupt", reason: `malformed entry '${line}'` };
    }
    entries.push(fields);
  }
  return { status: "ok", entries };
}

export async function writeCheckpoint(path: string, entries: readonly (readonly number[])[]): Promise<void> {
  const body = [
    String(CHECKPOINT_VERSION),
    String(entries.length),
    ...entries.map((entry) => entry.join(" ")),
  ];
  await writeFileAtomically(path, `${body.join("\n")}\n`);
}

/**
 * Writes the latest value of a checkpoint in the background, coalescing: while one write runs, later
 * requests collapse into a single follow-up write of whatever is current then.
 */
export class CoalescingCheckpointWriter {
  private running: Promise<void> | undefined;
  private requested = false;
  private lastError: unknown;

  constructor(
    private readonly path: string,
    private readonly snapshot: () => readonly (readonly number[])[],
    /** Wraps each write, e.g. to hold a slot of a FileHandleCache while it has a file open. */
    private readonly around: (write: () => Promise<void>) => Promise<void> = (write) => write(),
  ) {}

  /** Schedules a write of the current state; the returned promise settles once it is durable. */
  request(): Promise<void> {
    this.requested = true;
    if (!this.running) this.running = this.loop();
    return this.running;
  }

  /** Resolves once everything requested so far is durable (rejects if the last write failed). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
    if (this.lastError !== undefined) throw this.lastError;
  }

  private async loop(): Promise<void> {
    try {
      while (this.requested) {
        this.requested = false;
        try {
          const entries = this.snapshot();
          await this.around(() => writeCheckpoint(this.path, entries));
          this.lastError = undefined;
        } catch (error) {
          this.lastError = error;
          throw error;
        }
      }
    } finally {
      this.running = undefined;
    }
  }
}
