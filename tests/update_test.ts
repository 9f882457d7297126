/**
 * Self-update: the swap logic (lib/update/install.ts) on a fake "binary" in a
 * temp dir, against a release feed served by a local Deno.serve (plain http
 * on loopback, allowed only through the explicit test option), and
 * `update.run` through a real gateway.
 *
 * The fake binaries are shell scripts that answer `version --json` as gw
 * does, so the swap's test run of the new binary is real too.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type AnyFrame, connected, err, ok, startTestGateway } from "./_helpers.ts";
import { compareVersions, parseFeed } from "../lib/update/feed.ts";
import {
  isDenoRuntime,
  RESTART_EXPECTED_MS,
  runUpdate,
  type UpdateOptions,
} from "../lib/update/install.ts";
import { configSchema } from "../lib/config/schema.ts";
import { VERSION } from "../lib/version.ts";

const TARGET = "x86_64-unknown-linux-gnu";
const NEXT = "9.1.0";

/** A script that answers `version --json` with `version`. */
function fakeBinary(version: string, marker = version): string {
  return `#!/bin/sh\n# gw ${marker}\necho '{"version":"${version}","deno":"2.9.6"}'\n`;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** A release feed on 127.0.0.1: `/feed.json` and the files in `files`; counts requests per path. */
function feedServer(feed: (base: string) => unknown, files: Record<string, string> = {}): {
  base: string;
  hits: Map<string, number>;
  close(): Promise<void>;
} {
  const hits = new Map<string, number>();
  let base = "";
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === "/feed.json" || path === "/stable.json") return Response.json(feed(base));
    if (path === "/moved") return Response.redirect("http://203.0.113.9/gw", 302);
    const body = files[path];
    return body === undefined ? new Response("not found", { status: 404 }) : new Response(body);
  });
  base = `http://127.0.0.1:${server.addr.port}`;
  return { base, hits, close: () => server.shutdown() };
}

