/**
 * Soak: `deno task soak [--minutes 5] [--clients 1000] [--server gw|openclaw]
 * [--chat-per-second 2] [--out FILE]`.
 *
 * Starts gw as a child exactly as `deno task start` runs it (under
 * `bash -c "ulimit -n ...; exec deno run ..."` so 1,000+ sockets fit), with the
 * fake Anthropic API (tests/_fake_anthropic.ts, real SSE wire format) as its
 * model, then for the given time holds N authenticated clients that send steady
 * RPC traffic (`health`, `sessions.list`, `chat.history`), runs a few chat turns
 * a second (`chat.send`), has two `every` cron jobs firing (a systemEvent into
 * main and an isolated agentTurn against the fake), and lets clients leave and
 * new ones connect.
 *
 * Every 5 s it samples gw's RSS with its anonymous and file-backed parts
 * (/proc/PID/status: VmRSS, RssAnon, RssFile), open fds and sockets
 * (/proc/PID/fd), KV size (gw.kv + -wal + -shm), and from `status` the JS heap
 * and event-loop delay p99/max (`processMemory`, `eventLoop`).
 *
 * FAILS (exit 1) when the median RSS of the last window is more than 10% above
 * the reference, or when any request (or handshake) went unanswered within its
 * timeout (30 s), or gw dropped a client. Windows: warm-up is the first
 * min(60 s, a third of the run); the plateau is the window right after it and
 * the last window is the end of the run, each min(60 s, a third of the run)
 * long. The reference is the plateau, and for runs of 10 minutes or more the
 * 5-minute value (median of minute 4–5), as issue 11's target puts it; both
 * growths are reported.
 *
 * `--server openclaw` runs the same client and workload against the real
 * OpenClaw gateway (tests/_openclaw.ts, the install .ci/run keeps in
 * ~/.cache/gw-compat) with the same fake as its Anthropic provider
 * (`api: "anthropic-messages"`); RSS and fds are then those of its
 * `openclaw-gateway` process (its whole process tree is sampled too) and the
 * store size is its state dir; heap and event-loop delay come from its own
 * `status` (`processMemory`, `eventLoop`), as for gw.
 *
 * Prints a table of samples and one JSON summary line. With --out the summary
 * and every sample go to that file, rewritten after each sample while the run
 * goes on (so an interrupted long run keeps its data).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { startFakeAnthropic } from "./_fake_anthropic.ts";
import { TEST_TOKEN } from "./_helpers.ts";
import { pct, procRead, rssMB, startGw, stopGw } from "./_bench_util.ts";
import { findOpenclaw, openclawDir, startOpenclawGateway } from "./_openclaw.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    minutes: { type: "string", default: "5" },
    clients: { type: "string", default: "1000" },
    server: { type: "string", default: "gw" },
    "chat-per-second": { type: "string", default: "2" },
    out: { type: "string" },
  },
  strict: true,
});
const MINUTES = Number(flags.minutes);
const CLIENTS = Number(flags.clients);
const SERVER = flags.server;
const CHAT_PER_SECOND = Number(flags["chat-per-second"]);
if (
  !(MINUTES > 0) || !(CLIENTS >= 1) || !Number.isInteger(CLIENTS) ||
  (SERVER !== "gw" && SERVER !== "openclaw") || !(CHAT_PER_SECOND >= 0)
) {
  console.error(
    "usage: deno task soak [--minutes N] [--clients N] [--server gw|openclaw] " +
      "[--chat-per-second N] [--out FILE]",
  );
  Deno.exit(2);
}
const DURATION_MS = MINUTES * 60_000;
const WARM_MS = Math.min(60_000, DURATION_MS / 3);
const WINDOW_MS = Math.min(60_000, DURATION_MS / 3);
const SAMPLE_MS = 5_000;
const REQUEST_TIMEOUT_MS = 30_000;
const RPC_PER_SECOND = 50;
const CHURN_PER_SECOND = 5;
const OPEN_CONCURRENCY = 16;

const log = (s: string): void => console.error(`[soak] ${s}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ counters

const counts = {
  sent: 0,
  answered: 0,
  errors: 0,
  unanswered: 0,
  handshakes: 0,
  handshakeFailures: 0,
  closedByServer: 0,
  left: 0,
  chatSent: 0,
  chatFinal: 0,
  cronEvents: 0,
};
const errorSamples: string[] = [];
/** Close code and reason of clients gw dropped (seconds since this process started). */
const drops: { atS: number; code: number; reason: string }[] = [];

