/**
 * `gw doctor` end to end: the CLI in child processes run exactly as the
 * binary runs it (`deno run -P=gw main.ts doctor ...`, clean environment),
 * against real things: a `gw start` child, the fake Anthropic API and the
 * Bot API server of the tests (both on real sockets, speaking their real wire
 * formats), a foreign HTTP server on the gateway's port, a broken gw.kv.
 * One test per thing doctor claims to find.
 */
import assert from "node:assert/strict";
import { type AnyFrame, gwRunArgs } from "./_helpers.ts";
import { childEnv, json, runGw, show, tempDir } from "./_cli.ts";
import { startFakeAnthropic } from "./_fake_anthropic.ts";
import { TelegramApi } from "./_telegram_api.ts";

const gw = (home: string, args: string[], env: Record<string, string> = {}) =>
  runGw(home, args, { env, timeoutMs: 60_000 });

const ROOT = new URL("../", import.meta.url).pathname;
const ANTHROPIC_KEY = "sk-ant-test-good-key-0123456789";
const BOT_TOKEN = "123456:valid-token-abcdefghijklmnop";
const BAD_BOT_TOKEN = "654321:not-a-valid-token-zyxwvutsrq";
const IDS = ["config", "permissions", "port", "kv", "model", "telegram", "clock", "gateway"];

// ------------------------------------------------------------------ helpers

/** `gw doctor --state-dir dir --json`: the report, and the run. */
async function doctor(home: string, dir: string, extra: string[] = []) {
  const r = await gw(home, ["doctor", "--state-dir", dir, "--json", ...extra]);
  const report = json(r);
  assert.deepEqual(report.checks.map((c: AnyFrame) => c.id), IDS, show(r));
  assert.equal(r.code, report.ok ? 0 : 1, show(r));
  assert.equal(report.ok, !report.checks.some((c: AnyFrame) => c.status === "fail"), show(r));
  const byId = (id: string) => report.checks.find((c: AnyFrame) => c.id === id);
  return { r, report, byId };
}

/** A loopback port nothing listens on. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function writeConfig(dir: string, config: unknown): Promise<void> {
  await Deno.writeTextFile(`${dir}/gw.json`, JSON.stringify(config, null, 2), { mode: 0o600 });
  await Deno.chmod(`${dir}/gw.json`, 0o600);
}

/** `gw start --state-dir dir` in a child under umask 077 (as the systemd unit runs it). */
async function startGw(home: string, dir: string) {
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'umask 077 && exec "$0" "$@"',
      Deno.execPath(),
      ...gwRunArgs("start", "--state-dir", dir),
    ],
    cwd: ROOT,
    env: await childEnv(home),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let err = "";
  const pumps = [
    (async () => {
      for await (const s of child.stdout.pipeThrough(new TextDecoderStream())) out += s;
    })(),
    (async () => {
      for await (const s of child.stderr.pipeThrough(new TextDecoderStream())) err += s;
    })(),
  ];
  let exited = false;
  const status = child.status.then((s) => (exited = true, s));
  const stop = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
    }
    await status;
    await Promise.all(pumps);
  };
  const deadline = Date.now() + 30_000;
  while (!/listening on ws:\/\//.test(out)) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`gw start did not listen\n--- stdout\n${out}\n--- stderr\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { [Symbol.asyncDispose]: stop };
}

/** The fake Anthropic API answering every call with "OK". */
async function fakeAnthropic() {
  const fake = await startFakeAnthropic({ apiKey: ANTHROPIC_KEY });
  fake.script(() => ({ blocks: [{ type: "text", text: "OK" }] }));
  return fake;
}

// ------------------------------------------------------------------ tests

