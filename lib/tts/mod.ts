/**
 * Text to speech: three providers (OpenAI and ElevenLabs over HTTPS,
 * espeak-ng locally), the switch for spoken channel replies, and the chosen
 * provider. The switch and the choice are kept in the store
 * ({@link SpeechStore}); until they are set, gw.json's `tts.enabled` and
 * `tts.provider` decide.
 *
 * Nothing here loads an SDK: providers are `fetch` calls and one subprocess.
 *
 * @module
 */
import type { GwConfig } from "../config/schema.ts";
import type { SpeechStore } from "../store/tts.ts";
import { GatewayError, invalidRequest } from "../protocol/errors.ts";
import { ErrorCode } from "../protocol/types.ts";
import { TTS_PROVIDER_IDS, type TtsProviderId } from "./config.ts";
import {
  type AudioFormat,
  PROVIDER_LABELS,
  type SpeechAudio,
  type SpeechRequest,
  unavailable,
} from "./audio.ts";
import { OPENAI_DEFAULT_BASE_URL, OPENAI_MODELS, OPENAI_VOICES, openaiSpeech } from "./openai.ts";
import {
  ELEVENLABS_DEFAULT_BASE_URL,
  ELEVENLABS_MODELS,
  ELEVENLABS_OUTPUT,
  elevenlabsSpeech,
} from "./elevenlabs.ts";
import { espeakSpeech, findEspeak } from "./espeak.ts";

export { AUDIO_FORMATS, AUDIO_TYPES } from "./audio.ts";
export type { AudioFormat, SpeechAudio } from "./audio.ts";
export { MAX_TTS_TEXT_CHARS, TTS_PROVIDER_IDS } from "./config.ts";
export type { TtsConfig, TtsProviderId } from "./config.ts";

/** Where a provider's key came from (never the key itself). */
export type KeySource = "config" | "models" | "env" | "none";

/** One provider's state, as `tts.status` shows it. */
export interface ProviderState {
  id: TtsProviderId;
  label: string;
  /** It can convert now: a key is there, or the binary is installed. */
  configured: boolean;
  /** Where its key came from (remote providers). */
  keySource?: KeySource;
}

/** What {@link Speech.convert} may be told beyond the text. */
export interface ConvertOptions {
  /** A provider id (validated by the caller); the active provider when absent. */
  provider?: TtsProviderId;
  /** Voice name or id; the provider's configured voice when absent. */
  voice?: string;
  /** Params field the voice came from, for error messages (default `voice`). */
  voiceField?: string;
  /** Model id; the provider's configured model when absent. */
  model?: string;
  /** Params field the model came from (default `modelId`). */
  modelField?: string;
  /** The format; when absent, a voice note's (Ogg Opus) for `voiceNote`, else mp3 (espeak-ng: wav). */
  format?: AudioFormat;
  /** The audio is a chat voice note: prefer Ogg Opus. */
  voiceNote?: boolean;
}

/** What a channel needs to speak its replies. */
export interface ChannelSpeech {
  /** Whether replies are spoken now. */
  enabled(): Promise<boolean>;
  /** A reply's audio: Markdown made speakable, cut to `tts.maxTextLength`. */
  synthesize(text: string): Promise<{ bytes: Uint8Array; mimeType: string }>;
}

/** Options of {@link Speech}. */
export interface SpeechOptions {
  /** The effective config, read on every call. */
  config: () => GwConfig;
  /** Where the switch and the choice are kept. */
  store: SpeechStore;
  /** An environment variable; default `Deno.env.get` (unset when not permitted). */
  env?: (name: string) => string | undefined;
}

/** Where `tts.status` says the preferences are kept. */
export const TTS_PREFS_PATH = "kv:speech/tts";

/**
 * Text to speech for one gateway.
 *
 * @example
 * ```ts
 * import { Store } from "../store/mod.ts";
 * import { configSchema } from "../config/schema.ts";
 * const store = await Store.open("/tmp/gw/gw.kv");
 * const speech = new Speech({ config: () => configSchema.parse({}), store: store.speech });
 * const audio = await speech.convert("Hello", { provider: "espeak-ng" });
 * console.log(audio.mimeType); // audio/wav
 * ```
 */
