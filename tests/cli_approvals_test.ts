/**
 * `gw approvals` end to end: a real gateway, the CLI in a child process run
 * exactly as the binary runs it (`deno run -P=gw main.ts approvals ...`,
 * clean environment, NO_COLOR=1), its stdin piped (each line one answer) and
 * its stdout read as it streams; the requests come from a raw client.
 */
import assert from "node:assert/strict";
import {
  type AnyFrame,
  connected,
  err,
  gwRunArgs,
  ok,
  type RawClient,
  startTestGateway,
  TEST_TOKEN,
} from "./_helpers.ts";
import { childEnv, json, okRun, type RunResult, show } from "./_cli.ts";
import { GatewayClient } from "../lib/client/client.ts";
import { parseAnswer, updatePolicy, visible } from "../lib/cli/approvals.ts";

const ROOT = new URL("../", import.meta.url).pathname;

// ------------------------------------------------------------------ helpers

/** A gateway, a raw admin client and a temp HOME for the children. */
async function setup() {
  const t = await startTestGateway();
  const home = await Deno.makeTempDir({ prefix: "gw-cli-approvals-home-" });
  const c = await connected(t.url);
  return {
    t,
    c,
    home,
    /** The connection flags for this gateway. */
    conn: ["--url", t.url, "--token", t.token],
    async [Symbol.asyncDispose]() {
      await c.close();
      await t.stop();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    },
  };
}

type Env = Awaited<ReturnType<typeof setup>>;

