/**
 * `deno task bench`: gw's performance figures, measured the way users run it.
 *
 *   deno task bench [--quick] [--no-write] [--no-openclaw]
 *
 * 1. start to first hello-ok: spawn `deno run <gw task flags> main.ts start …` and
 *    poll-connect every ~2 ms until a client completes the handshake
 *    (one unmeasured warm-up run, then 5 runs, fresh state dir each).
 * 2. idle RSS 3 s after start, and RSS per idle authenticated connection
 *    (1,000 connections held by a separate client process).
 * 3. `health` req/s and latency: 1 conn × 64 in flight, 50 conns × 8 in flight.
 * 4. handshakes/s: sequential, and 20 concurrent workers.
 * 5. a second opinion from /work/shared/tools/gwbench.mjs (Node), when Node is there.
 * 6. the real OpenClaw gateway, when its install is there (tests/_openclaw.ts;
 *    `.ci/run` puts it in ~/.cache/gw-compat), after every gw process is
 *    stopped: spawn → first hello-ok (one run), idle RSS 30 s after hello (main
 *    process and its whole tree), RSS per idle connection (1,000 held, as for gw;
 *    WIRE.md §10 held 200), and the same load runs as gw's with the same client.
 *    Skip it with --no-openclaw.
 *
 * The ceiling, in the same run: tests/_bare_responder.ts, a bare Deno WebSocket
 * responder (same V8 flags as gw, answers the size of gw's `health` payload),
 * gets the same idle RSS, idle-connection, 1 × 64 and sequential-handshake
 * measurements, each right after gw's, so both see the same machine speed.
 *
 * Load comes from tests/_bench_client.ts in its own process. Prints one JSON
 * object on stdout (progress on stderr) and rewrites docs/benchmarks.md
 * unless --no-write or --quick (a smoke run never replaces the real figures).
 * Every child process is killed at the end, even on error.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { gwRunArgs } from "./_helpers.ts";
import { alive, connectFrame, procTree, tryHandshake } from "./_bench_util.ts";
import { findOpenclaw, makeOpenclawGatewayHome, openclawDir, openclawEnv } from "./_openclaw.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean" },
    "no-write": { type: "boolean" },
    "no-openclaw": { type: "boolean" },
  },
  strict: true,
});
const QUICK = flags.quick === true;
const WRITE = !QUICK && flags["no-write"] !== true;
const WITH_OPENCLAW = flags["no-openclaw"] !== true;

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const CLIENT = `${ROOT}/tests/_bench_client.ts`;
const BARE = `${ROOT}/tests/_bare_responder.ts`;
const DOC = `${ROOT}/docs/benchmarks.md`;
const GWBENCH_SRC = Deno.env.get("GWBENCH_DIR") ?? "/work/shared/tools";
const GWBENCH_DIR = `${ROOT}/.bench/tools`;
const TOKEN = `bench-${crypto.randomUUID().replaceAll("-", "")}`;

/** Durations and counts; --quick shrinks them for a smoke run. */
const P = QUICK
  ? { startRuns: 2, idleConns: 200, settle: 1, rpcSeconds: 2, hsSeconds: 1, warmup: 0.5 }
  : { startRuns: 5, idleConns: 1000, settle: 3, rpcSeconds: 10, hsSeconds: 5, warmup: 1 };
/** The OpenClaw phase: its idle RSS is read this long after hello, with this many idle conns. */
const OC = QUICK
  ? { idleSeconds: 5, idleConns: 200, startTimeoutMs: 120_000, stopGraceMs: 15_000 }
  : { idleSeconds: 30, idleConns: 1000, startTimeoutMs: 120_000, stopGraceMs: 15_000 };
/** The port OpenClaw's own CLI probes (WIRE.md §11): never use it. */
const OPENCLAW_DEFAULT_PORT = 18789;

/** Targets from the brief. */
const TARGETS = {
  startMs: 150,
  idleRssMB: 60,
  perConnKB: 40,
  rpc1x64: 40_000,
  rpc1x64P99Ms: 10,
  hsSeq: 800,
};
/**
 * OpenClaw 2026.9.6 as quoted in WIRE.md §10 (gwbench.mjs, same kind of 2-core VM, 16–28 % steal):
 * the table's fallback when the same-run phase cannot run, and a reference beside its figures.
 */
const OPENCLAW_QUOTED = {
  start: "12.4 s (median of 5, [11.1–17.1]; TCP listen at 10.1 s)",
  idleRss: "836 MB main, 1006 MB with its 2 helpers (30 s after hello)",
  perConn: "~80 KB (200 held: 633 → 650 MB main, after a GC)",
  rpc1x64: "786 req/s, p50 77 ms, p99 235 ms",
  rpc50x8: "458 req/s, p50 881 ms, p99 1.19 s",
  hsSeq: "193 /s, p50 3.1 ms, p99 17 ms",
  hs20: "508 /s, p50 32 ms, p99 87 ms",
  rssUnderLoad: "630 MB – 1.4 GB main",
  stop: "1–3 s when idle",
};

// ------------------------------------------------------------------ processes

const children = new Set<Deno.ChildProcess>();
/** Descendants of our children seen so far (OpenClaw's gateway and helpers): killed at cleanup. */
const treePids = new Set<number>();
const tempDirs = new Set<string>();
/** Other leftovers to remove at cleanup (OpenClaw's lock files outside its home). */
const cleanups = new Set<() => Promise<void>>();
const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.now();
const log = (msg: string) => Deno.stderr.writeSync(enc.encode(`bench: ${msg}\n`));

async function stopChild(child: Deno.ChildProcess, graceMs = 3000): Promise<void> {
  if (!children.has(child)) return;
  try {
    child.kill("SIGTERM");
  } catch { /* already gone */ }
  const done = await Promise.race([
    child.status.then(() => true),
    sleep(graceMs).then(() => false),
  ]);
  if (!done) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await Promise.race([child.status, sleep(1000)]);
  }
  children.delete(child);
}

