/**
 * eSpeak NG, local and offline: `espeak-ng --stdout -b 1 -v <voice>` with the
 * text on stdin (never in argv, so no text is ever read as an option), WAV on
 * stdout. No shell, an empty environment, a timeout, and the output capped.
 *
 * @module
 */
import {
  AUDIO_TYPES,
  fixWavSizes,
  readStreamCapped,
  type SpeechAudio,
  type SpeechRequest,
  unavailable,
} from "./audio.ts";

/** How long a found (or missing) binary is remembered. */
const FIND_TTL_MS = 30_000;
let found: { at: number; path: string | null } | undefined;

/** The espeak-ng binary on PATH, or null; looked up at most every 30 s. */
export async function findEspeak(now: number = Date.now()): Promise<string | null> {
  if (found && now - found.at < FIND_TTL_MS) return found.path;
  found = { at: now, path: await lookPath("espeak-ng") };
  return found.path;
}

async function lookPath(name: string): Promise<string | null> {
  let path: string | undefined;
  try {
    path = Deno.env.get("PATH");
  } catch {
    return null; // no env permission: as if unset
  }
  const windows = Deno.build.os === "windows";
  const names = windows ? [`${name}.exe`] : [name];
  for (const dir of (path ?? "").split(windows ? ";" : ":")) {
    if (!dir) continue;
    for (const n of names) {
      const full = `${dir.replace(/[\\/]+$/, "")}/${n}`;
      try {
        const st = await Deno.stat(full);
        if (st.isFile && (windows || ((st.mode ?? 0) & 0o111) !== 0)) return full;
      } catch { /* not here */ }
    }
  }
  return null;
}

/** Convert with espeak-ng: WAV (22,050 Hz, 16-bit, mono) only. */
export async function espeakSpeech(req: SpeechRequest): Promise<SpeechAudio> {
  const bin = await findEspeak();
  if (!bin) {
    throw unavailable("espeak-ng", "espeak-ng is not installed (apt-get install espeak-ng)", {
      code: "TTS_NOT_INSTALLED",
    });
  }
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(bin, {
      args: ["--stdout", "-b", "1", "-v", req.voice],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      signal: req.signal,
    }).spawn();
  } catch (e) {
    throw unavailable("espeak-ng", `cannot run espeak-ng: ${(e as Error).message}`, {
      code: "TTS_NOT_INSTALLED",
      cause: e,
    });
  }
  const write = (async () => {
    const w = child.stdin.getWriter();
    try {
      await w.write(new TextEncoder().encode(req.text));
      await w.close();
    } catch { /* the process ended early: its status says why */ }
  })();
  const stderr = readStreamCapped(child.stderr, 16 * 1024).catch(() => new Uint8Array());
  let bytes: Uint8Array;
  try {
    bytes = await readStreamCapped(child.stdout, req.maxBytes);
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await Promise.allSettled([child.status, write, stderr]);
    if (req.signal.aborted) throw timedOut(e);
    throw e;
  }
  const [status, , err] = await Promise.all([child.status, write, stderr]);
  if (req.signal.aborted) throw timedOut();
  if (!status.success || bytes.length <= 44) {
    const why = new TextDecoder().decode(err).trim().split("\n")[0]?.slice(0, 200) ||
      `exit code ${status.code}`;
    throw unavailable("espeak-ng", `espeak-ng failed: ${why}`, { code: "TTS_PROVIDER_ERROR" });
  }
  return {
    bytes: fixWavSizes(bytes),
    provider: "espeak-ng",
    outputFormat: "wav",
    ...AUDIO_TYPES.wav,
  };
}

function timedOut(cause?: unknown) {
  return unavailable("espeak-ng", "espeak-ng did not finish the audio in time (tts.timeoutMs)", {
    code: "TTS_TIMEOUT",
    retryable: true,
    ...(cause !== undefined ? { cause } : {}),
  });
}