interface Pending {
  at: number;
  resolve: (v: unknown) => void;
}

/** One raw protocol client: connect frame, requests with ids, events skipped unparsed. */
class Client {
  ws: WebSocket;
  pending = new Map<string, Pending>();
  seq = 1;
  open = false;
  leaving = false;
  onEvent: ((text: string) => void) | null = null;

  constructor(url: string) {
    this.ws = new WebSocket(url);
  }

  /** Open and authenticate; false when the handshake failed or timed out. */
  connect(): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), REQUEST_TIMEOUT_MS);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        if (ok) {
          this.open = true;
          counts.handshakes++;
        } else {
          counts.handshakeFailures++;
          try {
            this.ws.close();
          } catch { /* already closed */ }
        }
        resolve(ok);
      };
      this.ws.onopen = () =>
        this.ws.send(JSON.stringify({
          type: "req",
          id: "c",
          method: "connect",
          params: {
            minProtocol: 3,
            maxProtocol: 4,
            client: { id: "cli", version: "soak", platform: "linux", mode: "cli" },
            role: "operator",
            scopes: ["operator.admin"],
            auth: { token: TEST_TOKEN },
          },
        }));
      this.ws.onerror = () => done(false);
      this.ws.onclose = () => done(false);
      this.ws.onmessage = (ev) => {
        const t = String(ev.data);
        if (!t.startsWith('{"type":"res","id":"c"')) return;
        const ok = t.startsWith('{"type":"res","id":"c","ok":true');
        if (!ok && errorSamples.length < 5) errorSamples.push(t.slice(0, 300));
        this.ws.onmessage = (e) => this.message(String(e.data));
        this.ws.onclose = (e) => this.closed(e);
        this.ws.onerror = null;
        done(ok);
      };
    });
  }

  message(t: string): void {
    if (t.startsWith('{"type":"res"')) {
      const m = JSON.parse(t) as { id: string; ok: boolean; payload?: unknown; error?: unknown };
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      counts.answered++;
      if (!m.ok) {
        counts.errors++;
        if (errorSamples.length < 5) errorSamples.push(t.slice(0, 300));
      }
      p.resolve(m.ok ? m.payload : undefined);
      if (this.leaving && this.pending.size === 0) this.ws.close();
    } else if (this.onEvent) this.onEvent(t);
  }

  closed(e: CloseEvent): void {
    this.open = false;
    if (!this.leaving) {
      counts.closedByServer++;
      if (drops.length < 20) {
        drops.push({ atS: Math.round(performance.now() / 1000), code: e.code, reason: e.reason });
      }
    }
    // Whatever was pending is unanswered for good.
    for (const _ of this.pending.values()) counts.unanswered++;
    this.pending.clear();
  }

  request(method: string, params: unknown = {}): Promise<unknown> {
    return new Promise((resolve) => {
      if (!this.open) return resolve(undefined);
      const id = String(this.seq++);
      this.pending.set(id, { at: performance.now(), resolve });
      counts.sent++;
      this.ws.send(JSON.stringify({ type: "req", id, method, params }));
    });
  }

  /** Count requests older than the timeout as unanswered (and forget them). */
  sweep(now: number): void {
    for (const [id, p] of this.pending) {
      if (now - p.at > REQUEST_TIMEOUT_MS) {
        this.pending.delete(id);
        counts.unanswered++;
        p.resolve(undefined);
      }
    }
    if (this.leaving && this.pending.size === 0 && this.open) this.ws.close();
  }

  /** Leave once every request in flight has its answer (or timed out). */
  leave(): void {
    this.leaving = true;
    if (this.pending.size === 0) this.ws.close();
  }
}

// ------------------------------------------------------------------ gw child

