/**
 * The method table over real sockets: the scope matrix (every advertised
 * method against every scope set, protocol 3 and 4), params validation, and
 * the behaviour of each method.
 */
import assert from "node:assert/strict";
import { methods } from "../methods/mod.ts";
import { KNOWN_METHOD_SCOPES } from "../lib/protocol/known_methods.ts";
import type { MethodDef, MethodScope } from "../lib/server/method.ts";
import {
  type AnyFrame,
  connected,
  err,
  ok,
  RawClient,
  signedConnected,
  startTestGateway,
  type TestGateway,
} from "./_helpers.ts";
import { ManualClock } from "./_clock.ts";
import { TelegramApi } from "./_telegram_api.ts";

// ---- local helpers ---------------------------------------------------------------------------

/**
 * A gateway with every method available: Telegram configured against a Bot
 * API server for tests, so the channel's methods are advertised too.
 */
async function fullGateway(): Promise<TestGateway & { tg: TelegramApi }> {
  const token = "555555:AAmethods-test-token-abcdef";
  const tg = await TelegramApi.start({ tokens: [token] });
  const gw = await startTestGateway({
    config: { channels: { telegram: { botToken: token, apiRoot: tg.apiRoot } } },
  });
  const stop = async () => {
    await gw.stop();
    await tg.close();
  };
  return { ...gw, tg, stop, [Symbol.asyncDispose]: stop };
}

/** sha256 of the empty string: the hash config.get reports when gw.json does not exist. */
const READ = "operator.read";
const WRITE = "operator.write";
const ADMIN = "operator.admin";
const APPROVALS = "operator.approvals";
const PAIRING = "operator.pairing";
/** The server closes a socket after more than this many unauthorized calls. */
const FLOOD_LIMIT = 10;

/** Connect an operator on `protocol` with exactly `scopes` (cli/cli on loopback keeps them). */
async function operator(
  url: string,
  scopes: string[],
  protocol = 4,
): Promise<RawClient> {
  const c = await connected(url, { minProtocol: protocol, maxProtocol: protocol, scopes });
  const hello = c.frames.find((f) => f.id === "connect").payload;
  assert.equal(hello.protocol, protocol);
  assert.deepEqual(hello.auth.scopes, scopes, "the test client must keep its requested scopes");
  return c;
}

/** Whether `granted` satisfies a method's scope, computed independently of the server. */
function satisfied(granted: readonly string[], scope: MethodScope): boolean {
  if (scope === "none") return true;
  if (scope === "node") return false;
  const needed = `operator.${scope}`;
  if (granted.includes(ADMIN) || granted.includes(needed)) return true;
  return (scope === "read" || scope === "talk") && granted.includes(WRITE);
}

/** The exact error a denied call must get. */
function denial(scope: MethodScope, protocol: number): Record<string, unknown> {
  if (scope === "node") return { code: "INVALID_REQUEST", message: "unauthorized role: operator" };
  const needed = `operator.${scope === "none" ? "admin" : scope}`;
  if (protocol >= 4) {
    return {
      code: "FORBIDDEN",
      message: `missing scope: ${needed}`,
      details: { code: "MISSING_SCOPE", missingScope: needed, requiredScopes: [needed] },
    };
  }
  return { code: "INVALID_REQUEST", message: `missing scope: ${needed}` };
}

/** Fail when `res` is an authorization or dispatch error rather than ok or a params error. */
function assertAllowed(res: AnyFrame, method: string, label: string): void {
  if (res.ok) return;
  const e = res.error;
  // It ran, and what it was asked about does not exist: allowed.
  if (/_NOT_FOUND$/.test(e.details?.code ?? "")) return;
  assert.notEqual(e.code, "FORBIDDEN", `${label}: ${method} was refused: ${JSON.stringify(e)}`);
  assert.doesNotMatch(
    e.message,
    /missing scope|unauthorized role|unknown method/,
    `${label}: ${method}`,
  );
  assert.equal(e.code, "INVALID_REQUEST", `${label}: ${method}: ${JSON.stringify(e)}`);
  assert.match(e.message, new RegExp(`^invalid ${method.replace(/[.]/g, "\\.")} params: params`));
}

