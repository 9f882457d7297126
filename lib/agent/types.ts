/**
 * The agent's shared vocabulary: transcript messages (the shape OpenClaw's
 * clients render, pi-ai's `Message`), and the provider contract every model
 * backend implements.
 *
 * @module
 */

/** Plain text. */
export interface TextContent {
  type: "text";
  text: string;
}

/**
 * An image in a person's turn. The transcript keeps only the reference
 * (`media`, a file in the media dir); `data` is filled in, base64, only in the
 * messages handed to a provider and is never stored.
 */
export interface ImageContent {
  type: "image";
  /** One of `image/jpeg`, `image/png`, `image/gif`, `image/webp`. */
  mimeType: string;
  /** The file name in the media dir (`<sha256 hex>.<ext>`). */
  media?: string;
  /** Base64 bytes: only in a provider request. */
  data?: string;
  /** The name the sender gave the image. */
  fileName?: string;
}

/** The model's reasoning; `signature` must be replayed to Anthropic unchanged. */
export interface ThinkingContent {
  type: "thinking";
  thinking: string;
  thinkingSignature?: string;
  /** Redacted by the provider; the opaque payload is in `thinkingSignature`. */
  redacted?: boolean;
}

/** A tool call the model made. */
export interface ToolCall {
  type: "toolCall";
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

/** Tokens and their cost (USD) of one provider response or a sum of them. */
export interface Usage {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  totalTokens: number;
  cost: { input: number; output: number; cacheRead: number; cacheWrite: number; total: number };
}

/** Why a model stopped. */
export type StopReason = "stop" | "length" | "toolUse" | "error" | "aborted";

/** A person's turn. */
export interface UserMessage {
  role: "user";
  /** Text, or text and image blocks in order. */
  content: string | (TextContent | ImageContent)[];
  timestamp: number;
  idempotencyKey?: string;
}

/** The model's turn. */
export interface AssistantMessage {
  role: "assistant";
  content: (TextContent | ThinkingContent | ToolCall)[];
  /** The wire API: `anthropic-messages` or `openai-completions`. */
  api: string;
  /** The provider id from config, e.g. `anthropic`, `ollama`. */
  provider: string;
  model: string;
  usage: Usage;
  stopReason: StopReason;
  errorMessage?: string;
  timestamp: number;
}

/** The answer to one tool call. */
export interface ToolResultMessage {
  role: "toolResult";
  toolCallId: string;
  toolName: string;
  content: TextContent[];
  isError: boolean;
  timestamp: number;
}

/** A gateway note in the transcript (interrupted turn, compaction summary, run error). */
export interface CustomMessage {
  role: "custom";
  customType: string;
  content: string;
  display: boolean;
  timestamp: number;
}

/** What the model sees of a conversation. */
export type ModelMessage = UserMessage | AssistantMessage | ToolResultMessage;

/** One transcript entry. */
export type TranscriptMessage = ModelMessage | CustomMessage;

/** A tool as the model is told about it. */
export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the tool's input (an object schema). */
  inputSchema: Record<string, unknown>;
}

/** One model call. */
export interface ProviderRequest {
  /** The provider's own model id (no `provider/` prefix). */
  model: string;
  system?: string;
  messages: ModelMessage[];
  tools: ToolSpec[];
  maxTokens: number;
  /** Extended-thinking budget in tokens; absent means no thinking. */
  thinkingBudget?: number;
  /** Aborts the HTTP stream (chat.abort, timeout, shutdown). */
  signal: AbortSignal;
}

/** Streamed while a response is produced. */
export type StreamEvent =
  | { type: "text"; delta: string }
  | { type: "thinking"; delta: string }
  /** A complete tool call (emitted when its block ends). */
  | { type: "toolCall"; call: ToolCall };

/** A finished response. Usage carries tokens; the runtime prices them. */
export interface ProviderResult {
  content: (TextContent | ThinkingContent | ToolCall)[];
  stopReason: StopReason;
  usage: Omit<Usage, "cost">;
  /** The model id the provider reports, when it says. */
  responseModel?: string;
}

/** A model backend. */
export interface Provider {
  /** Provider id from config (`anthropic`, `openai`, `ollama`, ...). */
  readonly id: string;
  /** Wire API name for transcripts. */
  readonly api: "anthropic-messages" | "openai-completions";
  /**
   * Run one model call, streaming events to `onEvent` as they arrive.
   * Rejects with a {@link ProviderError}; an aborted signal rejects with kind `aborted`.
   */
  stream(req: ProviderRequest, onEvent: (e: StreamEvent) => void): Promise<ProviderResult>;
}

/** What went wrong talking to a provider. */
export type ProviderErrorKind =
  | "auth" // 401/403: the key is wrong or lacks access
  | "rate_limit" // 429
  | "overloaded" // 529 / 503
  | "context_length" // the prompt is too long for the model
  | "bad_request" // other 4xx
  | "server" // 5xx
  | "network" // cannot connect, connection reset, bad stream
  | "timeout" // the run's timeout passed
  | "aborted" // chat.abort / shutdown
  | "refusal"; // the model declined

/** A provider failure with its kind, the HTTP status and, when retryable, when to retry. */
export class ProviderError extends Error {
  /** The kind. */
  readonly kind: ProviderErrorKind;
  /** HTTP status, when there was a response. */
  readonly status: number | undefined;
  /** Whether trying again later can succeed. */
  readonly retryable: boolean;
  /** Suggested wait before retrying (from `retry-after`), when retryable. */
  readonly retryAfterMs: number | undefined;

  /** Create one. */
  constructor(
    kind: ProviderErrorKind,
    message: string,
    opts: { status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = "ProviderError";
    this.kind = kind;
    this.status = opts.status;
    this.retryable = kind === "rate_limit" || kind === "overloaded" || kind === "server" ||
      kind === "network";
    this.retryAfterMs = this.retryable ? opts.retryAfterMs : undefined;
  }
}

/** How to reach one provider, resolved from config and env. */
export interface ProviderConfig {
  id: string;
  api: "anthropic-messages" | "openai-completions";
  apiKey?: string;
  baseUrl?: string;
}
