/**
 * `browser.request`: drive a browser that runs on a node. gw runs no browser
 * of its own, so every request goes to a connected node that offers the
 * `browser.proxy` command (OpenClaw's node host does when its browser control
 * is on), as `node.invoke.request {command: "browser.proxy", params: {method,
 * path, query, body, timeoutMs, profile?, errorEnvelope: "browser-v1"}}`, and
 * the node's answer comes back as the result.
 *
 * The method is always advertised: it works as soon as such a node connects,
 * and without one it answers `UNAVAILABLE` saying so.
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import { GatewayError, invalidRequest } from "../lib/protocol/errors.ts";
import { ErrorCode } from "../lib/protocol/types.ts";
import type { GatewayContext } from "../lib/server/context.ts";
import type { LiveNode } from "../lib/server/nodes.ts";

/** The node command a browser request is forwarded as. */
export const BROWSER_PROXY_COMMAND = "browser.proxy";
/** The browser's own timeout when the caller gives none (OpenClaw's default). */
export const DEFAULT_BROWSER_TIMEOUT_MS = 20_000;
/** Extra time the node has, past the browser's timeout, to send its answer back. */
const NODE_SLACK_MS = 5_000;
/** Files a node may send back with one result. */
const MAX_FILES = 256;
/** Bytes of all files of one result, decoded. */
const MAX_FILES_BYTES = 16 * 1024 * 1024;

const NO_NODE = `no connected node offers a browser (${BROWSER_PROXY_COMMAND})`;

/** Params, as OpenClaw's browser plugin reads them. */
const params = z.strictObject({
  // Checked in the handler, as OpenClaw does, so any casing works ("get").
  method: z.string().trim().min(1).max(16).describe(
    "HTTP method of the browser control route: GET, POST or DELETE (any case).",
  ),
  path: z.string().trim().min(1).max(2048).describe("Browser control route, e.g. /tabs."),
  query: z.record(z.string(), z.unknown()).optional().describe("Query parameters of the route."),
  body: z.unknown().optional().describe("JSON body of the route."),
  timeoutMs: z.int().min(1).max(600_000).optional().describe(
    `How long the browser may take (default ${DEFAULT_BROWSER_TIMEOUT_MS} ms).`,
  ),
  target: z.enum(["host", "node"]).optional().describe(
    "Where the browser runs: gw has none on its host, so only node works.",
  ),
  node: z.string().trim().min(1).max(256).optional().describe(
    "Which browser node: its id, a unique id prefix, or its display name.",
  ),
  dashboard: z.looseObject({}).optional().describe(
    "A dashboard widget's identity (needs a browser on the gateway host: refused).",
  ),
});

/** A route path with one leading slash and no trailing slash, as OpenClaw normalises it. */
function normalizePath(path: string): string {
  const p = path.startsWith("/") ? path : `/${path}`;
  return p.length <= 1 ? p : p.replace(/\/+$/, "");
}

/** Routes that change a node's persistent browser profiles: refused over a proxy, as in OpenClaw. */
function mutatesProfiles(method: string, path: string): boolean {
  if (method === "POST") {
    return path === "/profiles/create" || path === "/profiles/import" || path === "/reset-profile";
  }
  return method === "DELETE" && /^\/profiles\/[^/]+$/.test(path);
}

function unavailable(message: string, details: Record<string, unknown>): GatewayError {
  return new GatewayError(ErrorCode.UNAVAILABLE, message, { details });
}

