import { execFile } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import {
  downloadSegment,
  FlushScheduler,
  LocalDirectoryObjectStore,
  listArchivedSegments,
  ObjectChecksumError,
  ObjectNotFoundError,
  type ObjectStore,
  ObjectStoreError,
  PartitionLog,
  S3ObjectStore,
  type SegmentArchiveProgress,
  uploadSegment,
} from "../src/index.js";
import { makeBatch, records, withTempDir } from "./helpers.js";
import { type MotoServer, motoCredentials, startMoto } from "./moto.js";

async function collect(iterable: AsyncIterable<{ key: string }>): Promise<string[]> {
  const keys: string[] = [];
  for await (const item of iterable) keys.push(item.key);
  return keys;
}

async function streamToBuffer(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const execFileAsync = promisify(execFile);

// Started on first use, so the local-directory tests run (and pass) even where moto is missing.
let motoStarting: Promise<MotoServer> | undefined;
let bucketCounter = 0;

function moto(): Promise<MotoServer> {
  motoStarting ??= startMoto();
  return motoStarting;
}

async function s3Store(bucket: string, keyPrefix?: string): Promise<S3ObjectStore> {
  const server = await moto();
  await server.createBucket(bucket);
  return new S3ObjectStore({
    bucket,
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: motoCredentials,
    ...(keyPrefix ? { keyPrefix } : {}),
  });
}

afterAll(async () => {
  await (await motoStarting?.catch(() => undefined))?.stop();
});

const stores: [string, (scratch: string) => Promise<ObjectStore>][] = [
  ["LocalDirectoryObjectStore", async (scratch) => new LocalDirectoryObjectStore(join(scratch, "objects"))],
  ["S3ObjectStore against moto_server", () => s3Store(`raftka-test-${++bucketCounter}`, "cluster-a")],
];

// The first S3 test also starts moto_server, which can take a while on a busy machine.
describe.each(stores)("%s", { timeout: 90_000 }, (_name, makeStore) => {
  it("puts, heads, gets (whole and ranged), lists and deletes objects", async () => {
    await withTempDir(async (scratch) => {
      const store = await makeStore(scratch);
      const body = Buffer.from("0123456789abcdefghij");
      const info = await store.put("topics/orders/0/00000000000000000000.log", body, {
        metadata: { "base-offset": "0" },
      });
      expect(info).toMatchObject({ size: 20, metadata: { "base-offset": "0" } });
      expect(info.crc32c).toBeTypeOf("number");
      await store.put("topics/orders/0/00000000000000000100.log", Buffer.from("second"));
      await store.put("topics/orders/1/00000000000000000000.log", Buffer.from("other partition"));
      await store.put("topics/ordersx/0/x.log", Buffer.from("not under orders/"));

      const head = await store.head("topics/orders/0/00000000000000000000.log");
      expect(head).toMatchObject({ size: 20, crc32c: info.crc32c, metadata: { "base-offset": "0" } });
      expect(await store.head("topics/orders/0/missing.log")).toBeUndefined();

      expect(await store.get("topics/orders/0/00000000000000000000.log")).toEqual(body);
      expect(
        await store.get("topics/orders/0/00000000000000000000.log", { range: { start: 5, end: 9 } }),
      ).toEqual(Buffer.from("5678"));
      expect(
        await store.get("topics/orders/0/00000000000000000000.log", { range: { start: 15, end: 99 } }),
      ).toEqual(Buffer.from("fghij"));
      const streamed = await streamToBuffer(
        await store.getStream("topics/orders/0/00000000000000000000.log"),
      );
      expect(streamed).toEqual(body);
      const ranged = await store.getStream("topics/orders/0/00000000000000000000.log", {
        range: { start: 10, end: 12 },
      });
      expect(await streamToBuffer(ranged)).toEqual(Buffer.from("ab"));

      expect(await collect(store.list("topics/orders/"))).toEqual([
        "topics/orders/0/00000000000000000000.log",
        "topics/orders/0/00000000000000000100.log",
        "topics/orders/1/00000000000000000000.log",
      ]);
      expect(await collect(store.list("topics/orders/0/000000000000000001"))).toEqual([
        "topics/orders/0/00000000000000000100.log",
      ]);
      expect(await collect(store.list("topics/orders"))).toHaveLength(4);
      expect(await collect(store.list("nothing/here/"))).toEqual([]);

      await store.delete("topics/orders/0/00000000000000000000.log");
      await store.delete("topics/orders/0/00000000000000000000.log");
      expect(await store.head("topics/orders/0/00000000000000000000.log")).toBeUndefined();
      await expect(store.get("topics/orders/0/00000000000000000000.log")).rejects.toBeInstanceOf(
        ObjectNotFoundError,
      );
      await expect(store.getStream("topics/orders/0/00000000000000000000.log")).rejects.toBeInstanceOf(
        ObjectNotFoundError,
      );
      (store as { close?: () => void }).close?.();
    });
  });

  it("streams a file body up to the store with progress and a checksum, and overwrites atomically", async () => {
    await withTempDir(async (scratch) => {
      const store = await makeStore(scratch);
      const source = join(scratch, "segment.bin");
      const contents = Buffer.alloc(300_000);
      for (let index = 0; index < contents.length; index += 1) contents[index] = (index * 7) % 251;
      await writeFile(source, contents);
      const progress: number[] = [];
      const info = await store.put(
        "big/object",
        { filePath: source },
        { onProgress: (done) => progress.push(done) },
      );
      expect(info.size).toBe(contents.length);
      expect(progress.at(-1)).toBe(contents.length);
      expect(progress.length).toBeGreaterThan(1);
      expect(await store.get("big/object")).toEqual(contents);

      await store.put("big/object", Buffer.from("replaced"));
      expect(await store.get("big/object")).toEqual(Buffer.from("replaced"));
      expect((await store.head("big/object"))!.size).toBe(8);
      (store as { close?: () => void }).close?.();
    });
  });

  it("archives a closed segment zstd-compressed with a manifest and restores it byte for byte", async () => {
    await withTempDir(async (scratch) => {
      const store = await makeStore(scratch);
      const log = await PartitionLog.open(join(scratch, "orders-0"), {
        flushScheduler: new FlushScheduler(),
        config: { segmentBytes: 10_000, indexIntervalBytes: 500 },
      });
      for (let index = 0; index < 120; index += 1) {
        await log.append(makeBatch(records(`archived message ${index} `.repeat(3), 2, 5000 + index)), {
          assignOffsets: true,
          leaderEpoch: 3,
        });
      }
      await log.close();
      const [closed, second] = log.segmentInfos();
      const active = log.segmentInfos().at(-1);
      expect(log.segmentInfos().length).toBeGreaterThan(2);
      expect(closed!.durable).toBe(true);
      await expect(uploadSegment(store, active!, { keyPrefix: "topics/orders/0" })).rejects.toThrow(
        /active segment/,
      );

      const progress: SegmentArchiveProgress[] = [];
      const { manifestKey, manifest } = await uploadSegment(store, closed!, {
        keyPrefix: "topics/orders/0",
        leaderEpochs: log.leaderEpochs(),
        onProgress: (event) => progress.push(event),
      });
      await uploadSegment(store, second!, { keyPrefix: "topics/orders/0" });
      expect(manifestKey).toBe("topics/orders/0/00000000000000000000.manifest.json");
      expect(manifest).toMatchObject({
        baseOffset: 0,
        nextOffset: closed!.nextOffset,
        maxTimestamp: closed!.maxTimestamp,
        leaderEpochs: [{ epoch: 3, startOffset: 0 }],
        log: { compression: "zstd", uncompressedSize: closed!.sizeInBytes },
      });
      expect(manifest.log.size).toBeLessThan(closed!.sizeInBytes / 2);
      const phases = [...new Set(progress.map((event) => event.phase))];
      expect(phases).toEqual(["compress", "upload", "manifest", "done"]);
      const lastCompress = progress.filter((event) => event.phase === "compress").at(-1)!;
      expect(lastCompress.bytesDone).toBe(lastCompress.bytesTotal);
      expect(await listArchivedSegments(store, "topics/orders/0")).toEqual([0, second!.baseOffset]);

      const restored = await downloadSegment(store, manifestKey, join(scratch, "restored"));
      expect(await readFile(restored.logPath)).toEqual(await readFile(closed!.logPath));
      expect(await readFile(restored.indexPath)).toEqual(await readFile(closed!.indexPath));
      expect(await readFile(restored.timeIndexPath)).toEqual(await readFile(closed!.timeIndexPath));

      // A corrupted archive never lands in the destination.
      await store.put(manifest.log.key, Buffer.from("not zstd at all"));
      await expect(downloadSegment(store, manifestKey, join(scratch, "broken"))).rejects.toThrow();
      expect(await readdir(join(scratch, "broken"))).toEqual([]);
      (store as { close?: () => void }).close?.();
    });
  });

  it("rejects keys that are not portable and a caller checksum that does not match", async () => {
    await withTempDir(async (scratch) => {
      const store = await makeStore(scratch);
      for (const key of ["", "/abs", "a//b", "a/../b", ".hidden", "dir/", "back\\slash"]) {
        await expect(store.put(key, Buffer.from("x"))).rejects.toThrow(/invalid object key/);
      }
      await expect(store.get("a", { range: { start: 5, end: 2 } })).rejects.toThrow(/invalid byte range/);
      if (store instanceof LocalDirectoryObjectStore) {
        await expect(store.put("k", Buffer.from("abc"), { crc32c: 1 })).rejects.toThrow(/source changed/);
        expect(await store.head("k")).toBeUndefined();
      }
      (store as { close?: () => void }).close?.();
    });
  });
});

describe("LocalDirectoryObjectStore specifics", () => {
  it("detects corruption of stored bytes on whole-object reads", async () => {
    await withTempDir(async (scratch) => {
      const root = join(scratch, "objects");
      const store = new LocalDirectoryObjectStore(root);
      await store.put("a/b", Buffer.from("precious bytes"));
      const path = join(root, "a", "b");
      const bytes = await readFile(path);
      bytes[3]! ^= 0x01;
      await writeFile(path, bytes);
      await expect(store.get("a/b")).rejects.toBeInstanceOf(ObjectChecksumError);
      await expect(streamToBuffer(await store.getStream("a/b"))).rejects.toThrow(/CRC32C/);
      // Ranged reads are for tiered fetches, which check batch CRCs themselves.
      expect(await store.get("a/b", { range: { start: 0, end: 3 } })).toEqual(Buffer.from("pre"));
    });
  });

  it("leaves no temporary files behind and removes emptied directories", async () => {
    await withTempDir(async (scratch) => {
      const root = join(scratch, "objects");
      const store = new LocalDirectoryObjectStore(root);
      await store.put("x/y/z", Buffer.from("1"));
      await store.delete("x/y/z");
      expect(await readdir(root)).toEqual([".meta"]);
      expect(await readdir(join(root, ".meta"))).toEqual([]);
    });
  });
});

describe("S3ObjectStore specifics", { timeout: 90_000 }, () => {
  it("detects an object changed behind Raftka's back and explains a missing bucket", async () => {
    const bucket = `raftka-test-${++bucketCounter}`;
    const store = await s3Store(bucket);
    const options = {
      bucket,
      endpoint: (await moto()).endpoint,
      forcePathStyle: true,
      credentials: motoCredentials,
    };
    await store.put("obj", Buffer.from("original"));
    // Another writer replaces the bytes but keeps Raftka's checksum metadata.
    const info = await store.head("obj");
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    await store.client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: "obj",
        Body: Buffer.from("tampered"),
        Metadata: { "raftka-crc32c": info!.crc32c!.toString(16).padStart(8, "0") },
      }),
    );
    await expect(store.get("obj")).rejects.toBeInstanceOf(ObjectChecksumError);

    const missing = new S3ObjectStore({ ...options, bucket: "no-such-bucket" });
    const error = await missing.put("k", Buffer.from("v")).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ObjectStoreError);
    expect((error as Error).message).toMatch(/bucket 'no-such-bucket' does not exist/);
    store.close();
    missing.close();
  });
});

