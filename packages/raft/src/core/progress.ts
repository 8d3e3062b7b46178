import type { NodeId, Snapshot } from "./types.js";

/**
 * `probe`: one append in flight at a time until the follower's position is known.
 * `replicate`: appends are pipelined, bounded by the in-flight window.
 * `snapshot`: the follower is behind the log start and receives a snapshot in chunks.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

export interface SnapshotTransfer {
  readonly snapshot: Snapshot;
  /** Next byte the follower asked for; the chunk at this position is (re)sent on demand. */
  nextPosition: number;
  lastSentTick: number;
}

/** The leader's view of one follower (or learner). */
export class Progress {
  /** Highest offset known to be durable on the follower and equal to the leader's log (-1 = unknown). */
  match = -1;
  /** The next append starts after this entry boundary. */
  nextAfter: number;
  state: ProgressState = "probe";
  /** In probe state: an append is outstanding, wait for its answer (or a heartbeat answer). */
  probeSent = false;
  /** Heard from since the last check-quorum window. */
  recentActive = false;
  /** Highest heartbeat round the follower answered (ReadIndex and leases count these). */
  acknowledgedRound = 0;
  /** `entries()` said "loading": resend when the host reports the entries are in memory. */
  waitingForEntries = false;
  transfer: SnapshotTransfer | undefined;
  private readonly inflightOffsets: number[] = [];
  private readonly inflightSizes: number[] = [];
  private inflightHead = 0;
  private inflightBytes = 0;

  constructor(
    readonly node: NodeId,
    nextAfter: number,
    private readonly maxInflightMessages: number,
    private readonly maxInflightBytes: number,
  ) {
    this.nextAfter = nextAfter;
  }

  becomeProbe(): void {
    this.state = "probe";
    this.probeSent = false;
    this.transfer = undefined;
    this.clearInflights();
    if (this.nextAfter < this.match) this.nextAfter = this.match;
  }

  becomeReplicate(): void {
    this.state = "replicate";
    this.probeSent = false;
    this.transfer = undefined;
    this.nextAfter = this.match;
    this.clearInflights();
  }

  becomeSnapshot(transfer: SnapshotTransfer): void {
    this.state = "snapshot";
    this.probeSent = false;
    this.transfer = transfer;
    this.clearInflights();
  }

  /** Returns true when the acknowledgement moved the follower forward. */
  acknowledge(matchOffset: number): boolean {
    if (matchOffset <= this.match) return false;
    this.match = matchOffset;
    if (this.nextAfter < matchOffset) this.nextAfter = matchOffset;
    while (
      this.inflightHead < this.inflightOffsets.length &&
      this.inflightOffsets[this.inflightHead]! <= matchOffset
    ) {
      this.inflightBytes -= this.inflightSizes[this.inflightHead]!;
      this.inflightHead++;
    }
    this.compactInflights();
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return (
          this.inflightCount() >= this.maxInflightMessages || this.inflightBytes >= this.maxInflightBytes
        );
      case "snapshot":
        return true;
    }
  }

  recordSent(lastOffset: number, bytes: number): void {
    this.inflightOffsets.push(lastOffset);
    this.inflightSizes.push(bytes);
    this.inflightBytes += bytes;
  }

  inflightCount(): number {
    return this.inflightOffsets.length - this.inflightHead;
  }

  /** A lost append would otherwise block a full window forever; a heartbeat answer frees one slot. */
  freeFirstInflight(): void {
    if (this.inflightCount() === 0) return;
    this.inflightBytes -= this.inflightSizes[this.inflightHead]!;
    this.inflightHead++;
    this.compactInflights();
  }

  private clearInflights(): void {
    this.inflightOffsets.length = 0;
    this.inflightSizes.length = 0;
    this.inflightHead = 0;
    this.inflightBytes = 0;
  }

  private compactInflights(): void {
    if (this.inflightHead === this.inflightOffsets.length) {
      this.clearInflights();
    } else if (this.inflightHead > 64 && this.inflightHead * 2 > this.inflightOffsets.length) {
      this.inflightOffsets.splice(0, this.inflightHead);
      this.inflightSizes.splice(0, this.inflightHead);
      this.inflightHead = 0;
    }
  }
}
