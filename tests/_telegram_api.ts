/**
 * A Telegram Bot API server for tests, on real sockets.
 *
 * It runs telegram-test-api's `TelegramServer` (an express app) in-process and
 * puts a `Deno.serve` front on 127.0.0.1 before it. The front's root is the
 * `apiRoot` a bot uses (`${apiRoot}/bot${token}/${method}`, files at
 * `${apiRoot}/file/bot${token}/${file_path}`) and speaks the real Bot API
 * (https://core.telegram.org/bots/api): `{"ok":true,"result":...}` or
 * `{"ok":false,"error_code":N,"description":"...","parameters":{...}}` with
 * HTTP status N; params as JSON, urlencoded or multipart forms, or a query string.
 *
 * What goes where:
 * - telegram-test-api stores and numbers every message and update: the front
 *   forwards `sendMessage`, `editMessageText`, `editMessageReplyMarkup` and
 *   `deleteMessage` to it over HTTP, adds media and poll messages with its
 *   `addBotMessage`, and injects user messages with its `addUserMessage` /
 *   `addUserCommand` / `addUserCallback`. So message and update ids come from its
 *   counters (one sequence for all chats, as gaps are allowed in Telegram), and
 *   its own user-side client routes (`POST /sendMessage`, `/sendCommand`,
 *   `/sendCallback`, `/getUpdates`, `/getUpdatesHistory`, reachable at its own
 *   URL or through the front) keep working: a message injected with
 *   `server.getClient(token).sendMessage(client.makeMessage("hi"))` reaches the bot.
 * - The front answers the bot itself wherever telegram-test-api's answer is not
 *   the real one: registered tokens only (else 401), `getMe`, `getUpdates` with
 *   offset confirmation, `limit`, long polling, `allowed_updates` and 409
 *   conflicts, webhooks (secret header, retries, `getWebhookInfo`), the real
 *   `Message` objects (bot as `from`, the real chat, unix seconds, entities
 *   parsed from `parse_mode` with tdlib's rules and error texts, replies and forum
 *   topics), `sendChatAction`, `sendPoll`, `sendDocument`, `sendPhoto`, `sendVoice`,
 *   `sendAudio`, `getFile` and downloads, commands, `logOut`, `close`, and 404 for any
 *   other method. As Telegram, `sendVoice` makes a voice message only of OGG (Opus),
 *   MP3 or M4A and `sendAudio` an audio message only of MP3 or M4A; other formats
 *   become a document message.
 *
 * Deviations from Telegram, on purpose: webhook URLs may be `http:` on any port;
 * group messages are always delivered (as to a bot that is a group admin, even
 * though `getMe` says `can_read_all_group_messages: false`); files sent by URL
 * are not downloaded (no bytes, no `file_path`); unknown chats are assumed to
 * exist unless `strictChats` is set; the format of voice and audio files is read
 * from the file name (Telegram decodes the file), and their `duration` is the
 * `duration` param or 1.
 *
 * ```ts
 * const tg = await TelegramApi.start({ tokens: ["123:abc"] });
 * const api = new Api("123:abc", { apiRoot: tg.apiRoot }); // grammY
 * await tg.userSays("123:abc", "hello");
 * const [update] = await api.getUpdates({ timeout: 1 });
 * await api.sendMessage(update!.message!.chat.id, "hi <b>there</b>", { parse_mode: "HTML" });
 * tg.botMessages("123:abc", update!.message!.chat.id); // [{ text: "hi <b>there</b>", plainText: "hi there", ... }]
 * await tg.close();
 * ```
 *
 * @module
 */
import { TelegramServer } from "npm:telegram-test-api@4.2.1/lib/telegramServer.js";

/** One bot-side request as the harness received it. */
export interface BotCall {
  /** The token from the URL, valid or not. */
  token: string;
  /** The method name, canonical case for known methods (`sendMessage` even when sent as `SENDMESSAGE`). */
  method: string;
  /**
   * Query string and body merged, with form strings read as the Bot API reads them
   * (ints, booleans, JSON-serialized objects); uploaded files as `{ filename, size, type }`.
   */
  params: Record<string, unknown>;
  /** `Date.now()` when the request arrived. */
  at: number;
  /** HTTP status of the answer; absent until answered (a held long poll has none yet). */
  status?: number;
}

/** How {@link TelegramApi.userSays} builds the user's message. */
export interface UserMessageOptions {
  /** Default: `userId` in private chats, -123456 for groups, -1001234567890 for supergroups. */
  chatId?: number;
  /** Default 100. */
  userId?: number;
  /** Default `"alice"`. */
  username?: string;
  /** Default `"Alice"`. */
  firstName?: string;
  /** Default `"private"`. */
  chatType?: "private" | "group" | "supergroup";
  /** Default `"Test group"`. */
  chatTitle?: string;
  /**
   * A forum topic (supergroups): the chat gets `is_forum: true`, the message
   * `message_thread_id`, `is_topic_message: true` and, when it is not an explicit
   * reply, `reply_to_message` = the topic's `forum_topic_created` service message,
   * as Telegram sends it.
   */
  messageThreadId?: number;
  /**
   * Must refer to a known message of this chat; the message then carries the full
   * `reply_to_message` object (with `from` = the bot for bot messages), without
   * its own `reply_to_message`, as Telegram does.
   */
  replyToMessageId?: number;
  /** Replaces the automatic `bot_command` / `mention` / `url` entities. */
  entities?: unknown[];
  /** Caption of a photo or document (default: `text` when not empty). */
  caption?: string;
  /** A photo (one `PhotoSize`; dimensions sniffed from PNG/JPEG/GIF/WebP bytes, else 640x480). */
  photo?: { bytes: Uint8Array; width?: number; height?: number };
  /** A document. */
  document?: { bytes: Uint8Array; fileName: string; mimeType: string };
}

/** A message the bot sent, as it stands now. */
export interface BotMessage {
  message_id: number;
  /** Current text as the bot sent it (markup included); the caption for media (or ""), the question for polls. */
  text: string;
  /** What the user sees: `text` after `parse_mode` is applied. */
  plainText: string;
  parse_mode?: string;
  /** The message the bot asked to reply to (`reply_parameters.message_id` or `reply_to_message_id`). */
  reply_to_message_id?: number;
  /** The `message_thread_id` the bot sent. */
  message_thread_id?: number;
  /** Number of successful `editMessageText` / `editMessageReplyMarkup` calls. */
  edits: number;
  kind: "text" | "poll" | "document" | "photo" | "voice" | "audio";
  /** The file of a document, photo, voice or audio message (read its bytes with {@link TelegramApi.uploadedFile}). */
  fileId?: string;
  /** The `Message` object as last answered to the bot. */
  message: Record<string, unknown>;
}

/** Options of {@link TelegramApi.start}. */
export interface TelegramApiOptions {
  /** Valid tokens, with optional bot names (default username `gw_test_bot`). */
  tokens?: Record<string, { username?: string; firstName?: string }> | string[];
  /**
   * Default false: a chat id the harness never saw is a chat that exists (private
   * for positive ids). True: 403 `Forbidden: bot can't initiate conversation with
   * a user` for positive ids and 400 `Bad Request: chat not found` otherwise.
   */
  strictChats?: boolean;
  /** Webhook POSTs per update before giving up on it (default 4). */
  webhookAttempts?: number;
  /** Wait before the first webhook retry, doubled after each (default 50 ms). */
  webhookBackoffMs?: number;
}

/** A fault rule of {@link TelegramApi.fail}. */
export interface Fault {
  /** HTTP status and `error_code`, e.g. 429, 500, 400. */
  status: number;
  /** e.g. `Too Many Requests: retry after 1`. */
  description: string;
  /** How many calls fail (default 1). */
  times?: number;
  /** Sent as `parameters.retry_after` (seconds). */
  retryAfter?: number;
}

type Json = Record<string, unknown>;
type Update = { update_id: number } & Json;

interface Webhook {
  url: string;
  secret?: string;
  maxConnections: number;
}

interface HeldPoll {
  finish(result: Update[] | ApiError): void;
}

interface TokenState {
  token: string;
  registered: boolean;
  user: Json;
  queue: Update[];
  history: Update[];
  allowed?: string[];
  webhook?: Webhook;
  lastError?: { date: number; message: string };
  poll?: HeldPoll;
  delivering?: Promise<void>;
  commands: Map<string, unknown[]>;
}

interface ChatInfo {
  chat: Json;
  topics: Map<number, Json>;
}

interface StoredMessage {
  message: Json;
  byBot: boolean;
  kind: BotMessage["kind"] | "user";
  text: string;
  plain: string;
  entities: Json[];
  parseMode?: string;
  replyTo?: number;
  thread?: number;
  markup?: unknown;
  edits: number;
  deleted: boolean;
}

interface StoredFile {
  fileId: string;
  uniqueId: string;
  token: string;
  kind: FileKind;
  bytes?: Uint8Array;
  path?: string;
  fileName?: string;
  mimeType?: string;
  width?: number;
  height?: number;
}

type FileKind = "document" | "photo" | "voice" | "audio";

interface Ctx {
  state: TokenState;
  params: Json;
  uploads: Map<string, File>;
  /** The HTTP request (absent for calls carried by a webhook answer). */
  req: Request | undefined;
}

interface Answer {
  status: number;
  body: Json;
}

/** The parts of telegram-test-api that its typings keep private. */
interface TtaInternals {
  updateId: number;
  messageId: number;
  server: { address(): { port: number } };
}

class ApiError extends Error {
  constructor(readonly code: number, description: string, readonly parameters?: Json) {
    super(description);
  }
}

class Described {
  constructor(readonly result: unknown, readonly description: string) {}
}

