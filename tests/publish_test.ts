/**
 * The client library as JSR will see it: `@gw/gw` (`mod.ts`) and
 * `@gw/gw/protocol` (`protocol.ts`).
 *
 * What runs here, all offline (JSR is unreachable from the test machines):
 * - `deno publish --dry-run --allow-dirty`: the type check, the slow-types
 *   check and the file list. It needs no network (checked with strace and in
 *   a network namespace without interfaces: no connect() at all).
 * - `deno doc --lint` on both entry points, an `@example` on every export, and
 *   every example type-checked (the ones marked `ignore` need a live gateway,
 *   so `deno test --doc` skips them; they are checked here) and the others run.
 * - The graph of both entry points: local files only, no `npm:`/`node:`/`jsr:`
 *   imports, exactly the files `publish.include` lists; the bundled library
 *   has no bare `Deno` reference and loads and builds a client with the `Deno`
 *   global deleted.
 *
 * What only JSR can tell: whether the `@gw` scope exists and the publisher is
 * a member, whether this version is already taken, and JSR's own server-side
 * analysis and score (runtime compatibility is declared on jsr.io).
 */
import assert from "node:assert/strict";
import { VERSION } from "../lib/version.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const ENTRY_POINTS = { ".": "./mod.ts", "./protocol": "./protocol.ts" };
/** Files JSR gets besides the code: deno.json is always published. */
const NON_CODE = ["LICENSE", "README.md", "deno.json"];

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno args` in the repo root without colours; killed after 120 s. */
async function deno(...args: string[]): Promise<Out> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function show(r: Out): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** Lines of output that are neither progress (`Check x`) nor the known config warning. */
function noise(text: string): string[] {
  return text.split("\n").filter((l) =>
    l.trim() !== "" && !/^(Check|Checked|Download) /.test(l) &&
    !l.includes("Permissions in the config file is an experimental feature")
  );
}

function denoJson(): {
  name: string;
  version: string;
  exports: Record<string, string>;
  publish: { include: string[] };
} {
  return JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
}

/** Repo-relative paths of the local modules in the graph of `entry` (and any remote ones, unchanged). */
async function graph(entry: string): Promise<{ files: string[]; foreign: string[] }> {
  const r = await deno("info", "--json", entry);
  assert.equal(r.code, 0, show(r));
  const info = JSON.parse(r.stdout) as {
    modules: { specifier: string; kind?: string; dependencies?: { specifier: string }[] }[];
  };
  const files: string[] = [];
  const foreign: string[] = [];
  const root = `file://${ROOT}`;
  for (const m of info.modules) {
    if (m.specifier.startsWith(root) && m.kind === "esm") {
      files.push(m.specifier.slice(root.length));
    } else foreign.push(`${m.specifier} (${m.kind})`);
    for (const d of m.dependencies ?? []) {
      if (/^(npm|node|jsr|https?):/.test(d.specifier)) {
        foreign.push(`${d.specifier} (imported by ${m.specifier})`);
      }
    }
  }
  return { files: files.sort(), foreign };
}

/** Every exported symbol's doc node of `deno doc --json` for the entry points. */
// deno-lint-ignore no-explicit-any
type DocNode = any;
async function docNodes(): Promise<Record<string, DocNode>> {
  const r = await deno("doc", "--json", ...Object.values(ENTRY_POINTS));
  assert.equal(r.code, 0, show(r));
  return JSON.parse(r.stdout).nodes;
}

/** The ```ts blocks of every `@example` anywhere under `node` (symbols, members, module docs). */
function examples(node: unknown, where: string, out: { where: string; code: string }[]): void {
  if (Array.isArray(node)) {
    node.forEach((n, i) => examples(n, `${where}[${i}]`, out));
    return;
  }
  if (!node || typeof node !== "object") return;
  const o = node as Record<string, unknown>;
  if (o.kind === "example" && typeof o.doc === "string") {
    for (const m of o.doc.matchAll(/```(?:ts|typescript)\b[^\n]*\n([\s\S]*?)```/g)) {
      out.push({ where, code: m[1]! });
    }
  }
  const name = typeof o.name === "string" ? `${where}/${o.name}` : where;
  for (const v of Object.values(o)) examples(v, name, out);
}

Deno.test("deno.json: a valid JSR name, lib/version.ts's version, both entry points", () => {
  const cfg = denoJson();
  // jsr.io/docs/scopes and /packages: scope 2–20, package 2–58 characters;
  // lowercase letters, digits and hyphens, no leading, trailing or double hyphen.
  const m = /^@([a-z0-9-]{2,20})\/([a-z0-9-]{2,58})$/.exec(cfg.name);
  assert.ok(m, `deno.json name ${cfg.name} is not @scope/name`);
  for (const part of [m[1]!, m[2]!]) {
    assert.ok(!/^-|-$|--/.test(part), `${part}: no leading, trailing or double hyphen`);
  }
  assert.equal(cfg.version, VERSION, "deno.json version and lib/version.ts VERSION differ");
  assert.deepEqual(cfg.exports, ENTRY_POINTS);
});

