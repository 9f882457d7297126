/**
 * `gw node` (this machine as a node of a gateway) and `gw nodes` (the
 * gateway owner's view: list, describe, invoke, approve, reject).
 *
 * `gw nodes` goes through `node.list`, `node.describe`, `node.invoke` and
 * `node.pair.*`; node and request ids may be any unique prefix (resolved
 * through `node.list` and `node.pair.list`).
 *
 * @module
 */
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
import { relativeTime, shortIds } from "./devices.ts";
import { resolveStateDir } from "./paths.ts";
import { bold, dim, green, red, table, yellow } from "./style.ts";

/** The flags as `node:util` parseArgs gave them, by their command-line names. */
export type NodeFlags = Readonly<Record<string, string | boolean | undefined>>;

/** Options of {@link runNodes} and {@link runNode}. */
export interface NodesOptions extends CallOptions {
  /** Every flag given, by its command-line name. */
  flags: NodeFlags;
}

/** A node as `node.list` returns it (fields the gateway may leave out are optional). */
export interface NodeInfo {
  nodeId: string;
  displayName?: string;
  platform?: string;
  connected?: boolean;
  paired?: boolean;
  commands?: string[];
  caps?: string[];
  remoteIp?: string;
  connectedAtMs?: number;
  lastSeenAtMs?: number;
  [k: string]: unknown;
}

/** A pending node pairing request as `node.pair.list` returns it. */
export interface NodePairRequest {
  requestId: string;
  nodeId?: string;
  deviceId?: string;
  displayName?: string;
  platform?: string;
  remoteIp?: string;
  createdAtMs?: number;
  [k: string]: unknown;
}

const SUBCOMMANDS = ["list", "describe", "invoke", "approve", "reject"] as const;
type Sub = typeof SUBCOMMANDS[number];
const ALIASES: Record<string, Sub> = { ls: "list", show: "describe", call: "invoke" };
const CLIENT = ["url", "token", "password", "state-dir", "help", "json", "timeout"];
const NODE_FLAGS = ["url", "token", "password", "state-dir", "help", "name"];

function checkFlags(what: string, f: NodeFlags, allowed: string[]): void {
  for (const [k, v] of Object.entries(f)) {
    if (v === undefined || allowed.includes(k)) continue;
    throw new UsageError(`${what} does not take --${k}`);
  }
}

// ------------------------------------------------------------------ formatting

function nameOf(n: { displayName?: unknown; platform?: unknown }): string {
  const name = typeof n.displayName === "string"
    ? n.displayName.trim().replace(/\s+/g, " ").slice(0, 32)
    : "";
  const platform = typeof n.platform === "string" ? n.platform.trim() : "";
  if (name && platform) return `${name} (${platform})`;
  return name || platform || "-";
}

function nodesOf(r: unknown): NodeInfo[] {
  const list = Array.isArray(r) ? r : (r as { nodes?: unknown })?.nodes;
  return Array.isArray(list) ? list as NodeInfo[] : [];
}

function pendingOf(r: unknown): NodePairRequest[] {
  const list = Array.isArray(r) ? r : (r as { pending?: unknown })?.pending;
  return Array.isArray(list) ? list as NodePairRequest[] : [];
}

/** The table of `gw nodes list`. */
export function formatNodes(nodes: NodeInfo[], pending: NodePairRequest[] = []): string {
  const now = Date.now();
  const out: string[] = [bold(`Nodes (${nodes.length})`)];
  if (!nodes.length) out.push(dim("  none"));
  else {
    const ids = shortIds(nodes.map((n) => n.nodeId));
    out.push(table(
      ["NODE", "NAME", "STATUS", "COMMANDS", "ADDRESS", "SINCE"],
      nodes.map((n) => [
        ids.get(n.nodeId)!,
        nameOf(n),
        n.connected === false ? "offline" : "connected",
        (n.commands ?? []).join(",") || "-",
        n.remoteIp ?? "-",
        relativeTime(n.connectedAtMs ?? n.lastSeenAtMs, now),
      ]),
    ));
  }
  if (pending.length) {
    const ids = shortIds(pending.map((p) => p.requestId));
    out.push("", bold(`Pending node requests (${pending.length})`));
    out.push(table(
      ["REQUEST", "NODE", "NAME", "ADDRESS", "REQUESTED"],
      pending.map((p) => [
        ids.get(p.requestId)!,
        String(p.nodeId ?? p.deviceId ?? "-").slice(0, 12),
        nameOf(p),
        p.remoteIp ?? "-",
        relativeTime(p.createdAtMs, now),
      ]),
    ));
    out.push("", dim("approve with: gw nodes approve <REQUEST>   (any unique prefix)"));
  }
  return out.join("\n");
}

