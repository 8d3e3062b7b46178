import { randomBytes } from "node:crypto";

/** Kafka's string form of a UUID: 16 bytes, base64url without padding (22 characters). */
export function randomKafkaUuid(random: (size: number) => Buffer = randomBytes): string {
  for (;;) {
    const bytes = random(16);
    // Version 4 / variant bits, as Java's UUID.randomUUID().
    bytes[6] = (bytes[6]! & 0x0f) | 0x40;
    bytes[8] = (bytes[8]! & 0x3f) | 0x80;
    const text = bytes.toString("base64url");
    // Kafka never hands out the all-zero id or ids starting with '-' (they read like CLI flags).
    if (!text.startsWith("-") && text !== ZERO_UUID) return text;
  }
}

export const ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA";

export function isKafkaUuid(text: string): boolean {
  return /^[A-Za-z0-9_-]{22}$/.test(text) && Buffer.from(text, "base64url").length === 16;
}
