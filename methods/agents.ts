/**
 * `models.list`, `agents.list`, `agent.identity.get`: what the config says
 * about models and agents.
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import { GatewayError } from "../lib/protocol/errors.ts";
import { ErrorCode } from "../lib/protocol/types.ts";
import type { AgentEntry, AgentIdentity, ModelEntry } from "../lib/protocol/types.ts";
import type { GwConfig } from "../lib/config/schema.ts";

const DEFAULT_NAME = "Assistant";

interface ResolvedAgent {
  id: string;
  name: string | undefined;
  avatar: string | undefined;
  model: string | undefined;
  isDefault: boolean;
}

/** The configured agents, or the implicit `main` agent when none are. */
export function resolveAgents(config: GwConfig): ResolvedAgent[] {
  const list = config.agents.list;
  if (list.length === 0) {
    return [{
      id: "main",
      name: undefined,
      avatar: undefined,
      model: config.agents.defaults.model,
      isDefault: true,
    }];
  }
  const defaultId = (list.find((a) => a.default) ?? list[0]!).id;
  return list.map((a) => ({
    id: a.id,
    name: a.name,
    avatar: a.avatar,
    model: a.model ?? config.agents.defaults.model,
    isDefault: a.id === defaultId,
  }));
}

function identityOf(a: ResolvedAgent): AgentIdentity {
  const name = a.name ?? DEFAULT_NAME;
  return {
    agentId: a.id,
    name,
    avatar: a.avatar ?? (name.codePointAt(0) ? String.fromCodePoint(name.codePointAt(0)!) : "A"),
    nameSource: a.name ? "config" : "default",
  };
}

/** `models.list`: the models configured under `models.providers` and as agent defaults. */
export const modelsList = defineMethod({
  name: "models.list",
  scope: "read",
  summary: "Models configured for the agents.",
  params: z.looseObject({}),
  handler: (_p, ctx): { models: ModelEntry[] } => {
    const cfg = ctx.config.config;
    const models: ModelEntry[] = [];
    const seen = new Set<string>();
    for (const [provider, p] of Object.entries(cfg.models.providers)) {
      for (const m of p.models) {
        const id = `${provider}/${m.id}`;
        if (seen.has(id)) continue;
        seen.add(id);
        const entry: ModelEntry = { id: m.id, name: m.name ?? m.id, provider };
        if (m.contextWindow !== undefined) entry.contextWindow = m.contextWindow;
        if (m.reasoning !== undefined) entry.reasoning = m.reasoning;
        models.push(entry);
      }
    }
    for (const a of resolveAgents(cfg)) {
      if (!a.model) continue;
      const slash = a.model.indexOf("/");
      const provider = slash > 0 ? a.model.slice(0, slash) : "anthropic";
      const id = slash > 0 ? a.model.slice(slash + 1) : a.model;
      if (seen.has(`${provider}/${id}`)) continue;
      seen.add(`${provider}/${id}`);
      models.push({ id, name: id, provider });
    }
    return { models };
  },
});

/** `agents.list`. */
export const agentsList = defineMethod({
  name: "agents.list",
  scope: "read",
  summary: "The configured agents and the default one.",
  params: z.looseObject({}),
  handler: (_p, ctx) => {
    const agents = resolveAgents(ctx.config.config);
    return {
      defaultId: agents.find((a) => a.isDefault)!.id,
      mainKey: "main",
      scope: "per-sender",
      agents: agents.map((a): AgentEntry => {
        const id = identityOf(a);
        const entry: AgentEntry = {
          id: a.id,
          name: id.name,
          default: a.isDefault,
          identity: { name: id.name, avatar: id.avatar },
        };
        if (a.model) entry.model = a.model;
        return entry;
      }),
    };
  },
});

/** `agent.identity.get`: name and avatar of an agent (by id or session key). */
export const agentIdentityGet = defineMethod({
  name: "agent.identity.get",
  scope: "read",
  summary: "An agent's name and avatar, by agentId or sessionKey.",
  params: z.strictObject({
    agentId: z.string().min(1).max(64).optional(),
    sessionKey: z.string().min(1).max(512).optional(),
  }),
  handler: (p, ctx): AgentIdentity => {
    const agents = resolveAgents(ctx.config.config);
    let id = p.agentId;
    if (!id && p.sessionKey?.startsWith("agent:")) id = p.sessionKey.split(":")[1];
    const agent = id ? agents.find((a) => a.id === id) : agents.find((a) => a.isDefault);
    if (!agent) {
      throw new GatewayError(ErrorCode.INVALID_REQUEST, `unknown agent: ${id}`, {
        details: { code: "UNKNOWN_AGENT_ID", agentId: id },
      });
    }
    return identityOf(agent);
  },
});
