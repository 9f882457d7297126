/**
 * `gw service`: run `gw start` under the system's service manager.
 *
 * - `install [--user|--system] [--dry-run [--output FILE]] [--state-dir DIR]
 *   [--port P] [--memory-max SIZE] [--user-name NAME] [--launchd]`: writes a
 *   systemd unit (`~/.config/systemd/user/gw.service` for `--user`, the
 *   default; `/etc/systemd/system/gw.service` for `--system`, as root), then
 *   `systemctl [--user] daemon-reload` and `enable --now gw`. On macOS (or
 *   with `--launchd --dry-run` anywhere) a launchd agent
 *   `~/Library/LaunchAgents/dev.gw.gateway.plist`, loaded with
 *   `launchctl bootstrap gui/<uid>`. `--dry-run` prints the file (or writes it
 *   to `--output`) and touches nothing else.
 * - `uninstall`: stop, disable, remove, daemon-reload (the state dir stays).
 * - `status`: `systemctl status gw` (or `launchctl print`), or "not installed".
 * - `logs [-f]`: `journalctl --user-unit gw` / `journalctl -u gw` (macOS: the
 *   agent's log files).
 *
 * The unit runs the binary that runs now: a compiled gw is
 * `<binary> start --state-dir DIR`; under `deno run` (a dev checkout) it is
 * `deno run <the flags of deno.json's start task> <abs>/main.ts start ...`.
 * It restarts on failure (gw exits 75 after `update.run` to be started again,
 * which `Restart=on-failure` covers) and is sandboxed: read-only system and
 * homes but for the state dir, private /tmp and /dev, no new privileges,
 * internet and Unix sockets only, 512 MB of memory. Nothing the agent's exec
 * tool needs is forbidden (commands still run; they write only in the state
 * dir and the private /tmp). A `--system` unit runs as a dynamic user
 * (`DynamicUser=yes`) with its state in `/var/lib/gw` (`StateDirectory=gw`),
 * or as the account `--user-name` names.
 *
 * No secret ever goes into a unit: the gateway reads its token from the state dir.
 *
 * @module
 */
import { strFlag, UsageError } from "./call.ts";
import { resolveStateDir, tildify } from "./paths.ts";
import { bold, dim, green, red, yellow } from "./style.ts";
import { VERSION } from "../version.ts";

/** The flags as `node:util` parseArgs gave them, by their command-line names. */
export type ServiceFlags = Readonly<Record<string, string | boolean | undefined>>;

/** Options of {@link runService}. */
export interface ServiceOptions {
  /** `--state-dir`. */
  stateDir?: string | undefined;
  /** Every flag given, by its command-line name. */
  flags: ServiceFlags;
}

/** The systemd unit's name. */
export const UNIT_NAME = "gw.service";
/** The launchd agent's label (and its plist's base name). */
export const LAUNCHD_LABEL = "dev.gw.gateway";
/** `MemoryMax=` unless `--memory-max` says otherwise. */
export const DEFAULT_MEMORY_MAX = "512M";
/** A `--system` unit's state dir unless `--state-dir` says otherwise. */
export const SYSTEM_STATE_DIR = "/var/lib/gw";
/** Where a `--system` unit goes. */
export const SYSTEM_UNIT_PATH = `/etc/systemd/system/${UNIT_NAME}`;

/** What the service runs. */
export interface ServiceCommand {
  /** The whole command line: program, then arguments. */
  argv: string[];
  /** True under `deno run` (a checkout), false for a compiled gw. */
  dev: boolean;
  /** Dev installs: the checkout's root. */
  root?: string;
  /** Dev installs: deno's cache dir, which the service must be able to write. */
  denoDir?: string;
}

/** What a systemd unit is made of. */
export interface UnitSpec {
  /** A unit of the user's own service manager, or of the system's. */
  scope: "user" | "system";
  /** What to run (`argv` ends with `start --state-dir DIR ...`). */
  command: ServiceCommand;
  /** The absolute state dir. */
  stateDir: string;
  /** `MemoryMax=`. @default {"512M"} */
  memoryMax?: string;
  /** `--system` only: run as this account instead of a dynamic user. */
  userName?: string;
}

// ------------------------------------------------------------------ the command line

/** True when `path` is, or is inside, a directory `ProtectHome=` hides. */
function inHome(path: string): boolean {
  return ["/home", "/root", "/run/user"].some((h) => path === h || path.startsWith(`${h}/`));
}

