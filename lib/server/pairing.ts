/**
 * Device tokens and scope arithmetic for pairing: tokens are 32 random bytes
 * (base64url), stored as SHA-256; every scope a device holds is the
 * intersection of what it asks for, its token's scopes and its approved
 * baseline (GHSA-2pwv), and whoever mints or rotates one cannot give more
 * than they hold (GHSA-4jpw).
 *
 * @module
 */
import type { DeviceTokenRecord, PairedDevice, PairRequest } from "../store/devices.ts";
import { sha256Hex, toB64url } from "./device.ts";
import { constantTimeEqual } from "./auth.ts";
import { hasScope } from "./method.ts";

/** A new device token and the record that stores its hash. */
export async function mintToken(
  role: string,
  scopes: string[],
  now: number,
): Promise<{ token: string; record: DeviceTokenRecord }> {
  const token = toB64url(crypto.getRandomValues(new Uint8Array(32)));
  return {
    token,
    record: { role, hash: await hashToken(token), scopes: [...new Set(scopes)], createdAtMs: now },
  };
}

/** The stored form of a token. */
export function hashToken(token: string): Promise<string> {
  return sha256Hex(new TextEncoder().encode(token));
}

/** Whether `token` is the live token `rec` stores (constant-time on the hashes). */
export async function tokenMatches(
  token: string,
  rec: DeviceTokenRecord | undefined,
): Promise<boolean> {
  const h = await hashToken(token);
  if (!rec || rec.revokedAtMs !== undefined) return false;
  return constantTimeEqual(h, rec.hash);
}

/** `a ∩ b`, in `a`'s order. */
export function intersect(a: readonly string[], b: readonly string[]): string[] {
  const set = new Set(b);
  return [...new Set(a)].filter((s) => set.has(s));
}

/** The scopes of `wanted` the caller does not hold itself (admin holds all). */
export function beyondCaller(wanted: readonly string[], caller: ReadonlySet<string>): string[] {
  return wanted.filter((s) => !hasScope(caller, s));
}

/** A pairing request as `device.pair.list` and `device.pair.requested` show it. */
export function pairRequestView(r: PairRequest): Record<string, unknown> {
  return { ...r, ts: r.createdAtMs };
}

/** A paired device as `device.pair.list` shows it: token hashes never leave the store. */
export function pairedView(d: PairedDevice): Record<string, unknown> {
  const { tokens, ...rest } = d;
  return {
    ...rest,
    scopes: d.approvedScopes,
    tokens: Object.values(tokens).map(({ hash: _hash, ...t }) => t),
  };
}
