/**
 * The Control UI's static files (`ui/`), served by hono on the gateway's own
 * port. hono and the file reads load on the first UI request: a gateway that
 * never serves the page does not pay for them.
 *
 * Only an allowlist of paths is served (no directory listing, no traversal):
 * `/` (for a browser: the request accepts `text/html`; other clients keep the
 * gateway's JSON answer), `/app.js`, `/style.css`, `/gw-client.js`,
 * `/favicon.svg`, `/lib/<name>.js`, `/pages/<name>.js`, `/vendor/<name>.js`.
 * Every answer carries a strict CSP (no inline script or style; sockets only
 * to this host), `X-Frame-Options: DENY`, `nosniff` and `no-referrer`;
 * files are revalidated on each load (`no-cache` + ETag).
 *
 * @module
 */

/** The folder the files come from; works from a `deno compile --include ui/` binary too. */
export const UI_ROOT: URL = new URL("../../ui/", import.meta.url);

const TOP_FILES: Record<string, string> = {
  "/": "index.html",
  "/app.js": "app.js",
  "/style.css": "style.css",
  "/gw-client.js": "gw-client.js",
  "/favicon.svg": "favicon.svg",
};

/** `/lib/x.js`, `/pages/x.js`, `/vendor/x.js`: one level, a plain file name. */
const NESTED = /^\/(lib|pages|vendor)\/([a-z0-9][a-z0-9_-]{0,63})\.js$/;

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
};

/** A Host header that is safe to put into the CSP (name or IP, optional port). */
const SAFE_HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/** The file under `ui/` a request path maps to, or null when the path is not a UI file. */
export function uiFile(pathname: string): string | null {
  const top = TOP_FILES[pathname];
  if (top) return top;
  const m = NESTED.exec(pathname);
  return m ? `${m[1]}/${m[2]}.js` : null;
}

/**
 * Whether the gateway should answer this request with a UI file: GET or HEAD
 * of an allowlisted path, and for `/` only a browser's (it accepts HTML).
 */
export function isUiRequest(req: Request, url: URL): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  if (url.pathname === "/") return (req.headers.get("accept") ?? "").includes("text/html");
  return uiFile(url.pathname) !== null;
}

/** The security headers of every UI answer, for the request's `Host`. */
export function uiSecurityHeaders(host: string | null): Record<string, string> {
  const sockets = host && SAFE_HOST.test(host) ? ` ws://${host} wss://${host}` : "";
  return {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; " +
      `img-src 'self' data:; connect-src 'self'${sockets}; font-src 'self'; ` +
      "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  };
}

type Fetch = (req: Request) => Response | Promise<Response>;
let app: Promise<Fetch> | undefined;

/** Build the hono app (on first use). */
async function _build(root: URL): Promise<Fetch> {
  const [{ Hono }, { etag }] = await Promise.all([import("hono"), import("hono/etag")]);
  const hono = new Hono();
  // Outermost: the headers go on every answer, 304 and 404 included.
  hono.use("*", async (c, next) => {
    await next();
    for (const [k, v] of Object.entries(uiSecurityHeaders(c.req.header("host") ?? null))) {
      c.res.headers.set(k, v);
    }
  });
  hono.use("*", etag());
  hono.get("*", async (c) => {
    const file = uiFile(c.req.path);
    if (!file) return c.text("not found", 404);
    let body: Uint8Array;
    try {
      body = await Deno.readFile(new URL(file, root));
    } catch {
      return c.text("not found", 404);
    }
    const ext = file.slice(file.lastIndexOf(".") + 1);
    return c.body(body as Uint8Array<ArrayBuffer>, 200, {
      "content-type": TYPES[ext] ?? "application/octet-stream",
      "cache-control": "no-cache",
    });
  });
  return (req) => hono.fetch(req);
}

/**
 * Answer a UI request (see {@link isUiRequest}); loads hono on the first call.
 *
 * @example
 * ```ts ignore
 * if (isUiRequest(req, url)) return serveUi(req);
 * ```
 */
export async function serveUi(req: Request, root: URL = UI_ROOT): Promise<Response> {
  const fetch = root === UI_ROOT
    ? (app ??= _build(root).catch((e) => {
      app = undefined;
      throw e;
    }))
    : _build(root);
  return await (await fetch)(req);
}
