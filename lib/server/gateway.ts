/**
 * The gateway: `Deno.serve`, WebSocket upgrade, pre-auth limits, the
 * connect handshake, auth, the scope check, dispatch through the method
 * table, and events fanned out by scope.
 *
 * @module
 */
import { z } from "zod";
import { ConfigFile } from "../config/mod.ts";
import type { GwConfig } from "../config/schema.ts";
import { Store } from "../store/mod.ts";
import { Logger } from "../log.ts";
import { type Clock, systemClock, type TimerHandle } from "../clock.ts";
import { GatewayError, invalidRequest } from "../protocol/errors.ts";
import { connectParamsSchema } from "../protocol/schemas.ts";
import { formatIssue } from "../protocol/validate.ts";
import {
  CloseCode,
  ErrorCode,
  type ErrorShape,
  type EventLoopStats,
  type HelloOk,
  type PresenceEntry,
  PROTOCOL_VERSION,
  PROTOCOL_VERSIONS,
  type Role,
} from "../protocol/types.ts";
import { AuthRateLimiter, constantTimeEqual, sharedSecretScopes } from "./auth.ts";
import type { BroadcastOptions, ConnectionCounts, GatewayContext } from "./context.ts";
import { EventLoopMonitor } from "./event_loop.ts";
import { hasScope, type MethodDef, RawJson, type RequestHandle, requiredScope } from "./method.ts";
import { isLoopback, originAllowed, resolvePeer } from "./net.ts";
import { agentHeartbeat, HeartbeatRunner, heartbeatSettings } from "../heartbeat.ts";
import { Skills } from "../skills/mod.ts";
import { eventScope } from "./events.ts";
import { AgentRuntime } from "../agent/runtime.ts";
import { defaultTools, type ToolRegistry } from "../agent/tools.ts";
import { MediaStore } from "../agent/media.ts";
import { type ChannelHost, ChannelRegistry } from "../../channels/registry.ts";
import { CHANNEL_MODULES } from "../../channels/catalog.ts";
import { Scheduler } from "../cron/scheduler.ts";
import { ExecApprovals } from "../exec/approvals.ts";
import { execTool } from "../exec/tool.ts";
import { type LiveNode, NodeRegistry } from "./nodes.ts";
import { Cluster } from "./cluster.ts";
import { SharedSecret } from "./secret.ts";
import { isUiRequest, serveUi } from "./ui.ts";
import type { HttpApi, HttpAuthResult } from "../http/api.ts";
import { type VerifiedDevice, verifyDevice } from "./device.ts";
import { intersect, mintToken, pairRequestView, tokenMatches } from "./pairing.ts";
import { PAIR_REQUEST_TTL_MS, type PairedDevice, type PairRequest } from "../store/devices.ts";
import type { ConnectParams } from "../protocol/types.ts";

/** The handle one-phase methods get: they answer once, with their result. */
const ONE_PHASE: RequestHandle = {
  id: "",
  interim() {
    throw new Error("interim replies are for methods defined with twoPhase");
  },
};

/** The auth generation of sockets authenticated by a device token (not the shared secret). */
const DEVICE_GENERATION = "device-token";
import {
  byteLength,
  closeReason,
  Conn,
  decoder,
  encoder,
  errorFrame,
  frameProblem,
  PREAUTH_MAX_BYTES,
} from "./connection.ts";

export { closeReason, PREAUTH_MAX_BYTES } from "./connection.ts";
import { KNOWN_METHOD_SCOPES } from "../protocol/known_methods.ts";
import { channelSpeech, Speech } from "../tts/mod.ts";

// zod compiles object parsers with `new Function` on first use; the code costs
// ~1.5 MB of RSS for no measurable gain at our request rates (docs/benchmarks.md).
z.config({ jitless: true });

/** Unauthorized calls tolerated on one socket before it is closed. */
export const MAX_UNAUTHORIZED_CALLS = 10;
/** Frames queued while a connect is being checked. */
const MAX_EARLY_FRAMES = 16;
/**
 * The exit code of `gw start` after a requested restart (update.run): 75
 * (EX_TEMPFAIL), which a supervisor restarts on (systemd `Restart=on-failure`
 * or `always`).
 */
export const RESTART_EXIT_CODE = 75;
/** How long in-flight requests may run once shutdown starts. */
const SHUTDOWN_GRACE_MS = 5_000;
/** Presence entries sent at most (the gateway's own first, then the newest). */
const MAX_PRESENCE = 256;
/**
 * Client modes that make one-shot calls: they are not listed in presence and
 * their comings and goings broadcast nothing (a thousand CLI calls must not
 * cost a thousand full-list broadcasts). They still receive presence events.
 */
const ONE_SHOT_MODES = new Set(["cli", "backend", "probe"]);
/** Placeholder replaced by the cached health JSON in hello-ok. */
const HEALTH_SLOT = "__gw_health_slot__";
/** How long a client over its send-buffer limit has to drain before it is dropped. */
const SLOW_CONSUMER_GRACE_MS = 1_000;
/** Delay before answering a wrong secret, to slow guessing. */
const AUTH_FAILURE_DELAY_MS = 250;

/** Options of {@link startGateway}. */
export interface GatewayOptions {
  /** The state directory; created when missing. */
  stateDir: string;
  /** Port override (flag or env); the config decides when absent. 0 picks a free port. */
  port?: number;
  /** Bind address override. */
  bind?: string;
  /** Token override (flag or env). */
  token?: string;
  /** Password override (flag or env). */
  password?: string;
  /** Time source for tick, health and heartbeats. Default: the system clock. */
  clock?: Clock;
  /** Write log lines to stderr. Default true. */
  logToStderr?: boolean;
  /** gw's version string. */
  version?: string;
  /** The method table. */
  methods: readonly MethodDef[];
  /**
   * A remote KV (KV Connect: `https://…`, token in `DENO_KV_ACCESS_TOKEN`)
   * instead of `<stateDir>/gw.kv` (docs/scaling.md).
   */
  kvUrl?: string;
}

/** Refused start: bad bind, weak secret, bad config. */
export class GatewayStartError extends Error {
  /** Create the error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "GatewayStartError";
  }
}

/**
 * A running gateway.
 *
 * @example
 * ```ts
 * import { methods } from "../../methods/mod.ts";
 * const gw = await startGateway({ stateDir: "/tmp/gw", port: 0, methods });
 * console.log(gw.url);
 * await gw.shutdown("done");
 * ```
 */
export class Gateway implements GatewayContext {
  readonly version: string;
  readonly stateDir: string;
  readonly config: ConfigFile;
  readonly store: Store;
  readonly log: Logger;
  readonly clock: Clock;
  readonly heartbeats: HeartbeatRunner;
  readonly tools: ToolRegistry;
  /** Skills (`<stateDir>/skills/`). */
  readonly skills: Skills;
  /** Attachments' files (`<stateDir>/media/`). */
  readonly media: MediaStore;
  readonly agent: AgentRuntime;
  readonly channels = new ChannelRegistry();
  readonly cron: Scheduler;
  readonly exec: ExecApprovals;
  readonly nodes = new NodeRegistry();
  /** The other gateway processes on this KV, and the events relayed to and from them. */
  readonly cluster: Cluster;
  readonly bootId = crypto.randomUUID();
  /** The token generated on this start, shown once; undefined when one existed. */
  generatedToken: string | undefined;

