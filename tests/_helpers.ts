/**
 * Test helpers: a real gateway on a free port with its own state dir, and a
 * raw protocol client that shows every frame and close code.
 */
import { type Gateway, type GatewayOptions, startGateway } from "../lib/server/gateway.ts";
import { methods } from "../methods/mod.ts";
import type { Clock } from "../lib/clock.ts";

/** The token test gateways use unless told otherwise. */
export const TEST_TOKEN = "test-token-0123456789abcdef";

/** Options of {@link startTestGateway}. */
export interface TestGatewayOptions extends Partial<Omit<GatewayOptions, "methods">> {
  /** Written to `<state>/gw.json` before start. */
  config?: Record<string, unknown>;
  clock?: Clock;
}

/** A gateway for one test; `await using` stops it and removes its state. */
export interface TestGateway extends AsyncDisposable {
  gw: Gateway;
  url: string;
  port: number;
  stateDir: string;
  token: string;
  stop(): Promise<void>;
}

/** Start a gateway on 127.0.0.1 with a free port, a fresh state dir and token auth. */
export async function startTestGateway(opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const stateDir = opts.stateDir ?? await Deno.makeTempDir({ prefix: "gw-test-" });
  if (opts.config) {
    await Deno.writeTextFile(`${stateDir}/gw.json`, JSON.stringify(opts.config, null, 2));
  }
  const { config: _c, ...rest } = opts;
  const token = opts.password ? "" : opts.token ?? TEST_TOKEN;
  const gw = await startGateway({
    port: 0,
    bind: "127.0.0.1",
    logToStderr: false,
    ...(opts.password ? {} : { token }),
    ...rest,
    stateDir,
    methods,
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await gw.shutdown("test done");
    if (!opts.stateDir) await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  };
  return { gw, url: gw.url, port: gw.port, stateDir, token, stop, [Symbol.asyncDispose]: stop };
}

/** Params of a connect, with test defaults filled in. */
export function connectParams(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    minProtocol: 3,
    maxProtocol: 4,
    client: { id: "cli", version: "test", platform: "linux", mode: "cli" },
    role: "operator",
    scopes: ["operator.admin"],
    auth: { token: TEST_TOKEN },
    ...over,
  };
}

// deno-lint-ignore no-explicit-any
export type AnyFrame = any;

/** A raw protocol client: frames in order, close code and reason. */
export class RawClient {
  readonly ws: WebSocket;
  readonly frames: AnyFrame[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: { pred: (f: AnyFrame) => boolean; resolve: (f: AnyFrame) => void }[] = [];
  #n = 0;
  isClosed = false;

  constructor(url: string, protocols?: string | string[], init?: { headers?: HeadersInit }) {
    // Deno's WebSocket accepts headers in its second argument (an Origin, for example).
    this.ws = init
      ? new WebSocket(url, { protocols, headers: init.headers } as unknown as string[])
      : new WebSocket(url, protocols);
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error("websocket error"));
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.ws.onclose = (e) => {
        this.isClosed = true;
        resolve({ code: e.code, reason: e.reason });
      };
    });
    this.ws.onmessage = (e) => {
      let f: AnyFrame;
      try {
        f = JSON.parse(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data));
      } catch {
        return;
      }
      this.frames.push(f);
      for (const w of [...this.#waiters]) {
        if (w.pred(f)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(f);
        }
      }
    };
  }

  /** Wait for the first frame (already received or not) that matches. */
  next(pred: (f: AnyFrame) => boolean, timeoutMs = 5000): Promise<AnyFrame> {
    const seen = this.frames.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (f: AnyFrame) => (clearTimeout(t), resolve(f)) };
      const t = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(
          new Error(
            `no matching frame within ${timeoutMs} ms; got ${
              JSON.stringify(this.frames).slice(0, 500)
            }`,
          ),
        );
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  /** Wait for the next event named `name` after the frames seen so far. */
  nextEvent(name: string, timeoutMs = 5000): Promise<AnyFrame> {
    const after = this.frames.length;
    return this.next(
      (f) => f.type === "event" && f.event === name && this.frames.indexOf(f) >= after,
      timeoutMs,
    );
  }

  /** The challenge event. */
  challenge(): Promise<AnyFrame> {
    return this.next((f) => f.event === "connect.challenge");
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** Send a request and wait for its response frame. */
  request(method: string, params?: unknown, id = `r${++this.#n}`): Promise<AnyFrame> {
    this.send(
      params === undefined ? { type: "req", id, method } : { type: "req", id, method, params },
    );
    return this.next((f) => f.type === "res" && f.id === id);
  }

  /** Send connect (after the challenge) and return its response frame. */
  async connect(params: Record<string, unknown> = connectParams()): Promise<AnyFrame> {
    await this.challenge();
    return this.request("connect", params, "connect");
  }

  close(): Promise<{ code: number; reason: string }> {
    if (!this.isClosed) this.ws.close();
    return this.closed;
  }
}

