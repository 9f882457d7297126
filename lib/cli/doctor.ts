/**
 * `gw doctor`: check this machine's gw setup, one line per check with a
 * verdict (✓ ok, ! warn, ✗ fail, - skip) and a fix; exit 1 when a check fails.
 *
 * The checks, in order:
 * - `config`: `<state>/gw.json` parses and matches the schema (else the field and why);
 * - `permissions`: the state dir is 0700, `token` and `gw.json` 0600 (group or
 *   world readable: fail, with the `chmod`); `gw.kv` and its `-wal`/`-shm`
 *   0600 too (readable by others behind a 0700 dir: a warning);
 * - `port`: the configured port is free, or a gw answers `/healthz` there;
 *   anything else on it is a failure (`gw start` could not listen);
 * - `kv`: `gw.kv` opens (Deno KV, safe beside a running gateway) and its
 *   `["gw","meta"]` record has a layout this gw reads;
 * - `model`: the default model's key works: one tiny call through the
 *   wizard's check (lib/wizard/machine.ts `checkModel`); no key is a warning;
 * - `telegram`: the bot token answers `getMe` (lib/cli/channels.ts);
 * - `clock`: the local clock against the HTTP `Date` of the model provider or
 *   the Bot API server (more than 60 s apart: fail; unreachable: skip);
 * - `gateway`: connect as `gw call` does (`--url`, `--token`, the state dir)
 *   and call `health`.
 *
 * Nothing is written; secrets are never printed.
 *
 * @module
 */
import { type CallOptions, connectClient, Exit, parseTimeout, resolveTarget } from "./call.ts";
import { resolveStateDir, tildify } from "./paths.ts";
import { bold, dim, green, red, yellow } from "./style.ts";
import { ConfigError, ConfigFile, type GwConfig } from "../config/mod.ts";
import { DEFAULT_MODEL, resolveModel } from "../agent/models.ts";
import type { ProviderConfig } from "../agent/types.ts";
import { keys, SCHEMA_VERSION } from "../store/keys.ts";

/** A check's verdict. */
export type CheckStatus = "ok" | "warn" | "fail" | "skip";

/** One check's outcome. */
export interface DoctorCheck {
  /** `config`, `permissions`, `port`, `kv`, `model`, `telegram`, `clock` or `gateway`. */
  id: string;
  status: CheckStatus;
  /** What was found. */
  message: string;
  /** What to do about it (warn and fail). */
  fix?: string;
}

/** What `gw doctor --json` prints. */
export interface DoctorReport {
  /** False when any check failed. */
  ok: boolean;
  checks: DoctorCheck[];
}

/** Clocks further apart than this fail the `clock` check. */
export const MAX_CLOCK_SKEW_MS = 60_000;
/** How long a probe of the port, the clock or the gateway may take. */
const PROBE_TIMEOUT_MS = 5_000;
/** How long the Telegram check may take. */
const TELEGRAM_TIMEOUT_MS = 10_000;
const DEFAULT_ANTHROPIC_URL = "https://api.anthropic.com";

