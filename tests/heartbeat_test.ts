/**
 * Heartbeats as agent turns: a real gateway on a manual clock, the real
 * Anthropic SDK against the fake Anthropic API, and (for delivery) the
 * Telegram Bot API test server.
 */
import assert from "node:assert/strict";
import { type AnyFrame, connected, err, ok, type RawClient, startTestGateway } from "./_helpers.ts";
import { type FakeAnthropic, startFakeAnthropic } from "./_fake_anthropic.ts";
import { ManualClock } from "./_clock.ts";
import { TelegramApi } from "./_telegram_api.ts";
import { isHeartbeatContentEmpty, stripHeartbeatToken } from "../lib/heartbeat.ts";

const HALF_HOUR = 30 * 60_000;

function agentConfig(fake: FakeAnthropic, extra: Record<string, unknown> = {}) {
  return {
    agents: { defaults: { model: "anthropic/claude-sonnet-4-6", heartbeat: { ...extra } } },
    models: { providers: { anthropic: { apiKey: "k-test", baseUrl: fake.url } } },
  };
}

/** A gateway on a manual clock with the fake model; `reply` answers every model call. */
async function setup(
  o: { heartbeat?: Record<string, unknown>; channels?: Record<string, unknown> } = {},
) {
  const fake = await startFakeAnthropic({ apiKey: "k-test" });
  const clock = new ManualClock();
  const t = await startTestGateway({
    clock,
    config: { ...agentConfig(fake, o.heartbeat), ...(o.channels ? { channels: o.channels } : {}) },
  });
  const c = await connected(t.url);
  let reply = "HEARTBEAT_OK";
  fake.script(() => ({ blocks: [{ type: "text", text: reply }] }));
  return {
    fake,
    clock,
    t,
    c,
    reply(text: string) {
      reply = text;
    },
    /** Write the default agent's HEARTBEAT.md. */
    async heartbeatFile(text: string) {
      await Deno.mkdir(`${t.stateDir}/workspace`, { recursive: true });
      await Deno.writeTextFile(`${t.stateDir}/workspace/HEARTBEAT.md`, text);
    },
    /** Advance the clock to the next scheduled heartbeat and return its event. */
    async nextBeat(): Promise<AnyFrame> {
      const ev = c.nextEvent("heartbeat", 10_000);
      clock.advance(HALF_HOUR);
      return (await ev).payload;
    },
    async [Symbol.asyncDispose]() {
      await c.close();
      await t.stop();
      await fake.close();
    },
  };
}

async function history(c: RawClient): Promise<AnyFrame[]> {
  return (await ok(c, "chat.history", { sessionKey: "main" })).messages;
}

function userText(body: Record<string, unknown>): string {
  const m = (body.messages as { role: string; content: string | AnyFrame[] }[]).at(-1)!;
  return typeof m.content === "string"
    ? m.content
    : m.content.map((b: AnyFrame) => b.text ?? "").join("");
}

Deno.test("HEARTBEAT_OK detection and empty HEARTBEAT.md, as OpenClaw reads them", () => {
  assert.deepEqual(stripHeartbeatToken("HEARTBEAT_OK"), { silent: true, text: "", didStrip: true });
  assert.equal(stripHeartbeatToken("**HEARTBEAT_OK**").silent, true);
  assert.equal(stripHeartbeatToken("All quiet. HEARTBEAT_OK").silent, true);
  assert.equal(stripHeartbeatToken("").silent, true);
  const long = `HEARTBEAT_OK ${"x".repeat(400)}`;
  assert.deepEqual(stripHeartbeatToken(long), {
    silent: false,
    text: "x".repeat(400),
    didStrip: true,
  });
  assert.deepEqual(stripHeartbeatToken("The server is down."), {
    silent: false,
    text: "The server is down.",
    didStrip: false,
  });
  assert.equal(isHeartbeatContentEmpty("# Heartbeat\n\n<!-- nothing yet -->\n- [ ]\n"), true);
  assert.equal(isHeartbeatContentEmpty("# Heartbeat\n- check the inbox\n"), false);
});

