/**
 * Device identity and pairing through a real gateway, with a signer written
 * here against the protocol (WebCrypto Ed25519), so the server is checked
 * against the wire format and not against our own client library. Each
 * advisory of ../shared/protocol/SECURITY.md about devices has a test named
 * after it.
 */
import assert from "node:assert/strict";
import {
  type AnyFrame,
  closedWithin,
  connected,
  connectParams,
  ok,
  RawClient,
  startTestGateway,
  TEST_TOKEN,
  type TestGateway,
} from "./_helpers.ts";
import { devicePayload, sha256Hex, toB64url } from "../lib/server/device.ts";

interface Device {
  kp: CryptoKeyPair;
  id: string;
  pub: string;
}

async function newDevice(): Promise<Device> {
  const kp = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", kp.publicKey));
  return { kp, id: await sha256Hex(raw), pub: toB64url(raw) };
}

interface SignOpts {
  token?: string;
  deviceToken?: string;
  scopes?: string[];
  role?: string;
  client?: Record<string, unknown>;
  version?: "v3" | "v2";
  /** Override what goes on the wire (after signing). */
  wire?: Partial<
    { id: string; publicKey: string; signature: string; signedAt: number; nonce: string }
  >;
  /** Sign these scopes instead of the ones sent. */
  signScopes?: string[];
  signedAtShift?: number;
  headers?: HeadersInit;
}

/** Open a socket and send a signed connect; resolves with the client and the connect's answer. */
async function signedConnect(
  url: string,
  dev: Device,
  o: SignOpts = {},
): Promise<{ c: RawClient; res: AnyFrame }> {
  const c = new RawClient(url, undefined, o.headers ? { headers: o.headers } : undefined);
  const ch = (await c.challenge()).payload;
  const client = o.client ?? { id: "cli", version: "test", platform: "Linux", mode: "cli" };
  const scopes = o.scopes ?? ["operator.read"];
  const role = o.role ?? "operator";
  const auth = o.deviceToken ? { deviceToken: o.deviceToken } : { token: o.token ?? TEST_TOKEN };
  const signedAt = ch.ts + (o.signedAtShift ?? 0);
  const payload = devicePayload(
    o.version ?? "v3",
    dev.id,
    {
      clientId: client.id as string,
      clientMode: client.mode as string,
      role,
      scopes: o.signScopes ?? scopes,
      token: o.deviceToken ?? o.token ?? TEST_TOKEN,
      platform: client.platform as string,
      deviceFamily: client.deviceFamily as string | undefined,
    },
    signedAt,
    ch.nonce,
  );
  const sig = new Uint8Array(
    await crypto.subtle.sign("Ed25519", dev.kp.privateKey, new TextEncoder().encode(payload)),
  );
  const device = {
    id: dev.id,
    publicKey: dev.pub,
    signature: toB64url(sig),
    signedAt,
    nonce: ch.nonce,
    ...o.wire,
  };
  const res = await c.connect(connectParams({ client, role, scopes, auth, device }));
  return { c, res };
}

/**
 * A gateway where 127.0.0.1 is a trusted proxy, so a forwarded address makes
 * a "remote" client. Nothing is direct loopback there, the CLI included, so
 * the operator is an admin device paired before the proxy was configured.
 */
async function remoteGateway(): Promise<TestGateway & { admin: RawClient }> {
  const t = await startTestGateway();
  const dev = await newDevice();
  const first = await signedConnect(t.url, dev, { scopes: ["operator.admin"] });
  const token = first.res.payload.auth.deviceToken;
  const hash = (await ok(first.c, "config.get")).hash;
  await ok(first.c, "config.patch", {
    patch: { gateway: { trustedProxies: ["127.0.0.1"] } },
    baseHash: hash,
  });
  await first.c.close();
  const admin =
    (await signedConnect(t.url, dev, { deviceToken: token, scopes: ["operator.admin"] })).c;
  return Object.assign(t, { admin });
}
const REMOTE = { "X-Forwarded-For": "203.0.113.7" };

/** A remote device the admin approved with `scopes`, connected with them. */
async function approvedRemote(
  t: TestGateway & { admin: RawClient },
  scopes: string[],
): Promise<RawClient> {
  const dev = await newDevice();
  const a = await signedConnect(t.url, dev, { headers: REMOTE, scopes });
  await closedWithin(a.c, 2000);
  await ok(t.admin, "device.pair.approve", { requestId: a.res.error.details.requestId });
  const b = await signedConnect(t.url, dev, { headers: REMOTE, scopes });
  assert.equal(b.res.ok, true, JSON.stringify(b.res.error));
  return b.c;
}

