/**
 * The model providers against fake APIs on real sockets: streaming order,
 * thinking and its replay, tool calls, message conversion, usage, every error
 * kind, and abort (prompt rejection and a cancelled HTTP stream).
 */
import assert from "node:assert/strict";
import { anthropicProvider } from "../lib/agent/anthropic.ts";
import {
  INVALID_TOOL_ARGUMENTS,
  invalidToolArguments,
  openaiProvider,
} from "../lib/agent/openai.ts";
import {
  type AssistantMessage,
  type ModelMessage,
  type Provider,
  ProviderError,
  type ProviderErrorKind,
  type ProviderRequest,
  type ProviderResult,
  type StreamEvent,
  type ToolCall,
} from "../lib/agent/types.ts";
import {
  type AnthropicScript,
  type FakeEnd,
  type FakeRequest,
  startFakeAnthropic,
} from "./_fake_anthropic.ts";
import { type OpenAIScript, startFakeOpenAI } from "./_fake_openai.ts";

const A_KEY = "sk-ant-test-0123456789abcdef";
const O_KEY = "sk-openai-test-fedcba9876543210";

const user = (text: string): ModelMessage => ({ role: "user", content: text, timestamp: 1 });

function req(over: Partial<ProviderRequest> = {}): ProviderRequest {
  return {
    model: "test-model",
    messages: [user("hi")],
    tools: [],
    maxTokens: 256,
    signal: new AbortController().signal,
    ...over,
  };
}

/** Collects events with the time each arrived. */
function recorder() {
  const events: StreamEvent[] = [];
  const times: number[] = [];
  return {
    events,
    times,
    on: (e: StreamEvent) => {
      events.push(e);
      times.push(performance.now());
    },
  };
}

function assistantOf(r: ProviderResult, provider: Provider): AssistantMessage {
  return {
    role: "assistant",
    content: r.content,
    api: provider.api,
    provider: provider.id,
    model: "test-model",
    usage: { ...r.usage, cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, total: 0 } },
    stopReason: r.stopReason,
    timestamp: 2,
  };
}

async function rejects(p: Promise<unknown>, kind: ProviderErrorKind): Promise<ProviderError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ProviderError, `expected a ProviderError, got ${e}`);
    assert.equal(e.kind, kind, `kind of: ${e.message}`);
    return e;
  }
  assert.fail(`expected a rejection of kind ${kind}`);
}

/** How the fake's response ended, or "timeout" after `ms`. */
async function endOf(rec: FakeRequest | undefined, ms = 1000): Promise<FakeEnd | "timeout"> {
  assert.ok(rec, "the fake saw no request");
  let t: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((r) => t = setTimeout(() => r("timeout"), ms));
  try {
    return await Promise.race([rec.ended, timeout]);
  } finally {
    clearTimeout(t);
  }
}

async function closedPort(): Promise<number> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  await new Promise((r) => setTimeout(r, 0));
  return port;
}

function anthropicAt(url: string, apiKey = A_KEY): Provider {
  return anthropicProvider({ id: "anthropic", api: "anthropic-messages", apiKey, baseUrl: url });
}

function openaiAt(url: string, apiKey?: string): Provider {
  return openaiProvider({
    id: "ollama",
    api: "openai-completions",
    baseUrl: `${url}/v1`,
    ...(apiKey ? { apiKey } : {}),
  });
}

/** Abort on the first text delta; check prompt rejection and a cancelled stream. */
async function abortMidStream(
  p: Provider,
  rec: () => FakeRequest | undefined,
  waitForText: boolean,
): Promise<void> {
  const ac = new AbortController();
  const r = recorder();
  let abortedAt = 0;
  const started = p.stream(req({ signal: ac.signal }), (e) => {
    r.on(e);
    if (waitForText && !abortedAt) {
      abortedAt = performance.now();
      ac.abort();
    }
  });
  if (!waitForText) {
    await new Promise((res) => setTimeout(res, 150));
    abortedAt = performance.now();
    ac.abort();
  }
  await rejects(started, "aborted");
  const took = performance.now() - abortedAt;
  assert.ok(abortedAt > 0, "never aborted");
  assert.ok(took < 200, `rejected ${took.toFixed(0)} ms after abort`);
  assert.equal(await endOf(rec()), "disconnected", "the HTTP stream was not cancelled");
  const n = r.events.length;
  await new Promise((res) => setTimeout(res, 80));
  assert.equal(r.events.length, n, "events arrived after the abort");
}

