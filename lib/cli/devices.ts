/**
 * `gw devices` (list, approve, reject, remove, rotate, revoke) and `gw pair`.
 *
 * `gw devices` is the gateway owner's side: it goes through the gateway's
 * `device.pair.*` and `device.token.*` methods (scope `operator.pairing`), and
 * takes any unique prefix of a request or device id (resolved through
 * `device.pair.list`).
 *
 * `gw pair <url>` is the other machine's side: it connects with the shared
 * secret and this machine's signed device identity, waits (retrying every
 * 2 s) until the owner approves the pairing request, then keeps the device
 * token the gateway issues; later `gw call --url <url>` uses it without
 * `--token`.
 *
 * @module
 */
import { GatewayClient, GatewayConnectError, GatewayRequestError } from "../client/client.ts";
import { deviceAuthHook } from "../client/identity.ts";
import { parseDuration } from "../duration.ts";
import { DEFAULT_OPERATOR_SCOPES, type Role } from "../protocol/types.ts";
import { VERSION } from "../version.ts";
import {
  type CallOptions,
  connectClient,
  Exit,
  LookupError,
  reportLookupError,
  reportRequestError,
  resolveTarget,
  strFlag,
  UsageError,
} from "./call.ts";
import { FileIdentityStorage, loadCliIdentity } from "./identity.ts";
import { resolveStateDir, tildify } from "./paths.ts";
import { bold, dim, green, red, table, yellow } from "./style.ts";

/** The flags as `node:util` parseArgs gave them, by their command-line names. */
export type DeviceFlags = Readonly<Record<string, string | boolean | undefined>>;

/** Options of {@link runDevices} and {@link runPair}. */
export interface DevicesOptions extends CallOptions {
  /** Every flag given (`role`, `scopes`, `name`, ...), by its command-line name. */
  flags: DeviceFlags;
}

/** A pending pairing request as `device.pair.list` returns it. */
export interface PendingRequest {
  requestId: string;
  deviceId: string;
  displayName?: string;
  platform?: string;
  clientId: string;
  clientMode: string;
  role: string;
  scopes: string[];
  remoteIp?: string;
  createdAtMs: number;
  expiresAtMs?: number;
}

/** A device token as `device.pair.list` shows it (without the token). */
export interface PairedToken {
  role: string;
  scopes: string[];
  createdAtMs: number;
  rotatedAtMs?: number;
  revokedAtMs?: number;
  lastUsedAtMs?: number;
}

/** A paired device as `device.pair.list` returns it. */
export interface PairedDevice {
  deviceId: string;
  displayName?: string;
  platform?: string;
  clientId: string;
  clientMode: string;
  roles: string[];
  approvedScopes: string[];
  createdAtMs: number;
  approvedAtMs: number;
  lastSeenAtMs?: number;
  lastSeenIp?: string;
  tokens?: PairedToken[];
}

/** The result of `device.pair.list`. */
export interface PairList {
  pending: PendingRequest[];
  paired: PairedDevice[];
}

const SUBCOMMANDS = ["list", "approve", "reject", "remove", "rotate", "revoke"] as const;
type Sub = typeof SUBCOMMANDS[number];
const ALIASES: Record<string, Sub> = { ls: "list", rm: "remove", delete: "remove" };
const CLIENT = ["url", "token", "password", "state-dir", "help", "json", "timeout"];
const SUB_FLAGS: Record<Sub, string[]> = {
  list: [],
  approve: [],
  reject: [],
  remove: [],
  rotate: ["role", "scopes"],
  revoke: ["role"],
};
/** What each subcommand's argument names. */
const ARG: Record<Sub, string> = {
  list: "",
  approve: "REQUEST_ID",
  reject: "REQUEST_ID",
  remove: "DEVICE_ID",
  rotate: "DEVICE_ID",
  revoke: "DEVICE_ID",
};
const PAIR_FLAGS = ["url", "token", "password", "state-dir", "help", "json", "timeout"].concat(
  "name",
  "scopes",
  "role",
);
/** How often `gw pair` asks again while the request waits. */
const PAIR_RETRY_MS = 2000;
const SHORT_SCOPES = new Set([
  "admin",
  "read",
  "write",
  "approvals",
  "pairing",
  "questions",
  "talk",
  "talk.secrets",
]);

// ------------------------------------------------------------------ flags