/** The one item whose id is `ref` or starts with it. */
function resolveRef<T>(items: T[], ref: string, id: (t: T) => string, what: string): T {
  const q = ref.trim().toLowerCase();
  const exact = items.find((t) => id(t).toLowerCase() === q);
  if (exact) return exact;
  const hits = items.filter((t) => id(t).toLowerCase().startsWith(q));
  if (hits.length === 1) return hits[0]!;
  if (!hits.length) {
    throw new LookupError(`no ${what} has an id starting with '${ref}' (gw nodes list)`);
  }
  const short = shortIds(hits.map(id));
  throw new LookupError(
    `'${ref}' is ambiguous: ${hits.length} ${what} ids start with it (${
      hits.slice(0, 5).map((h) => short.get(id(h))).join(", ")
    }); give more of the id`,
  );
}

/** Print a `system.run` result the way a terminal shows a command's output. */
function printRun(p: Record<string, unknown>): number {
  if (typeof p.stdout === "string") Deno.stdout.writeSync(new TextEncoder().encode(p.stdout));
  if (typeof p.stderr === "string") Deno.stderr.writeSync(new TextEncoder().encode(p.stderr));
  const notes: string[] = [];
  if (p.timedOut) notes.push("timed out");
  if (p.truncated) notes.push("output truncated");
  if (p.signal) notes.push(`killed by ${p.signal}`);
  if (typeof p.exitCode === "number" && p.exitCode !== 0) notes.push(`exit ${p.exitCode}`);
  if (notes.length) console.error(yellow(`[${notes.join(", ")}]`));
  return p.exitCode === 0 ? Exit.OK : Exit.ERROR;
}

// ------------------------------------------------------------------ gw nodes

/**
 * `gw nodes [list|describe|invoke|approve|reject] ...`. Returns the exit
 * code: 0 ok, 1 error response (or an unknown or ambiguous id, or a command
 * that ran and failed), 3 cannot connect.
 *
 * @throws {UsageError} for a mistake in the arguments (exit 2).
 */
