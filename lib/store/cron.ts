/**
 * Cron jobs and their run history in Deno KV.
 *
 * - A job is one key (`cron/job/<id>`); every enabled job with a next run
 *   also has an index key `cron/due/<nextRunAtMs>/<id>`, written in the same
 *   commit, so the earliest due job is one range read however many jobs exist.
 * - A run is claimed by a compare-and-set on the job's versionstamp that also
 *   moves `nextRunAtMs` on: two processes sharing a state dir cannot both
 *   claim the same slot.
 * - Run records (`cron/run/<jobId>/<sortableId>`) are pruned by count and age.
 *
 * @module
 */
import type { Schedule } from "../cron/schedule.ts";
import { keys } from "./keys.ts";
import { busyRetry } from "./busy.ts";

/** What a job does when it fires. */
export type CronPayload =
  | { kind: "systemEvent"; text: string }
  | {
    kind: "agentTurn";
    message: string;
    model?: string;
    thinking?: string;
    timeoutSeconds?: number;
  };

/** Where a job's result goes. */
export type CronDelivery =
  | { mode: "none" }
  | { mode: "announce"; channel?: string; to?: string; accountId?: string; bestEffort?: boolean };

/** A job's moving parts. */
export interface CronState {
  nextRunAtMs?: number;
  runningAtMs?: number;
  /** The running claim expires then (a process that died mid-run frees the job). */
  runningUntilMs?: number;
  runningRunId?: string;
  /** The run record of the claimed run (so a crash's run is closed, not duplicated). */
  runningRecordId?: string;
  /** The slot the claimed run is for. */
  runningSlotMs?: number;
  lastRunAtMs?: number;
  lastStatus?: "ok" | "error" | "skipped";
  lastError?: string;
  lastDurationMs?: number;
  consecutiveErrors?: number;
  lastDeliveryStatus?: "delivered" | "failed" | "not-requested";
}

/** A cron job, in OpenClaw's shape. */
export interface CronJob {
  id: string;
  name: string;
  description?: string;
  enabled: boolean;
  agentId?: string;
  createdAtMs: number;
  updatedAtMs: number;
  schedule: Schedule;
  /** `main`, `isolated`, or `session:<key>`. */
  sessionTarget: string;
  wakeMode: "now" | "next-heartbeat";
  payload: CronPayload;
  delivery?: CronDelivery;
  /** One-shot (`at`) jobs are removed after success unless this is false. */
  deleteAfterRun?: boolean;
  state: CronState;
}

/** One run of a job. */
export interface CronRunRecord {
  id: string;
  jobId: string;
  runId: string;
  /** The slot the run was for (its scheduled time), or the request time for a manual run. */
  scheduledAtMs: number;
  startedAtMs: number;
  endedAtMs?: number;
  status: "ok" | "error" | "skipped" | "running";
  error?: string;
  summary?: string;
  sessionKey?: string;
  manual?: boolean;
  delivery?: "delivered" | "failed" | "not-requested";
}

/** Run history kept per job: at most this many records ... */
export const MAX_RUNS_PER_JOB = 200;
/** ... and none older than this. */
export const MAX_RUN_AGE_MS = 30 * 86_400_000;

/** Cron storage over one KV handle. */
export class CronStore {
  readonly #kv: Deno.Kv;

