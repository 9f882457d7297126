/**
 * Exec approvals: the policy of each execution host (`exec.approvals.get/set`,
 * `exec.approvals.node.get/set`) and the approval flow
 * (`exec.approval.request/resolve/waitDecision`).
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import { GatewayError, invalidRequest } from "../lib/protocol/errors.ts";
import { ErrorCode } from "../lib/protocol/types.ts";
import type { GatewayContext } from "../lib/server/context.ts";
import type { PolicyFile } from "../lib/store/exec.ts";
import { type Invocation, view } from "../lib/exec/approvals.ts";
import { CommandRefused, invocationOf } from "../lib/exec/invocation.ts";

const security = z.enum(["deny", "allowlist", "full"]);
const settings = {
  security: security.optional(),
  ask: z.enum(["off", "on-miss", "always"]).optional(),
  askFallback: security.optional(),
};
const allowEntry = z.looseObject({
  id: z.string().min(1).max(128),
  pattern: z.string().min(1).max(1024),
  argPattern: z.string().max(4096).optional(),
  addedAtMs: z.number(),
  expiresAtMs: z.number().optional(),
  addedBy: z.string().max(128).optional(),
  lastUsedAtMs: z.number().optional(),
});
const policyFile = z.strictObject({
  version: z.literal(1),
  defaults: z.strictObject(settings),
  agents: z.record(
    z.string().min(1).max(64),
    z.strictObject({ ...settings, allowlist: z.array(allowEntry).max(1000).optional() }),
  ),
});
const nodeId = z.string().min(1).max(128);

async function setPolicy(ctx: GatewayContext, host: string, file: unknown, baseHash: string) {
  const r = await ctx.store.exec.set(host, file as PolicyFile, baseHash);
  if (!r) {
    throw invalidRequest("the exec policy changed since you read it (baseHash); read it again", {
      code: "CONFLICT",
      currentHash: (await ctx.store.exec.get(host)).hash,
    });
  }
  return r;
}

/** `exec.approvals.get`: the gateway host's exec policy. */
export const execApprovalsGet = defineMethod({
  name: "exec.approvals.get",
  scope: "admin",
  summary: "The gateway host's exec policy {path, exists, hash, file}.",
  params: z.looseObject({}),
  handler: (_p, ctx) => ctx.store.exec.get("gateway"),
});

/** `exec.approvals.set`: replace the gateway host's policy (compare-and-set on baseHash). */
export const execApprovalsSet = defineMethod({
  name: "exec.approvals.set",
  scope: "admin",
  summary: "Replace the gateway host's exec policy (baseHash from exec.approvals.get).",
  params: z.looseObject({ file: policyFile, baseHash: z.string().min(1).max(128) }),
  handler: (p, ctx) => setPolicy(ctx, "gateway", p.file, p.baseHash),
});

/** `exec.approvals.node.get`. */
export const execApprovalsNodeGet = defineMethod({
  name: "exec.approvals.node.get",
  scope: "admin",
  summary: "A node host's exec policy.",
  params: z.looseObject({ nodeId }),
  handler: (p, ctx) => ctx.store.exec.get(`node:${p.nodeId}`),
});

/** `exec.approvals.node.set`. */
export const execApprovalsNodeSet = defineMethod({
  name: "exec.approvals.node.set",
  scope: "admin",
  summary: "Replace a node host's exec policy (baseHash).",
  params: z.looseObject({ nodeId, file: policyFile, baseHash: z.string().min(1).max(128) }),
  handler: (p, ctx) => setPolicy(ctx, `node:${p.nodeId}`, p.file, p.baseHash),
});

/** `exec.approval.request`: ask whether a command may run (the policy may answer at once). */
export const execApprovalRequest = defineMethod({
  name: "exec.approval.request",
  scope: "approvals",
  summary: "Ask to run a command: allowed or denied by policy at once, or pending for a person.",
  params: z.looseObject({
    command: z.string().min(1).max(10_000).optional(),
    commandArgv: z.array(z.string().max(10_000)).min(1).max(1000).optional(),
    cwd: z.string().min(1).max(4096).optional(),
    env: z.record(z.string().max(256), z.string().max(10_000)).optional(),
    nodeId: nodeId.optional(),
    sessionKey: z.string().max(512).optional(),
    agentId: z.string().min(1).max(64).default("main"),
    timeoutMs: z.int().min(1000).max(24 * 3_600_000).optional(),
  }).refine((p) => (p.command === undefined) !== (p.commandArgv === undefined), {
    message: "give command or commandArgv (one of them)",
    path: ["command"],
  }),
  handler: async (p, ctx) => {
    const cwd = p.cwd ?? ctx.stateDir;
    let inv: Invocation;
    try {
      inv = await invocationOf(p.commandArgv ?? p.command!, cwd, p.env ?? {});
    } catch (e) {
      if (e instanceof CommandRefused) {
        throw invalidRequest(e.message, {
          code: e.code,
          ...(e.reason ? { reason: e.reason } : {}),
        });
      }
      throw e;
    }
    const host = p.nodeId ? `node:${p.nodeId}` : "gateway";
    const v = await ctx.exec.check(host, p.agentId, inv);
    if (v !== "ask") {
      return { status: v === "allow" ? "allowed" : "denied", decidedBy: "policy" };
    }
    const req = ctx.exec.request(host, p.agentId, inv, {
      ...(p.sessionKey ? { sessionKey: p.sessionKey } : {}),
      ...(p.nodeId ? { nodeId: p.nodeId } : {}),
      ...(p.timeoutMs ? { timeoutMs: p.timeoutMs } : {}),
    });
    return { status: "pending", ...view(req) };
  },
});

function notFound(id: string): never {
  throw new GatewayError(
    ErrorCode.APPROVAL_NOT_FOUND,
    `no pending approval ${id} (unknown, decided or expired)`,
    {
      details: { code: "APPROVAL_NOT_FOUND", id },
    },
  );
}

/** `exec.approval.resolve`: a person's answer. */
export const execApprovalResolve = defineMethod({
  name: "exec.approval.resolve",
  scope: "approvals",
  summary: "Answer an approval: allow-once, allow-always (ttlMs to expire) or deny.",
  params: z.looseObject({
    id: z.string().min(1).max(128),
    decision: z.enum(["allow-once", "allow-always", "deny"]),
    ttlMs: z.int().min(1000).max(366 * 86_400_000).optional(),
  }),
  handler: async (p, ctx, caller) => {
    const ok = await ctx.exec.resolve(p.id, p.decision, caller.clientId, p.ttlMs);
    if (!ok) notFound(p.id);
    return { ok: true, id: p.id, decision: p.decision };
  },
});

/** `exec.approval.waitDecision`: the decision, or null after timeoutMs. */
export const execApprovalWaitDecision = defineMethod({
  name: "exec.approval.waitDecision",
  scope: "approvals",
  summary: "Wait for an approval's decision (null after timeoutMs).",
  params: z.looseObject({
    id: z.string().min(1).max(128),
    timeoutMs: z.int().min(0).max(3_600_000).default(30_000),
  }),
  handler: async (p, ctx) => {
    const r = await ctx.exec.waitDecision(p.id, p.timeoutMs);
    if (r === undefined) notFound(p.id);
    return r === null
      ? { id: p.id, decision: null }
      : { id: p.id, decision: r.decision, decidedBy: r.decidedBy, decidedAtMs: r.decidedAtMs };
  },
});
