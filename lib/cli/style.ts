/**
 * Terminal colours, off when stdout is not a terminal or NO_COLOR is set.
 *
 * @module
 */

let enabled: boolean | undefined;

function on(): boolean {
  if (enabled === undefined) {
    try {
      enabled = !Deno.env.get("NO_COLOR") && Deno.stdout.isTerminal();
    } catch {
      enabled = false;
    }
  }
  return enabled;
}

const wrap = (open: number, close: number) => (s: string): string =>
  on() ? `\x1b[${open}m${s}\x1b[${close}m` : s;

/** Bold text. */
export const bold: (s: string) => string = wrap(1, 22);
/** Dim text. */
export const dim: (s: string) => string = wrap(2, 22);
/** Red text. */
export const red: (s: string) => string = wrap(31, 39);
/** Green text. */
export const green: (s: string) => string = wrap(32, 39);
/** Yellow text. */
export const yellow: (s: string) => string = wrap(33, 39);

/** Options of {@link table}. */
export interface TableOptions {
  /** Right-aligned columns. */
  right?: ReadonlySet<number>;
  /** Colour a padded body cell (colour codes do not disturb the widths). */
  paint?: (row: number, col: number, cell: string) => string;
}

/** Columns padded to their widest cell, the head in bold. */
export function table(head: string[], rows: string[][], opts: TableOptions = {}): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[], row: number) =>
    cells.map((c, i) => {
      const padded = opts.right?.has(i)
        ? c.padStart(widths[i]!)
        : i === cells.length - 1
        ? c
        : c.padEnd(widths[i]!);
      return row < 0 || !opts.paint ? padded : opts.paint(row, i, padded);
    }).join("  ").trimEnd();
  return [bold(line(head, -1)), ...rows.map(line)].join("\n");
}
