/**
 * The OpenClaw Gateway wire protocol as plain TypeScript types and constants.
 *
 * This module has no dependencies, so the client library (`mod.ts`) can ship it
 * to browsers, Node and Bun. The server's zod schemas in `lib/protocol/schemas.ts`
 * are checked against these types at compile time.
 *
 * @module
 */

/** Protocol versions gw negotiates, lowest first. */
export const PROTOCOL_VERSIONS: readonly number[] = [3, 4];
/** The newest protocol version gw speaks. */
export const PROTOCOL_VERSION = 4;
/** The oldest protocol version gw still speaks. */
export const MIN_PROTOCOL_VERSION = 3;

/** WebSocket close codes used by the gateway. */
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

/** Top-level error codes of the protocol. */
export const ErrorCode = {
  NOT_LINKED: "NOT_LINKED",
  NOT_PAIRED: "NOT_PAIRED",
  AGENT_TIMEOUT: "AGENT_TIMEOUT",
  INVALID_REQUEST: "INVALID_REQUEST",
  APPROVAL_NOT_FOUND: "APPROVAL_NOT_FOUND",
  UNAVAILABLE: "UNAVAILABLE",
  /** Protocol 4 only: a scope or role check failed. */
  FORBIDDEN: "FORBIDDEN",
} as const;
/** One of {@link ErrorCode}. */
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

/** Operator scopes. `operator.admin` satisfies every scope. */
export const Scope = {
  ADMIN: "operator.admin",
  READ: "operator.read",
  WRITE: "operator.write",
  APPROVALS: "operator.approvals",
  PAIRING: "operator.pairing",
  QUESTIONS: "operator.questions",
  TALK: "operator.talk",
  TALK_SECRETS: "operator.talk.secrets",
} as const;
/** One of {@link Scope}, or another scope string a newer peer knows. */
export type Scope = typeof Scope[keyof typeof Scope];

/** The scope set the OpenClaw CLI asks for by default. */
export const DEFAULT_OPERATOR_SCOPES: readonly string[] = [
  Scope.ADMIN,
  Scope.READ,
  Scope.WRITE,
  Scope.APPROVALS,
  Scope.QUESTIONS,
  Scope.PAIRING,
  Scope.TALK_SECRETS,
];

/** Connection roles. */
export type Role = "operator" | "node";

/** The error object of a failed response. */
export interface ErrorShape {
  code: string;
  message: string;
  details?: Record<string, unknown>;
  retryable?: boolean;
  retryAfterMs?: number;
}

/** A request frame, client to gateway. */
export interface RequestFrame {
  type: "req";
  id: string;
  method: string;
  params?: unknown;
  traceparent?: string;
}

/** A response frame, gateway to client. */
export interface ResponseFrame {
  type: "res";
  id: string;
  ok: boolean;
  payload?: unknown;
  error?: ErrorShape;
}

/** State versions carried by `presence` and `health` events. */
export interface StateVersion {
  presence: number;
  health: number;
}

/** An event frame, gateway to client. */
export interface EventFrame {
  type: "event";
  event: string;
  payload?: unknown;
  seq?: number;
  stateVersion?: StateVersion;
}

/** Any frame. */
export type Frame = RequestFrame | ResponseFrame | EventFrame;

/** Payload of the `connect.challenge` event the gateway sends at open. */
export interface ConnectChallenge {
  nonce: string;
  ts: number;
}

/** The client block of connect params. */
export interface ClientInfo {
  id: string;
  version: string;
  platform: string;
  mode: string;
  displayName?: string;
  deviceFamily?: string;
  modelIdentifier?: string;
  instanceId?: string;
  buildId?: string;
  timeZone?: string;
}

/** The signed device block of connect params. */
export interface DeviceAuth {
  id: string;
  publicKey: string;
  signature: string;
  signedAt: number;
  nonce: string;
}

/** Params of the `connect` request. */
export interface ConnectParams {
  minProtocol: number;
  maxProtocol: number;
  client: ClientInfo;
  role?: Role;
  scopes?: string[];
  caps?: string[];
  commands?: string[];
  permissions?: Record<string, boolean>;
  pathEnv?: string;
  locale?: string;
  userAgent?: string;
  auth?: {
    token?: string;
    password?: string;
    deviceToken?: string;
    bootstrapToken?: string;
  };
  device?: DeviceAuth;
}

