import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  decodeMessages,
  encodeMessages,
  FrameDecodeError,
  FrameReader,
  frameBytes,
  type Message,
  makeConfig,
  type RaftLogger,
  RaftTransport,
  Reader,
  type TransportOptions,
  type TransportTls,
  Writer,
} from "../src/index.js";

const SECRET = "transport-test-secret-0123456789";
const transports: RaftTransport[] = [];
afterEach(async () => {
  await Promise.all(transports.splice(0).map((transport) => transport.stop()));
});

function logger(lines: string[]): RaftLogger {
  const record = (fields: object, message: string) => lines.push(`${message} ${JSON.stringify(fields)}`);
  return { info: record, warn: record, error: record };
}

async function transport(
  nodeId: number,
  received: Array<[number, Message[]]>,
  overrides: Partial<TransportOptions> = {},
): Promise<RaftTransport> {
  const created = new RaftTransport({
    nodeId,
    clusterId: "c1",
    secret: SECRET,
    listen: { host: "127.0.0.1", port: 0 },
    peers: new Map(),
    reconnectMinMs: 20,
    reconnectMaxMs: 100,
    onMessages: (from, messages) => received.push([from, messages]),
    ...overrides,
  });
  transports.push(created);
  await created.start();
  return created;
}

async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const heartbeat = (from: number, to: number, group: number): Message => ({
  type: "heartbeat",
  group,
  from,
  to,
  term: 3,
  commit: 41,
  round: 7,
  quiesce: false,
});

/**
 * Established TCP connections among the given listening ports, from the kernel's own table: each
 * connection is counted once, at its dialling end (ephemeral local port, remote port one of ours).
 */
function establishedConnectionsBetween(ports: number[]): number {
  let count = 0;
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4 || fields[3] !== "01") continue;
    const localPort = Number.parseInt(fields[1]!.split(":")[1]!, 16);
    const remotePort = Number.parseInt(fields[2]!.split(":")[1]!, 16);
    if (ports.includes(remotePort) && !ports.includes(localPort)) count++;
  }
  return count;
}

/** Every node sends one frame to every other node; resolves once all arrived. */
async function exchangeAll(
  nodes: Array<{ id: number; transport: RaftTransport; received: Array<[number, Message[]]> }>,
) {
  const before = nodes.map((node) => node.received.length);
  for (const from of nodes) {
    for (const to of nodes) {
      if (from !== to) from.transport.send(to.id, [heartbeat(from.id, to.id, 100 + from.id)]);
    }
  }
  await until("every node to hear from every other node", () =>
    nodes.every((node, index) => {
      const senders = new Set(node.received.slice(before[index]).map(([from]) => from));
      return senders.size === nodes.length - 1;
    }),
  );
}

async function pair(optionsA: Partial<TransportOptions> = {}, optionsB: Partial<TransportOptions> = {}) {
  const receivedA: Array<[number, Message[]]> = [];
  const receivedB: Array<[number, Message[]]> = [];
  const a = await transport(1, receivedA, optionsA);
  const b = await transport(2, receivedB, optionsB);
  a.setPeers(new Map([[2, { host: "127.0.0.1", port: b.port }]]));
  b.setPeers(new Map([[1, { host: "127.0.0.1", port: a.port }]]));
  return { a, b, receivedA, receivedB };
}

/**
 * Both nodes dial each other; until each side uses the connection node 1 dialled (the tie-break's survivor),
 * a message may go out on the duplicate that is about to close, and be lost as Raft allows.
 */
async function settled(a: RaftTransport, b: RaftTransport): Promise<void> {
  await until("one settled connection per pair", () => {
    const [fromA] = a.connections();
    const [fromB] = b.connections();
    return fromA?.dialledBy === 1 && fromB?.dialledBy === 1;
  });
}

