/**
 * Admin requests carry `timeoutMs`: how long the client waits for the change. Kafka answers
 * REQUEST_TIMED_OUT when its controller has not finished within it, and the change goes on. Without
 * this, a client asking for thousands of partitions timed out on its own side (librdkafka `_TIMED_OUT`,
 * the Java AdminClient at request.timeout.ms) and never learned that the change happened.
 */
export type Deadline<T> = { finished: true; value: T } | { finished: false };

/**
 * Resolves with the operation's value, or with `finished: false` once `timeoutMs` has passed first. A
 * timeout of 0 or less waits for the operation (Kafka's clients send 0 for "do not wait"; waiting keeps
 * the promise that a topic accepts produce once CreateTopics answers). An operation that fails after the
 * deadline is reported through `onLateFailure`, since nobody awaits it any more.
 */
export async function withinDeadline<T>(
  operation: Promise<T>,
  timeoutMs: number,
  onLateFailure: (error: unknown) => void,
): Promise<Deadline<T>> {
  if (!(timeoutMs > 0)) return { finished: true, value: await operation };
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<Deadline<T>>((resolve) => {
    timer = setTimeout(() => resolve({ finished: false }), timeoutMs);
  });
  try {
    const outcome = await Promise.race([
      operation.then((value): Deadline<T> => ({ finished: true, value })),
      expired,
    ]);
    if (!outcome.finished) operation.catch(onLateFailure);
    return outcome;
  } finally {
    clearTimeout(timer);
  }
}

/** The message of a REQUEST_TIMED_OUT answer for a change that goes on after it. */
export function stillRunningMessage(what: string, timeoutMs: number, howToCheck: string): string {
  return `${what} did not finish within the request's timeout of ${timeoutMs} ms and goes on in the background; ${howToCheck}`;
}
