/**
 * Shared-secret auth: constant-time compare, and the per-address failure
 * limiter with lockout.
 *
 * @module
 */

import type { ClientInfo, Role } from "../protocol/types.ts";

const encoder = new TextEncoder();

/**
 * Compare two secrets in time that depends only on their lengths' maximum,
 * never on where they first differ.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.max(x.length, y.length);
  let diff = x.length ^ y.length;
  for (let i = 0; i < n; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Limits of {@link AuthRateLimiter}. */
export interface RateLimitOptions {
  maxFailures: number;
  windowMs: number;
  lockoutMs: number;
  /** Most addresses tracked; the oldest are forgotten past it. Default 10,000. */
  maxKeys?: number;
}

interface Entry {
  failures: number[];
  lockedUntil: number;
}

/**
 * Sliding-window failure counter per address: `maxFailures` within
 * `windowMs` locks the address out for `lockoutMs`.
 */
export class AuthRateLimiter {
  #entries = new Map<string, Entry>();
  #opts: Required<RateLimitOptions>;

  /** Create a limiter. */
  constructor(options: RateLimitOptions) {
    this.#opts = { maxKeys: 10_000, ...options };
  }

  /** Change the limits at run time. */
  configure(options: RateLimitOptions): void {
    this.#opts = { maxKeys: this.#opts.maxKeys, ...options };
  }

  /** Milliseconds until `key` may try again, or 0 when it may now. */
  retryAfter(key: string, now: number): number {
    const e = this.#entries.get(key);
    return e && e.lockedUntil > now ? e.lockedUntil - now : 0;
  }

  /** Count a failure; returns the lockout length when this failure locks the key out, else 0. */
  fail(key: string, now: number): number {
    let e = this.#entries.get(key);
    if (!e) {
      if (this.#entries.size >= this.#opts.maxKeys) {
        const oldest = this.#entries.keys().next().value;
        if (oldest !== undefined) this.#entries.delete(oldest);
      }
      e = { failures: [], lockedUntil: 0 };
      this.#entries.set(key, e);
    }
    e.failures = e.failures.filter((t) => now - t < this.#opts.windowMs);
    e.failures.push(now);
    if (e.failures.length >= this.#opts.maxFailures) {
      e.lockedUntil = now + this.#opts.lockoutMs;
      e.failures = [];
      return this.#opts.lockoutMs;
    }
    return 0;
  }

  /** Forget `key` after a success. */
  succeed(key: string): void {
    this.#entries.delete(key);
  }
}

/**
 * The scopes a client that proved the shared secret, but no device identity,
 * may keep. Only the narrow trusted paths keep what they ask for
 * (GHSA-rqpp-rjj8-7wv8): the CLI (`cli`/`cli`) and the backend helper
 * (`gateway-client`/`backend`), operators on direct loopback without a
 * browser Origin. Every other device-less connection gets no scopes.
 */
export function sharedSecretScopes(
  role: Role,
  client: Pick<ClientInfo, "id" | "mode">,
  directLocal: boolean,
  requested: readonly string[] = [],
): string[] {
  const trustedPath = (client.id === "cli" && client.mode === "cli") ||
    (client.id === "gateway-client" && client.mode === "backend");
  return role === "operator" && directLocal && trustedPath ? [...new Set(requested)] : [];
}
