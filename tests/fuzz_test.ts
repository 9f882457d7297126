/**
 * A seeded frame fuzzer against ONE in-process gateway.
 *
 * Several thousand random and mutated frames go over a handful of
 * authenticated sockets (client cli/cli, operator.admin), plus a stream of
 * short-lived pre-auth sockets, plus two separate sockets for the cases that
 * are allowed to close a socket (an oversized frame, repeated unauthorized
 * calls). Generators: valid requests for every method of methods/mod.ts with
 * mutated params (wrong types, missing/extra fields, huge numbers, long
 * strings, nested junk, unicode, nulls), structurally broken frames (bad JSON,
 * wrong `type`, missing/numeric/huge id, extra keys, arrays, primitives) and
 * binary frames.
 *
 * Config writes (config.set/patch/apply) always carry a wrong `baseHash`
 * (or are invalid), so the compare-and-set refuses them and the run's
 * port/auth never change; the test checks gw.json is byte-identical after.
 *
 * Asserts:
 * - no uncaught error / unhandled rejection in the process (the gateway is
 *   in-process; outside a test either would kill `gw start`). The listener
 *   below keeps the process alive so the run can report every crash;
 * - every well-formed request (type "req", id a non-empty string of at most
 *   256 UTF-16 units, method a string) gets exactly one response with its id;
 *   every malformed frame gets at most one response (its own id or "invalid");
 * - no `UNAVAILABLE ... internal error` (a handler threw something that is
 *   not a GatewayError: an unvalidated input reached it);
 * - authenticated sockets are never closed by the gateway;
 * - pre-auth sockets are closed (1000/1002/1008/1009) and get at most one
 *   response, never hello-ok;
 * - afterwards: no connection is left in the gateway's counts, `health` answers
 *   on a fresh connection, gw.json is unchanged, and heap use is back near its
 *   baseline.
 *
 * Memory: `deno test` is not run with `--v8-flags=--expose-gc`. The test
 * first tries the Node way of getting a GC function at run time
 * (`node:v8` setFlagsFromString("--expose-gc") + `node:vm`
 * runInNewContext("gc"), which works on Deno 2.9). With it, heap figures are
 * taken after a full GC and the bound is tight (10 MB; the test's own
 * bookkeeping is dropped first). Without it, each figure is the minimum of
 * several `Deno.memoryUsage().heapUsed` samples taken 100 ms apart and the
 * bound is generous (30 MB): uncollected garbage alone measured 25-37 MB there,
 * so that mode catches only gross leaks.
 *
 * Seed: GW_FUZZ_SEED (decimal or 0x hex) overrides the default; it is printed
 * in the test name. Sizes: GW_FUZZ_FRAMES (authenticated frames, default 10000).
 */
import { TelegramApi } from "./_telegram_api.ts";
import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import {
  type AnyFrame,
  connected,
  connectParams,
  mulberry32,
  startTestGateway,
  TEST_TOKEN,
} from "./_helpers.ts";
import { methods } from "../methods/mod.ts";

const SEED = (Number(Deno.env.get("GW_FUZZ_SEED") ?? "0x6f1d2c3b") >>> 0) || 1;
const AUTH_FRAMES = Number(Deno.env.get("GW_FUZZ_FRAMES") ?? 10_000);
const AUTH_SOCKETS = 4;
const ROUND = 300;
const PREAUTH_SOCKETS = 160;
const PREAUTH_WAVE = 16;
/** maxPayload of the fuzzed gateway (small, so the oversized case is cheap). */
const MAX_PAYLOAD = 256 * 1024;
/** Frames on the main sockets stay well under it. */
const FRAME_BUDGET = 160 * 1024;
const WRONG_HASH = "0".repeat(64);
const HEAP_GROWTH_LIMIT_GC = 10 * 1024 * 1024;
const HEAP_GROWTH_LIMIT_NO_GC = 30 * 1024 * 1024;
const FRAME_KEYS = new Set(["type", "id", "method", "params", "traceparent", "expectedProfileId"]);

// ------------------------------------------------------------------ PRNG

class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
}

// ------------------------------------------------------------------ junk

const UNICODE = [
  "é",
  "日本語",
  "😀",
  "👩‍👩‍👧",
  "\u202e",
  "\u200b",
  "\u0000",
  "\ud800",
  "\udfff",
  "\uffff",
  "\ufeff",
  "𝕏",
  "ﷺ",
  "\n",
  "\t",
  '"',
  "\\",
  "'",
  "<script>",
  "%s%n",
  "${x}",
  "Ω≈ç√",
  "Z̤͔ͧ̑̓",
];
const KEYS = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "",
  " ",
  "id",
  "type",
  "method",
  "params",
  "ok",
  "payload",
  "error",
  "seq",
  "auth",
  "token",
  "password",
  "gateway",
  "日本語キー",
  "😀😀😀",
  "ключ",
  "a".repeat(300),
  "\u0000",
];
const HUGE_NUMBERS = [
  0,
  -0,
  1,
  -1,
  0.5,
  -1.5,
  1e308,
  -1e308,
  5e-324,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53) - 2,
  1e21,
  123456789012345680000,
  Number.MAX_VALUE,
];
/** Number literals only expressible in raw JSON text. */
const RAW_NUMBERS = [
  "1e400",
  "-1e400",
  "123456789012345678901234567890",
  "0.0000000000000000000000001",
  "-0",
  "1E+2",
  "9".repeat(400),
];

function unicodeStr(r: Rng, n: number): string {
  let s = "";
  while (s.length < n) s += r.pick(UNICODE);
  return s;
}

function shortStr(r: Rng): string {
  switch (r.int(7)) {
    case 0:
      return "";
    case 1:
      return r.pick(["main", "agent:main:main", "x", "true", "null", "0", "NaN", "-1", "health"]);
    case 2:
      return unicodeStr(r, r.range(1, 20));
    case 3:
      return r.pick(KEYS);
    case 4:
      return String.fromCharCode(
        ...Array.from({ length: r.range(1, 40) }, () => r.range(0, 0xffff)),
      );
    default:
      return Math.floor(r.next() * 1e9).toString(36);
  }
}

function longStr(r: Rng): string {
  const n = r.pick([129, 257, 513, 1001, 4001, 65 * 1024 / 4, 40_000]);
  return r.chance(0.5) ? "a".repeat(n) : unicodeStr(r, Math.min(n, 8000));
}

function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  // Plain assignment of "__proto__" would set the prototype, not a property.
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function junk(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 2 ? 7 : 10)) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick(HUGE_NUMBERS);
    case 3:
      return r.range(-1000, 1000);
    case 4:
    case 5:
      return shortStr(r);
    case 6:
      return r.chance(0.5) ? [] : {};
    case 7:
      return Array.from({ length: r.range(1, 5) }, () => junk(r, depth + 1));
    case 8: {
      const o: Record<string, unknown> = {};
      for (let i = r.range(1, 5); i > 0; i--) {
        setOwn(o, r.chance(0.5) ? r.pick(KEYS) : shortStr(r), junk(r, depth + 1));
      }
      return o;
    }
    default: {
      // Nested junk: an object or array chain 10..300 levels deep.
      let v: unknown = junk(r, 3);
      for (let i = r.range(10, 300); i > 0; i--) v = r.chance(0.5) ? [v] : { a: v };
      return v;
    }
  }
}

