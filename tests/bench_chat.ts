/**
 * `deno task bench:chat`: the agent path under measurement. gw runs as a
 * child process exactly as `deno task gw start` runs it; the fake Anthropic
 * API (tests/_fake_anthropic.ts, real SSE wire format, the real SDK on gw's
 * side) and the client (mod.ts's GatewayClient) share this process's clock,
 * so the fake's write time of a token and the client's receipt of its event
 * are comparable.
 *
 *   deno run -P=test tests/bench_chat.ts [--quick] [--no-write]
 *
 * 1. Latency: one turn of 200 tokens, 5 ms apart. For each token, the time
 *    from the fake writing it to the client receiving its `agent` assistant
 *    event (p50, p99: the SDK's SSE parsing, the runtime, the WebSocket); the
 *    time to the first `chat` delta; gw's CPU time per token.
 * 2. Load: 100 concurrent `chat.send` turns on 100 sessions, 20 tokens each;
 *    every transcript is checked complete; gw's RSS before, at the peak, after.
 * 3. History: a 10,000-message session (written through the store, as turns
 *    write it), `chat.history` of the last 200, round trip p50 and p99.
 *
 * Prints JSON; updates the chat section of docs/benchmarks.md unless --no-write.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { GatewayClient } from "../mod.ts";
import { startFakeAnthropic } from "./_fake_anthropic.ts";
import { TEST_TOKEN } from "./_helpers.ts";
import { Store } from "../lib/store/mod.ts";
import type { TranscriptMessage } from "../lib/agent/types.ts";
import { cpuMs, pct, procRead, rssMB, startGw, stopGw, writeSection } from "./_bench_util.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: { quick: { type: "boolean" }, "no-write": { type: "boolean" } },
});
const P = flags.quick
  ? {
    tokens: 60,
    turns: Number(Deno.env.get("BENCH_TURNS") ?? 20),
    historyMessages: 2000,
    historyCalls: 10,
    extraRounds: Number(Deno.env.get("BENCH_ROUNDS") ?? 2),
  }
  : { tokens: 200, turns: 100, historyMessages: 10_000, historyCalls: 30, extraRounds: 5 };

const log = (s: string) => console.error(`bench:chat: ${s}`);

/** RssAnon / RssFile / RssShmem in MB: where the resident memory is. */
function rssParts(pid: number): Record<string, number> {
  const st = procRead(`/proc/${pid}/status`);
  const out: Record<string, number> = {};
  for (const k of ["RssAnon", "RssFile", "RssShmem"]) {
    const m = st.match(new RegExp(`${k}:\\s+(\\d+)`));
    if (m) out[k] = Math.round(Number(m[1]) / 102.4) / 10;
  }
  return out;
}

async function client(url: string): Promise<GatewayClient> {
  const c = new GatewayClient({ url, token: TEST_TOKEN, requestTimeoutMs: 120_000 });
  await c.connect();
  return c;
}

