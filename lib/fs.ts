/**
 * Small file helpers: atomic writes and hashing.
 *
 * @module
 */

/** Hex sha256 of a string's UTF-8 bytes. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Options of {@link atomicWriteFile}. */
export interface AtomicWriteOptions {
  /** File mode of the new file. Default 0o600. */
  mode?: number;
}

/**
 * Write `path` so that a crash leaves either the old or the new content:
 * write a temp file beside it, fsync it, rename it over, fsync the directory.
 */
export async function atomicWriteFile(
  path: string,
  text: string,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const file = await Deno.open(tmp, {
    write: true,
    create: true,
    truncate: true,
    mode: options.mode ?? 0o600,
  });
  try {
    const bytes = new TextEncoder().encode(text);
    let off = 0;
    while (off < bytes.length) off += await file.write(bytes.subarray(off));
    await file.syncData();
  } catch (e) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  file.close();
  try {
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await syncDir(path.slice(0, Math.max(path.lastIndexOf("/"), 1)));
}

async function syncDir(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // Not every platform can fsync a directory; the rename is still atomic.
  }
}
