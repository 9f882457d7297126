/**
 * `gw cron`: list, add, edit, remove and run scheduled jobs and read their run
 * history, as tables for people and JSON (`--json`) for scripts. Everything
 * goes through the gateway's `cron.*` methods; a job id may be shortened to
 * any unique prefix (resolved through `cron.list`).
 *
 * Every usage mistake is found before connecting, except the few that need
 * the job itself (`gw cron edit ID --tz Z` on a job that is not a cron
 * expression, for example).
 *
 * @module
 */
import { parseDuration } from "../duration.ts";
import type { Schedule } from "../cron/schedule.ts";
import type { CronDelivery, CronJob, CronPayload, CronRunRecord } from "../store/cron.ts";
import {
  type CallOptions,
  connectClient,
  Exit,
  LookupError,
  reportLookupError,
  reportRequestError,
  strFlag,
  UsageError,
} from "./call.ts";
import { tildify } from "./paths.ts";
import { bold, dim, green, red, table, yellow } from "./style.ts";

/** The flags as `node:util` parseArgs gave them, by their command-line names. */
export type CronFlags = Readonly<Record<string, string | boolean | undefined>>;

/** Options of {@link runCron}. */
export interface CronOptions extends CallOptions {
  /** Every flag given (`every`, `system-event`, `all`, ...), by its command-line name. */
  flags: CronFlags;
}

/** A job as `cron.list` and `cron.get` return it. */
type Job = CronJob & { nextRunAtMs?: number | null };

/** A `cron.runs` entry. */
type RunEntry = CronRunRecord & { durationMs?: number; deliveryStatus?: string };

const SUBCOMMANDS = ["list", "add", "edit", "rm", "run", "runs", "status"] as const;
type Sub = typeof SUBCOMMANDS[number];
const ALIASES: Record<string, Sub> = { ls: "list", remove: "rm", delete: "rm", update: "edit" };

/** Flags every client command takes. */
const CLIENT = ["url", "token", "password", "state-dir", "help", "json"];
const SCHEDULE_FLAGS = ["every", "anchor", "at", "cron", "tz", "stagger"];
const JOB_FLAGS = [
  ...SCHEDULE_FLAGS,
  "message",
  "system-event",
  "session",
  "wake",
  "model",
  "thinking",
  "timeout",
  "announce",
  "channel",
  "to",
  "keep-after-run",
  "description",
  "name",
];
/** The flags of each subcommand besides {@link CLIENT}. */
const SUB_FLAGS: Record<Sub, string[]> = {
  list: ["all", "timeout"],
  add: [...JOB_FLAGS, "disabled"],
  edit: [...JOB_FLAGS, "enable", "disable"],
  rm: ["timeout"],
  run: ["due", "timeout"],
  runs: ["status", "limit", "timeout"],
  status: ["timeout"],
};
const HINTS: Record<string, string> = {
  "edit disabled": " (use --disable)",
  "add disable": " (use --disabled)",
  "add enable": " (jobs start enabled)",
  "list status": " (gw cron runs --status filters runs)",
};
const RUN_STATUSES = ["ok", "error", "skipped", "running", "all"];
const SESSION_TARGET = /^(main|isolated|session:.+)$/;
const DURATION_EXAMPLES = "30s, 20m, 1h, 1h30m or 1d";

// ------------------------------------------------------------------ flags

function nonEmpty(f: CronFlags, k: string): string | undefined {
  const v = strFlag(f, k);
  if (v !== undefined && !v.trim()) throw new UsageError(`--${k}: expected text, got nothing`);
  return v;
}

function checkFlags(sub: Sub, f: CronFlags): void {
  for (const [k, v] of Object.entries(f)) {
    if (v === undefined || CLIENT.includes(k) || SUB_FLAGS[sub].includes(k)) continue;
    throw new UsageError(`cron ${sub} does not take --${k}${HINTS[`${sub} ${k}`] ?? ""}`);
  }
}

