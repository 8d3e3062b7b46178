import { readdirSync, readFileSync } from "node:fs";

/** Linux's scheduling policies by number, as /proc/<pid>/task/<tid>/stat's 41st field gives them. */
export const SCHED_OTHER = 0;
export const SCHED_BATCH = 3;
export const SCHED_IDLE = 5;

/** The scheduling policy of every thread of process `pid`, by thread id (threads that exit meanwhile are left out). */
export function threadPolicies(pid: number): Map<number, number> {
  const policies = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue;
    }
    // The thread's name, in parentheses, may hold spaces: count fields from after its closing one (field 3).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    policies.set(Number(tid), Number(fields[41 - 3]));
  }
  return policies;
}