// --------------------------------------------------------------------------- Anthropic

Deno.test("anthropic streams text deltas as they arrive, before the response ends", async () => {
  await using fake = await startFakeAnthropic({ apiKey: A_KEY });
  fake.script({
    blocks: [{ type: "text", text: ["Hel", "lo", " wor", "ld"] }],
    delayMs: 40,
    model: "claude-test-20990101",
  });
  const p = anthropicAt(fake.url);
  const r = recorder();
  const res = await p.stream(req({ system: "Be brief." }), r.on);
  const end = performance.now();
  assert.deepEqual(r.events, [
    { type: "text", delta: "Hel" },
    { type: "text", delta: "lo" },
    { type: "text", delta: " wor" },
    { type: "text", delta: "ld" },
  ]);
  assert.ok(end - r.times[0]! > 150, `first delta only ${end - r.times[0]!} ms before the end`);
  assert.deepEqual(res.content, [{ type: "text", text: "Hello world" }]);
  assert.equal(res.stopReason, "stop");
  assert.equal(res.responseModel, "claude-test-20990101");

  const got = fake.requests[0]!;
  assert.equal(got.headers["authorization"] ?? got.headers["x-api-key"], `Bearer ${A_KEY}`);
  assert.ok(got.headers["anthropic-version"]);
  assert.equal(got.headers["x-stainless-retry-count"], "0");
  assert.deepEqual(got.body, {
    model: "test-model",
    max_tokens: 256,
    messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }],
    stream: true,
    system: "Be brief.",
  });
});

Deno.test("anthropic thinking streams with its signature and is replayed next turn", async () => {
  await using fake = await startFakeAnthropic({ apiKey: A_KEY });
  fake.script(
    {
      blocks: [
        { type: "thinking", thinking: ["Let me ", "think."], signature: "sig-abc==" },
        { type: "redacted_thinking", data: "opaque-blob" },
        { type: "text", text: ["42"] },
      ],
    },
    { blocks: [{ type: "text", text: "ok" }] },
  );
  const p = anthropicAt(fake.url);
  const r = recorder();
  const res = await p.stream(req({ thinkingBudget: 2048, maxTokens: 1024 }), r.on);
  assert.deepEqual(r.events, [
    { type: "thinking", delta: "Let me " },
    { type: "thinking", delta: "think." },
    { type: "text", delta: "42" },
  ]);
  assert.deepEqual(res.content, [
    { type: "thinking", thinking: "Let me think.", thinkingSignature: "sig-abc==" },
    { type: "thinking", thinking: "", thinkingSignature: "opaque-blob", redacted: true },
    { type: "text", text: "42" },
  ]);
  const first = fake.requests[0]!.body;
  assert.deepEqual(first.thinking, { type: "enabled", budget_tokens: 2048 });
  assert.ok(Number(first.max_tokens) > 2048, `max_tokens ${first.max_tokens}`);

  await p.stream(
    req({ messages: [user("q"), assistantOf(res, p), user("and?")], thinkingBudget: 2048 }),
    () => {},
  );
  assert.deepEqual(fake.requests[1]!.body.messages, [
    { role: "user", content: [{ type: "text", text: "q" }] },
    {
      role: "assistant",
      content: [
        { type: "thinking", thinking: "Let me think.", signature: "sig-abc==" },
        { type: "redacted_thinking", data: "opaque-blob" },
        { type: "text", text: "42" },
      ],
    },
    { role: "user", content: [{ type: "text", text: "and?" }] },
  ]);
});

