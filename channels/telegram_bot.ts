/**
 * The Telegram channel: grammY's `Api` over the Bot API (long polling by
 * default, a webhook on gw's own port when `webhookUrl` is set), messages in
 * through {@link InboundRouter}, replies streamed by editing one message and
 * split at 4,096 characters, Markdown turned into Telegram's HTML.
 *
 * grammY loads on the first start: a gateway without Telegram never imports it.
 * Its errors never carry the token (`sensitiveLogs` stays off), and neither
 * do ours: the file URL that holds it is never logged.
 *
 * @module
 */
import type { Api } from "grammy";
import type {
  ChannelAccountStatus,
  ChannelHost,
  ChannelIssue,
  PollInput,
  PollResult,
  SendOptions,
  SendResult,
} from "./registry.ts";
import type { Channel } from "./registry.ts";
import type { TelegramConfig } from "./config.ts";
import {
  type AccessPolicy,
  CHAT_COMMANDS,
  type InboundMessage,
  InboundRouter,
  type ReplyStream,
  type ReplyTarget,
} from "./inbound.ts";
import {
  markdownToTelegramHtml,
  splitMarkdown,
  splitPlain,
  TELEGRAM_TEXT_LIMIT,
} from "./telegram_format.ts";
import { type Attachment, sniffImageType } from "../lib/agent/media.ts";
import { constantTimeEqual } from "../lib/server/auth.ts";
import { GatewayError, invalidRequest } from "../lib/protocol/errors.ts";
import { ErrorCode } from "../lib/protocol/types.ts";

type Grammy = typeof import("grammy");
/** grammY's types name the abort-controller package's AbortSignal; the runtime takes the standard one. */
type GSignal = Parameters<Api["getMe"]>[0];
const sig = (s: AbortSignal): GSignal => s as unknown as GSignal;
let grammy: Promise<Grammy> | undefined;
function loadGrammy(): Promise<Grammy> {
  grammy ??= import("grammy");
  return grammy;
}