/** A temp dir with the running "binary" `gw` in it. */
async function install(version = VERSION): Promise<{ dir: string; exe: string; text: string }> {
  const dir = await Deno.makeTempDir({ prefix: "gw-update-" });
  const exe = `${dir}/gw`;
  const text = fakeBinary(version);
  await Deno.writeTextFile(exe, text, { mode: 0o755 });
  return { dir, exe, text };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Options for runUpdate against `feedUrl`, recording restart calls in `restarts`. */
function options(exe: string, feedUrl: string, restarts: number[]): UpdateOptions {
  return {
    execPath: exe,
    currentVersion: VERSION,
    target: TARGET,
    feedUrl,
    allowHttpLoopback: true,
    restart: (ms) => restarts.push(ms),
  };
}

Deno.test("versions compare by semver precedence", () => {
  const ordered = [
    "0.1.0",
    "0.1.1",
    "0.2.0-alpha",
    "0.2.0-alpha.2",
    "0.2.0-beta",
    "0.2.0",
    "1.0.0",
  ];
  for (let i = 0; i < ordered.length; i++) {
    for (let j = 0; j < ordered.length; j++) {
      const c = compareVersions(ordered[i]!, ordered[j]!);
      assert.equal(Math.sign(c), Math.sign(i - j), `${ordered[i]} vs ${ordered[j]}`);
    }
  }
  assert.equal(compareVersions("v1.2.3", "1.2.3+build.7"), 0);
  assert.throws(() => compareVersions("1.2", "1.2.0"), /not a version/);
  assert.throws(() => parseFeed('{"version":"x","assets":[]}'), /feed\.version/);
  assert.throws(
    () => parseFeed('{"version":"1.0.0","assets":[{"target":"t","url":"u","sha256":"ab"}]}'),
    /feed\.assets\.0\.sha256/,
  );
  assert.throws(() => parseFeed("<html>"), /not JSON/);
});

Deno.test("a newer release with the right checksum is swapped in atomically, .old kept, restart asked", async () => {
  const { dir, exe, text } = await install();
  const next = fakeBinary(NEXT);
  const srv = feedServer(
    () => ({
      version: NEXT,
      assets: [
        { target: "aarch64-apple-darwin", url: "/other", sha256: "0".repeat(64) },
        { target: TARGET, url: "gw-linux", sha256: sha256(next).toUpperCase() },
      ],
    }),
    { "/gw-linux": next },
  );
  try {
    const inoBefore = (await Deno.stat(exe)).ino;
    const restarts: number[] = [];
    const r = await runUpdate(options(exe, `${srv.base}/feed.json`, restarts));
    assert.equal(r.status, "ok", r.message);
    assert.equal(r.before, VERSION);
    assert.equal(r.after, NEXT);
    assert.deepEqual(r.steps.map((s) => [s.name, s.exitCode]), [
      ["fetch feed", 0],
      ["download", 0],
      ["verify checksum", 0],
      ["run new binary", 0],
      ["swap", 0],
    ]);
    assert.equal(await Deno.readTextFile(exe), next);
    assert.equal((await Deno.stat(exe)).mode! & 0o777, 0o755);
    assert.notEqual((await Deno.stat(exe)).ino, inoBefore, "renamed into place, not rewritten");
    assert.equal(await Deno.readTextFile(`${exe}.old`), text);
    assert.equal((await Deno.stat(`${exe}.old`)).ino, inoBefore, ".old is the previous file");
    assert.equal(await exists(`${exe}.new`), false);
    assert.deepEqual(restarts, [RESTART_EXPECTED_MS]);
    assert.equal(r.restartRequested, true);
    assert.deepEqual(r.installed, {
      path: exe,
      previous: `${exe}.old`,
      sha256: sha256(next),
      bytes: new TextEncoder().encode(next).length,
    });
    assert.equal(srv.hits.get("/other"), undefined, "only this platform's asset was fetched");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["gw", "gw.old"]);
  } finally {
    await srv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a download whose checksum differs is refused and nothing is touched", async (t) => {
  const { dir, exe, text } = await install();
  const next = fakeBinary(NEXT);
  const tampered = fakeBinary(NEXT, "tampered");
  const srv = feedServer(
    (base) => ({
      version: NEXT,
      assets: [{ target: TARGET, url: `${base}/gw`, sha256: sha256(next) }],
    }),
    { "/gw": tampered },
  );
  try {
    const ino = (await Deno.stat(exe)).ino;
    const restarts: number[] = [];
    await t.step("sha256 mismatch", async () => {
      const r = await runUpdate(options(exe, `${srv.base}/feed.json`, restarts));
      assert.equal(r.status, "error");
      assert.equal(r.reason, "checksum-mismatch");
      assert.match(r.message, new RegExp(`SHA-256 is ${sha256(tampered)}, the feed says`));
      assert.match(r.message, /nothing replaced/);
      assert.equal(srv.hits.get("/gw"), 1);
    });
    await t.step("the binary is untouched, no .new or .old, no restart", async () => {
      assert.equal(await Deno.readTextFile(exe), text);
      assert.equal((await Deno.stat(exe)).ino, ino);
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["gw"]);
      assert.deepEqual(restarts, []);
    });
  } finally {
    await srv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a new binary that does not report the feed's version is refused", async () => {
  const { dir, exe, text } = await install();
  const liar = fakeBinary("0.0.1");
  const srv = feedServer(
    () => ({ version: NEXT, assets: [{ target: TARGET, url: "/gw", sha256: sha256(liar) }] }),
    { "/gw": liar },
  );
  try {
    const restarts: number[] = [];
    const r = await runUpdate(options(exe, `${srv.base}/feed.json`, restarts));
    assert.equal(r.reason, "verify-failed", r.message);
    assert.match(r.message, /version 0\.0\.1, not 9\.1\.0/);
    assert.equal(await Deno.readTextFile(exe), text);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["gw"]);
    assert.deepEqual(restarts, []);
  } finally {
    await srv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nothing to install: same version, older feed, no asset for this target", async (t) => {
  const { dir, exe, text } = await install();
  let feed: unknown = {};
  const srv = feedServer(() => feed, { "/gw": "x" });
  try {
    const restarts: number[] = [];
    await t.step("same version: up to date, nothing downloaded", async () => {
      feed = { version: VERSION, assets: [{ target: TARGET, url: "/gw", sha256: sha256("x") }] };
      const r = await runUpdate(options(exe, `${srv.base}/feed.json`, restarts));
      assert.equal(r.status, "skipped");
      assert.equal(r.reason, "up-to-date");
      assert.equal(r.message, `gw ${VERSION} is up to date`);
    });
    await t.step("an older feed: not downgrading", async () => {
      feed = { version: "0.0.1", assets: [{ target: TARGET, url: "/gw", sha256: sha256("x") }] };
      const r = await runUpdate(options(exe, `${srv.base}/feed.json`, restarts));
      assert.equal(r.reason, "up-to-date");
      assert.match(r.message, /not downgrading/);
    });
    await t.step("no binary for this target", async () => {
      feed = {
        version: NEXT,
        assets: [{ target: "riscv64gc-unknown-linux-gnu", url: "/gw", sha256: sha256("x") }],
      };
      const r = await runUpdate(options(exe, `${srv.base}/feed.json`, restarts));
      assert.equal(r.status, "error");
      assert.equal(r.reason, "no-asset");
      assert.match(r.message, /no binary for x86_64-unknown-linux-gnu \(it has: riscv64gc/);
    });
    await t.step("a feed that is not a feed", async () => {
      feed = { version: NEXT };
      const r = await runUpdate(options(exe, `${srv.base}/feed.json`, restarts));
      assert.equal(r.reason, "feed-failed");
      assert.match(r.message, /feed\.assets/);
    });
    assert.equal(srv.hits.get("/gw"), undefined);
    assert.equal(await Deno.readTextFile(exe), text);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["gw"]);
    assert.deepEqual(restarts, []);
  } finally {
    await srv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("update URLs: https only; plain http only to loopback and only when the test option allows", async (t) => {
  const { dir, exe, text } = await install();
  const srv = feedServer(() => ({
    version: NEXT,
    assets: [{ target: TARGET, url: "/moved", sha256: sha256("x") }],
  }));
  try {
    const restarts: number[] = [];
    await t.step("http to loopback without the option", async () => {
      const r = await runUpdate({
        ...options(exe, `${srv.base}/feed.json`, restarts),
        allowHttpLoopback: false,
      });
      assert.equal(r.reason, "bad-url");
      assert.match(r.message, /refusing to fetch an update over http: .*\(https only\)/);
    });
    await t.step("http to another host, even with the option", async () => {
      const r = await runUpdate(options(exe, "http://203.0.113.9/feed.json", restarts));
      assert.equal(r.reason, "bad-url");
    });
    await t.step("a redirect to plain http is not followed", async () => {
      const r = await runUpdate(options(exe, `${srv.base}/feed.json`, restarts));
      assert.equal(r.reason, "download-failed");
      assert.match(r.message, /refusing to fetch an update over http: http:\/\/203\.0\.113\.9/);
    });
    await t.step("the channel fills {channel} in the feed URL", async () => {
      const r = await runUpdate({
        ...options(exe, `${srv.base}/{channel}.json`, restarts),
        currentVersion: NEXT,
      });
      assert.equal(r.reason, "up-to-date");
      assert.equal(srv.hits.get("/stable.json"), 1);
    });
    assert.equal(await Deno.readTextFile(exe), text);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["gw"]);
    assert.deepEqual(restarts, []);
  } finally {
    await srv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("from deno run (the binary is deno itself) the update is refused", async () => {
  assert.equal(isDenoRuntime(Deno.execPath()), true, "deno test runs under deno");
  assert.equal(isDenoRuntime("/usr/local/bin/gw"), false);
  assert.equal(isDenoRuntime("C:\\tools\\deno.exe"), true);
  const srv = feedServer(() => ({ version: NEXT, assets: [] }));
  try {
    const restarts: number[] = [];
    const r = await runUpdate(options(Deno.execPath(), `${srv.base}/feed.json`, restarts));
    assert.equal(r.status, "error");
    assert.equal(r.reason, "not-compiled");
    assert.match(r.message, /works only in a compiled gw binary/);
    assert.equal(srv.hits.size, 0, "not even the feed was read");
    assert.deepEqual(restarts, []);
  } finally {
    await srv.close();
  }
});

Deno.test("update config: off by default, https feed only, enabled needs a feed", () => {
  const d = configSchema.parse({});
  assert.deepEqual(d.update, { enabled: false });
  const bad = [
    [{ update: { enabled: true } }, /update\.enabled needs update\.feedUrl/],
    [{ update: { feedUrl: "http://updates.example/gw.json" } }, /feedUrl/],
    [{ update: { channel: "Not A Channel" } }, /channel/],
  ] as const;
  for (const [cfg, why] of bad) {
    const r = configSchema.safeParse(cfg);
    assert.equal(r.success, false, JSON.stringify(cfg));
    const text = r.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    assert.match(text, why);
  }
  assert.ok(
    configSchema.safeParse({
      update: { enabled: true, feedUrl: "https://updates.example/{channel}.json", channel: "beta" },
    }).success,
  );
});

Deno.test("update.run through the gateway: disabled, then refused under deno run", async (t) => {
  await t.step("disabled by default: a clear refusal", async () => {
    await using gw = await startTestGateway();
    const c = await connected(gw.url, { scopes: ["operator.admin"] });
    const hello = c.frames.find((f) => f.id === "connect").payload;
    assert.ok(hello.features.methods.includes("update.run"));
    const r = await ok(c, "update.run", {});
    assert.equal(r.ok, false);
    assert.equal(r.code, "disabled");
    assert.match(r.message, /update\.run is off: set update\.enabled to true and update\.feedUrl/);
    assert.equal(r.result.status, "skipped");
    assert.deepEqual(r.result.before, { version: VERSION });
    assert.equal(r.restart, null);
    const e = await err(c, "update.run", {
      target: { kind: "git", upstreamRef: "main", upstreamSha: "a".repeat(40) },
    });
    assert.equal(e.code, "INVALID_REQUEST");
    assert.match(e.message, /params\.target: gw updates its binary/);
    const writer = await connected(gw.url, { scopes: ["operator.write"] });
    assert.equal((await err(writer, "update.run", {})).code, "FORBIDDEN");
    await writer.close();
    await c.close();
  });
  await t.step("enabled, but this gw runs from deno run: refused before any fetch", async () => {
    await using gw = await startTestGateway({
      config: { update: { enabled: true, feedUrl: "https://updates.invalid/{channel}.json" } },
    });
    const c = await connected(gw.url, { scopes: ["operator.admin"] });
    const r = await ok(c, "update.run", { note: "try" });
    assert.equal(r.ok, false);
    assert.equal(r.code, "not-compiled");
    assert.match(r.message, /works only in a compiled gw binary; this gw runs from deno run/);
    assert.equal(gw.gw.restartRequested, false);
    await c.close();
  });
});

Deno.test("a successful update restarts the gateway: shutdown with restartExpectedMs, then 1012", async () => {
  await using gw = await startTestGateway();
  const c = await connected(gw.url, { scopes: ["operator.read"] });
  const { dir, exe } = await install();
  const next = fakeBinary(NEXT);
  const srv = feedServer(
    () => ({ version: NEXT, assets: [{ target: TARGET, url: "/gw", sha256: sha256(next) }] }),
    { "/gw": next },
  );
  try {
    const shutdown = c.nextEvent("shutdown");
    const r = await runUpdate({
      ...options(exe, `${srv.base}/feed.json`, []),
      restart: (ms) => gw.gw.requestRestart("update.run", ms),
    });
    assert.equal(r.status, "ok", r.message);
    const ev: AnyFrame = await shutdown;
    assert.deepEqual(ev.payload, { reason: "update.run", restartExpectedMs: RESTART_EXPECTED_MS });
    assert.equal((await c.closed).code, 1012);
    assert.equal(gw.gw.restartRequested, true);
    await gw.gw.finished;
  } finally {
    await srv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
