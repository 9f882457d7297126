/**
 * The Anthropic Messages API provider, on the official `@anthropic-ai/sdk`.
 *
 * The SDK costs ~65 ms and several MB to import, so it is loaded with a
 * dynamic `import()` on the first model call; a gateway that never calls the
 * model never loads it. Only types are imported statically.
 *
 * @module
 */
import type Anthropic from "@anthropic-ai/sdk";
import type {
  Base64ImageSource,
  ContentBlockParam,
  MessageCreateParamsStreaming,
  MessageParam,
  RawMessageStreamEvent,
  Tool,
} from "@anthropic-ai/sdk/resources/messages";
import {
  _abortedError,
  _httpError,
  _pairedToolIds,
  _parseToolArguments,
  _provider,
  _redact,
  _safeUrl,
  _zeroUsage,
  invalidToolArguments,
} from "./openai.ts";
import {
  type Provider,
  type ProviderConfig,
  ProviderError,
  type ProviderRequest,
  type ProviderResult,
  type StopReason,
  type StreamEvent,
  type TextContent,
  type ThinkingContent,
  type ToolCall,
} from "./types.ts";

/** Options of {@link anthropicProvider}. */
export interface AnthropicProviderOptions {
  /** The fetch the SDK uses. Default: the global `fetch`. */
  fetch?: typeof fetch;
}

const DEFAULT_BASE_URL = "https://api.anthropic.com";

/**
 * A provider for the Anthropic Messages API (streaming). The SDK client is
 * created on the first call and kept for this provider object; it never
 * retries (`maxRetries: 0`: the gateway decides from the error's kind) and
 * reads no credentials or base URL from the environment (`cfg` is the only
 * source; `cfg.baseUrl` defaults to `https://api.anthropic.com`; without
 * `cfg.apiKey` a call rejects with kind `auth` before any request).
 * With `thinkingBudget`, `max_tokens` becomes `budget + maxTokens` when
 * `maxTokens` does not exceed the budget (the API requires it to).
 *
 * Decisions: `stop_reason: "refusal"` rejects with a {@link ProviderError} of
 * kind `refusal` (the text streamed so far was already delivered as events);
 * `pause_turn` maps to `stop`, `model_context_window_exceeded` to `length`;
 * thinking without a signature (from another provider) is not sent back;
 * tool calls without a result, and results without a call, are left out of
 * the request (the API rejects orphans); image blocks of user turns go as
 * base64 `image` blocks in their place among the text (one without `data`
 * becomes the text `[image not available]`).
 *
 * @example
 * ```ts
 * const p = anthropicProvider({ id: "anthropic", api: "anthropic-messages", apiKey });
 * const r = await p.stream(
 *   { model: "claude-sonnet-4-5", messages, tools: [], maxTokens: 4096, signal },
 *   (e) => e.type === "text" && console.log(e.delta),
 * );
 * ```
 */
