import type { Logger } from "@raftka/monitoring";
import { KafkaStorageError } from "@raftka/storage";
import type { PartitionManager } from "./partition-manager.js";

export interface RetentionPassResult {
  readonly partitionsChecked: number;
  readonly segmentsDeleted: number;
  readonly bytesDeleted: number;
}

/**
 * Applies retention.ms / retention.bytes every `log.retention.check.interval.ms` to partitions of topics
 * whose cleanup.policy includes `delete` (compacted-only topics are left to compaction). Partitions are
 * visited one after another so a pass never floods the disk; passes never overlap.
 */
export class RetentionService {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RetentionPassResult> | undefined;
  private stopped = false;
  /** Partitions whose log failed, already warned about: retention skips them until a restart. */
  private readonly failedLogs = new WeakSet<object>();

  constructor(
    private readonly options: {
      readonly partitions: PartitionManager;
      readonly intervalMs: () => number;
      readonly now: () => number;
      readonly logger: Logger;
    },
  ) {}

  start(): void {
    this.schedule();
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => {});
  }

  /** One pass over every partition now (also what the timer runs). */
  runOnce(): Promise<RetentionPassResult> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * A pass soon, for retention settings that changed: now, or right after the pass under way, which
   * may have visited the changed partitions with the settings before. An operator who lowers
   * retention on a full disk (what the low-disk refusal tells them to do) should not wait for
   * log.retention.check.interval.ms.
   */
  requestPass(): void {
    if (this.stopped) return;
    void (this.running ?? Promise.resolve())
      .catch(() => {})
      .then(() => (this.stopped ? undefined : this.runOnce()))
      .catch((error: unknown) => this.options.logger.error({ err: error }, "retention pass failed"));
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.runOnce()
        .catch((error: unknown) => this.options.logger.error({ err: error }, "retention pass failed"))
        .finally(() => this.schedule());
    }, this.options.intervalMs());
    this.timer.unref();
  }

  private async pass(): Promise<RetentionPassResult> {
    let partitionsChecked = 0;
    let segmentsDeleted = 0;
    let bytesDeleted = 0;
    for (const topic of [...this.options.partitions.hostedTopics()]) {
      if (!topic.settings.cleanupPolicy.includes("delete")) continue;
      for (const log of topic.partitions) {
        if (!log || this.stopped) continue;
        partitionsChecked++;
        try {
          const result = await log.applyRetention(this.options.now());
          if (result.deleted.length === 0) continue;
          const bytes = result.deleted.reduce((sum, segment) => sum + segment.sizeInBytes, 0);
          segmentsDeleted += result.deleted.length;
          bytesDeleted += bytes;
          this.options.logger.info(
            {
              topic: topic.image.name,
              partition: log.topicPartition.partition,
              segments: result.deleted.length,
              bytes,
              reasons: [...new Set(result.deleted.map((segment) => segment.reason))],
              logStartOffset: result.logStartOffset,
            },
            "retention deleted old segments",
          );
        } catch (error) {
          // A failed log deletes nothing until the broker restarts: say so once, not at every pass.
          if (error instanceof KafkaStorageError) {
            if (this.failedLogs.has(log)) continue;
            this.failedLogs.add(log);
            this.options.logger.warn(
              { err: error, topic: topic.image.name, partition: log.topicPartition.partition },
              "retention skips a partition whose log failed, until the broker restarts; free or add disk " +
                "space (or replace the disk), then restart the broker: retention catches up at start",
            );
            continue;
          }
          this.options.logger.warn(
            { err: error, topic: topic.image.name, partition: log.topicPartition.partition },
            "retention could not check a partition; it is retried at the next pass",
          );
        }
      }
    }
    return { partitionsChecked, segmentsDeleted, bytesDeleted };
  }
}
