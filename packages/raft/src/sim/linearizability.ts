/**
 * Linearizability of single registers whose writes carry unique values and whose order is known: the
 * order Raft committed them in. With the write order fixed, a history is linearizable exactly when
 * every read can sit right after the write it observed, which reduces to five interval checks
 * (`checkRegisterHistory`). Sound and complete for this workload, and O(n log n).
 */

export interface RegisterOperation {
  readonly kind: "write" | "read";
  readonly key: string;
  /** Write: the value written. Read: the value observed (null = the register was never written). */
  readonly value: string | null;
  readonly invokedAt: number;
  /** Infinity when the client never got an answer (the write may or may not have happened). */
  readonly respondedAt: number;
  readonly description: string;
}

interface Placed {
  readonly operation: RegisterOperation;
  readonly position: number;
}

/**
 * `positionOf(value)` gives the log position where the write of `value` was committed, or undefined
 * if it never was. Returns a description of the first violation found, or undefined.
 */
export function checkRegisterHistory(
  operations: readonly RegisterOperation[],
  positionOf: (value: string) => number | undefined,
): string | undefined {
  const byKey = new Map<string, RegisterOperation[]>();
  for (const operation of operations) {
    const list = byKey.get(operation.key);
    if (list === undefined) byKey.set(operation.key, [operation]);
    else list.push(operation);
  }
  for (const [key, list] of byKey) {
    const problem = checkKey(key, list, positionOf);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function checkKey(
  key: string,
  operations: readonly RegisterOperation[],
  positionOf: (value: string) => number | undefined,
): string | undefined {
  const writes: Placed[] = [];
  const writeByValue = new Map<string, Placed>();
  const reads: Placed[] = [];
  for (const operation of operations) {
    if (operation.kind === "write") {
      const position = positionOf(operation.value!);
      if (position === undefined) continue;
      const placed = { operation, position };
      writes.push(placed);
      writeByValue.set(operation.value!, placed);
    }
  }
  for (const operation of operations) {
    if (operation.kind !== "read") continue;
    if (operation.value === null) {
      reads.push({ operation, position: -1 });
      continue;
    }
    const write = writeByValue.get(operation.value);
    if (write === undefined) {
      return `key ${key}: ${operation.description} observed "${operation.value}", which was never committed`;
    }
    if (operation.respondedAt < write.operation.invokedAt) {
      return `key ${key}: ${operation.description} observed "${operation.value}" before ${write.operation.description} was invoked`;
    }
    reads.push({ operation, position: write.position });
  }

  const writesByResponse = [...writes].sort((a, b) => a.operation.respondedAt - b.operation.respondedAt);
  const writePrefixMax = prefixMaxima(writesByResponse);
  const readsByResponse = [...reads].sort((a, b) => a.operation.respondedAt - b.operation.respondedAt);
  const readPrefixMax = prefixMaxima(readsByResponse);
  const writesByInvoke = [...writes].sort((a, b) => a.operation.invokedAt - b.operation.invokedAt);
  const writeSuffixMin = suffixMinima(writesByInvoke);

  for (const read of reads) {
    const before = lastRespondedBefore(writesByResponse, read.operation.invokedAt);
    if (before >= 0 && writePrefixMax[before]!.position > read.position) {
      const stale = writePrefixMax[before]!;
      return `key ${key}: ${read.operation.description} returned a stale value: ${stale.operation.description} (position ${stale.position}) completed before the read began, but the read saw position ${read.position}`;
    }
    const after = firstInvokedAfter(writesByInvoke, read.operation.respondedAt);
    if (after < writesByInvoke.length && writeSuffixMin[after]!.position <= read.position) {
      const future = writeSuffixMin[after]!;
      return `key ${key}: ${read.operation.description} saw position ${read.position}, but ${future.operation.description} (position ${future.position}) only began after the read completed`;
    }
    const earlierRead = lastRespondedBefore(readsByResponse, read.operation.invokedAt);
    if (earlierRead >= 0 && readPrefixMax[earlierRead]!.position > read.position) {
      const newer = readPrefixMax[earlierRead]!;
      return `key ${key}: ${read.operation.description} saw position ${read.position}, older than ${newer.operation.description} (position ${newer.position}) which completed before it began`;
    }
  }
  for (const write of writes) {
    const before = lastRespondedBefore(writesByResponse, write.operation.invokedAt);
    if (before >= 0 && writePrefixMax[before]!.position >= write.position) {
      const earlier = writePrefixMax[before]!;
      return `key ${key}: ${write.operation.description} committed at position ${write.position}, not after ${earlier.operation.description} (position ${earlier.position}) which completed before it began`;
    }
  }
  return undefined;
}

function prefixMaxima(sorted: readonly Placed[]): Placed[] {
  const maxima: Placed[] = [];
  let best: Placed | undefined;
  for (const item of sorted) {
    if (best === undefined || item.position > best.position) best = item;
    maxima.push(best);
  }
  return maxima;
}

function suffixMinima(sorted: readonly Placed[]): Placed[] {
  const minima: Placed[] = new Array(sorted.length);
  let best: Placed | undefined;
  for (let index = sorted.length - 1; index >= 0; index--) {
    const item = sorted[index]!;
    if (best === undefined || item.position < best.position) best = item;
    minima[index] = best;
  }
  return minima;
}

/** Index of the last operation (sorted by response) that responded strictly before `time`, or -1. */
function lastRespondedBefore(sorted: readonly Placed[], time: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (sorted[middle]!.operation.respondedAt < time) low = middle + 1;
    else high = middle;
  }
  return low - 1;
}

/** Index of the first operation (sorted by invocation) invoked strictly after `time`. */
function firstInvokedAfter(sorted: readonly Placed[], time: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (sorted[middle]!.operation.invokedAt > time) high = middle;
    else low = middle + 1;
  }
  return low;
}