function checkFlags(what: string, f: DeviceFlags, allowed: string[]): void {
  for (const [k, v] of Object.entries(f)) {
    if (v === undefined || allowed.includes(k)) continue;
    throw new UsageError(`${what} does not take --${k}`);
  }
}

/** `--role`: operator (the default) or node. */
function roleFlag(f: DeviceFlags): Role {
  const r = strFlag(f, "role")?.trim() ?? "operator";
  if (r !== "operator" && r !== "node") {
    throw new UsageError(`--role: expected operator or node, got '${r}'`);
  }
  return r;
}

/**
 * `--scopes a,b`: comma or space separated; the operator scopes may drop
 * their `operator.` prefix (`read,write`).
 */
export function parseScopes(text: string): string[] {
  const scopes = text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean)
    .map((s) => SHORT_SCOPES.has(s) ? `operator.${s}` : s);
  if (!scopes.length) throw new UsageError(`--scopes: expected a,b (e.g. read,write), got nothing`);
  return [...new Set(scopes)];
}

/** `--timeout` of `gw pair`: a duration (`5m`, `90s`) or milliseconds. */
function waitFlag(text: string | undefined): number {
  if (text === undefined) return 5 * 60_000;
  const ms = parseDuration(text);
  if (ms === undefined || ms < 1000) {
    throw new UsageError(`--timeout: expected a duration of at least 1s such as 5m, got '${text}'`);
  }
  return ms;
}

// ------------------------------------------------------------------ formatting

/** Ids shortened to 8 characters, or more where 8 would be ambiguous among `ids`. */
export function shortIds(ids: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const id of ids) {
    let n = Math.min(8, id.length);
    while (n < id.length && ids.some((o) => o !== id && o.startsWith(id.slice(0, n)))) n++;
    out.set(id, id.slice(0, n));
  }
  return out;
}

function span(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.round(ms / 60_000);
  if (m < 60) return `${m}m`;
  const h = Math.round(ms / 3_600_000);
  if (h < 48) return `${h}h`;
  return `${Math.round(ms / 86_400_000)}d`;
}

/** `5m ago`, `in 3m`, `now`; `-` when there is no time. */
export function relativeTime(ms: number | undefined, now: number = Date.now()): string {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "-";
  const d = ms - now;
  if (Math.abs(d) < 1000) return "now";
  return d > 0 ? `in ${span(d)}` : `${span(-d)} ago`;
}

/** Scopes without their `operator.` prefix, comma-joined; `-` for none. */
function scopeWords(scopes: readonly string[] | undefined): string {
  if (!scopes?.length) return "-";
  return scopes.map((s) => s.startsWith("operator.") ? s.slice(9) : s).join(",");
}

function nameOf(d: { displayName?: string; platform?: string }): string {
  const name = (d.displayName ?? "").trim().replace(/\s+/g, " ").slice(0, 32);
  const platform = (d.platform ?? "").trim();
  if (name && platform) return `${name} (${platform})`;
  return name || platform || "-";
}

/** The two tables of `gw devices list`. */
export function formatPairList(list: PairList, now: number = Date.now()): string {
  const out: string[] = [];
  const pending = list.pending ?? [];
  const paired = list.paired ?? [];
  out.push(bold(`Pending requests (${pending.length})`));
  if (!pending.length) out.push(dim("  none"));
  else {
    const req = shortIds(pending.map((p) => p.requestId));
    const dev = shortIds(pending.map((p) => p.deviceId));
    out.push(table(
      ["REQUEST", "DEVICE", "NAME", "CLIENT", "ROLE", "SCOPES", "ADDRESS", "REQUESTED", "EXPIRES"],
      pending.map((p) => [
        req.get(p.requestId)!,
        dev.get(p.deviceId)!,
        nameOf(p),
        `${p.clientId}/${p.clientMode}`,
        p.role,
        scopeWords(p.scopes),
        p.remoteIp ?? "-",
        relativeTime(p.createdAtMs, now),
        relativeTime(p.expiresAtMs, now),
      ]),
    ));
  }
  out.push("", bold(`Paired devices (${paired.length})`));
  if (!paired.length) out.push(dim("  none"));
  else {
    const dev = shortIds(paired.map((p) => p.deviceId));
    out.push(table(
      ["DEVICE", "NAME", "CLIENT", "ROLES", "SCOPES", "TOKENS", "LAST SEEN", "ADDRESS", "APPROVED"],
      paired.map((d) => [
        dev.get(d.deviceId)!,
        nameOf(d),
        `${d.clientId}/${d.clientMode}`,
        (d.roles ?? []).join(",") || "-",
        scopeWords(d.approvedScopes),
        tokenWords(d.tokens),
        relativeTime(d.lastSeenAtMs, now),
        d.lastSeenIp ?? "-",
        relativeTime(d.approvedAtMs, now),
      ]),
    ));
  }
  if (pending.length) {
    out.push("", dim("approve with: gw devices approve <REQUEST>   (any unique prefix)"));
  }
  return out.join("\n");
}

