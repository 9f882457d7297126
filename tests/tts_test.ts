/**
 * Text to speech over a real gateway: espeak-ng making real WAV, the OpenAI
 * and ElevenLabs providers against fakes of their HTTP APIs (which check the
 * request as the real services do), the errors, the switch and the provider
 * surviving a restart, and spoken replies on Telegram (grammY against the
 * Bot API server for tests, the real Anthropic SDK against its fake).
 *
 * The espeak-ng tests are ignored, saying so, when the binary is not installed
 * (`.ci/run` installs it with apt-get).
 */
import assert from "node:assert/strict";
import { Api, InputFile } from "grammy";
import {
  type AnyFrame,
  connected,
  err,
  ok,
  type RawClient,
  startTestGateway,
  type TestGateway,
  until as waitFor,
} from "./_helpers.ts";
import { type FakeAnthropic, startFakeAnthropic } from "./_fake_anthropic.ts";
import { TelegramApi } from "./_telegram_api.ts";

/** {@link waitFor} with this file's longer default. */
const until = <T>(fn: () => T | Promise<T>, what: string, ms = 15_000) => waitFor(fn, what, ms);

// ---- espeak-ng present? ------------------------------------------------------------------

function which(bin: string): boolean {
  try {
    return new Deno.Command("which", { args: [bin], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}
const HAS_ESPEAK = which("espeak-ng");
const NO_ESPEAK = "(ignored: espeak-ng is not installed; .ci/run installs it with apt-get)";
const espeakName = (name: string) => HAS_ESPEAK ? name : `${name} ${NO_ESPEAK}`;

// ---- audio checks -------------------------------------------------------------------------

interface Wav {
  format: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  dataBytes: number;
  /** Peak absolute sample value (16-bit PCM). */
  peak: number;
}

/** Parse a RIFF/WAVE file strictly: sizes must match the bytes. */
function parseWav(b: Uint8Array): Wav {
  const ascii = (at: number) => String.fromCharCode(...b.subarray(at, at + 4));
  assert.ok(b.length > 44, `WAV too short: ${b.length} bytes`);
  assert.equal(ascii(0), "RIFF");
  assert.equal(ascii(8), "WAVE");
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  assert.equal(v.getUint32(4, true), b.length - 8, "RIFF size is the file size - 8");
  let fmt: Omit<Wav, "dataBytes" | "peak"> | undefined;
  let at = 12;
  while (at + 8 <= b.length) {
    const id = ascii(at);
    const size = v.getUint32(at + 4, true);
    if (id === "fmt ") {
      fmt = {
        format: v.getUint16(at + 8, true),
        channels: v.getUint16(at + 10, true),
        sampleRate: v.getUint32(at + 12, true),
        bitsPerSample: v.getUint16(at + 22, true),
      };
      assert.equal(
        v.getUint32(at + 16, true),
        fmt.sampleRate * fmt.channels * fmt.bitsPerSample / 8,
        "byte rate",
      );
    } else if (id === "data") {
      assert.ok(fmt, "fmt chunk before data");
      assert.equal(size, b.length - at - 8, "data size is what follows the header");
      let peak = 0;
      for (let i = at + 8; i + 1 < b.length; i += 2) {
        peak = Math.max(peak, Math.abs(v.getInt16(i, true)));
      }
      return { ...fmt, dataBytes: size, peak };
    }
    at += 8 + size + (size & 1);
  }
  throw new Error("no data chunk");
}

const b64 = (s: string) => Uint8Array.fromBase64(s);

/** An MP3 as services send it: an ID3v2 tag, then MPEG-1 layer III frames (128 kb/s, 44.1 kHz). */
function fakeMp3(frames = 8): Uint8Array<ArrayBuffer> {
  const id3 = [0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 0, 0];
  const frameLen = 417; // 144 * 128000 / 44100
  const out = new Uint8Array(id3.length + frames * frameLen);
  out.set(id3);
  for (let i = 0; i < frames; i++) out.set([0xff, 0xfb, 0x90, 0x64], id3.length + i * frameLen);
  return out;
}

/** An Ogg Opus stream's first page: `OggS` with the `OpusHead` packet. */
function fakeOgg(): Uint8Array<ArrayBuffer> {
  const head = [..."OpusHead"].map((c) => c.charCodeAt(0));
  const page = [..."OggS"].map((c) => c.charCodeAt(0));
  const out = new Uint8Array(28 + 19 + 64);
  out.set(page);
  out[5] = 2; // beginning of stream
  out[26] = 1; // one segment
  out[27] = 19;
  out.set([...head, 1, 1, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0], 28);
  return out;
}

// ---- fake speech APIs ---------------------------------------------------------------------

interface SpeechCall {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

interface FakeSpeech extends AsyncDisposable {
  url: string;
  calls: SpeechCall[];
  /** Answer the next request with this instead. */
  next(r: { status: number; body: string | Uint8Array; type?: string }): void;
  close(): Promise<void>;
}

function serveFake(answer: (c: SpeechCall) => Response): Promise<FakeSpeech> {
  const calls: SpeechCall[] = [];
  const queued: { status: number; body: string | Uint8Array; type?: string }[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(await req.text());
    } catch { /* not JSON */ }
    const c: SpeechCall = {
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: Object.fromEntries(req.headers),
      body,
    };
    calls.push(c);
    const q = queued.shift();
    if (q) {
      return new Response(q.body as BodyInit, {
        status: q.status,
        headers: { "content-type": q.type ?? "application/json" },
      });
    }
    return answer(c);
  });
  const close = async () => {
    await server.shutdown();
  };
  return Promise.resolve({
    url: `http://127.0.0.1:${server.addr.port}`,
    calls,
    next: (r) => queued.push(r),
    close,
    [Symbol.asyncDispose]: close,
  });
}

const OPENAI_KEY = "sk-test-openai-0123456789";
const ELEVEN_KEY = "xi-test-eleven-0123456789";
const OPENAI_VOICES = ["alloy", "ash", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer"];

/** OpenAI's `POST /v1/audio/speech`, checking what the real API checks, with its error bodies. */
function fakeOpenAI(): Promise<FakeSpeech> {
  const error = (status: number, message: string, param: string | null, code: string | null) =>
    Response.json({ error: { message, type: "invalid_request_error", param, code } }, { status });
  return serveFake((c) => {
    if (c.method !== "POST" || c.path !== "/v1/audio/speech") {
      return error(404, `Invalid URL (${c.method} ${c.path})`, null, null);
    }
    const auth = c.headers.authorization ?? "";
    if (auth !== `Bearer ${OPENAI_KEY}`) {
      const given = auth.replace(/^Bearer /, "");
      return error(
        401,
        `Incorrect API key provided: ${given.slice(0, 4)}***${
          given.slice(-4)
        }. You can find your API key at https://platform.openai.com/account/api-keys.`,
        null,
        "invalid_api_key",
      );
    }
    if (!/^application\/json/.test(c.headers["content-type"] ?? "")) {
      return error(400, "We could not parse the JSON body of your request.", null, null);
    }
    const { model, input, voice, response_format } = c.body as Record<string, string>;
    if (typeof model !== "string" || !model) return error(400, "model is required", "model", null);
    if (typeof input !== "string" || !input) return error(400, "input is required", "input", null);
    if (!OPENAI_VOICES.includes(voice!)) {
      return error(400, `Invalid value for 'voice': '${voice}'.`, "voice", "invalid_value");
    }
    const format = response_format ?? "mp3";
    if (format === "opus") {
      return new Response(fakeOgg(), { headers: { "content-type": "audio/ogg" } });
    }
    if (format !== "mp3") return error(400, "unsupported in this fake", "response_format", null);
    return new Response(fakeMp3(), { headers: { "content-type": "audio/mpeg" } });
  });
}

const ELEVEN_VOICE = "pMsXgVXv3BLzUgSXRplE";

/** ElevenLabs' `POST /v1/text-to-speech/{voice_id}`, with its error bodies. */
function fakeElevenLabs(): Promise<FakeSpeech> {
  const detail = (status: number, s: string, message: string) =>
    Response.json({ detail: { status: s, message } }, { status });
  return serveFake((c) => {
    const m = /^\/v1\/text-to-speech\/([^/]+)$/.exec(c.path);
    if (c.method !== "POST" || !m) return Response.json({ detail: "Not Found" }, { status: 404 });
    if (c.headers["xi-api-key"] !== ELEVEN_KEY) {
      return detail(401, "invalid_api_key", "Invalid API key");
    }
    if (![ELEVEN_VOICE, "21m00Tcm4TlvDq8Ikcwm"].includes(decodeURIComponent(m[1]!))) {
      return detail(
        404,
        "voice_not_found",
        `A voice with the voice_id ${decodeURIComponent(m[1]!)} was not found.`,
      );
    }
    if (typeof c.body.text !== "string" || !c.body.text) {
      return Response.json({
        detail: [{ loc: ["body", "text"], msg: "field required", type: "value_error.missing" }],
      }, { status: 422 });
    }
    const format = c.query.output_format ?? "mp3_44100_128";
    if (format.startsWith("opus_")) {
      return new Response(fakeOgg(), { headers: { "content-type": "audio/ogg" } });
    }
    if (!format.startsWith("mp3_")) return detail(400, "invalid_output_format", format);
    return new Response(fakeMp3(), { headers: { "content-type": "audio/mpeg" } });
  });
}

// ---- tests --------------------------------------------------------------------------------

Deno.test("tts.status and tts.providers list the providers and never a key", async () => {
  await using gw = await startTestGateway({
    config: { tts: { openai: { apiKey: OPENAI_KEY } } },
  });
  const c = await connected(gw.url, { scopes: ["operator.read"] });
  const s = await ok(c, "tts.status");
  assert.equal(s.enabled, false);
  assert.equal(s.auto, "off");
  assert.equal(s.provider, "openai", "a key in the tts section makes its provider the active one");
  assert.equal(s.hasOpenAIKey, true);
  assert.equal(s.espeakAvailable, HAS_ESPEAK);
  assert.deepEqual(s.providerStates.map((p: AnyFrame) => p.id), [
    "openai",
    "elevenlabs",
    "espeak-ng",
  ]);
  assert.equal(s.providerStates.find((p: AnyFrame) => p.id === "espeak-ng").configured, HAS_ESPEAK);
  assert.equal(s.maxTextLength, 4000);
  const p = await ok(c, "tts.providers");
  assert.equal(p.active, "openai");
  const openai = p.providers.find((x: AnyFrame) => x.id === "openai");
  assert.equal(openai.name, "OpenAI");
  assert.equal(openai.configured, true);
  assert.ok(openai.models.includes("gpt-4o-mini-tts"));
  assert.ok(openai.voices.includes("alloy"));
  const espeak = p.providers.find((x: AnyFrame) => x.id === "espeak-ng");
  if (HAS_ESPEAK) assert.ok(espeak.voices.includes("en-us"), JSON.stringify(espeak.voices));
  for (const payload of [s, p]) {
    assert.ok(!JSON.stringify(payload).includes(OPENAI_KEY), "the key is never shown");
  }
  // Writes need operator.write.
  const denied = await err(c, "tts.enable", {});
  assert.equal(denied.code, "FORBIDDEN");
  await c.close();
});

Deno.test({
  name: espeakName("espeak-ng: tts.convert makes real WAV audio; text is never an option"),
  ignore: !HAS_ESPEAK,
  fn: async () => {
    await using gw = await startTestGateway();
    const c = await connected(gw.url, { scopes: ["operator.write"] });
    const r = await ok(c, "tts.convert", {
      text: "Hello from the gateway.",
      provider: "espeak-ng",
    });
    assert.equal(r.provider, "espeak-ng");
    assert.equal(r.mimeType, "audio/wav");
    assert.equal(r.outputFormat, "wav");
    assert.equal(r.fileExtension, ".wav");
    const wav = parseWav(b64(r.audioBase64));
    assert.equal(wav.format, 1, "PCM");
    assert.equal(wav.channels, 1);
    assert.ok(wav.sampleRate >= 8000 && wav.sampleRate <= 48000, `sample rate ${wav.sampleRate}`);
    assert.equal(wav.bitsPerSample, 16);
    const seconds = wav.dataBytes / (wav.sampleRate * 2);
    assert.ok(seconds > 0.5 && seconds < 10, `${seconds} s of speech`);
    assert.ok(wav.peak > 1000, `audible samples (peak ${wav.peak})`);

    // Text that would be options or a shell's business on a command line is just spoken.
    const hostile = await ok(c, "tts.convert", {
      text: "--version -v xx; $(touch /tmp/gw-tts-pwned) `id` --stdout",
      provider: "espeak-ng",
    });
    const w2 = parseWav(b64(hostile.audioBase64));
    assert.ok(w2.dataBytes / (w2.sampleRate * 2) > 1, "the whole text was read aloud");
    await assert.rejects(Deno.stat("/tmp/gw-tts-pwned"));

    // Another voice, and one espeak-ng does not have.
    const de = await ok(c, "tts.convert", { text: "Guten Tag", provider: "espeak", voice: "de" });
    assert.equal(parseWav(b64(de.audioBase64)).format, 1);
    const e = await err(c, "tts.convert", {
      text: "hi",
      provider: "espeak-ng",
      voiceId: "zz-none",
    });
    assert.equal(e.code, "INVALID_REQUEST");
    assert.match(e.message, /^params\.voiceId: espeak-ng has no voice "zz-none"/);
    const e2 = await err(c, "tts.convert", { text: "hi", provider: "espeak-ng", voice: "-x" });
    assert.equal(e2.code, "INVALID_REQUEST");
    assert.match(e2.message, /^params\.voice: /);
    const e3 = await err(c, "tts.convert", { text: "hi", provider: "espeak-ng", format: "mp3" });
    assert.equal(e3.code, "INVALID_REQUEST");
    assert.match(e3.message, /^params\.format: espeak-ng makes wav only/);
    await c.close();
  },
});

Deno.test("openai: tts.convert posts the real request and returns the audio", async () => {
  await using api = await fakeOpenAI();
  // A base URL with /v1 (as models.providers has it) works too.
  await using gw = await startTestGateway({
    config: { tts: { openai: { apiKey: OPENAI_KEY, baseUrl: `${api.url}/v1` } } },
  });
  const c = await connected(gw.url, { scopes: ["operator.write"] });
  const r = await ok(c, "tts.convert", { text: "Hello, world.", provider: "openai" });
  assert.deepEqual(
    { path: api.calls[0]!.path, method: api.calls[0]!.method },
    { path: "/v1/audio/speech", method: "POST" },
  );
  assert.equal(api.calls[0]!.headers.authorization, `Bearer ${OPENAI_KEY}`);
  assert.deepEqual(api.calls[0]!.body, {
    model: "gpt-4o-mini-tts",
    input: "Hello, world.",
    voice: "alloy",
    response_format: "mp3",
  });
  assert.deepEqual(
    { provider: r.provider, mimeType: r.mimeType, fmt: r.outputFormat, ext: r.fileExtension },
    { provider: "openai", mimeType: "audio/mpeg", fmt: "mp3", ext: ".mp3" },
  );
  assert.deepEqual(b64(r.audioBase64), fakeMp3());

  // Voice, model and format from params; a chat channel asks for a voice note (Ogg Opus).
  const r2 = await ok(c, "tts.convert", {
    text: "Voice note",
    voiceId: "nova",
    modelId: "tts-1",
    channel: "telegram",
  });
  assert.deepEqual(api.calls[1]!.body, {
    model: "tts-1",
    input: "Voice note",
    voice: "nova",
    response_format: "opus",
  });
  assert.equal(r2.mimeType, "audio/ogg");
  assert.equal(r2.outputFormat, "opus");
  assert.deepEqual(b64(r2.audioBase64).subarray(0, 4), new TextEncoder().encode("OggS"));

  // A voice the API refuses: its message, as INVALID_REQUEST.
  const e = await err(c, "tts.convert", { text: "x", provider: "openai", voice: "nobody" });
  assert.equal(e.code, "INVALID_REQUEST");
  assert.match(e.message, /OpenAI refused the request \(HTTP 400\): Invalid value for 'voice'/);
  assert.equal(e.details.code, "TTS_REJECTED");
  await c.close();
});

Deno.test("elevenlabs: tts.convert posts the real request and returns the audio", async () => {
  await using api = await fakeElevenLabs();
  await using gw = await startTestGateway({
    config: { tts: { elevenlabs: { apiKey: ELEVEN_KEY, baseUrl: api.url } } },
  });
  const c = await connected(gw.url, { scopes: ["operator.write"] });
  const r = await ok(c, "tts.convert", { text: "Hello there", provider: "elevenlabs" });
  const call = api.calls[0]!;
  assert.equal(call.method, "POST");
  assert.equal(call.path, `/v1/text-to-speech/${ELEVEN_VOICE}`);
  assert.deepEqual(call.query, { output_format: "mp3_44100_128" });
  assert.equal(call.headers["xi-api-key"], ELEVEN_KEY);
  assert.equal(call.headers.authorization, undefined, "the key goes only in xi-api-key");
  assert.deepEqual(call.body, { text: "Hello there", model_id: "eleven_multilingual_v2" });
  assert.deepEqual(
    { provider: r.provider, mimeType: r.mimeType, fmt: r.outputFormat, ext: r.fileExtension },
    { provider: "elevenlabs", mimeType: "audio/mpeg", fmt: "mp3_44100_128", ext: ".mp3" },
  );
  assert.deepEqual(b64(r.audioBase64), fakeMp3());

  const r2 = await ok(c, "tts.convert", {
    text: "x",
    provider: "elevenlabs",
    voiceId: "21m00Tcm4TlvDq8Ikcwm",
    format: "opus",
  });
  assert.equal(api.calls[1]!.path, "/v1/text-to-speech/21m00Tcm4TlvDq8Ikcwm");
  assert.deepEqual(api.calls[1]!.query, { output_format: "opus_48000_64" });
  assert.equal(r2.mimeType, "audio/ogg");

  const e = await err(c, "tts.convert", { text: "x", provider: "elevenlabs", voiceId: "Nobody1" });
  assert.equal(e.code, "INVALID_REQUEST");
  assert.match(e.message, /ElevenLabs refused the request \(HTTP 404\): A voice with the voice_id/);
  const bad = await err(c, "tts.convert", { text: "x", provider: "elevenlabs", voiceId: "../x" });
  assert.equal(bad.code, "INVALID_REQUEST");
  assert.match(bad.message, /^params\.voiceId: /);
  assert.equal(api.calls.length, 3, "a voice id that is not a plain id never reaches the API");
  const fmt = await err(c, "tts.convert", { text: "x", provider: "elevenlabs", format: "flac" });
  assert.match(fmt.message, /^params\.format: elevenlabs makes mp3, opus or pcm/);
  await c.close();
});

Deno.test("tts errors: a rejected key, provider trouble, too much text or audio, bad params", async (t) => {
  await using openai = await fakeOpenAI();
  await using eleven = await fakeElevenLabs();
  const wrongKey = "sk-wrong-key-abcdefghijk";
  await using gw = await startTestGateway({
    config: {
      tts: {
        maxAudioBytes: 16 * 1024,
        openai: { apiKey: wrongKey, baseUrl: openai.url },
        elevenlabs: { apiKey: ELEVEN_KEY, baseUrl: eleven.url },
      },
    },
  });
  const c = await connected(gw.url, { scopes: ["operator.write"] });

  await t.step("401 from the provider: UNAVAILABLE saying so, without the key", async () => {
    const e = await err(c, "tts.convert", { text: "hi", provider: "openai" });
    assert.equal(e.code, "UNAVAILABLE");
    assert.match(e.message, /OpenAI rejected the API key \(HTTP 401\)/);
    assert.deepEqual(e.details, { code: "TTS_AUTH", provider: "openai", status: 401 });
    assert.equal(e.retryable, false);
    assert.ok(!JSON.stringify(e).includes(wrongKey.slice(-4)), "not even the key's tail");
    assert.equal(openai.calls[0]!.headers.authorization, `Bearer ${wrongKey}`);
  });

  await t.step("429 and 5xx: UNAVAILABLE, retryable", async () => {
    eleven.next({ status: 429, body: '{"detail":{"status":"too_many_concurrent_requests"}}' });
    const e = await err(c, "tts.convert", { text: "hi", provider: "elevenlabs" });
    assert.equal(e.code, "UNAVAILABLE");
    assert.equal(e.retryable, true);
    assert.equal(e.details.code, "TTS_RATE_LIMITED");
    eleven.next({ status: 503, body: "<html>down</html>", type: "text/html" });
    const e2 = await err(c, "tts.convert", { text: "hi", provider: "elevenlabs" });
    assert.equal(e2.code, "UNAVAILABLE");
    assert.match(e2.message, /ElevenLabs is unavailable \(HTTP 503\)$/);
  });

  await t.step("audio over tts.maxAudioBytes: an error, not the audio", async () => {
    eleven.next({ status: 200, body: new Uint8Array(20 * 1024), type: "audio/mpeg" });
    const e = await err(c, "tts.convert", { text: "hi", provider: "elevenlabs" });
    assert.equal(e.code, "INVALID_REQUEST");
    assert.match(e.message, /^params\.text: the audio would be larger than 0\.02 MB/);
    assert.equal(e.details.code, "TTS_AUDIO_TOO_LARGE");
  });

  await t.step("too much text: INVALID_REQUEST naming params.text", async () => {
    const e = await err(c, "tts.convert", { text: "a".repeat(4001), provider: "elevenlabs" });
    assert.equal(e.code, "INVALID_REQUEST");
    assert.match(e.message, /^invalid tts\.convert params: params\.text: /);
    const empty = await err(c, "tts.convert", { text: "   " });
    assert.match(empty.message, /params\.text/);
    const calls = eleven.calls.length;
    const admin = await connected(gw.url);
    await ok(admin, "config.patch", {
      patch: { tts: { maxTextLength: 10 } },
      baseHash: (await ok(admin, "config.get")).hash,
    });
    await admin.close();
    const e2 = await err(c, "tts.convert", { text: "eleven char", provider: "elevenlabs" });
    assert.equal(e2.code, "INVALID_REQUEST");
    assert.match(e2.message, /^params\.text: longer than 10 characters \(tts\.maxTextLength\)/);
    assert.equal(eleven.calls.length, calls, "nothing was sent");
  });

  await t.step("unknown provider, unknown field, wrong types", async () => {
    const e = await err(c, "tts.convert", { text: "hi", provider: "polly" });
    assert.match(e.message, /^params\.provider: unknown TTS provider "polly"/);
    const e2 = await err(c, "tts.setProvider", { provider: "polly" });
    assert.equal(e2.code, "INVALID_REQUEST");
    assert.match(e2.message, /^params\.provider: /);
    const e3 = await err(c, "tts.convert", { text: "hi", speed: 2 });
    assert.match(e3.message, /unexpected field 'speed'/);
    const e4 = await err(c, "tts.convert", { text: "hi", format: "ogg" });
    assert.match(e4.message, /params\.format: expected one of/);
  });

  await t.step("a provider without a key, and one that cannot be reached", async () => {
    await using bare = await startTestGateway({
      config: { tts: { openai: { baseUrl: "http://127.0.0.1:9" } } },
    });
    const b = await connected(bare.url);
    if (!Deno.env.get("ELEVENLABS_API_KEY")) {
      const e = await err(b, "tts.convert", { text: "hi", provider: "elevenlabs" });
      assert.equal(e.code, "UNAVAILABLE");
      assert.match(e.message, /ElevenLabs TTS has no API key: set tts\.elevenlabs\.apiKey/);
      assert.equal(e.details.code, "TTS_NOT_CONFIGURED");
    }
    if (!HAS_ESPEAK) {
      const e = await err(b, "tts.convert", { text: "hi", provider: "espeak-ng" });
      assert.equal(e.code, "UNAVAILABLE");
      assert.match(e.message, /^espeak-ng is not installed/);
      assert.equal(e.details.code, "TTS_NOT_INSTALLED");
      if (!Deno.env.get("OPENAI_API_KEY") && !Deno.env.get("ELEVENLABS_API_KEY")) {
        assert.equal((await ok(b, "tts.status")).provider, "");
        const none = await err(b, "tts.convert", { text: "hi" });
        assert.equal(none.details.code, "TTS_NOT_CONFIGURED");
      }
    }
    await ok(b, "config.patch", {
      patch: { tts: { openai: { apiKey: OPENAI_KEY } } },
      baseHash: (await ok(b, "config.get")).hash,
    });
    const e2 = await err(b, "tts.convert", { text: "hi", provider: "openai" });
    assert.equal(e2.code, "UNAVAILABLE");
    assert.match(e2.message, /^cannot reach OpenAI at 127\.0\.0\.1:9/);
    assert.equal(e2.retryable, true);
    await b.close();
  });
  await c.close();
});

Deno.test("tts.enable, tts.disable and tts.setProvider persist across a restart", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-tts-" });
  try {
    {
      await using gw = await startTestGateway({ stateDir });
      const c = await connected(gw.url, { scopes: ["operator.write"] });
      assert.equal((await ok(c, "tts.status")).enabled, false);
      assert.deepEqual(await ok(c, "tts.enable", {}), { enabled: true });
      assert.deepEqual(await ok(c, "tts.setProvider", { provider: "ElevenLabs" }), {
        provider: "elevenlabs",
      });
      const e = await err(c, "tts.enable", { on: true });
      assert.match(e.message, /unexpected field 'on'/);
      await c.close();
    }
    {
      await using gw = await startTestGateway({ stateDir });
      const c = await connected(gw.url, { scopes: ["operator.write"] });
      const s = await ok(c, "tts.status");
      assert.equal(s.enabled, true);
      assert.equal(s.auto, "always");
      assert.equal(s.provider, "elevenlabs");
      assert.equal((await ok(c, "tts.providers")).active, "elevenlabs");
      assert.deepEqual(await ok(c, "tts.disable", {}), { enabled: false });
      await ok(c, "tts.setProvider", { provider: "espeak" });
      await c.close();
    }
    {
      // The store wins over gw.json's tts.enabled and tts.provider once set.
      await Deno.writeTextFile(
        `${stateDir}/gw.json`,
        JSON.stringify({ tts: { enabled: true, provider: "openai" } }),
      );
      await using gw = await startTestGateway({ stateDir });
      const c = await connected(gw.url, { scopes: ["operator.read"] });
      const s = await ok(c, "tts.status");
      assert.equal(s.enabled, false);
      assert.equal(s.provider, "espeak-ng");
      await c.close();
    }
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});

// ---- Telegram: spoken replies -------------------------------------------------------------

const TOKEN = "424242:AAtts-test-token-abcdefghijk";
const USER = 5005;

interface Chat extends AsyncDisposable {
  tg: TelegramApi;
  fake: FakeAnthropic;
  t: TestGateway;
  c: RawClient;
}

async function telegramChat(tts: Record<string, unknown>): Promise<Chat> {
  const tg = await TelegramApi.start({ tokens: [TOKEN] });
  const fake = await startFakeAnthropic({ apiKey: "k-test" });
  const t = await startTestGateway({
    config: {
      agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
      models: { providers: { anthropic: { apiKey: "k-test", baseUrl: fake.url } } },
      channels: {
        telegram: { botToken: TOKEN, apiRoot: tg.apiRoot, allowFrom: [USER], streaming: "off" },
      },
      tts,
    },
  });
  const c = await connected(t.url);
  await until(async () => {
    const s = await ok(c, "channels.status", {});
    return s.channelAccounts.telegram?.[0]?.connected;
  }, "the bot to connect");
  return {
    tg,
    fake,
    t,
    c,
    async [Symbol.asyncDispose]() {
      await c.close();
      await t.stop();
      await fake.close();
      await tg.close();
    },
  };
}

/** Say `text` and wait for the bot's text reply (the model answers `reply`). */
async function exchange(chat: Chat, text: string, reply: string): Promise<void> {
  const texts = () => chat.tg.botMessages(TOKEN, USER).filter((m) => m.kind === "text").length;
  const before = texts();
  chat.fake.script({ blocks: [{ type: "text", text: reply }] });
  await chat.tg.userSays(TOKEN, text, { chatId: USER, userId: USER });
  await until(() => texts() > before, `the reply to "${text}"`);
}

const audioCalls = (
  chat: Chat,
) => [...chat.tg.callsOf("sendVoice", TOKEN), ...chat.tg.callsOf("sendAudio", TOKEN)];

Deno.test({
  name: espeakName("telegram: with tts on a reply also comes as audio (espeak-ng WAV); off, none"),
  ignore: !HAS_ESPEAK,
  fn: async () => {
    await using chat = await telegramChat({ provider: "espeak-ng" });
    await exchange(chat, "first", "Text only while speech is off.");
    await ok(chat.c, "tts.enable", {});
    await exchange(chat, "second", "Hello **there**, spoken.");
    const call = await chat.tg.waitForCall((c) => c.method === "sendAudio", 15_000);
    await until(() => call.status !== undefined, "the upload's answer");
    assert.equal(call.status, 200, "Telegram took the upload");
    assert.equal(Number(call.params.chat_id), USER);
    assert.equal((call.params.audio as AnyFrame).filename, "reply.wav");
    const msg = chat.tg.botMessages(TOKEN, USER).find((m) => m.message_id > 0 && m.fileId);
    assert.ok(msg?.fileId, "the audio is in the chat");
    // Telegram keeps a WAV sent as audio as a file (a document); the bytes are the WAV.
    assert.equal(msg.kind, "document");
    const wav = parseWav(chat.tg.uploadedFile(msg.fileId)!);
    assert.ok(wav.dataBytes > 0 && wav.peak > 1000);
    const spoken = wav.dataBytes / (wav.sampleRate * 2);
    assert.ok(spoken > 0.8, `about the reply's length (${spoken} s)`);
    assert.equal(audioCalls(chat).length, 1);

    await ok(chat.c, "tts.disable", {});
    await exchange(chat, "third", "Text only again.");
    // The audio would follow the text within a few hundred ms; give it more than that.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(audioCalls(chat).length, 1, "no audio once tts is off");
  },
});

Deno.test("telegram: OpenAI replies arrive as voice notes (Ogg Opus through sendVoice)", async () => {
  await using api = await fakeOpenAI();
  await using chat = await telegramChat({
    enabled: true,
    provider: "openai",
    openai: { apiKey: OPENAI_KEY, baseUrl: api.url, voice: "nova" },
  });
  await exchange(chat, "talk to me", "## Sure\n\nHere is [the link](https://example.com) `now`.");
  const call = await chat.tg.waitForCall((c) => c.method === "sendVoice", 15_000);
  await until(() => call.status !== undefined, "the upload's answer");
  assert.equal(call.status, 200);
  assert.deepEqual(api.calls[0]!.body, {
    model: "gpt-4o-mini-tts",
    input: "Sure Here is the link now.",
    voice: "nova",
    response_format: "opus",
  });
  const voice = chat.tg.botMessages(TOKEN, USER).find((m) => m.kind === "voice");
  assert.ok(voice?.fileId, "a voice message is in the chat");
  assert.deepEqual(chat.tg.uploadedFile(voice.fileId), fakeOgg());
  assert.equal((voice.message.voice as AnyFrame).mime_type, "audio/ogg");
  assert.equal(audioCalls(chat).length, 1);

  // A provider failure leaves the text reply alone and sends no audio.
  api.next({ status: 500, body: '{"error":{"message":"boom"}}' });
  await exchange(chat, "again", "Still here.");
  await until(() => api.calls.length === 2, "the second speech request");
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(audioCalls(chat).length, 1);
});

Deno.test("Bot API server for tests: sendVoice and sendAudio keep what Telegram plays, else a document", async () => {
  await using tg = await TelegramApi.start({ tokens: [TOKEN] });
  const api = new Api(TOKEN, { apiRoot: tg.apiRoot });
  const v = await api.sendVoice(77, new InputFile(fakeOgg(), "reply.ogg"), { duration: 3 });
  assert.equal(v.voice?.duration, 3);
  assert.equal(v.voice?.mime_type, "audio/ogg");
  const a = await api.sendAudio(77, new InputFile(fakeMp3(), "song.mp3"));
  assert.equal(a.audio?.file_name, "song.mp3");
  assert.equal(a.audio?.mime_type, "audio/mpeg");
  const w = await api.sendAudio(77, new InputFile(new Uint8Array(100), "reply.wav"));
  // grammY types the answer as an audio message; Telegram answers a document for a WAV.
  const wm = w as unknown as { audio?: unknown; document?: { file_name?: string } };
  assert.equal(wm.audio, undefined);
  assert.equal(wm.document?.file_name, "reply.wav");
  assert.deepEqual(
    tg.botMessages(TOKEN, 77).map((m) => m.kind),
    ["voice", "audio", "document"],
  );
  assert.deepEqual(tg.uploadedFile(v.voice!.file_id), fakeOgg());
  const f = await api.getFile(v.voice!.file_id);
  assert.match(f.file_path ?? "", /^voice\/file_\d+\.ogg$/);
});