const DEFAULT_USERNAME = "gw_test_bot";
const NOT_FOUND = { ok: false, error_code: 404, description: "Not Found" };
const CLIENT_ROUTES = new Set([
  "/sendMessage",
  "/sendCommand",
  "/sendCallback",
  "/getUpdates",
  "/getUpdatesHistory",
]);
const CHAT_ACTIONS = new Set([
  "typing",
  "upload_photo",
  "record_video",
  "upload_video",
  "record_voice",
  "upload_voice",
  "upload_document",
  "choose_sticker",
  "find_location",
  "record_video_note",
  "upload_video_note",
]);
/** Update types Telegram leaves out when `allowed_updates` is empty. */
const OPT_IN_UPDATES = new Set(["chat_member", "message_reaction", "message_reaction_count"]);
const INT_FIELDS = new Set([
  "message_id",
  "message_thread_id",
  "reply_to_message_id",
  "offset",
  "limit",
  "timeout",
  "open_period",
  "close_date",
  "correct_option_id",
  "max_connections",
  "from_chat_id",
  "user_id",
  "duration",
  "width",
  "height",
  "cache_time",
]);
const BOOL_FIELDS = new Set([
  "disable_notification",
  "protect_content",
  "allow_sending_without_reply",
  "is_anonymous",
  "allows_multiple_answers",
  "is_closed",
  "drop_pending_updates",
  "disable_web_page_preview",
  "has_spoiler",
  "show_caption_above_media",
  "disable_content_type_detection",
  "show_alert",
  "is_big",
  "allow_paid_broadcast",
]);
const JSON_FIELDS = new Set([
  "reply_markup",
  "reply_parameters",
  "entities",
  "caption_entities",
  "link_preview_options",
  "options",
  "allowed_updates",
  "commands",
  "scope",
  "reaction",
  "question_entities",
  "explanation_entities",
  "media",
]);
const MIME: Record<string, string> = {
  txt: "text/plain",
  md: "text/markdown",
  csv: "text/csv",
  html: "text/html",
  json: "application/json",
  pdf: "application/pdf",
  zip: "application/zip",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  mp3: "audio/mpeg",
  ogg: "audio/ogg",
  oga: "audio/ogg",
  opus: "audio/ogg",
  m4a: "audio/mp4",
  wav: "audio/wav",
  mp4: "video/mp4",
};

/**
 * A Telegram Bot API server for tests (see the module doc).
 *
 * @example
 * ```ts
 * const tg = await TelegramApi.start({ tokens: { "1:a": { username: "my_bot" } } });
 * await tg.userSays("1:a", "/start");
 * const call = await tg.waitForCall((c) => c.method === "sendMessage");
 * await tg.close();
 * ```
 */
export class TelegramApi implements AsyncDisposable {
  /** The front's root, `http://127.0.0.1:<port>`: grammY's `apiRoot`. */
  readonly apiRoot: string;
  /** telegram-test-api's server (for `getClient(token, opts)` and its storage). */
  readonly server: TelegramServer;
  /** telegram-test-api's own root (its user-side client routes). */
  readonly ttaUrl: string;
  /** Every bot-side request, oldest first. */
  readonly calls: BotCall[] = [];

  #http: Deno.HttpServer<Deno.NetAddr> | undefined;
  #opts: TelegramApiOptions;
  #tokens = new Map<string, TokenState>();
  #chats = new Map<number, ChatInfo>();
  #messages = new Map<string, Map<number, StoredMessage>>();
  #files = new Map<string, StoredFile>();
  #filePaths = new Map<string, StoredFile>();
  #faults: { method: string; fault: Fault; left: number }[] = [];
  #waiters = new Set<
    {
      pred: (c: BotCall) => boolean;
      resolve: (c: BotCall) => void;
      timer: ReturnType<typeof setTimeout>;
    }
  >();
  #lock: Promise<unknown> = Promise.resolve();
  #abort = new AbortController();
  #closed = false;
  #counter = 0;
  #onUserUpdate = (): void => this.#pull();

