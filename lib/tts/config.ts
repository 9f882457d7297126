/**
 * The `tts` section of gw.json: which speech provider talks, its key and
 * voice, and the caps. Only zod here: the config loads without any provider's
 * code. Whether spoken replies are on and which provider was chosen at run
 * time (`tts.enable`, `tts.setProvider`) live in the store and win over
 * `enabled` and `provider` here.
 *
 * @module
 */
import { z } from "zod";

/** The speech providers gw has, in the order `tts.providers` lists them. */
export const TTS_PROVIDER_IDS = ["openai", "elevenlabs", "espeak-ng"] as const;

/** A speech provider id. */
export type TtsProviderId = typeof TTS_PROVIDER_IDS[number];

/** The hard cap on text converted at once (a config may lower it). */
export const MAX_TTS_TEXT_CHARS = 4000;

/** The default cap on the audio of one conversion: 16 MiB (4,000 characters of espeak-ng WAV fit). */
export const DEFAULT_MAX_AUDIO_BYTES = 16 * 1024 * 1024;

const secret = z.string().trim().min(1).max(512);
const baseUrl = z.url({ protocol: /^https?$/ });

/** `tts` in gw.json. */
export const ttsConfig = z.strictObject({
  enabled: z.boolean().default(false).describe(
    "Whether channel replies also go out as audio, until tts.enable or tts.disable decide (kept in the store).",
  ),
  provider: z.enum(TTS_PROVIDER_IDS).optional().describe(
    "Provider used until tts.setProvider picks one. Absent: a provider with a key in this section, else espeak-ng when installed, else one with a key from the environment.",
  ),
  maxTextLength: z.int().min(1).max(MAX_TTS_TEXT_CHARS).default(MAX_TTS_TEXT_CHARS).describe(
    "Most characters converted at once; longer channel replies are cut at a word.",
  ),
  maxAudioBytes: z.int().min(16 * 1024).max(64 * 1024 * 1024).default(DEFAULT_MAX_AUDIO_BYTES)
    .describe("Largest audio accepted from a provider, in bytes; more is an error."),
  timeoutMs: z.int().min(1000).max(300_000).default(60_000).describe(
    "How long one conversion may take.",
  ),
  openai: z.strictObject({
    apiKey: secret.optional().describe(
      "OpenAI API key. Absent: models.providers.openai.apiKey, then OPENAI_API_KEY.",
    ),
    baseUrl: baseUrl.optional().describe(
      "API root; gw posts to <baseUrl>/v1/audio/speech (a trailing /v1 is dropped). Default https://api.openai.com.",
    ),
    model: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/).default("gpt-4o-mini-tts").describe(
      "Speech model.",
    ),
    voice: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default("alloy").describe("Voice."),
  }).prefault({}),
  elevenlabs: z.strictObject({
    apiKey: secret.optional().describe("ElevenLabs API key. Absent: ELEVENLABS_API_KEY."),
    baseUrl: baseUrl.optional().describe("API root. Default https://api.elevenlabs.io."),
    voiceId: z.string().regex(/^[A-Za-z0-9]{1,64}$/).default("pMsXgVXv3BLzUgSXRplE").describe(
      "Voice id.",
    ),
    modelId: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/).default("eleven_multilingual_v2")
      .describe("Model id."),
  }).prefault({}),
  espeak: z.strictObject({
    voice: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_+-]{0,63}$/).default("en").describe(
      "espeak-ng voice (espeak-ng --voices lists them), e.g. en, en-us, de, en+f3.",
    ),
  }).prefault({}),
}).prefault({});

/** The effective `tts` config. */
export type TtsConfig = z.output<typeof ttsConfig>;
