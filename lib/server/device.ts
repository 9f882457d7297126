/**
 * Device identity on connect (REFERENCE.md 1.2 step 8 and 1.3): an Ed25519
 * key whose id is the hex SHA-256 of the raw public key, a signature over the
 * v3 payload (v2 accepted), `signedAt` within two minutes, and the nonce of
 * this socket's challenge. Every failure names itself in `details.code`.
 *
 * @module
 */
import { GatewayError } from "../protocol/errors.ts";
import {
  devicePayload,
  fromB64url,
  sha256Hex,
  type SignedFields,
  toB64url,
} from "../protocol/device_auth.ts";

export {
  devicePayload,
  fromB64url,
  sha256Hex,
  type SignedFields,
  toB64url,
} from "../protocol/device_auth.ts";
import { ErrorCode } from "../protocol/types.ts";

/** How far `signedAt` may be from the gateway's clock. */
export const SIGNATURE_SKEW_MS = 120_000;

/** The SPKI prefix of an Ed25519 public key (PEM keys are accepted and stripped to the raw 32 bytes). */
const SPKI_PREFIX = new Uint8Array([
  0x30,
  0x2a,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x03,
  0x21,
  0x00,
]);

/** What a connect sends as `device`. */
export interface DeviceParams {
  id: string;
  publicKey: string;
  signature: string;
  signedAt: number;
  nonce: string;
}

/** A device whose key, signature, time and nonce all checked out. */
export interface VerifiedDevice {
  id: string;
  /** The raw public key, base64url. */
  publicKey: string;
  /** Which payload version the signature was over. */
  version: "v3" | "v2";
}

/** The raw 32-byte key from base64url raw or PEM (SPKI), or null. */
export function rawPublicKey(publicKey: string): Uint8Array | null {
  const pem = /-----BEGIN PUBLIC KEY-----([\s\S]+?)-----END PUBLIC KEY-----/.exec(publicKey);
  const bytes = pem ? fromB64url(pem[1]!.replace(/\s+/g, "")) : fromB64url(publicKey.trim());
  if (!bytes) return null;
  if (bytes.length === 32) return bytes;
  if (bytes.length === 44 && SPKI_PREFIX.every((b, i) => bytes[i] === b)) return bytes.slice(12);
  return null;
}

function fail(code: string, message: string): GatewayError {
  return new GatewayError(ErrorCode.INVALID_REQUEST, message, {
    details: { code, reason: "device-signature" },
  });
}

/**
 * Verify `device` for this socket's challenge. Resolves with the verified
 * identity or rejects with INVALID_REQUEST and `details.code`
 * `DEVICE_AUTH_PUBLIC_KEY_INVALID`, `DEVICE_AUTH_DEVICE_ID_MISMATCH`,
 * `DEVICE_AUTH_SIGNATURE_EXPIRED`, `DEVICE_AUTH_NONCE_REQUIRED`,
 * `DEVICE_AUTH_NONCE_MISMATCH` or `DEVICE_AUTH_SIGNATURE_INVALID`.
 */
export async function verifyDevice(
  device: DeviceParams,
  fields: SignedFields,
  challenge: { nonce: string },
  now: number,
): Promise<VerifiedDevice> {
  const raw = rawPublicKey(device.publicKey);
  if (!raw) {
    throw fail(
      "DEVICE_AUTH_PUBLIC_KEY_INVALID",
      "device public key is not a raw or PEM Ed25519 key",
    );
  }
  const id = await sha256Hex(raw);
  if (device.id.trim().toLowerCase() !== id) {
    throw fail("DEVICE_AUTH_DEVICE_ID_MISMATCH", "device id is not the SHA-256 of its public key");
  }
  if (!Number.isFinite(device.signedAt) || Math.abs(now - device.signedAt) > SIGNATURE_SKEW_MS) {
    throw fail(
      "DEVICE_AUTH_SIGNATURE_EXPIRED",
      "device signature is too old or from the future (signedAt must be within 2 minutes)",
    );
  }
  if (!device.nonce.trim()) throw fail("DEVICE_AUTH_NONCE_REQUIRED", "device nonce is required");
  if (device.nonce !== challenge.nonce) {
    throw fail("DEVICE_AUTH_NONCE_MISMATCH", "device nonce is not this connection's challenge");
  }
  const sig = fromB64url(device.signature);
  if (!sig || sig.length !== 64) {
    throw fail("DEVICE_AUTH_SIGNATURE_INVALID", "device signature is not 64 bytes of base64url");
  }
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey("raw", raw as BufferSource, { name: "Ed25519" }, false, [
      "verify",
    ]);
  } catch {
    throw fail("DEVICE_AUTH_PUBLIC_KEY_INVALID", "device public key is not a valid Ed25519 key");
  }
  const enc = new TextEncoder();
  for (const version of ["v3", "v2"] as const) {
    const payload = enc.encode(devicePayload(version, id, fields, device.signedAt, device.nonce));
    if (await crypto.subtle.verify("Ed25519", key, sig as BufferSource, payload)) {
      return { id, publicKey: toB64url(raw), version };
    }
  }
  throw fail("DEVICE_AUTH_SIGNATURE_INVALID", "device signature does not verify");
}
