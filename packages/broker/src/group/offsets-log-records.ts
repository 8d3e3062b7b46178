import { ProtocolDecodeError, Reader, Writer } from "@raftka/protocol";

/**
 * Records of the `__consumer_offsets` log, in Kafka's own key/value layouts (OffsetCommitKey/Value,
 * GroupMetadataKey/Value), so the log reads the same way Kafka's tools read theirs:
 *
 * - key version 0/1: an offset commit, keyed by (group, topic, partition);
 * - key version 2: a group's metadata, keyed by group;
 * - a null value is a tombstone: the key's previous value is deleted (and compaction later drops both).
 *
 * We write OffsetCommitValue v3 (v1 when the commit carries an explicit expire timestamp, as Kafka does)
 * and GroupMetadataValue v3, and read versions 0-3 of both. Flexible versions 4+ are never written by us.
 */

export const OFFSET_COMMIT_KEY_VERSION = 1;
export const GROUP_METADATA_KEY_VERSION = 2;
const OFFSET_COMMIT_VALUE_VERSION = 3;
const OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY = 1;
const GROUP_METADATA_VALUE_VERSION = 3;

export interface CommittedOffset {
  readonly offset: bigint;
  /** -1 when the committer did not say which leader epoch the offset was read under. */
  readonly leaderEpoch: number;
  readonly metadata: string;
  readonly commitTimestamp: number;
  /** Only from OffsetCommit v2-v4 with a retention time: the commit's own expiry, which wins over the group's. */
  readonly expireTimestamp: number | null;
}

export interface StoredMember {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly rebalanceTimeoutMs: number;
  readonly sessionTimeoutMs: number;
  /** The member's metadata for the group's selected protocol. */
  readonly subscription: Buffer;
  readonly assignment: Buffer;
}

export interface StoredGroup {
  readonly protocolType: string;
  readonly generationId: number;
  readonly protocolName: string | null;
  readonly leaderId: string | null;
  /** When the group entered its current state; -1 from v0/v1 values that lack it. */
  readonly currentStateTimestamp: number;
  readonly members: readonly StoredMember[];
}

export type OffsetsLogRecord =
  | {
      readonly kind: "offset";
      readonly groupId: string;
      readonly topic: string;
      readonly partition: number;
      /** null: tombstone. */
      readonly value: CommittedOffset | null;
    }
  | {
      readonly kind: "group";
      readonly groupId: string;
      /** null: tombstone. */
      readonly value: StoredGroup | null;
    };

export class OffsetsLogRecordError extends Error {
  override readonly name = "OffsetsLogRecordError";
}

/** The compaction key: equal for two records exactly when the later one replaces the earlier. */
export function recordKeyString(record: OffsetsLogRecord): string {
  return record.kind === "offset"
    ? `o\u0000${record.groupId}\u0000${record.topic}\u0000${record.partition}`
    : `g\u0000${record.groupId}`;
}

export function encodeOffsetsLogKey(record: OffsetsLogRecord): Buffer {
  const writer = new Writer(64);
  if (record.kind === "offset") {
    writer.int16(OFFSET_COMMIT_KEY_VERSION);
    writer.string(record.groupId, "group");
    writer.string(record.topic, "topic");
    writer.int32(record.partition);
  } else {
    writer.int16(GROUP_METADATA_KEY_VERSION);
    writer.string(record.groupId, "group");
  }
  return writer.toBuffer();
}

export function encodeOffsetsLogValue(record: OffsetsLogRecord): Buffer | null {
  if (record.value === null) return null;
  const writer = new Writer(128);
  if (record.kind === "offset") {
    const value = record.value;
    if (value.expireTimestamp !== null) {
      writer.int16(OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY);
      writer.int64(value.offset);
      writer.string(value.metadata, "metadata");
      writer.int64(BigInt(value.commitTimestamp));
      writer.int64(BigInt(value.expireTimestamp));
    } else {
      writer.int16(OFFSET_COMMIT_VALUE_VERSION);
      writer.int64(value.offset);
      writer.int32(value.leaderEpoch);
      writer.string(value.metadata, "metadata");
      writer.int64(BigInt(value.commitTimestamp));
    }
    return writer.toBuffer();
  }
  const group = record.value;
  writer.int16(GROUP_METADATA_VALUE_VERSION);
  writer.string(group.protocolType, "protocolType");
  writer.int32(group.generationId);
  writer.nullableString(group.protocolName, "protocol");
  writer.nullableString(group.leaderId, "leader");
  writer.int64(BigInt(group.currentStateTimestamp));
  writer.int32(group.members.length);
  for (const member of group.members) {
    writer.string(member.memberId, "memberId");
    writer.nullableString(member.groupInstanceId, "groupInstanceId");
    writer.string(member.clientId, "clientId");
    writer.string(member.clientHost, "clientHost");
    writer.int32(member.rebalanceTimeoutMs);
    writer.int32(member.sessionTimeoutMs);
    writer.bytes(member.subscription, "subscription");
    writer.bytes(member.assignment, "assignment");
  }
  return writer.toBuffer();
}

