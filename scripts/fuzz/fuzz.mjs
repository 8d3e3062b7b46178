#!/usr/bin/env node
// Protocol fuzzer: starts a real broker process, sends it mutated frames of every API it serves on
// several connections, and checks that it neither crashes, nor logs a handler failure, nor leaves a request
// unanswered, nor stops serving a well-behaved client producing and reading back records on its own connection.
//
//   pnpm build && pnpm fuzz --frames 1000000 [--seed 42] [--connections 4]
//
// Exit code 0: every frame was sent and the broker survived; 1: a finding (the seed to replay it is printed).
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { sampleRequests } from "./corpus.mjs";
import { createRandom, mutateBytes, mutateFields } from "./mutate.mjs";

const repository = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { readyLine, spawnBroker } = await import(join(repository, "scripts", "lib", "broker-process.mjs"));
const protocol = await import(join(repository, "packages", "protocol", "dist", "index.js")).catch((error) => {
  console.error(`cannot load @raftka/protocol (${error.message}); run \`pnpm build\` first`);
  process.exit(1);
});
const {
  ApiKey,
  FrameSplitter,
  KafkaConnection,
  apiDefinitions,
  decodeRecordBatch,
  encodeRecordBatch,
  encodeRequestFrame,
  sliceBatches,
} = protocol;

const { values: options } = parseArgs({
  options: {
    frames: { type: "string", default: "100000" },
    seed: { type: "string" },
    connections: { type: "string", default: "4" },
    quiet: { type: "boolean", default: false },
  },
});
const totalFrames = Number(options.frames);
const seed = options.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(options.seed);
const connectionCount = Number(options.connections);
const random = createRandom(seed);
const log = (message) => {
  if (!options.quiet) console.log(`[fuzz] ${message}`);
};
log(`seed ${seed} (replay with --seed ${seed}), ${totalFrames} frames on ${connectionCount} connections`);

// ---- the broker under test --------------------------------------------------------------------------

const dataDir = await mkdtemp(join(tmpdir(), "raftka-fuzz-"));
// FUZZ_BROKER_NODE_ARGS="--cpu-prof" profiles the broker under fuzzing.
const brokerNodeArgs = (process.env.FUZZ_BROKER_NODE_ARGS ?? "").split(" ").filter(Boolean);
const broker = await spawnBroker({
  checkout: repository,
  dataDir,
  nodeArgs: brokerNodeArgs,
  settings: [
    // Warn level: every rejected connection is an info line, and there are hundreds of thousands.
    "log.level=warn",
    "socket.request.max.bytes=1048576",
    // Mutated Metadata requests would otherwise create a topic per mutated name.
    "auto.create.topics.enable=false",
  ],
  stdio: ["ignore", "pipe", "pipe"],
});
// The broker must not outlive the fuzzer, however the fuzzer ends.
process.on("exit", () => {
  broker.kill("SIGKILL");
  try {
    rmSync(dataDir, { recursive: true, force: true });
  } catch {
    // A leftover temporary directory is harmless.
  }
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    broker.kill("SIGKILL");
    process.exit(130);
  });
}
const findings = [];
const brokerLines = [];
let brokerExit;
const brokerExited = new Promise((resolve) => {
  broker.once("exit", (code, signal) => {
    brokerExit = { code, signal };
    resolve(brokerExit);
  });
});
broker.stderr.setEncoding("utf8");
broker.stderr.on("data", (text) => brokerLines.push(text));
const ready = readyLine(broker, {
  onLine: (line, text) => {
    if (line === undefined) brokerLines.push(text);
    else if (line.level === "error" || line.level === "fatal") {
      findings.push(
        `broker logged ${line.level}: ${line.msg} ${line.err ? JSON.stringify(line.err).slice(0, 3000) : ""}`,
      );
    }
  },
}).catch(() => {
  throw new Error(`broker exited before it was ready:\n${brokerLines.join("")}`);
});
const { kafkaPort } = await ready;
log(`broker ready on port ${kafkaPort}`);

// ---- set-up: a target topic for the corpus and one for the well-behaved client ------------------------

