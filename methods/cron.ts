/**
 * Scheduled jobs: `cron.list`, `cron.get`, `cron.status`, `cron.runs`,
 * `cron.add`, `cron.update`, `cron.remove`, `cron.run`. Shapes follow
 * OpenClaw's (REFERENCE.md 1.10 and its CLI).
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import { invalidRequest } from "../lib/protocol/errors.ts";
import type { GatewayContext } from "../lib/server/context.ts";
import type { CronJob } from "../lib/store/cron.ts";
import {
  atTime,
  nextRunAfter,
  type Schedule,
  ScheduleError,
  validateSchedule,
} from "../lib/cron/schedule.ts";
import { thinking } from "./chat.ts";

const jobId = z.string().min(1).max(128).regex(/^[^/\\]+$/, "must not contain / or \\");

const schedule = z.discriminatedUnion("kind", [
  z.looseObject({ kind: z.literal("at"), at: z.string().min(1).max(100) }),
  z.looseObject({
    kind: z.literal("every"),
    everyMs: z.int().min(1000).max(366 * 86_400_000),
    anchorMs: z.int().min(0).optional(),
  }),
  z.looseObject({
    kind: z.literal("cron"),
    expr: z.string().min(1).max(200),
    // "" (as some clients send for "none") means the gateway host's zone.
    tz: z.string().max(64).optional().transform((t) => t || undefined),
    staggerMs: z.int().min(0).max(86_400_000).optional(),
  }),
]);

const payload = z.discriminatedUnion("kind", [
  z.looseObject({ kind: z.literal("systemEvent"), text: z.string().min(1).max(10_000) }),
  z.looseObject({
    kind: z.literal("agentTurn"),
    message: z.string().min(1).max(100_000),
    model: z.string().min(1).max(200).optional(),
    thinking: thinking.optional(),
    timeoutSeconds: z.int().min(1).max(86_400).optional(),
  }),
]);

const delivery = z.discriminatedUnion("mode", [
  z.looseObject({ mode: z.literal("none") }),
  z.looseObject({
    mode: z.literal("announce"),
    channel: z.string().min(1).max(64).optional(),
    to: z.string().min(1).max(256).optional(),
    accountId: z.string().min(1).max(128).optional(),
    bestEffort: z.boolean().optional(),
  }),
]);

const sessionTarget = z.string().regex(
  /^(main|isolated|session:.+)$/,
  "expected main, isolated or session:<key>",
).max(600);

const jobFields = {
  name: z.string().trim().min(1).max(200),
  description: z.string().max(2000).optional(),
  enabled: z.boolean().optional(),
  agentId: z.string().min(1).max(64).optional(),
  schedule,
  sessionTarget: sessionTarget.optional(),
  wakeMode: z.enum(["now", "next-heartbeat"]).optional(),
  payload,
  delivery: delivery.optional(),
  deleteAfterRun: z.boolean().optional(),
};

/** The id of `{id}` or `{jobId}` (the schemas require one). */
function idOf(p: { id?: string | undefined; jobId?: string | undefined }): string {
  return (p.id ?? p.jobId)!;
}

/** `{id}` or `{jobId}` (OpenClaw's clients send either), plus `extra`. */
function byId<T extends z.ZodRawShape>(extra: T) {
  return z.looseObject({ id: jobId.optional(), jobId: jobId.optional(), ...extra }).refine(
    (p) => p.id !== undefined || p.jobId !== undefined,
    { message: "required (or jobId)", path: ["id"] },
  );
}

function notFound(id: string): never {
  throw invalidRequest(`cron job not found: ${id} (cron.list shows the ids)`, {
    code: "CRON_JOB_NOT_FOUND",
    jobId: id,
  });
}

/** Turn a schedule problem into INVALID_REQUEST naming the field. */
async function checkSchedule(s: Schedule, now: number): Promise<void> {
  try {
    await validateSchedule(s, now);
  } catch (e) {
    if (e instanceof ScheduleError) {
      throw invalidRequest(`invalid params: params.${e.field}: ${e.message}`, {
        code: "INVALID_SCHEDULE",
        field: e.field,
      });
    }
    throw e;
  }
}

