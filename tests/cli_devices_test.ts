/**
 * `gw pair` and `gw devices` end to end: a real gateway, the CLI in child
 * processes run exactly as the binary runs it (`deno run -P=gw main.ts ...`,
 * clean environment, NO_COLOR=1), and a "remote machine": the gateway trusts
 * 127.0.0.1 as a proxy, and a small TCP proxy in this file adds
 * `X-Forwarded-For: 203.0.113.7` to every upgrade, so a CLI that connects
 * through it is not direct loopback and must be paired. The gateway owner's
 * CLI connects directly with the gateway's token.
 */
import assert from "node:assert/strict";
import { type AnyFrame, gwRunArgs, startTestGateway } from "./_helpers.ts";
import {
  deviceAuthHook,
  GatewayClient,
  GatewayRequestError,
  MemoryIdentityStorage,
} from "../mod.ts";
import { childEnv, json, okRun, type RunResult, show } from "./_cli.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const REMOTE_IP = "203.0.113.7";

// ------------------------------------------------------------------ helpers

/** A TCP proxy to `port` that adds an X-Forwarded-For header to each HTTP request head. */
function forwardingProxy(port: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    try {
      await from.readable.pipeTo(to.writable);
    } catch { /* closed */ }
  };
  const serve = async (client: Deno.Conn) => {
    const upstream = await Deno.connect({ hostname: "127.0.0.1", port });
    conns.add(client).add(upstream);
    // Read the request head, add the header, then just pipe.
    const reader = client.readable.getReader();
    let head = new Uint8Array(0);
    const dec = new TextDecoder();
    while (!dec.decode(head).includes("\r\n\r\n")) {
      const { value, done } = await reader.read();
      if (done) return;
      const next = new Uint8Array(head.length + value.length);
      next.set(head), next.set(value, head.length);
      head = next;
    }
    reader.releaseLock();
    const text = dec.decode(head);
    const cut = text.indexOf("\r\n") + 2;
    const out = text.slice(0, cut) + `X-Forwarded-For: ${REMOTE_IP}\r\n` + text.slice(cut);
    const w = upstream.writable.getWriter();
    await w.write(new TextEncoder().encode(out));
    w.releaseLock();
    await Promise.all([pipe(client, upstream), pipe(upstream, client)]);
    conns.delete(client), conns.delete(upstream);
  };
  const loop = (async () => {
    for await (const c of listener) void serve(c).catch(() => {});
  })();
  const addr = listener.addr as Deno.NetAddr;
  return {
    url: `ws://127.0.0.1:${addr.port}`,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await loop.catch(() => {});
    },
  };
}

/** A gateway that believes 127.0.0.1's X-Forwarded-For, the proxy, and two state dirs. */
async function setup() {
  const t = await startTestGateway({ config: { gateway: { trustedProxies: ["127.0.0.1"] } } });
  const proxy = forwardingProxy(t.port);
  const home = await Deno.makeTempDir({ prefix: "gw-cli-devices-home-" });
  const remoteState = `${home}/remote`;
  const ownerState = `${home}/owner`;
  await Deno.mkdir(remoteState), await Deno.mkdir(ownerState);
  return {
    t,
    proxy,
    home,
    remoteState,
    ownerState,
    /** The owner's connection flags: straight to the gateway with its token. */
    owner: ["--url", t.url, "--token", t.token, "--state-dir", ownerState],
    /** The remote CLI's flags, through the proxy, without a token. */
    remote: ["--url", proxy.url, "--state-dir", remoteState],
    async [Symbol.asyncDispose]() {
      await proxy.close();
      await t.stop();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    },
  };
}

type Env = Awaited<ReturnType<typeof setup>>;

