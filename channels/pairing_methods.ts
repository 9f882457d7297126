/**
 * The methods a channel with sender pairing adds (`<channel>.pairing.list`,
 * `.approve`, `.reject`, `<channel>.allow.remove`): operators approve the
 * codes unknown senders were given.
 *
 * @module
 */
import { z } from "zod";
import { defineMethod, type MethodDef } from "../lib/server/method.ts";
import { invalidRequest } from "../lib/protocol/errors.ts";
import type { GatewayContext } from "../lib/server/context.ts";

const code = z.string().trim().regex(/^[A-Za-z0-9]{4,16}$/, "expected a pairing code");

/** Pairing methods of `channel`, advertised while it is configured. */
export function pairingMethods(channel: string, label: string): MethodDef[] {
  const available = (ctx: GatewayContext) => ctx.channels.isConfigured(channel);
  const unavailableReason = `${label} is not configured`;
  const list = defineMethod({
    name: `${channel}.pairing.list`,
    scope: "pairing",
    summary: `${label} senders waiting for approval, and those approved.`,
    params: z.strictObject({}),
    available,
    unavailableReason,
    handler: async (_p, ctx) => ({
      channel,
      requests: (await ctx.store.channels.pairRequests(channel)).map((r) => ({
        code: r.code,
        senderId: r.senderId,
        senderName: r.senderName ?? null,
        username: r.username ?? null,
        createdAt: r.createdAt,
        expiresAt: r.expiresAt,
      })),
      allowed: await ctx.store.channels.allowed(channel),
    }),
  });
  const approve = defineMethod({
    name: `${channel}.pairing.approve`,
    scope: "pairing",
    summary: `Let a ${label} sender talk to the agent (the code they were given).`,
    params: z.strictObject({ code }),
    available,
    unavailableReason,
    handler: async (p, ctx, caller) => {
      const r = await ctx.store.channels.approvePairing(channel, p.code, caller.clientId);
      if (!r) {
        throw invalidRequest(`no pending ${label} pairing request with code ${p.code}`, {
          code: "PAIRING_CODE_UNKNOWN",
        });
      }
      ctx.log.info("channel: sender approved", { channel, senderId: r.entry.senderId });
      ctx.broadcast("channel.pairing.resolved", {
        channel,
        code: r.request.code,
        senderId: r.entry.senderId,
        decision: "approved",
      });
      // Tell them; the approval stands even when this fails.
      let notified = true;
      await ctx.channels.get(channel)?.send(
        r.request.chatId,
        "You're approved. Say hello!",
        { accountId: r.request.accountId },
      ).catch((e) => {
        notified = false;
        ctx.log.warn("channel: could not tell the sender", { channel, error: e });
      });
      return { ok: true, channel, senderId: r.entry.senderId, approved: r.entry, notified };
    },
  });
  const reject = defineMethod({
    name: `${channel}.pairing.reject`,
    scope: "pairing",
    summary: `Refuse a ${label} pairing request.`,
    params: z.strictObject({ code }),
    available,
    unavailableReason,
    handler: async (p, ctx) => {
      const r = await ctx.store.channels.rejectPairing(channel, p.code);
      if (!r) {
        throw invalidRequest(`no pending ${label} pairing request with code ${p.code}`, {
          code: "PAIRING_CODE_UNKNOWN",
        });
      }
      ctx.broadcast("channel.pairing.resolved", {
        channel,
        code: r.code,
        senderId: r.senderId,
        decision: "rejected",
      });
      return { ok: true, channel, senderId: r.senderId };
    },
  });
  const remove = defineMethod({
    name: `${channel}.allow.remove`,
    scope: "admin",
    summary: `Withdraw a ${label} sender's approval.`,
    params: z.strictObject({ senderId: z.union([z.string().min(1).max(128), z.int()]) }),
    available,
    unavailableReason,
    handler: async (p, ctx) => {
      const removed = await ctx.store.channels.disallow(channel, String(p.senderId));
      return { ok: true, channel, senderId: String(p.senderId), removed };
    },
  });
  return [list, approve, reject, remove] as MethodDef[];
}