/** A snapshot of everything the table and validation tests must leave alone. */
async function stateOf(t: TestGateway, c: RawClient): Promise<Record<string, unknown>> {
  const cfg = await ok(c, "config.get");
  const status = await ok(c, "status");
  const presence = await ok(c, "system-presence");
  let file: string | null = null;
  try {
    file = await Deno.readTextFile(`${t.stateDir}/gw.json`);
  } catch { /* absent */ }
  return {
    file,
    configHash: cfg.hash,
    configExists: cfg.exists,
    lastHeartbeat: await ok(c, "last-heartbeat"),
    heartbeatsEnabled: status.heartbeat.enabled,
    queuedSystemEvents: status.queuedSystemEvents,
    // Entries added by system-event have neither clientId nor mode "gateway".
    extraPresence: presence.filter((p: AnyFrame) =>
      p.mode !== "gateway" && p.clientId === undefined
    ),
  };
}

/** Structured values for required fields no scalar satisfies (cron.add's unions). */
const STRUCTURED: unknown[] = [
  "operator",
  "allow-once",
  { version: 1, defaults: {}, agents: {} },
  { kind: "every", everyMs: 86_400_000 },
  { kind: "systemEvent", text: "x" },
  "now",
];

/** A value that `schema` accepts, for filling required fields; undefined when none is found. */
function validValue(schema: MethodDef["params"]): unknown {
  for (const v of ["x", true, 1, {}, [], ["x"], ["x", "y"], ...STRUCTURED]) {
    if (schema.safeParse(v).success) return v;
  }
  return undefined;
}

/** A value of the wrong type for `schema`; undefined when it accepts anything. */
function wrongValue(schema: MethodDef["params"]): unknown {
  for (const v of [12345, "x", [1], true]) if (!schema.safeParse(v).success) return v;
  return undefined;
}

/** The object fields of a method's params schema (empty when it is not an object schema). */
function fieldsOf(def: MethodDef): Record<string, MethodDef["params"]> {
  const shape = (def.params as unknown as { shape?: Record<string, MethodDef["params"]> }).shape;
  return shape ?? {};
}

/** Valid values for the required fields of `def`, so a test can isolate one field. */
function requiredBase(def: MethodDef): Record<string, unknown> {
  const base: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(fieldsOf(def))) {
    if (s.safeParse(undefined).success) continue;
    const v = validValue(s);
    assert.notEqual(v, undefined, `${def.name}: no valid value found for required field ${k}`);
    base[k] = v;
  }
  return base;
}

// ---- the scope matrix ------------------------------------------------------------------------

Deno.test("every advertised method answers each scope set with the right scope error or runs", async (t) => {
  await using gw = await fullGateway();

  await t.step("hello-ok advertises exactly the method table", async () => {
    const c = await operator(gw.url, [ADMIN]);
    const hello = c.frames.find((f) => f.id === "connect").payload;
    assert.deepEqual(hello.features.methods, methods.map((m) => m.name));
    assert.ok(methods.length > 0);
    await c.close();
  });

  const admin = await operator(gw.url, [ADMIN]);
  const before = await stateOf(gw, admin);

  const cases: { protocol: number; scopes: string[] }[] = [
    ...[[], [READ], [WRITE], [ADMIN], [APPROVALS], [PAIRING]].map((scopes) => ({
      protocol: 4,
      scopes,
    })),
    ...[[], [READ]].map((scopes) => ({ protocol: 3, scopes })),
  ];
  for (const { protocol, scopes } of cases) {
    const label = `v${protocol} [${scopes.join(",")}]`;
    await t.step(label, async () => {
      let c = await operator(gw.url, scopes, protocol);
      let denials = 0;
      // A fresh socket before the flood guard (more than 10 denials) would close this one.
      const beforeDenial = async () => {
        if (denials < FLOOD_LIMIT) return;
        await c.close();
        c = await operator(gw.url, scopes, protocol);
        denials = 0;
      };
      try {
        for (const def of methods) {
          if (satisfied(scopes, def.scope)) {
            const res = await c.request(def.name, {});
            assertAllowed(res, def.name, label);
          } else {
            await beforeDenial();
            const res = await c.request(def.name, {});
            denials++;
            assert.equal(res.ok, false, `${label}: ${def.name} should be refused`);
            assert.deepEqual(res.error, denial(def.scope, protocol), `${label}: ${def.name}`);
          }
        }
        // Unknown methods need admin: "unknown method" only for admins, a scope error for the rest.
        if (scopes.includes(ADMIN)) {
          const e = await err(c, "no.such.method", {});
          assert.deepEqual(e, {
            code: "INVALID_REQUEST",
            message: "unknown method: no.such.method",
          });
        } else {
          await beforeDenial();
          const e = await err(c, "no.such.method", {});
          denials++;
          assert.deepEqual(e, denial("admin", protocol));
        }
        assert.equal(c.isClosed, false, `${label}: the socket must survive ≤ 10 denials`);
      } finally {
        await c.close();
      }
    });
  }

  await t.step("the table run changed no state", async () => {
    assert.deepEqual(await stateOf(gw, admin), before);
    assert.equal(before.lastHeartbeat, null);
  });
  await admin.close();
});