/** Run `gw <args>`, killed after 30 s. */
async function gw(env: Pick<Env, "home">, args: string[]): Promise<RunResult> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 30_000);
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: gwRunArgs(...args),
      cwd: ROOT,
      env: await childEnv(env.home, { TZ: "UTC" }),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: ac.signal,
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/** A running `gw <args>` whose output can be waited on line by line. */
async function spawnGw(env: Pick<Env, "home">, args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: gwRunArgs(...args),
    cwd: ROOT,
    env: await childEnv(env.home, { TZ: "UTC" }),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "", stderr = "";
  const waiters: (() => void)[] = [];
  const drain = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      add(chunk);
      for (const w of waiters.splice(0)) w();
    }
  };
  const done = Promise.all([
    drain(child.stdout, (t) => stdout += t),
    drain(child.stderr, (t) => stderr += t),
  ]);
  const kill = setTimeout(() => child.kill(), 60_000);
  const result = Promise.all([child.status, done]).then(([s]) => {
    clearTimeout(kill);
    for (const w of waiters.splice(0)) w();
    return { code: s.code, stdout, stderr } as RunResult;
  });
  return {
    result,
    /** Resolves with the first match of `re` in stdout; rejects after `ms`. */
    async waitFor(re: RegExp, ms = 20_000): Promise<RegExpMatchArray> {
      const deadline = Date.now() + ms;
      for (;;) {
        const m = stdout.match(re);
        if (m) return m;
        if (Date.now() > deadline) {
          throw new Error(`no ${re} within ${ms} ms:\n${stdout}\n--- stderr\n${stderr}`);
        }
        const exited = await Promise.race([
          new Promise<boolean>((r) => {
            waiters.push(() => r(false));
            setTimeout(() => r(false), 250);
          }),
          result.then(() => true),
        ]);
        if (exited && !stdout.match(re)) {
          throw new Error(`exited before ${re}:\n${stdout}\n--- stderr\n${stderr}`);
        }
      }
    },
  };
}

async function pairList(env: Env): Promise<AnyFrame> {
  return json(okRun(await gw(env, ["devices", "list", "--json", ...env.owner]), "devices list"));
}

/** Start `gw pair` on the remote side and wait for its request id. */
async function startPair(env: Env, extra: string[] = []) {
  const pair = await spawnGw(env, [
    "pair",
    env.proxy.url,
    "--token",
    env.t.token,
    "--state-dir",
    env.remoteState,
    ...extra,
  ]);
  const m = await pair.waitFor(/Pairing requested \(request ([0-9a-f-]+)\)/);
  return { pair, requestId: m[1]! };
}

// ------------------------------------------------------------------ tests

