/**
 * Shared-secret auth over real sockets: token and password modes, error
 * details, scope clearing for device-less clients (GHSA-rqpp), proxy headers
 * (#1795), the failure rate limiter, browser Origin checks (GHSA-5wcw),
 * secret rotation (GHSA-m8wm), the constant-time compare and the refused
 * public bind.
 */
import assert from "node:assert/strict";
import { originAllowed } from "../lib/server/net.ts";
import { generateToken } from "../lib/server/secret.ts";
import {
  type AnyFrame,
  closedWithin,
  connectParams,
  RawClient,
  type Sockets,
  sockets,
  startTestGateway,
  TEST_TOKEN,
} from "./_helpers.ts";
import { constantTimeEqual } from "../lib/server/auth.ts";
import { type Gateway, GatewayStartError, startGateway } from "../lib/server/gateway.ts";
import { methods } from "../methods/mod.ts";

// ---- helpers -------------------------------------------------------------------------------

/** Connect on a fresh socket; returns the reply, and the close when the connect failed. */
async function attempt(
  s: Sockets,
  url: string,
  over: Record<string, unknown> = {},
  headers?: HeadersInit,
): Promise<
  { res: AnyFrame; error: AnyFrame; close?: { code: number; reason: string }; c: RawClient }
> {
  const c = s.open(url, headers);
  const res = await c.connect(connectParams(over));
  if (res.ok) return { res, error: undefined, c };
  return {
    res,
    error: res.error,
    close: await within(c.closed, 3_000, "close after a refused connect"),
    c,
  };
}

/** A connect that must fail; returns the error and the close. */
async function refused(
  s: Sockets,
  url: string,
  over: Record<string, unknown> = {},
  headers?: HeadersInit,
) {
  const r = await attempt(s, url, over, headers);
  assert.equal(r.res.ok, false, `connect should fail, got hello-ok`);
  return { error: r.error, close: r.close! };
}

/** A connect that must succeed; returns the socket and hello-ok. */
async function accepted(
  s: Sockets,
  url: string,
  over: Record<string, unknown> = {},
  headers?: HeadersInit,
) {
  const r = await attempt(s, url, over, headers);
  assert.equal(r.res.ok, true, `connect should succeed: ${JSON.stringify(r.error)}`);
  return { c: r.c, hello: r.res.payload };
}

const WRONG = "wrong-token-zzzzzzzzzzzzzzzzzz";
const xff = (ip: string) => ({ "x-forwarded-for": ip });
const client = (id: string, mode: string, extra: Record<string, unknown> = {}) => ({
  client: { id, mode, version: "test", platform: "linux", ...extra },
});

/** `n` wrong-token connects at once (each costs the server's ~250 ms failure delay); all must be mismatches. */
async function failTimes(s: Sockets, url: string, n: number, headers?: HeadersInit): Promise<void> {
  const all = await Promise.all(
    Array.from(
      { length: n },
      (_, i) => refused(s, url, { auth: { token: `${WRONG}${i}` } }, headers),
    ),
  );
  assert.deepEqual(all.map((r) => r.error.details.code), Array(n).fill("AUTH_TOKEN_MISMATCH"));
}

/** Rate-limit config small enough for fast tests. */
const LIMIT = { maxFailures: 3, windowMs: 60_000, lockoutMs: 2_000 };

/**
 * A gateway started WITHOUT a secret override, so its secret comes from
 * `gw.json` or `<state>/token` (what rotation is about). `setup` writes them.
 */
async function startPlainGateway(setup: (stateDir: string) => Promise<void>) {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-auth-test-" });
  let gw: Gateway;
  try {
    await setup(stateDir);
    gw = await startGateway({ stateDir, port: 0, bind: "127.0.0.1", logToStderr: false, methods });
  } catch (e) {
    await Deno.remove(stateDir, { recursive: true });
    throw e;
  }
  return {
    gw,
    url: gw.url,
    stateDir,
    async [Symbol.asyncDispose]() {
      await gw.shutdown("test done");
      await Deno.remove(stateDir, { recursive: true });
    },
  };
}

