/**
 * Talking to the agent: `chat.send`, `chat.history`, `chat.abort`, `agent`,
 * `agent.wait`.
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import { GatewayError, invalidRequest } from "../lib/protocol/errors.ts";
import { ErrorCode } from "../lib/protocol/types.ts";
import type { GatewayContext } from "../lib/server/context.ts";
import type { RunHandle, RunOutcome } from "../lib/agent/runtime.ts";
import { defaultAgentId } from "../lib/agent/runtime.ts";
import { canonicalKey, SessionKeyError } from "../lib/agent/session_keys.ts";
import { THINKING_LEVELS, thinkingLevelOf } from "../lib/store/sessions.ts";
import {
  type Attachment,
  formatBytes,
  MAX_FILE_BYTES,
  MediaError,
  mimeTypeOfName,
  normalizeMimeType,
  sniffImageType,
} from "../lib/agent/media.ts";

/** Largest message text accepted (characters). */
export const MAX_MESSAGE_CHARS = 100_000;
/** Default and largest `chat.history` page. */
const HISTORY_DEFAULT = 200;
const HISTORY_MAX = 1000;
/** `chat.history` answers stay under this many bytes (REFERENCE.md 1.6: about 6 MiB). */
const HISTORY_MAX_BYTES = 6 * 1024 * 1024;

const sessionKey = z.string().trim().min(1).max(512);
const idempotencyKey = z.string().min(1).max(256);
const message = z.string().max(MAX_MESSAGE_CHARS);
/** A thinking level; aliases (on, auto, none, ...) and any case are accepted. */
export const thinking = z.string().max(32).transform((s, ctx) => {
  const level = thinkingLevelOf(s);
  if (!level) {
    ctx.addIssue({ code: "custom", message: `expected one of ${THINKING_LEVELS.join(", ")}` });
    return z.NEVER;
  }
  return level;
});

/**
 * The canonical session key: `main` and other bare keys belong to the
 * default agent (`agent:<id>:<key>`); the agent id is lowercase.
 */
export function canonicalSessionKey(key: string, ctx: GatewayContext): string {
  try {
    return canonicalKey(key, defaultAgentId(ctx.config.config));
  } catch (e) {
    if (e instanceof SessionKeyError) {
      throw invalidRequest(e.message, { code: "INVALID_SESSION_KEY" });
    }
    throw e;
  }
}

function agentExists(ctx: GatewayContext, agentId: string): boolean {
  const list = ctx.config.config.agents.list;
  return list.length === 0 ? agentId === "main" : list.some((a) => a.id === agentId);
}

function checkAgent(ctx: GatewayContext, key: string): void {
  const agentId = ctx.agent.agentIdOf(key);
  if (!agentExists(ctx, agentId)) {
    throw invalidRequest(`unknown agent: ${agentId}`, { code: "UNKNOWN_AGENT_ID", agentId });
  }
}

/** What a finished run answers as `agent`'s final reply (and a cached duplicate). */
function agentFinal(o: RunOutcome): Record<string, unknown> {
  const out: Record<string, unknown> = {
    runId: o.runId,
    sessionKey: o.sessionKey,
    agentId: o.agentId,
    status: o.status === "ok" || o.status === "aborted" ? "ok" : o.status,
    summary: o.status === "ok" ? "completed" : o.status === "aborted" ? "aborted" : "failed",
    result: {
      payloads: o.text ? [{ text: o.text, mediaUrl: null }] : [],
      meta: {
        durationMs: o.endedAt - o.startedAt,
        stopReason: o.message?.stopReason,
        agentMeta: {
          sessionId: o.sessionId,
          provider: o.message?.provider,
          model: o.message?.model,
          usage: {
            input: o.usage.input,
            output: o.usage.output,
            cacheRead: o.usage.cacheRead,
            cacheWrite: o.usage.cacheWrite,
            total: o.usage.totalTokens,
          },
          costUsd: o.usage.cost,
        },
      },
    },
    startedAt: o.startedAt,
    endedAt: o.endedAt,
  };
  return out;
}

/** Throw the outcome's error as the final error reply. */
function throwIfFailed(o: RunOutcome): void {
  if (o.status === "ok" || o.status === "aborted") return;
  const e = o.error!;
  const opts: ConstructorParameters<typeof GatewayError>[2] = {
    details: { code: e.kind.toUpperCase(), runId: o.runId, kind: e.kind },
    payload: {
      runId: o.runId,
      status: o.status === "timeout" ? "timeout" : "error",
      summary: e.message,
    },
  };
  if (e.retryable) opts.retryable = true;
  if (e.retryAfterMs !== undefined) opts.retryAfterMs = e.retryAfterMs;
  throw new GatewayError(e.code, e.message, opts);
}

/** Most attachments on one `chat.send`. */
export const MAX_CHAT_ATTACHMENTS = 8;