describe("the AWS SDK on the Node versions Raftka supports", { timeout: 90_000 }, () => {
  it("is installed at a version that runs on Raftka's oldest supported Node", () => {
    const require = createRequire(import.meta.url);
    const sdk = require("@aws-sdk/client-s3/package.json") as {
      version: string;
      engines?: { node?: string };
    };
    const raftka = require("../../../package.json") as { engines: { node: string } };
    const minimum = (range: string | undefined) => {
      const match = /^>=\s*(\d+)(?:\.(\d+))?/.exec(range ?? "");
      if (match === null) throw new Error(`cannot read the Node range "${range}"; compare it by hand`);
      return Number(match[1]) * 1000 + Number(match[2] ?? 0);
    };
    // A newer SDK that needs a newer Node: pin the older one, or raise engines.node and the docs with it.
    expect(
      minimum(sdk.engines?.node),
      `@aws-sdk/client-s3 ${sdk.version} needs node ${sdk.engines?.node}`,
    ).toBeLessThanOrEqual(minimum(raftka.engines.node));
  });

  it("writes nothing of its own to stderr, beside the broker's structured log", async () => {
    const bucket = `raftka-test-${++bucketCounter}`;
    const server = await moto();
    await server.createBucket(bucket);
    const storage = new URL("../dist/index.js", import.meta.url).href;
    const script = `
      const { S3ObjectStore } = await import(${JSON.stringify(storage)});
      const store = new S3ObjectStore(${JSON.stringify({ bucket, endpoint: server.endpoint, forcePathStyle: true, credentials: motoCredentials })});
      await store.put("k", Buffer.from("v"));
      console.log((await store.get("k")).toString());
      store.close();
    `;
    const environment = { ...process.env };
    delete environment.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    const { stdout, stderr } = await execFileAsync(process.execPath, ["--input-type=module", "-e", script], {
      env: environment,
    });
    expect(stdout.trim()).toBe("v");
    expect(stderr).toBe("");
  });
});