function basename(path: string): string {
  return path.replace(/[\\/]+$/, "").split(/[\\/]/).pop() ?? path;
}

/** True when gw runs under `deno run` rather than as a compiled binary. */
export function isDevRuntime(execPath: string = Deno.execPath()): boolean {
  return /^deno(\.exe)?$/i.test(basename(execPath));
}

/**
 * The command a service runs: this binary with `start --state-dir DIR
 * [--port P]`; under `deno run`, deno with the flags of deno.json's `start`
 * task and the absolute path of main.ts.
 *
 * @example
 * ```ts
 * const cmd = await serviceCommand("/var/lib/gw", 18789);
 * console.log(cmd.argv.join(" ")); // "/usr/local/bin/gw start --state-dir /var/lib/gw --port 18789"
 * ```
 */
export async function serviceCommand(
  stateDir: string,
  port?: number,
  execPath: string = Deno.execPath(),
): Promise<ServiceCommand> {
  const tail = [
    "start",
    "--state-dir",
    stateDir,
    ...(port === undefined ? [] : ["--port", `${port}`]),
  ];
  if (!isDevRuntime(execPath)) return { argv: [execPath, ...tail], dev: false };
  const rootUrl = new URL("../../", import.meta.url);
  if (rootUrl.protocol !== "file:") {
    throw new Error(`cannot run gw from ${rootUrl.href} as a service: it is not a local checkout`);
  }
  const root = decodeURIComponent(rootUrl.pathname).replace(/\/$/, "");
  const task = JSON.parse(await Deno.readTextFile(`${root}/deno.json`)).tasks?.start;
  const m = typeof task === "string" ? /^deno run (.+) main\.ts start$/.exec(task) : null;
  if (!m) {
    throw new Error(
      `deno.json's start task must read "deno run <flags> main.ts start", got ${
        JSON.stringify(task)
      }`,
    );
  }
  const cmd: ServiceCommand = {
    argv: [execPath, "run", ...m[1]!.split(/\s+/), `${root}/main.ts`, ...tail],
    dev: true,
    root,
  };
  const denoDir = await denoCacheDir(execPath);
  if (denoDir) cmd.denoDir = denoDir;
  return cmd;
}

async function denoCacheDir(execPath: string): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(execPath, {
      args: ["info", "--json"],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
      env: { NO_COLOR: "1" },
    }).output();
    const dir = JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
    return typeof dir === "string" && dir.startsWith("/") ? dir : undefined;
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------ systemd

