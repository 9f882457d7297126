/**
 * `gw channels` (status, add, logout) and `gw pairing` (list, approve,
 * reject): chat channels as the gateway owner sees them.
 *
 * `gw channels` goes through `channels.status` and `channels.logout`;
 * `gw channels add telegram --token T` first checks the token with the Bot
 * API's `getMe` (straight from this machine), then saves it through the
 * running gateway's `config.get` + `config.patch` (the bot starts at once) or,
 * when no local gateway answers, into `<state-dir>/gw.json` directly. In
 * `channels add`, `--token` is the bot's token; the gateway's own secret then
 * comes from `GW_TOKEN` or the state dir. The bot token is never printed.
 *
 * `gw pairing` goes through `<channel>.pairing.*`: approve the code an
 * unknown sender was given (`gw pairing approve telegram ABCD2345`, the
 * order OpenClaw's CLI uses).
 *
 * @module
 */
import { GatewayRequestError } from "../client/client.ts";
import { KNOWN_CHANNELS } from "../../channels/registry.ts";
import {
  type CallOptions,
  connectClient,
  type Connection,
  Exit,
  parseTimeout,
  reportRequestError,
  requestErrorMessage,
  resolveTarget,
  strFlag,
  UsageError,
} from "./call.ts";
import { relativeTime } from "./devices.ts";
import { resolveStateDir, tildify } from "./paths.ts";
import { bold, dim, green, red, table, yellow } from "./style.ts";

/** The flags as `node:util` parseArgs gave them, by their command-line names. */
export type ChannelFlags = Readonly<Record<string, string | boolean | undefined>>;

/** Options of {@link runChannels} and {@link runPairing}. */
export interface ChannelsOptions extends CallOptions {
  /** Every flag given (`probe`, `api-root`, `dm-policy`, ...), by its command-line name. */
  flags: ChannelFlags;
}

/** Channels the CLI can add and pair, with their display names. */
export const SUPPORTED_CHANNELS: Readonly<Record<string, string>> = { telegram: "Telegram" };

/** What to run when no channel is configured. */
export const ADD_HINT = "gw channels add telegram --token <token from @BotFather>";

/** The Bot API server gw talks to unless told otherwise. */
export const DEFAULT_TELEGRAM_API_ROOT = "https://api.telegram.org";

/** One account of a channel as `channels.status` returns it. */
export interface ChannelAccount {
  accountId: string;
  name?: string;
  enabled: boolean;
  configured: boolean;
  running: boolean;
  connected: boolean;
  mode?: string;
  lastError: string | null;
  dmPolicy?: string;
  tokenSource?: string;
  probe?: {
    ok: boolean;
    elapsedMs?: number;
    bot?: { id: number; username: string };
    error?: string;
  };
  [extra: string]: unknown;
}

/** A problem `channels.status` asks a person to fix. */
export interface StatusIssue {
  channel: string;
  accountId: string;
  kind: string;
  message: string;
  fix?: string;
}

/** The result of `channels.status` (the fields the CLI reads). */
export interface ChannelsStatus {
  ts: number;
  channelOrder: string[];
  channelLabels: Record<string, string>;
  channelAccounts: Record<string, ChannelAccount[]>;
  statusIssues: StatusIssue[];
  warnings?: string[];
}

/** A sender waiting for approval, as `<channel>.pairing.list` returns it. */
export interface PairingRequest {
  code: string;
  senderId: string;
  senderName: string | null;
  username: string | null;
  createdAt: number;
  expiresAt: number;
}

/** An approved sender, as `<channel>.pairing.list` returns it. */
export interface AllowedSender {
  senderId: string;
  senderName?: string;
  username?: string;
  approvedAt: number;
}

/** The result of `<channel>.pairing.list`. */
export interface PairingList {
  channel: string;
  requests: PairingRequest[];
  allowed: AllowedSender[];
}