/** `operator`, `operator(revoked)`, or `-`. */
function tokenWords(tokens: PairedToken[] | undefined): string {
  if (!tokens?.length) return "-";
  return tokens.map((t) => t.revokedAtMs ? `${t.role}(revoked)` : t.role).join(",");
}

// ------------------------------------------------------------------ id lookup

/** The one item whose id is `ref` or starts with it. */
function resolveRef<T>(items: T[], ref: string, id: (t: T) => string, what: string): T {
  const q = ref.trim().toLowerCase();
  const exact = items.find((t) => id(t).toLowerCase() === q);
  if (exact) return exact;
  const hits = items.filter((t) => id(t).toLowerCase().startsWith(q));
  if (hits.length === 1) return hits[0]!;
  if (!hits.length) {
    throw new LookupError(`no ${what} has an id starting with '${ref}' (gw devices list)`);
  }
  const short = shortIds(hits.map(id));
  const some = hits.slice(0, 5).map((h) => short.get(id(h))).join(", ");
  throw new LookupError(
    `'${ref}' is ambiguous: ${hits.length} ${what} ids start with it (${some}${
      hits.length > 5 ? ", ..." : ""
    }); give more of the id`,
  );
}

/** The pending request `ref` names (an id or a unique prefix). */
export function resolveRequest(list: PairList, ref: string): PendingRequest {
  return resolveRef(list.pending ?? [], ref, (p) => p.requestId, "pending request");
}

/** The paired device `ref` names (an id or a unique prefix). */
export function resolveDevice(list: PairList, ref: string): PairedDevice {
  return resolveRef(list.paired ?? [], ref, (d) => d.deviceId, "paired device");
}

// ------------------------------------------------------------------ gw devices

/**
 * `gw devices [list|approve|reject|remove|rotate|revoke] ...`. Returns the
 * exit code: 0 ok, 1 error response (or an unknown or ambiguous id), 3
 * cannot connect.
 *
 * @throws {UsageError} for a mistake in the arguments (exit 2).
 */
