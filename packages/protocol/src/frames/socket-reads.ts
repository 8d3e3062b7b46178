import type { Socket } from "node:net";

/** Where a socket's bytes go: `readBuffer()` names the buffer for the next read, `onRead(n)` takes them. */
export interface ReadTarget {
  readBuffer(): Buffer;
}

/** How a socket is being read: into the target's own buffers, or as 'data' chunks copied into them. */
export type SocketReadMode = "direct" | "chunks";

/**
 * Feeds `socket` into `target`: each read lands in the buffer `target.readBuffer()` names, and `onRead(n)`
 * is called with the bytes it got. The socket must be paused and not yet read (a server with
 * pauseOnConnect); resume it when ready.
 *
 * For a socket a program connects, net.Socket's documented `onread` option reads into buffers the program
 * chooses. Node offers no such option for the sockets a server accepts, so on those this sets the same
 * three per-socket fields (lib/net.js: kBuffer, kBufferCb, kBufferGen) that the option sets. Where this
 * Node does not have them, the socket is read in 'data' chunks that are copied into the target's buffers:
 * the same bytes, one copy more (`prefer` "chunks" asks for that mode). pause() and resume() work in both
 * modes (lib/net.js handles both).
 */
export function feedSocket(
  socket: Socket,
  target: ReadTarget,
  onRead: (length: number) => void,
  prefer: SocketReadMode = "direct",
): SocketReadMode {
  const mode = prefer === "direct" && readIntoTargetBuffers(socket, target, onRead) ? "direct" : "chunks";
  if (mode === "chunks") {
    socket.on("data", (chunk: Buffer) => {
      for (let offset = 0; offset < chunk.length && !socket.destroyed; ) {
        const length = chunk.copy(target.readBuffer(), 0, offset);
        offset += length;
        onRead(length);
      }
    });
  }
  return mode;
}

function readIntoTargetBuffers(
  socket: Socket,
  target: ReadTarget,
  onRead: (length: number) => void,
): boolean {
  const fields = new Map<string, symbol>();
  for (const symbol of Object.getOwnPropertySymbols(socket)) {
    if (symbol.description !== undefined) fields.set(symbol.description, symbol);
  }
  const buffer = fields.get("kBuffer");
  const callback = fields.get("kBufferCb");
  const generator = fields.get("kBufferGen");
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (buffer: Buffer) => void } })._handle;
  const state = socket as unknown as Record<symbol, unknown>;
  if (
    buffer === undefined ||
    callback === undefined ||
    generator === undefined ||
    state[buffer] !== null ||
    state[generator] !== null ||
    typeof handle?.useUserBuffer !== "function"
  ) {
    return false;
  }
  const first = target.readBuffer();
  state[generator] = () => target.readBuffer();
  state[callback] = (length: number) => {
    onRead(length);
  };
  state[buffer] = first;
  handle.useUserBuffer(first);
  return true;
}
