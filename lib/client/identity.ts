/**
 * Device identity for the OpenClaw Gateway protocol (REFERENCE.md 1.3): an
 * Ed25519 key pair whose id is the hex SHA-256 of the raw public key, the v3
 * payload it signs on every connect, and where a client keeps the key and the
 * device tokens a gateway issues. Browser-safe: WebCrypto, `atob`/`btoa` and
 * (for {@link IndexedDbIdentityStorage}) IndexedDB only.
 *
 * @example
 * ```ts ignore
 * import { deviceAuthHook, GatewayClient, MemoryIdentityStorage } from "@gw/gw";
 *
 * const storage = new MemoryIdentityStorage();
 * const client = new GatewayClient({
 *   url: "wss://gateway.example:18789",
 *   token: "shared-secret",
 *   signDevice: deviceAuthHook(storage),
 *   deviceTokens: storage,
 * });
 * await client.connect(); // hello-ok.auth.deviceToken, once paired, lands in storage
 * ```
 *
 * @module
 */
import type { ConnectChallenge, ConnectParams, DeviceAuth } from "../protocol/types.ts";
import { devicePayload, fromB64url, sha256Hex, toB64url } from "../protocol/device_auth.ts";

/**
 * An identity as it is stored: version 1, everything needed to sign again.
 * It holds the private key: keep it where only its owner can read it.
 *
 * @example
 * ```ts
 * import { DeviceIdentity, type StoredIdentity } from "@gw/gw";
 * const stored: StoredIdentity = (await DeviceIdentity.generate()).toJSON();
 * const again = await DeviceIdentity.fromJSON(stored);
 * console.log(again.deviceId === stored.deviceId); // true
 * ```
 */
export interface StoredIdentity {
  /** Format version. */
  version: 1;
  /** Lowercase hex SHA-256 of the raw public key. */
  deviceId: string;
  /** The raw 32-byte Ed25519 public key, base64url without padding. */
  publicKey: string;
  /** The private key as PKCS #8 DER, base64url without padding. */
  privateKey: string;
  /** When the key was made, epoch ms. */
  createdAtMs: number;
}

/**
 * A device token a gateway issued in `hello-ok.auth.deviceToken`.
 *
 * @example
 * ```ts
 * import { MemoryIdentityStorage, type StoredDeviceToken } from "@gw/gw";
 * const token: StoredDeviceToken = {
 *   token: "dt-…",
 *   role: "operator",
 *   scopes: ["operator.read"],
 *   issuedAtMs: Date.now(),
 * };
 * await new MemoryIdentityStorage().saveToken("ws://127.0.0.1:18789", token);
 * ```
 */
export interface StoredDeviceToken {
  /** The token, sent back as `auth.deviceToken`. */
  token: string;
  /** The role it was issued for. */
  role: string;
  /** The scopes it carries (the connection's scopes when it was issued). */
  scopes: string[];
  /** When the gateway issued it, epoch ms. */
  issuedAtMs: number;
}

/**
 * Device tokens kept per gateway URL (the `deviceTokens` option of
 * `GatewayClient`). Key them by {@link gatewayKey} so that spellings of one
 * URL share a token.
 *
 * @example
 * ```ts
 * import { type DeviceTokenStorage, gatewayKey, type StoredDeviceToken } from "@gw/gw";
 * // Tokens in localStorage (a browser); any string store works the same way.
 * function localTokens(store: Pick<Storage, "getItem" | "setItem" | "removeItem">): DeviceTokenStorage {
 *   const key = (url: string) => `gw-token:${gatewayKey(url)}`;
 *   return {
 *     loadToken: (url) => {
 *       const text = store.getItem(key(url));
 *       return Promise.resolve(text ? JSON.parse(text) as StoredDeviceToken : null);
 *     },
 *     saveToken: (url, token) => Promise.resolve(store.setItem(key(url), JSON.stringify(token))),
 *     clearToken: (url) => Promise.resolve(store.removeItem(key(url))),
 *   };
 * }
 * console.log(typeof localTokens); // function
 * ```
 */
export interface DeviceTokenStorage {
  /** The token stored for `url`, or null. */
  loadToken(url: string): Promise<StoredDeviceToken | null>;
  /** Store `token` for `url`, replacing any other. */
  saveToken(url: string, token: StoredDeviceToken): Promise<void>;
  /** Forget the token of `url`. */
  clearToken(url: string): Promise<void>;
}

