/** The simulator's state machine: a register per key, remembering the log position of each value. */

export interface KvValue {
  readonly value: string;
  readonly offset: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodePut(key: string, value: string): Uint8Array {
  return encoder.encode(`${key}=${value}`);
}

export function decodePut(payload: Uint8Array): { key: string; value: string } {
  const text = decoder.decode(payload);
  const separator = text.indexOf("=");
  if (separator < 0) throw new Error(`simulator payload "${text}" is not key=value`);
  return { key: text.slice(0, separator), value: text.slice(separator + 1) };
}

export function encodeKvSnapshot(state: ReadonlyMap<string, KvValue>): Uint8Array {
  return encoder.encode(JSON.stringify([...state]));
}

export function decodeKvSnapshot(data: Uint8Array): Map<string, KvValue> {
  if (data.byteLength === 0) return new Map();
  return new Map(JSON.parse(decoder.decode(data)) as Array<[string, KvValue]>);
}
