/**
 * `gw chat`, `gw agent` and `gw sessions` end to end: a real gateway, the fake
 * Anthropic API, and the CLI in a child process run exactly as the binary runs
 * it (`deno run -P=gw main.ts ...`, clean environment, NO_COLOR=1); the
 * terminal cases run it under `script`, which gives it a pseudo-terminal.
 */
import assert from "node:assert/strict";
import { type AnyFrame, connected, gwRunArgs, ok, startTestGateway } from "./_helpers.ts";
import { type AnthropicScript, startFakeAnthropic } from "./_fake_anthropic.ts";
import { childEnv, json, type RunResult, show } from "./_cli.ts";

const ROOT = new URL("../", import.meta.url).pathname;

// ------------------------------------------------------------------ helpers

/** A fake Anthropic API and a gateway using it, with a temp HOME for the children. */
async function setup() {
  const fake = await startFakeAnthropic({ apiKey: "k" });
  const t = await startTestGateway({
    config: {
      agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
      models: { providers: { anthropic: { apiKey: "k", baseUrl: fake.url } } },
    },
  });
  const home = await Deno.makeTempDir({ prefix: "gw-cli-chat-home-" });
  return {
    fake,
    t,
    home,
    /** The connection flags for this gateway. */
    conn: ["--url", t.url, "--token", t.token],
    async [Symbol.asyncDispose]() {
      await t.stop();
      await fake.close();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    },
  };
}

type Env = Awaited<ReturnType<typeof setup>>;

/** Run `gw <args>` to completion with `stdin` (or none), killed after `timeoutMs`. */
async function gw(
  env: Env,
  args: string[],
  o: { stdin?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), o.timeoutMs ?? 20_000);
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: gwRunArgs(...args),
      cwd: ROOT,
      env: await childEnv(env.home),
      clearEnv: true,
      stdin: o.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      signal: ac.signal,
    }).spawn();
    if (o.stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(o.stdin));
      await w.close();
    }
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/** A reply the fake streams in small pieces. */
function reply(text: string, delayMs = 20): AnthropicScript {
  return { blocks: [{ type: "text", text: text.match(/.{1,3}/gs) ?? [""] }], delayMs };
}

/** Resolves with `p`, or fails after `ms` saying what did not happen. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** One turn over a raw socket, waiting for its final event. */
async function seedTurn(env: Env, message: string): Promise<void> {
  const c = await connected(env.t.url);
  try {
    const runId = crypto.randomUUID();
    await ok(c, "chat.send", { sessionKey: "main", message, idempotencyKey: runId });
    await c.next((f) =>
      f.event === "chat" && f.payload.runId === runId && f.payload.state === "final"
    );
  } finally {
    await c.close();
  }
}