/**
 * Decodes one record of the offsets log. Throws `OffsetsLogRecordError` naming the problem for bytes
 * that are not a record we understand; the loader reports it and skips the record rather than refusing
 * to load the whole partition.
 */
export function decodeOffsetsLogRecord(key: Buffer | null, value: Buffer | null): OffsetsLogRecord {
  if (key === null) {
    throw new OffsetsLogRecordError(
      "offsets log record has a null key; every __consumer_offsets record must have one",
    );
  }
  try {
    const keyReader = new Reader(key);
    const keyVersion = keyReader.int16();
    if (keyVersion === 0 || keyVersion === 1) {
      const groupId = keyReader.string("group");
      const topic = keyReader.string("topic");
      const partition = keyReader.int32();
      return {
        kind: "offset",
        groupId,
        topic,
        partition,
        value: value === null ? null : decodeCommittedOffset(value),
      };
    }
    if (keyVersion === GROUP_METADATA_KEY_VERSION) {
      const groupId = keyReader.string("group");
      return { kind: "group", groupId, value: value === null ? null : decodeStoredGroup(value) };
    }
    throw new OffsetsLogRecordError(
      `offsets log key version ${keyVersion} is unknown (0-1 offset commit, 2 group metadata); the record was written by a newer broker`,
    );
  } catch (error) {
    if (error instanceof ProtocolDecodeError) {
      throw new OffsetsLogRecordError(`offsets log record is corrupt: ${error.message}`);
    }
    throw error;
  }
}

function decodeCommittedOffset(bytes: Buffer): CommittedOffset {
  const reader = new Reader(bytes);
  const version = reader.int16();
  if (version < 0 || version > 3) {
    throw new OffsetsLogRecordError(`OffsetCommitValue version ${version} is unknown (0-3 are readable)`);
  }
  const offset = reader.int64();
  const leaderEpoch = version >= 3 ? reader.int32() : -1;
  const metadata = reader.string("metadata");
  const commitTimestamp = Number(reader.int64());
  const expireTimestamp = version === 1 ? Number(reader.int64()) : null;
  return { offset, leaderEpoch, metadata, commitTimestamp, expireTimestamp };
}

function decodeStoredGroup(bytes: Buffer): StoredGroup {
  const reader = new Reader(bytes);
  const version = reader.int16();
  if (version < 0 || version > 3) {
    throw new OffsetsLogRecordError(`GroupMetadataValue version ${version} is unknown (0-3 are readable)`);
  }
  const protocolType = reader.string("protocolType");
  const generationId = reader.int32();
  const protocolName = reader.nullableString("protocol");
  const leaderId = reader.nullableString("leader");
  const currentStateTimestamp = version >= 2 ? Number(reader.int64()) : -1;
  // Smallest member: four empty strings, two int32s, two empty byte arrays.
  const count = reader.arrayLength(2 * 3 + 4 + 4 * 2, "members");
  const members: StoredMember[] = [];
  for (let index = 0; index < count; index++) {
    const memberId = reader.string("memberId");
    const groupInstanceId = version >= 3 ? reader.nullableString("groupInstanceId") : null;
    const clientId = reader.string("clientId");
    const clientHost = reader.string("clientHost");
    const sessionOrRebalance = reader.int32();
    let rebalanceTimeoutMs: number;
    let sessionTimeoutMs: number;
    if (version >= 1) {
      rebalanceTimeoutMs = sessionOrRebalance;
      sessionTimeoutMs = reader.int32();
    } else {
      // v0 had no rebalance timeout; Kafka used the session timeout for both.
      sessionTimeoutMs = sessionOrRebalance;
      rebalanceTimeoutMs = sessionOrRebalance;
    }
    const subscription = Buffer.from(reader.bytes("subscription"));
    const assignment = Buffer.from(reader.bytes("assignment"));
    members.push({
      memberId,
      groupInstanceId,
      clientId,
      clientHost,
      rebalanceTimeoutMs,
      sessionTimeoutMs,
      subscription,
      assignment,
    });
  }
  return { protocolType, generationId, protocolName, leaderId, currentStateTimestamp, members };
}
