import type { Listener, Logger, RaftkaConfig, RaftkaMetrics } from "@raftka/monitoring";
import type { Controller } from "./metadata/controller.js";
import type { PartitionManager } from "./partitions/partition-manager.js";
import type { TopicMetrics } from "./partitions/topic-metrics.js";
import type { ProducerStateCheck } from "./produce-hooks.js";

/** What request handlers share: the node's identity, metadata, partitions, settings and clock. */
export interface BrokerServices {
  readonly nodeId: number;
  readonly clusterId: string;
  readonly config: RaftkaConfig;
  readonly controller: Controller;
  readonly partitions: PartitionManager;
  readonly logger: Logger;
  readonly metrics: RaftkaMetrics | undefined;
  readonly topicMetrics: TopicMetrics;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /** The addresses clients are told to use, per listener name, with bound ports filled in. */
  advertisedListeners(): readonly Listener[];
  /** Per-batch producer checks on the produce path (idempotence); the default accepts everything. */
  producerState: ProducerStateCheck;
  /**
   * Whether `bytes` more may be appended to the partition kept in `partitionDirectory` (undefined), or
   * why not: its disk is short of space (log.dir.min.free.bytes).
   */
  readonly diskSpace: {
    admit(partitionDirectory: string, bytes: number): string | undefined;
    admitInternal(partitionDirectory: string, bytes: number): string | undefined;
  };
}
