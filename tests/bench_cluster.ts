/**
 * `deno task bench:cluster`: what two gw processes on one state dir (one
 * gw.kv) sustain compared with one. gw runs as child processes exactly as
 * `deno task gw start` runs them; the `health` load comes from
 * tests/_bench_client.ts (its own process per gateway), the turns from
 * mod.ts's GatewayClient against the fake Anthropic API
 * (tests/_fake_anthropic.ts) in this process.
 *
 *   deno run -P=test tests/bench_cluster.ts [--quick]
 *
 * Three set-ups, each measured the same way:
 * - `one`: one gateway;
 * - `one + peer`: the same load on one gateway while a second process on the
 *   same KV only listens (its client subscribed to events): what relaying
 *   costs the serving process, and how late the other process's client sees
 *   each turn's `final`;
 * - `two`: the load split over both gateways (a client process each for
 *   `health`, half of the turns each).
 *
 * Measured: `health` req/s (1 connection × 64 in flight per gateway), and
 * chat turns: N `chat.send` on N sessions at once, 20 tokens each, 5 ms
 * apart, at most 64 turns at once per gateway (`maxConcurrent`), until every
 * `final` arrived (turns/s); gw CPU per turn. A round of turns warms the
 * first gateway up before anything is measured.
 * Prints one JSON object and a Markdown table (docs/scaling.md).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { GatewayClient } from "../mod.ts";
import { startFakeAnthropic } from "./_fake_anthropic.ts";
import { TEST_TOKEN } from "./_helpers.ts";
import { type Child, cpuMs, pct, ROOT, rssMB, startGw, stopGw } from "./_bench_util.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: { quick: { type: "boolean" } },
});
const P = flags.quick
  ? { healthSeconds: 3, turns: 60, tokens: 20 }
  : { healthSeconds: 8, turns: 200, tokens: 20 };
const log = (s: string) => console.error(`bench:cluster: ${s}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** tests/_bench_client.ts in rpc mode against one gateway; resolves with its JSON. */
async function health(url: string): Promise<{ reqPerSec: number; p99: number }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-P=test",
      `${ROOT}tests/_bench_client.ts`,
      ...["--mode", "rpc", "--url", url, "--token", TEST_TOKEN],
      ...["--conns", "1", "--inflight", "64", "--seconds", String(P.healthSeconds)],
      ...["--warmup", "1"],
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout((P.healthSeconds + 30) * 1000),
  }).output();
  const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  if (r.error) throw new Error(`bench client: ${r.error}`);
  return { reqPerSec: r.reqPerSec, p99: r.latencyMs?.p99 ?? NaN };
}

async function client(url: string): Promise<GatewayClient> {
  const c = new GatewayClient({ url, token: TEST_TOKEN, requestTimeoutMs: 120_000 });
  await c.connect();
  return c;
}

interface TurnResult {
  turns: number;
  seconds: number;
  turnsPerSec: number;
  gwCpuMsPerTurn: number;
  /** How late the listening peer's client saw each `final` (one + peer only). */
  peerFinalLagMs?: { p50: number; p99: number; max: number; seen: number };
  /** The listening peer's CPU per turn (one + peer only). */
  peerCpuMsPerTurn?: number;
}

/**
 * `turns` chat.send at once, split round-robin over `gws`; waits for every
 * final on the client that sent it. `listener`: a client of another process
 * whose view of the finals is timed against the sender's.
 */
async function turns(
  gws: Child[],
  tag: string,
  listener?: { client: GatewayClient; gw: Child },
): Promise<TurnResult> {
  const clients = await Promise.all(gws.map((g) => client(g.url)));
  const sentAt = new Map<string, number>();
  const finalAt = new Map<string, number>();
  const peerAt = new Map<string, number>();
  const done = Promise.withResolvers<void>();
  for (const c of clients) {
    c.on("chat", (p) => {
      const ch = p as { state: string; runId: string };
      if (ch.state === "final" && sentAt.has(ch.runId) && !finalAt.has(ch.runId)) {
        finalAt.set(ch.runId, performance.now());
        if (finalAt.size === P.turns) done.resolve();
      }
    });
  }
  const off = listener?.client.on("chat", (p) => {
    const ch = p as { state: string; runId: string };
    if (ch.state === "final" && ch.runId.startsWith(`${tag}-`)) {
      peerAt.set(ch.runId, performance.now());
    }
  });
  const cpu0 = gws.map((g) => cpuMs(g.pid));
  const peerCpu0 = listener ? cpuMs(listener.gw.pid) : 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: P.turns }, (_, i) => {
    const runId = `${tag}-${i}`;
    sentAt.set(runId, performance.now());
    return clients[i % clients.length]!.request("chat.send", {
      sessionKey: `${tag}-${i}`,
      message: `hello ${i}`,
      idempotencyKey: runId,
    });
  }));
  const timer = setTimeout(() => done.reject(new Error(`${tag}: turns did not finish`)), 180_000);
  await done.promise;
  clearTimeout(timer);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = gws.reduce((s, g, i) => s + cpuMs(g.pid) - cpu0[i]!, 0);
  const out: TurnResult = {
    turns: P.turns,
    seconds: Math.round(seconds * 100) / 100,
    turnsPerSec: Math.round(P.turns / seconds * 10) / 10,
    gwCpuMsPerTurn: Math.round(cpu / P.turns * 10) / 10,
  };
  if (listener) {
    out.peerCpuMsPerTurn = Math.round((cpuMs(listener.gw.pid) - peerCpu0) / P.turns * 10) / 10;
    await sleep(1_000);
    off?.();
    const lags = [...peerAt].map(([id, t]) => t - finalAt.get(id)!).filter(Number.isFinite);
    out.peerFinalLagMs = {
      p50: pct(lags, 0.5, 1),
      p99: pct(lags, 0.99, 1),
      max: pct(lags, 1, 1),
      seen: lags.length,
    };
    if (lags.length !== P.turns) throw new Error(`the peer saw ${lags.length}/${P.turns} finals`);
  }
  await Promise.all(clients.map((c) => c.close()));
  return out;
}

