/**
 * What gateway processes sharing one KV tell each other (lib/server/cluster.ts):
 *
 * - a presence record per process (`proc/<procId>`), refreshed while it runs
 *   and written with `expireIn`, so a process that died drops out by itself;
 * - each process's stream of relayed events (`evt/<procId>/<seq>/<part>`),
 *   ordered by the writer's own counter and written with `expireIn` (a
 *   reader that falls further behind than that has missed them: they are
 *   live events, not history);
 * - a head key (`evthead`) bumped in the same commit as every batch, the one
 *   key readers watch (KV Connect) or poll (a local SQLite file).
 *
 * @module
 */
import { keys } from "./keys.ts";
import { busyRetry } from "./busy.ts";

/** A gateway process using the KV. */
export interface ProcRecord {
  procId: string;
  /** The OS process id (meaningful on the same host only). */
  pid: number;
  host: string;
  version: string;
  startedAt: number;
  /** When the record was last refreshed (ms since the epoch). */
  seenAt: number;
}

/** One event relayed from one process to the others. */
export interface RelayedEvent {
  /** The writer's counter: strictly increasing within its stream. */
  seq: number;
  /** When it was broadcast (ms since the epoch). */
  ts: number;
  event: string;
  /** The payload, as JSON text. */
  json: string;
  droppable: boolean;
}

/** The head key's value: who wrote last, and up to which seq. */
export interface ClusterHead {
  procId: string;
  seq: number;
}

/** The stored shape of one part of a relayed event. */
interface StoredPart {
  ts: number;
  event: string;
  /** This part's slice of the JSON text. */
  json: string;
  parts: number;
  droppable: boolean;
}

/**
 * Characters of JSON per stored part. V8 serializes a string with a
 * character beyond Latin-1 at two bytes a character, so 30,000 characters
 * stay under Deno KV's 64 KiB value limit whatever the text.
 */
export const PART_CHARS = 30_000;
/** Mutations per commit, well under Deno KV's 1,000. */
const MAX_MUTATIONS = 200;
/** Estimated bytes per commit, well under Deno KV's 800 KiB total mutation size. */
const MAX_COMMIT_BYTES = 400_000;

/**
 * The cluster records in the store.
 *
 * @example
 * ```ts
 * const kv = await Deno.openKv(":memory:");
 * const c = new ClusterStore(kv);
 * await c.append("p1", [{ seq: 1, ts: Date.now(), event: "cron", json: "{}", droppable: false }], 60_000);
 * console.log(await c.since("p1", 0));
 * ```
 */
export class ClusterStore {
  readonly #kv: Deno.Kv;

  /** Wrap an open KV. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Write (or refresh) a process's presence record; it expires after `ttlMs`. */
  async announce(rec: ProcRecord, ttlMs: number): Promise<void> {
    await busyRetry(() => this.#kv.set(keys.clusterProc(rec.procId), rec, { expireIn: ttlMs }));
  }

  /** Remove a process's presence record (clean stop). */
  async withdraw(procId: string): Promise<void> {
    await busyRetry(() => this.#kv.delete(keys.clusterProc(procId)));
  }

  /** Every presence record still stored (expired ones may linger briefly: check `seenAt`). */
  async procs(): Promise<ProcRecord[]> {
    const out: ProcRecord[] = [];
    for await (const e of this.#kv.list<ProcRecord>({ prefix: keys.clusterProcs() })) {
      out.push(e.value);
    }
    return out;
  }

  /**
   * Append `events` (in seq order) to `procId`'s stream; each part expires
   * after `ttlMs`. Large batches take several commits, each bumping the head,
   * in order: a reader never sees a later seq without the earlier ones.
   */
  async append(procId: string, events: readonly RelayedEvent[], ttlMs: number): Promise<void> {
    let op = this.#kv.atomic();
    let mutations = 0;
    let bytes = 0;
    let lastSeq = 0;
    const commit = async () => {
      if (mutations === 0) return;
      op.set(keys.clusterHead(), { procId, seq: lastSeq } satisfies ClusterHead);
      const pending = op;
      await busyRetry(() => pending.commit());
      op = this.#kv.atomic();
      mutations = 0;
      bytes = 0;
    };
    for (const e of events) {
      const parts = Math.max(1, Math.ceil(e.json.length / PART_CHARS));
      if (mutations + parts > MAX_MUTATIONS || bytes + e.json.length * 2 > MAX_COMMIT_BYTES) {
        await commit();
      }
      for (let i = 0; i < parts; i++) {
        const part: StoredPart = {
          ts: e.ts,
          event: e.event,
          json: e.json.slice(i * PART_CHARS, (i + 1) * PART_CHARS),
          parts,
          droppable: e.droppable,
        };
        op.set(keys.clusterEvent(procId, e.seq, i), part, { expireIn: ttlMs });
        mutations++;
      }
      bytes += e.json.length * 2;
      lastSeq = e.seq;
    }
    await commit();
  }

  /** The events of `procId`'s stream after `afterSeq`, in order (incomplete ones skipped). */
  async since(procId: string, afterSeq: number): Promise<RelayedEvent[]> {
    const out: RelayedEvent[] = [];
    let cur: { seq: number; parts: StoredPart[] } | undefined;
    const done = () => {
      if (!cur) return;
      const first = cur.parts[0]!;
      if (cur.parts.length === first.parts) {
        out.push({
          seq: cur.seq,
          ts: first.ts,
          event: first.event,
          json: cur.parts.map((p) => p.json).join(""),
          droppable: first.droppable,
        });
      }
      cur = undefined;
    };
    const prefix = keys.clusterEvents(procId);
    for await (
      const e of this.#kv.list<StoredPart>({ prefix, start: [...prefix, afterSeq + 1] })
    ) {
      const seq = e.key[prefix.length] as number;
      if (cur?.seq !== seq) {
        done();
        cur = { seq, parts: [] };
      }
      cur.parts.push(e.value);
    }
    done();
    return out;
  }

  /** The head: its versionstamp (null before any event) and value. */
  async head(): Promise<{ versionstamp: string | null; value: ClusterHead | null }> {
    const e = await this.#kv.get<ClusterHead>(keys.clusterHead());
    return { versionstamp: e.versionstamp, value: e.value };
  }

  /**
   * Watch the head. On a local SQLite file Deno reports only changes made
   * through the same process's handle, so other processes' commits are not
   * seen: use it with KV Connect, poll {@link head} otherwise.
   */
  watchHead(): ReadableStream<[Deno.KvEntryMaybe<ClusterHead>]> {
    return this.#kv.watch<[ClusterHead]>([keys.clusterHead()]);
  }
}