/**
 * Where a client keeps its identity and its device tokens:
 * {@link MemoryIdentityStorage}, {@link IndexedDbIdentityStorage}, or your
 * own (a file, a keychain).
 *
 * @example
 * ```ts
 * import { deviceAuthHook, type IdentityStorage, MemoryIdentityStorage } from "@gw/gw";
 * const storage: IdentityStorage = new MemoryIdentityStorage();
 * const signDevice = deviceAuthHook(storage); // creates and saves the key on first use
 * console.log(await storage.load()); // null: nothing signed yet
 * console.log(typeof signDevice); // function
 * ```
 */
export interface IdentityStorage extends DeviceTokenStorage {
  /** The stored identity, or null when there is none yet. */
  load(): Promise<StoredIdentity | null>;
  /** Store the identity, replacing any other. */
  save(identity: StoredIdentity): Promise<void>;
}

/**
 * What a device signs besides its own id: the connect's fields and the challenge.
 *
 * @example
 * ```ts
 * import { deviceAuthPayload, type SignParams } from "@gw/gw";
 * const params: SignParams = {
 *   challenge: { nonce: "n-1", ts: 1700000000000 },
 *   clientId: "cli",
 *   clientMode: "cli",
 *   role: "operator",
 *   scopes: ["operator.read"],
 *   token: "secret",
 * };
 * console.log(deviceAuthPayload("ab12", params));
 * // v3|ab12|cli|cli|operator|operator.read|1700000000000|secret|n-1||
 * ```
 */
export interface SignParams {
  /** The `connect.challenge` payload: its nonce, and its ts as `signedAt`. */
  challenge: Pick<ConnectChallenge, "nonce" | "ts">;
  /** `client.id`. */
  clientId: string;
  /** `client.mode`. */
  clientMode: string;
  /** The role asked for. */
  role: string;
  /** The scopes asked for, in the order sent. */
  scopes: readonly string[];
  /** The first of auth.token, auth.deviceToken, auth.bootstrapToken, else "". */
  token: string;
  /** `client.platform`. */
  platform?: string | undefined;
  /** `client.deviceFamily`. */
  deviceFamily?: string | undefined;
}

/**
 * A stored identity that is malformed or whose parts do not belong together.
 *
 * @example
 * ```ts
 * import { DeviceIdentity, IdentityError, type StoredIdentity } from "@gw/gw";
 * const stored: StoredIdentity = (await DeviceIdentity.generate()).toJSON();
 * try {
 *   await DeviceIdentity.fromJSON({ ...stored, deviceId: "0".repeat(64) });
 * } catch (e) {
 *   console.log(e instanceof IdentityError, (e as Error).message);
 *   // true device identity: deviceId is not the SHA-256 of publicKey
 * }
 * ```
 */
export class IdentityError extends Error {
  /** Always `"IdentityError"`. */
  override readonly name = "IdentityError";
  /** Creates the error; `cause` is the underlying error, if any. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The v3 string a device signs:
 * `v3|deviceId|clientId|clientMode|role|scopes|signedAt|token|nonce|platform|deviceFamily`.
 *
 * @example
 * ```ts
 * import { deviceAuthPayload } from "@gw/gw";
 * const p = deviceAuthPayload("ab12", {
 *   challenge: { nonce: "n", ts: 1 },
 *   clientId: "cli",
 *   clientMode: "cli",
 *   role: "operator",
 *   scopes: ["operator.read"],
 *   token: "",
 *   platform: " Linux ",
 * });
 * console.log(p); // v3|ab12|cli|cli|operator|operator.read|1||n|linux|
 * ```
 */
export function deviceAuthPayload(deviceId: string, p: SignParams): string {
  return devicePayload("v3", deviceId, p, p.challenge.ts, p.challenge.nonce);
}

/**
 * The token a connect's signature covers: auth.token, auth.deviceToken,
 * auth.bootstrapToken, else "".
 *
 * @example
 * ```ts
 * import { signedToken } from "@gw/gw";
 * console.log(signedToken({ deviceToken: "dt", bootstrapToken: "bt" })); // dt
 * console.log(signedToken(undefined) === ""); // true
 * ```
 */
export function signedToken(auth: ConnectParams["auth"]): string {
  return auth?.token ?? auth?.deviceToken ?? auth?.bootstrapToken ?? "";
}

/**
 * An Ed25519 device identity: `deviceId` is the hex SHA-256 of the raw public
 * key. {@link sign} produces the `device` field of connect params.
 *
 * @example
 * ```ts
 * import { DeviceIdentity } from "@gw/gw";
 * const id = await DeviceIdentity.generate();
 * const device = await id.sign({
 *   challenge: { nonce: "3f0c", ts: Date.now() },
 *   clientId: "cli",
 *   clientMode: "cli",
 *   role: "operator",
 *   scopes: ["operator.read"],
 *   token: "",
 * });
 * console.log(device.id === id.deviceId, device.signature.length); // true 86
 * const again = await DeviceIdentity.fromJSON(JSON.parse(JSON.stringify(id)));
 * console.log(again.deviceId === id.deviceId); // true
 * ```
 */
export class DeviceIdentity {
  /** Lowercase hex SHA-256 of the raw public key. */
  readonly deviceId: string;
  /** The raw public key, base64url without padding. */
  readonly publicKey: string;
  /** When the key was made, epoch ms. */
  readonly createdAtMs: number;
  #key: CryptoKey;
  #pkcs8: string;

