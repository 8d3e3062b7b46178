import { randomInt } from "node:crypto";
import { createInterface } from "node:readline";
import { ApiKey, CompressionType, ErrorCode, encodeRecordBatch, type RecordInput } from "@raftka/protocol";
import type { CommandContext, CommandResult } from "../context.js";
import { parseDuration } from "../duration.js";
import { OperationFailedError, UsageError } from "../errors.js";
import type { KafkaClient } from "../kafka/client.js";
import { describeKafkaError } from "../kafka/kafka-errors.js";
import { partitionForKey } from "../kafka/partitioner.js";
import { byLeader, fetchTopic, type TopicInfo } from "../kafka/topics.js";
import { waitForTopic } from "../kafka/wait-for-topic.js";
import { parseKeyValue } from "../options.js";
import { renderSections, renderTable } from "../output/render.js";
import { sleep } from "../sleep.js";

export interface ProduceOptions {
  value?: string[];
  key?: string;
  keySeparator?: string;
  header?: string[];
  partition?: number;
  acks: "all" | "1" | "0";
  compression: "none" | "gzip" | "snappy" | "lz4" | "zstd";
  batchRecords: number;
  waitForTopic?: string;
}

const codecs = {
  none: CompressionType.None,
  gzip: CompressionType.Gzip,
  snappy: CompressionType.Snappy,
  lz4: CompressionType.Lz4,
  zstd: CompressionType.Zstd,
} as const;

/** Errors that guarantee the batch was not written, so sending it again cannot duplicate it. */
const safeToRetry = new Set<number>([
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.LEADER_NOT_AVAILABLE,
  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
]);
const MAX_ATTEMPTS = 5;
/** How long a record read from stdin may wait for more before its batch is sent (interactive use). */
const LINGER_MS = 20;

/**
 * The advice after MESSAGE_TOO_LARGE / RECORD_LIST_TOO_LARGE for a batch of `records` records and
 * `batchBytes` bytes: the broker says "send smaller batches", and this command's way to do that is
 * --batch-records, with a value sized from the limit the broker's message names, when it names one.
 */
export function batchTooLargeAdvice(
  records: number,
  batchBytes: number,
  brokerMessage: string | null | undefined,
): string {
  if (records <= 1) {
    return "the batch held a single record, so --batch-records cannot make it smaller: send smaller records";
  }
  const limit = /(?:max\.message\.bytes|segment\.bytes) \((\d+)\)/.exec(brokerMessage ?? "")?.[1];
  // A tenth below the proportional count: records differ in size, and the batch has its own overhead.
  const suggested =
    limit === undefined
      ? Math.floor(records / 2)
      : Math.floor(((records * Number(limit)) / batchBytes) * 0.9);
  if (suggested < 1) {
    return `the batch held ${records} records in ${batchBytes} bytes: send smaller records`;
  }
  return `the batch held ${records} records in ${batchBytes} bytes: pass --batch-records=${Math.min(suggested, records - 1)} (now ${records})`;
}

interface PartitionTally {
  partition: number;
  records: number;
  firstOffset: bigint | null;
  lastOffset: bigint | null;
}

/**
 * Accumulates records per partition and sends them in batches, one Produce request at a time per
 * flush, retrying only errors that guarantee nothing was written.
 */
class Producer {
  private readonly pending = new Map<number, RecordInput[]>();
  private pendingCount = 0;
  private flushing: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  // Each run starts on a random partition, as Kafka's sticky partitioner does: one-record runs from a
  // script would otherwise all land on partition 0.
  private roundRobin = randomInt(0x7fffffff);
  readonly tallies = new Map<number, PartitionTally>();
  produced = 0;

  constructor(
    private readonly client: KafkaClient,
    private topic: TopicInfo,
    private readonly options: ProduceOptions,
    private readonly acks: number,
    private readonly timeoutMs: number,
    private readonly onProgress: (produced: number) => void,
  ) {}

