/**
 * Several gateway processes on one Deno KV (one state dir, or one remote KV
 * through KV Connect): each process relays the events its own clients get
 * that matter to the clients of the others, and re-broadcasts theirs.
 *
 * - Presence: every process writes `proc/<procId>` (expiring) at start and
 *   every {@link HEARTBEAT_MS}, and lists the others. A process alone pays
 *   that one small write and read every two seconds, and nothing per event.
 * - Publishing (only while a live peer exists): the events of
 *   {@link RELAYED_EVENTS} go to this process's stream in the KV, batched:
 *   what is broadcast in one turn of the event loop, or while the previous
 *   commit was in flight, goes in one commit that also bumps the head key.
 * - Reading: with KV Connect the head key is watched; on a local SQLite file
 *   `Deno.Kv.watch` does not see other processes' commits (checked with
 *   Deno 2.9.6), so the head is polled every {@link POLL_MS} while a peer
 *   exists. A changed head means: list each peer's stream after its cursor
 *   and broadcast the events locally, marked so they are not relayed again.
 *
 * What does not cross processes (sockets, presence, node connections, exec
 * approvals waiting in memory, per-token agent stream events) is listed in
 * docs/scaling.md.
 *
 * @module
 */
import type { Store } from "../store/mod.ts";
import type { ProcRecord, RelayedEvent } from "../store/cluster.ts";
import type { Logger } from "../log.ts";

/** How often a process refreshes its presence record and re-reads the others'. */
export const HEARTBEAT_MS = 2_000;
/** A presence record not refreshed for this long is a process that is gone. */
export const PROC_TTL_MS = 10_000;
/** How long relayed events stay in the KV. */
export const EVENT_TTL_MS = 60_000;
/** How often the head is polled on a local KV file while a peer exists. */
export const POLL_MS = 100;
/** Events queued beyond this while the KV is slow: droppable ones are left out. */
const MAX_QUEUE = 2_000;

/**
 * The events relayed to the other processes, and why:
 * - `chat`: every state (deltas are throttled by the runtime to one per
 *   150 ms per run; `final`, `error` and `aborted` always go);
 * - `agent`: the non-droppable ones (lifecycle, tool calls); the per-token
 *   `assistant`/`thinking` stream stays on the process that runs the turn
 *   (a write per token would cost more than the turn);
 * - `sessions.changed`, `cron`: their state is in the KV, readable anywhere;
 * - `device.pair.*`, `node.pair.*`, `channel.pairing.*`: the requests are in
 *   the KV, so an operator on any process can approve them;
 * - `voicewake.changed`, `talk.mode`: settings kept in the KV;
 * - `session.message`, `session.tool`: transcript updates (KV).
 *
 * Not relayed: `exec.approval.*` (the waiting command and its resolver live
 * in one process's memory: an operator of another process could not answer
 * it), and what each process has of its own: `tick`, `health`, `presence`,
 * `heartbeat`, `shutdown`.
 */
export const RELAYED_EVENTS: ReadonlySet<string> = new Set([
  "chat",
  "agent",
  "sessions.changed",
  "cron",
  "device.pair.requested",
  "device.pair.resolved",
  "node.pair.requested",
  "node.pair.resolved",
  "channel.pairing.requested",
  "channel.pairing.resolved",
  "voicewake.changed",
  "talk.mode",
  "session.message",
  "session.tool",
]);

/** What the cluster needs from the gateway. */
export interface ClusterDeps {
  store: Store;
  log: Logger;
  version: string;
  /** Broadcast an event of another process to this process's clients (not relayed again). */
  deliver: (event: string, json: string, droppable: boolean) => void;
  /** Watch the head (KV Connect) instead of polling it. Default: poll. */
  watch?: boolean;
}

/** Figures for tests and docs. */
export interface ClusterStats {
  procId: string;
  peers: string[];
  published: number;
  delivered: number;
  dropped: number;
  /** Commits of relayed events. */
  commits: number;
  /** Head reads (polls). */
  polls: number;
}

/**
 * One process's part of the cluster.
 *
 * @example
 * ```ts
 * import { Store } from "../store/mod.ts";
 * import { Logger } from "../log.ts";
 * const store = await Store.open("/tmp/gw/gw.kv");
 * const cluster = new Cluster({
 *   store,
 *   log: new Logger({ stderr: false }),
 *   version: "dev",
 *   deliver: (event, json) => console.log(event, json),
 * });
 * await cluster.start();
 * cluster.publish("cron", '{"jobId":"j1","action":"added"}', false);
 * await cluster.stop();
 * ```
 */
