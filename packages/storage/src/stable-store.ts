import { type FileHandle, open, readFile, rename } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { crc32c } from "@raftka/crc32c";
import { describeCause, InvalidRequestError, KafkaStorageError, StorageError } from "./errors.js";
import {
  type FlushRequestOptions,
  FlushScheduler,
  type FlushTarget,
  type FlushWork,
} from "./flush-scheduler.js";
import { fsyncDirectory, isNotFound, unlinkIfExists, writevFully } from "./fs-util.js";

// File layout: an 8-byte magic header, then records. A record is
//   crc32c u32 | bodyLength u32 | body
// where the CRC covers bodyLength and body, and the body is one or more operations
//   type u8 (1 = set, 2 = delete) | keyLength u16 | valueLength u32 | key (utf8) | value
// A record is all-or-nothing: setMany() writes several keys atomically in one record.
const MAGIC = Buffer.from("RFTKSS01", "latin1");
const RECORD_HEADER_SIZE = 8;
const OPERATION_HEADER_SIZE = 7;
const OPERATION_SET = 1;
const OPERATION_DELETE = 2;
export const STABLE_STORE_MAX_KEY_BYTES = 0xffff;
export const STABLE_STORE_MAX_VALUE_BYTES = 16 * 1024 * 1024;
const COMPACTION_SUFFIX = ".compact.tmp";

export interface StableStoreOptions {
  /** Shared group-commit scheduler (so store fsyncs share rounds with the logs'); else a private one. */
  flushScheduler?: FlushScheduler;
  /** Compact when garbage exceeds both this many bytes and `compactGarbageRatio` × live bytes. */
  compactMinGarbageBytes?: number;
  compactGarbageRatio?: number;
}

/**
 * Bytes skipped on open because no record there passed its checks, with intact records after them: damage in
 * the middle of the file (bit rot, a bad sector), not a torn last write, which only ever ends the file.
 */
export interface StableStoreDamagedRegion {
  /** Byte where the damage starts: the first record that failed its checks. */
  from: number;
  /** Bytes skipped, up to the next intact record. The writes they held cannot be read: they are lost. */
  bytes: number;
  /** Why the record at `from` was rejected. */
  problem: string;
  /** Intact records read between this region and the next one (or the end of the file), all kept. */
  intactRecordsAfter: number;
}

export interface StableStoreRecoveryReport {
  path: string;
  created: boolean;
  /** Intact records applied, in file order, including those after damaged regions. */
  records: number;
  liveKeys: number;
  /**
   * Bytes cut from the end: a torn last write (normal after a crash), or damage with no intact record
   * after it, which cannot be told from one.
   */
  truncatedBytes: number;
  /** Why the end was cut. */
  reason?: string;
  /**
   * Damage in the middle of the file, skipped so the intact records after it (newer values) are kept;
   * empty for a healthy file. Whatever the damaged bytes wrote is lost: a key they changed has the value
   * of the last intact record that set it (or none), older than the one it had.
   */
  damagedRegions: StableStoreDamagedRegion[];
  /** Total bytes of `damagedRegions`. */
  damagedBytesSkipped: number;
  /** Total intact records after damaged regions, all kept. */
  recordsKeptAfterDamage: number;
  /**
   * The file was rewritten (by compaction, from the values read) so the damage is no longer on disk;
   * false when there was no damage in the middle, or when opening failed before the rewrite was durable.
   */
  rewrittenWithoutDamage: boolean;
  removedFiles: string[];
}

export interface StableStoreStats {
  fileBytes: number;
  liveBytes: number;
  garbageBytes: number;
  compactions: number;
  keys: number;
}