async function expectDeviceError(t: TestGateway, dev: Device, o: SignOpts, code: string) {
  const { c, res } = await signedConnect(t.url, dev, o);
  assert.equal(res.ok, false, JSON.stringify(res));
  assert.equal(res.error.details?.code, code, JSON.stringify(res.error));
  assert.equal((await closedWithin(c, 2000))?.code, 1008);
}

Deno.test("a v3-signed device on direct loopback with the shared token is paired silently and gets a token", async () => {
  await using t = await startTestGateway();
  const dev = await newDevice();
  const { c, res } = await signedConnect(t.url, dev, {
    scopes: ["operator.read", "operator.write"],
  });
  assert.equal(res.ok, true, JSON.stringify(res.error));
  const auth = res.payload.auth;
  assert.deepEqual(auth.scopes, ["operator.read", "operator.write"]);
  assert.equal(auth.deviceId, dev.id);
  assert.match(auth.deviceToken, /^[A-Za-z0-9_-]{43}$/);
  const lister = await connected(t.url);
  const list = await ok(lister, "device.pair.list");
  await lister.close();
  assert.equal(list.paired.length, 1);
  assert.equal(list.paired[0].deviceId, dev.id);
  assert.equal(list.paired[0].approvedBy, "auto-loopback");
  assert.ok(!JSON.stringify(list).includes(auth.deviceToken), "the token is never listed");
  assert.ok(!JSON.stringify(list).includes('"hash"'), "nor its hash");
  await c.close();
  // The device token alone (no shared secret) now connects, with the same scopes at most.
  const again = await signedConnect(t.url, dev, {
    deviceToken: auth.deviceToken,
    scopes: ["operator.read"],
  });
  assert.equal(again.res.ok, true, JSON.stringify(again.res.error));
  assert.deepEqual(again.res.payload.auth.scopes, ["operator.read"]);
  assert.equal(again.res.payload.auth.method, "device-token");
  assert.equal(again.res.payload.auth.deviceToken, undefined, "no new token on a token connect");
  await again.c.close();
});

Deno.test("a v2 signature is accepted too", async () => {
  await using t = await startTestGateway();
  const { c, res } = await signedConnect(t.url, await newDevice(), { version: "v2" });
  assert.equal(res.ok, true, JSON.stringify(res.error));
  await c.close();
});

Deno.test("each device failure answers its code and closes 1008", async (s) => {
  await using t = await startTestGateway();
  const dev = await newDevice();
  const other = await newDevice();
  await s.step(
    "id that is not the key's hash",
    () => expectDeviceError(t, dev, { wire: { id: other.id } }, "DEVICE_AUTH_DEVICE_ID_MISMATCH"),
  );
  await s.step(
    "signed 3 minutes ago",
    () => expectDeviceError(t, dev, { signedAtShift: -180_000 }, "DEVICE_AUTH_SIGNATURE_EXPIRED"),
  );
  await s.step(
    "signed 3 minutes ahead",
    () => expectDeviceError(t, dev, { signedAtShift: 180_000 }, "DEVICE_AUTH_SIGNATURE_EXPIRED"),
  );
  await s.step(
    "blank nonce",
    () => expectDeviceError(t, dev, { wire: { nonce: "" } }, "DEVICE_AUTH_NONCE_REQUIRED"),
  );
  await s.step("another socket's nonce (a replay)", async () => {
    const spy = new RawClient(t.url);
    const old = (await spy.challenge()).payload.nonce;
    await spy.close();
    await expectDeviceError(t, dev, { wire: { nonce: old } }, "DEVICE_AUTH_NONCE_MISMATCH");
  });
  await s.step("signature over other scopes than sent", () =>
    expectDeviceError(t, dev, {
      scopes: ["operator.admin"],
      signScopes: ["operator.read"],
    }, "DEVICE_AUTH_SIGNATURE_INVALID"));
  await s.step("another key's signature", async () => {
    const { c, res } = await signedConnect(t.url, dev, {
      wire: { publicKey: other.pub, id: other.id },
    });
    assert.equal(res.error?.details?.code, "DEVICE_AUTH_SIGNATURE_INVALID");
    await closedWithin(c, 2000);
  });
  await s.step(
    "a public key that is not 32 bytes",
    () =>
      expectDeviceError(t, dev, { wire: { publicKey: "AAAA" } }, "DEVICE_AUTH_PUBLIC_KEY_INVALID"),
  );
  await s.step("nothing was paired by any of it", async () => {
    const c = await connected(t.url);
    assert.deepEqual((await ok(c, "device.pair.list")).paired, []);
    await c.close();
  });
});

