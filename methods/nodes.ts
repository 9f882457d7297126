/**
 * Nodes: machines that joined as role `node` (paired devices) and run
 * commands for the gateway. `node.invoke` reaches one node; `system.run` on a
 * node goes through the exec approvals of that node's host policy first, and
 * the node is sent exactly the approved binary, args, cwd and env.
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import { GatewayError, invalidRequest } from "../lib/protocol/errors.ts";
import { ErrorCode } from "../lib/protocol/types.ts";
import type { GatewayContext } from "../lib/server/context.ts";
import { runOnNode } from "../lib/exec/remote.ts";
import { pairRequestView } from "../lib/server/pairing.ts";
import type { PairedDevice } from "../lib/store/devices.ts";

const nodeId = z.string().min(1).max(128);
const DEFAULT_INVOKE_TIMEOUT_MS = 30_000;

function nodeView(d: PairedDevice | null, ctx: GatewayContext, id: string) {
  const live = ctx.nodes.get(id);
  return {
    nodeId: id,
    displayName: live?.displayName ?? d?.displayName ?? null,
    platform: live?.platform ?? d?.platform ?? null,
    commands: live?.commands ?? d?.approvedCommands ?? [],
    approvedCommands: d?.approvedCommands ?? [],
    caps: live?.caps ?? [],
    connected: live !== undefined,
    connectedAtMs: live?.connectedAtMs ?? null,
    lastSeenAtMs: d?.lastSeenAtMs ?? null,
    remoteIp: live?.remoteIp ?? d?.lastSeenIp ?? null,
    paired: d !== null,
  };
}

/** `node.list`: paired nodes, connected or not. */
export const nodeList = defineMethod({
  name: "node.list",
  scope: "read",
  summary: "Paired nodes, whether connected, their commands and last seen.",
  params: z.looseObject({}),
  handler: async (_p, ctx) => {
    const paired = (await ctx.store.devices.list()).filter((d) => d.roles.includes("node"));
    const ids = new Set([
      ...paired.map((d) => d.deviceId),
      ...ctx.nodes.list().map((n) => n.nodeId),
    ]);
    return {
      nodes: [...ids].map((id) => nodeView(paired.find((d) => d.deviceId === id) ?? null, ctx, id)),
    };
  },
});

/** `node.describe`. */
export const nodeDescribe = defineMethod({
  name: "node.describe",
  scope: "read",
  summary: "One node: commands, caps, connection, last seen.",
  params: z.looseObject({ nodeId }),
  handler: async (p, ctx) => {
    const d = await ctx.store.devices.get(p.nodeId);
    if ((!d || !d.roles.includes("node")) && !ctx.nodes.get(p.nodeId)) {
      throw invalidRequest(`unknown node: ${p.nodeId}`, {
        code: "NODE_NOT_FOUND",
        nodeId: p.nodeId,
      });
    }
    return nodeView(d, ctx, p.nodeId);
  },
});

/** `node.rename`. */
export const nodeRename = defineMethod({
  name: "node.rename",
  scope: "pairing",
  summary: "Give a node a display name.",
  params: z.looseObject({ nodeId, displayName: z.string().trim().min(1).max(128) }),
  handler: async (p, ctx) => {
    for (let i = 0; i < 5; i++) {
      const cur = await ctx.store.devices.entry(p.nodeId);
      if (!cur.value || !cur.value.roles.includes("node")) {
        throw invalidRequest(`unknown node: ${p.nodeId}`, {
          code: "NODE_NOT_FOUND",
          nodeId: p.nodeId,
        });
      }
      if (await ctx.store.devices.put(cur, { ...cur.value, displayName: p.displayName })) {
        return { ok: true, nodeId: p.nodeId, displayName: p.displayName };
      }
    }
    throw new GatewayError(ErrorCode.UNAVAILABLE, "the node is changing; try again", {
      retryable: true,
    });
  },
});

/** In-flight and recent invocations by idempotencyKey (5 minutes). */
const invocations = new Map<string, { at: number; result: Promise<unknown> }>();

/** `node.invoke`: run a command on a node (system.run asks for approval first). */
export const nodeInvoke = defineMethod({
  name: "node.invoke",
  scope: "write",
  summary: "Invoke a command on a node; system.run goes through exec approvals.",
  params: z.looseObject({
    nodeId,
    command: z.string().min(1).max(128),
    params: z.record(z.string(), z.unknown()).optional(),
    timeoutMs: z.int().min(100).max(3_600_000).default(DEFAULT_INVOKE_TIMEOUT_MS),
    idempotencyKey: z.string().min(1).max(256),
    agentId: z.string().min(1).max(64).default("main"),
    sessionKey: z.string().max(512).optional(),
  }),
  handler: async (p, ctx) => {
    const now = Date.now();
    for (const [k, v] of invocations) if (now - v.at > 5 * 60_000) invocations.delete(k);
    const prior = invocations.get(`${p.nodeId}:${p.idempotencyKey}`);
    if (prior) return { ...(await prior.result as object), cached: true };
    const work = (async () => {
      if (p.command !== "system.run") {
        const payload = await ctx.nodes.invoke(p.nodeId, p.command, p.params ?? {}, p.timeoutMs);
        return { ok: true, nodeId: p.nodeId, command: p.command, payload };
      }
      const payload = await runOnNode(
        { nodes: ctx.nodes, approvals: ctx.exec },
        p.nodeId,
        p.params ?? {},
        p.timeoutMs,
        p.agentId,
        p.sessionKey,
      );
      return { ok: true, nodeId: p.nodeId, command: "system.run", payload };
    })();
    invocations.set(`${p.nodeId}:${p.idempotencyKey}`, { at: now, result: work });
    try {
      return await work;
    } catch (e) {
      invocations.delete(`${p.nodeId}:${p.idempotencyKey}`);
      throw e;
    }
  },
});

