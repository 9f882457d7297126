/**
 * A provider for any OpenAI-compatible Chat Completions endpoint (OpenAI,
 * Ollama, llama.cpp, vLLM, LM Studio): plain `fetch` and our own SSE parsing,
 * no dependency. Also home of the small helpers both providers share
 * (abort racing, retry-after, tool-argument parsing, key redaction).
 *
 * @module
 */
import {
  type ImageContent,
  type ModelMessage,
  type Provider,
  type ProviderConfig,
  ProviderError,
  type ProviderErrorKind,
  type ProviderRequest,
  type ProviderResult,
  type StopReason,
  type StreamEvent,
  type TextContent,
  type ThinkingContent,
  type ToolCall,
} from "./types.ts";

export {
  _parseToolArguments,
  INVALID_TOOL_ARGUMENTS,
  type InvalidToolArguments,
  invalidToolArguments,
} from "./tool_args.ts";
import { _parseToolArguments, invalidToolArguments } from "./tool_args.ts";

/** `retry-after-ms` (ms) or `retry-after` (seconds or an HTTP date) as milliseconds. */
export function _retryAfterMs(headers: Headers | undefined | null): number | undefined {
  if (!headers) return undefined;
  const ms = Number(headers.get("retry-after-ms") ?? NaN);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const ra = headers.get("retry-after");
  if (ra === null || ra.trim() === "") return undefined;
  const s = Number(ra);
  if (Number.isFinite(s) && s >= 0) return Math.round(s * 1000);
  const at = Date.parse(ra);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** Replace every occurrence of `secret` in `text` (no-op for short or absent secrets). */
export function _redact(text: string, secret: string | undefined): string {
  return secret && secret.length >= 4 ? text.split(secret).join("[redacted]") : text;
}

/** A base URL without credentials, for error messages. */
export function _safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.href.replace(/\/$/, "");
  } catch {
    return "(invalid URL)";
  }
}

/** The error an aborted request rejects with. */
export function _abortedError(provider: string, cause?: unknown): ProviderError {
  return new ProviderError("aborted", `The request to ${provider} was aborted`, { cause });
}

/**
 * Run `work` but reject as soon as `signal` aborts (without waiting for the
 * stream to notice); `onSettle` runs once either way, so late events can be dropped.
 */
export function _raceAbort<T>(
  signal: AbortSignal,
  opts: { provider: string; work: () => Promise<T>; onSettle: () => void },
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const settle = (fn: () => void) => {
      if (done) return;
      done = true;
      signal.removeEventListener("abort", onAbort);
      opts.onSettle();
      fn();
    };
    const onAbort = () => settle(() => reject(_abortedError(opts.provider, signal.reason)));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    opts.work().then(
      (v) => settle(() => resolve(v)),
      (e) => settle(() => reject(signal.aborted ? _abortedError(opts.provider, e) : e)),
    );
  });
}

/**
 * A {@link Provider} around `run`: the call rejects as soon as the request's
 * signal aborts, and events that arrive after it settled are dropped.
 */
export function _provider(
  id: string,
  api: Provider["api"],
  run: (req: ProviderRequest, emit: (e: StreamEvent) => void) => Promise<ProviderResult>,
): Provider {
  return {
    id,
    api,
    stream(req, onEvent) {
      let live = true;
      const emit = (e: StreamEvent) => {
        if (live) onEvent(e);
      };
      return _raceAbort(req.signal, {
        provider: id,
        work: () => run(req, emit),
        onSettle: () => live = false,
      });
    },
  };
}

