import type { ClusterConfig, Entry, EntryKind, Message, NodeId, SnapshotMeta } from "../core/types.js";

/** A frame or message that does not decode: the sender is broken or not speaking our protocol. */
export class FrameDecodeError extends Error {
  override name = "FrameDecodeError";
}

/**
 * Growable buffer with LEB128 varints. Offsets and terms are non-negative integers below 2^53 (or -1
 * for "none", stored as value + 1), so varints keep heartbeats of thousands of groups small.
 */
export class Writer {
  private buffer: Buffer;
  private position = 0;

  constructor(initialBytes = 256) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
  }

  get length(): number {
    return this.position;
  }

  private reserve(bytes: number): void {
    if (this.position + bytes <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.position + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buffer.copy(grown, 0, 0, this.position);
    this.buffer = grown;
  }

  u8(value: number): void {
    this.reserve(1);
    this.buffer[this.position++] = value;
  }

  u32(value: number): void {
    this.reserve(4);
    this.buffer.writeUInt32BE(value, this.position);
    this.position += 4;
  }

  varint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(
        `cannot encode ${value} as a varint: Raft offsets, terms and ids are integers >= -1`,
      );
    }
    this.reserve(8);
    let remaining = value;
    while (remaining >= 0x80) {
      this.buffer[this.position++] = (remaining % 0x80) | 0x80;
      remaining = Math.floor(remaining / 0x80);
    }
    this.buffer[this.position++] = remaining;
  }

  /** An integer that may be -1. */
  offset(value: number): void {
    this.varint(value + 1);
  }

  bytes(value: Uint8Array): void {
    this.varint(value.byteLength);
    this.reserve(value.byteLength);
    this.buffer.set(value, this.position);
    this.position += value.byteLength;
  }

  raw(value: Uint8Array): void {
    this.reserve(value.byteLength);
    this.buffer.set(value, this.position);
    this.position += value.byteLength;
  }

  /** Overwrite 4 bytes at an earlier position (lengths and checksums written after the payload). */
  patchU32(position: number, value: number): void {
    this.buffer.writeUInt32BE(value, position);
  }

  finish(): Buffer {
    return this.buffer.subarray(0, this.position);
  }
}

export class Reader {
  private position = 0;

  constructor(private readonly buffer: Buffer) {}

  get remaining(): number {
    return this.buffer.length - this.position;
  }

  private need(bytes: number, what: string): void {
    if (this.position + bytes > this.buffer.length) {
      throw new FrameDecodeError(
        `truncated frame: ${what} needs ${bytes} bytes at ${this.position} of ${this.buffer.length}`,
      );
    }
  }

  u8(what = "byte"): number {
    this.need(1, what);
    return this.buffer[this.position++]!;
  }

  u32(what = "u32"): number {
    this.need(4, what);
    const value = this.buffer.readUInt32BE(this.position);
    this.position += 4;
    return value;
  }

  varint(what = "varint"): number {
    let value = 0;
    let scale = 1;
    for (let index = 0; index < 8; index++) {
      const byte = this.u8(what);
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (!Number.isSafeInteger(value)) throw new FrameDecodeError(`${what} ${value} exceeds 2^53`);
        return value;
      }
      scale *= 0x80;
    }
    throw new FrameDecodeError(`${what} is longer than 8 bytes`);
  }

  offset(what = "offset"): number {
    return this.varint(what) - 1;
  }

  bytes(what = "bytes"): Buffer {
    const length = this.varint(`${what} length`);
    this.need(length, what);
    const value = this.buffer.subarray(this.position, this.position + length);
    this.position += length;
    return value;
  }

  raw(length: number, what = "raw bytes"): Buffer {
    this.need(length, what);
    const value = this.buffer.subarray(this.position, this.position + length);
    this.position += length;
    return value;
  }
}

const MESSAGE_TYPES = [
  "preVote",
  "vote",
  "preVoteResponse",
  "voteResponse",
  "append",
  "appendResponse",
  "heartbeat",
  "heartbeatResponse",
  "snapshot",
  "snapshotResponse",
  "timeoutNow",
  "readIndex",
  "readIndexResponse",
  "wake",
] as const;
const TYPE_CODES = new Map<string, number>(MESSAGE_TYPES.map((type, index) => [type, index + 1]));
const KINDS: readonly EntryKind[] = ["data", "noop", "config"];