async function cleanup(): Promise<void> {
  // Descendants first: a child killed after its grace period would orphan them.
  for (const c of children) for (const p of procTree(c.pid)) treePids.add(p.pid);
  await Promise.all([...children].map((c) => stopChild(c)));
  await killPids([...treePids], 3000);
  for (const d of tempDirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  tempDirs.clear();
  for (const f of cleanups) await f().catch(() => {});
  cleanups.clear();
}

let interrupted = false;
const onSignal = () => {
  if (interrupted) Deno.exit(130);
  interrupted = true;
  log("interrupted; stopping child processes");
  void cleanup().finally(() => Deno.exit(130));
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

/** Run a command to completion with a time limit; stdout as text. */
async function run(
  cmd: string,
  args: string[],
  timeoutMs: number,
  cwd = ROOT,
): Promise<{ ok: boolean; code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).spawn();
  children.add(child);
  try {
    const o = await child.output();
    return {
      ok: o.success,
      code: o.code,
      stdout: dec.decode(o.stdout),
      stderr: dec.decode(o.stderr),
    };
  } finally {
    children.delete(child);
  }
}

/** Read a /proc file of another process (Deno wants --allow-all for direct /proc reads). */
function procRead(path: string): string {
  try {
    const o = new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
      .outputSync();
    return dec.decode(o.stdout);
  } catch {
    return "";
  }
}

function rssKB(pid: number): number | null {
  const m = procRead(`/proc/${pid}/status`).match(/VmRSS:\s+(\d+)/);
  return m ? Number(m[1]) : null;
}

/** SIGTERM, then after `graceMs` SIGKILL, each of `pids` (by id) that is still there. */
async function killPids(pids: number[], graceMs: number): Promise<void> {
  const left = () => pids.filter(alive);
  for (const pid of left()) {
    try {
      Deno.kill(pid, "SIGTERM");
    } catch { /* gone */ }
  }
  const deadline = now() + graceMs;
  while (left().length && now() < deadline) await sleep(100);
  for (const pid of left()) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
  for (let i = 0; i < 20 && left().length; i++) await sleep(50);
  for (const pid of pids) if (!alive(pid)) treePids.delete(pid);
}

/** CPU seconds (utime + stime) of a process. */
function cpuSeconds(pid: number): number {
  const st = procRead(`/proc/${pid}/stat`);
  const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Aggregate CPU counters from /proc/stat, for the steal share over the run. */
function cpuTotals(): { total: number; steal: number; idle: number } | null {
  const line = procRead("/proc/stat").split("\n")[0] ?? "";
  if (!line.startsWith("cpu ")) return null;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  return { total: v.reduce((x, y) => x + y, 0), steal: v[7] ?? 0, idle: (v[3] ?? 0) + (v[4] ?? 0) };
}

/** Share (%) of all CPUs busy over `ms`, from /proc/stat. */
async function busyPct(ms: number): Promise<number | null> {
  const a = cpuTotals();
  await sleep(ms);
  const b = cpuTotals();
  if (!a || !b || b.total <= a.total) return null;
  return Math.round((1 - (b.idle - a.idle) / (b.total - a.total)) * 1000) / 10;
}

/**
 * Other work on the machine skews every figure. Wait (bounded) for a quiet
 * second; report how busy the machine was when the run began.
 */
async function waitQuiet(maxMs: number): Promise<{ busyPct: number | null; waitedMs: number }> {
  const t0 = now();
  let busy = await busyPct(1000);
  while (busy !== null && busy > 15 && now() - t0 < maxMs) {
    log(`machine ${busy} % busy with other work; waiting for a quiet second`);
    busy = await busyPct(1000);
  }
  return { busyPct: busy, waitedMs: Math.round(now() - t0) };
}

/** VmRSS 3 s after spawn, once the server printed its "listening on" line; no connection yet. */
async function idleRss(s: Gw): Promise<{ kB: number | null; MB: number | null; afterSeconds: 3 }> {
  const listenAt = await Promise.race([s.listening, sleep(20_000).then(() => null)]);
  if (listenAt === null) throw new Error(`${s.kind} did not start: ${s.stderrTail()}`);
  await sleep(Math.max(0, s.spawnedAt + 3000 - now()));
  const kB = rssKB(s.pid);
  return { kB, MB: kB === null ? null : Math.round(kB / 102.4) / 10, afterSeconds: 3 };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

// ------------------------------------------------------------------ gateway

interface Gw {
  kind: "gw" | "bare" | "openclaw";
  child: Deno.ChildProcess;
  /** The process whose RSS is reported. */
  pid: number;
  /** The processes whose CPU is the server's (OpenClaw: its whole tree); else just `pid`. */
  cpuPids?: number[];
  port: number;
  url: string;
  spawnedAt: number;
  /** performance.now() when gw printed "listening on", or null if it never did. */
  listening: Promise<number | null>;
  /** performance.now() when it printed its `ready` line (OpenClaw only; else never resolves). */
  ready: Promise<number | null>;
  stderrTail: () => string;
}

/** Start gw exactly as users do, with a fresh state dir. */
async function startGw(): Promise<Gw> {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-bench-" });
  tempDirs.add(stateDir);
  const port = freePort();
  return spawnServer(
    "gw",
    gwRunArgs("start", "--port", String(port), "--state-dir", stateDir, "--token", TOKEN),
    port,
  );
}

/** gw's V8 flags, as `gwRunArgs` reads them: the `--v8-flags=…` part of deno.json's gw task. */
function gwV8Flags(): string[] {
  const task = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)).tasks.gw as string;
  return task.split(/\s+/).filter((a) => a.startsWith("--v8-flags="));
}

/** Start the bare Deno responder: the ceiling, with gw's V8 flags and `health` payload size. */
function startBare(payloadBytes: number): Gw {
  const port = freePort();
  return spawnServer("bare", [
    "run",
    ...gwV8Flags(),
    "--allow-net=127.0.0.1",
    BARE,
    "--port",
    String(port),
    "--payload-bytes",
    String(payloadBytes),
  ], port);
}

/** How to spawn a server other than with this Deno (OpenClaw on its own Node). */
interface SpawnOpts {
  cmd?: string;
  cwd?: string;
  env?: Record<string, string>;
  clearEnv?: boolean;
  /** The stdout text that says it accepts connections ("listening on" by default). */
  listenLine?: string;
  /** The stdout text that says start-up is complete, when it prints one. */
  readyLine?: string;
}

/** Spawn a server that prints "listening on" (or `o.listenLine`) once it accepts connections. */
function spawnServer(kind: Gw["kind"], args: string[], port: number, o: SpawnOpts = {}): Gw {
  const cmd = new Deno.Command(o.cmd ?? Deno.execPath(), {
    args,
    cwd: o.cwd ?? ROOT,
    ...(o.env ? { env: o.env } : {}),
    clearEnv: o.clearEnv ?? false,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const spawnedAt = now();
  const child = cmd.spawn();
  children.add(child);
  let tail = "";
  void (async () => {
    try {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        tail = (tail + chunk).slice(-4000);
      }
    } catch { /* closed */ }
  })();
  // Resolves as soon as gw prints its "listening on" line (null if it never does);
  // the rest of stdout is drained so gw never blocks on a full pipe.
  const listening = Promise.withResolvers<number | null>();
  const ready = Promise.withResolvers<number | null>();
  const listenLine = o.listenLine ?? "listening on";
  void (async () => {
    let buf = "";
    let found = false;
    let foundReady = o.readyLine === undefined;
    try {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        if (found && foundReady) continue;
        buf = (buf + chunk).slice(-4000);
        if (!found && buf.includes(listenLine)) {
          found = true;
          listening.resolve(now());
        }
        if (!foundReady && buf.includes(o.readyLine!)) {
          foundReady = true;
          ready.resolve(now());
        }
      }
    } catch { /* closed */ }
    listening.resolve(null);
    ready.resolve(null);
  })();
  return {
    kind,
    child,
    pid: child.pid,
    port,
    url: `ws://127.0.0.1:${port}`,
    spawnedAt,
    listening: listening.promise,
    ready: ready.promise,
    stderrTail: () => tail,
  };
}

const CONNECT = connectFrame(TOKEN);

/** The frame a server sends for one `health` request, id "2", after the handshake; null if none. */
function healthFrame(url: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    let done = false;
    let ws: WebSocket;
    const finish = (frame: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        ws.close();
      } catch { /* closing */ }
      resolve(frame);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    try {
      ws = new WebSocket(url);
    } catch {
      finish(null);
      return;
    }
    ws.onmessage = (ev) => {
      const d = String(ev.data);
      if (d.startsWith('{"type":"res","id":"2"')) finish(d);
      else if (d.startsWith('{"type":"res","id":"1","ok":true')) {
        ws.send('{"type":"req","id":"2","method":"health"}');
      } else if (d.startsWith('{"type":"res"')) finish(null);
      else if (d.includes('"connect.challenge"')) ws.send(CONNECT);
    };
    ws.onerror = () => finish(null);
    ws.onclose = () => finish(null);
  });
}

/** Bytes of the payload in a `{"type":"res","id":"2","ok":true,"payload":…}` frame. */
function payloadBytes(frame: string | null): number | null {
  const head = '{"type":"res","id":"2","ok":true,"payload":';
  if (!frame?.startsWith(head) || !frame.endsWith("}")) return null;
  return enc.encode(frame.slice(head.length, -1)).length;
}

/**
 * Spawn gw and poll-connect every ~2 ms; ms from spawn to the first hello-ok.
 * With `probe`, then also fetch one `health` answer (for the bare responder's size).
 */
