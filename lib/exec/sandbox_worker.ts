/**
 * The sandbox worker: the only gw code that spawns an approved command.
 *
 * {@link runSandboxed} (lib/exec/sandbox.ts) starts this module as a Deno
 * Worker whose permissions are `run: [binary]` and nothing else (see
 * `sandboxPermissions`), posts it one `start` message, and may post an `abort`.
 * The worker spawns the command with exactly the given args, cwd and env
 * (`clearEnv: true`), streams its output back, kills it on timeout or abort
 * (SIGTERM, then SIGKILL after a grace period), and reports the exit. One
 * worker runs one command; a second `start` is ignored.
 *
 * This module imports nothing: the worker has no read or import permission of
 * its own, and the less code runs with `run`, the better.
 *
 * @module
 */

/** Main thread → worker: run this command (sent once). */
interface StartMessage {
  type: "start";
  /** Absolute path; the worker's only run permission. */
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  /** Cap per stream, in bytes. */
  maxOutputBytes: number;
  /** Between SIGTERM and SIGKILL. */
  killGraceMs: number;
  /** How long to wait for the pipes to close after the process exited. */
  drainGraceMs: number;
}

/** Worker → main thread. */
type OutMessage =
  | { type: "spawned"; pid: number }
  | { type: "chunk"; stream: "stdout" | "stderr"; data: string }
  | {
    type: "exit";
    code: number;
    signal: string | null;
    timedOut: boolean;
    aborted: boolean;
    truncated: boolean;
  }
  | { type: "error"; name: string; message: string };

/** The part of the worker global scope used here (the project's lib is deno.window). */
interface _WorkerScope {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(message: OutMessage): void;
}

const scope = self as unknown as _WorkerScope;
const post = (m: OutMessage): void => scope.postMessage(m);

let started = false;
let requestKill: ((reason: "timeout" | "abort") => void) | null = null;

scope.onmessage = (e: MessageEvent) => {
  const msg = e.data as { type?: unknown } | null;
  if (msg?.type === "start" && !started) {
    started = true;
    _run(msg as StartMessage).catch((err: unknown) => {
      const error = err instanceof Error ? err : new Error(String(err));
      post({ type: "error", name: error.name, message: error.message });
    });
  } else if (msg?.type === "abort") {
    // Messages arrive in order and the spawn is synchronous, so an abort is
    // never early; after the exit there is nothing left to kill.
    requestKill?.("abort");
  }
};

async function _run(m: StartMessage): Promise<void> {
  const child = new Deno.Command(m.command, {
    args: m.args,
    cwd: m.cwd,
    env: m.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    // Own process group, so the main thread can reap the whole tree on a kill.
    detached: true,
  }).spawn();
  post({ type: "spawned", pid: child.pid });

  let timedOut = false;
  let aborted = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const kill = (reason: "timeout" | "abort"): void => {
    if (timedOut || aborted) return;
    if (reason === "timeout") timedOut = true;
    else aborted = true;
    _signal(child, "SIGTERM");
    killTimer = setTimeout(() => _signal(child, "SIGKILL"), m.killGraceMs);
  };
  requestKill = kill;
  const timeoutTimer = setTimeout(() => kill("timeout"), m.timeoutMs);

  const pumps = [
    _pump(child.stdout, "stdout", m.maxOutputBytes),
    _pump(child.stderr, "stderr", m.maxOutputBytes),
  ];
  const status = await child.status;
  requestKill = null;
  clearTimeout(timeoutTimer);
  clearTimeout(killTimer);

  // A grandchild that inherited the pipes can keep them open after the
  // process itself is gone: drain for a short while, then stop reading.
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const drained = await Promise.race([
    Promise.all(pumps.map((p) => p.done)).then(() => true),
    new Promise<false>((resolve) => {
      graceTimer = setTimeout(() => resolve(false), m.drainGraceMs);
    }),
  ]);
  clearTimeout(graceTimer);
  if (!drained) {
    for (const p of pumps) p.cancel();
    await Promise.all(pumps.map((p) => p.done));
  }

  post({
    type: "exit",
    code: status.code,
    signal: status.signal,
    timedOut,
    aborted,
    truncated: pumps.some((p) => p.truncated()),
  });
}

function _signal(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // Already exited.
  }
}

interface _Pump {
  done: Promise<void>;
  cancel(): void;
  truncated(): boolean;
}

/**
 * Forward `stream` as text chunks until `max` bytes have gone, then keep
 * reading (so the child never blocks on a full pipe) but forward nothing more.
 */
function _pump(
  stream: ReadableStream<Uint8Array>,
  name: "stdout" | "stderr",
  max: number,
): _Pump {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let sent = 0;
  let truncated = false;
  const forward = (bytes: Uint8Array): void => {
    const data = decoder.decode(bytes, { stream: true });
    if (data) post({ type: "chunk", stream: name, data });
  };
  const done = (async () => {
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        if (truncated) continue;
        const room = max - sent;
        if (value.byteLength <= room) {
          sent += value.byteLength;
          forward(value);
        } else {
          truncated = true;
          sent = max;
          // A character cut in half at the cap is dropped (the decoder is never flushed).
          forward(value.subarray(0, room));
        }
      }
    } catch {
      // Cancelled after the drain grace, or the pipe broke: what was read stands.
    }
    if (!truncated) {
      const tail = decoder.decode();
      if (tail) post({ type: "chunk", stream: name, data: tail });
    }
  })();
  return {
    done,
    cancel: () => void reader.cancel().catch(() => {}),
    truncated: () => truncated,
  };
}
