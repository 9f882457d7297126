/**
 * The OpenAI-compatible endpoints: `POST /v1/chat/completions` (plain JSON or
 * a `text/event-stream` of `chat.completion.chunk`s ending in `data: [DONE]`)
 * and `GET /v1/models`, over the same agent runtime as `chat.send`.
 *
 * As in OpenClaw, `model` names an agent, not a provider model: `openclaw`
 * and `openclaw/default` are the default agent; `openclaw/<id>`,
 * `openclaw:<id>` and `agent:<id>` a configured one. `user` gives a stable
 * session (`agent:<id>:openai-user:<user>`); without it each request gets a
 * fresh `agent:<id>:openai:<uuid>`. The last user message is the turn's
 * input and system (or developer) messages are added to the system prompt;
 * when the session is fresh, the earlier messages go along as context. A
 * streaming client that disconnects aborts its run; a non-streaming one does
 * not (the reply still lands in the session).
 *
 * @module
 */
import { z } from "zod";
import type { GatewayContext } from "../server/context.ts";
import type { RunHandle, RunOutcome, TurnRequest } from "../agent/runtime.ts";
import { defaultAgentId } from "../agent/runtime.ts";
import { canonicalKey, SessionKeyError } from "../agent/session_keys.ts";
import { MAX_MESSAGE_CHARS, parseSessionKey } from "../store/sessions.ts";
import { formatIssue } from "../protocol/validate.ts";
import { isAgentIdShape, jsonResponse, knownAgentIds, readJsonObject } from "./common.ts";

/** Largest request body of `/v1/chat/completions`. */
export const CHAT_COMPLETIONS_MAX_BODY_BYTES = 4 * 1024 * 1024;
/** How often an idle stream gets an SSE comment, so proxies keep it open. */
const KEEPALIVE_MS = 15_000;

/** OpenAI's error body. */
export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Options of {@link openAiError}. */
export interface OpenAiErrorOptions {
  /** OpenAI's error type. Default `invalid_request_error`. */
  type?: string;
  /** A machine-readable code, e.g. `invalid_api_key`. Default null. */
  code?: string;
  /** Extra response headers (`retry-after`). */
  headers?: Record<string, string>;
}

/**
 * An answer in OpenAI's error shape: `{error: {message, type, param, code}}`.
 *
 * @example
 * ```ts
 * const res = openAiError(400, "Missing user message in `messages`.");
 * ```
 */
export function openAiError(
  status: number,
  message: string,
  options: OpenAiErrorOptions = {},
): Response {
  const body: OpenAiErrorBody = {
    error: {
      message,
      type: options.type ?? "invalid_request_error",
      param: null,
      code: options.code ?? null,
    },
  };
  return jsonResponse(status, body, options.headers ?? {});
}

const contentPart = z.looseObject({
  type: z.string().max(64),
  text: z.string().optional(),
});

const chatMessage = z.looseObject({
  role: z.string().max(32),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  name: z.string().max(256).optional(),
});

/** The fields of a chat completion request gw reads; others (temperature, ...) are accepted and ignored. */
const chatRequest = z.looseObject({
  model: z.string().max(256).optional(),
  messages: z.array(chatMessage).min(1).max(10_000),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  user: z.string().max(256).optional(),
  tools: z.array(z.unknown()).nullish(),
  n: z.int().nullish(),
});

const INVALID_MODEL = "Invalid `model`. Use `openclaw` or `openclaw/<agentId>`.";

/** The agent a `model` names, `null` for the default agent, or undefined when it names none. */
function agentOfModel(model: string | undefined): string | null | undefined {
  const raw = model?.trim();
  if (!raw) return null;
  const lower = raw.toLowerCase();
  if (lower === "openclaw" || lower === "openclaw/default") return null;
  const m = /^openclaw[:/]([a-z0-9][a-z0-9_-]{0,63})$/i.exec(raw) ??
    /^agent:([a-z0-9][a-z0-9_-]{0,63})$/i.exec(raw);
  return m ? m[1]!.toLowerCase() : undefined;
}