  private constructor(server: TelegramServer, ttaUrl: string, opts: TelegramApiOptions) {
    this.server = server;
    this.ttaUrl = ttaUrl;
    this.#opts = opts;
    this.apiRoot = "";
    const tokens = opts.tokens ?? [];
    if (Array.isArray(tokens)) { for (const t of tokens) this.addToken(t); }
    else for (const [t, o] of Object.entries(tokens)) this.addToken(t, o);
    for (const ev of ["AddedUserMessage", "AddedUserCommand", "AddedUserCallbackQuery"]) {
      server.on(ev, this.#onUserUpdate);
    }
  }

  /**
   * Starts telegram-test-api on a free port and the front on another.
   *
   * @example
   * ```ts
   * const tg = await TelegramApi.start({ tokens: ["123:abc"] });
   * ```
   */
  static async start(opts: TelegramApiOptions = {}): Promise<TelegramApi> {
    // telegram-test-api reads port 0 as "default 9000", so set 0 after construction.
    const server = new TelegramServer({ host: "127.0.0.1", port: 1, storeTimeout: 3600 });
    server.config.port = 0;
    await server.start();
    const port = (server as unknown as TtaInternals).server.address().port;
    server.config.port = port;
    server.config.apiURL = `http://127.0.0.1:${port}`;
    const api = new TelegramApi(server, server.config.apiURL, opts);
    try {
      const http = Deno.serve({
        hostname: "127.0.0.1",
        port: 0,
        onListen() {},
        onError: (e) =>
          Response.json(
            { ok: false, error_code: 500, description: `Internal Server Error: ${e}` },
            {
              status: 500,
            },
          ),
      }, (req) => api.#serve(req));
      api.#http = http;
      (api as { apiRoot: string }).apiRoot = `http://127.0.0.1:${http.addr.port}`;
    } catch (e) {
      await server.stop();
      throw e;
    }
    return api;
  }

  /**
   * Makes `token` valid (again). `username` defaults to `gw_test_bot`; the bot id is
   * the token's numeric prefix (`123:abc` → 123), else derived from the token.
   */
  addToken(token: string, opts: { username?: string; firstName?: string } = {}): void {
    const state = this.#state(token);
    state.registered = true;
    const id = /^(\d+):/.exec(token)?.[1];
    state.user = {
      id: id !== undefined ? Number(id) : 6_000_000_000 + hash(token) % 1_000_000_000,
      is_bot: true,
      first_name: opts.firstName ?? "GW Test",
      username: opts.username ?? DEFAULT_USERNAME,
      can_join_groups: true,
      can_read_all_group_messages: false,
      supports_inline_queries: false,
    };
  }

  /**
   * A user writes to the bot; resolves with the update_id once the update is
   * queued. `text` may be "" when a photo or document is given. Commands (`/x`,
   * `/x@bot`) get `bot_command` entities and `@usernames` get `mention` entities
   * automatically (as Telegram's clients and server do), unless `opts.entities`
   * is given.
   *
   * @example
   * ```ts
   * const id = await tg.userSays("1:a", "@gw_test_bot hi", { chatType: "supergroup", messageThreadId: 7 });
   * ```
   */
  userSays(token: string, text: string, opts: UserMessageOptions = {}): Promise<number> {
    return this.#locked(async () => {
      const userId = opts.userId ?? 100;
      const chatType = opts.chatType ?? "private";
      const chatId = opts.chatId ??
        (chatType === "private" ? userId : chatType === "group" ? -123456 : -1001234567890);
      const from: Json = {
        id: userId,
        is_bot: false,
        first_name: opts.firstName ?? "Alice",
        username: opts.username ?? "alice",
        language_code: "en",
      };
      const forum = chatType === "supergroup" && opts.messageThreadId !== undefined;
      const info = this.#rememberChat(chatId, chatType, from, opts.chatTitle, forum);
      const message: Json = { botToken: token, from, chat: info.chat, date: nowSeconds() };
      let topic: Json | undefined;
      if (opts.messageThreadId !== undefined) {
        message.message_thread_id = opts.messageThreadId;
        if (info.chat.is_forum === true) {
          message.is_topic_message = true;
          topic = this.#topic(info, opts.messageThreadId, from);
        }
      }
      if (opts.replyToMessageId !== undefined) {
        const replied = this.#stored(token, chatId, opts.replyToMessageId);
        if (!replied) {
          throw new Error(
            `userSays: replyToMessageId: expected a known message of chat ${chatId}, got ${opts.replyToMessageId}`,
          );
        }
        message.reply_to_message = asReply(replied.message);
      } else if (topic) message.reply_to_message = topic;
      const media = opts.photo !== undefined || opts.document !== undefined;
      if (opts.photo) {
        const size = imageSize(opts.photo.bytes);
        const file = this.#addFile(token, "photo", opts.photo.bytes, {
          width: opts.photo.width ?? size?.width ?? 640,
          height: opts.photo.height ?? size?.height ?? 480,
        });
        message.photo = [photoSize(file)];
      }
      if (opts.document) {
        const file = this.#addFile(token, "document", opts.document.bytes, {
          fileName: opts.document.fileName,
          mimeType: opts.document.mimeType,
        });
        message.document = documentOf(file);
      }
      let entities: unknown[];
      if (media) {
        const caption = opts.caption ?? (text !== "" ? text : undefined);
        entities = opts.entities ?? (caption !== undefined ? autoEntities(caption) : []);
        if (caption !== undefined) message.caption = caption;
        if (entities.length > 0) message.caption_entities = entities;
      } else {
        message.text = text;
        entities = opts.entities ?? autoEntities(text);
        if (entities.length > 0) message.entities = entities;
      }
      const updateId = this.#internals.updateId;
      const first = entities[0] as Json | undefined;
      if (!media && first?.type === "bot_command" && first.offset === 0) {
        await this.server.addUserCommand(message as never);
      } else {
        await this.server.addUserMessage(message as never);
      }
      this.#pull();
      return updateId;
    });
  }

  /**
   * A user presses an inline button of message `messageId` in `chatId`; resolves
   * with the update_id of the `callback_query` update.
   */
  userClicks(
    token: string,
    data: string,
    opts: { chatId: number; messageId: number; userId?: number; username?: string },
  ): Promise<number> {
    return this.#locked(async () => {
      const stored = this.#stored(token, opts.chatId, opts.messageId);
      if (!stored) {
        throw new Error(
          `userClicks: expected a known message of chat ${opts.chatId}, got ${opts.messageId}`,
        );
      }
      const from = {
        id: opts.userId ?? 100,
        is_bot: false,
        first_name: "Alice",
        username: opts.username ?? "alice",
        language_code: "en",
      };
      const updateId = this.#internals.updateId;
      await this.server.addUserCallback(
        { botToken: token, date: nowSeconds(), from, message: stored.message, data } as never,
      );
      this.#pull();
      return updateId;
    });
  }

  /** The recorded calls of `method` (any case), optionally of one token. */
  callsOf(method: string, token?: string): BotCall[] {
    const m = method.toLowerCase();
    return this.calls.filter((c) =>
      c.method.toLowerCase() === m && (token === undefined || c.token === token)
    );
  }

  /**
   * Resolves with the first recorded call (past or future) matching `pred`;
   * rejects after `timeoutMs` (default 5000) with a message listing the calls seen.
   */
  waitForCall(pred: (c: BotCall) => boolean, timeoutMs = 5000): Promise<BotCall> {
    const seen = this.calls.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        pred,
        resolve: (c: BotCall) => {
          clearTimeout(waiter.timer);
          this.#waiters.delete(waiter);
          resolve(c);
        },
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          const list = this.calls.map((c) => `${c.method} ${JSON.stringify(c.params)}`);
          reject(
            new Error(
              `waitForCall: no matching call in ${timeoutMs} ms; calls seen:\n${
                list.join("\n") || "(none)"
              }`,
            ),
          );
        }, timeoutMs),
      };
      this.#waiters.add(waiter);
    });
  }

  /** The bot's messages in a chat (not deleted), oldest first. */
  botMessages(token: string, chatId: number): BotMessage[] {
    const out: BotMessage[] = [];
    for (const m of this.#messages.get(`${token}|${chatId}`)?.values() ?? []) {
      if (!m.byBot || m.deleted || m.kind === "user") continue;
      const b: BotMessage = {
        message_id: m.message.message_id as number,
        text: m.text,
        plainText: m.plain,
        edits: m.edits,
        kind: m.kind,
        message: m.message,
      };
      if (m.parseMode !== undefined) b.parse_mode = m.parseMode;
      if (m.replyTo !== undefined) b.reply_to_message_id = m.replyTo;
      if (m.thread !== undefined) b.message_thread_id = m.thread;
      const doc = (m.message.document ?? m.message.voice ?? m.message.audio) as Json | undefined;
      const photo = (m.message.photo as Json[] | undefined)?.at(-1);
      const fileId = doc?.file_id ?? photo?.file_id;
      if (typeof fileId === "string") b.fileId = fileId;
      out.push(b);
    }
    return out.sort((a, b) => a.message_id - b.message_id);
  }

  /** Every update ever queued for `token` (confirmed or not), oldest first. */
  updates(token: string): Update[] {
    return [...(this.#tokens.get(token)?.history ?? [])];
  }

  /** The bytes of a file the bot uploaded or a user sent; undefined for unknown ids and URL files. */
  uploadedFile(fileId: string): Uint8Array | undefined {
    return this.#files.get(fileId)?.bytes;
  }

  /**
   * The next `times` (default 1) calls of `method` (any case; `"*"` for any) fail
   * with `{"ok":false,"error_code":status,"description":...,"parameters":{"retry_after":N}}`
   * (parameters only with `retryAfter`). Rules apply after the token check, in the
   * order they were added.
   */
  fail(method: string, f: Fault): void {
    this.#faults.push({ method: method.toLowerCase(), fault: f, left: f.times ?? 1 });
  }

  /** Unconfirmed updates of `token` (for webhooks: not yet delivered). */
  pendingUpdates(token: string): number {
    return this.#tokens.get(token)?.queue.length ?? 0;
  }

  /**
   * Stops both servers: held long polls answer `[]`, webhook deliveries and
   * retries are aborted, pending {@link waitForCall}s reject, and
   * telegram-test-api's storage clean-up interval is cleared.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    for (const s of this.#tokens.values()) s.poll?.finish([]);
    for (const w of [...this.#waiters]) {
      clearTimeout(w.timer);
      this.#waiters.delete(w);
    }
    await Promise.allSettled([...this.#tokens.values()].map((s) => s.delivering));
    await this.#http?.shutdown();
    for (const ev of ["AddedUserMessage", "AddedUserCommand", "AddedUserCallbackQuery"]) {
      this.server.off(ev, this.#onUserUpdate);
    }
    await this.server.stop();
  }

  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- plumbing -------------------------------------------------------------

  get #internals(): TtaInternals {
    return this.server as unknown as TtaInternals;
  }

  #locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn);
    this.#lock = run.catch(() => {});
    return run;
  }

  #state(token: string): TokenState {
    let s = this.#tokens.get(token);
    if (!s) {
      s = {
        token,
        registered: false,
        user: {},
        queue: [],
        history: [],
        commands: new Map(),
      };
      this.#tokens.set(token, s);
    }
    return s;
  }

  #record(call: BotCall): void {
    this.calls.push(call);
    this.#notify(call);
  }

  /** Sets the call's answer status; waiters see the call again (predicates may test `status`). */
  #settle(call: BotCall, status: number): void {
    call.status = status;
    this.#notify(call);
  }

  #notify(call: BotCall): void {
    for (const w of [...this.#waiters]) if (w.pred(call)) w.resolve(call);
  }

  /** Moves unread user updates out of telegram-test-api into the per-token queues. */
  #pull(): void {
    const tokens = new Set<string>();
    for (const u of this.server.storage.userMessages) if (!u.isRead) tokens.add(u.botToken);
    for (const token of tokens) {
      for (const raw of this.server.getUpdates(token)) {
        this.#enqueue(token, this.#normalizeUpdate(token, raw as unknown as Json));
      }
    }
  }

  #normalizeUpdate(token: string, raw: Json): Update {
    const u = structuredClone(raw) as Update;
    const msg = u.message as Json | undefined;
    if (msg) {
      delete msg.botToken;
      msg.chat = cleanChat(msg.chat as Json);
      this.#rememberChatObject(msg.chat as Json);
      const chatId = (msg.chat as Json).id as number;
      const text = typeof msg.text === "string" ? msg.text : "";
      this.#chatMessages(token, chatId).set(msg.message_id as number, {
        message: msg,
        byBot: false,
        kind: "user",
        text,
        plain: text,
        entities: [],
        edits: 0,
        deleted: false,
      });
    }
    const cq = u.callback_query as Json | undefined;
    if (cq) {
      const m = cq.message as Json | undefined;
      if (m) {
        delete m.botToken;
        if (m.chat) m.chat = cleanChat(m.chat as Json);
      }
      const chatId = (m?.chat as Json | undefined)?.id;
      cq.chat_instance = String(hash(`${token}|${chatId}`));
    }
    return u;
  }

  #enqueue(token: string, u: Update): void {
    const s = this.#state(token);
    s.queue.push(u);
    s.history.push(u);
    if (s.poll) {
      const ready = this.#ready(s, 100);
      if (ready.length > 0) s.poll.finish(ready);
    }
    if (s.webhook) this.#kickWebhook(s);
  }

  /** Drops updates of types the bot did not allow, then returns up to `limit`. */
  #ready(s: TokenState, limit: number): Update[] {
    s.queue = s.queue.filter((u) => this.#allowed(s, u));
    return s.queue.slice(0, limit);
  }

  #allowed(s: TokenState, u: Update): boolean {
    const type = Object.keys(u).find((k) => k !== "update_id") ?? "";
    return s.allowed && s.allowed.length > 0 ? s.allowed.includes(type) : !OPT_IN_UPDATES.has(type);
  }

  #chatMessages(token: string, chatId: number): Map<number, StoredMessage> {
    const key = `${token}|${chatId}`;
    let m = this.#messages.get(key);
    if (!m) {
      m = new Map();
      this.#messages.set(key, m);
    }
    return m;
  }

  #stored(token: string, chatId: number, messageId: number): StoredMessage | undefined {
    const m = this.#messages.get(`${token}|${chatId}`)?.get(messageId);
    return m && !m.deleted ? m : undefined;
  }

  #rememberChat(
    id: number,
    type: string,
    from: Json,
    title: string | undefined,
    forum: boolean,
  ): ChatInfo {
    const known = this.#chats.get(id);
    if (known) {
      if (forum) known.chat.is_forum = true;
      if (title !== undefined && type !== "private") known.chat.title = title;
      return known;
    }
    const chat: Json = type === "private"
      ? { id, first_name: from.first_name, username: from.username, type }
      : { id, title: title ?? "Test group", type };
    if (forum) chat.is_forum = true;
    const info = { chat, topics: new Map<number, Json>() };
    this.#chats.set(id, info);
    return info;
  }

  #rememberChatObject(chat: Json): void {
    const id = chat.id as number;
    if (!this.#chats.has(id)) this.#chats.set(id, { chat: { ...chat }, topics: new Map() });
  }

  #topic(info: ChatInfo, thread: number, from: Json): Json {
    let t = info.topics.get(thread);
    if (!t) {
      t = {
        message_id: thread,
        from,
        chat: info.chat,
        date: nowSeconds(),
        message_thread_id: thread,
        forum_topic_created: { name: `Topic ${thread}`, icon_color: 7322096 },
        is_topic_message: true,
      };
      info.topics.set(thread, t);
    }
    return t;
  }

  #chatFor(chatId: unknown): ChatInfo {
    if (chatId === undefined || chatId === null || chatId === "") {
      throw new ApiError(400, "Bad Request: chat_id is empty");
    }
    if (typeof chatId === "string" && chatId.startsWith("@")) {
      const name = chatId.slice(1).toLowerCase();
      for (const info of this.#chats.values()) {
        if (String(info.chat.username ?? "").toLowerCase() === name) return info;
      }
      throw new ApiError(400, "Bad Request: chat not found");
    }
    const id = int(chatId);
    if (id === undefined) throw new ApiError(400, "Bad Request: chat not found");
    const known = this.#chats.get(id);
    if (known) return known;
    if (this.#opts.strictChats) {
      if (id > 0) throw new ApiError(403, "Forbidden: bot can't initiate conversation with a user");
      throw new ApiError(400, "Bad Request: chat not found");
    }
    const chat: Json = id > 0
      ? { id, first_name: "User", type: "private" }
      : { id, title: "Group", type: id <= -1_000_000_000_000 ? "supergroup" : "group" };
    const info = { chat, topics: new Map<number, Json>() };
    this.#chats.set(id, info);
    return info;
  }

  #addFile(
    token: string,
    kind: FileKind,
    bytes: Uint8Array | undefined,
    extra: Partial<StoredFile> = {},
  ): StoredFile {
    const n = ++this.#counter;
    const file: StoredFile = {
      fileId: FILE_ID_PREFIX[kind] + randomId(40),
      uniqueId: "AQAD" + randomId(12),
      token,
      kind,
      ...extra,
    };
    if (bytes) {
      file.bytes = bytes;
      const ext = kind === "photo" ? "jpg" : (extOf(file.fileName ?? "") || "dat");
      file.path = `${FILE_DIR[kind]}/file_${n}.${ext}`;
      this.#filePaths.set(file.path, file);
    }
    this.#files.set(file.fileId, file);
    return file;
  }

  async #ttaPost(path: string, body: Json): Promise<Json> {
    const res = await fetch(this.ttaUrl + path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return await res.json() as Json;
  }

  // ---- HTTP -----------------------------------------------------------------

  async #serve(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const file = /^\/file\/bot([^/]+)\/(.+)$/.exec(url.pathname);
    if (file) {
      await req.body?.cancel();
      const token = decodeURIComponent(file[1]!);
      const f = this.#filePaths.get(decodeURIComponent(file[2]!));
      if (!f?.bytes || f.token !== token || !this.#tokens.get(token)?.registered) {
        return Response.json(NOT_FOUND, { status: 404 });
      }
      return new Response(f.bytes.slice(), {
        headers: {
          "content-type": f.mimeType ?? "application/octet-stream",
          "content-length": String(f.bytes.length),
        },
      });
    }
    const m = /^\/bot([^/]*)\/([^/]*)$/.exec(url.pathname);
    if (m) return await this.#botRequest(req, url, decodeURIComponent(m[1]!), m[2]!);
    if (req.method === "POST" && CLIENT_ROUTES.has(url.pathname)) {
      const body = await req.text();
      const res = await fetch(this.ttaUrl + url.pathname, {
        method: "POST",
        headers: { "content-type": req.headers.get("content-type") ?? "application/json" },
        body,
      });
      return new Response(await res.text(), {
        status: res.status,
        headers: { "content-type": "application/json" },
      });
    }
    await req.body?.cancel();
    return Response.json(NOT_FOUND, { status: 404 });
  }

  async #botRequest(req: Request, url: URL, token: string, method: string): Promise<Response> {
    const name = CANONICAL.get(method.toLowerCase()) ?? method;
    let parsed: { params: Json; uploads: Map<string, File> };
    try {
      parsed = await parseRequest(req, url);
    } catch {
      this.#record({ token, method: name, params: {}, at: Date.now(), status: 400 });
      return Response.json({
        ok: false,
        error_code: 400,
        description: "Bad Request: can't parse request body",
      }, { status: 400 });
    }
    const call: BotCall = { token, method: name, params: parsed.params, at: Date.now() };
    this.#record(call);
    const answer = await this.#dispatch(token, name, parsed.params, parsed.uploads, req);
    this.#settle(call, answer.status);
    return Response.json(answer.body, { status: answer.status });
  }

  async #dispatch(
    token: string,
    method: string,
    params: Json,
    uploads: Map<string, File>,
    req: Request | undefined,
  ): Promise<Answer> {
    const state = this.#tokens.get(token);
    if (!state?.registered) return errorAnswer(new ApiError(401, "Unauthorized"));
    const lower = method.toLowerCase();
    const rule = this.#faults.find((r) => r.left > 0 && (r.method === lower || r.method === "*"));
    if (rule) {
      rule.left--;
      const params = rule.fault.retryAfter !== undefined
        ? { retry_after: rule.fault.retryAfter }
        : undefined;
      return errorAnswer(new ApiError(rule.fault.status, rule.fault.description, params));
    }
    const handler = this.#handlers[lower];
    if (!handler) return errorAnswer(new ApiError(404, "Not Found: method not found"));
    try {
      const result = await handler({ state, params, uploads, req });
      if (result instanceof Described) {
        return {
          status: 200,
          body: { ok: true, result: result.result, description: result.description },
        };
      }
      return { status: 200, body: { ok: true, result } };
    } catch (e) {
      if (e instanceof ApiError) return errorAnswer(e);
      return errorAnswer(
        new ApiError(500, `Internal Server Error: ${e instanceof Error ? e.message : String(e)}`),
      );
    }
  }

  // ---- methods --------------------------------------------------------------

  #handlers: Record<string, (ctx: Ctx) => unknown> = {
    getme: ({ state }) => state.user,
    logout: () => true,
    close: () => true,
    getupdates: (ctx) => this.#getUpdates(ctx),
    setwebhook: (ctx) => this.#setWebhook(ctx),
    deletewebhook: ({ state, params }) => {
      if (bool(params.drop_pending_updates)) state.queue = [];
      const had = state.webhook !== undefined;
      delete state.webhook;
      delete state.lastError;
      return new Described(true, had ? "Webhook was deleted" : "Webhook is already deleted");
    },
    getwebhookinfo: ({ state }) => {
      const info: Json = {
        url: state.webhook?.url ?? "",
        has_custom_certificate: false,
        pending_update_count: state.queue.length,
      };
      if (state.webhook) {
        info.max_connections = state.webhook.maxConnections;
        info.ip_address = "127.0.0.1";
        if (state.allowed && state.allowed.length > 0) info.allowed_updates = state.allowed;
      }
      if (state.lastError) {
        info.last_error_date = state.lastError.date;
        info.last_error_message = state.lastError.message;
      }
      return info;
    },
    sendmessage: (ctx) => this.#sendMessage(ctx),
    editmessagetext: (ctx) => this.#editMessageText(ctx),
    editmessagereplymarkup: (ctx) => this.#editMessageReplyMarkup(ctx),
    deletemessage: (ctx) => this.#deleteMessage(ctx),
    sendchataction: ({ params }) => {
      this.#chatFor(params.chat_id);
      const action = String(params.action ?? "");
      if (!CHAT_ACTIONS.has(action)) {
        throw new ApiError(400, "Bad Request: wrong parameter action in request");
      }
      return true;
    },
    sendpoll: (ctx) => this.#sendPoll(ctx),
    senddocument: (ctx) => this.#sendFile(ctx, "document"),
    sendphoto: (ctx) => this.#sendFile(ctx, "photo"),
    sendvoice: (ctx) => this.#sendFile(ctx, "voice"),
    sendaudio: (ctx) => this.#sendFile(ctx, "audio"),
    getfile: ({ state, params }) => {
      const f = this.#files.get(String(params.file_id ?? ""));
      if (!f || f.token !== state.token) throw new ApiError(400, "Bad Request: invalid file_id");
      if ((f.bytes?.length ?? 0) > 20 * 1024 * 1024) {
        throw new ApiError(400, "Bad Request: file is too big");
      }
      const out: Json = { file_id: f.fileId, file_unique_id: f.uniqueId };
      if (f.bytes) out.file_size = f.bytes.length;
      if (f.path) out.file_path = f.path;
      return out;
    },
    setmycommands: ({ state, params }) => {
      const commands = Array.isArray(params.commands) ? params.commands as Json[] : undefined;
      if (!commands) throw new ApiError(400, 'Bad Request: parameter "commands" is required');
      for (const c of commands) {
        if (typeof c.command !== "string" || !/^[a-z0-9_]{1,32}$/.test(c.command)) {
          throw new ApiError(400, "Bad Request: BOT_COMMAND_INVALID");
        }
        if (typeof c.description !== "string" || c.description.length < 1) {
          throw new ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID");
        }
      }
      state.commands.set(commandsKey(params), commands);
      return true;
    },
    deletemycommands: ({ state, params }) => {
      state.commands.delete(commandsKey(params));
      return true;
    },
    getmycommands: ({ state, params }) => state.commands.get(commandsKey(params)) ?? [],
    answercallbackquery: () => true,
    setmessagereaction: () => true,
  };

  #getUpdates({ state, params, req }: Ctx): Promise<Update[]> | Update[] {
    if (state.webhook) {
      throw new ApiError(
        409,
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
      );
    }
    const offset = int(params.offset) ?? 0;
    const limit = Math.min(100, Math.max(1, int(params.limit) ?? 100));
    const timeout = Math.max(0, int(params.timeout) ?? 0);
    if (Array.isArray(params.allowed_updates)) state.allowed = params.allowed_updates.map(String);
    if (offset > 0) state.queue = state.queue.filter((u) => u.update_id >= offset);
    else if (offset < 0) state.queue = state.queue.slice(offset);
    state.poll?.finish(
      new ApiError(
        409,
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
      ),
    );
    const ready = this.#ready(state, limit);
    if (ready.length > 0 || timeout === 0 || this.#closed) return ready;
    // Only a held poll touches req.signal (it aborts when the client goes away).
    const signal = req?.signal;
    return new Promise<Update[]>((resolve, reject) => {
      const poll: HeldPoll = {
        finish: (result) => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          if (state.poll === poll) delete state.poll;
          if (result instanceof ApiError) reject(result);
          else resolve(result.slice(0, limit));
        },
      };
      const onAbort = () => poll.finish([]);
      const timer = setTimeout(() => poll.finish([]), timeout * 1000);
      signal?.addEventListener("abort", onAbort);
      state.poll = poll;
    });
  }

  #setWebhook({ state, params }: Ctx): Described {
    const url = String(params.url ?? "");
    if (url === "") {
      const had = state.webhook !== undefined;
      delete state.webhook;
      return new Described(true, had ? "Webhook was deleted" : "Webhook is already deleted");
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ApiError(
        400,
        "Bad Request: bad webhook: Failed to resolve host: Name or service not known",
      );
    }
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
      throw new ApiError(
        400,
        "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
      );
    }
    const secret = params.secret_token === undefined ? undefined : String(params.secret_token);
    if (secret !== undefined && !/^[A-Za-z0-9_-]{1,256}$/.test(secret)) {
      throw new ApiError(400, "Bad Request: secret token contains unallowed characters");
    }
    state.poll?.finish(new ApiError(409, "Conflict: terminated by setWebhook request"));
    if (bool(params.drop_pending_updates)) state.queue = [];
    if (Array.isArray(params.allowed_updates)) state.allowed = params.allowed_updates.map(String);
    const same = state.webhook?.url === url;
    state.webhook = { url, maxConnections: int(params.max_connections) ?? 40 };
    if (secret !== undefined) state.webhook.secret = secret;
    delete state.lastError;
    this.#kickWebhook(state);
    return new Described(true, same ? "Webhook is already set" : "Webhook was set");
  }

  #kickWebhook(s: TokenState): void {
    if (s.delivering || this.#closed) return;
    s.delivering = this.#deliver(s).catch((e) => {
      s.lastError = { date: nowSeconds(), message: `Internal error: ${e}` };
    }).finally(() => {
      delete s.delivering;
      if (s.webhook && s.queue.length > 0 && !this.#closed) this.#kickWebhook(s);
    });
  }

  /** POSTs queued updates one at a time, in order, while a webhook is set. */
  async #deliver(s: TokenState): Promise<void> {
    const attempts = this.#opts.webhookAttempts ?? 4;
    const backoff = this.#opts.webhookBackoffMs ?? 50;
    while (s.webhook && !this.#closed) {
      const hook = s.webhook;
      const u = this.#ready(s, 1)[0];
      if (!u) return;
      for (let i = 0; i < attempts && s.webhook === hook && !this.#closed; i++) {
        if (i > 0) await this.#sleep(backoff * 2 ** (i - 1));
        if (s.webhook !== hook || this.#closed) break;
        try {
          const headers: Record<string, string> = { "content-type": "application/json" };
          if (hook.secret !== undefined) headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret;
          const res = await fetch(hook.url, {
            method: "POST",
            headers,
            body: JSON.stringify(u),
            signal: this.#abort.signal,
          });
          const text = await res.text();
          if (res.ok) {
            await this.#webhookReply(s, res.headers.get("content-type") ?? "", text);
            break;
          }
          s.lastError = {
            date: nowSeconds(),
            message: `Wrong response from the webhook: ${res.status} ${res.statusText}`.trim(),
          };
        } catch (e) {
          if (this.#closed) return;
          s.lastError = {
            date: nowSeconds(),
            message: e instanceof Error && /refused/i.test(e.message)
              ? "Connection refused"
              : `Connection failed: ${e instanceof Error ? e.message : String(e)}`,
          };
        }
      }
      if (s.webhook !== hook || this.#closed) continue;
      // Delivered, or given up after `attempts` tries as Telegram does.
      s.queue = s.queue.filter((q) => q !== u);
    }
  }

  /** A webhook answer may carry one method call (`{"method":"sendMessage",...}`), as Telegram allows. */
  async #webhookReply(s: TokenState, contentType: string, text: string): Promise<void> {
    if (!contentType.includes("application/json")) return;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return;
    }
    if (!isObject(body) || typeof body.method !== "string") return;
    const { method, ...rest } = body;
    const name = CANONICAL.get(method.toLowerCase()) ?? method;
    const params = coerce(rest);
    const call: BotCall = { token: s.token, method: name, params, at: Date.now() };
    this.#record(call);
    this.#settle(call, (await this.#dispatch(s.token, name, params, new Map(), undefined)).status);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.#abort.signal;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done);
    });
  }

  /** Chat, topic and reply of a message the bot sends; throws the Bot API errors. */
  #target(state: TokenState, params: Json) {
    const info = this.#chatFor(params.chat_id);
    const chatId = info.chat.id as number;
    const requestedThread = int(params.message_thread_id);
    const thread = requestedThread !== undefined && info.chat.is_forum === true
      ? requestedThread
      : undefined;
    const rp = isObject(params.reply_parameters) ? params.reply_parameters : undefined;
    const replyTo = int(rp?.message_id) ?? int(params.reply_to_message_id);
    let reply: Json | undefined;
    if (replyTo !== undefined) {
      const replyChat = rp?.chat_id !== undefined ? this.#chatFor(rp.chat_id) : info;
      const stored = this.#stored(state.token, replyChat.chat.id as number, replyTo);
      if (stored) reply = asReply(stored.message);
      else if (!bool(rp?.allow_sending_without_reply ?? params.allow_sending_without_reply)) {
        throw new ApiError(400, "Bad Request: message to be replied not found");
      }
    }
    const base: Json = {
      message_id: 0,
      from: botFrom(state.user),
      chat: info.chat,
      date: nowSeconds(),
    };
    if (thread !== undefined) {
      base.message_thread_id = thread;
      base.is_topic_message = true;
    }
    if (reply) base.reply_to_message = reply;
    else if (thread !== undefined) {
      base.reply_to_message = this.#topic(info, thread, botFrom(state.user));
    }
    return { info, chatId, base, replyTo, requestedThread };
  }

  #store(
    state: TokenState,
    chatId: number,
    message: Json,
    s: Omit<StoredMessage, "message" | "byBot" | "edits" | "deleted">,
  ): void {
    const stored: StoredMessage = { message, byBot: true, edits: 0, deleted: false, ...s };
    this.#chatMessages(state.token, chatId).set(message.message_id as number, stored);
  }

  #sendMessage({ state, params }: Ctx): Promise<Json> {
    const { chatId, base, replyTo, requestedThread } = this.#target(state, params);
    const text = params.text === undefined ? "" : String(params.text);
    const f = formatText(text, params.parse_mode, params.entities);
    if (f.plain.trim() === "") throw new ApiError(400, "Bad Request: message text is empty");
    if ([...f.plain].length > 4096) throw new ApiError(400, "Bad Request: message is too long");
    return this.#locked(async () => {
      const r = await this.#ttaPost(`/bot${state.token}/sendMessage`, {
        ...params,
        chat_id: chatId,
      });
      const message: Json = { ...base, message_id: (r.result as Json).message_id, text: f.plain };
      if (f.entities.length > 0) message.entities = f.entities;
      const markup = inlineMarkup(params.reply_markup);
      if (markup) message.reply_markup = markup;
      this.#store(state, chatId, message, {
        kind: "text",
        text,
        plain: f.plain,
        entities: f.entities,
        ...(f.parseMode !== undefined ? { parseMode: f.parseMode } : {}),
        ...(replyTo !== undefined ? { replyTo } : {}),
        ...(requestedThread !== undefined ? { thread: requestedThread } : {}),
        markup,
      });
      return message;
    });
  }

  #editTarget(state: TokenState, params: Json): { chatId: number; stored: StoredMessage } {
    if (params.inline_message_id !== undefined) {
      throw new ApiError(400, "Bad Request: MESSAGE_ID_INVALID");
    }
    const chatId = this.#chatFor(params.chat_id).chat.id as number;
    const id = int(params.message_id);
    if (id === undefined) {
      throw new ApiError(400, "Bad Request: message identifier is not specified");
    }
    const stored = this.#stored(state.token, chatId, id);
    if (!stored) throw new ApiError(400, "Bad Request: message to edit not found");
    if (!stored.byBot) throw new ApiError(400, "Bad Request: message can't be edited");
    return { chatId, stored };
  }

  #editMessageText({ state, params }: Ctx): Promise<Json> {
    const { chatId, stored } = this.#editTarget(state, params);
    if (stored.kind !== "text") {
      throw new ApiError(400, "Bad Request: there is no text in the message to edit");
    }
    const text = params.text === undefined ? "" : String(params.text);
    const f = formatText(text, params.parse_mode, params.entities);
    if (f.plain.trim() === "") throw new ApiError(400, "Bad Request: message text is empty");
    if ([...f.plain].length > 4096) throw new ApiError(400, "Bad Request: MESSAGE_TOO_LONG");
    const markup = inlineMarkup(params.reply_markup);
    if (
      f.plain === stored.plain && JSON.stringify(f.entities) === JSON.stringify(stored.entities) &&
      JSON.stringify(markup) === JSON.stringify(stored.markup)
    ) {
      throw new ApiError(
        400,
        "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
      );
    }
    return this.#locked(async () => {
      await this.#ttaPost(`/bot${state.token}/editMessageText`, { ...params, chat_id: chatId });
      const message: Json = { ...stored.message, text: f.plain, edit_date: nowSeconds() };
      delete message.entities;
      delete message.reply_markup;
      if (f.entities.length > 0) message.entities = f.entities;
      if (markup) message.reply_markup = markup;
      stored.message = message;
      stored.text = text;
      stored.plain = f.plain;
      stored.entities = f.entities;
      stored.markup = markup;
      if (f.parseMode !== undefined) stored.parseMode = f.parseMode;
      else delete stored.parseMode;
      stored.edits++;
      return message;
    });
  }

  #editMessageReplyMarkup({ state, params }: Ctx): Promise<Json> {
    const { chatId, stored } = this.#editTarget(state, params);
    const markup = inlineMarkup(params.reply_markup);
    if (JSON.stringify(markup) === JSON.stringify(stored.markup)) {
      throw new ApiError(
        400,
        "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
      );
    }
    return this.#locked(async () => {
      await this.#ttaPost(`/bot${state.token}/editMessageReplyMarkup`, {
        ...params,
        chat_id: chatId,
      });
      const message: Json = { ...stored.message, edit_date: nowSeconds() };
      delete message.reply_markup;
      if (markup) message.reply_markup = markup;
      stored.message = message;
      stored.markup = markup;
      stored.edits++;
      return message;
    });
  }

  #deleteMessage({ state, params }: Ctx): Promise<boolean> {
    const chatId = this.#chatFor(params.chat_id).chat.id as number;
    const id = int(params.message_id);
    if (id === undefined) {
      throw new ApiError(400, "Bad Request: message identifier is not specified");
    }
    return this.#locked(async () => {
      const r = await this.#ttaPost(`/bot${state.token}/deleteMessage`, {
        chat_id: chatId,
        message_id: id,
      });
      const stored = this.#stored(state.token, chatId, id);
      if (r.ok !== true && !stored) {
        throw new ApiError(400, "Bad Request: message to delete not found");
      }
      if (stored) stored.deleted = true;
      return true;
    });
  }

  #sendPoll({ state, params }: Ctx): Promise<Json> {
    const { chatId, base, replyTo, requestedThread } = this.#target(state, params);
    const question = params.question === undefined ? "" : String(params.question);
    if (question.trim() === "") {
      throw new ApiError(400, "Bad Request: poll question must be non-empty");
    }
    if ([...question].length > 300) {
      throw new ApiError(400, "Bad Request: poll question is too long");
    }
    const raw = Array.isArray(params.options) ? params.options : [];
    const options = raw.map((o) => isObject(o) ? String(o.text ?? "") : String(o));
    if (options.length < 2) {
      throw new ApiError(400, "Bad Request: poll must have at least 2 option");
    }
    if (options.length > 12) {
      throw new ApiError(400, "Bad Request: poll can't have more than 12 options");
    }
    if (options.some((o) => o.trim() === "")) {
      throw new ApiError(400, "Bad Request: poll options must be non-empty");
    }
    const type = params.type === "quiz" ? "quiz" : "regular";
    const correct = int(params.correct_option_id);
    if (type === "quiz" && (correct === undefined || correct < 0 || correct >= options.length)) {
      throw new ApiError(400, "Bad Request: wrong correct option ID specified");
    }
    const poll: Json = {
      id: String(5_000_000_000_000_000 + hash(`${state.token}|${++this.#counter}`)),
      question,
      options: options.map((text) => ({ text, voter_count: 0 })),
      total_voter_count: 0,
      is_closed: bool(params.is_closed) ?? false,
      is_anonymous: bool(params.is_anonymous) ?? true,
      type,
      allows_multiple_answers: type === "regular" &&
        (bool(params.allows_multiple_answers) ?? false),
    };
    if (type === "quiz") poll.correct_option_id = correct;
    if (params.explanation !== undefined) poll.explanation = String(params.explanation);
    const openPeriod = int(params.open_period);
    if (openPeriod !== undefined) {
      poll.open_period = openPeriod;
      poll.close_date = nowSeconds() + openPeriod;
    } else if (int(params.close_date) !== undefined) poll.close_date = int(params.close_date);
    return this.#locked(() => {
      const added = this.server.addBotMessage({ chat_id: chatId, poll } as never, state.token);
      const message: Json = { ...base, message_id: added.message_id, poll };
      const markup = inlineMarkup(params.reply_markup);
      if (markup) message.reply_markup = markup;
      this.#store(state, chatId, message, {
        kind: "poll",
        text: question,
        plain: question,
        entities: [],
        ...(replyTo !== undefined ? { replyTo } : {}),
        ...(requestedThread !== undefined ? { thread: requestedThread } : {}),
        markup,
      });
      return Promise.resolve(message);
    });
  }

  async #sendFile({ state, params, uploads }: Ctx, kind: FileKind): Promise<Json> {
    const { chatId, base, replyTo, requestedThread } = this.#target(state, params);
    const caption = params.caption === undefined ? "" : String(params.caption);
    const f = formatText(caption, params.parse_mode, params.caption_entities);
    if ([...f.plain].length > 1024) {
      throw new ApiError(400, "Bad Request: message caption is too long");
    }
    const upload = uploads.get(kind);
    const ref = params[kind];
    /** Voice and audio of a format Telegram cannot play as such arrive as a document. */
    const as = (name: string): FileKind =>
      kind === "voice" || kind === "audio"
        ? (PLAYABLE[kind].has(extOf(name)) ? kind : "document")
        : kind;
    const duration = Math.max(1, int(params.duration) ?? 1);
    let file: StoredFile;
    if (upload) {
      const bytes = new Uint8Array(await upload.arrayBuffer());
      if (kind === "photo") {
        const size = imageSize(bytes);
        if (!size) throw new ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED");
        file = this.#addFile(state.token, "photo", bytes, size);
      } else {
        const fileName = upload.name || kind;
        const ext = extOf(fileName);
        const mimeType = MIME[ext] ??
          (upload.type && upload.type !== "application/octet-stream"
            ? upload.type
            : "application/octet-stream");
        file = this.#addFile(state.token, as(fileName), bytes, { fileName, mimeType });
      }
    } else if (typeof ref === "string" && ref !== "") {
      if (/^https?:\/\//i.test(ref)) {
        const name = new URL(ref).pathname.split("/").pop() || "file";
        file = kind === "photo"
          ? this.#addFile(state.token, "photo", undefined, { width: 800, height: 600 })
          : this.#addFile(state.token, as(name), undefined, {
            fileName: name,
            mimeType: MIME[extOf(name)] ?? "application/octet-stream",
          });
      } else {
        const known = this.#files.get(ref);
        if (!known || known.token !== state.token) {
          throw new ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified");
        }
        if (known.kind !== kind) throw new ApiError(400, "Bad Request: type of file mismatch");
        file = known;
      }
    } else {
      throw new ApiError(400, `Bad Request: there is no ${kind} in the request`);
    }
    const sent = file.kind;
    return await this.#locked(() => {
      const added = this.server.addBotMessage(
        { chat_id: chatId, caption, [sent]: file.fileId } as never,
        state.token,
      );
      const message: Json = { ...base, message_id: added.message_id };
      if (sent === "photo") message.photo = [photoSize(file)];
      else if (sent === "voice") message.voice = voiceOf(file, duration);
      else if (sent === "audio") message.audio = audioOf(file, duration);
      else message.document = documentOf(file);
      if (f.plain !== "") message.caption = f.plain;
      if (f.entities.length > 0) message.caption_entities = f.entities;
      const markup = inlineMarkup(params.reply_markup);
      if (markup) message.reply_markup = markup;
      this.#store(state, chatId, message, {
        kind: sent,
        text: caption,
        plain: f.plain,
        entities: f.entities,
        ...(f.parseMode !== undefined ? { parseMode: f.parseMode } : {}),
        ...(replyTo !== undefined ? { replyTo } : {}),
        ...(requestedThread !== undefined ? { thread: requestedThread } : {}),
        markup,
      });
      return Promise.resolve(message);
    });
  }
}