export async function runNodes(args: string[], o: NodesOptions): Promise<number> {
  const [word = "list", ...rest] = args;
  const sub = ALIASES[word] ?? word as Sub;
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new UsageError(`unknown nodes command '${word}' (expected ${SUBCOMMANDS.join(", ")})`);
  }
  checkFlags(`nodes ${sub}`, o.flags, CLIENT);
  let params: unknown = undefined;
  if (sub === "list") {
    if (rest.length) throw new UsageError(`nodes list takes no arguments`);
  } else if (sub === "invoke") {
    if (rest.length < 2 || rest.length > 3) {
      throw new UsageError(
        `usage: gw nodes invoke NODE COMMAND [params-json]   ` +
          `(e.g. gw nodes invoke ab12 system.run '{"argv":["uname","-a"]}')`,
      );
    }
    if (rest[2] !== undefined) {
      try {
        params = JSON.parse(rest[2]);
      } catch (e) {
        throw new UsageError(`params must be JSON, e.g. '{"name":"git"}': ${(e as Error).message}`);
      }
    }
  } else {
    const what = sub === "describe" ? "NODE" : "REQUEST";
    if (rest.length !== 1 || !rest[0]!.trim()) {
      throw new UsageError(`usage: gw nodes ${sub} ${what} (an id or a unique prefix)`);
    }
  }
  // An invocation may wait for a person's approval: give it time by default.
  const conn = await connectClient(o, sub === "invoke" ? { defaultTimeoutMs: 300_000 } : {});
  if (typeof conn === "number") return conn;
  let method = "node.list";
  const call = async <T>(m: string, p: unknown): Promise<T> => {
    method = m;
    return await conn.client.request(m, p as never, { timeoutMs: conn.timeoutMs }) as T;
  };
  const out = (v: unknown) => console.log(JSON.stringify(v, null, 2));
  try {
    if (sub === "approve" || sub === "reject") {
      const list = await call<unknown>("node.pair.list", {});
      const req = resolveRef(pendingOf(list), rest[0]!, (p) => p.requestId, "pending node request");
      const r = await call<Record<string, unknown>>(`node.pair.${sub}`, {
        requestId: req.requestId,
      });
      if (o.json) return out(r), Exit.OK;
      const who = `node ${String(r.nodeId ?? req.nodeId ?? req.deviceId ?? "?").slice(0, 12)}`;
      console.log(
        sub === "approve"
          ? `${green("approved")} request ${req.requestId.slice(0, 8)}: ${who} ${dim(nameOf(req))}`
          : `${yellow("rejected")} request ${req.requestId.slice(0, 8)}: ${who}`,
      );
      return Exit.OK;
    }
    const listed = await call<unknown>("node.list", {});
    const nodes = nodesOf(listed);
    if (sub === "list") {
      let pending: NodePairRequest[] = [];
      try {
        pending = pendingOf(await call<unknown>("node.pair.list", {}));
      } catch { /* no pairing scope, or not offered: the nodes alone */ }
      if (o.json) out(listed);
      else console.log(formatNodes(nodes, pending));
      return Exit.OK;
    }
    const node = resolveRef(nodes, rest[0]!, (n) => n.nodeId, "node");
    if (sub === "describe") {
      out(await call<unknown>("node.describe", { nodeId: node.nodeId }));
      return Exit.OK;
    }
    const command = rest[1]!;
    const r = await call<unknown>("node.invoke", {
      nodeId: node.nodeId,
      command,
      params: params ?? {},
      idempotencyKey: crypto.randomUUID(),
    });
    const payload = (r as { payload?: unknown })?.payload ?? r;
    if (o.json) return out(r), Exit.OK;
    if (command === "system.run" && payload && typeof payload === "object") {
      return printRun(payload as Record<string, unknown>);
    }
    out(payload);
    return Exit.OK;
  } catch (e) {
    if (e instanceof LookupError) return reportLookupError(e, o.json);
    return reportRequestError(e, method, conn, o.json);
  } finally {
    await conn.client.close().catch(() => {});
  }
}

// ------------------------------------------------------------------ gw node

/**
 * `gw node --url URL [--token T] [--name N] [--state-dir D]`: run this
 * machine as a node of the gateway at URL until SIGINT or SIGTERM. Progress
 * goes to stderr. Returns 0 when stopped.
 *
 * @throws {UsageError} for a mistake in the arguments (exit 2).
 */
export async function runNode(args: string[], o: NodesOptions): Promise<number> {
  if (args.length) throw new UsageError(`node takes no arguments, got '${args.join(" ")}'`);
  checkFlags("node", o.flags, NODE_FLAGS);
  if (o.token && o.password) throw new UsageError("pass --token or --password, not both");
  const t = await resolveTarget({ ...o, timeout: undefined });
  const stateDir = resolveStateDir(o.stateDir);
  const { runNodeHost } = await import("../node/host.ts");
  const ac = new AbortController();
  const stop = () => ac.abort();
  const sigs: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of sigs) Deno.addSignalListener(s, stop);
  const name = strFlag(o.flags, "name");
  try {
    await runNodeHost({
      url: t.url,
      token: t.token,
      password: t.password,
      stateDir,
      name,
      signal: ac.signal,
      log: (line) => console.error(`${dim(new Date().toISOString().slice(11, 19))} ${line}`),
    });
  } catch (e) {
    console.error(`${red("gw:")} ${(e as Error).message}`);
    return Exit.ERROR;
  } finally {
    for (const s of sigs) Deno.removeSignalListener(s, stop);
  }
  console.error(dim("node stopped"));
  return Exit.OK;
}
