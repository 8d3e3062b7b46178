import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { type Readable, Transform, type TransformCallback } from "node:stream";
import { crc32c } from "@raftka/crc32c";
import { StorageError } from "./errors.js";

/** A stored object's description, as `head` and `put` return it. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** CRC32C of the whole object recorded at upload; undefined for objects not written by Raftka. */
  crc32c: number | undefined;
  lastModified: Date;
  /** User metadata given to `put` (string values, lower-case keys). */
  metadata: Record<string, string>;
}

/** What `list` yields: listing does not fetch metadata (use `head` for that). */
export interface ObjectSummary {
  key: string;
  size: number;
  lastModified: Date;
}

/** A Buffer, or a local file streamed from disk (re-readable, so uploads can be retried). */
export type ObjectBody = Buffer | Uint8Array | { filePath: string };

export interface PutOptions {
  metadata?: Record<string, string>;
  /** The body's CRC32C when the caller already computed it (saves reading a file twice). */
  crc32c?: number;
  /** Upload progress for file bodies: bytes sent so far out of the total. */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

/** Byte range [start, end) of an object; tiered reads fetch the part of a segment they need. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface GetOptions {
  range?: ByteRange;
}

/**
 * The seam between Raftka and object storage (closed segments, snapshots). Whole-object reads verify
 * the CRC32C recorded at upload; ranged reads serve tiered fetches.
 */
export interface ObjectStore {
  /** Human-readable location (for logs and error messages). */
  readonly description: string;
  put(key: string, body: ObjectBody, options?: PutOptions): Promise<ObjectInfo>;
  get(key: string, options?: GetOptions): Promise<Buffer>;
  /** Streams the object; a whole-object stream errors at its end if the CRC32C does not match. */
  getStream(key: string, options?: GetOptions): Promise<Readable>;
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Objects whose key starts with `prefix`, in key order. */
  list(prefix: string): AsyncIterable<ObjectSummary>;
  /** Deletes the object; deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
}

export class ObjectStoreError extends StorageError {
  constructor(message: string, cause?: unknown) {
    super("KAFKA_STORAGE_ERROR", message, { cause });
  }
}

export class ObjectNotFoundError extends ObjectStoreError {
  constructor(
    readonly key: string,
    where: string,
  ) {
    super(
      `object '${key}' does not exist in ${where}; check the key, or whether it was deleted or never uploaded`,
    );
  }
}

export class ObjectChecksumError extends ObjectStoreError {
  constructor(key: string, where: string, expected: number, actual: number) {
    super(
      `object '${key}' in ${where} has CRC32C ${hex(actual)} but was uploaded with ${hex(expected)}: ` +
        "it is corrupt or was overwritten mid-read; re-upload it from a replica that still has the data",
    );
  }
}

export function hex(value: number): string {
  return value.toString(16).padStart(8, "0");
}

export function parseHexChecksum(text: string | undefined): number | undefined {
  if (text === undefined || !/^[0-9a-f]{8}$/.test(text)) return undefined;
  return Number.parseInt(text, 16);
}

/** Metadata key under which both stores record the object's CRC32C. */
export const CHECKSUM_METADATA_KEY = "raftka-crc32c";

/**
 * Keys are portable between the local directory and S3: non-empty UTF-8 up to 1024 bytes, '/'
 * separated, no empty, '.' or '..' segments, no segment starting with '.' (reserved for temporary
 * and metadata files), no backslashes or control characters.
 */
export function validateObjectKey(key: string): void {
  const problem = objectKeyProblem(key);
  if (problem) {
    throw new ObjectStoreError(`invalid object key ${JSON.stringify(key)}: ${problem}`);
  }
}

function objectKeyProblem(key: string): string | undefined {
  if (typeof key !== "string" || key.length === 0) return "it must be a non-empty string";
  if (Buffer.byteLength(key) > 1024) return "it is longer than 1024 bytes";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f\\]/.test(key)) return "it contains a control character or a backslash";
  for (const segment of key.split("/")) {
    if (segment.length === 0) return "it has an empty path segment (leading, trailing or double '/')";
    if (segment.startsWith(".")) return `segment '${segment}' starts with '.', which is reserved`;
  }
  return undefined;
}

export function validateRange(range: ByteRange | undefined): void {
  if (!range) return;
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end <= start) {
    throw new ObjectStoreError(`invalid byte range [${start}, ${end}): need integers with 0 <= start < end`);
  }
}

export async function bodySize(body: ObjectBody): Promise<number> {
  if ("filePath" in body) return (await stat(body.filePath)).size;
  return body.length;
}

export async function bodyChecksum(body: ObjectBody): Promise<number> {
  if (!("filePath" in body)) return crc32c(Buffer.from(body.buffer, body.byteOffset, body.length));
  let checksum = 0;
  for await (const chunk of createReadStream(body.filePath)) checksum = crc32c(chunk as Buffer, checksum);
  return checksum;
}

/** Passes bytes through, computing their CRC32C; fails the stream at its end on a mismatch. */
export class ChecksumVerifier extends Transform {
  private checksum = 0;
  constructor(
    private readonly expected: number | undefined,
    private readonly onMismatch: (actual: number) => Error,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.checksum = crc32c(chunk, this.checksum);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expected !== undefined && this.expected !== this.checksum)
      callback(this.onMismatch(this.checksum));
    else callback();
  }
}

/** Counts bytes passing through and reports them (upload progress). */
export class ProgressCounter extends Transform {
  private done = 0;
  constructor(
    private readonly total: number,
    private readonly report: (bytesDone: number, bytesTotal: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.done += chunk.length;
    this.report(this.done, this.total);
    callback(null, chunk);
  }
}
