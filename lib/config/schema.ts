/**
 * The config file's schema (`<state>/gw.json`). It is also served as JSON
 * Schema by `config.schema`, so every field carries a description.
 *
 * @module
 */
import { z } from "zod";
import { parseDuration } from "../duration.ts";
import { channelsConfig } from "../../channels/config.ts";
import { ttsConfig } from "../tts/config.ts";

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
  http: z.strictObject({
    endpoints: z.strictObject({
      chatCompletions: z.strictObject({
        enabled: z.boolean().default(false).describe(
          "Serve the OpenAI-compatible POST /v1/chat/completions and GET /v1/models " +
            "(Authorization: Bearer <gateway token or password>; full operator access).",
        ),
      }).prefault({}),
      toolsInvoke: z.strictObject({
        enabled: z.boolean().default(false).describe(
          "Serve POST /tools/invoke for the read-only tools (current_time, calculate); " +
            "exec and other high-risk tools are refused whatever this says.",
        ),
      }).prefault({}),
    }).prefault({}),
  }).prefault({}).describe("HTTP endpoints besides health; all off by default."),
}).prefault({});

const heartbeatTarget = {
  target: z.string().min(1).max(64).optional().describe(
    "Channel a heartbeat's message is delivered to (e.g. telegram); none or absent: not delivered.",
  ),
  to: z.string().min(1).max(256).optional().describe("Chat id on the target channel."),
  accountId: z.string().min(1).max(128).optional().describe("Account of the target channel."),
};

const heartbeat = z.strictObject({
  enabled: z.boolean().default(true),
  every: duration.default("30m").describe("How often the agent's heartbeat runs; 0 turns it off."),
  ...heartbeatTarget,
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
  heartbeat: z.strictObject({
    enabled: z.boolean().optional(),
    every: duration.optional(),
    ...heartbeatTarget,
  }).optional(),
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

/** Self-update (`update.run`): off unless turned on, and only from an https feed. */
const update = z.strictObject({
  enabled: z.boolean().default(false).describe(
    "Let update.run replace the gw binary with a newer release from feedUrl, then restart.",
  ),
  feedUrl: z.url({ protocol: /^https$/ }).max(2048).optional().describe(
    "The release feed (https): JSON {version, assets: [{target, url, sha256}]} (docs/methods.md).",
  ),
  channel: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,31}$/, "expected a channel name such as stable")
    .optional().describe("Release channel; replaces {channel} in feedUrl. Defaults to stable."),
}).refine((u) => !u.enabled || u.feedUrl !== undefined, {
  message: "update.enabled needs update.feedUrl",
  path: ["feedUrl"],
}).prefault({});

/** First path segments gw serves itself; `hooks.path` may not take them. */
const RESERVED_HTTP_SEGMENTS = new Set(["v1", "tools", "health", "healthz", "ready", "readyz"]);

const hookMapping = z.strictObject({
  id: z.string().min(1).max(64).optional().describe("Name of the mapping in logs."),
  match: z.strictObject({
    path: z.string().max(256).optional().describe("The <name> of POST <hooks.path>/<name>."),
    source: z.string().max(256).optional().describe("Also require the body's `source` field."),
  }).optional(),
  action: z.enum(["agent", "wake"]).optional().describe(
    "agent (default): start an agent turn; wake: queue a system event for the main session.",
  ),
  wakeMode: z.enum(["now", "next-heartbeat"]).optional().describe(
    "For wake: run the heartbeat now, or leave the event for the next one.",
  ),
  name: z.string().max(256).optional().describe("Shown to the model as the task's name."),
  agentId: z.string().max(64).optional().describe("Agent that takes the turn; default agent else."),
  sessionKey: z.string().max(512).optional().describe(
    "Session of the turn; {{...}} templates need allowRequestSessionKey and allowedSessionKeyPrefixes.",
  ),
  messageTemplate: z.string().max(100_000).optional().describe(
    "The turn's text: {{payload.field}}, {{headers.x}}, {{path}}, {{now}} are filled in.",
  ),
  textTemplate: z.string().max(100_000).optional().describe("For wake: the event's text."),
  forEach: z.string().regex(/^[^.[\]]+$/, "forEach must be a top-level payload key").optional()
    .describe("Start one turn per item of this top-level array (at most 200)."),
  deliver: z.boolean().optional().describe("Send the reply to channel/to. Default true."),
  allowUnsafeExternalContent: z.boolean().optional().describe(
    "Give the model the content unwrapped (not marked as untrusted). Dangerous.",
  ),
  channel: z.string().trim().min(1).optional().describe("Channel the reply goes to."),
  to: z.string().max(256).optional().describe("Chat id the reply goes to."),
  model: z.string().min(1).max(256).optional().describe("Model for this turn (provider/model)."),
  thinking: thinkingLevel.optional(),
  timeoutSeconds: z.int().min(1).max(86_400).optional(),
});

