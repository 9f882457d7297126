/**
 * The node host (`gw node`): this machine as a node of a gateway. It connects
 * with role `node` and a signed device identity, waits for the gateway
 * owner's approval when the device is not paired yet, then serves the
 * gateway's `node.invoke.request` events (`system.run`, `system.which`,
 * `system.info`) and answers each with `node.invoke.result`.
 *
 * `system.run` runs only what the gateway has already had approved: the
 * binary must be an absolute path that is its own real path and executable;
 * it runs in the sandbox of lib/exec/sandbox.ts.
 *
 * @module
 */
import { GatewayClient, GatewayRequestError } from "../client/client.ts";
import type { ClientState } from "../client/client.ts";
import { deviceAuthHook } from "../client/identity.ts";
import type { ConnectParams } from "../protocol/types.ts";
import { FileIdentityStorage, loadCliIdentity } from "../cli/identity.ts";
import { resolveBinary } from "../exec/command.ts";
import { runSandboxed } from "../exec/sandbox.ts";
import { VERSION } from "../version.ts";

/** The commands a node host serves. */
export const NODE_COMMANDS: readonly string[] = ["system.run", "system.which", "system.info"];
/** The capabilities a node host announces. */
export const NODE_CAPS: readonly string[] = ["system"];
/** Most invocations run at once; the rest wait their turn. */
const MAX_CONCURRENT = 4;
/** Most bytes kept per output stream of `system.run`. */
const MAX_OUTPUT_BYTES = 64 * 1024;
/** How often a connect waiting for approval is tried again. */
const PAIRING_RETRY_MS = 2000;
/** Default and upper bound of a `system.run` timeout. */
const DEFAULT_RUN_TIMEOUT_MS = 30_000;
const MAX_RUN_TIMEOUT_MS = 3_600_000;

/** Options of {@link runNodeHost}. */
export interface NodeHostOptions {
  /** Gateway URL, e.g. `ws://gateway.lan:18789`. */
  url: string;
  /** The gateway's shared token; needed until the node holds a device token. */
  token?: string | undefined;
  /** The gateway's shared password, instead of a token. */
  password?: string | undefined;
  /** The node's state dir; its identity and device token live in `<stateDir>/identity`. */
  stateDir: string;
  /** The node's display name. @default {the host name} */
  name?: string | undefined;
  /** Aborting disconnects and makes {@link runNodeHost} resolve. */
  signal?: AbortSignal | undefined;
  /** Where progress lines go (the CLI passes a stderr writer). */
  log: (line: string) => void;
}

/** An invocation as the gateway sends it in `node.invoke.request`. */
export interface InvokeRequest {
  id: string;
  nodeId: string;
  command: string;
  params?: unknown;
  timeoutMs?: number;
}

/** The answer to one invocation: a payload, or an error with a code. */
export type InvokeOutcome =
  | { ok: true; payload: unknown }
  | { ok: false; error: { code: string; message: string } };

/** An invocation the node refuses or cannot carry out; `code` goes to the gateway. */
export class NodeCommandError extends Error {
  override readonly name = "NodeCommandError";
  /** A machine-readable code such as `INVALID_PARAMS`. */
  readonly code: string;
  /** Create the error. */
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

function _sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

function _hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

function _obj(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new NodeCommandError("INVALID_PARAMS", `${what}: expected an object, got ${_kind(v)}`);
  }
  return v as Record<string, unknown>;
}

