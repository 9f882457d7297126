/**
 * Load client for `deno task bench` (tests/bench.ts). Runs in its own
 * process so its CPU and memory are not charged to the gateway.
 *
 *   deno run -P=test tests/_bench_client.ts --mode rpc --url ws://127.0.0.1:P --token T
 *     [--conns 1] [--inflight 64] [--seconds 10] [--warmup 1] [--method health]
 *   ... --mode handshake [--conns 1] [--seconds 5] [--warmup 1]
 *   ... --mode idle --conns 1000 [--settle 3] [--pid GW_PID] [--open-concurrency 16]
 *
 * Prints exactly one JSON line on stdout. Kept lean on purpose: the native
 * WebSocket, request frames built by string concatenation, and responses
 * matched by slicing the id out of the text (JSON.parse only as a fallback).
 * Every loop is bounded in time; the process exits by itself.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    mode: { type: "string", default: "rpc" },
    url: { type: "string", default: "ws://127.0.0.1:18789" },
    token: { type: "string", default: "" },
    method: { type: "string", default: "health" },
    conns: { type: "string", default: "1" },
    inflight: { type: "string", default: "1" },
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "1" },
    settle: { type: "string", default: "3" },
    pid: { type: "string", default: "" },
    "open-concurrency": { type: "string", default: "16" },
  },
  strict: true,
});

const URL_ = a.url!;
const CONNS = Math.max(1, Math.min(20_000, Number(a.conns)));
const INFLIGHT = Math.max(1, Math.min(4096, Number(a.inflight)));
const SECONDS = Math.max(0.1, Math.min(120, Number(a.seconds)));
const WARMUP = Math.max(0, Math.min(30, Number(a.warmup)));
const SETTLE = Math.max(0, Math.min(60, Number(a.settle)));
const OPEN_CONC = Math.max(1, Math.min(30, Number(a["open-concurrency"])));

/** The connect frame: always the first request, id "1". */
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
    auth: { token: a.token },
  },
});
const HELLO_PREFIX = '{"type":"res","id":"1","ok":true';
const RES_PREFIX = '{"type":"res","id":"';
const RES_ID_AT = RES_PREFIX.length;
const EVENT_PREFIX = '{"type":"event"';
const OK_SUFFIX = '","ok":true';
const REQ_HEAD = '{"type":"req","id":"';
const REQ_TAIL = `","method":${JSON.stringify(a.method)}}`;

/** Markers on stderr let bench.ts sample the gateway's CPU over the measured window. */
const mark = (what: "start" | "end") =>
  Deno.stderr.writeSync(new TextEncoder().encode(`@@measure-${what}\n`));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.now();

// ------------------------------------------------------------------ helpers

/** Growable array of latencies (ms). */
class Samples {
  buf = new Float64Array(1 << 16);
  n = 0;
  push(v: number): void {
    if (this.n === this.buf.length) {
      if (this.n >= 1 << 24) return; // bounded: 16M samples is plenty
      const b = new Float64Array(this.buf.length * 2);
      b.set(this.buf);
      this.buf = b;
    }
    this.buf[this.n++] = v;
  }
  stats(): Record<string, number> | null {
    if (this.n === 0) return null;
    const s = this.buf.subarray(0, this.n).sort();
    const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
    let sum = 0;
    for (let i = 0; i < s.length; i++) sum += s[i]!;
    const r = (v: number) => Math.round(v * 1000) / 1000;
    return {
      p50: r(q(0.5)),
      p90: r(q(0.9)),
      p99: r(q(0.99)),
      max: r(s[s.length - 1]!),
      mean: r(sum / s.length),
      n: s.length,
    };
  }
}

/** CPU seconds (user+system) used by this process so far. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * VmRSS (kB) of another process. Deno refuses direct reads of /proc without
 * --allow-all, so this asks `cat` (run permission).
 */
