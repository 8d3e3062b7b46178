import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { crc32c } from "@raftka/crc32c";
import {
  bodyChecksum,
  bodySize,
  CHECKSUM_METADATA_KEY,
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

export interface S3ObjectStoreOptions {
  bucket: string;
  /** Defaults to us-east-1 (any value works for S3-compatible stores that ignore it). */
  region?: string;
  /** For S3-compatible stores (MinIO, moto, Ceph): e.g. http://127.0.0.1:9000 */
  endpoint?: string;
  /** Path-style URLs (endpoint/bucket/key) as most S3-compatible stores need; AWS uses virtual hosts. */
  forcePathStyle?: boolean;
  /** Defaults to the SDK's chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Every key is stored under this prefix, so several clusters can share a bucket. */
  keyPrefix?: string;
  /** Use an existing client (shared connection pool) instead of building one from the options above. */
  client?: S3Client;
  maxAttempts?: number;
}

/** Object store on S3 or an S3-compatible service, through @aws-sdk/client-s3. */
export class S3ObjectStore implements ObjectStore {
  readonly description: string;
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly keyPrefix: string;
  private readonly ownsClient: boolean;

  constructor(options: S3ObjectStoreOptions) {
    if (typeof options.bucket !== "string" || options.bucket.length === 0) {
      throw new ObjectStoreError("S3ObjectStore needs a bucket name (options.bucket)");
    }
    const prefix = (options.keyPrefix ?? "").replace(/\/+$/, "");
    if (prefix.length > 0) validateObjectKey(prefix);
    this.bucket = options.bucket;
    this.keyPrefix = prefix.length > 0 ? `${prefix}/` : "";
    this.ownsClient = options.client === undefined;
    // On a process's first request the SDK warns, unstructured on stderr, that its versions published
    // after January 2027 need Node 22. That concerns whoever updates the lockfile, not an operator of this
    // build: test/object-store.test.ts fails as soon as an installed SDK needs a newer Node than Raftka.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
    this.client =
      options.client ??
      new S3Client({
        region: options.region ?? "us-east-1",
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        forcePathStyle: options.forcePathStyle ?? false,
        ...(options.credentials ? { credentials: options.credentials } : {}),
        maxAttempts: options.maxAttempts ?? 3,
      });
    this.description = `s3://${this.bucket}/${this.keyPrefix}${options.endpoint ? ` at ${options.endpoint}` : ""}`;
  }

  async put(key: string, body: ObjectBody, options: PutOptions = {}): Promise<ObjectInfo> {
    validateObjectKey(key);
    const size = await bodySize(body);
    const checksum = options.crc32c ?? (await bodyChecksum(body));
    const metadata = { ...options.metadata, [CHECKSUM_METADATA_KEY]: hex(checksum) };
    let payload: Buffer | Readable;
    if ("filePath" in body) {
      const stream = createReadStream(body.filePath);
      payload = options.onProgress ? stream.pipe(new ProgressCounter(size, options.onProgress)) : stream;
      if (options.onProgress) stream.on("error", (error) => (payload as Readable).destroy(error));
    } else {
      payload = Buffer.from(body.buffer, body.byteOffset, body.length);
    }
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.keyPrefix + key,
          Body: payload,
          ContentLength: size,
          Metadata: metadata,
        }),
      );
    } catch (error) {
      throw this.wrap(`storing '${key}'`, key, error);
    }
    return { key, size, crc32c: checksum, lastModified: new Date(), metadata: withoutChecksum(metadata) };
  }

  async get(key: string, options: GetOptions = {}): Promise<Buffer> {
    validateObjectKey(key);
    validateRange(options.range);
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key, Range: rangeHeader(options) }),
      );
      const data = Buffer.from(await response.Body!.transformToByteArray());
      const expected = parseHexChecksum(response.Metadata?.[CHECKSUM_METADATA_KEY]);
      if (!options.range && expected !== undefined) {
        const actual = crc32c(data);
        if (actual !== expected) throw new ObjectChecksumError(key, this.description, expected, actual);
      }
      return data;
    } catch (error) {
      if (isInvalidRange(error)) return Buffer.alloc(0);
      throw this.wrap(`reading '${key}'`, key, error);
    }
  }

  async getStream(key: string, options: GetOptions = {}): Promise<Readable> {
    validateObjectKey(key);
    validateRange(options.range);
    let response: GetObjectCommandOutput;
    try {
      response = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key, Range: rangeHeader(options) }),
      );
    } catch (error) {
      if (isInvalidRange(error)) return Readable.from([]);
      throw this.wrap(`reading '${key}'`, key, error);
    }
    const stream = response.Body as Readable;
    const expected = parseHexChecksum(response.Metadata?.[CHECKSUM_METADATA_KEY]);
    if (options.range || expected === undefined) return stream;
    const verifier = new ChecksumVerifier(
      expected,
      (actual) => new ObjectChecksumError(key, this.description, expected, actual),
    );
    stream.on("error", (error) => verifier.destroy(error));
    return stream.pipe(verifier);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    validateObjectKey(key);
    try {
      const response = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key }),
      );
      const metadata = response.Metadata ?? {};
      return {
        key,
        size: response.ContentLength ?? 0,
        crc32c: parseHexChecksum(metadata[CHECKSUM_METADATA_KEY]),
        lastModified: response.LastModified ?? new Date(0),
        metadata: withoutChecksum(metadata),
      };
    } catch (error) {
      if (isNotFoundError(error)) return undefined;
      throw this.wrap(`looking up '${key}'`, key, error);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectSummary> {
    let continuationToken: string | undefined;
    do {
      let response: ListObjectsV2CommandOutput;
      try {
        response = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.keyPrefix + prefix,
            ContinuationToken: continuationToken,
          }),
        );
      } catch (error) {
        throw this.wrap(`listing '${prefix}'`, prefix, error);
      }
      for (const object of response.Contents ?? []) {
        if (!object.Key) continue;
        yield {
          key: object.Key.slice(this.keyPrefix.length),
          size: object.Size ?? 0,
          lastModified: object.LastModified ?? new Date(0),
        };
      }
      continuationToken = response.IsTruncated ? response.NextContinuationToken : undefined;
    } while (continuationToken);
  }

  async delete(key: string): Promise<void> {
    validateObjectKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key }));
    } catch (error) {
      if (isNotFoundError(error)) return;
      throw this.wrap(`deleting '${key}'`, key, error);
    }
  }

  /** Releases the HTTP connection pool (only if this store built its own client). */
  close(): void {
    if (this.ownsClient) this.client.destroy();
  }

  private wrap(action: string, key: string, error: unknown): Error {
    if (error instanceof ObjectStoreError) return error;
    const name = (error as { name?: string }).name ?? "";
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const code = (error as NodeJS.ErrnoException).code;
    if (name === "NoSuchKey" || (status === 404 && name !== "NoSuchBucket")) {
      return new ObjectNotFoundError(key, this.description);
    }
    let advice: string;
    if (name === "NoSuchBucket")
      advice = `bucket '${this.bucket}' does not exist: create it or configure the right bucket`;
    else if (["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken"].includes(name)) {
      advice = "the credentials were rejected: check the access key, secret and the bucket policy";
    } else if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "ETIMEDOUT") {
      advice = "the endpoint cannot be reached: check the endpoint URL and the network";
    } else advice = "retry later; if it persists check the object store's health";
    return new ObjectStoreError(
      `${action} in ${this.description} failed (${name || code || "error"}: ${(error as Error).message}); ${advice}`,
      error,
    );
  }
}

function rangeHeader(options: GetOptions): string | undefined {
  return options.range ? `bytes=${options.range.start}-${options.range.end - 1}` : undefined;
}

function isNotFoundError(error: unknown): boolean {
  const name = (error as { name?: string }).name;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return name === "NotFound" || name === "NoSuchKey" || (status === 404 && name !== "NoSuchBucket");
}

/** A range starting past the end: the object is shorter, which reads as empty (like the local store). */
function isInvalidRange(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return (error as { name?: string }).name === "InvalidRange" || status === 416;
}

function withoutChecksum(metadata: Record<string, string>): Record<string, string> {
  const { [CHECKSUM_METADATA_KEY]: _checksum, ...rest } = metadata;
  return rest;
}
