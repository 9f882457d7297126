/**
 * Device pairing: `device.pair.list`, `device.pair.approve`,
 * `device.pair.reject`, `device.pair.remove`, `device.token.rotate`,
 * `device.token.revoke`. Nobody grants more than they hold (GHSA-4jpw), and
 * nothing a device holds exceeds its approved baseline (GHSA-2pwv).
 *
 * @module
 */
import { z } from "zod";
import { type CallerInfo, defineMethod } from "../lib/server/method.ts";
import { GatewayError, invalidRequest } from "../lib/protocol/errors.ts";
import { ErrorCode } from "../lib/protocol/types.ts";
import type { GatewayContext } from "../lib/server/context.ts";
import {
  beyondCaller,
  intersect,
  mintToken,
  pairedView,
  pairRequestView,
} from "../lib/server/pairing.ts";

const requestId = z.string().min(1).max(128);
const deviceId = z.string().min(1).max(128);
const role = z.enum(["operator", "node"]);
const scopes = z.array(z.string().min(1).max(128)).max(64);

/** Refuse to hand out scopes the caller does not hold itself. */
function bounded(caller: CallerInfo, wanted: readonly string[], what: string): void {
  const missing = beyondCaller(wanted, caller.scopes);
  if (missing.length === 0) return;
  const v4 = caller.protocol >= 4;
  throw new GatewayError(
    v4 ? ErrorCode.FORBIDDEN : ErrorCode.INVALID_REQUEST,
    `${what} would grant ${missing.join(", ")}, which this connection does not hold`,
    {
      details: {
        code: "MISSING_SCOPE",
        missingScope: missing[0],
        requiredScopes: missing,
      },
    },
  );
}

function noDevice(id: string): never {
  throw invalidRequest(`unknown device: ${id} (device.pair.list shows paired devices)`, {
    code: "DEVICE_NOT_FOUND",
    deviceId: id,
  });
}

async function change(
  ctx: GatewayContext,
  id: string,
  fn: (d: NonNullable<Awaited<ReturnType<GatewayContext["store"]["devices"]["get"]>>>) => void,
) {
  for (let i = 0; i < 5; i++) {
    const cur = await ctx.store.devices.entry(id);
    if (!cur.value) noDevice(id);
    const next = structuredClone(cur.value);
    fn(next);
    if (await ctx.store.devices.put(cur, next)) return next;
  }
  throw new GatewayError(ErrorCode.UNAVAILABLE, "the device is changing; try again", {
    retryable: true,
  });
}

/** `device.pair.list`. */
export const devicePairList = defineMethod({
  name: "device.pair.list",
  scope: "pairing",
  summary: "Pending pairing requests and paired devices (with last seen).",
  params: z.looseObject({}),
  handler: async (_p, ctx) => ({
    pending: (await ctx.store.devices.requests()).map(pairRequestView),
    paired: (await ctx.store.devices.list()).sort((a, b) => a.createdAtMs - b.createdAtMs).map(
      pairedView,
    ),
  }),
});

/** `device.pair.approve`. */
export const devicePairApprove = defineMethod({
  name: "device.pair.approve",
  scope: "pairing",
  summary: "Approve a pairing request (only with scopes you hold yourself).",
  params: z.looseObject({ requestId }),
  handler: async (p, ctx, caller) => {
    const req = await ctx.store.devices.request(p.requestId);
    if (!req) {
      throw invalidRequest(`unknown or expired pairing request: ${p.requestId}`, {
        code: "PAIR_REQUEST_NOT_FOUND",
        requestId: p.requestId,
      });
    }
    bounded(caller, req.scopes, "approving this device");
    const device = await ctx.store.devices.approve(req, req.scopes, caller.clientId, Date.now());
    if (!device) {
      throw new GatewayError(ErrorCode.UNAVAILABLE, "the device is changing; try again", {
        retryable: true,
      });
    }
    ctx.broadcast("device.pair.resolved", {
      requestId: req.requestId,
      deviceId: req.deviceId,
      decision: "approved",
      ts: Date.now(),
    });
    ctx.log.info("device approved", { deviceId: req.deviceId, by: caller.clientId });
    return {
      requestId: req.requestId,
      deviceId: req.deviceId,
      decision: "approved",
      device: pairedView(device),
    };
  },
});

