/**
 * Heartbeats: every `agents.defaults.heartbeat.every` (per agent overrides
 * allowed) each agent gets one heartbeat, recorded (`last-heartbeat`) and
 * broadcast (the `heartbeat` event). `set-heartbeats` switches them on and
 * off, persistently; `wake {mode: "now"}` runs one at once.
 *
 * A heartbeat is an agent turn on the agent's main session, as in OpenClaw:
 * the agent is given its workspace's `HEARTBEAT.md` (`<stateDir>/workspace/`
 * for the default agent, `<stateDir>/workspace-<agentId>/` for others) and
 * the system events queued for the session, and asked to answer exactly
 * `HEARTBEAT_OK` when nothing needs attention.
 * - No HEARTBEAT.md (or one with only headings, comments and empty list
 *   items) and no queued system event: skipped, no model call.
 * - `HEARTBEAT_OK` (or an empty reply): silent. Recorded as `ok-token`
 *   (`ok-empty`) with `silent: true`, nothing delivered, and the turn is
 *   removed from the transcript so that polls do not pile up in the
 *   conversation.
 * - Anything else is the heartbeat's message: it stays in the transcript, the
 *   record carries it (`preview`, at most 200 characters as in OpenClaw, and
 *   `text`), and it is sent to `heartbeat.target`/`heartbeat.to` when both
 *   are set (status `sent`); without a target the status is `skipped` with
 *   reason `target-none`, as OpenClaw reports it.
 *
 * @module
 */
import type { Clock, TimerHandle } from "./clock.ts";
import type { GwConfig } from "./config/schema.ts";
import { parseDuration } from "./duration.ts";
import type { HeartbeatInfo, HeartbeatRecord } from "./protocol/types.ts";
import type { AgentRuntime } from "./agent/runtime.ts";
import type { Store } from "./store/mod.ts";
import type { ChannelRegistry } from "../channels/registry.ts";
import type { Logger } from "./log.ts";
import type { TranscriptMessage } from "./agent/types.ts";

/** The reply that means "nothing needs attention". */
export const HEARTBEAT_TOKEN = "HEARTBEAT_OK";
/** The file a heartbeat follows, in the agent's workspace. */
export const HEARTBEAT_FILE = "HEARTBEAT.md";
/** Most characters of HEARTBEAT.md given to the model. */
export const MAX_HEARTBEAT_FILE_CHARS = 64 * 1024;
/** A reply that is the token plus at most this many characters is still an acknowledgement. */
export const HEARTBEAT_ACK_MAX_CHARS = 300;
/** The user message of a heartbeat turn (OpenClaw's prompt idea). */
export const HEARTBEAT_PROMPT =
  `Heartbeat: follow HEARTBEAT.md (in the system prompt) strictly and handle any system events listed there. Do not infer or repeat old tasks from prior chats. If nothing needs attention, reply exactly ${HEARTBEAT_TOKEN}.`;

/** A heartbeat record with what gw adds: the message, where it went, whether it was silent. */
export interface HeartbeatResult extends HeartbeatRecord {
  /** The message, cut to 200 characters (OpenClaw's field). */
  preview?: string;
  /** The whole message. */
  text?: string;
  /** The channel it was delivered to. */
  channel?: string;
  /** The chat it was delivered to. */
  to?: string;
  /** True when nothing was said (HEARTBEAT_OK). */
  silent?: boolean;
  /** The session the heartbeat ran on. */
  sessionKey?: string;
}

/** How one heartbeat went, before the runner stamps time and agent. */
export type HeartbeatOutcome = Omit<HeartbeatResult, "ts" | "agentId">;

/** Options of one heartbeat. */
export interface BeatOptions {
  /** The session to run on; default the agent's main session. */
  sessionKey?: string;
  /** Why it runs: `interval` or `wake`. */
  reason?: string;
}

/** Runs one heartbeat for an agent and says how it went. */
export type HeartbeatFn = (agentId: string, opts: BeatOptions) => Promise<HeartbeatOutcome>;

/** Where the runner reports. */
export interface HeartbeatSink {
  record(record: HeartbeatResult): Promise<void>;
}

