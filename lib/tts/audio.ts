/**
 * What every speech provider shares: the request and result shapes, audio
 * formats and their MIME types, reading a provider's answer under a size cap,
 * and its HTTP errors as gateway errors (never with the key in them).
 *
 * @module
 */
import { readCapped, TooLargeError } from "../bytes.ts";
import { GatewayError } from "../protocol/errors.ts";
import { ErrorCode } from "../protocol/types.ts";
import type { TtsProviderId } from "./config.ts";

/** Audio formats a caller may ask for (`tts.convert` `format`). */
export const AUDIO_FORMATS = ["mp3", "opus", "aac", "flac", "wav", "pcm"] as const;

/** An audio format name. */
export type AudioFormat = typeof AUDIO_FORMATS[number];

/** MIME type and file extension of each format (`opus` is Ogg Opus, what voice notes use). */
export const AUDIO_TYPES: Record<AudioFormat, { mimeType: string; fileExtension: string }> = {
  mp3: { mimeType: "audio/mpeg", fileExtension: ".mp3" },
  opus: { mimeType: "audio/ogg", fileExtension: ".ogg" },
  aac: { mimeType: "audio/aac", fileExtension: ".aac" },
  flac: { mimeType: "audio/flac", fileExtension: ".flac" },
  wav: { mimeType: "audio/wav", fileExtension: ".wav" },
  pcm: { mimeType: "audio/pcm", fileExtension: ".pcm" },
};

/** One conversion, as a provider gets it (settings already resolved). */
export interface SpeechRequest {
  text: string;
  /** A voice name or id, already checked against the provider's pattern. */
  voice: string;
  /** A model id (ignored by espeak-ng). */
  model: string;
  /** The format wanted. */
  format: AudioFormat;
  /** API key (remote providers). */
  apiKey?: string;
  /** API root without a trailing slash (remote providers). */
  baseUrl?: string;
  /** Largest audio accepted, in bytes. */
  maxBytes: number;
  /** Ends the conversion (timeout). */
  signal: AbortSignal;
}

/** Audio a provider made. */
export interface SpeechAudio {
  bytes: Uint8Array;
  provider: TtsProviderId;
  /** The provider's own name of the format (e.g. `mp3_44100_128`, `opus`, `wav`). */
  outputFormat: string;
  mimeType: string;
  fileExtension: string;
}

/** The audio is over the cap: the text is too long for it. */
export function audioTooLarge(maxBytes: number): GatewayError {
  const mb = (maxBytes / 1048576).toFixed(maxBytes % 1048576 ? 2 : 0);
  return new GatewayError(
    ErrorCode.INVALID_REQUEST,
    `params.text: the audio would be larger than ${mb} MB (tts.maxAudioBytes); send shorter text`,
    { details: { code: "TTS_AUDIO_TOO_LARGE", maxBytes } },
  );
}

/** Read a response body, failing once it passes `maxBytes` (the rest is not downloaded). */
export async function readResponseCapped(res: Response, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(res.headers.get("content-length") ?? "NaN");
  if (declared > maxBytes) {
    await res.body?.cancel();
    throw audioTooLarge(maxBytes);
  }
  if (!res.body) return new Uint8Array();
  return await readStreamCapped(res.body, maxBytes);
}

/** Read a byte stream, failing (and cancelling it) once it passes `maxBytes`. */
export async function readStreamCapped(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<Uint8Array> {
  try {
    return await readCapped(stream, maxBytes);
  } catch (e) {
    if (e instanceof TooLargeError) throw audioTooLarge(maxBytes);
    throw e;
  }
}

/** Labels of the providers, for messages. */
export const PROVIDER_LABELS: Record<TtsProviderId, string> = {
  openai: "OpenAI",
  elevenlabs: "ElevenLabs",
  "espeak-ng": "eSpeak NG",
};

/** A provider that cannot be used now (no key, not installed, unreachable). */
export function unavailable(
  provider: TtsProviderId,
  message: string,
  o: { code: string; retryable?: boolean; retryAfterMs?: number; status?: number; cause?: unknown },
): GatewayError {
  return new GatewayError(ErrorCode.UNAVAILABLE, message, {
    retryable: o.retryable ?? false,
    ...(o.retryAfterMs !== undefined ? { retryAfterMs: o.retryAfterMs } : {}),
    ...(o.cause !== undefined ? { cause: o.cause } : {}),
    details: {
      code: o.code,
      provider,
      ...(o.status !== undefined ? { status: o.status } : {}),
    },
  });
}

/**
 * POST to a provider and return its audio, mapping every failure to a
 * gateway error: 401/403 (the key), 429 and 5xx (retry), other 4xx (the
 * request: voice, model), network errors and the timeout.
 */
export async function postForAudio(
  provider: TtsProviderId,
  url: string,
  init: { headers: Record<string, string>; body: string },
  req: Pick<SpeechRequest, "maxBytes" | "signal" | "apiKey">,
): Promise<{ bytes: Uint8Array; contentType: string }> {
  const label = PROVIDER_LABELS[provider];
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: init.headers,
      body: init.body,
      signal: req.signal,
      redirect: "error",
    });
  } catch (e) {
    throw fetchFailure(provider, url, e, req.signal);
  }
  if (!res.ok) {
    const text = await res.text().catch(() => "");
    throw httpFailure(provider, res, text, req.apiKey);
  }
  let bytes: Uint8Array;
  try {
    bytes = await readResponseCapped(res, req.maxBytes);
  } catch (e) {
    if (e instanceof GatewayError) throw e;
    throw fetchFailure(provider, url, e, req.signal);
  }
  if (bytes.length === 0) {
    throw unavailable(provider, `${label} answered with no audio`, {
      code: "TTS_EMPTY",
      retryable: true,
    });
  }
  return { bytes, contentType: res.headers.get("content-type") ?? "" };
}