  private constructor(stored: StoredIdentity, key: CryptoKey) {
    this.deviceId = stored.deviceId;
    this.publicKey = stored.publicKey;
    this.createdAtMs = stored.createdAtMs;
    this.#pkcs8 = stored.privateKey;
    this.#key = key;
  }

  /** Make a new key pair. */
  static async generate(): Promise<DeviceIdentity> {
    const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    const stored: StoredIdentity = {
      version: 1,
      deviceId: await sha256Hex(raw),
      publicKey: toB64url(raw),
      privateKey: toB64url(pkcs8),
      createdAtMs: Date.now(),
    };
    return new DeviceIdentity(stored, pair.privateKey);
  }

  /**
   * Load a stored identity, checking that the private key, public key and id
   * belong together.
   *
   * @throws {IdentityError} when it is malformed or inconsistent.
   */
  static async fromJSON(stored: StoredIdentity): Promise<DeviceIdentity> {
    const s = stored as Partial<Record<keyof StoredIdentity, unknown>> | null;
    if (!s || typeof s !== "object" || s.version !== 1) {
      throw new IdentityError(
        `device identity: expected version 1, got ${JSON.stringify(s?.version)}`,
      );
    }
    for (const k of ["deviceId", "publicKey", "privateKey"] as const) {
      if (typeof s[k] !== "string" || !s[k]) {
        throw new IdentityError(`device identity: ${k}: expected a string, got ${typeof s[k]}`);
      }
    }
    const der = fromB64url(stored.privateKey);
    if (!der) throw new IdentityError("device identity: privateKey is not base64url");
    let key: CryptoKey, x: string | undefined;
    try {
      const extractable = await crypto.subtle.importKey(
        "pkcs8",
        der as BufferSource,
        { name: "Ed25519" },
        true,
        ["sign"],
      );
      x = (await crypto.subtle.exportKey("jwk", extractable)).x;
      key = await crypto.subtle.importKey(
        "pkcs8",
        der as BufferSource,
        { name: "Ed25519" },
        false,
        [
          "sign",
        ],
      );
    } catch (cause) {
      throw new IdentityError("device identity: privateKey is not a PKCS #8 Ed25519 key", {
        cause,
      });
    }
    const raw = fromB64url(stored.publicKey);
    if (!raw || raw.length !== 32 || x !== toB64url(raw)) {
      throw new IdentityError("device identity: publicKey does not match privateKey");
    }
    if ((await sha256Hex(raw)) !== stored.deviceId) {
      throw new IdentityError("device identity: deviceId is not the SHA-256 of publicKey");
    }
    const createdAtMs = typeof s.createdAtMs === "number" ? s.createdAtMs : 0;
    return new DeviceIdentity({ ...stored, publicKey: toB64url(raw), createdAtMs }, key);
  }

  /** The identity to store (it holds the private key: keep it private). */
  toJSON(): StoredIdentity {
    return {
      version: 1,
      deviceId: this.deviceId,
      publicKey: this.publicKey,
      privateKey: this.#pkcs8,
      createdAtMs: this.createdAtMs,
    };
  }

