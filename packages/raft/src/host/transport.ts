import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from "node:tls";
import { crc32c } from "@raftka/crc32c";
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
  /** Connections closed right after their handshake because the pair already had one (or a newer one). */
  duplicateConnectionsClosed: number;
}

// Version 2: one connection per node pair carrying frames both ways, process incarnations in the
// handshake. A version 1 node would treat frames on the connection it dialled as garbage.
const PROTOCOL_VERSION = 2;
const FRAME_CHALLENGE = 1;
const FRAME_HELLO = 2;
const FRAME_WELCOME = 3;
const FRAME_REFUSED = 4;
const FRAME_MESSAGES = 5;
const NONCE_BYTES = 16;
const INCARNATION_BYTES = 8;
const HANDSHAKE_TIMEOUT_MS = 5_000;
const KEEPALIVE_MS = 5_000;

/** One TCP (or TLS) connection with a peer, from its first byte to its close. */
interface Connection {
  readonly socket: Socket;
  /** The node that opened it (known for accepted ones after the handshake): the tie-break looks at it. */
  dialledBy: NodeId;
  readonly remote: string;
  peer: NodeId | undefined;
  /** The peer process's random id: a different one means the peer restarted since. */
  peerIncarnation: Buffer | undefined;
  established: boolean;
}

/** Everything this node knows about one peer: where to dial it and the connection in use. */
interface PeerLink {
  readonly peer: NodeId;
  readonly address: PeerAddress;
  /** The pair's one connection; messages to the peer go here. */
  active: Connection | undefined;
  /** A connection this node is dialling (not yet through its handshake). */
  dialling: Connection | undefined;
  attempts: number;
  timer: NodeJS.Timeout | undefined;
  closed: boolean;
  everUp: boolean;
  lastWarning: string;
}

/**
 * Raft messages between nodes over TCP (optionally mutual TLS). Every frame is
 * `length u32 | crc32c u32 | payload`; a corrupt or oversized frame closes the connection.
 *
 * One connection per node pair, frames flowing both ways. Both nodes may dial (at start, after a
 * loss); when a pair ends up with two established connections, both nodes keep the same one: the
 * one from a newer peer process if the peer restarted, else the newer one if the same node dialled
 * both (it only redials once it considers its previous connection dead), else the one dialled by
 * the lower node id. The other is closed right after its handshake.
 *
 * A connection is usable only after a challenge/response handshake in both directions: the
 * listener sends a nonce, the dialler answers with HMAC-SHA256(secret, nonce, ids, cluster) and its
 * own nonce, the listener answers that. Unknown node ids, other clusters and wrong secrets are
 * refused and logged. Lost connections are redialled with jittered exponential backoff; frames for
 * a peer that is not connected are dropped, which Raft tolerates (it retransmits).
 */
export class RaftTransport {
  readonly stats: TransportStats = {
    framesSent: 0,
    bytesSent: 0,
    framesDropped: 0,
    framesReceived: 0,
    bytesReceived: 0,
    refusedConnections: 0,
    duplicateConnectionsClosed: 0,
  };
  private readonly logger: RaftLogger;
  private readonly maxFrameBytes: number;
  private readonly maxBufferedBytes: number;
  private readonly incarnation = randomBytes(INCARNATION_BYTES);
  private server: Server | undefined;
  private readonly links = new Map<NodeId, PeerLink>();
  /** Every open socket, dialled or accepted, handshake done or not: stop() closes them all. */
  private readonly sockets = new Set<Socket>();
  private readonly establishedConnections = new Set<Connection>();
  private started = false;
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
    for (const [peer, address] of options.peers) {
      if (peer !== options.nodeId) this.links.set(peer, newLink(peer, address));
    }
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
    this.started = true;
    for (const link of this.links.values()) this.dial(link);
    return this.boundPort;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Peers can change at run time (membership changes, replaced nodes). */
  setPeers(peers: ReadonlyMap<NodeId, PeerAddress>): void {
    for (const [peer, link] of this.links) {
      const address = peers.get(peer);
      if (address === undefined || address.host !== link.address.host || address.port !== link.address.port) {
        this.closeLink(link);
        this.links.delete(peer);
      }
    }
    for (const [peer, address] of peers) {
      if (peer === this.options.nodeId || this.links.has(peer)) continue;
      const link = newLink(peer, address);
      this.links.set(peer, link);
      if (this.started && !this.stopped) this.dial(link);
    }
  }

  isConnected(peer: NodeId): boolean {
    return this.links.get(peer)?.active !== undefined;
  }

