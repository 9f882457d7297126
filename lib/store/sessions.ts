/**
 * Sessions, transcripts, pending inputs and run markers in Deno KV.
 *
 * - A session entry (`session/<key>`) holds settings and counters; its
 *   `sessionId` names the current transcript, and `nextSeq` the next
 *   message's position in it.
 * - A transcript is one key per message (`msg/<sessionId>/<seq>`), so a tail
 *   read of 200 messages is one reverse range scan. A message whose JSON is
 *   over {@link CHUNK_CHARS} is split into parts written in the same atomic
 *   commit as its head: a message is there whole or not at all.
 * - Every append checks the session entry's versionstamp, so two processes
 *   sharing a state dir never write the same seq.
 *
 * @module
 */
import type { TranscriptMessage } from "../agent/types.ts";
import type { Attachment } from "../agent/media.ts";
import { keys } from "./keys.ts";
import { BUSY_RETRIES, busyRetry, busyWait, isBusy } from "./busy.ts";

/** Characters of message JSON per KV value (UTF-16 strings stay under the 64 KiB value limit). */
export const CHUNK_CHARS = 20_000;
/** The largest message JSON accepted (one atomic commit must hold it). */
export const MAX_MESSAGE_CHARS = 256 * 1024;

/** Thinking levels a session may ask for. */
export const THINKING_LEVELS = [
  "off",
  "minimal",
  "low",
  "medium",
  "high",
  "xhigh",
  "adaptive",
  "max",
  "ultra",
] as const;
/** A thinking level. */
export type ThinkingLevel = typeof THINKING_LEVELS[number];

/** Other names OpenClaw's clients send for thinking levels. */
const THINKING_ALIASES: Record<string, ThinkingLevel> = {
  none: "off",
  on: "low",
  auto: "adaptive",
  think: "low",
  hard: "high",
  harder: "xhigh",
  "extra-high": "xhigh",
  extrahigh: "xhigh",
};

/** A thinking level from what a client sent (case-insensitive, aliases), or undefined. */
export function thinkingLevelOf(s: string): ThinkingLevel | undefined {
  const v = s.trim().toLowerCase();
  return (THINKING_LEVELS as readonly string[]).includes(v)
    ? v as ThinkingLevel
    : THINKING_ALIASES[v];
}

/** Token counters. */
export interface TokenTotals {
  inputTokens: number;
  outputTokens: number;
  cacheRead: number;
  cacheWrite: number;
  totalTokens: number;
  costUsd: number;
}

/** A session's durable record. */
export interface SessionEntry extends TokenTotals {
  key: string;
  sessionId: string;
  agentId: string;
  createdAt: number;
  updatedAt: number;
  chatType: "direct" | "group" | "channel";
  channel?: string;
  label?: string;
  /** Model override, `provider/model`. */
  model?: string;
  thinkingLevel?: ThinkingLevel;
  verboseLevel?: "off" | "on";
  responseUsage?: "off" | "tokens" | "full";
  /** The first user message, shortened: a title for lists. */
  derivedTitle?: string;
  lastMessagePreview?: string;
  lastMessageAt?: number;
  /** Next message position in the current transcript; also its length. */
  nextSeq: number;
  compactionCount: number;
  /** The latest compaction: messages before `firstKeptSeq` are replaced by `summarySeq`'s summary. */
  compaction?: { summarySeq: number; firstKeptSeq: number };
  status?: "running" | "done" | "failed" | "aborted" | "timeout" | "interrupted";
  /** Archived (hidden from lists by default) since. */
  archivedAt?: number;
  /** Pinned since. */
  pinnedAt?: number;
  lastRunId?: string;
  abortedLastRun?: boolean;
}

/** A transcript message with its position. */
export interface StoredMessage {
  seq: number;
  message: TranscriptMessage;
}

/** An accepted input waiting for its turn (durable before the ack). */
export interface PendingInput {
  id: string;
  runId: string;
  sessionKey: string;
  message: string;
  acceptedAt: number;
  source: string;
  idempotencyKey: string;
  /** Files that came with the message: references into the media dir, never bytes. */
  attachments?: Attachment[];
}

/** A run in progress. */
export interface RunMarker {
  runId: string;
  sessionKey: string;
  sessionId: string;
  startedAt: number;
  /** Who asked (chat, agent, ...): whose idempotency record recovery closes. */
  source?: string;
}

/** The session changed under us (another process); the caller retries. */
class Conflict extends Error {}

const EMPTY_TOTALS: TokenTotals = {
  inputTokens: 0,
  outputTokens: 0,
  cacheRead: 0,
  cacheWrite: 0,
  totalTokens: 0,
  costUsd: 0,
};

