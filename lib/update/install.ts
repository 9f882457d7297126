/**
 * Self-update of a compiled gw binary: read the release feed, download this
 * platform's asset, check its SHA-256, swap it in beside the running binary,
 * and ask for a restart.
 *
 * The swap, on a POSIX system:
 * 1. the download is streamed into `<exe>.new` in the same directory (so the
 *    final rename stays on one file system), hashed on the way;
 * 2. a checksum that differs from the feed's deletes `<exe>.new`: nothing
 *    else was touched;
 * 3. `<exe>.new` gets mode 0755 and must answer `version --json` with the
 *    feed's version (a binary for another CPU, or a broken one, is refused);
 * 4. `<exe>.old` becomes a hard link to (or a copy of) the current binary,
 *    kept for rollback (`mv <exe>.old <exe>`);
 * 5. `<exe>.new` is renamed over `<exe>`: one atomic step, so `<exe>` is at
 *    every moment either the whole old binary or the whole new one;
 * 6. the restart callback runs (the gateway tells clients `shutdown` with
 *    `restartExpectedMs`, then `gw start` exits with code 75 so that its
 *    supervisor starts the new binary).
 *
 * On Windows a running .exe cannot be replaced but can be renamed, so step 4
 * renames `<exe>` to `<exe>.old` and step 5 moves `<exe>.new` in (moved back
 * if that fails); step 3's test run is skipped there.
 *
 * It refuses to run from `deno run` (see {@link isDenoRuntime}): the binary
 * would be Deno itself.
 *
 * @module
 */
import { readCapped } from "../bytes.ts";
import { checkUpdateUrl, compareVersions, FeedError, feedUrlFor, parseFeed } from "./feed.ts";

/** Largest feed document read. */
const MAX_FEED_BYTES = 1024 * 1024;
/** Largest binary downloaded. */
const MAX_ASSET_BYTES = 512 * 1024 * 1024;
/** Redirects followed per request. */
const MAX_REDIRECTS = 5;
/** How long the new binary has to answer `version --json`. */
const VERIFY_TIMEOUT_MS = 15_000;
/** How long the gateway expects to be away for a restart (announced in `shutdown`). */
export const RESTART_EXPECTED_MS = 3_000;

/** Why an update did not happen (`reason` of a report that is not `ok`). */
export type UpdateReason =
  | "up-to-date"
  | "not-compiled"
  | "bad-url"
  | "feed-failed"
  | "no-asset"
  | "download-failed"
  | "checksum-mismatch"
  | "verify-failed"
  | "swap-failed";

/** One step of an update, for the report. */
export interface UpdateStep {
  /** What the step did. */
  name: string;
  /** How long it took. */
  durationMs: number;
  /** 0 when it worked, 1 when it failed. */
  exitCode: number;
}

/** What {@link runUpdate} did. */
export interface UpdateReport {
  /** `ok`: swapped and restart asked for; `skipped`: nothing to do; `error`: refused or failed. */
  status: "ok" | "skipped" | "error";
  /** Why it is not `ok`. */
  reason?: UpdateReason;
  /** One sentence for people. */
  message: string;
  /** The running version. */
  before: string;
  /** The feed's version, once read. */
  after?: string;
  /** The binary replaced and the copy kept for rollback, when swapped. */
  installed?: { path: string; previous: string; sha256: string; bytes: number };
  /** The steps taken. */
  steps: UpdateStep[];
  /** Total time. */
  durationMs: number;
  /** Whether the restart callback was called. */
  restartRequested: boolean;
}

/** Options of {@link runUpdate}. */
export interface UpdateOptions {
  /** The running binary (`Deno.execPath()` in gw); replaced in place. */
  execPath: string;
  /** The running version (`VERSION`). */
  currentVersion: string;
  /** This platform's target triple (`Deno.build.target`). */
  target: string;
  /** The feed's URL (https); `{channel}` in it is replaced by {@link channel}. */
  feedUrl: string;
  /** The release channel. Default `stable`. */
  channel?: string | undefined;
  /** The fetch to use. Default: the global fetch. */
  fetch?: typeof fetch;
  /** Also accept plain http to a loopback address (tests only). Default false. */
  allowHttpLoopback?: boolean;
  /** Deadline of the feed read and of the download, each. Default 10 minutes for the download, 30 s for the feed. */
  timeoutMs?: number | undefined;
  /** Run `<exe>.new version --json` before the swap. Default true (false on Windows). */
  verify?: boolean;
  /**
   * The exit: called once after a successful swap, with the time the restart
   * is expected to take. gw passes the gateway's restart request.
   */
  restart: (restartExpectedMs: number) => void;
}

/**
 * Whether `execPath` is the Deno runtime rather than a compiled gw: its file
 * name is `deno` (or `deno.exe`). Under `deno run`/`deno task`,
 * `Deno.execPath()` is the deno binary, and replacing it with gw would break
 * Deno, so update.run refuses then.
 */
export function isDenoRuntime(execPath: string): boolean {
  const base = execPath.split(/[\\/]/).pop() ?? "";
  return /^deno(\.exe)?$/i.test(base);
}

