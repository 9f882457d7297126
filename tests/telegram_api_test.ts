/**
 * The Telegram Bot API test server (tests/_telegram_api.ts), driven by grammY's
 * `Api` exactly as a bot would use it, plus raw `fetch` where the wire bytes matter.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Api, GrammyError, InputFile } from "npm:grammy@1.46.0";
import { type BotCall, TelegramApi } from "./_telegram_api.ts";

const TOKEN = "123456:test-token";
/** The default user's private chat (userSays' default userId). */
const CHAT = 100;

/** A 2x3 PNG (header only matters: the server reads the size from IHDR). */
const PNG = Uint8Array.from([
  0x89,
  0x50,
  0x4e,
  0x47,
  0x0d,
  0x0a,
  0x1a,
  0x0a,
  0,
  0,
  0,
  13,
  0x49,
  0x48,
  0x44,
  0x52,
  0,
  0,
  0,
  2,
  0,
  0,
  0,
  3,
  8,
  2,
  0,
  0,
  0,
  0x12,
  0x34,
  0x56,
  0x78,
]);

async function start(): Promise<{ tg: TelegramApi; api: Api }> {
  const tg = await TelegramApi.start({ tokens: { [TOKEN]: { username: "gw_test_bot" } } });
  return { tg, api: new Api(TOKEN, { apiRoot: tg.apiRoot }) };
}

/** Asserts that `p` rejects with a GrammyError of this code and description (exact or matching). */
async function rejectsWith(
  p: Promise<unknown>,
  code: number,
  description: string | RegExp,
): Promise<GrammyError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof GrammyError, `expected a GrammyError, got ${caught}`);
  assert.equal(caught.error_code, code);
  if (typeof description === "string") assert.equal(caught.description, description);
  else assert.match(caught.description, description);
  return caught;
}