/**
 * Fix what would otherwise drift: a one-shot's relative time (`20m`) becomes
 * an absolute one, and a cron expression without a zone gets the gateway
 * host's zone (OpenClaw's default) written into the job, so moving the host
 * to another zone later does not move the job.
 */
function fixSchedule(s: Schedule, now: number): Schedule {
  if (s.kind === "at") return { kind: "at", at: new Date(atTime(s.at, now)).toISOString() };
  if (s.kind === "cron" && !s.tz) return { ...s, tz: hostTimeZone() };
  return s;
}

/** The gateway host's IANA time zone (UTC when the system does not say). */
export function hostTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** The rules OpenClaw's CLI enforces, enforced here for every client. */
function checkTarget(job: Pick<CronJob, "sessionTarget" | "payload">): void {
  if (job.sessionTarget === "main" && job.payload.kind !== "systemEvent") {
    throw invalidRequest(
      "invalid params: params.sessionTarget: main jobs carry a systemEvent payload; an agentTurn runs isolated or in session:<key>",
      { code: "INVALID_SESSION_TARGET" },
    );
  }
  if (job.sessionTarget === "isolated" && job.payload.kind !== "agentTurn") {
    throw invalidRequest(
      "invalid params: params.sessionTarget: isolated jobs need an agentTurn payload (a systemEvent goes to main or session:<key>)",
      { code: "INVALID_SESSION_TARGET" },
    );
  }
}

async function withNext(job: CronJob, now: number): Promise<CronJob> {
  const next = job.enabled
    ? await nextRunAfter(job.schedule, now, { jobId: job.id, createdAtMs: job.createdAtMs, now })
    : null;
  const state = { ...job.state };
  if (next === null) delete state.nextRunAtMs;
  else state.nextRunAtMs = next;
  return { ...job, state };
}

/** A job as clients see it: the stored job plus `nextRunAtMs` at the top, as OpenClaw lists it. */
function view(job: CronJob): Record<string, unknown> {
  return { ...job, nextRunAtMs: job.state.nextRunAtMs ?? null };
}

/** Largest cron.list page (OpenClaw's CLI asks for 200). */
const LIST_PAGE_MAX = 200;

/** A revision of the job set: changes when a job is added, removed or edited (not when it runs). */
function inventoryRevision(jobs: CronJob[]): string {
  let h = 2166136261;
  for (const j of [...jobs].sort((a, b) => a.id.localeCompare(b.id))) {
    const s = `${j.id}:${j.updatedAtMs};`;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  }
  return `r${jobs.length}-${(h >>> 0).toString(36)}`;
}

function changed(ctx: GatewayContext, action: string, job: CronJob): void {
  ctx.broadcast("cron", { jobId: job.id, action, job: view(job) });
}

/** `cron.list`. */
export const cronList = defineMethod({
  name: "cron.list",
  scope: "read",
  summary: "Scheduled jobs, soonest first (includeDisabled to see all).",
  params: z.looseObject({
    includeDisabled: z.boolean().default(false),
    limit: z.int().min(1).max(LIST_PAGE_MAX).default(LIST_PAGE_MAX),
    offset: z.int().min(0).default(0),
  }),
  handler: async (p, ctx) => {
    const all = (await ctx.store.cron.list()).filter((j) => p.includeDisabled || j.enabled);
    all.sort((a, b) =>
      (a.state.nextRunAtMs ?? Infinity) - (b.state.nextRunAtMs ?? Infinity) ||
      a.name.localeCompare(b.name) || a.id.localeCompare(b.id)
    );
    const jobs = all.slice(p.offset, p.offset + p.limit);
    const hasMore = p.offset + jobs.length < all.length;
    // Paged as OpenClaw's CLI reads it: a page belongs to one inventory revision.
    return {
      jobs: jobs.map(view),
      total: all.length,
      offset: p.offset,
      limit: p.limit,
      hasMore,
      nextOffset: hasMore ? p.offset + jobs.length : null,
      snapshotRevision: inventoryRevision(all),
    };
  },
});

