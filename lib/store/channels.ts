/**
 * What channels keep: their polling offsets, the updates already taken, the
 * senders allowed to talk to the agent, and pending pairing requests (an
 * unknown sender gets a code that an operator approves).
 *
 * @module
 */
import { keys } from "./keys.ts";
import { busyRetry } from "./busy.ts";

/** A pairing code lives this long (OpenClaw: one hour). */
export const CHANNEL_PAIR_TTL_MS = 60 * 60_000;
/** At most this many codes wait per channel; more senders are told to try later. */
export const CHANNEL_PAIR_MAX_PENDING = 3;
/** An update id is remembered this long (redelivery after a crash comes within minutes). */
const SEEN_TTL_MS = 7 * 24 * 60 * 60_000;
/** Codes use letters and digits that cannot be confused (no 0/O, 1/I/L). */
const CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LENGTH = 8;

/** An unknown sender waiting for an operator. */
export interface ChannelPairRequest {
  channel: string;
  accountId: string;
  code: string;
  senderId: string;
  senderName?: string;
  username?: string;
  /** Where to tell them they were approved. */
  chatId: string;
  createdAt: number;
  expiresAt: number;
}

/** An approved sender. */
export interface ChannelAllowEntry {
  channel: string;
  senderId: string;
  senderName?: string;
  username?: string;
  approvedAt: number;
  /** Who approved: an operator's client id, or `config`. */
  approvedBy?: string;
}

/** The outcome of {@link ChannelStore.requestPairing}. */
export type PairingAsk =
  | { kind: "created"; request: ChannelPairRequest }
  | { kind: "pending"; request: ChannelPairRequest }
  | { kind: "full" };

/** A fresh random pairing code. */
export function newPairingCode(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(CODE_LENGTH));
  let out = "";
  for (const b of bytes) out += CODE_ALPHABET[b % CODE_ALPHABET.length];
  return out;
}

/** Channel state over one Deno KV handle. */
export class ChannelStore {
  readonly #kv: Deno.Kv;

  /** Wrap a KV handle. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** A state value of a channel account (e.g. the polling offset). */
  async getState<T>(channel: string, account: string, name: string): Promise<T | null> {
    return (await this.#kv.get<T>(keys.channelState(channel, account, name))).value;
  }

  /** Set a state value. */
  async setState(channel: string, account: string, name: string, value: unknown): Promise<void> {
    await busyRetry(() => this.#kv.set(keys.channelState(channel, account, name), value));
  }

  /** Delete a state value. */
  async deleteState(channel: string, account: string, name: string): Promise<void> {
    await busyRetry(() => this.#kv.delete(keys.channelState(channel, account, name)));
  }

  /**
   * Take an inbound update once: true the first time `id` is seen, false
   * after (a redelivery after a crash, or a webhook retry).
   */
  async markSeen(channel: string, account: string, id: string): Promise<boolean> {
    const k = keys.channelSeen(channel, account, id);
    const r = await busyRetry(() =>
      this.#kv.atomic().check({ key: k, versionstamp: null }).set(k, Date.now(), {
        expireIn: SEEN_TTL_MS,
      }).commit()
    );
    return r.ok;
  }

  /** Whether a sender was approved. */
  async isAllowed(channel: string, senderId: string): Promise<boolean> {
    return (await this.#kv.get(keys.channelAllow(channel, senderId))).value !== null;
  }

  /** Approved senders, oldest first. */
  async allowed(channel: string): Promise<ChannelAllowEntry[]> {
    const out: ChannelAllowEntry[] = [];
    for await (
      const e of this.#kv.list<ChannelAllowEntry>({ prefix: keys.channelAllows(channel) })
    ) {
      out.push(e.value);
    }
    return out.sort((a, b) => a.approvedAt - b.approvedAt);
  }

  /** Approve a sender directly. */
  async allow(entry: ChannelAllowEntry): Promise<void> {
    await busyRetry(() => this.#kv.set(keys.channelAllow(entry.channel, entry.senderId), entry));
  }

  /** Withdraw a sender's approval; true when there was one. */
  async disallow(channel: string, senderId: string): Promise<boolean> {
    const k = keys.channelAllow(channel, senderId);
    const cur = await this.#kv.get(k);
    if (cur.value === null) return false;
    await busyRetry(() => this.#kv.delete(k));
    return true;
  }

  /**
   * Ask to pair `senderId`: their live request when they have one, a new one
   * when fewer than {@link CHANNEL_PAIR_MAX_PENDING} wait, else `full`.
   */
  async requestPairing(
    req: Omit<ChannelPairRequest, "code" | "createdAt" | "expiresAt">,
    now = Date.now(),
  ): Promise<PairingAsk> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const bySender = await this.#kv.get<string>(
        keys.channelPairBySender(req.channel, req.senderId),
      );
      if (bySender.value) {
        const cur = await this.#kv.get<ChannelPairRequest>(
          keys.channelPair(req.channel, bySender.value),
        );
        if (cur.value && cur.value.expiresAt > now) return { kind: "pending", request: cur.value };
      }
      const live = (await this.pairRequests(req.channel, now)).length;
      if (live >= CHANNEL_PAIR_MAX_PENDING) return { kind: "full" };
      const code = newPairingCode();
      const request: ChannelPairRequest = {
        ...req,
        code,
        createdAt: now,
        expiresAt: now + CHANNEL_PAIR_TTL_MS,
      };
      const codeKey = keys.channelPair(req.channel, code);
      const expireIn = CHANNEL_PAIR_TTL_MS;
      const r = await busyRetry(() =>
        this.#kv.atomic()
          .check(bySender)
          .check({ key: codeKey, versionstamp: null })
          .set(codeKey, request, { expireIn })
          .set(keys.channelPairBySender(req.channel, req.senderId), code, { expireIn })
          .commit()
      );
      if (r.ok) return { kind: "created", request };
    }
    throw new Error("could not create a pairing request (too much contention)");
  }

