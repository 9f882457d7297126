/**
 * Wire compatibility with OpenClaw's real client: the `openclaw` CLI from npm
 * (on Node 24) talks to a real gw over loopback. The CLI runs as it does for
 * a person (`openclaw gateway call … --url … --token … --json`), in an
 * isolated home, through a recording proxy that notes what each run sent in
 * its `connect` (the URL path names the run).
 *
 * Needs the install in `$GW_OPENCLAW_DIR` (default `~/.cache/gw-compat`),
 * which `.ci/run` creates; without it the test is reported as ignored, under a
 * name that says so. See docs/compat.md for what works and what differs.
 *
 * The agent path runs against a fake Anthropic API (tests/_fake_anthropic.ts):
 * `openclaw agent` (text, `--json`, a provider 401, `--model`, Ctrl-C), then,
 * once those turns are done, the commands that read or change what they left
 * behind (`chat.history`, `agent.wait`, `gateway usage-cost`, `sessions
 * compact`, `sessions delete`).
 *
 * Each CLI run costs 1-2.5 s of Node start-up, so the runs go concurrently
 * (the second group starts as soon as the agent turns have ended) and the
 * assertions come afterwards as steps.
 */
import assert from "node:assert/strict";
import { startTestGateway } from "./_helpers.ts";
import { startFakeAnthropic } from "./_fake_anthropic.ts";
import {
  type CliResult,
  findOpenclaw,
  makeOpenclawHome,
  type Openclaw,
  openclawDir,
  pool,
  RecordingProxy,
  runOpenclaw,
  type RunOpenclawOptions,
} from "./_openclaw.ts";
import { VERSION } from "../lib/version.ts";

const oc = findOpenclaw();

if (!oc) {
  Deno.test({
    name: "openclaw CLI not installed: run .ci/run or see docs/compat.md",
    ignore: true,
    fn() {},
  });
  console.error(`compat_test: no usable openclaw install in ${openclawDir()} (GW_OPENCLAW_DIR)`);
} else {
  Deno.test(`openclaw ${oc.version} CLI (node ${oc.nodeVersion}) against gw`, (t) => compat(t, oc));
}

/** The `connect` params one run sent, asserting there was exactly one. */
function connectOf(proxy: RecordingProxy, label: string) {
  const seen = proxy.seen(label);
  assert.equal(seen.length, 1, `${label}: expected one connect, saw ${JSON.stringify(seen)}`);
  // deno-lint-ignore no-explicit-any
  return seen[0] as any;
}

/** Asserts the exit code, with the run's output in the message when it differs. */
function exited(r: CliResult, code: number): void {
  assert.equal(
    r.code,
    code,
    `openclaw ${r.args.join(" ")} exited ${r.code}\nstdout: ${r.stdout.slice(0, 2000)}\n` +
      `stderr: ${r.stderr.slice(0, 2000)}`,
  );
}

/** The text of the last message of an Anthropic request body. */
function lastMessageText(body: Record<string, unknown>): string {
  const msgs = body.messages as { content: unknown }[] | undefined;
  return JSON.stringify(msgs?.at(-1)?.content ?? "");
}

/** What the fake model answers. */
const REPLY = "Hello from the fake model";
const API_KEY = "sk-ant-fake-compat";

/** One CLI run of the test. */
interface Run {
  /** The arguments, or a function computing them once the run starts (after the agent turns). */
  args: string[] | (() => string[]);
  env?: Record<string, string>;
  home?: string;
  /** An agent turn: the runs marked `afterTurns` wait for all of these. */
  turn?: boolean;
  afterTurns?: boolean;
  interrupt?: RunOpenclawOptions["interrupt"];
}

