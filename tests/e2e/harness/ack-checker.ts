/** One acknowledged write: the payload the producer sent and the offset the broker answered. */
export interface AckedRecord {
  readonly partition: number;
  readonly payload: string;
  readonly offset: bigint;
}

/** A record as read back from the log. */
export interface ReadRecord {
  readonly partition: number;
  readonly offset: bigint;
  readonly payload: string;
}

/**
 * The durability checker: every acknowledged record is read back exactly once, at the offset it was acked
 * with, and acknowledged records of a partition appear in the order they were acknowledged. Records whose
 * fate the producer never learned (in flight at a crash) may be present or not, but at most once. Returns
 * every violation found (empty: the log kept its promise).
 */
export function checkAcknowledgedRecords(
  acked: readonly AckedRecord[],
  read: readonly ReadRecord[],
  unknown: ReadonlySet<string> = new Set(),
): string[] {
  const problems: string[] = [];
  const seen = new Map<string, ReadRecord[]>();
  for (const record of read) seen.set(record.payload, [...(seen.get(record.payload) ?? []), record]);
  for (const [payload, copies] of seen) {
    if (copies.length > 1) {
      problems.push(
        `${payload} was read ${copies.length} times (offsets ${copies.map((copy) => copy.offset).join(", ")})`,
      );
    }
  }
  const ackedPayloads = new Set<string>();
  const lastAckedOffset = new Map<number, bigint>();
  for (const ack of acked) {
    ackedPayloads.add(ack.payload);
    const found = seen.get(ack.payload);
    if (!found) {
      problems.push(`${ack.payload} was acknowledged at ${ack.partition}/${ack.offset} but is missing`);
      continue;
    }
    if (found[0]!.partition !== ack.partition || found[0]!.offset !== ack.offset) {
      problems.push(
        `${ack.payload} was acknowledged at ${ack.partition}/${ack.offset} but read at ${found[0]!.partition}/${found[0]!.offset}`,
      );
    }
    const previous = lastAckedOffset.get(ack.partition);
    if (previous !== undefined && ack.offset <= previous) {
      problems.push(
        `${ack.payload} was acknowledged at offset ${ack.offset}, not after the previous ack at ${previous}`,
      );
    }
    lastAckedOffset.set(ack.partition, ack.offset);
  }
  for (const payload of seen.keys()) {
    if (!ackedPayloads.has(payload) && !unknown.has(payload)) {
      problems.push(`${payload} was read but never sent (or sent and refused)`);
    }
  }
  return problems;
}