function differentType(r: Rng, v: unknown): unknown {
  for (let i = 0; i < 10; i++) {
    const j = junk(r, 2);
    const kind = (x: unknown) => (x === null ? "null" : Array.isArray(x) ? "array" : typeof x);
    if (kind(j) !== kind(v)) return j;
  }
  return null;
}

// ------------------------------------------------------------------ valid params per method

/** Valid params for every method. A method missing here fails the test (add it). */
const SAMPLES: Record<string, unknown[]> = {
  health: [{}, { probe: true }, { probe: false }],
  // No model key in the fuzz gateway: turns are accepted and end in a clear error.
  agent: [{ message: "fuzz", idempotencyKey: "fuzz-agent-1", sessionKey: "agent:main:fuzz" }],
  "agent.wait": [{ runId: "fuzz-agent-1", timeoutMs: 0 }, { runId: "nope", timeoutMs: 0 }],
  "chat.send": [
    { sessionKey: "fuzz", message: "hello", idempotencyKey: "fuzz-chat-1" },
    { sessionKey: "agent:main:fuzz", message: "", idempotencyKey: "fuzz-chat-2", thinking: "low" },
  ],
  "chat.history": [{ sessionKey: "fuzz" }, { sessionKey: "main", limit: 5, before: 3 }],
  "chat.abort": [{ sessionKey: "fuzz" }, { sessionKey: "fuzz", runId: "fuzz-chat-1" }],
  send: [{ to: "123", message: "hi", idempotencyKey: "fuzz-send-1", channel: "telegram" }],
  poll: [{ to: "123", question: "q?", options: ["a", "b"], idempotencyKey: "fuzz-poll-1" }],
  "channels.status": [{}, { probe: true, timeoutMs: 500 }],
  // A channel that is not configured: the logout is refused and the config stays.
  "channels.logout": [{ channel: "discord" }],
  "telegram.pairing.list": [{}],
  "telegram.pairing.approve": [{ code: "ABCDEFGH" }],
  "telegram.pairing.reject": [{ code: "ABCDEFGH" }],
  "telegram.allow.remove": [{ senderId: "1" }],
  "sessions.list": [{}, { limit: 5, search: "fuzz", activeMinutes: 10 }],
  "sessions.preview": [{ keys: ["main", "agent:main:fuzz"] }],
  "sessions.patch": [{ key: "fuzz", label: "fuzz label" }, { key: "fuzz", thinkingLevel: null }],
  "sessions.reset": [{ key: "agent:main:fuzz" }],
  "sessions.delete": [{ key: "agent:main:fuzz-gone" }],
  "sessions.compact": [{ key: "agent:main:fuzz-none", maxLines: 4 }],
  "usage.status": [{}],
  "exec.approvals.get": [{}],
  "exec.approvals.set": [{ file: { version: 1, defaults: {}, agents: {} }, baseHash: WRONG_HASH }],
  "exec.approvals.node.get": [{ nodeId: "fuzz-node" }],
  "exec.approvals.node.set": [
    { nodeId: "fuzz-node", file: { version: 1, defaults: {}, agents: {} }, baseHash: WRONG_HASH },
  ],
  "exec.approval.request": [{ commandArgv: ["true"] }, { command: "echo fuzz > /tmp/x" }],
  "exec.approval.resolve": [{ id: "no-such-approval", decision: "deny" }],
  "exec.approval.waitDecision": [{ id: "no-such-approval", timeoutMs: 0 }],
  "node.list": [{}],
  "node.describe": [{ nodeId: "no-such-node" }],
  "node.rename": [{ nodeId: "no-such-node", displayName: "x" }],
  "node.invoke": [{ nodeId: "no-such-node", command: "system.info", idempotencyKey: "fuzz-inv" }],
  "node.invoke.result": [{ id: "x", ok: true }],
  "node.event": [{ event: "fuzz" }],
  "node.pair.list": [{}],
  "node.pair.approve": [{ requestId: "no-such-request" }],
  "node.pair.reject": [{ requestId: "no-such-request" }],
  // No browser node is connected in the fuzz run: UNAVAILABLE, or a params error.
  "browser.request": [
    { method: "GET", path: "/tabs" },
    { method: "post", path: "/tabs/open", body: { url: "https://example.com" }, timeoutMs: 1000 },
    { method: "GET", path: "/", target: "node", node: "no-such-node" },
  ],
  // update.enabled is false in the fuzz config: a refusal payload, nothing fetched.
  "update.run": [{}, { note: "fuzz", restartDelayMs: 0 }],
  "tts.status": [{}],
  "tts.providers": [{}],
  "tts.enable": [{}],
  "tts.disable": [{}],
  // Only espeak-ng (local) is ever chosen, so a convert never goes to the network.
  "tts.setProvider": [{ provider: "espeak-ng" }, { provider: "nope" }],
  "tts.convert": [
    { text: "fuzz", provider: "espeak-ng" },
    { text: "fuzz", provider: "espeak-ng", format: "mp3" },
    { text: "fuzz", provider: "nope", voiceId: "x" },
  ],
  "voicewake.get": [{}],
  "voicewake.set": [{ triggers: ["openclaw", "claude", "computer"] }],
  "talk.mode": [{ enabled: false }, { enabled: true, phase: "fuzz" }],
  // A started wizard only waits for answers (its sessionId is random: no fuzzed next finds it);
  // nothing is written before its review step's yes.
  "wizard.start": [{}, { mode: "local", flow: "channels", channel: "telegram" }],
  "wizard.next": [
    { sessionId: "fuzz-no-such-wizard" },
    { sessionId: "fuzz-no-such-wizard", answer: { stepId: "auth.mode#1", value: "keep" } },
  ],
  "wizard.cancel": [{ sessionId: "fuzz-no-such-wizard" }, {
    sessionId: "fuzz-no-such-wizard",
    closeInput: true,
  }],
  "wizard.status": [{ sessionId: "fuzz-no-such-wizard" }],
  "device.pair.list": [{}],
  "device.pair.approve": [{ requestId: "no-such-request" }],
  "device.pair.reject": [{ requestId: "no-such-request" }],
  "device.pair.remove": [{ deviceId: "no-such-device" }],
  "device.token.rotate": [{ deviceId: "no-such-device", role: "operator" }],
  "device.token.revoke": [{ deviceId: "no-such-device", role: "node" }],
  "cron.list": [{}, { includeDisabled: true }],
  "cron.get": [{ id: "no-such-job" }],
  "cron.status": [{}],
  "cron.runs": [{}, { id: "no-such-job", limit: 5 }, { status: "error", limit: 3 }],
  "cron.add": [
    {
      name: "fuzz",
      enabled: false,
      schedule: { kind: "every", everyMs: 86_400_000 },
      payload: { kind: "systemEvent", text: "fuzz" },
    },
    {
      name: "fuzz cron",
      enabled: false,
      schedule: { kind: "cron", expr: "0 8 * * *", tz: "Asia/Shanghai" },
      payload: { kind: "agentTurn", message: "fuzz" },
    },
  ],
  "cron.update": [{ id: "no-such-job", patch: { enabled: false } }],
  "cron.remove": [{ id: "no-such-job" }],
  "cron.run": [{ id: "no-such-job" }, { id: "no-such-job", mode: "due" }],
  "usage.cost": [{}, { days: 7 }],
  status: [{}],
  "system-presence": [{}],
  "last-heartbeat": [{}],
  "set-heartbeats": [{ enabled: true }, { enabled: false }],
  "system-event": [
    { text: "fuzz" },
    { text: "fuzz note", host: "fuzz-host", mode: "fuzz", tags: ["a", "b"], lastInputSeconds: 3 },
    { text: "x", sessionKey: "agent:main:fuzz", instanceId: "fuzz-1", reason: "r" },
  ],
  // No model key in the fuzz gateway: a heartbeat that runs ends in a clear error.
  wake: [
    { mode: "next-heartbeat", text: "fuzz" },
    { mode: "now", text: "fuzz wake", sessionKey: "agent:main:fuzz" },
  ],
  "skills.status": [{}, { agentId: "main" }, { sessionKey: "agent:main:main" }],
  "skills.bins": [{}],
  // No skill is installed in the fuzz run: installs are refused (no such folder, nothing
  // listening on port 1), updates name an unknown skill; gw.json is never written.
  "skills.install": [
    { path: "/nonexistent/gw-fuzz-skill" },
    { url: "https://127.0.0.1:1/fuzz.tar.gz", sha256: "0".repeat(64), timeoutMs: 1000 },
  ],
  "skills.update": [
    { skillKey: "no-such-skill", enabled: false },
    { skillKey: "no-such-skill", sha256: "0".repeat(64), url: "https://127.0.0.1:1/x.tar.gz" },
  ],
  "logs.tail": [{}, { limit: 5 }, { cursor: 0, limit: 10, maxBytes: 4096 }],
  "config.get": [{}],
  "config.schema": [{}],
  // Config writes: always a wrong baseHash (see safeConfigWrite).
  "config.set": [
    { raw: "{}", baseHash: WRONG_HASH },
    { config: { gateway: { port: 1 } }, baseHash: WRONG_HASH },
    {
      raw: '{"gateway":{"auth":{"token":"changed-token-0123456789"}}}',
      baseHash: WRONG_HASH,
      note: "n",
    },
  ],
  "config.patch": [
    { patch: { gateway: { port: 1 } }, baseHash: WRONG_HASH },
    { raw: '{"logging":{"level":"debug"}}', baseHash: WRONG_HASH },
  ],
  "config.apply": [
    { raw: "{}", baseHash: WRONG_HASH },
    { config: { gateway: { bind: "0.0.0.0" } }, baseHash: WRONG_HASH, restartDelayMs: 0 },
  ],
  "models.list": [{}],
  "agents.list": [{}],
  "agent.identity.get": [{}, { agentId: "main" }, { sessionKey: "agent:main:main" }, {
    agentId: "nope",
  }],
};
const CONFIG_WRITES = new Set(["config.set", "config.patch", "config.apply"]);

