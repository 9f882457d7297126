/**
 * Schema-aware params fuzzer: every method of methods/mod.ts, against ONE
 * in-process gateway (Telegram configured against tests/_telegram_api.ts, the
 * model against tests/_fake_anthropic.ts), over real sockets (admin operators;
 * node-role methods from a signed node connection).
 *
 * Generator: each method's zod params schema is turned into JSON Schema
 * (`z.toJSONSchema`, input side) and walked to build valid-ish params, which
 * are then mutated: wrong types, boundary numbers, huge strings, unicode /
 * bidi / NUL, deep nesting, extra fields, missing required fields, and own
 * `__proto__` / `constructor` / `prototype` keys. The sent JSON text is
 * parsed back and checked against the same zod schema locally, which splits
 * the cases into "schema-rejected" and "schema-valid".
 *
 * What is proven, per run:
 * - no crash: no unhandled rejection or uncaught error in the process, and the
 *   gateway still answers `health` on a fresh socket at the end;
 * - every request is answered within a timeout, never with an internal error;
 * - every schema-rejected case is answered ok:false INVALID_REQUEST;
 * - no state change from a rejected request: the observable state (gw.json
 *   bytes, config hash, sessions, cron jobs, device/node/Telegram pairing
 *   lists, exec approvals, heartbeat flags, TTS and voicewake settings, wizard
 *   status) is snapshotted before and after every batch and must be equal.
 *   That is exact because no batch contains a call that may legitimately change
 *   that state: schema-valid params are sent only to the read-only methods and
 *   to a few writes aimed at ids that cannot exist (READ_SAFE below); the
 *   destructive / mutating methods (config.*, sessions.delete/reset/compact,
 *   cron.*, channels.logout, update.run, skills.*, wizard.*, pairing, chat.send,
 *   agent, send, ...) only ever get schema-rejected params: their legitimate
 *   successes are excluded by construction. A sanity step shows the snapshot
 *   does see a real change (voicewake.set).
 *
 * Run: `deno task fuzz --cases 100000 [--seed N]`; tests/fuzz_params_test.ts
 * runs a CI-sized run.
 */
import { z } from "zod";
import { methods } from "../methods/mod.ts";
import type { MethodDef } from "../lib/server/method.ts";
import {
  type AnyFrame,
  connected,
  mulberry32,
  type RawClient,
  signedConnected,
  startTestGateway,
} from "./_helpers.ts";
import { TelegramApi } from "./_telegram_api.ts";
import { startFakeAnthropic } from "./_fake_anthropic.ts";

/** Methods that may get schema-valid params: success changes no snapshotted state. */
export const READ_SAFE: ReadonlySet<string> = new Set([
  "health",
  "status",
  "system-presence",
  "last-heartbeat",
  "logs.tail",
  "config.get",
  "config.schema",
  "models.list",
  "agents.list",
  "agent.identity.get",
  "skills.status",
  "skills.bins",
  "chat.history",
  "chat.abort",
  "channels.status",
  "sessions.list",
  "sessions.preview",
  "usage.status",
  "usage.cost",
  "cron.list",
  "cron.get",
  "cron.status",
  "cron.runs",
  "device.pair.list",
  "exec.approvals.get",
  "exec.approvals.node.get",
  "exec.approval.resolve",
  "node.list",
  "node.describe",
  "node.pair.list",
  "wizard.status",
  "tts.status",
  "tts.providers",
  "voicewake.get",
  "telegram.pairing.list",
]);

/** Options of {@link runParamsFuzz}. */
export interface ParamsFuzzOptions {
  cases: number;
  seed: number;
  /** Cases per batch (state is snapshotted around each). */
  batch?: number;
  log?: (line: string) => void;
}

/** The outcome of a run. */
export interface ParamsFuzzResult {
  seed: number;
  sent: number;
  schemaRejected: number;
  schemaValid: number;
  answeredOk: number;
  answeredError: number;
  unanswered: number;
  stateChecks: number;
  crashes: string[];
  problems: string[];
  elapsedMs: number;
  methodsCovered: number;
}

// ------------------------------------------------------------------ PRNG

/** A small seeded PRNG (mulberry32). */
export class Rng {
  /** A float in [0, 1). */
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** One element. */
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
}

// ------------------------------------------------------------------ generation

// deno-lint-ignore no-explicit-any
type Js = any;

