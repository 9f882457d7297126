/**
 * The `gw` command, run the way people and the compiled binary run it:
 * `deno run -P=gw main.ts ...` in a child process with a clean environment
 * (HOME is a temp dir, NO_COLOR=1; only PATH and DENO_DIR are kept, the latter
 * so the child finds the npm cache instead of downloading zod again).
 *
 * Exit codes under test: 0 ok, 1 error response, 2 usage, 3 cannot connect.
 */
import assert from "node:assert/strict";
import { connected, gwRunArgs } from "./_helpers.ts";
import { methods } from "../methods/mod.ts";
import { childEnv } from "./_cli.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DENO_JSON = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
const LISTENING = /listening on (ws:\/\/127\.0\.0\.1:(\d+))/;

// ------------------------------------------------------------------ helpers

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run `gw <args>` to completion (killed after `timeoutMs`). */
async function gw(
  args: string[],
  o: { home: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<RunResult> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), o.timeoutMs ?? 20_000);
  const started = performance.now();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: gwRunArgs(...args),
      cwd: ROOT,
      env: await childEnv(o.home, o.env),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: ac.signal,
    }).output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
      ms: performance.now() - started,
    };
  } finally {
    clearTimeout(timer);
  }
}

function show(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** A running `gw start` child, its output collected as it comes. */
class GwProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  url = "";
  port = 0;
  #pumps: Promise<void>[];
  #waiters: (() => void)[] = [];
  #status: Promise<Deno.CommandStatus>;
  exited: Deno.CommandStatus | undefined;

  private constructor(args: string[], env: Record<string, string>) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: gwRunArgs("start", ...args),
      cwd: ROOT,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#status = this.child.status.then((s) => (this.exited = s));
    this.#pumps = [
      this.#pump(this.child.stdout, (s) => (this.stdout += s)),
      this.#pump(this.child.stderr, (s) => (this.stderr += s)),
    ];
  }

  async #pump(stream: ReadableStream<Uint8Array>, add: (s: string) => void): Promise<void> {
    for await (const s of stream.pipeThrough(new TextDecoderStream())) {
      add(s);
      for (const w of this.#waiters.splice(0)) w();
    }
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Spawn `gw start <args>` and wait for its "listening on" line. */
  static async start(
    args: string[],
    o: { home: string; env?: Record<string, string>; timeoutMs?: number },
  ): Promise<GwProcess> {
    const p = new GwProcess(args, await childEnv(o.home, o.env));
    try {
      const m = await p.waitFor(LISTENING, o.timeoutMs ?? 20_000);
      p.url = m[1]!;
      p.port = Number(m[2]);
      // The listening line must be the first line of stdout.
      assert.match(p.stdout.split("\n")[0]!, LISTENING, `first stdout line:\n${p.stdout}`);
    } catch (e) {
      await p.stop();
      throw new Error(`gw start did not listen: ${(e as Error).message}\n${p.output()}`);
    }
    return p;
  }

  /**
   * Wait until the gateway answers a WebSocket (its connect.challenge): by
   * then start-up has finished, signal handlers included.
   */
  async ready(): Promise<void> {
    const ws = new WebSocket(this.url);
    await new Promise<void>((resolve, reject) => {
      ws.onmessage = () => resolve();
      ws.onerror = () => reject(new Error(`no challenge from ${this.url}`));
    });
    const closed = new Promise((r) => (ws.onclose = r));
    ws.close();
    await closed;
  }

  output(): string {
    return `--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`;
  }

  /** Wait until stdout matches `re`; fails when the process exits first or on timeout. */
  async waitFor(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const deadline = performance.now() + timeoutMs;
    while (true) {
      const m = this.stdout.match(re);
      if (m) return m;
      if (this.exited) throw new Error(`exited with ${this.exited.code} before printing ${re}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no ${re} in stdout within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.min(left, 200));
        this.#waiters.push(resolve);
      });
      clearTimeout(timer);
    }
  }

  /** Send `signal` and wait for the exit, at most `timeoutMs`; then SIGKILL. */
  async signal(
    signal: Deno.Signal,
    timeoutMs: number,
  ): Promise<{ status: Deno.CommandStatus; ms: number }> {
    const t0 = performance.now();
    this.child.kill(signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((
      r,
    ) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
    const s = await Promise.race([this.#status, timedOut]);
    clearTimeout(timer);
    const ms = performance.now() - t0;
    if (s === "timeout") {
      await this.stop();
      throw new Error(
        `gw start did not exit within ${timeoutMs} ms of ${signal}\n${this.output()}`,
      );
    }
    await Promise.all(this.#pumps);
    return { status: s, ms };
  }

  /** Kill (if still running), reap, drain the pipes. */
  async stop(): Promise<void> {
    if (!this.exited) {
      try {
        this.child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    await this.#status;
    await Promise.all(this.#pumps);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** A temp HOME, removed afterwards. */
async function tempHome(): Promise<{ home: string } & AsyncDisposable> {
  const home = await Deno.makeTempDir({ prefix: "gw-cli-home-" });
  return {
    home,
    [Symbol.asyncDispose]: () => Deno.remove(home, { recursive: true }).catch(() => {}),
  };
}

/** A TCP port that nothing listens on (bound, then released). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function json(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} is not JSON (${(e as Error).message}):\n${text}`);
  }
}

// ------------------------------------------------------------------ start and the token

Deno.test("cli start: first start stores a token 0600 and, off a terminal, does not print it", async () => {
  await using h = await tempHome();
  const state = `${h.home}/state`;

  let token: string;
  {
    await using p = await GwProcess.start(["--port", "0", "--state-dir", state], h);
    assert.ok(p.port > 0, "port 0 must print the real port");
    await p.waitFor(/First start: generated an access token/);
    await p.ready(); // see the "right after the listening line" test for why
    const { status } = await p.signal("SIGTERM", 6_000);
    assert.equal(status.code, 0, p.output());
    token = (await Deno.readTextFile(`${state}/token`)).trim();
    assert.ok(token.length >= 32, `token too short: ${token}`);
    // stdout is a pipe here, as under systemd: it may be kept in a log.
    assert.ok(
      !(p.stdout + p.stderr).includes(token),
      `the token was printed to a non-terminal:\n${p.output()}`,
    );
    assert.match(p.stdout, /read it with: cat .*state\/token/, p.output());
    const st = await Deno.stat(`${state}/token`);
    assert.equal(
      (st.mode ?? 0) & 0o777,
      0o600,
      `token file mode is ${((st.mode ?? 0) & 0o777).toString(8)}`,
    );
    // The token must not end up in the log file either.
    let log = "";
    try {
      log = await Deno.readTextFile(`${state}/logs/gw.log`);
    } catch { /* no log file */ }
    assert.ok(!log.includes(token), "the token was written to logs/gw.log");
  }
  {
    await using p = await GwProcess.start(["--port", "0", "--state-dir", state], h);
    await p.ready();
    const { status } = await p.signal("SIGTERM", 6_000);
    assert.equal(status.code, 0, p.output());
    assert.ok(
      !(p.stdout + p.stderr).includes(token),
      `second start printed the token:\n${p.output()}`,
    );
    assert.doesNotMatch(p.stdout, /token:|First start/, p.output());
    assert.equal(
      (await Deno.readTextFile(`${state}/token`)).trim(),
      token,
      "second start changed the token",
    );
  }
});

// ------------------------------------------------------------------ calls against one gateway

Deno.test("cli call/health/status against a running gateway", async (t) => {
  await using h = await tempHome();
  const state = `${h.home}/state`;
  await using p = await GwProcess.start(["--port", "0", "--state-dir", state], h);
  const token = (await Deno.readTextFile(`${state}/token`)).trim();
  const url = p.url;
  const port = String(p.port);
  // Where no --url is given, GW_PORT points the CLI at this gateway and
  // --state-dir lets it read the local token.
  const local = { home: h.home, env: { GW_PORT: port } };

  await t.step("gw call health --url --token exits 0 and prints JSON", async () => {
    const r = await gw(["call", "health", "--url", url, "--token", token], h);
    assert.equal(r.code, 0, show(r));
    const body = json(r.stdout, "stdout") as { ok: boolean; agents: unknown[] };
    assert.equal(body.ok, true);
    assert.ok(Array.isArray(body.agents));
  });

  await t.step("gw call health --url <loopback> --state-dir reads the local token", async () => {
    const r = await gw(["call", "health", "--url", url, "--state-dir", state], h);
    assert.equal(r.code, 0, show(r));
    assert.equal((json(r.stdout, "stdout") as { ok: boolean }).ok, true);
  });

  await t.step("gw call health with GW_PORT + --state-dir reads the local token", async () => {
    const r = await gw(["call", "health", "--state-dir", state], local);
    assert.equal(r.code, 0, show(r));
    assert.equal((json(r.stdout, "stdout") as { ok: boolean }).ok, true);
  });

  await t.step("GW_STATE_DIR works for call like --state-dir", async () => {
    const r = await gw(["call", "health"], {
      home: h.home,
      env: { GW_PORT: port, GW_STATE_DIR: state },
    });
    assert.equal(r.code, 0, show(r));
  });

  await t.step("GW_TOKEN works for call", async () => {
    const ok = await gw(["call", "health", "--url", url], {
      home: h.home,
      env: { GW_TOKEN: token },
    });
    assert.equal(ok.code, 0, show(ok));
    const bad = await gw(["call", "health", "--url", url], {
      home: h.home,
      env: { GW_TOKEN: "wrong-token-0123456789" },
    });
    assert.equal(bad.code, 3, show(bad));
    assert.match(bad.stderr, /reject/i, show(bad));
  });

  await t.step("gw call status --json prints parseable JSON", async () => {
    const r = await gw(["call", "status", "--json", "--state-dir", state], local);
    assert.equal(r.code, 0, show(r));
    const s = json(r.stdout, "stdout") as {
      runtimeVersion: string;
      pid: number;
      connections: unknown;
    };
    assert.equal(s.runtimeVersion, DENO_JSON.version);
    assert.equal(s.pid, p.child.pid);
    assert.equal(typeof s.connections, "object");
  });

  await t.step("gw health prints a readable summary", async () => {
    const r = await gw(["health", "--state-dir", state], local);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /healthy/, show(r));
    assert.match(r.stdout, /agent main/, show(r));
    assert.match(r.stdout, /event loop/, show(r));
    assert.throws(() => JSON.parse(r.stdout), "the summary should not be raw JSON");
    assert.ok(!r.stdout.includes("\x1b["), "NO_COLOR=1 but output has colour codes");
  });

  await t.step("gw status prints a readable summary; --json gives JSON", async () => {
    const r = await gw(["status", "--state-dir", state], local);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, new RegExp(`gw ${DENO_JSON.version.replace(/\./g, "\\.")}`), show(r));
    assert.match(r.stdout, new RegExp(`pid ${p.child.pid}\\b`), show(r));
    assert.match(r.stdout, /clients/, show(r));
    assert.throws(() => JSON.parse(r.stdout));
    const j = await gw(["status", "--json", "--state-dir", state], local);
    assert.equal(j.code, 0, show(j));
    assert.equal((json(j.stdout, "stdout") as { pid: number }).pid, p.child.pid);
  });

  await t.step("an error response exits 1 with code and message on stderr", async () => {
    const r = await gw(
      ["call", "agent.identity.get", '{"agentId":"nope"}', "--state-dir", state],
      local,
    );
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /INVALID_REQUEST/, show(r));
    assert.match(r.stderr, /unknown agent: nope/, show(r));
    assert.equal(r.stdout.trim(), "", "nothing on stdout for an error without --json");
  });

  await t.step("an error response with --json exits 1 and prints the error as JSON", async () => {
    const r = await gw(
      ["call", "agent.identity.get", '{"agentId":"nope"}', "--json", "--state-dir", state],
      local,
    );
    assert.equal(r.code, 1, show(r));
    const body = json(r.stdout, "stdout") as { ok: boolean; error: { code: string } };
    assert.equal(body.ok, false);
    assert.equal(body.error.code, "INVALID_REQUEST");
  });

  await t.step("an unknown method exits 1", async () => {
    const r = await gw(["call", "no.such.method", "--state-dir", state], local);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /unknown method/, show(r));
  });

  await t.step("params that fail the method's schema exit 1 naming the field", async () => {
    const r = await gw(["call", "logs.tail", '{"limit":"five"}', "--state-dir", state], local);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /limit/, show(r));
  });

  await t.step("a wrong token exits 3 saying the token was rejected", async () => {
    const r = await gw(["call", "health", "--url", url, "--token", "not-the-token-0123456789"], h);
    assert.equal(r.code, 3, show(r));
    assert.match(r.stderr, /rejected the token/, show(r));
    assert.ok(r.stderr.includes(url), `the message should name ${url}:\n${show(r)}`);
    assert.ok(!r.stderr.includes(token), "the real token leaked into the message");
  });

  await t.step("the gateway still answers after all that", async () => {
    const c = await connected(url, { auth: { token } });
    try {
      const res = await c.request("health");
      assert.equal(res.ok, true);
    } finally {
      await c.close();
    }
  });
});

