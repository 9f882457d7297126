/**
 * `gw call`, `gw health`, `gw status`: the CLI as a client of a gateway.
 * Loads only the client library, so a call starts fast.
 *
 * @module
 */
import {
  GatewayClient,
  GatewayConnectError,
  GatewayRequestError,
  GatewayTimeoutError,
} from "../client/client.ts";
import { deviceAuthHook, DeviceIdentity } from "../client/identity.ts";
import { DEFAULT_OPERATOR_SCOPES, type Role } from "../protocol/types.ts";
import { FileIdentityStorage } from "./identity.ts";
import { VERSION } from "../version.ts";
import { resolveStateDir, tildify } from "./paths.ts";
import { bold, dim, green, red, yellow } from "./style.ts";

/** Exit codes of the CLI. */
export const Exit = { OK: 0, ERROR: 1, USAGE: 2, CONNECT: 3 } as const;

/** Options shared by every command that talks to a gateway. */
export interface CallOptions {
  url?: string | undefined;
  token?: string | undefined;
  password?: string | undefined;
  stateDir?: string | undefined;
  json?: boolean | undefined;
  timeout?: string | undefined;
}

/** Where the CLI connects, and with which secret. */
export interface Target {
  url: string;
  token: string | undefined;
  password: string | undefined;
  tokenSource: string;
  /** Whether the connect uses this machine's device token (from `gw pair`). */
  deviceToken?: boolean;
}

async function readLocalConfig(stateDir: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await Deno.readTextFile(`${stateDir}/gw.json`));
  } catch {
    return {};
  }
}

/** Work out where to connect and with which secret: flags, then env, then the local state dir. */
export async function resolveTarget(o: CallOptions): Promise<Target> {
  const env = (k: string) => Deno.env.get(k) || undefined;
  const stateDir = resolveStateDir(o.stateDir);
  const local = await readLocalConfig(stateDir);
  const gw = (local.gateway ?? {}) as {
    port?: number;
    bind?: string;
    auth?: Record<string, string>;
  };
  let url = o.url;
  if (!url) {
    const port = env("GW_PORT") ?? gw.port ?? 18789;
    let host = gw.bind && gw.bind !== "0.0.0.0" && gw.bind !== "::" ? gw.bind : "127.0.0.1";
    if (host.includes(":")) host = `[${host}]`;
    url = `ws://${host}:${port}`;
  }
  const password = o.password ?? env("GW_PASSWORD");
  let token = o.token ?? env("GW_TOKEN");
  let tokenSource = o.token ? "--token" : token ? "GW_TOKEN" : "";
  if (!token && !password && (o.url === undefined || isLoopbackUrl(url))) {
    // The local gateway's own secret: only ever sent to this machine.
    if (gw.auth?.token) [token, tokenSource] = [gw.auth.token, tildify(`${stateDir}/gw.json`)];
    else {
      try {
        token = (await Deno.readTextFile(`${stateDir}/token`)).trim() || undefined;
        if (token) tokenSource = tildify(`${stateDir}/token`);
      } catch { /* none */ }
    }
  }
  return { url, token, password, tokenSource };
}

function isLoopbackUrl(url: string): boolean {
  try {
    const h = new URL(url).hostname.replace(/^\[|\]$/g, "");
    return h === "localhost" || h === "::1" || /^127\./.test(h);
  } catch {
    return false;
  }
}

/**
 * `--timeout` in milliseconds, `fallback` when absent.
 * @throws {UsageError} when it is not a positive number.
 */
export function parseTimeout(text: string | undefined, fallback = 30_000): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) {
    throw new UsageError(`--timeout: expected milliseconds, got '${text}'`);
  }
  return n;
}