export class Speech {
  readonly #o: SpeechOptions;
  readonly #env: (name: string) => string | undefined;

  /** Wrap config and store; cheap. */
  constructor(o: SpeechOptions) {
    this.#o = o;
    this.#env = o.env ?? envGet;
  }

  /** Whether channel replies are spoken. */
  async enabled(): Promise<boolean> {
    return (await this.#o.store.ttsEnabled()) ?? this.#o.config().tts.enabled;
  }

  /** Switch spoken replies on or off (kept across restarts). */
  async setEnabled(on: boolean): Promise<void> {
    await this.#o.store.setTtsEnabled(on);
  }

  /** Choose the provider (kept across restarts). */
  async setProvider(id: TtsProviderId): Promise<void> {
    await this.#o.store.setTtsProvider(id);
  }

  /** The provider chosen at run time or in the config; null when neither chose. */
  async chosen(): Promise<TtsProviderId | null> {
    const stored = await this.#o.store.ttsProvider();
    if (stored && isProviderId(stored)) return stored;
    return this.#o.config().tts.provider ?? null;
  }

  /**
   * The provider that converts: the chosen one, else one with a key in the
   * `tts` section, else espeak-ng when installed, else one with a key from
   * elsewhere; "" when none can.
   */
  async active(): Promise<TtsProviderId | ""> {
    const chosen = await this.chosen();
    if (chosen) return chosen;
    const states = await this.providerStates();
    const by = (id: TtsProviderId) => states.find((s) => s.id === id)!;
    for (const id of ["openai", "elevenlabs"] as const) {
      if (by(id).keySource === "config") return id;
    }
    if (by("espeak-ng").configured) return "espeak-ng";
    return states.find((s) => s.configured)?.id ?? "";
  }

  /** Every provider, whether it can convert now and where its key came from. */
  async providerStates(): Promise<ProviderState[]> {
    const espeak = (await findEspeak()) !== null;
    return TTS_PROVIDER_IDS.map((id) => {
      const label = PROVIDER_LABELS[id];
      if (id === "espeak-ng") return { id, label, configured: espeak };
      const keySource = this.#key(id).source;
      return { id, label, configured: keySource !== "none", keySource };
    });
  }

  /** The `tts.status` answer (OpenClaw's shape, plus gw's `espeakAvailable`, key flags and caps). */
  async status(): Promise<Record<string, unknown>> {
    const [enabled, provider, states] = await Promise.all([
      this.enabled(),
      this.active(),
      this.providerStates(),
    ]);
    const cfg = this.#o.config().tts;
    return {
      enabled,
      auto: enabled ? "always" : "off",
      provider,
      persona: null,
      personas: [],
      fallbackProvider: null,
      fallbackProviders: [],
      prefsPath: TTS_PREFS_PATH,
      providerStates: states.map((s) => ({ id: s.id, label: s.label, configured: s.configured })),
      hasOpenAIKey: states.find((s) => s.id === "openai")!.configured,
      hasElevenLabsKey: states.find((s) => s.id === "elevenlabs")!.configured,
      espeakAvailable: states.find((s) => s.id === "espeak-ng")!.configured,
      maxTextLength: cfg.maxTextLength,
      maxAudioBytes: cfg.maxAudioBytes,
    };
  }

  /** The `tts.providers` answer: `{providers: [{id, name, configured, models, voices}], active}`. */
  async providers(): Promise<Record<string, unknown>> {
    const [states, active] = await Promise.all([this.providerStates(), this.active()]);
    const espeakVoices = states.find((s) => s.id === "espeak-ng")!.configured
      ? await listEspeakVoices()
      : [];
    const detail: Record<TtsProviderId, { models: readonly string[]; voices: readonly string[] }> =
      {
        openai: { models: OPENAI_MODELS, voices: OPENAI_VOICES },
        elevenlabs: { models: ELEVENLABS_MODELS, voices: [] },
        "espeak-ng": { models: [], voices: espeakVoices },
      };
    return {
      providers: states.map((s) => ({
        id: s.id,
        name: s.label,
        configured: s.configured,
        models: [...detail[s.id].models],
        voices: [...detail[s.id].voices],
      })),
      active,
    };
  }

  /** Convert `text` to audio. Bad input is INVALID_REQUEST naming the field; provider trouble UNAVAILABLE. */
  async convert(text: string, o: ConvertOptions = {}): Promise<SpeechAudio> {
    const cfg = this.#o.config().tts;
    if (text.length > cfg.maxTextLength) {
      throw invalidRequest(
        `params.text: longer than ${cfg.maxTextLength} characters (tts.maxTextLength)`,
        { code: "TTS_TEXT_TOO_LONG", maxTextLength: cfg.maxTextLength },
      );
    }
    const provider = o.provider ?? await this.active();
    if (!provider) {
      throw new GatewayError(
        ErrorCode.UNAVAILABLE,
        "no TTS provider can convert: install espeak-ng, or set tts.openai.apiKey or tts.elevenlabs.apiKey (or OPENAI_API_KEY / ELEVENLABS_API_KEY)",
        { details: { code: "TTS_NOT_CONFIGURED" } },
      );
    }
    const voiceField = o.voiceField ?? "voice";
    const modelField = o.modelField ?? "modelId";
    const base = {
      text,
      maxBytes: cfg.maxAudioBytes,
      signal: AbortSignal.timeout(cfg.timeoutMs),
    };
    const want = (fallback: AudioFormat): AudioFormat => o.format ?? fallback;
    switch (provider) {
      case "openai": {
        const key = this.#requireKey("openai");
        const req: SpeechRequest = {
          ...base,
          voice: checked(o.voice, cfg.openai.voice, /^[A-Za-z0-9_-]{1,64}$/, voiceField),
          model: checked(o.model, cfg.openai.model, /^[A-Za-z0-9._:-]{1,128}$/, modelField),
          format: want(o.voiceNote ? "opus" : "mp3"),
          apiKey: key,
          baseUrl: cfg.openai.baseUrl ?? OPENAI_DEFAULT_BASE_URL,
        };
        return await openaiSpeech(req);
      }
      case "elevenlabs": {
        const key = this.#requireKey("elevenlabs");
        const format = want(o.voiceNote ? "opus" : "mp3");
        if (!ELEVENLABS_OUTPUT[format]) {
          throw invalidRequest(`params.format: elevenlabs makes mp3, opus or pcm, not ${format}`);
        }
        return await elevenlabsSpeech({
          ...base,
          voice: checked(o.voice, cfg.elevenlabs.voiceId, /^[A-Za-z0-9]{1,64}$/, voiceField),
          model: checked(o.model, cfg.elevenlabs.modelId, /^[A-Za-z0-9._:-]{1,128}$/, modelField),
          format,
          apiKey: key,
          baseUrl: cfg.elevenlabs.baseUrl ?? ELEVENLABS_DEFAULT_BASE_URL,
        });
      }
      case "espeak-ng": {
        const format = want("wav");
        if (format !== "wav") {
          throw invalidRequest(`params.format: espeak-ng makes wav only, not ${format}`);
        }
        const voice = checked(
          o.voice,
          cfg.espeak.voice,
          /^[A-Za-z0-9][A-Za-z0-9_+-]{0,63}$/,
          voiceField,
        );
        try {
          return await espeakSpeech({ ...base, voice, model: "", format });
        } catch (e) {
          // espeak-ng's "voice does not exist" is the caller's voice when one was given.
          if (
            e instanceof GatewayError && e.details?.code === "TTS_PROVIDER_ERROR" &&
            /voice/i.test(e.message) && o.voice !== undefined
          ) {
            throw invalidRequest(
              `params.${voiceField}: espeak-ng has no voice ${
                JSON.stringify(voice)
              } (espeak-ng --voices lists them)`,
              { code: "TTS_UNKNOWN_VOICE" },
            );
          }
          throw e;
        }
      }
    }
  }

  /** A channel reply's audio (Ogg Opus where the provider makes it; espeak-ng gives WAV). */
  async forReply(text: string): Promise<{ bytes: Uint8Array; mimeType: string }> {
    const speakable = speakableText(text, this.#o.config().tts.maxTextLength);
    if (!speakable) throw invalidRequest("the reply has nothing to say aloud");
    const a = await this.convert(speakable, { voiceNote: true });
    return { bytes: a.bytes, mimeType: a.mimeType };
  }

  #key(id: "openai" | "elevenlabs"): { key?: string; source: KeySource } {
    const cfg = this.#o.config();
    const fromConfig = id === "openai" ? cfg.tts.openai.apiKey : cfg.tts.elevenlabs.apiKey;
    if (fromConfig) return { key: fromConfig, source: "config" };
    if (id === "openai") {
      const models = cfg.models.providers.openai?.apiKey;
      if (models) return { key: models, source: "models" };
    }
    const env = this.#env(id === "openai" ? "OPENAI_API_KEY" : "ELEVENLABS_API_KEY")?.trim();
    return env ? { key: env, source: "env" } : { source: "none" };
  }

  #requireKey(id: "openai" | "elevenlabs"): string {
    const k = this.#key(id).key;
    if (k) return k;
    throw unavailable(
      id,
      id === "openai"
        ? "OpenAI TTS has no API key: set tts.openai.apiKey or OPENAI_API_KEY"
        : "ElevenLabs TTS has no API key: set tts.elevenlabs.apiKey or ELEVENLABS_API_KEY",
      { code: "TTS_NOT_CONFIGURED" },
    );
  }
}