const METHOD_NAMES = methods.map((m) => m.name);
/**
 * What the operator sockets call. Node-role methods are refused to operators
 * as unauthorized calls, and ten of those close a socket by design, which
 * would end a fuzz socket early; they are fuzzed through the samples check
 * and the node tests instead.
 */
const OPERATOR_METHODS = methods.filter((m) => m.scope !== "node").map((m) => m.name);
const ODD_METHODS = [
  "no.such.method",
  "",
  "connect",
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "HEALTH",
  "health ",
  " health",
  "health\u0000",
  "config.get.x",
  "健康",
  "😀",
  "m".repeat(256),
  "m".repeat(257),
  "m".repeat(5000),
];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Config writes must never succeed: force a wrong baseHash whenever a real-looking one is absent. */
function safeConfigWrite(params: unknown): unknown {
  if (!isPlainObject(params)) return params;
  const h = params.baseHash;
  if (h === undefined || (typeof h === "string" && /^[0-9a-f]{64}$/.test(h))) {
    setOwn(params, "baseHash", WRONG_HASH);
  }
  return params;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Mutate valid params; returns `undefined` to omit params. */
function mutateParams(r: Rng, base: Record<string, unknown>, raw: Map<string, string>): unknown {
  if (r.chance(0.25)) return clone(base);
  let p: unknown = clone(base);
  for (let n = r.range(1, 3); n > 0; n--) {
    const keys = isPlainObject(p) ? Object.keys(p) : [];
    switch (r.int(10)) {
      case 0: // wrong type
        if (keys.length && isPlainObject(p)) {
          const k = r.pick(keys);
          setOwn(p, k, differentType(r, p[k]));
        }
        break;
      case 1: // missing field
        if (keys.length && isPlainObject(p)) delete p[r.pick(keys)];
        break;
      case 2: // extra field
        if (isPlainObject(p)) setOwn(p, r.chance(0.6) ? r.pick(KEYS) : shortStr(r), junk(r));
        break;
      case 3: // huge numbers
        if (isPlainObject(p)) {
          const k = keys.length && r.chance(0.7)
            ? r.pick(keys)
            : r.pick(["limit", "cursor", "maxBytes", "lastInputSeconds", "restartDelayMs"]);
          if (r.chance(0.4)) {
            const tag = `__RAWNUM${raw.size}__`;
            raw.set(tag, r.pick(RAW_NUMBERS));
            setOwn(p, k, tag);
          } else setOwn(p, k, r.pick(HUGE_NUMBERS));
        }
        break;
      case 4: // long strings
        if (isPlainObject(p)) {
          const k = keys.length && r.chance(0.7)
            ? r.pick(keys)
            : r.pick(["text", "agentId", "sessionKey", "raw", "note", "host"]);
          setOwn(p, k, longStr(r));
        }
        break;
      case 5: // unicode
        if (isPlainObject(p)) {
          const k = keys.length && r.chance(0.7) ? r.pick(keys) : r.pick(KEYS);
          setOwn(
            p,
            r.chance(0.3) ? unicodeStr(r, r.range(1, 30)) : k,
            unicodeStr(r, r.range(1, 200)),
          );
        }
        break;
      case 6: // nulls
        if (keys.length && isPlainObject(p)) setOwn(p, r.pick(keys), null);
        else p = null;
        break;
      case 7: // nested junk
        if (isPlainObject(p)) setOwn(p, keys.length ? r.pick(keys) : "nested", junk(r, 0));
        break;
      case 8: // params replaced wholesale
        p = r.pick<unknown>([
          null,
          0,
          -1,
          "",
          "{}",
          [],
          [base],
          true,
          false,
          junk(r),
          unicodeStr(r, 10),
        ]);
        break;
      default:
        return undefined;
    }
  }
  return p;
}

// ------------------------------------------------------------------ frames

interface Frame {
  data: string | Uint8Array;
  /** Short description for reports. */
  gen: string;
}

let idCounter = 0;

/** A fresh id, unique (the counter comes first, up to the first ':'), 1..256 units long. */
function freshId(r: Rng): string {
  const base = `f${++idCounter}:`;
  switch (r.int(6)) {
    case 0:
      return base + unicodeStr(r, r.range(1, 30)).slice(0, 256 - base.length);
    case 1:
      return base + "x".repeat(256 - base.length); // exactly 256
    case 2:
      return base + crypto.randomUUID();
    default:
      return base;
  }
}

function stringify(frame: unknown, raw: Map<string, string>): string {
  let s = JSON.stringify(frame);
  for (const [tag, lit] of raw) s = s.replaceAll(`"${tag}"`, lit);
  return s;
}

function validRequest(r: Rng, allowDeep = true): { text: string; method: string } {
  const method = r.chance(0.93) ? r.pick(OPERATOR_METHODS) : r.pick(ODD_METHODS);
  const samples = SAMPLES[method] ?? [{}];
  const raw = new Map<string, string>();
  let params = mutateParams(r, clone(r.pick(samples)) as Record<string, unknown>, raw);
  if (CONFIG_WRITES.has(method)) params = safeConfigWrite(params);
  const frame: Record<string, unknown> = { type: "req", id: freshId(r), method };
  if (params !== undefined) frame.params = params;
  if (r.chance(0.05)) frame.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  if (r.chance(0.03)) frame.expectedProfileId = junk(r, 2);
  let text = stringify(frame, raw);
  if (allowDeep && r.chance(0.03)) {
    // Deep nesting built as text (JSON.stringify would recurse too far).
    const n = r.range(1000, 20000);
    const deep = r.chance(0.5)
      ? "[".repeat(n) + "]".repeat(n)
      : '{"a":'.repeat(n) + "1" + "}".repeat(n);
    text = `{"type":"req","id":${JSON.stringify(freshId(r))},"method":${
      JSON.stringify(method)
    },"params":${deep}}`;
  }
  return { text, method };
}

function brokenFrame(r: Rng): string {
  const valid = () => validRequest(r).text;
  switch (r.int(16)) {
    case 0: // bad JSON
      return r.pick([
        "",
        " ",
        "{",
        "}",
        '{"type":"req"',
        "{'type':'req','id':'1','method':'health'}",
        "NaN",
        "undefined",
        "[1,2",
        '"unterminated',
        '{"a":1,}',
        "\u0000",
        "\ufeff{}",
        "[".repeat(r.range(1, 50000)),
        '{"type":"req","id":"x","method":"health"}}',
      ]);
    case 1: { // truncated or trailing garbage
      const v = valid();
      return r.chance(0.5)
        ? v.slice(0, r.int(v.length))
        : v + r.pick(["x", "}", ",", " {}", "\u0000"]);
    }
    case 2: // random text
      return String.fromCharCode(
        ...Array.from({ length: r.range(1, 300) }, () => r.range(1, 0xffff)),
      );
    case 3: // wrong type field (with a valid, unique id)
      return JSON.stringify({
        type: r.pick<unknown>(["res", "event", "REQ", "", 1, null, true, {}, []]),
        id: freshId(r),
        method: "health",
      });
    case 4: { // missing type
      return JSON.stringify({ id: freshId(r), method: "health" });
    }
    case 5: // missing id
      return JSON.stringify({ type: "req", method: r.pick(OPERATOR_METHODS) });
    case 6: // numeric or non-string id
      return JSON.stringify({
        type: "req",
        id: r.pick<unknown>([1, 0, -1, 1.5, 1e300, null, true, {}, [], ["x"]]),
        method: "health",
      });
    case 7: // empty or huge id
      return JSON.stringify({
        type: "req",
        id: r.chance(0.2) ? "" : "h".repeat(r.range(257, 20000)),
        method: "health",
      });
    case 8: // missing or non-string method
      return JSON.stringify(
        r.chance(0.3) ? { type: "req", id: freshId(r) } : {
          type: "req",
          id: freshId(r),
          method: r.pick<unknown>([1, null, true, {}, ["health"]]),
        },
      );
    case 9: { // extra keys
      const f = JSON.parse(validRequest(r, false).text) as Record<string, unknown>;
      for (let n = r.range(1, 3); n > 0; n--) setOwn(f, r.pick(KEYS), junk(r, 2));
      return JSON.stringify(f);
    }
    case 10: // arrays
      return JSON.stringify(
        r.pick<unknown>([[], [1, 2], [{ type: "req", id: freshId(r), method: "health" }]]),
      );
    case 11: // primitives
      return r.pick(["1", "true", "false", "null", '"req"', "-0", "1e999", '""', "0"]);
    case 12: // bad traceparent
      return JSON.stringify({
        type: "req",
        id: freshId(r),
        method: "health",
        traceparent: r.pick<unknown>([1, null, "t".repeat(129), {}, ["x"]]),
      });
    case 13: // duplicate keys: the last wins
      return `{"type":"req","id":${JSON.stringify(freshId(r))},"id":${
        JSON.stringify(freshId(r))
      },"method":"health","method":"status"}`;
    case 14: // second connect on an open socket
      return JSON.stringify({
        type: "req",
        id: freshId(r),
        method: "connect",
        params: connectParams(),
      });
    default: // a response or event sent by the client
      return JSON.stringify(
        r.chance(0.5)
          ? { type: "res", id: freshId(r), ok: true, payload: junk(r, 1) }
          : { type: "event", event: "tick", payload: { ts: 1 }, seq: 1 },
      );
  }
}

function binaryFrame(r: Rng): Uint8Array {
  const enc = new TextEncoder();
  switch (r.int(5)) {
    case 0: // a valid request as bytes
      return enc.encode(validRequest(r).text);
    case 1: // random bytes
      return crypto.getRandomValues(new Uint8Array(r.range(0, 400)));
    case 2: { // invalid UTF-8 inside a string
      const pre = enc.encode(`{"type":"req","id":"f${++idCounter}:`);
      const bad = new Uint8Array(
        r.pick([[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [
          0xe2,
          0x82,
        ]]),
      );
      const post = enc.encode(`","method":"health"}`);
      return new Uint8Array([...pre, ...bad, ...post]);
    }
    case 3: // BOM + valid request
      return new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode(validRequest(r).text)]);
    default:
      return new Uint8Array(0);
  }
}

