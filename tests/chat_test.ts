/**
 * Chat and agent turns end to end: a real gateway, the real Anthropic SDK,
 * and the fake Anthropic API (and the fake OpenAI-compatible server).
 */
import assert from "node:assert/strict";
import { type AnyFrame, connected, err, ok, type RawClient, startTestGateway } from "./_helpers.ts";
import { type FakeAnthropic, startFakeAnthropic } from "./_fake_anthropic.ts";
import { type FakeOpenAI, startFakeOpenAI } from "./_fake_openai.ts";
import { GwChild } from "./_gw_child.ts";

interface SetupOptions {
  /** The key the gateway sends (the fake accepts `k-test`). */
  apiKey?: string;
  timeoutSeconds?: number;
  /** Also start the fake OpenAI-compatible server as provider `local`. */
  openai?: boolean;
  /** Use this state dir (kept afterwards) instead of a fresh temp one. */
  stateDir?: string;
  /** agents.defaults.maxConcurrent. */
  maxConcurrent?: number;
}

function gwConfig(fake: FakeAnthropic, openai: FakeOpenAI | undefined, o: SetupOptions) {
  const providers: Record<string, unknown> = {
    anthropic: { apiKey: o.apiKey ?? "k-test", baseUrl: fake.url },
  };
  if (openai) providers.local = { api: "openai-completions", baseUrl: `${openai.url}/v1` };
  return {
    agents: {
      defaults: {
        model: "anthropic/claude-sonnet-4-6",
        ...(o.timeoutSeconds ? { timeoutSeconds: o.timeoutSeconds } : {}),
        ...(o.maxConcurrent ? { maxConcurrent: o.maxConcurrent } : {}),
      },
    },
    models: { providers },
  };
}