Deno.test("gw doctor: a clean state dir with a running gateway passes every check", async (t) => {
  await using home = await tempDir("gw-doctor-home-");
  await using state = await tempDir("gw-doctor-state-");
  await using fake = await fakeAnthropic();
  await using tg = await TelegramApi.start({ tokens: { [BOT_TOKEN]: { username: "doc_bot" } } });
  const port = closedPort();
  await writeConfig(state.path, {
    gateway: { port },
    agents: { defaults: { model: "anthropic/claude-test" } },
    models: { providers: { anthropic: { apiKey: ANTHROPIC_KEY, baseUrl: fake.url } } },
    channels: { telegram: { botToken: BOT_TOKEN, apiRoot: tg.apiRoot, dmPolicy: "pairing" } },
  });
  await using _gw = await startGw(home.path, state.path);

  await t.step("--json: all ok, exit 0", async () => {
    const { r, report, byId } = await doctor(home.path, state.path);
    for (const c of report.checks) assert.equal(c.status, "ok", `${c.id}: ${show(r)}`);
    assert.equal(r.code, 0);
    assert.match(byId("port").message, new RegExp(`127\\.0\\.0\\.1:${port}: a gw gateway answers`));
    assert.match(byId("kv").message, /opens: layout 1/);
    assert.match(byId("model").message, /anthropic\/claude-test: the key works/);
    assert.match(byId("telegram").message, /@doc_bot/);
    assert.match(
      byId("gateway").message,
      new RegExp(`ws://127\\.0\\.0\\.1:${port} \\(gw .*\\) answers health`),
    );
    // The model check was one real, tiny call with the configured key.
    const calls = fake.requests.filter((q) => q.path === "/v1/messages");
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.body.max_tokens, 1);
  });

  await t.step("the human view: a line per check, the verdicts counted", async () => {
    const r = await gw(home.path, ["doctor", "--state-dir", state.path]);
    assert.equal(r.code, 0, show(r));
    for (const id of IDS) assert.match(r.stdout, new RegExp(`^✓ ${id} +\\S`, "m"), show(r));
    assert.match(r.stdout, /^8 ok, 0 warnings, 0 failed$/m, show(r));
    for (const secret of [ANTHROPIC_KEY, BOT_TOKEN.split(":")[1]!]) {
      assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), "a secret was printed");
    }
  });

  await t.step("--url with a wrong --token: the gateway check fails and says why", async () => {
    const { r, byId } = await doctor(home.path, state.path, [
      ...["--url", `ws://127.0.0.1:${port}`, "--token", "wrong-token-0123456789abcdef"],
    ]);
    assert.equal(r.code, 1);
    assert.equal(byId("gateway").status, "fail", show(r));
    assert.match(byId("gateway").message, /cannot authenticate/, show(r));
  });
});

Deno.test("gw doctor: an invalid gw.json fails the config check, naming the field", async () => {
  await using home = await tempDir("gw-doctor-home-");
  await using state = await tempDir("gw-doctor-state-");
  await writeConfig(state.path, {
    gateway: { port: closedPort() },
    agents: { defaults: { maxTokens: "lots" } },
  });
  const { r, byId } = await doctor(home.path, state.path);
  assert.equal(r.code, 1);
  const c = byId("config");
  assert.equal(c.status, "fail", show(r));
  assert.match(c.message, /agents\.defaults\.maxTokens: /, show(r));
  assert.match(c.fix, /fix that field in .*gw\.json/);
  assert.equal(byId("model").status, "skip");
  assert.equal(byId("port").status, "ok", "the port is still read from the invalid file");

  await Deno.writeTextFile(`${state.path}/gw.json`, "{ not json");
  const { byId: again } = await doctor(home.path, state.path);
  assert.equal(again("config").status, "fail");
  assert.match(again("config").message, /not valid JSON/);
});