interface Pending {
  record: Buffer;
  /** Something waits on this write now (a Raft vote): its fsync need not wait for a running round. */
  urgent: boolean;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Durable key → value map for many small items (Raft term/vote/commit of thousands of groups, broker
 * metadata): an append-only file of checksummed records, group-committed fsync, compaction when
 * garbage builds up, recovery that cuts a torn tail and skips damage in the middle without losing the
 * records after it. Reads are synchronous from memory.
 */
export class StableStore {
  readonly path: string;
  readonly recoveryReport: StableStoreRecoveryReport;
  private readonly values = new Map<string, Buffer>();
  /** Bytes each live key occupies in the file (its operation plus a record header). */
  private readonly liveSizes = new Map<string, number>();
  private liveBytes = 0;
  private fileBytes: number;
  private handle: FileHandle;
  private readonly scheduler: FlushScheduler;
  private readonly compactMinGarbageBytes: number;
  private readonly compactGarbageRatio: number;
  private pending: Pending[] = [];
  private writing = false;
  private dirty = false;
  private failure: KafkaStorageError | undefined;
  private closed = false;
  private compactions = 0;
  private readonly flushTarget: FlushTarget = { beginFlush: () => this.beginFlush() };

  private constructor(
    path: string,
    handle: FileHandle,
    fileBytes: number,
    report: StableStoreRecoveryReport,
    options: StableStoreOptions,
  ) {
    this.path = path;
    this.handle = handle;
    this.fileBytes = fileBytes;
    this.recoveryReport = report;
    this.scheduler = options.flushScheduler ?? new FlushScheduler();
    this.compactMinGarbageBytes = options.compactMinGarbageBytes ?? 1024 * 1024;
    this.compactGarbageRatio = options.compactGarbageRatio ?? 1;
  }

  /**
   * Opens or creates the store at `path` (see recoveryReport). A torn or corrupt tail is cut. Damage
   * followed by intact records is skipped and those records kept: they hold newer Raft terms and votes,
   * and dropping them would let a node reuse a leader epoch or vote twice in a term. The file is then
   * rewritten without the damage by compaction, which replaces it only once the new file is durable.
   */
  static async open(path: string, options: StableStoreOptions = {}): Promise<StableStore> {
    const report: StableStoreRecoveryReport = {
      path,
      created: false,
      records: 0,
      liveKeys: 0,
      truncatedBytes: 0,
      damagedRegions: [],
      damagedBytesSkipped: 0,
      recordsKeptAfterDamage: 0,
      rewrittenWithoutDamage: false,
      removedFiles: [],
    };
    if (await unlinkIfExists(path + COMPACTION_SUFFIX))
      report.removedFiles.push(basename(path) + COMPACTION_SUFFIX);
    let contents: Buffer;
    try {
      contents = await readFile(path);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      contents = Buffer.alloc(0);
      report.created = true;
    }
    if (contents.length >= MAGIC.length && !contents.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new StorageError(
        "KAFKA_STORAGE_ERROR",
        `${path} is not a Raftka stable store (its first bytes are not '${MAGIC.toString("latin1")}'); ` +
          "point the store at its own file or move the other file away",
      );
    }
    const handle = await open(path, report.created ? "w+" : "r+");
    let fileBytes = contents.length;
    const parsed = contents.length >= MAGIC.length ? parseRecords(contents) : undefined;
    const damaged = parsed !== undefined && parsed.damagedRegions.length > 0;
    if (parsed) {
      report.damagedRegions = parsed.damagedRegions;
      for (const region of parsed.damagedRegions) {
        report.damagedBytesSkipped += region.bytes;
        report.recordsKeptAfterDamage += region.intactRecordsAfter;
      }
      if (parsed.validBytes < contents.length) {
        report.truncatedBytes = contents.length - parsed.validBytes;
        report.reason = parsed.tornTailProblem;
      }
    }
    try {
      if (!parsed) {
        // New file, or one torn before its header was complete.
        report.truncatedBytes = contents.length;
        await handle.truncate(0);
        await writevFully(handle, [MAGIC], 0);
        await handle.sync();
        await fsyncDirectory(dirname(path));
        fileBytes = MAGIC.length;
      } else if (!damaged && parsed.validBytes < contents.length) {
        // With damage the rewrite below drops the tail too; cutting it here would modify the only copy
        // of the records after the damage before their rewrite is durable.
        await handle.truncate(parsed.validBytes);
        await handle.sync();
        fileBytes = parsed.validBytes;
      }
    } catch (error) {
      await handle.close();
      throw error;
    }
    const store = new StableStore(path, handle, fileBytes, report, options);
    if (parsed) {
      for (const record of parsed.records) store.applyRecord(record);
      report.records = parsed.records.length;
    }
    report.liveKeys = store.values.size;
    if (damaged) {
      try {
        await store.compact();
      } catch (error) {
        await store.handle.close();
        throw error;
      }
      report.rewrittenWithoutDamage = true;
    }
    return store;
  }

