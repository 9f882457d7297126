/**
 * The version is written in two places (deno.json for JSR, lib/version.ts for
 * the code); they must agree. mod.ts is the package's entry point and must
 * export the client.
 */
import assert from "node:assert/strict";
import { VERSION } from "../lib/version.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test("version: lib/version.ts VERSION equals deno.json's version", async () => {
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  assert.equal(typeof denoJson.version, "string", 'deno.json has no "version"');
  assert.match(denoJson.version, /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/, "not a semver version");
  assert.equal(VERSION, denoJson.version);
});

Deno.test("version: mod.ts exists, is deno.json's export and exports GatewayClient", async () => {
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  // Not skipped when missing: a missing mod.ts is a failure.
  const st = await Deno.stat(new URL("mod.ts", ROOT));
  assert.ok(st.isFile, "mod.ts is not a file");
  const exported = typeof denoJson.exports === "string"
    ? denoJson.exports
    : denoJson.exports?.["."];
  assert.equal(exported, "./mod.ts", "deno.json exports should point at ./mod.ts");
  const mod = await import("../mod.ts");
  assert.equal(typeof mod.GatewayClient, "function", "mod.ts does not export GatewayClient");
  assert.equal(typeof mod.GatewayClient.prototype.connect, "function");
  assert.equal(typeof mod.GatewayClient.prototype.request, "function");
  for (const name of ["GatewayConnectError", "GatewayRequestError", "GatewayTimeoutError"]) {
    assert.equal(typeof (mod as Record<string, unknown>)[name], "function", `mod.ts lacks ${name}`);
  }
});

Deno.test("deno.json: start runs the gw task's flags, defined once", () => {
  const tasks = JSON.parse(Deno.readTextFileSync(new URL("../deno.json", import.meta.url))).tasks;
  assert.equal(tasks.start, `${tasks.gw} start`);
  assert.match(tasks.gw, /^deno run -P=gw .*main\.ts$/);
});
