/**
 * The agent runtime: one run at a time per session, streamed, persisted.
 *
 * A turn's life: the input is stored as a pending input (durable before the
 * caller's ack); when its session's lane is free, one atomic commit moves it
 * into the transcript and writes a run marker; the model streams (deltas to
 * `agent` and throttled `chat` events); every complete assistant message and
 * tool result is appended as it finishes; the marker goes when the run ends.
 * At start, leftover markers and pending inputs become transcript notes that
 * say the turn was interrupted: nothing acknowledged is lost, nothing half
 * written is kept.
 *
 * @module
 */
import type { GwConfig } from "../config/schema.ts";
import type { Logger } from "../log.ts";
import type { Store } from "../store/mod.ts";
import type { PendingInput, SessionEntry, ThinkingLevel } from "../store/sessions.ts";
import { MAX_MESSAGE_CHARS, messageText, parseSessionKey } from "../store/sessions.ts";
import {
  type AssistantMessage,
  type CustomMessage,
  type ImageContent,
  type ModelMessage,
  type Provider,
  type ProviderConfig,
  ProviderError,
  type ProviderResult,
  type TextContent,
  type ToolCall,
  type ToolResultMessage,
  type TranscriptMessage,
  type Usage,
  type UserMessage,
} from "./types.ts";
import {
  costOf,
  DEFAULT_MODEL,
  type ResolvedModel,
  resolveModel,
  THINKING_BUDGETS,
} from "./models.ts";
import type { ToolRegistry } from "./tools.ts";
import { invalidToolArguments } from "./tool_args.ts";
import { sessionRow } from "./rows.ts";
import {
  attachedFileText,
  type Attachment,
  IMAGE_TYPES,
  isMediaName,
  type MediaStore,
} from "./media.ts";

/** Chat deltas go out at most this often per run; the last is flushed before `final`. */
export const CHAT_DELTA_INTERVAL_MS = 150;
/** Most transcript messages sent to the model (after the latest compaction). */
export const CONTEXT_MAX_MESSAGES = 500;
/** Most images sent to the model as data: the newest ones; older ones become a note. */
export const CONTEXT_MAX_IMAGES = 4;

/** One turn to run. */
export interface TurnRequest {
  sessionKey: string;
  message: string;
  /** Also the idempotency key for chat.send. */
  runId: string;
  idempotencyKey: string;
  /** Who asked: chat, agent, cron, telegram, ... */
  source: string;
  /** Model for this run only (`provider/model`). */
  model?: string;
  thinking?: ThinkingLevel;
  timeoutMs?: number;
  /** Added to the system prompt for this run. */
  extraSystemPrompt?: string;
  /**
   * Photos and files that come with the message: references to files already
   * saved in the media store ({@link MediaStore.save}).
   */
  attachments?: Attachment[];
  /**
   * Called with the reply's text so far as it streams (a channel edits its
   * message with it). Not durable: a run recovered after a restart has none.
   */
  onText?: (text: string) => void;
  /** Where a new session comes from (a channel chat); used only when the session is created. */
  origin?: SessionOrigin;
}

/** A session's origin, kept on its entry. */
export interface SessionOrigin {
  /** Channel id, e.g. `telegram`. */
  channel: string;
  /** A human label: the chat's title or the sender's name. */
  label?: string;
}

/** How a run ended. */
export interface RunOutcome {
  runId: string;
  sessionKey: string;
  agentId: string;
  /** The transcript the run wrote to. */
  sessionId?: string;
  status: "ok" | "error" | "aborted" | "timeout";
  /** The final reply's text. */
  text: string;
  message?: AssistantMessage;
  usage: Omit<Usage, "cost"> & { cost: number };
  error?: {
    code: string;
    message: string;
    kind: string;
    retryable?: boolean;
    retryAfterMs?: number;
  };
  startedAt: number;
  endedAt: number;
}

/** A run accepted by {@link AgentRuntime.submit}. */
export interface RunHandle {
  runId: string;
  sessionKey: string;
  agentId: string;
  acceptedAt: number;
  /** Resolves when the run ends (never rejects). */
  done: Promise<RunOutcome>;
}

/** Emits an event to the clients allowed to see it. */
export type Emit = (event: string, payload: unknown, droppable?: boolean) => void;

/** What the runtime needs. */
export interface RuntimeDeps {
  store: Store;
  config: () => GwConfig;
  log: Logger;
  emit: Emit;
  tools: ToolRegistry;
  /** Build a provider for a config (tests may pass their own fetch through this). */
  providerFor?: (cfg: ProviderConfig) => Promise<Provider>;
  env?: (name: string) => string | undefined;
  /** Where attachments are stored; without it a turn with attachments is refused. */
  media?: MediaStore;
  /** The system prompt's skills section for an agent (none when it resolves undefined). */
  skillsPrompt?: (agentId: string) => Promise<string | undefined>;
}

interface Run {
  req: TurnRequest;
  agentId: string;
  pending: PendingInput;
  controller: AbortController;
  abortReason?: "abort" | "timeout" | "shutdown";
  started: boolean;
  resolve: (o: RunOutcome) => void;
  handle: RunHandle;
}

const ZERO_USAGE = (): RunOutcome["usage"] => ({
  input: 0,
  output: 0,
  cacheRead: 0,
  cacheWrite: 0,
  totalTokens: 0,
  cost: 0,
});