/** Heartbeat settings of each agent, resolved from the config. */
export function heartbeatSettings(config: GwConfig): ({ agentId: string } & HeartbeatInfo)[] {
  const defaults = config.agents.defaults.heartbeat;
  const agents = config.agents.list.length ? config.agents.list : [{ id: "main" }];
  return agents.map((a) => {
    const own = "heartbeat" in a ? a.heartbeat : undefined;
    const every = own?.every ?? defaults.every;
    const everyMs = parseDuration(every) ?? 0;
    return {
      agentId: a.id,
      enabled: (own?.enabled ?? defaults.enabled) && everyMs > 0,
      every,
      everyMs,
    };
  });
}

/** Where an agent's heartbeat message goes: `heartbeat.target`/`to`/`accountId`, per agent first. */
export function heartbeatTarget(
  config: GwConfig,
  agentId: string,
): { target?: string; to?: string; accountId?: string } {
  const d = config.agents.defaults.heartbeat;
  const own = config.agents.list.find((a) => a.id === agentId)?.heartbeat;
  const out: { target?: string; to?: string; accountId?: string } = {};
  const target = own?.target ?? d.target;
  const to = own?.to ?? d.to;
  const accountId = own?.accountId ?? d.accountId;
  if (target !== undefined && target !== "none") out.target = target;
  if (to !== undefined) out.to = to;
  if (accountId !== undefined) out.accountId = accountId;
  return out;
}

/** The default agent's id (the one marked default, else the first, else `main`). */
function defaultAgentOf(cfg: GwConfig): string {
  const list = cfg.agents.list;
  return (list.find((a) => a.default) ?? list[0])?.id ?? "main";
}

/**
 * An agent's workspace folder: `<stateDir>/workspace` for the default agent,
 * `<stateDir>/workspace-<agentId>` for the others (OpenClaw's layout).
 */
export function workspaceDir(stateDir: string, config: GwConfig, agentId: string): string {
  return agentId === defaultAgentOf(config)
    ? `${stateDir}/workspace`
    : `${stateDir}/workspace-${agentId}`;
}

/**
 * Whether HEARTBEAT.md has nothing to act on: only blank lines, headings,
 * HTML comments, code fences and empty list items (OpenClaw's rule).
 */