Deno.test("cli pair: a remote CLI waits for approval, then calls with its device token; revoke, rotate, remove", async (t) => {
  await using env = await setup();
  const { pair, requestId } = await startPair(env, ["--name", "remote-box", "--scopes", "read"]);
  let deviceId = "";

  await t.step("the request shows on the owner's list with the remote address", async () => {
    const list = await pairList(env);
    assert.equal(list.paired.length, 0, JSON.stringify(list));
    const req = list.pending.find((p: AnyFrame) => p.requestId === requestId);
    assert.ok(req, JSON.stringify(list));
    assert.equal(req.remoteIp, REMOTE_IP);
    assert.equal(req.displayName, "remote-box");
    assert.deepEqual(req.scopes, ["operator.read"]);
    deviceId = req.deviceId;
    const device = JSON.parse(await Deno.readTextFile(`${env.remoteState}/identity/device.json`));
    assert.equal(device.deviceId, deviceId);
    const table = okRun(await gw(env, ["devices", ...env.owner]), "devices").stdout;
    assert.match(table, /Pending requests \(1\)/);
    assert.match(
      table,
      new RegExp(`^${requestId.slice(0, 8)}\\s+${deviceId.slice(0, 8)}\\s+`, "m"),
    );
    assert.match(table, /remote-box/);
    assert.match(table, new RegExp(REMOTE_IP.replace(/\./g, "\\.")));
    assert.match(table, /Paired devices \(0\)/);
  });

  await t.step("a remote call before pairing has no token to use", async () => {
    const r = await gw(env, ["health", ...env.remote]);
    assert.equal(r.code, 3, show(r));
    assert.match(r.stderr, /gw pair/);
  });

  await t.step("the owner approves by prefix; gw pair finishes and keeps the token", async () => {
    const r = okRun(
      await gw(env, ["devices", "approve", requestId.slice(0, 6), ...env.owner]),
      "approve",
    );
    assert.match(r.stdout, new RegExp(`approved request ${requestId.slice(0, 8)}`));
    const done = await pair.result;
    assert.equal(done.code, 0, show(done));
    assert.match(done.stdout, new RegExp(`paired: device ${deviceId} with scopes operator\\.read`));
    const tokensPath = `${env.remoteState}/identity/tokens.json`;
    const file = JSON.parse(await Deno.readTextFile(tokensPath));
    const saved = file.tokens[`${env.proxy.url}/`];
    assert.ok(saved?.token, JSON.stringify(file));
    assert.equal(saved.role, "operator");
    assert.deepEqual(saved.scopes, ["operator.read"]);
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(tokensPath)).mode! & 0o777, 0o600);
      assert.equal(
        (await Deno.stat(`${env.remoteState}/identity/device.json`)).mode! & 0o777,
        0o600,
      );
    }
    const list = await pairList(env);
    assert.equal(list.pending.length, 0);
    assert.equal(list.paired[0].deviceId, deviceId);
    assert.deepEqual(list.paired[0].approvedScopes, ["operator.read"]);
  });

  await t.step("the remote CLI now calls without --token, with the approved scopes", async () => {
    const r = okRun(await gw(env, ["health", "--json", ...env.remote]), "remote health");
    assert.equal(json(r).ok, true);
    const c = okRun(
      await gw(env, ["call", "sessions.list", "{}", ...env.remote]),
      "remote sessions.list",
    );
    assert.ok(c.stdout.length > 0);
    // operator.read only: a write is refused, and the hint names paired devices.
    const w = await gw(env, ["call", "sessions.reset", '{"key":"main"}', ...env.remote]);
    assert.equal(w.code, 1, show(w));
    assert.match(w.stderr, /MISSING_SCOPE|operator\.(write|admin)/);
    const list = await pairList(env);
    assert.equal(list.paired[0].lastSeenIp, REMOTE_IP);
    const table = okRun(await gw(env, ["devices", "list", ...env.owner]), "list").stdout;
    assert.match(table, /Paired devices \(1\)/);
    assert.match(table, new RegExp(`^${deviceId.slice(0, 8)}\\s+remote-box`, "m"));
  });

  await t.step("revoke: the remote token stops working and the CLI forgets it", async () => {
    const r = okRun(
      await gw(env, ["devices", "revoke", deviceId.slice(0, 10), ...env.owner]),
      "revoke",
    );
    assert.match(
      r.stdout,
      new RegExp(`revoked the operator token of device ${deviceId.slice(0, 8)}`),
    );
    const h = await gw(env, ["health", ...env.remote]);
    assert.equal(h.code, 3, show(h));
    assert.match(h.stderr, /refused this machine's device token/);
    assert.match(h.stderr, /gw pair/);
    const file = JSON.parse(
      await Deno.readTextFile(`${env.remoteState}/identity/tokens.json`),
    );
    assert.deepEqual(file.tokens, {});
  });

  await t.step("rotate prints a new token once; --json gives it to scripts", async () => {
    const r = okRun(
      await gw(env, ["devices", "rotate", deviceId.slice(0, 8), "--scopes", "read", ...env.owner]),
      "rotate",
    );
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0]!, /rotated the operator token of device/);
    assert.match(lines.at(-1)!, /^[A-Za-z0-9_-]{20,}$/);
    const j = json(
      okRun(await gw(env, ["devices", "rotate", deviceId, "--json", ...env.owner]), "rotate json"),
    );
    assert.equal(j.deviceId, deviceId);
    assert.equal(typeof j.token, "string");
    assert.notEqual(j.token, lines.at(-1));
  });

  await t.step("remove: the device leaves the list", async () => {
    const r = okRun(
      await gw(env, ["devices", "remove", deviceId.slice(0, 8), ...env.owner]),
      "remove",
    );
    assert.match(r.stdout, new RegExp(`removed device ${deviceId.slice(0, 8)}`));
    assert.equal((await pairList(env)).paired.length, 0);
  });
});

Deno.test("cli pair: a rejected request is reported, a new one opens, and the wait times out with exit 1", async () => {
  await using env = await setup();
  const { pair, requestId } = await startPair(env, ["--timeout", "8s"]);
  okRun(await gw(env, ["devices", "reject", requestId, ...env.owner]), "reject");
  await pair.waitFor(new RegExp(`request ${requestId} is gone`));
  const again = await pair.waitFor(/opened request ([0-9a-f-]+)/);
  assert.notEqual(again[1], requestId);
  const done = await pair.result;
  assert.equal(done.code, 1, show(done));
  assert.match(done.stderr, /no approval within 8s/);
  const list = await pairList(env);
  assert.equal(list.paired.length, 0);
  assert.equal(list.pending.length, 1);
  assert.notEqual(list.pending[0].requestId, requestId);
});

