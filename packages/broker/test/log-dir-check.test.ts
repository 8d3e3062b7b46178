import { mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  checkLogDirectories,
  type LogDirectoryContents,
  MetaPropertiesError,
} from "../src/metadata/log-dir-check.js";
import { loadOrCreateMetaProperties } from "../src/metadata/meta-properties.js";

const CLUSTER = "AAAAAAAAAAAAAAAAAAAAAA";
const NEW_CLUSTER = "BBBBBBBBBBBBBBBBBBBBBB";

function meta(clusterId = CLUSTER, nodeId = 1): ReadonlyMap<string, string> {
  return new Map([
    ["version", "1"],
    ["cluster.id", clusterId],
    ["node.id", String(nodeId)],
  ]);
}

const metadataEntries = [
  { name: "raft-stable-store", isDirectory: false },
  { name: "__cluster_metadata-0", isDirectory: true },
];
const partitionEntries = [
  { name: "orders-0", isDirectory: true },
  { name: "__consumer_offsets-3", isDirectory: true },
];

function check(directories: LogDirectoryContents[]) {
  return checkLogDirectories(directories, 1, () => NEW_CLUSTER);
}

describe("checkLogDirectories", () => {
  it("formats a fresh node's blank directories with a new cluster id", () => {
    const blank = { meta: undefined, entries: [{ name: ".lock", isDirectory: false }] };
    expect(
      check([
        { dir: "/a", ...blank },
        { dir: "/b", ...blank },
      ]),
    ).toEqual({
      clusterId: NEW_CLUSTER,
      toFormat: ["/a", "/b"],
    });
  });

  it("gives a blank directory added later in log.dirs the node's cluster id", () => {
    const decision = check([
      { dir: "/d", meta: meta(), entries: [...metadataEntries, ...partitionEntries] },
      { dir: "/new", meta: undefined, entries: [{ name: "lost+found", isDirectory: true }] },
    ]);
    expect(decision).toEqual({ clusterId: CLUSTER, toFormat: ["/new"] });
  });

  it("refuses a blank directory listed before the one holding the node's metadata, saying which to list first", () => {
    expect(() =>
      check([
        { dir: "/new", meta: undefined, entries: [] },
        { dir: "/d", meta: meta(), entries: [...metadataEntries, ...partitionEntries] },
      ]),
    ).toThrow(
      new MetaPropertiesError(
        `log.dirs lists /new first, but this node's metadata (cluster id ${CLUSTER}, __cluster_metadata-0, raft-stable-store) is in /d; list /d first: the first directory holds the metadata`,
      ),
    );
  });

  it("refuses a formatted directory without metadata listed before the one with it", () => {
    expect(() =>
      check([
        { dir: "/d2", meta: meta(), entries: partitionEntries },
        { dir: "/d1", meta: meta(), entries: metadataEntries },
      ]),
    ).toThrow(/log.dirs lists \/d2 first, .* is in \/d1; list \/d1 first/);
  });

  it("refuses a blank first directory when another is formatted though its metadata is not listed", () => {
    expect(() =>
      check([
        { dir: "/new", meta: undefined, entries: [] },
        { dir: "/d2", meta: meta(), entries: partitionEntries },
      ]),
    ).toThrow(/log.dirs lists \/new first, which is blank, but \/d2 already belongs to cluster/);
  });

  it("refuses two directories that both hold a metadata log, naming the stale files", () => {
    expect(() =>
      check([
        { dir: "/d", meta: meta(), entries: metadataEntries },
        { dir: "/new", meta: meta(), entries: metadataEntries },
      ]),
    ).toThrow(
      /move \/new\/__cluster_metadata-0 and \/new\/raft-stable-store away, otherwise list \/new first/,
    );
  });

  it("refuses a directory holding data without meta.properties, naming the cluster id and node id to write", () => {
    expect(() =>
      check([
        { dir: "/d1", meta: meta(), entries: metadataEntries },
        { dir: "/d2", meta: undefined, entries: partitionEntries },
      ]),
    ).toThrow(
      `log directory /d2 holds data (2 partition directories) but no meta.properties, so which cluster and node it belongs to is unknown (Kafka: "have you run kafka-storage.sh to format the directory?"); restore /d2/meta.properties, or write it with the lines version=1, cluster.id=${CLUSTER} and node.id=1 (as in /d1/meta.properties); or, to start this directory empty, move its data away`,
    );
  });

  it("refuses the only directory holding data without meta.properties instead of making up a cluster id", () => {
    expect(() => check([{ dir: "/d", meta: undefined, entries: metadataEntries }])).toThrow(
      /log directory \/d holds data \(__cluster_metadata-0, raft-stable-store\) but no meta.properties.*restore \/d\/meta.properties from a backup \(version=1, the cluster's cluster.id, node.id=1\)/,
    );
    // A deleted topic's or a stray partition directory is data as well.
    expect(() =>
      check([{ dir: "/d", meta: undefined, entries: [{ name: "orders-0.abc-stray", isDirectory: true }] }]),
    ).toThrow(MetaPropertiesError);
  });

  it("still refuses a directory of another node", () => {
    expect(() => check([{ dir: "/d", meta: meta(CLUSTER, 2), entries: [] }])).toThrow(
      "log directory /d belongs to node 2, but this node is node.id=1; start with node.id=2 or use another log directory",
    );
  });
});

describe("loadOrCreateMetaProperties", () => {
  const directories: string[] = [];
  afterEach(async () => {
    await Promise.all(directories.splice(0).map((path) => rm(path, { recursive: true, force: true })));
  });

  async function temporary(): Promise<string> {
    const path = await mkdtemp(join(tmpdir(), "raftka-meta-"));
    directories.push(path);
    return path;
  }

  it("formats blank directories, and refuses to start once one holding data lost its meta.properties", async () => {
    const root = await temporary();
    const d = join(root, "d");
    const clusterId = await loadOrCreateMetaProperties([d], 1);
    await mkdir(join(d, "__cluster_metadata-0"));
    await writeFile(join(d, "raft-stable-store"), "");

    // A new directory later in the list joins the cluster.
    const later = join(root, "later");
    expect(await loadOrCreateMetaProperties([d, later], 1)).toBe(clusterId);
    expect(await readFile(join(later, "meta.properties"), "utf8")).toContain(`cluster.id=${clusterId}`);

    // A new directory first is refused, and left blank.
    const first = join(root, "first");
    await expect(loadOrCreateMetaProperties([first, d], 1)).rejects.toThrow(
      `log.dirs lists ${first} first, but this node's metadata (cluster id ${clusterId}, `,
    );
    expect(await readdir(first)).toEqual([]);

    await unlink(join(d, "meta.properties"));
    await expect(loadOrCreateMetaProperties([d], 1)).rejects.toThrow(`log directory ${d} holds data (`);
    await expect(readFile(join(d, "meta.properties"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
