/**
 * `gw service` end to end: the CLI in child processes run exactly as the
 * binary runs it (`deno run -P=gw main.ts ...`, clean environment, its own
 * HOME). The units it prints must pass `systemd-analyze verify` with no
 * warning at all (unknown directives included); the launchd plist must be a
 * well-formed property list. `install` without `--dry-run` runs only where
 * systemd is not running (it would start a real service otherwise).
 */
import assert from "node:assert/strict";
import { okRun, runGw, show, tempDir } from "./_cli.ts";
import { serviceCommand, systemdUnit } from "../lib/cli/service.ts";

const gw = (home: string, args: string[], env: Record<string, string> = {}) =>
  runGw(home, args, { env, timeoutMs: 30_000 });

const ROOT = new URL("../", import.meta.url).pathname;

function which(name: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      const st = Deno.statSync(`${dir}/${name}`);
      if (st.isFile && st.mode !== null && (st.mode & 0o111)) return `${dir}/${name}`;
    } catch { /* not here */ }
  }
  return undefined;
}

const ANALYZE = which("systemd-analyze");
const NO_ANALYZE = ANALYZE === undefined;
if (NO_ANALYZE) {
  console.error(
    "cli_service_test: systemd-analyze is not installed (Debian: apt-get install systemd); " +
      "the unit verification tests are ignored",
  );
}
const SYSTEMD_RUNS = (() => {
  try {
    return Deno.statSync("/run/systemd/system").isDirectory;
  } catch {
    return false;
  }
})();
if (SYSTEMD_RUNS) {
  console.error(
    "cli_service_test: systemd runs this machine, so 'gw service install' would start a real " +
      "service; the install test is ignored",
  );
}

/**
 * `systemd-analyze [--user] verify <dir>/gw.service`: exit 0 and nothing on
 * stderr (an unknown directive is only a warning there, but a warning fails this).
 */
