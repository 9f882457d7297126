/**
 * Scale: `deno task scale [--conns 10000] [--seconds 10] [--server gw|openclaw|both] [--out FILE]`.
 *
 * Starts the gateway as a child under a raised open-files limit (`bash -c
 * "ulimit -n ...; exec ..."`): gw exactly as `deno task start` runs it, or the
 * real OpenClaw gateway from the install `.ci/run` keeps in ~/.cache/gw-compat
 * (tests/_openclaw.ts, started as the bench starts it: isolated home, loopback,
 * token auth, offline config; its idle RSS is read 30 s after its first
 * hello-ok, as WIRE.md §10 did). `both` measures gw, then OpenClaw, one after
 * the other in the same run. Then, for each:
 * 1. measures `health` latency with nothing held (tests/_bench_client.ts `rpc`
 *    mode, 1 connection, 1 request in flight, --seconds long);
 * 2. opens N idle authenticated connections from a second client process
 *    (tests/_bench_client.ts `idle` mode, 24 handshakes at a time: under gw's
 *    default `gateway.maxPreauthPerIp` of 32, so the cap never bites) and, once
 *    the gateway holds them all (sockets counted from /proc/PID/fd over the
 *    count before), reads its RSS and measures `health` latency again while
 *    they are held.
 *
 * Prints one JSON summary line; exits 1 when gw held fewer than N connections,
 * its total RSS exceeded 400 MB, or its `health` p99 while held exceeded 20 ms.
 * OpenClaw's figures are reported against the same targets but never fail the
 * run (exit 2 when it could not be measured at all).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { TEST_TOKEN } from "./_helpers.ts";
import { procRead, ROOT, rssMB, startGw, stopGw, withFdLimit } from "./_bench_util.ts";
import { findOpenclaw, openclawDir, startOpenclawGateway } from "./_openclaw.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    conns: { type: "string", default: "10000" },
    seconds: { type: "string", default: "10" },
    server: { type: "string", default: "gw" },
    out: { type: "string" },
  },
  strict: true,
});
const CONNS = Number(flags.conns);
const SECONDS = Number(flags.seconds);
const SERVERS = flags.server === "both" ? ["gw", "openclaw"] : [flags.server];
if (
  !(CONNS >= 1) || !(SECONDS > 0) || !SERVERS.every((s) => s === "gw" || s === "openclaw")
) {
  console.error(
    "usage: deno task scale [--conns N] [--seconds N] [--server gw|openclaw|both] [--out FILE]",
  );
  Deno.exit(2);
}
const TARGET_RSS_MB = 400;
const TARGET_P99_MS = 20;
/** OpenClaw's idle RSS is read this long after its first hello-ok (as the bench and WIRE.md §10). */
const OPENCLAW_IDLE_SECONDS = 30;

