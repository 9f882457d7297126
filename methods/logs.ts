/**
 * `logs.tail`: read gw's own JSON-lines log by byte cursor.
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import type { LogsTailResult } from "../lib/protocol/types.ts";

const decoder = new TextDecoder();

async function readRange(file: string, start: number, end: number): Promise<Uint8Array> {
  const f = await Deno.open(file, { read: true });
  try {
    await f.seek(start, Deno.SeekMode.Start);
    const buf = new Uint8Array(end - start);
    let off = 0;
    while (off < buf.length) {
      const n = await f.read(buf.subarray(off));
      if (n === null) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    f.close();
  }
}

/**
 * Read log lines. Without a cursor: the last `limit` lines within the last
 * `maxBytes`. With a cursor (a byte offset from an earlier call): the
 * complete lines after it. A cursor past the end means the log rotated:
 * `reset` is true and the tail is returned.
 */
export async function tailLog(
  file: string,
  opts: { cursor?: number | undefined; limit: number; maxBytes: number },
): Promise<LogsTailResult> {
  let size = 0;
  try {
    size = (await Deno.stat(file)).size;
  } catch {
    return { file, cursor: 0, size: 0, lines: [], truncated: false, reset: false };
  }
  const reset = opts.cursor !== undefined && opts.cursor > size;
  if (opts.cursor === undefined || reset) {
    const start = Math.max(0, size - opts.maxBytes);
    let text = decoder.decode(await readRange(file, start, size));
    if (start > 0) text = text.slice(text.indexOf("\n") + 1);
    const all = text.split("\n").filter(Boolean);
    const lines = all.slice(-opts.limit);
    return {
      file,
      cursor: size,
      size,
      lines,
      truncated: start > 0 || all.length > lines.length,
      reset,
    };
  }
  const end = Math.min(size, opts.cursor + opts.maxBytes);
  const bytes = await readRange(file, opts.cursor, end);
  const lastNl = bytes.lastIndexOf(10);
  if (lastNl < 0) {
    return { file, cursor: opts.cursor, size, lines: [], truncated: end < size, reset };
  }
  const complete = bytes.subarray(0, lastNl + 1);
  const parts = decoder.decode(complete).split("\n");
  parts.pop();
  let cursor = opts.cursor + complete.length;
  let lines = parts;
  if (parts.length > opts.limit) {
    lines = parts.slice(0, opts.limit);
    cursor = opts.cursor + new TextEncoder().encode(lines.join("\n") + "\n").length;
  }
  return { file, cursor, size, lines, truncated: cursor < size, reset };
}

/** `logs.tail`. */
export const logsTail = defineMethod({
  name: "logs.tail",
  scope: "read",
  summary: "Read gw's log: the tail, or the lines after a cursor.",
  params: z.strictObject({
    cursor: z.int().min(0).optional(),
    limit: z.int().min(1).max(5000).default(500),
    maxBytes: z.int().min(1).max(1_000_000).default(250_000),
  }),
  handler: (p, ctx): Promise<LogsTailResult> =>
    tailLog(ctx.log.file ?? `${ctx.stateDir}/logs/gw.log`, p),
});