/** `node.invoke.result`: a node answers an invocation (node role only). */
export const nodeInvokeResult = defineMethod({
  name: "node.invoke.result",
  scope: "node",
  summary: "A node's answer to node.invoke.request (node role only).",
  params: z.looseObject({
    id: z.string().min(1).max(128),
    nodeId: z.string().max(128).optional(),
    ok: z.boolean(),
    payload: z.unknown().optional(),
    error: z.looseObject({
      code: z.string().max(128).optional(),
      message: z.string().max(4000).optional(),
    })
      .optional(),
  }),
  handler: (p, _ctx, caller, _req) => {
    const nodeId = caller.deviceId;
    if (!nodeId) throw invalidRequest("node.invoke.result needs a paired node");
    const matched = _ctx.nodes.result(nodeId, p.id, p.ok, p.payload, p.error);
    return { ok: true, matched };
  },
});

/** `node.event`: a node reports something (node role only); logged. */
export const nodeEvent = defineMethod({
  name: "node.event",
  scope: "node",
  summary: "A node reports an event (node role only).",
  params: z.looseObject({ event: z.string().min(1).max(128), payload: z.unknown().optional() }),
  handler: (p, ctx, caller) => {
    ctx.log.debug("node event", { nodeId: caller.deviceId, event: p.event });
    return { ok: true };
  },
});

/** `node.pair.list`: pending node requests and paired nodes. */
export const nodePairList = defineMethod({
  name: "node.pair.list",
  scope: "pairing",
  summary: "Pending node pairing requests and paired nodes.",
  params: z.looseObject({}),
  handler: async (_p, ctx) => ({
    pending: (await ctx.store.devices.requests()).filter((r) => r.role === "node").map(
      pairRequestView,
    ),
    paired: (await ctx.store.devices.list()).filter((d) => d.roles.includes("node")).map((d) =>
      nodeView(d, ctx, d.deviceId)
    ),
  }),
});

/** `node.pair.approve`: a node that offers system.run needs admin to approve. */
export const nodePairApprove = defineMethod({
  name: "node.pair.approve",
  scope: "pairing",
  summary: "Approve a node (one offering system.run needs admin).",
  params: z.looseObject({ requestId: z.string().min(1).max(128) }),
  handler: async (p, ctx, caller) => {
    const req = await ctx.store.devices.request(p.requestId);
    if (!req || req.role !== "node") {
      throw invalidRequest(`unknown or expired node pairing request: ${p.requestId}`, {
        code: "PAIR_REQUEST_NOT_FOUND",
        requestId: p.requestId,
      });
    }
    if ((req.commands ?? []).includes("system.run") && !caller.scopes.has("operator.admin")) {
      throw new GatewayError(
        caller.protocol >= 4 ? ErrorCode.FORBIDDEN : ErrorCode.INVALID_REQUEST,
        "approving a node that offers system.run needs operator.admin",
        {
          details: {
            code: "MISSING_SCOPE",
            missingScope: "operator.admin",
            requiredScopes: ["operator.admin"],
          },
        },
      );
    }
    const d = await ctx.store.devices.approve(req, req.scopes, caller.clientId, Date.now());
    if (!d) {
      throw new GatewayError(ErrorCode.UNAVAILABLE, "the node is changing; try again", {
        retryable: true,
      });
    }
    ctx.broadcast("node.pair.resolved", {
      requestId: req.requestId,
      nodeId: req.deviceId,
      decision: "approved",
      ts: Date.now(),
    });
    return {
      requestId: req.requestId,
      nodeId: req.deviceId,
      decision: "approved",
      node: nodeView(d, ctx, d.deviceId),
    };
  },
});

/** `node.pair.reject`. */
export const nodePairReject = defineMethod({
  name: "node.pair.reject",
  scope: "pairing",
  summary: "Reject a node pairing request.",
  params: z.looseObject({ requestId: z.string().min(1).max(128) }),
  handler: async (p, ctx) => {
    const req = await ctx.store.devices.request(p.requestId);
    if (!req || req.role !== "node") {
      throw invalidRequest(`unknown or expired node pairing request: ${p.requestId}`, {
        code: "PAIR_REQUEST_NOT_FOUND",
        requestId: p.requestId,
      });
    }
    await ctx.store.devices.dropRequest(req.requestId);
    ctx.broadcast("node.pair.resolved", {
      requestId: req.requestId,
      nodeId: req.deviceId,
      decision: "rejected",
      ts: Date.now(),
    });
    return { requestId: req.requestId, nodeId: req.deviceId, decision: "rejected" };
  },
});