// ------------------------------------------------------------------ usage errors

Deno.test("cli usage errors exit 2", async () => {
  await using h = await tempHome();
  // Nothing may be contacted for a usage error: point at a port nothing listens on.
  const env = { home: h.home, env: { GW_PORT: String(freePort()) } };
  const cases: [string, string[], RegExp][] = [
    ["bad params JSON", ["call", "health", "{not json"], /params must be JSON/],
    ["unknown command", ["frobnicate"], /unknown command 'frobnicate'/],
    ["unknown flag", ["call", "health", "--frobnicate"], /frobnicate/],
    ["unknown flag on start", ["start", "--no-such-flag"], /no-such-flag/],
    ["call without a method", ["call"], /usage: gw call <method>/],
    ["extra argument to call", ["call", "health", "{}", "extra"], /unexpected argument/],
    ["start with a positional", ["start", "now"], /start takes no arguments/],
    ["start with --token and --password", [
      "start",
      "--token",
      "a".repeat(20),
      "--password",
      "b".repeat(20),
    ], /not both/],
    ["a bad --timeout", ["call", "health", "--timeout", "soon"], /--timeout/],
    ["health with an argument", ["health", "extra"], /takes no arguments/],
  ];
  const results = await Promise.all(cases.map(([, args]) => gw(args, env)));
  cases.forEach(([name, , re], i) => {
    const r = results[i]!;
    assert.equal(r.code, 2, `${name}: ${show(r)}`);
    assert.match(r.stderr, re, `${name}: ${show(r)}`);
    assert.match(r.stderr, /gw help/, `${name}: should point at 'gw help'`);
  });
});

