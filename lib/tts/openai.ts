/**
 * OpenAI speech: `POST {baseUrl}/v1/audio/speech` with a Bearer key and
 * `{model, input, voice, response_format}`; the answer is the audio itself.
 *
 * @module
 */
import { AUDIO_TYPES, postForAudio, type SpeechAudio, type SpeechRequest } from "./audio.ts";

/** Where gw sends speech requests when no baseUrl is configured. */
export const OPENAI_DEFAULT_BASE_URL = "https://api.openai.com";

/** Models `tts.providers` lists. */
export const OPENAI_MODELS: readonly string[] = ["gpt-4o-mini-tts", "tts-1", "tts-1-hd"];

/** Voices `tts.providers` lists (others are passed through: OpenAI adds voices). */
export const OPENAI_VOICES: readonly string[] = [
  "alloy",
  "ash",
  "ballad",
  "cedar",
  "coral",
  "echo",
  "fable",
  "marin",
  "nova",
  "onyx",
  "sage",
  "shimmer",
  "verse",
];

/** The speech endpoint under `baseUrl` (with or without a trailing `/v1`). */
export function openaiSpeechUrl(baseUrl: string): string {
  return `${baseUrl.replace(/\/+$/, "").replace(/\/v1$/, "")}/v1/audio/speech`;
}

/** Convert with OpenAI; every format of {@link AUDIO_TYPES} is supported. */
export async function openaiSpeech(req: SpeechRequest): Promise<SpeechAudio> {
  const { bytes } = await postForAudio("openai", openaiSpeechUrl(req.baseUrl!), {
    headers: {
      authorization: `Bearer ${req.apiKey}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({
      model: req.model,
      input: req.text,
      voice: req.voice,
      response_format: req.format,
    }),
  }, req);
  return { bytes, provider: "openai", outputFormat: req.format, ...AUDIO_TYPES[req.format] };
}
