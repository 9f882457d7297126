/**
 * Skills end to end: SKILL.md parsing, requirement detection, skills.status,
 * installs from a local folder and from a pinned archive served over a real
 * socket (good and bad checksums, traversal, links), the enable switch, the
 * system prompt the model receives, and the read_skill tool.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type AnyFrame, connected, err, ok, type RawClient, startTestGateway } from "./_helpers.ts";
import { type FakeAnthropic, startFakeAnthropic } from "./_fake_anthropic.ts";
import { parseSkillFile } from "../lib/skills/frontmatter.ts";
import { ALLOW_HTTP_LOOPBACK_ENV } from "../lib/skills/install.ts";

const enc = new TextEncoder();

/** A SKILL.md with OpenClaw's metadata block. */
function skillMd(
  name: string,
  description: string,
  requires: { bins?: string[]; env?: string[] } = {},
  body = `# ${name}\n\nDo the ${name} thing step by step.\n`,
): string {
  return [
    "---",
    `name: ${name}`,
    `description: "${description}"`,
    "metadata:",
    "  {",
    '    "openclaw":',
    "      {",
    '        "emoji": "🧪",',
    `        "requires": { "bins": ${JSON.stringify(requires.bins ?? [])}, "env": ${
      JSON.stringify(requires.env ?? [])
    } },`,
    "      },",
    "  }",
    "---",
    "",
    body,
  ].join("\n");
}

/** A local skill folder (SKILL.md plus a reference file) in a fresh temp dir. */
async function skillFolder(
  name: string,
  requires: { bins?: string[]; env?: string[] } = {},
  body?: string,
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: `gw-skill-src-${name}-` });
  await Deno.writeTextFile(`${dir}/SKILL.md`, skillMd(name, `The ${name} skill.`, requires, body));
  await Deno.mkdir(`${dir}/references`);
  await Deno.writeTextFile(`${dir}/references/notes.md`, `Notes of ${name}.\n`);
  return dir;
}

// ------------------------------------------------------------------ a tar writer for tests

interface TarEntry {
  name: string;
  /** "0" file (default), "5" folder, "1" hard link, "2" symlink. */
  type?: string;
  data?: string;
  linkname?: string;
}

/** A gzipped ustar archive of `entries`, names exactly as given (traversal included). */
async function tarGz(entries: TarEntry[]): Promise<Uint8Array> {
  const blocks: Uint8Array[] = [];
  for (const e of entries) {
    const data = enc.encode(e.data ?? "");
    const h = new Uint8Array(512);
    const put = (s: string, off: number, len: number) => h.set(enc.encode(s).subarray(0, len), off);
    put(e.name, 0, 100);
    put("0000644\0", 100, 8);
    put("0000000\0", 108, 8);
    put("0000000\0", 116, 8);
    put(`${data.length.toString(8).padStart(11, "0")}\0`, 124, 12);
    put("00000000000\0", 136, 12);
    put("        ", 148, 8);
    h[156] = (e.type ?? "0").charCodeAt(0);
    put(e.linkname ?? "", 157, 100);
    put("ustar\0", 257, 6);
    put("00", 263, 2);
    const sum = h.reduce((a, b) => a + b, 0);
    put(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8);
    blocks.push(h);
    if (data.length) {
      const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
      padded.set(data);
      blocks.push(padded);
    }
  }
  blocks.push(new Uint8Array(1024));
  const tar = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of blocks) {
    tar.set(b, off);
    off += b.length;
  }
  const gz = new Blob([tar]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(gz).arrayBuffer());
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** A file server on 127.0.0.1 (plain http: allowed for loopback by the test-only env var). */
function fileServer(files: Map<string, Uint8Array>) {
  const hits: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    hits.push(path);
    const body = files.get(path);
    return body
      ? new Response(body as Uint8Array<ArrayBuffer>, {
        headers: { "content-type": "application/gzip" },
      })
      : new Response("not found", { status: 404 });
  });
  return {
    url: (path: string) => `http://127.0.0.1:${server.addr.port}${path}`,
    hits,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

/** Names in the skills folder (staging folders included: none may be left). */
async function skillsDirEntries(stateDir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(`${stateDir}/skills`))).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