/** Reject after `ms`, to bound waits on events that must come "soon". */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function assertNoSecret(texts: string[], secrets: string[]): void {
  for (const text of texts) {
    for (const secret of secrets) {
      assert.ok(!text.includes(secret), `'${text}' leaks a secret`);
    }
  }
}

// ---- token mode ----------------------------------------------------------------------------

Deno.test("token mode: the right token connects, wrong or missing ones are refused with details", async (t) => {
  await using gw = await startTestGateway();

  await t.step("right token", async () => {
    await using s = sockets();
    const { hello } = await accepted(s, gw.url);
    assert.equal(hello.auth.method, "token");
    assert.equal(hello.snapshot.authMode, "token");
  });

  await t.step("wrong token: AUTH_TOKEN_MISMATCH, close 1008", async () => {
    await using s = sockets();
    const { error, close } = await refused(s, gw.url, { auth: { token: WRONG } });
    assert.equal(error.code, "INVALID_REQUEST");
    assert.match(error.message, /^unauthorized: gateway token mismatch/);
    assert.equal(error.details.code, "AUTH_TOKEN_MISMATCH");
    assert.equal(error.details.canRetryWithDeviceToken, false);
    assert.equal(error.details.recommendedNextStep, "update_auth_credentials");
    assert.equal(close.code, 1008);
  });

  await t.step(
    "no credentials at all: NOT_PAIRED DEVICE_IDENTITY_REQUIRED, close 1008",
    async () => {
      await using s = sockets();
      for (const auth of [undefined, {}]) {
        const { error, close } = await refused(s, gw.url, { auth });
        assert.equal(error.code, "NOT_PAIRED");
        assert.equal(error.details.code, "DEVICE_IDENTITY_REQUIRED");
        assert.equal(close.code, 1008);
      }
    },
  );

  await t.step("a password sent to a token gateway: AUTH_TOKEN_MISSING", async () => {
    await using s = sockets();
    const { error, close } = await refused(s, gw.url, { auth: { password: TEST_TOKEN } });
    assert.equal(error.code, "INVALID_REQUEST");
    assert.equal(error.details.code, "AUTH_TOKEN_MISSING");
    assert.equal(close.code, 1008);
  });

  await t.step("an empty token is not a token", async () => {
    await using s = sockets();
    const { error } = await refused(s, gw.url, { auth: { token: "" } });
    assert.ok(
      ["DEVICE_IDENTITY_REQUIRED", "AUTH_TOKEN_MISSING"].includes(error.details.code),
      error.details.code,
    );
  });

  await t.step("a token that is a prefix of the right one is a mismatch", async () => {
    await using s = sockets();
    const { error } = await refused(s, gw.url, { auth: { token: TEST_TOKEN.slice(0, -1) } });
    assert.equal(error.details.code, "AUTH_TOKEN_MISMATCH");
  });
});

Deno.test("password mode: right, wrong and missing passwords", async (t) => {
  const password = "correct-horse-battery-staple";
  await using gw = await startTestGateway({ password });

  await t.step("right password", async () => {
    await using s = sockets();
    const { hello } = await accepted(s, gw.url, { auth: { password } });
    assert.equal(hello.auth.method, "password");
    assert.equal(hello.snapshot.authMode, "password");
  });

  await t.step("wrong password: AUTH_PASSWORD_MISMATCH, close 1008", async () => {
    await using s = sockets();
    const { error, close } = await refused(s, gw.url, { auth: { password: "not-the-password" } });
    assert.equal(error.code, "INVALID_REQUEST");
    assert.equal(error.details.code, "AUTH_PASSWORD_MISMATCH");
    assert.equal(close.code, 1008);
  });

  await t.step("the password sent as a token: AUTH_PASSWORD_MISSING", async () => {
    await using s = sockets();
    const { error, close } = await refused(s, gw.url, { auth: { token: password } });
    assert.equal(error.details.code, "AUTH_PASSWORD_MISSING");
    assert.equal(close.code, 1008);
  });

  await t.step("nothing: DEVICE_IDENTITY_REQUIRED", async () => {
    await using s = sockets();
    const { error } = await refused(s, gw.url, { auth: undefined });
    assert.equal(error.details.code, "DEVICE_IDENTITY_REQUIRED");
  });
});

