/**
 * The setup wizard (`wizard.start`, `wizard.next`, `wizard.cancel`,
 * `wizard.status`) over a real gateway and real sockets. The model key is
 * checked against a fake Anthropic or OpenAI-compatible API on real sockets
 * (tests/_fake_anthropic.ts, tests/_fake_openai.ts), the bot token against a
 * Bot API server (tests/_telegram_api.ts): each accepts one secret and
 * answers 401 to the rest, as the real services do.
 */
import assert from "node:assert/strict";
import {
  type AnyFrame,
  connected,
  connectParams,
  err,
  ok,
  RawClient,
  startTestGateway,
  TEST_TOKEN,
} from "./_helpers.ts";
import { startFakeAnthropic } from "./_fake_anthropic.ts";
import { startFakeOpenAI } from "./_fake_openai.ts";
import { TelegramApi } from "./_telegram_api.ts";
import { ManualClock } from "./_clock.ts";
import { configSchema } from "../lib/config/mod.ts";

const GOOD_KEY = "sk-ant-wizard-good-key-0123456789";
const BAD_KEY = "sk-ant-wizard-bad-key-9876543210";
const BOT_TOKEN = "424242:wizard-good-bot-token-abcdef";
const BAD_BOT_TOKEN = "434343:wizard-bad-bot-token-zyxwvu";
const PASSWORD = "correct-horse-battery";

/** The config of a test gateway whose secret is in gw.json (so the wizard can change it). */
function tokenInConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { gateway: { auth: { token: TEST_TOKEN } }, ...extra };
}

/** Answer the current step of `r` (a start or next result) and return the next result. */
async function answer(c: RawClient, sessionId: string, r: AnyFrame, value: unknown) {
  assert.equal(r.done, false, `expected a step, got ${JSON.stringify(r)}`);
  return await ok(c, "wizard.next", { sessionId, answer: { stepId: r.step.id, value } });
}

/** The step key of a step id (`model.apiKey#4` → `model.apiKey`). */
function keyOf(r: AnyFrame): string {
  assert.ok(r.step, `expected a step, got ${JSON.stringify(r)}`);
  return String(r.step.id).split("#")[0]!;
}

function noSecrets(text: string, secrets: string[], what: string): void {
  for (const s of secrets) {
    assert.ok(!text.includes(s), `${what} contains a secret (${s.slice(0, 6)}…)`);
  }
}

async function readLog(stateDir: string): Promise<string> {
  return await Deno.readTextFile(`${stateDir}/logs/gw.log`).catch(() => "");
}