Deno.test("anthropic tool use assembles input from partial JSON", async () => {
  await using fake = await startFakeAnthropic({ apiKey: A_KEY });
  fake.script({
    blocks: [
      { type: "text", text: "Reading." },
      {
        type: "tool_use",
        id: "toolu_1",
        name: "read",
        input: ['{"path": "/tm', 'p/x", "n"', ": 3}"],
      },
      { type: "tool_use", id: "toolu_2", name: "now", input: [] },
    ],
  });
  const p = anthropicAt(fake.url);
  const r = recorder();
  const schema = { type: "object", properties: { path: { type: "string" } }, required: ["path"] };
  const res = await p.stream(
    req({
      tools: [
        { name: "read", description: "Read a file", inputSchema: schema },
        { name: "now", description: "The time", inputSchema: { properties: {} } },
      ],
    }),
    r.on,
  );
  const read: ToolCall = {
    type: "toolCall",
    id: "toolu_1",
    name: "read",
    arguments: { path: "/tmp/x", n: 3 },
  };
  const now: ToolCall = { type: "toolCall", id: "toolu_2", name: "now", arguments: {} };
  assert.deepEqual(r.events, [
    { type: "text", delta: "Reading." },
    { type: "toolCall", call: read },
    { type: "toolCall", call: now },
  ]);
  assert.deepEqual(res.content, [{ type: "text", text: "Reading." }, read, now]);
  assert.equal(res.stopReason, "toolUse");
  assert.deepEqual(fake.requests[0]!.body.tools, [
    { name: "read", description: "Read a file", input_schema: schema },
    { name: "now", description: "The time", input_schema: { type: "object", properties: {} } },
  ]);
});

Deno.test("anthropic converts the transcript: tool results merged into one user turn", async () => {
  await using fake = await startFakeAnthropic({ apiKey: A_KEY });
  fake.script({ blocks: [{ type: "text", text: "done" }] });
  const p = anthropicAt(fake.url);
  const assistant: AssistantMessage = {
    ...assistantOf({ content: [], stopReason: "toolUse", usage: zero() }, p),
    content: [
      { type: "thinking", thinking: "unsigned, from another model" },
      { type: "text", text: "Two calls." },
      { type: "toolCall", id: "t1", name: "a", arguments: { x: 1 } },
      { type: "toolCall", id: "t2", name: "b", arguments: {} },
      { type: "toolCall", id: "t3", name: "c", arguments: {} }, // no result: left out
    ],
  };
  await p.stream(
    req({
      messages: [
        { role: "user", content: [{ type: "text", text: "go" }], timestamp: 1 },
        assistant,
        tr("t1", "a", "one", false),
        tr("t2", "b", "boom", true),
        tr("zz", "gone", "orphan", false),
        user("thanks"),
      ],
    }),
    () => {},
  );
  assert.deepEqual(fake.requests[0]!.body.messages, [
    { role: "user", content: [{ type: "text", text: "go" }] },
    {
      role: "assistant",
      content: [
        { type: "text", text: "Two calls." },
        { type: "tool_use", id: "t1", name: "a", input: { x: 1 } },
        { type: "tool_use", id: "t2", name: "b", input: {} },
      ],
    },
    {
      role: "user",
      content: [
        {
          type: "tool_result",
          tool_use_id: "t1",
          content: [{ type: "text", text: "one" }],
          is_error: false,
        },
        {
          type: "tool_result",
          tool_use_id: "t2",
          content: [{ type: "text", text: "boom" }],
          is_error: true,
        },
        { type: "text", text: "thanks" },
      ],
    },
  ]);
});

Deno.test("anthropic usage sums message_start and message_delta", async () => {
  await using fake = await startFakeAnthropic({ apiKey: A_KEY });
  fake.script({
    blocks: [{ type: "text", text: "x" }],
    stopReason: "max_tokens",
    usage: {
      input_tokens: 100,
      output_tokens: 42,
      cache_read_input_tokens: 30,
      cache_creation_input_tokens: 20,
    },
  });
  const res = await anthropicAt(fake.url).stream(req(), () => {});
  assert.deepEqual(res.usage, {
    input: 100,
    output: 42,
    cacheRead: 30,
    cacheWrite: 20,
    totalTokens: 192,
  });
  assert.equal(res.stopReason, "length");
});