async function main(): Promise<void> {
  const fake = await startFakeAnthropic({ apiKey: "bench-key" });
  const words = Array.from({ length: P.tokens }, (_, i) => `w${i} `);
  fake.script(() => ({ blocks: [{ type: "text", text: words }], delayMs: 5 }));
  const stateDir = await Deno.makeTempDir({ prefix: "gw-bench-cluster-" });
  await Deno.writeTextFile(
    `${stateDir}/gw.json`,
    JSON.stringify({
      agents: { defaults: { model: "anthropic/claude-sonnet-4-6", maxConcurrent: 64 } },
      models: { providers: { anthropic: { apiKey: "bench-key", baseUrl: fake.url } } },
    }),
  );
  const result: Record<string, unknown> = {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    command: `deno task bench:cluster${flags.quick ? " --quick" : ""}`,
    cores: navigator.hardwareConcurrency,
    turnsEach: { turns: P.turns, tokens: P.tokens, tokenDelayMs: 5, maxConcurrent: 64 },
  };
  const a = await startGw(stateDir);
  let b: Child | undefined;
  try {
    // Warm up: the SDK import and the code paths.
    {
      const c = await client(a.url);
      await c.requestFinal("agent", { message: "warm", idempotencyKey: "warm-a" });
      await c.close();
      await turns([a], "warm");
    }
    log("one gateway");
    const one = {
      health: await health(a.url),
      chat: await turns([a], "one"),
      rssMB: rssMB(a.pid),
    };
    log(JSON.stringify(one));
    result.one = one;

    b = await startGw(stateDir);
    {
      const c = await client(b.url);
      await c.requestFinal("agent", { message: "warm", idempotencyKey: "warm-b" });
      await c.close();
    }
    await sleep(2_500); // A learns of B at its next presence heartbeat
    log("one gateway serving, a peer listening");
    const listener = await client(b.url);
    const peer = {
      health: await health(a.url),
      chat: await turns([a], "peer", { client: listener, gw: b }),
      rssMB: rssMB(a.pid),
    };
    await listener.close();
    log(JSON.stringify(peer));
    result.onePlusPeer = peer;

    log("two gateways, load split");
    const [ha, hb] = await Promise.all([health(a.url), health(b.url)]);
    const two = {
      health: { reqPerSec: ha.reqPerSec + hb.reqPerSec, each: [ha, hb] },
      chat: await turns([a, b], "two"),
      rssMB: [rssMB(a.pid), rssMB(b.pid)],
    };
    log(JSON.stringify(two));
    result.two = two;
  } finally {
    if (b) await stopGw(b);
    await stopGw(a);
    await fake.close();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
  console.log(JSON.stringify(result, null, 2));
  const one = result.one as { health: { reqPerSec: number; p99: number }; chat: TurnResult };
  const peer = result.onePlusPeer as typeof one;
  const two = result.two as { health: { reqPerSec: number }; chat: TurnResult };
  const f = (n: number) => n.toLocaleString("en-US");
  console.log(
    [
      "| set-up | `health` req/s (1 × 64 per gateway) | chat turns/s | gw CPU ms per turn | peer sees `final` after (p50 / p99) |",
      "| --- | --- | --- | --- | --- |",
      `| one gateway | ${
        f(one.health.reqPerSec)
      } (p99 ${one.health.p99} ms) | ${one.chat.turnsPerSec} | ${one.chat.gwCpuMsPerTurn} | – |`,
      `| one gateway, a peer listening | ${
        f(peer.health.reqPerSec)
      } (p99 ${peer.health.p99} ms) | ${peer.chat.turnsPerSec} | ${peer.chat.gwCpuMsPerTurn} (+ ${peer.chat.peerCpuMsPerTurn} on the peer) | ${peer.chat.peerFinalLagMs?.p50} / ${peer.chat.peerFinalLagMs?.p99} ms |`,
      `| two gateways, load split | ${
        f(two.health.reqPerSec)
      } (sum) | ${two.chat.turnsPerSec} | ${two.chat.gwCpuMsPerTurn} (both) | – |`,
    ].join("\n"),
  );
}

if (import.meta.main) await main();