/** Poll `check` until it returns a value; fail after `ms`. */
async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("wizard: Anthropic key, Telegram bot and a password, checked, saved and in effect", async (t) => {
  await using fake = await startFakeAnthropic({ apiKey: GOOD_KEY });
  fake.script(() => ({ blocks: [{ type: "text", text: "OK" }] }));
  const tg = await TelegramApi.start({ tokens: { [BOT_TOKEN]: { username: "wizard_bot" } } });
  await using gw = await startTestGateway({
    token: "",
    config: tokenInConfig({ models: { providers: { anthropic: { baseUrl: fake.url } } } }),
  });
  const secrets = [GOOD_KEY, BAD_KEY, BOT_TOKEN, BAD_BOT_TOKEN, PASSWORD];
  const c = await connected(gw.url);
  let sid = "";
  let r: AnyFrame;
  try {
    await t.step("start shows gateway access first, keep preselected", async () => {
      r = await ok(c, "wizard.start", {});
      sid = r.sessionId;
      assert.match(sid, /^[0-9a-f-]{36}$/);
      assert.equal(r.done, false);
      assert.equal(r.status, "running");
      assert.equal(keyOf(r), "auth.mode");
      assert.equal(r.step.type, "select");
      assert.equal(r.step.title, "Gateway access");
      assert.deepEqual(r.step.options.map((o: AnyFrame) => o.value), ["keep", "token", "password"]);
      assert.equal(r.step.options[0].label, "Keep the current token");
      assert.equal(r.step.initialValue, "keep");
    });

    await t.step("a password: too short or mistyped asks again, then taken", async () => {
      r = await answer(c, sid, r, "password");
      assert.equal(keyOf(r), "auth.password");
      assert.equal(r.step.type, "text");
      assert.equal(r.step.sensitive, true);
      assert.equal("initialValue" in r.step, false);
      const short = await answer(c, sid, r, "short");
      assert.equal(short.step.id, r.step.id, "the same step again");
      assert.match(short.error, /at least 8 characters/);
      r = await answer(c, sid, short, PASSWORD);
      assert.equal(keyOf(r), "auth.passwordAgain");
      assert.equal(r.step.sensitive, true);
      r = await answer(c, sid, r, "correct-horse-battery-typo");
      assert.equal(keyOf(r), "auth.password", "two different passwords: choose it again");
      assert.match(r.error, /The two passwords differ/);
      r = await answer(c, sid, r, PASSWORD);
      r = await answer(c, sid, r, PASSWORD);
      assert.equal(keyOf(r), "model.provider");
    });

    await t.step(
      "Anthropic: a rejected key shows the key step again, the good one moves on",
      async () => {
        assert.deepEqual(
          r.step.options.map((o: AnyFrame) => o.value),
          ["anthropic", "ollama", "llamacpp", "vllm", "openai", "custom", "skip"],
        );
        r = await answer(c, sid, r, "anthropic");
        assert.equal(keyOf(r), "model.model");
        assert.equal(r.step.initialValue, "claude-sonnet-4-6");
        r = await answer(c, sid, r, ""); // empty: the default shown
        assert.equal(keyOf(r), "model.apiKey");
        assert.equal(r.step.sensitive, true);
        const before = fake.requests.length;
        const bad = await answer(c, sid, r, BAD_KEY);
        assert.equal(keyOf(bad), "model.apiKey", "the key step again");
        assert.notEqual(bad.step.id, r.step.id, "a new step id: the old answer was taken");
        assert.match(bad.error, /rejected/i);
        assert.match(bad.error, /401/);
        assert.equal(fake.requests.length, before + 1, "one real request with the bad key");
        assert.equal(fake.requests.at(-1)!.body.max_tokens, 1);
        r = await answer(c, sid, bad, GOOD_KEY);
        assert.equal(r.error, undefined);
        assert.equal(keyOf(r), "telegram.mode");
        assert.equal(fake.requests.length, before + 2);
        assert.equal(fake.requests.at(-1)!.body.model, "claude-sonnet-4-6");
      },
    );

    await t.step(
      "Telegram: a self-hosted Bot API root, a rejected token, then the bot",
      async () => {
        assert.deepEqual(r.step.options.map((o: AnyFrame) => o.value), [
          "skip",
          "telegram",
          "custom",
        ]);
        r = await answer(c, sid, r, "custom");
        assert.equal(keyOf(r), "telegram.apiRoot");
        r = await answer(c, sid, r, "not a url");
        assert.match(r.error, /http\(s\) URL/);
        r = await answer(c, sid, r, tg.apiRoot + "/");
        assert.equal(keyOf(r), "telegram.token");
        const bad = await answer(c, sid, r, BAD_BOT_TOKEN);
        assert.equal(keyOf(bad), "telegram.token");
        assert.match(bad.error, /Telegram rejected this token \(401/);
        r = await answer(c, sid, bad, BOT_TOKEN);
        assert.equal(r.error, undefined);
        assert.equal(tg.callsOf("getMe", BOT_TOKEN).length, 1);
      },
    );

    await t.step("voice: text only", async () => {
      if (!("tts" in configSchema.shape)) return;
      assert.equal(keyOf(r), "tts.provider");
      assert.deepEqual(
        r.step.options.map((o: AnyFrame) => o.value),
        ["skip", "openai", "elevenlabs", "espeak-ng"],
      );
      r = await answer(c, sid, r, "skip");
    });

    await t.step("the review lists the changes; nothing is written before yes", async () => {
      assert.equal(keyOf(r), "summary");
      assert.equal(r.step.type, "confirm");
      assert.equal(r.step.initialValue, true);
      assert.match(r.step.message, /Gateway access: the password you chose/);
      assert.match(r.step.message, /Model: anthropic\/claude-sonnet-4-6 \(checked\)/);
      assert.match(r.step.message, /Telegram: the bot @wizard_bot/);
      assert.match(r.step.message, /disconnected when you save/);
      const raw = JSON.parse(await Deno.readTextFile(`${gw.stateDir}/gw.json`));
      assert.equal(raw.models.providers.anthropic.apiKey, undefined);
      assert.equal(raw.channels, undefined);
    });

    await t.step(
      "yes: done, and the socket that changed the secret is closed after the answer",
      async () => {
        const done = await answer(c, sid, r, true);
        assert.deepEqual(done, {
          done: true,
          status: "done",
          channels: ["telegram"],
          accounts: [{ channel: "telegram", accountId: "default" }],
          modelActivation: { modelRef: "anthropic/claude-sonnet-4-6" },
        });
        const closed = await c.closed;
        assert.equal(closed.reason, "gateway auth changed");
      },
    );
  } finally {
    await c.close();
  }

  await t.step("gw.json: merged, valid, mode 0600", async () => {
    const path = `${gw.stateDir}/gw.json`;
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const saved = JSON.parse(await Deno.readTextFile(path));
    assert.equal(configSchema.safeParse(saved).success, true);
    assert.deepEqual(saved.gateway.auth, {
      token: TEST_TOKEN,
      mode: "password",
      password: PASSWORD,
    });
    assert.deepEqual(saved.models.providers.anthropic, { baseUrl: fake.url, apiKey: GOOD_KEY });
    assert.equal(saved.agents.defaults.model, "anthropic/claude-sonnet-4-6");
    assert.deepEqual(saved.channels.telegram, {
      enabled: true,
      botToken: BOT_TOKEN,
      apiRoot: tg.apiRoot,
    });
  });

  await t.step(
    "in effect: the password signs in, the old token does not, the key answers",
    async () => {
      const old = new RawClient(gw.url);
      const refused = await old.connect(connectParams());
      assert.equal(refused.ok, false);
      await old.close();
      const p = await connected(gw.url, { auth: { password: PASSWORD } });
      try {
        const status = await ok(p, "status");
        assert.equal(status.sessions.defaults.model, "anthropic/claude-sonnet-4-6");
        const reply = await p.request("agent", {
          message: "hello",
          idempotencyKey: "wizard-agent-1",
          sessionKey: "agent:main:wizard",
        });
        assert.equal(reply.ok, true, JSON.stringify(reply));
        const final = await p.next(
          (f) => f.id === reply.id && f.payload?.status !== "accepted",
          10_000,
        );
        assert.equal(final.ok, true, JSON.stringify(final));
        const h = fake.requests.at(-1)!.headers;
        assert.equal(h["x-api-key"] ?? h["authorization"]?.replace(/^Bearer /i, ""), GOOD_KEY);
        await until("the bot is running", async () => {
          const s = await ok(p, "channels.status", {});
          const a = s.channelAccounts?.telegram?.[0];
          return a?.running ? a : undefined;
        });
        assert.ok(tg.callsOf("getUpdates", BOT_TOKEN).length > 0);
      } finally {
        await p.close();
      }
    },
  );

  await t.step("no secret in any step, result or log line", async () => {
    noSecrets(JSON.stringify(c.frames), secrets, "the wizard's answers");
    const log = await readLog(gw.stateDir);
    assert.match(log, /wizard saved the config/);
    assert.match(log, /wizard: model check failed/);
    noSecrets(log, secrets, "gw.log");
  });
  await gw.stop();
  await tg.close();
});

Deno.test("wizard: an OpenAI-compatible server: unreachable URL, missing key, then saved", async () => {
  await using fake = await startFakeOpenAI({ apiKey: "local-server-key" });
  fake.script(() => ({ parts: [{ content: "OK" }] }));
  await using gw = await startTestGateway();
  const c = await connected(gw.url);
  try {
    let r = await ok(c, "wizard.start", {});
    const sid = r.sessionId;
    assert.equal(r.step.options[0].label, "Keep how clients sign in now");
    r = await answer(c, sid, r, "keep");
    r = await answer(c, sid, r, "custom");
    assert.equal(keyOf(r), "model.baseUrl");
    assert.equal(r.step.initialValue, undefined, "no built-in URL for a custom server");
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closedPort = (l.addr as Deno.NetAddr).port;
    l.close();
    r = await answer(c, sid, r, `http://127.0.0.1:${closedPort}/v1`);
    assert.equal(keyOf(r), "model.model");
    assert.equal(r.step.initialValue, undefined);
    const noName = await answer(c, sid, r, "");
    assert.match(noName.error, /model's name/);
    r = await answer(c, sid, noName, "qwen3");
    assert.equal(keyOf(r), "model.apiKey");
    assert.match(r.step.message, /Enter for none/);
    r = await answer(c, sid, r, "");
    assert.equal(keyOf(r), "model.baseUrl", "an unreachable server: back to its URL");
    assert.match(r.error, /Could not reach custom/);
    assert.equal(r.step.initialValue, `http://127.0.0.1:${closedPort}/v1`, "what was typed");
    r = await answer(c, sid, r, `${fake.url}/v1`);
    assert.equal(r.step.initialValue, "qwen3", "the model typed before");
    r = await answer(c, sid, r, "");
    r = await answer(c, sid, r, "");
    assert.equal(keyOf(r), "model.apiKey", "the server wants a key");
    assert.match(r.error, /custom requires an API key and none is configured \(401/);
    r = await answer(c, sid, r, "local-server-key");
    assert.equal(keyOf(r), "telegram.mode");
    assert.equal(fake.requests.at(-1)!.body.model, "qwen3");
    r = await answer(c, sid, r, "skip");
    if (keyOf(r) === "tts.provider") r = await answer(c, sid, r, "skip");
    assert.match(r.step.message, /Model: custom\/qwen3 \(checked\)/);
    assert.match(r.step.message, /Gateway access: unchanged/);
    assert.match(r.step.message, /Telegram: not set up/);
    const done = await answer(c, sid, r, true);
    assert.deepEqual(done, {
      done: true,
      status: "done",
      modelActivation: { modelRef: "custom/qwen3" },
    });
    const saved = JSON.parse(await Deno.readTextFile(`${gw.stateDir}/gw.json`));
    assert.deepEqual(saved, {
      models: {
        providers: {
          custom: {
            api: "openai-completions",
            baseUrl: `${fake.url}/v1`,
            apiKey: "local-server-key",
          },
        },
      },
      agents: { defaults: { model: "custom/qwen3" } },
    });
    assert.equal(configSchema.safeParse(saved).success, true);
    const status = await ok(c, "status");
    assert.equal(status.sessions.defaults.model, "custom/qwen3");
    assert.equal(c.isClosed, false, "the secret did not change: the socket stays");
    noSecrets(JSON.stringify(c.frames), ["local-server-key"], "the wizard's answers");
  } finally {
    await c.close();
  }
});

Deno.test("wizard: one at a time, resumed after a reconnect, cancelled without writing", async (t) => {
  await using gw = await startTestGateway();
  const path = `${gw.stateDir}/gw.json`;
  const first = await connected(gw.url);
  let sid = "";
  let r: AnyFrame;
  await t.step("a second start while one runs is refused, naming the running one", async () => {
    r = await ok(first, "wizard.start", {});
    sid = r.sessionId;
    r = await answer(first, sid, r, "keep");
    assert.equal(keyOf(r), "model.provider");
    const other = await connected(gw.url);
    const e = await err(other, "wizard.start", { flow: "channels" });
    assert.equal(e.code, "UNAVAILABLE");
    assert.equal(e.retryable, true);
    assert.deepEqual(e.details, { code: "SETUP_ADMISSION_BUSY", sessionId: sid });
    await other.close();
    await first.close();
  });

  const c = await connected(gw.url);
  try {
    await t.step("another connection: status, then the current step again", async () => {
      assert.deepEqual(await ok(c, "wizard.status", { sessionId: sid }), { status: "running" });
      const again = await ok(c, "wizard.next", { sessionId: sid });
      assert.deepEqual(again, r, "the same step, same id");
      const stale = await err(c, "wizard.next", {
        sessionId: sid,
        answer: { stepId: "auth.mode#1", value: "keep" },
      });
      assert.equal(stale.code, "INVALID_REQUEST");
      assert.match(stale.message, /no pending step "auth\.mode#1"/);
      assert.equal(stale.details.code, "WIZARD_STEP_MISMATCH");
    });

    await t.step("answers that do not fit the step show it again with the reason", async () => {
      const wrong = await answer(c, sid, r, "gemini");
      assert.equal(wrong.step.id, r.step.id);
      assert.match(wrong.error, /^Choose one of: "anthropic"/);
      r = await answer(c, sid, r, "anthropic");
      const obj = await answer(c, sid, r, { model: "x" });
      assert.equal(obj.error, "wizard: text answer must be a scalar value");
      const spaced = await answer(c, sid, r, "claude sonnet");
      assert.match(spaced.error, /no spaces/);
      r = await answer(c, sid, r, "claude-haiku-4-5");
      const empty = await answer(c, sid, r, "");
      assert.match(empty.error, /Paste your Anthropic API key/);
    });

    await t.step("cancel: nothing written; answers refused; the status is read once", async () => {
      assert.deepEqual(await ok(c, "wizard.cancel", { sessionId: sid }), {
        status: "cancelled",
        error: "cancelled",
      });
      await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
      const late = await err(c, "wizard.next", {
        sessionId: sid,
        answer: { stepId: r.step.id, value: "x" },
      });
      assert.equal(late.message, "wizard not running");
      assert.deepEqual(await ok(c, "wizard.next", { sessionId: sid }), {
        done: true,
        status: "cancelled",
        error: "cancelled",
      });
      assert.deepEqual(await ok(c, "wizard.cancel", { sessionId: sid }), {
        status: "cancelled",
        error: "cancelled",
      });
      assert.deepEqual(await ok(c, "wizard.status", { sessionId: sid }), {
        status: "cancelled",
        error: "cancelled",
      });
      const gone = await err(c, "wizard.status", { sessionId: sid });
      assert.deepEqual(gone, {
        code: "INVALID_REQUEST",
        message: "wizard not found",
        details: { code: "WIZARD_NOT_FOUND" },
      });
    });

    await t.step("no at the review ends it as cancelled, writing nothing", async () => {
      r = await ok(c, "wizard.start", {});
      const s2 = r.sessionId;
      assert.notEqual(s2, sid);
      r = await answer(c, s2, r, "token");
      r = await answer(c, s2, r, "skip");
      r = await answer(c, s2, r, "skip");
      if (keyOf(r) === "tts.provider") r = await answer(c, s2, r, "skip");
      assert.match(r.step.message, /Gateway access: a new token, generated when you save/);
      const no = await answer(c, s2, r, false);
      assert.deepEqual(no, { done: true, status: "cancelled", error: "cancelled" });
      await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
      assert.equal(c.isClosed, false);
    });

    await t.step("unknown sessions and bad params", async () => {
      for (const m of ["wizard.next", "wizard.cancel", "wizard.status"]) {
        const e = await err(c, m, { sessionId: "no-such-wizard" });
        assert.equal(e.details.code, "WIZARD_NOT_FOUND", m);
      }
      const remote = await err(c, "wizard.start", { mode: "remote" });
      assert.match(remote.message, /^params\.mode: /);
      const discord = await err(c, "wizard.start", { flow: "channels", channel: "discord" });
      assert.match(discord.message, /^params\.channel: /);
      const noId = await err(c, "wizard.status", {});
      assert.match(noId.message, /params\.sessionId/);
    });
  } finally {
    await c.close();
  }
});

Deno.test("wizard: cancel during a key check aborts it; nothing is written", async () => {
  await using fake = await startFakeAnthropic({ apiKey: GOOD_KEY });
  fake.script({ hang: true });
  await using gw = await startTestGateway({
    config: { models: { providers: { anthropic: { baseUrl: fake.url } } } },
  });
  const before = await Deno.readTextFile(`${gw.stateDir}/gw.json`);
  const c = await connected(gw.url);
  const d = await connected(gw.url);
  try {
    let r = await ok(c, "wizard.start", {});
    const sid = r.sessionId;
    r = await answer(c, sid, r, "keep");
    r = await answer(c, sid, r, "anthropic");
    r = await answer(c, sid, r, "");
    const pending = c.request("wizard.next", {
      sessionId: sid,
      answer: { stepId: r.step.id, value: GOOD_KEY },
    });
    await until(
      "the check is under way",
      () => Promise.resolve(fake.requests.length > 0 ? true : undefined),
    );
    const t0 = performance.now();
    assert.deepEqual(await ok(d, "wizard.cancel", { sessionId: sid }), {
      status: "cancelled",
      error: "cancelled",
    });
    const res = await pending;
    assert.ok(performance.now() - t0 < 5_000, "the check was aborted, not waited out");
    assert.deepEqual(res.payload, { done: true, status: "cancelled", error: "cancelled" });
    assert.equal(await fake.requests[0]!.ended, "disconnected", "the check request was aborted");
    assert.equal(await Deno.readTextFile(`${gw.stateDir}/gw.json`), before);
    const next = await ok(c, "wizard.start", {});
    assert.equal(keyOf(next), "auth.mode", "a new wizard may start");
  } finally {
    await c.close();
    await d.close();
  }
});

Deno.test("wizard: a new token and spoken replies; the flow of channels only", async (t) => {
  await using gw = await startTestGateway({ token: "", config: tokenInConfig() });
  const c = await connected(gw.url);
  await t.step("a new token: saved, the old one refused, the new one signs in", async () => {
    let r = await ok(c, "wizard.start", {});
    const sid = r.sessionId;
    r = await answer(c, sid, r, "token");
    r = await answer(c, sid, r, "skip");
    r = await answer(c, sid, r, "skip");
    const tts = "tts" in configSchema.shape;
    if (tts) {
      assert.equal(keyOf(r), "tts.provider");
      r = await answer(c, sid, r, "openai");
      assert.equal(keyOf(r), "tts.apiKey");
      assert.equal(r.step.sensitive, true);
      const none = await answer(c, sid, r, "");
      assert.match(none.error, /Paste your OpenAI API key/);
      r = await answer(c, sid, r, "sk-tts-wizard-key-123");
      assert.match(r.step.message, /Voice: spoken replies with openai/);
    }
    const done = await answer(c, sid, r, true);
    assert.deepEqual(done, { done: true, status: "done" });
    await c.closed;
    const saved = JSON.parse(await Deno.readTextFile(`${gw.stateDir}/gw.json`));
    assert.equal(saved.gateway.auth.mode, "token");
    const token = saved.gateway.auth.token as string;
    assert.match(token, /^[A-Za-z0-9][A-Za-z0-9_-]{42}$/);
    assert.notEqual(token, TEST_TOKEN);
    if (tts) {
      assert.deepEqual(saved.tts, {
        enabled: true,
        provider: "openai",
        openai: { apiKey: "sk-tts-wizard-key-123" },
      });
    }
    assert.equal(configSchema.safeParse(saved).success, true);
    noSecrets(JSON.stringify(c.frames), [token, "sk-tts-wizard-key-123"], "the wizard's answers");
    const old = new RawClient(gw.url);
    assert.equal((await old.connect(connectParams())).ok, false);
    await old.close();
    const fresh = await connected(gw.url, { auth: { token } });
    await fresh.close();
  });

  await t.step("flow channels: only Telegram, then the review", async () => {
    const saved = JSON.parse(await Deno.readTextFile(`${gw.stateDir}/gw.json`));
    const d = await connected(gw.url, { auth: { token: saved.gateway.auth.token } });
    try {
      let r = await ok(d, "wizard.start", { flow: "channels", channel: "telegram" });
      const sid = r.sessionId;
      assert.equal(keyOf(r), "telegram.mode");
      assert.equal(r.step.initialValue, "telegram");
      r = await answer(d, sid, r, "skip");
      assert.equal(keyOf(r), "summary");
      assert.doesNotMatch(r.step.message, /Gateway access|Model|Voice/);
      assert.match(r.step.message, /Nothing to change/);
      const before = await Deno.readTextFile(`${gw.stateDir}/gw.json`);
      assert.deepEqual(await answer(d, sid, r, true), { done: true, status: "done" });
      assert.equal(await Deno.readTextFile(`${gw.stateDir}/gw.json`), before, "nothing to write");
    } finally {
      await d.close();
    }
  });
  await c.close();
});

Deno.test("wizard: an idle wizard expires after an hour; a new one may start", async () => {
  const clock = new ManualClock();
  await using gw = await startTestGateway({ clock });
  const c = await connected(gw.url);
  try {
    const r = await ok(c, "wizard.start", {});
    clock.advance(59 * 60_000);
    assert.deepEqual(await ok(c, "wizard.status", { sessionId: r.sessionId }), {
      status: "running",
    });
    const step = await ok(c, "wizard.next", { sessionId: r.sessionId });
    assert.equal(step.step.id, r.step.id);
    clock.advance(60 * 60_000);
    const e = await err(c, "wizard.next", { sessionId: r.sessionId });
    assert.equal(e.details.code, "WIZARD_NOT_FOUND");
    const again = await ok(c, "wizard.start", {});
    assert.notEqual(again.sessionId, r.sessionId);
  } finally {
    await c.close();
  }
});
