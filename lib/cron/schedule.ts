/**
 * Schedules as OpenClaw writes them, validated and turned into run times:
 * `at` (an ISO time or `20m` from now), `every` (a period with an optional
 * anchor) and `cron` (5 or 6 fields, an IANA time zone, computed with croner;
 * day-of-month and day-of-week combine with OR, as Vixie cron does).
 *
 * @module
 */
import { parseDuration } from "../duration.ts";

/** A job's schedule. */
export type Schedule =
  | { kind: "at"; at: string }
  | { kind: "every"; everyMs: number; anchorMs?: number }
  | { kind: "cron"; expr: string; tz?: string; staggerMs?: number };

/** What is wrong with a schedule, said for a person. */
export class ScheduleError extends Error {
  /** The field at fault, e.g. `schedule.expr`. */
  readonly field: string;
  /** Create one. */
  constructor(field: string, message: string) {
    super(message);
    this.name = "ScheduleError";
    this.field = field;
  }
}

type CronCtor = typeof import("croner").Cron;
let cronCtor: CronCtor | undefined;

/** Load croner (once): only jobs with `cron` schedules need it. */
async function croner(): Promise<CronCtor> {
  if (!cronCtor) cronCtor = (await import("croner")).Cron;
  return cronCtor;
}

/** Whether `tz` is an IANA time zone this runtime knows. */
export function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * The absolute time of an `at` schedule: an ISO 8601 time (with a zone or
 * `Z`; without one it is UTC, as OpenClaw reads it) or a duration from `now`
 * (`20m`, `1h30m`).
 */
export function atTime(at: string, now: number): number {
  const rel = /^\+?\s*(\d+(?:\.\d+)?\s*(ms|s|m|h|d)\s*)+$/.test(at.trim())
    ? parseDuration(at.trim().replace(/^\+/, "").replace(/\s+/g, ""))
    : undefined;
  if (rel !== undefined) return now + rel;
  const s = at.trim();
  // A date-time without a zone is UTC (not the gateway's local zone), whatever separates date and time.
  const bare = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}(:\d{2}(\.\d+)?)?)$/.exec(s);
  const iso = bare ? `${bare[1]}T${bare[2]}Z` : s;
  const t = /^\d{4}-\d{2}-\d{2}/.test(iso) ? Date.parse(iso) : NaN;
  if (!Number.isFinite(t)) {
    throw new ScheduleError(
      "schedule.at",
      `not a time: '${at}' (use an ISO time such as 2026-11-23T08:00:00+08:00, or a delay such as 20m)`,
    );
  }
  return t;
}

/** A deterministic offset in [0, staggerMs) for a job, so staggered jobs spread out but stay put. */
export function staggerOffset(jobId: string, staggerMs: number): number {
  if (!staggerMs || staggerMs <= 0) return 0;
  let h = 2166136261;
  for (let i = 0; i < jobId.length; i++) h = Math.imul(h ^ jobId.charCodeAt(i), 16777619);
  return (h >>> 0) % Math.floor(staggerMs);
}

/**
 * Check a schedule; throws a {@link ScheduleError} naming the field and what
 * is wrong. `now` decides whether an `at` time is in the past.
 */
export async function validateSchedule(s: Schedule, now: number): Promise<void> {
  if (s.kind === "at") {
    const t = atTime(s.at, now);
    if (t <= now) {
      throw new ScheduleError(
        "schedule.at",
        `${new Date(t).toISOString()} is in the past (now is ${new Date(now).toISOString()})`,
      );
    }
    return;
  }
  if (s.kind === "every") {
    if (!Number.isFinite(s.everyMs) || s.everyMs < 1000) {
      throw new ScheduleError("schedule.everyMs", "must be at least 1000 (one second)");
    }
    return;
  }
  const fields = s.expr.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    throw new ScheduleError(
      "schedule.expr",
      `'${s.expr}' has ${fields.length} fields; a cron expression has 5 (minute hour day month weekday) or 6 (with seconds first)`,
    );
  }
  if (s.tz !== undefined && !validTimeZone(s.tz)) {
    throw new ScheduleError(
      "schedule.tz",
      `unknown time zone '${s.tz}' (use an IANA name such as Asia/Shanghai or Europe/Berlin)`,
    );
  }
  const Cron = await croner();
  let next: Date | null;
  try {
    next = new Cron(s.expr, { paused: true, timezone: s.tz ?? "UTC", domAndDow: false })
      .nextRun(new Date(now));
  } catch (e) {
    throw new ScheduleError(
      "schedule.expr",
      `invalid cron expression '${s.expr}': ${(e as Error).message}`,
    );
  }
  if (!next) throw new ScheduleError("schedule.expr", `'${s.expr}' never fires`);
}

/**
 * The first run time strictly after `after` (ms), or null when there is none
 * (a spent `at`). `createdAtMs` anchors `every` schedules without an anchor;
 * `jobId` seeds the stagger.
 */
export async function nextRunAfter(
  s: Schedule,
  after: number,
  opts: { jobId: string; createdAtMs: number; now: number },
): Promise<number | null> {
  if (s.kind === "at") {
    const t = atTime(s.at, opts.createdAtMs);
    return t > after ? t : null;
  }
  if (s.kind === "every") {
    const anchor = s.anchorMs ?? opts.createdAtMs;
    if (after < anchor) return anchor;
    const n = Math.floor((after - anchor) / s.everyMs) + 1;
    return anchor + n * s.everyMs;
  }
  const Cron = await croner();
  const stagger = staggerOffset(opts.jobId, s.staggerMs ?? 0);
  const job = new Cron(s.expr, { paused: true, timezone: s.tz ?? "UTC", domAndDow: false });
  // The slot is the cron time; the run is the slot plus the job's stagger.
  const slot = job.nextRun(new Date(after - stagger));
  return slot ? slot.getTime() + stagger : null;
}
