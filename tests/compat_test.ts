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
 * Each CLI run costs 1-2.5 s of Node start-up, so there are ten of them, run
 * concurrently, and the assertions come afterwards as steps.
 */
import assert from "node:assert/strict";
import { startTestGateway } from "./_helpers.ts";
import {
  type CliResult,
  findOpenclaw,
  makeOpenclawHome,
  type Openclaw,
  openclawDir,
  pool,
  RecordingProxy,
  runOpenclaw,
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

async function compat(t: Deno.TestContext, oc: Openclaw): Promise<void> {
  await using gw = await startTestGateway({ version: VERSION });
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
    const via = (label: string) => ["--url", proxy.url(label), "--token", T, "--json"];
    const runs: Record<
      string,
      { args: string[]; env?: Record<string, string>; home?: string }
    > = {
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
      "cron-list": { args: ["cron", "list", ...via("cron-list")] },
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
    };
    const labels = Object.keys(runs);
    const results = await pool(
      2,
      labels.map((l) => () => runOpenclaw(oc, runs[l]!.home ?? home, runs[l]!.args, runs[l]!.env)),
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
      "openclaw cron list: gw says it lacks cron.list, not that scopes are missing",
      () => {
        const x = r["cron-list"]!;
        exited(x, 1);
        assert.match(x.stdout + x.stderr, /unknown method: cron\.list/);
        assert.doesNotMatch(x.stdout + x.stderr, /missing scope/);
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
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
    await Deno.remove(remoteHome, { recursive: true }).catch(() => {});
  }
}
