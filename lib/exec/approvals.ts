/**
 * Exec approvals: whether a command may run on a host, and the flow that asks
 * a person when it may not yet. A decision is pinned to the exact resolved
 * binary, args, cwd and env; anything different is a new question. An
 * `allow-always` becomes an allowlist entry for exactly that binary and those
 * args, optionally expiring (`ttlMs`).
 *
 * @module
 */
import type { Store } from "../store/mod.ts";
import type { AllowEntry, PolicyFile, PolicySettings } from "../store/exec.ts";
import { displayCommand, matchesAllowlist, suspicious } from "./command.ts";

/** The default time a request waits for a person (OpenClaw: 30 minutes). */
export const DEFAULT_APPROVAL_TIMEOUT_MS = 30 * 60_000;
/** Resolved requests stay answerable (waitDecision) this long. */
const RESOLVED_KEEP_MS = 15_000;

/** A person's answer. */
export type Decision = "allow-once" | "allow-always" | "deny";

/** Exactly what would run. */
export interface Invocation {
  /** Resolved absolute binary path. */
  binary: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}

/** The policy's verdict before asking anyone. */
export type Verdict = "allow" | "deny" | "ask";

/** A request waiting for (or given) a decision. */
export interface ApprovalRequest {
  id: string;
  host: string;
  agentId: string;
  sessionKey?: string;
  nodeId?: string;
  invocation: Invocation;
  /** What a person is shown: NFKC-normalised, invisible and bidi characters escaped. */
  display: string;
  /** Why the text looks odd, if it does (fullwidth, invisible, bidi, mixed scripts). */
  warnings: string[];
  createdAtMs: number;
  expiresAtMs: number;
  decision?: Decision;
  /** How the decision came about: a person, or the fallback after the timeout. */
  decidedBy?: string;
  decidedAtMs?: number;
}

/** Glob-escape a literal for an allowlist pattern. */
function globLiteral(s: string): string {
  return s.replace(/[\\*?[\]]/g, (c) => `\\${c}`);
}

/** The effective settings for an agent: its own over the defaults over the secure default. */
export function effective(file: PolicyFile, agentId: string): Required<PolicySettings> {
  const a = file.agents[agentId] ?? {};
  return {
    security: a.security ?? file.defaults.security ?? "allowlist",
    ask: a.ask ?? file.defaults.ask ?? "on-miss",
    askFallback: a.askFallback ?? file.defaults.askFallback ?? "deny",
  };
}

/** Live allowlist entries of an agent (its own and the defaults' `*` agent), expired ones left out. */
function allowlist(file: PolicyFile, agentId: string, now: number): AllowEntry[] {
  return [...(file.agents[agentId]?.allowlist ?? []), ...(file.agents["*"]?.allowlist ?? [])]
    .filter((e) => e.expiresAtMs === undefined || e.expiresAtMs > now);
}

/** The verdict of `file` for `inv` run by `agentId`. */
export function verdict(file: PolicyFile, agentId: string, inv: Invocation, now: number): Verdict {
  const s = effective(file, agentId);
  if (s.security === "deny") return "deny";
  if (s.ask === "always") return "ask";
  if (s.security === "full") return "allow";
  const listed = allowlist(file, agentId, now).some((e) =>
    matchesAllowlist(
      inv.binary,
      inv.args,
      e.argPattern === undefined ? { pattern: e.pattern } : {
        pattern: e.pattern,
        argPattern: e.argPattern,
      },
    )
  );
  if (listed) return "allow";
  return s.ask === "off" ? "deny" : "ask";
}

/** What the service needs. */
export interface ApprovalDeps {
  store: Store;
  /** Broadcast `exec.approval.requested` / `exec.approval.resolved`. */
  emit: (event: string, payload: unknown) => void;
  now?: () => number;
}

interface Pending {
  req: ApprovalRequest;
  waiters: Set<(r: ApprovalRequest) => void>;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** The approvals service. One per gateway. */
export class ExecApprovals {
  readonly #d: ApprovalDeps;
  readonly #requests = new Map<string, Pending>();

  /** Create the service. */
  constructor(deps: ApprovalDeps) {
    this.#d = deps;
  }

  #now(): number {
    return this.#d.now?.() ?? Date.now();
  }

