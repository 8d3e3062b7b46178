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
  | { readonly kind: "killed"; readonly member: string };

export interface ProducedRecord {
  readonly partition: number;
  readonly offset: number;
}

export interface DeliveryReport {
  /** Produced (acknowledged) records nobody processed. */
  readonly lost: ProducedRecord[];
  /** Repeated processing that no killed member's uncommitted work explains. */
  readonly unexplainedDuplicates: { partition: number; offset: number; members: string[] }[];
  /** Repeated processing explained by a killed member that had not committed past the record. */
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
  const killed = new Set<string>();
  /** Highest acknowledged commit per member and partition, over the whole run. */
  const commits = new Map<string, number>();
  const processings = new Map<string, { partition: number; offset: number; members: string[] }>();
  for (const event of events) {
    if (event.kind === "killed") {
      killed.add(event.member);
    } else if (event.kind === "committed") {
      const commitKey = `${event.member}\u0000${event.partition}`;
      commits.set(commitKey, Math.max(commits.get(commitKey) ?? -1, event.offset));
    } else {
      const recordKey = key(event.partition, event.offset);
      let entry = processings.get(recordKey);
      if (entry === undefined) {
        entry = { partition: event.partition, offset: event.offset, members: [] };
        processings.set(recordKey, entry);
      }
      entry.members.push(event.member);
    }
  }

  const producedKeys = new Set(produced.map((record) => key(record.partition, record.offset)));
  const lost = produced.filter((record) => !processings.has(key(record.partition, record.offset)));
  const phantom: ProducedRecord[] = [];
  const unexplainedDuplicates: DeliveryReport["unexplainedDuplicates"] = [];
  let explainedDuplicates = 0;
  let processedRecords = 0;
  for (const [recordKey, entry] of processings) {
    processedRecords++;
    if (!producedKeys.has(recordKey)) phantom.push({ partition: entry.partition, offset: entry.offset });
    // Every processing but the last must be a killed member's uncommitted work.
    const earlier = entry.members.slice(0, -1);
    const allExplained = earlier.every((member) => {
      if (!killed.has(member)) return false;
      const committed = commits.get(`${member}\u0000${entry.partition}`) ?? -1;
      return committed <= entry.offset;
    });
    if (earlier.length === 0) continue;
    if (allExplained) explainedDuplicates += earlier.length;
    else unexplainedDuplicates.push(entry);
  }
  return { lost, unexplainedDuplicates, explainedDuplicates, phantom, processedRecords };
}
