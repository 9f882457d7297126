/**
 * The config file's schema (`<state>/gw.json`). It is also served as JSON
 * Schema by `config.schema`, so every field carries a description.
 *
 * @module
 */
import { z } from "zod";
import { parseDuration } from "../duration.ts";
import { channelsConfig } from "../../channels/config.ts";

const duration = z.string().refine((s) => parseDuration(s) !== undefined, {
  message: "expected a duration such as 30m, 1h or 0",
});

const gateway = z.strictObject({
  port: z.int().min(0).max(65535).default(18789).describe("TCP port for HTTP and WebSocket."),
  bind: z.string().min(1).default("127.0.0.1").describe(
    "Address to listen on. Anything but loopback needs a strong token or password.",
  ),
  auth: z.strictObject({
    mode: z.enum(["token", "password"]).optional().describe(
      "Which shared secret clients present. Defaults to token.",
    ),
    token: z.string().min(16).max(512).optional().describe(
      "Shared token. When absent gw uses <state>/token, generated on first start.",
    ),
    password: z.string().min(8).max(512).optional().describe("Shared password (password mode)."),
  }).refine((a) => a.mode !== "password" || a.password !== undefined, {
    // Saved at run time, this would lock every client out, the writer included.
    message: "password mode needs gateway.auth.password",
    path: ["password"],
  }).prefault({}),
  trustedProxies: z.array(z.string()).default([]).describe(
    "Peer addresses whose X-Forwarded-For header is believed.",
  ),
  allowedOrigins: z.array(z.string()).default([]).describe(
    "Browser origins allowed to connect, besides the gateway's own origin.",
  ),
  tickIntervalMs: z.int().min(1000).max(600_000).default(30_000).describe(
    "Interval of the tick event; clients close after two silent intervals.",
  ),
  healthIntervalMs: z.int().min(1000).max(3_600_000).default(60_000).describe(
    "Interval of the health event.",
  ),
  maxPayload: z.int().min(65_536).max(64 * 1024 * 1024).default(25 * 1024 * 1024).describe(
    "Largest frame accepted after the handshake, in bytes.",
  ),
  maxBufferedBytes: z.int().min(65_536).max(1024 * 1024 * 1024).default(50 * 1024 * 1024)
    .describe("Bytes queued to one slow client before it is dropped."),
  handshakeTimeoutMs: z.int().min(250).max(60_000).default(10_000).describe(
    "How long a new socket has to complete connect.",
  ),
  maxPreauthPerIp: z.int().min(1).max(10_000).default(32).describe(
    "Unauthenticated sockets allowed at once from one address.",
  ),
  authRateLimit: z.strictObject({
    maxFailures: z.int().min(1).default(10),
    windowMs: z.int().min(1000).default(60_000),
    lockoutMs: z.int().min(1000).default(300_000),
  }).prefault({}).describe("Lockout after repeated authentication failures from one address."),
}).prefault({});

const heartbeat = z.strictObject({
  enabled: z.boolean().default(true),
  every: duration.default("30m").describe("How often the agent's heartbeat runs; 0 turns it off."),
}).prefault({});

const thinkingLevel = z.enum(["off", "minimal", "low", "medium", "high", "xhigh"]);

const agent = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/i, "expected letters, digits, _ or -"),
  name: z.string().min(1).max(128).optional(),
  avatar: z.string().min(1).max(64).optional(),
  model: z.string().min(1).optional(),
  systemPrompt: z.string().max(100_000).optional().describe("Instructions for this agent."),
  thinkingDefault: thinkingLevel.optional(),
  default: z.boolean().optional(),
  heartbeat: z.strictObject({ enabled: z.boolean().optional(), every: duration.optional() })
    .optional(),
});

const modelEntry = z.strictObject({
  id: z.string().min(1),
  name: z.string().optional(),
  contextWindow: z.int().positive().optional(),
  reasoning: z.boolean().optional(),
  cost: z.strictObject({
    input: z.number().min(0),
    output: z.number().min(0),
    cacheRead: z.number().min(0).optional(),
    cacheWrite: z.number().min(0).optional(),
  }).optional().describe("USD per million tokens; overrides the built-in price table."),
});

const provider = z.strictObject({
  api: z.enum(["anthropic-messages", "openai-completions"]).optional().describe(
    "Wire API. Defaults to anthropic-messages for the provider id anthropic, else openai-completions.",
  ),
  apiKey: z.string().min(1).optional(),
  baseUrl: z.url().optional(),
  models: z.array(modelEntry).default([]),
});

/** The whole config file. */
export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  gateway,
  agents: z.strictObject({
    defaults: z.strictObject({
      model: z.string().min(1).optional().describe("Default model, as provider/model."),
      systemPrompt: z.string().max(100_000).optional().describe("Instructions for every agent."),
      thinkingDefault: thinkingLevel.default("off").describe("Thinking level of new sessions."),
      maxTokens: z.int().min(256).max(128_000).default(8192).describe(
        "Most output tokens per model call (thinking budget comes on top).",
      ),
      timeoutSeconds: z.int().min(1).max(86_400).default(600).describe(
        "A run past this ends with AGENT_TIMEOUT.",
      ),
      maxConcurrent: z.int().min(1).max(64).default(4).describe(
        "Runs at once across all sessions; more wait their turn (bounds memory and provider load).",
      ),
      maxToolRounds: z.int().min(1).max(100).default(12).describe(
        "Most model calls in one run (each tool round is one).",
      ),
      heartbeat,
    }).prefault({}),
    list: z.array(agent).default([]),
  }).prefault({}),
  models: z.strictObject({
    providers: z.record(z.string(), provider).default({}),
  }).prefault({}),
  channels: channelsConfig,
  logging: z.strictObject({
    level: z.enum(["debug", "info", "warn", "error"]).default("info"),
    maxFileBytes: z.int().min(65_536).default(10 * 1024 * 1024),
    maxFiles: z.int().min(1).max(20).default(3),
  }).prefault({}),
});

/** The effective config, defaults filled in. */
export type GwConfig = z.output<typeof configSchema>;

/** Field names whose values are secrets: redacted in every read. */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  "token",
  "password",
  "apiKey",
  "botToken",
  "secret",
  "webhookSecret",
]);