/** The model ids `/v1/models` lists. */
function modelIds(ctx: GatewayContext): string[] {
  const ids = new Set(["openclaw", "openclaw/default"]);
  for (const id of knownAgentIds(ctx.config.config)) ids.add(`openclaw/${id}`);
  return [...ids];
}

function modelObject(id: string): Record<string, unknown> {
  return { id, object: "model", created: 0, owned_by: "gw", permission: [] };
}

/** `GET /v1/models` and `GET /v1/models/<id>` (already authenticated). */
export function handleModels(url: URL, ctx: GatewayContext): Response {
  const ids = modelIds(ctx);
  if (url.pathname === "/v1/models") {
    return jsonResponse(200, { object: "list", data: ids.map(modelObject) });
  }
  let id: string;
  try {
    id = decodeURIComponent(url.pathname.slice("/v1/models/".length));
  } catch {
    return openAiError(400, "Invalid model id encoding.");
  }
  if (!ids.includes(id)) {
    return openAiError(404, `Model '${id}' not found.`, { code: "model_not_found" });
  }
  return jsonResponse(200, modelObject(id));
}

/** Text of a message's content: a string, or its text parts joined. */
function textOf(content: z.infer<typeof chatMessage>["content"]): string {
  if (typeof content === "string") return content;
  if (!content) return "";
  return content.filter((p) => p.type === "text" || p.type === "input_text")
    .map((p) => p.text ?? "").join("\n");
}

/** The turn's input and extra system prompt from OpenAI messages. */
function promptOf(
  messages: z.infer<typeof chatMessage>[],
  freshSession: boolean,
): { message: string; system: string | undefined } | { error: string } {
  const system: string[] = [];
  const history: { sender: string; text: string }[] = [];
  let lastUser = -1;
  for (const m of messages) {
    if (Array.isArray(m.content) && m.content.some((p) => p.type === "image_url")) {
      return { error: "image_url content is not supported by this gateway" };
    }
    const text = textOf(m.content).trim();
    if (m.role === "system" || m.role === "developer") {
      if (text) system.push(text);
      continue;
    }
    if (m.role !== "user" && m.role !== "assistant" && m.role !== "tool" && m.role !== "function") {
      continue;
    }
    if (!text) continue;
    if (m.role === "user") lastUser = history.length;
    const sender = m.role === "user" ? "User" : m.role === "assistant" ? "Assistant" : "Tool";
    history.push({ sender, text });
  }
  const current = history[lastUser];
  if (!current) return { error: "Missing user message in `messages`." };
  let message = current.text;
  const earlier = history.slice(0, lastUser);
  // A fresh session has no transcript: the client's earlier messages are the only context.
  if (freshSession && earlier.length > 0) {
    message = [
      "[Chat messages since your last reply - for context]",
      ...earlier.map((e) => `${e.sender}: ${e.text}`),
      "",
      "[Current message - respond to this]",
      `User: ${current.text}`,
    ].join("\n");
  }
  return { message, system: system.length ? system.join("\n\n") : undefined };
}

/** OpenAI's usage object from a run's token counts. */
function usageOf(o: RunOutcome): Record<string, unknown> {
  const prompt = o.usage.input + o.usage.cacheRead + o.usage.cacheWrite;
  return {
    prompt_tokens: prompt,
    completion_tokens: o.usage.output,
    total_tokens: prompt + o.usage.output,
    ...(o.usage.cacheRead > 0
      ? { prompt_tokens_details: { cached_tokens: o.usage.cacheRead } }
      : {}),
  };
}

