/**
 * Operations: SIGHUP reloads gw.json in a running `gw start`, and `/readyz`
 * tells a load balancer the truth about the store.
 */
import assert from "node:assert/strict";
import { connected, ok, startTestGateway, TEST_TOKEN, until } from "./_helpers.ts";
import { GwChild } from "./_gw_child.ts";

Deno.test({
  name: "SIGHUP reloads gw.json; an invalid file keeps the running config",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const stateDir = await Deno.makeTempDir({ prefix: "gw-ops-" });
    try {
      await Deno.writeTextFile(
        `${stateDir}/gw.json`,
        JSON.stringify({ gateway: { tickIntervalMs: 30_000 } }),
      );
      await using gw = await GwChild.start(stateDir);
      const c = await connected(gw.url, { auth: { token: TEST_TOKEN } });
      try {
        const before = await ok(c, "config.get", {});
        assert.equal(before.config.gateway.tickIntervalMs, 30_000);

        // Edited on disk behind the gateway's back, then SIGHUP.
        await Deno.writeTextFile(
          `${stateDir}/gw.json`,
          JSON.stringify({ gateway: { tickIntervalMs: 45_000 } }),
        );
        gw.child.kill("SIGHUP");
        await until(() => gw.stderr.includes("SIGHUP: config reloaded"), "the reload line");
        const after = await ok(c, "config.get", {});
        assert.equal(after.config.gateway.tickIntervalMs, 45_000);

        // An invalid file: the running config stays, and the reason is said.
        await Deno.writeTextFile(
          `${stateDir}/gw.json`,
          JSON.stringify({ gateway: { tickIntervalMs: "soon" } }),
        );
        gw.child.kill("SIGHUP");
        await until(() => gw.stderr.includes("SIGHUP: gw.json is not valid"), "the refusal");
        assert.match(gw.stderr, /tickIntervalMs/);
        const still = await ok(c, "health", {});
        assert.equal(still.ok, true);
        assert.equal(gw.exited, undefined, "still running");
      } finally {
        await c.close();
      }
    } finally {
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("/readyz is 200 while the store answers and 503 naming the store when it does not", async () => {
  await using t = await startTestGateway();
  const ready = await fetch(`http://127.0.0.1:${t.port}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual((await ready.json()).failing, []);
  // The store goes away under the running gateway (a disk unmounted, a file removed and locked).
  t.gw.store.close();
  const res = await fetch(`http://127.0.0.1:${t.port}/readyz`);
  assert.equal(res.status, 503);
  const body = await res.json();
  assert.equal(body.ready, false);
  assert.deepEqual(body.failing, ["store"]);
  // Liveness is a different question: the process still answers.
  const live = await fetch(`http://127.0.0.1:${t.port}/healthz`);
  assert.equal(live.status, 200);
  await live.body?.cancel();
});