async function setup(o: SetupOptions = {}) {
  const fake = await startFakeAnthropic({ apiKey: "k-test" });
  const openai = o.openai ? await startFakeOpenAI() : undefined;
  const config = gwConfig(fake, openai, o);
  const t = await startTestGateway({ config, ...(o.stateDir ? { stateDir: o.stateDir } : {}) });
  const clients: RawClient[] = [];
  const env = {
    fake,
    openai,
    t,
    config,
    /** A connected admin client (or with `over` connect params), closed at the end. */
    async client(over: Record<string, unknown> = {}): Promise<RawClient> {
      const c = await connected(env.t.url, over);
      clients.push(c);
      return c;
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(clients.map((c) => c.close()));
      await env.t.stop();
      await fake.close();
      await openai?.close();
    },
  };
  return env;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` every 10 ms until it holds; fail after `ms`. */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** The chat events of `runId` received so far. */
function chatEvents(c: RawClient, runId: string): AnyFrame[] {
  return c.frames.filter((f) =>
    f.type === "event" && f.event === "chat" && f.payload.runId === runId
  )
    .map((f) => f.payload);
}

/** Wait for the chat event of `runId` that ends it (final, error or aborted). */
async function chatEnd(c: RawClient, runId: string, ms = 5000): Promise<AnyFrame> {
  const f = await c.next(
    (f) =>
      f.type === "event" && f.event === "chat" && f.payload.runId === runId &&
      ["final", "error", "aborted"].includes(f.payload.state),
    ms,
  );
  return f.payload;
}

/** Send a request and wait for `n` response frames with its id (the `agent` two-phase reply). */
async function responses(
  c: RawClient,
  method: string,
  params: unknown,
  id: string,
  n = 2,
  ms = 5000,
): Promise<AnyFrame[]> {
  const match = (f: AnyFrame) => f.type === "res" && f.id === id;
  c.send({ type: "req", id, method, params });
  await c.next((f) => match(f) && c.frames.filter(match).length >= n, ms);
  return c.frames.filter(match);
}

/** chat.send and wait for the run's end; returns the end event's payload. */
async function exchange(
  c: RawClient,
  sessionKey: string,
  message: string,
  idempotencyKey: string,
): Promise<AnyFrame> {
  const ack = await ok(c, "chat.send", { sessionKey, message, idempotencyKey });
  assert.equal(ack.status, "started", JSON.stringify(ack));
  return await chatEnd(c, idempotencyKey);
}

/** A fake request's messages flattened to `role: text` lines (tool blocks marked). */
function lines(body: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const m of body.messages as { role: string; content: string | AnyFrame[] }[]) {
    if (typeof m.content === "string") {
      out.push(`${m.role}: ${m.content}`);
      continue;
    }
    for (const b of m.content) {
      if (b.type === "text") out.push(`${m.role}: ${b.text}`);
      else if (b.type === "tool_use") {
        out.push(`${m.role}: tool_use ${b.name} ${JSON.stringify(b.input)}`);
      } else if (b.type === "tool_result") {
        const text = (b.content ?? []).map((x: AnyFrame) => x.text).join("");
        out.push(`${m.role}: tool_result ${text}`);
      } else out.push(`${m.role}: ${b.type}`);
    }
  }
  return out;
}

/** The last user text of a fake request. */
function lastUser(body: Record<string, unknown>): string {
  return lines(body).filter((l) => l.startsWith("user: ")).at(-1)!.slice(6);
}

/** Answers every request with `reply(n, body)` (n counts from 1), immediately. */
function replies(fake: FakeAnthropic, reply: (n: number, body: Record<string, unknown>) => string) {
  let n = 0;
  fake.script((body) => ({ blocks: [{ type: "text", text: reply(++n, body) }] }));
}

async function history(c: RawClient, sessionKey = "main", extra: Record<string, unknown> = {}) {
  return await ok(c, "chat.history", { sessionKey, ...extra });
}

// ------------------------------------------------------------------ streaming

Deno.test("chat.send streams deltas then final, and history keeps both messages", async () => {
  await using env = await setup();
  env.fake.script({ blocks: [{ type: "text", text: ["Hel", "lo ", "there"] }], delayMs: 30 });
  const c = await connected(env.t.url);
  const ack = await ok(c, "chat.send", {
    sessionKey: "main",
    message: "hi",
    idempotencyKey: "run-1",
  });
  assert.deepEqual(ack, { runId: "run-1", status: "started" });
  const final = await c.next((f) => f.event === "chat" && f.payload.state === "final", 5000);
  assert.equal(final.payload.message.content[0].text, "Hello there");
  const hist = await ok(c, "chat.history", { sessionKey: "agent:main:main" });
  assert.deepEqual(hist.messages.map((m: AnyFrame) => m.role), ["user", "assistant"]);
  assert.equal(hist.messages[0].content, "hi");
  await c.close();
});

Deno.test("chat deltas grow as prefixes, are throttled to one per 150 ms, and the last precedes final", async () => {
  await using env = await setup();
  const chunks = Array.from({ length: 40 }, (_, i) => `c${String(i).padStart(2, "0")} `);
  env.fake.script({ blocks: [{ type: "text", text: chunks }], delayMs: 10 });
  const c = await env.client();
  await ok(c, "chat.send", { sessionKey: "main", message: "stream", idempotencyKey: "thr" });
  const end = await chatEnd(c, "thr");
  assert.equal(end.state, "final");
  const full = chunks.join("");
  assert.equal(end.message.content[0].text, full);

  const events = chatEvents(c, "thr");
  assert.equal(events.at(-1), end, "final is the last chat event of the run");
  const deltas = events.filter((e) => e.state === "delta");
  assert.ok(deltas.length >= 2, `expected several deltas, got ${deltas.length}`);
  assert.ok(
    deltas.length < chunks.length,
    `deltas must be throttled: ${deltas.length} for 40 chunks`,
  );
  // The first delta goes out at once: it carries exactly the first chunk.
  assert.equal(deltas[0].message.content[0].text, chunks[0]);
  let prev = "";
  for (const d of deltas) {
    const text = d.message.content[0].text as string;
    assert.ok(text.startsWith(prev) && text.length > prev.length, `not a growing prefix: ${text}`);
    assert.equal(d.deltaText, text.slice(prev.length));
    assert.equal(d.replace, undefined);
    prev = text;
  }
  assert.equal(prev, full, "the last delta (flushed before final) carries the full text");
  // Server-side send times: at least ~150 ms apart, except the flush right before final.
  const times = deltas.map((d) => d.message.timestamp as number);
  for (let i = 1; i < times.length - 1; i++) {
    assert.ok(
      times[i]! - times[i - 1]! >= 140,
      `deltas ${i - 1}/${i} ${times[i]! - times[i - 1]!} ms apart`,
    );
  }
  // seq increases over every event of the run (agent and chat share it).
  const all = c.frames.filter((f) =>
    f.type === "event" && (f.event === "chat" || f.event === "agent") && f.payload.runId === "thr"
  ).map((f) => f.payload.seq as number);
  for (let i = 1; i < all.length; i++) assert.ok(all[i]! > all[i - 1]!, `seq ${all}`);
  // agent lifecycle: start ... end.
  const phases = c.frames.filter((f) =>
    f.event === "agent" && f.payload.runId === "thr" && f.payload.stream === "lifecycle"
  ).map((f) => f.payload.data.phase);
  assert.deepEqual(phases, ["start", "model", "end"]);
});

// ------------------------------------------------------------------ agent

Deno.test("agent answers accepted, then the final result with the same id", async () => {
  await using env = await setup();
  env.fake.script({ blocks: [{ type: "text", text: ["The ", "reply"] }], delayMs: 5 });
  const c = await env.client();
  const [first, second] = await responses(c, "agent", {
    message: "do it",
    idempotencyKey: "ag-1",
  }, "a1");
  assert.equal(first.ok, true);
  assert.equal(first.payload.status, "accepted");
  assert.equal(first.payload.runId, "ag-1");
  assert.equal(first.payload.sessionKey, "agent:main:main");
  assert.equal(second.ok, true, JSON.stringify(second));
  assert.equal(second.payload.status, "ok");
  assert.equal(second.payload.runId, "ag-1");
  // OpenClaw's shape: summary says how it went, the reply text is in result.payloads.
  assert.equal(second.payload.summary, "completed");
  assert.deepEqual(second.payload.result.payloads, [{ text: "The reply", mediaUrl: null }]);
  assert.equal(second.payload.result.meta.stopReason, "stop");
  assert.equal(second.payload.result.meta.agentMeta.model, "claude-sonnet-4-6");
  const w = await ok(c, "agent.wait", { runId: "ag-1", timeoutMs: 100 });
  assert.equal(w.status, "ok");
  // A later duplicate answers the cached result without calling the model again.
  const [dupFirst] = await responses(
    c,
    "agent",
    { message: "do it", idempotencyKey: "ag-1" },
    "a2",
    1,
  );
  await sleep(30);
  assert.equal(c.frames.filter((f) => f.type === "res" && f.id === "a2").length, 1);
  assert.equal(dupFirst.ok, true);
  assert.equal(dupFirst.payload.cached, true);
  assert.deepEqual(dupFirst.payload.result.payloads, [{ text: "The reply", mediaUrl: null }]);
  assert.equal(env.fake.requests.length, 1);
});

Deno.test("agent with a rejected API key: accepted, then an error frame that hides the key", async () => {
  const key = "sk-ant-wrong-secret-0123456789";
  await using env = await setup({ apiKey: key });
  const c = await env.client();
  const [first, second] = await responses(
    c,
    "agent",
    { message: "x", idempotencyKey: "bad-key" },
    "b1",
  );
  assert.equal(first.payload.status, "accepted");
  assert.equal(second.ok, false);
  assert.equal(second.error.code, "UNAVAILABLE");
  assert.match(second.error.message, /API key for anthropic was rejected/);
  assert.ok(!JSON.stringify(second).includes(key), "the key leaked into the error");
  assert.equal(second.error.retryable, undefined);
  assert.equal(second.payload.status, "error");
  assert.match(second.payload.summary, /rejected/);
  const chat = await chatEnd(c, "bad-key");
  assert.equal(chat.state, "error");
  assert.ok(!JSON.stringify(c.frames).includes(key), "the key leaked into an event");
  assert.equal(env.fake.requests.length, 1);
  // The transcript keeps the message and notes the failure.
  const h = await history(c);
  assert.deepEqual(h.messages.map((m: AnyFrame) => m.role), ["user", "custom"]);
  assert.equal(h.messages[1].customType, "run-failed");
  assert.ok(!JSON.stringify(h).includes(key));
});

// ------------------------------------------------------------------ idempotency

Deno.test("chat.send duplicate of a finished run answers the cached status without a new request", async () => {
  await using env = await setup();
  replies(env.fake, () => "once");
  const c = await env.client();
  await exchange(c, "main", "hello", "dup-seq");
  assert.equal((await ok(c, "agent.wait", { runId: "dup-seq", timeoutMs: 1000 })).status, "ok");
  // The outcome is stored just after the run ends: allow it a moment.
  let again: AnyFrame;
  const deadline = performance.now() + 1000;
  do {
    again = await ok(c, "chat.send", {
      sessionKey: "main",
      message: "hello",
      idempotencyKey: "dup-seq",
    });
  } while (
    again.status === "in_flight" && performance.now() < deadline && await sleep(20) === undefined
  );
  assert.deepEqual(again, { runId: "dup-seq", status: "ok", cached: true });
  assert.equal(env.fake.requests.length, 1);
  assert.equal((await history(c)).messages.length, 2, "the duplicate must not add a message");
});

Deno.test("chat.send duplicate sent right after the final event is already cached, not in_flight", async () => {
  await using env = await setup();
  replies(env.fake, () => "once");
  const c = await env.client();
  await exchange(c, "main", "hello", "dup-now");
  // As a client does that lost the ack and retries once it sees the final event.
  const again = await ok(c, "chat.send", {
    sessionKey: "main",
    message: "hello",
    idempotencyKey: "dup-now",
  });
  assert.deepEqual(again, { runId: "dup-now", status: "ok", cached: true });
  assert.equal(env.fake.requests.length, 1);
});

Deno.test("chat.send duplicates while running answer in_flight and reach the model once", async () => {
  await using env = await setup();
  env.fake.script({ blocks: [{ type: "text", text: ["a", "b", "c"] }], delayMs: 40 });
  const c = await env.client();
  // Two at once (same frame burst), then one more while the first is streaming.
  c.send({
    type: "req",
    id: "s1",
    method: "chat.send",
    params: { sessionKey: "main", message: "m", idempotencyKey: "dup-conc" },
  });
  c.send({
    type: "req",
    id: "s2",
    method: "chat.send",
    params: { sessionKey: "main", message: "m", idempotencyKey: "dup-conc" },
  });
  const r1 = await c.next((f) => f.type === "res" && f.id === "s1");
  const r2 = await c.next((f) => f.type === "res" && f.id === "s2");
  const statuses = [r1.payload.status, r2.payload.status].sort();
  assert.deepEqual(statuses, ["in_flight", "started"]);
  await until(() => env.fake.requests.length === 1, "the model request");
  const r3 = await ok(c, "chat.send", {
    sessionKey: "main",
    message: "m",
    idempotencyKey: "dup-conc",
  });
  assert.deepEqual(r3, { runId: "dup-conc", status: "in_flight" });
  const end = await chatEnd(c, "dup-conc");
  assert.equal(end.state, "final");
  await sleep(50);
  assert.equal(env.fake.requests.length, 1);
  assert.equal((await history(c)).messages.length, 2);
});

Deno.test("concurrent duplicate agent calls both get the same final from one model request", async () => {
  await using env = await setup();
  env.fake.script({ blocks: [{ type: "text", text: ["sha", "red"] }], delayMs: 30 });
  const c = await env.client();
  const params = { message: "same", idempotencyKey: "ag-dup" };
  const [a, b] = await Promise.all([
    responses(c, "agent", params, "d1"),
    responses(c, "agent", params, "d2"),
  ]);
  for (const [first, second] of [a, b]) {
    assert.equal(first!.payload.status, "accepted");
    assert.equal(first!.payload.runId, "ag-dup");
    assert.equal(second!.ok, true, JSON.stringify(second));
    assert.equal(second!.payload.status, "ok");
    assert.equal(second!.payload.summary, "completed");
    assert.deepEqual(second!.payload.result.payloads, [{ text: "shared", mediaUrl: null }]);
  }
  assert.equal(a[1]!.payload.runId, b[1]!.payload.runId);
  assert.equal(env.fake.requests.length, 1);
  assert.equal((await history(c)).messages.length, 2);
});

// ------------------------------------------------------------------ lanes

Deno.test("three chat.send on one session run in order, each seeing the previous replies", async () => {
  await using env = await setup();
  const overlaps: number[] = [];
  let n = 0;
  env.fake.script((_body, _req) => {
    overlaps.push(env.fake.requests.filter((r) => r.state === "open").length - 1);
    return { blocks: [{ type: "text", text: [`reply-`, `${++n}`] }], delayMs: 15 };
  });
  const c = await env.client();
  for (const i of [1, 2, 3]) {
    const ack = await ok(c, "chat.send", {
      sessionKey: "main",
      message: `m${i}`,
      idempotencyKey: `q${i}`,
    });
    assert.equal(ack.status, "started");
  }
  for (const i of [1, 2, 3]) assert.equal((await chatEnd(c, `q${i}`)).state, "final");
  assert.equal(env.fake.requests.length, 3);
  assert.deepEqual(overlaps, [0, 0, 0], "a session's runs must not overlap");
  assert.deepEqual(env.fake.requests.map((r) => lastUser(r.body)), ["m1", "m2", "m3"]);
  assert.deepEqual(lines(env.fake.requests[2]!.body), [
    "user: m1",
    "assistant: reply-1",
    "user: m2",
    "assistant: reply-2",
    "user: m3",
  ]);
  assert.deepEqual(lines(env.fake.requests[1]!.body), [
    "user: m1",
    "assistant: reply-1",
    "user: m2",
  ]);
  const finals = ["q1", "q2", "q3"].map((k) => chatEvents(c, k).at(-1).message.content[0].text);
  assert.deepEqual(finals, ["reply-1", "reply-2", "reply-3"]);
});

Deno.test("maxConcurrent caps runs across sessions; the rest wait, durable, and all finish", async () => {
  await using env = await setup({ maxConcurrent: 2 });
  let most = 0;
  env.fake.script(() => {
    most = Math.max(most, env.fake.requests.filter((r) => r.state === "open").length);
    return { blocks: [{ type: "text", text: ["a", "b", "c"] }], delayMs: 30 };
  });
  const c = await env.client();
  for (let i = 0; i < 5; i++) {
    const ack = await ok(c, "chat.send", {
      sessionKey: `cap-${i}`,
      message: `m${i}`,
      idempotencyKey: `cap${i}`,
    });
    assert.equal(ack.status, "started");
  }
  // The waiting ones are pending inputs, visible in history before they run.
  const waiting = await history(c, "cap-4");
  assert.equal(waiting.pendingInputs.total, 1);
  await Promise.all(Array.from({ length: 5 }, (_, i) => chatEnd(c, `cap${i}`)));
  assert.equal(env.fake.requests.length, 5);
  assert.equal(most, 2, "never more than maxConcurrent model calls at once");
  for (let i = 0; i < 5; i++) {
    assert.deepEqual((await history(c, `cap-${i}`)).messages.map((m: AnyFrame) => m.role), [
      "user",
      "assistant",
    ]);
  }
});

Deno.test("a run waiting for a slot can be aborted; its message is kept with a note", async () => {
  await using env = await setup({ maxConcurrent: 1 });
  env.fake.script(() => ({ blocks: [{ type: "text", text: ["slow", " reply"] }], delayMs: 150 }));
  const c = await env.client();
  await ok(c, "chat.send", { sessionKey: "busy", message: "first", idempotencyKey: "w1" });
  await ok(c, "chat.send", { sessionKey: "other", message: "second", idempotencyKey: "w2" });
  await until(() => env.fake.requests.length === 1, "the first model request");
  const r = await ok(c, "chat.abort", { sessionKey: "other" });
  assert.deepEqual(r.runIds, ["w2"]);
  const end = await chatEnd(c, "w2");
  assert.equal(end.state, "aborted");
  const h = await history(c, "other");
  assert.deepEqual(h.messages.map((m: AnyFrame) => m.role), ["user", "custom"]);
  assert.equal(h.messages[0].content, "second");
  await chatEnd(c, "w1");
  assert.equal(env.fake.requests.length, 1, "the aborted run never called the model");
});

Deno.test("two sessions run in parallel", async () => {
  await using env = await setup();
  env.fake.script(() => ({ blocks: [{ type: "text", text: ["x", "y", "z", "w"] }], delayMs: 40 }));
  const c = await env.client();
  await ok(c, "chat.send", { sessionKey: "one", message: "a", idempotencyKey: "p1" });
  await ok(c, "chat.send", { sessionKey: "two", message: "b", idempotencyKey: "p2" });
  await until(() => env.fake.requests.length === 2, "both model requests", 1000);
  assert.equal(
    env.fake.requests[0]!.state,
    "open",
    "the first session's request is still streaming",
  );
  await Promise.all([chatEnd(c, "p1"), chatEnd(c, "p2")]);
  assert.deepEqual((await history(c, "one")).messages.map((m: AnyFrame) => m.role), [
    "user",
    "assistant",
  ]);
  assert.deepEqual((await history(c, "two")).messages.map((m: AnyFrame) => m.role), [
    "user",
    "assistant",
  ]);
});

// ------------------------------------------------------------------ abort and timeout

Deno.test("chat.abort mid-stream: aborted event, the stream is cancelled, the partial reply is kept", async () => {
  await using env = await setup();
  const chunks = Array.from({ length: 50 }, (_, i) => `w${i} `);
  env.fake.script({ blocks: [{ type: "text", text: chunks }], delayMs: 20 });
  const c = await env.client();
  await ok(c, "chat.send", { sessionKey: "main", message: "long", idempotencyKey: "ab" });
  await c.next((f) =>
    f.event === "chat" && f.payload.runId === "ab" && f.payload.state === "delta"
  );
  const r = await ok(c, "chat.abort", { sessionKey: "main" });
  assert.deepEqual(r, { ok: true, aborted: true, runIds: ["ab"] });
  const end = await chatEnd(c, "ab");
  assert.equal(end.state, "aborted");
  assert.equal(await env.fake.requests[0]!.ended, "disconnected");
  const h = await history(c);
  assert.deepEqual(h.messages.map((m: AnyFrame) => m.role), ["user", "assistant"]);
  const partial = h.messages[1];
  assert.equal(partial.stopReason, "aborted");
  const text = partial.content[0].text as string;
  assert.ok(text.length > 0 && chunks.join("").startsWith(text) && text !== chunks.join(""), text);
  // OpenClaw reports an aborted run as ok with stopReason aborted.
  const w = await ok(c, "agent.wait", { runId: "ab", timeoutMs: 1000 });
  assert.equal(w.status, "ok");
  assert.equal(w.stopReason, "aborted");
  const list = await ok(c, "sessions.list", {});
  assert.equal(list.sessions[0].abortedLastRun, true);
  assert.equal(list.sessions[0].status, "aborted");
  // Nothing left to abort.
  assert.deepEqual(await ok(c, "chat.abort", { sessionKey: "main" }), {
    ok: true,
    aborted: false,
    runIds: [],
  });
});

Deno.test("a run past timeoutSeconds ends: chat error kind timeout, agent final AGENT_TIMEOUT", async () => {
  await using env = await setup({ timeoutSeconds: 1 });
  env.fake.script({ hang: true }, { hang: true });
  const c = await env.client();
  const t0 = performance.now();
  await ok(c, "chat.send", { sessionKey: "t1", message: "wait", idempotencyKey: "to-chat" });
  const agentReply = responses(c, "agent", {
    message: "wait",
    idempotencyKey: "to-agent",
    sessionKey: "t2",
  }, "ta");
  const chat = await chatEnd(c, "to-chat", 4000);
  assert.equal(chat.state, "error");
  assert.equal(chat.errorKind, "timeout");
  const [, fin] = await agentReply;
  assert.equal(fin!.ok, false);
  assert.equal(fin!.error.code, "AGENT_TIMEOUT");
  assert.equal(fin!.payload.status, "timeout");
  const ms = performance.now() - t0;
  assert.ok(ms >= 900 && ms < 3000, `timed out after ${ms} ms`);
  for (const r of env.fake.requests) assert.equal(await r.ended, "disconnected");
  const w = await ok(c, "agent.wait", { runId: "to-chat", timeoutMs: 100 });
  assert.equal(w.status, "timeout");
  assert.match(w.error, /timed out/);
});

// ------------------------------------------------------------------ tools and thinking

Deno.test("tool loop: calculate runs, its result goes back to the model, history has all four", async () => {
  await using env = await setup();
  env.fake.script((body) => {
    const l = lines(body);
    return l.some((x) => x.includes("tool_result"))
      ? { blocks: [{ type: "text", text: "It is 14." }] }
      : { blocks: [{ type: "tool_use", name: "calculate", input: { expression: "2+3*4" } }] };
  });
  const c = await env.client();
  const end = await exchange(c, "main", "what is 2+3*4?", "tool");
  assert.equal(end.state, "final");
  assert.equal(end.message.content[0].text, "It is 14.");
  assert.equal(env.fake.requests.length, 2);
  const tools = env.fake.requests[0]!.body.tools as { name: string }[];
  assert.ok(tools.some((t) => t.name === "calculate"));
  assert.deepEqual(lines(env.fake.requests[1]!.body), [
    "user: what is 2+3*4?",
    'assistant: tool_use calculate {"expression":"2+3*4"}',
    "user: tool_result 14",
  ]);
  const h = await history(c);
  assert.deepEqual(h.messages.map((m: AnyFrame) => m.role), [
    "user",
    "assistant",
    "toolResult",
    "assistant",
  ]);
  const call = h.messages[1].content.find((b: AnyFrame) => b.type === "toolCall");
  assert.equal(call.name, "calculate");
  assert.deepEqual(call.arguments, { expression: "2+3*4" });
  assert.equal(h.messages[2].toolCallId, call.id);
  assert.equal(h.messages[2].content[0].text, "14");
  assert.equal(h.messages[2].isError, false);
  const toolEvents = c.frames.filter((f) => f.event === "agent" && f.payload.stream === "tool")
    .map((f) => f.payload.data.phase);
  assert.deepEqual(toolEvents, ["start", "result"]);
});

Deno.test("sessions.patch thinkingLevel low sends a thinking budget and keeps the thinking block", async () => {
  await using env = await setup();
  env.fake.script(
    {
      blocks: [
        { type: "thinking", thinking: ["Let me ", "think"], signature: "sig-1" },
        { type: "text", text: "Answer" },
      ],
    },
    { blocks: [{ type: "text", text: "Second" }] },
  );
  const c = await env.client();
  const p = await ok(c, "sessions.patch", { key: "main", thinkingLevel: "low" });
  assert.equal(p.entry.thinkingLevel, "low");
  const end = await exchange(c, "main", "think", "th1");
  assert.equal(end.state, "final");
  const body = env.fake.requests[0]!.body;
  assert.deepEqual(body.thinking, { type: "enabled", budget_tokens: 4096 });
  assert.ok((body.max_tokens as number) > 4096);
  const h = await history(c);
  assert.equal(h.thinkingLevel, "low");
  const blocks = h.messages[1].content;
  assert.deepEqual(blocks[0], {
    type: "thinking",
    thinking: "Let me think",
    thinkingSignature: "sig-1",
  });
  assert.equal(blocks[1].text, "Answer");
  // The signed thinking goes back to the model on the next turn.
  await exchange(c, "main", "again", "th2");
  const msgs = env.fake.requests[1]!.body.messages as AnyFrame[];
  assert.deepEqual(msgs[1].content[0], {
    type: "thinking",
    thinking: "Let me think",
    signature: "sig-1",
  });
  // Back to off: no thinking in the request.
  await ok(c, "sessions.patch", { key: "main", thinkingLevel: null });
  env.fake.script({ blocks: [{ type: "text", text: "Third" }] });
  await exchange(c, "main", "plain", "th3");
  assert.equal(env.fake.requests[2]!.body.thinking, undefined);
});

// ------------------------------------------------------------------ provider errors

Deno.test("provider errors map to retry hints and error kinds", async (t) => {
  await using env = await setup();
  const c = await env.client();
  let n = 0;
  const agentRun = async (error: AnyFrame) => {
    env.fake.script({ error });
    const key = `pe-${++n}`;
    const [first, second] = await responses(c, "agent", { message: "x", idempotencyKey: key }, key);
    assert.equal(first!.payload.status, "accepted");
    assert.equal(second!.ok, false);
    return { error: second!.error, chat: await chatEnd(c, key) };
  };
  await t.step("429 with retry-after: retryable, retryAfterMs", async () => {
    const r = await agentRun({
      status: 429,
      type: "rate_limit_error",
      message: "Number of requests has exceeded your rate limit",
      retryAfterSeconds: 7,
    });
    assert.equal(r.error.code, "UNAVAILABLE");
    assert.equal(r.error.retryable, true);
    assert.equal(r.error.retryAfterMs, 7000);
    assert.equal(r.chat.errorKind, "rate_limit");
  });
  await t.step("529 overloaded: retryable", async () => {
    const r = await agentRun({ status: 529, type: "overloaded_error", message: "Overloaded" });
    assert.equal(r.error.retryable, true);
    assert.equal(r.error.code, "UNAVAILABLE");
    assert.equal(r.chat.errorKind, "rate_limit");
  });
  await t.step("400 prompt too long: context_length, not retryable", async () => {
    const r = await agentRun({
      status: 400,
      type: "invalid_request_error",
      message: "prompt is too long: 210000 tokens > 200000 maximum",
    });
    assert.equal(r.error.code, "UNAVAILABLE");
    assert.equal(r.error.retryable, undefined);
    assert.equal(r.error.details.kind, "context_length");
    assert.equal(r.chat.errorKind, "context_length");
  });
  await t.step("500 api_error: retryable server error", async () => {
    const r = await agentRun({ status: 500, type: "api_error", message: "Internal server error" });
    assert.equal(r.error.code, "UNAVAILABLE");
    assert.equal(r.error.retryable, true);
    assert.equal(r.error.details.kind, "server");
    assert.match(r.chat.errorMessage, /500/);
  });
  await t.step("chat.send after the failures still works", async () => {
    env.fake.script({ blocks: [{ type: "text", text: "fine" }] });
    assert.equal((await exchange(c, "main", "ok?", "pe-ok")).state, "final");
  });
});

// ------------------------------------------------------------------ history

Deno.test("chat.history: limit, before paging, maxBytes", async () => {
  await using env = await setup();
  replies(env.fake, (n) => `r${n}`);
  const c = await env.client();
  for (let i = 1; i <= 5; i++) await exchange(c, "main", `u${i} ${"x".repeat(400)}`, `h${i}`);
  const all = await history(c);
  assert.equal(all.totalMessages, 10);
  assert.equal(all.messages.length, 10);
  assert.equal(all.hasMore, false);
  assert.equal(all.before, undefined);
  assert.deepEqual(all.messages.map((m: AnyFrame) => m.__openclaw.seq), [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
  ]);

  const p1 = await history(c, "main", { limit: 4 });
  assert.deepEqual(p1.messages.map((m: AnyFrame) => m.__openclaw.seq), [6, 7, 8, 9]);
  assert.equal(p1.hasMore, true);
  assert.equal(p1.before, 6);
  const p2 = await history(c, "main", { limit: 4, before: p1.before });
  assert.deepEqual(p2.messages.map((m: AnyFrame) => m.__openclaw.seq), [2, 3, 4, 5]);
  assert.equal(p2.before, 2);
  const p3 = await history(c, "main", { limit: 4, before: p2.before });
  assert.deepEqual(p3.messages.map((m: AnyFrame) => m.__openclaw.seq), [0, 1]);
  assert.equal(p3.hasMore, false);
  assert.equal(p3.before, undefined);
  assert.ok(p3.messages[0].content.startsWith("u1 "));

  const small = await history(c, "main", { maxBytes: 1024 });
  const sizes = small.messages.map((m: AnyFrame) => JSON.stringify(m).length);
  assert.ok(small.messages.length >= 1 && small.messages.length < 10, `${small.messages.length}`);
  assert.ok(sizes.reduce((a: number, b: number) => a + b, 0) <= 1024, `sizes ${sizes}`);
  assert.equal(small.messages.at(-1).__openclaw.seq, 9, "the newest messages win");
  assert.equal(small.hasMore, true);
  assert.equal(small.before, small.messages[0].__openclaw.seq);
  // Paging on from there reaches the start without gaps.
  const next = await history(c, "main", { limit: 1000, before: small.before });
  assert.equal(next.messages.at(-1).__openclaw.seq, small.before - 1);

  const missing = await history(c, "never-used");
  assert.deepEqual(missing.messages, []);
  assert.equal(missing.totalMessages, 0);
});

// ------------------------------------------------------------------ sessions

Deno.test("sessions.list, preview, patch, reset, delete, with sessions.changed events", async () => {
  await using env = await setup();
  replies(env.fake, (n) => `reply number ${n}`);
  const c = await env.client();
  const watcher = await env.client({ scopes: ["operator.read"] });
  const changed = (reason: string) =>
    watcher.next((f) => f.event === "sessions.changed" && f.payload.reason === reason, 3000);

  await exchange(c, "main", "hello world", "s1");
  assert.equal((await changed("run-started")).payload.sessionKey, "agent:main:main");
  const ended = await changed("run-ended");
  assert.equal(ended.payload.session.status, "done");

  const list = await ok(c, "sessions.list", {});
  assert.equal(list.count, 1);
  assert.equal(list.totalCount, 1);
  assert.equal(list.defaults.model, "claude-sonnet-4-6");
  const row = list.sessions[0];
  assert.equal(row.key, "agent:main:main");
  assert.equal(row.agentId, "main");
  assert.equal(row.derivedTitle, "hello world");
  assert.equal(row.lastMessagePreview, "reply number 1");
  assert.equal(row.messageCount, 2);
  assert.equal(row.inputTokens, 10);
  assert.equal(row.outputTokens, 5);
  assert.equal(row.hasActiveRun, false);
  assert.equal(row.status, "done");
  assert.equal(row.model, "claude-sonnet-4-6");
  assert.equal(row.modelProvider, "anthropic");

  const pv = await ok(c, "sessions.preview", { keys: ["main", "nope"] });
  assert.deepEqual(pv.previews[0].items.map((i: AnyFrame) => [i.role, i.text]), [
    ["user", "hello world"],
    ["assistant", "reply number 1"],
  ]);
  assert.equal(pv.previews[0].status, "ok");
  assert.deepEqual(pv.previews[1], { key: "nope", status: "missing", items: [] });

  const patched = await ok(c, "sessions.patch", {
    key: "main",
    label: "Work",
    model: "anthropic/claude-haiku-4-5",
  });
  assert.equal(patched.key, "agent:main:main");
  assert.equal(patched.entry.label, "Work");
  assert.equal(patched.entry.displayName, "Work");
  assert.equal(patched.entry.model, "claude-haiku-4-5");
  assert.equal((await changed("patch")).payload.session.label, "Work");
  assert.equal((await ok(c, "sessions.list", { label: "Work" })).count, 1);
  assert.equal((await ok(c, "sessions.list", { label: "Home" })).count, 0);
  assert.equal((await ok(c, "sessions.list", { search: "hello" })).count, 1);
  const unknown = await err(c, "sessions.patch", { key: "main", model: "nowhere/x" });
  assert.equal(unknown.code, "INVALID_REQUEST");
  // The patched model is what the next turn asks for.
  await exchange(c, "main", "second", "s2");
  assert.equal(env.fake.requests[1]!.body.model, "claude-haiku-4-5");

  const oldId = row.sessionId;
  const reset = await ok(c, "sessions.reset", { key: "main" });
  assert.equal(reset.ok, true);
  assert.notEqual(reset.entry.sessionId, oldId);
  assert.equal(reset.entry.messageCount, 0);
  assert.equal(reset.entry.label, "Work", "settings survive a reset");
  assert.equal(reset.entry.model, "claude-haiku-4-5");
  assert.equal((await changed("reset")).payload.session.sessionId, reset.entry.sessionId);
  assert.deepEqual((await history(c)).messages, []);

  await ok(c, "sessions.patch", { key: "main", label: null, model: null });
  const cleared = (await ok(c, "sessions.list", {})).sessions[0];
  assert.equal(cleared.label, undefined);
  assert.equal(cleared.model, "claude-sonnet-4-6");

  const del = await ok(c, "sessions.delete", { key: "main" });
  assert.deepEqual(del, { ok: true, key: "agent:main:main", deleted: true });
  assert.equal((await changed("deleted")).payload.sessionKey, "agent:main:main");
  assert.equal((await ok(c, "sessions.list", {})).count, 0);
  assert.equal((await ok(c, "sessions.delete", { key: "main" })).deleted, false);
  assert.equal((await err(c, "sessions.reset", { key: "main" })).details.code, "SESSION_NOT_FOUND");
});

Deno.test("sessions.compact summarises older messages; the next turn sees the summary and the kept tail", async () => {
  await using env = await setup();
  let n = 0;
  env.fake.script((body) => ({
    blocks: [{
      type: "text",
      text: String(body.system ?? "").includes("condense") ? "SUMMARY-OF-EARLIER" : `r${n++}`,
    }],
  }));
  const c = await env.client();
  for (let i = 0; i < 10; i++) await exchange(c, "main", `u${i}`, `cp${i}`);
  const r = await ok(c, "sessions.compact", { key: "main", maxLines: 4 });
  assert.deepEqual(r, {
    ok: true,
    key: "agent:main:main",
    compacted: true,
    summarized: 16,
    kept: 4,
  });
  assert.equal(env.fake.requests.length, 11);
  const sumReq = env.fake.requests[10]!.body;
  assert.match(String(sumReq.system), /condense/);
  const sumText = lines(sumReq).join("\n");
  assert.ok(sumText.includes("u0") && sumText.includes("r7"), sumText);
  assert.ok(!sumText.includes("u8"), "the kept tail is not summarised");
  assert.equal((await ok(c, "sessions.list", {})).sessions[0].compactionCount, 1);

  await exchange(c, "main", "next", "cp-next");
  const body = env.fake.requests[11]!.body;
  assert.deepEqual(lines(body), [
    "user: [Summary of the earlier conversation]\nSUMMARY-OF-EARLIER",
    "user: u8",
    "assistant: r8",
    "user: u9",
    "assistant: r9",
    "user: next",
  ]);
  // The transcript itself is kept whole (plus the compaction note).
  const h = await history(c);
  assert.equal(h.messages.filter((m: AnyFrame) => m.role === "user").length, 11);
  assert.equal(h.messages.filter((m: AnyFrame) => m.customType === "compaction").length, 1);
  // Nothing to do the second time round with a large maxLines.
  const again = await ok(c, "sessions.compact", { key: "main", maxLines: 100 });
  assert.equal(again.compacted, false);
  assert.equal(
    (await err(c, "sessions.compact", { key: "nope" })).details.code,
    "SESSION_NOT_FOUND",
  );
});

// ------------------------------------------------------------------ usage

Deno.test("usage.cost sums the tokens and prices claude-sonnet-4-6 at $3/$15 per MTok", async () => {
  await using env = await setup();
  env.fake.script(
    { blocks: [{ type: "text", text: "a" }], usage: { input_tokens: 1000, output_tokens: 2000 } },
    {
      blocks: [{ type: "text", text: "b" }],
      usage: {
        input_tokens: 500,
        output_tokens: 100,
        cache_read_input_tokens: 200,
        cache_creation_input_tokens: 100,
      },
    },
  );
  const c = await env.client();
  const f1 = await exchange(c, "main", "one", "u1");
  assert.equal(f1.usage.input, 1000);
  assert.equal(f1.usage.output, 2000);
  await exchange(c, "other", "two", "u2");
  const cost = await ok(c, "usage.cost", { days: 1 });
  const close = (a: number, b: number, what: string) =>
    assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} != ${b}`);
  const expected = 1000 * 3e-6 + 2000 * 15e-6 + 500 * 3e-6 + 100 * 15e-6 + 200 * 0.3e-6 +
    100 * 3.75e-6;
  assert.equal(cost.totals.input, 1500);
  assert.equal(cost.totals.output, 2100);
  assert.equal(cost.totals.cacheRead, 200);
  assert.equal(cost.totals.cacheWrite, 100);
  assert.equal(cost.totals.totalTokens, 3900);
  close(cost.totals.totalCost, expected, "totalCost");
  close(cost.totals.inputCost, 1500 * 3e-6, "inputCost");
  close(cost.totals.outputCost, 2100 * 15e-6, "outputCost");
  assert.equal(cost.totals.missingCostEntries, 0);
  assert.equal(cost.daily.length, 1);
  close(cost.daily[0].totalCost, expected, "daily");
  assert.deepEqual(cost.byModel.map((m: AnyFrame) => m.model), ["anthropic/claude-sonnet-4-6"]);
  assert.deepEqual(cost.byAgent.map((m: AnyFrame) => m.agentId), ["main"]);
  const bySession = Object.fromEntries(cost.bySession.map((s: AnyFrame) => [s.key, s.totalCost]));
  close(bySession["agent:main:main"], 0.033, "main session");
  close(bySession["agent:main:other"], expected - 0.033, "other session");
  const status = await ok(c, "usage.status", {});
  assert.equal(status.providers.length, 1);
  assert.equal(status.providers[0].provider, "anthropic");
  close(status.providers[0].today.totalCost, expected, "usage.status today");
});