/** A word of an `ExecStart=` line: specifiers and `$` escaped, quoted when needed. */
function execArg(s: string): string {
  const esc = s.replace(/%/g, "%%").replace(/\$/g, "$$$$");
  if (/^[A-Za-z0-9_@+=:,./-]+$/.test(s)) return esc;
  return `"${esc.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** A path in a whitespace-separated path list (`ReadWritePaths=`): `%` escaped, quoted when needed. */
function pathArg(s: string): string {
  const esc = s.replace(/%/g, "%%");
  if (/^[A-Za-z0-9_@+=:,./-]+$/.test(s)) return esc;
  return `"${esc.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** One `Environment=` assignment. */
function envArg(name: string, value: string): string {
  return pathArg(`${name}=${value}`);
}

/**
 * The systemd unit for `spec`.
 *
 * @example
 * ```ts
 * const cmd = await serviceCommand("/home/me/.gw");
 * const unit = systemdUnit({ scope: "user", command: cmd, stateDir: "/home/me/.gw" });
 * await Deno.writeTextFile("gw.service", unit);
 * ```
 */
export function systemdUnit(spec: UnitSpec): string {
  const { scope, command, stateDir } = spec;
  const system = scope === "system";
  const stateRel = system && stateDir.startsWith("/var/lib/")
    ? stateDir.slice("/var/lib/".length)
    : undefined;
  const needed = [stateDir, command.argv[0]!, ...(command.root ? [command.root] : [])]
    .concat(command.denoDir ? [command.denoDir] : []);
  const homeNeeded = needed.some(inHome);
  const writable = [...(stateRel ? [] : [stateDir]), ...(command.denoDir ? [command.denoDir] : [])];
  const lines: string[] = [
    `# gw ${VERSION}: the OpenClaw-protocol gateway, written by 'gw service install'.`,
    `# Change it with 'systemctl ${system ? "" : "--user "}edit gw' (an override file)` +
    ` or run 'gw service install' again.`,
    "[Unit]",
    "Description=gw gateway (OpenClaw protocol)",
  ];
  if (system) lines.push("Wants=network-online.target", "After=network-online.target");
  lines.push(
    "",
    "[Service]",
    "Type=exec",
    `ExecStart=${command.argv.map(execArg).join(" ")}`,
    // `systemctl reload gw`: gw re-reads gw.json on SIGHUP.
    "ExecReload=/bin/kill -HUP $MAINPID",
    `Environment=${envArg("NO_COLOR", "1")}`,
  );
  if (system) lines.push(`Environment=${envArg("HOME", stateDir)}`);
  if (command.denoDir) lines.push(`Environment=${envArg("DENO_DIR", command.denoDir)}`);
  lines.push(
    "# gw exits 75 after update.run to be started again: on-failure restarts it.",
    "Restart=on-failure",
    "RestartSec=2",
    "TimeoutStopSec=15",
    "KillSignal=SIGTERM",
    "UMask=0077",
    `MemoryMax=${spec.memoryMax ?? DEFAULT_MEMORY_MAX}`,
  );
  if (system) {
    if (spec.userName) lines.push(`User=${spec.userName}`);
    else lines.push("DynamicUser=yes");
    if (stateRel) lines.push(`StateDirectory=${stateRel}`, "StateDirectoryMode=0700");
  } else {
    lines.push("# A user manager sets up the sandbox below in a user namespace of its own.");
    lines.push("PrivateUsers=yes");
  }
  lines.push(
    "# The sandbox: the agent's commands still run, and write only to the state dir and /tmp.",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    `ProtectHome=${homeNeeded ? "read-only" : "yes"}`,
  );
  if (writable.length) lines.push(`ReadWritePaths=${writable.map(pathArg).join(" ")}`);
  lines.push(
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectControlGroups=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "LockPersonality=yes",
    "SystemCallArchitectures=native",
    "",
    "[Install]",
    `WantedBy=${system ? "multi-user.target" : "default.target"}`,
    "",
  );
  return lines.join("\n");
}

// ------------------------------------------------------------------ launchd

function xml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** What a launchd agent is made of. */
export interface PlistSpec {
  /** What to run. */
  command: ServiceCommand;
  /** The absolute state dir (its `logs/` gets the agent's stdout and stderr). */
  stateDir: string;
  /** `PATH` for gw and the commands it runs (launchd's own is /usr/bin:/bin:/usr/sbin:/sbin). */
  path?: string;
}

/**
 * The launchd agent (`~/Library/LaunchAgents/dev.gw.gateway.plist`): started
 * at load, started again when it exits unsuccessfully (a crash, exit 75
 * after an update), output to the state dir's `logs/`.
 *
 * @example
 * ```ts
 * const plist = launchdPlist({ command: await serviceCommand("/Users/me/.gw"), stateDir: "/Users/me/.gw" });
 * ```
 */
export function launchdPlist(spec: PlistSpec): string {
  const s = (v: string) => `<string>${xml(v)}</string>`;
  const env: [string, string][] = [["NO_COLOR", "1"]];
  if (spec.path) env.push(["PATH", spec.path]);
  if (spec.command.denoDir) env.push(["DENO_DIR", spec.command.denoDir]);
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">`,
    `<!-- gw ${VERSION}: the OpenClaw-protocol gateway, written by 'gw service install'. -->`,
    `<plist version="1.0">`,
    `<dict>`,
    `  <key>Label</key>`,
    `  ${s(LAUNCHD_LABEL)}`,
    `  <key>ProgramArguments</key>`,
    `  <array>`,
    ...spec.command.argv.map((a) => `    ${s(a)}`),
    `  </array>`,
    ...(spec.command.root ? [`  <key>WorkingDirectory</key>`, `  ${s(spec.command.root)}`] : []),
    `  <key>EnvironmentVariables</key>`,
    `  <dict>`,
    ...env.flatMap(([k, v]) => [`    <key>${xml(k)}</key>`, `    ${s(v)}`]),
    `  </dict>`,
    `  <key>RunAtLoad</key>`,
    `  <true/>`,
    `  <key>KeepAlive</key>`,
    `  <dict>`,
    `    <key>SuccessfulExit</key>`,
    `    <false/>`,
    `  </dict>`,
    `  <key>ThrottleInterval</key>`,
    `  <integer>5</integer>`,
    `  <key>ExitTimeOut</key>`,
    `  <integer>15</integer>`,
    `  <key>Umask</key>`,
    `  <integer>63</integer>`,
    `  <key>StandardOutPath</key>`,
    `  ${s(`${spec.stateDir}/logs/launchd.out.log`)}`,
    `  <key>StandardErrorPath</key>`,
    `  ${s(`${spec.stateDir}/logs/launchd.err.log`)}`,
    `</dict>`,
    `</plist>`,
    ``,
  ].join("\n");
}

