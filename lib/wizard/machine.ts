/**
 * The setup wizard's steps, as a state machine on a plain, storable state:
 * {@link firstState} makes a session, {@link renderStep} shows its current
 * step, {@link advance} takes an answer and moves on. The gateway keeps the
 * state in KV between requests (`wizard.*`); `gw setup` without a gateway
 * runs the same machine in its own process.
 *
 * The steps, in order (flow `channels` runs only the Telegram ones):
 * 1. `auth.mode`: keep the gateway's secret, generate a new token, or set a
 *    password (`auth.password`, typed twice: `auth.passwordAgain`);
 * 2. `model.provider`: Anthropic (`model.model`, `model.apiKey`) or an
 *    OpenAI-compatible server (`model.baseUrl`, `model.model`,
 *    `model.apiKey`); the key is checked with a real one-token model call
 *    through lib/agent's providers before the wizard moves on, and a
 *    rejected key shows the key step again with the provider's answer;
 * 3. `telegram.mode`: optionally a bot (`telegram.apiRoot` for a self-hosted
 *    Bot API server, `telegram.token`), checked with `getMe`;
 * 4. `tts.provider`: optionally spoken replies (openai, elevenlabs with
 *    `tts.apiKey`, saved unchecked; espeak-ng), only when the config schema
 *    has a `tts` section;
 * 5. `summary`: what will change; yes merges it into gw.json through
 *    {@link ConfigFile.write} and applies it (`applyConfig`), no ends the
 *    wizard as cancelled. Nothing is written before this answer.
 *
 * Secrets (a key, a password, a bot token) live only in the state's draft
 * until the end; steps never carry them back (`sensitive` steps have no
 * `initialValue`) and error messages are the providers' own, which redact
 * the key.
 *
 * @module
 */
import { type ConfigFile, configSchema, mergePatch } from "../config/mod.ts";
import { resolveModel, splitModelRef } from "../agent/models.ts";
import { type ProviderConfig, ProviderError } from "../agent/types.ts";
import { generateToken } from "../server/secret.ts";
import { GatewayError } from "../protocol/errors.ts";
import type { WizardNextResult, WizardRunStatus, WizardStep, WizardStepOption } from "./types.ts";

/** What the machine needs from where it runs: the gateway, or `gw setup` alone. */
export interface WizardHost {
  /** The state directory (where `<state>/token` lives). */
  readonly stateDir: string;
  /** The config file the wizard merges its answers into. */
  readonly config: ConfigFile;
  /** Whether a gateway runs on this config now (false: `gw setup` without one). */
  readonly live: boolean;
  /** An environment variable (ANTHROPIC_API_KEY, TELEGRAM_API_ROOT, ...), or undefined. */
  env(name: string): string | undefined;
  /** Make the written config take effect; returns settings that need a restart. */
  applyConfig(): Promise<string[]>;
  /** Milliseconds since the epoch. */
  now(): number;
  /** Where to note what happened (never a secret). */
  readonly log?: {
    info(message: string, fields?: Record<string, unknown>): void;
    warn(message: string, fields?: Record<string, unknown>): void;
  };
}

/** The steps, by key. */
export type StepKey =
  | "auth.mode"
  | "auth.password"
  | "auth.passwordAgain"
  | "model.provider"
  | "model.baseUrl"
  | "model.model"
  | "model.apiKey"
  | "telegram.mode"
  | "telegram.apiRoot"
  | "telegram.token"
  | "tts.provider"
  | "tts.apiKey"
  | "summary";

/** The model providers offered, as `model.provider` values. */
export const MODEL_CHOICES = [
  "anthropic",
  "ollama",
  "llamacpp",
  "vllm",
  "openai",
  "custom",
  "skip",
] as const;
type ModelChoice = typeof MODEL_CHOICES[number];
/** The speech providers offered, as `tts.provider` values. */
export const TTS_CHOICES = ["openai", "elevenlabs", "espeak-ng"] as const;
type TtsChoice = typeof TTS_CHOICES[number];

/** The answers so far (secrets included) of a running session. */
export interface WizardDraft {
  auth?: { choice: "keep" | "token" | "password"; password?: string };
  model?: {
    choice: ModelChoice;
    baseUrl?: string;
    model?: string;
    /** A key typed in this session (absent: the configured one, or none). */
    apiKey?: string;
    verified?: boolean;
    /** The provider said it was busy (429/529) rather than no. */
    busy?: boolean;
  };
  telegram?: {
    choice: "skip" | "telegram" | "custom";
    apiRoot?: string;
    /** A token typed in this session (absent: the configured one). */
    token?: string;
    bot?: { id: number; username: string };
  };
  tts?: {
    choice: "skip" | TtsChoice;
    /** A key typed in this session (absent: the configured one). */
    apiKey?: string;
  };
}

