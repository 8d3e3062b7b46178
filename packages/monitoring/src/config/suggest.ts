import { closest, distance } from "fastest-levenshtein";

/** The closest known name, if it is close enough to be a plausible typo of `name`; compares without case. */
export function closestName(name: string, known: readonly string[]): string | undefined {
  if (known.length === 0) return undefined;
  const byLowerCase = new Map(known.map((candidate) => [candidate.toLowerCase(), candidate]));
  const lower = name.toLowerCase();
  const candidate = closest(lower, [...byLowerCase.keys()]);
  const allowedEdits = Math.max(2, Math.floor(candidate.length / 4));
  return distance(lower, candidate) <= allowedEdits ? byLowerCase.get(candidate) : undefined;
}

/** "unknown setting; did you mean log.segment.bytes? <where to look>". */
export function unknownNameMessage(
  name: string,
  known: readonly string[],
  what: string,
  whereListed: string,
): string {
  const suggestion = closestName(name, known);
  return `unknown ${what}; ${suggestion ? `did you mean ${suggestion}? ` : ""}${whereListed}`;
}

export function unknownKeyMessage(name: string, known: readonly string[]): string {
  return unknownNameMessage(name, known, "setting", "docs/configuration.md lists every setting");
}
