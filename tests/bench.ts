/**
 * `deno task bench`: gw's performance figures, measured the way users run it.
 *
 *   deno task bench [--quick] [--no-write]
 *
 * 1. start to first hello-ok: spawn `deno run <gw task flags> main.ts start …` and
 *    poll-connect every ~2 ms until a client completes the handshake
 *    (one unmeasured warm-up run, then 5 runs, fresh state dir each).
 * 2. idle RSS 3 s after start, and RSS per idle authenticated connection
 *    (1,000 connections held by a separate client process).
 * 3. `health` req/s and latency: 1 conn × 64 in flight, 50 conns × 8 in flight.
 * 4. handshakes/s: sequential, and 20 concurrent workers.
 * 5. a second opinion from /work/shared/tools/gwbench.mjs (Node), when Node is there.
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

const { values: flags } = parseArgs({
  args: Deno.args,
  options: { quick: { type: "boolean" }, "no-write": { type: "boolean" } },
  strict: true,
});
const QUICK = flags.quick === true;
const WRITE = !QUICK && flags["no-write"] !== true;

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

/** Targets from the brief, and OpenClaw 2026.9.6 (WIRE.md §10, same kind of 2-core VM). */
const TARGETS = {
  startMs: 150,
  idleRssMB: 60,
  perConnKB: 40,
  rpc1x64: 40_000,
  rpc1x64P99Ms: 10,
  hsSeq: 800,
};
const OPENCLAW = {
  start: "12.4 s",
  idleRss: "836 MB",
  perConn: "~80 KB",
  rpc1x64: "786 req/s, p99 235 ms",
  rpc50x8: "458 req/s, p99 1.19 s",
  hsSeq: "193 /s",
  hs20: "508 /s",
};

// ------------------------------------------------------------------ processes

const children = new Set<Deno.ChildProcess>();
const tempDirs = new Set<string>();
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
  await Promise.all([...children].map((c) => stopChild(c)));
  for (const d of tempDirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  tempDirs.clear();
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
  kind: "gw" | "bare";
  child: Deno.ChildProcess;
  pid: number;
  port: number;
  url: string;
  spawnedAt: number;
  /** performance.now() when gw printed "listening on", or null if it never did. */
  listening: Promise<number | null>;
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

/** Spawn a server that prints "listening on" on stdout once it accepts connections. */
function spawnServer(kind: Gw["kind"], args: string[], port: number): Gw {
  const cmd = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
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
  void (async () => {
    let buf = "";
    let found = false;
    try {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        if (found) continue;
        buf = (buf + chunk).slice(-400);
        if (buf.includes("listening on")) {
          found = true;
          listening.resolve(now());
        }
      }
    } catch { /* closed */ }
    listening.resolve(null);
  })();
  return {
    kind,
    child,
    pid: child.pid,
    port,
    url: `ws://127.0.0.1:${port}`,
    spawnedAt,
    listening: listening.promise,
    stderrTail: () => tail,
  };
}

const CONNECT = JSON.stringify({
  type: "req",
  id: "1",
  method: "connect",
  params: {
    minProtocol: 3,
    maxProtocol: 4,
    client: { id: "cli", version: "bench", platform: "linux", mode: "cli" },
    role: "operator",
    scopes: ["operator.admin"],
    auth: { token: TOKEN },
  },
});