  /**
   * Connections with `peer` that completed their handshake and are still open. One in steady state;
   * two only for the moment between a duplicate's handshake and its close.
   */
  connectionCount(peer: NodeId): number {
    let count = 0;
    for (const connection of this.establishedConnections) if (connection.peer === peer) count++;
    return count;
  }

  /** The connection each connected peer uses, and which node dialled it (for status pages and tests). */
  connections(): Array<{ peer: NodeId; dialledBy: NodeId; remote: string }> {
    const result: Array<{ peer: NodeId; dialledBy: NodeId; remote: string }> = [];
    for (const link of this.links.values()) {
      const active = link.active;
      if (active !== undefined)
        result.push({ peer: link.peer, dialledBy: active.dialledBy, remote: active.remote });
    }
    return result;
  }

  /** Send all messages in one frame; dropped (and counted) if the peer is not connected. */
  send(to: NodeId, messages: readonly Message[]): void {
    const connection = this.stopped ? undefined : this.links.get(to)?.active;
    if (connection === undefined || connection.socket.writableLength > this.maxBufferedBytes) {
      this.stats.framesDropped++;
      return;
    }
    const writer = new Writer(64 + messages.length * 16);
    writer.u8(FRAME_MESSAGES);
    encodeMessages(writer, messages);
    const frame = frameBytes(writer.finish());
    this.stats.framesSent++;
    this.stats.bytesSent += frame.length;
    connection.socket.write(frame);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const link of this.links.values()) this.closeLink(link);
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    const server = this.server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ---- connections ---------------------------------------------------------------------------