/** `cron.get`. */
export const cronGet = defineMethod({
  name: "cron.get",
  scope: "read",
  summary: "One scheduled job by id.",
  params: byId({}),
  handler: async (p, ctx) => {
    const id = idOf(p);
    const job = await ctx.store.cron.get(id);
    if (!job) notFound(id);
    return view(job);
  },
});

/** `cron.status`. */
export const cronStatus = defineMethod({
  name: "cron.status",
  scope: "read",
  summary: "The scheduler: jobs, the next wake-up, runs in progress.",
  params: z.looseObject({}),
  handler: async (_p, ctx) => {
    const jobs = await ctx.store.cron.list();
    return {
      enabled: true,
      triggersEnabled: true,
      storage: "deno-kv",
      storePath: ctx.store.path,
      jobs: jobs.length,
      enabledJobs: jobs.filter((j) => j.enabled).length,
      running: jobs.filter((j) => j.state.runningAtMs !== undefined).length,
      nextWakeAtMs: await ctx.cron.nextWakeAtMs(),
    };
  },
});

/** `cron.runs`. */
export const cronRuns = defineMethod({
  name: "cron.runs",
  scope: "read",
  summary: "Run history, newest first (id, runId, status, query, offset, limit).",
  params: z.looseObject({
    id: jobId.optional(),
    jobId: jobId.optional(),
    runId: z.string().min(1).max(128).optional(),
    status: z.enum(["all", "ok", "error", "skipped", "running"]).default("all"),
    query: z.string().max(200).optional(),
    offset: z.int().min(0).default(0),
    limit: z.int().min(1).max(500).default(50),
    sortDir: z.enum(["asc", "desc"]).default("desc"),
  }),
  handler: async (p, ctx) => {
    const id = p.id ?? p.jobId;
    if (id && !(await ctx.store.cron.get(id))) notFound(id);
    let runs = await ctx.store.cron.runs(id, 10_000);
    if (p.runId) runs = runs.filter((r) => r.runId === p.runId);
    if (p.status !== "all") runs = runs.filter((r) => r.status === p.status);
    if (p.query) {
      const q = p.query.toLowerCase();
      runs = runs.filter((r) => `${r.summary ?? ""} ${r.error ?? ""}`.toLowerCase().includes(q));
    }
    if (p.sortDir === "asc") runs.reverse();
    const page = runs.slice(p.offset, p.offset + p.limit);
    const entries = page.map((r) => ({
      ...r,
      deliveryStatus: r.delivery ?? "not-requested",
      durationMs: r.endedAtMs !== undefined ? r.endedAtMs - r.startedAtMs : undefined,
    }));
    return {
      entries,
      total: runs.length,
      offset: p.offset,
      limit: p.limit,
      hasMore: p.offset + page.length < runs.length,
    };
  },
});

/** `cron.add`. */
export const cronAdd = defineMethod({
  name: "cron.add",
  scope: "admin",
  summary: "Add a job: schedule (at, every, cron + tz), payload (systemEvent or agentTurn).",
  params: z.looseObject(jobFields),
  handler: async (p, ctx) => {
    const now = ctx.clock.now();
    await checkSchedule(p.schedule as Schedule, now);
    const kind = p.payload.kind;
    const base: CronJob = {
      id: crypto.randomUUID(),
      name: p.name,
      enabled: p.enabled ?? true,
      createdAtMs: now,
      updatedAtMs: now,
      schedule: fixSchedule(p.schedule as Schedule, now),
      sessionTarget: p.sessionTarget ?? (kind === "agentTurn" ? "isolated" : "main"),
      wakeMode: p.wakeMode ?? "now",
      payload: p.payload as CronJob["payload"],
      state: {},
    };
    if (p.description !== undefined) base.description = p.description;
    if (p.agentId !== undefined) base.agentId = p.agentId.toLowerCase();
    if (p.delivery !== undefined) base.delivery = p.delivery as CronJob["delivery"] & object;
    if (p.deleteAfterRun !== undefined) base.deleteAfterRun = p.deleteAfterRun;
    checkTarget(base);
    const job = await withNext(base, now);
    await ctx.store.cron.put(await ctx.store.cron.entry(job.id), job);
    await ctx.cron.arm();
    changed(ctx, "added", job);
    return view(job);
  },
});

