/**
 * Voice wake and talk mode over a real gateway: `voicewake.get` / `voicewake.set`
 * (validation, the `voicewake.changed` event for readers only, persistence
 * across a restart) and `talk.mode` (the event, and the mode kept per device,
 * else per client id).
 */
import assert from "node:assert/strict";
import {
  type AnyFrame,
  connected,
  connectParams,
  err,
  ok,
  RawClient,
  startTestGateway,
} from "./_helpers.ts";
import { DeviceIdentity } from "../lib/client/identity.ts";
import { Store } from "../lib/store/mod.ts";

/** No event named `name` arrives within `ms`. */
async function noEvent(c: RawClient, name: string, ms = 300): Promise<void> {
  const got = await c.nextEvent(name, ms).then(() => true, () => false);
  assert.equal(got, false, `no ${name} event expected`);
}

Deno.test("voicewake: defaults, set normalizes, readers hear voicewake.changed, and it persists", async (t) => {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-voice-" });
  try {
    {
      await using gw = await startTestGateway({ stateDir });
      const writer = await connected(gw.url, { scopes: ["operator.write"] });
      const reader = await connected(gw.url, { scopes: ["operator.read"] });
      const outsider = await connected(gw.url, { scopes: ["operator.approvals"] });

      await t.step("OpenClaw's default triggers", async () => {
        assert.deepEqual(await ok(reader, "voicewake.get"), {
          triggers: ["openclaw", "claude", "computer"],
        });
        assert.deepEqual(await ok(reader, "voicewake.get", { extra: 1 }), {
          triggers: ["openclaw", "claude", "computer"],
        });
      });

      await t.step(
        "set trims and drops case-insensitive duplicates; the event goes to readers",
        async () => {
          const changed = reader.nextEvent("voicewake.changed");
          const mine = writer.nextEvent("voicewake.changed");
          const r = await ok(writer, "voicewake.set", {
            triggers: ["  Hey Gw ", "hey gw", "Jarvis", "JARVIS", "Ünïcødé wörd"],
          });
          assert.deepEqual(r, { triggers: ["Hey Gw", "Jarvis", "Ünïcødé wörd"] });
          assert.deepEqual((await changed).payload, r);
          assert.deepEqual((await mine).payload, r);
          await noEvent(outsider, "voicewake.changed");
          assert.deepEqual(await ok(reader, "voicewake.get"), r);
        },
      );

      await t.step("validation names the field and changes nothing", async () => {
        const cases: [unknown, RegExp][] = [
          [{}, /params\.triggers: required/],
          [{ triggers: [] }, /params\.triggers: /],
          [{ triggers: "jarvis" }, /params\.triggers: expected array/],
          [{ triggers: ["ok", 5] }, /params\.triggers\[1\]: expected string/],
          [{ triggers: ["   "] }, /params\.triggers\[0\]: /],
          [{ triggers: ["x".repeat(65)] }, /params\.triggers\[0\]: /],
          [{ triggers: ["bad\u0007bell"] }, /params\.triggers\[0\]: control characters/],
          [{ triggers: ["a\nb"] }, /params\.triggers\[0\]: control characters/],
          [{ triggers: Array.from({ length: 33 }, (_, i) => `w${i}`) }, /params\.triggers: /],
          [{ triggers: ["ok"], extra: true }, /unexpected field 'extra'/],
        ];
        for (const [params, re] of cases) {
          const e = await err(writer, "voicewake.set", params);
          assert.equal(e.code, "INVALID_REQUEST", JSON.stringify(params));
          assert.match(e.message, re, JSON.stringify(params));
        }
        assert.deepEqual((await ok(reader, "voicewake.get")).triggers, [
          "Hey Gw",
          "Jarvis",
          "Ünïcødé wörd",
        ]);
        // 32 triggers of 64 characters are fine.
        const max = Array.from({ length: 32 }, (_, i) => `${i}`.padEnd(64, "x"));
        assert.equal((await ok(writer, "voicewake.set", { triggers: max })).triggers.length, 32);
        await ok(writer, "voicewake.set", { triggers: ["Hey Gw", "Jarvis"] });
        assert.deepEqual((await ok(reader, "voicewake.get")).triggers, ["Hey Gw", "Jarvis"]);
      });

      await t.step("set needs operator.write", async () => {
        const e = await err(reader, "voicewake.set", { triggers: ["nope"] });
        assert.equal(e.code, "FORBIDDEN");
      });
      await writer.close();
      await reader.close();
      await outsider.close();
    }
    await t.step("the triggers survive a restart", async () => {
      await using gw = await startTestGateway({ stateDir });
      const c = await connected(gw.url, { scopes: ["operator.read"] });
      assert.deepEqual((await ok(c, "voicewake.get")).triggers, ["Hey Gw", "Jarvis"]);
      await c.close();
    });
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});

/** A connect with a fresh signed device identity; returns the socket and the device id. */
async function deviceClient(url: string, scopes: string[]): Promise<[RawClient, string]> {
  const id = await DeviceIdentity.generate();
  const c = new RawClient(url);
  const ch = (await c.challenge()).payload;
  const params = connectParams({ scopes }) as AnyFrame;
  params.device = await id.sign({
    challenge: ch,
    clientId: params.client.id,
    clientMode: params.client.mode,
    role: "operator",
    scopes,
    token: params.auth.token,
    platform: params.client.platform,
    deviceFamily: params.client.deviceFamily,
  });
  const res = await c.connect(params);
  assert.equal(res.ok, true, JSON.stringify(res.error));
  return [c, id.deviceId];
}

Deno.test("talk.mode: the event reaches readers, and each device's (else client's) mode is kept", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-talk-" });
  try {
    let deviceId: string;
    {
      await using gw = await startTestGateway({ stateDir });
      const [device, id] = await deviceClient(gw.url, ["operator.write"]);
      deviceId = id;
      // Without a device identity: the mode is kept by client id (cli).
      const plain = await connected(gw.url, { scopes: ["operator.write"] });
      const reader = await connected(gw.url, { scopes: ["operator.read"] });
      const outsider = await connected(gw.url, { scopes: ["operator.pairing"] });

      const event = reader.nextEvent("talk.mode");
      const before = Date.now();
      const r = await ok(device, "talk.mode", { enabled: true, phase: "listening" });
      assert.equal(r.enabled, true);
      assert.equal(r.phase, "listening");
      assert.ok(r.ts >= before && r.ts <= Date.now());
      assert.deepEqual((await event).payload, r);
      await noEvent(outsider, "talk.mode");

      const e2 = reader.nextEvent("talk.mode");
      const r2 = await ok(plain, "talk.mode", { enabled: false });
      assert.deepEqual(r2, { enabled: false, phase: null, ts: r2.ts });
      assert.deepEqual((await e2).payload, r2);

      for (
        const [params, re] of [
          [{}, /params\.enabled: required/],
          [{ enabled: "yes" }, /params\.enabled: expected boolean/],
          [{ enabled: true, phase: 3 }, /params\.phase: expected string/],
          [{ enabled: true, phase: "p".repeat(65) }, /params\.phase: /],
          [{ enabled: true, mode: "x" }, /unexpected field 'mode'/],
        ] as [unknown, RegExp][]
      ) {
        const e = await err(device, "talk.mode", params);
        assert.equal(e.code, "INVALID_REQUEST");
        assert.match(e.message, re);
      }
      assert.equal((await err(reader, "talk.mode", { enabled: true })).code, "FORBIDDEN");
      await Promise.all([device.close(), plain.close(), reader.close(), outsider.close()]);
    }
    // Kept in the state dir's store, by device id, else by client id.
    const store = await Store.open(`${stateDir}/gw.kv`);
    try {
      const byDevice = await store.speech.talkMode({ kind: "device", id: deviceId });
      assert.equal(byDevice?.enabled, true);
      assert.equal(byDevice?.phase, "listening");
      const byClient = await store.speech.talkMode({ kind: "client", id: "cli" });
      assert.equal(byClient?.enabled, false);
      assert.equal(byClient?.phase, null);
      assert.equal(await store.speech.talkMode({ kind: "client", id: "webchat" }), null);
    } finally {
      store.close();
    }
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});