Deno.test("gw doctor: a world-readable token file (or state dir) fails with the chmod", async (t) => {
  await using home = await tempDir("gw-doctor-home-");
  await using state = await tempDir("gw-doctor-state-");
  await writeConfig(state.path, { gateway: { port: closedPort() } });
  await Deno.writeTextFile(`${state.path}/token`, "a-token-0123456789abcdef\n", { mode: 0o600 });

  await t.step("0600 in a 0700 dir: ok", async () => {
    const { byId } = await doctor(home.path, state.path);
    assert.equal(byId("permissions").status, "ok");
  });
  await t.step("token 0644: fail", async () => {
    await Deno.chmod(`${state.path}/token`, 0o644);
    const { r, byId } = await doctor(home.path, state.path);
    assert.equal(r.code, 1);
    const c = byId("permissions");
    assert.equal(c.status, "fail", show(r));
    assert.match(c.message, /token is 0644: readable by other users/);
    assert.equal(c.fix, `chmod 600 ${state.path}/token`);
    assert.ok(!r.stdout.includes("a-token-0123456789abcdef"), "the token was printed");
  });
  await t.step("state dir 0755: fail", async () => {
    await Deno.chmod(`${state.path}/token`, 0o600);
    await Deno.chmod(state.path, 0o755);
    const { byId } = await doctor(home.path, state.path);
    const c = byId("permissions");
    assert.equal(c.status, "fail");
    assert.match(c.message, /the state dir is 0755/);
    assert.equal(c.fix, `chmod 700 ${state.path}`);
  });
  await t.step("gw.kv 0644 behind a 0700 dir: a warning; behind a 0755 dir: fail", async () => {
    const kv = await Deno.openKv(`${state.path}/gw.kv`);
    kv.close();
    await Deno.chmod(`${state.path}/gw.kv`, 0o644);
    const open = await doctor(home.path, state.path);
    assert.equal(open.byId("permissions").status, "fail", show(open.r));
    assert.match(open.byId("permissions").message, /gw\.kv is 0644: readable by other users/);
    await Deno.chmod(state.path, 0o700);
    const shut = await doctor(home.path, state.path);
    const c = shut.byId("permissions");
    assert.equal(c.status, "warn", show(shut.r));
    assert.match(c.message, /gw\.kv is 0644.*: only the 0700 dir keeps/);
    assert.match(c.fix, new RegExp(`^chmod 600 ${state.path}/gw\\.kv`));
  });
});

Deno.test("gw doctor: the port taken by a server that is not gw fails the port check", async () => {
  await using home = await tempDir("gw-doctor-home-");
  await using state = await tempDir("gw-doctor-state-");
  await using other = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("nginx says no", { status: 404, headers: { server: "nginx" } }),
  );
  await writeConfig(state.path, { gateway: { port: other.addr.port } });
  const { r, byId } = await doctor(home.path, state.path);
  assert.equal(r.code, 1);
  const c = byId("port");
  assert.equal(c.status, "fail", show(r));
  assert.match(
    c.message,
    /is taken by something that is not gw: GET \/healthz answered 404 \(server: nginx\)/,
  );
  assert.match(c.fix, /gateway\.port/);
  assert.equal(byId("gateway").status, "fail", show(r));
});

Deno.test("gw doctor: a gw.kv that is a directory, or garbage, fails the kv check", async (t) => {
  await using home = await tempDir("gw-doctor-home-");
  await using state = await tempDir("gw-doctor-state-");
  await writeConfig(state.path, { gateway: { port: closedPort() } });
  const kv = `${state.path}/gw.kv`;
  await t.step("a directory", async () => {
    await Deno.mkdir(kv);
    const { r, byId } = await doctor(home.path, state.path);
    assert.equal(r.code, 1);
    assert.equal(byId("kv").status, "fail", show(r));
    assert.match(byId("kv").message, /gw\.kv is a directory, not a KV store/);
    assert.match(byId("kv").fix, new RegExp(`mv ${kv} ${kv}\\.broken`));
    await Deno.remove(kv);
  });
  await t.step("a garbage file", async () => {
    const garbage = "this is not a database ".repeat(200);
    await Deno.writeTextFile(kv, garbage, { mode: 0o600 });
    const { r, byId } = await doctor(home.path, state.path);
    assert.equal(r.code, 1);
    assert.equal(byId("kv").status, "fail", show(r));
    assert.match(byId("kv").message, /cannot open .*gw\.kv: .*not a database/);
    assert.equal(await Deno.readTextFile(kv), garbage, "doctor left the file as it was");
  });
  await t.step("a real one is ok", async () => {
    await Deno.remove(kv);
    const store = await Deno.openKv(kv);
    await store.set(["gw", "meta"], { schemaVersion: 1, createdAt: Date.now(), gwVersion: "t" });
    store.close();
    const { byId } = await doctor(home.path, state.path);
    assert.equal(byId("kv").status, "ok");
    assert.match(byId("kv").message, /layout 1, created .* by gw t/);
  });
});

