/**
 * A fake Anthropic Messages API on a real socket, for provider tests.
 *
 * It speaks the wire format of `POST /v1/messages`:
 * - auth: `x-api-key: KEY` or `authorization: Bearer KEY` (the SDK 1.x sends
 *   the latter); anything else gets 401 with the real body
 *   `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`;
 *   a missing `anthropic-version` gets 400 `invalid_request_error`.
 * - `stream: true`: `text/event-stream` with `event:` lines: `message_start`, `ping`,
 *   `content_block_start` / `content_block_delta` (`text_delta`, `thinking_delta`,
 *   `signature_delta`, `input_json_delta`) / `content_block_stop`, `message_delta`
 *   (stop_reason, usage.output_tokens), `message_stop`; a mid-stream failure is an
 *   `event: error` frame, as the API sends it.
 * - `stream: false`: one JSON `message` object.
 *
 * Each request is answered by a {@link AnthropicScript}: queued ones first
 * (`fake.script(a, b)`, one per request), then the responder function
 * (`fake.script((body) => script)`); with neither, a 500 `api_error` says so.
 * Every request is recorded in `fake.requests` with its headers, parsed body and
 * how its response ended (`complete` or `disconnected`: the client went away
 * before the last byte, which is how abort tests prove the stream was cancelled).
 *
 * ```ts
 * const fake = await startFakeAnthropic({ apiKey: "k" });
 * fake.script({ blocks: [{ type: "text", text: ["Hel", "lo"] }], delayMs: 20 });
 * // ... anthropicProvider({ id: "anthropic", api: "anthropic-messages", apiKey: "k", baseUrl: fake.url })
 * await fake.close();
 * ```
 *
 * @module
 */

/** One content block the fake streams. Strings in arrays are the chunks, in order. */
export type AnthropicFakeBlock =
  | { type: "text"; text: string | string[] }
  | { type: "thinking"; thinking: string | string[]; signature: string }
  | { type: "redacted_thinking"; data: string }
  | {
    type: "tool_use";
    /** Default `toolu_fake_<n>`. */
    id?: string;
    name: string;
    /** `partial_json` pieces (joined they must be the JSON input), or the input itself (one piece). */
    input: string[] | Record<string, unknown>;
  };

/** A failure response instead of a message (real status and error body). */
export interface AnthropicFakeError {
  status: number;
  /** `rate_limit_error`, `overloaded_error`, `invalid_request_error`, `api_error`, ... */
  type: string;
  message: string;
  /** Sent as the `retry-after` header (seconds). */
  retryAfterSeconds?: number;
}

/** How the fake answers one request. */
export interface AnthropicScript {
  blocks?: AnthropicFakeBlock[];
  /** Default `tool_use` when a tool_use block is present, else `end_turn`. */
  stopReason?: string;
  usage?: {
    input_tokens?: number;
    output_tokens?: number;
    cache_read_input_tokens?: number;
    cache_creation_input_tokens?: number;
  };
  /** The model reported in `message_start`; default the requested one. */
  model?: string;
  /** Wait this long before every event after `message_start`. */
  delayMs?: number;
  /** Send headers and `message_start`, then nothing until the client disconnects. */
  hang?: boolean;
  /** Answer with this HTTP error instead. */
  error?: AnthropicFakeError;
  /** Send an `event: error` after `afterBlocks` blocks (default 0) and end the stream. */
  streamError?: { type: string; message: string; afterBlocks?: number };
}

/** Computes a script from the parsed request body. */
export type AnthropicResponder = (
  body: Record<string, unknown>,
  req: FakeRequest,
) => AnthropicScript;

/** One request the fake received. */
export interface FakeRequest {
  method: string;
  path: string;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  /** The parsed JSON body (`{}` when it was not JSON). */
  body: Record<string, unknown>;
  /**
   * `open` while the response is being sent; then `complete`, `disconnected` (the
   * client went away first) or `closed` (the fake was closed first).
   */
  state: "open" | FakeEnd;
  /** Resolves when the response ended. */
  ended: Promise<FakeEnd>;
  /** `performance.now()` when each `text_delta` event was written (benchmarks compare it). */
  textDeltaTimes: number[];
}

/** How a response ended. */
export type FakeEnd = "complete" | "disconnected" | "closed";

/** A running fake. */
export interface FakeAnthropic extends AsyncDisposable {
  /** Base URL to give the SDK, e.g. `http://127.0.0.1:PORT`. */
  url: string;
  port: number;
  /** Every request, in arrival order. */
  requests: FakeRequest[];
  /** Queue scripts (one per request), or set the responder used when the queue is empty. */
  script(...items: AnthropicScript[] | [AnthropicResponder]): void;
  /** Stop: ends open streams and shuts the server down. */
  close(): Promise<void>;
}

/** Options of {@link startFakeAnthropic}. */
export interface FakeAnthropicOptions {
  /** The key the fake accepts. Default `test-anthropic-key`. */
  apiKey?: string;
}

