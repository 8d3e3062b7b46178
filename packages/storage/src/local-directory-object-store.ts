import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rmdir, stat } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { crc32c } from "@raftka/crc32c";
import { fsyncDirectory, isNotFound, readFully, unlinkIfExists } from "./fs-util.js";
import {
  type ByteRange,
  bodySize,
  ChecksumVerifier,
  type GetOptions,
  hex,
  type ObjectBody,
  ObjectChecksumError,
  type ObjectInfo,
  ObjectNotFoundError,
  type ObjectStore,
  ObjectStoreError,
  type ObjectSummary,
  ProgressCounter,
  type PutOptions,
  parseHexChecksum,
  validateObjectKey,
  validateRange,
} from "./object-store.js";

// Object data lives at <root>/<key>; its metadata (size, CRC32C, user metadata) at
// <root>/.meta/<key>.json. Hidden names are never keys, so temporary files and .meta never list.
const META_DIRECTORY = ".meta";

interface StoredMetadata {
  size: number;
  crc32c: string;
  metadata: Record<string, string>;
}

/**
 * The default object store: a local directory (or a mounted network file system). Writes are atomic:
 * data and metadata go to temporary files that are fsynced and renamed into place, metadata first,
 * data last (the data rename is the commit point).
 */
export class LocalDirectoryObjectStore implements ObjectStore {
  readonly description: string;

  constructor(readonly root: string) {
    this.description = `local directory ${root}`;
  }

  async put(key: string, body: ObjectBody, options: PutOptions = {}): Promise<ObjectInfo> {
    validateObjectKey(key);
    const path = this.dataPath(key);
    const metaPath = this.metaPath(key);
    await mkdir(dirname(path), { recursive: true });
    await mkdir(dirname(metaPath), { recursive: true });
    const suffix = randomBytes(6).toString("hex");
    const temporary = join(dirname(path), `.tmp-${suffix}`);
    const temporaryMeta = join(dirname(metaPath), `.tmp-${suffix}`);
    try {
      const { size, checksum } = await writeBody(temporary, body, options);
      if (options.crc32c !== undefined && options.crc32c !== checksum) {
        throw new ObjectStoreError(
          `the body of '${key}' has CRC32C ${hex(checksum)}, not the ${hex(options.crc32c)} the caller gave: ` +
            "the source changed while it was being stored; retry the upload",
        );
      }
      const stored: StoredMetadata = { size, crc32c: hex(checksum), metadata: { ...options.metadata } };
      await writeDurably(temporaryMeta, Buffer.from(JSON.stringify(stored)));
      await rename(temporaryMeta, metaPath);
      await rename(temporary, path);
      await fsyncDirectory(dirname(metaPath));
      await fsyncDirectory(dirname(path));
      return {
        key,
        size,
        crc32c: checksum,
        lastModified: (await stat(path)).mtime,
        metadata: stored.metadata,
      };
    } catch (error) {
      await unlinkIfExists(temporary).catch(() => {});
      await unlinkIfExists(temporaryMeta).catch(() => {});
      throw this.wrap(`storing '${key}'`, error);
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<Buffer> {
    validateObjectKey(key);
    validateRange(options.range);
    const info = await this.requireInfo(key);
    const { start, end } = clampRange(options.range, info.size);
    const handle = await open(this.dataPath(key), "r").catch((error) => {
      throw this.wrap(`reading '${key}'`, error);
    });
    try {
      const buffer = Buffer.allocUnsafe(end - start);
      const read = await readFully(handle, buffer, 0, end - start, start);
      const data = buffer.subarray(0, read);
      if (!options.range && info.crc32c !== undefined) {
        const actual = crc32c(data);
        if (actual !== info.crc32c) throw new ObjectChecksumError(key, this.description, info.crc32c, actual);
      }
      return data;
    } finally {
      await handle.close();
    }
  }

  async getStream(key: string, options: GetOptions = {}): Promise<Readable> {
    validateObjectKey(key);
    validateRange(options.range);
    const info = await this.requireInfo(key);
    const { start, end } = clampRange(options.range, info.size);
    if (end === start) return createEmptyStream();
    const stream = createReadStream(this.dataPath(key), { start, end: end - 1 });
    if (options.range || info.crc32c === undefined) return stream;
    const verifier = new ChecksumVerifier(
      info.crc32c,
      (actual) => new ObjectChecksumError(key, this.description, info.crc32c!, actual),
    );
    stream.on("error", (error) => verifier.destroy(error));
    return stream.pipe(verifier);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    validateObjectKey(key);
    let dataStat: Awaited<ReturnType<typeof stat>>;
    try {
      dataStat = await stat(this.dataPath(key));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.wrap(`looking up '${key}'`, error);
    }
    if (!dataStat.isFile()) return undefined;
    let stored: StoredMetadata | undefined;
    try {
      stored = JSON.parse(await readFile(this.metaPath(key), "utf8")) as StoredMetadata;
    } catch (error) {
      if (!isNotFound(error) && !(error instanceof SyntaxError))
        throw this.wrap(`looking up '${key}'`, error);
    }
    // Metadata that does not describe this data (a put interrupted between its renames) is ignored.
    const trusted = stored && stored.size === dataStat.size ? stored : undefined;
    return {
      key,
      size: dataStat.size,
      crc32c: parseHexChecksum(trusted?.crc32c),
      lastModified: dataStat.mtime,
      metadata: { ...trusted?.metadata },
    };
  }

  async *list(prefix: string): AsyncIterable<ObjectSummary> {
    // No key has a hidden segment, so such a prefix matches nothing (and must not list .meta).
    if (prefix.split("/").some((segment) => segment.startsWith("."))) return;
    // Walk only the directory the prefix names (up to its last '/'), then filter by the full prefix.
    const lastSlash = prefix.lastIndexOf("/");
    const base = lastSlash >= 0 ? join(this.root, prefix.slice(0, lastSlash)) : this.root;
    const keys: ObjectSummary[] = [];
    await this.collect(base, keys, prefix);
    keys.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
    yield* keys;
  }

  async delete(key: string): Promise<void> {
    validateObjectKey(key);
    try {
      await unlinkIfExists(this.dataPath(key));
      await unlinkIfExists(this.metaPath(key));
    } catch (error) {
      throw this.wrap(`deleting '${key}'`, error);
    }
    await this.removeEmptyParents(dirname(this.dataPath(key)));
    await this.removeEmptyParents(dirname(this.metaPath(key)));
  }

  private dataPath(key: string): string {
    return join(this.root, ...key.split("/"));
  }

  private metaPath(key: string): string {
    return `${join(this.root, META_DIRECTORY, ...key.split("/"))}.json`;
  }

  private async requireInfo(key: string): Promise<ObjectInfo> {
    const info = await this.head(key);
    if (!info) throw new ObjectNotFoundError(key, this.description);
    return info;
  }

  private async collect(directory: string, out: ObjectSummary[], prefix: string): Promise<void> {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(directory, { withFileTypes: true });
    } catch (error) {
      if (isNotFound(error) || (error as NodeJS.ErrnoException).code === "ENOTDIR") return;
      throw this.wrap(`listing ${directory}`, error);
    }
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue;
      const path = join(directory, entry.name);
      const key = relative(this.root, path).split(sep).join("/");
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.collect(path, out, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const info = await stat(path).catch(() => undefined);
        if (info) out.push({ key, size: info.size, lastModified: info.mtime });
      }
    }
  }

