/**
 * Checks what consumer-group members did against what was produced: no acknowledged record may be
 * lost, and a record may be processed twice only when a member that was killed (SIGKILL, no chance to
 * commit) processed it without having had a commit covering it acknowledged. Graceful joins and leaves
 * with synchronous commits must therefore produce no duplicates at all.
 *
 * Events come from the member processes (one JSON line each, see fixtures/kafkajs-group-member.mjs), in
 * the order the test process read them.
 */

export type MemberEvent =
  | {
      readonly kind: "processed";
      readonly member: string;
      readonly partition: number;
      readonly offset: number;
    }
  /** The member's commit of `offset` (the next offset to read) was acknowledged by the broker. */
  | {
      readonly kind: "committed";
      readonly member: string;
      readonly partition: number;
      readonly offset: number;
    }
  /**
   * A crash: the member was SIGKILLed, or (member "*") the broker was, recorded once it is back. Work a
   * crashed member processed before this point without an acknowledged commit may be done again.
   */
  | { readonly kind: "killed"; readonly member: string };

export interface ProducedRecord {
  readonly partition: number;
  readonly offset: number;
}

export interface DeliveryReport {
  /** Produced (acknowledged) records nobody processed. */
  readonly lost: ProducedRecord[];
  /** Repeated processing that no crash of the earlier processor explains. */
  readonly unexplainedDuplicates: { partition: number; offset: number; members: string[] }[];
  /** Repeated processing explained by a crash before a commit covering the record was acknowledged. */
  readonly explainedDuplicates: number;
  /** Records processed that were never produced (would mean the broker invented data). */
  readonly phantom: ProducedRecord[];
  readonly processedRecords: number;
}

export function checkGroupDelivery(
  produced: readonly ProducedRecord[],
  events: readonly MemberEvent[],
): DeliveryReport {
  const key = (partition: number, offset: number) => `${partition}:${offset}`;
  const processings = new Map<
    string,
    { partition: number; offset: number; by: { member: string; index: number }[] }
  >();
  const crashes: { member: string; index: number }[] = [];
  events.forEach((event, index) => {
    if (event.kind === "killed") crashes.push({ member: event.member, index });
    if (event.kind !== "processed") return;
    const recordKey = key(event.partition, event.offset);
    let entry = processings.get(recordKey);
    if (entry === undefined) {
      entry = { partition: event.partition, offset: event.offset, by: [] };
      processings.set(recordKey, entry);
    }
    entry.by.push({ member: event.member, index });
  });
  /** Highest commit `member` had acknowledged for `partition` before event `before`. */
  const committedBefore = (member: string, partition: number, before: number): number => {
    let highest = -1;
    for (let index = 0; index < before; index++) {
      const event = events[index]!;
      if (event.kind === "committed" && event.member === member && event.partition === partition) {
        highest = Math.max(highest, event.offset);
      }
    }
    return highest;
  };

  const producedKeys = new Set(produced.map((record) => key(record.partition, record.offset)));
  const lost = produced.filter((record) => !processings.has(key(record.partition, record.offset)));
  const phantom: ProducedRecord[] = [];
  const unexplainedDuplicates: DeliveryReport["unexplainedDuplicates"] = [];
  let explainedDuplicates = 0;
  let processedRecords = 0;
  for (const [recordKey, entry] of processings) {
    processedRecords++;
    if (!producedKeys.has(recordKey)) phantom.push({ partition: entry.partition, offset: entry.offset });
    // Each processing but the last must be undone by a crash of its member that came before the next
    // processing, with no commit covering the record acknowledged before that crash.
    let explained = 0;
    for (let position = 0; position + 1 < entry.by.length; position++) {
      const earlier = entry.by[position]!;
      const later = entry.by[position + 1]!;
      const undone = crashes.some(
        (crash) =>
          (crash.member === earlier.member || crash.member === "*") &&
          crash.index > earlier.index &&
          crash.index < later.index &&
          committedBefore(earlier.member, entry.partition, crash.index) <= entry.offset,
      );
      if (undone) explained++;
    }
    if (explained === entry.by.length - 1) explainedDuplicates += explained;
    else
      unexplainedDuplicates.push({
        partition: entry.partition,
        offset: entry.offset,
        members: entry.by.map((by) => by.member),
      });
  }
  return { lost, unexplainedDuplicates, explainedDuplicates, phantom, processedRecords };
}

/** Whether, for every partition, some member's commit up to the end of what was produced was acknowledged. */
export function everythingCommitted(
  produced: readonly ProducedRecord[],
  events: readonly MemberEvent[],
): boolean {
  const ends = new Map<number, number>();
  for (const record of produced)
    ends.set(record.partition, Math.max(ends.get(record.partition) ?? 0, record.offset + 1));
  return [...ends].every(([partition, end]) =>
    events.some(
      (event) => event.kind === "committed" && event.partition === partition && event.offset >= end,
    ),
  );
}
