import { execFileSync } from "node:child_process";
import { readdir, statfs, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ApiKey, decodeRecordBatch, ErrorCode, sliceBatches } from "@raftka/protocol";
import { describe, expect, it } from "vitest";
import {
  batch,
  createTopic,
  fetchRequest,
  produceRequest,
  startTestBroker,
  withScratchMount,
} from "./helpers.js";

const MiB = 1024 * 1024;
// Under 256 KiB, so that no block reservation takes tmpfs space ahead of the appends.
const VALUES = Array.from({ length: 10 }, (_, index) => `record-${index}-`.padEnd(10_000, "x"));

describe("a log directory running out of space (log.dir.min.free.bytes)", () => {
  it("refuses Produce with KAFKA_STORAGE_ERROR before the disk fills, keeps serving reads, and takes Produce again once there is room", async () => {
    await withScratchMount("tmpfs", "size=48m", async (directory) => {
      const node = await startTestBroker({ "log.dir.min.free.bytes": 24 * MiB }, directory);
      try {
        const connection = await node.connect();
        expect((await createTopic(connection, "filling")).errorCode).toBe(ErrorCode.NONE);

        let acknowledged = 0;
        let refused: { errorCode: number; errorMessage?: string | null } | undefined;
        for (let attempt = 0; attempt < 1000 && refused === undefined; attempt++) {
          const response = await connection.send(
            ApiKey.Produce,
            9,
            produceRequest("filling", 0, batch(VALUES)),
          );
          const partition = response.responses[0]!.partitionResponses[0]!;
          if (partition.errorCode === ErrorCode.NONE) acknowledged += VALUES.length;
          else refused = partition;
        }
        expect(refused?.errorCode).toBe(ErrorCode.KAFKA_STORAGE_ERROR);
        // Refused by the request that would have taken the disk under the minimum, or by the check.
        expect(refused?.errorMessage).toMatch(
          /(, under|would leave less than) log\.dir\.min\.free\.bytes \(24\.0 MiB\)/,
        );
        expect(refused?.errorMessage).toContain("delete topics or lower their retention.bytes");
        // The disk never filled: the guard stopped Produce with space to spare (a check a second).
        const fileSystem = await statfs(directory);
        expect(fileSystem.bavail * fileSystem.bsize).toBeGreaterThan(4 * MiB);
        expect(acknowledged).toBeGreaterThan(1000);

        const warnings = node.logLines.filter((line) => String(line.msg).includes("Produce is refused"));
        expect(warnings).toHaveLength(1);
        expect(warnings[0]!.level).toBe("warn");
        expect(await node.metrics.render()).toMatch(
          new RegExp(`raftka_log_dir_produce_refused\\{[^}]*dir="${directory}"[^}]*\\} 1`),
        );

        // Every acknowledged record reads back while Produce is refused.
        let read = 0;
        for (let offset = 0n; read < acknowledged; ) {
          const fetched = await connection.send(
            ApiKey.Fetch,
            11,
            fetchRequest([{ topic: "filling", partition: 0, offset, maxBytes: 4 * MiB }]),
          );
          const data = fetched.responses[0]!.partitions[0]!;
          expect(data.errorCode).toBe(ErrorCode.NONE);
          const batches = sliceBatches(data.records ?? Buffer.alloc(0)).batches;
          expect(batches.length).toBeGreaterThan(0);
          for (const entry of batches) {
            const decoded = decodeRecordBatch(entry.bytes);
            read += decoded.records.length;
            offset = BigInt(decoded.records.at(-1)!.offset) + 1n;
          }
        }
        expect(read).toBe(acknowledged);

        // More room (as a grown volume, or space freed by deleting topics): Produce is taken again.
        execFileSync("mount", ["-o", "remount,size=96m", directory]);
        let accepted = false;
        for (let waited = 0; !accepted && waited < 5000; waited += 100) {
          const response = await connection.send(
            ApiKey.Produce,
            9,
            produceRequest("filling", 0, batch(VALUES)),
          );
          accepted = response.responses[0]!.partitionResponses[0]!.errorCode === ErrorCode.NONE;
          if (!accepted) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(accepted).toBe(true);
        expect(node.logLines.some((line) => String(line.msg).startsWith("taking Produce to"))).toBe(true);
        expect(await node.metrics.render()).toMatch(
          new RegExp(`raftka_log_dir_produce_refused\\{[^}]*dir="${directory}"[^}]*\\} 0`),
        );
      } finally {
        await node.stop();
      }
    });
  });

  it("lets offset commits use the margin under the minimum, but never fill the disk and fail a log", async () => {
    await withScratchMount("tmpfs", "size=48m", async (directory) => {
      const node = await startTestBroker({ "log.dir.min.free.bytes": 16 * MiB }, directory);
      try {
        const connection = await node.connect();
        expect((await createTopic(connection, "committed", 100)).errorCode).toBe(ErrorCode.NONE);
        const commit = async (metadata: string) => {
          const response = await connection.send(ApiKey.OffsetCommit, 8, {
            groupId: "filling-commits",
            generationIdOrMemberEpoch: -1,
            memberId: "",
            groupInstanceId: null,
            topics: [
              {
                name: "committed",
                partitions: Array.from({ length: 100 }, (_, partitionIndex) => ({
                  partitionIndex,
                  committedOffset: 0n,
                  committedLeaderEpoch: -1,
                  committedMetadata: metadata,
                })),
              },
            ],
          });
          return response.topics[0]!.partitions[0]!.errorCode;
        };
        // The offsets topic is created and loaded on first use.
        await connection.send(ApiKey.FindCoordinator, 3, { key: "filling-commits", keyType: 0 });
        await expect.poll(() => commit("first"), { timeout: 30_000 }).toBe(ErrorCode.NONE);

        for (let attempt = 0; attempt < 1000; attempt++) {
          const response = await connection.send(
            ApiKey.Produce,
            9,
            produceRequest("committed", 0, batch(VALUES)),
          );
          if (response.responses[0]!.partitionResponses[0]!.errorCode !== ErrorCode.NONE) break;
        }
        // Produce is refused now; commits of 100 partitions with 4,000 bytes of metadata each go on in
        // the margin until the node keeps its last quarter, answering NOT_COORDINATOR (clients retry).
        let accepted = 0;
        let refusedWith: number | undefined;
        for (let attempt = 0; attempt < 200 && refusedWith === undefined; attempt++) {
          const code = await commit("m".repeat(4000));
          if (code === ErrorCode.NONE) accepted++;
          else refusedWith = code;
        }
        expect(accepted).toBeGreaterThan(0);
        expect(refusedWith).toBe(ErrorCode.NOT_COORDINATOR);
        expect(await node.metrics.render()).toMatch(/^raftka_logs_failed(\{[^}]*\})? 0$/m);
        // The guard's estimate lags the disk by what is in flight at each check: some of the kept
        // quarter (4 MiB) goes, never all of it.
        const fileSystem = await statfs(directory);
        expect(fileSystem.bavail * fileSystem.bsize).toBeGreaterThan(1 * MiB);
      } finally {
        await node.stop();
      }
    });
  });

  it("puts new partitions in a log directory with room while another one refuses Produce", async () => {
    await withScratchMount("tmpfs", "size=32m", async (low) => {
      await withScratchMount("tmpfs", "size=128m", async (roomy) => {
        // 16 MiB of other files leave the small disk under the 24 MiB minimum from the start.
        await writeFile(join(low, "other-files"), Buffer.alloc(16 * MiB));
        const node = await startTestBroker(
          { "log.dirs": `${low},${roomy}`, "log.dir.min.free.bytes": 24 * MiB },
          low,
        );
        try {
          const connection = await node.connect();
          expect((await createTopic(connection, "placed", 4)).errorCode).toBe(ErrorCode.NONE);
          expect((await readdir(roomy)).filter((name) => name.startsWith("placed-")).sort()).toEqual([
            "placed-0",
            "placed-1",
            "placed-2",
            "placed-3",
          ]);
          expect((await readdir(low)).filter((name) => name.startsWith("placed-"))).toEqual([]);
          for (let partition = 0; partition < 4; partition++) {
            const response = await connection.send(
              ApiKey.Produce,
              9,
              produceRequest("placed", partition, batch(VALUES)),
            );
            expect(response.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NONE);
          }
        } finally {
          await node.stop();
        }
      });
    });
  });
});