/** The agent runtime. One per gateway. */
export class AgentRuntime {
  readonly #d: RuntimeDeps;
  /** Per-session job chains. */
  readonly #lanes = new Map<string, Promise<void>>();
  /** Runs accepted and not yet ended, by runId. */
  readonly #runs = new Map<string, Run>();
  /** Recent outcomes, by runId (for agent.wait), newest last; bounded. */
  readonly #finished = new Map<string, RunOutcome>();
  readonly #waiters = new Map<string, Set<(o: RunOutcome) => void>>();
  readonly #providers = new Map<string, Promise<Provider>>();
  readonly #slots: Slots;
  #closed = false;

  /** Create the runtime; call {@link recover} once before accepting work. */
  constructor(deps: RuntimeDeps) {
    this.#d = deps;
    this.#slots = new Slots(() => deps.config().agents.defaults.maxConcurrent);
  }

  /** Turn what a stopped process left (run markers, pending inputs) into transcript notes. */
  async recover(): Promise<number> {
    const s = this.#d.store.sessions;
    let n = 0;
    // A retry of an interrupted run gets this outcome, not "in flight" forever.
    const interrupted = async (runId: string, sessionKey: string, source: string | undefined) => {
      if (source !== "chat" && source !== "agent") return;
      const rec = await this.#d.store.idempotency.get(source, runId);
      if (rec?.state !== "started") return;
      const now = Date.now();
      const outcome: RunOutcome = {
        runId,
        sessionKey,
        agentId: this.agentIdOf(sessionKey),
        status: "error",
        text: "",
        usage: ZERO_USAGE(),
        error: {
          code: "UNAVAILABLE",
          kind: "interrupted",
          message: "the gateway stopped before this run finished",
        },
        startedAt: now,
        endedAt: now,
      };
      await this.#d.store.idempotency.finish(source, runId, outcome, runId);
    };
    for (const m of await s.runMarkers()) {
      await interrupted(m.runId, m.sessionKey, m.source);
      const note = custom(
        "run-interrupted",
        "This turn was interrupted before it finished: the gateway stopped.",
      );
      const entry = await s.get(m.sessionKey);
      if (entry && entry.sessionId === m.sessionId) {
        await s.append(m.sessionKey, [note], {
          patch: (e) => {
            e.status = "interrupted";
          },
          extra: (op) => op.delete(s.runKey(m.runId)),
        });
      } else await s.endRun(m.runId);
      n++;
    }
    for (const p of await s.pending()) {
      await interrupted(p.runId, p.sessionKey, p.source);
      const entry = await s.get(p.sessionKey);
      if (!entry) {
        await s.dropPending(p);
        continue;
      }
      await s.append(p.sessionKey, [
        await this.#userMessage(p),
        custom(
          "run-interrupted",
          "This message was accepted, but the gateway stopped before it ran.",
        ),
      ], {
        patch: (e) => {
          e.status = "interrupted";
        },
        extra: (op) => op.delete(s.pendingKey(p)),
      });
      n++;
    }
    if (n) this.#d.log.warn("recovered interrupted turns", { count: n });
    return n;
  }

  /** The agent a session key belongs to (the default agent for non-agent keys). */
  agentIdOf(sessionKey: string): string {
    return parseSessionKey(sessionKey)?.agentId ?? defaultAgentId(this.#d.config());
  }

  /**
   * Accept a turn: the input is durable when this resolves. It runs after the
   * session's earlier runs.
   */
  async submit(req: TurnRequest): Promise<RunHandle> {
    if (this.#closed) throw new Error("the gateway is shutting down");
    const attachments = req.attachments ?? [];
    if (attachments.length) {
      if (!this.#d.media) {
        throw new Error("this gateway has no media store, so it cannot take attachments");
      }
      const bad = attachments.find((a) => !isMediaName(a.media));
      if (bad) {
        throw new Error(
          `attachment ${JSON.stringify(bad.media)} is not a saved media file (<sha256>.<ext>)`,
        );
      }
    }
    const agentId = this.agentIdOf(req.sessionKey);
    const s = this.#d.store.sessions;
    await s.ensure(req.sessionKey, agentId, Date.now(), req.origin);
    const acceptedAt = Date.now();
    const pending: PendingInput = {
      id: `${String(acceptedAt).padStart(13, "0")}-${crypto.randomUUID().slice(0, 8)}`,
      runId: req.runId,
      sessionKey: req.sessionKey,
      message: req.message,
      acceptedAt,
      source: req.source,
      idempotencyKey: req.idempotencyKey,
    };
    if (attachments.length) {
      // References only: the bytes stay in the media dir.
      pending.attachments = attachments.map((a) => ({
        // Providers take only the four image types as images.
        type: a.type === "image" && IMAGE_TYPES.has(a.mimeType) ? "image" : "file",
        mimeType: a.mimeType,
        media: a.media,
        size: a.size,
        ...(a.fileName !== undefined ? { fileName: a.fileName } : {}),
      }));
    }
    await s.addPending(pending);
    let resolve!: (o: RunOutcome) => void;
    const done = new Promise<RunOutcome>((r) => resolve = r);
    const handle: RunHandle = {
      runId: req.runId,
      sessionKey: req.sessionKey,
      agentId,
      acceptedAt,
      done,
    };
    const run: Run = {
      req,
      agentId,
      pending,
      controller: new AbortController(),
      started: false,
      resolve,
      handle,
    };
    this.#runs.set(req.runId, run);
    this.#enqueue(req.sessionKey, () => this.#execute(run));
    return handle;
  }

  /**
   * Run one turn on a session and resolve with its outcome: what the
   * scheduler and channels call. Queued behind the session's earlier runs.
   */
  async runTurn(
    sessionKey: string,
    message: string,
    options: Partial<Omit<TurnRequest, "sessionKey" | "message">> & { source: string },
  ): Promise<RunOutcome> {
    const runId = options.runId ?? crypto.randomUUID();
    const h = await this.submit({
      ...options,
      sessionKey,
      message,
      runId,
      idempotencyKey: options.idempotencyKey ?? runId,
    });
    return await h.done;
  }

  /** Run `job` after the session's earlier jobs (runs, compaction). */
  #enqueue(sessionKey: string, job: () => Promise<void>): Promise<void> {
    const prev = this.#lanes.get(sessionKey) ?? Promise.resolve();
    const next = prev.then(job).catch((e) => {
      this.#d.log.error("session job failed", { sessionKey, error: e });
    });
    this.#lanes.set(sessionKey, next);
    void next.then(() => {
      if (this.#lanes.get(sessionKey) === next) this.#lanes.delete(sessionKey);
    });
    return next;
  }

  /** Run `fn` on the session's lane (between runs) and resolve with its value. */
  exclusive<T>(sessionKey: string, fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      void this.#enqueue(sessionKey, () => fn().then(resolve, reject));
    });
  }