const CLIENT = ["url", "token", "password", "state-dir", "help", "json", "timeout"];
const CHANNEL_SUBS = ["status", "add", "logout"] as const;
type ChannelSub = typeof CHANNEL_SUBS[number];
const CHANNEL_ALIASES: Record<string, ChannelSub> = { list: "status", ls: "status" };
const CHANNEL_FLAGS: Record<ChannelSub, string[]> = {
  status: [...CLIENT, "probe"],
  add: [...CLIENT, "api-root", "dm-policy", "allow-from"],
  logout: CLIENT,
};
const PAIRING_SUBS = ["list", "approve", "reject"] as const;
type PairingSub = typeof PAIRING_SUBS[number];
const PAIRING_ALIASES: Record<string, PairingSub> = { ls: "list", deny: "reject" };
/** How long `channels add` waits for Telegram's answer unless `--timeout` says otherwise. */
const GET_ME_TIMEOUT_MS = 15_000;

// ------------------------------------------------------------------ arguments

function checkFlags(what: string, f: ChannelFlags, allowed: string[]): void {
  for (const [k, v] of Object.entries(f)) {
    if (v === undefined || allowed.includes(k)) continue;
    throw new UsageError(`${what} does not take --${k}`);
  }
}

/** The supported channel `name` names, lower-cased. */
function channelArg(name: string | undefined, usage: string): string {
  if (name === undefined || !name.trim()) throw new UsageError(`usage: ${usage}`);
  const id = name.trim().toLowerCase();
  if (SUPPORTED_CHANNELS[id]) return id;
  const supported = Object.keys(SUPPORTED_CHANNELS).join(", ");
  throw new UsageError(
    KNOWN_CHANNELS.has(id)
      ? `gw has no ${id} channel yet (supported: ${supported})`
      : `unknown channel '${name}' (supported: ${supported})`,
  );
}

function labelOf(channel: string, labels?: Record<string, string>): string {
  return labels?.[channel] ?? SUPPORTED_CHANNELS[channel] ?? channel;
}

/** `--api-root`: an http(s) URL, without trailing slashes. */
function apiRootFlag(text: string): string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new UsageError(`--api-root: expected an http(s) URL, got '${text}'`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new UsageError(`--api-root: expected an http(s) URL, got '${text}'`);
  }
  return text.trim().replace(/\/+$/, "");
}

/** `--allow-from 1,2`: sender ids, comma or space separated. */
function allowFromFlag(text: string): string[] {
  const ids = text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
  if (!ids.length) throw new UsageError(`--allow-from: expected ids such as 12345,67890`);
  return [...new Set(ids)];
}

// ------------------------------------------------------------------ secrets

/** `text` with every occurrence of `secret` (plain or URL-encoded) replaced. */
export function scrubSecret(text: string, secret: string): string {
  if (!secret) return text;
  let out = text.replaceAll(secret, "<bot token>");
  const encoded = encodeURIComponent(secret);
  if (encoded !== secret) out = out.replaceAll(encoded, "<bot token>");
  return out;
}

// ------------------------------------------------------------------ Telegram getMe

/** What {@link telegramGetMe} found. */
export type GetMeResult =
  | { ok: true; bot: { id: number; username: string } }
  | { ok: false; kind: "rejected" | "unreachable" | "failed"; message: string };

/** Options of {@link telegramGetMe}. */
export interface GetMeOptions {
  /** Bot API server root. @default {"https://api.telegram.org"} */
  apiRoot?: string;
  /** Give up after this long. @default {15000} */
  timeoutMs?: number;
}

/**
 * Ask the Bot API who `token` is (`getMe`). Never throws; the messages it
 * returns never contain the token.
 *
 * @example
 * ```ts
 * const r = await telegramGetMe("123456:abc...", { apiRoot: "https://api.telegram.org" });
 * if (r.ok) console.log(`@${r.bot.username}`);
 * ```
 */
