/**
 * Channels: `channels.status`, `channels.logout`, and delivery through a
 * channel (`send`, `poll`), once per idempotencyKey.
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import { GatewayError, invalidRequest } from "../lib/protocol/errors.ts";
import { ErrorCode } from "../lib/protocol/types.ts";
import type { GatewayContext } from "../lib/server/context.ts";
import {
  type Channel,
  type ChannelAccountStatus,
  type ChannelIssue,
  KNOWN_CHANNELS,
  type OutboundFile,
} from "../channels/registry.ts";
import { MAX_MESSAGE_CHARS } from "./chat.ts";

const idempotencyKey = z.string().min(1).max(256);
/** Largest file `send` uploads from `buffer` (Telegram's bot upload cap is 50 MB). */
const MAX_SEND_FILE_BYTES = 50 * 1024 * 1024;

/** `channels.status`: every channel's accounts, probed when asked. */
export const channelsStatus = defineMethod({
  name: "channels.status",
  scope: "read",
  summary: "Each channel's state: running, connected, last error; probe checks credentials now.",
  params: z.looseObject({
    probe: z.boolean().optional(),
    timeoutMs: z.int().min(0).max(60_000).optional(),
    channel: z.string().min(1).max(64).optional(),
  }),
  handler: async (p, ctx) => {
    const list = ctx.channels.list().filter((c) => !p.channel || c.id === p.channel);
    const probe = p.probe === true;
    const timeoutMs = p.timeoutMs || 8_000;
    const rows = await Promise.all(list.map(async (c) => {
      try {
        return { c, accounts: await c.status({ probe, timeoutMs }), error: null };
      } catch (e) {
        return { c, accounts: [] as ChannelAccountStatus[], error: (e as Error).message };
      }
    }));
    const issues: ChannelIssue[] = [];
    const warnings: string[] = [];
    const shown = rows.filter((r) => r.c.configured() || r.accounts.some((a) => a.running));
    for (const r of shown) {
      issues.push(...r.c.issues());
      if (r.error) warnings.push(`${r.c.id}: ${r.error}`);
    }
    const { intervalMs, ...loop } = ctx.eventLoop();
    return {
      ts: Date.now(),
      channelOrder: shown.map((r) => r.c.id),
      channelLabels: Object.fromEntries(shown.map((r) => [r.c.id, r.c.label])),
      channelDetailLabels: Object.fromEntries(shown.map((r) => [r.c.id, r.c.detailLabel])),
      channelSystemImages: {},
      channelMeta: shown.map((r) => ({
        id: r.c.id,
        label: r.c.label,
        detailLabel: r.c.detailLabel,
      })),
      eventLoop: { ...loop, intervalMs: Math.round(intervalMs) },
      channels: Object.fromEntries(shown.map((r) => {
        const a = r.accounts[0];
        return [r.c.id, {
          configured: r.c.configured(),
          running: a?.running ?? false,
          connected: a?.connected ?? false,
          lastError: a?.lastError ?? r.error,
          ...(a?.probe !== undefined ? { probe: a.probe } : {}),
        }];
      })),
      channelAccounts: Object.fromEntries(shown.map((r) => [r.c.id, r.accounts])),
      channelDefaultAccountId: Object.fromEntries(shown.map((r) => [r.c.id, "default"])),
      ...(warnings.length ? { warnings, partial: true } : {}),
      statusIssues: issues.slice(0, 50),
    };
  },
});

/** `channels.logout`: forget a channel's credentials and stop it. */
export const channelsLogout = defineMethod({
  name: "channels.logout",
  scope: "admin",
  summary: "Log a channel out: its credentials are removed from the config and it stops.",
  params: z.looseObject({
    channel: z.string().min(1).max(64),
    accountId: z.string().max(128).optional(),
  }),
  available: (ctx) => ctx.channels.list().some((c) => c.configured()),
  unavailableReason: "no channel is configured",
  handler: async (p, ctx) => {
    const c = channelOf(ctx, p.channel);
    const r = await c.logout(p.accountId);
    await ctx.applyConfig();
    return { ok: true, ...r };
  },
});

