/**
 * `gw approvals`: answer exec approval requests from a terminal, and
 * `gw approvals policy get|set|allow|remove`: read and edit the gateway
 * host's exec policy.
 *
 * The watcher learns of requests from the `exec.approval.requested` event
 * (scope `operator.approvals`): the gateway has no method that lists pending
 * requests, so requests made before the watcher connected are not shown. A
 * request decided elsewhere while its card is up (`exec.approval.resolved`)
 * cancels the prompt. On a terminal a line typed while no card waits is
 * dropped, so a stale answer never lands on the next card; off a terminal
 * (tests, scripts) every stdin line is one answer, in order.
 *
 * The policy commands read with `exec.approvals.get`, change the file and
 * write it back with `exec.approvals.set` and the hash they read; when
 * someone else wrote in between (CONFLICT) they read and apply once more.
 *
 * @module
 */
import { GatewayRequestError } from "../client/client.ts";
import { parseDuration } from "../duration.ts";
import { suspicious } from "../exec/command.ts";
import type { AllowEntry, PolicyFile, PolicySettings } from "../store/exec.ts";
import {
  type CallOptions,
  connectClient,
  type Connection,
  Exit,
  LookupError,
  reportLookupError,
  reportRequestError,
  strFlag,
  UsageError,
} from "./call.ts";
import { bold, dim, green, red, table, yellow } from "./style.ts";

/** The flags as `node:util` parseArgs gave them, by their command-line names. */
export type ApprovalsFlags = Readonly<Record<string, string | boolean | undefined>>;

/** Options of {@link runApprovals}. */
export interface ApprovalsOptions extends CallOptions {
  /** Every flag given (`once`, `security`, `agent`, ...), by its command-line name. */
  flags: ApprovalsFlags;
}

/** A pending request as the `exec.approval.requested` event carries it. */
export interface ApprovalCard {
  id: string;
  host: string;
  agentId: string;
  sessionKey?: string;
  nodeId?: string;
  /** The gateway's display text: NFKC-normalised, hidden characters escaped as `\u{XXXX}`. */
  command: string;
  argv: string[];
  binary: string;
  cwd: string;
  envKeys: string[];
  warnings: string[];
  createdAtMs: number;
  expiresAtMs: number;
}

/** A snapshot as `exec.approvals.get` and `exec.approvals.set` return it. */
export interface PolicySnapshot {
  path: string;
  exists: boolean;
  hash: string;
  file: PolicyFile;
}

const CLIENT = ["url", "token", "password", "state-dir", "help", "timeout"];
const POLICY_SUBS = ["get", "set", "allow", "remove"] as const;
type PolicySub = typeof POLICY_SUBS[number];
const POLICY_ALIASES: Record<string, PolicySub> = {
  show: "get",
  list: "get",
  ls: "get",
  rm: "remove",
  delete: "remove",
};
const POLICY_FLAGS: Record<PolicySub, string[]> = {
  get: [],
  set: ["security", "ask", "ask-fallback", "agent"],
  allow: ["args", "agent", "ttl"],
  remove: [],
};
const SECURITY = ["deny", "allowlist", "full"];
const ASK = ["off", "on-miss", "always"];
/** What the secure defaults are when the policy file leaves a setting out. */
const BUILTIN: Required<PolicySettings> = {
  security: "allowlist",
  ask: "on-miss",
  askFallback: "deny",
};
const HOUR_MS = 3_600_000;
const PROMPT = "allow once [y] / always [a] / always for 1h [h] / deny [n] / skip [s]? ";
const ANSWER_HELP = "answer y (allow once), a (always), h (always for 1h), n (deny) or s (skip)";
/** How many decided request ids the watcher remembers (to drop late or repeated events). */
const DECIDED_KEEP = 500;

// ------------------------------------------------------------------ text

/** Characters never written raw to the terminal: controls, format (bidi, zero-width), odd spaces. */
const HIDDEN =
  /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Zl}\p{Zp}\p{Bidi_Control}\p{Default_Ignorable_Code_Point}\u{2800}\u{115F}\u{1160}\u{3164}\u{FFA0}]|(?! )\p{Zs}/gu;

/**
 * `text` with every control, format, bidi, invisible or non-ASCII space
 * character written as `\u{XXXX}`; everything else, backslashes included,
 * as it is. Whatever the gateway sends, nothing reaches the terminal that
 * it would interpret (escape sequences) or that reorders or hides text.
 *
 * @example
 * ```ts
 * visible("a\u202Eb\x1b[2J"); // "a\\u{202E}b\\u{001B}[2J"
 * ```
 */