async function measureStart(
  probe = false,
): Promise<{ ms: number; listenMs: number | null; attempts: number; health?: string | null }> {
  const gw = await startGw();
  let exited = false;
  gw.child.status.then(() => (exited = true));
  try {
    const deadline = gw.spawnedAt + 20_000;
    let attempts = 0;
    while (!exited && attempts < 10_000 && now() < deadline) {
      attempts++;
      if (await tryHandshake(gw.url, TOKEN, 2000) === "ok") {
        const ms = now() - gw.spawnedAt;
        const listenAt = await Promise.race([gw.listening, sleep(500).then(() => null)]);
        const listenMs = listenAt === null ? null : listenAt - gw.spawnedAt;
        if (!probe) return { ms, listenMs, attempts };
        return { ms, listenMs, attempts, health: await healthFrame(gw.url, 5000) };
      }
      await sleep(2);
    }
    throw new Error(`gw did not answer a handshake (attempts ${attempts}): ${gw.stderrTail()}`);
  } finally {
    await stopChild(gw.child);
  }
}

// ------------------------------------------------------------------ load client

interface ClientRun {
  result: Record<string, unknown>;
  gwCpuPct: number | null;
  otherCpuPct?: number | null;
}

/** Run tests/_bench_client.ts; samples gw's CPU between the client's measure markers. */
async function runClient(gw: Gw, args: string[], budgetMs: number): Promise<ClientRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=test", CLIENT, "--url", gw.url, "--token", TOKEN, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(budgetMs),
  }).spawn();
  children.add(child);
  const serverCpu = () => (gw.cpuPids ?? [gw.pid]).reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  let cpu0: [number, number] | null = null;
  let gwCpuPct: number | null = null;
  let sys0: ReturnType<typeof cpuTotals> = null;
  let machinePct: number | null = null;
  let errTail = "";
  const errDone = (async () => {
    let buf = "";
    try {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line === "@@measure-start") {
            cpu0 = [serverCpu(), now()];
            sys0 = cpuTotals();
          } else if (line === "@@measure-end" && cpu0) {
            const [c0, t0] = cpu0;
            gwCpuPct = Math.round(((serverCpu() - c0) / ((now() - t0) / 1000)) * 100);
            const sys1 = cpuTotals();
            if (sys0 && sys1 && sys1.total > sys0.total) {
              const busy = 1 - (sys1.idle - sys0.idle) / (sys1.total - sys0.total);
              machinePct = Math.round(busy * navigator.hardwareConcurrency * 100);
            }
          } else if (line.trim()) errTail = (errTail + line + "\n").slice(-2000);
        }
      }
    } catch { /* closed */ }
  })();
  const outDone = (async () => {
    let out = "";
    try {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) out += chunk;
    } catch { /* closed */ }
    return out;
  })();
  try {
    const [status, out] = await Promise.all([child.status, outDone]);
    await Promise.race([errDone, sleep(500)]);
    const line = out.trim().split("\n").pop() ?? "";
    try {
      const result = JSON.parse(line);
      // CPU used by neither gw nor the client (other work on the machine, in % of one core).
      const otherCpuPct =
        machinePct !== null && gwCpuPct !== null && typeof result.clientCpuPct === "number"
          ? Math.max(0, Math.round(machinePct - gwCpuPct - result.clientCpuPct))
          : null;
      return { result, gwCpuPct, otherCpuPct };
    } catch {
      return {
        result: {
          error: `client exited ${status.code} without a result`,
          stderr: errTail.slice(-500),
        },
        gwCpuPct,
      };
    }
  } finally {
    children.delete(child);
  }
}

// ------------------------------------------------------------------ gwbench.mjs

/** Copy gwbench.mjs + gwproto.mjs + package.json to .bench/tools and npm install there. */
async function prepareGwbench(): Promise<string | null> {
  try {
    const v = await run("node", ["--version"], 10_000);
    if (!v.ok) return "node is not usable";
  } catch {
    return "node is not installed";
  }
  try {
    await Deno.mkdir(GWBENCH_DIR, { recursive: true });
    for (const f of ["gwbench.mjs", "gwproto.mjs", "package.json"]) {
      // Write rather than copy: the sources are read-only, and a copy keeps that mode.
      await Deno.writeTextFile(
        `${GWBENCH_DIR}/${f}`,
        await Deno.readTextFile(`${GWBENCH_SRC}/${f}`),
      );
    }
  } catch (e) {
    return `cannot copy gwbench.mjs from ${GWBENCH_SRC}: ${(e as Error).message}`;
  }
  try {
    await Deno.stat(`${GWBENCH_DIR}/node_modules/ws/package.json`);
    return null;
  } catch { /* install below */ }
  log("npm install in .bench/tools (ws)");
  try {
    const r = await run(
      "npm",
      ["install", "--no-audit", "--no-fund", "--loglevel=error"],
      120_000,
      GWBENCH_DIR,
    );
    if (!r.ok) return `npm install failed: ${r.stderr.trim().slice(-300)}`;
  } catch (e) {
    return `npm is not usable: ${(e as Error).message}`;
  }
  return null;
}

async function gwbench(gw: Gw, args: string[], budgetMs: number): Promise<Record<string, unknown>> {
  const r = await run(
    "node",
    ["gwbench.mjs", "--url", gw.url, "--token", TOKEN, ...args],
    budgetMs,
    GWBENCH_DIR,
  );
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line);
  } catch {
    return { error: `gwbench exited ${r.code} without a result`, stderr: r.stderr.slice(-500) };
  }
}

// ------------------------------------------------------------------ OpenClaw

/** Tree RSS: the `openclaw-gateway` main process, and every process under the spawned one. */
function rssOfTree(root: number, mainPid: number) {
  const tree = procTree(root);
  for (const p of tree) treePids.add(p.pid);
  const mainKB = tree.find((p) => p.pid === mainPid)?.rssKB ?? null;
  const treeKB = tree.reduce((sum, p) => sum + p.rssKB, 0);
  const MB = (kB: number | null) => kB === null ? null : Math.round(kB / 102.4) / 10;
  return {
    mainKB,
    mainMB: MB(mainKB),
    treeKB,
    treeMB: MB(treeKB),
    processes: tree.map((p) => ({ pid: p.pid, rssKB: p.rssKB, cmd: p.args })),
  };
}

/**
 * The real OpenClaw gateway, started as WIRE.md §1 did (isolated home, outbound guards,
 * offline config) on a free port, then measured with the same client as gw. Only runs
 * once every gw process is stopped: it takes ~1 GB and a core while it starts.
 * Never throws: a failure is reported in the result, with whatever was measured before it.
 */