/** A wizard session, as stored between requests. */
export interface WizardState {
  v: 1;
  /** The session id (`sessionId` on the wire). */
  id: string;
  flow: "setup" | "channels";
  status: WizardRunStatus;
  /** Why it ended (cancelled, error). */
  error?: string;
  /** The current step. */
  step: StepKey;
  /** Bumped each time a step is shown anew, so a stale answer is refused. */
  seq: number;
  /** Why the current step is shown again (a rejected key). */
  stepError?: string;
  draft: WizardDraft;
  /** What was saved, once done. */
  outcome?: { modelRef?: string; channels?: string[]; restartRequired?: string[] };
  createdAt: number;
  updatedAt: number;
}

/** The wizard was cancelled while it was waiting on a check. */
export class WizardCancelledError extends Error {
  /** Create the error. */
  constructor(message = "cancelled") {
    super(message);
    this.name = "WizardCancelledError";
  }
}

/** How long the model check may take. */
export const MODEL_CHECK_TIMEOUT_MS = 20_000;
/** How long the Telegram check may take. */
export const TELEGRAM_CHECK_TIMEOUT_MS = 15_000;
/** The Bot API server unless config or TELEGRAM_API_ROOT says otherwise. */
const DEFAULT_TELEGRAM_API_ROOT = "https://api.telegram.org";
/** The Claude model offered first. */
const DEFAULT_CLAUDE = "claude-sonnet-4-6";
const TEXT_MAX = 4096;

const TITLES: Record<string, string> = {
  auth: "Gateway access",
  model: "Model",
  telegram: "Telegram",
  tts: "Voice",
  summary: "Review",
};

const PROVIDER_LABELS: Record<ModelChoice, string> = {
  anthropic: "Anthropic",
  ollama: "Ollama",
  llamacpp: "llama.cpp",
  vllm: "vLLM",
  openai: "OpenAI",
  custom: "the server",
  skip: "",
};

// ------------------------------------------------------------------ state

/**
 * A new running session at its first step.
 *
 * @example
 * ```ts
 * const s = firstState(crypto.randomUUID(), "setup", Date.now());
 * console.log(s.step); // "auth.mode"
 * ```
 */
export function firstState(id: string, flow: "setup" | "channels", now: number): WizardState {
  return {
    v: 1,
    id,
    flow,
    status: "running",
    step: flow === "channels" ? "telegram.mode" : "auth.mode",
    seq: 1,
    draft: {},
    createdAt: now,
    updatedAt: now,
  };
}

/** The id the current step is shown with. */
export function stepIdOf(state: WizardState): string {
  return `${state.step}#${state.seq}`;
}

/** End a session: its secrets go, its outcome stays. */
export function finish(state: WizardState, status: WizardRunStatus, error?: string): void {
  state.status = status;
  if (error !== undefined) state.error = error;
  else delete state.error;
  state.draft = {};
  delete state.stepError;
}

/** The wire result of a session that ended. */
export function terminalResult(state: WizardState): WizardNextResult {
  const r: WizardNextResult = { done: true, status: state.status };
  if (state.error !== undefined) r.error = state.error;
  const o = state.outcome;
  if (state.status === "done" && o) {
    if (o.channels?.length) {
      r.channels = [...o.channels];
      r.accounts = o.channels.map((channel) => ({ channel, accountId: "default" }));
    }
    if (o.modelRef) r.modelActivation = { modelRef: o.modelRef };
  }
  return r;
}

// ------------------------------------------------------------------ facts

function envOf(host: WizardHost, name: string): string | undefined {
  return host.env(name)?.trim() || undefined;
}

async function fileExists(path: string): Promise<boolean> {
  try {
    const s = await Deno.stat(path);
    return s.isFile && s.size > 0;
  } catch {
    return false;
  }
}

async function authFacts(host: WizardHost): Promise<{ mode: "token" | "password"; has: boolean }> {
  const a = host.config.config.gateway.auth;
  const mode = a.mode ?? (a.password && !a.token ? "password" : "token");
  if (mode === "password") return { mode, has: a.password !== undefined };
  return { mode, has: a.token !== undefined || await fileExists(`${host.stateDir}/token`) };
}

/** The provider id a model choice writes to `models.providers`. */
function providerIdOf(choice: ModelChoice): string {
  return choice;
}