/** A duration flag in ms: `30s`, `20m`, `1h30m`, `1d` (a bare number is refused, except `0`). */
function durationFlag(name: string, text: string, minMs: number): number {
  const t = text.trim();
  const ms = t === "0" ? 0 : /^\d+(\.\d+)?$/.test(t) ? undefined : parseDuration(t);
  if (ms === undefined) {
    throw new UsageError(
      `--${name}: expected a duration such as ${DURATION_EXAMPLES}, got '${text}'`,
    );
  }
  if (ms < minMs) {
    throw new UsageError(`--${name}: must be at least ${formatSpan(minMs)}, got '${text}'`);
  }
  return ms;
}

const NAIVE_ISO = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

/** An ISO time in ms; one without a zone is UTC, as the gateway reads `at` times. */
function isoFlag(name: string, text: string): number {
  const t = text.trim();
  const iso = NAIVE_ISO.test(t) ? `${t.replace(" ", "T")}Z` : t;
  const ms = /^\d{4}-\d{2}-\d{2}/.test(iso) ? Date.parse(iso) : NaN;
  if (!Number.isFinite(ms)) {
    throw new UsageError(
      `--${name}: expected an ISO time such as 2026-11-23T08:00+08:00 (no zone means UTC), got '${text}'`,
    );
  }
  return ms;
}

/** `--at`: a delay (`20m`, fixed by the gateway when it stores the job) or an ISO time. */
function atFlag(text: string): string {
  const t = text.trim().replace(/^in\s+/, "");
  if (/^[\d.]+(ms|s|m|h|d)/.test(t) && parseDuration(t) !== undefined) return t;
  if (!/^\d{4}-\d{2}-\d{2}/.test(t)) {
    throw new UsageError(
      `--at: expected a delay such as 20m or an ISO time such as 2026-11-23T08:00+08:00, got '${text}'`,
    );
  }
  isoFlag("at", t);
  return NAIVE_ISO.test(t) ? t.replace(" ", "T") : t;
}

/** `--timeout` of a job: whole seconds, or a duration (`5m`). */
function turnTimeout(text: string): number {
  const t = text.trim();
  const s = /^\d+$/.test(t)
    ? Number(t)
    : /^\d+\.\d+$/.test(t)
    ? NaN
    : (parseDuration(t) ?? NaN) / 1000;
  if (!Number.isInteger(s) || s < 1) {
    throw new UsageError(
      `--timeout: expected whole seconds (or a duration such as 5m), got '${text}'`,
    );
  }
  return s;
}

function limitFlag(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 500) {
    throw new UsageError(`--limit: expected a whole number from 1 to 500, got '${text}'`);
  }
  return n;
}

/**
 * The schedule the flags describe, merged onto `cur` when they only adjust it
 * (`--tz` alone on a cron job); undefined when no schedule flag was given.
 */
function scheduleFrom(f: CronFlags, cur?: Schedule): Schedule | undefined {
  const kinds = ["every", "at", "cron"].filter((k) => strFlag(f, k) !== undefined);
  if (kinds.length > 1) {
    throw new UsageError(
      `pass one schedule, got ${kinds.map((k) => `--${k}`).join(" and ")}`,
    );
  }
  const every = strFlag(f, "every");
  const at = strFlag(f, "at");
  const expr = nonEmpty(f, "cron");
  const anchor = strFlag(f, "anchor");
  const tz = nonEmpty(f, "tz");
  const stagger = strFlag(f, "stagger");
  const kind = every !== undefined
    ? "every"
    : at !== undefined
    ? "at"
    : expr !== undefined
    ? "cron"
    : anchor !== undefined || tz !== undefined || stagger !== undefined
    ? cur?.kind
    : undefined;
  const what = cur ? "this job's schedule" : "the schedule";
  if (anchor !== undefined && kind !== "every") {
    throw new UsageError(`--anchor goes with --every, and ${what} is not one`);
  }
  if ((tz !== undefined || stagger !== undefined) && kind !== "cron") {
    throw new UsageError(
      `--${tz !== undefined ? "tz" : "stagger"} goes with --cron, and ${what} is not one`,
    );
  }
  // The same kind as now keeps what the flags do not change (a new expr keeps the tz).
  const base = cur?.kind === kind ? cur : undefined;
  switch (kind) {
    case "every": {
      const s: Schedule = base?.kind === "every" ? { ...base } : { kind: "every", everyMs: 0 };
      if (every !== undefined) s.everyMs = durationFlag("every", every, 1000);
      if (anchor !== undefined) s.anchorMs = isoFlag("anchor", anchor);
      return s;
    }
    case "at":
      return { kind: "at", at: atFlag(at!) };
    case "cron": {
      const s: Schedule = base?.kind === "cron" ? { ...base } : { kind: "cron", expr: "" };
      if (expr !== undefined) s.expr = expr.trim();
      if (tz !== undefined) s.tz = tz.trim();
      if (stagger !== undefined) s.staggerMs = durationFlag("stagger", stagger, 0);
      return s;
    }
    default:
      return undefined;
  }
}