export function visible(text: string): string {
  return text.replace(
    HIDDEN,
    (c) => `\\u{${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}}`,
  );
}

/** `1h 5m`, `29m 59s`, `45s`, `1h`. */
function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const two = (a: number, au: string, b: number, bu: string) => `${a}${au}${b ? ` ${b}${bu}` : ""}`;
  if (s < 3600) return two(Math.floor(s / 60), "m", s % 60, "s");
  if (s < 86400) return two(Math.floor(s / 3600), "h", Math.floor((s % 3600) / 60), "m");
  return two(Math.floor(s / 86400), "d", Math.floor((s % 86400) / 3600), "h");
}

/** `in 5m 0s`, `3m 2s ago`, `now`; `never` without a time. */
function relative(ms: number | undefined, now: number): string {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "never";
  const d = ms - now;
  if (Math.abs(d) < 1000) return "now";
  return d > 0 ? `in ${span(d)}` : `${span(-d)} ago`;
}

/** A local `HH:MM` (with the date when it is not today). */
function clock(ms: number, now: number): string {
  const d = new Date(ms);
  const hm = `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  return d.toDateString() === new Date(now).toDateString()
    ? hm
    : `${d.toISOString().slice(0, 10)} ${hm}`;
}

/** What each warning code means for a person deciding. */
const WARNING_HINTS: Record<string, string> = {
  bidi: "bidirectional controls can make text read differently from what runs",
  fullwidth: "fullwidth letters look like ASCII but are different characters",
  compatibility: "characters that change under normalisation",
  invisible: "invisible characters are hidden in the command",
  control: "control characters are hidden in the command",
  "mixed-script": "letters from several scripts: a look-alike program name",
};

function warningLine(w: string): string {
  const code = /^([a-z-]+):/.exec(w)?.[1] ?? "";
  const hint = WARNING_HINTS[code];
  return yellow(`  ⚠ ${visible(w)}${hint ? ` (${hint})` : ""}`);
}

// ------------------------------------------------------------------ events

const str = (v: unknown): v is string => typeof v === "string";

/** The card of an `exec.approval.requested` payload; undefined when it is not one. */
export function parseRequested(payload: unknown): ApprovalCard | undefined {
  const p = payload as Record<string, unknown> | null;
  if (!p || typeof p !== "object" || !str(p.id) || !p.id) return undefined;
  const r = (p.request ?? {}) as Record<string, unknown>;
  const strings = (v: unknown) => Array.isArray(v) ? v.filter(str) : [];
  const argv = strings(r.argv);
  const card: ApprovalCard = {
    id: p.id,
    host: str(p.host) ? p.host : "gateway",
    agentId: str(p.agentId) ? p.agentId : "main",
    command: str(r.command) ? r.command : argv.join(" "),
    argv,
    binary: str(r.binary) ? r.binary : argv[0] ?? "",
    cwd: str(r.cwd) ? r.cwd : "",
    envKeys: strings(r.envKeys),
    warnings: strings(p.warnings),
    createdAtMs: typeof p.createdAtMs === "number" ? p.createdAtMs : Date.now(),
    expiresAtMs: typeof p.expiresAtMs === "number" ? p.expiresAtMs : Number.POSITIVE_INFINITY,
  };
  if (str(p.sessionKey)) card.sessionKey = p.sessionKey;
  if (str(p.nodeId)) card.nodeId = p.nodeId;
  return card;
}

/** The warnings to show: the gateway's, and any this side finds in argv or in the text itself. */
function warningsOf(card: ApprovalCard): string[] {
  const out = [...card.warnings];
  const codes = new Set(out.map((w) => /^([a-z-]+):/.exec(w)?.[1]));
  if (card.argv.length) {
    for (const w of suspicious(card.argv)) {
      if (!codes.has(/^([a-z-]+):/.exec(w)?.[1])) out.push(w);
    }
  }
  if (visible(card.command) !== card.command) {
    out.push("unescaped: the gateway sent hidden characters in the command text (shown escaped)");
  }
  return out;
}

/**
 * The card a person decides on: the command (the gateway's escaped text,
 * printed as it is), binary, cwd, env names, agent and session, warnings and
 * the time left.
 */
export function formatCard(card: ApprovalCard, now: number = Date.now()): string {
  const who = [`agent ${visible(card.agentId)}`];
  if (card.sessionKey) who.push(`session ${visible(card.sessionKey)}`);
  who.push(`host ${visible(card.host)}`);
  if (card.nodeId) who.push(`node ${visible(card.nodeId)}`);
  const left = card.expiresAtMs - now;
  const lines = [
    "",
    bold(`approval request ${card.id.slice(0, 8)}`) + dim(` (${visible(card.id)})`),
    `  command  ${bold(visible(card.command))}`,
    `  binary   ${visible(card.binary)}`,
    `  cwd      ${visible(card.cwd) || dim("-")}`,
    `  env      ${card.envKeys.length ? card.envKeys.map(visible).join(", ") : dim("none")}`,
    `  from     ${who.join(" · ")}`,
  ];
  for (const w of warningsOf(card)) lines.push(warningLine(w));
  lines.push(
    `  expires  ${
      Number.isFinite(card.expiresAtMs)
        ? left > 0
          ? `in ${span(left)} (${
            clock(card.expiresAtMs, now)
          }), then the policy's ask-fallback decides`
          : red("expired")
        : dim("unknown")
    }`,
  );
  return lines.join("\n");
}

interface Resolved {
  id: string;
  decision: string;
  decidedBy: string;
}

function parseResolved(payload: unknown): Resolved | undefined {
  const p = payload as Record<string, unknown> | null;
  if (!p || typeof p !== "object" || !str(p.id)) return undefined;
  return {
    id: p.id,
    decision: str(p.decision) ? p.decision : "?",
    decidedBy: str(p.decidedBy) ? p.decidedBy : "?",
  };
}

// ------------------------------------------------------------------ stdin

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Lines of stdin, read ahead. `keepEarly`: lines that come while nobody
 * waits are queued (piped input); otherwise dropped (a terminal, where such
 * a line was typed before its card was shown).
 */
class StdinLines {
  #reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  #queue: string[] = [];
  #buf = "";
  #eof = false;
  #waiter: ((line: string | null) => void) | undefined;
  readonly keepEarly: boolean;

  constructor(keepEarly: boolean) {
    this.keepEarly = keepEarly;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        const r = await this.#reader.read();
        if (r.done) break;
        this.#buf += r.value;
        let nl: number;
        while ((nl = this.#buf.indexOf("\n")) >= 0) {
          const line = this.#buf.slice(0, nl).replace(/\r$/, "");
          this.#buf = this.#buf.slice(nl + 1);
          this.#push(line);
        }
      }
    } catch { /* stdin closed */ }
    if (this.#buf) this.#push(this.#buf);
    this.#buf = "";
    this.#eof = true;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.(null);
  }

  #push(line: string): void {
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      w(line);
    } else if (this.keepEarly) this.#queue.push(line);
  }

  /** The next line; null at the end of input. */
  next(): Promise<string | null> {
    const line = this.#queue.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.#eof) return Promise.resolve(null);
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  /** Stop waiting: a line that comes later is queued or dropped as if nobody had asked. */
  abandon(): void {
    this.#waiter = undefined;
  }

  /** Put a line back in front (it was read for a prompt that went away). */
  unread(line: string): void {
    if (this.keepEarly) this.#queue.unshift(line);
  }

  close(): void {
    this.#reader.cancel().catch(() => {});
  }
}

const encoder = new TextEncoder();

async function write(text: string): Promise<void> {
  const b = encoder.encode(text);
  let n = 0;
  while (n < b.length) n += await Deno.stdout.write(b.subarray(n));
}

type Answer = { decision: "allow-once" | "allow-always" | "deny"; ttlMs?: number } | "skip";

/** A typed answer; undefined when it is none of them. */
export function parseAnswer(line: string): Answer | undefined {
  switch (line.trim().toLowerCase()) {
    case "y":
    case "yes":
    case "once":
      return { decision: "allow-once" };
    case "a":
    case "always":
      return { decision: "allow-always" };
    case "h":
    case "1h":
      return { decision: "allow-always", ttlMs: HOUR_MS };
    case "n":
    case "no":
    case "deny":
      return { decision: "deny" };
    case "s":
    case "skip":
      return "skip";
  }
  return undefined;
}

// ------------------------------------------------------------------ the watcher

type Stop = "quit" | "lost";
type Outcome =
  | { kind: "answered" | "skipped" | "cancelled" | "eof" }
  | { kind: "stop"; stop: Stop }
  | { kind: "fatal"; code: number };

interface Current {
  card: ApprovalCard;
  /** Set once this side sends its answer: the resolved event that follows is ours. */
  answering: boolean;
  cancelled: Deferred<Resolved>;
}

async function watch(o: ApprovalsOptions, once: boolean): Promise<number> {
  const tty = Deno.stdin.isTerminal();
  const conn = await connectClient(o);
  if (typeof conn === "number") return conn;
  const { client } = conn;
  const scopes = client.hello?.auth.scopes ?? [];
  if (!scopes.includes("operator.admin") && !scopes.includes("operator.approvals")) {
    console.error(
      `${red("gw:")} this connection lacks operator.approvals (it has ${
        scopes.join(", ") || "none"
      }), so no approval requests would reach it\n  ` +
        dim("use the gateway's token, or a device paired with the approvals scope"),
    );
    await client.close().catch(() => {});
    return Exit.ERROR;
  }

  const queue: ApprovalCard[] = [];
  const decided = new Map<string, Resolved>();
  let current: Current | undefined;
  let wake = deferred<void>();
  const stop = deferred<Stop>();

  const offRequested = client.on("exec.approval.requested", (payload) => {
    const card = parseRequested(payload);
    if (!card || decided.has(card.id) || current?.card.id === card.id) return;
    if (queue.some((c) => c.id === card.id)) return;
    queue.push(card);
    wake.resolve();
  });
  const offResolved = client.on("exec.approval.resolved", (payload) => {
    const r = parseResolved(payload);
    if (!r) return;
    decided.set(r.id, r);
    if (decided.size > DECIDED_KEEP) decided.delete(decided.keys().next().value!);
    if (current?.card.id === r.id) {
      if (!current.answering) current.cancelled.resolve(r);
      return;
    }
    const i = queue.findIndex((c) => c.id === r.id);
    if (i >= 0) {
      const [c] = queue.splice(i, 1);
      console.log(
        dim(
          `request ${c!.id.slice(0, 8)} (${visible(c!.command)}) was decided elsewhere ` +
            `before it was shown: ${visible(r.decision)} by ${visible(r.decidedBy)}`,
        ),
      );
    }
  });
  const offState = client.onState((s) => {
    if (s === "closed") stop.resolve("lost");
  });
  const onSigint = () => stop.resolve("quit");
  Deno.addSignalListener("SIGINT", onSigint);
  const lines = new StdinLines(!tty);

  const finish = (s: Stop): number => {
    if (s === "quit") {
      console.log(dim(tty ? "\nstopped" : "stopped"));
      return Exit.OK;
    }
    console.error(`${red("gw:")} lost the connection to ${conn.target.url}`);
    return Exit.CONNECT;
  };

  try {
    console.log("watching for approval requests (Ctrl-C to stop)");
    console.log(
      dim(
        "requests made before this started are not shown (the gateway has no list of pending " +
          "requests); they wait until answered elsewhere or they expire",
      ),
    );
    for (;;) {
      while (!queue.length) {
        wake = deferred<void>();
        const s = await Promise.race([wake.promise.then(() => null), stop.promise]);
        if (s) return finish(s);
      }
      const card = queue.shift()!;
      const cur: Current = { card, answering: false, cancelled: deferred<Resolved>() };
      current = cur;
      let outcome: Outcome;
      try {
        console.log(formatCard(card));
        outcome = await ask(cur, lines, stop.promise, conn, tty, decided);
      } finally {
        current = undefined;
      }
      if (outcome.kind === "stop") return finish(outcome.stop);
      if (outcome.kind === "fatal") return outcome.code;
      if (outcome.kind === "eof") {
        console.log(
          dim(`end of input: request ${card.id.slice(0, 8)} stays pending; stopped watching`),
        );
        return once ? Exit.ERROR : Exit.OK;
      }
      if (outcome.kind === "answered" && once) return Exit.OK;
    }
  } finally {
    offRequested();
    offResolved();
    offState();
    Deno.removeSignalListener("SIGINT", onSigint);
    lines.close();
    await client.close().catch(() => {});
  }
}

/** Prompt for one card until it is answered, skipped, decided elsewhere, or the watch stops. */
async function ask(
  cur: Current,
  lines: StdinLines,
  stopped: Promise<Stop>,
  conn: Connection,
  tty: boolean,
  decided: ReadonlyMap<string, Resolved>,
): Promise<Outcome> {
  const { card } = cur;
  const short = card.id.slice(0, 8);
  const elsewhere = (r: Resolved): Outcome => {
    console.log(
      yellow(`request ${short} was decided elsewhere: ${visible(r.decision)}`) +
        dim(` (by ${visible(r.decidedBy)}); not asking any more`),
    );
    return { kind: "cancelled" };
  };
  for (;;) {
    await write(PROMPT);
    const reading = lines.next();
    const got = await Promise.race([
      reading.then((line) => ({ t: "line" as const, line })),
      cur.cancelled.promise.then((r) => ({ t: "cancelled" as const, r })),
      stopped.then((s) => ({ t: "stop" as const, s })),
    ]);
    if (got.t !== "line") {
      lines.abandon();
      // A line may have been handed over in the same moment: it belongs to the next prompt.
      void reading.then((l) => l !== null && lines.unread(l));
      if (!tty || got.t === "cancelled") await write("\n");
      return got.t === "cancelled" ? elsewhere(got.r) : { kind: "stop", stop: got.s };
    }
    if (got.line === null) {
      await write("\n");
      return { kind: "eof" };
    }
    if (!tty) await write(`${visible(got.line)}\n`);
    const answer = parseAnswer(got.line);
    if (answer === undefined) {
      console.log(yellow(ANSWER_HELP));
      continue;
    }
    if (answer === "skip") {
      console.log(
        dim(`skipped ${short}: it stays pending until answered elsewhere or it expires`),
      );
      return { kind: "skipped" };
    }
    const already = decided.get(card.id);
    if (already) return elsewhere(already);
    cur.answering = true;
    const params: Record<string, unknown> = { id: card.id, decision: answer.decision };
    if (answer.ttlMs !== undefined) params.ttlMs = answer.ttlMs;
    try {
      await conn.client.request("exec.approval.resolve", params as never, {
        timeoutMs: conn.timeoutMs,
      });
    } catch (e) {
      if (e instanceof GatewayRequestError && e.details?.code === "APPROVAL_NOT_FOUND") {
        const r = decided.get(card.id);
        if (r) return elsewhere(r);
        console.log(yellow(`request ${short} is no longer pending (decided elsewhere or expired)`));
        return { kind: "cancelled" };
      }
      return { kind: "fatal", code: reportRequestError(e, "exec.approval.resolve", conn) };
    }
    const now = Date.now();
    const agent = visible(card.agentId);
    if (answer.decision === "allow-once") console.log(`${green("allowed once")} ${short}`);
    else if (answer.decision === "deny") console.log(`${red("denied")} ${short}`);
    else {
      console.log(
        `${green(answer.ttlMs ? `allowed for ${span(answer.ttlMs)}` : "allowed always")} ${short}` +
          dim(
            `: this exact command is on agent ${agent}'s allowlist` +
              (answer.ttlMs ? ` until ${clock(now + answer.ttlMs, now)}` : "") +
              " (gw approvals policy get)",
          ),
      );
    }
    return { kind: "answered" };
  }
}