/** Open a socket, complete the handshake, and assert hello-ok. */
export async function connected(
  url: string,
  over: Record<string, unknown> = {},
): Promise<RawClient> {
  const c = new RawClient(url);
  const res = await c.connect(connectParams(over));
  if (!res.ok) {
    await c.close();
    throw new Error(`connect failed: ${JSON.stringify(res.error)}`);
  }
  return c;
}

/**
 * `deno run` arguments that run gw exactly as `deno task gw` does: the flags
 * come from deno.json's `gw` task (`deno run <flags> main.ts`), the one place
 * they are defined (compile.sh reads them too).
 */
export function gwRunArgs(...args: string[]): string[] {
  const root = new URL("..", import.meta.url).pathname;
  const task = JSON.parse(Deno.readTextFileSync(`${root}deno.json`)).tasks.gw as string;
  const m = /^deno run (.+) main\.ts$/.exec(task);
  if (!m) throw new Error(`deno.json tasks.gw must read "deno run <flags> main.ts", got "${task}"`);
  return ["run", ...m[1]!.split(/\s+/), "main.ts", ...args];
}

/** Sockets of one test; `await using` closes every one of them, even when an assert fails. */
export function sockets(): {
  open(url: string, headers?: HeadersInit): RawClient;
  connected(url: string, over?: Record<string, unknown>): Promise<RawClient>;
  [Symbol.asyncDispose](): Promise<void>;
} {
  const all: RawClient[] = [];
  const track = (c: RawClient) => (all.push(c), c);
  return {
    /** A raw socket, optionally with request headers (Origin, X-Forwarded-For...). */
    open: (url, headers) =>
      track(headers ? new RawClient(url, undefined, { headers }) : new RawClient(url)),
    /** A socket past hello-ok (throws with the error otherwise). */
    connected: async (url, over = {}) => track(await connected(url, over)),
    async [Symbol.asyncDispose]() {
      await Promise.all(all.map((c) => c.close()));
    },
  };
}

/** The sockets of one test, as {@link sockets} returns them. */
export type Sockets = ReturnType<typeof sockets>;

/** The close of `c`; fails instead of hanging when the server never closes it. */
export async function closedWithin(
  c: RawClient,
  ms = 5000,
): Promise<{ code: number; reason: string }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the gateway did not close the socket within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([c.closed, late]);
  } catch (e) {
    await c.close();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** Call `method` and return its payload, failing the test on an error answer. */
export async function ok(c: RawClient, method: string, params?: unknown): Promise<AnyFrame> {
  const res = await c.request(method, params);
  if (res.ok !== true) throw new Error(`${method} failed: ${JSON.stringify(res.error)}`);
  return res.payload;
}

/** Call `method` and return the error, failing the test when the call succeeds. */
export async function err(c: RawClient, method: string, params?: unknown): Promise<AnyFrame> {
  const res = await c.request(method, params);
  if (res.ok !== false) {
    throw new Error(`${method} unexpectedly succeeded: ${JSON.stringify(res.payload)}`);
  }
  return res.error;
}

let denoDirCache: string | undefined;

/** The DENO_DIR this process uses, so child processes share its module and npm caches. */
export async function denoDir(): Promise<string> {
  if (denoDirCache) return denoDirCache;
  const fromEnv = Deno.env.get("DENO_DIR");
  if (fromEnv) return (denoDirCache = fromEnv);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).output();
  denoDirCache = JSON.parse(new TextDecoder().decode(out.stdout)).denoDir as string;
  return denoDirCache;
}

/**
 * Open a socket and connect with a freshly generated, signed device identity
 * (as a node must). On direct loopback with the shared token it is paired
 * silently. Fails the test when the connect is refused.
 */
export async function signedConnected(
  url: string,
  over: Record<string, unknown> = {},
): Promise<RawClient> {
  const { DeviceIdentity } = await import("../lib/client/identity.ts");
  const id = await DeviceIdentity.generate();
  const c = new RawClient(url);
  const ch = (await c.challenge()).payload;
  const params = connectParams(over) as AnyFrame;
  params.device = await id.sign({
    challenge: ch,
    clientId: params.client.id,
    clientMode: params.client.mode,
    role: params.role ?? "operator",
    scopes: params.scopes ?? [],
    token: params.auth?.token ?? params.auth?.deviceToken ?? "",
    platform: params.client.platform,
    deviceFamily: params.client.deviceFamily,
  });
  const res = await c.connect(params);
  if (!res.ok) {
    await c.close();
    throw new Error(`signed connect failed: ${JSON.stringify(res.error)}`);
  }
  return c;
}

/**
 * Poll `fn` every `everyMs` until it returns something truthy and resolve
 * with it; fail after `timeoutMs`, saying what did not happen.
 */
export async function until<T>(
  fn: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * A seeded PRNG (mulberry32): floats in [0, 1), the same sequence for the same
 * seed, so a failing randomized run can be repeated with its seed.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
