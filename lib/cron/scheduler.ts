/**
 * The scheduler: one timer, armed for the earliest due job in the KV index
 * (at most a minute ahead, so a clock jump or a job added by another process
 * sharing the state dir is noticed within a minute; no polling loop).
 *
 * Firing a slot is a compare-and-set on the job that claims it and moves
 * `nextRunAtMs` to the next slot after now: after downtime a missed job runs
 * once, not once per missed slot; of two processes, one wins. A job still
 * running when its next slot comes records `skipped`. Agent turns go through
 * the agent runtime (one run at a time per session).
 *
 * @module
 */
import type { Clock, TimerHandle } from "../clock.ts";
import type { Logger } from "../log.ts";
import type { Store } from "../store/mod.ts";
import type { CronJob, CronRunRecord } from "../store/cron.ts";
import type { AgentRuntime } from "../agent/runtime.ts";
import type { ChannelRegistry } from "../../channels/registry.ts";
import { sortableId } from "../store/mod.ts";
import { nextRunAfter } from "./schedule.ts";
import { canonicalKey } from "../agent/session_keys.ts";
import type { ThinkingLevel } from "../store/sessions.ts";

/** The timer never sleeps longer than this (clock jumps, jobs added by another process). */
export const MAX_SLEEP_MS = 60_000;
/** A run's claim outlives its timeout by this much before another process may take the job. */
const CLAIM_MARGIN_MS = 60_000;
/** Default run timeout of a job without one. */
const DEFAULT_TIMEOUT_MS = 10 * 60_000;

/** What the scheduler needs. */
export interface SchedulerDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  runtime: AgentRuntime;
  channels: ChannelRegistry;
  /** The default agent id. */
  defaultAgentId: () => string;
  /** Broadcast a `cron` event. */
  emit: (payload: Record<string, unknown>) => void;
}

/** The result of {@link Scheduler.runNow}. */
export interface RunNowResult {
  ok: true;
  ran: boolean;
  runId?: string;
  reason?: "not-due" | "already-running" | "disabled";
}

/** The scheduler. One per gateway. */
export class Scheduler {
  readonly #d: SchedulerDeps;
  #timer: TimerHandle | undefined;
  #stopped = true;
  #ticking = false;
  #again = false;
  /** Runs started by this process, by runId. */
  readonly #active = new Map<string, Promise<void>>();

  /** Create a stopped scheduler. */
  constructor(deps: SchedulerDeps) {
    this.#d = deps;
  }

  /** Runs of this process still going. */
  get activeRuns(): number {
    return this.#active.size;
  }

