/**
 * examples/chat.ts run the way a user runs it: a child `deno run` with only
 * `--allow-net=127.0.0.1` and its own environment variables, against a live
 * gateway whose model is the fake Anthropic Messages API. The same example,
 * bundled, also runs under Node (no `Deno` global there) when `node` is on
 * PATH.
 */
import assert from "node:assert/strict";
import { connected, startTestGateway } from "./_helpers.ts";
import { type FakeAnthropic, startFakeAnthropic } from "./_fake_anthropic.ts";
import { childEnv, type RunResult, show } from "./_cli.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const EXAMPLE = "examples/chat.ts";
/** The example's permissions, as examples/README.md gives them. */
const PERMS = ["--allow-net=127.0.0.1", "--allow-env=GW_URL,GW_TOKEN,GW_SESSION"];
const CHUNKS = ["Hello ", "from ", "the fake ", "model."];
const REPLY = CHUNKS.join("");

function agentConfig(fake: FakeAnthropic): Record<string, unknown> {
  return {
    agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
    models: { providers: { anthropic: { apiKey: "k-test", baseUrl: fake.url } } },
  };
}

/** Runs `cmd args` in the repo root with exactly `env`; killed after 60 s. */
async function run(cmd: string, args: string[], env: Record<string, string>): Promise<RunResult> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The example under Deno with its minimal permissions. */
async function runExample(
  env: Record<string, string>,
  ...args: string[]
): Promise<RunResult> {
  const home = await Deno.makeTempDir({ prefix: "gw-example-" });
  try {
    return await run(
      Deno.execPath(),
      ["run", "--no-prompt", ...PERMS, EXAMPLE, ...args],
      await childEnv(home, env),
    );
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
}

/** Checks what a successful run printed: the hello, the health answer, the streamed reply. */
function assertChatOutput(r: RunResult, gatewayVersion: string): void {
  assert.equal(r.code, 0, show(r));
  const [first, second] = r.stdout.split("\n");
  assert.equal(first, `connected: gw ${gatewayVersion}, protocol 4`, show(r));
  assert.match(second ?? "", /^health: ok, default agent main, \d+ sessions$/, show(r));
  // The reply is printed once, as it streamed, and then the final line.
  const m = /\n(.*)\n\[final\] (\d+) deltas, stop: (\S+), (\d+) tokens in, (\d+) out\n$/.exec(
    r.stdout,
  );
  assert.ok(m, `no reply and final line:\n${show(r)}`);
  assert.equal(m[1], REPLY, show(r));
  assert.ok(Number(m[2]) >= 2, `expected the reply in several deltas, got ${m[2]}:\n${show(r)}`);
  assert.equal(m[3], "stop");
  assert.equal(m[4], "10", "the fake reports 10 input tokens");
  assert.equal(m[5], "5", "the fake reports 5 output tokens");
  assert.equal(r.stderr, "", show(r));
}

/** A gateway whose model streams {@link CHUNKS} slowly enough for several deltas. */
async function gatewayWithModel() {
  const fake = await startFakeAnthropic({ apiKey: "k-test" });
  fake.script(() => ({ blocks: [{ type: "text", text: CHUNKS }], delayMs: 200 }));
  const t = await startTestGateway({ config: agentConfig(fake) });
  return {
    fake,
    t,
    async [Symbol.asyncDispose]() {
      await t.stop();
      await fake.close();
    },
  };
}

/** The text of the last user message the fake model was sent. */
function lastUserText(fake: FakeAnthropic): string {
  const body = fake.requests.at(-1)?.body as
    | { messages?: { role: string; content: string | { type: string; text?: string }[] }[] }
    | undefined;
  const user = body?.messages?.filter((m) => m.role === "user").at(-1);
  if (!user) return "";
  return typeof user.content === "string"
    ? user.content
    : user.content.map((b) => b.text ?? "").join("");
}

Deno.test("examples/chat.ts type-checks and imports nothing but ../mod.ts", async () => {
  const home = await Deno.makeTempDir({ prefix: "gw-example-" });
  try {
    const r = await run(Deno.execPath(), ["check", EXAMPLE], await childEnv(home));
    assert.equal(r.code, 0, show(r));
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
  const source = await Deno.readTextFile(`${ROOT}${EXAMPLE}`);
  const imports = [...source.matchAll(/^import[\s\S]*?from "([^"]+)";$/gm)].map((m) => m[1]);
  assert.deepEqual(imports, ["../mod.ts"]);
});

Deno.test("examples/chat.ts: health, then the chat reply streamed in deltas until final", async () => {
  await using env = await gatewayWithModel();
  const r = await runExample(
    { GW_URL: env.t.url, GW_TOKEN: env.t.token },
    "What",
    "is up?",
  );
  assertChatOutput(r, env.t.gw.version);
  assert.equal(env.fake.requests.length, 1, "one model call");
  assert.equal(lastUserText(env.fake), "What is up?");
});

Deno.test("examples/chat.ts: --url, --token and --session flags win over the environment", async () => {
  await using env = await gatewayWithModel();
  const r = await runExample(
    { GW_URL: "ws://127.0.0.1:1", GW_TOKEN: "wrong" },
    `--url=${env.t.url}`,
    "--token",
    env.t.token,
    "--session",
    "example",
    "hi",
  );
  assertChatOutput(r, env.t.gw.version);
  // The run went to the session named on the command line.
  const c = await connected(env.t.url);
  try {
    const res = await c.request("chat.history", { sessionKey: "example" });
    assert.ok(res.ok, JSON.stringify(res));
    assert.deepEqual(res.payload.messages.map((m: { role: string }) => m.role), [
      "user",
      "assistant",
    ]);
  } finally {
    await c.close();
  }
});

Deno.test("examples/chat.ts: a wrong token exits 1 with the gateway's reason", async () => {
  await using t = await startTestGateway();
  const r = await runExample({ GW_URL: t.url, GW_TOKEN: "not-the-token" }, "hi");
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /connect failed: .*\(INVALID_REQUEST\) \[AUTH_TOKEN_MISMATCH\]/, show(r));
  assert.equal(r.stdout, "", show(r));
});

Deno.test("examples/chat.ts: no gateway listening exits 3, no token exits 2", async () => {
  // A port that was free a moment ago: nothing listens there.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const down = await runExample({ GW_URL: `ws://127.0.0.1:${port}`, GW_TOKEN: "x" }, "hi");
  assert.equal(down.code, 3, show(down));
  assert.match(down.stderr, new RegExp(`cannot reach ws://127\\.0\\.0\\.1:${port}`), show(down));
  const usage = await runExample({}, "hi");
  assert.equal(usage.code, 2, show(usage));
  assert.match(usage.stderr, /no token: set GW_TOKEN/, show(usage));
});

/** `node` on PATH and the flags it needs for a global WebSocket, or null. */
async function nodeRuntime(): Promise<{ flags: string[] } | null> {
  for (const flags of [[], ["--experimental-websocket"]]) {
    try {
      const r = await run(
        "node",
        [...flags, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"],
        { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
      );
      if (r.code === 0) return { flags };
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
  }
  return null;
}

const node = await nodeRuntime();

Deno.test({
  name: "examples/chat.ts bundled runs under Node (no Deno global) against the same gateway",
  ignore: node === null,
  async fn() {
    await using env = await gatewayWithModel();
    const dir = await Deno.makeTempDir({ prefix: "gw-example-node-" });
    try {
      const bundle = `${dir}/chat.mjs`;
      const b = await run(
        Deno.execPath(),
        ["bundle", "--quiet", "--platform", "browser", "-o", bundle, EXAMPLE],
        await childEnv(dir),
      );
      assert.equal(b.code, 0, `deno bundle: ${show(b)}`);
      const r = await run("node", [...node!.flags, bundle, "Hi", "from", "Node"], {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        GW_URL: env.t.url,
        GW_TOKEN: env.t.token,
        NODE_NO_WARNINGS: "1",
      });
      assertChatOutput(r, env.t.gw.version);
      assert.equal(lastUserText(env.fake), "Hi from Node");
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