const CANONICAL = new Map(
  [
    "getMe",
    "logOut",
    "close",
    "getUpdates",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "deleteMessage",
    "sendChatAction",
    "sendPoll",
    "sendDocument",
    "sendPhoto",
    "sendVoice",
    "sendAudio",
    "getFile",
    "setMyCommands",
    "deleteMyCommands",
    "getMyCommands",
    "answerCallbackQuery",
    "setMessageReaction",
  ].map((m) => [m.toLowerCase(), m]),
);

// ---- helpers ------------------------------------------------------------------

function errorAnswer(e: ApiError): Answer {
  const body: Json = { ok: false, error_code: e.code, description: e.message };
  if (e.parameters) body.parameters = e.parameters;
  return { status: e.code, body };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function int(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "string" && /^-?\d+$/.test(v.trim())) return Number(v.trim());
  return undefined;
}

function bool(v: unknown): boolean | undefined {
  if (v === true || v === "true" || v === "1" || v === 1 || v === "True") return true;
  if (v === false || v === "false" || v === "0" || v === 0 || v === "False") return false;
  return undefined;
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

function randomId(n: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  return [...bytes].map((b) => abc[b & 63]).join("");
}

function extOf(name: string): string {
  const i = name.lastIndexOf(".");
  return i > 0 ? name.slice(i + 1).toLowerCase() : "";
}

function commandsKey(params: Json): string {
  return `${JSON.stringify(params.scope ?? { type: "default" })}|${params.language_code ?? ""}`;
}

function botFrom(user: Json): Json {
  return { id: user.id, is_bot: true, first_name: user.first_name, username: user.username };
}

/** A Message as it appears in `reply_to_message`: without its own reply. */
function asReply(m: Json): Json {
  const copy = structuredClone(m);
  delete copy.reply_to_message;
  return copy;
}

/** telegram-test-api's client puts title, first_name and username on every chat. */
function cleanChat(chat: Json): Json {
  const c: Json = { ...chat };
  if (c.type === "private") delete c.title;
  else {
    delete c.first_name;
    delete c.last_name;
    if (c.type === "group") delete c.username;
  }
  return c;
}

function inlineMarkup(v: unknown): Json | undefined {
  return isObject(v) && Array.isArray(v.inline_keyboard) ? v : undefined;
}

function photoSize(f: StoredFile): Json {
  const p: Json = { file_id: f.fileId, file_unique_id: f.uniqueId };
  if (f.bytes) p.file_size = f.bytes.length;
  p.width = f.width ?? 800;
  p.height = f.height ?? 600;
  return p;
}

/** File extensions Telegram plays as voice (OGG Opus, MP3, M4A) and as audio (MP3, M4A). */
const PLAYABLE = {
  voice: new Set(["ogg", "oga", "opus", "mp3", "m4a"]),
  audio: new Set(["mp3", "m4a"]),
};

const FILE_ID_PREFIX: Record<FileKind, string> = {
  photo: "AgACAgIAAxkBAAI",
  document: "BQACAgIAAxkBAAI",
  voice: "AwACAgIAAxkBAAI",
  audio: "CQACAgIAAxkBAAI",
};

const FILE_DIR: Record<FileKind, string> = {
  photo: "photos",
  document: "documents",
  voice: "voice",
  audio: "music",
};

function voiceOf(f: StoredFile, duration: number): Json {
  const v: Json = { duration, mime_type: f.mimeType, file_id: f.fileId };
  v.file_unique_id = f.uniqueId;
  if (f.bytes) v.file_size = f.bytes.length;
  return v;
}

function audioOf(f: StoredFile, duration: number): Json {
  const a: Json = { duration, file_name: f.fileName ?? "audio", mime_type: f.mimeType };
  a.file_id = f.fileId;
  a.file_unique_id = f.uniqueId;
  if (f.bytes) a.file_size = f.bytes.length;
  return a;
}

function documentOf(f: StoredFile): Json {
  const d: Json = { file_name: f.fileName ?? "document", mime_type: f.mimeType };
  d.file_id = f.fileId;
  d.file_unique_id = f.uniqueId;
  if (f.bytes) d.file_size = f.bytes.length;
  return d;
}

/** Width and height of PNG, JPEG, GIF and WebP images; undefined for anything else. */
function imageSize(b: Uint8Array): { width: number; height: number } | undefined {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length >= 24 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    return { width: v.getUint32(16), height: v.getUint32(20) };
  }
  if (b.length >= 10 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) {
    return { width: v.getUint16(6, true), height: v.getUint16(8, true) };
  }
  if (b.length >= 30 && ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WEBP") {
    const kind = ascii(b, 12, 4);
    if (kind === "VP8X") {
      return {
        width: 1 + (b[24]! | b[25]! << 8 | b[26]! << 16),
        height: 1 + (b[27]! | b[28]! << 8 | b[29]! << 16),
      };
    }
    if (kind === "VP8 ") {
      return { width: v.getUint16(26, true) & 0x3fff, height: v.getUint16(28, true) & 0x3fff };
    }
    if (kind === "VP8L") {
      const bits = v.getUint32(21, true);
      return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
    }
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) return undefined;
      const marker = b[i + 1]!;
      const len = v.getUint16(i + 2);
      if (
        marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc
      ) {
        return { width: v.getUint16(i + 7), height: v.getUint16(i + 5) };
      }
      i += 2 + len;
    }
  }
  return undefined;
}