const NASTY = [
  "\u0000",
  "\u202e",
  "\u2066",
  "\u200b",
  "\ufeff",
  "\ud800",
  "\udfff",
  "😀",
  "👩‍👩‍👧",
  "Z̤͔ͧ̑̓",
  "日本語",
  "../../etc/passwd",
  "..\\..\\x",
  "/etc/shadow",
  "%00",
  "${x}",
  "<script>",
  "'; DROP TABLE x;--",
  "\r\n",
  "constructor",
  "__proto__",
];
const PROTO_KEYS = ["__proto__", "constructor", "prototype"];
const NUMBERS = [0, -0, -1, 1, 0.5, -1e308, 1e308, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 2 ** 64];

function nastyString(r: Rng): string {
  const n = r.int(4) + 1;
  let s = "";
  for (let i = 0; i < n; i++) s += r.chance(0.5) ? r.pick(NASTY) : "x";
  return s;
}

/** A value the JSON Schema `s` (probably) accepts. */
function gen(s: Js, r: Rng, depth = 0): unknown {
  if (!s || typeof s !== "object" || depth > 8) return r.pick(["x", 1, true, null]);
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum)) return r.pick(s.enum);
  const alts = s.anyOf ?? s.oneOf;
  if (Array.isArray(alts) && alts.length) return gen(r.pick(alts), r, depth + 1);
  if (Array.isArray(s.allOf) && s.allOf.length) return gen(s.allOf[0], r, depth + 1);
  const type = Array.isArray(s.type) ? r.pick(s.type) : s.type;
  switch (type) {
    case "object": {
      const o: Record<string, unknown> = {};
      const req = new Set<string>(s.required ?? []);
      for (const [k, v] of Object.entries<Js>(s.properties ?? {})) {
        if (req.has(k) || r.chance(0.5)) o[k] = gen(v, r, depth + 1);
      }
      return o;
    }
    case "array": {
      const min = s.minItems ?? 0;
      const n = min + r.int(Math.min(3, (s.maxItems ?? min + 3) - min + 1));
      const items = s.prefixItems ?? [];
      return Array.from({ length: n }, (_, i) => gen(items[i] ?? s.items, r, depth + 1));
    }
    case "string": {
      if (s.format === "uuid") return crypto.randomUUID();
      const min = s.minLength ?? 0;
      const max = Math.min(s.maxLength ?? 12, 40);
      const len = Math.max(min, Math.min(max, 1 + r.int(8)));
      return r.chance(0.2) ? "main" : "x".repeat(len);
    }
    case "integer":
    case "number": {
      const lo = s.minimum ?? s.exclusiveMinimum ?? 0;
      const hi = s.maximum ?? s.exclusiveMaximum ?? lo + 100;
      return r.pick([lo, hi, Math.floor((lo + hi) / 2)]);
    }
    case "boolean":
      return r.chance(0.5);
    case "null":
      return null;
    default:
      return r.pick(["x", 1, true, {}, []]);
  }
}

function deep(r: Rng): unknown {
  let v: unknown = "leaf";
  const n = 20 + r.int(180);
  for (let i = 0; i < n; i++) v = r.chance(0.5) ? [v] : { a: v };
  return v;
}

/** A junk value of any type. */
function junk(r: Rng): unknown {
  switch (r.int(10)) {
    case 0:
      return r.pick(NUMBERS);
    case 1:
      return nastyString(r);
    case 2:
      return "A".repeat(r.pick([1000, 10_000, 60_000]));
    case 3:
      return deep(r);
    case 4:
      return null;
    case 5:
      return r.chance(0.5);
    case 6:
      return [junk(r), junk(r)];
    case 7:
      return { [r.pick(PROTO_KEYS)]: { polluted: true } };
    case 8:
      return "";
    default:
      return r.pick([12345, "x", [1], true, {}]);
  }
}

/** Set an own (enumerable) key, `__proto__` included. */
function put(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Mutate valid-ish params (an object most of the time). */
function mutate(params: unknown, schema: Js, r: Rng): unknown {
  if (r.chance(0.05)) return junk(r);
  const o: Record<string, unknown> = params && typeof params === "object" && !Array.isArray(params)
    ? { ...(params as Record<string, unknown>) }
    : {};
  const fields = Object.keys(schema?.properties ?? {});
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) {
    const f = fields.length ? r.pick(fields) : "x";
    switch (r.int(8)) {
      case 0:
        put(o, f, junk(r));
        break;
      case 1:
        put(o, f, r.pick(NUMBERS));
        break;
      case 2:
        put(o, f, (typeof o[f] === "string" ? o[f] : "") + nastyString(r));
        break;
      case 3:
        delete o[f];
        break;
      case 4:
        put(o, r.pick(["zzExtra", "", " ", "toString", "hasOwnProperty"]), junk(r));
        break;
      case 5:
        put(o, r.pick(PROTO_KEYS), r.chance(0.5) ? { isAdmin: true, scopes: ["x"] } : junk(r));
        break;
      case 6:
        put(o, f, deep(r));
        break;
      default:
        put(o, f, "B".repeat(r.pick([256, 4096, 50_000])));
    }
  }
  return o;
}

