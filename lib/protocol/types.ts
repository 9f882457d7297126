/**
 * The OpenClaw Gateway wire protocol as plain TypeScript types and constants.
 *
 * This module has no dependencies, so the client library (`mod.ts`) can ship it
 * to browsers, Node and Bun. The server's zod schemas in `lib/protocol/schemas.ts`
 * are checked against these types at compile time.
 *
 * @example
 * ```ts
 * import { ErrorCode, type ResponseFrame } from "@gw/gw/protocol";
 *
 * const res: ResponseFrame = {
 *   type: "res",
 *   id: "7",
 *   ok: false,
 *   error: { code: ErrorCode.INVALID_REQUEST, message: "params.limit: expected a number" },
 * };
 * console.log(res.error?.code); // INVALID_REQUEST
 * ```
 *
 * @module
 */

/**
 * Protocol versions gw negotiates, lowest first.
 *
 * @example
 * ```ts
 * import { PROTOCOL_VERSIONS } from "@gw/gw";
 * console.log(PROTOCOL_VERSIONS.includes(3)); // true
 * ```
 */
export const PROTOCOL_VERSIONS: readonly number[] = [3, 4];
/**
 * The newest protocol version gw speaks (sent as `maxProtocol`).
 *
 * @example
 * ```ts
 * import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from "@gw/gw";
 * const range = { minProtocol: MIN_PROTOCOL_VERSION, maxProtocol: PROTOCOL_VERSION };
 * console.log(range); // { minProtocol: 3, maxProtocol: 4 }
 * ```
 */
export const PROTOCOL_VERSION = 4;
/**
 * The oldest protocol version gw still speaks (sent as `minProtocol`).
 *
 * @example
 * ```ts
 * import { MIN_PROTOCOL_VERSION } from "@gw/gw";
 * console.log(MIN_PROTOCOL_VERSION); // 3
 * ```
 */
export const MIN_PROTOCOL_VERSION = 3;

/**
 * WebSocket close codes used by the gateway (and, for `TICK_TIMEOUT`, by the
 * client).
 *
 * @example
 * ```ts
 * import { CloseCode } from "@gw/gw";
 * function why(code: number): string {
 *   if (code === CloseCode.POLICY) return "refused: check the token and scopes";
 *   if (code === CloseCode.SERVICE_RESTART) return "the gateway is restarting";
 *   return `closed with ${code}`;
 * }
 * console.log(why(1008)); // refused: check the token and scopes
 * ```
 */
export const CloseCode = {
  /** Normal closure, also used for the pre-auth idle timeout. */
  NORMAL: 1000,
  /** Protocol version mismatch. */
  PROTOCOL_ERROR: 1002,
  /** Policy violation: bad handshake, auth failure, slow consumer, flood. */
  POLICY: 1008,
  /** A frame was larger than the limit in force. */
  TOO_BIG: 1009,
  /** The gateway is restarting or shutting down. */
  SERVICE_RESTART: 1012,
  /** The client heard nothing for 2 × tickIntervalMs (client side). */
  TICK_TIMEOUT: 4000,
  /** The shared secret changed since this socket authenticated. */
  AUTH_CHANGED: 4001,
} as const;

/**
 * Top-level error codes of the protocol (`error.code` of a failed response).
 * The precise reason, where there is one, is in `error.details.code`.
 *
 * @example
 * ```ts
 * import { ErrorCode, type ErrorShape } from "@gw/gw";
 * function retryable(e: ErrorShape): boolean {
 *   return e.code === ErrorCode.UNAVAILABLE || e.retryable === true;
 * }
 * console.log(retryable({ code: "UNAVAILABLE", message: "busy" })); // true
 * ```
 */
export const ErrorCode = {
  /** A channel account is not linked (logged in) yet. */
  NOT_LINKED: "NOT_LINKED",
  /** The device must be paired first; `details.requestId` names the request. */
  NOT_PAIRED: "NOT_PAIRED",
  /** An agent run did not finish in time. */
  AGENT_TIMEOUT: "AGENT_TIMEOUT",
  /** The request was malformed; the message names the field. */
  INVALID_REQUEST: "INVALID_REQUEST",
  /** No pending approval has that id. */
  APPROVAL_NOT_FOUND: "APPROVAL_NOT_FOUND",
  /** The gateway cannot serve this now (see `retryable` and `retryAfterMs`). */
  UNAVAILABLE: "UNAVAILABLE",
  /** Protocol 4 only: a scope or role check failed. */
  FORBIDDEN: "FORBIDDEN",
} as const;
/**
 * One of {@link ErrorCode}.
 *
 * @example
 * ```ts
 * import type { ErrorCode } from "@gw/gw";
 * const code: ErrorCode = "FORBIDDEN";
 * console.log(code);
 * ```
 */
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

/**
 * Operator scopes. `operator.admin` satisfies every scope; `operator.write`
 * also satisfies `operator.read` and `operator.talk`.
 *
 * @example
 * ```ts
 * import { GatewayClient, Scope } from "@gw/gw";
 * // A read-only dashboard asks for no more than it needs.
 * const client = new GatewayClient({
 *   url: "ws://127.0.0.1:18789",
 *   token: "secret",
 *   scopes: [Scope.READ],
 * });
 * console.log(client.state); // closed
 * ```
 */
export const Scope = {
  /** Everything, including config writes and pairing approvals. */
  ADMIN: "operator.admin",
  /** Read state: health, status, sessions, history, config (redacted). */
  READ: "operator.read",
  /** Send messages and run agents. */
  WRITE: "operator.write",
  /** Resolve exec approval requests. */
  APPROVALS: "operator.approvals",
  /** Approve devices and nodes. */
  PAIRING: "operator.pairing",
  /** Answer questions an agent asks. */
  QUESTIONS: "operator.questions",
  /** Talk mode and speech. */
  TALK: "operator.talk",
  /** Talk settings including provider secrets. */
  TALK_SECRETS: "operator.talk.secrets",
} as const;
/**
 * One of {@link Scope}.
 *
 * @example
 * ```ts
 * import type { Scope } from "@gw/gw";
 * const wanted: Scope[] = ["operator.read", "operator.write"];
 * console.log(wanted.join(","));
 * ```
 */
export type Scope = typeof Scope[keyof typeof Scope];