/**
 * One attachment as OpenClaw's clients send it: `content` is base64 (a
 * `data:<mime>;base64,` URL works too); `mimeType` and `fileName` are
 * optional (the type is then sniffed, or taken from the name). The
 * Anthropic-style `source: {type: "base64", media_type, data}` is accepted as
 * well. Other OpenClaw fields (`origin`, `sizeBytes`, `width`, ...) are ignored.
 */
const chatAttachment = z.looseObject({
  type: z.string().max(64).optional(),
  mimeType: z.string().max(255).optional(),
  fileName: z.string().max(1024).optional(),
  content: z.string().optional(),
  source: z.looseObject({
    type: z.string().max(64).optional(),
    media_type: z.string().max(255).optional(),
    data: z.string().optional(),
  }).optional(),
});

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL_RE = /^data:([^;,]*)((?:;[^;,]*)*);base64,/i;

/** A `chat.send` attachment decoded and checked, ready to save. */
interface _Decoded {
  field: string;
  bytes: Uint8Array;
  mimeType: string;
  fileName?: string;
}

function _badAttachment(field: string, message: string): GatewayError {
  return invalidRequest(`invalid chat.send params: ${field}: ${message}`);
}

/** Decode `chat.send` attachments; every problem is an INVALID_REQUEST naming the field. */
function _decodeAttachments(list: z.infer<typeof chatAttachment>[]): _Decoded[] {
  const out: _Decoded[] = [];
  for (const [i, a] of list.entries()) {
    const field = `params.attachments[${i}]`;
    const fromSource = a.source?.type === "base64" ? a.source.data : undefined;
    let raw = a.content ?? fromSource;
    const contentField = a.content === undefined && fromSource !== undefined
      ? `${field}.source.data`
      : `${field}.content`;
    if (raw === undefined) throw _badAttachment(`${field}.content`, "required base64 data");
    let hinted = a.mimeType ?? a.source?.media_type;
    const url = DATA_URL_RE.exec(raw);
    if (url) {
      raw = raw.slice(url[0].length);
      if (url[1]) hinted ??= url[1];
    }
    const b64 = raw.replace(/\s+/g, "");
    if (b64.length === 0) throw _badAttachment(contentField, "the attachment is empty");
    if (!BASE64_RE.test(b64)) {
      throw _badAttachment(contentField, "expected base64 data, got characters outside base64");
    }
    if (b64.length % 4 === 1) {
      throw _badAttachment(contentField, "expected base64 data, got a truncated string");
    }
    const estimated = Math.floor(b64.length * 3 / 4) -
      (b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0);
    if (estimated > MAX_FILE_BYTES) {
      throw _badAttachment(
        contentField,
        `the file is too large: ${formatBytes(estimated)}, at most ${
          formatBytes(MAX_FILE_BYTES)
        } is accepted`,
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = Uint8Array.fromBase64(b64);
    } catch {
      throw _badAttachment(contentField, "expected base64 data, got invalid base64");
    }
    const declared = hinted ? normalizeMimeType(hinted) : "application/octet-stream";
    const mimeType = declared !== "application/octet-stream"
      ? declared
      : sniffImageType(bytes) ?? (a.fileName ? mimeTypeOfName(a.fileName) : undefined) ?? declared;
    out.push({
      field,
      bytes,
      mimeType,
      ...(a.fileName !== undefined ? { fileName: a.fileName } : {}),
    });
  }
  return out;
}

/** Save decoded attachments in the media store. */
async function _saveAttachments(ctx: GatewayContext, list: _Decoded[]): Promise<Attachment[]> {
  const out: Attachment[] = [];
  for (const d of list) {
    try {
      out.push(
        await ctx.media.save(d.bytes, {
          mimeType: d.mimeType,
          ...(d.fileName !== undefined ? { fileName: d.fileName } : {}),
        }),
      );
    } catch (e) {
      if (e instanceof MediaError) throw _badAttachment(d.field, e.message);
      throw new GatewayError(
        ErrorCode.UNAVAILABLE,
        `could not store ${d.field}: ${(e as Error).message}`,
        { retryable: true, cause: e },
      );
    }
  }
  return out;
}

/** `chat.send`: queue a message on a session; replies stream as `chat` events. */
export const chatSend = defineMethod({
  name: "chat.send",
  scope: "write",
  summary: "Send a message to a session; the reply streams as chat events.",
  params: z.looseObject({
    sessionKey,
    message,
    idempotencyKey,
    thinking: thinking.optional(),
    timeoutMs: z.int().min(1000).max(86_400_000).optional(),
    attachments: z.array(chatAttachment).max(
      MAX_CHAT_ATTACHMENTS,
      `at most ${MAX_CHAT_ATTACHMENTS} attachments`,
    ).optional(),
  }),
  handler: async (p, ctx) => {
    const key = canonicalSessionKey(p.sessionKey, ctx);
    checkAgent(ctx, key);
    const runId = p.idempotencyKey;
    const ended = ctx.agent.outcome(runId);
    if (ended) return { runId, status: ended.status === "ok" ? "ok" : ended.status, cached: true };
    if (ctx.agent.isRunning(runId)) return { runId, status: "in_flight" };
    const prior = await ctx.store.idempotency.get<RunOutcome>("chat", runId);
    if (prior) {
      if (prior.state === "started") return { runId, status: "in_flight" };
      const o = prior.result!;
      return { runId, status: o.status === "ok" ? "ok" : o.status, cached: true };
    }
    // Checked and stored before the claim: a bad attachment leaves no trace of the run.
    const attachments = p.attachments?.length
      ? await _saveAttachments(ctx, _decodeAttachments(p.attachments))
      : [];
    if (
      !(await ctx.store.idempotency.claim("chat", runId, {
        at: Date.now(),
        state: "started",
        runId,
      }))
    ) {
      return { runId, status: "in_flight" };
    }
    let handle: RunHandle;
    try {
      handle = await ctx.agent.submit({
        sessionKey: key,
        message: p.message,
        runId,
        idempotencyKey: p.idempotencyKey,
        source: "chat",
        ...(p.thinking ? { thinking: p.thinking } : {}),
        ...(p.timeoutMs ? { timeoutMs: p.timeoutMs } : {}),
        ...(attachments.length ? { attachments } : {}),
      });
    } catch (e) {
      await ctx.store.idempotency.finish("chat", runId, null).catch(() => {});
      throw new GatewayError(
        ErrorCode.UNAVAILABLE,
        `could not accept the message: ${(e as Error).message}`,
        {
          retryable: true,
          cause: e,
        },
      );
    }
    void handle.done.then((o) => ctx.store.idempotency.finish("chat", runId, o, runId)).catch(
      () => {},
    );
    return { runId, status: "started" };
  },
});

/** `agent`: run a turn; answers `accepted` at once and the outcome when it ends. */
export const agent = defineMethod({
  name: "agent",
  scope: "write",
  summary: "Run one agent turn; answers accepted, then the final result with the same id.",
  twoPhase: true,
  params: z.looseObject({
    message,
    idempotencyKey,
    sessionKey: sessionKey.optional(),
    agentId: z.string().min(1).max(64).optional(),
    thinking: thinking.optional(),
    model: z.string().min(1).max(200).optional(),
    /** Seconds; 0 means no per-run timeout (as `openclaw agent --timeout 0`). */
    timeout: z.number().min(0).max(86_400).optional(),
    extraSystemPrompt: z.string().max(20_000).optional(),
  }),
  handler: async (p, ctx, _caller, req) => {
    const agentId = p.agentId?.toLowerCase() ?? defaultAgentId(ctx.config.config);
    const key = p.sessionKey ? canonicalSessionKey(p.sessionKey, ctx) : `agent:${agentId}:main`;
    checkAgent(ctx, key);
    const runId = p.idempotencyKey;
    const accepted = (
      h: { runId: string; sessionKey: string; agentId: string; acceptedAt: number },
    ) =>
      req.interim({
        runId: h.runId,
        sessionKey: h.sessionKey,
        agentId: h.agentId,
        status: "accepted",
        acceptedAt: h.acceptedAt,
      });
    // A duplicate of a run still going awaits the same outcome.
    const running = ctx.agent.handle(runId);
    if (running) {
      accepted(running);
      const o = await running.done;
      throwIfFailed(o);
      return agentFinal(o);
    }
    const prior = await ctx.store.idempotency.get<RunOutcome>("agent", runId);
    if (prior?.state === "done" && prior.result) {
      throwIfFailed(prior.result);
      return { ...agentFinal(prior.result), cached: true };
    }
    if (
      prior ||
      !(await ctx.store.idempotency.claim("agent", runId, {
        at: Date.now(),
        state: "started",
        runId,
      }))
    ) {
      // Claimed by a call that has not submitted yet (or another process): wait for it.
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const h = ctx.agent.handle(runId);
        if (h) {
          accepted(h);
          const o = await h.done;
          throwIfFailed(o);
          return agentFinal(o);
        }
        const rec = await ctx.store.idempotency.get<RunOutcome>("agent", runId);
        if (rec?.state === "done" && rec.result) {
          throwIfFailed(rec.result);
          return { ...agentFinal(rec.result), cached: true };
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new GatewayError(
        ErrorCode.UNAVAILABLE,
        "a run with this idempotencyKey is in progress elsewhere",
        {
          retryable: true,
          retryAfterMs: 1000,
        },
      );
    }
    const handle = await ctx.agent.submit({
      sessionKey: key,
      message: p.message,
      runId,
      idempotencyKey: p.idempotencyKey,
      source: "agent",
      ...(p.thinking ? { thinking: p.thinking } : {}),
      ...(p.model ? { model: p.model } : {}),
      ...(p.timeout !== undefined ? { timeoutMs: p.timeout * 1000 } : {}),
      ...(p.extraSystemPrompt ? { extraSystemPrompt: p.extraSystemPrompt } : {}),
    });
    accepted(handle);
    const o = await handle.done;
    await ctx.store.idempotency.finish("agent", runId, o, runId).catch(() => {});
    throwIfFailed(o);
    return agentFinal(o);
  },
});

/** `agent.wait`: the outcome of a run, waiting at most `timeoutMs`. */
export const agentWait = defineMethod({
  name: "agent.wait",
  scope: "write",
  summary: "Wait for a run to end (agent or chat.send), at most timeoutMs.",
  params: z.looseObject({
    runId: z.string().min(1).max(256),
    timeoutMs: z.int().min(0).max(3_600_000).default(30_000),
  }),
  handler: async (p, ctx) => {
    let o = await ctx.agent.wait(p.runId, p.timeoutMs);
    if (!o && !ctx.agent.isRunning(p.runId)) {
      for (const kind of ["chat", "agent"]) {
        const rec = await ctx.store.idempotency.get<RunOutcome>(kind, p.runId);
        if (rec?.state === "done" && rec.result) o = rec.result;
      }
      if (!o) {
        throw invalidRequest(`unknown run: ${p.runId}`, { code: "RUN_NOT_FOUND", runId: p.runId });
      }
    }
    if (!o) return { runId: p.runId, status: "timeout" };
    const out: Record<string, unknown> = {
      runId: o.runId,
      status: o.status === "ok" || o.status === "aborted" ? "ok" : o.status,
      startedAt: o.startedAt,
      endedAt: o.endedAt,
    };
    if (o.message) out.stopReason = o.message.stopReason;
    if (o.error) out.error = o.error.message;
    return out;
  },
});

/** `chat.history`: the newest messages of a session, oldest first. */
export const chatHistory = defineMethod({
  name: "chat.history",
  scope: "read",
  summary: "A session's messages, newest page first (limit, before, maxBytes).",
  params: z.looseObject({
    sessionKey,
    limit: z.int().min(1).max(HISTORY_MAX).default(HISTORY_DEFAULT),
    before: z.int().min(0).optional(),
    maxBytes: z.int().min(1024).max(HISTORY_MAX_BYTES).default(HISTORY_MAX_BYTES),
  }),
  handler: async (p, ctx) => {
    const key = canonicalSessionKey(p.sessionKey, ctx);
    const entry = await ctx.store.sessions.get(key);
    const pending = entry ? await ctx.store.sessions.pending(key) : [];
    const base = {
      sessionKey: key,
      pendingInputs: {
        items: pending.map((i) => ({
          runId: i.runId,
          message: i.message,
          acceptedAt: i.acceptedAt,
        })),
        total: pending.length,
      },
    };
    if (!entry) return { ...base, messages: [], hasMore: false, totalMessages: 0 };
    const page = await ctx.store.sessions.messages(entry.sessionId, {
      limit: p.limit,
      ...(p.before !== undefined ? { before: p.before } : {}),
    });
    // Newest messages win the byte budget.
    const out: unknown[] = [];
    let bytes = 0;
    let i = page.length - 1;
    for (; i >= 0; i--) {
      const m = { ...page[i]!.message, __openclaw: { seq: page[i]!.seq } };
      const size = JSON.stringify(m).length;
      if (bytes + size > p.maxBytes && out.length > 0) break;
      bytes += size;
      out.push(m);
    }
    out.reverse();
    const first = i >= 0 ? page[i + 1]!.seq : page[0]?.seq ?? 0;
    return {
      ...base,
      sessionId: entry.sessionId,
      messages: out,
      hasMore: first > 0,
      ...(first > 0 ? { before: first } : {}),
      totalMessages: entry.nextSeq,
      thinkingLevel: entry.thinkingLevel ?? ctx.config.config.agents.defaults.thinkingDefault,
      hasActiveRun: ctx.agent.runsOf(key).length > 0,
      activeRunIds: ctx.agent.runsOf(key),
    };
  },
});

/** `chat.abort`: stop a session's run (or all of its runs). */
export const chatAbort = defineMethod({
  name: "chat.abort",
  scope: "write",
  summary: "Abort a session's running or queued turns (one, with runId).",
  params: z.looseObject({ sessionKey, runId: z.string().min(1).max(256).optional() }),
  handler: (p, ctx) => {
    const key = canonicalSessionKey(p.sessionKey, ctx);
    const runIds = ctx.agent.abort(key, p.runId);
    return { ok: true, aborted: runIds.length > 0, runIds };
  },
});
