/**
 * Thrown for any malformed, truncated or hostile input. A broker that sees this closes only the
 * connection the bytes came from; nothing else is affected.
 */
export class ProtocolDecodeError extends Error {
  override readonly name: string = "ProtocolDecodeError";
  /** Byte position in the decoded buffer where the problem was found. */
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(message);
    this.offset = offset;
  }
}

/**
 * Thrown when a value cannot be written at the requested version (for example null in a field that
 * is not nullable in that version). This is a programming error on the encoding side, never caused
 * by bytes from the network.
 */
export class ProtocolEncodeError extends Error {
  override readonly name: string = "ProtocolEncodeError";
}