async function verify(unit: string, scope: "user" | "system"): Promise<void> {
  await using dir = await tempDir("gw-unit-");
  await Deno.writeTextFile(`${dir.path}/gw.service`, unit);
  const runtime = `${dir.path}/runtime`;
  await Deno.mkdir(runtime, { mode: 0o700 });
  const out = await new Deno.Command(ANALYZE!, {
    args: [...(scope === "user" ? ["--user"] : []), "verify", `${dir.path}/gw.service`],
    cwd: dir.path,
    env: { XDG_RUNTIME_DIR: runtime, HOME: dir.path, SYSTEMD_LOG_COLOR: "0" },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const said = `${dec.decode(out.stdout)}${dec.decode(out.stderr)}`.trim();
  assert.equal(
    said,
    "",
    `systemd-analyze verify (${scope}) complained:\n${said}\n--- unit\n${unit}`,
  );
  assert.equal(out.code, 0, `systemd-analyze verify exited ${out.code}\n--- unit\n${unit}`);
}

/** The `Key=value` lines of a unit, in order (comments and sections left out). */
function directives(unit: string): [string, string][] {
  return unit.split("\n").filter((l) => /^[A-Za-z]+=/.test(l)).map((l) => {
    const i = l.indexOf("=");
    return [l.slice(0, i), l.slice(i + 1)];
  });
}

function directive(unit: string, key: string): string[] {
  return directives(unit).filter(([k]) => k === key).map(([, v]) => v);
}

/** The flags of deno.json's start task, as the dev unit must run them. */
function startTaskFlags(): string[] {
  const task = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks.start as string;
  const m = /^deno run (.+) main\.ts start$/.exec(task);
  assert.ok(m, `deno.json's start task: ${task}`);
  return m[1]!.split(/\s+/);
}

const HARDENING: [string, string][] = [
  ["Restart", "on-failure"],
  ["RestartSec", "2"],
  ["TimeoutStopSec", "15"],
  ["KillSignal", "SIGTERM"],
  ["UMask", "0077"],
  ["NoNewPrivileges", "yes"],
  ["ProtectSystem", "strict"],
  ["PrivateTmp", "yes"],
  ["PrivateDevices", "yes"],
  ["ProtectKernelTunables", "yes"],
  ["ProtectKernelModules", "yes"],
  ["ProtectControlGroups", "yes"],
  ["RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"],
  ["RestrictNamespaces", "yes"],
  ["RestrictRealtime", "yes"],
  ["LockPersonality", "yes"],
  ["SystemCallArchitectures", "native"],
];

function assertHardened(unit: string): void {
  for (const [k, v] of HARDENING) {
    assert.deepEqual(directive(unit, k), [v], `${k}=${v} expected once in:\n${unit}`);
  }
  assert.ok(directive(unit, "Environment").includes("NO_COLOR=1"), unit);
  assert.ok(/^Type=(simple|exec)$/m.test(unit), unit);
  // Nothing that would stop the agent's exec tool (or V8's JIT) from working.
  for (const k of ["NoExecPaths", "MemoryDenyWriteExecute", "SystemCallFilter", "ExecPaths"]) {
    assert.deepEqual(directive(unit, k), [], `${k} must not be set`);
  }
}

// ------------------------------------------------------------------ a small plist reader

type PlistValue = string | number | boolean | PlistValue[] | { [k: string]: PlistValue };

/** Parse an XML property list (the subset launchd agents use); throws on malformed XML. */
function parsePlist(text: string): PlistValue {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`plist: ${why} at offset ${i}: ${JSON.stringify(text.slice(i, i + 40))}`);
  };
  const skip = () => {
    for (;;) {
      while (/\s/.test(text[i] ?? "")) i++;
      if (text.startsWith("<?", i)) i = text.indexOf("?>", i) + 2 || fail("open <?");
      else if (text.startsWith("<!--", i)) i = text.indexOf("-->", i) + 3 || fail("open comment");
      else if (text.startsWith("<!DOCTYPE", i)) i = text.indexOf(">", i) + 1 || fail("doctype");
      else return;
    }
  };
  const decode = (s: string) => {
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(s) || /[<>]/.test(s)) fail(`bad text ${s}`);
    return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'").replace(/&amp;/g, "&");
  };
  const tag = (): { name: string; close: boolean; empty: boolean } => {
    skip();
    const m = /^<(\/?)([A-Za-z]+)(\s+[^<>]*?)?(\/?)>/.exec(text.slice(i));
    if (!m) return fail("expected a tag");
    i += m[0].length;
    return { name: m[2]!, close: m[1] === "/", empty: m[4] === "/" };
  };
  const textUntil = (name: string) => {
    const end = text.indexOf(`</${name}>`, i);
    if (end < 0) fail(`no </${name}>`);
    const s = decode(text.slice(i, end));
    i = end + name.length + 3;
    return s;
  };
  const value = (t = tag()): PlistValue => {
    if (t.close) fail(`unexpected </${t.name}>`);
    switch (t.name) {
      case "true":
      case "false":
        if (!t.empty) fail(`<${t.name}> must be empty`);
        return t.name === "true";
      case "string":
        return t.empty ? "" : textUntil("string");
      case "integer": {
        const s = textUntil("integer");
        if (!/^-?\d+$/.test(s)) fail(`bad integer ${s}`);
        return Number(s);
      }
      case "array": {
        const out: PlistValue[] = [];
        if (t.empty) return out;
        for (let n = tag(); !(n.close && n.name === "array"); n = tag()) out.push(value(n));
        return out;
      }
      case "dict": {
        const out: Record<string, PlistValue> = {};
        if (t.empty) return out;
        for (let n = tag(); !(n.close && n.name === "dict"); n = tag()) {
          if (n.name !== "key" || n.close) fail(`expected <key>, got <${n.name}>`);
          const k = textUntil("key");
          if (k in out) fail(`duplicate key ${k}`);
          out[k] = value();
        }
        return out;
      }
      default:
        return fail(`unknown element <${t.name}>`);
    }
  };
  const root = tag();
  if (root.name !== "plist" || root.close) fail("expected <plist>");
  const v = value();
  const end = tag();
  if (end.name !== "plist" || !end.close) fail("expected </plist>");
  skip();
  if (i !== text.length) fail("text after </plist>");
  return v;
}