function apiOf(choice: ModelChoice): ProviderConfig["api"] {
  return choice === "anthropic" ? "anthropic-messages" : "openai-completions";
}

/** How the provider would be reached now (config, env, built-in URLs). */
function configuredProvider(host: WizardHost, choice: ModelChoice): ProviderConfig {
  const ref = `${providerIdOf(choice)}/probe`;
  return resolveModel(ref, host.config.config, (n) => host.env(n)).provider;
}

function configuredModel(host: WizardHost): string | undefined {
  return host.config.config.agents.defaults.model;
}

function telegramRoot(host: WizardHost): string {
  return host.config.config.channels.telegram?.apiRoot ?? envOf(host, "TELEGRAM_API_ROOT") ??
    DEFAULT_TELEGRAM_API_ROOT;
}

function configuredBotToken(host: WizardHost): string | undefined {
  return host.config.config.channels.telegram?.botToken ?? envOf(host, "TELEGRAM_BOT_TOKEN");
}

/** Whether this gw's config has the `tts` section (text to speech). */
function ttsSupported(): boolean {
  return "tts" in configSchema.shape;
}

interface TtsFacts {
  enabled: boolean;
  provider: string | undefined;
  key(choice: TtsChoice): string | undefined;
}

/** The `tts` section as configured (read loosely: its shape belongs to lib/tts). */
function ttsFacts(host: WizardHost): TtsFacts {
  const cfg = host.config.config as unknown as {
    tts?: {
      enabled?: boolean;
      provider?: string;
      openai?: { apiKey?: string };
      elevenlabs?: { apiKey?: string };
    };
  };
  const t = cfg.tts;
  return {
    enabled: t?.enabled === true,
    provider: t?.provider,
    key: (choice) =>
      choice === "openai"
        ? t?.openai?.apiKey ?? host.config.config.models.providers.openai?.apiKey ??
          envOf(host, "OPENAI_API_KEY")
        : choice === "elevenlabs"
        ? t?.elevenlabs?.apiKey ?? envOf(host, "ELEVENLABS_API_KEY")
        : undefined,
  };
}

/** The step after Telegram's. */
function afterTelegram(state: WizardState): StepKey {
  return state.flow === "setup" && ttsSupported() ? "tts.provider" : "summary";
}

// ------------------------------------------------------------------ rendering

interface View extends Omit<WizardStep, "id"> {
  /** What an empty text answer stands for. */
  fallback?: string;
}

function select(
  title: string,
  message: string,
  options: WizardStepOption[],
  initialValue: string,
): View {
  return { type: "select", title, message, options, initialValue, executor: "client" };
}