function authFrame(r: Rng): Frame {
  const x = r.next();
  if (x < 0.58) {
    const v = validRequest(r);
    return { data: v.text, gen: `req ${v.method}` };
  }
  if (x < 0.88) return { data: brokenFrame(r), gen: "broken" };
  return { data: binaryFrame(r), gen: "binary" };
}

const sizeEncoder = new TextEncoder();

function byteSize(data: string | Uint8Array): number {
  if (typeof data !== "string") return data.length;
  return data.length * 3 <= FRAME_BUDGET ? data.length : sizeEncoder.encode(data).length;
}

/** What the gateway sees: binary is decoded like the gateway does; text loses lone surrogates on the wire. */
function wireText(data: string | Uint8Array): string {
  return typeof data === "string" ? data.toWellFormed() : new TextDecoder().decode(data);
}

type Expect = { kind: "well"; id: string; extraKeys: boolean } | {
  kind: "mal";
  id: string | undefined;
};

function classify(text: string): Expect {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { kind: "mal", id: undefined };
  }
  if (isPlainObject(v)) {
    const id = v.id;
    const validId = typeof id === "string" && id.length > 0 && id.length <= 256;
    if (validId && v.type === "req" && typeof v.method === "string") {
      return { kind: "well", id, extraKeys: Object.keys(v).some((k) => !FRAME_KEYS.has(k)) };
    }
    if (validId) return { kind: "mal", id };
  }
  return { kind: "mal", id: undefined };
}