function ascii(b: Uint8Array, at: number, n: number): string {
  return String.fromCharCode(...b.subarray(at, at + n));
}

/** Reads a form or query value the way the Bot API reads that field. */
function coerceValue(key: string, v: unknown): unknown {
  if (typeof v !== "string") return v;
  if (key === "chat_id") return int(v) ?? v;
  if (INT_FIELDS.has(key)) return int(v) ?? v;
  if (BOOL_FIELDS.has(key)) return bool(v) ?? v;
  if (JSON_FIELDS.has(key)) {
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }
  return v;
}

function coerce(raw: Json): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(raw)) out[k] = coerceValue(k, v);
  return out;
}

/** Query string and body (JSON, urlencoded or multipart) merged; files resolved from `attach://`. */
async function parseRequest(
  req: Request,
  url: URL,
): Promise<{ params: Json; uploads: Map<string, File> }> {
  const raw: Json = {};
  for (const [k, v] of url.searchParams) raw[k] = v;
  const parts = new Map<string, File>();
  const type = req.headers.get("content-type") ?? "";
  if (req.body) {
    if (
      type.includes("multipart/form-data") || type.includes("application/x-www-form-urlencoded")
    ) {
      const form = await req.formData();
      for (const [k, v] of form) {
        if (typeof v === "string") raw[k] = v;
        else parts.set(k, v);
      }
    } else {
      const text = await req.text();
      if (text.trim() !== "") {
        const body = JSON.parse(text);
        if (!isObject(body)) throw new Error("expected a JSON object");
        Object.assign(raw, body);
      }
    }
  }
  const params = coerce(raw);
  const uploads = new Map<string, File>();
  const describe = (f: File) => ({ filename: f.name, size: f.size, type: f.type });
  const used = new Set<string>();
  for (const [k, v] of Object.entries(params)) {
    if (typeof v === "string" && v.startsWith("attach://")) {
      const f = parts.get(v.slice(9));
      if (f) {
        uploads.set(k, f);
        used.add(v.slice(9));
        params[k] = describe(f);
      }
    }
  }
  for (const [k, f] of parts) {
    if (used.has(k)) continue;
    uploads.set(k, f);
    params[k] = describe(f);
  }
  return { params, uploads };
}