// ------------------------------------------------------------------ the policy

type Call = (method: string, params: unknown) => Promise<unknown>;

function isConflict(e: unknown): boolean {
  return (e as { details?: { code?: unknown } } | null)?.details?.code === "CONFLICT";
}

/**
 * Read the policy, apply `mutate` to a copy and write it with the hash read
 * (`exec.approvals.set`); on CONFLICT read and apply once more. Resolves
 * with the written snapshot and what `mutate` returned the last time.
 */
export async function updatePolicy<T>(
  call: Call,
  mutate: (file: PolicyFile, now: number) => T,
): Promise<{ snapshot: PolicySnapshot; result: T }> {
  for (let attempt = 0;; attempt++) {
    const snap = await call("exec.approvals.get", {}) as PolicySnapshot;
    const file = structuredClone(snap.file);
    const result = mutate(file, Date.now());
    try {
      const snapshot = await call("exec.approvals.set", {
        file,
        baseHash: snap.hash,
      }) as PolicySnapshot;
      return { snapshot, result };
    } catch (e) {
      if (attempt === 0 && isConflict(e)) continue;
      throw e;
    }
  }
}

function settingsWords(s: PolicySettings, inherit?: Required<PolicySettings>): string[] {
  const word = (k: keyof PolicySettings) =>
    s[k] !== undefined ? visible(String(s[k])) : inherit ? dim(`(${inherit[k]})`) : "-";
  return [word("security"), word("ask"), word("askFallback")];
}