  #opts: GatewayOptions;
  #methods: Map<string, MethodDef>;
  #methodNames: string[];
  #server: Deno.HttpServer<Deno.NetAddr> | undefined;
  #conns = new Set<Conn>();
  #preauthByIp = new Map<string, number>();
  #limiter: AuthRateLimiter;
  #secret: SharedSecret;
  /** `/v1/*`, `/tools/invoke` and webhooks (lib/http/). */
  /** The HTTP API (lib/http), loaded the first time one of its endpoints is on. */
  #httpApi: Promise<HttpApi> | undefined;
  #startedAt = performance.now();
  #stateVersion = { presence: 0, health: 0 };
  #healthJson = new RawJson("{}");
  #presenceExtra = new Map<string, PresenceEntry>();
  #presenceTimer: ReturnType<typeof setTimeout> | undefined;
  #loop = new EventLoopMonitor();
  #tickTimer: TimerHandle | undefined;
  #healthTimer: TimerHandle | undefined;
  #secretPoll: ReturnType<typeof setInterval> | undefined;
  #appliedTick = 0;
  #appliedHealth = 0;
  /** The configured port and bind the server started with (restartRequired compares). */
  #listenedOn = { port: 0, bind: "" };
  #shuttingDown = false;
  #inflight = 0;
  #closed: Promise<void> | undefined;
  #host = "localhost";
  /** Session count and the most recent keys, for health (refreshed after session changes). */
  #sessions: { count: number; recent: { key: string; updatedAt: number }[] } = {
    count: 0,
    recent: [],
  };
  #sessionsTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    opts: GatewayOptions,
    config: ConfigFile,
    store: Store,
    log: Logger,
  ) {
    this.#opts = opts;
    this.version = opts.version ?? "dev";
    this.stateDir = opts.stateDir;
    this.config = config;
    this.store = store;
    this.log = log;
    this.clock = opts.clock ?? systemClock;
    this.#methods = new Map(opts.methods.map((m) => [m.name, m]));
    this.#methodNames = opts.methods.map((m) => m.name);
    this.#limiter = new AuthRateLimiter(config.config.gateway.authRateLimit);
    const overrides: { token?: string; password?: string } = {};
    if (opts.token) overrides.token = opts.token;
    if (opts.password) overrides.password = opts.password;
    this.#secret = new SharedSecret(opts.stateDir, config, overrides);
    this.heartbeats = new HeartbeatRunner(this.clock, {
      record: async (r) => {
        await this.store.setLastHeartbeat(r);
        this.broadcast("heartbeat", r, { droppable: true });
      },
    });
    this.tools = defaultTools();
    this.skills = new Skills({ stateDir: opts.stateDir, config, log });
    this.tools.register(this.skills.tool());
    this.media = new MediaStore(`${opts.stateDir}/media`);
    this.agent = new AgentRuntime({
      store,
      config: () => this.config.config,
      log,
      emit: (event, payload, droppable) =>
        this.broadcast(event, payload, { droppable: droppable === true }),
      tools: this.tools,
      media: this.media,
      skillsPrompt: () => this.skills.prompt(),
    });
    this.exec = new ExecApprovals({
      store,
      emit: (event, payload) => this.broadcast(event, payload),
    });
    // The agent's exec tool goes through the same approvals as everyone.
    this.tools.register(execTool({
      approvals: this.exec,
      nodes: this.nodes,
      defaultCwd: () => opts.stateDir,
      approvalTimeoutMs: 5 * 60_000,
    }));
    this.cron = new Scheduler({
      store,
      clock: this.clock,
      log,
      runtime: this.agent,
      channels: this.channels,
      defaultAgentId: () => this.#defaultAgentId(),
      emit: (payload) => this.broadcast("cron", payload),
    });
    this.cluster = new Cluster({
      store,
      log,
      version: this.version,
      watch: opts.kvUrl !== undefined,
      deliver: (event, json, droppable) => {
        this.broadcast(event, new RawJson(json), { droppable, fromPeer: true });
        // A job added or changed through another process: arm for it now, not within a minute.
        if (event === "cron") {
          this.cron.arm().catch((e) => this.log.warn("cron: arming failed", { error: e }));
        }
      },
    });
    // A heartbeat is a turn on the agent's main session (lib/heartbeat.ts).
    this.heartbeats.setRunner(agentHeartbeat({
      stateDir: opts.stateDir,
      config: () => this.config.config,
      agent: this.agent,
      store,
      channels: this.channels,
      log,
    }));
    try {
      this.#host = Deno.hostname();
    } catch { /* no sys permission: keep localhost */ }
    const channelHost: ChannelHost = {
      stateDir: opts.stateDir,
      store,
      configFile: config,
      log,
      agent: this.agent,
      media: this.media,
      config: () => this.config.config,
      env: (name) => {
        try {
          return Deno.env.get(name);
        } catch {
          return undefined; // not granted: as if unset
        }
      },
      defaultAgentId: () => this.#defaultAgentId(),
      emit: (event, payload) => this.broadcast(event, payload),
      gatewaySummary: () =>
        `Gateway: gw ${this.version}, up ${Math.round(this.uptimeMs() / 60_000)} min`,
      tts: channelSpeech(new Speech({ config: () => this.config.config, store: store.speech })),
    };
    for (const m of CHANNEL_MODULES) this.channels.register(m.create(channelHost));
  }

  /** Open state, config and store, check the bind, and listen. */
  static async start(opts: GatewayOptions): Promise<Gateway> {
    await Deno.mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
    let config: ConfigFile;
    try {
      config = await ConfigFile.open(`${opts.stateDir}/gw.json`);
    } catch (e) {
      throw new GatewayStartError((e as Error).message, { cause: e });
    }
    const lc = config.config.logging;
    const log = new Logger({
      file: `${opts.stateDir}/logs/gw.log`,
      level: lc.level,
      maxFileBytes: lc.maxFileBytes,
      maxFiles: lc.maxFiles,
      stderr: opts.logToStderr ?? true,
    });
    let store: Store;
    try {
      store = await Store.open(opts.kvUrl ?? `${opts.stateDir}/gw.kv`, opts.version);
    } catch (e) {
      log.close();
      const where = opts.kvUrl ? ` at ${opts.kvUrl}` : "";
      throw new GatewayStartError(`cannot open the store${where}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    const gw = new Gateway(opts, config, store, log);
    try {
      await gw.#listen();
    } catch (e) {
      await gw.cluster.stop();
      store.close();
      log.close();
      throw e;
    }
    return gw;
  }

  async #listen(): Promise<void> {
    const cfg = this.config.config.gateway;
    const bind = this.#opts.bind ?? cfg.bind;
    const port = this.#opts.port ?? cfg.port;
    this.#listenedOn = { port: cfg.port, bind: cfg.bind };
    this.generatedToken = await this.#secret.ensureToken();
    await this.#refreshSecret(true);
    if (!isLoopback(bind)) {
      const s = this.#secret.current;
      if (!s.value || s.value.length < 16) {
        throw new GatewayStartError(
          `refusing to listen on ${bind}: a non-loopback address needs a ${s.mode} of at least 16 characters` +
            ` (set --${s.mode} or gateway.auth.${s.mode} in gw.json), or bind 127.0.0.1`,
        );
      }
    }
    // Runs and inputs in the store belong to a live peer process while one
    // exists: they are recovered by the next process that starts alone.
    await this.cluster.start();
    if (!this.cluster.active) await this.agent.recover();
    await this.#loadSessions();
    await this.cron.start();
    this.#loop.start();
    this.#refreshHealth();
    this.heartbeats.configure(this.config.config, (await this.store.heartbeatsEnabled()) ?? true);
    this.#armTimers();
    this.#secretPoll = setInterval(() => {
      this.#refreshSecret(false).catch((e) =>
        this.log.error("secret refresh failed", { error: e })
      );
    }, 2_000);
    Deno.unrefTimer(this.#secretPoll as unknown as number);
    try {
      this.#server = Deno.serve({
        hostname: bind,
        port,
        onListen: () => {},
        onError: (e) => {
          this.log.error("http handler failed", { error: e });
          return new Response("internal error", { status: 500 });
        },
      }, (req, info) => this.#handle(req, info));
    } catch (e) {
      this.#stopTimers();
      const why = e instanceof Deno.errors.AddrInUse
        ? `port ${port} on ${bind} is already in use (is another gw running? try --port)`
        : (e as Error).message;
      throw new GatewayStartError(`cannot listen: ${why}`, { cause: e });
    }
    // Channels connect in the background; their failures show in channels.status.
    await this.channels.startAll();
    this.log.info("gateway listening", {
      url: this.url,
      stateDir: this.stateDir,
      authMode: this.#secret.current.mode,
      version: this.version,
    });
  }

  /** The WebSocket URL clients connect to. */
  get url(): string {
    const a = this.#server!.addr;
    const host = a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname;
    return `ws://${host === "0.0.0.0" ? "127.0.0.1" : host}:${a.port}`;
  }

  /** The port actually bound. */
  get port(): number {
    return this.#server!.addr.port;
  }

  /** Resolves when the gateway has stopped. */
  get finished(): Promise<void> {
    return this.#closed ?? this.#server!.finished;
  }

  // ---------------------------------------------------------------- secrets

  /**
   * Re-read the secret when its sources changed (config file, token file),
   * and close sockets that authenticated with an older one (4001). A secret
   * given by flag or env cannot change while gw runs, so a connect skips the
   * file checks then (`onConnect`).
   */
  async #refreshSecret(force: boolean, onConnect = false): Promise<void> {
    if (onConnect && this.#secret.current.source === "flag") return;
    const changed = await this.#secret.sourcesChanged();
    if (!force && !changed) return;
    if (!force) {
      try {
        if (await this.config.reload()) await this.applyConfig();
      } catch (e) {
        this.log.error("config file changed but is not valid; keeping the last good config", {
          error: e,
        });
      }
    }
    if (!(await this.#secret.resolve())) return;
    this.log.warn("gateway secret changed; closing sockets that used the old one");
    const generation = this.#secret.current.generation;
    for (const c of this.#conns) {
      // Device-token sockets do not hang on the shared secret.
      if (
        c.state === "open" && c.authGeneration !== DEVICE_GENERATION &&
        c.authGeneration !== generation
      ) {
        // A caller that changed the secret (config.patch) gets its answer first.
        const close = { code: CloseCode.AUTH_CHANGED, reason: "gateway auth changed" };
        if (c.inflight > 0) c.closeWhenIdle = close;
        else c.ws.close(close.code, close.reason);
      }
    }
  }

  // ---------------------------------------------------------------- HTTP

  #handle(
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Response | Promise<Response> {
    const url = new URL(req.url);
    const isUpgrade = req.headers.get("upgrade")?.toLowerCase() === "websocket";
    if (isUpgrade && (url.pathname === "/" || url.pathname === "/v1/connect")) {
      return this.#upgrade(req, info);
    }
    // The Control UI's files (ui/), loaded on first use; a non-browser GET / keeps the JSON below.
    if (isUiRequest(req, url)) return serveUi(req);
    const headers = {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    };
    const json = (status: number, body: unknown) =>
      new Response(JSON.stringify(body), { status, headers });
    switch (url.pathname) {
      case "/health":
      case "/healthz":
        if (req.method !== "GET" && req.method !== "HEAD") {
          return new Response("Method Not Allowed", {
            status: 405,
            headers: { allow: "GET, HEAD" },
          });
        }
        return json(200, { ok: true, status: "live" });
      case "/ready":
      case "/readyz": {
        if (req.method !== "GET" && req.method !== "HEAD") {
          return new Response("Method Not Allowed", {
            status: 405,
            headers: { allow: "GET, HEAD" },
          });
        }
        return this.#readiness().then((failing) =>
          json(failing.length ? 503 : 200, {
            ready: failing.length === 0,
            failing,
            uptimeMs: this.uptimeMs(),
          })
        );
      }
      case "/":
        return json(200, {
          name: "gw",
          version: this.version,
          websocket: "connect with a WebSocket client to this URL",
        });
      default:
        // Channel webhooks (/telegram/...) check their own secrets; so do lib/http's endpoints.
        if (this.#httpFeaturesOn()) return this.#httpRoute(req, url, info);
        return this.channels.http(req, url.pathname) ?? json(404, { error: "not found" });
    }
  }

  /**
   * What keeps this gateway from serving, for `/readyz`: shutting down, or a
   * store that does not answer a read within a second (disk gone, file locked).
   */
  async #readiness(): Promise<string[]> {
    if (this.#shuttingDown) return ["shutting-down"];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ok = await Promise.race([
      this.store.ping().then(() => true, () => false),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), 1_000)),
    ]);
    clearTimeout(timer);
    return ok ? [] : ["store"];
  }

  /** Whether any lib/http endpoint is turned on (all are off by default). */
  #httpFeaturesOn(): boolean {
    const c = this.config.config;
    const e = c.gateway.http.endpoints;
    return e.chatCompletions.enabled || e.toolsInvoke.enabled || c.hooks.enabled;
  }

  /** The HTTP API's answer, else a channel's, else 404. */
  async #httpRoute(
    req: Request,
    url: URL,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response> {
    this.#httpApi ??= import("../http/api.ts").then((m) =>
      new m.HttpApi({
        ctx: this,
        checkSecret: (given, from) => this.#checkHttpSecret(given, from),
      })
    );
    const api = await this.#httpApi;
    const r = api.handle(req, url, info) ?? this.channels.http(req, url.pathname);
    if (r) return await r;
    return new Response(JSON.stringify({ error: "not found" }), {
      status: 404,
      headers: {
        "content-type": "application/json; charset=utf-8",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      },
    });
  }

  #upgrade(req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response {
    if (this.#shuttingDown) {
      return new Response("gateway is shutting down", {
        status: 503,
        headers: { "retry-after": "5" },
      });
    }
    const cfg = this.config.config.gateway;
    const peer = resolvePeer(info.remoteAddr.hostname, req.headers, cfg.trustedProxies);
    const count = this.#preauthByIp.get(peer.ip) ?? 0;
    if (count >= cfg.maxPreauthPerIp) {
      this.log.warn("too many unauthenticated sockets from one address", { ip: peer.ip });
      return new Response("too many unauthenticated connections", { status: 429 });
    }
    let upgraded: { socket: WebSocket; response: Response };
    try {
      // Deno pings idle sockets and drops peers that stop answering (half-open TCP).
      upgraded = Deno.upgradeWebSocket(req, { idleTimeout: 60 });
    } catch {
      return new Response("expected a WebSocket upgrade", { status: 400 });
    }
    this.#preauthByIp.set(peer.ip, count + 1);
    const conn = new Conn(
      upgraded.socket,
      peer,
      req.headers.get("origin"),
      req.headers.get("host"),
    );
    this.#conns.add(conn);
    const ws = conn.ws;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      conn.challengeTs = Date.now();
      ws.send(JSON.stringify({
        type: "event",
        event: "connect.challenge",
        payload: { nonce: conn.nonce, ts: conn.challengeTs },
      }));
      conn.handshakeTimer = setTimeout(() => {
        if (conn.state === "preauth" || conn.state === "checking") {
          this.#closePreauth(conn, CloseCode.NORMAL, "handshake timeout");
        }
      }, cfg.handshakeTimeoutMs);
    };
    ws.onmessage = (ev) => {
      // Deno ends the process on an exception thrown in an event handler: a
      // bug reached by one frame must cost at most that socket.
      try {
        this.#onMessage(conn, ev.data);
      } catch (e) {
        this.log.error("frame handler failed", { connId: conn.id, error: e });
        try {
          ws.close(1011, "internal error");
        } catch { /* already closed */ }
      }
    };
    ws.onclose = () => this.#onClose(conn);
    ws.onerror = () => {};
    return upgraded.response;
  }

  /**
   * Close a socket that has not completed its handshake, freeing its
   * pre-auth slot now: a peer that ignores the close frame would otherwise
   * hold the slot until its TCP connection ends (tests/hostile_test.ts).
   */
  #closePreauth(conn: Conn, code: number, reason: string): void {
    if (conn.state === "preauth" || conn.state === "checking") {
      this.#releasePreauth(conn);
      conn.state = "closed";
    }
    try {
      conn.ws.close(code, reason);
    } catch { /* already closed */ }
  }

  #releasePreauth(conn: Conn): void {
    const n = (this.#preauthByIp.get(conn.peer.ip) ?? 1) - 1;
    if (n <= 0) this.#preauthByIp.delete(conn.peer.ip);
    else this.#preauthByIp.set(conn.peer.ip, n);
  }

  #onClose(conn: Conn): void {
    const was = conn.state;
    const listed = this.#listed(conn);
    conn.state = "closed";
    clearTimeout(conn.handshakeTimer);
    clearTimeout(conn.slowCheck);
    this.#conns.delete(conn);
    if (was === "preauth" || was === "checking") this.#releasePreauth(conn);
    if (was === "open") {
      if (conn.role === "node" && conn.deviceId) this.nodes.remove(conn.deviceId, conn.id);
      this.log.debug("client disconnected", { connId: conn.id, client: conn.client?.id });
      if (listed) this.#schedulePresence();
    }
  }

  // ---------------------------------------------------------------- frames

  #onMessage(conn: Conn, data: unknown): void {
    if (conn.state === "closed") return;
    let text: string;
    if (typeof data === "string") text = data;
    else if (data instanceof ArrayBuffer) text = decoder.decode(data);
    else return;
    if (conn.state === "open") {
      this.#onRequest(conn, text);
      return;
    }
    if (byteLength(text) > PREAUTH_MAX_BYTES) {
      this.#closePreauth(conn, CloseCode.TOO_BIG, "preauth payload too large");
      return;
    }
    if (conn.state === "checking") {
      conn.early ??= [];
      if (conn.early.length >= MAX_EARLY_FRAMES) {
        this.#closePreauth(conn, CloseCode.POLICY, "too many frames before hello-ok");
      } else conn.early.push(text);
      return;
    }
    this.#onConnect(conn, text).catch((e) => {
      this.log.error("connect handler failed", { error: e });
      this.#closePreauth(conn, 1011, "internal error");
    });
  }

  #fail(conn: Conn, id: string | undefined, error: GatewayError, close: number): void {
    if (id !== undefined && conn.ws.readyState === WebSocket.OPEN) {
      conn.ws.send(errorFrame(id, error.toShape()));
    }
    if (conn.ws.readyState === WebSocket.OPEN) {
      this.#closePreauth(conn, close, closeReason(error.message));
    }
  }

  async #onConnect(conn: Conn, text: string): Promise<void> {
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      this.#closePreauth(conn, CloseCode.POLICY, "invalid request frame: malformed JSON");
      return;
    }
    const problem = frameProblem(frame);
    const f = frame as { id?: unknown; method?: unknown; params?: unknown };
    const id = typeof f?.id === "string" && f.id.length > 0 && f.id.length <= 256
      ? f.id
      : undefined;
    if (problem) {
      this.#fail(conn, id, invalidRequest(`invalid request frame: ${problem}`), CloseCode.POLICY);
      return;
    }
    if (f.method !== "connect") {
      this.#fail(
        conn,
        id,
        invalidRequest("invalid handshake: first request must be connect"),
        CloseCode.POLICY,
      );
      return;
    }
    conn.state = "checking";
    try {
      const hello = await this.#authenticate(conn, f.params);
      if (conn.ws.readyState !== WebSocket.OPEN) return;
      clearTimeout(conn.handshakeTimer);
      this.#releasePreauth(conn);
      conn.state = "open";
      conn.connectedAt = Date.now();
      conn.ws.send(`{"type":"res","id":${JSON.stringify(id)},"ok":true,"payload":${hello}}`);
      this.log.debug("client connected", {
        connId: conn.id,
        client: conn.client!.id,
        mode: conn.client!.mode,
        ip: conn.peer.ip,
        protocol: conn.protocol,
      });
      if (this.#listed(conn)) this.#schedulePresence();
      if (conn.role === "node" && conn.deviceId) this.#addNode(conn);
      const early = conn.early ?? [];
      conn.early = undefined;
      for (const t of early) this.#onMessage(conn, t);
    } catch (e) {
      const err = e instanceof GatewayError
        ? e
        : new GatewayError(ErrorCode.UNAVAILABLE, "connect failed");
      if (!(e instanceof GatewayError)) this.log.error("connect failed", { error: e });
      const close = err.details?.code === "PROTOCOL_MISMATCH"
        ? CloseCode.PROTOCOL_ERROR
        : CloseCode.POLICY;
      this.#fail(conn, id, err, close);
    }
  }

  /** Check the connect params and the secret; returns hello-ok as JSON text. */
  async #authenticate(conn: Conn, rawParams: unknown): Promise<string> {
    const parsed = connectParamsSchema.safeParse(rawParams);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw invalidRequest(`invalid connect params: ${formatIssue("params", issue, rawParams)}`);
    }
    const p = parsed.data;
    const lo = Math.max(p.minProtocol, PROTOCOL_VERSIONS[0]!);
    const hi = Math.min(p.maxProtocol, PROTOCOL_VERSION);
    if (lo > hi || !PROTOCOL_VERSIONS.includes(hi)) {
      throw invalidRequest("protocol mismatch", {
        code: "PROTOCOL_MISMATCH",
        clientMinProtocol: p.minProtocol,
        clientMaxProtocol: p.maxProtocol,
        expectedProtocol: PROTOCOL_VERSION,
        minimumProtocol: PROTOCOL_VERSIONS[0],
      });
    }
    conn.protocol = hi;
    const cfg = this.config.config.gateway;
    if (conn.origin !== null && !originAllowed(conn.origin, conn.host, cfg.allowedOrigins)) {
      this.log.warn("browser origin refused", { origin: conn.origin, ip: conn.peer.ip });
      throw invalidRequest(`origin not allowed: ${conn.origin.slice(0, 200)}`, {
        code: "CONTROL_UI_ORIGIN_NOT_ALLOWED",
        recommendedNextStep: "review_auth_configuration",
      });
    }
    // Re-read the secret first: no await may separate the lockout check from
    // counting a failure, or parallel guesses would all pass the check.
    await this.#refreshSecret(false, true);
    // Direct loopback without a browser Origin is exempt from the lockout.
    const limited = !(conn.peer.directLoopback && conn.origin === null);
    const now = Date.now();
    if (limited) {
      const wait = this.#limiter.retryAfter(conn.peer.ip, now);
      if (wait > 0) {
        throw new GatewayError(
          ErrorCode.INVALID_REQUEST,
          "too many failed authentication attempts; try again later",
          {
            details: {
              code: "AUTH_RATE_LIMITED",
              retryAfterMs: wait,
              recommendedNextStep: "wait_then_retry",
            },
            retryable: true,
            retryAfterMs: wait,
          },
        );
      }
    }
    const role: Role = p.role ?? "operator";
    const c = p.client;
    // A device counts only once verified: never branch on the field being present (CVE-2026-28472).
    let device: VerifiedDevice | null = null;
    if (p.device) {
      device = await verifyDevice(
        p.device,
        {
          clientId: c.id,
          clientMode: c.mode,
          role,
          scopes: p.scopes ?? [],
          token: p.auth?.token ?? p.auth?.deviceToken ?? p.auth?.bootstrapToken ?? "",
          platform: c.platform,
          deviceFamily: c.deviceFamily,
        },
        { nonce: conn.nonce },
        now,
      );
    }
    const secret = this.#secret.current;
    const given = secret.mode === "token" ? p.auth?.token : p.auth?.password;
    /** Set when the connect authenticated with a device token (validated). */
    let byToken: PairedDevice | null = null;
    if (given) {
      if (!secret.value) {
        const code = secret.mode === "token"
          ? "AUTH_TOKEN_NOT_CONFIGURED"
          : "AUTH_PASSWORD_NOT_CONFIGURED";
        throw invalidRequest(`unauthorized: gateway ${secret.mode} not configured`, {
          code,
          recommendedNextStep: "update_auth_configuration",
        });
      }
      if (!constantTimeEqual(given, secret.value)) {
        await this.#authFailed(conn, limited, now, secret.mode);
        const code = secret.mode === "token" ? "AUTH_TOKEN_MISMATCH" : "AUTH_PASSWORD_MISMATCH";
        const hint = secret.mode === "token"
          ? "the gateway's own token is in <state>/token, or gateway.auth.token in gw.json"
          : "the gateway's password is gateway.auth.password in gw.json";
        throw invalidRequest(`unauthorized: gateway ${secret.mode} mismatch (${hint})`, {
          code,
          authReason: `${secret.mode}_mismatch`,
          canRetryWithDeviceToken: device !== null,
          recommendedNextStep: device ? "retry_with_device_token" : "update_auth_credentials",
        });
      }
    } else if (p.auth?.deviceToken) {
      if (!device) {
        throw new GatewayError(
          ErrorCode.NOT_PAIRED,
          "a device token needs the device's signature",
          {
            details: {
              code: "DEVICE_IDENTITY_REQUIRED",
              recommendedNextStep: "sign_with_device_identity",
            },
          },
        );
      }
      const paired = await this.store.devices.get(device.id);
      if (!paired || !(await tokenMatches(p.auth.deviceToken, paired.tokens[role]))) {
        await this.#authFailed(conn, limited, now, "device-token");
        throw invalidRequest("unauthorized: device token mismatch or revoked", {
          code: "AUTH_DEVICE_TOKEN_MISMATCH",
          authReason: "device_token_mismatch",
          recommendedNextStep: "pair_again",
        });
      }
      byToken = paired;
    } else {
      if (!p.auth?.token && !p.auth?.password && !p.auth?.bootstrapToken) {
        throw new GatewayError(ErrorCode.NOT_PAIRED, "device identity required", {
          details: {
            code: "DEVICE_IDENTITY_REQUIRED",
            recommendedNextStep: "update_auth_credentials",
          },
        });
      }
      const code = secret.mode === "token" ? "AUTH_TOKEN_MISSING" : "AUTH_PASSWORD_MISSING";
      throw invalidRequest(`unauthorized: gateway ${secret.mode} missing`, {
        code,
        canRetryWithDeviceToken: false,
        recommendedNextStep: "update_auth_credentials",
      });
    }
    if (limited) this.#limiter.succeed(conn.peer.ip);

    const directLocal = conn.peer.directLoopback && conn.origin === null;
    // Nodes carry no operator scopes, whatever they ask for.
    const requested = role === "node" ? [] : [...new Set(p.scopes ?? [])];
    let scopes: string[];
    let issued: { token: string; role: string; scopes: string[]; issuedAtMs: number } | undefined;
    const commands = [...new Set(p.commands ?? [])];
    if (!device) {
      if (role === "node") {
        throw new GatewayError(ErrorCode.NOT_PAIRED, "a node needs a device identity", {
          details: {
            code: "DEVICE_IDENTITY_REQUIRED",
            recommendedNextStep: "sign_with_device_identity",
          },
        });
      }
      // Device-less: only the narrow trusted paths keep their scopes (GHSA-rqpp).
      scopes = sharedSecretScopes(role, c, directLocal, p.scopes);
    } else {
      const paired = byToken ?? await this.store.devices.get(device.id);
      // Scopes are clamped at every connect: token ∩ approved baseline (GHSA-2pwv).
      const allowed = byToken
        ? intersect(byToken.tokens[role]!.scopes, byToken.approvedScopes)
        : paired?.roles.includes(role)
        ? paired.approvedScopes
        : [];
      const known = paired !== null && paired.roles.includes(role);
      const more = requested.filter((s) => !allowed.includes(s));
      // A node may offer only the commands it was approved for.
      if (role === "node") {
        const approvedCommands = paired?.approvedCommands ?? [];
        for (const cmd of commands) {
          if (!approvedCommands.includes(cmd)) more.push(`command:${cmd}`);
        }
      }
      let approved = paired;
      if (!known || more.length > 0) {
        // A shared secret on direct loopback may approve silently; nothing else does (#1795).
        // That includes the gateway's own Control UI page: a same-origin loopback Origin (as
        // OpenClaw's local Control UI; a foreign page never gets past the Origin check).
        const ownPage = conn.peer.directLoopback && conn.origin !== null &&
          originAllowed(conn.origin, conn.host, []);
        if (!byToken && (directLocal || ownPage)) {
          approved = await this.#autoApprove(conn, device, p, role, requested, now);
        } else {
          throw await this.#pairingRequired(conn, device, p, role, requested, known, now);
        }
      }
      scopes = intersect(requested, byToken ? allowed : approved!.approvedScopes);
      if (!byToken) {
        // A shared-secret connect of a paired device gets a fresh token for this role.
        const minted = await mintToken(role, approved!.approvedScopes, now);
        await this.#updateDevice(device.id, (d) => {
          d.tokens[role] = minted.record;
        });
        issued = { token: minted.token, role, scopes: minted.record.scopes, issuedAtMs: now };
      }
      await this.#updateDevice(device.id, (d) => {
        d.lastSeenAtMs = now;
        d.lastSeenIp = conn.peer.ip;
        const t = d.tokens[role];
        if (t && byToken) t.lastUsedAtMs = now;
      }).catch(() => {});
      conn.deviceId = device.id;
    }
    conn.role = role;
    conn.scopes = new Set(scopes);
    conn.client = p.client;
    conn.commands = commands;
    conn.caps = [...new Set(p.caps ?? [])];
    conn.authGeneration = byToken ? DEVICE_GENERATION : secret.generation;
    conn.caller = {
      connId: conn.id,
      role,
      scopes: conn.scopes,
      clientId: c.id,
      clientMode: c.mode,
      protocol: conn.protocol,
      ip: conn.peer.ip,
      directLoopback: conn.peer.directLoopback,
      deviceId: conn.deviceId,
    };
    return this.#hello(conn, byToken ? "device-token" : secret.mode, scopes, issued, device?.id);
  }

  /**
   * Check the secret an HTTP request presented (`Authorization: Bearer`)
   * against the gateway's token or password, in constant time, with the
   * sockets' lockout: no await between the lockout check and counting a
   * failure. A request without a secret is refused without counting.
   */
  async #checkHttpSecret(
    given: string | undefined,
    { ip, limited }: { ip: string; limited: boolean },
  ): Promise<HttpAuthResult> {
    await this.#refreshSecret(false, true);
    const now = Date.now();
    if (limited) {
      const wait = this.#limiter.retryAfter(ip, now);
      if (wait > 0) return { ok: false, retryAfterMs: wait };
    }
    const secret = this.#secret.current;
    if (given && secret.value && constantTimeEqual(given, secret.value)) {
      if (limited) this.#limiter.succeed(ip);
      return { ok: true };
    }
    if (!given) return { ok: false };
    const lockout = limited ? this.#limiter.fail(ip, now) : 0;
    this.log.warn("http authentication failed", {
      ip,
      mode: secret.mode,
      lockedOut: lockout > 0,
    });
    await new Promise((r) => setTimeout(r, AUTH_FAILURE_DELAY_MS));
    return { ok: false };
  }

  /** Count an authentication failure (lockout) and answer slowly. */
  async #authFailed(conn: Conn, limited: boolean, now: number, what: string): Promise<void> {
    const lockout = limited ? this.#limiter.fail(conn.peer.ip, now) : 0;
    this.log.warn("authentication failed", {
      ip: conn.peer.ip,
      mode: what,
      lockedOut: lockout > 0,
    });
    await new Promise((r) => setTimeout(r, AUTH_FAILURE_DELAY_MS));
  }

  /** Change a paired device (compare-and-set, retried). */
  async #updateDevice(id: string, fn: (d: PairedDevice) => void): Promise<void> {
    for (let i = 0; i < 5; i++) {
      const cur = await this.store.devices.entry(id);
      if (!cur.value) return;
      const next = structuredClone(cur.value);
      fn(next);
      if (await this.store.devices.put(cur, next)) return;
    }
  }

  #pairRequestOf(
    conn: Conn,
    device: VerifiedDevice,
    p: ConnectParams,
    role: string,
    scopes: string[],
    reason: string,
    now: number,
  ): PairRequest {
    const r: PairRequest = {
      requestId: crypto.randomUUID(),
      deviceId: device.id,
      publicKey: device.publicKey,
      clientId: p.client.id,
      clientMode: p.client.mode,
      role,
      scopes,
      remoteIp: conn.peer.ip,
      reason,
      createdAtMs: now,
      expiresAtMs: now + PAIR_REQUEST_TTL_MS,
    };
    if (p.client.displayName) r.displayName = p.client.displayName;
    if (p.client.platform) r.platform = p.client.platform;
    if (role === "node") r.commands = [...new Set(p.commands ?? [])];
    if (p.client.deviceFamily) r.deviceFamily = p.client.deviceFamily;
    return r;
  }

  async #autoApprove(
    conn: Conn,
    device: VerifiedDevice,
    p: ConnectParams,
    role: string,
    scopes: string[],
    now: number,
  ): Promise<PairedDevice> {
    const req = this.#pairRequestOf(conn, device, p, role, scopes, "auto-loopback", now);
    const d = await this.store.devices.approve(req, scopes, "auto-loopback", now);
    if (!d) {
      throw new GatewayError(ErrorCode.UNAVAILABLE, "pairing is busy; try again", {
        retryable: true,
      });
    }
    this.log.info("device paired (direct loopback)", { deviceId: device.id, role, scopes });
    return d;
  }

  /** Record (or reuse) a pending request, tell pairing operators, and return the error to answer. */
  async #pairingRequired(
    conn: Conn,
    device: VerifiedDevice,
    p: ConnectParams,
    role: string,
    scopes: string[],
    known: boolean,
    now: number,
  ): Promise<GatewayError> {
    const reason = known ? "scope-upgrade" : "not-paired";
    const commands = role === "node" ? [...new Set(p.commands ?? [])] : [];
    const same = (await this.store.devices.requests(now)).find((r) =>
      r.deviceId === device.id && r.role === role && scopes.every((s) => r.scopes.includes(s)) &&
      commands.every((c) => r.commands?.includes(c))
    );
    const req = same ?? this.#pairRequestOf(conn, device, p, role, scopes, reason, now);
    if (!same) {
      await this.store.devices.addRequest(req);
      this.broadcast(
        role === "node" ? "node.pair.requested" : "device.pair.requested",
        pairRequestView(req),
      );
      this.log.info("pairing requested", { deviceId: device.id, ip: conn.peer.ip, role, scopes });
    }
    return new GatewayError(ErrorCode.NOT_PAIRED, "pairing required", {
      details: { code: "PAIRING_REQUIRED", requestId: req.requestId, reason, deviceId: device.id },
    });
  }

  /** A node's socket is open: it can be invoked. */
  #addNode(conn: Conn): void {
    const c = conn.client!;
    const n: LiveNode = {
      nodeId: conn.deviceId!,
      connId: conn.id,
      commands: [...conn.commands],
      caps: [...conn.caps],
      remoteIp: conn.peer.ip,
      connectedAtMs: conn.connectedAt,
      send: (event, payload) => {
        if (conn.state !== "open") return;
        this.#send(
          conn,
          `{"type":"event","event":${JSON.stringify(event)},"payload":${
            JSON.stringify(payload)
          },"seq":${++conn
            .seq}}`,
        );
      },
    };
    if (c.displayName) n.displayName = c.displayName;
    if (c.platform) n.platform = c.platform;
    this.nodes.add(n);
    this.log.info("node connected", { nodeId: n.nodeId, commands: n.commands, ip: n.remoteIp });
  }

  /** Close the live sockets of a device (all, or those of one role): revoked or removed. */
  closeDevice(deviceId: string, role: string | undefined, reason: string): number {
    let n = 0;
    for (const c of this.#conns) {
      if (c.deviceId !== deviceId || (role !== undefined && c.role !== role)) continue;
      try {
        c.ws.close(CloseCode.POLICY, reason);
      } catch { /* closing */ }
      n++;
    }
    return n;
  }

  #hello(
    conn: Conn,
    authMode: "token" | "password" | "device-token",
    scopes: string[],
    issued?: { token: string; role: string; scopes: string[]; issuedAtMs: number },
    deviceId?: string,
  ): string {
    const cfg = this.config.config.gateway;
    const v4 = conn.protocol >= 4;
    const mainAgent = this.#defaultAgentId();
    const hello: HelloOk = {
      type: "hello-ok",
      protocol: conn.protocol,
      server: v4
        ? { version: this.version, connId: conn.id, bootId: this.bootId }
        : { version: this.version, host: this.#host, connId: conn.id },
      features: {
        methods: this.#advertisedMethods(),
        events: this.#eventNames(),
        // models.list answers with the configured catalog; OpenClaw's CLI asks for this.
        capabilities: ["published-model-catalog"],
      },
      snapshot: {
        // Spliced in below from the cached JSON text; first in the snapshot so
        // that no client-supplied string (presence) comes before the slot.
        health: HEALTH_SLOT as unknown as HelloOk["snapshot"]["health"],
        presence: this.presence(),
        stateVersion: { ...this.#stateVersion },
        uptimeMs: this.uptimeMs(),
        configPath: this.config.path,
        stateDir: this.stateDir,
        sessionDefaults: {
          defaultAgentId: mainAgent,
          mainKey: "main",
          mainSessionKey: `agent:${mainAgent}:main`,
          scope: "per-sender",
        },
        authMode: authMode === "device-token" ? this.#secret.current.mode : authMode,
      },
      auth: {
        ...(v4 ? { method: authMode } : {}),
        role: conn.role,
        scopes,
        ...(deviceId ? { deviceId } : {}),
        ...(issued
          ? {
            deviceToken: issued.token,
            deviceTokenScopes: issued.scopes,
            issuedAtMs: issued.issuedAtMs,
          }
          : {}),
      },
      policy: {
        maxPayload: cfg.maxPayload,
        maxBufferedBytes: cfg.maxBufferedBytes,
        tickIntervalMs: cfg.tickIntervalMs,
        ...(v4
          ? {
            attachments: {
              maxBytes: Math.floor(cfg.maxPayload * 0.74),
              maxImageBytes: 6 * 1024 * 1024,
            },
          }
          : {}),
      },
    };
    if (!v4) delete (hello.snapshot as Partial<HelloOk["snapshot"]>).authMode;
    return JSON.stringify(hello).replace(`"${HEALTH_SLOT}"`, this.#healthJson.json);
  }

  #eventNames(): string[] {
    return [
      "connect.challenge",
      "tick",
      "presence",
      "health",
      "heartbeat",
      "shutdown",
      "agent",
      "chat",
      "sessions.changed",
      "cron",
      "device.pair.requested",
      "device.pair.resolved",
      "exec.approval.requested",
      "exec.approval.resolved",
      "node.pair.requested",
      "node.pair.resolved",
      "node.invoke.request",
      "talk.mode",
      "voicewake.changed",
    ];
  }

  #defaultAgentId(): string {
    const list = this.config.config.agents.list;
    return (list.find((a) => a.default) ?? list[0])?.id ?? "main";
  }

  // ---------------------------------------------------------------- requests

  #onRequest(conn: Conn, text: string): void {
    // Authenticated with a secret that has since changed: it closes once idle.
    if (conn.closeWhenIdle) return;
    const max = this.config.config.gateway.maxPayload;
    if (text.length > max || (text.length * 3 > max && encoder.encode(text).length > max)) {
      conn.ws.close(CloseCode.TOO_BIG, "payload too large");
      return;
    }
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      this.#send(
        conn,
        errorFrame("invalid", {
          code: ErrorCode.INVALID_REQUEST,
          message: "invalid request frame: malformed JSON",
        }),
      );
      return;
    }
    const problem = frameProblem(frame);
    if (problem) {
      const raw = (frame as { id?: unknown } | null)?.id;
      const id = typeof raw === "string" && raw.length > 0 && raw.length <= 256 ? raw : "invalid";
      this.#send(
        conn,
        errorFrame(id, {
          code: ErrorCode.INVALID_REQUEST,
          message: `invalid request frame: ${problem}`,
        }),
      );
      return;
    }
    const f = frame as { id: string; method: string; params?: unknown };
    if (f.method === "connect") {
      this.#send(
        conn,
        errorFrame(f.id, {
          code: ErrorCode.INVALID_REQUEST,
          message: "connect is only valid as the first request",
        }),
      );
      return;
    }
    const def = this.#methods.get(f.method);
    const denied = this.#authorize(conn, f.method, def);
    if (denied) {
      this.#send(conn, errorFrame(f.id, denied));
      if (++conn.unauthorized > MAX_UNAUTHORIZED_CALLS) {
        this.log.warn("closing socket after repeated unauthorized calls", {
          connId: conn.id,
          ip: conn.peer.ip,
        });
        conn.ws.close(CloseCode.POLICY, "repeated unauthorized calls");
      }
      return;
    }
    if (!def) {
      const known = f.method in KNOWN_METHOD_SCOPES;
      this.#send(
        conn,
        errorFrame(f.id, {
          code: ErrorCode.INVALID_REQUEST,
          message: `unknown method: ${f.method}`,
          ...(known ? { details: { code: "METHOD_NOT_IMPLEMENTED", method: f.method } } : {}),
        }),
      );
      return;
    }
    if (def.available && !def.available(this)) {
      this.#send(
        conn,
        errorFrame(f.id, {
          code: ErrorCode.UNAVAILABLE,
          message: `${def.name} is unavailable: ${def.unavailableReason ?? "not configured"}`,
          details: { code: "METHOD_UNAVAILABLE", method: def.name },
        }),
      );
      return;
    }
    const input = f.params === undefined || f.params === null ? {} : f.params;
    const parsed = def.params.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      this.#send(
        conn,
        errorFrame(f.id, {
          code: ErrorCode.INVALID_REQUEST,
          message: `invalid ${def.name} params: ${formatIssue("params", issue, input)}`,
        }),
      );
      return;
    }
    this.#inflight++;
    conn.inflight++;
    let result: unknown;
    try {
      // Only two-phase methods (agent) get a handle that can answer early: no allocation on the hot path.
      result = def.handler(
        parsed.data,
        this,
        conn.caller!,
        def.twoPhase
          ? {
            id: f.id,
            interim: (payload) => this.#answer(conn, f.id, def.name, payload, undefined),
          }
          : ONE_PHASE,
      );
    } catch (e) {
      this.#finish(conn, f.id, def.name, undefined, e);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (r) => this.#finish(conn, f.id, def.name, r, undefined),
        (e) => this.#finish(conn, f.id, def.name, undefined, e),
      );
    } else this.#finish(conn, f.id, def.name, result, undefined);
  }

  #finish(conn: Conn, id: string, method: string, result: unknown, error: unknown): void {
    this.#inflight--;
    conn.inflight--;
    this.#answer(conn, id, method, result, error);
    const pending = conn.closeWhenIdle;
    if (pending && conn.inflight === 0) conn.ws.close(pending.code, pending.reason);
  }

  #answer(conn: Conn, id: string, method: string, result: unknown, error: unknown): void {
    if (error !== undefined) {
      let shape: ErrorShape;
      let payload: unknown;
      if (error instanceof GatewayError) {
        shape = error.toShape();
        payload = error.payload;
      } else {
        this.log.error("method failed", { method, error });
        shape = {
          code: ErrorCode.UNAVAILABLE,
          message: `${method} failed: internal error`,
          retryable: true,
        };
      }
      this.#send(conn, errorFrame(id, shape, payload));
      return;
    }
    const idJson = JSON.stringify(id);
    let out: string;
    if (result instanceof RawJson) {
      out = `{"type":"res","id":${idJson},"ok":true,"payload":${result.json}}`;
    } else if (result === undefined) out = `{"type":"res","id":${idJson},"ok":true}`;
    else {
      let json: string;
      try {
        json = JSON.stringify(result);
      } catch (e) {
        // A handler bug (a BigInt, a cycle) must cost one answer, not the process.
        return this.#answer(conn, id, method, undefined, e);
      }
      out = `{"type":"res","id":${idJson},"ok":true,"payload":${json}}`;
    }
    this.#send(conn, out);
  }

  /** Returns the error to answer, or null when the caller may call `def`. */
  #authorize(conn: Conn, method: string, def: MethodDef | undefined): ErrorShape | null {
    // An OpenClaw core method gw lacks is checked at its own scope; anything
    // else unknown needs admin (default deny).
    const scope = def?.scope ?? (KNOWN_METHOD_SCOPES[method] ?? "admin");
    if (scope === "none") return null;
    if (scope === "node") {
      return conn.role === "node"
        ? null
        : { code: ErrorCode.INVALID_REQUEST, message: `unauthorized role: ${conn.role}` };
    }
    if (conn.role !== "operator") {
      return { code: ErrorCode.INVALID_REQUEST, message: `unauthorized role: ${conn.role}` };
    }
    const needed = requiredScope(scope)!;
    if (hasScope(conn.scopes, needed)) return null;
    if (conn.protocol >= 4) {
      return {
        code: ErrorCode.FORBIDDEN,
        message: `missing scope: ${needed}`,
        details: { code: "MISSING_SCOPE", missingScope: needed, requiredScopes: [needed] },
      };
    }
    return { code: ErrorCode.INVALID_REQUEST, message: `missing scope: ${needed}` };
  }

  /** Send a response or non-droppable frame; a client over its buffer limit is closed. */
  /**
   * Send a response or non-droppable frame. Deno counts a frame as buffered
   * until its write completes, so a burst of large answers to a client that
   * reads at full speed can pass the limit for a moment: past the limit the
   * client gets SLOW_CONSUMER_GRACE_MS to drain; past four times it, or
   * still over after the grace, it is closed 1008 "slow consumer".
   */
  #send(conn: Conn, text: string): void {
    const ws = conn.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    const limit = this.config.config.gateway.maxBufferedBytes;
    const buffered = ws.bufferedAmount;
    if (buffered > limit) {
      if (buffered > 4 * limit) return this.#dropSlow(conn);
      if (conn.slowCheck === undefined) {
        conn.slowCheck = setTimeout(() => {
          conn.slowCheck = undefined;
          if (ws.readyState === WebSocket.OPEN && ws.bufferedAmount > limit) this.#dropSlow(conn);
        }, SLOW_CONSUMER_GRACE_MS);
      }
    }
    ws.send(text);
  }

  #dropSlow(conn: Conn): void {
    this.log.warn("closing slow consumer", { connId: conn.id, buffered: conn.ws.bufferedAmount });
    conn.ws.close(CloseCode.POLICY, "slow consumer");
  }

  // ---------------------------------------------------------------- events

  /** Send `event` to every open connection whose role and scopes allow it. */
  broadcast(event: string, payload: unknown, options: BroadcastOptions = {}): void {
    if (event === "sessions.changed") this.#sessionsChanged();
    const need = eventScope(event);
    const json = payload instanceof RawJson ? payload.json : JSON.stringify(payload ?? null);
    const body = `{"type":"event","event":${JSON.stringify(event)},"payload":${json}`;
    if (!options.fromPeer) this.cluster.publish(event, json, options.droppable === true);
    const sv = options.stateVersion ? `,"stateVersion":${JSON.stringify(this.#stateVersion)}` : "";
    const limit = this.config.config.gateway.maxBufferedBytes;
    for (const c of this.#conns) {
      if (c.state !== "open") continue;
      if (need !== "any") {
        if (c.role !== "operator") continue;
        if (need !== "operator" && !hasScope(c.scopes, need)) continue;
      }
      if (options.droppable && c.ws.bufferedAmount > limit) continue;
      this.#send(c, `${body},"seq":${++c.seq}${sv}}`);
    }
  }

  /** Whether a connection appears in the presence list. */
  #listed(conn: Conn): boolean {
    return conn.state === "open" && !ONE_SHOT_MODES.has(conn.client!.mode);
  }

  #schedulePresence(): void {
    this.#stateVersion.presence++;
    if (this.#presenceTimer !== undefined || this.#shuttingDown) return;
    // Coalesce bursts of connects into one broadcast.
    this.#presenceTimer = setTimeout(() => {
      this.#presenceTimer = undefined;
      this.broadcast("presence", { presence: this.presence() }, {
        droppable: true,
        stateVersion: true,
      });
    }, 50);
  }

  async #loadSessions(): Promise<void> {
    const all = await this.store.sessions.list();
    all.sort((a, b) => b.updatedAt - a.updatedAt);
    this.#sessions = {
      count: all.length,
      recent: all.slice(0, 10).map((e) => ({ key: e.key, updatedAt: e.updatedAt })),
    };
  }

  /** Sessions changed: re-read the summary within a second (coalesced). */
  #sessionsChanged(): void {
    if (this.#sessionsTimer !== undefined || this.#shuttingDown) return;
    this.#sessionsTimer = setTimeout(() => {
      this.#sessionsTimer = undefined;
      if (this.#shuttingDown) return;
      this.#loadSessions().then(() => this.#refreshHealth()).catch((e) =>
        this.log.warn("session summary failed", { error: e })
      );
    }, 1000);
  }

  #refreshHealth(): void {
    const started = performance.now();
    const cfg = this.config.config;
    const hb = heartbeatSettings(cfg);
    const defaultId = this.#defaultAgentId();
    const now = Date.now();
    const sessions = {
      path: this.store.path,
      count: this.#sessions.count,
      recent: this.#sessions.recent.map((r) => ({ ...r, age: now - r.updatedAt })),
    };
    const health = {
      ok: true,
      ts: Date.now(),
      durationMs: 0,
      channels: {},
      channelOrder: [],
      channelLabels: {},
      heartbeatSeconds: Math.round((hb.find((h) => h.agentId === defaultId)?.everyMs ?? 0) / 1000),
      defaultAgentId: defaultId,
      agents: hb.map((h) => ({
        agentId: h.agentId,
        isDefault: h.agentId === defaultId,
        heartbeat: {
          enabled: h.enabled && this.heartbeats.enabled,
          every: h.every,
          everyMs: h.everyMs,
        },
        sessions,
      })),
      sessions,
      eventLoop: this.#loop.stats(),
    };
    health.durationMs = Math.round(performance.now() - started);
    this.#stateVersion.health++;
    this.#healthJson = new RawJson(JSON.stringify(health));
  }

  #armTimers(): void {
    const g = this.config.config.gateway;
    if (g.tickIntervalMs !== this.#appliedTick) {
      if (this.#tickTimer !== undefined) this.clock.clearInterval(this.#tickTimer);
      this.#tickTimer = this.clock.setInterval(
        () => this.broadcast("tick", { ts: this.clock.now() }, { droppable: true }),
        g.tickIntervalMs,
      );
      this.#appliedTick = g.tickIntervalMs;
    }
    if (g.healthIntervalMs !== this.#appliedHealth) {
      if (this.#healthTimer !== undefined) this.clock.clearInterval(this.#healthTimer);
      this.#healthTimer = this.clock.setInterval(() => {
        this.#refreshHealth();
        this.broadcast("health", this.#healthJson, {
          droppable: true,
          stateVersion: true,
        });
      }, g.healthIntervalMs);
      this.#appliedHealth = g.healthIntervalMs;
    }
  }

  #stopTimers(): void {
    if (this.#tickTimer !== undefined) this.clock.clearInterval(this.#tickTimer);
    if (this.#healthTimer !== undefined) this.clock.clearInterval(this.#healthTimer);
    clearTimeout(this.#presenceTimer);
    clearTimeout(this.#sessionsTimer);
    clearInterval(this.#secretPoll);
    this.heartbeats.stop();
    this.#loop.stop();
  }

  // ---------------------------------------------------------------- context

  uptimeMs(): number {
    return Math.round(performance.now() - this.#startedAt);
  }

  health(refresh: boolean): RawJson {
    if (refresh) this.#refreshHealth();
    return this.#healthJson;
  }

  presence(): PresenceEntry[] {
    const self: PresenceEntry = {
      host: this.#host,
      ip: this.config.config.gateway.bind,
      version: this.version,
      platform: `${Deno.build.os} ${Deno.build.arch}`,
      mode: "gateway",
      reason: "self",
      instanceId: this.bootId,
      text: `Gateway: ${this.#host} · gw ${this.version} · mode gateway`,
      ts: Date.now(),
    };
    const out: PresenceEntry[] = [self];
    const conns = [...this.#conns].filter((c) => this.#listed(c));
    for (let i = conns.length - 1; i >= 0 && out.length < MAX_PRESENCE; i--) {
      const c = conns[i]!;
      const cl = c.client!;
      const entry: PresenceEntry = {
        ts: c.connectedAt,
        ip: c.peer.ip,
        mode: cl.mode,
        reason: "connect",
        clientId: cl.id,
        roles: [c.role],
        scopes: [...c.scopes],
        onlineSince: c.connectedAt,
        version: cl.version,
        platform: cl.platform,
      };
      if (cl.displayName) entry.host = cl.displayName;
      if (cl.deviceFamily) entry.deviceFamily = cl.deviceFamily;
      if (cl.instanceId) entry.instanceId = cl.instanceId;
      out.push(entry);
    }
    for (const e of this.#presenceExtra.values()) {
      if (out.length >= MAX_PRESENCE) break;
      out.push(e);
    }
    return out;
  }

  upsertPresence(key: string, entry: PresenceEntry): void {
    this.#presenceExtra.delete(key);
    this.#presenceExtra.set(key, entry);
    while (this.#presenceExtra.size > MAX_PRESENCE) {
      this.#presenceExtra.delete(this.#presenceExtra.keys().next().value!);
    }
    this.#schedulePresence();
  }

  connectionCounts(): ConnectionCounts {
    const counts = { total: 0, operators: 0, nodes: 0, preauth: 0 };
    for (const c of this.#conns) {
      counts.total++;
      if (c.state !== "open") counts.preauth++;
      else if (c.role === "node") counts.nodes++;
      else counts.operators++;
    }
    return counts;
  }

  eventLoop(): EventLoopStats {
    return this.#loop.stats();
  }

  /**
   * Read gw.json again and apply it (SIGHUP). An invalid file keeps the
   * running config and says why.
   */
  async reloadConfig(
    why: string,
  ): Promise<{ changed: boolean; restartRequired: string[]; error?: string }> {
    try {
      const changed = await this.config.reload();
      const restartRequired = changed ? await this.applyConfig() : [];
      this.log.info("config reload", { why, changed, restartRequired });
      return { changed, restartRequired };
    } catch (e) {
      const error = (e as Error).message;
      this.log.error("config reload failed; keeping the running config", { why, error });
      return { changed: false, restartRequired: [], error };
    }
  }

  /** Method names for hello-ok: those that can work now. */
  #advertisedMethods(): string[] {
    const out: string[] = [];
    for (const name of this.#methodNames) {
      const def = this.#methods.get(name)!;
      if (!def.available || def.available(this)) out.push(name);
    }
    return out;
  }

  async applyConfig(): Promise<string[]> {
    const cfg: GwConfig = this.config.config;
    await this.channels.reconfigureAll();
    this.#limiter.configure(cfg.gateway.authRateLimit);
    this.log.configure(cfg.logging);
    this.#armTimers();
    this.heartbeats.configure(cfg, this.heartbeats.enabled);
    this.#refreshHealth();
    await this.#refreshSecret(true);
    const restart: string[] = [];
    if (this.#opts.port === undefined && cfg.gateway.port !== this.#listenedOn.port) {
      restart.push("gateway.port");
    }
    if (this.#opts.bind === undefined && cfg.gateway.bind !== this.#listenedOn.bind) {
      restart.push("gateway.bind");
    }
    return restart;
  }

  // ---------------------------------------------------------------- shutdown

  /** A restart was asked for (update.run): `gw start` exits with {@link RESTART_EXIT_CODE}. */
  restartRequested = false;

  /** Stop for a restart: `shutdown` carries `restartExpectedMs`; see {@link restartRequested}. */
  requestRestart(reason: string, restartExpectedMs: number): void {
    this.restartRequested = true;
    void this.shutdown(reason, restartExpectedMs);
  }

  /**
   * Stop: tell clients (`shutdown` event), let in-flight requests finish
   * (at most 5 s), close every socket with 1012, close the store.
   */
  shutdown(reason = "gateway stopping", restartExpectedMs?: number): Promise<void> {
    if (this.#closed) return this.#closed;
    this.#shuttingDown = true;
    this.#closed = (async () => {
      this.log.info("shutting down", { reason });
      const payload: Record<string, unknown> = { reason };
      if (restartExpectedMs !== undefined) payload.restartExpectedMs = restartExpectedMs;
      this.broadcast("shutdown", payload);
      const deadline = performance.now() + SHUTDOWN_GRACE_MS;
      // No new job starts; runs end now (partial replies kept), so their callers get answers below.
      this.cron.stop();
      this.exec.close();
      // Channels stop taking messages; their replies end with the runs below.
      const channelsStopped = this.channels.stopAll();
      await this.agent.shutdown(SHUTDOWN_GRACE_MS - 1_000);
      await channelsStopped;
      await this.cron.drain(1_000);
      while (this.#inflight > 0 && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      this.#stopTimers();
      const closing: Promise<unknown>[] = [];
      for (const c of this.#conns) {
        closing.push(new Promise((r) => c.ws.addEventListener("close", r, { once: true })));
        try {
          c.ws.close(CloseCode.SERVICE_RESTART, "service restart");
        } catch { /* already closing */ }
      }
      // Let our 1012 go out before Deno's server shutdown closes what is left (1001).
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(closing),
        new Promise((r) => timer = setTimeout(r, 1_000)),
      ]);
      clearTimeout(timer);
      await this.#server?.shutdown();
      await this.cluster.stop();
      this.store.close();
      this.log.info("stopped");
      this.log.close();
    })();
    return this.#closed;
  }
}

/** Start a gateway. */
export function startGateway(options: GatewayOptions): Promise<Gateway> {
  return Gateway.start(options);
}