/** The gateway under soak: where it listens, whose figures count, how to stop it. */
interface Server {
  label: string;
  url: string;
  /** The process that holds the sockets: its RSS, fds and sockets are sampled. */
  pid: number;
  /** RSS of its whole process tree, MB. */
  treeRssMB: () => number;
  /** Bytes of its store (gw: gw.kv with -wal/-shm; OpenClaw: its state dir). */
  storeBytes: () => number;
  stop: () => Promise<void>;
}

const MODEL = "claude-sonnet-4-6";

/** gw as `deno task start` runs it, with the fake as its Anthropic provider. */
async function startGwServer(fakeUrl: string): Promise<Server> {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-soak-" });
  await Deno.writeTextFile(
    `${stateDir}/gw.json`,
    JSON.stringify({
      agents: { defaults: { model: `anthropic/${MODEL}` } },
      models: { providers: { anthropic: { apiKey: "soak-key", baseUrl: fakeUrl } } },
    }),
  );
  const gw = await startGw(stateDir, { raiseFdLimit: true });
  log(`state ${stateDir}`);
  return {
    label: `gw (Deno ${Deno.version.deno})`,
    url: gw.url,
    pid: gw.proc.pid,
    treeRssMB: () => rssMB(gw.proc.pid),
    storeBytes: () => kvBytes(stateDir),
    stop: async () => {
      await stopGw(gw);
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    },
  };
}

/** The real OpenClaw gateway with the same fake as its Anthropic provider, cron on. */
async function startOpenclawServer(fakeUrl: string): Promise<Server> {
  const oc = findOpenclaw();
  if (!oc) throw new Error(`no usable OpenClaw install in ${openclawDir()} (.ci/run installs it)`);
  const g = await startOpenclawGateway(oc, TEST_TOKEN, {
    config: {
      agents: { defaults: { model: { primary: `anthropic/${MODEL}` } } },
      models: {
        catalogRefresh: { enabled: false },
        providers: {
          anthropic: {
            baseUrl: fakeUrl,
            apiKey: "soak-key",
            api: "anthropic-messages",
            models: [{ id: MODEL, name: "Claude Sonnet (soak fake)" }],
          },
        },
      },
    },
  });
  log(`OpenClaw ${oc.version} answered hello-ok after ${g.helloSeconds} s; home ${g.home}`);
  return {
    label: `OpenClaw ${oc.version} (Node ${oc.nodeVersion})`,
    url: g.url,
    pid: g.mainPid,
    treeRssMB: g.treeRssMB,
    storeBytes: () => duBytes(`${g.home}/.openclaw`),
    stop: g.stop,
  };
}

/** RssAnon and RssFile of `pid` in MB (one decimal). */
function rssSplit(pid: number): { anonMB: number; fileMB: number } {
  const st = procRead(`/proc/${pid}/status`);
  const kB = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(st)?.[1] ?? NaN);
  return {
    anonMB: Math.round(kB("RssAnon") / 102.4) / 10,
    fileMB: Math.round(kB("RssFile") / 102.4) / 10,
  };
}

function duBytes(dir: string): number {
  const o = new Deno.Command("du", { args: ["-sk", dir], stdout: "piped", stderr: "null" })
    .outputSync();
  return Number(new TextDecoder().decode(o.stdout).split(/\s/)[0] ?? 0) * 1024;
}