function argsWords(e: AllowEntry): string {
  if (e.argPattern === undefined) return "any";
  return e.argPattern === "" ? "(none)" : visible(e.argPattern);
}

/** The readable summary of `gw approvals policy get`. */
export function formatPolicy(snap: PolicySnapshot, now: number = Date.now()): string {
  const f = snap.file;
  const defaults: Required<PolicySettings> = {
    security: f.defaults.security ?? BUILTIN.security,
    ask: f.defaults.ask ?? BUILTIN.ask,
    askFallback: f.defaults.askFallback ?? BUILTIN.askFallback,
  };
  const out = [
    `${bold("exec policy")} of the gateway host ${
      dim(`(${visible(snap.path)}, hash ${snap.hash.slice(0, 8)})`)
    }${snap.exists ? "" : dim(" never written: the built-in defaults")}`,
    `${bold("defaults")}  security ${defaults.security} · ask ${defaults.ask} · ` +
    `ask-fallback ${defaults.askFallback}`,
  ];
  const agents = Object.entries(f.agents).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  const withSettings = agents.filter(([, a]) =>
    a.security !== undefined || a.ask !== undefined || a.askFallback !== undefined
  );
  if (withSettings.length) {
    out.push("", bold("agents"));
    out.push(table(
      ["AGENT", "SECURITY", "ASK", "ASK-FALLBACK"],
      withSettings.map(([id, a]) => [visible(id), ...settingsWords(a, defaults)]),
    ));
    out.push(dim("(x): not set for the agent, the default applies"));
  }
  const entries = agents.flatMap(([agent, a]) => (a.allowlist ?? []).map((e) => ({ agent, e })));
  out.push("", bold(`allowlist (${entries.length})`));
  if (!entries.length) out.push(dim("  empty: every command asks (with ask on-miss)"));
  else {
    out.push(table(
      ["ID", "AGENT", "BINARY", "ARGS", "EXPIRES", "ADDED", "BY"],
      entries.map(({ agent, e }) => {
        const expired = e.expiresAtMs !== undefined && e.expiresAtMs <= now;
        return [
          visible(e.id.slice(0, 8)),
          agent === "*" ? "* (all)" : visible(agent),
          visible(e.pattern),
          argsWords(e),
          expired ? `expired ${relative(e.expiresAtMs, now)}` : relative(e.expiresAtMs, now),
          relative(e.addedAtMs, now),
          visible(e.addedBy ?? "-"),
        ];
      }),
      { paint: (_r, c, cell) => c === 4 && cell.startsWith("expired") ? dim(cell) : cell },
    ));
    out.push(
      dim("BINARY globs the resolved path (* within a directory, ** across); ARGS the args"),
    );
  }
  return out.join("\n");
}