Deno.test("secrets are never echoed in error messages or close reasons", async () => {
  const password = "correct-horse-battery-staple";
  await using tokenGw = await startTestGateway();
  await using passwordGw = await startTestGateway({ password });
  await using s = sockets();
  const guessed = "guessed-secret-1234567890";
  const texts: string[] = [];
  const collect = (r: { error: AnyFrame; close: { reason: string } }) => {
    texts.push(JSON.stringify(r.error), r.close.reason);
  };
  collect(await refused(s, tokenGw.url, { auth: { token: guessed } }));
  collect(await refused(s, tokenGw.url, { auth: { password: guessed } }));
  collect(await refused(s, tokenGw.url, { auth: { token: `${TEST_TOKEN}x`.repeat(200) } }));
  collect(await refused(s, tokenGw.url, { auth: { token: 12345678901234 } }));
  collect(await refused(s, passwordGw.url, { auth: { password: guessed } }));
  collect(await refused(s, passwordGw.url, { auth: { token: guessed } }));
  assert.equal(texts.length, 12);
  assertNoSecret(texts, [TEST_TOKEN, password, guessed, "12345678901234"]);
});

// ---- scopes of device-less clients (GHSA-rqpp-rjj8-7wv8) ----------------------------------

Deno.test("device-less clients keep their scopes only on the trusted loopback paths", async (t) => {
  await using gw = await startTestGateway();
  const asked = ["operator.admin", "operator.read"];

  for (const [id, mode] of [["cli", "cli"], ["gateway-client", "backend"]]) {
    await t.step(`${id}/${mode} keeps the requested scopes`, async () => {
      await using s = sockets();
      const { c, hello } = await accepted(s, gw.url, { ...client(id!, mode!), scopes: asked });
      assert.deepEqual(hello.auth.scopes, asked);
      assert.equal((await c.request("config.get", {})).ok, true);
    });
  }

  for (
    const [id, mode] of [["test", "test"], ["openclaw-control-ui", "ui"], ["cli", "probe"], [
      "cli",
      "backend",
    ], [
      "gateway-client",
      "cli",
    ], ["webchat", "webchat"]]
  ) {
    await t.step(`${id}/${mode} gets no scopes (v4: FORBIDDEN MISSING_SCOPE)`, async () => {
      await using s = sockets();
      const { c, hello } = await accepted(s, gw.url, { ...client(id!, mode!), scopes: asked });
      assert.deepEqual(hello.auth.scopes, []);
      const health = await c.request("health");
      assert.equal(health.ok, true, "health needs no scope");
      const res = await c.request("config.get", {});
      assert.equal(res.ok, false);
      assert.deepEqual(res.error, {
        code: "FORBIDDEN",
        message: "missing scope: operator.read",
        details: {
          code: "MISSING_SCOPE",
          missingScope: "operator.read",
          requiredScopes: ["operator.read"],
        },
      });
      const admin = await c.request("config.set", { raw: "{}" });
      assert.equal(admin.error.code, "FORBIDDEN");
      assert.equal(admin.error.details.missingScope, "operator.admin");
    });
  }

  await t.step(
    "test/test on protocol 3: INVALID_REQUEST 'missing scope: operator.read'",
    async () => {
      await using s = sockets();
      const { c, hello } = await accepted(s, gw.url, {
        ...client("test", "test"),
        scopes: asked,
        minProtocol: 3,
        maxProtocol: 3,
      });
      assert.equal(hello.protocol, 3);
      assert.deepEqual(hello.auth.scopes, []);
      assert.equal((await c.request("health")).ok, true);
      const res = await c.request("config.get", {});
      assert.deepEqual(res.error, {
        code: "INVALID_REQUEST",
        message: "missing scope: operator.read",
      });
    },
  );
});

