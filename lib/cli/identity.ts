/**
 * The CLI's device identity and device tokens on disk:
 * `<state>/identity/device.json` (the Ed25519 key) and
 * `<state>/identity/tokens.json` (one device token per gateway URL), both
 * written atomically with mode 0600 in a 0700 directory.
 *
 * @module
 */
import {
  type DeviceIdentity,
  gatewayKey,
  IdentityError,
  type IdentityStorage,
  loadOrCreateIdentity,
  type StoredDeviceToken,
  type StoredIdentity,
} from "../client/identity.ts";
import { atomicWriteFile } from "../fs.ts";

interface _TokenFile {
  version: 1;
  tokens: Record<string, StoredDeviceToken>;
}

/**
 * An {@link IdentityStorage} in `<stateDir>/identity/`.
 *
 * @example
 * ```ts ignore
 * import { FileIdentityStorage } from "./identity.ts";
 * const storage = new FileIdentityStorage(`${Deno.env.get("HOME")}/.gw`);
 * console.log(await storage.loadToken("ws://gateway.lan:18789"));
 * ```
 */
export class FileIdentityStorage implements IdentityStorage {
  /** The directory, `<stateDir>/identity`. */
  readonly dir: string;
  /** The identity file, `<dir>/device.json`. */
  readonly devicePath: string;
  /** The token file, `<dir>/tokens.json`. */
  readonly tokensPath: string;

  /** Keeps everything under `<stateDir>/identity`. */
  constructor(stateDir: string) {
    this.dir = `${stateDir}/identity`;
    this.devicePath = `${this.dir}/device.json`;
    this.tokensPath = `${this.dir}/tokens.json`;
  }

  /** The stored identity, or null when there is no file. */
  async load(): Promise<StoredIdentity | null> {
    return await this.#read<StoredIdentity>(this.devicePath);
  }

  /** Write the identity (mode 0600). */
  async save(identity: StoredIdentity): Promise<void> {
    await this.#write(this.devicePath, identity);
  }

  /** The token of `url`, or null. */
  async loadToken(url: string): Promise<StoredDeviceToken | null> {
    return (await this.#tokens()).tokens[gatewayKey(url)] ?? null;
  }

  /** Store `token` for `url` (mode 0600). */
  async saveToken(url: string, token: StoredDeviceToken): Promise<void> {
    const file = await this.#tokens();
    file.tokens[gatewayKey(url)] = token;
    await this.#write(this.tokensPath, file);
  }

  /** Forget the token of `url`. */
  async clearToken(url: string): Promise<void> {
    const file = await this.#tokens();
    const key = gatewayKey(url);
    if (!(key in file.tokens)) return;
    delete file.tokens[key];
    await this.#write(this.tokensPath, file);
  }

  async #tokens(): Promise<_TokenFile> {
    const file = await this.#read<_TokenFile>(this.tokensPath);
    if (!file) return { version: 1, tokens: {} };
    if (typeof file.tokens !== "object" || file.tokens === null) {
      throw new IdentityError(`${this.tokensPath}: expected {"version":1,"tokens":{...}}`);
    }
    return file;
  }

  async #read<T>(path: string): Promise<T | null> {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw new IdentityError(`${path}: expected JSON, got unreadable text`, { cause });
    }
  }

  async #write(path: string, value: unknown): Promise<void> {
    await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await atomicWriteFile(path, JSON.stringify(value, null, 2) + "\n", { mode: 0o600 });
  }
}

/** The CLI's identity and where it lives. */
export interface CliIdentity {
  identity: DeviceIdentity;
  storage: FileIdentityStorage;
}

/** Load the CLI's identity from `<stateDir>/identity/device.json`, creating it when absent. */
export async function loadCliIdentity(stateDir: string): Promise<CliIdentity> {
  const storage = new FileIdentityStorage(stateDir);
  return { identity: await loadOrCreateIdentity(storage), storage };
}