function checkFlags(what: string, f: ApprovalsFlags, allowed: string[]): void {
  for (const [k, v] of Object.entries(f)) {
    if (v === undefined || allowed.includes(k)) continue;
    throw new UsageError(`${what} does not take --${k}`);
  }
}

function choice(f: ApprovalsFlags, name: string, values: string[], inherit: boolean) {
  const v = strFlag(f, name);
  if (v === undefined) return undefined;
  const ok = inherit ? [...values, "inherit"] : values;
  if (!ok.includes(v)) {
    throw new UsageError(
      `--${name}: expected ${ok.join(", ")}, got '${v}'` +
        (v === "inherit" ? " (inherit only goes with --agent)" : ""),
    );
  }
  return v;
}

function agentFlag(f: ApprovalsFlags, fallback: string): string {
  const a = strFlag(f, "agent");
  if (a === undefined) return fallback;
  if (!a.trim() || a.length > 64) {
    throw new UsageError(`--agent: expected an agent id (1 to 64 characters), got '${a}'`);
  }
  return a;
}

function patternArg(p: string | undefined): string {
  if (p === undefined || !p.trim()) {
    throw new UsageError(
      "usage: gw approvals policy allow <pattern> [--args GLOB] [--agent ID] [--ttl 1h]",
    );
  }
  if (!p.startsWith("/") && !p.startsWith("**") && !/^[A-Za-z]:[\\/]/.test(p)) {
    throw new UsageError(
      `<pattern> globs the resolved binary path: expected something like /usr/bin/git or **/git, got '${p}'`,
    );
  }
  if (p.length > 1024) throw new UsageError("<pattern>: at most 1024 characters");
  return p;
}