async function view(state: WizardState, host: WizardHost): Promise<View> {
  const d = state.draft;
  const title = TITLES[state.step.split(".")[0]!]!;
  switch (state.step) {
    case "auth.mode": {
      const f = await authFacts(host);
      const options: WizardStepOption[] = [];
      if (f.has || host.live) {
        options.push({
          value: "keep",
          label: f.has ? `Keep the current ${f.mode}` : "Keep how clients sign in now",
          hint: "clients connect as they do now",
        });
      } else {
        options.push({
          value: "keep",
          label: "Let gw start generate a token",
          hint: "shown once, at the first start",
        });
      }
      options.push({
        value: "token",
        label: f.mode === "token" && f.has ? "Generate a new token" : "Generate a token now",
        hint: f.has
          ? "clients with the old secret must be given the new one"
          : "43 random characters",
      });
      options.push({
        value: "password",
        label: f.mode === "password" && f.has ? "Set a new password" : "Use a password",
        hint: "at least 8 characters; easier to type, weaker than a token",
      });
      return select(title, "How should clients sign in to this gateway?", options, "keep");
    }
    case "auth.password":
      return {
        type: "text",
        title,
        message: "The gateway's password (at least 8 characters)",
        sensitive: true,
        executor: "client",
      };
    case "auth.passwordAgain":
      return {
        type: "text",
        title,
        message: "The same password again",
        sensitive: true,
        executor: "client",
      };
    case "model.provider": {
      const current = configuredModel(host);
      const options: WizardStepOption[] = [
        {
          value: "anthropic",
          label: "Anthropic (Claude)",
          hint: "an API key from console.anthropic.com",
        },
        { value: "ollama", label: "Ollama", hint: "a local server, no key" },
        { value: "llamacpp", label: "llama.cpp server", hint: "a local server, no key" },
        { value: "vllm", label: "vLLM", hint: "a local server" },
        { value: "openai", label: "OpenAI", hint: "an API key" },
        {
          value: "custom",
          label: "Another OpenAI-compatible server",
          hint: "any base URL with /chat/completions",
        },
        {
          value: "skip",
          label: current ? `Keep the current model (${current})` : "Skip for now",
        },
      ];
      return select(
        title,
        "Which model should the assistant use?",
        options,
        d.model?.choice ?? (current ? "skip" : "anthropic"),
      );
    }
    case "model.baseUrl": {
      const choice = d.model!.choice;
      const fallback = d.model?.baseUrl ?? configuredProvider(host, choice).baseUrl;
      return {
        type: "text",
        title,
        message: `Base URL of ${PROVIDER_LABELS[choice]}'s OpenAI-compatible API (with /v1)`,
        placeholder: "http://127.0.0.1:8080/v1",
        ...(fallback ? { initialValue: fallback, fallback } : {}),
        executor: "client",
      };
    }
    case "model.model": {
      const choice = d.model!.choice;
      const current = configuredModel(host);
      const mine = current && splitModelRef(current).providerId === providerIdOf(choice)
        ? splitModelRef(current).model
        : undefined;
      const fallback = d.model?.model ?? mine ??
        (choice === "anthropic" ? DEFAULT_CLAUDE : undefined);
      return {
        type: "text",
        title,
        message: choice === "anthropic"
          ? "Which Claude model?"
          : `Which model? (its name on ${PROVIDER_LABELS[choice]})`,
        placeholder: choice === "anthropic" ? DEFAULT_CLAUDE : "llama3.2",
        ...(fallback ? { initialValue: fallback, fallback } : {}),
        executor: "client",
      };
    }
    case "model.apiKey": {
      const choice = d.model!.choice;
      const existing = d.model?.apiKey ?? configuredProvider(host, choice).apiKey;
      const keep = existing
        ? d.model?.apiKey ? " (Enter keeps the key you gave)" : " (Enter keeps the current key)"
        : "";
      const message = choice === "anthropic"
        ? `Your Anthropic API key${keep}`
        : choice === "openai"
        ? `Your OpenAI API key${keep}`
        : `API key, if the server needs one${keep || " (Enter for none)"}`;
      return {
        type: "text",
        title,
        message: `${message}. It is checked with a one-token request.`,
        placeholder: choice === "anthropic" ? "sk-ant-…" : choice === "openai" ? "sk-…" : "",
        sensitive: true,
        executor: "client",
      };
    }
    case "telegram.mode": {
      const has = configuredBotToken(host) !== undefined;
      const root = telegramRoot(host);
      return select(
        TITLES.telegram!,
        "Talk to the assistant from Telegram too?",
        [
          {
            value: "skip",
            label: has ? "Keep the current bot" : "Not now",
            ...(has ? {} : { hint: "later: gw channels add telegram" }),
          },
          {
            value: "telegram",
            label: has ? "Connect another bot" : "Connect a bot",
            hint: root === DEFAULT_TELEGRAM_API_ROOT
              ? "a token from @BotFather"
              : `a token from @BotFather; Bot API at ${root}`,
          },
          {
            value: "custom",
            label: "Connect a bot through a self-hosted Bot API server",
            hint: "asks for the server's URL first",
          },
        ],
        d.telegram?.choice ?? (state.flow === "channels" ? "telegram" : "skip"),
      );
    }
    case "telegram.apiRoot": {
      const fallback = d.telegram?.apiRoot ?? host.config.config.channels.telegram?.apiRoot ??
        envOf(host, "TELEGRAM_API_ROOT");
      return {
        type: "text",
        title,
        message: "URL of your Bot API server",
        placeholder: "http://127.0.0.1:8081",
        ...(fallback ? { initialValue: fallback, fallback } : {}),
        executor: "client",
      };
    }
    case "telegram.token": {
      const existing = d.telegram?.token ?? configuredBotToken(host);
      const keep = existing
        ? d.telegram?.token
          ? " (Enter keeps the token you gave)"
          : " (Enter keeps the current token)"
        : "";
      return {
        type: "text",
        title,
        message: `The bot's token from @BotFather${keep}. It is checked with getMe.`,
        placeholder: "123456789:AA…",
        sensitive: true,
        executor: "client",
      };
    }
    case "tts.provider": {
      const f = ttsFacts(host);
      const current = f.enabled && f.provider ? f.provider : undefined;
      return select(
        title,
        "Should the assistant's replies on chat channels also be spoken (text to speech)?",
        [
          {
            value: "skip",
            label: current ? `Keep the current voice (${current})` : "No, text only",
          },
          { value: "openai", label: "OpenAI speech", hint: "an OpenAI API key" },
          { value: "elevenlabs", label: "ElevenLabs", hint: "an ElevenLabs API key" },
          {
            value: "espeak-ng",
            label: "espeak-ng",
            hint: "offline, no key; espeak-ng must be installed on the gateway's machine",
          },
        ],
        d.tts?.choice ?? "skip",
      );
    }
    case "tts.apiKey": {
      const choice = d.tts!.choice as TtsChoice;
      const existing = d.tts?.apiKey ?? ttsFacts(host).key(choice);
      const name = choice === "openai" ? "OpenAI" : "ElevenLabs";
      return {
        type: "text",
        title,
        message: `Your ${name} API key for speech${
          existing ? " (Enter keeps the current key)" : ""
        }. It is saved as given (not checked now).`,
        sensitive: true,
        executor: "client",
      };
    }
    case "summary":
      return {
        type: "confirm",
        title: TITLES.summary!,
        message: await summaryText(state, host),
        initialValue: true,
        executor: "client",
      };
  }
}

