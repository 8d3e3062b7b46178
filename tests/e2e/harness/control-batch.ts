import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { type RunningBroker, repositoryRoot } from "./broker.js";

/**
 * Appends a Raft-internal control batch to a partition of a broker (stopping it first, restarting it after),
 * as a Raft leader will write at the start of its term. Resolves with the batch's offset.
 */
export async function injectRaftControlBatch(
  broker: RunningBroker,
  topic: string,
  partition = 0,
): Promise<number> {
  const code = await broker.stop("SIGTERM");
  if (code !== 0) throw new Error(`broker exited with ${code} instead of 0 when stopped for the injection`);
  const { stdout } = await promisify(execFile)(process.execPath, [
    join(repositoryRoot, "tests/e2e/harness/inject-control-batch.mjs"),
    join(broker.dataDir, `${topic}-${partition}`),
  ]);
  await broker.restart();
  return (JSON.parse(stdout) as { offset: number }).offset;
}