Deno.test("cli: nothing listening exits 3 saying the gateway seems down and naming the URL", async () => {
  await using h = await tempHome();
  const port = freePort();
  const url = `ws://127.0.0.1:${port}`;
  const viaUrl = await gw(["call", "health", "--url", url, "--token", "x".repeat(20)], h);
  assert.equal(viaUrl.code, 3, show(viaUrl));
  assert.match(viaUrl.stderr, /seems down/, show(viaUrl));
  assert.ok(viaUrl.stderr.includes(url), `should name ${url}:\n${show(viaUrl)}`);
  const viaEnv = await gw(["health"], { home: h.home, env: { GW_PORT: String(port) } });
  assert.equal(viaEnv.code, 3, show(viaEnv));
  assert.match(viaEnv.stderr, /seems down/, show(viaEnv));
  assert.ok(viaEnv.stderr.includes(url), `should name ${url}:\n${show(viaEnv)}`);
  assert.ok(viaEnv.ms < 10_000, `took ${viaEnv.ms} ms to notice nothing listens`);
});

// ------------------------------------------------------------------ version and help

Deno.test("cli: gw version prints deno.json's version", async () => {
  await using h = await tempHome();
  const [plain, asJson] = await Promise.all([gw(["version"], h), gw(["version", "--json"], h)]);
  assert.equal(plain.code, 0, show(plain));
  const v = DENO_JSON.version.replace(/\./g, "\\.");
  assert.match(plain.stdout, new RegExp(`^gw ${v} `), show(plain));
  assert.equal(asJson.code, 0, show(asJson));
  assert.equal((json(asJson.stdout, "stdout") as { version: string }).version, DENO_JSON.version);
});

