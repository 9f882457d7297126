/**
 * Device identity on the client side: keys, the v3 signature (checked by the
 * gateway's own verifier), storage (memory, and the CLI's files with mode
 * 0600), and GatewayClient keeping and using device tokens against a tiny
 * in-file server.
 */
import assert from "node:assert/strict";
import {
  type ConnectParams,
  deviceAuthHook,
  deviceAuthPayload,
  DeviceIdentity,
  GatewayClient,
  GatewayRequestError,
  IdentityError,
  MemoryIdentityStorage,
  type SignParams,
  type StoredIdentity,
} from "../mod.ts";
import { devicePayload, type SignedFields, verifyDevice } from "../lib/server/device.ts";
import { FileIdentityStorage, loadCliIdentity } from "../lib/cli/identity.ts";

const CHALLENGE = { nonce: "6f1c3c9e-0d7b-4a53-9a44-2f2a3d1e5b10", ts: 1_760_000_000_000 };

function fields(over: Partial<SignParams> = {}): SignParams {
  return {
    challenge: CHALLENGE,
    clientId: "cli",
    clientMode: "cli",
    role: "operator",
    scopes: ["operator.read", "operator.write"],
    token: "shared-secret",
    platform: " Linux ",
    deviceFamily: "Desktop",
    ...over,
  };
}

function serverFields(p: SignParams): SignedFields {
  return {
    clientId: p.clientId,
    clientMode: p.clientMode,
    role: p.role,
    scopes: p.scopes,
    token: p.token,
    platform: p.platform,
    deviceFamily: p.deviceFamily,
  };
}

async function verifyCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (e) {
    return String((e as { details?: { code?: string } }).details?.code);
  }
  return "verified";
}

// ---- identity and signature ------------------------------------------------------------------

Deno.test("identity: generate, sign, and the gateway's verifier accepts it as v3", async () => {
  const id = await DeviceIdentity.generate();
  assert.match(id.deviceId, /^[0-9a-f]{64}$/);
  assert.match(id.publicKey, /^[A-Za-z0-9_-]{43}$/);
  const p = fields();
  const device = await id.sign(p);
  assert.equal(device.id, id.deviceId);
  assert.equal(device.publicKey, id.publicKey);
  assert.equal(device.signedAt, CHALLENGE.ts);
  assert.equal(device.nonce, CHALLENGE.nonce);
  assert.match(device.signature, /^[A-Za-z0-9_-]{86}$/);
  const v = await verifyDevice(device, serverFields(p), CHALLENGE, CHALLENGE.ts + 5_000);
  assert.deepEqual(v, { id: id.deviceId, publicKey: id.publicKey, version: "v3" });
});

Deno.test("identity: the payload is the gateway's v3 string, platform and family normalised", () => {
  const p = fields();
  const s = deviceAuthPayload("abc", p);
  assert.equal(s, devicePayload("v3", "abc", serverFields(p), CHALLENGE.ts, CHALLENGE.nonce));
  assert.equal(
    s,
    `v3|abc|cli|cli|operator|operator.read,operator.write|${CHALLENGE.ts}|shared-secret|${CHALLENGE.nonce}|linux|desktop`,
  );
  const bare = deviceAuthPayload("abc", fields({ platform: undefined, deviceFamily: undefined }));
  assert.ok(bare.endsWith(`|${CHALLENGE.nonce}||`));
});

Deno.test("identity: a wrong nonce, time or any signed field fails verification", async () => {
  const id = await DeviceIdentity.generate();
  const p = fields();
  const device = await id.sign(p);
  const f = serverFields(p);
  const now = CHALLENGE.ts;
  assert.equal(
    await verifyCode(verifyDevice(device, f, { nonce: "another-nonce" }, now)),
    "DEVICE_AUTH_NONCE_MISMATCH",
  );
  assert.equal(
    await verifyCode(verifyDevice(device, f, CHALLENGE, now + 10 * 60_000)),
    "DEVICE_AUTH_SIGNATURE_EXPIRED",
  );
  for (
    const over of [
      { scopes: ["operator.admin"] },
      { token: "other" },
      { role: "node" },
      { clientId: "test" },
      { platform: "darwin" },
      { deviceFamily: "phone" },
    ]
  ) {
    assert.equal(
      await verifyCode(verifyDevice(device, { ...f, ...over }, CHALLENGE, now)),
      "DEVICE_AUTH_SIGNATURE_INVALID",
      JSON.stringify(over),
    );
  }
  // A signature over another nonce, presented with this challenge's.
  const other = await id.sign(fields({ challenge: { nonce: "n2", ts: CHALLENGE.ts } }));
  assert.equal(
    await verifyCode(verifyDevice({ ...other, nonce: CHALLENGE.nonce }, f, CHALLENGE, now)),
    "DEVICE_AUTH_SIGNATURE_INVALID",
  );
  // Someone else's key under this id.
  const stranger = await DeviceIdentity.generate();
  assert.equal(
    await verifyCode(verifyDevice({ ...device, publicKey: stranger.publicKey }, f, CHALLENGE, now)),
    "DEVICE_AUTH_DEVICE_ID_MISMATCH",
  );
});

