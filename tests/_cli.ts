/**
 * Helpers for tests that run the gw CLI as a child process: the result of a
 * run, and assertions that print the whole run when they fail.
 */
import assert from "node:assert/strict";
import { type AnyFrame, denoDir, gwRunArgs } from "./_helpers.ts";

/** What a finished `gw …` child left. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The run, for an assertion message. */
export function show(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** stdout parsed as JSON, or a failure that shows the run. */
export function json(r: RunResult): AnyFrame {
  try {
    return JSON.parse(r.stdout);
  } catch (e) {
    throw new Error(`stdout is not JSON (${(e as Error).message}):\n${show(r)}`);
  }
}

/** Exit 0, or fail showing the run. */
export function okRun(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what}: ${show(r)}`);
  return r;
}

/** The environment of a gw child: its own HOME, no colours, this process's PATH and module cache. */
export async function childEnv(
  home: string,
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  return {
    HOME: home,
    NO_COLOR: "1",
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    DENO_DIR: await denoDir(),
    ...extra,
  };
}

/** A temp dir; `await using` removes it. */
export async function tempDir(
  prefix: string,
): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** Run `gw <args>` as `deno task gw` would, with HOME `home` (and `env`), killed after `timeoutMs`. */
export async function runGw(
  home: string,
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: gwRunArgs(...args),
    cwd: new URL("..", import.meta.url).pathname,
    env: await childEnv(home, opts.env ?? {}),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
