import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from "node:tls";
import { crc32c } from "@node-rs/crc32";
import type { Message, NodeId } from "../core/types.js";
import { decodeMessages, encodeMessages, FrameDecodeError, Reader, Writer } from "./codec.js";
import { type RaftLogger, silentLogger } from "./logger.js";

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** PEM material for mutual TLS: every node presents `cert` and accepts only peers signed by `ca`. */
export interface TransportTls {
  readonly key: string | Buffer;
  readonly cert: string | Buffer;
  readonly ca: string | Buffer;
}

export interface TransportOptions {
  readonly nodeId: NodeId;
  /** Nodes of different clusters refuse each other even if they share a secret. */
  readonly clusterId: string;
  /** Shared cluster secret: peers prove they know it (HMAC challenge) before anything else is accepted. */
  readonly secret: string;
  readonly listen: PeerAddress;
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  readonly tls?: TransportTls;
  readonly logger?: RaftLogger;
  readonly maxFrameBytes?: number;
  /** Frames to a peer are dropped (Raft retransmits) while this much is queued on its socket. */
  readonly maxBufferedBytes?: number;
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  readonly onMessages: (from: NodeId, messages: Message[]) => void;
  /** The connection to `peer` broke or cannot be made. */
  readonly onPeerDown?: (peer: NodeId) => void;
  readonly onPeerUp?: (peer: NodeId) => void;
}

export interface TransportStats {
  framesSent: number;
  bytesSent: number;
  framesDropped: number;
  framesReceived: number;
  bytesReceived: number;
  refusedConnections: number;
}

const PROTOCOL_VERSION = 1;
const FRAME_CHALLENGE = 1;
const FRAME_HELLO = 2;
const FRAME_WELCOME = 3;
const FRAME_REFUSED = 4;
const FRAME_MESSAGES = 5;
const NONCE_BYTES = 16;
const HANDSHAKE_TIMEOUT_MS = 5_000;

/**
 * Raft messages between nodes over TCP (optionally mutual TLS). Every frame is
 * `length u32 | crc32c u32 | payload`; a corrupt or oversized frame closes the connection.
 *
 * Each node dials every peer and sends on that connection; it receives on the connections its peers
 * dialled. A connection is usable only after a challenge/response handshake in both directions:
 * the listener sends a nonce, the dialler answers with HMAC-SHA256(secret, nonce, ids, cluster) and
 * its own nonce, the listener answers that. Unknown node ids, other clusters and wrong secrets are
 * refused and logged. Lost connections are redialled with exponential backoff; frames for a peer
 * that is not connected are dropped, which Raft tolerates (it retransmits).
 */
export class RaftTransport {
  readonly stats: TransportStats = {
    framesSent: 0,
    bytesSent: 0,
    framesDropped: 0,
    framesReceived: 0,
    bytesReceived: 0,
    refusedConnections: 0,
  };
  private readonly logger: RaftLogger;
  private readonly maxFrameBytes: number;
  private readonly maxBufferedBytes: number;
  private server: Server | undefined;
  private peers: Map<NodeId, PeerAddress>;
  private readonly outbound = new Map<NodeId, OutboundConnection>();
  private readonly inbound = new Set<Socket>();
  private stopped = false;
  private boundPort = 0;

  constructor(private readonly options: TransportOptions) {
    if (options.secret.length < 16) {
      throw new RangeError(
        "the cluster secret must be at least 16 characters; set the same long random string on every node (e.g. `openssl rand -hex 32`)",
      );
    }
    this.logger = options.logger ?? silentLogger;
    this.maxFrameBytes = options.maxFrameBytes ?? 64 * 1024 * 1024;
    this.maxBufferedBytes = options.maxBufferedBytes ?? 64 * 1024 * 1024;
    this.peers = new Map(options.peers);
    this.peers.delete(options.nodeId);
  }

