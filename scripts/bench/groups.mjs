#!/usr/bin/env node
// Consumer groups and idempotent producers against a real broker process. Prints numbers; asserts nothing.
//
//   pnpm build && node scripts/bench/groups.mjs [--rebalances 5] [--commits 2000] [--records 1000000]
//        [--record-bytes 256] [--partitions 6] [--dir /path/on/the/disk/to/measure]
//
// 1. Rebalance: with group.initial.rebalance.delay.ms=0, the time from the third kafkajs member starting
//    (connect, subscribe, run) until all three members consume under the new assignment (each has its
//    GROUP_JOIN for the new generation and a record after it). Members heartbeat every 100 ms: a member
//    learns of a rebalance from its next heartbeat, so the interval bounds the result from below.
// 2. OffsetCommit latency: sequential acks=all commits (one partition each) over one connection, p50/p99,
//    next to the raw fsync latency of the same disk (every commit waits for one), and the broker main
//    thread's CPU time and run-queue wait meanwhile (how much other processes on the machine delayed it).
// 3. Idempotent producer throughput relative to a plain producer, both with acks=all, in the same run
//    (two alternating runs each), driven by the librdkafka load generator (scripts/bench/loadgen/loadgen.c,
//    compiled here with cc). Short runs are dominated by start-up noise: keep --records at a million or so.
import { execFile } from "node:child_process";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { readyLine, spawnBroker } = await import(join(repository, "scripts", "lib", "broker-process.mjs"));
const requireFromE2e = createRequire(join(repository, "tests", "e2e", "package.json"));
const { Kafka, logLevel } = requireFromE2e("kafkajs");
const protocol = await import(join(repository, "packages", "protocol", "dist", "index.js")).catch((error) => {
  console.error(`cannot load the protocol package (${error.message}); run \`pnpm build\` first`);
  process.exit(1);
});

const { values } = parseArgs({
  options: {
    rebalances: { type: "string", default: "5" },
    commits: { type: "string", default: "2000" },
    records: { type: "string", default: "1000000" },
    "record-bytes": { type: "string", default: "256" },
    partitions: { type: "string", default: "6" },
    dir: { type: "string" },
  },
});
const settings = {
  rebalances: Number(values.rebalances),
  commits: Number(values.commits),
  records: Number(values.records),
  recordBytes: Number(values["record-bytes"]),
  partitions: Number(values.partitions),
};
for (const [name, value] of Object.entries(settings)) {
  if (!Number.isInteger(value) || value <= 0) {
    console.error(`--${name} must be a positive integer`);
    process.exit(2);
  }
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.round(p * (sorted.length - 1)))];
const round = (value) => Math.round(value * 100) / 100;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A broker process on free ports with its own data directory; resolves once it logged "ready". */
async function startBrokerProcess(dataDir) {
  const child = await spawnBroker({
    checkout: repository,
    dataDir,
    settings: ["group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=1000"],
  });
  const ready = await readyLine(child);
  // Never leave the broker behind, however this script ends.
  process.once("exit", () => child.kill("SIGKILL"));
  for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => process.exit(130));
  return {
    pid: child.pid,
    bootstrap: `127.0.0.1:${ready.kafkaPort}`,
    port: Number(ready.kafkaPort),
    async stop() {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    },
  };
}

