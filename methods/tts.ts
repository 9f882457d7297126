/**
 * Text to speech: `tts.status`, `tts.providers`, `tts.enable`,
 * `tts.disable`, `tts.setProvider` and `tts.convert`, with OpenClaw's params
 * and results. The switch and the chosen provider are kept in the store.
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import { invalidRequest } from "../lib/protocol/errors.ts";
import type { GatewayContext } from "../lib/server/context.ts";
import {
  AUDIO_FORMATS,
  MAX_TTS_TEXT_CHARS,
  parseProviderId,
  Speech,
  TTS_PROVIDER_IDS,
  type TtsProviderId,
} from "../lib/tts/mod.ts";

const speeches = new WeakMap<GatewayContext, Speech>();

/** The gateway's speech service (one per context). */
export function speechOf(ctx: GatewayContext): Speech {
  let s = speeches.get(ctx);
  if (!s) {
    s = new Speech({ config: () => ctx.config.config, store: ctx.store.speech });
    speeches.set(ctx, s);
  }
  return s;
}

/** A provider id from params, or INVALID_REQUEST naming the field. */
function providerParam(raw: string): TtsProviderId {
  const id = parseProviderId(raw);
  if (!id) {
    throw invalidRequest(
      `params.provider: unknown TTS provider ${JSON.stringify(raw.slice(0, 64))}; expected one of ${
        TTS_PROVIDER_IDS.join(", ")
      }`,
    );
  }
  return id;
}

/** `tts.status`: whether replies are spoken, the active provider, which providers can convert. */
export const ttsStatus = defineMethod({
  name: "tts.status",
  scope: "read",
  summary: "Text to speech: on or off, the active provider, and which providers can convert.",
  params: z.looseObject({}),
  handler: (_p, ctx) => speechOf(ctx).status(),
});

/** `tts.providers`: every provider with its models and voices. */
export const ttsProviders = defineMethod({
  name: "tts.providers",
  scope: "read",
  summary: "The text-to-speech providers, their models and voices, and the active one.",
  params: z.looseObject({}),
  handler: (_p, ctx) => speechOf(ctx).providers(),
});

/** `tts.enable`: channel replies also go out as audio. */
export const ttsEnable = defineMethod({
  name: "tts.enable",
  scope: "write",
  summary: "Speak channel replies: each final reply also goes out as audio.",
  params: z.strictObject({}),
  handler: async (_p, ctx) => {
    await speechOf(ctx).setEnabled(true);
    return { enabled: true };
  },
});

/** `tts.disable`: channel replies are text only. */
export const ttsDisable = defineMethod({
  name: "tts.disable",
  scope: "write",
  summary: "Stop speaking channel replies.",
  params: z.strictObject({}),
  handler: async (_p, ctx) => {
    await speechOf(ctx).setEnabled(false);
    return { enabled: false };
  },
});

/** `tts.setProvider`: choose the provider that converts. */
export const ttsSetProvider = defineMethod({
  name: "tts.setProvider",
  scope: "write",
  summary: "Choose the text-to-speech provider (openai, elevenlabs, espeak-ng).",
  params: z.strictObject({ provider: z.string().trim().min(1).max(64) }),
  handler: async (p, ctx) => {
    const provider = providerParam(p.provider);
    await speechOf(ctx).setProvider(provider);
    return { provider };
  },
});

/** `tts.convert`: text in, audio out (base64, with its MIME type). */
export const ttsConvert = defineMethod({
  name: "tts.convert",
  scope: "write",
  summary: "Convert text to audio with the active (or a named) provider; answers base64 audio.",
  params: z.strictObject({
    text: z.string().trim().min(1).max(MAX_TTS_TEXT_CHARS),
    provider: z.string().trim().min(1).max(64).optional(),
    voiceId: z.string().trim().min(1).max(64).optional(),
    voice: z.string().trim().min(1).max(64).optional(),
    modelId: z.string().trim().min(1).max(128).optional(),
    format: z.enum(AUDIO_FORMATS).optional(),
    channel: z.string().trim().min(1).max(64).optional(),
  }),
  handler: async (p, ctx) => {
    const voice = p.voiceId ?? p.voice;
    const a = await speechOf(ctx).convert(p.text, {
      ...(p.provider !== undefined ? { provider: providerParam(p.provider) } : {}),
      ...(voice !== undefined
        ? { voice, voiceField: p.voiceId !== undefined ? "voiceId" : "voice" }
        : {}),
      ...(p.modelId !== undefined ? { model: p.modelId } : {}),
      ...(p.format !== undefined ? { format: p.format } : {}),
      // Audio for a chat channel is a voice note (Ogg Opus where the provider makes it).
      ...(p.channel !== undefined ? { voiceNote: true } : {}),
    });
    return {
      audioBase64: a.bytes.toBase64(),
      provider: a.provider,
      outputFormat: a.outputFormat,
      mimeType: a.mimeType,
      fileExtension: a.fileExtension,
    };
  },
});
