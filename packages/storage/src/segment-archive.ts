import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rename, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { crc32c } from "@raftka/crc32c";
import { CompressStream, DecompressStream } from "zstd-napi";
import { InvalidRequestError } from "./errors.js";
import { fsyncDirectory, unlinkIfExists } from "./fs-util.js";
import type { EpochEntry } from "./leader-epoch-cache.js";
import {
  hex,
  ObjectChecksumError,
  type ObjectStore,
  ObjectStoreError,
  parseHexChecksum,
} from "./object-store.js";
import { segmentFileStem } from "./segment-files.js";

export const SEGMENT_MANIFEST_FORMAT = "raftka-segment-v1";

export type SegmentArchivePhase = "compress" | "upload" | "manifest" | "download" | "done";

/** Structured progress for long uploads and downloads (the caller logs or displays it). */
export interface SegmentArchiveProgress {
  phase: SegmentArchivePhase;
  segmentBaseOffset: number;
  /** Bytes of this phase done so far, out of bytesTotal. */
  bytesDone: number;
  bytesTotal: number;
}

export interface ArchivedFile {
  key: string;
  size: number;
  crc32c: string;
}

/** The object uploaded last: its presence means the segment's objects are complete and verified. */
export interface SegmentManifest {
  format: typeof SEGMENT_MANIFEST_FORMAT;
  baseOffset: number;
  nextOffset: number;
  maxTimestamp: number;
  createdAt: string;
  leaderEpochs: EpochEntry[];
  log: ArchivedFile & { compression: "zstd"; uncompressedSize: number; uncompressedCrc32c: string };
  offsetIndex: ArchivedFile;
  timeIndex: ArchivedFile;
}

/** A closed segment as PartitionLog.segmentInfos() describes it. */
export interface ArchivableSegment {
  baseOffset: number;
  nextOffset: number;
  maxTimestamp: number;
  logPath: string;
  indexPath: string;
  timeIndexPath: string;
  active?: boolean;
}

export interface UploadSegmentOptions {
  /** Where this partition's segments live in the store, e.g. "topics/orders/3". */
  keyPrefix: string;
  /** Leader epochs covering the segment (for Raft snapshots built from archived segments). */
  leaderEpochs?: EpochEntry[];
  compressionLevel?: number;
  /** Where the compressed temporary file goes; defaults to the segment's own directory. */
  temporaryDirectory?: string;
  onProgress?: (progress: SegmentArchiveProgress) => void;
  now?: () => number;
}

export function segmentObjectKeys(keyPrefix: string, baseOffset: number) {
  const stem = `${keyPrefix.replace(/\/+$/, "")}/${segmentFileStem(baseOffset)}`;
  return {
    manifest: `${stem}.manifest.json`,
    log: `${stem}.log.zst`,
    offsetIndex: `${stem}.index`,
    timeIndex: `${stem}.timeindex`,
  };
}

/**
 * Uploads a closed segment: the log zstd-compressed, both indexes as they are, then a manifest with
 * sizes and CRC32Cs of everything (compressed and uncompressed). The manifest goes last, so a
 * manifest in the store always describes complete objects.
 */