const TURN_FLAGS = ["model", "thinking", "timeout"];

/** The payload the flags describe, merged onto `cur` of the same kind; undefined when none. */
function payloadFrom(f: CronFlags, cur?: CronPayload): CronPayload | undefined {
  const message = nonEmpty(f, "message");
  const text = nonEmpty(f, "system-event");
  if (message !== undefined && text !== undefined) {
    throw new UsageError("pass --message (an agent turn) or --system-event, not both");
  }
  const turnFlag = TURN_FLAGS.find((k) => strFlag(f, k) !== undefined);
  if (text !== undefined) {
    if (turnFlag) {
      throw new UsageError(`--${turnFlag} goes with --message (an agent turn), not --system-event`);
    }
    return { kind: "systemEvent", text };
  }
  if (message === undefined && !turnFlag) return undefined;
  if (message === undefined && cur?.kind !== "agentTurn") {
    throw new UsageError(
      `--${turnFlag} goes with --message (an agent turn)${
        cur ? ", and this job sends a system event" : ""
      }`,
    );
  }
  const p: CronPayload = cur?.kind === "agentTurn"
    ? { ...cur }
    : { kind: "agentTurn", message: message! };
  if (message !== undefined) p.message = message;
  const model = nonEmpty(f, "model");
  const thinking = nonEmpty(f, "thinking");
  const timeout = strFlag(f, "timeout");
  if (model !== undefined) p.model = model;
  if (thinking !== undefined) p.thinking = thinking;
  if (timeout !== undefined) p.timeoutSeconds = turnTimeout(timeout);
  return p;
}

/** `--announce [--channel C] [--to ID]` (either of the last two implies --announce). */
function deliveryFrom(f: CronFlags, cur?: CronDelivery): CronDelivery | undefined {
  const channel = nonEmpty(f, "channel");
  const to = nonEmpty(f, "to");
  if (f.announce !== true && channel === undefined && to === undefined) return undefined;
  const d: CronDelivery = cur?.mode === "announce" ? { ...cur } : { mode: "announce" };
  if (channel !== undefined) d.channel = channel;
  if (to !== undefined) d.to = to;
  return d;
}

/** The job fields other than schedule, payload and delivery that the flags set. */
function otherFields(f: CronFlags): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const session = strFlag(f, "session");
  if (session !== undefined) {
    if (!SESSION_TARGET.test(session)) {
      throw new UsageError(`--session: expected main, isolated or session:KEY, got '${session}'`);
    }
    out.sessionTarget = session;
  }
  const wake = strFlag(f, "wake");
  if (wake !== undefined) {
    if (wake !== "now" && wake !== "next-heartbeat") {
      throw new UsageError(`--wake: expected now or next-heartbeat, got '${wake}'`);
    }
    out.wakeMode = wake;
  }
  const description = strFlag(f, "description");
  if (description !== undefined) out.description = description;
  if (f["keep-after-run"] === true) out.deleteAfterRun = false;
  if (f.disabled === true) out.enabled = false;
  if (f.enable === true && f.disable === true) {
    throw new UsageError("pass --enable or --disable, not both");
  }
  if (f.enable === true) out.enabled = true;
  if (f.disable === true) out.enabled = false;
  return out;
}

