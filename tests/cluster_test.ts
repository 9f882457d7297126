/**
 * Several gw processes on one KV (lib/server/cluster.ts, docs/scaling.md):
 * a child `gw start` and an in-process gateway on one state dir, and two
 * children on one KV Connect server (tests/_fake_denokv.ts).
 */
import assert from "node:assert/strict";
import {
  type AnyFrame,
  connected,
  denoDir,
  gwRunArgs,
  type RawClient,
  startTestGateway,
  TEST_TOKEN,
} from "./_helpers.ts";
import { type FakeAnthropic, startFakeAnthropic } from "./_fake_anthropic.ts";
import { startFakeDenoKv } from "./_fake_denokv.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const LISTENING = /listening on (ws:\/\/127\.0\.0\.1:(\d+))/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function agentConfig(fake: FakeAnthropic): Record<string, unknown> {
  return {
    agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
    models: { providers: { anthropic: { apiKey: "k-test", baseUrl: fake.url } } },
  };
}

async function ok(c: RawClient, method: string, params?: unknown): Promise<AnyFrame> {
  const res = await c.request(method, params);
  if (res.ok !== true) throw new Error(`${method} failed: ${JSON.stringify(res.error)}`);
  return res.payload;
}

/** `gw start` as a child process (as `deno task gw start` runs it). */
class Child implements AsyncDisposable {
  out = "";
  url = "";
  exited: Deno.CommandStatus | undefined;
  readonly status: Promise<Deno.CommandStatus>;
  readonly #pumps: Promise<void>[];

  constructor(readonly proc: Deno.ChildProcess, readonly home: string) {
    this.status = proc.status.then((s) => (this.exited = s));
    const pump = async (s: ReadableStream<Uint8Array>) => {
      for await (const t of s.pipeThrough(new TextDecoderStream())) this.out += t;
    };
    this.#pumps = [pump(proc.stdout), pump(proc.stderr)];
  }