function rssKB(pid: string): number | null {
  if (!pid) return null;
  try {
    const o = new Deno.Command("cat", { args: [`/proc/${pid}/status`], stderr: "null" })
      .outputSync();
    const m = new TextDecoder().decode(o.stdout).match(/VmRSS:\s+(\d+)/);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function bump(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

/**
 * Open one socket and complete the handshake. Resolves with the open socket,
 * or with an error string. `onFrame` takes over message handling afterwards.
 */
function handshake(
  timeoutMs: number,
): Promise<{ ws: WebSocket; ms: number } | { error: string; ws?: WebSocket }> {
  return new Promise((resolve) => {
    const t0 = now();
    let done = false;
    let ws: WebSocket;
    const finish = (r: { ws: WebSocket; ms: number } | { error: string; ws?: WebSocket }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      finish({ error: "timeout", ws });
      try {
        ws.close();
      } catch { /* closing */ }
    }, timeoutMs);
    try {
      ws = new WebSocket(URL_);
    } catch (e) {
      finish({ error: `exception:${(e as Error).name}` });
      return;
    }
    let sawChallenge = false;
    ws.onmessage = (ev) => {
      const d = ev.data as string;
      if (!sawChallenge) {
        if (typeof d === "string" && d.includes('"connect.challenge"')) {
          sawChallenge = true;
          ws.send(CONNECT);
        }
        return;
      }
      if (typeof d === "string" && d.startsWith(HELLO_PREFIX)) finish({ ws, ms: now() - t0 });
      else if (typeof d === "string" && d.startsWith('{"type":"res"')) {
        let code = "error";
        try {
          code = JSON.parse(d).error?.code ?? code;
        } catch { /* keep */ }
        finish({ error: code, ws });
      }
    };
    ws.onerror = () => finish({ error: "socket-error", ws });
    ws.onclose = (e) => finish({ error: `closed:${e.code}`, ws });
  });
}

function waitClose(ws: WebSocket, ms: number): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    ws.onclose = () => {
      clearTimeout(t);
      resolve();
    };
  });
}

/** Open `n` authenticated sockets, `conc` handshakes at a time (gw caps pre-auth sockets per IP). */
async function openMany(n: number, conc: number, deadlineMs: number) {
  const socks: WebSocket[] = [];
  const failures: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < n && now() < deadlineMs) {
      next++;
      const r = await handshake(10_000);
      if ("ms" in r) socks.push(r.ws);
      else {
        bump(failures, r.error);
        try {
          r.ws?.close();
        } catch { /* closing */ }
        await sleep(20);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(conc, n) }, worker));
  return { socks, failures };
}

// ------------------------------------------------------------------ modes

async function runRpc() {
  const t0 = now();
  const { socks, failures } = await openMany(CONNS, OPEN_CONC, t0 + 60_000);
  const setupMs = now() - t0;
  if (!socks.length) return { error: "no connections", connectFailures: failures };

  // Send times by id; ids are a global counter, and at most conns*inflight are
  // outstanding, so a ring of a power of two above that never collides.
  let ring = 1;
  while (ring < socks.length * INFLIGHT * 4) ring <<= 1;
  const mask = ring - 1;
  const sentAt = new Float64Array(ring);
  const lat = new Samples();
  const errors: Record<string, number> = {};
  let nextId = 2;
  let measuring = false;
  let stop = false;
  let completed = 0;
  let bad = 0;
  let outstanding = 0;
  let closedDuring = 0;
  let tStart = 0;

  const send = (ws: WebSocket) => {
    const id = nextId++;
    sentAt[id & mask] = now();
    outstanding++;
    ws.send(REQ_HEAD + id + REQ_TAIL);
  };
  for (const ws of socks) {
    ws.onmessage = (ev) => {
      const d = ev.data;
      if (typeof d !== "string" || d.startsWith(EVENT_PREFIX)) return; // tick, health, …
      let id: number;
      let ok: boolean;
      const end = d.indexOf('"', RES_ID_AT);
      if (d.startsWith(RES_PREFIX) && end > RES_ID_AT) {
        id = Number(d.slice(RES_ID_AT, end));
        ok = d.startsWith(OK_SUFFIX, end);
      } else {
        try {
          const f = JSON.parse(d);
          id = Number(f.id);
          ok = f.ok === true;
        } catch {
          return;
        }
      }
      outstanding--;
      if (measuring) {
        completed++;
        lat.push(now() - sentAt[id & mask]!);
        if (!ok) {
          bad++;
          let code = "error";
          try {
            code = JSON.parse(d).error?.code ?? code;
          } catch { /* keep */ }
          bump(errors, code);
        }
      }
      if (!stop) send(ws);
    };
    ws.onclose = () => {
      closedDuring++;
    };
    for (let i = 0; i < INFLIGHT; i++) send(ws);
  }
  await sleep(WARMUP * 1000);
  measuring = true;
  mark("start");
  tStart = now();
  const cpu0 = cpuSeconds();
  await sleep(SECONDS * 1000);
  measuring = false;
  stop = true;
  mark("end");
  const elapsed = (now() - tStart) / 1000;
  const cpu = cpuSeconds() - cpu0;
  const drainUntil = now() + 5000;
  while (outstanding > 0 && now() < drainUntil) await sleep(5);
  for (const ws of socks) {
    ws.onclose = null;
    ws.close();
  }
  return {
    connections: socks.length,
    inflight: INFLIGHT,
    connectFailures: failures,
    setupMs: Math.round(setupMs),
    measuredSeconds: Math.round(elapsed * 1000) / 1000,
    completed,
    errors,
    reqPerSec: Math.round(completed / elapsed),
    okPerSec: Math.round((completed - bad) / elapsed),
    latencyMs: lat.stats(),
    socketsClosedDuringRun: closedDuring,
    unansweredAtEnd: outstanding,
    clientCpuPct: Math.round((cpu / elapsed) * 1000) / 10,
  };
}

