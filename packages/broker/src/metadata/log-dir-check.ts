import { join } from "node:path";
import { METADATA_TOPIC } from "./topic-names.js";
import { isKafkaUuid } from "./uuid.js";

export const META_PROPERTIES_FILE = "meta.properties";
/** The node's StableStore (Raft hard states and partition group ids), in the first log dir. */
export const RAFT_STABLE_STORE_FILE = "raft-stable-store";
/** The cluster metadata log's directory, in the first log dir. */
export const METADATA_LOG_DIRECTORY = `${METADATA_TOPIC}-0`;

/** A partition directory, or one being deleted (`-delete`) or kept as a stray (`-stray`). */
const PARTITION_DIRECTORY = /^(.+-\d+|.+-delete|.+-stray)$/;

/**
 * A log directory that belongs to another node or cluster, or that lost its `meta.properties`, or a
 * `log.dirs` whose first entry is not where the node's metadata is: starting would mix or lose data.
 */
export class MetaPropertiesError extends Error {
  override readonly name = "MetaPropertiesError";
}

/** What start-up found in one log directory. */
export interface LogDirectoryContents {
  readonly dir: string;
  /** The entries of `meta.properties`, or undefined when the directory has none. */
  readonly meta: ReadonlyMap<string, string> | undefined;
  /** The directory's entries (names only; whether each is a directory). */
  readonly entries: readonly { readonly name: string; readonly isDirectory: boolean }[];
}

interface OurData {
  /** The metadata log and the Raft state file, where present: the first log dir's own. */
  readonly metadata: readonly string[];
  readonly partitionDirectories: number;
}

/**
 * What of Raftka's a directory holds besides `meta.properties`. Hidden entries (the `.lock`, a file
 * system's own), `lost+found`, temporary files and anything else not ours leave a directory blank.
 */
export function ourData(entries: LogDirectoryContents["entries"]): OurData {
  const metadata: string[] = [];
  let partitionDirectories = 0;
  for (const { name, isDirectory } of entries) {
    if (name.startsWith(".")) continue;
    if (name === METADATA_LOG_DIRECTORY && isDirectory) metadata.push(name);
    else if (name === RAFT_STABLE_STORE_FILE && !isDirectory) metadata.push(name);
    else if (isDirectory && PARTITION_DIRECTORY.test(name)) partitionDirectories++;
  }
  return { metadata: metadata.sort(), partitionDirectories };
}

function describe(data: OurData): string {
  const parts = [...data.metadata];
  if (data.partitionDirectories > 0) {
    parts.push(
      `${data.partitionDirectories} partition director${data.partitionDirectories === 1 ? "y" : "ies"}`,
    );
  }
  return parts.join(", ");
}

function holdsData(data: OurData): boolean {
  return data.metadata.length > 0 || data.partitionDirectories > 0;
}

export interface LogDirectoryDecision {
  readonly clusterId: string;
  /** Blank directories that get a `meta.properties` naming `clusterId` and the node. */
  readonly toFormat: readonly string[];
}

/**
 * Decides whether a node may start on `logDirs` (in their configured order) and with which cluster id.
 * Refuses, with a MetaPropertiesError that says what to do: a directory of another node or cluster; a
 * directory that holds data but lost its `meta.properties` (Kafka refuses it too; formatting it again
 * would give the node a new cluster id); and a list whose first directory is not the one holding the
 * node's metadata log and Raft state (the node would start with no topics and set every partition
 * directory aside as a stray). Blank directories are formatted; only when all are is `newClusterId` used.
 */
export function checkLogDirectories(
  directories: readonly LogDirectoryContents[],
  nodeId: number,
  newClusterId: () => string,
): LogDirectoryDecision {
  let clusterId: string | undefined;
  let clusterIdSource: string | undefined;
  for (const { dir, meta } of directories) {
    if (!meta) continue;
    const storedNode = meta.get("node.id");
    if (storedNode !== undefined && storedNode !== String(nodeId)) {
      throw new MetaPropertiesError(
        `log directory ${dir} belongs to node ${storedNode}, but this node is node.id=${nodeId}; start with node.id=${storedNode} or use another log directory`,
      );
    }
    const storedCluster = meta.get("cluster.id");
    if (storedCluster === undefined || !isKafkaUuid(storedCluster)) {
      throw new MetaPropertiesError(
        `${join(dir, META_PROPERTIES_FILE)} has no valid cluster.id; restore the file or remove the directory's data`,
      );
    }
    if (clusterId !== undefined && storedCluster !== clusterId) {
      throw new MetaPropertiesError(
        `log directories ${clusterIdSource} and ${dir} belong to different clusters (${clusterId}, ${storedCluster}); use directories of one cluster only`,
      );
    }
    clusterId = storedCluster;
    clusterIdSource = dir;
  }

  for (const { dir, meta, entries } of directories) {
    const data = ourData(entries);
    if (meta || !holdsData(data)) continue;
    const file = join(dir, META_PROPERTIES_FILE);
    const rewrite =
      clusterId === undefined
        ? `restore ${file} from a backup (version=1, the cluster's cluster.id, node.id=${nodeId})`
        : `restore ${file}, or write it with the lines version=1, cluster.id=${clusterId} and node.id=${nodeId} (as in ${join(clusterIdSource!, META_PROPERTIES_FILE)})`;
    throw new MetaPropertiesError(
      `log directory ${dir} holds data (${describe(data)}) but no ${META_PROPERTIES_FILE}, so which cluster and node it belongs to is unknown (Kafka: "have you run kafka-storage.sh to format the directory?"); ${rewrite}; or, to start this directory empty, move its data away`,
    );
  }

  const [first, ...rest] = directories;
  if (first !== undefined) {
    const firstData = ourData(first.entries);
    const elsewhere = rest.find((directory) => ourData(directory.entries).metadata.length > 0);
    if (elsewhere !== undefined && firstData.metadata.length === 0) {
      throw new MetaPropertiesError(
        `log.dirs lists ${first.dir} first, but this node's metadata (cluster id ${clusterId}, ${describe({ metadata: ourData(elsewhere.entries).metadata, partitionDirectories: 0 })}) is in ${elsewhere.dir}; list ${elsewhere.dir} first: the first directory holds the metadata`,
      );
    }
    if (elsewhere !== undefined) {
      const stale = ourData(elsewhere.entries).metadata.map((name) => join(elsewhere.dir, name));
      throw new MetaPropertiesError(
        `log directories ${first.dir} and ${elsewhere.dir} both hold a metadata log or Raft state, but only the first directory's is used (${elsewhere.dir} was listed first once); if ${first.dir} holds the metadata to keep, move ${stale.join(" and ")} away, otherwise list ${elsewhere.dir} first`,
      );
    }
    if (first.meta === undefined && clusterIdSource !== undefined) {
      throw new MetaPropertiesError(
        `log.dirs lists ${first.dir} first, which is blank, but ${clusterIdSource} already belongs to cluster ${clusterId}; the node's metadata log and Raft state are in the first directory of the list it was started with: list that directory first (a new directory may be added later in the list)`,
      );
    }
  }

  const toFormat = directories.filter((directory) => directory.meta === undefined).map(({ dir }) => dir);
  return { clusterId: clusterId ?? newClusterId(), toFormat };
}
