/**
 * The channels gw can deliver through. The core knows only this interface;
 * each channel (Telegram first) is a module in `channels/` that registers
 * itself here.
 *
 * @module
 */

/** What a send returns. */
export interface SendResult {
  messageId: string;
  channel: string;
  to: string;
}

/** A channel as the core sees it. */
export interface Channel {
  /** Channel id, e.g. `telegram`. */
  readonly id: string;
  /** Whether it has what it needs to send (a token, a login). */
  configured(): boolean;
  /** Deliver `text` to `to` (a chat id, a user). */
  send(
    to: string,
    text: string,
    opts: { accountId?: string; replyTo?: string },
  ): Promise<SendResult>;
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

/** The registered channels. */
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
}