const admin = await KafkaConnection.connect("127.0.0.1", kafkaPort);
async function createTopic(name, numPartitions) {
  const response = await admin.send(ApiKey.CreateTopics, 7, {
    timeoutMs: 5000,
    validateOnly: false,
    topics: [{ name, numPartitions, replicationFactor: 1, assignments: [], configs: [] }],
  });
  return response.topics[0].topicId;
}
const target = {
  topic: "fuzz-target",
  topicId: await createTopic("fuzz-target", 3),
  partitions: 3,
  now: Date.now(),
};
await createTopic("well-behaved", 1);
await createTopic("fuzz-doomed", 1);

const versions = await admin.send(ApiKey.ApiVersions, 3, {
  clientSoftwareName: "fuzz",
  clientSoftwareVersion: "1",
});
const samples = sampleRequests(protocol, target);
const served = versions.apiKeys.map((entry) => entry.apiKey);
const missing = served.filter((apiKey) => !samples[apiKey]);
if (missing.length > 0) {
  console.error(
    `the broker serves APIs the fuzz corpus has no samples for: ${missing.map((key) => apiDefinitions[key]?.name ?? key).join(", ")}; add them to scripts/fuzz/corpus.mjs`,
  );
  broker.kill("SIGKILL");
  await rm(dataDir, { recursive: true, force: true });
  process.exit(1);
}
// Every (API, version, sample) as an encodable template.
const templates = [];
for (const { apiKey, minVersion, maxVersion } of versions.apiKeys) {
  for (let version = minVersion; version <= maxVersion; version++) {
    for (const request of samples[apiKey]) {
      // Some samples cannot be written at some versions (null where that version has no nulls).
      try {
        encodeRequestFrame(apiKey, version, 1, "fuzz", request);
      } catch {
        continue;
      }
      templates.push({ apiKey, version, request });
    }
  }
}
log(`${templates.length} request templates over ${served.length} APIs`);
// Names mutations may substitute; never the well-behaved client's topic, which a mutated DeleteTopics would remove.
const names = ["fuzz-doomed", "fuzz-other"];

/** One fuzzed frame (with its size prefix), and whether it lies about its size. */
function nextFrame(correlationId) {
  const roll = random.next();
  if (roll < 0.02) {
    // Pure garbage, or a frame whose size prefix promises more than is sent.
    const garbage = random.bytes(8 + random.int(64));
    garbage.writeInt32BE(random.chance(0.5) ? garbage.length - 4 : random.pick([-1, 0x7fffffff, 2 << 20]), 0);
    return { frame: garbage, desync: true, apiKey: -1 };
  }
  const template = random.pick(templates);
  let request = template.request;
  if (roll < 0.55) request = mutateFields(random, request, names);
  let chunks;
  try {
    chunks = encodeRequestFrame(template.apiKey, template.version, correlationId, "fuzz", request);
  } catch {
    // The mutation does not fit this version's types; send the template unmutated at the byte level instead.
    chunks = encodeRequestFrame(template.apiKey, template.version, correlationId, "fuzz", template.request);
  }
  let payload = Buffer.concat(chunks).subarray(4);
  if (roll >= 0.55) payload = mutateBytes(random, payload);
  const frame = Buffer.alloc(4 + payload.length);
  frame.writeInt32BE(payload.length, 0);
  payload.copy(frame, 4);
  // A byte mutation may have rewritten the header's API key: the broker dispatches on what is sent.
  return { frame, desync: false, apiKey: payload.length >= 2 ? payload.readInt16BE(0) : -1 };
}

// ---- fuzz workers ------------------------------------------------------------------------------------

const stats = { sent: 0, responses: 0, closedByBroker: 0, parked: 0, stalled: 0, connections: 0 };
// Requests a correct broker may hold back: JoinGroup and SyncGroup wait for the rebalance, Fetch for data
// (up to a mutated max.wait.ms). Waiting out each one would slow the fuzzer to a crawl, so after a short
// patience their connection is dropped: the broker must then cope with answering a closed connection.
const PARKING_APIS = new Set([ApiKey.Fetch, ApiKey.JoinGroup, ApiKey.SyncGroup]);
const PARKING_PATIENCE_MS = 200;
// Every other API answers at once; one left unanswered this long is a finding (a hung handler).
const PATIENCE_MS = 30_000;
const SENTINEL_CORRELATION = 0x7fff0000;
const sentinel = Buffer.concat(encodeRequestFrame(ApiKey.ApiVersions, 0, SENTINEL_CORRELATION, "fuzz", {}));

