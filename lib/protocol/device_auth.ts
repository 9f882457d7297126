/**
 * What a device signs on connect (REFERENCE.md 1.3), shared by the gateway
 * that verifies it and the client library that signs it: the `|`-joined v3
 * (or v2) payload, base64url, and SHA-256 hex. No dependencies, browser-safe.
 *
 * @module
 */

/**
 * The fields of the signed payload besides the device's own id, the time and
 * the nonce: what the connect params say.
 *
 * @example
 * ```ts
 * import type { SignedFields } from "@gw/gw/protocol";
 * const fields: SignedFields = {
 *   clientId: "cli",
 *   clientMode: "cli",
 *   role: "operator",
 *   scopes: ["operator.read"],
 *   token: "",
 *   platform: "linux",
 * };
 * console.log(fields.scopes.join(","));
 * ```
 */
export interface SignedFields {
  /** `client.id` of the connect params. */
  clientId: string;
  /** `client.mode` of the connect params. */
  clientMode: string;
  /** The role asked for. */
  role: string;
  /** The scopes asked for, in the order sent. */
  scopes: readonly string[];
  /** The first of auth.token, auth.deviceToken, auth.bootstrapToken, else "". */
  token: string;
  /** `client.platform` (v3 only). */
  platform?: string | undefined;
  /** `client.deviceFamily` (v3 only). */
  deviceFamily?: string | undefined;
}

/** Trim, and lower-case A–Z only (as OpenClaw normalises the payload fields). */
export function normDeviceField(s: string | undefined): string {
  return (s ?? "").trim().replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * The v3 (or v2) string a device signs: `|`-joined
 * `version|deviceId|clientId|clientMode|role|scopes|signedAt|token|nonce`, and
 * for v3 `|platform|deviceFamily` (trimmed, A–Z lower-cased). A gateway checks
 * a connect's `device.signature` against it.
 *
 * @example
 * ```ts
 * import { devicePayload } from "@gw/gw/protocol";
 * const fields = {
 *   clientId: "cli",
 *   clientMode: "cli",
 *   role: "operator",
 *   scopes: ["operator.read", "operator.write"],
 *   token: "t0k",
 *   platform: "Linux",
 * };
 * console.log(devicePayload("v3", "ab12", fields, 1700000000000, "n-1"));
 * // v3|ab12|cli|cli|operator|operator.read,operator.write|1700000000000|t0k|n-1|linux|
 * ```
 */
export function devicePayload(
  version: "v3" | "v2",
  deviceId: string,
  f: SignedFields,
  signedAt: number,
  nonce: string,
): string {
  const base = [
    version,
    deviceId,
    f.clientId,
    f.clientMode,
    f.role,
    f.scopes.join(","),
    String(signedAt),
    f.token,
    nonce,
  ];
  return (version === "v3"
    ? [...base, normDeviceField(f.platform), normDeviceField(f.deviceFamily)]
    : base).join("|");
}

/** base64url (or base64) text to bytes; null when it is not. */
export function fromB64url(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_\-+/]*={0,2}$/.test(s)) return null;
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
  try {
    const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** Bytes to base64url without padding. */
export function toB64url(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Lower-case hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}