  /** Listen, then dial every peer; resolves with the port actually bound (listen on port 0 in tests). */
  async start(): Promise<number> {
    const server = this.options.tls
      ? createTlsServer(
          {
            key: this.options.tls.key,
            cert: this.options.tls.cert,
            ca: this.options.tls.ca,
            requestCert: true,
            rejectUnauthorized: true,
          },
          (socket) => this.accept(socket),
        )
      : createServer((socket) => this.accept(socket));
    server.on("tlsClientError", (error: Error, socket: TLSSocket) => {
      this.stats.refusedConnections++;
      this.logger.warn(
        { remote: socket.remoteAddress, error: error.message },
        "refused a Raft connection that failed mutual TLS; check that the peer's certificate is signed by the cluster CA",
      );
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.listen.port, this.options.listen.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    this.boundPort =
      typeof address === "object" && address !== null ? address.port : this.options.listen.port;
    for (const peer of this.peers.keys()) this.connection(peer);
    return this.boundPort;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Peers can change at run time (membership changes, replaced nodes). */
  setPeers(peers: ReadonlyMap<NodeId, PeerAddress>): void {
    this.peers = new Map(peers);
    this.peers.delete(this.options.nodeId);
    for (const [peer, connection] of this.outbound) {
      const address = this.peers.get(peer);
      if (
        address === undefined ||
        address.host !== connection.address.host ||
        address.port !== connection.address.port
      ) {
        connection.close();
        this.outbound.delete(peer);
      }
    }
    if (!this.stopped) for (const peer of this.peers.keys()) this.connection(peer);
  }

  isConnected(peer: NodeId): boolean {
    return this.outbound.get(peer)?.ready ?? false;
  }

  /** Send all messages in one frame; dropped (and counted) if the peer is not connected. */
  send(to: NodeId, messages: readonly Message[]): void {
    const connection = this.stopped ? undefined : this.connection(to);
    if (connection === undefined || !connection.ready || connection.bufferedBytes() > this.maxBufferedBytes) {
      this.stats.framesDropped++;
      return;
    }
    const writer = new Writer(64 + messages.length * 16);
    writer.u8(FRAME_MESSAGES);
    encodeMessages(writer, messages);
    const frame = frameBytes(writer.finish());
    this.stats.framesSent++;
    this.stats.bytesSent += frame.length;
    connection.write(frame);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const connection of this.outbound.values()) connection.close();
    this.outbound.clear();
    for (const socket of this.inbound) socket.destroy();
    this.inbound.clear();
    const server = this.server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private connection(peer: NodeId): OutboundConnection | undefined {
    let connection = this.outbound.get(peer);
    if (connection !== undefined) return connection;
    const address = this.peers.get(peer);
    if (address === undefined) return undefined;
    connection = new OutboundConnection(
      peer,
      address,
      this.options,
      this.logger,
      this.maxFrameBytes,
      () => this.stopped,
    );
    this.outbound.set(peer, connection);
    connection.start();
    return connection;
  }

  private accept(socket: Socket): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    this.inbound.add(socket);
    socket.setNoDelay(true);
    const nonce = randomBytes(NONCE_BYTES);
    let peer: NodeId | undefined;
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const refuse = (reason: string, fields: object = {}): void => {
      this.stats.refusedConnections++;
      this.logger.warn({ remote, ...fields, reason }, "refused a Raft connection");
      const writer = new Writer();
      writer.u8(FRAME_REFUSED);
      writer.bytes(Buffer.from(reason));
      socket.end(frameBytes(writer.finish()));
      setTimeout(() => socket.destroy(), 1_000).unref();
    };
    const timeout = setTimeout(() => {
      if (peer === undefined) refuse("no handshake within 5 s");
    }, HANDSHAKE_TIMEOUT_MS);
    timeout.unref();
    const challenge = new Writer();
    challenge.u8(FRAME_CHALLENGE);
    challenge.u8(PROTOCOL_VERSION);
    challenge.bytes(Buffer.from(this.options.clusterId));
    challenge.varint(this.options.nodeId);
    challenge.raw(nonce);
    socket.write(frameBytes(challenge.finish()));
    const frames = new FrameReader(this.maxFrameBytes);
    socket.on("data", (chunk: Buffer) => {
      this.stats.bytesReceived += chunk.length;
      try {
        for (const payload of frames.push(chunk)) {
          const reader = new Reader(payload);
          const kind = reader.u8("frame kind");
          if (peer === undefined) {
            if (kind !== FRAME_HELLO)
              throw new FrameDecodeError(`expected a handshake, got frame kind ${kind}`);
            const version = reader.u8("version");
            const clusterId = reader.bytes("cluster id").toString();
            const claimed = reader.varint("node id");
            const clientNonce = reader.raw(NONCE_BYTES, "nonce");
            const mac = reader.raw(32, "mac");
            if (version !== PROTOCOL_VERSION)
              return refuse(`protocol version ${version}, this node speaks ${PROTOCOL_VERSION}`);
            if (clusterId !== this.options.clusterId) {
              return refuse(`cluster "${clusterId}" is not this cluster ("${this.options.clusterId}")`, {
                claimed,
              });
            }
            if (!this.peers.has(claimed)) {
              return refuse(
                `node ${claimed} is not a known peer of node ${this.options.nodeId}; add it to the cluster first`,
                {
                  claimed,
                },
              );
            }
            const expected = hello(
              this.options.secret,
              this.options.clusterId,
              nonce,
              claimed,
              this.options.nodeId,
            );
            if (!timingSafeEqual(mac, expected)) {
              return refuse("wrong cluster secret: every node needs the same secret", { claimed });
            }
            peer = claimed;
            clearTimeout(timeout);
            const welcome = new Writer();
            welcome.u8(FRAME_WELCOME);
            welcome.raw(
              welcomeMac(
                this.options.secret,
                this.options.clusterId,
                clientNonce,
                this.options.nodeId,
                claimed,
              ),
            );
            socket.write(frameBytes(welcome.finish()));
            this.logger.info({ peer, remote }, "Raft peer connected");
            continue;
          }
          if (kind !== FRAME_MESSAGES)
            throw new FrameDecodeError(`unexpected frame kind ${kind} after the handshake`);
          this.stats.framesReceived++;
          const messages = decodeMessages(reader, peer, this.options.nodeId);
          this.options.onMessages(peer, messages);
        }
      } catch (error) {
        this.logger.warn(
          { peer, remote, error: (error as Error).message },
          "closing a Raft connection that sent a bad frame; the peer may run an incompatible version",
        );
        socket.destroy();
      }
    });
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      clearTimeout(timeout);
      this.inbound.delete(socket);
    });
  }
}