// ---- text entities ------------------------------------------------------------

/** Entities Telegram finds by itself: bot commands, @mentions and URLs. */
function autoEntities(text: string): Json[] {
  const out: Json[] = [];
  const word = /[\p{L}\p{N}_]/u;
  const isWord = (ch: string | undefined) => ch !== undefined && word.test(ch);
  for (const m of text.matchAll(/\/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?/g)) {
    const before = text[m.index - 1];
    const after = text[m.index + m[0].length];
    if (isWord(before) || before === "/" || before === "<" || before === ">") continue;
    if (isWord(after) || after === "/" || after === "<" || after === ">") continue;
    out.push({ offset: m.index, length: m[0].length, type: "bot_command" });
  }
  for (const m of text.matchAll(/@[A-Za-z0-9_]{5,32}/g)) {
    if (isWord(text[m.index - 1]) || isWord(text[m.index + m[0].length])) continue;
    if (out.some((e) => overlaps(e, m.index, m[0].length))) continue;
    out.push({ offset: m.index, length: m[0].length, type: "mention" });
  }
  for (const m of text.matchAll(/https?:\/\/[^\s<>"]+/g)) {
    const url = m[0].replace(/[.,;:!?)\]]+$/, "");
    if (out.some((e) => overlaps(e, m.index, url.length))) continue;
    out.push({ offset: m.index, length: url.length, type: "url" });
  }
  return out.sort((a, b) => (a.offset as number) - (b.offset as number));
}