/** `cron.update`: `{id, patch}` with any of cron.add's fields. */
export const cronUpdate = defineMethod({
  name: "cron.update",
  scope: "admin",
  summary: "Change a job: {id, patch} with any of cron.add's fields.",
  params: byId({
    patch: z.looseObject({
      ...jobFields,
      name: jobFields.name.optional(),
      schedule: schedule.optional(),
      payload: payload.optional(),
      delivery: delivery.nullable().optional(),
    }),
  }),
  handler: async (p, ctx) => {
    const id = idOf(p);
    const now = ctx.clock.now();
    if (p.patch.schedule) await checkSchedule(p.patch.schedule as Schedule, now);
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await ctx.store.cron.entry(id);
      const cur = entry.value;
      if (!cur) notFound(id);
      const next: CronJob = { ...cur, updatedAtMs: now };
      const patch = p.patch;
      if (patch.name !== undefined) next.name = patch.name;
      if (patch.description !== undefined) next.description = patch.description;
      if (patch.enabled !== undefined) next.enabled = patch.enabled;
      if (patch.agentId !== undefined) next.agentId = patch.agentId.toLowerCase();
      if (patch.sessionTarget !== undefined) next.sessionTarget = patch.sessionTarget;
      if (patch.wakeMode !== undefined) next.wakeMode = patch.wakeMode;
      if (patch.payload !== undefined) next.payload = patch.payload as CronJob["payload"];
      if (patch.delivery === null) delete next.delivery;
      else if (patch.delivery !== undefined) {
        next.delivery = patch.delivery as CronJob["delivery"] & object;
      }
      if (patch.deleteAfterRun !== undefined) next.deleteAfterRun = patch.deleteAfterRun;
      if (patch.schedule !== undefined) {
        next.schedule = fixSchedule(patch.schedule as Schedule, now);
      }
      checkTarget(next);
      // A new schedule (or re-enabling) computes the next run from now.
      const recompute = patch.schedule !== undefined || patch.enabled !== undefined;
      const job = recompute ? await withNext(next, now) : next;
      if (await ctx.store.cron.put(entry, job)) {
        await ctx.cron.arm();
        changed(ctx, "updated", job);
        return view(job);
      }
    }
    throw invalidRequest(`cron job ${id} is changing too often; try again`);
  },
});

/** `cron.remove`. */
export const cronRemove = defineMethod({
  name: "cron.remove",
  scope: "admin",
  summary: "Remove a job and its run history.",
  params: byId({}),
  handler: async (p, ctx) => {
    const id = idOf(p);
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await ctx.store.cron.entry(id);
      if (!entry.value) notFound(id);
      if (await ctx.store.cron.remove(entry)) {
        await ctx.cron.arm();
        changed(ctx, "removed", entry.value);
        return { ok: true, removed: true };
      }
    }
    throw invalidRequest(`cron job ${id} is changing too often; try again`);
  },
});

/** `cron.run`: start a job now (`force`, the default) or only if it is due (`due`). */
export const cronRun = defineMethod({
  name: "cron.run",
  scope: "admin",
  summary: "Run a job now (mode force) or only when due (mode due); answers once it is started.",
  params: byId({ mode: z.enum(["due", "force"]).default("force") }),
  handler: async (p, ctx) => {
    const id = idOf(p);
    const r = await ctx.cron.runNow(id, p.mode);
    if (!r) notFound(id);
    return { ...r, enqueued: r.ran };
  },
});
