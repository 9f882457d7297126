/**
 * ElevenLabs speech: `POST {baseUrl}/v1/text-to-speech/{voice_id}?output_format=...`
 * with the `xi-api-key` header and `{text, model_id}`.
 *
 * @module
 */
import {
  AUDIO_TYPES,
  type AudioFormat,
  postForAudio,
  type SpeechAudio,
  type SpeechRequest,
} from "./audio.ts";

/** Where gw sends speech requests when no baseUrl is configured. */
export const ELEVENLABS_DEFAULT_BASE_URL = "https://api.elevenlabs.io";

/** Models `tts.providers` lists. */
export const ELEVENLABS_MODELS: readonly string[] = [
  "eleven_multilingual_v2",
  "eleven_turbo_v2_5",
  "eleven_flash_v2_5",
];

/** ElevenLabs' `output_format` for each format gw asks it for (`opus` is Ogg Opus). */
export const ELEVENLABS_OUTPUT: Partial<Record<AudioFormat, string>> = {
  mp3: "mp3_44100_128",
  opus: "opus_48000_64",
  pcm: "pcm_24000",
};

/** Convert with ElevenLabs: mp3, opus or pcm. */
export async function elevenlabsSpeech(req: SpeechRequest): Promise<SpeechAudio> {
  const outputFormat = ELEVENLABS_OUTPUT[req.format] ?? "mp3_44100_128";
  const base = req.baseUrl!.replace(/\/+$/, "");
  const url = `${base}/v1/text-to-speech/${encodeURIComponent(req.voice)}?output_format=${
    encodeURIComponent(outputFormat)
  }`;
  const { bytes } = await postForAudio("elevenlabs", url, {
    headers: {
      "xi-api-key": req.apiKey!,
      "content-type": "application/json",
    },
    body: JSON.stringify({ text: req.text, model_id: req.model }),
  }, req);
  return { bytes, provider: "elevenlabs", outputFormat, ...AUDIO_TYPES[req.format] };
}
