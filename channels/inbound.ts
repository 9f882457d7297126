/**
 * From a chat message to an agent turn, the same for every channel: who may
 * talk (DM and group policies, pairing codes), the chat commands (`/new`,
 * `/reset`, `/stop`, `/status`), the session key of a chat, and the reply
 * streamed back through the channel's {@link ReplyTarget}.
 *
 * @module
 */
import type { ChannelHost } from "./registry.ts";
import type { Attachment } from "../lib/agent/media.ts";
import type { RunOutcome } from "../lib/agent/runtime.ts";

/** A message that reached a channel. */
export interface InboundMessage {
  channel: string;
  accountId: string;
  /** The platform's id of this update (dedupe is the channel's job). */
  updateId: string;
  chatId: string;
  chatType: "direct" | "group";
  chatTitle?: string;
  /** Forum topic or thread. */
  threadId?: string;
  senderId: string;
  senderName?: string;
  username?: string;
  messageId: string;
  text: string;
  /** In a group: the bot was mentioned, replied to, or a command named it. */
  addressed: boolean;
  attachments: Attachment[];
}

/** How the agent answers in one chat; the channel implements it. */
export interface ReplyTarget {
  /** A short notice (Markdown). */
  say(text: string): Promise<void>;
  /** Show that the agent is working (the platform's typing indicator). */
  typing(): Promise<void>;
  /** A reply that grows as it streams. */
  stream(): ReplyStream;
  /** Audio of the final reply (spoken replies, `tts.enable`); absent: the channel has no audio. */
  voice?(audio: Uint8Array, mimeType: string): Promise<void>;
}

/** One reply being written. */
export interface ReplyStream {
  /** The reply so far (the whole text, not a delta). */
  update(text: string): void;
  /** The final text (Markdown): replaces the preview, split as needed. */
  finish(text: string): Promise<void>;
  /** The run failed: say so in place of the preview. */
  fail(text: string): Promise<void>;
}

/** Who may talk, read from the channel's config on every message. */
export interface AccessPolicy {
  dmPolicy: "pairing" | "allowlist" | "open" | "disabled";
  allowFrom: readonly string[];
  groupPolicy: "allowlist" | "open" | "disabled";
  groupAllowFrom?: readonly string[] | undefined;
  requireMention: boolean;
  agentId?: string | undefined;
}

/** What {@link InboundRouter.handle} did with a message. */
export type InboundVerdict =
  | "turn"
  | "command"
  | "pairing"
  | "ignored-policy"
  | "ignored-unaddressed"
  | "ignored-empty";

/** How often the typing indicator is renewed (Telegram shows it for about 5 s). */
const TYPING_EVERY_MS = 4_000;

/** The session key of a chat: `agent:<agentId>:<channel>:<chatId>`, groups and topics as OpenClaw names them. */
export function chatSessionKey(
  agentId: string,
  m: Pick<InboundMessage, "channel" | "chatType" | "chatId" | "threadId">,
): string {
  if (m.chatType === "direct") return `agent:${agentId}:${m.channel}:${m.chatId}`;
  const base = `agent:${agentId}:${m.channel}:group:${m.chatId}`;
  return m.threadId ? `${base}:topic:${m.threadId}` : base;
}

/** A chat command: `/name[@bot] args`. */
export function parseCommand(text: string): { name: string; bot?: string; args: string } | null {
  const m = /^\/([a-z][a-z0-9_]{0,31})(?:@([a-z0-9_]{3,64}))?(?:\s+([\s\S]*))?$/i.exec(text.trim());
  if (!m) return null;
  const out: { name: string; bot?: string; args: string } = {
    name: m[1]!.toLowerCase(),
    args: (m[3] ?? "").trim(),
  };
  if (m[2]) out.bot = m[2];
  return out;
}

/** Commands every channel understands. */
export const CHAT_COMMANDS: readonly { command: string; description: string }[] = [
  { command: "new", description: "Start a new conversation" },
  { command: "reset", description: "Start a new conversation" },
  { command: "stop", description: "Stop the reply in progress" },
  { command: "status", description: "Show the session and the gateway's status" },
  { command: "help", description: "What this bot understands" },
];

/** Routes a channel's messages to agent turns. */
export class InboundRouter {
  readonly #host: ChannelHost;
  readonly #channel: string;
  readonly #policy: () => AccessPolicy;

