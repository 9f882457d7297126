/**
 * The sandbox that runs ONE approved command.
 *
 * {@link runSandboxed} spawns the command from a Deno Worker
 * (lib/exec/sandbox_worker.ts) whose permissions are narrowed to
 * `run: [binary]` with read, write, net, env, ffi, sys and import all revoked
 * ({@link sandboxPermissions}). The main thread only passes the args, cwd, env
 * and limits, collects the output and enforces a last-resort deadline.
 *
 * What this protects: gw's own code cannot be tricked into spawning another
 * binary. Whatever reaches the worker (a bug, a confused argument, injected
 * data), Deno's permission system, below our code, refuses any other program
 * with `NotCapable`; the worker also cannot read or write files, open sockets or
 * read gw's environment. Deno additionally refuses `LD_PRELOAD` and similar
 * loader variables in `env` when the run permission is narrowed. The command
 * gets exactly `env` (`clearEnv: true`), no stdin, and its output is capped.
 * It runs in its own process group, and that group gets SIGKILL when the run
 * ends, so helpers it started do not outlive it (unless they left the group,
 * e.g. with `setsid`).
 *
 * What it does NOT protect: the child process itself runs with the user's full
 * OS rights. Deno does not sandbox it: the approved binary can read and write
 * any file the user can, use the network and start other programs (a shell
 * binary can run anything). Approval of the exact command is the real control.
 * With `bwrap: true` and bubblewrap installed at `/usr/bin/bwrap`, the command
 * runs in a bwrap namespace: the whole file system read-only, a private `/tmp`,
 * no network, killed when gw dies. It is still the same user, `/dev` and
 * `/proc` are visible, and bwrap is not installed everywhere
 * ({@link bwrapAvailable}); asking for it where it is missing is an error, never
 * a silent fallback.
 *
 * Needs `--unstable-worker-options` (`"unstable": ["worker-options"]` in
 * deno.json: without it Deno exits the whole process when the worker is
 * created) and a `run` permission in the parent covering the binary (for gw,
 * `"run": true`, since approved binaries are not known in advance).
 *
 * @module
 */

/** Where bubblewrap is looked for. */
export const BWRAP_PATH = "/usr/bin/bwrap";

/** Time between SIGTERM and SIGKILL on timeout or abort. */
const KILL_GRACE_MS = 2_000;
/** After the process exits, how long its pipes may stay open (held by a grandchild). */
const DRAIN_GRACE_MS = 500;
/** Beyond timeout + kill grace + drain grace, when the main thread gives up on the worker. */
const WORKER_SLACK_MS = 3_000;

/** Options for {@link runSandboxed}. */
export interface SandboxOptions {
  /** Absolute, resolved path of the binary to run. */
  binary: string;
  /** Arguments, passed as they are (no shell). */
  args: string[];
  /** Working directory (absolute). */
  cwd: string;
  /** The command's whole environment (nothing is inherited from gw). */
  env: Record<string, string>;
  /** Kill the command (SIGTERM, SIGKILL 2 s later) after this many milliseconds. */
  timeoutMs: number;
  /** Most bytes kept and forwarded per stream; the rest is read and dropped. */
  maxOutputBytes: number;
  /** Called with each chunk of output as it arrives, before the result. */
  onOutput?: (stream: "stdout" | "stderr", chunk: string) => void;
  /** Aborting kills the command like a timeout does. */
  signal?: AbortSignal;
  /** Run under bubblewrap (error when it is not installed). Default: false. */
  bwrap?: boolean;
}

/** What {@link runSandboxed} reports. */
export interface SandboxResult {
  /** Exit code, or null when the process died of a signal. */
  code: number | null;
  /** The signal that ended the process (`SIGTERM`, `SIGKILL`...), or null. */
  signal: string | null;
  /** Standard output, at most `maxOutputBytes` bytes of it. */
  stdout: string;
  /** Standard error, at most `maxOutputBytes` bytes of it. */
  stderr: string;
  /** Whether either stream was cut at `maxOutputBytes`. */
  truncated: boolean;
  /** Whether the timeout killed the command. */
  timedOut: boolean;
  /** Whether `signal` killed the command (or aborted it before it started). */
  aborted: boolean;
  /** Wall time of the whole run. */
  durationMs: number;
  /** Which layers were used. */
  sandbox: "worker" | "worker+bwrap";
}