async function post(url: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

Deno.test("telegram api: getMe answers the registered bot; any other token gets 401", async () => {
  const { tg, api } = await start();
  try {
    assert.deepEqual(await api.getMe(), {
      id: 123456,
      is_bot: true,
      first_name: "GW Test",
      username: "gw_test_bot",
      can_join_groups: true,
      can_read_all_group_messages: false,
      supports_inline_queries: false,
    });
    const other = new Api("999:nope", { apiRoot: tg.apiRoot });
    await rejectsWith(other.getMe(), 401, "Unauthorized");
    await rejectsWith(other.sendMessage(CHAT, "hi"), 401, "Unauthorized");
    const raw = await post(`${tg.apiRoot}/bot999:nope/getUpdates`, {});
    assert.equal(raw.status, 401);
    assert.deepEqual(raw.json, { ok: false, error_code: 401, description: "Unauthorized" });

    tg.addToken("999:nope", { username: "other_bot" });
    assert.equal((await other.getMe()).username, "other_bot");
    // Every call is recorded, valid token or not, with its answer's status.
    assert.deepEqual(tg.callsOf("getMe").map((c) => [c.token, c.status]), [
      [TOKEN, 200],
      ["999:nope", 401],
      ["999:nope", 200],
    ]);
    // Method names are case-insensitive, as in the Bot API; GET with a query string works.
    const get = await fetch(`${tg.apiRoot}/bot${TOKEN}/GETME?x=1`);
    assert.equal(((await get.json()) as { result: { id: number } }).result.id, 123456);
    assert.equal(tg.calls.at(-1)!.method, "getMe");
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: getUpdates redelivers until confirmed by offset, and never after", async () => {
  const { tg, api } = await start();
  try {
    const id1 = await tg.userSays(TOKEN, "hello");
    const id2 = await tg.userSays(TOKEN, "/start now");
    assert.ok(id2 > id1);
    const first = await api.getUpdates();
    assert.deepEqual(first.map((u) => u.update_id), [id1, id2]);
    const m = first[0]!.message!;
    assert.equal(m.text, "hello");
    assert.deepEqual(m.from, {
      id: 100,
      is_bot: false,
      first_name: "Alice",
      username: "alice",
      language_code: "en",
    });
    assert.deepEqual(m.chat, { id: CHAT, first_name: "Alice", username: "alice", type: "private" });
    assert.ok(Math.abs(m.date - Date.now() / 1000) < 5, "date in unix seconds");
    assert.ok(!("botToken" in m), "no telegram-test-api bookkeeping in the message");
    assert.deepEqual(first[1]!.message!.entities, [{ offset: 0, length: 6, type: "bot_command" }]);

    // Unconfirmed updates come again (a bot that crashed gets them after restart).
    assert.deepEqual((await api.getUpdates()).map((u) => u.update_id), [id1, id2]);
    assert.equal(tg.pendingUpdates(TOKEN), 2);

    assert.deepEqual((await api.getUpdates({ offset: id1 + 1 })).map((u) => u.update_id), [id2]);
    assert.equal(tg.pendingUpdates(TOKEN), 1);
    assert.deepEqual(await api.getUpdates({ offset: id2 + 1 }), []);
    assert.deepEqual(await api.getUpdates(), [], "confirmed updates never come back");
    assert.equal(tg.pendingUpdates(TOKEN), 0);

    for (const t of ["a", "b", "c"]) await tg.userSays(TOKEN, t);
    const two = await api.getUpdates({ limit: 2 });
    assert.deepEqual(two.map((u) => u.message?.text), ["a", "b"]);
    // A negative offset keeps only the last updates.
    assert.deepEqual((await api.getUpdates({ offset: -1 })).map((u) => u.message?.text), ["c"]);
    assert.equal(tg.updates(TOKEN).length, 5, "the history keeps confirmed updates too");
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: a long poll is held until an update arrives, and answers [] after its timeout", async () => {
  const { tg, api } = await start();
  try {
    const t0 = Date.now();
    const held = api.getUpdates({ timeout: 5 });
    const call = await tg.waitForCall((c) => c.method === "getUpdates");
    assert.equal(call.params.timeout, 5);
    assert.equal(call.status, undefined, "not answered while nothing is pending");
    const id = await tg.userSays(TOKEN, "wake up");
    const got = await held;
    assert.deepEqual(got.map((u) => u.update_id), [id]);
    assert.ok(Date.now() - t0 < 4000, "answered when the update came, not at the timeout");
    assert.equal(call.status, 200);

    const t1 = Date.now();
    assert.deepEqual(await api.getUpdates({ offset: id + 1, timeout: 1 }), []);
    const waited = Date.now() - t1;
    assert.ok(waited >= 900 && waited < 3000, `held for the timeout, took ${waited} ms`);

    // A client that goes away releases its poll (no timer is left behind: sanitizers are on).
    const ac = new AbortController();
    // grammY's npm build types its signal with its own AbortController shim.
    const signal = ac.signal as Parameters<typeof api.getUpdates>[1];
    const gone = api.getUpdates({ timeout: 30 }, signal).then(() => "resolved", () => "aborted");
    const pending = await tg.waitForCall((c) =>
      c.method === "getUpdates" && c.params.timeout === 30
    );
    ac.abort();
    assert.equal(await gone, "aborted");
    await waitUntil(() => pending.status !== undefined, "the server to release the poll");
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: a second poller terminates the first with 409, as Telegram does", async () => {
  const { tg, api } = await start();
  try {
    const first = api.getUpdates({ timeout: 5 });
    await tg.waitForCall((c) => c.method === "getUpdates");
    const second = api.getUpdates({ timeout: 5 });
    await rejectsWith(
      first,
      409,
      "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    );
    const id = await tg.userSays(TOKEN, "to the survivor");
    assert.deepEqual((await second).map((u) => u.update_id), [id]);
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: sendMessage then editMessageText twice: botMessages has the final text and 2 edits", async () => {
  const { tg, api } = await start();
  try {
    const sent = await api.sendMessage(CHAT, "draft 1");
    assert.equal(sent.text, "draft 1");
    assert.deepEqual(sent.from, {
      id: 123456,
      is_bot: true,
      first_name: "GW Test",
      username: "gw_test_bot",
    });
    assert.equal(sent.chat.id, CHAT);
    assert.equal(sent.chat.type, "private");
    assert.ok(Math.abs(sent.date - Date.now() / 1000) < 5);

    const e1 = await api.editMessageText(CHAT, sent.message_id, "draft 2");
    assert.ok(e1 !== true && "text" in e1);
    assert.equal(e1.text, "draft 2");
    assert.equal(typeof e1.edit_date, "number");
    const e2 = await api.editMessageText(CHAT, sent.message_id, "<b>final</b> answer", {
      parse_mode: "HTML",
    });
    assert.ok(e2 !== true && "text" in e2);
    assert.equal(e2.text, "final answer");
    assert.deepEqual(e2.entities, [{ type: "bold", offset: 0, length: 5 }]);

    const [m, ...rest] = tg.botMessages(TOKEN, CHAT);
    assert.equal(rest.length, 0);
    assert.equal(m!.message_id, sent.message_id);
    assert.equal(m!.text, "<b>final</b> answer");
    assert.equal(m!.plainText, "final answer");
    assert.equal(m!.parse_mode, "HTML");
    assert.equal(m!.edits, 2);
    assert.equal(m!.kind, "text");

    await rejectsWith(
      api.editMessageText(CHAT, sent.message_id, "<b>final</b> answer", { parse_mode: "HTML" }),
      400,
      "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
    );
    await rejectsWith(
      api.editMessageText(CHAT, 99999, "x"),
      400,
      "Bad Request: message to edit not found",
    );
    // telegram-test-api stored the message and the edit too.
    const stored = tg.server.storage.botMessages.find((b) => b.messageId === sent.message_id);
    assert.equal(stored?.message.text, "<b>final</b> answer");
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: sendMessage honours parse_mode (tdlib's errors), replies, limits and forms", async () => {
  const { tg, api } = await start();
  try {
    await rejectsWith(
      api.sendMessage(CHAT, "a < b", { parse_mode: "HTML" }),
      400,
      `Bad Request: can't parse entities: Unsupported start tag "" at byte offset 2`,
    );
    await rejectsWith(
      api.sendMessage(CHAT, "<b>open", { parse_mode: "HTML" }),
      400,
      "Bad Request: can't parse entities: Can't find end tag corresponding to start tag b",
    );
    await rejectsWith(
      api.sendMessage(CHAT, "v1.5", { parse_mode: "MarkdownV2" }),
      400,
      "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'",
    );
    const md = await api.sendMessage(CHAT, "*bold* _it_ [link](https://example.com) v1\\.5", {
      parse_mode: "MarkdownV2",
    });
    assert.equal(md.text, "bold it link v1.5");
    assert.deepEqual(md.entities, [
      { type: "bold", offset: 0, length: 4 },
      { type: "italic", offset: 5, length: 2 },
      { type: "text_link", offset: 8, length: 4, url: "https://example.com/" },
    ]);
    const pre = await api.sendMessage(
      CHAT,
      '<pre><code class="language-ts">let a = 1 &lt; 2;</code></pre>',
      { parse_mode: "HTML" },
    );
    assert.equal(pre.text, "let a = 1 < 2;");
    assert.deepEqual(pre.entities, [{ type: "pre", offset: 0, length: 14, language: "ts" }]);

    await rejectsWith(
      api.sendMessage(CHAT, "x".repeat(4097)),
      400,
      "Bad Request: message is too long",
    );
    await rejectsWith(api.sendMessage(CHAT, "  "), 400, "Bad Request: message text is empty");
    assert.equal((await api.sendMessage(CHAT, "x".repeat(4096))).text.length, 4096);

    // Replies: to a known message, else 400 unless allowed.
    await tg.userSays(TOKEN, "question");
    const [u] = await api.getUpdates();
    const asked = u!.message!;
    const reply = await api.sendMessage(CHAT, "answer", {
      reply_parameters: { message_id: asked.message_id },
    });
    assert.equal(reply.reply_to_message?.message_id, asked.message_id);
    assert.equal(reply.reply_to_message?.text, "question");
    await rejectsWith(
      api.sendMessage(CHAT, "x", { reply_parameters: { message_id: 424242 } }),
      400,
      "Bad Request: message to be replied not found",
    );
    const loose = await api.sendMessage(CHAT, "x", {
      reply_parameters: { message_id: 424242, allow_sending_without_reply: true },
    });
    assert.equal(loose.reply_to_message, undefined);
    const legacy = await post(`${tg.apiRoot}/bot${TOKEN}/sendMessage`, {
      chat_id: CHAT,
      text: "legacy",
      reply_to_message_id: asked.message_id,
    });
    assert.equal(
      (legacy.json as { result: { reply_to_message: { message_id: number } } }).result
        .reply_to_message.message_id,
      asked.message_id,
    );
    const answered = tg.botMessages(TOKEN, CHAT).find((m) => m.text === "answer");
    assert.equal(answered?.reply_to_message_id, asked.message_id);

    // An urlencoded form: strings read as the Bot API types them.
    const form = await fetch(`${tg.apiRoot}/bot${TOKEN}/sendMessage`, {
      method: "POST",
      body: new URLSearchParams({
        chat_id: String(CHAT),
        text: "from a form",
        reply_markup: JSON.stringify({ inline_keyboard: [[{ text: "ok", callback_data: "ok" }]] }),
      }),
    });
    const formMsg = (await form.json()) as { result: { text: string; reply_markup: unknown } };
    assert.equal(formMsg.result.text, "from a form");
    assert.deepEqual(formMsg.result.reply_markup, {
      inline_keyboard: [[{ text: "ok", callback_data: "ok" }]],
    });
    const formCall = tg.calls.at(-1)!;
    assert.equal(formCall.params.chat_id, CHAT);
    assert.deepEqual(formCall.params.reply_markup, {
      inline_keyboard: [[{ text: "ok", callback_data: "ok" }]],
    });
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: deleteMessage, sendChatAction, setMyCommands, logOut and close", async () => {
  const { tg, api } = await start();
  try {
    const m = await api.sendMessage(CHAT, "bye");
    assert.equal(await api.deleteMessage(CHAT, m.message_id), true);
    assert.deepEqual(tg.botMessages(TOKEN, CHAT), []);
    await rejectsWith(
      api.deleteMessage(CHAT, m.message_id),
      400,
      "Bad Request: message to delete not found",
    );

    assert.equal(await api.sendChatAction(CHAT, "typing"), true);
    await rejectsWith(
      api.sendChatAction(CHAT, "dancing" as "typing"),
      400,
      "Bad Request: wrong parameter action in request",
    );
    assert.equal(tg.callsOf("sendChatAction")[0]!.params.action, "typing");

    const commands = [{ command: "new", description: "Start a new session" }];
    assert.equal(await api.setMyCommands(commands), true);
    assert.deepEqual(await api.getMyCommands(), commands);
    assert.equal(await api.deleteMyCommands(), true);
    assert.deepEqual(await api.getMyCommands(), []);
    await rejectsWith(
      api.setMyCommands([{ command: "Bad Command", description: "x" }]),
      400,
      "Bad Request: BOT_COMMAND_INVALID",
    );
    assert.equal(await api.logOut(), true);
    assert.equal(await api.close(), true);
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: sendPoll answers a Message with the poll", async () => {
  const { tg, api } = await start();
  try {
    const m = await api.sendPoll(CHAT, "Lunch?", ["Pizza", { text: "Sushi" }], {
      is_anonymous: false,
      allows_multiple_answers: true,
      open_period: 60,
    });
    const poll = m.poll;
    assert.equal(typeof poll.id, "string");
    assert.deepEqual({ ...poll, id: "", close_date: 0 }, {
      id: "",
      question: "Lunch?",
      options: [{ text: "Pizza", voter_count: 0 }, { text: "Sushi", voter_count: 0 }],
      total_voter_count: 0,
      is_closed: false,
      is_anonymous: false,
      type: "regular",
      allows_multiple_answers: true,
      open_period: 60,
      close_date: 0,
    });
    assert.ok(poll.close_date! - Date.now() / 1000 > 55);
    assert.equal(m.from?.is_bot, true);
    // Plain string options (older clients) work too, and the defaults are Telegram's.
    const raw = await post(`${tg.apiRoot}/bot${TOKEN}/sendPoll`, {
      chat_id: CHAT,
      question: "Tea?",
      options: ["yes", "no"],
    });
    const p2 = (raw.json as { result: { poll: Record<string, unknown> } }).result.poll;
    assert.equal(p2.is_anonymous, true);
    assert.equal(p2.allows_multiple_answers, false);
    await rejectsWith(
      api.sendPoll(CHAT, "One?", ["only"]),
      400,
      "Bad Request: poll must have at least 2 option",
    );
    assert.deepEqual(tg.botMessages(TOKEN, CHAT).map((b) => [b.kind, b.text]), [
      ["poll", "Lunch?"],
      ["poll", "Tea?"],
    ]);
    assert.ok(m.message_id < tg.botMessages(TOKEN, CHAT)[1]!.message_id);
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: sendDocument uploads a file the test can read back, and getFile serves it", async () => {
  const { tg, api } = await start();
  try {
    const bytes = new Uint8Array([104, 105, 10]);
    const m = await api.sendDocument(CHAT, new InputFile(bytes, "a.txt"), {
      caption: "<i>notes</i>",
      parse_mode: "HTML",
    });
    const doc = m.document;
    assert.equal(doc.file_name, "a.txt");
    assert.equal(doc.mime_type, "text/plain");
    assert.equal(doc.file_size, 3);
    assert.equal(typeof doc.file_unique_id, "string");
    assert.equal(m.caption, "notes");
    assert.deepEqual(m.caption_entities, [{ type: "italic", offset: 0, length: 5 }]);
    assert.deepEqual(tg.uploadedFile(doc.file_id), bytes);
    const call = tg.callsOf("sendDocument")[0]!;
    assert.deepEqual(call.params.document, {
      filename: "a.txt",
      size: 3,
      type: "application/octet-stream",
    });
    const [b] = tg.botMessages(TOKEN, CHAT);
    assert.equal(b?.kind, "document");
    assert.equal(b?.fileId, doc.file_id);

    const f = await api.getFile(doc.file_id);
    assert.equal(f.file_size, 3);
    assert.match(f.file_path!, /^documents\/file_\d+\.txt$/);
    const res = await fetch(`${tg.apiRoot}/file/bot${TOKEN}/${f.file_path}`);
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), bytes);
    const missing = await fetch(`${tg.apiRoot}/file/bot${TOKEN}/documents/nope.txt`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), {
      ok: false,
      error_code: 404,
      description: "Not Found",
    });

    // The file_id can be sent again; an unknown one cannot.
    const again = await api.sendDocument(CHAT, doc.file_id);
    assert.equal(again.document.file_unique_id, doc.file_unique_id);
    await rejectsWith(
      api.sendDocument(CHAT, "BQACAgIAAxkBAAnope"),
      400,
      "Bad Request: wrong file identifier/HTTP URL specified",
    );
    await rejectsWith(api.getFile("nope"), 400, "Bad Request: invalid file_id");
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: sendPhoto by URL and by upload", async () => {
  const { tg, api } = await start();
  try {
    const url = "https://example.com/cat.png";
    const m = await api.sendPhoto(CHAT, url, { caption: "a cat" });
    assert.equal(m.caption, "a cat");
    assert.equal(m.photo.length, 1);
    assert.equal(typeof m.photo[0]!.file_id, "string");
    assert.equal(tg.callsOf("sendPhoto")[0]!.params.photo, url);
    assert.equal(tg.uploadedFile(m.photo[0]!.file_id), undefined, "URLs are not downloaded");

    const up = await api.sendPhoto(CHAT, new InputFile(PNG, "dot.png"));
    assert.equal(up.photo[0]!.width, 2);
    assert.equal(up.photo[0]!.height, 3);
    assert.deepEqual(tg.uploadedFile(up.photo[0]!.file_id), PNG);
    await rejectsWith(
      api.sendPhoto(CHAT, new InputFile(new Uint8Array([1, 2, 3]), "x.jpg")),
      400,
      "Bad Request: IMAGE_PROCESS_FAILED",
    );
    assert.deepEqual(tg.botMessages(TOKEN, CHAT).map((b) => b.kind), ["photo", "photo"]);
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: a user's photo and document can be fetched with getFile", async () => {
  const { tg, api } = await start();
  try {
    await tg.userSays(TOKEN, "", { photo: { bytes: PNG }, caption: "look" });
    const docBytes = new TextEncoder().encode("report");
    await tg.userSays(TOKEN, "", {
      document: { bytes: docBytes, fileName: "r.md", mimeType: "text/markdown" },
    });
    const [u1, u2] = await api.getUpdates();
    const m = u1!.message!;
    assert.equal(m.caption, "look");
    assert.equal(m.text, undefined);
    const size = m.photo!.at(-1)!;
    assert.deepEqual([size.width, size.height, size.file_size], [2, 3, PNG.length]);
    const f = await api.getFile(size.file_id);
    assert.match(f.file_path!, /^photos\/file_\d+\.jpg$/);
    const res = await fetch(`${tg.apiRoot}/file/bot${TOKEN}/${f.file_path}`);
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), PNG);
    // Another bot's token cannot download it.
    tg.addToken("7:other");
    const other = await fetch(`${tg.apiRoot}/file/bot7:other/${f.file_path}`);
    assert.equal(other.status, 404);
    await other.body?.cancel();

    const d = u2!.message!.document!;
    assert.deepEqual([d.file_name, d.mime_type, d.file_size], ["r.md", "text/markdown", 6]);
    const df = await api.getFile(d.file_id);
    const dres = await fetch(`${tg.apiRoot}/file/bot${TOKEN}/${df.file_path}`);
    assert.equal(await dres.text(), "report");
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: webhook deliveries carry the secret header; getUpdates is 409 until deleteWebhook", async () => {
  const { tg, api } = await start();
  const seen: { secret: string | null; body: Record<string, unknown> }[] = [];
  const answers: (() => Response)[] = [];
  let arrived: (() => void) | undefined;
  const hook = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    seen.push({
      secret: req.headers.get("x-telegram-bot-api-secret-token"),
      body: await req.json(),
    });
    arrived?.();
    return answers.shift()?.() ?? new Response("ok");
  });
  const next = (n: number) =>
    waitUntil(() => seen.length >= n, `${n} webhook request(s), got ${seen.length}`);
  try {
    const url = `http://127.0.0.1:${hook.addr.port}/tg`;
    assert.equal(await api.setWebhook(url, { secret_token: "s3cret-token_1" }), true);
    const info = await api.getWebhookInfo();
    assert.equal(info.url, url);
    assert.equal(info.has_custom_certificate, false);
    assert.equal(info.pending_update_count, 0);

    const id = await tg.userSays(TOKEN, "hook me");
    await next(1);
    assert.equal(seen[0]!.secret, "s3cret-token_1");
    assert.equal(seen[0]!.body.update_id, id);
    assert.equal((seen[0]!.body.message as { text: string }).text, "hook me");
    await waitUntil(
      () => tg.pendingUpdates(TOKEN) === 0,
      "the delivered update to leave the queue",
    );

    await rejectsWith(
      api.getUpdates(),
      409,
      "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
    );

    // Two failures are recorded and retried; the third attempt gets through.
    answers.push(
      () => new Response("no", { status: 500 }),
      () => new Response("no", { status: 500 }),
    );
    const id2 = await tg.userSays(TOKEN, "retry me");
    await next(4);
    assert.deepEqual(seen.slice(1).map((s) => s.body.update_id), [id2, id2, id2]);
    const failed = await api.getWebhookInfo();
    assert.equal(
      failed.last_error_message,
      "Wrong response from the webhook: 500 Internal Server Error",
    );
    assert.equal(typeof failed.last_error_date, "number");

    // The webhook's answer may carry a method call, as Telegram allows.
    answers.push(() =>
      Response.json({ method: "sendMessage", chat_id: CHAT, text: "answered in the reply" })
    );
    await tg.userSays(TOKEN, "reply inline");
    await tg.waitForCall((c) => c.method === "sendMessage" && c.status === 200);
    assert.deepEqual(tg.botMessages(TOKEN, CHAT).map((m) => m.text), ["answered in the reply"]);

    assert.equal(await api.deleteWebhook(), true);
    assert.equal((await api.getWebhookInfo()).url, "");
    const id3 = await tg.userSays(TOKEN, "polled again");
    assert.deepEqual((await api.getUpdates()).map((u) => u.update_id), [id3]);
    assert.equal(seen.length, 5, "nothing more went to the webhook");
  } finally {
    await tg.close();
    await hook.shutdown();
  }
});

Deno.test("telegram api: fail() injects Telegram errors such as 429 flood control", async () => {
  const { tg, api } = await start();
  try {
    tg.fail("sendMessage", {
      status: 429,
      description: "Too Many Requests: retry after 1",
      retryAfter: 1,
    });
    const e = await rejectsWith(
      api.sendMessage(CHAT, "hi"),
      429,
      "Too Many Requests: retry after 1",
    );
    assert.equal(e.parameters.retry_after, 1);
    assert.equal((await api.sendMessage(CHAT, "hi")).text, "hi", "only the next call failed");

    tg.fail("*", { status: 502, description: "Bad Gateway", times: 2 });
    await rejectsWith(api.getMe(), 502, "Bad Gateway");
    await rejectsWith(api.getUpdates(), 502, "Bad Gateway");
    assert.equal((await api.getMe()).id, 123456);
    assert.deepEqual(tg.callsOf("sendMessage").map((c) => c.status), [429, 200]);
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: an unknown method answers 404 like the real server", async () => {
  const { tg } = await start();
  try {
    const res = await post(`${tg.apiRoot}/bot${TOKEN}/sendHologram`, { chat_id: CHAT });
    assert.equal(res.status, 404);
    assert.deepEqual(res.json, {
      ok: false,
      error_code: 404,
      description: "Not Found: method not found",
    });
    assert.equal(tg.callsOf("sendHologram")[0]!.status, 404);
    const elsewhere = await fetch(`${tg.apiRoot}/nothing/here`);
    assert.equal(elsewhere.status, 404);
    await elsewhere.body?.cancel();
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: group and forum-topic messages carry chat.type, is_topic_message and message_thread_id", async () => {
  const { tg, api } = await start();
  try {
    const topic = {
      chatType: "supergroup" as const,
      chatId: -1005001,
      chatTitle: "Team",
      userId: 77,
      username: "bob_77",
      firstName: "Bob",
      messageThreadId: 9,
    };
    await tg.userSays(TOKEN, "@gw_test_bot what now?", topic);
    await tg.userSays(TOKEN, "hi all", { chatType: "group", chatId: -4001, chatTitle: "Basic" });
    const [u, g] = await api.getUpdates();
    const m = u!.message!;
    assert.deepEqual(m.chat, { id: -1005001, title: "Team", type: "supergroup", is_forum: true });
    assert.equal(m.is_topic_message, true);
    assert.equal(m.message_thread_id, 9);
    assert.deepEqual(m.entities, [{ offset: 0, length: 12, type: "mention" }]);
    // Telegram makes a topic message without an explicit reply answer the topic's creation.
    assert.equal(m.reply_to_message?.message_id, 9);
    assert.ok(m.reply_to_message?.forum_topic_created);
    assert.deepEqual(g!.message!.chat, { id: -4001, title: "Basic", type: "group" });

    const r = await api.sendMessage(-1005001, "in the topic", {
      message_thread_id: 9,
      reply_parameters: { message_id: m.message_id },
    });
    assert.equal(r.message_thread_id, 9);
    assert.equal(r.is_topic_message, true);
    assert.equal(r.reply_to_message?.message_id, m.message_id);
    const [b] = tg.botMessages(TOKEN, -1005001);
    assert.equal(b?.message_thread_id, 9);
    assert.equal(b?.reply_to_message_id, m.message_id);

    // A user replying to the bot gets the bot's message as reply_to_message.
    await tg.userSays(TOKEN, "thanks", { ...topic, replyToMessageId: r.message_id });
    const [u2] = await api.getUpdates({ offset: g!.update_id + 1 });
    const replied = u2!.message!.reply_to_message!;
    assert.equal(replied.message_id, r.message_id);
    assert.equal(replied.text, "in the topic");
    assert.equal(replied.from?.username, "gw_test_bot");
    assert.equal(replied.from?.is_bot, true);
    assert.equal(replied.reply_to_message, undefined, "no nested reply");
    await assert.rejects(
      tg.userSays(TOKEN, "?", { ...topic, replyToMessageId: 31337 }),
      /replyToMessageId/,
    );
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: telegram-test-api's own client injects messages and sees the bot's replies", async () => {
  const { tg, api } = await start();
  try {
    const client = tg.server.getClient(TOKEN, { chatId: 555, userId: 555, firstName: "Bob" });
    await client.sendMessage(client.makeMessage("from the client"));
    const [u] = await api.getUpdates({ timeout: 2 });
    const m = u!.message!;
    assert.equal(m.text, "from the client");
    assert.equal(m.from?.id, 555);
    assert.deepEqual(m.chat, {
      id: 555,
      first_name: "Bob",
      username: "testUserName",
      type: "private",
    });
    assert.ok(!("botToken" in m));

    await api.sendMessage(555, "hi Bob");
    const seen = await client.getUpdates();
    assert.equal(seen.result[0]?.message.text, "hi Bob");

    // The user-side routes also answer through the front.
    const viaFront = await post(`${tg.apiRoot}/sendMessage`, {
      ...client.makeMessage("through the front"),
    });
    assert.deepEqual(viaFront.json, { ok: true, result: null });
    const [u2] = await api.getUpdates({ offset: u!.update_id + 1, timeout: 2 });
    assert.equal(u2?.message?.text, "through the front");
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: an inline button press arrives as a callback_query", async () => {
  const { tg, api } = await start();
  try {
    const m = await api.sendMessage(CHAT, "approve?", {
      reply_markup: { inline_keyboard: [[{ text: "Yes", callback_data: "yes" }]] },
    });
    const id = await tg.userClicks(TOKEN, "yes", { chatId: CHAT, messageId: m.message_id });
    const [u] = await api.getUpdates();
    assert.equal(u?.update_id, id);
    const q = u!.callback_query!;
    assert.equal(q.data, "yes");
    assert.equal(q.from.id, 100);
    assert.equal(typeof q.chat_instance, "string");
    assert.equal(q.message?.message_id, m.message_id);
    assert.equal(await api.answerCallbackQuery(q.id), true);
    const edited = await api.editMessageReplyMarkup(CHAT, m.message_id, {
      reply_markup: { inline_keyboard: [] },
    });
    assert.ok(edited !== true);
    assert.equal(tg.botMessages(TOKEN, CHAT)[0]!.edits, 1);
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: waitForCall sees past and future calls and explains a timeout", async () => {
  const { tg, api } = await start();
  try {
    await api.sendMessage(CHAT, "one");
    const past = await tg.waitForCall((c) => c.method === "sendMessage");
    assert.equal(past.params.text, "one");
    const future = tg.waitForCall((c: BotCall) => c.params.text === "two");
    await api.sendMessage(CHAT, "two");
    assert.equal((await future).method, "sendMessage");
    await assert.rejects(
      tg.waitForCall((c) => c.method === "sendPoll", 50),
      /no matching call in 50 ms; calls seen:\nsendMessage .*"one"/,
    );
  } finally {
    await tg.close();
  }
});

Deno.test("telegram api: close() answers held polls and stops both servers", async () => {
  const { tg, api } = await start();
  const held = api.getUpdates({ timeout: 30 });
  await tg.waitForCall((c) => c.method === "getUpdates");
  await tg.close();
  assert.deepEqual(await held, []);
  await assert.rejects(fetch(`${tg.apiRoot}/bot${TOKEN}/getMe`));
  await assert.rejects(fetch(`${tg.ttaUrl}/getUpdatesHistory`, { method: "POST" }));
  await tg.close(); // idempotent
});

/** Polls `cond` every 10 ms (real sockets are involved, so no clock to advance). */
async function waitUntil(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