const ACCOUNT = "default";
const DEFAULT_API_ROOT = "https://api.telegram.org";
/** Long-poll timeout (s): Telegram holds getUpdates this long when idle. */
const POLL_TIMEOUT_S = 30;
/** Preview edits at most this often (Telegram allows about one message a second per chat). */
const EDIT_INTERVAL_DM_MS = 1_000;
const EDIT_INTERVAL_GROUP_MS = 3_000;
/** Retry backoff after a failure: doubling from 1 s to 60 s (5 min when the token is rejected). */
const BACKOFF_MAX_MS = 60_000;
const BACKOFF_AUTH_MS = 300_000;
/** A caption holds at most this much text. */
const CAPTION_LIMIT = 1024;
const IMAGE_EXT = /\.(jpe?g|png|gif|webp)(\?|#|$)/i;

/** The parts of a Telegram message gw reads. */
interface TgUser {
  id: number;
  is_bot?: boolean;
  first_name?: string;
  last_name?: string;
  username?: string;
}
interface TgEntity {
  type: string;
  offset: number;
  length: number;
  user?: TgUser;
}
interface TgMessage {
  message_id: number;
  from?: TgUser;
  chat: { id: number; type: string; title?: string; username?: string };
  text?: string;
  caption?: string;
  entities?: TgEntity[];
  caption_entities?: TgEntity[];
  reply_to_message?: TgMessage;
  message_thread_id?: number;
  is_topic_message?: boolean;
  photo?: { file_id: string; file_size?: number; width: number; height: number }[];
  document?: { file_id: string; file_name?: string; mime_type?: string; file_size?: number };
}
interface TgUpdate {
  update_id: number;
  message?: TgMessage;
}

/** The Telegram channel. */
export class TelegramChannel implements Channel {
  readonly id = "telegram";
  readonly label = "Telegram";
  readonly detailLabel = "Telegram Bot";
  readonly #host: ChannelHost;
  readonly #router: InboundRouter;
  #run: { ac: AbortController; done: Promise<void>; signature: string } | undefined;
  #api: { key: string; api: Api } | undefined;
  #bot: { id: number; username: string } | undefined;
  #pathToken: string | undefined;
  #chats = new Map<string, Promise<void>>();
  #replies = new Set<Promise<void>>();
  #state = {
    running: false,
    connected: false,
    mode: "polling" as "polling" | "webhook",
    reconnectAttempts: 0,
    lastConnectedAt: null as number | null,
    lastError: null as string | null,
    lastErrorKind: null as ChannelIssue["kind"] | null,
    lastStartAt: null as number | null,
    lastStopAt: null as number | null,
    lastInboundAt: null as number | null,
    lastOutboundAt: null as number | null,
    lastProbeAt: null as number | null,
  };

  /** Made by the catalog; nothing runs until {@link start}. */
  constructor(host: ChannelHost) {
    this.#host = host;
    this.#router = new InboundRouter(host, this.id, () => this.#policy());
  }

  // ------------------------------------------------------------ config

  #cfg(): TelegramConfig | undefined {
    return this.#host.config().channels.telegram;
  }

  #token(): { token: string; source: "config" | "env" } | undefined {
    const c = this.#cfg();
    if (c?.botToken) return { token: c.botToken, source: "config" };
    const env = this.#host.env("TELEGRAM_BOT_TOKEN")?.trim();
    return env ? { token: env, source: "env" } : undefined;
  }

  #apiRoot(): string {
    const root = this.#cfg()?.apiRoot ?? this.#host.env("TELEGRAM_API_ROOT") ?? DEFAULT_API_ROOT;
    return root.replace(/\/+$/, "");
  }

  #policy(): AccessPolicy {
    const c = this.#cfg();
    return {
      dmPolicy: c?.dmPolicy ?? "pairing",
      allowFrom: c?.allowFrom ?? [],
      groupPolicy: c?.groupPolicy ?? "allowlist",
      groupAllowFrom: c?.groupAllowFrom,
      requireMention: c?.requireMention ?? true,
      agentId: c?.agentId,
    };
  }

  configured(): boolean {
    return this.#cfg()?.enabled !== false && this.#token() !== undefined;
  }

  /** What a restart depends on. */
  #signature(): string {
    const c = this.#cfg();
    return JSON.stringify([this.#token()?.token, this.#apiRoot(), c?.webhookUrl, c?.webhookSecret]);
  }

  async #apiNow(): Promise<Api> {
    const t = this.#token();
    if (!t) {
      throw new Error("no Telegram bot token (channels.telegram.botToken or TELEGRAM_BOT_TOKEN)");
    }
    const key = `${t.token}\n${this.#apiRoot()}`;
    if (this.#api?.key === key) return this.#api.api;
    const { Api } = await loadGrammy();
    const api = new Api(t.token, { apiRoot: this.#apiRoot(), fetch: globalThis.fetch });
    this.#api = { key, api };
    return api;
  }

  // ------------------------------------------------------------ lifecycle

  start(): Promise<void> {
    if (this.#run || !this.configured()) return Promise.resolve();
    const ac = new AbortController();
    const signature = this.#signature();
    const webhook = this.#cfg()?.webhookUrl !== undefined;
    this.#state.mode = webhook ? "webhook" : "polling";
    this.#state.running = true;
    this.#state.lastStartAt = Date.now();
    const done = this.#main(ac.signal, webhook).catch((e) => {
      this.#host.log.error("telegram: stopped on an unexpected error", { error: e });
    }).finally(() => {
      this.#state.running = false;
      this.#state.connected = false;
      this.#state.lastStopAt = Date.now();
    });
    this.#run = { ac, done, signature };
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    const run = this.#run;
    this.#run = undefined;
    if (run) {
      run.ac.abort();
      await run.done;
    }
    // Replies in flight end with their runs; wait a little for their last edit.
    const pending = [...this.#replies];
    if (pending.length) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled(pending),
        new Promise((r) => timer = setTimeout(r, 3_000)),
      ]);
      clearTimeout(timer);
    }
  }

  async reconfigure(): Promise<void> {
    if (!this.configured()) {
      if (this.#run) {
        this.#host.log.info("telegram: no longer configured; stopping");
        await this.stop();
      }
      return;
    }
    if (this.#run && this.#run.signature === this.#signature()) return;
    if (this.#run) {
      this.#host.log.info("telegram: settings changed; restarting");
      await this.stop();
    }
    await this.start();
  }

  async #main(signal: AbortSignal, webhook: boolean): Promise<void> {
    let attempt = 0;
    while (!signal.aborted) {
      try {
        const api = await this.#apiNow();
        const me = await api.getMe(sig(signal));
        this.#bot = { id: me.id, username: me.username };
        await api.setMyCommands(CHAT_COMMANDS.map((c) => ({ ...c })), {}, sig(signal)).catch(
          () => {},
        );
        if (webhook) {
          await this.#setWebhook(api, signal);
          this.#connected();
          attempt = 0;
          this.#host.log.info("telegram: webhook set", { bot: me.username });
          await untilAborted(signal);
          return;
        }
        // A webhook left from an earlier run would make getUpdates fail (409).
        await api.deleteWebhook({ drop_pending_updates: false }, sig(signal));
        // The API answered with this token: connected (the first long poll may take 30 s).
        this.#connected();
        this.#host.log.info("telegram: polling", { bot: me.username });
        await this.#poll(api, signal, () => {
          if (attempt) this.#host.log.info("telegram: reconnected", { after: attempt });
          attempt = 0;
        });
      } catch (e) {
        if (signal.aborted) return;
        attempt++;
        const f = describeFailure(e);
        this.#state.connected = false;
        this.#state.lastError = f.message;
        this.#state.lastErrorKind = f.kind;
        this.#state.reconnectAttempts = attempt;
        const wait = Math.min(
          f.kind === "auth" ? BACKOFF_AUTH_MS : BACKOFF_MAX_MS,
          1000 * 2 ** (attempt - 1),
        ) *
          (0.8 + Math.random() * 0.4);
        this.#host.log.warn("telegram: failed; retrying", {
          error: f.message,
          attempt,
          retryInMs: Math.round(wait),
        });
        await sleep(Math.max(f.retryAfterMs ?? 0, wait), signal);
      }
    }
  }

  #connected(): void {
    this.#state.connected = true;
    this.#state.lastConnectedAt = Date.now();
    this.#state.lastError = null;
    this.#state.lastErrorKind = null;
    this.#state.reconnectAttempts = 0;
  }

  async #poll(api: Api, signal: AbortSignal, onOk: () => void): Promise<void> {
    const store = this.#host.store.channels;
    let offset = (await store.getState<number>(this.id, ACCOUNT, "offset")) ?? undefined;
    for (;;) {
      const updates = await api.getUpdates({
        ...(offset !== undefined ? { offset } : {}),
        timeout: POLL_TIMEOUT_S,
        allowed_updates: ["message"],
      }, sig(signal)) as unknown as TgUpdate[];
      if (!this.#state.connected) this.#connected();
      onOk();
      if (!updates.length) continue;
      for (const u of updates) {
        await this.#take(u);
        offset = u.update_id + 1;
      }
      // The next getUpdates confirms these to Telegram; KV remembers across restarts.
      await store.setState(this.id, ACCOUNT, "offset", offset);
    }
  }

  async #webhookPath(): Promise<string> {
    const secret = this.#cfg()?.webhookSecret ?? "";
    if (!this.#pathToken) {
      const d = await crypto.subtle.digest(
        "SHA-256",
        new TextEncoder().encode(`gw-telegram-webhook:${secret}`),
      );
      this.#pathToken = [...new Uint8Array(d)].slice(0, 16).map((b) =>
        b.toString(16).padStart(2, "0")
      ).join("");
    }
    return `/${this.#pathToken}`;
  }

  async #setWebhook(api: Api, signal: AbortSignal): Promise<void> {
    const c = this.#cfg()!;
    this.#pathToken = undefined;
    const url = `${c.webhookUrl!.replace(/\/+$/, "")}/telegram${await this.#webhookPath()}`;
    await api.setWebhook(url, {
      secret_token: c.webhookSecret!,
      allowed_updates: ["message"],
    }, sig(signal));
  }

  /** Webhook requests: `/telegram/<path>`, with Telegram's secret header checked. */
  http(req: Request, path: string): Promise<Response> | null {
    const c = this.#cfg();
    if (!c?.webhookUrl || !c.webhookSecret || !this.#run) return null;
    return (async () => {
      if (!constantTimeEqual(path, await this.#webhookPath())) {
        return new Response("not found", { status: 404 });
      }
      if (req.method !== "POST") {
        return new Response("Method Not Allowed", { status: 405, headers: { allow: "POST" } });
      }
      const given = req.headers.get("x-telegram-bot-api-secret-token") ?? "";
      if (!constantTimeEqual(given, c.webhookSecret!)) {
        this.#host.log.warn("telegram: webhook call with a wrong secret rejected");
        return new Response("unauthorized", { status: 401 });
      }
      const len = Number(req.headers.get("content-length") ?? "0");
      if (len > 1_000_000) return new Response("too large", { status: 413 });
      let update: TgUpdate;
      try {
        const text = await req.text();
        if (text.length > 1_000_000) return new Response("too large", { status: 413 });
        update = JSON.parse(text);
        if (typeof update?.update_id !== "number") throw new Error("no update_id");
      } catch {
        return new Response("bad update", { status: 400 });
      }
      await this.#take(update);
      return new Response("ok", { status: 200 });
    })();
  }

  // ------------------------------------------------------------ inbound

  /** Take an update once: the rest runs on the chat's own chain. */
  async #take(u: TgUpdate): Promise<void> {
    const msg = u.message;
    if (!msg?.from || msg.from.is_bot) return;
    if (msg.chat.type === "channel") return;
    if (!(await this.#host.store.channels.markSeen(this.id, ACCOUNT, String(u.update_id)))) {
      this.#host.log.debug("telegram: update already taken", { updateId: u.update_id });
      return;
    }
    this.#state.lastInboundAt = Date.now();
    const chatKey = `${msg.chat.id}:${msg.message_thread_id ?? ""}`;
    const prev = this.#chats.get(chatKey) ?? Promise.resolve();
    const next = prev.then(() => this.#accept(u.update_id, msg)).catch((e) => {
      this.#host.log.error("telegram: message failed", { chatId: msg.chat.id, error: e });
    });
    this.#chats.set(chatKey, next);
    void next.then(() => {
      if (this.#chats.get(chatKey) === next) this.#chats.delete(chatKey);
    });
  }

  async #accept(updateId: number, msg: TgMessage): Promise<void> {
    const bot = this.#bot;
    const group = msg.chat.type === "group" || msg.chat.type === "supergroup";
    const rawText = msg.text ?? msg.caption ?? "";
    const entities = msg.entities ?? msg.caption_entities ?? [];
    const addressed = !group || isAddressed(rawText, entities, msg, bot);
    const text = bot
      ? rawText.replace(new RegExp(`(^|\\s)@${escapeRegExp(bot.username)}\\b`, "gi"), "$1").trim()
      : rawText;
    const from = msg.from!;
    const name = [from.first_name, from.last_name].filter(Boolean).join(" ");
    const threadId = msg.is_topic_message && msg.message_thread_id
      ? String(msg.message_thread_id)
      : undefined;
    const m: InboundMessage = {
      channel: this.id,
      accountId: ACCOUNT,
      updateId: String(updateId),
      chatId: String(msg.chat.id),
      chatType: group ? "group" : "direct",
      senderId: String(from.id),
      messageId: String(msg.message_id),
      text,
      addressed,
      attachments: [],
      ...(msg.chat.title ? { chatTitle: msg.chat.title } : {}),
      ...(threadId ? { threadId } : {}),
      ...(name ? { senderName: name } : {}),
      ...(from.username ? { username: from.username } : {}),
    };
    const reply = this.#replyTarget(msg.chat.id, {
      threadId: msg.message_thread_id,
      replyTo: group ? msg.message_id : undefined,
      group,
    });
    // Only download what will be used: after the access check passes, in handle's turn.
    if ((msg.photo?.length || msg.document) && (!group || addressed)) {
      const { attachments, notes } = await this.#download(msg);
      m.attachments = attachments;
      if (notes.length) m.text = [m.text, ...notes].filter(Boolean).join("\n");
    }
    const r = await this.#router.handle(m, reply);
    if (r.verdict === "turn") {
      const p = r.replied.finally(() => this.#replies.delete(p));
      this.#replies.add(p);
    }
  }

  async #download(msg: TgMessage): Promise<{ attachments: Attachment[]; notes: string[] }> {
    const max = (this.#cfg()?.mediaMaxMb ?? 20) * 1024 * 1024;
    const out: Attachment[] = [];
    const notes: string[] = [];
    const want: {
      fileId: string;
      size?: number | undefined;
      name?: string;
      mime: string;
      photo?: boolean;
    }[] = [];
    if (msg.photo?.length) {
      // The largest size under the cap (Telegram lists them smallest first).
      const fits = msg.photo.filter((p) => (p.file_size ?? 0) <= max);
      const p = fits.at(-1) ?? msg.photo[0]!;
      want.push({
        fileId: p.file_id,
        size: p.file_size,
        mime: "image/jpeg",
        name: "photo.jpg",
        photo: true,
      });
    }
    if (msg.document) {
      const d = msg.document;
      want.push({
        fileId: d.file_id,
        size: d.file_size,
        mime: d.mime_type ?? "application/octet-stream",
        ...(d.file_name ? { name: d.file_name } : {}),
      });
    }
    for (const w of want) {
      const label = w.name ?? "file";
      if ((w.size ?? 0) > max) {
        notes.push(`[${label} was not taken: larger than ${Math.round(max / 1048576)} MB]`);
        continue;
      }
      try {
        const api = await this.#apiNow();
        const f = await api.getFile(w.fileId);
        if (!f.file_path) throw new Error("Telegram gave no file path");
        const t = this.#token()!;
        // The URL holds the token: never logged, never in an error message.
        const res = await fetch(`${this.#apiRoot()}/file/bot${t.token}/${f.file_path}`, {
          signal: AbortSignal.timeout(60_000),
        });
        if (!res.ok) {
          await res.body?.cancel();
          throw new Error(`download failed with HTTP ${res.status}`);
        }
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (bytes.length > max) throw new Error("larger than the cap");
        // Telegram's photos are JPEG; the bytes decide (a sticker or a sent PNG may differ).
        const mimeType = w.photo ? sniffImageType(bytes) ?? w.mime : w.mime;
        out.push(await this.#host.media.save(bytes, { mimeType, fileName: label }));
      } catch (e) {
        this.#host.log.warn("telegram: attachment not taken", {
          file: label,
          error: (e as Error).message,
        });
        notes.push(`[${label} could not be received: ${(e as Error).message}]`);
      }
    }
    return { attachments: out, notes };
  }

  // ------------------------------------------------------------ outbound

  #replyTarget(
    chatId: number | string,
    o: { threadId?: number | undefined; replyTo?: number | undefined; group: boolean },
  ): ReplyTarget {
    const extra = (first: boolean) => ({
      ...(o.threadId ? { message_thread_id: o.threadId } : {}),
      ...(first && o.replyTo
        ? { reply_parameters: { message_id: o.replyTo, allow_sending_without_reply: true } }
        : {}),
    });
    return {
      say: async (text) => {
        await this.#sendText(chatId, text, extra);
      },
      typing: async () => {
        const api = await this.#apiNow();
        await api.sendChatAction(
          chatId,
          "typing",
          o.threadId ? { message_thread_id: o.threadId } : {},
        );
      },
      stream: () =>
        new TelegramStream(this, chatId, {
          extra,
          intervalMs: o.group ? EDIT_INTERVAL_GROUP_MS : EDIT_INTERVAL_DM_MS,
          live: (this.#cfg()?.streaming ?? "partial") === "partial",
        }),
      voice: async (audio, mimeType) => {
        // Voice notes are Ogg Opus; other audio (espeak-ng's WAV, MP3) goes as an audio file.
        const { InputFile } = await loadGrammy();
        const ogg = /^audio\/(ogg|opus)\b/i.test(mimeType);
        const file = new InputFile(audio, `reply.${ogg ? "ogg" : audioExtension(mimeType)}`);
        await this._call((api): Promise<unknown> =>
          ogg
            ? api.sendVoice(chatId, file, extra(false))
            : api.sendAudio(chatId, file, extra(false))
        );
      },
    };
  }

  /** @internal Send one message, with retries on flood control. */
  async _call<T>(fn: (api: Api) => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      try {
        const r = await fn(await this.#apiNow());
        this.#state.lastOutboundAt = Date.now();
        return r;
      } catch (e) {
        const f = describeFailure(e);
        if (f.retryAfterMs !== undefined && attempt < 4 && f.retryAfterMs <= 30_000) {
          await sleep(f.retryAfterMs);
          continue;
        }
        throw e;
      }
    }
  }

  /** @internal Send Markdown as HTML chunks (plain text when Telegram refuses the HTML). */
  async _sendText(
    chatId: number | string,
    md: string,
    extra: (first: boolean) => Record<string, unknown>,
    editFirst?: number,
  ): Promise<number[]> {
    return await this.#sendText(chatId, md, extra, editFirst);
  }

  async #sendText(
    chatId: number | string,
    md: string,
    extra: (first: boolean) => Record<string, unknown>,
    editFirst?: number,
  ): Promise<number[]> {
    const chunks = splitMarkdown(md);
    if (!chunks.length) chunks.push("…");
    const ids: number[] = [];
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i]!;
      const html = markdownToTelegramHtml(chunk);
      const edit = i === 0 && editFirst !== undefined ? editFirst : undefined;
      const one = (text: string, parse: boolean) =>
        this._call((api) =>
          edit !== undefined
            ? api.editMessageText(chatId, edit, text, parse ? { parse_mode: "HTML" } : {})
              .then(() => edit)
            : api.sendMessage(chatId, text, {
              ...extra(i === 0),
              ...(parse ? { parse_mode: "HTML" } : {}),
            }).then((m) => m.message_id)
        );
      try {
        ids.push(await one(html, true));
      } catch (e) {
        const d = describeFailure(e).message;
        if (/message is not modified/i.test(d) && edit !== undefined) {
          ids.push(edit);
        } else if (/can't parse entities|unsupported start tag|can't find end/i.test(d)) {
          // Our HTML should never be refused; if it is, the words still get through.
          this.#host.log.warn("telegram: HTML refused; sending plain text", { error: d });
          for (const piece of splitPlain(chunk)) ids.push(await one(piece, false));
        } else {
          throw e;
        }
      }
    }
    return ids;
  }

  async send(to: string, text: string, opts: SendOptions): Promise<SendResult> {
    const chatId = chatIdOf(to);
    const extra = (first: boolean) => ({
      ...(opts.threadId ? { message_thread_id: Number(opts.threadId) } : {}),
      ...(opts.silent ? { disable_notification: true } : {}),
      ...(first && opts.replyTo
        ? {
          reply_parameters: {
            message_id: Number(opts.replyTo),
            allow_sending_without_reply: true,
          },
        }
        : {}),
    });
    try {
      const media: { ref: string | OutboundInput; photo: boolean }[] = [];
      for (const url of opts.mediaUrls ?? []) {
        if (!/^https?:\/\//i.test(url)) {
          throw invalidRequest(`mediaUrl must be an http(s) URL: ${url.slice(0, 100)}`);
        }
        media.push({ ref: url, photo: !opts.forceDocument && IMAGE_EXT.test(url) });
      }
      if (opts.file) {
        media.push({
          ref: { bytes: opts.file.bytes, fileName: opts.file.fileName },
          photo: !opts.forceDocument && /^image\/(jpeg|png|webp)$/.test(opts.file.mimeType),
        });
      }
      const ids: number[] = [];
      const caption = media.length === 1 && text.length <= CAPTION_LIMIT ? text : undefined;
      if (text && caption === undefined) ids.push(...await this.#sendText(chatId, text, extra));
      const { InputFile } = media.length ? await loadGrammy() : { InputFile: undefined };
      for (const [i, m] of media.entries()) {
        const file = typeof m.ref === "string"
          ? m.ref
          : new InputFile!(m.ref.bytes, m.ref.fileName);
        const o = {
          ...extra(ids.length === 0 && i === 0),
          ...(caption && i === 0
            ? { caption: markdownToTelegramHtml(caption), parse_mode: "HTML" as const }
            : {}),
        };
        const sent = await this._call((api): Promise<{ message_id: number }> =>
          m.photo ? api.sendPhoto(chatId, file, o) : api.sendDocument(chatId, file, o)
        );
        ids.push(sent.message_id);
      }
      return {
        messageId: String(ids[0]),
        channel: this.id,
        to,
        chatId: String(chatId),
        ...(ids.length > 1 ? { messageIds: ids.map(String) } : {}),
      };
    } catch (e) {
      throw deliveryError(e);
    }
  }

  async poll(to: string, p: PollInput): Promise<PollResult> {
    const chatId = chatIdOf(to);
    const warnings: string[] = [];
    let openPeriod: number | undefined;
    if (p.durationSeconds !== undefined) {
      // Telegram closes polls by itself only within 5..600 seconds.
      if (p.durationSeconds >= 5 && p.durationSeconds <= 600) openPeriod = p.durationSeconds;
      else {warnings.push(
          "Telegram closes polls automatically only after 5 to 600 seconds; this one stays open",
        );}
    }
    if (
      p.maxSelections !== undefined && p.maxSelections > 1 && p.maxSelections < p.options.length
    ) {
      warnings.push("Telegram polls allow one answer or any number; this one allows any number");
    }
    try {
      const m = await this._call((api) =>
        api.sendPoll(chatId, p.question, p.options.map((text) => ({ text })), {
          allows_multiple_answers: (p.maxSelections ?? 1) > 1,
          ...(p.isAnonymous !== undefined ? { is_anonymous: p.isAnonymous } : {}),
          ...(openPeriod !== undefined ? { open_period: openPeriod } : {}),
          ...(p.silent ? { disable_notification: true } : {}),
          ...(p.threadId ? { message_thread_id: Number(p.threadId) } : {}),
        })
      );
      return {
        messageId: String(m.message_id),
        channel: this.id,
        to,
        chatId: String(chatId),
        pollId: m.poll?.id ?? String(m.message_id),
        ...(warnings.length ? { warnings } : {}),
      };
    } catch (e) {
      throw deliveryError(e);
    }
  }

  async logout(): Promise<Record<string, unknown>> {
    await this.stop();
    const cfg = this.#cfg();
    let cleared = false;
    if (cfg?.botToken) {
      const file = this.#host.configFile;
      await file.write((cur) => {
        const next = structuredClone(cur) as { channels?: { telegram?: Record<string, unknown> } };
        delete next.channels?.telegram?.botToken;
        return next;
      }, file.state.hash);
      cleared = true;
    }
    await this.#host.store.channels.deleteState(this.id, ACCOUNT, "offset");
    this.#api = undefined;
    this.#bot = undefined;
    const envToken = this.#host.env("TELEGRAM_BOT_TOKEN") !== undefined;
    this.#host.log.info("telegram: logged out", { cleared, envToken });
    if (envToken) await this.reconfigure();
    return { channel: this.id, accountId: ACCOUNT, cleared, loggedOut: true, envToken };
  }

  // ------------------------------------------------------------ status

  async status(opts: { probe: boolean; timeoutMs: number }): Promise<ChannelAccountStatus[]> {
    const c = this.#cfg();
    const t = this.#token();
    const s = this.#state;
    const out: ChannelAccountStatus = {
      accountId: ACCOUNT,
      enabled: c?.enabled !== false,
      configured: this.configured(),
      running: s.running,
      connected: s.connected,
      mode: s.running ? s.mode : c?.webhookUrl ? "webhook" : "polling",
      reconnectAttempts: s.reconnectAttempts,
      lastConnectedAt: s.lastConnectedAt,
      lastError: s.lastError,
      lastStartAt: s.lastStartAt,
      lastStopAt: s.lastStopAt,
      lastInboundAt: s.lastInboundAt,
      lastOutboundAt: s.lastOutboundAt,
      lastProbeAt: s.lastProbeAt,
      dmPolicy: c?.dmPolicy ?? "pairing",
      allowFrom: [...(c?.allowFrom ?? [])],
      tokenSource: t?.source ?? "none",
      botTokenSource: t?.source ?? "none",
      webhookUrl: c?.webhookUrl ?? null,
      busy: this.#replies.size > 0,
      activeRuns: this.#replies.size,
      ...(this.#bot ? { name: `@${this.#bot.username}`, bot: { ...this.#bot } } : {}),
    };
    if (opts.probe && t) out.probe = await this.#probe(opts.timeoutMs);
    return [out];
  }

  async #probe(timeoutMs: number): Promise<Record<string, unknown>> {
    const started = performance.now();
    this.#state.lastProbeAt = Date.now();
    try {
      const api = await this.#apiNow();
      const me = await api.getMe(sig(AbortSignal.timeout(Math.max(100, timeoutMs))));
      this.#bot = { id: me.id, username: me.username };
      return {
        ok: true,
        elapsedMs: Math.round(performance.now() - started),
        bot: { id: me.id, username: me.username },
      };
    } catch (e) {
      const f = describeFailure(e);
      return {
        ok: false,
        elapsedMs: Math.round(performance.now() - started),
        error: f.message,
        ...(f.status ? { status: f.status } : {}),
      };
    }
  }

  issues(): ChannelIssue[] {
    const s = this.#state;
    const out: ChannelIssue[] = [];
    if (s.lastError && s.lastErrorKind) {
      out.push({
        channel: this.id,
        accountId: ACCOUNT,
        kind: s.lastErrorKind,
        message: s.lastError,
        ...(s.lastErrorKind === "auth"
          ? { fix: "Check the bot token: gw channels add telegram --token <token from @BotFather>" }
          : {}),
      });
    }
    const c = this.#cfg();
    if (c?.webhookUrl?.startsWith("http://")) {
      out.push({
        channel: this.id,
        accountId: ACCOUNT,
        kind: "config",
        message: "Telegram sends webhooks only to https URLs",
        fix: "Set channels.telegram.webhookUrl to an https URL, or remove it to use long polling",
      });
    }
    return out;
  }
}