  /** Whether a run is active or queued. */
  isRunning(runId: string): boolean {
    return this.#runs.has(runId);
  }

  /** A handle of an accepted run that has not ended. */
  handle(runId: string): RunHandle | undefined {
    return this.#runs.get(runId)?.handle;
  }

  /** Active and queued runIds of a session, oldest first. */
  runsOf(sessionKey: string): string[] {
    return [...this.#runs.values()].filter((r) => r.req.sessionKey === sessionKey).map((r) =>
      r.req.runId
    );
  }

  /** Abort a session's runs (one when `runId` is given). Returns the runIds aborted. */
  abort(sessionKey: string, runId?: string): string[] {
    const out: string[] = [];
    for (const r of this.#runs.values()) {
      if (r.req.sessionKey !== sessionKey || (runId !== undefined && r.req.runId !== runId)) {
        continue;
      }
      if (r.abortReason) continue;
      r.abortReason = "abort";
      r.controller.abort();
      out.push(r.req.runId);
    }
    return out;
  }

  /** The outcome of `runId`: at once when known, else when it ends, or null after `timeoutMs`. */
  wait(runId: string, timeoutMs: number): Promise<RunOutcome | null> {
    const known = this.#finished.get(runId);
    if (known) return Promise.resolve(known);
    if (!this.#runs.has(runId)) return Promise.resolve(null);
    return new Promise((resolve) => {
      const set = this.#waiters.get(runId) ?? new Set();
      this.#waiters.set(runId, set);
      const done = (o: RunOutcome | null) => {
        clearTimeout(timer);
        set.delete(onEnd);
        resolve(o);
      };
      const onEnd = (o: RunOutcome) => done(o);
      const timer = setTimeout(() => done(null), timeoutMs);
      set.add(onEnd);
    });
  }

  /** A finished run's outcome, if still remembered. */
  outcome(runId: string): RunOutcome | undefined {
    return this.#finished.get(runId);
  }

  /** Stop: abort active runs (their partial replies are kept) and wait for them, at most `ms`. */
  async shutdown(ms = 5000): Promise<void> {
    this.#closed = true;
    for (const r of this.#runs.values()) {
      if (r.started && !r.abortReason) {
        r.abortReason = "shutdown";
        r.controller.abort();
      }
    }
    const active = [...this.#runs.values()].filter((r) => r.started).map((r) => r.handle.done);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(active),
      new Promise((r) => timer = setTimeout(r, ms)),
    ]);
    clearTimeout(timer);
  }

  // ------------------------------------------------------------ one run

  async #provider(cfg: ProviderConfig): Promise<Provider> {
    const key = JSON.stringify(cfg);
    let p = this.#providers.get(key);
    if (!p) {
      p = (this.#d.providerFor ?? defaultProviderFor)(cfg);
      this.#providers.set(key, p);
      p.catch(() => this.#providers.delete(key));
    }
    return await p;
  }

  async #execute(run: Run): Promise<void> {
    // A global cap on runs at once bounds memory and provider load; the
    // input stays a durable pending input while it waits.
    const slot = await this.#slots.acquire(run.controller.signal);
    try {
      await this.#run(run);
    } finally {
      if (slot) this.#slots.release();
    }
  }

  async #run(run: Run): Promise<void> {
    const { req, agentId } = run;
    const s = this.#d.store.sessions;
    const emit = this.#d.emit;
    let seq = 0;
    const agentEvent = (stream: string, data: Record<string, unknown>, droppable = false) =>
      emit("agent", {
        runId: req.runId,
        sessionKey: req.sessionKey,
        agentId,
        seq: ++seq,
        stream,
        ts: Date.now(),
        data,
      }, droppable);
    const chatEvent = (payload: Record<string, unknown>, droppable = false) =>
      emit(
        "chat",
        { runId: req.runId, sessionKey: req.sessionKey, agentId, seq: ++seq, ...payload },
        droppable,
      );
    run.started = true;
    const startedAt = Date.now();
    const outcome: RunOutcome = {
      runId: req.runId,
      sessionKey: req.sessionKey,
      agentId,
      status: "ok",
      text: "",
      usage: ZERO_USAGE(),
      startedAt,
      endedAt: startedAt,
    };