/** Run `gw approvals <args>` to completion (killed after 20 s). */
async function gw(env: Pick<Env, "home" | "conn">, args: string[]): Promise<RunResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: gwRunArgs("approvals", ...args, ...env.conn),
    cwd: ROOT,
    env: await childEnv(env.home, { TZ: "UTC" }),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(20_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A running `gw approvals` watcher: its streamed stdout, stdin to answer with, its exit. */
class Watcher implements AsyncDisposable {
  readonly proc: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #done: Promise<void>;
  #changed: (() => void)[] = [];

  constructor(env: Pick<Env, "home" | "conn">, args: string[], childEnv: Record<string, string>) {
    this.proc = new Deno.Command(Deno.execPath(), {
      args: gwRunArgs("approvals", ...args, ...env.conn),
      cwd: ROOT,
      env: childEnv,
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.proc.stdin.getWriter();
    const pump = async (s: ReadableStream<Uint8Array>, k: "stdout" | "stderr") => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
        this[k] += chunk;
        for (const w of this.#changed.splice(0)) w();
      }
    };
    this.#done = Promise.all([pump(this.proc.stdout, "stdout"), pump(this.proc.stderr, "stderr")])
      .then(() => {
        for (const w of this.#changed.splice(0)) w();
      });
  }

  static async start(env: Env, args: string[] = []): Promise<Watcher> {
    const w = new Watcher(env, args, await childEnv(env.home, { TZ: "UTC" }));
    await w.waitFor("watching for approval requests (Ctrl-C to stop)");
    return w;
  }

  /** Wait until stdout (from `from` on) has `what`; the index just after it. */
  async waitFor(what: string | RegExp, from = 0, ms = 15_000): Promise<number> {
    const deadline = Date.now() + ms;
    for (;;) {
      const rest = this.stdout.slice(from);
      if (typeof what === "string") {
        const i = rest.indexOf(what);
        if (i >= 0) return from + i + what.length;
      } else {
        const m = what.exec(rest);
        if (m) return from + m.index + m[0].length;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`stdout never showed ${what}:\n${this.show()}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#changed.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  async answer(text: string): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(text));
  }

  async closeStdin(): Promise<void> {
    await this.#stdin.close().catch(() => {});
  }

  /** The exit code (killed after `ms`). */
  async exit(ms = 15_000): Promise<number> {
    const t = setTimeout(() => {
      try {
        this.proc.kill("SIGKILL");
      } catch { /* gone */ }
    }, ms);
    try {
      const s = await this.proc.status;
      await this.#done;
      return s.code;
    } finally {
      clearTimeout(t);
    }
  }

  show(): string {
    return `--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.closeStdin();
    try {
      this.proc.kill("SIGKILL");
    } catch { /* already gone */ }
    await this.proc.status;
    await this.#done;
  }
}

/** Ask for `argv` from the raw client; the pending request. */
async function request(c: RawClient, argv: string[]): Promise<AnyFrame> {
  const r = await ok(c, "exec.approval.request", { commandArgv: argv, cwd: "/tmp" });
  assert.equal(r.status, "pending", JSON.stringify(r));
  return r;
}

async function decision(c: RawClient, id: string, timeoutMs = 10_000): Promise<AnyFrame> {
  return await ok(c, "exec.approval.waitDecision", { id, timeoutMs });
}

const PROMPT = "allow once [y] / always [a] / always for 1h [h] / deny [n] / skip [s]? ";

// ------------------------------------------------------------------ the watcher

Deno.test("cli approvals --once: y allows the request once, the card shows it, exit 0", async () => {
  await using env = await setup();
  await using w = await Watcher.start(env, ["--once"]);
  await w.answer("y\n");
  const r = await request(env.c, ["echo", "hi"]);
  const card = await w.waitFor(`approval request ${r.id.slice(0, 8)}`);
  await w.waitFor(PROMPT, card);
  const d = await decision(env.c, r.id);
  assert.equal(d.decision, "allow-once", w.show());
  assert.equal(await w.exit(), 0, w.show());
  const out = w.stdout.slice(card);
  assert.ok(out.includes(`  command  ${r.request.binary} hi\n`), w.show());
  assert.ok(out.includes(`  binary   ${r.request.binary}\n`), w.show());
  assert.ok(out.includes("  cwd      /tmp\n"), w.show());
  assert.ok(out.includes("  env      none\n"), w.show());
  assert.ok(out.includes("  from     agent main · host gateway\n"), w.show());
  assert.match(out, /\n {2}expires {2}in (29m|30m)/, w.show());
  assert.ok(out.includes(`${PROMPT}y\nallowed once ${r.id.slice(0, 8)}`), w.show());
  // allow-once is no grant: the same command asks again.
  assert.equal(
    (await ok(env.c, "exec.approval.request", { commandArgv: ["echo", "hi"] })).status,
    "pending",
  );
});

Deno.test("cli approvals --once: a allows always, so the next identical request is allowed by policy", async () => {
  await using env = await setup();
  await using w = await Watcher.start(env, ["--once"]);
  await w.answer("a\n");
  const r = await request(env.c, ["echo", "always"]);
  assert.equal((await decision(env.c, r.id)).decision, "allow-always", w.show());
  assert.equal(await w.exit(), 0, w.show());
  assert.match(w.stdout, /allowed always [0-9a-f]{8}: this exact command is on agent main's/);
  const again = await ok(env.c, "exec.approval.request", {
    commandArgv: ["echo", "always"],
    cwd: "/tmp",
  });
  assert.equal(again.status, "allowed", JSON.stringify(again));
  assert.equal(again.decidedBy, "policy");
  // Exactly that command: other args still ask.
  assert.equal(
    (await ok(env.c, "exec.approval.request", { commandArgv: ["echo", "other"] })).status,
    "pending",
  );
});

Deno.test("cli approvals --once: an unknown answer asks again, then n denies", async () => {
  await using env = await setup();
  await using w = await Watcher.start(env, ["--once"]);
  const r = await request(env.c, ["echo", "nope"]);
  const card = await w.waitFor(PROMPT);
  await w.answer("what\n");
  const again = await w.waitFor(PROMPT, card);
  assert.ok(w.stdout.slice(card, again).includes("answer y (allow once)"), w.show());
  assert.equal(
    (await ok(env.c, "exec.approval.waitDecision", { id: r.id, timeoutMs: 0 })).decision,
    null,
    "still pending after a wrong answer",
  );
  await w.answer("n\n");
  assert.equal((await decision(env.c, r.id)).decision, "deny", w.show());
  assert.equal(await w.exit(), 0, w.show());
  assert.ok(w.stdout.includes(`denied ${r.id.slice(0, 8)}`), w.show());
});

Deno.test("cli approvals: a right-to-left override shows escaped, with a warning", async () => {
  await using env = await setup();
  await using w = await Watcher.start(env, ["--once"]);
  const r = await request(env.c, ["echo", "invoice\u202Egnp.exe"]);
  const card = await w.waitFor(PROMPT);
  await w.answer("n\n");
  assert.equal((await decision(env.c, r.id)).decision, "deny");
  assert.equal(await w.exit(), 0, w.show());
  const shown = w.stdout.slice(0, card);
  assert.ok(!w.stdout.includes("\u202E"), "the raw override never reaches the terminal");
  assert.ok(shown.includes(`  command  ${r.request.binary} 'invoice\\u{202E}gnp.exe'\n`), shown);
  assert.match(shown, /\n {2}⚠ bidi: U\+202E \(bidirectional controls/, shown);
});

Deno.test("cli approvals: skip leaves a request pending, a decision elsewhere cancels the prompt, h allows for 1h, Ctrl-C exits 0", async () => {
  await using env = await setup();
  await using w = await Watcher.start(env);
  // Skip.
  const a = await request(env.c, ["echo", "a"]);
  let at = await w.waitFor(PROMPT, await w.waitFor(`approval request ${a.id.slice(0, 8)}`));
  await w.answer("s\n");
  at = await w.waitFor(`skipped ${a.id.slice(0, 8)}`, at);
  assert.equal((await decision(env.c, a.id, 0)).decision, null, "skip answers nothing");
  // Decided elsewhere while the card is up.
  const b = await request(env.c, ["echo", "b"]);
  at = await w.waitFor(PROMPT, await w.waitFor(`approval request ${b.id.slice(0, 8)}`, at));
  await ok(env.c, "exec.approval.resolve", { id: b.id, decision: "deny" });
  at = await w.waitFor(`request ${b.id.slice(0, 8)} was decided elsewhere: deny`, at);
  // The next answer goes to the next card, not to the cancelled one.
  const c = await request(env.c, ["echo", "c"]);
  at = await w.waitFor(PROMPT, await w.waitFor(`approval request ${c.id.slice(0, 8)}`, at));
  await w.answer("h\n");
  const d = await decision(env.c, c.id);
  assert.equal(d.decision, "allow-always", w.show());
  await w.waitFor(`allowed for 1h ${c.id.slice(0, 8)}`, at);
  const policy = await ok(env.c, "exec.approvals.get", {});
  const entry = policy.file.agents.main.allowlist.find((e: AnyFrame) => e.argPattern === "c");
  assert.ok(entry, JSON.stringify(policy.file));
  assert.ok(Math.abs(entry.expiresAtMs - (entry.addedAtMs + 3_600_000)) < 1000);
  // Ctrl-C: exit 0; the skipped request is still pending.
  w.proc.kill("SIGINT");
  assert.equal(await w.exit(), 0, w.show());
  assert.equal((await decision(env.c, a.id, 0)).decision, null);
});

Deno.test("cli approvals: end of stdin stops the watcher at the next prompt; --once then exits 1", async () => {
  await using env = await setup();
  await using w = await Watcher.start(env, ["--once"]);
  await w.closeStdin();
  const r = await request(env.c, ["echo", "eof"]);
  await w.waitFor(`end of input: request ${r.id.slice(0, 8)} stays pending`);
  assert.equal(await w.exit(), 1, w.show());
  assert.equal((await decision(env.c, r.id, 0)).decision, null);
});

// ------------------------------------------------------------------ the policy

Deno.test("cli approvals policy: set, allow and remove round trip through get --json", async () => {
  await using env = await setup();
  const get = async () => json(okRun(await gw(env, ["policy", "get", "--json"]), "policy get"));
  const first = await get();
  assert.equal(first.exists, false);
  assert.deepEqual(first.file.defaults, {
    security: "allowlist",
    ask: "on-miss",
    askFallback: "deny",
  });

  // set: defaults, then one agent.
  const set = await gw(env, ["policy", "set", "--ask", "always", "--ask-fallback", "allowlist"]);
  okRun(set, "policy set");
  assert.match(
    set.stdout,
    /saved defaults: security allowlist · ask always · ask-fallback allowlist/,
  );
  const agent = okRun(
    await gw(env, ["policy", "set", "--agent", "ops", "--security", "full", "--json"]),
    "policy set --agent",
  );
  const afterSet = json(agent);
  assert.deepEqual(afterSet.file.defaults, {
    security: "allowlist",
    ask: "always",
    askFallback: "allowlist",
  });
  assert.deepEqual(afterSet.file.agents.ops, { security: "full" });
  assert.equal((await get()).hash, afterSet.hash);
  okRun(await gw(env, ["policy", "set", "--ask", "on-miss"]), "policy set back");

  // allow: every agent by default; --args and --ttl.
  const allow = okRun(
    await gw(env, ["policy", "allow", "**/echo", "--args", "hi *", "--ttl", "2h", "--json"]),
    "policy allow",
  );
  const added = json(allow).entry;
  assert.equal(added.pattern, "**/echo");
  assert.equal(added.argPattern, "hi *");
  assert.ok(Math.abs(added.expiresAtMs - Date.now() - 7_200_000) < 60_000);
  const listed = (await get()).file.agents["*"].allowlist;
  assert.deepEqual(listed.map((e: AnyFrame) => e.id), [added.id]);
  assert.equal(
    (await ok(env.c, "exec.approval.request", { commandArgv: ["echo", "hi", "there"] })).status,
    "allowed",
  );
  assert.equal(
    (await ok(env.c, "exec.approval.request", { commandArgv: ["echo", "bye"] })).status,
    "pending",
  );
  const mine = okRun(
    await gw(env, ["policy", "allow", "/usr/bin/tr*", "--agent", "ops"]),
    "policy allow --agent",
  );
  assert.match(mine.stdout, /allowed \/usr\/bin\/tr\* with args any for agent ops/);

  // get, readable.
  const text = okRun(await gw(env, ["policy", "get"]), "policy get").stdout;
  assert.match(text, /defaults\s+security allowlist · ask on-miss · ask-fallback allowlist/, text);
  assert.match(text, /\nops\s+full\s+\(on-miss\)\s+\(allowlist\)\n/, text);
  assert.match(text, /allowlist \(2\)/, text);
  const row = text.split("\n").find((l) => l.startsWith(added.id.slice(0, 8)));
  assert.ok(row, text);
  assert.match(row, /\* \(all\)\s+\*\*\/echo\s+hi \*\s+in (1h 59m|2h)\s+now\s+cli$/, row);

  // remove by prefix.
  const removed = okRun(
    await gw(env, ["policy", "remove", added.id.slice(0, 6), "--json"]),
    "policy remove",
  );
  assert.equal(json(removed).removed.id, added.id);
  const after = await get();
  assert.equal(after.file.agents["*"], undefined, "an emptied agent goes away");
  assert.equal(after.file.agents.ops.allowlist.length, 1);
  assert.equal(
    (await ok(env.c, "exec.approval.request", { commandArgv: ["echo", "hi", "there"] })).status,
    "pending",
  );
  const missing = await gw(env, ["policy", "remove", added.id.slice(0, 6)]);
  assert.equal(missing.code, 1, show(missing));
  assert.match(missing.stderr, /no allowlist entry has an id starting with/);

  // --agent ops --security inherit drops the agent's own setting.
  const inherit = json(
    okRun(
      await gw(env, ["policy", "set", "--agent", "ops", "--security", "inherit", "--json"]),
      "inherit",
    ),
  );
  assert.deepEqual(Object.keys(inherit.file.agents.ops), ["allowlist"]);
});

Deno.test("cli approvals policy: a write that loses the race reads again and retries once", async () => {
  await using env = await setup();
  const client = new GatewayClient({
    url: env.t.url,
    token: TEST_TOKEN,
    scopes: ["operator.admin"],
    reconnect: false,
  });
  await client.connect();
  try {
    let sets = 0;
    const call = async (m: string, p: unknown) => {
      if (m === "exec.approvals.set" && sets++ === 0) {
        // Someone else writes between our read and our write.
        const cur = await ok(env.c, "exec.approvals.get", {});
        cur.file.agents.other = { security: "deny" };
        await ok(env.c, "exec.approvals.set", { file: cur.file, baseHash: cur.hash });
      }
      return await client.request(m, p as never);
    };
    let applied = 0;
    const { snapshot } = await updatePolicy(call, (f) => {
      applied++;
      f.defaults.ask = "always";
    });
    assert.equal(applied, 2, "applied to the fresh read");
    assert.equal(sets, 2);
    assert.equal(snapshot.file.defaults.ask, "always");
    assert.deepEqual(snapshot.file.agents.other, { security: "deny" }, "the other write is kept");

    // Losing twice gives up with the CONFLICT.
    const always = async (m: string, p: unknown) => {
      if (m === "exec.approvals.set") {
        const cur = await ok(env.c, "exec.approvals.get", {});
        cur.file.defaults.askFallback = cur.file.defaults.askFallback === "deny" ? "full" : "deny";
        await ok(env.c, "exec.approvals.set", { file: cur.file, baseHash: cur.hash });
      }
      return await client.request(m, p as never);
    };
    await assert.rejects(
      updatePolicy(always, (f) => void (f.defaults.security = "deny")),
      (e: AnyFrame) => e.details?.code === "CONFLICT",
    );
  } finally {
    await client.close();
  }
});

// ------------------------------------------------------------------ usage

Deno.test("cli approvals: usage errors exit 2 before connecting", async () => {
  await using env = await setup();
  // A dead URL: a usage error must be found before any connect (exit 2, not 3).
  const dead = { home: env.home, conn: ["--url", "ws://127.0.0.1:9", "--token", "x"] };
  const cases: [string[], RegExp][] = [
    [["bogus"], /unknown approvals command 'bogus'/],
    [["--json"], /approvals does not take --json/],
    [["--every", "1h"], /approvals does not take --every/],
    [["watch", "extra"], /unexpected argument 'extra'/],
    [["policy", "frob"], /unknown approvals policy command 'frob'/],
    [["policy", "set"], /at least one setting/],
    [["policy", "set", "--security", "yolo"], /--security: expected deny, allowlist, full/],
    [["policy", "set", "--ask", "inherit"], /inherit only goes with --agent/],
    [["policy", "set", "--ask", "never", "--agent", "x"], /--ask: expected off, on-miss/],
    [["policy", "get", "--once"], /policy get does not take --once/],
    [["policy", "allow"], /usage: gw approvals policy allow <pattern>/],
    [["policy", "allow", "git"], /expected something like \/usr\/bin\/git or \*\*\/git/],
    [["policy", "allow", "/bin/ls", "--ttl", "soon"], /--ttl: expected a duration/],
    [["policy", "allow", "/bin/ls", "--security", "full"], /allow does not take --security/],
    [["policy", "remove"], /usage: gw approvals policy remove/],
    [["policy", "get", "extra"], /unexpected argument 'extra'/],
  ];
  const runs = await Promise.all(cases.map(([args]) => gw(dead, args)));
  runs.forEach((r, i) => {
    const [args, re] = cases[i]!;
    assert.equal(r.code, 2, `${args.join(" ")}: ${show(r)}`);
    assert.match(r.stderr, re, `${args.join(" ")}: ${show(r)}`);
  });
  // And a good command against the dead URL cannot connect: 3.
  const down = await gw(dead, ["policy", "get"]);
  assert.equal(down.code, 3, show(down));
});

Deno.test("cli approvals: an unknown entry exits 1; answers and escaping, directly", async () => {
  await using env = await setup();
  // A remove of nothing is a lookup error (1).
  const none = await gw(env, ["policy", "remove", "ffff"]);
  assert.equal(none.code, 1, show(none));
  // The parsers, directly.
  assert.deepEqual(parseAnswer(" Y "), { decision: "allow-once" });
  assert.deepEqual(parseAnswer("h"), { decision: "allow-always", ttlMs: 3_600_000 });
  assert.equal(parseAnswer(""), undefined, "no default answer");
  assert.equal(visible("a\u202Eb\x1b[2J"), "a\\u{202E}b\\u{001B}[2J");
  assert.equal(visible("C:\\u{41}"), "C:\\u{41}", "backslashes stay as they are");
  const e = await err(env.c, "exec.approval.resolve", { id: "nope", decision: "deny" });
  assert.equal(e.code, "APPROVAL_NOT_FOUND");
});