function overlaps(e: Json, offset: number, length: number): boolean {
  const o = e.offset as number;
  const l = e.length as number;
  return offset < o + l && o < offset + length;
}

/** Plain text and entities of a text as Telegram stores it, or the 400 Telegram answers. */
function formatText(
  text: string,
  parseMode: unknown,
  entities: unknown,
): { plain: string; entities: Json[]; parseMode?: string } {
  if (Array.isArray(entities) && entities.length > 0) {
    return { plain: text, entities: entities.filter(isObject) };
  }
  if (parseMode === undefined || parseMode === null || parseMode === "") {
    return { plain: text, entities: autoEntities(text) };
  }
  const mode = String(parseMode);
  let parsed: { plain: string; entities: Json[] };
  try {
    switch (mode.toLowerCase()) {
      case "html":
        parsed = parseHtml(text);
        break;
      case "markdownv2":
        parsed = parseMarkdownV2(text);
        break;
      case "markdown":
        parsed = parseMarkdown(text);
        break;
      default:
        throw new ApiError(400, "Bad Request: unsupported parse_mode");
    }
  } catch (e) {
    if (e instanceof ParseError) {
      throw new ApiError(400, `Bad Request: can't parse entities: ${e.message}`);
    }
    throw e;
  }
  // Found entities are merged in where they do not overlap parsed ones (tdlib's merge_entities).
  const merged = [...parsed.entities];
  for (const e of autoEntities(parsed.plain)) {
    if (!parsed.entities.some((p) => overlaps(p, e.offset as number, e.length as number))) {
      merged.push(e);
    }
  }
  return { plain: parsed.plain, entities: sortEntities(merged), parseMode: mode };
}

class ParseError extends Error {}

function sortEntities(e: Json[]): Json[] {
  return e.sort((a, b) =>
    (a.offset as number) - (b.offset as number) || (b.length as number) - (a.length as number)
  );
}

const encoder = new TextEncoder();
function byteOffset(s: string, i: number): number {
  return encoder.encode(s.slice(0, i)).length;
}

/** tdlib's LinkManager::get_checked_link, simplified: "" when the link is dropped. */
function checkedLink(url: string): string {
  const u = url.trim();
  if (u === "") return "";
  if (!/^[a-z][a-z0-9+.-]*:/i.test(u)) {
    try {
      return new URL(`http://${u}`).href;
    } catch {
      return "";
    }
  }
  if (/^(tg|ton):/i.test(u)) return u;
  if (!/^https?:/i.test(u)) return "";
  try {
    return new URL(u).href;
  } catch {
    return "";
  }
}

function linkEntity(offset: number, length: number, url: string): Json | undefined {
  const user = /^tg:\/\/user\?id=(\d+)$/i.exec(url.trim());
  if (user) {
    return {
      type: "text_mention",
      offset,
      length,
      user: { id: Number(user[1]), is_bot: false, first_name: "" },
    };
  }
  const checked = checkedLink(url);
  return checked ? { type: "text_link", offset, length, url: checked } : undefined;
}

/** `&lt;` `&gt;` `&amp;` `&quot;` and numeric references, `;` optional (tdlib's decode_html_entity). */
function decodeEntity(s: string, pos: number): { ch: string; end: number } | undefined {
  let end = pos + 1;
  let code = 0;
  if (s[pos + 1] === "#") {
    end++;
    if (s[pos + 2] === "x") {
      end++;
      while (end < s.length && /[0-9a-fA-F]/.test(s[end]!)) {
        code = code * 16 + parseInt(s[end++]!, 16);
      }
    } else {
      while (end < s.length && /[0-9]/.test(s[end]!)) code = code * 10 + Number(s[end++]);
    }
    if (code === 0 || code >= 0x10ffff || end - pos >= 10) return undefined;
  } else {
    while (end < s.length && /[A-Za-z]/.test(s[end]!)) end++;
    const name = s.slice(pos + 1, end);
    const named: Record<string, number> = { lt: 60, gt: 62, amp: 38, quot: 34 };
    if (!(name in named)) return undefined;
    code = named[name]!;
  }
  if (s[end] === ";") end++;
  return { ch: String.fromCodePoint(code), end };
}

const HTML_TAGS = new Set([
  "a",
  "b",
  "strong",
  "i",
  "em",
  "s",
  "strike",
  "del",
  "u",
  "ins",
  "tg-spoiler",
  "tg-emoji",
  "span",
  "pre",
  "code",
  "blockquote",
]);

/** A port of tdlib's parse_html (error texts included). */
function parseHtml(s: string): { plain: string; entities: Json[] } {
  const isSpace = (c: string | undefined) =>
    c === " " || c === "\t" || c === "\r" || c === "\n" || c === "\v";
  const fail = (msg: string): never => {
    throw new ParseError(msg);
  };
  let out = "";
  const entities: Json[] = [];
  const stack: { tag: string; arg: string; offset: number; expandable: boolean }[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === "&") {
      const d = decodeEntity(s, i);
      if (d) {
        out += d.ch;
        i = d.end;
        continue;
      }
    }
    if (c !== "<") {
      out += c;
      i++;
      continue;
    }
    const begin = i++;
    const at = () => byteOffset(s, begin);
    if (s[i] !== "/") {
      while (i < s.length && !isSpace(s[i]) && s[i] !== ">") i++;
      if (i >= s.length) fail(`Unclosed start tag at byte offset ${at()}`);
      const tag = s.slice(begin + 1, i).toLowerCase();
      if (!HTML_TAGS.has(tag)) fail(`Unsupported start tag "${tag}" at byte offset ${at()}`);
      let arg = "";
      let expandable = false;
      while (s[i] !== ">") {
        while (i < s.length && isSpace(s[i])) i++;
        if (s[i] === ">") break;
        const nameBegin = i;
        while (i < s.length && !isSpace(s[i]) && s[i] !== "=" && s[i] !== ">") i++;
        const name = s.slice(nameBegin, i);
        if (name === "") fail(`Empty attribute name in the tag "${tag}" at byte offset ${at()}`);
        while (i < s.length && isSpace(s[i])) i++;
        if (tag === "blockquote" && name.toLowerCase() === "expandable" && s[i] !== "=") {
          expandable = true;
          if (i >= s.length) fail(`Unclosed start tag at byte offset ${at()}`);
          continue;
        }
        if (s[i] !== "=") {
          fail(
            `Expected equal sign in declaration of an attribute of the tag "${tag}" at byte offset ${at()}`,
          );
        }
        i++;
        while (i < s.length && isSpace(s[i])) i++;
        if (i >= s.length) fail(`Unclosed start tag "${tag}" at byte offset ${at()}`);
        let value = "";
        if (s[i] !== "'" && s[i] !== '"') {
          const tokenBegin = i;
          while (i < s.length && /[A-Za-z0-9.-]/.test(s[i]!)) i++;
          value = s.slice(tokenBegin, i).toLowerCase();
          if (i < s.length && !isSpace(s[i]) && s[i] !== ">") {
            fail(`Unexpected end of name token at byte offset ${byteOffset(s, tokenBegin)}`);
          }
        } else {
          const quote = s[i++];
          while (i < s.length && s[i] !== quote) {
            if (s[i] === "&") {
              const d = decodeEntity(s, i);
              if (d) {
                value += d.ch;
                i = d.end;
                continue;
              }
            }
            value += s[i++];
          }
          if (s[i] === quote) i++;
        }
        if (i >= s.length) fail(`Unclosed start tag at byte offset ${at()}`);
        if (tag === "a" && name === "href") arg = value;
        else if (tag === "code" && name === "class" && value.startsWith("language-")) {
          arg = value.slice(9);
        } else if (tag === "span" && name === "class" && value.startsWith("tg-")) {
          arg = value.slice(3);
        } else if (tag === "tg-emoji" && name === "emoji-id") arg = value;
      }
      i++;
      if (tag === "span" && arg !== "spoiler") {
        fail(`Tag "span" must have class "tg-spoiler" at byte offset ${at()}`);
      }
      stack.push({ tag, arg, offset: out.length, expandable });
    } else {
      if (stack.length === 0) fail(`Unexpected end tag at byte offset ${at()}`);
      while (i < s.length && !isSpace(s[i]) && s[i] !== ">") i++;
      const endTag = s.slice(begin + 2, i).toLowerCase();
      while (i < s.length && isSpace(s[i])) i++;
      if (s[i] !== ">") fail(`Unclosed end tag at byte offset ${at()}`);
      i++;
      const top = stack[stack.length - 1]!;
      if (endTag !== "" && endTag !== top.tag) {
        fail(
          `Unmatched end tag at byte offset ${at()}, expected "</${top.tag}>", found "</${endTag}>"`,
        );
      }
      const offset = top.offset;
      const length = out.length - offset;
      if (length > 0) {
        const last = entities[entities.length - 1];
        const sameRange = last !== undefined && last.offset === offset && last.length === length;
        switch (top.tag) {
          case "i":
          case "em":
            entities.push({ type: "italic", offset, length });
            break;
          case "b":
          case "strong":
            entities.push({ type: "bold", offset, length });
            break;
          case "s":
          case "strike":
          case "del":
            entities.push({ type: "strikethrough", offset, length });
            break;
          case "u":
          case "ins":
            entities.push({ type: "underline", offset, length });
            break;
          case "tg-spoiler":
          case "span":
            entities.push({ type: "spoiler", offset, length });
            break;
          case "tg-emoji":
            if (!/^\d+$/.test(top.arg) || /^0+$/.test(top.arg)) {
              fail("Invalid custom emoji identifier specified");
            }
            entities.push({ type: "custom_emoji", offset, length, custom_emoji_id: top.arg });
            break;
          case "a": {
            const e = linkEntity(offset, length, top.arg || out.slice(offset));
            if (e) entities.push(e);
            break;
          }
          case "pre":
            if (sameRange && last.type === "code" && last._language) {
              last.type = "pre";
              last.language = last._language;
            } else entities.push({ type: "pre", offset, length });
            break;
          case "code":
            if (sameRange && last.type === "pre" && top.arg !== "") last.language = top.arg;
            else entities.push({ type: "code", offset, length, _language: top.arg });
            break;
          case "blockquote":
            entities.push({
              type: top.expandable ? "expandable_blockquote" : "blockquote",
              offset,
              length,
            });
            break;
        }
      }
      stack.pop();
    }
  }
  if (stack.length > 0) {
    fail(`Can't find end tag corresponding to start tag ${stack[stack.length - 1]!.tag}`);
  }
  for (const e of entities) delete e._language;
  return { plain: out, entities: sortEntities(entities) };
}

