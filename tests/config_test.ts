/**
 * The config methods over real sockets: config.get/set/patch/apply with
 * compare-and-set, validation, redaction, hot apply, restart-required
 * reporting, the file on disk, and config.schema.
 */
import assert from "node:assert/strict";
import { methods } from "../methods/mod.ts";
import { type Gateway, GatewayStartError, startGateway } from "../lib/server/gateway.ts";
import {
  type AnyFrame,
  closedWithin,
  connected,
  err,
  ok,
  RawClient,
  startTestGateway,
  TEST_TOKEN,
} from "./_helpers.ts";
import { ManualClock } from "./_clock.ts";

// ---- local helpers ---------------------------------------------------------------------------

const EMPTY_HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const REDACTED = "__GW_REDACTED__";

async function sha256(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Names in `dir` that look like leftover temp files of an atomic write. */
async function tempFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) if (/\.tmp|~$/.test(e.name)) out.push(e.name);
  return out;
}

/** A port that was free a moment ago. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * A gateway started without the test helper's port/bind/token overrides, so
 * the config file alone decides them (what `restartRequired` and the config
 * token depend on).
 */
async function startFromConfig(
  config: Record<string, unknown>,
  stateDir?: string,
): Promise<{ gw: Gateway; url: string; stateDir: string } & AsyncDisposable> {
  const dir = stateDir ?? await Deno.makeTempDir({ prefix: "gw-test-cfg-" });
  await Deno.writeTextFile(`${dir}/gw.json`, JSON.stringify(config, null, 2));
  const gw = await startGateway({ stateDir: dir, logToStderr: false, methods });
  return {
    gw,
    url: gw.url,
    stateDir: dir,
    async [Symbol.asyncDispose]() {
      await gw.shutdown("test done");
      if (!stateDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

// ---- tests -----------------------------------------------------------------------------------

Deno.test("config.get on a fresh state: no file, the hash of empty, defaults", async () => {
  await using t = await startTestGateway();
  const c = await connected(t.url, { scopes: ["operator.read"] });
  const res = await c.request("config.get");
  const g = res.payload;
  assert.equal(g.exists, false);
  assert.equal(g.hash, EMPTY_HASH);
  assert.equal(g.raw, null);
  assert.equal(g.parsed, null);
  assert.equal(g.valid, true);
  assert.deepEqual(g.issues, []);
  assert.equal(g.path, `${t.stateDir}/gw.json`);
  assert.equal(g.config.gateway.port, 18789);
  assert.equal(g.config.gateway.bind, "127.0.0.1");
  assert.equal(g.config.gateway.tickIntervalMs, 30_000);
  assert.equal(g.config.gateway.healthIntervalMs, 60_000);
  assert.equal(g.config.gateway.maxPayload, 25 * 1024 * 1024);
  assert.equal(g.config.gateway.maxBufferedBytes, 50 * 1024 * 1024);
  assert.deepEqual(g.config.agents.defaults.heartbeat, { enabled: true, every: "30m" });
  assert.deepEqual(g.config.agents.list, []);
  assert.deepEqual(g.config.models.providers, {});
  assert.equal(g.config.logging.level, "info");
  assert.equal(JSON.stringify(res).includes(TEST_TOKEN), false, "the flag token never shows");
  assert.equal(await readOrNull(`${t.stateDir}/gw.json`), null, "config.get writes nothing");
  await c.close();
});

Deno.test("config.set with raw JSON, then config.get shows it with a new hash", async (t) => {
  await using gw = await startTestGateway();
  const c = await connected(gw.url);
  const path = `${gw.stateDir}/gw.json`;
  const wanted = { gateway: { tickIntervalMs: 45_000 }, agents: { list: [{ id: "ops" }] } };
  let hash = "";

  await t.step("set (raw) on a fresh state needs no baseHash", async () => {
    const r = await ok(c, "config.set", { raw: JSON.stringify(wanted) });
    assert.equal(r.ok, true);
    assert.equal(r.path, path);
    assert.deepEqual(r.restartRequired, []);
    assert.equal(r.config.gateway.tickIntervalMs, 45_000);
    assert.notEqual(r.hash, EMPTY_HASH);
    const file = await Deno.readTextFile(path);
    assert.equal(r.hash, await sha256(file), "the hash is of the file's bytes");
    assert.deepEqual(JSON.parse(file), wanted);
    hash = r.hash;
  });

  await t.step("get returns it", async () => {
    const g = await ok(c, "config.get");
    assert.equal(g.exists, true);
    assert.equal(g.hash, hash);
    assert.deepEqual(g.parsed, wanted);
    assert.deepEqual(JSON.parse(g.raw), wanted);
    assert.equal(g.config.gateway.tickIntervalMs, 45_000);
    assert.equal(g.config.gateway.port, 18789, "defaults fill what the file leaves out");
    assert.deepEqual(g.config.agents.list, [{ id: "ops" }]);
  });

  await t.step("set (object form) with the hash replaces the whole file", async () => {
    const r = await ok(c, "config.set", { config: { logging: { level: "warn" } }, baseHash: hash });
    assert.notEqual(r.hash, hash);
    const g = await ok(c, "config.get");
    assert.deepEqual(g.parsed, { logging: { level: "warn" } });
    assert.equal(g.config.gateway.tickIntervalMs, 30_000, "not a merge: the old field is gone");
    assert.equal(g.hash, r.hash);
    hash = r.hash;
  });

  await t.step("config.apply behaves the same", async () => {
    const r = await ok(c, "config.apply", { raw: "{}", baseHash: hash });
    assert.deepEqual((await ok(c, "config.get")).parsed, {});
    assert.equal((await ok(c, "config.get")).hash, r.hash);
  });
  await c.close();
});

Deno.test("compare-and-set: stale, missing and malformed baseHash leave the file unchanged", async (t) => {
  await using gw = await startTestGateway();
  const c = await connected(gw.url);
  const path = `${gw.stateDir}/gw.json`;
  const first = await ok(c, "config.set", { config: { gateway: { tickIntervalMs: 40_000 } } });
  const bytes = await Deno.readTextFile(path);

  await t.step("stale baseHash → CONFIG_CONFLICT", async () => {
    for (const method of ["config.set", "config.apply"]) {
      const e = await err(c, method, { config: {}, baseHash: EMPTY_HASH });
      assert.equal(e.code, "INVALID_REQUEST");
      assert.equal(e.details.code, "CONFIG_CONFLICT");
      assert.equal(e.details.currentHash, first.hash);
    }
    const e = await err(c, "config.patch", {
      patch: { logging: { level: "warn" } },
      baseHash: "a".repeat(64),
    });
    assert.equal(e.details.code, "CONFIG_CONFLICT");
    assert.equal(await Deno.readTextFile(path), bytes);
  });

  await t.step("no baseHash while the file exists → CONFIG_BASE_HASH_REQUIRED", async () => {
    for (
      const [method, params] of [
        ["config.set", { config: {} }],
        ["config.apply", { raw: "{}" }],
        ["config.patch", { patch: { logging: { level: "warn" } } }],
      ] as const
    ) {
      const e = await err(c, method, params);
      assert.equal(e.code, "INVALID_REQUEST");
      assert.equal(e.details.code, "CONFIG_BASE_HASH_REQUIRED", method);
      assert.equal(e.details.currentHash, first.hash);
    }
    assert.equal(await Deno.readTextFile(path), bytes);
  });

  await t.step("a baseHash that is not a sha256 hex → params error", async () => {
    const e = await err(c, "config.set", { config: {}, baseHash: "abc" });
    assert.equal(e.code, "INVALID_REQUEST");
    assert.match(e.message, /params\.baseHash/);
    assert.equal(await Deno.readTextFile(path), bytes);
  });

  await t.step("a file changed behind gw's back conflicts too", async () => {
    const edited = JSON.stringify({ gateway: { tickIntervalMs: 50_000 } });
    await Deno.writeTextFile(path, edited);
    const e = await err(c, "config.set", { config: {}, baseHash: first.hash });
    assert.equal(e.details.code, "CONFIG_CONFLICT");
    assert.equal(e.details.currentHash, await sha256(edited));
    assert.equal(await Deno.readTextFile(path), edited);
  });
  await c.close();
});

Deno.test("concurrent writers with the same baseHash: exactly one wins", async () => {
  await using gw = await startTestGateway();
  const clients = await Promise.all([1, 2, 3, 4, 5].map(() => connected(gw.url)));
  const base = (await ok(clients[0]!, "config.get")).hash;
  const results = await Promise.all(
    clients.map((c, i) =>
      c.request(i % 2 ? "config.patch" : "config.set", {
        ...(i % 2
          ? { patch: { agents: { list: [{ id: `w${i}` }] } } }
          : { config: { agents: { list: [{ id: `w${i}` }] } } }),
        baseHash: base,
      })
    ),
  );
  const winners = results.filter((r) => r.ok);
  assert.equal(
    winners.length,
    1,
    JSON.stringify(results.map((r) => r.error?.details?.code ?? "ok")),
  );
  for (const r of results.filter((r) => !r.ok)) {
    assert.equal(r.error.details.code, "CONFIG_CONFLICT");
    assert.equal(r.error.details.currentHash, winners[0].payload.hash);
  }
  const g = await ok(clients[0]!, "config.get");
  assert.equal(g.hash, winners[0].payload.hash);
  assert.equal(g.parsed.agents.list.length, 1);
  for (const c of clients) await c.close();
});

Deno.test("an invalid config is refused naming the field, CONFIG_INVALID, file unchanged", async () => {
  await using gw = await startTestGateway();
  const c = await connected(gw.url);
  const path = `${gw.stateDir}/gw.json`;
  const base = await ok(c, "config.set", { config: { logging: { level: "warn" } } });
  const bytes = await Deno.readTextFile(path);
  const cases: [Record<string, unknown>, RegExp, string][] = [
    [
      { config: { gateway: { tickIntervalMs: "x" } } },
      /gateway\.tickIntervalMs/,
      "gateway.tickIntervalMs",
    ],
    [
      { config: { gateway: { tickIntervalMs: 10 } } },
      /gateway\.tickIntervalMs/,
      "gateway.tickIntervalMs",
    ],
    [{ config: { bogus: 1 } }, /'bogus'/, ""],
    [{ config: { gateway: { prot: 1 } } }, /gateway.*'prot'/, "gateway"],
    [
      { raw: JSON.stringify({ agents: { list: [{ id: "bad id!" }] } }) },
      /agents\.list\[?\.?0\]?\.id/,
      "agents.list.0.id",
    ],
    [
      { config: { agents: { defaults: { heartbeat: { every: "soon" } } } } },
      /agents\.defaults\.heartbeat\.every/,
      "agents.defaults.heartbeat.every",
    ],
    // Saved, this would lock every client out, the writer included.
    [
      { config: { gateway: { auth: { mode: "password" } } } },
      /gateway\.auth\.password.*password mode needs/,
      "gateway.auth.password",
    ],
  ];
  for (const [params, re, issuePath] of cases) {
    const e = await err(c, "config.set", { ...params, baseHash: base.hash });
    assert.equal(e.code, "INVALID_REQUEST", JSON.stringify(params));
    assert.equal(e.details?.code, "CONFIG_INVALID", JSON.stringify(e));
    assert.match(e.message, re);
    assert.equal(e.details.issues[0].path, issuePath, JSON.stringify(e.details.issues));
  }
  // The same through config.patch.
  const e = await err(c, "config.patch", {
    patch: { gateway: { maxPayload: "big" } },
    baseHash: base.hash,
  });
  assert.equal(e.details.code, "CONFIG_INVALID");
  assert.match(e.message, /gateway\.maxPayload/);
  // Raw text that is not JSON, or not an object, names params.raw.
  for (const raw of ["{", "[]", "42"]) {
    const e2 = await err(c, "config.set", { raw, baseHash: base.hash });
    assert.equal(e2.code, "INVALID_REQUEST");
    assert.match(e2.message, /params\.raw/);
  }
  assert.equal(await Deno.readTextFile(path), bytes);
  assert.equal((await ok(c, "config.get")).hash, base.hash);
  assert.deepEqual(await tempFiles(gw.stateDir), []);
  await c.close();
});

Deno.test("config.patch is a JSON merge patch: objects merge, arrays replace, null deletes", async () => {
  await using gw = await startTestGateway();
  const c = await connected(gw.url);
  const base = await ok(c, "config.set", {
    config: {
      gateway: { tickIntervalMs: 45_000, healthIntervalMs: 90_000 },
      agents: { list: [{ id: "a" }, { id: "b" }] },
      logging: { level: "warn" },
    },
  });
  const r = await ok(c, "config.patch", {
    patch: {
      gateway: { tickIntervalMs: null, allowedOrigins: ["http://ui.example"] },
      agents: { list: [{ id: "c", name: "C" }] },
      logging: null,
    },
    baseHash: base.hash,
  });
  const g = await ok(c, "config.get");
  assert.equal(g.hash, r.hash);
  assert.deepEqual(g.parsed, {
    gateway: { healthIntervalMs: 90_000, allowedOrigins: ["http://ui.example"] },
    agents: { list: [{ id: "c", name: "C" }] },
  });
  assert.equal(g.config.gateway.tickIntervalMs, 30_000, "deleted → default");
  assert.equal(g.config.logging.level, "info");
  // The raw form of the patch.
  const r2 = await ok(c, "config.patch", {
    raw: '{"gateway":{"healthIntervalMs":null}}',
    baseHash: r.hash,
  });
  assert.deepEqual((await ok(c, "config.get")).parsed.gateway, {
    allowedOrigins: ["http://ui.example"],
  });
  // Exactly one of raw or patch.
  const e = await err(c, "config.patch", { baseHash: r2.hash });
  assert.match(e.message, /exactly one of raw/);
  const e2 = await err(c, "config.patch", { raw: "{}", patch: {}, baseHash: r2.hash });
  assert.match(e2.message, /exactly one of raw/);
  await c.close();
});

Deno.test("secrets are redacted in config.get and the redacted marker written back keeps them", async (t) => {
  const secret = "config-token-0123456789-abcdef";
  const apiKey = "sk-ant-secret-api-key-42";
  await using gw = await startFromConfig({
    gateway: { port: 0, auth: { token: secret } },
    models: { providers: { anthropic: { apiKey, models: [{ id: "claude-x" }] } } },
  });
  const c = await connected(gw.url, { auth: { token: secret } });
  let snapshot: AnyFrame;

  await t.step("config.get shows the marker in config, parsed and raw", async () => {
    const res = await c.request("config.get");
    snapshot = res.payload;
    assert.equal(snapshot.config.gateway.auth.token, REDACTED);
    assert.equal(snapshot.parsed.gateway.auth.token, REDACTED);
    assert.equal(JSON.parse(snapshot.raw).gateway.auth.token, REDACTED);
    assert.equal(snapshot.config.models.providers.anthropic.apiKey, REDACTED);
    assert.equal(snapshot.parsed.models.providers.anthropic.apiKey, REDACTED);
    const wire = JSON.stringify(res);
    assert.equal(wire.includes(secret), false, "the token never leaves the gateway");
    assert.equal(wire.includes(apiKey), false, "the api key never leaves the gateway");
  });

  await t.step("writing the redacted snapshot back keeps the secrets", async () => {
    const next = JSON.parse(snapshot.raw);
    next.gateway.tickIntervalMs = 20_000;
    const r = await ok(c, "config.set", { raw: JSON.stringify(next), baseHash: snapshot.hash });
    assert.equal(r.config.gateway.auth.token, REDACTED, "the write result is redacted too");
    const onDisk = JSON.parse(await Deno.readTextFile(`${gw.stateDir}/gw.json`));
    assert.equal(onDisk.gateway.auth.token, secret);
    assert.equal(onDisk.models.providers.anthropic.apiKey, apiKey);
    assert.equal(onDisk.gateway.tickIntervalMs, 20_000);
    const p = await ok(c, "config.patch", {
      patch: { gateway: { auth: { token: REDACTED } }, logging: { level: "warn" } },
      baseHash: r.hash,
    });
    assert.equal(
      JSON.parse(await Deno.readTextFile(`${gw.stateDir}/gw.json`)).gateway.auth.token,
      secret,
    );
    assert.ok(p.hash);
  });

  await t.step("the old token still connects; the marker itself does not", async () => {
    assert.equal((await ok(c, "health")).ok, true, "the existing socket was not dropped");
    assert.equal(c.isClosed, false);
    const again = await connected(gw.url, { auth: { token: secret } });
    await again.close();
    const bad = new RawClient(gw.url);
    const res = await bad.connect({
      minProtocol: 4,
      maxProtocol: 4,
      client: { id: "cli", version: "t", platform: "linux", mode: "cli" },
      auth: { token: REDACTED },
    });
    assert.equal(res.ok, false);
    assert.equal(res.error.details.code, "AUTH_TOKEN_MISMATCH");
    await closedWithin(bad);
  });

  await t.step(
    "a new token through config.patch rotates: the caller gets its answer, then 4001",
    async () => {
      const rotated = "rotated-token-0123456789-xyz";
      const hash = (await ok(c, "config.get")).hash;
      // Sent by hand: the socket closes, so no request timer may be left behind.
      c.send({
        type: "req",
        id: "rotate",
        method: "config.patch",
        params: { patch: { gateway: { auth: { token: rotated } } }, baseHash: hash },
      });
      const closed = await closedWithin(c);
      assert.equal(closed.code, 4001, "sockets that used the old token are closed");
      const onDisk = JSON.parse(await Deno.readTextFile(`${gw.stateDir}/gw.json`));
      assert.equal(onDisk.gateway.auth.token, rotated, "the write happened");
      const fresh = await connected(gw.url, { auth: { token: rotated } });
      await fresh.close();
      const old = new RawClient(gw.url);
      const res = await old.connect({
        minProtocol: 4,
        maxProtocol: 4,
        client: { id: "cli", version: "t", platform: "linux", mode: "cli" },
        auth: { token: secret },
      });
      assert.equal(res.ok, false);
      assert.equal(res.error.details.code, "AUTH_TOKEN_MISMATCH");
      await closedWithin(old);
      const answer = c.frames.find((f) => f.id === "rotate");
      assert.ok(
        answer?.ok,
        `the caller must learn its write succeeded before its socket is closed; got ${
          JSON.stringify(answer)
        }`,
      );
    },
  );
  await c.close();
});

Deno.test("hot apply: tickIntervalMs changes new hello-ok policies and the tick cadence", async () => {
  const clock = new ManualClock();
  await using gw = await startTestGateway({ clock });
  const c1 = await connected(gw.url);
  assert.equal(c1.frames.find((f) => f.id === "connect").payload.policy.tickIntervalMs, 30_000);
  const timers = clock.pending;
  const r = await ok(c1, "config.patch", { patch: { gateway: { tickIntervalMs: 5_000 } } });
  assert.deepEqual(r.restartRequired, []);
  assert.equal(clock.pending, timers, "the old tick interval was replaced, not added to");

  const c2 = await connected(gw.url);
  assert.equal(c2.frames.find((f) => f.id === "connect").payload.policy.tickIntervalMs, 5_000);

  const ticksOf = (c: RawClient) => c.frames.filter((f) => f.event === "tick");
  clock.advance(4_999);
  await ok(c1, "health"); // anything broadcast during advance() is on the wire before this answer
  assert.equal(ticksOf(c1).length, 0, "no tick before 5 s");
  const next = c1.nextEvent("tick");
  clock.advance(1);
  assert.deepEqual((await next).payload, { ts: clock.now() });
  const more = c2.nextEvent("tick");
  clock.advance(5_000);
  await more;
  await ok(c1, "health");
  assert.equal(ticksOf(c1).length, 2);
  // Back to 30 s: no tick 5 s later.
  await ok(c1, "config.patch", {
    patch: { gateway: { tickIntervalMs: null } },
    baseHash: (await ok(c1, "config.get")).hash,
  });
  clock.advance(29_000);
  await ok(c1, "health");
  assert.equal(ticksOf(c1).length, 2, "the 5 s interval is gone");
  await c1.close();
  await c2.close();
});

Deno.test("restartRequired lists gateway.port when the port changes, and nothing otherwise", async (t) => {
  const port = freePort();
  await using gw = await startFromConfig({ gateway: { port, auth: { token: TEST_TOKEN } } });
  assert.equal(gw.gw.port, port);
  const c = await connected(gw.url);
  let hash = (await ok(c, "config.get")).hash;

  await t.step("an unrelated change needs no restart", async () => {
    const r = await ok(c, "config.patch", {
      patch: { logging: { level: "warn" } },
      baseHash: hash,
    });
    assert.deepEqual(r.restartRequired, []);
    hash = r.hash;
  });
  await t.step("a port change does, and the gateway stays on its port", async () => {
    const r = await ok(c, "config.patch", {
      patch: { gateway: { port: port + 1 } },
      baseHash: hash,
    });
    assert.deepEqual(r.restartRequired, ["gateway.port"]);
    assert.equal(gw.gw.port, port);
    assert.equal((await ok(c, "health")).ok, true);
    hash = r.hash;
  });
  await t.step("setting it back clears it", async () => {
    const r = await ok(c, "config.patch", { patch: { gateway: { port } }, baseHash: hash });
    assert.deepEqual(r.restartRequired, []);
  });
  await c.close();
});

Deno.test("restartRequired: unchanged port 0 or bind 'localhost' need no restart", async (t) => {
  // gateway.port 0 means "any free port" and bind "localhost" resolves to an
  // address; neither changed, so an unrelated write must not ask for a restart.
  for (const gateway of [{ port: 0 }, { port: freePort(), bind: "localhost" }]) {
    await t.step(JSON.stringify(gateway), async () => {
      await using gw = await startFromConfig({
        gateway: { ...gateway, auth: { token: TEST_TOKEN } },
      });
      const c = await connected(gw.url);
      const hash = (await ok(c, "config.get")).hash;
      const r = await ok(c, "config.patch", {
        patch: { logging: { level: "warn" } },
        baseHash: hash,
      });
      await c.close();
      assert.deepEqual(r.restartRequired, [], `bound to ${gw.gw.url}`);
    });
  }
});

Deno.test("the config file is written with mode 0600 and no temp files remain", async (t) => {
  if (Deno.build.os === "windows") return;
  await t.step("fresh state", async () => {
    await using gw = await startTestGateway();
    const c = await connected(gw.url);
    await ok(c, "config.set", { config: { logging: { level: "warn" } } });
    assert.equal((await Deno.stat(`${gw.stateDir}/gw.json`)).mode! & 0o777, 0o600);
    assert.deepEqual(await tempFiles(gw.stateDir), []);
    await c.close();
  });
  await t.step("replacing a hand-written 0644 file", async () => {
    await using gw = await startTestGateway({ config: { logging: { level: "info" } } });
    await Deno.chmod(`${gw.stateDir}/gw.json`, 0o644);
    const c = await connected(gw.url);
    const hash = (await ok(c, "config.get")).hash;
    for (let i = 0; i < 5; i++) {
      const h = (await ok(c, "config.get")).hash;
      await ok(c, "config.patch", {
        patch: { gateway: { tickIntervalMs: 10_000 + i * 1000 } },
        baseHash: h,
      });
    }
    assert.notEqual((await ok(c, "config.get")).hash, hash);
    assert.equal((await Deno.stat(`${gw.stateDir}/gw.json`)).mode! & 0o777, 0o600);
    assert.deepEqual(await tempFiles(gw.stateDir), []);
    await c.close();
  });
});

Deno.test("a restart on the same state dir keeps the config", async (t) => {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-test-restart-" });
  try {
    let before: AnyFrame;
    await t.step("write", async () => {
      await using gw = await startTestGateway({ stateDir });
      const c = await connected(gw.url);
      await ok(c, "config.set", {
        config: { gateway: { tickIntervalMs: 12_000 }, agents: { list: [{ id: "ops" }] } },
      });
      before = await ok(c, "config.get");
      await c.close();
    });
    await t.step("restart and read", async () => {
      await using gw = await startTestGateway({ stateDir });
      const c = await connected(gw.url);
      const after = await ok(c, "config.get");
      assert.equal(after.hash, before.hash);
      assert.deepEqual(after.parsed, before.parsed);
      assert.equal(c.frames.find((f) => f.id === "connect").payload.policy.tickIntervalMs, 12_000);
      assert.equal((await ok(c, "agents.list")).defaultId, "ops");
      await c.close();
    });
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});

Deno.test("config.schema: a JSON Schema with gateway properties and sensitive uiHints", async (t) => {
  await using gw = await startTestGateway();
  const c = await connected(gw.url, { scopes: ["operator.read"] });
  const s = await ok(c, "config.schema");

  await t.step("shape", () => {
    assert.equal(s.schema.type, "object");
    assert.equal(typeof s.schema.properties.gateway, "object");
    assert.equal(s.schema.properties.gateway.properties.tickIntervalMs.type, "integer");
    assert.equal(
      typeof s.schema.properties.gateway.properties.tickIntervalMs.description,
      "string",
    );
    assert.equal(
      s.schema.additionalProperties,
      false,
      "unknown keys are refused, as the server does",
    );
    assert.equal(typeof s.version, "string");
    assert.ok(!Number.isNaN(Date.parse(s.generatedAt)));
    assert.deepEqual(s.uiHints["gateway.auth.token"], { sensitive: true });
    assert.deepEqual(s.uiHints["gateway.auth.password"], { sensitive: true });
  });

  await t.step("every secret-named field is marked sensitive (records and arrays included)", () => {
    const SECRET = new Set(["token", "password", "apiKey", "botToken", "secret"]);
    const found: string[] = [];
    const walk = (node: AnyFrame, path: string[]) => {
      if (!node || typeof node !== "object") return;
      for (const [k, v] of Object.entries(node.properties ?? {})) {
        if (SECRET.has(k)) found.push([...path, k].join("."));
        walk(v, [...path, k]);
      }
      if (node.additionalProperties && typeof node.additionalProperties === "object") {
        walk(node.additionalProperties, [...path, "*"]);
      }
      if (node.items) walk(node.items, [...path, "*"]);
    };
    walk(s.schema, []);
    assert.ok(found.includes("models.providers.*.apiKey"), JSON.stringify(found));
    const missing = found.filter((p) => {
      const re = new RegExp(
        "^" + p.replace(/[.]/g, "\\.").replace(/\\\.\*\\\./g, "\\.[^.]+\\.") + "$",
      );
      return !Object.entries(s.uiHints).some(([k, v]) =>
        (k === p || re.test(k)) && (v as { sensitive?: boolean }).sensitive === true
      );
    });
    assert.deepEqual(missing, [], `uiHints: ${JSON.stringify(s.uiHints)}`);
  });
  await c.close();
});

Deno.test("an invalid gw.json on disk makes startGateway reject with GatewayStartError naming the field", async (t) => {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-test-bad-" });
  try {
    const cases: [string, RegExp][] = [
      [JSON.stringify({ gateway: { tickIntervalMs: "x" } }), /gateway\.tickIntervalMs/],
      [JSON.stringify({ gateway: { port: 0 }, surprise: true }), /surprise/],
      ["{ not json", /not valid JSON/],
      ["[1,2]", /expected a JSON object/],
    ];
    for (const [text, re] of cases) {
      await t.step(text, async () => {
        await Deno.writeTextFile(`${stateDir}/gw.json`, text);
        const opts = {
          stateDir,
          port: 0,
          bind: "127.0.0.1",
          token: TEST_TOKEN,
          logToStderr: false,
        };
        await assert.rejects(startGateway({ ...opts, methods }), (x: unknown) => {
          assert.ok(x instanceof GatewayStartError, String(x));
          assert.match(x.message, re);
          assert.match(x.message, /gw\.json/);
          return true;
        });
      });
    }
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});
