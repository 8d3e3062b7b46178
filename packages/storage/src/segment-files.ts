import { join } from "node:path";

// Kafka's file naming, so tools that understand Kafka log directories understand ours.
const OFFSET_DIGITS = 20;
export const LOG_SUFFIX = ".log";
export const INDEX_SUFFIX = ".index";
export const TIME_INDEX_SUFFIX = ".timeindex";
export const DELETED_SUFFIX = ".deleted";
export const TEMPORARY_SUFFIX = ".tmp";

export const CLEAN_SHUTDOWN_FILE = "clean-shutdown";
export const LEADER_EPOCH_CHECKPOINT_FILE = "leader-epoch-checkpoint";
export const LOG_START_OFFSET_CHECKPOINT_FILE = "log-start-offset-checkpoint";
export const RECOVERY_POINT_CHECKPOINT_FILE = "recovery-point-checkpoint";

const segmentFilePattern = /^(\d{20})\.(log|index|timeindex)$/;

export function segmentFileStem(baseOffset: number): string {
  return String(baseOffset).padStart(OFFSET_DIGITS, "0");
}

export interface SegmentPaths {
  log: string;
  index: string;
  timeIndex: string;
}

export function segmentPaths(directory: string, baseOffset: number): SegmentPaths {
  const stem = join(directory, segmentFileStem(baseOffset));
  return { log: stem + LOG_SUFFIX, index: stem + INDEX_SUFFIX, timeIndex: stem + TIME_INDEX_SUFFIX };
}

export function parseSegmentFileName(
  name: string,
): { baseOffset: number; kind: "log" | "index" | "timeindex" } | undefined {
  const match = segmentFilePattern.exec(name);
  if (!match) return undefined;
  const baseOffset = Number(match[1]);
  if (!Number.isSafeInteger(baseOffset)) return undefined;
  return { baseOffset, kind: match[2] as "log" | "index" | "timeindex" };
}
