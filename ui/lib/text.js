/**
 * Text from the gateway made safe to show a person: control, format and
 * invisible characters (bidi overrides, zero-width, Hangul fillers) become
 * visible escapes, so what is shown is what is there.
 */

/**
 * Escape characters a person cannot see or that reorder text (controls,
 * format characters such as zero-width and bidi marks, line/paragraph
 * separators) as `\u{…}`, so a string shows exactly what it holds.
 * @param {unknown} v
 * @returns {string}
 */
export function visible(v) {
  return String(v ?? "").replace(
    /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u115F\u1160\u3164\uFFA0]/gu,
    (c) => `\\u{${c.codePointAt(0)?.toString(16).toUpperCase()}}`,
  );
}

/**
 * A long id (a device's SHA-256) shortened for a person: its first 12
 * characters and an ellipsis; the whole id goes in a title.
 * @param {unknown} id
 * @returns {string}
 */
export function shortId(id) {
  const v = visible(id);
  return v.length > 16 ? `${v.slice(0, 12)}…` : v;
}
