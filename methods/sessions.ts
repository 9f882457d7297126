/**
 * Sessions: list, preview, patch, reset, delete, compact; and usage.
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import { invalidRequest } from "../lib/protocol/errors.ts";
import { sessionRow } from "../lib/agent/rows.ts";
import { DEFAULT_MODEL, splitModelRef } from "../lib/agent/models.ts";
import { messageText, preview, THINKING_LEVELS } from "../lib/store/sessions.ts";
import { hasScope } from "../lib/server/method.ts";
import { GatewayError } from "../lib/protocol/errors.ts";
import { ErrorCode } from "../lib/protocol/types.ts";
import { thinking } from "./chat.ts";
import { ProviderError } from "../lib/agent/types.ts";
import type { GatewayContext } from "../lib/server/context.ts";
import { canonicalSessionKey } from "./chat.ts";
import { dayOf, type UsageRow } from "../lib/store/usage.ts";

const key = z.string().trim().min(1).max(512);

function defaultModel(ctx: GatewayContext): string {
  return ctx.config.config.agents.defaults.model ?? DEFAULT_MODEL;
}

function rowOf(ctx: GatewayContext, e: Parameters<typeof sessionRow>[0]) {
  return sessionRow(e, ctx.agent.runsOf(e.key).length > 0, defaultModel(ctx));
}

/** `sessions.list`. */
export const sessionsList = defineMethod({
  name: "sessions.list",
  scope: "read",
  summary: "Sessions, most recent first (limit, offset, search, label, agentId, activeMinutes).",
  params: z.looseObject({
    limit: z.int().min(1).max(1000).default(100),
    offset: z.int().min(0).default(0),
    activeMinutes: z.number().positive().optional(),
    search: z.string().max(200).optional(),
    label: z.string().max(200).optional(),
    agentId: z.string().max(64).optional(),
    includeDerivedTitles: z.boolean().optional(),
    includeLastMessage: z.boolean().optional(),
    /** false (default): hide archived sessions; true: only them; "all": both. */
    archived: z.union([z.boolean(), z.literal("all")]).default(false),
  }),
  handler: async (p, ctx) => {
    const now = Date.now();
    let all = await ctx.store.sessions.list();
    if (p.archived !== "all") all = all.filter((e) => (e.archivedAt !== undefined) === p.archived);
    if (p.agentId) all = all.filter((e) => e.agentId === p.agentId!.toLowerCase());
    if (p.label !== undefined) all = all.filter((e) => e.label === p.label);
    if (p.activeMinutes !== undefined) {
      all = all.filter((e) => now - e.updatedAt <= p.activeMinutes! * 60_000);
    }
    if (p.search) {
      const q = p.search.toLowerCase();
      all = all.filter((e) =>
        [e.key, e.label, e.derivedTitle, e.lastMessagePreview].some((s) =>
          s?.toLowerCase().includes(q)
        )
      );
    }
    all.sort((a, b) => b.updatedAt - a.updatedAt || a.key.localeCompare(b.key));
    const page = all.slice(p.offset, p.offset + p.limit);
    const hasMore = p.offset + page.length < all.length;
    const cfg = ctx.config.config;
    const ref = splitModelRef(defaultModel(ctx));
    return {
      ts: now,
      path: ctx.store.path,
      count: page.length,
      totalCount: all.length,
      limitApplied: p.limit,
      nextOffset: hasMore ? p.offset + page.length : null,
      hasMore,
      defaults: {
        modelProvider: ref.providerId,
        model: ref.model,
        thinkingLevels: THINKING_LEVELS.map((id) => ({ id, label: id })),
        thinkingOptions: [...THINKING_LEVELS],
        thinkingDefault: cfg.agents.defaults.thinkingDefault,
      },
      sessions: page.map((e) => {
        const row = rowOf(ctx, e);
        if (p.includeDerivedTitles === false) delete row.derivedTitle;
        if (p.includeLastMessage === false) delete row.lastMessagePreview;
        return row;
      }),
    };
  },
});

