/**
 * A fake OpenAI-compatible Chat Completions server (what Ollama, llama.cpp and
 * vLLM expose) on a real socket, for provider tests.
 *
 * `POST /v1/chat/completions` with `stream: true` answers `text/event-stream`
 * chunks in the real format, `data: {"id":..,"object":"chat.completion.chunk",
 * "created":..,"model":..,"choices":[{"index":0,"delta":{...},"finish_reason":null}]}`:
 * first a role chunk, then the script's parts, then a chunk with `finish_reason`,
 * then (when the request asked `stream_options.include_usage`) a usage chunk with
 * `"choices":[]`, then `data: [DONE]`. `stream: false` answers one
 * `chat.completion` object. Errors use the real body
 * `{"error":{"message":..,"type":..,"param":null,"code":..}}`.
 *
 * Auth: when `apiKey` is set, `authorization: Bearer KEY` is required; a wrong
 * key gets 401 `invalid_api_key` whose message echoes the key it was given
 * (unmasked, as some proxies do) so tests can prove the provider redacts it.
 *
 * Scripts and the request log work as in tests/_fake_anthropic.ts: queued
 * scripts first (`fake.script(a, b)`), then a responder function
 * (`fake.script((body) => script)`).
 *
 * ```ts
 * const fake = await startFakeOpenAI({ apiKey: "k" });
 * fake.script({ parts: [{ content: "Hel" }, { content: "lo" }], delayMs: 20 });
 * // ... openaiProvider({ id: "ollama", api: "openai-completions", baseUrl: `${fake.url}/v1` })
 * await fake.close();
 * ```
 *
 * @module
 */
import { _json, _startFakeCore, type FakeRequest } from "./_fake_anthropic.ts";

/** One streamed piece: a delta of text, of reasoning, of a tool call, or a raw chunk object. */
export type OpenAIFakePart =
  | { content: string }
  | { reasoning: string; field?: "reasoning_content" | "reasoning" }
  | { tool: { index: number; id?: string; name?: string; args?: string } }
  /** Sent as the `data:` JSON as is (e.g. `{ error: {...} }` mid-stream). */
  | { raw: unknown };

/** How the fake answers one request. */
export interface OpenAIScript {
  parts?: OpenAIFakePart[];
  /** Default `tool_calls` when a tool part is present, else `stop`; `null` sends no finish chunk. */
  finishReason?: string | null;
  usage?: { prompt_tokens: number; completion_tokens: number; cached_tokens?: number };
  model?: string;
  /** Wait this long before every chunk after the role chunk. */
  delayMs?: number;
  /** Send the role chunk, then nothing until the client disconnects. */
  hang?: boolean;
  /** End the body without `data: [DONE]` (and without finish chunk when finishReason is null). */
  noDone?: boolean;
  /** Answer with this HTTP error instead. */
  error?: {
    status: number;
    message: string;
    type: string;
    code?: string | null;
    retryAfterSeconds?: number;
  };
}

/** Computes a script from the parsed request body. */
export type OpenAIResponder = (body: Record<string, unknown>, req: FakeRequest) => OpenAIScript;

/** A running fake. */
export interface FakeOpenAI extends AsyncDisposable {
  /** Server root, e.g. `http://127.0.0.1:PORT` (the provider's baseUrl is `${url}/v1`). */
  url: string;
  port: number;
  requests: FakeRequest[];
  /** Queue scripts (one per request), or set the responder used when the queue is empty. */
  script(...items: OpenAIScript[] | [OpenAIResponder]): void;
  close(): Promise<void>;
}

/** Options of {@link startFakeOpenAI}. */
export interface FakeOpenAIOptions {
  /** Required bearer key; default none (any request is accepted, like Ollama). */
  apiKey?: string;
}

function _err(message: string, type: string, code: string | null = null) {
  return { error: { message, type, param: null, code } };
}

