/**
 * The config file `<state>/gw.json`: load, validate, redact, and write with
 * compare-and-set on the hash of the file's exact bytes. Writes are atomic
 * (temp file, fsync, rename), so a crash leaves the old or the new file.
 *
 * @module
 */
import { configSchema, type GwConfig, SECRET_KEYS } from "./schema.ts";
import { invalidRequest } from "../protocol/errors.ts";
import { listIssues } from "../protocol/validate.ts";
import { atomicWriteFile, sha256Hex } from "../fs.ts";

export { configSchema, type GwConfig } from "./schema.ts";

/** What a redacted secret reads as; writing it back keeps the stored secret. */
export const REDACTED = "__GW_REDACTED__";

/** A config file that is not valid JSON or does not match the schema. */
export class ConfigError extends Error {
  /** Each problem, with the dotted path of its field. */
  readonly issues: { path: string; message: string }[];
  /** Create the error for `file`. */
  constructor(file: string, issues: { path: string; message: string }[]) {
    super(
      `Config file ${file} is not valid:\n` +
        issues.map((i) => `  - ${i.path || "(root)"}: ${i.message}`).join("\n"),
    );
    this.name = "ConfigError";
    this.issues = issues;
  }
}

/** The loaded state of the config file. */
export interface ConfigState {
  exists: boolean;
  raw: string | null;
  parsed: Record<string, unknown> | null;
  config: GwConfig;
  hash: string;
}

type Json = Record<string, unknown>;

function isPlainObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Replace every secret-named string with {@link REDACTED}, deeply. */
export function redact<T>(value: T): T {
  if (Array.isArray(value)) return value.map(redact) as T;
  if (!isPlainObject(value)) return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEYS.has(k) && typeof v === "string" ? REDACTED : redact(v);
  }
  return out as T;
}

/** Put stored secrets back where `next` carries the {@link REDACTED} marker. */
export function restoreRedacted(next: unknown, previous: unknown): unknown {
  if (next === REDACTED) return previous;
  if (Array.isArray(next)) {
    return next.map((v, i) =>
      restoreRedacted(v, Array.isArray(previous) ? previous[i] : undefined)
    );
  }
  if (!isPlainObject(next)) return next;
  const prev = isPlainObject(previous) ? previous : {};
  const out: Json = {};
  for (const [k, v] of Object.entries(next)) out[k] = restoreRedacted(v, prev[k]);
  return out;
}

/** Apply an RFC 7386 JSON merge patch: `null` deletes, objects merge, the rest replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const out: Json = isPlainObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function validate(file: string, parsed: unknown): GwConfig {
  const r = configSchema.safeParse(parsed);
  if (!r.success) throw new ConfigError(file, listIssues(r.error, parsed));
  return r.data;
}

async function readState(path: string): Promise<ConfigState> {
  let raw: string | null = null;
  try {
    raw = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const hash = await sha256Hex(raw ?? "");
  if (raw === null) return { exists: false, raw, parsed: null, config: validate(path, {}), hash };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new ConfigError(path, [{
      path: "",
      message: `not valid JSON (${(e as Error).message})`,
    }]);
  }
  if (!isPlainObject(parsed)) {
    throw new ConfigError(path, [{ path: "", message: "expected a JSON object" }]);
  }
  return { exists: true, raw, parsed, config: validate(path, parsed), hash };
}

/**
 * The config file with its last good state in memory.
 *
 * @example
 * ```ts
 * const file = await ConfigFile.open("/tmp/gw/gw.json");
 * console.log(file.config.gateway.port);
 * ```
 */
export class ConfigFile {
  /** Absolute path of the file. */
  readonly path: string;
  #state: ConfigState;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(path: string, state: ConfigState) {
    this.path = path;
    this.#state = state;
  }

  /** Load `path`; throws {@link ConfigError} when it exists and is invalid. */
  static async open(path: string): Promise<ConfigFile> {
    return new ConfigFile(path, await readState(path));
  }

  /** The effective config. */
  get config(): GwConfig {
    return this.#state.config;
  }

  /** The loaded state. */
  get state(): ConfigState {
    return this.#state;
  }

  /** Re-read the file; returns true when its bytes changed. Keeps the last good state on error. */
  reload(): Promise<boolean> {
    return this.#serial(async () => {
      const next = await readState(this.path);
      const changed = next.hash !== this.#state.hash;
      this.#state = next;
      return changed;
    });
  }

  /**
   * Replace the file with `next` when the file still hashes to `baseHash`.
   * `next` may carry {@link REDACTED} markers, which keep the stored secrets.
   * Throws `INVALID_REQUEST` naming the field when `next` is not a valid config,
   * and `INVALID_REQUEST` with `details.code: "CONFIG_CONFLICT"` on a hash mismatch.
   */
  write(next: (current: Json) => unknown, baseHash: string | undefined): Promise<ConfigState> {
    return this.#serial(async () => {
      const onDisk = await readState(this.path).catch(() => null);
      const currentHash = onDisk?.hash ?? this.#state.hash;
      const exists = onDisk?.exists ?? this.#state.exists;
      if (exists && baseHash === undefined) {
        throw invalidRequest("config base hash required; run config.get and send its hash", {
          code: "CONFIG_BASE_HASH_REQUIRED",
          currentHash,
        });
      }
      if (baseHash !== undefined && baseHash !== currentHash) {
        throw invalidRequest(
          "config changed since it was read; run config.get again and retry",
          { code: "CONFIG_CONFLICT", currentHash },
        );
      }
      const current = onDisk?.parsed ?? this.#state.parsed ?? {};
      const candidate = restoreRedacted(next(current), current);
      if (!isPlainObject(candidate)) throw invalidRequest("config: expected a JSON object");
      const r = configSchema.safeParse(candidate);
      if (!r.success) {
        const issues = listIssues(r.error, candidate);
        const first = issues[0];
        throw invalidRequest(`invalid config: ${first?.path || "(root)"}: ${first?.message}`, {
          code: "CONFIG_INVALID",
          issues,
        });
      }
      const raw = JSON.stringify(candidate, null, 2) + "\n";
      await atomicWriteFile(this.path, raw, { mode: 0o600 });
      this.#state = {
        exists: true,
        raw,
        parsed: candidate,
        config: r.data,
        hash: await sha256Hex(raw),
      };
      return this.#state;
    });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }
}