function ttlFlag(f: ApprovalsFlags): number | undefined {
  const t = strFlag(f, "ttl");
  if (t === undefined) return undefined;
  const ms = parseDuration(t);
  if (ms === undefined || ms < 1000) {
    throw new UsageError(`--ttl: expected a duration of at least 1s such as 1h or 7d, got '${t}'`);
  }
  return ms;
}

async function policy(args: string[], o: ApprovalsOptions): Promise<number> {
  const [word = "get", ...rest] = args;
  const sub = POLICY_ALIASES[word] ?? word as PolicySub;
  if (!(POLICY_SUBS as readonly string[]).includes(sub)) {
    throw new UsageError(
      `unknown approvals policy command '${word}' (expected ${POLICY_SUBS.join(", ")})`,
    );
  }
  const f = o.flags;
  checkFlags(`approvals policy ${sub}`, f, [...CLIENT, "json", ...POLICY_FLAGS[sub]]);
  const [arg, ...extra] = rest;
  const wantsArg = sub === "allow" || sub === "remove";
  if (extra.length || (!wantsArg && arg !== undefined)) {
    throw new UsageError(`unexpected argument '${extra[0] ?? arg}'`);
  }

  // Everything the arguments say is checked before connecting.
  let mutate: (file: PolicyFile, now: number) => unknown = () => undefined;
  let done: (snap: PolicySnapshot, result: unknown) => string = () => "";
  if (sub === "set") {
    const agent = strFlag(f, "agent") === undefined ? undefined : agentFlag(f, "");
    const change: Record<keyof PolicySettings, string | undefined> = {
      security: choice(f, "security", SECURITY, agent !== undefined),
      ask: choice(f, "ask", ASK, agent !== undefined),
      askFallback: choice(f, "ask-fallback", SECURITY, agent !== undefined),
    };
    if (Object.values(change).every((v) => v === undefined)) {
      throw new UsageError(
        "usage: gw approvals policy set [--security deny|allowlist|full] [--ask off|on-miss|always] " +
          "[--ask-fallback deny|allowlist|full] [--agent ID] (at least one setting)",
      );
    }
    mutate = (file) => {
      const target: PolicySettings = agent === undefined
        ? file.defaults
        : (file.agents[agent] ??= {});
      for (const [k, v] of Object.entries(change) as [keyof PolicySettings, string | undefined][]) {
        if (v === undefined) continue;
        if (v === "inherit") delete target[k];
        else (target as Record<string, string>)[k] = v;
      }
    };
    done = (snap) => {
      const s = agent === undefined ? snap.file.defaults : snap.file.agents[agent] ?? {};
      const [security, ask, fallback] = settingsWords(
        s,
        agent === undefined ? BUILTIN : {
          security: snap.file.defaults.security ?? BUILTIN.security,
          ask: snap.file.defaults.ask ?? BUILTIN.ask,
          askFallback: snap.file.defaults.askFallback ?? BUILTIN.askFallback,
        },
      );
      return `${green("saved")} ${agent === undefined ? "defaults" : `agent ${visible(agent)}`}: ` +
        `security ${security} · ask ${ask} · ask-fallback ${fallback}`;
    };
  } else if (sub === "allow") {
    const pattern = patternArg(arg);
    const argPattern = strFlag(f, "args");
    if (argPattern !== undefined && argPattern.length > 4096) {
      throw new UsageError("--args: at most 4096 characters");
    }
    const agent = agentFlag(f, "*");
    const ttl = ttlFlag(f);
    mutate = (file, now) => {
      const entry: AllowEntry = {
        id: crypto.randomUUID(),
        pattern,
        addedAtMs: now,
        addedBy: "cli",
      };
      if (argPattern !== undefined) entry.argPattern = argPattern;
      if (ttl !== undefined) entry.expiresAtMs = now + ttl;
      ((file.agents[agent] ??= {}).allowlist ??= []).push(entry);
      return entry;
    };
    done = (_snap, r) => {
      const e = r as AllowEntry;
      return `${green("allowed")} ${visible(e.pattern)} with args ${argsWords(e)} for ${
        agent === "*" ? "every agent" : `agent ${visible(agent)}`
      }${e.expiresAtMs ? ` until ${clock(e.expiresAtMs, Date.now())}` : ""} ${
        dim(`(entry ${e.id.slice(0, 8)})`)
      }`;
    };
  } else if (sub === "remove") {
    if (arg === undefined || !arg.trim()) {
      throw new UsageError(
        "usage: gw approvals policy remove <entryId|prefix> (gw approvals policy get)",
      );
    }
    const ref = arg.trim().toLowerCase();
    mutate = (file) => {
      const all = Object.entries(file.agents).flatMap(([agent, a]) =>
        (a.allowlist ?? []).map((e) => ({ agent, e }))
      );
      const exact = all.filter((x) => x.e.id.toLowerCase() === ref);
      const hits = exact.length ? exact : all.filter((x) => x.e.id.toLowerCase().startsWith(ref));
      if (!hits.length) {
        throw new LookupError(
          `no allowlist entry has an id starting with '${visible(arg)}' (gw approvals policy get)`,
        );
      }
      if (hits.length > 1) {
        throw new LookupError(
          `'${visible(arg)}' is ambiguous: ${hits.length} entries start with it (${
            hits.slice(0, 5).map((h) => visible(h.e.id.slice(0, 12))).join(", ")
          }); give more of the id`,
        );
      }
      const { agent, e } = hits[0]!;
      const a = file.agents[agent]!;
      a.allowlist = a.allowlist!.filter((x) => x !== e);
      if (!a.allowlist.length) delete a.allowlist;
      if (!Object.keys(a).length) delete file.agents[agent];
      return { agent, entry: e };
    };
    done = (_snap, r) => {
      const { agent, entry } = r as { agent: string; entry: AllowEntry };
      return `${yellow("removed")} entry ${visible(entry.id.slice(0, 8))}: ${
        visible(entry.pattern)
      } ` +
        `with args ${argsWords(entry)} (${
          agent === "*" ? "every agent" : `agent ${visible(agent)}`
        })`;
    };
  }

  const conn = await connectClient(o);
  if (typeof conn === "number") return conn;
  let method = "exec.approvals.get";
  const call: Call = async (m, params) => {
    method = m;
    return await conn.client.request(m, params as never, { timeoutMs: conn.timeoutMs });
  };
  try {
    if (sub === "get") {
      const snap = await call("exec.approvals.get", {}) as PolicySnapshot;
      console.log(o.json ? JSON.stringify(snap, null, 2) : formatPolicy(snap));
      return Exit.OK;
    }
    const { snapshot, result } = await updatePolicy(call, mutate);
    if (o.json) {
      const extra = sub === "allow"
        ? { entry: result }
        : sub === "remove"
        ? { removed: (result as { entry: AllowEntry }).entry }
        : {};
      console.log(JSON.stringify({ ...snapshot, ...extra }, null, 2));
    } else console.log(done(snapshot, result));
    return Exit.OK;
  } catch (e) {
    if (e instanceof LookupError) return reportLookupError(e, o.json);
    if (isConflict(e) && !o.json) {
      console.error(
        `${red("gw:")} the exec policy changed twice while this command wrote it; run it again`,
      );
      return Exit.ERROR;
    }
    return reportRequestError(e, method, conn, o.json);
  } finally {
    await conn.client.close().catch(() => {});
  }
}

// ------------------------------------------------------------------ entry

/**
 * `gw approvals [--once]` (watch and answer requests) and
 * `gw approvals policy [get|set|allow|remove] ...`. Returns the exit code:
 * 0 ok (Ctrl-C stops the watcher with 0), 1 error response or an unknown or
 * ambiguous entry id, 3 cannot connect or the connection was lost.
 *
 * @throws {UsageError} for a mistake in the arguments (exit 2).
 */
export async function runApprovals(args: string[], o: ApprovalsOptions): Promise<number> {
  const [word, ...rest] = args;
  if (word === "policy") return await policy(rest, o);
  if (word !== undefined && word !== "watch") {
    throw new UsageError(`unknown approvals command '${word}' (expected watch or policy)`);
  }
  checkFlags("approvals", o.flags, [...CLIENT, "once"]);
  if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`);
  return await watch(o, o.flags.once === true);
}