// ------------------------------------------------------------------ running things

/** An environment variable; unset when not granted (asking would prompt on a terminal). */
function env(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

function homeDir(): string {
  const h = env("HOME");
  if (!h) throw new Error("HOME is not set: cannot tell where the user's unit goes");
  return h;
}

/** Where the `--user` unit goes: `$XDG_CONFIG_HOME/systemd/user/gw.service`. */
export function userUnitPath(): string {
  const base = env("XDG_CONFIG_HOME") ?? `${homeDir()}/.config`;
  return `${base}/systemd/user/${UNIT_NAME}`;
}

/** Where the launchd agent goes. */
export function launchdPlistPath(): string {
  return `${homeDir()}/Library/LaunchAgents/${LAUNCHD_LABEL}.plist`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** Whether systemd runs this machine (what `sd_booted()` checks). */
export function systemdRunning(): Promise<boolean> {
  return isDir("/run/systemd/system");
}

type RunResult = { code: number; stdout: string; stderr: string } | { missing: true };

/** Run `cmd args`, capturing its output; `{missing}` when the program is not installed. */
async function capture(cmd: string, args: string[]): Promise<RunResult> {
  try {
    const o = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
    const d = new TextDecoder();
    return { code: o.code, stdout: d.decode(o.stdout), stderr: d.decode(o.stderr) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { missing: true };
    throw e;
  }
}

/** Run `cmd args` on this terminal; its exit code, or null when the program is not installed. */
async function attached(cmd: string, args: string[]): Promise<number | null> {
  try {
    const child = new Deno.Command(cmd, {
      args,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const stop = () => {
      try {
        child.kill("SIGINT");
      } catch { /* gone */ }
    };
    const signals: Deno.Signal[] = Deno.build.os === "windows" ? [] : ["SIGINT", "SIGTERM"];
    for (const s of signals) Deno.addSignalListener(s, stop);
    try {
      return (await child.status).code;
    } finally {
      for (const s of signals) Deno.removeSignalListener(s, stop);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** This process's user id (`Deno.uid()`, else `id -u`), or undefined. */
async function currentUid(): Promise<number | undefined> {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "uid" }).state === "granted") {
      const uid = Deno.uid();
      if (uid !== null) return uid;
    }
  } catch { /* no sys permission for uid */ }
  const r = await capture("id", ["-u"]).catch(() => ({ missing: true }) as const);
  if ("missing" in r || r.code !== 0) return undefined;
  const n = Number(r.stdout.trim());
  return Number.isInteger(n) ? n : undefined;
}

const ok = (s: string) => console.log(`${green("✓")} ${s}`);
const warn = (s: string) => console.log(`${yellow("!")} ${s}`);
const fail = (s: string) => console.error(`${red("✗")} ${s}`);

function lastLines(text: string, n = 6): string {
  return text.trim().split("\n").slice(-n).map((l) => `    ${l}`).join("\n");
}

// ------------------------------------------------------------------ flags

const SUBCOMMANDS = ["install", "uninstall", "status", "logs"] as const;
type Sub = typeof SUBCOMMANDS[number];

const FLAGS_OF: Record<Sub, string[]> = {
  install: [
    ...["user", "system", "dry-run", "output", "state-dir", "port", "memory-max", "user-name"],
    "launchd",
  ],
  uninstall: ["user", "system", "launchd"],
  status: ["user", "system", "launchd", "state-dir"],
  logs: ["user", "system", "launchd", "state-dir", "follow"],
};

function bad(s: string): boolean {
  // deno-lint-ignore no-control-regex
  return /[\x00-\x1f\x7f]/.test(s);
}

function absolute(path: string): string {
  const p = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return `/${out.join("/")}`;
}

function portFlag(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new UsageError(`--port: expected a port number from 1 to 65535, got '${text}'`);
  }
  return n;
}

function memoryFlag(text: string | undefined): string {
  if (text === undefined) return DEFAULT_MEMORY_MAX;
  if (!/^(\d{1,15}[KMGT]?|\d{1,3}(\.\d{1,2})?%|infinity)$/.test(text)) {
    throw new UsageError(
      `--memory-max: expected a size like 512M, 1G, 50% or infinity, got '${text}'`,
    );
  }
  return text;
}

function userNameFlag(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (!/^[a-z_][a-z0-9_-]{0,31}$/i.test(text)) {
    throw new UsageError(`--user-name: expected a user name like gw, got '${text}'`);
  }
  return text;
}

/** The manager and scope a subcommand works on. */
type Target = { kind: "launchd" } | { kind: "systemd"; scope: "user" | "system"; path: string };

async function targetOf(sub: Sub, f: ServiceFlags): Promise<Target> {
  if (f.user && f.system) throw new UsageError("pass --user or --system, not both");
  const darwin = Deno.build.os === "darwin";
  if (f.launchd || darwin) {
    if (f.system) {
      throw new UsageError("--system: launchd installs are per-user agents only (drop --system)");
    }
    if (!darwin && !(sub === "install" && f["dry-run"])) {
      throw new UsageError(
        "--launchd: launchd is macOS's; elsewhere it only goes with 'install --dry-run'",
      );
    }
    return { kind: "launchd" };
  }
  if (Deno.build.os === "windows") {
    throw new UsageError(
      "gw service: Windows has neither systemd nor launchd; run 'gw start' from the Task Scheduler",
    );
  }
  if (f.system) return { kind: "systemd", scope: "system", path: SYSTEM_UNIT_PATH };
  if (f.user || sub === "install") return { kind: "systemd", scope: "user", path: userUnitPath() };
  // status, logs, uninstall: whichever unit is there (the user's first).
  const user = userUnitPath();
  if (!await exists(user) && await exists(SYSTEM_UNIT_PATH)) {
    return { kind: "systemd", scope: "system", path: SYSTEM_UNIT_PATH };
  }
  return { kind: "systemd", scope: "user", path: user };
}

// ------------------------------------------------------------------ install

interface InstallPlan {
  target: Target;
  stateDir: string;
  command: ServiceCommand;
  text: string;
  userName: string | undefined;
}

async function plan(target: Target, o: ServiceOptions): Promise<InstallPlan> {
  const f = o.flags;
  const port = portFlag(strFlag(f, "port"));
  const memoryMax = memoryFlag(strFlag(f, "memory-max"));
  const userName = userNameFlag(strFlag(f, "user-name"));
  const system = target.kind === "systemd" && target.scope === "system";
  if (userName && !system) throw new UsageError("--user-name goes with --system");
  if (target.kind === "launchd" && strFlag(f, "memory-max") !== undefined) {
    throw new UsageError("--memory-max: launchd has no memory limit; it is for systemd units");
  }
  const given = o.stateDir ?? strFlag(f, "state-dir");
  if (given !== undefined && (given === "" || bad(given))) {
    throw new UsageError("--state-dir: expected a directory path");
  }
  const stateDir = absolute(
    system ? (given ?? SYSTEM_STATE_DIR) : resolveStateDir(given),
  );
  if (stateDir === "/") throw new UsageError("--state-dir: / cannot be gw's state dir");
  if (system && !stateDir.startsWith("/var/lib/") && !userName) {
    throw new UsageError(
      `--state-dir ${stateDir}: a --system unit keeps its state under /var/lib (a dynamic ` +
        `user owns it there); elsewhere pass --user-name NAME, the account that owns ${stateDir}`,
    );
  }
  const command = await serviceCommand(stateDir, port);
  if (command.argv.some(bad)) {
    throw new UsageError("the command line has control characters; it cannot go into a unit");
  }
  const text = target.kind === "launchd"
    ? launchdPlist({ command, stateDir, ...(env("PATH") ? { path: env("PATH")! } : {}) })
    : systemdUnit({
      scope: target.scope,
      command,
      stateDir,
      memoryMax,
      ...(userName ? { userName } : {}),
    });
  return { target, stateDir, command, text, userName };
}

function devNote(p: InstallPlan): string | undefined {
  if (!p.command.dev) return undefined;
  return `note: a dev install: the service runs 'deno run' on ${p.command.root}/main.ts. ` +
    `The compiled binary is the intended way: deno task compile, then run ` +
    `'dist/gw-<target> service install'.` +
    (p.target.kind === "systemd" && p.target.scope === "system"
      ? ` A --system unit runs as another user, who must be able to read the checkout ` +
        `and deno's cache (${p.command.denoDir ?? "DENO_DIR"}).`
      : "");
}

async function install(o: ServiceOptions): Promise<number> {
  const f = o.flags;
  const output = strFlag(f, "output");
  if (output !== undefined && !f["dry-run"]) {
    throw new UsageError("--output goes with --dry-run (install writes the unit where it belongs)");
  }
  if (output !== undefined && (output === "" || bad(output))) {
    throw new UsageError("--output: expected a file path");
  }
  const target = await targetOf("install", f);
  const p = await plan(target, o);
  const note = devNote(p);
  if (f["dry-run"]) {
    if (output === undefined) {
      await writeAll(Deno.stdout, p.text);
    } else {
      const file = absolute(output);
      if (await isDir(file)) throw new UsageError(`--output: ${output} is a directory`);
      await Deno.writeTextFile(file, p.text, { mode: 0o644 });
      console.log(`${green("✓")} wrote ${file} ${dim("(dry run: nothing installed)")}`);
    }
    if (note) console.error(dim(note));
    return 0;
  }
  return target.kind === "launchd"
    ? await installLaunchd(p, note)
    : await installSystemd(p, target, note);
}

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  for (let off = 0; off < bytes.length;) off += await w.write(bytes.subarray(off));
}

async function writeUnitFile(path: string, text: string): Promise<"created" | "updated" | "same"> {
  let before: string | null = null;
  try {
    before = await Deno.readTextFile(path);
  } catch { /* none yet */ }
  if (before === text) return "same";
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, text, { mode: 0o644 });
  await Deno.chmod(tmp, 0o644);
  await Deno.rename(tmp, path);
  return before === null ? "created" : "updated";
}

function systemctl(scope: "user" | "system", ...args: string[]): string[] {
  return scope === "user" ? ["--user", ...args] : args;
}

async function installSystemd(
  p: InstallPlan,
  t: Extract<Target, { kind: "systemd" }>,
  note: string | undefined,
): Promise<number> {
  const sc = (...a: string[]) => `systemctl ${systemctl(t.scope, ...a).join(" ")}`;
  if (t.scope === "system") {
    const uid = await currentUid();
    if (uid !== 0) {
      fail(
        `installing a system unit needs root: run 'sudo gw service install --system', or ` +
          `'gw service install --user' for a unit of your own (--dry-run shows it)`,
      );
      return 1;
    }
  }
  // The state dir must exist before the sandbox can make it writable.
  if (!(t.scope === "system" && p.stateDir.startsWith("/var/lib/"))) {
    if (!await isDir(p.stateDir)) {
      await Deno.mkdir(p.stateDir, { recursive: true, mode: 0o700 });
      ok(`created the state dir ${tildify(p.stateDir)} (mode 0700)`);
      if (p.userName) {
        const r = await capture("chown", [`${p.userName}:`, p.stateDir]);
        if ("missing" in r || r.code !== 0) {
          fail(
            `chown ${p.userName}: ${p.stateDir} failed${
              "missing" in r ? "" : `:\n${lastLines(r.stderr)}`
            }`,
          );
          return 1;
        }
        ok(`gave it to ${p.userName}  ${dim(`chown ${p.userName}: ${p.stateDir}`)}`);
      }
    }
  }
  const how = await writeUnitFile(t.path, p.text);
  ok(`${how === "same" ? "kept (unchanged)" : how === "updated" ? "updated" : "wrote"} ${t.path}`);
  if (note) console.log(dim(note));
  const later = [sc("daemon-reload"), sc("enable", "--now", "gw")];
  if (!await systemdRunning()) {
    warn(
      `systemd is not running here (no /run/systemd/system): the unit is written, not started.\n` +
        `  Where systemd runs, start it with:\n    ${later.join("\n    ")}\n` +
        `  Or run gw in the foreground: gw ${
          p.command.argv.slice(p.command.argv.indexOf("start")).join(" ")
        }`,
    );
    return 0;
  }
  const steps: [string[], string][] = [
    [systemctl(t.scope, "daemon-reload"), "reloaded systemd's units"],
    [systemctl(t.scope, "enable", "--now", "gw"), "enabled gw (starts at boot) and started it"],
  ];
  if (how === "updated") {
    steps.push([systemctl(t.scope, "restart", "gw"), "restarted gw on the new unit"]);
  }
  for (const [args, done] of steps) {
    const r = await capture("systemctl", args);
    if ("missing" in r) {
      warn(
        `systemctl is not installed: the unit is written, not started. Start it with:\n    ${
          later.join("\n    ")
        }`,
      );
      return 0;
    }
    if (r.code !== 0) {
      fail(`systemctl ${args.join(" ")} failed (exit ${r.code}):\n${lastLines(r.stderr)}`);
      console.error(dim(`  see: gw service status; gw service logs`));
      return 1;
    }
    ok(`${done}  ${dim(`systemctl ${args.join(" ")}`)}`);
  }
  console.log(
    `${bold("gw runs as a service.")} State in ${tildify(p.stateDir)}; ` +
      `status: gw service status; logs: gw service logs -f`,
  );
  if (t.scope === "user") {
    console.log(
      dim(
        "  A user unit stops when you log out; to keep it running: loginctl enable-linger $USER",
      ),
    );
  }
  return 0;
}

async function installLaunchd(p: InstallPlan, note: string | undefined): Promise<number> {
  const path = launchdPlistPath();
  await Deno.mkdir(`${p.stateDir}/logs`, { recursive: true, mode: 0o700 });
  const how = await writeUnitFile(path, p.text);
  ok(`${how === "same" ? "kept (unchanged)" : how === "updated" ? "updated" : "wrote"} ${path}`);
  if (note) console.log(dim(note));
  const uid = await currentUid();
  if (uid === undefined) {
    fail(
      "cannot tell this user's id (id -u failed); load it with: launchctl bootstrap gui/$(id -u) " +
        path,
    );
    return 1;
  }
  // bootstrap refuses an agent that is loaded already: unload the old one first.
  const out = await capture("launchctl", ["bootout", `gui/${uid}/${LAUNCHD_LABEL}`]);
  if ("missing" in out) {
    warn(`launchctl is not installed: the agent is written, not loaded`);
    return 0;
  }
  if (out.code === 0) {
    ok(`unloaded the running agent  ${dim(`launchctl bootout gui/${uid}/${LAUNCHD_LABEL}`)}`);
  }
  const r = await capture("launchctl", ["bootstrap", `gui/${uid}`, path]);
  if ("missing" in r || r.code !== 0) {
    fail(
      `launchctl bootstrap gui/${uid} ${path} failed:\n${
        "missing" in r ? "" : lastLines(r.stderr)
      }`,
    );
    return 1;
  }
  ok(`loaded and started it  ${dim(`launchctl bootstrap gui/${uid} ${path}`)}`);
  console.log(
    `${bold("gw runs as a launchd agent.")} Logs: ${
      tildify(p.stateDir)
    }/logs; status: gw service status`,
  );
  return 0;
}

// ------------------------------------------------------------------ uninstall, status, logs

async function uninstall(f: ServiceFlags): Promise<number> {
  const t = await targetOf("uninstall", f);
  if (t.kind === "launchd") {
    const path = launchdPlistPath();
    const uid = await currentUid();
    if (uid !== undefined) {
      const r = await capture("launchctl", ["bootout", `gui/${uid}/${LAUNCHD_LABEL}`]);
      if (!("missing" in r) && r.code === 0) ok(`stopped and unloaded ${LAUNCHD_LABEL}`);
    }
    if (!await exists(path)) {
      console.log(`gw service: not installed (no ${path})`);
      return 0;
    }
    await Deno.remove(path);
    ok(`removed ${path}`);
    return 0;
  }
  if (t.scope === "system" && await currentUid() !== 0) {
    fail("removing the system unit needs root: run 'sudo gw service uninstall --system'");
    return 1;
  }
  if (!await exists(t.path)) {
    console.log(`gw service: not installed (no ${t.path})`);
    return 0;
  }
  const live = await systemdRunning();
  if (live) {
    const r = await capture("systemctl", systemctl(t.scope, "disable", "--now", "gw"));
    if ("missing" in r) warn("systemctl is not installed: nothing to stop");
    else if (r.code !== 0) warn(`systemctl disable --now gw failed:\n${lastLines(r.stderr)}`);
    else {ok(
        `stopped and disabled gw  ${
          dim(`systemctl ${systemctl(t.scope, "disable", "--now", "gw").join(" ")}`)
        }`,
      );}
  }
  await Deno.remove(t.path);
  ok(`removed ${t.path}`);
  if (live) {
    const r = await capture("systemctl", systemctl(t.scope, "daemon-reload"));
    if (!("missing" in r) && r.code === 0) ok("reloaded systemd's units");
  }
  console.log(
    dim("  The state dir (config, token, sessions) is kept; delete it yourself if you mean to."),
  );
  return 0;
}

async function status(f: ServiceFlags, o: ServiceOptions): Promise<number> {
  const t = await targetOf("status", f);
  if (t.kind === "launchd") {
    if (!await exists(launchdPlistPath())) {
      console.log(`gw service: not installed (no ${launchdPlistPath()})`);
      return 1;
    }
    const uid = await currentUid();
    const code = await attached("launchctl", ["print", `gui/${uid ?? 0}/${LAUNCHD_LABEL}`]);
    if (code === null) {
      fail("launchctl is not installed");
      return 1;
    }
    console.log(
      dim(`logs: ${tildify(resolveStateDir(o.stateDir ?? strFlag(f, "state-dir")))}/logs`),
    );
    return code;
  }
  if (!await exists(t.path)) {
    console.log(`gw service: not installed (no ${t.path}); install it with: gw service install`);
    return 1;
  }
  if (!await systemdRunning()) {
    warn(`installed (${t.path}), but systemd is not running here, so nothing runs it`);
    return 1;
  }
  const code = await attached("systemctl", systemctl(t.scope, "status", "--no-pager", "gw"));
  if (code === null) {
    fail(`systemctl is not installed: cannot ask systemd about ${t.path}`);
    return 1;
  }
  return code;
}

async function logs(f: ServiceFlags, o: ServiceOptions): Promise<number> {
  const t = await targetOf("logs", f);
  const follow = f.follow === true;
  if (t.kind === "launchd") {
    const dir = `${resolveStateDir(o.stateDir ?? strFlag(f, "state-dir"))}/logs`;
    const files = [`${dir}/launchd.err.log`, `${dir}/gw.log`];
    const code = await attached("tail", ["-n", "100", ...(follow ? ["-F"] : []), ...files]);
    if (code === null) {
      fail(`tail is not installed; the logs are in ${dir}`);
      return 1;
    }
    return code;
  }
  const args = [
    ...(t.scope === "user" ? ["--user-unit", "gw"] : ["-u", "gw"]),
    "--no-pager",
    ...(follow ? ["-f"] : ["-n", "200"]),
  ];
  const code = await attached("journalctl", args);
  if (code === null) {
    fail(
      `journalctl is not installed, so the journal cannot be read here; gw's own log is ` +
        `${tildify(resolveStateDir(o.stateDir ?? strFlag(f, "state-dir")))}/logs/gw.log`,
    );
    return 1;
  }
  return code;
}

/**
 * Run `gw service <sub> ...`; resolves with the exit code.
 *
 * @throws {UsageError} for a mistake in the command line (exit 2).
 * @example
 * ```ts
 * const code = await runService(["install"], { flags: { "dry-run": true } });
 * ```
 */
export async function runService(args: string[], o: ServiceOptions): Promise<number> {
  const [sub, ...extra] = args;
  if (sub === undefined || !(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new UsageError(
      `usage: gw service install|uninstall|status|logs${sub === undefined ? "" : `, got '${sub}'`}`,
    );
  }
  if (extra.length) {
    throw new UsageError(`service ${sub} takes no arguments, got '${extra.join(" ")}'`);
  }
  const s = sub as Sub;
  const flags = o.flags;
  const stray = Object.keys(flags).find((k) => k !== "help" && !FLAGS_OF[s].includes(k));
  if (stray) throw new UsageError(`service ${s} does not take --${stray}`);
  switch (s) {
    case "install":
      return await install(o);
    case "uninstall":
      return await uninstall(flags);
    case "status":
      return await status(flags, o);
    case "logs":
      return await logs(flags, o);
  }
}