    // Aborted while queued: keep the message, note it, end.
    if (run.abortReason) {
      await s.append(req.sessionKey, [
        await this.#userMessage(run.pending),
        custom("run-aborted", "This message was aborted before its turn started."),
      ], { extra: (op) => op.delete(s.pendingKey(run.pending)) }).catch(() => {});
      outcome.status = "aborted";
      this.#end(run, outcome);
      chatEvent({ state: "aborted" });
      return;
    }

    let entry: SessionEntry;
    try {
      // The input moves into the transcript and the run marker appears in one commit.
      const r = await s.append(req.sessionKey, [await this.#userMessage(run.pending)], {
        patch: (e) => {
          e.status = "running";
          e.lastRunId = req.runId;
          e.abortedLastRun = false;
        },
        extra: (op, e) => {
          op.delete(s.pendingKey(run.pending));
          op.set(s.runKey(req.runId), {
            runId: req.runId,
            sessionKey: req.sessionKey,
            sessionId: e.sessionId,
            startedAt,
            source: req.source,
          });
        },
      });
      entry = r.entry;
      outcome.sessionId = entry.sessionId;
    } catch (e) {
      this.#d.log.error("could not start run", { runId: req.runId, error: e });
      outcome.status = "error";
      outcome.error = {
        code: "UNAVAILABLE",
        message: `could not start the run: ${errText(e)}`,
        kind: "unknown",
      };
      this.#end(run, outcome);
      chatEvent({ state: "error", errorMessage: outcome.error.message, errorKind: "unknown" });
      return;
    }
    this.#sessionsChanged(entry, "run-started");
    agentEvent("lifecycle", { phase: "start", startedAt });

    const cfg = this.#d.config();
    const timeoutMs = req.timeoutMs ?? cfg.agents.defaults.timeoutSeconds * 1000;
    // 0: no timeout for this run.
    const timer = timeoutMs > 0
      ? setTimeout(() => {
        if (!run.abortReason) {
          run.abortReason = "timeout";
          run.controller.abort();
        }
      }, timeoutMs)
      : undefined;

    // The chat stream: first delta at once, then at most one per interval.
    let text = "";
    let sentText = "";
    let lastSent = 0;
    let flushTimer: ReturnType<typeof setTimeout> | undefined;
    const sendDelta = () => {
      flushTimer = undefined;
      if (text === sentText) return;
      const deltaText = text.startsWith(sentText) ? text.slice(sentText.length) : text;
      const replace = !text.startsWith(sentText);
      sentText = text;
      lastSent = performance.now();
      chatEvent({
        state: "delta",
        message: { role: "assistant", content: [{ type: "text", text }], timestamp: Date.now() },
        deltaText,
        ...(replace ? { replace: true } : {}),
      }, true);
    };
    const pushDelta = () => {
      if (flushTimer !== undefined) return;
      const wait = CHAT_DELTA_INTERVAL_MS - (performance.now() - lastSent);
      if (wait <= 0) sendDelta();
      else flushTimer = setTimeout(sendDelta, wait);
    };
    const flush = () => {
      if (flushTimer !== undefined) clearTimeout(flushTimer);
      sendDelta();
    };

    let model: ResolvedModel | undefined;
    let last: AssistantMessage | undefined;
    /** The run's last events, sent once the outcome is recorded. */
    const terminal: (() => void)[] = [];
    try {
      const agent = cfg.agents.list.find((a) => a.id === agentId);
      const ref = req.model ?? entry.model ?? agent?.model ?? cfg.agents.defaults.model ??
        DEFAULT_MODEL;
      model = resolveModel(ref, cfg, this.#d.env);
      if (!model.provider.apiKey && model.provider.api === "anthropic-messages") {
        throw new ProviderError(
          "auth",
          `no API key for ${model.providerId}: set ANTHROPIC_API_KEY or models.providers.${model.providerId}.apiKey in gw.json`,
        );
      }
      const provider = await this.#provider(model.provider);
      const level = req.thinking ?? entry.thinkingLevel ?? agent?.thinkingDefault ??
        cfg.agents.defaults.thinkingDefault;
      const budget = THINKING_BUDGETS[level];
      const maxTokens = cfg.agents.defaults.maxTokens + budget;
      const context = await this.#context(entry);
      const events = await this.#d.store.drainSystemEvents(req.sessionKey);
      const skills = await this.#d.skillsPrompt?.(agentId).catch((e) => {
        this.#d.log.warn("skills prompt failed", { error: e });
        return undefined;
      });
      const system = systemPrompt(
        cfg,
        agentId,
        events.map((e) => e.text),
        req.extraSystemPrompt,
        skills,
      );
      const tools = this.#d.tools.specs();
      agentEvent("lifecycle", { phase: "model", provider: model.providerId, model: model.model });