// ---- proxies (#1795) -----------------------------------------------------------------------

/** The presence entry of the client with `instanceId`, as an admin socket sees it. */
async function presenceOf(observer: RawClient, instanceId: string): Promise<AnyFrame> {
  const res = await observer.request("system-presence");
  assert.equal(res.ok, true, JSON.stringify(res.error));
  const me = res.payload.find((e: AnyFrame) => e.instanceId === instanceId);
  assert.ok(me, `${instanceId} should be in presence: ${JSON.stringify(res.payload)}`);
  return me;
}

/**
 * Connect through `headers` twice: as the CLI (must lose its scopes) and as a
 * listed `test` client (presence shows its address). Returns that address.
 */
async function viaProxy(
  s: Sockets,
  url: string,
  observer: RawClient,
  headers: HeadersInit,
): Promise<string> {
  const { hello } = await accepted(
    s,
    url,
    { ...client("cli", "cli"), scopes: ["operator.admin"] },
    headers,
  );
  assert.deepEqual(
    hello.auth.scopes,
    [],
    "a proxied connection is never the trusted loopback CLI path",
  );
  const instanceId = crypto.randomUUID();
  await accepted(s, url, { ...client("test", "test", { instanceId }) }, headers);
  return (await presenceOf(observer, instanceId)).ip;
}

Deno.test("proxy headers from an untrusted peer: not direct loopback, scopes cleared, header ignored", async (t) => {
  await using gw = await startTestGateway();
  await using admin = sockets();
  const observer = await admin.connected(gw.url);

  const headerCases: [string, Record<string, string>][] = [
    ["X-Forwarded-For", xff("203.0.113.9")],
    ["X-Real-IP", { "x-real-ip": "203.0.113.9" }],
    ["Forwarded", { forwarded: "for=203.0.113.9" }],
    ["X-Forwarded-Host", { "x-forwarded-host": "gw.example" }],
  ];
  for (const [name, headers] of headerCases) {
    await t.step(name, async () => {
      await using s = sockets();
      const ip = await viaProxy(s, gw.url, observer, headers);
      assert.equal(ip, "127.0.0.1", "the forwarded address of an untrusted peer is not believed");
    });
  }

  await t.step("control: the same clients without proxy headers", async () => {
    await using s = sockets();
    const { hello } = await accepted(s, gw.url, { scopes: ["operator.admin"] });
    assert.deepEqual(hello.auth.scopes, ["operator.admin"]);
  });
});

Deno.test("with trustedProxies the forwarded address is the client address, still not local", async (t) => {
  await using gw = await startTestGateway({
    config: { gateway: { trustedProxies: ["127.0.0.1"] } },
  });
  await using admin = sockets();
  const observer = await admin.connected(gw.url);

  const cases: [string, string, string][] = [
    ["one hop", "203.0.113.7", "203.0.113.7"],
    ["a chain: the rightmost untrusted hop", "198.51.100.1, 203.0.113.7", "203.0.113.7"],
    ["trusted hops on the right are skipped", "203.0.113.7, 127.0.0.1", "203.0.113.7"],
    ["a forwarded loopback address", "127.0.0.1", "127.0.0.1"],
  ];
  for (const [name, header, want] of cases) {
    await t.step(`${name}: ${header} → ${want}`, async () => {
      await using s = sockets();
      assert.equal(await viaProxy(s, gw.url, observer, xff(header)), want);
    });
  }
});

// ---- rate limit and lockout ----------------------------------------------------------------