export class Cluster {
  /** This process's id in the KV (new at every start). */
  readonly procId: string = crypto.randomUUID();
  readonly #d: ClusterDeps;
  readonly #startedAt = Date.now();
  /** Live peers by procId. */
  #peers = new Map<string, ProcRecord>();
  /** Last seq read of each stream. */
  #cursors = new Map<string, number>();
  #seq = 0;
  #queue: RelayedEvent[] = [];
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #flushing: Promise<void> | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #poll: ReturnType<typeof setInterval> | undefined;
  #watcher: ReadableStreamDefaultReader<unknown> | undefined;
  #lastHead: string | null = null;
  #reading = false;
  #readAgain = false;
  #stopped = true;
  #stats = { published: 0, delivered: 0, dropped: 0, commits: 0, polls: 0 };

  /** Create a stopped cluster member. */
  constructor(deps: ClusterDeps) {
    this.#d = deps;
  }

  /** Whether another live process uses the KV (events are relayed only then). */
  get active(): boolean {
    return this.#peers.size > 0;
  }

  /** Counters and the live peers. */
  stats(): ClusterStats {
    return { procId: this.procId, peers: [...this.#peers.keys()], ...this.#stats };
  }

  /** Announce this process and learn the others; then keep both fresh. */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#lastHead = (await this.#d.store.cluster.head()).versionstamp;
    await this.#beat();
    this.#heartbeat = setInterval(() => {
      this.#beat().catch((e) => {
        if (!this.#stopped) this.#d.log.warn("cluster: heartbeat failed", { error: e });
      });
    }, HEARTBEAT_MS);
    Deno.unrefTimer(this.#heartbeat as unknown as number);
    if (this.#d.watch) this.#startWatch();
  }

  /** Stop: send what is queued, remove the presence record. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#heartbeat);
    clearInterval(this.#poll);
    this.#poll = undefined;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    await this.#watcher?.cancel().catch(() => {});
    this.#watcher = undefined;
    try {
      if (this.#flushing) await this.#flushing;
      if (this.#queue.length && this.active) await this.#flush();
      await this.#d.store.cluster.withdraw(this.procId);
    } catch (e) {
      this.#d.log.warn("cluster: stop failed", { error: e });
    }
  }

  /**
   * Relay an event this process broadcast (`json`: its payload) to the other
   * processes. Free when no peer is live or the event is not one of
   * {@link RELAYED_EVENTS}.
   */
  publish(event: string, json: string, droppable: boolean): void {
    if (this.#peers.size === 0 || this.#stopped || !RELAYED_EVENTS.has(event)) return;
    if (droppable && event === "agent") return;
    if (this.#queue.length >= MAX_QUEUE) {
      const before = this.#queue.length;
      this.#queue = this.#queue.filter((e) => !e.droppable);
      this.#stats.dropped += before - this.#queue.length;
      if (droppable) {
        this.#stats.dropped++;
        return;
      }
    }
    this.#queue.push({ seq: ++this.#seq, ts: Date.now(), event, json, droppable });
    this.#stats.published++;
    if (this.#flushTimer === undefined && this.#flushing === undefined) {
      this.#flushTimer = setTimeout(() => {
        this.#flushTimer = undefined;
        void this.#flush();
      }, 0);
    }
  }

  /** Write the queue in commits, one at a time, until it is empty. */
  #flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    this.#flushing = (async () => {
      try {
        while (this.#queue.length) {
          const batch = this.#queue;
          this.#queue = [];
          try {
            await this.#d.store.cluster.append(this.procId, batch, EVENT_TTL_MS);
            this.#stats.commits++;
          } catch (e) {
            this.#stats.dropped += batch.length;
            if (!this.#stopped) {
              this.#d.log.warn("cluster: relaying events failed", {
                events: batch.length,
                error: e,
              });
            }
          }
        }
      } finally {
        this.#flushing = undefined;
      }
    })();
    return this.#flushing;
  }

  /** Refresh this process's record and the list of live peers. */
  async #beat(): Promise<void> {
    if (this.#stopped) return;
    const now = Date.now();
    const self: ProcRecord = {
      procId: this.procId,
      pid: Deno.pid,
      host: _hostname(),
      version: this.#d.version,
      startedAt: this.#startedAt,
      seenAt: now,
    };
    await this.#d.store.cluster.announce(self, PROC_TTL_MS);
    const peers = new Map<string, ProcRecord>();
    for (const p of await this.#d.store.cluster.procs()) {
      if (p.procId === this.procId || p.seenAt < now - PROC_TTL_MS) continue;
      // Killed without a clean stop (SIGKILL, a crash): its record outlives it by seconds.
      if (p.host === self.host && !(await _pidAlive(p.pid))) {
        await this.#d.store.cluster.withdraw(p.procId);
        continue;
      }
      peers.set(p.procId, p);
    }
    const joined = [...peers.keys()].filter((id) => !this.#peers.has(id));
    const left = [...this.#peers.keys()].filter((id) => !peers.has(id));
    this.#peers = peers;
    if (joined.length || left.length) {
      this.#d.log.info("cluster: peers changed", { peers: peers.size, joined, left });
    }
    for (const id of joined) if (!this.#cursors.has(id)) this.#cursors.set(id, 0);
    // A new peer may have written before it was seen; one that left, just before it went.
    if (joined.length || left.length) this.#readStreams();
    if (!this.#d.watch) {
      if (peers.size && this.#poll === undefined) {
        this.#poll = setInterval(() => void this.#checkHead(), POLL_MS);
        Deno.unrefTimer(this.#poll as unknown as number);
      } else if (!peers.size && this.#poll !== undefined) {
        clearInterval(this.#poll);
        this.#poll = undefined;
      }
    } else if (peers.size) {
      // A safety net under the watch: a missed notification costs at most a heartbeat.
      void this.#checkHead();
    }
  }

  /** Read the head; when it moved, read the streams. */
  async #checkHead(): Promise<void> {
    if (this.#stopped || this.#reading) return;
    this.#stats.polls++;
    let head;
    try {
      head = await this.#d.store.cluster.head();
    } catch (e) {
      if (!this.#stopped) this.#d.log.warn("cluster: reading the head failed", { error: e });
      return;
    }
    if (head.versionstamp === this.#lastHead) return;
    this.#lastHead = head.versionstamp;
    const writer = head.value?.procId;
    // A writer not yet seen by a heartbeat: read its stream now, not two seconds later.
    if (writer && writer !== this.procId && !this.#cursors.has(writer)) {
      this.#cursors.set(writer, 0);
    }
    this.#readStreams();
  }

  #startWatch(): void {
    const reader = this.#d.store.cluster.watchHead().getReader();
    this.#watcher = reader;
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done || this.#stopped) return;
          const entry = value[0];
          if (entry.versionstamp === this.#lastHead) continue;
          this.#lastHead = entry.versionstamp;
          const writer = entry.value?.procId;
          if (writer && writer !== this.procId && !this.#cursors.has(writer)) {
            this.#cursors.set(writer, 0);
          }
          // Not skipped when this process wrote last: a peer's commit may be folded into it.
          this.#readStreams();
        }
      } catch (e) {
        if (!this.#stopped) this.#d.log.warn("cluster: watching the head failed", { error: e });
      }
    })();
  }

  /** Read new events of every known stream and deliver them. */
  #readStreams(): void {
    if (this.#reading) {
      this.#readAgain = true;
      return;
    }
    this.#reading = true;
    void (async () => {
      try {
        do {
          this.#readAgain = false;
          for (const id of [...this.#cursors.keys()]) {
            if (this.#stopped) return;
            const after = this.#cursors.get(id) ?? 0;
            const events = await this.#d.store.cluster.since(id, after);
            for (const e of events) {
              this.#cursors.set(id, e.seq);
              // Events from before this process started had no client here to see them.
              if (e.ts < this.#startedAt) continue;
              this.#stats.delivered++;
              try {
                this.#d.deliver(e.event, e.json, e.droppable);
              } catch (err) {
                this.#d.log.warn("cluster: delivering an event failed", {
                  event: e.event,
                  error: err,
                });
              }
            }
          }
        } while (this.#readAgain && !this.#stopped);
        // Streams of processes gone for longer than events live have nothing left to read.
        for (const id of [...this.#cursors.keys()]) {
          if (this.#peers.has(id)) this.#gone.delete(id);
          else if (this.#goneLongAgo(id)) this.#cursors.delete(id);
        }
      } catch (e) {
        if (!this.#stopped) this.#d.log.warn("cluster: reading events failed", { error: e });
      } finally {
        this.#reading = false;
      }
    })();
  }

  /** Since when each stream's process has been gone. */
  #gone = new Map<string, number>();

  #goneLongAgo(id: string): boolean {
    const since = this.#gone.get(id);
    if (since === undefined) {
      this.#gone.set(id, Date.now());
      return false;
    }
    if (Date.now() - since < EVENT_TTL_MS) return false;
    this.#gone.delete(id);
    return true;
  }
}

/**
 * Whether process `pid` of this host is alive: signal 0 through node:process
 * (loaded only here; Deno reads another process's /proc files only with
 * --allow-all). Without run permission, or on any doubt, it is taken as alive
 * and its record's age decides.
 */
async function _pidAlive(pid: number): Promise<boolean> {
  if (pid === Deno.pid) return true;
  try {
    const { default: process } = await import("node:process");
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code !== "ESRCH";
  }
}

function _hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}