/** `gw chat` on a pseudo-terminal (through `script`), its output collected as it comes. */
class PtyChat implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  output = "";
  exited: Deno.CommandStatus | undefined;
  #status: Promise<Deno.CommandStatus>;
  #pump: Promise<void>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #wake: (() => void)[] = [];

  constructor(args: string[], env: Record<string, string>) {
    // `exec`: the shell `script` starts must not stay around as the parent, or it
    // takes the terminal's SIGINT for itself and exits 130 when gw chat ends.
    const inner = "exec " + [Deno.execPath(), ...gwRunArgs("chat", ...args)]
      .map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
    const child = new Deno.Command("script", {
      args: ["-qec", inner, "/dev/null"],
      cwd: ROOT,
      env,
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child = child;
    this.#writer = this.child.stdin.getWriter();
    this.#status = this.child.status.then((s) => {
      this.exited = s;
      for (const w of this.#wake.splice(0)) w();
      return s;
    });
    this.#pump = (async () => {
      for await (const s of child.stdout.pipeThrough(new TextDecoderStream())) {
        this.output += s;
        for (const w of this.#wake.splice(0)) w();
      }
    })();
    void this.child.stderr.cancel();
  }

  static async start(env: Env, ...args: string[]): Promise<PtyChat> {
    return new PtyChat([...env.conn, ...args], await childEnv(env.home));
  }

  /** Type `text` as a person would (Enter is "\r", Ctrl-C "\x03", Ctrl-D "\x04"). */
  async type(text: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(text));
  }

  /** Wait until the output after offset `from` matches `re`; returns the offset after the match. */
  async waitFor(re: RegExp, from = 0, ms = 10_000): Promise<number> {
    const deadline = performance.now() + ms;
    while (true) {
      const rest = this.output.slice(from);
      const m = re.exec(rest);
      if (m) return from + m.index + m[0].length;
      const left = deadline - performance.now();
      if (this.exited || left <= 0) {
        throw new Error(
          `${this.exited ? `exited with ${this.exited.code}` : `timed out`} before ${re}` +
            ` (after offset ${from}); output:\n${JSON.stringify(this.output)}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        timer = setTimeout(r, Math.min(left, 200));
        this.#wake.push(r);
      });
      clearTimeout(timer);
    }
  }

  /** The exit status, failing after `ms`. */
  status(ms = 10_000): Promise<Deno.CommandStatus> {
    return within(this.#status, ms, `gw chat exiting; output:\n${JSON.stringify(this.output)}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.exited) {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await this.#writer.close().catch(() => {});
    await this.#status;
    await this.#pump.catch(() => {});
  }
}

/** The prompt `gw chat` shows on a terminal, at the start of a line. */
const PROMPT = /(^|\n|\r)> /;

// ------------------------------------------------------------------ gw agent

Deno.test("cli agent: prints the reply and exits 0; --json prints the final payload", async () => {
  await using env = await setup();
  env.fake.script(reply("Hello from the fake"));
  const r = await gw(env, ["agent", "hi", ...env.conn]);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, "Hello from the fake\n", show(r));
  assert.equal(env.fake.requests.length, 1);

  env.fake.script(reply("Second"));
  const j = await gw(env, ["agent", "again", "--session", "other", "--json", ...env.conn]);
  assert.equal(j.code, 0, show(j));
  const body = json(j);
  assert.equal(body.status, "ok", show(j));
  assert.equal(body.sessionKey, "agent:main:other");
  assert.deepEqual(body.result.payloads.map((p: AnyFrame) => p.text), ["Second"]);
});

Deno.test("cli agent: a provider 401 exits 1 saying the API key was rejected", async () => {
  await using env = await setup();
  env.fake.script({
    error: { status: 401, type: "authentication_error", message: "invalid x-api-key" },
  });
  const r = await gw(env, ["agent", "hi", ...env.conn]);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /API key/, show(r));
  assert.match(r.stderr, /rejected/, show(r));
  assert.match(r.stderr, /UNAVAILABLE/, show(r));
  assert.equal(r.stdout, "", "nothing on stdout for an error");
});

Deno.test("cli agent/chat/sessions: usage errors exit 2 without connecting", async () => {
  await using env = await setup();
  const cases: [string[], RegExp][] = [
    [["agent"], /usage: gw agent/],
    [["agent", "hi", "--thinking", "loud"], /--thinking/],
    [["agent", "hi", "--keep-transcript"], /agent does not take --keep-transcript/],
    [["chat", "hello"], /chat takes no arguments/],
    [["chat", "--model", "x"], /chat does not take --model/],
    [["sessions", "show"], /usage: gw sessions show KEY/],
    [["sessions", "frob"], /unknown sessions command 'frob'/],
    [["sessions", "list", "--limit", "0"], /--limit/],
    [["call", "health", "--session", "x"], /call does not take --session/],
  ];
  const results = await Promise.all(cases.map(([args]) => gw(env, [...args, ...env.conn])));
  cases.forEach(([args, re], i) => {
    const r = results[i]!;
    assert.equal(r.code, 2, `${args.join(" ")}: ${show(r)}`);
    assert.match(r.stderr, re, `${args.join(" ")}: ${show(r)}`);
  });
  assert.equal(env.fake.requests.length, 0);
});

// ------------------------------------------------------------------ gw chat, piped