function fdCounts(pid: number): { fds: number; sockets: number } {
  const o = new Deno.Command("find", {
    args: [`/proc/${pid}/fd`, "-mindepth", "1", "-printf", "%l\\n"],
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  const lines = new TextDecoder().decode(o.stdout).split("\n").filter(Boolean);
  return { fds: lines.length, sockets: lines.filter((l) => l.startsWith("socket:")).length };
}

function kvBytes(stateDir: string): number {
  let n = 0;
  for (const suffix of ["", "-wal", "-shm"]) {
    try {
      n += Deno.statSync(`${stateDir}/gw.kv${suffix}`).size;
    } catch { /* not there */ }
  }
  return n;
}

// ------------------------------------------------------------------ main

interface Sample {
  t: number;
  rssMB: number;
  /** The anonymous part of RSS (heap, malloc): what a leak would grow. */
  anonMB: number;
  /** The file-backed part (the mapped binary, the KV file's pages): page cache the kernel can reclaim. */
  fileMB: number;
  heapMB: number | null;
  fds: number;
  sockets: number;
  kvKB: number;
  /** RSS of the server's whole process tree (OpenClaw runs helpers; gw is one process). */
  treeRssMB: number;
  loopP99Ms: number | null;
  loopMaxMs: number | null;
  clients: number;
}

async function openMany(url: string, n: number): Promise<Client[]> {
  const out: Client[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, n) }, async () => {
    while (next < n) {
      next++;
      const c = new Client(url);
      if (await c.connect()) out.push(c);
    }
  }));
  return out;
}