const log = (s: string): void => console.error(`[scale] ${s}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function sockets(pid: number): number {
  const o = new Deno.Command("find", {
    args: [`/proc/${pid}/fd`, "-mindepth", "1", "-lname", "socket:*"],
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  return new TextDecoder().decode(o.stdout).split("\n").filter(Boolean).length;
}

function client(url: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command("bash", {
    args: withFdLimit([
      Deno.execPath(),
      "run",
      "-P=test",
      "tests/_bench_client.ts",
      "--url",
      url,
      "--token",
      TEST_TOKEN,
      ...args,
    ]),
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).spawn();
}

async function result(p: Deno.ChildProcess): Promise<Record<string, unknown>> {
  const o = await p.output();
  const line = new TextDecoder().decode(o.stdout).trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line);
  } catch {
    return { error: `no JSON from client: ${line.slice(0, 200)}` };
  }
}

const healthArgs = ["--mode", "rpc", "--method", "health", "--conns", "1", "--inflight", "1"];

/** A gateway under test: where it listens, whose memory counts, how to stop it. */
interface Server {
  kind: "gw" | "openclaw";
  label: string;
  url: string;
  /** The process that holds the sockets and whose RSS is the figure. */
  pid: number;
  /** Every process of the gateway (OpenClaw runs helpers), for the total RSS. */
  treeRssMB: () => number;
  /** RSS with nothing connected, read when the server is settled. */
  idleRssMB: number;
  extra: Record<string, unknown>;
  stop: () => Promise<void>;
}

async function startGwServer(): Promise<Server> {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-scale-" });
  const gw = await startGw(stateDir, { raiseFdLimit: true });
  const pid = gw.proc.pid;
  await sleep(3000);
  return {
    kind: "gw",
    label: `gw (Deno ${Deno.version.deno})`,
    url: gw.url,
    pid,
    treeRssMB: () => rssMB(pid),
    idleRssMB: rssMB(pid),
    extra: { idleRssAfterSeconds: 3 },
    stop: async () => {
      await stopGw(gw);
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    },
  };
}

/** The real OpenClaw gateway, started as tests/bench.ts starts it, under the same fd limit as gw. */
async function startOpenclawServer(): Promise<Server> {
  const oc = findOpenclaw();
  if (!oc) throw new Error(`no usable OpenClaw install in ${openclawDir()} (.ci/run installs it)`);
  const g = await startOpenclawGateway(oc, TEST_TOKEN, { env: { OPENCLAW_SKIP_CRON: "1" } });
  log(`OpenClaw ${oc.version} answered hello-ok after ${g.helloSeconds} s; idle RSS in 30 s`);
  await sleep(OPENCLAW_IDLE_SECONDS * 1000);
  return {
    kind: "openclaw",
    label: `OpenClaw ${oc.version} (Node ${oc.nodeVersion})`,
    url: g.url,
    pid: g.mainPid,
    treeRssMB: g.treeRssMB,
    idleRssMB: rssMB(g.mainPid),
    extra: {
      version: oc.version,
      node: oc.nodeVersion,
      helloSeconds: g.helloSeconds,
      idleRssAfterSeconds: OPENCLAW_IDLE_SECONDS,
      idleTreeRssMB: g.treeRssMB(),
    },
    stop: g.stop,
  };
}

/** The measurements of one server; `reasons` lists the targets it missed. */
async function measure(
  srv: Server,
): Promise<{ summary: Record<string, unknown>; reasons: string[] }> {
  const pid = srv.pid;
  const limit = procRead(`/proc/${pid}/limits`).match(/Max open files\s+(\d+)/)?.[1];
  log(`${srv.label}: pid ${pid} at ${srv.url} (open-files limit ${limit})`);
  const rssIdleMB = srv.idleRssMB;
  log(`idle RSS ${rssIdleMB} MB; health latency with nothing held (${SECONDS} s)`);
  const before = await result(
    client(srv.url, [...healthArgs, "--seconds", String(SECONDS), "--warmup", "1"]),
  );
  const baseSockets = sockets(pid);
  log(`opening ${CONNS} idle connections`);
  const t0 = performance.now();
  const idle = client(srv.url, [
    "--mode",
    "idle",
    "--conns",
    String(CONNS),
    "--open-concurrency",
    "24",
    "--pid",
    String(pid),
    "--settle",
    String(SECONDS + 20),
  ]);
  const idleOut = result(idle);
  let held = 0;
  const deadline = performance.now() + 150_000;
  while (performance.now() < deadline) {
    held = sockets(pid) - baseSockets;
    if (held >= CONNS) break;
    await sleep(500);
  }
  const openSeconds = Math.round((performance.now() - t0) / 100) / 10;
  await sleep(2000);
  const rssHeldMB = rssMB(pid);
  const treeHeldMB = srv.treeRssMB();
  log(`${held} sockets held after ${openSeconds} s; RSS ${rssHeldMB} MB; health latency`);
  const during = await result(
    client(srv.url, [...healthArgs, "--seconds", String(SECONDS), "--warmup", "1"]),
  );
  const heldAfter = sockets(pid) - baseSockets;
  const rssAfterMB = rssMB(pid);
  const idleResult = await idleOut;
  const lat = (r: Record<string, unknown>) =>
    (r.latencyMs ?? null) as { p50: number; p99: number; max?: number } | null;
  const perConnKB = Math.round((rssHeldMB - rssIdleMB) * 1024 / CONNS * 10) / 10;
  // The idle client's own count of sockets still open at its end is the exact figure.
  const stillOpen = typeof idleResult.stillOpen === "number" ? idleResult.stillOpen : 0;
  const reasons: string[] = [];
  if (stillOpen < CONNS) reasons.push(`only ${stillOpen} of ${CONNS} connections held`);
  if (Math.max(rssHeldMB, rssAfterMB) > TARGET_RSS_MB) {
    reasons.push(`RSS ${Math.max(rssHeldMB, rssAfterMB)} MB > ${TARGET_RSS_MB} MB`);
  }
  const p99 = lat(during)?.p99;
  if (!(typeof p99 === "number" && p99 <= TARGET_P99_MS)) {
    reasons.push(`health p99 while held ${p99} ms > ${TARGET_P99_MS} ms`);
  }
  const summary = {
    server: srv.kind,
    label: srv.label,
    ...srv.extra,
    targetsMet: reasons.length === 0,
    missed: reasons,
    openFilesLimit: limit ? Number(limit) : null,
    connections: {
      target: CONNS,
      stillOpenAtEnd: stillOpen,
      sockets: held,
      socketsAfterHealthRun: heldAfter,
      openSeconds,
    },
    rssMB: { idle: rssIdleMB, held: rssHeldMB, afterHealthRun: rssAfterMB, treeHeld: treeHeldMB },
    rssPerConnKB: perConnKB,
    healthMs: { nothingHeld: lat(before), held: lat(during) },
    healthRequests: { nothingHeld: before.completed, held: during.completed },
    clients: { before, during, idle: idleResult },
  };
  log(`${srv.label}: ${reasons.length ? `missed: ${reasons.join("; ")}` : "targets met"}`);
  return { summary, reasons };
}

async function main(): Promise<number> {
  const runs: Record<string, unknown>[] = [];
  let failed = false;
  let unmeasured = false;
  for (const kind of SERVERS) {
    let srv: Server;
    try {
      srv = kind === "gw" ? await startGwServer() : await startOpenclawServer();
    } catch (e) {
      log(`${kind} could not be measured: ${(e as Error).message}`);
      runs.push({ server: kind, error: (e as Error).message });
      if (kind === "gw") failed = true;
      else unmeasured = true;
      continue;
    }
    try {
      const { summary, reasons } = await measure(srv);
      runs.push(summary);
      if (kind === "gw" && reasons.length) failed = true;
    } finally {
      await srv.stop();
    }
  }
  const summary = {
    command: `deno task scale --conns ${CONNS} --seconds ${SECONDS} --server ${flags.server}`,
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    ok: !failed,
    targets: { rssMB: TARGET_RSS_MB, healthP99Ms: TARGET_P99_MS },
    runs,
  };
  console.log(JSON.stringify(summary));
  if (flags.out) await Deno.writeTextFile(flags.out, JSON.stringify(summary, null, 2) + "\n");
  log(failed ? "FAIL" : "PASS");
  return failed ? 1 : unmeasured ? 2 : 0;
}

Deno.exit(await main());
