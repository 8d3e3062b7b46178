#!/usr/bin/env node
// Failover time: 3 real node processes, one group, logs on disk. Each trial SIGKILLs the leader
// process and measures until a new leader has committed an entry (the survivors keep trying to
// write), then restarts the killed node and lets it catch up. Prints p50 and max; asserts nothing.
//
//   pnpm build && node scripts/bench/raft-election.mjs [--trials 20] [--tick-ms 50] [--dir /path]
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { BenchCluster, percentile, until } from "./lib/raft-cluster.mjs";

const { values } = parseArgs({
  options: {
    trials: { type: "string", default: "20" },
    "tick-ms": { type: "string", default: "50" },
    dir: { type: "string" },
  },
});
const trials = Number(values.trials);
const tickMs = Number(values["tick-ms"]);
if (!Number.isInteger(trials) || trials <= 0 || !(tickMs > 0)) {
  console.error("--trials must be a positive integer and --tick-ms a positive number");
  process.exit(2);
}

const cluster = await BenchCluster.start({ nodes: 3, groups: 1, storage: "disk", tickMs, dir: values.dir });
const leader = () =>
  until(
    "a leader",
    async () => (await cluster.statuses()).find((status) => status.led === 1)?.nodeId,
    30_000,
  );
const times = [];
try {
  console.log(
    `3 nodes, 1 group, tick ${tickMs} ms, election timeout 10-20 ticks; SIGKILL the leader ${trials} times`,
  );
  for (let trial = 1; trial <= trials; trial++) {
    const victim = await leader();
    await cluster.request(victim, { type: "load", group: 0, count: 20, size: 1024, concurrency: 4 });
    // Vary where in the heartbeat cycle the kill lands.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 * tickMs));
    const survivors = cluster.ids.filter((id) => id !== victim);
    const watches = survivors.map((id) => cluster.request(id, { type: "watchCommit", group: 0 }));
    const killedAt = performance.timeOrigin + performance.now();
    await cluster.kill(victim);
    const first = await Promise.race(
      watches.map((watch) => watch.then((result) => (result.committedAt ? result : new Promise(() => {})))),
    );
    await Promise.all(survivors.map((id) => cluster.request(id, { type: "unwatch" })));
    await Promise.all(watches);
    const elapsed = first.committedAt - killedAt;
    times.push(elapsed);
    console.log(
      `trial ${String(trial).padStart(2)}: killed node ${victim}, new leader committed after ${elapsed.toFixed(0)} ms`,
    );
    await cluster.restart(victim);
    await until("the restarted node to rejoin", async () => {
      const status = (await cluster.statuses()).find((candidate) => candidate.nodeId === victim);
      return status?.withLeader === 1;
    });
  }
  times.sort((a, b) => a - b);
  console.log(
    `failover (SIGKILL to first commit by the new leader): p50 ${percentile(times, 0.5).toFixed(0)} ms, max ${times[times.length - 1].toFixed(0)} ms over ${trials} trials`,
  );
} finally {
  await cluster.stop();
}