      for (let round = 1;; round++) {
        text = "";
        sentText = "";
        let thinking = "";
        let result: ProviderResult;
        const roundStart = Date.now();
        try {
          result = await provider.stream({
            model: model.model,
            system,
            messages: context,
            tools,
            maxTokens,
            ...(budget > 0 ? { thinkingBudget: budget } : {}),
            signal: run.controller.signal,
          }, (ev) => {
            if (ev.type === "text") {
              text += ev.delta;
              agentEvent("assistant", { text, delta: ev.delta }, true);
              pushDelta();
              if (req.onText) {
                try {
                  req.onText(text);
                } catch (e) {
                  this.#d.log.warn("onText listener failed", { runId: req.runId, error: e });
                }
              }
            } else if (ev.type === "thinking") {
              thinking += ev.delta;
              agentEvent("thinking", { text: thinking, delta: ev.delta }, true);
            } else {
              agentEvent("tool", {
                phase: "start",
                name: ev.call.name,
                toolCallId: ev.call.id,
                args: ev.call.arguments,
              });
            }
          });
        } catch (e) {
          // Keep what streamed before an abort or timeout.
          if (run.abortReason && text) {
            last = this.#assistant(
              model,
              provider,
              [{ type: "text", text }],
              "aborted",
              null,
              roundStart,
            );
            await this.#appendAssistant(run, last, []);
          }
          throw e;
        }
        last = this.#assistant(
          model,
          provider,
          result.content,
          result.stopReason,
          result.usage,
          roundStart,
        );
        addUsage(outcome.usage, last.usage);
        const calls = result.content.filter((b): b is ToolCall => b.type === "toolCall");
        if (result.stopReason !== "toolUse" || calls.length === 0) {
          entry = await this.#appendAssistant(run, last, []);
          break;
        }
        // The assistant's tool calls are durable before any tool runs.
        entry = await this.#appendAssistant(run, last, []);
        context.push(last);
        const results: ToolResultMessage[] = [];
        for (const call of calls) {
          const bad = invalidToolArguments(call);
          const out = bad
            ? { text: `invalid arguments for ${call.name}: ${bad.error}`, isError: true }
            : await this.#d.tools.run(call.name, call.arguments, {
              sessionKey: req.sessionKey,
              agentId,
              runId: req.runId,
              signal: run.controller.signal,
            });
          const tr: ToolResultMessage = {
            role: "toolResult",
            toolCallId: call.id,
            toolName: call.name,
            content: [{ type: "text", text: out.text }],
            isError: out.isError === true,
            timestamp: Date.now(),
          };
          results.push(tr);
          agentEvent("tool", {
            phase: "result",
            name: call.name,
            toolCallId: call.id,
            isError: tr.isError,
            result: out.text.length > 2000 ? `${out.text.slice(0, 2000)}…` : out.text,
          });
        }
        entry = (await s.append(req.sessionKey, results)).entry;
        context.push(...results);
        if (run.controller.signal.aborted) throw new ProviderError("aborted", "aborted");
        if (round >= cfg.agents.defaults.maxToolRounds) {
          throw new ProviderError(
            "bad_request",
            `the run stopped after ${round} model calls (agents.defaults.maxToolRounds)`,
          );
        }
      }
      const reply = last;
      outcome.text = messageText(reply);
      outcome.message = reply;
      flush();
      terminal.push(() =>
        chatEvent({
          state: "final",
          message: reply,
          usage: reply.usage,
          stopReason: reply.stopReason,
        })
      );
      terminal.push(() =>
        agentEvent("lifecycle", {
          phase: "end",
          startedAt,
          endedAt: Date.now(),
          stopReason: reply.stopReason,
          executionSettled: true,
        })
      );
    } catch (e) {
      if (flushTimer !== undefined) clearTimeout(flushTimer);
      const reason = run.abortReason;
      if (reason === "abort" || reason === "shutdown") {
        outcome.status = "aborted";
        if (last) outcome.message = last;
        outcome.text = text;
        if (reason === "shutdown") {
          await s.append(req.sessionKey, [
            custom("run-interrupted", "This turn was interrupted: the gateway shut down."),
          ]).catch(() => {});
        }
        terminal.push(() =>
          chatEvent({
            state: "aborted",
            ...(last ? { message: last } : {}),
            stopReason: "aborted",
          })
        );
        terminal.push(() =>
          agentEvent("lifecycle", {
            phase: "end",
            aborted: true,
            stopReason: "aborted",
            startedAt,
            endedAt: Date.now(),
            executionSettled: true,
          })
        );
      } else {
        const err = reason === "timeout"
          ? new ProviderError(
            "timeout",
            `the run timed out after ${Math.round(timeoutMs / 1000)} s`,
          )
          : e instanceof ProviderError
          ? e
          : new ProviderError("network", errText(e), { cause: e });
        if (!(e instanceof ProviderError) && reason !== "timeout") {
          this.#d.log.error("run failed", { runId: req.runId, error: e });
        }
        outcome.status = reason === "timeout" ? "timeout" : "error";
        outcome.error = errorOf(err);
        await s.append(req.sessionKey, [
          custom("run-failed", `This turn ended without a reply: ${err.message}`),
        ]).catch(() => {});
        terminal.push(() =>
          chatEvent({
            state: "error",
            errorMessage: err.message,
            errorKind: errorKindOf(err),
          })
        );
        terminal.push(() =>
          agentEvent("lifecycle", {
            phase: "error",
            error: err.message,
            startedAt,
            endedAt: Date.now(),
            executionSettled: true,
          })
        );
      }
    } finally {
      clearTimeout(timer);
    }
    const status = outcome.status === "ok"
      ? "done"
      : outcome.status === "error"
      ? "failed"
      : outcome.status;
    const after = await s.update(req.sessionKey, (e) => {
      e.status = run.abortReason === "shutdown" ? "interrupted" : status;
      e.abortedLastRun = outcome.status === "aborted";
      return e;
    }).catch(() => null);
    await s.endRun(req.runId).catch(() => {});
    // The run is over for callers (retries get the cached outcome) before clients hear it ended.
    this.#end(run, outcome);
    for (const f of terminal) f();
    if (after) this.#sessionsChanged(after, "run-ended");
  }

  #assistant(
    model: ResolvedModel,
    provider: Provider,
    content: AssistantMessage["content"],
    stopReason: AssistantMessage["stopReason"],
    usage: ProviderResult["usage"] | null,
    at: number,
  ): AssistantMessage {
    const u = usage ?? { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, totalTokens: 0 };
    const cost = costOf(u, model.price) ??
      { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, total: 0 };
    return {
      role: "assistant",
      content,
      api: provider.api,
      provider: model.providerId,
      model: model.model,
      usage: { ...u, cost },
      stopReason,
      timestamp: at,
    };
  }

  /** Append an assistant message, count its tokens on the session and in usage. */
  async #appendAssistant(
    run: Run,
    m: AssistantMessage,
    extra: TranscriptMessage[],
  ): Promise<SessionEntry> {
    const s = this.#d.store.sessions;
    const u = m.usage;
    const { entry } = await s.append(run.req.sessionKey, [m, ...extra], {
      patch: (e) => {
        e.inputTokens += u.input;
        e.outputTokens += u.output;
        e.cacheRead += u.cacheRead;
        e.cacheWrite += u.cacheWrite;
        e.totalTokens = u.input + u.output + u.cacheRead + u.cacheWrite;
        e.costUsd += u.cost.total;
      },
    });
    if (u.totalTokens > 0 || m.stopReason !== "aborted") {
      const price = resolveModel(`${m.provider}/${m.model}`, this.#d.config(), this.#d.env).price;
      await this.#d.store.usage.add(m.timestamp, run.agentId, `${m.provider}/${m.model}`, {
        input: u.input,
        output: u.output,
        cacheRead: u.cacheRead,
        cacheWrite: u.cacheWrite,
        cost: price ? u.cost : null,
      });
    }
    return entry;
  }

  /** What the model sees: the summary of compacted history, then the messages after it. */
  async #context(entry: SessionEntry): Promise<ModelMessage[]> {
    const s = this.#d.store.sessions;
    const from = entry.compaction?.firstKeptSeq ?? 0;
    const stored = await s.messages(entry.sessionId, { from, limit: CONTEXT_MAX_MESSAGES });
    const out: ModelMessage[] = [];
    if (entry.compaction) {
      const [sum] = await s.messages(entry.sessionId, {
        from: entry.compaction.summarySeq,
        before: entry.compaction.summarySeq + 1,
        limit: 1,
      });
      if (sum) {
        out.push({
          role: "user",
          content: `[Summary of the earlier conversation]\n${messageText(sum.message)}`,
          timestamp: sum.message.timestamp,
        });
      }
    }
    for (const { message } of stored) if (message.role !== "custom") out.push(message);
    return await this.#withImageData(repairContext(out));
  }

  /**
   * The transcript message of an input: its text, then its attachments in
   * order: images as references, files as text (see {@link attachedFileText}).
   * Inlined files that would make the message too large for the transcript
   * become notes, largest first.
   */
  async #userMessage(p: PendingInput): Promise<UserMessage> {
    const base = { role: "user" as const, timestamp: p.acceptedAt };
    const idempotencyKey = `${p.idempotencyKey}:user`;
    const atts = p.attachments ?? [];
    if (!atts.length) return { ...base, content: p.message, idempotencyKey };
    const media = this.#d.media;
    const noted = new Set<number>();
    for (;;) {
      const content: (TextContent | ImageContent)[] = [];
      if (p.message) content.push({ type: "text", text: p.message });
      const files: { i: number; block: number; chars: number }[] = [];
      for (const [i, a] of atts.entries()) {
        if (a.type === "image") {
          content.push({
            type: "image",
            mimeType: a.mimeType,
            media: a.media,
            ...(a.fileName !== undefined ? { fileName: a.fileName } : {}),
          });
        } else {
          const text = await attachedFileText(a, media, noted.has(i) ? { inline: false } : {});
          files.push({ i, block: content.length, chars: text.length });
          content.push({ type: "text", text });
        }
      }
      const msg: UserMessage = { ...base, content, idempotencyKey };
      // Leave room for JSON escapes and the store's own fields.
      if (JSON.stringify(msg).length <= MAX_MESSAGE_CHARS - 1024) return msg;
      const largest = files.filter((f) => !noted.has(f.i)).sort((a, b) => b.chars - a.chars)[0];
      if (!largest) return msg;
      noted.add(largest.i);
    }
  }

  /**
   * Load the images of a context: the newest {@link CONTEXT_MAX_IMAGES} get
   * their bytes as `data`, older ones become a note, missing files another.
   * Returns new message objects; the stored ones are not touched.
   */
  async #withImageData(msgs: ModelMessage[]): Promise<ModelMessage[]> {
    let left = CONTEXT_MAX_IMAGES;
    const out = msgs.slice();
    for (let i = out.length - 1; i >= 0; i--) {
      const m = out[i]!;
      if (m.role !== "user" || typeof m.content === "string") continue;
      if (!m.content.some((b) => b.type === "image")) continue;
      const blocks = m.content.slice();
      for (let j = blocks.length - 1; j >= 0; j--) {
        const b = blocks[j]!;
        if (b.type !== "image") continue;
        if (left === 0) {
          const name = b.fileName ? ` ${b.fileName}` : "";
          blocks[j] = { type: "text", text: `[image${name} omitted from context]` };
          continue;
        }
        const data = b.data ?? await this.#imageData(b);
        if (data === null) {
          blocks[j] = { type: "text", text: "[image no longer available]" };
          continue;
        }
        left--;
        blocks[j] = {
          type: "image",
          mimeType: b.mimeType,
          data,
          ...(b.fileName !== undefined ? { fileName: b.fileName } : {}),
        };
      }
      out[i] = { ...m, content: blocks };
    }
    return out;
  }

  /** An image's bytes as base64, or null when they cannot be read. */
  async #imageData(b: ImageContent): Promise<string | null> {
    if (!b.media || !this.#d.media) return null;
    try {
      return (await this.#d.media.read(b.media))?.toBase64() ?? null;
    } catch (e) {
      this.#d.log.warn("could not read an image", { media: b.media, error: e });
      return null;
    }
  }

  /**
   * Summarise a session's older messages with its model and keep the last
   * `keep` messages as they are. Runs between turns.
   */
  compact(
    sessionKey: string,
    keep: number,
  ): Promise<{ compacted: boolean; summarized: number; kept: number }> {
    return this.exclusive(sessionKey, async () => {
      const s = this.#d.store.sessions;
      const entry = await s.get(sessionKey);
      if (!entry) throw new Error(`no session ${sessionKey}`);
      const from = entry.compaction?.firstKeptSeq ?? 0;
      const all = (await s.messages(entry.sessionId, { from, limit: 100_000 })).filter((m) =>
        m.message.role !== "custom"
      );
      if (all.length <= keep) return { compacted: false, summarized: 0, kept: all.length };
      // Keep the tail starting at a user message, so the model context stays well formed.
      let cut = all.length - keep;
      while (cut > 0 && all[cut]!.message.role !== "user") cut--;
      if (cut <= 0) return { compacted: false, summarized: 0, kept: all.length };
      const older = all.slice(0, cut);
      const cfg = this.#d.config();
      const agent = cfg.agents.list.find((a) => a.id === entry.agentId);
      const model = resolveModel(
        entry.model ?? agent?.model ?? cfg.agents.defaults.model ?? DEFAULT_MODEL,
        cfg,
        this.#d.env,
      );
      const provider = await this.#provider(model.provider);
      const transcript = older.map(({ message: m }) => `${m.role}: ${messageText(m)}`).join("\n\n")
        .slice(-400_000);
      const previous = entry.compaction
        ? (await s.messages(entry.sessionId, {
          from: entry.compaction.summarySeq,
          before: entry.compaction.summarySeq + 1,
          limit: 1,
        }))[0]
        : undefined;
      const result = await provider.stream({
        model: model.model,
        system:
          "You condense conversations. Write a faithful summary of the conversation below: facts, decisions, open questions, the user's preferences. Plain prose, no preamble.",
        messages: [{
          role: "user",
          content: `${
            previous ? `Earlier summary:\n${messageText(previous.message)}\n\n` : ""
          }Conversation:\n${transcript}`,
          timestamp: Date.now(),
        }],
        tools: [],
        maxTokens: 2048,
        signal: AbortSignal.timeout(cfg.agents.defaults.timeoutSeconds * 1000),
      }, () => {});
      const summary = result.content.filter((b): b is TextContent => b.type === "text").map((b) =>
        b.text
      ).join("");
      const firstKeptSeq = all[cut]!.seq;
      const { entry: after, seqs } = await s.append(sessionKey, [
        custom("compaction", summary),
      ], {
        patch: (e) => {
          e.compactionCount++;
        },
      });
      const final = await s.update(sessionKey, (e) => {
        e.compaction = { summarySeq: seqs[0]!, firstKeptSeq };
        return e;
      });
      this.#sessionsChanged(final ?? after, "compacted");
      return { compacted: true, summarized: older.length, kept: all.length - cut };
    });
  }

  #sessionsChanged(entry: SessionEntry, reason: string): void {
    this.#d.emit("sessions.changed", {
      sessionKey: entry.key,
      agentId: entry.agentId,
      reason,
      session: sessionRow(entry, this.runsOf(entry.key).length > 0),
      updatedAt: entry.updatedAt,
      sessionId: entry.sessionId,
    }, true);
  }

  #end(run: Run, outcome: RunOutcome): void {
    outcome.endedAt = Date.now();
    this.#runs.delete(run.req.runId);
    this.#finished.set(run.req.runId, outcome);
    if (this.#finished.size > 1000) {
      this.#finished.delete(this.#finished.keys().next().value!);
    }
    for (const w of this.#waiters.get(run.req.runId) ?? []) w(outcome);
    this.#waiters.delete(run.req.runId);
    run.resolve(outcome);
  }
}

