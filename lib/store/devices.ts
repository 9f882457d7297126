/**
 * Paired devices, their tokens (stored as SHA-256 hashes, never in clear)
 * and pending pairing requests (5-minute TTL), in Deno KV.
 *
 * @module
 */
import { keys } from "./keys.ts";
import { busyRetry } from "./busy.ts";

/** How long a pairing request waits for a decision. */
export const PAIR_REQUEST_TTL_MS = 5 * 60_000;

/** A device token's record (the token itself is only ever returned once). */
export interface DeviceTokenRecord {
  role: string;
  /** Hex SHA-256 of the token. */
  hash: string;
  scopes: string[];
  createdAtMs: number;
  rotatedAtMs?: number;
  revokedAtMs?: number;
  lastUsedAtMs?: number;
}

/** A paired device. */
export interface PairedDevice {
  deviceId: string;
  /** Raw Ed25519 public key, base64url. */
  publicKey: string;
  displayName?: string;
  platform?: string;
  deviceFamily?: string;
  clientId: string;
  clientMode: string;
  roles: string[];
  /** The baseline: no token of this device ever carries more. */
  approvedScopes: string[];
  /** For nodes: the commands it may offer. */
  approvedCommands?: string[];
  remoteIp: string;
  createdAtMs: number;
  approvedAtMs: number;
  /** Who approved: "auto-loopback" or the approving connection's client id. */
  approvedBy: string;
  lastSeenAtMs?: number;
  lastSeenIp?: string;
  tokens: Record<string, DeviceTokenRecord>;
}

/** A pairing request waiting for an operator. */
export interface PairRequest {
  requestId: string;
  deviceId: string;
  publicKey: string;
  displayName?: string;
  platform?: string;
  deviceFamily?: string;
  clientId: string;
  clientMode: string;
  role: string;
  scopes: string[];
  remoteIp: string;
  /** `not-paired` or `scope-upgrade`. */
  reason: string;
  /** For nodes: the commands it declares. */
  commands?: string[];
  createdAtMs: number;
  expiresAtMs: number;
}

/** Devices over one KV handle. */
export class DeviceStore {
  readonly #kv: Deno.Kv;

  /** Wrap a KV handle. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** A paired device with its versionstamp. */
  entry(id: string): Promise<Deno.KvEntryMaybe<PairedDevice>> {
    return this.#kv.get<PairedDevice>(keys.device(id));
  }

  /** A paired device, or null. */
  async get(id: string): Promise<PairedDevice | null> {
    return (await this.entry(id)).value;
  }

  /** Every paired device. */
  async list(): Promise<PairedDevice[]> {
    const out: PairedDevice[] = [];
    for await (const e of this.#kv.list<PairedDevice>({ prefix: keys.devices() })) {
      out.push(e.value);
    }
    return out;
  }

  /** Write `next` if the device is still as `cur` saw it. */
  async put(cur: Deno.KvEntryMaybe<PairedDevice>, next: PairedDevice): Promise<boolean> {
    return (await busyRetry(() =>
      this.#kv.atomic().check(cur).set(keys.device(next.deviceId), next).commit()
    )).ok;
  }

  /** Remove a device (and with it every token). */
  async remove(cur: Deno.KvEntryMaybe<PairedDevice>): Promise<boolean> {
    if (!cur.value) return false;
    return (await busyRetry(() =>
      this.#kv.atomic().check(cur).delete(keys.device(cur.value!.deviceId)).commit()
    )).ok;
  }

  /** A live pairing request, or null (expired ones are gone). */
  async request(id: string, now = Date.now()): Promise<PairRequest | null> {
    const r = (await this.#kv.get<PairRequest>(keys.pairRequest(id))).value;
    return r && r.expiresAtMs > now ? r : null;
  }

  /** Live pairing requests, oldest first. */
  async requests(now = Date.now()): Promise<PairRequest[]> {
    const out: PairRequest[] = [];
    for await (const e of this.#kv.list<PairRequest>({ prefix: keys.pairRequests() })) {
      if (e.value.expiresAtMs > now) out.push(e.value);
    }
    return out.sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  /** Store a request (expiring with its TTL). */
  async addRequest(r: PairRequest): Promise<void> {
    await busyRetry(() =>
      this.#kv.set(keys.pairRequest(r.requestId), r, {
        expireIn: Math.max(1000, r.expiresAtMs - Date.now()),
      })
    );
  }

  /** Drop a request. */
  async dropRequest(id: string): Promise<void> {
    await busyRetry(() => this.#kv.delete(keys.pairRequest(id)));
  }

  /**
   * Approve `req`: one commit drops the request and writes the device with
   * `scopes` as its approved baseline (merged with an existing device's).
   */
  async approve(
    req: PairRequest,
    scopes: string[],
    by: string,
    now: number,
  ): Promise<PairedDevice | null> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = await this.entry(req.deviceId);
      const prev = cur.value;
      const device: PairedDevice = {
        deviceId: req.deviceId,
        publicKey: req.publicKey,
        clientId: req.clientId,
        clientMode: req.clientMode,
        roles: [...new Set([...(prev?.roles ?? []), req.role])],
        approvedScopes: [...new Set([...(prev?.approvedScopes ?? []), ...scopes])],
        remoteIp: req.remoteIp,
        createdAtMs: prev?.createdAtMs ?? now,
        approvedAtMs: now,
        approvedBy: by,
        tokens: prev?.tokens ?? {},
      };
      for (const k of ["displayName", "platform", "deviceFamily"] as const) {
        const v = req[k] ?? prev?.[k];
        if (v !== undefined) device[k] = v;
      }
      if (req.commands || prev?.approvedCommands) {
        device.approvedCommands = [
          ...new Set([...(prev?.approvedCommands ?? []), ...(req.commands ?? [])]),
        ];
      }
      if (prev?.lastSeenAtMs !== undefined) device.lastSeenAtMs = prev.lastSeenAtMs;
      if (prev?.lastSeenIp !== undefined) device.lastSeenIp = prev.lastSeenIp;
      const r = await busyRetry(() =>
        this.#kv.atomic().check(cur).set(keys.device(device.deviceId), device)
          .delete(keys.pairRequest(req.requestId)).commit()
      );
      if (r.ok) return device;
    }
    return null;
  }
}