export async function runDevices(args: string[], o: DevicesOptions): Promise<number> {
  const [word = "list", ...rest] = args;
  const sub = ALIASES[word] ?? word as Sub;
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new UsageError(`unknown devices command '${word}' (expected ${SUBCOMMANDS.join(", ")})`);
  }
  const f = o.flags;
  checkFlags(`devices ${sub}`, f, [...CLIENT, ...SUB_FLAGS[sub]]);
  const [ref, ...extra] = rest;
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (!ARG[sub] && ref !== undefined) throw new UsageError(`devices ${sub} takes no arguments`);
  if (ARG[sub] && (ref === undefined || !ref.trim())) {
    throw new UsageError(
      `usage: gw devices ${sub} ${ARG[sub]} (an id or a unique prefix; gw devices list)`,
    );
  }
  const role = sub === "rotate" || sub === "revoke" ? roleFlag(f) : undefined;
  const scopesText = strFlag(f, "scopes");
  const scopes = scopesText === undefined ? undefined : parseScopes(scopesText);

  const conn = await connectClient(o);
  if (typeof conn === "number") return conn;
  let method = "device.pair.list";
  const call = async <T>(m: string, params: unknown): Promise<T> => {
    method = m;
    return await conn.client.request(m, params as never, { timeoutMs: conn.timeoutMs }) as T;
  };
  const out = (v: unknown) => console.log(JSON.stringify(v, null, 2));
  try {
    const list = await call<PairList>("device.pair.list", {});
    if (sub === "list") {
      if (o.json) out(list);
      else console.log(formatPairList(list));
      return Exit.OK;
    }
    if (sub === "approve" || sub === "reject") {
      const req = resolveRequest(list, ref!);
      const r = await call<{ deviceId: string; device?: PairedDevice }>(`device.pair.${sub}`, {
        requestId: req.requestId,
      });
      if (o.json) return out(r), Exit.OK;
      const who = `device ${r.deviceId.slice(0, 8)}${nameOf(req) === "-" ? "" : ` ${nameOf(req)}`}`;
      if (sub === "approve") {
        const granted = r.device?.approvedScopes ?? req.scopes;
        console.log(
          `${green("approved")} request ${req.requestId.slice(0, 8)}: ${who}, role ${req.role}, ` +
            `scopes ${scopeWords(granted)}`,
        );
      } else console.log(`${yellow("rejected")} request ${req.requestId.slice(0, 8)}: ${who}`);
      return Exit.OK;
    }
    const dev = resolveDevice(list, ref!);
    const short = dev.deviceId.slice(0, 8);
    if (sub === "remove") {
      const r = await call<{ removed?: boolean }>("device.pair.remove", {
        deviceId: dev.deviceId,
      });
      if (o.json) return out(r), Exit.OK;
      console.log(
        r.removed === false
          ? `device ${short} was not paired`
          : `${green("removed")} device ${short} ${dim(nameOf(dev))}; its tokens no longer work`,
      );
      return Exit.OK;
    }
    if (sub === "rotate") {
      const params: Record<string, unknown> = { deviceId: dev.deviceId, role };
      if (scopes) params.scopes = scopes;
      const r = await call<{ token: string; role: string; scopes?: string[] }>(
        "device.token.rotate",
        params,
      );
      if (o.json) return out(r), Exit.OK;
      console.log(
        `${green("rotated")} the ${r.role} token of device ${short} (scopes ${
          scopeWords(r.scopes)
        }); the old one no longer works. The new token, shown only now:`,
      );
      console.log(r.token);
      return Exit.OK;
    }
    const r = await call<{ role?: string }>("device.token.revoke", {
      deviceId: dev.deviceId,
      role,
    });
    if (o.json) return out(r), Exit.OK;
    console.log(`${yellow("revoked")} the ${r.role ?? role} token of device ${short}`);
    return Exit.OK;
  } catch (e) {
    if (e instanceof LookupError) return reportLookupError(e, o.json);
    return reportRequestError(e, method, conn, o.json);
  } finally {
    await conn.client.close().catch(() => {});
  }
}

// ------------------------------------------------------------------ gw pair

function hostName(): string | undefined {
  try {
    return Deno.hostname();
  } catch {
    return undefined;
  }
}

/** Sleep `ms`. */
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * `gw pair <url>`: pair this machine's device identity with the gateway at
 * `url`, waiting for the owner's approval, and keep the device token.
 * Returns 0 once paired, 1 when no approval came in time (or the gateway
 * issued no token), 3 when it cannot connect or the secret is wrong.
 *
 * @throws {UsageError} for a mistake in the arguments (exit 2).
 */
