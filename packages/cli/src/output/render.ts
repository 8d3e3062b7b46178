/** How a command prints its result: aligned columns for people, JSON for scripts. */
export type OutputFormat = "table" | "json";
export const outputFormats: readonly OutputFormat[] = ["table", "json"];

export type Cell = string | number | bigint | boolean | null | undefined;

function cellText(cell: Cell): string {
  if (cell === null || cell === undefined) return "-";
  return String(cell);
}

/**
 * Columns separated by two spaces, headers in upper case, like rpk and kubectl: easy to read and
 * still easy to `awk`. The last column is not padded, so long values do not leave trailing blanks.
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const texts = rows.map((row) => headers.map((_, index) => cellText(row[index])));
  const widths = headers.map((header, index) =>
    Math.max(header.length, ...texts.map((row) => row[index]!.length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, index) => (index === cells.length - 1 ? cell : cell.padEnd(widths[index]!)))
      .join("  ")
      .trimEnd();
  return [line(headers.map((header) => header.toUpperCase())), ...texts.map(line)].join("\n");
}

/** `NAME   value` lines for one object's fields. */
export function renderFields(fields: readonly (readonly [string, Cell])[]): string {
  const width = Math.max(0, ...fields.map(([name]) => name.length));
  return fields.map(([name, value]) => `${name.padEnd(width)}  ${cellText(value)}`.trimEnd()).join("\n");
}

/** Titled sections separated by blank lines, skipping empty ones. */
export function renderSections(sections: readonly (readonly [title: string | null, body: string])[]): string {
  return sections
    .filter(([, body]) => body !== "")
    .map(([title, body]) => (title === null ? body : `${title}\n${body}`))
    .join("\n\n");
}

/**
 * JSON for scripts. Kafka offsets are 64-bit: they become plain numbers while exact (every real
 * offset), and strings beyond 2^53 so no script ever reads a silently rounded value.
 */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(
    value,
    (_key, item) => {
      if (typeof item === "bigint") {
        return item <= BigInt(Number.MAX_SAFE_INTEGER) && item >= BigInt(Number.MIN_SAFE_INTEGER)
          ? Number(item)
          : item.toString();
      }
      if (Buffer.isBuffer(item)) return item.toString("base64");
      return item;
    },
    indent,
  );
}