/**
 * The scope set the OpenClaw CLI asks for by default (and `GatewayClient`
 * unless told otherwise).
 *
 * @example
 * ```ts
 * import { DEFAULT_OPERATOR_SCOPES, Scope } from "@gw/gw";
 * console.log(DEFAULT_OPERATOR_SCOPES.includes(Scope.ADMIN)); // true
 * ```
 */
export const DEFAULT_OPERATOR_SCOPES: readonly string[] = [
  Scope.ADMIN,
  Scope.READ,
  Scope.WRITE,
  Scope.APPROVALS,
  Scope.QUESTIONS,
  Scope.PAIRING,
  Scope.TALK_SECRETS,
];

/**
 * Connection roles: an `operator` (a person's client) or a `node` (a device
 * that runs commands for the gateway).
 *
 * @example
 * ```ts
 * import type { Role } from "@gw/gw";
 * const role: Role = "operator";
 * console.log(role);
 * ```
 */
export type Role = "operator" | "node";

/**
 * The error object of a failed response.
 *
 * @example
 * ```ts
 * import type { ErrorShape } from "@gw/gw";
 * const err: ErrorShape = {
 *   code: "UNAVAILABLE",
 *   message: "rate limited",
 *   retryable: true,
 *   retryAfterMs: 2000,
 * };
 * console.log(err.retryAfterMs); // 2000
 * ```
 */
export interface ErrorShape {
  /** A top-level code, usually one of {@link ErrorCode}. */
  code: string;
  /** What went wrong, in words; names the offending field where there is one. */
  message: string;
  /** Machine-readable details; `details.code` names the precise failure (`AUTH_TOKEN_MISMATCH`, ...). */
  details?: Record<string, unknown>;
  /** Whether the same request may succeed later. */
  retryable?: boolean;
  /** How long to wait before retrying, in milliseconds. */
  retryAfterMs?: number;
}

/**
 * A request frame, client to gateway.
 *
 * @example
 * ```ts
 * import type { RequestFrame } from "@gw/gw";
 * const req: RequestFrame = { type: "req", id: "1", method: "logs.tail", params: { limit: 20 } };
 * console.log(JSON.stringify(req));
 * ```
 */
export interface RequestFrame {
  /** Always `"req"`. */
  type: "req";
  /** A non-empty id, unique per connection; the response carries it back. */
  id: string;
  /** The method name, for example `health`. */
  method: string;
  /** The method's params, when it takes any. */
  params?: unknown;
  /** Protocol 4: a W3C trace context (at most 128 characters). */
  traceparent?: string;
}

/**
 * A response frame, gateway to client.
 *
 * @example
 * ```ts
 * import type { ResponseFrame } from "@gw/gw";
 * const res: ResponseFrame = { type: "res", id: "1", ok: true, payload: { ok: true } };
 * console.log(res.ok ? res.payload : res.error);
 * ```
 */
export interface ResponseFrame {
  /** Always `"res"`. */
  type: "res";
  /** The id of the request it answers. */
  id: string;
  /** Whether the request succeeded. */
  ok: boolean;
  /** The result (on success; some failures carry one too). */
  payload?: unknown;
  /** Why it failed, when `ok` is false. */
  error?: ErrorShape;
}

/**
 * State versions carried by `presence` and `health` events; each grows by one
 * whenever its state changes.
 *
 * @example
 * ```ts
 * import type { StateVersion } from "@gw/gw";
 * const seen: StateVersion = { presence: 3, health: 12 };
 * const isNewer = (v: StateVersion) => v.presence > seen.presence || v.health > seen.health;
 * console.log(isNewer({ presence: 4, health: 12 })); // true
 * ```
 */
export interface StateVersion {
  /** Version of the presence list. */
  presence: number;
  /** Version of the health snapshot. */
  health: number;
}

/**
 * An event frame, gateway to client.
 *
 * @example
 * ```ts
 * import type { EventFrame } from "@gw/gw";
 * const ev: EventFrame = { type: "event", event: "tick", payload: { ts: Date.now() }, seq: 5 };
 * console.log(ev.event, ev.seq); // tick 5
 * ```
 */
export interface EventFrame {
  /** Always `"event"`. */
  type: "event";
  /** The event name, for example `chat` or `tick`. */
  event: string;
  /** The event's data. */
  payload?: unknown;
  /** Per-connection sequence number (protocol 4); a jump means missed events. */
  seq?: number;
  /** Present on `presence` and `health` events. */
  stateVersion?: StateVersion;
}

/**
 * Any frame.
 *
 * @example
 * ```ts
 * import type { Frame } from "@gw/gw";
 * function describe(f: Frame): string {
 *   switch (f.type) {
 *     case "req":
 *       return `request ${f.method}`;
 *     case "res":
 *       return `response ${f.id} ok=${f.ok}`;
 *     case "event":
 *       return `event ${f.event}`;
 *   }
 * }
 * console.log(describe({ type: "event", event: "tick" })); // event tick
 * ```
 */
export type Frame = RequestFrame | ResponseFrame | EventFrame;

/**
 * Payload of the `connect.challenge` event the gateway sends at open.
 *
 * @example
 * ```ts
 * import type { ConnectChallenge } from "@gw/gw";
 * const challenge: ConnectChallenge = { nonce: crypto.randomUUID(), ts: Date.now() };
 * console.log(challenge.nonce.length); // 36
 * ```
 */
export interface ConnectChallenge {
  /** A fresh random nonce; a signed device must sign it. */
  nonce: string;
  /** The gateway's clock, epoch ms; a signed device sends it as `signedAt`. */
  ts: number;
}

/**
 * The client block of connect params.
 *
 * @example
 * ```ts
 * import type { ClientInfo } from "@gw/gw";
 * const client: ClientInfo = { id: "cli", mode: "cli", version: "my-tool-1.0", platform: "linux" };
 * console.log(client.id);
 * ```
 */
export interface ClientInfo {
  /** Which client this is (OpenClaw's ids: `cli`, `webchat`, `gateway-client`, ...). */
  id: string;
  /** The client's version. */
  version: string;
  /** The client's platform, for example `linux` or `darwin`. */
  platform: string;
  /** How it connects (`cli`, `webchat`, `ui`, `backend`, `node`, ...). */
  mode: string;
  /** A name to show in presence lists. */
  displayName?: string;
  /** The device family, for example `iPhone`. */
  deviceFamily?: string;
  /** The hardware model, for example `Mac14,2`. */
  modelIdentifier?: string;
  /** Identifies one running instance of the client. */
  instanceId?: string;
  /** The client's build id. */
  buildId?: string;
  /** The client's IANA time zone. */
  timeZone?: string;
}