const _CONTEXT_RE =
  /prompt is too long|context[ _-]?(length|window|size)|maximum context|exceeds? the (available |model'?s? )?(maximum )?context|too many tokens/i;

/** Whether an API error message says the prompt does not fit the model. */
export function _saysContextLength(message: string): boolean {
  return _CONTEXT_RE.test(message);
}

/**
 * The error kind for an HTTP status (or, mid-stream, an error type/code) and
 * the API's message.
 */
export function _kindOf(
  status: number | undefined,
  type: string,
  message: string,
): ProviderErrorKind {
  if (status === 401 || status === 403) return "auth";
  if (status === 429) return "rate_limit";
  if (status === 503 || status === 529) return "overloaded";
  if (status !== undefined && status >= 400 && status < 500) {
    return type === "context_length_exceeded" || _saysContextLength(message)
      ? "context_length"
      : "bad_request";
  }
  if (status !== undefined && status >= 500) return "server";
  // No status: an error frame inside a 200 stream; go by type/code.
  if (/overloaded/.test(type)) return "overloaded";
  if (/rate_limit/.test(type)) return "rate_limit";
  if (/authentication|permission|invalid_api_key/.test(type)) return "auth";
  if (type === "context_length_exceeded" || _saysContextLength(message)) return "context_length";
  if (/invalid_request|not_found|request_too_large/.test(type)) return "bad_request";
  return "server";
}

/** Build the ProviderError for a failed HTTP response or an error frame. */
export function _httpError(
  provider: string,
  info: {
    status?: number;
    type: string;
    message: string;
    headers?: Headers | null;
    cause?: unknown;
    /** Redacted from the message. */
    apiKey: string | undefined;
  },
): ProviderError {
  const apiKey = info.apiKey;
  const kind = _kindOf(info.status, info.type, info.message);
  const what = _redact(info.message, apiKey) || info.type || "no message";
  const where = info.status ? `${info.status}` : "stream error";
  const message = kind === "auth"
    ? apiKey
      ? `The API key for ${provider} was rejected (${where}: ${what})`
      : `${provider} requires an API key and none is configured (${where}: ${what})`
    : `${provider} answered ${where}${info.type ? ` ${info.type}` : ""}: ${what}`;
  const retryAfterMs = _retryAfterMs(info.headers);
  return new ProviderError(kind, message, {
    ...(info.status !== undefined ? { status: info.status } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    cause: info.cause,
  });
}

/** Tool calls that have a result, and results whose call is present (APIs reject orphans). */
export function _pairedToolIds(messages: ModelMessage[]): Set<string> {
  const calls = new Set<string>();
  const results = new Set<string>();
  for (const m of messages) {
    if (m.role === "assistant") {
      for (const b of m.content) if (b.type === "toolCall") calls.add(b.id);
    } else if (m.role === "toolResult") results.add(m.toolCallId);
  }
  return new Set([...calls].filter((id) => results.has(id)));
}

/** Empty usage. */
export function _zeroUsage(): ProviderResult["usage"] {
  return { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, totalTokens: 0 };
}

// ---------------------------------------------------------------------------

/** Options of {@link openaiProvider}. */
export interface OpenAIProviderOptions {
  /** The fetch to use. Default: the global `fetch`. */
  fetch?: typeof fetch;
}

type _Json = Record<string, unknown>;

/**
 * A provider for an OpenAI-compatible `POST {baseUrl}/chat/completions`
 * (streaming). `cfg.baseUrl` includes the version path, e.g.
 * `http://127.0.0.1:11434/v1` (the default is `https://api.openai.com/v1`);
 * `Authorization: Bearer` is sent only when `cfg.apiKey` is set.
 *
 * Decisions: thinking blocks are never sent back (these servers take no
 * signatures); a user turn with images is sent as content parts (`text`,
 * then `image_url` with a `data:` URL), one without as a plain string;
 * `content_filter` rejects with kind `refusal`; tool-call arguments that are
 * not a JSON object arrive as the {@link INVALID_TOOL_ARGUMENTS} marker;
 * input usage excludes cached tokens (`input = prompt_tokens - cached_tokens`),
 * so `totalTokens` is the sum of parts.
 *
 * @example
 * ```ts
 * const p = openaiProvider({ id: "ollama", api: "openai-completions", baseUrl: "http://127.0.0.1:11434/v1" });
 * const r = await p.stream({ model: "qwen3", messages, tools: [], maxTokens: 1024, signal }, (e) => {});
 * ```
 */
export function openaiProvider(cfg: ProviderConfig, opts: OpenAIProviderOptions = {}): Provider {
  const base = (cfg.baseUrl ?? "https://api.openai.com/v1").replace(/\/+$/, "");
  const doFetch = opts.fetch ?? fetch;
  const id = cfg.id;

  const run = async (req: ProviderRequest, emit: (e: StreamEvent) => void) => {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      accept: "text/event-stream",
    };
    if (cfg.apiKey) headers.authorization = `Bearer ${cfg.apiKey}`;
    let res: Response;
    try {
      res = await doFetch(`${base}/chat/completions`, {
        method: "POST",
        headers,
        body: JSON.stringify(_openaiBody(req)),
        signal: req.signal,
      });
    } catch (e) {
      if (req.signal.aborted) throw _abortedError(id, e);
      throw new ProviderError(
        "network",
        `Could not reach ${id} at ${_safeUrl(base)}: ${_redact(_errText(e), cfg.apiKey)}`,
        { cause: e },
      );
    }
    if (!res.ok) throw await _responseError(id, res, cfg.apiKey);
    if (!res.body) throw new ProviderError("network", `${id} sent an empty response body`);
    return await _readStream(id, res.body, emit, cfg.apiKey);
  };

  return _provider(id, "openai-completions", run);
}

function _errText(e: unknown): string {
  if (e instanceof Error) {
    const c = e.cause instanceof Error ? `: ${e.cause.message}` : "";
    return e.message + c;
  }
  return String(e);
}

async function _responseError(
  id: string,
  res: Response,
  apiKey: string | undefined,
): Promise<ProviderError> {
  let text = "";
  try {
    text = await res.text();
  } catch { /* body lost */ }
  let type = "";
  let message = text.slice(0, 500);
  try {
    const j = JSON.parse(text);
    const err = j?.error ?? j;
    if (typeof err === "string") message = err;
    else if (err && typeof err === "object") {
      if (typeof err.message === "string") message = err.message;
      // `code` is the more specific one (context_length_exceeded, invalid_api_key).
      type = typeof err.code === "string" ? err.code : typeof err.type === "string" ? err.type : "";
    }
  } catch { /* not JSON */ }
  return _httpError(id, { status: res.status, type, message, headers: res.headers, apiKey });
}

function _openaiBody(req: ProviderRequest): _Json {
  const body: _Json = {
    model: req.model,
    messages: _openaiMessages(req),
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: req.maxTokens,
  };
  if (req.tools.length) {
    body.tools = req.tools.map((t) => ({
      type: "function",
      function: { name: t.name, description: t.description, parameters: t.inputSchema },
    }));
  }
  return body;
}

function _text(content: string | (TextContent | ImageContent)[]): string {
  return typeof content === "string"
    ? content
    : content.filter((c): c is TextContent => c.type === "text").map((c) => c.text).join("\n");
}

/**
 * A user turn's content: a string, or (with images) parts in order, images as
 * `image_url` data URLs.
 */
function _userContent(content: string | (TextContent | ImageContent)[]): string | _Json[] {
  if (typeof content === "string" || !content.some((c) => c.type === "image")) {
    return _text(content);
  }
  const parts: _Json[] = [];
  for (const c of content) {
    if (c.type === "text") {
      if (c.text) parts.push({ type: "text", text: c.text });
    } else if (c.data) {
      parts.push({
        type: "image_url",
        image_url: { url: `data:${c.mimeType};base64,${c.data}` },
      });
    } else parts.push({ type: "text", text: "[image not available]" });
  }
  return parts;
}

/** Map the transcript to Chat Completions messages. */
function _openaiMessages(req: Pick<ProviderRequest, "system" | "messages">): _Json[] {
  const out: _Json[] = [];
  if (req.system) out.push({ role: "system", content: req.system });
  const paired = _pairedToolIds(req.messages);
  for (const m of req.messages) {
    if (m.role === "user") out.push({ role: "user", content: _userContent(m.content) });
    else if (m.role === "toolResult") {
      if (!paired.has(m.toolCallId)) continue;
      out.push({ role: "tool", tool_call_id: m.toolCallId, content: _text(m.content) });
    } else {
      const text = m.content.filter((b) => b.type === "text").map((b) => b.text).join("");
      const calls = m.content.filter((b): b is ToolCall =>
        b.type === "toolCall" && paired.has(b.id)
      )
        .map((c) => {
          const bad = invalidToolArguments(c);
          return {
            id: c.id,
            type: "function",
            function: { name: c.name, arguments: bad ? bad.raw : JSON.stringify(c.arguments) },
          };
        });
      if (!text && !calls.length) continue;
      const msg: _Json = { role: "assistant", content: text || null };
      if (calls.length) msg.tool_calls = calls;
      out.push(msg);
    }
  }
  return out;
}

interface _PendingCall {
  id: string;
  name: string;
  args: string;
  /** Position in the result's content. */
  slot: number;
}

async function _readStream(
  id: string,
  body: ReadableStream<Uint8Array>,
  emit: (e: StreamEvent) => void,
  apiKey: string | undefined,
): Promise<ProviderResult> {
  const content: (TextContent | ThinkingContent | ToolCall | null)[] = [];
  const calls = new Map<number, _PendingCall>();
  const usage = _zeroUsage();
  let finish: string | null = null;
  let model: string | undefined;
  let sawDone = false;
  let last: TextContent | ThinkingContent | undefined;

  const flushCalls = () => {
    for (const [, c] of [...calls].sort((a, b) => a[0] - b[0])) {
      const call: ToolCall = {
        type: "toolCall",
        id: c.id,
        name: c.name,
        arguments: _parseToolArguments(c.args),
      };
      content[c.slot] = call;
      emit({ type: "toolCall", call });
    }
    calls.clear();
  };

  const onChunk = (j: _Json) => {
    if (j.error) {
      const e = j.error as _Json | string;
      const message = typeof e === "string" ? e : String(e.message ?? "");
      const type = typeof e === "string"
        ? ""
        : String(e.code && typeof e.code === "string" ? e.code : e.type ?? "");
      throw _httpError(id, { type, message, apiKey });
    }
    if (typeof j.model === "string") model = j.model;
    const u = j.usage as _Json | null | undefined;
    if (u && typeof u === "object") {
      const cached = Number((u.prompt_tokens_details as _Json | undefined)?.cached_tokens ?? 0);
      usage.cacheRead = cached;
      usage.input = Math.max(0, Number(u.prompt_tokens ?? 0) - cached);
      usage.output = Number(u.completion_tokens ?? 0);
      usage.totalTokens = usage.input + usage.output + usage.cacheRead + usage.cacheWrite;
    }
    const choice = (j.choices as _Json[] | undefined)?.[0];
    if (!choice) return;
    const delta = (choice.delta ?? {}) as _Json;
    const reasoning = delta.reasoning_content ?? delta.reasoning;
    if (typeof reasoning === "string" && reasoning) {
      if (last?.type !== "thinking") content.push(last = { type: "thinking", thinking: "" });
      last.thinking += reasoning;
      emit({ type: "thinking", delta: reasoning });
    }
    if (typeof delta.content === "string" && delta.content) {
      if (last?.type !== "text") content.push(last = { type: "text", text: "" });
      last.text += delta.content;
      emit({ type: "text", delta: delta.content });
    }
    if (Array.isArray(delta.tool_calls)) {
      for (const tc of delta.tool_calls as _Json[]) {
        const fn = (tc.function ?? {}) as _Json;
        let index = typeof tc.index === "number" ? tc.index : undefined;
        if (index === undefined) {
          // Servers that omit `index` send each call whole: match by id or append.
          const byId = [...calls].find(([, c]) => tc.id && c.id === tc.id);
          index = byId?.[0] ?? (calls.size ? Math.max(...calls.keys()) + 1 : 0);
        }
        let c = calls.get(index);
        if (!c) {
          c = { id: "", name: "", args: "", slot: content.length };
          content.push(null);
          last = undefined;
          calls.set(index, c);
        }
        if (typeof tc.id === "string" && tc.id) c.id = tc.id;
        if (typeof fn.name === "string" && fn.name) c.name = fn.name;
        if (typeof fn.arguments === "string") c.args += fn.arguments;
        else if (fn.arguments && typeof fn.arguments === "object") {
          c.args += JSON.stringify(fn.arguments);
        }
        if (!c.id) c.id = `call_${index}_${crypto.randomUUID().slice(0, 8)}`;
      }
    }
    if (typeof choice.finish_reason === "string") {
      finish = choice.finish_reason;
      flushCalls();
    }
  };

  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let data: string[] = [];
  const dispatch = () => {
    if (!data.length) return;
    const payload = data.join("\n");
    data = [];
    if (payload.trim() === "[DONE]") {
      sawDone = true;
      return;
    }
    let j: unknown;
    try {
      j = JSON.parse(payload);
    } catch (e) {
      throw new ProviderError("network", `${id} sent an unreadable stream chunk`, { cause: e });
    }
    if (j && typeof j === "object") onChunk(j as _Json);
  };
  try {
    while (!sawDone) {
      let r: ReadableStreamReadResult<string>;
      try {
        r = await reader.read();
      } catch (e) {
        if (e instanceof ProviderError) throw e;
        throw new ProviderError("network", `The stream from ${id} broke: ${_errText(e)}`, {
          cause: e,
        });
      }
      if (r.done) break;
      buf += r.value;
      let nl: number;
      while (!sawDone && (nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith("\r\n", nl) ? 2 : 1));
        if (line === "") dispatch();
        else if (line.startsWith("data:")) data.push(line.slice(line[5] === " " ? 6 : 5));
        // `event:`, `id:`, `retry:` and `:` comments are ignored.
      }
    }
    if (!sawDone) {
      if (buf.startsWith("data:")) data.push(buf.slice(buf[5] === " " ? 6 : 5));
      dispatch();
    }
  } finally {
    // Stop the HTTP stream if we leave early (error frame, [DONE] with trailing bytes).
    reader.cancel().catch(() => {});
  }
  if (!sawDone && finish === null) {
    throw new ProviderError("network", `The stream from ${id} ended before the response finished`);
  }
  flushCalls();
  if (finish === "content_filter") {
    throw new ProviderError("refusal", `${id} stopped the response (finish_reason content_filter)`);
  }
  const blocks = content.filter((b): b is TextContent | ThinkingContent | ToolCall => b !== null);
  const hasCalls = blocks.some((b) => b.type === "toolCall");
  const stopReason: StopReason = finish === "length"
    ? "length"
    : finish === "tool_calls" || finish === "function_call" || hasCalls
    ? "toolUse"
    : "stop";
  return {
    content: blocks,
    stopReason,
    usage,
    ...(model !== undefined ? { responseModel: model } : {}),
  };
}