// ------------------------------------------------------------------ tests

Deno.test({
  name: "gw service install --dry-run: a user unit that systemd-analyze verifies clean",
  ignore: NO_ANALYZE,
  async fn() {
    await using home = await tempDir("gw-svc-home-");
    const r = okRun(
      await gw(home.path, ["service", "install", "--dry-run"], {
        GW_TOKEN: "s3cret-token-0123456789",
      }),
      "install --dry-run",
    );
    const unit = r.stdout;
    await verify(unit, "user");
    assertHardened(unit);
    const stateDir = `${home.path}/.gw`;
    const [exec] = directive(unit, "ExecStart");
    assert.equal(
      exec,
      [
        Deno.execPath(),
        "run",
        ...startTaskFlags(),
        `${ROOT}main.ts`,
        "start",
        "--state-dir",
        stateDir,
      ]
        .join(" "),
      unit,
    );
    assert.deepEqual(directive(unit, "MemoryMax"), ["512M"]);
    assert.deepEqual(directive(unit, "PrivateUsers"), ["yes"]);
    assert.deepEqual(directive(unit, "WantedBy"), ["default.target"]);
    assert.ok(directive(unit, "ReadWritePaths")[0]!.split(" ").includes(stateDir), unit);
    assert.deepEqual(directive(unit, "DynamicUser"), []);
    assert.ok(!unit.includes("s3cret-token"), "no secret in the unit");
    assert.match(r.stderr, /dev install.*compiled binary is the intended way/s, show(r));
  },
});

Deno.test({
  name: "gw service install --dry-run --system: a dynamic user with its state in /var/lib/gw",
  ignore: NO_ANALYZE,
  async fn() {
    await using home = await tempDir("gw-svc-home-");
    const r = okRun(
      await gw(home.path, ["service", "install", "--dry-run", "--system", "--memory-max", "1G"]),
      "install --dry-run --system",
    );
    const unit = r.stdout;
    await verify(unit, "system");
    assertHardened(unit);
    assert.deepEqual(directive(unit, "DynamicUser"), ["yes"]);
    assert.deepEqual(directive(unit, "StateDirectory"), ["gw"]);
    assert.deepEqual(directive(unit, "StateDirectoryMode"), ["0700"]);
    assert.deepEqual(directive(unit, "MemoryMax"), ["1G"]);
    assert.deepEqual(directive(unit, "WantedBy"), ["multi-user.target"]);
    assert.deepEqual(directive(unit, "After"), ["network-online.target"]);
    assert.match(directive(unit, "ExecStart")[0]!, / start --state-dir \/var\/lib\/gw$/);
    assert.ok(directive(unit, "Environment").includes("HOME=/var/lib/gw"), unit);

    // Its own account and a state dir elsewhere (with a space and a % in its name).
    const r2 = okRun(
      await gw(home.path, [
        ...["service", "install", "--dry-run", "--system", "--user-name", "gwsvc"],
        ...["--state-dir", "/srv/gw 100%", "--port", "18999"],
      ]),
      "install --dry-run --system --user-name",
    );
    await verify(r2.stdout, "system");
    assert.deepEqual(directive(r2.stdout, "User"), ["gwsvc"]);
    assert.deepEqual(directive(r2.stdout, "DynamicUser"), []);
    assert.deepEqual(directive(r2.stdout, "StateDirectory"), []);
    assert.ok(directive(r2.stdout, "ReadWritePaths")[0]!.startsWith('"/srv/gw 100%%"'), r2.stdout);
    assert.match(
      directive(r2.stdout, "ExecStart")[0]!,
      / start --state-dir "\/srv\/gw 100%%" --port 18999$/,
    );
  },
});

