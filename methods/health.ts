/**
 * Health and status: `health`, `status`, `system-presence`, `last-heartbeat`,
 * `set-heartbeats`, `system-event`, `wake`.
 *
 * @module
 */
import { z } from "zod";
import { DEFAULT_MODEL } from "../lib/agent/models.ts";
import { defineMethod, type RawJson } from "../lib/server/method.ts";
import { heartbeatSettings } from "../lib/heartbeat.ts";
import type { HeartbeatRecord, PresenceEntry, StatusResult } from "../lib/protocol/types.ts";
import { invalidRequest } from "../lib/protocol/errors.ts";
import { defaultAgentId } from "../lib/agent/runtime.ts";
import { canonicalKey, SessionKeyError } from "../lib/agent/session_keys.ts";
import { parseSessionKey } from "../lib/store/sessions.ts";

const empty = z.strictObject({});

/** `health`: the cached health snapshot; `probe: true` recomputes it. Needs no scope. */
export const health = defineMethod({
  name: "health",
  scope: "none",
  summary: "Gateway health snapshot (probe: true recomputes it).",
  // Extra fields are ignored, as the reference gateway does.
  params: z.looseObject({ probe: z.boolean().optional() }),
  handler: (p, ctx): RawJson => ctx.health(p.probe === true),
});

/** `status`: runtime figures for operators. */
export const status = defineMethod({
  name: "status",
  scope: "read",
  summary: "Runtime status: uptime, memory, connections, heartbeats, queued events.",
  params: z.looseObject({}),
  handler: async (_p, ctx): Promise<StatusResult> => {
    const cfg = ctx.config.config;
    const agents = heartbeatSettings(cfg);
    const defaultAgentId = agents[0]?.agentId ?? "main";
    const mem = Deno.memoryUsage();
    const queued = await ctx.store.systemEvents(`agent:${defaultAgentId}:main`);
    const now = Date.now();
    const all = (await ctx.store.sessions.list()).sort((a, b) => b.updatedAt - a.updatedAt);
    const recentOf = (list: typeof all) =>
      list.slice(0, 10).map((e) => ({
        key: e.key,
        updatedAt: e.updatedAt,
        age: now - e.updatedAt,
      }));
    return {
      runtimeVersion: ctx.version,
      uptimeMs: ctx.uptimeMs(),
      pid: Deno.pid,
      heartbeat: { enabled: ctx.heartbeats.enabled, defaultAgentId, agents },
      channelSummary: [],
      queuedSystemEvents: queued.map((e) => e.text),
      sessions: {
        paths: [ctx.store.path],
        count: all.length,
        defaults: { model: cfg.agents.defaults.model ?? DEFAULT_MODEL },
        recent: recentOf(all),
        byAgent: agents.map((a) => {
          const mine = all.filter((e) => e.agentId === a.agentId);
          return {
            agentId: a.agentId,
            path: ctx.store.path,
            count: mine.length,
            recent: recentOf(mine),
          };
        }),
      },
      connections: ctx.connectionCounts(),
      eventLoop: ctx.eventLoop(),
      processMemory: {
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        heapTotalBytes: mem.heapTotal,
      },
    };
  },
});

/** `system-presence`: who is connected, the gateway first. */
export const systemPresence = defineMethod({
  name: "system-presence",
  scope: "read",
  summary: "The presence list: the gateway and every connected client.",
  params: z.looseObject({}),
  handler: (_p, ctx): PresenceEntry[] => ctx.presence(),
});

/** `last-heartbeat`: the last heartbeat record, or null before the first. */
export const lastHeartbeat = defineMethod({
  name: "last-heartbeat",
  scope: "read",
  summary: "The last heartbeat run, or null.",
  params: empty,
  handler: (_p, ctx): Promise<HeartbeatRecord | null> => ctx.store.lastHeartbeat(),
});

/** `set-heartbeats`: switch heartbeats on or off; persists across restarts. */
export const setHeartbeats = defineMethod({
  name: "set-heartbeats",
  scope: "admin",
  summary: "Turn heartbeats on or off (persists).",
  params: z.strictObject({ enabled: z.boolean() }),
  handler: async (p, ctx) => {
    await ctx.store.setHeartbeatsEnabled(p.enabled);
    ctx.heartbeats.configure(ctx.config.config, p.enabled);
    ctx.health(true);
    return { ok: true as const, enabled: p.enabled };
  },
});

