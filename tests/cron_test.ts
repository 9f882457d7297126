/**
 * The scheduler: schedule arithmetic (time zones, DST, seconds, Vixie OR,
 * every, at, stagger, validation), then the scheduler through a real gateway
 * with a manual clock (slots, downtime, overlap, pruning, clock jumps), then
 * in real time (restarts, one-shots, cron.run, agent turns with delivery, two
 * processes on one state dir, bad params).
 */
import assert from "node:assert/strict";
import {
  type AnyFrame,
  connected,
  err,
  ok,
  type RawClient,
  startTestGateway,
  type TestGateway,
} from "./_helpers.ts";
import {
  atTime,
  nextRunAfter,
  type Schedule,
  ScheduleError,
  staggerOffset,
  validateSchedule,
} from "../lib/cron/schedule.ts";
import { SchedClock, sleep, until } from "./_cron_clock.ts";
import { type FakeAnthropic, startFakeAnthropic } from "./_fake_anthropic.ts";
import { GwChild } from "./_gw_child.ts";
import { TelegramApi } from "./_telegram_api.ts";
import { CronStore } from "../lib/store/cron.ts";

const MIN = 60_000;
const DAY = 86_400_000;
const utc = (s: string): number => Date.parse(s);
const iso = (n: number | null): string | null => n === null ? null : new Date(n).toISOString();

/** The next `n` runs of `s` after `after` (each strictly after the last), as ISO strings. */
async function runs(
  s: Schedule,
  after: number,
  n: number,
  opts: { jobId?: string; createdAtMs?: number } = {},
): Promise<(string | null)[]> {
  const out: (string | null)[] = [];
  let t = after;
  for (let i = 0; i < n; i++) {
    const next = await nextRunAfter(s, t, {
      jobId: opts.jobId ?? "job",
      createdAtMs: opts.createdAtMs ?? 0,
      now: t,
    });
    out.push(iso(next));
    if (next === null) break;
    t = next;
  }
  return out;
}

/** The ScheduleError `validateSchedule(s, now)` throws (fails when it does not throw one). */
async function scheduleError(
  s: Schedule,
  now = utc("2026-01-01T00:00:00Z"),
): Promise<ScheduleError> {
  try {
    await validateSchedule(s, now);
  } catch (e) {
    assert.ok(e instanceof ScheduleError, `expected a ScheduleError, got ${e}`);
    return e;
  }
  throw new Error(`${JSON.stringify(s)} was accepted`);
}

// ------------------------------------------------------------------ A. schedule arithmetic

Deno.test("nextRunAfter: a cron in Asia/Shanghai fires at its local time (08:00 is 00:00 UTC)", async () => {
  const s: Schedule = { kind: "cron", expr: "0 8 * * *", tz: "Asia/Shanghai" };
  assert.deepEqual(await runs(s, utc("2025-12-31T12:00:00Z"), 3), [
    "2026-01-01T00:00:00.000Z",
    "2026-01-02T00:00:00.000Z",
    "2026-01-03T00:00:00.000Z",
  ]);
  // Strictly after: at the slot itself, the next is the following day.
  assert.equal(
    iso(await nextRunAfter(s, utc("2026-01-01T00:00:00Z"), { jobId: "j", createdAtMs: 0, now: 0 })),
    "2026-01-02T00:00:00.000Z",
  );
  // Without tz the expression is UTC.
  assert.deepEqual(
    await runs({ kind: "cron", expr: "0 8 * * *" }, utc("2026-01-01T00:00:00Z"), 1),
    [
      "2026-01-01T08:00:00.000Z",
    ],
  );
});

Deno.test("nextRunAfter: 08:00 in New York stays 08:00 local across both 2026 DST changes", async () => {
  const s: Schedule = { kind: "cron", expr: "0 8 * * *", tz: "America/New_York" };
  // Spring forward on Sunday 8 March 2026: EST (UTC-5) to EDT (UTC-4).
  assert.deepEqual(await runs(s, utc("2026-03-06T00:00:00Z"), 4), [
    "2026-03-06T13:00:00.000Z",
    "2026-03-07T13:00:00.000Z",
    "2026-03-08T12:00:00.000Z",
    "2026-03-09T12:00:00.000Z",
  ]);
  // Fall back on Sunday 1 November 2026: EDT to EST.
  assert.deepEqual(await runs(s, utc("2026-10-31T00:00:00Z"), 3), [
    "2026-10-31T12:00:00.000Z",
    "2026-11-01T13:00:00.000Z",
    "2026-11-02T13:00:00.000Z",
  ]);
});

Deno.test("nextRunAfter: a 02:30 New York job still runs on the spring-forward day (02:30 does not exist)", async () => {
  const s: Schedule = { kind: "cron", expr: "30 2 * * *", tz: "America/New_York" };
  const [d7, d8, d9] = await runs(s, utc("2026-03-07T00:00:00Z"), 3);
  assert.equal(d7, "2026-03-07T07:30:00.000Z"); // 02:30 EST
  // 8 March jumps from 02:00 EST to 03:00 EDT: the run happens once in the
  // gap's aftermath (croner: 03:00 EDT = 07:00Z), not a day later.
  const t8 = utc(d8!);
  assert.ok(
    t8 >= utc("2026-03-08T07:00:00Z") && t8 <= utc("2026-03-08T07:30:00Z"),
    `8 March run at ${d8}`,
  );
  assert.equal(d9, "2026-03-09T06:30:00.000Z"); // 02:30 EDT: the next day is right again
  // 01:30 happens twice on 1 November (EDT, then EST): the job runs once that day.
  const fall = await runs(
    { kind: "cron", expr: "30 1 * * *", tz: "America/New_York" },
    utc("2026-10-31T12:00:00Z"),
    2,
  );
  assert.ok(
    fall[0] === "2026-11-01T05:30:00.000Z" || fall[0] === "2026-11-01T06:30:00.000Z",
    `1 November run at ${fall[0]}`,
  );
  assert.equal(fall[1], "2026-11-02T06:30:00.000Z");
});

Deno.test("nextRunAfter: 6-field expressions have seconds first", async () => {
  assert.deepEqual(
    await runs({ kind: "cron", expr: "*/15 * * * * *" }, utc("2026-01-01T00:00:07Z"), 4),
    [
      "2026-01-01T00:00:15.000Z",
      "2026-01-01T00:00:30.000Z",
      "2026-01-01T00:00:45.000Z",
      "2026-01-01T00:01:00.000Z",
    ],
  );
  assert.deepEqual(
    await runs(
      { kind: "cron", expr: "30 0 12 * * *", tz: "Asia/Shanghai" },
      utc("2026-01-01T00:00:00Z"),
      2,
    ),
    ["2026-01-01T04:00:30.000Z", "2026-01-02T04:00:30.000Z"],
  );
});