async function main() {
  const fake = await startFakeAnthropic({ apiKey: "bench-key" });
  const stateDir = await Deno.makeTempDir({ prefix: "gw-bench-chat-" });
  await Deno.writeTextFile(
    `${stateDir}/gw.json`,
    JSON.stringify({
      agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
      models: { providers: { anthropic: { apiKey: "bench-key", baseUrl: fake.url } } },
    }),
  );
  const result: Record<string, unknown> = {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    command: `deno task bench:chat${flags.quick ? " --quick" : ""}`,
  };
  const gw = await startGw(stateDir);
  try {
    // ------------------------------------------------------------ latency
    {
      const c = await client(gw.url);
      // Warm up the SDK import and the code paths.
      fake.script({ blocks: [{ type: "text", text: ["warm", " up"] }] });
      await c.requestFinal("agent", { message: "warm", idempotencyKey: "warm-1" });
      const chunks = Array.from({ length: P.tokens }, (_, i) => `t${i} `);
      fake.script({ blocks: [{ type: "text", text: chunks }], delayMs: 5 });
      const got: number[] = [];
      let firstChat = NaN;
      const off = c.on("agent", (p) => {
        const a = p as { stream: string; runId: string };
        if (a.runId === "lat-1" && a.stream === "assistant") got.push(performance.now());
      });
      const offChat = c.on("chat", (p) => {
        const ch = p as { state: string; runId: string };
        if (ch.runId === "lat-1" && ch.state === "delta" && Number.isNaN(firstChat)) {
          firstChat = performance.now();
        }
      });
      const cpu0 = cpuMs(gw.pid);
      await c.requestFinal("agent", { message: "latency", idempotencyKey: "lat-1" });
      const cpu1 = cpuMs(gw.pid);
      off();
      offChat();
      const req = fake.requests[fake.requests.length - 1]!;
      const lat = req.textDeltaTimes.map((t, i) => got[i]! - t).filter(Number.isFinite);
      result.latency = {
        tokens: P.tokens,
        tokenToAgentEventMs: { p50: pct(lat, 0.5), p99: pct(lat, 0.99), max: pct(lat, 1) },
        firstTokenToFirstChatDeltaMs: Math.round((firstChat - req.textDeltaTimes[0]!) * 1000) /
          1000,
        gwCpuMsPerToken: Math.round((cpu1 - cpu0) / P.tokens * 1000) / 1000,
        eventsReceived: got.length,
      };
      log(`latency ${JSON.stringify(result.latency)}`);
      await c.close();
    }

    // ------------------------------------------------------------ load
    {
      const clients = await Promise.all(Array.from({ length: 4 }, () => client(gw.url)));
      const words = Array.from({ length: 20 }, (_, i) => `w${i} `);
      fake.script(() => ({ blocks: [{ type: "text", text: words }], delayMs: 10 }));
      const rssBefore = rssMB(gw.pid);
      const partsBefore = rssParts(gw.pid);
      const memBefore =
        (await clients[0]!.request("status", {}) as { processMemory?: unknown }).processMemory;
      let peak = rssBefore;
      const sampler = setInterval(() => peak = Math.max(peak, rssMB(gw.pid)), 50);
      const finals = new Map<string, string>();
      const allDone = Promise.withResolvers<void>();
      clients[0]!.on("chat", (p) => {
        const ch = p as { state: string; runId: string; message?: { content: { text: string }[] } };
        if (ch.state === "final" && ch.runId.startsWith("load-")) {
          finals.set(ch.runId, ch.message?.content[0]?.text ?? "");
          if (finals.size === P.turns) allDone.resolve();
        }
      });
      const t0 = performance.now();
      await Promise.all(
        Array.from(
          { length: P.turns },
          (_, i) =>
            clients[i % clients.length]!.request("chat.send", {
              sessionKey: `bench-${i}`,
              message: `hello ${i}`,
              idempotencyKey: `load-${i}`,
            }),
        ),
      );
      const acked = performance.now() - t0;
      const timeout = setTimeout(() => allDone.reject(new Error("turns did not finish")), 120_000);
      await allDone.promise;
      clearTimeout(timeout);
      const elapsed = performance.now() - t0;
      clearInterval(sampler);
      const expected = words.join("");
      let complete = 0;
      for (let i = 0; i < P.turns; i++) {
        const h = await clients[0]!.request("chat.history", { sessionKey: `bench-${i}` }) as {
          messages: { role: string; content: unknown }[];
        };
        const roles = h.messages.map((m) => m.role).join(",");
        const text = (h.messages[1]?.content as { text: string }[] | undefined)?.[0]?.text;
        if (
          roles === "user,assistant" && text === expected && finals.get(`load-${i}`) === expected
        ) {
          complete++;
        }
      }
      await new Promise((r) => setTimeout(r, 2000));
      result.load = {
        turns: P.turns,
        sessions: P.turns,
        tokensPerTurn: words.length,
        allAckedMs: Math.round(acked),
        allFinishedMs: Math.round(elapsed),
        transcriptsComplete: complete,
        rssBeforeMB: rssBefore,
        rssPeakMB: peak,
        rssGrowthMB: Math.round((peak - rssBefore) * 10) / 10,
        rssAfter2sMB: rssMB(gw.pid),
        partsBefore,
        partsAfter: rssParts(gw.pid),
        memBefore,
        memAfter:
          (await clients[0]!.request("status", {}) as { processMemory?: unknown }).processMemory,
      };
      // More rounds on the same sessions: does RSS settle or keep climbing?
      const rounds: number[] = [];
      const heaps: number[] = [];
      for (let r = 1; r <= P.extraRounds; r++) {
        const ended = new Set<string>();
        const roundDone = Promise.withResolvers<void>();
        const off = clients[1]!.on("chat", (p) => {
          const ch = p as { state: string; runId: string };
          if (ch.runId.startsWith(`round${r}-`) && ch.state !== "delta") {
            ended.add(ch.runId);
            if (ended.size === P.turns) roundDone.resolve();
          }
        });
        await Promise.all(
          Array.from(
            { length: P.turns },
            (_, i) =>
              clients[i % clients.length]!.request("chat.send", {
                sessionKey: `bench-${i}`,
                message: `again ${i}`,
                idempotencyKey: `round${r}-${i}`,
              }),
          ),
        );
        await roundDone.promise;
        off();
        await new Promise((res) => setTimeout(res, 500));
        rounds.push(rssMB(gw.pid));
        const m = (await clients[0]!.request("status", {}) as {
          processMemory: { heapUsedBytes: number; externalBytes?: number };
        }).processMemory;
        heaps.push(Math.round(m.heapUsedBytes / 1e5) / 10);
      }
      (result.load as Record<string, unknown>).rssAfterEachExtraRoundMB = rounds;
      (result.load as Record<string, unknown>).heapUsedAfterEachExtraRoundMB = heaps;
      log(`load ${JSON.stringify(result.load)}`);
      await Promise.all(clients.map((c) => c.close()));
    }
  } finally {
    await stopGw(gw);
  }

  // ------------------------------------------------------------ history
  {
    const key = "agent:main:history";
    const store = await Store.open(`${stateDir}/gw.kv`);
    await store.sessions.ensure(key, "main");
    const batch: TranscriptMessage[] = [];
    const t0 = Date.now() - P.historyMessages * 1000;
    for (let i = 0; i < P.historyMessages; i++) {
      const at = t0 + i * 1000;
      batch.push(
        i % 2 === 0
          ? {
            role: "user",
            content: `question number ${i}: how is the weather today?`,
            timestamp: at,
          }
          : {
            role: "assistant",
            content: [{ type: "text", text: `answer ${i}: `.padEnd(300, "sunny and mild. ") }],
            api: "anthropic-messages",
            provider: "anthropic",
            model: "claude-sonnet-4-6",
            usage: {
              input: 100,
              output: 80,
              cacheRead: 0,
              cacheWrite: 0,
              totalTokens: 180,
              cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, total: 0 },
            },
            stopReason: "stop",
            timestamp: at,
          },
      );
      if (batch.length === 500) {
        await store.sessions.append(key, batch.splice(0));
      }
    }
    if (batch.length) await store.sessions.append(key, batch.splice(0));
    store.close();
    const gw2 = await startGw(stateDir);
    try {
      const c = await client(gw2.url);
      const times: number[] = [];
      let count = 0;
      for (let i = 0; i < P.historyCalls; i++) {
        const s = performance.now();
        const h = await c.request("chat.history", { sessionKey: key, limit: 200 }) as {
          messages: unknown[];
          totalMessages: number;
        };
        times.push(performance.now() - s);
        count = h.messages.length;
        if (h.totalMessages !== P.historyMessages) {
          throw new Error(`history has ${h.totalMessages}`);
        }
      }
      result.history = {
        sessionMessages: P.historyMessages,
        limit: 200,
        returned: count,
        calls: P.historyCalls,
        roundTripMs: {
          p50: pct(times, 0.5),
          p99: pct(times, 0.99),
          first: Math.round(times[0]! * 1000) / 1000,
        },
      };
      log(`history ${JSON.stringify(result.history)}`);
      await c.close();
    } finally {
      await stopGw(gw2);
    }
  }
  await fake.close();
  await Deno.remove(stateDir, { recursive: true });
  return result;
}