/** The default agent id of a config. */
export function defaultAgentId(cfg: GwConfig): string {
  const list = cfg.agents.list;
  return (list.find((a) => a.default) ?? list[0])?.id ?? "main";
}

async function defaultProviderFor(cfg: ProviderConfig): Promise<Provider> {
  if (cfg.api === "anthropic-messages") {
    const { anthropicProvider } = await import("./anthropic.ts");
    return anthropicProvider(cfg);
  }
  const { openaiProvider } = await import("./openai.ts");
  return openaiProvider(cfg);
}

function custom(customType: string, content: string): CustomMessage {
  return { role: "custom", customType, content, display: true, timestamp: Date.now() };
}

function addUsage(sum: RunOutcome["usage"], u: Usage): void {
  sum.input += u.input;
  sum.output += u.output;
  sum.cacheRead += u.cacheRead;
  sum.cacheWrite += u.cacheWrite;
  sum.totalTokens += u.totalTokens;
  sum.cost += u.cost.total;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The `chat` event's errorKind for a provider error. */
export function errorKindOf(e: ProviderError): string {
  switch (e.kind) {
    case "rate_limit":
    case "overloaded":
      return "rate_limit";
    case "context_length":
      return "context_length";
    case "timeout":
      return "timeout";
    case "refusal":
      return "refusal";
    default:
      return "unknown";
  }
}

/** A provider error as a run outcome's error (protocol code and retry hints). */
export function errorOf(e: ProviderError): NonNullable<RunOutcome["error"]> {
  // As OpenClaw answers failed runs: UNAVAILABLE, the kind in details.
  const code = e.kind === "timeout" ? "AGENT_TIMEOUT" : "UNAVAILABLE";
  const out: NonNullable<RunOutcome["error"]> = { code, message: e.message, kind: e.kind };
  if (e.retryable) out.retryable = true;
  if (e.retryAfterMs !== undefined) out.retryAfterMs = e.retryAfterMs;
  return out;
}

function systemPrompt(
  cfg: GwConfig,
  agentId: string,
  events: string[],
  extra: string | undefined,
  skills?: string,
): string {
  const agent = cfg.agents.list.find((a) => a.id === agentId);
  const name = agent?.name ?? "Assistant";
  const parts = [
    `You are ${name}, a personal assistant reached through the gw gateway. Be concise and accurate.`,
    `Current time: ${new Date().toISOString()}.`,
  ];
  if (cfg.agents.defaults.systemPrompt) parts.push(cfg.agents.defaults.systemPrompt);
  if (agent?.systemPrompt) parts.push(agent.systemPrompt);
  if (skills) parts.push(skills);
  if (events.length) {
    parts.push(`System events since the last turn:\n${events.map((e) => `- ${e}`).join("\n")}`);
  }
  if (extra) parts.push(extra);
  return parts.join("\n\n");
}

/**
 * Make a context the providers accept: start at a user message, and give
 * every tool call a result (a crash between a call and its result leaves
 * one unanswered).
 */
export function repairContext(msgs: ModelMessage[]): ModelMessage[] {
  let start = msgs.findIndex((m) => m.role === "user");
  if (start < 0) start = msgs.length;
  const out: ModelMessage[] = [];
  for (let i = start; i < msgs.length; i++) {
    const m = msgs[i]!;
    // Results right after their assistant message are taken below; any other is orphaned.
    if (m.role === "toolResult") continue;
    out.push(m);
    if (m.role === "assistant") {
      const calls = m.content.filter((b): b is ToolCall => b.type === "toolCall");
      if (calls.length === 0) continue;
      const answered = new Set<string>();
      for (let j = i + 1; j < msgs.length && msgs[j]!.role === "toolResult"; j++) {
        answered.add((msgs[j] as ToolResultMessage).toolCallId);
      }
      const missing = calls.filter((c) => !answered.has(c.id));
      // Results that do exist follow in the loop; missing ones are added after them.
      let j = i + 1;
      while (j < msgs.length && msgs[j]!.role === "toolResult") out.push(msgs[j++]!);
      i = j - 1;
      for (const c of missing) {
        out.push({
          role: "toolResult",
          toolCallId: c.id,
          toolName: c.name,
          content: [{ type: "text", text: "The tool call was interrupted and has no result." }],
          isError: true,
          timestamp: m.timestamp,
        });
      }
    }
  }
  return out;
}

/** A counting semaphore whose size is read from config on every acquire. */
class Slots {
  readonly #size: () => number;
  #used = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(size: () => number) {
    this.#size = size;
  }

  /** Resolves true with a slot, or false (no slot) when `signal` aborts first. */
  acquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.#used < this.#size()) {
      this.#used++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const grant = () => {
        signal.removeEventListener("abort", onAbort);
        this.#used++;
        resolve(true);
      };
      const onAbort = () => {
        const i = this.#waiting.indexOf(grant);
        if (i >= 0) this.#waiting.splice(i, 1);
        resolve(false);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(grant);
    });
  }

  /** Give a slot back; the longest waiter gets it. */
  release(): void {
    this.#used--;
    while (this.#used < this.#size() && this.#waiting.length) this.#waiting.shift()!();
  }
}