function _kind(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

function _homeDir(): string {
  const home = Deno.env.get("HOME");
  return home && home.startsWith("/") ? home : "/";
}

/** `system.which {name}` → `{path}`: the real path `name` resolves to on this node, or null. */
async function _which(params: Record<string, unknown>): Promise<unknown> {
  const name = params.name;
  if (typeof name !== "string" || !name) {
    throw new NodeCommandError(
      "INVALID_PARAMS",
      `params.name: expected a program name, got ${_kind(name)}`,
    );
  }
  const path = await resolveBinary(name, { path: Deno.env.get("PATH") ?? "", cwd: _homeDir() });
  return { path };
}

/** `system.info {}` → what this node is. */
function _info(): unknown {
  let uptimeSeconds: number | null = null;
  try {
    uptimeSeconds = Deno.osUptime();
  } catch { /* no sys permission */ }
  return {
    hostname: _hostname(),
    os: Deno.build.os,
    arch: Deno.build.arch,
    deno: Deno.version.deno,
    uptimeSeconds,
  };
}

/** `system.run {binary, args, cwd, env, timeoutMs}` → the sandboxed run's result. */
async function _run(params: Record<string, unknown>, signal?: AbortSignal): Promise<unknown> {
  const { binary, args = [], cwd, env, timeoutMs } = params;
  if (typeof binary !== "string" || !binary.startsWith("/")) {
    throw new NodeCommandError(
      "INVALID_PARAMS",
      `params.binary: expected an absolute path, got ${JSON.stringify(binary) ?? "nothing"}`,
    );
  }
  if (!Array.isArray(args) || !args.every((a) => typeof a === "string")) {
    throw new NodeCommandError("INVALID_PARAMS", "params.args: expected an array of strings");
  }
  if (cwd !== undefined && (typeof cwd !== "string" || !cwd.startsWith("/"))) {
    throw new NodeCommandError(
      "INVALID_PARAMS",
      `params.cwd: expected an absolute path, got ${JSON.stringify(cwd)}`,
    );
  }
  const envObj = env === undefined ? { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" } : env;
  if (
    typeof envObj !== "object" || envObj === null || Array.isArray(envObj) ||
    !Object.values(envObj).every((v) => typeof v === "string")
  ) {
    throw new NodeCommandError("INVALID_PARAMS", "params.env: expected an object of strings");
  }
  const ms = timeoutMs === undefined ? DEFAULT_RUN_TIMEOUT_MS : timeoutMs;
  if (typeof ms !== "number" || !Number.isInteger(ms) || ms < 1 || ms > MAX_RUN_TIMEOUT_MS) {
    throw new NodeCommandError(
      "INVALID_PARAMS",
      `params.timeoutMs: expected an integer from 1 to ${MAX_RUN_TIMEOUT_MS}, got ${
        JSON.stringify(ms)
      }`,
    );
  }
  // The approval pinned this exact file: it must still be its own real path and executable.
  const real = await resolveBinary(binary, { path: "", cwd: "/" });
  if (real !== binary) {
    throw new NodeCommandError(
      "NOT_EXECUTABLE",
      real === null
        ? `${binary} is not an executable file on this node`
        : `${binary} is not a real path on this node (it resolves to ${real})`,
    );
  }
  let r;
  try {
    r = await runSandboxed({
      binary,
      args: args as string[],
      cwd: (cwd as string | undefined) ?? _homeDir(),
      env: envObj as Record<string, string>,
      timeoutMs: ms,
      maxOutputBytes: MAX_OUTPUT_BYTES,
      ...(signal ? { signal } : {}),
    });
  } catch (e) {
    throw new NodeCommandError("RUN_FAILED", (e as Error).message, { cause: e });
  }
  return {
    exitCode: r.code,
    signal: r.signal,
    stdout: r.stdout,
    stderr: r.stderr,
    truncated: r.truncated,
    timedOut: r.timedOut,
    durationMs: Math.round(r.durationMs),
  };
}

/**
 * Carry out one invocation on this machine. Never throws: a refusal or a
 * failure is an `{ok:false, error}` outcome.
 *
 * @example
 * ```ts ignore
 * const r = await handleInvoke({ id: "1", nodeId: "n", command: "system.which", params: { name: "sh" } });
 * // { ok: true, payload: { path: "/usr/bin/sh" } }
 * ```
 */
export async function handleInvoke(
  req: InvokeRequest,
  signal?: AbortSignal,
): Promise<InvokeOutcome> {
  try {
    const params = _obj(req.params, "params");
    let payload: unknown;
    switch (req.command) {
      case "system.which":
        payload = await _which(params);
        break;
      case "system.info":
        payload = _info();
        break;
      case "system.run":
        payload = await _run(params, signal);
        break;
      default:
        throw new NodeCommandError(
          "UNKNOWN_COMMAND",
          `command: expected one of ${NODE_COMMANDS.join(", ")}, got ${
            JSON.stringify(req.command)
          }`,
        );
    }
    return { ok: true, payload };
  } catch (e) {
    const code = e instanceof NodeCommandError ? e.code : "NODE_ERROR";
    return { ok: false, error: { code, message: (e as Error)?.message ?? String(e) } };
  }
}

/** A counting semaphore: at most `max` holders, the rest wait in order. */
class _Limiter {
  #free: number;
  #queue: (() => void)[] = [];
  constructor(max: number) {
    this.#free = max;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#queue.push(r));
    try {
      return await fn();
    } finally {
      const next = this.#queue.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

function _isRequest(v: unknown): v is InvokeRequest {
  const r = v as InvokeRequest | null;
  return !!r && typeof r === "object" && typeof r.id === "string" &&
    typeof r.nodeId === "string" && typeof r.command === "string";
}

function _pairingRequestId(e: unknown): string | undefined {
  if (!(e instanceof GatewayRequestError)) return undefined;
  if (e.details?.code !== "PAIRING_REQUIRED") return undefined;
  return String(e.details.requestId ?? "");
}

/**
 * Run the node host until `signal` aborts: connect (retrying forever with
 * backoff), wait for pairing approval when needed (printing the approve
 * command once per request), then serve invocations, at most 4 at a time.
 * The first connect uses the shared secret; once paired, the device token
 * the gateway issues is kept in `<stateDir>/identity/tokens.json` and used
 * from then on.
 *
 * @example
 * ```ts ignore
 * const ac = new AbortController();
 * Deno.addSignalListener("SIGINT", () => ac.abort());
 * await runNodeHost({ url: "ws://127.0.0.1:18789", token: "T", stateDir: "/tmp/node",
 *   signal: ac.signal, log: console.error });
 * ```
 */
export async function runNodeHost(o: NodeHostOptions): Promise<void> {
  const { identity } = await loadCliIdentity(o.stateDir);
  const storage = new FileIdentityStorage(o.stateDir);
  const sign = deviceAuthHook(identity);
  const name = o.name?.trim() || _hostname();
  const short = identity.deviceId.slice(0, 12);
  const limiter = new _Limiter(MAX_CONCURRENT);
  const inflight = new AbortController();
  const signal = o.signal;
  signal?.addEventListener("abort", () => inflight.abort(), { once: true });
  let announced: string | undefined;
  const announce = (requestId: string) => {
    if (requestId === announced) return;
    announced = requestId;
    o.log(
      `Waiting for approval: on the gateway run \`gw nodes approve ${requestId}\`` +
        ` (node ${short}, ${name})`,
    );
  };

  let failures = 0;
  while (!signal?.aborted) {
    const init: ConstructorParameters<typeof GatewayClient>[0] = {
      url: o.url,
      client: {
        id: "node-host",
        mode: "node",
        version: `gw-${VERSION}`,
        platform: Deno.build.os,
        displayName: name,
      },
      role: "node",
      scopes: [],
      // The client has no option for caps and commands: they join the params before signing.
      signDevice: (challenge, params: ConnectParams) => {
        params.caps = [...NODE_CAPS];
        params.commands = [...NODE_COMMANDS];
        return sign(challenge, params);
      },
      deviceTokens: storage,
      useDeviceToken: true,
      reconnect: { initialDelayMs: 1000, maxDelayMs: 30_000 },
      connectTimeoutMs: 10_000,
    };
    if (o.token) init.token = o.token;
    if (o.password) init.password = o.password;
    const client = new GatewayClient(init);
    const closed = Promise.withResolvers<Error | undefined>();
    client.onState((state: ClientState, error?: Error) => {
      if (state === "closed") closed.resolve(error);
      else if (state === "reconnecting") {
        const rid = _pairingRequestId(error);
        if (rid !== undefined) announce(rid);
        else if (error) o.log(`connection lost (${error.message}); reconnecting`);
      } else if (state === "connected") {
        announced = undefined;
        o.log(`connected to ${o.url} as node ${short} (${name})`);
      }
    });
    client.on("node.invoke.request", (payload) => {
      if (!_isRequest(payload)) return;
      const req = payload;
      void limiter.run(async () => {
        const started = performance.now();
        const out = await handleInvoke(req, inflight.signal);
        const ms = Math.round(performance.now() - started);
        o.log(
          `${req.command} ${req.id.slice(0, 8)}: ${
            out.ok ? "ok" : `${out.error.code} ${out.error.message}`
          } (${ms} ms)`,
        );
        const result = out.ok
          ? { id: req.id, nodeId: req.nodeId, ok: true, payload: out.payload }
          : { id: req.id, nodeId: req.nodeId, ok: false, error: out.error };
        try {
          await client.request("node.invoke.result", result as never);
        } catch (e) {
          o.log(`could not answer ${req.command} ${req.id.slice(0, 8)}: ${(e as Error).message}`);
        }
      });
    });
    const onAbort = () => void client.close().catch(() => {});
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await client.connect();
      failures = 0;
      const why = await closed.promise; // the client reconnects by itself until a fatal error
      if (why && !signal?.aborted) {
        o.log(`disconnected: ${why.message}`);
        await _sleep(PAIRING_RETRY_MS, signal);
      }
    } catch (e) {
      await client.close().catch(() => {});
      const rid = _pairingRequestId(e);
      if (rid !== undefined) {
        announce(rid);
        await _sleep(PAIRING_RETRY_MS, signal);
        continue;
      }
      if (!signal?.aborted) {
        const delay = Math.min(30_000, 1000 * 2 ** Math.min(failures++, 5));
        o.log(`cannot connect to ${o.url}: ${(e as Error).message}; retrying in ${delay} ms`);
        await _sleep(delay, signal);
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }
}