Deno.test("CVE-2026-28472: a present token does not skip the device check, a present device does not skip the token check", async () => {
  await using t = await startTestGateway();
  const dev = await newDevice();
  // Valid shared token, broken device: refused, not connected without the device.
  await expectDeviceError(
    t,
    dev,
    { wire: { signature: toB64url(new Uint8Array(64)) } },
    "DEVICE_AUTH_SIGNATURE_INVALID",
  );
  // Valid device, wrong shared token: refused.
  const { c, res } = await signedConnect(t.url, dev, { token: "wrong-token-0123456789abcdef" });
  assert.equal(res.ok, false);
  assert.equal(res.error.details.code, "AUTH_TOKEN_MISMATCH");
  assert.equal(res.error.details.canRetryWithDeviceToken, true);
  await closedWithin(c, 2000);
  // A made-up device token with a valid device: refused.
  const forged = await signedConnect(t.url, dev, { deviceToken: "A".repeat(43) });
  assert.equal(forged.res.error.details.code, "AUTH_DEVICE_TOKEN_MISMATCH");
  await closedWithin(forged.c, 2000);
  // A device token without a device: refused.
  const bare = new RawClient(t.url);
  await bare.challenge();
  const r = await bare.connect(connectParams({ auth: { deviceToken: "A".repeat(43) } }));
  assert.equal(r.error.code, "NOT_PAIRED");
  assert.equal(r.error.details.code, "DEVICE_IDENTITY_REQUIRED");
  await closedWithin(bare, 2000);
});

Deno.test("#1795: a remote device (through a trusted proxy) needs pairing; approval, then its token works", async () => {
  await using t = await remoteGateway();
  const admin = t.admin;
  const dev = await newDevice();
  const first = await signedConnect(t.url, dev, {
    headers: REMOTE,
    scopes: ["operator.read", "operator.write"],
    client: {
      id: "openclaw-macos",
      version: "1",
      platform: "macOS",
      mode: "ui",
      displayName: "Ada's Mac",
    },
  });
  assert.equal(first.res.ok, false);
  assert.equal(first.res.error.code, "NOT_PAIRED");
  assert.equal(first.res.error.details.code, "PAIRING_REQUIRED");
  assert.equal(first.res.error.details.reason, "not-paired");
  const requestId = first.res.error.details.requestId;
  assert.equal((await closedWithin(first.c, 2000))?.code, 1008);
  const ev = await admin.next((f) => f.event === "device.pair.requested");
  assert.equal(ev.payload.requestId, requestId);
  assert.equal(ev.payload.remoteIp, "203.0.113.7");
  assert.equal(ev.payload.displayName, "Ada's Mac");
  // Asking again while pending reuses the request.
  const second = await signedConnect(t.url, dev, { headers: REMOTE, scopes: ["operator.read"] });
  assert.equal(second.res.error.details.requestId, requestId);
  await closedWithin(second.c, 2000);
  const pending = (await ok(admin, "device.pair.list")).pending;
  assert.equal(pending.length, 1);
  const approved = await ok(admin, "device.pair.approve", { requestId });
  assert.equal(approved.decision, "approved");
  assert.deepEqual(approved.device.approvedScopes, ["operator.read", "operator.write"]);
  assert.equal(
    (await admin.next((f) => f.event === "device.pair.resolved")).payload.decision,
    "approved",
  );
  // Now the shared secret + signature gives it a token; the token alone then suffices.
  const third = await signedConnect(t.url, dev, { headers: REMOTE, scopes: ["operator.read"] });
  assert.equal(third.res.ok, true, JSON.stringify(third.res.error));
  const token = third.res.payload.auth.deviceToken;
  assert.ok(token);
  await third.c.close();
  const byToken = await signedConnect(t.url, dev, {
    headers: REMOTE,
    deviceToken: token,
    scopes: ["operator.read", "operator.write"],
  });
  assert.equal(byToken.res.ok, true, JSON.stringify(byToken.res.error));
  assert.deepEqual(byToken.res.payload.auth.scopes, ["operator.read", "operator.write"]);
  await byToken.c.close();
  await admin.close();
});