  /** Spawn; resolves when it listens, or with the child exited (check `exited`). */
  static async spawn(args: string[], env: Record<string, string> = {}): Promise<Child> {
    const home = await Deno.makeTempDir({ prefix: "gw-cluster-home-" });
    const proc = new Deno.Command(Deno.execPath(), {
      args: gwRunArgs("start", "--port", "0", "--token", TEST_TOKEN, ...args),
      cwd: ROOT,
      env: {
        HOME: home,
        NO_COLOR: "1",
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        DENO_DIR: await denoDir(),
        ...env,
      },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const c = new Child(proc, home);
    const deadline = performance.now() + 30_000;
    for (;;) {
      const m = c.out.match(LISTENING);
      if (m) {
        c.url = m[1]!;
        return c;
      }
      if (c.exited) {
        await Promise.all(c.#pumps);
        return c;
      }
      if (performance.now() > deadline) {
        await c.stop();
        throw new Error(`gw start did not listen:\n${c.out}`);
      }
      await sleep(25);
    }
  }

  /** SIGTERM, wait, clean up. */
  async stop(): Promise<void> {
    if (!this.exited) {
      try {
        this.proc.kill("SIGTERM");
      } catch { /* gone */ }
    }
    await this.status;
    await Promise.all(this.#pumps);
    await Deno.remove(this.home, { recursive: true }).catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * Wait until `from`'s process relays to `to`'s: patch a probe session
 * through `from` until `to` sees its `sessions.changed` (a process learns of
 * a new peer at its next presence heartbeat, within two seconds).
 */
async function linked(from: RawClient, to: RawClient, tag: string): Promise<void> {
  const key = `agent:main:probe-${tag}`;
  await ok(from, "sessions.patch", { key, label: "probe" }).catch(() => {});
  for (let i = 0; i < 100; i++) {
    const label = `${tag}-${i}`;
    await ok(from, "sessions.patch", { key, label });
    try {
      await to.next(
        (f) => f.event === "sessions.changed" && JSON.stringify(f.payload).includes(label),
        200,
      );
      return;
    } catch { /* not yet */ }
  }
  throw new Error(`${tag}: events never crossed`);
}

/** The chat events of `runId` a client got, in order. */
const chatEvents = (c: RawClient, runId: string): AnyFrame[] =>
  c.frames.filter((f) => f.event === "chat" && f.payload.runId === runId);

/** Check a client's view of one run: deltas in order, then exactly one final, last. */
function checkRun(events: AnyFrame[], text: string): void {
  const states = events.map((f) => f.payload.state);
  assert.equal(states.filter((s) => s === "final").length, 1, `one final: ${states}`);
  assert.equal(states.at(-1), "final", `final comes last: ${states}`);
  const seqs = events.map((f) => f.payload.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in the order they were sent");
  let shown = "";
  for (const f of events.slice(0, -1)) {
    const t = f.payload.message.content[0].text as string;
    assert.ok(t.startsWith(shown), "each delta extends the last");
    shown = t;
  }
  assert.equal(events.at(-1)!.payload.message.content[0].text, text);
}

Deno.test("two gw processes on one state dir: sessions, events both ways, cron runs once", async (t) => {
  const fake = await startFakeAnthropic({ apiKey: "k-test" });
  const stateDir = await Deno.makeTempDir({ prefix: "gw-cluster-" });
  await Deno.writeTextFile(`${stateDir}/gw.json`, JSON.stringify(agentConfig(fake)));
  const a = await Child.spawn(["--state-dir", stateDir]);
  assert.ok(a.url, a.out);
  const ca = await connected(a.url);
  let b: Awaited<ReturnType<typeof startTestGateway>> | undefined;
  let cb: RawClient | undefined;
  try {
    await t.step("a peer starting does not cut the turns of a live process", async () => {
      const words = Array.from({ length: 30 }, (_, i) => `w${i} `);
      fake.script({ blocks: [{ type: "text", text: words }], delayMs: 40 });
      await ok(ca, "chat.send", { sessionKey: "long", message: "go", idempotencyKey: "long-1" });
      await ca.next((f) => f.event === "chat" && f.payload.runId === "long-1");
      // B starts (and would recover "interrupted" runs) while A's turn streams.
      b = await startTestGateway({ stateDir });
      cb = await connected(b.url);
      assert.deepEqual(b.gw.cluster.stats().peers.length, 1, "B sees A at once");
      const end = await ca.next(
        (f) => f.event === "chat" && f.payload.runId === "long-1" && f.payload.state !== "delta",
        10_000,
      );
      assert.equal(end.payload.state, "final", JSON.stringify(end.payload));
      assert.equal(end.payload.message.content[0].text, words.join(""));
      const hist = await ok(cb, "chat.history", { sessionKey: "long" });
      assert.deepEqual(hist.messages.map((m: AnyFrame) => m.role), ["user", "assistant"]);
    });

    await t.step("events cross both ways once the peers know each other", async () => {
      await linked(ca, cb!, "a-to-b");
      await linked(cb!, ca, "b-to-a");
    });

    await t.step("a chat turn on A: B's client gets its events, B reads the session", async () => {
      const words = Array.from({ length: 12 }, (_, i) => `t${i} `);
      fake.script({ blocks: [{ type: "text", text: words }], delayMs: 50 });
      const ack = await ok(ca, "chat.send", {
        sessionKey: "s1",
        message: "hello from A",
        idempotencyKey: "run-a1",
      });
      assert.equal(ack.status, "started");
      const finalA = await ca.next(
        (f) => f.event === "chat" && f.payload.runId === "run-a1" && f.payload.state === "final",
        10_000,
      );
      const finalB = await cb!.next(
        (f) => f.event === "chat" && f.payload.runId === "run-a1" && f.payload.state === "final",
        5_000,
      );
      await sleep(300); // anything relayed late would show up now
      assert.deepEqual(finalB.payload, finalA.payload, "the same final payload");
      checkRun(chatEvents(cb!, "run-a1"), words.join(""));
      checkRun(chatEvents(ca, "run-a1"), words.join(""));
      assert.ok(
        chatEvents(cb!, "run-a1").length >= 3,
        `deltas crossed too: ${chatEvents(cb!, "run-a1").length}`,
      );
      // Non-droppable agent events cross (lifecycle), per-token ones do not.
      const agentB = cb!.frames.filter((f) => f.event === "agent" && f.payload.runId === "run-a1");
      assert.ok(agentB.some((f) => f.payload.stream === "lifecycle"), "lifecycle crossed");
      assert.ok(!agentB.some((f) => f.payload.stream === "assistant"), "token stream stays");
      const ended = cb!.frames.filter((f) =>
        f.event === "sessions.changed" && f.payload.sessionKey === "agent:main:s1"
      );
      assert.ok(ended.length >= 1, "sessions.changed crossed");
      const hist = await ok(cb!, "chat.history", { sessionKey: "s1" });
      assert.deepEqual(hist.messages.map((m: AnyFrame) => m.role), ["user", "assistant"]);
      assert.equal(hist.messages[1].content[0].text, words.join(""));
      const list = await ok(cb!, "sessions.list", {});
      assert.ok(list.sessions.some((s: AnyFrame) => s.key === "agent:main:s1"), "listed on B");
    });

    await t.step("an every job added on B runs once per slot across both processes", async () => {
      const everyMs = 1_000;
      const job = await ok(cb!, "cron.add", {
        name: "tick",
        schedule: { kind: "every", everyMs },
        payload: { kind: "systemEvent", text: "tick" },
        wakeMode: "next-heartbeat",
      });
      // A learns of the job from the relayed `cron` event, not a minute later.
      await ca.next((f) => f.event === "cron" && f.payload.jobId === job.id, 5_000);
      await sleep(6_500);
      await ok(cb!, "cron.update", { id: job.id, patch: { enabled: false } });
      await sleep(500); // a run already claimed finishes
      const runs = (await ok(ca, "cron.runs", { id: job.id, limit: 200 })).entries as AnyFrame[];
      const slots = runs.map((r) => r.scheduledAtMs as number).sort((x, y) => x - y);
      assert.ok(slots.length >= 5, `ran every second: ${slots.length} runs`);
      assert.equal(new Set(slots).size, slots.length, `each slot once: ${slots}`);
      for (let i = 1; i < slots.length; i++) {
        assert.equal(slots[i]! - slots[i - 1]!, everyMs, `no slot missed or doubled: ${slots}`);
      }
      assert.deepEqual(
        [...new Set(runs.map((r) => r.status))],
        ["ok"],
        JSON.stringify(runs.map((r) => r.status)),
      );
      // Both clients saw every run finish exactly once, whichever process ran it.
      for (const c of [ca, cb!]) {
        const finished = c.frames.filter((f) =>
          f.event === "cron" && f.payload.jobId === job.id && f.payload.action === "finished"
        ).map((f) => f.payload.runId);
        assert.equal(finished.length, runs.length, "one finished event per run");
        assert.equal(new Set(finished).size, finished.length);
      }
    });
  } finally {
    await cb?.close();
    await ca.close();
    await b?.stop();
    await a.stop();
    await fake.close();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a gateway alone writes nothing per event", async () => {
  const fake = await startFakeAnthropic({ apiKey: "k-test" });
  await using t = await startTestGateway({ config: agentConfig(fake) });
  const c = await connected(t.url);
  try {
    fake.script({ blocks: [{ type: "text", text: ["a", "b", "c"] }], delayMs: 20 });
    await ok(c, "chat.send", { sessionKey: "main", message: "hi", idempotencyKey: "solo" });
    await c.next((f) => f.event === "chat" && f.payload.state === "final", 5_000);
    await ok(c, "sessions.patch", { key: "main", label: "solo" });
    const s = t.gw.cluster.stats();
    assert.deepEqual(s.peers, []);
    assert.equal(s.published, 0);
    assert.equal(s.commits, 0);
    assert.equal(s.polls, 0, "no polling without a peer");
  } finally {
    await c.close();
    await fake.close();
  }
});

Deno.test("gw start --kv-url: two processes on one KV Connect server", async (t) => {
  const accessToken = "kv-access-token-0123456789";
  const kv = await startFakeDenoKv({ accessToken });
  const fake = await startFakeAnthropic({ apiKey: "k-test" });
  const dirs = await Promise.all([1, 2].map(() => Deno.makeTempDir({ prefix: "gw-kvurl-" })));
  for (const d of dirs) await Deno.writeTextFile(`${d}/gw.json`, JSON.stringify(agentConfig(fake)));
  const env = { DENO_KV_ACCESS_TOKEN: accessToken };
  const a = await Child.spawn(["--state-dir", dirs[0]!, "--kv-url", kv.url], env);
  const b = await Child.spawn(["--state-dir", dirs[1]!], { ...env, GW_KV_URL: kv.url });
  assert.ok(a.url && b.url, `${a.out}\n${b.out}`);
  const ca = await connected(a.url);
  const cb = await connected(b.url);
  try {
    await t.step("the KV is the server's, not a file in the state dir", async () => {
      for (const d of dirs) {
        const files = await Array.fromAsync(Deno.readDir(d), (e) => e.name);
        assert.ok(!files.some((f) => f.startsWith("gw.kv")), files.join(","));
      }
      assert.ok((kv.counts.metadata ?? 0) >= 2, JSON.stringify(kv.counts));
      assert.ok((kv.counts.watch ?? 0) >= 2, `both watch the head: ${JSON.stringify(kv.counts)}`);
    });

    await t.step("a turn on A reaches B's client and B's history", async () => {
      await linked(ca, cb, "a-to-b");
      const words = ["one ", "two ", "three"];
      fake.script({ blocks: [{ type: "text", text: words }], delayMs: 50 });
      await ok(ca, "chat.send", { sessionKey: "remote", message: "hi", idempotencyKey: "r1" });
      const finalB = await cb.next(
        (f) => f.event === "chat" && f.payload.runId === "r1" && f.payload.state === "final",
        10_000,
      );
      assert.equal(finalB.payload.message.content[0].text, words.join(""));
      await sleep(300);
      checkRun(chatEvents(cb, "r1"), words.join(""));
      const hist = await ok(cb, "chat.history", { sessionKey: "remote" });
      assert.deepEqual(hist.messages.map((m: AnyFrame) => m.role), ["user", "assistant"]);
    });
  } finally {
    await ca.close();
    await cb.close();
    await a.stop();
    await b.stop();
    await fake.close();
    await kv.close();
    for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});

Deno.test("gw start --kv-url: bad URLs and tokens are clear errors", async () => {
  const kv = await startFakeDenoKv({ accessToken: "right" });
  const dir = await Deno.makeTempDir({ prefix: "gw-kvurl-bad-" });
  try {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        ["--kv-url", "not a url"],
        { DENO_KV_ACCESS_TOKEN: "x" },
        /--kv-url: expected a KV Connect URL/,
      ],
      [["--kv-url", "file:///tmp/x.kv"], { DENO_KV_ACCESS_TOKEN: "x" }, /got a file: URL/],
      [["--kv-url", kv.url], {}, /--kv-url needs DENO_KV_ACCESS_TOKEN/],
      [[], { GW_KV_URL: kv.url }, /GW_KV_URL needs DENO_KV_ACCESS_TOKEN/],
      [
        ["--kv-url", kv.url],
        { DENO_KV_ACCESS_TOKEN: "wrong-token-5c1d9e" },
        /cannot open the store at http:\/\/127\.0\.0\.1:\d+\/kv: .*401 Unauthorized: invalid access token/,
      ],
    ];
    for (const [args, env, want] of cases) {
      const c = await Child.spawn(["--state-dir", dir, ...args], env);
      await c.stop();
      assert.equal(c.exited?.code, 1, `${args.join(" ")}: ${c.out}`);
      assert.match(c.out, want);
      assert.ok(!c.out.includes("wrong-token-5c1d9e"), "the token is not shown");
    }
  } finally {
    await kv.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("a peer killed mid-turn does not hold up the next start's recovery", async () => {
  const fake = await startFakeAnthropic({ apiKey: "k-test" });
  const stateDir = await Deno.makeTempDir({ prefix: "gw-cluster-kill-" });
  await Deno.writeTextFile(`${stateDir}/gw.json`, JSON.stringify(agentConfig(fake)));
  try {
    fake.script({ hang: true });
    const a = await Child.spawn(["--state-dir", stateDir]);
    const ca = await connected(a.url);
    await ok(ca, "chat.send", { sessionKey: "main", message: "crash", idempotencyKey: "k1" });
    await ca.next((f) => f.event === "agent" && f.payload.data?.phase === "model", 5_000);
    a.proc.kill("SIGKILL");
    await a.stop();
    await ca.close();
    // Its presence record is seconds old, but its process is gone: B is alone and recovers.
    await using b = await startTestGateway({ stateDir });
    assert.deepEqual(b.gw.cluster.stats().peers, []);
    const cb = await connected(b.url);
    const h = await ok(cb, "chat.history", { sessionKey: "main" });
    await cb.close();
    assert.deepEqual(
      h.messages.map((m: AnyFrame) => m.role === "custom" ? `custom:${m.customType}` : m.role),
      ["user", "custom:run-interrupted"],
    );
  } finally {
    await fake.close();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
});