async function main(): Promise<number> {
  const fake = await startFakeAnthropic({ apiKey: "soak-key" });
  fake.script(() => ({ blocks: [{ type: "text", text: ["soak ", "reply ", "ok"] }], delayMs: 5 }));
  const gw = SERVER === "gw" ? await startGwServer(fake.url) : await startOpenclawServer(fake.url);
  const pid = gw.pid;
  const limit = procRead(`/proc/${pid}/limits`).match(/Max open files\s+(\d+)/)?.[1];
  log(`${gw.label}: pid ${pid} at ${gw.url} (open-files limit ${limit})`);
  const samples: Sample[] = [];
  let failed = false;
  try {
    const driver = new Client(gw.url);
    if (!(await driver.connect())) throw new Error("driver could not connect");
    driver.onEvent = (t) => {
      if (t.startsWith('{"type":"event","event":"cron"')) counts.cronEvents++;
      else if (t.startsWith('{"type":"event","event":"chat"') && t.includes('"state":"final"')) {
        counts.chatFinal++;
      }
    };
    await driver.request("cron.add", {
      name: "soak-main",
      schedule: { kind: "every", everyMs: 3_000 },
      sessionTarget: "main",
      payload: { kind: "systemEvent", text: "soak tick" },
    });
    await driver.request("cron.add", {
      name: "soak-isolated",
      schedule: { kind: "every", everyMs: 5_000 },
      sessionTarget: "isolated",
      payload: { kind: "agentTurn", message: "soak cron turn" },
      delivery: { mode: "none" },
    });
    const t0 = performance.now();
    log(`opening ${CLIENTS} clients`);
    const clients = await openMany(gw.url, CLIENTS);
    log(`${clients.length} clients connected in ${Math.round(performance.now() - t0)} ms`);

    const start = performance.now();
    const end = start + DURATION_MS;
    const methods = ["health", "sessions.list", "chat.history"] as const;
    const sessions = Array.from({ length: 10 }, (_, i) => `agent:main:soak-${i}`);
    let turn = 0;
    const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

    // Steady RPC traffic, in 100 ms ticks.
    const rpc = setInterval(() => {
      const live = clients.filter((c) => c.open);
      for (let i = 0; i < RPC_PER_SECOND / 10 && live.length; i++) {
        const m = pick([...methods]);
        const params = m === "chat.history"
          ? { sessionKey: pick(sessions), limit: 20 }
          : m === "sessions.list"
          ? { limit: 20 }
          : {};
        void pick(live).request(m, params);
      }
    }, 100);
    // Chat turns against the fake provider.
    const chat = CHAT_PER_SECOND > 0 && setInterval(() => {
      counts.chatSent++;
      void driver.request("chat.send", {
        sessionKey: sessions[turn % sessions.length],
        message: `soak turn ${turn}`,
        idempotencyKey: `soak-${turn++}`,
      });
    }, 1000 / CHAT_PER_SECOND);
    // Churn: some clients leave, as many new ones connect.
    /** Clients told to leave that still wait for answers (swept and counted like the rest). */
    const leavers = new Set<Client>();
    let churning = false;
    const churn = setInterval(() => {
      if (churning) return;
      churning = true;
      const leaving = clients.splice(0, CHURN_PER_SECOND);
      for (const c of leaving) {
        if (c.pending.size) leavers.add(c);
        c.leave();
        counts.left++;
      }
      void openMany(gw.url, leaving.length).then((fresh) => {
        clients.push(...fresh);
        churning = false;
      });
    }, 1000);
    const sweeper = setInterval(() => {
      const now = performance.now();
      for (const c of clients) c.sweep(now);
      for (const c of leavers) {
        c.sweep(now);
        if (c.pending.size === 0) leavers.delete(c);
      }
      driver.sweep(now);
    }, 1000);

    const header =
      "   t(s)  rss MB  anon MB  file MB  tree MB  heap MB    fds  socks   kv KB  loop p99  loop max  clients";
    console.log(header);
    while (performance.now() < end) {
      await sleep(Math.min(SAMPLE_MS, end - performance.now()));
      const st = await driver.request("status") as {
        processMemory?: { heapUsedBytes: number };
        eventLoop?: { delayP99Ms: number; delayMaxMs: number };
      } | undefined;
      const fd = fdCounts(pid);
      const s: Sample = {
        t: Math.round((performance.now() - start) / 1000),
        rssMB: rssMB(pid),
        ...rssSplit(pid),
        heapMB: st?.processMemory ? Math.round(st.processMemory.heapUsedBytes / 1e5) / 10 : null,
        fds: fd.fds,
        sockets: fd.sockets,
        kvKB: Math.round(gw.storeBytes() / 1024),
        treeRssMB: gw.treeRssMB(),
        loopP99Ms: st?.eventLoop?.delayP99Ms ?? null,
        loopMaxMs: st?.eventLoop?.delayMaxMs ?? null,
        clients: clients.filter((c) => c.open).length,
      };
      samples.push(s);
      if (flags.out) {
        await Deno.writeTextFile(
          flags.out,
          JSON.stringify({ partial: true, counts, drops, errorSamples, samples }) + "\n",
        );
      }
      console.log(
        [
          String(s.t).padStart(7),
          s.rssMB.toFixed(1).padStart(7),
          s.anonMB.toFixed(1).padStart(8),
          s.fileMB.toFixed(1).padStart(8),
          s.treeRssMB.toFixed(1).padStart(8),
          (s.heapMB?.toFixed(1) ?? "-").padStart(8),
          String(s.fds).padStart(6),
          String(s.sockets).padStart(6),
          String(s.kvKB).padStart(7),
          (s.loopP99Ms?.toFixed(1) ?? "-").padStart(9),
          (s.loopMaxMs?.toFixed(1) ?? "-").padStart(9),
          String(s.clients).padStart(8),
        ].join(" "),
      );
    }
    clearInterval(rpc);
    if (chat) clearInterval(chat);
    clearInterval(churn);
    // Let the last requests come back, then count what is still pending.
    const drainUntil = performance.now() + REQUEST_TIMEOUT_MS;
    while (performance.now() < drainUntil) {
      const pending = [driver, ...clients, ...leavers].reduce((n, c) => n + c.pending.size, 0);
      if (pending === 0 && !churning) break;
      await sleep(250);
    }
    clearInterval(sweeper);
    for (const c of [driver, ...clients, ...leavers]) c.sweep(Infinity);

    // ------------------------------------------------------------ verdict
    const warmEnd = WARM_MS / 1000;
    const win = WINDOW_MS / 1000;
    const plateau = samples.filter((s) => s.t > warmEnd && s.t <= warmEnd + win).map((s) =>
      s.rssMB
    );
    const last = samples.filter((s) => s.t > MINUTES * 60 - win).map((s) => s.rssMB);
    const medianOf = (from: number, to: number, k: "anonMB" | "fileMB") => {
      const xs = samples.filter((s) => s.t > from && s.t <= to).map((s) => s[k]);
      return xs.length ? pct(xs, 0.5, 1) : null;
    };
    const split = (k: "anonMB" | "fileMB") => ({
      plateauMedian: medianOf(warmEnd, warmEnd + win, k),
      fiveMinuteMedian: MINUTES >= 10 ? medianOf(240, 300, k) : null,
      lastMedian: medianOf(MINUTES * 60 - win, MINUTES * 60, k),
    });
    const plateauMB = plateau.length ? pct(plateau, 0.5, 1) : NaN;
    const lastMB = last.length ? pct(last, 0.5, 1) : NaN;
    const growth = Math.round((lastMB / plateauMB - 1) * 1000) / 10;
    const five = samples.filter((s) => s.t > 240 && s.t <= 300).map((s) => s.rssMB);
    const fiveMinMB = MINUTES >= 10 && five.length ? pct(five, 0.5, 1) : null;
    const growthFromFive = fiveMinMB === null
      ? null
      : Math.round((lastMB / fiveMinMB - 1) * 1000) / 10;
    const reasons: string[] = [];
    if (fiveMinMB !== null) {
      if (!(growthFromFive! <= 10)) {
        reasons.push(`RSS grew ${growthFromFive}% (5-minute value ${fiveMinMB} MB → ${lastMB} MB)`);
      }
    } else if (!(growth <= 10)) {
      reasons.push(`RSS grew ${growth}% (plateau ${plateauMB} MB → ${lastMB} MB)`);
    }
    if (counts.unanswered > 0) reasons.push(`${counts.unanswered} request(s) unanswered`);
    if (counts.handshakeFailures > 0) {
      reasons.push(`${counts.handshakeFailures} handshake(s) failed or unanswered`);
    }
    if (counts.closedByServer > 0) reasons.push(`${counts.closedByServer} client(s) dropped by gw`);
    failed = reasons.length > 0;
    const col = <K extends keyof Sample>(k: K) =>
      samples.map((s) => s[k]).filter((v): v is NonNullable<Sample[K]> => v !== null) as number[];
    const summary = {
      command: `deno task soak --minutes ${MINUTES} --clients ${CLIENTS} --server ${SERVER}` +
        ` --chat-per-second ${CHAT_PER_SECOND}`,
      server: gw.label,
      date: new Date().toISOString(),
      deno: Deno.version.deno,
      ok: !failed,
      reasons,
      minutes: MINUTES,
      clients: CLIENTS,
      windowsSeconds: {
        warmUp: [0, warmEnd],
        plateau: [warmEnd, warmEnd + win],
        last: [MINUTES * 60 - win, MINUTES * 60],
      },
      rssMB: {
        plateauMedian: plateauMB,
        fiveMinuteMedian: fiveMinMB,
        lastMedian: lastMB,
        anon: split("anonMB"),
        file: split("fileMB"),
        growthPct: growth,
        growthFromFiveMinutePct: growthFromFive,
        min: Math.min(...col("rssMB")),
        max: Math.max(...col("rssMB")),
        treeFirst: samples[0]?.treeRssMB ?? null,
        treeLast: samples.at(-1)?.treeRssMB ?? null,
        treeMax: Math.max(...col("treeRssMB")),
      },
      heapUsedMB: { first: samples[0]?.heapMB ?? null, last: samples.at(-1)?.heapMB ?? null },
      fds: { min: Math.min(...col("fds")), max: Math.max(...col("fds")) },
      sockets: { min: Math.min(...col("sockets")), max: Math.max(...col("sockets")) },
      kvKB: { first: samples[0]?.kvKB ?? null, last: samples.at(-1)?.kvKB ?? null },
      eventLoopMs: {
        p99Median: pct(col("loopP99Ms"), 0.5, 1),
        p99Max: Math.max(...col("loopP99Ms")),
        max: Math.max(...col("loopMaxMs")),
      },
      counts: { ...counts, fakeRequests: fake.requests.length },
      errorSamples,
      drops,
      samples: samples.length,
    };
    console.log(JSON.stringify(summary));
    if (flags.out) {
      await Deno.writeTextFile(
        flags.out,
        JSON.stringify({ ...summary, samples }, null, 2) + "\n",
      );
    }
    log(failed ? `FAIL: ${reasons.join("; ")}` : "PASS");
    for (const c of clients) c.leave();
    driver.leave();
  } finally {
    await gw.stop();
    await fake.close();
  }
  return failed ? 1 : 0;
}

Deno.exit(await main());