Deno.test("auth failures from one address lock it out, even for the right token", async (t) => {
  await using gw = await startTestGateway({
    config: { gateway: { trustedProxies: ["127.0.0.1"], authRateLimit: LIMIT } },
  });
  await using s = sockets();
  const attacker = xff("198.51.100.66");
  let retryAfterMs = 0;

  await t.step(`${LIMIT.maxFailures} wrong tokens are answered as mismatches`, async () => {
    for (let i = 0; i < LIMIT.maxFailures; i++) {
      const { error } = await refused(s, gw.url, { auth: { token: `${WRONG}${i}` } }, attacker);
      assert.equal(error.details.code, "AUTH_TOKEN_MISMATCH", `attempt ${i + 1}`);
    }
  });

  await t.step(
    "the next attempt, with the right token: AUTH_RATE_LIMITED, retryable, close 1008",
    async () => {
      const { error, close } = await refused(s, gw.url, {}, attacker);
      assert.equal(error.code, "INVALID_REQUEST");
      assert.equal(error.details.code, "AUTH_RATE_LIMITED");
      assert.equal(error.retryable, true);
      assert.equal(typeof error.retryAfterMs, "number");
      assert.ok(
        error.retryAfterMs > 0 && error.retryAfterMs <= LIMIT.lockoutMs,
        `retryAfterMs ${error.retryAfterMs}`,
      );
      assert.equal(error.details.retryAfterMs, error.retryAfterMs);
      assert.equal(close.code, 1008);
      assertNoSecret([JSON.stringify(error), close.reason], [TEST_TOKEN]);
      retryAfterMs = error.retryAfterMs;
    },
  );

  await t.step("another forwarded address is not locked", async () => {
    await accepted(s, gw.url, {}, xff("198.51.100.67"));
  });

  await t.step("direct loopback CLI is not locked by the remote address", async () => {
    await accepted(s, gw.url);
  });

  await t.step("after lockoutMs the right token works again", async () => {
    // Nothing to await: the lockout is a deadline. Wait exactly what the server said.
    await new Promise((r) => setTimeout(r, retryAfterMs + 50));
    await accepted(s, gw.url, {}, attacker);
  });
});

Deno.test("concurrent wrong guesses cannot exceed maxFailures before the lockout applies", async () => {
  // Every attempt passed the lockout check before any failure was recorded
  // (the check runs before an await), so N parallel sockets got N guesses
  // and a right guess among them succeeded despite the lockout.
  await using gw = await startTestGateway({
    config: { gateway: { trustedProxies: ["127.0.0.1"], authRateLimit: LIMIT } },
  });
  await using s = sockets();
  const attacker = xff("198.51.100.77");
  const n = LIMIT.maxFailures + 3;
  const clients = Array.from({ length: n }, () => s.open(gw.url, attacker));
  await Promise.all(clients.map((c) => c.challenge()));
  // Wrong guesses first, the right token last, all in flight at once.
  const replies = await Promise.all(
    clients.map((c, i) =>
      c.request(
        "connect",
        connectParams({ auth: { token: i === n - 1 ? TEST_TOKEN : `${WRONG}${i}` } }),
        "connect",
      )
    ),
  );
  const outcome = replies.map((r) => (r.ok ? "ok" : r.error.details?.code));
  const evaluated = outcome.filter((o) => o === "ok" || o === "AUTH_TOKEN_MISMATCH").length;
  assert.ok(
    evaluated <= LIMIT.maxFailures,
    `${evaluated} secrets were compared with maxFailures ${LIMIT.maxFailures}: ${
      outcome.join(", ")
    }`,
  );
  assert.equal(
    outcome.at(-1),
    "AUTH_RATE_LIMITED",
    "the guess after the lockout must not be compared",
  );
});

Deno.test("rate limit details: missing credentials do not count, success resets the counter", async (t) => {
  await using gw = await startTestGateway({
    config: { gateway: { trustedProxies: ["127.0.0.1"], authRateLimit: LIMIT } },
  });
  await using s = sockets();

  await t.step("missing credentials do not count", async () => {
    const ip = xff("198.51.100.10");
    for (let i = 0; i < LIMIT.maxFailures + 2; i++) {
      const { error } = await refused(
        s,
        gw.url,
        { auth: i % 2 ? undefined : { password: "x" } },
        ip,
      );
      assert.notEqual(error.details.code, "AUTH_RATE_LIMITED", `attempt ${i + 1}`);
    }
    await accepted(s, gw.url, {}, ip);
  });

  await t.step("a success resets the failure count", async () => {
    const ip = xff("198.51.100.11");
    for (let round = 0; round < 3; round++) {
      await failTimes(s, gw.url, LIMIT.maxFailures - 1, ip);
      await accepted(s, gw.url, {}, ip);
    }
  });
});