  /** The policy's verdict for `inv` on `host`. */
  async check(host: string, agentId: string, inv: Invocation): Promise<Verdict> {
    return verdict((await this.#d.store.exec.get(host)).file, agentId, inv, this.#now());
  }

  /**
   * Ask: record a request and tell approvals-scoped operators. `timeoutMs`
   * past, the host's `askFallback` decides.
   */
  request(
    host: string,
    agentId: string,
    inv: Invocation,
    opts: { sessionKey?: string; nodeId?: string; timeoutMs?: number } = {},
  ): ApprovalRequest {
    const now = this.#now();
    const timeoutMs = opts.timeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_MS;
    const shown = displayCommand([inv.binary, ...inv.args]);
    const req: ApprovalRequest = {
      id: crypto.randomUUID(),
      host,
      agentId,
      invocation: structuredClone(inv),
      display: shown.text,
      warnings: suspicious([inv.binary, ...inv.args]),
      createdAtMs: now,
      expiresAtMs: now + timeoutMs,
    };
    if (opts.sessionKey) req.sessionKey = opts.sessionKey;
    if (opts.nodeId) req.nodeId = opts.nodeId;
    const p: Pending = { req, waiters: new Set(), timer: undefined };
    p.timer = setTimeout(() => void this.#fallback(p), timeoutMs);
    this.#requests.set(req.id, p);
    this.#d.emit("exec.approval.requested", view(req));
    return req;
  }

  async #fallback(p: Pending): Promise<void> {
    if (p.req.decision) return;
    const file = (await this.#d.store.exec.get(p.req.host)).file;
    const fb = effective(file, p.req.agentId).askFallback;
    const allowed = fb === "full" ||
      (fb === "allowlist" &&
        allowlist(file, p.req.agentId, this.#now()).some((e) =>
          matchesAllowlist(
            p.req.invocation.binary,
            p.req.invocation.args,
            e.argPattern === undefined
              ? { pattern: e.pattern }
              : { pattern: e.pattern, argPattern: e.argPattern },
          )
        ));
    this.#decide(p, allowed ? "allow-once" : "deny", `timeout (askFallback ${fb})`);
  }

  #decide(p: Pending, decision: Decision, by: string): void {
    if (p.req.decision) return;
    clearTimeout(p.timer);
    p.req.decision = decision;
    p.req.decidedBy = by;
    p.req.decidedAtMs = this.#now();
    this.#d.emit("exec.approval.resolved", {
      id: p.req.id,
      decision,
      decidedBy: by,
      ts: p.req.decidedAtMs,
    });
    for (const w of p.waiters) w(p.req);
    p.waiters.clear();
    const keep = setTimeout(() => this.#requests.delete(p.req.id), RESOLVED_KEEP_MS);
    Deno.unrefTimer(keep);
  }

  /** A request, pending or recently resolved; undefined when unknown or gone. */
  get(id: string): ApprovalRequest | undefined {
    return this.#requests.get(id)?.req;
  }

  /** Pending requests, oldest first. */
  pending(): ApprovalRequest[] {
    return [...this.#requests.values()].filter((p) => !p.req.decision).map((p) => p.req);
  }

  /**
   * A person's answer. `allow-always` adds exactly this binary and these args
   * to the agent's allowlist on that host, expiring after `ttlMs` if given.
   * Resolves false when the request is unknown, expired or already decided.
   */
  async resolve(id: string, decision: Decision, by: string, ttlMs?: number): Promise<boolean> {
    const p = this.#requests.get(id);
    if (!p || p.req.decision) return false;
    if (decision === "allow-always") {
      const now = this.#now();
      const inv = p.req.invocation;
      await this.#d.store.exec.update(p.req.host, (f) => {
        const agent = f.agents[p.req.agentId] ??= {};
        const entry: AllowEntry = {
          id: crypto.randomUUID(),
          pattern: globLiteral(inv.binary),
          argPattern: inv.args.map(globLiteral).join(" "),
          addedAtMs: now,
          addedBy: by,
        };
        if (ttlMs !== undefined) entry.expiresAtMs = now + ttlMs;
        (agent.allowlist ??= []).push(entry);
      });
    }
    this.#decide(p, decision, by);
    return true;
  }

  /** The decision of `id`, waiting at most `timeoutMs`; null on timeout; undefined when unknown. */
  waitDecision(id: string, timeoutMs: number): Promise<ApprovalRequest | null | undefined> {
    const p = this.#requests.get(id);
    if (!p) return Promise.resolve(undefined);
    if (p.req.decision) return Promise.resolve(p.req);
    return new Promise((resolve) => {
      const done = (r: ApprovalRequest | null) => {
        clearTimeout(t);
        p.waiters.delete(onDecision);
        resolve(r);
      };
      const onDecision = (r: ApprovalRequest) => done(r);
      const t = setTimeout(() => done(null), timeoutMs);
      p.waiters.add(onDecision);
    });
  }

  /** Stop: pending requests are denied (nobody is left to run them). */
  close(): void {
    for (const p of this.#requests.values()) {
      clearTimeout(p.timer);
      if (!p.req.decision) this.#decide(p, "deny", "gateway shutdown");
    }
    this.#requests.clear();
  }
}

/** A request as the events and methods show it (env values are not shown, only names). */
export function view(r: ApprovalRequest): Record<string, unknown> {
  return {
    id: r.id,
    host: r.host,
    agentId: r.agentId,
    ...(r.sessionKey ? { sessionKey: r.sessionKey } : {}),
    ...(r.nodeId ? { nodeId: r.nodeId } : {}),
    request: {
      command: r.display,
      argv: [r.invocation.binary, ...r.invocation.args],
      binary: r.invocation.binary,
      cwd: r.invocation.cwd,
      envKeys: Object.keys(r.invocation.env).sort(),
    },
    warnings: r.warnings,
    createdAtMs: r.createdAtMs,
    expiresAtMs: r.expiresAtMs,
    ...(r.decision
      ? { decision: r.decision, decidedBy: r.decidedBy, decidedAtMs: r.decidedAtMs }
      : {}),
  };
}