// ------------------------------------------------------------------ OpenAI-compatible

Deno.test("a session patched to local/some-model talks to the OpenAI-compatible server", async () => {
  await using env = await setup({ openai: true });
  env.openai!.script({ parts: [{ content: "Hi" }, { content: " from local" }], delayMs: 5 });
  const c = await env.client();
  await ok(c, "sessions.patch", { key: "main", model: "local/some-model" });
  const end = await exchange(c, "main", "hello local", "oa");
  assert.equal(end.state, "final", JSON.stringify(end));
  assert.equal(end.message.content[0].text, "Hi from local");
  assert.equal(env.fake.requests.length, 0, "the Anthropic fake must not be called");
  assert.equal(env.openai!.requests.length, 1);
  const body = env.openai!.requests[0]!.body as AnyFrame;
  assert.equal(env.openai!.requests[0]!.path, "/v1/chat/completions");
  assert.equal(body.model, "some-model");
  assert.equal(body.stream, true);
  assert.equal(body.messages[0].role, "system");
  assert.deepEqual(body.messages.at(-1), { role: "user", content: "hello local" });
  const h = await history(c);
  assert.equal(h.messages[1].provider, "local");
  assert.equal(h.messages[1].model, "some-model");
  assert.equal(h.messages[1].usage.input, 12);
  const cost = await ok(c, "usage.cost", { days: 1 });
  assert.deepEqual(cost.byModel.map((m: AnyFrame) => m.model), ["local/some-model"]);
  assert.equal(cost.totals.missingCostEntries, 1, "a local model has no price");
});