/** Start a fake OpenAI-compatible server on 127.0.0.1 with a free port. */
export async function startFakeOpenAI(opts: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const queue: OpenAIScript[] = [];
  let responder: OpenAIResponder | undefined;
  let seq = 0;

  const core = await _startFakeCore((req, rec, sse) => {
    if (req.method !== "POST" || rec.path !== "/v1/chat/completions") {
      return _json(
        404,
        _err(`Unknown request URL: ${req.method} ${rec.path}`, "invalid_request_error"),
      );
    }
    if (opts.apiKey !== undefined) {
      const given = rec.headers["authorization"]?.replace(/^Bearer /i, "") ?? "";
      if (given !== opts.apiKey) {
        return _json(
          401,
          _err(`Incorrect API key provided: ${given}.`, "invalid_request_error", "invalid_api_key"),
        );
      }
    }
    const s = queue.shift() ?? responder?.(rec.body, rec);
    if (!s) return _json(500, _err("fake: no script for this request", "server_error"));
    if (s.error) {
      const headers: Record<string, string> = {};
      if (s.error.retryAfterSeconds !== undefined) {
        headers["retry-after"] = String(s.error.retryAfterSeconds);
      }
      return _json(s.error.status, _err(s.error.message, s.error.type, s.error.code), headers);
    }
    const id = `chatcmpl-fake${++seq}`;
    const created = Math.floor(Date.now() / 1000);
    const model = s.model ?? String(rec.body.model ?? "fake-model");
    const parts = s.parts ?? [];
    const finish = s.finishReason === undefined
      ? (parts.some((p) => "tool" in p) ? "tool_calls" : "stop")
      : s.finishReason;
    const u = s.usage ?? { prompt_tokens: 12, completion_tokens: 7 };
    const usage = {
      prompt_tokens: u.prompt_tokens,
      completion_tokens: u.completion_tokens,
      total_tokens: u.prompt_tokens + u.completion_tokens,
      ...(u.cached_tokens !== undefined
        ? { prompt_tokens_details: { cached_tokens: u.cached_tokens } }
        : {}),
    };

    if (rec.body.stream !== true) {
      const text = parts.map((p) => "content" in p ? p.content : "").join("");
      return _json(200, {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [{
          index: 0,
          message: { role: "assistant", content: text },
          finish_reason: finish,
        }],
        usage,
      });
    }

    const chunk = (delta: unknown, finish_reason: string | null = null) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      system_fingerprint: "fp_fake",
      choices: [{ index: 0, delta, logprobs: null, finish_reason }],
    });
    return sse(async (w) => {
      const data = (v: unknown) => w.send(`data: ${JSON.stringify(v)}\n\n`);
      if (!await data(chunk({ role: "assistant", content: "" }))) return;
      if (s.hang) return await w.waitForDisconnect();
      const step = async (v: unknown) => (s.delayMs ? await w.sleep(s.delayMs) : true) && data(v);
      for (const p of parts) {
        let v: unknown;
        if ("raw" in p) v = p.raw;
        else if ("content" in p) v = chunk({ content: p.content });
        else if ("reasoning" in p) v = chunk({ [p.field ?? "reasoning_content"]: p.reasoning });
        else {
          const t = p.tool;
          const fn: Record<string, string> = {};
          if (t.name !== undefined) fn.name = t.name;
          if (t.args !== undefined) fn.arguments = t.args;
          v = chunk({
            tool_calls: [{
              index: t.index,
              ...(t.id !== undefined ? { id: t.id, type: "function" } : {}),
              function: fn,
            }],
          });
        }
        if (!await step(v)) return;
      }
      if (finish !== null && !await step(chunk({}, finish))) return;
      const so = rec.body.stream_options as { include_usage?: boolean } | undefined;
      if (so?.include_usage && !await step({ ...chunk({}), choices: [], usage })) return;
      if (s.noDone || (s.delayMs && !await w.sleep(s.delayMs))) return;
      await w.send("data: [DONE]\n\n");
    });
  });

  return {
    url: core.url,
    port: core.port,
    requests: core.requests,
    script(...items) {
      if (typeof items[0] === "function") {
        responder = items[0];
        queue.length = 0;
      } else queue.push(...items as OpenAIScript[]);
    },
    close: core.close,
    [Symbol.asyncDispose]: core.close,
  };
}