Deno.test("identity: JSON round trip keeps the key; a tampered or foreign record is refused", async () => {
  const id = await DeviceIdentity.generate();
  const stored = JSON.parse(JSON.stringify(id)) as StoredIdentity;
  assert.deepEqual(Object.keys(stored).sort(), [
    "createdAtMs",
    "deviceId",
    "privateKey",
    "publicKey",
    "version",
  ]);
  assert.equal(stored.version, 1);
  assert.equal(stored.deviceId, id.deviceId);
  const again = await DeviceIdentity.fromJSON(stored);
  assert.equal(again.deviceId, id.deviceId);
  assert.equal(again.createdAtMs, id.createdAtMs);
  const p = fields();
  await verifyDevice(await again.sign(p), serverFields(p), CHALLENGE, CHALLENGE.ts);

  const other = (await DeviceIdentity.generate()).toJSON();
  const bad: [string, unknown][] = [
    ["version", { ...stored, version: 2 }],
    ["foreign public key", { ...stored, publicKey: other.publicKey }],
    ["foreign private key", { ...stored, privateKey: other.privateKey }],
    ["wrong id", { ...stored, deviceId: other.deviceId }],
    ["not base64url", { ...stored, privateKey: "***" }],
    ["not a key", { ...stored, privateKey: "AAAA" }],
    ["missing key", { ...stored, privateKey: undefined }],
    ["null", null],
  ];
  for (const [what, s] of bad) {
    await assert.rejects(DeviceIdentity.fromJSON(s as StoredIdentity), IdentityError, what);
  }
});

Deno.test("deviceAuthHook signs the token the connect sends, and creates an identity once from a storage", async () => {
  const storage = new MemoryIdentityStorage();
  const hook = deviceAuthHook(storage);
  const params: ConnectParams = {
    minProtocol: 3,
    maxProtocol: 4,
    client: { id: "cli", mode: "cli", version: "t", platform: "Linux", deviceFamily: "Box" },
    role: "operator",
    scopes: ["operator.read"],
    auth: { deviceToken: "dev-tok" },
  };
  const d1 = await hook(CHALLENGE, params);
  const d2 = await hook(CHALLENGE, { ...params, auth: { token: "t", deviceToken: "dev-tok" } });
  assert.ok(d1 && d2);
  assert.equal(d1.id, d2.id);
  assert.equal((await storage.load())?.deviceId, d1.id);
  const f: SignedFields = {
    clientId: "cli",
    clientMode: "cli",
    role: "operator",
    scopes: ["operator.read"],
    token: "dev-tok",
    platform: "Linux",
    deviceFamily: "Box",
  };
  await verifyDevice(d1, f, CHALLENGE, CHALLENGE.ts);
  await verifyDevice(d2, { ...f, token: "t" }, CHALLENGE, CHALLENGE.ts); // auth.token comes first
  // A second hook on the same storage uses the same identity.
  const d3 = await deviceAuthHook(storage)(CHALLENGE, params);
  assert.equal(d3?.id, d1.id);
});

// ---- storage ---------------------------------------------------------------------------------

Deno.test("MemoryIdentityStorage keeps one token per normalised URL and copies what it keeps", async () => {
  const s = new MemoryIdentityStorage();
  assert.equal(await s.load(), null);
  assert.equal(await s.loadToken("ws://h:1"), null);
  const tok = { token: "a", role: "operator", scopes: ["operator.read"], issuedAtMs: 1 };
  await s.saveToken("ws://H:1", tok);
  tok.scopes.push("mutated");
  assert.deepEqual(await s.loadToken("ws://h:1/"), {
    token: "a",
    role: "operator",
    scopes: ["operator.read"],
    issuedAtMs: 1,
  });
  assert.equal(await s.loadToken("ws://h:2"), null);
  await s.clearToken("ws://h:1");
  assert.equal(await s.loadToken("ws://h:1"), null);
});

