import type { Producer } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBroker, startBroker } from "./harness/broker.js";
import {
  checkGroupDelivery,
  everythingCommitted,
  type MemberEvent,
  type ProducedRecord,
} from "./harness/group-delivery.js";
import { kafkaClient } from "./harness/kafkajs.js";
import { type MemberLine, MemberProcess } from "./harness/member-process.js";

let broker: RunningBroker;

beforeAll(async () => {
  broker = await startBroker({
    settings: {
      "group.initial.rebalance.delay.ms": 0,
      // Short sessions so a killed member is noticed within seconds.
      "group.min.session.timeout.ms": 1000,
      "offsets.topic.num.partitions": 4,
    },
  });
});

afterAll(async () => {
  await broker?.cleanup();
});

/** Produces one record at a time (acks=all) until stopped, remembering where each one landed. */
class SteadyProducer {
  readonly produced: ProducedRecord[] = [];
  private running = true;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
  ) {}

  start(): void {
    this.loop = (async () => {
      for (let sequence = 0; this.running; sequence++) {
        const [metadata] = await this.producer.send({
          topic: this.topic,
          acks: -1,
          messages: [{ key: `key-${sequence}`, value: `value-${sequence}` }],
        });
        this.produced.push({ partition: metadata!.partition, offset: Number(metadata!.baseOffset) });
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

describe("kafkajs consumer groups of member processes", () => {
  it("loses nothing across joins, graceful leaves and a SIGKILL, and duplicates only a killed member's uncommitted records", async () => {
    const topic = "group-events";
    const kafka = kafkaClient(broker.bootstrap);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 6 }] });
    const producer = kafka.producer();
    await producer.connect();
    const steady = new SteadyProducer(producer, topic);
    steady.start();

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
    const members = new Map<string, MemberProcess>();
    const startMember = (name: string, processingDelayMs = 0) => {
      const member = new MemberProcess(
        name,
        "kafkajs-group-member.mjs",
        {
          member: name,
          bootstrap: broker.bootstrap,
          groupId: "delivery",
          topic,
          sessionTimeoutMs: 3000,
          rebalanceTimeoutMs: 10_000,
          heartbeatIntervalMs: 300,
          processingDelayMs,
        },
        onLine,
      );
      members.set(name, member);
      return member;
    };
    const processedSince = (member: MemberProcess, mark: number) => () => member.count("processed") >= mark;
    try {
      const a = startMember("a");
      await a.waitFor("a to consume", processedSince(a, 20));
      const b = startMember("b");
      await b.waitFor("b to get partitions", processedSince(b, 20));
      // c works on each record for a while before committing it, so the SIGKILL below most likely
      // lands between processing and commit: that record is then processed again, and must be explained.
      const c = startMember("c", 100);
      await c.waitFor("c to get partitions", processedSince(c, 20));
      expect(a.count("joined")).toBeGreaterThanOrEqual(3); // a rebalanced for b and for c

      // Graceful leave: b commits synchronously and sends LeaveGroup.
      expect(await b.stop()).toBe(0);
      let markA = a.count("processed");
      const markC = c.count("processed");
      await a.waitFor("a to go on after b left", processedSince(a, markA + 20));
      await c.waitFor("c to go on after b left", processedSince(c, markC + 20));

      // A crash: c gets no chance to commit or leave; its session times out.
      await c.kill();
      events.push({ kind: "killed", member: "c" });
      markA = a.count("processed");
      await a.waitFor("a to take over c's partitions", () => {
        const partitions = new Set(
          a.lines
            .slice(markA)
            .filter((line) => line.event === "processed")
            .map((line) => line.partition),
        );
        return partitions.size === 6;
      });

      const d = startMember("d");
      await d.waitFor("d to get partitions", processedSince(d, 20));

      await steady.stop();
      const expected = steady.produced.length;
      await a.waitFor(
        "every produced record to be processed and committed",
        () =>
          checkGroupDelivery(steady.produced, events).lost.length === 0 &&
          everythingCommitted(steady.produced, events),
        60_000,
      );
      expect(await a.stop()).toBe(0);
      expect(await d.stop()).toBe(0);

      const report = checkGroupDelivery(steady.produced, events);
      expect(report.lost).toEqual([]);
      expect(report.phantom).toEqual([]);
      expect(report.unexplainedDuplicates).toEqual([]);
      // c committed every record before taking the next: at most one per partition it held is redone.
      expect(report.explainedDuplicates).toBeLessThanOrEqual(6);
      expect(report.processedRecords).toBe(expected);

      // The committed offsets end exactly at the end of every partition.
      const committed = await admin.fetchOffsets({ groupId: "delivery", topics: [topic] });
      const ends = await admin.fetchTopicOffsets(topic);
      expect(
        committed[0]!.partitions.map((partition) => [partition.partition, partition.offset]).sort(),
      ).toEqual(ends.map((partition) => [partition.partition, partition.high]).sort());
    } finally {
      await steady.stop();
      for (const member of members.values()) await member.kill();
      await producer.disconnect();
      await admin.disconnect();
    }
  });
});