// deno-lint-ignore no-explicit-any -- the JSON this file just built
function render(r: Record<string, any>): string {
  const l = r.latency, ld = r.load, h = r.history;
  return [
    "## Chat (agent runtime)",
    "",
    `Command: \`${r.command}\` (${
      r.date.slice(0, 10)
    }, Deno ${r.deno}). gw runs as \`deno task gw start\`;`,
    "the fake Anthropic API (real SSE wire format, the real SDK in gw) and the client share one clock.",
    "",
    "| Measure | Target | Measured |",
    "| --- | --- | --- |",
    `| token written by the provider → its \`agent\` event at the client, p50 / p99 (${l.tokens} tokens) | ≤ 1 ms overhead | ${l.tokenToAgentEventMs.p50} / ${l.tokenToAgentEventMs.p99} ms |`,
    `| gw CPU time per streamed token | ≤ 1 ms | ${l.gwCpuMsPerToken} ms |`,
    `| provider's first token → first \`chat\` delta at the client | ≤ 20 ms | ${l.firstTokenToFirstChatDeltaMs} ms |`,
    `| ${ld.turns} concurrent turns on ${ld.sessions} sessions: complete transcripts | all | ${ld.transcriptsComplete} / ${ld.turns} (acked in ${ld.allAckedMs} ms, done in ${ld.allFinishedMs} ms) |`,
    `| RSS growth during those turns | ≤ 50 MB | ${ld.rssGrowthMB} MB (${ld.rssBeforeMB} → peak ${ld.rssPeakMB}, ${ld.rssAfter2sMB} 2 s later) |`,
    `| RSS after each of ${ld.rssAfterEachExtraRoundMB.length} more rounds of ${ld.turns} turns on the same sessions | settles | ${
      ld.rssAfterEachExtraRoundMB.join(", ")
    } MB (JS heap ${ld.heapUsedAfterEachExtraRoundMB.join(", ")} MB) |`,
    `| \`chat.history\` last ${h.limit} of a ${
      h.sessionMessages.toLocaleString("en")
    }-message session, p50 / p99 | ≤ 50 ms | ${h.roundTripMs.p50} / ${h.roundTripMs.p99} ms (first call ${h.roundTripMs.first} ms) |`,
    "",
    "The turns run at most `agents.defaults.maxConcurrent` (default 4) at a time; the others wait as",
    "durable pending inputs. Without that cap all 100 provider streams were open at once and RSS grew",
    "about 70 MB and stayed there: Deno's `fetch` body reader holds native buffers per open stream (a",
    "bare Deno script reading 100 streams chunk by chunk grows by ~60 MB too).",
    "",
  ].join("\n");
}

if (import.meta.main) {
  const r = await main();
  console.log(JSON.stringify(r, null, 2));
  if (!flags["no-write"] && !flags.quick) {
    await writeSection("## Chat (agent runtime)", render(r));
    log("docs/benchmarks.md updated");
  }
}