Deno.test("direct loopback without Origin is exempt from the lockout; a browser Origin is not", async (t) => {
  await using gw = await startTestGateway({ config: { gateway: { authRateLimit: LIMIT } } });
  await using s = sockets();

  await t.step("many failures from the loopback CLI, then success", async () => {
    const failures = await Promise.all(
      Array.from(
        { length: LIMIT.maxFailures * 2 },
        () => refused(s, gw.url, { auth: { token: WRONG } }),
      ),
    );
    for (const { error } of failures) assert.equal(error.details.code, "AUTH_TOKEN_MISMATCH");
    await accepted(s, gw.url);
  });

  await t.step("a same-origin browser on loopback is limited", async () => {
    const origin = { origin: `http://127.0.0.1:${gw.port}` };
    await failTimes(s, gw.url, LIMIT.maxFailures, origin);
    const { error } = await refused(s, gw.url, {}, origin);
    assert.equal(error.details.code, "AUTH_RATE_LIMITED");
  });

  await t.step("the loopback CLI is still not locked", async () => {
    await accepted(s, gw.url);
  });
});

// ---- browser Origin (CVE-2026-25253, GHSA-5wcw-8jjv-m286) --------------------------------

Deno.test("browser Origin: same origin and allowlisted origins only", async (t) => {
  await using gw = await startTestGateway({
    config: { gateway: { allowedOrigins: ["http://app.example"], trustedProxies: ["127.0.0.1"] } },
  });

  await t.step("same origin is allowed, but never gets the trusted CLI scopes", async () => {
    await using s = sockets();
    const { hello } = await accepted(s, gw.url, { scopes: ["operator.admin"] }, {
      origin: `http://127.0.0.1:${gw.port}`,
    });
    assert.deepEqual(hello.auth.scopes, []);
  });

  await t.step("an allowlisted origin is allowed", async () => {
    await using s = sockets();
    await accepted(s, gw.url, { ...client("openclaw-control-ui", "ui") }, {
      origin: "http://app.example",
    });
  });

  const foreign = [
    "http://evil.example",
    "http://app.example.evil.example",
    "https://app.example",
    `http://127.0.0.1:${gw.port + 1 > 65535 ? 1 : gw.port + 1}`,
    "null",
    "file://",
  ];
  for (const origin of foreign) {
    await t.step(`${origin} is refused even with the right token`, async () => {
      await using s = sockets();
      const { error, close } = await refused(
        s,
        gw.url,
        { ...client("openclaw-control-ui", "ui") },
        { origin },
      );
      assert.equal(error.code, "INVALID_REQUEST");
      assert.equal(error.details.code, "CONTROL_UI_ORIGIN_NOT_ALLOWED");
      assert.equal(close.code, 1008);
    });
  }

  await t.step("a foreign origin is refused through a trusted proxy too", async () => {
    await using s = sockets();
    const { error } = await refused(s, gw.url, {}, {
      origin: "http://evil.example",
      ...xff("203.0.113.5"),
    });
    assert.equal(error.details.code, "CONTROL_UI_ORIGIN_NOT_ALLOWED");
  });
});

Deno.test("without allowedOrigins a foreign origin is refused", async () => {
  await using gw = await startTestGateway();
  await using s = sockets();
  const { error, close } = await refused(s, gw.url, {}, { origin: "http://app.example" });
  assert.equal(error.details.code, "CONTROL_UI_ORIGIN_NOT_ALLOWED");
  assert.equal(close.code, 1008);
});

