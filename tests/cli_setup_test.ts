/**
 * `gw setup` end to end: the CLI in a child process run exactly as the
 * binary runs it (`deno run -P=gw main.ts setup ...`, clean environment,
 * NO_COLOR=1), on a pseudo-terminal (util-linux `script`, so stdin is a
 * terminal and secrets are read with echo off) and with piped stdin, through
 * a real gateway and without one. Keys and bot tokens are checked against
 * fakes on real sockets (tests/_fake_anthropic.ts, tests/_fake_openai.ts,
 * tests/_telegram_api.ts).
 */
import assert from "node:assert/strict";
import { connected, gwRunArgs, ok, startTestGateway, TEST_TOKEN } from "./_helpers.ts";
import { childEnv, type RunResult, show } from "./_cli.ts";
import { startFakeAnthropic } from "./_fake_anthropic.ts";
import { startFakeOpenAI } from "./_fake_openai.ts";
import { TelegramApi } from "./_telegram_api.ts";
import { configSchema } from "../lib/config/mod.ts";
import { GwChild } from "./_gw_child.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const GOOD_KEY = "sk-ant-setup-good-key-0123456789";
const BAD_KEY = "sk-ant-setup-bad-key-9876543210";
const BOT_TOKEN = "515151:setup-good-bot-token-abcdef";
const TTS = "tts" in configSchema.shape;

const hasScript = await new Deno.Command("script", { args: ["--version"], stdout: "null" })
  .output().then((o) => o.success, () => false);