  /** The latest value set for `key` (durable or about to be: await set() before acting on it). */
  get(key: string): Buffer | undefined {
    return this.values.get(key);
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  keys(prefix = ""): string[] {
    const keys: string[] = [];
    for (const key of this.values.keys()) if (key.startsWith(prefix)) keys.push(key);
    return keys;
  }

  get stats(): StableStoreStats {
    return {
      fileBytes: this.fileBytes,
      liveBytes: this.liveBytes,
      garbageBytes: this.garbageBytes,
      compactions: this.compactions,
      keys: this.values.size,
    };
  }

  /** Sets `key`; resolves once durable. */
  set(key: string, value: Buffer): Promise<void> {
    return this.setMany([[key, value]]);
  }

  /** Deletes `key`; resolves once durable. */
  delete(key: string): Promise<void> {
    return this.setMany([[key, undefined]]);
  }

  /**
   * Sets (value) or deletes (undefined) several keys atomically: after a crash, all or none. `urgent`
   * as for FlushScheduler.flush: the write's fsync starts without waiting for other logs' running round.
   */
  setMany(
    entries: readonly (readonly [string, Buffer | undefined])[],
    options?: FlushRequestOptions,
  ): Promise<void> {
    try {
      this.assertWritable();
      if (entries.length === 0) return Promise.resolve();
      const record = encodeRecord(entries);
      this.applyRecord(decodeOperations(record.subarray(RECORD_HEADER_SIZE)));
      return new Promise<void>((resolve, reject) => {
        this.pending.push({ record, urgent: options?.urgent === true, resolve, reject });
        if (!this.writing) {
          this.writing = true;
          // A microtask later, so every set made in this same synchronous stretch shares one write.
          queueMicrotask(() => void this.writeLoop());
        }
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Waits for pending writes, then closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.writing || this.pending.length > 0) {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await this.handle.close();
  }

  private get garbageBytes(): number {
    return this.fileBytes - MAGIC.length - this.liveBytes;
  }

  private assertWritable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new InvalidRequestError(`stable store ${this.path} is closed; open it again`);
  }

  private applyRecord(operations: Operation[]): void {
    for (const operation of operations) {
      const previous = this.liveSizes.get(operation.key);
      if (previous !== undefined) this.liveBytes -= previous;
      if (operation.value === undefined) {
        this.values.delete(operation.key);
        this.liveSizes.delete(operation.key);
      } else {
        const size =
          RECORD_HEADER_SIZE +
          OPERATION_HEADER_SIZE +
          Buffer.byteLength(operation.key) +
          operation.value.length;
        this.values.set(operation.key, operation.value);
        this.liveSizes.set(operation.key, size);
        this.liveBytes += size;
      }
    }
  }

  private async writeLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        try {
          if (this.failure) throw this.failure;
          let bytes = 0;
          for (const item of batch) bytes += item.record.length;
          if (this.shouldCompact(bytes)) {
            await this.compact();
          } else {
            await writevFully(
              this.handle,
              batch.map((item) => item.record),
              this.fileBytes,
            );
            this.fileBytes += bytes;
            this.dirty = true;
            await this.scheduler.flush(this.flushTarget, { urgent: batch.some((item) => item.urgent) });
          }
          for (const item of batch) item.resolve();
        } catch (error) {
          this.failure ??=
            error instanceof KafkaStorageError
              ? error
              : new KafkaStorageError(
                  `writing stable store ${this.path} failed (${describeCause(error)}); ` +
                    "check the disk and restart: the store recovers to its last durable state",
                  error,
                );
          for (const item of batch) item.reject(this.failure);
        }
      }
    } finally {
      this.writing = false;
    }
  }

  private shouldCompact(incomingBytes: number): boolean {
    // Garbage if the incoming records were appended (memory already reflects them).
    const garbage = this.fileBytes + incomingBytes - MAGIC.length - this.liveBytes;
    return garbage > this.compactMinGarbageBytes && garbage > this.liveBytes * this.compactGarbageRatio;
  }