  private dial(link: PeerLink): void {
    if (this.stopped || link.closed || link.active !== undefined || link.dialling !== undefined) return;
    if (link.timer !== undefined) {
      clearTimeout(link.timer);
      link.timer = undefined;
    }
    const { host, port } = link.address;
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
    const connection = this.track(socket, this.options.nodeId, `${host}:${port}`);
    connection.peer = link.peer;
    link.dialling = connection;
    const nonce = randomBytes(NONCE_BYTES);
    let serverNonce: Buffer | undefined;
    const frames = new FrameReader(this.maxFrameBytes);
    socket.on("data", (chunk: Buffer) => {
      this.stats.bytesReceived += chunk.length;
      try {
        for (const payload of frames.push(chunk)) {
          const reader = new Reader(payload);
          const kind = reader.u8("frame kind");
          if (connection.established) {
            this.deliver(connection, kind, reader);
            continue;
          }
          if (kind === FRAME_REFUSED) {
            this.warn(link, `refused by node ${link.peer}: ${reader.bytes("reason").toString()}`);
            socket.destroy();
            return;
          }
          if (serverNonce === undefined) {
            if (kind !== FRAME_CHALLENGE)
              throw new FrameDecodeError(`expected a challenge, got frame kind ${kind}`);
            const version = reader.u8("version");
            const clusterId = reader.bytes("cluster id").toString();
            const serverId = reader.varint("node id");
            serverNonce = reader.raw(NONCE_BYTES, "nonce");
            if (version !== PROTOCOL_VERSION) {
              this.warn(
                link,
                `node ${link.peer} at ${host}:${port} speaks Raft transport version ${version}, this node ${PROTOCOL_VERSION}; run the same Raftka version on every node`,
              );
              socket.destroy();
              return;
            }
            connection.peerIncarnation = reader.raw(INCARNATION_BYTES, "incarnation");
            if (serverId !== link.peer) {
              this.warn(
                link,
                `${host}:${port} answered as node ${serverId}, expected node ${link.peer}; fix the peer addresses`,
              );
              socket.destroy();
              return;
            }
            if (clusterId !== this.options.clusterId) {
              this.warn(
                link,
                `${host}:${port} belongs to cluster "${clusterId}", not "${this.options.clusterId}"`,
              );
              socket.destroy();
              return;
            }
            const writer = new Writer();
            writer.u8(FRAME_HELLO);
            writer.u8(PROTOCOL_VERSION);
            writer.bytes(Buffer.from(this.options.clusterId));
            writer.varint(this.options.nodeId);
            writer.raw(nonce);
            writer.raw(this.incarnation);
            writer.raw(
              hello(
                this.options.secret,
                this.options.clusterId,
                serverNonce,
                this.options.nodeId,
                link.peer,
                this.incarnation,
              ),
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
            link.peer,
            this.options.nodeId,
            connection.peerIncarnation!,
          );
          if (!timingSafeEqual(mac, expected)) {
            this.warn(
              link,
              `node ${link.peer} at ${host}:${port} does not know the cluster secret; not sending it anything`,
            );
            socket.destroy();
            return;
          }
          link.dialling = undefined;
          this.established(connection);
        }
      } catch (error) {
        this.warn(link, `bad frame from node ${link.peer}: ${(error as Error).message}`);
        socket.destroy();
      }
    });
    socket.on("error", (error) => {
      if (link.everUp || link.attempts === 0)
        this.warn(link, `connection to node ${link.peer} at ${host}:${port} failed: ${error.message}`);
    });
  }

  private accept(socket: Socket): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    const connection = this.track(socket, -1, `${socket.remoteAddress}:${socket.remotePort}`);
    const { remote } = connection;
    const nonce = randomBytes(NONCE_BYTES);
    let claimedPeer: NodeId | undefined;
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
      if (!connection.established) refuse("no handshake within 5 s");
    }, HANDSHAKE_TIMEOUT_MS);
    timeout.unref();
    socket.once("close", () => clearTimeout(timeout));
    const challenge = new Writer();
    challenge.u8(FRAME_CHALLENGE);
    challenge.u8(PROTOCOL_VERSION);
    challenge.bytes(Buffer.from(this.options.clusterId));
    challenge.varint(this.options.nodeId);
    challenge.raw(nonce);
    challenge.raw(this.incarnation);
    socket.write(frameBytes(challenge.finish()));
    const frames = new FrameReader(this.maxFrameBytes);
    socket.on("data", (chunk: Buffer) => {
      this.stats.bytesReceived += chunk.length;
      try {
        for (const payload of frames.push(chunk)) {
          const reader = new Reader(payload);
          const kind = reader.u8("frame kind");
          if (connection.established) {
            this.deliver(connection, kind, reader);
            continue;
          }
          if (claimedPeer !== undefined) {
            throw new FrameDecodeError(`frame kind ${kind} before the handshake finished`);
          }
          if (kind !== FRAME_HELLO)
            throw new FrameDecodeError(`expected a handshake, got frame kind ${kind}`);
          const version = reader.u8("version");
          if (version !== PROTOCOL_VERSION)
            return refuse(
              `protocol version ${version}, this node speaks ${PROTOCOL_VERSION}; run the same Raftka version on every node`,
            );
          const clusterId = reader.bytes("cluster id").toString();
          const claimed = reader.varint("node id");
          const clientNonce = reader.raw(NONCE_BYTES, "nonce");
          const clientIncarnation = reader.raw(INCARNATION_BYTES, "incarnation");
          const mac = reader.raw(32, "mac");
          if (clusterId !== this.options.clusterId) {
            return refuse(`cluster "${clusterId}" is not this cluster ("${this.options.clusterId}")`, {
              claimed,
            });
          }
          if (!this.links.has(claimed)) {
            return refuse(
              `node ${claimed} is not a known peer of node ${this.options.nodeId}; add it to the cluster first`,
              { claimed },
            );
          }
          const expected = hello(
            this.options.secret,
            this.options.clusterId,
            nonce,
            claimed,
            this.options.nodeId,
            clientIncarnation,
          );
          if (!timingSafeEqual(mac, expected)) {
            return refuse("wrong cluster secret: every node needs the same secret", { claimed });
          }
          claimedPeer = claimed;
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
              this.incarnation,
            ),
          );
          socket.write(frameBytes(welcome.finish()));
          connection.peer = claimed;
          connection.dialledBy = claimed;
          connection.peerIncarnation = clientIncarnation;
          this.established(connection);
        }
      } catch (error) {
        this.logger.warn(
          { peer: connection.peer, remote, error: (error as Error).message },
          "closing a Raft connection that sent a bad frame; the peer may run an incompatible version",
        );
        socket.destroy();
      }
    });
  }

  /** Common bookkeeping of a new socket: tracked for stop(), and its close handled once. */
  private track(socket: Socket, dialledBy: NodeId, remote: string): Connection {
    const connection: Connection = {
      socket,
      dialledBy,
      remote,
      peer: undefined,
      peerIncarnation: undefined,
      established: false,
    };
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_MS);
    socket.on("error", () => socket.destroy());
    socket.on("close", () => this.closed(connection));
    return connection;
  }

  private deliver(connection: Connection, kind: number, reader: Reader): void {
    if (kind !== FRAME_MESSAGES)
      throw new FrameDecodeError(`unexpected frame kind ${kind} after the handshake`);
    this.stats.framesReceived++;
    const peer = connection.peer!;
    this.options.onMessages(peer, decodeMessages(reader, peer, this.options.nodeId));
  }

  /**
   * A connection finished its handshake. If the pair already has one, both nodes pick the same
   * survivor (see the class comment) and close the other.
   */
  private established(connection: Connection): void {
    const peer = connection.peer!;
    const link = this.links.get(peer);
    if (this.stopped || link === undefined || link.closed) {
      connection.socket.destroy();
      return;
    }
    connection.established = true;
    this.establishedConnections.add(connection);
    const current = link.active;
    if (current === undefined) {
      this.activate(link, connection);
      return;
    }
    const peerRestarted = !current.peerIncarnation!.equals(connection.peerIncarnation!);
    const preferredDialler = Math.min(this.options.nodeId, peer);
    const keepNew =
      peerRestarted ||
      current.dialledBy === connection.dialledBy ||
      (connection.dialledBy === preferredDialler && current.dialledBy !== preferredDialler);
    const loser = keepNew ? current : connection;
    if (keepNew) link.active = connection;
    this.stats.duplicateConnectionsClosed++;
    this.logger.info(
      {
        peer,
        kept: `dialled by node ${link.active!.dialledBy}`,
        closed: `dialled by node ${loser.dialledBy}`,
      },
      peerRestarted
        ? "Raft peer restarted: closing the connection to its previous process"
        : "closing a second Raft connection to the same peer: one per node pair",
    );
    this.establishedConnections.delete(loser);
    loser.socket.destroy();
    if (peerRestarted) {
      // Whatever the old process led is gone with it.
      this.options.onPeerDown?.(peer);
      this.options.onPeerUp?.(peer);
    }
  }

  private activate(link: PeerLink, connection: Connection): void {
    link.active = connection;
    link.attempts = 0;
    link.everUp = true;
    link.lastWarning = "";
    if (link.timer !== undefined) {
      clearTimeout(link.timer);
      link.timer = undefined;
    }
    this.logger.info(
      { peer: link.peer, remote: connection.remote, dialledBy: connection.dialledBy },
      "Raft peer connected",
    );
    this.options.onPeerUp?.(link.peer);
  }

  private closed(connection: Connection): void {
    this.sockets.delete(connection.socket);
    this.establishedConnections.delete(connection);
    if (this.stopped || connection.peer === undefined) return;
    const link = this.links.get(connection.peer);
    if (link === undefined || link.closed) return;
    if (link.dialling === connection) {
      // A dial that never got through its handshake.
      link.dialling = undefined;
      if (link.active !== undefined) return;
      if (link.attempts === 0) this.options.onPeerDown?.(link.peer);
      this.redialLater(link);
      return;
    }
    if (link.active !== connection) return;
    link.active = undefined;
    this.logger.info({ peer: link.peer, remote: connection.remote }, "Raft peer disconnected; redialling");
    this.options.onPeerDown?.(link.peer);
    this.redialLater(link);
  }

  private redialLater(link: PeerLink): void {
    if (this.stopped || link.closed || link.timer !== undefined) return;
    const min = this.options.reconnectMinMs ?? 100;
    const max = this.options.reconnectMaxMs ?? 5_000;
    const delay = Math.min(max, min * 2 ** link.attempts) * (0.5 + Math.random() / 2);
    link.attempts++;
    link.timer = setTimeout(() => {
      link.timer = undefined;
      this.dial(link);
    }, delay);
    link.timer.unref();
  }

  private closeLink(link: PeerLink): void {
    link.closed = true;
    if (link.timer !== undefined) clearTimeout(link.timer);
    link.timer = undefined;
    link.dialling?.socket.destroy();
    link.dialling = undefined;
    link.active?.socket.destroy();
    link.active = undefined;
    for (const connection of [...this.establishedConnections]) {
      if (connection.peer === link.peer) connection.socket.destroy();
    }
  }

  /** One line per distinct problem, not one per reconnect attempt. */
  private warn(link: PeerLink, message: string): void {
    if (message === link.lastWarning) return;
    link.lastWarning = message;
    this.logger.warn({ peer: link.peer }, message);
  }
}

function newLink(peer: NodeId, address: PeerAddress): PeerLink {
  return {
    peer,
    address: { host: address.host, port: address.port },
    active: undefined,
    dialling: undefined,
    attempts: 0,
    timer: undefined,
    closed: false,
    everUp: false,
    lastWarning: "",
  };
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
  clientIncarnation: Buffer,
): Buffer {
  return createHmac("sha256", secret)
    .update("raftka-hello\0")
    .update(clusterId)
    .update("\0")
    .update(serverNonce)
    .update(`\0${client}\0${server}\0`)
    .update(clientIncarnation)
    .digest();
}

function welcomeMac(
  secret: string,
  clusterId: string,
  clientNonce: Buffer,
  server: NodeId,
  client: NodeId,
  serverIncarnation: Buffer,
): Buffer {
  return createHmac("sha256", secret)
    .update("raftka-welcome\0")
    .update(clusterId)
    .update("\0")
    .update(clientNonce)
    .update(`\0${server}\0${client}\0`)
    .update(serverIncarnation)
    .digest();
}