const MDV2_NAMES: Record<string, string> = {
  bold: "Bold",
  italic: "Italic",
  underline: "Underline",
  strikethrough: "Strikethrough",
  spoiler: "Spoiler",
  code: "Code",
  pre: "Pre",
  text_link: "TextUrl",
  custom_emoji: "CustomEmoji",
  blockquote: "BlockQuote",
};

/** A port of tdlib's parse_markdown_v2 (error texts included). */
function parseMarkdownV2(s: string): { plain: string; entities: Json[] } {
  const fail = (msg: string): never => {
    throw new ParseError(msg);
  };
  const reservedError = (c: string) =>
    fail(`Character '${c}' is reserved and must be escaped with the preceding '\\'`);
  const printable = (c: string | undefined) =>
    c !== undefined && c.charCodeAt(0) > 0 && c.charCodeAt(0) <= 126;
  const isSpace = (c: string | undefined) =>
    c === undefined || c === " " || c === "\t" || c === "\r" || c === "\n" || c === "\v";
  let out = "";
  const entities: Json[] = [];
  const stack: { type: string; arg: string; offset: number; byte: number; begin: number }[] = [];
  let haveQuote = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "\\" && printable(s[i + 1])) {
      i++;
      out += s[i];
      continue;
    }
    const top = stack[stack.length - 1];
    const reserved = top && (top.type === "code" || top.type === "pre")
      ? "`"
      : "_*[]()~`>#+-=|{}.!\n";
    if (!reserved.includes(c)) {
      out += c;
      continue;
    }
    let isEnd = false;
    if (top) {
      if (haveQuote && c === "\n" && (i + 1 === s.length || s[i + 1] !== ">")) isEnd = true;
      else {
        switch (top.type) {
          case "bold":
            isEnd = c === "*";
            break;
          case "italic":
            isEnd = c === "_" && s[i + 1] !== "_";
            break;
          case "code":
            isEnd = c === "`";
            break;
          case "pre":
            isEnd = c === "`" && s[i + 1] === "`" && s[i + 2] === "`";
            break;
          case "text_link":
          case "custom_emoji":
            isEnd = c === "]";
            break;
          case "underline":
            isEnd = c === "_" && s[i + 1] === "_";
            break;
          case "strikethrough":
            isEnd = c === "~";
            break;
          case "spoiler":
            isEnd = c === "|" && s[i + 1] === "|";
            break;
        }
      }
    }
    if (!isEnd) {
      let type = "";
      let arg = "";
      const byte = byteOffset(s, i);
      switch (c) {
        case "_":
          if (s[i + 1] === "_") {
            type = "underline";
            i++;
          } else type = "italic";
          break;
        case "*":
          type = "bold";
          break;
        case "~":
          type = "strikethrough";
          break;
        case "|":
          if (s[i + 1] === "|") {
            i++;
            type = "spoiler";
          } else reservedError(c);
          break;
        case "[":
          type = "text_link";
          break;
        case "`":
          if (s[i + 1] === "`" && s[i + 2] === "`") {
            i += 3;
            type = "pre";
            let langEnd = i;
            while (!isSpace(s[langEnd]) && s[langEnd] !== "`") langEnd++;
            if (i !== langEnd && langEnd < s.length && s[langEnd] !== "`") {
              arg = s.slice(i, langEnd);
              i = langEnd;
            }
            if (s[i] === "\n" || s[i] === "\r") {
              if ((s[i + 1] === "\n" || s[i + 1] === "\r") && s[i] !== s[i + 1]) i += 2;
              else i++;
            }
            i--;
          } else type = "code";
          break;
        case "!":
          if (s[i + 1] === "[") {
            i++;
            type = "custom_emoji";
          } else reservedError(c);
          break;
        case "\n":
          out += "\n";
          if (s[i + 1] === ">") {
            i++;
            if (!haveQuote) {
              type = "blockquote";
              haveQuote = true;
            }
          }
          break;
        case ">":
          if (i === 0) {
            type = "blockquote";
            haveQuote = true;
          } else reservedError(c);
          break;
        default:
          reservedError(c);
      }
      if (type === "") continue;
      stack.push({ type, arg, offset: out.length, byte, begin: out.length });
    } else {
      const t = top!;
      if (c === "\n" && t.type !== "blockquote") {
        fail(`Can't find end of ${entityName(t)} entity at byte offset ${t.byte}`);
      }
      let skip = out.length === t.offset;
      let entity: Json | undefined;
      switch (t.type) {
        case "underline":
        case "spoiler":
          i++;
          break;
        case "pre":
          i += 2;
          break;
        case "text_link": {
          let url = "";
          if (s[i + 1] !== "(") url = out.slice(t.begin);
          else {
            i += 2;
            const urlBegin = i;
            while (i < s.length && s[i] !== ")") {
              if (s[i] === "\\" && printable(s[i + 1])) {
                url += s[i + 1];
                i += 2;
                continue;
              }
              url += s[i++];
            }
            if (s[i] !== ")") {
              fail(`Can't find end of a URL at byte offset ${byteOffset(s, urlBegin)}`);
            }
          }
          entity = linkEntity(t.offset, out.length - t.offset, url);
          if (!entity) skip = true;
          break;
        }
        case "custom_emoji": {
          if (s[i + 1] !== "(") fail("Custom emoji entity must contain a tg://emoji URL");
          i += 2;
          const urlBegin = i;
          let url = "";
          while (i < s.length && s[i] !== ")") {
            if (s[i] === "\\" && printable(s[i + 1])) {
              url += s[i + 1];
              i += 2;
              continue;
            }
            url += s[i++];
          }
          if (s[i] !== ")") {
            fail(`Can't find end of a custom emoji URL at byte offset ${byteOffset(s, urlBegin)}`);
          }
          const id = /^tg:\/\/emoji\?id=(\d+)$/i.exec(url)?.[1];
          if (!id) fail("Invalid custom emoji URL specified");
          entity = {
            type: "custom_emoji",
            offset: t.offset,
            length: out.length - t.offset,
            custom_emoji_id: id,
          };
          break;
        }
        case "blockquote":
          haveQuote = false;
          out += c;
          break;
      }
      if (!skip) {
        const length = out.length - t.offset;
        if (entity) entities.push({ ...entity, length: entity.length ?? length });
        else if (t.type === "pre" && t.arg !== "") {
          entities.push({ type: "pre", offset: t.offset, length, language: t.arg });
        } else entities.push({ type: t.type, offset: t.offset, length });
      }
      stack.pop();
    }
  }
  const last = stack[stack.length - 1];
  if (haveQuote && last?.type === "blockquote") {
    const length = out.length - last.offset;
    if (length !== 0) entities.push({ type: "blockquote", offset: last.offset, length });
    stack.pop();
  }
  if (stack.length > 0) {
    const t = stack[stack.length - 1]!;
    fail(`Can't find end of ${entityName(t)} entity at byte offset ${t.byte}`);
  }
  return { plain: out, entities: sortEntities(entities) };
}

function entityName(t: { type: string; arg: string }): string {
  return t.type === "pre" && t.arg !== "" ? "PreCode" : MDV2_NAMES[t.type] ?? t.type;
}

/** A port of tdlib's parse_markdown (the legacy `Markdown` mode). */
function parseMarkdown(s: string): { plain: string; entities: Json[] } {
  let out = "";
  const entities: Json[] = [];
  const isSpace = (c: string | undefined) =>
    c === undefined || c === " " || c === "\t" || c === "\r" || c === "\n" || c === "\v";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "\\" && "_*`[".includes(s[i + 1] ?? "x")) {
      i++;
      out += s[i];
      continue;
    }
    if (!"_*`[".includes(c)) {
      out += c;
      continue;
    }
    const begin = i;
    const endChar = c === "[" ? "]" : c;
    let isPre = false;
    i++;
    let language = "";
    if (c === "`" && s[i] === "`" && s[i + 1] === "`") {
      i += 2;
      isPre = true;
      let langEnd = i;
      while (!isSpace(s[langEnd]) && s[langEnd] !== "`") langEnd++;
      if (i !== langEnd && langEnd < s.length && s[langEnd] !== "`") {
        language = s.slice(i, langEnd);
        i = langEnd;
      }
      if (s[i] === "\n" || s[i] === "\r") {
        if ((s[i + 1] === "\n" || s[i + 1] === "\r") && s[i] !== s[i + 1]) i += 2;
        else i++;
      }
    }
    const offset = out.length;
    while (
      i < s.length && (s[i] !== endChar || (isPre && !(s[i + 1] === "`" && s[i + 2] === "`")))
    ) {
      out += s[i++];
    }
    if (i >= s.length) {
      throw new ParseError(
        `Can't find end of the entity starting at byte offset ${byteOffset(s, begin)}`,
      );
    }
    const length = out.length - offset;
    if (length > 0) {
      if (c === "_") entities.push({ type: "italic", offset, length });
      else if (c === "*") entities.push({ type: "bold", offset, length });
      else if (c === "[") {
        let url = "";
        if (s[i + 1] !== "(") url = s.slice(begin + 1, i);
        else {
          i += 2;
          while (i < s.length && s[i] !== ")") url += s[i++];
        }
        const e = linkEntity(offset, length, url);
        if (e) entities.push(e);
      } else if (isPre) {
        entities.push(
          language ? { type: "pre", offset, length, language } : { type: "pre", offset, length },
        );
      } else entities.push({ type: "code", offset, length });
    }
    if (isPre) i += 2;
  }
  return { plain: out, entities: sortEntities(entities) };
}
