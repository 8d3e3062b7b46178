import { randomUUID } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger, LogStatsProvider, PartitionLogStats, RaftkaConfig } from "@raftka/monitoring";
import type { DirectReads, DirectWrites, FlushScheduler, LogEvent } from "@raftka/storage";
import type { MetadataDelta, MetadataImage, PartitionImage, TopicImage } from "../metadata/image.js";
import { METADATA_TOPIC } from "../metadata/topic-names.js";
import { logConfigFor } from "./log-config.js";
import type { LogFailures } from "./log-failures.js";
import { openReplicatedLog } from "./open-replicated-log.js";
import type { RaftGroups } from "./raft-groups.js";
import { RaftReplicatedLog } from "./raft-replicated-log.js";
import { logRecoveryReport } from "./recovery-report-log.js";
import type { ReplicatedLog } from "./replicated-log.js";
import { resolveTopicSettings, type TopicSettings } from "./topic-settings.js";

/** A topic as the request handlers see it on this node: its metadata, settings and open partition logs. */
export interface HostedTopic {
  readonly image: TopicImage;
  readonly settings: TopicSettings;
  /** Indexed by partition; undefined for partitions this node does not host. */
  readonly partitions: readonly (ReplicatedLog | undefined)[];
}

export interface PartitionManagerOptions {
  readonly nodeId: number;
  readonly logDirs: readonly string[];
  readonly config: RaftkaConfig;
  readonly flushScheduler: FlushScheduler;
  /** Lets large appends bypass the page cache (log.direct.io.enable); without it, none do. */
  readonly directWrites?: DirectWrites;
  /** Lets reads of data not in the page cache bypass it (log.direct.reads.enable); without it, none do. */
  readonly directReads?: DirectReads;
  readonly now: () => number;
  readonly logger: Logger;
  /** How many partition logs are opened (recovered) at once at start-up. */
  readonly openConcurrency?: number;
  /** Every partition is a Raft group on this host; without it, partitions are LocalReplicatedLogs. */
  readonly raft?: RaftGroups;
  /** Seconds from a Raft proposal to its commit. */
  readonly observeCommitLatency?: (seconds: number) => void;
  /**
   * Whether a log directory refuses Produce for lack of space (log.dir.min.free.bytes): new partitions
   * go to the others while one of them has room.
   */
  readonly refusesProduce?: (logDir: string) => boolean;
  /**
   * Whether the disk of the partition kept in `partitionDirectory` can spare `bytes` for blocks reserved
   * ahead of appends (log.preallocate); when it answers true they count as taken.
   */
  readonly mayReserve?: (partitionDirectory: string, bytes: number) => boolean;
  /** Where a partition log that fails a write or fsync is recorded (it refuses writes until a restart). */
  readonly logFailures?: LogFailures;
}

const PARTITION_DIRECTORY = /^(.+)-(\d+)$/;
const DELETE_SUFFIX = "-delete";
const STRAY_SUFFIX = "-stray";
/** Longest file name (bytes) ext4, XFS and most other file systems allow. */
const MAX_FILE_NAME_BYTES = 255;

/**
 * The name a partition directory is renamed to: `<topic>-<partition><tag>`, the topic name cut short when
 * the whole would exceed the file system's name limit (as Kafka does), since a topic name may take 249 of
 * the 255 bytes. `tag` must make the name unique on its own (a topic id, a random id).
 */
function renamedPartitionDirectory(topic: string, partition: number, tag: string): string {
  const suffix = `-${partition}${tag}`;
  return `${topic.slice(0, MAX_FILE_NAME_BYTES - Buffer.byteLength(suffix))}${suffix}`;
}

interface MutableTopic {
  image: TopicImage;
  settings: TopicSettings;
  partitions: (ReplicatedLog | undefined)[];
}

/**
 * Owns the partition logs this node hosts and keeps them in step with the metadata image: opens new
 * partitions, closes and deletes removed topics, and applies config changes. Also the log metrics provider.
 */
