/**
 * Model references (`provider/model`), how to reach their provider, what
 * they cost and how much thinking a level buys.
 *
 * @module
 */
import type { GwConfig } from "../config/schema.ts";
import type { ProviderConfig, Usage } from "./types.ts";
import type { ThinkingLevel } from "../store/sessions.ts";

/** The model used when neither session, agent nor config names one. */
export const DEFAULT_MODEL = "anthropic/claude-sonnet-4-6";

/** USD per million tokens. */
export interface Price {
  input: number;
  output: number;
  cacheRead?: number | undefined;
  cacheWrite?: number | undefined;
}

/**
 * Built-in list prices (USD per million tokens) of Anthropic's models, matched
 * by id prefix; config `models.providers.<p>.models[].cost` overrides them.
 * Local models (Ollama, llama.cpp) cost nothing unless configured.
 */
const PRICES: [prefix: string, price: Price][] = [
  ["claude-opus-4-5", { input: 5, output: 25, cacheRead: 0.5, cacheWrite: 6.25 }],
  ["claude-opus-4", { input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75 }],
  ["claude-sonnet-4", { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 }],
  ["claude-3-7-sonnet", { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 }],
  ["claude-haiku-4-5", { input: 1, output: 5, cacheRead: 0.1, cacheWrite: 1.25 }],
  ["claude-3-5-haiku", { input: 0.8, output: 4, cacheRead: 0.08, cacheWrite: 1 }],
];

/** Thinking budget (tokens) per level; `off` has none. */
export const THINKING_BUDGETS: Record<ThinkingLevel, number> = {
  off: 0,
  minimal: 1024,
  low: 4096,
  medium: 10_000,
  high: 24_000,
  xhigh: 48_000,
  // Anthropic's adaptive thinking is not in this provider yet: a medium budget.
  adaptive: 10_000,
  max: 56_000,
  ultra: 56_000,
};

/** A resolved model. */
export interface ResolvedModel {
  /** `provider/model` as given. */
  ref: string;
  providerId: string;
  model: string;
  provider: ProviderConfig;
  price: Price | null;
}

/** Split `provider/model`; a bare id means Anthropic. */
export function splitModelRef(ref: string): { providerId: string; model: string } {
  const slash = ref.indexOf("/");
  return slash > 0
    ? { providerId: ref.slice(0, slash), model: ref.slice(slash + 1) }
    : { providerId: "anthropic", model: ref };
}

/** Default base URLs of well-known OpenAI-compatible providers. */
const KNOWN_BASE_URLS: Record<string, string> = {
  openai: "https://api.openai.com/v1",
  ollama: "http://127.0.0.1:11434/v1",
  llamacpp: "http://127.0.0.1:8080/v1",
  vllm: "http://127.0.0.1:8000/v1",
};

/**
 * Resolve `ref` against the config and environment: API key from config or
 * `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`, base URL from config or
 * `ANTHROPIC_BASE_URL` / `OPENAI_BASE_URL`.
 */
export function resolveModel(
  ref: string,
  config: GwConfig,
  env: (name: string) => string | undefined = envGet,
): ResolvedModel {
  const { providerId, model } = splitModelRef(ref);
  const pc = config.models.providers[providerId];
  const api = pc?.api ?? (providerId === "anthropic" ? "anthropic-messages" : "openai-completions");
  const provider: ProviderConfig = { id: providerId, api };
  const envPrefix = api === "anthropic-messages" ? "ANTHROPIC" : "OPENAI";
  const fromEnv = providerId === "anthropic" || providerId === "openai";
  const apiKey = pc?.apiKey ?? (fromEnv ? env(`${envPrefix}_API_KEY`) : undefined);
  const baseUrl = pc?.baseUrl ?? (fromEnv ? env(`${envPrefix}_BASE_URL`) : undefined) ??
    KNOWN_BASE_URLS[providerId];
  if (apiKey) provider.apiKey = apiKey;
  if (baseUrl) provider.baseUrl = baseUrl;
  const configured = pc?.models.find((m) => m.id === model)?.cost;
  const price = configured ??
    (api === "anthropic-messages" ? PRICES.find(([p]) => model.startsWith(p))?.[1] ?? null : null);
  return { ref: `${providerId}/${model}`, providerId, model, provider, price: price ?? null };
}

function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no env permission for this name
  }
}

/** The cost of `u` at `price` (null price: unknown, reported as missing). */
export function costOf(u: Omit<Usage, "cost">, price: Price | null): Usage["cost"] | null {
  if (!price) return null;
  const m = 1e-6;
  const input = u.input * price.input * m;
  const output = u.output * price.output * m;
  const cacheRead = u.cacheRead * (price.cacheRead ?? price.input) * m;
  const cacheWrite = u.cacheWrite * (price.cacheWrite ?? price.input) * m;
  return { input, output, cacheRead, cacheWrite, total: input + output + cacheRead + cacheWrite };
}