Deno.test({
  name: "a compiled gw's unit runs the binary itself, with ProtectHome=yes outside the homes",
  ignore: NO_ANALYZE,
  async fn() {
    // Any real executable not named deno stands for the compiled binary.
    const binary = which("true")!;
    const cmd = await serviceCommand("/var/lib/gw", undefined, binary);
    assert.deepEqual(cmd, { argv: [binary, "start", "--state-dir", "/var/lib/gw"], dev: false });
    const unit = systemdUnit({ scope: "system", command: cmd, stateDir: "/var/lib/gw" });
    await verify(unit, "system");
    assertHardened(unit);
    assert.deepEqual(directive(unit, "ProtectHome"), ["yes"]);
    assert.deepEqual(directive(unit, "ReadWritePaths"), []);
    // verify() does catch what systemd only warns about.
    await assert.rejects(
      verify(unit.replace("UMask=0077\n", "UMask=0077\nProtectEverything=yes\n"), "system"),
      /Unknown key 'ProtectEverything'/,
    );

    const home = "/home/someone/.gw";
    const user = systemdUnit({
      scope: "user",
      command: await serviceCommand(home, 18790, binary),
      stateDir: home,
      memoryMax: "256M",
    });
    await verify(user, "user");
    assert.deepEqual(directive(user, "ProtectHome"), ["read-only"]);
    assert.deepEqual(directive(user, "ReadWritePaths"), [home]);
    assert.deepEqual(directive(user, "MemoryMax"), ["256M"]);
    assert.equal(
      directive(user, "ExecStart")[0],
      `${binary} start --state-dir ${home} --port 18790`,
    );
  },
});