/** The text of a voice/model param or the configured default, checked against `re`. */
function checked(given: string | undefined, fallback: string, re: RegExp, field: string): string {
  if (given === undefined) return fallback;
  if (!re.test(given)) {
    throw invalidRequest(
      `params.${field}: ${
        JSON.stringify(given.slice(0, 64))
      } is not a valid name for this provider`,
    );
  }
  return given;
}

/** Whether `s` names a provider. */
export function isProviderId(s: string): s is TtsProviderId {
  return (TTS_PROVIDER_IDS as readonly string[]).includes(s);
}

/** A provider id from what a caller typed (any case; `espeak` for espeak-ng); null when unknown. */
export function parseProviderId(s: string): TtsProviderId | null {
  const id = s.trim().toLowerCase();
  if (id === "espeak" || id === "espeakng") return "espeak-ng";
  return isProviderId(id) ? id : null;
}

/**
 * Markdown as it should be read aloud: code blocks, link targets, markup and
 * list bullets dropped, whitespace collapsed, then cut at a word to `max`
 * characters.
 */
export function speakableText(md: string, max: number): string {
  const text = md
    .replace(/```[\s\S]*?(```|$)/g, " ")
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[([^\]]+)\]\([^)]*\)/g, "$1")
    .replace(/^\s{0,3}(#{1,6}|>+|[-*+]|\d+[.)])\s+/gm, "")
    .replace(/[*~`]+|__|(?<!\w)_|_(?!\w)/g, "")
    .replace(/\s+/g, " ")
    .trim();
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const space = cut.lastIndexOf(" ");
  return (space > max * 0.6 ? cut.slice(0, space) : cut).trim();
}

/** The channel side of speech: the switch and a reply's audio. */
export function channelSpeech(speech: Speech): ChannelSpeech {
  return {
    enabled: () => speech.enabled(),
    synthesize: (text) => speech.forReply(text),
  };
}

let espeakVoices: Promise<string[]> | undefined;

/** espeak-ng's voice (language) names, read once from `espeak-ng --voices`. */
function listEspeakVoices(): Promise<string[]> {
  espeakVoices ??= (async () => {
    const bin = await findEspeak();
    if (!bin) return [];
    try {
      const out = await new Deno.Command(bin, {
        args: ["--voices"],
        stdout: "piped",
        stderr: "null",
        clearEnv: true,
        signal: AbortSignal.timeout(5_000),
      }).output();
      if (!out.success) return [];
      const lines = new TextDecoder().decode(out.stdout).split("\n").slice(1);
      const names = lines.map((l) => l.trim().split(/\s+/)[1] ?? "").filter((n) =>
        /^[A-Za-z0-9][A-Za-z0-9_+-]{0,63}$/.test(n)
      );
      return [...new Set(names)];
    } catch {
      return [];
    }
  })();
  const p = espeakVoices;
  // A failed listing is tried again next time.
  p.then((v) => {
    if (!v.length && espeakVoices === p) espeakVoices = undefined;
  });
  return p;
}

function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // not permitted: as if unset
  }
}