export class PartitionManager implements LogStatsProvider {
  private readonly topics = new Map<string, MutableTopic>();
  /** Where each existing partition directory lives, found at start-up (several log.dirs). */
  private readonly existingDirectories = new Map<string, string>();
  /** The topic id each existing partition directory's partition.metadata named at the start-up scan. */
  private readonly scannedTopicIds = new Map<string, string>();
  private readonly partitionsPerDirectory = new Map<string, number>();
  private readonly pendingDeletions = new Set<Promise<void>>();
  /** User topics already warned about that ask for compaction (cleared once they no longer do). */
  private readonly warnedCompaction = new Set<string>();
  private readonly topicDeletedListeners = new Set<(topic: string) => void>();
  private readonly partitionsRemovedListeners = new Set<(logs: readonly ReplicatedLog[]) => void>();
  private readonly partitionsOpenedListeners = new Set<
    (topic: TopicImage, logs: readonly ReplicatedLog[]) => void
  >();
  /** Raft logs opened whose election (and first commit) has not been awaited yet. */
  private readonly electing: Promise<void>[] = [];
  /** Raft group of each hosted partition, by directory name, to forget its Raft state when deleted. */
  private readonly groups = new Map<string, number>();

  constructor(private readonly options: PartitionManagerOptions) {
    for (const dir of options.logDirs) this.partitionsPerDirectory.set(dir, 0);
    options.config.onChange(() => this.refreshSettings());
  }

  topic(name: string): HostedTopic | undefined {
    return this.topics.get(name);
  }

  partition(topic: string, partition: number): ReplicatedLog | undefined {
    return this.topics.get(topic)?.partitions[partition];
  }

  hostedTopics(): IterableIterator<HostedTopic> {
    return this.topics.values();
  }

  get partitionCount(): number {
    let count = 0;
    for (const topic of this.topics.values()) for (const log of topic.partitions) if (log) count++;
    return count;
  }

