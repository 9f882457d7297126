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