/** `sessions.preview`: the last few messages of some sessions. */
export const sessionsPreview = defineMethod({
  name: "sessions.preview",
  scope: "read",
  summary: "The last messages of up to 64 sessions, as short text.",
  params: z.looseObject({
    keys: z.array(key).min(1).max(64),
    limit: z.int().min(1).max(50).default(12),
    maxChars: z.int().min(20).max(10_000).default(240),
  }),
  handler: async (p, ctx) => {
    const previews = [];
    for (const raw of p.keys) {
      const k = canonicalSessionKey(raw, ctx);
      const entry = await ctx.store.sessions.get(k);
      if (!entry) {
        previews.push({ key: raw, status: "missing", items: [] });
        continue;
      }
      const msgs = await ctx.store.sessions.messages(entry.sessionId, { limit: p.limit });
      const items = msgs.map(({ message: m }) => ({
        role: m.role,
        text: preview(messageText(m), p.maxChars),
        timestamp: m.timestamp,
      })).filter((i) => i.text);
      previews.push({ key: raw, status: items.length ? "ok" : "empty", items });
    }
    return { ts: Date.now(), previews };
  },
});

/** `sessions.patch`: change a session's label, model, thinking level, ... (null clears). */
export const sessionsPatch = defineMethod({
  name: "sessions.patch",
  // As OpenClaw: write for a session's own settings; verboseLevel and
  // responseUsage (what replies reveal) need admin, checked below.
  scope: "write",
  summary:
    "Change a session's label, model, thinkingLevel, archived, pinned (write); verboseLevel, responseUsage (admin).",
  params: z.looseObject({
    key,
    label: z.string().trim().min(1).max(200).nullable().optional(),
    model: z.string().trim().min(1).max(200).nullable().optional(),
    thinkingLevel: thinking.nullable().optional(),
    verboseLevel: z.enum(["off", "on"]).nullable().optional(),
    responseUsage: z.enum(["off", "tokens", "full"]).nullable().optional(),
    archived: z.boolean().optional(),
    pinned: z.boolean().optional(),
  }),
  handler: async (p, ctx, caller) => {
    const k = canonicalSessionKey(p.key, ctx);
    for (const f of ["verboseLevel", "responseUsage"] as const) {
      if (p[f] !== undefined && !hasScope(caller.scopes, "operator.admin")) {
        throw new GatewayError(
          caller.protocol >= 4 ? ErrorCode.FORBIDDEN : ErrorCode.INVALID_REQUEST,
          `missing scope: operator.admin (to change ${f})`,
          caller.protocol >= 4
            ? {
              details: {
                code: "MISSING_SCOPE",
                missingScope: "operator.admin",
                requiredScopes: ["operator.admin"],
              },
            }
            : {},
        );
      }
    }
    if (p.model) {
      const { providerId } = splitModelRef(p.model);
      const known = providerId in ctx.config.config.models.providers ||
        ["anthropic", "openai", "ollama", "llamacpp", "vllm"].includes(providerId);
      if (!known) {
        throw invalidRequest(
          `invalid sessions.patch params: params.model: unknown provider '${providerId}' (configure models.providers.${providerId})`,
          { code: "UNKNOWN_PROVIDER", provider: providerId },
        );
      }
    }
    await ctx.store.sessions.ensure(k, ctx.agent.agentIdOf(k));
    const entry = await ctx.store.sessions.update(k, (e) => {
      for (
        const f of ["label", "model", "thinkingLevel", "verboseLevel", "responseUsage"] as const
      ) {
        const v = p[f];
        if (v === null) delete e[f];
        else if (v !== undefined) (e as unknown as Record<string, unknown>)[f] = v;
      }
      if (p.archived !== undefined) {
        if (p.archived) e.archivedAt = e.archivedAt ?? Date.now();
        else delete e.archivedAt;
      }
      if (p.pinned !== undefined) {
        if (p.pinned) e.pinnedAt = e.pinnedAt ?? Date.now();
        else delete e.pinnedAt;
      }
      e.updatedAt = Math.max(e.updatedAt, Date.now());
      return e;
    });
    const row = rowOf(ctx, entry!);
    ctx.broadcast("sessions.changed", {
      sessionKey: k,
      agentId: entry!.agentId,
      reason: "patch",
      session: row,
    });
    return { ok: true, key: k, entry: row };
  },
});

