/**
 * Speech settings chosen at run time, in Deno KV: whether spoken replies are
 * on and which TTS provider talks (`tts.enable`, `tts.setProvider`), the
 * voice wake triggers (`voicewake.set`) and each client's talk mode
 * (`talk.mode`). Keys live under `["gw", 1, "speech", ...]`.
 *
 * @module
 */
import { SCHEMA_VERSION } from "./keys.ts";
import { busyRetry } from "./busy.ts";

const P = ["gw", SCHEMA_VERSION, "speech"] as const;

const speechKeys = {
  ttsEnabled: (): Deno.KvKey => [...P, "tts", "enabled"],
  ttsProvider: (): Deno.KvKey => [...P, "tts", "provider"],
  voiceWake: (): Deno.KvKey => [...P, "voicewake"],
  talkMode: (kind: "device" | "client", id: string): Deno.KvKey => [...P, "talk", kind, id],
};

/** Voice wake triggers as stored. */
export interface VoiceWakeRecord {
  triggers: string[];
  updatedAtMs: number;
}

/** One client's talk mode as stored. */
export interface TalkModeRecord {
  enabled: boolean;
  phase: string | null;
  ts: number;
}

/** Who a talk mode belongs to: a paired device, else a client id. */
export interface TalkModeOwner {
  kind: "device" | "client";
  id: string;
}

/** Speech settings over one KV handle. */
export class SpeechStore {
  readonly #kv: Deno.Kv;

  /** Wrap a KV handle. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Whether spoken replies were switched on or off at run time; null when never set. */
  async ttsEnabled(): Promise<boolean | null> {
    return (await this.#kv.get<boolean>(speechKeys.ttsEnabled())).value;
  }

  /** Persist the spoken-replies switch. */
  async setTtsEnabled(enabled: boolean): Promise<void> {
    await busyRetry(() => this.#kv.set(speechKeys.ttsEnabled(), enabled));
  }

  /** The provider chosen at run time; null when never set. */
  async ttsProvider(): Promise<string | null> {
    return (await this.#kv.get<string>(speechKeys.ttsProvider())).value;
  }

  /** Persist the chosen provider. */
  async setTtsProvider(provider: string): Promise<void> {
    await busyRetry(() => this.#kv.set(speechKeys.ttsProvider(), provider));
  }

  /** The voice wake triggers; null when never set. */
  async voiceWake(): Promise<VoiceWakeRecord | null> {
    return (await this.#kv.get<VoiceWakeRecord>(speechKeys.voiceWake())).value;
  }

  /** Persist the voice wake triggers. */
  async setVoiceWake(triggers: string[], now: number = Date.now()): Promise<VoiceWakeRecord> {
    const rec: VoiceWakeRecord = { triggers: [...triggers], updatedAtMs: now };
    await busyRetry(() => this.#kv.set(speechKeys.voiceWake(), rec));
    return rec;
  }

  /** The talk mode of a device or client; null when it never set one. */
  async talkMode(owner: TalkModeOwner): Promise<TalkModeRecord | null> {
    return (await this.#kv.get<TalkModeRecord>(speechKeys.talkMode(owner.kind, owner.id))).value;
  }

  /** Persist the talk mode of a device or client. */
  async setTalkMode(owner: TalkModeOwner, rec: TalkModeRecord): Promise<void> {
    await busyRetry(() => this.#kv.set(speechKeys.talkMode(owner.kind, owner.id), rec));
  }
}