/** One entry of the presence list. */
export interface PresenceEntry {
  ts: number;
  host?: string;
  ip?: string;
  version?: string;
  platform?: string;
  deviceFamily?: string;
  modelIdentifier?: string;
  mode?: string;
  reason?: string;
  text?: string;
  instanceId?: string;
  deviceId?: string;
  clientId?: string;
  roles?: string[];
  scopes?: string[];
  tags?: string[];
  lastInputSeconds?: number;
  onlineSince?: number;
}

/** Limits the gateway announces in hello-ok. */
export interface Policy {
  maxPayload: number;
  maxBufferedBytes: number;
  tickIntervalMs: number;
  /** Protocol 4 only. */
  attachments?: { maxBytes: number; maxImageBytes: number };
}

/** Defaults for session keys, in the hello-ok snapshot. */
export interface SessionDefaults {
  defaultAgentId: string;
  mainKey: string;
  mainSessionKey: string;
  scope: string;
}

/** The state snapshot in hello-ok. */
export interface Snapshot {
  presence: PresenceEntry[];
  health: HealthResult;
  stateVersion: StateVersion;
  uptimeMs: number;
  configPath?: string;
  stateDir?: string;
  sessionDefaults: SessionDefaults;
  authMode: "token" | "password";
}

/** The payload of a successful `connect`. */
export interface HelloOk {
  type: "hello-ok";
  protocol: number;
  server: { version: string; connId: string; host?: string; bootId?: string };
  features: { methods: string[]; events: string[]; capabilities?: string[] };
  snapshot: Snapshot;
  auth: {
    role: Role;
    scopes: string[];
    method?: "token" | "password" | "device-token";
    /** The device of this connection, when it signed one. */
    deviceId?: string;
    /** A device token issued by this connect: returned here only, once; keep it. */
    deviceToken?: string;
    deviceTokenScopes?: string[];
    issuedAtMs?: number;
  } & Record<string, unknown>;
  policy: Policy;
}

/** Event-loop figures reported by `health` and `status`. */
export interface EventLoopStats {
  degraded: boolean;
  /** How long it has been degraded, or null. */
  degradedSinceMs: number | null;
  /** Why it is degraded: `event_loop_delay` (late timers), `cpu` (busy process). */
  reasons: string[];
  delayP99Ms: number;
  delayMaxMs: number;
  intervalMs: number;
  /** CPU time per wall time, capped at 1. */
  utilization: number;
  /** CPU time per wall time (above 1 when several threads work). */
  cpuCoreRatio: number;
}

/** Heartbeat settings of one agent. */
export interface HeartbeatInfo {
  enabled: boolean;
  every: string;
  everyMs: number;
}

/** Where an agent's sessions are kept, how many, and the latest. */
export interface SessionsSummary {
  path: string;
  count: number;
  recent: { key: string; updatedAt: number; age: number }[];
}

/** Result of `health`. */
export interface HealthResult {
  ok: boolean;
  ts: number;
  durationMs: number;
  channels: Record<string, unknown>;
  channelOrder: string[];
  channelLabels: Record<string, string>;
  heartbeatSeconds: number;
  defaultAgentId: string;
  agents: {
    agentId: string;
    isDefault: boolean;
    heartbeat: HeartbeatInfo;
    sessions: SessionsSummary;
  }[];
  sessions: SessionsSummary;
  eventLoop: EventLoopStats;
}

/** Result of `status`. */
export interface StatusResult {
  runtimeVersion: string;
  uptimeMs: number;
  pid: number;
  heartbeat: {
    enabled: boolean;
    defaultAgentId: string;
    agents: ({ agentId: string } & HeartbeatInfo)[];
  };
  channelSummary: unknown[];
  queuedSystemEvents: string[];
  sessions: {
    paths: string[];
    count: number;
    defaults: { model: string | null };
    recent: unknown[];
    byAgent: ({ agentId: string } & SessionsSummary)[];
  };
  connections: { total: number; operators: number; nodes: number; preauth: number };
  eventLoop: EventLoopStats;
  processMemory: { rssBytes: number; heapUsedBytes: number; heapTotalBytes: number };
}