/** A mistake in how the command was called (exit 2). */
export class UsageError extends Error {
  /** Create the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** An id or prefix that matches nothing, or more than one thing (exit 1). */
export class LookupError extends Error {
  /** Create the error. */
  constructor(message: string) {
    super(message);
    this.name = "LookupError";
  }
}

/** Print a {@link LookupError} (as JSON too with `json`); returns the exit code. */
export function reportLookupError(e: LookupError, json: boolean | undefined): number {
  if (json) {
    console.log(JSON.stringify({ ok: false, error: { type: "lookup_error", message: e.message } }));
  }
  console.error(`${red("gw:")} ${e.message}`);
  return Exit.ERROR;
}

/** A string flag's value, or undefined (absent or boolean). */
export function strFlag(f: Readonly<Record<string, unknown>>, k: string): string | undefined {
  const v = f[k];
  return typeof v === "string" ? v : undefined;
}

function explainConnect(e: unknown, t: Target): string {
  if (e instanceof GatewayRequestError) {
    const code = String(e.details?.code ?? e.code);
    const msg = e.message.replace(/^connect failed: /, "");
    if (t.deviceToken && (code.startsWith("AUTH_") || e.code === "NOT_PAIRED")) {
      const forgot = code.startsWith("AUTH_") && code !== "AUTH_RATE_LIMITED"
        ? " (revoked or removed?); this machine forgot it"
        : "";
      return `the gateway at ${t.url} refused this machine's device token: ${msg}${forgot}\n  ` +
        `pair again: gw pair ${t.url} --token T   (or pass --token)`;
    }
    if (code === "PAIRING_REQUIRED") {
      return `the gateway at ${t.url} wants this device paired: ${msg}\n  run: gw pair ${t.url} --token T`;
    }
    if (code.startsWith("AUTH_") || code === "DEVICE_IDENTITY_REQUIRED") {
      const hint = !t.token && !t.password
        ? "no token was found: pass --token, set GW_TOKEN, run on the gateway's machine, " +
          "or pair this machine once with: gw pair <url> --token T"
        : `the gateway rejected the ${t.password ? "password" : `token from ${t.tokenSource}`}`;
      return `cannot authenticate to ${t.url}: ${msg}\n  ${hint}`;
    }
    return `the gateway at ${t.url} refused the connection: ${msg}`;
  }
  if (e instanceof GatewayConnectError) {
    const abnormal = e.closeCode === undefined || e.closeCode === 0 || e.closeCode === 1006;
    const why = abnormal
      ? "nothing answered there: the gateway seems down"
      : `it closed the connection (${e.closeCode}${e.closeReason ? ` ${e.closeReason}` : ""})`;
    return `cannot connect to ${t.url}: ${why}\n  start it with: gw start   (or pass --url)`;
  }
  return `cannot connect to ${t.url}: ${(e as Error).message}`;
}

/** An open CLI connection: the client, where it goes, and the request timeout. */
export interface Connection {
  client: GatewayClient;
  target: Target;
  timeoutMs: number;
}

/** Options of {@link connectClient}. */
export interface ConnectOptions {
  /** The default request timeout when `--timeout` is absent. @default {30000} */
  defaultTimeoutMs?: number;
}

/**
 * Resolve the target (flags, env, local state dir) and connect as the CLI.
 * On failure prints why (and the JSON error with `--json`) and returns
 * {@link Exit.CONNECT}; the caller closes the client of a {@link Connection}.
 *
 * @throws {UsageError} for a bad `--timeout`.
 */
export async function connectClient(
  o: CallOptions,
  opts: ConnectOptions = {},
): Promise<Connection | number> {
  const timeoutMs = parseTimeout(o.timeout, opts.defaultTimeoutMs);
  const t = await resolveTarget(o);
  const init: ConstructorParameters<typeof GatewayClient>[0] = {
    url: t.url,
    client: { id: "cli", mode: "cli", version: `gw-${VERSION}` },
    scopes: [...DEFAULT_OPERATOR_SCOPES],
    reconnect: false,
    connectTimeoutMs: Math.min(timeoutMs, 10_000),
    requestTimeoutMs: timeoutMs,
  };
  if (t.token) init.token = t.token;
  if (t.password) init.password = t.password;
  if (!t.token && !t.password) {
    // No shared secret: this machine's device token from `gw pair`, if it has one for the URL.
    const failed = await useDeviceToken(init, t, resolveStateDir(o.stateDir));
    if (failed) {
      if (o.json) {
        console.log(
          JSON.stringify({ ok: false, error: { type: "connect_error", message: failed } }),
        );
      }
      console.error(`${red("gw:")} ${failed}`);
      return Exit.CONNECT;
    }
  }
  const client = new GatewayClient(init);
  try {
    await client.connect();
  } catch (e) {
    await client.close().catch(() => {});
    if (o.json) {
      console.log(
        JSON.stringify({
          ok: false,
          error: { type: "connect_error", message: explainConnect(e, t) },
        }),
      );
    }
    console.error(`${red("gw:")} ${explainConnect(e, t)}`);
    return Exit.CONNECT;
  }
  return { client, target: t, timeoutMs };
}

/**
 * Set `init` up to connect with the device token stored for `t.url` and the
 * signed identity it belongs to, asking for the token's role and scopes.
 * Returns an error message when the token is there but the identity is not
 * usable; nothing changes when no token is stored.
 */
async function useDeviceToken(
  init: ConstructorParameters<typeof GatewayClient>[0],
  t: Target,
  stateDir: string,
): Promise<string | undefined> {
  const storage = new FileIdentityStorage(stateDir);
  const stored = await storage.loadToken(t.url).catch(() => null);
  if (!stored) return undefined;
  let identity: DeviceIdentity;
  try {
    const s = await storage.load();
    if (!s) throw new Error(`${tildify(storage.devicePath)} is missing`);
    identity = await DeviceIdentity.fromJSON(s);
  } catch (e) {
    return `cannot use the device token for ${t.url}: ${(e as Error).message}\n  ` +
      `pair again: gw pair ${t.url} --token T   (or pass --token)`;
  }
  init.signDevice = deviceAuthHook(identity);
  init.deviceTokens = storage;
  init.useDeviceToken = true;
  init.role = stored.role as Role;
  init.scopes = [...stored.scopes];
  t.deviceToken = true;
  t.tokenSource = `the device token in ${tildify(storage.tokensPath)}`;
  return undefined;
}

/**
 * Report a failed request the CLI way and return its exit code: an error
 * response is 1 (code and message on stderr, the error as JSON on stdout
 * with `--json`), a timeout 1, a lost connection 3.
 */
export function reportRequestError(
  e: unknown,
  method: string,
  conn: Pick<Connection, "target" | "timeoutMs">,
  json?: boolean,
): number {
  if (e instanceof GatewayRequestError) {
    if (json) {
      console.log(JSON.stringify(
        {
          ok: false,
          error: {
            type: "gateway_request_error",
            code: e.code,
            message: e.message,
            details: e.details,
            retryable: e.retryable,
          },
        },
        null,
        2,
      ));
    }
    console.error(`${red("error")} ${bold(e.code)}: ${requestErrorMessage(e, method)}`);
    const d = e.details as { code?: string; missingScope?: string } | undefined;
    if (d?.code === "MISSING_SCOPE") {
      console.error(
        dim(
          `  this connection lacks ${d.missingScope}; scopes come from the trusted CLI path on the gateway's machine, or a paired device`,
        ),
      );
    }
    return Exit.ERROR;
  }
  if (e instanceof GatewayTimeoutError) {
    console.error(
      `${red("gw:")} ${method} got no answer within ${conn.timeoutMs} ms from ${conn.target.url}`,
    );
    return Exit.ERROR;
  }
  console.error(
    `${red("gw:")} lost the connection to ${conn.target.url} during ${method}: ${
      (e as Error).message
    }`,
  );
  return Exit.CONNECT;
}

/** The message of an error response without the `<method> failed: ` prefix and code suffix. */
export function requestErrorMessage(e: GatewayRequestError, method: string): string {
  return e.message.replace(
    new RegExp(`^${method.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} failed: `),
    "",
  ).replace(/ \([A-Z_]+\)$/, "");
}

/**
 * Connect, call `method`, print, close. Returns the exit code:
 * 0 ok, 1 error response, 3 cannot connect.
 */
export async function callOnce(
  method: string,
  params: unknown,
  o: CallOptions,
  print: (result: unknown) => void,
): Promise<number> {
  const conn = await connectClient(o);
  if (typeof conn === "number") return conn;
  try {
    const result = await conn.client.request(method, params as never, {
      timeoutMs: conn.timeoutMs,
    });
    if (o.json) console.log(JSON.stringify(result, null, 2));
    else print(result);
    return Exit.OK;
  } catch (e) {
    return reportRequestError(e, method, conn, o.json);
  } finally {
    await conn.client.close().catch(() => {});
  }
}

/** Print any result readably: indented JSON, or the text itself. */
export function printPretty(result: unknown): void {
  if (typeof result === "string") console.log(result);
  else console.log(JSON.stringify(result, null, 2));
}

function ago(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** Summary printer for `gw health`. */
export function printHealth(r: unknown): void {
  const h = r as {
    ok: boolean;
    agents: {
      agentId: string;
      isDefault: boolean;
      heartbeat: { enabled: boolean; every: string };
    }[];
    eventLoop: { delayP99Ms: number; degraded: boolean };
    sessions: { count: number };
    channelOrder: string[];
  };
  console.log(`${h.ok ? green("● healthy") : red("● unhealthy")}`);
  for (const a of h.agents) {
    console.log(
      `  agent ${bold(a.agentId)}${a.isDefault ? dim(" (default)") : ""}  heartbeat ${
        a.heartbeat.enabled ? `every ${a.heartbeat.every}` : "off"
      }`,
    );
  }
  console.log(`  sessions ${h.sessions.count}   channels ${h.channelOrder.length || "none"}`);
  const lag = `event loop p99 ${h.eventLoop.delayP99Ms} ms`;
  console.log(`  ${h.eventLoop.degraded ? yellow(lag + " (degraded)") : lag}`);
}

/** Summary printer for `gw status`. */
export function printStatus(r: unknown): void {
  const s = r as {
    runtimeVersion: string;
    uptimeMs: number;
    pid: number;
    connections: { operators: number; nodes: number; preauth: number };
    processMemory: { rssBytes: number; heapUsedBytes: number };
    heartbeat: { enabled: boolean };
    queuedSystemEvents: string[];
    sessions: { count: number; defaults: { model: string | null } };
  };
  const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;
  console.log(
    `${green("●")} ${bold(`gw ${s.runtimeVersion}`)}  up ${ago(s.uptimeMs)}  pid ${s.pid}`,
  );
  console.log(
    `  memory    rss ${mb(s.processMemory.rssBytes)}, heap ${mb(s.processMemory.heapUsedBytes)}`,
  );
  console.log(
    `  clients   ${s.connections.operators} operator(s), ${s.connections.nodes} node(s), ${s.connections.preauth} connecting`,
  );
  console.log(`  model     ${s.sessions.defaults.model ?? dim("none configured")}`);
  console.log(`  sessions  ${s.sessions.count}   heartbeats ${s.heartbeat.enabled ? "on" : "off"}`);
  if (s.queuedSystemEvents.length) {
    console.log(`  queued    ${s.queuedSystemEvents.length} system event(s)`);
  }
}