/**
 * The signed device block of connect params (see `DeviceIdentity.sign`).
 *
 * @example
 * ```ts
 * import { type DeviceAuth, DeviceIdentity } from "@gw/gw";
 * const identity = await DeviceIdentity.generate();
 * const device: DeviceAuth = await identity.sign({
 *   challenge: { nonce: "n-1", ts: Date.now() },
 *   clientId: "cli",
 *   clientMode: "cli",
 *   role: "operator",
 *   scopes: ["operator.read"],
 *   token: "",
 * });
 * console.log(device.id === identity.deviceId); // true
 * ```
 */
export interface DeviceAuth {
  /** The device id: lowercase hex SHA-256 of the raw public key. */
  id: string;
  /** The raw Ed25519 public key, base64url. */
  publicKey: string;
  /** The Ed25519 signature of the v3 (or v2) payload, base64url. */
  signature: string;
  /** When it was signed, epoch ms: the challenge's `ts`. */
  signedAt: number;
  /** The challenge's nonce. */
  nonce: string;
}

/**
 * Params of the `connect` request.
 *
 * @example
 * ```ts
 * import { type ConnectParams, DEFAULT_OPERATOR_SCOPES } from "@gw/gw";
 * const params: ConnectParams = {
 *   minProtocol: 3,
 *   maxProtocol: 4,
 *   client: { id: "cli", mode: "cli", version: "1.0.0", platform: "linux" },
 *   role: "operator",
 *   scopes: [...DEFAULT_OPERATOR_SCOPES],
 *   auth: { token: "secret" },
 * };
 * console.log(params.role);
 * ```
 */
export interface ConnectParams {
  /** The lowest protocol version the client speaks. */
  minProtocol: number;
  /** The highest protocol version the client speaks. */
  maxProtocol: number;
  /** Who is connecting. */
  client: ClientInfo;
  /** The role asked for. @default {"operator"} */
  role?: Role;
  /** The scopes asked for; without a device identity most clients get none. */
  scopes?: string[];
  /** Node capabilities. */
  caps?: string[];
  /** Commands a node offers. */
  commands?: string[];
  /** Permissions a node holds, by name. */
  permissions?: Record<string, boolean>;
  /** A node's PATH. */
  pathEnv?: string;
  /** The client's locale, for example `en-US`. */
  locale?: string;
  /** The client's user agent. */
  userAgent?: string;
  /** Credentials: a shared token or password, a device token, or a bootstrap token. */
  auth?: {
    /** The gateway's shared token. */
    token?: string;
    /** The gateway's shared password. */
    password?: string;
    /** A device token the gateway issued earlier (needs `device`). */
    deviceToken?: string;
    /** A one-time bootstrap token. */
    bootstrapToken?: string;
  };
  /** The signed device identity. */
  device?: DeviceAuth;
}

/**
 * One entry of the presence list (`system-presence`, the `presence` event).
 *
 * @example
 * ```ts
 * import type { PresenceEntry } from "@gw/gw";
 * const online = (list: PresenceEntry[]) => list.map((p) => p.host ?? p.clientId ?? "?");
 * console.log(online([{ ts: Date.now(), host: "pi" }])); // [ "pi" ]
 * ```
 */
export interface PresenceEntry {
  /** When this entry was last updated, epoch ms. */
  ts: number;
  /** Host name. */
  host?: string;
  /** Remote address. */
  ip?: string;
  /** Client version. */
  version?: string;
  /** Client platform. */
  platform?: string;
  /** Device family. */
  deviceFamily?: string;
  /** Hardware model. */
  modelIdentifier?: string;
  /** Client mode. */
  mode?: string;
  /** Why the entry changed (`connect`, `disconnect`, ...). */
  reason?: string;
  /** A free-form status line (`system-event`). */
  text?: string;
  /** Client instance id. */
  instanceId?: string;
  /** Device id, for signed devices. */
  deviceId?: string;
  /** Client id. */
  clientId?: string;
  /** Roles of the connection. */
  roles?: string[];
  /** Scopes of the connection. */
  scopes?: string[];
  /** Free-form tags. */
  tags?: string[];
  /** Seconds since the user last touched the device. */
  lastInputSeconds?: number;
  /** When this client came online, epoch ms. */
  onlineSince?: number;
}

/**
 * Limits the gateway announces in hello-ok.
 *
 * @example
 * ```ts
 * import type { Policy } from "@gw/gw";
 * const fits = (p: Policy, bytes: number) => bytes <= p.maxPayload;
 * console.log(fits({ maxPayload: 1024, maxBufferedBytes: 4096, tickIntervalMs: 30000 }, 10)); // true
 * ```
 */
export interface Policy {
  /** The largest frame the gateway accepts, in bytes. */
  maxPayload: number;
  /** How much may queue for this socket before the gateway drops or closes it. */
  maxBufferedBytes: number;
  /** How often `tick` comes; hearing nothing for twice this means the link is dead. */
  tickIntervalMs: number;
  /** Protocol 4 only: attachment size limits, in bytes. */
  attachments?: {
    /** The largest attachment. */
    maxBytes: number;
    /** The largest image. */
    maxImageBytes: number;
  };
}

/**
 * Defaults for session keys, in the hello-ok snapshot.
 *
 * @example
 * ```ts
 * import type { SessionDefaults } from "@gw/gw";
 * const d: SessionDefaults = {
 *   defaultAgentId: "main",
 *   mainKey: "main",
 *   mainSessionKey: "agent:main:main",
 *   scope: "per-sender",
 * };
 * console.log(d.mainSessionKey);
 * ```
 */
export interface SessionDefaults {
  /** The agent used when none is named. */
  defaultAgentId: string;
  /** The short key of the main session (`main`). */
  mainKey: string;
  /** The full key of the default agent's main session (`agent:main:main`). */
  mainSessionKey: string;
  /** How direct chats map to sessions (`per-sender`). */
  scope: string;
}

/**
 * The state snapshot in hello-ok.
 *
 * @example
 * ```ts
 * import type { Snapshot } from "@gw/gw";
 * const summary = (s: Snapshot) => `${s.presence.length} online, up ${s.uptimeMs} ms`;
 * console.log(typeof summary); // function
 * ```
 */
