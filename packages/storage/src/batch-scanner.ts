import type { FileHandle } from "node:fs/promises";
import { readFully } from "./fs-util.js";
import { BATCH_HEADER_SIZE, type BatchHeader, checkBatch, readBatchHeader } from "./record-batch-header.js";

export type ScanDecision = "continue" | "stop" | { corrupt: string };

export interface ScanResult {
  /** Position after the last batch accepted (or where the scan stopped). */
  endPosition: number;
  /** Why the bytes at endPosition are not a valid batch; undefined if the scan reached `to` or stopped. */
  problem?: string;
}

const DEFAULT_CHUNK_SIZE = 64 * 1024;

/**
 * Walks the batches of a segment file between byte positions `from` and `to`, reading in chunks so
 * small batches cost no syscall each. Headers are checked structurally always and by CRC when asked.
 */
export async function scanBatches(
  handle: FileHandle,
  from: number,
  to: number,
  options: { verifyCrc: boolean; chunkSize?: number },
  onBatch: (position: number, header: BatchHeader) => ScanDecision,
): Promise<ScanResult> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  let chunk = Buffer.allocUnsafe(chunkSize);
  let chunkStart = 0;
  let chunkLength = 0;
  let position = from;

  const ensure = async (start: number, length: number): Promise<void> => {
    if (start >= chunkStart && start + length <= chunkStart + chunkLength) return;
    const wanted = Math.min(Math.max(length, chunkSize), to - start);
    if (chunk.length < wanted) chunk = Buffer.allocUnsafe(wanted);
    chunkStart = start;
    chunkLength = await readFully(handle, chunk, 0, wanted, start);
  };

  while (position < to) {
    const remaining = to - position;
    await ensure(position, Math.min(BATCH_HEADER_SIZE, remaining));
    const inChunk = chunkStart + chunkLength - position;
    if (remaining < BATCH_HEADER_SIZE || inChunk < BATCH_HEADER_SIZE) {
      return { endPosition: position, problem: `${remaining} trailing bytes, fewer than a batch header` };
    }
    const structural = checkBatch(chunk, position - chunkStart, remaining, false);
    if (structural !== undefined) return { endPosition: position, problem: structural };
    const size = chunk.readInt32BE(position - chunkStart + 8) + 12;
    if (options.verifyCrc) {
      await ensure(position, size);
      const crcProblem = checkBatch(chunk, position - chunkStart, chunkStart + chunkLength - position, true);
      if (crcProblem !== undefined) return { endPosition: position, problem: crcProblem };
    }
    let header: BatchHeader;
    try {
      header = readBatchHeader(chunk, position - chunkStart);
    } catch (error) {
      return { endPosition: position, problem: (error as Error).message };
    }
    const decision = onBatch(position, header);
    if (decision === "stop") return { endPosition: position };
    if (decision !== "continue") return { endPosition: position, problem: decision.corrupt };
    position += size;
  }
  return { endPosition: position };
}