const text = (max: number) => z.string().max(max);

/** `system-event`: queue a note for the main session's next turn and update presence. */
export const systemEvent = defineMethod({
  name: "system-event",
  scope: "admin",
  summary: "Queue a system event for the main session and update the sender's presence.",
  params: z.strictObject({
    text: z.string().trim().min(1).max(4000),
    sessionKey: text(512).optional(),
    deviceId: text(128).optional(),
    instanceId: text(128).optional(),
    host: text(256).optional(),
    ip: text(64).optional(),
    mode: text(32).optional(),
    version: text(128).optional(),
    platform: text(128).optional(),
    deviceFamily: text(64).optional(),
    modelIdentifier: text(128).optional(),
    lastInputSeconds: z.number().min(0).optional(),
    reason: text(64).optional(),
    tags: z.array(text(64)).max(32).optional(),
  }),
  handler: async (p, ctx) => {
    const { text: note, sessionKey, ...who } = p;
    const key = sessionKey ?? `agent:${ctx.config.config.agents.list[0]?.id ?? "main"}:main`;
    await ctx.store.enqueueSystemEvent(key, note);
    const id = who.instanceId ?? who.deviceId ?? who.host;
    if (id !== undefined) {
      const entry: PresenceEntry = {
        ts: Date.now(),
        text: note,
        reason: who.reason ?? "system-event",
      };
      for (const [k, v] of Object.entries(who)) {
        if (v !== undefined) (entry as unknown as Record<string, unknown>)[k] = v;
      }
      ctx.upsertPresence(id, entry);
    }
    return { ok: true as const };
  },
});

/**
 * `wake`: queue `text` as a system event for a session (default: the agent's
 * main session) and, with mode `now`, run a heartbeat there at once (in the
 * background; the `heartbeat` event reports it). With `next-heartbeat` the
 * next scheduled heartbeat (or turn) picks the event up.
 */
export const wake = defineMethod({
  name: "wake",
  scope: "write",
  summary: "Queue a system event for the main session; mode now runs a heartbeat at once.",
  // OpenClaw's WakeParamsSchema allows extra fields.
  params: z.looseObject({
    mode: z.enum(["now", "next-heartbeat"]),
    text: z.string().trim().min(1).max(4000),
    sessionKey: text(512).min(1).optional(),
    agentId: text(64).min(1).optional(),
  }),
  handler: async (p, ctx) => {
    const cfg = ctx.config.config;
    let key: string | undefined;
    if (p.sessionKey !== undefined) {
      try {
        key = canonicalKey(p.sessionKey, p.agentId?.toLowerCase() ?? defaultAgentId(cfg));
      } catch (e) {
        if (e instanceof SessionKeyError) throw invalidRequest(`params.sessionKey: ${e.message}`);
        throw e;
      }
    }
    const owner = key ? parseSessionKey(key)?.agentId : undefined;
    if (p.agentId !== undefined && owner !== undefined && owner !== p.agentId.toLowerCase()) {
      throw invalidRequest(
        "wake agentId contradicts the agent that owns sessionKey; pass a single canonical wake target",
      );
    }
    const wanted = owner ?? p.agentId?.toLowerCase() ?? defaultAgentId(cfg).toLowerCase();
    const known = cfg.agents.list.length ? cfg.agents.list.map((a) => a.id) : ["main"];
    const agentId = known.find((id) => id.toLowerCase() === wanted);
    if (agentId === undefined) {
      throw invalidRequest(`unknown agent id: ${wanted}`, { code: "AGENT_NOT_FOUND" });
    }
    const sessionKey = key ?? `agent:${agentId}:main`;
    await ctx.store.enqueueSystemEvent(sessionKey, p.text);
    if (p.mode === "now") {
      ctx.heartbeats.beat(agentId, { sessionKey, reason: "wake" }).catch((e) =>
        ctx.log.warn("wake: heartbeat failed", { error: e })
      );
    }
    return { ok: true as const };
  },
});