function entryOf(status: AnyFrame, key: string): AnyFrame {
  const e = status.skills.find((s: AnyFrame) => s.skillKey === key);
  assert.ok(e, `skill ${key} in ${JSON.stringify(status.skills.map((s: AnyFrame) => s.skillKey))}`);
  return e;
}

// ------------------------------------------------------------------ parsing

Deno.test("SKILL.md front matter: OpenClaw's JSON5 metadata, YAML forms, block scalars", () => {
  const m = parseSkillFile(skillMd("weather", "Forecasts: today, tomorrow.", {
    bins: ["curl"],
    env: ["WEATHER_KEY"],
  }));
  assert.equal(m.name, "weather");
  assert.equal(m.description, "Forecasts: today, tomorrow.");
  assert.equal(m.emoji, "🧪");
  assert.deepEqual(m.requires.bins, ["curl"]);
  assert.deepEqual(m.requires.env, ["WEATHER_KEY"]);
  assert.match(m.body, /^# weather/);

  const yaml = parseSkillFile([
    "---",
    "name: notes",
    "description: >",
    "  Keep notes",
    "  in a folder.",
    "metadata:",
    "  openclaw:",
    "    os: [linux, darwin]",
    "    requires:",
    "      bins:",
    "        - git",
    "        - rg",
    "      env: NOTES_DIR, NOTES_KEY",
    "---",
    "Body.",
  ].join("\n"));
  assert.equal(yaml.description, "Keep notes in a folder.");
  assert.deepEqual(yaml.requires.bins, ["git", "rg"]);
  assert.deepEqual(yaml.requires.env, ["NOTES_DIR", "NOTES_KEY"]);
  assert.deepEqual(yaml.requires.os, ["linux", "darwin"]);
  assert.equal(yaml.body, "Body.");

  const single = parseSkillFile(
    "---\nname: x\nmetadata: {'clawdbot': {requires: {anyBins: ['a', 'b',],},},}\n---\n",
  );
  assert.deepEqual(single.requires.anyBins, ["a", "b"]);
  const none = parseSkillFile("# No front matter\n");
  assert.equal(none.name, undefined);
  assert.deepEqual(none.requires.bins, []);
});

// ------------------------------------------------------------------ status and local installs

Deno.test("skills: requirement detection, status shape, local installs off until enabled", async (t) => {
  Deno.env.set("GW_TEST_SKILL_PRESENT", "yes");
  Deno.env.delete("GW_TEST_SKILL_ABSENT");
  await using gw = await startTestGateway();
  const c = await connected(gw.url);
  const sources: string[] = [];
  try {
    await t.step("an empty state has no skills", async () => {
      const s = await ok(c, "skills.status", {});
      assert.deepEqual(s.skills, []);
      assert.equal(s.agentId, "main");
      assert.equal(s.managedSkillsDir, `${gw.stateDir}/skills`);
      assert.equal(s.workspaceDir, `${gw.stateDir}/workspace`);
      assert.deepEqual(await ok(c, "skills.status", { sessionKey: "agent:main:main" }), s);
      const e = await err(c, "skills.status", { agentId: "nobody" });
      assert.equal(e.details.code, "AGENT_NOT_FOUND");
    });

    await t.step("install from a local folder: copied, recorded, disabled", async () => {
      const src = await skillFolder("has-sh", { bins: ["sh"], env: ["GW_TEST_SKILL_PRESENT"] });
      sources.push(src);
      const r = await ok(c, "skills.install", { path: src });
      assert.equal(r.ok, true);
      assert.equal(r.skillKey, "has-sh");
      assert.equal(r.enabled, false);
      assert.equal(r.targetDir, `${gw.stateDir}/skills/has-sh`);
      assert.equal(r.source.kind, "path");
      assert.equal(r.source.path, await Deno.realPath(src));
      assert.equal(
        await Deno.readTextFile(`${gw.stateDir}/skills/has-sh/references/notes.md`),
        "Notes of has-sh.\n",
      );
      // The source is untouched, and gw.json says nothing yet: installed means off.
      assert.ok(await exists(`${src}/SKILL.md`));
      assert.equal(await exists(`${gw.stateDir}/gw.json`), false);
    });

    await t.step(
      "requirements: a bin on PATH and a set env var; a missing bin and env",
      async () => {
        const src = await skillFolder("needs-missing", {
          bins: ["sh", "gw-no-such-binary-7f3a"],
          env: ["GW_TEST_SKILL_PRESENT", "GW_TEST_SKILL_ABSENT"],
        });
        sources.push(src);
        await ok(c, "skills.install", { path: src });
        const s = await ok(c, "skills.status", {});
        assert.deepEqual(s.skills.map((x: AnyFrame) => x.skillKey), ["has-sh", "needs-missing"]);
        const good = entryOf(s, "has-sh");
        assert.equal(good.name, "has-sh");
        assert.equal(good.description, "The has-sh skill.");
        assert.equal(good.source, "gw-managed");
        assert.equal(good.bundled, false);
        assert.equal(good.filePath, `${gw.stateDir}/skills/has-sh/SKILL.md`);
        assert.equal(good.baseDir, `${gw.stateDir}/skills/has-sh`);
        assert.equal(good.emoji, "🧪");
        assert.equal(good.disabled, true);
        assert.equal(good.enabled, false);
        assert.equal(good.eligible, false, "disabled skills are not eligible");
        assert.deepEqual(good.requirements, {
          bins: ["sh"],
          anyBins: [],
          env: ["GW_TEST_SKILL_PRESENT"],
          config: [],
          os: [],
        });
        assert.deepEqual(good.missing, { bins: [], anyBins: [], env: [], config: [], os: [] });
        const bad = entryOf(s, "needs-missing");
        assert.deepEqual(bad.missing.bins, ["gw-no-such-binary-7f3a"]);
        assert.deepEqual(bad.missing.env, ["GW_TEST_SKILL_ABSENT"]);
        // Names only: no value of any env var appears.
        assert.ok(!JSON.stringify(s).includes('"yes"'));
      },
    );

    await t.step(
      "skills.update enables: written to gw.json as skills.entries.<name>.enabled",
      async () => {
        const r = await ok(c, "skills.update", { skillKey: "has-sh", enabled: true });
        assert.deepEqual(r, { ok: true, skillKey: "has-sh", config: { enabled: true } });
        await ok(c, "skills.update", { skillKey: "needs-missing", enabled: true });
        const cfg = JSON.parse(await Deno.readTextFile(`${gw.stateDir}/gw.json`));
        assert.deepEqual(cfg.skills.entries, {
          "has-sh": { enabled: true },
          "needs-missing": { enabled: true },
        });
        const s = await ok(c, "skills.status", {});
        assert.equal(entryOf(s, "has-sh").eligible, true);
        assert.equal(entryOf(s, "has-sh").modelVisible, true);
        assert.equal(entryOf(s, "needs-missing").enabled, true);
        assert.equal(entryOf(s, "needs-missing").eligible, false, "its requirements are missing");
        // An env var set later makes it count (bins are looked up again after a while).
        Deno.env.set("GW_TEST_SKILL_ABSENT", "now");
        const s2 = await ok(c, "skills.status", {});
        assert.deepEqual(entryOf(s2, "needs-missing").missing.env, []);
        Deno.env.delete("GW_TEST_SKILL_ABSENT");
      },
    );

    await t.step("unknown skills and bad params are refused; nothing is written", async () => {
      const before = await Deno.readTextFile(`${gw.stateDir}/gw.json`);
      const e = await err(c, "skills.update", { skillKey: "nope", enabled: true });
      assert.equal(e.code, "INVALID_REQUEST");
      assert.equal(e.details.code, "SKILL_NOT_FOUND");
      const e2 = await err(c, "skills.install", { path: "relative/dir" });
      assert.match(e2.message, /params\.path: expected an absolute path/);
      const e3 = await err(c, "skills.install", {});
      assert.match(e3.message, /params\.path: give exactly one of path/);
      const e4 = await err(c, "skills.install", { path: "/nonexistent/gw-skill" });
      assert.equal(e4.details.code, "SKILL_SOURCE_NOT_FOUND");
      const e5 = await err(c, "skills.install", { url: "https://example.invalid/x.tar.gz" });
      assert.match(e5.message, /params\.sha256: required with url/);
      assert.equal(await Deno.readTextFile(`${gw.stateDir}/gw.json`), before);
    });

    await t.step(
      "an installed name needs force to be replaced; a replaced skill is off again",
      async () => {
        const src = sources[0]!;
        const e = await err(c, "skills.install", { path: src });
        assert.equal(e.details.code, "SKILL_EXISTS");
        await Deno.writeTextFile(
          `${src}/SKILL.md`,
          skillMd("has-sh", "Version two.", { bins: ["sh"] }),
        );
        const r = await ok(c, "skills.install", { path: src, force: true });
        assert.equal(r.enabled, false);
        const s = await ok(c, "skills.status", {});
        assert.equal(entryOf(s, "has-sh").description, "Version two.");
        assert.equal(entryOf(s, "has-sh").enabled, false, "new content must be enabled again");
        // reinstall: copied again from the recorded folder, and the switch stays as it is.
        await ok(c, "skills.update", { skillKey: "has-sh", enabled: true });
        await Deno.writeTextFile(`${src}/SKILL.md`, skillMd("has-sh", "Version three."));
        const u = await ok(c, "skills.update", { skillKey: "has-sh", reinstall: true });
        assert.equal(u.reinstalled.skillKey, "has-sh");
        assert.equal(u.config.enabled, true);
        assert.equal(
          entryOf(await ok(c, "skills.status", {}), "has-sh").description,
          "Version three.",
        );
        assert.deepEqual(await skillsDirEntries(gw.stateDir), ["has-sh", "needs-missing"]);
      },
    );

    await t.step("links in a local folder are refused", async () => {
      const src = await skillFolder("linky");
      sources.push(src);
      await Deno.symlink("/etc/passwd", `${src}/passwd`);
      const e = await err(c, "skills.install", { path: src });
      assert.equal(e.details.code, "SKILL_ARCHIVE_REFUSED");
      assert.match(e.message, /links are not allowed/);
      assert.deepEqual(await skillsDirEntries(gw.stateDir), ["has-sh", "needs-missing"]);
    });

    await t.step("skills.bins is for nodes", async () => {
      const e = await err(c, "skills.bins", {});
      assert.equal(e.message, "unauthorized role: operator");
    });
  } finally {
    await c.close();
    for (const s of sources) await Deno.remove(s, { recursive: true });
    Deno.env.delete("GW_TEST_SKILL_PRESENT");
  }
});

// ------------------------------------------------------------------ archives

Deno.test("skills.install from a URL: https only, pinned by sha256, checked before anything is written", async (t) => {
  await using gw = await startTestGateway();
  const files = new Map<string, Uint8Array>();
  await using srv = fileServer(files);
  const c = await connected(gw.url);
  const good = await tarGz([
    { name: "weather/", type: "5" },
    { name: "weather/SKILL.md", data: skillMd("weather", "Forecasts.", { bins: ["sh"] }) },
    { name: "weather/scripts/", type: "5" },
    { name: "weather/scripts/run.sh", data: "#!/bin/sh\necho never run at install\n" },
  ]);
  files.set("/weather.tar.gz", good);
  const entries = () => skillsDirEntries(gw.stateDir);
  try {
    await t.step("http:// is refused unless the test-only loopback switch is on", async () => {
      Deno.env.delete(ALLOW_HTTP_LOOPBACK_ENV);
      const e = await err(c, "skills.install", {
        url: srv.url("/weather.tar.gz"),
        sha256: sha(good),
      });
      assert.equal(e.details.code, "SKILL_SOURCE_INVALID");
      assert.match(e.message, /only https/);
      assert.equal(srv.hits.length, 0, "nothing was fetched");
      Deno.env.set(ALLOW_HTTP_LOOPBACK_ENV, "1");
      const e2 = await err(c, "skills.install", {
        url: "http://example.com/weather.tar.gz",
        sha256: sha(good),
      });
      assert.match(e2.message, /only https/, "the switch covers loopback only");
    });

    await t.step("a wrong sha256 is refused and nothing is written", async () => {
      const e = await err(c, "skills.install", {
        url: srv.url("/weather.tar.gz"),
        sha256: "0".repeat(64),
      });
      assert.equal(e.code, "INVALID_REQUEST");
      assert.equal(e.details.code, "SKILL_CHECKSUM_MISMATCH");
      assert.match(e.message, new RegExp(sha(good)));
      assert.deepEqual(await entries(), []);
    });

    await t.step("the right sha256 installs it, unpacked, disabled, nothing run", async () => {
      const r = await ok(c, "skills.install", {
        url: srv.url("/weather.tar.gz"),
        sha256: sha(good),
      });
      assert.equal(r.skillKey, "weather");
      assert.equal(r.enabled, false);
      assert.deepEqual(r.source.kind, "url");
      assert.equal(r.source.sha256, sha(good));
      assert.deepEqual(await entries(), ["weather"]);
      assert.equal(
        await Deno.readTextFile(`${gw.stateDir}/skills/weather/scripts/run.sh`),
        "#!/bin/sh\necho never run at install\n",
      );
      const s = entryOf(await ok(c, "skills.status", {}), "weather");
      assert.equal(s.installSource.url, srv.url("/weather.tar.gz"));
    });

    const refusedArchives: [string, TarEntry[], RegExp][] = [
      ["a .. entry", [
        { name: "evil/SKILL.md", data: skillMd("evil", "x") },
        { name: "evil/../../escaped.md", data: "out" },
      ], /outside the skill folder/],
      ["an absolute entry", [
        { name: "SKILL.md", data: skillMd("evil", "x") },
        { name: "/tmp/gw-skill-abs-escape.md", data: "out" },
      ], /outside the skill folder/],
      ["a symlink", [
        { name: "SKILL.md", data: skillMd("evil", "x") },
        { name: "passwd", type: "2", linkname: "/etc/passwd" },
      ], /links are not allowed/],
      ["a hard link", [
        { name: "SKILL.md", data: skillMd("evil", "x") },
        { name: "token", type: "1", linkname: "../../token" },
      ], /links are not allowed/],
      ["a device", [
        { name: "SKILL.md", data: skillMd("evil", "x") },
        { name: "null", type: "3" },
      ], /not a file or folder/],
      ["no SKILL.md", [{ name: "README.md", data: "hi" }], /no SKILL\.md/],
    ];
    for (const [what, archive, why] of refusedArchives) {
      await t.step(`an archive with ${what} is refused; nothing is written`, async () => {
        const bytes = await tarGz(archive);
        files.set("/evil.tar.gz", bytes);
        const e = await err(c, "skills.install", {
          url: srv.url("/evil.tar.gz"),
          sha256: sha(bytes),
        });
        assert.equal(e.details.code, "SKILL_ARCHIVE_REFUSED", JSON.stringify(e));
        assert.match(e.message, why);
        assert.deepEqual(await entries(), ["weather"], "no staging folder is left either");
        assert.equal(await exists(`${gw.stateDir}/escaped.md`), false);
        assert.equal(await exists("/tmp/gw-skill-abs-escape.md"), false);
      });
    }

    await t.step("not a gzip, or a 404: refused", async () => {
      const junk = enc.encode("this is not an archive");
      files.set("/junk.tar.gz", junk);
      const e = await err(c, "skills.install", { url: srv.url("/junk.tar.gz"), sha256: sha(junk) });
      assert.equal(e.details.code, "SKILL_ARCHIVE_REFUSED");
      const e2 = await err(c, "skills.install", {
        url: srv.url("/missing.tar.gz"),
        sha256: sha(junk),
      });
      assert.equal(e2.code, "UNAVAILABLE");
      assert.equal(e2.details.code, "SKILL_DOWNLOAD_FAILED");
      assert.deepEqual(await entries(), ["weather"]);
    });

    await t.step("skills.update re-installs from the recorded URL with a new sha256", async () => {
      await ok(c, "skills.update", { skillKey: "weather", enabled: true });
      const v2 = await tarGz([
        { name: "SKILL.md", data: skillMd("weather", "Forecasts, version two.", { bins: ["sh"] }) },
      ]);
      files.set("/weather.tar.gz", v2);
      const stale = await err(c, "skills.update", { skillKey: "weather", sha256: sha(good) });
      assert.equal(stale.details.code, "SKILL_CHECKSUM_MISMATCH", "the old pin no longer matches");
      const still = entryOf(await ok(c, "skills.status", {}), "weather");
      assert.equal(still.description, "Forecasts.", "a refused update leaves the skill as it was");
      const noPin = await err(c, "skills.update", { skillKey: "weather", reinstall: true });
      assert.equal(noPin.details.code, "SKILL_SHA256_REQUIRED");
      const u = await ok(c, "skills.update", { skillKey: "weather", sha256: sha(v2) });
      assert.equal(u.reinstalled.source.sha256, sha(v2));
      assert.equal(u.config.enabled, true, "an update the operator pinned keeps the switch");
      const s = entryOf(await ok(c, "skills.status", {}), "weather");
      assert.equal(s.description, "Forecasts, version two.");
      assert.equal(s.eligible, true);
      assert.equal(await exists(`${gw.stateDir}/skills/weather/scripts`), false, "replaced whole");
      assert.deepEqual(await entries(), ["weather"]);
    });
  } finally {
    Deno.env.delete(ALLOW_HTTP_LOOPBACK_ENV);
    await c.close();
  }
});

// ------------------------------------------------------------------ the agent's side

function agentConfig(fake: FakeAnthropic) {
  return {
    agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
    models: { providers: { anthropic: { apiKey: "k-test", baseUrl: fake.url } } },
  };
}

/** Send `message` on the main session and wait for its final (or error) chat event. */
async function turn(c: RawClient, message: string, id: string): Promise<AnyFrame> {
  await ok(c, "chat.send", { sessionKey: "main", message, idempotencyKey: id });
  const end = await c.next(
    (f) => f.event === "chat" && f.payload.runId === id && f.payload.state !== "delta",
    10_000,
  );
  return end.payload;
}

Deno.test("enabled, eligible skills are listed in the system prompt; read_skill returns the instructions", async (t) => {
  await using fake = await startFakeAnthropic({ apiKey: "k-test" });
  await using gw = await startTestGateway({ config: agentConfig(fake) });
  const c = await connected(gw.url);
  const sources = [
    await skillFolder("alpha", { bins: ["sh"] }, "# alpha\n\nAlways greet in French.\n"),
    await skillFolder("beta", { bins: ["gw-no-such-binary-7f3a"] }),
    await skillFolder("gamma"),
  ];
  try {
    for (const s of sources) await ok(c, "skills.install", { path: s });
    let toolCall: Record<string, unknown> | undefined;
    fake.script((body) => {
      const last = (body.messages as { content: unknown }[]).at(-1)!.content;
      const answered = Array.isArray(last) && last.some((b) => b.type === "tool_result");
      if (toolCall && !answered) {
        return { blocks: [{ type: "tool_use", name: "read_skill", input: toolCall }] };
      }
      return { blocks: [{ type: "text", text: "done" }] };
    });
    const systemOf = (i: number) => String(fake.requests[i]!.body.system ?? "");

    await t.step("installed (off) skills are not offered", async () => {
      assert.equal((await turn(c, "hello", "s1")).state, "final");
      assert.doesNotMatch(systemOf(0), /available_skills/);
      const tools = fake.requests[0]!.body.tools as { name: string }[];
      assert.ok(tools.some((x) => x.name === "read_skill"), "the tool is always there");
    });

    await t.step(
      "enabled ones with their requirements met are listed, with their path",
      async () => {
        await ok(c, "skills.update", { skillKey: "alpha", enabled: true });
        await ok(c, "skills.update", { skillKey: "beta", enabled: true });
        assert.equal((await turn(c, "hello again", "s2")).state, "final");
        const system = systemOf(1);
        assert.match(system, /<available_skills>/);
        assert.match(system, /<name>alpha<\/name>/);
        assert.match(system, /<description>The alpha skill\.<\/description>/);
        assert.ok(system.includes(`<location>${gw.stateDir}/skills/alpha/SKILL.md</location>`));
        assert.doesNotMatch(system, /<name>beta<\/name>/, "beta misses a binary");
        assert.doesNotMatch(system, /<name>gamma<\/name>/, "gamma is not enabled");
        assert.match(system, /read_skill/);
      },
    );

    await t.step("read_skill returns the body (not the front matter) to the model", async () => {
      toolCall = { name: "alpha" };
      const n = fake.requests.length;
      assert.equal((await turn(c, "use the skill", "s3")).state, "final");
      const second = fake.requests[n + 1]!.body.messages as AnyFrame[];
      const result = second.at(-1).content.find((b: AnyFrame) => b.type === "tool_result");
      const text = result.content.map((x: AnyFrame) => x.text).join("");
      assert.match(text, /Always greet in French\./);
      assert.doesNotMatch(text, /metadata/);
      assert.notEqual(result.is_error, true);
    });

    await t.step("read_skill: another file of the skill, but nothing outside it", async () => {
      toolCall = { name: "alpha", file: "references/notes.md" };
      let n = fake.requests.length;
      await turn(c, "notes", "s4");
      let r = (fake.requests[n + 1]!.body.messages as AnyFrame[]).at(-1).content[0];
      assert.equal(r.content.map((x: AnyFrame) => x.text).join(""), "Notes of alpha.\n");
      toolCall = { name: "alpha", file: "../../gw.json" };
      n = fake.requests.length;
      await turn(c, "escape", "s5");
      r = (fake.requests[n + 1]!.body.messages as AnyFrame[]).at(-1).content[0];
      assert.equal(r.is_error, true);
      assert.match(r.content[0].text, /not a path inside the skill/);
    });

    await t.step("read_skill refuses skills that are off or not eligible", async () => {
      for (
        const [name, why] of [["gamma", /not enabled/], ["beta", /not available here/]] as const
      ) {
        toolCall = { name };
        const n = fake.requests.length;
        await turn(c, `read ${name}`, `s-${name}`);
        const r = (fake.requests[n + 1]!.body.messages as AnyFrame[]).at(-1).content[0];
        assert.equal(r.is_error, true);
        assert.match(r.content[0].text, why);
      }
    });
  } finally {
    await c.close();
    for (const s of sources) await Deno.remove(s, { recursive: true });
  }
});
