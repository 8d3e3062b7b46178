import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomically } from "@raftka/storage";
import { isKafkaUuid, randomKafkaUuid } from "./uuid.js";

export const META_PROPERTIES_FILE = "meta.properties";

/** A log directory that belongs to another node or cluster: starting on it would mix two nodes' data. */
export class MetaPropertiesError extends Error {
  override readonly name = "MetaPropertiesError";
}

function parse(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const separator = trimmed.indexOf("=");
    if (separator > 0) entries.set(trimmed.slice(0, separator).trim(), trimmed.slice(separator + 1).trim());
  }
  return entries;
}

async function readMeta(dir: string): Promise<Map<string, string> | undefined> {
  try {
    return parse(await readFile(join(dir, META_PROPERTIES_FILE), "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Kafka's `meta.properties` in every log directory: which cluster and node the data belongs to. Returns the
 * cluster id, creating it (and the files) on first start. Refuses directories of another node or cluster.
 */
export async function loadOrCreateMetaProperties(
  logDirs: readonly string[],
  nodeId: number,
): Promise<string> {
  let clusterId: string | undefined;
  let clusterIdSource: string | undefined;
  const missing: string[] = [];
  for (const dir of logDirs) {
    await mkdir(dir, { recursive: true });
    const meta = await readMeta(dir);
    if (!meta) {
      missing.push(dir);
      continue;
    }
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
  clusterId ??= randomKafkaUuid();
  const text = `#Written by Raftka: the cluster and node this directory belongs to. Do not edit.\nversion=1\ncluster.id=${clusterId}\nnode.id=${nodeId}\n`;
  for (const dir of missing) await writeFileAtomically(join(dir, META_PROPERTIES_FILE), text);
  return clusterId;
}
