/**
 * gw's durable state in Deno KV (`<state>/gw.kv`). Only this module and
 * `keys.ts` know the key layout; everything else calls these methods.
 *
 * @module
 */
import { ChannelStore } from "./channels.ts";
import type { HeartbeatRecord } from "../protocol/types.ts";
import { keys, SCHEMA_VERSION } from "./keys.ts";
import { SessionStore } from "./sessions.ts";
import { IdempotencyStore, UsageStore } from "./usage.ts";
import { CronStore } from "./cron.ts";
import { DeviceStore } from "./devices.ts";
import { ExecPolicyStore } from "./exec.ts";
import { KvWizardStore } from "../wizard/store.ts";
import { SpeechStore } from "./tts.ts";
import { ClusterStore } from "./cluster.ts";

export { keys, SCHEMA_VERSION } from "./keys.ts";
export { SessionStore } from "./sessions.ts";
export type { PendingInput, RunMarker, SessionEntry, StoredMessage } from "./sessions.ts";
export { IdempotencyStore, UsageStore } from "./usage.ts";
export type { UsageRow } from "./usage.ts";
export { CronStore } from "./cron.ts";
export { DeviceStore, PAIR_REQUEST_TTL_MS } from "./devices.ts";
export { DEFAULT_POLICY, ExecPolicyStore } from "./exec.ts";
export type { AllowEntry, PolicyFile, PolicySettings, PolicySnapshot } from "./exec.ts";
export { SpeechStore } from "./tts.ts";
export { ClusterStore } from "./cluster.ts";
export type { ClusterHead, ProcRecord, RelayedEvent } from "./cluster.ts";
export type { TalkModeOwner, TalkModeRecord, VoiceWakeRecord } from "./tts.ts";
export type { DeviceTokenRecord, PairedDevice, PairRequest } from "./devices.ts";
export type { CronDelivery, CronJob, CronPayload, CronRunRecord, CronState } from "./cron.ts";

/** The state dir was written by a newer gw whose key layout this one does not know. */
export class StoreVersionError extends Error {
  /** Create the error. */
  constructor(found: number) {
    super(
      `the state was written by a newer gw (store layout ${found}, this gw knows ${SCHEMA_VERSION}); upgrade gw`,
    );
    this.name = "StoreVersionError";
  }
}

/** A queued system event. */
export interface SystemEvent {
  id: string;
  ts: number;
  text: string;
}

/** Most system events kept per session; older ones drop off. */
export const MAX_SYSTEM_EVENTS = 20;

let lastMs = 0;
let seq = 0;

/**
 * A sortable, unique id: the 13-digit ms time, a per-process counter within
 * that millisecond, and a random suffix (unique across processes sharing a
 * state dir). Strictly increasing within a process, even if the clock steps back.
 */
export function sortableId(now: number = Date.now()): string {
  if (now <= lastMs) seq++;
  else [lastMs, seq] = [now, 0];
  return `${String(lastMs).padStart(13, "0")}-${String(seq).padStart(6, "0")}-${
    crypto.randomUUID().slice(0, 8)
  }`;
}

/**
 * The store. Open one per process.
 *
 * @example
 * ```ts
 * const store = await Store.open("/tmp/gw/gw.kv");
 * await store.setHeartbeatsEnabled(false);
 * store.close();
 * ```
 */
export class Store {
  /** Path of the KV file. */
  readonly path: string;
  /** Sessions, transcripts, pending inputs, run markers. */
  readonly sessions: SessionStore;
  /** Token usage by day, agent and model. */
  readonly usage: UsageStore;
  /** Idempotency records. */
  readonly idempotency: IdempotencyStore;
  /** Cron jobs and their runs. */
  readonly cron: CronStore;
  /** Paired devices, tokens and pairing requests. */
  readonly devices: DeviceStore;
  /** Exec policies of the execution hosts. */
  readonly exec: ExecPolicyStore;
  /** Channel offsets, approved senders, pairing requests. */
  readonly channels: ChannelStore;
  /** Setup wizard sessions (lib/wizard). */
  readonly wizard: KvWizardStore;
  /** Speech: the TTS switch and provider, voice wake triggers, talk modes. */
  readonly speech: SpeechStore;
  /** What gateway processes sharing this KV tell each other (lib/server/cluster.ts). */
  readonly cluster: ClusterStore;
  readonly #kv: Deno.Kv;
  #closed = false;