function fetchFailure(
  provider: TtsProviderId,
  url: string,
  e: unknown,
  signal: AbortSignal,
): GatewayError {
  const label = PROVIDER_LABELS[provider];
  if (signal.aborted) {
    return unavailable(provider, `${label} did not finish the audio in time (tts.timeoutMs)`, {
      code: "TTS_TIMEOUT",
      retryable: true,
      cause: e,
    });
  }
  let host = url;
  try {
    host = new URL(url).host;
  } catch { /* keep the text */ }
  return unavailable(provider, `cannot reach ${label} at ${host}: ${(e as Error)?.message ?? e}`, {
    code: "TTS_UNREACHABLE",
    retryable: true,
    cause: e,
  });
}

function httpFailure(
  provider: TtsProviderId,
  res: Response,
  body: string,
  apiKey: string | undefined,
): GatewayError {
  const label = PROVIDER_LABELS[provider];
  const status = res.status;
  if (status === 401 || status === 403) {
    // The provider's text may quote part of the key: it is not passed on.
    return unavailable(
      provider,
      `${label} rejected the API key (HTTP ${status}); check tts.${
        provider === "openai"
          ? "openai.apiKey or OPENAI_API_KEY"
          : "elevenlabs.apiKey or ELEVENLABS_API_KEY"
      }`,
      { code: "TTS_AUTH", status },
    );
  }
  const detail = providerMessage(body, apiKey);
  const suffix = detail ? `: ${detail}` : "";
  if (status === 429 || status >= 500) {
    const after = Number(res.headers.get("retry-after") ?? "NaN");
    return unavailable(provider, `${label} is unavailable (HTTP ${status})${suffix}`, {
      code: status === 429 ? "TTS_RATE_LIMITED" : "TTS_PROVIDER_ERROR",
      retryable: true,
      status,
      ...(after >= 0 ? { retryAfterMs: Math.round(after * 1000) } : {}),
    });
  }
  return new GatewayError(
    ErrorCode.INVALID_REQUEST,
    `${label} refused the request (HTTP ${status})${suffix}`,
    { details: { code: "TTS_REJECTED", provider, status } },
  );
}

/** The error text of a provider's answer, short, one line, with the key (if echoed) masked. */
function providerMessage(body: string, apiKey: string | undefined): string {
  let msg = "";
  try {
    const j = JSON.parse(body) as Record<string, unknown>;
    const e = j.error as Record<string, unknown> | string | undefined;
    const d = j.detail as Record<string, unknown> | string | undefined;
    const pick = (v: unknown): string | undefined => typeof v === "string" ? v : undefined;
    msg = pick(e) ?? pick((e as Record<string, unknown> | undefined)?.message) ?? pick(d) ??
      pick((d as Record<string, unknown> | undefined)?.message) ?? pick(j.message) ?? "";
  } catch {
    msg = /^\s*</.test(body) ? "" : body;
  }
  // deno-lint-ignore no-control-regex
  msg = msg.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  if (apiKey && apiKey.length >= 4) msg = msg.split(apiKey).join("***");
  return msg.length > 200 ? `${msg.slice(0, 200)}…` : msg;
}

/**
 * WAV written to a pipe carries placeholder sizes (espeak-ng writes
 * 0x7ffff000): set the RIFF and data chunk sizes to the real ones, in place.
 * Anything that is not RIFF/WAVE is returned untouched.
 */
export function fixWavSizes(b: Uint8Array): Uint8Array {
  const ascii = (at: number) => String.fromCharCode(...b.subarray(at, at + 4));
  if (b.length < 12 || ascii(0) !== "RIFF" || ascii(8) !== "WAVE") return b;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  v.setUint32(4, b.length - 8, true);
  let at = 12;
  while (at + 8 <= b.length) {
    const id = ascii(at);
    const size = v.getUint32(at + 4, true);
    if (id === "data") {
      v.setUint32(at + 4, b.length - at - 8, true);
      break;
    }
    at += 8 + size + (size & 1);
  }
  return b;
}