  /** Sign the v3 payload for one connect; the result is the connect's `device` field. */
  async sign(params: SignParams): Promise<DeviceAuth> {
    const payload = new TextEncoder().encode(deviceAuthPayload(this.deviceId, params));
    const sig = new Uint8Array(await crypto.subtle.sign("Ed25519", this.#key, payload));
    return {
      id: this.deviceId,
      publicKey: this.publicKey,
      signature: toB64url(sig),
      signedAt: params.challenge.ts,
      nonce: params.challenge.nonce,
    };
  }
}

/**
 * The identity in `storage`, or a new one saved there.
 *
 * @example
 * ```ts
 * import { loadOrCreateIdentity, MemoryIdentityStorage } from "@gw/gw";
 * const storage = new MemoryIdentityStorage();
 * const a = await loadOrCreateIdentity(storage);
 * const b = await loadOrCreateIdentity(storage);
 * console.log(a.deviceId === b.deviceId); // true
 * ```
 */
export async function loadOrCreateIdentity(storage: IdentityStorage): Promise<DeviceIdentity> {
  const stored = await storage.load();
  if (stored) return await DeviceIdentity.fromJSON(stored);
  const identity = await DeviceIdentity.generate();
  await storage.save(identity.toJSON());
  return identity;
}

/**
 * The `signDevice` hook of `GatewayClientOptions`: given the challenge and
 * the connect params about to be sent, returns their `device` block.
 *
 * @example
 * ```ts
 * import { deviceAuthHook, MemoryIdentityStorage, type SignDeviceHook } from "@gw/gw";
 * const hook: SignDeviceHook = deviceAuthHook(new MemoryIdentityStorage());
 * const device = await hook({ nonce: "n-1", ts: Date.now() }, {
 *   minProtocol: 3,
 *   maxProtocol: 4,
 *   client: { id: "cli", mode: "cli", version: "1", platform: "linux" },
 *   scopes: ["operator.read"],
 * });
 * console.log(device?.nonce); // n-1
 * ```
 */
export type SignDeviceHook = (
  challenge: ConnectChallenge,
  params: ConnectParams,
) => Promise<DeviceAuth | undefined>;

/**
 * A `signDevice` hook for `GatewayClient`: signs each connect's fields
 * (client id and mode, role, scopes, the token sent, platform, device family)
 * with `identity`. Given a storage instead, it loads the identity there, or
 * creates and saves one, on the first handshake.
 *
 * @example
 * ```ts ignore
 * import { deviceAuthHook, DeviceIdentity, GatewayClient } from "@gw/gw";
 * const identity = await DeviceIdentity.generate();
 * const client = new GatewayClient({
 *   url: "ws://127.0.0.1:18789",
 *   token: "secret",
 *   signDevice: deviceAuthHook(identity),
 * });
 * ```
 */
export function deviceAuthHook(identity: DeviceIdentity | IdentityStorage): SignDeviceHook {
  let loading: Promise<DeviceIdentity> | undefined = identity instanceof DeviceIdentity
    ? Promise.resolve(identity)
    : undefined;
  return async (challenge, params) => {
    if (!loading) {
      loading = loadOrCreateIdentity(identity as IdentityStorage);
      loading.catch(() => (loading = undefined)); // try again on the next handshake
    }
    const id = await loading;
    return await id.sign({
      challenge,
      clientId: params.client.id,
      clientMode: params.client.mode,
      role: params.role ?? "operator",
      scopes: params.scopes ?? [],
      token: signedToken(params.auth),
      platform: params.client.platform,
      deviceFamily: params.client.deviceFamily,
    });
  };
}

/**
 * The key under which a gateway's device token is kept: the URL normalised
 * (`ws://host:1/` and `ws://HOST:1` are one gateway).
 *
 * @example
 * ```ts
 * import { gatewayKey } from "@gw/gw";
 * console.log(gatewayKey("ws://LOCALHOST:18789")); // ws://localhost:18789/
 * ```
 */
export function gatewayKey(url: string | URL): string {
  try {
    return new URL(String(url)).href;
  } catch {
    return String(url);
  }
}

/**
 * An {@link IdentityStorage} in memory: for tests, and for clients that must
 * not persist anything.
 *
 * @example
 * ```ts
 * import { MemoryIdentityStorage } from "@gw/gw";
 * const s = new MemoryIdentityStorage();
 * await s.saveToken("ws://h:1", { token: "t", role: "operator", scopes: [], issuedAtMs: 0 });
 * console.log((await s.loadToken("ws://h:1/"))?.token); // t
 * ```
 */
export class MemoryIdentityStorage implements IdentityStorage {
  #identity: StoredIdentity | null = null;
  #tokens = new Map<string, StoredDeviceToken>();

  /** The stored identity, or null. */
  load(): Promise<StoredIdentity | null> {
    return Promise.resolve(this.#identity && structuredClone(this.#identity));
  }
  /** Keep `identity`. */
  save(identity: StoredIdentity): Promise<void> {
    this.#identity = structuredClone(identity);
    return Promise.resolve();
  }
  /** The token of `url`, or null. */
  loadToken(url: string): Promise<StoredDeviceToken | null> {
    const t = this.#tokens.get(gatewayKey(url));
    return Promise.resolve(t ? structuredClone(t) : null);
  }
  /** Keep `token` for `url`. */
  saveToken(url: string, token: StoredDeviceToken): Promise<void> {
    this.#tokens.set(gatewayKey(url), structuredClone(token));
    return Promise.resolve();
  }
  /** Forget the token of `url`. */
  clearToken(url: string): Promise<void> {
    this.#tokens.delete(gatewayKey(url));
    return Promise.resolve();
  }
}

// The few IndexedDB shapes used here, so this module type-checks without the DOM lib.
interface _IDBRequest<T = unknown> {
  result: T;
  error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface _IDBOpenRequest extends _IDBRequest<_IDBDatabase> {
  onupgradeneeded: (() => void) | null;
}
interface _IDBStore {
  get(key: string): _IDBRequest;
  put(value: unknown, key: string): _IDBRequest;
  delete(key: string): _IDBRequest;
}
interface _IDBDatabase {
  objectStoreNames: { contains(name: string): boolean };
  createObjectStore(name: string): unknown;
  transaction(store: string, mode: "readonly" | "readwrite"): { objectStore(n: string): _IDBStore };
}
interface _IDBFactory {
  open(name: string, version?: number): _IDBOpenRequest;
}

function _idbResult<T>(req: _IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/**
 * An {@link IdentityStorage} in the browser's IndexedDB: one object store
 * holding the identity under `device` and each token under `token:<url>`.
 *
 * @example
 * ```ts ignore
 * import { deviceAuthHook, IndexedDbIdentityStorage } from "@gw/gw";
 * const storage = new IndexedDbIdentityStorage();
 * const signDevice = deviceAuthHook(storage);
 * ```
 */
export class IndexedDbIdentityStorage implements IdentityStorage {
  #name: string;
  #db: Promise<_IDBDatabase> | undefined;
  static readonly #STORE = "kv";

  /** Uses the database `name`. @default {"gw-identity"} */
  constructor(name = "gw-identity") {
    this.#name = name;
  }

  #open(): Promise<_IDBDatabase> {
    if (!this.#db) {
      const idb = (globalThis as { indexedDB?: _IDBFactory }).indexedDB;
      if (!idb) return Promise.reject(new IdentityError("IndexedDB is not available here"));
      const req = idb.open(this.#name, 1);
      req.onupgradeneeded = () => {
        const db = req.result;
        const store = IndexedDbIdentityStorage.#STORE;
        if (!db.objectStoreNames.contains(store)) db.createObjectStore(store);
      };
      this.#db = _idbResult(req);
      this.#db.catch(() => (this.#db = undefined));
    }
    return this.#db;
  }

  async #run<T>(mode: "readonly" | "readwrite", op: (s: _IDBStore) => _IDBRequest): Promise<T> {
    const store = IndexedDbIdentityStorage.#STORE;
    const db = await this.#open();
    return await _idbResult(op(db.transaction(store, mode).objectStore(store))) as T;
  }

  /** The stored identity, or null. */
  async load(): Promise<StoredIdentity | null> {
    return (await this.#run<StoredIdentity | undefined>("readonly", (s) => s.get("device"))) ??
      null;
  }
  /** Store `identity`. */
  async save(identity: StoredIdentity): Promise<void> {
    await this.#run("readwrite", (s) => s.put(identity, "device"));
  }
  /** The token of `url`, or null. */
  async loadToken(url: string): Promise<StoredDeviceToken | null> {
    const key = `token:${gatewayKey(url)}`;
    return (await this.#run<StoredDeviceToken | undefined>("readonly", (s) => s.get(key))) ?? null;
  }
  /** Store `token` for `url`. */
  async saveToken(url: string, token: StoredDeviceToken): Promise<void> {
    await this.#run("readwrite", (s) => s.put(token, `token:${gatewayKey(url)}`));
  }
  /** Forget the token of `url`. */
  async clearToken(url: string): Promise<void> {
    await this.#run("readwrite", (s) => s.delete(`token:${gatewayKey(url)}`));
  }
}