// ------------------------------------------------------------------ state

async function snapshot(c: RawClient, stateDir: string): Promise<string> {
  const call = async (m: string, p: unknown = {}): Promise<unknown> => {
    const res = await c.request(m, p);
    return res.ok ? res.payload : { error: res.error?.code };
  };
  let file: string | null = null;
  try {
    file = await Deno.readTextFile(`${stateDir}/gw.json`);
  } catch { /* absent */ }
  const cfg = await call("config.get") as AnyFrame;
  const status = await call("status") as AnyFrame;
  const sessions = await call("sessions.list") as AnyFrame;
  return JSON.stringify({
    file,
    hash: cfg?.hash,
    heartbeat: status?.heartbeat?.enabled,
    queued: status?.queuedSystemEvents,
    sessions: (sessions?.sessions ?? []).map((s: AnyFrame) => [s.key, s.updatedAt]),
    cron: await call("cron.list", { includeDisabled: true }),
    devices: await call("device.pair.list"),
    nodes: await call("node.pair.list"),
    telegram: await call("telegram.pairing.list"),
    approvals: await call("exec.approvals.get"),
    tts: await call("tts.status"),
    voicewake: await call("voicewake.get"),
    wizard: await call("wizard.status"),
    lastHeartbeat: await call("last-heartbeat"),
  });
}

// ------------------------------------------------------------------ run

interface Case {
  method: string;
  params: unknown;
  text: string;
  schemaOk: boolean;
  node: boolean;
}

function makeCase(def: MethodDef, js: Js, r: Rng, maxBytes: number): Case {
  for (;;) {
    const base = gen(js, r);
    const valid = READ_SAFE.has(def.name) && r.chance(0.3);
    const params = valid ? base : mutate(base, js, r);
    const text = JSON.stringify(params === undefined ? {} : params);
    if (text.length > maxBytes) continue;
    // The gateway reads absent or null params as {} (lib/server/gateway.ts); so does this check.
    const parsed = JSON.parse(text);
    const schemaOk = def.params.safeParse(parsed === null ? {} : parsed).success;
    // Mutating methods get schema-rejected params only (their successes are excluded).
    if (schemaOk && !READ_SAFE.has(def.name)) continue;
    return { method: def.name, params, text, schemaOk, node: def.scope === "node" };
  }
}