class OutboundConnection {
  ready = false;
  private socket: Socket | undefined;
  private attempts = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private everUp = false;
  private lastWarning = "";

  constructor(
    readonly peer: NodeId,
    readonly address: PeerAddress,
    private readonly options: TransportOptions,
    private readonly logger: RaftLogger,
    private readonly maxFrameBytes: number,
    private readonly transportStopped: () => boolean,
  ) {}

  start(): void {
    if (this.closed || this.transportStopped()) return;
    const { host, port } = this.address;
    const tls = this.options.tls;
    const socket: Socket = tls
      ? tlsConnect({
          host,
          port,
          key: tls.key,
          cert: tls.cert,
          ca: tls.ca,
          checkServerIdentity: () => undefined,
        })
      : tcpConnect({ host, port });
    this.socket = socket;
    socket.setNoDelay(true);
    const nonce = randomBytes(NONCE_BYTES);
    let serverNonce: Buffer | undefined;
    const frames = new FrameReader(this.maxFrameBytes);
    socket.on("data", (chunk: Buffer) => {
      try {
        for (const payload of frames.push(chunk)) {
          const reader = new Reader(payload);
          const kind = reader.u8("frame kind");
          if (kind === FRAME_REFUSED) {
            this.warn(`refused by node ${this.peer}: ${reader.bytes("reason").toString()}`);
            socket.destroy();
            return;
          }
          if (serverNonce === undefined) {
            if (kind !== FRAME_CHALLENGE)
              throw new FrameDecodeError(`expected a challenge, got frame kind ${kind}`);
            reader.u8("version");
            const clusterId = reader.bytes("cluster id").toString();
            const serverId = reader.varint("node id");
            serverNonce = reader.raw(NONCE_BYTES, "nonce");
            if (serverId !== this.peer) {
              this.warn(
                `${host}:${port} answered as node ${serverId}, expected node ${this.peer}; fix the peer addresses`,
              );
              socket.destroy();
              return;
            }
            if (clusterId !== this.options.clusterId) {
              this.warn(`${host}:${port} belongs to cluster "${clusterId}", not "${this.options.clusterId}"`);
              socket.destroy();
              return;
            }
            const writer = new Writer();
            writer.u8(FRAME_HELLO);
            writer.u8(PROTOCOL_VERSION);
            writer.bytes(Buffer.from(this.options.clusterId));
            writer.varint(this.options.nodeId);
            writer.raw(nonce);
            writer.raw(
              hello(this.options.secret, this.options.clusterId, serverNonce, this.options.nodeId, this.peer),
            );
            socket.write(frameBytes(writer.finish()));
            continue;
          }
          if (kind !== FRAME_WELCOME)
            throw new FrameDecodeError(`expected a welcome, got frame kind ${kind}`);
          const mac = reader.raw(32, "mac");
          const expected = welcomeMac(
            this.options.secret,
            this.options.clusterId,
            nonce,
            this.peer,
            this.options.nodeId,
          );
          if (!timingSafeEqual(mac, expected)) {
            this.warn(
              `node ${this.peer} at ${host}:${port} does not know the cluster secret; not sending it anything`,
            );
            socket.destroy();
            return;
          }
          this.ready = true;
          this.attempts = 0;
          this.everUp = true;
          this.lastWarning = "";
          this.options.onPeerUp?.(this.peer);
        }
      } catch (error) {
        this.warn(`bad frame from node ${this.peer}: ${(error as Error).message}`);
        socket.destroy();
      }
    });
    socket.on("error", (error) => {
      if (this.everUp || this.attempts === 0)
        this.warn(`connection to node ${this.peer} at ${host}:${port} failed: ${error.message}`);
    });
    socket.on("close", () => {
      const wasReady = this.ready;
      this.ready = false;
      this.socket = undefined;
      if (this.closed || this.transportStopped()) return;
      if (wasReady || this.attempts === 0) this.options.onPeerDown?.(this.peer);
      const min = this.options.reconnectMinMs ?? 100;
      const max = this.options.reconnectMaxMs ?? 5_000;
      const delay = Math.min(max, min * 2 ** this.attempts) * (0.5 + Math.random() / 2);
      this.attempts++;
      this.timer = setTimeout(() => this.start(), delay);
      this.timer.unref();
    });
  }

