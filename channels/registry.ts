/**
 * The channel interface. The core knows only this file; each channel
 * (Telegram first) is a module in `channels/` listed in `catalog.ts`, with its
 * config in `config.ts`. A channel brings people in (inbound messages become
 * agent turns through `inbound.ts`) and carries messages out (`send`, `poll`).
 *
 * @module
 */
import type { MethodDef } from "../lib/server/method.ts";
import type { Store } from "../lib/store/mod.ts";
import type { GwConfig } from "../lib/config/schema.ts";
import type { ConfigFile } from "../lib/config/mod.ts";
import type { Logger } from "../lib/log.ts";
import type { AgentRuntime } from "../lib/agent/runtime.ts";
import type { MediaStore } from "../lib/agent/media.ts";

/** What a send returns. */
export interface SendResult {
  /** The (first) message's id. */
  messageId: string;
  channel: string;
  to: string;
  /** The chat the message went to, as the channel names it. */
  chatId?: string;
  /** Every message sent, when a long text or media took several. */
  messageIds?: string[];
}

/** A file to send, held in memory. */
export interface OutboundFile {
  bytes: Uint8Array;
  fileName: string;
  mimeType: string;
}

/** Options of {@link Channel.send}. */
export interface SendOptions {
  accountId?: string;
  /** Reply to this message of the chat. */
  replyTo?: string;
  /** Thread or forum topic. */
  threadId?: string;
  /** Media by URL: the platform fetches them. */
  mediaUrls?: string[];
  /** A file uploaded with the message. */
  file?: OutboundFile;
  /** Send media as documents, never as photos. */
  forceDocument?: boolean;
  /** No notification sound. */
  silent?: boolean;
}

/** A native poll. */
export interface PollInput {
  question: string;
  options: string[];
  maxSelections?: number;
  durationSeconds?: number;
  isAnonymous?: boolean;
  silent?: boolean;
  threadId?: string;
  accountId?: string;
}

/** What a poll returns. */
export interface PollResult extends SendResult {
  pollId: string;
  /** Settings the platform could not honour. */
  warnings?: string[];
}

/** One account's status, in OpenClaw's `ChannelAccountSnapshot` shape. */
export interface ChannelAccountStatus {
  accountId: string;
  name?: string;
  enabled: boolean;
  configured: boolean;
  running: boolean;
  connected: boolean;
  mode?: string;
  reconnectAttempts: number;
  lastConnectedAt: number | null;
  lastError: string | null;
  lastStartAt: number | null;
  lastStopAt: number | null;
  lastInboundAt: number | null;
  lastOutboundAt: number | null;
  lastProbeAt?: number | null;
  dmPolicy?: string;
  allowFrom?: string[];
  tokenSource?: string;
  webhookUrl?: string | null;
  busy?: boolean;
  activeRuns?: number;
  probe?: unknown;
  [extra: string]: unknown;
}

/** A problem a person should fix, shown by `channels.status`. */
export interface ChannelIssue {
  channel: string;
  accountId: string;
  kind: "intent" | "permissions" | "config" | "auth" | "runtime";
  message: string;
  fix?: string;
}

/** What the gateway gives a channel. */
export interface ChannelHost {
  readonly stateDir: string;
  readonly store: Store;
  readonly configFile: ConfigFile;
  readonly log: Logger;
  readonly agent: AgentRuntime;
  readonly media: MediaStore;
  /** The effective config (changes take effect on the next read). */
  config(): GwConfig;
  /** An environment variable (tests pass their own). */
  env(name: string): string | undefined;
  /** The default agent's id. */
  defaultAgentId(): string;
  /** Send an event to the clients allowed to see it. */
  emit(event: string, payload: unknown): void;
  /** One line about the gateway, for a channel's `/status`. */
  gatewaySummary(): string;
  /** Text to speech for spoken replies (`tts.enable`); absent: replies are text only. */
  tts?: {
    /** Whether replies are spoken now. */
    enabled(): Promise<boolean>;
    /** A reply's audio (Markdown made speakable and cut to the cap). */
    synthesize(text: string): Promise<{ bytes: Uint8Array; mimeType: string }>;
  };
}