export function isHeartbeatContentEmpty(content: string): boolean {
  const text = content.replace(/<!--[\s\S]*?(?:-->|$)/g, "");
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (!t || /^#+(\s|$)/.test(t) || /^[-*+]\s*(\[[\sXx]?\]\s*)?$/.test(t)) continue;
    if (/^```[A-Za-z0-9_-]*$/.test(t)) continue;
    return false;
  }
  return true;
}

/**
 * Strip `HEARTBEAT_OK` from the edges of a reply (markup around it allowed).
 * `silent` when what is left is empty or short enough to be an
 * acknowledgement ({@link HEARTBEAT_ACK_MAX_CHARS}); otherwise `text` is the message.
 */
export function stripHeartbeatToken(
  raw: string,
  maxAckChars = HEARTBEAT_ACK_MAX_CHARS,
): { silent: boolean; text: string; didStrip: boolean } {
  const trimmed = raw.trim();
  if (!trimmed) return { silent: true, text: "", didStrip: false };
  if (!trimmed.includes(HEARTBEAT_TOKEN)) return { silent: false, text: trimmed, didStrip: false };
  const stripEdges = (s: string): { text: string; didStrip: boolean } => {
    let text = s.trim();
    let didStrip = false;
    const atEnd = new RegExp(`${HEARTBEAT_TOKEN}[^\\w]{0,4}$`);
    for (let changed = true; changed;) {
      changed = false;
      const next = text.trim();
      if (next.startsWith(HEARTBEAT_TOKEN)) {
        text = next.slice(HEARTBEAT_TOKEN.length).trimStart();
        didStrip = changed = true;
      } else if (atEnd.test(next)) {
        const idx = next.lastIndexOf(HEARTBEAT_TOKEN);
        const before = next.slice(0, idx).trimEnd();
        text = before ? `${before}${next.slice(idx + HEARTBEAT_TOKEN.length).trimStart()}` : "";
        text = text.trimEnd();
        didStrip = changed = true;
      }
    }
    return { text: text.replace(/\s+/g, " ").trim(), didStrip };
  };
  const unmarked = trimmed.replace(/<[^>]*>/g, " ").replace(/&nbsp;/gi, " ").replace(
    /^[*`~_]+/,
    "",
  ).replace(/[*`~_]+$/, "");
  const a = stripEdges(trimmed);
  const b = stripEdges(unmarked);
  const picked = a.didStrip && a.text ? a : b;
  if (!picked.didStrip) return { silent: false, text: trimmed, didStrip: false };
  if (!picked.text || picked.text.length <= maxAckChars) {
    return { silent: true, text: "", didStrip: true };
  }
  return { silent: false, text: picked.text, didStrip: true };
}

/** What {@link agentHeartbeat} needs. */
export interface AgentHeartbeatDeps {
  stateDir: string;
  config: () => GwConfig;
  agent: AgentRuntime;
  store: Store;
  channels: ChannelRegistry;
  log: Logger;
}

/** The heartbeat as an agent turn (see the module doc). */
export function agentHeartbeat(deps: AgentHeartbeatDeps): HeartbeatFn {
  return async (agentId, opts) => {
    const cfg = deps.config();
    const sessionKey = opts.sessionKey ?? `agent:${agentId}:main`;
    const base: HeartbeatOutcome = { status: "skipped", sessionKey };
    if (deps.agent.runsOf(sessionKey).length) {
      return { ...base, reason: "requests-in-flight" };
    }
    const file = `${workspaceDir(deps.stateDir, cfg, agentId)}/${HEARTBEAT_FILE}`;
    let content: string | undefined;
    try {
      content = await Deno.readTextFile(file);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        deps.log.warn("heartbeat: cannot read HEARTBEAT.md", { file, error: e });
      }
    }
    const queued = (await deps.store.systemEvents(sessionKey)).length;
    if (!queued) {
      if (content === undefined) return { ...base, reason: "no-heartbeat-file" };
      if (isHeartbeatContentEmpty(content)) return { ...base, reason: "empty-heartbeat-file" };
    }
    const context = content === undefined || isHeartbeatContentEmpty(content)
      ? `This turn is a heartbeat: a scheduled check, not a message from the user. There is no ${HEARTBEAT_FILE}; only the system events above may need attention. If nothing needs attention, reply exactly ${HEARTBEAT_TOKEN}.`
      : `This turn is a heartbeat: a scheduled check, not a message from the user. ${HEARTBEAT_FILE} (${file}):\n\n${
        content.slice(0, MAX_HEARTBEAT_FILE_CHARS)
      }\n\nFollow it strictly. If nothing needs attention, reply exactly ${HEARTBEAT_TOKEN}.`;
    const before = await deps.store.sessions.get(sessionKey);
    const runId = `heartbeat-${crypto.randomUUID()}`;
    const o = await deps.agent.runTurn(sessionKey, HEARTBEAT_PROMPT, {
      source: "heartbeat",
      runId,
      extraSystemPrompt: context,
    });
    if (o.status !== "ok") {
      return {
        status: "failed",
        sessionKey,
        reason: o.error?.message ?? `the heartbeat turn ended ${o.status}`,
      };
    }
    const reply = stripHeartbeatToken(o.text);
    if (reply.silent) {
      await forgetTurn(deps, sessionKey, runId, before).catch((e) =>
        deps.log.warn("heartbeat: could not remove the silent turn", { sessionKey, error: e })
      );
      return { status: reply.didStrip ? "ok-token" : "ok-empty", sessionKey, silent: true };
    }
    const said: HeartbeatOutcome = {
      status: "sent",
      sessionKey,
      preview: reply.text.slice(0, 200),
      text: reply.text,
      silent: false,
    };
    const t = heartbeatTarget(cfg, agentId);
    if (t.target === undefined) return { ...said, status: "skipped", reason: "target-none" };
    if (t.to === undefined) return { ...said, status: "skipped", reason: "no-target" };
    const channel = deps.channels.get(t.target);
    if (!channel || !channel.configured()) {
      return { ...said, status: "failed", reason: `channel ${t.target} is not available` };
    }
    try {
      await channel.send(t.to, reply.text, t.accountId ? { accountId: t.accountId } : {});
    } catch (e) {
      deps.log.warn("heartbeat: delivery failed", { channel: t.target, error: e });
      return {
        ...said,
        status: "failed",
        channel: t.target,
        to: t.to,
        reason: `delivery failed: ${e instanceof Error ? e.message : String(e)}`,
      };
    }
    return { ...said, channel: t.target, to: t.to };
  };
}

/**
 * Remove a silent heartbeat's turn (its prompt, the reply and any tool
 * calls) from the transcript and put back the session's activity fields.
 */
async function forgetTurn(
  deps: AgentHeartbeatDeps,
  sessionKey: string,
  runId: string,
  before: Awaited<ReturnType<Store["sessions"]["get"]>>,
): Promise<void> {
  const s = deps.store.sessions;
  const entry = await s.get(sessionKey);
  if (!entry) return;
  const recent = await s.messages(entry.sessionId, { limit: 200 });
  const start = recent.findIndex((m) =>
    m.message.role === "user" &&
    (m.message as TranscriptMessage & { idempotencyKey?: string }).idempotencyKey ===
      `${runId}:user`
  );
  if (start < 0) return;
  let end = start + 1;
  while (end < recent.length) {
    const role = recent[end]!.message.role;
    if (role === "user" || role === "custom") break;
    end++;
  }
  const from = recent[start]!.seq;
  const until = end < recent.length ? recent[end]!.seq : recent[end - 1]!.seq + 1;
  await s.removeMessages(sessionKey, from, until, (e) => {
    // Only when nothing came after the heartbeat do the activity fields go back.
    if (e.nextSeq !== from) return;
    if (before && before.sessionId === e.sessionId) {
      e.updatedAt = before.updatedAt;
      restore(e, before, "lastMessagePreview");
      restore(e, before, "lastMessageAt");
      restore(e, before, "derivedTitle");
    } else {
      delete e.lastMessagePreview;
      delete e.lastMessageAt;
      delete e.derivedTitle;
    }
  });
}

function restore<K extends "lastMessagePreview" | "lastMessageAt" | "derivedTitle">(
  e: NonNullable<Awaited<ReturnType<Store["sessions"]["get"]>>>,
  before: NonNullable<Awaited<ReturnType<Store["sessions"]["get"]>>>,
  k: K,
): void {
  if (before[k] === undefined) delete e[k];
  else e[k] = before[k];
}

/** The scheduler. */
export class HeartbeatRunner {
  #clock: Clock;
  #sink: HeartbeatSink;
  #timers: TimerHandle[] = [];
  #enabled = true;
  #running = new Set<string>();
  #run: HeartbeatFn = () => Promise.resolve({ status: "skipped", reason: "no-agent-runtime" });

  /** Create a stopped runner. */
  constructor(clock: Clock, sink: HeartbeatSink) {
    this.#clock = clock;
    this.#sink = sink;
  }

  /** Whether heartbeats run at all (the `set-heartbeats` switch). */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** Register the agent runtime that performs heartbeats. */
  setRunner(fn: HeartbeatFn): void {
    this.#run = fn;
  }

  /** (Re)arm timers for `config` with the switch at `enabled`. */
  configure(config: GwConfig, enabled: boolean): void {
    this.stop();
    this.#enabled = enabled;
    if (!enabled) return;
    for (const s of heartbeatSettings(config)) {
      if (!s.enabled) continue;
      this.#timers.push(
        this.#clock.setInterval(
          () => void this.beat(s.agentId, { reason: "interval" }).catch(() => {}),
          s.everyMs,
        ),
      );
    }
  }

  /**
   * Run one heartbeat for `agentId` now and record it. Skipped (and recorded)
   * when heartbeats are switched off or one is already running for the agent.
   */
  async beat(agentId: string, opts: BeatOptions = {}): Promise<HeartbeatResult> {
    const started = this.#clock.now();
    const t0 = performance.now();
    let outcome: HeartbeatOutcome;
    if (!this.#enabled) outcome = { status: "skipped", reason: "disabled" };
    else if (this.#running.has(agentId)) {
      outcome = { status: "skipped", reason: "already-running" };
    } else {
      this.#running.add(agentId);
      try {
        outcome = await this.#run(agentId, opts);
      } catch (e) {
        outcome = { status: "failed", reason: e instanceof Error ? e.message : String(e) };
      } finally {
        this.#running.delete(agentId);
      }
    }
    const record: HeartbeatResult = {
      ts: started,
      agentId,
      ...outcome,
      durationMs: Math.round(performance.now() - t0),
    };
    await this.#sink.record(record);
    return record;
  }

  /** Stop all timers. */
  stop(): void {
    for (const t of this.#timers) this.#clock.clearInterval(t);
    this.#timers = [];
  }
}