Deno.test("DNS rebinding: a non-loopback Host that matches its Origin is not same-origin", () => {
  assert.equal(originAllowed("http://127.0.0.1:18789", "127.0.0.1:18789", []), true);
  assert.equal(originAllowed("http://localhost:18789", "localhost:18789", []), true);
  assert.equal(originAllowed("http://[::1]:18789", "[::1]:18789", []), true);
  assert.equal(originAllowed("http://evil.example:18789", "evil.example:18789", []), false);
  assert.equal(originAllowed("http://gw.home.example", "gw.home.example", []), false);
  assert.equal(
    originAllowed("http://gw.home.example", "gw.home.example", ["http://gw.home.example"]),
    true,
  );
});

// ---- secret rotation (GHSA-m8wm-r5vq-qjpg) -------------------------------------------------

const OLD = "old-token-aaaaaaaaaaaaaaaaaaaa";
const NEW = "new-token-bbbbbbbbbbbbbbbbbbbb";

Deno.test("rewriting <state>/token closes sockets that used the old token (4001) within ~3 s", async (t) => {
  await using gw = await startPlainGateway((dir) => Deno.writeTextFile(`${dir}/token`, OLD + "\n"));
  await using s = sockets();
  const adminSock = await s.connected(gw.url, { auth: { token: OLD } });
  const viewer = await s.connected(gw.url, { ...client("test", "test"), auth: { token: OLD } });

  await t.step("the file change alone is noticed", async () => {
    await Deno.writeTextFile(`${gw.stateDir}/token`, NEW + "\n");
    const started = performance.now();
    const [a, b] = await within(
      Promise.all([adminSock.closed, viewer.closed]),
      4_000,
      "4001 close",
    );
    assert.deepEqual(a, { code: 4001, reason: "gateway auth changed" });
    assert.deepEqual(b, { code: 4001, reason: "gateway auth changed" });
    assert.ok(performance.now() - started < 3_500);
  });

  await t.step("the old token is refused, the new one accepted", async () => {
    const { error } = await refused(s, gw.url, { auth: { token: OLD } });
    assert.equal(error.details.code, "AUTH_TOKEN_MISMATCH");
    const { c } = await accepted(s, gw.url, { auth: { token: NEW } });
    assert.equal((await c.request("health")).ok, true);
  });
});

Deno.test("a connect right after rotation already needs the new token", async () => {
  await using gw = await startPlainGateway((dir) => Deno.writeTextFile(`${dir}/token`, OLD + "\n"));
  await using s = sockets();
  const old = await s.connected(gw.url, { auth: { token: OLD } });
  await Deno.writeTextFile(`${gw.stateDir}/token`, NEW + "\n");
  // No waiting for the poll: auth re-resolves the secret per connect.
  const { error } = await refused(s, gw.url, { auth: { token: OLD } });
  assert.equal(error.details.code, "AUTH_TOKEN_MISMATCH");
  await accepted(s, gw.url, { auth: { token: NEW } });
  assert.deepEqual(await within(old.closed, 4_000, "4001 close"), {
    code: 4001,
    reason: "gateway auth changed",
  });
});

