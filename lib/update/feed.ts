/**
 * The release feed `update.run` reads, and the rules for trusting it.
 *
 * The feed is one JSON document at `update.feedUrl` (https):
 * ```json
 * {
 *   "version": "0.2.0",
 *   "notes": "optional, shown to nobody but kept in the report",
 *   "assets": [
 *     { "target": "x86_64-unknown-linux-gnu", "url": "gw-x86_64-unknown-linux-gnu",
 *       "sha256": "<64 hex digits>", "size": 81234567 }
 *   ]
 * }
 * ```
 * `target` is a Rust target triple as `Deno.build.target` reports it (the
 * names compile.sh builds); `url` may be relative to the feed's URL; `size`
 * is optional. Unknown fields are ignored, so the feed can grow.
 *
 * @module
 */
import { z } from "zod";

/** A semantic version (`1.2.3`, `1.2.3-beta.1`, an optional leading `v`, build metadata ignored). */
const SEMVER =
  /^v?(\d{1,9})\.(\d{1,9})\.(\d{1,9})(?:-([0-9A-Za-z.-]{1,64}))?(?:\+[0-9A-Za-z.-]{1,64})?$/;

/** One downloadable binary of a release. */
export interface ReleaseAsset {
  /** Target triple, e.g. `x86_64-unknown-linux-gnu`. */
  target: string;
  /** Where to download it (absolute, or relative to the feed's URL). */
  url: string;
  /** Lower-case hex SHA-256 of the file. */
  sha256: string;
  /** Size in bytes, when the feed says. */
  size?: number | undefined;
}

/** The feed document. */
export interface ReleaseFeed {
  /** The release's version. */
  version: string;
  /** Free text about the release. */
  notes?: string | undefined;
  /** One binary per target. */
  assets: ReleaseAsset[];
}

/** The feed's schema: what {@link parseFeed} accepts. */
export const releaseFeedSchema: z.ZodType<ReleaseFeed> = z.object({
  version: z.string().regex(SEMVER, "expected a version such as 1.2.3"),
  notes: z.string().max(10_000).optional(),
  assets: z.array(z.object({
    target: z.string().min(1).max(64),
    url: z.string().min(1).max(4096),
    sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "expected 64 hex digits")
      .transform((s) => s.toLowerCase()),
    size: z.int().positive().optional(),
  })).max(64),
});

/** The feed did not parse, or broke a rule; `message` says which field. */
export class FeedError extends Error {
  /** Create the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FeedError";
  }
}

/**
 * Parse feed JSON text; throws a {@link FeedError} naming the bad field.
 *
 * @example
 * ```ts
 * const feed = parseFeed('{"version":"1.0.0","assets":[]}');
 * ```
 */
export function parseFeed(text: string): ReleaseFeed {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FeedError(`the release feed is not JSON: ${(e as Error).message}`);
  }
  const r = releaseFeedSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const at = issue.path.length ? `feed.${issue.path.join(".")}` : "feed";
    throw new FeedError(`the release feed is invalid: ${at}: ${issue.message}`);
  }
  return r.data;
}

function parts(v: string): [number, number, number, string[]] {
  const m = SEMVER.exec(v.trim());
  if (!m) throw new FeedError(`not a version: ${JSON.stringify(v.slice(0, 80))}`);
  return [Number(m[1]), Number(m[2]), Number(m[3]), m[4] ? m[4].split(".") : []];
}

/**
 * Compare two versions by semantic-versioning precedence: negative when `a`
 * is older, 0 when equal, positive when newer. A pre-release is older than
 * its release (`1.0.0-beta < 1.0.0`). Throws a {@link FeedError} for a string
 * that is not a version.
 *
 * @example
 * ```ts
 * compareVersions("0.1.0", "0.2.0"); // < 0
 * ```
 */
export function compareVersions(a: string, b: string): number {
  const [a1, a2, a3, ap] = parts(a);
  const [b1, b2, b3, bp] = parts(b);
  if (a1 !== b1) return a1 - b1;
  if (a2 !== b2) return a2 - b2;
  if (a3 !== b3) return a3 - b3;
  if (ap.length === 0 || bp.length === 0) return bp.length - ap.length;
  for (let i = 0; i < Math.max(ap.length, bp.length); i++) {
    const x = ap[i];
    const y = bp[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const xn = /^\d+$/.test(x);
    const yn = /^\d+$/.test(y);
    if (xn && yn && Number(x) !== Number(y)) return Number(x) - Number(y);
    if (xn !== yn) return xn ? -1 : 1;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Whether `host` (a URL's hostname) is a loopback address. */
function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Refuse a URL gw must not fetch an update from: anything but https, except
 * plain http to a loopback address when `allowHttpLoopback` is set (tests
 * serve their feed that way; the config cannot turn it on). Throws a
 * {@link FeedError}.
 */
export function checkUpdateUrl(url: URL, allowHttpLoopback = false): void {
  if (url.protocol === "https:") return;
  if (url.protocol === "http:" && allowHttpLoopback && isLoopbackHost(url.hostname)) return;
  throw new FeedError(
    `refusing to fetch an update over ${
      url.protocol.replace(/:$/, "")
    }: ${url.origin} (https only)`,
  );
}

/** The feed URL for a channel: `{channel}` in `feedUrl` is replaced by it. */
export function feedUrlFor(feedUrl: string, channel: string | undefined): string {
  return feedUrl.replaceAll("{channel}", encodeURIComponent(channel ?? "stable"));
}