  /** Rewrites the live keys into a new file and swaps it in atomically (temp, fsync, rename, fsync dir). */
  private async compact(): Promise<void> {
    const temporary = this.path + COMPACTION_SUFFIX;
    const chunks: Buffer[] = [MAGIC];
    let size = MAGIC.length;
    for (const [key, value] of this.values) {
      const record = encodeRecord([[key, value]]);
      chunks.push(record);
      size += record.length;
    }
    const handle = await open(temporary, "w+");
    try {
      await writevFully(handle, chunks, 0);
      await handle.sync();
    } catch (error) {
      await handle.close();
      await unlinkIfExists(temporary);
      throw error;
    }
    try {
      await rename(temporary, this.path);
    } catch (error) {
      await handle.close();
      await unlinkIfExists(temporary);
      throw error;
    }
    // From here the compacted file is the one at `path`: the store must hold its handle (and close the old
    // one) even if the directory fsync fails, which fails the store, so that close() releases the right file.
    const previous = this.handle;
    this.handle = handle;
    this.fileBytes = size;
    this.dirty = false;
    this.compactions += 1;
    await previous.close();
    await fsyncDirectory(dirname(this.path));
  }

  private beginFlush(): FlushWork {
    const files = this.dirty ? [{ path: this.path, handle: this.handle }] : [];
    this.dirty = false;
    return { files, complete: () => {} };
  }
}

interface Operation {
  key: string;
  value: Buffer | undefined;
}

function encodeRecord(entries: readonly (readonly [string, Buffer | undefined])[]): Buffer {
  let bodyLength = 0;
  const keys: Buffer[] = [];
  for (const [key, value] of entries) {
    if (typeof key !== "string" || key.length === 0) {
      throw new InvalidRequestError(
        `stable store keys must be non-empty strings, got ${JSON.stringify(key)}`,
      );
    }
    const keyBytes = Buffer.from(key, "utf8");
    if (keyBytes.length > STABLE_STORE_MAX_KEY_BYTES) {
      throw new InvalidRequestError(
        `stable store key of ${keyBytes.length} bytes exceeds ${STABLE_STORE_MAX_KEY_BYTES}; use a shorter key`,
      );
    }
    if (value !== undefined && !Buffer.isBuffer(value)) {
      throw new InvalidRequestError(
        `stable store value for '${key}' must be a Buffer (or undefined to delete)`,
      );
    }
    if (value !== undefined && value.length > STABLE_STORE_MAX_VALUE_BYTES) {
      throw new InvalidRequestError(
        `stable store value for '${key}' is ${value.length} bytes, over ${STABLE_STORE_MAX_VALUE_BYTES}; ` +
          "store large data in a log or the object store and keep a reference here",
      );
    }
    keys.push(keyBytes);
    bodyLength += OPERATION_HEADER_SIZE + keyBytes.length + (value?.length ?? 0);
  }
  const record = Buffer.allocUnsafe(RECORD_HEADER_SIZE + bodyLength);
  record.writeUInt32BE(bodyLength, 4);
  let at = RECORD_HEADER_SIZE;
  entries.forEach(([, value], index) => {
    const keyBytes = keys[index]!;
    record.writeUInt8(value === undefined ? OPERATION_DELETE : OPERATION_SET, at);
    record.writeUInt16BE(keyBytes.length, at + 1);
    record.writeUInt32BE(value?.length ?? 0, at + 3);
    at += OPERATION_HEADER_SIZE;
    keyBytes.copy(record, at);
    at += keyBytes.length;
    if (value) {
      value.copy(record, at);
      at += value.length;
    }
  });
  record.writeUInt32BE(crc32c(record.subarray(4)), 0);
  return record;
}

/**
 * Decodes a record body, throwing if it is malformed. Anything encodeRecord would refuse (an empty key, a
 * value over the limit) is malformed too, so bytes found while resynchronising past damage must look
 * like something this store wrote. Values are copies, never views of the file.
 */
function decodeOperations(body: Buffer): Operation[] {
  const operations: Operation[] = [];
  let at = 0;
  while (at < body.length) {
    if (at + OPERATION_HEADER_SIZE > body.length) throw new Error("operation header runs past the record");
    const type = body.readUInt8(at);
    const keyLength = body.readUInt16BE(at + 1);
    const valueLength = body.readUInt32BE(at + 3);
    at += OPERATION_HEADER_SIZE;
    if (keyLength === 0) throw new Error("operation with an empty key");
    if (valueLength > STABLE_STORE_MAX_VALUE_BYTES)
      throw new Error(`value of ${valueLength} bytes is over the limit`);
    if (at + keyLength + valueLength > body.length) throw new Error("operation runs past the record");
    const key = body.toString("utf8", at, at + keyLength);
    at += keyLength;
    if (type === OPERATION_SET) {
      operations.push({ key, value: Buffer.from(body.subarray(at, at + valueLength)) });
    } else if (type === OPERATION_DELETE && valueLength === 0) {
      operations.push({ key, value: undefined });
    } else {
      throw new Error(`unknown operation type ${type}`);
    }
    at += valueLength;
  }
  return operations;
}

/** The smallest body encodeRecord writes: one delete of a one-byte key. */
const MIN_BODY_BYTES = OPERATION_HEADER_SIZE + 1;

type RecordRead = { operations: Operation[]; end: number } | { problem: string };

/** Reads the record at `at` if it passes every check: length within the file, CRC32C, body decodes. */
function readRecordAt(contents: Buffer, at: number): RecordRead {
  if (at + RECORD_HEADER_SIZE > contents.length)
    return { problem: "record header cut short by the end of the file" };
  const bodyLength = contents.readUInt32BE(at + 4);
  // Checked before the CRC so a resynchronising scan rejects most positions without computing one.
  if (bodyLength < MIN_BODY_BYTES)
    return { problem: `record length ${bodyLength} is too short for an operation` };
  const end = at + RECORD_HEADER_SIZE + bodyLength;
  if (end > contents.length)
    return { problem: `record of ${bodyLength} bytes cut short by the end of the file` };
  if (contents.readUInt32BE(at) !== crc32c(contents.subarray(at + 4, end))) {
    return { problem: "CRC32C mismatch" };
  }
  try {
    return { operations: decodeOperations(contents.subarray(at + RECORD_HEADER_SIZE, end)), end };
  } catch (error) {
    return { problem: `malformed record: ${(error as Error).message}` };
  }
}

/**
 * The first position from `from` on where a whole record passes every check, if any: where parsing
 * resumes after damage. Random bytes pass the length, CRC32C and decoding checks together about once in
 * 2^32 positions that get as far as the CRC.
 */
function findIntactRecord(contents: Buffer, from: number): number | undefined {
  for (let at = from; at + RECORD_HEADER_SIZE <= contents.length; at += 1) {
    if ("operations" in readRecordAt(contents, at)) return at;
  }
  return undefined;
}

interface ParsedRecords {
  /** Every intact record, in file order. */
  records: Operation[][];
  damagedRegions: StableStoreDamagedRegion[];
  /** Where the last intact record ends: the bytes after it, if any, are a torn tail. */
  validBytes: number;
  tornTailProblem?: string;
}

/**
 * Reads every intact record. A record that fails its checks starts either damage, if an intact record
 * follows somewhere (parsing resumes there), or a torn tail, if none does.
 */
function parseRecords(contents: Buffer): ParsedRecords {
  const records: Operation[][] = [];
  const damagedRegions: StableStoreDamagedRegion[] = [];
  let at = MAGIC.length;
  while (at < contents.length) {
    const read = readRecordAt(contents, at);
    if ("operations" in read) {
      records.push(read.operations);
      const region = damagedRegions.at(-1);
      if (region) region.intactRecordsAfter += 1;
      at = read.end;
      continue;
    }
    const resumeAt = findIntactRecord(contents, at + 1);
    if (resumeAt === undefined) {
      return {
        records,
        damagedRegions,
        validBytes: at,
        tornTailProblem: `at byte ${at}: ${read.problem}`,
      };
    }
    damagedRegions.push({ from: at, bytes: resumeAt - at, problem: read.problem, intactRecordsAfter: 0 });
    at = resumeAt;
  }
  return { records, damagedRegions, validBytes: at };
}