Deno.test("the scope check runs before params validation", async (t) => {
  await using gw = await startTestGateway();
  for (const protocol of [4, 3]) {
    await t.step(`protocol ${protocol}`, async () => {
      const c = await operator(gw.url, [READ], protocol);
      for (
        const params of [{ raw: 5, bogus: true }, "garbage", [1, 2], { config: "x", baseHash: "y" }]
      ) {
        const e = await err(c, "config.set", params);
        assert.deepEqual(e, denial("admin", protocol), JSON.stringify(params));
      }
      const e = await err(c, "set-heartbeats", { enabled: "nope" });
      assert.deepEqual(e, denial("admin", protocol));
      await c.close();
    });
  }
});

Deno.test("unknown methods: a scope error for non-admins, unknown method for admins", async () => {
  await using gw = await startTestGateway();
  const reader = await operator(gw.url, [READ, WRITE, APPROVALS, PAIRING]);
  assert.deepEqual(await err(reader, "bogus.method"), denial("admin", 4));
  const admin = await operator(gw.url, [ADMIN]);
  assert.deepEqual(await err(admin, "bogus.method"), {
    code: "INVALID_REQUEST",
    message: "unknown method: bogus.method",
  });
  await reader.close();
  await admin.close();
});

// ---- params validation -----------------------------------------------------------------------

Deno.test("every method rejects wrong-typed params naming the field, and nothing changes", async (t) => {
  await using gw = await fullGateway();
  const admin = await operator(gw.url, [ADMIN]);
  // Node-role methods are called by a node.
  const node = await signedConnected(gw.url, {
    role: "node",
    client: { id: "node-host", version: "t", platform: "linux", mode: "node" },
  });
  const before = await stateOf(gw, admin);

  for (const def of methods) {
    const c = def.scope === "node" ? node : admin;
    await t.step(def.name, async () => {
      // Params that are not an object at all.
      for (const bad of ["x", 7, [1]]) {
        const e = await err(c, def.name, bad);
        assert.equal(e.code, "INVALID_REQUEST");
        assert.match(
          e.message,
          new RegExp(`^invalid ${def.name.replace(/[.]/g, "\\.")} params: params: `),
        );
        assert.match(e.message, /expected object/);
      }
      // Each declared field with a wrong-typed value, the required ones filled in.
      const base = requiredBase(def);
      for (const [field, schema] of Object.entries(fieldsOf(def))) {
        const wrong = wrongValue(schema);
        if (wrong === undefined) continue;
        const e = await err(c, def.name, { ...base, [field]: wrong });
        assert.equal(e.code, "INVALID_REQUEST", `${def.name}.${field}`);
        assert.ok(
          e.message.includes(`params.${field}`),
          `${def.name}: the message must name params.${field}: ${e.message}`,
        );
      }
      // An unknown field: strict methods name it; loose ones (read-only) ignore it.
      const strict = !def.params.safeParse({ ...base, zzUnknown: 1 }).success &&
        def.params.safeParse(base).success;
      if (strict) {
        const e = await err(c, def.name, { ...base, zzUnknown: 1 });
        assert.equal(e.code, "INVALID_REQUEST");
        assert.match(e.message, /unexpected field 'zzUnknown'/, `${def.name}: ${e.message}`);
      } else if (def.scope === "read" || def.scope === "none") {
        const res = await c.request(def.name, { ...base, zzUnknown: 1 });
        assertAllowed(res, def.name, "loose");
      }
      // The connection survived.
      assert.equal(c.isClosed, false);
      assert.equal((await ok(c, "health")).ok, true);
    });
  }

  await t.step("logs.tail {limit:'x'} names params.limit", async () => {
    const e = await err(admin, "logs.tail", { limit: "x" });
    assert.equal(e.code, "INVALID_REQUEST");
    assert.match(e.message, /params\.limit/);
  });

  await t.step("strict methods name unknown fields", async () => {
    const e = await err(admin, "last-heartbeat", { extra: true });
    assert.match(e.message, /params: unexpected field 'extra'/);
    const e2 = await err(admin, "set-heartbeats", { enabled: false, extra: 1 });
    assert.match(e2.message, /unexpected field 'extra'/);
  });

  await t.step("state is unchanged after the rejected requests", async () => {
    assert.deepEqual(await stateOf(gw, admin), before);
  });
  await node.close();
  await admin.close();
});

