import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  FlushScheduler,
  KafkaStorageError,
  type LogEvent,
  PartitionLog,
  type SyncableFile,
} from "../src/index.js";
import { makeBatch, records, withTempDir } from "./helpers.js";

/** A syncFile hook that records calls and can hold fsyncs until the test releases them. */
class SyncRecorder {
  readonly synced: string[] = [];
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  private waiters: (() => void)[] = [];
  failWith: Error | undefined;

  hold(): void {
    this.gate = new Promise((resolve) => {
      this.openGate = resolve;
    });
  }

  release(): void {
    this.openGate?.();
    this.gate = undefined;
  }

  /** Resolves once at least `count` fsyncs have started. */
  async started(count: number): Promise<void> {
    while (this.synced.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  readonly syncFile = async (file: SyncableFile): Promise<void> => {
    this.synced.push(file.path);
    for (const waiter of this.waiters.splice(0)) waiter();
    if (this.gate) await this.gate;
    if (this.failWith) throw this.failWith;
    await file.handle?.datasync();
  };
}

const append = (log: PartitionLog, prefix: string, count = 1) =>
  log.append(makeBatch(records(prefix, count)), { assignOffsets: true, leaderEpoch: 0 });

describe("group-committed flushing", () => {
  it("fsyncs each dirty file once when many logs flush at the same moment", async () => {
    await withTempDir(async (directory) => {
      const recorder = new SyncRecorder();
      const scheduler = new FlushScheduler({ syncFile: recorder.syncFile });
      const logs = await Promise.all(
        Array.from({ length: 20 }, (_, index) =>
          PartitionLog.open(join(directory, `p${index}`), { flushScheduler: scheduler }),
        ),
      );
      await Promise.all(logs.map((log, index) => append(log, `l${index}`, 3)));
      const roundsBefore = scheduler.stats.rounds;
      const flushed = await Promise.all(logs.flatMap((log) => [log.flush(), log.flush()]));
      expect(scheduler.stats.rounds - roundsBefore).toBe(1);
      expect(recorder.synced.sort()).toEqual(
        logs.map((log) => join(log.directory, "00000000000000000000.log")).sort(),
      );
      expect(flushed.every((offset) => offset === 3)).toBe(true);
      expect(logs.every((log) => log.flushedOffset === 3)).toBe(true);

      // Nothing dirty: a flush costs no fsync.
      await Promise.all(logs.map((log) => log.flush()));
      expect(recorder.synced).toHaveLength(20);
      await Promise.all(logs.map((log) => log.close()));
    });
  });

  it("collects requests that arrive during a round into exactly one next round", async () => {
    await withTempDir(async (directory) => {
      const recorder = new SyncRecorder();
      const scheduler = new FlushScheduler({ syncFile: recorder.syncFile });
      const logs = await Promise.all(
        Array.from({ length: 5 }, (_, index) =>
          PartitionLog.open(join(directory, `q${index}`), { flushScheduler: scheduler }),
        ),
      );
      await append(logs[0]!, "first");
      recorder.hold();
      const firstRound = logs[0]!.flush();
      await recorder.started(1);
      // While that fsync is in progress, every log appends and asks for a flush.
      await Promise.all(logs.map((log) => append(log, "second", 2)));
      let secondDone = false;
      const second = Promise.all(logs.map((log) => log.flush())).then(() => {
        secondDone = true;
      });
      expect(logs[0]!.flushedOffset).toBe(0);
      recorder.release();
      await firstRound;
      expect(logs[0]!.flushedOffset).toBe(1);
      await second;
      expect(secondDone).toBe(true);
      expect(scheduler.stats.rounds).toBe(2);
      expect(recorder.synced).toHaveLength(6);
      expect(logs.map((log) => log.flushedOffset)).toEqual([3, 2, 2, 2, 2]);
      await Promise.all(logs.map((log) => log.close()));
    });
  });

  it("answers a log once its own fsync is done, not after a slower log's in the same round", async () => {
    await withTempDir(async (directory) => {
      let releaseSlow: (() => void) | undefined;
      const slowGate = new Promise<void>((resolve) => {
        releaseSlow = resolve;
      });
      const slowDirectory = join(directory, "slow");
      const recorder = new SyncRecorder();
      const scheduler = new FlushScheduler({
        syncFile: async (file) => {
          if (file.path.startsWith(slowDirectory)) await slowGate;
          await recorder.syncFile(file);
        },
      });
      const slow = await PartitionLog.open(slowDirectory, { flushScheduler: scheduler });
      const fast = await PartitionLog.open(join(directory, "fast"), { flushScheduler: scheduler });
      await append(slow, "slow", 2);
      await append(fast, "fast", 3);
      let slowFlushed = false;
      const slowFlush = slow.flush().then(() => {
        slowFlushed = true;
      });
      expect(await fast.flush()).toBe(3);
      expect(scheduler.stats.rounds).toBe(1);
      expect(slowFlushed).toBe(false);
      expect(slow.flushedOffset).toBe(0);

      // The next flush still waits for the round to end, so busy logs' fsyncs stay together.
      await append(fast, "fast-again", 1);
      const fastAgain = fast.flush();
      releaseSlow!();
      await slowFlush;
      expect(slow.flushedOffset).toBe(2);
      expect(await fastAgain).toBe(4);
      expect(scheduler.stats.rounds).toBe(2);
      await Promise.all([slow.close(), fast.close()]);
    });
  });

  it("starts an urgent flush while a round runs; a lazy one waits for the round, a syncing log for its fsync", async () => {
    await withTempDir(async (directory) => {
      let releaseSlow: (() => void) | undefined;
      const slowGate = new Promise<void>((resolve) => {
        releaseSlow = resolve;
      });
      const slowDirectory = join(directory, "slow");
      const slowSyncs: string[] = [];
      const scheduler = new FlushScheduler({
        syncFile: async (file) => {
          if (file.path.startsWith(slowDirectory)) {
            slowSyncs.push(file.path);
            await slowGate;
          }
          await file.handle?.datasync();
        },
      });
      const slow = await PartitionLog.open(slowDirectory, { flushScheduler: scheduler });
      const urgent = await PartitionLog.open(join(directory, "urgent"), { flushScheduler: scheduler });
      const lazy = await PartitionLog.open(join(directory, "lazy"), { flushScheduler: scheduler });
      await append(slow, "slow", 2);
      const slowFlush = slow.flush();
      while (slowSyncs.length < 1) await new Promise((resolve) => setImmediate(resolve));

      await append(urgent, "urgent", 3);
      await append(lazy, "lazy", 4);
      await append(slow, "slow-again", 1);
      let lazyFlushed = false;
      const lazyFlush = lazy.flush().then((offset) => {
        lazyFlushed = true;
        return offset;
      });
      let slowAgainFlushed = false;
      const slowAgain = slow.flush({ urgent: true }).then((offset) => {
        slowAgainFlushed = true;
        return offset;
      });
      // The urgent log's fsync does not wait for the slow one that holds the running round.
      expect(await urgent.flush({ urgent: true })).toBe(3);
      expect(lazyFlushed).toBe(false);
      expect(lazy.flushedOffset).toBe(0);
      // An urgent flush of a log whose own fsync runs starts only after it: one fsync of it so far.
      expect(slowAgainFlushed).toBe(false);
      expect(slowSyncs).toHaveLength(1);

      releaseSlow!();
      expect(await slowFlush).toBe(2);
      expect(await slowAgain).toBe(3);
      expect(await lazyFlush).toBe(4);
      expect(slowSyncs).toHaveLength(2);
      // The urgent log's, and the slow log's second: it starts as its first fsync ends, before the
      // round around that fsync has handed over to the lazy one.
      expect(scheduler.stats.urgentFlushes).toBe(2);
      await Promise.all([slow.close(), urgent.close(), lazy.close()]);
    });
  });

  it("starts an urgent flush's fsync before callbacks already queued; a lazy one waits for the round", async () => {
    await withTempDir(async (directory) => {
      const events: string[] = [];
      let releaseSlow: (() => void) | undefined;
      const slowGate = new Promise<void>((resolve) => {
        releaseSlow = resolve;
      });
      const slowDirectory = join(directory, "slow");
      const scheduler = new FlushScheduler({
        syncFile: async (file) => {
          if (file.path.endsWith(".log"))
            events.push(`fsync ${file.path.slice(directory.length + 1).split("/")[0]}`);
          if (file.path.startsWith(slowDirectory)) await slowGate;
          await file.handle?.datasync();
        },
      });
      const slow = await PartitionLog.open(slowDirectory, { flushScheduler: scheduler });
      const urgent = await PartitionLog.open(join(directory, "urgent"), { flushScheduler: scheduler });
      const lazy = await PartitionLog.open(join(directory, "lazy"), { flushScheduler: scheduler });
      await append(slow, "slow", 1);
      await append(urgent, "urgent", 1);
      await append(lazy, "lazy", 1);

      // A callback already queued (as other sockets' reads are in the broker) runs after the fsync
      // started. With no round running, an urgent request's round starts at once too.
      setImmediate(() => events.push("next callback"));
      const slowFlush = slow.flush({ urgent: true });
      await new Promise((resolve) => setImmediate(resolve));
      expect(events).toEqual(["fsync slow", "next callback"]);

      // While the slow log holds that round: urgent goes now, lazy waits for the round.
      setImmediate(() => events.push("next callback"));
      const urgentFlush = urgent.flush({ urgent: true });
      const lazyFlush = lazy.flush();
      await new Promise((resolve) => setImmediate(resolve));
      expect(events).toEqual(["fsync slow", "next callback", "fsync urgent", "next callback"]);
      expect(await urgentFlush).toBe(1);

      releaseSlow!();
      expect(await slowFlush).toBe(1);
      expect(await lazyFlush).toBe(1);
      expect(events.at(-1)).toBe("fsync lazy");
      await Promise.all([slow.close(), urgent.close(), lazy.close()]);
    });
  });

  it("acknowledges flushBeforeAck appends only after their fsync", async () => {
    await withTempDir(async (directory) => {
      const recorder = new SyncRecorder();
      const scheduler = new FlushScheduler({ syncFile: recorder.syncFile });
      const log = await PartitionLog.open(directory, {
        flushScheduler: scheduler,
        config: { flushBeforeAck: true },
      });
      recorder.hold();
      let acknowledged = false;
      const appended = append(log, "durable", 2).then((result) => {
        acknowledged = true;
        return result;
      });
      await recorder.started(1);
      expect(acknowledged).toBe(false);
      recorder.release();
      expect((await appended).nextOffset).toBe(2);
      expect(log.flushedOffset).toBe(2);
      // Per-append override: an acks=1 style append does not wait.
      recorder.hold();
      const fast = await log.append(makeBatch(records("fast", 1)), {
        assignOffsets: true,
        leaderEpoch: 0,
        waitForFlush: false,
      });
      expect(fast.firstOffset).toBe(2);
      recorder.release();
      await log.close();
    });
  });

  it("reports a rolled segment as durable once its fsync completed, ready for upload", async () => {
    await withTempDir(async (directory) => {
      const recorder = new SyncRecorder();
      const scheduler = new FlushScheduler({ syncFile: recorder.syncFile });
      const events: LogEvent[] = [];
      const log = await PartitionLog.open(directory, {
        flushScheduler: scheduler,
        config: { segmentBytes: 300 },
        onEvent: (event) => events.push(event),
      });
      recorder.hold();
      for (let index = 0; index < 4; index += 1) await append(log, `roll${index}`, 2);
      const rolled = events.filter((event) => event.type === "segment-rolled");
      expect(rolled.length).toBeGreaterThan(0);
      expect(events.some((event) => event.type === "segment-durable")).toBe(false);
      expect(log.segmentInfos()[0]!.durable).toBe(false);
      recorder.release();
      await log.flush();
      const durable = events.filter((event) => event.type === "segment-durable");
      expect(
        durable.map((event) => (event as { segment: { baseOffset: number } }).segment.baseOffset),
      ).toContain(0);
      expect(durable.every((event) => (event as { segment: { durable: boolean } }).segment.durable)).toBe(
        true,
      );
      // The closed segment's log and both indexes were fsynced, plus the directory for the new file.
      expect(recorder.synced).toEqual(
        expect.arrayContaining([
          join(directory, "00000000000000000000.log"),
          join(directory, "00000000000000000000.index"),
          join(directory, "00000000000000000000.timeindex"),
          directory,
        ]),
      );
      expect(log.segmentInfos()[0]!.durable).toBe(true);
      await log.close();
    });
  });

  it("flushes on its own after flush.messages records", async () => {
    await withTempDir(async (directory) => {
      const recorder = new SyncRecorder();
      const scheduler = new FlushScheduler({ syncFile: recorder.syncFile });
      const log = await PartitionLog.open(directory, {
        flushScheduler: scheduler,
        config: { flushMessages: 5 },
      });
      await append(log, "a", 2);
      await append(log, "b", 2);
      expect(scheduler.stats.flushRequests).toBe(0);
      await append(log, "c", 1);
      await recorder.started(1);
      expect(scheduler.stats.flushRequests).toBe(1);
      await log.close();
    });
  });

  it("flushes data older than flush.ms when due", async () => {
    await withTempDir(async (directory) => {
      let now = 50_000;
      const recorder = new SyncRecorder();
      const scheduler = new FlushScheduler({ syncFile: recorder.syncFile, now: () => now });
      const log = await PartitionLog.open(directory, {
        flushScheduler: scheduler,
        config: { flushMs: 1000 },
      });
      await append(log, "timed");
      now += 999;
      expect(scheduler.flushDue()).toBe(0);
      now += 1;
      expect(scheduler.flushDue()).toBe(1);
      await recorder.started(1);
      await log.flush();
      expect(log.flushedOffset).toBe(1);
      scheduler.close();
      await log.close();
    });
  });

  it("tells its observer how long each successful fsync took, and nothing for a failed one", async () => {
    await withTempDir(async (directory) => {
      const observed: number[] = [];
      let slowPath: string | undefined;
      let failPath: string | undefined;
      const scheduler = new FlushScheduler({
        syncFile: async (file) => {
          if (file.path === failPath) throw Object.assign(new Error("input/output error"), { code: "EIO" });
          // The slow file waits 40 ms; the quick one returns at once, so its time says fsyncs are timed one by one.
          if (file.path === slowPath) {
            await new Promise((resolve) => setTimeout(resolve, 40));
            await file.handle?.datasync();
          }
        },
        observeSync: (seconds) => observed.push(seconds),
      });
      const slow = await PartitionLog.open(join(directory, "slow"), { flushScheduler: scheduler });
      const quick = await PartitionLog.open(join(directory, "quick"), { flushScheduler: scheduler });
      slowPath = join(slow.directory, "00000000000000000000.log");
      await Promise.all([append(slow, "slow"), append(quick, "quick")]);
      await Promise.all([slow.flush(), quick.flush()]);
      expect(observed).toHaveLength(2);
      // One duration per file, in seconds: the slow file's includes its 40 ms, the quick one's does not.
      expect(Math.max(...observed)).toBeGreaterThanOrEqual(0.035);
      expect(Math.min(...observed)).toBeLessThan(0.02);

      failPath = join(quick.directory, "00000000000000000000.log");
      await append(quick, "fails");
      await expect(quick.flush()).rejects.toBeInstanceOf(KafkaStorageError);
      expect(observed).toHaveLength(2);
      await Promise.all([slow.close(), quick.close()]);
    });
  });

  it("tells its observer how long each flush request waited for its fsyncs to start, and whether it was urgent", async () => {
    await withTempDir(async (directory) => {
      const waits: number[] = [];
      const urgencies: boolean[] = [];
      let slowPath: string | undefined;
      const scheduler = new FlushScheduler({
        syncFile: async (file) => {
          if (file.path === slowPath) await new Promise((resolve) => setTimeout(resolve, 60));
        },
        observeWait: (seconds, urgent) => {
          waits.push(seconds);
          urgencies.push(urgent);
        },
      });
      const slow = await PartitionLog.open(join(directory, "slow"), { flushScheduler: scheduler });
      const quick = await PartitionLog.open(join(directory, "quick"), { flushScheduler: scheduler });
      slowPath = join(slow.directory, "00000000000000000000.log");
      await append(slow, "slow");
      // An idle scheduler starts a round on the next turn of the event loop.
      const slowFlush = slow.flush();
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(waits).toHaveLength(1);
      expect(waits[0]).toBeLessThan(0.01);
      // Asked while the slow round runs: its fsync starts only when that round ends, about 50 ms later.
      await append(quick, "quick");
      await quick.flush();
      expect(waits).toHaveLength(2);
      expect(waits[1]).toBeGreaterThanOrEqual(0.035);
      // An urgent request does not wait for the round: it is told so, with a short wait.
      const slowAgain = (async () => {
        await append(slow, "slow-again");
        return slow.flush();
      })();
      while (waits.length < 3) await new Promise((resolve) => setTimeout(resolve, 1));
      await append(quick, "urgent");
      await quick.flush({ urgent: true });
      expect(waits).toHaveLength(4);
      expect(waits[3]).toBeLessThan(0.02);
      expect(urgencies).toEqual([false, false, false, true]);
      await Promise.all([slowFlush, slowAgain]);
      await Promise.all([slow.close(), quick.close()]);
    });
  });

  it("stops accepting writes after a failed fsync and says what to do", async () => {
    await withTempDir(async (directory) => {
      const recorder = new SyncRecorder();
      const scheduler = new FlushScheduler({ syncFile: recorder.syncFile });
      const log = await PartitionLog.open(directory, { flushScheduler: scheduler });
      await append(log, "before");
      recorder.failWith = Object.assign(new Error("input/output error"), { code: "EIO" });
      const failure = await log.flush().catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(KafkaStorageError);
      expect((failure as Error).message).toMatch(/EIO.*restart the broker/s);
      expect(log.flushedOffset).toBe(0);
      await expect(append(log, "after")).rejects.toBeInstanceOf(KafkaStorageError);
      // Reads of what was written still work.
      expect((await log.read(0, 100)).nextOffset).toBe(1);
      await log.close();
      const reopened = await PartitionLog.open(directory, { flushScheduler: new FlushScheduler() });
      expect(reopened.recoveryReport.cleanShutdown).toBe(false);
      expect(reopened.logEndOffset).toBe(1);
      await reopened.close();
    });
  });
});