/**
 * The current step as sent to a client: no secret in it, ever.
 *
 * @example
 * ```ts
 * const step = await renderStep(state, host);
 * console.log(step.id, step.type, step.message);
 * ```
 */
export async function renderStep(state: WizardState, host: WizardHost): Promise<WizardStep> {
  const { fallback: _f, ...v } = await view(state, host);
  const step: WizardStep = { id: stepIdOf(state), ...v };
  if (step.sensitive) delete step.initialValue;
  return step;
}

function hasChanges(d: WizardDraft): boolean {
  return (d.auth !== undefined && d.auth.choice !== "keep") ||
    (d.model !== undefined && d.model.choice !== "skip") ||
    (d.telegram !== undefined && d.telegram.choice !== "skip") ||
    (d.tts !== undefined && d.tts.choice !== "skip");
}

async function summaryText(state: WizardState, host: WizardHost): Promise<string> {
  const d = state.draft;
  const lines: string[] = [];
  if (state.flow === "setup") {
    const a = d.auth?.choice ?? "keep";
    const f = await authFacts(host);
    lines.push(
      `Gateway access: ${
        a === "token"
          ? "a new token, generated when you save"
          : a === "password"
          ? "the password you chose"
          : f.has || host.live
          ? "unchanged"
          : "a token generated at the first gw start"
      }`,
    );
    const m = d.model;
    if (m && m.choice !== "skip") {
      const how = m.busy ? "the key works; the provider said it is busy right now" : "checked";
      lines.push(`Model: ${providerIdOf(m.choice)}/${m.model} (${how})`);
    } else {
      const current = configuredModel(host);
      lines.push(`Model: ${current ? `unchanged (${current})` : "not set"}`);
    }
  }
  const t = d.telegram;
  if (t && t.choice !== "skip" && t.bot) {
    lines.push(`Telegram: the bot @${t.bot.username}`);
  } else {
    lines.push(`Telegram: ${configuredBotToken(host) ? "unchanged" : "not set up"}`);
  }
  if (state.flow === "setup" && ttsSupported()) {
    const v = d.tts;
    const f = ttsFacts(host);
    lines.push(
      `Voice: ${
        v && v.choice !== "skip"
          ? `spoken replies with ${v.choice}`
          : f.enabled && f.provider
          ? `unchanged (${f.provider})`
          : "text only"
      }`,
    );
  }
  if (!hasChanges(d)) return [...lines, "", "Nothing to change. Finish?"].join("\n");
  if (host.live && d.auth && d.auth.choice !== "keep") {
    lines.push(
      "",
      "Clients signed in with the current secret (this one too) are disconnected when you save.",
    );
  }
  return [...lines, "", `Save to ${host.config.path}?`].join("\n");
}

// ------------------------------------------------------------------ answers

/** The outcome of {@link advance}: the new state, or why the answer was refused. */
export interface Advanced {
  state: WizardState;
  /** The answer did not fit the step; the same step is shown again with this. */
  invalid?: string;
}

function go(state: WizardState, step: StepKey, error?: string): void {
  state.step = step;
  state.seq++;
  if (error === undefined) delete state.stepError;
  else state.stepError = error;
}

function textOf(value: unknown): string | undefined {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value.trim();
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return undefined;
}

function httpUrl(text: string): string | undefined {
  try {
    const u = new URL(text);
    if (u.protocol !== "http:" && u.protocol !== "https:") return undefined;
    return text.replace(/\/+$/, "");
  } catch {
    return undefined;
  }
}