Deno.test("deno publish --dry-run: no slow types, exactly the graph of both entry points", async () => {
  const r = await deno("publish", "--dry-run", "--allow-dirty");
  assert.equal(r.code, 0, show(r));
  const all = r.stdout + r.stderr;
  assert.match(all, /Checking for slow types in the public API/, show(r));
  assert.match(all, new RegExp(`Simulating publish of @gw/gw@${VERSION.replaceAll(".", "\\.")}`));
  assert.match(all, /Success Dry run complete/, show(r));
  const unexpected = noise(all).filter((l) =>
    !/^Checking for slow types|^Simulating publish|^Success Dry run complete$|^\s+file:\/\//.test(l)
  );
  assert.deepEqual(unexpected, [], `unexpected output (warnings?):\n${show(r)}`);

  const root = `file://${ROOT}`;
  const published = [...all.matchAll(/^\s+(file:\/\/\S+) \(/gm)].map((x) =>
    x[1]!.slice(root.length)
  ).sort();
  const code = new Set<string>();
  for (const entry of Object.values(ENTRY_POINTS)) {
    const g = await graph(entry);
    assert.deepEqual(g.foreign, [], `${entry}'s graph reaches beyond local files`);
    g.files.forEach((f) => code.add(f));
  }
  assert.deepEqual(published, [...code, ...NON_CODE].sort());
  // publish.include lists files, not folders, so nothing new slips in unseen.
  assert.deepEqual(
    [...denoJson().publish.include].sort(),
    [...code, "LICENSE", "README.md"].sort(),
  );
});

Deno.test("deno doc --lint: both entry points are fully documented", async () => {
  const r = await deno("doc", "--lint", ...Object.values(ENTRY_POINTS));
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout + r.stderr, /Checked 2 files/, show(r));
  assert.deepEqual(noise(r.stdout + r.stderr), [], show(r));
});

Deno.test("every export of both entry points, and each entry point, has an @example", async () => {
  const nodes = await docNodes();
  const missing: string[] = [];
  let symbols = 0;
  for (const [file, mod] of Object.entries(nodes)) {
    const tags = (mod.module_doc?.tags ?? []) as { kind: string }[];
    if (!tags.some((t) => t.kind === "example")) missing.push(`${file} (module doc)`);
    for (const s of mod.symbols as DocNode[]) {
      symbols++;
      const has = (s.declarations as DocNode[]).some((d) =>
        (d.jsDoc?.tags ?? []).some((t: { kind: string }) => t.kind === "example")
      );
      if (!has) missing.push(s.name);
    }
  }
  assert.ok(symbols > 60, `expected the whole API, got ${symbols} symbols`);
  assert.deepEqual(missing, [], "exports without an @example");
});

Deno.test("every example type-checks (ignored ones too) and the runnable ones run", async (t) => {
  const found: { where: string; code: string }[] = [];
  examples(await docNodes(), "", found);
  assert.ok(found.length > 60, `expected examples everywhere, found ${found.length}`);
  await t.step("type-check every block as a JSR user's module", async () => {
    const dir = await Deno.makeTempDir({ prefix: "gw-doc-examples-" });
    try {
      const files: string[] = [];
      const index: string[] = [];
      for (const [i, ex] of found.entries()) {
        const file = `${dir}/example_${i}.ts`;
        // Each block is its own module, as a user would paste it.
        await Deno.writeTextFile(file, `${ex.code}\nexport {};\n`);
        files.push(file);
        index.push(`${file}: ${ex.where}`);
      }
      const r = await deno("check", "--config", `${ROOT}deno.json`, ...files);
      assert.equal(r.code, 0, `${show(r)}\n--- examples\n${index.join("\n")}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
  await t.step("run the ones not marked ignore (deno test --doc)", async () => {
    const sources = (await graph("mod.ts")).files.concat("protocol.ts");
    const r = await deno("test", "--doc", "--no-prompt", ...new Set(sources));
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /ok \| \d+ passed \| 0 failed/, show(r));
  });
});

Deno.test("the library runs without Deno: no bare Deno reference, loads with the global deleted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-bundle-" });
  try {
    for (const entry of Object.values(ENTRY_POINTS)) {
      const out = `${dir}/${entry.replace(/\W/g, "_")}.mjs`;
      const b = await deno(
        "bundle",
        "--quiet",
        "--minify",
        "--platform",
        "browser",
        "-o",
        out,
        entry,
      );
      assert.equal(b.code, 0, show(b));
      // Minified: no comments. Drop string literals, then look for `Deno` not
      // reached through a property (`globalThis.Deno` behind a typeof guard is fine).
      const code = (await Deno.readTextFile(out)).replace(
        /"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g,
        '""',
      );
      const bare = [...code.matchAll(/(?<![.\w$])Deno(?![\w$])/g)].map((m) =>
        code.slice(Math.max(0, m.index - 30), m.index + 30)
      );
      assert.deepEqual(bare, [], `${entry} uses the Deno global directly`);
    }
    const script = `
      delete globalThis.Deno;
      if (typeof Deno !== "undefined") throw new Error("Deno is still there");
      const lib = await import(${JSON.stringify(`file://${dir}/__mod_ts.mjs`)});
      const proto = await import(${JSON.stringify(`file://${dir}/__protocol_ts.mjs`)});
      const client = new lib.GatewayClient({ url: "ws://127.0.0.1:9", token: "t" });
      const id = await lib.DeviceIdentity.generate();
      console.log(client.state, proto.PROTOCOL_VERSION, id.deviceId.length);
    `;
    const r = await deno("eval", "--no-config", script);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout.trim(), "closed 4 64", show(r));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
