/**
 * Who is on the other end: the client address (X-Forwarded-For only from
 * trusted proxies), whether it is direct loopback, and whether a browser
 * Origin may connect.
 *
 * @module
 */

/** Whether an address is IPv4 127/8, IPv6 ::1 or IPv4-mapped loopback. */
export function isLoopback(addr: string): boolean {
  const a = addr.replace(/^\[|\]$/g, "").toLowerCase();
  if (a === "::1" || a === "localhost") return true;
  const v4 = a.startsWith("::ffff:") ? a.slice(7) : a;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

const PROXY_HEADERS = ["x-forwarded-for", "x-real-ip", "forwarded", "x-forwarded-host"];

/** The peer as the gateway sees it. */
export interface PeerInfo {
  /** The client's address: the socket peer, or the forwarded one behind a trusted proxy. */
  ip: string;
  /** The socket peer address. */
  peer: string;
  /** True only for a loopback peer that sent no proxy headers. */
  directLoopback: boolean;
  /** Whether the request came through a trusted proxy. */
  proxied: boolean;
}

function normalize(addr: string): string {
  const a = addr.trim().replace(/^\[|\]$/g, "").toLowerCase();
  return a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
}

/**
 * Resolve the peer. Proxy headers count only when the socket peer is listed
 * in `trustedProxies`; from anyone else their presence only means "not local".
 */
export function resolvePeer(
  peerAddr: string,
  headers: Headers,
  trustedProxies: readonly string[],
): PeerInfo {
  const peer = normalize(peerAddr);
  const hasProxyHeaders = PROXY_HEADERS.some((h) => headers.has(h));
  if (!hasProxyHeaders) {
    return { ip: peer, peer, directLoopback: isLoopback(peer), proxied: false };
  }
  const trusted = new Set(trustedProxies.map(normalize));
  if (!trusted.has(peer)) return { ip: peer, peer, directLoopback: false, proxied: false };
  // Walk X-Forwarded-For from the right, skipping our own trusted proxies.
  const chain = (headers.get("x-forwarded-for") ?? headers.get("x-real-ip") ?? "")
    .split(",").map(normalize).filter(Boolean);
  let ip = peer;
  for (let i = chain.length - 1; i >= 0; i--) {
    ip = chain[i]!;
    if (!trusted.has(ip)) break;
  }
  return { ip, peer, directLoopback: false, proxied: true };
}

/**
 * Whether a browser `origin` may connect: listed in `allowed` (exact origins,
 * or `*` for any), or the same origin as the request's Host when that Host
 * is a loopback name or address. Any other host name must be listed: a page
 * whose name was re-pointed at 127.0.0.1 (DNS rebinding) sends a matching
 * Origin and Host, and must not pass as same-origin.
 */
export function originAllowed(
  origin: string,
  host: string | null,
  allowed: readonly string[],
): boolean {
  if (allowed.includes("*")) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (allowed.some((a) => a.replace(/\/$/, "").toLowerCase() === url.origin.toLowerCase())) {
    return true;
  }
  if (host === null || (url.protocol !== "http:" && url.protocol !== "https:")) return false;
  if (url.host.toLowerCase() !== host.toLowerCase()) return false;
  const name = url.hostname.replace(/^\[|\]$/g, "");
  return isLoopback(name);
}