/**
 * Messages of one frame all go from one node to one other, so `from` and `to` are not repeated per
 * message; a heartbeat costs about ten bytes.
 */
export function encodeMessages(writer: Writer, messages: readonly Message[]): void {
  writer.varint(messages.length);
  for (const message of messages) encodeMessage(writer, message);
}

export function decodeMessages(reader: Reader, from: NodeId, to: NodeId): Message[] {
  const count = reader.varint("message count");
  if (count > reader.remaining)
    throw new FrameDecodeError(`frame claims ${count} messages in ${reader.remaining} bytes`);
  const messages: Message[] = [];
  for (let index = 0; index < count; index++) messages.push(decodeMessage(reader, from, to));
  return messages;
}

function encodeMessage(writer: Writer, message: Message): void {
  writer.u8(TYPE_CODES.get(message.type)!);
  writer.varint(message.group);
  writer.varint(message.term);
  switch (message.type) {
    case "preVote":
      writer.offset(message.lastOffset);
      writer.varint(message.lastTerm);
      return;
    case "vote":
      writer.offset(message.lastOffset);
      writer.varint(message.lastTerm);
      writer.u8(message.transfer ? 1 : 0);
      return;
    case "preVoteResponse":
    case "voteResponse":
      writer.u8(message.reject ? 1 : 0);
      return;
    case "append":
      writer.offset(message.prevOffset);
      writer.varint(message.prevTerm);
      writer.offset(message.commit);
      writer.varint(message.entries.length);
      for (const entry of message.entries) encodeEntry(writer, entry);
      return;
    case "appendResponse":
      writer.u8(message.reject ? 1 : 0);
      writer.offset(message.matchOffset);
      writer.offset(message.rejectedOffset);
      writer.offset(message.hintOffset);
      writer.varint(message.hintTerm);
      return;
    case "heartbeat":
      writer.offset(message.commit);
      writer.varint(message.round);
      writer.u8(message.quiesce ? 1 : 0);
      return;
    case "heartbeatResponse":
      writer.varint(message.round);
      return;
    case "snapshot":
      encodeSnapshotMeta(writer, message.meta);
      writer.varint(message.position);
      writer.varint(message.totalBytes);
      writer.bytes(message.data);
      return;
    case "snapshotResponse":
      writer.offset(message.snapshotOffset);
      writer.varint(message.snapshotTerm);
      writer.offset(message.nextPosition);
      writer.offset(message.matchOffset);
      return;
    case "readIndex":
      writer.varint(message.context);
      return;
    case "readIndexResponse":
      writer.varint(message.context);
      writer.offset(message.index);
      return;
    case "timeoutNow":
    case "wake":
      return;
  }
}