/** An environment variable; unset when not granted (asking would prompt on a terminal). */
function env(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

function check(id: string, status: CheckStatus, message: string, fix?: string): DoctorCheck {
  return fix === undefined ? { id, status, message } : { id, status, message, fix };
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ------------------------------------------------------------------ config

interface ConfigFacts {
  check: DoctorCheck;
  /** The effective config, when the file is valid (or absent). */
  config: GwConfig | undefined;
  /** `gateway.port` / `gateway.bind` as written, read loosely even from an invalid file. */
  port: number;
  bind: string;
}

async function checkConfig(stateDir: string): Promise<ConfigFacts> {
  const path = `${stateDir}/gw.json`;
  const loose = { port: 18789, bind: "127.0.0.1" };
  try {
    const raw = JSON.parse(await Deno.readTextFile(path));
    const gw = raw?.gateway;
    if (typeof gw?.port === "number") loose.port = gw.port;
    if (typeof gw?.bind === "string" && gw.bind) loose.bind = gw.bind;
  } catch { /* absent or not JSON: the config check says which */ }
  try {
    const file = await ConfigFile.open(path);
    const c = file.config;
    const facts = { config: c, port: c.gateway.port, bind: c.gateway.bind };
    if (!file.state.exists) {
      return {
        ...facts,
        check: check(
          "config",
          "ok",
          `no ${tildify(path)} yet: the defaults apply (gw setup writes one)`,
        ),
      };
    }
    return { ...facts, check: check("config", "ok", `${tildify(path)} is valid`) };
  } catch (e) {
    if (e instanceof ConfigError) {
      const issues = e.issues.map((i) => `${i.path || "(root)"}: ${i.message}`);
      return {
        config: undefined,
        ...loose,
        check: check(
          "config",
          "fail",
          `${tildify(path)} is not valid: ${issues.join("; ")}`,
          `fix ${issues.length > 1 ? "those fields" : "that field"} in ${
            tildify(path)
          } (gw start refuses the file as it is)`,
        ),
      };
    }
    return {
      config: undefined,
      ...loose,
      check: check(
        "config",
        "fail",
        `cannot read ${tildify(path)}: ${errorMessage(e)}`,
        `make it readable by this user: chmod 600 ${path}`,
      ),
    };
  }
}

// ------------------------------------------------------------------ permissions

function modeText(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, "0")}`;
}

async function checkPermissions(stateDir: string): Promise<DoctorCheck> {
  if (Deno.build.os === "windows") {
    return check("permissions", "skip", "file modes are not checked on Windows");
  }
  let dir: Deno.FileInfo;
  try {
    dir = await Deno.stat(stateDir);
  } catch {
    return check("permissions", "skip", `no state dir ${tildify(stateDir)} yet`);
  }
  if (!dir.isDirectory) {
    return check(
      "permissions",
      "fail",
      `${tildify(stateDir)} is not a directory`,
      `move it away, or pass another --state-dir`,
    );
  }
  const failures: string[] = [];
  const warnings: string[] = [];
  const fixes: string[] = [];
  const dirOpen = dir.mode !== null && (dir.mode & 0o077) !== 0;
  if (dirOpen) {
    failures.push(`the state dir is ${modeText(dir.mode!)}: other users can look inside`);
    fixes.push(`chmod 700 ${stateDir}`);
  }
  const files = [
    ["token", true],
    ["gw.json", true],
    ["gw.kv", false],
    ["gw.kv-wal", false],
    ["gw.kv-shm", false],
  ] as const;
  const loose: string[] = [];
  for (const [name, secret] of files) {
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(`${stateDir}/${name}`);
    } catch {
      continue;
    }
    if (!st.isFile || st.mode === null || (st.mode & 0o077) === 0) continue;
    const what = `${name} is ${modeText(st.mode)}`;
    if (secret || dirOpen) {
      failures.push(`${what}: ${(st.mode & 0o044) ? "readable" : "writable"} by other users`);
    } else {
      warnings.push(what);
    }
    loose.push(`${stateDir}/${name}`);
  }
  if (loose.length) fixes.push(`chmod 600 ${loose.join(" ")}`);
  const fix = fixes.length ? fixes.join(" && ") : undefined;
  const notes = [...failures];
  if (warnings.length) {
    notes.push(
      `${warnings.join(", ")}: only the 0700 dir keeps ${
        warnings.length > 1 ? "them" : "it"
      } from other users`,
    );
  }
  if (notes.length) {
    return check("permissions", failures.length ? "fail" : "warn", notes.join("; "), fix);
  }
  return check(
    "permissions",
    "ok",
    `${tildify(stateDir)} is 0700 and its secrets are 0600`,
  );
}

// ------------------------------------------------------------------ port

/** The address `gw start` would listen on, as a place to connect to. */
function connectHost(bind: string): string {
  if (bind === "0.0.0.0" || bind === "localhost") return "127.0.0.1";
  if (bind === "::" || bind === "[::]") return "::1";
  return bind.replace(/^\[|\]$/g, "");
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

interface PortFacts {
  check: DoctorCheck;
  /** What is on the port. */
  state: "free" | "gw" | "other" | "unknown";
}

async function checkPort(bindIn: string, portIn: number): Promise<PortFacts> {
  const envPort = env("GW_PORT");
  const port = envPort !== undefined && /^\d+$/.test(envPort) ? Number(envPort) : portIn;
  const host = connectHost(env("GW_BIND") ?? bindIn);
  const where = hostPort(host, port);
  if (port === 0) {
    return { state: "unknown", check: check("port", "skip", "port 0: gw start picks a free one") };
  }
  let conn: Deno.TcpConn;
  const connecting = Deno.connect({ hostname: host, port });
  try {
    conn = await withTimeout(connecting, PROBE_TIMEOUT_MS);
  } catch (e) {
    connecting.then((c) => c.close(), () => {}); // a late connection is not kept open
    if (e instanceof Deno.errors.ConnectionRefused) {
      return {
        state: "free",
        check: check("port", "ok", `${where} is free: no gateway runs there now`),
      };
    }
    return {
      state: "unknown",
      check: check(
        "port",
        "warn",
        `cannot tell whether ${where} is free: ${errorMessage(e)}`,
        `check gateway.bind in gw.json (an address of this machine)`,
      ),
    };
  }
  try {
    conn.close();
  } catch { /* closed */ }
  const url = `http://${where}/healthz`;
  let said: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    const text = await res.text();
    let body: { ok?: unknown; status?: unknown } | null = null;
    try {
      body = JSON.parse(text);
    } catch { /* not JSON */ }
    if (res.ok && body?.ok === true && body.status === "live") {
      return { state: "gw", check: check("port", "ok", `${where}: a gw gateway answers /healthz`) };
    }
    said = `GET /healthz answered ${res.status}${
      res.headers.get("server") ? ` (server: ${res.headers.get("server")})` : ""
    }`;
  } catch (e) {
    said = `it does not answer HTTP (${
      (e as Error).name === "TimeoutError" ? "no answer" : errorMessage(e)
    })`;
  }
  return {
    state: "other",
    check: check(
      "port",
      "fail",
      `${where} is taken by something that is not gw: ${said}`,
      `stop that program, or give gw another port: gateway.port in gw.json (or --port, GW_PORT)`,
    ),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// ------------------------------------------------------------------ kv

async function checkKv(stateDir: string): Promise<DoctorCheck> {
  if (env("GW_KV_URL")) {
    return check("kv", "skip", "the KV is remote (GW_KV_URL): not checked from here");
  }
  const path = `${stateDir}/gw.kv`;
  const moveAway = `move it away: mv ${path} ${path}.broken (gw start then makes a new, ` +
    `empty one: sessions, cron jobs and paired devices in it are gone), or restore a backup`;
  let st: Deno.FileInfo;
  try {
    st = await Deno.lstat(path);
  } catch {
    return check("kv", "skip", `no ${tildify(path)} yet: gw start creates it`);
  }
  if (!st.isFile) {
    return check(
      "kv",
      "fail",
      `${tildify(path)} is ${st.isDirectory ? "a directory" : "not a file"}, not a KV store`,
      moveAway,
    );
  }
  let kv: Deno.Kv;
  try {
    kv = await Deno.openKv(path);
  } catch (e) {
    return check("kv", "fail", `cannot open ${tildify(path)}: ${errorMessage(e)}`, moveAway);
  }
  try {
    const meta = await kv.get<{ schemaVersion?: number; createdAt?: number; gwVersion?: string }>(
      keys.meta(),
    );
    const m = meta.value;
    if (!m || typeof m.schemaVersion !== "number") {
      return check(
        "kv",
        "warn",
        `${tildify(path)} opens but has no gw layout record (["gw","meta"]): not written by gw?`,
        `if it is not gw's: ${moveAway}`,
      );
    }
    if (m.schemaVersion > SCHEMA_VERSION) {
      return check(
        "kv",
        "fail",
        `${
          tildify(path)
        } has layout ${m.schemaVersion}, written by a newer gw (this one reads ${SCHEMA_VERSION})`,
        "update gw to the version that wrote it",
      );
    }
    const since = typeof m.createdAt === "number"
      ? `, created ${new Date(m.createdAt).toISOString().slice(0, 10)}`
      : "";
    return check(
      "kv",
      "ok",
      `${tildify(path)} opens: layout ${m.schemaVersion}${since}${
        m.gwVersion ? ` by gw ${m.gwVersion}` : ""
      }`,
    );
  } catch (e) {
    return check("kv", "fail", `cannot read ${tildify(path)}: ${errorMessage(e)}`, moveAway);
  } finally {
    kv.close();
  }
}

// ------------------------------------------------------------------ model

interface ModelFacts {
  check: DoctorCheck;
  /** Where the provider is, when one is configured (for the clock check). */
  url: string | undefined;
}

function providerUrl(p: ProviderConfig): string | undefined {
  return p.baseUrl ?? (p.api === "anthropic-messages" ? DEFAULT_ANTHROPIC_URL : undefined);
}

async function checkModelKey(config: GwConfig | undefined): Promise<ModelFacts> {
  if (!config) {
    return { url: undefined, check: check("model", "skip", "gw.json is not valid (see config)") };
  }
  const ref = config.agents.defaults.model ?? DEFAULT_MODEL;
  const resolved = resolveModel(ref, config, env);
  const p = resolved.provider;
  const keyless = p.api !== "anthropic-messages" && p.id !== "openai";
  if (!p.apiKey && !keyless) {
    const envName = p.api === "anthropic-messages" ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY";
    return {
      url: undefined,
      check: check(
        "model",
        "warn",
        `no API key for ${resolved.ref}: the agent cannot answer`,
        `gw setup (or models.providers.${p.id}.apiKey in gw.json, or ${envName})`,
      ),
    };
  }
  const url = providerUrl(p);
  if (!url) {
    return {
      url,
      check: check(
        "model",
        "fail",
        `${resolved.ref}: no base URL for provider ${p.id}`,
        `set models.providers.${p.id}.baseUrl in gw.json`,
      ),
    };
  }
  const { checkModel } = await import("../wizard/machine.ts");
  const r = await checkModel(p, resolved.model, new AbortController().signal);
  if (r.ok) {
    return {
      url,
      check: check(
        "model",
        "ok",
        `${resolved.ref}: ${p.apiKey ? "the key works" : "it answers"} (one 1-token call)${
          r.busy ? ", though the provider is busy right now" : ""
        }`,
      ),
    };
  }
  if (r.kind === "auth") {
    return {
      url,
      check: check(
        "model",
        "fail",
        `${resolved.ref}: the key was refused: ${r.message}`,
        `a valid key: gw setup, or models.providers.${p.id}.apiKey in gw.json`,
      ),
    };
  }
  if (r.kind === "network" || r.kind === "timeout") {
    return {
      url,
      check: check(
        "model",
        "warn",
        `${resolved.ref}: cannot reach ${url}: ${r.message}`,
        `check the network, or models.providers.${p.id}.baseUrl in gw.json`,
      ),
    };
  }
  return {
    url,
    check: check(
      "model",
      "fail",
      `${resolved.ref}: ${r.message}`,
      `check agents.defaults.model and the provider's settings in gw.json (gw setup)`,
    ),
  };
}

// ------------------------------------------------------------------ telegram

interface TelegramFacts {
  check: DoctorCheck;
  /** The Bot API server, when a bot is configured (for the clock check). */
  url: string | undefined;
}

async function checkTelegram(config: GwConfig | undefined): Promise<TelegramFacts> {
  if (!config) {
    return {
      url: undefined,
      check: check("telegram", "skip", "gw.json is not valid (see config)"),
    };
  }
  const tg = config.channels.telegram;
  const token = tg?.botToken ?? env("TELEGRAM_BOT_TOKEN");
  if (!token) {
    return { url: undefined, check: check("telegram", "skip", "no Telegram bot configured") };
  }
  if (tg?.enabled === false) {
    return {
      url: undefined,
      check: check("telegram", "skip", "the Telegram bot is off (channels.telegram.enabled)"),
    };
  }
  const { telegramGetMe, DEFAULT_TELEGRAM_API_ROOT } = await import("./channels.ts");
  const apiRoot = tg?.apiRoot ?? env("TELEGRAM_API_ROOT") ?? DEFAULT_TELEGRAM_API_ROOT;
  const me = await telegramGetMe(token, { apiRoot, timeoutMs: TELEGRAM_TIMEOUT_MS });
  if (me.ok) {
    return {
      url: apiRoot,
      check: check("telegram", "ok", `the bot token works: @${me.bot.username} (getMe)`),
    };
  }
  const fixToken = `a new token from @BotFather: gw channels add telegram --token <token>`;
  if (me.kind === "unreachable") {
    return {
      url: apiRoot,
      check: check(
        "telegram",
        "warn",
        me.message,
        "check the network (or channels.telegram.apiRoot)",
      ),
    };
  }
  return { url: apiRoot, check: check("telegram", "fail", me.message, fixToken) };
}

// ------------------------------------------------------------------ clock

async function checkClock(
  urls: (string | undefined)[],
  configValid: boolean,
): Promise<DoctorCheck> {
  const targets = [...new Set(urls.filter((u): u is string => !!u))];
  if (!configValid) return check("clock", "skip", "gw.json is not valid (see config)");
  if (!targets.length) {
    return check("clock", "skip", "nothing configured to compare with (no model key, no bot)");
  }
  const notes: string[] = [];
  for (const url of targets) {
    const host = new URL(url).host;
    let res: Response;
    const t0 = Date.now();
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      await res.body?.cancel();
    } catch (e) {
      notes.push(
        `${host}: ${(e as Error).name === "TimeoutError" ? "no answer" : errorMessage(e)}`,
      );
      continue;
    }
    const t1 = Date.now();
    const date = res.headers.get("date");
    const server = date ? Date.parse(date) : NaN;
    if (Number.isNaN(server)) {
      notes.push(`${host}: no Date header`);
      continue;
    }
    // Date has whole seconds: the server's time was somewhere in [server, server + 1 s).
    const skew = (t0 + t1) / 2 - (server + 500);
    const secs = Math.round(Math.abs(skew) / 1000);
    if (Math.abs(skew) > MAX_CLOCK_SKEW_MS) {
      return check(
        "clock",
        "fail",
        `this clock is ${secs} s ${skew > 0 ? "ahead of" : "behind"} ${host}'s ` +
          `(more than ${MAX_CLOCK_SKEW_MS / 1000} s: TLS, cron times and device sign-ins suffer)`,
        "turn on time sync: timedatectl set-ntp true (or chrony, ntpd)",
      );
    }
    return check("clock", "ok", `within ${Math.max(secs, 1)} s of ${host}'s clock`);
  }
  return check("clock", "skip", `could not compare: ${notes.join("; ")}`);
}

