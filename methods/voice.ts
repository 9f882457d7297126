/**
 * Voice wake and talk mode: `voicewake.get`, `voicewake.set` (broadcasting
 * `voicewake.changed`) and `talk.mode` (broadcasting `talk.mode`), with
 * OpenClaw's params and payloads. Triggers and each client's talk mode are
 * kept in the store.
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import type { TalkModeOwner, TalkModeRecord } from "../lib/store/mod.ts";

/** The triggers a gateway listens for until `voicewake.set` says otherwise (OpenClaw's). */
export const DEFAULT_VOICEWAKE_TRIGGERS: readonly string[] = ["openclaw", "claude", "computer"];

/** Most triggers; longest trigger (OpenClaw's bounds). */
export const MAX_VOICEWAKE_TRIGGERS = 32;
const MAX_TRIGGER_CHARS = 64;

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

const trigger = z.string().trim().min(1).max(MAX_TRIGGER_CHARS).refine((s) => !CONTROL.test(s), {
  message: "control characters are not allowed",
});

/** Triggers without case-insensitive duplicates, first spelling kept. */
export function dedupeTriggers(list: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const t of list) {
    const k = t.toLocaleLowerCase("en-US");
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(t);
  }
  return out;
}

/** `voicewake.get`: the wake words. */
export const voicewakeGet = defineMethod({
  name: "voicewake.get",
  scope: "read",
  summary: "The voice wake triggers (wake words).",
  params: z.looseObject({}),
  handler: async (_p, ctx) => {
    const rec = await ctx.store.speech.voiceWake();
    return { triggers: rec?.triggers ?? [...DEFAULT_VOICEWAKE_TRIGGERS] };
  },
});

/** `voicewake.set`: replace the wake words; every reader hears `voicewake.changed`. */
export const voicewakeSet = defineMethod({
  name: "voicewake.set",
  scope: "write",
  summary: "Replace the voice wake triggers (1-32 words of up to 64 characters).",
  params: z.strictObject({
    triggers: z.array(trigger).min(1).max(MAX_VOICEWAKE_TRIGGERS),
  }),
  handler: async (p, ctx) => {
    const rec = await ctx.store.speech.setVoiceWake(dedupeTriggers(p.triggers));
    ctx.broadcast("voicewake.changed", { triggers: rec.triggers });
    return { triggers: rec.triggers };
  },
});

/** `talk.mode`: a client turns talk mode on or off; every reader hears `talk.mode`. */
export const talkMode = defineMethod({
  name: "talk.mode",
  scope: "write",
  summary: "Turn talk mode on or off for this client (kept per device, else per client id).",
  params: z.strictObject({
    enabled: z.boolean(),
    phase: z.string().trim().max(64).optional(),
  }),
  handler: async (p, ctx, caller) => {
    const payload: TalkModeRecord = {
      enabled: p.enabled,
      phase: p.phase ? p.phase : null,
      ts: Date.now(),
    };
    const owner: TalkModeOwner = caller.deviceId
      ? { kind: "device", id: caller.deviceId }
      : { kind: "client", id: caller.clientId };
    await ctx.store.speech.setTalkMode(owner, payload);
    ctx.broadcast("talk.mode", payload, { droppable: true });
    return payload;
  },
});