function decodeMessage(reader: Reader, from: NodeId, to: NodeId): Message {
  const code = reader.u8("message type");
  const type = MESSAGE_TYPES[code - 1];
  if (type === undefined) throw new FrameDecodeError(`unknown message type ${code}`);
  const group = reader.varint("group");
  const term = reader.varint("term");
  const base = { group, from, to, term };
  switch (type) {
    case "preVote":
      return { ...base, type, lastOffset: reader.offset(), lastTerm: reader.varint() };
    case "vote":
      return {
        ...base,
        type,
        lastOffset: reader.offset(),
        lastTerm: reader.varint(),
        transfer: reader.u8() === 1,
      };
    case "preVoteResponse":
    case "voteResponse":
      return { ...base, type, reject: reader.u8() === 1 };
    case "append": {
      const prevOffset = reader.offset("prevOffset");
      const prevTerm = reader.varint("prevTerm");
      const commit = reader.offset("commit");
      const count = reader.varint("entry count");
      if (count > reader.remaining)
        throw new FrameDecodeError(`append claims ${count} entries in ${reader.remaining} bytes`);
      const entries: Entry[] = [];
      let previous = prevOffset;
      let previousTerm = prevTerm;
      for (let index = 0; index < count; index++) {
        const entry = decodeEntry(reader);
        // A leader only ever sends a contiguous run of its own log: anything else is not from a leader.
        if (entry.firstOffset !== previous + 1 || entry.term < previousTerm || entry.term > term) {
          throw new FrameDecodeError(
            `append for group ${group} carries entry [${entry.firstOffset}, ${entry.lastOffset}] term ${entry.term} after ${previous} term ${previousTerm} in term ${term}`,
          );
        }
        previous = entry.lastOffset;
        previousTerm = entry.term;
        entries.push(entry);
      }
      if (prevTerm > term || commit > previous) {
        throw new FrameDecodeError(
          `append for group ${group} claims prevTerm ${prevTerm} or commit ${commit} beyond term ${term}`,
        );
      }
      return { ...base, type, prevOffset, prevTerm, commit, entries };
    }
    case "appendResponse":
      return {
        ...base,
        type,
        reject: reader.u8() === 1,
        matchOffset: reader.offset(),
        rejectedOffset: reader.offset(),
        hintOffset: reader.offset(),
        hintTerm: reader.varint(),
      };
    case "heartbeat":
      return { ...base, type, commit: reader.offset(), round: reader.varint(), quiesce: reader.u8() === 1 };
    case "heartbeatResponse":
      return { ...base, type, round: reader.varint() };
    case "snapshot": {
      const meta = decodeSnapshotMeta(reader);
      const position = reader.varint("snapshot position");
      const totalBytes = reader.varint("snapshot size");
      const data = reader.bytes("snapshot chunk");
      if (position + data.byteLength > totalBytes) {
        throw new FrameDecodeError(
          `snapshot chunk [${position}, +${data.byteLength}) exceeds its size ${totalBytes}`,
        );
      }
      return { ...base, type, meta, position, totalBytes, data };
    }
    case "snapshotResponse":
      return {
        ...base,
        type,
        snapshotOffset: reader.offset(),
        snapshotTerm: reader.varint(),
        nextPosition: reader.offset(),
        matchOffset: reader.offset(),
      };
    case "readIndex":
      return { ...base, type, context: reader.varint() };
    case "readIndexResponse":
      return { ...base, type, context: reader.varint(), index: reader.offset() };
    case "timeoutNow":
    case "wake":
      return { ...base, type };
  }
}

function encodeEntry(writer: Writer, entry: Entry): void {
  writer.varint(entry.firstOffset);
  writer.varint(entry.lastOffset - entry.firstOffset);
  writer.varint(entry.term);
  writer.u8(KINDS.indexOf(entry.kind));
  if (entry.kind === "data") writer.bytes(entry.payload ?? new Uint8Array(0));
  else if (entry.kind === "config") encodeConfig(writer, entry.config!);
}

function decodeEntry(reader: Reader): Entry {
  const firstOffset = reader.varint("firstOffset");
  const lastOffset = firstOffset + reader.varint("entry width");
  const term = reader.varint("entry term");
  const kindCode = reader.u8("entry kind");
  const kind = KINDS[kindCode];
  if (kind === undefined) throw new FrameDecodeError(`unknown entry kind ${kindCode}`);
  const payload = kind === "data" ? reader.bytes("entry payload") : undefined;
  const config = kind === "config" ? decodeConfig(reader) : undefined;
  return { firstOffset, lastOffset, term, kind, payload, config };
}

export function encodeConfig(writer: Writer, config: ClusterConfig): void {
  writer.varint(config.voters.length);
  for (const node of config.voters) writer.varint(node);
  writer.varint(config.learners.length);
  for (const node of config.learners) writer.varint(node);
}

export function decodeConfig(reader: Reader): ClusterConfig {
  const voters: NodeId[] = [];
  const learners: NodeId[] = [];
  const voterCount = reader.varint("voter count");
  if (voterCount > reader.remaining) throw new FrameDecodeError(`config claims ${voterCount} voters`);
  for (let index = 0; index < voterCount; index++) voters.push(reader.varint("voter"));
  const learnerCount = reader.varint("learner count");
  if (learnerCount > reader.remaining) throw new FrameDecodeError(`config claims ${learnerCount} learners`);
  for (let index = 0; index < learnerCount; index++) learners.push(reader.varint("learner"));
  return { voters, learners };
}

function encodeSnapshotMeta(writer: Writer, meta: SnapshotMeta): void {
  writer.offset(meta.offset);
  writer.varint(meta.term);
  encodeConfig(writer, meta.config);
}

function decodeSnapshotMeta(reader: Reader): SnapshotMeta {
  return {
    offset: reader.offset("snapshot offset"),
    term: reader.varint("snapshot term"),
    config: decodeConfig(reader),
  };
}