  add(record: RecordInput): void {
    if (this.failure) throw this.failure;
    const partition = this.partitionFor(record);
    const list = this.pending.get(partition) ?? [];
    list.push(record);
    this.pending.set(partition, list);
    this.pendingCount++;
    if (list.length >= this.options.batchRecords) this.flush();
    else this.lingerTimer ??= setTimeout(() => this.flush(), LINGER_MS);
  }

  /** Resolves when fewer than a few batches are waiting, so reading stdin never outruns the broker. */
  async backpressure(): Promise<void> {
    if (this.pendingCount > this.options.batchRecords * 4) await this.flushing;
    if (this.failure) throw this.failure;
  }

  flush(): void {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (this.pending.size === 0) return;
    const batches = new Map(this.pending);
    this.pending.clear();
    this.pendingCount = 0;
    this.roundRobin++;
    this.flushing = this.flushing
      .then(() => (this.failure ? undefined : this.send(batches)))
      .catch((error: Error) => {
        this.failure ??= error;
      });
  }

  async close(): Promise<void> {
    this.flush();
    await this.flushing;
    if (this.failure) throw this.failure;
  }

  private partitionFor(record: RecordInput): number {
    const count = this.topic.partitions.length;
    if (this.options.partition !== undefined) return this.options.partition;
    if (record.key !== undefined && record.key !== null) {
      return partitionForKey(typeof record.key === "string" ? Buffer.from(record.key) : record.key, count);
    }
    // Keyless records stick to one partition per batch, as Kafka's sticky partitioner does.
    return this.roundRobin % count;
  }

  private async send(batches: Map<number, RecordInput[]>): Promise<void> {
    let remaining = [...batches].map(([partition, records]) => ({ partition, records }));
    for (let attempt = 1; remaining.length > 0; attempt++) {
      const retry: typeof remaining = [];
      for (const [leader, items] of byLeader(this.topic, remaining)) {
        const partitionData = items.map((item) => ({
          index: item.partition,
          records: encodeRecordBatch({
            records: item.records,
            compression: codecs[this.options.compression],
          }),
        }));
        const request = {
          transactionalId: null,
          acks: this.acks,
          timeoutMs: this.timeoutMs,
          topicData: [{ name: this.topic.name, partitionData }],
        };
        if (this.acks === 0) {
          await this.client.sendNoResponse(ApiKey.Produce, request, leader);
          for (const item of items) this.count(item.partition, item.records.length, null);
          continue;
        }
        const response = await this.client.send(ApiKey.Produce, request, leader);
        for (const answer of response.responses.flatMap((topic) => topic.partitionResponses)) {
          const item = items.find((candidate) => candidate.partition === answer.index);
          if (!item) continue;
          if (answer.errorCode === ErrorCode.NONE) {
            this.count(item.partition, item.records.length, answer.baseOffset);
          } else if (safeToRetry.has(answer.errorCode) && attempt < MAX_ATTEMPTS) {
            retry.push(item);
          } else {
            let advice = "";
            if (
              answer.errorCode === ErrorCode.MESSAGE_TOO_LARGE ||
              answer.errorCode === ErrorCode.RECORD_LIST_TOO_LARGE
            ) {
              const batchBytes =
                partitionData.find((data) => data.index === answer.index)?.records.length ?? 0;
              advice = `; ${batchTooLargeAdvice(item.records.length, batchBytes, answer.errorMessage)}`;
            }
            throw new OperationFailedError(
              `producing to ${this.topic.name}/${answer.index} failed after ${this.produced} records were written: ${describeKafkaError(answer.errorCode, answer.errorMessage)}${advice}`,
            );
          }
        }
      }
      remaining = retry;
      if (remaining.length > 0) {
        await sleep(100 * attempt, new AbortController().signal);
        this.topic = await fetchTopic(this.client, this.topic.name);
      }
    }
  }

