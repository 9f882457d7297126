/**
 * `gw sessions`: list, show, reset and delete sessions, as tables for people
 * and JSON (`--json`) for scripts.
 *
 * @module
 */
import { GatewayRequestError } from "../client/client.ts";
import { messageText, preview } from "../store/sessions.ts";
import type { TranscriptMessage } from "../agent/types.ts";
import { type CallOptions, connectClient, Exit, reportRequestError, UsageError } from "./call.ts";
import { bold, dim, green, red, table } from "./style.ts";

/** Options of {@link runSessions}. */
export interface SessionsOptions extends CallOptions {
  /** `list`: only sessions whose key, label, title or last message contain this. */
  search?: string | undefined;
  /** `list`: at most this many sessions; `show`: the last this many messages. */
  limit?: string | undefined;
  /** `delete`: keep the transcript (only the session entry goes). */
  keepTranscript?: boolean | undefined;
}

/** A `sessions.list` row, as far as the table needs it. */
interface Row {
  key: string;
  displayName?: string;
  derivedTitle?: string;
  label?: string;
  lastMessagePreview?: string;
  updatedAt: number;
  messageCount?: number;
  totalTokens?: number;
  hasActiveRun?: boolean;
}

interface HistoryMessage {
  role?: string;
  content?: unknown;
  timestamp?: number;
  toolName?: string;
  stopReason?: string;
}

const SUBCOMMANDS = ["list", "show", "reset", "delete"] as const;

function parseLimit(text: string | undefined, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new UsageError(`--limit: expected a whole number from 1 to ${max}, got '${text}'`);
  }
  return n;
}

/** "3m ago", "2h ago", "5d ago"; a date past a month. */
export function relativeTime(ts: number, now: number = Date.now()): string {
  const s = Math.max(0, Math.round((now - ts) / 1000));
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.max(1, Math.round(s / 60))}m ago`;
  if (s < 86_400) return `${Math.round(s / 3600)}h ago`;
  if (s < 30 * 86_400) return `${Math.round(s / 86_400)}d ago`;
  return new Date(ts).toISOString().slice(0, 10);
}

function compact(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

/** The sessions table of `gw sessions list`. */
export function formatSessions(rows: Row[], now: number = Date.now()): string {
  if (!rows.length) return dim("no sessions");
  const body = rows.map((r) => {
    const title = r.label ?? r.derivedTitle ?? r.lastMessagePreview ?? "";
    return [
      r.key,
      preview(title, 40),
      `${relativeTime(r.updatedAt, now)}${r.hasActiveRun ? " ●" : ""}`,
      String(r.messageCount ?? 0),
      compact(r.totalTokens ?? 0),
    ];
  });
  return table(["KEY", "TITLE", "UPDATED", "MESSAGES", "TOKENS"], body, { right: new Set([3, 4]) });
}

function printHistory(key: string, r: { messages?: HistoryMessage[]; totalMessages?: number }) {
  const msgs = r.messages ?? [];
  if (!msgs.length) {
    console.log(dim(`${key}: no messages`));
    return;
  }
  const more = (r.totalMessages ?? msgs.length) - msgs.length;
  if (more > 0) console.log(dim(`… ${more} earlier message(s); --limit shows more`));
  for (const m of msgs) {
    const when = m.timestamp ? new Date(m.timestamp).toLocaleString() : "";
    const who = m.role === "toolResult" && m.toolName ? `tool ${m.toolName}` : m.role ?? "?";
    const aborted = m.stopReason === "aborted" ? " (aborted)" : "";
    console.log(`${bold(who)}${dim(`${aborted}  ${when}`)}`);
    console.log(messageText(m as TranscriptMessage) || dim("(no text)"));
    console.log();
  }
}

/**
 * `gw sessions [list|show KEY|reset KEY|delete KEY]`. Returns the exit code:
 * 0 ok, 1 error response (or nothing to delete), 3 cannot connect.
 *
 * @throws {UsageError} for an unknown subcommand or a missing key.
 */
export async function runSessions(args: string[], o: SessionsOptions): Promise<number> {
  const [sub = "list", key, ...extra] = args;
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new UsageError(
      `unknown sessions command '${sub}' (expected ${SUBCOMMANDS.join(", ")})`,
    );
  }
  if (sub === "list" && key !== undefined) {
    throw new UsageError(`sessions list takes no key, got '${key}' (try --search)`);
  }
  if (sub !== "list" && key === undefined) throw new UsageError(`usage: gw sessions ${sub} KEY`);
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (o.search !== undefined && sub !== "list") {
    throw new UsageError("--search goes with sessions list");
  }
  if (o.limit !== undefined && sub !== "list" && sub !== "show") {
    throw new UsageError("--limit goes with sessions list or show");
  }
  if (o.keepTranscript && sub !== "delete") {
    throw new UsageError("--keep-transcript goes with sessions delete");
  }
  const limit = parseLimit(o.limit, 1000);

  let method: string;
  let params: Record<string, unknown>;
  switch (sub) {
    case "show":
      [method, params] = ["chat.history", { sessionKey: key, ...(limit ? { limit } : {}) }];
      break;
    case "reset":
      [method, params] = ["sessions.reset", { key }];
      break;
    case "delete":
      [method, params] = ["sessions.delete", { key, deleteTranscript: !o.keepTranscript }];
      break;
    default:
      [method, params] = ["sessions.list", {
        ...(limit ? { limit } : {}),
        ...(o.search !== undefined ? { search: o.search } : {}),
      }];
  }

  const conn = await connectClient(o);
  if (typeof conn === "number") return conn;
  try {
    const result = await conn.client.request(method, params as never) as Record<string, unknown>;
    if (o.json) console.log(JSON.stringify(result, null, 2));
    switch (sub) {
      case "list":
        if (!o.json) console.log(formatSessions((result.sessions ?? []) as Row[]));
        return Exit.OK;
      case "show":
        if (!o.json) printHistory(String(result.sessionKey ?? key), result);
        return Exit.OK;
      case "reset":
        if (!o.json) console.log(`${green("✓")} reset ${result.key}: a new transcript`);
        return Exit.OK;
      default:
        if (result.deleted !== true) {
          console.error(`${red("gw:")} no such session: ${result.key}`);
          return Exit.ERROR;
        }
        if (!o.json) {
          console.log(
            `${green("✓")} deleted ${result.key}${o.keepTranscript ? " (transcript kept)" : ""}`,
          );
        }
        return Exit.OK;
    }
  } catch (e) {
    if (e instanceof GatewayRequestError && e.details?.code === "SESSION_NOT_FOUND" && !o.json) {
      console.error(`${red("gw:")} no such session: ${e.details.key ?? key}`);
      return Exit.ERROR;
    }
    return reportRequestError(e, method, conn, o.json);
  } finally {
    await conn.client.close().catch(() => {});
  }
}