/** Start a fake Anthropic API on 127.0.0.1 with a free port. */
export async function startFakeAnthropic(opts: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
  const apiKey = opts.apiKey ?? "test-anthropic-key";
  const queue: AnthropicScript[] = [];
  let responder: AnthropicResponder | undefined;
  let toolSeq = 0;
  let msgSeq = 0;

  const core = await _startFakeCore((req, rec, sse) => {
    if (req.method !== "POST" || rec.path !== "/v1/messages") {
      return _json(404, {
        type: "error",
        error: { type: "not_found_error", message: `${req.method} ${rec.path} not found` },
      });
    }
    const given = rec.headers["x-api-key"] ??
      rec.headers["authorization"]?.replace(/^Bearer /i, "");
    if (given !== apiKey) {
      return _json(401, {
        type: "error",
        error: { type: "authentication_error", message: "invalid x-api-key" },
      });
    }
    if (!rec.headers["anthropic-version"]) {
      return _json(400, {
        type: "error",
        error: {
          type: "invalid_request_error",
          message: "anthropic-version: header is required",
        },
      });
    }
    const s = queue.shift() ?? responder?.(rec.body, rec);
    if (!s) return _json(500, _errorBody("api_error", "fake: no script for this request"));
    if (s.error) {
      const headers: Record<string, string> = {};
      if (s.error.retryAfterSeconds !== undefined) {
        headers["retry-after"] = String(s.error.retryAfterSeconds);
      }
      return _json(s.error.status, _errorBody(s.error.type, s.error.message), headers);
    }
    const model = s.model ?? String(rec.body.model ?? "claude-fake");
    const id = `msg_fake_${++msgSeq}`;
    const blocks = (s.blocks ?? []).map((b) =>
      b.type === "tool_use" && !b.id ? { ...b, id: `toolu_fake_${++toolSeq}` } : b
    );
    const stopReason = s.stopReason ??
      (blocks.some((b) => b.type === "tool_use") ? "tool_use" : "end_turn");
    const usage = {
      input_tokens: s.usage?.input_tokens ?? 10,
      cache_creation_input_tokens: s.usage?.cache_creation_input_tokens ?? 0,
      cache_read_input_tokens: s.usage?.cache_read_input_tokens ?? 0,
      output_tokens: s.usage?.output_tokens ?? 5,
    };

    if (rec.body.stream !== true) {
      return _json(200, {
        id,
        type: "message",
        role: "assistant",
        model,
        content: blocks.map(_wholeBlock),
        stop_reason: stopReason,
        stop_sequence: null,
        usage,
      });
    }

    return sse(async (w) => {
      const ev = (type: string, data: unknown) => {
        const sent = w.send(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
        if ((data as { delta?: { type?: string } }).delta?.type === "text_delta") {
          rec.textDeltaTimes.push(performance.now());
        }
        return sent;
      };
      if (
        !await ev("message_start", {
          type: "message_start",
          message: {
            id,
            type: "message",
            role: "assistant",
            model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { ...usage, output_tokens: 1 },
          },
        })
      ) return;
      if (s.hang) return await w.waitForDisconnect();
      const step = async (type: string, data: unknown) =>
        (s.delayMs ? await w.sleep(s.delayMs) : true) && await ev(type, data);
      if (!await step("ping", { type: "ping" })) return;
      for (const [index, b] of blocks.entries()) {
        if (s.streamError && (s.streamError.afterBlocks ?? 0) === index) break;
        if (!await step("content_block_start", _startBlock(index, b))) return;
        for (const delta of _deltas(b)) {
          if (!await step("content_block_delta", { type: "content_block_delta", index, delta })) {
            return;
          }
        }
        if (!await step("content_block_stop", { type: "content_block_stop", index })) return;
      }
      if (s.streamError) {
        await step("error", _errorBody(s.streamError.type, s.streamError.message));
        return;
      }
      if (
        !await step("message_delta", {
          type: "message_delta",
          delta: { stop_reason: stopReason, stop_sequence: null },
          usage: { output_tokens: usage.output_tokens },
        })
      ) return;
      await step("message_stop", { type: "message_stop" });
    }, { "request-id": `req_fake_${msgSeq}` });
  });

  return {
    url: core.url,
    port: core.port,
    requests: core.requests,
    script(...items) {
      if (typeof items[0] === "function") {
        responder = items[0];
        queue.length = 0;
      } else queue.push(...items as AnthropicScript[]);
    },
    close: core.close,
    [Symbol.asyncDispose]: core.close,
  };
}

function _errorBody(type: string, message: string) {
  return { type: "error", error: { type, message } };
}

function _chunks(v: string | string[]): string[] {
  return typeof v === "string" ? [v] : v;
}

function _inputPieces(b: { input: string[] | Record<string, unknown> }): string[] {
  return Array.isArray(b.input) ? b.input : [JSON.stringify(b.input)];
}

function _wholeBlock(b: AnthropicFakeBlock): Record<string, unknown> {
  switch (b.type) {
    case "text":
      return { type: "text", text: _chunks(b.text).join("") };
    case "thinking":
      return { type: "thinking", thinking: _chunks(b.thinking).join(""), signature: b.signature };
    case "redacted_thinking":
      return { type: "redacted_thinking", data: b.data };
    case "tool_use": {
      const json = _inputPieces(b).join("");
      return { type: "tool_use", id: b.id, name: b.name, input: json ? JSON.parse(json) : {} };
    }
  }
}

function _startBlock(index: number, b: AnthropicFakeBlock): Record<string, unknown> {
  const content_block = b.type === "text"
    ? { type: "text", text: "" }
    : b.type === "thinking"
    ? { type: "thinking", thinking: "", signature: "" }
    : b.type === "redacted_thinking"
    ? { type: "redacted_thinking", data: b.data }
    : { type: "tool_use", id: b.id, name: b.name, input: {} };
  return { type: "content_block_start", index, content_block };
}

function _deltas(b: AnthropicFakeBlock): Record<string, unknown>[] {
  switch (b.type) {
    case "text":
      return _chunks(b.text).map((text) => ({ type: "text_delta", text }));
    case "thinking":
      return [
        ..._chunks(b.thinking).map((thinking) => ({ type: "thinking_delta", thinking })),
        { type: "signature_delta", signature: b.signature },
      ];
    case "redacted_thinking":
      return [];
    case "tool_use":
      return _inputPieces(b).map((partial_json) => ({ type: "input_json_delta", partial_json }));
  }
}

// ---------------------------------------------------------------------------
// The server core, shared with tests/_fake_openai.ts.

/** Writes one streamed response; every method answers false once the client is gone. */
export interface _SseWriter {
  /** Send raw text; false when the client disconnected (or the fake is closing). */
  send(text: string): Promise<boolean>;
  /** Wait; false when the client disconnected meanwhile. */
  sleep(ms: number): Promise<boolean>;
  /** Resolves when the client disconnects (or the fake closes). */
  waitForDisconnect(): Promise<void>;
}

/** Makes a `text/event-stream` response whose body `write` produces. */
export type _SseFactory = (
  write: (w: _SseWriter) => Promise<void>,
  headers?: Record<string, string>,
) => Response;

/** The shared part of a fake: server, request log, streams that know when the client left. */
export interface _FakeCore {
  url: string;
  port: number;
  requests: FakeRequest[];
  close(): Promise<void>;
}

/** Start a fake HTTP server whose handler gets the recorded request and an SSE factory. */
export async function _startFakeCore(
  handle: (req: Request, rec: FakeRequest, sse: _SseFactory) => Response | Promise<Response>,
): Promise<_FakeCore> {
  const requests: FakeRequest[] = [];
  const closing = new AbortController();
  let listening!: () => void;
  const ready = new Promise<void>((r) => listening = r);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => listening() },
    async (req) => {
      const text = await req.text();
      let body: Record<string, unknown> = {};
      try {
        const v = JSON.parse(text);
        if (v && typeof v === "object" && !Array.isArray(v)) body = v;
      } catch { /* not JSON */ }
      let end!: (s: FakeEnd) => void;
      const rec: FakeRequest = {
        method: req.method,
        path: new URL(req.url).pathname,
        headers: Object.fromEntries(req.headers),
        body,
        state: "open",
        ended: new Promise((r) => end = r),
        textDeltaTimes: [],
      };
      const finish = (s: FakeEnd) => {
        if (rec.state !== "open") return;
        rec.state = s;
        end(s);
      };
      requests.push(rec);
      const sse: _SseFactory = (write, headers = {}) => {
        const gone = new AbortController();
        const onClosing = () => gone.abort();
        closing.signal.addEventListener("abort", onClosing, { once: true });
        const enc = new TextEncoder();
        const stream = new ReadableStream<Uint8Array>({
          start(ctl) {
            const w: _SseWriter = {
              send(t) {
                if (gone.signal.aborted) return Promise.resolve(false);
                try {
                  ctl.enqueue(enc.encode(t));
                  return Promise.resolve(true);
                } catch {
                  return Promise.resolve(false);
                }
              },
              sleep: (ms) => _sleep(ms, gone.signal),
              waitForDisconnect: () =>
                new Promise((r) => {
                  if (gone.signal.aborted) r();
                  else gone.signal.addEventListener("abort", () => r(), { once: true });
                }),
            };
            write(w).catch(() => {}).finally(() => {
              closing.signal.removeEventListener("abort", onClosing);
              if (rec.state === "open") {
                finish(closing.signal.aborted ? "closed" : "complete");
                try {
                  ctl.close();
                } catch { /* already cancelled */ }
              }
            });
          },
          cancel() {
            finish("disconnected");
            gone.abort();
          },
        });
        return new Response(stream, {
          headers: {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            ...headers,
          },
        });
      };
      const res = await handle(req, rec, sse);
      if (res.headers.get("content-type")?.startsWith("text/event-stream") !== true) {
        finish("complete");
      }
      return res;
    },
  );
  await ready;
  const port = server.addr.port;
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      closing.abort();
      await server.shutdown();
    })();
    return closed;
  };
  return { url: `http://127.0.0.1:${port}`, port, requests, close };
}

/** A JSON response with the given status. */
export function _json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function _sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