Deno.test("no HEARTBEAT.md, or an empty one: the heartbeat is skipped without a model call", async () => {
  await using env = await setup();
  const a = await env.nextBeat();
  assert.equal(a.status, "skipped");
  assert.equal(a.reason, "no-heartbeat-file");
  assert.equal(a.agentId, "main");
  await env.heartbeatFile("# Heartbeat\n\n<!-- add tasks here -->\n- \n");
  const b = await env.nextBeat();
  assert.equal(b.reason, "empty-heartbeat-file");
  assert.equal(env.fake.requests.length, 0);
  assert.deepEqual(await ok(env.c, "last-heartbeat", {}), b);
});

Deno.test("a heartbeat answered HEARTBEAT_OK is silent and leaves the transcript as it was", async () => {
  await using env = await setup();
  // A conversation first: it must survive the heartbeat untouched.
  env.reply("Hello!");
  await ok(env.c, "chat.send", { sessionKey: "main", message: "hi", idempotencyKey: "c1" });
  await env.c.next((f) => f.event === "chat" && f.payload.state === "final", 10_000);
  const before = await history(env.c);
  const listed = async () =>
    (await ok(env.c, "sessions.list", {})).sessions.find((s: AnyFrame) =>
      s.key === "agent:main:main"
    );
  const entryBefore = await listed();

  await env.heartbeatFile("# Heartbeat\n- If the build is red, say so.\n");
  env.reply("HEARTBEAT_OK");
  const ev = await env.nextBeat();
  assert.equal(ev.status, "ok-token");
  assert.equal(ev.silent, true);
  assert.equal(ev.text, undefined);
  assert.equal(env.fake.requests.length, 2);
  const body = env.fake.requests[1]!.body;
  assert.match(String(body.system), /If the build is red, say so\./, "HEARTBEAT.md is given");
  assert.match(userText(body), /reply exactly HEARTBEAT_OK/);
  assert.deepEqual(await history(env.c), before, "the heartbeat turn is not in the transcript");
  const entryAfter = await listed();
  assert.equal(entryAfter.updatedAt, entryBefore.updatedAt, "the session does not look active");
  assert.deepEqual(await ok(env.c, "last-heartbeat", {}), ev);

  // The next turn's context has no trace of it either.
  env.reply("Sure.");
  await ok(env.c, "chat.send", { sessionKey: "main", message: "again", idempotencyKey: "c2" });
  await env.c.next(
    (f) => f.event === "chat" && f.payload.runId === "c2" && f.payload.state === "final",
    10_000,
  );
  const msgs = env.fake.requests[2]!.body.messages as AnyFrame[];
  assert.equal(msgs.length, 3, JSON.stringify(msgs));
  assert.doesNotMatch(JSON.stringify(msgs), /HEARTBEAT/);
});

Deno.test("a heartbeat that says something: the event carries it and it stays in the transcript", async () => {
  await using env = await setup();
  await env.heartbeatFile("- Remind me of the 10:00 meeting.\n");
  env.reply("Your meeting starts at 10:00.");
  const ev = await env.nextBeat();
  assert.equal(ev.status, "skipped", "no delivery target is configured (OpenClaw's status)");
  assert.equal(ev.reason, "target-none");
  assert.equal(ev.text, "Your meeting starts at 10:00.");
  assert.equal(ev.preview, "Your meeting starts at 10:00.");
  assert.equal(ev.silent, false);
  const h = await history(env.c);
  assert.deepEqual(h.map((m: AnyFrame) => m.role), ["user", "assistant"]);
  assert.equal(h[1].content[0].text, "Your meeting starts at 10:00.");
  assert.deepEqual(await ok(env.c, "last-heartbeat", {}), ev);
});