Deno.test("anthropic errors map to provider error kinds", async (t) => {
  await using fake = await startFakeAnthropic({ apiKey: A_KEY });
  const p = anthropicAt(fake.url);
  const fail = (s: AnthropicScript, kind: ProviderErrorKind) => {
    fake.script(s);
    return rejects(p.stream(req(), () => {}), kind);
  };

  await t.step("401: auth, without the key in the message", async () => {
    const wrong = "sk-ant-wrong-key-9999";
    const e = await rejects(anthropicAt(fake.url, wrong).stream(req(), () => {}), "auth");
    assert.equal(e.status, 401);
    assert.match(e.message, /API key .*rejected/);
    assert.ok(!e.message.includes(wrong) && !e.message.includes(A_KEY), e.message);
    assert.equal(e.retryable, false);
  });
  await t.step("no key configured: auth before any request", async () => {
    const n = fake.requests.length;
    const np = anthropicProvider({ id: "anthropic", api: "anthropic-messages", baseUrl: fake.url });
    await rejects(np.stream(req(), () => {}), "auth");
    assert.equal(fake.requests.length, n);
  });
  await t.step("429: rate_limit with retryAfterMs", async () => {
    const e = await fail({
      error: {
        status: 429,
        type: "rate_limit_error",
        message: "Rate limited",
        retryAfterSeconds: 7,
      },
    }, "rate_limit");
    assert.equal(e.status, 429);
    assert.equal(e.retryAfterMs, 7000);
    assert.equal(e.retryable, true);
  });
  await t.step("529 and 503: overloaded", async () => {
    const e = await fail(
      { error: { status: 529, type: "overloaded_error", message: "Overloaded" } },
      "overloaded",
    );
    assert.equal(e.status, 529);
    assert.equal(e.retryable, true);
    await fail({ error: { status: 503, type: "api_error", message: "Unavailable" } }, "overloaded");
  });
  await t.step("400 prompt too long: context_length", async () => {
    const e = await fail({
      error: {
        status: 400,
        type: "invalid_request_error",
        message: "prompt is too long: 210000 tokens > 200000 maximum",
      },
    }, "context_length");
    assert.match(e.message, /210000 tokens/);
    assert.equal(e.retryable, false);
  });
  await t.step("other 400: bad_request with the API's message", async () => {
    const e = await fail({
      error: { status: 400, type: "invalid_request_error", message: "messages: field required" },
    }, "bad_request");
    assert.match(e.message, /messages: field required/);
  });
  await t.step("500: server", async () => {
    const e = await fail(
      { error: { status: 500, type: "api_error", message: "Internal server error" } },
      "server",
    );
    assert.equal(e.status, 500);
  });
  await t.step("error event mid-stream: mapped by its type", async () => {
    const r = recorder();
    fake.script({
      blocks: [{ type: "text", text: "partial" }, { type: "text", text: "never" }],
      streamError: { type: "overloaded_error", message: "Overloaded", afterBlocks: 1 },
    });
    const e = await rejects(p.stream(req(), r.on), "overloaded");
    assert.deepEqual(r.events, [{ type: "text", delta: "partial" }]);
    assert.equal(e.status, undefined);
  });
  await t.step("refusal stop reason: refusal", async () => {
    await fail({ blocks: [{ type: "text", text: "I can't" }], stopReason: "refusal" }, "refusal");
  });
  await t.step("closed port: network", async () => {
    const port = await closedPort();
    const e = await rejects(
      anthropicAt(`http://127.0.0.1:${port}`).stream(req(), () => {}),
      "network",
    );
    assert.equal(e.retryable, true);
    assert.ok(!e.message.includes(A_KEY));
  });
});

Deno.test("anthropic abort mid-stream rejects within 200 ms and cancels the stream", async () => {
  await using fake = await startFakeAnthropic({ apiKey: A_KEY });
  fake.script({ blocks: [{ type: "text", text: ["a", "b", "c", "d", "e", "f"] }], delayMs: 60 });
  await abortMidStream(anthropicAt(fake.url), () => fake.requests[0], true);
});

Deno.test("anthropic abort while the server hangs after message_start", async () => {
  await using fake = await startFakeAnthropic({ apiKey: A_KEY });
  fake.script({ blocks: [{ type: "text", text: "never" }], hang: true });
  await abortMidStream(anthropicAt(fake.url), () => fake.requests[0], false);
});

Deno.test("anthropic: an already aborted signal rejects without a request", async () => {
  await using fake = await startFakeAnthropic({ apiKey: A_KEY });
  const ac = new AbortController();
  ac.abort();
  await rejects(anthropicAt(fake.url).stream(req({ signal: ac.signal }), () => {}), "aborted");
  assert.equal(fake.requests.length, 0);
});

