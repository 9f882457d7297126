/**
 * Small pieces the HTTP endpoints share: JSON answers, reading a capped body,
 * the bearer token of a request, and the agents a config knows.
 *
 * @module
 */
import { readCapped, TooLargeError } from "../bytes.ts";
import type { GwConfig } from "../config/schema.ts";
import { defaultAgentId } from "../agent/runtime.ts";

/** Headers of every JSON answer. */
const JSON_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "application/json; charset=utf-8",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
};

/**
 * A JSON response with no-store caching.
 *
 * @example
 * ```ts
 * const res = jsonResponse(200, { ok: true });
 * ```
 */
export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...headers } });
}

/** A plain-text response (OpenClaw answers hooks' 401, 404 and 405 this way). */
export function textResponse(
  status: number,
  text: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(text, {
    status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      ...headers,
    },
  });
}

/** 405 with the allowed methods. */
export function methodNotAllowed(allow: string): Response {
  return textResponse(405, "Method Not Allowed", { allow });
}

/** A body that could not be read: too large (413) or not JSON / not an object (400). */
export interface BodyProblem {
  status: 400 | 413;
  message: string;
}

/** Options of {@link readJsonObject}. */
export interface ReadJsonOptions {
  /** The largest body read. */
  maxBytes: number;
  /** Read an empty body as `{}`. Default false (a 400). */
  emptyIsObject?: boolean;
}

/**
 * Read a request body of at most `maxBytes` and parse it as a JSON object.
 * A declared or actual size past the cap stops reading at once (413). An
 * empty body is `{}` when `emptyIsObject`, else a 400.
 */
export async function readJsonObject(
  req: Request,
  { maxBytes, emptyIsObject = false }: ReadJsonOptions,
): Promise<{ ok: true; value: Record<string, unknown> } | ({ ok: false } & BodyProblem)> {
  const declared = Number(req.headers.get("content-length") ?? "");
  if (Number.isFinite(declared) && declared > maxBytes) {
    return { ok: false, status: 413, message: `request body is larger than ${maxBytes} bytes` };
  }
  let bytes: Uint8Array;
  try {
    bytes = await readCapped(req.body, maxBytes);
  } catch (e) {
    if (e instanceof TooLargeError) {
      return { ok: false, status: 413, message: `request body is larger than ${maxBytes} bytes` };
    }
    return { ok: false, status: 400, message: "the request body could not be read" };
  }
  const text = new TextDecoder().decode(bytes);
  if (text.trim() === "") {
    return emptyIsObject
      ? { ok: true, value: {} }
      : { ok: false, status: 400, message: "the request body is empty; expected a JSON object" };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, status: 400, message: "the request body is not valid JSON" };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, status: 400, message: "the request body must be a JSON object" };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/** The token of `Authorization: Bearer <token>`, or undefined. */
export function bearerToken(headers: Headers): string | undefined {
  const auth = headers.get("authorization")?.trim() ?? "";
  if (!/^bearer\s+/i.test(auth)) return undefined;
  const token = auth.replace(/^bearer\s+/i, "").trim();
  return token || undefined;
}

/** The agent ids a config knows: its list, and the default agent (`main` when the list is empty). */
export function knownAgentIds(cfg: GwConfig): Set<string> {
  const ids = new Set(cfg.agents.list.map((a) => a.id.toLowerCase()));
  ids.add(defaultAgentId(cfg).toLowerCase());
  return ids;
}

/** Whether `id` could be an agent id (the config's pattern). */
export function isAgentIdShape(id: string): boolean {
  return /^[a-z0-9][a-z0-9_-]{0,63}$/i.test(id);
}