type OutboundInput = { bytes: Uint8Array; fileName: string };

/** A reply that grows in one message as it streams, then becomes the final HTML. */
class TelegramStream implements ReplyStream {
  readonly #ch: TelegramChannel;
  readonly #chatId: number | string;
  readonly #o: {
    extra: (first: boolean) => Record<string, unknown>;
    intervalMs: number;
    live: boolean;
  };
  #messageId: number | undefined;
  #shown = "";
  #latest = "";
  #timer: ReturnType<typeof setTimeout> | undefined;
  #busy: Promise<void> | undefined;
  #lastAt = 0;
  #pausedUntil = 0;
  #closed = false;

  constructor(
    ch: TelegramChannel,
    chatId: number | string,
    o: { extra: (first: boolean) => Record<string, unknown>; intervalMs: number; live: boolean },
  ) {
    this.#ch = ch;
    this.#chatId = chatId;
    this.#o = o;
  }

  update(text: string): void {
    if (!this.#o.live || this.#closed) return;
    this.#latest = text;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#busy || this.#closed) return;
    const now = Date.now();
    const wait = Math.max(0, this.#lastAt + this.#o.intervalMs - now, this.#pausedUntil - now);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, wait);
  }

  #flush(): void {
    if (this.#closed) return;
    // A preview is plain text; past one message it stops growing (the final splits).
    const text = this.#latest.length > TELEGRAM_TEXT_LIMIT
      ? `${splitPlain(this.#latest, TELEGRAM_TEXT_LIMIT - 2)[0] ?? ""} …`
      : this.#latest;
    if (!text.trim() || text === this.#shown) return;
    const id = this.#messageId;
    this.#busy = (async () => {
      try {
        await this.#ch._call(async (api) => {
          if (id === undefined) {
            const m = await api.sendMessage(this.#chatId, text, this.#o.extra(true));
            this.#messageId = m.message_id;
          } else {
            await api.editMessageText(this.#chatId, id, text);
          }
        });
        this.#shown = text;
      } catch (e) {
        const f = describeFailure(e);
        if (f.retryAfterMs !== undefined) this.#pausedUntil = Date.now() + f.retryAfterMs;
      } finally {
        this.#lastAt = Date.now();
        this.#busy = undefined;
        if (!this.#closed && this.#latest !== this.#shown) this.#schedule();
      }
    })();
  }

  async #close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#busy;
  }

  async finish(text: string): Promise<void> {
    await this.#close();
    await this.#ch._sendText(this.#chatId, text, this.#o.extra, this.#messageId);
  }

  async fail(text: string): Promise<void> {
    await this.finish(text);
  }
}

