/**
 * Where wizard sessions are kept between requests: Deno KV in the gateway
 * (a session survives a reconnect, and a gateway restart within its TTL),
 * memory in `gw setup` without a gateway. Writes are compare-and-set on a
 * version, and one key names the running session, so two wizards never run
 * at once.
 *
 * A running session's record holds the secrets answered so far (a key, a
 * password, a bot token) until it ends; the record then keeps only its
 * outcome. Records carry a TTL, so an abandoned one is dropped by KV too.
 *
 * @module
 */
import { SCHEMA_VERSION } from "../store/keys.ts";
import { busyRetry } from "../store/busy.ts";
import type { WizardState } from "./machine.ts";

/** A stored session and its version (for compare-and-set). */
export interface StoredWizard {
  state: WizardState;
  version: string;
}

/** Storage of wizard sessions. */
export interface WizardStore {
  /** The session `id`, or null. */
  get(id: string): Promise<StoredWizard | null>;
  /** The id of the running session, or null. */
  running(): Promise<string | null>;
  /**
   * Store `state` (running) as the running session, when the running marker
   * still names `expected` (null: none). Returns false when another session
   * took the marker first.
   */
  create(state: WizardState, expected: string | null, ttlMs: number): Promise<boolean>;
  /**
   * Replace a session when it is still at `version`; a session that is no
   * longer running also gives up the running marker. Returns false on a
   * conflict (someone else changed it first).
   */
  save(state: WizardState, version: string, ttlMs: number): Promise<boolean>;
  /** Remove a session (and the running marker when it names it). */
  delete(id: string): Promise<void>;
}

const P = ["gw", SCHEMA_VERSION, "wizard"] as const;
const sessionKey = (id: string): Deno.KvKey => [...P, "session", id];
const runningKey = (): Deno.KvKey => [...P, "running"];

/**
 * Wizard sessions in Deno KV: `["gw", v, "wizard", "session", id]` and
 * `["gw", v, "wizard", "running"]` (the running session's id).
 *
 * @example
 * ```ts
 * const kv = await Deno.openKv(":memory:");
 * const store = new KvWizardStore(kv);
 * console.log(await store.running()); // null
 * ```
 */
export class KvWizardStore implements WizardStore {
  readonly #kv: Deno.Kv;

  /** Wrap a KV handle. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** The session `id`, or null. */
  async get(id: string): Promise<StoredWizard | null> {
    const e = await this.#kv.get<WizardState>(sessionKey(id));
    return e.value && e.versionstamp ? { state: e.value, version: e.versionstamp } : null;
  }

  /** The id of the running session, or null. */
  async running(): Promise<string | null> {
    return (await this.#kv.get<string>(runningKey())).value;
  }

  /** Store `state` as the running session when the marker still names `expected`. */
  create(state: WizardState, expected: string | null, ttlMs: number): Promise<boolean> {
    return busyRetry(async () => {
      const marker = await this.#kv.get<string>(runningKey());
      if ((marker.value ?? null) !== expected) return false;
      const r = await this.#kv.atomic()
        .check(marker)
        .check({ key: sessionKey(state.id), versionstamp: null })
        .set(runningKey(), state.id, { expireIn: ttlMs })
        .set(sessionKey(state.id), state, { expireIn: ttlMs })
        .commit();
      return r.ok;
    });
  }

  /** Replace a session still at `version`. */
  save(state: WizardState, version: string, ttlMs: number): Promise<boolean> {
    return busyRetry(async () => {
      const key = sessionKey(state.id);
      const op = this.#kv.atomic().check({ key, versionstamp: version })
        .set(key, state, { expireIn: ttlMs });
      if (state.status === "running") {
        op.set(runningKey(), state.id, { expireIn: ttlMs });
      } else {
        const marker = await this.#kv.get<string>(runningKey());
        if (marker.value === state.id) op.check(marker).delete(runningKey());
      }
      return (await op.commit()).ok;
    });
  }

  /** Remove a session (and the running marker when it names it). */
  delete(id: string): Promise<void> {
    return busyRetry(async () => {
      const marker = await this.#kv.get<string>(runningKey());
      const op = this.#kv.atomic().delete(sessionKey(id));
      if (marker.value === id) op.check(marker).delete(runningKey());
      await op.commit();
    });
  }
}

/**
 * Wizard sessions in memory, for `gw setup` when no gateway runs (the
 * process is the only wizard there is).
 *
 * @example
 * ```ts
 * const store = new MemoryWizardStore();
 * console.log(await store.running()); // null
 * ```
 */
export class MemoryWizardStore implements WizardStore {
  #sessions = new Map<string, StoredWizard>();
  #running: string | null = null;
  #n = 0;

  /** The session `id`, or null. */
  get(id: string): Promise<StoredWizard | null> {
    const s = this.#sessions.get(id);
    return Promise.resolve(s ? { state: structuredClone(s.state), version: s.version } : null);
  }

  /** The id of the running session, or null. */
  running(): Promise<string | null> {
    return Promise.resolve(this.#running);
  }

  /** Store `state` as the running session when the marker still names `expected`. */
  create(state: WizardState, expected: string | null, _ttlMs: number): Promise<boolean> {
    if (this.#running !== expected || this.#sessions.has(state.id)) return Promise.resolve(false);
    this.#running = state.id;
    this.#sessions.set(state.id, { state: structuredClone(state), version: String(++this.#n) });
    return Promise.resolve(true);
  }

  /** Replace a session still at `version`. */
  save(state: WizardState, version: string, _ttlMs: number): Promise<boolean> {
    const cur = this.#sessions.get(state.id);
    if (!cur || cur.version !== version) return Promise.resolve(false);
    this.#sessions.set(state.id, { state: structuredClone(state), version: String(++this.#n) });
    if (state.status === "running") this.#running = state.id;
    else if (this.#running === state.id) this.#running = null;
    return Promise.resolve(true);
  }

  /** Remove a session (and the running marker when it names it). */
  delete(id: string): Promise<void> {
    this.#sessions.delete(id);
    if (this.#running === id) this.#running = null;
    return Promise.resolve();
  }
}
