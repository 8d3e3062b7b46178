// Prints codec throughput for the hot paths (Produce decode, Fetch encode, batch validation).
// Run after `pnpm build`: `pnpm --filter @raftka/protocol bench`. Numbers only; nothing is asserted.
import {
  ApiKey,
  decodeRequestBody,
  decodeRequestHeader,
  encodeRecordBatch,
  encodeRequestFrame,
  encodeResponseFrame,
  validateRecordBatch,
} from "../dist/index.js";

function measure(name, bytesPerOp, op) {
  for (let i = 0; i < 200; i++) op();
  const iterations = 20_000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) op();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const perSecond = iterations / seconds;
  const throughput = bytesPerOp ? `  ${((perSecond * bytesPerOp) / 2 ** 20).toFixed(0)} MiB/s` : "";
  process.stdout.write(`${name.padEnd(58)} ${perSecond.toFixed(0).padStart(9)} ops/s${throughput}\n`);
}

const batch = encodeRecordBatch({
  records: Array.from({ length: 100 }, (_, i) => ({
    key: `key-${i}`,
    value: Buffer.alloc(160, i),
    timestamp: 1_700_000_000_000 + i,
  })),
});

const produceFrame = Buffer.concat(
  encodeRequestFrame(ApiKey.Produce, 7, 1, "bench", {
    transactionalId: null,
    acks: -1,
    timeoutMs: 30_000,
    topicData: [{ name: "bench-topic", partitionData: [{ index: 0, records: batch }] }],
  }),
).subarray(4);
measure(`decode Produce v7 request (1 batch, ${batch.length} B)`, produceFrame.length, () => {
  const header = decodeRequestHeader(produceFrame);
  decodeRequestBody(ApiKey.Produce, header, produceFrame);
});

measure(`validateRecordBatch (CRC32C over ${batch.length} B)`, batch.length, () =>
  validateRecordBatch(batch),
);

const partitionRecords = Buffer.alloc(64 * 1024, 1);
const fetchResponse = {
  throttleTimeMs: 0,
  errorCode: 0,
  sessionId: 0,
  responses: Array.from({ length: 4 }, (_, t) => ({
    topic: `topic-${t}`,
    partitions: Array.from({ length: 8 }, (_, p) => ({
      partitionIndex: p,
      errorCode: 0,
      highWatermark: 1000n,
      lastStableOffset: 1000n,
      logStartOffset: 0n,
      abortedTransactions: null,
      preferredReadReplica: -1,
      records: partitionRecords,
    })),
  })),
};
let chunks = [];
measure("encode Fetch v11 response (32 partitions x 64 KiB records)", 32 * partitionRecords.length, () => {
  chunks = encodeResponseFrame(ApiKey.Fetch, 11, 1, fetchResponse);
});
const referenced = chunks.filter((chunk) => chunk === partitionRecords).length;
process.stdout.write(
  `  records chunks passed through uncopied: ${referenced} of 32; header bytes copied: ${chunks.filter((c) => c !== partitionRecords).reduce((n, c) => n + c.length, 0)}\n`,
);

const metadataRequest = {
  topics: Array.from({ length: 20 }, (_, i) => ({ name: `topic-${i}` })),
  allowAutoTopicCreation: true,
};
measure("encode+decode Metadata v12 request (20 topics)", 0, () => {
  const frame = Buffer.concat(encodeRequestFrame(ApiKey.Metadata, 12, 1, "bench", metadataRequest)).subarray(
    4,
  );
  decodeRequestBody(ApiKey.Metadata, decodeRequestHeader(frame), frame);
});