  private count(partition: number, records: number, baseOffset: bigint | null): void {
    const tally = this.tallies.get(partition) ?? {
      partition,
      records: 0,
      firstOffset: null,
      lastOffset: null,
    };
    tally.records += records;
    if (baseOffset !== null) {
      tally.firstOffset ??= baseOffset;
      tally.lastOffset = baseOffset + BigInt(records - 1);
    }
    this.tallies.set(partition, tally);
    this.produced += records;
    this.onProgress(this.produced);
  }
}

/** `raftka topic produce`: records from --value options or stdin lines, batched per partition. */
export async function topicProduce(
  context: CommandContext,
  name: string,
  options: ProduceOptions,
): Promise<CommandResult> {
  if (options.key !== undefined && options.keySeparator !== undefined) {
    throw new UsageError(
      "give either --key (one key for every record) or --key-separator (a key per line), not both",
    );
  }
  if (options.keySeparator === "") throw new UsageError("--key-separator must not be empty");
  const headers = (options.header ?? []).map((entry) => {
    const [key, value] = parseKeyValue(entry, "--header", "source=billing");
    return { key, value };
  });
  const waitMs =
    options.waitForTopic === undefined ? 0 : parseDuration(options.waitForTopic, "--wait-for-topic");
  const client = await context.kafka();
  const topic = await waitForTopic(context, client, name, waitMs);
  if (options.partition !== undefined && options.partition >= topic.partitions.length) {
    throw new UsageError(
      `--partition ${options.partition} does not exist: topic "${name}" has partitions 0 to ${topic.partitions.length - 1}`,
    );
  }
  const acks = options.acks === "all" ? -1 : Number(options.acks);
  const progress = context.progress();
  const started = Date.now();
  const producer = new Producer(
    client,
    topic,
    options,
    acks,
    context.settings.requestTimeoutMs,
    (produced) => {
      const seconds = Math.max(0.001, (Date.now() - started) / 1000);
      progress.update(`produced ${produced} records to ${name} (${Math.round(produced / seconds)}/s)`);
    },
  );

  const toRecord = (line: string): RecordInput => {
    let key: string | null = options.key ?? null;
    let value = line;
    if (options.keySeparator !== undefined) {
      const at = line.indexOf(options.keySeparator);
      if (at >= 0) {
        key = line.slice(0, at);
        value = line.slice(at + options.keySeparator.length);
      }
    }
    return { key, value, headers, timestamp: Date.now() };
  };

  let read = 0;
  if (options.value !== undefined) {
    for (const value of options.value) {
      producer.add(toRecord(value));
      read++;
    }
  } else {
    if (context.io.stdin.isTTY)
      context.note("reading records from standard input, one per line; end with Ctrl-D");
    const lines = createInterface({ input: context.io.stdin, crlfDelay: Number.POSITIVE_INFINITY });
    const stop = () => lines.close();
    context.signal.addEventListener("abort", stop, { once: true });
    try {
      for await (const line of lines) {
        producer.add(toRecord(line));
        read++;
        await producer.backpressure();
      }
    } finally {
      context.signal.removeEventListener("abort", stop);
    }
  }
  try {
    await producer.close();
  } finally {
    progress.done();
  }
  const partitions = [...producer.tallies.values()].sort((a, b) => a.partition - b.partition);
  const data = { topic: name, records: producer.produced, acks: options.acks, partitions };
  const text = renderSections([
    [
      null,
      `produced ${producer.produced} records to ${name}${acks === 0 ? " (acks=0: offsets unknown)" : ""}`,
    ],
    [
      null,
      partitions.length === 0
        ? ""
        : renderTable(
            ["partition", "records", "first-offset", "last-offset"],
            partitions.map((tally) => [tally.partition, tally.records, tally.firstOffset, tally.lastOffset]),
          ),
    ],
  ]);
  if (read === 0) {
    context.note(
      context.interrupted
        ? "raftka: interrupted before a record was read from standard input; nothing was produced"
        : "raftka: no records to produce (standard input was empty)",
    );
  }
  return { data, text };
}