async function measureRebalances(bootstrap) {
  const kafka = new Kafka({ clientId: "bench", brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const topic = "bench-rebalance";
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: settings.partitions }] });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  let producing = true;
  const feeding = (async () => {
    for (let index = 0; producing; index++) {
      await producer.send({
        topic,
        messages: Array.from({ length: settings.partitions }, (_, partition) => ({
          partition,
          value: String(index),
        })),
      });
      await sleep(5);
    }
  })();

  const durations = [];
  for (let trial = 0; trial < settings.rebalances; trial++) {
    const groupId = `bench-group-${trial}`;
    const members = [];
    const startMember = async () => {
      const state = { joins: [], messages: [], consumer: undefined };
      const consumer = kafka.consumer({
        groupId,
        heartbeatInterval: 100,
        sessionTimeout: 6000,
        maxWaitTimeInMs: 50,
      });
      state.consumer = consumer;
      consumer.on(consumer.events.GROUP_JOIN, () => state.joins.push(performance.now()));
      await consumer.connect();
      await consumer.subscribe({ topic });
      await consumer.run({ eachMessage: async () => void state.messages.push(performance.now()) });
      members.push(state);
      return state;
    };
    const consumingSince = (state, since) => {
      const join = state.joins.find((at) => at >= since);
      return join !== undefined && state.messages.some((at) => at >= join);
    };
    await startMember();
    await startMember();
    while (!members.every((state) => consumingSince(state, 0)) || members[0].joins.length < 2)
      await sleep(10);
    await sleep(200);
    const startedAt = performance.now();
    await startMember();
    while (!members.every((state) => consumingSince(state, startedAt))) await sleep(2);
    const consumingAt = Math.max(
      ...members.map((state) => {
        const join = state.joins.find((at) => at >= startedAt);
        return state.messages.find((at) => at >= join);
      }),
    );
    durations.push(consumingAt - startedAt);
    await Promise.all(members.map((state) => state.consumer.disconnect()));
  }
  producing = false;
  await feeding;
  await producer.disconnect();
  const sorted = [...durations].sort((a, b) => a - b);
  return {
    trials: durations.length,
    medianMs: round(percentile(sorted, 0.5)),
    maxMs: round(sorted.at(-1)),
    allMs: durations.map(round),
  };
}

async function measureOffsetCommits(port) {
  const connection = await protocol.KafkaConnection.connect("127.0.0.1", port, { requestTimeoutMs: 30_000 });
  const groupId = "bench-commits";
  for (;;) {
    const found = await connection.send(10, 1, { key: groupId, keyType: 0 });
    const fetched = found.errorCode === 0 ? await connection.send(9, 2, { groupId, topics: null }) : found;
    if (fetched.errorCode === 0) break;
    await sleep(50);
  }
  const latencies = [];
  for (let index = 0; index < settings.commits; index++) {
    const begin = performance.now();
    const response = await connection.send(8, 7, {
      groupId,
      generationIdOrMemberEpoch: -1,
      memberId: "",
      groupInstanceId: null,
      topics: [
        {
          name: "bench-rebalance",
          partitions: [
            {
              partitionIndex: index % settings.partitions,
              committedOffset: BigInt(index),
              committedLeaderEpoch: -1,
              committedMetadata: null,
            },
          ],
        },
      ],
    });
    latencies.push(performance.now() - begin);
    const errorCode = response.topics[0].partitions[0].errorCode;
    if (errorCode !== 0) throw new Error(`OffsetCommit failed with error ${errorCode}`);
  }
  await connection.close();
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    commits: latencies.length,
    p50Ms: round(percentile(sorted, 0.5)),
    p99Ms: round(percentile(sorted, 0.99)),
    maxMs: round(sorted.at(-1)),
  };
}

async function compileLoadgen(directory) {
  const binary = join(directory, "loadgen");
  await promisify(execFile)("cc", [
    "-O2",
    "-o",
    binary,
    join(repository, "scripts", "bench", "loadgen", "loadgen.c"),
    "-lrdkafka",
  ]);
  return binary;
}

