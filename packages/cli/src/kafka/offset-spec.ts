import { UsageError } from "../errors.js";
import type { KafkaClient } from "./client.js";
import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, listOffsets, type TopicInfo } from "./topics.js";

/** Where to start reading or seek to, as written on the command line. */
export type OffsetSpec =
  | { readonly kind: "beginning" }
  | { readonly kind: "end" }
  | { readonly kind: "offset"; readonly offset: bigint }
  | { readonly kind: "fromEnd"; readonly count: bigint }
  | { readonly kind: "timestamp"; readonly timestamp: bigint };

/** `beginning`, `end`, `42`, `-10` (10 before the end; only when `allowFromEnd`), `@1700000000000`. */
export function parseOffsetSpec(text: string, option: string, allowFromEnd: boolean): OffsetSpec {
  const trimmed = text.trim();
  if (trimmed === "beginning" || trimmed === "earliest" || trimmed === "start") return { kind: "beginning" };
  if (trimmed === "end" || trimmed === "latest") return { kind: "end" };
  if (/^\d+$/.test(trimmed)) return { kind: "offset", offset: BigInt(trimmed) };
  if (allowFromEnd && /^-\d+$/.test(trimmed)) return { kind: "fromEnd", count: -BigInt(trimmed) };
  if (/^@\d+$/.test(trimmed)) return { kind: "timestamp", timestamp: BigInt(trimmed.slice(1)) };
  throw new UsageError(
    `${option} "${text}" is not a position; use beginning, end, an offset (42)${allowFromEnd ? ", -N for N records before the end" : ""} or @<milliseconds since the epoch>`,
  );
}

/** The offset each partition starts at for `spec`; a timestamp after the last record means the end. */
export async function resolveOffsetSpec(
  client: KafkaClient,
  topic: TopicInfo,
  partitions: readonly number[],
  spec: OffsetSpec,
): Promise<Map<number, bigint>> {
  switch (spec.kind) {
    case "beginning":
      return listOffsets(client, topic, partitions, EARLIEST_TIMESTAMP);
    case "end":
      return listOffsets(client, topic, partitions, LATEST_TIMESTAMP);
    case "offset":
      return new Map(partitions.map((partition) => [partition, spec.offset]));
    case "fromEnd": {
      const [starts, ends] = await Promise.all([
        listOffsets(client, topic, partitions, EARLIEST_TIMESTAMP),
        listOffsets(client, topic, partitions, LATEST_TIMESTAMP),
      ]);
      return new Map(
        partitions.map((partition) => {
          const wanted = ends.get(partition)! - spec.count;
          const start = starts.get(partition)!;
          // biome-ignore lint/complexity/useMathMinMax: offsets are bigints, which Math.max cannot take
          return [partition, wanted < start ? start : wanted];
        }),
      );
    }
    case "timestamp": {
      const [found, ends] = await Promise.all([
        listOffsets(client, topic, partitions, spec.timestamp),
        listOffsets(client, topic, partitions, LATEST_TIMESTAMP),
      ]);
      return new Map(
        partitions.map((partition) => {
          const offset = found.get(partition)!;
          return [partition, offset < 0n ? ends.get(partition)! : offset];
        }),
      );
    }
  }
}