  /**
   * Opens every partition of the image (recovering each log), with progress in the log. Partition
   * directories no topic owns are renamed `-stray` and kept: a damaged metadata log must never cost data.
   * Once `interrupt` is aborted no further partition is opened, and openAll rejects with its reason.
   */
  async openAll(image: MetadataImage, interrupt?: AbortSignal): Promise<void> {
    await this.scanDirectories(image);
    const work: { topic: TopicImage; partition: PartitionImage }[] = [];
    for (const topic of image.topics()) {
      const hosted: MutableTopic = {
        image: topic,
        settings: resolveTopicSettings(this.options.config, topic.configs),
        partitions: [],
      };
      this.topics.set(topic.name, hosted);
      this.warnIfCompactionAsked(hosted);
      for (const partition of topic.partitions) work.push({ topic, partition });
    }
    const total = work.length;
    let opened = 0;
    let lastReport = this.options.now();
    const concurrency = this.options.openConcurrency ?? 16;
    const next = async (): Promise<void> => {
      for (;;) {
        // Each worker finishes the partition it is recovering, so none is left half-open for close().
        if (interrupt?.aborted) return;
        const item = work.shift();
        if (!item) return;
        await this.openPartition(item.topic, item.partition);
        opened++;
        const now = this.options.now();
        if (now - lastReport >= 1000) {
          lastReport = now;
          this.options.logger.info({ opened, total }, `recovering partitions ${opened}/${total}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, total) }, next));
    interrupt?.throwIfAborted();
    // Elections were started as each log opened; their first entries commit in shared fsync rounds.
    await this.elected();
    this.options.logger.info({ partitions: total, topics: image.topicCount }, "partitions recovered");
  }

  /** Follows a committed metadata change. */
  async applyDelta(delta: MetadataDelta): Promise<void> {
    for (const removed of delta.removedTopics) await this.removeTopic(removed);
    for (const { topic, partitions } of delta.addedPartitions) {
      let hosted = this.topics.get(topic.name);
      if (!hosted) {
        hosted = {
          image: topic,
          settings: resolveTopicSettings(this.options.config, topic.configs),
          partitions: [],
        };
        this.topics.set(topic.name, hosted);
        this.warnIfCompactionAsked(hosted);
      }
      hosted.image = topic;
      await Promise.all(partitions.map((partition) => this.openPartition(topic, partition)));
      await this.elected();
      const opened = partitions.flatMap((partition) => hosted.partitions[partition.partition] ?? []);
      for (const listener of this.partitionsOpenedListeners) listener(topic, opened);
    }
    for (const topic of delta.topicConfigChanges) {
      const hosted = this.topics.get(topic.name);
      if (!hosted) continue;
      hosted.image = { ...topic, partitions: hosted.image.partitions };
      this.applyTopicConfig(hosted);
    }
  }

  /** Every log opened so far leads its group (or the Raft host failed: then this rejects). */
  private async elected(): Promise<void> {
    const electing = Promise.all(this.electing.splice(0));
    // When the Raft host fails first, the logs' closing rejects this later: nobody awaits it then.
    electing.catch(() => {});
    await (this.options.raft ? Promise.race([electing, this.options.raft.failed]) : electing);
  }

  /** Closes every log cleanly (flush, fsync, clean-shutdown marker). */
  async close(): Promise<void> {
    const logs: ReplicatedLog[] = [];
    for (const topic of this.topics.values()) for (const log of topic.partitions) if (log) logs.push(log);
    const results = await Promise.allSettled(logs.map((log) => log.close()));
    for (const [index, result] of results.entries()) {
      if (result.status === "rejected") {
        const { topic, partition } = logs[index]!.topicPartition;
        this.options.logger.error(
          { err: result.reason, topic, partition },
          "partition log did not close cleanly; it is recovered at the next start",
        );
      }
    }
    await Promise.allSettled([...this.pendingDeletions]);
  }

  partitionLogs(): PartitionLogStats[] {
    const stats: PartitionLogStats[] = [];
    for (const topic of this.topics.values()) {
      for (const log of topic.partitions) {
        if (!log) continue;
        const { segmentCount, sizeBytes } = log.stats();
        stats.push({
          topic: topic.image.name,
          partition: log.topicPartition.partition,
          logStartOffset: log.logStartOffset,
          logEndOffset: log.logEndOffset,
          highWatermark: log.highWatermark,
          segmentCount,
          sizeBytes,
        });
      }
    }
    return stats;
  }

  logDirectories(): readonly string[] {
    return this.options.logDirs;
  }

  private async scanDirectories(image: MetadataImage): Promise<void> {
    // Per deleted topic id, how many of its partition directories this start finishes deleting: one line
    // per topic, not one per partition (a topic of thousands of partitions made thousands of lines).
    const unfinishedDeletions = new Map<string, { topic: string; partitions: number }>();
    for (const dir of this.options.logDirs) {
      await mkdir(dir, { recursive: true });
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        if (!entry.isDirectory()) continue;
        const path = join(dir, entry.name);
        if (entry.name.endsWith(DELETE_SUFFIX)) {
          this.deleteInBackground(path);
          continue;
        }
        const match = PARTITION_DIRECTORY.exec(entry.name);
        if (!match || match[1] === METADATA_TOPIC) continue;
        const topic = image.topic(match[1]!);
        const partition = Number(match[2]);
        const ownerId = await readPartitionTopicId(path);
        if (ownerId !== undefined && ownerId !== topic?.topicId && image.wasDeleted(ownerId)) {
          // The metadata log deleted its topic, and the node stopped (a crash, or a shutdown while the
          // deletion ran in the background) before this directory was renamed for deletion: finish the
          // deletion instead of keeping a deleted topic's data as a stray.
          const doomed = join(
            dir,
            renamedPartitionDirectory(match[1]!, partition, `.${ownerId}${DELETE_SUFFIX}`),
          );
          const unfinished = unfinishedDeletions.get(ownerId) ?? { topic: match[1]!, partitions: 0 };
          unfinished.partitions += 1;
          unfinishedDeletions.set(ownerId, unfinished);
          await rename(path, doomed);
          this.deleteInBackground(doomed);
          continue;
        }
        if (!topic || partition >= topic.partitions.length) {
          // Unique, so that a second stray of the same name (a topic deleted twice, each time cut short
          // by a crash) never collides with the first: a failed rename would stop the node starting.
          const strayName = renamedPartitionDirectory(
            match[1]!,
            partition,
            `.${randomUUID().replaceAll("-", "")}${STRAY_SUFFIX}`,
          );
          const strayPath = join(dir, strayName);
          this.options.logger.warn(
            { directory: path, renamedTo: strayPath },
            "partition directory belongs to no topic in the cluster metadata; kept as a stray directory: delete it once you are sure it holds nothing you need",
          );
          await rename(path, strayPath);
          continue;
        }
        this.existingDirectories.set(entry.name, dir);
        if (ownerId !== undefined) this.scannedTopicIds.set(entry.name, ownerId);
      }
    }
    for (const [topicId, { topic, partitions }] of unfinishedDeletions) {
      this.options.logger.info(
        { topic, topicId, partitions },
        "finishing the deletion of a topic that was still being deleted when the node stopped",
      );
    }
  }

  private directoryFor(name: string): string {
    const existing = this.existingDirectories.get(name);
    if (existing) return existing;
    const withRoom = this.options.logDirs.filter((dir) => !this.options.refusesProduce?.(dir));
    const candidates = withRoom.length > 0 ? withRoom : this.options.logDirs;
    let best = candidates[0]!;
    for (const dir of candidates) {
      if (this.partitionsPerDirectory.get(dir)! < this.partitionsPerDirectory.get(best)!) best = dir;
    }
    return best;
  }

  private async openPartition(topic: TopicImage, partition: PartitionImage): Promise<void> {
    const hosted = this.topics.get(topic.name);
    if (!hosted)
      throw new Error(`internal: topic ${topic.name} is not tracked before opening its partitions`);
    if (!partition.replicas.includes(this.options.nodeId)) return;
    const name = `${topic.name}-${partition.partition}`;
    const dir = this.directoryFor(name);
    // Counted at once: the partitions of one CreateTopics open concurrently, and each must see the others'
    // choices, or they all land in the same directory.
    this.partitionsPerDirectory.set(dir, (this.partitionsPerDirectory.get(dir) ?? 0) + 1);
    try {
      await this.openPartitionIn(dir, name, topic, partition, hosted);
    } catch (error) {
      this.partitionsPerDirectory.set(dir, Math.max(0, (this.partitionsPerDirectory.get(dir) ?? 1) - 1));
      throw error;
    }
  }

  private async openPartitionIn(
    dir: string,
    name: string,
    topic: TopicImage,
    partition: PartitionImage,
    hosted: MutableTopic,
  ): Promise<void> {
    const onEvent = (event: LogEvent) => {
      const where = { topic: topic.name, partition: partition.partition };
      if (event.type === "failed") {
        this.options.logFailures?.record(name, event.error);
        this.options.logger.error(
          { err: event.error, ...where },
          "partition log failed and refuses writes until the broker restarts",
        );
      } else if (event.type === "index-rebuilt") {
        const fields = { ...where, segmentBaseOffset: event.baseOffset, reason: event.reason };
        // A missing or stale index after a crash is routine; a segment cut short on disk is not.
        if (event.reason.includes("segment cut at byte")) {
          this.options.logger.warn(
            fields,
            "segment file cut short on disk: cut at its last whole batch and its index rebuilt; the records after the cut are lost (check the disk)",
          );
        } else {
          this.options.logger.info(fields, "segment index rebuilt from its log file");
        }
      } else if (event.type === "corrupt-batch") {
        this.options.logger.warn(
          {
            ...where,
            segmentBaseOffset: event.baseOffset,
            segmentFile: event.path,
            position: event.position,
            reason: event.reason,
            firstLostOffset: event.firstLostOffset,
            resumeOffset: event.resumeOffset,
          },
          `segment file ${event.path} is damaged at byte ${event.position} (${event.reason}): fetches of offsets ` +
            `${event.firstLostOffset}-${event.resumeOffset - 1} fail with CORRUPT_MESSAGE. DeleteRecords up to offset ` +
            `${event.resumeOffset} lets consumers go on, or stop the broker and restore the file from a backup`,
        );
      } else if (event.type === "damaged-segment-skipped") {
        this.options.logger.warn(
          { ...where, segmentBaseOffset: event.baseOffset, fromOffset: event.fromOffset },
          "a segment file is cut short on disk: readers skip from the cut to the next segment; check the disk, the records between are lost",
        );
      }
    };
    // The scan read every existing directory's marker: written only for new directories, or on a change.
    if (this.scannedTopicIds.get(name) !== topic.topicId) {
      await writePartitionTopicId(join(dir, name), topic.topicId);
      this.scannedTopicIds.set(name, topic.topicId);
    }
    const topicPartition = { topic: topic.name, partition: partition.partition };
    const config = logConfigFor(this.options.config, topic.configs);
    const raft = this.options.raft;
    const group = raft ? await raft.groupFor(topic.topicId, partition.partition) : undefined;
    const storedCommit = raft && group !== undefined ? raft.storedCommit(group) : undefined;
    const mayReserve = this.options.mayReserve;
    const log = await openReplicatedLog(join(dir, name), {
      topicPartition,
      nodeId: this.options.nodeId,
      ...(raft && group !== undefined ? { raft: { groups: raft, group } } : {}),
      leaderEpoch: partition.leaderEpoch,
      config,
      flushScheduler: this.options.flushScheduler,
      ...(this.options.directWrites ? { directWrites: this.options.directWrites } : {}),
      ...(this.options.directReads ? { directReads: this.options.directReads } : {}),
      ...(mayReserve ? { mayReserve: (bytes: number) => mayReserve(join(dir, name), bytes) } : {}),
      now: this.options.now,
      onEvent,
      ...(this.options.observeCommitLatency
        ? { observeCommitLatency: this.options.observeCommitLatency }
        : {}),
    });
    if (log instanceof RaftReplicatedLog) {
      this.groups.set(name, log.group);
      const leading = log.whenLeader();
      // Awaited by elected(); a start given up before it (interrupted, failed) closes the log, which
      // rejects this with nobody left to await it.
      leading.catch(() => {});
      this.electing.push(leading);
    }
    logRecoveryReport(this.options.logger, topicPartition, log.recoveryReport);
    const logEnd = log.recoveryReport.logEndOffset;
    if (storedCommit !== undefined && storedCommit >= logEnd) {
      this.options.logger.error(
        { ...topicPartition, storedCommit, logEndOffset: logEnd, directory: join(dir, name) },
        `partition ${name}: the Raft state records offsets up to ${storedCommit} as committed, but the log ends at ` +
          `${logEnd}: offsets ${logEnd}-${storedCommit} were lost while the broker was stopped (the partition ` +
          "directory or its segments were removed or cut) and new records will reuse those offsets. Stop the " +
          "broker and restore the partition directory from a backup if those records matter",
      );
    }
    this.existingDirectories.set(name, dir);
    hosted.partitions[partition.partition] = log;
  }

  /**
   * Calls `listener` with the partitions of this node that a topic created (or grown) from now on opened,
   * once they lead, before the CreateTopics or CreatePartitions that made them is answered.
   */
  onPartitionsOpened(listener: (topic: TopicImage, logs: readonly ReplicatedLog[]) => void): () => void {
    this.partitionsOpenedListeners.add(listener);
    return () => this.partitionsOpenedListeners.delete(listener);
  }

  /**
   * Calls `listener` with the logs of each deleted topic's partitions as soon as they are no longer served,
   * before they close: whatever waits on them (parked fetches) can answer at once.
   */
  onPartitionsRemoved(listener: (logs: readonly ReplicatedLog[]) => void): () => void {
    this.partitionsRemovedListeners.add(listener);
    return () => this.partitionsRemovedListeners.delete(listener);
  }

  /** Calls `listener` with the name of each topic deleted from now on, once its partitions are gone. */
  onTopicDeleted(listener: (topic: string) => void): () => void {
    this.topicDeletedListeners.add(listener);
    return () => this.topicDeletedListeners.delete(listener);
  }

  private async removeTopic(topic: TopicImage): Promise<void> {
    await this.removePartitions(topic);
    for (const listener of this.topicDeletedListeners) listener(topic.name);
  }

  private async removePartitions(topic: TopicImage): Promise<void> {
    const hosted = this.topics.get(topic.name);
    this.topics.delete(topic.name);
    this.warnedCompaction.delete(topic.name);
    if (!hosted) return;
    const removed = hosted.partitions.filter((log): log is ReplicatedLog => log !== undefined);
    for (const listener of this.partitionsRemovedListeners) listener(removed);
    // Several at a time, as openAll opens them: one after another, a topic of 3,000 partitions took
    // 7 s to delete, and every controller operation queued behind it (a small CreateTopics timed out).
    const queue = [...removed];
    const concurrency = this.options.openConcurrency ?? 16;
    const next = async (): Promise<void> => {
      for (let log = queue.shift(); log !== undefined; log = queue.shift()) {
        await this.removePartition(topic, log);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, next));
    this.options.logger.info({ topic: topic.name, topicId: topic.topicId }, "topic deleted");
  }

  private async removePartition(topic: TopicImage, log: ReplicatedLog): Promise<void> {
    const name = `${topic.name}-${log.topicPartition.partition}`;
    const dir = this.existingDirectories.get(name);
    this.existingDirectories.delete(name);
    this.scannedTopicIds.delete(name);
    this.options.logFailures?.forget(name);
    try {
      await log.close();
    } catch (error) {
      this.options.logger.warn({ err: error, topic: topic.name }, "closing a deleted partition failed");
    }
    const group = this.groups.get(name);
    this.groups.delete(name);
    if (group !== undefined && this.options.raft) {
      await this.options.raft
        .forget(topic.topicId, log.topicPartition.partition, group)
        .catch((error: unknown) =>
          this.options.logger.warn(
            { err: error, topic: topic.name, group },
            "could not remove a deleted partition's Raft state; it is unused and harmless",
          ),
        );
    }
    if (!dir) return;
    this.partitionsPerDirectory.set(dir, Math.max(0, (this.partitionsPerDirectory.get(dir) ?? 1) - 1));
    // Renamed first so a topic re-created under the same name starts with an empty directory.
    const doomed = join(
      dir,
      renamedPartitionDirectory(
        topic.name,
        log.topicPartition.partition,
        `.${topic.topicId}${DELETE_SUFFIX}`,
      ),
    );
    try {
      await rename(join(dir, name), doomed);
    } catch (error) {
      // The directory must not outlive its topic, or a topic re-created under the name would read its data.
      this.options.logger.warn(
        { err: error, directory: join(dir, name) },
        "could not rename a deleted partition's directory; deleting it in place",
      );
      await rm(join(dir, name), { recursive: true, force: true });
      return;
    }
    this.deleteInBackground(doomed);
  }

  private deleteInBackground(path: string): void {
    const deletion = rm(path, { recursive: true, force: true }).catch((error: unknown) =>
      this.options.logger.warn(
        { err: error, path },
        "could not delete a deleted partition's directory; remove it by hand",
      ),
    );
    this.pendingDeletions.add(deletion);
    void deletion.finally(() => this.pendingDeletions.delete(deletion));
  }

  private applyTopicConfig(hosted: MutableTopic): void {
    hosted.settings = resolveTopicSettings(this.options.config, hosted.image.configs);
    this.warnIfCompactionAsked(hosted);
    const logConfig = logConfigFor(this.options.config, hosted.image.configs);
    for (const log of hosted.partitions) log?.updateConfig(logConfig);
  }

  /**
   * Compaction is built for `__consumer_offsets` only: a user topic asking for it is kept whole, which a
   * user expecting Kafka's compaction should hear of once rather than find on a full disk.
   */
  private warnIfCompactionAsked(hosted: MutableTopic): void {
    const name = hosted.image.name;
    if (hosted.image.internal || !hosted.settings.cleanupPolicy.includes("compact")) {
      this.warnedCompaction.delete(name);
      return;
    }
    if (this.warnedCompaction.has(name)) return;
    this.warnedCompaction.add(name);
    this.options.logger.warn(
      { topic: name, cleanupPolicy: hosted.settings.cleanupPolicy.join(",") },
      hosted.settings.cleanupPolicy.includes("delete")
        ? `topic ${name} asks for cleanup.policy=compact, which Raftka does not do for user topics yet: retention (delete) still trims it, but records with the same key are not compacted`
        : `topic ${name} asks for cleanup.policy=compact, which Raftka does not do for user topics yet: it keeps every record; set retention.bytes / retention.ms with cleanup.policy=compact,delete if it must not grow without bound`,
    );
  }

  /** Broker settings changed at run time: topics without their own value follow. */
  private refreshSettings(): void {
    for (const hosted of this.topics.values()) this.applyTopicConfig(hosted);
  }
}

/** Kafka's file naming a partition directory's topic id (`version: 0`, `topic_id: <id>`). */
const PARTITION_METADATA_FILE = "partition.metadata";

/** The topic id a partition directory belongs to, from its partition.metadata; undefined if it has none. */
async function readPartitionTopicId(directory: string): Promise<string | undefined> {
  try {
    const text = await readFile(join(directory, PARTITION_METADATA_FILE), "utf8");
    return /^topic_id: *(\S+)$/m.exec(text)?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Records which topic a partition directory belongs to, as Kafka does, so that a directory a crash left
 * behind is known for a deleted topic's. Written whole (a temporary file renamed) but not fsynced: a
 * marker lost to a power cut only means such a directory is kept as a stray, as without it, and
 * creating thousands of partitions does not wait for thousands of fsyncs.
 */
async function writePartitionTopicId(directory: string, topicId: string): Promise<void> {
  await mkdir(directory, { recursive: true });
  const temporary = join(directory, `${PARTITION_METADATA_FILE}.tmp`);
  await writeFile(temporary, `version: 0\ntopic_id: ${topicId}\n`);
  await rename(temporary, join(directory, PARTITION_METADATA_FILE));
}