async function runHandshake() {
  const lat = new Samples();
  const errors: Record<string, number> = {};
  let ok = 0;
  let measuring = false;
  let stop = false;
  const worker = async () => {
    while (!stop) {
      const r = await handshake(10_000);
      if ("ms" in r) {
        if (measuring && !stop) {
          ok++;
          lat.push(r.ms);
        }
        r.ws.close();
        await waitClose(r.ws, 2000);
      } else {
        if (measuring) bump(errors, r.error);
        try {
          r.ws?.close();
        } catch { /* closing */ }
        await sleep(20);
      }
    }
  };
  const workers = Array.from({ length: CONNS }, worker);
  await sleep(WARMUP * 1000);
  measuring = true;
  mark("start");
  const tStart = now();
  const cpu0 = cpuSeconds();
  await sleep(SECONDS * 1000);
  stop = true;
  mark("end");
  const elapsed = (now() - tStart) / 1000;
  const cpu = cpuSeconds() - cpu0;
  await Promise.race([Promise.all(workers), sleep(12_000)]);
  return {
    workers: CONNS,
    measuredSeconds: Math.round(elapsed * 1000) / 1000,
    handshakesOk: ok,
    errors,
    handshakesPerSec: Math.round((ok / elapsed) * 10) / 10,
    latencyMs: lat.stats(),
    clientCpuPct: Math.round((cpu / elapsed) * 1000) / 10,
  };
}

async function runIdle() {
  const rssBeforeKB = rssKB(a.pid!);
  const t0 = now();
  const { socks, failures } = await openMany(CONNS, OPEN_CONC, t0 + 90_000);
  const setupMs = now() - t0;
  const rssAfterOpenKB = rssKB(a.pid!);
  let closed = 0;
  for (const ws of socks) {
    ws.onmessage = null;
    ws.onclose = () => closed++;
  }
  await sleep(SETTLE * 1000);
  const rssAfterSettleKB = rssKB(a.pid!);
  const held = socks.length - closed;
  for (const ws of socks) {
    ws.onclose = null;
    ws.close();
  }
  const perConnKB = rssBeforeKB !== null && rssAfterSettleKB !== null && held > 0
    ? Math.round(((rssAfterSettleKB - rssBeforeKB) / held) * 10) / 10
    : null;
  return {
    connections: socks.length,
    stillOpen: held,
    connectFailures: failures,
    setupMs: Math.round(setupMs),
    settleSeconds: SETTLE,
    rssBeforeKB,
    rssAfterOpenKB,
    rssAfterSettleKB,
    perConnKB,
  };
}

// ------------------------------------------------------------------ main

// A hard stop, whatever happens.
const hardStop = setTimeout(() => {
  console.log(JSON.stringify({ mode: a.mode, error: "client hard timeout" }));
  Deno.exit(1);
}, (WARMUP + SECONDS + SETTLE + 150) * 1000);

let result: Record<string, unknown>;
try {
  if (a.mode === "rpc") result = await runRpc();
  else if (a.mode === "handshake") result = await runHandshake();
  else if (a.mode === "idle") result = await runIdle();
  else result = { error: `unknown --mode ${a.mode}` };
} catch (e) {
  result = { error: String(e) };
}
clearTimeout(hardStop);
console.log(
  JSON.stringify({ mode: a.mode, method: a.mode === "rpc" ? a.method : undefined, ...result }),
);
// Give close frames a moment to leave, then exit without waiting on the peer.
await sleep(100);
Deno.exit(0);