// ------------------------------------------------------------------ sockets

const crashes: { reason: string; recent: string[] }[] = [];
const recentSent: string[] = [];

function noteSent(s: string): void {
  recentSent.push(s.length > 300 ? `${s.slice(0, 300)}… (${s.length} chars)` : s);
  if (recentSent.length > 6) recentSent.shift();
}

/** One authenticated fuzz socket and its bookkeeping. */
class FuzzSocket {
  readonly ws: WebSocket;
  readonly name: string;
  /** Responses received per id. */
  readonly got = new Map<string, number>();
  /** Ids that got an interim `accepted` answer (agent). */
  readonly interim = new Set<string>();
  /** Well-formed ids still waiting. */
  readonly pending = new Set<string>();
  /** Per-id expectations. */
  readonly expect = new Map<
    string,
    { well: number; mal: number; extraKeys: boolean; gen: string; text: string }
  >();
  invalid = 0;
  malformedSent = 0;
  sent = 0;
  events = 0;
  readonly violations: string[] = [];
  closedBy: { code: number; reason: string } | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;
  #hello = Promise.withResolvers<AnyFrame>();

  constructor(url: string, name: string) {
    this.name = name;
    this.ws = new WebSocket(url);
    this.ws.binaryType = "arraybuffer";
    this.opened = new Promise((res, rej) => {
      this.ws.onopen = () => res();
      this.ws.onerror = () => rej(new Error(`${name}: websocket error`));
    });
    this.opened.catch(() => {});
    this.closed = new Promise((res) => {
      this.ws.onclose = (e) => {
        this.closedBy = { code: e.code, reason: e.reason };
        res(this.closedBy);
      };
    });
    this.ws.onmessage = (e) => this.#onMessage(e.data);
  }

  #onMessage(data: unknown): void {
    let f: AnyFrame;
    try {
      f = JSON.parse(
        typeof data === "string" ? data : new TextDecoder().decode(data as ArrayBuffer),
      );
    } catch {
      this.violations.push(`${this.name}: the gateway sent a non-JSON frame`);
      return;
    }
    if (f?.type === "event") {
      this.events++;
      return;
    }
    if (f?.type !== "res") {
      this.violations.push(`${this.name}: unexpected frame ${JSON.stringify(f).slice(0, 200)}`);
      return;
    }
    if (f.id === "connect") {
      this.#hello.resolve(f);
      return;
    }
    if (typeof f.ok !== "boolean") {
      this.violations.push(
        `${this.name}: res without boolean ok: ${JSON.stringify(f).slice(0, 200)}`,
      );
    }
    if (
      f.ok === false && (typeof f.error?.code !== "string" || typeof f.error?.message !== "string")
    ) {
      this.violations.push(
        `${this.name}: error without code/message: ${JSON.stringify(f).slice(0, 200)}`,
      );
    }
    if (f.id === "invalid") {
      this.invalid++;
      if (f.ok !== false) this.violations.push(`${this.name}: ok response with id "invalid"`);
      return;
    }
    // `agent` answers twice with the same id: `accepted` now, the outcome later.
    if (f.ok === true && f.payload?.status === "accepted" && !this.interim.has(f.id)) {
      this.interim.add(f.id);
      return;
    }
    const n = (this.got.get(f.id) ?? 0) + 1;
    this.got.set(f.id, n);
    this.pending.delete(f.id);
    const ex = this.expect.get(f.id);
    if (!ex) {
      this.violations.push(
        `${this.name}: response for an id never sent: ${JSON.stringify(f.id).slice(0, 100)}`,
      );
      return;
    }
    if (n > ex.well + ex.mal) {
      this.violations.push(
        `${this.name}: ${n} responses for id ${
          JSON.stringify(f.id).slice(0, 60)
        } (${ex.gen}): ${ex.text}`,
      );
    }
    if (ex.well === 0 && f.ok === true) {
      this.violations.push(`${this.name}: ok:true for a malformed frame (${ex.gen}): ${ex.text}`);
    }
    if (ex.extraKeys && f.ok === true) {
      this.violations.push(
        `${this.name}: a frame with an unknown top-level property was accepted: ${ex.text}`,
      );
    }
    if (
      f.ok === false && f.error?.code === "UNAVAILABLE" &&
      /internal error/.test(f.error?.message ?? "")
    ) {
      this.violations.push(`${this.name}: internal error (${ex.gen}): ${ex.text}`);
    }
  }

  async connect(): Promise<void> {
    await this.opened;
    this.ws.send(
      JSON.stringify({ type: "req", id: "connect", method: "connect", params: connectParams() }),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const res = await Promise.race([
      this.#hello.promise,
      new Promise<never>((
        _,
        rej,
      ) => (timer = setTimeout(() => rej(new Error(`${this.name}: no hello-ok`)), 5000))),
    ]);
    clearTimeout(timer);
    assert.equal(res.ok, true, `${this.name}: connect failed ${JSON.stringify(res.error)}`);
  }

  send(f: Frame): void {
    const text = wireText(f.data);
    const ex = classify(text);
    const short = text.length > 300 ? `${text.slice(0, 300)}… (${text.length} chars)` : text;
    if (ex.kind === "well") {
      const e = this.expect.get(ex.id) ??
        { well: 0, mal: 0, extraKeys: false, gen: f.gen, text: short };
      e.well++;
      e.extraKeys ||= ex.extraKeys;
      this.expect.set(ex.id, e);
      this.pending.add(ex.id);
    } else {
      this.malformedSent++;
      if (ex.id !== undefined) {
        const e = this.expect.get(ex.id) ??
          { well: 0, mal: 0, extraKeys: false, gen: f.gen, text: short };
        e.mal++;
        this.expect.set(ex.id, e);
      }
    }
    this.sent++;
    noteSent(short);
    this.ws.send(f.data);
  }

  /** Well-formed requests that got no response, and malformed frames answered more than once. */
  check(final: boolean): string[] {
    const out = [...this.violations];
    let answeredMalformedById = 0;
    for (const [id, e] of this.expect) {
      const n = this.got.get(id) ?? 0;
      if (final && n < e.well) {
        out.push(`${this.name}: no response for well-formed ${e.gen}: ${e.text}`);
      }
      if (n > e.well) answeredMalformedById += Math.min(n - e.well, e.mal);
    }
    if (this.invalid + answeredMalformedById > this.malformedSent) {
      out.push(
        `${this.name}: ${this.invalid} "invalid" + ${answeredMalformedById} by-id responses for ${this.malformedSent} malformed frames`,
      );
    }
    return out;
  }
}