/**
 * Take `value` as the answer to the current step and move on; checks run
 * here (a model call, Telegram's getMe) and, on the summary's yes, the
 * config is written and applied. `signal` aborts a check (cancel).
 *
 * @throws {WizardCancelledError} when `signal` aborts during a check.
 */
export async function advance(
  state: WizardState,
  value: unknown,
  host: WizardHost,
  signal: AbortSignal,
): Promise<Advanced> {
  const v = await view(state, host);
  const invalid = (message: string): Advanced => ({ state, invalid: message });
  let text = "";
  let choice = "";
  if (v.type === "select") {
    const option = v.options?.find((o) => o.value === value);
    if (!option) {
      return invalid(
        `Choose one of: ${v.options?.map((o) => JSON.stringify(o.value)).join(", ")}.`,
      );
    }
    choice = String(option.value);
  } else if (v.type === "text") {
    const t = textOf(value);
    if (t === undefined) return invalid("wizard: text answer must be a scalar value");
    if (t.length > TEXT_MAX) return invalid(`That is too long (at most ${TEXT_MAX} characters).`);
    text = t || v.fallback || "";
  } else if (v.type === "confirm" && typeof value !== "boolean") {
    return invalid("Answer yes (true) or no (false).");
  }
  const d = state.draft;
  switch (state.step) {
    case "auth.mode":
      d.auth = { choice: choice as "keep" | "token" | "password" };
      go(state, choice === "password" ? "auth.password" : "model.provider");
      break;
    case "auth.password":
      if (text.length < 8) return invalid("The password needs at least 8 characters.");
      if (text.length > 512) return invalid("The password can have at most 512 characters.");
      d.auth = { choice: "password", password: text };
      go(state, "auth.passwordAgain");
      break;
    case "auth.passwordAgain":
      if (text !== d.auth?.password) {
        d.auth = { choice: "password" };
        go(state, "auth.password", "The two passwords differ; choose it again.");
        break;
      }
      go(state, "model.provider");
      break;
    case "model.provider": {
      const c = choice as ModelChoice;
      const kept = d.model?.choice === c ? d.model : undefined;
      d.model = { ...kept, choice: c };
      delete d.model.verified;
      go(
        state,
        c === "skip" ? "telegram.mode" : c === "anthropic" ? "model.model" : "model.baseUrl",
      );
      break;
    }
    case "model.baseUrl": {
      const url = httpUrl(text);
      if (!url) return invalid("Enter an http(s) URL, e.g. http://127.0.0.1:11434/v1.");
      d.model!.baseUrl = url;
      go(state, "model.model");
      break;
    }
    case "model.model":
      if (!text) return invalid("Enter the model's name.");
      if (/\s/.test(text) || text.length > 200) {
        return invalid("A model name has no spaces (and at most 200 characters).");
      }
      d.model!.model = text;
      go(state, "model.apiKey");
      break;
    case "model.apiKey":
      return await answerModelKey(state, text, host, signal);
    case "telegram.mode":
      d.telegram = { choice: choice as "skip" | "telegram" | "custom" };
      go(
        state,
        choice === "skip"
          ? afterTelegram(state)
          : choice === "custom"
          ? "telegram.apiRoot"
          : "telegram.token",
      );
      break;
    case "telegram.apiRoot": {
      const url = httpUrl(text);
      if (!url) return invalid("Enter an http(s) URL, e.g. http://127.0.0.1:8081.");
      d.telegram!.apiRoot = url;
      go(state, "telegram.token");
      break;
    }
    case "telegram.token":
      return await answerBotToken(state, text, host, signal);
    case "tts.provider":
      d.tts = { choice: choice as "skip" | TtsChoice };
      go(state, choice === "openai" || choice === "elevenlabs" ? "tts.apiKey" : "summary");
      break;
    case "tts.apiKey": {
      if (/\s/.test(text) || text.length > 512) {
        return invalid("An API key has no spaces (and at most 512 characters).");
      }
      const c = d.tts!.choice as TtsChoice;
      if (!text && !d.tts!.apiKey && !ttsFacts(host).key(c)) {
        return invalid(`Paste your ${c === "openai" ? "OpenAI" : "ElevenLabs"} API key.`);
      }
      if (text) d.tts!.apiKey = text;
      go(state, "summary");
      break;
    }
    case "summary":
      if (value !== true) {
        finish(state, "cancelled", "cancelled");
        host.log?.info("wizard declined at the review; nothing saved", { wizard: short(state) });
        break;
      }
      await commit(state, host);
      break;
  }
  return { state };
}