export async function telegramGetMe(token: string, opts: GetMeOptions = {}): Promise<GetMeResult> {
  const apiRoot = (opts.apiRoot ?? DEFAULT_TELEGRAM_API_ROOT).replace(/\/+$/, "");
  const timeoutMs = opts.timeoutMs ?? GET_ME_TIMEOUT_MS;
  let res: Response;
  try {
    res = await fetch(`${apiRoot}/bot${token}/getMe`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    const err = e as Error;
    const why = err.name === "TimeoutError"
      ? `no answer within ${Math.round(timeoutMs / 1000)} s`
      : scrubSecret(err.message, token);
    return {
      ok: false,
      kind: "unreachable",
      message: `cannot reach Telegram at ${apiRoot}: ${why}`,
    };
  }
  let body: {
    ok?: boolean;
    error_code?: number;
    description?: string;
    result?: { id?: number; username?: string };
  } | null = null;
  try {
    body = await res.json();
  } catch { /* not JSON */ }
  const status = typeof body?.error_code === "number" ? body.error_code : res.status;
  const description = scrubSecret(
    String(body?.description ?? res.statusText ?? "").replace(/^\s*\d+\s*/, "").trim(),
    token,
  );
  const said = `${status}${description ? ` ${description}` : ""}`;
  if (res.ok && body?.ok === true && body.result) {
    const id = Number(body.result.id);
    const username = String(body.result.username ?? "");
    return { ok: true, bot: { id, username } };
  }
  if ([401, 403, 404].includes(status) || (res.ok && body?.ok === false)) {
    return {
      ok: false,
      kind: "rejected",
      message: `Telegram rejected this token (${said}): check it with @BotFather`,
    };
  }
  return {
    ok: false,
    kind: "failed",
    message: `Telegram answered ${said} at ${apiRoot}; try again in a moment`,
  };
}

// ------------------------------------------------------------------ formatting

function stateOf(a: ChannelAccount): string {
  if (!a.enabled) return "disabled";
  if (!a.configured) return "not configured";
  if (a.running) return a.connected ? "connected" : "connecting";
  return "stopped";
}

function paintState(s: string): string {
  const t = s.trim();
  if (t === "connected") return green(s);
  if (t === "connecting") return yellow(s);
  if (t === "stopped") return red(s);
  return dim(s);
}

function botOf(a: ChannelAccount): string {
  const name = a.name ?? a.probe?.bot?.username;
  if (!name) return "-";
  return name.startsWith("@") ? name : `@${name}`;
}

function probeWords(p: ChannelAccount["probe"]): string {
  if (!p) return "-";
  const ms = typeof p.elapsedMs === "number" ? ` (${p.elapsedMs} ms)` : "";
  return p.ok ? `ok${ms}` : `failed${ms}: ${p.error ?? "unknown error"}`;
}

/** Options of {@link formatChannelsStatus}. */
export interface FormatStatusOptions {
  /** Show the probe column. @default {false} */
  probe?: boolean;
}

/** The human output of `gw channels status`. */
export function formatChannelsStatus(s: ChannelsStatus, opts: FormatStatusOptions = {}): string {
  const order = s.channelOrder ?? [];
  if (!order.length) {
    return `no channels configured; add one: ${ADD_HINT}`;
  }
  const showProbe = opts.probe === true ||
    order.some((c) => (s.channelAccounts?.[c] ?? []).some((a) => a.probe !== undefined));
  const head = ["CHANNEL", "BOT", "STATE", "MODE", "DM POLICY"];
  if (showProbe) head.push("PROBE");
  head.push("LAST ERROR");
  const rows: string[][] = [];
  const kinds: ("state" | "probe-ok" | "probe-bad" | "error" | "")[][] = [];
  for (const c of order) {
    for (const a of s.channelAccounts?.[c] ?? []) {
      const label = labelOf(c, s.channelLabels) +
        (a.accountId && a.accountId !== "default" ? `/${a.accountId}` : "");
      const row = [label, botOf(a), stateOf(a), a.mode ?? "-", a.dmPolicy ?? "-"];
      const kind: (typeof kinds)[number] = ["", "", "state", "", ""];
      if (showProbe) {
        row.push(probeWords(a.probe));
        kind.push(a.probe ? (a.probe.ok ? "probe-ok" : "probe-bad") : "");
      }
      row.push(a.lastError ?? "-");
      kind.push(a.lastError ? "error" : "");
      rows.push(row);
      kinds.push(kind);
    }
  }
  const out = [table(head, rows, {
    paint: (row, col, cell) => {
      const k = kinds[row]?.[col];
      if (k === "state") return paintState(cell);
      if (k === "probe-ok") return green(cell);
      if (k === "probe-bad" || k === "error") return red(cell);
      return cell;
    },
  })];
  const issues = s.statusIssues ?? [];
  if (issues.length) {
    out.push("", bold(`Issues (${issues.length})`));
    for (const i of issues) {
      out.push(`  ${yellow("!")} ${labelOf(i.channel, s.channelLabels)}: ${i.message}`);
      if (i.fix) out.push(`    ${dim("fix:")} ${i.fix}`);
    }
  }
  for (const w of s.warnings ?? []) out.push(yellow(`warning: ${w}`));
  return out.join("\n");
}

/** `Ann @ann (42)`, `@ann (42)` or `42`. */
function senderWords(
  s: { senderId: string; senderName?: string | null; username?: string | null },
) {
  const name = [s.senderName?.trim(), s.username ? `@${s.username}` : ""].filter(Boolean)
    .join(" ");
  return name ? `${name} (${s.senderId})` : s.senderId;
}

/** The two tables of `gw pairing list`. */
export function formatPairingList(list: PairingList, now: number = Date.now()): string {
  const label = labelOf(list.channel);
  const requests = list.requests ?? [];
  const allowed = list.allowed ?? [];
  const out: string[] = [bold(`Pending ${label} pairing requests (${requests.length})`)];
  if (!requests.length) out.push(dim("  none"));
  else {
    out.push(table(
      ["CODE", "FROM", "REQUESTED", "EXPIRES"],
      requests.map((r) => [
        r.code,
        senderWords(r),
        relativeTime(r.createdAt, now),
        relativeTime(r.expiresAt, now),
      ]),
    ));
  }
  out.push("", bold(`Approved ${label} senders (${allowed.length})`));
  if (!allowed.length) out.push(dim("  none"));
  else {
    out.push(table(
      ["SENDER", "NAME", "APPROVED"],
      allowed.map((a) => [
        a.senderId,
        [a.senderName?.trim(), a.username ? `@${a.username}` : ""].filter(Boolean).join(" ") ||
        "-",
        relativeTime(a.approvedAt, now),
      ]),
    ));
  }
  if (requests.length) {
    out.push("", dim(`approve with: gw pairing approve ${list.channel} <CODE>`));
  }
  return out.join("\n");
}

// ------------------------------------------------------------------ errors

function isUnavailable(e: unknown): e is GatewayRequestError {
  return e instanceof GatewayRequestError && e.code === "UNAVAILABLE" &&
    e.details?.code === "METHOD_UNAVAILABLE";
}

/** Print that `channel` is not configured on the gateway; returns the exit code. */
function reportNotConfigured(
  e: GatewayRequestError,
  channel: string,
  json: boolean | undefined,
): number {
  const message = `${labelOf(channel)} is not configured on this gateway; add it first: ${
    ADD_HINT.replace("telegram", channel)
  }`;
  if (json) {
    console.log(JSON.stringify(
      {
        ok: false,
        error: {
          type: "gateway_request_error",
          code: e.code,
          message,
          details: e.details,
        },
      },
      null,
      2,
    ));
  }
  console.error(`${red("gw:")} ${message}`);
  return Exit.ERROR;
}

/** Print a plain failure (as JSON too with `json`); returns `exit` (default 1). */
function reportFailure(
  type: string,
  message: string,
  o: { json?: boolean | undefined; exit?: number },
): number {
  if (o.json) console.log(JSON.stringify({ ok: false, error: { type, message } }, null, 2));
  console.error(`${red("gw:")} ${message}`);
  return o.exit ?? Exit.ERROR;
}

/** The same error with `secret` scrubbed from its message and details. */
function scrubRequestError(e: GatewayRequestError, method: string, secret: string) {
  let details: Record<string, unknown> | undefined;
  if (e.details) {
    try {
      details = JSON.parse(scrubSecret(JSON.stringify(e.details), secret));
    } catch {
      details = undefined;
    }
  }
  return new GatewayRequestError({
    code: e.code,
    message: scrubSecret(requestErrorMessage(e, method), secret),
    ...(details ? { details } : {}),
    ...(e.retryable !== undefined ? { retryable: e.retryable } : {}),
  }, { method });
}

// ------------------------------------------------------------------ gw channels

/**
 * `gw channels [status|add|logout] ...`. Returns the exit code: 0 ok, 1 error
 * response (or Telegram refused the token), 3 cannot connect.
 *
 * @throws {UsageError} for a mistake in the arguments (exit 2).
 */
export async function runChannels(args: string[], o: ChannelsOptions): Promise<number> {
  const [word = "status", ...rest] = args;
  const sub = CHANNEL_ALIASES[word] ?? word as ChannelSub;
  if (!(CHANNEL_SUBS as readonly string[]).includes(sub)) {
    throw new UsageError(
      `unknown channels command '${word}' (expected ${CHANNEL_SUBS.join(", ")})`,
    );
  }
  checkFlags(`channels ${sub}`, o.flags, CHANNEL_FLAGS[sub]);
  if (sub === "status") {
    if (rest.length) throw new UsageError(`channels status takes no arguments`);
    return await channelsStatus(o);
  }
  const usage = sub === "add"
    ? "gw channels add telegram --token <token from @BotFather>"
    : "gw channels logout telegram";
  const [name, ...extra] = rest;
  const channel = channelArg(name, usage);
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  return sub === "add" ? await channelsAdd(channel, o) : await channelsLogout(channel, o);
}

async function channelsStatus(o: ChannelsOptions): Promise<number> {
  const probe = o.flags.probe === true;
  const conn = await connectClient(o);
  if (typeof conn === "number") return conn;
  try {
    const r = await conn.client.request("channels.status", { probe } as never, {
      timeoutMs: conn.timeoutMs,
    }) as unknown as ChannelsStatus;
    if (o.json) console.log(JSON.stringify(r, null, 2));
    else console.log(formatChannelsStatus(r, { probe }));
    return Exit.OK;
  } catch (e) {
    return reportRequestError(e, "channels.status", conn, o.json);
  } finally {
    await conn.client.close().catch(() => {});
  }
}

async function channelsLogout(channel: string, o: ChannelsOptions): Promise<number> {
  const conn = await connectClient(o);
  if (typeof conn === "number") return conn;
  try {
    const r = await conn.client.request("channels.logout", { channel } as never, {
      timeoutMs: conn.timeoutMs,
    }) as unknown as { cleared?: boolean; envToken?: boolean };
    if (o.json) return console.log(JSON.stringify(r, null, 2)), Exit.OK;
    const label = labelOf(channel);
    console.log(
      r.cleared
        ? `${
          yellow("logged out")
        } of ${label}: the bot token was removed from the config and the bot stopped`
        : `${yellow("logged out")} of ${label}: the config held no bot token; the bot stopped`,
    );
    if (r.envToken) {
      console.log(
        dim(
          `  ${channel.toUpperCase()}_BOT_TOKEN is set in the gateway's environment, so the bot runs on with that token`,
        ),
      );
    }
    return Exit.OK;
  } catch (e) {
    if (isUnavailable(e)) return reportNotConfigured(e, channel, o.json);
    return reportRequestError(e, "channels.logout", conn, o.json);
  } finally {
    await conn.client.close().catch(() => {});
  }
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
 * {@link connectClient} without its messages: the connection, or why there is
 * none (the messages it would have printed).
 */
async function quietConnect(o: CallOptions): Promise<Connection | { failed: string }> {
  const said: string[] = [];
  const { log, error } = console;
  console.log = () => {};
  console.error = (...a: unknown[]) => void said.push(a.map(String).join(" "));
  try {
    const conn = await connectClient({ ...o, json: false });
    if (typeof conn !== "number") return conn;
    return { failed: said.join("\n").replace(/^gw: /, "") || "cannot connect" };
  } finally {
    console.log = log;
    console.error = error;
  }
}

type TelegramSettings = {
  botToken: string;
  apiRoot?: string;
  dmPolicy?: string;
  allowFrom?: string[];
  enabled: true;
};

async function channelsAdd(channel: string, o: ChannelsOptions): Promise<number> {
  const f = o.flags;
  const token = strFlag(f, "token")?.trim();
  if (!token) {
    throw new UsageError(
      `channels add ${channel} needs --token <token from @BotFather> (the bot's token)`,
    );
  }
  if (/[\s/?#%]/.test(token)) {
    throw new UsageError(
      `--token: expected a bot token from @BotFather (digits:letters), got one with spaces or URL characters`,
    );
  }
  const apiRootText = strFlag(f, "api-root");
  const apiRoot = apiRootText === undefined ? undefined : apiRootFlag(apiRootText);
  const envRoot = Deno.env.get("TELEGRAM_API_ROOT")?.trim() || undefined;
  const dmPolicy = strFlag(f, "dm-policy")?.trim();
  const { DM_POLICIES } = await import("../../channels/config.ts");
  if (dmPolicy !== undefined && !(DM_POLICIES as readonly string[]).includes(dmPolicy)) {
    throw new UsageError(`--dm-policy: expected ${DM_POLICIES.join(", ")}, got '${dmPolicy}'`);
  }
  const allowFromText = strFlag(f, "allow-from");
  const allowFrom = allowFromText === undefined ? undefined : allowFromFlag(allowFromText);
  // Telegram first: nothing is saved for a token it refuses.
  const timeoutMs = parseTimeout(o.timeout, GET_ME_TIMEOUT_MS);
  const me = await telegramGetMe(token, {
    apiRoot: apiRoot ?? envRoot ?? DEFAULT_TELEGRAM_API_ROOT,
    timeoutMs,
  });
  if (!me.ok) return reportFailure(`telegram_${me.kind}`, me.message, o);

  const settings: TelegramSettings = {
    botToken: token,
    ...(apiRoot ? { apiRoot } : {}),
    ...(dmPolicy ? { dmPolicy } : {}),
    ...(allowFrom ? { allowFrom } : {}),
    enabled: true,
  };
  // `--token` was the bot's; the gateway's secret comes from GW_TOKEN or the state dir.
  const client: CallOptions = { ...o, token: undefined };
  const conn = await quietConnect(client);
  let saved: { to: "gateway" | "file"; path: string; dmPolicy: string; note?: string };
  if ("client" in conn) {
    try {
      saved = { to: "gateway", ...await saveThroughGateway(conn, settings) };
    } catch (e) {
      if (e instanceof GatewayRequestError) {
        const method = e.method ?? "config.patch";
        return reportRequestError(scrubRequestError(e, method, token), method, conn, o.json);
      }
      return reportRequestError(e, "config.patch", conn, o.json);
    } finally {
      await conn.client.close().catch(() => {});
    }
  } else {
    const target = await resolveTarget(client);
    if (!isLoopbackUrl(target.url)) {
      // Not this machine's gateway: its gw.json is not the one here.
      return reportFailure("connect_error", conn.failed, { json: o.json, exit: Exit.CONNECT });
    }
    try {
      saved = {
        to: "file",
        ...await saveToFile(resolveStateDir(o.stateDir), settings),
        ...(/nothing answered there/.test(conn.failed) ? {} : { note: conn.failed }),
      };
    } catch (e) {
      return reportFailure("config_error", scrubSecret((e as Error).message, token), o);
    }
  }
  if (o.json) {
    console.log(JSON.stringify(
      {
        ok: true,
        channel,
        bot: me.bot,
        savedTo: saved.to,
        path: saved.path,
      },
      null,
      2,
    ));
    return Exit.OK;
  }
  const where = saved.to === "gateway"
    ? `saved by the gateway to ${tildify(saved.path)}; the bot is starting`
    : `saved to ${tildify(saved.path)}; it takes effect at the next gw start`;
  const next = {
    pairing:
      `Message it on Telegram; the first message gets a pairing code, which you approve with: gw pairing approve ${channel} <CODE>`,
    allowlist: `Only the senders in allowFrom may message it (--allow-from id,id).`,
    open: `Anyone who finds it may message it.`,
    disabled: `Direct messages to it are turned off (--dm-policy).`,
  }[saved.dmPolicy] ?? "";
  if (saved.note) console.error(dim(`gw: the gateway did not take the change (${saved.note})`));
  console.log(
    `${green("Telegram bot")} ${bold(`@${me.bot.username}`)} added (${where}). ${next}`.trimEnd(),
  );
  return Exit.OK;
}

/** The effective DM policy after saving `settings` over `existing`. */
function dmPolicyAfter(settings: TelegramSettings, existing: unknown): string {
  const old = (existing as { dmPolicy?: unknown } | undefined)?.dmPolicy;
  return settings.dmPolicy ?? (typeof old === "string" ? old : "pairing");
}

/** `config.get` then `config.patch` (again on a conflict); the gateway applies it at once. */
async function saveThroughGateway(
  conn: Connection,
  settings: TelegramSettings,
): Promise<{ path: string; dmPolicy: string }> {
  const raw = JSON.stringify({ channels: { telegram: settings } });
  for (let attempt = 1;; attempt++) {
    const snap = await conn.client.request("config.get", {} as never, {
      timeoutMs: conn.timeoutMs,
    }) as unknown as {
      hash: string;
      path: string;
      parsed: { channels?: { telegram?: unknown } } | null;
    };
    try {
      const r = await conn.client.request("config.patch", { raw, baseHash: snap.hash } as never, {
        timeoutMs: conn.timeoutMs,
      }) as unknown as { path?: string };
      return {
        path: r.path ?? snap.path,
        dmPolicy: dmPolicyAfter(settings, snap.parsed?.channels?.telegram),
      };
    } catch (e) {
      const conflict = e instanceof GatewayRequestError && e.details?.code === "CONFIG_CONFLICT";
      if (!conflict || attempt >= 3) throw e;
    }
  }
}

/** Merge `settings` into `<stateDir>/gw.json` (mode 0600). */
async function saveToFile(
  stateDir: string,
  settings: TelegramSettings,
): Promise<{ path: string; dmPolicy: string }> {
  const { ConfigFile, mergePatch } = await import("../config/mod.ts");
  await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = `${stateDir}/gw.json`;
  const file = await ConfigFile.open(path);
  const existing = (file.state.parsed?.channels as { telegram?: unknown } | undefined)?.telegram;
  await file.write(
    (cur) => mergePatch(cur, { channels: { telegram: settings } }),
    file.state.hash,
  );
  return { path, dmPolicy: dmPolicyAfter(settings, existing) };
}

// ------------------------------------------------------------------ gw pairing

/**
 * `gw pairing [list] [CHANNEL]`, `gw pairing approve|reject CHANNEL CODE`.
 * Returns the exit code: 0 ok, 1 error response (an unknown code, a channel
 * that is not configured), 3 cannot connect.
 *
 * @throws {UsageError} for a mistake in the arguments (exit 2).
 */
export async function runPairing(args: string[], o: ChannelsOptions): Promise<number> {
  const [first, ...more] = args;
  let sub: PairingSub;
  let rest: string[];
  if (first === undefined) [sub, rest] = ["list", []];
  else if (PAIRING_ALIASES[first] || (PAIRING_SUBS as readonly string[]).includes(first)) {
    [sub, rest] = [PAIRING_ALIASES[first] ?? first as PairingSub, more];
  } else if (SUPPORTED_CHANNELS[first.toLowerCase()] || KNOWN_CHANNELS.has(first.toLowerCase())) {
    [sub, rest] = ["list", args];
  } else {
    throw new UsageError(
      `unknown pairing command '${first}' (expected ${PAIRING_SUBS.join(", ")})`,
    );
  }
  checkFlags(`pairing ${sub}`, o.flags, CLIENT);
  if (sub === "list") {
    const [name, ...extra] = rest;
    const channel = name === undefined ? "telegram" : channelArg(name, "gw pairing list [CHANNEL]");
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
    return await pairingList(channel, o);
  }
  const usage = `gw pairing ${sub} CHANNEL CODE (e.g. gw pairing ${sub} telegram ABCD2345)`;
  const [name, code, ...extra] = rest;
  const channel = channelArg(name, usage);
  if (code === undefined || !code.trim()) throw new UsageError(`usage: ${usage}`);
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  return await pairingDecide({ sub, channel, code: code.trim() }, o);
}

async function pairingList(channel: string, o: ChannelsOptions): Promise<number> {
  const method = `${channel}.pairing.list`;
  const conn = await connectClient(o);
  if (typeof conn === "number") return conn;
  try {
    const r = await conn.client.request(method, {} as never, {
      timeoutMs: conn.timeoutMs,
    }) as unknown as PairingList;
    if (o.json) console.log(JSON.stringify(r, null, 2));
    else console.log(formatPairingList({ ...r, channel: r.channel ?? channel }));
    return Exit.OK;
  } catch (e) {
    if (isUnavailable(e)) return reportNotConfigured(e, channel, o.json);
    return reportRequestError(e, method, conn, o.json);
  } finally {
    await conn.client.close().catch(() => {});
  }
}

async function pairingDecide(
  what: { sub: "approve" | "reject"; channel: string; code: string },
  o: ChannelsOptions,
): Promise<number> {
  const { sub, channel, code } = what;
  const conn = await connectClient(o);
  if (typeof conn === "number") return conn;
  let method = `${channel}.pairing.list`;
  const call = async <T>(m: string, params: unknown): Promise<T> => {
    method = m;
    return await conn.client.request(m, params as never, { timeoutMs: conn.timeoutMs }) as T;
  };
  try {
    // The list first, for the sender's name (a reject answers with the id only).
    const list = await call<PairingList>(method, {});
    const req = (list.requests ?? []).find((r) => r.code.toUpperCase() === code.toUpperCase());
    const r = await call<{ senderId: string; approved?: AllowedSender; notified?: boolean }>(
      `${channel}.pairing.${sub}`,
      { code },
    );
    if (o.json) return console.log(JSON.stringify(r, null, 2)), Exit.OK;
    const who = senderWords({
      senderId: r.senderId,
      senderName: r.approved?.senderName ?? req?.senderName ?? null,
      username: r.approved?.username ?? req?.username ?? null,
    });
    if (sub === "approve") {
      const told = r.notified === true
        ? "; they were told"
        : r.notified === false
        ? dim(` (telling them on ${labelOf(channel)} failed; they may write again)`)
        : "";
      console.log(`${green("approved")} ${who} on ${channel}${told}`);
    } else console.log(`${yellow("rejected")} ${who} on ${channel}`);
    return Exit.OK;
  } catch (e) {
    if (isUnavailable(e)) return reportNotConfigured(e, channel, o.json);
    return reportRequestError(e, method, conn, o.json);
  } finally {
    await conn.client.close().catch(() => {});
  }
}