async function waitUntil(pred: () => boolean, timeoutMs: number, step = 10): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!pred()) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, step));
  }
  return true;
}

/** Printable ASCII for reports: everything else as \\uXXXX. */
function ascii(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

let gcFn: (() => void) | null | undefined;

/** A function that runs a full GC, or null when the runtime does not allow one. */
function forcedGc(): (() => void) | null {
  if (gcFn !== undefined) return gcFn;
  gcFn = (globalThis as { gc?: () => void }).gc ?? null;
  if (!gcFn) {
    try {
      v8.setFlagsFromString("--expose-gc");
      const f = vm.runInNewContext("gc");
      gcFn = typeof f === "function" ? (f as () => void) : null;
    } catch {
      gcFn = null;
    }
  }
  return gcFn;
}

async function heapSample(n: number, gapMs: number): Promise<number> {
  let min = Infinity;
  const gc = forcedGc();
  for (let i = 0; i < n; i++) {
    await sleep(gapMs);
    gc?.();
    min = Math.min(min, Deno.memoryUsage().heapUsed);
  }
  return min;
}

// ------------------------------------------------------------------ pre-auth

/** A pre-auth frame that never carries the right token (so no socket gets in). */
function preauthFrame(r: Rng): string | Uint8Array {
  const d = preauthFrameRaw(r);
  return typeof d === "string" ? d.replaceAll(TEST_TOKEN, "wrong-token-0123456789abc") : d;
}

function preauthFrameRaw(r: Rng): string | Uint8Array {
  const wrongAuth = () =>
    r.pick<unknown>([
      { token: "wrong-token-0123456789" },
      { token: TEST_TOKEN + "x" },
      { password: "pw" },
      {},
      undefined,
      { token: junk(r, 2) },
      { deviceToken: "d" },
    ]);
  switch (r.int(10)) {
    case 0:
    case 1:
    case 2: { // connect with mutated params, never the right token
      const raw = new Map<string, string>();
      const base = connectParams({ auth: wrongAuth() });
      const params = mutateParams(r, base, raw);
      if (isPlainObject(params) && isPlainObject(params.auth) && params.auth.token === TEST_TOKEN) {
        params.auth.token = "nope-0123456789abcdef";
      }
      if (r.chance(0.3) && isPlainObject(params)) {
        setOwn(params, unicodeStr(r, r.range(10, 60)), 1); // a unicode unknown key
      }
      if (r.chance(0.15) && isPlainObject(params)) {
        // A field whose error path names a caller-chosen (unicode) key.
        setOwn(params, "permissions", { [unicodeStr(r, r.range(10, 60))]: junk(r, 2) });
      }
      const f: Record<string, unknown> = {
        type: "req",
        id: r.chance(0.8) ? `p${++idCounter}` : unicodeStr(r, 50),
        method: "connect",
      };
      if (params !== undefined) f.params = params;
      return stringify(f, raw);
    }
    case 3: // protocol mismatch
      return JSON.stringify({
        type: "req",
        id: "c",
        method: "connect",
        params: connectParams({ minProtocol: 5, maxProtocol: 9, auth: wrongAuth() }),
      });
    case 4: // a request before connect
      return JSON.stringify({ type: "req", id: "h", method: r.pick(OPERATOR_METHODS) });
    case 5: // a frame with unknown top-level keys
      return JSON.stringify(
        Object.fromEntries([["type", "req"], ["id", "k"], ["method", "connect"], [
          r.chance(0.5) ? r.pick(KEYS) : unicodeStr(r, r.range(5, 60)),
          1,
        ]]),
      );
    case 6:
      return brokenFrame(r);
    case 7:
      return binaryFrame(r);
    case 8: // oversized (pre-auth limit is 64 KiB)
      return JSON.stringify({
        type: "req",
        id: "big",
        method: "connect",
        params: { pad: "x".repeat(70 * 1024) },
      });
    default:
      return r.pick(["", "{", "null", "[]", "{}", "1"]);
  }
}

// ------------------------------------------------------------------ the test

Deno.test({
  name: `fuzz: ${AUTH_FRAMES}+ random frames against one gateway (seed 0x${SEED.toString(16)})`,
  fn: async (t) => {
    const onReject = (e: PromiseRejectionEvent) => {
      e.preventDefault();
      crashes.push({
        reason: String((e.reason as Error)?.stack ?? e.reason),
        recent: [...recentSent],
      });
    };
    const onError = (e: ErrorEvent) => {
      e.preventDefault();
      crashes.push({ reason: String(e.error?.stack ?? e.message), recent: [...recentSent] });
    };
    globalThis.addEventListener("unhandledrejection", onReject);
    globalThis.addEventListener("error", onError);
    const started = performance.now();
    // Telegram is configured (against a Bot API server for tests) so its methods are fuzzed too.
    const botToken = "777777:AAfuzz-test-token-abcdefghij";
    await using botApi = await TelegramApi.start({ tokens: [botToken] });
    const tg = await startTestGateway({
      config: {
        gateway: { maxPayload: MAX_PAYLOAD, handshakeTimeoutMs: 5_000 },
        channels: { telegram: { botToken, apiRoot: botApi.apiRoot } },
      },
    });
    const configBefore = await Deno.readTextFile(`${tg.stateDir}/gw.json`);
    const r = new Rng(SEED);
    const sockets: FuzzSocket[] = [];
    const problems: string[] = [];
    const report = (list: string[]) => {
      for (const p of list) if (problems.length < 40 && !problems.includes(p)) problems.push(p);
    };
    try {
      await t.step("every method has a fuzz sample (add new methods to SAMPLES)", () => {
        const missing = METHOD_NAMES.filter((m) => !(m in SAMPLES));
        assert.deepEqual(missing, [], `no fuzz sample for ${missing.join(", ")}`);
      });

      for (let i = 0; i < AUTH_SOCKETS; i++) sockets.push(new FuzzSocket(tg.url, `auth${i}`));
      await Promise.all(sockets.map((s) => s.connect()));

      await t.step("sanity: a config write with a wrong baseHash is refused", async () => {
        const c = await connected(tg.url);
        try {
          const res = await c.request("config.set", { raw: "{}", baseHash: WRONG_HASH });
          assert.equal(res.ok, false, JSON.stringify(res));
          assert.equal(res.error.details?.code, "CONFIG_CONFLICT", JSON.stringify(res));
          const res2 = await c.request("config.patch", { patch: { gateway: { port: 1 } } });
          assert.equal(
            res2.ok,
            false,
            "a config write without baseHash must be refused when gw.json exists",
          );
        } finally {
          await c.close();
        }
      });

      let baseline = 0;
      let sentAuth = 0;
      await t.step(`authenticated sockets: ${AUTH_FRAMES} frames`, async () => {
        // A missing response costs the full wait once; later rounds wait briefly.
        let waitMs = 5_000;
        for (let round = 0; sentAuth < AUTH_FRAMES; round++) {
          const n = Math.min(ROUND, AUTH_FRAMES - sentAuth);
          for (let i = 0; i < n; i++) {
            let f = authFrame(r);
            while (byteSize(f.data) > FRAME_BUDGET) f = authFrame(r);
            const open = sockets.filter((s) => !s.closedBy);
            if (open.length === 0) break;
            r.pick(open).send(f);
            sentAuth++;
          }
          const all = await waitUntil(
            () => sockets.every((s) => s.pending.size === 0 || s.closedBy),
            waitMs,
          );
          for (const s of sockets) report(s.check(false));
          if (!all) {
            for (const s of sockets) {
              report(s.check(true));
              s.pending.clear();
            }
            waitMs = 500;
          }
          if (sockets.every((s) => s.closedBy)) break;
          if (round === 0) baseline = await heapSample(3, 50);
        }
        // Sentinel: after its response, every earlier synchronous answer has arrived.
        for (const s of sockets) {
          if (!s.closedBy) {
            s.send({
              data: JSON.stringify({ type: "req", id: `sentinel:${s.name}`, method: "health" }),
              gen: "sentinel",
            });
          }
        }
        await waitUntil(() => sockets.every((s) => s.pending.size === 0 || s.closedBy), 10_000);
        await sleep(200);
        for (const s of sockets) report(s.check(true));
        for (const s of sockets) {
          if (s.closedBy) {
            report([
              `${s.name} was closed by the gateway: ${s.closedBy.code} ${s.closedBy.reason}`,
            ]);
          }
        }
        const total = sockets.reduce((a, s) => a + s.sent, 0);
        console.log(
          `fuzz seed 0x${
            SEED.toString(16)
          }: ${total} frames on ${AUTH_SOCKETS} authenticated sockets, ` +
            sockets.map((s) =>
              `${s.name}: ${s.sent} sent, ${s.got.size} ids answered, ${s.invalid} invalid`
            ).join("; "),
        );
        assert.deepEqual(
          { "uncaught errors": crashes.map((c) => c.reason), problems: problems.map(ascii) },
          { "uncaught errors": [], problems: [] },
        );
        assert.ok(total >= Math.min(AUTH_FRAMES, 5000), `only ${total} frames were sent`);
      });

      const preauthProblems: string[] = [];
      await t.step(`pre-auth sockets: ${PREAUTH_SOCKETS} short-lived sockets`, async () => {
        let frames = 0;
        for (let w = 0; w < PREAUTH_SOCKETS; w += PREAUTH_WAVE) {
          const wave = Array.from(
            { length: Math.min(PREAUTH_WAVE, PREAUTH_SOCKETS - w) },
            (_, i) => {
              const ws = new WebSocket(tg.url);
              ws.binaryType = "arraybuffer";
              const got: AnyFrame[] = [];
              const sent: string[] = [];
              const challenge = Promise.withResolvers<void>();
              const closed = new Promise<{ code: number; reason: string }>((res) => {
                ws.onclose = (e) => (challenge.resolve(), res({ code: e.code, reason: e.reason }));
              });
              ws.onerror = () => {};
              ws.onmessage = (e) => {
                try {
                  const f = JSON.parse(
                    typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data),
                  );
                  if (f.event === "connect.challenge") challenge.resolve();
                  else got.push(f);
                } catch {
                  got.push({ nonJson: true });
                }
              };
              return { ws, got, sent, closed, challenge: challenge.promise, name: `pre${w + i}` };
            },
          );
          await Promise.all(wave.map((p) => p.challenge));
          for (const p of wave) {
            for (let k = r.range(1, 3); k > 0; k--) {
              const d = preauthFrame(r);
              const text = wireText(d);
              p.sent.push(
                text.length > 200 ? `${text.slice(0, 200)}… (${text.length} chars)` : text,
              );
              noteSent(p.sent.at(-1)!);
              if (p.ws.readyState === WebSocket.OPEN) p.ws.send(d);
              frames++;
            }
          }
          await Promise.all(wave.map(async (p) => {
            let timer: ReturnType<typeof setTimeout> | undefined;
            const res = await Promise.race([
              p.closed,
              new Promise<undefined>((ok) => (timer = setTimeout(() => ok(undefined), 2_000))),
            ]);
            clearTimeout(timer);
            const what = `${p.name} after ${JSON.stringify(p.sent)}`;
            if (!res) {
              preauthProblems.push(`not closed by the gateway within 2 s: ${what}`);
              p.ws.close();
              await p.closed;
            } else if (
              ![1000, 1002, 1008, 1009].includes(res.code) &&
              // Deno quirk: when the gateway closes while more client data is in
              // flight, the client may see an abnormal close (0/1006) instead.
              !(p.sent.length > 1 && (res.code === 0 || res.code === 1006))
            ) {
              preauthProblems.push(`closed with ${res.code} ${res.reason}: ${what}`);
            }
            const res2 = p.got.filter((f) => f.type === "res");
            if (res2.length > 1) preauthProblems.push(`${res2.length} responses: ${what}`);
            if (res2.some((f) => f.ok !== false)) {
              preauthProblems.push(`ok response before auth: ${what}`);
            }
            if (p.got.some((f) => f.type !== "res")) {
              preauthProblems.push(
                `unexpected frames ${JSON.stringify(p.got).slice(0, 200)}: ${what}`,
              );
            }
          }));
        }
        console.log(`fuzz: ${frames} frames on ${PREAUTH_SOCKETS} pre-auth sockets`);
        const crashText = crashes.map((c) =>
          `${c.reason.split("\n").slice(0, 4).join(" | ")}; last frames sent: ${
            ascii(JSON.stringify(c.recent.slice(-3)))
          }`
        );
        assert.deepEqual(
          {
            "uncaught errors (each would have killed `gw start`)": crashText,
            "pre-auth problems": preauthProblems.slice(0, 12).map(ascii),
          },
          { "uncaught errors (each would have killed `gw start`)": [], "pre-auth problems": [] },
        );
      });

      // Crashes of the pre-auth step are reported there; later steps report only new ones.
      const crashesBefore = crashes.length;

      await t.step(
        "separate socket: an oversized frame closes it with 1009, nothing else",
        async () => {
          const c = await connected(tg.url);
          c.send(
            JSON.stringify({
              type: "req",
              id: "big",
              method: "health",
              params: { pad: "x".repeat(MAX_PAYLOAD + 1024) },
            }),
          );
          const closed = await c.closed;
          assert.equal(closed.code, 1009, `${closed.code} ${closed.reason}`);
          assert.ok(
            !c.frames.some((f) => f.type === "res" && f.id === "big"),
            "oversized frame was answered",
          );
        },
      );

      await t.step(
        "separate socket: more than 10 unauthorized calls close it with 1008",
        async () => {
          // A device-less client other than cli/cli keeps no scopes.
          const c = await connected(tg.url, {
            client: { id: "test", version: "t", platform: "linux", mode: "test" },
          });
          const h = await c.request("health");
          assert.equal(h.ok, true, "health needs no scope");
          const answers = [];
          for (let i = 1; i <= 11; i++) answers.push(c.request("status", undefined, `u${i}`));
          const res = await Promise.all(answers);
          for (const f of res) {
            assert.equal(f.ok, false);
            assert.equal(f.error.code, "FORBIDDEN", JSON.stringify(f));
          }
          const closed = await c.closed;
          assert.equal(closed.code, 1008, `${closed.code} ${closed.reason}`);
        },
      );

      await t.step(
        "afterwards: sockets closed, no leftovers, health answers, config unchanged, heap near baseline",
        async () => {
          await Promise.all(sockets.map(async (s) => {
            if (!s.closedBy) s.ws.close();
            await s.closed;
          }));
          const drained = await waitUntil(() => tg.gw.connectionCounts().total === 0, 3_000);
          assert.ok(
            drained,
            `connections left in the gateway: ${JSON.stringify(tg.gw.connectionCounts())}`,
          );
          const c = await connected(tg.url);
          try {
            const h = await c.request("health");
            assert.equal(h.ok, true, JSON.stringify(h));
            const st = await c.request("status");
            assert.equal(st.ok, true, JSON.stringify(st));
            assert.deepEqual(
              {
                operators: st.payload.connections.operators,
                preauth: st.payload.connections.preauth,
              },
              { operators: 1, preauth: 0 },
            );
            const pres = await c.request("system-presence");
            assert.ok(
              pres.payload.length <= 256,
              `presence list grew to ${pres.payload.length}`,
            );
          } finally {
            await c.close();
          }
          assert.equal(
            await Deno.readTextFile(`${tg.stateDir}/gw.json`),
            configBefore,
            "gw.json changed during the fuzz",
          );
          // Drop the test's own per-frame bookkeeping before measuring.
          for (const s of sockets) {
            s.expect.clear();
            s.got.clear();
          }
          const limit = forcedGc() ? HEAP_GROWTH_LIMIT_GC : HEAP_GROWTH_LIMIT_NO_GC;
          const after = await heapSample(6, 100);
          const growth = after - baseline;
          console.log(
            `fuzz: heapUsed baseline ${(baseline / 1048576).toFixed(1)} MB, after ${
              (after / 1048576).toFixed(1)
            } MB, ` +
              `growth ${(growth / 1048576).toFixed(1)} MB (GC ${
                forcedGc() ? "forced" : "not available"
              }); wall ${((performance.now() - started) / 1000).toFixed(1)} s`,
          );
          assert.ok(baseline > 0, "no baseline sample");
          assert.ok(
            growth < limit,
            `heap grew by ${(growth / 1048576).toFixed(1)} MB (limit ${limit / 1048576} MB)`,
          );
          assert.deepEqual(
            crashes.slice(crashesBefore).map((c) => c.reason),
            [],
            "uncaught errors after the pre-auth step",
          );
        },
      );
    } finally {
      for (const s of sockets) {
        if (!s.closedBy) s.ws.close();
      }
      await Promise.all(sockets.map((s) => s.closed));
      await tg.stop();
      globalThis.removeEventListener("unhandledrejection", onReject);
      globalThis.removeEventListener("error", onError);
    }
  },
});