Deno.test("FileIdentityStorage: identity/device.json and tokens.json, mode 0600, in a 0700 dir", async () => {
  const state = await Deno.makeTempDir({ prefix: "gw-identity-" });
  try {
    const { identity, storage } = await loadCliIdentity(state);
    assert.equal(storage.devicePath, `${state}/identity/device.json`);
    const mode = async (p: string) => (await Deno.stat(p)).mode! & 0o777;
    if (Deno.build.os !== "windows") {
      assert.equal(await mode(storage.devicePath), 0o600);
      assert.equal(await mode(storage.dir), 0o700);
    }
    const onDisk = JSON.parse(await Deno.readTextFile(storage.devicePath));
    assert.equal(onDisk.deviceId, identity.deviceId);
    assert.equal(onDisk.version, 1);
    // Loading again gives the same identity, not a new one.
    assert.equal((await loadCliIdentity(state)).identity.deviceId, identity.deviceId);

    assert.equal(await storage.loadToken("ws://gw.lan:18789"), null);
    const tok = { token: "t1", role: "operator", scopes: ["operator.read"], issuedAtMs: 5 };
    await storage.saveToken("ws://gw.lan:18789", tok);
    await storage.saveToken("wss://other:1", { ...tok, token: "t2" });
    if (Deno.build.os !== "windows") assert.equal(await mode(storage.tokensPath), 0o600);
    const fresh = new FileIdentityStorage(state);
    assert.deepEqual(await fresh.loadToken("ws://gw.lan:18789/"), tok);
    assert.equal((await fresh.loadToken("wss://other:1"))?.token, "t2");
    await fresh.clearToken("ws://gw.lan:18789");
    assert.equal(await storage.loadToken("ws://gw.lan:18789"), null);
    assert.equal((await storage.loadToken("wss://other:1"))?.token, "t2");
    if (Deno.build.os !== "windows") assert.equal(await mode(storage.tokensPath), 0o600);
    // No temp files are left beside them.
    const names = [];
    for await (const e of Deno.readDir(storage.dir)) names.push(e.name);
    assert.deepEqual(names.sort(), ["device.json", "tokens.json"]);

    await Deno.writeTextFile(storage.devicePath, "{not json");
    await assert.rejects(loadCliIdentity(state), IdentityError);
  } finally {
    await Deno.remove(state, { recursive: true });
  }
});

// ---- GatewayClient and device tokens ---------------------------------------------------------

interface Seen {
  params: ConnectParams;
  nonce: string;
}

/**
 * A server that answers connect by `answer`: hello-ok auth fields, or an error.
 * Every connect's params are kept, and its device is checked with verifyDevice.
 */
function fakeGateway(
  answer: (p: ConnectParams, n: number) => Record<string, unknown> | { error: unknown },
) {
  const seen: Seen[] = [];
  const closed: Promise<void>[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    const nonce = crypto.randomUUID();
    closed.push(new Promise((r) => socket.addEventListener("close", () => r())));
    socket.onopen = () =>
      socket.send(JSON.stringify({
        type: "event",
        event: "connect.challenge",
        payload: { nonce, ts: Date.now() },
      }));
    socket.onmessage = async (e) => {
      const f = JSON.parse(e.data);
      if (f.method !== "connect") {
        return socket.send(JSON.stringify({ type: "res", id: f.id, ok: true, payload: {} }));
      }
      const p = f.params as ConnectParams;
      seen.push({ params: p, nonce });
      if (p.device) {
        const a = p.auth ?? {};
        await verifyDevice(
          p.device,
          {
            clientId: p.client.id,
            clientMode: p.client.mode,
            role: p.role ?? "operator",
            scopes: p.scopes ?? [],
            token: a.token ?? a.deviceToken ?? a.bootstrapToken ?? "",
            platform: p.client.platform,
            deviceFamily: p.client.deviceFamily,
          },
          { nonce },
          Date.now(),
        );
      }
      const r = answer(p, seen.length);
      if ("error" in r) {
        socket.send(JSON.stringify({ type: "res", id: f.id, ok: false, error: r.error }));
        socket.close(1008, "refused");
        return;
      }
      socket.send(JSON.stringify({
        type: "res",
        id: f.id,
        ok: true,
        payload: {
          type: "hello-ok",
          protocol: 4,
          server: { version: "test", connId: "c" },
          features: { methods: [], events: [] },
          snapshot: {},
          auth: { role: p.role, scopes: p.scopes, ...r },
          policy: { maxPayload: 1 << 20, maxBufferedBytes: 1 << 20, tickIntervalMs: 60_000 },
        },
      }));
    };
    return response;
  });
  return {
    url: `ws://127.0.0.1:${server.addr.port}`,
    seen,
    async [Symbol.asyncDispose]() {
      await Promise.all(closed);
      await server.shutdown();
    },
  };
}