Deno.test("a heartbeat message is delivered to heartbeat.target / heartbeat.to", async () => {
  const token = "777777:AAheartbeat-test-token-abcdef";
  await using tg = await TelegramApi.start({ tokens: [token] });
  await using env = await setup({
    heartbeat: { target: "telegram", to: "4242" },
    channels: { telegram: { botToken: token, apiRoot: tg.apiRoot } },
  });
  await env.heartbeatFile("- Say good morning.\n");
  env.reply("Good morning!");
  const ev = await env.nextBeat();
  assert.equal(ev.status, "sent", JSON.stringify(ev));
  assert.equal(ev.channel, "telegram");
  assert.equal(ev.to, "4242");
  const call = await tg.waitForCall((x) => x.method === "sendMessage" && x.token === token);
  assert.equal(Number(call.params.chat_id), 4242);
  assert.match(String(call.params.text), /Good morning!/);
});

Deno.test("wake: next-heartbeat queues the text; now runs a heartbeat at once that sees it", async (t) => {
  await using env = await setup();
  await t.step("next-heartbeat only queues", async () => {
    assert.deepEqual(
      await ok(env.c, "wake", { mode: "next-heartbeat", text: "Backup finished." }),
      { ok: true },
    );
    const s = await ok(env.c, "status", {});
    assert.deepEqual(s.queuedSystemEvents, ["Backup finished."]);
    assert.equal(env.fake.requests.length, 0);
  });
  await t.step(
    "now runs a heartbeat, even without HEARTBEAT.md, with the queued events",
    async () => {
      env.reply("HEARTBEAT_OK");
      const hb = env.c.nextEvent("heartbeat", 10_000);
      assert.deepEqual(await ok(env.c, "wake", { mode: "now", text: "Deploy failed on web-2." }), {
        ok: true,
      });
      const ev = (await hb).payload;
      assert.equal(ev.status, "ok-token");
      assert.equal(env.fake.requests.length, 1);
      const system = String(env.fake.requests[0]!.body.system);
      assert.match(system, /Backup finished\./);
      assert.match(system, /Deploy failed on web-2\./);
      assert.deepEqual((await ok(env.c, "status", {})).queuedSystemEvents, [], "drained");
      assert.deepEqual(await history(env.c), []);
    },
  );
  await t.step("bad targets are refused", async () => {
    const e = await err(env.c, "wake", { mode: "now", text: "x", agentId: "nobody" });
    assert.equal(e.details.code, "AGENT_NOT_FOUND");
    const e2 = await err(env.c, "wake", { mode: "later", text: "x" });
    assert.match(e2.message, /params\.mode/);
    const e3 = await err(env.c, "wake", { mode: "now", text: "  " });
    assert.match(e3.message, /params\.text/);
    const e4 = await err(env.c, "wake", {
      mode: "now",
      text: "x",
      agentId: "main",
      sessionKey: "agent:other:main",
    });
    assert.match(e4.message, /contradicts/);
  });
  await t.step("with heartbeats switched off, wake now records a skipped heartbeat", async () => {
    await ok(env.c, "set-heartbeats", { enabled: false });
    const hb = env.c.nextEvent("heartbeat", 10_000);
    await ok(env.c, "wake", { mode: "now", text: "Anyone there?" });
    const ev = (await hb).payload;
    assert.equal(ev.status, "skipped");
    assert.equal(ev.reason, "disabled");
    assert.equal(env.fake.requests.length, 1, "no model call");
    assert.deepEqual((await ok(env.c, "status", {})).queuedSystemEvents, ["Anyone there?"]);
  });
});

Deno.test("a failed heartbeat turn is recorded as failed", async () => {
  await using env = await setup();
  await env.heartbeatFile("- Check things.\n");
  env.fake.script({ error: { status: 400, type: "invalid_request_error", message: "bad prompt" } });
  const ev = await env.nextBeat();
  assert.equal(ev.status, "failed");
  assert.match(ev.reason, /bad prompt/);
});