export function anthropicProvider(
  cfg: ProviderConfig,
  opts: AnthropicProviderOptions = {},
): Provider {
  const id = cfg.id;
  const baseURL = (cfg.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
  let client: Promise<Anthropic> | undefined;

  const getClient = (): Promise<Anthropic> => {
    if (!client) {
      client = (async () => {
        const { default: Sdk } = await import("@anthropic-ai/sdk");
        return new Sdk({
          apiKey: cfg.apiKey ?? null,
          baseURL,
          webhookKey: null,
          maxRetries: 0,
          ...(opts.fetch ? { fetch: opts.fetch } : {}),
        });
      })();
      // A failed import is tried again on the next call.
      client.catch(() => client = undefined);
    }
    return client;
  };

  const run = async (req: ProviderRequest, emit: (e: StreamEvent) => void) => {
    if (!cfg.apiKey) {
      throw new ProviderError("auth", `${id} requires an API key and none is configured`);
    }
    let sdk: Anthropic;
    try {
      sdk = await getClient();
    } catch (e) {
      throw new ProviderError("network", `Could not load @anthropic-ai/sdk: ${_errMessage(e)}`, {
        cause: e,
      });
    }
    try {
      const stream = await sdk.messages.create(_anthropicParams(req), { signal: req.signal });
      const onAbort = () => stream.controller.abort();
      req.signal.addEventListener("abort", onAbort, { once: true });
      try {
        return await _consume(id, stream, emit, req.signal);
      } finally {
        req.signal.removeEventListener("abort", onAbort);
      }
    } catch (e) {
      throw _mapError(e, { id, signal: req.signal, baseURL, apiKey: cfg.apiKey });
    }
  };

  return _provider(id, "anthropic-messages", run);
}

/** Map a request to Messages API params. */
function _anthropicParams(req: ProviderRequest): MessageCreateParamsStreaming {
  const budget = req.thinkingBudget && req.thinkingBudget > 0 ? req.thinkingBudget : 0;
  const params: MessageCreateParamsStreaming = {
    model: req.model,
    // The budget is part of max_tokens, which must exceed it.
    max_tokens: budget && req.maxTokens <= budget ? budget + req.maxTokens : req.maxTokens,
    messages: _anthropicMessages(req),
    stream: true,
  };
  if (req.system) params.system = req.system;
  if (budget) params.thinking = { type: "enabled", budget_tokens: budget };
  if (req.tools.length) {
    params.tools = req.tools.map((t): Tool => ({
      name: t.name,
      description: t.description,
      input_schema: { type: "object", ...t.inputSchema } as Tool.InputSchema,
    }));
  }
  return params;
}

function _anthropicMessages(req: ProviderRequest): MessageParam[] {
  const out: { role: "user" | "assistant"; content: ContentBlockParam[] }[] = [];
  const paired = _pairedToolIds(req.messages);
  const push = (role: "user" | "assistant", blocks: ContentBlockParam[]) => {
    if (!blocks.length) return;
    const prev = out.at(-1);
    // Consecutive same-role turns (tool results then a user message) become one.
    if (prev?.role === role) prev.content.push(...blocks);
    else out.push({ role, content: blocks });
  };
  for (const m of req.messages) {
    if (m.role === "user") {
      if (typeof m.content === "string") {
        push("user", m.content ? [{ type: "text", text: m.content }] : []);
        continue;
      }
      // Text and images keep their order.
      const blocks: ContentBlockParam[] = [];
      for (const c of m.content) {
        if (c.type === "text") {
          if (c.text) blocks.push({ type: "text", text: c.text });
        } else if (c.data) {
          blocks.push({
            type: "image",
            source: {
              type: "base64",
              media_type: c.mimeType as Base64ImageSource["media_type"],
              data: c.data,
            },
          });
        } else blocks.push({ type: "text", text: "[image not available]" });
      }
      push("user", blocks);
    } else if (m.role === "toolResult") {
      if (!paired.has(m.toolCallId)) continue;
      const content = m.content.filter((c) => c.text !== "").map((c) => ({
        type: "text" as const,
        text: c.text,
      }));
      push("user", [{
        type: "tool_result",
        tool_use_id: m.toolCallId,
        ...(content.length ? { content } : {}),
        is_error: m.isError,
      }]);
    } else {
      const blocks: ContentBlockParam[] = [];
      for (const b of m.content) {
        if (b.type === "text") {
          if (b.text) blocks.push({ type: "text", text: b.text });
        } else if (b.type === "thinking") {
          if (b.redacted && b.thinkingSignature) {
            blocks.push({ type: "redacted_thinking", data: b.thinkingSignature });
          } else if (b.thinkingSignature) {
            blocks.push({ type: "thinking", thinking: b.thinking, signature: b.thinkingSignature });
          }
        } else if (paired.has(b.id)) {
          const input = invalidToolArguments(b) ? {} : b.arguments;
          blocks.push({ type: "tool_use", id: b.id, name: b.name, input });
        }
      }
      push("assistant", blocks);
    }
  }
  return out;
}

type _Block =
  | TextContent
  | ThinkingContent
  | { type: "toolUse"; id: string; name: string; json: string }
  | { type: "call"; call: ToolCall }
  | null;

async function _consume(
  id: string,
  stream: AsyncIterable<RawMessageStreamEvent>,
  emit: (e: StreamEvent) => void,
  signal: AbortSignal,
): Promise<ProviderResult> {
  const blocks: _Block[] = [];
  const usage = _zeroUsage();
  let stop: string | null = null;
  let model: string | undefined;
  let stopped = false;
  for await (const ev of stream) {
    switch (ev.type) {
      case "message_start": {
        model = ev.message.model;
        const u = ev.message.usage;
        usage.input = u.input_tokens ?? 0;
        usage.output = u.output_tokens ?? 0;
        usage.cacheRead = u.cache_read_input_tokens ?? 0;
        usage.cacheWrite = u.cache_creation_input_tokens ?? 0;
        break;
      }
      case "content_block_start": {
        const b = ev.content_block;
        blocks[ev.index] = b.type === "text"
          ? { type: "text", text: b.text }
          : b.type === "thinking"
          ? { type: "thinking", thinking: b.thinking, thinkingSignature: b.signature }
          : b.type === "redacted_thinking"
          ? { type: "thinking", thinking: "", thinkingSignature: b.data, redacted: true }
          : b.type === "tool_use"
          ? { type: "toolUse", id: b.id, name: b.name, json: "" }
          : null; // server tools: not ours
        if (b.type === "text" && b.text) emit({ type: "text", delta: b.text });
        if (b.type === "thinking" && b.thinking) emit({ type: "thinking", delta: b.thinking });
        break;
      }
      case "content_block_delta": {
        const b = blocks[ev.index];
        const d = ev.delta;
        if (d.type === "text_delta" && b?.type === "text") {
          b.text += d.text;
          emit({ type: "text", delta: d.text });
        } else if (d.type === "thinking_delta" && b?.type === "thinking") {
          b.thinking += d.thinking;
          emit({ type: "thinking", delta: d.thinking });
        } else if (d.type === "signature_delta" && b?.type === "thinking") {
          b.thinkingSignature = (b.thinkingSignature ?? "") + d.signature;
        } else if (d.type === "input_json_delta" && b?.type === "toolUse") {
          b.json += d.partial_json;
        }
        break;
      }
      case "content_block_stop": {
        const b = blocks[ev.index];
        if (b?.type === "toolUse") {
          const call: ToolCall = {
            type: "toolCall",
            id: b.id,
            name: b.name,
            arguments: _parseToolArguments(b.json),
          };
          blocks[ev.index] = { type: "call", call };
          emit({ type: "toolCall", call });
        }
        break;
      }
      case "message_delta": {
        stop = ev.delta.stop_reason ?? stop;
        const u = ev.usage;
        usage.output = u.output_tokens ?? usage.output;
        if (u.input_tokens != null) usage.input = u.input_tokens;
        if (u.cache_read_input_tokens != null) usage.cacheRead = u.cache_read_input_tokens;
        if (u.cache_creation_input_tokens != null) usage.cacheWrite = u.cache_creation_input_tokens;
        break;
      }
      case "message_stop":
        stopped = true;
        break;
    }
  }
  // The SDK ends the iteration quietly when the request is aborted.
  if (signal.aborted) throw _abortedError(id, signal.reason);
  if (!stopped) {
    throw new ProviderError("network", `The stream from ${id} ended before message_stop`);
  }
  if (stop === "refusal") {
    throw new ProviderError("refusal", `${id} declined to continue (stop_reason refusal)`);
  }
  usage.totalTokens = usage.input + usage.output + usage.cacheRead + usage.cacheWrite;
  const content: ProviderResult["content"] = [];
  for (const b of blocks) {
    if (!b || b.type === "toolUse") continue;
    if (b.type === "call") content.push(b.call);
    else if (b.type === "text") {
      if (b.text) content.push(b);
    } else {
      if (!b.thinkingSignature) delete b.thinkingSignature;
      content.push(b);
    }
  }
  const stopReason: StopReason = stop === "max_tokens" || stop === "model_context_window_exceeded"
    ? "length"
    : stop === "tool_use"
    ? "toolUse"
    : "stop";
  return { content, stopReason, usage, ...(model ? { responseModel: model } : {}) };
}

function _mapError(
  e: unknown,
  ctx: { id: string; signal: AbortSignal; baseURL: string; apiKey: string | undefined },
): ProviderError {
  const { id, signal, baseURL, apiKey } = ctx;
  if (e instanceof ProviderError) return e;
  if (signal.aborted) return _abortedError(id, e);
  const err = (e ?? {}) as {
    name?: string;
    message?: string;
    status?: number;
    headers?: Headers;
    type?: string | null;
    apiMessage?: string | null;
    cause?: unknown;
  };
  if (err.name === "APIUserAbortError") return _abortedError(id, e);
  if (err.name === "APIConnectionError" || err.name === "APIConnectionTimeoutError") {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return new ProviderError(
      "network",
      _redact(`Could not reach ${id} at ${_safeUrl(baseURL)} (${err.message}${cause})`, apiKey),
      { cause: e },
    );
  }
  if (err.name && /Error$/.test(err.name) && ("status" in err || "apiMessage" in err)) {
    return _httpError(id, {
      ...(typeof err.status === "number" ? { status: err.status } : {}),
      type: err.type ?? "",
      message: err.apiMessage ?? err.message ?? "",
      headers: err.headers ?? null,
      cause: e,
      apiKey,
    });
  }
  return new ProviderError(
    "network",
    _redact(`The stream from ${id} broke: ${_errMessage(e)}`, apiKey),
    {
      cause: e,
    },
  );
}

function _errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