/** The browser node a request goes to, or an UNAVAILABLE error saying why there is none. */
export function pickBrowserNode(ctx: GatewayContext, selector: string | undefined): LiveNode {
  const all = ctx.nodes.list().filter((n) => n.commands.includes(BROWSER_PROXY_COMMAND));
  if (all.length === 0) throw unavailable(NO_NODE, { code: "NO_BROWSER_NODE" });
  const ids = all.map((n) => n.nodeId);
  if (selector === undefined) {
    if (all.length === 1) return all[0]!;
    throw unavailable(
      `${all.length} connected nodes offer a browser; pick one with params.node (${
        ids.join(", ")
      })`,
      { code: "BROWSER_NODE_AMBIGUOUS", nodes: ids },
    );
  }
  const lower = selector.toLowerCase();
  const exact = all.find((n) => n.nodeId === selector) ??
    all.find((n) => n.displayName?.toLowerCase() === lower);
  if (exact) return exact;
  const prefixed = all.filter((n) => n.nodeId.startsWith(selector));
  if (prefixed.length === 1) return prefixed[0]!;
  throw unavailable(
    prefixed.length > 1
      ? `"${selector}" matches ${prefixed.length} browser nodes; give more of the id`
      : `no connected browser node matches "${selector}" (browser nodes: ${ids.join(", ")})`,
    { code: "BROWSER_NODE_NOT_CONNECTED", node: selector, nodes: ids },
  );
}

/** Decode a node's answer: `{result, files?}`, or `{error: {status, body}}` (browser-v1). */
async function readAnswer(
  raw: unknown,
  ctx: GatewayContext,
  nodeId: string,
): Promise<unknown> {
  let answer = raw;
  if (typeof answer === "string") {
    try {
      answer = JSON.parse(answer);
    } catch {
      throw unavailable(`browser node ${nodeId} sent an answer that is not JSON`, {
        code: "BROWSER_PROXY_BAD_ANSWER",
        nodeId,
      });
    }
  }
  if (answer === null || typeof answer !== "object" || Array.isArray(answer)) {
    throw unavailable(`browser node ${nodeId} sent no result`, {
      code: "BROWSER_PROXY_BAD_ANSWER",
      nodeId,
    });
  }
  const a = answer as Record<string, unknown>;
  const failure = a.error as Record<string, unknown> | undefined;
  if (failure && typeof failure === "object" && typeof failure.status === "number") {
    const status = failure.status;
    const body = failure.body && typeof failure.body === "object"
      ? failure.body as Record<string, unknown>
      : {};
    const message = typeof body.error === "string" && body.error
      ? body.error.slice(0, 2000)
      : `the browser answered HTTP ${status}`;
    throw new GatewayError(
      status >= 500 ? ErrorCode.UNAVAILABLE : ErrorCode.INVALID_REQUEST,
      message,
      { details: { ...body, status, nodeId } },
    );
  }
  if (!("result" in a)) {
    throw unavailable(`browser node ${nodeId} sent no result`, {
      code: "BROWSER_PROXY_BAD_ANSWER",
      nodeId,
    });
  }
  return await keepFiles(a.result, a.files, ctx, nodeId);
}

/**
 * Files the node attached (screenshots, downloads: `[{path, base64,
 * mimeType?}]`) are stored in gw's media directory, and the result's `path`,
 * `imagePath`, `download.path` and `downloads[].path` that named them on the
 * node are rewritten to the stored copies.
 */
async function keepFiles(
  result: unknown,
  files: unknown,
  ctx: GatewayContext,
  nodeId: string,
): Promise<unknown> {
  if (files === undefined || files === null) return result;
  const bad = (why: string) =>
    unavailable(`browser node ${nodeId} sent bad files: ${why}`, {
      code: "BROWSER_PROXY_BAD_FILES",
      nodeId,
    });
  if (!Array.isArray(files)) throw bad("expected a list");
  if (files.length > MAX_FILES) throw bad(`more than ${MAX_FILES}`);
  const saved = new Map<string, string>();
  let total = 0;
  for (const f of files) {
    const file = f as Record<string, unknown> | null;
    if (
      !file || typeof file.path !== "string" || !file.path || typeof file.base64 !== "string" ||
      (file.mimeType !== undefined && typeof file.mimeType !== "string")
    ) {
      throw bad("each needs a path and base64 data");
    }
    let bytes: Uint8Array;
    try {
      bytes = Uint8Array.from(atob(file.base64), (c) => c.charCodeAt(0));
    } catch {
      throw bad(`${file.path} is not base64`);
    }
    total += bytes.length;
    if (total > MAX_FILES_BYTES) throw bad("over 16 MiB in all");
    try {
      const att = await ctx.media.save(bytes, {
        mimeType: (file.mimeType as string | undefined) ?? "application/octet-stream",
        fileName: file.path.split(/[\\/]/).pop() ?? "file",
      });
      saved.set(file.path, `${ctx.media.dir}/${att.media}`);
    } catch (e) {
      throw bad(`${file.path}: ${(e as Error).message}`);
    }
  }
  if (!result || typeof result !== "object" || Array.isArray(result)) return result;
  const out = structuredClone(result) as Record<string, unknown>;
  const swap = (o: unknown, key: string) => {
    if (!o || typeof o !== "object" || Array.isArray(o)) return;
    const rec = o as Record<string, unknown>;
    const v = rec[key];
    if (typeof v === "string" && saved.has(v)) rec[key] = saved.get(v);
  };
  swap(out, "path");
  swap(out, "imagePath");
  swap(out.download, "path");
  if (Array.isArray(out.downloads)) { for (const d of out.downloads) swap(d, "path"); }
  return out;
}