async function loadgen(binary, args) {
  const { stdout } = await promisify(execFile)(binary, args, { maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout.trim().split("\n").at(-1));
}

async function measureIdempotence(bootstrap, binary) {
  const common = (topic) => [
    "produce",
    "-b",
    bootstrap,
    "-t",
    topic,
    "-p",
    String(settings.partitions),
    "-s",
    String(settings.recordBytes),
    "-n",
    String(settings.records),
    "-a",
    "-1",
  ];
  const kafka = new Kafka({ clientId: "bench", brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [0, 1].flatMap((run) =>
      [`bench-plain-${run}`, `bench-idempotent-${run}`].map((topic) => ({
        topic,
        numPartitions: settings.partitions,
      })),
    ),
  });
  await admin.disconnect();
  // Alternating runs, so a slow moment of the (shared) machine does not count against one side only.
  const plain = [];
  const idempotent = [];
  for (let run = 0; run < 2; run++) {
    plain.push(await loadgen(binary, common(`bench-plain-${run}`)));
    idempotent.push(
      await loadgen(binary, [...common(`bench-idempotent-${run}`), "-X", "enable.idempotence=true"]),
    );
  }
  const mean = (results) =>
    results.reduce((sum, result) => sum + result.recordsPerSecond, 0) / results.length;
  return {
    plainRecordsPerSecond: plain.map((result) => result.recordsPerSecond),
    idempotentRecordsPerSecond: idempotent.map((result) => result.recordsPerSecond),
    ratio: round(mean(idempotent) / mean(plain)),
    plainP99Ms: plain.map((result) => result.latencyMs.p99),
    idempotentP99Ms: idempotent.map((result) => result.latencyMs.p99),
    failed: [...plain, ...idempotent].reduce((sum, result) => sum + result.failed, 0),
  };
}

/**
 * The broker main thread's CPU time and the time it was runnable but waited for a CPU (Linux schedstat):
 * on a shared machine the wait is what other processes add to the latencies.
 */
async function mainThreadSchedule(pid) {
  const fields = (await readFile(`/proc/${pid}/task/${pid}/schedstat`, "utf8")).split(" ").map(Number);
  return { ranMs: fields[0] / 1e6, waitedMs: fields[1] / 1e6 };
}

/** The disk's own fsync latency, for comparison with OffsetCommit (which waits for one). */
async function measureRawFsync(directory, rounds) {
  const path = join(directory, "fsync-probe");
  const handle = await open(path, "w");
  const block = Buffer.alloc(256, 1);
  const latencies = [];
  try {
    for (let index = 0; index < rounds; index++) {
      const begin = performance.now();
      await handle.write(block, 0, block.length, index * block.length);
      await handle.datasync();
      latencies.push(performance.now() - begin);
    }
  } finally {
    await handle.close();
    await rm(path, { force: true });
  }
  const sorted = latencies.sort((a, b) => a - b);
  return { p50Ms: round(percentile(sorted, 0.5)), p99Ms: round(percentile(sorted, 0.99)) };
}

const workDir = await mkdtemp(join(values.dir ?? tmpdir(), "raftka-bench-groups-"));
const broker = await startBrokerProcess(join(workDir, "data"));
try {
  console.error("measuring rebalances...");
  const rebalance = await measureRebalances(broker.bootstrap);
  console.error("measuring OffsetCommit latency...");
  const scheduleBefore = await mainThreadSchedule(broker.pid);
  const commits = await measureOffsetCommits(broker.port);
  const scheduleAfter = await mainThreadSchedule(broker.pid);
  const offsetCommit = {
    ...commits,
    brokerMainThreadDuringCommits: {
      ranMs: Math.round(scheduleAfter.ranMs - scheduleBefore.ranMs),
      waitedForCpuMs: Math.round(scheduleAfter.waitedMs - scheduleBefore.waitedMs),
    },
    rawFsyncOfThisDisk: await measureRawFsync(workDir, settings.commits),
  };
  console.error("compiling the load generator and measuring producers...");
  const binary = await compileLoadgen(workDir);
  const idempotence = await measureIdempotence(broker.bootstrap, binary);
  console.log(
    JSON.stringify(
      {
        settings,
        rebalanceToConsumingMs: rebalance,
        offsetCommit,
        idempotentProducer: idempotence,
        targets: { rebalanceMs: "< 1000", offsetCommitP99Ms: "< 5", idempotentRatio: ">= 0.9" },
      },
      null,
      2,
    ),
  );
} finally {
  await broker.stop();
  await rm(workDir, { recursive: true, force: true });
}