// ---- behaviour -------------------------------------------------------------------------------

Deno.test("health needs no scope, is cached, probe:true refreshes it, extra params are ignored", async () => {
  await using gw = await startTestGateway();
  const noScope = await connected(gw.url, {
    client: { id: "webchat", version: "t", platform: "linux", mode: "webchat" },
  });
  const hello = noScope.frames.find((f) => f.id === "connect").payload;
  assert.deepEqual(hello.auth.scopes, []);
  const cached = await ok(noScope, "health");
  assert.equal(cached.ok, true);
  assert.equal(
    cached.ts,
    hello.snapshot.health.ts,
    "without probe the cached snapshot is returned",
  );
  assert.equal(cached.defaultAgentId, "main");
  // The wall clock (which health's ts uses) must move on by at least 1 ms.
  while (Date.now() <= cached.ts) await new Promise((r) => setTimeout(r, 1));
  const fresh = await ok(noScope, "health", { probe: true });
  assert.ok(fresh.ts > cached.ts, `probe gives a fresh ts (${fresh.ts} > ${cached.ts})`);
  const extra = await ok(noScope, "health", { whatever: 1, nested: { a: [1] } });
  assert.equal(extra.ok, true);
  assert.equal(extra.ts, fresh.ts, "the probe refreshed the cache");
  assert.equal((await ok(noScope, "health", null)).ok, true);
  const noParams = await noScope.request("health");
  assert.equal(noParams.ok, true);
  await noScope.close();
});

Deno.test("status reports connections, memory, uptime and the heartbeat switch", async () => {
  await using gw = await startTestGateway();
  const a = await operator(gw.url, [READ]);
  const b = await operator(gw.url, [ADMIN]);
  const s1 = await ok(a, "status");
  assert.deepEqual(s1.connections, { total: 2, operators: 2, nodes: 0, preauth: 0 });
  assert.equal(typeof s1.uptimeMs, "number");
  assert.ok(s1.uptimeMs >= 0);
  assert.ok(s1.processMemory.rssBytes > 0);
  assert.ok(s1.processMemory.heapUsedBytes > 0);
  assert.ok(s1.processMemory.heapTotalBytes >= s1.processMemory.heapUsedBytes);
  assert.equal(s1.pid, Deno.pid);
  assert.equal(s1.heartbeat.enabled, true);
  assert.equal(s1.heartbeat.defaultAgentId, "main");
  assert.deepEqual(s1.queuedSystemEvents, []);

  const node = await signedConnected(gw.url, {
    role: "node",
    scopes: [],
    client: { id: "node-host", version: "t", platform: "linux", mode: "node" },
  });
  const s2 = await ok(b, "status");
  assert.deepEqual(s2.connections, { total: 3, operators: 2, nodes: 1, preauth: 0 });
  assert.ok(s2.uptimeMs >= s1.uptimeMs);

  // A socket that has not sent connect yet counts as preauth.
  const pending = new RawClient(gw.url);
  await pending.challenge();
  const s3 = await ok(b, "status");
  assert.deepEqual(s3.connections, { total: 4, operators: 2, nodes: 1, preauth: 1 });
  await pending.close();
  await node.close();
  await a.close();
  await b.close();
});