export interface Snapshot {
  /** Who is connected. */
  presence: PresenceEntry[];
  /** The last health snapshot. */
  health: HealthResult;
  /** The versions of `presence` and `health` above. */
  stateVersion: StateVersion;
  /** How long the gateway has been up. */
  uptimeMs: number;
  /** The config file's path. */
  configPath?: string;
  /** The state directory. */
  stateDir?: string;
  /** Session key defaults. */
  sessionDefaults: SessionDefaults;
  /** Protocol 4 only: which shared secret the gateway uses. */
  authMode?: "token" | "password";
}

/**
 * The payload of a successful `connect` (what {@link GatewayClient.connect}
 * resolves with).
 *
 * @example
 * ```ts
 * import type { HelloOk } from "@gw/gw";
 * function canCall(hello: HelloOk, method: string): boolean {
 *   return hello.features.methods.includes(method);
 * }
 * console.log(typeof canCall); // function
 * ```
 */
export interface HelloOk {
  /** Always `"hello-ok"`. */
  type: "hello-ok";
  /** The negotiated protocol version. */
  protocol: number;
  /** The gateway: its version, this connection's id, its host (v3) or boot id (v4). */
  server: {
    /** The gateway's version. */
    version: string;
    /** This connection's id. */
    connId: string;
    /** The gateway's host name (protocol 3). */
    host?: string;
    /** Changes on every gateway start (protocol 4). */
    bootId?: string;
  };
  /** What the gateway offers. */
  features: {
    /** The methods it advertises (a discovery list: a few callable ones are left out). */
    methods: string[];
    /** The events it may send. */
    events: string[];
    /** Optional capabilities, for example `published-model-catalog`. */
    capabilities?: string[];
  };
  /** The state at connect time. */
  snapshot: Snapshot;
  /** What this connection was granted. */
  auth: {
    /** The granted role. */
    role: Role;
    /** The granted scopes (may be fewer than asked for). */
    scopes: string[];
    /** Protocol 4: how the connection authenticated. */
    method?: "token" | "password" | "device-token";
    /** The device of this connection, when it signed one. */
    deviceId?: string;
    /** A device token issued by this connect: returned here only, once; keep it. */
    deviceToken?: string;
    /** The scopes the issued device token carries. */
    deviceTokenScopes?: string[];
    /** When the device token was issued, epoch ms. */
    issuedAtMs?: number;
  } & Record<string, unknown>;
  /** Limits in force for this connection. */
  policy: Policy;
}

/**
 * Event-loop figures reported by `health` and `status`.
 *
 * @example
 * ```ts
 * import type { EventLoopStats } from "@gw/gw";
 * const verdict = (e: EventLoopStats) => e.degraded ? `slow: ${e.reasons.join(", ")}` : "fine";
 * console.log(typeof verdict); // function
 * ```
 */
export interface EventLoopStats {
  /** Whether the loop is currently degraded. */
  degraded: boolean;
  /** How long it has been degraded, or null. */
  degradedSinceMs: number | null;
  /** Why it is degraded: `event_loop_delay` (late timers), `cpu` (busy process). */
  reasons: string[];
  /** 99th percentile timer delay, ms. */
  delayP99Ms: number;
  /** Largest timer delay, ms. */
  delayMaxMs: number;
  /** The sampling interval, ms. */
  intervalMs: number;
  /** CPU time per wall time, capped at 1. */
  utilization: number;
  /** CPU time per wall time (above 1 when several threads work). */
  cpuCoreRatio: number;
}

/**
 * Heartbeat settings of one agent.
 *
 * @example
 * ```ts
 * import type { HeartbeatInfo } from "@gw/gw";
 * const hb: HeartbeatInfo = { enabled: true, every: "30m", everyMs: 1_800_000 };
 * console.log(hb.every);
 * ```
 */
export interface HeartbeatInfo {
  /** Whether heartbeats run. */
  enabled: boolean;
  /** The interval as configured, for example `30m`. */
  every: string;
  /** The interval in milliseconds. */
  everyMs: number;
}

/**
 * Where an agent's sessions are kept, how many, and the latest.
 *
 * @example
 * ```ts
 * import type { SessionsSummary } from "@gw/gw";
 * const latest = (s: SessionsSummary) => s.recent[0]?.key ?? "(none)";
 * console.log(latest({ path: "/state/gw.kv", count: 0, recent: [] })); // (none)
 * ```
 */
export interface SessionsSummary {
  /** Where the sessions are stored. */
  path: string;
  /** How many sessions there are. */
  count: number;
  /** The most recently updated sessions, newest first; `age` is ms since the update. */
  recent: { key: string; updatedAt: number; age: number }[];
}

/**
 * Result of `health`.
 *
 * @example
 * ```ts ignore
 * import { GatewayClient } from "@gw/gw";
 * const client = new GatewayClient({ url: "ws://127.0.0.1:18789", token: "secret" });
 * await client.connect();
 * const health = await client.request("health"); // typed as HealthResult
 * console.log(health.ok, health.defaultAgentId, health.sessions.count);
 * await client.close();
 * ```
 */
export interface HealthResult {
  /** Whether the gateway is healthy. */
  ok: boolean;
  /** When the snapshot was taken, epoch ms. */
  ts: number;
  /** How long taking it took, ms. */
  durationMs: number;
  /** Channel health, by channel id. */
  channels: Record<string, unknown>;
  /** Channel ids in display order. */
  channelOrder: string[];
  /** Channel display names, by id. */
  channelLabels: Record<string, string>;
  /** The default agent's heartbeat interval in seconds (0: off). */
  heartbeatSeconds: number;
  /** The agent used when none is named. */
  defaultAgentId: string;
  /** Every agent with its heartbeat and sessions. */
  agents: {
    /** The agent's id. */
    agentId: string;
    /** Whether it is the default agent. */
    isDefault: boolean;
    /** Its heartbeat settings. */
    heartbeat: HeartbeatInfo;
    /** Its sessions. */
    sessions: SessionsSummary;
  }[];
  /** All sessions. */
  sessions: SessionsSummary;
  /** The gateway's event loop. */
  eventLoop: EventLoopStats;
}

/**
 * Result of `status`.
 *
 * @example
 * ```ts
 * import type { StatusResult } from "@gw/gw";
 * const mb = (s: StatusResult) => Math.round(s.processMemory.rssBytes / 2 ** 20);
 * console.log(typeof mb); // function
 * ```
 */