Deno.test("#1795: a loopback peer that sends an untrusted proxy header is not local: no silent pairing", async () => {
  await using t = await startTestGateway();
  const { c, res } = await signedConnect(t.url, await newDevice(), { headers: REMOTE });
  assert.equal(res.error?.details?.code, "PAIRING_REQUIRED", JSON.stringify(res));
  await closedWithin(c, 2000);
});

Deno.test("a device asking for more than its baseline needs pairing again (scope upgrade)", async () => {
  await using t = await startTestGateway();
  const dev = await newDevice();
  const first = await signedConnect(t.url, dev, { scopes: ["operator.read"] });
  const token = first.res.payload.auth.deviceToken;
  await first.c.close();
  const more = await signedConnect(t.url, dev, { deviceToken: token, scopes: ["operator.admin"] });
  assert.equal(more.res.error.details.code, "PAIRING_REQUIRED");
  assert.equal(more.res.error.details.reason, "scope-upgrade");
  await closedWithin(more.c, 2000);
});

Deno.test("reject drops the request; an expired request cannot be approved", async () => {
  await using t = await remoteGateway();
  const admin = t.admin;
  const dev = await newDevice();
  const a = await signedConnect(t.url, dev, { headers: REMOTE });
  const id1 = a.res.error.details.requestId;
  await closedWithin(a.c, 2000);
  const r = await ok(admin, "device.pair.reject", { requestId: id1 });
  assert.equal(r.decision, "rejected");
  assert.equal(
    (await admin.request("device.pair.approve", { requestId: id1 })).error.details.code,
    "PAIR_REQUEST_NOT_FOUND",
  );
  const b = await signedConnect(t.url, dev, { headers: REMOTE });
  assert.notEqual(b.res.error.details.requestId, id1, "a new request after a rejection");
  await closedWithin(b.c, 2000);
  // A request past its 5 minutes: gone for listing and approval.
  const now = Date.now();
  await t.gw.store.devices.addRequest({
    requestId: "old-request",
    deviceId: dev.id,
    publicKey: dev.pub,
    clientId: "cli",
    clientMode: "cli",
    role: "operator",
    scopes: ["operator.read"],
    remoteIp: "203.0.113.7",
    reason: "not-paired",
    createdAtMs: now - 6 * 60_000,
    expiresAtMs: now - 60_000,
  });
  const listed = (await ok(admin, "device.pair.list")).pending.map((p: AnyFrame) => p.requestId);
  assert.ok(!listed.includes("old-request"));
  assert.equal(
    (await admin.request("device.pair.approve", { requestId: "old-request" })).error.details.code,
    "PAIR_REQUEST_NOT_FOUND",
  );
  await admin.close();
});

Deno.test("GHSA-4jpw: a pairing-only operator cannot approve or mint scopes it does not hold", async () => {
  await using t = await remoteGateway();
  const admin = t.admin;
  const pairer = await approvedRemote(t, ["operator.pairing"]);
  const dev = await newDevice();
  const a = await signedConnect(t.url, dev, { headers: REMOTE, scopes: ["operator.admin"] });
  const requestId = a.res.error.details.requestId;
  await closedWithin(a.c, 2000);
  const denied = (await pairer.request("device.pair.approve", { requestId })).error;
  assert.equal(denied.code, "FORBIDDEN");
  assert.equal(denied.details.missingScope, "operator.admin");
  // The admin approves; the pairing-only operator still cannot rotate it to admin.
  await ok(admin, "device.pair.approve", { requestId });
  const mint = (await pairer.request("device.token.rotate", {
    deviceId: dev.id,
    role: "operator",
    scopes: ["operator.admin"],
  })).error;
  assert.equal(mint.code, "FORBIDDEN");
  // Nor by leaving scopes out (the default is the baseline, admin included).
  assert.equal(
    (await pairer.request("device.token.rotate", { deviceId: dev.id, role: "operator" })).error
      .code,
    "FORBIDDEN",
  );
  // Nobody mints beyond the device's baseline, admin included.
  const outside = (await admin.request("device.token.rotate", {
    deviceId: dev.id,
    role: "operator",
    scopes: ["operator.approvals"],
  })).error;
  assert.equal(outside.details.code, "SCOPES_OUTSIDE_BASELINE");
  const rotated = await ok(admin, "device.token.rotate", {
    deviceId: dev.id,
    role: "operator",
    scopes: ["operator.admin"],
  });
  assert.deepEqual(rotated.scopes, ["operator.admin"]);
  // Revoking an admin token is as much power as minting one.
  const revoke =
    (await pairer.request("device.token.revoke", { deviceId: dev.id, role: "operator" }))
      .error;
  assert.equal(revoke?.code, "FORBIDDEN");
  await pairer.close();
  await admin.close();
});