// ------------------------------------------------------------------ gateway

async function checkGateway(o: CallOptions, port: PortFacts): Promise<DoctorCheck> {
  const said: string[] = [];
  const { log, error } = console;
  console.log = () => {};
  console.error = (...a: unknown[]) => void said.push(a.map(String).join(" "));
  let conn;
  try {
    conn = await connectClient({ ...o, json: false }, { defaultTimeoutMs: PROBE_TIMEOUT_MS });
  } finally {
    console.log = log;
    console.error = error;
  }
  if (typeof conn === "number") {
    const why = said.join("\n").replace(/^gw: /, "").split("\n")[0] ?? "cannot connect";
    if (o.url === undefined && port.state === "free") {
      const { url } = await resolveTarget(o);
      return check(
        "gateway",
        "warn",
        `not running: nothing answers at ${url}`,
        "gw start (or gw service install)",
      );
    }
    return check("gateway", "fail", why, said.slice(1).join(" ").trim() || undefined);
  }
  const { client, target } = conn;
  try {
    const h = await client.request("health", {}, { timeoutMs: conn.timeoutMs }) as {
      ok?: boolean;
    };
    const version = client.hello?.server?.version;
    const who = `${target.url}${version ? ` (gw ${version})` : ""}`;
    return h.ok === false
      ? check("gateway", "warn", `${who} answers health, but says it is not healthy`, "gw health")
      : check("gateway", "ok", `${who} answers health`);
  } catch (e) {
    return check("gateway", "fail", `${target.url}: health failed: ${errorMessage(e)}`);
  } finally {
    await client.close().catch(() => {});
  }
}