export interface StatusResult {
  /** The runtime's version (Deno's). */
  runtimeVersion: string;
  /** How long the gateway has been up. */
  uptimeMs: number;
  /** The gateway's process id. */
  pid: number;
  /** Heartbeat settings, per agent. */
  heartbeat: {
    /** Whether heartbeats run at all. */
    enabled: boolean;
    /** The agent used when none is named. */
    defaultAgentId: string;
    /** Each agent's settings. */
    agents: ({ agentId: string } & HeartbeatInfo)[];
  };
  /** One line per configured channel. */
  channelSummary: unknown[];
  /** System events waiting for the next agent turn. */
  queuedSystemEvents: string[];
  /** Session counts and the latest sessions. */
  sessions: {
    /** Where sessions are stored. */
    paths: string[];
    /** How many there are. */
    count: number;
    /** The default model, or null. */
    defaults: { model: string | null };
    /** The latest sessions. */
    recent: unknown[];
    /** Per agent. */
    byAgent: ({ agentId: string } & SessionsSummary)[];
  };
  /** Open connections by kind (`preauth`: not yet through the handshake). */
  connections: { total: number; operators: number; nodes: number; preauth: number };
  /** The gateway's event loop. */
  eventLoop: EventLoopStats;
  /** The gateway's memory use. */
  processMemory: { rssBytes: number; heapUsedBytes: number; heapTotalBytes: number };
}

/**
 * A heartbeat record, as `last-heartbeat` returns and the `heartbeat` event carries.
 *
 * @example
 * ```ts
 * import type { HeartbeatRecord } from "@gw/gw";
 * const rec: HeartbeatRecord = { ts: Date.now(), agentId: "main", status: "ok-empty" };
 * console.log(rec.status);
 * ```
 */
export interface HeartbeatRecord {
  /** When it ran, epoch ms. */
  ts: number;
  /** Which agent. */
  agentId: string;
  /**
   * `sent`: a reply was delivered; `ok-empty`/`ok-token`: nothing to say;
   * `skipped`: not run (or no target); `failed`: the run failed.
   */
  status: "sent" | "ok-empty" | "ok-token" | "skipped" | "failed";
  /** Why it was skipped or failed. */
  reason?: string;
  /** How long it took, ms. */
  durationMs?: number;
}

/**
 * Result of `logs.tail`.
 *
 * @example
 * ```ts ignore
 * import { GatewayClient } from "@gw/gw";
 * const client = new GatewayClient({ url: "ws://127.0.0.1:18789", token: "secret" });
 * await client.connect();
 * let page = await client.request("logs.tail", { limit: 20 });
 * page.lines.forEach((l) => console.log(l));
 * page = await client.request("logs.tail", { cursor: page.cursor }); // only what came since
 * await client.close();
 * ```
 */
export interface LogsTailResult {
  /** The log file read. */
  file: string;
  /** Byte offset after the last line returned; pass it back as `cursor`. */
  cursor: number;
  /** The file's size in bytes. */
  size: number;
  /** Complete JSON lines. */
  lines: string[];
  /** Whether there was more than was returned. */
  truncated: boolean;
  /** The cursor was past the end (the log rotated): the tail was returned instead. */
  reset: boolean;
}

/**
 * Result of `config.get`.
 *
 * @example
 * ```ts ignore
 * import { GatewayClient } from "@gw/gw";
 * const client = new GatewayClient({ url: "ws://127.0.0.1:18789", token: "secret" });
 * await client.connect();
 * const cfg = await client.request("config.get");
 * await client.request("config.patch", { patch: { logging: { level: "debug" } }, baseHash: cfg.hash });
 * await client.close();
 * ```
 */
export interface ConfigSnapshot {
  /** The config file's path. */
  path: string;
  /** Whether the file exists. */
  exists: boolean;
  /** The file's text with secrets redacted. */
  raw: string | null;
  /** The config as written, secrets redacted. */
  parsed: Record<string, unknown> | null;
  /** The effective config with defaults, secrets redacted. */
  config: Record<string, unknown>;
  /** sha256 of the file's exact bytes; send it back as `baseHash` on writes. */
  hash: string;
  /** Whether the file is valid. */
  valid: boolean;
  /** What is wrong with it, by path. */
  issues: { path: string; message: string }[];
}

/**
 * Result of `config.set`, `config.patch` and `config.apply`.
 *
 * @example
 * ```ts
 * import type { ConfigWriteResult } from "@gw/gw";
 * const note = (r: ConfigWriteResult) =>
 *   r.restartRequired.length ? `restart for: ${r.restartRequired.join(", ")}` : "applied";
 * console.log(typeof note); // function
 * ```
 */
export interface ConfigWriteResult {
  /** Always true. */
  ok: true;
  /** The config file's path. */
  path: string;
  /** The new file's hash (the next write's `baseHash`). */
  hash: string;
  /** The new effective config, secrets redacted. */
  config: Record<string, unknown>;
  /** Settings that changed but need a restart to take effect. */
  restartRequired: string[];
}

/**
 * A model the gateway can route to (`models.list`).
 *
 * @example
 * ```ts
 * import type { ModelEntry } from "@gw/gw";
 * const m: ModelEntry = { id: "claude-sonnet-4-6", name: "Claude Sonnet 4.6", provider: "anthropic" };
 * console.log(`${m.provider}/${m.id}`);
 * ```
 */
export interface ModelEntry {
  /** The model id at its provider. */
  id: string;
  /** A display name. */
  name: string;
  /** The provider id, for example `anthropic`. */
  provider: string;
  /** The context window, in tokens. */
  contextWindow?: number;
  /** Whether it can think before answering. */
  reasoning?: boolean;
}

/**
 * An agent entry of `agents.list`.
 *
 * @example
 * ```ts
 * import type { AgentEntry } from "@gw/gw";
 * const label = (a: AgentEntry) => `${a.identity.avatar} ${a.name}${a.default ? " (default)" : ""}`;
 * console.log(typeof label); // function
 * ```
 */
export interface AgentEntry {
  /** The agent's id. */
  id: string;
  /** Its name. */
  name: string;
  /** Whether it is the default agent. */
  default: boolean;
  /** Its model, `provider/model`. */
  model?: string;
  /** How it presents itself. */
  identity: { name: string; avatar: string };
}