/** The part of an agent session key after `agent:<id>:`, and the agent id. */
export function parseSessionKey(key: string): { agentId: string; rest: string } | null {
  const m = /^agent:([^:]+):(.+)$/.exec(key);
  return m ? { agentId: m[1]!, rest: m[2]! } : null;
}

/** Chat type from the key grammar (REFERENCE.md 1.9). */
export function chatTypeOf(key: string): SessionEntry["chatType"] {
  if (/:group:/.test(key)) return "group";
  if (/:(channel|room):/.test(key)) return "channel";
  return "direct";
}

/** One line of `text`, at most `max` characters. */
export function preview(text: string, max = 120): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * The text of a message, for previews and search. Images are skipped; a
 * person's text blocks (the message, attached files) are joined by newlines.
 */
export function messageText(m: TranscriptMessage): string {
  if (m.role === "custom") return m.content;
  if (typeof m.content === "string") return m.content;
  const sep = m.role === "user" ? "\n" : "";
  let out = "";
  for (const b of m.content) {
    if (b.type === "text") out += out && sep ? sep + b.text : b.text;
  }
  return out;
}

/** Session storage over one Deno KV handle. */
export class SessionStore {
  readonly #kv: Deno.Kv;
  /** Per-session write chains: appends within this process never race. */
  readonly #locks = new Map<string, Promise<unknown>>();