// ------------------------------------------------------------------ durability

Deno.test("a restarted gateway on the same state dir keeps sessions, history and usage", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-chat-restart-" });
  try {
    await using env = await setup({ stateDir });
    replies(env.fake, (n) => `answer ${n}`);
    let c = await env.client();
    await exchange(c, "main", "first", "rs1");
    await exchange(c, "work", "second", "rs2");
    await ok(c, "sessions.patch", { key: "work", label: "Job", thinkingLevel: "minimal" });
    const before = {
      sessions: (await ok(c, "sessions.list", {})).sessions,
      main: (await history(c, "main")).messages,
      work: (await history(c, "work")).messages,
      cost: (await ok(c, "usage.cost", { days: 1 })).totals,
    };
    assert.equal(before.sessions.length, 2);
    await c.close();
    await env.t.stop();
    env.t = await startTestGateway({ stateDir, config: env.config });
    c = await env.client();
    const after = {
      sessions: (await ok(c, "sessions.list", {})).sessions,
      main: (await history(c, "main")).messages,
      work: (await history(c, "work")).messages,
      cost: (await ok(c, "usage.cost", { days: 1 })).totals,
    };
    assert.deepEqual(after, before);
    // And the conversation goes on where it stopped.
    await exchange(c, "main", "third", "rs3");
    assert.deepEqual(lines(env.fake.requests.at(-1)!.body), [
      "user: first",
      "assistant: answer 1",
      "user: third",
    ]);
    // A chat.send duplicate from before the restart is still recognised.
    const dup = await ok(c, "chat.send", {
      sessionKey: "main",
      message: "first",
      idempotencyKey: "rs1",
    });
    assert.equal(dup.cached, true);
  } finally {
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("after a SIGKILL mid-turn, the next start records the turn as interrupted", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-chat-crash-" });
  const fake = await startFakeAnthropic({ apiKey: "k-test" });
  try {
    const config = gwConfig(fake, undefined, {});
    await Deno.writeTextFile(`${stateDir}/gw.json`, JSON.stringify(config));
    fake.script({ hang: true });
    {
      await using child = await GwChild.start(stateDir);
      const c = await connected(child.url);
      try {
        const ack = await ok(c, "chat.send", {
          sessionKey: "main",
          message: "crash me",
          idempotencyKey: "crash-1",
        });
        assert.equal(ack.status, "started");
        // A second message, queued behind the first: accepted, never run.
        const queued = await ok(c, "chat.send", {
          sessionKey: "main",
          message: "queued",
          idempotencyKey: "crash-2",
        });
        assert.equal(queued.status, "started");
        await until(() => fake.requests.length === 1, "the model request", 10_000);
        child.child.kill("SIGKILL");
        const st = await child.status;
        assert.equal(st.signal, "SIGKILL");
      } finally {
        await c.close();
      }
    }
    assert.equal(await fake.requests[0]!.ended, "disconnected");
    await using t = await startTestGateway({ stateDir, config });
    const c = await connected(t.url);
    try {
      const h = await history(c);
      assert.deepEqual(
        h.messages.map((m: AnyFrame) => m.role === "custom" ? `custom:${m.customType}` : m.role),
        ["user", "custom:run-interrupted", "user", "custom:run-interrupted"],
      );
      assert.equal(h.messages[0].content, "crash me");
      assert.equal(h.messages[2].content, "queued");
      assert.equal(h.pendingInputs.total, 0);
      assert.equal(h.hasActiveRun, false);
      const row = (await ok(c, "sessions.list", {})).sessions[0];
      assert.equal(row.status, "interrupted");
      // The session works again, and the model sees the interrupted messages.
      fake.script({ blocks: [{ type: "text", text: "back" }] });
      assert.equal((await exchange(c, "main", "hello again", "crash-3")).state, "final");
      assert.deepEqual(lines(fake.requests[1]!.body), [
        "user: crash me",
        "user: queued",
        "user: hello again",
      ]);
      // A retry of an interrupted run is not "in flight": nothing runs it any more.
      const retry = await ok(c, "chat.send", {
        sessionKey: "main",
        message: "crash me",
        idempotencyKey: "crash-1",
      });
      assert.notEqual(retry.status, "in_flight", JSON.stringify(retry));
    } finally {
      await c.close();
    }
  } finally {
    await fake.close();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
});

// ------------------------------------------------------------------ params and scopes

Deno.test("bad params on every chat and sessions method: INVALID_REQUEST naming the field", async () => {
  await using env = await setup();
  const c = await env.client();
  const cases: [string, Record<string, unknown>, string][] = [
    ["chat.send", { message: "x", idempotencyKey: "k" }, "params.sessionKey"],
    ["chat.send", { sessionKey: "main", message: 5, idempotencyKey: "k" }, "params.message"],
    [
      "chat.send",
      { sessionKey: "main", message: "x", idempotencyKey: "" },
      "params.idempotencyKey",
    ],
    [
      "chat.send",
      { sessionKey: "main", message: "x", idempotencyKey: "k", thinking: "huge" },
      "params.thinking",
    ],
    [
      "chat.send",
      { sessionKey: "main", message: "x", idempotencyKey: "k", timeoutMs: 5 },
      "params.timeoutMs",
    ],
    ["chat.send", { sessionKey: "   ", message: "x", idempotencyKey: "k" }, "params.sessionKey"],
    [
      "chat.send",
      { sessionKey: "main", message: "x".repeat(100_001), idempotencyKey: "k" },
      "params.message",
    ],
    [
      "chat.send",
      { sessionKey: "main", message: "x", idempotencyKey: "k", attachments: [{}] },
      "params.attachments",
    ],
    ["agent", { idempotencyKey: "k" }, "params.message"],
    ["agent", { message: "x" }, "params.idempotencyKey"],
    ["agent", { message: "x", idempotencyKey: "k", timeout: -1 }, "params.timeout"],
    ["agent", { message: "x", idempotencyKey: "k", thinking: 3 }, "params.thinking"],
    ["agent.wait", {}, "params.runId"],
    ["agent.wait", { runId: "r", timeoutMs: -1 }, "params.timeoutMs"],
    ["chat.history", {}, "params.sessionKey"],
    ["chat.history", { sessionKey: "main", limit: 0 }, "params.limit"],
    ["chat.history", { sessionKey: "main", before: -1 }, "params.before"],
    ["chat.history", { sessionKey: "main", maxBytes: 10 }, "params.maxBytes"],
    ["chat.abort", { sessionKey: 5 }, "params.sessionKey"],
    ["chat.abort", { sessionKey: "main", runId: "" }, "params.runId"],
    ["send", { message: "x", idempotencyKey: "k" }, "params.to"],
    ["sessions.list", { limit: 0 }, "params.limit"],
    ["sessions.list", { offset: -1 }, "params.offset"],
    ["sessions.preview", { keys: [] }, "params.keys"],
    ["sessions.preview", { keys: ["main"], maxChars: 1 }, "params.maxChars"],
    ["sessions.patch", { label: "x" }, "params.key"],
    ["sessions.patch", { key: "main", thinkingLevel: "huge" }, "params.thinkingLevel"],
    ["sessions.patch", { key: "main", verboseLevel: true }, "params.verboseLevel"],
    ["sessions.reset", {}, "params.key"],
    ["sessions.delete", { key: "main", deleteTranscript: "yes" }, "params.deleteTranscript"],
    ["sessions.compact", { key: "main", maxLines: 0 }, "params.maxLines"],
    ["usage.cost", { days: 0 }, "params.days"],
  ];
  for (const [method, params, field] of cases) {
    const e = await err(c, method, params);
    assert.equal(e.code, "INVALID_REQUEST", `${method} ${JSON.stringify(params).slice(0, 80)}`);
    assert.ok(
      e.message.includes(field),
      `${method} ${JSON.stringify(params).slice(0, 80)}: '${e.message}' should name ${field}`,
    );
  }
  const badKey = await err(c, "chat.send", {
    sessionKey: "agent::x",
    message: "x",
    idempotencyKey: "k",
  });
  assert.equal(badKey.details.code, "INVALID_SESSION_KEY");
  const noAgent = await err(c, "chat.send", {
    sessionKey: "agent:ghost:main",
    message: "x",
    idempotencyKey: "k",
  });
  assert.equal(noAgent.details.code, "UNKNOWN_AGENT_ID");
  const noRun = await err(c, "agent.wait", { runId: "never", timeoutMs: 0 });
  assert.equal(noRun.details.code, "RUN_NOT_FOUND");
  // Nothing reached the model, and the connection is still good.
  assert.equal(env.fake.requests.length, 0);
  assert.equal(c.isClosed, false);
  assert.equal((await ok(c, "health", {})).ok, true);
  assert.equal((await ok(c, "sessions.list", {})).count, 0, "no session was created by a bad call");
});

Deno.test("scopes: read cannot chat.send, write patches settings but not verbosity, chat events need read", async () => {
  await using env = await setup();
  env.fake.script({ blocks: [{ type: "text", text: ["vis", "ible"] }], delayMs: 10 });
  const admin = await env.client();
  const reader = await env.client({ minProtocol: 4, maxProtocol: 4, scopes: ["operator.read"] });
  const writer = await env.client({ minProtocol: 4, maxProtocol: 4, scopes: ["operator.write"] });
  const blind = await env.client({
    minProtocol: 4,
    maxProtocol: 4,
    scopes: ["operator.approvals"],
  });
  const hello = (c: RawClient) => c.frames.find((f) => f.id === "connect").payload;
  assert.deepEqual(hello(blind).auth.scopes, ["operator.approvals"]);

  const denied = await err(reader, "chat.send", {
    sessionKey: "main",
    message: "x",
    idempotencyKey: "sc0",
  });
  assert.equal(denied.code, "FORBIDDEN");
  assert.equal(denied.details.missingScope, "operator.write");
  assert.equal((await err(reader, "chat.abort", { sessionKey: "main" })).code, "FORBIDDEN");
  assert.equal(
    (await err(reader, "agent", { message: "x", idempotencyKey: "sc0" })).code,
    "FORBIDDEN",
  );
  // A session's own settings need write (as OpenClaw); what replies reveal needs admin.
  await ok(writer, "sessions.patch", {
    key: "main",
    label: "x",
    archived: false,
    thinkingLevel: "On",
  });
  const patch = await err(writer, "sessions.patch", { key: "main", verboseLevel: "on" });
  assert.equal(patch.code, "FORBIDDEN");
  assert.equal(patch.details.missingScope, "operator.admin");
  assert.equal(
    (await err(reader, "sessions.patch", { key: "main", label: "y" })).code,
    "FORBIDDEN",
  );
  for (const m of ["sessions.reset", "sessions.delete", "sessions.compact"]) {
    assert.equal((await err(writer, m, { key: "main" })).code, "FORBIDDEN", m);
  }
  assert.equal((await err(blind, "chat.history", { sessionKey: "main" })).code, "FORBIDDEN");
  assert.equal(env.fake.requests.length, 0);

  // The writer may chat; the reader and the writer see the stream, the blind one nothing.
  await ok(writer, "chat.send", { sessionKey: "main", message: "x", idempotencyKey: "sc1" });
  for (const c of [admin, reader, writer]) assert.equal((await chatEnd(c, "sc1")).state, "final");
  await ok(reader, "chat.history", { sessionKey: "main" });
  await sleep(50);
  const leaked = blind.frames.filter((f) =>
    f.type === "event" && ["chat", "agent", "sessions.changed"].includes(f.event)
  );
  assert.deepEqual(leaked, []);
  assert.equal(blind.isClosed, false);
});

Deno.test("status and health count sessions and list the recent ones", async () => {
  await using env = await setup();
  env.fake.script(() => ({ blocks: [{ type: "text", text: "ok" }] }));
  const c = await env.client();
  await ok(c, "chat.send", { sessionKey: "one", message: "a", idempotencyKey: "s1" });
  await chatEnd(c, "s1");
  await ok(c, "chat.send", { sessionKey: "two", message: "b", idempotencyKey: "s2" });
  await chatEnd(c, "s2");
  const st = await ok(c, "status");
  assert.equal(st.sessions.count, 2);
  assert.deepEqual(st.sessions.recent.map((r: AnyFrame) => r.key), [
    "agent:main:two",
    "agent:main:one",
  ]);
  assert.equal(st.sessions.byAgent[0].count, 2);
  // health's snapshot follows within about a second of the change.
  let h: AnyFrame;
  const deadline = Date.now() + 3000;
  do {
    await sleep(200);
    h = await ok(c, "health", { probe: true });
  } while (h.sessions.count !== 2 && Date.now() < deadline);
  assert.equal(h.sessions.count, 2);
  assert.equal(h.sessions.recent[0].key, "agent:main:two");
});

Deno.test("runTurn (the runtime's entry for cron and channels) queues behind chat.send and returns the outcome", async () => {
  await using env = await setup();
  env.fake.script(
    { blocks: [{ type: "text", text: ["first", " reply"] }], delayMs: 30 },
    { blocks: [{ type: "text", text: "second reply" }] },
  );
  const c = await env.client();
  await ok(c, "chat.send", { sessionKey: "main", message: "one", idempotencyKey: "rt1" });
  const o = await env.t.gw.agent.runTurn("agent:main:main", "two", { source: "cron" });
  assert.equal(o.status, "ok");
  assert.equal(o.text, "second reply");
  const h = await history(c);
  assert.deepEqual(h.messages.map((m: AnyFrame) => m.role), [
    "user",
    "assistant",
    "user",
    "assistant",
  ]);
  assert.equal(h.messages[1].content[0].text, "first reply");
});

Deno.test("sessions: archived ones leave the default list; thinking aliases; agent --timeout 0 means none", async () => {
  await using env = await setup();
  env.fake.script(() => ({ blocks: [{ type: "text", text: "ok" }] }));
  const c = await env.client();
  await exchange(c, "keep", "a", "ar1");
  await exchange(c, "old", "b", "ar2");
  const patched = await ok(c, "sessions.patch", {
    key: "old",
    archived: true,
    thinkingLevel: "auto",
  });
  assert.equal(patched.entry.archived, true);
  assert.equal(typeof patched.entry.archivedAt, "number");
  assert.equal(patched.entry.thinkingLevel, "adaptive");
  const keys = async (p: Record<string, unknown>) =>
    (await ok(c, "sessions.list", p)).sessions.map((s: AnyFrame) => s.key).sort();
  assert.deepEqual(await keys({}), ["agent:main:keep"]);
  assert.deepEqual(await keys({ archived: true }), ["agent:main:old"]);
  assert.deepEqual(await keys({ archived: "all" }), ["agent:main:keep", "agent:main:old"]);
  await ok(c, "sessions.patch", { key: "old", archived: false });
  assert.deepEqual(await keys({}), ["agent:main:keep", "agent:main:old"]);
  // thinking "adaptive" is a budget the provider gets.
  await exchange(c, "old", "c", "ar3");
  const body = env.fake.requests.at(-1)!.body as { thinking?: { budget_tokens: number } };
  assert.equal(body.thinking?.budget_tokens, 10_000);
  // timeout 0: accepted, no per-run timeout.
  const [first, final] = await responses(c, "agent", {
    message: "d",
    idempotencyKey: "ar4",
    timeout: 0,
  }, "t0");
  assert.equal(first.payload.status, "accepted");
  assert.deepEqual(Object.keys(first.payload).sort(), [
    "acceptedAt",
    "agentId",
    "runId",
    "sessionKey",
    "status",
  ]);
  assert.equal(final.payload.status, "ok");
});