export async function runPair(args: string[], o: DevicesOptions): Promise<number> {
  checkFlags("pair", o.flags, PAIR_FLAGS);
  const [arg, ...extra] = args;
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (arg !== undefined && o.url !== undefined && arg !== o.url) {
    throw new UsageError(`two URLs: '${arg}' and --url '${o.url}'`);
  }
  const urlText = arg ?? o.url;
  if (!urlText) throw new UsageError("usage: gw pair <url> [--token T | --password P]");
  let url: string;
  try {
    const u = new URL(urlText);
    if (u.protocol !== "ws:" && u.protocol !== "wss:") throw new Error("not ws");
    url = urlText;
  } catch {
    throw new UsageError(
      `expected a gateway URL such as ws://gateway.lan:18789 or wss://..., got '${urlText}'`,
    );
  }
  const waitMs = waitFlag(o.timeout);
  const scopesText = strFlag(o.flags, "scopes");
  const scopes = scopesText === undefined ? [...DEFAULT_OPERATOR_SCOPES] : parseScopes(scopesText);
  const role = roleFlag(o.flags);
  const name = strFlag(o.flags, "name")?.trim() || hostName();
  const t = await resolveTarget({ ...o, url, timeout: undefined });
  if (!t.token && !t.password) {
    throw new UsageError(
      "gw pair needs the gateway's shared secret once: --token T or --password P (or GW_TOKEN)",
    );
  }
  const stateDir = resolveStateDir(o.stateDir);
  const had = await new FileIdentityStorage(stateDir).load().catch(() => null);
  const { identity, storage } = await loadCliIdentity(stateDir);
  // Progress goes to stderr with --json, so stdout is the one JSON result.
  const say = o.json ? console.error : console.log;
  if (!had) say(dim(`created this machine's device identity in ${tildify(storage.devicePath)}`));
  const short = identity.deviceId.slice(0, 8);
  const deadline = Date.now() + waitMs;
  let announced: string | undefined;
  for (;;) {
    const init: ConstructorParameters<typeof GatewayClient>[0] = {
      url,
      client: {
        id: "cli",
        mode: "cli",
        version: `gw-${VERSION}`,
        ...(name ? { displayName: name } : {}),
      },
      role,
      scopes,
      reconnect: false,
      connectTimeoutMs: 10_000,
      signDevice: deviceAuthHook(identity),
    };
    if (t.token) init.token = t.token;
    if (t.password) init.password = t.password;
    const client = new GatewayClient(init);
    let hello;
    try {
      hello = await client.connect();
    } catch (e) {
      await client.close().catch(() => {});
      const d = e instanceof GatewayRequestError ? e.details : undefined;
      if (d?.code === "PAIRING_REQUIRED") {
        const requestId = String(d.requestId ?? "");
        if (requestId !== announced) {
          if (announced) {
            say(
              yellow(
                `request ${announced} is gone (rejected or expired); the gateway opened request ${requestId}`,
              ),
            );
          }
          say(
            `Pairing requested (request ${requestId}). On the gateway's machine run: ` +
              bold(`gw devices approve ${requestId}`),
          );
          say(
            dim(
              `device ${short}, role ${role}, scopes ${scopeWords(scopes)}; waiting up to ${
                span(waitMs)
              } (Ctrl-C to stop)`,
            ),
          );
          announced = requestId;
        }
        if (Date.now() + PAIR_RETRY_MS > deadline) {
          return fail(
            Exit.ERROR,
            `no approval within ${span(waitMs)} for request ${requestId} (device ${short}); ` +
              "if it was rejected, ask the gateway's owner, then run gw pair again",
            o.json,
          );
        }
        await sleep(PAIR_RETRY_MS);
        continue;
      }
      return fail(Exit.CONNECT, pairError(e, url), o.json);
    }
    await client.close().catch(() => {});
    const auth = hello.auth as Record<string, unknown> | undefined;
    const token = auth?.deviceToken;
    if (typeof token !== "string" || !token) {
      return fail(
        Exit.ERROR,
        `the gateway at ${url} accepted device ${short} but issued no device token ` +
          "(does it support device pairing?)",
        o.json,
      );
    }
    const granted = (Array.isArray(auth?.deviceTokenScopes)
      ? auth.deviceTokenScopes
      : Array.isArray(auth?.scopes)
      ? auth.scopes
      : scopes) as string[];
    const tokenRole = typeof auth?.deviceTokenRole === "string" ? auth.deviceTokenRole : role;
    const issuedAtMs = typeof auth?.issuedAtMs === "number" ? auth.issuedAtMs : Date.now();
    await storage.saveToken(url, { token, role: tokenRole, scopes: [...granted], issuedAtMs });
    if (o.json) {
      console.log(JSON.stringify(
        { ok: true, url, deviceId: identity.deviceId, role: tokenRole, scopes: granted },
        null,
        2,
      ));
      return Exit.OK;
    }
    console.log(
      `${green("paired:")} device ${identity.deviceId} with scopes ${granted.join(", ") || "-"}`,
    );
    console.log(
      dim(
        `device token kept in ${tildify(storage.tokensPath)}; ` +
          `gw call/health/status --url ${url} now work without --token`,
      ),
    );
    return Exit.OK;
  }
}

function pairError(e: unknown, url: string): string {
  if (e instanceof GatewayRequestError) {
    const msg = e.message.replace(/^connect failed: /, "");
    const code = String(e.details?.code ?? e.code);
    return code.startsWith("AUTH_")
      ? `cannot authenticate to ${url}: ${msg}\n  pass the gateway's shared secret with --token or --password`
      : `the gateway at ${url} refused the pairing connect: ${msg}`;
  }
  if (e instanceof GatewayConnectError && (e.closeCode === undefined || e.closeCode === 1006)) {
    return `cannot connect to ${url}: nothing answered there`;
  }
  return `cannot connect to ${url}: ${(e as Error).message}`;
}

function fail(code: number, message: string, json: boolean | undefined): number {
  if (json) console.log(JSON.stringify({ ok: false, error: { type: "pair_error", message } }));
  console.error(`${red("gw:")} ${message}`);
  return code;
}