// main.ts has a `case "--version":`, so `gw --version` is meant to work.
Deno.test("cli: gw --version (handled in main.ts) prints the version", async () => {
  await using h = await tempHome();
  const r = await gw(["--version"], h);
  assert.equal(r.code, 0, show(r));
  assert.ok(r.stdout.includes(DENO_JSON.version), show(r));
});

Deno.test("cli: gw help lists every method of methods/mod.ts", async () => {
  await using h = await tempHome();
  const [text, asJson, bare] = await Promise.all([
    gw(["help"], h),
    gw(["help", "--json"], h),
    gw([], h),
  ]);
  assert.equal(text.code, 0, show(text));
  assert.ok(methods.length > 0);
  for (const m of methods) {
    assert.match(
      text.stdout,
      new RegExp(`^\\s+${m.name.replace(/\./g, "\\.")}\\s`, "m"),
      `help lacks ${m.name}`,
    );
  }
  assert.match(text.stdout, /Exit codes/);
  assert.equal(asJson.code, 0, show(asJson));
  const listed = json(asJson.stdout, "stdout") as { name: string; scope: string }[];
  assert.deepEqual(listed.map((m) => m.name), methods.map((m) => m.name));
  assert.deepEqual(listed.map((m) => m.scope), methods.map((m) => m.scope));
  assert.equal(bare.code, 0, show(bare));
  assert.equal(bare.stdout, text.stdout, "bare 'gw' should print the help");
});