describe("RaftTransport", () => {
  it("delivers one frame per send, with every message of it, after the handshake", async () => {
    const { a, b, receivedB } = await pair();
    await settled(a, b);
    a.send(2, [heartbeat(1, 2, 1), heartbeat(1, 2, 2), heartbeat(1, 2, 3)]);
    await until("delivery", () => receivedB.length === 1);
    expect(receivedB[0]![0]).toBe(1);
    expect(receivedB[0]![1].map((message) => message.group)).toEqual([1, 2, 3]);
    expect(receivedB[0]![1][0]).toEqual(heartbeat(1, 2, 1));
  });

  it("keeps one connection per pair when both dial at once: the lower id's, used both ways", async () => {
    const { a, b, receivedA, receivedB } = await pair();
    await until("both sides connected", () => a.isConnected(2) && b.isConnected(1));
    // Both dials were in flight before either handshake finished, so the pair briefly had two.
    await until("one connection per side", () => a.connectionCount(2) === 1 && b.connectionCount(1) === 1);
    await until("one connection in the kernel", () => establishedConnectionsBetween([a.port, b.port]) === 1);
    expect(a.connections()).toEqual([{ peer: 2, dialledBy: 1, remote: expect.any(String) }]);
    expect(b.connections()).toEqual([{ peer: 1, dialledBy: 1, remote: expect.any(String) }]);
    await exchangeAll([
      { id: 1, transport: a, received: receivedA },
      { id: 2, transport: b, received: receivedB },
    ]);
    expect(a.stats.framesDropped + b.stats.framesDropped).toBe(0);
    expect(establishedConnectionsBetween([a.port, b.port])).toBe(1);
    expect(a.connectionCount(2) + b.connectionCount(1)).toBe(2);
  });

  it("connects three nodes with exactly three connections, one per pair", async () => {
    const nodes = await Promise.all(
      [1, 2, 3].map(async (id) => {
        const received: Array<[number, Message[]]> = [];
        return { id, received, transport: await transport(id, received) };
      }),
    );
    const peers = new Map(nodes.map((node) => [node.id, { host: "127.0.0.1", port: node.transport.port }]));
    for (const node of nodes) node.transport.setPeers(peers);
    const ports = nodes.map((node) => node.transport.port);
    await until("every pair connected once", () =>
      nodes.every((node) =>
        nodes.every((other) => other === node || node.transport.connectionCount(other.id) === 1),
      ),
    );
    await until("three connections in the kernel", () => establishedConnectionsBetween(ports) === 3);
    await exchangeAll(nodes);
    for (const node of nodes) {
      for (const { peer, dialledBy } of node.transport.connections()) {
        // Simultaneous dials everywhere: every survivor is the lower id's.
        expect(dialledBy).toBe(Math.min(node.id, peer));
      }
    }
    expect(establishedConnectionsBetween(ports)).toBe(3);
  });

  it("reconnects with one connection after either side restarts", async () => {
    const receivedA: Array<[number, Message[]]> = [];
    let receivedB: Array<[number, Message[]]> = [];
    const a = await transport(1, receivedA);
    let b = await transport(2, receivedB);
    const port = { a: a.port, b: b.port };
    a.setPeers(new Map([[2, { host: "127.0.0.1", port: port.b }]]));
    b.setPeers(new Map([[1, { host: "127.0.0.1", port: port.a }]]));
    await until("the first connection", () => a.isConnected(2) && b.isConnected(1));

    // The higher id restarts (a new process on the same address).
    await b.stop();
    await until("node 1 to notice", () => !a.isConnected(2));
    receivedB = [];
    b = await transport(2, receivedB, {
      listen: { host: "127.0.0.1", port: port.b },
      peers: new Map([[1, { host: "127.0.0.1", port: port.a }]]),
    });
    await until("the reconnection", () => a.connectionCount(2) === 1 && b.connectionCount(1) === 1);
    await until("one connection in the kernel", () => establishedConnectionsBetween([port.a, port.b]) === 1);
    await exchangeAll([
      { id: 1, transport: a, received: receivedA },
      { id: 2, transport: b, received: receivedB },
    ]);

    // Now the lower id restarts.
    await a.stop();
    await until("node 2 to notice", () => !b.isConnected(1));
    const receivedA2: Array<[number, Message[]]> = [];
    const a2 = await transport(1, receivedA2, {
      listen: { host: "127.0.0.1", port: port.a },
      peers: new Map([[2, { host: "127.0.0.1", port: port.b }]]),
    });
    await until("the reconnection", () => a2.connectionCount(2) === 1 && b.connectionCount(1) === 1);
    await until("one connection in the kernel", () => establishedConnectionsBetween([port.a, port.b]) === 1);
    await exchangeAll([
      { id: 1, transport: a2, received: receivedA2 },
      { id: 2, transport: b, received: receivedB },
    ]);
    expect(establishedConnectionsBetween([port.a, port.b])).toBe(1);
  });

  it("replaces a connection a restarted peer's old process left half-open", async () => {
    // Node 1 reaches node 2 through a relay that never passes a close on to node 1, so when node 2
    // dies node 1 still believes in its connection (as across a network that lost the FIN).
    let portOfB = 0;
    const relayed: Socket[] = [];
    const relay = createServer((client) => {
      const upstream = connect(portOfB, "127.0.0.1");
      client.pipe(upstream);
      upstream.pipe(client, { end: false });
      upstream.on("error", () => {});
      client.on("error", () => {});
      client.on("close", () => upstream.destroy());
      relayed.push(client);
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    const relayPort = (relay.address() as AddressInfo).port;
    try {
      const lines: string[] = [];
      const receivedA: Array<[number, Message[]]> = [];
      const a = await transport(1, receivedA, { logger: logger(lines) });
      let receivedB: Array<[number, Message[]]> = [];
      let b = await transport(2, receivedB);
      portOfB = b.port;
      a.setPeers(new Map([[2, { host: "127.0.0.1", port: relayPort }]]));
      b.setPeers(new Map([[1, { host: "127.0.0.1", port: a.port }]]));
      await until(
        "one connection, node 1's through the relay",
        () => a.connections().some((connection) => connection.dialledBy === 1) && b.connectionCount(1) === 1,
      );

      await b.stop();
      receivedB = [];
      b = await transport(2, receivedB, {
        listen: { host: "127.0.0.1", port: portOfB },
        peers: new Map([[1, { host: "127.0.0.1", port: a.port }]]),
      });
      await until("the new process's connection to replace the stale one", () =>
        a.connections().some((connection) => connection.dialledBy === 2),
      );
      expect(a.connectionCount(2)).toBe(1);
      expect(lines.some((line) => line.startsWith("Raft peer restarted"))).toBe(true);
      await exchangeAll([
        { id: 1, transport: a, received: receivedA },
        { id: 2, transport: b, received: receivedB },
      ]);
    } finally {
      for (const socket of relayed) socket.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    }
  });

  it("refuses a peer with the wrong secret, and logs the refusal", async () => {
    const lines: string[] = [];
    const { a, b, receivedB } = await pair(
      { secret: "another-secret-0123456789abcdef" },
      { logger: logger(lines) },
    );
    await until("the refusal", () => lines.some((line) => line.includes("wrong cluster secret")));
    a.send(2, [heartbeat(1, 2, 1)]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(a.isConnected(2)).toBe(false);
    expect(b.isConnected(1)).toBe(false);
    expect(a.connectionCount(2) + b.connectionCount(1)).toBe(0);
    expect(receivedB).toEqual([]);
    expect(lines.find((line) => line.startsWith("refused a Raft connection"))).toMatch(/"claimed":1/);
  });

  it("refuses unknown node ids and other clusters", async () => {
    const lines: string[] = [];
    const receivedB: Array<[number, Message[]]> = [];
    const b = await transport(2, receivedB, { logger: logger(lines) });
    const stranger = await transport(9, [], { peers: new Map([[2, { host: "127.0.0.1", port: b.port }]]) });
    const otherLines: string[] = [];
    const otherCluster = await transport(1, [], {
      clusterId: "c2",
      peers: new Map([[2, { host: "127.0.0.1", port: b.port }]]),
      logger: logger(otherLines),
    });
    b.setPeers(new Map([[1, { host: "127.0.0.1", port: 1 }]]));
    await until("the refusal", () => lines.some((line) => line.startsWith("refused")));
    expect(lines.join("\n")).toMatch(/node 9 is not a known peer of node 2; add it to the cluster first/);
    // A node of another cluster hangs up itself when it sees the listener's cluster id.
    await until("the other cluster to notice", () =>
      otherLines.some((line) => line.includes('belongs to cluster "c1"')),
    );
    expect(stranger.isConnected(2) || otherCluster.isConnected(2)).toBe(false);
  });

  it("closes a connection that sends garbage or a corrupt frame", async () => {
    const lines: string[] = [];
    const b = await transport(2, [], {
      logger: logger(lines),
      peers: new Map([[1, { host: "127.0.0.1", port: 1 }]]),
    });
    for (const bytes of [Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), corruptFrame()]) {
      const closed = await new Promise<boolean>((resolve) => {
        const socket = connect(b.port, "127.0.0.1", () => socket.write(bytes));
        socket.resume();
        socket.on("close", () => resolve(true));
        socket.on("error", () => {});
        setTimeout(() => resolve(false), 3_000);
      });
      expect(closed).toBe(true);
    }
    expect(lines.filter((line) => line.includes("bad frame")).length).toBe(2);
  });

  describe("mutual TLS", () => {
    let directory: string;
    let good: TransportTls & { key2: string; cert2: string };
    let rogue: TransportTls;
    beforeAll(() => {
      directory = mkdtempSync(join(tmpdir(), "raftka-tls-"));
      const run = (...args: string[]) => execFileSync("openssl", args, { cwd: directory, stdio: "ignore" });
      const ca = (name: string) =>
        run(
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-keyout",
          `${name}.key`,
          "-out",
          `${name}.pem`,
          "-days",
          "1",
          "-subj",
          `/CN=${name}`,
        );
      const leaf = (name: string, caName: string) => {
        run(
          "req",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-keyout",
          `${name}.key`,
          "-out",
          `${name}.csr`,
          "-subj",
          `/CN=${name}`,
        );
        run(
          "x509",
          "-req",
          "-in",
          `${name}.csr`,
          "-CA",
          `${caName}.pem`,
          "-CAkey",
          `${caName}.key`,
          "-CAcreateserial",
          "-out",
          `${name}.pem`,
          "-days",
          "1",
        );
      };
      ca("ca");
      ca("rogue-ca");
      leaf("node1", "ca");
      leaf("node2", "ca");
      leaf("intruder", "rogue-ca");
      const read = (file: string) => readFileSync(join(directory, file), "utf8");
      good = {
        ca: read("ca.pem"),
        key: read("node1.key"),
        cert: read("node1.pem"),
        key2: read("node2.key"),
        cert2: read("node2.pem"),
      };
      rogue = { ca: read("rogue-ca.pem"), key: read("intruder.key"), cert: read("intruder.pem") };
    });
    afterAll(() => rmSync(directory, { recursive: true, force: true }));

    it("exchanges messages between nodes with certificates from the cluster CA", async () => {
      const { a, b, receivedB } = await pair(
        { tls: { ca: good.ca, key: good.key, cert: good.cert } },
        { tls: { ca: good.ca, key: good.key2, cert: good.cert2 } },
      );
      await settled(a, b);
      a.send(2, [heartbeat(1, 2, 5)]);
      await until("delivery", () => receivedB.length === 1);
    });

    it("refuses a node whose certificate another CA signed, and logs it", async () => {
      const lines: string[] = [];
      const { a, receivedB } = await pair(
        { tls: rogue },
        { tls: { ca: good.ca, key: good.key2, cert: good.cert2 }, logger: logger(lines) },
      );
      await until("the refusal", () => lines.some((line) => line.includes("failed mutual TLS")));
      expect(a.isConnected(2)).toBe(false);
      expect(receivedB).toEqual([]);
    });
  });
});

describe("wire codec", () => {
  const config = makeConfig([1, 2, 3], [4]);
  const base = { group: 70_000, from: 1, to: 2, term: 2 ** 40 };
  const messages: Message[] = [
    { ...base, type: "preVote", lastOffset: -1, lastTerm: 0 },
    { ...base, type: "vote", lastOffset: 2 ** 50, lastTerm: 9, transfer: true },
    { ...base, type: "preVoteResponse", reject: true },
    { ...base, type: "voteResponse", reject: false },
    {
      ...base,
      type: "append",
      prevOffset: 10,
      prevTerm: 3,
      commit: -1,
      entries: [
        {
          firstOffset: 11,
          lastOffset: 15,
          term: 4,
          kind: "data",
          payload: new Uint8Array([1, 2, 3]),
          config: undefined,
        },
        { firstOffset: 16, lastOffset: 16, term: 4, kind: "noop", payload: undefined, config: undefined },
        { firstOffset: 17, lastOffset: 17, term: 4, kind: "config", payload: undefined, config },
      ],
    },
    {
      ...base,
      type: "appendResponse",
      reject: true,
      matchOffset: -1,
      rejectedOffset: 10,
      hintOffset: 4,
      hintTerm: 2,
    },
    { ...base, type: "heartbeat", commit: 5, round: 3, quiesce: true },
    { ...base, type: "heartbeatResponse", round: 3 },
    {
      ...base,
      type: "snapshot",
      meta: { offset: 99, term: 3, config },
      position: 8,
      totalBytes: 20,
      data: new Uint8Array([7, 7]),
    },
    {
      ...base,
      type: "snapshotResponse",
      snapshotOffset: 99,
      snapshotTerm: 3,
      nextPosition: -1,
      matchOffset: 99,
    },
    { ...base, type: "timeoutNow" },
    { ...base, type: "readIndex", context: 12345 },
    { ...base, type: "readIndexResponse", context: 12345, index: -1 },
    { ...base, type: "wake" },
  ];

  it("round-trips every message type", () => {
    const writer = new Writer(8);
    encodeMessages(writer, messages);
    const decoded = decodeMessages(new Reader(writer.finish()), 1, 2);
    expect(decoded.map(normalize)).toEqual(messages.map(normalize));
  });

  it("keeps heartbeats of thousands of groups small", () => {
    const writer = new Writer();
    encodeMessages(
      writer,
      Array.from({ length: 10_000 }, (_, group) => ({ ...heartbeat(1, 2, group), term: 12, commit: 50_000 })),
    );
    expect(writer.length / 10_000).toBeLessThan(12);
  });

  it("rejects truncated input, unknown types and lies about counts instead of crashing", () => {
    const writer = new Writer();
    encodeMessages(writer, messages);
    const bytes = writer.finish();
    for (let cut = 1; cut < bytes.length; cut += 7) {
      expect(() => decodeMessages(new Reader(bytes.subarray(0, cut)), 1, 2)).toThrow(FrameDecodeError);
    }
    expect(() => decodeMessages(new Reader(Buffer.from([1, 99, 0, 0])), 1, 2)).toThrow(
      /unknown message type 99/,
    );
    expect(() => decodeMessages(new Reader(Buffer.from([0xff, 0xff, 0x7f])), 1, 2)).toThrow(/claims/);
  });

  it("refuses an append that no leader could have sent (gaps, terms from the future)", () => {
    const append = (entries: Extract<Message, { type: "append" }>["entries"], term = 4): Message => ({
      ...base,
      term,
      type: "append",
      prevOffset: 10,
      prevTerm: 3,
      commit: 10,
      entries,
    });
    const data = (first: number, last: number, term: number) => ({
      firstOffset: first,
      lastOffset: last,
      term,
      kind: "data" as const,
      payload: new Uint8Array([1]),
      config: undefined,
    });
    for (const bad of [
      append([data(12, 12, 4)]),
      append([data(11, 12, 5)]),
      append([data(11, 12, 4), data(13, 13, 3)]),
    ]) {
      const writer = new Writer();
      encodeMessages(writer, [bad]);
      expect(() => decodeMessages(new Reader(writer.finish()), 1, 2)).toThrow(FrameDecodeError);
    }
  });

  it("frames are checksummed and bounded", () => {
    const reader = new FrameReader(1024);
    const frame = frameBytes(Buffer.from("hello"));
    expect(reader.push(frame.subarray(0, 3))).toEqual([]);
    expect(reader.push(frame.subarray(3)).map((payload) => payload.toString())).toEqual(["hello"]);
    expect(() => new FrameReader(1024).push(corruptFrame())).toThrow(/checksum/);
    const huge = Buffer.alloc(8);
    huge.writeUInt32BE(10_000, 0);
    expect(() => new FrameReader(1024).push(huge)).toThrow(/outside 4..1024/);
  });
});

function corruptFrame(): Buffer {
  const frame = frameBytes(Buffer.from([2, 1, 2, 3, 4]));
  frame[frame.length - 1] ^= 0xff;
  return frame;
}

function normalize(value: unknown): unknown {
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map(normalize);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, field]) => field !== undefined)
        .map(([key, field]) => [key, normalize(field)]),
    );
  }
  return value;
}
