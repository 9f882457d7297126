/**
 * The Telegram channel end to end: a real gateway with grammY talking to a
 * Bot API server (`telegram-test-api` behind tests/_telegram_api.ts) and the
 * real Anthropic SDK talking to the fake Messages API.
 */
import assert from "node:assert/strict";
import {
  type AnyFrame,
  connected,
  err,
  ok,
  RawClient,
  startTestGateway,
  type TestGateway,
  until,
} from "./_helpers.ts";
import { type FakeAnthropic, startFakeAnthropic } from "./_fake_anthropic.ts";
import { type BotCall, TelegramApi } from "./_telegram_api.ts";

const TOKEN = "123456:AAtest-token-abcdefghijklmnop";
const BOT = "gw_test_bot";

function agentConfig(fake: FakeAnthropic): Record<string, unknown> {
  return {
    agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
    models: { providers: { anthropic: { apiKey: "k-test", baseUrl: fake.url } } },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Env extends AsyncDisposable {
  tg: TelegramApi;
  fake: FakeAnthropic;
  t: TestGateway;
  c: RawClient;
}

async function setup(
  telegram: Record<string, unknown> = {},
  o: { stateDir?: string; tg?: TelegramApi; waitConnected?: boolean } = {},
): Promise<Env> {
  const tg = o.tg ?? await TelegramApi.start({ tokens: { [TOKEN]: { username: BOT } } });
  const fake = await startFakeAnthropic({ apiKey: "k-test" });
  const t = await startTestGateway({
    config: {
      ...agentConfig(fake),
      channels: { telegram: { botToken: TOKEN, apiRoot: tg.apiRoot, ...telegram } },
    },
    ...(o.stateDir ? { stateDir: o.stateDir } : {}),
  });
  const c = await connected(t.url);
  if (o.waitConnected !== false) await connectedBot(c);
  return {
    tg,
    fake,
    t,
    c,
    async [Symbol.asyncDispose]() {
      await c.close();
      await t.stop();
      await fake.close();
      if (!o.tg) await tg.close();
    },
  };
}

async function account(c: RawClient, probe = false): Promise<AnyFrame> {
  const s = await ok(c, "channels.status", { probe });
  return s.channelAccounts.telegram?.[0];
}

async function connectedBot(c: RawClient): Promise<void> {
  await until(async () => (await account(c))?.connected, "the bot to connect");
}

/** The bot's messages in a chat, waiting until `pred` holds on them. */
function botSaid(
  env: Env,
  chatId: number,
  pred: (texts: string[]) => boolean,
  what: string,
  timeoutMs?: number,
) {
  return until(
    () => {
      const m = env.tg.botMessages(TOKEN, chatId);
      return pred(m.map((x) => x.text)) ? m : null;
    },
    what,
    timeoutMs,
  );
}

const calls = (env: Env, method: string, chatId?: number): BotCall[] =>
  env.tg.callsOf(method, TOKEN).filter((c) =>
    chatId === undefined || Number(c.params.chat_id) === chatId
  );

Deno.test("telegram: an unknown sender gets a pairing code; approved, they chat and the reply streams by edits", async () => {
  await using env = await setup();
  const { tg, fake, c } = env;
  await tg.userSays(TOKEN, "hello?", { chatId: 1001, userId: 1001, firstName: "Ada" });
  const [pairMsg] = await botSaid(env, 1001, (t) => t.length >= 1, "the pairing code");
  const code = /Pairing code: <code>([A-Z0-9]{8})<\/code>/.exec(pairMsg!.text)?.[1];
  assert.ok(code, pairMsg!.text);
  assert.match(pairMsg!.text, /1001/);
  assert.equal(fake.requests.length, 0, "no turn for an unknown sender");

  // Writing again while waiting gives the same code, not a new one.
  await tg.userSays(TOKEN, "hello??", { chatId: 1001, userId: 1001, firstName: "Ada" });
  const again = await botSaid(env, 1001, (t) => t.length >= 2, "the code again");
  assert.match(again[1]!.text, new RegExp(code!));

  const list = await ok(c, "telegram.pairing.list", {});
  assert.equal(list.requests.length, 1);
  assert.equal(list.requests[0].senderId, "1001");
  assert.equal(list.requests[0].senderName, "Ada");
  const bad = await err(c, "telegram.pairing.approve", { code: "ZZZZZZZZ" });
  assert.equal(bad.code, "INVALID_REQUEST");
  const approved = await ok(c, "telegram.pairing.approve", { code: code!.toLowerCase() });
  assert.equal(approved.senderId, "1001");
  assert.equal(approved.notified, true);
  await botSaid(env, 1001, (t) => t.some((x) => /approved/.test(x)), "the approval notice");
  assert.equal((await ok(c, "telegram.pairing.list", {})).requests.length, 0);

  // The reply streams: one message, edited as deltas arrive, then the final HTML.
  const chunks = ["Hello ", "Ada! ", "This ", "is ", "a ", "**streamed** ", "reply."];
  fake.script({ blocks: [{ type: "text", text: chunks }], delayMs: 350 });
  const before = tg.botMessages(TOKEN, 1001).length;
  await tg.userSays(TOKEN, "hi there", { chatId: 1001, userId: 1001, firstName: "Ada" });
  const msgs = await botSaid(
    env,
    1001,
    (t) => t.length === before + 1 && /<b>streamed<\/b>/.test(t.at(-1)!),
    "the final reply",
  );
  const reply = msgs.at(-1)!;
  assert.equal(reply.text, "Hello Ada! This is a <b>streamed</b> reply.");
  assert.ok(reply.edits >= 2, `edited ${reply.edits} times`);
  const edits = calls(env, "editMessageText", 1001).filter((x) =>
    Number(x.params.message_id) === reply.message_id
  );
  assert.equal(edits.at(-1)!.params.parse_mode, "HTML");
  assert.ok(edits.slice(0, -1).every((e) => e.params.parse_mode === undefined), "previews plain");
  assert.ok(calls(env, "sendChatAction", 1001).length >= 1, "typing shown");
  // The model saw the user's message on the chat's own session.
  assert.match(JSON.stringify(fake.requests.at(-1)!.body.messages), /hi there/);
  const s = await ok(c, "sessions.list", {});
  const row = s.sessions.find((x: AnyFrame) => x.key === "agent:main:telegram:1001");
  assert.ok(row, JSON.stringify(s.sessions.map((x: AnyFrame) => x.key)));
});

Deno.test("telegram: a long reply splits under 4,096 characters and Markdown renders as safe HTML", async () => {
  await using env = await setup({ dmPolicy: "open" });
  const para = (i: number) => `Paragraph ${i}: ` + "lorem ipsum dolor sit amet. ".repeat(30);
  const long = Array.from({ length: 14 }, (_, i) => para(i)).join("\n\n");
  const hostile = "**bold** <script>alert(1)</script> & `a<b>` [x](javascript:alert(1)) _it_\n\n";
  env.fake.script({ blocks: [{ type: "text", text: [hostile, long] }] });
  await env.tg.userSays(TOKEN, "write a lot", { chatId: 2002, userId: 2002 });
  const msgs = await botSaid(
    env,
    2002,
    (t) => t.length >= 3 && /Paragraph 13/.test(t.at(-1)!),
    "every part of the long reply",
  );
  for (const m of msgs) assert.ok(m.text.length <= 4096, `part of ${m.text.length}`);
  const first = msgs[0]!.text;
  assert.match(first, /<b>bold<\/b>/);
  assert.match(first, /&lt;script&gt;alert\(1\)&lt;\/script&gt; &amp; <code>a&lt;b&gt;<\/code>/);
  assert.match(first, /<i>it<\/i>/);
  assert.doesNotMatch(msgs.map((m) => m.text).join(""), /<script>|href="javascript/);
  const all = msgs.map((m) => m.text).join("\n");
  for (let i = 0; i < 14; i++) assert.match(all, new RegExp(`Paragraph ${i}:`));
  // Each part went out as HTML.
  const final = [...calls(env, "sendMessage", 2002), ...calls(env, "editMessageText", 2002)]
    .filter((x) => x.params.parse_mode === "HTML");
  assert.ok(final.length >= msgs.length);
});

Deno.test("telegram: a photo and a text document become attachments the model sees", async () => {
  await using env = await setup({ dmPolicy: "open" });
  const { tg, fake } = env;
  fake.script(() => ({ blocks: [{ type: "text", text: "nice picture" }] }));
  // A 1x1 PNG.
  const png = Uint8Array.from(
    atob(
      "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
    ),
    (c) => c.charCodeAt(0),
  );
  await tg.userSays(TOKEN, "what is this?", { chatId: 8008, userId: 8008, photo: { bytes: png } });
  await botSaid(env, 8008, (t) => t.includes("nice picture"), "the reply to the photo");
  const body = JSON.stringify(fake.requests[0]!.body.messages);
  assert.match(body, /"type":"image"/);
  assert.ok(
    body.includes(btoa(String.fromCharCode(...png))),
    "the photo's bytes reached the model",
  );
  assert.match(body, /what is this\?/);
  // The transcript keeps a reference, not the bytes.
  const h = await ok(env.c, "chat.history", { sessionKey: "agent:main:telegram:8008" });
  assert.doesNotMatch(JSON.stringify(h), /iVBORw0KGgo/);

  const doc = new TextEncoder().encode("line one\nline two");
  await tg.userSays(TOKEN, "", {
    chatId: 8008,
    userId: 8008,
    document: { bytes: doc, fileName: "notes.txt", mimeType: "text/plain" },
  });
  await until(() => fake.requests.length === 2, "the second turn");
  const body2 = JSON.stringify((fake.requests[1]!.body.messages as unknown[]).at(-1));
  assert.match(body2, /notes\.txt/);
  assert.match(body2, /line one/);
});

Deno.test("telegram: in groups the bot answers only when mentioned or replied to; topics get their own session", async () => {
  await using env = await setup({ groupPolicy: "open" });
  const { tg, fake, c } = env;
  fake.script(() => ({ blocks: [{ type: "text", text: "at your service" }] }));
  const group = { chatId: -5001, userId: 77, chatType: "supergroup" as const, chatTitle: "Team" };
  await tg.userSays(TOKEN, "hello everyone", group);
  await sleep(800);
  assert.equal(tg.botMessages(TOKEN, -5001).length, 0, "silent when not addressed");
  assert.equal(fake.requests.length, 0);

  const asked = await tg.userSays(TOKEN, `@${BOT} what's the time?`, group);
  assert.ok(asked);
  const [r] = await botSaid(env, -5001, (t) => t.some((x) => /service/.test(x)), "the reply");
  assert.ok(r);
  const sent = calls(env, "sendMessage", -5001)[0]!;
  assert.ok(sent.params.reply_parameters, "replies to the message in a group");
  // The bot's name is not part of what the model reads.
  const lastUser = JSON.stringify(fake.requests.at(-1)!.body.messages);
  assert.match(lastUser, /what's the time\?/);
  assert.doesNotMatch(lastUser, new RegExp(`@${BOT}`));

  // Replying to the bot's message addresses it too.
  await tg.userSays(TOKEN, "and tomorrow?", { ...group, replyToMessageId: r.message_id });
  await botSaid(env, -5001, (t) => t.length >= 2, "the reply to a reply");

  // A forum topic is its own session, and the answer stays in the topic.
  await tg.userSays(TOKEN, `@${BOT} in the topic`, { ...group, messageThreadId: 9 });
  await until(
    () => calls(env, "sendMessage", -5001).find((x) => Number(x.params.message_thread_id) === 9),
    "a reply in the topic",
  );
  const keys = (await ok(c, "sessions.list", {})).sessions.map((x: AnyFrame) => x.key);
  assert.ok(keys.includes("agent:main:telegram:group:-5001"), keys.join(","));
  assert.ok(keys.includes("agent:main:telegram:group:-5001:topic:9"), keys.join(","));
});

Deno.test("telegram: /stop aborts the reply in progress and /new starts a fresh session", async () => {
  await using env = await setup({ dmPolicy: "open" });
  const { tg, fake, c } = env;
  const chat = { chatId: 3003, userId: 3003 };
  fake.script({ hang: true });
  await tg.userSays(TOKEN, "tell me a long story", chat);
  await until(() => fake.requests.length === 1, "the model call");
  await tg.userSays(TOKEN, "/stop", chat);
  await botSaid(env, 3003, (t) => t.includes("Stopped."), "Stopped.");
  await until(() => fake.requests[0]!.state !== "open", "the provider stream to end");
  const key = "agent:main:telegram:3003";
  const before = (await ok(c, "sessions.list", {})).sessions.find((x: AnyFrame) => x.key === key);
  assert.ok(before);
  assert.equal((await ok(c, "chat.history", { sessionKey: key })).messages[0].role, "user");

  await tg.userSays(TOKEN, "/new", chat);
  await botSaid(env, 3003, (t) => t.includes("Started a new conversation."), "the /new answer");
  const after = (await ok(c, "sessions.list", {})).sessions.find((x: AnyFrame) => x.key === key);
  assert.notEqual(after.sessionId, before.sessionId);
  assert.equal((await ok(c, "chat.history", { sessionKey: key })).messages.length, 0);

  await tg.userSays(TOKEN, "/status", chat);
  await botSaid(env, 3003, (t) => t.some((x) => /Session: .*telegram:3003/.test(x)), "/status");
  assert.equal(fake.requests.length, 1, "commands never reach the model");
});

Deno.test("telegram: send and poll through the gateway, once per idempotencyKey", async () => {
  await using env = await setup();
  const { tg, c, t } = env;
  const fresh = new RawClient(t.url);
  const res = await fresh.connect();
  const methods: string[] = res.payload.features.methods;
  for (const m of ["poll", "channels.logout", "telegram.pairing.approve"]) {
    assert.ok(methods.includes(m), `${m} advertised while Telegram is configured`);
  }
  await fresh.close();

  const [a, b] = await Promise.all([
    c.request("send", { to: "1001", message: "**hi** there", idempotencyKey: "s-1" }),
    c.request("send", { to: "1001", message: "**hi** there", idempotencyKey: "s-1" }),
  ]);
  assert.equal(a.ok && b.ok, true, JSON.stringify([a, b]));
  assert.equal(a.payload.messageId, b.payload.messageId);
  assert.equal(a.payload.channel, "telegram");
  const again = await ok(c, "send", { to: "1001", message: "**hi** there", idempotencyKey: "s-1" });
  assert.equal(again.cached, true);
  const sends = calls(env, "sendMessage", 1001);
  assert.equal(sends.length, 1);
  assert.equal(sends[0]!.params.text, "<b>hi</b> there");
  assert.equal(sends[0]!.params.parse_mode, "HTML");

  const photo = await ok(c, "send", {
    to: "telegram:1001",
    message: "a cat",
    mediaUrl: "https://example.com/cat.png",
    idempotencyKey: "s-2",
  });
  assert.ok(photo.messageId);
  const p = calls(env, "sendPhoto", 1001)[0]!;
  assert.equal(p.params.photo, "https://example.com/cat.png");
  assert.equal(p.params.caption, "a cat");

  const bytes = new TextEncoder().encode("hello, file");
  await ok(c, "send", {
    to: "1001",
    buffer: btoa(String.fromCharCode(...bytes)),
    filename: "note.txt",
    contentType: "text/plain",
    idempotencyKey: "s-3",
  });
  const d = calls(env, "sendDocument", 1001)[0]!;
  const fileId = tg.botMessages(TOKEN, 1001).find((m) => m.kind === "document")?.fileId;
  assert.ok(d && fileId);
  assert.deepEqual(tg.uploadedFile(fileId!), bytes);

  const poll = await ok(c, "poll", {
    to: "1001",
    question: "Lunch?",
    options: ["Pizza", "Sushi", "Salad"],
    maxSelections: 3,
    idempotencyKey: "p-1",
  });
  assert.ok(poll.pollId);
  const sp = calls(env, "sendPoll", 1001)[0]!;
  assert.equal(sp.params.question, "Lunch?");
  assert.equal(sp.params.allows_multiple_answers, true);
  assert.equal(
    (await ok(c, "poll", {
      to: "1001",
      question: "Lunch?",
      options: ["Pizza", "Sushi", "Salad"],
      idempotencyKey: "p-1",
    })).cached,
    true,
  );
  assert.equal(calls(env, "sendPoll").length, 1);

  const wa = await err(c, "send", {
    to: "7",
    message: "x",
    channel: "whatsapp",
    idempotencyKey: "w",
  });
  assert.equal(wa.code, "UNAVAILABLE");
  assert.match(wa.message, /not available/);
  const nope = await err(c, "send", {
    to: "7",
    message: "x",
    channel: "nope",
    idempotencyKey: "n",
  });
  assert.match(nope.message, /unsupported channel: nope/);
  const badTo = await err(c, "send", { to: "not a chat", message: "x", idempotencyKey: "s-4" });
  assert.equal(badTo.code, "INVALID_REQUEST");
  assert.match(badTo.message, /to: expected a Telegram chat id/);
  const badUrl = await err(c, "send", {
    to: "1001",
    mediaUrl: "file:///etc/passwd",
    idempotencyKey: "s-5",
  });
  assert.match(badUrl.message, /http\(s\) URL/);
  assert.equal(calls(env, "sendDocument").length, 1, "nothing sent for a local path");
});

Deno.test("telegram: without Telegram configured, poll and telegram.* are not advertised and answer UNAVAILABLE", async () => {
  await using t = await startTestGateway();
  const c = new RawClient(t.url);
  const res = await c.connect();
  const methods: string[] = res.payload.features.methods;
  assert.ok(methods.includes("channels.status") && methods.includes("send"));
  for (const m of ["poll", "channels.logout", "telegram.pairing.list"]) {
    assert.ok(!methods.includes(m), `${m} not advertised`);
  }
  const e = await err(c, "telegram.pairing.list", {});
  assert.equal(e.code, "UNAVAILABLE");
  assert.equal(e.details.code, "METHOD_UNAVAILABLE");
  const s = await ok(c, "channels.status", {});
  assert.deepEqual(s.channelOrder, []);
  const send = await err(c, "send", { to: "1", message: "x", idempotencyKey: "k" });
  assert.match(send.message, /Channel is required/);
  await c.close();
});

Deno.test("telegram: webhook mode on gw's own port; a wrong secret is rejected; policy changes need no restart", async () => {
  await using env = await setup({ dmPolicy: "allowlist", allowFrom: [] });
  const { tg, fake, c, t } = env;
  fake.script(() => ({ blocks: [{ type: "text", text: "pong" }] }));
  const secret = "s3cret-webhook-token-0123456789";
  const cfg = await ok(c, "config.get", {});
  await ok(c, "config.patch", {
    baseHash: cfg.hash,
    patch: {
      channels: {
        telegram: { webhookUrl: `http://127.0.0.1:${t.port}`, webhookSecret: secret },
      },
    },
  });
  const hook = await until(() => calls(env, "setWebhook").at(-1), "setWebhook");
  assert.equal(hook.params.secret_token, secret);
  const url = String(hook.params.url);
  assert.match(url, new RegExp(`^http://127\\.0\\.0\\.1:${t.port}/telegram/[0-9a-f]{32}$`));
  assert.ok(!url.includes(secret), "the secret is not in the URL");
  await until(async () => (await account(c))?.mode === "webhook", "webhook mode");

  // Not on the allowlist: silently ignored.
  await tg.userSays(TOKEN, "ping", { chatId: 4004, userId: 4004 });
  await sleep(600);
  assert.equal(tg.botMessages(TOKEN, 4004).length, 0);
  // Allowed by a config change, at once.
  const cfg2 = await ok(c, "config.get", {});
  await ok(c, "config.patch", {
    baseHash: cfg2.hash,
    patch: { channels: { telegram: { allowFrom: [4004] } } },
  });
  await tg.userSays(TOKEN, "ping", { chatId: 4004, userId: 4004 });
  await botSaid(env, 4004, (x) => x.includes("pong"), "the webhook-driven reply");
  assert.equal(calls(env, "getUpdates").filter((x) => x.at > hook.at).length, 0, "no polling");

  const update = {
    update_id: 999_001,
    message: {
      message_id: 5,
      date: 1,
      chat: { id: 4004, type: "private" },
      from: { id: 4004, is_bot: false, first_name: "Eve" },
      text: "forged",
    },
  };
  const post = (headers: Record<string, string>) =>
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(update),
    }).then(async (r) => (await r.body?.cancel(), r.status));
  assert.equal(await post({}), 401);
  assert.equal(await post({ "x-telegram-bot-api-secret-token": "wrong-secret-0123456789" }), 401);
  assert.equal(await post({ "x-telegram-bot-api-secret-token": secret.slice(0, -1) }), 401);
  const elsewhere = await fetch(`http://127.0.0.1:${t.port}/telegram/0000`, {
    method: "POST",
    headers: { "x-telegram-bot-api-secret-token": secret },
    body: "{}",
  });
  await elsewhere.body?.cancel();
  assert.equal(elsewhere.status, 404);
  await sleep(300);
  assert.ok(!JSON.stringify(fake.requests.map((r) => r.body)).includes("forged"));
  // With the right secret it is taken, once (Telegram retries are deduplicated).
  assert.equal(await post({ "x-telegram-bot-api-secret-token": secret }), 200);
  assert.equal(await post({ "x-telegram-bot-api-secret-token": secret }), 200);
  await until(
    () => fake.requests.some((r) => JSON.stringify(r.body).includes("forged")),
    "the genuine update's turn",
  );
  await sleep(300);
  assert.equal(
    fake.requests.filter((r) => JSON.stringify(r.body.messages).includes("forged")).length,
    1,
  );
});

Deno.test("telegram: a bad token shows in channels.status and health, retried without crashing anything", async () => {
  const tg = await TelegramApi.start({ tokens: { [TOKEN]: { username: BOT } } });
  try {
    await using env = await setup({ botToken: "999999:BAD-token-abcdefghijklmnop" }, {
      tg,
      waitConnected: false,
    });
    const { c } = env;
    const a = await until(async () => {
      const x = await account(c);
      return x?.lastError ? x : null;
    }, "the error in status");
    assert.equal(a.configured, true);
    assert.equal(a.running, true);
    assert.equal(a.connected, false);
    assert.match(a.lastError, /rejected the bot token/);
    assert.doesNotMatch(JSON.stringify(a), /BAD-token/);
    const s = await ok(c, "channels.status", { probe: true, timeoutMs: 2000 });
    assert.equal(s.channelAccounts.telegram[0].probe.ok, false);
    assert.equal(s.statusIssues[0].kind, "auth");
    assert.match(s.statusIssues[0].fix, /gw channels add telegram/);
    assert.equal((await ok(c, "health", {})).ok, true);
    // Fixing the token takes effect without a restart.
    const cfg = await ok(c, "config.get", {});
    assert.doesNotMatch(JSON.stringify(cfg), /BAD-token/);
    await ok(c, "config.patch", {
      baseHash: cfg.hash,
      patch: { channels: { telegram: { botToken: TOKEN } } },
    });
    await connectedBot(c);
    const ok2 = await ok(c, "channels.status", { probe: true });
    assert.equal(ok2.channelAccounts.telegram[0].probe.ok, true);
    assert.equal(ok2.channelAccounts.telegram[0].probe.bot.username, BOT);
    assert.equal(ok2.channelAccounts.telegram[0].lastError, null);
    const logs = await Deno.readTextFile(`${env.t.stateDir}/logs/gw.log`);
    assert.doesNotMatch(logs, /BAD-token|AAtest-token/, "no token in the log");
  } finally {
    await tg.close();
  }
});

Deno.test("telegram: a restart resumes polling without answering old updates again", async () => {
  const tg = await TelegramApi.start({ tokens: { [TOKEN]: { username: BOT } } });
  const stateDir = await Deno.makeTempDir({ prefix: "gw-tg-restart-" });
  try {
    const chat = { chatId: 6006, userId: 6006 };
    let oneId = 0;
    {
      await using env = await setup({ dmPolicy: "open" }, { tg, stateDir });
      env.fake.script(() => ({ blocks: [{ type: "text", text: "first answer" }] }));
      oneId = await tg.userSays(TOKEN, "one", chat);
      await botSaid(env, 6006, (t) => t.includes("first answer"), "the first answer");
    }
    const since = Date.now();
    {
      await using env = await setup({ dmPolicy: "open" }, { tg, stateDir });
      // It asks Telegram for what came after the last update it took.
      const first = calls(env, "getUpdates").find((x) => x.at >= since)!;
      assert.equal(Number(first.params.offset), oneId + 1);
      env.fake.script(() => ({ blocks: [{ type: "text", text: "second answer" }] }));
      await tg.userSays(TOKEN, "two", chat);
      await botSaid(env, 6006, (t) => t.includes("second answer"), "the second answer");
      await sleep(500);
      const texts = tg.botMessages(TOKEN, 6006).map((m) => m.text);
      assert.deepEqual(texts, ["first answer", "second answer"]);
      assert.equal(env.fake.requests.length, 1, "only the new message reached the model");
      assert.equal(tg.pendingUpdates(TOKEN), 0, "everything confirmed");
    }
  } finally {
    await tg.close();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
});
