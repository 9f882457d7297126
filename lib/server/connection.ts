/**
 * One connection's state, and the frame helpers of the hot path: the
 * request-frame shape check, error frames, close reasons within 123 bytes.
 *
 * @module
 */
import type { CallerInfo } from "./method.ts";
import type { PeerInfo } from "./net.ts";
import {
  type ClientInfo,
  type ErrorShape,
  PROTOCOL_VERSION,
  type Role,
} from "../protocol/types.ts";

/** Frames before auth are capped at this size (bytes). */
export const PREAUTH_MAX_BYTES = 64 * 1024;

/** Where a connection is in its life. */
export type ConnState = "preauth" | "checking" | "open" | "closed";

/** One WebSocket connection and what the gateway knows of it. */
export class Conn {
  readonly id = crypto.randomUUID();
  state: ConnState = "preauth";
  protocol = PROTOCOL_VERSION;
  role: Role = "operator";
  scopes: ReadonlySet<string> = new Set();
  /** The client block of the connect params (all that is kept of them). */
  client: ClientInfo | undefined;
  authGeneration = "";
  seq = 0;
  unauthorized = 0;
  inflight = 0;
  nonce = crypto.randomUUID();
  challengeTs = 0;
  handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  early: string[] | undefined;
  connectedAt = 0;
  caller: CallerInfo | undefined;
  /** The verified, paired device of this connection, if any. */
  deviceId: string | undefined;
  /** A node's declared commands and caps. */
  commands: string[] = [];
  caps: string[] = [];
  slowCheck: ReturnType<typeof setTimeout> | undefined;
  /** A close to perform once in-flight requests have answered. */
  closeWhenIdle: { code: number; reason: string } | undefined;
  constructor(
    readonly ws: WebSocket,
    readonly peer: PeerInfo,
    readonly origin: string | null,
    readonly host: string | null,
  ) {}
}

/** Shared UTF-8 decoder. */
export const decoder: TextDecoder = new TextDecoder();
/** Shared UTF-8 encoder. */
export const encoder: TextEncoder = new TextEncoder();

/** UTF-8 size of `text`, computed only when it could pass the pre-auth cap. */
export function byteLength(text: string): number {
  // Cheap bound first: UTF-8 takes at most 3 bytes per UTF-16 unit.
  return text.length * 3 <= PREAUTH_MAX_BYTES ? text.length : encoder.encode(text).length;
}

const FRAME_KEYS = new Set(["type", "id", "method", "params", "traceparent", "expectedProfileId"]);

/** Check a request frame's shape by hand (hot path); returns an error text or null. */
export function frameProblem(f: unknown): string | null {
  if (typeof f !== "object" || f === null || Array.isArray(f)) return "expected a JSON object";
  const o = f as Record<string, unknown>;
  if (o.type !== "req") return `at /type: expected "req"`;
  if (typeof o.id !== "string" || o.id.length === 0) return "at /id: expected a non-empty string";
  if (o.id.length > 256) return "at /id: longer than 256 characters";
  if (typeof o.method !== "string" || o.method.length === 0) {
    return "at /method: expected a non-empty string";
  }
  if (o.method.length > 256) return "at /method: longer than 256 characters";
  if (
    o.traceparent !== undefined && (typeof o.traceparent !== "string" || o.traceparent.length > 128)
  ) {
    return "at /traceparent: expected a string of at most 128 characters";
  }
  for (const k in o) if (!FRAME_KEYS.has(k)) return `at root: unexpected property '${k}'`;
  return null;
}

/** A close reason within WebSocket's 123-byte limit, cut on a character boundary. */
export function closeReason(text: string): string {
  if (encoder.encode(text).length <= 123) return text;
  let out = "";
  let bytes = 0;
  for (const ch of text) {
    const n = encoder.encode(ch).length;
    if (bytes + n > 120) break;
    out += ch;
    bytes += n;
  }
  return out + "…".slice(0, bytes + 3 <= 123 ? 1 : 0);
}

/** An error response frame as JSON text. */
export function errorFrame(id: string, error: ErrorShape, payload?: unknown): string {
  return JSON.stringify(
    payload === undefined
      ? { type: "res", id, ok: false, error }
      : { type: "res", id, ok: false, payload, error },
  );
}