// ------------------------------------------------------------------ env, --token, refusals

Deno.test("cli: GW_PORT, GW_TOKEN and GW_STATE_DIR work for start and call", async () => {
  await using h = await tempHome();
  const state = `${h.home}/env-state`;
  const port = freePort();
  const token = "env-token-0123456789abcdef";
  const env = { GW_PORT: String(port), GW_TOKEN: token, GW_STATE_DIR: state };
  await using p = await GwProcess.start([], { home: h.home, env });
  assert.equal(p.port, port, `GW_PORT ignored:\n${p.output()}`);
  // GW_TOKEN given: nothing generated, nothing printed.
  assert.doesNotMatch(p.stdout, /token:/, p.output());
  await assert.rejects(
    Deno.stat(`${state}/token`),
    Deno.errors.NotFound,
    "a token file was generated",
  );
  // GW_STATE_DIR used, not ~/.gw.
  assert.ok((await Deno.stat(`${state}/gw.kv`)).isFile, "no gw.kv in GW_STATE_DIR");
  await assert.rejects(Deno.stat(`${h.home}/.gw`), Deno.errors.NotFound, "~/.gw was used");

  const ok = await gw(["call", "health"], {
    home: h.home,
    env: { GW_PORT: String(port), GW_TOKEN: token },
  });
  assert.equal(ok.code, 0, show(ok));
  const noToken = await gw(["call", "health"], { home: h.home, env: { GW_PORT: String(port) } });
  assert.equal(noToken.code, 3, show(noToken));
  const wrong = await gw(["call", "health"], {
    home: h.home,
    env: { GW_PORT: String(port), GW_TOKEN: "other-token-0123456789" },
  });
  assert.equal(wrong.code, 3, show(wrong));
  assert.match(wrong.stderr, /rejected the token from GW_TOKEN/, show(wrong));
});

Deno.test("cli: without --state-dir or GW_STATE_DIR, state lives in $HOME/.gw", async () => {
  await using h = await tempHome();
  await using p = await GwProcess.start(["--port", "0"], h);
  const st = await Deno.stat(`${h.home}/.gw/token`);
  assert.equal((st.mode ?? 0) & 0o777, 0o600);
  const r = await gw(["health"], { home: h.home, env: { GW_PORT: String(p.port) } });
  assert.equal(r.code, 0, show(r));
});

Deno.test("cli: start --token T means clients need T", async () => {
  await using h = await tempHome();
  const state = `${h.home}/state`;
  const token = "flag-token-0123456789abcdef";
  await using p = await GwProcess.start(["--port", "0", "--state-dir", state, "--token", token], h);
  assert.doesNotMatch(p.stdout, /token:/, p.output());
  const [ok, none, wrong] = await Promise.all([
    gw(["call", "health", "--url", p.url, "--token", token], h),
    gw(["call", "health", "--state-dir", state], {
      home: h.home,
      env: { GW_PORT: String(p.port) },
    }),
    gw(["call", "health", "--url", p.url, "--token", `${token}x`], h),
  ]);
  assert.equal(ok.code, 0, show(ok));
  assert.equal(none.code, 3, show(none));
  assert.match(none.stderr, /no token was found|token/i, show(none));
  assert.equal(wrong.code, 3, show(wrong));
  assert.match(wrong.stderr, /rejected the token/, show(wrong));
});

Deno.test("cli: --bind 0.0.0.0 with a short password refuses to start (exit 1, 16 characters)", async () => {
  await using h = await tempHome();
  const state = `${h.home}/state`;
  const r = await gw([
    "start",
    "--bind",
    "0.0.0.0",
    "--password",
    "short",
    "--port",
    "0",
    "--state-dir",
    state,
  ], h);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /16 characters/, show(r));
  assert.doesNotMatch(r.stdout, /listening on/, show(r));
});