/** `sessions.reset`: a new transcript for the same key (settings kept). */
export const sessionsReset = defineMethod({
  name: "sessions.reset",
  scope: "admin",
  summary: "Start a session over: new transcript, settings kept; aborts its runs.",
  params: z.looseObject({ key, reason: z.string().max(200).optional() }),
  handler: async (p, ctx) => {
    const k = canonicalSessionKey(p.key, ctx);
    ctx.agent.abort(k);
    const r = await ctx.agent.exclusive(k, () => ctx.store.sessions.reset(k));
    if (!r) throw invalidRequest(`no such session: ${k}`, { code: "SESSION_NOT_FOUND", key: k });
    await ctx.store.sessions.deleteTranscript(r.oldSessionId);
    const row = rowOf(ctx, r.entry);
    ctx.broadcast("sessions.changed", {
      sessionKey: k,
      agentId: r.entry.agentId,
      reason: "reset",
      session: row,
    });
    return { ok: true, key: k, entry: row };
  },
});

/** `sessions.delete`. */
export const sessionsDelete = defineMethod({
  name: "sessions.delete",
  scope: "admin",
  summary: "Delete a session (and its transcript unless deleteTranscript is false).",
  params: z.looseObject({ key, deleteTranscript: z.boolean().default(true) }),
  handler: async (p, ctx) => {
    const k = canonicalSessionKey(p.key, ctx);
    ctx.agent.abort(k);
    const gone = await ctx.agent.exclusive(
      k,
      () => ctx.store.sessions.delete(k, p.deleteTranscript),
    );
    if (gone) {
      ctx.broadcast("sessions.changed", {
        sessionKey: k,
        agentId: gone.agentId,
        reason: "deleted",
      });
    }
    return { ok: true, key: k, deleted: gone !== null };
  },
});

/** `sessions.compact`: summarise older messages with the model, keep the last `maxLines`. */
export const sessionsCompact = defineMethod({
  name: "sessions.compact",
  scope: "admin",
  summary: "Summarise a session's older messages with its model, keeping the last maxLines.",
  params: z.looseObject({ key, maxLines: z.int().min(1).max(10_000).default(40) }),
  handler: async (p, ctx) => {
    const k = canonicalSessionKey(p.key, ctx);
    if (!(await ctx.store.sessions.get(k))) {
      throw invalidRequest(`no such session: ${k}`, { code: "SESSION_NOT_FOUND", key: k });
    }
    try {
      const r = await ctx.agent.compact(k, p.maxLines);
      return { ok: true, key: k, ...r };
    } catch (e) {
      // The summary is a model call: its failure is the provider's, said plainly.
      throw new GatewayError(ErrorCode.UNAVAILABLE, `compaction failed: ${(e as Error).message}`, {
        details: {
          code: "COMPACTION_FAILED",
          ...(e instanceof ProviderError ? { kind: e.kind } : {}),
        },
        ...(e instanceof ProviderError && e.retryable ? { retryable: true } : {}),
        ...(e instanceof ProviderError && e.retryAfterMs !== undefined
          ? { retryAfterMs: e.retryAfterMs }
          : {}),
      });
    }
  },
});

function emptyTotals() {
  return {
    input: 0,
    output: 0,
    cacheRead: 0,
    cacheWrite: 0,
    totalTokens: 0,
    totalCost: 0,
    inputCost: 0,
    outputCost: 0,
    cacheReadCost: 0,
    cacheWriteCost: 0,
    missingCostEntries: 0,
  };
}

