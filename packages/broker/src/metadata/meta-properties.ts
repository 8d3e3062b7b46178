import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomically } from "@raftka/storage";
import { checkLogDirectories, type LogDirectoryContents, META_PROPERTIES_FILE } from "./log-dir-check.js";
import { randomKafkaUuid } from "./uuid.js";

export { META_PROPERTIES_FILE, MetaPropertiesError } from "./log-dir-check.js";

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

async function inspect(dir: string): Promise<LogDirectoryContents> {
  await mkdir(dir, { recursive: true });
  const meta = await readMeta(dir);
  const entries = (await readdir(dir, { withFileTypes: true })).map((entry) => ({
    name: entry.name,
    isDirectory: entry.isDirectory(),
  }));
  return { dir, meta, entries };
}

/**
 * Kafka's `meta.properties` in every log directory: which cluster and node the data belongs to. Returns the
 * cluster id, creating it (and the files) on first start and in blank directories added to `log.dirs`.
 * Refuses (see checkLogDirectories) what would mix two nodes' data or start without the node's metadata.
 */
export async function loadOrCreateMetaProperties(
  logDirs: readonly string[],
  nodeId: number,
): Promise<string> {
  const directories: LogDirectoryContents[] = [];
  for (const dir of logDirs) directories.push(await inspect(dir));
  const { clusterId, toFormat } = checkLogDirectories(directories, nodeId, randomKafkaUuid);
  const text = `#Written by Raftka: the cluster and node this directory belongs to. Do not edit.\nversion=1\ncluster.id=${clusterId}\nnode.id=${nodeId}\n`;
  for (const dir of toFormat) await writeFileAtomically(join(dir, META_PROPERTIES_FILE), text);
  return clusterId;
}