async function openclawPhase(): Promise<Record<string, Any>> {
  const oc = findOpenclaw();
  if (!oc) {
    return { unavailable: `no usable OpenClaw install in ${openclawDir()} (.ci/run installs it)` };
  }
  let port = freePort();
  while (port === OPENCLAW_DEFAULT_PORT) port = freePort();
  const out: Record<string, Any> = { version: oc.version, node: oc.nodeVersion, port };
  const ocHome = await makeOpenclawGatewayHome(oc, port, TOKEN);
  const home = ocHome.home;
  tempDirs.add(home);
  const removeLeftovers = async () => {
    Object.assign(out, await ocHome.cleanup());
  };
  cleanups.add(removeLeftovers);
  let s: Gw | null = null;
  try {
    s = spawnServer(
      "openclaw",
      ocHome.args,
      port,
      {
        cmd: oc.node,
        cwd: home,
        clearEnv: true,
        // Cron off too: the measurement is about the gateway.
        env: openclawEnv(oc, home, { OPENCLAW_SKIP_CRON: "1" }),
        listenLine: "http server listening",
        readyLine: "[gateway] ready",
      },
    );
    const gwy = s;

    // spawn → first hello-ok, polling every ~2 ms as for gw; `UNAVAILABLE startup-sidecars`
    // (and refused connections before it listens) just mean: try again.
    let exited = false;
    gwy.child.status.then(() => (exited = true));
    const failures: Record<string, number> = {};
    let attempts = 0;
    let helloAt: number | null = null;
    const deadline = gwy.spawnedAt + OC.startTimeoutMs;
    while (!exited && now() < deadline) {
      attempts++;
      const why = await tryHandshake(gwy.url, TOKEN, 10_000);
      if (why === "ok") {
        helloAt = now();
        break;
      }
      failures[why] = (failures[why] ?? 0) + 1;
      await sleep(2);
    }
    const at = async (p: Promise<number | null>) => {
      const t = await Promise.race([p, sleep(100).then(() => null)]);
      return t === null ? null : Math.round(t - gwy.spawnedAt);
    };
    out.startToHelloOk = {
      ms: helloAt === null ? null : Math.round(helloAt - gwy.spawnedAt),
      listenLineMs: await at(gwy.listening),
      readyLineMs: await at(gwy.ready),
      attempts,
      failedAttempts: failures,
      pollEveryMs: 2,
    };
    if (helloAt === null) {
      throw new Error(
        exited
          ? `OpenClaw exited before its first hello-ok: ${gwy.stderrTail().slice(-500)}`
          : `no hello-ok within ${OC.startTimeoutMs / 1000} s`,
      );
    }
    log(`OpenClaw: ${out.startToHelloOk.ms} ms to hello-ok (${attempts} attempts)`);

    // The main process is the one titled `openclaw-gateway` (the spawned CLI re-executes itself).
    const tree = procTree(gwy.child.pid);
    const main = tree.find((p) => p.args.startsWith("openclaw-gateway"));
    gwy.pid = main?.pid ?? gwy.child.pid;
    gwy.cpuPids = tree.map((p) => p.pid);
    out.mainPid = gwy.pid;
    out.rssAtHello = rssOfTree(gwy.child.pid, gwy.pid);
    log(`OpenClaw: waiting ${OC.idleSeconds} s after hello for its idle RSS`);
    await sleep(Math.max(0, helloAt + OC.idleSeconds * 1000 - now()));
    out.idleRss = { afterSecondsFromHello: OC.idleSeconds, ...rssOfTree(gwy.child.pid, gwy.pid) };
    log(`OpenClaw idle RSS: main ${out.idleRss.mainKB} kB, tree ${out.idleRss.treeKB} kB`);

    log(`${OC.idleConns} idle connections: OpenClaw`);
    out.idleConnections = (await runClient(gwy, [
      "--mode",
      "idle",
      "--conns",
      String(OC.idleConns),
      "--settle",
      String(P.settle),
      "--pid",
      String(gwy.pid),
    ], 180_000)).result;
    await sleep(500);

    const phases: [string, string[], number][] = [
      ["health1x64", ["--mode", "rpc", "--conns", "1", "--inflight", "64"], P.rpcSeconds],
      ["health50x8", ["--mode", "rpc", "--conns", "50", "--inflight", "8"], P.rpcSeconds],
      ["handshakeSeq", ["--mode", "handshake", "--conns", "1"], P.hsSeconds],
      ["handshake20", ["--mode", "handshake", "--conns", "20"], P.hsSeconds],
    ];
    for (const [name, args, seconds] of phases) {
      if (exited) throw new Error(`OpenClaw exited: ${gwy.stderrTail().slice(-500)}`);
      await waitQuiet(QUICK ? 1_000 : 5_000);
      log(`${name} on OpenClaw (${seconds} s + ${P.warmup} s warm-up)`);
      const r = await runClient(
        gwy,
        [...args, "--seconds", String(seconds), "--warmup", String(P.warmup)],
        (seconds + P.warmup + 60) * 1000,
      );
      out[name] = { ...r.result, serverCpuPct: r.gwCpuPct, otherCpuPct: r.otherCpuPct ?? null };
      await sleep(300);
    }
    out.rssAfterLoad = rssOfTree(gwy.child.pid, gwy.pid);
  } catch (e) {
    out.error = (e as Error).message;
    log(`OpenClaw phase failed: ${out.error}`);
  } finally {
    if (s) {
      // SIGTERM to the CLI drains the gateway; its helpers (one in its own process
      // group) are then killed by id if they outlive it.
      const pids = procTree(s.child.pid).map((p) => p.pid);
      for (const pid of pids) treePids.add(pid);
      const t = now();
      await stopChild(s.child, OC.stopGraceMs);
      await killPids(pids, 5000);
      out.stopMs = Math.round(now() - t);
      out.leftRunning = pids.filter(alive);
    }
    tempDirs.delete(home);
    cleanups.delete(removeLeftovers);
    await removeLeftovers();
  }
  return out;
}

// ------------------------------------------------------------------ figures

function summary(values: number[]) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length / 2;
  const median = s.length % 2 ? s[Math.floor(mid)]! : (s[mid - 1]! + s[mid]!) / 2;
  const r = (v: number) => Math.round(v * 10) / 10;
  return {
    medianMs: r(median),
    minMs: r(s[0]!),
    maxMs: r(s[s.length - 1]!),
    runsMs: values.map(r),
  };
}

// deno-lint-ignore no-explicit-any
type Any = any;