/** Webhooks (`POST <path>/<name>`), with their own token: off by default. */
const hooks = z.strictObject({
  enabled: z.boolean().default(false).describe("Serve webhooks at hooks.path."),
  path: z.string().regex(
    /^\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/,
    "expected a path such as /hooks",
  ).refine((p) => !RESERVED_HTTP_SEGMENTS.has(p.split("/")[1]!.toLowerCase()), {
    message: "hooks.path may not be a path gw serves itself",
  }).default("/hooks").describe("Base path of the webhooks."),
  token: z.string().min(16).max(512).optional().describe(
    "The hooks' own token (Authorization: Bearer, or x-openclaw-token); not the gateway token.",
  ),
  defaultSessionKey: z.string().min(1).max(512).optional().describe(
    "Session of hook turns that name none; else each gets hook:<uuid>.",
  ),
  allowRequestSessionKey: z.boolean().default(false).describe(
    "Let a request's sessionKey (or a templated mapping key) pick the session.",
  ),
  allowedSessionKeyPrefixes: z.array(z.string().min(1).max(128)).max(64).optional().describe(
    "Session keys hooks may use must start with one of these.",
  ),
  allowedAgentIds: z.array(z.string().max(64)).max(256).optional().describe(
    "Agents hooks may start turns for; any when absent.",
  ),
  presets: z.array(z.enum(["gmail"])).max(8).default([]).describe("Built-in mappings to add."),
  mappings: z.array(hookMapping).max(256).default([]).describe(
    "Named hooks: the first whose match fits the path (and source) wins.",
  ),
}).superRefine((h, ctx) => {
  if (h.enabled && !h.token) {
    ctx.addIssue({ code: "custom", path: ["token"], message: "hooks.enabled needs hooks.token" });
  }
  const prefixes = h.allowedSessionKeyPrefixes?.map((p) => p.toLowerCase());
  const allowed = (key: string) =>
    !prefixes || prefixes.some((p) => key.toLowerCase().startsWith(p));
  if (h.defaultSessionKey && !allowed(h.defaultSessionKey)) {
    ctx.addIssue({
      code: "custom",
      path: ["defaultSessionKey"],
      message: "hooks.defaultSessionKey must match hooks.allowedSessionKeyPrefixes",
    });
  }
  if (!h.defaultSessionKey && !allowed("hook:example")) {
    ctx.addIssue({
      code: "custom",
      path: ["allowedSessionKeyPrefixes"],
      message:
        "hooks.allowedSessionKeyPrefixes must include 'hook:' when defaultSessionKey is unset",
    });
  }
  const templated = h.presets.includes("gmail") ||
    h.mappings.some((m) => m.sessionKey !== undefined && /\{\{[^}]+\}\}/.test(m.sessionKey));
  if (templated && !prefixes) {
    ctx.addIssue({
      code: "custom",
      path: ["allowedSessionKeyPrefixes"],
      message:
        "hooks.allowedSessionKeyPrefixes is required when a mapping's sessionKey is a template",
    });
  }
}).prefault({});

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
  tts: ttsConfig.describe("Text to speech: providers, keys, voices and caps."),
  skills: z.strictObject({
    entries: z.record(
      z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/i, "expected a skill name"),
      z.strictObject({
        enabled: z.boolean().optional().describe(
          "Offer this skill to the agent. Installed skills are off until this is true.",
        ),
      }),
    ).default({}).describe("Per-skill settings, by skill name (skills.update writes them)."),
  }).prefault({}),
  logging: z.strictObject({
    level: z.enum(["debug", "info", "warn", "error"]).default("info"),
    maxFileBytes: z.int().min(65_536).default(10 * 1024 * 1024),
    maxFiles: z.int().min(1).max(20).default(3),
  }).prefault({}),
  hooks,
  update,
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