Deno.test("system-presence lists the gateway first, then the connected non-one-shot clients", async () => {
  await using gw = await startTestGateway();
  const c = await operator(gw.url, [READ]);
  const ui = await connected(gw.url, {
    client: {
      id: "webchat",
      version: "9.9",
      platform: "darwin",
      mode: "webchat",
      displayName: "Laptop UI",
      instanceId: "inst-ui-1",
    },
  });
  const hello = c.frames.find((f) => f.id === "connect").payload;
  const list = await ok(c, "system-presence");
  assert.ok(Array.isArray(list));
  assert.equal(list[0].mode, "gateway");
  assert.equal(list[0].reason, "self");
  assert.equal(list[0].instanceId, hello.server.bootId);
  assert.equal(list.filter((e: AnyFrame) => e.mode === "gateway").length, 1);
  // One-shot clients (mode cli/backend/probe) are deliberately left out of the list; the
  // only device-less clients that keep operator.read are one-shot, so the caller itself
  // is never listed here.
  assert.equal(
    list.some((e: AnyFrame) => e.clientId === "cli"),
    false,
    "one-shot callers are not listed",
  );
  assert.equal(list.length, 2, JSON.stringify(list));
  const other = list[1];
  assert.equal(other.clientId, "webchat");
  assert.equal(other.mode, "webchat");
  assert.deepEqual(other.roles, ["operator"]);
  assert.equal(other.reason, "connect");
  assert.equal(typeof other.onlineSince, "number");
  assert.equal(other.host, "Laptop UI");
  assert.equal(other.instanceId, "inst-ui-1");
  assert.equal(other.version, "9.9");
  assert.deepEqual(other.scopes, []);
  await ui.close();
  await c.close();
});

Deno.test("last-heartbeat is null on a fresh state and records the skipped heartbeat after 30 min", async () => {
  const clock = new ManualClock();
  await using gw = await startTestGateway({ clock });
  const c = await operator(gw.url, [READ]);
  assert.equal(await ok(c, "last-heartbeat"), null);
  const start = clock.now();
  const hb = c.nextEvent("heartbeat");
  clock.advance(29 * 60_000);
  assert.equal(await ok(c, "last-heartbeat"), null, "not due before 30 min");
  clock.advance(60_000);
  const ev = await hb;
  const rec = await ok(c, "last-heartbeat");
  assert.deepEqual(ev.payload, rec);
  assert.equal(rec.ts, start + 30 * 60_000);
  assert.equal(rec.agentId, "main");
  assert.equal(rec.status, "skipped");
  assert.equal(rec.reason, "no-heartbeat-file");
  await c.close();
});