async function machine() {
  const cpu = procRead("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1]?.trim() ?? null;
  let memTotalMB: number | null = null;
  try {
    memTotalMB = Math.round(Deno.systemMemoryInfo().total / 1048576);
  } catch { /* no sys permission */ }
  let node: string | null = null;
  try {
    const r = await run("node", ["--version"], 10_000);
    node = r.ok ? r.stdout.trim() : null;
  } catch { /* not installed */ }
  return {
    nproc: navigator.hardwareConcurrency,
    cpu,
    memTotalMB,
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    node,
    loadavgAtStart: Deno.loadavg(),
    date: new Date().toISOString(),
  };
}

async function main(): Promise<Record<string, unknown>> {
  const out: Record<string, Any> = {
    tool: "gw bench",
    quick: QUICK,
    machine: await machine(),
    targets: TARGETS,
  };
  const quiet = await waitQuiet(QUICK ? 5_000 : 30_000);
  out.machine.busyPctBeforeStart = quiet.busyPct;
  out.machine.waitedForQuietMs = quiet.waitedMs;
  const cpuAtStart = cpuTotals();
  const t0 = now();

  // 1. start to first hello-ok
  log("warm-up start (module cache), and one `health` answer for its size");
  const warm = await measureStart(true);
  const healthBytes = payloadBytes(warm.health ?? null);
  if (healthBytes === null) {
    throw new Error(`no usable health answer from gw: ${warm.health?.slice(0, 200)}`);
  }
  log(`gw's health payload: ${healthBytes} bytes`);
  const runs: { ms: number; listenMs: number | null; attempts: number }[] = [];
  for (let i = 0; i < P.startRuns; i++) {
    const r = await measureStart();
    log(
      `start run ${i + 1}: ${r.ms.toFixed(1)} ms to hello-ok (listening line at ${
        r.listenMs?.toFixed(1)
      } ms)`,
    );
    runs.push(r);
  }
  out.startToHelloOk = {
    ...summary(runs.map((r) => r.ms)),
    listenLineMs: summary(runs.filter((r) => r.listenMs !== null).map((r) => r.listenMs!)),
    pollEveryMs: 2,
  };

  // 2-4 on one long-lived instance, each figure followed by the bare responder's
  const gw = await startGw();
  let bare: Gw | null = null;
  try {
    out.idleRss = await idleRss(gw);
    log(`gw idle RSS 3 s after start: ${out.idleRss.kB} kB`);
    bare = startBare(healthBytes);
    const bareOut: Record<string, Any> = { payloadBytes: healthBytes, v8Flags: gwV8Flags() };
    out.bare = bareOut;
    bareOut.idleRss = await idleRss(bare);
    log(`bare idle RSS 3 s after start: ${bareOut.idleRss.kB} kB`);

    const idleArgs = (s: Gw) => [
      "--mode",
      "idle",
      "--conns",
      String(P.idleConns),
      "--settle",
      String(P.settle),
      "--pid",
      String(s.pid),
    ];
    log(`${P.idleConns} idle connections: gw`);
    out.idleConnections = (await runClient(gw, idleArgs(gw), 120_000)).result;
    await sleep(500);
    log(`${P.idleConns} idle connections: bare`);
    bareOut.idleConnections = (await runClient(bare, idleArgs(bare), 120_000)).result;
    await sleep(500);

    // [name, client args, seconds, also on the bare responder right after gw]
    const phases: [string, string[], number, boolean][] = [
      ["health1x64", ["--mode", "rpc", "--conns", "1", "--inflight", "64"], P.rpcSeconds, true],
      ["health50x8", ["--mode", "rpc", "--conns", "50", "--inflight", "8"], P.rpcSeconds, false],
      ["handshakeSeq", ["--mode", "handshake", "--conns", "1"], P.hsSeconds, true],
      ["handshake20", ["--mode", "handshake", "--conns", "20"], P.hsSeconds, false],
    ];
    for (const [name, args, seconds, alsoBare] of phases) {
      for (const s of alsoBare ? [gw, bare] : [gw]) {
        await waitQuiet(QUICK ? 1_000 : 5_000);
        log(`${name} on ${s.kind} (${seconds} s + ${P.warmup} s warm-up)`);
        const r = await runClient(
          s,
          [...args, "--seconds", String(seconds), "--warmup", String(P.warmup)],
          (seconds + P.warmup + 60) * 1000,
        );
        const other = { otherCpuPct: r.otherCpuPct ?? null };
        if (s === gw) out[name] = { ...r.result, gwCpuPct: r.gwCpuPct, ...other };
        else bareOut[name] = { ...r.result, serverCpuPct: r.gwCpuPct, ...other };
        await sleep(300);
      }
    }
    out.rssAfterLoadKB = rssKB(gw.pid);
    // The bare answer's size, checked once its measurements are done.
    bareOut.healthFrameBytes = enc.encode(await healthFrame(bare.url, 5000) ?? "").length;
    out.healthFrameBytes = enc.encode(warm.health ?? "").length;
    await stopChild(bare.child);

    // 5. second opinion
    const why = await prepareGwbench();
    if (why) {
      log(`gwbench.mjs skipped: ${why}`);
      out.gwbench = { unavailable: why };
    } else {
      const gb: Record<string, unknown> = {};
      const s = String(P.rpcSeconds);
      const h = String(P.hsSeconds);
      const w = String(P.warmup);
      const runsGb: [string, string[], number][] = [
        ["health1x64", [
          "--mode",
          "rpc",
          "--conns",
          "1",
          "--inflight",
          "64",
          "--seconds",
          s,
          "--warmup",
          w,
        ], P.rpcSeconds],
        ["health50x8", [
          "--mode",
          "rpc",
          "--conns",
          "50",
          "--inflight",
          "8",
          "--seconds",
          s,
          "--warmup",
          w,
        ], P.rpcSeconds],
        [
          "handshakeSeq",
          ["--mode", "handshake", "--conns", "1", "--seconds", h, "--warmup", w],
          P.hsSeconds,
        ],
        [
          "handshake20",
          ["--mode", "handshake", "--conns", "20", "--seconds", h, "--warmup", w],
          P.hsSeconds,
        ],
        [
          "idle",
          [
            "--mode",
            "idle",
            "--conns",
            String(P.idleConns),
            "--seconds",
            String(P.settle),
            "--pid",
            String(gw.pid),
          ],
          P.settle,
        ],
      ];
      for (const [name, args, seconds] of runsGb) {
        await waitQuiet(QUICK ? 1_000 : 5_000);
        log(`gwbench.mjs ${name}`);
        gb[name] = await gwbench(gw, args, (seconds + P.warmup + 60) * 1000);
        await sleep(300);
      }
      out.gwbench = gb;
    }
  } finally {
    if (bare) await stopChild(bare.child);
    await stopChild(gw.child);
  }

  // gwbench's idle mode on the loaded instance measures almost nothing: the
  // allocator reuses memory freed after the load runs. So it also gets a fresh gw.
  if (out.gwbench && !out.gwbench.unavailable) {
    const fresh = await startGw();
    try {
      const at = await Promise.race([fresh.listening, sleep(20_000).then(() => null)]);
      if (at === null) throw new Error(`gw did not start: ${fresh.stderrTail()}`);
      await sleep(Math.max(0, fresh.spawnedAt + 3000 - now()));
      log("gwbench.mjs idle on a fresh gw");
      out.gwbench.idleFresh = await gwbench(fresh, [
        "--mode",
        "idle",
        "--conns",
        String(P.idleConns),
        "--seconds",
        String(P.settle),
        "--pid",
        String(fresh.pid),
      ], (P.settle + 60) * 1000);
    } catch (e) {
      out.gwbench.idleFresh = { error: String(e) };
    } finally {
      await stopChild(fresh.child);
    }
  }

  // 6. the real OpenClaw gateway, alone on the machine now
  if (!WITH_OPENCLAW) out.openclaw = { unavailable: "skipped (--no-openclaw)" };
  else {
    log("OpenClaw phase");
    const t = now();
    out.openclaw = await openclawPhase();
    out.openclaw.phaseSeconds = Math.round(now() - t) / 1000;
  }

  const cpuAtEnd = cpuTotals();
  if (cpuAtStart && cpuAtEnd && cpuAtEnd.total > cpuAtStart.total) {
    out.machine.stealPct = Math.round(
      ((cpuAtEnd.steal - cpuAtStart.steal) / (cpuAtEnd.total - cpuAtStart.total)) * 1000,
    ) / 10;
  }
  out.machine.loadavgAtEnd = Deno.loadavg();
  out.totalSeconds = Math.round(now() - t0) / 1000;
  return out;
}

// ------------------------------------------------------------------ the doc

const fmtInt = (n: unknown) =>
  typeof n === "number" ? Math.round(n).toLocaleString("en-US") : "n/a";
const fmtMs = (n: unknown) => {
  if (typeof n !== "number") return "n/a";
  if (n >= 1000) return `${(n / 1000).toFixed(2)} s`;
  return `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)} ms`;
};
const mb = (kB: unknown) => typeof kB === "number" ? `${Math.round(kB / 102.4) / 10} MB` : "n/a";
const mark = (ok: boolean | null) => ok === null ? "?" : ok ? "✅" : "❌";

/** " (12 % UNAVAILABLE)": a run's error replies as a share of `total`; "" when none. */
function errorsNote(r: Any, total: unknown): string {
  const e = Object.entries((r?.errors ?? {}) as Record<string, number>);
  if (!e.length || typeof total !== "number" || total <= 0) return "";
  const share = (v: number) => {
    const x = v / total * 100;
    return x >= 1 ? `${Math.round(x)} %` : `${x.toFixed(1)} %`;
  };
  return ` (${e.map(([k, v]) => `${share(v)} ${k}`).join(", ")})`;
}

function rpcCell(r: Any): string {
  if (!r || r.error) return `error: ${r?.error ?? "missing"}`;
  const l = r.latencyMs ?? r.latency;
  const errs = errorsNote(r, r.completed);
  return `${fmtInt(r.reqPerSec)} req/s${errs}, p50 ${fmtMs(l?.p50)}, p99 ${fmtMs(l?.p99)}`;
}

function hsCell(r: Any): string {
  if (!r || r.error) return `error: ${r?.error ?? "missing"}`;
  const l = r.latencyMs ?? r.handshakeLatencyMs;
  const failed = Object.values((r.errors ?? {}) as Record<string, number>)
    .reduce((x, y) => x + y, 0);
  const errs = errorsNote(r, (r.handshakesOk ?? 0) + failed);
  return `${fmtInt(r.handshakesPerSec)} /s${errs}, p50 ${fmtMs(l?.p50)}, p99 ${fmtMs(l?.p99)}`;
}

/**
 * gw against OpenClaw where lower is better (time, memory): "130× faster" / "12× less",
 * or the other way round ("1.5× more") when gw is the higher one; "–" without two figures.
 */
function lowerIsBetter(gw: unknown, oc: unknown, better: string, worse: string): string {
  if (typeof gw !== "number" || typeof oc !== "number" || !(gw > 0) || !(oc > 0)) return "–";
  return oc >= gw ? `${times(oc, gw)} ${better}` : `${times(gw, oc)} ${worse}`;
}

/** "116×" (from 10 on) or "2.3×"; null unless both are positive numbers. */
function times(big: unknown, small: unknown): string | null {
  if (typeof big !== "number" || typeof small !== "number" || !(big > 0) || !(small > 0)) {
    return null;
  }
  const r = big / small;
  return `${r >= 10 ? Math.round(r).toLocaleString("en-US") : r.toFixed(1)}×`;
}

function gwbenchIdlePerConn(r: Any): number | null {
  const before = r?.rssBefore?.mainKB;
  const after = r?.rssAfterHold?.mainKB;
  const n = r?.stillOpen ?? r?.connections;
  return typeof before === "number" && typeof after === "number" && n > 0
    ? Math.round(((after - before) / n) * 10) / 10
    : null;
}

/** A process of OpenClaw's tree, by what it runs. */
function procName(cmd: string): string {
  if (cmd.startsWith("openclaw-gateway")) return "`openclaw-gateway` (main)";
  const dist = cmd.match(/\/dist\/(\S+)/);
  if (dist) return `\`${dist[1]}\``;
  if (cmd.includes("openclaw.mjs")) return "the `openclaw.mjs` CLI it was spawned as";
  return `\`${cmd.split(" ")[0]?.split("/").pop()}\``;
}

/** The "OpenClaw in the same run" section. */
function renderOpenclaw(o: Any, table: (head: string[], body: string[][]) => string): string {
  const oc = o.openclaw ?? {};
  const st = oc.startToHelloOk;
  if (typeof st?.ms !== "number") {
    const why = oc.unavailable ?? oc.error ?? "unknown reason";
    return `The OpenClaw phase ${oc.unavailable ? "did not run" : "failed"}: ${why}.${
      st?.attempts ? ` (${fmtInt(st.attempts)} handshake attempts.)` : ""
    } The OpenClaw column above therefore quotes WIRE.md §10 (gwbench.mjs on a 2-core VM with
16–28 % CPU steal) instead of same-run figures.`;
  }
  const sec = (ms: unknown) => typeof ms === "number" ? `${(ms / 1000).toFixed(1)} s` : "n/a";
  const fails = Object.entries((st.failedAttempts ?? {}) as Record<string, number>)
    .map(([k, v]) => `${fmtInt(v)} × ${k}`).join(", ");
  const procs = (r: Any) =>
    (r?.processes ?? []).map((p: Any) => `${procName(p.cmd)} ${mb(p.rssKB)}`).join(", ");
  const idle = oc.idleConnections ?? {};
  const note = (r: Any) => cpuNoteOf(r, "OpenClaw");
  const body = [
    [
      "spawn → first hello-ok, fresh state dir",
      `${sec(st.ms)}: "http server listening" printed at ${sec(st.listenLineMs)}, "ready" at ${
        sec(st.readyLineMs)
      }; ${fmtInt(st.attempts)} attempts before (${fails || "none failed"})`,
      OPENCLAW_QUOTED.start,
    ],
    [
      `RSS ${oc.idleRss?.afterSecondsFromHello} s after hello, no connections`,
      `main ${mb(oc.idleRss?.mainKB)}, all ${oc.idleRss?.processes?.length} processes ${
        mb(oc.idleRss?.treeKB)
      }: ${procs(oc.idleRss)}`,
      OPENCLAW_QUOTED.idleRss,
    ],
    [
      `RSS per idle authenticated connection (${fmtInt(idle.stillOpen)} held, ${
        idle.settleSeconds ?? "?"
      } s settle)`,
      idle.error
        ? `error: ${idle.error}`
        : `${idle.perConnKB ?? "n/a"} KB (main ${fmtInt(idle.rssBeforeKB)} → ${
          fmtInt(idle.rssAfterSettleKB)
        } kB)`,
      OPENCLAW_QUOTED.perConn,
    ],
    ["`health`, 1 × 64", rpcCell(oc.health1x64) + note(oc.health1x64), OPENCLAW_QUOTED.rpc1x64],
    ["`health`, 50 × 8", rpcCell(oc.health50x8) + note(oc.health50x8), OPENCLAW_QUOTED.rpc50x8],
    [
      "handshakes, sequential",
      hsCell(oc.handshakeSeq) + note(oc.handshakeSeq),
      OPENCLAW_QUOTED.hsSeq,
    ],
    [
      "handshakes, 20 concurrent",
      hsCell(oc.handshake20) + note(oc.handshake20),
      OPENCLAW_QUOTED.hs20,
    ],
    [
      "RSS after the load runs",
      oc.rssAfterLoad
        ? `main ${mb(oc.rssAfterLoad.mainKB)}, all ${mb(oc.rssAfterLoad.treeKB)}`
        : "n/a",
      OPENCLAW_QUOTED.rssUnderLoad,
    ],
    ["stop (SIGTERM → every process gone)", sec(oc.stopMs), OPENCLAW_QUOTED.stop],
  ];
  return `After gw, the bare responder and gwbench.mjs were done and every gw process had
stopped, the bench started the real OpenClaw ${oc.version} gateway (Node ${oc.node}, the
install \`.ci/run\` keeps in \`~/.cache/gw-compat\`) the way WIRE.md §1 ran it:
\`node openclaw.mjs gateway run --port P --bind loopback --auth token --token T
--allow-unconfigured\`, with HOME, OPENCLAW_HOME, OPENCLAW_STATE_DIR, OPENCLAW_CONFIG_PATH,
TMPDIR and its file log in a fresh temp dir, OPENCLAW_SKIP_CHANNELS, OPENCLAW_DISABLE_BONJOUR,
OPENCLAW_NO_AUTO_UPDATE, OPENCLAW_SKIP_CRON and DO_NOT_TRACK set, and a config that turns off
the update check, the model catalog refresh and mDNS (\`gateway.mode\` "local"). Node's
compile cache of the install was warm, as gw's module cache is. The same client then ran the
same measurements as for gw, connecting as \`cli\`/\`cli\` with the shared token (protocol
3–4; OpenClaw speaks 4). RSS is VmRSS of the \`openclaw-gateway\` process, and of every
process under the spawned one for "all".${
    oc.error
      ? `\n\n**The phase stopped early: ${oc.error}.** Figures after that point are missing.`
      : ""
  }

${table(["measurement", `OpenClaw ${oc.version}, this run`, "WIRE.md §10 (quoted)"], body)}`;
}

function cpuNoteOf(r: Any, who: string): string {
  const c = who === "gw" ? r?.gwCpuPct : r?.serverCpuPct;
  return typeof c === "number"
    ? ` (CPU: ${who} ${c} %, client ${r.clientCpuPct} %${
      typeof r.otherCpuPct === "number" && r.otherCpuPct >= 10
        ? `, other work ${r.otherCpuPct} %`
        : ""
    })`
    : "";
}

function renderDoc(o: Any): string {
  const m = o.machine;
  const st = o.startToHelloOk;
  const idle = o.idleConnections ?? {};
  const h1 = o.health1x64 ?? {};
  const hs = o.handshakeSeq ?? {};
  const rssMB = o.idleRss?.MB;
  const date = String(m.date).slice(0, 10);
  const la = (v: number[] | undefined) => (v ?? []).map((x) => x.toFixed(2)).join(", ");
  const machineLine = [
    `${m.nproc} CPUs (${m.cpu ?? "unknown CPU"}), ${m.memTotalMB ?? "?"} MB RAM, ${m.os},`,
    `Deno ${m.deno}${m.node ? `, Node ${m.node}` : ""}. CPU steal over the run: ${
      m.stealPct ?? "n/a"
    } %.`,
    `Other work on the machine just before the run: ${m.busyPctBeforeStart ?? "n/a"} % of all CPUs`,
    `busy; load average ${la(m.loadavgAtStart)} at start, ${la(m.loadavgAtEnd)} at end.`,
  ].join("\n");
  const b = o.bare ?? {};
  const bIdle = b.idleConnections ?? {};
  const bRssMB = b.idleRss?.MB;
  const num = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
  /** gw / bare for a rate: "91 %". */
  const pct = (g: unknown, x: unknown) =>
    num(g) && num(x) && x > 0 ? `${Math.round(g / x * 100)} %` : "n/a";
  /** gw − bare for memory: "+24.3 MB". */
  const diff = (g: unknown, x: unknown, unit: string) => {
    if (!num(g) || !num(x)) return "n/a";
    const d = Math.round((g - x) * 10) / 10;
    return `${d >= 0 ? "+" : "−"}${Math.abs(d)} ${unit}`;
  };
  const cpuNote = (r: Any, who = "gw") => cpuNoteOf(r, who);
  // The OpenClaw columns: same-run figures and gw's ratio to them, or, when the phase
  // did not run or failed before its first hello-ok, the figures quoted from WIRE.md §10.
  const oc = o.openclaw ?? {};
  const ocRan = typeof oc.startToHelloOk?.ms === "number";
  const ocName = `OpenClaw ${oc.version ?? "2026.9.6"}`;
  const ocIdle = oc.idleConnections ?? {};
  const ocStart = oc.startToHelloOk ?? {};
  const sec = (ms: unknown) => typeof ms === "number" ? `${(ms / 1000).toFixed(1)} s` : "n/a";
  const ocRate = (r: Any, key: string, g: Any) => {
    const x = times(g?.[key], r?.[key]);
    return x ?? "–";
  };
  const oCols: Record<string, [string, string] | [string]> = ocRan
    ? {
      start: [
        `${sec(ocStart.ms)} (one run)`,
        lowerIsBetter(st.medianMs, ocStart.ms, "faster", "slower"),
      ],
      idleRss: [
        `${mb(oc.idleRss?.mainKB)} main, ${mb(oc.idleRss?.treeKB)} with its ${
          (oc.idleRss?.processes?.length ?? 1) - 1
        } other processes (${oc.idleRss?.afterSecondsFromHello} s after hello)`,
        lowerIsBetter(o.idleRss?.kB, oc.idleRss?.mainKB, "less", "more"),
      ],
      perConn: [
        ocIdle.error
          ? `error: ${ocIdle.error}`
          : `${ocIdle.perConnKB ?? "n/a"} KB (${fmtInt(ocIdle.stillOpen)} held; ${
            fmtInt(ocIdle.rssBeforeKB)
          } → ${fmtInt(ocIdle.rssAfterSettleKB)} kB)`,
        lowerIsBetter(idle.perConnKB, ocIdle.perConnKB, "less", "more"),
      ],
      rpc1x64: [
        `${rpcCell(oc.health1x64)}${cpuNote(oc.health1x64, "OpenClaw")}`,
        ocRate(oc.health1x64, "reqPerSec", h1),
      ],
      rpc50x8: [
        `${rpcCell(oc.health50x8)}${cpuNote(oc.health50x8, "OpenClaw")}`,
        ocRate(oc.health50x8, "reqPerSec", o.health50x8),
      ],
      hsSeq: [
        `${hsCell(oc.handshakeSeq)}${cpuNote(oc.handshakeSeq, "OpenClaw")}`,
        ocRate(oc.handshakeSeq, "handshakesPerSec", hs),
      ],
      hs20: [
        `${hsCell(oc.handshake20)}${cpuNote(oc.handshake20, "OpenClaw")}`,
        ocRate(oc.handshake20, "handshakesPerSec", o.handshake20),
      ],
    }
    : {
      start: [OPENCLAW_QUOTED.start],
      idleRss: [OPENCLAW_QUOTED.idleRss],
      perConn: [OPENCLAW_QUOTED.perConn],
      rpc1x64: [OPENCLAW_QUOTED.rpc1x64],
      rpc50x8: [OPENCLAW_QUOTED.rpc50x8],
      hsSeq: [OPENCLAW_QUOTED.hsSeq],
      hs20: [OPENCLAW_QUOTED.hs20],
    };
  /** "3.5 min": durations of this run, to the half minute. */
  const minutes = (sec: unknown) =>
    typeof sec === "number" ? `${Math.max(0.5, Math.round(sec / 30) / 2)} min` : "n/a";
  const ocSeconds = ocRan && typeof oc.phaseSeconds === "number" ? oc.phaseSeconds : null;
  const runMinutes = `this run took ${minutes(o.totalSeconds)}${
    ocSeconds === null ? "" : `, ${minutes(ocSeconds)} of it for OpenClaw`
  }`;
  const ocHead = ocRan
    ? [`${ocName} (same run)`, "gw vs OpenClaw"]
    : [`${ocName} (quoted from WIRE.md §10)`];
  const rows = [
    [
      "spawn → first hello-ok, warm cache, fresh state dir (median of " + st.runsMs.length + ")",
      `≤ ${TARGETS.startMs} ms`,
      `**${st.medianMs} ms** [${st.minMs}–${st.maxMs}]`,
      mark(st.medianMs <= TARGETS.startMs),
      "–",
      "–",
      ...oCols.start!,
    ],
    [
      "idle RSS, 3 s after start, no connections",
      `≤ ${TARGETS.idleRssMB} MB`,
      `**${rssMB ?? "n/a"} MB**`,
      mark(typeof rssMB === "number" ? rssMB <= TARGETS.idleRssMB : null),
      `${bRssMB ?? "n/a"} MB`,
      diff(rssMB, bRssMB, "MB"),
      ...oCols.idleRss!,
    ],
    [
      `RSS per idle authenticated connection (${
        fmtInt(idle.stillOpen)
      } held, ${idle.settleSeconds} s settle)`,
      `≤ ${TARGETS.perConnKB} KB`,
      `**${idle.perConnKB ?? "n/a"} KB** (${fmtInt(idle.rssBeforeKB)} → ${
        fmtInt(idle.rssAfterSettleKB)
      } kB)`,
      mark(typeof idle.perConnKB === "number" ? idle.perConnKB <= TARGETS.perConnKB : null),
      `${bIdle.perConnKB ?? "n/a"} KB (${fmtInt(bIdle.rssBeforeKB)} → ${
        fmtInt(bIdle.rssAfterSettleKB)
      } kB)`,
      diff(idle.perConnKB, bIdle.perConnKB, "KB"),
      ...oCols.perConn!,
    ],
    [
      "`health`, 1 conn × 64 in flight, 10 s",
      `≥ ${fmtInt(TARGETS.rpc1x64)} req/s, p99 ≤ ${TARGETS.rpc1x64P99Ms} ms`,
      `**${rpcCell(h1)}**${cpuNote(h1)}`,
      mark(
        typeof h1.reqPerSec === "number"
          ? h1.reqPerSec >= TARGETS.rpc1x64 &&
            (h1.latencyMs?.p99 ?? Infinity) <= TARGETS.rpc1x64P99Ms
          : null,
      ),
      `${rpcCell(b.health1x64)}${cpuNote(b.health1x64, "bare")}`,
      pct(h1.reqPerSec, b.health1x64?.reqPerSec),
      ...oCols.rpc1x64!,
    ],
    [
      "`health`, 50 conns × 8 in flight, 10 s",
      "–",
      `**${rpcCell(o.health50x8)}**${cpuNote(o.health50x8)}`,
      "",
      "–",
      "–",
      ...oCols.rpc50x8!,
    ],
    [
      "handshakes/s (open, challenge, connect, hello-ok, close), sequential, 5 s",
      `≥ ${TARGETS.hsSeq} /s`,
      `**${hsCell(hs)}**${cpuNote(hs)}`,
      mark(typeof hs.handshakesPerSec === "number" ? hs.handshakesPerSec >= TARGETS.hsSeq : null),
      `${hsCell(b.handshakeSeq)}${cpuNote(b.handshakeSeq, "bare")}`,
      pct(hs.handshakesPerSec, b.handshakeSeq?.handshakesPerSec),
      ...oCols.hsSeq!,
    ],
    [
      "handshakes/s, 20 concurrent workers, 5 s",
      "–",
      `**${hsCell(o.handshake20)}**${cpuNote(o.handshake20)}`,
      "",
      "–",
      "–",
      ...oCols.hs20!,
    ],
  ];
  const table = (head: string[], body: string[][]) =>
    [
      `| ${head.join(" | ")} |`,
      `|${head.map(() => "---").join("|")}|`,
      ...body.map((r) => `| ${r.join(" | ")} |`),
    ]
      .join("\n");

  const ocSection = renderOpenclaw(o, table);

  let second: string;
  const gb = o.gwbench;
  if (!gb || gb.unavailable) {
    second = `gwbench.mjs was not run: ${gb?.unavailable ?? "unknown reason"}.`;
  } else {
    const gi = gb.idle ?? {};
    const gf = gb.idleFresh ?? {};
    const idleCell = (r: Any) =>
      r.error
        ? `error: ${r.error}`
        : `${gwbenchIdlePerConn(r) ?? "n/a"} KB (${fmtInt(r.rssBefore?.mainKB)} → ${
          fmtInt(r.rssAfterHold?.mainKB)
        } kB)`;
    second = table(["measurement", "gwbench.mjs (Node 20, `ws`)", "tests/_bench_client.ts"], [
      ["`health`, 1 × 64", rpcCell(gb.health1x64), rpcCell(h1)],
      ["`health`, 50 × 8", rpcCell(gb.health50x8), rpcCell(o.health50x8)],
      ["handshakes, sequential", hsCell(gb.handshakeSeq), hsCell(hs)],
      ["handshakes, 20 concurrent", hsCell(gb.handshake20), hsCell(o.handshake20)],
      [
        `RSS per idle connection, fresh gw (${fmtInt(gf.stillOpen)} held)`,
        idleCell(gf),
        `${idle.perConnKB ?? "n/a"} KB (${fmtInt(idle.rssBeforeKB)} → ${
          fmtInt(idle.rssAfterSettleKB)
        } kB)`,
      ],
      [
        `RSS per idle connection, same gw after the load runs (${fmtInt(gi.stillOpen)} held)`,
        idleCell(gi),
        "–",
      ],
    ]);
    second += `\n\ngwbench.mjs runs after the Deno client against the same gw process. Its idle
mode ran twice: on that process, where memory freed after the load runs is simply reused
(hence a figure near zero), and on a fresh gw started for it. Its client CPU share was ${
      gb.health1x64?.clientCpuPct ?? "n/a"
    } % at 1 × 64 (one Node thread), against ${h1.clientCpuPct ?? "n/a"} % for the Deno client.`;
  }

  return `# Benchmarks

How fast gw starts, how little memory it holds, and how many requests and
handshakes it serves, beside the real OpenClaw gateway measured the same way in
the same run, on a 2-core machine like the one behind the protocol notes'
baseline (WIRE.md §10). The load client runs in its own process; on two cores it
competes with the gateway for CPU, so the throughput figures are a floor, not a
ceiling.

Run it with:

\`\`\`
deno task bench               # prints one JSON object, rewrites this file
deno task bench --no-write    # same, leaves this file alone
deno task bench --no-openclaw # without the OpenClaw phase
deno task bench --quick       # smoke run with short durations (never rewrites this file)
\`\`\`

(${runMinutes}.)

It starts gw exactly as a user does (\`deno task start --port P
--state-dir <fresh tmp> --token T\`). Start-up is timed from spawn until a
client, poll-connecting every ~2 ms, completes the handshake (connect.challenge
→ connect → hello-ok); one unmeasured run warms the module cache first. The
other figures come from one long-lived gw process: RSS is VmRSS of that process;
load comes from \`tests/_bench_client.ts\` (native WebSocket, pre-serialised
request frames, responses matched by slicing out the id), then from the
reference tool \`gwbench.mjs\` as a second opinion. OpenClaw comes last, alone
on the machine (see [below](#openclaw-in-the-same-run)).

## Results (${date})

Machine: ${machineLine}

${
    table([
      "measurement",
      "target",
      `gw (${date})`,
      "",
      "bare Deno responder (same run)",
      "gw / bare",
      ...ocHead,
    ], rows)
  }

The bare Deno responder (\`tests/_bare_responder.ts\`: \`Deno.serve\` + \`Deno.upgradeWebSocket\`
with gw's V8 flags, a challenge, a fixed hello-ok and a pre-serialised ${
    b.payloadBytes ?? "n/a"
  }-byte answer the size of
gw's \`health\` payload, no auth, no validation, each figure taken right after gw's) is the ceiling
on this machine at this moment; absolute figures drift between runs as the VM's speed changes,
so the gw / bare ratio is the stable figure.

Start-up detail: runs ${st.runsMs.map((x: number) => `${x} ms`).join(", ")}; gw printed its
"listening on" line at a median of ${
    st.listenLineMs?.medianMs ?? "n/a"
  } ms after spawn. RSS after all the
load runs: ${o.rssAfterLoadKB ? `${Math.round(o.rssAfterLoadKB / 102.4) / 10} MB` : "n/a"}.

## OpenClaw in the same run

${ocSection}

## Second opinion: gwbench.mjs

${second}

## Reading the numbers

- OpenClaw's figures swing a lot between runs (WIRE.md §10 saw 242–953 req/s at 1 × 64
  over five runs, and its main process between 630 MB and 1.4 GB under load, with large GC
  cycles): compare orders of magnitude, not the last digit. Its start-up is one run, not a
  median, and its idle RSS is read 30 s after hello, as WIRE.md §10 did.
- "gw CPU" is the gateway process's CPU time over the measured window divided by the window
  (100 % = one core). gw's JavaScript runs on one thread, so a figure near 100 % means gw
  itself is the limit; gw and client together near 200 % means the machine is. "OpenClaw
  CPU" is the same for all its processes (the main \`openclaw-gateway\` one runs worker
  threads too). "other work" (shown from 10 %) is CPU that neither used during the
  window: other processes, which skew that row.
- RSS includes memory V8 has not handed back yet: garbage from a burst of handshakes
  counts until the next major GC, so gw's per-connection figure is an upper bound.
  It also counts only pages a process newly touches: OpenClaw's main process already
  holds ~800 MB when the connections open, and what they need may partly land in
  memory it had, so its per-connection figure can come out low (WIRE.md §10 read its
  figure after a GC, 633 → 650 MB; this bench does not wait for one).
- The raw JSON of a run is what \`deno task bench --no-write\` prints on stdout.
`;
}

// ------------------------------------------------------------------ run

let exitCode = 0;
try {
  const result = await main();
  console.log(JSON.stringify(result));
  if (WRITE) {
    // Sections this bench does not render (bench:chat's, bench:cron's, the soak and scale
    // summary) are kept as they are, in their order.
    const doc = renderDoc(result);
    const ours = new Set(doc.split("\n").filter((l) => l.startsWith("## ")));
    let kept = "";
    try {
      const old = await Deno.readTextFile(DOC);
      for (const m of old.matchAll(/^## .*$/gm)) {
        if (ours.has(m[0])) continue;
        const next = old.indexOf("\n## ", m.index! + 3);
        kept += `${old.slice(m.index!, next < 0 ? undefined : next + 1).trimEnd()}\n\n`;
      }
    } catch { /* no doc yet */ }
    await Deno.writeTextFile(DOC, kept ? `${doc.trimEnd()}\n\n${kept.trimEnd()}\n` : doc);
    log(`wrote ${DOC}`);
  }
} catch (e) {
  log(`failed: ${(e as Error).stack ?? e}`);
  exitCode = 1;
} finally {
  await cleanup();
}
Deno.exit(exitCode);
