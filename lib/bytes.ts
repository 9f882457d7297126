/**
 * Reading bodies and streams with a size cap: a peer that sends more than it
 * may is cut off (the stream cancelled) instead of filling memory.
 *
 * @module
 */

/** A stream went past its cap. */
export class TooLargeError extends Error {
  /** The cap, in bytes. */
  readonly maxBytes: number;
  /** Create one. */
  constructor(maxBytes: number) {
    super(`larger than ${maxBytes} bytes`);
    this.name = "TooLargeError";
    this.maxBytes = maxBytes;
  }
}

/**
 * All bytes of `stream` (none when null), at most `maxBytes`; past that the
 * stream is cancelled and {@link TooLargeError} thrown. `onChunk` sees each
 * chunk as it comes (to hash it on the way).
 *
 * @example
 * ```ts
 * const res = await fetch("https://example.com/");
 * const bytes = await readCapped(res.body, 1024 * 1024);
 * ```
 */
export async function readCapped(
  stream: ReadableStream<Uint8Array> | null,
  maxBytes: number,
  onChunk?: (chunk: Uint8Array) => void,
): Promise<Uint8Array> {
  if (!stream) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new TooLargeError(maxBytes);
    }
    onChunk?.(value);
    chunks.push(value);
  }
  return concatBytes(chunks, total);
}

/** One array of all `chunks`. */
export function concatBytes(chunks: readonly Uint8Array[], total?: number): Uint8Array {
  const out = new Uint8Array(total ?? chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