Deno.test("GHSA-2pwv: token scopes are clamped to the approved baseline at every connect", async () => {
  await using t = await startTestGateway();
  const dev = await newDevice();
  const first = await signedConnect(t.url, dev, { scopes: ["operator.read"] });
  const token = first.res.payload.auth.deviceToken;
  await first.c.close();
  // Even a token record that claims admin (as a store written by a flawed version might) gives nothing past the baseline.
  const cur = await t.gw.store.devices.entry(dev.id);
  const d = structuredClone(cur.value!);
  d.tokens.operator!.scopes = ["operator.read", "operator.admin"];
  assert.ok(await t.gw.store.devices.put(cur, d));
  const admin = await signedConnect(t.url, dev, { deviceToken: token, scopes: ["operator.admin"] });
  assert.equal(admin.res.error.details.code, "PAIRING_REQUIRED");
  await closedWithin(admin.c, 2000);
  const read = await signedConnect(t.url, dev, {
    deviceToken: token,
    scopes: ["operator.read", "operator.admin"],
  });
  assert.equal(read.res.ok, false, "asking for admin is a scope upgrade, not a silent grant");
  await closedWithin(read.c, 2000);
  const fine = await signedConnect(t.url, dev, { deviceToken: token, scopes: ["operator.read"] });
  assert.deepEqual(fine.res.payload.auth.scopes, ["operator.read"]);
  await fine.c.close();
});

Deno.test("GHSA-rqpp: a device-less client other than the CLI gets no scopes with the shared token", async () => {
  await using t = await startTestGateway();
  const c = await connected(t.url, {
    client: { id: "openclaw-macos", version: "1", platform: "macos", mode: "ui" },
    scopes: ["operator.admin"],
  });
  assert.equal((await c.request("device.pair.list")).error.code, "FORBIDDEN");
  await c.close();
});

Deno.test("revoking a token closes the device's live socket; the token is dead afterwards; remove closes too", async () => {
  await using t = await startTestGateway();
  const admin = await connected(t.url);
  const dev = await newDevice();
  const first = await signedConnect(t.url, dev, { scopes: ["operator.read"] });
  const token = first.res.payload.auth.deviceToken;
  await first.c.close();
  const live = await signedConnect(t.url, dev, { deviceToken: token, scopes: ["operator.read"] });
  assert.equal(live.res.ok, true);
  const r = await ok(admin, "device.token.revoke", { deviceId: dev.id, role: "operator" });
  assert.equal(r.closedConnections, 1);
  const closed = await closedWithin(live.c, 2000);
  assert.equal(closed?.code, 1008);
  assert.equal(closed?.reason, "device token revoked");
  const after = await signedConnect(t.url, dev, { deviceToken: token, scopes: ["operator.read"] });
  assert.equal(after.res.error.details.code, "AUTH_DEVICE_TOKEN_MISMATCH");
  await closedWithin(after.c, 2000);
  // Pair again (loopback + shared secret), hold a socket, remove the device: the socket closes.
  const again = await signedConnect(t.url, dev, { scopes: ["operator.read"] });
  assert.equal(again.res.ok, true);
  const rm = await ok(admin, "device.pair.remove", { deviceId: dev.id });
  assert.equal(rm.removed, true);
  assert.equal((await closedWithin(again.c, 2000))?.reason, "device removed");
  assert.deepEqual((await ok(admin, "device.pair.list")).paired, []);
  await admin.close();
});

Deno.test("devices and their tokens survive a restart", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-pair-" });
  const dev = await newDevice();
  let token: string;
  {
    const t = await startTestGateway({ stateDir });
    const first = await signedConnect(t.url, dev, { scopes: ["operator.read"] });
    token = first.res.payload.auth.deviceToken;
    await first.c.close();
    await t.gw.shutdown("test");
  }
  await using t2 = await startTestGateway({ stateDir });
  const again = await signedConnect(t2.url, dev, { deviceToken: token, scopes: ["operator.read"] });
  assert.equal(again.res.ok, true, JSON.stringify(again.res.error));
  await again.c.close();
});