  bufferedBytes(): number {
    return this.socket?.writableLength ?? 0;
  }

  write(frame: Buffer): void {
    this.socket?.write(frame);
  }

  close(): void {
    this.closed = true;
    this.ready = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.socket?.destroy();
  }

  /** One line per distinct problem, not one per reconnect attempt. */
  private warn(message: string): void {
    if (message === this.lastWarning) return;
    this.lastWarning = message;
    this.logger.warn({ peer: this.peer }, message);
  }
}

/** Splits a byte stream into verified frame payloads. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrameBytes: number) {}

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const payloads: Buffer[] = [];
    for (;;) {
      if (this.buffered < 8) return payloads;
      const head = this.peek(8);
      const length = head.readUInt32BE(0);
      if (length < 4 || length > this.maxFrameBytes) {
        throw new FrameDecodeError(`frame of ${length} bytes is outside 4..${this.maxFrameBytes}`);
      }
      if (this.buffered < 4 + length) return payloads;
      const frame = this.take(4 + length);
      const checksum = frame.readUInt32BE(4);
      const payload = frame.subarray(8);
      if (crc32c(payload) !== checksum)
        throw new FrameDecodeError("frame checksum mismatch: the stream is corrupt");
      payloads.push(payload);
    }
  }

  private peek(bytes: number): Buffer {
    if (this.chunks[0]!.length >= bytes) return this.chunks[0]!;
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  private take(bytes: number): Buffer {
    const first = this.chunks[0]!;
    let result: Buffer;
    if (first.length >= bytes) {
      result = first.subarray(0, bytes);
      if (first.length === bytes) this.chunks.shift();
      else this.chunks[0] = first.subarray(bytes);
    } else {
      const joined = Buffer.concat(this.chunks);
      result = joined.subarray(0, bytes);
      this.chunks = joined.length > bytes ? [joined.subarray(bytes)] : [];
    }
    this.buffered -= bytes;
    return result;
  }
}

export function frameBytes(payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(8 + payload.length);
  frame.writeUInt32BE(4 + payload.length, 0);
  frame.writeUInt32BE(crc32c(payload), 4);
  payload.copy(frame, 8);
  return frame;
}

function hello(
  secret: string,
  clusterId: string,
  serverNonce: Buffer,
  client: NodeId,
  server: NodeId,
): Buffer {
  return createHmac("sha256", secret)
    .update("raftka-hello\0")
    .update(clusterId)
    .update("\0")
    .update(serverNonce)
    .update(`\0${client}\0${server}`)
    .digest();
}

function welcomeMac(
  secret: string,
  clusterId: string,
  clientNonce: Buffer,
  server: NodeId,
  client: NodeId,
): Buffer {
  return createHmac("sha256", secret)
    .update("raftka-welcome\0")
    .update(clusterId)
    .update("\0")
    .update(clientNonce)
    .update(`\0${server}\0${client}`)
    .digest();
}
