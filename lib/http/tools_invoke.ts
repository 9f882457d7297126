/**
 * `POST /tools/invoke`: run one agent tool by name, without a model turn.
 *
 * Only tools on {@link HTTP_SAFE_TOOLS} run over HTTP, whatever the config
 * says: a bearer token on this endpoint is full operator access, and OpenClaw
 * shipped GHSA-943q-mwmv-hhvh by exposing session and message tools here.
 * Anything that runs commands, writes files, sends messages or steers
 * sessions (`exec` first) is refused with 403, registered or not.
 *
 * @module
 */
import { z } from "zod";
import type { GatewayContext } from "../server/context.ts";
import { canonicalKey, SessionKeyError } from "../agent/session_keys.ts";
import { defaultAgentId } from "../agent/runtime.ts";
import { parseSessionKey } from "../store/sessions.ts";
import { formatIssue } from "../protocol/validate.ts";
import { jsonResponse, knownAgentIds, readJsonObject } from "./common.ts";

/** Largest request body of `/tools/invoke` (OpenClaw's). */
export const TOOLS_INVOKE_MAX_BODY_BYTES = 2 * 1024 * 1024;

/**
 * The tools `/tools/invoke` may run: read-only, no side effects. A tool joins
 * this list by a code change after review, never by config.
 */
export const HTTP_SAFE_TOOLS: ReadonlySet<string> = new Set(["current_time", "calculate"]);

/**
 * Names refused over HTTP even before looking them up (OpenClaw's default
 * HTTP deny list, and gw's names for the same powers). Every other tool not
 * on {@link HTTP_SAFE_TOOLS} is refused too; this list makes the answer a
 * 403 rather than a 404 for tools this gateway does not have.
 */
export const HTTP_DENIED_TOOLS: ReadonlySet<string> = new Set([
  "exec",
  "spawn",
  "shell",
  "bash",
  "process",
  "terminal",
  "fs_write",
  "fs_delete",
  "fs_move",
  "write",
  "edit",
  "apply_patch",
  "send",
  "message",
  "sessions_spawn",
  "sessions_send",
  "conversations_send",
  "conversations_turn",
  "cron",
  "automations",
  "gateway",
  "plugins",
  "nodes",
  "computer",
  "browser",
]);

const name = z.string().trim().min(1).max(64);

/** The body: OpenClaw's `ToolsInvokeParamsSchema`, plus HTTP's `tool`, `action` and `dryRun`. */
const toolsInvokeBody = z.strictObject({
  name: name.optional(),
  tool: name.optional(),
  action: z.string().max(128).optional(),
  args: z.record(z.string(), z.unknown()).optional(),
  sessionKey: z.string().trim().min(1).max(512).optional(),
  agentId: z.string().trim().min(1).max(64).optional(),
  confirm: z.boolean().optional(),
  idempotencyKey: z.string().min(1).max(256).optional(),
  dryRun: z.boolean().optional(),
  conversationReadOrigin: z.literal("direct-operator").optional(),
});

function failure(status: number, type: string, message: string): Response {
  return jsonResponse(status, { ok: false, error: { type, message } });
}

/** `POST /tools/invoke` (already authenticated). */
export async function handleToolsInvoke(req: Request, ctx: GatewayContext): Promise<Response> {
  const body = await readJsonObject(req, { maxBytes: TOOLS_INVOKE_MAX_BODY_BYTES });
  if (!body.ok) return failure(body.status, "invalid_request", body.message);
  const parsed = toolsInvokeBody.safeParse(body.value);
  if (!parsed.success) {
    return failure(
      400,
      "invalid_request",
      formatIssue("", parsed.error.issues[0]!, body.value).replace(/^\./, ""),
    );
  }
  const p = parsed.data;
  const toolName = p.name ?? p.tool;
  if (!toolName) return failure(400, "invalid_request", "tools.invoke requires name");
  const spec = ctx.tools.specs().find((t) => t.name === toolName);
  if (HTTP_DENIED_TOOLS.has(toolName) || (spec && !HTTP_SAFE_TOOLS.has(toolName))) {
    ctx.log.warn("tools/invoke refused a tool that is not safe over HTTP", { tool: toolName });
    return failure(
      403,
      "tool_call_blocked",
      `${toolName} cannot be invoked over HTTP: only ${
        [...HTTP_SAFE_TOOLS].join(", ")
      } may run here (GHSA-943q)`,
    );
  }
  if (!spec) return failure(404, "not_found", `Tool not available: ${toolName}`);

  // The session the call is made for (tools see it in their context).
  const cfg = ctx.config.config;
  const agents = knownAgentIds(cfg);
  const wanted = p.agentId?.toLowerCase();
  if (wanted && !agents.has(wanted)) {
    return failure(400, "invalid_request", `unknown agentId "${p.agentId}"`);
  }
  let sessionKey: string;
  try {
    sessionKey = canonicalKey(p.sessionKey ?? "main", wanted ?? defaultAgentId(cfg).toLowerCase());
  } catch (e) {
    if (!(e instanceof SessionKeyError)) throw e;
    return failure(400, "invalid_request", `invalid sessionKey`);
  }
  const agentId = parseSessionKey(sessionKey)?.agentId ?? defaultAgentId(cfg).toLowerCase();
  if (wanted && agentId !== wanted) {
    return failure(
      400,
      "invalid_request",
      `agent id "${wanted}" does not match session agent "${agentId}"`,
    );
  }
  let args: Record<string, unknown> = p.args ?? {};
  // `action` goes into the args when the tool takes one and the args do not set it.
  const props = (spec.inputSchema as { properties?: Record<string, unknown> }).properties;
  if (p.action !== undefined && args.action === undefined && props && "action" in props) {
    args = { ...args, action: p.action };
  }
  const runId = `http-${p.idempotencyKey ?? crypto.randomUUID()}`;
  const out = await ctx.tools.run(toolName, args, {
    sessionKey,
    agentId,
    runId,
    // Safe tools are quick and have no effects to stop half-way.
    signal: new AbortController().signal,
  });
  if (out.isError) return failure(400, "tool_error", out.text);
  return jsonResponse(200, { ok: true, result: { content: [{ type: "text", text: out.text }] } });
}
