/**
 * Skills: `skills.status`, `skills.bins`, `skills.install`, `skills.update`
 * (lib/skills/). Installing copies a local folder or downloads an https
 * `.tar.gz` pinned by its sha256; an installed skill is off until
 * `skills.update {skillKey, enabled: true}`.
 *
 * OpenClaw installs from ClawHub (`source: "clawhub"`), from chunked uploads
 * (`source: "upload"`) and runs dependency installers (`installId`); gw does
 * none of these: it has no registry client, and runs nothing at install time.
 * Skills are shared by every agent (one folder), so installs take no `agentId`.
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import { GatewayError, invalidRequest } from "../lib/protocol/errors.ts";
import type { GatewayContext } from "../lib/server/context.ts";
import { defaultAgentId } from "../lib/agent/runtime.ts";
import { parseSessionKey } from "../lib/store/sessions.ts";
import { workspaceDir } from "../lib/heartbeat.ts";
import {
  type InstallRequest,
  type InstallResult,
  SKILL_NAME,
  SkillInstallError,
  type SkillsStatus,
  type UpdateRequest,
  type UpdateResult,
} from "../lib/skills/mod.ts";

const nonEmpty = z.string().min(1);
const sha256 = z.string().regex(/^[0-9a-fA-F]{64}$/, "expected 64 hex digits (a sha256)");
const skillName = z.string().regex(SKILL_NAME, "expected a skill name (letters, digits, . _ -)");
const absolutePath = z.string().min(1).max(4096).refine(
  (p) => p.startsWith("/") || /^[A-Za-z]:[\\/]/.test(p),
  "expected an absolute path",
);
const url = z.string().min(1).max(4096);
const timeoutMs = z.int().min(1000).max(600_000);

/** The agent a status asks about: `agentId`, the agent of `sessionKey`, or the default. */
function agentOf(
  p: { agentId?: string | undefined; sessionKey?: string | undefined },
  ctx: GatewayContext,
): string {
  const cfg = ctx.config.config;
  const id = p.agentId ?? (p.sessionKey ? parseSessionKey(p.sessionKey)?.agentId : undefined) ??
    defaultAgentId(cfg);
  const known = cfg.agents.list.length ? cfg.agents.list.map((a) => a.id) : ["main"];
  if (!known.includes(id)) {
    throw invalidRequest(`unknown agent id: ${id}`, { code: "AGENT_NOT_FOUND" });
  }
  return id;
}

/** A skills failure as the protocol error: refusals are INVALID_REQUEST, network trouble UNAVAILABLE. */
function skillError(e: unknown): never {
  if (e instanceof SkillInstallError) {
    const unavailable = e.code === "SKILL_DOWNLOAD_FAILED" ||
      e.code === "SKILL_INSTALL_UNAVAILABLE";
    throw new GatewayError(unavailable ? "UNAVAILABLE" : "INVALID_REQUEST", e.message, {
      details: { code: e.code },
      ...(e.retryable ? { retryable: true } : {}),
    });
  }
  throw e;
}

/** `skills.status`: every skill, whether it is enabled and eligible, and what it misses. */
export const skillsStatus = defineMethod({
  name: "skills.status",
  scope: "read",
  summary: "Skills: enabled, eligible (bins on PATH, env set), source, missing requirements.",
  params: z.strictObject({ agentId: nonEmpty.optional(), sessionKey: nonEmpty.optional() }),
  handler: async (p, ctx): Promise<SkillsStatus> => {
    const agentId = agentOf(p, ctx);
    return await ctx.skills.status(agentId, workspaceDir(ctx.stateDir, ctx.config.config, agentId));
  },
});

/** `skills.bins`: the binaries skills name, so a node can say which it has. Node role only. */
export const skillsBins = defineMethod({
  name: "skills.bins",
  scope: "node",
  summary: "The binaries the installed skills need (for nodes).",
  params: z.strictObject({}),
  handler: async (_p, ctx): Promise<{ bins: string[] }> => ({ bins: await ctx.skills.bins() }),
});

/** `skills.install`: copy a local folder or download a pinned `.tar.gz`; the skill starts disabled. */
export const skillsInstall = defineMethod({
  name: "skills.install",
  scope: "admin",
  summary:
    "Install a skill from a local folder (path) or an https .tar.gz (url + sha256); off until enabled.",
  params: z.strictObject({
    name: skillName.optional(),
    path: absolutePath.optional(),
    url: url.optional(),
    sha256: sha256.optional(),
    force: z.boolean().optional(),
    timeoutMs: timeoutMs.optional(),
  }).refine((p) => (p.path === undefined) !== (p.url === undefined), {
    message: "give exactly one of path (a local folder) or url (an https .tar.gz)",
    path: ["path"],
  }).refine((p) => p.url === undefined || p.sha256 !== undefined, {
    message: "required with url: every download is pinned by its sha256",
    path: ["sha256"],
  }),
  handler: async (p, ctx): Promise<InstallResult> => {
    const req: InstallRequest = {};
    if (p.name !== undefined) req.name = p.name;
    if (p.path !== undefined) req.path = p.path;
    if (p.url !== undefined) req.url = p.url;
    if (p.sha256 !== undefined) req.sha256 = p.sha256;
    if (p.force !== undefined) req.force = p.force;
    if (p.timeoutMs !== undefined) req.timeoutMs = p.timeoutMs;
    try {
      return await ctx.skills.install(req);
    } catch (e) {
      return skillError(e);
    }
  },
});

/** `skills.update`: enable or disable a skill; re-install it from its source (a new sha256). */
export const skillsUpdate = defineMethod({
  name: "skills.update",
  scope: "admin",
  summary:
    "Enable or disable a skill, or re-install it from its recorded source (sha256, url, reinstall).",
  params: z.strictObject({
    skillKey: skillName,
    enabled: z.boolean().optional(),
    sha256: sha256.optional(),
    url: url.optional(),
    reinstall: z.boolean().optional(),
    timeoutMs: timeoutMs.optional(),
  }).refine((p) => p.url === undefined || p.sha256 !== undefined, {
    message: "required with url: every download is pinned by its sha256",
    path: ["sha256"],
  }),
  handler: async (p, ctx): Promise<UpdateResult> => {
    const req: UpdateRequest = { skillKey: p.skillKey };
    if (p.enabled !== undefined) req.enabled = p.enabled;
    if (p.sha256 !== undefined) req.sha256 = p.sha256;
    if (p.url !== undefined) req.url = p.url;
    if (p.reinstall !== undefined) req.reinstall = p.reinstall;
    if (p.timeoutMs !== undefined) req.timeoutMs = p.timeoutMs;
    try {
      return await ctx.skills.update(req);
    } catch (e) {
      return skillError(e);
    }
  },
});