Deno.test("config.patch of gateway.auth.token rotates the secret at once", async () => {
  await using gw = await startPlainGateway((dir) =>
    Deno.writeTextFile(`${dir}/gw.json`, JSON.stringify({ gateway: { auth: { token: OLD } } }))
  );
  await using s = sockets();
  const adminSock = await s.connected(gw.url, { auth: { token: OLD } });
  const viewer = await s.connected(gw.url, { ...client("test", "test"), auth: { token: OLD } });
  const current = await adminSock.request("config.get", {});
  assert.equal(current.ok, true, JSON.stringify(current.error));
  // The caller's own socket used the old token too, so the reply may or may not beat the close.
  adminSock.send({
    type: "req",
    id: "rotate",
    method: "config.patch",
    params: { patch: { gateway: { auth: { token: NEW } } }, baseHash: current.payload.hash },
  });
  const [a, b] = await within(Promise.all([adminSock.closed, viewer.closed]), 1_500, "4001 close");
  const reply = adminSock.frames.find((f) => f.id === "rotate");
  assert.ok(reply === undefined || reply.ok, `config.patch failed: ${JSON.stringify(reply)}`);
  assert.equal(a.code, 4001);
  assert.deepEqual(b, { code: 4001, reason: "gateway auth changed" });
  const { error } = await refused(s, gw.url, { auth: { token: OLD } });
  assert.equal(error.details.code, "AUTH_TOKEN_MISMATCH");
  const { c } = await accepted(s, gw.url, { auth: { token: NEW } });
  const cfg = await c.request("config.get", {});
  assert.ok(!JSON.stringify(cfg.payload).includes(NEW), "config.get redacts the token");
});

// ---- units ---------------------------------------------------------------------------------

Deno.test("constantTimeEqual", () => {
  assert.equal(constantTimeEqual("same-secret", "same-secret"), true);
  assert.equal(constantTimeEqual("", ""), true);
  assert.equal(constantTimeEqual("é€", "é€"), true);
  assert.equal(constantTimeEqual("same-secret", "same-secreT"), false);
  assert.equal(constantTimeEqual("Same-secret", "same-secret"), false);
  assert.equal(constantTimeEqual("same-secret", "same-secret-longer"), false);
  assert.equal(constantTimeEqual("same-secret-longer", "same-secret"), false);
  assert.equal(constantTimeEqual("", "x"), false);
  assert.equal(constantTimeEqual("x", ""), false);
  assert.equal(constantTimeEqual("a\0", "a"), false, "a trailing NUL is not padding");
});

Deno.test("a non-loopback bind needs a secret of at least 16 characters", async (t) => {
  const tryStart = async (opts: { bind: string; password?: string; token?: string }) => {
    const stateDir = await Deno.makeTempDir({ prefix: "gw-bind-test-" });
    try {
      const gw = await startGateway({ stateDir, port: 0, logToStderr: false, methods, ...opts });
      await gw.shutdown("test done");
      return gw;
    } finally {
      await Deno.remove(stateDir, { recursive: true });
    }
  };

  for (
    const opts of [{ bind: "0.0.0.0", password: "short" }, {
      bind: "0.0.0.0",
      token: "short-token-15c",
    }]
  ) {
    await t.step(`${JSON.stringify(opts)} is refused`, async () => {
      const err = await tryStart(opts).then(() => undefined, (e) => e);
      assert.ok(err instanceof GatewayStartError, `expected GatewayStartError, got ${err}`);
      assert.match(err.message, /at least 16/);
      assert.ok(
        !err.message.includes(opts.password ?? opts.token!),
        "the secret is not in the message",
      );
    });
  }

  await t.step("a loopback bind accepts a short password", async () => {
    await tryStart({ bind: "127.0.0.1", password: "short" });
  });

  await t.step("0.0.0.0 with a 16-character password starts", async () => {
    await tryStart({ bind: "0.0.0.0", password: "sixteen-chars-ok" });
  });
});

Deno.test("generated tokens are 43 base64url characters and never start with '-' or '_'", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 5_000; i++) {
    const t = generateToken();
    assert.match(t, /^[A-Za-z0-9][A-Za-z0-9_-]{42}$/, t);
    seen.add(t);
  }
  assert.equal(seen.size, 5_000, "tokens repeat");
});

Deno.test("#9435 / #5120: a token in the URL query is ignored; only the connect frame counts", async () => {
  await using t = await startTestGateway();
  const c = new RawClient(`${t.url}/?token=${TEST_TOKEN}&auth=${TEST_TOKEN}`);
  await c.challenge();
  const res = await c.connect(connectParams({ auth: undefined }));
  assert.equal(res.ok, false);
  assert.equal(res.error.details.code, "DEVICE_IDENTITY_REQUIRED");
  await closedWithin(c, 2000);
});