/** A failed run as an HTTP status and OpenAI error (the provider's words; never a secret). */
function failureOf(o: RunOutcome): { status: number; message: string; type: string } {
  const kind = o.error?.kind ?? "unknown";
  const message = o.error?.message ?? `the run ended with status ${o.status}`;
  if (o.status === "timeout" || kind === "timeout") {
    return { status: 504, message: "the agent run timed out", type: "api_error" };
  }
  if (o.status === "aborted") {
    return { status: 503, message: "the run was aborted", type: "api_error" };
  }
  switch (kind) {
    case "rate_limit":
      return { status: 429, message, type: "rate_limit_error" };
    case "overloaded":
      return { status: 503, message: "upstream provider overloaded", type: "api_error" };
    case "context_length":
    case "bad_request":
      return { status: 400, message, type: "invalid_request_error" };
    case "auth":
      // The gateway's provider key failed, not the caller's: not a 401.
      return { status: 502, message: "upstream provider authentication failed", type: "api_error" };
    case "server":
    case "network":
      return { status: 502, message: "upstream provider error", type: "api_error" };
    default:
      return { status: 500, message, type: "api_error" };
  }
}

/** `POST /v1/chat/completions` (already authenticated). */
export async function handleChatCompletions(req: Request, ctx: GatewayContext): Promise<Response> {
  const body = await readJsonObject(req, { maxBytes: CHAT_COMPLETIONS_MAX_BODY_BYTES });
  if (!body.ok) return openAiError(body.status, body.message);
  const parsed = chatRequest.safeParse(body.value);
  if (!parsed.success) {
    return openAiError(
      400,
      formatIssue("", parsed.error.issues[0]!, body.value).replace(/^\./, ""),
    );
  }
  const p = parsed.data;
  if (p.tools && p.tools.length > 0) {
    return openAiError(
      400,
      "client-side tools are not supported: the agent uses the gateway's own tools",
    );
  }
  if (p.n !== undefined && p.n !== null && p.n !== 1) {
    return openAiError(400, "only n=1 is supported");
  }
  const cfg = ctx.config.config;
  // The agent: a header wins, then the model.
  let agentId: string;
  const fromHeader = (req.headers.get("x-openclaw-agent-id") ?? req.headers.get("x-openclaw-agent"))
    ?.trim();
  const fromModel = agentOfModel(p.model);
  if (fromModel === undefined) return openAiError(400, INVALID_MODEL);
  const chosen = fromHeader || fromModel;
  if (chosen) {
    if (!isAgentIdShape(chosen) || !knownAgentIds(cfg).has(chosen.toLowerCase())) {
      return openAiError(400, `Unknown agent '${chosen}'.`);
    }
    agentId = chosen.toLowerCase();
  } else agentId = defaultAgentId(cfg).toLowerCase();

  // The session: an explicit key, the user's stable one, or a fresh one.
  let sessionKey: string;
  const explicit = req.headers.get("x-openclaw-session-key")?.trim();
  const user = p.user?.trim();
  if (explicit) {
    try {
      sessionKey = canonicalKey(explicit, agentId);
    } catch (e) {
      if (!(e instanceof SessionKeyError)) throw e;
      return openAiError(400, "Invalid `x-openclaw-session-key`.");
    }
    const rest = parseSessionKey(sessionKey)?.rest ?? sessionKey;
    if (sessionKey.length > 512 || /^(cron|hook|subagent|acp):/i.test(rest)) {
      return openAiError(
        400,
        "`x-openclaw-session-key` cannot use reserved internal session namespaces.",
      );
    }
  } else if (user) sessionKey = `agent:${agentId}:openai-user:${user}`;
  else sessionKey = `agent:${agentId}:openai:${crypto.randomUUID()}`;

  const prompt = promptOf(p.messages, !explicit && !user);
  if ("error" in prompt) return openAiError(400, prompt.error);
  if (prompt.message.length > MAX_MESSAGE_CHARS - 4096) {
    return openAiError(400, "the user message is too long");
  }

  const runId = `chatcmpl_${crypto.randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const model = p.model ?? "openclaw";
  const turn = {
    sessionKey,
    message: prompt.message,
    runId,
    idempotencyKey: runId,
    source: "openai",
    ...(prompt.system ? { extraSystemPrompt: prompt.system } : {}),
  };
  if (p.stream !== true) {
    let handle: RunHandle;
    try {
      handle = await ctx.agent.submit(turn);
    } catch (e) {
      return openAiError(503, `could not start the run: ${(e as Error).message}`, {
        type: "api_error",
      });
    }
    // A client that goes away does not stop the run: its reply still lands in the session.
    // (Deno's request.signal would tell, but also fires on success: legacy behaviour.)
    const o = await handle.done;
    if (o.status !== "ok") {
      const f = failureOf(o);
      return openAiError(f.status, f.message, { type: f.type });
    }
    return jsonResponse(200, {
      id: runId,
      object: "chat.completion",
      created,
      model,
      choices: [{
        index: 0,
        message: { role: "assistant", content: o.text },
        finish_reason: o.message?.stopReason === "length" ? "length" : "stop",
      }],
      usage: usageOf(o),
    });
  }
  return await streamCompletion(ctx, turn, {
    id: runId,
    created,
    model,
    includeUsage: p.stream_options?.include_usage === true,
  });
}

/** Answer with a stream of chunks as the run produces text. */
async function streamCompletion(
  ctx: GatewayContext,
  turn: TurnRequest,
  ident: { id: string; created: number; model: string; includeUsage: boolean },
): Promise<Response> {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel() {
      // The client went away: stop the run (its partial reply is kept in the transcript).
      closed = true;
      clearInterval(keepalive);
      ctx.agent.abort(turn.sessionKey, turn.runId);
    },
  });
  const write = (data: string) => {
    if (closed) return;
    try {
      controller.enqueue(encoder.encode(data));
    } catch {
      closed = true;
    }
  };
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    write(
      `data: ${
        JSON.stringify({
          id: ident.id,
          object: "chat.completion.chunk",
          created: ident.created,
          model: ident.model,
          choices,
          ...extra,
        })
      }\n\n`,
    );
  const end = () => {
    write("data: [DONE]\n\n");
    clearInterval(keepalive);
    if (!closed) {
      closed = true;
      try {
        controller.close();
      } catch { /* already closed */ }
    }
  };

  // Text arrives as "the reply so far" for each model round; a new round restarts it.
  let round = "";
  let sent = false;
  const onText = (text: string) => {
    let delta: string;
    if (text.startsWith(round)) delta = text.slice(round.length);
    else delta = (sent ? "\n\n" : "") + text;
    round = text;
    if (!delta) return;
    sent = true;
    chunk([{ index: 0, delta: { content: delta }, finish_reason: null }]);
  };

  chunk([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]);
  let handle: RunHandle;
  try {
    handle = await ctx.agent.submit({ ...turn, onText });
  } catch (e) {
    // Nothing was sent yet: the stream is dropped unread.
    return openAiError(503, `could not start the run: ${(e as Error).message}`, {
      type: "api_error",
    });
  }
  // Declared after submit: cancel and end can only run once the response is out.
  const keepalive = setInterval(() => write(": keep-alive\n\n"), KEEPALIVE_MS);
  void handle.done.then((o) => {
    if (closed) return;
    if (o.status !== "ok") {
      const f = failureOf(o);
      write(`data: ${JSON.stringify({ error: { message: f.message, type: f.type } })}\n\n`);
      end();
      return;
    }
    if (!sent && o.text) chunk([{ index: 0, delta: { content: o.text }, finish_reason: null }]);
    const finish = o.message?.stopReason === "length" ? "length" : "stop";
    chunk([{ index: 0, delta: {}, finish_reason: finish }]);
    if (ident.includeUsage) chunk([], { usage: usageOf(o) });
    end();
  });
  return new Response(stream, {
    status: 200,
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
    },
  });
}