/** Run the params fuzzer; never throws for a finding (see `problems` and `crashes`). */
export async function runParamsFuzz(opts: ParamsFuzzOptions): Promise<ParamsFuzzResult> {
  const started = performance.now();
  const log = opts.log ?? (() => {});
  const batch = opts.batch ?? 200;
  const r = new Rng(opts.seed);
  const crashes: string[] = [];
  const problems: string[] = [];
  const problem = (p: string) => {
    if (problems.length < 50) problems.push(p.slice(0, 400));
  };
  const onReject = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    crashes.push(String((e.reason as Error)?.stack ?? e.reason));
  };
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    crashes.push(String(e.error?.stack ?? e.message));
  };
  globalThis.addEventListener("unhandledrejection", onReject);
  globalThis.addEventListener("error", onError);

  const botToken = "888888:AAparams-fuzz-token-abcdefghij";
  const botApi = await TelegramApi.start({ tokens: [botToken] });
  const fake = await startFakeAnthropic({ apiKey: "k-test" });
  const maxPayload = 1024 * 1024;
  const t = await startTestGateway({
    config: {
      gateway: { maxPayload },
      channels: { telegram: { botToken, apiRoot: botApi.apiRoot } },
      agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
      models: { providers: { anthropic: { apiKey: "k-test", baseUrl: fake.url } } },
    },
  });
  const res: ParamsFuzzResult = {
    seed: opts.seed,
    sent: 0,
    schemaRejected: 0,
    schemaValid: 0,
    answeredOk: 0,
    answeredError: 0,
    unanswered: 0,
    stateChecks: 0,
    crashes,
    problems,
    elapsedMs: 0,
    methodsCovered: 0,
  };
  const sockets: RawClient[] = [];
  try {
    const observer = await connected(t.url);
    sockets.push(observer);
    const admins: RawClient[] = [];
    for (let i = 0; i < 3; i++) admins.push(await connected(t.url));
    sockets.push(...admins);
    const node = await signedConnected(t.url, {
      role: "node",
      scopes: [],
      client: { id: "node-host", version: "t", platform: "linux", mode: "node" },
    });
    sockets.push(node);

    // Sanity: the snapshot sees a real change (voicewake.set), and is stable otherwise.
    const s0 = await snapshot(observer, t.stateDir);
    if (s0 !== await snapshot(observer, t.stateDir)) problem("snapshot is not stable at rest");
    const vw = await observer.request("voicewake.set", { triggers: ["fuzz-sanity"] });
    if (!vw.ok) problem(`voicewake.set sanity failed: ${JSON.stringify(vw.error)}`);
    if (s0 === await snapshot(observer, t.stateDir)) problem("snapshot missed a voicewake change");

    const defs = methods.map((def) => ({
      def,
      js: z.toJSONSchema(def.params as z.ZodType, { unrepresentable: "any", io: "input" }),
    }));
    const covered = new Set<string>();
    let before = await snapshot(observer, t.stateDir);
    let seq = 0;
    while (res.sent < opts.cases) {
      const n = Math.min(batch, opts.cases - res.sent);
      const waits: Promise<void>[] = [];
      for (let i = 0; i < n; i++) {
        const { def, js } = r.pick(defs);
        const c = makeCase(def, js, r, maxPayload / 2);
        covered.add(c.method);
        const sock = c.node ? node : r.pick(admins);
        const id = `p${++seq}`;
        if (c.schemaOk) res.schemaValid++;
        else res.schemaRejected++;
        res.sent++;
        sock.ws.send(`{"type":"req","id":"${id}","method":"${c.method}","params":${c.text}}`);
        waits.push(
          sock.next((f) => f.type === "res" && f.id === id, 15_000).then(
            (f: AnyFrame) => {
              if (f.ok) res.answeredOk++;
              else res.answeredError++;
              const msg = String(f.error?.message ?? "");
              if (!f.ok && /internal error/i.test(msg)) {
                problem(`${c.method}: internal error for ${c.text.slice(0, 200)}: ${msg}`);
              }
              if (!c.schemaOk && f.ok) {
                problem(`${c.method}: schema-rejected params accepted: ${c.text.slice(0, 200)}`);
              }
              if (!c.schemaOk && !f.ok && f.error?.code !== "INVALID_REQUEST") {
                problem(`${c.method}: rejected params got ${f.error?.code}: ${msg.slice(0, 200)}`);
              }
            },
            () => {
              res.unanswered++;
              problem(`${c.method}: no answer within 15 s for ${c.text.slice(0, 200)}`);
            },
          ),
        );
      }
      await Promise.all(waits);
      for (const s of sockets) {
        // Drop what was matched, so memory stays flat on long runs.
        s.frames.length = 0;
        if (s.isClosed) problem("the gateway closed a fuzzing socket");
      }
      const after = await snapshot(observer, t.stateDir);
      res.stateChecks++;
      if (after !== before) {
        problem(`state changed in a batch ending at case ${res.sent}: ${diff(before, after)}`);
        before = after;
      }
      if (problems.length >= 50 || sockets.some((s) => s.isClosed)) break;
      if (res.stateChecks % 50 === 0) log(`${res.sent} cases, ${problems.length} problems`);
    }
    res.methodsCovered = covered.size;
    const fresh = await connected(t.url);
    const h = await fresh.request("health");
    if (!h.ok) problem("health failed on a fresh socket after the run");
    await fresh.close();
  } catch (e) {
    problem(`run aborted: ${(e as Error).stack ?? e}`);
  } finally {
    for (const s of sockets) await s.close().catch(() => {});
    await t.stop();
    await fake.close();
    await botApi.close();
    await new Promise((ok) => setTimeout(ok, 50));
    globalThis.removeEventListener("unhandledrejection", onReject);
    globalThis.removeEventListener("error", onError);
  }
  res.elapsedMs = Math.round(performance.now() - started);
  return res;
}

function diff(a: string, b: string): string {
  const x = JSON.parse(a) as Record<string, unknown>;
  const y = JSON.parse(b) as Record<string, unknown>;
  return Object.keys(x)
    .filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k]))
    .map((k) =>
      `${k}: ${JSON.stringify(x[k]).slice(0, 150)} -> ${JSON.stringify(y[k]).slice(0, 150)}`
    )
    .join("; ");
}

if (import.meta.main) {
  const arg = (name: string, dflt: number): number => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
  };
  const cases = arg("cases", 100_000);
  const seed = arg("seed", 0x5eed1234);
  const out = await runParamsFuzz({
    cases,
    seed,
    log: (l) => console.error(l),
  });
  console.log(JSON.stringify({ ...out, problems: out.problems.slice(0, 20) }, null, 2));
  const failed = out.crashes.length || out.problems.length || out.unanswered ||
    out.sent !== cases;
  Deno.exit(failed ? 1 : 0);
}