Deno.test("nextRunAfter: day-of-month and day-of-week combine with OR (Vixie cron)", async () => {
  // The 13th or any Friday (1 January 2026 is a Thursday).
  assert.deepEqual(
    await runs({ kind: "cron", expr: "0 0 13 * 5" }, utc("2026-01-01T01:00:00Z"), 5),
    [
      "2026-01-02T00:00:00.000Z",
      "2026-01-09T00:00:00.000Z",
      "2026-01-13T00:00:00.000Z",
      "2026-01-16T00:00:00.000Z",
      "2026-01-23T00:00:00.000Z",
    ],
  );
  // With one of them `*`, only the other restricts.
  assert.deepEqual(
    await runs({ kind: "cron", expr: "0 0 * * 1" }, utc("2026-01-01T01:00:00Z"), 2),
    [
      "2026-01-05T00:00:00.000Z",
      "2026-01-12T00:00:00.000Z",
    ],
  );
  assert.deepEqual(
    await runs({ kind: "cron", expr: "0 0 1 * *" }, utc("2026-01-01T01:00:00Z"), 2),
    [
      "2026-02-01T00:00:00.000Z",
      "2026-03-01T00:00:00.000Z",
    ],
  );
});

Deno.test("nextRunAfter: every, from the creation time or from an anchor", async () => {
  const created = utc("2026-01-01T10:20:00Z");
  const o = (now: number) => ({ jobId: "j", createdAtMs: created, now });
  const every: Schedule = { kind: "every", everyMs: 10 * MIN };
  assert.equal(await nextRunAfter(every, created, o(created)), created + 10 * MIN);
  assert.equal(await nextRunAfter(every, created + 10 * MIN - 1, o(0)), created + 10 * MIN);
  assert.equal(await nextRunAfter(every, created + 10 * MIN, o(0)), created + 20 * MIN);
  assert.equal(await nextRunAfter(every, created + 95 * MIN, o(0)), created + 100 * MIN);
  // An anchor in the past aligns the slots to it (here: on the hour).
  const hourly: Schedule = {
    kind: "every",
    everyMs: 60 * MIN,
    anchorMs: utc("2026-01-01T00:00:00Z"),
  };
  assert.equal(iso(await nextRunAfter(hourly, created, o(created))), "2026-01-01T11:00:00.000Z");
  assert.equal(
    iso(await nextRunAfter(hourly, utc("2026-01-01T11:00:00Z"), o(created))),
    "2026-01-01T12:00:00.000Z",
  );
  // An anchor in the future is the first run.
  const later: Schedule = { kind: "every", everyMs: MIN, anchorMs: created + 5 * MIN };
  assert.equal(await nextRunAfter(later, created, o(created)), created + 5 * MIN);
  assert.equal(await nextRunAfter(later, created + 5 * MIN, o(created)), created + 6 * MIN);
});

Deno.test("atTime and nextRunAfter: at with a zone, without one (UTC), and relative", async () => {
  const now = utc("2026-01-01T00:00:00Z");
  assert.equal(iso(atTime("2026-11-23T08:00:00+08:00", now)), "2026-11-23T00:00:00.000Z");
  assert.equal(iso(atTime("2026-11-23T08:00:00Z", now)), "2026-11-23T08:00:00.000Z");
  assert.equal(iso(atTime("2026-11-23T08:00:00", now)), "2026-11-23T08:00:00.000Z");
  assert.equal(iso(atTime("2026-11-23T08:00", now)), "2026-11-23T08:00:00.000Z");
  assert.equal(atTime("20m", now), now + 20 * MIN);
  assert.equal(atTime("1h30m", now), now + 90 * MIN);
  assert.equal(atTime("2s", now), now + 2000);
  assert.throws(() => atTime("next tuesday", now), ScheduleError);
  // A one-shot: its time while it is ahead, then nothing.
  const at: Schedule = { kind: "at", at: "2026-11-23T08:00:00+08:00" };
  const o = { jobId: "j", createdAtMs: now, now };
  assert.equal(iso(await nextRunAfter(at, now, o)), "2026-11-23T00:00:00.000Z");
  assert.equal(await nextRunAfter(at, utc("2026-11-23T00:00:00Z"), o), null);
  // A relative one counts from the job's creation, not from `after`.
  assert.equal(await nextRunAfter({ kind: "at", at: "20m" }, now + MIN, o), now + 20 * MIN);
});

Deno.test("atTime: a time without a zone is UTC whatever the gateway's TZ (T or space)", () => {
  const before = Deno.env.get("TZ");
  Deno.env.set("TZ", "Asia/Shanghai");
  try {
    assert.equal(new Date(2026, 10, 23, 8).getTimezoneOffset(), -480, "TZ took effect");
    for (
      const at of [
        "2026-11-23T08:00:00",
        "2026-11-23T08:00",
        "2026-11-23 08:00:00",
        "2026-11-23 08:00",
        "2026-11-23t08:00",
      ]
    ) {
      assert.equal(iso(atTime(at, 0)), "2026-11-23T08:00:00.000Z", at);
    }
  } finally {
    if (before === undefined) Deno.env.delete("TZ");
    else Deno.env.set("TZ", before);
  }
});

Deno.test("staggerOffset: deterministic per job id, within [0, staggerMs), and spread", async () => {
  const ids = Array.from({ length: 200 }, (_, i) => `job-${i}`);
  const offsets = ids.map((id) => staggerOffset(id, 5 * MIN));
  for (const [i, off] of offsets.entries()) {
    assert.ok(Number.isInteger(off) && off >= 0 && off < 5 * MIN, `${ids[i]}: ${off}`);
    assert.equal(staggerOffset(ids[i]!, 5 * MIN), off);
  }
  assert.ok(new Set(offsets).size > 190, `only ${new Set(offsets).size} distinct offsets`);
  const buckets = new Set(offsets.map((o) => Math.floor(o / MIN)));
  assert.equal(buckets.size, 5, "offsets cover the whole window");
  assert.equal(staggerOffset("x", 0), 0);
  assert.ok(staggerOffset("x", 1) === 0);
  // The run is the slot plus the job's offset, every day the same.
  const s: Schedule = { kind: "cron", expr: "0 8 * * *", staggerMs: 5 * MIN };
  const off = staggerOffset("job-7", 5 * MIN);
  const day1 = utc("2026-01-01T08:00:00Z") + off;
  assert.deepEqual(await runs(s, utc("2026-01-01T07:00:00Z"), 2, { jobId: "job-7" }), [
    iso(day1),
    iso(day1 + DAY),
  ]);
  // Between the slot and the staggered run, the run is still ahead.
  assert.equal(
    await nextRunAfter(s, utc("2026-01-01T08:00:00Z"), { jobId: "job-7", createdAtMs: 0, now: 0 }),
    off > 0 ? day1 : day1 + DAY,
  );
});