/**
 * A fuzz connection: each frame is followed by a sentinel ApiVersions request, so when the sentinel's answer
 * arrives the frame has been fully processed (responses come in order); when the broker closes the
 * connection instead, the frame was rejected. Either way the frame reached a handler or the decoder.
 */
class FuzzConnection {
  constructor() {
    this.socket = undefined;
    this.waiter = undefined;
  }

  connect() {
    stats.connections++;
    return new Promise((resolve) => {
      const socket = createConnection({ host: "127.0.0.1", port: kafkaPort });
      const splitter = new FrameSplitter(64 << 20);
      socket.setNoDelay(true);
      socket.on("error", () => {});
      socket.on("close", () => {
        // A socket dropped earlier (parked, stalled, desynchronised) closes late: its close is not an
        // answer to the frame now waiting on the current socket.
        if (this.socket !== socket) return;
        this.socket = undefined;
        this.settle("closed");
      });
      socket.on("data", (chunk) => {
        let responses;
        try {
          responses = splitter.push(chunk);
        } catch (error) {
          findings.push(`broker sent an unreadable response frame: ${error.message}`);
          socket.destroy();
          return;
        }
        if (this.socket !== socket) return;
        for (const response of responses) {
          if (response.readInt32BE(0) === SENTINEL_CORRELATION) this.settle("answered");
          else stats.responses++;
        }
      });
      socket.once("connect", () => {
        this.socket = socket;
        resolve();
      });
    });
  }

  settle(outcome) {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(outcome);
  }

  async send({ frame, desync, apiKey }) {
    if (!this.socket) await this.connect();
    const socket = this.socket;
    if (desync) {
      // A frame that lies about its size swallows whatever follows: send it and hang up.
      socket.end(frame);
      this.socket = undefined;
      return "desync";
    }
    const outcome = new Promise((resolve) => {
      this.waiter = resolve;
    });
    const parking = PARKING_APIS.has(apiKey);
    const timer = setTimeout(
      () => this.settle(parking ? "parked" : "stalled"),
      parking ? PARKING_PATIENCE_MS : PATIENCE_MS,
    );
    socket.cork();
    socket.write(frame);
    socket.write(sentinel);
    socket.uncork();
    const result = await outcome;
    clearTimeout(timer);
    if (result === "closed") stats.closedByBroker++;
    if (result === "parked") stats.parked++;
    if (result === "stalled") {
      stats.stalled++;
      findings.push(
        `no answer within ${PATIENCE_MS} ms to ${apiDefinitions[apiKey]?.name ?? `API key ${apiKey}`} frame ${frame.toString("hex").slice(0, 2000)}`,
      );
    }
    if (result === "parked" || result === "stalled") {
      socket.destroy();
      this.socket = undefined;
    }
    return result;
  }
}

let correlationId = 1;
async function worker() {
  const connection = new FuzzConnection();
  while (stats.sent < totalFrames && findings.length === 0 && brokerExit === undefined) {
    stats.sent++;
    const next = nextFrame(correlationId++ & 0x3fffffff);
    const sentAt = Date.now();
    const outcome = await connection.send(next);
    // FUZZ_TRACE=1 prints every frame with its outcome, to find what a finding followed.
    if (process.env.FUZZ_TRACE) {
      const name = apiDefinitions[next.apiKey]?.name;
      console.log(
        `[trace] ${sentAt} ${Date.now() - sentAt} ${outcome} ${name} ${next.frame.toString("hex")}`,
      );
    }
  }
  connection.socket?.destroy();
}

// ---- the well-behaved client -------------------------------------------------------------------------