/** `cron.add` params from `gw cron add NAME ...`. */
function addParams(name: string, f: CronFlags): Record<string, unknown> {
  const schedule = scheduleFrom(f);
  if (!schedule) {
    throw new UsageError(
      "cron add needs a schedule: --every DURATION, --at TIME or --cron EXPR",
    );
  }
  const payload = payloadFrom(f);
  if (!payload) {
    throw new UsageError(
      "cron add needs something to do: --message TEXT (an agent turn) or --system-event TEXT",
    );
  }
  const delivery = deliveryFrom(f);
  return {
    name,
    schedule,
    payload,
    ...(delivery ? { delivery } : {}),
    ...otherFields(f),
  };
}

/**
 * Check each flag's value on its own (for `edit`, before the job is known:
 * how the flags combine with it is checked once it is).
 */
function checkValues(f: CronFlags): void {
  if (["every", "at", "cron"].some((k) => strFlag(f, k) !== undefined)) scheduleFrom(f);
  else {
    const anchor = strFlag(f, "anchor");
    const stagger = strFlag(f, "stagger");
    if (anchor !== undefined) isoFlag("anchor", anchor);
    if (stagger !== undefined) durationFlag("stagger", stagger, 0);
    nonEmpty(f, "tz");
  }
  if (strFlag(f, "message") !== undefined || strFlag(f, "system-event") !== undefined) {
    payloadFrom(f);
  } else {
    const timeout = strFlag(f, "timeout");
    if (timeout !== undefined) turnTimeout(timeout);
    nonEmpty(f, "model");
    nonEmpty(f, "thinking");
  }
  deliveryFrom(f);
  otherFields(f);
}

/** Whether `gw cron edit` was given anything to change (checked before connecting). */
function editsSomething(f: CronFlags): boolean {
  return [...JOB_FLAGS, "enable", "disable"].some((k) => f[k] !== undefined);
}

/** The `cron.update` patch for `job` from the flags: only what they change. */
function editPatch(job: Job, f: CronFlags): Record<string, unknown> {
  const patch: Record<string, unknown> = otherFields(f);
  const name = strFlag(f, "name");
  if (name !== undefined) {
    if (!name.trim()) throw new UsageError("--name: expected text, got nothing");
    patch.name = name;
  }
  const schedule = scheduleFrom(f, job.schedule);
  if (schedule) patch.schedule = schedule;
  const payload = payloadFrom(f, job.payload);
  if (payload) {
    patch.payload = payload;
    // A new kind of payload moves the job to a session that can take it, unless told where.
    if (patch.sessionTarget === undefined) {
      if (payload.kind === "agentTurn" && job.sessionTarget === "main") {
        patch.sessionTarget = "isolated";
      }
      if (payload.kind === "systemEvent" && job.sessionTarget === "isolated") {
        patch.sessionTarget = "main";
      }
    }
  }
  const delivery = deliveryFrom(f, job.delivery);
  if (delivery) patch.delivery = delivery;
  return patch;
}

// ------------------------------------------------------------------ words and times

const SPAN_UNITS: [string, number][] = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1000],
  ["ms", 1],
];

/** An exact period as it is typed: 3600000 → `1h`, 5400000 → `1h30m`. */
export function formatPeriod(ms: number): string {
  if (ms <= 0) return "0";
  let rest = ms;
  let out = "";
  for (const [unit, size] of SPAN_UNITS) {
    const n = Math.floor(rest / size);
    if (n) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}

/** A rounded span for reading: `45s`, `12m`, `3h 12m`, `2d 4h`. */
export function formatSpan(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const min = Math.round(ms / 60_000);
  if (min < 60) return `${min}m`;
  if (min < 1440) {
    const [h, m] = [Math.floor(min / 60), min % 60];
    return m ? `${h}h ${m}m` : `${h}h`;
  }
  const hours = Math.round(ms / 3_600_000);
  const [d, h] = [Math.floor(hours / 24), hours % 24];
  return h ? `${d}d ${h}h` : `${d}d`;
}

/** `in 3h 12m`, `5m ago`, `now`. */
export function relative(ms: number, now: number = Date.now()): string {
  const d = ms - now;
  if (Math.abs(d) < 1000) return "now";
  return d > 0 ? `in ${formatSpan(d)}` : `${formatSpan(-d)} ago`;
}

function localZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone ?? "UTC";
}