// ------------------------------------------------------------------ all

/**
 * Run every check; never throws for what it finds.
 *
 * @example
 * ```ts
 * const report = await doctor({ stateDir: "/home/me/.gw" });
 * if (!report.ok) console.log(report.checks.filter((c) => c.status === "fail"));
 * ```
 */
export async function doctor(o: CallOptions): Promise<DoctorReport> {
  parseTimeout(o.timeout); // a bad --timeout is a usage error before anything runs
  const stateDir = resolveStateDir(o.stateDir);
  const cfg = await checkConfig(stateDir);
  const [permissions, port, kv] = await Promise.all([
    checkPermissions(stateDir),
    checkPort(cfg.bind, cfg.port),
    checkKv(stateDir),
  ]);
  const [model, telegram, gateway] = await Promise.all([
    checkModelKey(cfg.config),
    checkTelegram(cfg.config),
    checkGateway(o, port),
  ]);
  const clock = await checkClock([model.url, telegram.url], cfg.config !== undefined);
  const checks = [
    cfg.check,
    permissions,
    port.check,
    kv,
    model.check,
    telegram.check,
    clock,
    gateway,
  ];
  return { ok: !checks.some((c) => c.status === "fail"), checks };
}

const MARK: Record<CheckStatus, string> = { ok: "✓", warn: "!", fail: "✗", skip: "-" };

function paint(status: CheckStatus, s: string): string {
  return status === "ok"
    ? green(s)
    : status === "warn"
    ? yellow(s)
    : status === "fail"
    ? red(s)
    : dim(s);
}

/**
 * `gw doctor`: print each check (or the report as JSON with `--json`);
 * resolves with 0, or 1 when a check failed.
 */
export async function runDoctor(o: CallOptions): Promise<number> {
  const report = await doctor(o);
  if (o.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    const width = Math.max(...report.checks.map((c) => c.id.length));
    for (const c of report.checks) {
      console.log(`${paint(c.status, MARK[c.status])} ${bold(c.id.padEnd(width))}  ${c.message}`);
      if (c.fix && c.status !== "ok") {
        console.log(`  ${" ".repeat(width)}  ${dim(`fix: ${c.fix}`)}`);
      }
    }
    const n = (s: CheckStatus) => report.checks.filter((c) => c.status === s).length;
    console.log(
      `\n${n("ok")} ok, ${n("warn")} warning${n("warn") === 1 ? "" : "s"}, ${n("fail")} failed` +
        (n("skip") ? `, ${n("skip")} skipped` : ""),
    );
  }
  return report.ok ? Exit.OK : Exit.ERROR;
}