/** A loopback port nothing listens on. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A temp dir; `await using` removes it. */
async function tempDir() {
  const dir = await Deno.makeTempDir({ prefix: "gw-cli-setup-" });
  return {
    dir,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * `gw <args>` on a pseudo-terminal: `script -qfec CMD /dev/null` gives the
 * child a terminal for stdin and stdout; what we write to script's stdin is
 * typed on it. Answers are sent one at a time, after their prompt shows, as
 * a person would (a terminal echoes what is typed before raw mode is on).
 */
class Pty {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #done: Promise<void>;
  #out = "";
  #mark = 0;
  #waiters: (() => void)[] = [];

  constructor(home: string, args: string[], env: Record<string, string>) {
    const cmd = [Deno.execPath(), ...gwRunArgs(...args)].map(quote).join(" ");
    const child = new Deno.Command("script", {
      args: ["-qfec", cmd, "/dev/null"],
      cwd: ROOT,
      env: { ...env, HOME: home, SHELL: "/bin/sh" },
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    const dec = new TextDecoder();
    this.#done = (async () => {
      for await (const chunk of child.stdout) {
        this.#out += dec.decode(chunk, { stream: true });
        for (const w of this.#waiters.splice(0)) w();
      }
      for (const w of this.#waiters.splice(0)) w();
    })();
  }

  /** Everything written so far (`\r\n` as `\n`). */
  get output(): string {
    return this.#out.replaceAll("\r\n", "\n");
  }

  /** Wait until `text` shows after the last expectation; returns what came before it. */
  async expect(text: string | RegExp, ms = 20_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const rest = this.output.slice(this.#mark);
      const m = typeof text === "string"
        ? (rest.includes(text) ? { index: rest.indexOf(text), length: text.length } : null)
        : (() => {
          const r = text.exec(rest);
          return r ? { index: r.index, length: r[0].length } : null;
        })();
      if (m) {
        this.#mark += m.index + m.length;
        return rest.slice(0, m.index);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no ${String(text)} within ${ms} ms; output:\n${this.output}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        timer = setTimeout(r, Math.min(left, 500));
      });
      clearTimeout(timer);
    }
  }

  /** Type `text` (`\r` is Enter). */
  async type(text: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(text));
  }

  /** Wait for `prompt`, then type `answer` and Enter. */
  async answer(prompt: string | RegExp, answer: string): Promise<void> {
    await this.expect(prompt);
    await this.type(`${answer}\r`);
  }

  /** The exit code of gw (script -e passes it on), once it ends. */
  async exit(ms = 30_000): Promise<number> {
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), ms);
    try {
      const status = await this.#child.status;
      await this.#done;
      await this.#writer.close().catch(() => {});
      return status.code;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Run `gw <args>` with `stdin` piped in, killed after 60 s. */
async function piped(
  home: string,
  args: string[],
  stdin: string,
  env: Record<string, string> = {},
): Promise<RunResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: gwRunArgs(...args),
    cwd: ROOT,
    env: await childEnv(home, env),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

function noSecrets(text: string, secrets: string[], what: string): void {
  for (const s of secrets) {
    assert.ok(!text.includes(s), `${what} shows a secret (${s.slice(0, 8)}…):\n${text}`);
  }
}

async function mode(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

Deno.test({
  name: "gw setup on a terminal, through the gateway: keys typed hidden, checked, saved",
  ignore: !hasScript,
  async fn() {
    await using fake = await startFakeAnthropic({ apiKey: GOOD_KEY });
    fake.script(() => ({ blocks: [{ type: "text", text: "OK" }] }));
    const tg = await TelegramApi.start({ tokens: { [BOT_TOKEN]: { username: "setup_bot" } } });
    await using gw = await startTestGateway({
      token: "",
      config: {
        gateway: { auth: { token: TEST_TOKEN } },
        models: { providers: { anthropic: { baseUrl: fake.url } } },
      },
    });
    await using home = await tempDir();
    const pty = new Pty(home.dir, ["setup", "--url", gw.url, "--state-dir", gw.stateDir], {
      ...await childEnv(home.dir),
    });
    try {
      await pty.expect(`through the gateway at ${gw.url}`);
      await pty.answer("Choose 1-3 [1]: ", "");
      await pty.answer("Choose 1-7 [1]: ", "1");
      await pty.answer("Which Claude model? [claude-sonnet-4-6]: ", "");
      await pty.expect("Your Anthropic API key");
      await pty.answer("(input hidden) > ", BAD_KEY);
      await pty.expect("Checking…");
      const rejected = await pty.expect("(input hidden) > ");
      assert.match(rejected, /✗ The API key for anthropic was rejected \(401/);
      await pty.type(`${GOOD_KEY}\r`);
      await pty.answer("Choose 1-3 [1]: ", "3");
      await pty.answer("URL of your Bot API server (e.g. http://127.0.0.1:8081): ", tg.apiRoot);
      await pty.answer("(input hidden) > ", BOT_TOKEN);
      if (TTS) await pty.answer("Choose 1-4 [1]: ", "");
      const review = await pty.expect("[Y/n] ");
      assert.match(review, /Gateway access: unchanged/);
      assert.match(review, /Model: anthropic\/claude-sonnet-4-6 \(checked\)/);
      assert.match(review, /Telegram: the bot @setup_bot/);
      await pty.type("\r");
      const code = await pty.exit();
      const out = pty.output;
      assert.equal(code, 0, out);
      assert.match(out, /✓ Saved; the gateway applied it\./);
      assert.match(out, /Model: anthropic\/claude-sonnet-4-6/);
      assert.match(out, /gw pairing approve telegram <CODE>/);
      noSecrets(out, [GOOD_KEY, BAD_KEY, BOT_TOKEN], "the terminal");

      const path = `${gw.stateDir}/gw.json`;
      assert.equal(await mode(path), 0o600);
      const saved = JSON.parse(await Deno.readTextFile(path));
      assert.equal(configSchema.safeParse(saved).success, true);
      assert.deepEqual(saved.gateway.auth, { token: TEST_TOKEN });
      assert.deepEqual(saved.models.providers.anthropic, { baseUrl: fake.url, apiKey: GOOD_KEY });
      assert.equal(saved.agents.defaults.model, "anthropic/claude-sonnet-4-6");
      assert.deepEqual(saved.channels.telegram, {
        enabled: true,
        botToken: BOT_TOKEN,
        apiRoot: tg.apiRoot,
      });
      const c = await connected(gw.url);
      assert.equal((await ok(c, "status")).sessions.defaults.model, "anthropic/claude-sonnet-4-6");
      await c.close();
    } finally {
      await pty.exit(1000).catch(() => {});
      await gw.stop();
      await tg.close();
    }
  },
});

Deno.test({
  name: "gw setup on a terminal without a gateway: Ctrl-C cancels; a new token shown once",
  ignore: !hasScript,
  async fn(t) {
    await using fake = await startFakeOpenAI();
    fake.script(() => ({ parts: [{ content: "OK" }] }));
    await using home = await tempDir();
    const stateDir = `${home.dir}/state`;
    const env = await childEnv(home.dir, { GW_PORT: String(closedPort()) });

    await t.step("Ctrl-C at a question: cancelled, nothing written", async () => {
      const pty = new Pty(home.dir, ["setup", "--state-dir", stateDir], env);
      await pty.expect("writes ~/state/gw.json itself");
      await pty.expect("Choose 1-3 [1]: ");
      await pty.type("\x03");
      assert.equal(await pty.exit(), 130, pty.output);
      assert.match(pty.output, /Setup cancelled; nothing was saved\./);
      await assert.rejects(Deno.stat(stateDir), Deno.errors.NotFound);
    });

    await t.step("Ctrl-C while typing a hidden key: cancelled, nothing written", async () => {
      const pty = new Pty(home.dir, ["setup", "--state-dir", stateDir], env);
      await pty.answer("Choose 1-3 [1]: ", "3");
      await pty.answer("(input hidden) > ", "pass-word-123");
      await pty.answer("The same password again\n(input hidden) > ", "pass-word-123");
      await pty.answer("Choose 1-7 [1]: ", "1");
      await pty.answer("[claude-sonnet-4-6]: ", "");
      await pty.expect("(input hidden) > ");
      await pty.type("sk-ant-half-typed");
      await pty.type("\x03");
      assert.equal(await pty.exit(), 130, pty.output);
      assert.match(pty.output, /Setup cancelled; nothing was saved\./);
      noSecrets(pty.output, ["pass-word-123", "sk-ant-half-typed"], "the terminal");
      await assert.rejects(Deno.stat(stateDir), Deno.errors.NotFound);
    });

    await t.step(
      "a new token and a local server: gw.json written, the token shown once",
      async () => {
        const pty = new Pty(home.dir, ["setup", "--state-dir", stateDir], env);
        await pty.answer("Choose 1-3 [1]: ", "2");
        await pty.answer("Choose 1-7 [1]: ", "6");
        await pty.answer("(with /v1) (e.g. http://127.0.0.1:8080/v1): ", `${fake.url}/v1`);
        await pty.answer("(e.g. llama3.2): ", "qwen3");
        await pty.expect("(Enter for none)");
        await pty.answer("(input hidden) > ", "");
        await pty.answer("Choose 1-3 [1]: ", "");
        if (TTS) await pty.answer("Choose 1-4 [1]: ", "");
        await pty.answer("[Y/n] ", "y");
        assert.equal(await pty.exit(), 0, pty.output);
        const path = `${stateDir}/gw.json`;
        assert.equal(await mode(path), 0o600);
        assert.equal(await mode(stateDir), 0o700);
        const saved = JSON.parse(await Deno.readTextFile(path));
        assert.equal(configSchema.safeParse(saved).success, true);
        const token = saved.gateway.auth.token as string;
        assert.match(token, /^[A-Za-z0-9][A-Za-z0-9_-]{42}$/);
        assert.deepEqual(saved.models.providers.custom, {
          api: "openai-completions",
          baseUrl: `${fake.url}/v1`,
        });
        assert.equal(saved.agents.defaults.model, "custom/qwen3");
        assert.equal(fake.requests.length, 1, "the model was checked once");
        const out = pty.output;
        assert.match(out, /✓ Saved to ~\/state\/gw\.json\./);
        assert.ok(out.includes(`New access token: ${token}`), out);
        assert.match(out, /Start the gateway with: gw start/);
      },
    );
  },
});

Deno.test("gw setup with piped stdin: through the gateway, a rejected bot token, then saved", async (t) => {
  const tg = await TelegramApi.start({ tokens: { [BOT_TOKEN]: { username: "piped_bot" } } });
  await using gw = await startTestGateway();
  await using home = await tempDir();
  const run = (stdin: string) =>
    piped(home.dir, ["setup", "channels", "--url", gw.url], stdin, { GW_TOKEN: gw.token });
  try {
    await t.step("input that ends early cancels the wizard", async () => {
      const r = await run("2\n");
      assert.equal(r.code, 1, show(r));
      assert.match(r.stderr, /the input ended before setup was done; nothing was saved/);
      const c = await connected(gw.url);
      const s = await ok(c, "wizard.start", {});
      await ok(c, "wizard.cancel", { sessionId: s.sessionId });
      await c.close();
    });

    await t.step("a bad token, then the good one", async () => {
      const bad = "525252:not-a-registered-token-xyz";
      const r = await run(`3\n${tg.apiRoot}\n${bad}\n${BOT_TOKEN}\n\n`);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /Choose 1-3 \[2\]: 3\n/, "piped answers are shown");
      assert.match(r.stdout, /✗ Telegram rejected this token \(401/);
      assert.match(r.stdout, /Telegram: the bot @piped_bot/);
      assert.doesNotMatch(r.stdout, /Gateway access|Model:/, "channels only");
      assert.match(r.stdout, /✓ Saved; the gateway applied it\./);
      noSecrets(r.stdout + r.stderr, [BOT_TOKEN, bad], "the output");
      const saved = JSON.parse(await Deno.readTextFile(`${gw.stateDir}/gw.json`));
      assert.equal(saved.channels.telegram.botToken, BOT_TOKEN);
      assert.equal(await mode(`${gw.stateDir}/gw.json`), 0o600);
    });

    await t.step("another setup in progress: continue it", async () => {
      const c = await connected(gw.url);
      const s = await ok(c, "wizard.start", {});
      await ok(c, "wizard.next", {
        sessionId: s.sessionId,
        answer: { stepId: s.step.id, value: "keep" },
      });
      await c.close();
      const r = await piped(
        home.dir,
        ["setup", "--url", gw.url],
        "1\n7\n\n" + (TTS ? "\n" : "") + "y\n",
        {
          GW_TOKEN: gw.token,
        },
      );
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /Another setup is in progress on this gateway/);
      assert.match(r.stdout, /Which model should the assistant use\?/);
      assert.doesNotMatch(r.stdout, /How should clients sign in/, "it went on where it was");
      assert.match(r.stdout, /Nothing to change/);
    });
  } finally {
    await gw.stop();
    await tg.close();
  }
});

Deno.test("gw start points to gw setup until gw.json exists; gw setup through that gw start", async () => {
  await using home = await tempDir();
  const stateDir = `${home.dir}/state`;
  await Deno.mkdir(stateDir, { mode: 0o700 });
  const until = async (what: string, check: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`${what}: not within 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  {
    await using first = await GwChild.start(stateDir);
    await until("the hint", () => first.stdout.includes("No gw.json yet"));
    assert.match(
      first.stdout,
      /No gw\.json yet: run gw setup to pick a model, sign-in and Telegram\./,
    );
    const r = await piped(
      home.dir,
      ["setup", "--url", first.url, "--state-dir", stateDir],
      `3\npass-word-456\npass-word-456\n7\n\n${TTS ? "\n" : ""}y\n`,
      { GW_TOKEN: TEST_TOKEN },
    );
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /✓ Saved; the gateway applied it\./);
    noSecrets(r.stdout + r.stderr + first.stdout + first.stderr, ["pass-word-456"], "the output");
    const saved = JSON.parse(await Deno.readTextFile(`${stateDir}/gw.json`));
    assert.deepEqual(saved.gateway.auth, { mode: "password", password: "pass-word-456" });
  }
  await using second = await GwChild.start(stateDir);
  await new Promise((r) => setTimeout(r, 300));
  assert.doesNotMatch(second.stdout, /No gw\.json yet/);
});
