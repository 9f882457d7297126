/**
 * `gw start` in a child process (as `deno task gw` runs it), for tests that
 * must kill the gateway the hard way (SIGKILL mid-turn) and look at what the
 * next start makes of the state dir.
 */
import { denoDir, gwRunArgs, TEST_TOKEN } from "./_helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const LISTENING = /listening on (ws:\/\/127\.0\.0\.1:(\d+))/;

/** A running `gw start --state-dir <dir> --port 0 --token TEST_TOKEN` child. */
export class GwChild implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly home: string;
  stdout = "";
  stderr = "";
  url = "";
  exited: Deno.CommandStatus | undefined;
  readonly status: Promise<Deno.CommandStatus>;
  #pumps: Promise<void>[];

  private constructor(child: Deno.ChildProcess, home: string) {
    this.child = child;
    this.home = home;
    this.status = child.status.then((s) => (this.exited = s));
    this.#pumps = [
      this.#pump(child.stdout, (s) => (this.stdout += s)),
      this.#pump(child.stderr, (s) => (this.stderr += s)),
    ];
  }

  async #pump(stream: ReadableStream<Uint8Array>, add: (s: string) => void): Promise<void> {
    for await (const s of stream.pipeThrough(new TextDecoderStream())) add(s);
  }

  /** Spawn the gateway on `stateDir` and wait for its "listening on" line. */
  static async start(stateDir: string, timeoutMs = 20_000): Promise<GwChild> {
    const home = await Deno.makeTempDir({ prefix: "gw-chat-home-" });
    const child = new Deno.Command(Deno.execPath(), {
      args: gwRunArgs("start", "--port", "0", "--state-dir", stateDir, "--token", TEST_TOKEN),
      cwd: ROOT,
      env: {
        HOME: home,
        NO_COLOR: "1",
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        DENO_DIR: await denoDir(),
      },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const p = new GwChild(child, home);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const m = p.stdout.match(LISTENING);
      if (m) {
        p.url = m[1]!;
        return p;
      }
      if (p.exited || performance.now() > deadline) {
        await p.kill();
        throw new Error(
          `gw start did not listen\n--- stdout\n${p.stdout}\n--- stderr\n${p.stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** SIGKILL (if still running), reap, drain the pipes, remove the temp HOME. */
  async kill(): Promise<void> {
    if (!this.exited) {
      try {
        this.child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    await this.status;
    await Promise.all(this.#pumps);
    await Deno.remove(this.home, { recursive: true }).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.kill();
  }
}
