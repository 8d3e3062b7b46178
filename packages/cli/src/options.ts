import { UsageError } from "./errors.js";

/** An integer option within bounds, or a usage error naming the option and the allowed range. */
export function parseIntegerOption(
  text: string,
  option: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const value = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    const range =
      max === Number.MAX_SAFE_INTEGER
        ? `a whole number of at least ${min}`
        : `a whole number from ${min} to ${max}`;
    throw new UsageError(`${option} "${text}" is not valid; use ${range}`);
  }
  return value;
}

/** `key=value` (the value may contain `=`); an empty key is a usage error, shown with `example`. */
export function parseKeyValue(
  text: string,
  option: string,
  example = "retention.ms=60000",
): [string, string] {
  const equals = text.indexOf("=");
  if (equals <= 0)
    throw new UsageError(`${option} "${text}" is not key=value; write it like ${option} ${example}`);
  return [text.slice(0, equals), text.slice(equals + 1)];
}

/** Collects a repeatable option's values (commander's argParser for `--config a=1 --config b=2`). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A list of partition numbers: `0,2,5` or repeated options. */
export function parsePartitionList(
  values: readonly string[] | undefined,
  option = "--partition",
): number[] | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const partitions = values
    .flatMap((value) => value.split(","))
    .map((item) => parseIntegerOption(item.trim(), option, 0, 2_147_483_647));
  return [...new Set(partitions)].sort((a, b) => a - b);
}