// ------------------------------------------------------------ helpers

/** Whether a group message speaks to the bot: a mention, a reply to it, or `/cmd@bot`. */
function isAddressed(
  text: string,
  entities: TgEntity[],
  msg: TgMessage,
  bot: { id: number; username: string } | undefined,
): boolean {
  if (!bot) return false;
  if (msg.reply_to_message?.from?.id === bot.id) return true;
  const name = `@${bot.username}`.toLowerCase();
  for (const e of entities) {
    const s = text.slice(e.offset, e.offset + e.length).toLowerCase();
    if (e.type === "mention" && s === name) return true;
    if (e.type === "text_mention" && e.user?.id === bot.id) return true;
    if (e.type === "bot_command" && s.endsWith(name)) return true;
  }
  // Entities can be missing (forwarded text); a plain "@bot" word still counts.
  return new RegExp(`(^|\\s)${escapeRegExp(name)}\\b`, "i").test(text);
}

/** A file extension for audio of `mimeType` (Telegram names the file after it). */
function audioExtension(mimeType: string): string {
  const m = /^audio\/(?:x-)?([a-z0-9.+-]+)/i.exec(mimeType)?.[1]?.toLowerCase() ?? "";
  return ({
    mpeg: "mp3",
    mp3: "mp3",
    wav: "wav",
    wave: "wav",
    aac: "aac",
    flac: "flac",
    mp4: "m4a",
  } as Record<string, string>)[m] ?? "bin";
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A chat id from `to`: a number, `@channelname`, or either after `telegram:`. */
function chatIdOf(to: string): number | string {
  const t = to.trim().replace(/^telegram:/i, "");
  if (/^-?\d{1,20}$/.test(t)) return Number(t);
  if (/^@[A-Za-z0-9_]{4,64}$/.test(t)) return t;
  throw invalidRequest(
    `to: expected a Telegram chat id or @channel, got ${JSON.stringify(to.slice(0, 64))}`,
  );
}

/** What went wrong, in words, without the token. */
function describeFailure(e: unknown): {
  message: string;
  kind: ChannelIssue["kind"];
  status?: number;
  retryAfterMs?: number;
} {
  const err = e as {
    name?: string;
    error_code?: number;
    description?: string;
    parameters?: { retry_after?: number };
    message?: string;
  };
  // grammY's GrammyError (the Bot API answered ok:false) carries error_code and description.
  if (typeof err?.error_code === "number") {
    const code = err.error_code;
    const out: ReturnType<typeof describeFailure> = {
      message: `Telegram: ${err.description ?? "error"} (${code})`,
      kind: "runtime",
      status: code,
    };
    if (code === 401 || code === 404) {
      out.kind = "auth";
      out.message = `Telegram rejected the bot token (${code} ${err.description ?? ""})`.trim();
    } else if (code === 409) {
      out.message = `Telegram: ${
        err.description ?? "conflict"
      } (409): another program is using this bot token, or a webhook is set`;
    }
    if (err.parameters?.retry_after !== undefined) {
      out.retryAfterMs = err.parameters.retry_after * 1000;
    }
    return out;
  }
  // grammY's HttpError: the request itself failed (network, DNS, refused connection).
  if (err?.name === "HttpError" || /^Network request for/.test(err?.message ?? "")) {
    return {
      message: `cannot reach the Telegram Bot API: ${err.message ?? "network error"}`,
      kind: "runtime",
    };
  }
  return { message: (e as Error)?.message ?? String(e), kind: "runtime" };
}

/** A failed delivery as a gateway error. */
function deliveryError(e: unknown): Error {
  if (e instanceof GatewayError) return e;
  const f = describeFailure(e);
  if (f.status === 400 || f.status === 403) {
    return invalidRequest(f.message, { code: "DELIVERY_REJECTED", status: f.status });
  }
  return new GatewayError(ErrorCode.UNAVAILABLE, f.message, {
    retryable: f.kind !== "auth",
    ...(f.retryAfterMs !== undefined ? { retryAfterMs: f.retryAfterMs } : {}),
    details: { code: "DELIVERY_FAILED", channel: "telegram" },
  });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