  private async removeEmptyParents(directory: string): Promise<void> {
    let current = directory;
    while (
      current.startsWith(this.root) &&
      current !== this.root &&
      current !== join(this.root, META_DIRECTORY)
    ) {
      try {
        await rmdir(current);
      } catch {
        return; // not empty (or already gone): stop climbing
      }
      current = dirname(current);
    }
  }

  private wrap(action: string, error: unknown): Error {
    if (error instanceof ObjectStoreError) return error;
    return new ObjectStoreError(
      `${action} in ${this.description} failed (${(error as Error).message}); check the directory exists, ` +
        "is writable and has free space",
      error,
    );
  }
}

function clampRange(range: ByteRange | undefined, size: number): { start: number; end: number } {
  if (!range) return { start: 0, end: size };
  const start = Math.min(range.start, size);
  return { start, end: Math.min(range.end, size) };
}

async function writeBody(
  path: string,
  body: ObjectBody,
  options: PutOptions,
): Promise<{ size: number; checksum: number }> {
  if (!("filePath" in body)) {
    const bytes = Buffer.from(body.buffer, body.byteOffset, body.length);
    await writeDurably(path, bytes);
    return { size: bytes.length, checksum: crc32c(bytes) };
  }
  const total = await bodySize(body);
  let checksum = 0;
  let size = 0;
  const checksummer = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      checksum = crc32c(chunk, checksum);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  if (options.onProgress) {
    const progress = new ProgressCounter(total, options.onProgress);
    await pipeline(createReadStream(body.filePath), checksummer, progress, createWriteStream(path));
  } else {
    await pipeline(createReadStream(body.filePath), checksummer, createWriteStream(path));
  }
  const handle = await open(path, "r+");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { size, checksum };
}

async function writeDurably(path: string, bytes: Buffer): Promise<void> {
  const handle = await open(path, "w");
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function createEmptyStream(): Readable {
  return Readable.from([]);
}