/**
 * Result of `agent.identity.get`.
 *
 * @example
 * ```ts
 * import type { AgentIdentity } from "@gw/gw";
 * const id: AgentIdentity = { agentId: "main", name: "Assistant", avatar: "🤖", nameSource: "default" };
 * console.log(id.name);
 * ```
 */
export interface AgentIdentity {
  /** The agent's id. */
  agentId: string;
  /** Its name. */
  name: string;
  /** Its avatar (an emoji or a URL). */
  avatar: string;
  /** Whether the name was configured or is the default. */
  nameSource: "config" | "default";
}

/**
 * Params and results of the methods whose shapes gw types, keyed by method
 * name: {@link GatewayClient.request} uses it to type `params` and the result.
 * Other methods work too, with `unknown` params and result.
 *
 * @example
 * ```ts
 * import type { MethodMap } from "@gw/gw";
 * type SendParams = MethodMap["chat.send"]["params"];
 * const p: SendParams = { sessionKey: "main", message: "hi", idempotencyKey: "k1" };
 * console.log(p.sessionKey);
 * ```
 */
export interface MethodMap {
  /** Is the gateway up; `probe` refreshes channel health first. Scope: any. */
  health: { params: { probe?: boolean } | undefined; result: HealthResult };
  /** Process, sessions, connections, memory. Scope: read. */
  status: { params: Record<string, unknown> | undefined; result: StatusResult };
  /** Who is connected. Scope: read. */
  "system-presence": { params: Record<string, never> | undefined; result: PresenceEntry[] };
  /** The last heartbeat, or null. Scope: read. */
  "last-heartbeat": { params: Record<string, never> | undefined; result: HeartbeatRecord | null };
  /** Turn heartbeats on or off. Scope: admin. */
  "set-heartbeats": { params: { enabled: boolean }; result: { ok: true; enabled: boolean } };
  /** Post a status line to presence. Scope: admin. */
  "system-event": {
    params: { text: string } & Partial<Omit<PresenceEntry, "ts" | "text">>;
    result: { ok: true };
  };
  /** Read the gateway's log by byte cursor. Scope: read. */
  "logs.tail": {
    params: { cursor?: number; limit?: number; maxBytes?: number } | undefined;
    result: LogsTailResult;
  };
  /** The config, secrets redacted. Scope: read. */
  "config.get": { params: Record<string, never> | undefined; result: ConfigSnapshot };
  /** The config's JSON Schema. Scope: read. */
  "config.schema": {
    params: Record<string, never> | undefined;
    result: {
      schema: Record<string, unknown>;
      uiHints: Record<string, unknown>;
      version: string;
      generatedAt: string;
    };
  };
  /** Replace the config. Scope: admin. */
  "config.set": {
    params: { raw?: string; config?: Record<string, unknown>; baseHash?: string };
    result: ConfigWriteResult;
  };
  /** Merge a patch into the config. Scope: admin. */
  "config.patch": {
    params: { raw?: string; patch?: Record<string, unknown>; baseHash?: string; note?: string };
    result: ConfigWriteResult;
  };
  /** Replace the config and apply it. Scope: admin. */
  "config.apply": {
    params: { raw?: string; config?: Record<string, unknown>; baseHash?: string; note?: string };
    result: ConfigWriteResult;
  };
  /** The configured models. Scope: read. */
  "models.list": { params: Record<string, unknown> | undefined; result: { models: ModelEntry[] } };
  /** The agents. Scope: read. */
  "agents.list": {
    params: Record<string, never> | undefined;
    result: {
      defaultId: string;
      mainKey: string;
      scope: string;
      agents: AgentEntry[];
    };
  };
  /** An agent's name and avatar. Scope: read. */
  "agent.identity.get": {
    params: { agentId?: string; sessionKey?: string } | undefined;
    result: AgentIdentity;
  };
  /** Run an agent turn; answers twice (use `requestFinal`). Scope: write. */
  agent: {
    params: {
      message: string;
      idempotencyKey: string;
      sessionKey?: string;
      agentId?: string;
      thinking?: ThinkingLevel;
      model?: string;
      /** Seconds. */
      timeout?: number;
      extraSystemPrompt?: string;
    };
    /** The final reply (use `requestFinal`); the first reply is `{status: "accepted"}`. */
    result: AgentFinal;
  };
  /** Wait for a run to end. Scope: write. */
  "agent.wait": {
    params: { runId: string; timeoutMs?: number };
    result: {
      runId: string;
      status: "ok" | "error" | "timeout";
      startedAt?: number;
      endedAt?: number;
      stopReason?: string;
      error?: string;
    };
  };
  /** Send a chat message; the reply streams as `chat` events. Scope: write. */
  "chat.send": {
    params: {
      sessionKey: string;
      message: string;
      idempotencyKey: string;
      thinking?: ThinkingLevel;
      timeoutMs?: number;
    };
    result: {
      runId: string;
      status: "started" | "in_flight" | "ok" | "error" | "aborted" | "timeout";
      cached?: boolean;
    };
  };
  /** A session's transcript, newest page first. Scope: read. */
  "chat.history": {
    params: { sessionKey: string; limit?: number; before?: number; maxBytes?: number };
    result: {
      sessionKey: string;
      sessionId?: string;
      messages: ChatMessage[];
      hasMore: boolean;
      /** Pass as `before` for the previous page. */
      before?: number;
      totalMessages: number;
      pendingInputs: {
        items: { runId: string; message: string; acceptedAt: number }[];
        total: number;
      };
      thinkingLevel?: ThinkingLevel;
      hasActiveRun?: boolean;
      activeRunIds?: string[];
    };
  };
  /** Stop a session's runs. Scope: write. */
  "chat.abort": {
    params: { sessionKey: string; runId?: string };
    result: { ok: true; aborted: boolean; runIds: string[] };
  };
  /** Send a message out through a channel. Scope: write. */
  send: {
    params: {
      to: string;
      message: string;
      idempotencyKey: string;
      channel?: string;
      accountId?: string;
      replyTo?: string;
    };
    result: { ok: true; messageId: string; channel: string; to: string; cached?: boolean };
  };
  /** List sessions. Scope: read. */
  "sessions.list": {
    params: {
      limit?: number;
      offset?: number;
      activeMinutes?: number;
      search?: string;
      label?: string;
      agentId?: string;
      includeDerivedTitles?: boolean;
      includeLastMessage?: boolean;
    } | undefined;
    result: {
      ts: number;
      count: number;
      totalCount: number;
      hasMore: boolean;
      nextOffset: number | null;
      sessions: SessionRow[];
      defaults: { modelProvider: string; model: string; thinkingDefault: ThinkingLevel };
    };
  };
  /** The last messages of some sessions. Scope: read. */
  "sessions.preview": {
    params: { keys: string[]; limit?: number; maxChars?: number };
    result: {
      ts: number;
      previews: {
        key: string;
        status: "ok" | "empty" | "missing";
        items: { role: string; text: string; timestamp: number }[];
      }[];
    };
  };
  /** Change a session's settings (null clears one). Scope: write. */
  "sessions.patch": {
    params: {
      key: string;
      label?: string | null;
      model?: string | null;
      thinkingLevel?: ThinkingLevel | null;
      verboseLevel?: "off" | "on" | null;
      responseUsage?: "off" | "tokens" | "full" | null;
    };
    result: { ok: true; key: string; entry: SessionRow };
  };
  /** Start a session over. Scope: admin. */
  "sessions.reset": {
    params: { key: string; reason?: string };
    result: { ok: true; key: string; entry: SessionRow };
  };
  /** Delete a session. Scope: admin. */
  "sessions.delete": {
    params: { key: string; deleteTranscript?: boolean };
    result: { ok: true; key: string; deleted: boolean };
  };
  /** Summarize old messages to make room. Scope: admin. */
  "sessions.compact": {
    params: { key: string; maxLines?: number };
    result: { ok: true; key: string; compacted: boolean; summarized: number; kept: number };
  };
  /** Provider usage windows. Scope: read. */
  "usage.status": {
    params: Record<string, never> | undefined;
    result: { updatedAt: number; providers: unknown[] };
  };
  /** Tokens and cost over the last days. Scope: read. */
  "usage.cost": { params: { days?: number } | undefined; result: UsageCostResult };
}