Deno.test("gw service install --dry-run --launchd: a well-formed launchd plist", async () => {
  await using home = await tempDir("gw-svc-home-");
  const r = okRun(
    await gw(home.path, [
      "service",
      "install",
      "--dry-run",
      "--launchd",
      "--state-dir",
      "~/gw <&>",
    ]),
    "install --dry-run --launchd",
  );
  const stateDir = `${home.path}/gw <&>`;
  const plist = parsePlist(r.stdout) as Record<string, PlistValue>;
  assert.equal(plist.Label, "dev.gw.gateway");
  assert.deepEqual(plist.ProgramArguments, [
    Deno.execPath(),
    "run",
    ...startTaskFlags(),
    `${ROOT}main.ts`,
    "start",
    "--state-dir",
    stateDir,
  ]);
  assert.equal(plist.RunAtLoad, true);
  assert.deepEqual(plist.KeepAlive, { SuccessfulExit: false });
  assert.equal(plist.StandardOutPath, `${stateDir}/logs/launchd.out.log`);
  assert.equal(plist.StandardErrorPath, `${stateDir}/logs/launchd.err.log`);
  assert.equal(plist.Umask, 0o077);
  assert.equal((plist.EnvironmentVariables as Record<string, PlistValue>).NO_COLOR, "1");
  // Where Python is, its plistlib (Apple's format, strictly) must read it too.
  const python = which("python3");
  if (python) {
    const out = await new Deno.Command(python, {
      args: [
        "-c",
        "import plistlib,sys,json; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))",
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = out.stdin.getWriter();
    await w.write(new TextEncoder().encode(r.stdout));
    await w.close();
    const o = await out.output();
    assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
    assert.deepEqual(JSON.parse(new TextDecoder().decode(o.stdout)), plist);
  }
});

Deno.test("gw service install --dry-run --output FILE writes the unit there", async () => {
  await using home = await tempDir("gw-svc-home-");
  const file = `${home.path}/out/gw.service`;
  await Deno.mkdir(`${home.path}/out`);
  const [printed, written] = await Promise.all([
    gw(home.path, ["service", "install", "--dry-run"]),
    gw(home.path, ["service", "install", "--dry-run", "--output", file]),
  ]);
  okRun(printed, "--dry-run");
  okRun(written, "--dry-run --output");
  assert.match(written.stdout, /wrote .*out\/gw\.service \(dry run: nothing installed\)/);
  assert.equal(await Deno.readTextFile(file), printed.stdout);
  // Nothing installed: no unit dir, no state dir.
  await assert.rejects(Deno.stat(`${home.path}/.config/systemd`));
  await assert.rejects(Deno.stat(`${home.path}/.gw`));
});

Deno.test({
  name: "gw service install without systemd running writes the unit and says how to start it",
  ignore: SYSTEMD_RUNS,
  async fn(t) {
    await using home = await tempDir("gw-svc-home-");
    const config = `${home.path}/xdg-config`;
    const unitPath = `${config}/systemd/user/gw.service`;
    const env = { XDG_CONFIG_HOME: config };
    await t.step("install", async () => {
      const r = okRun(
        await gw(home.path, ["service", "install", "--port", "18977"], env),
        "install",
      );
      assert.match(r.stdout, new RegExp(`wrote ${unitPath.replace(/[.]/g, "\\.")}`), show(r));
      assert.match(r.stdout, /systemd is not running here/, show(r));
      assert.match(r.stdout, /systemctl --user daemon-reload\n\s+systemctl --user enable --now gw/);
      assert.match(r.stdout, /created the state dir/, show(r));
      const unit = await Deno.readTextFile(unitPath);
      assert.match(directive(unit, "ExecStart")[0]!, / start --state-dir \S+\/\.gw --port 18977$/);
      const st = await Deno.stat(`${home.path}/.gw`);
      assert.equal(st.mode! & 0o777, 0o700);
      // The same again: nothing changes.
      const again = okRun(
        await gw(home.path, ["service", "install", "--port", "18977"], env),
        "again",
      );
      assert.match(again.stdout, /kept \(unchanged\)/, show(again));
    });
    await t.step("status: installed, but nothing runs it", async () => {
      const r = await gw(home.path, ["service", "status"], env);
      assert.equal(r.code, 1, show(r));
      assert.match(r.stdout, /installed .*but systemd is not running here/, show(r));
    });
    await t.step("uninstall removes it; then it is not installed", async () => {
      const r = okRun(await gw(home.path, ["service", "uninstall"], env), "uninstall");
      assert.match(r.stdout, /removed .*gw\.service/, show(r));
      await assert.rejects(Deno.stat(unitPath));
      await Deno.stat(`${home.path}/.gw`); // the state stays
      const s = await gw(home.path, ["service", "status"], env);
      assert.equal(s.code, 1, show(s));
      assert.match(s.stdout, /not installed/, show(s));
      const u = okRun(await gw(home.path, ["service", "uninstall"], env), "uninstall again");
      assert.match(u.stdout, /not installed/);
    });
  },
});

Deno.test("gw service: usage errors exit 2 and say what is wrong", async () => {
  await using home = await tempDir("gw-svc-home-");
  const cases: [string[], RegExp][] = [
    [["service"], /usage: gw service install\|uninstall\|status\|logs/],
    [["service", "frob"], /got 'frob'/],
    [["service", "install", "extra"], /takes no arguments/],
    [["service", "install", "--user", "--system", "--dry-run"], /--user or --system, not both/],
    [["service", "install", "--output", "x.service"], /--output goes with --dry-run/],
    [["service", "install", "--dry-run", "--port", "http"], /--port: expected a port number/],
    [["service", "install", "--dry-run", "--port", "0"], /--port: expected a port number/],
    [["service", "install", "--dry-run", "--memory-max", "lots"], /--memory-max: expected a size/],
    [["service", "install", "--dry-run", "--user-name", "gw"], /--user-name goes with --system/],
    [
      ["service", "install", "--dry-run", "--system", "--user-name", "a b"],
      /--user-name: expected/,
    ],
    [
      ["service", "install", "--dry-run", "--system", "--state-dir", "/srv/gw"],
      /under \/var\/lib.*--user-name/,
    ],
    [["service", "install", "--launchd"], /--launchd: launchd is macOS's/],
    [["service", "status", "--port", "1"], /service status does not take --port/],
    [["service", "logs", "--dry-run"], /service logs does not take --dry-run/],
    [["start", "--dry-run"], /start does not take --dry-run/],
  ];
  const runs = await Promise.all(cases.map(([args]) => gw(home.path, args)));
  runs.forEach((r, n) => {
    const [args, re] = cases[n]!;
    assert.equal(r.code, 2, `gw ${args.join(" ")}: ${show(r)}`);
    assert.match(r.stderr, re, `gw ${args.join(" ")}: ${show(r)}`);
  });
});