export async function uploadSegment(
  store: ObjectStore,
  segment: ArchivableSegment,
  options: UploadSegmentOptions,
): Promise<{ manifestKey: string; manifest: SegmentManifest }> {
  if (segment.active) {
    throw new InvalidRequestError(
      `segment ${segment.baseOffset} is still the active segment; upload it once it is closed and durable ` +
        "(PartitionLog emits 'segment-durable')",
    );
  }
  const keys = segmentObjectKeys(options.keyPrefix, segment.baseOffset);
  const report = (phase: SegmentArchivePhase, bytesDone: number, bytesTotal: number) =>
    options.onProgress?.({ phase, segmentBaseOffset: segment.baseOffset, bytesDone, bytesTotal });
  const rawSize = (await stat(segment.logPath)).size;
  const temporary = join(
    options.temporaryDirectory ?? dirname(segment.logPath),
    `${basename(segment.logPath)}.zst.${randomBytes(4).toString("hex")}.tmp`,
  );
  try {
    const raw = new ChecksumCounter((done) => report("compress", done, rawSize));
    const compressed = new ChecksumCounter();
    // Opened first, so a failed pipeline cannot create the file after the cleanup below (see download).
    const compressedOut = await open(temporary, "w");
    await pipeline(
      createReadStream(segment.logPath),
      raw,
      new CompressStream({ compressionLevel: options.compressionLevel ?? 3 }),
      compressed,
      compressedOut.createWriteStream(),
    );
    if (raw.size !== rawSize) {
      throw new ObjectStoreError(
        `segment ${segment.logPath} changed size while it was compressed (${rawSize} → ${raw.size} bytes); ` +
          "only closed segments can be uploaded: retry once it is closed",
      );
    }
    const logInfo = await store.put(
      keys.log,
      { filePath: temporary },
      {
        crc32c: compressed.checksum,
        metadata: { "raftka-uncompressed-crc32c": hex(raw.checksum) },
        onProgress: (done, total) => report("upload", done, total),
      },
    );
    const indexInfo = await store.put(keys.offsetIndex, { filePath: segment.indexPath });
    const timeIndexInfo = await store.put(keys.timeIndex, { filePath: segment.timeIndexPath });
    const manifest: SegmentManifest = {
      format: SEGMENT_MANIFEST_FORMAT,
      baseOffset: segment.baseOffset,
      nextOffset: segment.nextOffset,
      maxTimestamp: segment.maxTimestamp,
      createdAt: new Date((options.now ?? Date.now)()).toISOString(),
      leaderEpochs: options.leaderEpochs ?? [],
      log: {
        key: keys.log,
        compression: "zstd",
        size: logInfo.size,
        crc32c: hex(compressed.checksum),
        uncompressedSize: raw.size,
        uncompressedCrc32c: hex(raw.checksum),
      },
      offsetIndex: { key: keys.offsetIndex, size: indexInfo.size, crc32c: hex(indexInfo.crc32c!) },
      timeIndex: { key: keys.timeIndex, size: timeIndexInfo.size, crc32c: hex(timeIndexInfo.crc32c!) },
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2));
    report("manifest", 0, manifestBytes.length);
    await store.put(keys.manifest, manifestBytes);
    report("done", manifestBytes.length, manifestBytes.length);
    return { manifestKey: keys.manifest, manifest };
  } finally {
    await unlinkIfExists(temporary);
  }
}

/** Reads and validates a manifest; throws ObjectStoreError naming what is wrong with it. */
export async function readSegmentManifest(store: ObjectStore, manifestKey: string): Promise<SegmentManifest> {
  const bytes = await store.get(manifestKey);
  let manifest: SegmentManifest;
  try {
    manifest = JSON.parse(bytes.toString("utf8")) as SegmentManifest;
  } catch (error) {
    throw new ObjectStoreError(
      `manifest '${manifestKey}' in ${store.description} is not JSON (${(error as Error).message}); ` +
        "re-upload the segment",
    );
  }
  const problem = manifestProblem(manifest);
  if (problem) {
    throw new ObjectStoreError(
      `manifest '${manifestKey}' in ${store.description} is invalid: ${problem}; re-upload the segment`,
    );
  }
  return manifest;
}

function manifestProblem(manifest: SegmentManifest): string | undefined {
  if (manifest?.format !== SEGMENT_MANIFEST_FORMAT) return `format is ${JSON.stringify(manifest?.format)}`;
  for (const field of ["baseOffset", "nextOffset", "maxTimestamp"] as const) {
    if (!Number.isSafeInteger(manifest[field])) return `${field} is not an integer`;
  }
  for (const file of [manifest.log, manifest.offsetIndex, manifest.timeIndex]) {
    if (
      typeof file?.key !== "string" ||
      !Number.isSafeInteger(file.size) ||
      parseHexChecksum(file.crc32c) === undefined
    ) {
      return "a file entry lacks its key, size or crc32c";
    }
  }
  if (manifest.log.compression !== "zstd")
    return `unknown compression ${JSON.stringify(manifest.log.compression)}`;
  if (parseHexChecksum(manifest.log.uncompressedCrc32c) === undefined)
    return "log.uncompressedCrc32c is missing";
  return undefined;
}