/** Deliveries in progress by idempotencyKey: a concurrent duplicate awaits the first. */
const delivering = new Map<string, Promise<Record<string, unknown>>>();

/** Run `work` once per kind and idempotencyKey: duplicates get the first answer. */
async function once(
  ctx: GatewayContext,
  kind: string,
  key: string,
  work: () => Promise<Record<string, unknown>>,
): Promise<Record<string, unknown>> {
  const id = `${kind}\n${key}`;
  const inflight = delivering.get(id);
  if (inflight) return { ...(await inflight), cached: true };
  const prior = await ctx.store.idempotency.get<Record<string, unknown>>(kind, key);
  if (prior?.state === "done" && prior.result) return { ...prior.result, cached: true };
  const p = (async () => {
    const result = await work();
    await ctx.store.idempotency.claim(kind, key, { at: Date.now(), state: "started" });
    await ctx.store.idempotency.finish(kind, key, result);
    return result;
  })();
  delivering.set(id, p);
  try {
    return await p;
  } finally {
    delivering.delete(id);
  }
}

/** The channel named (or the only configured one), ready to deliver. */
function channelOf(ctx: GatewayContext, named: string | undefined): Channel {
  const configured = ctx.channels.list().filter((c) => c.configured());
  let id = named?.trim().toLowerCase();
  if (!id) {
    if (configured.length !== 1) {
      throw invalidRequest(
        configured.length === 0
          ? "Channel is required (no configured channels detected). Configure a channel first (gw channels add telegram), or pass channel."
          : `Channel is required: more than one is configured (${
            configured.map((c) => c.id).join(", ")
          }).`,
        { code: "CHANNEL_REQUIRED" },
      );
    }
    id = configured[0]!.id;
  }
  const channel = ctx.channels.get(id);
  if (!channel) {
    if (!KNOWN_CHANNELS.has(id)) {
      throw invalidRequest(`unsupported channel: ${id}`, {
        code: "UNSUPPORTED_CHANNEL",
        channel: id,
      });
    }
    throw new GatewayError(ErrorCode.UNAVAILABLE, `channel ${id} is not available in gw yet`, {
      details: { code: "CHANNEL_UNAVAILABLE", channel: id },
    });
  }
  if (!channel.configured()) {
    throw new GatewayError(
      ErrorCode.UNAVAILABLE,
      `channel ${id} is not configured (gw channels add ${id})`,
      { details: { code: "CHANNEL_NOT_CONFIGURED", channel: id } },
    );
  }
  return channel;
}