Deno.test("GatewayClient keeps hello-ok's device token and later connects with it instead of the shared token", async (t) => {
  await using gw = fakeGateway((p) =>
    p.auth?.token ? { deviceToken: "dev-1", deviceTokenRole: "operator", issuedAtMs: 77 } : {}
  );
  const storage = new MemoryIdentityStorage();
  const signDevice = deviceAuthHook(storage);
  const base = { url: gw.url, scopes: ["operator.read"], signDevice, deviceTokens: storage };

  await t.step("a shared-token connect stores the issued token", async () => {
    const c = new GatewayClient({ ...base, token: "shared" });
    const hello = await c.connect();
    await c.close();
    assert.equal(hello.auth.deviceToken, "dev-1");
    assert.deepEqual(await storage.loadToken(gw.url), {
      token: "dev-1",
      role: "operator",
      scopes: ["operator.read"],
      issuedAtMs: 77,
    });
    assert.deepEqual(gw.seen[0]!.params.auth, { token: "shared" });
    assert.ok(gw.seen[0]!.params.device);
  });

  await t.step("useDeviceToken sends auth.deviceToken alone, signed over it", async () => {
    const c = new GatewayClient({ ...base, token: "shared", useDeviceToken: true });
    const hello = await c.connect();
    await c.close();
    assert.equal(hello.auth.deviceToken, undefined);
    const sent = gw.seen[1]!.params;
    assert.deepEqual(sent.auth, { deviceToken: "dev-1" });
    assert.equal(sent.device?.id, (await storage.load())?.deviceId);
    assert.equal(sent.device?.nonce, gw.seen[1]!.nonce);
    assert.equal((await storage.loadToken(gw.url))?.token, "dev-1"); // kept
  });

  await t.step("without useDeviceToken, or for another role, the shared token goes", async () => {
    const c = new GatewayClient({ ...base, token: "shared" });
    await c.connect();
    await c.close();
    assert.deepEqual(gw.seen[2]!.params.auth, { token: "shared" });
    const n = new GatewayClient({ ...base, token: "shared", role: "node", useDeviceToken: true });
    await n.connect();
    await n.close();
    assert.deepEqual(gw.seen[3]!.params.auth, { token: "shared" });
  });

  await t.step("a client without the options sends no device (as before)", async () => {
    const c = new GatewayClient({ url: gw.url, token: "shared" });
    const hello = await c.connect();
    await c.close();
    assert.equal(gw.seen[4]!.params.device, undefined);
    assert.equal(hello.auth.deviceToken, "dev-1"); // the fake answers so; nothing keeps it
  });
});

Deno.test("GatewayClient forgets a device token the gateway refuses, and the next connect uses the shared token", async () => {
  await using gw = fakeGateway((p) =>
    p.auth?.deviceToken
      ? {
        error: {
          code: "INVALID_REQUEST",
          message: "unauthorized: device token mismatch",
          details: { code: "AUTH_DEVICE_TOKEN_MISMATCH" },
        },
      }
      : {}
  );
  const storage = new MemoryIdentityStorage();
  await storage.saveToken(gw.url, {
    token: "stale",
    role: "operator",
    scopes: ["operator.read"],
    issuedAtMs: 1,
  });
  const c = new GatewayClient({
    url: gw.url,
    token: "shared",
    scopes: ["operator.read"],
    signDevice: deviceAuthHook(storage),
    deviceTokens: storage,
    useDeviceToken: true,
  });
  const e = await c.connect().then(() => null, (e) => e);
  assert.ok(e instanceof GatewayRequestError);
  assert.equal(e.details?.code, "AUTH_DEVICE_TOKEN_MISMATCH");
  assert.equal(await storage.loadToken(gw.url), null);
  await c.connect();
  await c.close();
  assert.deepEqual(gw.seen.map((s) => s.params.auth), [{ deviceToken: "stale" }, {
    token: "shared",
  }]);
});

Deno.test("GatewayClient keeps the device token on a pairing refusal (not an auth failure)", async () => {
  await using gw = fakeGateway(() => ({
    error: {
      code: "NOT_PAIRED",
      message: "pairing required",
      details: { code: "PAIRING_REQUIRED", requestId: "r1", reason: "scope-upgrade" },
    },
  }));
  const storage = new MemoryIdentityStorage();
  const tok = { token: "dev", role: "operator", scopes: ["operator.read"], issuedAtMs: 1 };
  await storage.saveToken(gw.url, tok);
  const c = new GatewayClient({
    url: gw.url,
    scopes: ["operator.admin"],
    signDevice: deviceAuthHook(storage),
    deviceTokens: storage,
    useDeviceToken: true,
  });
  const e = await c.connect().then(() => null, (e) => e);
  assert.ok(e instanceof GatewayRequestError);
  assert.equal(e.code, "NOT_PAIRED");
  assert.equal(e.details?.requestId, "r1");
  assert.deepEqual(await storage.loadToken(gw.url), tok);
  await c.close();
});
