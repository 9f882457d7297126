/**
 * Token usage and cost by UTC day, agent and model, and idempotency records.
 *
 * @module
 */
import { keys } from "./keys.ts";
import { busyRetry } from "./busy.ts";

/** Tokens and cost of one day × agent × model. */
export interface UsageRow {
  day: string;
  agentId: string;
  /** `provider/model`. */
  model: string;
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  /** Cost in USD; 0 with `missingCost` when the model has no price. */
  cost: number;
  inputCost: number;
  outputCost: number;
  cacheReadCost: number;
  cacheWriteCost: number;
  missingCost: number;
  requests: number;
}

/** The UTC day of `ms` as YYYY-MM-DD. */
export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Usage rows over one KV handle. */
export class UsageStore {
  readonly #kv: Deno.Kv;

  /** Wrap a KV handle. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Add one response's usage (compare-and-set, retried on conflict). */
  async add(
    at: number,
    agentId: string,
    model: string,
    u: {
      input: number;
      output: number;
      cacheRead: number;
      cacheWrite: number;
      cost:
        | { input: number; output: number; cacheRead: number; cacheWrite: number; total: number }
        | null;
    },
  ): Promise<void> {
    const day = dayOf(at);
    const key = keys.usage(day, agentId, model);
    for (;;) {
      const cur = await this.#kv.get<UsageRow>(key);
      const row: UsageRow = cur.value ?? {
        day,
        agentId,
        model,
        input: 0,
        output: 0,
        cacheRead: 0,
        cacheWrite: 0,
        cost: 0,
        inputCost: 0,
        outputCost: 0,
        cacheReadCost: 0,
        cacheWriteCost: 0,
        missingCost: 0,
        requests: 0,
      };
      row.input += u.input;
      row.output += u.output;
      row.cacheRead += u.cacheRead;
      row.cacheWrite += u.cacheWrite;
      if (u.cost === null) row.missingCost++;
      else {
        row.cost += u.cost.total;
        row.inputCost += u.cost.input;
        row.outputCost += u.cost.output;
        row.cacheReadCost += u.cost.cacheRead;
        row.cacheWriteCost += u.cost.cacheWrite;
      }
      row.requests++;
      if ((await busyRetry(() => this.#kv.atomic().check(cur).set(key, row).commit())).ok) return;
    }
  }

  /** Rows of days in [fromDay, toDay] (inclusive, YYYY-MM-DD). */
  async rows(fromDay: string, toDay: string): Promise<UsageRow[]> {
    const out: UsageRow[] = [];
    const p = keys.usageAll();
    for await (
      const e of this.#kv.list<UsageRow>({ start: [...p, fromDay], end: [...p, `${toDay}\uffff`] })
    ) out.push(e.value);
    return out;
  }
}

/** A stored outcome of an idempotent call. */
export interface IdempotencyRecord<T = unknown> {
  at: number;
  state: "started" | "done";
  runId?: string;
  result?: T;
}

/** How long an idempotency key is remembered. */
export const IDEMPOTENCY_TTL_MS = 5 * 60_000;

/** Idempotency records (5 minutes) over one KV handle. */
export class IdempotencyStore {
  readonly #kv: Deno.Kv;

  /** Wrap a KV handle. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** The record of `kind`/`key` when it is younger than the TTL. */
  async get<T>(kind: string, key: string, now = Date.now()): Promise<IdempotencyRecord<T> | null> {
    const v = (await this.#kv.get<IdempotencyRecord<T>>(keys.idempotency(kind, key))).value;
    return v && now - v.at < IDEMPOTENCY_TTL_MS ? v : null;
  }

  /**
   * Claim `kind`/`key`: true when this call is the first (the record is
   * written), false when a live record exists.
   */
  async claim(
    kind: string,
    key: string,
    record: IdempotencyRecord,
    now = Date.now(),
  ): Promise<boolean> {
    const k = keys.idempotency(kind, key);
    const cur = await this.#kv.get<IdempotencyRecord>(k);
    if (cur.value && now - cur.value.at < IDEMPOTENCY_TTL_MS) return false;
    const r = await busyRetry(() =>
      this.#kv.atomic().check(cur).set(k, record, { expireIn: IDEMPOTENCY_TTL_MS }).commit()
    );
    return r.ok;
  }

  /** Store the outcome (keeps the original time so the TTL counts from the first call). */
  async finish<T>(kind: string, key: string, result: T, runId?: string): Promise<void> {
    const k = keys.idempotency(kind, key);
    const cur = (await this.#kv.get<IdempotencyRecord>(k)).value;
    const at = cur?.at ?? Date.now();
    const rec: IdempotencyRecord<T> = { at, state: "done", result };
    if (runId !== undefined) rec.runId = runId;
    await busyRetry(() =>
      this.#kv.set(k, rec, { expireIn: Math.max(1000, IDEMPOTENCY_TTL_MS - (Date.now() - at)) })
    );
  }
}
