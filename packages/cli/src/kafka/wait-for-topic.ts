import type { CommandContext } from "../context.js";
import { formatDuration } from "../duration.js";
import { sleep } from "../sleep.js";
import type { KafkaClient } from "./client.js";
import { fetchTopic, isUnknownTopic, type TopicInfo } from "./topics.js";

/**
 * The topic's metadata; with `waitMs`, waits (showing progress) for a topic that does not exist yet
 * and for every partition to have a leader, e.g. while another process creates it.
 */
export async function waitForTopic(
  context: CommandContext,
  client: KafkaClient,
  name: string,
  waitMs: number,
): Promise<TopicInfo> {
  const started = Date.now();
  const progress = context.progress();
  for (;;) {
    let waitingFor: string;
    try {
      const topic = await fetchTopic(client, name);
      const leaderless = topic.partitions.filter((partition) => partition.leader < 0).length;
      if (leaderless === 0 || waitMs === 0) {
        progress.clear();
        return topic;
      }
      waitingFor = `${leaderless} of ${topic.partitions.length} partitions of "${name}" to have a leader`;
    } catch (error) {
      if (!isUnknownTopic(error) || Date.now() - started >= waitMs || context.signal.aborted) {
        progress.clear();
        throw error;
      }
      waitingFor = `topic "${name}" to exist`;
    }
    const elapsed = Date.now() - started;
    if (elapsed >= waitMs || context.signal.aborted) {
      progress.clear();
      return fetchTopic(client, name);
    }
    progress.update(`waiting for ${waitingFor} (${formatDuration(elapsed)} of ${formatDuration(waitMs)})`);
    await sleep(Math.min(250, waitMs - elapsed), context.signal);
  }
}