  /** Wrap a KV handle. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Run `fn` after every earlier locked call on `key` settled. */
  #locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.#locks.set(key, tail);
    void tail.then(() => {
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    });
    return next;
  }

  /** A session entry, or null. */
  async get(key: string): Promise<SessionEntry | null> {
    return (await this.#kv.get<SessionEntry>(keys.session(key))).value;
  }

  /** Every session entry (unsorted). */
  async list(): Promise<SessionEntry[]> {
    const out: SessionEntry[] = [];
    for await (const e of this.#kv.list<SessionEntry>({ prefix: keys.sessions() })) {
      out.push(e.value);
    }
    return out;
  }

  /** The entry for `key`, created (with a new sessionId) when missing. */
  ensure(
    key: string,
    agentId: string,
    now = Date.now(),
    origin?: { channel: string; label?: string },
  ): Promise<SessionEntry> {
    return this.#locked(key, async () => {
      for (;;) {
        const cur = await this.#kv.get<SessionEntry>(keys.session(key));
        if (cur.value) return cur.value;
        const entry = newEntry(key, agentId, now);
        if (origin) {
          entry.channel = origin.channel;
          if (origin.label) entry.label = origin.label;
        }
        const r = await busyRetry(() =>
          this.#kv.atomic().check(cur).set(keys.session(key), entry).commit()
        );
        if (r.ok) return entry;
      }
    });
  }

  /**
   * Change a session entry with `fn` (compare-and-set, retried on conflict).
   * `fn` returns the new entry, or null to leave it as is. Resolves with the
   * entry after the change, or null when the session does not exist.
   */
  update(
    key: string,
    fn: (e: SessionEntry) => SessionEntry | null,
  ): Promise<SessionEntry | null> {
    return this.#locked(key, async () => {
      for (;;) {
        const cur = await this.#kv.get<SessionEntry>(keys.session(key));
        if (!cur.value) return null;
        const next = fn(structuredClone(cur.value));
        if (!next) return cur.value;
        const r = await busyRetry(() =>
          this.#kv.atomic().check(cur).set(keys.session(key), next).commit()
        );
        if (r.ok) return next;
      }
    });
  }

  /**
   * Append messages to the session's transcript in one atomic commit, with
   * `extra` mutations (delete a pending input, set a run marker) and `patch`
   * applied to the entry. Resolves with the entry after the append and the
   * messages' seqs.
   */
  append(
    key: string,
    messages: TranscriptMessage[],
    opts: {
      patch?: (e: SessionEntry) => void;
      extra?: (op: Deno.AtomicOperation, e: SessionEntry) => void;
    } = {},
  ): Promise<{ entry: SessionEntry; seqs: number[] }> {
    return this.#locked(key, async () => {
      for (let attempt = 0;; attempt++) {
        try {
          return await this.#appendOnce(key, messages, opts);
        } catch (e) {
          if (e instanceof Conflict) continue;
          if (!isBusy(e) || attempt >= BUSY_RETRIES) throw e;
          await busyWait(attempt);
        }
      }
    });
  }

  async #appendOnce(
    key: string,
    messages: TranscriptMessage[],
    opts: {
      patch?: (e: SessionEntry) => void;
      extra?: (op: Deno.AtomicOperation, e: SessionEntry) => void;
    },
  ): Promise<{ entry: SessionEntry; seqs: number[] }> {
    const cur = await this.#kv.get<SessionEntry>(keys.session(key));
    if (!cur.value) throw new Error(`no session ${key}`);
    const entry = structuredClone(cur.value);
    const op = this.#kv.atomic().check(cur);
    const seqs: number[] = [];
    for (const m of messages) {
      const seq = entry.nextSeq++;
      seqs.push(seq);
      const json = JSON.stringify(m);
      if (json.length > MAX_MESSAGE_CHARS) {
        throw new RangeError(
          `message too large (${json.length} > ${MAX_MESSAGE_CHARS} characters)`,
        );
      }
      if (json.length <= CHUNK_CHARS) op.set(keys.message(entry.sessionId, seq), json);
      else {
        const n = Math.ceil(json.length / CHUNK_CHARS);
        for (let i = 0; i < n; i++) {
          op.set(
            keys.messagePart(entry.sessionId, seq, i),
            json.slice(i * CHUNK_CHARS, (i + 1) * CHUNK_CHARS),
          );
        }
        op.set(keys.message(entry.sessionId, seq), { parts: n });
      }
      if (m.role !== "custom" && m.role !== "toolResult") {
        const text = messageText(m);
        if (text) {
          entry.lastMessagePreview = preview(text);
          entry.lastMessageAt = m.timestamp;
          if (m.role === "user" && !entry.derivedTitle) entry.derivedTitle = preview(text, 60);
        }
      }
      entry.updatedAt = Math.max(entry.updatedAt, m.timestamp);
    }
    opts.patch?.(entry);
    opts.extra?.(op, entry);
    op.set(keys.session(key), entry);
    const r = await op.commit();
    if (!r.ok) throw new Conflict();
    return { entry, seqs };
  }

  async #decode(sessionId: string, seq: number, v: unknown): Promise<TranscriptMessage> {
    if (typeof v === "string") return JSON.parse(v);
    const n = (v as { parts: number }).parts;
    const parts = await this.#kv.getMany<string[]>(
      Array.from({ length: n }, (_, i) => keys.messagePart(sessionId, seq, i)),
    );
    return JSON.parse(parts.map((p) => p.value ?? "").join(""));
  }

  /**
   * Transcript messages of `sessionId` with seq in [from, before), newest
   * last; at most `limit` of them, taken from the end.
   */
  async messages(
    sessionId: string,
    opts: { limit: number; before?: number; from?: number },
  ): Promise<StoredMessage[]> {
    const prefix = keys.transcript(sessionId);
    const selector: Deno.KvListSelector = opts.before !== undefined || opts.from !== undefined
      ? {
        start: [...prefix, opts.from ?? 0],
        end: [...prefix, opts.before ?? Number.MAX_SAFE_INTEGER],
      }
      : { prefix };
    const out: StoredMessage[] = [];
    for await (const e of this.#kv.list(selector, { reverse: true, limit: opts.limit })) {
      const seq = e.key[e.key.length - 1] as number;
      out.push({ seq, message: await this.#decode(sessionId, seq, e.value) });
    }
    return out.reverse();
  }

  /** Delete a transcript (all messages and parts), in batches. */
  async deleteTranscript(sessionId: string): Promise<number> {
    let n = 0;
    const heads = keys.transcript(sessionId);
    for (const prefix of [heads, keys.messageParts(sessionId)]) {
      let batch: Deno.KvKey[] = [];
      for await (const e of this.#kv.list({ prefix }, { consistency: "eventual" })) {
        batch.push(e.key);
        if (prefix === heads) n++;
        if (batch.length === 500) {
          await this.#deleteAll(batch);
          batch = [];
        }
      }
      await this.#deleteAll(batch);
    }
    return n;
  }

  /**
   * Remove the messages with seq in [from, before) from the session's current
   * transcript and apply `patch` to its entry, in one atomic commit (a turn
   * that should leave no trace, such as a silent heartbeat). When they were
   * the last messages, `nextSeq` goes back to `from`. Resolves with the entry
   * after the change, or null when the session does not exist.
   */
  removeMessages(
    key: string,
    from: number,
    before: number,
    patch?: (e: SessionEntry) => void,
  ): Promise<SessionEntry | null> {
    return this.#locked(key, async () => {
      for (;;) {
        const cur = await this.#kv.get<SessionEntry>(keys.session(key));
        if (!cur.value) return null;
        const entry = structuredClone(cur.value);
        const prefix = keys.transcript(entry.sessionId);
        const gone: Deno.KvKey[] = [];
        const range = { start: [...prefix, from], end: [...prefix, before] };
        for await (const e of this.#kv.list(range)) {
          gone.push(e.key);
          const seq = e.key[e.key.length - 1] as number;
          const parts = typeof e.value === "object" && e.value !== null
            ? (e.value as { parts?: number }).parts ?? 0
            : 0;
          for (let i = 0; i < parts; i++) gone.push(keys.messagePart(entry.sessionId, seq, i));
        }
        if (entry.nextSeq === before) entry.nextSeq = from;
        patch?.(entry);
        const r = await busyRetry(() => {
          const op = this.#kv.atomic().check(cur);
          for (const k of gone) op.delete(k);
          return op.set(keys.session(key), entry).commit();
        });
        if (r.ok) return entry;
      }
    });
  }

  async #deleteAll(ks: Deno.KvKey[]): Promise<void> {
    if (ks.length === 0) return;
    await busyRetry(() => {
      const op = this.#kv.atomic();
      for (const k of ks) op.delete(k);
      return op.commit();
    });
  }

  /** Start over: a new sessionId and counters; settings kept. Returns the old sessionId. */
  async reset(
    key: string,
    now = Date.now(),
  ): Promise<{ entry: SessionEntry; oldSessionId: string } | null> {
    let oldSessionId = "";
    const entry = await this.update(key, (e) => {
      oldSessionId = e.sessionId;
      const fresh = newEntry(key, e.agentId, now);
      fresh.createdAt = e.createdAt;
      for (const k of KEPT_ON_RESET) {
        if (e[k] !== undefined) (fresh as unknown as Record<string, unknown>)[k] = e[k];
      }
      return fresh;
    });
    return entry ? { entry, oldSessionId } : null;
  }

  /** Delete a session entry (and its pending inputs); the transcript only when asked. */
  async delete(key: string, deleteTranscript: boolean): Promise<SessionEntry | null> {
    return await this.#locked(key, async () => {
      const cur = await this.#kv.get<SessionEntry>(keys.session(key));
      if (!cur.value) return null;
      const op = this.#kv.atomic().check(cur).delete(keys.session(key));
      for await (const p of this.#kv.list({ prefix: keys.pendingInputs(key) })) op.delete(p.key);
      await op.commit();
      if (deleteTranscript) await this.deleteTranscript(cur.value.sessionId);
      return cur.value;
    });
  }

  /** Record an accepted input (durable before the ack). */
  async addPending(p: PendingInput): Promise<void> {
    await busyRetry(() => this.#kv.set(keys.pendingInput(p.sessionKey, p.id), p));
  }

  /** Pending inputs of a session, oldest first; every session's when `sessionKey` is absent. */
  async pending(sessionKey?: string): Promise<PendingInput[]> {
    const out: PendingInput[] = [];
    const prefix = sessionKey === undefined
      ? keys.allPendingInputs()
      : keys.pendingInputs(sessionKey);
    for await (const e of this.#kv.list<PendingInput>({ prefix })) out.push(e.value);
    return out;
  }

  /** Delete a pending input (inside an append, use {@link pendingKey}). */
  async dropPending(p: PendingInput): Promise<void> {
    await busyRetry(() => this.#kv.delete(keys.pendingInput(p.sessionKey, p.id)));
  }

  /** The KV key of a pending input, for atomic moves. */
  pendingKey(p: PendingInput): Deno.KvKey {
    return keys.pendingInput(p.sessionKey, p.id);
  }

  /** The KV key of a run marker, for atomic writes. */
  runKey(runId: string): Deno.KvKey {
    return keys.run(runId);
  }

  /** Delete a run marker. */
  async endRun(runId: string): Promise<void> {
    await busyRetry(() => this.#kv.delete(keys.run(runId)));
  }

  /** Run markers left by a process that stopped mid-run. */
  async runMarkers(): Promise<RunMarker[]> {
    const out: RunMarker[] = [];
    for await (const e of this.#kv.list<RunMarker>({ prefix: keys.runs() })) out.push(e.value);
    return out;
  }
}

/** Settings a reset keeps. */
const KEPT_ON_RESET = [
  "archivedAt",
  "pinnedAt",
  "label",
  "model",
  "thinkingLevel",
  "verboseLevel",
  "responseUsage",
  "channel",
] as const;

function newEntry(key: string, agentId: string, now: number): SessionEntry {
  return {
    key,
    sessionId: crypto.randomUUID(),
    agentId,
    createdAt: now,
    updatedAt: now,
    chatType: chatTypeOf(key),
    nextSeq: 0,
    compactionCount: 0,
    ...EMPTY_TOTALS,
  };
}