/** `browser.request`: a browser control request, run by a browser node. */
export const browserRequest = defineMethod({
  name: "browser.request",
  scope: "write",
  summary: "Drive a browser through a connected node that offers browser.proxy.",
  params,
  handler: async (p, ctx) => {
    const method = p.method.toUpperCase();
    if (method !== "GET" && method !== "POST" && method !== "DELETE") {
      throw invalidRequest(
        `params.method: expected GET, POST or DELETE, got ${JSON.stringify(p.method)}`,
      );
    }
    const path = normalizePath(p.path);
    if (p.dashboard !== undefined || path === "/dashboard") {
      throw invalidRequest(
        "browser dashboards need a managed browser on the gateway host, and gw runs none",
        { code: "BROWSER_HOST_UNSUPPORTED" },
      );
    }
    if (p.target === "host") {
      throw unavailable(`gw runs no browser on its host; use target "node" (${NO_NODE})`, {
        code: "BROWSER_HOST_UNSUPPORTED",
      });
    }
    if (mutatesProfiles(method, path)) {
      throw invalidRequest(
        "browser.request cannot change persistent browser profiles over a node proxy",
      );
    }
    if (
      method === "POST" && path === "/hooks/file-chooser" &&
      Array.isArray((p.body as { paths?: unknown } | undefined)?.paths)
    ) {
      throw invalidRequest(
        "gw does not send files to a browser node: file-chooser uploads are not supported",
        { code: "BROWSER_UPLOAD_UNSUPPORTED" },
      );
    }
    const node = pickBrowserNode(ctx, p.node);
    const timeoutMs = p.timeoutMs ?? DEFAULT_BROWSER_TIMEOUT_MS;
    const proxied: Record<string, unknown> = {
      method,
      path,
      timeoutMs,
      errorEnvelope: "browser-v1",
    };
    if (p.query !== undefined) proxied.query = p.query;
    if (p.body !== undefined) proxied.body = p.body;
    const profile = p.query?.profile ?? (p.body as { profile?: unknown } | undefined)?.profile;
    if (typeof profile === "string" && profile.trim()) proxied.profile = profile.trim();
    let raw: unknown;
    try {
      raw = await ctx.nodes.invoke(
        node.nodeId,
        BROWSER_PROXY_COMMAND,
        proxied,
        timeoutMs + NODE_SLACK_MS,
      );
    } catch (e) {
      if (!(e instanceof GatewayError)) throw e;
      const code = (e.details?.code as string | undefined) ?? e.code;
      const why = code === "NODE_DISCONNECTED"
        ? `browser node ${node.nodeId} disconnected before answering`
        : code === "NODE_TIMEOUT"
        ? `browser node ${node.nodeId} did not answer within ${timeoutMs + NODE_SLACK_MS} ms`
        : `browser node ${node.nodeId}: ${e.message}`;
      throw new GatewayError(e.code, why, {
        details: { ...e.details, nodeId: node.nodeId },
        ...(e.retryable !== undefined ? { retryable: e.retryable } : {}),
      });
    }
    return await readAnswer(raw, ctx, node.nodeId);
  },
});