const wellBehaved = await KafkaConnection.connect("127.0.0.1", kafkaPort, { requestTimeoutMs: 30_000 });
let produced = 0;
let wellBehavedRunning = true;
async function wellBehavedClient() {
  while (wellBehavedRunning && findings.length === 0) {
    const batch = encodeRecordBatch({ records: [{ value: `record-${produced}`, timestamp: Date.now() }] });
    const response = await wellBehaved.send(ApiKey.Produce, 7, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 10_000,
      topicData: [{ name: "well-behaved", partitionData: [{ index: 0, records: batch }] }],
    });
    const partition = response.responses[0].partitionResponses[0];
    if (partition.errorCode !== 0 || partition.baseOffset !== BigInt(produced)) {
      findings.push(
        `well-behaved produce #${produced} answered error ${partition.errorCode} at offset ${partition.baseOffset}`,
      );
      return;
    }
    produced++;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function readBackWellBehaved() {
  const values = [];
  let offset = 0n;
  while (values.length < produced) {
    const response = await wellBehaved.send(ApiKey.Fetch, 11, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: 1 << 24,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [
        {
          topic: "well-behaved",
          partitions: [
            {
              partition: 0,
              currentLeaderEpoch: -1,
              fetchOffset: offset,
              lastFetchedEpoch: -1,
              logStartOffset: -1n,
              partitionMaxBytes: 1 << 24,
            },
          ],
        },
      ],
      forgottenTopicsData: [],
      rackId: "",
    });
    const data = response.responses[0].partitions[0];
    if (data.errorCode !== 0) throw new Error(`well-behaved fetch answered error ${data.errorCode}`);
    const batches = sliceBatches(data.records ?? Buffer.alloc(0)).batches;
    if (batches.length === 0) break;
    for (const entry of batches) {
      for (const record of decodeRecordBatch(entry.bytes).records) {
        values.push(record.value.toString());
        offset = record.offset + 1n;
      }
    }
  }
  return values;
}

// ---- run ---------------------------------------------------------------------------------------------

const started = Date.now();
const progress = setInterval(() => {
  const seconds = (Date.now() - started) / 1000;
  log(
    `${stats.sent}/${totalFrames} frames, ${Math.round(stats.sent / seconds)}/s; ${stats.responses} responses, ${stats.closedByBroker} connections closed by the broker, ${stats.parked} parked, ${stats.stalled} stalled; well-behaved client acknowledged ${produced} records`,
  );
}, 5000);
const wellBehavedDone = wellBehavedClient().catch((error) =>
  findings.push(`well-behaved client failed: ${error.message}`),
);
await Promise.race([Promise.all(Array.from({ length: connectionCount }, worker)), brokerExited]);
wellBehavedRunning = false;
await Promise.race([wellBehavedDone, brokerExited]);
clearInterval(progress);

if (brokerExit !== undefined) {
  findings.push(
    `broker exited (code ${brokerExit.code}, signal ${brokerExit.signal}):\n${brokerLines.join("").slice(-4000)}`,
  );
} else {
  try {
    const values = await readBackWellBehaved();
    const expected = Array.from({ length: produced }, (_, index) => `record-${index}`);
    if (JSON.stringify(values) !== JSON.stringify(expected)) {
      findings.push(`well-behaved client read back ${values.length} records, expected ${produced} in order`);
    }
  } catch (error) {
    findings.push(`well-behaved read-back failed: ${error.message}`);
  }
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
log(
  `done in ${seconds} s: ${stats.sent} frames sent, ${stats.responses} responses, ${stats.closedByBroker} connections closed by the broker, ${stats.parked} parked, ${stats.stalled} stalled, ${stats.connections} connections; well-behaved client: ${produced} records acknowledged and read back`,
);

await wellBehaved.close().catch(() => {});
await admin.close().catch(() => {});
if (brokerExit === undefined) {
  broker.kill("SIGTERM");
  const exit = await brokerExited;
  if (exit.code !== 0)
    findings.push(`broker did not shut down cleanly after the run (exit ${exit.code}, ${exit.signal})`);
}
await rm(dataDir, { recursive: true, force: true });
if (findings.length > 0) {
  console.error(
    `[fuzz] FAILED with seed ${seed} (replay: pnpm fuzz --frames ${totalFrames} --seed ${seed}):`,
  );
  for (const finding of findings.slice(0, 20)) console.error(`  - ${finding}`);
  process.exit(1);
}
log("no findings");
