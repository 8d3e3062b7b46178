// Seeded mutations of request frames: byte-level (header and body bytes, lengths, truncation) and
// field-level (decoded request values replaced by edge cases, then re-encoded).

/** mulberry32: small, fast, seedable; the whole run replays from one seed. */
export function createRandom(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (max) => Math.floor(next() * max),
    pick: (items) => items[Math.floor(next() * items.length)],
    chance: (probability) => next() < probability,
    bytes: (length) => {
      const buffer = Buffer.alloc(length);
      for (let index = 0; index < length; index++) buffer[index] = Math.floor(next() * 256);
      return buffer;
    },
  };
}

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff];
const INTERESTING_16 = [0, 1, -1, 0x7fff, -0x8000, 0x100, 12];
const INTERESTING_32 = [0, 1, -1, 2, 0x7fffffff, -0x80000000, 0xffff, 1 << 20, 61, 100];
const INTERESTING_NUMBERS = [0, 1, -1, 2, -2, 3, 255, 65535, 32767, -32768, 2147483647, -2147483648, 1 << 20];
const INTERESTING_BIGINTS = [
  0n,
  1n,
  -1n,
  -2n,
  -3n,
  -4n,
  -5n,
  2n ** 63n - 1n,
  -(2n ** 63n),
  2n ** 53n,
  1_700_000_000_000n,
];

/** Byte-level mutation of a frame payload (without the size prefix). Returns a new buffer. */
export function mutateBytes(random, payload) {
  const frame = Buffer.from(payload);
  const operation = random.int(9);
  const position = frame.length === 0 ? 0 : random.int(frame.length);
  switch (operation) {
    case 0: // flip a bit
      if (frame.length > 0) frame[position] ^= 1 << random.int(8);
      return frame;
    case 1: // interesting byte
      if (frame.length > 0) frame[position] = random.pick(INTERESTING_8);
      return frame;
    case 2: // interesting int16 (lengths of strings, arrays in old versions, versions)
      if (frame.length >= 2) frame.writeInt16BE(random.pick(INTERESTING_16), random.int(frame.length - 1));
      return frame;
    case 3: // interesting int32 (array counts, sizes, offsets)
      if (frame.length >= 4) frame.writeInt32BE(random.pick(INTERESTING_32), random.int(frame.length - 3));
      return frame;
    case 4: // truncate
      return frame.subarray(0, position);
    case 5: // append garbage
      return Buffer.concat([frame, random.bytes(1 + random.int(64))]);
    case 6: // insert garbage
      return Buffer.concat([
        frame.subarray(0, position),
        random.bytes(1 + random.int(16)),
        frame.subarray(position),
      ]);
    case 7: // remove a range
      return Buffer.concat([frame.subarray(0, position), frame.subarray(position + 1 + random.int(16))]);
    default: // api version out of range
      if (frame.length >= 4) frame.writeInt16BE(random.pick([-1, 0, 5, 13, 18, 99, 0x7fff]), 2);
      return frame;
  }
}

/** A random value of the same kind as `value`, biased to edge cases. */
function edgeValue(random, value, names) {
  if (typeof value === "number")
    return random.chance(0.8) ? random.pick(INTERESTING_NUMBERS) : random.int(1000) - 500;
  if (typeof value === "bigint") return random.pick(INTERESTING_BIGINTS);
  if (typeof value === "boolean") return !value;
  if (typeof value === "string" || value === null) {
    return random.pick([
      "",
      null,
      ".",
      "..",
      "x".repeat(250),
      "bad name!",
      "__consumer_offsets",
      "__cluster_metadata",
      "ünïcødé",
      "AAAAAAAAAAAAAAAAAAAAAQ",
      ...names,
    ]);
  }
  if (Buffer.isBuffer(value)) {
    return random.pick([
      Buffer.alloc(0),
      random.bytes(random.int(100)),
      value.subarray(0, random.int(value.length + 1)),
      (() => {
        const copy = Buffer.from(value);
        if (copy.length > 0) copy[random.int(copy.length)] ^= 0xff;
        return copy;
      })(),
      null,
    ]);
  }
  return value;
}

/** Every mutable spot of a decoded request: [container, key] pairs, skipping tagged-field bookkeeping. */
function leaves(value, found = []) {
  if (value === null || typeof value !== "object" || Buffer.isBuffer(value)) return found;
  for (const [key, child] of Object.entries(value)) {
    if (key === "unknownTaggedFields") continue;
    found.push([value, key]);
    if (child !== null && typeof child === "object" && !Buffer.isBuffer(child)) leaves(child, found);
  }
  return found;
}

/** Deep copy that keeps Buffers as Buffers (structuredClone would turn them into plain Uint8Arrays). */
function clone(value) {
  if (Buffer.isBuffer(value)) return Buffer.from(value);
  if (Array.isArray(value)) return value.map(clone);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, clone(child)]));
  }
  return value;
}

/** Field-level mutation of a request object (deep-copied first). */
export function mutateFields(random, request, names) {
  const copy = clone(request);
  const spots = leaves(copy);
  const count = 1 + random.int(3);
  for (let index = 0; index < count && spots.length > 0; index++) {
    const [container, key] = random.pick(spots);
    const current = container[key];
    if (Array.isArray(current)) {
      const action = random.int(4);
      if (action === 0) container[key] = [];
      else if (action === 1 && current.length > 0) container[key] = [...current, ...current];
      else if (action === 2) container[key] = null;
      else if (current.length > 0) container[key] = Array.from({ length: 50 }, () => clone(current[0]));
    } else {
      container[key] = edgeValue(random, current, names);
    }
  }
  return copy;
}