/** The sandbox could not run the command (bad options, missing bwrap, spawn failure). */
export class SandboxError extends Error {
  /** Create one; `cause` is the underlying error, if any. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SandboxError";
  }
}

/**
 * The permissions of the worker that spawns `runPath`: run that one binary,
 * nothing else. The production worker and the tests use this same object.
 *
 * `cwd` needs no read permission: Deno.Command sets the child's working
 * directory without a permission check (verified on Deno 2.9.6).
 *
 * @example
 * ```ts
 * const p = sandboxPermissions("/usr/bin/true");
 * // p.run → ["/usr/bin/true"], every other permission false
 * ```
 */
export function sandboxPermissions(runPath: string): Deno.PermissionOptionsObject {
  return {
    run: [runPath],
    read: false,
    write: false,
    net: false,
    env: false,
    ffi: false,
    sys: false,
    import: false,
  };
}

/**
 * Whether bubblewrap is installed at {@link BWRAP_PATH}.
 *
 * @example
 * ```ts
 * const sandbox = bwrapAvailable() ? "worker+bwrap" : "worker";
 * ```
 */
export function bwrapAvailable(): boolean {
  try {
    return Deno.statSync(BWRAP_PATH).isFile;
  } catch {
    return false;
  }
}

/**
 * The bwrap command line that runs `binary args` in `cwd`: the root file
 * system read-only, fresh `/dev`, `/proc` and `/tmp`, no network, killed with
 * its parent.
 *
 * @example
 * ```ts
 * const { command, args } = bwrapCommand("/usr/bin/echo", ["hi"], "/tmp");
 * // command === "/usr/bin/bwrap"; args end with ["--", "/usr/bin/echo", "hi"]
 * ```
 */
export function bwrapCommand(
  binary: string,
  args: string[],
  cwd: string,
): { command: string; args: string[] } {
  return {
    command: BWRAP_PATH,
    args: [
      "--ro-bind",
      "/",
      "/",
      "--dev",
      "/dev",
      "--proc",
      "/proc",
      "--tmpfs",
      "/tmp",
      "--unshare-net",
      "--die-with-parent",
      "--chdir",
      cwd,
      "--",
      binary,
      ...args,
    ],
  };
}

/**
 * Run one approved command in the sandbox and collect its output.
 *
 * Resolves with the exit (including timeouts and aborts); rejects with
 * {@link SandboxError} when the options are invalid, bwrap is asked for but
 * missing, or the command cannot be spawned (not found, refused by Deno).
 * When it resolves, the command's process group has been sent SIGKILL, so
 * nothing it started in that group outlives it.
 *
 * @example
 * ```ts
 * const r = await runSandboxed({
 *   binary: "/usr/bin/echo",
 *   args: ["hello"],
 *   cwd: "/tmp",
 *   env: {},
 *   timeoutMs: 10_000,
 *   maxOutputBytes: 32 * 1024,
 * });
 * // r.code === 0, r.stdout === "hello\n"
 * ```
 */
export async function runSandboxed(opts: SandboxOptions): Promise<SandboxResult> {
  _validate(opts);
  const useBwrap = opts.bwrap === true;
  const sandbox = useBwrap ? "worker+bwrap" : "worker";
  if (useBwrap && !bwrapAvailable()) {
    throw new SandboxError(
      `bwrap is not installed (expected ${BWRAP_PATH}); install bubblewrap or run without the bwrap option`,
    );
  }
  const { command, args } = useBwrap
    ? bwrapCommand(opts.binary, opts.args, opts.cwd)
    : { command: opts.binary, args: opts.args };
  const started = performance.now();
  if (opts.signal?.aborted) {
    return {
      code: null,
      signal: null,
      stdout: "",
      stderr: "",
      truncated: false,
      timedOut: false,
      aborted: true,
      durationMs: 0,
      sandbox,
    };
  }

  let worker: Worker;
  try {
    worker = new Worker(new URL("./sandbox_worker.ts", import.meta.url), {
      type: "module",
      name: "gw-sandbox",
      deno: { permissions: sandboxPermissions(command) },
    });
  } catch (err) {
    throw new SandboxError(
      `cannot start the sandbox worker for ${command}: ${
        err instanceof Error ? err.message : String(err)
      } (gw needs a run permission covering the binary)`,
      { cause: err },
    );
  }

  return await new Promise<SandboxResult>((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    let pid: number | undefined;
    let settled = false;
    let deadline: ReturnType<typeof setTimeout> | undefined;
    const armDeadline = (ms: number): void => {
      clearTimeout(deadline);
      deadline = setTimeout(() => {
        // The worker did not report in time: stop it and kill what it started.
        finish({
          code: null,
          signal: null,
          timedOut: !opts.signal?.aborted,
          aborted: !!opts.signal?.aborted,
          truncated: false,
        });
      }, ms);
    };
    const onAbort = (): void => {
      worker.postMessage({ type: "abort" });
      armDeadline(KILL_GRACE_MS + DRAIN_GRACE_MS + WORKER_SLACK_MS);
    };
    const cleanup = (): void => {
      settled = true;
      clearTimeout(deadline);
      opts.signal?.removeEventListener("abort", onAbort);
      worker.terminate();
      // Reap the command's process group (grandchildren still holding on).
      if (pid !== undefined) {
        try {
          Deno.kill(-pid, "SIGKILL");
        } catch {
          // Group already gone, or no permission to signal it.
        }
      }
    };
    const finish = (
      exit: {
        code: number | null;
        signal: string | null;
        timedOut: boolean;
        aborted: boolean;
        truncated: boolean;
      },
    ): void => {
      if (settled) return;
      cleanup();
      resolve({
        code: exit.signal ? null : exit.code,
        signal: exit.signal,
        stdout,
        stderr,
        truncated: exit.truncated,
        timedOut: exit.timedOut,
        aborted: exit.aborted,
        durationMs: Math.round(performance.now() - started),
        sandbox,
      });
    };
    const fail = (err: SandboxError): void => {
      if (settled) return;
      cleanup();
      reject(err);
    };

    worker.onmessage = (e: MessageEvent) => {
      if (settled) return;
      const m = e.data as _WorkerMessage;
      switch (m.type) {
        case "spawned":
          pid = m.pid;
          break;
        case "chunk":
          if (m.stream === "stdout") stdout += m.data;
          else stderr += m.data;
          try {
            opts.onOutput?.(m.stream, m.data);
          } catch {
            // A listener's failure must not lose the command's exit.
          }
          break;
        case "exit":
          finish(m);
          break;
        case "error": {
          const cause = new Error(m.message);
          cause.name = m.name;
          fail(new SandboxError(`cannot run ${opts.binary}: ${m.message}`, { cause }));
          break;
        }
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      fail(new SandboxError(`the sandbox worker failed: ${e.message}`, { cause: e.error }));
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    armDeadline(opts.timeoutMs + KILL_GRACE_MS + DRAIN_GRACE_MS + WORKER_SLACK_MS);
    worker.postMessage({
      type: "start",
      command,
      args,
      cwd: opts.cwd,
      env: opts.env,
      timeoutMs: opts.timeoutMs,
      maxOutputBytes: opts.maxOutputBytes,
      killGraceMs: KILL_GRACE_MS,
      drainGraceMs: DRAIN_GRACE_MS,
    });
  });
}

/** Worker → main thread (mirrors sandbox_worker.ts). */
type _WorkerMessage =
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

function _validate(opts: SandboxOptions): void {
  const bad = (what: string, got: unknown): never => {
    throw new SandboxError(`${what}, got ${JSON.stringify(got) ?? typeof got}`);
  };
  if (typeof opts.binary !== "string" || !_isAbsolute(opts.binary)) {
    bad("binary: expected an absolute path", opts.binary);
  }
  if (!Array.isArray(opts.args) || !opts.args.every((a) => typeof a === "string")) {
    bad("args: expected an array of strings", opts.args);
  }
  if (typeof opts.cwd !== "string" || !_isAbsolute(opts.cwd)) {
    bad("cwd: expected an absolute path", opts.cwd);
  }
  if (
    typeof opts.env !== "object" || opts.env === null ||
    !Object.values(opts.env).every((v) => typeof v === "string")
  ) {
    bad("env: expected an object of strings", opts.env);
  }
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
    bad("timeoutMs: expected a positive number", opts.timeoutMs);
  }
  if (!Number.isInteger(opts.maxOutputBytes) || opts.maxOutputBytes < 0) {
    bad("maxOutputBytes: expected a non-negative integer", opts.maxOutputBytes);
  }
}

function _isAbsolute(path: string): boolean {
  return path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith("\\\\");
}
