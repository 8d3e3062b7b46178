import { afterEach, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "./harness/broker.js";
import {
  checkGroupDelivery,
  everythingCommitted,
  type MemberEvent,
  type ProducedRecord,
} from "./harness/group-delivery.js";
import { kafkaClient } from "./harness/kafkajs.js";
import { type MemberLine, MemberProcess } from "./harness/member-process.js";

let broker: RunningBroker | undefined;
afterEach(async () => {
  await broker?.cleanup();
  broker = undefined;
});

async function armFault(running: RunningBroker, rule: { api: string; every: number; count: number }) {
  const response = await fetch(`${running.adminUrl}/v1/test/faults`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(rule),
  });
  if (!response.ok) throw new Error(`arming the fault failed: ${response.status} ${await response.text()}`);
}

async function faultStatus(running: RunningBroker): Promise<{ dropped: number }> {
  return (await (await fetch(`${running.adminUrl}/v1/test/faults`)).json()) as { dropped: number };
}

const settings = {
  "group.initial.rebalance.delay.ms": 0,
  "group.min.session.timeout.ms": 1000,
  "offsets.topic.num.partitions": 4,
};

describe("broker SIGKILL in the middle of a group's and a producer's life", () => {
  it("lets consumers resume from their committed offsets: nothing lost, only uncommitted records redone", async () => {
    broker = await startBroker({ settings });
    const topic = "crash-events";
    const kafka = kafkaClient(broker.bootstrap, {
      retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] });
    const producer = kafka.producer();
    await producer.connect();
    const produced: ProducedRecord[] = [];
    const produce = async (count: number) => {
      for (let index = 0; index < count; index++) {
        const [metadata] = await producer.send({
          topic,
          acks: -1,
          messages: [{ value: `v${produced.length}` }],
        });
        produced.push({ partition: metadata!.partition, offset: Number(metadata!.baseOffset) });
      }
    };
    await produce(300);

    const events: MemberEvent[] = [];
    const onLine = (member: string, line: MemberLine) => {
      if (line.event === "processed" || line.event === "committed") {
        events.push({
          kind: line.event,
          member,
          partition: line.partition as number,
          offset: line.offset as number,
        });
      }
    };
    const members = ["a", "b"].map(
      (name) =>
        new MemberProcess(
          name,
          "kafkajs-group-member.mjs",
          {
            member: name,
            bootstrap: broker!.bootstrap,
            groupId: "survivors",
            topic,
            sessionTimeoutMs: 10_000,
            heartbeatIntervalMs: 300,
            processingDelayMs: 5,
          },
          onLine,
        ),
    );
    try {
      const total = () => members.reduce((sum, member) => sum + member.count("processed"), 0);
      await members[0]!.waitFor("100 records processed", () => total() >= 100, 60_000);
      await broker.kill();
      await broker.restart();
      events.push({ kind: "killed", member: "*" });
      await produce(100);
      // Every record processed, and its commit acknowledged, before the members are stopped.
      await members[0]!.waitFor(
        "every record processed and committed after the restart",
        () => checkGroupDelivery(produced, events).lost.length === 0 && everythingCommitted(produced, events),
        90_000,
      );
      for (const member of members) expect(await member.stop()).toBe(0);
      const report = checkGroupDelivery(produced, events);
      expect(report.lost).toEqual([]);
      expect(report.phantom).toEqual([]);
      expect(report.unexplainedDuplicates).toEqual([]);
      const committed = await admin.fetchOffsets({ groupId: "survivors", topics: [topic] });
      const ends = await admin.fetchTopicOffsets(topic);
      expect(
        committed[0]!.partitions.map((partition) => [partition.partition, partition.offset]).sort(),
      ).toEqual(ends.map((partition) => [partition.partition, partition.high]).sort());
    } finally {
      for (const member of members) await member.kill();
      await producer.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
    }
  });

  it("keeps an idempotent producer exactly-once through the crash: producer state is rebuilt from the log", async () => {
    broker = await startBroker({ settings: { ...settings, "test.fault.injection.enable": true } });
    const topic = "crash-idempotent";
    const kafka = kafkaClient(broker.bootstrap, {
      retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const total = 400;
    let sent = 0;
    const sending = (async () => {
      for (; sent < total; sent++) {
        await producer.send({ topic, acks: -1, messages: [{ key: `k${sent % 2}`, value: String(sent) }] });
      }
    })();
    try {
      while (sent < 150) await new Promise((resolve) => setTimeout(resolve, 5));
      // The next batch is appended but its answer never arrives; the broker dies before the client's retry,
      // so only producer state rebuilt from the log (no shutdown snapshot) can recognise that retry.
      await armFault(broker, { api: "Produce", every: 1, count: 1 });
      for (let polls = 0; (await faultStatus(broker)).dropped < 1; polls++) {
        if (polls > 2000) throw new Error("the produce response was never dropped");
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      const appendedBeforeCrash = sent;
      await broker.kill();
      await broker.restart();
      await sending;

      const consumer = kafka.consumer({ groupId: "verify", maxWaitTimeInMs: 100 });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const values: number[] = [];
      await new Promise<void>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message }) => {
            values.push(Number(message.value!.toString()));
            if (values.length >= total) resolve();
          },
        });
      });
      await new Promise((resolve) => setTimeout(resolve, 500)); // anything beyond `total` would be a duplicate
      await consumer.disconnect();
      expect(appendedBeforeCrash).toBeLessThan(total);
      expect(values.length).toBe(total);
      expect([...values].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, index) => index));
    } finally {
      await producer.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
    }
  });
});