function short(state: WizardState): string {
  return state.id.slice(0, 8);
}

async function answerModelKey(
  state: WizardState,
  text: string,
  host: WizardHost,
  signal: AbortSignal,
): Promise<Advanced> {
  const m = state.draft.model!;
  if (/\s/.test(text) || text.length > 512) {
    return { state, invalid: "An API key has no spaces (and at most 512 characters)." };
  }
  const configured = configuredProvider(host, m.choice);
  const key = text || m.apiKey || configured.apiKey;
  if (!key && (m.choice === "anthropic" || m.choice === "openai")) {
    return { state, invalid: `Paste your ${PROVIDER_LABELS[m.choice]} API key.` };
  }
  if (text) m.apiKey = text;
  const cfg: ProviderConfig = { id: providerIdOf(m.choice), api: apiOf(m.choice) };
  const baseUrl = m.baseUrl ?? configured.baseUrl;
  if (baseUrl) cfg.baseUrl = baseUrl;
  if (key) cfg.apiKey = key;
  const r = await checkModel(cfg, m.model!, signal);
  if (r.ok) {
    m.verified = true;
    if (r.busy) m.busy = true;
    else delete m.busy;
    host.log?.info("wizard: model checked", {
      wizard: short(state),
      model: `${cfg.id}/${m.model}`,
    });
    go(state, "telegram.mode");
    return { state };
  }
  host.log?.info("wizard: model check failed", { wizard: short(state), kind: r.kind });
  if (r.kind === "auth") {
    // A typed key that failed is not kept: Enter must not offer it again.
    if (text) delete m.apiKey;
    go(state, "model.apiKey", r.message);
  } else if (r.kind === "network" || r.kind === "timeout") {
    go(state, m.choice === "anthropic" ? "model.apiKey" : "model.baseUrl", r.message);
  } else go(state, "model.model", r.message);
  return { state };
}

/** What {@link checkModel} found: the key works (`busy`: the provider said 429/529), or why not. */
export type ModelCheck = { ok: true; busy?: boolean } | {
  ok: false;
  kind: string;
  message: string;
};
type Check = ModelCheck;

/**
 * One tiny model call through lib/agent's provider for `cfg` (the wizard's
 * key check; `gw doctor` uses it too).
 *
 * @throws {WizardCancelledError} when `signal` aborts the call.
 */
export async function checkModel(
  cfg: ProviderConfig,
  model: string,
  signal: AbortSignal,
): Promise<ModelCheck> {
  const provider = cfg.api === "anthropic-messages"
    ? (await import("../agent/anthropic.ts")).anthropicProvider(cfg)
    : (await import("../agent/openai.ts")).openaiProvider(cfg);
  const timeout = AbortSignal.timeout(MODEL_CHECK_TIMEOUT_MS);
  try {
    await provider.stream({
      model,
      messages: [{ role: "user", content: "Reply with OK.", timestamp: Date.now() }],
      tools: [],
      maxTokens: 1,
      signal: AbortSignal.any([signal, timeout]),
    }, () => {});
    return { ok: true };
  } catch (e) {
    if (signal.aborted) throw new WizardCancelledError();
    if (timeout.aborted) {
      return {
        ok: false,
        kind: "timeout",
        message: `${cfg.id} gave no answer within ${MODEL_CHECK_TIMEOUT_MS / 1000} s.`,
      };
    }
    if (e instanceof ProviderError) {
      if (e.kind === "rate_limit" || e.kind === "overloaded") return { ok: true, busy: true };
      return { ok: false, kind: e.kind, message: e.message };
    }
    return { ok: false, kind: "network", message: `The check failed: ${(e as Error).message}` };
  }
}

async function answerBotToken(
  state: WizardState,
  text: string,
  host: WizardHost,
  signal: AbortSignal,
): Promise<Advanced> {
  const t = state.draft.telegram!;
  if (text && !/^[^\s/?#%]{8,256}$/.test(text)) {
    return {
      state,
      invalid: "That is not a bot token: @BotFather gives one like 123456789:AAE…",
    };
  }
  const token = text || t.token || configuredBotToken(host);
  if (!token) return { state, invalid: "Paste the token @BotFather gave you." };
  if (text) t.token = text;
  const apiRoot = t.apiRoot ?? telegramRoot(host);
  const { telegramGetMe } = await import("../cli/channels.ts");
  const me = await abortable(
    telegramGetMe(token, { apiRoot, timeoutMs: TELEGRAM_CHECK_TIMEOUT_MS }),
    signal,
  );
  if (me.ok) {
    t.bot = me.bot;
    host.log?.info("wizard: Telegram bot checked", { wizard: short(state), bot: me.bot.username });
    go(state, afterTelegram(state));
    return { state };
  }
  host.log?.info("wizard: Telegram check failed", { wizard: short(state), kind: me.kind });
  if (text) delete t.token;
  go(state, "telegram.token", me.message);
  return { state };
}

function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new WizardCancelledError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new WizardCancelledError());
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