/**
 * Thinking levels (how long a model may think before it answers).
 *
 * @example
 * ```ts
 * import type { ThinkingLevel } from "@gw/gw";
 * const level: ThinkingLevel = "low";
 * console.log(level);
 * ```
 */
export type ThinkingLevel =
  | "off"
  | "minimal"
  | "low"
  | "medium"
  | "high"
  | "xhigh"
  | "adaptive"
  | "max"
  | "ultra";

/**
 * A transcript message as `chat.history` returns it (pi-ai's message shape,
 * plus gw notes). `content` is a string or a list of blocks such as
 * `{type: "text", text}`.
 *
 * @example
 * ```ts
 * import type { ChatMessage } from "@gw/gw";
 * function textOf(m: ChatMessage): string {
 *   if (typeof m.content === "string") return m.content;
 *   return m.content.map((b) => (b.type === "text" ? String(b.text) : "")).join("");
 * }
 * console.log(textOf({ role: "assistant", content: [{ type: "text", text: "hi" }], timestamp: 0 }));
 * ```
 */
export type ChatMessage = {
  /** Who wrote it. */
  role: "user" | "assistant" | "toolResult" | "custom";
  /** The text, or content blocks. */
  content: string | Record<string, unknown>[];
  /** When it was written, epoch ms. */
  timestamp: number;
  /** gw's note: the message's position in the transcript. */
  __openclaw?: { seq: number };
} & Record<string, unknown>;

/**
 * A session as `sessions.list` and `sessions.changed` show it.
 *
 * @example
 * ```ts
 * import type { SessionRow } from "@gw/gw";
 * const line = (s: SessionRow) => `${s.key}: ${s.messageCount} messages, $${s.costUsd.toFixed(2)}`;
 * console.log(typeof line); // function
 * ```
 */
export interface SessionRow {
  /** The session key, for example `agent:main:main`. */
  key: string;
  /** The current transcript's id (a reset starts a new one). */
  sessionId: string;
  /** The agent it belongs to. */
  agentId: string;
  /** What kind of chat it is. */
  kind: "direct" | "group" | "channel";
  /** Same as `kind` (OpenClaw sends both). */
  chatType: "direct" | "group" | "channel";
  /** A label set with `sessions.patch`. */
  label?: string;
  /** A name to show. */
  displayName: string;
  /** A title derived from the first messages. */
  derivedTitle?: string;
  /** The start of the last message. */
  lastMessagePreview?: string;
  /** When it was created, epoch ms. */
  createdAt: number;
  /** When it last changed, epoch ms. */
  updatedAt: number;
  /** Its model override. */
  model?: string;
  /** Its model's provider. */
  modelProvider?: string;
  /** Its thinking level override. */
  thinkingLevel?: ThinkingLevel;
  /** Its verbose level. */
  verboseLevel?: string;
  /** Whether replies show usage. */
  responseUsage?: string;
  /** Input tokens used so far. */
  inputTokens: number;
  /** Output tokens used so far. */
  outputTokens: number;
  /** All tokens used so far. */
  totalTokens: number;
  /** Cost so far, USD. */
  costUsd: number;
  /** Messages in the transcript. */
  messageCount: number;
  /** How often it was compacted. */
  compactionCount: number;
  /** Its run status. */
  status?: string;
  /** Whether it is archived. */
  archived: boolean;
  /** When it was archived, epoch ms. */
  archivedAt?: number;
  /** Whether it is pinned. */
  pinned: boolean;
  /** Whether its last run was aborted. */
  abortedLastRun: boolean;
  /** Whether a run is going on now. */
  hasActiveRun: boolean;
}

/**
 * `agent`'s final reply.
 *
 * @example
 * ```ts ignore
 * import { GatewayClient } from "@gw/gw";
 * const client = new GatewayClient({ url: "ws://127.0.0.1:18789", token: "secret" });
 * await client.connect();
 * const final = await client.requestFinal("agent", {
 *   message: "What's the weather like?",
 *   idempotencyKey: crypto.randomUUID(),
 * });
 * console.log(final.status, final.result.payloads.map((p) => p.text).join("\n"));
 * await client.close();
 * ```
 */
