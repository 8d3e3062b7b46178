/**
 * A broken Raft invariant means the group's state can no longer be trusted; continuing would risk
 * acknowledging or serving data that another replica disagrees with. Assertions therefore stay on in
 * production and stop the group loudly.
 */
export class RaftInvariantError extends Error {
  override name = "RaftInvariantError";
}

export function assert(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) {
    const text = typeof message === "function" ? message() : message;
    throw new RaftInvariantError(
      `Raft invariant violated: ${text}. This is a bug in @raftka/raft; stop the node and report it with the log above.`,
    );
  }
}
