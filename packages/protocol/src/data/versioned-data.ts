import type { MessageDefinition } from "../codec/api.js";
import { ProtocolDecodeError } from "../codec/errors.js";
import { Reader } from "../codec/reader.js";
import { Writer } from "../codec/writer.js";

/**
 * Encodes a `data` schema value (ConsumerProtocolSubscription, ConsumerProtocolAssignment, ...) the way
 * Kafka stores it inside JoinGroup/SyncGroup bytes: an int16 version, then the body at that version.
 */
export function encodeVersionedData<T>(definition: MessageDefinition<T>, version: number, value: T): Buffer {
  const encode = definition.encoders[version];
  if (encode === undefined) {
    throw new RangeError(
      `${definition.name} version ${version} is outside ${definition.minVersion}-${definition.maxVersion}; pick a version the peer supports`,
    );
  }
  const writer = new Writer(64);
  writer.int16(version);
  encode(writer, value);
  return writer.toBuffer();
}

/**
 * Decodes version prefix and body. A version newer than the schemas know is read with the newest known
 * version (newer versions only append fields), exactly as Kafka's ConsumerProtocol does; trailing bytes
 * are ignored for the same reason. Bytes too short for their declared version are read with the newest
 * older layout that fits: kafkajs 2.2.4 declares subscription version 1 but writes only the v0 fields.
 * `readAsVersion` says which layout was used.
 */
export function decodeVersionedData<T>(
  definition: MessageDefinition<T>,
  bytes: Buffer,
): { version: number; readAsVersion: number; value: T } {
  const version = new Reader(bytes).int16();
  if (version < definition.minVersion) {
    throw new ProtocolDecodeError(
      `${definition.name} version ${version} is below the lowest known version ${definition.minVersion}; the bytes are corrupt or not ${definition.name}`,
      0,
    );
  }
  let firstError: ProtocolDecodeError | undefined;
  for (let readAs = Math.min(version, definition.maxVersion); readAs >= definition.minVersion; readAs--) {
    try {
      return { version, readAsVersion: readAs, value: definition.decoders[readAs]!(new Reader(bytes, 2)) };
    } catch (error) {
      if (!(error instanceof ProtocolDecodeError)) throw error;
      firstError ??= error;
    }
  }
  throw new ProtocolDecodeError(`${definition.name} v${version}: ${firstError!.message}`, firstError!.offset);
}