Deno.test("gw doctor: a bad Anthropic key fails the model check after one real call", async () => {
  await using home = await tempDir("gw-doctor-home-");
  await using state = await tempDir("gw-doctor-state-");
  await using fake = await fakeAnthropic();
  await writeConfig(state.path, {
    gateway: { port: closedPort() },
    models: { providers: { anthropic: { apiKey: "sk-ant-wrong-key-000000", baseUrl: fake.url } } },
  });
  const { r, byId } = await doctor(home.path, state.path);
  assert.equal(r.code, 1);
  const c = byId("model");
  assert.equal(c.status, "fail", show(r));
  assert.match(c.message, /anthropic\/claude-sonnet-4-6: the key was refused/);
  assert.match(c.fix, /gw setup/);
  const calls = fake.requests.filter((q) => q.path === "/v1/messages");
  assert.equal(calls.length, 1);
  assert.ok(!r.stdout.includes("sk-ant-wrong-key-000000"), "the key was printed");
  // The fake's own Date header is this clock's: the clock check compares with it.
  assert.equal(byId("clock").status, "ok", show(r));
  assert.match(byId("clock").message, /127\.0\.0\.1:\d+'s clock/);
});

Deno.test("gw doctor: no key is a warning, not a failure", async () => {
  await using home = await tempDir("gw-doctor-home-");
  await using state = await tempDir("gw-doctor-state-");
  await writeConfig(state.path, { gateway: { port: closedPort() } });
  const { r, byId } = await doctor(home.path, state.path);
  assert.equal(byId("model").status, "warn", show(r));
  assert.match(byId("model").message, /no API key for anthropic\/claude-sonnet-4-6/);
  assert.equal(byId("gateway").status, "warn", "a gateway that is not running is a warning");
  assert.equal(byId("kv").status, "skip");
  assert.equal(r.code, 0, show(r));
});

Deno.test("gw doctor: a bad Telegram token fails the telegram check", async () => {
  await using home = await tempDir("gw-doctor-home-");
  await using state = await tempDir("gw-doctor-state-");
  await using tg = await TelegramApi.start({ tokens: [BOT_TOKEN] });
  await writeConfig(state.path, {
    gateway: { port: closedPort() },
    channels: { telegram: { botToken: BAD_BOT_TOKEN, apiRoot: tg.apiRoot } },
  });
  const { r, byId } = await doctor(home.path, state.path);
  assert.equal(r.code, 1);
  const c = byId("telegram");
  assert.equal(c.status, "fail", show(r));
  assert.match(c.message, /401|Unauthorized|rejected|refused/i);
  assert.match(c.fix, /@BotFather/);
  assert.ok(tg.calls.some((call) => call.token === BAD_BOT_TOKEN), "getMe reached the Bot API");
  assert.ok(!r.stdout.includes(BAD_BOT_TOKEN.split(":")[1]!), "the token was printed");
});

Deno.test("gw doctor: a provider whose Date is 10 minutes off fails the clock check", async () => {
  await using home = await tempDir("gw-doctor-home-");
  await using state = await tempDir("gw-doctor-state-");
  const seen: string[] = [];
  await using skewed = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen.push(`${req.method} ${new URL(req.url).pathname}`);
    return Response.json(
      { type: "error", error: { type: "not_found_error", message: "not here" } },
      { status: 404, headers: { date: new Date(Date.now() + 10 * 60_000).toUTCString() } },
    );
  });
  await writeConfig(state.path, {
    gateway: { port: closedPort() },
    models: {
      providers: {
        anthropic: { apiKey: ANTHROPIC_KEY, baseUrl: `http://127.0.0.1:${skewed.addr.port}` },
      },
    },
  });
  const { r, byId } = await doctor(home.path, state.path);
  assert.equal(r.code, 1);
  const c = byId("clock");
  assert.equal(c.status, "fail", show(r));
  const m = /this clock is (\d+) s behind 127\.0\.0\.1:\d+'s/.exec(c.message);
  assert.ok(m, c.message);
  assert.ok(Math.abs(Number(m[1]) - 600) <= 2, c.message);
  assert.match(c.fix, /time sync/);
  assert.ok(seen.includes("GET /"), `the clock probe asked the provider: ${seen.join(", ")}`);
});