class StepError extends Error {
  readonly reason: UpdateReason;
  constructor(reason: UpdateReason, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/** GET `url`, following redirects only to URLs that pass {@link checkUpdateUrl}. */
async function fetchChecked(
  url: URL,
  opts: { fetch: typeof fetch; allowHttpLoopback: boolean; signal: AbortSignal },
): Promise<Response> {
  let at = url;
  for (let i = 0; i <= MAX_REDIRECTS; i++) {
    checkUpdateUrl(at, opts.allowHttpLoopback);
    const res = await opts.fetch(at, { redirect: "manual", signal: opts.signal });
    if (res.status >= 300 && res.status < 400 && res.headers.has("location")) {
      await res.body?.cancel();
      at = new URL(res.headers.get("location")!, at);
      continue;
    }
    return res;
  }
  throw new Error(`more than ${MAX_REDIRECTS} redirects`);
}

/** Read a body of at most `max` bytes as text. */
async function readTextCapped(res: Response, max: number): Promise<string> {
  return new TextDecoder().decode(await readCapped(res.body, max));
}

async function removeIfThere(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * Update the binary at `execPath` from the feed, as the module doc
 * describes. Never throws for a refused or failed update: the report says
 * what happened (`status`, `reason`, `message`), and on any failure the
 * binary at `execPath` is untouched and no `<exe>.new` is left behind.
 *
 * @example
 * ```ts
 * const report = await runUpdate({
 *   execPath: Deno.execPath(),
 *   currentVersion: "0.1.0",
 *   target: Deno.build.target,
 *   feedUrl: "https://example.com/gw/{channel}.json",
 *   restart: (ms) => console.log(`restart in ${ms} ms`),
 * });
 * ```
 */
export async function runUpdate(opts: UpdateOptions): Promise<UpdateReport> {
  const started = performance.now();
  const steps: UpdateStep[] = [];
  const report = (
    status: UpdateReport["status"],
    message: string,
    extra: Partial<UpdateReport> = {},
  ): UpdateReport => ({
    status,
    message,
    before: opts.currentVersion,
    steps,
    durationMs: Math.round(performance.now() - started),
    restartRequested: false,
    ...extra,
  });
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      const out = await fn();
      steps.push({ name, durationMs: Math.round(performance.now() - t0), exitCode: 0 });
      return out;
    } catch (e) {
      steps.push({ name, durationMs: Math.round(performance.now() - t0), exitCode: 1 });
      throw e;
    }
  };

  if (isDenoRuntime(opts.execPath)) {
    return report(
      "error",
      `update.run works only in a compiled gw binary; this gw runs from deno run (${opts.execPath}), ` +
        "so there is no gw binary to replace: update the source instead",
      { reason: "not-compiled" },
    );
  }
  const doFetch = opts.fetch ?? fetch;
  const allowHttpLoopback = opts.allowHttpLoopback ?? false;
  let feedUrl: URL;
  try {
    feedUrl = new URL(feedUrlFor(opts.feedUrl, opts.channel));
    checkUpdateUrl(feedUrl, allowHttpLoopback);
  } catch (e) {
    return report("error", (e as Error).message, { reason: "bad-url" });
  }

  let after: string | undefined;
  const newPath = `${opts.execPath}.new`;
  const oldPath = `${opts.execPath}.old`;
  try {
    const feed = await step("fetch feed", async () => {
      try {
        const res = await fetchChecked(feedUrl, {
          fetch: doFetch,
          allowHttpLoopback,
          signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
        });
        if (!res.ok) {
          await res.body?.cancel();
          throw new Error(`HTTP ${res.status}`);
        }
        return parseFeed(await readTextCapped(res, MAX_FEED_BYTES));
      } catch (e) {
        throw new StepError(
          "feed-failed",
          e instanceof FeedError
            ? e.message
            : `cannot read the release feed ${feedUrl.origin}${feedUrl.pathname}: ${
              (e as Error).message
            }`,
          { cause: e },
        );
      }
    });
    after = feed.version;
    let cmp: number;
    try {
      cmp = compareVersions(feed.version, opts.currentVersion);
    } catch (e) {
      throw new StepError("feed-failed", `cannot compare versions: ${(e as Error).message}`);
    }
    if (cmp <= 0) {
      return report(
        "skipped",
        cmp === 0
          ? `gw ${opts.currentVersion} is up to date`
          : `gw ${opts.currentVersion} is newer than the feed's ${feed.version}; not downgrading`,
        { reason: "up-to-date", after },
      );
    }
    const asset = feed.assets.find((a) => a.target === opts.target);
    if (!asset) {
      throw new StepError(
        "no-asset",
        `the release ${feed.version} has no binary for ${opts.target} (it has: ${
          feed.assets.map((a) => a.target).join(", ") || "none"
        })`,
      );
    }
    let assetUrl: URL;
    try {
      assetUrl = new URL(asset.url, feedUrl);
      checkUpdateUrl(assetUrl, allowHttpLoopback);
    } catch (e) {
      throw new StepError("bad-url", `the asset's URL: ${(e as Error).message}`);
    }

    const { sha256, bytes } = await step("download", async () => {
      let file: Deno.FsFile;
      try {
        await removeIfThere(newPath);
        file = await Deno.open(newPath, { write: true, createNew: true, mode: 0o755 });
      } catch (e) {
        throw new StepError(
          "swap-failed",
          `cannot write next to the binary (${newPath}): ${(e as Error).message}`,
          { cause: e },
        );
      }
      // node:crypto loads Node compat (megabytes): only when something is downloaded.
      const { createHash } = await import("node:crypto");
      const hash = createHash("sha256");
      let n = 0;
      try {
        const res = await fetchChecked(assetUrl, {
          fetch: doFetch,
          allowHttpLoopback,
          signal: AbortSignal.timeout(opts.timeoutMs ?? 600_000),
        });
        if (!res.ok) {
          await res.body?.cancel();
          throw new Error(`HTTP ${res.status}`);
        }
        for await (const chunk of res.body ?? new ReadableStream<Uint8Array>()) {
          n += chunk.length;
          if (n > MAX_ASSET_BYTES) throw new Error(`larger than ${MAX_ASSET_BYTES} bytes`);
          hash.update(chunk);
          for (let off = 0; off < chunk.length;) off += await file.write(chunk.subarray(off));
        }
        await file.sync();
      } catch (e) {
        throw new StepError(
          "download-failed",
          `cannot download ${assetUrl.origin}${assetUrl.pathname}: ${(e as Error).message}`,
          { cause: e },
        );
      } finally {
        file.close();
      }
      return { sha256: hash.digest("hex"), bytes: n };
    });

    await step("verify checksum", () => {
      if (sha256 !== asset.sha256) {
        throw new StepError(
          "checksum-mismatch",
          `the download's SHA-256 is ${sha256}, the feed says ${asset.sha256}: refused, nothing replaced`,
        );
      }
      if (asset.size !== undefined && asset.size !== bytes) {
        throw new StepError(
          "checksum-mismatch",
          `the download has ${bytes} bytes, the feed says ${asset.size}: refused, nothing replaced`,
        );
      }
      return Promise.resolve();
    });

    const windows = Deno.build.os === "windows";
    if (!windows) await Deno.chmod(newPath, 0o755);
    if (opts.verify ?? !windows) {
      await step("run new binary", async () => {
        let out: Deno.CommandOutput;
        try {
          out = await new Deno.Command(newPath, {
            args: ["version", "--json"],
            stdin: "null",
            stdout: "piped",
            stderr: "null",
            signal: AbortSignal.timeout(VERIFY_TIMEOUT_MS),
          }).output();
        } catch (e) {
          throw new StepError(
            "verify-failed",
            `the new binary does not run here: ${(e as Error).message}`,
          );
        }
        let reported: unknown;
        try {
          reported = JSON.parse(new TextDecoder().decode(out.stdout)).version;
        } catch { /* reported stays undefined */ }
        if (!out.success || reported !== feed.version.replace(/^v/, "")) {
          throw new StepError(
            "verify-failed",
            `the new binary answered 'version --json' with ${
              reported === undefined ? `exit code ${out.code}` : `version ${String(reported)}`
            }, not ${feed.version}: refused, nothing replaced`,
          );
        }
      });
    }

    await step("swap", async () => {
      try {
        await removeIfThere(oldPath);
        if (windows) {
          await Deno.rename(opts.execPath, oldPath);
          try {
            await Deno.rename(newPath, opts.execPath);
          } catch (e) {
            await Deno.rename(oldPath, opts.execPath);
            throw e;
          }
        } else {
          try {
            await Deno.link(opts.execPath, oldPath);
          } catch {
            await Deno.copyFile(opts.execPath, oldPath);
          }
          await Deno.rename(newPath, opts.execPath);
        }
      } catch (e) {
        throw new StepError(
          "swap-failed",
          `cannot replace ${opts.execPath}: ${(e as Error).message}`,
        );
      }
    });

    const installed = { path: opts.execPath, previous: oldPath, sha256, bytes };
    try {
      opts.restart(RESTART_EXPECTED_MS);
    } catch (e) {
      return report(
        "ok",
        `gw ${feed.version} installed over ${opts.currentVersion}, but the restart failed ` +
          `(${(e as Error).message}): restart gw to run it`,
        { after, installed },
      );
    }
    return report(
      "ok",
      `gw ${feed.version} installed over ${opts.currentVersion}; restarting (the previous binary is ${oldPath})`,
      { after, installed, restartRequested: true },
    );
  } catch (e) {
    await removeIfThere(newPath).catch(() => {});
    if (e instanceof StepError) {
      return report("error", e.message, { reason: e.reason, ...(after ? { after } : {}) });
    }
    return report("error", `update failed: ${(e as Error).message}`, {
      reason: "swap-failed",
      ...(after ? { after } : {}),
    });
  }
}