Deno.test("validateSchedule: names the field and what is wrong", async () => {
  let e = await scheduleError({ kind: "cron", expr: "* * * *" });
  assert.equal(e.field, "schedule.expr");
  assert.match(e.message, /4 fields/);
  e = await scheduleError({ kind: "cron", expr: "0 0 * * * * *" });
  assert.equal(e.field, "schedule.expr");
  assert.match(e.message, /7 fields/);
  for (
    const [expr, name] of [
      ["61 * * * *", /minute/],
      ["* 25 * * *", /hour/],
      ["* * 32 * *", /day/],
      ["* * * 13 *", /month/],
      ["* * * * 8", /dayOfWeek|weekday/],
      ["60 * * * * *", /second/],
      ["a b c d e", /invalid/],
    ] as const
  ) {
    e = await scheduleError({ kind: "cron", expr });
    assert.equal(e.field, "schedule.expr", expr);
    assert.match(e.message, name, `${expr}: ${e.message}`);
  }
  e = await scheduleError({ kind: "cron", expr: "0 0 30 2 *" });
  assert.match(e.message, /never fires/);
  e = await scheduleError({ kind: "cron", expr: "0 8 * * *", tz: "Mars/Olympus" });
  assert.equal(e.field, "schedule.tz");
  assert.match(e.message, /Mars\/Olympus/);
  e = await scheduleError({ kind: "at", at: "2025-12-31T23:59:59Z" });
  assert.equal(e.field, "schedule.at");
  assert.match(e.message, /in the past/);
  e = await scheduleError({ kind: "at", at: "soon" });
  assert.equal(e.field, "schedule.at");
  for (const everyMs of [999, 0, -1000, NaN]) {
    e = await scheduleError({ kind: "every", everyMs });
    assert.equal(e.field, "schedule.everyMs");
  }
  // And the good ones pass.
  const now = utc("2026-01-01T00:00:00Z");
  await validateSchedule({ kind: "cron", expr: "0 8 * * *", tz: "Asia/Shanghai" }, now);
  await validateSchedule({ kind: "cron", expr: "*/5 * * * * *" }, now);
  await validateSchedule({ kind: "every", everyMs: 1000 }, now);
  await validateSchedule({ kind: "at", at: "20m" }, now);
  await validateSchedule({ kind: "at", at: "2026-01-01T00:00:01Z" }, now);
});

// ------------------------------------------------------------------ B. manual clock, real gateway

const HOUR = 60 * MIN;

/** `cron` events of `jobId` with `action`, as `c` received them so far. */
function cronEvents(c: RawClient, jobId: string, action: string): AnyFrame[] {
  return c.frames.filter((f) =>
    f.type === "event" && f.event === "cron" && f.payload?.jobId === jobId &&
    f.payload?.action === action
  );
}

/** A job's run history, oldest first. */
async function history(c: RawClient, id: string): Promise<AnyFrame[]> {
  return (await ok(c, "cron.runs", { id, limit: 500, sortDir: "asc" })).entries;
}

/** Wait until `id` has `n` finished (not running) runs and return them, oldest first. */
function finishedRuns(c: RawClient, id: string, n: number, ms = 3000): Promise<AnyFrame[]> {
  return until(`${n} finished runs of ${id}`, async () => {
    const e = await history(c, id);
    return e.length >= n && e.every((r) => r.status !== "running") ? e : undefined;
  }, ms);
}

/**
 * Move the clock to `target` one scheduler wake-up at a time (the scheduler
 * sleeps at most a minute and re-arms asynchronously), as real time would.
 */
async function advanceTo(clock: SchedClock, target: number): Promise<void> {
  for (;;) {
    const at = clock.nextTimeoutAt;
    if (at === undefined || at > target) break;
    const armed = clock.armed;
    clock.advance(Math.max(0, at - clock.now()));
    await until("the scheduler to re-arm", () => clock.armed > armed);
  }
  if (target > clock.now()) clock.advance(target - clock.now());
}

const beat = (name: string, everyMs: number) => ({
  name,
  schedule: { kind: "every", everyMs },
  payload: { kind: "systemEvent", text: name },
  wakeMode: "next-heartbeat",
});

Deno.test("scheduler (manual clock): an every job fires when the clock reaches its slot, not before", async () => {
  const clock = new SchedClock();
  await using t = await startTestGateway({ clock });
  const c = await connected(t.url);
  try {
    const t0 = clock.now();
    const job = await ok(c, "cron.add", beat("half-minute", 30_000));
    assert.equal(job.nextRunAtMs, t0 + 30_000);
    assert.equal(clock.nextTimeoutAt, t0 + 30_000, "the timer is armed for the slot");
    // A neighbour due 1 ms earlier wakes the scheduler just before the slot.
    const early = await ok(c, "cron.add", {
      ...beat("early", MIN),
      schedule: { kind: "every", everyMs: MIN, anchorMs: t0 + 29_999 },
    });
    assert.equal(early.nextRunAtMs, t0 + 29_999);
    assert.equal(clock.nextTimeoutAt, t0 + 29_999);
    clock.advance(29_999);
    await finishedRuns(c, early.id, 1);
    await until("the timer armed for the slot", () => clock.nextTimeoutAt === t0 + 30_000);
    await sleep(50);
    assert.deepEqual(await history(c, job.id), [], "not a millisecond early");
    assert.equal(cronEvents(c, job.id, "started").length, 0);
    clock.advance(1);
    const [r] = await finishedRuns(c, job.id, 1);
    assert.equal(r.status, "ok");
    assert.equal(r.scheduledAtMs, t0 + 30_000);
    assert.equal(r.startedAtMs, t0 + 30_000);
    assert.equal((await ok(c, "cron.get", { id: job.id })).nextRunAtMs, t0 + 60_000);
    await until("the timer armed for the next slot", () => clock.nextTimeoutAt === t0 + 60_000);
    clock.advance(29_000);
    await sleep(100);
    assert.equal((await history(c, job.id)).length, 1);
    clock.advance(1_000);
    const two = await finishedRuns(c, job.id, 2);
    assert.deepEqual(two.map((r) => r.scheduledAtMs), [t0 + 30_000, t0 + 60_000]);
  } finally {
    await c.close();
  }
});