  /** Start: free claims left by a process that died mid-run, then arm the timer. */
  async start(): Promise<void> {
    this.#stopped = false;
    const now = this.#d.clock.now();
    for (const job of await this.#d.store.cron.claimed()) {
      const s = job.state;
      if (s.runningAtMs !== undefined && (s.runningUntilMs ?? 0) < now) {
        // Close the run the dead process left "running" (one record per run).
        const record = s.runningRecordId
          ? await this.#d.store.cron.getRun(job.id, s.runningRecordId)
          : null;
        await this.#finish(job.id, s.runningRunId ?? "", {
          status: "error",
          error: "interrupted: the gateway stopped during this run",
          startedAtMs: s.runningAtMs,
          scheduledAtMs: record?.scheduledAtMs ?? s.runningSlotMs ?? s.runningAtMs,
          ...(record ? { record } : {}),
        });
      }
    }
    await this.arm();
  }

  /** Stop the timer; runs in progress finish on their own (the agent runtime aborts them at shutdown). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#d.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Wait for this process's runs to end, at most `ms`. */
  async drain(ms: number): Promise<void> {
    let t: TimerHandle | undefined;
    await Promise.race([
      Promise.all(this.#active.values()),
      new Promise((r) => t = setTimeout(r, ms)),
    ]);
    clearTimeout(t);
  }

  /**
   * (Re)arm the timer for the earliest due job; call after every change.
   * `handledUpTo`: after a tick, slots at or before it were already tried; one
   * still there failed to fire, so it is retried in a second, not in a hot loop.
   */
  async arm(handledUpTo?: number): Promise<void> {
    if (this.#stopped) return;
    const [first] = await this.#d.store.cron.earliest(1);
    if (this.#stopped) return;
    const now = this.#d.clock.now();
    let delay = first ? Math.max(0, Math.min(first.atMs - now, MAX_SLEEP_MS)) : MAX_SLEEP_MS;
    if (first && handledUpTo !== undefined && first.atMs <= handledUpTo) {
      delay = Math.max(delay, 1000);
    }
    if (this.#timer !== undefined) this.#d.clock.clearTimeout(this.#timer);
    this.#timer = this.#d.clock.setTimeout(() => {
      this.#timer = undefined;
      void this.#tick();
    }, delay);
  }

  /** The earliest next run, for cron.status. */
  async nextWakeAtMs(): Promise<number | null> {
    return (await this.#d.store.cron.earliest(1))[0]?.atMs ?? null;
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    this.#ticking = true;
    let handledUpTo = 0;
    try {
      await this.#tickOnce((t) => handledUpTo = t);
    } catch (e) {
      // The store closing under a tick (shutdown) is not an error worth more than a line.
      if (!this.#stopped) this.#d.log.error("cron: tick failed", { error: e });
    } finally {
      this.#ticking = false;
      if (!this.#stopped) {
        await this.arm(handledUpTo).catch((e) =>
          this.#d.log.error("cron: arming failed", { error: e })
        );
      }
    }
  }

  /** One pass over what is due; `handled` learns up to which time slots were tried. */
  async #tickOnce(handled: (t: number) => void): Promise<void> {
    do {
      this.#again = false;
      const upTo = this.#d.clock.now();
      handled(upTo);
      const due = await this.#d.store.cron.dueBy(upTo);
      // More due than one page: go round again.
      if (due.length === 500) this.#again = true;
      for (const { id, atMs } of due) {
        if (this.#stopped) return;
        try {
          await this.#fire(id, atMs);
        } catch (e) {
          this.#d.log.error("cron: firing a job failed", { jobId: id, error: e });
        }
      }
    } while (this.#again && !this.#stopped);
  }

  /** Fire the slot `slotMs` of job `id`: claim and start it, or record a skip. */
  async #fire(id: string, slotMs: number): Promise<void> {
    const cron = this.#d.store.cron;
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await cron.entry(id);
      const job = entry.value;
      // Gone, disabled or already moved on (by this or another process): nothing to do.
      if (!job || !job.enabled || job.state.nextRunAtMs !== slotMs) return;
      const now = this.#d.clock.now();
      const next = await this.#nextAfter(job, Math.max(now, slotMs));
      if (this.#isRunning(job, now)) {
        const skipped: CronJob = { ...job, state: { ...job.state, lastStatus: "skipped" } };
        if (next === null) delete skipped.state.nextRunAtMs;
        else skipped.state.nextRunAtMs = next;
        if (!(await cron.put(entry, skipped))) continue;
        const rec: CronRunRecord = {
          id: sortableId(now),
          jobId: id,
          runId: crypto.randomUUID(),
          scheduledAtMs: slotMs,
          startedAtMs: now,
          endedAtMs: now,
          status: "skipped",
          error: "the previous run was still going",
        };
        await cron.putRun(rec);
        this.#d.emit({
          jobId: id,
          action: "skipped",
          runId: rec.runId,
          scheduledAtMs: slotMs,
          nextRunAtMs: skipped.state.nextRunAtMs,
        });
        return;
      }
      const claimed = this.#claim(job, now, next, slotMs);
      if (!(await cron.put(entry, claimed))) continue;
      this.#start(claimed, slotMs, now, false);
      return;
    }
  }

  /**
   * `cron.run`: `due` runs the job only when its next run has come; `force`
   * runs it now whatever its schedule (its next slot stays as it was).
   */
  async runNow(id: string, mode: "due" | "force"): Promise<RunNowResult | null> {
    const cron = this.#d.store.cron;
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await cron.entry(id);
      const job = entry.value;
      if (!job) return null;
      const now = this.#d.clock.now();
      if (mode === "due") {
        if (!job.enabled) return { ok: true, ran: false, reason: "disabled" };
        if (job.state.nextRunAtMs === undefined || job.state.nextRunAtMs > now) {
          return { ok: true, ran: false, reason: "not-due" };
        }
      }
      if (this.#isRunning(job, now)) return { ok: true, ran: false, reason: "already-running" };
      const slot = mode === "due" ? job.state.nextRunAtMs! : now;
      const next = mode === "due" ? await this.#nextAfter(job, now) : job.state.nextRunAtMs ?? null;
      const claimed = this.#claim(job, now, next, slot);
      if (!(await cron.put(entry, claimed))) continue;
      const runId = this.#start(claimed, slot, now, mode === "force");
      await this.arm();
      return { ok: true, ran: true, runId };
    }
    return { ok: true, ran: false, reason: "already-running" };
  }

  #isRunning(job: CronJob, now: number): boolean {
    return job.state.runningAtMs !== undefined && (job.state.runningUntilMs ?? 0) >= now;
  }

  async #nextAfter(job: CronJob, after: number): Promise<number | null> {
    // A one-shot has no next slot once it fires.
    if (job.schedule.kind === "at") return null;
    return await nextRunAfter(job.schedule, after, {
      jobId: job.id,
      createdAtMs: job.createdAtMs,
      now: this.#d.clock.now(),
    });
  }

  #claim(job: CronJob, now: number, next: number | null, slotMs: number): CronJob {
    // A queued system event takes milliseconds; anything else may take a whole agent turn.
    const timeout = job.payload.kind === "systemEvent" && job.wakeMode === "next-heartbeat"
      ? 0
      : job.payload.kind === "agentTurn" && job.payload.timeoutSeconds
      ? job.payload.timeoutSeconds * 1000
      : DEFAULT_TIMEOUT_MS;
    const state = {
      ...job.state,
      runningAtMs: now,
      runningUntilMs: now + timeout + CLAIM_MARGIN_MS,
      runningRunId: crypto.randomUUID(),
      runningRecordId: sortableId(now),
      runningSlotMs: slotMs,
    };
    if (next === null) delete state.nextRunAtMs;
    else state.nextRunAtMs = next;
    return { ...job, state };
  }

  /** Start a claimed run in the background; returns its runId. */
  #start(job: CronJob, slotMs: number, now: number, manual: boolean): string {
    const runId = job.state.runningRunId!;
    const rec: CronRunRecord = {
      id: job.state.runningRecordId ?? sortableId(now),
      jobId: job.id,
      runId,
      scheduledAtMs: slotMs,
      startedAtMs: now,
      status: "running",
      sessionKey: this.#sessionKey(job),
      ...(manual ? { manual: true } : {}),
    };
    const work = (async () => {
      await this.#d.store.cron.putRun(rec);
      this.#d.emit({
        jobId: job.id,
        action: "started",
        runId,
        scheduledAtMs: slotMs,
        nextRunAtMs: job.state.nextRunAtMs,
      });
      let result: Awaited<ReturnType<Scheduler["execute"]>>;
      try {
        result = await this.execute(job, runId);
      } catch (e) {
        result = { status: "error", error: e instanceof Error ? e.message : String(e) };
      }
      await this.#finish(job.id, runId, {
        ...result,
        startedAtMs: now,
        scheduledAtMs: slotMs,
        record: rec,
      });
    })().catch((e) => this.#d.log.error("cron: run failed", { jobId: job.id, error: e }))
      .finally(() => this.#active.delete(runId));
    this.#active.set(runId, work);
    return runId;
  }

  #sessionKey(job: CronJob): string {
    const agentId = job.agentId ?? this.#d.defaultAgentId();
    if (job.sessionTarget === "isolated") return `cron:${job.id}`;
    if (job.sessionTarget.startsWith("session:")) {
      // As chat.history will name it: `session:project` is agent:<default>:project.
      return canonicalKey(job.sessionTarget.slice("session:".length), agentId);
    }
    return `agent:${agentId}:main`;
  }

  /** Do what the job says. Public for tests that drive one run directly. */
  async execute(
    job: CronJob,
    runId: string,
  ): Promise<
    {
      status: "ok" | "error";
      error?: string;
      summary?: string;
      delivery?: CronRunRecord["delivery"];
    }
  > {
    const key = this.#sessionKey(job);
    const p = job.payload;
    if (p.kind === "systemEvent" && job.wakeMode === "next-heartbeat") {
      await this.#d.store.enqueueSystemEvent(key, p.text);
      return { status: "ok", summary: "queued for the next turn" };
    }
    if (job.sessionTarget === "isolated") {
      // A fresh transcript each run: an isolated job does not see its last run.
      const s = this.#d.store.sessions;
      const r = await this.#d.runtime.exclusive(key, () => s.reset(key));
      if (r) await s.deleteTranscript(r.oldSessionId);
    }
    const message = p.kind === "agentTurn" ? p.message : `[Scheduled: ${job.name}] ${p.text}`;
    const opts: Parameters<AgentRuntime["runTurn"]>[2] = {
      source: "cron",
      runId: `cron-${runId}`,
    };
    if (p.kind === "agentTurn") {
      if (p.model) opts.model = p.model;
      if (p.thinking) opts.thinking = p.thinking as ThinkingLevel;
      if (p.timeoutSeconds) opts.timeoutMs = p.timeoutSeconds * 1000;
    }
    const o = await this.#d.runtime.runTurn(key, message, opts);
    if (o.status !== "ok") {
      return { status: "error", error: o.error?.message ?? `the turn ended ${o.status}` };
    }
    const out: {
      status: "ok";
      summary: string;
      delivery?: CronRunRecord["delivery"];
      error?: string;
    } = {
      status: "ok",
      summary: o.text.slice(0, 2000),
    };
    const d = job.delivery;
    if (d?.mode === "announce" && o.text) {
      // The run is the turn; delivery has its own status (lastDeliveryStatus), as in OpenClaw.
      try {
        const configured = this.#d.channels.list().filter((c) => c.configured());
        // "last" (OpenClaw's CLI default) means the channel in use: the one configured here.
        const named = d.channel && d.channel !== "last" ? d.channel : undefined;
        const channel = named
          ? this.#d.channels.get(named)
          : configured.length === 1
          ? configured[0]
          : undefined;
        if (!channel || !channel.configured()) {
          throw new Error(`channel ${d.channel ?? "(none configured)"} is not available`);
        }
        if (!d.to) throw new Error("delivery.to is missing");
        await channel.send(d.to, o.text, d.accountId ? { accountId: d.accountId } : {});
        out.delivery = "delivered";
      } catch (e) {
        out.delivery = "failed";
        this.#d.log.warn("cron: delivery failed", { jobId: job.id, error: e });
      }
    }
    return out;
  }

  /** Record a run's end on the job (clearing its claim) and in its history. */
  async #finish(
    jobId: string,
    runId: string,
    r: {
      status: "ok" | "error";
      error?: string;
      summary?: string;
      delivery?: CronRunRecord["delivery"];
      startedAtMs: number;
      scheduledAtMs: number;
      record?: CronRunRecord;
    },
  ): Promise<void> {
    const cron = this.#d.store.cron;
    const now = this.#d.clock.now();
    let removed = false;
    /** The job was removed while it ran: its history went with it. */
    let gone = false;
    let after: CronJob | null = null;
    for (let attempt = 0; attempt < 10; attempt++) {
      const entry = await cron.entry(jobId);
      const job = entry.value;
      if (!job) {
        gone = true;
        break;
      }
      const state = { ...job.state };
      if (state.runningRunId === runId || !runId) {
        delete state.runningAtMs;
        delete state.runningUntilMs;
        delete state.runningRunId;
        delete state.runningRecordId;
        delete state.runningSlotMs;
      }
      state.lastRunAtMs = r.startedAtMs;
      state.lastStatus = r.status;
      state.lastDurationMs = now - r.startedAtMs;
      if (r.status === "error") {
        state.lastError = r.error ?? "failed";
        state.consecutiveErrors = (state.consecutiveErrors ?? 0) + 1;
      } else {
        delete state.lastError;
        state.consecutiveErrors = 0;
      }
      if (r.delivery) state.lastDeliveryStatus = r.delivery;
      // A one-shot that worked is done: removed, or kept disabled when asked.
      if (job.schedule.kind === "at" && r.status === "ok") {
        if (job.deleteAfterRun !== false) {
          if (await cron.remove(entry)) {
            removed = true;
            after = job;
            break;
          }
          continue;
        }
        const next: CronJob = { ...job, enabled: false, state, updatedAtMs: now };
        delete next.state.nextRunAtMs;
        if (await cron.put(entry, next)) {
          after = next;
          break;
        }
        continue;
      }
      const next: CronJob = { ...job, state };
      if (await cron.put(entry, next)) {
        after = next;
        break;
      }
    }
    const rec: CronRunRecord = {
      ...(r.record ?? {
        id: sortableId(now),
        jobId,
        runId: runId || crypto.randomUUID(),
        scheduledAtMs: r.scheduledAtMs,
        startedAtMs: r.startedAtMs,
        status: "running" as const,
      }),
      status: r.status,
      endedAtMs: now,
    };
    if (r.error) rec.error = r.error;
    if (r.summary) rec.summary = r.summary;
    if (r.delivery) rec.delivery = r.delivery;
    if (gone) {
      // The "running" record may have been written after cron.remove deleted the history.
      await cron.deleteRun(jobId, rec.id);
    } else if (!removed) {
      await cron.putRun(rec);
      await cron.pruneRuns(jobId, now);
    }
    this.#d.emit({
      jobId,
      action: "finished",
      runId: rec.runId,
      status: r.status,
      ...(r.error ? { error: r.error } : {}),
      ...(r.summary ? { summary: r.summary } : {}),
      durationMs: now - r.startedAtMs,
      ...(removed ? { removed: true } : {}),
      ...(after && !removed ? { nextRunAtMs: after.state.nextRunAtMs } : {}),
    });
    if (removed) this.#d.emit({ jobId, action: "removed", job: after });
    await this.arm();
  }
}
