/**
 * Java's `String.hashCode` over UTF-16 code units, so a group lands on the same `__consumer_offsets`
 * partition as it would on a Kafka broker with the same partition count (tools that compute the
 * coordinator partition themselves then agree with us).
 */
export function javaStringHashCode(value: string): number {
  let hash = 0;
  for (let index = 0; index < value.length; index++) {
    hash = (Math.imul(hash, 31) + value.charCodeAt(index)) | 0;
  }
  return hash;
}

/** Kafka's `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions` (`Utils.abs` maps MIN_VALUE to 0). */
export function groupPartition(groupId: string, partitionCount: number): number {
  if (!Number.isInteger(partitionCount) || partitionCount < 1) {
    throw new RangeError(
      `offsets.topic.num.partitions must be a positive integer, got ${partitionCount}; fix the broker configuration`,
    );
  }
  const hash = javaStringHashCode(groupId);
  const positive = hash === -2147483648 ? 0 : Math.abs(hash);
  return positive % partitionCount;
}