Deno.test("scheduler (manual clock): after downtime a missed job runs once at start-up, then on its slots", async () => {
  const clock = new SchedClock();
  const stateDir = await Deno.makeTempDir({ prefix: "gw-cron-down-" });
  let t: TestGateway | undefined;
  let c: RawClient | undefined;
  try {
    t = await startTestGateway({ clock, stateDir });
    c = await connected(t.url);
    const t0 = clock.now();
    const job = await ok(c, "cron.add", beat("minutely", MIN));
    clock.advance(MIN);
    await finishedRuns(c, job.id, 1);
    await c.close();
    await t.stop();
    // Down for 5.5 slots: t0+2m ... t0+6m are missed.
    clock.jump(5 * MIN + 30_000);
    t = await startTestGateway({ clock, stateDir });
    c = await connected(t.url);
    const now = clock.now();
    assert.equal(now, t0 + 6 * MIN + 30_000);
    assert.equal(clock.nextTimeoutAt, now, "an overdue job arms the timer for now");
    clock.advance(0);
    const runs2 = await finishedRuns(c, job.id, 2);
    assert.equal(runs2.length, 2, JSON.stringify(runs2));
    assert.equal(runs2[1].status, "ok");
    assert.equal(runs2[1].scheduledAtMs, t0 + 2 * MIN, "the run is for the first missed slot");
    assert.equal(runs2[1].startedAtMs, now);
    const after = await ok(c, "cron.get", { id: job.id });
    assert.equal(after.nextRunAtMs, t0 + 7 * MIN, "the next slot after now");
    await until("the timer armed for the next slot", () => clock.nextTimeoutAt === t0 + 7 * MIN);
    clock.advance(0);
    await sleep(150);
    assert.equal((await history(c, job.id)).length, 2, "no run per missed slot");
    assert.equal(cronEvents(c, job.id, "started").length, 1);
    clock.advance(30_000);
    const runs3 = await finishedRuns(c, job.id, 3);
    assert.equal(runs3.length, 3);
    assert.equal(runs3[2].scheduledAtMs, t0 + 7 * MIN);
  } finally {
    await c?.close();
    await t?.stop();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
});

function agentConfig(fake: FakeAnthropic): Record<string, unknown> {
  return {
    agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
    models: { providers: { anthropic: { apiKey: "k-test", baseUrl: fake.url } } },
  };
}

Deno.test("scheduler (manual clock): a slot that comes while the job still runs is skipped", async () => {
  await using fake = await startFakeAnthropic({ apiKey: "k-test" });
  fake.script(() => ({ hang: true }));
  const clock = new SchedClock();
  await using t = await startTestGateway({ clock, config: agentConfig(fake) });
  const c = await connected(t.url);
  try {
    const t0 = clock.now();
    const job = await ok(c, "cron.add", {
      name: "slow",
      schedule: { kind: "every", everyMs: MIN },
      payload: { kind: "agentTurn", message: "take your time" },
    });
    assert.equal(job.sessionTarget, "isolated");
    clock.advance(MIN);
    const started = await c.next(
      (f) => f.event === "cron" && f.payload.action === "started" && f.payload.jobId === job.id,
    );
    await until("the turn reaches the model", () => fake.requests.length === 1);
    await until("the timer armed for the next slot", () => clock.nextTimeoutAt === t0 + 2 * MIN);
    clock.advance(MIN);
    const skipped = await c.next(
      (f) => f.event === "cron" && f.payload.action === "skipped" && f.payload.jobId === job.id,
    );
    assert.equal(skipped.payload.scheduledAtMs, t0 + 2 * MIN);
    assert.equal(skipped.payload.nextRunAtMs, t0 + 3 * MIN);
    const runs = await history(c, job.id);
    assert.deepEqual(
      runs.map((r) => [r.status, r.scheduledAtMs]),
      [["running", t0 + MIN], ["skipped", t0 + 2 * MIN]],
    );
    assert.equal(runs[0].runId, started.payload.runId);
    assert.equal((await ok(c, "cron.runs", { id: job.id, status: "skipped" })).total, 1);
    const got = await ok(c, "cron.get", { id: job.id });
    assert.equal(got.state.lastStatus, "skipped");
    assert.equal(got.state.runningRunId, started.payload.runId, "the running claim is kept");
    assert.equal(got.nextRunAtMs, t0 + 3 * MIN);
    assert.equal(fake.requests.length, 1, "no second turn was started");
    assert.equal((await ok(c, "cron.status")).running, 1);
  } finally {
    await c.close();
  }
});

Deno.test("scheduler (manual clock): a run cut off by a crash is closed as one error record at the next start", async () => {
  await using fake = await startFakeAnthropic({ apiKey: "k-test" });
  fake.script(() => ({ hang: true }));
  const clock = new SchedClock();
  const stateDir = await Deno.makeTempDir({ prefix: "gw-cron-crash-" });
  const config = agentConfig(fake);
  let t: TestGateway | undefined;
  let c: RawClient | undefined;
  try {
    t = await startTestGateway({ clock, stateDir, config });
    c = await connected(t.url);
    const job = await ok(c, "cron.add", {
      name: "long",
      schedule: { kind: "every", everyMs: 10 * MIN },
      payload: { kind: "agentTurn", message: "go", timeoutSeconds: 60 },
    });
    await advanceTo(clock, clock.now() + 10 * MIN);
    await until("the turn reaches the model", () => fake.requests.length === 1);
    const [running] = await until("the running record", async () => {
      const r = await history(c!, job.id);
      return r.length === 1 && r[0].status === "running" ? r : undefined;
    });
    // What a SIGKILL now would leave in the store: the job claimed, its run "running".
    const claimed = await t.gw.store.cron.get(job.id);
    assert.ok(claimed?.state.runningRunId === running.runId);
    const record = await t.gw.store.cron.runs(job.id, 10);
    await c.close();
    await t.stop();
    const kv = await Deno.openKv(`${stateDir}/gw.kv`);
    try {
      const store = new CronStore(kv);
      assert.ok(await store.put(await store.entry(job.id), claimed!));
      for (const r of record) await store.putRun(r);
    } finally {
      kv.close();
    }
    // Back after the claim expired (timeout 60 s + margin).
    clock.jump(3 * MIN);
    t = await startTestGateway({ clock, stateDir, config });
    c = await connected(t.url);
    const after = await history(c, job.id);
    assert.deepEqual(
      after.map((r) => [r.runId, r.status, r.scheduledAtMs]),
      [[running.runId, "error", running.scheduledAtMs]],
      JSON.stringify(after),
    );
    assert.match(after[0].error, /interrupted/);
    const got = await ok(c, "cron.get", { id: job.id });
    assert.equal(got.state.runningAtMs, undefined);
    assert.equal(got.state.lastStatus, "error");
  } finally {
    await c?.close();
    await t?.stop();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("scheduler (manual clock): run history keeps the newest 200 and nothing older than 30 days", async () => {
  const clock = new SchedClock();
  await using t = await startTestGateway({ clock });
  const c = await connected(t.url);
  try {
    const t0 = clock.now();
    const job = await ok(c, "cron.add", beat("fast", 1000));
    const finished = () => cronEvents(c, job.id, "finished").length;
    const N = 205;
    for (let i = 1; i <= N; i++) {
      await until("the timer", () => clock.nextTimeoutAt !== undefined);
      clock.advance(1000);
      await until(`run ${i}`, () => finished() >= i);
    }
    const kept = await history(c, job.id);
    assert.equal((await ok(c, "cron.runs", { id: job.id })).total, 200);
    assert.equal(kept.length, 200);
    assert.ok(kept.every((r) => r.status === "ok"));
    assert.equal(kept[0].scheduledAtMs, t0 + (N - 199) * 1000, "the oldest runs went");
    assert.equal(kept[199].scheduledAtMs, t0 + N * 1000);
    // Jump ahead so that the next run happens just over 30 days after the 100th kept run.
    const cut = kept[99].startedAtMs as number;
    await until("the timer", () => clock.nextTimeoutAt !== undefined);
    const due = clock.nextTimeoutAt!;
    const fireAt = cut + 30 * DAY + 500;
    clock.jump(fireAt - due);
    assert.equal(clock.nextTimeoutAt, fireAt);
    clock.advance(fireAt - clock.now());
    await until("the run after the jump", () => finished() >= N + 1);
    const left = await history(c, job.id);
    assert.equal(left.length, 101, "100 runs within 30 days and the new one");
    assert.equal(left[0].runId, kept[100].runId);
    const last = left[100];
    assert.equal(last.startedAtMs, fireAt);
    assert.equal(last.scheduledAtMs, t0 + (N + 1) * 1000, "one run for the overdue slot");
    assert.ok(left.every((r) => fireAt - r.startedAtMs <= 30 * DAY));
    await sleep(100);
    assert.equal(cronEvents(c, job.id, "started").length, N + 1, "no catch-up storm");
  } finally {
    await c.close();
  }
});

Deno.test("scheduler (manual clock): a clock jump backwards fires nothing early, and the job still runs", async () => {
  const clock = new SchedClock();
  await using t = await startTestGateway({ clock });
  const c = await connected(t.url);
  try {
    const t0 = clock.now();
    const job = await ok(c, "cron.add", beat("half-minute", 30_000));
    clock.jump(-HOUR);
    // The armed timer still fires after its delay, an hour before the slot by the wall clock.
    let steps = 0;
    while (clock.now() < t0 + 30_000) {
      const at = clock.nextTimeoutAt;
      assert.ok(at !== undefined, "a timer is armed");
      assert.ok(at <= t0 + 30_000, `the timer (${iso(at)}) is not past the slot`);
      const armed = clock.armed;
      clock.advance(at - clock.now());
      steps++;
      if (clock.now() >= t0 + 30_000) break;
      await until("the scheduler re-arms", () => clock.armed > armed);
      assert.equal(
        cronEvents(c, job.id, "started").length,
        0,
        `started early at ${iso(clock.now())}`,
      );
      assert.ok(steps < 200, "too many wake-ups");
    }
    assert.ok(steps >= 60, `${steps} wake-ups over an hour (at most a minute apart)`);
    const [r] = await finishedRuns(c, job.id, 1);
    assert.equal(r.scheduledAtMs, t0 + 30_000);
    assert.equal(r.startedAtMs, t0 + 30_000);
    assert.equal((await ok(c, "cron.get", { id: job.id })).nextRunAtMs, t0 + 60_000);
    assert.deepEqual((await history(c, job.id)).length, 1);
  } finally {
    await c.close();
  }
});

// ------------------------------------------------------------------ C. real time

/** The `cron` event `action` of `jobId` (and `runId`, when given). */
function cronEvent(
  c: RawClient,
  jobId: string,
  action: string,
  runId?: string,
  ms = 4000,
): Promise<AnyFrame> {
  return c.next(
    (f) =>
      f.type === "event" && f.event === "cron" && f.payload?.jobId === jobId &&
      f.payload?.action === action && (runId === undefined || f.payload.runId === runId),
    ms,
  );
}

Deno.test("cron: a restart keeps jobs and their history, and the jobs keep firing", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-cron-restart-" });
  let t: TestGateway | undefined;
  let c: RawClient | undefined;
  try {
    t = await startTestGateway({ stateDir });
    c = await connected(t.url);
    const job = await ok(c, "cron.add", beat("every second", 1000));
    const yearly = await ok(c, "cron.add", {
      name: "new year",
      schedule: { kind: "cron", expr: "0 0 1 1 *", tz: "Asia/Shanghai" },
      payload: { kind: "systemEvent", text: "happy new year" },
      wakeMode: "next-heartbeat",
    });
    const first = await cronEvent(c, job.id, "finished");
    const forced = await ok(c, "cron.run", { id: yearly.id });
    await cronEvent(c, yearly.id, "finished", forced.runId);
    const before = await history(c, job.id);
    await c.close();
    await t.stop();

    t = await startTestGateway({ stateDir });
    c = await connected(t.url);
    const ids = (await ok(c, "cron.list")).jobs.map((j: AnyFrame) => j.id).sort();
    assert.deepEqual(ids, [job.id, yearly.id].sort());
    const again = await ok(c, "cron.get", { id: yearly.id });
    for (const k of ["name", "schedule", "payload", "createdAtMs", "sessionTarget", "wakeMode"]) {
      assert.deepEqual(again[k], yearly[k], k);
    }
    assert.equal(again.nextRunAtMs, yearly.nextRunAtMs);
    const yRuns = await history(c, yearly.id);
    assert.deepEqual(yRuns.map((r) => [r.runId, r.status, r.manual]), [[forced.runId, "ok", true]]);
    const after = await history(c, job.id);
    assert.ok(after.length >= before.length);
    assert.ok(after.some((r) => r.runId === first.payload.runId), "the history survived");
    // And the every job keeps running after the restart.
    const next = await c.next(
      (f) =>
        f.event === "cron" && f.payload.action === "finished" && f.payload.jobId === job.id &&
        !before.some((r) => r.runId === f.payload.runId),
      3000,
    );
    assert.equal(next.payload.status, "ok");
  } finally {
    await c?.close();
    await t?.stop();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("cron: an at one-shot runs once, then is removed (or kept disabled with deleteAfterRun false)", async () => {
  await using t = await startTestGateway();
  const c = await connected(t.url);
  try {
    const addedAt = Date.now();
    const once = {
      schedule: { kind: "at", at: "2s" },
      wakeMode: "next-heartbeat",
      payload: { kind: "systemEvent", text: "x" },
    };
    const gone = await ok(c, "cron.add", { name: "once", ...once });
    const kept = await ok(c, "cron.add", { name: "once, kept", ...once, deleteAfterRun: false });
    // The relative time is fixed when the job is written.
    assert.match(gone.schedule.at, /^\d{4}-\d\d-\d\dT.*Z$/);
    assert.ok(Math.abs(gone.nextRunAtMs - (addedAt + 2000)) < 500, `${gone.nextRunAtMs - addedAt}`);
    const fin = await cronEvent(c, gone.id, "finished");
    assert.ok(Date.now() - addedAt >= 1900, "not before its time");
    assert.equal(fin.payload.status, "ok");
    assert.equal(fin.payload.removed, true);
    await cronEvent(c, gone.id, "removed");
    await cronEvent(c, kept.id, "finished");
    await sleep(500);
    assert.equal(cronEvents(c, gone.id, "started").length, 1);
    assert.equal(cronEvents(c, kept.id, "started").length, 1);
    assert.equal((await err(c, "cron.get", { id: gone.id })).details.code, "CRON_JOB_NOT_FOUND");
    assert.equal((await err(c, "cron.runs", { id: gone.id })).details.code, "CRON_JOB_NOT_FOUND");
    const k = await ok(c, "cron.get", { id: kept.id });
    assert.equal(k.enabled, false);
    assert.equal(k.nextRunAtMs, null);
    assert.equal(k.state.lastStatus, "ok");
    assert.deepEqual((await history(c, kept.id)).map((r) => r.status), ["ok"]);
    assert.deepEqual((await ok(c, "cron.list")).jobs, []);
    const all = (await ok(c, "cron.list", { includeDisabled: true })).jobs;
    assert.deepEqual(all.map((j: AnyFrame) => j.id), [kept.id]);
  } finally {
    await c.close();
  }
});

Deno.test("cron.run: force runs a job that is not due and keeps its next run; due answers not-due", async () => {
  await using t = await startTestGateway();
  const c = await connected(t.url);
  try {
    const job = await ok(c, "cron.add", {
      name: "new year",
      schedule: { kind: "cron", expr: "0 0 1 1 *" },
      payload: { kind: "systemEvent", text: "happy new year" },
      wakeMode: "next-heartbeat",
    });
    const next = job.nextRunAtMs;
    assert.ok(next > Date.now() + MIN);
    assert.deepEqual(await ok(c, "cron.run", { id: job.id, mode: "due" }), {
      ok: true,
      ran: false,
      reason: "not-due",
      enqueued: false,
    });
    await sleep(100);
    assert.equal(cronEvents(c, job.id, "started").length, 0);
    const r = await ok(c, "cron.run", { jobId: job.id, mode: "force" });
    assert.equal(r.ran, true);
    assert.equal(typeof r.runId, "string");
    const fin = await cronEvent(c, job.id, "finished", r.runId);
    assert.equal(fin.payload.status, "ok");
    assert.equal(fin.payload.nextRunAtMs, next);
    const got = await ok(c, "cron.get", { id: job.id });
    assert.equal(got.nextRunAtMs, next, "a forced run leaves the schedule alone");
    assert.equal(got.state.lastStatus, "ok");
    assert.equal(got.state.runningAtMs, undefined);
    const [rec] = await history(c, job.id);
    assert.equal(rec.runId, r.runId);
    assert.equal(rec.manual, true);
    // A disabled job: due says so, force still runs it.
    await ok(c, "cron.update", { id: job.id, patch: { enabled: false } });
    assert.equal((await ok(c, "cron.run", { id: job.id, mode: "due" })).reason, "disabled");
    const r2 = await ok(c, "cron.run", { id: job.id });
    assert.equal(r2.ran, true);
    await cronEvent(c, job.id, "finished", r2.runId);
    assert.equal((await history(c, job.id)).length, 2);
  } finally {
    await c.close();
  }
});

Deno.test("cron: an isolated agentTurn job runs in cron:<id>, fresh each run, and announces its reply", async () => {
  await using fake = await startFakeAnthropic({ apiKey: "k-test" });
  let n = 0;
  fake.script(() => ({ blocks: [{ type: "text", text: ["report ", `${++n}`] }] }));
  // Announcements go out through the real Telegram channel to a Bot API server.
  const token = "424242:AAcron-test-token-abcdefghij";
  await using tg = await TelegramApi.start({ tokens: [token] });
  await using t = await startTestGateway({
    config: {
      ...agentConfig(fake),
      channels: { telegram: { botToken: token, apiRoot: tg.apiRoot } },
    },
  });
  const sent = () => tg.botMessages(token, 12345).map((m) => m.text);
  const c = await connected(t.url);
  try {
    const job = await ok(c, "cron.add", {
      name: "daily report",
      schedule: { kind: "cron", expr: "0 9 * * *", tz: "Europe/Berlin" },
      sessionTarget: "isolated",
      payload: { kind: "agentTurn", message: "write the report" },
      delivery: { mode: "announce", channel: "telegram", to: "12345" },
    });
    const key = `cron:${job.id}`;
    const r1 = await ok(c, "cron.run", { id: job.id });
    const fin1 = await cronEvent(c, job.id, "finished", r1.runId, 8000);
    assert.equal(fin1.payload.status, "ok", JSON.stringify(fin1.payload));
    assert.equal(fin1.payload.summary, "report 1");
    const h1 = await ok(c, "chat.history", { sessionKey: key });
    assert.equal(h1.sessionKey, key);
    assert.deepEqual(h1.messages.map((m: AnyFrame) => m.role), ["user", "assistant"]);
    assert.match(JSON.stringify(h1.messages[0]), /write the report/);
    assert.match(JSON.stringify(h1.messages[1]), /report 1/);
    const [rec] = await history(c, job.id);
    assert.equal(rec.sessionKey, key);
    assert.equal(rec.deliveryStatus, "delivered");
    assert.deepEqual(sent(), ["report 1"]);
    assert.equal((await ok(c, "cron.get", { id: job.id })).state.lastDeliveryStatus, "delivered");

    // Each run starts from an empty transcript.
    const r2 = await ok(c, "cron.run", { id: job.id });
    await cronEvent(c, job.id, "finished", r2.runId, 8000);
    const h2 = await ok(c, "chat.history", { sessionKey: key });
    assert.equal(h2.messages.length, 2, JSON.stringify(h2.messages));
    assert.match(JSON.stringify(h2.messages[1]), /report 2/);
    assert.doesNotMatch(JSON.stringify(h2.messages), /report 1/);
    assert.equal(
      (fake.requests[1]!.body.messages as unknown[]).length,
      1,
      "the model saw one message",
    );
    assert.equal(sent().length, 2);

    // Announcing to a channel that is not there: the run is ok, the delivery failed.
    const lost = await ok(c, "cron.add", {
      name: "lost report",
      schedule: { kind: "every", everyMs: DAY },
      payload: { kind: "agentTurn", message: "again" },
      delivery: { mode: "announce", channel: "discord", to: "x" },
    });
    const r3 = await ok(c, "cron.run", { id: lost.id });
    const fin3 = await cronEvent(c, lost.id, "finished", r3.runId, 8000);
    assert.equal(fin3.payload.status, "ok");
    assert.equal((await history(c, lost.id))[0].deliveryStatus, "failed");
    assert.equal(sent().length, 2);
  } finally {
    await c.close();
  }
});

Deno.test("cron: a session:<key> job runs in the session chat.history shows for <key>", async () => {
  await using fake = await startFakeAnthropic({ apiKey: "k-test" });
  fake.script(() => ({ blocks: [{ type: "text", text: "project status" }] }));
  await using t = await startTestGateway({ config: agentConfig(fake) });
  const c = await connected(t.url);
  try {
    const job = await ok(c, "cron.add", {
      name: "project",
      schedule: { kind: "cron", expr: "0 9 * * 1" },
      sessionTarget: "session:project",
      payload: { kind: "agentTurn", message: "how is the project" },
    });
    const r = await ok(c, "cron.run", { id: job.id });
    const fin = await cronEvent(c, job.id, "finished", r.runId, 8000);
    assert.equal(fin.payload.status, "ok");
    const h = await ok(c, "chat.history", { sessionKey: "project" });
    assert.equal(h.sessionKey, "agent:main:project");
    assert.equal(h.messages.length, 2, "the turn is in the session clients call project");
    const [rec] = await history(c, job.id);
    assert.equal(rec.sessionKey, "agent:main:project");
  } finally {
    await c.close();
  }
});

Deno.test("cron.remove during a run leaves no run history behind", async () => {
  await using fake = await startFakeAnthropic({ apiKey: "k-test" });
  fake.script(() => ({ blocks: [{ type: "text", text: "late" }], delayMs: 40 }));
  await using t = await startTestGateway({ config: agentConfig(fake) });
  const c = await connected(t.url);
  try {
    const job = await ok(c, "cron.add", {
      name: "removed while running",
      schedule: { kind: "every", everyMs: DAY },
      payload: { kind: "agentTurn", message: "go" },
    });
    const r = await ok(c, "cron.run", { id: job.id });
    await until("the turn reaches the model", () => fake.requests.length === 1);
    assert.deepEqual(await ok(c, "cron.remove", { id: job.id }), { ok: true, removed: true });
    await cronEvent(c, job.id, "finished", r.runId, 8000);
    await sleep(50);
    const all = (await ok(c, "cron.runs", { limit: 500 })).entries;
    assert.deepEqual(all.filter((e: AnyFrame) => e.jobId === job.id), [], "orphan run records");
  } finally {
    await c.close();
  }
});

Deno.test("cron: two processes on one state dir run a 1-second job once per slot", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-cron-two-" });
  const procs: GwChild[] = [];
  const socks: RawClient[] = [];
  try {
    procs.push(await GwChild.start(stateDir));
    socks.push(await connected(procs[0]!.url));
    const job = await ok(socks[0]!, "cron.add", beat("every second", 1000));
    // The second process starts after the job exists, so its timer races for every slot.
    procs.push(await GwChild.start(stateDir));
    socks.push(await connected(procs[1]!.url));
    const SLOTS = 30;
    const slots = job.nextRunAtMs + (SLOTS - 1) * 1000;
    await until("30 slots", async () => {
      const r = await ok(socks[0]!, "cron.runs", { id: job.id, limit: 500 });
      return r.entries.some((e: AnyFrame) => e.scheduledAtMs >= slots && e.status !== "running");
    }, SLOTS * 1000 + 8000);
    const runs = (await history(socks[0]!, job.id)).filter((r) => r.scheduledAtMs <= slots);
    const at = runs.map((r) => r.scheduledAtMs as number);
    assert.equal(new Set(at).size, at.length, `duplicate slots: ${at}`);
    // Every slot from the first one on, except possibly the very first.
    const first = job.nextRunAtMs as number;
    assert.ok(at[0] === first || at[0] === first + 1000, `first run for ${at[0]! - first}`);
    assert.equal(at[at.length - 1], slots, "the last slot ran");
    for (let i = 1; i < at.length; i++) {
      assert.equal(at[i]! - at[i - 1]!, 1000, `slot missed after ${iso(at[i - 1]!)}`);
    }
    assert.ok(
      runs.every((r) => r.status === "ok"),
      JSON.stringify(runs.filter((r) => r.status !== "ok")),
    );
    // Cron events cross processes (lib/server/cluster.ts): a client on either
    // process sees each run start once, whichever process ran it.
    const started = (s: RawClient) =>
      new Set(cronEvents(s, job.id, "started").map((f) => f.payload.runId)).size;
    const n = runs.length;
    await until(
      "every start event on both sockets",
      () => started(socks[0]!) >= n && started(socks[1]!) >= n,
      5000,
    );
    for (const s of socks) {
      const ids = cronEvents(s, job.id, "started").map((f) => f.payload.runId);
      assert.equal(ids.length, new Set(ids).size, "no start event twice on one socket");
    }
  } finally {
    await Promise.all(socks.map((s) => s.close()));
    await Promise.all(procs.map((p) => p.kill()));
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a 1-second every job fires on schedule and its cron events arrive", async () => {
  await using t = await startTestGateway();
  const c = await connected(t.url);
  try {
    const job = await ok(c, "cron.add", {
      name: "tick",
      schedule: { kind: "every", everyMs: 1000 },
      payload: { kind: "systemEvent", text: "tick" },
      wakeMode: "next-heartbeat",
    });
    assert.equal(typeof job.id, "string");
    assert.equal(job.sessionTarget, "main");
    const firstAt = job.state.nextRunAtMs;
    const started = await c.next((f) => f.event === "cron" && f.payload.action === "started", 3000);
    const startedAt = Date.now();
    assert.ok(startedAt - firstAt < 200, `started ${startedAt - firstAt} ms after its time`);
    const finished = await c.next(
      (f) =>
        f.event === "cron" && f.payload.action === "finished" &&
        f.payload.runId === started.payload.runId,
      3000,
    );
    assert.equal(finished.payload.status, "ok");
    await c.next(
      (f) =>
        f.event === "cron" && f.payload.action === "finished" &&
        f.payload.runId !== started.payload.runId,
      3000,
    );
    const runs = await ok(c, "cron.runs", { id: job.id });
    assert.ok(runs.entries.length >= 2);
    assert.equal(runs.entries[0].status, "ok");
    const status = await ok(c, "cron.status");
    assert.equal(status.jobs, 1);
    const e = await err(c, "cron.remove", { id: "nope" });
    assert.equal(e.details.code, "CRON_JOB_NOT_FOUND");
    assert.deepEqual(await ok(c, "cron.remove", { id: job.id }), { ok: true, removed: true });
  } finally {
    await c.close();
  }
});

Deno.test("cron methods: bad params answer INVALID_REQUEST naming the field; the connection survives", async () => {
  await using t = await startTestGateway();
  const c = await connected(t.url);
  try {
    const job = await ok(c, "cron.add", beat("good", 60_000));
    const sys = { kind: "systemEvent", text: "x" };
    const agent = { kind: "agentTurn", message: "x" };
    const every = { kind: "every", everyMs: 60_000 };
    const add = (over: Record<string, unknown>) => ({
      name: "n",
      schedule: every,
      payload: sys,
      ...over,
    });
    const cases: [string, unknown, RegExp, string?][] = [
      ["cron.list", { includeDisabled: "yes" }, /params\.includeDisabled/],
      ["cron.get", {}, /params\.id/],
      ["cron.get", { id: 5 }, /params\.id/],
      ["cron.get", { id: "a/b" }, /params\.id/],
      ["cron.get", { jobId: "a\\b" }, /params\.jobId/],
      ["cron.get", { id: "" }, /params\.id/],
      ["cron.get", { id: "nope" }, /nope/, "CRON_JOB_NOT_FOUND"],
      ["cron.status", "now", /params/],
      ["cron.runs", { id: "nope" }, /nope/, "CRON_JOB_NOT_FOUND"],
      ["cron.runs", { id: "a/b" }, /params\.id/],
      ["cron.runs", { limit: 0 }, /params\.limit/],
      ["cron.runs", { limit: "10" }, /params\.limit/],
      ["cron.runs", { offset: -1 }, /params\.offset/],
      ["cron.runs", { status: "weird" }, /params\.status/],
      ["cron.add", { schedule: every, payload: sys }, /params\.name/],
      ["cron.add", add({ name: "   " }), /params\.name/],
      ["cron.add", add({ name: 5 }), /params\.name/],
      ["cron.add", add({ schedule: undefined }), /params\.schedule/],
      ["cron.add", add({ schedule: { kind: "weekly" } }), /params\.schedule\.kind/],
      [
        "cron.add",
        add({ schedule: { kind: "cron", expr: "61 * * * *" } }),
        /params\.schedule\.expr.*minute/,
        "INVALID_SCHEDULE",
      ],
      [
        "cron.add",
        add({ schedule: { kind: "cron", expr: "* * * *" } }),
        /params\.schedule\.expr.*4 fields/,
        "INVALID_SCHEDULE",
      ],
      [
        "cron.add",
        add({ schedule: { kind: "cron", expr: "* * * * * * *" } }),
        /params\.schedule\.expr.*7 fields/,
        "INVALID_SCHEDULE",
      ],
      [
        "cron.add",
        add({ schedule: { kind: "cron", expr: "0 8 * * *", tz: "Mars/Olympus" } }),
        /params\.schedule\.tz/,
        "INVALID_SCHEDULE",
      ],
      ["cron.add", add({ schedule: { kind: "cron", expr: 5 } }), /params\.schedule\.expr/],
      [
        "cron.add",
        add({ schedule: { kind: "at", at: "2020-01-01T00:00:00Z" } }),
        /params\.schedule\.at.*past/,
        "INVALID_SCHEDULE",
      ],
      [
        "cron.add",
        add({ schedule: { kind: "at", at: "whenever" } }),
        /params\.schedule\.at/,
        "INVALID_SCHEDULE",
      ],
      ["cron.add", add({ schedule: { kind: "every", everyMs: 500 } }), /params\.schedule\.everyMs/],
      [
        "cron.add",
        add({ schedule: { kind: "every", everyMs: "60000" } }),
        /params\.schedule\.everyMs/,
      ],
      [
        "cron.add",
        add({ schedule: { kind: "every", everyMs: 1.5e3 + 0.5 } }),
        /params\.schedule\.everyMs/,
      ],
      [
        "cron.add",
        add({ payload: agent, sessionTarget: "main" }),
        /params\.sessionTarget/,
        "INVALID_SESSION_TARGET",
      ],
      [
        "cron.add",
        add({ payload: sys, sessionTarget: "isolated" }),
        /params\.sessionTarget/,
        "INVALID_SESSION_TARGET",
      ],
      ["cron.add", add({ sessionTarget: "elsewhere" }), /params\.sessionTarget/],
      ["cron.add", add({ payload: { kind: "shell", cmd: "rm" } }), /params\.payload\.kind/],
      ["cron.add", add({ payload: { kind: "systemEvent" } }), /params\.payload\.text/],
      [
        "cron.add",
        add({ payload: { kind: "agentTurn", message: "x", timeoutSeconds: 0 } }),
        /params\.payload\.timeoutSeconds/,
      ],
      ["cron.add", add({ wakeMode: "later" }), /params\.wakeMode/],
      ["cron.add", add({ enabled: "yes" }), /params\.enabled/],
      ["cron.add", add({ delivery: { mode: "shout" } }), /params\.delivery\.mode/],
      ["cron.update", { patch: { name: "x" } }, /params\.id/],
      ["cron.update", { id: "nope", patch: { name: "x" } }, /nope/, "CRON_JOB_NOT_FOUND"],
      ["cron.update", { id: "a/b", patch: { name: "x" } }, /params\.id/],
      ["cron.update", { id: job.id }, /params\.patch/],
      ["cron.update", { id: job.id, patch: "x" }, /params\.patch/],
      ["cron.update", { id: job.id, patch: { name: "" } }, /params\.patch\.name/],
      [
        "cron.update",
        { id: job.id, patch: { schedule: { kind: "cron", expr: "0 25 * * *" } } },
        /params\.schedule\.expr.*hour/,
        "INVALID_SCHEDULE",
      ],
      [
        "cron.update",
        { id: job.id, patch: { schedule: { kind: "every", everyMs: 10 } } },
        /params\.patch\.schedule\.everyMs/,
      ],
      [
        "cron.update",
        { id: job.id, patch: { sessionTarget: "isolated" } },
        /params\.sessionTarget/,
        "INVALID_SESSION_TARGET",
      ],
      [
        "cron.update",
        { id: job.id, patch: { payload: agent } },
        /params\.sessionTarget/,
        "INVALID_SESSION_TARGET",
      ],
      ["cron.remove", {}, /params\.id/],
      ["cron.remove", { id: "a/b" }, /params\.id/],
      ["cron.remove", { id: "nope" }, /nope/, "CRON_JOB_NOT_FOUND"],
      ["cron.run", { id: "nope" }, /nope/, "CRON_JOB_NOT_FOUND"],
      ["cron.run", { id: job.id, mode: "later" }, /params\.mode/],
      ["cron.run", { jobId: "a/b" }, /params\.jobId/],
      ["cron.run", {}, /params\.id/],
    ];
    for (const [method, params, message, code] of cases) {
      const what = `${method} ${JSON.stringify(params)}`;
      const e = await err(c, method, params);
      assert.equal(e.code, "INVALID_REQUEST", what);
      assert.match(e.message, message, `${what}: ${e.message}`);
      if (code) assert.equal(e.details?.code, code, what);
    }
    // Nothing changed, and the connection still works.
    const same = await ok(c, "cron.get", { id: job.id });
    for (const k of ["name", "schedule", "payload", "sessionTarget", "updatedAtMs"]) {
      assert.deepEqual(same[k], job[k], k);
    }
    assert.equal((await ok(c, "cron.status")).jobs, 1);
    assert.equal(c.isClosed, false);
  } finally {
    await c.close();
  }
});