Deno.test("cli: a broken gw.json makes start exit 1 naming the bad field", async () => {
  await using h = await tempHome();
  const cases: [string, string, RegExp][] = [
    ["wrong type", JSON.stringify({ gateway: { port: "nope" } }), /gateway\.port/],
    ["unknown field", JSON.stringify({ gateway: { prot: 1 } }), /prot/],
    ["bad enum", JSON.stringify({ logging: { level: "loud" } }), /logging\.level/],
    [
      "nested",
      JSON.stringify({ agents: { list: [{ id: "bad id!" }] } }),
      /agents\.list\.0\.id|agents\.list\[0\]\.id/,
    ],
    ["not JSON", "{ gateway: ", /not valid JSON|JSON/],
  ];
  const results = await Promise.all(cases.map(async ([name, text]) => {
    const state = `${h.home}/${name.replace(/\W/g, "-")}`;
    await Deno.mkdir(state, { recursive: true });
    await Deno.writeTextFile(`${state}/gw.json`, text);
    return gw(["start", "--port", "0", "--state-dir", state], h);
  }));
  cases.forEach(([name, , re], i) => {
    const r = results[i]!;
    assert.equal(r.code, 1, `${name}: ${show(r)}`);
    assert.match(r.stderr, re, `${name}: ${show(r)}`);
    assert.match(r.stderr, /gw\.json/, `${name}: should name the file: ${show(r)}`);
    assert.doesNotMatch(r.stdout, /listening on/, `${name}: ${show(r)}`);
  });
});

// ------------------------------------------------------------------ signals

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test({
    name: `cli: ${signal} to gw start sends shutdown, closes 1012 and exits 0 within 6 s`,
    ignore: Deno.build.os === "windows" && signal === "SIGTERM",
    fn: async () => {
      await using h = await tempHome();
      const state = `${h.home}/state`;
      await using p = await GwProcess.start(["--port", "0", "--state-dir", state], h);
      const token = (await Deno.readTextFile(`${state}/token`)).trim();
      const c = await connected(p.url, { auth: { token } });
      try {
        const shutdown = c.nextEvent("shutdown", 6_000);
        const { status, ms } = await p.signal(signal, 6_000);
        const ev = await shutdown;
        assert.equal(typeof ev.payload?.reason, "string", JSON.stringify(ev));
        const closed = await c.closed;
        assert.equal(closed.code, 1012, `close ${closed.code} ${closed.reason}`);
        // The shutdown event comes before the close.
        const idx = c.frames.findIndex((f) => f.type === "event" && f.event === "shutdown");
        assert.ok(idx >= 0);
        assert.equal(
          status.code,
          0,
          `exit ${status.code} (signal ${status.signal})\n${p.output()}`,
        );
        assert.ok(ms < 6_000, `took ${ms} ms`);
        assert.match(p.stderr, new RegExp(signal), p.output());
      } finally {
        await c.close();
      }
    },
  });
}

// A supervisor (or a script) may signal as soon as it reads "listening on".
// Signal handlers installed after that line leave a window where SIGTERM
// kills the process outright (exit 143, no shutdown event, no 1012). The race
// is narrow, hence the repetitions.
Deno.test("cli: SIGTERM right after the listening line still shuts down gracefully (20 starts)", async () => {
  await using h = await tempHome();
  const state = `${h.home}/state`;
  const codes: (number | string)[] = [];
  for (let i = 0; i < 20; i++) {
    await using p = await GwProcess.start(["--port", "0", "--state-dir", state], h);
    const { status } = await p.signal("SIGTERM", 6_000);
    codes.push(status.signal ? `${status.code}/${status.signal}` : status.code);
  }
  assert.deepEqual(
    codes,
    Array(20).fill(0),
    "exit statuses of gw start after an immediate SIGTERM",
  );
});

Deno.test("cli start: on a terminal, the first start shows the token once", async () => {
  await using h = await tempHome();
  const state = `${h.home}/state`;
  // `script` gives the child a pseudo-terminal, as a person's shell would.
  const inner = [Deno.execPath(), ...gwRunArgs("start", "--port", "0", "--state-dir", state)]
    .map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", inner, "/dev/null"],
    cwd: ROOT,
    env: await childEnv(h.home),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = Date.now() + 15_000;
  try {
    while (!/token: \S+[\s\S]*cat /.test(out)) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((r) =>
        timer = setTimeout(() => r("late"), deadline - Date.now())
      );
      const next = await Promise.race([reader.read(), late]);
      clearTimeout(timer);
      if (next === "late" || next.done) break;
      out += next.value;
    }
  } finally {
    child.kill("SIGTERM");
    await reader.cancel();
    await child.stderr.cancel();
    await child.stdin.close();
    await child.status;
  }
  const token = (await Deno.readTextFile(`${state}/token`)).trim();
  const shown = out.match(/token: (\S+)/)?.[1];
  assert.equal(shown, token, `the terminal should show the stored token:\n${out}`);
  assert.equal(out.split(token).length - 1, 1, `shown more than once:\n${out}`);
});