/** A heartbeat record, as `last-heartbeat` returns and the `heartbeat` event carries. */
export interface HeartbeatRecord {
  ts: number;
  agentId: string;
  status: "sent" | "ok-empty" | "ok-token" | "skipped" | "failed";
  reason?: string;
  durationMs?: number;
}

/** Result of `logs.tail`. */
export interface LogsTailResult {
  file: string;
  cursor: number;
  size: number;
  lines: string[];
  truncated: boolean;
  reset: boolean;
}

/** Result of `config.get`. */
export interface ConfigSnapshot {
  path: string;
  exists: boolean;
  /** The file's text with secrets redacted. */
  raw: string | null;
  /** The config as written, secrets redacted. */
  parsed: Record<string, unknown> | null;
  /** The effective config with defaults, secrets redacted. */
  config: Record<string, unknown>;
  /** sha256 of the file's exact bytes; send it back as `baseHash` on writes. */
  hash: string;
  valid: boolean;
  issues: { path: string; message: string }[];
}

/** Result of `config.set`, `config.patch` and `config.apply`. */
export interface ConfigWriteResult {
  ok: true;
  path: string;
  hash: string;
  config: Record<string, unknown>;
  /** Settings that changed but need a restart to take effect. */
  restartRequired: string[];
}

/** A model the gateway can route to. */
export interface ModelEntry {
  id: string;
  name: string;
  provider: string;
  contextWindow?: number;
  reasoning?: boolean;
}

/** An agent entry of `agents.list`. */
export interface AgentEntry {
  id: string;
  name: string;
  default: boolean;
  model?: string;
  identity: { name: string; avatar: string };
}

/** Result of `agent.identity.get`. */
export interface AgentIdentity {
  agentId: string;
  name: string;
  avatar: string;
  nameSource: "config" | "default";
}

/** Params and results of every method gw implements, keyed by method name. */
export interface MethodMap {
  health: { params: { probe?: boolean } | undefined; result: HealthResult };
  status: { params: Record<string, unknown> | undefined; result: StatusResult };
  "system-presence": { params: Record<string, never> | undefined; result: PresenceEntry[] };
  "last-heartbeat": { params: Record<string, never> | undefined; result: HeartbeatRecord | null };
  "set-heartbeats": { params: { enabled: boolean }; result: { ok: true; enabled: boolean } };
  "system-event": {
    params: { text: string } & Partial<Omit<PresenceEntry, "ts" | "text">>;
    result: { ok: true };
  };
  "logs.tail": {
    params: { cursor?: number; limit?: number; maxBytes?: number } | undefined;
    result: LogsTailResult;
  };
  "config.get": { params: Record<string, never> | undefined; result: ConfigSnapshot };
  "config.schema": {
    params: Record<string, never> | undefined;
    result: {
      schema: Record<string, unknown>;
      uiHints: Record<string, unknown>;
      version: string;
      generatedAt: string;
    };
  };
  "config.set": {
    params: { raw?: string; config?: Record<string, unknown>; baseHash?: string };
    result: ConfigWriteResult;
  };
  "config.patch": {
    params: { raw?: string; patch?: Record<string, unknown>; baseHash?: string; note?: string };
    result: ConfigWriteResult;
  };
  "config.apply": {
    params: { raw?: string; config?: Record<string, unknown>; baseHash?: string; note?: string };
    result: ConfigWriteResult;
  };
  "models.list": { params: Record<string, unknown> | undefined; result: { models: ModelEntry[] } };
  "agents.list": {
    params: Record<string, never> | undefined;
    result: {
      defaultId: string;
      mainKey: string;
      scope: string;
      agents: AgentEntry[];
    };
  };
  "agent.identity.get": {
    params: { agentId?: string; sessionKey?: string } | undefined;
    result: AgentIdentity;
  };
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
  "chat.abort": {
    params: { sessionKey: string; runId?: string };
    result: { ok: true; aborted: boolean; runIds: string[] };
  };
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
  "sessions.reset": {
    params: { key: string; reason?: string };
    result: { ok: true; key: string; entry: SessionRow };
  };
  "sessions.delete": {
    params: { key: string; deleteTranscript?: boolean };
    result: { ok: true; key: string; deleted: boolean };
  };
  "sessions.compact": {
    params: { key: string; maxLines?: number };
    result: { ok: true; key: string; compacted: boolean; summarized: number; kept: number };
  };
  "usage.status": {
    params: Record<string, never> | undefined;
    result: { updatedAt: number; providers: unknown[] };
  };
  "usage.cost": { params: { days?: number } | undefined; result: UsageCostResult };
}