  /** Wrap a KV handle. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** A job, or null. */
  async get(id: string): Promise<CronJob | null> {
    return (await this.#kv.get<CronJob>(keys.cronJob(id))).value;
  }

  /** A job with its versionstamp, for compare-and-set. */
  entry(id: string): Promise<Deno.KvEntryMaybe<CronJob>> {
    return this.#kv.get<CronJob>(keys.cronJob(id));
  }

  /** Every job. */
  async list(): Promise<CronJob[]> {
    const out: CronJob[] = [];
    for await (const e of this.#kv.list<CronJob>({ prefix: keys.cronJobs() })) out.push(e.value);
    return out;
  }

  /** Jobs with a run claimed (by any process, live or dead). */
  async claimed(): Promise<CronJob[]> {
    const ids: string[] = [];
    for await (const e of this.#kv.list<string>({ prefix: keys.cronRunningAll() })) {
      ids.push(e.value);
    }
    const out: CronJob[] = [];
    for (const id of ids) {
      const j = await this.get(id);
      if (j) out.push(j);
    }
    return out;
  }

  /** The earliest due-index entries (at most `limit`). */
  async earliest(limit = 1): Promise<{ atMs: number; id: string }[]> {
    const out: { atMs: number; id: string }[] = [];
    for await (const e of this.#kv.list<string>({ prefix: keys.cronDueAll() }, { limit })) {
      out.push({ atMs: e.key[e.key.length - 2] as number, id: e.value });
    }
    return out;
  }

  /** Index entries due at or before `atMs`. */
  async dueBy(atMs: number, limit = 500): Promise<{ atMs: number; id: string }[]> {
    const out: { atMs: number; id: string }[] = [];
    const p = keys.cronDueAll();
    for await (
      const e of this.#kv.list<string>({ start: p, end: [...p, atMs + 1] }, { limit })
    ) out.push({ atMs: e.key[e.key.length - 2] as number, id: e.value });
    return out;
  }

  /**
   * Write `next` in place of `cur` (null: a new job), keeping the due index in
   * step. Resolves false when the job changed meanwhile (compare-and-set).
   */
  async put(cur: Deno.KvEntryMaybe<CronJob>, next: CronJob): Promise<boolean> {
    return (await busyRetry(() => {
      const op = this.#kv.atomic().check(cur).set(keys.cronJob(next.id), next);
      const before = cur.value ? dueKey(cur.value) : null;
      const after = dueKey(next);
      if (before && (!after || before.join("|") !== after.join("|"))) op.delete(before);
      if (after) op.set(after, next.id);
      if (next.state.runningAtMs !== undefined) op.set(keys.cronRunning(next.id), next.id);
      else if (cur.value?.state.runningAtMs !== undefined) op.delete(keys.cronRunning(next.id));
      return op.commit();
    })).ok;
  }

  /** Remove a job, its index entry and its run history. False when it changed meanwhile. */
  async remove(cur: Deno.KvEntryMaybe<CronJob>): Promise<boolean> {
    if (!cur.value) return false;
    const job = cur.value;
    const ok = (await busyRetry(() => {
      const op = this.#kv.atomic().check(cur).delete(keys.cronJob(job.id));
      const due = dueKey(job);
      if (due) op.delete(due);
      op.delete(keys.cronRunning(job.id));
      return op.commit();
    })).ok;
    if (ok) await this.#deleteAll(keys.cronRuns(job.id));
    return ok;
  }

  /** Add or replace a run record. */
  async putRun(r: CronRunRecord): Promise<void> {
    await busyRetry(() => this.#kv.set(keys.cronRun(r.jobId, r.id), r));
  }

  /** A run record by id, or null. */
  async getRun(jobId: string, id: string): Promise<CronRunRecord | null> {
    return (await this.#kv.get<CronRunRecord>(keys.cronRun(jobId, id))).value;
  }

  /** Delete a run record. */
  async deleteRun(jobId: string, id: string): Promise<void> {
    await busyRetry(() => this.#kv.delete(keys.cronRun(jobId, id)));
  }

  /** A job's runs, newest first (every job's when `jobId` is absent). */
  async runs(jobId: string | undefined, limit: number): Promise<CronRunRecord[]> {
    const out: CronRunRecord[] = [];
    if (jobId !== undefined) {
      for await (
        const e of this.#kv.list<CronRunRecord>({ prefix: keys.cronRuns(jobId) }, {
          reverse: true,
          limit,
        })
      ) out.push(e.value);
      return out;
    }
    for await (const e of this.#kv.list<CronRunRecord>({ prefix: keys.cronRunsAll() })) {
      out.push(e.value);
    }
    return out.sort((a, b) => b.startedAtMs - a.startedAtMs).slice(0, limit);
  }

  /** Keep at most {@link MAX_RUNS_PER_JOB} records per job, none older than {@link MAX_RUN_AGE_MS}. */
  async pruneRuns(
    jobId: string,
    now: number,
    max = MAX_RUNS_PER_JOB,
    maxAgeMs = MAX_RUN_AGE_MS,
  ): Promise<number> {
    const drop: Deno.KvKey[] = [];
    let n = 0;
    for await (
      const e of this.#kv.list<CronRunRecord>({ prefix: keys.cronRuns(jobId) }, { reverse: true })
    ) {
      n++;
      if (n > max || now - e.value.startedAtMs > maxAgeMs) drop.push(e.key);
    }
    for (let i = 0; i < drop.length; i += 500) {
      const batch = drop.slice(i, i + 500);
      await busyRetry(() => {
        const op = this.#kv.atomic();
        for (const k of batch) op.delete(k);
        return op.commit();
      });
    }
    return drop.length;
  }

  async #deleteAll(prefix: Deno.KvKey): Promise<void> {
    let batch: Deno.KvKey[] = [];
    const flush = async () => {
      const ks = batch;
      batch = [];
      if (!ks.length) return;
      await busyRetry(() => {
        const op = this.#kv.atomic();
        for (const k of ks) op.delete(k);
        return op.commit();
      });
    };
    for await (const e of this.#kv.list({ prefix })) {
      batch.push(e.key);
      if (batch.length === 500) await flush();
    }
    await flush();
  }
}

/** The due-index key of a job, or null when it has no next run. */
function dueKey(job: CronJob): Deno.KvKey | null {
  return job.enabled && job.state.nextRunAtMs !== undefined
    ? keys.cronDue(job.state.nextRunAtMs, job.id)
    : null;
}
