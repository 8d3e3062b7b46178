#!/usr/bin/env node
// Appends a Raft-internal control batch (what a Raft leader writes at the start of its term) to a stopped
// broker's partition log, so the suites can check that every client steps over it without seeing it.
//
//   node tests/e2e/harness/inject-control-batch.mjs <partition directory> [leader epoch]
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const { FlushScheduler, PartitionLog } = await import(join(repository, "packages/storage/dist/index.js"));
const { ControlRecordType, encodeControlRecordKey, encodeRecordBatch } = await import(
  join(repository, "packages/protocol/dist/index.js")
);

const [directory, epochText = "1"] = process.argv.slice(2);
if (!directory) {
  console.error("usage: inject-control-batch.mjs <partition directory> [leader epoch]");
  process.exit(2);
}
const log = await PartitionLog.open(directory, { flushScheduler: new FlushScheduler() });
const batch = encodeRecordBatch({
  records: [
    {
      key: encodeControlRecordKey(ControlRecordType.LEADER_CHANGE),
      value: Buffer.from("raft"),
      timestamp: Date.now(),
    },
  ],
  isControl: true,
});
const result = await log.append(batch, { assignOffsets: true, leaderEpoch: Number(epochText) });
await log.close();
console.log(JSON.stringify({ offset: result.firstOffset }));
