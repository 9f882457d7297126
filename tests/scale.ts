/**
 * Scale: `deno task scale [--conns 10000] [--seconds 10] [--out FILE]`.
 *
 * Starts gw as a child exactly as `deno task start` runs it (under
 * `bash -c "ulimit -n ...; exec deno run ..."`), then:
 * 1. measures `health` latency with nothing held (tests/_bench_client.ts `rpc`
 *    mode, 1 connection, 1 request in flight, --seconds long);
 * 2. opens N idle authenticated connections from a second client process
 *    (tests/_bench_client.ts `idle` mode, 24 handshakes at a time: under the
 *    default `gateway.maxPreauthPerIp` of 32, so the cap never bites) and, once
 *    gw holds them all (counted from /proc/PID/fd), reads gw's RSS and measures
 *    `health` latency again while they are held.
 *
 * Prints one JSON summary line; exits 1 when fewer than N connections were held,
 * total RSS exceeds 400 MB, or `health` p99 while held exceeds 20 ms.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { TEST_TOKEN } from "./_helpers.ts";
import { procRead, ROOT, rssMB, startGw, withFdLimit } from "./_bench_util.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    conns: { type: "string", default: "10000" },
    seconds: { type: "string", default: "10" },
    out: { type: "string" },
  },
  strict: true,
});
const CONNS = Number(flags.conns);
const SECONDS = Number(flags.seconds);
const TARGET_RSS_MB = 400;
const TARGET_P99_MS = 20;

const log = (s: string): void => console.error(`[scale] ${s}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function startGwShell(stateDir: string): Promise<{ proc: Deno.ChildProcess; url: string }> {
  return startGw(stateDir, { raiseFdLimit: true });
}

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

async function main(): Promise<number> {
  const stateDir = await Deno.makeTempDir({ prefix: "gw-scale-" });
  const gw = await startGwShell(stateDir);
  const pid = gw.proc.pid;
  const limit = procRead(`/proc/${pid}/limits`).match(/Max open files\s+(\d+)/)?.[1];
  log(`gw pid ${pid} at ${gw.url} (open-files limit ${limit})`);
  let failed = true;
  try {
    await sleep(3000);
    const rssIdleMB = rssMB(pid);
    log(`idle RSS ${rssIdleMB} MB; health latency with nothing held (${SECONDS} s)`);
    const before = await result(
      client(gw.url, [...healthArgs, "--seconds", String(SECONDS), "--warmup", "1"]),
    );
    log(`opening ${CONNS} idle connections`);
    const t0 = performance.now();
    const idle = client(gw.url, [
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
    const deadline = performance.now() + 120_000;
    while (performance.now() < deadline) {
      held = sockets(pid) - 1; // minus the listener
      if (held >= CONNS) break;
      await sleep(500);
    }
    const openSeconds = Math.round((performance.now() - t0) / 100) / 10;
    await sleep(2000);
    const rssHeldMB = rssMB(pid);
    log(`${held} sockets held after ${openSeconds} s; RSS ${rssHeldMB} MB; health latency`);
    const during = await result(
      client(gw.url, [...healthArgs, "--seconds", String(SECONDS), "--warmup", "1"]),
    );
    const heldAfter = sockets(pid) - 1;
    const rssAfterMB = rssMB(pid);
    const idleResult = await idleOut;
    const lat = (r: Record<string, unknown>) =>
      (r.latencyMs ?? null) as { p50: number; p99: number; max?: number } | null;
    const perConnKB = Math.round((rssHeldMB - rssIdleMB) * 1024 / CONNS * 10) / 10;
    // gw's socket count includes a few of its own (KV, the health client); the idle
    // client's own count of sockets still open at its end is the exact figure.
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
    failed = reasons.length > 0;
    const summary = {
      command: `deno task scale --conns ${CONNS} --seconds ${SECONDS}`,
      date: new Date().toISOString(),
      deno: Deno.version.deno,
      ok: !failed,
      reasons,
      gwOpenFilesLimit: limit ? Number(limit) : null,
      connections: {
        target: CONNS,
        stillOpenAtEnd: stillOpen,
        gwSockets: held,
        gwSocketsAfterHealthRun: heldAfter,
        openSeconds,
      },
      rssMB: { idle: rssIdleMB, held: rssHeldMB, afterHealthRun: rssAfterMB },
      rssPerConnKB: perConnKB,
      healthMs: { nothingHeld: lat(before), held: lat(during) },
      healthRequests: { nothingHeld: before.completed, held: during.completed },
      clients: { before, during, idle: idleResult },
    };
    console.log(JSON.stringify(summary));
    if (flags.out) await Deno.writeTextFile(flags.out, JSON.stringify(summary, null, 2) + "\n");
    log(failed ? `FAIL: ${reasons.join("; ")}` : "PASS");
  } finally {
    gw.proc.kill("SIGTERM");
    const killer = setTimeout(() => gw.proc.kill("SIGKILL"), 15_000);
    await gw.proc.status;
    clearTimeout(killer);
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
  return failed ? 1 : 0;
}

Deno.exit(await main());
