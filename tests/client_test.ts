/**
 * Tests of GatewayClient's own logic against a tiny in-file WebSocket server
 * that speaks just enough of the protocol.
 */

import {
  type ClientState,
  type ConnectParams,
  type EventFrame,
  GatewayClient,
  type GatewayClientOptions,
  GatewayConnectError,
  GatewayRequestError,
  GatewayTimeoutError,
  type HelloOk,
  type SeqGap,
} from "../mod.ts";

// ---- helpers -------------------------------------------------------------------------------

interface Req {
  type: "req";
  id: string;
  method: string;
  params?: Record<string, unknown>;
}

interface Conn {
  /** 1-based index of the connection on this server. */
  n: number;
  ws: WebSocket;
  frames: Req[];
  send(frame: unknown): void;
  reply(req: Req, payload: unknown): void;
  fail(req: Req, error: Record<string, unknown>, payload?: unknown): void;
  closed: Promise<{ code: number; reason: string; at: number }>;
}

interface ServerOptions {
  /** tickIntervalMs for hello-ok, per connection. Default 60000. */
  tick?: (conn: Conn) => number;
  /** Answers connect; return false to fall back to the default hello-ok. */
  onConnect?: (conn: Conn, req: Req) => boolean;
  /** Skip the challenge (to test the connect timeout). */
  noChallenge?: boolean;
}

function hello(tickIntervalMs: number): HelloOk {
  return {
    type: "hello-ok",
    protocol: 4,
    server: { version: "test", connId: crypto.randomUUID() },
    features: { methods: ["echo"], events: ["tick"] },
    snapshot: {} as HelloOk["snapshot"],
    auth: { role: "operator", scopes: [] },
    policy: { maxPayload: 1 << 20, maxBufferedBytes: 1 << 20, tickIntervalMs },
  };
}

const held = new Map<Conn, Req>();

/** Default methods: echo, hold, release, never, fail, agent, agentFail, emit, drop, binary. */
function handle(conn: Conn, req: Req): void {
  const p = req.params ?? {};
  switch (req.method) {
    case "echo":
      return conn.reply(req, p);
    case "hold": // answered only after "release", so responses come out of order
      held.set(conn, req);
      return;
    case "release":
      conn.reply(req, p);
      if (held.has(conn)) conn.reply(held.get(conn)!, held.get(conn)!.params);
      return;
    case "never":
      return;
    case "fail":
      return conn.fail(req, {
        code: "UNAVAILABLE",
        message: "busy",
        details: { why: "test" },
        retryable: true,
        retryAfterMs: 1234,
      });
    case "agent":
      conn.reply(req, { runId: "r1", status: "accepted" });
      setTimeout(() => conn.reply(req, { runId: "r1", status: "ok" }), 10);
      return;
    case "agentFail":
      conn.reply(req, { runId: "r2", status: "accepted" });
      conn.fail(req, { code: "UNAVAILABLE", message: "run failed" }, { status: "error" });
      return;
    case "emit":
      for (const e of p.events as unknown[]) conn.send({ type: "event", ...(e as object) });
      return conn.reply(req, { ok: true });
    case "drop":
      return conn.ws.close(Number(p.code), String(p.reason));
    case "binary":
      conn.ws.send("this is not json");
      conn.ws.send("[1,2]");
      conn.ws.send(
        new TextEncoder().encode(
          JSON.stringify({ type: "res", id: req.id, ok: true, payload: "bin" }),
        ),
      );
      return;
  }
}

function startServer(opts: ServerOptions = {}) {
  const conns: Conn[] = [];
  const waiting = new Map<number, (c: Conn) => void>();
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    const conn: Conn = {
      n: conns.length + 1,
      ws: socket,
      frames: [],
      send: (f) => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify(f)),
      reply: (req, payload) => conn.send({ type: "res", id: req.id, ok: true, payload }),
      fail: (req, error, payload) =>
        conn.send({ type: "res", id: req.id, ok: false, error, ...(payload ? { payload } : {}) }),
      closed: new Promise((resolve) => {
        socket.onclose = (e) => resolve({ code: e.code, reason: e.reason, at: performance.now() });
      }),
    };
    conns.push(conn);
    socket.onopen = () => {
      if (!opts.noChallenge) {
        conn.send({ type: "event", event: "connect.challenge", payload: { nonce: "n-1", ts: 42 } });
      }
      waiting.get(conn.n)?.(conn);
    };
    socket.onmessage = (e) => {
      const req = JSON.parse(e.data) as Req;
      conn.frames.push(req);
      if (req.method !== "connect") return handle(conn, req);
      if (opts.onConnect?.(conn, req)) return;
      conn.reply(req, hello(opts.tick?.(conn) ?? 60_000));
    };
    return response;
  });
  return {
    url: `ws://127.0.0.1:${server.addr.port}`,
    conns,
    /** Resolves when the n-th connection is open. */
    conn(n: number): Promise<Conn> {
      const c = conns[n - 1];
      return c ? Promise.resolve(c) : new Promise((resolve) => waiting.set(n, resolve));
    },
    async close(): Promise<void> {
      await Promise.all(conns.map((c) => c.closed));
      await server.shutdown();
    },
  };
}

