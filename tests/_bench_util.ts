/**
 * What the benchmarks of the agent and the scheduler share: gw as a child
 * process exactly as `deno task gw start` runs it, /proc figures of another
 * process, percentiles, and rewriting one section of docs/benchmarks.md.
 */
import { gwRunArgs, TEST_TOKEN } from "./_helpers.ts";

/** The repository root. */
export const ROOT = new URL("../", import.meta.url).pathname;

/** Another process's /proc file (Deno asks for --allow-all to read those directly). */
export function procRead(path: string): string {
  const o = new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" }).outputSync();
  return new TextDecoder().decode(o.stdout);
}

/** VmRSS of `pid` in MB (one decimal). */
export function rssMB(pid: number): number {
  const m = procRead(`/proc/${pid}/status`).match(/VmRSS:\s+(\d+)/);
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}

/** User plus system CPU time of `pid` in ms (100 Hz ticks). */
export function cpuMs(pid: number): number {
  const st = procRead(`/proc/${pid}/stat`);
  const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** The `p` quantile of `xs`, rounded to `digits` decimals. */
export function pct(xs: number[], p: number, digits = 3): number {
  const s = [...xs].sort((a, b) => a - b);
  const f = 10 ** digits;
  return Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))]! * f) / f;
}

/** One process of a tree, from `ps`. */
export interface Proc {
  pid: number;
  ppid: number;
  rssKB: number;
  args: string;
}

/** `root` and all its descendants (root first), with their VmRSS; [] when `ps` fails. */
export function procTree(root: number): Proc[] {
  let text = "";
  try {
    const o = new Deno.Command("ps", {
      args: ["-e", "-o", "pid=,ppid=,rss=,args="],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    text = new TextDecoder().decode(o.stdout);
  } catch {
    return [];
  }
  const all: Proc[] = [];
  for (const line of text.split("\n")) {
    const m = line.match(/^\s*(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/);
    if (m) all.push({ pid: +m[1]!, ppid: +m[2]!, rssKB: +m[3]!, args: m[4]!.slice(0, 400) });
  }
  const tree = all.filter((p) => p.pid === root);
  for (let i = 0; i < tree.length; i++) {
    for (const p of all) if (p.ppid === tree[i]!.pid) tree.push(p);
  }
  return tree;
}

/** True while `pid` exists and is not a zombie. */
export function alive(pid: number): boolean {
  const st = procRead(`/proc/${pid}/stat`);
  return st !== "" && st.slice(st.lastIndexOf(")") + 2, st.lastIndexOf(")") + 3) !== "Z";
}

/** The connect frame (id "1") of an admin operator client with `token`, protocol 3–4. */
export function connectFrame(token: string, version = "bench"): string {
  return JSON.stringify({
    type: "req",
    id: "1",
    method: "connect",
    params: {
      minProtocol: 3,
      maxProtocol: 4,
      client: { id: "cli", version, platform: "linux", mode: "cli" },
      role: "operator",
      scopes: ["operator.admin"],
      auth: { token },
    },
  });
}

/**
 * One handshake attempt against any gateway: "ok" on hello-ok, else why not
 * ("socket-error", "timeout", "UNAVAILABLE/startup-sidecars", …). Closes the
 * socket either way.
 */
export function tryHandshake(url: string, token: string, timeoutMs: number): Promise<string> {
  const connect = connectFrame(token);
  return new Promise((resolve) => {
    let done = false;
    let ws: WebSocket;
    const finish = (why: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        ws.close();
      } catch { /* closing */ }
      resolve(why);
    };
    const timer = setTimeout(() => finish("timeout"), timeoutMs);
    try {
      ws = new WebSocket(url);
    } catch {
      finish("exception");
      return;
    }
    ws.onmessage = (ev) => {
      const d = String(ev.data);
      // Test the response first: hello-ok lists "connect.challenge" among its events.
      if (d.startsWith('{"type":"res","id":"1","ok":true')) finish("ok");
      else if (d.startsWith('{"type":"res","id":"1"')) {
        let why = "error";
        try {
          const e = JSON.parse(d).error;
          why = [e?.code ?? why, e?.details?.reason].filter(Boolean).join("/");
        } catch { /* keep */ }
        finish(why);
      } else if (d.includes('"connect.challenge"')) ws.send(connect);
    };
    ws.onerror = () => finish("socket-error");
    ws.onclose = () => finish("closed");
  });
}

/** A running gw child. */
export interface Child {
  proc: Deno.ChildProcess;
  pid: number;
  url: string;
}

/** The argv of `bash -c` that raises the open-file limit (to the hard limit at most), then execs `argv`. */
export function withFdLimit(argv: string[]): string[] {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  return [
    "-c",
    `ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec ${argv.map(q).join(" ")}`,
  ];
}

/**
 * Start `gw start` on a free port with `stateDir`; resolves once it listens.
 * `raiseFdLimit` runs it under {@link withFdLimit} (thousands of sockets).
 */
export async function startGw(
  stateDir: string,
  opts: { raiseFdLimit?: boolean } = {},
): Promise<Child> {
  const args = gwRunArgs("start", "--port", "0", "--state-dir", stateDir, "--token", TEST_TOKEN);
  const argv = [Deno.execPath(), ...args];
  const proc = new Deno.Command(opts.raiseFdLimit ? "bash" : argv[0]!, {
    args: opts.raiseFdLimit ? withFdLimit(argv) : args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
    const m = /listening on (ws:\/\/127\.0\.0\.1:\d+)/.exec(out);
    if (m) {
      void (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
      return { proc, pid: proc.pid, url: m[1]! };
    }
  }
  proc.kill("SIGKILL");
  throw new Error(`gw did not start: ${out}`);
}

/** Stop a gw child with SIGTERM and wait for it (SIGKILL after `graceMs`). */
export async function stopGw(c: Pick<Child, "proc">, graceMs = 15_000): Promise<void> {
  c.proc.kill("SIGTERM");
  const killer = setTimeout(() => c.proc.kill("SIGKILL"), graceMs);
  await c.proc.status;
  clearTimeout(killer);
}

/** Replace (or append) the section under `heading` in docs/benchmarks.md. */
export async function writeSection(heading: string, section: string): Promise<void> {
  const path = `${ROOT}docs/benchmarks.md`;
  const doc = await Deno.readTextFile(path);
  const start = doc.indexOf(heading);
  const next = start < 0 ? -1 : doc.indexOf("\n## ", start + 5);
  const out = start < 0
    ? `${doc.trimEnd()}\n\n${section}`
    : `${doc.slice(0, start)}${section}${next < 0 ? "" : doc.slice(next + 1)}`;
  await Deno.writeTextFile(path, out);
}