Deno.test("anthropic: the SDK is imported on the first call, not with the module", async () => {
  // --no-npm makes any npm import fail: loading the module and creating the
  // provider must work; only stream() may need the SDK.
  const code = `
    import { anthropicProvider } from "${new URL("../lib/agent/anthropic.ts", import.meta.url)}";
    const p = anthropicProvider({ id: "anthropic", api: "anthropic-messages", apiKey: "k" });
    console.log("created", p.api);
    try {
      await p.stream({ model: "m", messages: [], tools: [], maxTokens: 1,
        signal: new AbortController().signal }, () => {});
    } catch (e) { console.log("stream:", e.kind, e.message); }
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--no-npm",
      "--no-check",
      `--config=${new URL("../deno.json", import.meta.url).pathname}`,
      code,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.match(stdout, /^created anthropic-messages$/m, new TextDecoder().decode(out.stderr));
  assert.match(stdout, /^stream: network Could not load @anthropic-ai\/sdk/m);
});

// --------------------------------------------------------------------------- OpenAI-compatible

Deno.test("openai streams text deltas as they arrive, before the response ends", async () => {
  await using fake = await startFakeOpenAI();
  fake.script({
    parts: [{ content: "Hel" }, { content: "lo" }, { content: " wor" }, { content: "ld" }],
    delayMs: 40,
    model: "qwen-test",
  });
  const p = openaiAt(fake.url);
  const r = recorder();
  const res = await p.stream(req({ system: "Be brief." }), r.on);
  const end = performance.now();
  assert.deepEqual(r.events, [
    { type: "text", delta: "Hel" },
    { type: "text", delta: "lo" },
    { type: "text", delta: " wor" },
    { type: "text", delta: "ld" },
  ]);
  assert.ok(end - r.times[0]! > 150, `first delta only ${end - r.times[0]!} ms before the end`);
  assert.deepEqual(res.content, [{ type: "text", text: "Hello world" }]);
  assert.equal(res.stopReason, "stop");
  assert.equal(res.responseModel, "qwen-test");
  const got = fake.requests[0]!;
  assert.equal(got.path, "/v1/chat/completions");
  assert.equal(got.headers["authorization"], undefined);
  assert.deepEqual(got.body, {
    model: "test-model",
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" }],
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: 256,
  });
});

Deno.test("openai sends the bearer key only when configured", async () => {
  await using fake = await startFakeOpenAI({ apiKey: O_KEY });
  fake.script({ parts: [{ content: "ok" }] });
  await openaiAt(fake.url, O_KEY).stream(req(), () => {});
  assert.equal(fake.requests[0]!.headers["authorization"], `Bearer ${O_KEY}`);
});

Deno.test("openai reasoning becomes thinking and is not sent back", async () => {
  await using fake = await startFakeOpenAI();
  fake.script(
    {
      parts: [
        { reasoning: "Hmm, " },
        { reasoning: "six.", field: "reasoning" },
        { content: "6" },
      ],
    },
    { parts: [{ content: "ok" }] },
  );
  const p = openaiAt(fake.url);
  const r = recorder();
  const res = await p.stream(req(), r.on);
  assert.deepEqual(r.events, [
    { type: "thinking", delta: "Hmm, " },
    { type: "thinking", delta: "six." },
    { type: "text", delta: "6" },
  ]);
  assert.deepEqual(res.content, [
    { type: "thinking", thinking: "Hmm, six." },
    { type: "text", text: "6" },
  ]);
  await p.stream(req({ messages: [user("q"), assistantOf(res, p), user("and?")] }), () => {});
  assert.deepEqual(fake.requests[1]!.body.messages, [
    { role: "user", content: "q" },
    { role: "assistant", content: "6" },
    { role: "user", content: "and?" },
  ]);
});

Deno.test("openai tool calls are accumulated by index and emitted when finished", async () => {
  await using fake = await startFakeOpenAI();
  fake.script({
    parts: [
      { content: "Calling." },
      { tool: { index: 0, id: "call_a", name: "read", args: "" } },
      { tool: { index: 1, id: "call_b", name: "now", args: "" } },
      { tool: { index: 0, args: '{"path":' } },
      { tool: { index: 1, args: "" } },
      { tool: { index: 0, args: ' "/tmp/x"}' } },
    ],
  });
  const p = openaiAt(fake.url);
  const r = recorder();
  const schema = { type: "object", properties: { path: { type: "string" } } };
  const res = await p.stream(
    req({ tools: [{ name: "read", description: "Read a file", inputSchema: schema }] }),
    r.on,
  );
  const a: ToolCall = {
    type: "toolCall",
    id: "call_a",
    name: "read",
    arguments: { path: "/tmp/x" },
  };
  const b: ToolCall = { type: "toolCall", id: "call_b", name: "now", arguments: {} };
  assert.deepEqual(r.events, [
    { type: "text", delta: "Calling." },
    { type: "toolCall", call: a },
    { type: "toolCall", call: b },
  ]);
  assert.deepEqual(res.content, [{ type: "text", text: "Calling." }, a, b]);
  assert.equal(res.stopReason, "toolUse");
  assert.deepEqual(fake.requests[0]!.body.tools, [
    {
      type: "function",
      function: { name: "read", description: "Read a file", parameters: schema },
    },
  ]);
});

Deno.test("openai malformed tool arguments arrive as a marker the runtime can report", async () => {
  await using fake = await startFakeOpenAI();
  fake.script({
    parts: [
      { tool: { index: 0, id: "c1", name: "read", args: '{"path": "/tm' } },
      { tool: { index: 1, id: "c2", name: "read", args: JSON.stringify('{"path":"/x"}') } },
      { tool: { index: 2, id: "c3", name: "read", args: "[1,2]" } },
    ],
  });
  const res = await openaiAt(fake.url).stream(req(), () => {});
  const [c1, c2, c3] = res.content as ToolCall[];
  const bad = invalidToolArguments(c1!);
  assert.equal(bad?.raw, '{"path": "/tm');
  assert.ok(bad?.error);
  assert.ok(INVALID_TOOL_ARGUMENTS in c1!.arguments);
  assert.deepEqual(c2!.arguments, { path: "/x" }, "a double-encoded object is accepted");
  assert.match(invalidToolArguments(c3!)?.error ?? "", /array/);
});

Deno.test("openai converts the transcript: tool_calls with JSON arguments, tool messages", async () => {
  await using fake = await startFakeOpenAI();
  fake.script({ parts: [{ content: "done" }] });
  const p = openaiAt(fake.url);
  const assistant: AssistantMessage = {
    ...assistantOf({ content: [], stopReason: "toolUse", usage: zero() }, p),
    content: [
      { type: "thinking", thinking: "private" },
      { type: "text", text: "Two calls." },
      { type: "toolCall", id: "t1", name: "a", arguments: { x: 1 } },
      {
        type: "toolCall",
        id: "t2",
        name: "b",
        arguments: { [INVALID_TOOL_ARGUMENTS]: { raw: "{bad", error: "x" } },
      },
    ],
  };
  await p.stream(
    req({
      system: "sys",
      messages: [
        user("go"),
        assistant,
        tr("t1", "a", "one", false),
        tr("t2", "b", "bad args", true),
      ],
    }),
    () => {},
  );
  assert.deepEqual(fake.requests[0]!.body.messages, [
    { role: "system", content: "sys" },
    { role: "user", content: "go" },
    {
      role: "assistant",
      content: "Two calls.",
      tool_calls: [
        { id: "t1", type: "function", function: { name: "a", arguments: '{"x":1}' } },
        { id: "t2", type: "function", function: { name: "b", arguments: "{bad" } },
      ],
    },
    { role: "tool", tool_call_id: "t1", content: "one" },
    { role: "tool", tool_call_id: "t2", content: "bad args" },
  ]);
});

Deno.test("openai usage comes from the final chunk, cached tokens as cacheRead", async () => {
  await using fake = await startFakeOpenAI();
  fake.script({
    parts: [{ content: "x" }],
    finishReason: "length",
    usage: { prompt_tokens: 120, completion_tokens: 33, cached_tokens: 100 },
  });
  const res = await openaiAt(fake.url).stream(req(), () => {});
  assert.deepEqual(res.usage, {
    input: 20,
    output: 33,
    cacheRead: 100,
    cacheWrite: 0,
    totalTokens: 153,
  });
  assert.equal(res.stopReason, "length");
});

Deno.test("openai errors map to provider error kinds", async (t) => {
  await using fake = await startFakeOpenAI({ apiKey: O_KEY });
  const p = openaiAt(fake.url, O_KEY);
  const fail = (s: OpenAIScript, kind: ProviderErrorKind) => {
    fake.script(s);
    return rejects(p.stream(req(), () => {}), kind);
  };

  await t.step("401: auth; the echoed key is redacted", async () => {
    const wrong = "sk-wrong-key-0000000000";
    const e = await rejects(openaiAt(fake.url, wrong).stream(req(), () => {}), "auth");
    assert.equal(e.status, 401);
    assert.match(e.message, /API key .*rejected/);
    assert.ok(!e.message.includes(wrong), e.message);
    assert.match(e.message, /\[redacted\]/);
  });
  await t.step("429: rate_limit with retryAfterMs", async () => {
    const e = await fail({
      error: {
        status: 429,
        type: "requests",
        code: "rate_limit_exceeded",
        message: "Rate limit reached",
        retryAfterSeconds: 3,
      },
    }, "rate_limit");
    assert.equal(e.retryAfterMs, 3000);
  });
  await t.step("503: overloaded", async () => {
    await fail(
      { error: { status: 503, type: "server_error", message: "Loading model" } },
      "overloaded",
    );
  });
  await t.step("400 context_length_exceeded code: context_length", async () => {
    await fail({
      error: {
        status: 400,
        type: "invalid_request_error",
        code: "context_length_exceeded",
        message: "This model's maximum context length is 8192 tokens.",
      },
    }, "context_length");
  });
  await t.step("400 with only a message about the context: context_length", async () => {
    await fail({
      error: {
        status: 400,
        type: "exceed_context_size_error",
        message: "the request exceeds the available context size, try increasing it",
      },
    }, "context_length");
  });
  await t.step("other 400: bad_request", async () => {
    const e = await fail({
      error: { status: 400, type: "invalid_request_error", message: "model 'nope' not found" },
    }, "bad_request");
    assert.match(e.message, /model 'nope' not found/);
  });
  await t.step("500: server", async () => {
    await fail({ error: { status: 500, type: "server_error", message: "boom" } }, "server");
  });
  await t.step("error chunk mid-stream", async () => {
    await fail({
      parts: [{ content: "par" }, {
        raw: { error: { message: "Overloaded", type: "overloaded_error" } },
      }],
    }, "overloaded");
  });
  await t.step("stream cut before finish: network", async () => {
    await fail({ parts: [{ content: "par" }], finishReason: null, noDone: true }, "network");
  });
  await t.step("content_filter: refusal", async () => {
    await fail({ parts: [{ content: "I" }], finishReason: "content_filter" }, "refusal");
  });
  await t.step("closed port: network", async () => {
    const port = await closedPort();
    const e = await rejects(
      openaiAt(`http://127.0.0.1:${port}`, O_KEY).stream(req(), () => {}),
      "network",
    );
    assert.ok(!e.message.includes(O_KEY));
  });
});

Deno.test("openai abort mid-stream rejects within 200 ms and cancels the stream", async () => {
  await using fake = await startFakeOpenAI();
  fake.script({ parts: "abcdef".split("").map((c) => ({ content: c })), delayMs: 60 });
  await abortMidStream(openaiAt(fake.url), () => fake.requests[0], true);
});

Deno.test("openai abort while the server hangs", async () => {
  await using fake = await startFakeOpenAI();
  fake.script({ parts: [{ content: "never" }], hang: true });
  await abortMidStream(openaiAt(fake.url), () => fake.requests[0], false);
});

// --------------------------------------------------------------------------- helpers

function zero(): ProviderResult["usage"] {
  return { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, totalTokens: 0 };
}

function tr(id: string, name: string, text: string, isError: boolean): ModelMessage {
  return {
    role: "toolResult",
    toolCallId: id,
    toolName: name,
    content: [{ type: "text", text }],
    isError,
    timestamp: 3,
  };
}