  /** One per channel. */
  constructor(host: ChannelHost, channel: string, policy: () => AccessPolicy) {
    this.#host = host;
    this.#channel = channel;
    this.#policy = policy;
  }

  /** The agent that answers this channel. */
  agentId(): string {
    return this.#policy().agentId ?? this.#host.defaultAgentId();
  }

  /** Whether a sender may talk (config lists, `*`, or an approved pairing). */
  async allowed(senderId: string, list: readonly string[]): Promise<boolean> {
    if (list.includes("*") || list.includes(senderId)) return true;
    return await this.#host.store.channels.isAllowed(this.#channel, senderId);
  }

  /**
   * Take a message: check who sent it, answer a command, or start a turn.
   * Resolves when the message is accepted (a turn's input is durable); the
   * reply goes on in the background and `replied` resolves when it is done.
   */
  async handle(
    m: InboundMessage,
    reply: ReplyTarget,
  ): Promise<{ verdict: InboundVerdict; replied: Promise<void> }> {
    const done = (verdict: InboundVerdict) => ({ verdict, replied: Promise.resolve() });
    const p = this.#policy();
    const log = this.#host.log;
    if (m.chatType === "direct") {
      if (p.dmPolicy === "disabled") return done("ignored-policy");
      if (p.dmPolicy !== "open" && !(await this.allowed(m.senderId, p.allowFrom))) {
        if (p.dmPolicy === "allowlist") {
          log.info("channel: message from a sender not in allowFrom ignored", {
            channel: this.#channel,
            senderId: m.senderId,
          });
          return done("ignored-policy");
        }
        await this.#askPairing(m, reply);
        return done("pairing");
      }
    } else {
      if (p.groupPolicy === "disabled") return done("ignored-policy");
      if (p.requireMention && !m.addressed) return done("ignored-unaddressed");
      if (
        p.groupPolicy === "allowlist" &&
        !(await this.allowed(m.senderId, p.groupAllowFrom ?? p.allowFrom))
      ) {
        log.info("channel: group message from a sender not allowed ignored", {
          channel: this.#channel,
          chatId: m.chatId,
          senderId: m.senderId,
        });
        return done("ignored-policy");
      }
    }
    const key = chatSessionKey(this.agentId(), m);
    const cmd = parseCommand(m.text);
    if (cmd && (await this.#command(cmd.name, key, reply))) return done("command");
    if (!m.text.trim() && m.attachments.length === 0) return done("ignored-empty");
    return { verdict: "turn", ...(await this.#turn(m, key, reply)) };
  }

  async #askPairing(m: InboundMessage, reply: ReplyTarget): Promise<void> {
    const ask = await this.#host.store.channels.requestPairing({
      channel: this.#channel,
      accountId: m.accountId,
      senderId: m.senderId,
      chatId: m.chatId,
      ...(m.senderName ? { senderName: m.senderName } : {}),
      ...(m.username ? { username: m.username } : {}),
    });
    if (ask.kind === "full") {
      await reply.say(
        "This assistant is private, and too many people are waiting for approval right now. Please try again later.",
      );
      return;
    }
    const { request } = ask;
    if (ask.kind === "created") {
      this.#host.log.info("channel: pairing requested", {
        channel: this.#channel,
        senderId: m.senderId,
        username: m.username,
      });
      this.#host.emit("channel.pairing.requested", {
        channel: this.#channel,
        accountId: m.accountId,
        code: request.code,
        senderId: m.senderId,
        senderName: m.senderName ?? null,
        username: m.username ?? null,
        expiresAt: request.expiresAt,
      });
    }
    await reply.say(
      [
        "This assistant is private. To talk to it, ask its owner to approve you.",
        "",
        `Your ${this.#channel} user id: \`${m.senderId}\``,
        `Pairing code: \`${request.code}\``,
        "",
        `The owner runs: \`gw pairing approve ${this.#channel} ${request.code}\``,
      ].join("\n"),
    );
  }

  /** Answer a chat command; false when it is not one of ours (the text goes to the agent). */
  async #command(name: string, key: string, reply: ReplyTarget): Promise<boolean> {
    const h = this.#host;
    switch (name) {
      case "start":
      case "help":
        await reply.say(
          [
            "Write to talk to the assistant.",
            "",
            ...CHAT_COMMANDS.map((c) => `/${c.command} — ${c.description}`),
          ].join("\n"),
        );
        return true;
      case "new":
      case "reset": {
        h.agent.abort(key);
        const r = await h.agent.exclusive(key, () => h.store.sessions.reset(key));
        if (r) {
          await h.store.sessions.deleteTranscript(r.oldSessionId);
          h.emit("sessions.changed", {
            sessionKey: key,
            agentId: r.entry.agentId,
            reason: "reset",
          });
        }
        await reply.say("Started a new conversation.");
        return true;
      }
      case "stop": {
        const aborted = h.agent.abort(key);
        await reply.say(aborted.length ? "Stopped." : "Nothing is running.");
        return true;
      }
      case "status": {
        const e = await h.store.sessions.get(key);
        const running = h.agent.runsOf(key).length;
        const lines = [`Session: \`${key}\``];
        if (e) {
          lines.push(
            `Messages: ${e.nextSeq}; tokens: ${e.totalTokens ?? 0}`,
            `Model: ${e.model ?? "default"}; thinking: ${e.thinkingLevel ?? "default"}`,
          );
        } else lines.push("No messages yet.");
        lines.push(running ? `Running: ${running} turn(s)` : "Idle", h.gatewaySummary());
        await reply.say(lines.join("\n"));
        return true;
      }
      default:
        return false;
    }
  }

  async #turn(
    m: InboundMessage,
    key: string,
    reply: ReplyTarget,
  ): Promise<{ replied: Promise<void> }> {
    const h = this.#host;
    const stream = reply.stream();
    const runId = `${m.channel}:${m.accountId}:${m.updateId}`;
    const sender = m.senderName ?? m.username ?? m.senderId;
    const extra = m.chatType === "group"
      ? `This message comes from ${sender} (${m.channel} user ${m.senderId}) in the group "${
        m.chatTitle ?? m.chatId
      }".`
      : undefined;
    const handle = await h.agent.submit({
      sessionKey: key,
      message: m.text,
      runId,
      idempotencyKey: runId,
      source: m.channel,
      onText: (text) => stream.update(text),
      origin: {
        channel: m.channel,
        ...(m.chatType === "group" ? { label: `${m.chatTitle ?? m.chatId}` } : { label: sender }),
      },
      ...(m.attachments.length ? { attachments: m.attachments } : {}),
      ...(extra ? { extraSystemPrompt: extra } : {}),
    });
    return { replied: this.#reply(handle.done, stream, reply) };
  }

  async #reply(done: Promise<RunOutcome>, stream: ReplyStream, reply: ReplyTarget): Promise<void> {
    let finished = false;
    const typing = async () => {
      while (!finished) {
        await reply.typing().catch(() => {});
        await new Promise((r) => setTimeout(r, TYPING_EVERY_MS));
      }
    };
    // The typing loop ends within one interval of the reply; it holds no resources.
    void typing();
    try {
      const o = await done;
      finished = true;
      if (o.status === "ok") {
        await stream.finish(o.text || "(no reply)");
        if (o.text.trim()) await this.#speak(o.text, reply);
      } else if (o.status === "aborted") {
        await stream.finish(o.text ? `${o.text}\n\n_(stopped)_` : "_(stopped)_");
      } else {
        await stream.fail(failureText(o));
      }
    } catch (e) {
      finished = true;
      this.#host.log.warn("channel: reply failed", { channel: this.#channel, error: e });
    }
  }

  /** With spoken replies on, the final reply also goes out as audio; a failure is logged (the text got through). */
  async #speak(text: string, reply: ReplyTarget): Promise<void> {
    const tts = this.#host.tts;
    if (!tts || !reply.voice) return;
    try {
      if (!(await tts.enabled())) return;
      const audio = await tts.synthesize(text);
      await reply.voice(audio.bytes, audio.mimeType);
    } catch (e) {
      this.#host.log.warn("channel: spoken reply failed", {
        channel: this.#channel,
        error: (e as Error)?.message ?? String(e),
      });
    }
  }
}

/** A failed run in words a person understands. */
export function failureText(o: RunOutcome): string {
  const e = o.error;
  if (o.status === "timeout") return "⚠️ The reply took too long and was stopped.";
  switch (e?.kind) {
    case "auth":
      return "⚠️ The assistant's model provider rejected its API key. The owner needs to fix the gateway's configuration.";
    case "rate_limit":
    case "overloaded":
      return "⚠️ The model provider is busy right now. Please try again in a minute.";
    case "context_length":
      return "⚠️ This conversation is too long for the model. Send /new to start a new one.";
    default:
      return `⚠️ Something went wrong: ${e?.message ?? o.status}`;
  }
}