/** Thinking levels. */
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

/** A transcript message as `chat.history` returns it (pi-ai's message shape, plus gw notes). */
export type ChatMessage = {
  role: "user" | "assistant" | "toolResult" | "custom";
  content: string | Record<string, unknown>[];
  timestamp: number;
  __openclaw?: { seq: number };
} & Record<string, unknown>;

/** A session as `sessions.list` and `sessions.changed` show it. */
export interface SessionRow {
  key: string;
  sessionId: string;
  agentId: string;
  kind: "direct" | "group" | "channel";
  chatType: "direct" | "group" | "channel";
  label?: string;
  displayName: string;
  derivedTitle?: string;
  lastMessagePreview?: string;
  createdAt: number;
  updatedAt: number;
  model?: string;
  modelProvider?: string;
  thinkingLevel?: ThinkingLevel;
  verboseLevel?: string;
  responseUsage?: string;
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  costUsd: number;
  messageCount: number;
  compactionCount: number;
  status?: string;
  archived: boolean;
  archivedAt?: number;
  pinned: boolean;
  abortedLastRun: boolean;
  hasActiveRun: boolean;
}

/** `agent`'s final reply. */
export interface AgentFinal {
  runId: string;
  sessionKey: string;
  agentId: string;
  status: "ok" | "error" | "timeout";
  summary: "completed" | "failed" | "aborted" | string;
  result: {
    payloads: { text: string; mediaUrl: null }[];
    meta: Record<string, unknown>;
  };
  startedAt: number;
  endedAt: number;
  cached?: boolean;
}

/** Token and cost totals (USD). */
export interface UsageTotals {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  totalTokens: number;
  totalCost: number;
  inputCost: number;
  outputCost: number;
  cacheReadCost: number;
  cacheWriteCost: number;
  missingCostEntries: number;
}

/** `usage.cost`'s result. */
export interface UsageCostResult {
  updatedAt: number;
  days: number;
  daily: (UsageTotals & { date: string })[];
  totals: UsageTotals;
  byModel: (UsageTotals & { model: string })[];
  byAgent: (UsageTotals & { agentId: string })[];
  bySession: Record<string, unknown>[];
}

/** The `chat` event. */
export interface ChatEvent {
  runId: string;
  sessionKey: string;
  agentId?: string;
  seq: number;
  state: "delta" | "final" | "aborted" | "error";
  /** For deltas the assistant text so far; for final the whole message. */
  message?: ChatMessage;
  /** Text added since the previous delta (whole text with `replace`). */
  deltaText?: string;
  replace?: boolean;
  usage?: Record<string, unknown>;
  stopReason?: string;
  errorMessage?: string;
  errorKind?: "refusal" | "timeout" | "rate_limit" | "context_length" | "unknown";
}

/** The `agent` event. */
export interface AgentEvent {
  runId: string;
  sessionKey?: string;
  agentId?: string;
  seq: number;
  stream: "lifecycle" | "assistant" | "thinking" | "tool" | string;
  ts: number;
  data: Record<string, unknown>;
}

/** A method gw implements. */
export type MethodName = keyof MethodMap;
/** The params of method `M`. */
export type ParamsOf<M extends string> = M extends MethodName ? MethodMap[M]["params"] : unknown;
/** The result of method `M`. */
export type ResultOf<M extends string> = M extends MethodName ? MethodMap[M]["result"] : unknown;