function zoneLabel(tz: string): string {
  return /^(Etc\/)?(UTC|GMT|Universal|Zulu)$/.test(tz) ? "UTC" : tz;
}

/** The zone a job's times read best in: its cron zone (UTC without one), else the local zone. */
function jobZone(job: Pick<Job, "schedule">): string {
  return job.schedule.kind === "cron" ? job.schedule.tz ?? "UTC" : localZone();
}

/**
 * `Mon 23 Nov 08:00 Asia/Shanghai` (the year when it is not this year's;
 * seconds and no zone with `seconds`).
 */
export function formatWhen(
  ms: number,
  tz: string,
  opts: { now?: number; seconds?: boolean } = {},
): string {
  const fmt = (t: number) =>
    Object.fromEntries(
      new Intl.DateTimeFormat("en-US", {
        timeZone: tz,
        weekday: "short",
        day: "numeric",
        month: "short",
        year: "numeric",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        hourCycle: "h23",
      }).formatToParts(t).map((p) => [p.type, p.value]),
    );
  const p = fmt(ms);
  const year = p.year === fmt(opts.now ?? Date.now()).year ? "" : ` ${p.year}`;
  const time = `${p.hour}:${p.minute}${opts.seconds ? `:${p.second}` : ""}`;
  return `${p.weekday} ${p.day} ${p.month}${year} ${time}${
    opts.seconds ? "" : ` ${zoneLabel(tz)}`
  }`;
}