/** One handshake attempt: true on hello-ok. Closes the socket either way. */
function tryHandshake(url: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    let ws: WebSocket;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        ws.close();
      } catch { /* closing */ }
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    try {
      ws = new WebSocket(url);
    } catch {
      finish(false);
      return;
    }
    ws.onmessage = (ev) => {
      const d = String(ev.data);
      // Test the response first: hello-ok lists "connect.challenge" among its events.
      if (d.startsWith('{"type":"res","id":"1"')) {
        finish(d.startsWith('{"type":"res","id":"1","ok":true'));
      } else if (d.includes('"connect.challenge"')) ws.send(CONNECT);
    };
    ws.onerror = () => finish(false);
    ws.onclose = () => finish(false);
  });
}

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
      if (await tryHandshake(gw.url, 2000)) {
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
            cpu0 = [cpuSeconds(gw.pid), now()];
            sys0 = cpuTotals();
          } else if (line === "@@measure-end" && cpu0) {
            const [c0, t0] = cpu0;
            gwCpuPct = Math.round(((cpuSeconds(gw.pid) - c0) / ((now() - t0) / 1000)) * 100);
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
const fmtMs = (n: unknown) =>
  typeof n === "number" ? `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms` : "n/a";
const mark = (ok: boolean | null) => ok === null ? "?" : ok ? "✅" : "❌";

function rpcCell(r: Any): string {
  if (!r || r.error) return `error: ${r?.error ?? "missing"}`;
  const l = r.latencyMs ?? r.latency;
  return `${fmtInt(r.reqPerSec)} req/s, p50 ${fmtMs(l?.p50)}, p99 ${fmtMs(l?.p99)}`;
}

function hsCell(r: Any): string {
  if (!r || r.error) return `error: ${r?.error ?? "missing"}`;
  const l = r.latencyMs ?? r.handshakeLatencyMs;
  return `${fmtInt(r.handshakesPerSec)} /s, p50 ${fmtMs(l?.p50)}, p99 ${fmtMs(l?.p99)}`;
}

function gwbenchIdlePerConn(r: Any): number | null {
  const before = r?.rssBefore?.mainKB;
  const after = r?.rssAfterHold?.mainKB;
  const n = r?.stillOpen ?? r?.connections;
  return typeof before === "number" && typeof after === "number" && n > 0
    ? Math.round(((after - before) / n) * 10) / 10
    : null;
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
  const cpuNote = (r: Any, who = "gw") => {
    const c = who === "gw" ? r?.gwCpuPct : r?.serverCpuPct;
    return typeof c === "number"
      ? ` (CPU: ${who} ${c} %, client ${r.clientCpuPct} %${
        typeof r.otherCpuPct === "number" && r.otherCpuPct >= 10
          ? `, other work ${r.otherCpuPct} %`
          : ""
      })`
      : "";
  };
  const rows = [
    [
      "spawn → first hello-ok, warm cache, fresh state dir (median of " + st.runsMs.length + ")",
      `≤ ${TARGETS.startMs} ms`,
      `**${st.medianMs} ms** [${st.minMs}–${st.maxMs}]`,
      mark(st.medianMs <= TARGETS.startMs),
      "–",
      "–",
      OPENCLAW.start,
    ],
    [
      "idle RSS, 3 s after start, no connections",
      `≤ ${TARGETS.idleRssMB} MB`,
      `**${rssMB ?? "n/a"} MB**`,
      mark(typeof rssMB === "number" ? rssMB <= TARGETS.idleRssMB : null),
      `${bRssMB ?? "n/a"} MB`,
      diff(rssMB, bRssMB, "MB"),
      OPENCLAW.idleRss,
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
      OPENCLAW.perConn,
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
      OPENCLAW.rpc1x64,
    ],
    [
      "`health`, 50 conns × 8 in flight, 10 s",
      "–",
      `**${rpcCell(o.health50x8)}**${cpuNote(o.health50x8)}`,
      "",
      "–",
      "–",
      OPENCLAW.rpc50x8,
    ],
    [
      "handshakes/s (open, challenge, connect, hello-ok, close), sequential, 5 s",
      `≥ ${TARGETS.hsSeq} /s`,
      `**${hsCell(hs)}**${cpuNote(hs)}`,
      mark(typeof hs.handshakesPerSec === "number" ? hs.handshakesPerSec >= TARGETS.hsSeq : null),
      `${hsCell(b.handshakeSeq)}${cpuNote(b.handshakeSeq, "bare")}`,
      pct(hs.handshakesPerSec, b.handshakeSeq?.handshakesPerSec),
      OPENCLAW.hsSeq,
    ],
    [
      "handshakes/s, 20 concurrent workers, 5 s",
      "–",
      `**${hsCell(o.handshake20)}**${cpuNote(o.handshake20)}`,
      "",
      "–",
      "–",
      OPENCLAW.hs20,
    ],
  ];
  const table = (head: string[], body: string[][]) =>
    [
      `| ${head.join(" | ")} |`,
      `|${head.map(() => "---").join("|")}|`,
      ...body.map((r) => `| ${r.join(" | ")} |`),
    ]
      .join("\n");

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
handshakes it serves, measured on the same kind of 2-core machine as the
OpenClaw 2026.9.6 baseline in the protocol notes (WIRE.md §10). The load client
runs in its own process; on two cores it competes with gw for CPU, so the
throughput figures are a floor, not a ceiling.

Run it with:

\`\`\`
deno task bench            # about 2 minutes; prints one JSON object, rewrites this file
deno task bench --no-write # same, leaves this file alone
deno task bench --quick    # smoke run with short durations (never rewrites this file)
\`\`\`

It starts gw exactly as a user does (\`deno task start --port P
--state-dir <fresh tmp> --token T\`). Start-up is timed from spawn until a
client, poll-connecting every ~2 ms, completes the handshake (connect.challenge
→ connect → hello-ok); one unmeasured run warms the module cache first. The
other figures come from one long-lived gw process: RSS is VmRSS of that process;
load comes from \`tests/_bench_client.ts\` (native WebSocket, pre-serialised
request frames, responses matched by slicing out the id), then from the
reference tool \`gwbench.mjs\` as a second opinion.

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
      "OpenClaw 2026.9.6",
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

## Second opinion: gwbench.mjs

${second}

## Reading the numbers

- The OpenClaw figures were taken with gwbench.mjs on a 2-core VM with 16–28 % CPU steal;
  they swing a lot between runs. Compare orders of magnitude, not the last digit. Its idle
  RSS was read 30 s after hello and its per-connection figure with 200 connections.
- "gw CPU" is the gateway process's CPU time over the measured window divided by the window
  (100 % = one core). gw's JavaScript runs on one thread, so a figure near 100 % means gw
  itself is the limit; gw and client together near 200 % means the machine is. "other work"
  (shown from 10 %) is CPU that neither used during the window: other processes, which
  skew that row.
- RSS includes memory V8 has not handed back yet: garbage from a burst of handshakes
  counts until the next major GC, so the per-connection figure is an upper bound.
- The raw JSON of a run is what \`deno task bench --no-write\` prints on stdout.
`;
}

// ------------------------------------------------------------------ run

let exitCode = 0;
try {
  const result = await main();
  console.log(JSON.stringify(result));
  if (WRITE) {
    await Deno.writeTextFile(DOC, renderDoc(result));
    log(`wrote ${DOC}`);
  }
} catch (e) {
  log(`failed: ${(e as Error).stack ?? e}`);
  exitCode = 1;
} finally {
  await cleanup();
}
Deno.exit(exitCode);
