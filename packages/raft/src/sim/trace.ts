import type { Message } from "../core/types.js";

/** One line per message, compact enough to read a few hundred of them in a failure report. */
export function describeMessage(message: Message): string {
  const head = `${message.type} g${message.group} ${message.from}->${message.to} t${message.term}`;
  switch (message.type) {
    case "preVote":
    case "vote":
      return `${head} last ${message.lastOffset}/${message.lastTerm}${message.type === "vote" && message.transfer ? " transfer" : ""}`;
    case "preVoteResponse":
    case "voteResponse":
      return `${head} ${message.reject ? "reject" : "grant"}`;
    case "append": {
      const entries = message.entries.map(
        (entry) =>
          `${entry.kind === "data" ? "" : entry.kind}${entry.firstOffset}-${entry.lastOffset}@${entry.term}`,
      );
      return `${head} prev ${message.prevOffset}/${message.prevTerm} [${entries.join(" ")}] commit ${message.commit}`;
    }
    case "appendResponse":
      return message.reject
        ? `${head} reject ${message.rejectedOffset} hint ${message.hintOffset}/${message.hintTerm}`
        : `${head} match ${message.matchOffset}`;
    case "heartbeat":
      return `${head} commit ${message.commit} round ${message.round}${message.quiesce ? " quiesce" : ""}`;
    case "heartbeatResponse":
      return `${head} round ${message.round}`;
    case "snapshot":
      return `${head} snapshot ${message.meta.offset}/${message.meta.term} bytes ${message.position}+${message.data.byteLength}/${message.totalBytes}`;
    case "snapshotResponse":
      return `${head} snapshot ${message.snapshotOffset}/${message.snapshotTerm} next ${message.nextPosition} match ${message.matchOffset}`;
    case "readIndex":
      return `${head} context ${message.context}`;
    case "readIndexResponse":
      return `${head} context ${message.context} index ${message.index}`;
    case "timeoutNow":
    case "wake":
      return head;
  }
}