  /** Live pairing requests of a channel, oldest first. */
  async pairRequests(channel: string, now = Date.now()): Promise<ChannelPairRequest[]> {
    const out: ChannelPairRequest[] = [];
    for await (
      const e of this.#kv.list<ChannelPairRequest>({ prefix: keys.channelPairs(channel) })
    ) {
      if (e.value.expiresAt > now) out.push(e.value);
    }
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  /**
   * Approve the request with `code` (any case): the sender is allowed and the
   * request gone, in one commit. Null when no live request has that code.
   */
  async approvePairing(
    channel: string,
    code: string,
    approvedBy: string,
    now = Date.now(),
  ): Promise<{ request: ChannelPairRequest; entry: ChannelAllowEntry } | null> {
    const k = keys.channelPair(channel, code.trim().toUpperCase());
    for (;;) {
      const cur = await this.#kv.get<ChannelPairRequest>(k);
      const req = cur.value;
      if (!req || req.expiresAt <= now) return null;
      const entry: ChannelAllowEntry = {
        channel,
        senderId: req.senderId,
        approvedAt: now,
        approvedBy,
        ...(req.senderName ? { senderName: req.senderName } : {}),
        ...(req.username ? { username: req.username } : {}),
      };
      const r = await busyRetry(() =>
        this.#kv.atomic()
          .check(cur)
          .delete(k)
          .delete(keys.channelPairBySender(channel, req.senderId))
          .set(keys.channelAllow(channel, req.senderId), entry)
          .commit()
      );
      if (r.ok) return { request: req, entry };
    }
  }

  /** Drop the request with `code`; the request when there was one. */
  async rejectPairing(channel: string, code: string): Promise<ChannelPairRequest | null> {
    const k = keys.channelPair(channel, code.trim().toUpperCase());
    for (;;) {
      const cur = await this.#kv.get<ChannelPairRequest>(k);
      if (!cur.value) return null;
      const r = await busyRetry(() =>
        this.#kv.atomic().check(cur).delete(k)
          .delete(keys.channelPairBySender(channel, cur.value!.senderId)).commit()
      );
      if (r.ok) return cur.value;
    }
  }
}
