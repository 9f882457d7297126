/**
 * Deno KV on one SQLite file: while another process (or handle) writes, a
 * write can fail with "database is locked". These retry it with backoff.
 *
 * @module
 */

/** How often a write is retried while another process holds the KV file's write lock. */
export const BUSY_RETRIES = 20;

/** SQLite's "database is locked": another process (or handle) is writing the same file. */
export function isBusy(e: unknown): boolean {
  return e instanceof Error && /database is locked|SQLITE_BUSY/i.test(e.message);
}

/** Sleep before retry `attempt`: exponential from 5 ms, at most 200 ms, jittered. */
export function busyWait(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.min(200, 5 * 2 ** attempt) * (0.5 + Math.random())));
}

/** Run a KV write, retrying with backoff while the file is locked by another writer. */
export async function busyRetry<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0;; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!isBusy(e) || attempt >= BUSY_RETRIES) throw e;
      await busyWait(attempt);
    }
  }
}
