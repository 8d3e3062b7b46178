/** Kafka's `Uuid.ZERO_UUID` as `Uuid.toString()` prints it (base64url, no padding). */
export const ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA";

/**
 * Default for non-nullable `bytes` fields. Shared because a zero-length Buffer cannot be mutated, so
 * handing the same one to every decoded message is safe and saves an allocation per field.
 */
export const EMPTY_BUFFER: Buffer = Buffer.alloc(0);