async function compat(t: Deno.TestContext, oc: Openclaw): Promise<void> {
  await using fake = await startFakeAnthropic({ apiKey: API_KEY });
  const hangStarted = Promise.withResolvers<void>();
  // The last user message picks the answer: FAIL401 → the API's 401, HANG → a
  // stream that never ends (until gw goes away), anything else → REPLY in two chunks.
  fake.script((body) => {
    const last = lastMessageText(body);
    if (last.includes("FAIL401")) {
      return { error: { status: 401, type: "authentication_error", message: "invalid x-api-key" } };
    }
    if (last.includes("HANG")) {
      hangStarted.resolve();
      return { hang: true };
    }
    return {
      blocks: [{ type: "text", text: ["Hello from ", "the fake model"] }],
      usage: { input_tokens: 12, output_tokens: 5 },
    };
  });
  await using gw = await startTestGateway({
    version: VERSION,
    config: {
      agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
      models: { providers: { anthropic: { apiKey: API_KEY, baseUrl: fake.url } } },
    },
  });
  await using proxy = new RecordingProxy(gw.url);
  const home = await makeOpenclawHome();
  // `openclaw status` finds its gateway only through a remote client config (WIRE.md §9).
  const remoteHome = await makeOpenclawHome({
    gateway: {
      mode: "remote",
      remote: { transport: "direct", url: proxy.url("status-json"), token: gw.token },
    },
  });
  try {
    const T = gw.token;
    const to = (label: string) => ["--url", proxy.url(label), "--token", T];
    const via = (label: string) => [...to(label), "--json"];
    // `openclaw agent` has no --url/--token: it takes the gateway from the environment.
    const gwEnv = (label: string) => ({
      OPENCLAW_GATEWAY_URL: proxy.url(label),
      OPENCLAW_GATEWAY_TOKEN: T,
    });
    /** The idempotencyKey (= runId) the `agent` run `label` sent. */
    const runIdOf = (label: string): string =>
      (proxy.calls(label, "agent")[0]?.params as { idempotencyKey: string }).idempotencyKey;
    const runs: Record<string, Run> = {
      // The agent turns first: the second group waits for them.
      "agent-text": {
        args: ["agent", "--message", "Say hello (text)"],
        env: gwEnv("agent-text"),
        turn: true,
      },
      "agent-json": {
        args: ["agent", "--message", "Say hello (json)", "--json"],
        env: gwEnv("agent-json"),
        turn: true,
      },
      "agent-401": {
        args: ["agent", "--session-key", "agent:main:errors", "--message", "FAIL401 text"],
        env: gwEnv("agent-401"),
        turn: true,
      },
      "agent-401-json": {
        args: [
          "agent",
          "--session-key",
          "agent:main:errors",
          "--message",
          "FAIL401 json",
          "--json",
        ],
        env: gwEnv("agent-401-json"),
        turn: true,
      },
      // --model switches the CLI to gateway-client/backend with operator.admin.
      "agent-model": {
        args: [
          "agent",
          "--session-key",
          "agent:main:scratch",
          "--model",
          "anthropic/claude-haiku-4-5",
          "--message",
          "Say hello (haiku)",
          "--json",
        ],
        env: gwEnv("agent-model"),
        turn: true,
      },
      // Levels beyond xhigh and "no timeout", as the CLI's help offers them.
      "agent-thinking": {
        args: [
          "agent",
          "--session-key",
          "agent:main:think",
          "--message",
          "Say hello (thinking)",
          "--thinking",
          "adaptive",
          "--timeout",
          "0",
          "--json",
        ],
        env: gwEnv("agent-thinking"),
        turn: true,
      },
      // Ctrl-C mid-turn: the CLI sends chat.abort.
      "agent-interrupt": {
        args: ["agent", "--session-key", "agent:main:slow", "--message", "HANG until aborted"],
        env: gwEnv("agent-interrupt"),
        turn: true,
        // Once gw has accepted the run and the model stream is open.
        interrupt: {
          when: Promise.all([proxy.answered("agent-interrupt", "agent"), hangStarted.promise]),
        },
      },
      "gateway-health": { args: ["gateway", "health", ...via("gateway-health")] },
      "call-status": { args: ["gateway", "call", "status", ...via("call-status")] },
      "call-config-get": { args: ["gateway", "call", "config.get", ...via("call-config-get")] },
      "call-system-presence": {
        args: ["gateway", "call", "system-presence", ...via("call-system-presence")],
      },
      "call-logs-tail": {
        args: ["gateway", "call", "logs.tail", "--params", '{"limit":5}', ...via("call-logs-tail")],
      },
      "call-unknown": { args: ["gateway", "call", "no.such.method", ...via("call-unknown")] },
      "logs": { args: ["logs", "--limit", "3", ...via("logs")] },
      "system-presence": { args: ["system", "presence", ...via("system-presence")] },
      // No --url: the gateway comes from the environment (WIRE.md §9).
      "env-health": {
        args: ["health", "--json"],
        env: { OPENCLAW_GATEWAY_URL: proxy.url("env-health"), OPENCLAW_GATEWAY_TOKEN: T },
      },
      // Text output reads health.eventLoop.reasons and sessions.path.
      "health-text": {
        args: ["health"],
        env: { OPENCLAW_GATEWAY_URL: proxy.url("health-text"), OPENCLAW_GATEWAY_TOKEN: T },
      },
      // Needs hello-ok.features.capabilities "published-model-catalog".
      "models-list": {
        args: ["models", "list", "--json"],
        env: { OPENCLAW_GATEWAY_URL: proxy.url("models-list"), OPENCLAW_GATEWAY_TOKEN: T },
      },
      // Reads status.sessions.byAgent.
      "status-json": { args: ["status", "--json"], home: remoteHome },
      // A core method gw lacks, asked for with operator.read only.
      // The scheduler as OpenClaw's CLI drives it: add (before the "after turns" runs), then list.
      "cron-add": {
        args: [
          "cron",
          "add",
          "compat job",
          "--cron",
          "0 8 * * *",
          "--tz",
          "Asia/Shanghai",
          "--system-event",
          "good morning",
          "--wake",
          "next-heartbeat",
          ...via("cron-add"),
        ],
        turn: true,
      },
      "cron-list": { args: ["cron", "list", ...via("cron-list")], afterTurns: true },
      // Straight to gw, so the close code and timing are gw's own.
      "wrong-token": {
        args: [
          "gateway",
          "health",
          "--url",
          gw.url,
          "--token",
          "wrong-token-0123456789abcdef",
          "--json",
        ],
      },
      // After the turns: what they left behind.
      "chat-history": {
        args: [
          "gateway",
          "call",
          "chat.history",
          "--params",
          '{"sessionKey":"main"}',
          ...via("chat-history"),
        ],
        afterTurns: true,
      },
      "agent-wait": {
        args: () => [
          "gateway",
          "call",
          "agent.wait",
          "--params",
          JSON.stringify({ runId: runIdOf("agent-text"), timeoutMs: 1000 }),
          ...via("agent-wait"),
        ],
        afterTurns: true,
      },
      "usage-cost": {
        args: ["gateway", "usage-cost", "--days", "7", ...to("usage-cost")],
        afterTurns: true,
      },
      "usage-cost-json": {
        args: ["gateway", "usage-cost", "--days", "7", ...via("usage-cost-json")],
        afterTurns: true,
      },
      "usage-status": {
        args: ["gateway", "call", "usage.status", ...via("usage-status")],
        afterTurns: true,
      },
      // gw summarises the older messages with the model and keeps the last 2.
      "sessions-compact": {
        args: [
          "sessions",
          "compact",
          "agent:main:main",
          "--max-lines",
          "2",
          ...to("sessions-compact"),
        ],
        afterTurns: true,
      },
      "sessions-delete": {
        args: ["sessions", "delete", "agent:main:scratch", "--yes", ...via("sessions-delete")],
        afterTurns: true,
      },
      // sessions.patch {archived:true} with write scope.
      "sessions-archive": {
        args: ["sessions", "archive", "agent:main:think", ...to("sessions-archive")],
        afterTurns: true,
      },
    };
    const labels = Object.keys(runs);
    const turnsDone = Promise.withResolvers<void>();
    let turnsLeft = labels.filter((l) => runs[l]!.turn).length;
    const results = await pool(
      3,
      labels.map((l) => async () => {
        const run = runs[l]!;
        if (run.afterTurns) await turnsDone.promise;
        try {
          return await runOpenclaw(
            oc,
            run.home ?? home,
            typeof run.args === "function" ? run.args() : run.args,
            {
              ...(run.env ? { env: run.env } : {}),
              ...(run.interrupt ? { interrupt: run.interrupt } : {}),
            },
          );
        } finally {
          if (run.turn && --turnsLeft === 0) turnsDone.resolve();
        }
      }),
    );
    const r = Object.fromEntries(labels.map((l, i) => [l, results[i]!]));
    console.log(
      `openclaw runs (ms): ${labels.map((l) => `${l}=${r[l]!.ms}`).join(" ")}`,
    );

    await t.step("the CLI connects as cli/cli, protocol 4, least privilege, no device", () => {
      for (
        const label of [
          "gateway-health",
          "call-status",
          "call-config-get",
          "call-system-presence",
          "call-logs-tail",
          "logs",
          "system-presence",
        ]
      ) {
        const c = connectOf(proxy, label);
        assert.equal(c.client.id, "cli", label);
        assert.equal(c.client.mode, "cli", label);
        assert.equal(c.minProtocol, 4, label);
        assert.equal(c.maxProtocol, 4, label);
        assert.equal(c.role, "operator", label);
        assert.deepEqual(c.scopes, ["operator.read"], label);
        assert.equal(c.device, undefined, label);
      }
      // An unknown method makes the CLI ask for its whole operator set.
      assert.ok(connectOf(proxy, "call-unknown").scopes.includes("operator.admin"));
    });

    await t.step("openclaw gateway health", () => {
      const x = r["gateway-health"]!;
      exited(x, 0);
      assert.equal(x.json.ok, true);
      assert.equal(x.json.defaultAgentId, "main");
      assert.equal(x.json.agents[0].agentId, "main");
    });

    await t.step(
      "openclaw health, gateway from OPENCLAW_GATEWAY_URL (gateway-client/backend)",
      () => {
        const x = r["env-health"]!;
        exited(x, 0);
        assert.equal(x.json.ok, true);
        const c = connectOf(proxy, "env-health");
        assert.equal(c.client.id, "gateway-client");
        assert.equal(c.client.mode, "backend");
        assert.deepEqual(c.scopes, ["operator.read"]);
      },
    );

    await t.step("openclaw gateway call status", () => {
      const x = r["call-status"]!;
      exited(x, 0);
      assert.equal(x.json.runtimeVersion, VERSION);
      assert.ok(x.json.connections.operators >= 1);
      assert.equal(x.json.heartbeat.defaultAgentId, "main");
    });

    await t.step("openclaw gateway call config.get", () => {
      const x = r["call-config-get"]!;
      exited(x, 0);
      assert.match(x.json.hash, /^[0-9a-f]{64}$/);
      assert.equal(x.json.path, `${gw.stateDir}/gw.json`);
      assert.equal(x.json.config.gateway.bind, "127.0.0.1");
    });

    await t.step("openclaw gateway call system-presence and openclaw system presence", () => {
      for (const label of ["call-system-presence", "system-presence"]) {
        const x = r[label]!;
        exited(x, 0);
        assert.ok(Array.isArray(x.json), label);
        const self = x.json.find((e: { mode?: string }) => e.mode === "gateway");
        assert.ok(self, `${label}: no gateway entry in ${x.stdout}`);
        assert.equal(self.version, VERSION);
      }
    });

    await t.step("openclaw gateway call logs.tail", () => {
      const x = r["call-logs-tail"]!;
      exited(x, 0);
      assert.equal(x.json.file, `${gw.stateDir}/logs/gw.log`);
      assert.ok(Array.isArray(x.json.lines) && x.json.lines.length <= 5);
      assert.equal(typeof x.json.cursor, "number");
    });

    await t.step("openclaw logs --limit 3 (logs.tail {limit, maxBytes}, NDJSON out)", () => {
      const x = r["logs"]!;
      exited(x, 0);
      const lines = x.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(lines[0].type, "meta");
      assert.equal(lines[0].file, `${gw.stateDir}/logs/gw.log`);
      assert.ok(lines.slice(1).every((l) => l.type === "log"));
      assert.ok(lines.length - 1 <= 3);
      // gw writes the field names the CLI parses: time, level, message.
      assert.ok(lines.slice(1).every((l) => typeof l.message === "string" && l.message !== ""));
    });

    await t.step("openclaw health (text) renders event loop and sessions", () => {
      const x = r["health-text"]!;
      exited(x, 0);
      assert.doesNotMatch(x.stdout + x.stderr, /Cannot read properties|undefined/);
    });

    await t.step("openclaw models list --json (published-model-catalog)", () => {
      const x = r["models-list"]!;
      exited(x, 0);
      assert.doesNotMatch(x.stderr, /does not support required capability/);
    });

    await t.step("openclaw status --json (sessions.byAgent)", () => {
      const x = r["status-json"]!;
      exited(x, 0);
      assert.doesNotMatch(x.stderr, /Cannot read properties/);
    });

    await t.step(
      "openclaw cron add and cron list: the job, its schedule and next run",
      () => {
        const add = r["cron-add"]!;
        exited(add, 0);
        const sent = proxy.calls("cron-add", "cron.add")[0]!.params as Record<string, unknown>;
        assert.deepEqual(sent.schedule, { kind: "cron", expr: "0 8 * * *", tz: "Asia/Shanghai" });
        assert.deepEqual(sent.payload, { kind: "systemEvent", text: "good morning" });
        assert.equal(sent.sessionTarget, "main");
        assert.equal(add.json.name, "compat job");
        // 08:00 in Shanghai is 00:00 UTC.
        assert.equal(new Date(add.json.state.nextRunAtMs).getUTCHours(), 0);
        const list = r["cron-list"]!;
        exited(list, 0);
        const jobs = (list.json.jobs ?? []) as { id: string; name: string }[];
        assert.ok(jobs.some((j) => j.id === add.json.id && j.name === "compat job"), list.stdout);
      },
    );

    await t.step("an unknown method is the CLI's gateway_request_error, exit 1", () => {
      const x = r["call-unknown"]!;
      exited(x, 1);
      assert.equal(x.json.ok, false);
      assert.equal(x.json.error.type, "gateway_request_error");
      assert.equal(x.json.error.code, "INVALID_REQUEST");
      assert.match(x.json.error.message, /unknown method: no\.such\.method/);
    });

    await t.step("a wrong token fails with a readable error, exit 1", () => {
      const x = r["wrong-token"]!;
      exited(x, 1);
      assert.equal(x.json.ok, false);
      assert.equal(x.json.error.code, "INVALID_REQUEST");
      assert.equal(x.json.error.details.code, "AUTH_TOKEN_MISMATCH");
      assert.equal(x.json.error.details.recommendedNextStep, "update_auth_credentials");
      assert.match(x.stderr, /gateway connect failed: .*token mismatch/);
    });

    await t.step("openclaw agent: agents.list (read), then agent (write), as cli/cli", () => {
      const seen = proxy.seen("agent-text");
      assert.deepEqual(seen.map((c) => (c as { scopes: string[] }).scopes), [
        ["operator.read"],
        ["operator.write"],
      ]);
      for (const c of seen as { client: { id: string; mode: string } }[]) {
        assert.equal(c.client.id, "cli");
        assert.equal(c.client.mode, "cli");
      }
      assert.deepEqual(proxy.calls("agent-text").map((c) => c.method), ["agents.list", "agent"]);
      const sent = proxy.calls("agent-text", "agent")[0]!;
      const { idempotencyKey, ...rest } = sent.params as Record<string, unknown>;
      assert.match(String(idempotencyKey), /^[0-9a-f-]{36}$/);
      // No sessionKey: the CLI names the sole agent from agents.list; gw picks agent:main:main.
      assert.deepEqual(rest, {
        message: "Say hello (text)",
        agentId: "main",
        deliver: false,
        timeout: 600,
      });
      // Two answers with the same id: accepted, then the final payload.
      const [accepted, final] = sent.responses;
      assert.equal(sent.responses.length, 2);
      assert.equal(accepted!.ok, true);
      const a = accepted!.payload as Record<string, unknown>;
      assert.equal(a.status, "accepted");
      assert.equal(a.runId, idempotencyKey);
      assert.equal(a.sessionKey, "agent:main:main");
      assert.equal(a.agentId, "main");
      assert.equal(typeof a.acceptedAt, "number");
      assert.equal(final!.ok, true);
      assert.equal((final!.payload as { status: string }).status, "ok");
    });

    await t.step("openclaw agent --message prints the reply, exit 0", () => {
      const x = r["agent-text"]!;
      exited(x, 0);
      assert.equal(x.stdout.trim(), REPLY);
    });

    await t.step("openclaw agent --json prints the final payload", () => {
      const x = r["agent-json"]!;
      exited(x, 0);
      const j = x.json;
      assert.equal(j.runId, runIdOf("agent-json"));
      assert.equal(j.sessionKey, "agent:main:main");
      assert.equal(j.agentId, "main");
      assert.equal(j.status, "ok");
      assert.equal(j.summary, "completed");
      assert.deepEqual(j.result.payloads, [{ text: REPLY, mediaUrl: null }]);
      const meta = j.result.meta;
      assert.equal(typeof meta.durationMs, "number");
      assert.equal(meta.agentMeta.provider, "anthropic");
      assert.equal(meta.agentMeta.model, "claude-sonnet-4-6");
      // The same session as the text run's turn (both went to agent:main:main).
      const textFinal = proxy.calls("agent-text", "agent")[0]!.responses.at(-1)!.payload as {
        result: { meta: { agentMeta: { sessionId: string } } };
      };
      assert.equal(meta.agentMeta.sessionId, textFinal.result.meta.agentMeta.sessionId);
      assert.deepEqual(meta.agentMeta.usage, {
        input: 12,
        output: 5,
        cacheRead: 0,
        cacheWrite: 0,
        total: 17,
      });
      assert.ok(meta.agentMeta.costUsd > 0);
    });

    await t.step("openclaw agent --model: gateway-client/backend, operator.admin", () => {
      const x = r["agent-model"]!;
      exited(x, 0);
      assert.equal(x.json.sessionKey, "agent:main:scratch");
      assert.equal(x.json.result.meta.agentMeta.model, "claude-haiku-4-5");
      assert.deepEqual(x.json.result.payloads, [{ text: REPLY, mediaUrl: null }]);
      const c = proxy.seen("agent-model") as {
        client: { id: string; mode: string };
        scopes: string[];
      }[];
      // --session-key with an agent: prefix needs no agents.list.
      assert.equal(c.length, 1);
      assert.equal(c[0]!.client.id, "gateway-client");
      assert.equal(c[0]!.client.mode, "backend");
      assert.deepEqual(c[0]!.scopes, ["operator.admin"]);
      const sent = proxy.calls("agent-model", "agent")[0]!.params as Record<string, unknown>;
      assert.equal(sent.model, "anthropic/claude-haiku-4-5");
      assert.equal(sent.sessionKey, "agent:main:scratch");
    });

    await t.step("a provider 401: exit 1 with gw's message (text and --json)", () => {
      const msg = "The API key for anthropic was rejected (401: invalid x-api-key)";
      const x = r["agent-401"]!;
      exited(x, 1);
      assert.equal(x.stdout, "");
      assert.equal(x.stderr.trim(), msg);
      const final = proxy.calls("agent-401", "agent")[0]!.responses.at(-1)!;
      assert.equal(final.ok, false);
      assert.deepEqual(final.payload, {
        runId: runIdOf("agent-401"),
        status: "error",
        summary: msg,
      });
      const j = r["agent-401-json"]!;
      exited(j, 1);
      assert.deepEqual(j.json, {
        ok: false,
        runId: runIdOf("agent-401-json"),
        origin: "gateway",
        error: { type: "cli_error", message: msg },
      });
    });

    await t.step("Ctrl-C: the CLI sends chat.abort, gw aborts the run, exit 130", async () => {
      const x = r["agent-interrupt"]!;
      exited(x, 130);
      const runId = runIdOf("agent-interrupt");
      const abort = proxy.calls("agent-interrupt", "chat.abort");
      assert.equal(abort.length, 1, JSON.stringify(proxy.calls("agent-interrupt")));
      // agentId comes from the accepted answer; the CLI leaves it out if Ctrl-C came first.
      const { agentId, ...target } = abort[0]!.params as Record<string, unknown>;
      assert.deepEqual(target, { sessionKey: "agent:main:slow", runId });
      assert.ok(agentId === undefined || agentId === "main", `agentId ${agentId}`);
      assert.deepEqual(abort[0]!.responses[0]!.payload, {
        ok: true,
        aborted: true,
        runIds: [runId],
      });
      // The model stream was cancelled, not left running.
      const req = fake.requests.find((q) => lastMessageText(q.body).includes("HANG"));
      assert.ok(req, "the fake never saw the HANG turn");
      assert.equal(await req.ended, "disconnected");
    });

    await t.step("openclaw gateway call chat.history shows the turns", () => {
      const x = r["chat-history"]!;
      exited(x, 0);
      assert.equal(x.json.sessionKey, "agent:main:main");
      const texts = (x.json.messages as { role: string; content: unknown }[]).map((m) => [
        m.role,
        typeof m.content === "string"
          ? m.content
          : (m.content as { type: string; text?: string }[]).map((b) => b.text ?? "").join(""),
      ]);
      for (const said of ["Say hello (text)", "Say hello (json)"]) {
        const i = texts.findIndex(([role, text]) => role === "user" && text === said);
        assert.ok(i >= 0, `no user message ${said} in ${JSON.stringify(texts)}`);
        assert.deepEqual(texts[i + 1], ["assistant", REPLY]);
      }
    });

    await t.step("openclaw gateway call agent.wait on the finished run", () => {
      const x = r["agent-wait"]!;
      exited(x, 0);
      assert.equal(x.json.runId, runIdOf("agent-text"));
      assert.equal(x.json.status, "ok");
      assert.equal(x.json.stopReason, "stop");
      assert.ok(x.json.endedAt >= x.json.startedAt);
    });

    await t.step("openclaw gateway usage-cost --days 7 (text and --json)", () => {
      const j = r["usage-cost-json"]!;
      exited(j, 0);
      assert.deepEqual(proxy.calls("usage-cost-json", "usage.cost")[0]!.params, { days: 7 });
      assert.equal(j.json.days, 7);
      assert.equal(j.json.daily.length, 7);
      // Three answered turns of 17 tokens each, at least (compaction may add its own).
      assert.ok(j.json.totals.totalTokens >= 51, JSON.stringify(j.json.totals));
      assert.ok(j.json.totals.totalCost > 0);
      const x = r["usage-cost"]!;
      exited(x, 0);
      assert.match(x.stdout, /^Usage cost \(7 days\)$/m);
      assert.match(x.stdout, /^Total: \$\d+\.\d+ · \d+ tokens$/m);
      assert.match(x.stdout, /^Latest day: \d{4}-\d{2}-\d{2} · \$\d+\.\d+ · \d+ tokens$/m);
    });

    await t.step("openclaw gateway call usage.status", () => {
      const x = r["usage-status"]!;
      exited(x, 0);
      assert.ok(
        x.json.providers.some((p: { provider: string }) => p.provider === "anthropic"),
        x.stdout,
      );
    });

    await t.step("openclaw sessions compact agent:main:main --max-lines 2", () => {
      const x = r["sessions-compact"]!;
      exited(x, 0);
      assert.deepEqual(proxy.calls("sessions-compact", "sessions.compact")[0]!.params, {
        key: "agent:main:main",
        maxLines: 2,
      });
      assert.deepEqual(
        (proxy.seen("sessions-compact")[0] as { scopes: string[] }).scopes,
        ["operator.admin"],
      );
      assert.match(x.stdout, /^Compacted session agent:main:main \(kept 2 lines\)\.$/m);
    });

    await t.step(
      "openclaw agent --thinking adaptive --timeout 0: accepted, thinking budget sent",
      () => {
        const x = r["agent-thinking"]!;
        exited(x, 0);
        assert.equal(x.json.status, "ok");
        const p = proxy.calls("agent-thinking", "agent")[0]!.params as Record<string, unknown>;
        assert.equal(p.thinking, "adaptive");
        assert.equal(p.timeout, 0);
        const sent = fake.requests.find((q) => lastMessageText(q.body).includes("(thinking)"));
        assert.deepEqual((sent?.body as { thinking?: unknown }).thinking, {
          type: "enabled",
          budget_tokens: 10_000,
        });
      },
    );

    await t.step(
      "openclaw sessions archive: sessions.patch {archived:true} with write scope",
      () => {
        const x = r["sessions-archive"]!;
        exited(x, 0);
        const patch = proxy.calls("sessions-archive", "sessions.patch")[0]!.params as Record<
          string,
          unknown
        >;
        assert.equal(patch.archived, true);
        assert.equal(patch.key, "agent:main:think");
      },
    );

    await t.step("openclaw sessions delete agent:main:scratch --yes --json", () => {
      const x = r["sessions-delete"]!;
      exited(x, 0);
      assert.deepEqual(x.json, {
        ok: true,
        operation: "delete",
        dryRun: false,
        results: [{ key: "agent:main:scratch", ok: true, status: "deleted", archived: [] }],
      });
      // It finds the session with sessions.list (read), then deletes it (admin).
      const calls = proxy.calls("sessions-delete");
      assert.deepEqual(calls.map((c) => c.method), ["sessions.list", "sessions.delete"]);
      assert.deepEqual(calls[0]!.params, {
        limit: 200,
        archived: "all",
        includeGlobal: true,
        includeUnknown: true,
        configuredAgentsOnly: true,
      });
      const del = calls[1]!.params as Record<string, unknown>;
      assert.equal(del.key, "agent:main:scratch");
      assert.equal(del.deleteTranscript, true);
      assert.equal(typeof del.expectedSessionId, "string");
      assert.deepEqual(
        proxy.seen("sessions-delete").map((c) => (c as { scopes: string[] }).scopes),
        [["operator.read"], ["operator.admin"]],
      );
    });
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
    await Deno.remove(remoteHome, { recursive: true }).catch(() => {});
  }
}