/** `send`: deliver a message (text, media by URL, or a file) through a channel. */
export const send = defineMethod({
  name: "send",
  scope: "write",
  summary: "Send a message to someone through a channel (telegram, ...).",
  params: z.looseObject({
    to: z.string().trim().min(1).max(256),
    message: z.string().max(MAX_MESSAGE_CHARS).optional(),
    mediaUrl: z.string().min(1).max(2048).optional(),
    mediaUrls: z.array(z.string().min(1).max(2048)).max(10).optional(),
    buffer: z.string().max(Math.ceil(MAX_SEND_FILE_BYTES / 3) * 4 + 4).optional(),
    filename: z.string().min(1).max(255).optional(),
    contentType: z.string().min(1).max(255).optional(),
    channel: z.string().min(1).max(64).optional(),
    accountId: z.string().min(1).max(128).optional(),
    replyToId: z.string().min(1).max(128).optional(),
    replyTo: z.string().min(1).max(128).optional(),
    threadId: z.string().min(1).max(128).optional(),
    forceDocument: z.boolean().optional(),
    silent: z.boolean().optional(),
    idempotencyKey,
  }),
  handler: (p, ctx) => {
    const mediaUrls = [...(p.mediaUrl ? [p.mediaUrl] : []), ...(p.mediaUrls ?? [])];
    const text = p.message ?? "";
    if (!text.trim() && !mediaUrls.length && !p.buffer) {
      throw invalidRequest("send needs message, mediaUrl(s) or buffer");
    }
    let file: OutboundFile | undefined;
    if (p.buffer) {
      let bytes: Uint8Array;
      try {
        bytes = Uint8Array.from(atob(p.buffer), (c) => c.charCodeAt(0));
      } catch {
        throw invalidRequest("invalid send params: buffer: expected base64");
      }
      if (bytes.length > MAX_SEND_FILE_BYTES) {
        throw invalidRequest(`buffer: larger than ${MAX_SEND_FILE_BYTES / 1048576} MB`);
      }
      file = {
        bytes,
        fileName: (p.filename ?? "file").replace(/[\\/\0]/g, "_"),
        mimeType: p.contentType ?? "application/octet-stream",
      };
    }
    return once(ctx, "send", p.idempotencyKey, async () => {
      const channel = channelOf(ctx, p.channel);
      const replyTo = p.replyToId ?? p.replyTo;
      const r = await channel.send(p.to, text, {
        ...(p.accountId ? { accountId: p.accountId } : {}),
        ...(replyTo ? { replyTo } : {}),
        ...(p.threadId ? { threadId: p.threadId } : {}),
        ...(mediaUrls.length ? { mediaUrls } : {}),
        ...(file ? { file } : {}),
        ...(p.forceDocument ? { forceDocument: true } : {}),
        ...(p.silent ? { silent: true } : {}),
      });
      return { ok: true, runId: p.idempotencyKey, ...r };
    });
  },
});

/** `poll`: a native poll in a chat. */
export const poll = defineMethod({
  name: "poll",
  scope: "write",
  summary: "Send a native poll through a channel (telegram).",
  params: z.looseObject({
    to: z.string().trim().min(1).max(256),
    question: z.string().trim().min(1).max(300),
    options: z.array(z.string().trim().min(1).max(100)).min(2).max(12),
    maxSelections: z.int().min(1).max(12).optional(),
    durationSeconds: z.int().min(1).max(604_800).optional(),
    durationHours: z.int().min(1).max(8_760).optional(),
    silent: z.boolean().optional(),
    isAnonymous: z.boolean().optional(),
    threadId: z.string().min(1).max(128).optional(),
    channel: z.string().min(1).max(64).optional(),
    accountId: z.string().min(1).max(128).optional(),
    idempotencyKey,
  }),
  available: (ctx) => ctx.channels.list().some((c) => c.configured() && c.poll),
  unavailableReason: "no channel with native polls is configured",
  handler: (p, ctx) =>
    once(ctx, "poll", p.idempotencyKey, async () => {
      const channel = channelOf(ctx, p.channel);
      if (!channel.poll) {
        throw invalidRequest(`unsupported poll channel: ${channel.id}`, {
          code: "UNSUPPORTED_CHANNEL",
          channel: channel.id,
        });
      }
      const durationSeconds = p.durationSeconds ??
        (p.durationHours !== undefined ? p.durationHours * 3600 : undefined);
      const r = await channel.poll(p.to, {
        question: p.question,
        options: p.options,
        ...(p.maxSelections !== undefined ? { maxSelections: p.maxSelections } : {}),
        ...(durationSeconds !== undefined ? { durationSeconds } : {}),
        ...(p.isAnonymous !== undefined ? { isAnonymous: p.isAnonymous } : {}),
        ...(p.silent ? { silent: true } : {}),
        ...(p.threadId ? { threadId: p.threadId } : {}),
        ...(p.accountId ? { accountId: p.accountId } : {}),
      });
      return { ok: true, runId: p.idempotencyKey, ...r };
    }),
});