Deno.test("cli chat: piped stdin sends each line in turn and prints each reply", async () => {
  await using env = await setup();
  env.fake.script(reply("Reply one"), reply("Reply two"));
  const r = await gw(env, ["chat", ...env.conn], { stdin: "first question\n\nsecond question\n" });
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, "Reply one\nReply two\n", show(r));
  // The second message went out only after the first reply ended: it carries it.
  const second = env.fake.requests[1]!.body.messages as { role: string }[];
  assert.deepEqual(second.map((m) => m.role), ["user", "assistant", "user"]);

  const c = await connected(env.t.url);
  try {
    const hist = await ok(c, "chat.history", { sessionKey: "main" });
    assert.deepEqual(hist.messages.map((m: AnyFrame) => m.role), [
      "user",
      "assistant",
      "user",
      "assistant",
    ]);
    assert.equal(hist.messages[2].content, "second question");
  } finally {
    await c.close();
  }
});

Deno.test("cli chat: piped, a failed turn prints the error kind and exits 1", async () => {
  await using env = await setup();
  env.fake.script(
    { error: { status: 529, type: "overloaded_error", message: "Overloaded" } },
    reply("fine"),
  );
  const r = await gw(env, ["chat", "--session", "s2", ...env.conn], { stdin: "one\ntwo\n" });
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /error \(rate_limit\)/, show(r));
  assert.equal(r.stdout, "fine\n", "the next line still gets its reply");
});

// ------------------------------------------------------------------ gw chat, on a terminal

Deno.test("cli chat on a terminal: Ctrl-C aborts a streaming reply and the REPL goes on", async () => {
  await using env = await setup();
  const slow = Array.from({ length: 60 }, (_, i) => `word${i} `);
  env.fake.script(
    reply("Seeded answer"),
    { blocks: [{ type: "text", text: slow }], delayMs: 100 },
    reply("Second answer"),
  );
  await seedTurn(env, "an earlier question");
  await using p = await PtyChat.start(env);

  // History first, then the prompt.
  let at = await p.waitFor(/you: an earlier question[\s\S]*assistant: Seeded answer/);
  at = await p.waitFor(PROMPT, at);
  await p.type("tell me a long story\r");
  at = await p.waitFor(/word0 word1 word2 /, at);
  await p.type("\x03");
  at = await p.waitFor(/\[aborted\]/, at);
  at = await p.waitFor(PROMPT, at);
  assert.ok(!p.exited, "Ctrl-C during a reply must not end gw chat");
  assert.doesNotMatch(p.output, /word59/, "the reply was not cut short");

  // The gateway aborted the run and the fake saw its stream cancelled.
  const req = env.fake.requests[1]!;
  assert.equal(await within(req.ended, 5000, "the slow stream ending"), "disconnected");
  const c = await connected(env.t.url);
  try {
    const hist = await ok(c, "chat.history", { sessionKey: "main" });
    const last = hist.messages.at(-1);
    assert.equal(last.role, "assistant", JSON.stringify(hist.messages));
    assert.equal(last.stopReason, "aborted", JSON.stringify(last));
    assert.equal(hist.hasActiveRun, false);
  } finally {
    await c.close();
  }

  // Still running: the next line gets its answer.
  await p.type("and now?\r");
  at = await p.waitFor(/Second answer/, at);
  at = await p.waitFor(PROMPT, at);
  assert.ok(!p.exited);
  // Ctrl-C at an empty prompt quits with 0.
  await p.type("\x03");
  const status = await p.status();
  assert.equal(status.code, 0, JSON.stringify(p.output));
  assert.equal(env.fake.requests.length, 3);
});

Deno.test("cli chat on a terminal: Ctrl-C clears a half-typed line, /new resets, Ctrl-D quits", async () => {
  await using env = await setup();
  env.fake.script(reply("First"), reply("After reset"));
  await using p = await PtyChat.start(env, "--session", "tty");
  let at = await p.waitFor(PROMPT);
  await p.type("some half-typed line");
  at = await p.waitFor(/some half-typed line/, at);
  await p.type("\x03");
  at = await p.waitFor(PROMPT, at);
  assert.ok(!p.exited, "Ctrl-C with text on the line must not quit");
  await p.type("hello\r");
  at = await p.waitFor(/First\r?\n/, at);
  await p.type("/new\r");
  at = await p.waitFor(/started a new session/, at);
  await p.type("again\r");
  at = await p.waitFor(/After reset/, at);
  await p.type("/history\r");
  at = await p.waitFor(/you: again[\s\S]*assistant: After reset/, at);
  await p.waitFor(PROMPT, at);
  await p.type("\x04");
  const status = await p.status();
  assert.equal(status.code, 0, JSON.stringify(p.output));
  // The half-typed line was never sent; /new gave the second turn a fresh context.
  assert.equal(env.fake.requests.length, 2);
  assert.deepEqual(
    (env.fake.requests[1]!.body.messages as { role: string }[]).map((m) => m.role),
    ["user"],
  );
});

