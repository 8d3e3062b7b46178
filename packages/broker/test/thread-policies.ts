import { readdirSync, readFileSync } from "node:fs";

/** Linux's scheduling policies by number, as /proc/<pid>/task/<tid>/stat's 41st field gives them. */
export const SCHED_OTHER = 0;
export const SCHED_BATCH = 3;
export const SCHED_IDLE = 5;

export interface ThreadPolicy {
  /** The thread's name (comm): "node" for Node's and libuv's, "raftka-..." for the addons' own. */
  name: string;
  policy: number;
}

/** Name and scheduling policy of every thread of process `pid`, by thread id (threads that exit meanwhile are left out). */
export function threadPolicies(pid: number): Map<number, ThreadPolicy> {
  const threads = new Map<number, ThreadPolicy>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue;
    }
    // The name, in parentheses, may hold spaces: fields are counted from after its closing one (field 3).
    const nameEnd = stat.lastIndexOf(")");
    const fields = stat.slice(nameEnd + 2).split(" ");
    threads.set(Number(tid), {
      name: stat.slice(stat.indexOf("(") + 1, nameEnd),
      policy: Number(fields[41 - 3]),
    });
  }
  return threads;
}