/** `device.pair.reject`. */
export const devicePairReject = defineMethod({
  name: "device.pair.reject",
  scope: "pairing",
  summary: "Reject a pairing request.",
  params: z.looseObject({ requestId }),
  handler: async (p, ctx) => {
    const req = await ctx.store.devices.request(p.requestId);
    if (!req) {
      throw invalidRequest(`unknown or expired pairing request: ${p.requestId}`, {
        code: "PAIR_REQUEST_NOT_FOUND",
        requestId: p.requestId,
      });
    }
    await ctx.store.devices.dropRequest(req.requestId);
    ctx.broadcast("device.pair.resolved", {
      requestId: req.requestId,
      deviceId: req.deviceId,
      decision: "rejected",
      ts: Date.now(),
    });
    return { requestId: req.requestId, deviceId: req.deviceId, decision: "rejected" };
  },
});

/** `device.pair.remove`: forget a device; its live sockets close at once. */
export const devicePairRemove = defineMethod({
  name: "device.pair.remove",
  scope: "pairing",
  summary: "Remove a paired device and every token it holds; its connections close.",
  params: z.looseObject({ deviceId }),
  handler: async (p, ctx) => {
    const cur = await ctx.store.devices.entry(p.deviceId);
    if (!cur.value) noDevice(p.deviceId);
    if (!(await ctx.store.devices.remove(cur))) {
      throw new GatewayError(ErrorCode.UNAVAILABLE, "the device is changing; try again", {
        retryable: true,
      });
    }
    const closed = ctx.closeDevice(p.deviceId, undefined, "device removed");
    return { ok: true, deviceId: p.deviceId, removed: true, closedConnections: closed };
  },
});

/** `device.token.rotate`: a new token; scopes ⊆ (caller's ∩ the device's baseline). */
export const deviceTokenRotate = defineMethod({
  name: "device.token.rotate",
  scope: "pairing",
  summary: "Issue a device a new token (scopes within yours and its approved baseline).",
  params: z.looseObject({ deviceId, role, scopes: scopes.optional() }),
  handler: async (p, ctx, caller) => {
    const device = await ctx.store.devices.get(p.deviceId);
    if (!device) noDevice(p.deviceId);
    if (!device.roles.includes(p.role)) {
      throw invalidRequest(`device ${p.deviceId} is not paired for role ${p.role}`, {
        code: "DEVICE_ROLE_NOT_PAIRED",
      });
    }
    const wanted = p.scopes ?? device.tokens[p.role]?.scopes ?? device.approvedScopes;
    const outside = wanted.filter((s) => !device.approvedScopes.includes(s));
    if (outside.length) {
      throw invalidRequest(
        `scopes outside the device's approved baseline: ${
          outside.join(", ")
        } (approve a new pairing request to widen it)`,
        { code: "SCOPES_OUTSIDE_BASELINE", scopes: outside },
      );
    }
    bounded(caller, wanted, "this token");
    const now = Date.now();
    const minted = await mintToken(p.role, intersect(wanted, device.approvedScopes), now);
    minted.record.rotatedAtMs = now;
    await change(ctx, p.deviceId, (d) => {
      d.tokens[p.role] = minted.record;
    });
    // Sockets that used the old token hold it no longer.
    ctx.closeDevice(p.deviceId, p.role, "device token rotated");
    return {
      deviceId: p.deviceId,
      role: p.role,
      token: minted.token,
      scopes: minted.record.scopes,
      rotatedAtMs: now,
    };
  },
});

/** `device.token.revoke`: the device's token stops working; its sockets close at once. */
export const deviceTokenRevoke = defineMethod({
  name: "device.token.revoke",
  scope: "pairing",
  summary: "Revoke a device's token for a role; its connections close.",
  params: z.looseObject({ deviceId, role }),
  handler: async (p, ctx, caller) => {
    const device = await ctx.store.devices.get(p.deviceId);
    if (!device) noDevice(p.deviceId);
    const t = device.tokens[p.role];
    if (!t) {
      throw invalidRequest(`device ${p.deviceId} has no ${p.role} token`, {
        code: "DEVICE_TOKEN_NOT_FOUND",
      });
    }
    // Revoking a token that carries more than you hold is as much power as minting it.
    bounded(caller, t.scopes, "revoking this token");
    const now = Date.now();
    await change(ctx, p.deviceId, (d) => {
      const rec = d.tokens[p.role];
      if (rec) rec.revokedAtMs = now;
    });
    const closed = ctx.closeDevice(p.deviceId, p.role, "device token revoked");
    return {
      ok: true,
      deviceId: p.deviceId,
      role: p.role,
      revokedAtMs: now,
      closedConnections: closed,
    };
  },
});