// ------------------------------------------------------------------ gw sessions

Deno.test("cli sessions: list, show, reset and delete, as JSON and as tables", async (t) => {
  await using env = await setup();
  env.fake.script(reply("Paris is the capital."));
  await seedTurn(env, "What is the capital of France?");
  const key = "agent:main:main";

  await t.step("list --json and the table", async () => {
    const [j, table, none] = await Promise.all([
      gw(env, ["sessions", "--json", ...env.conn]),
      gw(env, ["sessions", "list", ...env.conn]),
      gw(env, ["sessions", "list", "--search", "no-such-thing", "--json", ...env.conn]),
    ]);
    assert.equal(j.code, 0, show(j));
    const rows = json(j).sessions as AnyFrame[];
    assert.deepEqual(rows.map((s) => s.key), [key]);
    assert.equal(rows[0].messageCount, 2);
    assert.equal(table.code, 0, show(table));
    assert.match(table.stdout, /KEY\s+TITLE\s+UPDATED\s+MESSAGES\s+TOKENS/, show(table));
    assert.match(
      table.stdout,
      /agent:main:main\s+What is the capital.*just now\s+2\s/,
      show(table),
    );
    assert.equal(none.code, 0, show(none));
    assert.deepEqual(json(none).sessions, []);
  });

  await t.step("show --json and as text", async () => {
    const [j, text] = await Promise.all([
      gw(env, ["sessions", "show", "main", "--json", ...env.conn]),
      gw(env, ["sessions", "show", "main", "--limit", "1", ...env.conn]),
    ]);
    assert.equal(j.code, 0, show(j));
    assert.deepEqual(json(j).messages.map((m: AnyFrame) => m.role), ["user", "assistant"]);
    assert.equal(text.code, 0, show(text));
    assert.match(text.stdout, /1 earlier message/, show(text));
    assert.match(text.stdout, /assistant[\s\S]*Paris is the capital\./, show(text));
    assert.doesNotMatch(text.stdout, /France/, "--limit 1 shows only the last message");
  });

  await t.step("reset empties the transcript", async () => {
    const r = await gw(env, ["sessions", "reset", "main", "--json", ...env.conn]);
    assert.equal(r.code, 0, show(r));
    assert.equal(json(r).ok, true);
    const h = await gw(env, ["sessions", "show", "main", "--json", ...env.conn]);
    assert.deepEqual(json(h).messages, [], show(h));
  });

  await t.step("delete removes it; a second delete and a reset of it exit 1", async () => {
    const r = await gw(env, ["sessions", "delete", "main", ...env.conn]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /deleted agent:main:main/, show(r));
    const [list, again, reset] = await Promise.all([
      gw(env, ["sessions", "--json", ...env.conn]),
      gw(env, ["sessions", "delete", "main", "--json", ...env.conn]),
      gw(env, ["sessions", "reset", "main", ...env.conn]),
    ]);
    assert.deepEqual(json(list).sessions, [], show(list));
    assert.equal(again.code, 1, show(again));
    assert.equal(json(again).deleted, false);
    assert.equal(reset.code, 1, show(reset));
    assert.match(reset.stderr, /no such session/, show(reset));
  });

  await t.step("delete --keep-transcript", async () => {
    env.fake.script(reply("kept"));
    await seedTurn(env, "keep me");
    const r = await gw(env, ["sessions", "delete", "main", "--keep-transcript", ...env.conn]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /transcript kept/, show(r));
  });
});