export interface AgentFinal {
  /** The run's id. */
  runId: string;
  /** The session it ran in. */
  sessionKey: string;
  /** The agent that ran. */
  agentId: string;
  /** How it ended. */
  status: "ok" | "error" | "timeout";
  /** A one-word summary: `completed`, `failed`, `aborted`, ... */
  summary: "completed" | "failed" | "aborted" | string;
  /** The reply. */
  result: {
    /** The reply's text parts. */
    payloads: { text: string; mediaUrl: null }[];
    /** Run details (model, usage, ...). */
    meta: Record<string, unknown>;
  };
  /** When it started, epoch ms. */
  startedAt: number;
  /** When it ended, epoch ms. */
  endedAt: number;
  /** True when this is the stored reply of an earlier request with the same idempotency key. */
  cached?: boolean;
}

/**
 * Token and cost totals (USD).
 *
 * @example
 * ```ts
 * import type { UsageTotals } from "@gw/gw";
 * const perToken = (u: UsageTotals) => u.totalTokens ? u.totalCost / u.totalTokens : 0;
 * console.log(typeof perToken); // function
 * ```
 */
export interface UsageTotals {
  /** Input tokens. */
  input: number;
  /** Output tokens. */
  output: number;
  /** Tokens read from the prompt cache. */
  cacheRead: number;
  /** Tokens written to the prompt cache. */
  cacheWrite: number;
  /** All tokens. */
  totalTokens: number;
  /** All cost. */
  totalCost: number;
  /** Cost of input tokens. */
  inputCost: number;
  /** Cost of output tokens. */
  outputCost: number;
  /** Cost of cache reads. */
  cacheReadCost: number;
  /** Cost of cache writes. */
  cacheWriteCost: number;
  /** Entries whose model has no known price (counted as 0). */
  missingCostEntries: number;
}

/**
 * `usage.cost`'s result.
 *
 * @example
 * ```ts
 * import type { UsageCostResult } from "@gw/gw";
 * const busiest = (r: UsageCostResult) =>
 *   [...r.daily].sort((a, b) => b.totalTokens - a.totalTokens)[0]?.date;
 * console.log(typeof busiest); // function
 * ```
 */
export interface UsageCostResult {
  /** When it was computed, epoch ms. */
  updatedAt: number;
  /** How many days it covers. */
  days: number;
  /** Per day (`date` is YYYY-MM-DD). */
  daily: (UsageTotals & { date: string })[];
  /** Over all days. */
  totals: UsageTotals;
  /** Per model. */
  byModel: (UsageTotals & { model: string })[];
  /** Per agent. */
  byAgent: (UsageTotals & { agentId: string })[];
  /** Per session. */
  bySession: Record<string, unknown>[];
}

/**
 * The `chat` event: one run's reply streaming in. Deltas, then exactly one of
 * `final`, `aborted` or `error`.
 *
 * @example
 * ```ts
 * import type { ChatEvent } from "@gw/gw";
 * let text = "";
 * function onChat(e: ChatEvent): boolean {
 *   if (e.state === "delta") text = e.replace ? e.deltaText ?? "" : text + (e.deltaText ?? "");
 *   return e.state !== "delta"; // true once the run is over
 * }
 * onChat({ runId: "r", sessionKey: "main", seq: 1, state: "delta", deltaText: "Hel" });
 * onChat({ runId: "r", sessionKey: "main", seq: 2, state: "delta", deltaText: "lo" });
 * console.log(text); // Hello
 * ```
 */
export interface ChatEvent {
  /** The run (the `chat.send` idempotency key). */
  runId: string;
  /** The session it runs in. */
  sessionKey: string;
  /** The agent that runs it. */
  agentId?: string;
  /** The event's number within the run. */
  seq: number;
  /** `delta` while streaming; the run ends with `final`, `aborted` or `error`. */
  state: "delta" | "final" | "aborted" | "error";
  /** For deltas the assistant text so far; for final the whole message. */
  message?: ChatMessage;
  /** Text added since the previous delta (whole text with `replace`). */
  deltaText?: string;
  /** The text was rewritten: `deltaText` replaces everything so far. */
  replace?: boolean;
  /** Token usage (on final). */
  usage?: Record<string, unknown>;
  /** Why the model stopped (on final), for example `end_turn`. */
  stopReason?: string;
  /** What went wrong (on error). */
  errorMessage?: string;
  /** The kind of error. */
  errorKind?: "refusal" | "timeout" | "rate_limit" | "context_length" | "unknown";
}

/**
 * The `agent` event: a run's lifecycle, text, thinking and tool calls.
 *
 * @example
 * ```ts
 * import type { AgentEvent } from "@gw/gw";
 * const isEnd = (e: AgentEvent) => e.stream === "lifecycle" && e.data.phase === "end";
 * console.log(isEnd({ runId: "r", seq: 9, stream: "lifecycle", ts: 0, data: { phase: "end" } }));
 * ```
 */
export interface AgentEvent {
  /** The run. */
  runId: string;
  /** The session it runs in. */
  sessionKey?: string;
  /** The agent that runs it. */
  agentId?: string;
  /** The event's number within the run. */
  seq: number;
  /** `lifecycle` (`data.phase`), `assistant` (`data.text`), `thinking`, `tool`, ... */
  stream: "lifecycle" | "assistant" | "thinking" | "tool" | string;
  /** When it happened, epoch ms. */
  ts: number;
  /** The stream's data. */
  data: Record<string, unknown>;
}

/**
 * A method whose params and result gw types (a key of {@link MethodMap}).
 *
 * @example
 * ```ts
 * import type { MethodName } from "@gw/gw";
 * const m: MethodName = "chat.history";
 * console.log(m);
 * ```
 */
export type MethodName = keyof MethodMap;
/**
 * The params of method `M` (`unknown` for a method {@link MethodMap} lacks).
 *
 * @example
 * ```ts
 * import type { ParamsOf } from "@gw/gw";
 * const p: ParamsOf<"chat.abort"> = { sessionKey: "main" };
 * console.log(p);
 * ```
 */
export type ParamsOf<M extends string> = M extends MethodName ? MethodMap[M]["params"] : unknown;
/**
 * The result of method `M` (`unknown` for a method {@link MethodMap} lacks).
 *
 * @example
 * ```ts
 * import type { ResultOf } from "@gw/gw";
 * const r: ResultOf<"chat.abort"> = { ok: true, aborted: false, runIds: [] };
 * console.log(r.aborted);
 * ```
 */
export type ResultOf<M extends string> = M extends MethodName ? MethodMap[M]["result"] : unknown;