function addRow(t: ReturnType<typeof emptyTotals>, r: UsageRow): void {
  t.input += r.input;
  t.output += r.output;
  t.cacheRead += r.cacheRead;
  t.cacheWrite += r.cacheWrite;
  t.totalTokens += r.input + r.output + r.cacheRead + r.cacheWrite;
  t.totalCost += r.cost;
  t.inputCost += r.inputCost;
  t.outputCost += r.outputCost;
  t.cacheReadCost += r.cacheReadCost;
  t.cacheWriteCost += r.cacheWriteCost;
  t.missingCostEntries += r.missingCost;
}

/** `usage.cost`: tokens and cost by day, model and agent over the last `days` (UTC days). */
export const usageCost = defineMethod({
  name: "usage.cost",
  scope: "read",
  summary: "Tokens and cost by day, model, agent and session (days, default 30).",
  params: z.looseObject({ days: z.int().min(1).max(366).default(30) }),
  handler: async (p, ctx) => {
    const now = Date.now();
    const days: string[] = [];
    for (let i = p.days - 1; i >= 0; i--) days.push(dayOf(now - i * 86_400_000));
    const rows = await ctx.store.usage.rows(days[0]!, days[days.length - 1]!);
    const daily = new Map(days.map((d) => [d, { date: d, ...emptyTotals() }]));
    const byModel = new Map<string, ReturnType<typeof emptyTotals> & { model: string }>();
    const byAgent = new Map<string, ReturnType<typeof emptyTotals> & { agentId: string }>();
    const totals = emptyTotals();
    for (const r of rows) {
      addRow(daily.get(r.day)!, r);
      const m = byModel.get(r.model) ?? { model: r.model, ...emptyTotals() };
      addRow(m, r);
      byModel.set(r.model, m);
      const a = byAgent.get(r.agentId) ?? { agentId: r.agentId, ...emptyTotals() };
      addRow(a, r);
      byAgent.set(r.agentId, a);
      addRow(totals, r);
    }
    const sessions = (await ctx.store.sessions.list()).filter((e) =>
      e.inputTokens + e.outputTokens > 0
    )
      .sort((a, b) => b.costUsd - a.costUsd || b.outputTokens - a.outputTokens).slice(0, 50)
      .map((e) => ({
        key: e.key,
        agentId: e.agentId,
        input: e.inputTokens,
        output: e.outputTokens,
        cacheRead: e.cacheRead,
        cacheWrite: e.cacheWrite,
        totalCost: e.costUsd,
      }));
    return {
      updatedAt: now,
      days: p.days,
      daily: [...daily.values()],
      totals,
      byModel: [...byModel.values()],
      byAgent: [...byAgent.values()],
      bySession: sessions,
    };
  },
});

/** `usage.status`: per provider, what was used today and this month. */
export const usageStatus = defineMethod({
  name: "usage.status",
  scope: "read",
  summary: "Per provider: tokens and cost today and over the last 30 days.",
  params: z.looseObject({}),
  handler: async (_p, ctx) => {
    const now = Date.now();
    const today = dayOf(now);
    const rows = await ctx.store.usage.rows(dayOf(now - 29 * 86_400_000), today);
    const providers = new Map<
      string,
      {
        provider: string;
        today: ReturnType<typeof emptyTotals>;
        last30Days: ReturnType<typeof emptyTotals>;
      }
    >();
    for (const r of rows) {
      const id = splitModelRef(r.model).providerId;
      const p = providers.get(id) ??
        { provider: id, today: emptyTotals(), last30Days: emptyTotals() };
      addRow(p.last30Days, r);
      if (r.day === today) addRow(p.today, r);
      providers.set(id, p);
    }
    return { updatedAt: now, providers: [...providers.values()] };
  },
});