Deno.test("set-heartbeats {enabled:false} persists across a restart", async (t) => {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-test-hb-" });
  try {
    await t.step("switch heartbeats off", async () => {
      const clock = new ManualClock();
      await using gw = await startTestGateway({ clock, stateDir });
      const c = await operator(gw.url, [ADMIN]);
      assert.equal(clock.pending, 3, "tick, health and the main heartbeat are armed");
      assert.deepEqual(await ok(c, "set-heartbeats", { enabled: false }), {
        ok: true,
        enabled: false,
      });
      assert.equal(clock.pending, 2, "the heartbeat timer is gone");
      assert.equal((await ok(c, "status")).heartbeat.enabled, false);
      assert.equal((await ok(c, "health")).agents[0].heartbeat.enabled, false);
      clock.advance(31 * 60_000);
      assert.equal(await ok(c, "last-heartbeat"), null);
      await c.close();
    });

    await t.step("still off after a restart on the same state dir", async () => {
      const clock = new ManualClock();
      await using gw = await startTestGateway({ clock, stateDir });
      const c = await operator(gw.url, [ADMIN]);
      assert.equal((await ok(c, "status")).heartbeat.enabled, false);
      assert.equal(clock.pending, 2, "no heartbeat timer after the restart");
      clock.advance(61 * 60_000);
      // A tick round trip: anything the advance broadcast is in before this answer.
      assert.equal(await ok(c, "last-heartbeat"), null);
      assert.equal(c.frames.filter((f) => f.event === "heartbeat").length, 0);

      // And back on: the next due heartbeat is recorded.
      assert.deepEqual(await ok(c, "set-heartbeats", { enabled: true }), {
        ok: true,
        enabled: true,
      });
      assert.equal(clock.pending, 3);
      const hb = c.nextEvent("heartbeat");
      clock.advance(30 * 60_000);
      await hb;
      assert.equal((await ok(c, "last-heartbeat")).status, "skipped");
      await c.close();
    });
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});

Deno.test("system-event queues its text, upserts presence by instanceId, rejects empty text", async (t) => {
  await using gw = await startTestGateway();
  const c = await operator(gw.url, [ADMIN]);

  await t.step("text is queued for the main session", async () => {
    assert.deepEqual(await ok(c, "system-event", { text: "build finished" }), { ok: true });
    assert.deepEqual((await ok(c, "status")).queuedSystemEvents, ["build finished"]);
    const list = await ok(c, "system-presence");
    assert.equal(
      list.some((e: AnyFrame) => e.text === "build finished"),
      false,
      "no id, no presence entry",
    );
  });

  await t.step("an instanceId upserts one presence entry", async () => {
    await ok(c, "system-event", {
      text: "node up",
      instanceId: "box-1",
      host: "box",
      mode: "node",
    });
    await ok(c, "system-event", {
      text: "node busy",
      instanceId: "box-1",
      host: "box",
      mode: "node",
    });
    const list = await ok(c, "system-presence");
    const entries = list.filter((e: AnyFrame) => e.instanceId === "box-1");
    assert.equal(entries.length, 1);
    assert.equal(entries[0].text, "node busy");
    assert.equal(entries[0].host, "box");
    assert.equal(entries[0].reason, "system-event");
    assert.equal(list[0].mode, "gateway", "the gateway stays first");
    assert.deepEqual((await ok(c, "status")).queuedSystemEvents, [
      "build finished",
      "node up",
      "node busy",
    ]);
  });

  await t.step("empty or blank text is rejected and nothing is queued", async () => {
    for (const text of ["", "   "]) {
      const e = await err(c, "system-event", { text });
      assert.equal(e.code, "INVALID_REQUEST");
      assert.match(e.message, /params\.text/);
    }
    assert.match((await err(c, "system-event", {})).message, /params\.text/);
    assert.equal((await ok(c, "status")).queuedSystemEvents.length, 3);
  });
  await c.close();
});

Deno.test("logs.tail: start entries, cursor paging of complete lines, reset, limit and maxBytes", async (t) => {
  await using gw = await startTestGateway();
  const c = await operator(gw.url, [ADMIN]);
  const file = `${gw.stateDir}/logs/gw.log`;
  let cursor = 0;

  await t.step("the tail has the gateway start", async () => {
    const r = await ok(c, "logs.tail", {});
    assert.equal(r.file, file);
    assert.equal(r.reset, false);
    assert.equal(r.cursor, (await Deno.stat(file)).size);
    assert.equal(r.size, r.cursor);
    const msgs = r.lines.map((l: string) => JSON.parse(l).message);
    assert.ok(msgs.includes("gateway listening"), JSON.stringify(msgs));
    cursor = r.cursor;
  });

  await t.step("a cursor at the end returns nothing new", async () => {
    const r = await ok(c, "logs.tail", { cursor });
    assert.deepEqual(r.lines, []);
    assert.equal(r.cursor, cursor);
  });

  await t.step("a partial line is held back until it is complete", async () => {
    await Deno.writeTextFile(file, '{"msg":"partial', { append: true });
    const r1 = await ok(c, "logs.tail", { cursor });
    assert.deepEqual(r1.lines, []);
    assert.equal(r1.cursor, cursor, "the cursor does not move past an incomplete line");
    await Deno.writeTextFile(file, ' line"}\n', { append: true });
    const r2 = await ok(c, "logs.tail", { cursor });
    assert.deepEqual(r2.lines, ['{"msg":"partial line"}']);
    cursor = r2.cursor;
    assert.equal(cursor, (await Deno.stat(file)).size);
  });

  await t.step("lines logged later come after the cursor, and only those", async () => {
    await ok(c, "config.set", { raw: "{}" }); // logs "config written"
    const r = await ok(c, "logs.tail", { cursor });
    assert.equal(r.lines.length, 1, JSON.stringify(r.lines));
    assert.equal(JSON.parse(r.lines[0]).message, "config written");
    assert.ok(r.cursor > cursor);
    cursor = r.cursor;
  });

  await t.step("a cursor past the end resets to the tail", async () => {
    const r = await ok(c, "logs.tail", { cursor: cursor + 10_000 });
    assert.equal(r.reset, true);
    assert.equal(r.cursor, cursor);
    assert.ok(r.lines.length > 0);
  });

  await t.step("limit and maxBytes are honoured", async () => {
    const all = (await Deno.readTextFile(file)).split("\n").filter(Boolean);
    assert.ok(all.length >= 3);
    const one = await ok(c, "logs.tail", { limit: 1 });
    assert.deepEqual(one.lines, [all.at(-1)]);
    assert.equal(one.truncated, true);

    const small = await ok(c, "logs.tail", { maxBytes: 120 });
    const bytes = small.lines.reduce(
      (n: number, l: string) => n + new TextEncoder().encode(l + "\n").length,
      0,
    );
    assert.ok(bytes <= 120, `${bytes} bytes returned for maxBytes 120`);
    assert.ok(small.lines.length < all.length);
    assert.equal(small.truncated, true);
    for (const l of small.lines) JSON.parse(l);

    // Paging from 0 two lines at a time gives back the whole file, in order.
    const paged: string[] = [];
    let cur = 0;
    for (let i = 0; i < 100; i++) {
      const r = await ok(c, "logs.tail", { cursor: cur, limit: 2 });
      assert.ok(r.lines.length <= 2);
      paged.push(...r.lines);
      if (r.lines.length === 0) break;
      cur = r.cursor;
    }
    assert.deepEqual(paged, all);

    // maxBytes with a cursor: only complete lines within the window.
    const w = await ok(c, "logs.tail", { cursor: 0, maxBytes: 50 });
    for (const l of w.lines) assert.ok(all.includes(l));
  });
  await c.close();
});

Deno.test("models.list is empty by default and lists configured provider models", async (t) => {
  await t.step("default", async () => {
    await using gw = await startTestGateway();
    const c = await operator(gw.url, [READ]);
    assert.deepEqual(await ok(c, "models.list"), { models: [] });
    await c.close();
  });
  await t.step("configured", async () => {
    await using gw = await startTestGateway({
      config: { models: { providers: { anthropic: { models: [{ id: "claude-x" }] } } } },
    });
    const c = await operator(gw.url, [READ]);
    assert.deepEqual(await ok(c, "models.list"), {
      models: [{ id: "claude-x", name: "claude-x", provider: "anthropic" }],
    });
    await c.close();
  });
});

Deno.test("agents.list: the implicit main agent, or the configured list", async (t) => {
  await t.step("default main/Assistant", async () => {
    await using gw = await startTestGateway();
    const c = await operator(gw.url, [READ]);
    const r = await ok(c, "agents.list");
    assert.equal(r.defaultId, "main");
    assert.equal(r.mainKey, "main");
    assert.equal(r.agents.length, 1);
    assert.equal(r.agents[0].id, "main");
    assert.equal(r.agents[0].name, "Assistant");
    assert.equal(r.agents[0].default, true);
    assert.deepEqual(r.agents[0].identity, { name: "Assistant", avatar: "A" });
    await c.close();
  });
  await t.step("configured list with a default", async () => {
    await using gw = await startTestGateway({
      config: {
        agents: {
          list: [
            { id: "ops", name: "Ops Bot", avatar: "O" },
            { id: "dev", default: true, model: "anthropic/claude-y" },
          ],
        },
      },
    });
    const c = await operator(gw.url, [READ]);
    const r = await ok(c, "agents.list");
    assert.equal(r.defaultId, "dev");
    assert.deepEqual(r.agents.map((a: AnyFrame) => [a.id, a.name, a.default]), [
      ["ops", "Ops Bot", false],
      ["dev", "Assistant", true],
    ]);
    assert.equal(r.agents[1].model, "anthropic/claude-y");
    await c.close();
  });
});

Deno.test("agent.identity.get by agentId, by sessionKey, and unknown agents", async () => {
  await using gw = await startTestGateway({
    config: { agents: { list: [{ id: "main" }, { id: "ops", name: "Ops Bot", avatar: "🛠" }] } },
  });
  const c = await operator(gw.url, [READ]);
  assert.deepEqual(await ok(c, "agent.identity.get", {}), {
    agentId: "main",
    name: "Assistant",
    avatar: "A",
    nameSource: "default",
  });
  const ops = { agentId: "ops", name: "Ops Bot", avatar: "🛠", nameSource: "config" };
  assert.deepEqual(await ok(c, "agent.identity.get", { agentId: "ops" }), ops);
  assert.deepEqual(await ok(c, "agent.identity.get", { sessionKey: "agent:ops:main" }), ops);
  for (const params of [{ agentId: "nope" }, { sessionKey: "agent:nope:main" }]) {
    const e = await err(c, "agent.identity.get", params);
    assert.equal(e.code, "INVALID_REQUEST");
    assert.equal(e.details?.code, "UNKNOWN_AGENT_ID", JSON.stringify(e));
  }
  await c.close();
});

Deno.test("OpenClaw core methods gw lacks: checked at their own scope, then 'unknown method'", async (t) => {
  await using gw = await startTestGateway();
  await t.step("every implemented method has the scope the reference gives it", () => {
    for (const m of methods) {
      const ref = KNOWN_METHOD_SCOPES[m.name];
      if (ref !== undefined) assert.equal(m.scope, ref, m.name);
    }
  });
  const missing = Object.keys(KNOWN_METHOD_SCOPES).filter((n) =>
    !methods.some((m) => m.name === n)
  );
  // A caller holding the method's (non-admin) scope: read ones are all implemented now.
  const readOnly = missing.find((n) =>
    !["admin", "node", "none"].includes(KNOWN_METHOD_SCOPES[n]!)
  );
  const adminOnly = missing.find((n) => KNOWN_METHOD_SCOPES[n] === "admin");
  await t.step(`a caller with the scope of ${readOnly} learns gw lacks it`, async () => {
    assert.ok(readOnly, "no unimplemented non-admin method left to test with");
    const c = await connected(gw.url, { scopes: [`operator.${KNOWN_METHOD_SCOPES[readOnly]}`] });
    const e = await err(c, readOnly!);
    assert.equal(e.code, "INVALID_REQUEST");
    assert.equal(e.message, `unknown method: ${readOnly}`);
    assert.deepEqual(e.details, { code: "METHOD_NOT_IMPLEMENTED", method: readOnly });
    await c.close();
  });
  await t.step(`a read caller asking for ${adminOnly} still needs admin`, async () => {
    assert.ok(adminOnly, "no unimplemented admin method left to test with");
    const c = await connected(gw.url, { scopes: ["operator.read"] });
    const e = await err(c, adminOnly!);
    assert.equal(e.code, "FORBIDDEN");
    assert.equal(e.details.missingScope, "operator.admin");
    await c.close();
  });
  await t.step("a method outside the reference needs admin, and has no details", async () => {
    const c = await connected(gw.url, { scopes: ["operator.read"] });
    assert.equal((await err(c, "no.such.method")).code, "FORBIDDEN");
    await c.close();
    const a = await connected(gw.url, { scopes: ["operator.admin"] });
    const e = await err(a, "no.such.method");
    assert.equal(e.message, "unknown method: no.such.method");
    assert.equal(e.details, undefined);
    await a.close();
  });
});

Deno.test("health and status carry the fields OpenClaw's CLI reads", async () => {
  await using gw = await startTestGateway();
  const c = await connected(gw.url, { scopes: ["operator.read"] });
  const h = await ok(c, "health");
  for (
    const k of [
      "degraded",
      "degradedSinceMs",
      "reasons",
      "delayP99Ms",
      "utilization",
      "cpuCoreRatio",
    ]
  ) {
    assert.ok(k in h.eventLoop, `health.eventLoop.${k}`);
  }
  assert.ok(Array.isArray(h.eventLoop.reasons));
  assert.ok(Number.isInteger(h.durationMs));
  assert.equal(h.sessions.path, `${gw.stateDir}/gw.kv`);
  assert.equal(h.agents[0].sessions.path, `${gw.stateDir}/gw.kv`);
  const s = await ok(c, "status");
  assert.deepEqual(s.sessions.paths, [`${gw.stateDir}/gw.kv`]);
  assert.deepEqual(s.sessions.byAgent.map((a: { agentId: string }) => a.agentId), ["main"]);
  await c.close();
});