// ------------------------------------------------------------------ saving

/** The merge patch the answers make (with the secrets). */
function patchOf(state: WizardState): { patch: Record<string, unknown>; changed: string[] } {
  const d = state.draft;
  const patch: Record<string, unknown> = {};
  const changed: string[] = [];
  const put = (path: string[], value: unknown) => {
    let node = patch;
    for (const k of path.slice(0, -1)) {
      node = (node[k] ??= {}) as Record<string, unknown>;
    }
    node[path.at(-1)!] = value;
  };
  if (d.auth?.choice === "token") {
    put(["gateway", "auth"], { mode: "token", token: generateToken() });
    changed.push("gateway.auth");
  } else if (d.auth?.choice === "password") {
    put(["gateway", "auth"], { mode: "password", password: d.auth.password });
    changed.push("gateway.auth");
  }
  const m = d.model;
  if (m && m.choice !== "skip" && m.verified && m.model) {
    const id = providerIdOf(m.choice);
    const p: Record<string, unknown> = {};
    if (m.choice !== "anthropic") p.api = "openai-completions";
    if (m.baseUrl) p.baseUrl = m.baseUrl;
    if (m.apiKey) p.apiKey = m.apiKey;
    put(["models", "providers", id], p);
    put(["agents", "defaults", "model"], `${id}/${m.model}`);
    changed.push(`models.providers.${id}`, "agents.defaults.model");
  }
  const t = d.telegram;
  if (t && t.choice !== "skip" && t.bot) {
    const tg: Record<string, unknown> = { enabled: true };
    if (t.token) tg.botToken = t.token;
    if (t.apiRoot) tg.apiRoot = t.apiRoot;
    put(["channels", "telegram"], tg);
    changed.push("channels.telegram");
  }
  const v = d.tts;
  if (v && v.choice !== "skip" && ttsSupported()) {
    const tts: Record<string, unknown> = { enabled: true, provider: v.choice };
    if (v.apiKey && v.choice !== "espeak-ng") tts[v.choice] = { apiKey: v.apiKey };
    put(["tts"], tts);
    changed.push("tts");
  }
  return { patch, changed };
}

async function commit(state: WizardState, host: WizardHost): Promise<void> {
  const { patch, changed } = patchOf(state);
  const outcome: NonNullable<WizardState["outcome"]> = {};
  const m = state.draft.model;
  if (m && m.choice !== "skip" && m.verified) {
    outcome.modelRef = `${providerIdOf(m.choice)}/${m.model}`;
  }
  if (changed.includes("channels.telegram")) outcome.channels = ["telegram"];
  if (!changed.length) {
    finish(state, "done");
    host.log?.info("wizard finished; nothing to change", { wizard: short(state) });
    return;
  }
  try {
    const dir = host.config.path.slice(0, Math.max(host.config.path.lastIndexOf("/"), 1));
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    for (let attempt = 1;; attempt++) {
      const s = host.config.state;
      try {
        await host.config.write((cur) => mergePatch(cur, patch), s.exists ? s.hash : undefined);
        break;
      } catch (e) {
        const conflict = e instanceof GatewayError &&
          (e.details?.code === "CONFIG_CONFLICT" ||
            e.details?.code === "CONFIG_BASE_HASH_REQUIRED");
        if (!conflict || attempt >= 3) throw e;
        await host.config.reload();
      }
    }
  } catch (e) {
    host.log?.warn("wizard could not save the config", { wizard: short(state), error: e });
    finish(state, "error", `Could not save ${host.config.path}: ${(e as Error).message}`);
    return;
  }
  host.log?.info("wizard saved the config", { wizard: short(state), changed });
  try {
    const restart = await host.applyConfig();
    if (restart.length) outcome.restartRequired = restart;
  } catch (e) {
    host.log?.warn("wizard saved the config; applying it failed", {
      wizard: short(state),
      error: e,
    });
  }
  state.outcome = outcome;
  finish(state, "done");
}
