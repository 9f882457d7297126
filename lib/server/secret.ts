/**
 * The gateway's shared secret: which mode (token or password), where the
 * value comes from (flag or env, config, the generated `<state>/token`
 * file), and a generation hash that changes when the value does. Sources are
 * re-read whenever their files change, so a rotation takes effect at once.
 *
 * @module
 */
import type { ConfigFile } from "../config/mod.ts";
import { sha256Hex } from "../fs.ts";

/** Secrets given on the command line or in the environment; they win over files. */
export interface SecretOverrides {
  token?: string;
  password?: string;
}

/** The secret in force. */
export interface Secret {
  mode: "token" | "password";
  value: string | undefined;
  /** Hash identifying this secret, compared on rotation. */
  generation: string;
  source: "flag" | "config" | "file" | "none";
}

async function stamp(path: string): Promise<string> {
  try {
    const s = await Deno.stat(path);
    return `${s.mtime?.getTime()}:${s.size}:${s.ino ?? ""}`;
  } catch {
    return "-";
  }
}

/**
 * A new access token: 32 random bytes in base64url (43 characters). Drawn
 * again until it starts with a letter or digit, so that `--token <value>`
 * is never read as an option (a leading `-` would be, 1 time in 64).
 */
export function generateToken(): string {
  for (;;) {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    const token = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
      .replace(/=+$/, "");
    if (/^[A-Za-z0-9]/.test(token)) return token;
  }
}

/** Resolves and tracks the shared secret. */
export class SharedSecret {
  /** Where a generated token is kept (mode 0600). */
  readonly tokenFile: string;
  #config: ConfigFile;
  #overrides: SecretOverrides;
  #current: Secret = { mode: "token", value: undefined, generation: "", source: "none" };
  #stamp = "";

  /** Track the secret of the gateway whose state is in `stateDir`. */
  constructor(stateDir: string, config: ConfigFile, overrides: SecretOverrides) {
    this.tokenFile = `${stateDir}/token`;
    this.#config = config;
    this.#overrides = overrides;
  }

  /** The secret as last resolved. */
  get current(): Secret {
    return this.#current;
  }

  /** Token or password: a flag decides, then `gateway.auth.mode`, then what is configured. */
  mode(): "token" | "password" {
    const o = this.#overrides;
    if (o.token) return "token";
    if (o.password) return "password";
    const a = this.#config.config.gateway.auth;
    return a.mode ?? (a.password && !a.token ? "password" : "token");
  }

  /**
   * In token mode with no token anywhere, generate one (32 random bytes,
   * base64url) into {@link tokenFile} with mode 0600; returns it, or
   * undefined when a token already existed.
   */
  async ensureToken(): Promise<string | undefined> {
    const a = this.#config.config.gateway.auth;
    if (this.mode() !== "token" || this.#overrides.token || a.token) return undefined;
    try {
      await Deno.stat(this.tokenFile);
      return undefined;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const token = generateToken();
    await Deno.writeTextFile(this.tokenFile, token + "\n", { mode: 0o600, createNew: true });
    return token;
  }

  /** Whether the config or token file changed since the last call. */
  async sourcesChanged(): Promise<boolean> {
    const [c, t] = await Promise.all([stamp(this.#config.path), stamp(this.tokenFile)]);
    const next = `${c}|${t}`;
    const changed = next !== this.#stamp;
    this.#stamp = next;
    return changed;
  }

  /** Resolve the secret from its sources; returns true when it changed (a rotation). */
  async resolve(): Promise<boolean> {
    const o = this.#overrides;
    const a = this.#config.config.gateway.auth;
    const mode = this.mode();
    let value: string | undefined;
    let source: Secret["source"] = "none";
    if (mode === "token") {
      if (o.token) [value, source] = [o.token, "flag"];
      else if (a.token) [value, source] = [a.token, "config"];
      else {
        try {
          value = (await Deno.readTextFile(this.tokenFile)).trim() || undefined;
          source = value ? "file" : "none";
        } catch { /* no token file */ }
      }
    } else if (o.password) [value, source] = [o.password, "flag"];
    else if (a.password) [value, source] = [a.password, "config"];
    const generation = await sha256Hex(`${mode}\0${value ?? ""}`);
    const rotated = this.#current.generation !== "" && generation !== this.#current.generation;
    this.#current = { mode, value, generation, source };
    return rotated;
  }
}
