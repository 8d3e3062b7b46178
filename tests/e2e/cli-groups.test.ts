import { spawn } from "node:child_process";
import type { Consumer, Kafka } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, raftkaMain, startBroker } from "./harness/broker.js";
import { kafkaClient } from "./harness/kafkajs.js";

// `raftka group ...` and `topic consume --group` as processes against a broker with consumer groups.
let broker: RunningBroker;
let kafka: Kafka;

const TOPIC = "billing";
const RECORDS = 60;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function environment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith("RAFTKA_")) env[name] = value;
  }
  return env;
}

function raftka(args: readonly string[], input = ""): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [raftkaMain, ...args, "--brokers", broker.bootstrap], {
      env: environment(),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

interface DescribedGroup {
  group: string;
  state: string;
  totalLag: number;
  members: { memberId: string; clientId: string }[];
  offsets: {
    topic: string;
    partition: number;
    committedOffset: number;
    logEndOffset: number;
    lag: number;
    memberId: string | null;
  }[];
}

async function describeGroup(group: string): Promise<DescribedGroup> {
  const run = await raftka(["group", "describe", group, "--format", "json"]);
  expect(run.code, run.stderr).toBe(0);
  return (JSON.parse(run.stdout) as DescribedGroup[])[0]!;
}

beforeAll(async () => {
  broker = await startBroker({ settings: { "group.initial.rebalance.delay.ms": 0 } });
  kafka = kafkaClient(broker.bootstrap);
  expect((await raftka(["topic", "create", TOPIC, "-p", "3"])).code).toBe(0);
  // Keyed, so the records spread over all three partitions.
  const lines = Array.from({ length: RECORDS }, (_, index) => `customer-${index}:invoice ${index}`).join(
    "\n",
  );
  expect((await raftka(["topic", "produce", TOPIC, "-K", ":"], lines)).code).toBe(0);
});

afterAll(async () => {
  await broker?.cleanup();
});

describe("raftka group commands against a broker process", () => {
  it("consumes with --group, committing what it printed, and describe shows offsets and lag", async () => {
    const first = await raftka(["topic", "consume", TOPIC, "--group", "audit", "-n", "40"]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.split("\n").filter((line) => line !== "")).toHaveLength(40);

    const group = await describeGroup("audit");
    expect(group.state).toBe("Empty");
    expect(group.offsets.map((entry) => entry.partition)).toEqual([0, 1, 2]);
    expect(group.offsets.reduce((sum, entry) => sum + entry.committedOffset, 0)).toBe(40);
    expect(group.offsets.reduce((sum, entry) => sum + entry.logEndOffset, 0)).toBe(RECORDS);
    expect(group.totalLag).toBe(RECORDS - 40);

    const table = await raftka(["group", "describe", "audit"]);
    expect(table.stdout).toMatch(/total lag\s+20/);
    expect(table.stdout).toMatch(/^TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+LOG-END-OFFSET\s+LAG/m);
  });

  it("resumes from the committed offsets, reading each remaining record once", async () => {
    const rest = await raftka(["topic", "consume", TOPIC, "--group", "audit", "-e"]);
    expect(rest.code, rest.stderr).toBe(0);
    expect(rest.stdout.split("\n").filter((line) => line !== "")).toHaveLength(RECORDS - 40);
    expect((await describeGroup("audit")).totalLag).toBe(0);
  });

  it("says a group that does not exist does not, exit 1", async () => {
    const run = await raftka(["group", "describe", "no-such-group"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('group "no-such-group" does not exist');
  });

  it("still describes the groups that exist when one of those named does not, exit 1", async () => {
    const run = await raftka(["group", "describe", "audit", "no-such-group"]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^group\s+audit$/m);
    expect(run.stderr).toContain('group "no-such-group" does not exist');
  });

  it("lists groups with their state", async () => {
    const run = await raftka(["group", "list"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^audit\s+Empty/m);
  });

  it("seeks a group without members, with a dry run first", async () => {
    const dryRun = await raftka([
      "group",
      "seek",
      "audit",
      "--to",
      "beginning",
      "--dry-run",
      "--format",
      "json",
    ]);
    expect(dryRun.code, dryRun.stderr).toBe(0);
    const plan = JSON.parse(dryRun.stdout) as {
      offsets: { partition: number; previousOffset: number; offset: number }[];
    };
    expect(plan.offsets.every((entry) => entry.offset === 0)).toBe(true);
    expect(plan.offsets.reduce((sum, entry) => sum + entry.previousOffset, 0)).toBe(RECORDS);
    expect((await describeGroup("audit")).totalLag).toBe(0);

    expect((await raftka(["group", "seek", "audit", "--to", "beginning"])).code).toBe(0);
    expect((await describeGroup("audit")).totalLag).toBe(RECORDS);

    const one = await raftka(["group", "seek", "audit", "--to", "end", "-t", TOPIC, "-p", "1"]);
    expect(one.code, one.stderr).toBe(0);
    const after = await describeGroup("audit");
    expect(after.offsets.find((entry) => entry.partition === 1)!.lag).toBe(0);
    expect(after.offsets.find((entry) => entry.partition === 0)!.committedOffset).toBe(0);

    // An offset past the log end goes to the end, as Kafka's reset tool does: the group skips nothing.
    const far = await raftka(["group", "seek", "audit", "--to", "999999", "-t", TOPIC, "-p", "0"]);
    expect(far.code, far.stderr).toBe(0);
    const clamped = (await describeGroup("audit")).offsets.find((entry) => entry.partition === 0)!;
    expect(clamped.lag).toBe(0);
    expect(clamped.committedOffset).toBeLessThan(999999);
  });

  it("shows offsets reset to earliest (-2, as kafkajs' resetOffsets commits them) with the lag they mean", async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.resetOffsets({ groupId: "reset-to-earliest", topic: TOPIC, earliest: true });
    } finally {
      await admin.disconnect();
    }
    const group = await describeGroup("reset-to-earliest");
    expect(group.offsets.map((entry) => entry.committedOffset)).toEqual([-2, -2, -2]);
    // The consumer will read every record from the log start: all of them are lag.
    expect(group.totalLag).toBe(RECORDS);
    const table = await raftka(["group", "describe", "reset-to-earliest"]);
    expect(table.stdout).toMatch(/^billing\s+0\s+earliest \(-2\)\s+\d+\s+\d+/m);

    const seek = await raftka(["group", "seek", "reset-to-earliest", "--to", "end", "--dry-run"]);
    expect(seek.code, seek.stderr).toBe(0);
    expect(seek.stdout).toMatch(/would move to these offsets:\n/);
    expect(seek.stdout).toMatch(/earliest \(-2\)/);
  });

  describe("with an active kafkajs consumer in the group", () => {
    let consumer: Consumer;
    const seen: string[] = [];

    beforeAll(async () => {
      consumer = kafka.consumer({ groupId: "live", sessionTimeout: 10_000, heartbeatInterval: 500 });
      await consumer.connect();
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
      await consumer.run({
        autoCommitInterval: 100,
        eachMessage: async ({ message }) => {
          seen.push(message.value!.toString());
        },
      });
      const deadline = Date.now() + 30_000;
      while (seen.length < RECORDS && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 100));
      expect(seen).toHaveLength(RECORDS);
    });

    afterAll(async () => {
      await consumer?.disconnect();
    });

    it("describes its member and which partitions it owns", async () => {
      await expect.poll(async () => (await describeGroup("live")).totalLag, { timeout: 30_000 }).toBe(0);
      const group = await describeGroup("live");
      expect(group.state).toBe("Stable");
      expect(group.members).toHaveLength(1);
      expect(group.members[0]!.clientId).toBe("raftka-e2e");
      expect(group.offsets).toHaveLength(3);
      expect(group.offsets.every((entry) => entry.memberId === group.members[0]!.memberId)).toBe(true);
    });

    it("refuses to seek or delete while the consumer is active, saying what to do", async () => {
      const seek = await raftka(["group", "seek", "live", "--to", "beginning"]);
      expect(seek.code).toBe(1);
      expect(seek.stderr).toContain('group "live" is Stable with 1 member(s); stop its consumers first');
      const deleted = await raftka(["group", "delete", "live"]);
      expect(deleted.code).toBe(1);
      expect(deleted.stdout).toContain("NON_EMPTY_GROUP");
    });

    it("deletes the group once its consumer has left", async () => {
      await consumer.disconnect();
      await expect.poll(async () => (await describeGroup("live")).state, { timeout: 30_000 }).toBe("Empty");
      const deleted = await raftka(["group", "delete", "live"]);
      expect(deleted.code, deleted.stdout).toBe(0);
      expect(deleted.stdout).toMatch(/live\s+deleted/);
      expect((await raftka(["group", "list"])).stdout).not.toMatch(/^live\s/m);
    });
  });
});