/** `2026-11-23 08:00 UTC`. */
function utcMinute(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** A schedule in words: `every 1h`, `at 2026-11-23 08:00 UTC`, `cron 0 8 * * * (Asia/Shanghai)`. */
export function scheduleWords(s: Schedule): string {
  switch (s.kind) {
    case "every":
      return `every ${formatPeriod(s.everyMs)}${
        s.anchorMs !== undefined ? ` from ${utcMinute(s.anchorMs)}` : ""
      }`;
    case "at": {
      const t = Date.parse(s.at);
      return `at ${Number.isFinite(t) ? utcMinute(t) : s.at}`;
    }
    default:
      return `cron ${s.expr} (${zoneLabel(s.tz ?? "UTC")}${
        s.staggerMs ? `, stagger ${formatPeriod(s.staggerMs)}` : ""
      })`;
  }
}

function nextOf(job: Job): number | undefined {
  return job.nextRunAtMs ?? job.state.nextRunAtMs ?? undefined;
}

/** `Mon 23 Nov 08:00 Asia/Shanghai (in 9h 3m)`, or why there is none. */
export function nextWords(job: Job, now: number = Date.now()): string {
  const next = nextOf(job);
  if (next === undefined) return job.enabled ? "none" : "none (disabled)";
  return `${formatWhen(next, jobZone(job), { now })} (${relative(next, now)})`;
}

function lastWords(job: Job, now: number): string {
  const s = job.state;
  if (s.runningAtMs !== undefined) return "running";
  if (!s.lastStatus) return "-";
  const streak = s.lastStatus === "error" && (s.consecutiveErrors ?? 0) > 1
    ? ` ×${s.consecutiveErrors}`
    : "";
  return `${s.lastStatus}${streak} ${s.lastRunAtMs ? relative(s.lastRunAtMs, now) : ""}`.trim();
}

function oneLine(text: string, max: number): string {
  const t = text.replace(/\s+/g, " ").trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** Each job's id cut to 8 characters, or more where 8 would not tell two apart. */
function shortIds(jobs: Pick<Job, "id">[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const j of jobs) {
    let n = Math.min(8, j.id.length);
    while (
      n < j.id.length && jobs.some((o) => o.id !== j.id && o.id.startsWith(j.id.slice(0, n)))
    ) n++;
    out.set(j.id, j.id.slice(0, n));
  }
  return out;
}

/** The jobs table of `gw cron list`. */
export function formatJobs(jobs: Job[], now: number = Date.now()): string {
  const ids = shortIds(jobs);
  const rows = jobs.map((j) => [
    ids.get(j.id)!,
    oneLine(j.name, 32),
    scheduleWords(j.schedule),
    nextOf(j) === undefined ? "-" : nextWords(j, now),
    lastWords(j, now),
    j.enabled ? "yes" : "no",
  ]);
  return table(["ID", "NAME", "SCHEDULE", "NEXT", "LAST", "ENABLED"], rows, {
    paint: (r, c, cell) => {
      const j = jobs[r]!;
      if (!j.enabled) return dim(cell);
      if (c === 4 && j.state.lastStatus === "error") return red(cell);
      return cell;
    },
  });
}

function payloadWords(p: CronPayload): string {
  if (p.kind === "systemEvent") return `system event "${oneLine(p.text, 60)}"`;
  const extra = [
    p.model ? `model ${p.model}` : "",
    p.thinking ? `thinking ${p.thinking}` : "",
    p.timeoutSeconds ? `timeout ${formatPeriod(p.timeoutSeconds * 1000)}` : "",
  ].filter(Boolean);
  return `agent turn "${oneLine(p.message, 60)}"${extra.length ? ` (${extra.join(", ")})` : ""}`;
}

/** A job, one field a line, as `add` and `edit` print it. */
function describe(job: Job, now: number): string {
  const rows: [string, string][] = [
    ["id", job.id],
    ["schedule", scheduleWords(job.schedule)],
    ["next", nextWords(job, now)],
    ["does", payloadWords(job.payload)],
    ["session", `${job.sessionTarget}, wake ${job.wakeMode}`],
  ];
  if (job.delivery?.mode === "announce") {
    const d = job.delivery;
    rows.push([
      "delivery",
      `announce${d.channel ? ` on ${d.channel}` : ""}${d.to ? ` to ${d.to}` : ""}`,
    ]);
  }
  if (job.description) rows.push(["about", oneLine(job.description, 80)]);
  if (job.schedule.kind === "at") {
    rows.push(["after run", job.deleteAfterRun === false ? "kept, disabled" : "removed"]);
  }
  if (!job.enabled) rows.push(["enabled", "no"]);
  return rows.map(([k, v]) => `  ${dim(`${k}:`.padEnd(11))}${v}`).join("\n");
}

function formatMs(ms: number | undefined): string {
  if (ms === undefined) return "-";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return formatSpan(ms);
}

/** The runs table of `gw cron runs`. */
export function formatRuns(
  entries: RunEntry[],
  names: Map<string, string>,
  now: number = Date.now(),
): string {
  if (!entries.length) return dim("no runs");
  const tz = localZone();
  const rows = entries.map((e) => [
    `${formatWhen(e.startedAtMs, tz, { now, seconds: true })} (${relative(e.startedAtMs, now)})`,
    oneLine(names.get(e.jobId) ?? e.jobId.slice(0, 8), 24),
    `${e.status}${e.manual ? " (manual)" : ""}`,
    formatMs(e.durationMs),
    oneLine(e.error ?? e.summary ?? "", 60),
  ]);
  return table(["STARTED", "JOB", "STATUS", "DURATION", "SUMMARY"], rows, {
    paint: (r, c, cell) => {
      const e = entries[r]!;
      if (e.status === "error" && (c === 2 || c === 4)) return red(cell);
      if (e.status === "skipped" && c === 2) return yellow(cell);
      return cell;
    },
  });
}

// ------------------------------------------------------------------ the command

/** The job `ref` names: its id, or a prefix of exactly one job's id. */
export function resolveJob(jobs: Job[], ref: string): Job {
  const q = ref.trim().toLowerCase();
  const exact = jobs.find((j) => j.id.toLowerCase() === q);
  if (exact) return exact;
  const hits = jobs.filter((j) => j.id.toLowerCase().startsWith(q));
  if (hits.length === 1) return hits[0]!;
  if (!hits.length) {
    throw new LookupError(`no cron job has an id starting with '${ref}' (gw cron list --all)`);
  }
  const ids = shortIds(hits);
  const some = hits.slice(0, 5).map((j) => `${ids.get(j.id)} ${j.name}`).join(", ");
  throw new LookupError(
    `'${ref}' is ambiguous: ${hits.length} job ids start with it (${some}${
      hits.length > 5 ? ", ..." : ""
    }); give more of the id`,
  );
}

function positionals(sub: Sub, rest: string[]): string | undefined {
  const [arg, ...extra] = rest;
  const takes = sub === "add" ? "NAME" : sub === "list" || sub === "status" ? "" : "ID";
  if (extra.length) {
    throw new UsageError(
      `unexpected argument '${extra[0]}'${sub === "add" ? " (quote a name with spaces)" : ""}`,
    );
  }
  if (arg !== undefined && !takes) throw new UsageError(`cron ${sub} takes no arguments`);
  if (arg !== undefined && !arg.trim()) throw new UsageError(`cron ${sub}: the ${takes} is empty`);
  if (arg === undefined && (sub === "edit" || sub === "rm" || sub === "run")) {
    throw new UsageError(`usage: gw cron ${sub} ID (an id or a unique prefix; gw cron list)`);
  }
  return arg;
}

/**
 * `gw cron [list|add|edit|rm|run|runs|status] ...`. Returns the exit code:
 * 0 ok, 1 error response (or an unknown or ambiguous id), 3 cannot connect.
 *
 * @throws {UsageError} for a mistake in the arguments (exit 2).
 */
export async function runCron(args: string[], o: CronOptions): Promise<number> {
  const [word = "list", ...rest] = args;
  const sub = ALIASES[word] ?? word as Sub;
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new UsageError(`unknown cron command '${word}' (expected ${SUBCOMMANDS.join(", ")})`);
  }
  const f = o.flags;
  checkFlags(sub, f);
  const arg = positionals(sub, rest);

  // Everything that can be checked without the gateway is checked here.
  let addition: Record<string, unknown> | undefined;
  if (sub === "add") {
    const flagName = strFlag(f, "name");
    if (arg !== undefined && flagName !== undefined && arg !== flagName) {
      throw new UsageError(`two names: '${arg}' and --name '${flagName}'`);
    }
    const name = arg ?? flagName;
    if (name === undefined || !name.trim()) throw new UsageError('usage: gw cron add "NAME" ...');
    addition = addParams(name, f);
  }
  if (sub === "edit") {
    if (!editsSomething(f)) {
      throw new UsageError(
        "cron edit: nothing to change (give any flag of cron add, --enable or --disable, --name)",
      );
    }
    checkValues(f);
  }
  const status = strFlag(f, "status");
  if (status !== undefined && !RUN_STATUSES.includes(status)) {
    throw new UsageError(`--status: expected ${RUN_STATUSES.join(", ")}, got '${status}'`);
  }
  const limit = limitFlag(strFlag(f, "limit"));

  // For add and edit, --timeout is the job's turn limit, not the request's.
  const jobTimeout = sub === "add" || sub === "edit";
  const conn = await connectClient(jobTimeout ? { ...o, timeout: undefined } : o);
  if (typeof conn === "number") return conn;
  let method = "cron.list";
  const call = async <T>(m: string, params: unknown): Promise<T> => {
    method = m;
    return await conn.client.request(m, params as never, { timeoutMs: conn.timeoutMs }) as T;
  };
  /** Every job, page by page (cron.list answers at most 200 at a time). */
  const list = async (includeDisabled = true) => {
    const jobs: Job[] = [];
    for (let offset = 0;;) {
      const page = await call<{ jobs: Job[]; nextOffset?: number | null }>("cron.list", {
        includeDisabled,
        offset,
      });
      jobs.push(...page.jobs);
      if (page.nextOffset === undefined || page.nextOffset === null) return jobs;
      offset = page.nextOffset;
    }
  };
  const out = (v: unknown) => console.log(JSON.stringify(v, null, 2));
  const now = () => Date.now();
  try {
    switch (sub) {
      case "list": {
        const r = { jobs: await list(f.all === true) };
        if (o.json) out(r);
        else if (!r.jobs.length) {
          console.log(
            dim(`no cron jobs${f.all ? "" : " enabled (--all lists disabled ones too)"}`),
          );
        } else console.log(formatJobs(r.jobs, now()));
        return Exit.OK;
      }
      case "status":
        return printStatus(await call("cron.status", {}), o.json);
      case "add": {
        const job = await call<Job>("cron.add", addition);
        if (o.json) out(job);
        else {
          console.log(`${green("✓")} added ${bold(job.id.slice(0, 8))} ${job.name}`);
          console.log(describe(job, now()));
        }
        return Exit.OK;
      }
      case "runs": {
        const jobs = await list();
        const job = arg === undefined ? undefined : resolveJob(jobs, arg);
        const r = await call<{ entries: RunEntry[]; total: number }>("cron.runs", {
          ...(job ? { id: job.id } : {}),
          ...(status ? { status } : {}),
          ...(limit ? { limit } : {}),
        });
        if (o.json) out(r);
        else {
          console.log(formatRuns(r.entries, new Map(jobs.map((j) => [j.id, j.name])), now()));
          if (r.total > r.entries.length) {
            console.log(dim(`${r.entries.length} of ${r.total} run(s); --limit shows more`));
          }
        }
        return Exit.OK;
      }
      default:
        break;
    }
    // edit, rm, run: one job, named by id or prefix.
    const job = resolveJob(await list(), arg!);
    const label = `${bold(job.id.slice(0, 8))} ${job.name}`;
    if (sub === "edit") {
      const updated = await call<Job>("cron.update", { id: job.id, patch: editPatch(job, f) });
      if (o.json) out(updated);
      else {
        console.log(`${green("✓")} updated ${bold(updated.id.slice(0, 8))} ${updated.name}`);
        console.log(describe(updated, now()));
      }
      return Exit.OK;
    }
    if (sub === "rm") {
      const r = await call<Record<string, unknown>>("cron.remove", { id: job.id });
      if (o.json) out({ ...r, id: job.id });
      else console.log(`${green("✓")} removed ${label}`);
      return Exit.OK;
    }
    const mode = f.due === true ? "due" : "force";
    const r = await call<{ ran: boolean; runId?: string; reason?: string }>("cron.run", {
      id: job.id,
      mode,
    });
    if (o.json) out(r);
    else if (r.ran) {
      console.log(`${green("✓")} started ${label} (run ${r.runId?.slice(0, 8) ?? "?"})`);
      console.log(dim(`  gw cron runs ${job.id.slice(0, 8)} shows how it went`));
    } else {
      const why = r.reason === "not-due"
        ? `it is not due yet (next ${nextWords(job, now())}; without --due it runs now)`
        : r.reason === "already-running"
        ? "it is already running"
        : r.reason === "disabled"
        ? `it is disabled (gw cron edit ${job.id.slice(0, 8)} --enable)`
        : r.reason ?? "the gateway did not say why";
      console.log(`${yellow("not started:")} ${label}: ${why}`);
    }
    return Exit.OK;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if (e instanceof LookupError) return reportLookupError(e, o.json);
    return reportRequestError(e, method, conn, o.json);
  } finally {
    await conn.client.close().catch(() => {});
  }
}

function printStatus(result: unknown, json: boolean | undefined): number {
  if (json) {
    console.log(JSON.stringify(result, null, 2));
    return Exit.OK;
  }
  const s = result as {
    enabled: boolean;
    jobs: number;
    enabledJobs: number;
    running: number;
    nextWakeAtMs: number | null;
    storePath?: string;
    storage?: string;
  };
  console.log(
    `${
      s.enabled ? green("● scheduler on") : yellow("● scheduler off")
    }  ${s.jobs} job(s), ${s.enabledJobs} enabled, ${s.running} running`,
  );
  const next = s.nextWakeAtMs;
  console.log(
    `  next wake  ${
      next === null ? dim("none") : `${formatWhen(next, localZone())} (${relative(next)})`
    }`,
  );
  if (s.storePath) {
    console.log(`  store      ${tildify(s.storePath)}${s.storage ? dim(` (${s.storage})`) : ""}`);
  }
  return Exit.OK;
}