type Server = ReturnType<typeof startServer>;

function client(srv: Server, opts: Partial<GatewayClientOptions> = {}): GatewayClient {
  return new GatewayClient({ url: srv.url, token: "secret", requestTimeoutMs: 2000, ...opts });
}

/** Resolves with the error passed along when `client` reaches `state`; rejects after 2 s. */
function nextState(c: GatewayClient, state: ClientState): Promise<Error | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (off(), reject(new Error(`never reached ${state}`))), 2000);
    const off = c.onState((s, err) => {
      if (s === state) clearTimeout(timer), off(), resolve(err);
    });
  });
}

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function assertEquals(actual: unknown, expected: unknown, msg = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${msg} expected ${e}, got ${a}`);
}

async function rejects<E extends Error>(
  p: Promise<unknown>,
  cls: new (...args: never[]) => E,
): Promise<E> {
  try {
    await p;
  } catch (e) {
    if (e instanceof cls) return e;
    throw new Error(`expected ${cls.name}, got ${e}`);
  }
  throw new Error(`expected ${cls.name}, got a resolved promise`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- tests ---------------------------------------------------------------------------------

Deno.test("connect sends connect first and resolves with hello-ok", async () => {
  const srv = startServer({ tick: () => 1000 });
  const states: ClientState[] = [];
  let challenge: unknown;
  const c = client(srv, {
    password: "pw",
    signDevice: (ch, params) => {
      challenge = ch;
      return Promise.resolve({
        id: "dev",
        publicKey: "pk",
        signature: `sig:${params.client.id}`,
        signedAt: ch.ts,
        nonce: ch.nonce,
      });
    },
  });
  c.onState((s) => states.push(s));
  const h = await c.connect();
  assertEquals(h.type, "hello-ok");
  assertEquals(c.hello, h);
  assertEquals(c.protocol, 4);
  assertEquals(c.policy?.tickIntervalMs, 1000);
  assertEquals(challenge, { nonce: "n-1", ts: 42 });

  const conn = await srv.conn(1);
  assertEquals(conn.frames.length, 1);
  const first = conn.frames[0]!;
  assertEquals(first.type, "req");
  assertEquals(first.method, "connect");
  assert(/^1:\S+$/.test(first.id), `id ${first.id}`);
  const params = first.params as unknown as ConnectParams;
  const { version } = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assertEquals(params.minProtocol, 3);
  assertEquals(params.maxProtocol, 4);
  assertEquals(params.client, {
    id: "cli",
    mode: "cli",
    version: `gw-${version}`,
    platform: Deno.build.os,
  });
  assertEquals(params.role, "operator");
  assert(params.scopes?.includes("operator.admin"));
  assertEquals(params.auth, { token: "secret", password: "pw" });
  assertEquals(params.device, {
    id: "dev",
    publicKey: "pk",
    signature: "sig:cli",
    signedAt: 42,
    nonce: "n-1",
  });

  assertEquals(await c.connect(), h, "connect() when connected");
  await c.close();
  assertEquals(states, ["connecting", "connected", "closed"]);
  assertEquals((await conn.closed).code, 1000);
  await srv.close();
});

Deno.test("request matches out-of-order responses by id", async () => {
  const srv = startServer();
  const c = client(srv);
  await c.connect();
  const order: string[] = [];
  const first = c.request("hold", { n: 1 }).then((v) => (order.push("hold"), v));
  const second = c.request("release", { n: 2 }).then((v) => (order.push("release"), v));
  assertEquals(await Promise.all([first, second]), [{ n: 1 }, { n: 2 }]);
  assertEquals(order, ["release", "hold"]);
  const ids = (await srv.conn(1)).frames.map((f) => f.id);
  assertEquals(new Set(ids).size, 3);
  assert(ids.every((id, i) => id.startsWith(`${i + 1}:`)), `ids ${ids}`);
  assertEquals((await srv.conn(1)).frames[1]!.params, { n: 1 });
  await c.close();
  await srv.close();
});

Deno.test("an ok:false response rejects with GatewayRequestError", async () => {
  const srv = startServer();
  const c = client(srv);
  await c.connect();
  const err = await rejects(c.request("fail"), GatewayRequestError);
  assertEquals(
    [err.code, err.method, err.details, err.retryable, err.retryAfterMs],
    ["UNAVAILABLE", "fail", { why: "test" }, true, 1234],
  );
  assert(err.message.includes("busy"), err.message);
  await c.close();
  await srv.close();
});

Deno.test("requests time out and abort; the connection stays usable", async () => {
  const srv = startServer();
  const c = client(srv, { requestTimeoutMs: 30 });
  await c.connect();
  const t0 = performance.now();
  const err = await rejects(c.request("never"), GatewayTimeoutError);
  assert(performance.now() - t0 >= 25, "timed out too early");
  assertEquals([err.method, err.timeoutMs], ["never", 30]);
  await rejects(c.request("never", undefined, { timeoutMs: 10 }), GatewayTimeoutError);

  const ac = new AbortController();
  const aborted = c.request("never", undefined, { signal: ac.signal, timeoutMs: 0 });
  ac.abort(new Error("stop"));
  const reason = await rejects(aborted, Error);
  assertEquals(reason.message, "stop");
  assertEquals(await c.request("echo", { ok: 1 }), { ok: 1 });
  await c.close();
  await srv.close();
});

Deno.test("requestFinal skips the accepted ack; request resolves with it", async () => {
  const srv = startServer();
  const c = client(srv);
  await c.connect();
  assertEquals(await c.request("agent"), { runId: "r1", status: "accepted" });
  assertEquals(await c.requestFinal("agent"), { runId: "r1", status: "ok" });
  const err = await rejects(c.requestFinal("agentFail"), GatewayRequestError);
  assertEquals([err.code, err.payload], ["UNAVAILABLE", { status: "error" }]);
  // A second res after request() resolved is ignored (the ack of "agent" above was
  // followed by a final frame; nothing broke): the client still answers.
  assertEquals(await c.request("echo", { a: 1 }), { a: 1 });
  await c.close();
  await srv.close();
});

Deno.test("events reach named and * handlers until unsubscribed", async () => {
  const srv = startServer();
  const c = client(srv);
  const named: unknown[] = [];
  const all: string[] = [];
  const off = c.on("tick", (payload) => named.push(payload));
  c.on("*", (_p, frame: EventFrame) => all.push(frame.event));
  await c.connect();
  const events = [
    { event: "tick", payload: { ts: 1 }, seq: 1 },
    { event: "presence", payload: {}, seq: 2 },
  ];
  await c.request("emit", { events });
  assertEquals(named, [{ ts: 1 }]);
  assertEquals(all, ["connect.challenge", "tick", "presence"]);
  off();
  await c.request("emit", { events: [{ event: "tick", payload: { ts: 2 }, seq: 3 }] });
  assertEquals(named, [{ ts: 1 }]);
  assertEquals(all.at(-1), "tick");
  await c.close();
  await srv.close();
});

Deno.test("event seq gaps are reported", async () => {
  const srv = startServer();
  const c = client(srv);
  const gaps: SeqGap[] = [];
  c.onGap((g) => gaps.push(g));
  await c.connect();
  const ev = (seq: number) => ({ event: "tick", payload: {}, seq });
  // Protocol 4: seq starts at 1 after hello-ok, so a first seq of 2 is a gap too.
  await c.request("emit", { events: [ev(2), ev(3), ev(5), ev(6), ev(4)] });
  assertEquals(gaps, [{ expected: 1, received: 2 }, { expected: 4, received: 5 }]);
  await c.request("emit", { events: [ev(9)] });
  assertEquals(gaps.at(-1), { expected: 7, received: 9 });
  await c.close();
  await srv.close();
});

Deno.test("the tick watchdog closes with 4000 and reconnects", async () => {
  // Connection 1 announces tick 50 ms and sends 4 ticks 30 ms apart, then falls silent.
  const srv = startServer({ tick: (conn) => conn.n === 1 ? 50 : 60_000 });
  const c = client(srv, { reconnect: { initialDelayMs: 10, jitter: 0 } });
  await c.connect();
  const helloAt = performance.now();
  const conn1 = await srv.conn(1);
  for (let i = 1; i <= 4; i++) {
    setTimeout(() => conn1.send({ type: "event", event: "tick", payload: {}, seq: i }), 30 * i);
  }
  const pending = rejects(c.request("never", undefined, { timeoutMs: 0 }), GatewayConnectError);
  const dropped = await nextState(c, "reconnecting");
  assert(dropped instanceof GatewayConnectError);
  assertEquals(dropped.closeCode, 4000);
  const closed = await conn1.closed;
  assertEquals([closed.code, closed.reason], [4000, "tick timeout"]);
  // Last tick at ~120 ms, so the watchdog (2 × 50 ms) fires no earlier than ~220 ms.
  assert(closed.at - helloAt >= 200, `closed after ${closed.at - helloAt} ms`);
  assertEquals((await pending).closeCode, 4000);

  await nextState(c, "connected");
  assertEquals((await srv.conn(2)).frames[0]!.method, "connect");
  await c.close();
  assertEquals(srv.conns.length, 2);
  await srv.close();
});

Deno.test("reconnects with exponential backoff after the server drops the socket", async () => {
  // 1: ok, then drops on request; 2: closed during the handshake; 3: ok.
  const srv = startServer({
    onConnect: (conn) => conn.n === 2 && (conn.ws.close(1012, "restarting"), true),
  });
  const c = client(srv, { reconnect: { initialDelayMs: 40, factor: 2, jitter: 0 } });
  const states: string[] = [];
  c.onState((s, err) =>
    states.push(`${s}${err instanceof GatewayConnectError ? err.closeCode : ""}`)
  );
  await c.connect();
  const ticks = [1, 2, 3].map((seq) => ({ event: "tick", payload: {}, seq }));
  await c.request("emit", { events: ticks });
  const pending = c.request("never", undefined, { timeoutMs: 0 });
  void c.request("drop", { code: 1012, reason: "restart" }).catch(() => {});
  const e = await rejects(pending, GatewayConnectError);
  assertEquals([e.closeCode, e.closeReason], [1012, "restart"]);
  const droppedAt = performance.now();

  await nextState(c, "connected");
  const conn2 = srv.conns[1]!, conn3 = srv.conns[2]!;
  assertEquals(srv.conns.length, 3);
  const conn2Closed = await conn2.closed;
  assert(conn2Closed.at - droppedAt >= 35, `first retry after ${conn2Closed.at - droppedAt} ms`);
  assertEquals(conn3.frames[0]!.method, "connect");
  assertEquals(states, [
    "connecting",
    "connected",
    "reconnecting1012",
    "reconnecting1012",
    "connected",
  ]);
  assertEquals(await c.request("echo", { back: true }), { back: true });
  // seq restarts at 1 on the new connection: 1 is no gap, 3 after it is one.
  const gaps: SeqGap[] = [];
  c.onGap((g) => gaps.push(g));
  await c.request("emit", { events: [1, 3].map((seq) => ({ event: "tick", payload: {}, seq })) });
  assertEquals(gaps, [{ expected: 2, received: 3 }]);
  // The second delay doubled: 80 ms between connection 2's close and connection 3.
  const conn3Opened = performance.now();
  assert(
    conn3Opened - conn2Closed.at >= 75,
    `second retry after ${conn3Opened - conn2Closed.at} ms`,
  );
  await c.close();
  await srv.close();
});

Deno.test("close() is idempotent and stops reconnecting", async () => {
  const srv = startServer();
  const c = client(srv, { reconnect: { initialDelayMs: 5, jitter: 0 } });
  await c.connect();
  const pending = rejects(c.request("never", undefined, { timeoutMs: 0 }), GatewayConnectError);
  await c.close();
  assertEquals(c.state, "closed");
  await pending;
  await rejects(c.request("echo"), GatewayConnectError);
  await sleep(30);
  assertEquals(srv.conns.length, 1);
  await Promise.all([c.close(), c.close()]);
  assertEquals(c.state, "closed");
  // connect() right after close() (socket still closing) opens a fresh connection.
  await c.connect();
  const closing = c.close();
  const h = await c.connect();
  await closing;
  assertEquals([c.state, h.type, srv.conns.length], ["connected", "hello-ok", 3]);
  await c.close();
  await srv.close();
});

Deno.test("reconnect waits retryAfterMs on AUTH_RATE_LIMITED and stops on other AUTH_ codes", async () => {
  const srv = startServer({
    onConnect: (conn, req) => {
      if (conn.n === 2) {
        const error = {
          code: "INVALID_REQUEST",
          message: "rate limited",
          retryAfterMs: 80,
          details: { code: "AUTH_RATE_LIMITED" },
        };
        return conn.fail(req, error), conn.ws.close(1008, "rate limited"), true;
      }
      if (conn.n === 3) {
        const error = {
          code: "INVALID_REQUEST",
          message: "unauthorized",
          details: { code: "AUTH_TOKEN_MISMATCH" },
        };
        return conn.fail(req, error), true; // the client closes; it should not wait for us
      }
      return false;
    },
  });
  const c = client(srv, { reconnect: { initialDelayMs: 5, jitter: 0 } });
  await c.connect();
  const closed = nextState(c, "closed");
  void c.request("drop", { code: 1012, reason: "" }).catch(() => {});
  const err = await closed;
  assert(err instanceof GatewayRequestError, `got ${err}`);
  assertEquals(err.details?.code, "AUTH_TOKEN_MISMATCH");
  const [c2, c3] = [srv.conns[1]!, srv.conns[2]!];
  const gap = (await c3.closed).at - (await c2.closed).at;
  assert(gap >= 70, `retried after ${gap} ms, expected >= 80`);
  await sleep(30);
  assertEquals(srv.conns.length, 3);
  await c.close();
  await srv.close();
});

Deno.test("connect failures: refused, closed early, rejected, timed out", async (t) => {
  await t.step("nothing listening", async () => {
    const srv = startServer();
    const url = srv.url;
    await srv.close();
    const c = new GatewayClient({ url });
    const err = await rejects(c.connect(), GatewayConnectError);
    assertEquals(c.state, "closed");
    assert(err.closeCode !== undefined, "close code recorded");
  });

  await t.step("closed during the handshake", async () => {
    const srv = startServer({ onConnect: (conn) => (conn.ws.close(1008, "bad handshake"), true) });
    const c = client(srv, { reconnect: true });
    const err = await rejects(c.connect(), GatewayConnectError);
    assertEquals([err.closeCode, err.closeReason], [1008, "bad handshake"]);
    assertEquals(c.state, "closed");
    await srv.close();
  });

  await t.step("rejected by the gateway", async () => {
    const srv = startServer({
      onConnect: (conn, req) => (conn.fail(req, {
        code: "INVALID_REQUEST",
        message: "protocol mismatch",
        details: { code: "PROTOCOL_MISMATCH" },
      }),
        true),
    });
    const c = client(srv, { reconnect: true });
    const err = await rejects(c.connect(), GatewayRequestError);
    assertEquals([err.code, err.method, err.details?.code], [
      "INVALID_REQUEST",
      "connect",
      "PROTOCOL_MISMATCH",
    ]);
    assertEquals(c.state, "closed");
    await srv.close();
    assertEquals(srv.conns.length, 1);
  });

  await t.step("no challenge within connectTimeoutMs", async () => {
    const srv = startServer({ noChallenge: true });
    const c = client(srv, { connectTimeoutMs: 50 });
    const err = await rejects(c.connect(), GatewayConnectError);
    assert(err.message.includes("50 ms"), err.message);
    await c.close();
    await srv.close();
  });

  await t.step("signDevice throws", async () => {
    const srv = startServer();
    const boom = new Error("no key");
    const c = client(srv, { signDevice: () => Promise.reject(boom) });
    const err = await rejects(c.connect(), GatewayConnectError);
    assertEquals(err.cause, boom);
    await c.close();
    await srv.close();
    assertEquals(srv.conns[0]!.frames.length, 0);
  });
});

Deno.test("binary frames are decoded and non-JSON frames ignored", async () => {
  const srv = startServer();
  const c = client(srv);
  await c.connect();
  assertEquals(await c.request("binary"), "bin");
  await c.close();
  await srv.close();
});