/** A channel as the core sees it. */
export interface Channel {
  /** Channel id, e.g. `telegram`. */
  readonly id: string;
  /** Display name, e.g. `Telegram`. */
  readonly label: string;
  /** Longer display name, e.g. `Telegram Bot`. */
  readonly detailLabel: string;
  /** Whether it has what it needs to run (a token, a login). */
  configured(): boolean;
  /** Start receiving (idempotent). Failures go to status and are retried; this never rejects. */
  start(): Promise<void>;
  /** Stop receiving and finish what is in flight. */
  stop(): Promise<void>;
  /** Apply a config change: start, stop or restart as needed. */
  reconfigure(): Promise<void>;
  /** Each account's status; `probe` checks the credentials with the platform now. */
  status(opts: { probe: boolean; timeoutMs: number }): Promise<ChannelAccountStatus[]>;
  /** Problems to show a person. */
  issues(): ChannelIssue[];
  /** Deliver `text` (and media) to `to` (a chat id). */
  send(to: string, text: string, opts: SendOptions): Promise<SendResult>;
  /** Send a native poll, when the platform has them. */
  poll?(to: string, poll: PollInput): Promise<PollResult>;
  /** Forget the credentials (and stop). */
  logout(accountId?: string): Promise<Record<string, unknown>>;
  /** Answer an HTTP request under `/<id>/` (webhooks); null when not ours. */
  http?(req: Request, path: string): Promise<Response> | null;
}

/** A channel module: its id, labels, methods, and how to make one. */
export interface ChannelModule {
  id: string;
  label: string;
  /** Methods the channel adds (`telegram.*`): advertised only while it is configured. */
  methods: MethodDef[];
  /** Make the channel; cheap: heavy libraries load in `start()`. */
  create(host: ChannelHost): Channel;
}

/** What {@link lazyChannel} needs to stand in for a channel before its code loads. */
export interface LazyChannelSpec {
  id: string;
  label: string;
  detailLabel: string;
  /** Read from config alone: whether the channel has what it needs. */
  configured(): boolean;
  /** Load the real channel (a dynamic import). */
  load(): Promise<Channel>;
}

/**
 * A channel whose code (and its SDK) loads only when it is configured and
 * started, or first used: a gateway without the channel never pays for it.
 */
export function lazyChannel(spec: LazyChannelSpec): Channel {
  let loaded: Channel | undefined;
  let loading: Promise<Channel> | undefined;
  const get = async (): Promise<Channel> => {
    loading ??= spec.load().then((c) => (loaded = c));
    return await loading;
  };
  return {
    id: spec.id,
    label: spec.label,
    detailLabel: spec.detailLabel,
    configured: () => spec.configured(),
    start: async () => {
      if (loaded || spec.configured()) await (await get()).start();
    },
    stop: async () => {
      if (loaded) await loaded.stop();
    },
    reconfigure: async () => {
      if (loaded || spec.configured()) await (await get()).reconfigure();
    },
    status: async (opts) => {
      if (loaded || spec.configured()) return await (await get()).status(opts);
      return [];
    },
    issues: () => loaded?.issues() ?? [],
    send: async (to, text, opts) => await (await get()).send(to, text, opts),
    poll: async (to, p) => {
      const c = await get();
      if (!c.poll) throw new Error(`${spec.label} has no native polls`);
      return await c.poll(to, p);
    },
    logout: async (accountId) => await (await get()).logout(accountId),
    http: (req, path) => loaded?.http?.(req, path) ?? null,
  };
}

/** Channel ids OpenClaw clients may name; anything else is "unsupported". */
export const KNOWN_CHANNELS: ReadonlySet<string> = new Set([
  "telegram",
  "discord",
  "slack",
  "whatsapp",
  "signal",
  "imessage",
  "matrix",
  "msteams",
  "googlechat",
]);

/** The channels of one gateway. */
export class ChannelRegistry {
  readonly #channels = new Map<string, Channel>();

  /** Add a channel. */
  register(c: Channel): void {
    this.#channels.set(c.id, c);
  }

  /** A channel by id. */
  get(id: string): Channel | undefined {
    return this.#channels.get(id);
  }

  /** Every registered channel. */
  list(): Channel[] {
    return [...this.#channels.values()];
  }

  /** Whether `id` is registered and configured. */
  isConfigured(id: string): boolean {
    return this.#channels.get(id)?.configured() ?? false;
  }

  /** Start every configured channel (failures are theirs to report). */
  async startAll(): Promise<void> {
    await Promise.all(this.list().map((c) => c.configured() ? c.start() : Promise.resolve()));
  }

  /** Stop every channel. */
  async stopAll(): Promise<void> {
    await Promise.allSettled(this.list().map((c) => c.stop()));
  }

  /** Tell every channel the config changed. */
  async reconfigureAll(): Promise<void> {
    await Promise.allSettled(this.list().map((c) => c.reconfigure()));
  }

  /** Route an HTTP request under `/<channel>/...`; null when no channel takes it. */
  http(req: Request, pathname: string): Promise<Response> | null {
    const m = /^\/([a-z0-9_-]+)(\/.*)?$/.exec(pathname);
    if (!m) return null;
    const c = this.#channels.get(m[1]!);
    if (!c?.http) return null;
    return c.http(req, m[2] ?? "/");
  }
}