  private constructor(kv: Deno.Kv, path: string) {
    this.#kv = kv;
    this.path = path;
    this.sessions = new SessionStore(kv);
    this.usage = new UsageStore(kv);
    this.idempotency = new IdempotencyStore(kv);
    this.cron = new CronStore(kv);
    this.devices = new DeviceStore(kv);
    this.exec = new ExecPolicyStore(kv);
    this.channels = new ChannelStore(kv);
    this.wizard = new KvWizardStore(kv);
    this.speech = new SpeechStore(kv);
    this.cluster = new ClusterStore(kv);
  }

  /**
   * Open (creating when needed) the KV file at `path` and check its layout
   * version. An `http(s)://` URL opens a remote KV through KV Connect (the
   * token comes from `DENO_KV_ACCESS_TOKEN`).
   */
  static async open(path: string, gwVersion = "dev"): Promise<Store> {
    const kv = await Deno.openKv(path);
    // SQLite creates the file and its journals with the process umask (often 0644): owner only.
    if (!path.includes("://") && Deno.build.os !== "windows") {
      for (const f of [path, `${path}-wal`, `${path}-shm`]) {
        await Deno.chmod(f, 0o600).catch(() => {});
      }
    }
    const meta = await kv.get<{ schemaVersion: number }>(keys.meta());
    if (meta.value && meta.value.schemaVersion > SCHEMA_VERSION) {
      kv.close();
      throw new StoreVersionError(meta.value.schemaVersion);
    }
    if (!meta.value) {
      await kv.atomic().check(meta).set(keys.meta(), {
        schemaVersion: SCHEMA_VERSION,
        createdAt: Date.now(),
        gwVersion,
      }).commit();
    }
    return new Store(kv, path);
  }

  /** Read the layout record: resolves when the store answers (readiness checks). */
  async ping(): Promise<void> {
    await this.#kv.get(keys.meta());
  }

  /** Whether heartbeats were switched on or off at run time; null when never set. */
  async heartbeatsEnabled(): Promise<boolean | null> {
    return (await this.#kv.get<boolean>(keys.heartbeatsEnabled())).value;
  }

  /** Persist the heartbeat switch. */
  async setHeartbeatsEnabled(enabled: boolean): Promise<void> {
    await this.#kv.set(keys.heartbeatsEnabled(), enabled);
  }

  /** The last heartbeat record, or null. */
  async lastHeartbeat(): Promise<HeartbeatRecord | null> {
    return (await this.#kv.get<HeartbeatRecord>(keys.lastHeartbeat())).value;
  }

  /** Record a heartbeat. */
  async setLastHeartbeat(record: HeartbeatRecord): Promise<void> {
    await this.#kv.set(keys.lastHeartbeat(), record);
  }

  /** Queue a system event for a session's next agent turn, keeping the newest {@link MAX_SYSTEM_EVENTS}. */
  async enqueueSystemEvent(sessionKey: string, text: string): Promise<SystemEvent> {
    const event: SystemEvent = { id: sortableId(), ts: Date.now(), text };
    await this.#kv.set(keys.systemEvent(sessionKey, event.id), event);
    const all = await this.systemEvents(sessionKey);
    const excess = all.length - MAX_SYSTEM_EVENTS;
    if (excess > 0) {
      const op = this.#kv.atomic();
      for (const old of all.slice(0, excess)) op.delete(keys.systemEvent(sessionKey, old.id));
      await op.commit();
    }
    return event;
  }

  /** Take (read and delete) the queued system events of a session, oldest first. */
  async drainSystemEvents(sessionKey: string): Promise<SystemEvent[]> {
    const all = await this.systemEvents(sessionKey);
    if (all.length) {
      const op = this.#kv.atomic();
      for (const e of all) op.delete(keys.systemEvent(sessionKey, e.id));
      await op.commit();
    }
    return all;
  }

  /** Queued system events of a session, oldest first. */
  async systemEvents(sessionKey: string): Promise<SystemEvent[]> {
    const out: SystemEvent[] = [];
    for await (const e of this.#kv.list<SystemEvent>({ prefix: keys.systemEvents(sessionKey) })) {
      out.push(e.value);
    }
    return out;
  }

  /** Close the KV file (a second close does nothing). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#kv.close();
  }
}