Deno.test("cli devices: unknown and ambiguous ids exit 1; usage mistakes exit 2", async () => {
  await using env = await setup();
  const r = await gw(env, ["devices", "approve", "zzzz", ...env.owner]);
  assert.equal(r.code, 1, show(r));
  assert.match(r.stderr, /no pending request has an id starting with 'zzzz'/);
  const rm = await gw(env, ["devices", "remove", "abc", "--json", ...env.owner]);
  assert.equal(rm.code, 1, show(rm));
  assert.equal(json(rm).error.type, "lookup_error");
  for (
    const [args, re] of [
      [["devices", "bogus"], /unknown devices command 'bogus'/],
      [["devices", "approve"], /usage: gw devices approve REQUEST_ID/],
      [["devices", "list", "extra"], /devices list takes no arguments/],
      [["devices", "approve", "x", "--scopes", "read"], /devices approve does not take --scopes/],
      [["devices", "rotate", "x", "--role", "boss"], /--role: expected operator or node/],
      [["pair"], /usage: gw pair <url>/],
      [["pair", "http://x:1", "--token", "t"], /expected a gateway URL/],
      [["pair", "ws://x:1", "--token", "t", "--timeout", "soon"], /--timeout: expected a duration/],
      [["pair", "ws://gw.example:1"], /needs the gateway's shared secret/],
      [["health", "--scopes", "read"], /health does not take --scopes/],
    ] as [string[], RegExp][]
  ) {
    const u = await gw(env, [...args, "--state-dir", env.ownerState]);
    assert.equal(u.code, 2, `${args.join(" ")}: ${show(u)}`);
    assert.match(u.stderr, re, args.join(" "));
  }
});

Deno.test("GatewayClient as a remote device: pairing required, approved, then the device token alone", async (t) => {
  await using env = await setup();
  const storage = new MemoryIdentityStorage();
  // Deno's WebSocket takes headers in its second argument.
  class RemoteWebSocket extends WebSocket {
    constructor(url: string) {
      super(url, { headers: { "X-Forwarded-For": REMOTE_IP } } as unknown as string[]);
    }
  }
  const base = {
    url: env.t.url,
    scopes: ["operator.read", "operator.write"],
    signDevice: deviceAuthHook(storage),
    deviceTokens: storage,
    WebSocket: RemoteWebSocket,
  };
  let requestId = "";
  await t.step("the first connect asks for pairing", async () => {
    const c = new GatewayClient({ ...base, token: env.t.token });
    const e = await c.connect().then(() => null, (e) => e);
    await c.close();
    assert.ok(e instanceof GatewayRequestError, String(e));
    assert.equal(e.code, "NOT_PAIRED");
    assert.equal(e.details?.code, "PAIRING_REQUIRED");
    requestId = String(e.details?.requestId);
  });
  await t.step("after approval the shared-secret connect returns a device token", async () => {
    okRun(await gw(env, ["devices", "approve", requestId, ...env.owner]), "approve");
    const c = new GatewayClient({ ...base, token: env.t.token });
    const hello = await c.connect();
    await c.close();
    assert.equal(typeof hello.auth.deviceToken, "string");
    const saved = await storage.loadToken(env.t.url);
    assert.equal(saved?.token, hello.auth.deviceToken);
    assert.deepEqual(saved?.scopes, ["operator.read", "operator.write"]);
  });
  await t.step(
    "useDeviceToken connects without the shared secret and gets no new token",
    async () => {
      const c = new GatewayClient({ ...base, useDeviceToken: true });
      const hello = await c.connect();
      const health = await c.request("health");
      await c.close();
      assert.equal(hello.auth.deviceToken, undefined);
      assert.deepEqual([...hello.auth.scopes].sort(), ["operator.read", "operator.write"]);
      assert.equal((health as { ok: boolean }).ok, true);
    },
  );
});