/**
 * Downloads an archived segment into `destinationDirectory` as `<base>.log`, `.index`, `.timeindex`,
 * verifying every checksum in the manifest; files appear (atomically renamed) only once verified.
 */
export async function downloadSegment(
  store: ObjectStore,
  manifestKey: string,
  destinationDirectory: string,
  options: { onProgress?: (progress: SegmentArchiveProgress) => void } = {},
): Promise<{ manifest: SegmentManifest; logPath: string; indexPath: string; timeIndexPath: string }> {
  const manifest = await readSegmentManifest(store, manifestKey);
  await mkdir(destinationDirectory, { recursive: true });
  const stem = join(destinationDirectory, segmentFileStem(manifest.baseOffset));
  const targets = { logPath: `${stem}.log`, indexPath: `${stem}.index`, timeIndexPath: `${stem}.timeindex` };
  const suffix = `.${randomBytes(4).toString("hex")}.tmp`;
  const temporaries = [targets.logPath + suffix, targets.indexPath + suffix, targets.timeIndexPath + suffix];
  const report = (phase: SegmentArchivePhase, bytesDone: number, bytesTotal: number) =>
    options.onProgress?.({ phase, segmentBaseOffset: manifest.baseOffset, bytesDone, bytesTotal });
  try {
    const compressed = new ChecksumCounter((done) => report("download", done, manifest.log.size));
    const raw = new ChecksumCounter();
    // Opened before the pipeline: a write stream that opens its own file may create it after a failed
    // pipeline has already cleaned up, leaving a stray temporary file behind.
    const download = await store.getStream(manifest.log.key);
    const logOut = await open(temporaries[0]!, "w");
    await pipeline(download, compressed, new DecompressStream(), raw, logOut.createWriteStream());
    verify(store, manifest.log.key, manifest.log.crc32c, compressed.checksum);
    verify(store, `${manifest.log.key} (uncompressed)`, manifest.log.uncompressedCrc32c, raw.checksum);
    for (const [index, file] of [manifest.offsetIndex, manifest.timeIndex].entries()) {
      const bytes = await store.get(file.key);
      verify(store, file.key, file.crc32c, crc32c(bytes));
      const handle = await open(temporaries[index + 1]!, "w");
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    const logHandle = await open(temporaries[0]!, "r+");
    try {
      await logHandle.sync();
    } finally {
      await logHandle.close();
    }
    await rename(temporaries[1]!, targets.indexPath);
    await rename(temporaries[2]!, targets.timeIndexPath);
    await rename(temporaries[0]!, targets.logPath);
    await fsyncDirectory(destinationDirectory);
    report("done", manifest.log.uncompressedSize, manifest.log.uncompressedSize);
    return { manifest, ...targets };
  } finally {
    await Promise.all(temporaries.map((path) => unlinkIfExists(path)));
  }
}

/** Base offsets of the segments archived under `keyPrefix` (those with a manifest), in order. */
export async function listArchivedSegments(store: ObjectStore, keyPrefix: string): Promise<number[]> {
  const baseOffsets: number[] = [];
  const prefix = `${keyPrefix.replace(/\/+$/, "")}/`;
  for await (const object of store.list(prefix)) {
    const match = /^(\d{20})\.manifest\.json$/.exec(object.key.slice(prefix.length));
    if (match) baseOffsets.push(Number(match[1]));
  }
  return baseOffsets.sort((a, b) => a - b);
}

function verify(store: ObjectStore, key: string, expectedHex: string, actual: number): void {
  const expected = parseHexChecksum(expectedHex)!;
  if (expected !== actual) throw new ObjectChecksumError(key, store.description, expected, actual);
}

/** Pass-through that keeps a running CRC32C and byte count, reporting progress as bytes flow. */
class ChecksumCounter extends Transform {
  checksum = 0;
  size = 0;
  constructor(private readonly onBytes?: (bytesDone: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.checksum = crc32c(chunk, this.checksum);
    this.size += chunk.length;
    this.onBytes?.(this.size);
    callback(null, chunk);
  }
}