// ------------------------------------------------------------------ regression

/**
 * Found by the fuzzer: an error text with multi-byte characters, cut to 120
 * UTF-16 units, is still more than the 123 bytes a close reason may have, so
 * `ws.close()` throws inside the async connect handler: an unhandled rejection
 * that kills `gw start` (one unauthenticated frame is enough).
 */
Deno.test("fuzz regression: pre-auth errors naming non-ASCII keys close the socket, no crash", async () => {
  const uncaught: string[] = [];
  const onReject = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    uncaught.push(String((e.reason as Error)?.message ?? e.reason));
  };
  globalThis.addEventListener("unhandledrejection", onReject);
  const tg = await startTestGateway();
  try {
    const key = "日本語".repeat(20);
    const frames = [
      // frame check: "at root: unexpected property '<key>'"
      JSON.stringify(
        Object.fromEntries([["type", "req"], ["id", "1"], ["method", "connect"], [key, 1]]),
      ),
      // connect params check: "invalid connect params: params.permissions.<key>: expected boolean, got number"
      JSON.stringify({
        type: "req",
        id: "1",
        method: "connect",
        params: { ...connectParams(), permissions: { [key]: 1 } },
      }),
    ];
    for (const frame of frames) {
      const ws = new WebSocket(tg.url);
      const closed = new Promise<{ code: number; reason: string }>((res) => {
        ws.onclose = (e) => res({ code: e.code, reason: e.reason });
      });
      const challenge = new Promise<void>((res) => (ws.onmessage = () => res()));
      await challenge;
      ws.send(frame);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const res = await Promise.race([
        closed,
        new Promise<undefined>((ok) => (timer = setTimeout(() => ok(undefined), 2_000))),
      ]);
      clearTimeout(timer);
      if (!res) ws.close();
      await closed;
      assert.deepEqual(uncaught, [], `uncaught error after ${frame.slice(0, 80)}…`);
      assert.ok(res, "the gateway did not close the socket");
      assert.equal(res.code, 1008);
      assert.ok(new TextEncoder().encode(res.reason).length <= 123);
    }
    const c = await connected(tg.url);
    assert.equal((await c.request("health")).ok, true);
    await c.close();
  } finally {
    await tg.stop();
    globalThis.removeEventListener("unhandledrejection", onReject);
  }
});
